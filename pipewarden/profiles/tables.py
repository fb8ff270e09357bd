"""The profile table (one row per customer), its rows as read, and the record of its builds."""

from collections.abc import Iterator
from functools import lru_cache
from typing import Any

import sqlalchemy as sa

from pipewarden.config import PipewardenConfig

BUILDS_TABLE = "pipewarden_profile_builds"
#: Customers read (or cached) per statement.
CHUNK = 1000
#: Percent of a profile table's pages filled by a full build (PostgreSQL).
FILLFACTOR = 90


def profile_table(
    name: str, schema: str | None, consent_type: sa.types.TypeEngine[object] | None
) -> sa.Table:
    """The profile table: the keys are text, as the streams' subjects and the API's paths, of
    any length (a bounded column would need a cast that cuts a longer key short)."""
    columns: list[sa.Column[Any]] = [
        sa.Column("customer_id", sa.String(), primary_key=True),
        sa.Column("frequency", sa.Integer, nullable=False),
        sa.Column("monetary", sa.Numeric(18, 2, asdecimal=False), nullable=False),
        sa.Column("last_order_at", sa.DateTime(timezone=True)),
        sa.Column("r", sa.Integer),
        sa.Column("f", sa.Integer),
        sa.Column("m", sa.Integer),
        sa.Column("segment", sa.String(100)),
        sa.Column("cart_event_type", sa.String(200)),
        sa.Column("cart_payload", sa.Text),
        sa.Column("cart_updated_at", sa.DateTime(timezone=True)),
    ]
    if consent_type is not None:
        columns.append(sa.Column("consent", consent_type))
    # Room left on each page: an incremental build's rescore writes only r, f, m and segment,
    # which no index holds, so PostgreSQL updates those rows in place (HOT), without an entry
    # in each of the four indexes.
    return sa.Table(
        name, sa.MetaData(schema=schema), *columns, postgresql_with={"fillfactor": FILLFACTOR}
    )


@lru_cache(maxsize=16)
def builds_table(schema: str | None) -> sa.Table:
    """One row per build: when, how, what it changed, how fresh its inputs were, its checks."""
    return sa.Table(
        BUILDS_TABLE,
        sa.MetaData(schema=schema),
        sa.Column("build_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("profile_table", sa.String(200), nullable=False),
        sa.Column("mode", sa.String(20), nullable=False),
        sa.Column("as_of", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
        #: The oldest of the inputs' newest rows: a profile is as fresh as that.
        sa.Column("data_as_of", sa.DateTime(timezone=True)),
        sa.Column("customers_changed", sa.Integer, nullable=False),
        sa.Column("profile_rows", sa.Integer, nullable=False),
        #: `ok`, or `failed` with the failed checks in `problems`.
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("problems", sa.Text),
    )


def profile_chunks(
    engine: sa.Engine, config: PipewardenConfig, customer_ids: list[str]
) -> Iterator[tuple[list[str], list[dict[str, Any]]]]:
    """`CHUNK` keys at a time, with the profile rows found for them (the table reflected
    once, not once a chunk)."""
    assert config.profiles is not None
    table = sa.Table(
        config.profiles.table,
        sa.MetaData(schema=config.warehouse.schema_name),
        autoload_with=engine,
    )
    with engine.connect() as conn:
        for start in range(0, len(customer_ids), CHUNK):
            chunk = customer_ids[start : start + CHUNK]
            query = sa.select(table).where(table.c.customer_id.in_(chunk))
            yield chunk, [dict(row) for row in conn.execute(query).mappings()]


def read_profiles(
    engine: sa.Engine, config: PipewardenConfig, customer_ids: list[str]
) -> Iterator[dict[str, Any]]:
    """The profile rows of these customers, read a chunk at a time."""
    for _, rows in profile_chunks(engine, config, customer_ids):
        yield from rows


def profile_indexes(profiles: sa.Table) -> list[sa.Index]:
    """An index per scored measure (customers who ever bought): the cuts move along them."""
    scored = profiles.c.last_order_at.is_not(None)
    return [
        sa.Index(
            f"ix_{profiles.name}_{measure}"[:63],
            profiles.c[measure],
            postgresql_where=scored,
            sqlite_where=scored,
        )
        for measure in ("last_order_at", "frequency", "monetary")
    ]
