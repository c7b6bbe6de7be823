"""Kernel tables on shapes they never saw: a GPU's engine tables against measured kernel tables
of other models or TP degrees on the same GPU.

A held-out table folder holds `gemm.parquet` and, where measured, `attn_decode.parquet` and
`attn_prefill.parquet`, in the layout `wrpsim.calibrate.aic` documents (as
`python -m wrpsim.calibrate ... kernels=` writes them), and a `meta.json` naming its source. The
shipped ones live in `pools/measured/<source>/kernels/<gpu>/<label>/`: one folder per
LLMServingSim layer profile (one model at one TP degree) of the RTX PRO 6000
(`llmservingsim`), and the developers' own H200 timings of catalog models' GEMM shapes off the
AIConfigurator grid, with a control set on the grid (`device`,
`docs/experiments/device_gemm.py`). Every row (a projection GEMM or LM head at m tokens; a
pure-decode or fresh-prompt attention layer) is timed by tables and compared:
error = simulated / measured - 1, in %.

Every folder is timed by the GPU's engine tables (`holdout_errors`): for the RTX PRO 6000,
AIConfigurator's measurements on another machine, under vLLM 0.24 and 0.19, against
LLMServingSim's on the machine of its serving runs — two sources of one GPU's kernels. A
GPU's profiles are also checked against each other leave one profile out (`leave_one_out`):
each timed by tables merged from the others (`merged_profiles`;
`wrpsim.calibrate.llmss.merge_layouts`), so that no folder is timed by tables holding its own
measurements — how well the tables carry over to shapes they never saw. (Engine tables
merged from such profiles, as `python -m wrpsim.calibrate` writes them from several, are
checked the same way.)
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from wrpsim.paths import catalog_dir
from wrpsim.pool.kernels.borrowed import loop_timed
from wrpsim.pool.kernels.tables import read_cols

COLUMNS = ("gemm", "gemm_m_le_64", "gemm_m_gt_64", "attn_decode", "attn_prefill")


def _stats(e: np.ndarray) -> dict:
    if len(e) == 0:
        return {"n": 0, "abs_median": None, "signed_median": None, "abs_p90": None}
    return {"n": len(e), "abs_median": round(float(np.median(np.abs(e))), 1),
            "signed_median": round(float(np.median(e)), 1),
            "abs_p90": round(float(np.percentile(np.abs(e), 90)), 1)}


def gemm_errors(kernels, g: dict[str, np.ndarray]) -> np.ndarray:
    """% error of every GEMM row (dtype, m, n, k, ms)."""
    pred = np.array([float(kernels.gemm(str(d), int(n), int(k))(m))
                     for d, n, k, m in zip(g["dtype"], g["n"], g["k"], g["m"])])
    return (pred * 1e3 / g["ms"] - 1) * 100


def attn_errors(kernels, a: dict[str, np.ndarray], size: str) -> np.ndarray:
    """% error of every attention row inside the engine table's measured length range (`size`:
    `ctx` for decode, `isl` for prefill; beyond the range wrpsim extrapolates by its callers'
    rule, not by the grid)."""
    fn = kernels.attn_decode if size == "ctx" else kernels.attn_prefill
    errs = []
    for i in range(len(a["ms"])):
        grid = fn(str(a["kv_dtype"][i]), int(a["heads"][i]), int(a["kv_heads"][i]),
                  int(a["head_dim"][i]))
        s = float(a[size][i])
        if grid.s[0] <= s <= grid.s[-1]:
            pred = np.interp(s, grid.s, grid.row(float(a["batch"][i])))
            errs.append((pred * 1e3 / a["ms"][i] - 1) * 100)
    return np.asarray(errs)


def holdout_errors(kernels, tables_dir: str | Path) -> dict:
    """Error statistics (n, median absolute, median signed and 90th-percentile absolute %) of
    `kernels` on the measured tables in `tables_dir`, per column of `COLUMNS` (GEMMs split at
    m = 64: decode-sized and prefill-sized; an attention table the folder lacks: n = 0).
    `kernels` time them as their tables' short loops measured them (`loop_timed`: no
    sustained-rate bound, no HBM floor), as the held-out timings were made."""
    kernels = loop_timed(kernels)
    d = Path(tables_dir)
    g = read_cols(d / "gemm.parquet")
    e = gemm_errors(kernels, g)
    small = g["m"] <= 64
    meta = json.loads((d / "meta.json").read_text()) if (d / "meta.json").is_file() else {}
    return {"tables": d.name, "source": meta.get("source", ""),
            "profile": meta.get("tables", {}).get("gemm", {}).get("profile", ""),
            "gemm": _stats(e), "gemm_m_le_64": _stats(e[small]),
            "gemm_m_gt_64": _stats(e[~small]),
            "attn_decode": _attn_stats(kernels, d / "attn_decode.parquet", "ctx"),
            "attn_prefill": _attn_stats(kernels, d / "attn_prefill.parquet", "isl")}


def _attn_stats(kernels, path: Path, size: str) -> dict:
    return _stats(attn_errors(kernels, read_cols(path), size) if path.is_file() else
                  np.zeros(0))


def holdout_dirs() -> list[Path]:
    """Where the shipped held-out tables live, one folder per source:
    `<gpu catalog name>/<label>/` below each."""
    return sorted((catalog_dir("pools") / "measured").glob("*/kernels"))


def shipped_holdouts() -> dict[str, list[Path]]:
    """{gpu catalog name: held-out table folders} shipped in `holdout_dirs()`."""
    out: dict[str, list[Path]] = {}
    for root in holdout_dirs():
        for g in sorted(p for p in root.iterdir() if p.is_dir()):
            out.setdefault(g.name, []).extend(sorted(
                p for p in g.iterdir() if (p / "gemm.parquet").is_file()))
    return out


def engine_layouts(kernels) -> list[str]:
    """The sources of the profile layouts a GPU's engine GEMM table was merged from (a
    `Kernels`, or a `Partial` whose own tables those are; empty for tables of another kind)."""
    own = getattr(kernels, "own", kernels)
    gemm = getattr(own, "meta", {}).get("tables", {}).get("gemm", {})
    if "layouts" in gemm:
        return [str(x["source"]) for x in gemm["layouts"]]
    return [str(own.meta["source"])] if getattr(own, "meta", {}).get("format") == \
        "llmservingsim" else []


def _source(d: Path) -> str:
    meta = d / "meta.json"
    return str(json.loads(meta.read_text()).get("source", "")) if meta.is_file() else ""


def leave_one_out(kernels, dirs: list[Path]) -> list[dict]:
    """For each folder of `dirs` that is a layout of `kernels`' engine tables
    (`engine_layouts`): its `holdout_errors` under tables merged from every other such folder
    (`wrpsim.calibrate.llmss.merge`, GEMM and attention only), with `held_out_of` = the number
    of layouts the check's tables hold. The engine's layouts must all be among `dirs` (else
    a left-out check would still hold a profile's measurements in no folder, or miss one)."""
    import tempfile

    from wrpsim.calibrate.llmss import merge
    from wrpsim.errors import ConfigError
    from wrpsim.pool.kernels.tables import Kernels

    layouts = engine_layouts(kernels)
    mine = [d for d in dirs if _source(d) in layouts]
    missing = sorted(set(layouts) - {_source(d) for d in mine})
    if missing:
        raise ConfigError(f"kernels: the engine tables' layouts {missing} have no held-out "
                          f"folder among {[str(d) for d in dirs]}")
    out = []
    for d in mine:
        rest = [o for o in mine if o != d]
        with tempfile.TemporaryDirectory() as tmp:
            merge(rest, tmp)
            k = Kernels(tmp, kernels.gpu, f"kernels: {len(rest)} other profiles")
            out.append({**holdout_errors(k, d), "held_out_of": len(rest)})
    return out


def merged_profiles(dirs: list[Path], gpu, out_dir: str | Path):
    """`Kernels` of the held-out folders `dirs` (one GPU's profiles) merged into `out_dir`
    (`wrpsim.calibrate.llmss.merge`): the tables the leave-one-profile-out check leaves one
    folder out of at a time (`leave_one_out`)."""
    from wrpsim.calibrate.llmss import merge
    from wrpsim.pool.kernels.tables import Kernels

    merge(dirs, out_dir)
    return Kernels(out_dir, gpu, f"kernels: {len(dirs)} profiles merged")


def _csv_columns(path: str | Path) -> tuple[int, dict[str, np.ndarray]]:
    """(rows, numpy array per column) of a measured CSV."""
    import pyarrow.csv as pc

    t = pc.read_csv(Path(path))
    return t.num_rows, {k: t.column(k).to_numpy() for k in t.column_names}


#: GEMMs this large or larger fill the GPU: their sustained rates are the catalog's
SUSTAINED_MIN_M = 1024


def sustained_rates(path: str | Path) -> dict[str, float]:
    """The catalog's `bf16_sustained_tflops` / `fp8_sustained_tflops` from GEMMs measured at the
    power limit (a CSV as `docs/experiments/device_power.py measure` writes): per precision,
    the median TFLOP/s (FLOPs per replay / kernel time per replay) of its `gemm_<dtype>` rows of
    at least `SUSTAINED_MIN_M` tokens, rounded; a precision without such rows is left out."""
    rows, c = _csv_columns(path)
    out: dict[str, float] = {}
    for dt in ("bf16", "fp8"):
        rates = [float(c["flops"][i]) / float(c["replay_s"][i]) / 1e12 for i in range(rows)
                 if str(c["workload"][i]) == f"gemm_{dt}" and int(c["m"][i]) >= SUSTAINED_MIN_M]
        if rates:
            out[f"{dt}_sustained_tflops"] = float(round(np.median(rates)))
    return out


def power_at_known_utilisation(path: str | Path, gpu_name: str) -> list[dict]:
    """The power model of `gpu_name` against watts measured at known utilisation (a CSV as
    `docs/experiments/device_power.py measure` writes: per workload its FLOPs and bytes per
    replay, the kernel time per replay and the average watts). Per row: workload, m,
    u_compute (FLOPs over the precision's peak rate x time), u_memory (bytes over the peak
    bandwidth x time), measured and model watts, error % (model / measured - 1); an idle row
    (no kernel time) is compared with the catalog's `idle_w`."""
    from wrpsim.pool.catalog import get_gpu
    from wrpsim.pool.engines import power_fits
    from wrpsim.pool.kernels.power import power_model

    gpu = get_gpu(gpu_name)
    fit = power_model(gpu, power_fits())
    rows, c = _csv_columns(path)
    out = []
    for i in range(rows):
        w, t = str(c["workload"][i]), float(c["replay_s"][i])
        peak = (gpu.fp8_tflops if w.endswith("fp8") else gpu.bf16_tflops) * 1e12
        uc = float(c["flops"][i]) / t / peak if t else 0.0
        um = float(c["bytes"][i]) / t / (gpu.mem_bw_gbs * 1e9) if t else 0.0
        model = fit.power_at(uc, um) if t else fit.idle_w
        measured = float(c["watts"][i])
        out.append({"workload": w, "m": int(c["m"][i]), "u_compute": uc, "u_memory": um,
                    "measured_w": measured, "model_w": model,
                    "error": (model / measured - 1) * 100})
    return out


def power_of_measured_steps(path: str | Path, model: str, gpu_name: str,
                            tp: int = 1) -> list[dict]:
    """The power model against watts measured over whole forward steps of `model` (a CSV as
    `docs/experiments/device_power.py steps` writes: decode sequences `seqs` at context `ctx`
    each, or one prompt of `prompt` tokens; the measured step time `step_s` and average
    `watts`). The utilisations are the step's FLOPs and bytes as wrpsim counts them
    (`wrpsim.pool.kernels.power.iteration_work`) over the measured step time. Per row: seqs,
    ctx, prompt, step_s, wrpsim's own GPU time for the step (`gpu_s`), u_compute, u_memory,
    measured and model watts, error %."""
    from wrpsim.pool.engines import build_latency_model
    from wrpsim.pool.kernels.power import utilisation

    lat = build_latency_model(model, gpu_name, tp)
    rows, c = _csv_columns(path)
    out = []
    for i in range(rows):
        seqs, ctx, prompt = int(c["seqs"][i]), int(c["ctx"][i]), int(c["prompt"][i])
        step, measured = float(c["step_s"][i]), float(c["watts"][i])
        pairs = prompt * (prompt + 1) / 2.0
        uc, um = utilisation(lat, prompt, seqs, seqs * ctx, pairs, step)
        model_w = lat._power.power_at(uc, um)
        out.append({"seqs": seqs, "ctx": ctx, "prompt": prompt, "step_s": step,
                    "gpu_s": lat.gpu_s(prompt, pairs, seqs, ctx, 1 if prompt else 0),
                    "u_compute": uc, "u_memory": um, "measured_w": measured,
                    "model_w": model_w, "error": (model_w / measured - 1) * 100})
    return out
