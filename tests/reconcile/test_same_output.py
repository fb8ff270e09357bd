"""A dry run's JSON output and its recorded diffs are those of the implementation that held one
Python object per difference (kept in `golden/`, written by that implementation): missing, extra
and changed rows, single and composite keys, NUL-containing text, NULLs, timestamps and
decimals, held rows, in bucket and streaming mode and across many chunks.

Integer keys are compared byte for byte. Where the key holds text, the order of the differences
was never fixed (it follows the random key sample and Python's string hashing), so there they
are compared as sets. The bucket counts follow the random key sample, so they are left out.
`PIPEWARDEN_WRITE_GOLDEN=1` rewrites the files: only for a deliberate change of output.
"""

import json
import os
import re
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from pipewarden.config.load import parse_config
from pipewarden.reconcile.run import ReconcileOptions, reconcile_table
from pipewarden.records.reconcile_runs import reconcile_diffs

GOLDEN = Path(__file__).parent / "golden"
ROWS = 300
#: Small buckets and chunks: the differences are found over many chunks; `stream` skips the
#: bucket pass.
TINY = {"rows_per_bucket": 4, "probe_every": 2, "probe_run": 2, "chunk_rows": 16}
MODES = {"default": {}, "buckets": TINY, "stream": {**TINY, "stream_share": 0.0}}


def _table(key: str) -> sa.Table:
    columns = [sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False)]
    if key == "int-text":
        columns.append(sa.Column("code", sa.String(20), primary_key=True))
    if key == "int-int":
        columns.append(sa.Column("part", sa.Integer, primary_key=True, autoincrement=False))
    return sa.Table(
        "t",
        sa.MetaData(),
        *columns,
        sa.Column("note", sa.Text),
        sa.Column("amount", sa.Numeric(20, 4)),
        sa.Column("at", sa.DateTime),
        sa.Column("v", sa.Integer),
    )


def _row(i: int, key: str, nul: bool) -> dict[str, Any]:
    note = None if i % 5 == 0 else f"note {i}" + ("\x00tail" if nul and i % 7 == 3 else "")
    row = {
        "id": i,
        "note": note,
        "amount": None if i % 11 == 0 else Decimal(i * 37 % 1000) / 100 - Decimal("4.5"),
        "at": None if i % 13 == 0 else datetime(2024, 1, 1, i % 24, i % 60, i % 60, i * 1000),
        "v": i,
    }
    if key == "int-text":
        row["code"] = ("a", "b\tc", "d'e")[i % 3]
    if key == "int-int":
        row["part"] = -(i % 3)
    return row


def _fill(url: str, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        table.create(conn)
        conn.execute(table.insert(), rows)
    engine.dispose()


def _tables(source: str, warehouse: str, key: str, nul: bool) -> None:
    """The warehouse lacks every 9th row, has a row after every 10th the source lacks, and
    differs in a value (or a NULL) every 4th."""
    table = _table(key)
    rows = [_row(i, key, nul) for i in range(0, 2 * ROWS, 2)]
    copy = []
    for row in rows:
        i = row["id"]
        if i % 9 == 0:
            continue
        changed = dict(row)  # a warehouse holds no NUL (the sync refuses them): a difference
        if changed["note"] and "\x00" in changed["note"]:
            changed["note"] = changed["note"].replace("\x00", "")
        if i % 4 == 0:
            changed["note"] = None if i % 8 == 0 else f"other {i}"
        if i % 6 == 0:
            changed["amount"] = Decimal("0.0001")
        if i % 10 == 0:
            changed["at"] = None
        copy.append(changed)
        if i % 10 == 2:
            copy.append({**_row(i + 1, key, False), "note": f"extra {i}"})
    _fill(source, table, rows)
    _fill(warehouse, table, copy)


def _recorded(url: str, run_id: str) -> list[list[Any]]:
    engine = sa.create_engine(url)
    d = reconcile_diffs.c
    query = (
        sa.select(d.diff, d.key_value, d.columns, d.source_hash, d.target_hash)
        .where(d.run_id == run_id)
        .order_by(d.id)
    )
    with engine.connect() as conn:
        rows = [list(r) for r in conn.execute(query)]
    engine.dispose()
    return rows


def _unordered(got: dict[str, Any]) -> dict[str, Any]:
    """The output with its lists of differences (and the recorded rows) sorted."""
    data = json.loads(got["json"].replace('"TIMINGS"', "{}"))
    for name in ("missing", "extra", "changed", "held"):
        data[name] = sorted(data[name], key=json.dumps)
    return {"json": data, "recorded": sorted(got["recorded"], key=json.dumps)}


CASES = [
    ("sqlite", "sqlite", "int-text", True),
    ("sqlite", "sqlite", "int", True),
    ("postgresql", "postgresql", "int", False),
    ("postgresql", "postgresql", "int-int", False),
    ("mariadb", "postgresql", "int-text", True),
    ("mariadb", "postgresql", "int", True),
]


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize(("source_kind", "warehouse_kind", "key", "nul"), CASES)
def test_json_output_and_recorded_diffs_are_unchanged(
    make_url, source_kind, warehouse_kind, key, nul, mode
):
    source, warehouse = make_url(source_kind, "src"), make_url(warehouse_kind, "wh")
    _tables(source, warehouse, key, nul)
    config = parse_config(
        {
            "warehouse": {"url": warehouse},
            "sources": {"src": {"url": source}},
            "tables": {
                "t": {
                    "source": "src",
                    "primary_key": _table(key).primary_key.columns.keys(),
                    "cursor": "v",
                }
            },
        },
        Path("t.yaml"),
    )

    report = reconcile_table(config, "t", ReconcileOptions(**MODES[mode]))

    output = report.to_json()
    found = json.loads(output)
    assert found["counts"]["missing"] and found["counts"]["extra"] and found["counts"]["changed"]
    run_id = found["run_id"]
    timings = json.dumps(found["timings"])
    got = {
        "json": re.sub(
            r'"buckets(_differing)?": \d+',
            r'"buckets\1": "N"',
            output.replace(run_id, "RUN").replace(timings, '"TIMINGS"'),
        ),
        "recorded": _recorded(warehouse, run_id),
    }
    path = GOLDEN / f"{source_kind}-{warehouse_kind}-{key}-{mode}.json"
    if os.environ.get("PIPEWARDEN_WRITE_GOLDEN"):
        path.write_text(json.dumps(got, indent=1) + "\n")
    expected = json.loads(path.read_text())
    if key == "int-text":
        assert _unordered(got) == _unordered(expected)
    else:
        assert got == expected
