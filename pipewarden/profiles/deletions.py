"""Customers deleted from the warehouse since a build: their profiles go in the next build.

A sync never deletes; a customer leaves the warehouse when a reconciliation's repair deletes a
row its source no longer has, and the repair audits each deleted key in
`pipewarden_reconcile_repairs` (action `delete`) in the delete's own transaction. Reading that
audit finds the deleted customers without comparing the profile table with the customers
table, which would cost an incremental build a scan of both. A row deleted by other means is
caught by the build's own check (profiles against customers), which fails the build.
"""

import json
from datetime import datetime

import sqlalchemy as sa

from pipewarden.config import PipewardenConfig
from pipewarden.records.reconcile_runs import reconcile_repairs


def synced_names(config: PipewardenConfig, warehouse_table: str) -> list[str]:
    """The configured tables loaded into `warehouse_table` (reconciliations record these names)."""
    return [name for name, t in config.tables.items() if t.target_table == warehouse_table]


def deleted_customers(conn: sa.Connection, config: PipewardenConfig, since: datetime) -> set[str]:
    """Keys of the customers a repair deleted after `since`, as the profile table spells them."""
    assert config.profiles is not None
    names = synced_names(config, config.profiles.customers.table)
    if not names or not sa.inspect(conn).has_table(reconcile_repairs.name):
        return set()
    r = reconcile_repairs.c
    query = sa.select(r.key_value).where(
        r.table_name.in_(names), r.action == "delete", r.repaired_at > since
    )
    keys: list[str] = list(conn.execute(query).scalars())
    return {_customer_id(text) for text in keys}


def _customer_id(key_value: str) -> str:
    """`[42]` (the audit's JSON key) as `42`: the text the build casts each key to."""
    key = json.loads(key_value)
    value = key[0] if isinstance(key, list) and len(key) == 1 else key
    return str(value)
