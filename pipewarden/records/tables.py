"""The metadata of pipewarden's own warehouse tables, and the tables the sync writes.

Every other record module (alerts, metrics, quarantine …) declares its tables on `metadata`
itself and imports nothing but this module from here; `all_tables` imports them all, so the
complete schema is found in one place (see `records.migrate` for how a warehouse gets it).
"""

import sqlalchemy as sa

metadata = sa.MetaData()

#: The id of a table whose rows are numbered: 64 bits, INTEGER in SQLite, which numbers only an
#: `INTEGER PRIMARY KEY` by itself.
RowId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

watermarks = sa.Table(
    "pipewarden_watermarks",
    metadata,
    sa.Column("table_name", sa.String(200), primary_key=True),
    sa.Column("cursor_value", sa.Text, nullable=True),
    sa.Column("key_value", sa.Text, nullable=True),
    sa.Column("run_id", sa.String(36), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

sync_runs = sa.Table(
    "pipewarden_sync_runs",
    metadata,
    sa.Column("run_id", sa.String(36), primary_key=True),
    sa.Column("table_name", sa.String(200), nullable=False, index=True),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("finished_at", sa.DateTime(timezone=True)),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("full_refresh", sa.Boolean, nullable=False, default=False),
    sa.Column("rows_read", sa.BigInteger, nullable=False, default=0),
    sa.Column("rows_loaded", sa.BigInteger, nullable=False, default=0),
    sa.Column("rows_unchanged", sa.BigInteger, nullable=False, default=0),
    sa.Column("rows_quarantined", sa.BigInteger, nullable=False, default=0),
    sa.Column("batches", sa.Integer, nullable=False, default=0),
    sa.Column("duration_seconds", sa.Float),
    sa.Column("old_watermark", sa.Text),
    sa.Column("new_watermark", sa.Text),
    sa.Column("newest_source_cursor", sa.Text),
    sa.Column("latency_p50_seconds", sa.Float),
    sa.Column("latency_p95_seconds", sa.Float),
    sa.Column("latency_max_seconds", sa.Float),
    sa.Column("schema_changes", sa.Text),
    sa.Column("error", sa.Text),
    # The Prefect flow run the sync ran in (NULL outside Prefect): alerts and panels link to it.
    sa.Column("flow_run_id", sa.String(36)),
)

schema_changes = sa.Table(
    "pipewarden_schema_changes",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("table_name", sa.String(200), nullable=False, index=True),
    sa.Column("run_id", sa.String(36), nullable=False),
    sa.Column("column_name", sa.String(200), nullable=False),
    sa.Column("change", sa.String(20), nullable=False),
    sa.Column("detail", sa.Text),
    sa.Column("detected_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("backfilled_at", sa.DateTime(timezone=True)),
)


column_kinds = sa.Table(
    "pipewarden_column_kinds",
    metadata,
    sa.Column("table_name", sa.String(200), primary_key=True),
    sa.Column("column_name", sa.String(200), primary_key=True),
    sa.Column("kind", sa.Text, nullable=False),
)
