"""Bandits (ε-greedy, UCB1, Thompson): convergence to the best arm, reward mixing, determinism."""

from __future__ import annotations

import pytest

from tests.test_router_fleets import LARGE, SMALL, quality_trace, two_model_cfg
from wrpsim.errors import ConfigError
from wrpsim.sim import Simulation

POLICIES = ("epsilon_greedy", "ucb1", "thompson")


def _run(policy, trace, **kw):
    cfg = two_model_cfg({"_target_": "wrpsim.router.BanditRouter", "policy": policy, **kw})
    sim = Simulation(cfg, trace)
    req, _, _ = sim.run()
    return sim, [r["model"] for r in req.to_pylist()]


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize(("p_small", "p_large", "best"), [(0.3, 0.8, LARGE), (0.85, 0.4, SMALL)])
def test_bandits_converge_to_the_best_arm_in_a_stationary_two_model_case(policy, p_small,
                                                                       p_large, best):
    trace = quality_trace(n=2000, p_small=p_small, p_large=p_large, gap_s=0.05)
    sim, models = _run(policy, trace, reward={"quality": 1.0})
    late = models[1000:]
    assert sum(m == best for m in late) / len(late) >= 0.9
    assert sim.router.pulls[sim.router._index[best]] > 1300


@pytest.mark.parametrize("policy", POLICIES)
def test_cost_in_the_reward_moves_equal_quality_traffic_to_the_cheap_arm(policy):
    trace = quality_trace(n=1500, p_small=0.7, p_large=0.7)
    _, models = _run(policy, trace, reward={"quality": 0.5, "cost": 0.5})
    late = models[750:]
    assert sum(m == SMALL for m in late) / len(late) >= 0.85


def test_per_category_statistics_learn_a_different_best_arm_per_category():
    n = 2400
    trace = quality_trace(n=n, p_small=0.0, p_large=0.0, category=["a", "b"] * (n // 2))
    for i, o in enumerate(trace["outcomes"]):  # a: the small model is right, b: the large
        o[SMALL], o[LARGE] = (1.0, 0.0) if i % 2 == 0 else (0.0, 1.0)
    _, models = _run("ucb1", trace, per_category=True)
    late = list(enumerate(models))[1200:]
    assert sum(m == SMALL for i, m in late if i % 2 == 0) / 600 >= 0.9
    assert sum(m == LARGE for i, m in late if i % 2 == 1) / 600 >= 0.9


def test_same_seed_same_choices_and_bad_config_named():
    trace = quality_trace(n=300)
    assert _run("thompson", trace)[1] == _run("thompson", trace)[1]
    with pytest.raises(ConfigError, match=r"router\.policy: unknown value 'softmax'"):
        _run("softmax", trace)
    with pytest.raises(ConfigError, match=r"router\.reward: unknown key\(s\) \['latency'\]"):
        _run("ucb1", trace, reward={"latency": 1.0})
    with pytest.raises(ConfigError, match=r"router\.reward: the weights must not all be 0"):
        _run("ucb1", trace, reward={"quality": 0.0})
