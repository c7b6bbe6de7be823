"""User-facing errors.

Every error a user can cause with bad input (a malformed trace row, an unknown catalog name, an
impossible configuration) is raised as a `WrpsimError` subclass whose message names the file,
line or field and, where there is a closed set, the valid choices. The command-line entry points
print these messages without a traceback and exit with status 2.
"""

from __future__ import annotations


class WrpsimError(Exception):
    """Base class of errors caused by user input; the message is shown verbatim."""


class ConfigError(WrpsimError, ValueError):
    """A configuration value is unknown, out of range or impossible (e.g. model does not fit)."""


class TraceError(WrpsimError, ValueError):
    """A trace file is missing, malformed or holds an invalid value (file, line, field named)."""


def unknown_choice(field: str, value: object, choices) -> ConfigError:
    """Build the standard 'unknown name' error listing the valid choices in sorted order."""
    valid = ", ".join(sorted(str(c) for c in choices))
    return ConfigError(f"{field}: unknown value {value!r}; valid choices: {valid}")


def check_keys(mapping, valid, where: str) -> None:
    """Raise the standard 'unknown key(s)' error if `mapping` has a key outside `valid`."""
    bad = sorted(k for k in mapping if k not in valid)
    if bad:
        raise ConfigError(f"{where}: unknown key(s) {bad}; valid keys: {', '.join(valid)}")
