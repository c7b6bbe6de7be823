"""Load-adaptive downgrade: the primary model at low load, the fallback only under load."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import compose_cfg
from tests.test_router_fleets import LARGE, SMALL, pool, quality_trace, two_model_cfg
from wrpsim.errors import ConfigError
from wrpsim.metrics.quality import quality_summary
from wrpsim.sim import Simulation

DOWN = "wrpsim.router.DowngradeRouter"


def _run(router: dict, trace, large=None):
    sim = Simulation(two_model_cfg({"_target_": DOWN, **router},
                                   large=large or pool(LARGE, step_s=0.05)), trace)
    req, inst, _ = sim.run()
    return sim, req.to_pandas(), quality_summary(req, inst, sim.trace, sim.fleet.specs)


def test_no_downgrade_at_low_load():
    sim, df, q = _run({"max_outstanding": 2}, quality_trace(n=100, gap_s=2.0))
    assert sim.router.downgraded == 0 and set(df["model"]) == {LARGE}
    assert sim.router.routed == {"primary": 100, "downgrade": 0}
    assert q["model_share"] == {LARGE: 1.0}


def test_downgrade_under_load_and_only_while_the_primary_is_loaded():
    trace = quality_trace(n=200, gap_s=0.02)  # 50 req/s; a LARGE answer takes ~0.4 s
    sim, df, q = _run({"max_outstanding": 4, "max_kv": 1.0}, trace)
    n = sim.router.downgraded
    assert 0 < n < 200 and (df["model"] == SMALL).sum() == n
    dec = sim.router.decisions
    assert [d[3] for d in dec[:4]] == ["primary"] * 4  # outstanding 0, 1, 2, 3
    for _, _, _, label, model, _, score, *_ in dec:  # score: the primary's least outstanding
        assert (label == "downgrade") == (score >= 4)
        assert model == (SMALL if label == "downgrade" else LARGE)
    # against the primary alone: faster at the tail, lower quality
    ref = Simulation(two_model_cfg({"_target_": "wrpsim.router.UtilityRouter", "lam": 0.0,
                                    "models": [LARGE]}, large=pool(LARGE, step_s=0.05)), trace)
    req, inst, _ = ref.run()
    q0 = quality_summary(req, inst, ref.trace, None)
    assert q["e2e_final_p99_s"] < q0["e2e_final_p99_s"]
    assert q["quality"] < q0["quality"]


def test_hysteresis_keeps_downgrading_until_the_load_falls_below_resume():
    trace = quality_trace(n=200, gap_s=0.02)
    trace["output_tokens"] = np.random.default_rng(3).integers(2, 30, 200)  # staggered ends
    live = {"view": {"kind": "oracle"}}  # the rule on the live load (a stale view changes
    # what the rule reads, not the rule)
    sim, _, _ = _run({"max_outstanding": 4, "max_kv": 1.0, "resume_outstanding": 2, **live},
                     trace)
    down = False
    for d in sim.router.decisions:  # replay the two-threshold rule on the logged load
        down = d[6] >= (2 if down else 4)
        assert d[3] == ("downgrade" if down else "primary")
    no_hyst, _, _ = _run({"max_outstanding": 4, "max_kv": 1.0, **live}, trace)
    assert sim.router.downgraded > no_hyst.router.downgraded


def test_kv_use_triggers_a_downgrade():
    # 160 KV blocks of 16 tokens: four 72-token requests fill it
    sim, _, _ = _run({"max_outstanding": 1000, "max_kv": 0.1},
                     quality_trace(n=100, gap_s=0.02), large=pool(LARGE, step_s=0.05,
                                                                   kv_blocks=160))
    assert sim.router.downgraded > 0
    assert all(d[6] < 1000 for d in sim.router.decisions)


def test_the_fallback_serves_while_every_primary_instance_is_down():
    cfg = two_model_cfg({"_target_": DOWN}, large=pool(LARGE))
    cfg["failures"] = {"policy": "retry",
                       "events": [{"pool": "large", "instance": 0, "at_s": 2.0, "down_s": 2.0}]}
    sim = Simulation(cfg, quality_trace(n=100, gap_s=0.1))
    req, _, _ = sim.run()
    df = req.to_pandas()
    assert set(df["status"]) == {"completed"}
    t = df["arrival_s"].round(6)
    during = (t >= 2.0) & (t < 4.0)  # the large pool's only instance is down in [2, 4)
    assert (df.loc[during, "model"] == SMALL).all() and (df.loc[~during, "model"] == LARGE).all()
    assert sim.router.downgraded == during.sum()


def test_on_the_shipped_workload_only_a_high_rate_downgrades():
    out = {}
    for rate in (1, 40):
        cfg = compose_cfg("workload=routellm-mmlu-gsm8k", "pool=two-model-mixtral-gpt4like",
                          "router=best-effort-downgrade", "workload.max_requests=1500",
                          f"workload.rate_scale={rate}")
        sim = Simulation(cfg)
        req, inst, _ = sim.run()
        out[rate] = (sim.router.downgraded,
                     quality_summary(req, inst, sim.trace, sim.fleet.specs)["quality"])
    assert out[1][0] == 0 and out[40][0] > 100
    assert out[40][1] < out[1][1]


def test_bad_config_is_named():
    trace = quality_trace(n=5)
    with pytest.raises(ConfigError, match=r"router: primary and fallback are the same model "
                                          r"\(llama3\.1-8b\)"):
        _run({"primary": SMALL, "fallback": SMALL}, trace)
    with pytest.raises(ConfigError, match=r"router\.primary: model 'x' is served by no pool; "
                                          r"the fleet serves: llama3\.1-70b, llama3\.1-8b"):
        _run({"primary": "x"}, trace)
    with pytest.raises(ConfigError, match=r"router\.resume_outstanding must be a number >= 0 "
                                          r"and <= 4"):
        _run({"max_outstanding": 4, "resume_outstanding": 8}, trace)
    with pytest.raises(ConfigError, match=r"router\.max_kv must be a number"):
        _run({"max_kv": 1.5}, trace)
    assert np.isfinite(_run({}, trace)[2]["quality"])
