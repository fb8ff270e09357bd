"""MariaDB's dialect: the shared contract, and the kinds MariaDB spells in its own way."""

import sqlalchemy as sa

from pipewarden.dialects import Dialect
from pipewarden.dialects.kinds import ColumnKind
from pipewarden.sync.schema import reflect
from tests.dialects.contract import DialectContract


class TestMariaDB(DialectContract):
    kind = "mariadb"

    def test_json_is_found_by_its_check_and_boolean_stays_a_number(
        self, engine: sa.Engine, dialect: Dialect
    ) -> None:
        """JSON is LONGTEXT with a `json_valid` check; BOOLEAN is TINYINT(1), loaded as 0/1."""
        with engine.begin() as conn:
            conn.execute(
                sa.text(
                    "CREATE TABLE orders (id BIGINT PRIMARY KEY, payload JSON, note LONGTEXT, "
                    "paid BOOLEAN, CHECK (note <> 'x'))"
                )
            )
        with engine.connect() as conn:
            shape = reflect(conn, "orders")
        assert shape is not None
        assert shape.kinds["payload"] == ColumnKind("json")
        assert shape.kinds["note"].kind == "text"
        assert shape.kinds["paid"] == ColumnKind("integer")
