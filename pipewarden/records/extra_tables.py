"""Imports every module that adds a table to `records.tables.metadata`, so all get created."""

from pipewarden.records import metrics, quarantine  # noqa: F401
from pipewarden.records import reconcile_runs  # noqa: F401,E402
