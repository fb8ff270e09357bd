"""Fixtures for the checks tests."""

from tests.checks.quarantine_support import warehouse_url

__all__ = ["warehouse_url"]
