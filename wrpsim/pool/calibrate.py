"""Calibrate the analytical latency and power model on the shipped Splitwise profile.

`python -m wrpsim.pool.calibrate [--write] [--profile CSV]` fits, per profiled GPU (a100-80gb,
h100-80gb; the power-capped `h100-80gb-pcap` rows are ignored), the latency parameters in
`LATENCY_FIT` by least squares on log(predicted / measured) of the median prefill and decode
times, then the A100's power shape in `POWER_FIT` on its measured average power. It prints the
median and max absolute percentage error per (GPU, TP, phase) and, with `--write`, stores the
values in the GPUs' `calibration:` blocks of gpus.yaml (the H100 takes the A100's power shape).

Profile semantics: times in ms; `prompt_time` is one prefill of `batch_size` prompts of
`prompt_size` tokens; `token_time` is the mean decode iteration over the generated tokens.
The run generated n = min(token_size, 1 + (e2e - prompt_time) / token_time) tokens (long runs
stopped early), so the mean decode context is prompt_size + n / 2 per sequence. Rows whose
KV cache (batch x (prompt + n) tokens) exceeds `kv_capacity_blocks` are flagged `fits=False`
and left out of the fit (they are the anomalous TP2 batch-64 runs).
"""

from __future__ import annotations

import argparse
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from wrpsim.errors import ConfigError
from wrpsim.pool.catalog import GpuSpec, catalog_path, get_model, gpus
from wrpsim.pool.perf import AnalyticalLatency

PROFILE = "splitwise_llama2_70b.csv"
FITTED_GPUS = ("a100-80gb", "h100-80gb")
#: latency parameters fitted, with (lower, upper) bounds
LATENCY_FIT = {
    "eff_compute": (0.05, 1.0), "eff_attn": (0.02, 1.0), "eff_mem": (0.05, 1.0),
    "eff_kv": (0.02, 1.0), "eff_link": (0.01, 1.0), "link_sat_mib": (1.0, 1e4),
    "coll_latency_us": (0.0, 100.0), "layer_overhead_us": (0.0, 1000.0),
    "prefill_overhead_us": (0.0, 1000.0), "seq_overhead_us": (0.0, 2000.0),
}
#: weakly identified efficiencies are pulled towards these values (MAP fit, see PRIOR_WEIGHT)
PRIORS = {"eff_attn": 0.5, "eff_kv": 0.8}
PRIOR_WEIGHT = 0.5
#: per-iteration overhead (scheduler, sampling): not identifiable from a one-model profile
ITER_OVERHEAD_US = 1000.0
POWER_FIT = {"power_active_frac": (0.0, 0.5), "power_mem_weight": (0.0, 3.0),
             "power_compute_weight": (0.0, 3.0)}
#: rows whose average power is below this fraction of TDP are failed measurements (~idle)
MIN_POWER_FRAC = 0.25
#: the power sampler's peak reflects the prefill only when the prefill lasts this long (ms)
MIN_PEAK_MS = 500.0
#: weight of the peak (prefill) residuals relative to the average-power ones
PEAK_WEIGHT = 0.5
_KEYS = ["hardware", "tensor_parallel", "prompt_size", "batch_size", "token_size"]


def load_profile(path: Path | None = None, model: str = "llama2-70b") -> pd.DataFrame:
    """Median-aggregated profile rows of `model` with derived `n_gen`, `ctx`, `fits` columns."""
    path = path or catalog_path() / "profiles" / PROFILE
    raw = pd.read_csv(path)
    raw = raw[(raw["model"] == model) & raw["hardware"].isin(FITTED_GPUS)]
    df = raw.groupby(_KEYS, as_index=False).median(numeric_only=True)
    steps = (df["e2e_time"] - df["prompt_time"]) / df["token_time"]
    df["n_gen"] = np.minimum(df["token_size"], 1 + np.round(steps)).astype(int)
    df["ctx"] = df["prompt_size"] + df["n_gen"] / 2.0
    m = get_model(model)
    fits = []
    for r in df.itertuples():
        cap = AnalyticalLatency(m, gpus()[r.hardware], int(r.tensor_parallel)).kv_capacity_blocks(1)
        fits.append(r.batch_size * (r.prompt_size + r.n_gen) <= cap)
    df["fits"] = fits
    return df


def predict(df: pd.DataFrame, gpu: GpuSpec, model: str = "llama2-70b") -> pd.DataFrame:
    """Model prefill and decode seconds for the rows of `df` (all assumed on `gpu`)."""
    m = get_model(model)
    out = df.copy()
    pre, dec = [], []
    for r in df.itertuples():
        lat = AnalyticalLatency(m, gpu, int(r.tensor_parallel))
        pre.append(lat.prefill_s(int(r.batch_size), int(r.prompt_size)))
        dec.append(lat.iteration_s(0, 0.0, int(r.batch_size), round(r.batch_size * r.ctx)))
    out["prefill_pred_s"], out["decode_pred_s"] = pre, dec
    return out


def profile_errors(profile: pd.DataFrame | None = None,
                   specs: dict[str, GpuSpec] | None = None) -> pd.DataFrame:
    """One row per (profile row, phase): hardware, tensor_parallel, phase ('prefill'/'decode'),
    sizes, measured_s, predicted_s, ape_pct (absolute % error) and fits (KV fits in memory).
    `specs` defaults to the catalog GPUs."""
    df = load_profile() if profile is None else profile
    specs = specs or gpus()
    parts = []
    for hw, rows in df.groupby("hardware"):
        p = predict(rows, specs[hw])
        for phase, meas, pred in (("prefill", "prompt_time", "prefill_pred_s"),
                                  ("decode", "token_time", "decode_pred_s")):
            e = p[[*_KEYS, "fits"]].copy()
            e["phase"], e["measured_s"], e["predicted_s"] = phase, p[meas] / 1e3, p[pred]
            parts.append(e)
    out = pd.concat(parts, ignore_index=True)
    out["ape_pct"] = 100.0 * (out["predicted_s"] / out["measured_s"] - 1.0).abs()
    return out


def error_table(errors: pd.DataFrame) -> pd.DataFrame:
    """Median and max absolute % error per (hardware, tensor_parallel, phase) over fitting rows,
    plus an 'all' row per (hardware, phase)."""
    e = errors[errors["fits"]]
    g = ["hardware", "tensor_parallel", "phase"]
    t = e.groupby(g)["ape_pct"].agg(["count", "median", "max"]).reset_index()
    a = e.groupby(["hardware", "phase"])["ape_pct"].agg(["count", "median", "max"]).reset_index()
    a["tensor_parallel"] = "all"
    t["tensor_parallel"] = t["tensor_parallel"].astype(str)
    return pd.concat([t, a[t.columns]], ignore_index=True).sort_values(g, kind="stable")


def fit_latency(gpu: GpuSpec, rows: pd.DataFrame) -> GpuSpec:
    """Least-squares fit of `LATENCY_FIT` on the log errors of both phases of `rows`."""
    from scipy.optimize import least_squares

    rows = rows[rows["fits"]]
    names = list(LATENCY_FIT)
    lo, hi = np.array([LATENCY_FIT[k] for k in names]).T
    meas = np.log(np.concatenate([rows["prompt_time"], rows["token_time"]]) / 1e3)

    def spec(x: np.ndarray) -> GpuSpec:
        return replace(gpu, iter_overhead_us=ITER_OVERHEAD_US, **dict(zip(names, map(float, x))))

    prior = [(names.index(k), v) for k, v in PRIORS.items()]

    def resid(x: np.ndarray) -> np.ndarray:
        p = predict(rows, spec(x))
        r = np.log(np.concatenate([p["prefill_pred_s"], p["decode_pred_s"]])) - meas
        return np.concatenate([r, [PRIOR_WEIGHT * np.log(x[i] / v) for i, v in prior]])

    best = None
    for start in (0.3, 0.7):
        x0 = np.clip(lo + start * (hi - lo) * np.array([1, 1, 1, 1, 1, .1, .2, .1, .1, .1]), lo, hi)
        r = least_squares(resid, x0, bounds=(lo, hi), loss="soft_l1", f_scale=0.1,
                          x_scale="jac", diff_step=1e-4)
        best = r if best is None or r.cost < best.cost else best
    return spec(best.x)


def _power_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """Rows with a usable power measurement (KV fits, average >= `MIN_POWER_FRAC`)."""
    return rows[rows["fits"] & (rows["average_power"] >= MIN_POWER_FRAC)]


def power_predictions(gpu: GpuSpec, rows: pd.DataFrame) -> pd.DataFrame:
    """Modelled `average_pred` (time-weighted prefill/decode power of each run) and
    `prefill_pred` power of `rows`, as fractions of TDP, next to the measured columns."""
    m = get_model("llama2-70b")
    t_pre = rows["prompt_time"].to_numpy()
    t_dec = rows["e2e_time"].to_numpy() - t_pre
    pw = []
    for r in rows.itertuples():
        lat = AnalyticalLatency(m, gpu, int(r.tensor_parallel))
        pw.append((lat.power_at(r.batch_size * r.prompt_size, 0, 0.0),
                   lat.power_at(0, int(r.batch_size), r.ctx)))
    p = np.array(pw).reshape(-1, 2) / gpu.tdp_w
    out = rows[[*_KEYS, "prompt_time", "average_power", "peak_power"]].copy()
    out["average_pred"] = (p[:, 0] * t_pre + p[:, 1] * t_dec) / (t_pre + t_dec)
    out["prefill_pred"] = p[:, 0]
    return out


def power_errors(gpu: GpuSpec, rows: pd.DataFrame) -> dict[str, float]:
    """Median and max absolute % error of the average power and of the prefill power against
    min(1, peak_power) (prefills of at least `MIN_PEAK_MS`)."""
    p = power_predictions(gpu, _power_rows(rows))
    avg = 100 * (p["average_pred"] / p["average_power"] - 1).abs()
    long = p[p["prompt_time"] >= MIN_PEAK_MS]
    peak = 100 * (long["prefill_pred"] / np.minimum(long["peak_power"], 1.0) - 1).abs()
    return {"average_median": avg.median(), "average_max": avg.max(),
            "prefill_peak_median": peak.median(), "prefill_peak_max": peak.max()}


def fit_power(gpu: GpuSpec, rows: pd.DataFrame) -> GpuSpec:
    """Fit `POWER_FIT` on two measurements per row (fractions of TDP): `average_power` against
    the time-weighted prefill/decode power of the run, and min(1, `peak_power`) against the
    prefill power (the run's peak is its prefill; only prefills of at least `MIN_PEAK_MS`,
    weighted by `PEAK_WEIGHT`). Rows whose average is below `MIN_POWER_FRAC` are skipped."""
    from scipy.optimize import least_squares

    rows = _power_rows(rows)
    names = list(POWER_FIT)
    lo, hi = np.array([POWER_FIT[k] for k in names]).T
    use_peak = rows["prompt_time"].to_numpy() >= MIN_PEAK_MS
    peak = np.minimum(rows["peak_power"].to_numpy(), 1.0)

    def resid(x: np.ndarray) -> np.ndarray:
        p = power_predictions(replace(gpu, **dict(zip(names, map(float, x)))), rows)
        return np.concatenate([p["average_pred"] - p["average_power"],
                               PEAK_WEIGHT * (p["prefill_pred"].to_numpy() - peak)[use_peak]])

    r = least_squares(resid, (lo + hi) / 4, bounds=(lo, hi), x_scale="jac")
    return replace(gpu, **dict(zip(names, map(float, r.x))))


def write_calibration(path: Path, specs: dict[str, GpuSpec], source: dict[str, str]) -> None:
    """Replace the `calibration:` block of each GPU in `specs` in the YAML file `path`."""
    from wrpsim.pool.catalog import CALIBRATION_FIELDS

    text = path.read_text()
    for name, g in specs.items():
        vals = "".join(f"    {k}: {getattr(g, k):.4g}\n" for k in CALIBRATION_FIELDS)
        block = f"  calibration:\n    source: \"{source[name]}\"\n{vals}"
        pat = re.compile(rf"(^{re.escape(name)}:\n(?:  .*\n)*?)  calibration:.*\n(?:    .*\n)*",
                         re.M)
        text, n = pat.subn(lambda mt, b=block: mt.group(1) + b, text, count=1)
        if n != 1:
            raise ConfigError(f"{path}: entry {name!r}: no 'calibration:' block to replace")
    path.write_text(text)


def calibrate(profile: pd.DataFrame) -> dict[str, GpuSpec]:
    """Fitted specs of `FITTED_GPUS` (latency per GPU; power on the A100, copied to the H100)."""
    specs = {hw: fit_latency(gpus()[hw], profile[profile["hardware"] == hw])
             for hw in FITTED_GPUS}
    a100 = fit_power(specs["a100-80gb"], profile[profile["hardware"] == "a100-80gb"])
    power = {k: getattr(a100, k) for k in POWER_FIT}
    return {hw: replace(s, **power) for hw, s in specs.items()}


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point: fit, print the error table, optionally `--write`."""
    ap = argparse.ArgumentParser(prog="python -m wrpsim.pool.calibrate", description=__doc__)
    ap.add_argument("--profile", type=Path, help="profile CSV (default: the shipped one)")
    ap.add_argument("--write", action="store_true", help="store the fit in gpus.yaml")
    ap.add_argument("--check", action="store_true", help="only report the catalog's errors")
    args = ap.parse_args(argv)
    profile = load_profile(args.profile)
    specs = dict(gpus())
    if not args.check:
        fitted = calibrate(profile)
        specs.update(fitted)
        for hw, g in fitted.items():
            print(hw, " ".join(f"{k}={getattr(g, k):.4g}" for k in [*LATENCY_FIT, *POWER_FIT]))
    table = error_table(profile_errors(profile, specs))
    print(table.to_string(index=False, float_format=lambda v: f"{v:.1f}"))
    a100 = profile[profile["hardware"] == "a100-80gb"]
    pe = power_errors(specs["a100-80gb"], a100)
    print("a100-80gb power, absolute % error: " + ", ".join(f"{k} {v:.1f}" for k, v in pe.items()))
    if args.write and not args.check:
        src = {"a100-80gb": "fit: Splitwise llama2-70b profile (latency and power)",
               "h100-80gb": "fit: Splitwise llama2-70b profile (latency); power from a100-80gb"}
        write_calibration(catalog_path() / "gpus.yaml", fitted, src)
        print(f"wrote {catalog_path() / 'gpus.yaml'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
