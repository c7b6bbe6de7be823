"""Task category and complexity for traces that do not carry them.

Transform `categories:` of a workload::

    categories:
      mix: {code: 0.25, prose: 0.4, rag: 0.2, mixed: 0.15}   # drawn per request (optional)
      overwrite: false          # false: only rows without a category draw one
      complexity:               # per category: a number, or [low, high] drawn uniformly
        code: 0.8
        prose: [0.1, 0.3]
      complexity_default: null  # rows whose category has no entry (null: unknown, NaN)

Categories are drawn independently with probability weight / sum (stream `workload.category`),
complexities from the same stream after them. Complexity is a number in [0, 1] (0 trivial,
1 hardest); the vLLM Semantic Router decision sample's labels low / medium / high read as
0.2 / 0.5 / 0.8 (`LEVELS`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from wrpsim.errors import ConfigError, boolean, unknown_choice

KEYS = ("mix", "overwrite", "complexity", "complexity_default")
#: Numeric reading of categorical complexity labels.
LEVELS = {"low": 0.2, "medium": 0.5, "high": 0.8}


def _unit(value: Any, field: str) -> float:
    if isinstance(value, str) and value in LEVELS:
        return LEVELS[value]
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 <= value <= 1:
        raise ConfigError(f"{field}: a number in [0, 1] (or low/medium/high) is required, "
                          f"got {value!r}")
    return float(value)


def _range(value: Any, field: str) -> tuple[float, float]:
    if isinstance(value, (list, tuple)):
        if len(value) != 2:
            raise ConfigError(f"{field}: expected a number or [low, high], got {value!r}")
        lo, hi = _unit(value[0], f"{field}[0]"), _unit(value[1], f"{field}[1]")
        if hi < lo:
            raise ConfigError(f"{field}: high {hi} < low {lo}")
        return lo, hi
    v = _unit(value, field)
    return v, v


def assign_categories(df: pd.DataFrame, spec: Mapping, rng: np.random.Generator) -> pd.DataFrame:
    """The trace with `category` drawn from `spec['mix']` and `complexity` set per category."""
    if not isinstance(spec, Mapping):
        raise ConfigError(f"categories: expected a mapping with keys {', '.join(KEYS)}")
    for key in spec:
        if key not in KEYS:
            raise unknown_choice(f"categories.{key}", key, KEYS)
    out = df.copy()
    n = len(out)
    have = out["category"].tolist() if "category" in out.columns else [None] * n
    mix = spec.get("mix")
    if mix:
        if not isinstance(mix, Mapping):
            raise ConfigError(f"categories.mix: expected {{category: weight}}, got {mix!r}")
        names = sorted(str(k) for k in mix)
        w = np.array([float(mix[k]) for k in names])
        if (w < 0).any() or w.sum() <= 0:
            raise ConfigError("categories.mix: weights must be >= 0 and not all 0")
        pick = np.array(names, dtype=object)[rng.choice(len(names), size=n, p=w / w.sum())]
        overwrite = boolean("categories.overwrite", spec.get("overwrite"), False)
        have = [p if (overwrite or h is None) else h for h, p in zip(have, pick)]
    out["category"] = pd.Series(have, dtype=object)
    table = spec.get("complexity")
    if table is not None or spec.get("complexity_default") is not None:
        if table is not None and not isinstance(table, Mapping):
            raise ConfigError(f"categories.complexity: expected {{category: value}}, got {table!r}")
        ranges = {str(k): _range(v, f"categories.complexity.{k}")
                  for k, v in (table or {}).items()}
        d = spec.get("complexity_default")
        dflt = None if d is None else _range(d, "categories.complexity_default")
        u = rng.random(n)
        old = (out["complexity"].to_numpy(dtype=np.float64) if "complexity" in out.columns
               else np.full(n, np.nan))
        cx = old.copy()
        for i, cat in enumerate(have):
            r = ranges.get(cat, dflt) if cat is not None else dflt
            if r is not None:
                cx[i] = r[0] + (r[1] - r[0]) * u[i]
        out["complexity"] = cx.astype(np.float64)
    return out
