"""Imports every module that adds a table to `records.tables.metadata`, so all get created."""

from pipewarden.records import metrics, quarantine, reconcile_runs  # noqa: F401
