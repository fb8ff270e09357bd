"""Errors name the statement, never the row values it carried: those are customer data."""

from pathlib import Path

import pytest
import sqlalchemy as sa

from pipewarden.db.engines import make_engine


def test_a_failed_statement_keeps_its_values_out_of_the_error(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'wh.sqlite'}")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE customers (id INTEGER PRIMARY KEY, email TEXT)")
        insert = sa.text("INSERT INTO customers (id, email) VALUES (:id, :email)")
        conn.execute(insert, {"id": 1, "email": "ada@example.com"})
    with pytest.raises(sa.exc.IntegrityError) as caught, engine.begin() as conn:
        conn.execute(insert, {"id": 1, "email": "grace.hopper@example.com"})
    assert "INSERT INTO customers" in str(caught.value)
    assert "grace.hopper" not in str(caught.value)
    engine.dispose()
