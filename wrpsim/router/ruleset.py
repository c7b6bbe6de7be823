"""Rule files for static semantic routing, in the style of vLLM Semantic Router.

A rule file defines *signals* (cheap facts about a request) and *decisions* that combine them
with AND / OR / NOT and name where matching requests go::

    signals:
      code:  {type: category, values: [code]}          # the category the router sees
      long:  {type: context, min_tokens: 4096}         # prompt tokens in [min, max]
      hard:  {type: complexity, min: 0.7}              # complexity in [min, max]; or high…
    decisions:
      - name: hard-code
        priority: 100                                  # higher first; ties keep file order
        when: {and: [code, hard]}                      # signal | and/or: [...] | not: c
        models: [llama3.1-70b]                         # preference list: first model served
      - name: long-context
        priority: 90
        when: long
        pools: [long]                                  # or a preference list of pools
    default: {models: [llama3.1-8b, llama3.1-70b]}     # when no decision matches (required)

`parse_rules` validates the whole file and raises `ConfigError` naming the file, the signal or
decision and the field (``decision 'hard-code' field when.and[1]: unknown signal 'hrd'``).
A signal whose fact is unknown for a request (no category, no complexity) is false.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from wrpsim.errors import ConfigError
from wrpsim.workload.categories import LEVELS

SIGNAL_KEYS = {"category": ("values",), "context": ("min_tokens", "max_tokens"),
               "complexity": ("min", "max")}
DECISION_KEYS = ("name", "priority", "when", "models", "pools", "description")
TOP_KEYS = ("signals", "decisions", "default", "description")

@dataclass(frozen=True)
class Decision:
    """One parsed decision: its condition as a Python expression over `cat` (category seen),
    `cx` (complexity seen) and `p` (prompt tokens), and its target lists."""

    name: str
    priority: float
    order: int
    expr: str
    models: tuple[str, ...]
    pools: tuple[str, ...]


def _bound(where: str, key: str, v: Any, levels: bool) -> float:
    if levels and isinstance(v, str) and v in LEVELS:
        return LEVELS[v]
    if not isinstance(v, (int, float)) or isinstance(v, bool) or v != v:
        raise ConfigError(f"{where} field {key}: a number is required, got {v!r}")
    return float(v)


def _signal(where: str, spec: Any, consts: dict) -> str:
    """The signal as an expression; its category set goes into `consts`."""
    if not isinstance(spec, dict) or spec.get("type") not in SIGNAL_KEYS:
        raise ConfigError(f"{where} field type: expected one of "
                          f"{', '.join(sorted(SIGNAL_KEYS))}, got {spec!r}")
    kind = spec["type"]
    bad = sorted(k for k in spec if k not in ("type", "description", *SIGNAL_KEYS[kind]))
    if bad:
        raise ConfigError(f"{where} field {bad[0]}: unknown for type {kind}; valid: "
                          f"{', '.join(SIGNAL_KEYS[kind])}")
    if kind == "category":
        vals = spec.get("values")
        if not isinstance(vals, list) or not vals or not all(isinstance(v, str) for v in vals):
            raise ConfigError(f"{where} field values: a non-empty list of category names is "
                              f"required, got {vals!r}")
        name = f"V{len(consts)}"
        consts[name] = frozenset(vals)
        return f"(cat in {name})"
    lo_key, hi_key = SIGNAL_KEYS[kind]
    if spec.get(lo_key) is None and spec.get(hi_key) is None:
        raise ConfigError(f"{where} field {lo_key}: give {lo_key} and/or {hi_key}")
    lv = kind == "complexity"
    lo = _bound(where, lo_key, spec[lo_key], lv) if spec.get(lo_key) is not None else None
    hi = _bound(where, hi_key, spec[hi_key], lv) if spec.get(hi_key) is not None else None
    if lo is not None and hi is not None and hi < lo:
        raise ConfigError(f"{where} field {hi_key}: {hi} is below {lo_key} {lo}")
    var = "p" if kind == "context" else "cx"
    parts = [] if kind == "context" else ["cx is not None"]
    if lo is not None:
        parts.append(f"{var} >= {lo!r}")
    if hi is not None:
        parts.append(f"{var} <= {hi!r}")
    return "(" + " and ".join(parts) + ")"


def _condition(where: str, field: str, c: Any, signals: dict[str, str]) -> str:
    if isinstance(c, str):
        if c not in signals:
            raise ConfigError(f"{where} field {field}: unknown signal {c!r}; defined signals: "
                              f"{', '.join(sorted(signals)) or '(none)'}")
        return signals[c]
    if not isinstance(c, dict) or len(c) != 1 or next(iter(c)) not in ("and", "or", "not"):
        raise ConfigError(f"{where} field {field}: expected a signal name or a mapping with one "
                          f"key and / or / not, got {c!r}")
    op, arg = next(iter(c.items()))
    if op == "not":
        return f"(not {_condition(where, f'{field}.not', arg, signals)})"
    if not isinstance(arg, list) or not arg:
        raise ConfigError(f"{where} field {field}.{op}: a non-empty list of conditions is "
                          f"required, got {arg!r}")
    parts = [_condition(where, f"{field}.{op}[{i}]", a, signals) for i, a in enumerate(arg)]
    return "(" + f" {op} ".join(parts) + ")"


def compile_rules(decisions: list[Decision], consts: dict) -> Callable[[Any, Any, Any], int]:
    """One function (request, category, complexity) -> index of the first matching decision
    (len(decisions) when none does). The expressions come from `_signal` / `_condition`, built
    only from validated numbers, operators and the names of `consts` — never from user text."""
    lines = ["def first_match(r, cat, cx):", "    p = r.prompt_tokens"]
    lines += [f"    if {d.expr}: return {i}" for i, d in enumerate(decisions)]
    lines.append(f"    return {len(decisions)}")
    ns = dict(consts)
    exec("\n".join(lines), ns)  # generated from validated parts only (see docstring)
    return ns["first_match"]


def _targets(where: str, d: dict) -> tuple[tuple[str, ...], tuple[str, ...]]:
    models, pools = d.get("models"), d.get("pools")
    if (models is None) == (pools is None):
        raise ConfigError(f"{where} field models: give exactly one of models or pools")
    key, val = ("models", models) if models is not None else ("pools", pools)
    if not isinstance(val, list) or not val or not all(isinstance(v, str) for v in val):
        raise ConfigError(f"{where} field {key}: a non-empty list of names is required, "
                          f"got {val!r}")
    return (tuple(val), ()) if key == "models" else ((), tuple(val))


def parse_rules(raw: Any, source: str) -> tuple[list[Decision], Decision, Callable]:
    """Decisions sorted by priority (highest first, ties in file order), the default, and the
    compiled first-match function over the sorted decisions (`compile_rules`)."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: a rule file must be a mapping with keys "
                          f"{', '.join(TOP_KEYS)}")
    bad = sorted(k for k in raw if k not in TOP_KEYS)
    if bad:
        raise ConfigError(f"{source}: unknown key(s) {bad}; valid keys: {', '.join(TOP_KEYS)}")
    sig = raw.get("signals") or {}
    if not isinstance(sig, dict):
        raise ConfigError(f"{source} field signals: expected a mapping of name -> signal")
    consts: dict[str, frozenset] = {}
    signals = {str(n): _signal(f"{source}: signal {n!r}", s, consts) for n, s in sig.items()}
    decs = raw.get("decisions") or []
    if not isinstance(decs, list):
        raise ConfigError(f"{source} field decisions: expected a list of decisions")
    out, names = [], set()
    for i, d in enumerate(decs):
        if not isinstance(d, dict) or not isinstance(d.get("name"), str) or not d["name"]:
            raise ConfigError(f"{source}: decision #{i} field name: a non-empty name is required")
        where = f"{source}: decision {d['name']!r}"
        if d["name"] in names:
            raise ConfigError(f"{where} field name: duplicate decision name")
        names.add(d["name"])
        bad = sorted(k for k in d if k not in DECISION_KEYS)
        if bad:
            raise ConfigError(f"{where} field {bad[0]}: unknown key; valid keys: "
                              f"{', '.join(DECISION_KEYS)}")
        pr = d.get("priority", 0)
        if not isinstance(pr, (int, float)) or isinstance(pr, bool):
            raise ConfigError(f"{where} field priority: a number is required, got {pr!r}")
        if "when" not in d:
            raise ConfigError(f"{where} field when: a condition is required")
        expr = _condition(where, "when", d["when"], signals)
        out.append(Decision(d["name"], float(pr), i, expr, *_targets(where, d)))
    dflt = raw.get("default")
    if not isinstance(dflt, dict):
        raise ConfigError(f"{source} field default: a mapping with models or pools is required")
    bad = sorted(k for k in dflt if k not in ("models", "pools", "description"))
    if bad:
        raise ConfigError(f"{source}: decision 'default' field {bad[0]}: unknown key; valid "
                          "keys: models, pools, description")
    default = Decision("default", float("-inf"), len(out), "True",
                       *_targets(f"{source}: decision 'default'", dflt))
    out.sort(key=lambda d: (-d.priority, d.order))
    return out, default, compile_rules(out, consts)
