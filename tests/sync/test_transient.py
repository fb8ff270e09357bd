"""Which failures the flow retries: real driver errors, classified."""

import socket

import pytest
import sqlalchemy as sa

from pipewarden.db.engines import ConnectionFailed, connect, make_engine
from pipewarden.db.errors import is_transient


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def connection_error(url: str) -> ConnectionFailed:
    with pytest.raises(ConnectionFailed) as caught, connect(make_engine(url)):
        pass
    return caught.value


def test_a_refused_connection_is_transient():
    error = connection_error(f"postgresql+psycopg://postgres:pw@127.0.0.1:{free_port()}/x")
    assert is_transient(error)
    assert "pw@" not in str(error)


def test_a_wrong_password_is_not_transient(mariadb):
    url = mariadb.new().replace("root@", "root:WrongPass@")
    error = connection_error(url)
    assert not is_transient(error)
    assert "WrongPass" not in str(error) and "Access denied" in str(error)


def test_a_missing_table_is_not_transient(postgres):
    engine = make_engine(postgres.new())
    with pytest.raises(sa.exc.DBAPIError) as caught, engine.connect() as conn:
        conn.execute(sa.text("SELECT * FROM nowhere"))
    assert not is_transient(caught.value)
