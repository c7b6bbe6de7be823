"""Which configuration wins: the rule a sweep's closing line and its dashboard share, and the
cost–latency Pareto front.

- `winner_key(summary, name)`: the sort key of a completed run, smallest wins — best SLO
  attainment (missing counts as 0), then lowest total cost over the trace (`cost_usd`), then
  lowest p99 TTFT, then the run's name in natural order (`"2"` before `"10"`), so equal runs
  always give the same winner; a missing cost or p99 sorts last.
- `winner(runs)`: the winning run among `(name, summary)` pairs with a summary, or None.
- `pareto(points)`: the indices of the `(cost, latency, index)` points on the lower-left front
  (no point at most as costly is faster), in order of cost.
"""

from __future__ import annotations

import re

RULE = "best SLO attainment, then lowest cost (ties: lower p99 TTFT, then run number)"


def _natural(name: str) -> tuple:
    return tuple((0, int(t), "") if t.isdigit() else (1, 0, t)
                 for t in re.split(r"(\d+)", name) if t)


def winner_key(summary: dict, name: str) -> tuple:
    """The sort key of a completed run (module docstring); the smallest key wins."""
    inf = float("inf")
    att, cost, ttft = (summary.get(k) for k in ("slo_attainment", "cost_usd", "ttft_p99_s"))
    return (-(att or 0.0), inf if cost is None else cost, inf if ttft is None else ttft,
            _natural(name))


def winner(runs) -> str | None:
    """The name of the winning run among `(name, summary)` pairs (summary None: skipped)."""
    done = [(winner_key(s, n), n) for n, s in runs if s is not None]
    return min(done)[1] if done else None


def pareto(points: list[tuple[float, float, int]]) -> list[int]:
    """Indices of the (cost, latency, index) points on the lower-left front, by cost."""
    front, best = [], float("inf")
    for _cost, lat, idx in sorted(points):
        if lat < best:
            front.append(idx)
            best = lat
    return front
