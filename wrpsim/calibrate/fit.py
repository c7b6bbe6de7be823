"""Fit an engine's per-iteration constants on measured timings.

Two kinds of measurements, each row a measurement of one model on `tp` GPUs of one type:

- **steps** (`steps=FILE.csv`): one scheduler iteration each, columns `model, gpu, tp,
  prefill_tokens, decode_seqs, decode_ctx, step_ms` and optionally `precision`, `kv_dtype`,
  `prefill_seqs`, `prefill_pairs` (as `LatencyModel.iteration_s`; pairs default to a fresh
  prompt's). The fit compares `iteration_s` with `step_ms` directly (fast).
- **benchmarks** (`benchmarks=FILE.csv`): closed-loop serving benchmarks, columns `model, gpu,
  tp, concurrency, isl, osl` and at least one of `ttft_ms`, `tpot_ms`, `itl_ms`, optionally
  `precision`, `kv_dtype`, `ep`, `num_requests` (default 10 x concurrency), `range_ratio`
  (lengths uniform in [ratio x len, len]; default 1: fixed), `max_num_seqs` (default the
  concurrency), `max_num_batched_tokens` (default 8192). Each row is replayed through the
  simulator (`wrpsim.validate.replay`), so queueing and chunked prefill are part of the fit.

The fitted constants (`FIT_FIELDS` by default) minimise the sum over rows and metrics of
soft-L1(log(simulated / measured)) with non-negative bounds; the report gives the median and
90th-percentile absolute percentage error per metric before and after the fit.
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from wrpsim.errors import ConfigError

FIT_FIELDS = ("iter_overhead_us", "seq_overhead_us", "layer_overhead_us", "frontend_us",
              "frontend_us_per_token")
#: upper bounds of the fittable constants (physical ranges: a few ms per iteration at most);
#: `eager_layer_us` is fitted only when named (`fit=[...]`): it needs runs whose prompt steps
#: are launched eagerly (FULL_DECODE_ONLY graphs) and CPU-bound
BOUNDS = {"iter_overhead_us": 20000.0, "seq_overhead_us": 500.0, "layer_overhead_us": 200.0,
          "frontend_us": 200000.0, "frontend_us_per_token": 50.0, "sampling_passes": 50.0,
          "eager_layer_us": 2000.0, "frontend_us_per_stream_token": 1000.0}
#: robust loss of the fit: Cauchy on log(simulated / measured) with a 5 % scale, so a few rows
#: far off (a case the model misses) do not pull the constants away from the bulk of the rows
LOSS, F_SCALE = "cauchy", 0.05
STEP_COLUMNS = ("model", "gpu", "tp", "prefill_tokens", "decode_seqs", "decode_ctx", "step_ms")
BENCH_COLUMNS = ("model", "gpu", "tp", "concurrency", "isl", "osl")
BENCH_METRICS = {"ttft_ms": "ttft_mean_s", "tpot_ms": "tpot_mean_s", "itl_ms": "itl_p50_s"}


def _read_csv(path: str | Path, required: tuple) -> pd.DataFrame:
    path = Path(path)
    try:
        df = pd.read_csv(path)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: cannot read CSV: {exc}") from None
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise ConfigError(f"{path}: missing column(s) {missing}; required: {', '.join(required)}")
    if df.empty:
        raise ConfigError(f"{path}: no rows")
    return df


def benchmark_cases(path: str | Path, split: str = "fit") -> list:
    """`wrpsim.validate.sets.Case`s of a benchmarks CSV (see module docstring)."""
    from wrpsim.validate.sets import Case

    df = _read_csv(path, BENCH_COLUMNS)
    if not any(c in df.columns for c in BENCH_METRICS):
        raise ConfigError(f"{path}: needs at least one of the columns {', '.join(BENCH_METRICS)}")
    out = []
    for i, r in enumerate(df.to_dict("records"), start=2):
        where = f"{path}: line {i}"
        c = _int(r, "concurrency", where)
        isl, osl = _int(r, "isl", where), _int(r, "osl", where)
        ratio = 1.0 if _nan(r.get("range_ratio")) else _number(r.get("range_ratio"))
        if ratio is None or not 0 < ratio <= 1:
            raise ConfigError(f"{where}: range_ratio must be a number in (0, 1], "
                              f"got {r.get('range_ratio')!r}")
        if all(_nan(r.get(k)) for k in BENCH_METRICS):
            raise ConfigError(f"{where}: no measurement: needs at least one of "
                              f"{', '.join(BENCH_METRICS)}")


        mns = _int(r, "max_num_seqs", where, default=c)
        budget = _int(r, "max_num_batched_tokens", where, default=8192)
        pool = {"gpu": str(r["gpu"]), "model": str(r["model"]), "tp": _int(r, "tp", where),
                "ep": _int(r, "ep", where, default=1), "count": 1,
                "precision": str(r.get("precision") or "bf16"),
                "kv_dtype": str(r.get("kv_dtype") or "auto"),
                "scheduler": {"policy": "sarathi", "token_budget": max(budget, mns),
                              "max_seqs": mns, "block_size": 16}}
        measured = {v: _positive(r, k, where) / 1e3 for k, v in BENCH_METRICS.items()
                    if k in r and not _nan(r[k])}
        wl = {"name": "benchmark", "source": {
            "kind": "closed_loop", "concurrency": c,
            "num_requests": _int(r, "num_requests", where, default=10 * c),
            "prompt_tokens": _lengths(isl, ratio), "output_tokens": _lengths(osl, ratio)}}
        out.append(Case("benchmarks", f"{path.name if hasattr(path, 'name') else path}:{i}",
                        pool["gpu"], pool["model"], split, pool, measured, workload=wl))
    return out


def _lengths(n: int, ratio: float) -> int | dict:
    """A fixed length, or lengths uniform in [ratio x n, n]."""
    return n if ratio == 1 else {"dist": "uniform", "low": max(1, int(n * ratio)), "high": n}


def _nan(v) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def _number(v) -> float | None:
    """`v` as a finite float, or None (missing, text, NaN or infinite)."""
    if _nan(v) or isinstance(v, bool):
        return None
    try:
        x = float(v)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def _int(r: dict, key: str, where: str, low: int = 1, default: int | None = None) -> int:
    """Column `key` of row `r` as an integer >= `low` (`default` when the cell is empty and a
    default is given); `ConfigError` naming the file, line and column otherwise."""
    v = r.get(key)
    if default is not None and (_nan(v) or v == ""):
        return default
    x = _number(v)
    if x is None or x != int(x) or int(x) < low:
        raise ConfigError(f"{where}: {key} must be an integer >= {low}, got {v!r}")
    return int(x)


def _positive(r: dict, key: str, where: str) -> float:
    """Column `key` of row `r` as a number > 0 (a measured time); `ConfigError` otherwise."""
    x = _number(r.get(key))
    if x is None or x <= 0:
        raise ConfigError(f"{where}: {key} must be a number > 0, got {r.get(key)!r}")
    return x


def read_steps(path: str | Path) -> pd.DataFrame:
    """The rows of a steps CSV (module docstring), each checked: `tp` an integer >= 1,
    `prefill_tokens`, `decode_seqs`, `decode_ctx` (and `prefill_seqs` when given) integers >= 0
    with some work in the step, `step_ms` (and `prefill_pairs` when given) a number > 0;
    `ConfigError` naming the file, line and column of the first bad cell."""
    df = _read_csv(path, STEP_COLUMNS)
    for i, r in enumerate(df.to_dict("records"), start=2):
        where = f"{path}: line {i}"
        _int(r, "tp", where)
        p = _int(r, "prefill_tokens", where, low=0)
        d = _int(r, "decode_seqs", where, low=0)
        _int(r, "decode_ctx", where, low=0)
        if p + d == 0:
            raise ConfigError(f"{where}: a step needs prefill_tokens or decode_seqs > 0 "
                              f"(a step with no work has no time to fit)")
        _positive(r, "step_ms", where)
        if not _nan(r.get("prefill_pairs")):
            _positive(r, "prefill_pairs", where)
        if not _nan(r.get("prefill_seqs")):
            _int(r, "prefill_seqs", where)
    return df


def case_residuals(cases, engine: str, overrides: dict) -> np.ndarray:
    """log(simulated / measured) for every measured metric of every case."""
    from wrpsim.validate.replay import simulate

    out = []
    for case in cases:
        sim = simulate(case, engine, overrides)
        for k, v in case.measured.items():
            if k == "power_w":  # the constants are times; power has its own fit
                continue
            s = sim.get(k)
            if s is not None and np.isfinite(s) and s > 0 and v > 0:
                out.append(math.log(s / v))
    return np.asarray(out)


def step_residuals(df: pd.DataFrame, engine: str, overrides: dict) -> np.ndarray:
    """log(iteration_s / step_ms) of every row of a steps table."""
    from wrpsim.pool.engines import build_latency_model

    out = []
    models: dict = {}
    for r in df.to_dict("records"):
        key = (r["model"], r["gpu"], int(r["tp"]), r.get("precision") or "bf16",
               r.get("kv_dtype") or "auto")
        lat = models.get(key)
        if lat is None:
            lat = models[key] = build_latency_model(*key[:3], engine, key[3], key[4], 1,
                                                    overrides)
        p = int(r["prefill_tokens"])
        pairs = r.get("prefill_pairs")
        pairs = p * (p + 1) / 2.0 if _nan(pairs) else float(pairs)
        seqs = r.get("prefill_seqs")
        seqs = 1 if _nan(seqs) else int(seqs)
        t = lat.iteration_s(p, pairs, int(r["decode_seqs"]), int(r["decode_ctx"]), seqs)
        out.append(math.log(t / (float(r["step_ms"]) / 1e3)))
    return np.asarray(out)


def fit_constants(engine: str, cases=(), steps: pd.DataFrame | None = None,
                  fields=FIT_FIELDS, start: dict | None = None) -> tuple[dict, dict]:
    """Least-squares fit of `fields` (engine constants) on `cases` and/or `steps`; returns
    (fitted values, report with 'before' / 'after' absolute % errors)."""
    from scipy.optimize import least_squares

    from wrpsim.pool.engines import get_engine

    eng = get_engine(engine)
    if eng.kind != "kernels":
        raise ConfigError(f"engine {engine}: only kernels engines have constants to fit")
    bad = [f for f in fields if f not in BOUNDS]
    if bad:
        raise ConfigError(f"fit: unknown field(s) {bad}; valid: {', '.join(BOUNDS)}")
    base = {f: float(getattr(eng.constants, f)) for f in fields}
    x0 = np.array([(start or base).get(f, base[f]) for f in fields], dtype=float)
    scale = np.array([max(BOUNDS[f] / 100.0, 1e-3) for f in fields])

    def resid(x: np.ndarray) -> np.ndarray:
        ov = dict(zip(fields, np.maximum(x * scale, 0.0)))
        parts = []
        if cases:
            parts.append(case_residuals(cases, engine, ov))
        if steps is not None:
            parts.append(step_residuals(steps, engine, ov))
        return np.concatenate(parts)

    r0 = resid(x0 / scale)
    hi = np.array([BOUNDS[f] for f in fields]) / scale
    # start inside the bounds (1 % of each range at least) so finite differences have a step
    xs = np.clip(np.maximum(x0 / scale, 1.0), 0, hi)
    res = least_squares(resid, xs, bounds=(np.zeros(len(fields)), hi), loss=LOSS,
                        f_scale=F_SCALE, diff_step=0.1, max_nfev=60)
    fitted = {f: round(float(v), 3) for f, v in zip(fields, res.x * scale)}
    report = {"before": _ape(r0), "after": _ape(res.fun if res.fun is not None else r0),
              "evaluations": int(res.nfev)}
    return fitted, report


def _ape(log_ratios: np.ndarray) -> dict:
    a = np.abs(np.expm1(log_ratios)) * 100
    return {"n": len(a), "median_pct": round(float(np.median(a)), 1),
            "p90_pct": round(float(np.percentile(a, 90)), 1)} if len(a) else {"n": 0}


def apply(engine, fitted: dict):
    """The engine with `fitted` constants (for reporting before writing)."""
    return replace(engine, constants=replace(engine.constants, **fitted))
