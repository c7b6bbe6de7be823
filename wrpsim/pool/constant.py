"""A latency model with fixed iteration times, for queueing oracles and micro-scenarios.

Any iteration that does work takes `prefill_s_per_token × prefill_tokens + decode_step_s` when it
has decode sequences, and `prefill_s_per_token × prefill_tokens + prefill_s_fixed` otherwise.
With `prefill_s_fixed = decode_step_s = δ`, `prefill_s_per_token = 0` and one sequence at a time,
a request of `o` output tokens occupies the instance for exactly `o·δ`: geometric `o` then gives
(nearly) exponential service, the M/M/1 case of `oracles.md`. `schedule_lag: true` makes it
schedule like an async engine (`LatencyModel.schedule_lag`); off by default.
"""

from __future__ import annotations

import numpy as np

from wrpsim.errors import ConfigError, boolean
from wrpsim.pool.latency import LatencyModel


class ConstantLatency(LatencyModel):
    """Fixed per-iteration times and constant power (see module docstring)."""

    def __init__(
        self,
        decode_step_s: float,
        prefill_s_fixed: float | None = None,
        prefill_s_per_token: float = 0.0,
        tp: int = 1,
        busy_power_w: float = 400.0,
        idle_w: float = 100.0,
        schedule_lag: bool = False,
    ):
        for name, v in (("decode_step_s", decode_step_s),
                        ("prefill_s_per_token", prefill_s_per_token)):
            if v < 0:
                raise ConfigError(f"latency.{name} must be >= 0, got {v}")
        self.decode_step_s = float(decode_step_s)
        self.prefill_s_fixed = float(decode_step_s if prefill_s_fixed is None else prefill_s_fixed)
        self.prefill_s_per_token = float(prefill_s_per_token)
        self.tp = int(tp)
        self.busy_power_w = float(busy_power_w)
        self.idle_w = float(idle_w)
        boolean("latency.schedule_lag", schedule_lag)
        self.schedule_lag = schedule_lag

    def iteration_s(self, prefill_tokens, prefill_attn, decode_seqs, decode_ctx,
                    prefill_seqs=1):
        """See `LatencyModel.iteration_s`."""
        t = self.prefill_s_per_token * prefill_tokens
        if decode_seqs:
            return t + self.decode_step_s
        if prefill_tokens:
            return t + self.prefill_s_fixed
        return 0.0

    def decode_run_s(self, batch, ctx0, n):
        """See `LatencyModel.decode_run_s`."""
        return np.full(n, self.decode_step_s if batch else 0.0)

    def power_w(self, prefill_tokens, decode_seqs, decode_ctx=None, duration_s=None,
                prefill_attn=None, prefill_seqs=1):
        """Busy power, whatever the batch."""
        return self.busy_power_w

    def idle_power_w(self):
        """Idle power."""
        return self.idle_w
