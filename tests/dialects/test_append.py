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


def test_copy_text_keeps_every_instant_whatever_its_zone_unit_or_column(postgres) -> None:
    """COPY text writes instants as UTC wall-clock time: a zone other than UTC, a unit other
    than microseconds, a naive (UTC) column and a date all arrive as the same values."""
    engine = make_engine(postgres.new("pwcopytime"))
    table = sa.Table(
        "instants",
        sa.MetaData(),
        sa.Column("aware", sa.DateTime(timezone=True)),
        sa.Column("paris", sa.DateTime(timezone=True)),
        sa.Column("millis", sa.DateTime(timezone=True)),
        sa.Column("wall", sa.DateTime(timezone=False)),
        sa.Column("day", sa.Date),
    )
    table.create(engine)
    moments = [
        datetime(2025, 3, 30, 0, 59, 59, 999999, tzinfo=UTC),
        datetime(1999, 12, 31, 23, 0, tzinfo=UTC),
    ]
    frame = pl.DataFrame(
        {
            "aware": moments,
            "paris": moments,
            "millis": [m.replace(microsecond=m.microsecond // 1000 * 1000) for m in moments],
            "wall": [m.replace(tzinfo=None) for m in moments],
            "day": [m.date() for m in moments],
        },
        schema={
            "aware": pl.Datetime("us", "UTC"),
            "paris": pl.Datetime("us", "UTC"),
            "millis": pl.Datetime("ms", "UTC"),
            "wall": pl.Datetime("us"),
            "day": pl.Date,
        },
    ).with_columns(pl.col("paris").dt.convert_time_zone("Europe/Paris"))
    try:
        with engine.begin() as conn:
            dialect_for("postgresql").append(conn, table, frame)
            rows = conn.execute(sa.select(table)).fetchall()
    finally:
        engine.dispose()

    assert [r.aware for r in rows] == moments
    assert [r.paris for r in rows] == moments
    assert [r.millis for r in rows] == frame["millis"].to_list()
    assert [r.wall for r in rows] == [m.replace(tzinfo=None) for m in moments]
    assert [r.day for r in rows] == [m.date() for m in moments]
