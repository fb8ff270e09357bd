"""The deployments as people use them: a real `prefect server`, `prefect deploy`, a worker."""

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml

from tests.sync.helpers import orders_table

ROOT = Path(__file__).resolve().parents[2]
PREFECT = str(Path(sys.executable).with_name("prefect"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url: str, server: subprocess.Popen, limit: float = 120) -> None:
    """Poll the health endpoint until the server answers (or has died)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"prefect server exited with {server.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError("prefect server did not become healthy")


@pytest.fixture
def prefect_server(tmp_path):
    port = free_port()
    env = {
        **os.environ,
        "PREFECT_HOME": str(tmp_path / "prefect-home"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_API_URL": "",
        "PREFECT_LOGGING_LEVEL": "WARNING",
    }
    server = subprocess.Popen(
        [PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port), "--analytics-off"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    api = f"http://127.0.0.1:{port}/api"
    try:
        wait_healthy(api, server)
        yield api, {**env, "PREFECT_API_URL": api}
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()


def prefect(env, *args, cwd=ROOT):
    done = subprocess.run(
        [PREFECT, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, f"prefect {' '.join(args)}\n{done.stdout}\n{done.stderr}"
    return done.stdout


def test_manual_sync_deployment_runs_on_a_worker(prefect_server, tmp_path):
    api, env = prefect_server
    source = sa.create_engine(f"sqlite:///{tmp_path / 'shop.sqlite'}")
    orders = orders_table()
    orders.create(source)
    base = datetime(2026, 3, 1, tzinfo=UTC).replace(tzinfo=None)
    with source.begin() as conn:
        conn.execute(
            orders.insert(),
            [
                {
                    "order_id": i,
                    "status": "paid",
                    "amount": Decimal("5.00"),
                    "updated_at": base + timedelta(seconds=i),
                }
                for i in range(1, 51)
            ],
        )
    config = tmp_path / "pipewarden.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "warehouse": {"url": f"sqlite:///{tmp_path / 'wh.sqlite'}"},
                "sources": {"shop": {"url": f"sqlite:///{tmp_path / 'shop.sqlite'}"}},
                "tables": {
                    "orders": {
                        "source": "shop",
                        "primary_key": ["order_id"],
                        "cursor": "updated_at",
                    }
                },
            }
        )
    )
    project = tmp_path / "project"
    shutil.copytree(
        ROOT,
        project,
        ignore=shutil.ignore_patterns(
            ".venv", ".git", ".pipewarden", "__pycache__", ".pytest_cache", "bench"
        ),
    )
    run_env = {**env, "PWD": str(project), "PYTHONPATH": str(project)}
    prefect(run_env, "work-pool", "create", "pipewarden", "--type", "process", cwd=project)
    prefect(run_env, "--no-prompt", "deploy", "--all", cwd=project)
    out = prefect(
        run_env,
        "deployment",
        "run",
        "pipewarden-sync/sync-manual",
        "--param",
        f"config_path={config}",
        cwd=project,
    )
    assert "Created flow run" in out
    worker = prefect(run_env, "worker", "start", "--pool", "pipewarden", "--run-once", cwd=project)
    request = urllib.request.Request(
        f"{api}/flow_runs/filter",
        data=json.dumps({"limit": 50}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        runs = json.loads(answer.read())
    manual = [r for r in runs if r["parameters"].get("config_path") == str(config)]
    assert [r["state_type"] for r in manual] == ["COMPLETED"], (
        [r["state"].get("message") for r in manual],
        worker[-3000:],
    )
    warehouse = sa.create_engine(f"sqlite:///{tmp_path / 'wh.sqlite'}")
    with warehouse.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM orders")).scalar() == 50
