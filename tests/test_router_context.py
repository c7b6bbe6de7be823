"""Pool routing on request length and live state: token budget, spillover, compress-and-route,
output-length-aware, SLO-aware and energy-aware."""

from __future__ import annotations

import collections

import numpy as np
import pytest

from tests.conftest import make_trace
from tests.test_router_fleets import LARGE, SMALL, pool, two_model_cfg
from wrpsim.errors import ConfigError
from wrpsim.router.lengths import OutputPredictor
from wrpsim.sim import Simulation

#: the true output length as the prediction: only under the oracle (upper-bound) view
EXACT_LENGTHS = {"output_predictor": {"kind": "oracle"}, "view": {"kind": "oracle"}}


def _one_model_cfg(router, short=None, long=None):
    cfg = two_model_cfg(router, small=short or pool(LARGE, kv_blocks=2_000),
                        large=long or pool(LARGE, kv_blocks=20_000))
    cfg["pool"]["pools"] = {"short": cfg["pool"]["pools"]["small"],
                            "long": cfg["pool"]["pools"]["large"]}
    return cfg


def _run(cfg, trace):
    sim = Simulation(cfg, trace)
    req, _inst, _ = sim.run()
    return sim, req.to_pylist()


def test_token_budget_splits_at_the_boundary_on_prompt_plus_output():
    router = {"_target_": "wrpsim.router.TokenBudgetRouter", "boundary_tokens": 1000,
              **EXACT_LENGTHS}
    trace = make_trace([0.0, 0.1, 0.2, 0.3], [900, 990, 1200, 100], [100, 20, 4, 4])
    sim, rows = _run(_one_model_cfg(router), trace)
    assert [r["pool"] for r in rows] == ["short", "long", "long", "short"]
    assert [d[3] for d in sim.router.decisions] == ["short", "long", "long", "short"]
    # default grouping: the pool with the smaller KV capacity is the short one
    sim, rows = _run(_one_model_cfg(router, short=pool(LARGE, kv_blocks=30_000)), trace)
    assert [r["pool"] for r in rows] == ["long", "short", "short", "long"]


def test_spillover_when_the_short_pool_is_saturated():
    router = {"_target_": "wrpsim.router.TokenBudgetRouter", "boundary_tokens": 1000,
              "spill_outstanding": 3, "short_pools": ["short"], "long_pools": ["long"]}
    trace = make_trace([0.001 * i for i in range(8)], [100] * 8, [50] * 8)
    sim, rows = _run(_one_model_cfg(router), trace)
    assert [r["pool"] for r in rows] == ["short"] * 3 + ["long"] * 5
    assert sim.router.counts == {"short": 3, "long": 0, "spill": 5, "compressed": 0}
    router["spill"] = False
    _, rows = _run(_one_model_cfg(router), trace)
    assert {r["pool"] for r in rows} == {"short"}


def test_compress_and_route_compresses_safe_borderline_prompts_only():
    router = {"_target_": "wrpsim.router.CompressAndRoute", "boundary_tokens": 1000,
              "gamma": 1.5, "compress_latency_s": 0.003, **EXACT_LENGTHS}
    trace = make_trace([0.0, 0.1, 0.2, 0.3], [1200, 1200, 1600, 500], [100] * 4,
                       category=["prose", "code", "prose", "code"])
    sim, rows = _run(_one_model_cfg(router), trace)
    assert [r["pool"] for r in rows] == ["short", "long", "long", "short"]
    assert [r["prompt_tokens"] for r in rows] == [900, 1200, 1600, 500]
    assert [d[3] for d in sim.router.decisions] == ["compressed", "long", "long", "short"]
    assert [d[8] for d in sim.router.decisions] == [900, 1200, 1600, 500]
    assert rows[0]["ttft_s"] == pytest.approx(0.003 + 0.01)


def test_output_predictor_kinds_and_errors():
    class R:
        output_tokens = 100

    rng = np.random.default_rng(0)
    assert OutputPredictor().kind == "lognormal"  # never the oracle by default
    assert OutputPredictor({"kind": "oracle"}).predict(R, None, rng) == 100
    assert OutputPredictor({"kind": "constant", "value": 7}).predict(R, None, rng) == 7
    draws = [OutputPredictor({"kind": "lognormal", "sigma": 0.5}).predict(R, None, rng)
             for _ in range(2000)]
    assert 85 < np.median(draws) < 115 and np.std(np.log(draws)) == pytest.approx(0.5, abs=0.05)
    with pytest.raises(ConfigError, match=r"router\.output_predictor\.kind: unknown value "
                                         r"'psychic'; valid choices: constant, lognormal, oracle"):
        OutputPredictor({"kind": "psychic"})
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['mean'\]; valid keys: kind"):
        OutputPredictor({"kind": "constant", "mean": 1})


def test_output_length_aware_balances_predicted_tokens_not_requests():
    cfg = two_model_cfg({"_target_": "wrpsim.router.OutputLengthAware"},
                        large=pool(LARGE, count=2))
    # one huge request, then small ones: they all avoid the instance holding the huge one
    trace = make_trace([0.0, 0.01, 0.02, 0.03], [100] * 4, [5000, 10, 10, 10], model=[LARGE] * 4)
    sim, rows = _run(cfg, trace)
    assert [r["instance"] for r in rows] == [0, 1, 1, 1]
    assert all(v == 0 for v in sim.router._work.values())  # all released on completion


def test_slo_aware_takes_the_cheapest_pool_that_meets_the_slo():
    router = {"_target_": "wrpsim.router.SloAwareRouter", "ttft_s": 0.5, "tpot_s": 0.05,
              "models": [SMALL, LARGE]}
    fast_cheap = pool(SMALL, gpu="a10g-24gb", step_s=0.02, prefill_s_per_token=0.00001)
    cfg = two_model_cfg(router, small=fast_cheap)
    _, rows = _run(cfg, make_trace([0.0], [100], [5]))
    assert rows[0]["model"] == SMALL
    # a TPOT target the cheap pool cannot meet sends the request to the fast pool
    router["tpot_s"] = 0.015
    _, rows = _run(two_model_cfg(router, small=fast_cheap), make_trace([0.0], [100], [5]))
    assert rows[0]["model"] == LARGE
    # nothing meets it: the lowest predicted TTFT
    router["tpot_s"] = 0.001
    sim, rows = _run(two_model_cfg(router, small=fast_cheap), make_trace([0.0], [100], [5]))
    assert rows[0]["model"] == LARGE and sim.router.decisions[0][3] == "fastest"


def test_energy_aware_consolidates_onto_a_busy_instance_while_the_slo_allows():
    router = {"_target_": "wrpsim.router.EnergyAwareRouter", "ttft_s": 5.0, "tpot_s": 1.0}
    cfg = two_model_cfg(router, large=pool(LARGE, count=3))
    trace = make_trace([0.0, 0.01, 0.02, 0.03], [100] * 4, [200] * 4, model=[LARGE] * 4)
    _, rows = _run(cfg, trace)
    # constant power: adding to a busy instance costs nothing extra, an idle one its busy power
    assert collections.Counter(r["instance"] for r in rows) == {0: 4}
    router["tpot_s"] = 0.001  # nobody meets it: the fastest (fewest running) instance
    _, rows = _run(two_model_cfg(router, large=pool(LARGE, count=3)), trace)
    assert len({r["instance"] for r in rows}) == 3


def test_named_pools_are_validated():
    router = {"_target_": "wrpsim.router.TokenBudgetRouter", "short_pools": ["tiny"]}
    with pytest.raises(ConfigError, match=r"router\.short_pools: unknown pool 'tiny'; valid "
                                          r"pools: long, short"):
        _run(_one_model_cfg(router), make_trace([0.0], [10], [2]))


@pytest.mark.parametrize("name", ["slo-aware", "energy-aware"])
def test_fleet_aware_routers_do_not_pile_onto_one_of_equal_instances(name):
    """On a one-model fleet every instance costs the same per request: slo-aware broke the tie
    by taking the first, and both estimated TPOT without the prefill chunks queued prompts add
    to every step, so instance 0 took most of the code trace (SLO 39 % and 48 %, round-robin
    78 %). A burst of long prompts now spreads once instance 0's queue would slow its decode."""
    from tests.conftest import compose_cfg

    trace = make_trace([0.01 * i for i in range(12)], [6000] * 12, [300] * 12)
    sim = Simulation(compose_cfg(f"router={name}"), trace)
    rows = sim.run()[0].to_pylist()
    counts = collections.Counter(r["instance"] for r in rows)
    assert len(counts) >= 3 and max(counts.values()) <= 6, counts
