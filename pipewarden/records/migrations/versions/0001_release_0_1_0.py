"""pipewarden 0.1.0's tables, and the adoption of a warehouse an earlier pipewarden created.

Releases before migrations created these tables with `create_all` and added new nullable
columns by hand (`flow_run_id`), without a version table. This revision creates what is missing
of the tables below, as they were in 0.1.0: every table on a new warehouse; on an earlier one
the tables, nullable columns and indexes it lacks, keeping its rows. The definitions are a copy,
frozen here: later revisions change the tables, never this file.

Revision ID: 0001
Revises: (none)
"""

import sqlalchemy as sa
from alembic import context, op

from pipewarden.records.migrations.layout import TableLayout, read_layout

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

release = sa.MetaData()
_Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_Instant = sa.DateTime(timezone=True)

sa.Table(
    "pipewarden_watermarks",
    release,
    sa.Column("table_name", sa.String(200), primary_key=True),
    sa.Column("cursor_value", sa.Text),
    sa.Column("key_value", sa.Text),
    sa.Column("run_id", sa.String(36), nullable=False),
    sa.Column("updated_at", _Instant, nullable=False),
)
sa.Table(
    "pipewarden_sync_runs",
    release,
    sa.Column("run_id", sa.String(36), primary_key=True),
    sa.Column("table_name", sa.String(200), nullable=False, index=True),
    sa.Column("started_at", _Instant, nullable=False, index=True),
    sa.Column("finished_at", _Instant),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("full_refresh", sa.Boolean, nullable=False),
    sa.Column("rows_read", sa.BigInteger, nullable=False),
    sa.Column("rows_loaded", sa.BigInteger, nullable=False),
    sa.Column("rows_unchanged", sa.BigInteger, nullable=False),
    sa.Column("rows_quarantined", sa.BigInteger, nullable=False),
    sa.Column("batches", sa.Integer, nullable=False),
    sa.Column("duration_seconds", sa.Float),
    sa.Column("old_watermark", sa.Text),
    sa.Column("new_watermark", sa.Text),
    sa.Column("newest_source_cursor", sa.Text),
    sa.Column("latency_p50_seconds", sa.Float),
    sa.Column("latency_p95_seconds", sa.Float),
    sa.Column("latency_max_seconds", sa.Float),
    sa.Column("schema_changes", sa.Text),
    sa.Column("error", sa.Text),
    sa.Column("flow_run_id", sa.String(36)),
)
sa.Table(
    "pipewarden_schema_changes",
    release,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("table_name", sa.String(200), nullable=False, index=True),
    sa.Column("run_id", sa.String(36), nullable=False),
    sa.Column("column_name", sa.String(200), nullable=False),
    sa.Column("change", sa.String(20), nullable=False),
    sa.Column("detail", sa.Text),
    sa.Column("detected_at", _Instant, nullable=False),
    sa.Column("backfilled_at", _Instant),
)
sa.Table(
    "pipewarden_column_kinds",
    release,
    sa.Column("table_name", sa.String(200), primary_key=True),
    sa.Column("column_name", sa.String(200), primary_key=True),
    sa.Column("kind", sa.Text, nullable=False),
)
sa.Table(
    "pipewarden_alerts",
    release,
    sa.Column("id", _Id, primary_key=True, autoincrement=True),
    sa.Column("created_at", _Instant, nullable=False),
    sa.Column("incident_id", _Id),
    sa.Column("table_name", sa.String(200), nullable=False),
    sa.Column("check", sa.String(300), nullable=False),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("status", sa.String(30), nullable=False),
    sa.Column("severity", sa.Integer, nullable=False),
    sa.Column("channel", sa.String(200)),
    sa.Column("observed", sa.Float),
    sa.Column("expected_low", sa.Float),
    sa.Column("expected_high", sa.Float),
    sa.Column("method", sa.Text),
    sa.Column("reason", sa.Text),
    sa.Column("details", sa.Text, nullable=False),
    sa.Column("run_id", sa.String(36)),
    sa.Column("flow_run_id", sa.String(36)),
    sa.Column("state", sa.String(10), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("last_error", sa.Text),
    sa.Column("next_attempt_at", _Instant),
    sa.Column("claimed_until", _Instant),
    sa.Column("sent_at", _Instant),
    sa.Column("slack_channel", sa.String(200)),
    sa.Column("slack_ts", sa.String(40)),
    sa.Index("ix_pipewarden_alerts_state", "state", "id"),
    sa.Index("ix_pipewarden_alerts_created", "created_at"),
)
sa.Table(
    "pipewarden_column_samples",
    release,
    sa.Column("id", _Id, primary_key=True, autoincrement=True),
    sa.Column("measured_at", _Instant, nullable=False),
    sa.Column("table_name", sa.String(200), nullable=False),
    sa.Column("run_id", sa.String(36), nullable=False),
    sa.Column("load", sa.String(10), nullable=False),
    sa.Column("column_name", sa.String(200), nullable=False),
    sa.Column("rows", sa.BigInteger, nullable=False),
    sa.Column("nulls", sa.BigInteger, nullable=False),
    sa.Column("sample", sa.LargeBinary),
    sa.Column("counts", sa.Text),
    sa.Index("ix_pipewarden_column_samples_table", "table_name", "measured_at"),
)
sa.Table(
    "pipewarden_incidents",
    release,
    sa.Column("id", _Id, primary_key=True, autoincrement=True),
    sa.Column("table_name", sa.String(200), nullable=False),
    sa.Column("check", sa.String(300), nullable=False),
    sa.Column("status", sa.String(30), nullable=False),
    sa.Column("severity", sa.Integer, nullable=False),
    sa.Column("opened_at", _Instant, nullable=False),
    sa.Column("last_seen_at", _Instant, nullable=False),
    sa.Column("occurrences", sa.Integer, nullable=False),
    sa.Column("closed_at", _Instant),
    sa.Index(
        "ux_pipewarden_incidents_open",
        "table_name",
        "check",
        unique=True,
        postgresql_where=sa.text("closed_at IS NULL"),
        sqlite_where=sa.text("closed_at IS NULL"),
    ),
)
sa.Table(
    "pipewarden_metrics",
    release,
    sa.Column("id", _Id, primary_key=True, autoincrement=True),
    sa.Column("measured_at", _Instant, nullable=False),
    sa.Column("table_name", sa.String(200), nullable=False),
    sa.Column("metric", sa.String(200), nullable=False),
    sa.Column("value", sa.Float, nullable=False),
    sa.Column("labels", sa.Text, nullable=False),
    sa.Index("ix_pipewarden_metrics_series", "table_name", "metric", "measured_at"),
)
sa.Table(
    "pipewarden_check_results",
    release,
    sa.Column("id", _Id, primary_key=True, autoincrement=True),
    sa.Column("checked_at", _Instant, nullable=False),
    sa.Column("table_name", sa.String(200), nullable=False),
    sa.Column("check", sa.String(300), nullable=False),
    sa.Column("status", sa.String(30), nullable=False),
    sa.Column("observed", sa.Float),
    sa.Column("observed_at", _Instant),
    sa.Column("expected_low", sa.Float),
    sa.Column("expected_high", sa.Float),
    sa.Column("score", sa.Float),
    sa.Column("method", sa.Text),
    sa.Column("reason", sa.Text),
    sa.Column("history_size", sa.Integer),
    sa.Column("run_id", sa.String(36), nullable=False),
    sa.Column("flow_run_id", sa.String(36)),
    sa.Index("ix_pipewarden_check_results_table", "table_name", "checked_at"),
)
sa.Table(
    "pipewarden_quarantine",
    release,
    sa.Column("id", _Id, primary_key=True, autoincrement=True),
    sa.Column("table_name", sa.String(200), nullable=False),
    sa.Column("run_id", sa.String(36), nullable=False),
    sa.Column("primary_key", sa.Text, nullable=False),
    sa.Column("row_json", sa.Text, nullable=False),
    sa.Column("reasons", sa.Text, nullable=False),
    sa.Column("checks", sa.Text, nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("quarantined_at", _Instant, nullable=False),
    sa.Column("released_at", _Instant),
    sa.Column("released_by", sa.String(200)),
    sa.Column("superseded_at", _Instant),
    sa.Column("superseded_by_run", sa.String(36)),
    sa.Index("ix_pipewarden_quarantine_table_status", "table_name", "status"),
)
sa.Table(
    "pipewarden_check_failures",
    release,
    sa.Column("id", _Id, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.String(36), nullable=False, index=True),
    sa.Column("table_name", sa.String(200), nullable=False),
    sa.Column("column_name", sa.String(500), nullable=False),
    sa.Column("check_name", sa.String(500), nullable=False),
    sa.Column("failures", sa.BigInteger, nullable=False),
    sa.Column("examples", sa.Text, nullable=False),
    sa.Column("recorded_at", _Instant, nullable=False),
)
sa.Table(
    "pipewarden_reconcile_runs",
    release,
    sa.Column("run_id", sa.String(36), primary_key=True),
    sa.Column("table_name", sa.String(200), nullable=False, index=True),
    sa.Column("started_at", _Instant, nullable=False, index=True),
    sa.Column("finished_at", _Instant),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("action", sa.String(20), nullable=False),
    sa.Column("mode", sa.String(20)),
    sa.Column("keys_only", sa.Boolean, nullable=False),
    sa.Column("key_range", sa.Text),
    sa.Column("rows_compared", sa.BigInteger, nullable=False),
    sa.Column("coverage", sa.Float),
    sa.Column("complete", sa.Boolean, nullable=False),
    sa.Column("stopped_by", sa.String(20)),
    sa.Column("missing", sa.Integer, nullable=False),
    sa.Column("extra", sa.Integer, nullable=False),
    sa.Column("changed", sa.Integer, nullable=False),
    sa.Column("repaired", sa.Integer, nullable=False),
    sa.Column("remaining", sa.Integer),
    sa.Column("duration_seconds", sa.Float),
    sa.Column("timings", sa.Text),
    sa.Column("error", sa.Text),
    sa.Column("flow_run_id", sa.String(36)),
)
sa.Table(
    "pipewarden_reconcile_diffs",
    release,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.String(36), nullable=False, index=True),
    sa.Column("table_name", sa.String(200), nullable=False),
    sa.Column("diff", sa.String(10), nullable=False),
    sa.Column("key_value", sa.Text, nullable=False),
    sa.Column("columns", sa.Text),
    sa.Column("source_hash", sa.String(40)),
    sa.Column("target_hash", sa.String(40)),
)
sa.Table(
    "pipewarden_reconcile_repairs",
    release,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.String(36), nullable=False, index=True),
    sa.Column("table_name", sa.String(200), nullable=False),
    sa.Column("key_value", sa.Text, nullable=False),
    sa.Column("action", sa.String(10), nullable=False),
    sa.Column("hash_before", sa.String(40)),
    sa.Column("hash_after", sa.String(40)),
    sa.Column("repaired_at", _Instant, nullable=False),
    sa.Column("reason", sa.String(40)),
)


def upgrade() -> None:
    present = _present_layout()
    for table in release.sorted_tables:
        layout = present.get(table.name)
        if layout is None:
            op.execute(sa.schema.CreateTable(table))
            layout = TableLayout(frozenset(table.columns.keys()), frozenset())
        for column in table.columns:
            if column.name not in layout.columns:
                if not column.nullable:
                    raise RuntimeError(
                        f"{table.name}.{column.name}: this warehouse's table lacks a column "
                        "that cannot be NULL, so it cannot be added to the rows it holds"
                    )
                op.add_column(table.name, sa.Column(column.name, column.type))
        for index in table.indexes:
            if index.name not in layout.indexes:
                op.execute(sa.schema.CreateIndex(index))


def downgrade() -> None:
    raise NotImplementedError("0001 is the first revision: below it are no tables to keep")


def _present_layout() -> dict[str, TableLayout]:
    """The tables the warehouse has; offline (`--sql`), what the command read beforehand."""
    if context.is_offline_mode():
        given: dict[str, TableLayout] = context.config.attributes.get("present_layout", {})
        return given
    return read_layout(op.get_bind(), release.tables)
