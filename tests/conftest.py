"""Shared fixtures (tests/fixtures/): real databases, the Prefect harness, local Slack, Grafana."""

import os

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")

pytest_plugins = [
    "tests.fixtures.databases",
    "tests.fixtures.prefect",
    "tests.fixtures.slack",
    "tests.fixtures.grafana",
    "tests.fixtures.shop",
]
