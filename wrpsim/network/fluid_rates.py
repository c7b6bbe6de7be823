"""The fluid engine's rates: max-min fairness over the connections that share ports.

`maxmin_small` (textbook water-filling, plain Python, for a component of at most `SMALL`
connections) and `maxmin_rates` (progressive filling, vectorised) compute max-min fair rates;
`RateMixin` is the part of `wrpsim.network.fluid.FluidEngine` that decides which connections'
rates a change can move (the connected component of the ports it touches, `_component`; a lone
connection, `_alone`) and recomputes and applies them (`_recompute`, `_apply`), on the engine's
state (its attributes are set by `FluidEngine.__init__`; module docstring of `fluid.py`).
"""

from __future__ import annotations

import bisect
import heapq

import numpy as np

SMALL = 48
INF = float("inf")
_ONES = tuple((1.0,) * k for k in range(9))
_NONES = len(_ONES)


def maxmin_small(flows: list[tuple[list[int], list[float]]], cap) -> list[float]:
    """Max-min fair rates of a few flows, each (ports, coefficients), by textbook water-filling
    (the port with the smallest fair share saturates; its flows freeze; repeat)."""
    rem: dict[int, float] = {}
    w: dict[int, float] = {}
    on: dict[int, list[int]] = {}
    for f, (ports, coefs) in enumerate(flows):
        for p, a in zip(ports, coefs):
            if p not in rem:
                rem[p] = float(cap[p])
                w[p] = 0.0
                on[p] = []
            w[p] += a
            on[p].append(f)
    rate = [-1.0] * len(flows)
    left = len(flows)
    while left:
        best, share = -1, float("inf")
        for p, wp in w.items():
            if rem[p] / wp < share:
                best, share = p, rem[p] / wp
        for f in on[best]:
            if rate[f] < 0:
                rate[f] = share
                left -= 1
                ports, coefs = flows[f]
                for q, a in zip(ports, coefs):
                    if q in w:
                        rem[q] -= a * share
                        w[q] -= a
                        if w[q] <= 1e-12:
                            del w[q]
        w.pop(best, None)
    return rate


def maxmin_rates(nflows: int, e_flow: np.ndarray, e_link: np.ndarray, e_coef: np.ndarray,
                 cap: np.ndarray) -> np.ndarray:
    """Max-min fair rates of `nflows` flows; flow `e_flow[i]` puts `e_coef[i]` × its rate on
    link `e_link[i]` (capacities `cap`; entries sorted by flow; every flow uses a link).

    Progressive filling, many bottlenecks per round: a link's fair share (remaining capacity
    over the coefficients of its unfrozen flows) only grows as flows elsewhere freeze, so every
    link whose share is the smallest on each of its flows' paths (a local minimum) saturates at
    its share, and all such links are settled in the same round. Rounds = depth of the
    bottleneck dependency chain, not the number of distinct rates."""
    rate = np.zeros(nflows)
    if nflows == 0:
        return rate
    nl = len(cap)
    rem = cap.astype(float)
    w = np.bincount(e_link, e_coef, minlength=nl)
    ef, el, ec = e_flow, e_link, e_coef
    while ef.size:
        with np.errstate(divide="ignore", invalid="ignore"):
            share = np.where(w > 1e-12, rem / w, np.inf)
        first = np.empty(ef.size, dtype=bool)
        first[0] = True
        np.not_equal(ef[1:], ef[:-1], out=first[1:])
        starts = np.flatnonzero(first)
        counts = np.diff(np.append(starts, ef.size))
        fmin = np.minimum.reduceat(share[el], starts)
        lmin = np.full(nl, np.inf)
        np.minimum.at(lmin, el, np.repeat(fmin, counts))
        local = share <= lmin * (1 + 1e-9)
        hit = np.maximum.reduceat(local[el], starts)
        frozen_e = np.repeat(hit, counts)
        rate[ef[starts[hit]]] = fmin[hit]
        fl, fc = el[frozen_e], ec[frozen_e]
        rem -= np.bincount(fl, fc * rate[ef[frozen_e]], minlength=nl)
        w -= np.bincount(fl, fc, minlength=nl)
        keep = ~frozen_e
        ef, el, ec = ef[keep], el[keep], ec[keep]
    return rate


class RateMixin:
    """Rate recomputation of `FluidEngine` (module docstring)."""

    def _recompute(self) -> None:
        """New rates for the connections the changes since the last one can affect: the
        touched ports' component (`_alone` / `_component`), rated by the cheapest method that
        gives water-filling's answer bit for bit, then applied (`_apply`)."""
        if self._bundles:
            self._settle()
        self._dirty = False
        fresh, eager = self._fresh, self._eager
        if not self._mixed and len(fresh) + len(eager) <= SMALL and self.watch is None:
            eager.clear()
            if self._dirty_ports:
                self._dirty_ports = set()
            if fresh:
                self._fresh = []
                self._rate_fresh(fresh)
            elif len(self._steps) >= self._trim_at:
                self._trim()
            return
        if fresh:
            self._fresh = []
        if eager:
            self._eager = []
        self._mixed = False
        if self._bundles:
            self._unbundle()
        if self._lazy:
            self._materialize()
        if eager:  # the general path: from every port touched since the last recomputation
            conns, dirty = self._conns, self._dirty_ports
            for c in eager:
                dirty.update(conns[c][0])
        comp = self._alone()
        if comp is not None:  # each alone on its ports: a component of its own
            if comp:
                self._apply(comp, *self._lone_rates(comp))
            return
        comp = self._component()
        if comp is None:  # a large component: every rate, vectorised
            comp = sorted(self._conns)
            self._apply(comp, *self._all_rates(comp))
        elif comp:
            conns, pcs = self._conns, self._port_conns
            if all(len(pcs[p]) == 1 for c in comp for p in conns[c][0]):
                self._apply(comp, *self._lone_rates(comp))
            else:
                self._apply(comp, *self._small_rates(comp))

    def _all_rates(self, comp: list[int]) -> tuple[list[float], dict[int, float]]:
        """Rates of every connection `comp` (= all, sorted) by `maxmin_rates`, and the rate
        through every port they use or that was busy (port rates summed in entry order, as
        np.bincount sums them)."""
        e_idx, e_port, e_coef = self._entries()
        rates = maxmin_rates(len(comp), e_idx, e_port, e_coef, self.cap)
        w = e_coef * rates[e_idx]
        ph = bisect.bisect_left(comp, 0)  # phantoms (ids < 0) sort first and carry nothing
        if ph:
            w[e_idx < ph] = 0.0
        sums = np.bincount(e_port, weights=w)  # (in entry order, one addition at a time)
        ports, first = np.unique(e_port, return_index=True)
        ports = ports[np.argsort(first, kind="stable")]  # each port where it first appears
        pr = dict(zip(ports.tolist(), sums[ports].tolist()))
        for p in self._busy:
            if p not in pr:
                pr[p] = 0.0
        return rates.tolist(), pr

    def _lone_rates(self, comp: list[int]) -> tuple[list[float], dict[int, float]]:
        """Rates of connections `comp` no two of which share a port: each gets its tightest
        port (what water-filling gives, bit for bit: the share cap/a of its first saturated
        port); and the rate through each of their ports."""
        conns, cap, ones = self._conns, self._capl, _ONES
        r = []
        pr: dict[int, float] = {}
        for c in comp:
            st = conns[c]
            ports = st[0]
            coefs = st[1]
            n = len(ports)
            if n < _NONES and coefs is ones[n]:
                rc = min([cap[p] for p in ports])  # x / 1.0 and 1.0 * x are x exactly
                v = rc if c >= 0 else 0.0  # a phantom carries nothing
                for p in ports:
                    pr[p] = v
            else:
                rc = min([cap[p] / a for p, a in zip(ports, coefs)])
                for p, a in zip(ports, coefs):
                    pr[p] = a * rc if c >= 0 else 0.0
            r.append(rc)
        return r, pr

    def _small_rates(self, comp: list[int]) -> tuple[list[float], dict[int, float]]:
        """Rates of a small component `comp` by `maxmin_small`; and the rate through each of
        its ports."""
        conns = self._conns
        r = maxmin_small([(conns[c][0], conns[c][1]) for c in comp], self._capl)
        pr: dict[int, float] = {}
        for c in comp:
            for p in conns[c][0]:
                pr[p] = 0.0
        for c, rc in zip(comp, r):
            if c < 0:  # a phantom carries nothing
                continue
            st = conns[c]
            for p, a in zip(st[0], st[1]):
                pr[p] += a * rc
        return r, pr

    def _apply(self, comp: list[int], r: list[float], pr: dict[int, float]) -> None:
        """Give connection comp[i] rate r[i] (its remaining bytes brought up to now first; its
        finish on the heap, pushed in `comp` order) and port p the rate pr[p] (its carried
        bytes brought up to now first; busy set, peak connection count, `watch`); trim the
        steps now and then."""
        conns, heap, steps, now = self._conns, self._heap, self._steps, self.now
        end = self._base + len(steps)
        push = heapq.heappush
        for c, rc in zip(comp, r):
            st = conns[c]
            if st[4] != end:
                if st[3]:
                    st[2] = self._replay(st[2], st[3], st[4], -1.0)
                st[4] = end
            st[3] = rc
            if c >= 0:  # a phantom never finishes
                f = st[5] = now + st[2] / rc
                push(heap, (f, c))
        pcs = self._port_conns
        prate, psync, pbytes, busy, pmax = (self._prate, self._psync, self._pbytes, self._busy,
                                            self.port_max_conns)
        ph_ports = self._ph_ports if self._phantoms else None
        for p, v in pr.items():
            if psync[p] != end:
                if prate[p]:
                    pbytes[p] = self._replay(pbytes[p], prate[p], psync[p], 1.0)
                psync[p] = end
            prate[p] = v
            if v:
                busy.add(p)
                k = len(pcs[p])
                if ph_ports is not None:
                    k -= ph_ports.get(p, 0)
                if k > pmax[p]:
                    pmax[p] = k
            else:
                busy.discard(p)
        if self.watch is not None:
            self.watch.update(pr)
        if len(heap) > 4 * len(conns) + 1024 and not self._bat:
            self._compact_heap()
        if len(steps) >= self._trim_at:
            self._trim()

    def _compact_heap(self) -> None:
        """Keep only the valid heap entries: (st[5], c) of every running connection with a
        finish (every assignment of a finish pushes it, so each is on the heap; the stale ones
        are those of earlier rates). A large component pushes an entry per connection at each
        recomputation, and popping the stale ones one by one cost more than the rating (4,096
        subflows: 1.3 M pops for 424 completions). Valid entries pop in the same (finish, id)
        order as before, so results are unchanged; called with no bundle on the heap."""
        heap = [(st[5], c) for c, st in self._conns.items() if c >= 0 and st[5] != INF]
        heapq.heapify(heap)
        self._heap = heap

    def _rate_fresh(self, comp: list[int]) -> None:
        """`_apply(comp, *self._lone_rates(comp))` for connections `comp` that were all added
        since the last recomputation onto idle ports, each alone on its ports, one path each
        (so `_alone()` would return exactly `comp`), with no phantom and no `watch`: the same
        rates, heap entries and port updates in one pass."""
        conns, heap, steps, now, cap = self._conns, self._heap, self._steps, self.now, self._capl
        end = self._base + len(steps)
        push = heapq.heappush
        prate, psync, pbytes, busy, pmax = (self._prate, self._psync, self._pbytes, self._busy,
                                            self.port_max_conns)
        for c in comp:
            st = conns[c]
            ports = st[0]
            rc = INF
            for p in ports:  # min(): the first smallest; caps are positive
                v = cap[p]
                if v < rc:
                    rc = v
            st[4] = end  # (added at `now` and never rated: nothing to replay)
            st[3] = rc
            f = st[5] = now + st[2] / rc
            push(heap, (f, c))
            for p in ports:  # each connection alone on its ports: the port carries its rate
                if psync[p] != end:
                    if prate[p]:
                        pbytes[p] = self._replay(pbytes[p], prate[p], psync[p], 1.0)
                    psync[p] = end
                prate[p] = rc
                busy.add(p)
                if not pmax[p]:
                    pmax[p] = 1
        if len(steps) >= self._trim_at:
            self._trim()

    def _materialize(self) -> None:
        """Write the port state the `_lazy` connections imply (each port: the connection's
        rate from its sync step st[4] on, busy), as `_rate_fresh` would have when they were
        rated (their ports were idle: nothing to replay before)."""
        conns, prate, psync, busy = self._conns, self._prate, self._psync, self._busy
        for c in self._lazy:
            st = conns[c]
            for p in st[0]:
                psync[p] = st[4]
                prate[p] = st[3]
                busy.add(p)
        self._lazy = {}

    def _alone(self) -> list[int] | None:
        """`_component()` in the common case of a fleet's sparse traffic — every connection on
        the ports touched since the last recomputation alone on each of its ports (so each is a
        component of its own) and at most `SMALL` of them: their ids, sorted, found without the
        search (the touched ports are then consumed); else None, the touched ports left for
        `_component`."""
        pcs, conns = self._port_conns, self._conns
        comp: set[int] = set()
        for p in self._dirty_ports:
            s = pcs.get(p)
            if s:
                if len(s) > 1:
                    return None
                comp |= s
        if len(comp) > SMALL:
            return None
        for c in comp:
            for q in conns[c][0]:
                if len(pcs[q]) != 1:
                    return None
        self._dirty_ports = set()
        return sorted(comp)

    def _component(self) -> list[int] | None:
        """Ids of the connections sharing ports, transitively, with the ports touched since the
        last recomputation, sorted; None when there are more than `SMALL` (recompute all)."""
        seeds, self._dirty_ports = self._dirty_ports, set()
        port_conns, conns = self._port_conns, self._conns
        seen = set(seeds)
        stack = list(seeds)
        comp: set[int] = set()
        while stack:
            for c in port_conns.get(stack.pop(), ()):
                if c not in comp:
                    comp.add(c)
                    if len(comp) > SMALL:
                        return None
                    for q in conns[c][0]:
                        if q not in seen:
                            seen.add(q)
                            stack.append(q)
        return sorted(comp)
