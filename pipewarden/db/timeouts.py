"""A database call that ran past one of its limits (`config.timeouts`) fails with
`DatabaseTimeout`, which names the table and the limit."""

from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa

from pipewarden.config.timeouts import Timeouts


class DatabaseTimeout(RuntimeError):
    """A statement or a lock wait ran past its limit; the message says where and which limit."""


@contextmanager
def naming_timeouts(where: str, backend: str, timeouts: Timeouts) -> Iterator[None]:
    """Turn a lock or statement timeout raised inside into a `DatabaseTimeout` naming `where`
    (`warehouse table 'orders'`), the limit and the setting that changes it. `backend` is the
    SQLAlchemy dialect name of the connection the calls inside use."""
    from pipewarden.dialects import dialect_for

    try:
        yield
    except sa.exc.DBAPIError as error:
        kind = dialect_for(backend).timeout_kind(error)
        if kind is None:
            raise
        setting = "timeouts.lock" if kind == "lock" else "timeouts.statement"
        raise DatabaseTimeout(
            f"{where}: gave up after the {kind} timeout of {_seconds(timeouts.seconds(kind))} "
            + (
                "waiting for a lock another session holds on it"
                if kind == "lock"
                else "on one statement"
            )
            + f"; nothing of the interrupted batch was kept (raise {setting} in the "
            "configuration, or find what holds it)"
        ) from error


def _seconds(value: float) -> str:
    return f"{value:g} s"
