"""Shared pieces of the benchmarks: fresh databases, medians, ratio printing, peak memory."""

import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa

PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
MARIADB_ADMIN = "mysql+pymysql://root@127.0.0.1:3306/"


@contextmanager
def fresh_database(admin_url: str, prefix: str) -> Iterator[str]:
    """A new database for the benchmark, dropped afterwards; yields its URL."""
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    quoted = admin.dialect.identifier_preparer.quote(name)
    with admin.connect() as conn:
        conn.execute(sa.text(f"CREATE DATABASE {quoted}"))
    try:
        yield admin.url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            force = " WITH (FORCE)" if admin.dialect.name == "postgresql" else ""
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS {quoted}{force}"))
        admin.dispose()


@contextmanager
def orders_databases(prefix: str) -> Iterator[tuple[str, str, str, Path]]:
    """A source, a warehouse and a floor's target, fresh, and the pipewarden.yaml that syncs
    `orders` from the first into the second (no lookback); yields their URLs and the file."""
    import yaml

    with (
        fresh_database(PG_ADMIN, f"{prefix}_src") as source,
        fresh_database(PG_ADMIN, f"{prefix}_wh") as target,
        fresh_database(PG_ADMIN, f"{prefix}_floor") as floor_target,
        tempfile.TemporaryDirectory() as folder,
    ):
        config = Path(folder) / "pipewarden.yaml"
        table = {"source": "shop", "primary_key": ["order_id"], "cursor": "updated_at"}
        config.write_text(
            yaml.safe_dump(
                {
                    "warehouse": {"url": target},
                    "sources": {"shop": {"url": source}},
                    "tables": {"orders": {**table, "lookback": "0s"}},
                }
            )
        )
        yield source, target, floor_target, config


def timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def median_of(runs: int, fn: Callable[[], Any], before: Callable[[], Any] | None = None) -> float:
    """Median wall time of `fn` over `runs` repetitions, `before` run untimed each time."""
    times = []
    for _ in range(runs):
        if before:
            before()
        times.append(timed(fn))
    return statistics.median(times)


def report(title: str, rows: list[tuple[str, float, float | None, str]]) -> None:
    """Print `name  median  ratio  goal` rows."""
    print(f"\n{title}")
    print(f"  {'method':<48} {'median s':>10} {'ratio':>8}  goal")
    for name, seconds, ratio, goal in rows:
        ratio_text = "" if ratio is None else f"{ratio:.2f}x"
        print(f"  {name:<48} {seconds:>10.3f} {ratio_text:>8}  {goal}")
