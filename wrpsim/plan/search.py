"""Simulation-driven search for the fleet that minimises the objective and meets the SLO.

Phase 1, bisection per candidate: for each colocated candidate, the smallest count n with the
SLO met, bracketed from the analytical first guess (gallop down by 1, 2, 4… while feasible, or
up while infeasible, then bisect). A disaggregated candidate is bisected on its total instance
count n for each P:D ratio in `plan.pd_ratios` (P = round(n·p/(p+d)), D = n − P, both >= 1).
This needs the SLO to be monotone in the count — more instances never hurt under a load-aware
router; the plan records any evaluated pair that contradicts it (`monotonicity_violations`).

Phase 2, coordinate descent from the best phase-1 fleets (the two best candidates when mixes
are allowed; when no single type suffices, from every colocated pool at `max_instances`):
repeatedly take the best move — among the cheapest feasible fleet of every move ladder — that
keeps the SLO met and lowers the objective:
remove one instance of a pool; or replace r instances of pool i by the fewest k >= 1 of pool j
(j of the same role as i and `plan.mix` true, or the other side of the same disaggregated
candidate: a P:D trade), r from 1 up to max(2, how many i one j replaces by the estimated
per-instance rates), k up to r·rate_i/rate_j + 1. Moves that cannot lower a cost or GPU
objective are pruned before simulating. It stops when no move improves (a local optimum over
these neighbourhoods, not a proof of the global one) or the evaluation budget runs out. Ties
break on cost, GPUs, energy, then counts: deterministic.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from wrpsim.plan.evaluate import BudgetExhausted


def min_true(f: Callable[[int], bool], lo: int, hi: int, guess: int) -> int | None:
    """Smallest n in [lo, hi] with f(n) true, for f monotone (false…false true…true), starting
    at `guess`; None when f(hi) is false. The count below the answer is always evaluated."""
    if hi < lo:
        return None
    g = min(max(guess, lo), hi)
    if f(g):
        good, step, bad = g, 1, lo - 1
        while good - step >= lo:
            if not f(good - step):
                bad = good - step
                break
            good, step = good - step, step * 2
    else:
        bad, step = g, 1
        while True:
            n = min(bad + step, hi)
            if f(n):
                good = n
                break
            if n == hi:
                return None
            bad, step = n, step * 2
    while good - bad > 1:
        mid = (good + bad) // 2
        if f(mid):
            good = mid
        else:
            bad = mid
    return good


def pd_split(n: int, ratio: tuple[int, int]) -> tuple[int, int]:
    """(prefill, decode) instances of a disaggregated fleet of n >= 2 at ratio p:d: the
    prefill count nearest n·p/(p+d), a half going to decode (1:1 at 3 is 1P+2D, at 5 2P+3D —
    Python's round would send 1.5 up and 2.5 down), each side at least 1."""
    p, d = ratio
    pre = -((p + d - 2 * n * p) // (2 * (p + d)))  # ceil(n·p/(p+d) - 1/2), exact in integers
    pre = max(1, min(n - 1, pre))
    return pre, n - pre


class Search:
    """Phases 1 and 2 over an `Evaluator` (see module docstring). `guesses`: first-guess count
    per pool name; `rates`: requests/s one instance of each pool sustains (estimate)."""

    def __init__(self, ev, plan, guesses: dict, rates: dict):
        self.ev, self.plan, self.guesses, self.rates = ev, plan, guesses, rates
        self.pools = ev.pools
        self.complete = True
        self.single: list[dict] = []
        self.limits: list[str] = []  # where the fabric, not max_instances, bounded a bisection

    def ok(self, counts, phase: str) -> bool:
        """SLO met by `counts` on the search trace (simulated once, then cached)."""
        return self.ev.evaluate(counts, "search", phase).slo_met

    def _unit(self, assign: dict) -> tuple:
        return tuple(assign.get(i, 0) for i in range(len(self.pools)))

    def phase1(self) -> None:
        """Bisection per candidate (and P:D ratio); fills `self.single`."""
        cap = self.plan.max_instances
        for k, cand in enumerate(self.plan.candidates, 1):
            self.ev.stage = f"candidate {k} of {len(self.plan.candidates)}: {cand}"
            idx = [i for i, p in enumerate(self.pools) if p.candidate == cand]
            if len(idx) == 1:
                i = idx[0]
                g = self.guesses[self.pools[i].name]
                hi = self._reach(range(1, cap + 1), lambda k, i=i: self._unit({i: k}))
                n = min_true(lambda k, i=i: self.ok(self._unit({i: k}), "bisect"), 1, hi, g)
                self.single.append({"candidate": cand, "ratio": None, "guess": g,
                                    "counts": None if n is None else self._unit({i: n})})
                continue
            pi, di = idx
            gp, gd = self.guesses[self.pools[pi].name], self.guesses[self.pools[di].name]
            for ratio in self.plan.pd_ratios:

                def make(k, r=ratio, pi=pi, di=di):
                    return self._unit(dict(zip((pi, di), pd_split(k, r))))

                hi = self._reach([n for n in range(2, 2 * cap + 1)
                                  if max(pd_split(n, ratio)) <= cap], make)
                g = next((n for n in range(2, hi + 1)
                          if pd_split(n, ratio)[0] >= gp and pd_split(n, ratio)[1] >= gd), hi)

                n = min_true(lambda k, make=make: self.ok(make(k), "bisect"), 2, hi, g)
                self.single.append({"candidate": cand, "ratio": f"{ratio[0]}:{ratio[1]}",
                                    "guess": g, "counts": None if n is None else make(n)})

    def _reach(self, sizes, fleet) -> int:
        """The largest of `sizes` (increasing) whose `fleet(n)` can run — fits the fabric:
        bisection above it would meet fleets that cannot be placed, which are not slower ones
        (f would not be monotone); `sizes[0] - 1` when none can."""
        sizes = list(sizes)
        why = {n: self.ev.invalid(fleet(n)) for n in sizes}
        fits = [n for n in sizes if not why[n]]
        if sizes and why[sizes[-1]]:
            self.limits.append(f"{self.ev.label(fleet(sizes[-1]))}: {why[sizes[-1]]}"
                               + (f", so at most {self.ev.label(fleet(fits[-1]))}"
                                  if fits else ""))
        return fits[-1] if fits else (sizes[0] - 1 if sizes else 0)

    def _allowed(self, i: int, j: int) -> bool:
        a, b = self.pools[i], self.pools[j]
        if i == j or b.candidate not in self.plan.candidates:
            return False
        if a.candidate == b.candidate:
            return True
        return self.plan.mix and a.role == b.role

    def _key(self, counts) -> tuple:
        return self.ev.objective(self.ev.evaluate(counts, "search", "descent"),
                                 self.plan.objective)

    def moves(self, s: tuple):
        """Neighbours of `s` in the order they are tried: (counts) tuples."""
        n, cap = len(s), self.plan.max_instances
        for i in range(n):
            if s[i] < 1:
                continue
            yield [tuple(c - (k == i) for k, c in enumerate(s))]
            for j in range(n):
                if not self._allowed(i, j):
                    continue
                same = self.pools[i].role == self.pools[j].role
                ratio = self.rates[self.pools[i].name] / self.rates[self.pools[j].name]
                rmax = max(2, math.ceil(1 / ratio)) if same else 2
                for r in range(1, min(rmax, s[i], 8) + 1):
                    kmax = math.ceil(r * ratio) + 1 if same else r + 1
                    kmax = min(kmax, cap - s[j], 8)
                    yield [tuple(c - r * (k == i) + m * (k == j) for k, c in enumerate(s))
                           for m in range(1, kmax + 1)]

    def descent(self, start: tuple) -> tuple:
        """Coordinate descent from a feasible `start`; the best fleet reached."""
        state, best = start, self._key(start)
        while True:
            step, step_key = None, best
            for ladder in self.moves(state):
                for cand in ladder:
                    bound = self.ev.bound(cand, self.plan.objective)
                    if bound is not None and round(bound, 9) >= best[0]:
                        break
                    if self.ev.invalid(cand):
                        continue
                    if self.ok(cand, "descent"):
                        key = self._key(cand)
                        if key < step_key:
                            step, step_key = cand, key
                        break
            if step is None:
                return state
            state, best = step, step_key

    def run(self) -> tuple | None:
        """Both phases; the best feasible fleet found on the search trace, or None."""
        try:
            self.phase1()
            starts = sorted({r["counts"] for r in self.single if r["counts"]}, key=self._key)
            if not starts and self.plan.mix:  # no single type suffices: start from all at max
                full = self._unit({i: self.plan.max_instances for i, p in enumerate(self.pools)
                                   if p.role == "both" and p.candidate in self.plan.candidates})
                starts = [full] if any(full) and self.ok(full, "descent") else []
            self.ev.stage = "mixing" if self.plan.mix else "descent"
            for s in starts[: 2 if self.plan.mix else 1]:
                self.descent(s)
        except BudgetExhausted:
            self.complete = False
        feasible = [e for e in self.ev.rows if e.trace == "search" and e.slo_met]
        if not feasible:
            return None
        return min(feasible, key=lambda e: self.ev.objective(e, self.plan.objective)).counts
