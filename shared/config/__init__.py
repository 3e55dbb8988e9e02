"""Typed settings from app settings and the per-stream JSON document."""

from shared.config.clouds import CLOUDS, GRAPH_VERSION, Cloud, CloudName
from shared.config.loader import ConfigError, load_settings, with_overrides
from shared.config.model import CredentialType, DateWindow, OutputFormat, Settings, StreamOptions
from shared.config.specs import SETTINGS, SETTINGS_BY_NAME, SettingSpec

__all__ = [
    "CLOUDS", "GRAPH_VERSION", "SETTINGS", "SETTINGS_BY_NAME", "Cloud", "CloudName", "ConfigError", "CredentialType",
    "DateWindow", "OutputFormat", "SettingSpec", "Settings", "StreamOptions", "load_settings", "with_overrides",
]
