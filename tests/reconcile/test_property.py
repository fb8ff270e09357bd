"""Random tables and random mutations come back as exactly those mutations."""

import uuid
from decimal import Decimal

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipewarden.config.load import parse_config
from pipewarden.reconcile.diff import DiffOptions, diff_table

TEXT = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs",), exclude_characters="\x00"), max_size=12
)  # PostgreSQL text cannot hold NUL
ROW = st.fixed_dictionaries(
    {
        "name": st.none() | TEXT,
        "amount": st.none()
        | st.decimals(min_value=-(10**12), max_value=10**12, places=2, allow_nan=False),
        "flag": st.none() | st.booleans(),
    }
)


@st.composite
def tables_and_mutations(draw):  # type: ignore[no-untyped-def]
    keys = draw(st.lists(st.integers(-(10**9), 10**9), min_size=0, max_size=120, unique=True))
    rows = {k: draw(ROW) for k in keys}
    deleted = draw(st.sets(st.sampled_from(keys))) if keys else set()
    survivors = [k for k in keys if k not in deleted]
    edited = draw(st.sets(st.sampled_from(survivors))) if survivors else set()
    edits = {}
    for k in edited:
        new = draw(ROW)
        if new != rows[k]:
            edits[k] = new
    added = draw(st.lists(st.integers(-(10**9), 10**9), max_size=8, unique=True))
    added = [k for k in added if k not in rows]
    extras = {k: draw(ROW) for k in added}
    return rows, deleted, edits, extras


def _table(name: str) -> sa.Table:
    return sa.Table(
        name,
        sa.MetaData(),
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("name", sa.Text),
        sa.Column("amount", sa.Numeric(16, 2)),
        sa.Column("flag", sa.Boolean),
    )


def _fill(engine: sa.Engine, table: sa.Table, rows: dict[int, dict]) -> None:
    with engine.begin() as conn:
        table.create(conn)
        if rows:
            conn.execute(table.insert(), [{"id": k, **v} for k, v in rows.items()])


def _config(source_url: str, warehouse_url: str, name: str):  # type: ignore[no-untyped-def]
    return parse_config(
        {
            "warehouse": {"url": warehouse_url},
            "sources": {"src": {"url": source_url}},
            "tables": {name: {"source": "src", "primary_key": "id", "cursor": "id"}},
        },
        "t.yaml",  # type: ignore[arg-type]
    )


def _run(source_url: str, warehouse_url: str, case, options: DiffOptions) -> None:  # type: ignore[no-untyped-def]
    rows, deleted, edits, extras = case
    name = "t_" + uuid.uuid4().hex[:8]
    table = _table(name)
    source = sa.create_engine(source_url)
    target = sa.create_engine(warehouse_url)
    _fill(source, table, rows)
    copy = {k: v for k, v in rows.items() if k not in deleted}
    copy.update(edits)
    copy.update(extras)
    _fill(target, table, copy)
    source.dispose()
    target.dispose()

    result = diff_table(_config(source_url, warehouse_url, name), name, options)

    assert sorted(d.key[0] for d in result.missing) == sorted(deleted)
    assert sorted(d.key[0] for d in result.extra) == sorted(extras)
    changed = {d.key[0]: set(d.columns) for d in result.changed}
    expected = {k: {c for c in v if _differs(v[c], rows[k][c])} for k, v in edits.items()}
    assert changed == expected
    assert result.complete


def _differs(left, right) -> bool:  # type: ignore[no-untyped-def]
    if isinstance(left, Decimal) and isinstance(right, Decimal):
        return left != right
    return left != right or type(left) is not type(right)


#: Small buckets so a table of a hundred rows has many, plus the probe and streaming paths.
SMALL = [
    DiffOptions(rows_per_bucket=4, probe_every=2, probe_run=2),
    DiffOptions(rows_per_bucket=4, probe_every=2, probe_run=2, stream_share=0.0),
    DiffOptions(),
]


@pytest.mark.parametrize("options", SMALL, ids=["buckets", "stream", "defaults"])
@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(case=tables_and_mutations())
def test_sqlite_mutations_come_back_exactly(sqlite_url, options, case):
    _run(sqlite_url("src"), sqlite_url("wh"), case, options)


@settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(case=tables_and_mutations())
def test_postgres_mutations_come_back_exactly(postgres, case):
    urls = getattr(postgres, "_pw_pair", None)
    if urls is None:
        urls = postgres._pw_pair = (postgres.new("src"), postgres.new("wh"))
    _run(*urls, case, SMALL[0])
