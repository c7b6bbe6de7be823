"""Constant-rate stages (`kind: constant_rate`), as inference-perf's `type: constant` load runs.

Source spec (the `source:` block of a workload YAML)::

    kind: constant_rate
    stages:                    # one or more, run back to back
      - {rate: 2.0, duration_s: 60}    # requests per second (> 0), stage length in s (> 0)
      - {rate: 8.0, duration_s: 60}
    spacing: inference_perf    # or even (optional; default inference_perf)
    prompt_tokens: 1024        # an integer, or a distribution {dist: lognormal, mean: ..., ...}
    output_tokens: 128         # the same forms (`lengths.token_counts`)

Stage k starts at T_k = the sum of the earlier stages' `duration_s`. Its arrivals:

- `spacing: inference_perf` (the default): what inference-perf's `ConstantLoadTimer` sends
  (kubernetes-sigs/inference-perf `inference_perf/loadgen/load_timer.py`, unchanged from
  2025-11 to 2026-08): int(rate_k · duration_s) requests (Python's float product, truncated),
  the gaps drawn exponential with mean 1 / rate_k and scaled so that they sum to the stage's
  duration: the first request one gap after T_k, the last at T_k + duration_s — an open loop
  at the stage's mean rate whose gaps vary as a Poisson process's (coefficient of variation
  about 1), not evenly spaced. Drawn from the run seed's `workload.arrivals` stream, stage
  after stage. A stage of fewer than one request (rate_k · duration_s < 1), which inference-perf
  would run empty, is an error.
- `spacing: even`: exactly T_k + j / rate_k for every j >= 0 with j / rate_k < duration_s
  (ceil(rate_k · duration_s) requests, at least one; no randomness).

inference-perf also waits, after a stage's last request is sent, for every one of them to
finish and then `interval` (1 s by default) before the next stage; here stages follow each other
at their nominal times (replay one stage at a time where that matters, as
`wrpsim.validate.inference_perf` does). Lengths as for `closed_loop` (streams
`workload.lengths`, `workload.lengths.output`), drawn in arrival order.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd

from wrpsim.errors import ConfigError, check_keys, choice, number
from wrpsim.rng import stream
from wrpsim.workload.closed_loop import lengths
from wrpsim.workload.synthetic import MAX_REQUESTS
from wrpsim.workload.validate import canonical_frame

SOURCE_KEYS = ("kind", "stages", "spacing", "prompt_tokens", "output_tokens")
STAGE_KEYS = ("rate", "duration_s")
#: how a stage's requests are spaced (module docstring)
SPACINGS = ("inference_perf", "even")


def stage_count(rate: float, duration_s: float, spacing: str = "even") -> int:
    """Requests of one stage. `even`: #{j >= 0 : j / rate < duration_s} = ceil(rate ·
    duration_s), with a relative tolerance of 1e-9 so that e.g. 0.1 req/s for 30 s gives 3,
    not 4. `inference_perf`: int(rate · duration_s), as inference-perf computes it."""
    x = rate * duration_s
    if spacing == "inference_perf":
        return int(x)
    return max(1, math.ceil(x - 1e-9 * max(1.0, x)))


def stage_times(stages: list, field: str, spacing: str = "even",
                rng: np.random.Generator | None = None) -> np.ndarray:
    """Arrival times (s, ascending) of a validated list of `{rate, duration_s}` under
    `spacing` (`inference_perf` draws its gaps from `rng`)."""
    if not isinstance(stages, list) or not stages:
        raise ConfigError(f"{field}: a non-empty list of {{rate: req/s, duration_s: s}} stages "
                          f"is required, got {stages!r}")
    parts, start, total = [], 0.0, 0
    for k, st in enumerate(stages):
        where = f"{field}[{k}]"
        if not isinstance(st, Mapping):
            raise ConfigError(f"{where}: expected a mapping {{rate: req/s, duration_s: s}}, "
                              f"got {st!r}")
        check_keys(st, STAGE_KEYS, where)
        rate = number(f"{where}.rate", st.get("rate"), 0, strict_lo=True, finite=True)
        dur = number(f"{where}.duration_s", st.get("duration_s"), 0, strict_lo=True, finite=True)
        m = stage_count(rate, dur, spacing)
        if m < 1:
            raise ConfigError(f"{where}: rate x duration_s = {rate * dur:g} < 1: inference-perf "
                              f"sends int(rate x duration_s) = 0 requests in such a stage "
                              f"(spacing: even sends one at its start)")
        total += m
        if total > MAX_REQUESTS:
            raise ConfigError(f"{field}: more than {MAX_REQUESTS} requests in all; lower a "
                              "rate or a duration_s")
        if spacing == "inference_perf":
            gaps = rng.exponential(1.0 / rate, m)
            # (the last one at the stage's end; clipped there against the sum's rounding, so
            # that the next stage's arrivals never come before it)
            parts.append(np.minimum(start + np.cumsum(gaps * (dur / gaps.sum())), start + dur))
        else:
            parts.append(start + np.arange(m) / rate)
        start += dur
    return np.concatenate(parts)


def generate_constant_rate(source: Mapping, seed: int, field: str = "source") -> pd.DataFrame:
    """The canonical frame of a `kind: constant_rate` spec (see the module docstring).

    Raises `ConfigError` naming the field for unknown keys and missing or out-of-range values.
    """
    check_keys(source, SOURCE_KEYS, field)
    spacing = choice(f"{field}.spacing", source.get("spacing", "inference_perf"), SPACINGS)
    t = stage_times(source.get("stages"), f"{field}.stages", spacing,
                    stream(seed, "workload.arrivals"))
    prompt, output = lengths(source, seed, len(t), field)
    return canonical_frame(t, prompt, output)
