"""`Dialect.append`: a frame's rows added to a table exactly, in the caller's transaction."""

from collections.abc import Callable
from datetime import UTC, datetime

import polars as pl
import pytest
import sqlalchemy as sa

from pipewarden.db.engines import make_engine
from pipewarden.dialects import dialect_for

TEXTS = ["a,b", 'say "hi"', "line\nbreak\r\n", "é ✓ \\N", "", None]
AT = datetime(2025, 3, 1, 12, 30, 15, tzinfo=UTC)


def _table(binary: bool) -> sa.Table:
    columns = [
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("text", sa.Text),
        sa.Column("n", sa.BigInteger),
        sa.Column("at", sa.DateTime(timezone=True)),
    ]
    if binary:  # CSV cannot carry it: PostgreSQL takes the statement path
        columns.append(sa.Column("data", sa.LargeBinary))
    return sa.Table("appended", sa.MetaData(), *columns)


@pytest.mark.parametrize("binary", [False, True], ids=["csv", "binary"])
@pytest.mark.parametrize("kind", ["postgresql", "mariadb", "sqlite"])
def test_append_keeps_every_value_and_the_transaction(
    make_url: Callable[[str, str], str], kind: str, binary: bool
) -> None:
    engine = make_engine(make_url(kind, "pwappend"))
    table = _table(binary)
    table.create(engine)
    frame = pl.DataFrame(
        {
            "text": TEXTS,
            "n": [1, None, -(2**62), 0, 5, 6],
            "at": [AT, None, AT, AT, AT, AT],
        },
        schema={"text": pl.String, "n": pl.Int64, "at": pl.Datetime("us", "UTC")},
    )
    if binary:
        frame = frame.with_columns(pl.Series("data", [b"\x00\xff", None, b"", b"x", b"y", b"z"]))
    dialect = dialect_for(engine.dialect.name)
    try:
        with engine.connect() as conn:
            with conn.begin() as txn:
                dialect.append(conn, table, frame)
                txn.rollback()
            assert conn.execute(sa.select(sa.func.count()).select_from(table)).scalar() == 0
            conn.rollback()
            with conn.begin():
                dialect.append(conn, table, frame)
                dialect.append(conn, table, frame.clear())
            rows = conn.execute(sa.select(table).order_by(table.c.id)).fetchall()
    finally:
        engine.dispose()

    assert [r.text for r in rows] == TEXTS
    assert [r.n for r in rows] == frame["n"].to_list()
    assert [r.at and r.at.replace(tzinfo=UTC) for r in rows] == frame["at"].to_list()
    if binary:
        assert [r.data for r in rows] == frame["data"].to_list()
