"""Shared plumbing of the small `python -m wrpsim.<verb> key=value …` commands.

Each verb (`perf`, `net`, `report`, `validate`, `calibrate`) starts from its defaults
(`conf/<verb>.yaml`), applies the command line's overrides in Hydra's grammar, does its work,
and prints one JSON line; bad input prints one `wrpsim: error: …` line on stderr (the prefix of
every wrpsim command) and exits with status 2. `--help` (or `-h`) anywhere on the command line
prints the verb's docstring and its keys with defaults and descriptions (`wrpsim.keyhelp`) and
exits 0. Exit statuses, as for the Hydra apps: 0 done, 2 bad input, 1 a failure inside the run,
130 interrupted (Ctrl-C: one line `wrpsim: interrupted`).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from wrpsim.errors import ConfigError, WrpsimError, unknown_key

HELP_FLAGS = ("--help", "-h")


def defaults_path(verb: str) -> Path:
    """`conf/<verb>.yaml` of the catalogs (or of this checkout when the catalogs are elsewhere)."""
    from wrpsim.paths import catalog_dir

    try:
        return catalog_dir("conf") / f"{verb}.yaml"
    except ConfigError:
        return Path(__file__).resolve().parents[1] / "conf" / f"{verb}.yaml"


def load_defaults(verb: str) -> dict[str, Any]:
    """The defaults of `verb` (`conf/<verb>.yaml`) as a plain mapping (a fresh copy, parsed
    by libyaml and cached while the file is unchanged: `wrpsim.yamlfast.omegaconf_load`, whose
    YAML 1.2 floats are what Hydra reads the same file as)."""
    from wrpsim.yamlfast import omegaconf_load

    return omegaconf_load(defaults_path(verb)) or {}


def keyless(arg: str) -> bool:
    """Whether override `arg` has no key before its '=' (`=5`, `+=5`, `~=5`): Hydra's parser
    takes it for a key or config group named '' (its options the root config files; `~=5` a
    traceback)."""
    return "=" in arg and not arg.partition("=")[0].lstrip("+~")


def keyless_message(arg: str, prog: str) -> str:
    """The error for a `keyless` override `arg` of `python -m <prog>`."""
    return (f"malformed override {arg!r}: key=value expected, and it has no key before the '=' "
            f"(python -m {prog} --help lists the keys)")


def parse_overrides(argv: list[str], verb: str) -> list[tuple[str, Any]]:
    """(key, value) pairs of `key=value` arguments; `ConfigError` for a malformed one."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    flags = [a for a in argv if a.startswith("-")]
    if flags:  # (a Hydra app's flags: these verbs take key=value only)
        sweep = " (it runs one configuration: no -m / --multirun sweep; loop in the shell)" \
            if flags[0] in ("-m", "--multirun") else ""
        raise ConfigError(f"{verb}: unknown option {flags[0]!r}{sweep}; arguments are "
                          f"key=value (python -m wrpsim.{verb} --help)")
    bad = next((a for a in argv if keyless(a)), None)
    if bad is not None:
        raise ConfigError(f"{verb}: {keyless_message(bad, f'wrpsim.{verb}')}")
    bare = next((a for a in argv if "=" not in a), None)
    if bare is not None:  # (a path or a name given alone: say which key takes it)
        from pathlib import Path

        keys = load_defaults(verb) if defaults_path(verb).is_file() else {}
        hint = (f"; the folder to read is given as sweep_dir={bare}"
                if "sweep_dir" in keys and Path(bare).is_dir() else "")
        raise ConfigError(f"{verb}: argument {bare!r} is not key=value{hint} (python -m "
                          f"wrpsim.{verb} --help lists the keys)")
    try:
        overrides = OverridesParser.create().parse_overrides(list(argv))
    except HydraException as exc:
        from wrpsim.hydra_errors import tilde_hint

        hint = next((h for h in map(tilde_hint, argv) if h), "")
        raise ConfigError(f"{verb}: bad override: {str(exc).splitlines()[0]}{hint}") from None
    return [(o.key_or_group, o.value()) for o in overrides]


def apply_flat(defaults: dict[str, Any], argv: list[str], verb: str) -> dict[str, Any]:
    """A copy of `defaults` with the overrides applied; `ConfigError` naming an unknown key."""
    cfg = dict(defaults)
    for key, value in parse_overrides(argv, verb):
        if key not in cfg:
            raise unknown_key(verb, key, sorted(cfg))  # (with the nearest key suggested)
        cfg[key] = value
    return cfg


def verb_main(work: Callable[[list[str]], dict], argv: list[str] | None = None,
              sort_keys: bool = False, verb: str | None = None, doc: str | None = None) -> int:
    """Run `work(argv)` and print its result as one JSON line (exit status 0), or print a user
    error as one `wrpsim: error: …` line on stderr (exit status 2), Ctrl-C as one line
    `wrpsim: interrupted` (status 130); a `WrpsimWarning` as one
    `wrpsim: warning: …` line on stderr. With `--help` / `-h` in
    `argv`, print the help of `verb` (its `doc`, the keys of conf/<verb>.yaml) instead, status 0."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if verb is not None and any(a in HELP_FLAGS for a in argv):
        from wrpsim.keyhelp import verb_help

        print(verb_help(verb, doc, defaults_path(verb)), end="")
        return 0
    from wrpsim.app import show_warnings

    show_warnings()  # a WrpsimWarning is one line `wrpsim: warning: …` on stderr
    try:
        result = work(argv)
    except WrpsimError as exc:
        print(f"wrpsim: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl-C: one line, not a traceback
        print("wrpsim: interrupted", file=sys.stderr)
        return 130
    print(json.dumps(result, sort_keys=sort_keys))
    return 0
