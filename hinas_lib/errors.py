"""The library's own error for a bad setting, at the bottom of the import graph so
that every module (the config, the task plug-ins) can raise it."""


class ConfigError(ValueError):
    """A configuration value is invalid; the message names the field."""
