"""Checks after the search: full trace, fresh-seed recheck, one instance fewer, load ±x %.

- `repair` adds instances one at a time until the fleet meets the SLO on every named trace
  (each step takes the +1 that meets it at the lowest objective, else the one with the best
  worst margin); used when the fleet chosen on a search window fails the full trace, when it
  fails the fresh-seed recheck, and to find what +x % load needs;
- `shrink` removes instances one at a time while the SLO stays met (what −x % load needs);
- `one_fewer` judges every fleet with one instance less than the plan;
- `monotonicity_violations` lists evaluated pairs where a fleet met the SLO and a fleet with at
  least as many instances of every pool did not.
"""

from __future__ import annotations


def _step(counts, i: int, d: int) -> tuple:
    return tuple(c + d * (k == i) for k, c in enumerate(counts))


def passes(ev, counts, tags, phase: str) -> bool:
    """The SLO is met on every trace in `tags`."""
    return all(ev.evaluate(counts, t, phase).slo_met for t in tags)


def worst_margin(ev, counts, tags, phase: str) -> float:
    """The smallest margin over targets and traces (-inf when one is undefined)."""
    out = float("inf")
    for t in tags:
        for m in ev.evaluate(counts, t, phase).margins.values() or [float("-inf")]:
            out = min(out, float("-inf") if m is None else m)
    return out


def growable(ev, plan, counts) -> list[int]:
    """Pools `repair` may add to: those in the fleet, and with `plan.mix` those of the same
    roles from the plan's candidates, where one more instance still fits the fabric."""
    roles = {p.role for p, n in zip(ev.pools, counts) if n}
    return [i for i, p in enumerate(ev.pools)
            if counts[i] < plan.max_instances and (counts[i] or (
                plan.mix and p.role in roles and p.candidate in plan.candidates))
            and not ev.invalid(_step(counts, i, 1))]


def repair(ev, plan, counts, tags, phase: str, limit: int | None = None) -> tuple:
    """Add instances until `passes(counts, tags)`, at most `limit` (default max_instances)
    steps; the last fleet reached (which may still fail when the limit is hit)."""
    for _ in range(plan.max_instances if limit is None else limit):
        if passes(ev, counts, tags, phase):
            break
        options = [_step(counts, i, 1) for i in growable(ev, plan, counts)]
        if not options:
            break
        good = [c for c in options if passes(ev, c, tags, phase)]
        if good:
            return min(good, key=lambda c: ev.objective(ev.evaluate(c, tags[0], phase),
                                                         plan.objective))
        counts = max(options, key=lambda c: (worst_margin(ev, c, tags, phase),
                                             [-x for x in c]))
    return counts


def shrink(ev, plan, counts, tags, phase: str) -> tuple:
    """Remove instances while the SLO stays met on `tags` (lowest objective first)."""
    while True:
        options = [_step(counts, i, -1) for i, n in enumerate(counts) if n]
        good = [c for c in options if not ev.invalid(c) and passes(ev, c, tags, phase)]
        if not good:
            return counts
        counts = min(good, key=lambda c: ev.objective(ev.evaluate(c, tags[0], phase),
                                                      plan.objective))


def one_fewer(ev, counts, tags) -> list[dict]:
    """For each pool of the plan: the fleet with one instance less, judged on `tags`."""
    out = []
    for i, n in enumerate(counts):
        if not n:
            continue
        c = _step(counts, i, -1)
        row = {"pool": ev.pools[i].name, "fleet": ev.label(c), "reason": ev.invalid(c)}
        for t in tags:
            e = ev.evaluate(c, t, "one-fewer")
            row[f"slo_met_{t}"] = e.slo_met
            if e.margins:
                key, margin = ev.slo.worst(e.margins)
                row[f"worst_{t}"] = {"target": key, "margin": margin}
        row["slo_met"] = all(row[f"slo_met_{t}"] for t in tags)
        out.append(row)
    return out


def monotonicity_violations(ev, trace: str = "search", limit: int = 10) -> list[dict]:
    """Evaluated pairs (smaller fleet met, larger fleet failed) on one trace."""
    rows = [e for e in ev.rows if e.trace == trace and e.summary]
    bad = []
    for a in rows:
        if not a.slo_met:
            continue
        for b in rows:
            if not b.slo_met and b.counts != a.counts and all(
                    x >= y for x, y in zip(b.counts, a.counts)):
                bad.append({"met": ev.label(a.counts), "failed": ev.label(b.counts)})
    return bad[:limit]
