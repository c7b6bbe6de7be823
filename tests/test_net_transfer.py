"""The transfer API (`Fabric`) inside SimPy: none / fluid / packet."""

from __future__ import annotations

import warnings

import pytest
import simpy

from tests.conftest import fabric_transfers
from wrpsim.errors import ConfigError, WrpsimWarning
from wrpsim.network.transfer import build_fabric

MIB = 1 << 20
SMALL = {"leaves": 2, "hosts_per_leaf": 2, "spines": 1, "gpus_per_host": 1, "host_gbps": 400,
         "prop_delay_ns": 1000}


def fabric(kind, **kw):
    f = build_fabric({"kind": kind, **SMALL, **kw}, seed=0)
    env = simpy.Environment()
    f.attach(env)
    return f, env


def run_transfers(kind, plan, **kw):
    """plan: [(start_s, src_gpus, dst_gpus, nbytes, name)] → {name: finish time}."""
    return fabric_transfers({"kind": kind, **SMALL, **kw}, plan)


def test_none_is_instantaneous_but_not_reentrant():
    f, env = fabric("none")
    calls = []
    env.run(until=1.5)
    f.transfer([0], [3], 10 * MIB, lambda t: calls.append(t))
    assert calls == []                   # via a zero-delay event, never inside transfer()
    env.run()
    assert calls == [1.5]
    assert f.stats()["bytes_moved"] == 10 * MIB and f.stats()["transfers"] == 1


@pytest.mark.parametrize("kind", ["fluid", "packet"])
def test_two_transfers_sharing_a_link_take_twice_as_long(kind):
    alone, _ = run_transfers(kind, [(1.0, [0], [2], 8 * MIB, "a")])
    both, f = run_transfers(kind, [(1.0, [0], [2], 8 * MIB, "a"), (1.0, [1], [2], 8 * MIB, "b")])
    t1 = alone["a"] - 1.0
    assert both["a"] - 1.0 == pytest.approx(2 * t1, rel=0.03)
    assert both["b"] - 1.0 == pytest.approx(2 * t1, rel=0.03)
    st = f.stats()
    assert st["flows_completed"] == 2 and st["bytes_moved"] == 16 * MIB
    assert 0.9 < st["max_link_utilization"] <= 1.0 + 1e-9


def test_fluid_exact_times():
    """One 8 MiB flow alone: M/C; a second one arriving halfway: both share from then on."""
    t = 8 * MIB * 8 / 400e9
    out, _ = run_transfers("fluid", [(0.0, [0], [2], 8 * MIB, "a"),
                                     (t / 2, [1], [2], 8 * MIB, "b")])
    assert out["a"] == pytest.approx(t / 2 + t, rel=1e-9)
    assert out["b"] == pytest.approx(t / 2 + t + t / 2, rel=1e-9)


def test_packet_within_a_few_percent_of_fluid():
    """Staggered transfers over one shared uplink, buffers deep enough for no loss: FIFO ports
    with equal windows share in proportion to windows, not max-min, so finishing times differ
    by a few percent."""
    plan = [(0.0, [0], [2], 8 * MIB, "a"), (20e-6, [1], [3], 8 * MIB, "b"),
            (30e-6, [0, 1], [3, 2], 4 * MIB, "c"), (1.0, [3], [0], 8 * MIB, "d")]
    fl, _ = run_transfers("fluid", plan, buffer_bdp=8)
    pk, f = run_transfers("packet", plan, buffer_bdp=8)
    assert f.stats()["drops"] == 0
    for name, start in [("a", 0.0), ("b", 20e-6), ("c", 30e-6), ("d", 1.0)]:
        assert pk[name] - start == pytest.approx(fl[name] - start, rel=0.08), name
    assert f.stats()["data_packets"] >= (8 + 8 + 4 + 8) * MIB // 4096


def test_packet_alone_matches_oracle1_in_simpy():
    out, _ = run_transfers("packet", [(2.0, [0], [2], 4 * MIB, "a")], header_bytes=0)
    assert out["a"] == pytest.approx(2.0 + 88.13184e-6, abs=1e-12)
    out, f = run_transfers("packet", [(2.0, [0], [2], 4 * MIB, "a")])  # 64-byte headers
    assert out["a"] == pytest.approx(2.0 + f.topo.min_latency_ps(4 * MIB, 0, 2) / 1e12,
                                     abs=1e-12)


@pytest.mark.parametrize("kind", ["fluid", "packet"])
def test_tensor_parallel_transfer_is_n_equal_flows(kind):
    """A 3-flow transfer: nbytes/3 each, remainder on the first; done once, at the last."""
    calls = []
    f, env = fabric(kind, leaves=2, hosts_per_leaf=3)
    f.transfer([0, 1, 2], [3, 4, 5], 3 * MIB + 2, lambda t: calls.append(t))
    env.run()
    assert len(calls) == 1
    flows = [f.flow(i) for i in f.flow_ids(0)]
    assert [fl[2] for fl in flows] == [MIB + 2, MIB, MIB]
    assert calls[0] == pytest.approx(max(fl[4] for fl in flows))
    assert not f.log.x_live and not f.log.f_live  # finished: no live state left


def test_same_server_uses_nvlink_and_self_is_instant():
    out, _ = run_transfers("fluid", [(0.0, [0], [1], 9 * MIB, "nv"), (0.0, [2], [2], MIB, "self")],
                           gpus_per_host=2, nvlink_gbps=3600)
    assert out["nv"] == pytest.approx(9 * MIB * 8 / 3600e9)
    assert out["self"] == 0.0
    out, _ = run_transfers("packet", [(0.0, [0], [1], MIB, "nv")], gpus_per_host=2,
                           nvlink_gbps=None)
    assert out["nv"] == 0.0



@pytest.mark.parametrize("kind", ["fluid", "packet"])
def test_a_pcie_servers_gpus_copy_over_their_own_link(kind):
    """GPUs marked as on a PCIe server (`set_server_link`) copy to each other at their link's
    rate, not `nvlink_gbps`; a copy from such a GPU to an NVLink one runs at the slower end;
    the fast path (the same GPU lists again) and the first one agree."""
    f, env = fabric(kind, gpus_per_host=4, hosts_per_leaf=4, nvlink_gbps=3600)
    f.set_server_link([0, 1], 512)  # PCIe Gen5 x16: 64 GB/s
    out = {}

    def go(t, src, dst, name):
        yield env.timeout(t)
        f.transfer(src, dst, 8 * MIB, lambda now, n=name: out.setdefault(n, now - t))

    for t, src, dst, name in ((0.0, [0], [1], "pcie"), (1.0, [0], [1], "again"),
                              (2.0, [1], [2], "mixed"), (3.0, [2], [3], "nvlink")):
        env.process(go(t, src, dst, name))
    env.run()
    assert out["pcie"] == pytest.approx(8 * MIB * 8 / 512e9)
    assert out["again"] == pytest.approx(out["pcie"])
    assert out["mixed"] == pytest.approx(out["pcie"])
    assert out["nvlink"] == pytest.approx(8 * MIB * 8 / 3600e9)

@pytest.mark.parametrize("kind", ["fluid", "packet"])
def test_done_callback_may_start_the_next_transfer(kind):
    """Chained transfers from inside `done`: three back-to-back 1 MiB hops."""
    f, env = fabric(kind)
    times = []

    def hop(t, left=3):
        times.append(t)
        if left:
            f.transfer([0], [2], MIB, lambda now: hop(now, left - 1))

    hop(0.0)
    env.run()
    one = times[1] - times[0]
    assert len(times) == 4
    assert times[3] == pytest.approx(3 * one, rel=1e-6)


@pytest.mark.parametrize("kind", ["fluid", "packet"])
def test_interleaves_with_other_simpy_events(kind):
    """Run-ahead never skips over other SimPy activity: a process waking every 10 µs sees
    the transfer still running until it ends, and `env.run(until=...)` stops in the middle."""
    f, env = fabric(kind)
    seen = []

    def ticker():
        while True:
            yield env.timeout(10e-6)
            seen.append((env.now, f.stats()["flows_completed"]))

    env.process(ticker())
    done = []
    f.transfer([0], [2], 8 * MIB, lambda t: done.append(t))
    env.run(until=100e-6)
    assert done == [] and all(c == 0 for _, c in seen)
    env.run(until=300e-6)
    assert len(done) == 1 and 160e-6 < done[0] < 180e-6
    assert [c for t, c in seen if t > done[0]] == [1] * len([t for t, _ in seen if t > done[0]])


def test_place_and_errors():
    f = build_fabric({"kind": "fluid", "leaves": 4, "hosts_per_leaf": 4, "spines": 2,
                      "gpus_per_host": 2, "placement": "spread"}, 0)
    gpus = f.place([("prefill", 2, 2), ("decode", 2, 2)])
    assert sorted(gpus) == [("decode", 0), ("decode", 1), ("prefill", 0), ("prefill", 1)]
    assert len({g for v in gpus.values() for g in v}) == 8
    with pytest.raises(ConfigError, match="the fabric has 16 GPUs"):
        f.place([("big", 5, 4)])
    assert build_fabric(None, 0).place([("p", 3, 8)])[("p", 2)] == list(range(16, 24))
    with pytest.raises(ConfigError, match=r"network: unknown key\(s\) \['speed'\]"):
        build_fabric({"kind": "fluid", "speed": 1}, 0)
    with pytest.raises(ConfigError, match=r"network\.kind: unknown value 'ns3'"):
        build_fabric({"kind": "ns3"}, 0)
    f, _ = fabric("fluid")
    with pytest.raises(ConfigError, match="GPU id 9 outside"):
        f.transfer([9], [0], 1, lambda t: None)


@pytest.mark.parametrize("name", ["none", "fluid", "packet"])
def test_shipped_network_configs_build(name):
    """Every option of the `network` config group builds a fabric and moves a KV cache (256 MiB:
    65,536 packets at packet level)."""
    import yaml

    from wrpsim.paths import catalog_dir

    cfg = yaml.safe_load((catalog_dir("conf") / "network" / f"{name}.yaml").read_text())
    assert cfg["kind"] == name
    f = build_fabric(cfg, 0)
    env = simpy.Environment()
    f.attach(env)
    gpus = f.place([("prefill", 4, 8), ("decode", 4, 8)])
    done = []
    f.transfer(gpus["prefill", 0], gpus["decode", 3], 1 << 28, lambda t: done.append(t))
    env.run()
    assert len(done) == 1
    if name != "none":
        assert f.topo.n >= 256 and 0 < done[0] < 0.01


class CountingEnv(simpy.Environment):
    """Counts the SimPy events processed."""

    steps = 0

    def step(self):
        self.steps += 1
        return super().step()


@pytest.mark.parametrize("kind", ["fluid", "packet"])
def test_few_simpy_events_per_transfer(kind):
    """The packet engine runs ahead between SimPy events: a 2048-packet transfer costs a
    handful of SimPy events, not one per packet."""
    f = build_fabric({"kind": kind, **SMALL}, 0)
    env = CountingEnv()
    f.attach(env)
    done = []
    for i in range(2):
        f.transfer([i], [2 + i], 8 * MIB, lambda t: done.append(t))
    env.run()
    assert len(done) == 2 and env.steps <= 6


@pytest.mark.parametrize("kind", ["fluid", "packet"])
def test_figures_give_each_tier_its_link_load_over_the_run(kind):
    """One 8 MiB flow from GPU 0 (leaf 0) to GPU 2 (leaf 1) over a 10 s run: its host uplink,
    one leaf uplink, one spine downlink and the destination's leaf downlink each carry the 8 MiB
    (plus headers and nothing else), so each of those tiers' max load is 8 MiB x 8 / (rate x
    10 s) and the other links carry nothing."""
    _, f = run_transfers(kind, [(1.0, [0], [2], 8 * MIB, "a")])
    fig = f.figures(10.0)
    util = fig["link_utilization"]
    assert set(util) == {"host_up", "leaf_down", "leaf_up", "spine_down"}
    wire = 8 * MIB * 8 / (400e9 * 10.0)
    for tier in util.values():
        assert tier["max"] == pytest.approx(wire, rel=0.03)  # headers: +1.6 % on packets
        assert tier["mean"] <= tier["max"]
    assert fig["bytes_moved"] == 8 * MIB and fig["flows_completed"] == 1


def test_fleet_run_on_a_fabric_writes_the_network_figures(tmp_path):
    """A disaggregated fleet on the fluid fabric: network.json is written, and summary.json's
    network bytes are exactly the KV bytes the requests moved (no other traffic)."""
    import json

    from tests.conftest import compose_cfg
    from wrpsim.sim import run

    cfg = compose_cfg("pool=h100-llama70b-disagg", "network=fluid", "workload.max_requests=60")
    summary = run(cfg, tmp_path)
    net = json.loads((tmp_path / "network.json").read_text())
    assert summary["network_kind"] == "fluid" == net["kind"]
    assert summary["network_bytes"] == net["bytes_moved"] == summary["kv_transfer_bytes"] > 0
    assert 0 < summary["network_max_link_utilization"] <= 1.0
    assert summary["network_down_ports"] == net["down_ports"] == 0
    assert summary["network_degraded_ports"] == net["degraded_ports"] == 0
    assert 0 < net["p50_fct_s"] <= summary["network_p99_fct_s"] <= net["max_fct_s"]
    assert 0 < net["p50_transfer_s"] <= summary["network_p99_transfer_s"]
    # network.parquet: one row per port; its per-tier means and maxima are network.json's
    import pyarrow.parquet as pq

    links = pq.read_table(tmp_path / "network.parquet").to_pandas()
    assert len(links) == links["port"].nunique() > 0
    assert links["bytes"].sum() >= net["bytes_moved"]  # each byte crosses 2-4 ports
    for kind, tier in net["link_utilization"].items():
        u = links.loc[links["kind"] == kind, "utilization"]
        assert u.mean() == pytest.approx(tier["mean"], rel=1e-9)
        assert u.max() == pytest.approx(tier["max"], rel=1e-9)
    plain = run(compose_cfg("workload.max_requests=60"), tmp_path / "plain")
    assert not any(k.startswith("network_") for k in plain)
    assert not (tmp_path / "plain" / "network.json").exists()
    assert not (tmp_path / "plain" / "network.parquet").exists()


def test_fleet_run_counts_failed_and_degraded_ports(tmp_path):
    """`failed_links` in a fleet run: network.json and summary.json count the ports down (one
    link both ways: 2) and degraded (one link at half rate both ways: 2), as the standalone
    summary does."""
    import json

    from tests.conftest import compose_cfg
    from wrpsim.sim import run

    cfg = compose_cfg("pool=h100-llama70b-disagg", "network=fluid", "workload.max_requests=10",
                      "network.failed_links=[leaf0-spine3,{leaf: 1, spine: 2, rate_factor: 0.5}]")
    summary = run(cfg, tmp_path)
    net = json.loads((tmp_path / "network.json").read_text())
    assert summary["network_down_ports"] == net["down_ports"] == 2
    assert summary["network_degraded_ports"] == net["degraded_ports"] == 2


def test_a_pair_seen_before_is_still_checked():
    """The fluid fast path keeps what it learnt of a pair of GPU lists (`Fabric._plan`); a
    later call with that pair but bad bytes, or lists of other lengths with the same GPUs,
    is still refused."""
    f, env = fabric("fluid", gpus_per_host=1)
    f.transfer([0, 1], [2, 3], MIB, lambda t: None)
    with pytest.raises(ValueError):
        f.transfer([0, 1], [2, 3], -1, lambda t: None)
    with pytest.raises(ValueError):
        f.transfer([0, 1, 2], [3], MIB, lambda t: None)
    f.transfer([0, 1], [2, 3], MIB, lambda t: None)
    env.run()
    assert f.stats()["transfers"] == 2 and f.stats()["flows_completed"] == 4


def _kv_like_run(on_route: bool) -> tuple:
    """Transfers of 2 flows each (within one leaf, across leaves, sharing ports, all at
    once or one after another), started through `transfer` or, once a pair has been seen,
    through `transfer_on` with its `route`; every record the fabric keeps."""
    f, env = fabric("fluid", gpus_per_host=1, hosts_per_leaf=4)
    done = []
    pairs = [([0, 1], [2, 3]), ([0, 1], [4, 5]), ([1, 0], [3, 2]), ([2, 3], [0, 1])]
    routes = {}
    used = []

    def start(i, nbytes):
        src, dst = pairs[i % len(pairs)]

        def cb(t, i=i):
            done.append((i, t))

        r = routes.get(i % len(pairs)) if on_route else None
        if r is not None:
            used.append(i)
            x = f.transfer_on(r, nbytes, cb, "kv")
        else:
            x = f.transfer(src, dst, nbytes, cb, tag="kv")
            routes[i % len(pairs)] = f.route(src, dst)
        done.append(("x", x))

    for i in range(24):
        f.env.process(_later(env, (i // 3) * 1e-5, start, i, (i % 5 + 1) * MIB + i % 3))
    env.run()
    assert len(used) == (20 if on_route else 0)
    log = f.log
    return (done, list(log.x_start), list(log.x_end), list(log.f_bytes), list(log.f_end),
            list(log.f_src), list(log.f_dst), list(f.engine.finish_s),
            f.engine.port_bytes.tolist(), f.stats())


def _later(env, delay, fn, *args):
    yield env.timeout(delay)
    fn(*args)


def test_transfer_on_a_route_is_transfer():
    """`Fabric.transfer_on(route, ...)` (a KV hand-off's path once it has seen a pair of
    instances) keeps the same records, connections, events and ids as `transfer`; a pair not
    seen yet, or a fabric off the fast path, has no route."""
    assert _kv_like_run(True) == _kv_like_run(False)
    f, _ = fabric("fluid", gpus_per_host=1)
    assert f.route([0, 1], [2, 3]) is None
    g, _ = fabric("packet", gpus_per_host=1)
    g.transfer([0, 1], [2, 3], MIB, lambda t: None)
    assert g.route([0, 1], [2, 3]) is None


def test_a_load_balancers_key_under_another_lb_is_a_warning_in_a_fleet_run():
    """`network.subflows=8` with lb=ecmp would run plain ECMP: the fleet's fabric says so (a
    warning, not an error: a sweep over lb and subflows runs every pair); the lb that reads
    it, or the default value, says nothing."""
    with pytest.warns(WrpsimWarning) as said:
        build_fabric({"kind": "fluid", **SMALL, "subflows": 8}, seed=0)
    assert [str(w.message) for w in said] == [
        "network.subflows applies only to lb=ecmp_subflows; with lb=ecmp it changes nothing "
        "(set network.lb=ecmp_subflows too, or leave subflows out)"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        build_fabric({"kind": "fluid", **SMALL, "subflows": 8, "lb": "ecmp_subflows"}, seed=0)
        build_fabric({"kind": "packet", **SMALL, "subflows": 4, "spray": "round_robin"}, seed=0)
