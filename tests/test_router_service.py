"""The router as a service: replicas, per-decision service time, the FIFO queue in front."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest

from tests.conftest import compose_cfg, constant_cfg, lindley, make_trace
from wrpsim.errors import ConfigError
from wrpsim.metrics.summary import summarize
from wrpsim.router.service import SIGNALS, RouterService, ServiceSpec
from wrpsim.sim import Simulation, run


def _cfg(replicas=1, signal="gpu_classifier", count=4, **service) -> dict:
    cfg = constant_cfg(step_s=0.01, count=count)
    cfg["router"] = {"_target_": "wrpsim.router.LeastOutstanding", "replicas": replicas,
                     "service": {"signal": signal, **service}}
    return cfg


def _poisson(rate: float, n: int, seed: int = 1) -> np.ndarray:
    return np.cumsum(np.random.default_rng(seed).exponential(1.0 / rate, n))


def test_one_replica_is_a_fifo_single_server_queue():
    """route_s = the Lindley wait of a FIFO queue with 20 ms service + the service itself, and
    TTFT = route_s + the instance's first step (constant latency, never busy)."""
    arr = _poisson(40.0, 400)
    trace = make_trace(arr, [10] * len(arr), [1] * len(arr))
    rows = Simulation(_cfg(count=64), trace).run()[0].to_pylist()
    route = np.array([r["route_s"] for r in rows])
    s = SIGNALS["gpu_classifier"]
    assert s == 0.020
    np.testing.assert_allclose(route, lindley(arr, np.full(len(arr), s)) + s, atol=1e-9)
    np.testing.assert_allclose([r["ttft_s"] for r in rows], route + 0.01, atol=1e-9)


def test_replicas_share_the_queue():
    """Two replicas at the load that keeps one busy 80 % of the time: half the utilisation,
    less waiting, never less than the service time."""
    arr = _poisson(40.0, 400)
    trace = make_trace(arr, [10] * len(arr), [1] * len(arr))
    out = {}
    for k in (1, 2):
        sim = Simulation(_cfg(replicas=k, count=64), trace)
        req, inst, end = sim.run()
        out[k] = (summarize(req, inst, end, sim.slo, 1.0), sim.service.summary(end))
    (s1, r1), (s2, r2) = out[1], out[2]
    assert r2["router_utilization"] == pytest.approx(r1["router_utilization"] / 2)
    assert 0.020 <= s2["route_mean_s"] < s1["route_mean_s"]


def test_a_saturated_gpu_classifier_dominates_ttft_on_the_default_scenario():
    """Default workload, fleet four times as large (so the engines keep up), one router replica
    running a 20 ms GPU classifier (capacity 50 decisions/s). At the trace's rate (~5.5
    requests/s) routing is a small part of TTFT; at 12x (~66/s) it is nearly all of it and the
    router is busy nearly all the time. Each run stops while requests still arrive
    (`sim.horizon_s`), so the fleet's drain after the last arrival does not dilute the
    utilisation."""
    base = ("workload.max_requests=3000", "pool.pools.h100.count=16", "router.replicas=1",
            "router.service.signal=gpu_classifier")
    got = {}
    for scale, horizon in ((1, 400), (12, 36)):
        sim = Simulation(compose_cfg(*base, f"workload.rate_scale={scale}",
                                     f"sim.horizon_s={horizon}"))
        req, inst, end = sim.run()
        s = summarize(req, inst, end, sim.slo, 1.0)
        got[scale] = (s["route_mean_s"] / s["ttft_mean_s"], sim.service.summary(end))
    (low_share, low), (high_share, high) = got[1], got[12]
    assert low_share < 0.3 and low["router_utilization"] < 0.15
    assert high_share > 0.9 and high["router_utilization"] > 0.9


def test_routing_columns_and_summary_keys(tmp_path):
    trace = make_trace([0.0, 0.001, 0.002], [10] * 3, [2] * 3)
    s = run(_cfg(signal="llm"), tmp_path, trace)
    assert s["router_replicas"] == 1 and s["router_signal"] == "llm"
    assert s["router_service_s"] == SIGNALS["llm"] and s["router_decisions"] == 3
    assert s["route_mean_s"] == pytest.approx((0.3 + 0.599 + 0.898) / 3)  # 0.3 s each, FIFO
    assert s["router_utilization"] == pytest.approx(0.9 / s["duration_s"])
    route = pq.read_table(tmp_path / "requests.parquet").column("route_s").to_pylist()
    assert route == pytest.approx([0.3, 0.599, 0.898])


def test_free_routing_by_default_adds_nothing():
    rows = Simulation(constant_cfg(step_s=0.01), make_trace([0.0], [10], [2])).run()[0]
    assert rows.column("route_s").to_pylist() == [0.0]
    assert rows.column("ttft_s").to_pylist() == [pytest.approx(0.01)]


def test_explicit_service_time_overrides_the_signal():
    assert ServiceSpec.parse(3, {"signal": "embedding", "time_s": 0.001}) == ServiceSpec(
        3, "embedding", 0.001)
    svc = RouterService(ServiceSpec(2, "none", 1.0))
    assert [svc.take(0.0), svc.take(0.0), svc.take(0.5)] == [(0.0, 1.0), (0.0, 1.0), (1.0, 2.0)]
    assert svc.summary(2.0)["router_utilization"] == pytest.approx(3.0 / 4.0)
    assert svc.summary(1.5)["router_utilization"] == pytest.approx(2.5 / 3.0)  # work past the end


@pytest.mark.parametrize(("key", "value", "message"), [
    ("replicas", 0, r"router\.replicas must be an integer in \[1, 100,000\], got 0"),
    ("replicas", 1.5, r"router\.replicas must be an integer in \[1, 100,000\], got 1\.5"),
    ("service", {"signal": "telepathy"},
     r"router\.service\.signal: unknown value 'telepathy'; valid choices: cpu_classifier, "
     r"cpu_rule, embedding, gpu_classifier, llm, none"),
    ("service", {"time_s": -0.01}, r"router\.service\.time_s must be a finite number >= 0"),
    ("service", {"replicas": 2}, r"router\.service: unknown key\(s\) \['replicas'\]; valid "
                                 r"keys: signal, time_s"),
])
def test_bad_service_configs_name_the_field_and_the_choices(key, value, message):
    cfg = constant_cfg()
    cfg["router"][key] = value
    with pytest.raises(ConfigError, match=message):
        Simulation(cfg, make_trace([0.0], [10], [2]))
