"""Cost–quality curves and AIQ (RouterBench's Average Improvement in Quality).

A router swept over its knob (λ of the utility router, the strong share or threshold of the
threshold router) gives one (cost, quality) point per run. Following RouterBench (Hu et al.
2024, §3): the router's curve is the *non-decreasing convex hull* of its points — the upper
convex hull, flattened to its running maximum once it would decrease — and

    AIQ = 1 / (c_max − c_min) · ∫_{c_min}^{c_max} R̃(c) dc

with R̃ that piecewise-linear curve, 0 below the router's cheapest point and flat at its best
quality beyond its dearest. Routers of one sweep are compared over the same [c_min, c_max]: the
range of all their points. Mixing two single models at random traces the straight line between
their points (`random_mix`): a router worth having lies above it. RouterBench's *zero router*
mixes the single models with fixed probabilities p (`wrpsim.router.ZeroRouter`): its expected
point is the p-weighted mean of theirs (`mixture_point`), and over all p its curve is the
non-decreasing convex hull of the single-model points (`zero_curve`; for two models, the line
between them, AIQ = the mean of their qualities when the dearer is the better).

`python -m wrpsim.report` calls `maybe_write_aiq` on every sweep: when runs carry `quality` and
a cost per 1,000 requests (`COST_KEYS`, see `wrpsim.metrics.quality`) it writes `aiq.json` —
per cost axis, per router (the summary's `router`): points, hull, AIQ — next to
`results.parquet`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from itertools import pairwise
from pathlib import Path

COST, QUALITY = "cost_per_1k_requests_usd", "quality"
#: cost axes of `wrpsim.metrics.quality`: measured busy GPU time, and API-style token prices
COST_KEYS = (COST, "token_cost_per_1k_requests_usd")


def _cross(o, a, b) -> float:
    return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])


def nondecreasing_hull(costs: Sequence[float], qualities: Sequence[float]) -> list[tuple]:
    """Vertices (cost ascending) of the non-decreasing upper convex hull of the points."""
    pts = sorted(set(zip(map(float, costs), map(float, qualities))))
    if not pts:
        return []
    best: dict[float, float] = {}
    for c, q in pts:
        best[c] = max(q, best.get(c, q))
    pts = sorted(best.items())
    hull: list[tuple] = []
    for p in pts:
        while len(hull) >= 2 and _cross(hull[-2], hull[-1], p) >= 0:
            hull.pop()
        hull.append(p)
    out = [hull[0]]
    for c, q in hull[1:]:
        if q <= out[-1][1]:
            break
        out.append((c, q))
    return out


def curve_at(hull: Sequence[tuple], c: float) -> float:
    """R̃(c): 0 below the hull's first cost, linear between vertices, flat beyond the last."""
    if not hull or c < hull[0][0]:
        return 0.0
    for (c0, q0), (c1, q1) in pairwise(hull):
        if c <= c1:
            return q1 if c >= c1 else q0 + (q1 - q0) * ((c - c0) / (c1 - c0))
    return hull[-1][1]


def aiq(costs: Sequence[float], qualities: Sequence[float], c_min: float | None = None,
        c_max: float | None = None) -> float | None:
    """AIQ of one router's points over [c_min, c_max] (default: its own cost range)."""
    hull = nondecreasing_hull(costs, qualities)
    if not hull:
        return None
    lo = hull[0][0] if c_min is None else float(c_min)
    hi = max(costs) if c_max is None else float(c_max)
    if hi <= lo:
        return curve_at(hull, lo)
    knots = sorted({lo, hi, *(c for c, _ in hull if lo < c < hi)})
    mean = 0.0
    span = hi - lo
    for a, b in pairwise(knots):  # the curve is linear on each knot interval
        if a >= hull[0][0]:  # (each interval's share of the range first: a quality times a
            # subnormal width rounded up, and 0.75 over [0, 5e-324] came out as 1.0)
            mean += 0.5 * (curve_at(hull, a) + curve_at(hull, b)) * ((b - a) / span)
    return mean


def random_mix(cheap: tuple[float, float], strong: tuple[float, float], c: float) -> float:
    """Quality of a random mix of two models that costs `c` (the line through their points)."""
    (c0, q0), (c1, q1) = cheap, strong
    return q0 + (q1 - q0) * (c - c0) / (c1 - c0)


def mixture_point(weights: dict, points: dict) -> tuple[float, float]:
    """Expected (cost, quality) of routing to model m with probability `weights[m]`, given each
    model's own (cost, quality) `points[m]` (both linear in the mix on a token-priced axis)."""
    c = sum(w * points[m][0] for m, w in weights.items())
    q = sum(w * points[m][1] for m, w in weights.items())
    return c, q


def zero_curve(points: dict) -> list[tuple]:
    """The zero router's curve: the non-decreasing convex hull of the single models' (cost,
    quality) `points` ({model: (cost, quality)}), the best any fixed mixture reaches at each
    cost."""
    pts = list(points.values())
    return nondecreasing_hull([c for c, _ in pts], [q for _, q in pts])


def curves(rows: Sequence[dict], group: str = "router", cost: str = COST) -> dict:
    """Per group: sorted points, hull and AIQ over the common cost range of all groups."""
    pts = [r for r in rows if r.get(cost) is not None and r.get(QUALITY) is not None]
    if not pts:
        return {}
    lo, hi = min(r[cost] for r in pts), max(r[cost] for r in pts)
    out = {}
    for name in sorted({str(r.get(group)) for r in pts}):
        mine = sorted((r[cost], r[QUALITY]) for r in pts if str(r.get(group)) == name)
        cs, qs = [c for c, _ in mine], [q for _, q in mine]
        out[name] = {"points": mine, "hull": nondecreasing_hull(cs, qs),
                     "aiq": aiq(cs, qs, lo, hi)}
    return {"cost_range": [lo, hi], "cost_key": cost, "quality_key": QUALITY, "routers": out}


def maybe_write_aiq(results_path: Path, out_dir: Path) -> dict[str, str]:
    """Write `aiq.json` when the sweep's completed runs carry quality and cost; return files."""
    import pyarrow.parquet as pq

    from wrpsim.io import write_json

    t = pq.read_table(results_path)
    if QUALITY not in t.column_names:
        return {}
    rows = [r for r in t.to_pylist() if r.get("status") == "completed"]
    data = {k: c for k in COST_KEYS if k in t.column_names and (c := curves(rows, cost=k))}
    if not data:
        return {}
    path = Path(out_dir) / "aiq.json"
    write_json(path, json.loads(json.dumps(data)))
    return {"aiq": str(path)}
