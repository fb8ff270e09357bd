"""One file per database; `dialect_for` picks the file by SQLAlchemy backend name."""

from pipewarden.dialects.base import Dialect


def dialect_for(backend: str) -> Dialect:
    """The dialect for a backend name such as `postgresql`, `mysql`, `mariadb` or `sqlite`."""
    if backend == "postgresql":
        from pipewarden.dialects.postgresql import PostgreSQL

        return PostgreSQL()
    if backend in ("mysql", "mariadb"):
        from pipewarden.dialects.mariadb import MariaDB

        return MariaDB()
    if backend == "sqlite":
        from pipewarden.dialects.sqlite import SQLite

        return SQLite()
    return Dialect()


__all__ = ["Dialect", "dialect_for"]
