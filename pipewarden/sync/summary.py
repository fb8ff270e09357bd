"""A sync run as people read it: in the CLI, in logs, in Prefect."""

from typing import Any

from pipewarden.records.sync_runs import SyncRun


def run_summary(run: SyncRun) -> dict[str, Any]:
    """The figures of one run as plain values."""
    return {
        "table": run.table_name,
        "status": run.status,
        "rows_read": run.rows_read,
        "rows_loaded": run.rows_loaded,
        "rows_unchanged": run.rows_unchanged,
        "rows_quarantined": run.rows_quarantined,
        "batches": run.batches,
        "duration_seconds": round(run.duration_seconds or 0.0, 3),
        "old_watermark": _text(run.old_watermark),
        "new_watermark": _text(run.new_watermark),
        "newest_source_cursor": _text(run.newest_source_cursor),
        "latency_p95_seconds": run.latency_p95_seconds,
        "schema_changes": run.schema_changes,
        "run_id": run.run_id,
    }


def _text(value: Any) -> str | None:
    return None if value is None else str(value)
