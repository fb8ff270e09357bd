"""Imports every module that adds a table to `records.tables.metadata`, so all get created."""

from pipewarden.records import (  # noqa: F401
    alerts,
    column_samples,
    incidents,
    metrics,
    quarantine,
    reconcile_runs,
)
