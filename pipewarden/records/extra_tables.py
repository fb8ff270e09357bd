"""Imports every module that adds a table to `records.tables.metadata`, so all get created."""

from pipewarden.records import column_samples, metrics, quarantine, reconcile_runs  # noqa: F401
