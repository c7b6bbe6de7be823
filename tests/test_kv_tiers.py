"""KV tiers below HBM: demotion on eviction, blocking loads with closed-form time, reuse."""

from __future__ import annotations

import pytest

from tests.conftest import compose_cfg, constant_cfg, make_trace
from wrpsim.pool.tiers import TierStore
from wrpsim.sim import Simulation

KV_8B = 131072  # llama3.1-8b KV bytes per token


def test_tier_store_is_lru_with_capacity():
    t = TierStore("dram", capacity_blocks=5, bytes_per_s_per_gpu=1.0)
    assert t.put(1, 2) == [] and t.put(2, 2) == []
    assert t.put(3, 2) == [(1, 2)]  # oldest out
    assert 1 not in t and t.used == 4 and t.peak == 4
    assert t.take(2) == 2 and t.used == 2 and t.loaded_blocks == 2
    assert t.put(4, 9) == [(4, 9)]  # larger than the whole tier: passes straight through


def _tier_cfg(dram_gib=1.0, remote=None, hbm_cache_blocks=0):
    cfg = constant_cfg(step_s=0.01, max_seqs=1, block_size=16,
                       prefix_cache={"enabled": True, "capacity_blocks": hbm_cache_blocks},
                       kv_tiers={"dram_gib": dram_gib, "pcie_gbps": 20.0})
    if remote:
        cfg["pool"]["remote_kv"] = remote
    return cfg


def _two_turns():
    # turn 2 repeats turn 1's 4 blocks of 64 tokens and adds one more
    trace = make_trace([0.0, 1.0], [256, 320], [2, 2], hash_ids=[[1, 2, 3, 4], [1, 2, 3, 4, 5]])
    trace.attrs["hash_block_tokens"] = 64
    return trace


def test_evicted_prefix_is_loaded_back_from_dram_in_closed_form_time():
    # an HBM cache of 0 blocks demotes everything to DRAM at once
    sim = Simulation(_tier_cfg(dram_gib=1.0), _two_turns())
    req, inst, _ = sim.run()
    r = req.to_pylist()[1]
    assert r["prefix_hit_blocks"] == 4 and r["prefix_hit_tokens"] == 256
    load_s = 256 * KV_8B / 20e9  # 256 tokens of KV over 20 GB/s of PCIe (tp = 1)
    assert r["ttft_s"] == pytest.approx(0.01 + load_s, rel=1e-9)
    assert inst.column("kv_load_blocks")[0].as_py() == 256 // 16
    cache = sim.fleet.instances[0].prefix
    assert cache.dram.loaded_blocks == 16


def test_without_lower_tiers_the_evicted_prefix_is_recomputed():
    req, _, _ = Simulation(_tier_cfg(dram_gib=0.0), _two_turns()).run()
    assert req.to_pylist()[1]["prefix_hit_blocks"] == 0


def test_dram_overflow_demotes_to_the_shared_remote_pool():
    cfg = _tier_cfg(dram_gib=1e-9, remote={"capacity_gib": 1.0, "nic_gbps": 100.0})
    sim = Simulation(cfg, _two_turns())
    req, _, _ = sim.run()
    r = req.to_pylist()[1]
    assert r["prefix_hit_blocks"] == 4
    load_s = 256 * KV_8B / 12.5e9
    assert r["ttft_s"] == pytest.approx(0.01 + load_s, rel=1e-9)
    store = sim.fleet.remote_stores["llama3.1-8b"]
    assert 1 in store  # a remote load copies: the pool keeps its entry


def test_dram_tier_recovers_the_mooncake_traces_reuse(tmp_path):
    from wrpsim.sim import run

    common = ("workload=mooncake-conversation", "router=prefix-aware",
              "pool.pools.h100.prefix_cache.enabled=true", "pool.pools.h100.model=llama3.1-8b",
              "pool.pools.h100.tp=1",
              # 3 instances on the first 4,000 of the trace's 12,031 requests: half the time of
              # 4 instances on all of it, with the same gain (hit ratio +0.23; whole trace +0.23)
              "pool.pools.h100.count=3", "workload.max_requests=4000")
    hbm = run(compose_cfg(*common), tmp_path / "hbm")
    dram = run(compose_cfg(*common, "+pool.pools.h100.kv_tiers.dram_gib=1000"), tmp_path / "d")
    assert dram["prefix_hit_ratio_blocks"] > hbm["prefix_hit_ratio_blocks"] + 0.2
    assert dram["ttft_p50_s"] < hbm["ttft_p50_s"]


@pytest.mark.parametrize("kv_dtype,width", [("fp8", 1), ("bf16", 2)])
def test_dram_and_remote_tier_blocks_follow_the_kv_dtype(kv_dtype, width):
    # engine latency model, 8B at tp 2: a 16-token block is 16 x 2 x 32 layers x 4 KV heads
    # per GPU x 128 x width bytes on each of 2 GPUs
    cfg = _tier_cfg(dram_gib=1.0, remote={"capacity_gib": 2.0, "nic_gbps": 100.0})
    p = cfg["pool"]["pools"]["p"]
    p.update(latency={"kind": "engine"}, kv_dtype=kv_dtype, tp=2, kv_blocks=None)
    sim = Simulation(cfg, _two_turns())
    block = 16 * 2 * 32 * 4 * 128 * width * 2
    cache = sim.fleet.instances[0].prefix
    assert cache.dram.capacity == 2**30 // block
    assert sim.fleet.remote_stores["llama3.1-8b"].capacity == 2 * 2**30 // block
    assert cache.block_bytes_per_gpu == block / 2


def test_a_dram_tier_without_a_prefix_cache_is_said_unused():
    """The host-DRAM tier holds prefix-cache blocks: without a prefix cache it would be
    silently ignored, so parsing the pool warns once, naming the key and the fix. (A pool that
    leaves the cache out takes its engine's default: vLLM's caches.)"""
    import warnings

    from wrpsim.errors import WrpsimWarning
    from wrpsim.pool.fleet import parse_pool

    with pytest.warns(WrpsimWarning, match=r"^pool\.pools\.h100\.kv_tiers\.dram_gib: the "
                      r"host-DRAM tier holds prefix-cache blocks.*prefix_cache\.enabled: true"):
        parse_pool("h100", {"gpu": "h100-80gb", "model": "llama3.1-8b",
                            "kv_tiers": {"dram_gib": 100.0}, "prefix_cache": {"enabled": False}})
    with warnings.catch_warnings():
        warnings.simplefilter("error", WrpsimWarning)
        for pc in ({"enabled": True}, {}, {"enabled": None}):
            parse_pool("h100", {"gpu": "h100-80gb", "model": "llama3.1-8b",
                                "kv_tiers": {"dram_gib": 100.0}, "prefix_cache": pc})



def test_promoting_a_prefix_cannot_lose_its_own_later_entries():
    """Loading a prefix's lower-tier entries allocates HBM blocks, which may evict HBM entries
    down to DRAM, whose overflow drops its oldest entries: once, a later entry of the same
    prefix (still in DRAM) on the way, and with no remote tier behind it the run stopped on
    a lost entry (AttributeError). Every entry is now taken from its tier first."""
    from wrpsim.pool.kvcache import KVLedger
    from wrpsim.pool.prefix import PrefixCache

    ledger = KVLedger(block_size=16, capacity_blocks=3)
    cache = PrefixCache(ledger, 16)
    cache.dram = TierStore("dram", capacity_blocks=3, bytes_per_s_per_gpu=2.0)
    cache.block_bytes_per_gpu = 1.0
    ledger.allocate(3, 0.0)
    cache.insert(9, 3)  # HBM full of one unpinned entry
    cache.dram.put(1, 1)
    cache.dram.put(2, 1)  # the prefix [1, 2] lives in DRAM, 1 the older
    assert cache.match([1, 2]) == 2
    seconds, blocks = cache.promote([1, 2], 1.0)
    assert blocks == 2 and seconds == pytest.approx(2 / 2.0)
    assert 1 in cache and 2 in cache and ledger.used == 2 and 9 in cache.dram
    cache.unpin([2, 1])
    assert ledger.evictable == 2
