"""Baseline load-balancing policies.

All of them choose among `view.candidates(request)`: the instances of every pool that serves the
request's model, in pool order then instance order (so with several pools for one model they
balance across pools). Ties are broken by that order, which keeps runs deterministic.
"""

from __future__ import annotations

from collections import Counter

from wrpsim.errors import integer, warn
from wrpsim.router.base import Router


class RoundRobin(Router):
    """Cycle through the candidate instances, one counter per model."""

    name = "round_robin"
    reads_load = False
    draws_random = False

    def bind(self, fleet, rng):
        """See `Router.bind`."""
        super().bind(fleet, rng)
        self._next: dict[str, int] = {}

    def choose(self, request, cands):
        """Next instance in turn, one counter per candidate set."""
        i = self._next.get(cands.key, 0)
        self._next[cands.key] = i + 1
        return cands[i % len(cands)]


class Random(Router):
    """Pick a candidate uniformly at random."""

    name = "random"
    reads_load = False

    def choose(self, request, cands):
        """Uniform choice from the router's stream."""
        return cands[int(self.rng.integers(len(cands)))]


def _argmin(cands, key):
    best, best_v = cands[0], key(cands[0])
    for inst in cands[1:]:
        v = key(inst)
        if v < best_v:
            best, best_v = inst, v
    return best


class LeastOutstanding(Router):
    """Send to the instance with the fewest outstanding (waiting + running) requests."""

    name = "least_outstanding"
    draws_random = False

    def choose(self, request, cands):
        """Join the shortest queue."""
        return _argmin(cands, lambda i: i.outstanding)


class LeastKV(Router):
    """Send to the instance with the lowest KV-cache occupancy, then fewest waiting."""

    name = "least_kv"
    draws_random = False

    def choose(self, request, cands):
        """Lowest KV use first."""
        return _argmin(cands, lambda i: (i.kv_used_frac, i.num_waiting))


class PowerOfD(Router):
    """Sample `d` distinct candidates at random and take the least outstanding of them."""

    name = "power_of_d"

    def __init__(self, d: int = 2):
        self.d = integer("router.d", d, 1)

    def bind(self, fleet, rng):
        """See `Router.bind`; a `d` no model's instances exceed samples them all, which is
        `least-outstanding` (the samples' draws aside): said once."""
        super().bind(fleet, rng)
        most = max(Counter(i.model for i in fleet.instances).values(), default=0)
        if most > 1 and self.d >= most:
            warn(f"router.d={self.d} is at least the instances of any model ({most}): "
                 f"power-of-d then takes the least outstanding of them all, as "
                 f"router=least-outstanding does; d below {most} samples")

    def choose(self, request, cands):
        """Power of d choices."""
        if len(cands) <= self.d:
            return _argmin(cands, lambda i: i.outstanding)
        idx = sorted(self.rng.choice(len(cands), size=self.d, replace=False).tolist())
        return _argmin([cands[k] for k in idx], lambda i: i.outstanding)
