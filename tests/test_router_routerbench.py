"""RouterBench's oracle and zero routers and AIQ: closed forms, the oracle's bound on the
routing workload, the oracle's gating and labelling, and bad configs."""

from __future__ import annotations

import math
import re

import pytest

from tests.conftest import compose_cfg, make_trace, run_app
from tests.test_bad_inputs import one_error_line
from tests.test_router_fleets import LARGE, SMALL, pool, quality_trace, two_model_cfg
from wrpsim.errors import ConfigError
from wrpsim.metrics.quality import quality_summary
from wrpsim.report.aiq import aiq, mixture_point, zero_curve
from wrpsim.runview import run_summary
from wrpsim.sim import Simulation, run

ORACLE = {"_target_": "wrpsim.router.OracleRouter", "view": {"kind": "oracle"}}
HUGE = "llama3.1-405b"


def _routed(cfg, trace) -> list[str]:
    req, _, _ = Simulation(cfg, trace).run()
    return [r["model"] for r in sorted(req.to_pylist(), key=lambda r: r["request_id"])]


def test_the_oracle_picks_the_cheapest_correct_model_else_the_cheapest():
    """Three models, dear to cheap: h200 (405B) > h100 (70B) > a10g (8B) per GPU-hour at the
    same constant iteration time. Every pattern of right (1) / wrong (0), and expected
    accuracies (the highest wins)."""
    cfg = two_model_cfg(dict(ORACLE))
    cfg["pool"]["pools"]["huge"] = pool(HUGE, gpu="h200-141gb")
    cases = [  # (8B, 70B, 405B) -> model
        ((0, 0, 0), SMALL), ((1, 0, 0), SMALL), ((0, 1, 0), LARGE), ((0, 0, 1), HUGE),
        ((1, 1, 1), SMALL), ((0, 1, 1), LARGE), ((1, 0, 1), SMALL),
        ((0.3, 0.8, 0.8), LARGE), ((0.3, 0.5, 0.9), HUGE),
    ]
    out = [{SMALL: float(a), LARGE: float(b), HUGE: float(c)} for (a, b, c), _ in cases]
    n = len(cases)
    trace = make_trace([0.05 * i for i in range(n)], [64] * n, [8] * n, outcomes=out)
    assert _routed(cfg, trace) == [m for _, m in cases]


def test_the_oracle_needs_the_oracle_view_and_is_labelled_an_upper_bound(tmp_path):
    trace = quality_trace(n=20)
    with pytest.raises(ConfigError, match=r"router\.view\.kind: the oracle router .* needs "
                                          r"router\.view\.kind: oracle .*got scrape"):
        Simulation(two_model_cfg({"_target_": "wrpsim.router.OracleRouter"}), trace)
    s = run(two_model_cfg(dict(ORACLE)), tmp_path / "o", trace)
    assert s["router"] == "oracle" and "upper bound" in s["router_view"]
    assert s["router_oracle"] == ("upper bound: the router read the ground truth (per-model "
                                  "outcomes, output lengths)")
    text = run_summary(s, {}, "o")
    assert "  oracle     upper bound: the router read the ground truth" in text
    assert (f"  quality    {s['quality']:.4f} mean replayed score over "
            f"{s['quality_requests']} tasks") in text
    z = run(two_model_cfg({"_target_": "wrpsim.router.ZeroRouter"}), tmp_path / "z", trace)
    assert "router_oracle" not in z and "  oracle " not in run_summary(z, {}, "z")


def test_an_oracle_predictor_is_only_for_the_oracle_view():
    """An ordinary policy reaches per-model correctness only through the oracle predictor,
    which the scraped view refuses (ground truth stays hidden: tests/test_router_view.py)."""
    router = {"_target_": "wrpsim.router.ThresholdRouter", "predictor": {"kind": "oracle"}}
    with pytest.raises(ConfigError, match=r"router\.predictor\.kind: oracle needs "
                                          r"router\.view\.kind: oracle"):
        Simulation(two_model_cfg(dict(router)), quality_trace(n=5))
    router["predictor"]["kind"] = "psychic"
    with pytest.raises(ConfigError, match=r"router\.predictor\.kind: unknown value 'psychic'; "
                                          r"valid choices: learned, model, oracle"):
        Simulation(two_model_cfg(router), quality_trace(n=5))


@pytest.mark.parametrize(("router", "share"), [
    ({"strong_share": 0.3}, {LARGE: 0.3}),
    ({"p": {SMALL: 0.8, LARGE: 0.2}}, {LARGE: 0.2}),
    ({}, {LARGE: 0.5}),                        # neither: uniform
    ({"p": {SMALL: 1.0}}, {LARGE: 0.0}),       # a model left out weighs 0
])
def test_the_zero_routers_share_is_p_within_the_binomial_bound(router, share):
    n = 2000
    cfg = two_model_cfg({"_target_": "wrpsim.router.ZeroRouter", **router})
    models = _routed(cfg, quality_trace(n=n, gap_s=0.01))
    p = share[LARGE]
    got = models.count(LARGE) / n
    assert abs(got - p) <= 4 * math.sqrt(p * (1 - p) / n)
    assert _routed(cfg, quality_trace(n=n, gap_s=0.01)) == models  # same seed, same draws


def test_aiq_of_the_zero_router_curve_in_closed_form():
    two = {"cheap": (1.0, 0.6), "dear": (3.0, 0.9)}
    assert zero_curve(two) == [(1.0, 0.6), (3.0, 0.9)]
    hull = zero_curve(two)
    assert aiq(*zip(*hull)) == pytest.approx(0.75)  # (q0 + q1) / 2
    # a dearer, worse model adds nothing: flat at the cheap one's quality
    worse = {"cheap": (1.0, 0.6), "dear": (3.0, 0.5)}
    assert zero_curve(worse) == [(1.0, 0.6)]
    assert aiq(*zip(*zero_curve(worse)), 1.0, 3.0) == pytest.approx(0.6)
    # a middle model below the line is never worth mixing in; one above it is
    assert zero_curve({**two, "mid": (2.0, 0.7)}) == [(1.0, 0.6), (3.0, 0.9)]
    assert aiq(*zip(*zero_curve({**two, "mid": (2.0, 0.8)}))) == pytest.approx(
        (0.5 * (0.6 + 0.8) + 0.5 * (0.8 + 0.9)) / 2)
    assert mixture_point({"cheap": 0.75, "dear": 0.25}, two) == pytest.approx((1.5, 0.675))


BASE = ("workload=routellm-mmlu-gsm8k", "pool=two-model-mixtral-gpt4like",
        "workload.max_requests=1000", "seed=0")
#: every shipped model-selecting router that runs on the two-model fleet, and the threshold
#: router given the oracle's own predictor (it reaches the oracle's quality, at a higher cost)
OTHERS = {
    "zero 0 (Mixtral alone)": ("router=zero", "router.strong_share=0"),
    "zero 0.5": ("router=zero", "router.strong_share=0.5"),
    "zero 1 (GPT-4-class alone)": ("router=zero", "router.strong_share=1"),
    "threshold": ("router=routellm-threshold",),
    "utility": ("router=carrot-utility",),
    "cascade": ("router=cascade",),
    "cascade-abort": ("router=cascade-abort",),
    "bandit-ucb1": ("router=bandit-ucb1",),
    "bandit-thompson": ("router=bandit-thompson",),
    "bandit-epsilon-greedy": ("router=bandit-epsilon-greedy",),
    "best-effort-downgrade": ("router=best-effort-downgrade",),
    "ensemble-judge": ("router=ensemble-judge",),
    "chain-refine": ("router=chain-refine",),
    "threshold, oracle predictor": ("router=routellm-threshold", "router.predictor.kind=oracle",
                                    "router.view.kind=oracle"),
}


def _point(tmp_path, name, *overrides) -> tuple[float, float]:
    s = run(compose_cfg(*BASE, *overrides), tmp_path / re.sub(r"\W+", "_", name))
    return s["token_cost_per_1k_requests_usd"], s["quality"]


def test_the_oracle_bounds_every_router_on_the_routing_workload(tmp_path):
    """Acceptance: no router is of higher quality than the oracle, and every router at least
    as good costs at least as much (token-priced cost, RouterBench's axis)."""
    sim = Simulation(compose_cfg(*BASE, "router=oracle"))
    req, inst, _end = sim.run()
    q = quality_summary(req, inst, sim.trace, sim.fleet.specs)
    c_o, q_o = q["token_cost_per_1k_requests_usd"], q["quality"]
    outcomes = list(sim.trace["outcomes"])
    assert q_o == pytest.approx(sum(max(o.values()) for o in outcomes) / len(outcomes))
    points = {name: _point(tmp_path, name, *ov) for name, ov in OTHERS.items()}
    as_good = []
    for name, (c, qr) in points.items():
        assert qr <= q_o + 1e-12, name
        if qr >= q_o - 1e-12:
            as_good.append(name)
            assert c >= c_o, name
    assert as_good == ["threshold, oracle predictor"]  # the cost condition is not vacuous
    # and the oracle is cheaper than GPT-4-class alone, dearer than Mixtral alone
    assert points["zero 0 (Mixtral alone)"][0] < c_o < points["zero 1 (GPT-4-class alone)"][0]


BAD = [
    (["router=zero", "router.p={mixtral-8x7b: 0.7, gpt4: 0.3}"],
     r"router\.p: unknown value 'gpt4'; valid choices: gpt4-class, mixtral-8x7b"),
    (["router=zero", "router.p={mixtral-8x7b: 0.7, gpt4-class: 0.2}"],
     r"router\.p must sum to 1, got 0\.9 \(mixtral-8x7b: 0\.7, gpt4-class: 0\.2\)"),
    (["router=zero", "router.p={mixtral-8x7b: 1.2, gpt4-class: -0.2}"],
     r"router\.p\.gpt4-class must be a finite number >= 0, got -0\.2"),
    (["router=zero", "router.strong_share=1.5"],
     r"router\.strong_share must be a number >= 0 and <= 1, got 1\.5"),
    (["router=zero", "router.strong_share=0.2", "router.p={gpt4-class: 1}"],
     r"router\.p: give p or strong_share, not both"),
    (["router=oracle", "router.view.kind=scrape"],
     r"router\.view\.kind: the oracle router .* needs router\.view\.kind: oracle"),
]


@pytest.mark.parametrize(("args", "message"), BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_routerbench_configs_give_one_line_naming_the_field(monkeypatch, capsys, tmp_path,
                                                                args, message):
    code, _, err = run_app(monkeypatch, capsys, tmp_path, "workload=routellm-mmlu-gsm8k",
                           "pool=two-model-mixtral-gpt4like", "workload.max_requests=10", *args)
    assert code == 2
    assert re.search(message, one_error_line(err)), err
