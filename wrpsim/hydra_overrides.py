"""Hydra's command-line overrides of the plainest forms parsed without its ANTLR parser.

Hydra parses every override (`key=value`) with an ANTLR grammar (`OverrideLexer.g4`,
`OverrideParser.g4`) run in pure Python; its first parse in a process builds the lexer's and
parser's prediction tables, ~7.5 ms, and every run parses at least one override: the
`hydra.mode=RUN` Hydra appends itself (`wrpsim.hydra_mode`). Inside `simple_overrides()`,
`OverridesParser.parse_rule(s, "override")` builds the `Override` itself when `s` is

    KEY=VALUE

with KEY a dot path of identifiers (`[A-Za-z_][A-Za-z0-9_-]*` joined by `.`, the grammar's ID /
DOT_PATH key: no `+` / `~` / `@`, no `/` group path) and VALUE, right after the `=`, one of

- a decimal integer (`-?(0|[1-9][0-9]*)`, the grammar's INT): that `int`;
- an identifier (`[A-Za-z_][A-Za-z0-9_-]*`, the grammar's ID) other than the words the lexer
  reads as another token (`true`, `false`, `null`, `inf`, `nan` in any case): that string;
- a string of the characters `A-Za-z0-9_.-/` holding at least one `/` (a path): the lexer cuts
  it into ID, INT, FLOAT, BOOL, NULL and UNQUOTED_CHAR tokens, the parser reads them as one
  primitive of several tokens, and the visitor joins their texts: the string itself;

which is what the grammar gives for such strings (type CHANGE, value type ELEMENT, no package;
`tests/test_hydra_overrides.py` compares both parsers on generated strings). Anything else —
quoted values, sweeps, lists, functions, interpolations, whitespace, escapes, `+key`, `~key`,
`group@package`, a bad override and its error message — goes to Hydra's parser as before.
"""

from __future__ import annotations

import re
from contextlib import contextmanager

_KEY = r"[A-Za-z_][A-Za-z0-9_-]*(?:\.[A-Za-z_][A-Za-z0-9_-]*)*"
_SIMPLE = re.compile(rf"({_KEY})=(?:(-?(?:0|[1-9][0-9]*))|([A-Za-z_][A-Za-z0-9_-]*)"
                     rf"|([A-Za-z0-9_./-]*/[A-Za-z0-9_./-]*))")
_WORDS = frozenset({"true", "false", "null", "inf", "nan"})  # (BOOL, NULL, FLOAT tokens)


def simple_value(s: str) -> tuple[str, object] | None:
    """(key, value) of an override `s` of the forms above, or None."""
    m = _SIMPLE.fullmatch(s)
    if m is None:
        return None
    key, integer, word, path = m.groups()
    if integer is not None:
        return key, int(integer)
    if word is not None:
        return None if word.lower() in _WORDS else (key, word)
    return key, path


@contextmanager
def simple_overrides():
    """Within the block, Hydra's override parser takes the plain forms (module docstring)
    without ANTLR; with another Hydra layout nothing changes."""
    try:
        from hydra.core.override_parser.overrides_parser import OverridesParser
        from hydra.core.override_parser.types import Override, OverrideType, ValueType
    except ImportError:
        yield
        return
    original = OverridesParser.__dict__.get("parse_rule")
    if original is None:
        yield
        return

    def parse_rule(self, s, rule_name):
        simple = simple_value(s) if rule_name == "override" and type(s) is str else None
        if simple is None:
            return original(self, s, rule_name)
        ret = Override(type=OverrideType.CHANGE, key_or_group=simple[0], _value=simple[1],
                       value_type=ValueType.ELEMENT, package=None)
        ret.input_line = s  # (as `parse_rule` does)
        ret.validate()
        return ret

    OverridesParser.parse_rule = parse_rule
    try:
        yield
    finally:
        OverridesParser.parse_rule = original
