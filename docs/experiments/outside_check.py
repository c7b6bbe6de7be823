"""wrpsim against vLLM serving benchmarks published outside the repository
(docs/validation.md, "An outside check").

Each case is a `vllm bench serve` run whose settings its page states in full: GPUStack's
performance lab (github.com/gpustack/gpustack, `docs/performance-lab/<model>/<gpu>.md`,
Apache-2.0; the "baseline (vLLM without any optimizations)" runs: `vllm serve <model>` with
vLLM's defaults, random dataset, every request sent at once, no `--ignore-eos`) and
Tenstorrent's A100 reference runs (github.com/tenstorrent/tt-inference-server issue #340: one
client, fixed lengths). A burst is replayed as a closed loop with as many clients as requests,
with the mean output length the run reports; the pool takes vLLM's batch defaults for its GPU
(8,192 tokens and 1,024 sequences on H100 / H200, 2,048 and 256 on A100) and engine vllm-0.11
(the pages' vLLM 0.10.2 / 0.11.0; the A100 runs state no version). Prints the measured and
simulated mean TTFT, mean TPOT and output throughput per case and the median absolute and
signed errors; about 2 minutes on 2 cores.

    python docs/experiments/outside_check.py
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile

H100 = ["pool.pools.h100.scheduler.token_budget=8192", "pool.pools.h100.scheduler.max_seqs=1024"]
A100 = ["pool.pools.h100.scheduler.token_budget=2048", "pool.pools.h100.scheduler.max_seqs=256"]
FP8, MXFP4 = ["pool.pools.h100.precision=fp8_block"], ["pool.pools.h100.precision=mxfp4"]
FP8_16K = [*FP8, "pool.pools.h100.scheduler.token_budget=16384",
           "pool.pools.h100.scheduler.max_seqs=1024"]
GS = "gpustack docs/performance-lab/"
#: name: (source, gpu, model, tp, requests (= clients), prompt, output tokens, overrides,
#: measured mean TTFT ms, mean TPOT ms, output tokens/s or None)
CASES = {
    "qwen3-14b h100 32k": (GS + "qwen3-14b/h100.md", "h100-80gb", "qwen3-14b", 1, 100, 32000,
                           99, H100, 191024.43, 277.44, 25.48),
    "qwen3-14b h100 4k": (GS + "qwen3-14b/h100.md", "h100-80gb", "qwen3-14b", 1, 500, 3996,
                          200, H100, 112716.92, 132.45, 438.56),
    "qwen3-14b h100 2k": (GS + "qwen3-14b/h100.md", "h100-80gb", "qwen3-14b", 1, 500, 1996,
                          100, H100, 50716.13, 206.51, 505.51),
    "gpt-oss-120b h100 32k": (GS + "gpt-oss-120b/h100.md", "h100-80gb", "gpt-oss-120b", 1, 100,
                              32000, 100, H100 + MXFP4, 99444.04, 23.99, 49.65),
    "gpt-oss-120b h100 2k": (GS + "gpt-oss-120b/h100.md", "h100-80gb", "gpt-oss-120b", 1, 500,
                             1998, 98, H100 + MXFP4, 36234.76, 41.35, 675.11),
    "gpt-oss-20b h100 32k": (GS + "gpt-oss-20b/h100.md", "h100-80gb", "gpt-oss-20b", 1, 100,
                             32000, 94, H100 + MXFP4, 53687.69, 239.44, 86.62),
    "gpt-oss-20b h100 2k": (GS + "gpt-oss-20b/h100.md", "h100-80gb", "gpt-oss-20b", 1, 500,
                            1998, 94, H100 + MXFP4, 16515.86, 149.76, 1443.44),
    "qwen3-235b 8xh100 2k": (GS + "qwen3-235b-a22b/h100.md", "h100-80gb", "qwen3-235b-a22b", 8,
                             500, 1996, 99, H100, 21313.79, 101.08, 1127.26),
    "qwen3-235b 8xh100 4k": (GS + "qwen3-235b-a22b/h100.md", "h100-80gb", "qwen3-235b-a22b", 8,
                             500, 3996, 184, H100, 47811.58, 68.94, 931.21),
    "qwen3-235b 8xh100 32k": (GS + "qwen3-235b-a22b/h100.md", "h100-80gb", "qwen3-235b-a22b",
                              8, 100, 32000, 82, H100, 70409.55, 132.10, 57.85),
    "qwen3-235b-fp8 4xh100 2k": (GS + "qwen3-235b-a22b/h100.md", "h100-80gb", "qwen3-235b-a22b",
                                 4, 500, 1996, 99,
                                 FP8_16K,
                                 26860.95, 125.93, 894.84),
    "qwen3-235b-fp8 4xh100 4k": (GS + "qwen3-235b-a22b/h100.md", "h100-80gb", "qwen3-235b-a22b",
                                 4, 500, 3996, 182,
                                 FP8_16K,
                                 60513.14, 89.52, 717.60),
    "deepseek-r1 8xh200 32k": (GS + "deepseek-r1/h200.md", "h200-141gb", "deepseek-r1", 8, 100,
                               32000, 100, H100 + FP8, 101351.99, 365.79, 48.33),
    "deepseek-r1 8xh200 4k": (GS + "deepseek-r1/h200.md", "h200-141gb", "deepseek-r1", 8, 500,
                              3995, 200, H100 + FP8, 63058.71, 164.23, 753.67),
    "deepseek-r1 8xh200 2k": (GS + "deepseek-r1/h200.md", "h200-141gb", "deepseek-r1", 8, 500,
                              1997, 100, H100 + FP8, 28911.90, 237.02, 843.71),
    "qwen3-14b a100 32k": (GS + "qwen3-14b/a100.md", "a100-80gb", "qwen3-14b", 1, 100, 32000,
                           99, A100, 359648.08, 445.58, 13.65),
    "qwen3-14b a100 4k": (GS + "qwen3-14b/a100.md", "a100-80gb", "qwen3-14b", 1, 500, 3996, 200,
                          A100, 197625.03, 254.61, 245.13),
    "qwen3-14b a100 2k": (GS + "qwen3-14b/a100.md", "a100-80gb", "qwen3-14b", 1, 500, 1996, 100,
                          A100, 86908.30, 301.73, 284.64),
    "qwen3-30b-a3b a100 c1 128": ("tt-inference-server#340", "a100-80gb", "qwen3-30b-a3b", 1, 1,
                                  128, 128, A100, 35.7, 9.6, None),
    "qwen3-30b-a3b a100 c1 1k": ("tt-inference-server#340", "a100-80gb", "qwen3-30b-a3b", 1, 1,
                                 1024, 128, A100, 70.3, 9.8, None),
    "qwen3-30b-a3b a100 c1 2k": ("tt-inference-server#340", "a100-80gb", "qwen3-30b-a3b", 1, 1,
                                 2048, 128, A100, 81.0, 9.9, None),
}
#: Tenstorrent's runs: 8, 4, 4 requests one after another
REQUESTS = {"qwen3-30b-a3b a100 c1 128": 8}


def simulate(name: str, case: tuple, out: str) -> dict:
    _, gpu, model, tp, n, isl, osl, extra = case[:8]
    clients = 1 if "c1" in name else n
    n = REQUESTS.get(name, 4 if "c1" in name else n)
    run = subprocess.run(
        [sys.executable, "-m", "wrpsim", "json=true", "sim.progress=false",
         f"hydra.run.dir={out}/{name.replace(' ', '_')}", "workload=closed-loop",
         f"workload.source.concurrency={clients}", f"workload.source.num_requests={n}",
         f"workload.source.prompt_tokens={isl}", f"workload.source.output_tokens={osl}",
         f"pool.pools.h100.gpu={gpu}", f"pool.pools.h100.model={model}",
         f"pool.pools.h100.tp={tp}", "pool.pools.h100.count=1",
         "pool.pools.h100.engine=vllm-0.11", *extra],
        capture_output=True, text=True, check=True)
    return json.loads(run.stdout.strip().splitlines()[-1])


def main() -> None:
    errs: dict[str, list] = {"ttft": [], "tpot": [], "tput": []}
    print("| case | source | TTFT ms measured → wrpsim | TPOT ms measured → wrpsim | "
          "output tok/s measured → wrpsim |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as out:
        for name, case in CASES.items():
            s = simulate(name, case, out)
            ttft, tpot, tput = case[8:]
            sim = (s["ttft_mean_s"] * 1e3, s["tpot_mean_s"] * 1e3, s["throughput_tokens_per_s"])
            e = [100 * (sim[0] / ttft - 1), 100 * (sim[1] / tpot - 1)]
            errs["ttft"].append(e[0])
            errs["tpot"].append(e[1])
            t = "–"
            if tput:
                e.append(100 * (sim[2] / tput - 1))
                errs["tput"].append(e[2])
                t = f"{tput:,.0f} → {sim[2]:,.0f} ({e[2]:+.0f} %)"
            print(f"| {name} | {case[0]} | {ttft:,.1f} → {sim[0]:,.1f} ({e[0]:+.0f} %) | "
                  f"{tpot:.2f} → {sim[1]:.2f} ({e[1]:+.0f} %) | {t} |", flush=True)
    for k, v in errs.items():
        print(f"{k}: n {len(v)}, median absolute error {statistics.median(map(abs, v)):.1f} %, "
              f"median signed {statistics.median(v):+.1f} %")


if __name__ == "__main__":
    main()
