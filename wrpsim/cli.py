"""Shared plumbing of the small `python -m wrpsim.<verb> key=value …` commands.

Each verb (`perf`, `net`, `report`, `validate`, `calibrate`) starts from its defaults
(`conf/<verb>.yaml`), applies the command line's overrides in Hydra's grammar, does its work,
and prints one JSON line; bad input prints one `wrpsim: error: …` line on stderr (the prefix of
every wrpsim command) and exits with status 2.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

from wrpsim.errors import ConfigError, WrpsimError


def parse_overrides(argv: list[str], verb: str) -> list[tuple[str, Any]]:
    """(key, value) pairs of `key=value` arguments; `ConfigError` for a malformed one."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    try:
        overrides = OverridesParser.create().parse_overrides(list(argv))
    except HydraException as exc:
        raise ConfigError(f"{verb}: bad override: {str(exc).splitlines()[0]}") from None
    return [(o.key_or_group, o.value()) for o in overrides]


def apply_flat(defaults: dict[str, Any], argv: list[str], verb: str) -> dict[str, Any]:
    """A copy of `defaults` with the overrides applied; `ConfigError` naming an unknown key."""
    cfg = dict(defaults)
    for key, value in parse_overrides(argv, verb):
        if key not in cfg:
            raise ConfigError(f"{verb}: unknown key {key!r}; valid keys: {', '.join(sorted(cfg))}")
        cfg[key] = value
    return cfg


def verb_main(work: Callable[[list[str]], dict], argv: list[str] | None = None,
              sort_keys: bool = False) -> int:
    """Run `work(argv)` and print its result as one JSON line (exit status 0), or print a user
    error as one `wrpsim: error: …` line on stderr (exit status 2)."""
    try:
        result = work(sys.argv[1:] if argv is None else argv)
    except WrpsimError as exc:
        print(f"wrpsim: error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(result, sort_keys=sort_keys))
    return 0
