"""The error table of a validation run: per set, GPU and split, the median and 90th-percentile
absolute percentage error of each metric family; the same per model, with the signed median
(which way wrpsim errs); and the worst cases.

Metric families (a case may measure several members of one family, e.g. mean and median TTFT;
each member is one error sample): ``ttft`` (time to first token), ``tpot`` (time per output
token after the first, or the median inter-token latency ``itl``), ``e2e`` (end-to-end
latency) and ``power`` (average watts per GPU).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

FAMILIES = {"ttft": ("ttft_mean_s", "ttft_p50_s"), "tpot": ("tpot_mean_s", "tpot_p50_s"),
            "itl": ("itl_p50_s",), "e2e": ("e2e_mean_s", "e2e_p50_s"), "power": ("power_w",)}
#: the acceptance goals of the median absolute % error per family
GOALS = {"ttft": 15.0, "tpot": 10.0, "itl": 10.0, "e2e": 10.0, "power": 10.0}


def long_errors(rows: list[dict]) -> pd.DataFrame:
    """One row per (case, metric): set, gpu, split, case, family, metric, measured, simulated,
    signed error (%)."""
    out = []
    for r in rows:
        for fam, metrics in FAMILIES.items():
            for m in metrics:
                if m in r["measured"] and m in r["simulated"]:
                    meas, sim = r["measured"][m], r["simulated"][m]
                    if meas and sim is not None and np.isfinite(sim):
                        out.append({"set": r["set"], "gpu": r["gpu"], "model": r["model"],
                                    "split": r["split"], "case": r["name"], "family": fam,
                                    "metric": m, "measured": meas, "simulated": sim,
                                    "error_pct": (sim / meas - 1.0) * 100.0})
    return pd.DataFrame(out, columns=["set", "gpu", "model", "split", "case", "family", "metric",
                                      "measured", "simulated", "error_pct"])


def _by_family(errors: pd.DataFrame, keys, stats) -> pd.DataFrame:
    """Per group of `keys`: cases, then per family each `(suffix, column, statistic)` of
    `stats` over the family's error samples (column `<family>_<suffix>`)."""
    e = errors.assign(abs_pct=errors["error_pct"].abs())
    keys = list(keys)
    parts = [e.groupby(keys)["case"].nunique().rename("cases")]
    for fam in FAMILIES:
        f = e[e["family"] == fam].groupby(keys)
        parts += [stat(f[col]).rename(f"{fam}_{suffix}") for suffix, col, stat in stats]
    return pd.concat(parts, axis=1).reset_index()


def summary(errors: pd.DataFrame, by=("set", "gpu", "split")) -> pd.DataFrame:
    """Per group: cases and, per family, median and p90 absolute % error."""
    if errors.empty:
        return pd.DataFrame()
    return _by_family(errors, by, [("median", "abs_pct", lambda g: g.median()),
                                   ("p90", "abs_pct", lambda g: g.quantile(0.9))])


def per_model(errors: pd.DataFrame) -> pd.DataFrame:
    """Per set, GPU, split and catalog model: cases and, per family, the median signed % error
    (positive: wrpsim too slow / too high) and the median absolute % error — where wrpsim is
    wrong for one model, which the per-GPU `summary` pools with the others."""
    if errors.empty:
        return pd.DataFrame()
    tab = _by_family(errors, ("set", "gpu", "split", "model"),
                     [("signed", "error_pct", lambda g: g.median()),
                      ("median", "abs_pct", lambda g: g.median())])
    return tab.dropna(axis=1, how="all")


def worst(errors: pd.DataFrame, n: int = 10) -> pd.DataFrame:
    """The `n` (case, metric) rows with the largest absolute error."""
    if errors.empty:
        return errors
    e = errors.assign(abs_pct=errors["error_pct"].abs())
    return e.sort_values("abs_pct", ascending=False).head(n).drop(columns="abs_pct")


def markdown(tab: pd.DataFrame) -> str:
    """`tab` as a Markdown table (floats with one decimal, missing as '–')."""
    if tab.empty:
        return "(no cases)\n"
    cols = list(tab.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in tab.itertuples(index=False):
        cells = []
        for v in row:
            if isinstance(v, float):
                cells.append("–" if np.isnan(v) else f"{v:.1f}")
            else:
                cells.append(str(v))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def goals_met(tab: pd.DataFrame) -> dict:
    """{family: True/False/None} whether every group's median meets `GOALS` (None: no data)."""
    out = {}
    for fam, goal in GOALS.items():
        col = f"{fam}_median"
        vals = tab[col].dropna() if col in tab else pd.Series(dtype=float)
        out[fam] = None if vals.empty else bool((vals <= goal).all())
    return out
