"""The contract every dialect keeps, run against its real server by tests/dialects/test_<engine>.py.

Each engine's test file subclasses `DialectContract` and names its `kind`; the tests here hold
the engine to the Python reference (`pipewarden.dialects.canonical`), so engines that pass them
agree with one another: canonical text of every kind, segment checksums of equal data, keyset
predicates, the merge, a bulk load read back, and what a JSON column is.
"""

import bisect
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any

import polars as pl
import pytest
import sqlalchemy as sa

from pipewarden.db.engines import make_engine
from pipewarden.dialects import Dialect, dialect_for, dialect_of
from pipewarden.dialects.canonical import MASK64, ColumnSpec, md5_hash64, python_part
from pipewarden.dialects.kinds import ColumnKind
from pipewarden.sync.schema import reflect

AT = datetime(2024, 6, 30, 12, 34, 56, 789012, tzinfo=UTC)


@dataclass(frozen=True)
class Values:
    """Values of one kind, with the NULL and the edge cases of its canonical rule."""

    kind: ColumnKind
    values: list[Any]
    precision: int = 6


CANONICAL = {
    "integer": Values(ColumnKind("integer"), [0, -(2**62), 2**62, None]),
    "decimal": Values(
        ColumnKind("decimal", precision=12, scale=2),
        [Decimal("-0.00"), Decimal("1.5"), Decimal("-12345.67"), None],
    ),
    "float": Values(ColumnKind("float"), [0.1, -1.5e-10, 1e20, -0.0, None]),
    "text": Values(ColumnKind("text"), ["a|b", "\\N", "", "trailing ", "é ✓", None]),
    "boolean": Values(ColumnKind("boolean"), [True, False, None]),
    "date": Values(ColumnKind("date"), [date(1970, 1, 1), date(2024, 2, 29), None]),
    "timestamp": Values(
        ColumnKind("timestamp", timezone=True),
        [AT, datetime(1999, 12, 31, 23, 59, 59, tzinfo=UTC), AT.replace(microsecond=500), None],
    ),
    "timestamp-seconds": Values(
        ColumnKind("timestamp", timezone=True), [AT, AT.replace(microsecond=0), None], precision=0
    ),
    "time": Values(ColumnKind("time"), [time(0, 0), time(23, 59, 59), time(12, 30, 5), None]),
    "binary": Values(ColumnKind("binary"), [b"", b"\x00\xff", b"|", None]),
    "uuid": Values(ColumnKind("uuid"), ["A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11", None]),
    "json": Values(ColumnKind("json"), ['{"b": 1, "a": [1.0, null, "ü"]}', "[]", "{}", None]),
}

#: A row of every kind each engine canonicalizes in SQL, keyed by `id`.
ROW_KINDS = ["integer", "decimal", "text", "boolean", "date", "timestamp"]


def _rows() -> list[dict[str, Any]]:
    rows = []
    for i in range(1, 13):
        rows.append(
            {
                "id": i,
                "decimal": Decimal(i * 37 % 100) / 4 - 10,
                "text": None if i % 5 == 0 else f"name {i} | é",
                "boolean": i % 3 == 0,
                "date": date(2024, 1, i),
                "timestamp": AT.replace(day=i, microsecond=i * 1000),
            }
        )
    return rows


class DialectContract:
    """What every engine's dialect must do; `kind` names the engine (a `make_url` kind)."""

    kind: str

    @pytest.fixture
    def engine(self, make_url: Callable[[str, str], str]) -> Iterator[sa.Engine]:
        engine = make_engine(make_url(self.kind, "contract"))
        try:
            yield engine
        finally:
            engine.dispose()

    @pytest.fixture
    def dialect(self, engine: sa.Engine) -> Dialect:
        return dialect_of(engine)

    def test_is_found_through_the_registry(self, engine: sa.Engine, dialect: Dialect) -> None:
        assert dialect is dialect_for(engine.dialect.name)
        assert dialect.reconciles
        assert type(dialect) is not Dialect

    @pytest.mark.parametrize("case", list(CANONICAL), ids=list(CANONICAL))
    def test_canonical_text_is_the_python_reference(
        self, engine: sa.Engine, dialect: Dialect, case: str
    ) -> None:
        values = CANONICAL[case]
        if values.kind.kind == "float" and not dialect.float_in_sql:
            pytest.skip(f"{dialect.name} floats are canonicalized in Python (float_in_sql)")
        if values.kind.kind == "json" and dialect.json_family != "python":
            pytest.skip(f"{dialect.name} JSON is compared within its family or in Python")
        table = _create(engine, dialect, {"value": values.kind})
        _insert(engine, table, [{"id": i, "value": v} for i, v in enumerate(values.values)])
        spec = _spec(table.c.value, values.kind, values.precision)
        with engine.connect() as conn:
            dialect.prepare_hashing(conn)
            query = sa.select(dialect.part(table.c.value, spec)).order_by(table.c.id)
            texts = list(conn.execute(query).scalars())
        assert texts == [python_part(v, spec) for v in values.values]

    def test_sql_json_text_ignores_key_order_and_white_space(
        self, engine: sa.Engine, dialect: Dialect
    ) -> None:
        if dialect.json_family is None:
            pytest.skip(f"{dialect.name} JSON is canonicalized in Python")
        documents = ['{"a": 1, "b": [1, 2]}', '{ "b":[1,2],"a":1 }', '{"a": 1, "b": [2, 1]}']
        table = _create(engine, dialect, {"value": ColumnKind("json")})
        _insert(engine, table, [{"id": i, "value": d} for i, d in enumerate(documents)])
        spec = ColumnSpec("value", ColumnKind("json"))
        with engine.connect() as conn:
            dialect.prepare_hashing(conn)
            query = sa.select(dialect.part(table.c.value, spec)).order_by(table.c.id)
            first, reordered, changed = conn.execute(query).scalars()
        assert first == reordered != changed

    def test_bucket_checksums_are_the_reference_sums(
        self, engine: sa.Engine, dialect: Dialect
    ) -> None:
        """Every engine that passes this agrees with every other one on equal data."""
        kinds = {name: CANONICAL[name].kind for name in ROW_KINDS if name != "integer"}
        table = _create(engine, dialect, kinds)
        rows = _rows()
        _insert(engine, table, rows)
        columns = [table.c[n] for n in kinds]
        specs = [_spec(c, kinds[c.name], 6) for c in columns]
        boundaries = [(4,), (9,)]
        with engine.connect() as conn:
            dialect.prepare_hashing(conn)
            bucket = dialect.bucket_number(conn, [table.c.id], boundaries)
            row_hash = dialect.hash64(dialect.row_text(columns, specs))
            query = sa.select(bucket, sa.func.count(), dialect.sum64(row_hash))
            query = query.group_by(sa.literal_column("1"))
            found = {int(b): (int(n), int(s) & MASK64) for b, n, s in conn.execute(query)}
        expected: dict[int, tuple[int, int]] = {}
        for row in rows:
            number = bisect.bisect_right(boundaries, (row["id"],))
            text = "|".join(python_part(row[s.name], s) for s in specs)
            count, total = expected.get(number, (0, 0))
            expected[number] = (count + 1, (total + md5_hash64(text)) & MASK64)
        assert found == expected

    def test_composite_buckets_follow_key_order(self, engine: sa.Engine, dialect: Dialect) -> None:
        table = _keys_table(engine, dialect)
        boundaries = [(1, "b"), (2, "c")]
        with engine.connect() as conn:
            bucket = dialect.bucket_number(conn, [table.c.a, table.c.b], boundaries)
            query = sa.select(table.c.a, table.c.b, bucket)
            found = {(a, b): int(n) for a, b, n in conn.execute(query)}
        assert found == {key: bisect.bisect_right(boundaries, key) for key in KEYS}

    @pytest.mark.parametrize("op", ["<", ">", ">="])
    @pytest.mark.parametrize("bound", [(2, "a"), (1, "c"), (3, "a")])
    def test_keyset_compares_composite_keys_in_order(
        self, engine: sa.Engine, dialect: Dialect, op: Any, bound: tuple[int, str]
    ) -> None:
        table = _keys_table(engine, dialect)
        compare = {"<": tuple.__lt__, ">": tuple.__gt__, ">=": tuple.__ge__}[op]
        with engine.connect() as conn:
            query = sa.select(table.c.a, table.c.b).where(
                dialect.keyset([table.c.a, table.c.b], bound, op)
            )
            found = {tuple(r) for r in conn.execute(query)}
            single = sa.select(table.c.a).where(dialect.keyset([table.c.a], bound[:1], op))
            found_single = set(conn.execute(single).scalars())
        assert found == {k for k in KEYS if compare(k, bound)}
        assert found_single == {k[0] for k in KEYS if compare(k[:1], bound[:1])}

    def test_key_in_finds_listed_keys_of_any_count(
        self, engine: sa.Engine, dialect: Dialect
    ) -> None:
        table = _create(engine, dialect, {})
        _insert(engine, table, [{"id": i} for i in range(200)])
        wanted = list(range(0, 200, 3))  # more than a statement's comfortable parameters
        composite = _keys_table(engine, dialect)
        with engine.connect() as conn:
            many = sa.select(table.c.id).where(dialect.key_in([table.c.id], [(k,) for k in wanted]))
            pairs = sa.select(composite.c.a, composite.c.b).where(
                dialect.key_in([composite.c.a, composite.c.b], [(1, "b"), (3, "a"), (9, "z")])
            )
            assert sorted(conn.execute(many).scalars()) == wanted
            assert sorted(tuple(r) for r in conn.execute(pairs)) == [(1, "b"), (3, "a")]

    def test_merge_inserts_updates_and_never_goes_back(
        self, engine: sa.Engine, dialect: Dialect
    ) -> None:
        kinds = {"version": ColumnKind("integer"), "text": ColumnKind("text")}
        target = _create(engine, dialect, kinds)
        staging = _create(engine, dialect, kinds, name="staged", key=False)
        _insert(
            engine,
            target,
            [{"id": 1, "version": 1, "text": "a"}, {"id": 2, "version": 5, "text": "b"}],
        )
        incoming = pl.DataFrame(
            {"id": [1, 2, 3], "version": [2, 4, 1], "text": ["a, newer", "b, older", "new"]}
        )
        with engine.begin() as conn:
            dialect.bulk_load(conn, staging, incoming)
            conn.execute(dialect.merge(target, staging, ["id"], "version", ["id", *kinds]))
        with engine.connect() as conn:
            rows = conn.execute(sa.select(target).order_by(target.c.id)).all()
        assert [tuple(r) for r in rows] == [(1, 2, "a, newer"), (2, 5, "b"), (3, 1, "new")]

    def test_bulk_load_reads_back_the_same_batch(self, engine: sa.Engine, dialect: Dialect) -> None:
        if not dialect.warehouse:
            pytest.skip(f"{dialect.name} is a source only: nothing is loaded into it")
        kinds = {n: CANONICAL[n].kind for n in ("decimal", "float", "text", "date", "timestamp")}
        kinds |= {"boolean": ColumnKind("boolean"), "binary": ColumnKind("binary")}
        staging = _create(engine, dialect, kinds, staging=True)
        rows = [
            {k: CANONICAL[k].values[i % len(CANONICAL[k].values)] for k in kinds} for i in range(6)
        ]
        kinds = {"id": ColumnKind("integer"), **kinds}
        batch = pl.DataFrame(
            [{"id": i, **r} for i, r in enumerate(rows)],
            schema={n: k.polars_dtype() for n, k in kinds.items()},
        )
        with engine.begin() as conn:
            dialect.bulk_load(conn, staging, batch)
        with engine.connect() as conn:
            read = dialect.fetch_frame(conn, sa.select(staging).order_by(staging.c.id), kinds)
        assert read.to_dicts() == batch.to_dicts()

    def test_a_json_column_is_json_to_the_sync_and_reconciliation(
        self, engine: sa.Engine, dialect: Dialect
    ) -> None:
        table = sa.Table(
            "documents", sa.MetaData(), sa.Column("doc", sa.JSON), sa.Column("t", sa.Text)
        )
        table.create(engine)
        with engine.connect() as conn:
            shape = reflect(conn, "documents")
        assert shape is not None
        assert shape.kinds == {"doc": ColumnKind("json"), "t": ColumnKind("text")}


KEYS = [(1, "a"), (1, "b"), (2, "a"), (2, "c"), (3, "a")]


def _keys_table(engine: sa.Engine, dialect: Dialect) -> sa.Table:
    table = sa.Table(
        "keyset",
        sa.MetaData(),
        sa.Column("a", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("b", sa.String(10), primary_key=True),
    )
    table.create(engine)
    _insert(engine, table, [{"a": a, "b": b} for a, b in KEYS])
    return table


def _create(
    engine: sa.Engine,
    dialect: Dialect,
    kinds: dict[str, ColumnKind],
    name: str = "items",
    key: bool = True,
    staging: bool = False,
) -> sa.Table:
    """A table keyed by `id` with a column of each kind, typed as this dialect types them."""
    typed = dialect.staging_type if staging else dialect.column_type
    columns = [
        sa.Column("id", sa.BigInteger, primary_key=key, autoincrement=False),
        *(sa.Column(n, typed(k)) for n, k in kinds.items()),
    ]
    table = sa.Table(name, sa.MetaData(), *columns)
    table.create(engine)
    return table


def _insert(engine: sa.Engine, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    """Rows as Python values; instants as naive UTC where the column has no time zone, JSON
    documents parsed where the column's type writes JSON itself."""

    def bound(column: sa.Column[Any], value: Any) -> Any:
        naive = not getattr(column.type, "timezone", True)
        if isinstance(value, datetime) and naive and value.tzinfo is not None:
            return value.astimezone(UTC).replace(tzinfo=None)
        if isinstance(column.type, sa.JSON) and isinstance(value, str):
            return json.loads(value)
        return value

    with engine.begin() as conn:
        conn.execute(
            table.insert(), [{k: bound(table.c[k], v) for k, v in r.items()} for r in rows]
        )


def _spec(column: sa.Column[Any], kind: ColumnKind, precision: int) -> ColumnSpec:
    return ColumnSpec(
        column.name,
        kind,
        precision=precision,
        own_scale=kind.scale,
        own_timezone=bool(getattr(column.type, "timezone", False)),
    )
