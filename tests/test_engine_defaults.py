"""What a pool takes from its engine where its YAML leaves a setting out: prefix caching and
the batch limits, as the serving engine the engine calibration stands for defaults them
(`Engine.prefix_caching`, `Engine.default_batch`; pools/catalog/engines/README.md)."""

from __future__ import annotations

import pytest


def test_a_pool_that_leaves_the_prefix_cache_out_takes_its_engines_default():
    """vLLM's V1 engine caches prompt prefixes unless told not to, so a vLLM-engine pool that
    leaves `prefix_cache.enabled` out (or null, as the shipped fleets do) caches them; the
    2023 analytical engine does not, nor does a Mamba hybrid (vLLM 0.11 turns it off), a
    decode pool or a constant latency model; an explicit value wins."""
    from wrpsim.pool.engines import get_engine
    from wrpsim.pool.fleet import parse_pool

    def on(**kw):
        d = {"gpu": "h100-80gb", "model": "llama3.1-8b", **kw}
        return parse_pool("p", d).prefix_cache

    assert get_engine("vllm-0.24").prefix_caching and get_engine("vllm-0.11").prefix_caching
    assert not get_engine("splitwise-2023").prefix_caching
    assert on() and on(prefix_cache={"enabled": None}) and on(engine="vllm-0.11")
    assert not on(engine="splitwise-2023")
    assert not on(prefix_cache={"enabled": False})
    assert on(engine="splitwise-2023", prefix_cache={"enabled": True})
    assert not on(model="nemotron-nano-9b-v2")
    assert not on(role="decode") and on(role="prefill")
    assert not on(latency={"kind": "constant", "decode_step_s": 0.02, "prefill_token_s": 1e-4})


def test_the_shipped_fleet_serves_a_prefix_trace_with_the_cache(tmp_path):
    """The default fleet (prefix_cache.enabled null) on a trace with prefix-hash ids serves
    prompt blocks from the cache, as vLLM would; with the cache turned off it serves none and
    its prompts wait longer."""
    import json
    import subprocess
    import sys

    def run(*extra):
        out = subprocess.run(
            [sys.executable, "-m", "wrpsim", "json=true", "sim.progress=false",
             f"hydra.run.dir={tmp_path / str(len(extra))}", "workload=mooncake-conversation",
             "workload.max_requests=600", *extra],
            capture_output=True, text=True, check=True)
        return json.loads(out.stdout.strip().splitlines()[-1])

    on, off = run(), run("pool.pools.h100.prefix_cache.enabled=false")
    assert on["prefix_hit_ratio_tokens"] > 0.01 and off["prefix_hit_ratio_tokens"] == 0.0
    assert on["ttft_mean_s"] < off["ttft_mean_s"]


@pytest.mark.parametrize("gpu, budget, seqs", [
    ("h100-80gb", 8192, 1024), ("h200-141gb", 8192, 1024), ("b200-180gb", 8192, 1024),
    ("rtxpro6000-96gb", 8192, 1024), ("a100-80gb", 2048, 256), ("l40s-48gb", 2048, 256),
])
def test_a_pool_that_leaves_its_batch_out_takes_vllm_serves_defaults(gpu, budget, seqs):
    """`vllm serve` batches 8,192 tokens and 1,024 sequences on a GPU of at least 70 GiB that
    is not an A100, else 2,048 and 256 (EngineArgs.get_batch_defaults): a vLLM-engine pool
    that leaves them out takes those; one it gives stays; the 2023 engine keeps the
    scheduler's own 2,048 / 256; a bad engine value is one line."""
    from wrpsim.pool.fleet import parse_pool

    def sched(**kw):
        return parse_pool("p", {"gpu": gpu, "model": "llama3.1-8b", **kw}).scheduler

    s = sched()
    assert (s.token_budget, s.max_seqs) == (budget, seqs)
    s = sched(scheduler={"max_seqs": 64, "token_budget": None})
    assert (s.token_budget, s.max_seqs) == (budget, 64)
    s = sched(engine="splitwise-2023")
    assert (s.token_budget, s.max_seqs) == (2048, 256)


def test_a_bad_batch_defaults_is_one_line(tmp_path):
    from pathlib import Path

    from wrpsim.errors import ConfigError
    from wrpsim.pool.engines import load_engine

    src = (Path(__file__).parent.parent / "pools/catalog/engines/vllm-0.24.yaml").read_text()
    path = tmp_path / "e.yaml"
    path.write_text(src.replace("batch_defaults: vllm", "batch_defaults: sglang"))
    with pytest.raises(ConfigError, match=r"batch_defaults.*'sglang'.*fixed, vllm"):
        load_engine(path)


def test_defaulted_batch_limits_follow_vllms_rules():
    """vLLM caps a defaulted max_num_seqs at the batched tokens (so a pool that gives only a
    small token budget is not refused for a max_seqs it never wrote), gives each
    data-parallel attention rank its own defaults (the instance schedules all ranks), and a
    constant latency model (an abstract server) keeps the scheduler's own 2,048 / 256."""
    from wrpsim.pool.fleet import parse_pool

    s = parse_pool("p", {"gpu": "h100-80gb", "model": "llama3.1-8b",
                         "scheduler": {"token_budget": 512}}).scheduler
    assert (s.token_budget, s.max_seqs) == (512, 512)
    s = parse_pool("p", {"gpu": "h200-141gb", "model": "deepseek-v3.2", "tp": 8, "ep": 8,
                         "attn_dp": 8, "precision": "fp8_block"}).scheduler
    assert (s.token_budget, s.max_seqs) == (8 * 8192, 8 * 1024)
    s = parse_pool("p", {"gpu": "h100-80gb", "model": "llama3.1-8b", "kv_blocks": 1000,
                         "latency": {"kind": "constant", "decode_step_s": 0.02,
                                     "prefill_token_s": 1e-4}}).scheduler
    assert (s.token_budget, s.max_seqs) == (2048, 256)
