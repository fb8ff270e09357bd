"""Building source tables of every column type, their warehouse copies, and configurations."""

from pathlib import Path
from typing import Any

import sqlalchemy as sa
import yaml

from pipewarden.config.load import parse_config
from pipewarden.config.models import PipewardenConfig
from pipewarden.sync.run import SyncOptions, sync_table

#: (source, warehouse) pairs the reconciliation tests run on.
PAIRS = [
    ("postgresql", "postgresql"),
    ("mariadb", "postgresql"),
    ("sqlite", "sqlite"),
    ("mariadb", "sqlite"),
]

#: Source DDL per dialect: every supported column type (MariaDB: DATETIME and DATETIME(6)).
DDL = {
    "postgresql": """
        CREATE TABLE items (
            id BIGINT PRIMARY KEY,
            name VARCHAR(100),
            note TEXT,
            amount NUMERIC(38, 10),
            price NUMERIC(12, 2),
            qty INTEGER,
            ratio DOUBLE PRECISION,
            active BOOLEAN,
            born DATE,
            created_at TIMESTAMP(0) WITH TIME ZONE,
            updated_at TIMESTAMP WITH TIME ZONE,
            payload JSON,
            token UUID
        )""",
    "mariadb": """
        CREATE TABLE items (
            id BIGINT PRIMARY KEY,
            name VARCHAR(100),
            note TEXT,
            amount DECIMAL(38, 10),
            price DECIMAL(12, 2),
            qty INT,
            ratio DOUBLE,
            active BOOLEAN,
            born DATE,
            created_at DATETIME,
            updated_at DATETIME(6),
            payload JSON,
            token CHAR(36)
        ) CHARACTER SET utf8mb4""",
    "sqlite": """
        CREATE TABLE items (
            id INTEGER PRIMARY KEY,
            name VARCHAR(100),
            note TEXT,
            amount NUMERIC(38, 10),
            price NUMERIC(12, 2),
            qty INTEGER,
            ratio FLOAT,
            active BOOLEAN,
            born DATE,
            created_at DATETIME,
            updated_at DATETIME,
            payload TEXT,
            token VARCHAR(36)
        )""",
}

COLUMNS = [
    "id", "name", "note", "amount", "price", "qty", "ratio", "active", "born", "created_at",
    "updated_at", "payload", "token",
]  # fmt: skip

#: Awkward values: NULLs, unicode, trailing spaces, large and negative numerics, negative zero,
#: fractions of seconds (which a DATETIME column truncates), JSON with keys out of order.
ROWS: list[tuple[Any, ...]] = [
    (1, "Zoë 😀 日本", "trailing  ", "-1234567890123456789012345678.1234567890", "-0.00", -7,
     0.1, True, "1999-12-31", "2024-01-01 10:00:00.75", "2024-01-01 10:00:00.123456",
     '{"b": 1, "a": [1, 2, {"z": null, "y": "ü"}]}', "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11"),
    (2, None, None, None, None, None, None, None, None, None, None, None, None),
    (3, "", " leading", "0.0000000001", "999999999.99", 2147483647, -1.5e-10, False,
     "2024-02-29", "2024-06-30 23:59:59", "2024-06-30 23:59:59.999999", '{"a": 1.5, "b": "x"}',
     "00000000-0000-0000-0000-000000000000"),
    (4, "a|b\\Nc", "4:abcd", "99999999999999999999999999.9999999999", "-12.30", 0,
     1e20, True, "0001-01-01", "1970-01-01 00:00:00", "2000-01-01 00:00:00.000001", "[]", None),
    (5, "tab\there", "line\nbreak", "-0.0000000000", "0.00", -2147483648, -0.0, False,
     "2038-01-19", "2038-01-19 03:14:07.999", "2038-01-19 03:14:07.5", '{"n": 10, "m": [true]}',
     None),
]  # fmt: skip


def make_config(source_url: str, warehouse_url: str, **table: Any) -> PipewardenConfig:
    options = {
        "source": "src",
        "primary_key": ["id"],
        "cursor": "updated_at",
        "lookback": "0s",
        "batch_size": 1000,
        **table,
    }
    return parse_config(
        {
            "warehouse": {"url": warehouse_url},
            "sources": {"src": {"url": source_url}},
            "tables": {"items": options},
        },
        Path("test.yaml"),
    )


def create_source(url: str, kind: str, rows: list[tuple[Any, ...]] = ROWS) -> sa.Engine:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text(DDL[kind]))
        insert_rows(conn, kind, rows)
    return engine


def insert_rows(conn: sa.Connection, kind: str, rows: list[tuple[Any, ...]]) -> None:
    if not rows:
        return
    names = ", ".join(COLUMNS)
    values = ", ".join(f":{c}" for c in COLUMNS)
    statement = sa.text(f"INSERT INTO items ({names}) VALUES ({values})")
    conn.execute(statement, [dict(zip(COLUMNS, _bindable(row, kind))) for row in rows])


def _bindable(row: tuple[Any, ...], kind: str) -> tuple[Any, ...]:
    values = list(row)
    if kind == "postgresql":
        for i in (9, 10):
            if values[i] is not None:
                values[i] = values[i] + "+00"
    if kind == "sqlite" and values[7] is not None:
        values[7] = int(values[7])
    return tuple(values)


def copy_to_warehouse(config: PipewardenConfig) -> None:
    """The warehouse copy, made by the real sync."""
    sync_table(config, "items", SyncOptions(full_refresh=True))


def execute(url: str, *statements: str) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        for statement in statements:
            conn.execute(sa.text(statement))
    engine.dispose()


def config_file(directory: Path, settings: dict[str, Any]) -> str:
    """`settings` written as the `pipewarden.yaml` the CLI is given."""
    path = directory / "pipewarden.yaml"
    path.write_text(yaml.safe_dump(settings))
    return str(path)


def one_table(source: str, warehouse: str, table: str = "t", **options: Any) -> dict[str, Any]:
    """Settings for one table `t` keyed by `id`, with cursor `v`."""
    return {
        "warehouse": {"url": warehouse},
        "sources": {"src": {"url": source}},
        "tables": {table: {"source": "src", "primary_key": "id", "cursor": "v", **options}},
    }
