"""wrpsim against vLLM serving benchmarks published outside the repository
(docs/validation.md, "An outside check").

Each case (one row of `outside_check.csv`: its source page, the server's GPU, model and TP,
the client's concurrency, requests and lengths, the settings below, and the measured mean
TTFT, mean TPOT and output tokens/s) is a `vllm bench serve` run whose settings its page
states in full: GPUStack's performance lab (github.com/gpustack/gpustack,
`docs/performance-lab/<model>/<gpu>.md`, Apache-2.0; the "baseline (vLLM without any
optimizations)" runs: `vllm serve <model>` with vLLM's defaults, random dataset, every request
sent at once, no `--ignore-eos`) and Tenstorrent's A100 reference runs
(github.com/tenstorrent/tt-inference-server issue #340: one client, fixed lengths). A burst is
replayed as a closed loop with as many clients as requests, with the mean output length the
run reports; the pool takes vLLM's batch defaults for its GPU (8,192 tokens and 1,024
sequences on H100 / H200, 2,048 and 256 on A100) and engine vllm-0.11 (the pages' vLLM 0.10.2
/ 0.11.0; the A100 runs state no version). Prints the measured and simulated mean TTFT, mean
TPOT and output throughput per case and the median absolute and signed errors; about 35 s on
2 cores. Two runs (Qwen3-235B FP8 on 4 x H100) are from GPUStack's tuning steps (16,384
batched tokens), not its baseline, and so is one DeepSeek-V3.2 run (data-parallel attention
over 8 GPUs with expert parallelism, wrpsim's `attn_dp: 8`, `ep: 8`). The Qwen3.5-35B-A3B
runs (one H200, vLLM 0.17.1, BF16) are GPUStack's newer guidellm pages: 1,000 (or 100, 200)
requests sent at 1,000 a second with at most 512 in flight (the concurrency each run reports,
replayed as that many clients) and a fixed output length; their TPOT column is the mean
latency less the mean TTFT over the output tokens after the first (exact for fixed lengths;
the pages' own TPOT and ITL rows count streamed chunks, most of them 0 ms), and they run on
wrpsim's newest calibration (`V24`: vllm-0.24), as a default pool does. Rows with a `rate`
are constant-rate runs (guidellm `--profile constant`): `requests` at that rate, 1 / rate apart,
replayed as one constant-rate stage with `spacing: even`; their throughput is left out where the
server kept up (it is then the offered load, not a measurement of the server). The two
Qwen3-0.6B runs (one H100, vLLM 0.19, `--gpu-memory-utilization 0.5`, `vllm bench serve
--backend vllm` random 512 in / 128 out, 500 requests, the mean of three seeds:
github.com/ovg-project/kvcached `benchmarks/bench_layout/H100_results.md`, its "vanilla" rows)
are a burst and a Poisson load at 16 requests a second (vllm bench's `--request-rate 16`:
`workloads/vllm-bench.yaml`) on vllm-0.19; the burst is the run vllm-0.19 / 0.24's
`frontend_us_serial` was fitted on (`FITTED`: printed, left out of the medians).

    python docs/experiments/outside_check.py [--as-gpu GPU] [WORD ...]

With words, only the cases whose name holds one of them (case-sensitive: the names are lower
case) are run (e.g. `glm rate`). `--as-gpu GPU` replays them on another catalog GPU than their
page's (a what-if: e.g. `--as-gpu h100-pcie-80gb "14b h100" "32b h100"`).
"""

from __future__ import annotations

import csv
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

CASES_CSV = Path(__file__).with_suffix(".csv")
P = "pool.pools.h100."
#: the CSV's `settings` column: names of these override lists, joined by '+'
SETTINGS = {
    # vLLM's batch defaults (EngineArgs.get_batch_defaults)
    "H100": [f"{P}scheduler.token_budget=8192", f"{P}scheduler.max_seqs=1024"],
    "A100": [f"{P}scheduler.token_budget=2048", f"{P}scheduler.max_seqs=256"],
    "FP8": [f"{P}precision=fp8_block"],
    "MXFP4": [f"{P}precision=mxfp4"],
    # GPUStack's tuning step: 16,384 batched tokens
    "FP8_16K": [f"{P}precision=fp8_block", f"{P}scheduler.token_budget=16384",
                f"{P}scheduler.max_seqs=1024"],
    # the runs' own memory settings: `--max-model-len 32768`; servers that started with more
    # KV beside the weights than wrpsim's profiled reserve leaves — a 61 GiB model serving
    # 32k-token prompts on one 80 GB GPU (at 1,024 sequences 4.5 GiB, 18,224 tokens), Qwen3-8B
    # at its 40,960-token context on a 24 GB RTX 4090 (31,872) — so with a smaller reserve
    # (RSV: 0.25 GiB, the KV for at least 40,960 tokens on the 4090)
    "L32K": [f"+{P}max_context=32768"],
    # vLLM `-tp 1 -dp 8 --enable-expert-parallel`: eight data-parallel attention ranks, each
    # with vLLM's batch defaults, and the experts spread over the eight GPUs
    "DP8EP": [f"{P}scheduler.token_budget={8 * 8192}", f"{P}scheduler.max_seqs={8 * 1024}",
              f"+{P}attn_dp=8", f"+{P}ep=8"],
    "RSV": [f"+{P}scheduler.reserve_gib=0.25"],
    # per-tensor FP8 weights and activations (a static FP8 checkpoint), and an FP8 KV cache
    "FP8T": [f"{P}precision=fp8"],
    "KVFP8": [f"{P}kv_dtype=fp8"],
    # `--gpu-memory-utilization 0.85`
    "MEM85": [f"+{P}scheduler.gpu_mem_util=0.85"],
    # vLLM 0.17's `--gpu-memory-utilization` default, for a run replayed under vllm-0.24 (whose
    # default is 0.92, from vllm-project/vllm#38284)
    "MEM90": [f"+{P}scheduler.gpu_mem_util=0.9"],
    # `--enable-expert-parallel` beside `-tp 8`
    "EP8": [f"+{P}ep=8"],
    # pages on a vLLM newer than 0.11 (0.17.1): wrpsim's newest calibration, as a user's
    # default pool takes it
    "V24": [f"{P}engine=vllm-0.24"],
    # runs on vLLM 0.19 (its calibration: vllm-0.24's tables and constants on H100)
    "V19": [f"{P}engine=vllm-0.19"],
    # `--gpu-memory-utilization 0.5`
    "MEM50": [f"+{P}scheduler.gpu_mem_util=0.5"],
    # `vllm bench serve --request-rate R` (no --max-concurrency): Poisson arrivals, the row's
    # `rate`, as vLLM's client sends them (`_load`)
    "POISSON": [],
    # a run a shipped constant was fitted on (vllm-0.19 / 0.24's frontend_us_serial): printed,
    # left out of the medians
    "FITTED": [],
}


def cases() -> list[dict]:
    """The rows of `outside_check.csv`."""
    with CASES_CSV.open(newline="") as f:
        return list(csv.DictReader(f))


def _load(case: dict) -> list[str]:
    """The workload overrides of one case, its lengths included: a closed loop of `clients` (a
    burst: as many as requests), or, where the row gives a `rate`, its `requests` at that
    constant rate (one stage of requests / rate seconds), or at that rate's Poisson arrivals
    (setting POISSON: workloads/vllm-bench.yaml)."""
    if case.get("rate") and "POISSON" in case["settings"].split("+"):
        return ["workload=vllm-bench", f"workload.source.arrivals.rate={case['rate']}",
                f"workload.source.num_requests={case['requests']}",
                f"workload.source.lengths.prompt.value={case['prompt_tokens']}",
                f"workload.source.lengths.output.value={case['output_tokens']}"]
    lengths = [f"workload.source.prompt_tokens={case['prompt_tokens']}",
               f"workload.source.output_tokens={case['output_tokens']}"]
    if case.get("rate"):
        rate = float(case["rate"])
        # (guidellm's constant profile sends them evenly spaced, 1 / rate apart)
        return ["workload=constant-rate", "workload.source.spacing=even",
                f"workload.source.stages=[{{rate:{rate},duration_s:"
                f"{int(case['requests']) / rate}}}]", *lengths]
    return ["workload=closed-loop", f"workload.source.concurrency={case['clients']}",
            f"workload.source.num_requests={case['requests']}", *lengths]


def simulate(case: dict, out: str) -> dict:
    """wrpsim's summary of one case."""
    names = case["settings"].split("+")
    extra = [o for name in names for o in SETTINGS[name]]
    engine = ([] if any(o.startswith(f"{P}engine=") for o in extra)
              else [f"{P}engine=vllm-0.11"])
    run = subprocess.run(
        [sys.executable, "-m", "wrpsim", "json=true", "sim.progress=false",
         f"hydra.run.dir={out}/{case['case'].replace(' ', '_')}", *_load(case),
         f"{P}gpu={case['gpu']}", f"{P}model={case['model']}", f"{P}tp={case['tp']}",
         f"{P}count=1", *engine, *extra],
        capture_output=True, text=True)
    if run.returncode:  # (wrpsim's own one line: a GPU the model does not fit, say)
        raise SystemExit(f"outside_check: case {case['case']!r} on {case['gpu']}: "
                         f"{run.stderr.strip().splitlines()[-1] if run.stderr.strip() else ''}")
    return json.loads(run.stdout.strip().splitlines()[-1])


def main(words: list[str] | None = None, as_gpu: str | None = None) -> None:
    """Print the table and the medians (of the cases named by `words`: all when none), each
    case on its page's GPU or on `as_gpu`."""
    errs: dict[str, list] = {"ttft": [], "tpot": [], "tput": []}
    print("| case | source | TTFT ms measured → wrpsim | TPOT ms measured → wrpsim | "
          "output tok/s measured → wrpsim |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as out:
        for case in cases():
            if words and not any(w in case["case"] for w in words):
                continue
            if as_gpu:
                case = {**case, "gpu": as_gpu}
            s = simulate(case, out)
            fitted = "FITTED" in case["settings"].split("+")
            ttft, tpot = float(case["ttft_ms"]), float(case["tpot_ms"])
            tput = float(case["output_tok_s"]) if case["output_tok_s"] else None
            sim = (s["ttft_mean_s"] * 1e3, s["tpot_mean_s"] * 1e3, s["throughput_tokens_per_s"])
            e = [100 * (sim[0] / ttft - 1), 100 * (sim[1] / tpot - 1)]
            if not fitted:
                errs["ttft"].append(e[0])
                errs["tpot"].append(e[1])
            t = "–"
            if tput:
                e.append(100 * (sim[2] / tput - 1))
                if not fitted:
                    errs["tput"].append(e[2])
                t = f"{tput:,.0f} → {sim[2]:,.0f} ({e[2]:+.0f} %)"
            name = case["case"] + (" (fitted on)" if fitted else "")
            print(f"| {name} | {case['source']} | {ttft:,.1f} → {sim[0]:,.1f} "
                  f"({e[0]:+.0f} %) | {tpot:.2f} → {sim[1]:.2f} ({e[1]:+.0f} %) | {t} |",
                  flush=True)
    for k, v in errs.items():
        if not v:  # (a subset without throughput figures)
            continue
        print(f"{k}: n {len(v)}, median absolute error {statistics.median(map(abs, v)):.1f} %, "
              f"median signed {statistics.median(v):+.1f} %")


def _as_gpu(args: list[str]) -> str | None:
    """The `--as-gpu GPU` (or `--as-gpu=GPU`) of `args`, removed from them; a name the catalog
    lacks stops with one line listing its GPUs."""
    gpu = None
    for i, a in enumerate(args):
        if a.startswith("--as-gpu="):
            gpu = a.split("=", 1)[1]
            del args[i]
            break
        if a == "--as-gpu":
            if i + 1 >= len(args):
                raise SystemExit("outside_check: --as-gpu needs a catalog GPU name")
            gpu = args[i + 1]
            del args[i:i + 2]
            break
    if gpu is not None:
        from wrpsim.pool.catalog import gpus

        if gpu not in gpus():
            raise SystemExit(f"outside_check: --as-gpu: unknown GPU {gpu!r}; the catalog's: "
                             f"{', '.join(sorted(gpus()))}")
        print(f"what-if: every case below on {gpu}, against its page's measurements")
    return gpu


if __name__ == "__main__":
    args = sys.argv[1:]
    gpu = _as_gpu(args)
    main(args, gpu)
