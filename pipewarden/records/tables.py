"""The tables pipewarden keeps in the warehouse. Each record type has one writer module."""

import threading

import sqlalchemy as sa

metadata = sa.MetaData()
_created: set[str] = set()
_lock = threading.Lock()

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


def ensure_tables(engine: sa.Engine) -> None:
    """Create pipewarden's tables where they are missing (idempotent)."""
    # Modules that add tables to `metadata` register by being imported here.
    from pipewarden.records import extra_tables  # noqa: F401

    key = engine.url.render_as_string(hide_password=False)
    with _lock:
        if key in _created:
            return
        try:
            metadata.create_all(engine, checkfirst=True)
        except sa.exc.DBAPIError:
            # Another process created them between the check and the CREATE: check again.
            metadata.create_all(engine, checkfirst=True)
        try:
            add_missing_columns(engine)
        except sa.exc.DBAPIError:
            add_missing_columns(engine)  # another process added them meanwhile: check again
        _created.add(key)


def add_missing_columns(engine: sa.Engine) -> list[str]:
    """Add the columns a newer pipewarden declares to tables an older one created (pipewarden
    has no migrations: its tables only ever gain nullable columns). Returns what was added."""
    added: list[str] = []
    with engine.begin() as conn:
        names = [t.name for t in metadata.sorted_tables]
        present = sa.inspect(conn).get_multi_columns(filter_names=names)
        preparer = conn.dialect.identifier_preparer
        for table in metadata.sorted_tables:
            columns = present.get((None, table.name))
            if columns is None:
                continue
            have = {c["name"] for c in columns}
            for column in table.columns:
                if column.name in have:
                    continue
                if not column.nullable:
                    raise RuntimeError(
                        f"{table.name}.{column.name}: a new column that is not nullable "
                        "cannot be added to an existing warehouse"
                    )
                type_sql = column.type.compile(dialect=conn.dialect)
                conn.execute(
                    sa.text(
                        f"ALTER TABLE {preparer.format_table(table)} "
                        f"ADD COLUMN {preparer.format_column(column)} {type_sql}"
                    )
                )
                added.append(f"{table.name}.{column.name}")
    return added


column_kinds = sa.Table(
    "pipewarden_column_kinds",
    metadata,
    sa.Column("table_name", sa.String(200), primary_key=True),
    sa.Column("column_name", sa.String(200), primary_key=True),
    sa.Column("kind", sa.Text, nullable=False),
)
