"""Token-length distributions for synthetic workloads.

Two families:

- **Empirical CDF** (`EmpiricalCDF`), in the fleet-sim format: a JSON list of
  `[tokens, cumulative_fraction]` pairs (or an object whose `cdf` key holds that list), tokens
  strictly increasing, fractions non-decreasing in [0, 1], the last equal to 1. The CDF is taken
  as piecewise linear between the points and through (0, 0), sampled by inversion and rounded
  *up* to an integer, so P(sample <= tokens_k) equals fraction_k exactly at every point.
- **Fitted distributions** (`draw_dist`), given as `{dist: name, ...}`:
  `constant` (value; an integer), `uniform` (low, high; integers, both inclusive; mean
  (low + high) / 2), `lognormal` (mean = the mean in tokens, sigma = the sigma of the underlying
  normal, so mu = ln(mean) - sigma^2/2; rounded to the nearest integer (half to even) and raised
  to 1, which lifts the mean where much of the mass lies below 1: mean 1, sigma 1 gives 1.37,
  mean 4, sigma 1 gives 4.06), `exponential` (mean; rounded *up*, so the mean is
  1 / (1 - e^(-1/mean)), about mean + 0.5: mean 1 gives 1.58, mean 100 gives 100.5),
  `geometric` (mean >= 1; support 1, 2, ...; exact mean). Every spec takes an optional `max`
  (samples are clipped to it, which lowers the mean). Every parameter is a finite number in
  [1, `MAX_TOKENS`] = [1, 2^53 - 1] (sigma in [0, 2^53 - 1]); samples are always in
  [1, 2^53 - 1].

Benchmark-style sources (`closed_loop`, `constant_rate`) take a *length spec* per token count
(`token_counts`): an integer in [1, 2^53 - 1] (every request gets it, as `vllm bench serve
--random-input-len` or AIConfigurator's isl/osl) or a fitted-distribution mapping.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from wrpsim.errors import ConfigError, TraceError, choice

DISTS: dict[str, tuple[str, ...]] = {
    "constant": ("value",),
    "uniform": ("low", "high"),
    "lognormal": ("mean", "sigma"),
    "exponential": ("mean",),
    "geometric": ("mean",),
}
#: parameters that are token counts themselves, so must be whole numbers
INTEGER_PARAMS = ("value", "low", "high")
#: the largest token count (integers above it are not exact in float64); every parameter and
#: every sample is at most this
MAX_TOKENS = 2**53 - 1


class EmpiricalCDF:
    """A piecewise-linear token-count CDF read from a fleet-sim JSON file."""

    def __init__(self, tokens: np.ndarray, fractions: np.ndarray, source: str = "cdf") -> None:
        """Build from points; raise `TraceError` naming `source` unless they form a valid CDF."""
        x = np.asarray(tokens, dtype=np.float64)
        f = np.asarray(fractions, dtype=np.float64)
        if x.ndim != 1 or x.size == 0 or x.shape != f.shape:
            raise TraceError(f"{source}: a CDF needs a non-empty list of [tokens, fraction] pairs")
        def check(bad: np.ndarray, rule: str) -> None:  # the first bad entry, named
            if bad.any():
                i = int(np.argmax(bad))
                raise TraceError(f"{source}: CDF {rule}; entry {i} (0-based) is "
                                 f"[{x[i]:g}, {f[i]:g}]"
                                 + (f" after [{x[i - 1]:g}, {f[i - 1]:g}]" if i else ""))

        check((x <= 0) | np.concatenate([[False], np.diff(x) <= 0]),
              "tokens must be > 0 and strictly increasing")
        check((f < 0) | (f > 1) | np.concatenate([[False], np.diff(f) < 0]),
              "fractions must be non-decreasing within [0, 1]")
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
    choice(f"{field}.dist", name, DISTS)
    allowed = ("dist", "max", *DISTS[name])
    for key in list(spec):
        if key not in allowed:
            if spec[key] is None:  # null: absent (how an override drops a key merged into it)
                del spec[key]
                continue
            raise ConfigError(f"{field}.{key}: unknown key; valid keys for dist {name}: "
                              f"{', '.join(allowed)} (a mapping given on the command line is "
                              f"merged into the workload's own: add {key}: null to drop it, "
                              f"and write the override with '++' where it adds keys)")
    for key in (*DISTS[name], "max"):
        v = spec.get(key)
        if key == "max" and v is None:
            continue
        if not isinstance(v, (int, float)) or isinstance(v, bool):
            raise ConfigError(f"{field}.{key}: a number is required for dist {name}, got {v!r}")
        low = 0 if key == "sigma" else 1
        if key in INTEGER_PARAMS and not (math.isfinite(v) and float(v).is_integer()
                                          and low <= v <= MAX_TOKENS):
            raise ConfigError(f"{field}.{key} must be an integer >= {low} and <= {MAX_TOKENS}"
                              f" (2^53 - 1) for dist {name}, got {v!r}")
        if not (math.isfinite(v) and low <= v <= MAX_TOKENS):
            raise ConfigError(f"{field}.{key} must be a finite number >= {low} and <= "
                              f"{MAX_TOKENS} (2^53 - 1), got {v!r}")
    if name == "uniform" and spec["high"] < spec["low"]:
        raise ConfigError(f"{field}.high must be >= low ({spec['low']}), got {spec['high']}")
    return spec


def draw_dist(spec: Mapping, rng: np.random.Generator, n: int, field: str = "dist") -> np.ndarray:
    """Draw `n` integer token counts (>= 1, <= `max` if given) from a fitted-distribution spec."""
    spec = check_dist(spec, field)
    name = spec["dist"]
    if name == "constant":
        x = np.full(n, int(spec["value"]), dtype=np.int64)
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
    x = np.clip(np.asarray(x, dtype=np.float64), 1, MAX_TOKENS)
    if spec.get("max") is not None:
        x = np.minimum(x, float(spec["max"]))
    return x.astype(np.int64)


def token_counts(spec, rng: np.random.Generator, n: int, field: str) -> np.ndarray:
    """`n` token counts of a length spec: an integer >= 1 (every request gets it; no draw) or a
    fitted-distribution mapping (`draw_dist`). ConfigError names `field` otherwise."""
    if isinstance(spec, Mapping):
        return draw_dist(spec, rng, n, field)
    ok = isinstance(spec, (int, float)) and not isinstance(spec, bool)
    if not (ok and math.isfinite(spec) and float(spec).is_integer() and 1 <= spec <= MAX_TOKENS):
        raise ConfigError(f"{field}: an integer in [1, {MAX_TOKENS}] (2^53 - 1) or a distribution"
                          f" like {{dist: lognormal, mean: 512, sigma: 1.0}} is required, "
                          f"got {spec!r}")
    return np.full(n, int(spec), dtype=np.int64)
