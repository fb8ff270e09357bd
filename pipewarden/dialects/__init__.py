"""One file per database, found through one registry by SQLAlchemy backend name.

Adding a database is adding its file (a `Dialect` subclass overriding what differs there) and
its line in `REGISTRY`; tests/dialects/ holds one test file per engine running the same contract.
"""

from functools import cache
from importlib import import_module

import sqlalchemy as sa

from pipewarden.dialects.base import Dialect

#: SQLAlchemy backend name → `module:Class` of its dialect, imported on first use (so a
#: command that never touches MariaDB never imports its driver's types).
REGISTRY: dict[str, str] = {
    "postgresql": "pipewarden.dialects.postgresql:PostgreSQL",
    "mariadb": "pipewarden.dialects.mariadb:MariaDB",
    "mysql": "pipewarden.dialects.mariadb:MariaDB",
    "sqlite": "pipewarden.dialects.sqlite:SQLite",
}


@cache
def dialect_for(backend: str) -> Dialect:
    """The dialect for a backend name such as `postgresql`, `mysql`, `mariadb` or `sqlite`; a
    database without a file of its own gets the portable `Dialect` (a source only)."""
    path = REGISTRY.get(backend)
    if path is None:
        return Dialect()
    module, name = path.split(":")
    dialect: Dialect = getattr(import_module(module), name)()
    return dialect


def dialect_of(bind: sa.Connection | sa.Engine) -> Dialect:
    """The dialect of a connection's or an engine's database."""
    return dialect_for(bind.dialect.name)


__all__ = ["REGISTRY", "Dialect", "dialect_for", "dialect_of"]
