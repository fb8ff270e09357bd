"""Ten times the rows (issue 14): PostgreSQL → PostgreSQL `orders` at 1,000,000 and at 10,000,000
rows a side, every figure measured from the shell as a user meets it.

For each size, in one run: the full load (`pipewarden sync`, an empty warehouse), a 10,000-row
delta (`pipewarden sync` after 10,000 scattered source rows changed; median of three, after one
untimed delta), and `pipewarden reconcile --dry-run --json` with 1,000 and with 1,000,000
scattered differences (a third changed, a third missing, a third extra in the warehouse copy;
the same counts at both sizes: at 1,000,000 rows the second case makes every other row differ).
Beside each, the floor of the same work at that size, so that a growth the server causes
(caches, WAL) is told apart from one pipewarden causes: the COPY + upsert script
(bench/sync_floor.py, run as a script) for the loads, and one md5 pass per side for the
reconciliations (in process).

Each command's peak memory is the maximum resident set of the pipewarden process and any
children it waited for (`os.wait4`'s rusage of that one child), not the benchmark's own.

Goals: every figure at 10,000,000 rows at most 10x its 1,000,000-row figure (it grows at most
linearly with the table), and every peak under 500 MB. The 10,000-row delta reads the same rows
at both sizes, so it should barely grow at all.

10,000,000 rows take minutes (filling the source alone is about a minute on a quiet machine), so
`make bench` runs it only when asked: `BENCH_SCALE=10m make bench`.

Run: `.venv/bin/python bench/scale.py [--sizes 1000000,10000000]`.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import psycopg
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import PG_ADMIN, orders_databases  # noqa: E402
from bench.sync import FILL as SYNC_FILL  # noqa: E402
from bench.sync import make_source  # noqa: E402
from bench.sync_floor import dsn  # noqa: E402

BENCH = Path(__file__).resolve().parent
PEAK_GOAL_MB = 500
DELTA_ROWS = 10_000
DIFFERENCES = (1_000, 1_000_000)
#: bench/sync.py's orders, with even keys (2, 4, …): a warehouse's extra rows get the odd key
#: after one of them.
FILL = SYNC_FILL.replace("SELECT g, ", "SELECT 2 * g, ", 1)


@dataclass
class Measured:
    """One command: wall seconds, peak RSS in MB, its JSON output (when it printed one), and
    the CPU seconds it used (user + sys) beside those of the PostgreSQL backends serving it."""

    seconds: float
    peak_mb: float
    output: Any = None
    cpu: float = 0.0
    server_cpu: float = 0.0


class BackendCPU:
    """CPU seconds used by the PostgreSQL backends of some databases while a command runs.

    A thread polls `pg_stat_activity` for their backends and reads each one's utime + stime
    from /proc (the server runs on this machine); a backend's last reading before it exits is
    its total. That tells the wall apart: the client's CPU, the server's, or neither (waiting:
    the disk, or a machine busy with other work)."""

    def __init__(self, databases: list[str]) -> None:
        self.databases = databases
        self.seen: dict[int, float] = {}
        self.stop = threading.Event()
        self.tick = os.sysconf("SC_CLK_TCK")

    def __enter__(self) -> "BackendCPU":
        self.conn = psycopg.connect(dsn(PG_ADMIN), autocommit=True)
        self.thread = threading.Thread(target=self._poll, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()
        self.conn.close()

    @property
    def seconds(self) -> float:
        return sum(self.seen.values())

    def _poll(self) -> None:
        while not self.stop.wait(0.05):
            pids = self.conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = ANY(%s)", [self.databases]
            ).fetchall()
            for (pid,) in pids:
                try:
                    with open(f"/proc/{pid}/stat") as stat:
                        fields = stat.read().rsplit(")", 1)[1].split()
                except OSError:
                    continue  # exited, or the server is not on this machine
                self.seen[pid] = (int(fields[11]) + int(fields[12])) / self.tick


def run_command(
    command: list[str], json_out: bool = True, databases: list[str] | None = None
) -> Measured:
    """Run a command, timing it and reading the peak RSS of it and its children, its CPU time
    and that of the PostgreSQL backends of `databases`."""
    with (
        tempfile.TemporaryFile() as out,
        tempfile.TemporaryFile() as err,
        BackendCPU(databases or []) as server,
    ):
        began = time.perf_counter()
        child = subprocess.Popen(command, stdout=out, stderr=err)
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - began
        child.returncode = os.waitstatus_to_exitcode(status)
        if child.returncode not in (0, 1):
            err.seek(0)
            raise SystemExit(f"{' '.join(command)} failed: {err.read().decode()[-2000:]}")
        out.seek(0)
        output = json.load(out) if json_out else None
    cpu = usage.ru_utime + usage.ru_stime
    return Measured(seconds, usage.ru_maxrss / 1024, output, cpu, server.seconds)


def touch_rows(source: str, count: int, total: int, round_no: int) -> None:
    """Change `count` source rows scattered over the key range (a new set each round)."""
    step = max(total // count, 1)
    with psycopg.connect(dsn(source), autocommit=True) as conn:
        conn.execute(
            "UPDATE orders SET amount = amount + 1, updated_at = now() "
            "WHERE (order_id / 2) %% %(step)s = %(r)s",
            {"step": step, "r": round_no % step},
        )


def make_differences(target: str, total: int, count: int) -> dict[str, int]:
    """`count` differences scattered over the key range of the warehouse copy: by residue of
    the key, a third changed, a third deleted (missing), a third with an extra row after them."""
    step = max(total // max(count // 3, 1), 3)
    made = {}
    with psycopg.connect(dsn(target), autocommit=True) as conn:
        for kind, sql in (
            ("changed", "UPDATE orders SET amount = amount + 1 WHERE (order_id / 2) %% %(s)s = 1"),
            ("missing", "DELETE FROM orders WHERE (order_id / 2) %% %(s)s = 2"),
            (
                "extra",
                "INSERT INTO orders SELECT order_id + 1, customer_email, amount, currency, "
                "created_at, updated_at, attributes FROM orders "
                "WHERE (order_id / 2) %% %(s)s = 0",
            ),
        ):
            made[kind] = conn.execute(sql, {"s": step}).rowcount
        conn.execute("VACUUM ANALYZE orders")
    return made


def md5_floor(config_path: Path) -> float:
    """One count(*) + md5 checksum pass over each side, in process (bench/reconcile.py's floor)."""
    from bench.reconcile import floor_side
    from pipewarden.config.load import load_config
    from pipewarden.reconcile.plan import plan_table

    plan = plan_table(load_config(config_path), "orders")
    began = time.perf_counter()
    floor_side(plan.source)
    floor_side(plan.target)
    seconds = time.perf_counter() - began
    plan.source.engine.dispose()
    plan.target.engine.dispose()
    return seconds


@dataclass
class Size:
    """Every figure of one size: measure name -> (pipewarden, floor seconds or None)."""

    rows: int
    figures: dict[str, tuple[Measured, float | None]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def measure_size(pipewarden: str, rows: int) -> Size:
    size = Size(rows)
    floor_script = [sys.executable, str(BENCH / "sync_floor.py")]
    with orders_databases("bench_scale") as (source, target, floor_target, config):
        print(f"\n{rows:,} rows: filling the source …", flush=True)
        began = time.perf_counter()
        make_source(source, rows, FILL)
        print(f"  filled in {time.perf_counter() - began:.1f} s; full loads …", flush=True)
        sync = [pipewarden, "sync", "orders", "--json", "--config", str(config)]
        floor = run_command([*floor_script, source, floor_target], json_out=False)
        databases = [_database(source), _database(target)]
        full = run_command(sync, databases=databases)
        size.figures["full load (pipewarden sync)"] = (full, floor.seconds)
        recorded = full.output["runs"][0]["duration_seconds"]
        size.notes.append(f"full load: the run's recorded duration {recorded:.2f} s")

        print("  deltas …", flush=True)
        deltas, floors = [], []
        for r in range(-1, 3):  # one untimed round first: a checkpoint follows the full load
            since = _now(source)
            touch_rows(source, DELTA_ROWS, rows, r + 1)
            took_floor = run_command([*floor_script, source, floor_target, since], json_out=False)
            took = run_command(sync, databases=databases)
            if r >= 0:
                deltas.append(took)
                floors.append(took_floor.seconds)
        median = sorted(deltas, key=lambda m: m.seconds)[len(deltas) // 2]
        peak = max(m.peak_mb for m in deltas)
        size.figures[f"{DELTA_ROWS:,}-row delta (pipewarden sync)"] = (
            replace(median, peak_mb=peak),
            statistics.median(floors),
        )

        reconcile = [pipewarden, "reconcile", "orders", "--dry-run", "--json", "--config"]
        for count in DIFFERENCES:
            print(f"  reconciling {count:,} differences …", flush=True)
            made = make_differences(target, rows, count)
            floor_seconds = md5_floor(config)
            found = run_command([*reconcile, str(config)], databases=databases)
            counts = found.output["counts"]
            reported = {k: counts[k] for k in made}
            if reported != made:
                size.notes.append(f"reconcile {count:,}: made {made}, reported {reported} (WRONG)")
            size.figures[f"reconcile --dry-run, {count:,} differences"] = (found, floor_seconds)
            if count != DIFFERENCES[-1]:  # put the warehouse back for the next case, untimed
                repair = [pipewarden, "reconcile", "orders", "--repair", "--config", str(config)]
                run_command(repair, json_out=False)
    return size


def _database(url: str) -> str:
    return str(sa.make_url(url).database)


def _now(url: str) -> str:
    with psycopg.connect(dsn(url)) as conn:
        row = conn.execute("SELECT now()").fetchone()
    assert row is not None
    return str(row[0].isoformat())


def report(sizes: list[Size]) -> None:
    base, *others = sizes
    print(
        f"\nten times the rows: PostgreSQL → PostgreSQL, from the shell (load average now "
        f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)"
    )
    for size in sizes:
        print(f"\n{size.rows:,} rows a side")
        print(
            f"  {'what':<44} {'wall s':>8} {'cpu s':>7} {'pg cpu s':>8} {'floor s':>8} "
            f"{'x floor':>8} {'peak MB':>8}  goal"
        )
        for name, (m, floor) in size.figures.items():
            ratio = f"{m.seconds / floor:.2f}x" if floor else ""
            floor_text = f"{floor:.3f}" if floor else ""
            met = "met" if m.peak_mb < PEAK_GOAL_MB else "NOT met"
            print(
                f"  {name:<44} {m.seconds:>8.3f} {m.cpu:>7.2f} {m.server_cpu:>8.2f} "
                f"{floor_text:>8} {ratio:>8} {m.peak_mb:>8.0f}  peak < {PEAK_GOAL_MB} MB: {met}"
            )
        for note in size.notes:
            print(f"  ({note})")
    print(
        "\n  cpu s: the pipewarden process and its children (user + sys); pg cpu s: the "
        "PostgreSQL backends serving it. Where wall s is well above both, the command waited: "
        "on the disk, or on a machine busy with other work (see the load average)."
    )
    for size in others:
        factor = size.rows / base.rows
        print(f"\ngrowth from {base.rows:,} to {size.rows:,} rows ({factor:g}x the rows)")
        print(f"  {'what':<44} {'pipewarden':>11} {'floor':>8}  goal: at most {factor:g}x")
        for name, (measured, floor) in size.figures.items():
            before, before_floor = base.figures[name]
            growth = measured.seconds / before.seconds
            floor_growth = f"{floor / before_floor:.2f}x" if floor and before_floor else ""
            met = "met" if growth <= factor else "NOT met"
            print(f"  {name:<44} {growth:>10.2f}x {floor_growth:>8}  {met}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000000,10000000", help="rows a side, comma-separated")
    args = parser.parse_args()
    pipewarden = str(Path(sys.executable).with_name("pipewarden"))
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    sizes = [measure_size(pipewarden, int(n)) for n in args.sizes.split(",")]
    report(sizes)


if __name__ == "__main__":
    main()
