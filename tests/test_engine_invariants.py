"""Invariants of the engine on random small scenarios (Hypothesis), and jump == step."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import constant_cfg, make_trace
from wrpsim.sim import Simulation


@st.composite
def scenarios(draw):
    n = draw(st.integers(1, 25))
    gaps = draw(st.lists(st.floats(0, 0.2), min_size=n, max_size=n))
    prompts = draw(st.lists(st.integers(1, 300), min_size=n, max_size=n))
    outputs = draw(st.lists(st.integers(1, 120), min_size=n, max_size=n))
    block = draw(st.sampled_from([1, 4, 16]))
    prefix = draw(st.booleans())
    hbt = block * draw(st.sampled_from([1, 2, 4]))
    # prefix ids drawn from a few shared chains: requests share leading blocks; with
    # `repeats`, some requests repeat an earlier one's prompt (ids and length), often while it
    # still runs: its blocks are shared as soon as they are computed
    chains = [[1000 * c + j for j in range(64)] for c in range(3)]
    repeats = draw(st.booleans())
    ids = []
    for i, p in enumerate(prompts):
        if repeats and i and draw(st.booleans()):
            k = draw(st.integers(0, i - 1))
            prompts[i] = prompts[k]
            ids.append(list(ids[k]))
            continue
        chain = chains[draw(st.integers(0, 2))]
        cut = draw(st.integers(0, -(-p // hbt)))
        tail = [10**6 + len(ids) * 100 + j for j in range(-(-p // hbt) - cut)]
        ids.append(chain[:cut] + tail)
    need = max(p + o for p, o in zip(prompts, outputs))
    kv_blocks = draw(st.integers(-(-need // block), 4 * -(-need // block) + 2))
    max_seqs = draw(st.integers(1, 16))
    budget = draw(st.integers(max_seqs, 512))
    cfg = constant_cfg(
        # step times with no short rational relation to the arrival gaps: an arrival exactly on
        # an iteration boundary is a float tie that stepping and jumping may break differently
        step_s=draw(st.sampled_from([0.0101327, 0.0130711])), count=draw(st.integers(1, 3)),
        kv_blocks=kv_blocks, policy=draw(st.sampled_from(["sarathi", "vllm", "orca"])),
        max_seqs=max_seqs, token_budget=budget, block_size=block,
        prefill_s_per_token=draw(st.sampled_from([0.0, 1.03e-4])),
        router=draw(st.sampled_from(["RoundRobin", "LeastOutstanding", "PowerOfD", "LeastKV"])),
        prefix_cache={"enabled": prefix,
                      "capacity_blocks": draw(st.sampled_from([None, 0, 3, 50]))},
        kv_tiers={"dram_gib": draw(st.sampled_from([0.0, 1e-4, 1.0])), "pcie_gbps": 25.0},
    )
    if draw(st.booleans()):
        cfg["pool"]["remote_kv"] = {"capacity_gib": draw(st.sampled_from([1e-4, 1.0]))}
    if draw(st.booleans()):  # disaggregated: the same pool split into prefill and decode roles
        p = cfg["pool"]["pools"].pop("p")
        # a prefill time unrelated to the decode step: otherwise KV arrivals (sums of prefill
        # times) land exactly on decode-step boundaries, a float tie that stepping and jumping
        # may break differently
        p["latency"] = {**p["latency"], "prefill_s_fixed": 0.0071313}
        mode = draw(st.sampled_from(["layerwise", "serialized"]))
        cfg["pool"]["pools"]["pre"] = {**p, "role": "prefill", "kv_transfer": {"mode": mode}}
        cfg["pool"]["pools"]["dec"] = {**p, "role": "decode", "count": draw(st.integers(1, 2))}
        cfg["network"] = {"kind": "nic", "nic_gbps": draw(st.sampled_from([0.1, 1.0, 50.0]))}
    trace = make_trace(np.cumsum(gaps), prompts, outputs, hash_ids=ids)
    trace.attrs["hash_block_tokens"] = hbt
    return cfg, trace


def watch_prefix_pins(sim) -> list:
    """Check after every event that each instance's ledger stays within [0, capacity], that
    its evictable blocks are exactly its unpinned cache entries', and that every pin of its
    prefix cache belongs to a sequence there (running, or done and handing its KV off) whose
    `shared` tokens are its pinned entries (a prompt's blocks shared as soon as computed move
    from the sequence to the cache: none lost, none counted twice). Returns [events checked]."""
    seen = [0]
    env = sim.env
    step = env.step

    def stepped():
        step()
        seen[0] += 1
        for inst in sim.fleet.instances:
            kv, cache = inst.kv, inst.prefix
            assert 0 <= kv.evictable <= kv.used <= kv.capacity, inst.name
            if cache is None:
                continue
            assert kv.evictable == sum(cache._blocks[h] for h in cache._lru), inst.name
            seqs = [*inst.running.values(), *inst.outgoing.values()]
            pins = Counter(h for seq in seqs for h in seq.pinned)
            assert pins == Counter(cache._pins), inst.name
            for seq in seqs:
                assert seq.shared == len(seq.pinned) * cache.block_tokens, seq.req.id
                assert tuple(seq.pinned) == tuple(seq.req.hash_ids[:len(seq.pinned)])
                assert seq.blocks >= 0

    env.step = stepped
    return seen


def run(cfg, trace, step_mode=False, watch=False):
    sim = Simulation(cfg, trace)
    if step_mode:
        for inst in sim.fleet.instances:
            inst.max_run_steps = 1
    seen = watch_prefix_pins(sim) if watch else None
    req, inst, end = sim.run()
    assert seen is None or seen[0] > 0
    return sim, req.to_pylist(), inst.to_pylist(), end


@settings(max_examples=120, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_invariants(sc):
    cfg, trace = sc
    sim, rows, insts, end = run(cfg, trace, watch=True)
    assert len(rows) == len(trace)
    for r in rows:
        assert r["status"] == "completed"  # capacity fits every request: all complete
        assert r["arrival_s"] <= r["arrival_s"] + r["queue_wait_s"] <= r["first_token_s"]
        assert r["first_token_s"] <= r["finish_s"] <= end
        assert r["ttft_s"] > 0
    for inst, row in zip(sim.fleet.instances, insts):
        cached = inst.prefix.size_blocks if inst.prefix else 0
        assert inst.kv.used == cached  # every block returned or held by the cache
        assert inst.kv.evictable == cached  # no pins left
        assert inst.prefix is None or inst.prefix.capacity is None or (
            cached <= inst.prefix.capacity)
        if inst.prefix is not None and inst.prefix.dram is not None:
            dram = inst.prefix.dram
            assert dram.used <= dram.capacity
            assert not any(h in dram for h in inst.prefix._blocks)  # one tier per instance
        assert row["kv_peak_blocks"] <= row["kv_capacity_blocks"]
        # a decode iteration is an iteration, and decodes at least one sequence
        assert row["decode_iterations"] <= row["iterations"]
        assert row["decode_iterations"] <= row["decode_tokens"] <= (
            row["decode_iterations"] * inst.sched.max_seqs)
        assert 0.0 <= row["utilization"] <= 1.0 + 1e-12
        assert row["energy_j"] >= inst.latency.idle_power_w() * inst.tp * end - 1e-9
    served = sum(o for o in trace["output_tokens"])
    decoded = sum(r["decode_tokens"] for r in insts)
    first_tokens = len(rows)
    handed = sum(r["requests_handed_off"] for r in insts)
    assert handed == (0 if "p" in cfg["pool"]["pools"] else sum(o > 1 for o in trace.output_tokens))
    preempt = sum(r["preemptions"] for r in insts)
    # every output token comes from a decode step or a prefill that completes (a handed-off
    # request's every token from its decode instance: the token its prefill instance sampled
    # is not the user's, `HandoffMixin.receive`); a recompute prefill after a preemption in
    # decode yields one token too
    from_prefill = first_tokens - handed
    assert served - from_prefill - preempt <= decoded <= served - from_prefill
    saved = sum(r["prefix_hit_tokens"] for r in rows)
    # a prompt recomputed after a preemption may find its own first blocks in the prefix cache
    # (cached when it was preempted); prefix_hit_tokens counts the first admission only
    cache = any(p["prefix_cache"]["enabled"] for p in cfg["pool"]["pools"].values())
    if not (preempt and cache):
        assert sum(r["prefill_tokens"] for r in insts) >= int(trace["prompt_tokens"].sum()) - saved
    for r in rows:
        assert 0 <= r["prefix_hit_tokens"] < r["prompt_tokens"]
        assert r["prefix_hit_blocks"] <= r["prefix_blocks"]
        assert 0.0 <= r["qoe"] <= 1.0
        assert r["gpu_s"] > 0 and r["energy_j"] > 0 and r["attempts"] == 1
    # the busy time of every instance is attributed to requests, nothing more or less
    busy = sum(i["busy_s"] * i["tp"] for i in insts)
    assert math.isclose(sum(r["gpu_s"] for r in rows), busy, rel_tol=1e-9)
    cost = sum(i["busy_s"] * i["tp"] * i["price_per_gpu_hour_usd"] for i in insts) / 3600
    assert math.isclose(sum(r["cost_usd"] for r in rows), cost, rel_tol=1e-9)


@settings(max_examples=60, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_decode_runs_equal_stepping_every_iteration(sc):
    cfg, trace = sc
    _, jump, _, end_j = run(cfg, trace)
    _, step, _, end_s = run(cfg, trace, step_mode=True)
    assert math.isclose(end_j, end_s, rel_tol=1e-9, abs_tol=1e-9)
    for a, b in zip(jump, step):
        assert a["pool"] == b["pool"] and a["instance"] == b["instance"]
        assert a["preemptions"] == b["preemptions"]
        for k in ("first_token_s", "finish_s", "queue_wait_s", "gpu_s", "qoe"):
            assert math.isclose(a[k], b[k], rel_tol=1e-9, abs_tol=1e-9), k


def test_little_law_per_instance():
    rng = np.random.default_rng(1)
    n = 3000
    trace = make_trace(np.cumsum(rng.exponential(0.05, n)), rng.integers(10, 400, n),
                       rng.integers(1, 60, n))
    cfg = constant_cfg(step_s=0.004, count=3, prefill_s_per_token=2e-5, max_seqs=8,
                       router="LeastOutstanding")
    _, rows, insts, end = run(cfg, trace)
    for row in insts:
        mine = [r for r in rows if r["instance"] == row["instance"]]
        lam = len(mine) / end
        w = np.mean([r["e2e_s"] for r in mine])
        assert row["mean_requests_in_system"] == pytest.approx(lam * w, rel=1e-9)


def test_vllm_019_is_vllm_024_but_for_the_kernels_it_measured():
    """`vllm-0.19` copies vllm-0.24's fitted constants and GPU entries (nothing was fitted on
    0.19); only the GPUs whose 0.19 kernels ship differ: a refit of vllm-0.24 that leaves its
    copy behind fails here."""
    from dataclasses import asdict

    from wrpsim.pool.engines import get_engine

    old, new = get_engine("vllm-0.24"), get_engine("vllm-0.19")
    assert asdict(new.constants) == asdict(old.constants)
    differ = {g for g in set(old.gpus) | set(new.gpus) if old.gpus.get(g) != new.gpus.get(g)}
    assert differ == {"rtxpro6000-96gb"}
    assert new.gpus["rtxpro6000-96gb"] == {"tables": "vllm-0.19/rtxpro6000-96gb"}
    assert new.default_roofline == old.default_roofline
