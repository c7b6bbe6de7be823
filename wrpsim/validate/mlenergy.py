"""The `mlenergy` set: ML.ENERGY benchmark v3 (vLLM 0.11.1, H100 / B200) as replayable cases.

The leaderboard has no licence, so it is read from `mlenergy_dir` when given and never shipped.
Closed loop at concurrency `max_num_seqs` as ML.ENERGY's client runs it (the task's request list
as many times as the configuration says), prompts from assumed lognormal lengths per task
(`MLENERGY_PROMPTS`; input lengths are not published), outputs from the model's published
histogram, the configuration's engine settings (`_mlenergy_settings`); median ITL and average
power per GPU over the benchmark's steady state (`mlenergy_cases`). Fit split: the chat runs of
`MLENERGY_FIT` (`wrpsim.validate.sets`).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from wrpsim.errors import finite_or_none
from wrpsim.validate.sets import BIG_GPU_SCHED, SYSTEMS, Case, catalog_model, skipper

#: assumed prompt lengths of the ML.ENERGY tasks (their input lengths are not published):
#: LM Arena conversations (history + prompt) and GPQA questions; see docs/validation.md
MLENERGY_PROMPTS = {
    "lm-arena-chat": {"dist": "lognormal", "mean": 600, "sigma": 1.2, "max": 16000},
    "gpqa": {"dist": "lognormal", "mean": 280, "sigma": 0.4, "max": 2000},
    "sourcegraph-fim": {"dist": "lognormal", "mean": 1500, "sigma": 0.6, "max": 8000},
}
#: ML.ENERGY models whose chat runs form the fit split (module docstring)
MLENERGY_FIT = {"meta-llama/Llama-3.1-8B-Instruct", "meta-llama/Llama-3.1-70B-Instruct",
                "Qwen/Qwen3-30B-A3B-Instruct-2507"}
#: requests per run of each ML.ENERGY task before repeats (ml-energy/benchmark @ c1d6557,
#: configs/vllm/<task>/benchmark.yaml `num_requests`, Apache-2.0); a task folder's own
#: benchmark.yaml in the data overrides it
MLENERGY_NUM_REQUESTS = {"lm-arena-chat": 1024, "gpqa": 198, "sourcegraph-fim": 1024}
#: ML.ENERGY ran vLLM 0.11.1: its engine calibration (same kernels, that version's overheads)
MLENERGY_ENGINE = "vllm-0.11"


def _output_dist(models_dir: Path, model_id: str, task: str, gpu_model: str, mns: int):
    """The published output-length histogram of one configuration as (bin edges, counts)."""
    path = models_dir / f"{model_id.replace('/', '__')}__{task}.json"
    if not path.is_file():
        return None
    data = json.loads(path.read_text())
    for c in data.get("configurations", []):
        if c.get("gpu_model") == gpu_model and c.get("max_num_seqs") == mns:
            d = c.get("output_length_distribution") or data.get("output_length_distribution")
            return np.asarray(d["bins"], dtype=float), np.asarray(d["counts"], dtype=float)
    d = data.get("output_length_distribution")
    return (np.asarray(d["bins"], dtype=float), np.asarray(d["counts"], dtype=float)) if d else None


#: vLLM environment switches of ML.ENERGY's engine configs that choose an MXFP4 expert kernel
MXFP4_ENV = {"VLLM_USE_FLASHINFER_MOE_MXFP4_MXFP8": "mxfp4_mxfp8",
             "VLLM_MXFP4_USE_MARLIN": "mxfp4_marlin"}


def _mlenergy_settings(root: Path, task: str, model_id: str, gpu_model: str) -> dict:
    """The engine settings of one ML.ENERGY configuration that change iteration times, read
    from its published vLLM config (`benchmark_configs/<task>/<model>/<GPU>/monolithic.
    {config,env}.yaml`, Apache-2.0) when `root` has it: the MXFP4 expert kernel its
    environment selects (`precision`), its CUDA-graph mode (`cudagraph_mixed` = 0 for
    FULL_DECODE_ONLY), its Mamba SSM-state dtype (`mamba_ssm_dtype`) and its
    `--max-model-len` (`max_context`). Empty when the files are absent (vLLM's defaults
    then)."""
    import yaml

    d = root / "benchmark_configs" / task / model_id / gpu_model
    out: dict = {}
    try:
        env = yaml.safe_load((d / "monolithic.env.yaml").read_text()) or {}
        cfg = yaml.safe_load((d / "monolithic.config.yaml").read_text()) or {}
    except (OSError, yaml.YAMLError):
        return out
    for key, prec in MXFP4_ENV.items():
        if str(env.get(key, "0")) == "1":
            out["precision"] = prec
    comp = cfg.get("compilation-config")
    if isinstance(comp, str):
        try:
            comp = json.loads(comp)
        except ValueError:
            comp = None
    if isinstance(comp, dict) and comp.get("cudagraph_mode") == "FULL_DECODE_ONLY":
        out["cudagraph_mixed"] = 0
    ssm = {"float32": "fp32", "bfloat16": "bf16"}.get(str(cfg.get("mamba-ssm-cache-dtype")))
    if ssm is not None:
        out["mamba_ssm_dtype"] = ssm
    if isinstance(cfg.get("max-model-len"), int) and cfg["max-model-len"] > 0:
        out["max_context"] = cfg["max-model-len"]
    return out


def _mlenergy_requests(root: Path, task: str, model_id: str, gpu_model: str, mns: int,
                       n_gpu: int) -> tuple[int, int]:
    """(requests in the task's list, repeats) of one ML.ENERGY run: the task's `num_requests`
    and the configuration's `num_request_repeats` (the benchmark sends the list that many
    times, the repeats hitting the prefix cache), read
    from `benchmark_configs/<task>/benchmark.yaml` (`sweep_defaults`) and the model's
    `<model>/<GPU>/sweeps.yaml` (`sweep`: the first entry whose `max_num_seqs`, and
    `num_gpus` if it names any, match) when the data folder has them; 1 repeat otherwise."""
    import yaml

    base = root / "benchmark_configs" / task

    def load(path: Path) -> dict:
        try:
            return yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError):
            return {}

    bench = load(base / "benchmark.yaml")
    n = int((bench.get("workload_defaults") or {}).get("num_requests",
                                                          MLENERGY_NUM_REQUESTS[task]))
    entries = list(load(base / model_id / gpu_model / "sweeps.yaml").get("sweep") or [])
    entries += list(bench.get("sweep_defaults") or [])
    for e in entries:
        if mns in (e.get("max_num_seqs") or []) and n_gpu in (e.get("num_gpus") or [n_gpu]):
            return n, int((e.get("num_request_repeats") or [1])[0])
    return n, 1


def _cell(r, key: str) -> float | None:
    """A number column of llm_configs.csv; None where the row leaves it empty."""
    return finite_or_none(getattr(r, key, None))


def mlenergy_cases(root: str | Path, skipped: dict[str, int] | None = None) -> list[Case]:
    """Closed-loop cases of the ML.ENERGY leaderboard found under `root` (llm_configs.csv and
    models/*.json); dense and MoE models of the catalog, one instance per configuration. A run
    with vLLM's data-parallel attention (`--data-parallel-size` > 1 with expert parallelism:
    Qwen3-Coder-480B-FP8 on 4 and 8 B200, TP 1 per rank) is one instance of all its GPUs with
    `attn_dp` = the DP size. Rows it cannot replay are counted in `skipped` (reason -> rows)
    when given, so that a caller can say what was left out."""
    root = Path(root)
    df = pd.read_csv(root / "llm_configs.csv")
    out = []
    seen: dict[str, int] = {}
    skip = skipper(skipped)

    for r in df.itertuples(index=False):
        missing = [k for k in ("num_gpus", "max_num_seqs", "avg_output_len")
                   if _cell(r, k) is None or _cell(r, k) < 1]
        if not isinstance(r.model_id, str) or not r.model_id.strip():
            missing.insert(0, "model_id")
        if missing:
            skip(f"{', '.join(missing)} empty or below 1")
            continue
        model, gpu = catalog_model(r.model_id), SYSTEMS.get(r.gpu_model)
        if model is None:
            skip(f"model {r.model_id} is no catalog entry's source, or is more than one's "
                 "once release suffixes are dropped (pools/catalog/models.yaml, or a "
                 "models.yaml of yours: an entry whose source, before ' config.json', is its "
                 "Hugging Face id)")
            continue
        if gpu is None:
            skip(f"GPU {r.gpu_model} is not mapped to a catalog GPU (valid: "
                 f"{', '.join(sorted(k for k in SYSTEMS if k[0].isupper()))})")
            continue
        if r.task not in MLENERGY_PROMPTS:
            skip(f"task {r.task} has no prompt-length assumption (valid: "
                 f"{', '.join(MLENERGY_PROMPTS)})")
            continue
        n_gpu = int(_cell(r, "num_gpus"))
        if _cell(r, "par_tensor_parallel") is None and n_gpu > 1:
            skip("par_tensor_parallel empty (on more than one GPU)")
            continue
        tp = int(_cell(r, "par_tensor_parallel") or 1)  # (empty on one GPU: 1)
        ep = int(_cell(r, "par_expert_parallel") or 1)  # (empty: none)
        dp = int(_cell(r, "par_data_parallel") or 1)
        if dp > 1 and (tp != 1 or ep != n_gpu):
            # data-parallel ranks of more than one GPU, or without EP: none listed
            skip(f"data parallelism {dp} with TP {tp} and EP {ep} on {n_gpu} GPUs (replayed: "
                 f"TP 1 per rank and experts spread over all GPUs)")
            continue
        if ep > 1:  # vLLM --enable-expert-parallel over the instance's GPUs
            tp = n_gpu
            ep = n_gpu
        if tp != n_gpu:
            skip(f"TP {tp} on {n_gpu} GPUs (pipeline or replica parallelism)")
            continue
        prec = {"bfloat16": "bf16", "fp8": "fp8", "mxfp4": "mxfp4"}.get(r.weight_precision)
        if prec is None:
            skip(f"weight precision {r.weight_precision} (valid: bfloat16, fp8, mxfp4)")
            continue
        if prec == "fp8" and ("Qwen" in r.model_id or "DeepSeek" in r.model_id):
            prec = "fp8_block"
        measured = {k: v for k, v in (
            ("itl_p50_s", (_cell(r, "median_itl_ms") or math.nan) / 1e3),
            ("power_w", (_cell(r, "avg_power_watts") or math.nan) / n_gpu)) if math.isfinite(v)}
        if not measured:
            skip("neither median_itl_ms nor avg_power_watts measured")
            continue
        mns = int(_cell(r, "max_num_seqs"))
        hist = _output_dist(root / "models", r.model_id, r.task, r.gpu_model, mns)
        n_req, reps = _mlenergy_requests(root, r.task, r.model_id, r.gpu_model, mns, n_gpu)
        engine = MLENERGY_ENGINE
        out_spec: dict | int = round(r.avg_output_len)
        if hist is not None:
            bins, counts = hist
            mids = (bins[:-1] + bins[1:]) / 2
            out_spec = {"dist": "lognormal", "mean": float(max(1.0, r.avg_output_len)),
                        "sigma": float(_lognormal_sigma(mids, counts)),
                        "max": int(bins[-1])}
        settings = _mlenergy_settings(root, r.task, r.model_id, r.gpu_model)
        if prec == "mxfp4":
            prec = settings.get("precision", prec)
        pool = {"gpu": gpu, "model": model, "tp": tp, "ep": ep if ep > 1 else 1, "count": 1,
                "precision": prec, "max_context": settings.get("max_context"), "engine": engine,
                "scheduler": {**BIG_GPU_SCHED, "max_seqs": mns}}
        if dp > 1:
            pool["attn_dp"] = dp
        engine_keys = {k: settings[k] for k in ("cudagraph_mixed", "mamba_ssm_dtype")
                       if k in settings}
        if engine_keys:
            pool["latency"] = {"kind": "engine", **engine_keys}
        wl = {"name": "mlenergy", "source": {
            "kind": "closed_loop", "concurrency": mns, "num_requests": n_req * reps,
            "repeats": reps,
            "prompt_tokens": MLENERGY_PROMPTS[r.task], "output_tokens": out_spec}}
        fit = r.model_id in MLENERGY_FIT and r.task == "lm-arena-chat"
        name = f"{r.model_id} {r.task} {r.gpu_model}x{n_gpu} {prec} c{mns}" + (
            f" dp{dp}" if dp > 1 else "")
        seen[name] = seen.get(name, 0) + 1
        if seen[name] > 1:  # the leaderboard lists some configurations twice (repeat runs)
            name += f" run {seen[name]}"
        out.append(Case(
            "mlenergy", name, gpu, model,
            "fit" if fit else "test", pool,
            measured,
            workload=wl, info={"concurrency": mns, "steady_state": True,
                               "avg_batch": _cell(r, "avg_batch_size") or math.nan}))
    return out


def _lognormal_sigma(x: np.ndarray, w: np.ndarray) -> float:
    """Sigma of a lognormal matching the weighted log-spread of histogram midpoints."""
    ok = (x > 0) & (w > 0)
    if ok.sum() < 2:
        return 0.5
    lx = np.log(x[ok])
    m = np.average(lx, weights=w[ok])
    return float(min(2.0, max(0.1, math.sqrt(np.average((lx - m) ** 2, weights=w[ok])))))
