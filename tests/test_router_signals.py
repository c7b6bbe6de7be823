"""Detector signals of the rule router (keyword, embedding, pii, jailbreak, language, modality):
their error models in closed form, decision truth tables, the signals' cost as the router's
service time, the workload transform that draws their facts, and bad configs on the CLI."""

from __future__ import annotations

import math
import re
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from tests.conftest import make_trace, run_app
from tests.test_bad_inputs import one_error_line
from tests.test_router_fleets import LARGE, SMALL, two_model_cfg
from wrpsim.errors import ConfigError, TraceError
from wrpsim.router.detectors import (
    LATENCY_S,
    Embedding,
    Jailbreak,
    Keyword,
    Language,
    Modality,
    Pii,
)
from wrpsim.router.ruleset import parse_ruleset
from wrpsim.sim import Simulation
from wrpsim.workload.request import to_requests
from wrpsim.workload.signals import assign_signals
from wrpsim.workload.validate import validate_trace

N = 20_000


def req(**kw):
    base = dict(tags=None, intent=None, pii=None, jailbreak=None, language=None, modality=None,
                category=None, complexity=None, prompt_tokens=100)
    return SimpleNamespace(**{**base, **kw})


def within(hits: int, n: int, p: float, z: float = 4.5) -> bool:
    """`hits` of `n` Bernoulli(p) trials within z binomial standard deviations."""
    return abs(hits - n * p) <= z * math.sqrt(n * p * (1 - p)) + 1e-9


def fired(det, requests, seed=0) -> int:
    rng = np.random.default_rng(seed)
    return sum(det.observe(r, rng) for r in requests)


def test_jailbreak_and_pii_detectors_hit_at_their_tpr_and_fpr():
    jb = Jailbreak("t", {"tpr": 0.9, "fpr": 0.05})
    pos, neg = [req(jailbreak=1.0)] * 2_000, [req(jailbreak=0.0)] * (N - 2_000)
    assert within(fired(jb, pos), 2_000, 0.9) and within(fired(jb, neg, 1), N - 2_000, 0.05)
    assert within(fired(jb, [req()] * 5_000, 2), 5_000, 0.05)  # no flag: benign
    assert fired(Jailbreak("t", {"fpr": 0.0}), [req()] * 100) == 0
    pii = Pii("t", {"pii_types_allowed": ["EMAIL_ADDRESS"], "tpr": 0.8, "fpr": 0.1})
    assert pii.truth(req(pii="US_SSN,EMAIL_ADDRESS")) and not pii.truth(req(pii="EMAIL_ADDRESS"))
    assert within(fired(pii, [req(pii="US_SSN")] * 5_000), 5_000, 0.8)
    assert within(fired(pii, [req(pii="EMAIL_ADDRESS")] * 5_000, 2), 5_000, 0.1)


def test_keyword_operator_and_error_rates():
    any_ = Keyword("t", {"keywords": ["urgent", "asap"]})
    all_ = Keyword("t", {"keywords": ["urgent", "asap"], "operator": "and"})
    assert any_.truth(req(tags="asap")) and not all_.truth(req(tags="asap"))
    assert all_.truth(req(tags="asap, urgent,x")) and not any_.truth(req(tags=None))
    noisy = Keyword("t", {"keywords": ["urgent"], "fn_rate": 0.2, "fp_rate": 0.03})
    assert within(fired(noisy, [req(tags="urgent")] * 5_000), 5_000, 0.8)
    assert within(fired(noisy, [req(tags="other")] * N, 1), N, 0.03)


def test_embedding_threshold_gives_the_normal_tail_rates():
    emb = Embedding("t", {"candidates": ["debug"], "threshold": 0.75, "match_similarity": 0.8,
                          "other_similarity": 0.6, "similarity_sd": 0.1})
    tpr, fpr = emb.rates()
    assert tpr == pytest.approx(0.6914625, abs=1e-6)  # Phi(0.5)
    assert fpr == pytest.approx(0.0668072, abs=1e-6)  # 1 - Phi(1.5)
    assert within(fired(emb, [req(intent="debug")] * 5_000), 5_000, tpr)
    assert within(fired(emb, [req(intent="chat")] * N, 1), N, fpr)
    # no intent column: the category stands in for it
    assert emb.truth(req(category="debug")) and not emb.truth(req(intent="chat", category="debug"))


def test_language_accuracy_and_misdetection_over_choices():
    lang = Language("t", {"values": ["es"], "accuracy": 0.9, "choices": ["en", "es", "zh"]})
    # an English prompt fires only when misdetected as es: (1 - 0.9) / 2
    assert within(fired(lang, [req()] * N), N, 0.05)
    assert within(fired(lang, [req(language="es")] * 5_000, 1), 5_000, 0.9)
    img = Modality("t", {"values": ["image", "both"]})
    assert img.choices == ("both", "image", "text") and fired(img, [req()] * 10) == 0
    assert fired(img, [req(modality="image")] * 10) == 10
    exact = Language("t", {"values": ["es"]})
    assert fired(exact, [req(language="es")] * 10) == 10 and fired(exact, [req()] * 10) == 0


RULES = {
    "evaluation": "parallel",
    "signals": {"a": {"type": "keyword", "keywords": ["a"]},
                "b": {"type": "keyword", "keywords": ["b"]},
                "c": {"type": "keyword", "keywords": ["c"]},
                "unused": {"type": "jailbreak"}},
    "decisions": [
        {"name": "a-and-not-b", "priority": 10, "when": {"and": ["a", {"not": "b"}]},
         "models": [SMALL]},
        {"name": "b-or-c", "priority": 20, "when": {"or": ["b", "c"]}, "models": [LARGE]},
        {"name": "all", "priority": 30, "when": {"and": ["a", "b", "c"]}, "block": True}],
    "default": {"models": [LARGE]},
}


@pytest.mark.parametrize("tags,decision", [
    ("", "default"), ("a", "a-and-not-b"), ("b", "b-or-c"), ("c", "b-or-c"),
    ("a,b", "b-or-c"), ("a,c", "b-or-c"), ("b,c", "b-or-c"), ("a,b,c", "all")])
def test_decision_truth_table_with_priorities(tags, decision):
    rs = parse_ruleset(RULES, "t")
    S = [False] * rs.n_detectors
    for i, _, det in rs.detectors:
        S[i] = det.observe(req(tags=tags), None)
    k = rs.first(req(tags=tags), None, None, S)
    assert ([*rs.decisions, rs.default][k]).name == decision
    assert rs.used == ("a", "b", "c")  # the jailbreak signal no decision uses is not computed


def _run(rules, n=50, gap_s=1.0, service="rules", replicas=1, seed=0, **cols):
    trace = make_trace(np.arange(n) * gap_s, [64] * n, [4] * n, **cols)
    cfg = two_model_cfg({"_target_": "wrpsim.router.RuleRouter", "rules": rules,
                         "replicas": replicas, "service": {"signal": service}})
    cfg["seed"] = seed
    sim = Simulation(cfg, trace=trace)
    table, _, _ = sim.run()
    return sim, table.to_pandas()


def _lat_rules(evaluation):
    return {"evaluation": evaluation,
            "signals": {"jb": {"type": "jailbreak", "tpr": 1.0, "fpr": 0.0, "latency_s": 0.04},
                        "kw": {"type": "keyword", "keywords": ["x"], "latency_s": 0.01},
                        "lang": {"type": "language", "values": ["es"], "latency_s": 0.005}},
            "decisions": [{"name": "block", "priority": 9, "when": "jb", "block": True},
                          {"name": "small", "when": {"or": ["kw", "lang"]}, "models": [SMALL]}],
            "default": {"models": [LARGE]}}


def test_route_s_is_the_max_of_parallel_and_the_sum_of_sequential_signal_latencies():
    n = 40
    cols = {"jailbreak": [1.0, 0.0] * (n // 2), "tags": [None, "x", None, None] * (n // 4)}
    for ev, cost in (("parallel", 0.04), ("sequential", 0.055)):
        sim, df = _run(_lat_rules(ev), n=n, **cols)
        assert sim.service.spec.time_s == pytest.approx(cost)
        assert np.allclose(df["route_s"], cost)  # idle router: no queueing
        blocked = df[df["status"] != "completed"]
        assert set(blocked["drop_reason"]) == {"router_rejected"}
        assert len(blocked) == n // 2  # a perfect detector blocks every attempt
        # a refusal ends when the decision is out, not when the router starts on it
        assert np.allclose(blocked["finish_s"], blocked["arrival_s"] + cost)
    dec = sim.router.decisions
    assert {d[3] for d in dec} == {"block", "small", "default"}


def test_one_replica_under_load_queues_and_more_replicas_do_not():
    rules = _lat_rules("parallel")
    _, slow = _run(rules, n=200, gap_s=0.02)  # 50 req/s into a 40 ms router: rho = 2
    _, fast = _run(rules, n=200, gap_s=0.02, replicas=4)
    assert slow["route_s"].iloc[-1] > 1.0 and slow["route_s"].is_monotonic_increasing
    assert np.allclose(fast["route_s"], 0.04)


def test_same_seed_same_bytes_and_default_rules_draw_nothing_new():
    rules = {**_lat_rules("parallel")}
    rules["signals"] = {**rules["signals"], "jb": {"type": "jailbreak", "tpr": 0.7, "fpr": 0.2}}
    a = _run(rules, n=60, jailbreak=[1.0, 0.0, 0.0] * 20)[1]
    b = _run(rules, n=60, jailbreak=[1.0, 0.0, 0.0] * 20)[1]
    c = _run(rules, n=60, jailbreak=[1.0, 0.0, 0.0] * 20, seed=1)[1]
    pd.testing.assert_frame_equal(a, b)
    assert not a["status"].equals(c["status"])
    sim, df = _run("rules/semantic-default.yaml", n=10, service="none",
                   category=["code"] * 10)
    assert sim.router._detectors == () and (df["route_s"] == 0).all()
    assert sim.router.signal_time_s == LATENCY_S["category"]  # used only under signal: rules


def test_signals_transform_draws_configured_shares_only_where_missing():
    n = 10_000
    df = make_trace(np.arange(n), [8] * n, [8] * n,
                    category=["code", "prose"] * (n // 2),
                    language=[None] * (n - 1) + ["fr"])
    out = assign_signals(df, {"jailbreak": {"prose": 0.1, "default": 0.0},
                              "pii": {"US_SSN": 0.2}, "tags": {"urgent": {"code": 0.5}},
                              "language": {"en": 3, "es": 1},
                              "intent": {"code": {"debug": 1}}}, np.random.default_rng(0))
    prose = out["category"] == "prose"
    assert out.loc[~prose, "jailbreak"].sum() == 0
    assert within(int(out.loc[prose, "jailbreak"].sum()), n // 2, 0.1)
    assert within(int(out["pii"].eq("US_SSN").sum()), n, 0.2)
    assert out.loc[prose, "tags"].isna().all()
    assert within(int(out.loc[~prose, "tags"].eq("urgent").sum()), n // 2, 0.5)
    assert out["language"].iloc[-1] == "fr"  # the trace's own value wins
    assert within(int(out["language"].eq("es").sum()), n - 1, 0.25)
    assert set(out.loc[~prose, "intent"]) == {"debug"} and out.loc[prose, "intent"].isna().all()
    reqs = to_requests(out.head(4))
    assert reqs[1].category == "prose" and reqs[0].intent == "debug"
    assert all(r.jailbreak in (0.0, 1.0) for r in reqs)
    bad = make_trace([0, 1, 2], [8] * 3, [8] * 3, jailbreak=[0.0, 0.5, 1.0])
    with pytest.raises(TraceError, match=r"row 1: jailbreak must be NaN, 0 or 1"):
        validate_trace(bad)
    with pytest.raises(ConfigError, match=r"signals: unknown key\(s\) \['jailbrake'\]; valid "
                                          r"keys: jailbreak.*did you mean"):
        assign_signals(df, {"jailbrake": 0.1}, np.random.default_rng(0))
    with pytest.raises(ConfigError, match=r"signals\.jailbreak\.prose: a share in \[0, 1\]"):
        assign_signals(df, {"jailbreak": {"prose": 2}}, np.random.default_rng(0))


def test_shipped_guard_first_blocks_attempts_and_keeps_pii_local():
    from tests.conftest import compose_cfg

    cfg = compose_cfg("router=semantic-guard-first", "pool=mixed-a100-h100",
                      "workload=semantic-router-signals")
    sim = Simulation(cfg)
    table, _, _ = sim.run()
    df = table.to_pandas()
    dec = pd.DataFrame(sim.router.decisions, columns=[
        "request_id", "parent_id", "router", "decision", "model", "pool", "score",
        "category_seen", "prompt_tokens_routed", "decision_delay_s"])
    assert (dec.loc[dec.decision == "pii-local", "model"] == SMALL).all()
    blocked = set(dec.loc[dec.decision == "block-jailbreak", "request_id"])
    assert blocked and blocked == set(df.loc[df.status != "completed", "request_id"])
    assert (df["route_s"] >= 0.05 - 1e-9).all()  # the slowest used signal, in parallel


BAD = [
    (["router=least-outstanding", "router.service.signal=rules"],
     r"router\.service\.signal: rules needs a router with a rule file.*valid choices"),
    (["router=semantic-guard-first", "router.service.time_s=0.1"],
     r"router\.service: give signal: rules .* or time_s, not both"),
]


@pytest.mark.parametrize("args,match", BAD)
def test_bad_signal_configs_fail_with_one_line(monkeypatch, capsys, tmp_path, args, match):
    code, _, err = run_app(monkeypatch, capsys, tmp_path, *args, "workload.max_requests=5",
                           "pool=mixed-a100-h100", "workload=semantic-router-sample")
    assert code == 2 and re.search(match, one_error_line(err))


@pytest.mark.parametrize("rules,match", [
    ("signals:\n  s: {type: regex}\ndecisions: []\ndefault: {models: [x]}\n",
     r"signal 's' field type: unknown signal type 'regex'; valid types: category, complexity, "
     r"context, domain, embedding, jailbreak, keyword, language, modality, pii"),
    ("signals:\n  s: {type: jailbreak}\ndecisions:\n  - {name: d, when: t, block: true}\n"
     "default: {models: [x]}\n",
     r"decision 'd' field when: unknown signal 't'; defined signals: s"),
    ("signals:\n  s: {type: jailbreak, latency_s: -1}\ndecisions: []\ndefault: {models: [x]}\n",
     r"signal 's' field latency_s: a finite number >= 0"),
    ("signals:\n  s: {type: pii, tpr: 1.5}\ndecisions: []\ndefault: {models: [x]}\n",
     r"signal 's' field tpr: a number in \[0, 1\]"),
    ("evaluation: lazy\nsignals: {}\ndecisions: []\ndefault: {models: [x]}\n",
     r"field evaluation: expected one of parallel, sequential"),
])
def test_bad_rule_files_fail_on_the_cli_naming_the_field(monkeypatch, capsys, tmp_path, rules,
                                                         match):
    path = tmp_path / "bad.yaml"
    path.write_text(rules)
    code, _, err = run_app(monkeypatch, capsys, tmp_path, "router=semantic-guard-first",
                           f"router.rules={path}", "workload.max_requests=5",
                           "pool=mixed-a100-h100", "workload=semantic-router-sample")
    assert code == 2 and re.search(match, one_error_line(err))

