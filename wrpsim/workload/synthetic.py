"""Synthetic workloads: an arrival process plus token-length distributions.

Source spec (the `source:` block of a workload YAML with `kind: synthetic`)::

    num_requests: 10000        # at least one of num_requests / duration_s; both = whichever first
    duration_s: null           # keep arrivals < duration_s
    arrivals: {process: gamma, rate: 10.0, cv: 2.0}   # poisson | gamma | deterministic
    lengths: {kind: cdf, path: cdfs/fleetsim_azure_total_tokens_cdf.json, output_fraction: 0.1}
    max_concurrency: null      # a client that holds a request while this many are in flight

Arrivals: the first request arrives at 0; inter-arrival gaps are i.i.d. with mean 1/rate:
exponential (`poisson`), Gamma with shape 1/cv^2 (`gamma`; cv is the coefficient of variation of
the gaps, cv = 1 is Poisson, cv > 1 is burstier) or constant (`deterministic`).

Lengths: `kind: cdf` samples the *total* (prompt + output) tokens T from a fleet-sim CDF file
(`lengths.EmpiricalCDF`; T >= 2) and splits it either by a fixed `output_fraction`
(output = round(fraction * T), clipped to [1, T - 1]) or by an `output` distribution (clipped to
[1, T - 1]); prompt = T - output, so the total follows the CDF exactly. `kind: fitted` draws
`prompt` and `output` independently from fitted distributions (`lengths.draw_dist`).

`max_concurrency` (an integer >= 1; null: none) caps the requests the client has in flight, as
`vllm bench serve --max-concurrency` beside a `--request-rate` does: a request whose time comes
while that many are unanswered is sent when one ends (`wrpsim.clientcap`; the trace's
`attrs["max_in_flight"]`).

Random streams: arrivals from `workload.arrivals`, totals / prompts from `workload.lengths`,
outputs from `workload.lengths.output`; the same seed gives the same frame.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from wrpsim.clientcap import MAX_IN_FLIGHT_ATTR
from wrpsim.errors import ConfigError, choice, finite_number, unknown_key
from wrpsim.rng import stream
from wrpsim.workload.lengths import EmpiricalCDF, check_dist, draw_dist
from wrpsim.workload.validate import canonical_frame

PROCESSES: dict[str, tuple[str, ...]] = {
    "deterministic": ("rate",),
    "gamma": ("rate", "cv"),
    "poisson": ("rate",),
}
LENGTH_KINDS: dict[str, tuple[str, ...]] = {
    "cdf": ("path", "output_fraction", "output"),
    "fitted": ("prompt", "output"),
}
SOURCE_KEYS = ("kind", "num_requests", "duration_s", "arrivals", "lengths", "max_concurrency")
MAX_REQUESTS = 50_000_000


def _number(spec: Mapping, key: str, field: str, low: float, strict: bool = True) -> float:
    v = spec.get(key)
    if not finite_number(v):
        raise ConfigError(f"{field}.{key}: a finite number is required, got {v!r}")
    if v < low or (strict and v == low):
        raise ConfigError(f"{field}.{key} must be {'>' if strict else '>='} {low}, got {v}")
    return float(v)


def _count(spec: Mapping, key: str, field: str) -> int:
    """`spec[key]` as an integer >= 1 (`ConfigError` naming `field.key` otherwise)."""
    v = _number(spec, key, field, 1, strict=False)
    if not v.is_integer():
        raise ConfigError(f"{field}.{key} must be an integer, got {v}")
    return int(v)


def count_or_duration(source: Mapping, count_key: str, field: str,
                      what: str = "") -> tuple[int | None, float | None]:
    """(`count_key` as an integer >= 1, `duration_s` > 0) of a generator spec, either None
    when absent but not both (`what` ends the error that says so)."""
    n, dur = source.get(count_key), source.get("duration_s")
    if n is None and dur is None:
        raise ConfigError(f"{field}: give {count_key} or duration_s (or both){what}")
    if n is not None:
        n = _count(source, count_key, field)
        if n > MAX_REQUESTS:  # (1e12 requests asked numpy for terabytes)
            raise ConfigError(f"{field}.{count_key} must be at most {MAX_REQUESTS:,}, got {n:,}")
    if dur is not None:
        dur = _number(source, "duration_s", field, 0.0)
    return n, dur


def _check_keys(spec: Mapping, allowed, field: str) -> None:
    for key in spec:
        if key not in allowed:
            raise unknown_key(f"{field}.{key}", key, allowed)


def _gaps(spec: Mapping, rng: np.random.Generator, m: int) -> np.ndarray:
    rate = float(spec["rate"])
    if spec["process"] == "poisson":
        return rng.exponential(1.0 / rate, size=m)
    if spec["process"] == "gamma":
        shape = 1.0 / float(spec["cv"]) ** 2
        return rng.gamma(shape, 1.0 / (rate * shape), size=m)
    return np.full(m, 1.0 / rate)


def arrival_times(spec: Mapping, rng: np.random.Generator, num_requests: int | None = None,
                  duration_s: float | None = None, field: str = "arrivals") -> np.ndarray:
    """Arrival times (s, ascending, first = 0) of `num_requests` and/or those < `duration_s`."""
    if not isinstance(spec, Mapping):
        raise ConfigError(f"{field}: expected a mapping like {{process: poisson, rate: 10}}")
    process = spec.get("process")
    choice(f"{field}.process", process, PROCESSES)
    for key in spec:
        others = [p for p, keys in PROCESSES.items() if key in keys and p != process]
        if key not in ("process", *PROCESSES[process]) and others:
            raise ConfigError(f"{field}.{key}: not a key of {process} arrivals (valid: process, "
                              f"{', '.join(PROCESSES[process])}); {key} is "
                              f"{' and '.join(others)} arrivals' ({field}.process={others[0]})")
    _check_keys(spec, ("process", *PROCESSES[process]), field)
    if isinstance(spec.get("rate"), float) and spec["rate"] == np.inf:
        raise ConfigError(f"{field}.rate: inf (every request at once, vllm bench serve's "
                          f"--request-rate inf) is a closed loop with one client per request: "
                          f"workload=closed-loop workload.source.concurrency=N "
                          f"workload.source.num_requests=N")
    rate = _number(spec, "rate", field, 0.0)
    if process == "gamma":
        if spec.get("cv") is None:
            raise ConfigError(f"{field}.cv: gamma arrivals need cv, the coefficient of variation "
                              f"of their gaps (1: Poisson; vllm bench serve's --burstiness b: "
                              f"1/sqrt(b)), e.g. +{field}.cv=2")
        _number(spec, "cv", field, 0.0)
    if num_requests is not None:
        t = np.concatenate([[0.0], np.cumsum(_gaps(spec, rng, num_requests - 1))])
    else:
        chunk = max(1024, int(rate * duration_s * 1.1) + 16)
        parts, end = [np.zeros(1)], 0.0
        while end < duration_s:
            g = np.cumsum(_gaps(spec, rng, chunk)) + end
            parts.append(g)
            end = float(g[-1])
        t = np.concatenate(parts)
    if duration_s is not None:
        t = t[t < duration_s]
    return t


def _lengths(spec: Mapping, seed: int, n: int, base_dir: Path,
             field: str) -> tuple[np.ndarray, np.ndarray]:
    if not isinstance(spec, Mapping):
        raise ConfigError(f"{field}: expected a mapping with kind: cdf | fitted")
    kind = spec.get("kind")
    choice(f"{field}.kind", kind, LENGTH_KINDS)
    _check_keys(spec, ("kind", *LENGTH_KINDS[kind]), field)
    rng, rng_out = stream(seed, "workload.lengths"), stream(seed, "workload.lengths.output")
    if kind == "fitted":
        for key in ("prompt", "output"):
            check_dist(spec.get(key), f"{field}.{key}")
        return (draw_dist(spec["prompt"], rng, n, f"{field}.prompt"),
                draw_dist(spec["output"], rng_out, n, f"{field}.output"))
    if not spec.get("path"):
        raise ConfigError(f"{field}.path: a CDF file is required for kind cdf")
    has_frac, has_out = spec.get("output_fraction") is not None, spec.get("output") is not None
    if has_frac == has_out:
        raise ConfigError(f"{field}: give exactly one of output_fraction or output for kind cdf")
    from wrpsim.workload.build import resolve_data_path

    # the workload's folder, else the current directory, as a trace's path
    path = resolve_data_path(str(spec["path"]), f"{field}.path", "CDF file", [Path(base_dir)],
                             "the workload's folder", "the workload's folder")
    total = np.maximum(EmpiricalCDF.from_file(path).sample(rng, n), 2)
    if has_frac:
        frac = _number(spec, "output_fraction", field, 0.0)
        if frac >= 1:
            raise ConfigError(f"{field}.output_fraction must be < 1, got {frac}")
        out = np.rint(frac * total)
    else:
        out = draw_dist(spec["output"], rng_out, n, f"{field}.output")
    out = np.clip(out, 1, total - 1).astype(np.int64)
    return total - out, out


def generate(source: Mapping, seed: int, base_dir: Path, field: str = "source") -> pd.DataFrame:
    """Generate the canonical frame of a synthetic source spec (see the module docstring).

    Relative CDF paths are resolved against `base_dir`. Raises `ConfigError` naming the field for
    unknown processes, length kinds or keys, and for missing or out-of-range parameters.
    """
    _check_keys(source, SOURCE_KEYS, field)
    n, dur = count_or_duration(source, "num_requests", field, " for a synthetic workload")
    arrivals_spec = source.get("arrivals")
    rate = arrivals_spec.get("rate") if isinstance(arrivals_spec, Mapping) else None
    if n is None and isinstance(rate, (int, float)) and rate * dur > MAX_REQUESTS:
        raise ConfigError(f"{field}: rate * duration_s = {rate * dur:.3g} requests exceeds "
                          f"{MAX_REQUESTS}; set num_requests to bound it")
    t = arrival_times(arrivals_spec, stream(seed, "workload.arrivals"), n, dur,
                      f"{field}.arrivals")
    prompt, output = _lengths(source.get("lengths"), seed, len(t), base_dir, f"{field}.lengths")
    df = canonical_frame(t, prompt, output)
    if source.get("max_concurrency") is not None:  # the client's cap (`wrpsim.clientcap`)
        df.attrs[MAX_IN_FLIGHT_ATTR] = _count(source, "max_concurrency", field)
    return df
