"""SQLite in WAL mode: a transaction that reads first must take the write lock before it writes."""

from pathlib import Path

import pytest
import sqlalchemy as sa

from pipewarden.db.engines import cached_engine
from pipewarden.dialects.sqlite import SQLite
from pipewarden.sync.schema import reflect_cached


def _engines(tmp_path: Path) -> tuple[sa.Engine, sa.Engine]:
    url = f"sqlite:///{tmp_path / 'warehouse.sqlite'}"
    writer = cached_engine(url)
    with writer.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE runs (id INTEGER PRIMARY KEY)")
    # A second writer that gives up at once instead of waiting for the lock.
    impatient = sa.create_engine(url, connect_args={"timeout": 0})
    return writer, impatient


def test_a_read_then_a_write_fails_once_another_connection_committed(tmp_path: Path) -> None:
    """The demo's first sync: three targets created at once, one refused 'database is locked'."""
    writer, other = _engines(tmp_path)
    with writer.connect() as conn, conn.begin():
        assert reflect_cached(conn, "orders") is None  # reads the schema: the table is missing
        with other.begin() as elsewhere:
            elsewhere.exec_driver_sql("INSERT INTO runs DEFAULT VALUES")
        with pytest.raises(sa.exc.OperationalError, match="locked"):
            conn.exec_driver_sql("CREATE TABLE orders (id INTEGER PRIMARY KEY)")


def test_lock_for_write_takes_the_lock_first_so_the_transaction_can_write(tmp_path: Path) -> None:
    writer, other = _engines(tmp_path)
    with writer.connect() as conn:
        with conn.begin():
            SQLite().lock_for_write(conn)
            assert reflect_cached(conn, "orders") is None
            with pytest.raises(sa.exc.OperationalError, match="locked"), other.begin() as elsewhere:
                elsewhere.exec_driver_sql("INSERT INTO runs DEFAULT VALUES")  # waits its turn
            conn.exec_driver_sql("CREATE TABLE orders (id INTEGER PRIMARY KEY)")
        SQLite().lock_for_write(conn)  # nothing open: a second call starts a new transaction
        conn.rollback()
    with other.begin() as elsewhere:
        elsewhere.exec_driver_sql("INSERT INTO orders DEFAULT VALUES")
        assert elsewhere.exec_driver_sql("SELECT count(*) FROM orders").scalar() == 1
    other.dispose()
