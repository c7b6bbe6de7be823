"""Collectives as dependent flows (`wrpsim.network.collectives`): DAG structure, closed forms
(theory.py), dependencies in the records, packet vs fluid, competition with other traffic, CLI."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from collections import Counter
from functools import partial
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import simpy

from wrpsim.errors import ConfigError
from wrpsim.net import parse_args, run
from wrpsim.network import theory
from wrpsim.network.collective_scenario import group_endpoints, run_collective
from wrpsim.network.collectives import KINDS, Collective, log2_ceil, start_collective
from wrpsim.network.config import NetConfig
from wrpsim.network.records import COLLECTIVE_FLOW_SCHEMA
from wrpsim.network.topology import LeafSpine
from wrpsim.network.transfer import Fabric

ROOT = Path(__file__).resolve().parents[1]
C = 400e9
MIB = 1 << 20


def cfg(kind="fluid", **kw) -> NetConfig:
    return NetConfig.from_dict({"kind": kind, "leaves": 8, "hosts_per_leaf": 2, "spines": 2,
                                "host_gbps": 400, **kw})


# ------------------------------------------------------------------ the DAGs
@pytest.mark.parametrize("n", [2, 3, 5, 8])
def test_ring_dag(n):
    S = 1000 * n + 3
    for kind, nsteps in [("allreduce_ring", 2 * (n - 1)), ("allgather", n - 1),
                         ("reducescatter", n - 1)]:
        steps = Collective(kind, tuple(range(n)), S).steps()
        assert len(steps) == n * nsteps
        for i, s in enumerate(steps):
            assert s.dst == (s.src + 1) % n and all(d < i for d in s.deps)
            if s.step:
                assert {steps[d].src for d in s.deps} == {s.src, (s.src - 1) % n}
                assert all(steps[d].step == s.step - 1 for d in s.deps)
            else:
                assert s.deps == ()
        # every rank sends each chunk index once per phase: all of S per n - 1 steps minus its own
        sent = Counter()
        for s in steps:
            sent[s.src] += s.nbytes
        assert all(abs(b * n - nsteps * S) <= nsteps * n for b in sent.values())


@pytest.mark.parametrize("n, chunks", [(2, 1), (5, 1), (8, 1), (8, 3), (16, 2)])
def test_tree_dag(n, chunks):
    steps = Collective("allreduce_tree", tuple(range(n)), 999, chunks=chunks).steps()
    assert all(d < i for i, s in enumerate(steps) for d in s.deps)
    assert len(steps) == 2 * (n - 1) * chunks
    up, down = steps[:len(steps) // 2], steps[len(steps) // 2:]
    # reduce: every non-root rank sends each piece once, to a lower rank; broadcast: receives once
    assert Counter(s.src for s in up) == {r: chunks for r in range(1, n)}
    assert all(s.dst < s.src for s in up)
    assert Counter(s.dst for s in down) == {r: chunks for r in range(1, n)}
    assert sum(s.nbytes for s in up) == (n - 1) * 999
    assert max(s.step for s in steps) == 2 * log2_ceil(n) - 1


def test_alltoall_dag():
    coll = Collective("alltoall", [3, 1, 4, 0], 4 * 1000 + 2)
    assert coll.ranks == (3, 1, 4, 0)
    steps = coll.steps()
    assert len(steps) == 12 and all(s.deps == () for s in steps)
    assert sorted(s.nbytes for s in steps if s.src == 0) == [1000, 1000, 1001]


def test_collective_rejects_bad_values():
    with pytest.raises(ConfigError, match="collective: unknown value 'ring'; valid choices: "
                                          "allgather, allreduce_ring"):
        Collective("ring", (0, 1), 10)
    with pytest.raises(ConfigError, match="distinct"):
        Collective("alltoall", (0, 0), 10)


# ------------------------------------------------------------------ groups
def test_a_collective_given_to_the_flow_scenario_is_sent_to_run_collective():
    """run_scenario runs flow patterns; a collective's name there says where it runs instead
    of calling itself unknown (it is among the valid choices of `python -m wrpsim.net`)."""
    from wrpsim.network.scenario import run_scenario

    cfg = NetConfig.from_dict({"kind": "fluid", "leaves": 2, "hosts_per_leaf": 2, "spines": 2})
    with pytest.raises(ConfigError, match=r"^pattern=allreduce_tree is a collective: run it "
                       r"with wrpsim.network.collective_scenario.run_collective; flow patterns: "
                       r"permutation, all_to_all, ring_allreduce$"):
        run_scenario(cfg, "allreduce_tree", 1 << 20, 0)


def test_groups():
    topo = LeafSpine(cfg(gpus_per_host=2))
    assert group_endpoints(topo, "spread", 10) == [0, 2, 4, 6, 8, 10, 12, 14, 1, 3]
    assert group_endpoints(topo, "leaf", 2) == [0, 1]
    assert group_endpoints(topo, "pack", 3) == [0, 1, 2]
    assert group_endpoints(topo, [5, 0, 9], 99) == [5, 0, 9]


# ------------------------------------------------------------------ closed forms (fluid)
@pytest.mark.parametrize("kind", ["allreduce_ring", "allgather", "reducescatter"])
@pytest.mark.parametrize("n, group, alpha_us", [(8, "spread", 0.0), (5, "spread", 3.0),
                                                (2, "leaf", 1.5)])
def test_ring_closed_form_fluid(kind, n, group, alpha_us):
    S = 2 * MIB * n
    r = run_collective(cfg(lb="ecmp"), kind, S, 0, group, n, alpha_us)
    want = theory.ring_collective_s(kind, n, S, C, alpha_us * 1e-6)
    assert r.summary["cct_s"] == pytest.approx(want, rel=1e-9)
    assert r.summary["cct_ratio"] == pytest.approx(1.0, rel=1e-9)
    if alpha_us == 0:
        assert r.summary["busbw_gbps"] == pytest.approx(400, rel=1e-9)


@pytest.mark.parametrize("n", [2, 4, 8])
def test_tree_closed_form_fluid(n):
    S = 4 * MIB
    r = run_collective(cfg(lb="spray"), "allreduce_tree", S, 0, "spread", n, 2.0)
    want = 2 * math.log2(n) * (S * 8 / C + 2e-6)
    assert r.summary["cct_s"] == pytest.approx(want, rel=1e-9)
    assert r.summary["ideal_cct_s"] == pytest.approx(want, rel=1e-12)


def test_tree_pipelined_is_faster_and_above_its_bound():
    S = 8 * MIB
    one = run_collective(cfg(), "allreduce_tree", S, 0, "spread", 8, 0.0, 1).summary
    many = run_collective(cfg(), "allreduce_tree", S, 0, "spread", 8, 0.0, 8).summary
    assert many["cct_s"] < 0.8 * one["cct_s"]
    assert many["cct_s"] >= many["ideal_cct_s"] * (1 - 1e-9)


def test_alltoall_bisection_bound():
    S = 8 * MIB
    bound = theory.alltoall_bound_s(8, S, C)
    spray = run_collective(cfg(lb="spray", spines=2), "alltoall", S, 0, "spread", 8).summary
    assert spray["cct_s"] == pytest.approx(bound, rel=1e-9)  # non-blocking: the NICs bind
    ecmp = run_collective(cfg(lb="ecmp"), "alltoall", S, 0, "spread", 16).summary
    assert ecmp["cct_s"] >= ecmp["ideal_cct_s"] * (1 - 1e-9) >= bound * (1 - 1e-9)
    # half the uplinks: the bisection binds, 16 ranks on 8 leaves send 7/8 of S across it
    over = run_collective(cfg(lb="spray", spines=1), "alltoall", S, 0, "spread", 16).summary
    assert over["ideal_cct_s"] > theory.alltoall_bound_s(16, S, C)
    assert over["cct_s"] == pytest.approx(over["ideal_cct_s"], rel=1e-9)


def test_nvlink_group_inside_servers():
    r = run_collective(cfg(gpus_per_host=2, nvlink_gbps=800), "allreduce_ring", 4 * MIB, 0,
                       "leaf", 2)
    s = r.summary
    assert s["nvlink_flows"] == s["flows"] == 4 and s["conns"] == 0
    assert s["cct_s"] == pytest.approx(theory.ring_collective_s("allreduce_ring", 2, 4 * MIB,
                                                                800e9), rel=1e-12)
    assert set(r.flows.column("link").to_pylist()) == {"nvlink"}


# ------------------------------------------------------------------ ideal_cct_s is a lower bound
@pytest.mark.parametrize("n, chunks, want", [
    (2, 1, 2), (4, 1, 4), (8, 1, 6), (8, 4, 9),    # a power of 2: 2 log2 n + chunks - 1
    (3, 1, 3), (5, 1, 5), (6, 1, 5), (7, 1, 5),    # shallower subtrees: shorter chains
])
def test_tree_depth_is_the_dags_longest_chain(n, chunks, want):
    """n = 3: 1 -> 0 (or 2 -> 0), then the broadcast 0 -> 2, 0 -> 1 one after another: 3 flows
    (a formula gave 2⌈log2 3⌉ = 4). n = 5: 3 -> 2 -> 0, then 0 -> 4, 0 -> 2, 2 -> 3: 5."""
    assert Collective("allreduce_tree", tuple(range(n)), 1000, chunks=chunks).depth() == want
    for kind, d in (("allreduce_ring", 2 * (n - 1)), ("allgather", n - 1), ("alltoall", 1)):
        assert Collective(kind, tuple(range(n)), 1000).depth() == d


def test_tree_of_three_ranks_ideal_is_its_chain_and_below_the_run():
    """ranks = 3, one per leaf: both children reduce into rank 0 at once (its NIC shared, 2S/B),
    then rank 0 sends twice: the fluid run takes 3α + 4S/B exactly; no schedule beats the
    3-flow chain 3(α + S/B), which is ideal_cct_s (the formula 2⌈log2 n⌉(S/B + α) = 4(α + S/B)
    was above the run: cct_ratio 0.969)."""
    S, a = MIB, 3e-6
    s = run_collective(cfg(lb="spray"), "allreduce_tree", S, 0, "spread", 3, 3.0).summary
    assert s["steps"] == 3
    assert s["ideal_cct_s"] == pytest.approx(3 * (a + S * 8 / C), rel=1e-12)
    assert s["cct_s"] == pytest.approx(3 * a + 4 * S * 8 / C, rel=1e-9)


@pytest.mark.parametrize("n", [3, 5, 6, 7])
@pytest.mark.parametrize("engine", ["fluid", "packet"])
def test_tree_ideal_below_the_run_for_any_rank_count(n, engine):
    s = run_collective(cfg(engine), "allreduce_tree", 256 * 1024, 0, "spread", n, 3.0).summary
    assert s["cct_s"] >= s["ideal_cct_s"] * (1 - 1e-9) and s["steps"] < 2 * log2_ceil(n)


@pytest.mark.parametrize("kind, want_over_sb", [
    ("alltoall", 2 / 4),   # each rank: 2 chunks of S/4 over its NIC, 1 over NVLink
    ("allreduce_tree", None),
])
def test_groups_inside_and_across_servers_ideal_counts_nvlink_flows_at_nvlink_rate(
        kind, want_over_sb):
    """group=pack on two-GPU servers: ranks 0, 1 and 2, 3 share a server. The closed forms at
    the NIC rate counted the NVLink flows as NIC flows (all-to-all: 3 chunks, tree: 4 S/B), above
    what the fluid engine achieves; ideal_cct_s now meets it exactly."""
    S, nv = 4 * MIB, 3600e9
    s = run_collective(cfg(lb="spray", gpus_per_host=2), kind, S, 0, "pack", 4).summary
    want = S * 8 / C * want_over_sb if want_over_sb else 2 * S * 8 / C + 2 * S * 8 / nv
    assert s["ideal_cct_s"] == pytest.approx(want, rel=1e-12)
    assert s["cct_s"] == pytest.approx(want, rel=1e-9)


def test_ring_ideal_follows_failed_links_like_the_other_patterns():
    """32 ranks on 8 leaves × 4 hosts × 4 spines, one of leaf 0's cables down: ideal spraying
    over the working paths takes 4/3 of the healthy closed form (leaf 0's 4 flows per step on
    3 uplinks), as for alltoall and the permutation; the fluid spray run meets it."""
    S = 8 * MIB
    net = cfg(lb="spray", hosts_per_leaf=4, spines=4)
    healthy = run_collective(net, "allreduce_ring", S, 0, "spread", 32).summary
    failed = run_collective(net.replace(failed_links=["leaf0-spine0"]), "allreduce_ring", S, 0,
                            "spread", 32).summary
    closed = theory.ring_collective_s("allreduce_ring", 32, S, C)
    assert healthy["ideal_cct_s"] == pytest.approx(closed, rel=1e-12)
    assert failed["ideal_cct_s"] == pytest.approx(4 / 3 * closed, rel=1e-12)
    assert failed["cct_ratio"] == pytest.approx(1.0, rel=1e-9)
    assert failed["max_link_load"] == pytest.approx(1.0, rel=1e-9)


def test_collective_summary_has_the_link_figures():
    """max_link_load: the busiest fabric port's offered bytes over rate × ideal_cct_s (1.0: it
    sets the ideal); max_link_carried_ratio: busiest over mean working fabric port;
    initial_rate_frac: null (the flows do not all start at t = 0). With 2 ranks per leaf and 2
    spines each uplink carries one ring flow's bytes (load 1.0); with 1 rank per leaf half."""
    for ranks, load in ((16, 1.0), (8, 0.5)):
        s = run_collective(cfg(lb="spray"), "allreduce_ring", 8 * MIB, 0, "spread",
                           ranks).summary
        assert s["max_link_load"] == pytest.approx(load, rel=1e-9)
        assert s["max_link_carried_ratio"] == pytest.approx(1.0, rel=1e-9)
        assert s["initial_rate_frac"] is None
    leaf = run_collective(cfg(), "allreduce_ring", 8 * MIB, 0, "leaf", 2).summary
    assert leaf["max_link_load"] == 0.0 and leaf["max_link_carried_ratio"] is None


# ------------------------------------------------------------------ dependencies in the records
@pytest.mark.parametrize("engine", ["fluid", "packet"])
@pytest.mark.parametrize("kind", ["allreduce_ring", "allreduce_tree"])
def test_no_flow_starts_before_its_inputs_arrive(engine, kind):
    alpha = 1.0
    r = run_collective(cfg(engine, lb="spray"), kind, 64 * 1024, 0, "spread", 6, alpha, 2)
    t = r.flows.to_pydict()
    assert r.flows.schema.equals(COLLECTIVE_FLOW_SCHEMA, check_metadata=True)
    for i, deps in enumerate(t["deps"]):
        last = max((t["finish_s"][d] for d in deps), default=0.0)
        assert t["ready_s"][i] == pytest.approx(last, abs=1e-15)
        assert t["start_s"][i] >= last + alpha * 1e-6 - 1e-12
        assert t["start_s"][i] == pytest.approx(t["ready_s"][i] + alpha * 1e-6, abs=1e-12)
        assert t["finish_s"][i] > t["start_s"][i]
    assert max(t["finish_s"]) == r.summary["cct_s"]


def test_ecmp_keeps_each_ring_edge_on_one_spine():
    r = run_collective(cfg(lb="ecmp", spines=4), "allreduce_ring", 64 * 1024, 3, "spread", 8)
    t = r.flows.to_pydict()
    spine = {}
    for s, d, sp in zip(t["src"], t["dst"], t["spines"]):
        assert spine.setdefault((s, d), sp) == sp


# ------------------------------------------------------------------ packet engine
@pytest.mark.parametrize("kind", ["allreduce_ring", "allgather", "allreduce_tree"])
def test_packet_near_fluid_on_uncongested_fabric(kind):
    """Each step is one flow per NIC on its own path: the packet engine takes oracle 1 per step
    (headers, store-and-forward, propagation) plus <= 2 % for the ACKs of the flow the rank
    receives, which queue behind its own data on its NIC."""
    n, S = 4, 4 * MIB
    pk = run_collective(cfg("packet", lb="ecmp"), kind, S, 0, "spread", n).summary
    fl = run_collective(cfg("fluid", lb="ecmp"), kind, S, 0, "spread", n).summary
    topo = LeafSpine(cfg("packet"))
    chunk = S if kind == "allreduce_tree" else S // n
    per_step = topo.min_latency_ps(chunk, 0, 2) / 1e12
    oracle = pk["steps"] * per_step
    assert oracle <= pk["cct_s"] <= 1.02 * oracle
    # against fluid: the same plus the per-step latency the fluid engine does not model
    assert pk["cct_s"] == pytest.approx(fl["cct_s"] * (4160 / 4096)
                                        + pk["steps"] * (per_step - chunk * 4160 / 4096 * 8 / C),
                                        rel=0.02)
    assert pk["retransmits"] == 0


# ------------------------------------------------------------------ the library API in SimPy
def _with_permutation(collective: bool, permutation: bool) -> tuple[float, float]:
    fabric = Fabric(cfg(lb="ecmp", spines=1), seed=0)
    env = simpy.Environment()
    fabric.attach(env)
    out = {}
    coll = Collective("allreduce_ring", tuple(range(0, 16, 2)), 8 * MIB)
    if permutation:  # the other NIC of every leaf sends 4 MiB to the next leaf: shared uplinks
        for e in range(1, 16, 2):
            fabric.transfer([e], [(e + 2) % 16], 4 * MIB, lambda t: None, tag="kv")
    if collective:
        run = start_collective(fabric, coll, done=lambda t: out.setdefault("done", t))
        env.run()
        assert run.event.triggered and run.event.value == out["done"] == run.finish
        return run.finish, env.now
    env.run()
    return math.nan, env.now


def test_collective_competes_with_other_traffic():
    alone, _ = _with_permutation(True, False)
    shared, _ = _with_permutation(True, True)
    assert alone == pytest.approx(theory.ring_collective_s("allreduce_ring", 8, 8 * MIB, C))
    assert shared > 1.2 * alone


def test_api_edge_cases():
    env = simpy.Environment()
    fabric = Fabric(NetConfig.from_dict(None), 0)  # kind none: only the step latency counts
    fabric.attach(env)
    got = []
    run = start_collective(fabric, Collective("allreduce_ring", (0, 1, 2), 1000, alpha_s=1e-6),
                           done=got.append)
    one = start_collective(fabric, Collective("alltoall", (7,), 1000), done=got.append)
    assert got == []  # never re-entrant
    env.run()
    assert got == [0.0, pytest.approx(4e-6)] and one.finish == 0.0 and run.finish == got[1]


# ------------------------------------------------------------------ CLI
def test_cli_files_and_determinism(tmp_path):
    args = ["pattern=allreduce_ring", "leaves=4", "hosts_per_leaf=2", "spines=2", "ranks=4",
            "flow_bytes=256KiB", "engine=packet", "lb=spray", "seed=5", "alpha_us=0.5"]
    a = run(parse_args([*args, f"out_dir={tmp_path / 'a'}"]))
    b = run(parse_args([*args, f"out_dir={tmp_path / 'b'}"]))
    for f in ("flows.parquet", "links.parquet"):
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes()
    wall = {"sim_wall_s", "engine_wall_s", "out_dir"}
    assert {k: v for k, v in a.items() if k not in wall} == \
        {k: v for k, v in b.items() if k not in wall}
    assert a["steps"] == 6 and a["flows"] == 24 and a["cct_ratio"] > 1
    flows = pq.read_table(tmp_path / "a" / "flows.parquet")
    assert flows.schema.equals(COLLECTIVE_FLOW_SCHEMA) and flows.num_rows == 24


@pytest.mark.parametrize("args, pattern", [
    (["pattern=allreduce"], r"pattern: unknown value 'allreduce'; valid choices: all_to_all, "
                            r"allgather, allreduce_ring, allreduce_tree, alltoall, permutation, "
                            r"reducescatter, ring_allreduce"),
    (["pattern=alltoall", "group=row"], r"group: unknown value 'row'; valid choices: leaf, "
                                        r"pack, spread, or a list of endpoint ids"),
    (["pattern=alltoall", "group=[0,99]"], r"group: endpoint 99 is not an endpoint id in 0\.\.15"),
    (["pattern=alltoall", "group=[1,1]"], r"group: endpoint 1 listed twice"),
    (["pattern=allgather", "ranks=1"], r"ranks must be an integer in 2\.\.16 \(endpoints\)"),
    (["pattern=allgather", "group=leaf", "ranks=4"], r"ranks must be an integer in 2\.\.2 "
                                                     r"\(hosts_per_leaf\) with group=leaf"),
    (["pattern=allgather", "alpha_us=-1"], r"alpha_us must be a finite number in \[0, 1e\+09\]"),
    (["pattern=allgather", "alpha_us=1e300"], r"alpha_us must be a finite number in \[0, "),
    (["pattern=allreduce_tree", "chunks=0"], r"^chunks must be an integer in 1\.\.4096 "),
    # a DAG of 10^8 pieces took forever to build; more pieces than bytes made 0-byte flows
    (["pattern=allreduce_tree", "chunks=100000000"],
     r"^chunks must be an integer in 1\.\.4096 \(at most 4,096 and at most "
     r"flow_bytes=4,194,304: no empty pieces\), got 100000000$"),
    (["pattern=allreduce_tree", "chunks=100", "flow_bytes=10"],
     r"^chunks must be an integer in 1\.\.10 \(.*\), got 100$"),
    (["pattern=allreduce_tree", "chunks=4", "engine=packet", "flow_bytes=1TiB"],
     r"^flow_bytes / mtu_bytes: the fabric flows of allreduce_tree over 8 ranks are "
     r"[0-9,]+ packets at mtu_bytes=4096; engine=packet takes at most 33,554,432 \(2\^25\) "),
    # a collective key the pattern would not read is refused, not silently dropped
    (["pattern=allreduce_ring", "chunks=4"], r"^chunks applies only to pattern allreduce_tree; "
                                             r"got chunks=4 with pattern=allreduce_ring$"),
    (["pattern=permutation", "alpha_us=50"],
     r"^alpha_us applies only to the collective patterns allreduce_ring, allreduce_tree, "
     r"allgather, reducescatter, alltoall; got alpha_us=50 with pattern=permutation$"),
    (["pattern=all_to_all", "ranks=4"], r"^ranks applies only to the collective patterns "),
    (["pattern=ring_allreduce", "group=leaf"], r"^group applies only to the collective "),
    # a misspelt pattern is named as such, not told that its collective keys do not apply
    (["pattern=allreduce_tre", "chunks=4"],
     r"^pattern: unknown value 'allreduce_tre'; .* did you mean 'allreduce_tree'\?$"),
    (["pattern=alltoall", "group=[0,1,2]", "ranks=3"],
     r"^ranks applies only to group=spread, leaf or pack \(a list of endpoints is the group's "
     r"ranks\); got ranks=3 with group=\[0, 1, 2\]$"),
])
def test_bad_collective_input(args, pattern, tmp_path):
    with pytest.raises(ConfigError, match=pattern):
        run(parse_args(["leaves=8", "hosts_per_leaf=2", "spines=2", *args,
                        f"out_dir={tmp_path}"]))


def test_cli_subprocess_bad_group_one_line(tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
    r = subprocess.run([sys.executable, "-m", "wrpsim.net", "pattern=allreduce_ring",
                        "group=diagonal"], cwd=tmp_path, env=env, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.startswith("wrpsim: error: group: unknown value 'diagonal'; valid choices: "
                               "leaf, pack, spread")
    assert len(r.stderr.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []  # (its default results/net/<date>/<time> not left)


def test_every_kind_runs_on_both_engines(tmp_path):
    for kind in KINDS:
        for engine in ("fluid", "packet"):
            out = run(parse_args([f"pattern={kind}", f"engine={engine}", "leaves=3",
                                  "hosts_per_leaf=2", "spines=2", "ranks=3", "flow_bytes=48KiB",
                                  f"out_dir={tmp_path / kind / engine}"]))
            assert out["cct_s"] >= out["ideal_cct_s"] * (1 - 1e-9) > 0
            summary = json.loads((tmp_path / kind / engine / "summary.json").read_text())
            assert summary["pattern"] == kind and summary["engine"] == engine


def test_event_asked_for_before_the_end_wakes_a_waiting_process():
    fabric = Fabric(cfg(), seed=0)
    env = simpy.Environment()
    fabric.attach(env)
    run = start_collective(fabric, Collective("allreduce_ring", (0, 4, 8), 3 * MIB, 2e-6))
    woke = []

    def waiter():
        t = yield run.event
        woke.append((t, env.now))

    env.process(waiter())
    env.run()
    assert woke == [(run.finish, run.finish)] and run.finish > 0


def test_a_rank_outside_the_fabric_is_a_config_error():
    fabric = Fabric(cfg(), seed=0)
    fabric.attach(simpy.Environment())
    with pytest.raises(ConfigError, match="GPU id 99 outside"):
        start_collective(fabric, Collective("allreduce_ring", (0, 99), MIB))


def _note(got: list, k: int, t: float) -> None:
    got.append((k, t))


@pytest.mark.parametrize("lb", ["ecmp", "ecmp_subflows", "spray", "split"])
def test_send_is_a_one_flow_transfer(lb):
    """`Fabric.send` leaves the same records, connections and completion times as
    `Fabric.transfer` of one flow (zero bytes, one GPU to itself, the GPU link and the fabric)."""
    outs = []
    for one in (False, True):
        fabric = Fabric(cfg(lb=lb, nvlink_gbps=900, gpus_per_host=2), seed=3)
        env = simpy.Environment()
        fabric.attach(env)
        fabric.conn_log = []
        got = []
        calls = [(0, 5, 3 * MIB + 7), (1, 1, MIB), (2, 9, 0), (0, 1, MIB), (4, 13, 2 * MIB),
                 (13, 4, MIB), (0, 5, MIB)]
        for k, (s, d, b) in enumerate(calls):
            fn = partial(_note, got, k)
            if one:
                fabric.send(s, d, b, fn, tag="x", key=("g",))
            else:
                fabric.transfer([s], [d], b, fn, tag="x", key=("g",))
        env.run()
        outs.append((got, [fabric.flow(f) for f in range(fabric.log.nflows)],
                     [(c.src, c.dst, c.nbytes, c.paths, c.qp) for c in fabric.conn_log],
                     fabric.stats(), fabric.flow_conns()))
    assert outs[0] == outs[1]
