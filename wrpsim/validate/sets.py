"""The measured sets `wrpsim.validate` replays, each turned into simulation cases.

A `Case` is one measured run: the fleet it ran on (one pool), the workload (a trace frame or a
workload config), the measured metrics, and whether it belongs to the calibration's *fit* split
(used to fit the engine constants) or its *test* split (never seen by any fit). Sets:

- ``silicon``: NVIDIA AIConfigurator's end-to-end vLLM benchmarks (`pools/measured/
  silicon_vllm.csv`, Apache-2.0): closed loop at concurrency `batch_size`, mean TTFT and mean
  TPOT. Rows whose model, GPU and parallelism the catalog covers (no attention data
  parallelism; experts either TP-sharded or spread over the TP group). The rows on the
  InferenceMAX grid (isl, osl in {1024, 8192}) replay InferenceMAX's client: lengths uniform in
  [0.8 x isl, isl] and [0.8 x osl, osl] (`--random-range-ratio 0.8`), 10 x concurrency
  requests, `--max-num-seqs` = concurrency, `--max-num-batched-tokens 8192`; the other rows use
  fixed lengths and the same request count. MiniMax-M2.5's and Kimi-K2.5's rows take their own
  script's flags at their measurement date (`MINIMAX_SCRIPTS`, `KIMI_SCRIPTS`: `_script`).
- ``llmservingsim``: five runs from LLMServingSim (four vLLM 0.19, one 0.28;
  `pools/measured/llmservingsim/`, MIT), replayed request by request from their exact arrivals
  and lengths under the engine of their vLLM version (`run_engine`): mean and median TTFT, TPOT
  and end-to-end latency.
- ``mlenergy``: ML.ENERGY benchmark v3 (vLLM 0.11.1, H100 / B200; the leaderboard has no licence,
  so it is read from `mlenergy_dir` when given and never shipped): closed loop at concurrency
  `max_num_seqs`, output lengths from the model's published distribution, median ITL and
  average power per GPU.

Split: the fit split is ML.ENERGY's chat runs of Llama-3.1-8B, Llama-3.1-70B and Qwen3-30B-A3B
on H100 and B200 (the vllm-0.11 constants and the H100 / B200 power fits: dense and MoE, so the
power shape's "busy at all" term is told apart from its bandwidth term) and silicon's H100 rows
(Llama-3.1-70B FP8 and gpt-oss-120b: the vllm-0.24 constants) and B200 Llama-3.1-70B FP8 rows
(`eager_layer_us`); every other model, GPU, workload and the LLMServingSim runs are test cases.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

from wrpsim.metrics.summary import pct
from wrpsim.paths import catalog_dir

#: Hugging Face model ids of the measurements -> catalog names, where the catalog entry's
#: `source` does not already say it (`catalog_model`)
MODELS = {
    "meta-llama/Llama-3.1-8B": "llama3.1-8b", "meta-llama/Llama-3.1-8B-Instruct": "llama3.1-8b",
    "nvidia/Llama-3.1-8B-Instruct-FP8": "llama3.1-8b",
    "meta-llama/Llama-3.1-70B": "llama3.1-70b", "meta-llama/Llama-3.1-70B-Instruct": "llama3.1-70b",
    "meta-llama/Llama-3.3-70B-Instruct": "llama3.3-70b",
    "meta-llama/Llama-3.1-405B-Instruct": "llama3.1-405b",
    "meta-llama/Llama-3.1-405B-Instruct-FP8": "llama3.1-405b",
    "Qwen/Qwen3-8B": "qwen3-8b", "Qwen/Qwen3-14B": "qwen3-14b", "Qwen/Qwen3-32B": "qwen3-32b",
    "Qwen/Qwen3-30B-A3B-Instruct-2507": "qwen3-30b-a3b",
    "Qwen/Qwen3-Coder-30B-A3B-Instruct": "qwen3-30b-a3b",
    "Qwen/Qwen3-235B-A22B-FP8": "qwen3-235b-a22b",
    "Qwen/Qwen3-235B-A22B-Instruct-2507": "qwen3-235b-a22b",
    "Qwen/Qwen3-235B-A22B-Instruct-2507-FP8": "qwen3-235b-a22b",
    "Qwen/Qwen3-Coder-480B-A35B-Instruct": "qwen3-coder-480b-a35b",
    "Qwen/Qwen3-Coder-480B-A35B-Instruct-FP8": "qwen3-coder-480b-a35b",
    "deepseek-ai/DeepSeek-V3.1": "deepseek-v3", "deepseek-ai/DeepSeek-R1-0528": "deepseek-r1",
    "moonshotai/Kimi-K2.5": "kimi-k2.5", "openai/gpt-oss-120b": "gpt-oss-120b",
    "openai/gpt-oss-20b": "gpt-oss-20b", "google/gemma-3-12b-it": "gemma-3-12b",
    "google/gemma-3-27b-it": "gemma-3-27b",
    "nvidia/NVIDIA-Nemotron-Nano-9B-v2": "nemotron-nano-9b-v2",
    "nvidia/NVIDIA-Nemotron-Nano-12B-v2": "nemotron-nano-12b-v2",
    "meta-llama/Llama-4-Maverick-17B-128E-Instruct": "llama4-maverick",
    "meta-llama/Llama-4-Maverick-17B-128E-Instruct-FP8": "llama4-maverick",
    "nvidia/MiniMax-M2.5-NVFP4": "minimax-m2.5",  # (NVIDIA's NVFP4 release of MiniMax's)
}
#: release suffixes of a Hugging Face id that leave the architecture as it is
_RELEASE_SUFFIXES = ("-FP8", "-Instruct", "-Thinking", "-2507", "-0528", "-it", "-hf",
                     "-Base", "-chat")


def _base_id(hf_id: str) -> str:
    """`hf_id` lower-cased without its release suffixes (`_RELEASE_SUFFIXES`, repeatedly)."""
    s = hf_id.strip().lower()
    cut = True
    while cut:
        cut = False
        for suffix in _RELEASE_SUFFIXES:
            if s.endswith(suffix.lower()):
                s, cut = s[: -len(suffix)], True
    return s


def catalog_model(hf_id: str) -> str | None:
    """The catalog model a measurement's Hugging Face id names: `MODELS`; else the catalog
    entry (the shipped one or a user's `models.yaml`) whose `source` id — the text before
    " config.json" — is that id (case aside; a user's entry before a shipped one); else the
    one whose source id equals it without release suffixes (`_RELEASE_SUFFIXES`:
    Qwen/Qwen3-14B-FP8 has Qwen/Qwen3-14B's shapes), when exactly one entry does. None
    otherwise. Stand-ins (`source: "stand-in: ..."`) are never matched."""
    if hf_id in MODELS:
        return MODELS[hf_id]
    from wrpsim.pool.catalog import models

    want = str(hf_id).strip().lower()
    if not want:
        return None
    exact, loose = [], []
    for name, spec in models().items():  # (a user's new entries come after the shipped ones)
        src = str(spec.source or "").split(" config.json", 1)[0].strip()
        if not src or " " in src:
            continue
        if src.lower() == want:
            exact.append(name)
        elif _base_id(src) == _base_id(want):
            loose.append(name)
    if exact:
        return exact[-1]
    return loose[0] if len(loose) == 1 else None


SYSTEMS = {"h100_sxm": "h100-80gb", "h200_sxm": "h200-141gb", "b200_sxm": "b200-180gb",
           "b300_sxm": "b300-288gb",
           "H100": "h100-80gb", "H200": "h200-141gb", "B200": "b200-180gb",
           "RTX4090": "rtx4090-24gb", "RTXPRO6000": "rtxpro6000-96gb"}
#: vLLM's scheduler defaults for online serving on GPUs with >= 70 GiB (V1 engine)
BIG_GPU_SCHED = {"policy": "sarathi", "token_budget": 8192, "max_seqs": 1024, "block_size": 16}
METRICS = ("ttft", "tpot", "itl", "e2e", "power")


@dataclass
class Case:
    """One measured run to replay (see module docstring). `measured` maps metric keys
    (`ttft_mean_s`, `tpot_p50_s`, `itl_p50_s`, `power_w`, ...) to measured values."""

    set: str
    name: str
    gpu: str
    model: str
    split: str
    pool: dict
    measured: dict
    workload: dict | None = None
    trace: pd.DataFrame | None = None
    count: int = 1
    router: str = "round-robin"
    notes: str = ""
    info: dict = field(default_factory=dict)


def measured_dir() -> Path:
    return catalog_dir("pools") / "measured"


# ---------------------------------------------------------------------- silicon
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
        sched["max_seqs"] = s.get("max_seqs", 1024)
    sched["token_budget"] = 2 * isl if s.get("budget") == "2isl" else 8192
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


def _skipper(skipped: dict[str, int] | None):
    """A function that counts one left-out row under its reason in `skipped` (reason -> rows),
    or does nothing when `skipped` is None."""
    def skip(reason: str) -> None:
        if skipped is not None:
            skipped[reason] = skipped.get(reason, 0) + 1
    return skip


#: the columns that name one silicon configuration (its repeats are dropped, the first kept)
SILICON_KEYS = ("model_path", "system", "precision", "isl", "osl", "batch_size", "tp_size",
                "moe_tp_size", "moe_ep_size", "attention_dp_size")


def silicon_cases(requests_per_client: int = 10,
                  skipped: dict[str, int] | None = None, path: Path | None = None) -> list[Case]:
    """Closed-loop cases of the shipped vLLM rows of AIConfigurator's silicon sample (or of
    `path`, rows in its layout: `docs/experiments/minimax_check.py`). Rows it leaves out are
    counted in `skipped` (reason -> rows) when given."""
    df = pd.read_csv(path if path is not None else measured_dir() / "silicon_vllm.csv")
    keys = list(SILICON_KEYS)
    # the sample repeats some configurations (verbatim, or measured again): the first row kept
    df = df.drop_duplicates(keys)
    out = []
    skip = _skipper(skipped)

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
        max_seqs = c if grid else 1024
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


# ---------------------------------------------------------------------- LLMServingSim
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
                                  kv_dtype=dtype)
        got[dtype] = 16 * lat.kv_capacity_blocks(16, util)
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


# ---------------------------------------------------------------------- ML.ENERGY
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
                       n_gpu: int) -> int:
    """Requests of one ML.ENERGY run: the task's `num_requests` times the configuration's
    `num_request_repeats` (the benchmark sends the task's request list that many times), read
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
            return n * int((e.get("num_request_repeats") or [1])[0])
    return n


def _cell(r, key: str) -> float | None:
    """A number column of llm_configs.csv; None where the row leaves it empty."""
    v = getattr(r, key, None)
    try:
        v = float(v)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


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
    skip = _skipper(skipped)

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
        n_req = _mlenergy_requests(root, r.task, r.model_id, r.gpu_model, mns, n_gpu)
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
            "kind": "closed_loop", "concurrency": mns, "num_requests": n_req,
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
