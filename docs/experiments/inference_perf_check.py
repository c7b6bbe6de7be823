"""wrpsim against constant-rate vLLM serving runs it was never fitted on: the inference-perf runs
of the BLIS latency model's training set (docs/validation.md, "Constant-rate runs on H100").

The data is github.com/inference-sim/training (`default_args/`, commit ed5c1d2; it states no
licence, so wrpsim reads it from a copy you make and ships none of it):

    git clone https://github.com/inference-sim/training /tmp/istrain
    python docs/experiments/inference_perf_check.py /tmp/istrain [WORD ...]

Each experiment folder holds one vLLM server (`exp-config.yaml`: model, TP, max_model_len,
max_num_batched_tokens, max_num_seqs) loaded by inference-perf (`results/config.yaml`, the
resolved config that ran: constant-rate stages — requests exactly 1/rate apart — of
`shared_prefix` requests, `num_groups` system prompts of `system_prompt_len` tokens each with
`num_prompts_per_group` questions, every prompt generated once and sent over and over, and
`output_len` tokens out with `ignore_eos`; `profile.yaml`'s `num_unique_system_prompts`,
`num_users_per_system_prompt` and multi-turn keys did not reach the version that ran) and
its measured figures per stage (`results/stage_<i>_lifecycle_metrics.json`). The runs'
authors (inference-sim's sim-to-real-accuracy-validation,
docs/plans/2026-03-04-sim-to-real-accuracy-validation-design.md) state: vLLM v0.15.1 on H100,
FP16, prefix caching and chunked prefill on, 8 GiB of CPU KV offloading. Replayed here on
engine vllm-0.19 (the V1 engine with async scheduling, on by default in vLLM since late 2025,
vllm-project/vllm#27614) with the all-reduce + RMSNorm fusion off (on by default from 0.16)
and MoE layers as Triton's fused MoE (vLLM's BF16 experts on Hopper), one stage at a time, as
a constant-rate stage of the stage's duration with its measured mean prompt length (as the
server tokenized it: the random prompt tokens decoded to text and encoded again) and the
configured output length; the prompts' reuse as `prefix_ids: synthetic` with every request
sharing all its full blocks with one of `num_groups x num_prompts_per_group` prompts, drawn
uniformly (inference-perf cycles through them).

Compared per stage: mean TTFT, mean end-to-end latency and the decode time per output token,
(mean latency - mean TTFT) / (output_len - 1); the medians of the 90th-percentile TTFT's and
latency's errors are printed after the table. inference-perf's own TPOT and ITL count
streamed chunks (their medians are tens of microseconds: about half the chunks arrive
together), and its output length re-tokenizes the text (Llama-2-7B: 194-210 of 248 tokens),
so neither is the engine's per-token time. Three runs the authors left out as overloaded (the
client saw thousands of failed requests: the successes alone are a censored sample) are
listed and not compared; CodeLlama-34B's reasoning run, 4 failures in 4,800, is compared.

`WRPSIM_EXTRA` (environment): more wrpsim overrides for every stage, space-separated (e.g.
`+pool.pools.h100.latency.frontend_us=5000` to try another front end). About 25 s on 2 cores.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

P = "pool.pools.h100."
#: Hugging Face ids of the runs -> wrpsim catalog names
MODELS = {"meta-llama/Llama-2-7b-hf": "llama2-7b", "meta-llama/Llama-2-70b-hf": "llama2-70b",
          "mistralai/Mixtral-8x7B-v0.1": "mixtral-8x7b",
          "codellama/CodeLlama-34b-Instruct-hf": "codellama-34b"}
#: vLLM 0.15.1 as the runs' server ran it (see the module docstring)
ENGINE = [f"{P}engine=vllm-0.19", f"+{P}latency.allreduce_fusion=false",
          f"+{P}latency.moe_triton=true"]
#: share of requests that failed above which a stage is not compared (censored successes)
MAX_FAILED = 0.01


def experiments(data: Path) -> list[dict]:
    """One dict per stage of every experiment folder under `data/default_args`."""
    root = data / "default_args"
    if not root.is_dir():
        raise SystemExit(f"inference_perf_check: {root} is not a folder (clone "
                         f"github.com/inference-sim/training and give its path)")
    out = []
    for d in sorted(root.iterdir()):
        cfg = yaml.safe_load((d / "exp-config.yaml").read_text())
        run = yaml.safe_load((d / "results" / "config.yaml").read_text())
        sp = run["data"]["shared_prefix"]
        if run["load"]["type"] != "constant":
            raise SystemExit(f"inference_perf_check: {d / 'results' / 'config.yaml'}: "
                             f"load.type {run['load']['type']!r}, expected 'constant'")
        for i, st in enumerate(run["load"]["stages"]):
            m = json.loads((d / "results" / f"stage_{i}_lifecycle_metrics.json").read_text())
            ok, lat = m["successes"], m["successes"]["latency"]
            failed = (m.get("failures") or {}).get("count", 0)
            out.append({
                "case": f"{d.name.split('-', 2)[2]} @{st['rate']:g}/s",
                "model": MODELS[cfg["model"]], "tp": cfg["tensor_parallelism"],
                "max_model_len": cfg["max_model_len"],
                "token_budget": cfg["max_num_batched_tokens"], "max_seqs": cfg["max_num_seqs"],
                "rate": st["rate"], "duration": st["duration"],
                "prompt": round(ok["prompt_len"]["mean"]), "output": sp["output_len"],
                "prompts": sp["num_groups"] * sp["num_prompts_per_group"],
                "failed": failed / (failed + ok["count"]),
                "ttft": lat["time_to_first_token"]["mean"],
                "e2e": lat["request_latency"]["mean"],
                "ttft_p90": lat["time_to_first_token"]["p90"],
                "e2e_p90": lat["request_latency"]["p90"]})
    return out


def simulate(c: dict, out: str) -> dict:
    """wrpsim's summary of one stage."""
    run = subprocess.run(
        [sys.executable, "-m", "wrpsim", "json=true", "sim.progress=false",
         f"hydra.run.dir={out}/{c['case'].replace(' ', '_').replace('/', '')}",
         "workload=constant-rate",
         f"workload.source.stages=[{{rate:{c['rate']},duration_s:{c['duration']}}}]",
         f"workload.source.prompt_tokens={c['prompt']}",
         f"workload.source.output_tokens={c['output']}",
         "workload.prefix_ids=synthetic",
         f"workload.prefix_reuse={{share:1.0,tokens:{c['prompt']},"
         f"prefixes:{c['prompts']},zipf_s:0.0}}",
         f"{P}gpu=h100-80gb", f"{P}model={c['model']}", f"{P}tp={c['tp']}", f"{P}count=1",
         f"{P}scheduler.token_budget={c['token_budget']}",
         f"{P}scheduler.max_seqs={c['max_seqs']}", f"+{P}max_context={c['max_model_len']}",
         *ENGINE, *os.environ.get("WRPSIM_EXTRA", "").split()], capture_output=True, text=True)
    if run.returncode:
        raise SystemExit(f"inference_perf_check: {c['case']}: "
                         f"{run.stderr.strip().splitlines()[-1] if run.stderr.strip() else ''}")
    return json.loads(run.stdout.strip().splitlines()[-1])


def main(data: Path, words: list[str]) -> None:
    """Print the table and the medians of the compared stages (those named by `words`)."""
    errs: dict[str, list] = {"ttft": [], "tpot": [], "e2e": [], "ttft_p90": [], "e2e_p90": []}
    print("| run, stage | TTFT ms measured → wrpsim | per-token ms measured → wrpsim | "
          "latency s measured → wrpsim |")
    print("|---|---|---|---|")
    with tempfile.TemporaryDirectory() as out:
        for c in experiments(data):
            if words and not any(w in c["case"] for w in words):
                continue
            if c["failed"] > MAX_FAILED:
                print(f"| {c['case']} | overloaded: {100 * c['failed']:.0f} % of requests "
                      f"failed, not compared | | |", flush=True)
                continue
            s = simulate(c, out)
            meas = (c["ttft"] * 1e3, (c["e2e"] - c["ttft"]) / (c["output"] - 1) * 1e3, c["e2e"])
            sim = (s["ttft_mean_s"] * 1e3, (s["e2e_mean_s"] - s["ttft_mean_s"])
                   / (c["output"] - 1) * 1e3, s["e2e_mean_s"])
            e = [100 * (b / a - 1) for a, b in zip(meas, sim)]
            tails = [100 * (s["ttft_p90_s"] / c["ttft_p90"] - 1),
                     100 * (s["e2e_p90_s"] / c["e2e_p90"] - 1)]
            for k, v in zip(errs, e + tails):
                errs[k].append(v)
            print(f"| {c['case']} | {meas[0]:,.1f} → {sim[0]:,.1f} ({e[0]:+.0f} %) | "
                  f"{meas[1]:.2f} → {sim[1]:.2f} ({e[1]:+.0f} %) | "
                  f"{meas[2]:,.2f} → {sim[2]:,.2f} ({e[2]:+.0f} %) |", flush=True)
    for k, v in errs.items():
        if v:
            print(f"{k}: n {len(v)}, median absolute error "
                  f"{statistics.median(map(abs, v)):.1f} %, median signed "
                  f"{statistics.median(v):+.1f} %")


if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1].startswith("-"):
        raise SystemExit("usage: python docs/experiments/inference_perf_check.py "
                         "TRAINING_CLONE [WORD ...]")
    main(Path(sys.argv[1]), sys.argv[2:])
