"""Errors caused by what the user handed us (config, files). Entry points print them as one line
that says what to fix, instead of a traceback from deep inside."""


class UserError(ValueError):
    """Bad input; the message names the key or file and the fix."""


class ConfigError(UserError):
    """A config value is out of range or inconsistent."""


def first_line(err: BaseException, limit: int | None = 300) -> str:
    """The error's first informative line, for a one-line message (dynamo's
    ``backend='inductor' raised:`` says nothing; the line after it is the cause), cut to
    ``limit`` characters (None: whole)."""
    lines = [line.strip() for line in str(err).strip().splitlines() if line.strip()]
    while len(lines) > 1 and lines[0].endswith(" raised:"):
        lines.pop(0)
    return (lines[0] if lines else type(err).__name__)[:limit]
