"""SQLite's dialect: the shared contract, and its canonical functions written in Python."""

import sqlalchemy as sa

from pipewarden.dialects import Dialect
from pipewarden.dialects.canonical import md5_hash64
from tests.dialects.contract import DialectContract


class TestSQLite(DialectContract):
    kind = "sqlite"

    def test_hashes_and_sums_are_taken_modulo_two_to_the_64(
        self, engine: sa.Engine, dialect: Dialect
    ) -> None:
        """Hashes are signed 64-bit integers (SQLite's range); their sum wraps, as text."""
        texts = ["a", "b", "c"]
        values = sa.union_all(*(sa.select(sa.literal(t).label("t")) for t in texts)).subquery()
        with engine.connect() as conn:
            dialect.prepare_hashing(conn)
            dialect.prepare_hashing(conn)  # registering twice is harmless
            hashes = conn.execute(sa.select(dialect.hash64(values.c.t))).scalars().all()
            total = conn.execute(sa.select(dialect.sum64(dialect.hash64(values.c.t)))).scalar()
        assert sorted(hashes) == sorted(md5_hash64(t) for t in texts)
        assert int(total) == sum(md5_hash64(t) for t in texts) % (1 << 64)
