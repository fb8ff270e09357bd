"""Engines carry their limits: every statement and lock wait, and the connection itself."""

import socket

import pytest

from pipewarden.config.timeouts import Timeouts
from pipewarden.db.engines import ConnectionFailed, connect, make_engine


@pytest.mark.parametrize("kind", ["postgresql", "mariadb"])
def test_every_engine_carries_the_configured_limits(make_url, kind):
    engine = make_engine(make_url(kind, "db"), Timeouts(connect=3, statement=7.5, lock=2))
    with engine.connect() as conn:
        if kind == "postgresql":
            statement = conn.exec_driver_sql("SHOW statement_timeout").scalar()
            lock = conn.exec_driver_sql("SHOW lock_timeout").scalar()
            assert (statement, lock) == ("7500ms", "2s")
        else:
            row = conn.exec_driver_sql(
                "SELECT @@max_statement_time, @@lock_wait_timeout, @@innodb_lock_wait_timeout"
            ).one()
            assert tuple(float(v) for v in row) == (7.5, 2, 2)
    engine.dispose()


def test_a_server_that_never_answers_fails_the_connection_in_time():
    """A listening socket nobody serves: the handshake gets no reply, the connect timeout ends
    the wait."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        port = silent.getsockname()[1]
        engine = make_engine(
            f"postgresql+psycopg://u@127.0.0.1:{port}/db", Timeouts(connect=1, statement=5, lock=1)
        )
        with pytest.raises(ConnectionFailed, match="timeout expired"), connect(engine):
            pass
