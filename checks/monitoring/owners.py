"""The owners of the tables a check run checked, recorded beside its results for the dashboards."""

from collections.abc import Iterable
from datetime import datetime

import sqlalchemy as sa

from pipewarden.config import PipewardenConfig
from pipewarden.config.owners import owner_channel, owner_name
from pipewarden.records.table_owners import Owner, record_owners


def record_checked_owners(
    conn: sa.Connection, config: PipewardenConfig, names: Iterable[str], now: datetime
) -> int:
    """Refresh the recorded owner of each checked table or stream from the configuration."""
    owners = {}
    for name in names:
        watched = config.tables.get(name) or config.streams.get(name)
        if watched is not None:
            owners[name] = Owner(owner_channel(watched.owner), owner_name(watched.owner))
    return record_owners(conn, owners, now)
