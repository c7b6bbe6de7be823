"""Static semantic routing: signals combined by prioritised decisions (vLLM Semantic Router).

`RuleRouter` evaluates the decisions of a rule file (`wrpsim.router.ruleset`) in priority order
on the request as its classifier sees it; the first decision that matches names the target —
the first model of its `models` list that the fleet serves, or the first of its `pools` that
exists, or a refusal (`block: true`: the request is dropped, reason ``router_rejected``) — and
the default decision catches the rest. Within the target it places the request on the least
outstanding instance. Detector signals (keyword, embedding, PII, jailbreak, language,
modality: `wrpsim.router.detectors`) are computed for every request, each with its own errors
drawn from the router's stream after the classifier's; under `router.service.signal: rules`
the router's service time per request is the rule file's `signal_time_s` (the used signals'
latencies: their max when evaluated in parallel, their sum when sequential).

Preference lists make one rule file portable across fleets:
on a one-model fleet every decision falls back to that model and only the rule evaluation
remains (the overhead measured in `benchmarks/README.md`).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from wrpsim.errors import ConfigError
from wrpsim.router.config import plain, router_path
from wrpsim.router.ruleset import Decision, parse_ruleset
from wrpsim.router.selection import ModelRouter

NAN = math.nan


def load_rules(rules: Any) -> tuple[Any, str]:
    """(raw mapping, source name) of a rule file path (relative to `routers/`) or mapping."""
    rules = plain(rules)
    if isinstance(rules, dict):
        return rules, "router.rules"
    import yaml

    path = router_path("rules", rules)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise ConfigError(f"router.rules ({path}): invalid YAML: {e}") from None
    return raw, f"router.rules ({Path(path).name})"


class RuleRouter(ModelRouter):
    """First matching decision by priority wins (see the module docstring).

    `rules`: a rule-file path (relative to `routers/`) or the rule mapping itself; plus the
    common `ModelRouter` settings (classifier, decision latency, record)."""

    name = "semantic_rules"

    def __init__(self, rules: Any = "rules/semantic-default.yaml", **common):
        super().__init__(**common)
        raw, self.source = load_rules(rules)
        self.ruleset = rs = parse_ruleset(raw, self.source)
        self.rules, self.default, self._first = rs.decisions, rs.default, rs.first
        self._detectors = rs.detectors
        self.signal_time_s = rs.signal_time_s

    #: a rule file is written for many workloads: a category this one lacks is normal, and
    #: only a name close to one of its categories is said (`Simulation._warn_unknown_categories`)
    categories_may_be_absent = True

    def named_categories(self) -> dict:
        """{rules signal: the categories it names} (`Router.named_categories`)."""
        return {f"rules: signal {n!r} values": v for n, v in self.ruleset.categories.items()}

    def bind(self, fleet, rng):
        """Resolve every decision's target against the fleet (error names the decision)."""
        super().bind(fleet, rng)
        self._targets = [(d.name, *self._resolve(d)) for d in [*self.rules, self.default]]

    def _resolve(self, d: Decision) -> tuple[str | None, str | None]:
        where = f"{self.source}: decision {d.name!r}"
        if d.block:
            return None, None
        if d.models:
            for m in d.models:
                if m in self.fleet.models:
                    return m, None
            raise ConfigError(f"{where} field models: none of {list(d.models)} is served; the "
                              f"fleet serves: {', '.join(self.fleet.models)}")
        for p in d.pools:
            if p in self._pool_cands:
                return None, p
        raise ConfigError(f"{where} field pools: none of {list(d.pools)} exists; pools: "
                          f"{', '.join(sorted(self._pool_cands))}")

    def select(self, request, view, category, complexity):
        """The target of the first matching decision (the default when none matches); model
        and pool None for a blocking decision."""
        if self._detectors:
            S = [False] * self.ruleset.n_detectors
            for i, _name, det in self._detectors:
                S[i] = det.observe(request, self.rng)
            k = self._first(request, category, complexity, S)
        else:
            k = self._first(request, category, complexity)
        name, model, pool = self._targets[k]
        return model, pool, name, NAN
