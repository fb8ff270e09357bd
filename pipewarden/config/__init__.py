"""Typed configuration: one YAML file, validated at load."""

from pipewarden.config.load import ConfigError, load_config
from pipewarden.config.models import PipewardenConfig, SourceConfig, TableConfig, WarehouseConfig
from pipewarden.config.profiles import CampaignConfig, ProfilesConfig
from pipewarden.config.streams import StreamConfig

PipewardenConfig.model_rebuild(
    _types_namespace={
        "StreamConfig": StreamConfig,
        "ProfilesConfig": ProfilesConfig,
        "CampaignConfig": CampaignConfig,
    }
)

__all__ = [
    "ConfigError",
    "PipewardenConfig",
    "ProfilesConfig",
    "SourceConfig",
    "StreamConfig",
    "TableConfig",
    "WarehouseConfig",
    "load_config",
]
