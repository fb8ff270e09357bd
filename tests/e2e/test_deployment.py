"""The deployments as a team runs them: a real `prefect server`, `prefect deploy --all` from the
repository's prefect.yaml, code cloned from git by two process workers in folders of their own,
the configuration in a Prefect Variable and a password in a Prefect Secret block."""

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml

from tests.sync.support import orders_table

ROOT = Path(__file__).resolve().parents[2]
PREFECT = str(Path(sys.executable).with_name("prefect"))
#: Generous: on 2 shared cores a flow run's interpreter takes seconds to start.
RUN_LIMIT = 150
TERMINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(what: str, ready: Callable[[], Any], limit: float = RUN_LIMIT) -> Any:
    """Poll until `ready()` gives something true (a synchronisation with a deadline)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        value = ready()
        if value:
            return value
        time.sleep(0.5)
    raise TimeoutError(f"{what}: not within {limit} s")


class Api:
    """The few REST calls the test makes to the Prefect server."""

    def __init__(self, url: str) -> None:
        self.url = url

    def call(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"{self.url}{path}",
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as answer:
            text = answer.read()
        return json.loads(text) if text else None

    def healthy(self) -> bool:
        try:
            return self.call("GET", "/health") is True
        except OSError:
            return False

    def run(self, deployment: str, **parameters: Any) -> str:
        """Start a deployment's flow run, as the UI's "Run" button does; returns its id."""
        flow_name, name = deployment.split("/")
        found = self.call("GET", f"/deployments/name/{flow_name}/{name}")
        run = self.call(
            "POST", f"/deployments/{found['id']}/create_flow_run", {"parameters": parameters}
        )
        return str(run["id"])

    def flow_run(self, run_id: str) -> dict[str, Any]:
        return dict(self.call("GET", f"/flow_runs/{run_id}"))

    def finished(self, run_id: str) -> dict[str, Any]:
        def done() -> dict[str, Any] | None:
            run = self.flow_run(run_id)
            return run if run["state_type"] in TERMINAL else None

        return dict(wait_for(f"flow run {run_id}", done))

    def logged(self, run_id: str, text: str) -> bool:
        logs = self.call("POST", "/logs/filter", {"logs": {"flow_run_id": {"any_": [run_id]}}})
        return any(text in entry["message"] for entry in logs)

    def secret_block(self, name: str, value: str) -> None:
        block_type = self.call("GET", "/block_types/slug/secret")
        (schema,) = self.call(
            "POST",
            "/block_schemas/filter",
            {"block_schemas": {"block_type_id": {"any_": [block_type["id"]]}}, "limit": 1},
        )
        self.call(
            "POST",
            "/block_documents/",
            {
                "name": name,
                "block_type_id": block_type["id"],
                "block_schema_id": schema["id"],
                "data": {"value": value},
            },
        )


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture
def prefect_server(tmp_path: Path, postgres: Any) -> Iterator[tuple[Api, dict[str, str]]]:
    """A Prefect server on PostgreSQL (on SQLite, two busy workers got it answering 503)."""
    port = free_port()
    database = sa.engine.make_url(postgres.new("pwprefect")).set(drivername="postgresql+asyncpg")
    env = {
        **os.environ,
        "PREFECT_HOME": str(tmp_path / "prefect-home"),
        "PREFECT_SERVER_DATABASE_CONNECTION_URL": database.render_as_string(hide_password=False),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        # Runs start when the test says so: no scheduled runs for the workers to take.
        "PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED": "false",
        "PREFECT_API_URL": "",
        "PREFECT_LOGGING_LEVEL": "WARNING",
    }
    env.pop("PYTHONPATH", None)
    env.pop("PIPEWARDEN_CONFIG", None)
    command = [PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port)]
    server = subprocess.Popen(
        [*command, "--analytics-off"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    api = Api(f"http://127.0.0.1:{port}/api")
    try:
        wait_for("prefect server healthy", lambda: server.poll() is None and api.healthy(), 150)
        yield api, {**env, "PREFECT_API_URL": api.url}
    finally:
        stop(server)


def prefect(env: dict[str, str], *args: str, cwd: Path, ok: bool = True) -> str:
    done = subprocess.run(
        [PREFECT, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=300
    )
    if ok:
        assert done.returncode == 0, f"prefect {' '.join(args)}\n{done.stdout}\n{done.stderr}"
    else:
        assert done.returncode != 0, f"prefect {' '.join(args)} succeeded\n{done.stdout}"
    return done.stdout + done.stderr


def git_repository(tmp_path: Path) -> tuple[Path, str]:
    """The working tree committed to a fresh repository, and a bare clone of it (file://)."""
    work = tmp_path / "checkout"
    shutil.copytree(
        ROOT,
        work,
        ignore=shutil.ignore_patterns(
            ".venv", ".git", ".pipewarden", "__pycache__", ".pytest_cache", "*.egg-info"
        ),
    )
    git = ["git", "-c", "user.name=pipewarden", "-c", "user.email=pw@localhost"]
    for command in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "e2e"]):
        subprocess.run([*git, *command], cwd=work, check=True, capture_output=True)
    bare = tmp_path / "pipewarden.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(work), str(bare)], check=True)
    return work, bare.as_uri()


def shop_source(url: str, hours_ago: float) -> None:
    """orders (stamped `hours_ago`) and customers in a PostgreSQL shop."""
    engine = sa.create_engine(url)
    orders = orders_table()
    customers = sa.Table(
        "customers",
        sa.MetaData(),
        sa.Column("customer_id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("email", sa.Text),
        sa.Column("updated_at", sa.DateTime(timezone=True), index=True),
    )
    orders.create(engine)
    customers.create(engine)
    stamp = datetime.now(UTC) - timedelta(hours=hours_ago)
    with engine.begin() as conn:
        conn.execute(
            orders.insert(),
            [
                {
                    "order_id": i,
                    "status": "paid",
                    "amount": Decimal("5.00"),
                    "updated_at": stamp + timedelta(seconds=i),
                }
                for i in range(1, 41)
            ],
        )
        conn.execute(
            customers.insert(),
            [
                {"customer_id": i, "email": f"c{i}@example.com", "updated_at": stamp}
                for i in range(1, 21)
            ],
        )
    engine.dispose()


def test_deployments_run_on_workers_elsewhere_and_their_states_tell_the_truth(
    prefect_server: tuple[Api, dict[str, str]], postgres: Any, tmp_path: Path
) -> None:
    api, env = prefect_server
    source_url, warehouse_url = postgres.new("pwe2esrc"), postgres.new("pwe2ewh")
    shop_source(source_url, hours_ago=3)
    checkout, repository = git_repository(tmp_path)

    # The set-up the README gives, for a server and workers that share no folder: the code
    # from git, the configuration in a Variable, the source's URL in a Secret block.
    api.secret_block("pw-e2e-shop-url", source_url)
    table = {"source": "shop", "cursor": "updated_at", "lookback": "0s"}
    config = {
        "warehouse": {"url": warehouse_url},
        # The reader at the test's lock waits while the other flow run starts (slow when busy).
        "timeouts": {"lock": "10m"},
        "sources": {
            "shop": {"url": "${prefect-secret:pw-e2e-shop-url}", "max_concurrent_reads": 1}
        },
        "tables": {
            "orders": {**table, "primary_key": ["order_id"], "freshness": {"error_after": "2h"}},
            "customers": {**table, "primary_key": ["customer_id"], "schedule": "daily"},
        },
    }
    for name, value in (
        ("pipewarden_config", yaml.safe_dump(config)),
        ("pipewarden_repository", repository),
        ("pipewarden_branch", "main"),
    ):
        api.call("POST", "/variables/", {"name": name, "value": value})
    prefect(env, "work-pool", "create", "pipewarden", "--type", "process", cwd=checkout)
    worker_env = {
        **env,
        "PIPEWARDEN_CONFIG": "prefect-variable:pipewarden_config",
        "PREFECT_WORKER_QUERY_SECONDS": "1",
        "PREFECT_LOGGING_LEVEL": "INFO",
    }
    workers = []
    for name in ("worker-a", "worker-b"):
        folder = tmp_path / name
        folder.mkdir()
        log = (folder / "worker.log").open("wb")
        command = [PREFECT, "worker", "start", "--pool", "pipewarden", "--name", name]
        workers.append(
            subprocess.Popen(command, env=worker_env, cwd=folder, stdout=log, stderr=log)
        )
    try:
        prefect(env, "--no-prompt", "deploy", "--all", cwd=checkout)
        shutil.rmtree(checkout)  # the workers run what they clone, nothing of this folder
        _runs(api, env, source_url, warehouse_url, tmp_path)
    except BaseException:
        for name in ("worker-a", "worker-b"):
            print(name, (tmp_path / name / "worker.log").read_text()[-4000:])
        raise
    finally:
        for worker in workers:
            stop(worker)


def _runs(
    api: Api, env: dict[str, str], source_url: str, warehouse_url: str, tmp_path: Path
) -> None:
    warehouse = sa.create_engine(warehouse_url)

    # A clean run completes, and its records name it.
    clean = api.run("pipewarden-sync/sync-manual", tables=["orders", "customers"])

    # Meanwhile, a typo in a choice is refused when the run is asked for: no run is created.
    refused = prefect(
        env,
        "deployment",
        "run",
        "pipewarden-sync/sync-manual",
        "--param",
        "schedule_class=hourlyy",
        cwd=tmp_path,
        ok=False,
    )
    assert "'hourlyy' is not one of ['realtime', 'hourly', 'daily']" in refused
    created = api.call("POST", "/flow_runs/filter", {"limit": 50})
    assert [r["id"] for r in created] == [clean]

    cleaned = api.finished(clean)
    assert cleaned["state_type"] == "COMPLETED", cleaned["state"]["message"]
    with warehouse.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM orders")).scalar() == 40
        ids = conn.execute(sa.text("SELECT DISTINCT flow_run_id FROM pipewarden_sync_runs"))
        assert [row[0] for row in ids] == [clean]

    # A row edited by hand in the warehouse. With max_concurrent_reads 1, a sync and the
    # rerun of a reconciliation of two tables of the shop, started together with the checks,
    # read one after the other: the test holds the tables locked until the reader holding the
    # slot waits on the lock and the other waits for the slot, then lets them go.
    with warehouse.begin() as conn:
        conn.execute(sa.text("UPDATE orders SET amount = 6 WHERE order_id = 3"))
    source = sa.create_engine(source_url)
    watcher = source.execution_options(isolation_level="AUTOCOMMIT")

    def lock_waiters() -> int:
        """Sessions waiting on a lock in the source (a fresh view, not a transaction's)."""
        with watcher.connect() as conn:
            query = (
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock'"
            )
            return int(conn.execute(sa.text(query)).scalar() or 0)

    with source.connect() as lock:
        lock.execute(sa.text("LOCK TABLE orders, customers IN ACCESS EXCLUSIVE MODE"))
        sync = api.run("pipewarden-sync/sync-manual", tables=["customers"])
        rerun = api.run("pipewarden-reconcile/reconcile-rerun", table="orders")
        checks = api.run("pipewarden-checks/checks", tables=["orders"])

        def both_waiting() -> bool:
            slot = "waiting for a read slot of source shop"
            at_slot = all(api.logged(run, slot) for run in (sync, rerun))
            return at_slot and lock_waiters() > 0

        wait_for("one read at the lock, the other at the slot", both_waiting)
        assert lock_waiters() == 1
        lock.rollback()
    source.dispose()

    synced = api.finished(sync)
    assert synced["state_type"] == "COMPLETED", synced["state"]["message"]
    # The rerun found the difference: Failed, saying which table, which keys, what to do.
    reran = api.finished(rerun)
    assert reran["state_type"] == "FAILED"
    message = reran["state"]["message"]
    assert "orders · reconcile (error): 1 differences left" in message
    assert "keys [3]" in message and "repair=true" in message
    checked = api.finished(checks)
    assert checked["state_type"] == "FAILED"
    assert "orders · freshness (error)" in checked["state"]["message"]

    with warehouse.connect() as conn:
        spans = [
            conn.execute(
                sa.text(f"SELECT started_at, finished_at FROM {table} WHERE flow_run_id = :id"),
                {"id": run},
            ).one()
            for table, run in (("pipewarden_sync_runs", sync), ("pipewarden_reconcile_runs", rerun))
        ]
    warehouse.dispose()
    (_, first_end), (second_start, _) = sorted(spans)
    assert first_end <= second_start, spans
