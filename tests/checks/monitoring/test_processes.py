"""Tables scored by helpers: the same results, in the same order, as in one process.

The forked helpers' tests run in a fresh interpreter: helpers are only forked from a process
with no other thread, and a pytest process may hold Prefect's. Work done from a second thread
(as a Prefect flow runs) goes to spawned helpers instead."""

import json
import os
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from pipewarden.checks.monitoring import processes
from pipewarden.checks.monitoring.spawned import HelperFailed
from tests.checks.monitoring.shared_work import FailsInHelper, NameAndPid

ROOT = Path(__file__).resolve().parents[3]

SPLIT = """
import json, os
from pipewarden.checks.monitoring.processes import map_tables, _helpers
names = [f"t{i:03d}" for i in range(64)]
print(json.dumps({"helpers": _helpers(len(names)),
                  "out": map_tables(names, lambda n: [n, os.getpid()])}))
"""

CHECKS = """
import json, math, sys, threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
import numpy as np
from pipewarden.checks.monitoring import processes
from pipewarden.checks.monitoring.run import run_checks
from pipewarden.config.load import parse_config
from pipewarden.db.engines import cached_engine
from pipewarden.measurements.sync_metrics import NEWEST_CURSOR
from pipewarden.records.metrics import MetricPoint, write_metrics
from pipewarden.records.migrate import ensure_tables

NOW = datetime(2026, 3, 2, 15, 20, tzinfo=UTC)
TABLES = [f"t{i:02d}" for i in range(40)]

def seeded(url):
    config = parse_config({
        "warehouse": {"url": url},
        "sources": {"s": {"url": "sqlite:///unused.sqlite"}},
        "tables": {t: {"source": "s", "primary_key": ["id"], "cursor": "u"} for t in TABLES},
    }, Path("t.yaml"))
    engine = cached_engine(url)
    ensure_tables(engine)
    rng = np.random.default_rng(7)
    points = []
    for k, table in enumerate(TABLES):
        for h in range(14 * 24, 0, -1):
            at = NOW - timedelta(hours=h)
            rows = rng.poisson(100 + 60 * math.sin(2 * math.pi * at.hour / 24))
            if h == 1 and k % 5 == 0:
                rows *= 8  # some tables burst in their last complete hour
            points += [
                MetricPoint(at, table, "rows_by_cursor_hour", float(rows)),
                MetricPoint(at, table, "latency_p95_seconds", float(rng.lognormal(5, 0.2))),
                MetricPoint(at, table, "freshness_seconds", float(rng.lognormal(4, 0.3))),
            ]
        seen = (NOW - timedelta(minutes=3)).timestamp()
        points.append(MetricPoint(NOW, table, NEWEST_CURSOR, seen))
    with engine.begin() as conn:
        write_metrics(conn, points)
    return config

def verdicts(url, min_tables):
    processes.MIN_TABLES = min_tables
    results = run_checks(seeded(url), now=NOW)
    keys = ("table_name", "check", "status", "observed", "observed_at", "expected_low",
            "expected_high", "score", "method", "reason", "history_size")
    return [[str(getattr(r, k)) for k in keys] for r in results]

def in_a_thread(url, min_tables):
    out = []
    thread = threading.Thread(target=lambda: out.append(verdicts(url, min_tables)))
    thread.start()
    thread.join()
    return out[0]

folder = Path(sys.argv[1])
alone = verdicts(f"sqlite:///{folder / 'alone.sqlite'}", 10**9)
shared = verdicts(f"sqlite:///{folder / 'shared.sqlite'}", 1)
spawned = in_a_thread(f"sqlite:///{folder / 'spawned.sqlite'}", 1)
print(json.dumps({"helpers": processes._helpers(len(TABLES)), "alone": alone, "shared": shared,
                  "spawned": spawned}))
"""


def _run(script: str, *args: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", script, *args], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _cores() -> int:
    return len(os.sched_getaffinity(0))


def test_tables_are_shared_with_forked_helpers_and_come_back_in_order() -> None:
    got = _run(SPLIT)
    assert got["helpers"] == min(_cores(), 4) - 1
    assert [name for name, _ in got["out"]] == [f"t{i:03d}" for i in range(64)]
    assert len({pid for _, pid in got["out"]}) == got["helpers"] + 1


def test_a_check_run_with_helpers_gives_the_verdicts_of_one_process(tmp_path: Path) -> None:
    got = _run(CHECKS, str(tmp_path))
    assert got["helpers"] >= (1 if _cores() > 1 else 0)
    assert got["shared"] == got["alone"]
    assert got["spawned"] == got["alone"]
    volume = [v for v in got["alone"] if v[1] == "anomaly:rows_by_cursor_hour"]
    assert len(volume) == 40 and sum(v[2] == "anomaly" for v in volume) >= 6  # the bursts


def _from_a_thread(work: Callable[[str], Any], names: list[str]) -> list[Any]:
    """`map_tables` as a Prefect flow calls it: from a thread, so helpers are spawned."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(processes.map_tables, names, work).result()


@pytest.mark.skipif(_cores() < 2, reason="helpers need a second core")
def test_from_a_thread_tables_go_to_spawned_helpers_and_come_back_in_order() -> None:
    names = [f"t{i:03d}" for i in range(64)]
    out = _from_a_thread(NameAndPid(), names)
    assert [name for name, _ in out] == names
    pids = {pid for _, pid in out}
    assert len(pids) == processes._helpers(len(names)) + 1 and os.getpid() in pids


@pytest.mark.skipif(_cores() < 2, reason="helpers need a second core")
def test_a_spawned_helper_that_dies_fails_the_map_with_its_exit_code() -> None:
    with pytest.raises(HelperFailed, match="exited with 3"):
        _from_a_thread(FailsInHelper(exit_code=3), [f"t{i:03d}" for i in range(64)])


@pytest.mark.skipif(_cores() < 2, reason="helpers need a second core")
def test_a_spawned_helper_that_never_answers_is_stopped_and_fails_the_map(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(processes, "HELPER_WAIT", 2.0)
    names = [f"t{i:03d}" for i in range(64)]
    theirs = len(names[1 :: processes._helpers(len(names)) + 1])
    with pytest.raises(HelperFailed, match=f"did not finish its {theirs} tables in time") as failed:
        _from_a_thread(FailsInHelper(exit_code=None), names)
    pid = int(str(failed.value).split("pid ")[1].split(")")[0])
    assert not Path(f"/proc/{pid}").exists()  # killed and reaped
