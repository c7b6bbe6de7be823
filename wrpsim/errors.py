"""User-facing errors.

Every error a user can cause with bad input (a malformed trace row, an unknown catalog name, an
impossible configuration) is raised as a `WrpsimError` subclass whose message names the file,
line or field and, where there is a closed set, the valid choices. The command-line entry points
print these messages without a traceback and exit with status 2.
"""

from __future__ import annotations

import math


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


def number(where: str, value, lo: float | None = None, hi: float | None = None,
           strict_lo: bool = False, finite: bool = False, or_null: bool = False) -> float | None:
    """`value` as a float within the bounds (`lo` exclusive when `strict_lo`; finite when
    `finite`; None allowed when `or_null`), else the standard 'must be a number' error."""
    if value is None and or_null:
        return None
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if ok and finite:
        ok = math.isfinite(value)
    if ok and lo is not None:
        ok = value > lo if strict_lo else value >= lo
    if ok and hi is not None:
        ok = value <= hi
    if not ok:
        bounds = []
        if lo is not None:
            bounds.append(f"{'>' if strict_lo else '>='} {lo}")
        if hi is not None:
            bounds.append(f"<= {hi}")
        rule = f" {' and '.join(bounds)}" if bounds else ""
        raise ConfigError(f"{where} must be a number{rule}{' or null' if or_null else ''}, "
                          f"got {value!r}")
    return float(value)
