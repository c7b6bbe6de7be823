"""Disaggregated closed-loop cases: the silicon sample's vLLM rows in disaggregated mode.

AIConfigurator's `silicon_sample.csv` holds 14 such vLLM rows (shipped as
`pools/measured/silicon_vllm_disagg.csv`): Kimi-K2.5 NVFP4 on GB200 NVL72 racks, vLLM 0.18.0
behind NVIDIA Dynamo 1.0.1 (InferenceMAX's `kimik2.5-fp4-gb200-dynamo-vllm`, added in
SemiAnalysisAI/InferenceX 235b232d2 on 2026-04-07, the rows' measurement date), one prefill
worker and one or four decode workers, InferenceMAX's closed loop (`concurrency` clients, ten
requests each, prompt and output lengths uniform in [0.8, 1] x isl / osl). Each row is
replayed as a fleet of two pools — `prefill` (role prefill) and `decode` (role decode) — set as
the recipe the row's configuration ran (`RECIPES`: NVIDIA/srt-slurm branch
sa-submission-q2-2026 @ 8294e64e, `recipes/vllm/kimi-k2.5/`), the KV cache handed over after
each prompt (vLLM's NixlConnector pulls it once the prompt is done: `serialized`) through one
400 Gb/s NIC per GPU (`network=nic`), the GPU the catalog's `gb200-186gb` (B200 silicon, a
72-GPU NVLink domain).

The sample's labels and the recipes differ on the prefill worker (labelled TP 4 without
data-parallel attention; the recipe runs `--data-parallel-size 4 --tensor-parallel-size 1
--enable-expert-parallel`, as InferenceMAX's config says, `dp-attn: true`) and on the large
decode worker (labelled TP 16 x EP 16; the recipe runs DP 16 x EP 16 over the rack's NVLink,
`GpuSpec.scaleup_gpus`): the recipe is replayed. The workers with data-parallel attention move
MoE tokens all-to-all (`--all2all-backend flashinfer_nvlink_one_sided`: `moe_all2all`).
The engines' `handover_us` (a serialized hand-off's orchestration outside the GPUs' steps) is
fitted on the 1k-token rows with 4-GPU decode workers (split `fit`: `FIT_ISL`,
`FIT_DECODE_GPUS`); the 8k-token rows and the three with one 16-GPU decode worker (replayed
since groups beyond 8 GPUs inside a rack's NVLink domain are, after that fit) are the test
split.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from wrpsim.sanity import scaleup_gpus
from wrpsim.validate.sets import SYSTEMS, Case, catalog_model, is_vllm, measured_dir, skipper

#: the vLLM serve settings of the recipes (NVIDIA/srt-slurm @ 8294e64e, branch
#: sa-submission-q2-2026, recipes/vllm/kimi-k2.5/{1k1k,8k1k}/disagg-gb200-*.yaml), per
#: (isl, decode workers, decode GPUs per worker); per engine rank (the pool multiplies the
#: sequence and token limits by its data-parallel ranks). Both sides: FP8 KV cache, block size
#: 64, no prefix caching, no chunked prefill, gpu-memory-utilization 0.9; prefill workers
#: `--enforce-eager`, decode workers FULL_DECODE_ONLY CUDA graphs up to the capture size with
#: async scheduling; `--max-model-len` (`max_len`: both sides); `--all2all-backend
#: flashinfer_nvlink_one_sided` wherever the worker runs data-parallel attention (the prefill
#: workers, the 16-GPU decode worker: `moe_all2all`)
RECIPES = {
    # 1k1k/disagg-gb200-1p1d-dep4-dep16.yaml (concurrency 256 ... 4,096)
    (1024, 1, 16): {"recipe": "1k1k/disagg-gb200-1p1d-dep4-dep16.yaml",
                    "prefill": {"max_seqs": 4096, "budget": 16384, "max_len": 3072},
                    "decode": {"dp": 16, "max_seqs": 4096, "budget": 10240, "capture": 512}},
    # 1k1k/disagg-gb200-1p4d-dep4-tep4.yaml (concurrency 4 ... 128)
    (1024, 4, 4): {"recipe": "1k1k/disagg-gb200-1p4d-dep4-tep4.yaml",
                   "prefill": {"max_seqs": 1024, "budget": 16384, "max_len": 3072},
                   "decode": {"dp": 1, "max_seqs": 1024, "budget": 10240, "capture": 1024}},
    # 8k1k/disagg-gb200-1p4d-dep4-tep4.yaml (concurrency 4 ... 128)
    (8192, 4, 4): {"recipe": "8k1k/disagg-gb200-1p4d-dep4-tep4.yaml",
                   "prefill": {"max_seqs": 64, "budget": 16384, "max_len": 10240},
                   "decode": {"dp": 1, "max_seqs": 16, "budget": 10240, "capture": 16}},
}
#: the prefill worker of every recipe: 4 GPUs, `--data-parallel-size 4
#: --enable-expert-parallel`, tensor parallelism 1 per rank
PREFILL_DP = 4
#: the scale-out link a hand-off crosses (GB200 compute trays: one 400 Gb/s ConnectX-7 per GPU)
NIC_GBPS = 400.0
SCHED = {"policy": "sarathi", "block_size": 64, "gpu_mem_util": 0.9}
#: the fit split: the 1k-token prompts on 4-GPU decode workers (the engines' `handover_us` is
#: fitted on them); the 8k-token ones and the 16-GPU decode worker's are the test split
FIT_ISL = (1024,)
FIT_DECODE_GPUS = 4


def _pool(gpu: str, model: str, role: str, gpus: int, dp: int, count: int, max_seqs: int,
          budget: int, latency: dict, max_len: int) -> dict:
    pool = {"gpu": gpu, "model": model, "tp": gpus, "ep": gpus, "count": count,
            "precision": "fp4", "kv_dtype": "fp8", "role": role, "max_context": max_len,
            "scheduler": {**SCHED, "max_seqs": max_seqs * dp, "token_budget": budget * dp},
            "prefix_cache": {"enabled": False},
            "latency": {"kind": "engine", **latency}}
    if dp > 1:
        pool["attn_dp"] = dp
    if role == "prefill":
        pool["kv_transfer"] = {"mode": "serialized"}
    return pool


#: the columns a disaggregated row needs besides the aggregated set's
DISAGG_COLUMNS = ("mode", "prefill_num_workers", "decode_batch_size", "decode_num_workers",
                  "decode_tp_size")


def disagg_cases(requests_per_client: int = 10, skipped: dict[str, int] | None = None,
                 path: Path | None = None) -> list[Case]:
    """Closed-loop cases of the shipped disaggregated vLLM rows (module docstring); rows
    without a known recipe are counted in `skipped` (reason -> rows) when given."""
    df = pd.read_csv(path if path is not None else measured_dir() / "silicon_vllm_disagg.csv")
    skip = skipper(skipped)
    out = []
    lacking = [c for c in DISAGG_COLUMNS if c not in df.columns]
    if lacking:  # (a file of aggregated rows: `validate silicon_csv=`)
        if skipped is not None and len(df):
            skipped[f"no disaggregated layout (the file lacks {', '.join(lacking)})"] = len(df)
        return out
    for r in df.itertuples(index=False):
        if not is_vllm(r):
            skip(f"backend {r.backend} rows (wrpsim's engines are vLLM's)")
            continue
        if str(r.mode) != "disagg" or not r.decode_num_workers > 0:
            skip("aggregated rows (the silicon set's)")
            continue
        model = catalog_model(r.model_path)
        gpu = SYSTEMS.get(r.system)
        workers, per = int(r.decode_num_workers), int(r.decode_tp_size)
        recipe = RECIPES.get((int(r.isl), workers, per))
        if model is None or gpu is None or recipe is None or r.precision != "fp4":
            skip("disaggregated rows without a known recipe (model, GPU, isl and decode "
                 "layout: wrpsim.validate.disagg.RECIPES)")
            continue
        if per > scaleup_gpus(gpu):
            skip(f"a decode worker of {per} GPUs, more than one NVLink domain of {gpu}")
            continue
        c = int(r.decode_batch_size) * workers  # (the sample's batch is per decode worker)
        p, d = recipe["prefill"], recipe["decode"]
        prefill = _pool(gpu, model, "prefill", 4, PREFILL_DP, int(r.prefill_num_workers),
                        p["max_seqs"], p["budget"],
                        {"cudagraph_max_tokens": 0, "cudagraph_mixed": 0, "moe_all2all": True},
                        p["max_len"])
        decode = _pool(gpu, model, "decode", per, d["dp"], workers, d["max_seqs"], d["budget"],
                       {"cudagraph_max_tokens": d["capture"], "cudagraph_mixed": 0,
                        **({"moe_all2all": True} if d["dp"] > 1 else {})}, p["max_len"])
        wl = {"name": "silicon-disagg", "source": {
            "kind": "closed_loop", "concurrency": c, "num_requests": requests_per_client * c,
            "prompt_tokens": {"dist": "uniform", "low": int(r.isl * 0.8), "high": int(r.isl)},
            "output_tokens": {"dist": "uniform", "low": int(r.osl * 0.8), "high": int(r.osl)}}}
        name = (f"{r.model_path} {r.system} fp4 disagg {int(r.prefill_num_workers)}p"
                f"{workers}d dp{PREFILL_DP}ep{PREFILL_DP} / "
                f"{'dp' if d['dp'] > 1 else 'tp'}{per}ep{per} isl{r.isl} osl{r.osl} c{c}")
        out.append(Case(
            "silicon_disagg", name, gpu, model,
            "fit" if r.isl in FIT_ISL and per == FIT_DECODE_GPUS else "test", {},
            {"ttft_mean_s": r.silicon_ttft_ms / 1e3, "tpot_mean_s": r.silicon_tpot_ms / 1e3},
            workload=wl, pools={"prefill": prefill, "decode": decode},
            network={"kind": "nic", "nic_gbps": NIC_GBPS},
            info={"concurrency": c, "isl": int(r.isl), "osl": int(r.osl), "vllm": "v0.18.0",
                  "recipe": recipe["recipe"]}))
    return out
