"""Fixtures for the dashboard tests: a local Grafana, and configurations that point at it."""

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pipewarden.config.load import parse_config
from pipewarden.config.models import PipewardenConfig
from tests.dashboards.grafana_server import LocalGrafana

TOKEN = "glsa_token-that-must-never-show-7f3a"
PASSWORD = "reader-password-that-must-never-show-91c2"
READER_URL = (
    f"postgresql+psycopg://pipewarden_grafana:{PASSWORD}@db.internal:5433/warehouse"
    "?sslmode=verify-full"
)


@pytest.fixture
def grafana() -> Iterator[LocalGrafana]:
    """A local Grafana whose valid token is TOKEN."""
    server = LocalGrafana(TOKEN).start()
    try:
        yield server
    finally:
        server.stop()


def config_for(url: str, **grafana: Any) -> PipewardenConfig:
    """A configuration whose grafana: section points at `url`; `grafana` overrides its keys."""
    section = {"url": url, "token": TOKEN, "warehouse_url": READER_URL, **grafana}
    return parse_config(
        {
            "warehouse": {"url": "sqlite:///unused.sqlite"},
            "sources": {"shop": {"url": "sqlite:///unused.sqlite"}},
            "tables": {"orders": {"source": "shop", "primary_key": "id", "cursor": "updated_at"}},
            "grafana": {k: v for k, v in section.items() if v is not None},
        },
        Path("t.yaml"),
    )


@pytest.fixture
def grafana_config(grafana: LocalGrafana) -> Callable[..., PipewardenConfig]:
    """`grafana_config(**overrides)`: a configuration for the local Grafana."""
    return lambda **overrides: config_for(grafana.url, **overrides)
