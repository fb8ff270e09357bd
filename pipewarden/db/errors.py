"""Which database errors are worth retrying: a dropped connection is, a wrong password is not."""

import sqlalchemy as sa

from pipewarden.db.engines import ConnectionFailed

_PERMANENT = (
    "password authentication failed",
    "access denied",
    "does not exist",
    "unknown database",
    "no such table",
    "permission denied",
    "role ",
)
_TRANSIENT = (
    "connection refused",
    "could not connect",
    "server closed the connection",
    "lost connection",
    "gone away",
    "connection reset",
    "timeout",
    "timed out",
    "too many connections",
    "database is locked",
    "deadlock",
    "could not serialize",
)


def is_transient(error: BaseException) -> bool:
    """True for errors a retry can fix: lost connections, time-outs, locks, deadlocks."""
    text = str(error).lower()
    if any(marker in text for marker in _PERMANENT):
        return False
    if isinstance(error, sa.exc.DBAPIError) and error.connection_invalidated:
        return True
    if isinstance(error, (ConnectionFailed, sa.exc.OperationalError)):
        return any(marker in text for marker in _TRANSIENT)
    return False
