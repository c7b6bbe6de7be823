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

A profile of a mixture-of-experts model (`catalog.moe` in the profiler's architecture YAML)
adds `tp1/moe.csv` (tokens, activated_experts, time_us): the model's whole MoE block
(`Qwen3MoeSparseMoeBlock`: router gate GEMM, top-k routing, fused experts, combine) at TP 1,
with the routing forced (`profiler/core/hooks/moe_hook.py`) so that exactly `activated_experts`
distinct experts share the tokens' top-k slots evenly; tokens and activated experts on powers
of two, activated from top-k to min(experts, tokens x top-k). It becomes `moe.parquet` in the
AIConfigurator layout (dtype = the variant, hidden, inter = the model's expert FFN width, topk,
experts, moe_tp = moe_ep = 1, tokens, ms): at each profiled token count T the time is
interpolated linearly in activated experts (the weights read grow with them) at the expected
number of distinct experts T tokens touch under uniform routing, E (1 - (1 - k / E)^T) — the
count `wrpsim.pool.kernels.roofline.moe_roofline` assumes; other TP / EP layouts are carried
over from TP 1 by the roofline ratio, as for any shape a table lacks. The router gate GEMM
stays in the block although wrpsim also times the router as a GEMM of its own: on the RTX PRO
6000 the model's router GEMM is under 1 % of the block (0.4 us of 50 us at one token, 8 us of
1.07 ms at 2048), so it is counted twice within that. Rows faster than streaming their
activated experts from DRAM (`wrpsim.calibrate.aic.moe_dram_floor_s`; none in the shipped
profile) are dropped when the GPU is given. An MoE model's profile also gives, like a dense
model's, its attention rows and the GEMMs of its attention projections and LM head (its
`dense.csv` has no MLP projections: the MoE block is its MLP).

Several profiles of one GPU and vLLM version (each TP degree of each is a "layout":
one model's shapes on one GPU of that TP; a profile's `tp<N>` folder names one layout alone)
become one set of tables holding every layout's rows (`merge_layouts`): the projection shapes
of different models and TP degrees are different GEMM keys and their head layouts different
attention keys, so nothing is averaged away; a key two layouts both measure keeps the median of
their times (the kernel, GPU and engine are the same, so these are two samples of one time).
`merge` does the same for folders already compacted (the shipped per-profile folders in
`pools/measured/llmservingsim/kernels/<gpu>/`, from which `wrpsim.validate.kernels` builds
the leave-one-profile-out check of docs/validation.md).

A profile has no all-reduce or NCCL tables (nor MoE, for a dense model); an engine that names
such a GPU also names a `roofline:` GPU for what its tables lack
(`wrpsim.pool.kernels.borrowed.Partial`).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from wrpsim.calibrate.aic import dtypes_of, lower_envelope
from wrpsim.errors import ConfigError

#: LLMServingSim variant name -> wrpsim GEMM precision
VARIANTS = {"bf16": "bf16", "fp16": "bf16"}
GEMM_LAYERS = ("qkv_proj", "o_proj", "gate_up_proj", "down_proj")


def is_profile(path: str | Path) -> bool:
    """Whether `path` is an LLMServingSim profile folder (a `meta.yaml` naming a profiler) or
    one `tp<N>` folder of one."""
    path = Path(path)
    if path.name[:2] == "tp" and path.name[2:].isdigit() and not (path / "meta.yaml").is_file():
        path = path.parent
    meta = path / "meta.yaml"
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


def _read_meta(src: Path) -> tuple[dict, str, object]:
    """(meta.yaml, wrpsim dtype of its variant, catalog model) of the profile in `src`."""
    import yaml

    meta_path = src / "meta.yaml"
    if not is_profile(src):
        raise ConfigError(f"kernels: {src} is not an LLMServingSim profile (no meta.yaml with "
                          f"profiler_version)")
    meta = yaml.safe_load(meta_path.read_text())
    variant = str(meta.get("variant", ""))
    if variant not in VARIANTS:
        raise ConfigError(f"{meta_path}: variant {variant!r} not supported; valid: "
                          f"{', '.join(VARIANTS)}")
    model = _model_for(str(meta.get("model", "")), meta_path)
    if model.mla:
        raise ConfigError(f"{meta_path}: {model.name} is an MLA model; only GQA layer "
                          f"profiles are read")
    return meta, VARIANTS[variant], model


def expected_experts(tokens, topk: int, experts: int) -> np.ndarray:
    """Expected distinct experts `tokens` tokens touch when each picks `topk` of `experts`
    uniformly: E (1 - (1 - k / E)^T)."""
    t = np.asarray(tokens, dtype=np.float64)
    return experts * (1.0 - (1.0 - topk / experts) ** t)


def moe_rows(profile_dir: str | Path, gpu=None) -> tuple[pd.DataFrame, dict]:
    """The `moe.parquet` rows of an MoE model's profile (module docstring) and its provenance
    (`ConfigError` if the model is dense or the profile has no `tp1/moe.csv`)."""
    src = Path(profile_dir)
    meta, dtype, model = _read_meta(src)
    path = src / "tp1" / "moe.csv"
    if not model.moe or not path.is_file():
        raise ConfigError(f"kernels: {src}: no MoE block profile (tp1/moe.csv of a "
                          f"mixture-of-experts model)")
    raw = read_profile_csv(path)
    h, inter, k, e = model.hidden, model.intermediate, model.active_experts, model.experts
    dropped = 0
    if gpu is not None:
        from wrpsim.calibrate.aic import moe_dram_floor_s

        shape = pd.DataFrame({"dtype": dtype, "hidden": h, "inter": inter, "moe_tp": 1},
                             index=raw.index)
        ok = raw["time_us"] * 1e-6 >= moe_dram_floor_s(shape, raw["activated_experts"], gpu)
        dropped, raw = int((~ok).sum()), raw[ok]
    tokens, ms = [], []
    for t, grp in raw.groupby("tokens"):
        grp = grp.groupby("activated_experts", as_index=False)["time_us"].median()
        want = np.clip(expected_experts(t, k, e), k, min(e, t * k))
        tokens.append(int(t))
        ms.append(float(np.interp(want, grp["activated_experts"], grp["time_us"])) / 1e3)
    rows = pd.DataFrame({"dtype": dtype, "hidden": h, "inter": inter, "topk": k, "experts": e,
                         "moe_tp": 1, "moe_ep": 1, "tokens": tokens, "ms": ms})
    info = {"device": str(meta.get("gpu", meta.get("hardware", ""))), "framework": "vllm",
            "version": str(meta.get("vllm_version", "")), "kernels": {},
            "profile": f"LLMServingSim profiler {meta.get('profiler_version', '')}, "
                       f"{meta.get('model', '')} {meta.get('variant', '')}, TP [1]",
            "file": "tp1/moe.csv", "source": str(src), "measured_rows": len(raw),
            "routing": "uniform: activated = E (1 - (1 - k/E)^T), linear in activated"}
    if gpu is not None:
        info["cache_resident_rows"] = dropped
    return rows, info


#: the columns each profile file must hold (module docstring); `time_us` a number > 0, the
#: others numbers >= 0 but for `layer` (an operator's name)
PROFILE_COLUMNS = {"dense.csv": ("layer", "tokens", "time_us"),
                   "per_sequence.csv": ("layer", "sequences", "time_us"),
                   "attention.csv": ("prefill_chunk", "kv_prefill", "n_decode", "kv_decode",
                                     "time_us"),
                   "moe.csv": ("tokens", "activated_experts", "time_us")}


def read_profile_csv(path: Path) -> pd.DataFrame:
    """One profile file (`PROFILE_COLUMNS`), checked: a missing, empty or malformed file, a
    missing column or a cell that is not a finite number (a time not > 0) is one line naming
    the file and the row (as the AIConfigurator tables' reader does)."""
    cols = PROFILE_COLUMNS[path.name]
    if not path.is_file():
        raise ConfigError(f"kernels: {path}: file not found (a layer profile's tp<N> folder "
                          f"holds {', '.join(c for c in PROFILE_COLUMNS if c != 'moe.csv')})")
    try:
        raw = pd.read_csv(path)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise ConfigError(f"kernels: {path}: cannot read it as CSV: "
                          f"{' '.join(str(exc).split())}") from None
    missing = [c for c in cols if c not in raw.columns]
    if missing:
        raise ConfigError(f"kernels: {path}: missing column(s) {missing}; found "
                          f"{list(raw.columns)}")
    for c in cols:
        if c == "layer":
            continue
        num = pd.to_numeric(raw[c], errors="coerce").astype(np.float64)
        bad = ~np.isfinite(num) | ((num <= 0) if c == "time_us" else (num < 0))
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            rule = "a number > 0" if c == "time_us" else "a number >= 0"
            got = raw[c].iloc[i]
            got = repr(got) if isinstance(got, str) else f"{got:g}"
            raise ConfigError(f"kernels: {path}: line {i + 2}: {c} must be {rule}, got {got}")
        raw[c] = num
    return raw


def _layouts(path: Path) -> tuple[Path, list[int]]:
    """(profile folder, its TP degrees to read) of `path`: a profile (every `tp<N>` with a
    `dense.csv`) or one `tp<N>` folder of a profile (that TP only)."""
    if path.name[:2] == "tp" and path.name[2:].isdigit() and is_profile(path.parent):
        tps = [int(path.name[2:])] if (path / "dense.csv").is_file() else []
        return path.parent, tps
    return path, sorted(int(p.name[2:]) for p in path.glob("tp*") if p.name[2:].isdigit()
                        and (p / "dense.csv").is_file())


def _layout_tables(src: Path, tp: int, model, dtype: str) -> dict[str, pd.DataFrame]:
    """The GEMM, prefill- and decode-attention rows of one profile at one TP degree (a
    "layout": one model's shapes on one GPU of TP `tp`), in the tables' columns."""
    d = src / f"tp{tp}"
    dense = read_profile_csv(d / "dense.csv")
    per_seq = read_profile_csv(d / "per_sequence.csv").rename(columns={"sequences": "tokens"})
    gemm = []
    for layer, (n, k) in _gemm_shapes(model, tp).items():
        if model.moe and layer in ("gate_up_proj", "down_proj"):
            continue  # an MoE model's MLP is its MoE block (`moe_rows`), not these shapes
        rows = (per_seq if layer == "lm_head" else dense)
        rows = rows[rows["layer"] == layer]
        gemm.append(pd.DataFrame({"dtype": dtype, "m": rows["tokens"], "n": n, "k": k,
                                  "ms": rows["time_us"] / 1e3}))
    att = read_profile_csv(d / "attention.csv")
    heads, kvh = model.heads // tp, max(1, model.kv_heads // tp)
    head = {"kv_dtype": "bf16", "heads": heads, "kv_heads": kvh, "head_dim": model.head_dim,
            "window": 0}
    dr = att[(att["prefill_chunk"] == 0) & (att["n_decode"] > 0)]
    dec = pd.DataFrame({**head, "batch": dr["n_decode"], "ctx": dr["kv_decode"],
                        "ms": dr["time_us"] / 1e3})
    pr = att[(att["prefill_chunk"] > 0) & (att["kv_prefill"] == 0) & (att["n_decode"] == 0)]
    pre = pd.DataFrame({**head, "batch": 1, "isl": pr["prefill_chunk"],
                        "ms": pr["time_us"] / 1e3})
    return {"gemm": pd.concat(gemm), "attn_prefill": pre, "attn_decode": dec}


#: the key columns of each table a layer profile gives (the row's time is `ms`)
KEYS = {"gemm": ["dtype", "n", "k", "m"],
        "attn_prefill": ["kv_dtype", "heads", "kv_heads", "head_dim", "window", "batch", "isl"],
        "attn_decode": ["kv_dtype", "heads", "kv_heads", "head_dim", "window", "batch", "ctx"]}
_COLUMNS = {"gemm": ["dtype", "m", "n", "k", "ms"],
            "attn_prefill": [*KEYS["attn_prefill"], "ms"],
            "attn_decode": [*KEYS["attn_decode"], "ms"]}


def merge_layouts(parts: list[dict[str, pd.DataFrame]]) -> dict[str, pd.DataFrame]:
    """One set of tables from several layouts' rows (each a {table: rows} mapping; a table a
    layout lacks is skipped). A key (a GEMM shape at m; a head layout at a batch and length)
    measured by more than one layout keeps the median of its times: every layout is the same
    kernel on the same GPU and engine, so two measurements of one key are two samples of one
    time, and the median (the mean of two) keeps neither profile's noise as the table's. Each
    GEMM shape's time is then made non-decreasing in m by its lower envelope."""
    out = {}
    for name, keys in KEYS.items():
        rows = [p[name] for p in parts if name in p and len(p[name])]
        if not rows:
            continue
        df = pd.concat(rows)
        # the times as stored (float32), so that merging compacted folders (`merge`) and
        # compacting the raw profiles give the same medians
        df = df.assign(ms=df["ms"].astype(np.float32).astype(np.float64))
        df = df.groupby(keys, as_index=False)["ms"].median()
        if name == "gemm":
            df = lower_envelope(df, ["dtype", "n", "k"], "m")
        out[name] = df.sort_values(keys, kind="stable")[_COLUMNS[name]]
    return out


def _write(tables: dict[str, pd.DataFrame], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for name, df in tables.items():
        df = df.copy()
        for c in df.columns:
            if c == "ms":
                df[c] = df[c].astype(np.float32)
            elif c not in ("dtype", "kv_dtype"):
                df[c] = df[c].astype(np.int32)
        df.to_parquet(out / f"{name}.parquet", index=False, compression="zstd")


def compact(profile_dir, out_dir: str | Path, gpu=None) -> dict:
    """Write `gemm.parquet`, `attn_prefill.parquet`, `attn_decode.parquet` and `meta.json`
    (provenance: profiler, vLLM version, device, rows, and per table the layouts it holds) for
    the profiles in `profile_dir` (one folder or a list; a profile's `tp<N>` folder names that
    TP degree alone), every TP degree of every one merged (`merge_layouts`; an MoE model's
    layouts give their attention, attention projections and LM head), and `moe.parquet` from
    the MoE models' whole profiles among them (module docstring); `gpu`, the catalog GPU
    profiled, enables the DRAM-floor check of MoE rows."""
    dirs = [Path(p) for p in (profile_dir if isinstance(profile_dir, (list, tuple))
                              else [profile_dir])]
    found = {d: _layouts(d) for d in dirs}
    models_of = {d: _read_meta(found[d][0])[2] for d in dirs}
    if not any(found[d][1] for d in dirs):
        raise ConfigError(f"kernels: give at least one layer profile with tp<N>/dense.csv (its "
                          f"GEMMs and attention become the tables), got none among "
                          f"{[str(d) for d in dirs]}")
    # MoE blocks: from an MoE model's whole profile (a `tp<N>` folder names one layout only)
    moe = [d for d in dirs if models_of[d].moe and found[d][0] == d]
    parts, infos = [], []
    for d in dirs:
        src, tps = found[d]
        if not tps:
            if models_of[d].moe:
                continue  # an MoE block alone
            raise ConfigError(f"kernels: {d} has no tp<N>/dense.csv")
        meta, dtype, model = _read_meta(src)
        for tp in tps:
            parts.append(_layout_tables(src, tp, model, dtype))
        infos.append({"device": str(meta.get("gpu", meta.get("hardware", ""))),
                      "framework": "vllm", "version": str(meta.get("vllm_version", "")),
                      "model": f"{meta.get('model', '')} {meta.get('variant', '')}",
                      "tps": tps, "source": str(d),
                      "profiler": str(meta.get("profiler_version", ""))})
    first = infos[0]
    for i in infos[1:]:
        if (i["device"], i["version"]) != (first["device"], first["version"]):
            raise ConfigError(f"kernels: {i['source']} is {i['device']} vLLM {i['version']}, "
                              f"{first['source']} {first['device']} vLLM {first['version']}: "
                              f"one engine's tables come from one GPU and engine version")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for stale in ("moe", "allreduce", "allreduce_fused", "nccl"):  # never keep older ones
        (out / f"{stale}.parquet").unlink(missing_ok=True)
    tables = merge_layouts(parts)
    profile = f"LLMServingSim profiler {first['profiler']}, " + "; ".join(
        f"{i['model']}, TP {i['tps']}" for i in infos)
    info = {k: first[k] for k in ("device", "framework", "version")}
    info.update(kernels={}, profile=profile)
    result = {"source": "; ".join(i["source"] for i in infos), "format": "llmservingsim",
              "tables": {}}
    layouts = [{"profile": f"LLMServingSim profiler {i['profiler']}, {i['model']}, TP [{tp}]",
                "source": str(Path(i["source"]) if len(i["tps"]) == 1 and
                              Path(i["source"]).name == f"tp{tp}" else
                              Path(i["source"]) / f"tp{tp}")} for i in infos for tp in i["tps"]]
    for name, df in tables.items():
        result["tables"][name] = {**info, "file": f"tp*/{_FILES[name]}", "rows": len(df),
                                  "kernels": attention_kernels(df)}
        if name == "gemm":  # the precisions measured (read without the Parquet file)
            result["tables"][name]["dtypes"] = dtypes_of(df)
        if len(layouts) > 1:
            result["tables"][name]["layouts"] = layouts
    if moe:
        mparts = [moe_rows(found[d][0], gpu) for d in moe]
        tables["moe"] = pd.concat([r for r, _ in mparts], ignore_index=True)
        m0 = mparts[0][1]
        result["tables"]["moe"] = {**{k: m0[k] for k in ("device", "framework", "version",
                                                           "kernels", "profile", "file")},
                                   "sources": [i for _, i in mparts],
                                   "rows": len(tables["moe"]),
                                   "dtypes": dtypes_of(tables["moe"])}
    _write(tables, out)
    (out / "meta.json").write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")
    return result


def merge(table_dirs, out_dir: str | Path) -> dict:
    """Merge compacted layer-profile tables (folders `compact` wrote, each with `meta.json`)
    into `out_dir` by `merge_layouts`' rule: the tables of several profiles, or of all but one
    (the leave-one-profile-out check, `wrpsim.validate.kernels`). Every folder must come from
    the same GPU and engine version; a folder's MoE table is carried over, and two MoE tables
    are an error (one MoE block per engine table)."""
    dirs = [Path(p) for p in table_dirs]
    if not dirs:
        raise ConfigError("kernels: merge needs at least one table folder")
    metas = []
    for d in dirs:
        try:
            metas.append(json.loads((d / "meta.json").read_text()))
        except (OSError, ValueError) as e:
            raise ConfigError(f"kernels: {d}: no readable meta.json ({e})") from None
        if metas[-1].get("format") != "llmservingsim":
            raise ConfigError(f"kernels: {d}/meta.json is not a compacted LLMServingSim "
                              f"profile (format {metas[-1].get('format')!r})")
    g0 = metas[0]["tables"]["gemm"]
    for d, m in zip(dirs[1:], metas[1:]):
        g = m["tables"]["gemm"]
        if (g["device"], g["version"]) != (g0["device"], g0["version"]):
            raise ConfigError(f"kernels: {d} is {g['device']} vLLM {g['version']}, {dirs[0]} "
                              f"{g0['device']} vLLM {g0['version']}: one engine's tables come "
                              f"from one GPU and engine version")
    parts = [{n: pd.read_parquet(d / f"{n}.parquet") for n in KEYS
              if (d / f"{n}.parquet").is_file()} for d in dirs]
    tables = merge_layouts(parts)
    moe = [d for d in dirs if (d / "moe.parquet").is_file()]
    if len(moe) > 1:
        raise ConfigError(f"kernels: more than one MoE table among {[str(d) for d in moe]}")
    layouts = []
    for m in metas:
        t = m["tables"]["gemm"]
        layouts += t.get("layouts") or [{"profile": t["profile"], "source": m["source"]}]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    result = {"source": "; ".join(m["source"] for m in metas), "format": "llmservingsim",
              "tables": {}}
    for name, df in tables.items():
        info = next(m["tables"][name] for m in metas if name in m["tables"])
        result["tables"][name] = {**{k: info[k] for k in ("device", "framework", "version",
                                                          "file")},
                                  "kernels": attention_kernels(df),
                                  "profile": "; ".join(x["profile"] for x in layouts),
                                  "rows": len(df), "layouts": layouts}
        if name == "gemm":
            result["tables"][name]["dtypes"] = dtypes_of(df)
    if moe:
        tables["moe"] = pd.read_parquet(moe[0] / "moe.parquet")
        result["tables"]["moe"] = metas[dirs.index(moe[0])]["tables"]["moe"]
    _write(tables, out)
    (out / "meta.json").write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")
    return result


_FILES = {"gemm": "dense.csv + per_sequence.csv", "attn_prefill": "attention.csv",
          "attn_decode": "attention.csv"}


def attention_kernels(df: pd.DataFrame) -> dict:
    """meta.json's `kernels` of a compacted table: for an attention table, one key per KV
    dtype its rows measured (AIConfigurator's spelling, `bfloat16` / `fp8`), so that
    `Kernels.attn_kv_dtypes` can tell an FP8 KV cache timed from BF16 rows (the calibration
    label says so); empty for the others (a layer profile names no kernel)."""
    if "kv_dtype" not in df.columns:
        return {}
    return {{"bf16": "bfloat16"}.get(k, k): "vLLM's attention backend (layer profile)"
            for k in sorted(set(df["kv_dtype"].astype(str)))}
