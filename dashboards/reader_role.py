"""The read-only role Grafana's datasource logs in as, and what it may read.

Grafana runs whatever SQL a panel holds, so its role may read pipewarden's own tables and
nothing else: not the copied customer tables, and of the quarantine and the check failures only
the columns that count rows (their row and example values are customer data); of the alert
outbox only its delivery state (an alert's reason and details may quote values). The role's
transactions are read-only by default and its statements time out.
"""

from sqlalchemy.dialects import postgresql

DEFAULT_ROLE = "pipewarden_grafana"
#: Each table the dashboards read, with the columns they read (None: all of them).
READABLE: dict[str, tuple[str, ...] | None] = {
    "pipewarden_metrics": None,
    "pipewarden_check_results": None,
    "pipewarden_sync_runs": None,
    "pipewarden_reconcile_runs": None,
    "pipewarden_schema_changes": None,
    "pipewarden_incidents": None,
    "pipewarden_table_owners": None,
    "pipewarden_quarantine": ("table_name", "status", "quarantined_at"),
    "pipewarden_check_failures": (
        "table_name",
        "column_name",
        "check_name",
        "failures",
        "recorded_at",
    ),
    # The outbox's delivery state, not what the alerts say (their reasons and details).
    "pipewarden_alerts": ("id", "table_name", "state", "created_at", "sent_at"),
}


def _quote(name: str) -> str:
    return str(postgresql.dialect().identifier_preparer.quote(name))


def reader_role_sql(database: str, role: str = DEFAULT_ROLE, schema: str = "public") -> list[str]:
    """The statements that create the role and grant it what the dashboards read."""
    who, where = _quote(role), _quote(schema)
    statements = [
        f"CREATE ROLE {who} LOGIN",
        f"ALTER ROLE {who} SET default_transaction_read_only = on",
        f"ALTER ROLE {who} SET statement_timeout = '30s'",
        f"GRANT CONNECT ON DATABASE {_quote(database)} TO {who}",
        f"GRANT USAGE ON SCHEMA {where} TO {who}",
    ]
    for table, columns in READABLE.items():
        what = "SELECT" if columns is None else f"SELECT ({', '.join(columns)})"
        statements.append(f"GRANT {what} ON {where}.{_quote(table)} TO {who}")
    return statements
