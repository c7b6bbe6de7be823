"""The `silicon` set: NVIDIA AIConfigurator's end-to-end vLLM benchmarks, as replayable cases.

`pools/measured/silicon_vllm.csv` (Apache-2.0): closed loop at concurrency `batch_size`, mean
TTFT and mean TPOT (`silicon_cases`). Rows whose model, GPU and parallelism the catalog covers
(no attention data parallelism; experts either TP-sharded or spread over the TP group). The rows
on the InferenceMAX grid (isl, osl in {1024, 8192}) replay InferenceMAX's client: lengths
uniform in [0.8 x isl, isl] and [0.8 x osl, osl] (`--random-range-ratio 0.8`), 10 x
concurrency requests, `--max-num-seqs` = concurrency, `--max-num-batched-tokens 8192`; the
other rows use fixed lengths and the same request count. The server settings of InferenceMAX's
scripts that change kernel times are replayed too (gpt-oss's expert kernels and capture size,
Llama's decode-only CUDA graphs on B200, the all-reduce fusion by vLLM version), and
MiniMax-M2.5's and Kimi-K2.5's rows take their own script's flags at their measurement date
(`MINIMAX_SCRIPTS`, `KIMI_SCRIPTS`: `_script`). Fit split: the H100 rows of `FIT_MODELS` and
B200's Llama-3.1-70B FP8 rows (`wrpsim.validate.sets`).
"""

from __future__ import annotations

import math
from functools import partial
from pathlib import Path

import pandas as pd

from wrpsim.validate.sets import (
    BIG_GPU_SCHED,
    SYSTEMS,
    Case,
    catalog_model,
    is_vllm,
    measured_dir,
    skipper,
)

#: the MXFP4 expert kernel InferenceMAX's gpt-oss vLLM scripts select per system
#: (SemiAnalysisAI/InferenceX benchmarks/gptoss_fp4_{h100,h200,b200}.sh: Hopper exports
#: VLLM_MXFP4_USE_MARLIN=1, B200 exports VLLM_USE_FLASHINFER_MOE_MXFP4_MXFP8=1)
GPTOSS_KERNEL = {"h100_sxm": "mxfp4_marlin", "h200_sxm": "mxfp4_marlin",
                 "b200_sxm": "mxfp4_mxfp8"}
#: ... and its KV-cache dtype there (`kv-cache-dtype: fp8` in the B200 script only)
GPTOSS_KV = {"b200_sxm": "fp8"}
#: vLLM's CUDA-graph capture limit (tokens) in those scripts: gpt-oss sets
#: `max-cudagraph-capture-size: 2048`; the others keep vLLM's default, min(2 x max_num_seqs,
#: 512), with `--max-num-seqs` = concurrency on Hopper and 512 on B200
GPTOSS_CAPTURE = 2048


#: systems whose InferenceMAX Llama scripts capture only pure-decode iterations in CUDA graphs
#: (`"cudagraph_mode": "FULL_DECODE_ONLY", "splitting_ops": []` in 70b_fp{8,4}_b200_docker.sh):
#: every iteration holding a prompt chunk is launched eagerly
DECODE_ONLY_GRAPHS = {("llama3.1-70b", "b200_sxm")}


#: the all-reduce + RMSNorm fusion limits (MiB by TP) InferenceMAX's B200 Llama scripts set
#: (`enable_fi_allreduce_fusion` and VLLM_FLASHINFER_ALLREDUCE_FUSION_THRESHOLDS_MB in
#: 70b_fp{8,4}_b200_docker.sh)
SCRIPT_FUSION_MB = {("llama3.1-70b", "b200_sxm"): {2: 32, 4: 32, 8: 8}}
#: the first vLLM version whose -O2 fuses the all-reduce with RMSNorm by default, by system
#: (vllm-project/vllm#34299, 2026-02: SM 9.0 and 10.0; #37755, 2026-03: SM 10.3)
FUSION_DEFAULT_FROM = {"b300_sxm": (0, 18)}
FUSION_DEFAULT_SINCE = (0, 16)


def _fusion_setting(model: str, system: str, version, tp: int) -> dict:
    """The row's all-reduce + RMSNorm fusion as its server ran it (`latency` keys): the limit
    its script sets, else the default of its vLLM version (on from `FUSION_DEFAULT_SINCE`:
    the engine's own limits), else off (older or unrecorded versions: the rows without one
    were measured in 2025, before the default)."""
    limits = SCRIPT_FUSION_MB.get((model, system))
    if limits is not None:
        return {"allreduce_fusion": True, "allreduce_fusion_mb": limits.get(tp, 0)}
    v = _vllm_version(version) or (0, 0)
    return {} if v >= FUSION_DEFAULT_FROM.get(system, FUSION_DEFAULT_SINCE) else {
        "allreduce_fusion": False}


def _vllm_version(version) -> tuple[int, int] | None:
    """(major, minor) of a row's vLLM version ('0.19.0'); None where it is no such number (a
    nightly build, a blank cell)."""
    try:
        return tuple(int(x) for x in str(version).split(".")[:2])
    except ValueError:
        return None


#: catalog models whose NVFP4 rows ran NVIDIA's ModelOpt release, which leaves `self_attn*`
#: out of NVFP4 (its hf_quant_config.json / config.json `exclude_modules`, as AIConfigurator
#: @ 095f58a5 ships them in model_configs/): precision `fp4_attn_bf16`. Kimi-K2.5's release
#: does so too, but its rows stay `fp4`: with BF16 attention Kimi's FP4 rows' TPOT goes from
#: 5.5 to 7.1 % (B200) and 3.9 to 9.7 % (B300) while TTFT improves 4 points — its MLA path in
#: BF16 is not understood yet (docs/validation.md, "Where wrpsim is wrong")
NVFP4_ATTN_BF16 = {"minimax-m2.5"}


#: the models of the silicon set's H100 fit split (the constants were fitted on their rows)
FIT_MODELS = ("llama3.1-70b", "gpt-oss-120b")
#: catalog models whose `fp8` rows are their maker's block-FP8 checkpoint (BF16 KV cache)
BLOCK_FP8_CHECKPOINTS = ("qwen3-235b-a22b", "minimax-m2.5")

#: InferenceMAX's MiniMax-M2.5 vLLM scripts (SemiAnalysisAI/InferenceX
#: `benchmarks/single_node/minimaxm2.5_{fp8,fp4}_{h100,h200,b200,b300}.sh`, git history):
#: (system, row precision) -> [(first date, `vllm serve` settings from that date on)]. Unset:
#: vLLM's batch defaults for the GPU (8,192 tokens, 1,024 sequences), the KV dtype of the
#: checkpoint, CUDA graphs up to min(2 x max_num_seqs, 512) tokens, gpu_memory_utilization 0.9
_NEW_BLACKWELL = {"kv_dtype": "fp8", "capture": 2048, "budget": "2isl", "mem": 0.90}
MINIMAX_SCRIPTS = {
    # defaults, --gpu-memory-utilization 0.95 (a36346339 .. 0f78cf4eb, 2026-03-01 .. 03-27);
    # from 4db963a28 .. 1fcdea247 (03-05) `[ "$EP_SIZE" -ge 1 ]`, which passed
    # --enable-expert-parallel at every EP size (rows labelled EP 1 ran EP = TP) until 0949de54e
    ("h200_sxm", "fp8"): [("2026-03-01", {"mem": 0.95}),
                          ("2026-03-05", {"mem": 0.95, "ep": "tp"}),
                          ("2026-05-05", {"mem": 0.95})],
    # --max-num-seqs 256, PIECEWISE graphs (ac0d2a853 .. 0f78cf4eb)
    ("h100_sxm", "fp8"): [("2026-03-02", {"max_seqs": 256, "piecewise": True})],
    # --block-size 32, 0.95, and (f342df18e .. 626932a11) VLLM_USE_FLASHINFER_MOE_FP8=0 with
    # VLLM_MOE_USE_DEEP_GEMM=0, which leaves vLLM's Triton fused MoE (`moe_triton`), and
    # `[ "$EP_SIZE" -ge 1 ]`, which passed --enable-expert-parallel at every EP size (rows
    # labelled EP 1 ran EP = TP); from bddbf4031 (04-03) FlashInfer's experts again, EP only
    # above 1, FP8 KV, capture 2,048 tokens, --max-num-batched-tokens 2 x ISL, 0.90
    ("b200_sxm", "fp8"): [("2026-03-11", {"block_size": 32, "mem": 0.95, "moe_triton": True,
                                          "ep": "tp"}),
                          ("2026-04-03", {**_NEW_BLACKWELL, "block_size": 32})],
    ("b200_sxm", "fp4"): [("2026-04-08", _NEW_BLACKWELL)],  # 79bd988e9
    ("b300_sxm", "fp8"): [("2026-04-17", {**_NEW_BLACKWELL, "block_size": 32})],  # 340d7854c
    ("b300_sxm", "fp4"): [("2026-04-17", _NEW_BLACKWELL)],  # 22d0f12f7
}


#: InferenceMAX's NVIDIA Kimi-K2.5 vLLM scripts (`benchmarks/single_node/kimik2.5_{fp4,int4}_
#: {b200,b300,h200}.sh`, git history), as `MINIMAX_SCRIPTS`: every version runs `--max-num-seqs`
#: at the concurrency (`"max_seqs": "conc"`) with `fuse_allreduce_rms true` (`"fusion"`: on
#: wherever the row's vLLM fuses on its GPU: SM 10.3 from 0.18) and passes no
#: --enable-expert-parallel until 2026-06-03 (380b685df), after every row here: the configs'
#: `ep` set an EP_SIZE they did not read, so rows labelled EP 4 ran tensor-parallel experts
_KIMI = {"max_seqs": "conc", "fusion": True, "ep": 1}
KIMI_SCRIPTS = {
    ("b200_sxm", "fp4"): [("2026-03-11", {**_KIMI, "mem": 0.90}),  # a58dedd5a
                          # ba33caeae: FP8 KV, capture 2,048, 2 x ISL batched tokens
                          ("2026-04-16", {**_KIMI, **_NEW_BLACKWELL})],
    # (B300's rows of 04-03 predate its own script, d0a7b8f95 of 04-17, whose settings the
    # B200 script of that time shares)
    ("b300_sxm", "fp4"): [("2026-04-03", {**_KIMI, "mem": 0.90})],
    # (and VLLM_USE_FLASHINFER_MOE_INT4=1 on B200: FlashInfer's INT4 experts, which the tables
    # do not time — Marlin's are)
    ("b200_sxm", "int4"): [("2026-02-20", {**_KIMI, "mem": 0.95})],  # c4cf9e5aa
    ("h200_sxm", "int4"): [("2026-03-01", {**_KIMI, "mem": 0.95})],  # 17a56830c
}


def _script(scripts: dict, label: str, pool: dict, system: str, precision: str, source: str,
            isl: int, version) -> str | None:
    """Apply to `pool` the settings of the InferenceMAX script in force when the row was
    measured (`scripts`: `MINIMAX_SCRIPTS` / `KIMI_SCRIPTS`, the latest version on or before
    its date); the reason the row is left out, or None. `version`: the row's vLLM version."""
    import re

    m = re.search(r"measured=(\d{4}-\d{2}-\d{2})", source)
    versions = scripts.get((system, precision))
    if m is None or versions is None:
        return f"{label} rows without a measurement date or a known script"
    s = None
    for since, settings in versions:
        if m.group(1) >= since:
            s = settings
    if s is None:
        return f"{label} rows older than their script's first version (another script)"
    if s.get("piecewise"):
        return (f"vLLM's PIECEWISE CUDA-graph mode (InferenceMAX's H100 {label} script), "
                "not modelled")
    if "kv_dtype" in s:
        pool["kv_dtype"] = s["kv_dtype"]
    if "ep" in s:
        pool["ep"] = pool["tp"] if s["ep"] == "tp" else s["ep"]
    if s.get("moe_triton"):
        pool["latency"]["moe_triton"] = True
    if s.get("fusion") and _fusion_runs(system, version):  # (as the engine: on, its limits)
        pool["latency"].pop("allreduce_fusion", None)
    sched = pool["scheduler"]
    if s.get("max_seqs") != "conc":  # (else the concurrency, as the row already has it)
        sched["max_seqs"] = s.get("max_seqs", BIG_GPU_SCHED["max_seqs"])
    sched["token_budget"] = 2 * isl if s.get("budget") == "2isl" else BIG_GPU_SCHED["token_budget"]
    if s.get("block_size"):
        sched["block_size"] = s["block_size"]
    sched["gpu_mem_util"] = s.get("mem", 0.90)
    pool["latency"]["cudagraph_max_tokens"] = s.get("capture", min(2 * sched["max_seqs"], 512))
    return None


def _fusion_runs(system: str, version) -> bool:
    """Whether a vLLM of `version` fuses the all-reduce with RMSNorm on `system` when asked to
    (`fuse_allreduce_rms true`): SM 9.0 and 10.0 in every version here, SM 10.3 from the
    version that made it the default there (`FUSION_DEFAULT_FROM`)."""
    v = _vllm_version(version)
    return v is not None and v >= FUSION_DEFAULT_FROM.get(system, (0, 0))


#: models whose rows take their scripts' per-date settings (`_script` with their table)
SCRIPT_SETTINGS = {"minimax-m2.5": partial(_script, MINIMAX_SCRIPTS, "MiniMax-M2.5"),
                   "kimi-k2.5": partial(_script, KIMI_SCRIPTS, "Kimi-K2.5")}


def _capture_size(model: str, system: str, concurrency: int) -> int:
    if model.startswith("gpt-oss"):
        return GPTOSS_CAPTURE
    return min(2 * (512 if system == "b200_sxm" else concurrency), 512)


def _precision(model: str, gemm: str, moe: str, system: str = "") -> str:
    if model.startswith("gpt-oss"):
        # the checkpoint's MXFP4 experts (BF16 attention) under the script's expert kernel
        return GPTOSS_KERNEL.get(system, "mxfp4")
    if moe == "int4_wo" or gemm == "int4_wo":
        return "int4"
    return {"nvfp4": "fp4", "fp8_block": "fp8_block", "fp8": "fp8"}.get(gemm, "bf16")


#: rows of AIConfigurator's own gap analysis (vLLM 0.12: Llama-3.1-8B FP8, Qwen3-235B FP8 on
#: H200) are left out: their protocol is unpublished and their numbers are not a closed loop
#: at the stated concurrency (e.g. 112 clients of 1,000-token prompts and 100-token answers
#: would need more prefill FLOP/s than an H200 has, yet TTFT is one prefill's time)
GAP_ANALYSIS = "aic-auto-gap-analysis"
#: rows at concurrency 512 (gpt-oss on H100, vLLM 0.11.2) are left out too: their TTFTs of 20 to
#: 460 s with TPOTs of 4 to 27 ms mean most clients queued behind a small running batch, and the
#: engine's max_num_seqs and the request count that decide that queue are not recorded
MAX_CONCURRENCY = 128
INFERENCEMAX_LENGTHS = (1024, 8192)
INFERENCEMAX_RANGE = 0.8


def _lengths(n: int, grid: bool) -> int | dict:
    if not grid:
        return n
    return {"dist": "uniform", "low": int(n * INFERENCEMAX_RANGE), "high": n}


#: the columns that name one silicon configuration (its repeats are dropped, the first kept)
SILICON_KEYS = ("model_path", "system", "precision", "isl", "osl", "batch_size", "tp_size",
                "moe_tp_size", "moe_ep_size", "attention_dp_size")


def silicon_cases(requests_per_client: int = 10,
                  skipped: dict[str, int] | None = None, path: Path | None = None) -> list[Case]:
    """Closed-loop cases of the shipped vLLM rows of AIConfigurator's silicon sample (or of
    `path`, rows in its layout: `docs/experiments/minimax_check.py`). Rows it leaves out are
    counted in `skipped` (reason -> rows) when given."""
    df = pd.read_csv(path if path is not None else measured_dir() / "silicon_vllm.csv")
    skip = skipper(skipped)
    if "backend" in df.columns:  # (upstream's sample: SGLang and TensorRT-LLM rows too)
        vllm = [is_vllm(r) for r in df.itertuples(index=False)]
        for r in df[[not v for v in vllm]].itertuples(index=False):
            skip(f"backend {r.backend} rows (wrpsim's engines are vLLM's)")
        df = df[vllm]
    keys = list(SILICON_KEYS)
    # the sample repeats some configurations (verbatim, or measured again): the first row kept
    df = df.drop_duplicates(keys)
    out = []

    for r in df.itertuples(index=False):
        model = catalog_model(r.model_path)
        gpu = SYSTEMS.get(r.system)
        if model is None:
            skip(f"model {r.model_path} is no catalog entry's source")
            continue
        if gpu is None:
            skip(f"system {r.system} is not mapped to a catalog GPU (valid: "
                 f"{', '.join(sorted(k for k in SYSTEMS if not k[0].isupper()))})")
            continue
        if GAP_ANALYSIS in str(r.silicon_data_source):
            skip("AIConfigurator's gap-analysis rows (protocol unpublished; not a closed loop "
                 "at the stated concurrency)")
            continue
        if not (r.tp_size > 0):
            skip("no tp_size (a disaggregated row)")
            continue
        if r.batch_size > MAX_CONCURRENCY:
            skip(f"concurrency above {MAX_CONCURRENCY} (request count and max_num_seqs not "
                 "recorded)")
            continue
        tp = int(r.tp_size)
        if not math.isnan(r.attention_dp_size) and r.attention_dp_size > 1:
            # (the sample's only such rows are MiniMax-M2.5's and Kimi-K2.5's, labelled TP 2 x
            # DP 2 / TP 4 x DP 4 with EP 4 / 16, at concurrencies whose configurations ran no
            # data-parallel attention: the Kimi scripts never did, MiniMax's FP8 scripts had
            # no such mode, its FP4 ones ran DP = TP on TP GPUs only from 256 clients)
            skip("attention data parallelism as labelled (TP x DP GPUs, EP = TP x DP), which "
                 "no configuration of these rows' InferenceMAX scripts ran: what they ran is "
                 "not known")
            continue
        moe_tp = r.moe_tp_size if not math.isnan(r.moe_tp_size) else tp
        moe_ep = r.moe_ep_size if not math.isnan(r.moe_ep_size) else 1
        if int(moe_tp) * int(moe_ep) != tp:
            skip("MoE TP x EP different from TP")
            continue
        ep = int(moe_ep) if moe_ep > 1 else 1
        prec = _precision(model, str(r.gemm_quant_mode), str(r.moe_quant_mode), r.system)
        # NVIDIA's ModelOpt FP8 / NVFP4 checkpoints (InferenceMAX's Llama and Kimi) carry FP8
        # KV-cache scales, so vLLM keeps the KV cache in FP8
        kv = "fp8" if prec in ("fp8", "fp4") else "auto"
        if model in BLOCK_FP8_CHECKPOINTS and prec == "fp8":
            prec, kv = "fp8_block", "auto"  # (the maker's own 128 x 128 block-FP8 weights)
        if prec == "fp4" and model in NVFP4_ATTN_BF16:
            prec = "fp4_attn_bf16"  # (NVIDIA's NVFP4 release keeps attention in BF16)
        if model.startswith("gpt-oss"):
            kv = GPTOSS_KV.get(r.system, "auto")
        c = int(r.batch_size)
        grid = r.isl in INFERENCEMAX_LENGTHS and r.osl in INFERENCEMAX_LENGTHS
        max_seqs = c if grid else BIG_GPU_SCHED["max_seqs"]
        pool = {"gpu": gpu, "model": model, "tp": tp, "ep": ep, "count": 1, "precision": prec,
                "kv_dtype": kv, "scheduler": {**BIG_GPU_SCHED, "max_seqs": max_seqs},
                "latency": {"kind": "engine",
                            "cudagraph_max_tokens": _capture_size(model, r.system, c),
                            "cudagraph_mixed": int((model, r.system) not in DECODE_ONLY_GRAPHS),
                            **_fusion_setting(model, r.system, r.backend_version, tp)}}
        script = SCRIPT_SETTINGS.get(model)
        if script is not None:
            why = script(pool, str(r.system), str(r.precision), str(r.silicon_data_source),
                         int(r.isl), r.backend_version)
            if why:
                skip(why)
                continue
        wl = {"name": "silicon", "source": {
            "kind": "closed_loop", "concurrency": c, "num_requests": requests_per_client * c,
            "prompt_tokens": _lengths(int(r.isl), grid),
            "output_tokens": _lengths(int(r.osl), grid)}}
        # the fit split: the H100 rows (every fitted constant but one), and the B200 Llama FP8
        # rows, the only ones bar their FP4 twins whose mixed steps run outside CUDA graphs
        # (`eager_layer_us`, fitted on them alone: docs/validation.md)
        fit = (gpu == "h100-80gb" and model in FIT_MODELS) or (
            (model, r.system) in DECODE_ONLY_GRAPHS and prec == "fp8")
        out.append(Case(
            "silicon", f"{r.model_path} {r.system} {prec} tp{tp} ep{ep} isl{r.isl} osl{r.osl} "
            f"c{c}", gpu, model, "fit" if fit else "test", pool,
            {"ttft_mean_s": r.silicon_ttft_ms / 1e3, "tpot_mean_s": r.silicon_tpot_ms / 1e3},
            workload=wl, info={"concurrency": c, "isl": int(r.isl), "osl": int(r.osl),
                               "vllm": str(r.silicon_data_source).rsplit("vllm-openai:", 1)[-1]
                               if "vllm-openai:" in str(r.silicon_data_source) else ""}))
    return out
