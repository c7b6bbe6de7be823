"""Compact an LLMServingSim layer profile (`profiler/perf/<hw>/<org>/<model>/<variant>/`) into
an engine profile's tables (the layout `wrpsim.calibrate.aic` writes, `aic.py` names the
columns).

LLMServingSim's profiler (casys-kaist/LLMServingSim, MIT) runs one layer of a model inside a
real vLLM engine (`meta.yaml`: vLLM version, GPU, the model's Hugging Face name, TP degrees)
and times each operator with CUDA events, in microseconds:

- `tp<N>/dense.csv` (layer, tokens, time_us): per-token operators; of them the projection GEMMs
  `qkv_proj`, `o_proj`, `gate_up_proj`, `down_proj` become `gemm.parquet` rows (dtype = the
  profile's variant, m = tokens; n, k from the model's config numbers and TP). The element-wise
  operators (norms, RoPE, activation) are not kept: wrpsim times those from the measured
  streaming bandwidth.
- `tp<N>/per_sequence.csv` (layer, sequences, time_us): `lm_head` becomes the GEMM of n = vocab
  / TP, k = hidden at m = sequences. Sampling is not kept (an engine constant counts its passes).
- `tp<N>/attention.csv` (prefill_chunk, kv_prefill, n_decode, kv_decode, time_us): one
  attention layer over a mixed batch. Its pure-decode rows (no prefill chunk) become
  `attn_decode.parquet` (batch = n_decode, ctx = kv_decode); its fresh-prompt rows (one chunk,
  no cached prefix, no decodes) become `attn_prefill.parquet` (batch 1, isl = chunk). Mixed and
  prefix rows are not kept: wrpsim composes those from the two (`KernelLatency._prefill_attn`).

Each GEMM shape's time is made non-decreasing in m by its lower envelope, as for AIConfigurator.
The profile has no MoE, all-reduce or NCCL tables; an engine that names these tables for a GPU
also names a `roofline:` GPU for them (`wrpsim.pool.kernels.tables.Partial`).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from wrpsim.calibrate.aic import lower_envelope
from wrpsim.errors import ConfigError

#: LLMServingSim variant name -> wrpsim GEMM precision
VARIANTS = {"bf16": "bf16", "fp16": "bf16"}
GEMM_LAYERS = ("qkv_proj", "o_proj", "gate_up_proj", "down_proj")


def is_profile(path: str | Path) -> bool:
    """Whether `path` is an LLMServingSim profile folder (a `meta.yaml` naming a profiler)."""
    meta = Path(path) / "meta.yaml"
    if not meta.is_file():
        return False
    import yaml

    try:
        raw = yaml.safe_load(meta.read_text()) or {}
    except yaml.YAMLError:
        return False
    return isinstance(raw, dict) and "profiler_version" in raw


def _model_for(hf_name: str, meta: Path):
    """The catalog model whose `source` is `hf_name`'s config.json."""
    from wrpsim.pool.catalog import models

    hits = [m for name, m in models().items()
            if str(getattr(m, "source", "")).split(" ")[0].lower() == hf_name.lower()]
    if not hits:
        raise ConfigError(f"{meta}: model {hf_name!r} is in no catalog entry's source "
                          f"(pools/catalog/models.yaml: add its config.json numbers)")
    return hits[0]


def _gemm_shapes(model, tp: int) -> dict[str, tuple[int, int]]:
    """(n, k) of each profiled projection on one GPU of TP `tp` (dense, non-MLA layout)."""
    h, d = model.hidden, model.head_dim
    q, kv = model.heads // tp, max(1, model.kv_heads // tp)
    g = 2 if model.gated_mlp else 1
    return {"qkv_proj": ((q + 2 * kv) * d, h), "o_proj": (h, q * d),
            "gate_up_proj": (g * model.intermediate // tp, h),
            "down_proj": (h, model.intermediate // tp),
            "lm_head": (-(-model.vocab // tp), h)}


def compact(profile_dir: str | Path, out_dir: str | Path) -> dict:
    """Write `gemm.parquet`, `attn_prefill.parquet`, `attn_decode.parquet` and `meta.json`
    (provenance: profiler, vLLM version, device, rows) for the profile in `profile_dir`."""
    import yaml

    src = Path(profile_dir)
    meta_path = src / "meta.yaml"
    if not is_profile(src):
        raise ConfigError(f"kernels: {src} is not an LLMServingSim profile (no meta.yaml with "
                          f"profiler_version)")
    meta = yaml.safe_load(meta_path.read_text())
    variant = str(meta.get("variant", ""))
    if variant not in VARIANTS:
        raise ConfigError(f"{meta_path}: variant {variant!r} not supported; valid: "
                          f"{', '.join(VARIANTS)}")
    dtype = VARIANTS[variant]
    model = _model_for(str(meta.get("model", "")), meta_path)
    if model.moe or model.mla:
        raise ConfigError(f"{meta_path}: {model.name} is "
                          f"{'a mixture-of-experts' if model.moe else 'an MLA'} model; only "
                          f"dense layer profiles (projections and GQA attention) are read")
    tps = sorted(int(p.name[2:]) for p in src.glob("tp*") if p.name[2:].isdigit()
                 and (p / "dense.csv").is_file())
    if not tps:
        raise ConfigError(f"kernels: {src} has no tp<N>/dense.csv")
    gemm, pre, dec = [], [], []
    for tp in tps:
        d = src / f"tp{tp}"
        shapes = _gemm_shapes(model, tp)
        dense = pd.read_csv(d / "dense.csv")
        per_seq = pd.read_csv(d / "per_sequence.csv")
        per_seq = per_seq.rename(columns={"sequences": "tokens"})
        for layer, (n, k) in shapes.items():
            rows = (per_seq if layer == "lm_head" else dense)
            rows = rows[rows["layer"] == layer]
            gemm.append(pd.DataFrame({"dtype": dtype, "m": rows["tokens"], "n": n, "k": k,
                                      "ms": rows["time_us"] / 1e3}))
        att = pd.read_csv(d / "attention.csv")
        heads, kvh = model.heads // tp, max(1, model.kv_heads // tp)
        head = {"kv_dtype": "bf16", "heads": heads, "kv_heads": kvh,
                "head_dim": model.head_dim, "window": 0}
        dr = att[(att["prefill_chunk"] == 0) & (att["n_decode"] > 0)]
        dec.append(pd.DataFrame({**head, "batch": dr["n_decode"], "ctx": dr["kv_decode"],
                                 "ms": dr["time_us"] / 1e3}))
        pr = att[(att["prefill_chunk"] > 0) & (att["kv_prefill"] == 0) & (att["n_decode"] == 0)]
        pre.append(pd.DataFrame({**head, "batch": 1, "isl": pr["prefill_chunk"],
                                 "ms": pr["time_us"] / 1e3}))
    g = pd.concat(gemm).groupby(["dtype", "n", "k", "m"], as_index=False)["ms"].median()
    g = lower_envelope(g, ["dtype", "n", "k"], "m")[["dtype", "m", "n", "k", "ms"]]
    akeys = ["kv_dtype", "heads", "kv_heads", "head_dim", "window", "batch"]
    p = pd.concat(pre).groupby([*akeys, "isl"], as_index=False)["ms"].median()
    dd = pd.concat(dec).groupby([*akeys, "ctx"], as_index=False)["ms"].median()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for stale in ("moe", "allreduce", "nccl"):  # a profile has none: never keep older ones
        (out / f"{stale}.parquet").unlink(missing_ok=True)
    info = {"device": str(meta.get("gpu", meta.get("hardware", ""))), "framework": "vllm",
            "version": str(meta.get("vllm_version", "")), "kernels": {},
            "profile": f"LLMServingSim profiler {meta.get('profiler_version', '')}, "
                       f"{meta.get('model', '')} {variant}, TP {tps}"}
    tables = {"gemm": g, "attn_prefill": p, "attn_decode": dd}
    result = {"source": str(src), "format": "llmservingsim", "tables": {}}
    for name, df in tables.items():
        df = df.copy()
        for c in df.columns:
            if c == "ms":
                df[c] = df[c].astype(np.float32)
            elif c not in ("dtype", "kv_dtype"):
                df[c] = df[c].astype(np.int32)
        df.to_parquet(out / f"{name}.parquet", index=False, compression="zstd")
        result["tables"][name] = {**info, "file": f"tp*/{_FILES[name]}", "rows": len(df)}
    (out / "meta.json").write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")
    return result


_FILES = {"gemm": "dense.csv + per_sequence.csv", "attn_prefill": "attention.csv",
          "attn_decode": "attention.csv"}
