"""Threshold (RouteLLM) and utility (CARROT) routing: calibration, predictor, cost–quality."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import compose_cfg
from tests.test_router_fleets import LARGE, quality_trace, two_model_cfg
from wrpsim.metrics.quality import quality_summary
from wrpsim.router.predict import QualityPredictor, win_rate
from wrpsim.sim import Simulation
from wrpsim.workload import load_workload, to_requests

TABLE = "data/routellm_category_accuracy.csv"


@pytest.fixture(scope="module")
def routellm_requests():
    return to_requests(load_workload("routellm-mmlu-gsm8k"))


def _threshold(**kw):
    from wrpsim.router import ThresholdRouter

    return ThresholdRouter(predictor={"table": TABLE, "skill": 0.5, "noise_sd": 1.0}, **kw)


class _View:
    """The slice of the fleet view `select` reads."""

    def model_of(self, request):
        return request.model


@pytest.mark.parametrize("target", [0.05, 0.2, 0.5, 0.8, 0.95])
@pytest.mark.parametrize("skill", [0.0, 0.5])
def test_strong_share_matches_the_target_within_two_points(routellm_requests, target, skill):
    from wrpsim.router import ThresholdRouter

    r = ThresholdRouter(strong_share=target,
                        predictor={"table": TABLE, "skill": skill, "noise_sd": skill * 2})
    r._strong, r._weak, r.rng = "gpt4-class", "mixtral-8x7b", np.random.default_rng(3)
    r.routed = {"strong": 0, "weak": 0}
    for req in routellm_requests:
        r.select(req, _View(), req.category, None)
    share = r.routed["strong"] / len(routellm_requests)
    assert abs(share - target) <= 0.02
    # the guarantee of the update rule: |share - target| <= 1 / (step x T)
    assert abs(share - target) <= 1.0 / (0.01 * len(routellm_requests)) + 1e-12


def test_strong_share_in_a_full_run_and_fixed_thresholds_are_monotone():
    base = ("workload=routellm-mmlu-gsm8k", "pool=two-model-mixtral-gpt4like",
            "workload.max_requests=4000", "router=routellm-threshold")
    sim = Simulation(compose_cfg(*base, "router.strong_share=0.3"))
    req, inst, _end = sim.run()
    q = quality_summary(req, inst, sim.trace, sim.fleet.specs)
    assert abs(q["model_share"]["gpt4-class"] - 0.3) <= 0.02
    shares = []
    for tau in (0.4, 0.5, 0.6):
        sim = Simulation(compose_cfg(*base, f"router.threshold={tau}"))
        req, inst, _ = sim.run()
        shares.append(quality_summary(req, inst, sim.trace, None)["model_share"]["gpt4-class"])
    assert shares[0] > shares[1] > shares[2]


def test_predictor_prior_skill_and_win_rate(routellm_requests):
    p = QualityPredictor({"table": TABLE})
    r = routellm_requests[0]
    rng = np.random.default_rng(0)
    assert p.predict(r, "gpt4-class", "abstract_algebra", rng) == pytest.approx(0.46, abs=1e-3)
    assert p.predict(r, "nobody", "abstract_algebra", rng) == pytest.approx(0.5, abs=1e-3)
    sk = QualityPredictor({"table": TABLE, "skill": 2.0})
    right = [x for x in routellm_requests[:500] if x.outcomes["gpt4-class"] == 1.0]
    wrong = [x for x in routellm_requests[:500] if x.outcomes["gpt4-class"] == 0.0]
    mean = lambda xs: np.mean([sk.predict(x, "gpt4-class", x.category, rng) for x in xs])  # noqa: E731
    assert mean(right) > mean(wrong) + 0.3
    assert win_rate(0.9, 0.6) == pytest.approx(0.65)
    # a near-perfect predictor: its score is the replayed outcome (exp overflowed at 1e12)
    big = QualityPredictor({"table": TABLE, "skill": 1e12})
    assert [big.predict(x, "gpt4-class", x.category, rng) for x in right[:3] + wrong[:3]] == \
        [1.0] * 3 + [0.0] * 3


def test_utility_router_trades_quality_for_cost_with_lambda():
    trace = quality_trace(n=300, p_small=0.5, p_large=0.9)
    shares = []
    for lam in (0.0, 1.0, 1000.0):
        cfg = two_model_cfg({"_target_": "wrpsim.router.UtilityRouter", "lam": lam,
                             "predictor": {"skill": 3.0},
                             "output_predictor": {"kind": "constant", "value": 256}})
        sim = Simulation(cfg, trace)
        req, inst, _ = sim.run()
        shares.append(quality_summary(req, inst, sim.trace, None)["model_share"].get(LARGE, 0))
    assert shares[0] > shares[1] > shares[2] == 0.0
    assert shares[0] > 0.5


def test_threshold_and_utility_points_lie_between_singles_and_above_random_mix():
    base = ("workload=routellm-mmlu-gsm8k", "pool=two-model-mixtral-gpt4like",
            "workload.max_requests=3000")

    def point(*ov):
        sim = Simulation(compose_cfg(*base, *ov))
        req, inst, _ = sim.run()
        q = quality_summary(req, inst, sim.trace, sim.fleet.specs)
        return q["token_cost_per_1k_requests_usd"], q["quality"]

    (c0, q0) = point("workload.model=mixtral-8x7b")
    (c1, q1) = point("workload.model=gpt4-class")
    for ov in (("router=routellm-threshold", "router.strong_share=0.5"),
               ("router=carrot-utility", "router.lam=0.1")):
        c, q = point(*ov)
        assert c0 < c < c1
        assert q > q0 + (q1 - q0) * (c - c0) / (c1 - c0)
