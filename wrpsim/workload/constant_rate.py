"""Constant-rate stages (`kind: constant_rate`), as inference-perf's `type: constant` load runs.

Source spec (the `source:` block of a workload YAML)::

    kind: constant_rate
    stages:                    # one or more, run back to back
      - {rate: 2.0, duration_s: 60}    # requests per second (> 0), stage length in s (> 0)
      - {rate: 8.0, duration_s: 60}
    prompt_tokens: 1024        # an integer, or a distribution {dist: lognormal, mean: ..., ...}
    output_tokens: 128         # the same forms (`lengths.token_counts`)

Arrivals: stage k starts at T_k = the sum of the earlier stages' `duration_s` and sends its j-th
request at exactly T_k + j / rate_k for every j >= 0 with j / rate_k < duration_s (so
ceil(rate_k · duration_s) requests, at least one; open loop, no randomness). Lengths as for
`closed_loop` (streams `workload.lengths`, `workload.lengths.output`), drawn in arrival order.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd

from wrpsim.errors import ConfigError, check_keys, number
from wrpsim.workload.closed_loop import lengths
from wrpsim.workload.synthetic import MAX_REQUESTS
from wrpsim.workload.validate import canonical_frame

SOURCE_KEYS = ("kind", "stages", "prompt_tokens", "output_tokens")
STAGE_KEYS = ("rate", "duration_s")


def stage_count(rate: float, duration_s: float) -> int:
    """Requests of one stage: #{j >= 0 : j / rate < duration_s} = ceil(rate · duration_s),
    with a relative tolerance of 1e-9 so that e.g. 0.1 req/s for 30 s gives 3, not 4."""
    x = rate * duration_s
    return max(1, math.ceil(x - 1e-9 * max(1.0, x)))


def stage_times(stages: list, field: str) -> np.ndarray:
    """Arrival times (s, ascending, first 0) of a validated list of `{rate, duration_s}`."""
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
        m = stage_count(rate, dur)
        total += m
        if total > MAX_REQUESTS:
            raise ConfigError(f"{field}: more than {MAX_REQUESTS} requests in all; lower a "
                              "rate or a duration_s")
        parts.append(start + np.arange(m) / rate)
        start += dur
    return np.concatenate(parts)


def generate_constant_rate(source: Mapping, seed: int, field: str = "source") -> pd.DataFrame:
    """The canonical frame of a `kind: constant_rate` spec (see the module docstring).

    Raises `ConfigError` naming the field for unknown keys and missing or out-of-range values.
    """
    check_keys(source, SOURCE_KEYS, field)
    t = stage_times(source.get("stages"), f"{field}.stages")
    prompt, output = lengths(source, seed, len(t), field)
    return canonical_frame(t, prompt, output)
