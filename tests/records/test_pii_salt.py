"""The warehouse's PII salt: made once, and two processes making it at once agree."""

import threading
import time

import pytest
import sqlalchemy as sa

from pipewarden.config.pii import SALT_ENV
from pipewarden.records.migrate import ensure_tables
from pipewarden.records.pii_salt import forget_salts, pii_salt


@pytest.fixture(autouse=True)
def _no_salt_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(SALT_ENV, raising=False)
    forget_salts()


def test_two_first_uses_at_once_agree_on_one_salt(postgres) -> None:
    """The second insert waits for the first transaction, skips its row, and reads it back:
    neither fails, and both hash with the salt that was kept."""
    url = postgres.new("pwsalt")
    engine = sa.create_engine(url)
    ensure_tables(engine)
    watcher = engine.execution_options(isolation_level="AUTOCOMMIT")
    second: list[bytes] = []

    def lock_waiters() -> int:
        with watcher.connect() as conn:
            query = (
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock'"
            )
            return int(conn.execute(sa.text(query)).scalar() or 0)

    def make_second() -> None:
        forget_salts()  # as another process: nothing remembered
        with engine.begin() as conn:
            second.append(pii_salt(conn))

    with engine.connect() as conn:
        conn.begin()
        first = pii_salt(conn)  # inserted, not committed yet
        other = threading.Thread(target=make_second)
        other.start()
        deadline = time.monotonic() + 60
        while lock_waiters() == 0 and other.is_alive():  # until the second waits on our row
            assert time.monotonic() < deadline, "the second first use never waited"
        conn.commit()
    other.join(timeout=60)

    assert second == [first]
    with engine.connect() as conn:
        stored = conn.execute(sa.text("SELECT value FROM pipewarden_secrets")).scalars().all()
    assert [s.encode() for s in stored] == [first]
    engine.dispose()
