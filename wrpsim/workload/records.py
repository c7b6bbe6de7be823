"""Typed field access for record-oriented (JSON Lines) trace loaders.

The RAGPulse and agent-round loaders read one JSON object per line (`readers.read_records`) and
take their fields through these helpers, so every bad value raises the same `TraceError` as the
columnar loaders: ``<file>: line <n>: field <name> (<canonical name>): <problem>``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from wrpsim.errors import TraceError

_MISSING = object()


def fail(path: Path, line: int, field: str, what: str, dst: str | None = None) -> TraceError:
    """The standard trace error for record `line` of `path`, field `field` (canonical `dst`)."""
    name = f"{field} ({dst})" if dst else field
    return TraceError(f"{path}: line {line}: field {name}: {what}")


def integer(path: Path, line: int, rec: dict, key: str, dst: str | None = None, low: int = 1,
            required: bool = True) -> int | None:
    """Field `key` of `rec` as an int >= `low` (integral floats accepted; booleans are not).

    A missing or null field is an error when `required`, else None.
    """
    v = rec.get(key, _MISSING)
    if v is _MISSING or v is None:
        if required:
            raise fail(path, line, key, "missing value", dst)
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise fail(path, line, key, f"not an integer: {v!r}", dst)
    if isinstance(v, float) and not (math.isfinite(v) and v.is_integer()):
        raise fail(path, line, key, f"not an integer: {v!r}", dst)
    if v < low:
        what = "token count" if low == 1 else "value"
        raise fail(path, line, key, f"{what} must be >= {low}, got {int(v)}", dst)
    return int(v)


def number(path: Path, line: int, rec: dict, key: str, dst: str | None = None) -> float:
    """Field `key` as a finite float; numeric strings ("82", "1.5") are accepted."""
    v = rec.get(key, _MISSING)
    if v is _MISSING or v is None:
        raise fail(path, line, key, "missing value", dst)
    try:
        if isinstance(v, bool):
            raise ValueError
        x = float(v.strip()) if isinstance(v, str) else float(v)
    except (TypeError, ValueError):
        raise fail(path, line, key, f"not a number: {v!r}", dst) from None
    if not math.isfinite(x):
        raise fail(path, line, key, f"not a finite number: {v!r}", dst)
    return x


def int_list(path: Path, line: int, value: Any, field: str, dst: str | None = None) -> list[int]:
    """`value` as a list of ints (booleans rejected); `field` names it in errors."""
    ok = isinstance(value, list) and all(
        isinstance(x, int) and not isinstance(x, bool) for x in value)
    if not ok:
        raise fail(path, line, field, f"expected a list of integers, got {value!r}", dst)
    return value


def text(path: Path, line: int, rec: dict, key: str, dst: str | None = None,
         required: bool = False) -> str | None:
    """Field `key` as a string (numbers are converted); None if absent/null and not required."""
    v = rec.get(key)
    if v is None:
        if required:
            raise fail(path, line, key, "missing value", dst)
        return None
    if isinstance(v, (dict, list, bool)):
        raise fail(path, line, key, f"expected a string, got {v!r}", dst)
    return str(v)
