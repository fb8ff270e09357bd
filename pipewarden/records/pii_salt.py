"""The salt customer values are hashed with where they are shown (`config.pii`), kept once per
warehouse.

Every process showing a value (a sync storing check examples, a reconciliation's alert, the
quarantine command) must use one salt, or one customer would get several prefixes. The salt is
`PIPEWARDEN_PII_SALT` where set; otherwise 32 random bytes generated on first use and kept in
`pipewarden_secrets`, a table Grafana's read-only role is not granted
(`dashboards.reader_role`). Concurrent first uses agree: the insert skips a row another process
wrote, and the row is read back. The salt is never logged, printed nor put in an error.
"""

import secrets
from collections.abc import Iterable
from datetime import UTC, datetime

import sqlalchemy as sa

from pipewarden.config.pii import Redactor, configured_salt
from pipewarden.dialects import dialect_for
from pipewarden.records.tables import metadata

warehouse_secrets = sa.Table(
    "pipewarden_secrets",
    metadata,
    sa.Column("name", sa.String(100), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)
PII_SALT = "pii_salt"

#: Salts read back from a warehouse (committed there), per warehouse URL, for this process.
_known: dict[str, bytes] = {}


def _stored(conn: sa.Connection) -> bytes | None:
    c = warehouse_secrets.c
    value = conn.execute(sa.select(c.value).where(c.name == PII_SALT)).scalar()
    return None if value is None else str(value).encode()


def pii_salt(conn: sa.Connection) -> bytes:
    """The salt: `PIPEWARDEN_PII_SALT`, else the warehouse's, generated in the caller's
    transaction when it has none yet (the caller commits it with what it hashed)."""
    configured = configured_salt()
    if configured is not None:
        return configured
    where = conn.engine.url.render_as_string(hide_password=True)
    if where in _known:
        return _known[where]
    found = _stored(conn)
    if found is not None:
        _known[where] = found
        return found
    insert = dialect_for(conn.dialect.name).insert_or_skip(
        warehouse_secrets, [warehouse_secrets.c.name]
    )
    conn.execute(
        insert.values(name=PII_SALT, value=secrets.token_hex(32), created_at=datetime.now(UTC))
    )
    made = _stored(conn)
    if made is None:  # pragma: no cover - the insert or a concurrent one left a row
        raise RuntimeError("the warehouse kept no PII salt")
    return made


def redactor(conn: sa.Connection, columns: Iterable[str] = ()) -> Redactor:
    """A redactor of `columns` with this warehouse's salt."""
    return Redactor(pii_salt(conn), columns)


def forget_salts() -> None:
    """Drop the salts read so far (tests switching warehouses or salts)."""
    _known.clear()
