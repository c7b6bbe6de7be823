"""Bandits (ε-greedy, UCB1, Thompson): convergence to the best arm, reward mixing, determinism."""

from __future__ import annotations

import numpy as np
import pytest

from tests.test_router_fleets import LARGE, SMALL, pool, quality_trace, two_model_cfg
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


def test_measured_reward_follows_what_the_run_spent_not_the_price_book():
    """GreenServ's reward from the cost and energy the simulation attributed to each answer.
    The price book assumes a batch of 32 everywhere, so it calls the small model (half the
    step time on the same GPU) the cheap one. Spread over eight instances the small model's
    answers run almost alone, each paying its whole iteration, while the one large instance
    batches what it gets: measured per token, the large model is the cheaper. A cost- and
    energy-only bandit follows the measurement; with `reward_from: book` it keeps the small."""
    trace = quality_trace(n=1200, p_small=0.7, p_large=0.7, gap_s=0.02)
    small = pool(SMALL, step_s=0.01, count=8)
    large = pool(LARGE, step_s=0.02, count=1)
    late = {}
    for source in ("measured", "book"):
        cfg = two_model_cfg({"_target_": "wrpsim.router.BanditRouter", "policy": "ucb1",
                             "reward": {"cost": 0.5, "energy": 0.5},
                             "reward_from": source}, small=small, large=large)
        sim = Simulation(cfg, trace)
        req, _, _ = sim.run()
        rows = req.to_pylist()
        late[source] = sum(r["model"] == LARGE for r in rows[600:]) / 600
        if source == "measured":  # what the rows say each arm spent per token
            per_tok = {m: np.mean([r["cost_usd"] / (r["prompt_tokens"] + r["output_tokens"])
                                   for r in rows if r["model"] == m]) for m in (SMALL, LARGE)}
            assert per_tok[LARGE] < per_tok[SMALL]
    book = sim.router.book.models
    assert book[SMALL].cost(64, 8) < book[LARGE].cost(64, 8)
    assert late["measured"] >= 0.85 and late["book"] <= 0.15
    with pytest.raises(ConfigError, match=r"router\.reward_from: unknown value 'guess'"):
        _run("ucb1", trace, reward_from="guess")


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
