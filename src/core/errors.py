"""Errors caused by what the user handed us (config, files). Entry points print them as one line
that says what to fix, instead of a traceback from deep inside."""


class UserError(ValueError):
    """Bad input; the message names the key or file and the fix."""


class ConfigError(UserError):
    """A config value is out of range or inconsistent."""
