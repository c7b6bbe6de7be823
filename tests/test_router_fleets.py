"""Every router YAML composes, instantiates, binds and routes; shared two-model test fleets.

The helpers here (`two_model_cfg`, `quality_trace`) build small constant-latency fleets and
traces with outcomes for the other `test_router_*` files.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from tests.conftest import compose_cfg, make_trace
from wrpsim.errors import ConfigError
from wrpsim.router import ROUTING_SCHEMA, routing_table
from wrpsim.router.build import build_router
from wrpsim.sim import Simulation

ROUTERS = sorted(p.stem for p in (Path(__file__).resolve().parents[1] / "routers").glob("*.yaml"))
SMALL, LARGE = "llama3.1-8b", "llama3.1-70b"


def pool(model, gpu="h100-80gb", step_s=0.01, count=1, kv_blocks=100_000, max_seqs=256,
         prefill_s_per_token=0.0, busy_power_w=400.0):
    """One constant-latency pool mapping."""
    return {"gpu": gpu, "model": model, "tp": 1, "count": count, "kv_blocks": kv_blocks,
            "scheduler": {"policy": "sarathi", "max_seqs": max_seqs, "token_budget": 2048,
                          "block_size": 16},
            "latency": {"kind": "constant", "decode_step_s": step_s,
                        "prefill_s_per_token": prefill_s_per_token,
                        "busy_power_w": busy_power_w}}


def two_model_cfg(router: dict, small: dict | None = None, large: dict | None = None) -> dict:
    """A run config with a cheap `small` pool (A10G, Llama-3.1-8B) and a dear `large` pool
    (H100, Llama-3.1-70B), both constant-latency."""
    return {
        "seed": 0, "slo": {"ttft_s": 1.0, "tpot_s": 0.1}, "pue": 1.0,
        "pool": {"name": "two", "pools": {"small": small or pool(SMALL, gpu="a10g-24gb"),
                                          "large": large or pool(LARGE)}},
        "router": router,
    }


def quality_trace(n=400, p_small=0.3, p_large=0.8, gap_s=0.05, seed=1, **extra):
    """`n` requests with drawn correctness of SMALL and LARGE (Bernoulli p_small / p_large)."""
    rng = np.random.default_rng(seed)
    ys, yl = rng.random(n) < p_small, rng.random(n) < p_large
    out = [{SMALL: float(a), LARGE: float(b)} for a, b in zip(ys, yl)]
    return make_trace(np.arange(n) * gap_s, [64] * n, [8] * n, outcomes=out, **extra)


def _fleet_for(name: str) -> list[str]:
    if name in ("routellm-threshold", "carrot-utility", "cascade", "cascade-abort",
                "chain-refine", "best-effort-downgrade", "oracle", "zero") or name.startswith(
                    ("bandit", "ensemble")):
        return ["pool=two-model-mixtral-gpt4like", "workload=routellm-mmlu-gsm8k"]
    if name in ("learned-utility", "router-r1", "cascade-confidence"):  # their predictor was
        # fitted on the LLMRouter train split
        return ["pool=six-model-llmrouter", "workload=llmrouter-14-tasks-test"]
    if name == "guarded":
        return ["pool=guarded-mixtral-gpt4like", "workload=routellm-mmlu-gsm8k"]
    if name in ("token-budget", "compress-route"):
        return ["pool=short-long-context", "workload=semantic-router-sample"]
    if name == "semantic-rules":
        return ["pool=mixed-a100-h100", "workload=semantic-router-sample"]
    if name == "modality-vision":
        return ["pool=vision-text-h100-a100", "workload=semantic-router-images"]
    if name in ("semantic-guard-first", "semantic-multi-signal"):
        return ["pool=mixed-a100-h100", "workload=semantic-router-signals"]
    return ["pool=h100-llama70b", "workload=semantic-router-sample"]


@pytest.mark.parametrize("name", ROUTERS)
def test_every_router_yaml_instantiates_binds_and_routes(name):
    cfg = compose_cfg(f"router={name}", *_fleet_for(name), "workload.max_requests=60")
    sim = Simulation(cfg)
    req, _, _ = sim.run()
    assert req.num_rows >= 60
    status = req.column("status").to_pylist()
    if name == "semantic-guard-first":  # blocks what its jailbreak detector flags
        reasons = {r for s, r in zip(status, req.column("drop_reason").to_pylist())
                   if s != "completed"}
        assert reasons <= {"router_rejected"} and status.count("completed") >= 50
    else:
        assert set(status) == {"completed"}
    table = routing_table(sim.router)
    if table is not None:
        assert table.schema.equals(ROUTING_SCHEMA)
        assert table.num_rows == req.num_rows
        # the side table names the model each request was recorded with
        by_id = dict(zip(req.column("request_id").to_pylist(), req.column("model").to_pylist()))
        assert all(by_id[i] == m or m is None  # None: refused (a blocking rule)
                   for i, m in zip(table.column("request_id").to_pylist(),
                                   table.column("model").to_pylist()))


def test_routing_table_is_none_for_load_balancers_and_typed_when_empty():
    rr = build_router({"_target_": "wrpsim.router.RoundRobin"})
    assert routing_table(rr) is None
    r = build_router({"_target_": "wrpsim.router.OutputLengthAware"})
    r.decisions = []
    t = routing_table(r)
    assert isinstance(t, pa.Table) and t.num_rows == 0 and t.schema.equals(ROUTING_SCHEMA)


def test_model_routers_refuse_models_the_fleet_does_not_serve():
    cfg = two_model_cfg({"_target_": "wrpsim.router.UtilityRouter", "models": ["gpt-5"]})
    with pytest.raises(ConfigError, match=r"router\.models: model 'gpt-5' is served by no pool"):
        Simulation(cfg, make_trace([0.0], [10], [2]))
    cfg = compose_cfg("router=routellm-threshold")
    with pytest.raises(ConfigError, match="the fleet must serve two models"):
        Simulation(cfg, make_trace([0.0], [10], [2]))


@pytest.mark.parametrize("name", ["semantic-rules", "output-length-aware", "slo-aware"])
def test_model_routers_work_on_a_disaggregated_fleet(name):
    cfg = compose_cfg(f"router={name}", "pool=h100-llama70b-disagg",
                      "workload=semantic-router-sample", "workload.max_requests=40")
    req, _, _ = Simulation(cfg).run()
    rows = req.to_pylist()
    assert all(r["status"] == "completed" and r["prefill_pool"] is not None for r in rows)
