"""A check run as the user waits for it: 2,000 tables × 90 days of hourly history, cold.

The warehouse (SQLite, then PostgreSQL) holds, per table, hourly rows of the metrics a sync
records (`rows_by_cursor_hour`, `latency_p95_seconds`, `freshness_seconds`,
`newest_cursor_epoch`) in pipewarden's own `pipewarden_metrics`, and one successful sync that
started five minutes before the check (`bench/checks_store.py` seeds the same, with column samples,
at 200 tables on PostgreSQL). Every timed run is cold: the verdicts of earlier runs are deleted
first (untimed), so every series is scored again. Timed, medians of `--repeat`:

* in process: `run_checks` called from a second thread of this process, as a Prefect flow calls
  it (so its helpers are spawned interpreters, not forks: `checks.monitoring.processes`), and
  `checks_flow` called in this process against the bench's Prefect server;
* shell: `pipewarden check --json` as a user types it (interpreter start and imports included);
* deployment: `prefect deployment run` of the checks flow, picked up by a process worker, which
  starts a fresh interpreter per flow run (`python -m prefect.engine`), as deployments run; timed
  from the run's creation until the API reports it finished, beside Prefect's own recorded
  run time of the flow run.

A real `prefect server` (its database on PostgreSQL, as tests/e2e does) and a process worker
are started by the bench and stopped at its end.

Goal (issue 14): under 20 s for the deployment run of 2,000 tables on this machine.
Run: `.venv/bin/python bench/check_flow.py [--tables N] [--days N] [--repeat N]
[--engines sqlite,postgresql]`.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import psycopg
import sqlalchemy as sa
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import PG_ADMIN, fresh_database  # noqa: E402

BIN = Path(sys.executable).parent
GOAL = 20.0
METRICS = ("rows_by_cursor_hour", "latency_p95_seconds", "freshness_seconds", "newest_cursor_epoch")


def table_name(i: int) -> str:
    return f"table_{i:04d}"


def config_dict(url: str, tables: int) -> dict[str, Any]:
    return {
        "warehouse": {"url": url},
        "sources": {"src": {"url": "sqlite:///unused.sqlite"}},
        "tables": {
            table_name(i): {
                "source": "src",
                "primary_key": ["id"],
                "cursor": "updated_at",
                "freshness": {"warn_after": "2h", "error_after": "6h"},
            }
            for i in range(tables)
        },
    }


def histories(tables: int, days: int, now: datetime) -> Iterator[pl.DataFrame]:
    """Per table, its hourly metric rows (measured_at as text, table, metric, value, labels):
    seasonal, overdispersed counts, lognormal latency and freshness age, the newest cursor."""
    rng = np.random.default_rng(14)
    hours = days * 24
    times = [now - timedelta(hours=hours - i) for i in range(hours)]
    hour = np.array([t.hour for t in times])
    weekday = np.array([t.weekday() for t in times])
    epochs = np.array([t.timestamp() for t in times])
    # As pipewarden writes an instant on SQLite, and PostgreSQL reads it (UTC).
    stamps = [t.astimezone(UTC).isoformat(sep=" ", timespec="microseconds")[:26] for t in times]
    for i in range(tables):
        mean = rng.uniform(5, 5000) * (1 + 0.6 * np.sin(2 * np.pi * (hour - 6) / 24))
        mean = mean * np.where(weekday >= 5, 0.7, 1.0)
        rows = rng.negative_binomial(20, 20 / (20 + mean)).astype(float)
        latency = rng.lognormal(np.log(rng.uniform(60, 3600)), 0.25, hours)
        freshness = rng.lognormal(np.log(rng.uniform(30, 1800)), 0.4, hours)
        yield pl.concat(
            pl.DataFrame(
                {
                    "measured_at": stamps,
                    "table_name": table_name(i),
                    "metric": metric,
                    "value": values.astype(np.float64),
                    "labels": "{}",
                }
            )
            for metric, values in zip(
                METRICS, (rows, latency, freshness, epochs - freshness), strict=True
            )
        )


def seed(url: str, tables: int, days: int, now: datetime) -> int:
    """pipewarden's tables, every table's history, and one successful sync per table."""
    from pipewarden.db.engines import cached_engine
    from pipewarden.records.migrate import ensure_tables
    from pipewarden.records.sync_runs import SyncRun, finish_run, start_run

    engine = cached_engine(url)
    ensure_tables(engine)
    written = 0
    columns = "measured_at, table_name, metric, value, labels"
    if url.startswith("sqlite"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            for frame in histories(tables, days, now):
                conn.executemany(
                    f"INSERT INTO pipewarden_metrics ({columns}) VALUES (?, ?, ?, ?, ?)",
                    frame.rows(),
                )
                written += frame.height
            conn.execute("ANALYZE")
    else:
        with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn:
            copy_sql = f"COPY pipewarden_metrics ({columns}) FROM STDIN CSV"
            with conn.cursor().copy(copy_sql) as copy:
                for frame in histories(tables, days, now):
                    buffer = io.BytesIO()
                    frame.with_columns(pl.col("measured_at") + "+00").write_csv(
                        buffer, include_header=False
                    )
                    copy.write(buffer.getvalue())
                    written += frame.height
            conn.execute("ANALYZE pipewarden_metrics")
    for i in range(tables):
        run = SyncRun(f"bench-{i}", table_name(i), now - timedelta(minutes=5))
        start_run(engine, run)
        finish_run(engine, run, "success")
    engine.dispose()
    return written


def forget_checks(url: str) -> None:
    """A cold run: no earlier verdict to reuse, no incident open (untimed)."""
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        for table in ("pipewarden_check_results", "pipewarden_incidents", "pipewarden_alerts"):
            conn.execute(sa.text(f"DELETE FROM {table}"))
    engine.dispose()


def median(
    repeat: int, run: Callable[[], float | None], before: Callable[[], None]
) -> tuple[float, list[float]]:
    """Median seconds of `run` (which may report its own figure), `before` untimed each time.
    The CPU seconds of this process and its children are printed beside (a busy machine
    stretches wall time, CPU time far less; a worker's flow run is not a child: not counted)."""
    times, cpus = [], []
    for _ in range(repeat):
        before()
        began, cpu = time.perf_counter(), _cpu()
        own = run()
        times.append(own if own is not None else time.perf_counter() - began)
        cpus.append(_cpu() - cpu)
    print(f"    CPU s of this process and its children: {[round(c, 2) for c in cpus]}")
    return statistics.median(times), [round(t, 2) for t in times]


def _cpu() -> float:
    own, children = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def api_call(api: str, method: str, path: str, body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        f"{api}{path}", data=data, method=method, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        text = answer.read()
    return json.loads(text) if text else None


def wait_for(what: str, ready: Callable[[], Any], limit: float = 600) -> Any:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        value = ready()
        if value:
            return value
        time.sleep(0.2)
    raise TimeoutError(f"{what}: not within {limit} s")


def healthy(api: str) -> bool:
    try:
        return api_call(api, "GET", "/health") is True
    except OSError:
        return False


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextmanager
def prefect_server(home: Path) -> Iterator[dict[str, str]]:
    """A real Prefect server on a PostgreSQL database of its own, and a process worker; yields
    the environment of a client of that server."""
    with fresh_database(PG_ADMIN, "pwbench_prefect") as url:
        port = free_port()
        database = sa.engine.make_url(url).set(drivername="postgresql+asyncpg")
        env = {
            **os.environ,
            "PREFECT_HOME": str(home / "prefect-home"),
            "PREFECT_SERVER_DATABASE_CONNECTION_URL": database.render_as_string(
                hide_password=False
            ),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED": "false",
            "PREFECT_API_URL": "",
            "PREFECT_LOGGING_LEVEL": "WARNING",
        }
        env.pop("PIPEWARDEN_CONFIG", None)
        server = subprocess.Popen(
            [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        api = f"http://127.0.0.1:{port}/api"
        worker = None
        try:
            wait_for("prefect server", lambda: server.poll() is None and healthy(api), 300)
            client = {**env, "PREFECT_API_URL": api}
            subprocess.run(
                [str(BIN / "prefect"), "work-pool", "create", "bench", "--type", "process"],
                env=client,
                check=True,
                capture_output=True,
            )
            log = (home / "worker.log").open("wb")
            worker = subprocess.Popen(
                [str(BIN / "prefect"), "worker", "start", "--pool", "bench", "--name", "bench"],
                env={**client, "PREFECT_WORKER_QUERY_SECONDS": "1"},
                cwd=home,
                stdout=log,
                stderr=log,
            )
            yield client
        finally:
            if worker is not None:
                stop(worker)
            stop(server)


def deploy(client: dict[str, str]) -> str:
    """The checks flow deployed from this checkout to the process pool; returns its name."""
    script = (
        "from prefect import flow\n"
        f"flow.from_source(source={str(ROOT)!r}, "
        "entrypoint='pipewarden/flows/checks.py:checks_flow')"
        ".deploy(name='bench', work_pool_name='bench', print_next_steps=False)\n"
    )
    subprocess.run(
        [sys.executable, "-c", script], env=client, check=True, capture_output=True, cwd=ROOT
    )
    return "pipewarden-checks/bench"


def deployment_run(client: dict[str, str], deployment: str, config_path: Path) -> float:
    """Seconds from `prefect deployment run` until the API reports the flow run finished."""
    api = client["PREFECT_API_URL"]
    began = time.perf_counter()
    out = subprocess.run(
        [
            str(BIN / "prefect"),
            "deployment",
            "run",
            deployment,
            "--param",
            f"config_path={config_path}",
            "--param",
            "fail_on=never",
        ],
        env=client,
        check=True,
        capture_output=True,
        text=True,
    )
    run_id = next(
        line.split(":", 1)[1].strip() for line in out.stdout.splitlines() if "UUID" in line
    )

    def finished() -> dict[str, Any] | None:
        run = api_call(api, "GET", f"/flow_runs/{run_id}")
        return run if run["state_type"] in {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"} else None

    run = wait_for(f"flow run {run_id}", finished)
    seconds = time.perf_counter() - began
    if run["state_type"] != "COMPLETED":
        raise RuntimeError(f"flow run {run_id}: {run['state_type']}: {run['state']['message']}")
    deployment_run.recorded.append(float(run["total_run_time"]))  # type: ignore[attr-defined]
    return seconds


deployment_run.recorded = []  # type: ignore[attr-defined]


def in_a_thread(work: Callable[[], Any]) -> None:
    """`work()` in a second thread, its exception raised here."""
    with ThreadPoolExecutor(1) as pool:
        pool.submit(work).result()


def in_process_flow(client: dict[str, str], config_path: Path) -> None:
    """`checks_flow` called in this process, against the bench's server."""
    from pipewarden.flows.checks import checks_flow

    checks_flow(config_path=str(config_path), fail_on="never")


def shell_check(client: dict[str, str], config_path: Path) -> None:
    done = subprocess.run(
        [str(BIN / "pipewarden"), "check", "--json", "--config", str(config_path)],
        env={**client, "PIPEWARDEN_CONFIG": ""},
        capture_output=True,
        text=True,
    )
    if done.returncode not in (0, 1):
        raise RuntimeError(f"pipewarden check: exit {done.returncode}: {done.stderr[-2000:]}")


def bench_engine(
    engine: str, url: str, args: argparse.Namespace, client: dict[str, str], work: Path
) -> list[tuple[str, float, list[float]]]:
    from pipewarden.checks.monitoring.run import run_checks
    from pipewarden.config.load import parse_config
    from pipewarden.db.engines import cached_engine

    now = datetime.now(UTC)
    began = time.perf_counter()
    rows = seed(url, args.tables, args.days, now)
    print(
        f"{engine}: seeded {rows:,} metric rows in {time.perf_counter() - began:.0f} s", flush=True
    )
    config_path = work / f"{engine}.yaml"
    config_path.write_text(yaml.safe_dump(config_dict(url, args.tables)))
    config = parse_config(config_dict(url, args.tables), config_path)
    cold = lambda: forget_checks(url)  # noqa: E731
    rows_out = []
    # From a second thread, as a Prefect flow calls it: helpers are spawned, not forked.
    figure = median(args.repeat, lambda: in_a_thread(lambda: run_checks(config)), cold)
    cached_engine(url).dispose()
    rows_out.append(("run_checks in a thread (as a flow: spawned helper)", *figure))
    print(f"  {rows_out[-1]}", flush=True)
    figure = median(args.repeat, lambda: in_process_flow(client, config_path), cold)
    cached_engine(url).dispose()
    rows_out.append(("checks_flow called in process", *figure))
    print(f"  {rows_out[-1]}", flush=True)
    figure = median(args.repeat, lambda: shell_check(client, config_path), cold)
    rows_out.append(("`pipewarden check --json` from the shell", *figure))
    print(f"  {rows_out[-1]}", flush=True)
    deployment_run.recorded.clear()  # type: ignore[attr-defined]
    figure = median(args.repeat, lambda: deployment_run(client, DEPLOYMENT, config_path), cold)
    rows_out.append(("deployment run: created → finished", *figure))
    recorded = deployment_run.recorded  # type: ignore[attr-defined]
    rows_out.append(
        ("  the flow run's own recorded run time", statistics.median(recorded), recorded)
    )
    print(f"  {rows_out[-2]}\n  {rows_out[-1]}", flush=True)
    return rows_out


DEPLOYMENT = ""


def main() -> None:
    global DEPLOYMENT
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", type=int, default=2000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--engines", default="sqlite,postgresql")
    args = parser.parse_args()
    print(f"load average at start: {os.getloadavg()}", flush=True)
    results = {}
    with tempfile.TemporaryDirectory(prefix="pwbench-checkflow-") as tmp:
        work = Path(tmp)
        with prefect_server(work) as client:
            os.environ.update(client)  # this process is a client of the bench's server too
            DEPLOYMENT = deploy(client)
            for engine in args.engines.split(","):
                if engine == "sqlite":
                    url = f"sqlite:///{work / 'warehouse.sqlite'}"
                    results[engine] = bench_engine(engine, url, args, client, work)
                else:
                    with fresh_database(PG_ADMIN, "pwbench_checkflow") as url:
                        results[engine] = bench_engine(engine, url, args, client, work)
    print(
        f"\ncheck run over {args.tables} tables × {args.days} days hourly, cold (goal < {GOAL:g} s)"
    )
    for engine, rows in results.items():
        print(f"  {engine}")
        print(f"    {'what':<54} {'median s':>9} {'vs goal':>8}  runs")
        for name, seconds, runs in rows:
            print(f"    {name:<54} {seconds:>9.2f} {seconds / GOAL:>7.2f}x  {runs}")
    print(f"load average at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
