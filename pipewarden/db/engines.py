"""Creating engines, and turning connection failures into errors a person can act on."""

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, Engine

from pipewarden.config.timeouts import DEFAULT_TIMEOUTS, Timeouts
from pipewarden.config.urls import display_url, parse_url, redact_secrets
from pipewarden.dialects import dialect_for


class ConnectionFailed(RuntimeError):
    """A database could not be reached or refused us; the message hides passwords."""


def make_engine(url: str | URL, timeouts: Timeouts = DEFAULT_TIMEOUTS) -> Engine:
    """An engine for `url`, set up by its dialect (SQLite functions, session time zone …),
    whose connections cannot wait for ever (`timeouts`)."""
    parsed = parse_url(url)
    dialect = dialect_for(parsed.get_backend_name())
    options = dialect.engine_options(timeouts)
    # Statement parameters are row values (customer data): errors and logs leave them out.
    engine = sa.create_engine(parsed, hide_parameters=True, **options)
    event.listen(engine, "connect", dialect.on_connect)
    dialect.limit_statements(engine, timeouts)
    return engine


@lru_cache(maxsize=64)
def cached_engine(url: str, timeouts: Timeouts = DEFAULT_TIMEOUTS) -> Engine:
    """One engine per URL (and limits) in a process: the pool is worth keeping between runs."""
    return make_engine(url, timeouts)


def describe_connection_error(url: str | URL, error: BaseException) -> str:
    """`cannot connect to <url>: <driver's reason>`, with every secret hidden."""
    reason = str(getattr(error, "orig", None) or error).strip().splitlines()
    first = reason[0] if reason else type(error).__name__
    return redact_secrets(f"cannot connect to {display_url(url)}: {first}")


def describe_database_error(url: str | URL, error: sa.exc.DBAPIError) -> str:
    """A connect-time error as `describe_connection_error`; a statement's as the database's
    first line of reason (a missing column is no connection failure)."""
    if error.statement is None:
        return describe_connection_error(url, error)
    reason = str(error.orig or error).strip().splitlines()
    first = reason[0] if reason else type(error).__name__
    return redact_secrets(f"the warehouse refused a statement: {first}")


@contextmanager
def connect(engine: Engine) -> Iterator[sa.Connection]:
    """A connection whose connect-time errors are ConnectionFailed with a clear message."""
    try:
        conn = engine.connect()
    except sa.exc.DBAPIError as error:
        raise ConnectionFailed(describe_connection_error(engine.url, error)) from None
    except UnicodeError:
        # The driver could not encode the user name or password (PyMySQL sends latin-1): the
        # error's own text and arguments would carry the password.
        reason = "the user name or password holds characters this driver cannot send"
        raise ConnectionFailed(f"cannot connect to {display_url(engine.url)}: {reason}") from None
    with conn:
        yield conn
