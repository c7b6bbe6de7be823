"""Token-length distributions for synthetic workloads.

Two families:

- **Empirical CDF** (`EmpiricalCDF`), in the fleet-sim format: a JSON list of
  `[tokens, cumulative_fraction]` pairs (or an object whose `cdf` key holds that list), tokens
  strictly increasing, fractions non-decreasing in [0, 1], the last equal to 1. The CDF is taken
  as piecewise linear between the points and through (0, 0), sampled by inversion and rounded
  *up* to an integer, so P(sample <= tokens_k) equals fraction_k exactly at every point.
- **Fitted distributions** (`draw_dist`), given as `{dist: name, ...}`:
  `constant` (value), `uniform` (low, high; integers, both inclusive), `lognormal` (mean = the
  mean in tokens, sigma = the sigma of the underlying normal, so mu = ln(mean) - sigma^2/2),
  `exponential` (mean; rounded up), `geometric` (mean >= 1; support 1, 2, ...). Every spec takes
  an optional `max` (samples are clipped to it); samples are always >= 1.

Benchmark-style sources (`closed_loop`, `constant_rate`) take a *length spec* per token count
(`token_counts`): an integer >= 1 (every request gets it, as `vllm bench serve
--random-input-len` or AIConfigurator's isl/osl) or a fitted-distribution mapping.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from wrpsim.errors import ConfigError, TraceError, unknown_choice

DISTS: dict[str, tuple[str, ...]] = {
    "constant": ("value",),
    "uniform": ("low", "high"),
    "lognormal": ("mean", "sigma"),
    "exponential": ("mean",),
    "geometric": ("mean",),
}


class EmpiricalCDF:
    """A piecewise-linear token-count CDF read from a fleet-sim JSON file."""

    def __init__(self, tokens: np.ndarray, fractions: np.ndarray, source: str = "cdf") -> None:
        """Build from points; raise `TraceError` naming `source` unless they form a valid CDF."""
        x = np.asarray(tokens, dtype=np.float64)
        f = np.asarray(fractions, dtype=np.float64)
        if x.ndim != 1 or x.size == 0 or x.shape != f.shape:
            raise TraceError(f"{source}: a CDF needs a non-empty list of [tokens, fraction] pairs")
        if np.any(x <= 0) or np.any(np.diff(x) <= 0):
            raise TraceError(f"{source}: CDF tokens must be > 0 and strictly increasing")
        if np.any(f < 0) or np.any(f > 1) or np.any(np.diff(f) < 0):
            raise TraceError(f"{source}: CDF fractions must be non-decreasing within [0, 1]")
        if abs(f[-1] - 1.0) > 1e-9:
            raise TraceError(f"{source}: the last CDF fraction must be 1, got {f[-1]}")
        self.tokens, self.fractions, self.source = x, f, source
        self._x = np.concatenate([[0.0], x])
        self._f = np.concatenate([[0.0], f])

    @classmethod
    def from_file(cls, path: str | Path) -> EmpiricalCDF:
        """Read a fleet-sim CDF JSON file (a list of pairs, or an object with a `cdf` list)."""
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise TraceError(f"{path}: CDF file not found") from None
        except json.JSONDecodeError as e:
            raise TraceError(f"{path}: line {e.lineno}: invalid JSON: {e.msg}") from None
        if isinstance(data, dict):
            data = data.get("cdf")
        try:
            arr = np.asarray(data, dtype=np.float64)
        except (TypeError, ValueError):
            arr = np.empty((0,))
        if arr.ndim != 2 or arr.shape[1] != 2:
            raise TraceError(f"{path}: expected a JSON list of [tokens, cumulative_fraction] pairs")
        return cls(arr[:, 0], arr[:, 1], source=str(path))

    def cdf(self, tokens: np.ndarray) -> np.ndarray:
        """P(sample <= tokens) for integer `tokens` (piecewise-linear CDF)."""
        return np.interp(np.asarray(tokens, dtype=np.float64), self._x, self._f)

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """Draw `n` integer token counts (>= 1) by inversion of the CDF."""
        u = 1.0 - rng.random(n)  # in (0, 1]
        k = np.searchsorted(self._f, u, side="left")  # first k with F[k] >= u; k >= 1
        x0, x1 = self._x[k - 1], self._x[k]
        f0, f1 = self._f[k - 1], self._f[k]
        x = x0 + (u - f0) / (f1 - f0) * (x1 - x0)
        return np.maximum(np.ceil(x - 1e-9), 1).astype(np.int64)


def check_dist(spec: Mapping, field: str) -> dict:
    """Validate a fitted-distribution spec; return it as a plain dict. ConfigError names `field`."""
    if not isinstance(spec, Mapping):
        raise ConfigError(f"{field}: expected a mapping like {{dist: lognormal, mean: 512, "
                          f"sigma: 1.0}}, got {spec!r}")
    spec = dict(spec)
    name = spec.get("dist")
    if name is None:
        how = ("an empirical CDF is not accepted here; " if "cdf" in spec or "path" in spec
               else "")
        raise ConfigError(f"{field}: {how}a fitted distribution needs dist, one of "
                          f"{', '.join(DISTS)} (e.g. {{dist: lognormal, mean: 512, sigma: 1.0}}),"
                          f" got {spec!r}")
    if name not in DISTS:
        raise unknown_choice(f"{field}.dist", name, DISTS)
    allowed = ("dist", "max", *DISTS[name])
    for key in spec:
        if key not in allowed:
            raise ConfigError(f"{field}.{key}: unknown key; valid keys for dist {name}: "
                              f"{', '.join(allowed)}")
    for key in DISTS[name]:
        if not isinstance(spec.get(key), (int, float)) or isinstance(spec.get(key), bool):
            raise ConfigError(f"{field}.{key}: a number is required for dist {name}, "
                              f"got {spec.get(key)!r}")
    positive = {"constant": ["value"], "uniform": ["low"], "lognormal": ["mean"],
                "exponential": ["mean"], "geometric": ["mean"]}[name]
    for key in positive:
        if spec[key] < 1:
            raise ConfigError(f"{field}.{key} must be >= 1, got {spec[key]}")
    if name == "uniform" and spec["high"] < spec["low"]:
        raise ConfigError(f"{field}.high must be >= low ({spec['low']}), got {spec['high']}")
    if name == "lognormal" and spec["sigma"] < 0:
        raise ConfigError(f"{field}.sigma must be >= 0, got {spec['sigma']}")
    if spec.get("max") is not None and spec["max"] < 1:
        raise ConfigError(f"{field}.max must be >= 1, got {spec['max']}")
    return spec


def draw_dist(spec: Mapping, rng: np.random.Generator, n: int, field: str = "dist") -> np.ndarray:
    """Draw `n` integer token counts (>= 1, <= `max` if given) from a fitted-distribution spec."""
    spec = check_dist(spec, field)
    name = spec["dist"]
    if name == "constant":
        x = np.full(n, round(spec["value"]), dtype=np.int64)
    elif name == "uniform":
        x = rng.integers(int(spec["low"]), int(spec["high"]), size=n, endpoint=True)
    elif name == "lognormal":
        sigma = float(spec["sigma"])
        mu = np.log(float(spec["mean"])) - sigma**2 / 2
        x = np.rint(rng.lognormal(mu, sigma, size=n))
    elif name == "exponential":
        x = np.ceil(rng.exponential(float(spec["mean"]), size=n))
    else:
        x = rng.geometric(1.0 / float(spec["mean"]), size=n)
    x = np.maximum(np.asarray(x, dtype=np.float64), 1)
    if spec.get("max") is not None:
        x = np.minimum(x, float(spec["max"]))
    return x.astype(np.int64)


def token_counts(spec, rng: np.random.Generator, n: int, field: str) -> np.ndarray:
    """`n` token counts of a length spec: an integer >= 1 (every request gets it; no draw) or a
    fitted-distribution mapping (`draw_dist`). ConfigError names `field` otherwise."""
    if isinstance(spec, Mapping):
        return draw_dist(spec, rng, n, field)
    ok = isinstance(spec, (int, float)) and not isinstance(spec, bool)
    if not (ok and float(spec).is_integer() and spec >= 1):
        raise ConfigError(f"{field}: an integer >= 1 or a distribution like {{dist: lognormal, "
                          f"mean: 512, sigma: 1.0}} is required, got {spec!r}")
    return np.full(n, int(spec), dtype=np.int64)
