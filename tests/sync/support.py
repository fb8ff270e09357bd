"""Building sources and configurations for sync tests, and the engines they run on."""

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql

from pipewarden.config.load import parse_config
from pipewarden.config.models import PipewardenConfig
from pipewarden.db.engines import cached_engine
from pipewarden.records import quarantine as q
from pipewarden.sync.run import SyncOptions, sync_table

#: Source and warehouse kinds for the sync scenarios (`make_url` is in tests/fixtures).
SOURCES = ["postgresql", "mariadb", "sqlite"]
WAREHOUSES = ["postgresql", "sqlite"]
TIMESTAMP = sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
WHOLE_SECONDS = sa.DateTime(timezone=True).with_variant(mysql.DATETIME(), "mysql", "mariadb")


def orders_table(timestamp: Any = TIMESTAMP) -> sa.Table:
    return sa.Table(
        "orders",
        sa.MetaData(),
        sa.Column("order_id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("status", sa.String(20)),
        sa.Column("amount", sa.Numeric(12, 2)),
        sa.Column("updated_at", timestamp, nullable=True, index=True),
    )


def make_config(
    source_url: str, warehouse_url: str, timeouts: dict[str, str] | None = None, **table: Any
) -> PipewardenConfig:
    options = {
        "source": "shop",
        "primary_key": ["order_id"],
        "cursor": "updated_at",
        "lookback": "0s",
        "batch_size": 100,
        **table,
    }
    return parse_config(
        {
            "warehouse": {"url": warehouse_url},
            "sources": {"shop": {"url": source_url}},
            "tables": {"orders": options},
            **({"timeouts": timeouts} if timeouts else {}),
        },
        Path("test.yaml"),
    )


def orders_source(url: str, count: int) -> tuple[sa.Engine, sa.Table]:
    """A source holding orders 1..count (see `fill_orders`)."""
    engine = cached_engine(url)
    orders = orders_table()
    orders.create(engine)
    fill_orders(engine, orders, count)
    return engine, orders


def sync_runs_of(engine: sa.Engine) -> list[sa.Row[Any]]:
    """`(run_id, status, error)` of every recorded sync run, oldest first."""
    with engine.connect() as conn:
        return list(
            conn.execute(
                sa.text(
                    "SELECT run_id, status, error FROM pipewarden_sync_runs ORDER BY started_at"
                )
            )
        )


def fill_orders(
    engine: sa.Engine, orders: sa.Table, count: int, start: datetime | None = None
) -> None:
    """Orders 1..count, paid, amount i/100, stamped one second apart after `start`."""
    start = start or utc(2026, 3, 1)
    with engine.begin() as conn:
        conn.execute(
            orders.insert(),
            [
                {
                    "order_id": i,
                    "status": "paid",
                    "amount": Decimal(i) / 100,
                    "updated_at": naive_if_needed(engine, start + timedelta(seconds=i)),
                }
                for i in range(1, count + 1)
            ],
        )


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


def naive_if_needed(engine: sa.Engine, moment: datetime) -> datetime:
    """MariaDB and SQLite columns hold UTC wall-clock time."""
    if engine.dialect.name in ("mysql", "mariadb", "sqlite"):
        return moment.astimezone(UTC).replace(tzinfo=None)
    return moment


def rows_of(
    engine: sa.Engine, table: str = "orders", key: str = "order_id"
) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        t = sa.Table(table, sa.MetaData(), autoload_with=conn)
        return [tuple(r) for r in conn.execute(sa.select(t).order_by(t.c[key]))]


def normalized(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Rows comparable across databases: instants in UTC without zone, decimals as text."""
    out = []
    for row in rows:
        values = []
        for v in row:
            if isinstance(v, datetime):
                v = v.astimezone(UTC).replace(tzinfo=None) if v.tzinfo else v
            elif isinstance(v, str) and len(v) == 26 and v[4] == "-" and v[10] == " ":
                v = datetime.fromisoformat(v)
            values.append(str(v) if v is not None and not isinstance(v, (int, datetime)) else v)
        out.append(tuple(values))
    return out


# Sources as a database stores them: raw DDL without a primary key, bad values written as text.

#: MariaDB stores zero dates and out-of-range values only with this session setting.
PERMISSIVE = "SET SESSION sql_mode = ''"

TYPES = {
    "int": {"postgresql": "BIGINT", "mariadb": "BIGINT", "sqlite": "INTEGER"},
    "text": {"postgresql": "TEXT", "mariadb": "VARCHAR(100)", "sqlite": "TEXT"},
    "timestamp": {"postgresql": "TIMESTAMPTZ", "mariadb": "DATETIME(6)", "sqlite": "DATETIME"},
    "naive": {"postgresql": "TIMESTAMP", "mariadb": "DATETIME", "sqlite": "DATETIME"},
    "date": {"postgresql": "DATE", "mariadb": "DATE", "sqlite": "DATE"},
    "json": {"postgresql": "JSONB", "mariadb": "LONGTEXT", "sqlite": "JSON"},
}


def kind_of_url(url: str) -> str:
    return "postgresql" if url.startswith("postgresql") else url.split(":")[0].split("+")[0]


def make_source(url: str, extra: dict[str, str]) -> sa.Engine:
    """`orders(order_id, status, updated_at, …extra)` without a primary key."""
    engine = sa.create_engine(url)
    kind = "mariadb" if url.startswith("mysql") else kind_of_url(url)
    columns = {"order_id": "int", "status": "text", "updated_at": "timestamp", **extra}
    ddl = ", ".join(f"{name} {TYPES[t][kind]}" for name, t in columns.items())
    with engine.begin() as conn:
        conn.execute(sa.text(f"CREATE TABLE orders ({ddl})"))
    return engine


def insert(engine: sa.Engine, rows: Sequence[dict[str, Any]], setup: str | None = None) -> None:
    """Rows as the database stores them (values as SQL text where they are odd)."""
    with engine.begin() as conn:
        if setup:
            conn.execute(sa.text(setup))
        for row in rows:
            names = ", ".join(row)
            params = ", ".join(f":{n}" for n in row)
            conn.execute(sa.text(f"INSERT INTO orders ({names}) VALUES ({params})"), row)


def prepared(
    make_url: Callable[[str, str], str],
    source: str,
    warehouse: str,
    rows: Sequence[dict[str, Any]],
    extra: dict[str, str] | None = None,
    setup: str | None = None,
) -> tuple[sa.Engine, str, str]:
    """A source `orders` holding `rows`, and an empty warehouse: (source engine, urls)."""
    src_url, wh_url = make_url(source, "src"), make_url(warehouse, "wh")
    engine = make_source(src_url, extra or {})
    insert(engine, rows, setup)
    return engine, src_url, wh_url


def stamp(second: int) -> str:
    return f"2026-03-01 10:00:{second:02d}"


def sync(source: str, warehouse: str, checks: dict[str, Any]) -> Any:
    config = make_config(source, warehouse, **checks)
    return sync_table(config, "orders", SyncOptions())


def held(url: str) -> list[q.QuarantineEntry]:
    with sa.create_engine(url).connect() as conn:
        return q.entries(conn, "orders")
