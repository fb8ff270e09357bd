"""Floats round-trip exactly through sync, reconciliation and repair, on every engine pair.

NaN, the infinities, -0.0, subnormals and the float4/float8 extremes: each engine gets those it
can hold (MariaDB refuses NaN and the infinities; SQLite stores a bound NaN as NULL and -0.0 in a
REAL column as 0). A 4-byte column (PostgreSQL `real`, MariaDB `FLOAT`) is compared as float32.
"""

import math
import struct
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from pipewarden.config.load import parse_config
from pipewarden.config.models import PipewardenConfig
from pipewarden.dialects import dialect_for
from pipewarden.reconcile.diff import diff_table
from pipewarden.reconcile.run import ReconcileOptions, reconcile_table
from pipewarden.sync.run import sync_table
from pipewarden.sync.schema import reflect
from tests.reconcile.support import execute

NAN, INF = float("nan"), float("inf")
FLT_MAX = struct.unpack("<f", struct.pack("<I", 0x7F7FFFFF))[0]
FLT_TRUE_MIN = struct.unpack("<f", struct.pack("<I", 1))[0]
FLT_MIN = struct.unpack("<f", struct.pack("<I", 0x00800000))[0]

#: (double, float4) pairs; a row per pair, in this order.
VALUES: list[tuple[float | None, float | None]] = [
    (NAN, NAN),
    (INF, INF),
    (-INF, -INF),
    (-0.0, -0.0),
    (5e-324, FLT_TRUE_MIN),  # the smallest subnormals
    (2.2250738585072014e-308, FLT_MIN),  # the smallest normals
    (1.7976931348623157e308, FLT_MAX),
    (-1.7976931348623157e308, -FLT_MAX),
    (0.1 + 0.2, 0.1),  # 0.30000000000000004; float4 0.1 is not the double 0.1
    (1e-30, 1e-30),
    (123456789.12345679, 16777217.0),  # float4 keeps 16777216
    (None, None),
]

DDL = {
    "postgresql": "CREATE TABLE floats (id BIGINT PRIMARY KEY, version BIGINT NOT NULL, "
    "d DOUBLE PRECISION, r REAL)",
    "mariadb": "CREATE TABLE floats (id BIGINT PRIMARY KEY, version BIGINT NOT NULL, "
    "d DOUBLE, r FLOAT)",
    "sqlite": "CREATE TABLE floats (id INTEGER PRIMARY KEY, version INTEGER NOT NULL, "
    "d DOUBLE, r REAL)",
}

PAIRS = [
    ("postgresql", "postgresql"),
    ("mariadb", "postgresql"),
    ("sqlite", "postgresql"),
    ("postgresql", "sqlite"),
    ("mariadb", "sqlite"),
    ("sqlite", "sqlite"),
]


def _holds(kind: str, value: float | None) -> bool:
    """MariaDB refuses NaN and the infinities; SQLite turns a bound NaN into NULL."""
    if value is None or math.isfinite(value):
        return True
    return kind == "postgresql" or (kind == "sqlite" and not math.isnan(value))


def _rows(kind: str, values: list[tuple[float | None, float | None]], version: int) -> list[dict]:
    return [
        {
            "id": i,
            "version": version,
            "d": d if _holds(kind, d) else None,
            "r": r if _holds(kind, r) else None,
        }
        for i, (d, r) in enumerate(values, start=1)
    ]


def _write(url: str, kind: str, rows: list[dict], create: bool = False) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        if create:
            conn.execute(sa.text(DDL[kind]))
        else:
            conn.execute(sa.text("DELETE FROM floats"))
        conn.execute(
            sa.text("INSERT INTO floats (id, version, d, r) VALUES (:id, :version, :d, :r)"), rows
        )
    engine.dispose()


def _held(url: str) -> dict[int, tuple[Any, Any]]:
    """What a database holds, read as pipewarden reads it: {id: (d, r)}."""
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        shape = reflect(conn, "floats")
        assert shape is not None
        dialect = dialect_for(engine.dialect.name)
        columns = [dialect.read_expression(shape.table.c[c], shape.kinds[c]) for c in ("d", "r")]
        rows = conn.execute(sa.select(shape.table.c.id, *columns).order_by(shape.table.c.id))
        held = {int(i): (d, r) for i, d, r in rows}
    engine.dispose()
    return held


def _same(left: Any, right: Any, single: bool) -> bool:
    """Equal as the column's floats: NaN is NaN, bits otherwise (-0.0 and 0.0 are one)."""
    if left is None or right is None:
        return left is right
    if math.isnan(left) or math.isnan(right):
        return math.isnan(left) and math.isnan(right)
    fmt = "<f" if single else "<d"
    return struct.pack(fmt, left + 0.0) == struct.pack(fmt, right + 0.0)


def _assert_holds(warehouse_url: str, rows: list[dict], single: bool) -> None:
    """The warehouse holds the rows written to the source; `single`: the source's `r` holds
    float4 values (SQLite's REAL is a double)."""
    source, warehouse = {r["id"]: (r["d"], r["r"]) for r in rows}, _held(warehouse_url)
    assert source.keys() == warehouse.keys()
    wrong = {
        i: (source[i], warehouse[i])
        for i in source
        if not _same(source[i][0], warehouse[i][0], False)
        or not _same(source[i][1], warehouse[i][1], single)
    }
    assert wrong == {}, "source value, warehouse value by id"


def _config(source_url: str, warehouse_url: str) -> PipewardenConfig:
    return parse_config(
        {
            "warehouse": {"url": warehouse_url},
            "sources": {"src": {"url": source_url}},
            "tables": {"floats": {"source": "src", "primary_key": ["id"], "cursor": "version"}},
        },
        Path("test.yaml"),
    )


TAMPER = {
    "postgresql": [
        "UPDATE floats SET d = NULL WHERE d = 'NaN'",
        "UPDATE floats SET r = NULL WHERE r = 'NaN'",
        "UPDATE floats SET d = 0.5, r = 0.5 WHERE id IN (2, 9)",
        "UPDATE floats SET d = d * 2, r = r * 2 WHERE id IN (5, 10)",
    ],
    "sqlite": [
        "UPDATE floats SET d = NULL WHERE d = 'NaN'",
        "UPDATE floats SET r = NULL WHERE r = 'NaN'",
        "UPDATE floats SET d = 0.5, r = 0.5 WHERE id IN (2, 9)",
        "UPDATE floats SET d = d * 2, r = r * 2 WHERE id IN (5, 10)",
    ],
}


@pytest.mark.parametrize(("source_kind", "warehouse_kind"), PAIRS)
def test_floats_round_trip_through_sync_reconcile_and_repair(make_url, source_kind, warehouse_kind):
    source_url, warehouse_url = make_url(source_kind, "src"), make_url(warehouse_kind, "wh")
    rows = _rows(source_kind, VALUES, 1)
    _write(source_url, source_kind, rows, create=True)
    config = _config(source_url, warehouse_url)
    single = source_kind != "sqlite"

    sync_table(config, "floats")  # first load
    _assert_holds(warehouse_url, rows, single)
    if (source_kind, warehouse_kind) == ("postgresql", "postgresql"):
        assert math.copysign(1, _held(warehouse_url)[4][0]) == -1  # -0.0 keeps its sign
    assert diff_table(config, "floats").differences == 0

    # A merge: every row takes the next row's values (NaN to a number, NULL to NaN, …).
    shifted = VALUES[1:] + VALUES[:1]
    rows = _rows(source_kind, shifted, 2)
    _write(source_url, source_kind, rows)
    sync_table(config, "floats")
    _assert_holds(warehouse_url, rows, single)
    assert diff_table(config, "floats").differences == 0

    # Tampered: NaN lost to NULL, values changed; a repair restores them, a sync keeps them.
    execute(warehouse_url, *TAMPER[warehouse_kind])
    report = reconcile_table(config, "floats", ReconcileOptions(repair=True))
    assert report.diff.differences > 0 and report.remaining == 0
    _assert_holds(warehouse_url, rows, single)
    rows = _rows(source_kind, shifted, 3)
    _write(source_url, source_kind, rows)  # re-read, same values
    sync_table(config, "floats")
    _assert_holds(warehouse_url, rows, single)
    assert diff_table(config, "floats").differences == 0


def test_float4_values_are_not_changed_by_every_reconciliation(make_url):
    """PostgreSQL `real` 0.1 is the double 0.10000000149011612: compared as float32, a copy
    is equal and a repair has nothing to do."""
    source_url, warehouse_url = make_url("postgresql", "src"), make_url("postgresql", "wh")
    rows = _rows("postgresql", [(1.0, r) for r in (0.1, 1e-30, 3.3, FLT_MAX, FLT_TRUE_MIN)], 1)
    _write(source_url, "postgresql", rows, create=True)
    config = _config(source_url, warehouse_url)
    sync_table(config, "floats")

    assert diff_table(config, "floats").differences == 0
    report = reconcile_table(config, "floats", ReconcileOptions(repair=True))
    assert report.diff.differences == 0 and report.repair.repaired == 0
    _assert_holds(warehouse_url, rows, single=True)
