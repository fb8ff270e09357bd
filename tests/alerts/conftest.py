"""Fixtures for the alert tests: warehouses on PostgreSQL and SQLite, a small shop source."""

from tests.checks.quarantine_support import warehouse_url
from tests.metrics.support import shop

__all__ = ["shop", "warehouse_url"]
