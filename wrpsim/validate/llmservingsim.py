"""The `llmservingsim` set: LLMServingSim's real vLLM serving runs, replayed request by request.

Five runs (four vLLM 0.19, one 0.28; `pools/measured/llmservingsim/`, MIT): each replayed from
its exact arrivals and lengths under the engine of its vLLM version (`run_engine`), with its
engine settings and measured KV blocks; mean and median TTFT, TPOT and end-to-end latency
(`llmservingsim_cases`). All test cases.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from wrpsim.metrics.summary import pct
from wrpsim.validate.sets import Case, measured_dir

_LSS = {  # run folder -> (catalog model, GPU, instances, notes)
    "RTX4090/Llama-3.1-8B": ("llama3.1-8b", "rtx4090-24gb", 1, ""),
    "RTXPRO6000/Llama-3.1-8B": ("llama3.1-8b", "rtxpro6000-96gb", 1, ""),
    "RTXPRO6000/Qwen3-32B": ("qwen3-32b", "rtxpro6000-96gb", 1,
                             "TP 2 over PCIe; vLLM 0.19's all-reduce as measured on another"
                             " RTX PRO 6000 server (vllm-0.19 tables)"),
    "RTXPRO6000/Qwen3-30B-A3B-Instruct-2507": (
        "qwen3-30b-a3b", "rtxpro6000-96gb", 1,
        "vLLM ran DP 2 x EP 2: one instance of 2 GPUs with data-parallel attention (attn_dp 2)"
        " and the experts spread over both (ep 2); the two ranks' schedulers are one with twice"
        " the token budget and sequences"),
    "RTXPRO6000/DeepSeek-V3.2-Exp-16L64E": (
        "deepseek-v3.2-16l64e", "rtxpro6000-96gb", 1,
        "vLLM 0.28, block-FP8 checkpoint (random weights), DeepSeek Sparse Attention; none of its"
        " block-FP8 kernels or sparse attention measured on this GPU: its block-FP8 GEMMs and MoE"
        " from the FP8 tables by the roofline ratio, its sparse prefill from FLOPs and bytes,"
        " its decode attention from the GPU's measured MLA module over the top-k keys"),
}


def _llmss_precision(meta: dict) -> str:
    """A run's weight precision from its `meta.json`: `fp8_block` for a checkpoint quantized
    to FP8 in blocks (`quantization`: quant_method fp8 with a weight_block_size), `fp8` for
    one quantized to FP8 per tensor or channel, else bf16."""
    q = meta.get("quantization") or {}
    if q.get("quant_method") == "fp8":
        return "fp8_block" if q.get("weight_block_size") else "fp8"
    return "bf16"


def _dsa_latent_dtype(pool: dict, kv: dict) -> str:
    """`kv_dtype` of a replay whose engine ran `--kv-cache-dtype auto`: `auto`, except for a
    DeepSeek Sparse Attention model whose measured KV capacity (`num_kv_tokens` at its
    `gpu_memory_utilization`) is nearer what the `fp8_ds_mla` latent layout gives than BF16's
    — vLLM 0.28 on an RTX PRO 6000 stored that layout under `auto` (3.15 M tokens; BF16 would
    hold 2.2 M: its SM120 sparse MLA has no other layout) — and so ran the FP8 latent's
    kernels: then `fp8`."""
    from wrpsim.pool.catalog import get_model
    from wrpsim.pool.engines import build_latency_model

    if not get_model(pool["model"]).dsa:
        return "auto"
    util = float(kv.get("gpu_memory_utilization") or 0.9)
    got = {}
    for dtype in ("auto", "fp8"):
        lat = build_latency_model(pool["model"], pool["gpu"], pool["tp"],
                                  engine=pool.get("engine", "vllm-0.24"),
                                  precision=pool["precision"],
                                  kv_dtype=dtype, ep=pool.get("ep", 1),
                                  attn_dp=pool.get("attn_dp", 1))
        sched = pool.get("scheduler", {})
        got[dtype] = 16 * lat.kv_capacity_blocks(16, util, None, 0,
                                                 sched.get("max_seqs", 256),
                                                 sched.get("token_budget", 2048))
    measured = float(kv["num_kv_tokens"])
    return min(got, key=lambda d: abs(got[d] - measured))


def run_engine(vllm_version: str) -> str:
    """The engine a replay of a run under `vllm_version` (`0.19.0`, `v0.19.0`, `0.19.0-cu130`)
    takes: the engine calibrated for that version, `vllm-<major>.<minor>`, where one ships,
    else the default engine."""
    import re

    from wrpsim.pool.engines import DEFAULT_ENGINE, engines

    got = re.match(r"v?(\d+)\.(\d+)", str(vllm_version).strip())
    name = f"vllm-{got.group(1)}.{got.group(2)}" if got else ""
    return name if name in engines() else DEFAULT_ENGINE


def llmservingsim_cases() -> list[Case]:
    """The five exactly replayable vLLM runs, request by request."""
    out = []
    for folder, (model, gpu, count, notes) in _LSS.items():
        d = measured_dir() / "llmservingsim" / folder
        rows = [json.loads(line) for line in (d / "requests.jsonl").read_text().splitlines()
                if line.strip()]
        meta = json.loads((d / "meta.json").read_text())
        r = pd.DataFrame(rows)
        t0 = r["queued_ts"].min()
        ttft = (r["first_token_ts"] - r["queued_ts"]).to_numpy()
        tpot = ((r["last_token_ts"] - r["first_token_ts"])
                / (r["output_toks"] - 1).clip(lower=1)).to_numpy()[r["output_toks"] > 1]
        e2e = (r["last_token_ts"] - r["queued_ts"]).to_numpy()
        trace = pd.DataFrame({
            "arrival_s": (r["queued_ts"] - t0).to_numpy(np.float64),
            "prompt_tokens": r["input_toks"].astype(np.int64),
            "output_tokens": r["output_toks"].astype(np.int64)})
        trace = trace.sort_values("arrival_s", kind="stable").reset_index(drop=True)
        eng = meta["engine_kwargs"]
        dp = int(eng.get("data_parallel_size") or 1)  # vLLM DP ranks: data-parallel attention
        tp = int(eng["tensor_parallel_size"]) * dp
        pool = {"gpu": gpu, "model": model, "tp": tp, "count": count,
                "engine": run_engine(meta.get("vllm_version", "")),
                "precision": _llmss_precision(meta),
                "scheduler": {"policy": "sarathi",
                              "token_budget": dp * eng["max_num_batched_tokens"],
                              "max_seqs": dp * eng["max_num_seqs"], "block_size": 16}}
        if dp > 1:
            pool["attn_dp"] = dp
            pool["ep"] = tp if eng.get("enable_expert_parallel") else 1
        kv = meta.get("kv_cache") or {}
        if eng.get("kv_cache_dtype", "auto") == "auto" and kv.get("num_kv_tokens"):
            pool["kv_dtype"] = _dsa_latent_dtype(pool, kv)
        if kv.get("num_gpu_blocks"):  # the measured block count (the card's KV is full)
            pool["kv_blocks"] = int(kv["num_gpu_blocks"]) * int(kv.get("block_size", 16)) // 16
        measured = {"ttft_mean_s": float(ttft.mean()), "ttft_p50_s": pct(ttft, 50),
                    "tpot_mean_s": float(tpot.mean()), "tpot_p50_s": pct(tpot, 50),
                    "e2e_mean_s": float(e2e.mean()), "e2e_p50_s": pct(e2e, 50)}
        out.append(Case("llmservingsim", f"{folder} vLLM {meta.get('vllm_version', '')}", gpu,
                        model, "test", pool, measured, trace=trace, count=count,
                        router="least-outstanding" if count > 1 else "round-robin",
                        notes=notes))
    return out
