"""Fleet runs with tensor-parallel groups across servers: collectives on the fabric
(`wrpsim.pool.spanning`, docs/network.md "Collectives in fleet runs")."""

from __future__ import annotations

import json

import pytest

from tests.conftest import compose_cfg, make_trace, run_app
from wrpsim.errors import ConfigError
from wrpsim.network import theory
from wrpsim.pool.catalog import get_model
from wrpsim.pool.spanning import SpanningInstance
from wrpsim.sim import Simulation, run

# two 8-GPU servers on a rail-optimised fabric: rail k of both servers hangs off leaf k, so each
# rail's ring crosses only its leaf (no spine, no ECMP collision): the closed form is exact
NET = {"kind": "fluid", "leaves": 8, "hosts_per_leaf": 2, "spines": 2, "gpus_per_host": 8,
       "rail_optimized": True, "host_gbps": 400, "collectives": True,
       "collective_alpha_us": 10.0}
MODEL = "llama3.1-70b"


def cfg(tp=16, net=None, **pool):
    p = {"gpu": "h100-80gb", "model": MODEL, "tp": tp, "count": 1,
         "scheduler": {"policy": "sarathi", "token_budget": 2048, "max_seqs": 64}, **pool}
    return {"seed": 0, "slo": {"ttft_s": 1.0, "tpot_s": 0.1}, "pue": 1.0, "qoe": None,
            "pool": {"name": "t", "pools": {"p": p}},
            "router": {"_target_": "wrpsim.router.RoundRobin"},
            "network": dict(NET if net is None else net)}


def ring_s(inst, tokens, rate_bps=400e9):
    """The closed form of one iteration's inter-server collective on an idle fabric."""
    return theory.ring_collective_s("allreduce_ring", 2, inst.rank_bytes(tokens), rate_bps,
                                    alpha_s=inst.coll.alpha_s * inst.collectives)


def simulate(c, trace, before=None):
    sim = Simulation(c, trace)
    inst = sim.fleet.instances[0]
    inst.iteration_log = []
    if before is not None:
        before(sim)
    req, _, _ = sim.run()
    return sim, inst, req


def test_an_idle_spanning_instance_adds_the_closed_form_ring_to_every_iteration():
    sim, inst, _ = simulate(cfg(), make_trace([0.0, 0.0], [1000, 300], [20, 30]))
    assert isinstance(inst, SpanningInstance) and inst.gpus == list(range(16))
    m = get_model(MODEL)
    assert inst.collectives == m.attn_layers + m.ffn_layers == 160
    assert inst.rank_bytes(1) == 160 * m.hidden * 2 // 8
    log = inst.iteration_log
    assert len(log) == inst.iterations > 30
    for *_, coll, tokens in log:
        assert coll == pytest.approx(ring_s(inst, tokens), rel=1e-9)
    # sequential: each iteration lasts compute + collective, back to back while work remains
    assert inst.busy_s == pytest.approx(sum(c + k for _, c, k, _ in log), rel=1e-12)
    assert inst.collective_s == pytest.approx(sum(k for *_, k, _ in log), rel=1e-12)
    # the compute is the latency model's at tp 16 with the all-reduce inside one server only
    lat = inst.latency
    assert lat.tp == 16 and lat.coll_tp == 8
    assert log[0][3] == 1000  # the second prompt is still being tokenized
    assert log[0][1] == pytest.approx(lat.iteration_s(1000, 1000 * 1001 / 2, 0, 0), rel=1e-12)
    fab = sim.fleet.transfer.fabric
    wire = sum(2 * inst.rank_bytes(tok) * 8 for *_, tok in log)  # 2 steps x 2 ranks x S/2, 8 rails
    assert fab.bytes_by_tag == {"collective": wire}


def test_a_kv_like_load_on_the_same_nic_slows_the_ring_to_the_shared_rate():
    """A bulk transfer GPU 0 -> GPU 8 (rail 0, both servers) runs while the first iteration's
    collectives do: rail 0's ring flow 0 -> 8 gets half the NIC in both steps, so the iteration
    waits 2 (S/2)/(B/2) + 2 C alpha, the closed form at B/2."""
    def load(sim):
        fab = sim.fleet.transfer.fabric
        fab.transfer([0], [8], 50 << 30, lambda t: None, tag="kv")

    sim, inst, _ = simulate(cfg(), make_trace([0.0], [2000], [3]), before=load)
    *_, coll, tokens = inst.iteration_log[0]
    assert coll == pytest.approx(ring_s(inst, tokens, 200e9), rel=1e-9)
    assert coll > 1.3 * ring_s(inst, tokens)
    assert sim.fleet.transfer.fabric.bytes_by_tag["kv"] == 50 << 30


def test_disaggregated_kv_transfers_compete_with_the_collectives_end_to_end(tmp_path):
    """Prefill on two servers (tp 16), decode on one: the KV leaves the prefill GPUs while
    their next iterations' rings run; both classes are counted, and some iterations are slower
    than the idle closed form, none faster."""
    c = cfg()
    p = c["pool"]["pools"]["p"]
    c["pool"]["pools"] = {
        "pre": {**p, "role": "prefill"},
        "dec": {**p, "tp": 8, "role": "decode"},
    }
    c["network"]["hosts_per_leaf"] = 3
    trace = make_trace([0.02 * i for i in range(40)], [3000] * 40, [4] * 40)
    sim = Simulation(c, trace)
    pre = sim.fleet.pools["pre"][0]
    pre.iteration_log = []
    sim.run()
    ratios = [k / ring_s(pre, tok) for _, _, k, tok in pre.iteration_log]
    assert min(ratios) > 1 - 1e-9
    assert max(ratios) > 1.05
    tags = sim.fleet.transfer.fabric.bytes_by_tag
    assert tags["kv"] > 0 and tags["collective"] > 0


def test_switch_off_or_no_spanning_group_makes_no_collective_calls(monkeypatch):
    import wrpsim.network.collectives as coll

    def boom(*a, **k):
        raise AssertionError("collectives called")

    monkeypatch.setattr(coll, "start_collective", boom)
    trace = make_trace([0.0, 0.1], [500, 800], [10, 10])
    for net in ({**NET, "collectives": False}, NET):  # tp 8 fits a server: a plain Instance
        sim, inst, _ = simulate(cfg(tp=8, net=net), trace)
        assert type(inst).__name__ == "Instance"
        assert "collective" not in sim.fleet.transfer.fabric.bytes_by_tag


def test_same_seed_same_bytes(tmp_path):
    trace = make_trace([0.0, 0.05, 0.1], [700, 1500, 300], [12, 8, 20])
    for d in ("a", "b"):
        run(cfg(), tmp_path / d, trace=trace)
    for f in ("requests.parquet", "instances.parquet", "network.json"):
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes()
    net = json.loads((tmp_path / "a" / "network.json").read_text())
    summary = json.loads((tmp_path / "a" / "summary.json").read_text())
    assert net["bytes_by_class"]["collective"] == summary["network_collective_bytes"] > 0
    assert summary["network_kv_bytes"] == net["bytes_by_class"]["kv"] == 0


@pytest.mark.parametrize(("net", "tp", "match"), [
    ({"kind": "none", "collectives": True}, 8, r"network.collectives=true needs a fabric"),
    ({"kind": "nic", "nic_gbps": 400, "collectives": True}, 8, r"needs a fabric"),
    ({**NET, "collectives": False}, 16, r"tp=16 spans more than one 8-GPU server.*"
                                        r"network.collectives=true"),
    ({"kind": "none"}, 16, r"tp=16 spans more than one"),
    ({**NET, "collectives": False, "gpus_per_host": 2}, 4,
     r"^pool\.pools\.p\.tp=4 spans servers of 2 GPUs \(network\.gpus_per_host\) whose "
     r"collectives are not simulated: set network\.collectives=true"),
    (NET, 12, r"tp=12 spans servers of 8 GPUs .* not a multiple of 8"),
    ({**NET, "collectives": "yes"}, 16, r"network.collectives must be true or false"),
    ({**NET, "collective_alpha_us": -1}, 16, r"network.collective_alpha_us"),
    ({**NET, "collective_alpha_us": float("inf")}, 16,
     r"network.collective_alpha_us must be a finite number >= 0 and <= 1000000000, got inf"),
    ({**NET, "host_gbps": float("inf")}, 16, r"network.host_gbps must be a finite number in "),
])
def test_bad_configs_name_the_key(net, tp, match):
    with pytest.raises(ConfigError, match=match):
        Simulation(cfg(tp=tp, net=net), make_trace([0.0], [10], [2]))


def test_analytical_engine_cannot_span():
    with pytest.raises(ConfigError, match=r"pool.pools.p.tp=16 spans servers: engine "
                                          r"splitwise-2023"):
        Simulation(cfg(engine="splitwise-2023"), make_trace([0.0], [10], [2]))


def test_cli_one_line_exit_2(monkeypatch, capsys, tmp_path):
    code, _, err = run_app(monkeypatch, capsys, tmp_path, "pool.pools.h100.tp=16",
                             "network.collectives=true")
    assert code == 2
    assert err.strip().splitlines() == [
        "wrpsim: error: network.collectives=true needs a fabric (network=fluid or "
        "network=packet), got network.kind=none"]


def test_end_to_end_tp16_on_two_servers_reports_collective_bytes(tmp_path):
    c = compose_cfg("pool.pools.h100.tp=16", "pool.pools.h100.count=1", "network=fluid",
                    "network.collectives=true", "workload.max_requests=60")
    s = run(c, tmp_path)
    assert s["requests_completed"] == 60
    assert s["network_collective_bytes"] == s["network_bytes"] > 0
    assert s["network_kv_bytes"] == 0


def test_a_rack_scale_nvlink_domain_holds_groups_larger_than_a_server():
    """A GB200 NVL72 GPU's scale-up domain is 72 GPUs (`scaleup_gpus`): a 16-GPU group runs
    on NVLink, also beside a fabric with collectives on (it never spans it), and one larger
    than the rack is refused in one line naming the domain; an HGX GPU keeps 8."""
    def pool(gpu, tp):
        return {"gpu": gpu, "model": "kimi-k2.5", "tp": tp, "ep": tp, "attn_dp": tp,
                "count": 1, "precision": "fp4", "kv_dtype": "fp8"}

    trace = make_trace([0.0, 0.1], [700, 1500], [12, 8])
    for net in ({"kind": "none"}, NET):
        cfg = {"seed": 0, "slo": {"ttft_s": 10.0, "tpot_s": 1.0}, "pue": 1.0, "network": net,
               "pool": {"pools": {"p": pool("gb200-186gb", 16)}},
               "router": {"_target_": "wrpsim.router.RoundRobin"}}
        sim = Simulation(cfg, trace)
        assert not any(isinstance(i, SpanningInstance) for i in sim.fleet.instances)
        assert set(sim.run()[0].column("status").to_pylist()) == {"completed"}
    cfg["network"] = {"kind": "none"}
    cfg["pool"]["pools"]["p"] = {**pool("gb200-186gb", 96),
                                 "scheduler": {"max_seqs": 1024, "token_budget": 8192}}
    with pytest.raises(ConfigError, match=r"^pool\.pools\.p\.tp=96 spans more than one 72-GPU "
                                          r"NVLink domain of gb200-186gb; .*at most 72"):
        Simulation(cfg, trace)
    cfg["pool"]["pools"]["p"] = pool("b200-180gb", 16)
    with pytest.raises(ConfigError, match=r"tp=16 spans more than one 8-GPU server of b200"):
        Simulation(cfg, trace)
