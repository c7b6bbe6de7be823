"""Which configuration wins: the rule a sweep's closing line and its dashboard share, and the
cost–latency Pareto front.

- `winner(runs)`: the winning run among `(name, summary)` pairs (summary None: skipped), or
  None when none has a summary. The rule, in order:
  1. best SLO attainment (`slo_attainment`; missing counts as 0): every run within
     `ATTAINMENT_TOLERANCE` (0.1 percentage point, the precision a sweep's table shows) of
     the best ties, so a difference nobody can see does not outweigh cost;
  2. among those, every run whose total cost over the trace (`cost_usd`) is within
     `COST_TOLERANCE` (1 %) of the cheapest one's ties: identical fleets differ in cost only by
     when their last request finished, noise that must not decide the winner (a missing cost
     is never within it, unless no run has a cost);
  3. among the tied, fewest requests left unanswered (`requests_total` − `requests_completed`:
     dropped, lost or cut off by the horizon; a run's percentiles leave those out, so a run
     that drops its slowest requests must not win on p99 against one that served them);
  4. then lowest p99 TTFT (`ttft_p99_s`; missing sorts last);
  5. then the run's name in natural order (`"2"` before `"10"`),
  so the winner is a deterministic function of the summaries: equal runs always give the same.
- `pareto(points)`: the indices of the `(cost, latency, index)` points on the lower-left front
  (no point at most as costly is faster), in order of cost.
- `load_dimension(runs, dims)`: the swept key that is an offered load (`workload.rate_scale`…):
  runs at different loads replay traces of different lengths, so the winner's cost (a total
  over its trace) is not comparable across them — both the closing line and the dashboard say
  so (`LOAD_NOTE`).
- `trace_sizes(summaries)`: '200 to 2,000' when completed runs replayed traces of different
  request counts (another trace file, a window, `max_requests`) without a swept load key to say
  so, else None; the closing line and the dashboard say it with `LOAD_NOTE`'s reason.
"""

from __future__ import annotations

import re

COST_TOLERANCE = 0.01
ATTAINMENT_TOLERANCE = 0.001
RULE = ("best SLO attainment (within 0.1 point ties), then lowest cost (within 1 % ties), then "
        "fewest requests unanswered, then lower p99 TTFT, then run number")


def _natural(name: str) -> tuple:
    return tuple((0, int(t), "") if t.isdigit() else (1, 0, t)
                 for t in re.split(r"(\d+)", name) if t)


def winner(runs) -> str | None:
    """The name of the winning run among `(name, summary)` pairs (module docstring)."""
    done = [(n, s) for n, s in runs if s is not None]
    if not done:
        return None
    best = max(s.get("slo_attainment") or 0.0 for _, s in done)
    done = [(n, s) for n, s in done
            if (s.get("slo_attainment") or 0.0) >= best - ATTAINMENT_TOLERANCE]
    costs = [s["cost_usd"] for _, s in done if s.get("cost_usd") is not None]
    if costs:
        bound = min(costs) + COST_TOLERANCE * abs(min(costs))
        done = [(n, s) for n, s in done if s.get("cost_usd") is not None and s["cost_usd"] <= bound]
    inf = float("inf")
    return min(done, key=lambda ns: (unanswered(ns[1]),
                                     inf if ns[1].get("ttft_p99_s") is None
                                     else ns[1]["ttft_p99_s"], _natural(ns[0])))[0]


def unanswered(summary: dict | None) -> int:
    """Requests of a run's summary that got no answer: dropped (lost ones among them) or still
    running when the run ended (`requests_total` − `requests_completed`). Its latency
    percentiles and CDFs cover only the others: such a run must not win on p99 against one
    that served them, and the dashboard draws it apart on the cost-vs-p99 plots and leaves it
    off their Pareto front."""
    s = summary or {}
    total, done = s.get("requests_total"), s.get("requests_completed")
    return max(0, int(total) - int(done)) if total is not None and done is not None else 0


#: last components of a swept key that measure offered load (`load_dimension`)
LOAD_NAMES = ("rate_scale", "rate", "rps", "qps", "arrival_rate", "load")
#: why costs of runs at different loads do not compare (the closing line and the dashboard)
LOAD_NOTE = ("a total over the trace shrinks with a shorter trace, so compare costs of runs "
             "at the same load")


def is_number(s) -> bool:
    try:
        float(s)
    except (TypeError, ValueError):
        return False
    return True


def load_dimension(runs, dims: list[str]) -> str | None:
    """The swept key of `dims` that measures offered load (last component in `LOAD_NAMES`,
    numeric in every run of `runs` that sets it: `Run.params`), or None."""
    for k in dims:
        if k.rsplit(".", 1)[-1] in LOAD_NAMES and all(
                is_number(r.params[k]) for r in runs if k in r.params):
            return k
    return None


def trace_sizes(summaries) -> str | None:
    """'LOW to HIGH' requests when the completed runs' summaries (`requests_total`) differ,
    else None (module docstring)."""
    sizes = sorted({int(s["requests_total"]) for s in summaries
                    if s and is_number(s.get("requests_total"))})
    return f"{sizes[0]:,} to {sizes[-1]:,}" if len(sizes) > 1 else None


def pareto(points: list[tuple[float, float, int]]) -> list[int]:
    """Indices of the (cost, latency, index) points on the lower-left front, by cost."""
    front, best = [], float("inf")
    for _cost, lat, idx in sorted(points):
        if lat < best:
            front.append(idx)
            best = lat
    return front
