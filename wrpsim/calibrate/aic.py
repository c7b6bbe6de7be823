"""Compact kernel timings in NVIDIA AIConfigurator's layout into an engine profile's tables.

Input layout (AIConfigurator `systems/data/<system>/`): `<op>/<framework>/<version>/*.parquet`,
one table per operator (only the `vllm` and `nccl` frameworks are read, and `trtllm` for the
fused all-reduce's kernel), latencies in ms
measured with CUDA events on one GPU. A version folder that holds only `reuse.yaml` points at
an older one; the newest folder with the table is used. An optional table with no row of the
kernels read is not written.

Output: one Parquet file per operator family in `out_dir`, columns normalised (latency `ms` as
float32, sizes as int32; names below). Every row is a measurement; nothing is fitted here:

- `gemm.parquet`: dtype, m, n, k, ms — `y = x W^T` with x of m × k (m = tokens) and W of n × k;
  dtype is the weight/GEMM precision (`bf16`, `fp8` per-tensor, `fp8_block`, `fp4`). The
  `m = 16 j + 1` tile-boundary points are dropped (they differ from `16 j` by < 10 %) and the
  time is made non-decreasing in m by its lower envelope, t(m) = min over m' >= m of t(m') (a
  smaller GEMM of the same shape need not be slower; the few inversions, such as a slow m = 1
  kernel, are heuristics picking a worse tile the engine's padded CUDA graphs avoid).
- `attn_prefill.parquet`: kv_dtype, heads, kv_heads, head_dim, window, batch, isl, ms — causal
  self-attention of `batch` prompts of `isl` tokens (no cached prefix).
- `attn_decode.parquet`: kv_dtype, heads, kv_heads, head_dim, window, batch, ctx, ms — one
  decode step of `batch` sequences with `ctx` tokens already in their KV cache.
- `allreduce.parquet`: tp, elements, graph, ms — vLLM's custom all-reduce of `elements` bf16
  values over `tp` GPUs, inside a CUDA graph (`graph` = 1) or eagerly (0).
- `allreduce_fused.parquet`: tp, elements, ms — TensorRT-LLM's custom all-reduce
  (AIConfigurator's `comm/trtllm/<version>/custom_allreduce_perf`, bf16 rows, strategy AUTO, no
  fusion op) of `elements` bf16 values over `tp` GPUs: its one- / two-shot kernels are the ones
  FlashInfer's `trtllm_allreduce_fusion` runs when vLLM fuses the all-reduce with the RMSNorm
  after it (`fuse_allreduce_rms`; the norm's arithmetic rides in the kernel's epilogue); at large
  messages AUTO may time another strategy, which the model never takes where it is slower
  than vLLM's own. Written where the folder has that table.
- `nccl.parquet`: op, tp, elements, ms — NCCL collectives (`all_gather`, `reduce_scatter`,
  `all_reduce`, `alltoall`) of `elements` half-precision values over `tp` GPUs.
- `moe.parquet`: dtype, hidden, inter, topk, experts, moe_tp, moe_ep, tokens, ms — the fused MoE
  layer (routing, expert GEMMs, combine) under the `power_law_1.01` token-to-expert
  distribution (real routers are skewed; `balanced` is the optimistic case). MXFP4 experts
  come as three kernels an engine chooses between, kept apart because their speed differs by
  up to 3x at prefill sizes: `mxfp4` (BF16 activations, the checkpoint's default kernel:
  OpenAI's Triton kernel on Hopper, FlashInfer TRT-LLM on Blackwell), `mxfp4_marlin` (Marlin
  W4A16, vLLM's `VLLM_MXFP4_USE_MARLIN=1`) and `mxfp4_mxfp8` (MXFP8 activations on the FP8
  tensor cores, vLLM's `VLLM_USE_FLASHINFER_MOE_MXFP4_MXFP8=1`; Blackwell only). A row
  measured faster than reading the least weight it must (a token's `topk` experts) from DRAM
  was timed from the L2 cache (the collector repeats one call; the L40S's 96 MB hold one
  token's experts of a small MoE): it is retimed from the nearest valid token count by the
  roofline ratio (`replace_cache_resident`) — the counterpart of the lower envelope.
- `moe_triton.parquet`: the same layout for vLLM's Triton fused-MoE kernel (`fused_experts`,
  AIConfigurator's kernel label `vllm_fused_moe`; BF16, FP8 and block-FP8 experts), from the
  newest version folder with rows of that label (newer collections label Triton otherwise,
  e.g. H100's `..._triton_tritonexperts` under 0.24, and are not read for this table) — where
  the engine's own table times another kernel (vLLM 0.24 on Blackwell: FlashInfer's
  TensorRT-LLM experts) the Triton kernel is what older engines ran, and what vLLM runs with
  `VLLM_USE_FLASHINFER_MOE_FP16=0` / `VLLM_USE_FLASHINFER_MOE_FP8=0` and DeepGEMM off (engine
  constant `moe_triton`). Written where the folder holds such rows.
- `mla_prefill.parquet` / `mla_decode.parquet`: kv_dtype, gemm, heads, batch, isl | ctx, ms —
  one whole multi-head latent attention module (DeepSeek-V3's: its q / kv down- and
  up-projections in precision `gemm`, norms, RoPE, the KV-cache write, the attention kernels with
  the absorbed per-head products in decode, the output projection) with `heads` heads on the GPU,
  inside a CUDA graph: `batch` fresh prompts of `isl` tokens, or one decode step of `batch`
  sequences with `ctx` cached tokens. meta.json records the module's attention shape
  (`MLA_MODULES`), which a model must share for the tables to apply. Decode rows come from one
  backend per KV and GEMM dtype (the kernel choice below); prompt rows pool every backend's
  (median per cell): the MLA backends share the prefill attention kernels — where two measured
  the same cell they agree within a few per cent on Hopper — and each covers only part of the
  length range (FlashAttention-MLA up to 512 tokens, FlashAttention from 2,048).
- `dsa_prefill.parquet` / `dsa_decode.parquet`: the same layout for DeepSeek-V3.2's attention
  module (MLA with DeepSeek Sparse Attention: the lightning indexer's projections, key cache
  and scoring of every cached key, its top-2,048 pick, the sparse MLA kernels: vLLM's
  FLASHMLA_SPARSE backend, FLASHINFER_MLA_SPARSE on B200 with FP8 KV and at 8 / 16 heads),
  `DSA_MODULES`; prompt rows are the median of the table's two
  repeats (`step` 0 and 128).
- `gdn_prefill.parquet`: k_heads, key_dim, v_heads, value_dim, batch, isl, ms — the Gated
  DeltaNet (Qwen3-Next / Qwen3.5 linear attention) layer's prefill kernels on one GPU's heads:
  the causal convolution plus the chunked delta rule (FlashInfer's on H100 / H200 / B200,
  fla's Triton kernel on the L40S), `batch` fresh prompts of `isl` tokens; the projections
  around them are GEMMs.

Quantised GEMM cells slower than BF16: a quantised GEMM reads at most half the weight bytes
of a BF16 one, so where the measured time of a cell exceeds the BF16 time of the same (m, n, k)
it was timed on a path the engine does not take there (block-scaled FP8: a per-call host cost
of 90-330 us at m = 1 outside a CUDA graph; per-tensor FP8 CUTLASS on B200 at small m). The
tables keep every measurement; meta.json records per dtype the share of such cells, and the
model (`wrpsim.pool.kernels.tables.Kernels.gemm`) times those cells from BF16 by the roofline
ratio. A dtype with every cell slower than BF16 is left out of the table (meta's share says
1.0): none of it was timed on the engine's path — AIConfigurator's block-FP8 sweep on the RTX
PRO 6000 under vLLM 0.24 is 518 cells of n, k <= 128 at a flat 0.18 ms, ~100x BF16 — and
the model times it from another precision's table by the roofline ratio, as a dtype never
measured (`tables.gemm_source`: FP8's where the GPU has FP8 rows).

Kernel choice: where a table holds several kernels for one dtype (e.g. DeepGEMM and CUTLASS for
block-scaled FP8; the MLA decode backends per KV and GEMM dtype), the kernel with the most
measurements is kept — the collector sweeps the engine's default kernel over the full grid and
alternatives on a subset — and its name is recorded in `meta.json` next to the tables, with the
source version of every table. For MoE the
choice is made per parallel layout (experts sharded by tensor parallelism, `tp`, or whole experts
spread by expert parallelism, `ep`; meta keys `<dtype>/<layout>`), because the engine picks the
kernel per layout: vLLM 0.24 on Hopper runs block-FP8 experts with Triton under TP and with
FlashInfer CUTLASS under EP, and the tables measure each only in its own layout.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from wrpsim.errors import ConfigError

#: AIConfigurator dtype names -> wrpsim precision names
GEMM_DTYPES = {"bfloat16": "bf16", "fp8": "fp8", "fp8_block": "fp8_block", "nvfp4": "fp4"}
MOE_DTYPES = {"bfloat16": "bf16", "fp8": "fp8", "fp8_block": "fp8_block", "nvfp4": "fp4",
              "w4a16_mxfp4": "mxfp4", "int4_wo": "int4", "w4a8_mxfp4_mxfp8": "mxfp4_mxfp8"}
KV_DTYPES = {"bfloat16": "bf16", "fp8": "fp8"}
MOE_DISTRIBUTION = "power_law_1.01"
#: the tables of one profile and the AIConfigurator tables they come from: (op dir, file stem)
SOURCES = {
    "gemm": ("gemm", "gemm_perf"),
    "attn_prefill": ("attention", "context_attention_perf"),
    "attn_decode": ("attention", "generation_attention_perf"),
    "allreduce": ("comm", "custom_allreduce_perf"),
    "allreduce_fused": ("comm", "custom_allreduce_perf"),
    "nccl": ("comm", "nccl_perf"),
    "moe": ("moe", "moe_perf"),
    "moe_triton": ("moe", "moe_perf"),
    "mla_prefill": ("mla", "mla_context_module_perf"),
    "mla_decode": ("mla", "mla_generation_module_perf"),
    "dsa_prefill": ("sparse_attention", "dsa_context_module_perf"),
    "dsa_decode": ("sparse_attention", "dsa_generation_module_perf"),
    "gdn_prefill": ("linear_attention", "gdn_perf"),
}
#: the attention shape of the MLA module tables' model (its config.json numbers), by the
#: tables' `model` column: the collector times DeepSeek-V3's attention module with `num_heads`
#: overridden (AIConfigurator `collector/vllm/collect_mla_module.py`)
MLA_MODULES = {"deepseek-ai/DeepSeek-V3": {
    "hidden": 7168, "q_lora_rank": 1536, "kv_lora_rank": 512, "qk_rope_head_dim": 64,
    "qk_nope_head_dim": 128, "v_head_dim": 128}}
#: the attention shape of the DSA module tables' model kept (`model` column; the tables also
#: time GLM-5's, not in the catalog): DeepSeek-V3.2's MLA with its lightning indexer
#: (AIConfigurator `collector/vllm/collect_dsa_module.py`; vLLM's sparse MLA backends)
DSA_MODULES = {"deepseek-ai/DeepSeek-V3.2": {
    **MLA_MODULES["deepseek-ai/DeepSeek-V3"], "index_topk": 2048, "index_heads": 64,
    "index_head_dim": 128}}
REQUIRED = ("gemm", "attn_prefill", "attn_decode")
#: the AIConfigurator columns each table is read from (a table lacking one is refused by name)
_ATTN = ("kv_cache_dtype", "num_heads", "num_key_value_heads", "head_dim", "batch_size",
         "latency")
_MODULE = ("model", "mla_dtype", "kv_cache_dtype", "gemm_type", "num_heads", "batch_size",
           "isl", "step", "latency")
_MOE_COLUMNS = ("moe_dtype", "distribution", "hidden_size", "inter_size", "topk",
                "num_experts", "moe_tp_size", "moe_ep_size", "num_tokens", "latency")
#: AIConfigurator's kernel label of vLLM's Triton fused-MoE kernel, and the precisions of it
#: `moe_triton.parquet` keeps (the Triton kernel's own W16A16 / W8A8 paths)
TRITON_MOE = "vllm_fused_moe"
TRITON_MOE_DTYPES = ("bf16", "fp8", "fp8_block")
COLUMNS = {
    "gemm": ("gemm_dtype", "m", "n", "k", "latency"),
    "attn_prefill": (*_ATTN, "isl"), "attn_decode": (*_ATTN, "step"),
    "allreduce": ("num_gpus", "message_size", "backend", "latency"),
    "allreduce_fused": ("num_gpus", "message_size", "latency"),
    "nccl": ("nccl_dtype", "op_name", "num_gpus", "message_size", "latency"),
    "moe": _MOE_COLUMNS, "moe_triton": _MOE_COLUMNS,
    "mla_prefill": _MODULE, "mla_decode": _MODULE, "dsa_prefill": _MODULE,
    "dsa_decode": _MODULE,
    "gdn_prefill": ("phase", "kernel_source", "num_k_heads", "head_k_dim", "num_v_heads",
                    "head_v_dim", "batch_size", "seq_len", "latency"),
}
#: the column whose values pick the rows read, and those values, of the required tables (named
#: when a table has none of them)
_DTYPE_COLUMN = {"gemm": ("gemm_dtype", GEMM_DTYPES), "attn_prefill": ("kv_cache_dtype",
                 KV_DTYPES), "attn_decode": ("kv_cache_dtype", KV_DTYPES)}
#: BF16 GEMMs of at least this many FLOPs (2 m n k) are compute-bound: their median rate tells
#: whether the latencies are in milliseconds (`check_units`)
UNIT_CHECK_FLOPS = 1e11


def _read(path: Path, name: str) -> pd.DataFrame:
    """One AIConfigurator table, its columns (`COLUMNS`) and latencies (a number > 0, ms)
    checked; `ConfigError` naming the file otherwise."""
    try:
        df = pd.read_parquet(path)
    except Exception as exc:  # (pyarrow raises its own kinds for a file that is not Parquet)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"kernels: {path}: cannot read it as Parquet ({first})") from None
    missing = [c for c in COLUMNS[name] if c not in df.columns]
    if missing:
        raise ConfigError(f"kernels: {path}: missing column(s) {missing}; AIConfigurator's "
                          f"{path.stem} has {', '.join(COLUMNS[name])}")
    lat = pd.to_numeric(df["latency"], errors="coerce").to_numpy(np.float64)
    bad = ~(np.isfinite(lat) & (lat > 0))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        first = df["latency"].iloc[i]
        first = first.item() if hasattr(first, "item") else first  # (a numpy scalar's repr)
        raise ConfigError(f"kernels: {path}: {int(bad.sum()):,} of {len(df):,} rows have a "
                          f"latency that is not a number > 0 (the first, row {i + 1}: "
                          f"{first!r}); latencies are milliseconds")
    return df


def _no_rows(path: Path, name: str, raw: pd.DataFrame) -> ConfigError:
    """The error for a required table with no row of a dtype read: its dtype column's values."""
    col, valid = _DTYPE_COLUMN[name]
    got = sorted({str(v) for v in raw[col]})[:5] if col in raw.columns else []
    return ConfigError(f"kernels: {path}: no row with {col} in {', '.join(valid)} "
                       f"(AIConfigurator's names), got {', '.join(got) or 'no rows'}")


def _figure(x: float) -> str:
    """A positive number as read: whole with thousands separators from 100, else three
    significant digits."""
    return f"{x:,.0f}" if x >= 100 else f"{x:.3g}"


def check_units(path: Path, gemm: pd.DataFrame, gpu) -> None:
    """`ConfigError` when the BF16 GEMMs big enough to be compute-bound run, at the median, over
    three times the GPU's peak (latencies in seconds, or of another GPU) or under a hundredth of
    it (microseconds): a table in other units would time every iteration a thousand times off."""
    big = gemm[(gemm["dtype"] == "bf16")
               & (2.0 * gemm["m"] * gemm["n"] * gemm["k"] >= UNIT_CHECK_FLOPS)]
    peak = float(getattr(gpu, "bf16_tflops", 0.0) or 0.0) * 1e12
    if big.empty or peak <= 0:
        return
    rate = float(np.median(2.0 * big["m"] * big["n"] * big["k"] / (big["ms"] * 1e-3)))
    if rate > 3 * peak or rate < peak / 100:
        raise ConfigError(
            f"kernels: {path}: its large BF16 GEMMs run at {_figure(rate / 1e12)} TFLOP/s "
            f"(median of {len(big):,}), {_figure(rate / peak)} x {gpu.name}'s peak of "
            f"{peak / 1e12:,.0f}: "
            f"latencies must be milliseconds of that GPU")


def _version_key(name: str) -> tuple:
    """Sort key of a version folder name: its release numbers, then a pre-release (`rc`, `a`,
    `b`, `dev` and its number) before the release itself (1.3.0rc10 < 1.3.0rc20 < 1.3.0)."""
    import re

    m = re.match(r"(\d+(?:\.\d+)*)[.-]?(?:(rc|a|b|dev)(\d*))?", name)
    if m is None:
        return ((-1,), 0, 0)
    release = tuple(int(p) for p in m.group(1).split("."))
    pre = (0, int(m.group(3) or 0)) if m.group(2) else (1, 0)
    return (release, *pre)


#: the framework folders read: the engine's own kernels (`vllm`) and the collectives library
#: (`nccl`); AIConfigurator's SGLang and TensorRT-LLM tables time other kernels
FRAMEWORKS = ("vllm", "nccl")
#: tables read from another framework's folder: the fused all-reduce is TensorRT-LLM's kernel,
#: which vLLM calls through FlashInfer (AIConfigurator times vLLM's own all-reduce only)
TABLE_FRAMEWORKS = {"allreduce_fused": ("trtllm",)}


def find_table(system_dir: Path, op: str, stem: str,
               frameworks: tuple[str, ...] = FRAMEWORKS) -> Path | None:
    """The newest `<op>/<framework>/<version>/<stem>.parquet` under `system_dir` of a framework
    in `frameworks`, or None."""
    hits = _by_version(p for fw in frameworks
                       for p in system_dir.glob(f"{op}/{fw}/*/{stem}.parquet"))
    return hits[-1] if hits else None


def _by_version(paths) -> list[Path]:
    """`paths` (`<version>/<file>`) oldest version first (`_version_key`; ties by path, so the
    order does not depend on the file system's)."""
    return sorted(paths, key=lambda p: (_version_key(p.parent.name), str(p)))


def _pick_kernel(df: pd.DataFrame, by: list[str]) -> tuple[pd.DataFrame, dict]:
    """Keep, per group of `by`, the kernel_source with the most rows; return it and the choice
    (no choice when `by` is empty: every kernel of the table is kept, e.g. graph and eager)."""
    if "kernel_source" not in df.columns or not by:
        return df, {}
    counts = df.groupby([*by, "kernel_source"]).size().reset_index(name="n")
    order = [True] * len(by) + [False, True]
    best = counts.sort_values([*by, "n", "kernel_source"], ascending=order).drop_duplicates(by)
    keep = df.merge(best[[*by, "kernel_source"]], on=[*by, "kernel_source"])
    choice = {"/".join(str(v) for v in row[:-1]): row[-1]
              for row in best[[*by, "kernel_source"]].itertuples(index=False)}
    return keep, choice


def _gemm(df: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    df = df[df["gemm_dtype"].isin(GEMM_DTYPES)].copy()
    df["dtype"] = df["gemm_dtype"].map(GEMM_DTYPES)
    m = df["m"]
    df = df[~((m > 16) & (m % 16 == 1))]
    df = df.groupby(["dtype", "n", "k", "m"], as_index=False)["latency"].median()
    ratios = _ratios_to_bf16(df)
    slower = slower_than_bf16(ratios)
    never = [dt for dt, r in ratios.items() if bool((r > 1.0).all())]
    if never:  # no cell of it on the engine's path: the dtype is left unmeasured
        df = df[~df["dtype"].isin(never)]
    df = lower_envelope(df.rename(columns={"latency": "ms"}), ["dtype", "n", "k"], "m")
    return df[["dtype", "m", "n", "k", "ms"]], slower


def dtypes_of(table) -> list[str]:
    """The precisions (`dtype` column) a compacted table holds, sorted: meta.json's `dtypes`,
    which `wrpsim.pool.kernels.tables` reads instead of the Parquet file."""
    return sorted({str(d) for d in table["dtype"]})


def lower_envelope(df: pd.DataFrame, keys: list[str], size: str) -> pd.DataFrame:
    """`df` sorted by `keys` and `size`, its `ms` made non-decreasing in `size` within each
    group of `keys` by the lower envelope t(x) = min over x' >= x of t(x') (module doc)."""
    df = df.sort_values([*keys, size])
    rev = df.iloc[::-1]
    df["ms"] = rev.groupby(keys)["ms"].cummin().iloc[::-1]
    return df


def _ratios_to_bf16(df: pd.DataFrame) -> dict:
    """{dtype: its cells' times over BF16's at the same (m, n, k)} (cells BF16 measured)."""
    base = df[df["dtype"] == "bf16"].set_index(["m", "n", "k"])["latency"]
    out = {}
    for dt, rows in df[df["dtype"] != "bf16"].groupby("dtype"):
        ratio = (rows.set_index(["m", "n", "k"])["latency"] / base).dropna()
        if len(ratio):
            out[str(dt)] = ratio
    return out


def slower_than_bf16(ratios: dict) -> dict:
    """{dtype: share of its cells measured slower than BF16 at the same (m, n, k)}, from
    `_ratios_to_bf16`."""
    return {dt: round(float((r > 1.0).mean()), 3) for dt, r in ratios.items()}


def _attention(df: pd.DataFrame, decode: bool) -> pd.DataFrame:
    df = df[df["kv_cache_dtype"].isin(KV_DTYPES)].copy()
    df["kv_dtype"] = df["kv_cache_dtype"].map(KV_DTYPES)
    if "window_size" not in df.columns:
        df["window_size"] = 0
    df = df.rename(columns={"num_heads": "heads", "num_key_value_heads": "kv_heads",
                            "window_size": "window", "batch_size": "batch", "latency": "ms"})
    size = ["ctx"] if decode else ["isl"]
    if decode:
        df["ctx"] = df["step"]
    keys = ["kv_dtype", "heads", "kv_heads", "head_dim", "window", "batch", *size]
    return df.groupby(keys, as_index=False)["ms"].median()[[*keys, "ms"]]


def _mla(df: pd.DataFrame, decode: bool) -> tuple[pd.DataFrame, dict]:
    """MLA module rows (BF16 compute) -> kv_dtype, gemm, heads, batch, isl | ctx, ms; and the
    module's attention shape (`MLA_MODULES`)."""
    df = df[(df["mla_dtype"] == "bfloat16") & df["kv_cache_dtype"].isin(KV_DTYPES)
            & df["gemm_type"].isin(GEMM_DTYPES)].copy()
    models = sorted(set(df["model"].astype(str)))
    if not models:
        raise ConfigError("kernels: MLA module table has no rows with mla_dtype bfloat16, "
                          f"kv_cache_dtype in {sorted(KV_DTYPES)} and gemm_type in "
                          f"{sorted(GEMM_DTYPES)}")
    if len(models) != 1 or models[0] not in MLA_MODULES:
        raise ConfigError(f"kernels: MLA module tables of {models}; known: {sorted(MLA_MODULES)}")
    df["kv_dtype"] = df["kv_cache_dtype"].map(KV_DTYPES)
    df["gemm"] = df["gemm_type"].map(GEMM_DTYPES)
    df = df.rename(columns={"num_heads": "heads", "batch_size": "batch", "latency": "ms"})
    size = "ctx" if decode else "isl"
    if decode:
        df["ctx"] = df["step"]
    keys = ["kv_dtype", "gemm", "heads", "batch", size]
    return df.groupby(keys, as_index=False)["ms"].median()[[*keys, "ms"]], MLA_MODULES[models[0]]


def _dsa_rows(df: pd.DataFrame) -> pd.DataFrame:
    """A DSA module table's rows of the `DSA_MODULES` model (before the kernel choice: the
    tables also time GLM-5's); `ConfigError` naming the table's models when it has none."""
    known = df["model"].astype(str).isin(DSA_MODULES)
    if not known.any():
        raise ConfigError(f"kernels: DSA module tables of {sorted(set(df['model']))}; known: "
                          f"{sorted(DSA_MODULES)}")
    return df[known]


def _dsa(df: pd.DataFrame, decode: bool) -> tuple[pd.DataFrame, dict]:
    """DSA module rows (`_dsa_rows`, BF16 compute) -> the `_mla` layout and the module's shape;
    prompt rows pool the table's two `step` repeats (median per cell)."""
    tab, _ = _mla(df.assign(model="deepseek-ai/DeepSeek-V3"), decode)
    return tab, DSA_MODULES[str(df["model"].iloc[0])]


def gdn_family(kernel_source: pd.Series) -> pd.Series:
    """A Gated DeltaNet kernel's part of the layer: `conv` (the causal convolution) or `rule`
    (the chunked delta rule: FlashInfer's or fla's Triton kernel)."""
    return np.where(kernel_source.astype(str).str.contains("conv1d"), "conv", "rule")


def _gdn(df: pd.DataFrame) -> pd.DataFrame:
    """Gated DeltaNet prefill rows -> k_heads, key_dim, v_heads, value_dim, batch, isl, ms: the
    causal convolution and the chunked delta rule of `batch` fresh prompts of `isl` tokens,
    summed (cells with both measured; the median where several models share the shape)."""
    df = df[df["phase"] == "context"].rename(columns={
        "num_k_heads": "k_heads", "head_k_dim": "key_dim", "num_v_heads": "v_heads",
        "head_v_dim": "value_dim", "batch_size": "batch", "seq_len": "isl", "latency": "ms"})
    keys = ["k_heads", "key_dim", "v_heads", "value_dim", "batch", "isl"]
    parts = df.groupby([*keys, "family"], as_index=False)["ms"].median()
    both = parts.groupby(keys)["family"].transform("nunique") == 2
    return parts[both].groupby(keys, as_index=False)["ms"].sum()[[*keys, "ms"]]


def _allreduce(df: pd.DataFrame) -> pd.DataFrame:
    df = df.rename(columns={"num_gpus": "tp", "message_size": "elements", "latency": "ms"})
    df["graph"] = (df["backend"] == "vllm_graph").astype(int)
    keys = ["tp", "graph", "elements"]
    return df.groupby(keys, as_index=False)["ms"].median()[[*keys, "ms"]]


def _allreduce_fused(df: pd.DataFrame) -> pd.DataFrame:
    if "allreduce_dtype" in df.columns:  # (the fused all-reduce's input is the bf16 hidden state)
        df = df[df["allreduce_dtype"] == "bfloat16"]
    df = df.rename(columns={"num_gpus": "tp", "message_size": "elements", "latency": "ms"})
    keys = ["tp", "elements"]
    return df.groupby(keys, as_index=False)["ms"].median()[[*keys, "ms"]]


def _nccl(df: pd.DataFrame) -> pd.DataFrame:
    df = df[df["nccl_dtype"] == "half"].rename(columns={"op_name": "op", "num_gpus": "tp",
                                                        "message_size": "elements",
                                                        "latency": "ms"})
    keys = ["op", "tp", "elements"]
    return df.groupby(keys, as_index=False)["ms"].median()[[*keys, "ms"]]


def moe_variant(moe_dtype: pd.Series, kernel_source: pd.Series | None) -> pd.Series:
    """The wrpsim MoE dtype of each row: `MOE_DTYPES`, with MXFP4 rows timed by a Marlin kernel
    split off as `mxfp4_marlin` (see the module docstring)."""
    out = moe_dtype.map(MOE_DTYPES)
    if kernel_source is not None:
        marlin = (out == "mxfp4") & kernel_source.astype(str).str.contains("marlin")
        out = out.where(~marlin, "mxfp4_marlin")
    return out


def moe_dram_floor_s(tab: pd.DataFrame, experts_read, gpu) -> np.ndarray:
    """Least seconds an MoE row can take with its weights in DRAM: `experts_read` experts' up
    and down matrices (the TP slice; gated FFNs read a third matrix, which only raises the
    bound) streamed once at the GPU's memory bandwidth (`gpus.yaml` `mem_bw_gbs`)."""
    from wrpsim.pool.kernels import roofline as rl

    wbytes = tab["dtype"].map(lambda d: rl.WEIGHT_BYTES.get(d, 0.0)).to_numpy(np.float64)
    per_expert = 2.0 * tab["hidden"].to_numpy(np.float64) * tab["inter"] / tab["moe_tp"]
    return np.asarray(experts_read, np.float64) * per_expert * wbytes / (gpu.mem_bw_gbs * 1e9)


def replace_cache_resident(tab: pd.DataFrame, gpu) -> tuple[pd.DataFrame, int]:
    """The MoE rows of `tab` measured faster than their DRAM floor (`moe_dram_floor_s` of the
    `topk` experts every token reads; with expert parallelism a rank may hold none of a token's
    experts, so those rows have no floor), each timed instead from the nearest valid row of the
    same shape (in log tokens, the larger on a tie) by the ratio of roofline times
    (`wrpsim.pool.kernels.roofline.moe_roofline`), as every unmeasured size is, and at least its
    floor (the nearest row may itself be partly cached); and how many.

    Why: a collector times the same call over and over, so a layer whose weights fit in the
    GPU's L2 cache (the experts of one token on an L40S, 96 MB) is timed from the cache; in a
    model the other layers' weights evict them. Only the L40S tables have such rows (54, almost
    all at one token; the other GPUs' rows are all >= 1.2 x their floor). The counterpart of
    the lower envelope, which removes rows too slow for their size."""
    from wrpsim.pool.kernels import roofline as rl

    tab = tab.reset_index(drop=True)
    least = np.where(tab["moe_ep"] == 1, np.minimum(tab["topk"], tab["experts"]), 0)
    floor = moe_dram_floor_s(tab, least, gpu) * 1e3
    # (a row retimed to its floor and stored as float32 may sit an ulp below it: not again)
    bad = tab["ms"].to_numpy(np.float64) < floor * (1.0 - 1e-6)
    if not bad.any():
        return tab, 0
    keys = ["dtype", "hidden", "inter", "topk", "experts", "moe_tp", "moe_ep"]
    ms = tab["ms"].to_numpy(np.float64).copy()
    tab["_bad"] = bad
    for key, grp in tab.groupby(keys):
        ok = grp[~grp["_bad"]]
        if ok.empty:  # no valid row of this shape to carry over: at least the floor
            for idx in grp.index:
                ms[idx] = max(ms[idx], floor[idx])
            continue
        dtype, h, i, k, e, tp, ep = key
        for idx, row in grp[grp["_bad"]].iterrows():
            d = np.abs(np.log(ok["tokens"].to_numpy(np.float64) / row["tokens"]))
            near = ok.iloc[int(np.lexsort((-ok["tokens"].to_numpy(), d))[0])]
            t = np.array([row["tokens"], near["tokens"]], dtype=np.float64)
            r = rl.moe_roofline(t, int(h), int(i), int(k), int(e), int(tp), int(ep), dtype, gpu)
            ms[idx] = max(near["ms"] * r[0] / r[1], floor[idx])
    tab["ms"] = ms
    return tab.drop(columns="_bad"), int(bad.sum())


def _triton_moe(system_dir: Path) -> tuple[Path, pd.DataFrame] | None:
    """The newest vLLM `moe_perf` table under `system_dir` with rows AIConfigurator labels as
    vLLM's Triton fused-MoE kernel (`TRITON_MOE`; newer collections name the same kernel
    otherwise, e.g. `..._triton_tritonexperts`, and are not read here) in a precision it runs
    (`TRITON_MOE_DTYPES`) and the distribution the tables keep, and those rows; None when no
    version has them. The table is optional: a version whose file has no `kernel_source`
    column, or cannot be read, holds none."""
    for path in reversed(_by_version(system_dir.glob("moe/vllm/*/moe_perf.parquet"))):
        try:
            raw = _read(path, "moe")
        except ConfigError:
            continue
        if "kernel_source" not in raw.columns:
            continue
        raw = raw[(raw["kernel_source"] == TRITON_MOE)
                  & raw["moe_dtype"].map(MOE_DTYPES).isin(TRITON_MOE_DTYPES)
                  & (raw["distribution"] == MOE_DISTRIBUTION)]
        if len(raw):
            return path, raw
    return None


def _moe(df: pd.DataFrame) -> pd.DataFrame:
    df = df[df["moe_dtype"].isin(MOE_DTYPES) & (df["distribution"] == MOE_DISTRIBUTION)].copy()
    df["dtype"] = df["moe_variant"]  # set by `compact` before the kernel choice
    df = df.rename(columns={"hidden_size": "hidden", "inter_size": "inter",
                            "num_experts": "experts", "moe_tp_size": "moe_tp",
                            "moe_ep_size": "moe_ep", "num_tokens": "tokens", "latency": "ms"})
    keys = ["dtype", "hidden", "inter", "topk", "experts", "moe_tp", "moe_ep", "tokens"]
    return df.groupby(keys, as_index=False)["ms"].median()[[*keys, "ms"]]


_KERNEL_KEYS = {"gemm": ["gemm_dtype"], "attn_prefill": ["kv_cache_dtype", "head_dim"],
                "attn_decode": ["kv_cache_dtype", "head_dim"], "allreduce": [], "nccl": [],
                "allreduce_fused": [],
                "moe": ["moe_variant", "moe_layout"],
                "moe_triton": ["moe_variant", "moe_layout"],
                "mla_prefill": [],  # every backend's rows: see the module docstring
                "mla_decode": ["kv_cache_dtype", "gemm_type"],
                # (per head count: vLLM runs FlashInfer's sparse MLA at 8 / 16 heads a GPU
                # with BF16 KV on B200, FlashMLA's from 32)
                "dsa_prefill": ["kv_cache_dtype", "gemm_type", "num_heads"],
                "dsa_decode": ["kv_cache_dtype", "gemm_type", "num_heads"],
                "gdn_prefill": ["family"]}


def read_table(system_dir: Path, name: str, gpu=None) -> tuple[pd.DataFrame, dict] | None:
    """Table `name` (a key of `SOURCES`) of one AIConfigurator system folder, compacted, and
    its meta.json entry (source file, version, framework, device, kernel choice, rows); None
    when the folder has no such table or (an optional one) no row of the kernels read.
    `ConfigError` as `compact` says."""
    op, stem = SOURCES[name]
    if name == "moe_triton":
        got = _triton_moe(system_dir)
        if got is None:
            return None
        path, raw = got
    else:
        path = find_table(system_dir, op, stem, TABLE_FRAMEWORKS.get(name, FRAMEWORKS))
        if path is None:
            return None
        raw = _read(path, name)
    if name == "gdn_prefill":
        raw["family"] = gdn_family(raw["kernel_source"])
    if name in ("dsa_prefill", "dsa_decode"):  # (the kernel choice on the kept model's rows)
        raw = _dsa_rows(raw)
    if name in ("moe", "moe_triton"):
        raw["moe_variant"] = moe_variant(raw["moe_dtype"], raw.get("kernel_source"))
        raw["moe_layout"] = np.where(raw["moe_ep_size"] > 1, "ep", "tp")
    raw, kernels = _pick_kernel(raw, _KERNEL_KEYS[name])
    dropped: dict = {}
    module: dict = {}
    if name == "gemm":
        tab, dropped = _gemm(raw)
    elif name in ("attn_prefill", "attn_decode"):
        tab = _attention(raw, name == "attn_decode")
    elif name == "allreduce":
        tab = _allreduce(raw)
    elif name == "allreduce_fused":
        tab = _allreduce_fused(raw)
    elif name == "nccl":
        tab = _nccl(raw)
    elif name in ("mla_prefill", "mla_decode"):
        tab, module = _mla(raw, name == "mla_decode")
    elif name in ("dsa_prefill", "dsa_decode"):
        tab, module = _dsa(raw, name == "dsa_decode")
    elif name == "gdn_prefill":
        tab = _gdn(raw)
    else:  # (moe, moe_triton)
        tab = _moe(raw)
        if gpu is not None:
            tab, n_cached = replace_cache_resident(tab, gpu)
            dropped = {"cache_resident_rows": n_cached}
    if not len(tab):  # (no row of the kernels wrpsim reads)
        if name in REQUIRED:
            raise _no_rows(path, name, raw)
        return None
    if name == "gemm" and gpu is not None:
        check_units(path, tab, gpu)
    for c in tab.columns:
        if c == "ms":
            tab[c] = tab[c].astype(np.float32)
        elif tab[c].dtype.kind in "iuf":
            tab[c] = tab[c].astype(np.int32)
    device = str(raw["device"].iloc[0]) if "device" in raw.columns and len(raw) else ""
    entry = {
        "file": str(path.relative_to(system_dir)), "version": path.parent.name,
        "framework": path.parent.parent.name, "device": device, "kernels": kernels,
        "rows": len(tab)}
    if name == "gemm":  # the precisions measured (read without the Parquet file)
        entry["dtypes"] = dtypes_of(tab)
    if name == "gemm" and dropped:
        entry["share_slower_than_bf16"] = dropped
    elif dropped:
        entry.update(dropped)
    if module:
        entry["module"] = module
    return tab, entry


def compact(system_dir: str | Path, out_dir: str | Path, gpu=None) -> dict:
    """Write the compact tables of one AIConfigurator system folder into `out_dir`; return the
    provenance written to `out_dir/meta.json` (source file, version, kernel per dtype, rows).
    With `gpu` (the catalog GPU the folder measured), MoE rows faster than their DRAM floor are
    retimed (`replace_cache_resident`; meta `cache_resident_rows`). `ConfigError` if the folder
    lacks a required table (GEMM, prefill and decode attention) or one of its rows, or a table
    read lacks a column (`COLUMNS`), holds a latency that is not a number > 0, or GEMMs whose
    rate says they are not milliseconds of `gpu` (`check_units`); nothing is written then."""
    system_dir, out_dir = Path(system_dir), Path(out_dir)
    if not system_dir.is_dir():
        raise ConfigError(f"kernels: {system_dir} is not a directory")
    for name in REQUIRED:  # (before anything is written)
        op, stem = SOURCES[name]
        if find_table(system_dir, op, stem) is None:
            raise ConfigError(f"kernels: {system_dir} has no {op}/<framework>/<version>/"
                              f"{stem}.parquet of a framework read ({', '.join(FRAMEWORKS)}; "
                              f"AIConfigurator layout)")
    meta: dict = {"source": str(system_dir), "tables": {}}
    tables: dict = {}  # every table read and checked before anything is written
    for name in SOURCES:
        got = read_table(system_dir, name, gpu)
        if got is not None:
            tables[name], meta["tables"][name] = got
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, tab in tables.items():
        tab.to_parquet(out_dir / f"{name}.parquet", index=False, compression="zstd")
    (out_dir / "meta.json").write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n")
    return meta
