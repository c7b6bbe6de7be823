"""Busy stretches of an instance's GPUs with their power, for energy over a time window.

A benchmark that reports the power of a *window* of its run — ML.ENERGY averages the GPUs'
energy over its steady state only, from the moment `max_num_seqs` requests have their first
token to the moment all but `max_num_seqs + 1` have finished — needs the energy between two
instants, not the run's total. The log keeps every busy stretch (start, end, watts of all the
instance's GPUs) and integrates it over a window, counting the rest of the window at idle
power. Enabled per instance (`Instance.power_log`) by tools that need it (`wrpsim.validate`);
off in ordinary runs.
"""

from __future__ import annotations

import numpy as np


class PowerLog:
    """(start, end, watts) of an instance's busy stretches (see module docstring)."""

    def __init__(self) -> None:
        self._rows: list[tuple[float, float, float]] = []

    def add(self, t0: float, t1: float, watts: float) -> None:
        """The instance's GPUs drew `watts` (all of them together) over [t0, t1]."""
        if t1 > t0:
            self._rows.append((t0, t1, watts))

    def busy_s(self, a: float, b: float) -> float:
        """Seconds of [a, b] the instance was busy (its stretches' overlap with it)."""
        if b <= a or not self._rows:
            return 0.0
        r = np.asarray(self._rows)
        return float(np.clip(np.minimum(r[:, 1], b) - np.maximum(r[:, 0], a), 0.0, None).sum())

    def energy_j(self, a: float, b: float, idle_w: float) -> float:
        """Joules over [a, b]: the busy stretches' overlap with it at their power, the rest
        of it at `idle_w` (all the instance's GPUs together)."""
        if b <= a:
            return 0.0
        if not self._rows:
            return idle_w * (b - a)
        r = np.asarray(self._rows)
        overlap = np.clip(np.minimum(r[:, 1], b) - np.maximum(r[:, 0], a), 0.0, None)
        busy = float(overlap.sum())
        return float(overlap @ r[:, 2]) + idle_w * max(0.0, (b - a) - busy)
