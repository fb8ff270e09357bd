"""What is compared: both sides' tables, the columns, and how each column is canonicalized."""

from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from pipewarden.config import PipewardenConfig, TableConfig
from pipewarden.db.engines import cached_engine, connect
from pipewarden.dialects import Dialect, dialect_of
from pipewarden.dialects.canonical import ColumnSpec
from pipewarden.dialects.kinds import ColumnKind
from pipewarden.records.column_kinds import read_kinds
from pipewarden.records.tables import column_kinds as column_kinds_table
from pipewarden.sync.schema import Drift, TableShape, compare, reflect, refuse_breaking_drift

#: Kinds whose fetched Python values are equal across drivers, so keys can be matched as is.
_PORTABLE_KEY_KINDS = ("integer", "text")


class ReconcileError(RuntimeError):
    """A reconciliation that cannot run; the message says which table and why."""


@dataclass
class Side:
    """One side of the comparison: its table and its dialect, which canonicalizes its rows."""

    role: str
    engine: Engine
    table: sa.Table
    dialect: Dialect
    specs: dict[str, ColumnSpec]
    key: list[str]
    sql_columns: list[str]
    python_columns: list[str]
    #: Both sides are this engine: use its native hash instead of md5.
    native_hash: bool = False
    #: The engines differ: compare and order text keys by code point (see `ordered_key`).
    binary_keys: bool = False
    #: The server's version number (PostgreSQL's `server_version_num` form), 0 if unknown.
    server_version: int = 0

    def hash64(self, text: Any) -> Any:
        native = self.dialect.native_hash64(text) if self.native_hash else None
        return self.dialect.hash64(text) if native is None else native

    @property
    def key_columns(self) -> list[Any]:
        """Key columns as compared and ordered: text by code point on every engine."""
        return [self.ordered_key(self.table.c[k], k) for k in self.key]

    def ordered_key(self, column: Any, name: str) -> Any:
        # Bucket boundaries from one engine must sort the same way on the other, whatever each
        # column's collation (MariaDB's default is case-insensitive): compare bytes.
        collation = self.dialect.binary_collation
        if self.binary_keys and collation and self.specs[name].kind.kind == "text":
            return sa.collate(column, collation)
        return column

    def row_hash(self) -> Any:
        """64-bit hash of the canonical text of the SQL-hashed columns."""
        columns = [self.table.c[n] for n in self.sql_columns]
        specs = [self.specs[n] for n in self.sql_columns]
        if self.native_hash:
            native = self.dialect.native_row_hash(self.server_version, columns, specs)
            if native is not None:
                return native
        return self.hash64(self.dialect.row_text(columns, specs))

    def column_hash(self, name: str) -> Any:
        spec = self.specs[name]
        if self.native_hash:
            column = self.table.c[name]
            native = self.dialect.native_row_hash(self.server_version, [column], [spec])
            if native is not None:
                return native
        return self.hash64(self.dialect.part(self.table.c[name], spec))

    def python_values(self) -> list[Any]:
        return [
            self.dialect.read_expression(self.table.c[n], self.specs[n].kind).label(f"py_{i}")
            for i, n in enumerate(self.python_columns)
        ]


@dataclass
class TablePlan:
    """Both sides, the compared columns in order, and the key."""

    name: str
    source: Side
    target: Side
    key: list[str]
    columns: list[str]
    key_kinds: list[ColumnKind]
    cursor: str | None
    python_columns: list[str] = field(default_factory=list)

    @property
    def portable_keys(self) -> bool:
        return all(k.kind in _PORTABLE_KEY_KINDS for k in self.key_kinds)

    @property
    def unsigned(self) -> bool:
        """The engines differ, and may disagree on the sign of a 64-bit hash: compare hashes
        modulo 2^64."""
        return self.source.dialect.name != self.target.dialect.name

    def sides(self) -> tuple[Side, Side]:
        return self.source, self.target


def plan_table(
    config: PipewardenConfig,
    name: str,
    columns: list[str] | None = None,
    keys_only: bool = False,
    native_hash: bool = True,
) -> TablePlan:
    """Reflect both tables and decide, per column, how it is canonicalized on each side."""
    table_config = config.table(name)
    engines = (
        cached_engine(config.sources[table_config.source].url, config.timeouts.engine()),
        cached_engine(config.warehouse.url, config.timeouts.engine()),
    )
    source, target, known = _reflect(config, table_config, *engines)
    compared = _compared_columns(table_config, source, target, columns, keys_only)
    _refuse_retyped(table_config, source, target, known, compared)
    key = list(table_config.primary_key)
    dialects = (_reconciling(engines[0]), _reconciling(engines[1]))
    python_columns = [
        n for n in compared if n not in key and _needs_python(source.kinds[n], *dialects)
    ]
    same_engine = dialects[0].name == dialects[1].name
    # A native hash must be the same function on both sides: the older server decides.
    version = min(_version(engine, dialect) for engine, dialect in zip(engines, dialects))
    sides = [
        Side(
            role=role,
            engine=engine,
            table=shape.table,
            dialect=dialect,
            specs={n: _spec(n, source, target, shape, known, dialects) for n in compared},
            key=key,
            sql_columns=[n for n in compared if n not in python_columns],
            python_columns=python_columns,
            native_hash=native_hash and same_engine,
            binary_keys=not same_engine,
            server_version=version,
        )
        for role, engine, shape, dialect in zip(
            ("source", "target"), engines, (source, target), dialects
        )
    ]
    return TablePlan(
        name=name,
        source=sides[0],
        target=sides[1],
        key=key,
        columns=compared,
        key_kinds=[source.kinds[k] for k in key],
        cursor=table_config.cursor if table_config.cursor in compared else None,
        python_columns=python_columns,
    )


def _reflect(
    config: PipewardenConfig,
    table_config: TableConfig,
    source_engine: Engine,
    target_engine: Engine,
) -> tuple[TableShape, TableShape, dict[str, ColumnKind]]:
    """Both tables as their databases have them, and the kinds the sync recorded for the
    warehouse's columns."""
    with connect(source_engine) as src:
        source = reflect(src, table_config.source_table, table_config.source_schema)
    with connect(target_engine) as wh:
        target = reflect(wh, table_config.target_table, config.warehouse.schema_name)
        known = _known_kinds(wh, table_config.name)
    name = table_config.name
    if source is None:
        raise ReconcileError(f"table {name}: source table {table_config.source_table!r} not found")
    if target is None:
        raise ReconcileError(
            f"table {name}: warehouse table {table_config.target_table!r} not found (sync first)"
        )
    return source, target, known


def _reconciling(engine: Engine) -> Dialect:
    dialect = dialect_of(engine)
    if not dialect.reconciles:
        raise ValueError(f"reconciliation does not support {engine.dialect.name!r} yet")
    return dialect


def _version(engine: Engine, dialect: Dialect) -> int:
    with connect(engine) as conn:
        return dialect.server_version(conn)


def _known_kinds(conn: sa.Connection, table_name: str) -> dict[str, ColumnKind]:
    if not sa.inspect(conn).has_table(column_kinds_table.name):
        return {}
    return read_kinds(conn, table_name)


def _compared_columns(
    table_config: TableConfig,
    source: TableShape,
    target: TableShape,
    columns: list[str] | None,
    keys_only: bool,
) -> list[str]:
    key = list(table_config.primary_key)
    missing_key = [k for k in key if k not in source.kinds or k not in target.kinds]
    if missing_key:
        raise ReconcileError(
            f"table {table_config.name}: key column(s) {', '.join(missing_key)} missing on a side"
        )
    if keys_only:
        return key
    shared = [n for n in source.kinds if n in target.kinds]
    if columns:
        unknown = [c for c in columns if c not in shared]
        if unknown:
            raise ReconcileError(
                f"table {table_config.name}: --columns {', '.join(unknown)} not on both sides "
                f"(shared: {', '.join(shared)})"
            )
        shared = [n for n in shared if n in columns or n in key]
    return key + [n for n in shared if n not in key]


def _refuse_retyped(
    table_config: TableConfig,
    source: TableShape,
    target: TableShape,
    known: dict[str, ColumnKind],
    compared: list[str],
) -> None:
    """A compared column whose type changed in the source is named as the sync names it: its
    two sides cannot be put in one canonical form (the SQL would fail, or call every row
    changed)."""
    loaded = TableShape(target.table, {n: known.get(n, k) for n, k in target.kinds.items()})
    drift = compare(source, loaded)
    # MariaDB's BOOLEAN is TINYINT(1): compared with a boolean column as 0/1 (see `_spec`).
    retyped = [r for r in drift.retyped if {r[1].kind, r[2].kind} != {"integer", "boolean"}]
    drift = Drift(retyped=[r for r in retyped if r[0] in compared])
    refuse_breaking_drift(
        drift,
        table_config.source_table,
        f"Nothing was compared; migrate the warehouse column(s) and run `pipewarden sync "
        f"{table_config.name} --full-refresh`, or leave them out with --columns.",
    )


def _needs_python(kind: ColumnKind, source: Dialect, target: Dialect) -> bool:
    if kind.kind == "json":
        return source.json_family is None or source.json_family != target.json_family
    if kind.kind == "float":
        return not (source.float_in_sql and target.float_in_sql and source.name == target.name)
    return False


def _spec(
    name: str,
    source: TableShape,
    target: TableShape,
    own: TableShape,
    known: dict[str, ColumnKind],
    dialects: tuple[Dialect, Dialect],
) -> ColumnSpec:
    """The source's kind gives the rules; precision is the coarser of the two columns'."""
    kind = source.kinds[name]
    target_kind = known.get(name, target.kinds[name])
    if {kind.kind, target_kind.kind} == {"integer", "boolean"}:
        kind = ColumnKind("boolean")  # MariaDB's BOOLEAN is TINYINT(1): 0/1 on both sides
    precision = 6
    if kind.kind in ("timestamp", "time"):
        precision = min(
            dialect.canonical_fraction_digits(shape.table.c[name].type)
            for dialect, shape in zip(dialects, (source, target))
        )
        precision = 0 if precision < 3 else 3 if precision < 6 else 6
    own_type = own.table.c[name].type
    own_kind = target_kind if own is target else kind
    return ColumnSpec(
        name=name,
        kind=kind,
        precision=precision,
        own_scale=own_kind.scale if own_kind.kind == "decimal" else None,
        own_timezone=bool(getattr(own_type, "timezone", False)),
    )
