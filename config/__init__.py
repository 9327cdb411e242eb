"""Configuration: the typed settings every entry point builds once and passes in."""

from config.settings import ConfigError, Settings, load_settings, settings_or_exit

__all__ = ["ConfigError", "Settings", "load_settings", "settings_or_exit"]
