"""Rule files for static semantic routing, in the style of vLLM Semantic Router.

A rule file defines *signals* (facts about a request, each computed by the router with its own
errors and latency) and *decisions* that combine them with AND / OR / NOT and name where
matching requests go::

    evaluation: parallel                               # or sequential (the signals' cost)
    signals:
      code:  {type: category, values: [code]}          # the category the router sees (or
                                                       #   type: domain, the same)
      long:  {type: context, min_tokens: 4096}         # prompt tokens in [min, max]
      hard:  {type: complexity, min: 0.7}              # complexity in [min, max]; or high…
      urgent: {type: keyword, keywords: [urgent, asap]}        # detectors (detectors.py):
      debug: {type: embedding, candidates: [debug_code]}       #   keyword, embedding, pii,
      jb:    {type: jailbreak, tpr: 0.95, fpr: 0.01}           #   jailbreak, language,
      pii:   {type: pii, pii_types_allowed: [EMAIL_ADDRESS]}   #   modality
      es:    {type: language, values: [es]}
    decisions:
      - name: block-jailbreak
        priority: 200                                  # higher first; ties keep file order
        when: jb                                       # signal | and/or: [...] | not: c
        block: true                                    # refuse (dropped: router_rejected)
      - name: hard-code
        priority: 100
        when: {and: [code, hard]}
        models: [llama3.1-70b]                         # preference list: first model served
      - name: long-context
        priority: 90
        when: long
        pools: [long]                                  # or a preference list of pools
    default: {models: [llama3.1-8b, llama3.1-70b]}     # when no decision matches (required)

Every signal takes `latency_s` (default by type: `wrpsim.router.detectors.LATENCY_S`). The
signals the decisions refer to are the ones the router computes for every request (vLLM SR
extracts the used signals before its decision engine runs); their cost is the largest latency
with `evaluation: parallel` (the default: vLLM SR runs its classifiers concurrently) or the sum
with `sequential` — `RuleSet.signal_time_s`, the router's service time under
`router.service.signal: rules` (`wrpsim.router.service`). A signal no decision uses costs
nothing and draws nothing.

`parse_rules` validates the whole file and raises `ConfigError` naming the file, the signal or
decision and the field (``decision 'hard-code' field when.and[1]: unknown signal 'hrd'``).
A signal whose fact is unknown for a request (no category, no complexity) is false.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from wrpsim.errors import ConfigError
from wrpsim.router.detectors import DETECTORS, LATENCY_S
from wrpsim.workload.categories import LEVELS

SIGNAL_KEYS = {"category": ("values",), "domain": ("values",),
               "context": ("min_tokens", "max_tokens"), "complexity": ("min", "max"),
               **{k: c.KEYS for k, c in DETECTORS.items()}}
DECISION_KEYS = ("name", "priority", "when", "models", "pools", "block", "description")
TOP_KEYS = ("signals", "decisions", "default", "evaluation", "description")
EVALUATION = ("parallel", "sequential")

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
    block: bool = False


@dataclass(frozen=True)
class RuleSet:
    """A parsed rule file: decisions by priority, the default, the compiled first-match
    function `first(request, cat, cx, S)`, the detectors the decisions use as (index into `S`,
    name, detector), and the per-request cost of the used signals (`signal_time_s`)."""

    decisions: list
    default: Decision
    first: Callable
    detectors: tuple
    n_detectors: int
    used: tuple[str, ...]
    signal_time_s: float
    evaluation: str
    #: category / domain signal -> the categories it names (`RuleRouter.named_categories`)
    categories: dict = dataclasses.field(default_factory=dict)


def _bound(where: str, key: str, v: Any, levels: bool) -> float:
    """A complexity bound (`levels`: a number in [0, 1] or a level name) or a prompt-token
    bound (a finite number >= 0): a bound outside the fact's range could never be met."""
    if levels and isinstance(v, str) and v in LEVELS:
        return LEVELS[v]
    if not isinstance(v, (int, float)) or isinstance(v, bool) or v != v:
        raise ConfigError(f"{where} field {key}: a number is required, got {v!r}")
    if levels and not 0.0 <= v <= 1.0:
        raise ConfigError(f"{where} field {key}: complexity lies in [0, 1] (or a level: "
                          f"{', '.join(LEVELS)}), got {v!r}")
    if not levels and not 0.0 <= v < float("inf"):
        raise ConfigError(f"{where} field {key}: a prompt-token count >= 0 is required, "
                          f"got {v!r}")
    return float(v)


def _signal(where: str, spec: Any, consts: dict, dets: list) -> tuple[str, float]:
    """(the signal as an expression, its latency); its category set goes into `consts`, a
    detector into `dets` (read as `S[i]`)."""
    if not isinstance(spec, dict):
        raise ConfigError(f"{where}: expected a mapping with a type, got {spec!r}")
    if not isinstance(spec.get("type"), str) or spec["type"] not in SIGNAL_KEYS:
        raise ConfigError(f"{where} field type: unknown signal type {spec.get('type')!r}; "
                          f"valid types: {', '.join(sorted(SIGNAL_KEYS))}")
    kind = spec["type"]
    bad = sorted(k for k in spec
                 if k not in ("type", "description", "latency_s", *SIGNAL_KEYS[kind]))
    if bad:
        raise ConfigError(f"{where} field {bad[0]}: unknown for type {kind}; valid: "
                          f"{', '.join(('latency_s', *SIGNAL_KEYS[kind]))}")
    lat = spec.get("latency_s", LATENCY_S[kind])
    if not isinstance(lat, (int, float)) or isinstance(lat, bool) or not 0 <= lat < float("inf"):
        raise ConfigError(f"{where} field latency_s: a finite number >= 0 is required, "
                          f"got {lat!r}")
    return _expr(where, kind, spec, consts, dets), float(lat)


def _expr(where: str, kind: str, spec: dict, consts: dict, dets: list) -> str:
    if kind in DETECTORS:
        dets.append(DETECTORS[kind](where, spec))
        return f"S[{len(dets) - 1}]"
    if kind in ("category", "domain"):
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


def _condition(where: str, field: str, c: Any, signals: dict[str, str],
               used: dict | None = None) -> str:
    if isinstance(c, str):
        if c not in signals:
            raise ConfigError(f"{where} field {field}: unknown signal {c!r}; defined signals: "
                              f"{', '.join(sorted(signals)) or '(none)'}")
        if used is not None:
            used[c] = True
        return signals[c]
    if not isinstance(c, dict) or len(c) != 1 or next(iter(c)) not in ("and", "or", "not"):
        raise ConfigError(f"{where} field {field}: expected a signal name or a mapping with one "
                          f"key and / or / not, got {c!r}")
    op, arg = next(iter(c.items()))
    if op == "not":
        return f"(not {_condition(where, f'{field}.not', arg, signals, used)})"
    if not isinstance(arg, list) or not arg:
        raise ConfigError(f"{where} field {field}.{op}: a non-empty list of conditions is "
                          f"required, got {arg!r}")
    parts = [_condition(where, f"{field}.{op}[{i}]", a, signals, used)
             for i, a in enumerate(arg)]
    return "(" + f" {op} ".join(parts) + ")"


def compile_rules(decisions: list[Decision], consts: dict) -> Callable[[Any, Any, Any], int]:
    """One function (request, category, complexity, detector results S) -> index of the first
    matching decision (len(decisions) when none does). The expressions come from `_signal` /
    `_condition`, built only from validated numbers, operators, `S[i]` and the names of
    `consts` — never from user text."""
    lines = ["def first_match(r, cat, cx, S=()):", "    p = r.prompt_tokens"]
    lines += [f"    if {d.expr}: return {i}" for i, d in enumerate(decisions)]
    lines.append(f"    return {len(decisions)}")
    ns = dict(consts)
    exec("\n".join(lines), ns)  # generated from validated parts only (see docstring)
    return ns["first_match"]


def _targets(where: str, d: dict) -> tuple[tuple[str, ...], tuple[str, ...]]:
    models, pools = d.get("models"), d.get("pools")
    if (models is None) == (pools is None):
        alt = "" if where.endswith("'default'") else " (or block: true)"
        raise ConfigError(f"{where} field models: give exactly one of models or pools{alt}")
    key, val = ("models", models) if models is not None else ("pools", pools)
    if not isinstance(val, list) or not val or not all(isinstance(v, str) for v in val):
        raise ConfigError(f"{where} field {key}: a non-empty list of names is required, "
                          f"got {val!r}")
    return (tuple(val), ()) if key == "models" else ((), tuple(val))


def parse_rules(raw: Any, source: str) -> tuple[list[Decision], Decision, Callable]:
    """Decisions sorted by priority (highest first, ties in file order), the default, and the
    compiled first-match function over the sorted decisions (`compile_rules`)."""
    rs = parse_ruleset(raw, source)
    return rs.decisions, rs.default, rs.first


def _block(where: str, d: dict) -> bool:
    b = d.get("block", False)
    if not isinstance(b, bool):
        raise ConfigError(f"{where} field block: true or false is required, got {b!r}")
    if b and (d.get("models") is not None or d.get("pools") is not None):
        raise ConfigError(f"{where} field block: a blocking decision takes no models or pools")
    return b


def parse_ruleset(raw: Any, source: str) -> RuleSet:
    """The whole rule file as a `RuleSet` (see the module docstring)."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: a rule file must be a mapping with keys "
                          f"{', '.join(TOP_KEYS)}")
    bad = sorted(k for k in raw if k not in TOP_KEYS)
    if bad:
        raise ConfigError(f"{source}: unknown key(s) {bad}; valid keys: {', '.join(TOP_KEYS)}")
    sig = raw.get("signals") or {}
    if not isinstance(sig, dict):
        raise ConfigError(f"{source} field signals: expected a mapping of name -> signal")
    ev = raw.get("evaluation", "parallel")
    if ev not in EVALUATION:
        raise ConfigError(f"{source} field evaluation: expected one of "
                          f"{', '.join(EVALUATION)}, got {ev!r}")
    consts: dict[str, frozenset] = {}
    dets: list = []
    parsed = {str(n): _signal(f"{source}: signal {n!r}", s, consts, dets)
              for n, s in sig.items()}
    signals = {n: e for n, (e, _) in parsed.items()}
    used: dict[str, bool] = {}
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
        expr = _condition(where, "when", d["when"], signals, used)
        if _block(where, d):
            out.append(Decision(d["name"], float(pr), i, expr, (), (), True))
        else:
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
    names = [n for n in signals if n in used]
    lat = [parsed[n][1] for n in names]
    cost = (max(lat, default=0.0) if ev == "parallel" else sum(lat))
    idx = [(int(signals[n][2:-1]), n) for n in names if signals[n].startswith("S[")]
    detectors = tuple((i, n, dets[i]) for i, n in idx)
    # (a category signal's expression is "(cat in V<i>)", V<i> its set in `consts`: `_expr`)
    cats = {n: consts[e[len("(cat in "):-1]] for n, e in signals.items()
            if e.startswith("(cat in ")}
    return RuleSet(out, default, compile_rules(out, consts), detectors, len(dets), tuple(names),
                   float(cost), ev, cats)
