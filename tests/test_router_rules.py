"""Static semantic rules: priority order, AND/OR/NOT, classifier errors, malformed rule files."""

from __future__ import annotations

import collections

import pytest

from tests.conftest import make_trace
from tests.test_router_fleets import LARGE, SMALL, two_model_cfg
from wrpsim.errors import ConfigError
from wrpsim.router.rules import RuleRouter
from wrpsim.router.ruleset import parse_rules
from wrpsim.sim import Simulation


def _rules(decisions, signals=None, default=None):
    return {"signals": signals or {"code": {"type": "category", "values": ["code"]},
                                   "long": {"type": "context", "min_tokens": 1000},
                                   "hard": {"type": "complexity", "min": "high"}},
            "decisions": decisions, "default": default or {"models": [SMALL]}}


def _route(rules, trace, **kw):
    cfg = two_model_cfg({"_target_": "wrpsim.router.RuleRouter", "rules": rules, **kw})
    sim = Simulation(cfg, trace)
    req, _, _ = sim.run()
    return sim, req.to_pylist()


def _trace(categories, prompts=None, complexity=None):
    n = len(categories)
    extra = {"category": categories}
    if complexity is not None:
        extra["complexity"] = complexity
    return make_trace([0.1 * i for i in range(n)], prompts or [100] * n, [4] * n, **extra)


def test_rules_fire_in_priority_order_not_file_order():
    rules = _rules([
        {"name": "low", "priority": 10, "when": "code", "models": [SMALL]},
        {"name": "high", "priority": 90, "when": "long", "models": [LARGE]},
        {"name": "tie-first", "priority": 10, "when": "hard", "models": [SMALL]},
    ])
    sim, rows = _route(rules, _trace(["code", "code", "prose"], [2000, 100, 100],
                                     [0.9, 0.9, 0.9]))
    # request 0 matches all three: the highest priority wins although it is listed second
    assert [r["model"] for r in rows] == [LARGE, SMALL, SMALL]
    assert [d[3] for d in sim.router.decisions] == ["high", "low", "tie-first"]
    decs, _, _ = parse_rules(rules, "t")
    assert [d.name for d in decs] == ["high", "low", "tie-first"]  # ties keep file order


def test_and_or_not_combine_signals():
    rules = _rules([{"name": "hard-code", "priority": 3, "when": {"and": ["code", "hard"]},
                     "models": [LARGE]},
                    {"name": "not-code-or-long", "priority": 2,
                     "when": {"or": [{"not": "code"}, "long"]}, "models": [LARGE]}])
    sim, rows = _route(rules, _trace(["code", "code", "prose", "code"], [100, 100, 100, 5000],
                                     [0.9, 0.1, 0.1, 0.1]))
    assert [d[3] for d in sim.router.decisions] == ["hard-code", "default", "not-code-or-long",
                                                     "not-code-or-long"]
    assert [r["model"] for r in rows] == [LARGE, SMALL, LARGE, LARGE]


def test_unknown_complexity_or_category_makes_signals_false():
    rules = _rules([{"name": "hard", "priority": 1, "when": "hard", "models": [LARGE]},
                    {"name": "not-code", "priority": 0, "when": {"not": "code"},
                     "models": [LARGE]}])
    trace = make_trace([0.0], [100], [4])  # no category, no complexity
    sim, _rows = _route(rules, trace)
    assert sim.router.decisions[0][3] == "not-code"


def test_pool_targets_and_preference_lists():
    rules = _rules([{"name": "to-large-pool", "priority": 1, "when": "code",
                     "pools": ["nope", "large"]}],
                   default={"models": ["gpt-5", SMALL]})
    _, rows = _route(rules, _trace(["code", "prose"]))
    assert [(r["pool"], r["model"]) for r in rows] == [("large", LARGE), ("small", SMALL)]


def test_confusion_matrix_changes_what_the_router_sees():
    rules = _rules([{"name": "code", "priority": 1, "when": "code", "models": [LARGE]}])
    cats = ["code"] * 400
    sim, rows = _route(rules, _trace(cats), classifier={"confusion": {
        "code": {"code": 0.75, "prose": 0.25}}})
    seen = collections.Counter(d[7] for d in sim.router.decisions)
    assert 0.68 < seen["code"] / 400 < 0.82
    assert sum(r["model"] == LARGE for r in rows) == seen["code"]
    # same seed, same draws
    sim2, _ = _route(rules, _trace(cats), classifier={"confusion": {
        "code": {"code": 0.75, "prose": 0.25}}})
    assert sim2.router.decisions == sim.router.decisions


def test_accuracy_shorthand_and_complexity_noise():
    rules = _rules([{"name": "hard", "priority": 1, "when": "hard", "models": [LARGE]}])
    sim, _ = _route(rules, _trace(["a"] * 300, complexity=[0.79] * 300),
                    classifier={"accuracy": 0.5, "categories": ["a", "b", "c"],
                                "complexity_noise_sd": 0.2})
    seen = collections.Counter(d[7] for d in sim.router.decisions)
    assert 120 < seen["a"] < 180 and seen["b"] + seen["c"] == 300 - seen["a"]
    hard = sum(d[3] == "hard" for d in sim.router.decisions)
    assert 100 < hard < 200  # noise pushes complexity 0.79 across the 0.8 bound about half


def test_decision_latency_counts_in_ttft():
    rules = _rules([])
    _, rows = _route(rules, make_trace([0.0], [100], [2]), decision_latency_s=0.02,
                     decision_latency_per_token_s=0.0001)
    assert rows[0]["ttft_s"] == pytest.approx(0.02 + 0.01 + 0.01)


@pytest.mark.parametrize(("decisions", "signals", "match"), [
    ([{"name": "r1", "when": "cod", "models": [SMALL]}], None,
     r"decision 'r1' field when: unknown signal 'cod'; defined signals: code, hard, long"),
    ([{"name": "r1", "when": {"and": ["code", "hrd"]}, "models": [SMALL]}], None,
     r"decision 'r1' field when\.and\[1\]: unknown signal 'hrd'"),
    ([{"name": "r1", "when": {"xor": ["code"]}, "models": [SMALL]}], None,
     r"decision 'r1' field when: expected a signal name or a mapping with one key"),
    ([{"name": "r1", "when": {"or": []}, "models": [SMALL]}], None,
     r"decision 'r1' field when\.or: a non-empty list"),
    ([{"name": "r1", "priority": "high", "when": "code", "models": [SMALL]}], None,
     r"decision 'r1' field priority: a number is required"),
    ([{"name": "r1", "models": [SMALL]}], None, r"decision 'r1' field when: a condition"),
    ([{"name": "r1", "when": "code", "models": [SMALL], "pools": ["p"]}], None,
     r"decision 'r1' field models: give exactly one of models or pools"),
    ([{"name": "r1", "when": "code", "models": "llama"}], None,
     r"decision 'r1' field models: a non-empty list of names"),
    ([{"name": "r1", "when": "code", "model": [SMALL]}], None,
     r"decision 'r1' field model: unknown key"),
    ([{"name": "r1", "when": "code", "models": [SMALL]},
      {"name": "r1", "when": "code", "models": [SMALL]}], None,
     r"decision 'r1' field name: duplicate"),
    ([{"when": "code", "models": [SMALL]}], None, r"decision #0 field name"),
    ([], {"s": {"type": "regex", "values": ["x"]}}, r"signal 's' field type: unknown signal type "
                                                    r"'regex'; valid types: category, complexity"),
    ([], {"s": {"type": "context", "min_tokens": "4K"}}, r"signal 's' field min_tokens: a "
                                                          r"number is required"),
    ([], {"s": {"type": "complexity", "min": 0.9, "max": 0.1}}, r"signal 's' field max"),
    # bounds outside the fact's range could never be met: a decision that never fires
    ([], {"s": {"type": "complexity", "min": 7}}, r"signal 's' field min: complexity lies in "
                                                  r"\[0, 1\] \(or a level: low, medium, high\)"),
    ([], {"s": {"type": "context", "min_tokens": -5}}, r"signal 's' field min_tokens: a "
                                                       r"prompt-token count >= 0 is required"),
    ([], {"s": {"type": "category", "values": []}}, r"signal 's' field values"),
    ([], {"s": {"type": "category", "values": ["a"], "min": 1}}, r"signal 's' field min: "
                                                                   r"unknown for type category"),
])
def test_malformed_rule_files_name_the_rule_and_field(decisions, signals, match):
    with pytest.raises(ConfigError, match=match):
        RuleRouter(rules=_rules(decisions, signals))


def test_unservable_targets_and_bad_files_are_named():
    rules = _rules([{"name": "gpt", "when": "code", "models": ["gpt-5", "gpt-6"]}])
    with pytest.raises(ConfigError, match=r"decision 'gpt' field models: none of \['gpt-5', "
                                          r"'gpt-6'\] is served"):
        _route(rules, _trace(["code"]))
    with pytest.raises(ConfigError, match=r"field default: a mapping"):
        RuleRouter(rules={"signals": {}, "decisions": []})
    with pytest.raises(ConfigError, match=r"router\.rules: file not found"):
        RuleRouter(rules="rules/nope.yaml")


def test_shipped_rule_file_routes_the_semantic_router_sample_by_category():
    from tests.conftest import compose_cfg

    cfg = compose_cfg("router=semantic-rules", "pool=mixed-a100-h100",
                      "workload=semantic-router-sample")
    sim = Simulation(cfg)
    _req, _, _ = sim.run()
    by_cat = collections.defaultdict(collections.Counter)
    for (_, _, _, _dec, model, *_rest), cat in zip(sorted(sim.router.decisions),
                                                 sim.trace["category"]):
        by_cat[cat][model] += 1
    assert set(by_cat["prose"]) == {SMALL}  # easy chat
    assert set(by_cat["code"]) == {LARGE}  # hard code (complexity 0.8) and long prompts
