"""wrpsim against a measured multi-turn benchmark with and without a CPU KV tier
(docs/validation.md, "Multi-turn conversations and a CPU KV tier").

GPUStack's performance lab (github.com/gpustack/gpustack,
`docs/performance-lab/references/evaluating-lmcache-prefill-acceleration-in-vllm.md`,
Apache-2.0) ran vLLM 0.10.1.1 serving Qwen3-8B on one RTX 4090 24GB (`vllm serve
Qwen/Qwen3-8B`, prefix caching on by default) under vLLM's multi-turn benchmark
(`benchmarks/multi_turn/benchmark_serving_multi_turn.py --num-clients 10
--max-active-conversations 10`), 24 conversations of 12-18 messages (6-9 requests), a 500-token
prefix common to all, a per-conversation prefix drawn lognormal with average 4,000 tokens
(vLLM's `LognormalDistribution`: median 0.85 of the average, so sigma = sqrt(2 ln(1 / 0.85)) =
0.570; at most 20,000), 120-160 new user tokens a turn and 80-120 output tokens; then the
same with LMCache holding evicted KV in 50 GB of host memory (`max_local_cpu_size: 50`,
`--kv-transfer-config` LMCacheConnectorV1). Measured: mean TTFT 4,350 / 2,646 ms and mean TPOT
48.47 / 30.60 ms without / with LMCache ("5K input tokens" table).

Replayed here as `kind: sessions` with `clients: 10` (conversation i to client i mod 10, each
client's next conversation when its last turn is answered; vLLM's clients take the next from
a shared queue instead). Turn 1 is the common prefix plus the conversation's (vLLM's
generator spends turn 1's 120-160-token budget on the common prefix and adds ~20 tokens of
fixed text: `first_prompt` mean 4,020, at most 20,020); 12-18 messages, rounded up to an even
count, are 6-9 requests (vLLM: 6 with weight 1/7, 7, 8 and 9 with 2/7 each, mean 7.71; here
uniform, mean 7.5). vLLM's benchmark stops, by default, when the first client finds no
conversation left (`--no-early-stop` not given on the page): the figures are over the turns
sent before the first client ends its last conversation. The pool: `vllm-0.11` (the page's
0.10.1.1 is older; both run vLLM's V1 engine), `vllm serve`'s batch defaults for a 24 GB GPU
(2,048 tokens, 256 sequences: the engine's default) and `reserve_gib: 0.25`: the server
started with Qwen3-8B's default 40,960-token context, which vLLM allows only when the KV cache
holds that many tokens (41,216 at 0.25 GiB; 31,872 with the reserve vLLM's start-up profile
keeps at these settings, wrpsim's default, 1.5 GiB: the server ran other memory settings, not
stated on the page); with LMCache,
`kv_tiers.dram_gib: 50` (`max_local_cpu_size: 50`, GiB to LMCache) at PCIe 4.0's 25 GB/s.
Prints measured and simulated mean TTFT and TPOT per configuration; a few seconds on 2 cores.

    python docs/experiments/multiturn_check.py
"""

from __future__ import annotations

import subprocess
import sys
import tempfile

P = "pool.pools.h100."
WORKLOAD = [
    "workload=chat-sessions", "workload.source.num_sessions=24", "+workload.source.clients=10",
    "workload.source.dependent=true", "workload.source.think_time_s=0",
    # (a distribution of another kind replaces the file's: `~` drops it, `+` adds the new one)
    "~workload.source.turns", "+workload.source.turns={dist: uniform, low: 6, high: 9}",
    "workload.source.system={tokens: 500, prefixes: 1}",
    # the conversation prefix (lognormal, average 4,000, median 0.85 of it, at most 20,000)
    # and turn 1's ~20 tokens of fixed text; the common 500 are the system prompt above
    "workload.source.first_prompt={dist: lognormal, mean: 4020, sigma: 0.570, max: 20020}",
    "~workload.source.new_tokens",
    "+workload.source.new_tokens={dist: uniform, low: 120, high: 160}",
    "~workload.source.output", "+workload.source.output={dist: uniform, low: 80, high: 120}",
    "workload.source.max_context=40960",
]
POOL = [f"{P}gpu=rtx4090-24gb", f"{P}model=qwen3-8b", f"{P}tp=1", f"{P}count=1",
        f"{P}engine=vllm-0.11", f"~{P}scheduler.token_budget", f"~{P}scheduler.max_seqs",
        f"+{P}scheduler.reserve_gib=0.25"]
#: (name, extra overrides, measured mean TTFT ms, mean TPOT ms)
CASES = [
    ("vLLM (prefix caching)", [], 4350.48, 48.47),
    ("vLLM + LMCache, 50 GiB of host memory", [f"+{P}kv_tiers.dram_gib=50",
                                               f"+{P}kv_tiers.pcie_gbps=25"], 2646.09, 30.60),
]


def simulate(extra: list[str], out: str) -> dict:
    """wrpsim's figures of one configuration over the turns sent before the first client
    ends its last conversation (vLLM's early stop): mean TTFT and TPOT (s), turns, their
    rate (per s), and the share of their prompt blocks served from the caches."""
    import pyarrow.parquet as pq

    subprocess.run(
        [sys.executable, "-m", "wrpsim", "json=true", "sim.progress=false",
         f"hydra.run.dir={out}", *WORKLOAD, *POOL, *extra],
        capture_output=True, text=True, check=True)
    r = pq.read_table(f"{out}/requests.parquet").to_pandas()
    stop = r.groupby("session_id").finish_s.max().min()
    r = r[r.arrival_s < stop]
    return {"ttft_s": r.ttft_s.mean(), "tpot_s": r.tpot_s.mean(), "turns": len(r),
            "rate": len(r) / stop,
            "hits": r.prefix_hit_blocks.sum() / max(1, r.prefix_blocks.sum())}


def main() -> None:
    print("| configuration | TTFT ms measured → wrpsim | TPOT ms measured → wrpsim | "
          "turns a second (wrpsim) | prompt blocks from the caches (wrpsim) |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for i, (name, extra, ttft, tpot) in enumerate(CASES):
            s = simulate(extra, f"{tmp}/{i}")
            t, p = s["ttft_s"] * 1e3, s["tpot_s"] * 1e3
            print(f"| {name} | {ttft:,.0f} → {t:,.0f} ({100 * (t / ttft - 1):+.0f} %) | "
                  f"{tpot:.1f} → {p:.1f} ({100 * (p / tpot - 1):+.0f} %) | {s['rate']:.2f} | "
                  f"{100 * s['hits']:.0f} % |", flush=True)


if __name__ == "__main__":
    main()
