"""Typed configuration: one YAML file, validated at load."""

from pipewarden.config.load import ConfigError, load_config
from pipewarden.config.models import PipewardenConfig, SourceConfig, TableConfig, WarehouseConfig

__all__ = [
    "ConfigError",
    "PipewardenConfig",
    "SourceConfig",
    "TableConfig",
    "WarehouseConfig",
    "load_config",
]
