"""Source and target table shapes: creating the target, and noticing when the source changed."""

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from pipewarden.config import PipewardenConfig, TableConfig
from pipewarden.db.engines import cached_engine, connect
from pipewarden.dialects import Dialect, dialect_for
from pipewarden.dialects.kinds import ColumnKind, compatible


class SchemaDriftError(RuntimeError):
    """The source lost a column or changed a type: loading would lose or corrupt data."""


@dataclass
class TableShape:
    """A reflected table with the portable kind of every column."""

    table: sa.Table
    kinds: dict[str, ColumnKind]

    @property
    def columns(self) -> list[str]:
        return list(self.kinds)


@dataclass
class Drift:
    """How the source differs from the target."""

    added: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    retyped: list[tuple[str, ColumnKind, ColumnKind]] = field(default_factory=list)


def reflect(conn: sa.Connection, name: str, schema: str | None = None) -> TableShape | None:
    """The table's columns and primary key as the database has them now, or None if it does
    not exist.

    Only those two: the sync (and the source audit and quarantine replay, which share this)
    reads nothing else of a table. SQLAlchemy's
    whole-table reflection (`autoload_with`) also reads its indexes, constraints, comment and
    options, and reflects every table its foreign keys point to: on PostgreSQL 11 catalog
    queries instead of 2 for `orders`, about 20 ms of a first run per table.
    """
    inspector = sa.inspect(conn)
    try:
        columns = inspector.get_columns(name, schema=schema)
    except sa.exc.NoSuchTableError:
        return None
    key = set(inspector.get_pk_constraint(name, schema=schema).get("constrained_columns") or [])
    table = sa.Table(
        name,
        sa.MetaData(),
        *(
            sa.Column(c["name"], c["type"], nullable=c["nullable"], primary_key=c["name"] in key)
            for c in columns
        ),
        schema=schema,
    )
    return TableShape(table, dialect_for(conn.dialect.name).table_kinds(conn, table))


def source_kinds(config: PipewardenConfig, table: TableConfig) -> dict[str, ColumnKind] | None:
    """A table's source columns and their kinds, read from the source now (None: no table).

    What `checks.validation.schema_gate.verify_schema_refs` judges a table's checks against.
    """
    timeouts = config.timeouts.engine()
    with connect(cached_engine(config.sources[table.source].url, timeouts)) as conn:
        shape = reflect(conn, table.source_table, table.source_schema)
    return None if shape is None else shape.kinds


_shapes: dict[tuple[str, str | None, str], tuple[tuple[Any, ...], TableShape]] = {}
_shapes_lock = threading.Lock()


def fingerprint(
    conn: sa.Connection, name: str, schema: str | None = None
) -> tuple[Any, ...] | None:
    """Column names and driver type codes from an empty SELECT: one cheap round trip."""
    query = sa.select(sa.text("*")).select_from(sa.table(name, schema=schema)).where(sa.false())
    inside = conn.in_transaction()
    try:
        with conn.begin_nested() if inside else _no_transaction():
            result = conn.execute(query)
            description = result.cursor.description if result.cursor else None
            result.close()
    except sa.exc.DBAPIError:
        if not inside:
            conn.rollback()
        return None
    return tuple(tuple(d[:2]) + tuple(d[4:6]) for d in description or ())


def reflect_cached(conn: sa.Connection, name: str, schema: str | None = None) -> TableShape | None:
    """`reflect`, skipped while the table's fingerprint is unchanged (idle runs stay cheap)."""
    key = (conn.engine.url.render_as_string(hide_password=False), schema, name)
    mark = fingerprint(conn, name, schema)
    if mark is None:
        return reflect(conn, name, schema)
    with _shapes_lock:
        cached = _shapes.get(key)
    if cached is not None and cached[0] == mark:
        return cached[1]
    shape = reflect(conn, name, schema)
    if shape is not None:
        with _shapes_lock:
            _shapes[key] = (mark, shape)
    return shape


@contextmanager
def _no_transaction() -> Iterator[None]:
    yield


def create_target(
    conn: sa.Connection,
    dialect: Dialect,
    name: str,
    schema: str | None,
    source: TableShape,
    key: list[str],
) -> TableShape:
    """Create the warehouse table from the source's kinds, with the configured primary key."""
    missing = [k for k in key if k not in source.kinds]
    if missing:
        raise SchemaDriftError(
            f"primary key column(s) {', '.join(missing)} not in source table {source.table.name}"
        )
    columns = [
        sa.Column(
            n,
            dialect.column_type(kind),
            primary_key=n in key,
            nullable=n not in key,
            autoincrement=False,
        )
        for n, kind in source.kinds.items()
    ]
    table = sa.Table(name, sa.MetaData(), *columns, schema=schema)
    table.create(conn)
    return TableShape(table, dict(source.kinds))


def compare(source: TableShape, target: TableShape) -> Drift:
    drift = Drift()
    for name, kind in source.kinds.items():
        if name not in target.kinds:
            drift.added.append(name)
        elif not compatible(kind, target.kinds[name]):
            drift.retyped.append((name, kind, target.kinds[name]))
    drift.dropped = [n for n in target.kinds if n not in source.kinds]
    return drift


def refuse_breaking_drift(
    drift: Drift,
    source_name: str,
    outcome: str | None = None,
    *,
    target: sa.Table | None = None,
    sql: sa.Dialect | None = None,
) -> None:
    """Fail before anything loads (or is compared) when the source dropped or retyped a column.

    `outcome` says what did not happen and what to do; by default, for a sync, nothing was
    loaded, and for a dropped column the message gives the statement that lets the table load
    again (the warehouse table without it, quoted for the warehouse's dialect `sql`).
    """
    problems = [f"column {n!r} was dropped from the source" for n in drift.dropped]
    problems += [
        f"column {n!r} changed type from {_kind(t)} in the warehouse to {_kind(s)} in the source"
        for n, s, t in drift.retyped
    ]
    if not problems:
        return
    if outcome is None:
        steps = []
        if drift.dropped and target is not None and sql is not None:
            quote = sql.identifier_preparer
            drops = "; ".join(
                f"ALTER TABLE {quote.format_table(target)} DROP COLUMN {quote.quote(n)}"
                for n in drift.dropped
            )
            steps.append(
                f"to load without the dropped column, remove it from the warehouse table "
                f"(its values there are lost): {drops}; then sync again. Or restore it in the "
                "source"
            )
        if drift.retyped:
            steps.append("change the warehouse column to the source's type, then sync again")
        outcome = (
            "Nothing was loaded; "
            + ("; ".join(steps) if steps else "change the warehouse table, then sync again")
            + "."
        )
    raise SchemaDriftError(f"source table {source_name}: " + "; ".join(problems) + ". " + outcome)


def refuse_uncarried_types(dialect: Dialect, source: TableShape, table_name: str) -> None:
    """Fail before anything loads when a source column has a type pipewarden cannot carry
    exactly, naming each such column and what to do."""
    problems = [
        f"column {column.name!r} ({_type_name(column.type)}): {reason}"
        for column in source.table.columns
        if (reason := dialect.refusal(column.type))
    ]
    if problems:
        raise SchemaDriftError(
            f"table {table_name}: source table {source.table.name} has columns pipewarden "
            f"cannot carry exactly: {'; '.join(problems)}. Nothing was loaded."
        )


def _type_name(type_: Any) -> str:
    return "unknown type" if isinstance(type_, sa.types.NullType) else str(type_)


def add_columns(
    conn: sa.Connection, dialect: Dialect, target: TableShape, source: TableShape, names: list[str]
) -> TableShape:
    """ALTER TABLE … ADD COLUMN for columns new in the source; identifiers quoted by SQLAlchemy."""
    preparer = conn.dialect.identifier_preparer
    for name in names:
        type_sql = dialect.column_type(source.kinds[name]).compile(dialect=conn.dialect)
        conn.execute(
            sa.text(
                f"ALTER TABLE {preparer.format_table(target.table)} "
                f"ADD COLUMN {preparer.quote(name)} {type_sql}"
            )
        )
    refreshed = reflect(conn, target.table.name, target.table.schema)
    assert refreshed is not None
    # Keep the source's kinds: the reflected warehouse type may be coarser (SQLite text).
    return TableShape(refreshed.table, {**target.kinds, **{n: source.kinds[n] for n in names}})


def _kind(kind: ColumnKind) -> str:
    extra = [str(v) for v in (kind.precision, kind.scale) if v is not None]
    return kind.kind + (f"({','.join(extra)})" if extra else "")


def staging_table(dialect: Dialect, target: TableShape, columns: list[str], suffix: str) -> Any:
    """A temporary table shaped like the batch, named per run so concurrent runs never share."""
    cols = [sa.Column(n, dialect.staging_type(target.kinds[n])) for n in columns]
    return sa.Table(f"pw_stage_{suffix}", sa.MetaData(), *cols, prefixes=["TEMPORARY"])
