"""Fixtures for the dashboard tests: configurations that point at the local Grafana."""

from collections.abc import Callable

import pytest

from pipewarden.config.models import PipewardenConfig
from tests.dashboards.support import config_for
from tests.fixtures.grafana import LocalGrafana


@pytest.fixture
def grafana_config(grafana: LocalGrafana) -> Callable[..., PipewardenConfig]:
    """`grafana_config(**overrides)`: a configuration for the local Grafana."""
    return lambda **overrides: config_for(grafana.url, **overrides)
