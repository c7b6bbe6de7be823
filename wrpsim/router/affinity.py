"""Cache-aware policies: prefix-aware routing and session affinity.

`PrefixAware` weighs each candidate's longest cached prefix of the request against its load, as
llm-d's scorers (prefix-cache scorer + load scorer) and SGLang's cache-aware router do, with
SGLang's guard: when the fleet is badly imbalanced it falls back to the least loaded instance.
Load is counted on an absolute scale, not relative to the busiest candidate: a one-request
difference between lightly loaded instances must not outweigh a session's cached prefix. (SGLang
ignores load altogether while the fleet is within its balance thresholds; llm-d weighs its
prefix scorer above its queue scorer, 3 to 2 in the default profile; the vLLM production stack's
load-aware router divides load by max(1, mean load).) With `load / max(load)` one request more
cost a candidate the whole `load_weight`, the same as a full prefix: on `workload=chat-sessions
workload.source.num_sessions=40 workload.source.dependent=true` with prefix caching, sessions
left their cached prefixes whenever another instance was idle by one request (block hit ratio
0.717, against 0.807 with the absolute scale and 0.780 for session affinity).
`SessionAffinity` keeps every request of a session on the instance that served its first one,
unless that instance is overloaded.
"""

from __future__ import annotations

from wrpsim.errors import integer, number
from wrpsim.router.base import Router


def _check(name: str, value, lo: float = 0.0) -> None:
    """A finite number >= `lo` (NaN compares false with every bound: refused too)."""
    number(f"router.{name}", value, lo=lo, finite=True)


class PrefixAware(Router):
    """Score = prefix_weight × (cached leading blocks / request blocks)
    − load_weight × outstanding / max(balance_abs_threshold, max outstanding among candidates);
    highest wins (ties: the first candidate).

    If the candidates' outstanding counts differ by more than `balance_abs_threshold` and the
    busiest has more than `balance_rel_threshold` × the idlest, route to the least loaded.
    Below that the fleet counts as balanced, and the load term is scaled to the same band: an
    instance holding `balance_abs_threshold` requests (or the busiest, when more) pays the full
    `load_weight`, each request 1/`balance_abs_threshold` of it (module docstring: why).
    """

    name = "prefix_aware"
    #: the policy scores cached prefix-hash ids: `wrpsim.sim` warns when the fleet caches no
    #: prefixes or the workload has no ids (every match 0: it routes on load alone)
    needs_prefix_ids = True

    def __init__(self, prefix_weight: float = 1.0, load_weight: float = 1.0,
                 balance_abs_threshold: int = 32, balance_rel_threshold: float = 1.5):
        for k, v in (("prefix_weight", prefix_weight), ("load_weight", load_weight),
                     ("balance_abs_threshold", balance_abs_threshold),
                     ("balance_rel_threshold", balance_rel_threshold)):
            _check(k, v)
        self.prefix_weight = float(prefix_weight)
        self.load_weight = float(load_weight)
        self.abs_thr = balance_abs_threshold
        self.rel_thr = float(balance_rel_threshold)

    def choose(self, request, cands):
        """Best prefix/load score (see class docstring)."""
        loads = [i.outstanding for i in cands]
        lo, hi = min(loads), max(loads)
        if hi - lo > self.abs_thr and hi > self.rel_thr * lo:
            return cands[loads.index(lo)]
        n = len(request.hash_ids) if request.hash_ids else 0
        scale = hi if hi > self.abs_thr else self.abs_thr
        best, best_s = cands[0], None
        for inst, load in zip(cands, loads):
            s = -self.load_weight * (load / scale if scale else 0.0)
            if n:
                s += self.prefix_weight * inst.prefix_match(request) / n
            if best_s is None or s > best_s:
                best, best_s = inst, s
        return best


class SessionAffinity(Router):
    """Sticky sessions: a session's first request goes to the least outstanding instance and
    the rest follow it, unless it has `max_outstanding` or more requests (then the least
    outstanding instance takes the request and becomes the session's home). Requests without a
    session go to the least outstanding instance."""

    name = "session_affinity"
    #: the policy keys on `session_id`: `wrpsim.sim` warns when the trace has none (every
    #: request then goes to the least outstanding instance)
    needs_session_ids = True

    def __init__(self, max_outstanding: int = 64):
        self.max_outstanding = integer("router.max_outstanding", max_outstanding, 1)

    def bind(self, fleet, rng):
        """See `Router.bind`."""
        super().bind(fleet, rng)
        self._home: dict[str, object] = {}

    def choose(self, request, cands):
        """Home instance of the session, or the least outstanding one."""
        sid = request.session_id
        key = (cands.key, sid)
        home = self._home.get(key) if sid is not None else None
        if home is None or home not in cands or home.outstanding >= self.max_outstanding:
            home = min(cands, key=lambda i: i.outstanding)
            if sid is not None:
                self._home[key] = home
        return home
