"""Fit an engine's per-iteration constants on measured timings.

The measurements (per-step timings, serving benchmarks) are read by
`wrpsim.calibrate.measured`, which documents their files and checks their rows.

The fitted constants (`FIT_FIELDS` by default) minimise the sum over rows and metrics of
a robust loss (`LOSS`) of log(simulated / measured) with non-negative bounds; the report
gives the median and 90th-percentile absolute percentage error before and after the fit, the
constants the data do not constrain (kept at the engine's values), those ending on a bound,
how far each fitted one can move without fitting the rows worse (`spread`), and every row's
signed error before and after (`fit_constants`).
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import replace

import numpy as np
import pandas as pd

from wrpsim.calibrate.measured import COLUMN_OF, is_blank, rows, text_or
from wrpsim.errors import ConfigError, warn

FIT_FIELDS = ("iter_overhead_us", "seq_overhead_us", "layer_overhead_us", "frontend_us",
              "frontend_us_per_token")
#: upper bounds of the fittable constants (physical ranges: a few ms per iteration at most);
#: `eager_layer_us` is fitted only when named (`fit=[...]`): it needs runs whose prompt steps
#: are launched eagerly (FULL_DECODE_ONLY graphs) and CPU-bound
BOUNDS = {"iter_overhead_us": 20000.0, "seq_overhead_us": 500.0, "layer_overhead_us": 200.0,
          "frontend_us": 200000.0, "frontend_us_per_token": 50.0, "sampling_passes": 50.0,
          "eager_layer_us": 2000.0, "frontend_us_per_stream_token": 1000.0,
          "frontend_us_serial": 200000.0, "handover_us": 2000000.0}
#: robust loss of the fit: Cauchy on log(simulated / measured) with a 5 % scale, so a few rows
#: far off (a case the model misses) do not pull the constants away from the bulk of the rows
LOSS, F_SCALE = "cauchy", 0.05

#: a constant whose residuals move by less than this (log ratio: 0.01 %) when it moves by 5 %
#: of its range is one the data do not constrain: the simulator is deterministic, but a
#: replayed benchmark's metric can shift by a hair with anything that moves a request's
#: timing (a front-end constant on ITL rows), which is no evidence for the constant
SENSITIVITY_TOL = 1e-4
#: where in its range (fractions of `BOUNDS`) a constant that does not move the residuals at
#: its start is probed again: a CPU time hidden behind the GPU matters only once it exceeds
#: the GPU's step
PROBE_FRACTIONS = (0.02, 0.1, 0.3, 1.0)
#: where in its range a constant the fit could not move from its start is tried before the
#: fit starts again (log-spaced: a CPU time per sequence of 5 µs and of 250 µs both occur)
SCAN_FRACTIONS = (0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.4, 0.7, 1.0)
#: the least relative drop of the median or 90th-percentile error that makes a fit better
#: than its start (`_better`)
IMPROVEMENT = 0.005
#: a fitted constant this close to an end of its range (a fraction of the range) is on it
ON_BOUND_TOL = 1e-4
#: where a fitted constant is tried again, the others held (multiples of its fitted value,
#: and 0 where half of it fits as well): the values among them that fit the rows as well
#: (`AS_WELL_PTS`) are its `spread` in the report — a simulated benchmark's TTFT moves in
#: steps with a front-end constant (a request arriving just before or just after an
#: iteration starts), so a few rows can leave a constant unpinned over a wide range
SPREAD_FACTORS = (0.5, 2.0)
#: "fits as well": the median absolute % error within this many points of the fit's, and the
#: 90th percentile within twice that
AS_WELL_PTS = 0.5


def _with(y: np.ndarray, k: int, v: float, hi: np.ndarray) -> np.ndarray:
    """`y` with its k-th entry set to `v`, inside [0, hi]."""
    y = y.copy()
    y[k] = v
    return np.clip(y, 0, hi)


def _cost(r: np.ndarray) -> float:
    """The fit's objective at residuals `r` (`LOSS` at `F_SCALE`, as `least_squares` sums
    it)."""
    return float(0.5 * F_SCALE ** 2 * np.sum(np.log1p((r / F_SCALE) ** 2)))


def case_entries(cases, engine: str, overrides: dict) -> list[tuple]:
    """(row, metric, log(simulated / measured) or None, why None) for every measured metric of
    every case; row: the case's file and line (`info['where']`) or its name."""
    from wrpsim.validate.replay import simulate

    out = []
    for case in cases:
        row = case.info.get("where", case.name)
        try:
            sim = simulate(case, engine, overrides)
        except ConfigError as e:  # (a row's own setting its engine cannot run: name the row)
            msg = str(e)
            for name in case.pool_configs:
                pre = f"pool.pools.{name}."
                if msg.startswith(pre):
                    msg = msg[len(pre):] if case.pools is None else f"{name}: {msg[len(pre):]}"
                    break
            raise ConfigError(f"{row}: {msg}") from None
        for k, v in case.measured.items():
            if k == "power_w":  # the constants are times; power has its own fit
                continue
            s = sim.get(k)
            if s is not None and np.isfinite(s) and s > 0 and v > 0:
                out.append((row, COLUMN_OF.get(k, k), math.log(s / v), ""))
            else:
                why = ("the simulation completed no request" if not sim.get("requests")
                       else f"the simulation gave no {k}")
                out.append((row, COLUMN_OF.get(k, k), None, why))
    return out


def step_entries(df: pd.DataFrame, engine: str, overrides: dict) -> list[tuple]:
    """(row, 'step_ms', log(iteration_s / step_ms), '') of every row of a steps table."""
    from wrpsim.pool.engines import build_latency_model

    out = []
    models: dict = {}
    path = df.attrs.get("path", "steps")
    for i, r in rows(df):
        key = (r["model"], r["gpu"], int(r["tp"]), text_or(r.get("precision"), "bf16"),
               text_or(r.get("kv_dtype"), "auto"))
        lat = models.get(key)
        if lat is None:
            lat = models[key] = build_latency_model(*key[:3], engine, key[3], key[4], 1,
                                                    overrides)
        p = int(r["prefill_tokens"])
        pairs = r.get("prefill_pairs")
        pairs = p * (p + 1) / 2.0 if is_blank(pairs) else float(pairs)
        seqs = r.get("prefill_seqs")
        seqs = 1 if is_blank(seqs) else int(seqs)
        t = lat.iteration_s(p, pairs, int(r["decode_seqs"]), int(r["decode_ctx"]), seqs)
        out.append((f"{path}: line {i}", "step_ms",
                    math.log(t / (float(r["step_ms"]) / 1e3)), ""))
    return out


def fit_constants(engine: str, cases=(), steps: pd.DataFrame | None = None,
                  fields=FIT_FIELDS, start: dict | None = None) -> tuple[dict, dict]:
    """Least-squares fit of `fields` (engine constants) on `cases` and/or `steps`; returns
    (fitted values, report). A measurement whose simulation gives no value at the start (no
    request completed, say) is left out with a warning naming its row; none left is an error.
    A constant the data do not constrain (the residuals move neither when it moves by 5 % of
    its range nor at `PROBE_FRACTIONS` of it: e.g. `iter_overhead_us` under async scheduling
    when no row is CPU-bound, hidden behind the GPU), or one they bound from above only (any
    smaller value fits as well), is not fitted: it keeps the engine's value and is listed in
    `not_constrained`. A constant flat at its start but seen elsewhere in its range (rows
    whose CPU time exceeds the GPU's once it is long enough) is fitted from there too, the
    better of the two fits kept. The report has the
    median / p90 absolute % error 'before' and 'after', `on_bound` (fitted constants at an end
    of their range) and `rows`: (row, metric, signed % error before, after, note) of every
    measurement. A fit that lowers neither error figure (`_better`) is not taken: nothing
    is fitted, the report's 'after' is 'before', and `kept` names the constants it would have
    moved (refitting an earlier fit's result gives that, not a drift). The stages are
    `_Fit`'s methods: the residuals, the probe for constants the data see, the bounded
    least-squares, the report."""
    from wrpsim.pool.engines import get_engine

    eng = get_engine(engine)
    if eng.kind != "kernels":
        raise ConfigError(f"engine {engine}: only kernels engines have constants to fit")
    bad = [f for f in fields if not isinstance(f, str) or f not in BOUNDS]
    if bad:
        raise ConfigError(f"fit: unknown field(s) {bad}; valid: {', '.join(BOUNDS)}")
    from wrpsim.validate.replay import case_warnings_once

    progress = Progress(len(cases or ()) + (0 if steps is None else len(steps)))
    try:
        with case_warnings_once():  # (each case is replayed at every point tried)
            fit = _Fit(eng, engine, cases, steps, list(fields), start, progress)
            free, seen = fit.probe()
            x_end, nfev, free = fit.solve(free, seen)
            return fit.report(x_end, nfev, free)
    finally:
        progress.clear()


class Progress:
    """One redrawn line on a terminal's stderr while a fit replays its measurements (a fit on
    a validation set's runs takes minutes with nothing else to show): the points simulated
    so far, the measurements each replays and the seconds spent. Nothing when stderr is not
    a terminal (a pipe, a log file, a test), so the command's output is unchanged there."""

    def __init__(self, measurements: int, stream=None):
        self.stream = stream or sys.stderr
        self.on = bool(getattr(self.stream, "isatty", lambda: False)())
        self.measurements, self.points, self.t0 = measurements, 0, time.perf_counter()
        self.drawn = False

    def point(self) -> None:
        """One more point of the fit simulated: draw the line."""
        self.points += 1
        if self.on:
            self.stream.write(f"\rwrpsim.calibrate: fit point {self.points} simulated "
                              f"({self.measurements} measured runs or steps replayed each), "
                              f"{time.perf_counter() - self.t0:,.0f} s\033[K")
            self.stream.flush()
            self.drawn = True

    def clear(self) -> None:
        """Clear a drawn line, so that a warning printed next starts on a clean line (called
        before each point is simulated, before the fit's own warnings and at the end)."""
        if self.drawn:
            self.stream.write("\r\033[K")
            self.stream.flush()
            self.drawn = False


class _Fit:
    """One fit of engine constants `fields` (`fit_constants`): the residuals at a point (one
    log ratio per measurement kept at the start) and the stages that use them."""

    def __init__(self, eng, engine: str, cases, steps, fields: list, start: dict | None,
                 progress: Progress):
        self.eng, self.engine, self.cases, self.steps, self.fields = (eng, engine, cases, steps,
                                                                      fields)
        self.base = {f: float(getattr(eng.constants, f)) for f in fields}
        self.x0 = np.array([(start or self.base).get(f, self.base[f]) for f in fields],
                           dtype=float)
        self.progress = progress  # (its line redrawn after every point simulated)
        self.e0 = self.entries(self.x0)
        self.keep = [i for i, e in enumerate(self.e0) if e[2] is not None]
        self.progress.clear()
        for row, metric, _, why in (e for e in self.e0 if e[2] is None):
            warn(f"{row}: {metric} left out of the fit: {why}")
        if not self.keep:
            raise ConfigError("calibrate: no usable measurement left to fit (every row was "
                              "left out: see the warnings)")
        self.r0 = self.resid(self.x0)

    def serial_top(self, values: dict) -> float:
        """The ceiling of `frontend_us_serial`, the queued part of frontend_us: all of it (as
        `values` have it, else the engine's)."""
        return values.get("frontend_us", float(self.eng.constants.frontend_us))

    def entries(self, values: np.ndarray) -> list[tuple]:
        """`case_entries` and `step_entries` at the constants `values` (negative ones read as
        0; the queued front end no more than the front end it is part of). The latency models
        of earlier points are forgotten first: built for other constants, never used again."""
        from wrpsim.pool.engines import forget_models

        self.progress.clear()  # (a replay's warnings print on a line of their own)
        forget_models()
        ov = dict(zip(self.fields, np.maximum(values, 0.0)))
        serial = ov.get("frontend_us_serial", float(self.eng.constants.frontend_us_serial))
        if "frontend_us_serial" in ov or serial > self.serial_top(ov):  # (part of frontend_us)
            ov["frontend_us_serial"] = min(serial, self.serial_top(ov))
        out = case_entries(self.cases, self.engine, ov) if self.cases else []
        out += step_entries(self.steps, self.engine, ov) if self.steps is not None else []
        self.progress.point()
        return out

    def resid(self, values: np.ndarray) -> np.ndarray:
        """The kept measurements' log ratios at `values`."""
        e = self.entries(values)
        # a measurement that stops giving a value mid-fit counts as a factor e off
        return np.array([1.0 if e[i][2] is None else e[i][2] for i in self.keep])

    def moves(self, j: int, value: float, at: np.ndarray, r_at: np.ndarray) -> bool:
        """Whether constant j at `value` (the others at `at`) moves the residuals `r_at`."""
        x = at.copy()
        x[j] = value
        return bool(np.max(np.abs(self.resid(x) - r_at)) > SENSITIVITY_TOL)

    def probe(self) -> tuple[list, dict]:
        """(the indices of the constants the data see, {index: a value at which it moves the
        residuals}): a step of 5 % of its range from the start, else `PROBE_FRACTIONS`."""
        x0, r0, fields = self.x0, self.r0, self.fields
        free, seen = [], {}
        for j, f in enumerate(fields):
            step = 0.05 * BOUNDS[f]
            probe = x0[j] + step if x0[j] + step <= BOUNDS[f] else x0[j] - step
            if self.moves(j, probe, x0, r0):
                free.append(j)
                seen[j] = probe
                continue
            # flat at the start: a CPU time hidden behind the GPU, say, which the data may
            # still see once it is long enough to show; probe across the range before giving up
            for frac in PROBE_FRACTIONS:
                if abs(frac * BOUNDS[f] - x0[j]) > step and self.moves(j, frac * BOUNDS[f], x0,
                                                                        r0):
                    free.append(j)
                    seen[j] = frac * BOUNDS[f]
                    break
        return free, seen

    def solve(self, free: list, seen: dict) -> tuple[np.ndarray, int, list]:
        """(the constants at the end, evaluations, the constants fitted): bounded least
        squares of the `free` constants, again from a scan of those it could not move, and
        a constant fitted into a flat stretch (bounded from above only) given back."""
        from scipy.optimize import least_squares

        x0, fields = self.x0, self.fields
        x_end, nfev = x0.copy(), 0
        if not free:
            return x_end, nfev, free
        free = list(free)
        scale = np.array([max(BOUNDS[fields[j]] / 100.0, 1e-3) for j in free])
        hi = np.array([BOUNDS[fields[j]] for j in free]) / scale

        def sub(y: np.ndarray) -> np.ndarray:
            x = x0.copy()
            x[free] = np.maximum(y * scale, 0.0)
            return self.resid(x)

        def fit_from(y0: np.ndarray):
            return least_squares(sub, np.clip(y0, 0, hi), bounds=(np.zeros(len(free)), hi),
                                 loss=LOSS, f_scale=F_SCALE, diff_step=0.1, max_nfev=60)

        # start inside the bounds (1 % of each range at least) so finite differences have a
        # step
        ys = np.clip(np.maximum(x0[free] / scale, 1.0), 0, hi)
        best = fit_from(ys)
        nfev = int(best.nfev)
        # a constant the fit left where it started saw no gradient there (a CPU time hidden
        # behind the GPU: a small step shows nothing, the probe's larger one did), and one
        # whose local slope led it away from a better region (a queued front end: a little
        # queueing spreads a burst's arrivals and shortens its TTFT, more lengthens it, so the
        # fit slides to 0 while the probe's point fits far better): fit again from where the
        # probe saw it matter, and keep the better of the two fits
        stuck = [k for k in range(len(free)) if abs(best.x[k] - ys[k]) <= 1e-9 * max(1.0, ys[k])
                 or _cost(sub(_with(best.x, k, seen[free[k]] / scale[k], hi))) < _cost(
                     best.fun)]
        nfev += len(free)  # (the probe points' costs, at most one each)
        if stuck:
            # each such constant from the best point of a scan over its range (the residuals
            # are flat in stretches: a local step may see nothing)
            y2 = best.x.copy()
            for k in stuck:
                grid = [seen[free[k]] / scale[k]] + [f * hi[k] for f in SCAN_FRACTIONS]
                costs = []
                for v in grid:
                    costs.append(_cost(sub(_with(y2, k, v, hi))))
                nfev += len(grid)
                y2[k] = grid[int(np.argmin(costs))]
            again = fit_from(y2)
            nfev += int(again.nfev)
            if again.cost < best.cost:
                best = again
        x_end[free] = best.x * scale
        # a constant fitted into a flat stretch (any smaller value fits as well: the data
        # bound it from above only, as a CPU time hidden behind the GPU) is not constrained:
        # it keeps the engine's value where that fits as well
        r_end = self.resid(x_end)
        for j in list(free):
            down = max(x_end[j] - 0.05 * BOUNDS[fields[j]], 0.0)
            if down < x_end[j] and not self.moves(j, down, x_end, r_end) and not self.moves(
                    j, self.base[fields[j]], x_end, r_end):
                free.remove(j)
        return x_end, nfev, free

    def report(self, x_end: np.ndarray, nfev: int, free: list) -> tuple[dict, dict]:
        """(fitted values, report) of `fit_constants` from the end of `solve`."""
        fields, base, eng, keep = self.fields, self.base, self.eng, self.keep
        x0, e0, r0 = self.x0, self.e0, self.r0
        fixed = [fields[j] for j in range(len(fields)) if j not in free]
        for j, f in enumerate(fields):  # a constant the data do not see keeps the engine's value
            if j not in free:
                x_end[j] = base[f]
        if "frontend_us_serial" in fields:  # as `entries` took it
            j = fields.index("frontend_us_serial")
            x_end[j] = min(x_end[j], self.serial_top(dict(zip(fields, x_end))))
        fitted = {fields[j]: round(float(x_end[j]), 3) for j in free}
        e1 = self.entries(x_end)
        r1 = np.array([1.0 if e1[i][2] is None else e1[i][2] for i in keep])
        kept = False
        if fitted and not _better(r1, r0):  # (a refit of an earlier fit, say: keep what is there)
            fitted, x_end, e1, r1, kept = {}, x0.copy(), e0, r0, True
        rows = []
        for i, (row, metric, before, why) in enumerate(e0):
            after = e1[i][2] if before is not None else None
            rows.append({"row": row, "metric": metric, "before_pct": _pct(before),
                         "after_pct": _pct(after), "note": f"left out: {why}" if why else ""})
        rows[:0] = [{"row": row, "metric": "", "before_pct": None, "after_pct": None,  # rows the
                     "note": f"left out: {why}"}  # benchmarks file could not fit, first
                    for row, why in getattr(self.cases, "left_out", ())]
        # (within ON_BOUND_TOL of its range: the bounded least-squares stops just inside a bound)
        on_bound = [f for f, v in fitted.items()
                    if v <= ON_BOUND_TOL * BOUNDS[f] or v >= BOUNDS[f] * (1 - ON_BOUND_TOL)]
        if "frontend_us_serial" in fitted and "frontend_us_serial" not in on_bound:
            if fitted["frontend_us_serial"] >= self.serial_top(fitted) * (1 - ON_BOUND_TOL):
                on_bound.append("frontend_us_serial")
        report = {"before": _ape(r0), "after": _ape(r1), "evaluations": nfev,
                  "not_constrained": fixed, "on_bound": on_bound, "rows": rows}
        if ("frontend_us" in fitted and "frontend_us_serial" not in fitted
                and eng.constants.frontend_us_serial > fitted["frontend_us"]):
            # the engine's queued part (not asked for, or not constrained by the data) cannot
            # exceed the front end it is part of: lowered with it (as `entries` simulated it),
            # and written so (not fitted: other data may say otherwise)
            report["lowered"] = {"frontend_us_serial": fitted["frontend_us"]}
        if "frontend_us_serial" in on_bound:  # which end: 0, or all of frontend_us
            top = self.serial_top({**base, **fitted})
            v = fitted.get("frontend_us_serial", 0.0)
            report["serial_end"] = "top" if top > 0 and v >= top * (1 - ON_BOUND_TOL) else "bottom"
        if kept:
            report["kept"] = [fields[j] for j in free]
        elif fitted:
            report["spread"], n = self.spread(x_end, free, _ape(r1))
            report["evaluations"] += n
        return fitted, report

    def spread(self, x_end: np.ndarray, free: list, at: dict) -> tuple[dict, int]:
        """({constant: [lo, hi]}, evaluations): the least and greatest of its fitted value
        and the values `SPREAD_FACTORS` x it (and 0 where half of it fits as well), the others
        held, that fit the rows as well as the fit (`AS_WELL_PTS`): a wide one says the data
        do not pin the constant."""
        out, n = {}, 0
        for j in free:
            f, v = self.fields[j], float(x_end[j])
            ok = [v]
            for factor in SPREAD_FACTORS:
                w = min(v * factor, BOUNDS[f])
                if w == v:
                    continue
                n += 1
                if self._as_well(x_end, j, w, at):
                    ok.append(w)
                    if factor < 1 and v > 0:
                        n += 1
                        if self._as_well(x_end, j, 0.0, at):
                            ok.append(0.0)
            out[f] = [round(min(ok), 3), round(max(ok), 3)]
        return out, n

    def _as_well(self, x_end: np.ndarray, j: int, value: float, at: dict) -> bool:
        """Whether constant j at `value` (the others at `x_end`) fits the rows as well as the
        error figures `at` (`AS_WELL_PTS`)."""
        x = x_end.copy()
        x[j] = value
        e = _ape(self.resid(x))
        return (e["median_pct"] <= at["median_pct"] + AS_WELL_PTS
                and e["p90_pct"] <= at["p90_pct"] + 2 * AS_WELL_PTS)


def _better(after: np.ndarray, before: np.ndarray) -> bool:
    """Whether residuals `after` improve on `before` as the report measures them: a lower
    median or 90th-percentile absolute % error, by more than the report's rounding and 0.5 %
    of itself (a 90th percentile of 60,000 % — a row in other units — that moves by 2 points
    is no improvement). The fit
    minimises a robust loss, whose surface over a simulation is rough: started from an earlier
    fit's result it can land on another point of about the same loss with both figures a
    little worse; such a fit is not taken. (One of them may rise: a row far off, which the
    robust loss lets go, can lift the 90th percentile while the bulk of the rows improves.)"""
    a, b = _ape(after), _ape(before)
    return any(a[k] < b[k] * (1 - IMPROVEMENT) - 0.05 for k in ("median_pct", "p90_pct"))


def _pct(log_ratio: float | None) -> float | None:
    """Signed % error (simulated / measured - 1) of a log ratio, None for none."""
    return None if log_ratio is None else round(float(math.expm1(log_ratio)) * 100, 2) + 0.0


def _ape(log_ratios: np.ndarray) -> dict:
    a = np.abs(np.expm1(log_ratios)) * 100
    return {"n": len(a), "median_pct": round(float(np.median(a)), 1),
            "p90_pct": round(float(np.percentile(a, 90)), 1)} if len(a) else {"n": 0}


def apply(engine, fitted: dict):
    """The engine with `fitted` constants (for reporting before writing)."""
    return replace(engine, constants=replace(engine.constants, **fitted))
