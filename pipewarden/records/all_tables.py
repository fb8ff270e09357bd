"""Every pipewarden table on one metadata: importing this registers each record module's tables
on `records.tables.metadata` (the modules import `tables`; nothing imports back)."""

from pipewarden.records import (  # noqa: F401
    alerts,
    column_samples,
    incidents,
    metrics,
    pii_salt,
    quarantine,
    reconcile_runs,
    sync_ledgers,
    table_owners,
)
from pipewarden.records.tables import metadata

__all__ = ["metadata"]
