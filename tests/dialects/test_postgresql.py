"""PostgreSQL's dialect: the shared contract, and its native row hash."""

from decimal import Decimal

import sqlalchemy as sa

from pipewarden.dialects import Dialect
from pipewarden.dialects.canonical import ColumnSpec
from pipewarden.dialects.kinds import ColumnKind
from tests.dialects.contract import DialectContract, _create, _insert


class TestPostgreSQL(DialectContract):
    kind = "postgresql"

    def test_native_row_hash_follows_values_not_their_spelling(
        self, engine: sa.Engine, dialect: Dialect
    ) -> None:
        """numeric 1.5 and 1.50 are one value; a NULL and an empty document are not."""
        kinds = {"amount": ColumnKind("decimal"), "doc": ColumnKind("json")}
        table = _create(engine, dialect, kinds)
        _insert(
            engine,
            table,
            [
                {"id": 1, "amount": Decimal("1.5"), "doc": "{}"},
                {"id": 2, "amount": Decimal("1.50"), "doc": "{}"},
                {"id": 3, "amount": Decimal("1.50"), "doc": None},
            ],
        )
        specs = [ColumnSpec(n, k) for n, k in kinds.items()]
        columns = [table.c[n] for n in kinds]
        with engine.connect() as conn:
            version = dialect.server_version(conn)
            row_hash = dialect.native_row_hash(version, columns, specs)
            assert row_hash is not None, f"server {version} has no hash_record_extended"
            query = sa.select(row_hash).order_by(table.c.id)
            first, second, third = conn.execute(query).scalars()
        assert first == second != third
