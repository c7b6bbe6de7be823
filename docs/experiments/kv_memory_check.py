"""How much KV cache a vLLM server starts with, against the sizes its logs report
(docs/validation.md, "KV capacity").

vLLM sizes its KV cache at start-up: the GPU's memory as CUDA reports it x
`gpu_memory_utilization`, less the weights, the peak of a profiling pass and the memory
allocated outside PyTorch (`wrpsim.pool.kernels.sizes.profile_reserve_gib`). wrpsim's constants
for the last two are read off one source — six H100 servers' logs at vLLM's defaults there
(github.com/llm-d/llm-d-benchmark `config_explorer/empirical-vllm-memory-results.md`, "fit") —
and checked on logged KV sizes of other servers, versions, GPUs and batch settings ("test"):

- four vLLM 0.15.1 servers on H100 SXM, 2,048 batched tokens and 128 sequences, the "GPU KV
  cache size" lines quoted in github.com/inference-sim/sim-to-real-accuracy-validation
  `docs/plans/2026-03-04-sim-to-real-accuracy-validation-design.md` (section 4.2);
- LLMServingSim's vLLM 0.19 run on an RTX 4090 (2,048 tokens, 256 sequences) and its vLLM 0.28
  run of a cut DeepSeek-V3.2 on an RTX PRO 6000 (2,048 tokens, 128 sequences, utilisation
  0.92; its GPU's CUDA-reported memory is not logged: the nameplate is taken) — both shipped,
  `pools/measured/llmservingsim/*/meta.json`.

Each row: the KV the server logged against wrpsim's, now (`reserve_gib` null: the profiled
reserve, the CUDA-reported memory where the catalog has it) and before 2026-12-06 (a fixed
3.5 GiB reserve on the nameplate memory), signed % (positive: wrpsim holds more KV).

    python docs/experiments/kv_memory_check.py

About 3 s on 2 cores.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

from wrpsim.pool.engines import build_latency_model
from wrpsim.pool.kernels.sizes import GIB, profile_reserve_gib

ROOT = Path(__file__).resolve().parents[2]
LLMSS = ROOT / "pools/measured/llmservingsim"

#: (model, precision, tp, logged weights GiB, logged activation peak GiB, logged non-PyTorch
#: GiB, logged KV GiB): llm-d-benchmark's H100 table (vLLM's defaults on H100: 8,192 batched
#: tokens, 1,024 sequences, utilisation 0.9, 79.18 GiB reported)
LLMD = [
    ("llama3.1-8b", "bf16", 1, 14.99, 4.76, 0.13, 51.38),
    ("llama3.3-70b", "fp8", 2, 33.88, 4.84, 0.55, 32.0),
    ("qwen3-0.6b", "bf16", 1, 1.12, 5.56, 0.13, 64.45),
    ("qwen3-32b", "bf16", 1, 61.03, 5.64, 0.14, 4.45),
    ("gpt-oss-20b", "mxfp4", 1, 13.47, 7.38, 0.13, 50.28),
    ("gpt-oss-120b", "mxfp4", 1, 64.38, 7.38, 0.13, 3.33),
]

#: (model, tp, logged KV tokens): inference-sim's vLLM 0.15.1 servers on H100 SXM
#: (2,048 batched tokens, 128 sequences, utilisation 0.9, BF16)
INFERENCE_SIM = [
    ("llama2-7b", 1, 119_408),
    ("llama2-70b", 4, 501_712),
    ("mixtral-8x7b", 2, 440_176),
    ("codellama-34b", 2, 425_648),
]


def kv_tokens(lat, seqs: int, tokens: int, util: float, reserve: float | None,
              block: int = 16) -> int:
    """KV tokens of an instance; `reserve` None: the profiled reserve."""
    return lat.kv_capacity_blocks(block, util, reserve, 0, seqs, tokens) * block


def before_tokens(lat, util: float, block: int = 16) -> int:
    """KV tokens as wrpsim counted them until 2026-12-06: 3.5 GiB on the nameplate memory."""
    usable = lat.gpu.mem_gib * util - 3.5 - lat.weight_bytes_per_gpu / GIB
    return int(usable * GIB // (block * lat.kv_bytes_per_token_per_gpu)) * block * lat.adp


def pct(got: float, ref: float) -> float:
    return 100.0 * (got - ref) / ref


def main() -> int:
    rows = []
    print("fit: llm-d-benchmark, H100, vLLM defaults (8,192 tokens, 1,024 sequences)")
    print(f"{'model':<14} {'weights GiB logged/wrpsim':>26} {'reserve GiB logged/wrpsim':>26} "
          f"{'KV GiB logged':>13} {'now':>8} {'before':>8}")
    for model, prec, tp, w, act, nt, kv in LLMD:
        lat = build_latency_model(model, "h100-80gb", tp, "vllm-0.24", prec)
        per_tok = lat.kv_bytes_per_token_per_gpu / GIB
        now = kv_tokens(lat, 1024, 8192, 0.9, None) * per_tok
        before = before_tokens(lat, 0.9) * per_tok
        res = profile_reserve_gib(lat, 1024, 8192)
        print(f"{model:<14} {w:>12.2f} / {lat.weight_bytes_per_gpu / GIB:<11.2f} "
              f"{act + nt:>12.2f} / {res:<11.2f} {kv:>13.2f} {pct(now, kv):>+7.1f}% "
              f"{pct(before, kv):>+7.1f}%")
        rows.append(("fit", pct(now, kv), pct(before, kv)))
    print("\ntest: inference-sim, H100, vLLM 0.15.1 (2,048 tokens, 128 sequences)")
    print(f"{'model':<14} {'KV tokens logged':>16} {'now':>16} {'before':>16}")
    for model, tp, logged in INFERENCE_SIM:
        lat = build_latency_model(model, "h100-80gb", tp, "vllm-0.19")
        now, before = kv_tokens(lat, 128, 2048, 0.9, None), before_tokens(lat, 0.9)
        print(f"{model:<14} {logged:>16,} {now:>8,} {pct(now, logged):>+6.1f}% "
              f"{before:>8,} {pct(before, logged):>+6.1f}%")
        rows.append(("test", pct(now, logged), pct(before, logged)))
    print("\ntest: LLMServingSim (vLLM 0.19 / 0.28)")
    from wrpsim.validate.llmservingsim import _dsa_latent_dtype, _llmss_precision, run_engine

    for sub, gpu, model in (("RTX4090/Llama-3.1-8B", "rtx4090-24gb", "llama3.1-8b"),
                            ("RTXPRO6000/DeepSeek-V3.2-Exp-16L64E", "rtxpro6000-96gb",
                             "deepseek-v3.2-16l64e")):
        meta = json.loads((LLMSS / sub / "meta.json").read_text())
        eng, kv = meta["engine_kwargs"], meta["kv_cache"]
        seqs, tokens = eng["max_num_seqs"], eng["max_num_batched_tokens"]
        pool = {"model": model, "gpu": gpu, "tp": int(eng["tensor_parallel_size"]),
                "engine": run_engine(meta["vllm_version"]), "precision": _llmss_precision(meta),
                "scheduler": {"max_seqs": seqs, "token_budget": tokens}}
        lat = build_latency_model(model, gpu, pool["tp"], pool["engine"], pool["precision"],
                                  _dsa_latent_dtype(pool, kv))
        block = int(kv.get("block_size", 16))
        util = float(kv.get("gpu_memory_utilization") or 0.9)
        logged = int(kv["num_kv_tokens"])
        now = kv_tokens(lat, seqs, tokens, util, None, block)
        before = before_tokens(lat, util, block)
        print(f"{sub:<36} {logged:>10,} {now:>10,} {pct(now, logged):>+6.1f}% "
              f"{before:>10,} {pct(before, logged):>+6.1f}%")
        rows.append(("test", pct(now, logged), pct(before, logged)))
    for split in ("fit", "test"):
        now = [abs(r[1]) for r in rows if r[0] == split]
        before = [abs(r[2]) for r in rows if r[0] == split]
        print(f"\n{split}: {len(now)} servers, median absolute error now "
              f"{statistics.median(now):.1f} % (max {max(now):.1f}), before "
              f"{statistics.median(before):.1f} % (max {max(before):.1f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
