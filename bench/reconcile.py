"""Reconciliation benchmark: 1,000,000 rows per side, differences scattered over the key range.

The floor is what the issue defines: one `count(*)` + md5 checksum query over each side's whole
table (the same canonical row text pipewarden hashes, md5'd and summed as 64-bit integers), the
two sides one after the other, summed. Each figure is the median of `--repeat` runs; floor and
pipewarden runs alternate so load on the machine hits both alike.

- PostgreSQL → PostgreSQL with 10, 1,000 and 100,000 differences (a third missing, a third extra,
  a third changed): goal ≤ 1.5× the floor each;
- the same 100,000 differences through `pipewarden reconcile --dry-run --json` from the shell, as
  a user meets it (issue 14): its whole wall time, and that time less the command's start-up (the
  interpreter importing what the command imports, timed alone as its own process); goal: the
  latter ≤ 1.5× the floor;
- reladiff with its CLI defaults (all columns passed with -c) at 1,000 differences: goal
  pipewarden ≥ 3× faster. reladiff is installed only for the benchmark, in its own venv
  (`bash bench/peers/install_reladiff.sh`, or set RELADIFF=/path/to/reladiff); without it the row
  says "reladiff not installed — skipped";
- MariaDB → PostgreSQL with 1,000 differences: goal ≤ 2× its floor (one md5 pass per engine);
- peak memory (max RSS of this process, which runs pipewarden in-process): goal < 500 MB.

Every pipewarden run is also checked: it must report exactly the differences that were made.

PostgreSQL → PostgreSQL uses PostgreSQL's type-aware `hash_record_extended` (no text is built;
see `PostgreSQL.native_row_hash` in `pipewarden/dialects/postgresql.py`); `--md5` makes
pipewarden hash md5 of the canonical text like the floor does, for a like-for-like figure.

Run: `.venv/bin/python bench/reconcile.py [--rows N] [--repeat N] [--skip-mariadb] [--md5]`.
"""

import argparse
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import MARIADB_ADMIN, PG_ADMIN, report  # noqa: E402
from pipewarden.config.load import parse_config  # noqa: E402
from pipewarden.db.engines import cached_engine, connect  # noqa: E402
from pipewarden.reconcile.diff import DiffOptions, DiffResult, diff_table  # noqa: E402
from pipewarden.reconcile.plan import Side, plan_table  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PG_DDL = """
CREATE TABLE items (
    id bigint PRIMARY KEY,
    email text NOT NULL,
    name varchar(100) NOT NULL,
    balance numeric(14,2) NOT NULL,
    active boolean NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    note text
)"""
# Keys are even (2, 4, …): the extra rows get odd keys scattered among them.
PG_FILL = """
INSERT INTO items
SELECT 2 * g, 'user' || g || '@example.com', 'Name ' || g, ((g * 37) % 100000) / 100.0 - 200,
       g % 3 = 0, timestamptz '2024-01-01 00:00:00+00' + g * interval '1 second',
       timestamptz '2024-06-01 00:00:00+00' + g * interval '1.5 second',
       CASE WHEN g % 5 = 0 THEN NULL ELSE 'note ' || g END
FROM generate_series(1, {rows}) g"""
MARIADB_DDL = """
CREATE TABLE items (
    id bigint PRIMARY KEY,
    email varchar(200) NOT NULL,
    name varchar(100) NOT NULL,
    balance decimal(14,2) NOT NULL,
    active boolean NOT NULL,
    created_at datetime NOT NULL,
    updated_at datetime(6) NOT NULL,
    note text
) CHARACTER SET utf8mb4"""
MARIADB_FILL = """
INSERT INTO items
SELECT 2 * seq, CONCAT('user', seq, '@example.com'), CONCAT('Name ', seq),
       ((seq * 37) % 100000) / 100 - 200, seq % 3 = 0,
       TIMESTAMP '2024-01-01 00:00:00' + INTERVAL seq SECOND,
       TIMESTAMP '2024-06-01 00:00:00' + INTERVAL seq * 1500000 MICROSECOND,
       IF(seq % 5 = 0, NULL, CONCAT('note ', seq))
FROM seq_1_to_{rows}"""


def new_database(admin_url: str, prefix: str, template: str | None = None) -> str:
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        if template:
            conn.execute(sa.text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
        elif admin.dialect.name == "postgresql":
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        else:
            conn.execute(sa.text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
    admin.dispose()
    return admin.url.set(database=name).render_as_string(hide_password=False)


def drop_database(url: str) -> None:
    parsed = sa.make_url(url)
    admin_url = PG_ADMIN if parsed.get_backend_name() == "postgresql" else MARIADB_ADMIN
    release_engines()
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        if admin.dialect.name == "postgresql":
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)'))
        else:
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS `{parsed.database}`"))
    admin.dispose()


def release_engines() -> None:
    for engine in list(_engines()):
        engine.dispose()
    cached_engine.cache_clear()


def _engines() -> list[sa.Engine]:
    return [cached_engine(url, timeouts) for url, timeouts in _seen]


#: (URL, limits) of every engine a run may have cached: the cache is keyed by both.
_seen: set[tuple[str, Any]] = set()


def fill_postgres(url: str, rows: int) -> None:
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(PG_DDL))
        conn.execute(sa.text(PG_FILL.format(rows=int(rows))))
        conn.execute(sa.text("VACUUM ANALYZE items"))
    engine.dispose()


def fill_mariadb(url: str, rows: int) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text(MARIADB_DDL))
        conn.execute(sa.text(MARIADB_FILL.format(rows=int(rows))))
        conn.execute(sa.text("ANALYZE TABLE items"))
    engine.dispose()


def make_differences(url: str, rows: int, count: int, seed: int) -> dict[str, set[int]]:
    """Scattered missing, extra and changed rows in the (PostgreSQL) warehouse copy."""
    rng = random.Random(seed)
    third = count // 3
    picked = rng.sample(range(1, rows + 1), 2 * third)
    missing = {2 * g for g in picked[:third]}
    changed = {2 * g for g in picked[third:]}
    extra = {2 * g + 1 for g in rng.sample(range(1, rows + 1), count - 2 * third)}
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.exec_driver_sql("DELETE FROM items WHERE id = ANY(%(k)s)", {"k": list(missing)})
        conn.exec_driver_sql(
            "UPDATE items SET name = name || ' (edited)' WHERE id = ANY(%(k)s)",
            {"k": list(changed)},
        )
        conn.exec_driver_sql(
            "INSERT INTO items SELECT k, 'stray', 'stray', 0, false, now(), now(), NULL "
            "FROM unnest(%(k)s::bigint[]) k",
            {"k": list(extra)},
        )
        conn.execute(sa.text("VACUUM ANALYZE items"))
    engine.dispose()
    return {"missing": missing, "extra": extra, "changed": changed}


def config_source(source: str, target: str) -> dict[str, Any]:
    return {
        "warehouse": {"url": target},
        "sources": {"src": {"url": source}},
        "tables": {"items": {"source": "src", "primary_key": "id", "cursor": "updated_at"}},
    }


def config_for(source: str, target: str) -> Any:
    config = parse_config(config_source(source, target), Path("bench.yaml"))
    _seen.update((url, config.timeouts.engine()) for url in (source, target))
    return config


def floor_side(side: Side) -> None:
    """count(*) + md5 checksum of the canonical rows: one pass over the whole table."""
    with connect(side.engine) as conn:
        side.dialect.prepare_hashing(conn)
        columns = [side.table.c[n] for n in side.sql_columns]
        specs = [side.specs[n] for n in side.sql_columns]
        row = side.dialect.row_text(columns, specs)
        conn.execute(sa.select(sa.func.count(), sa.func.sum(side.dialect.hash64(row)))).one()


def floor(config: Any) -> float:
    plan = plan_table(config, "items")
    start = time.perf_counter()
    floor_side(plan.source)
    floor_side(plan.target)
    return time.perf_counter() - start


NATIVE_HASH = True


def pipewarden(config: Any, expected: dict[str, set[int]]) -> float:
    start = time.perf_counter()
    result = diff_table(config, "items", DiffOptions(native_hash=NATIVE_HASH))
    seconds = time.perf_counter() - start
    check(result, expected)
    return seconds


def check(result: DiffResult, expected: dict[str, set[int]]) -> None:
    found = {
        "missing": {d.key[0] for d in result.missing},
        "extra": {d.key[0] for d in result.extra},
        "changed": {d.key[0] for d in result.changed},
    }
    if found != expected or not result.complete:
        wrong = {k: len(found[k] ^ expected[k]) for k in found}
        raise SystemExit(f"pipewarden reported wrong differences: {wrong}")


#: What `pipewarden reconcile` imports before it reads a row: the command line, the configuration
#: and its checks, the reconciliation. Imported with the collector held off, as the command does
#: (pipewarden/cli/start_up.py).
RECONCILE_IMPORTS = (
    "import gc; gc.disable(); import pipewarden.cli.main, pipewarden.cli.reconcile, "
    "pipewarden.config.load, pipewarden.checks.validation.schema_gate, pipewarden.reconcile.run"
)


def command_line(config_path: Path, expected: dict[str, set[int]]) -> float:
    """`pipewarden reconcile items --dry-run --json` as its own process: wall seconds; its
    counts must be the differences made."""
    pipewarden = str(Path(sys.executable).with_name("pipewarden"))
    command = [pipewarden, "reconcile", "items", "--dry-run", "--json", "--config"]
    start = time.perf_counter()
    done = subprocess.run([*command, str(config_path)], capture_output=True, check=False)
    seconds = time.perf_counter() - start
    if done.returncode not in (0, 1):
        raise SystemExit(f"pipewarden reconcile failed: {done.stderr.decode()[-2000:]}")
    counts = json.loads(done.stdout)["counts"]
    if {k: counts[k] for k in expected} != {k: len(v) for k, v in expected.items()}:
        raise SystemExit(f"pipewarden reconcile reported wrong counts: {counts}")
    return seconds


def start_up() -> float:
    """Wall seconds of a process that only imports what the reconcile command imports."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", RECONCILE_IMPORTS], check=True)
    return time.perf_counter() - start


def reladiff_binary() -> str | None:
    for candidate in (
        os.environ.get("RELADIFF"),
        str(ROOT / "bench/.peers/reladiff/bin/reladiff"),
        "/tmp/reladiff-venv/bin/reladiff",
        shutil.which("reladiff"),
    ):
        if candidate and Path(candidate).exists():
            return candidate
    return None


def reladiff(binary: str, source: str, target: str) -> float:
    def dsn(url: str) -> str:
        return sa.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)

    columns = ["email", "name", "balance", "active", "created_at", "updated_at", "note"]
    command = [binary, dsn(source), "items", dsn(target), "items", "-k", "id"]
    for column in columns:
        command += ["-c", column]
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def alternate(repeat: int, **methods: Any) -> dict[str, float]:
    times: dict[str, list[float]] = {name: [] for name in methods}
    for _ in range(repeat):
        for name, method in methods.items():
            times[name].append(method())
    return {name: statistics.median(values) for name, values in times.items()}


def postgres_runs(rows: int, repeat: int) -> list[tuple[str, float, float | None, str]]:
    lines: list[tuple[str, float, float | None, str]] = []
    source = new_database(PG_ADMIN, "bench_rc_src")
    fill_postgres(source, rows)
    binary = reladiff_binary()
    try:
        with tempfile.TemporaryDirectory(prefix="pwbench-reconcile-") as folder:
            for count in sorted({min(c, rows // 10) for c in (10, 1_000, 100_000)}):
                release_engines()
                target = new_database(
                    PG_ADMIN, "bench_rc_wh", template=sa.make_url(source).database
                )
                try:
                    expected = make_differences(target, rows, count, seed=count)
                    config = config_for(source, target)
                    pipewarden(config, expected)  # warm-up: connections, reflection, page cache
                    methods: dict[str, Any] = {
                        "floor": lambda c=config: floor(c),
                        "pipewarden": lambda c=config, e=expected: pipewarden(c, e),
                    }
                    if count == 1_000 and binary:
                        methods["reladiff"] = lambda s=source, t=target: reladiff(binary, s, t)
                    if count == 100_000:
                        path = Path(folder) / "pipewarden.yaml"
                        path.write_text(json.dumps(config_source(source, target)))
                        methods["command"] = lambda p=path, e=expected: command_line(p, e)
                        methods["start-up"] = start_up
                    medians = alternate(repeat, **methods)
                    base = medians["floor"]
                    label = f"{count:,} differences"
                    lines.append((f"floor, {label}", base, 1.0, ""))
                    lines.append((f"pipewarden, {label}", medians["pipewarden"],
                                  medians["pipewarden"] / base, "<= 1.5x floor"))  # fmt: skip
                    if "command" in medians:
                        whole, begun = medians["command"], medians["start-up"]
                        lines.append(
                            (
                                f"pipewarden reconcile --dry-run --json, {label}",
                                whole,
                                whole / base,
                                "(the whole command, from the shell)",
                            )
                        )
                        lines.append(("  its start-up (imports, timed alone)", begun, None, ""))
                        net = whole - begun
                        lines.append(("  the command less its start-up", net, net / base,
                                      "<= 1.5x floor"))  # fmt: skip
                    if count == 1_000:
                        if "reladiff" in medians:
                            speedup = medians["reladiff"] / medians["pipewarden"]
                            goal = f"pipewarden {speedup:.1f}x faster (goal >= 3x)"
                            lines.append((f"reladiff (CLI defaults), {label}", medians["reladiff"],
                                          medians["reladiff"] / base, goal))  # fmt: skip
                        else:
                            lines.append(("reladiff not installed — skipped", 0.0, None, ""))
                finally:
                    drop_database(target)
    finally:
        drop_database(source)
    return lines


def mariadb_runs(rows: int, repeat: int) -> list[tuple[str, float, float | None, str]]:
    source = new_database(MARIADB_ADMIN, "bench_rc_src")
    target = new_database(PG_ADMIN, "bench_rc_wh")
    try:
        fill_mariadb(source, rows)
        fill_postgres(target, rows)
        expected = make_differences(target, rows, 1_000, seed=7)
        config = config_for(source, target)
        pipewarden(config, expected)
        medians = alternate(
            repeat, floor=lambda: floor(config), pipewarden=lambda: pipewarden(config, expected)
        )
    finally:
        drop_database(source)
        drop_database(target)
    base = medians["floor"]
    return [
        ("floor (MariaDB pass + PostgreSQL pass)", base, 1.0, ""),
        ("pipewarden MariaDB -> PostgreSQL, 1,000 differences", medians["pipewarden"],
         medians["pipewarden"] / base, "<= 2x floor"),
    ]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-mariadb", action="store_true")
    parser.add_argument("--skip-postgres", action="store_true")
    parser.add_argument(
        "--md5",
        action="store_true",
        help="hash with md5 of canonical text even when both sides are PostgreSQL",
    )
    args = parser.parse_args()
    global NATIVE_HASH
    NATIVE_HASH = not args.md5
    hashing = "md5 of canonical text" if args.md5 else "native hash where both sides match"
    print(
        f"reconcile benchmark: {args.rows:,} rows per side, medians of {args.repeat} runs, "
        f"pipewarden hashing with {hashing}"
    )
    if not args.skip_postgres:
        report("PostgreSQL -> PostgreSQL", postgres_runs(args.rows, args.repeat))
    if not args.skip_mariadb:
        report("MariaDB -> PostgreSQL", mariadb_runs(args.rows, args.repeat))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    report("memory", [("peak RSS of the process running pipewarden (MB)", peak, None, "< 500 MB")])


if __name__ == "__main__":
    main()
