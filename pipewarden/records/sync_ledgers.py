"""The re-read ledger of a table: what its last run left in the warehouse near the watermark.

One row per table: the run that wrote it, the shape its hashes were taken over and the entries
(`sync.reread` packs and reads them). It is only good while that run is the one that last moved
the watermark. Any other writer of the warehouse table forgets it (a fresh `run_id`, no
entries), and a run replaces it only if its `run_id` is still the one the run read when it
began: a repair committed during a sync leaves no ledger behind.
"""

from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import uuid4

import sqlalchemy as sa

from pipewarden.records.tables import metadata

sync_ledgers = sa.Table(
    "pipewarden_sync_ledgers",
    metadata,
    sa.Column("table_name", sa.String(200), primary_key=True),
    sa.Column("run_id", sa.String(36), nullable=False),
    sa.Column("shape", sa.String(64), nullable=False),
    sa.Column("entries", sa.LargeBinary, nullable=False),
    sa.Column("written_at", sa.DateTime(timezone=True), nullable=False),
)


@dataclass(frozen=True)
class StoredLedger:
    run_id: str
    shape: str
    entries: bytes


def claim_ledger(conn: sa.Connection, table_name: str, run_id: str) -> StoredLedger:
    """The table's ledger, read under the sync's run lock; an empty one of this run is created
    when the table has none, so a forget during the run has a row to change."""
    c = sync_ledgers.c
    row = conn.execute(
        sa.select(c.run_id, c.shape, c.entries).where(c.table_name == table_name)
    ).first()
    if row is not None:
        return StoredLedger(row.run_id, row.shape, bytes(row.entries))
    empty = StoredLedger(run_id, "", b"")
    conn.execute(sync_ledgers.insert().values(table_name=table_name, **_values(empty)))
    return empty


def replace_ledger(
    conn: sa.Connection, table_name: str, claimed: StoredLedger, ledger: StoredLedger
) -> bool:
    """Write a run's ledger over the one it claimed; False when it was forgotten meanwhile."""
    c = sync_ledgers.c
    where = sa.and_(c.table_name == table_name, c.run_id == claimed.run_id)
    return conn.execute(sync_ledgers.update().where(where).values(**_values(ledger))).rowcount > 0


def forget_ledger(conn: sa.Connection, table_name: str) -> None:
    """A writer other than the sync changed the warehouse table: no run may skip by the ledger,
    nor replace it with one it began before this."""
    empty = StoredLedger(str(uuid4()), "", b"")
    c = sync_ledgers.c
    conn.execute(sync_ledgers.update().where(c.table_name == table_name).values(**_values(empty)))


def _values(ledger: StoredLedger) -> dict[str, object]:
    return {
        "run_id": ledger.run_id,
        "shape": ledger.shape,
        "entries": ledger.entries,
        "written_at": datetime.now(UTC),
    }
