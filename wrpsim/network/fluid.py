"""The fluid engine: connections as fluids sharing ports by max-min fairness.

Rates are recomputed by progressive filling (`maxmin_rates`) whenever the set of connections
changes (an arrival or a departure); between changes every connection drains at a constant rate,
so the engine jumps from one completion to the next. Only the connections that share ports,
directly or transitively, with the ones that came or went can change rate, so when that
component is small (at most `SMALL` connections: the sparse traffic of a fleet, e.g. KV
transfers on separate rails) only it is recomputed, in plain Python (`maxmin_small`); otherwise
every rate is recomputed with the vectorised `maxmin_rates`. A sprayed connection loads each of
its `k` paths with 1/k of its rate; any other connection loads its one path fully. Same topology
and same `Conn` paths as the packet engine, so the two can be compared. Time is float seconds.

Driving contract (identical standalone and under SimPy): `add(conn)` at the engine's `now`;
`next_time()` is the time of the next completion (None when idle); `advance(t)` with
`now <= t <= next_time()` moves to `t` and returns the ids of connections finished at `t`.
"""

from __future__ import annotations

import numpy as np

from wrpsim.network.paths import Conn
from wrpsim.network.topology import LeafSpine

SMALL = 48


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


class FluidEngine:
    """Max-min fluid simulation of connections on a `LeafSpine` (module docstring)."""

    def __init__(self, topo: LeafSpine):
        self.topo = topo
        self.now = 0.0
        self.cap = np.asarray(topo.rate, dtype=float) / 8.0  # bytes per second
        n = topo.nports
        self.port_bytes = np.zeros(n)
        self.port_max_conns = np.zeros(n, dtype=np.int64)
        self.start_s: list[float] = []
        self.finish_s: list[float] = []
        self.act = np.zeros(0, dtype=np.int64)      # active connection ids
        self.rem = np.zeros(0)                      # their remaining bytes
        self.rate = np.zeros(0)                     # their rates (bytes/s)
        self._finish = np.zeros(0)
        self.e_idx = np.zeros(0, dtype=np.int64)    # entries: position in `act`,
        self.e_port = np.zeros(0, dtype=np.int64)   # port,
        self.e_coef = np.zeros(0)                   # share of the connection's rate
        self._new: list[tuple[int, list[int], list[float], float]] = []
        self._port_rate = np.zeros(n)
        self._port_conns: dict[int, set[int]] = {}   # port -> active connection ids
        self._conn_ports: dict[int, list[int]] = {}  # active connection id -> ports
        self._conn_coefs: dict[int, list[float]] = {}
        self._dirty_ports: set[int] = set()
        self._dirty = False
        self.recomputes = 0

    @property
    def active(self) -> list[int]:
        """Ids of the connections still running."""
        return [int(c) for c in self.act] + [c for c, *_ in self._new]

    def add(self, conn: Conn) -> int:
        """Start `conn` at `now`; returns its connection id."""
        cid = len(self.start_s)
        self.start_s.append(self.now)
        self.finish_s.append(float("nan"))
        if len(conn.paths) == 1:
            plist = list(conn.paths[0])
            coefs = [1.0] * len(plist)
        else:  # a sprayed connection: 1/k of its rate per path, shared ports summed
            share: dict[int, float] = {}
            for path in conn.paths:
                for p in path:
                    share[p] = share.get(p, 0.0) + 1.0 / len(conn.paths)
            plist, coefs = sorted(share), [share[p] for p in sorted(share)]
        self._new.append((cid, plist, coefs, float(conn.nbytes)))
        self._conn_ports[cid] = plist
        self._conn_coefs[cid] = coefs
        for p in plist:
            self._port_conns.setdefault(p, set()).add(cid)
        self._dirty_ports.update(plist)
        self._dirty = True
        return cid

    def _merge_new(self) -> None:
        new, self._new = self._new, []
        base = len(self.act)
        self.act = np.append(self.act, [c for c, *_ in new]).astype(np.int64)
        self.rem = np.append(self.rem, [b for *_, b in new])
        self.rate = np.append(self.rate, np.zeros(len(new)))
        self._finish = np.append(self._finish, np.full(len(new), np.inf))
        idx = [base + i for i, (_, p, _, _) in enumerate(new) for _ in p]
        self.e_idx = np.append(self.e_idx, np.asarray(idx, dtype=np.int64))
        self.e_port = np.append(self.e_port, np.asarray([x for _, p, _, _ in new for x in p],
                                                        dtype=np.int64))
        self.e_coef = np.append(self.e_coef, [x for _, _, w, _ in new for x in w])

    def _recompute(self) -> None:
        self._dirty = False
        self.recomputes += 1
        if self._new:
            self._merge_new()
        n = len(self.act)
        nports = len(self.cap)
        comp = self._component(n)
        if comp is None:
            self.rate = maxmin_rates(n, self.e_idx, self.e_port, self.e_coef, self.cap)
            self._finish = self.now + self.rem / self.rate if n else np.zeros(0)
            self._port_rate = np.bincount(self.e_port, self.e_coef * self.rate[self.e_idx],
                                          minlength=nports)
            np.maximum(self.port_max_conns, np.bincount(self.e_port, minlength=nports),
                       out=self.port_max_conns)
        elif comp:
            pos = np.searchsorted(self.act, comp)
            r = np.asarray(maxmin_small([(self._conn_ports[c], self._conn_coefs[c])
                                         for c in comp], self.cap))
            self.rate[pos] = r
            self._finish[pos] = self.now + self.rem[pos] / r
            rates = dict(zip(comp, r.tolist()))
            ports = {p for c in comp for p in self._conn_ports[c]}
            pr, pmax, pc = self._port_rate, self.port_max_conns, self._port_conns
            for p in ports:
                pr[p] = 0.0
            for c in comp:
                for p, a in zip(self._conn_ports[c], self._conn_coefs[c]):
                    pr[p] += a * rates[c]
            for p in ports:
                if len(pc[p]) > pmax[p]:
                    pmax[p] = len(pc[p])

    def _component(self, n: int) -> list[int] | None:
        """Ids of the connections sharing ports, transitively, with the ports touched since the
        last recomputation, sorted; None when there are more than `SMALL` (recompute all)."""
        seeds, self._dirty_ports = self._dirty_ports, set()
        port_conns, conn_ports = self._port_conns, self._conn_ports
        seen_ports: set[int] = set()
        conns: set[int] = set()
        stack = list(seeds)
        while stack:
            p = stack.pop()
            if p in seen_ports:
                continue
            seen_ports.add(p)
            for c in port_conns.get(p, ()):
                if c not in conns:
                    conns.add(c)
                    if len(conns) > SMALL:
                        return None
                    stack.extend(conn_ports[c])
        return sorted(conns)

    def next_time(self) -> float | None:
        """Time of the next completion, or None when no connection is active."""
        if self._dirty:
            self._recompute()
        if not len(self.act):
            return None
        return float(self._finish.min())

    def advance(self, t: float) -> list[int]:
        """Move to time `t` (not past `next_time()`); ids of connections that finish at `t`."""
        if self._dirty:
            self._recompute()
        dt = t - self.now
        if dt < 0:
            raise ValueError(f"fluid engine cannot go back in time: now={self.now}, t={t}")
        if dt > 0:
            self.rem = self.rem - self.rate * dt
            self.port_bytes += self._port_rate * dt
            self.now = t
        if not len(self.act):
            return []
        done_mask = self._finish <= t + 1e-12 * abs(t) + 1e-15
        if not done_mask.any():
            return []
        done = [int(c) for c in self.act[done_mask]]
        for c in done:
            self.finish_s[c] = t
            del self._conn_coefs[c]
            for p in self._conn_ports.pop(c):
                self._port_conns[p].discard(c)
                self._dirty_ports.add(p)
                self._port_rate[p] = 0.0 if not self._port_conns[p] else self._port_rate[p]
        keep = ~done_mask
        newpos = np.cumsum(keep) - 1
        ekeep = keep[self.e_idx]
        self.e_idx = newpos[self.e_idx[ekeep]]
        self.e_port = self.e_port[ekeep]
        self.e_coef = self.e_coef[ekeep]
        self.act = self.act[keep]
        self.rem = self.rem[keep]
        self.rate = self.rate[keep]
        self._finish = self._finish[keep]
        self._dirty = True
        return done

    def run(self) -> float:
        """Run standalone until every connection has finished; the last finish time."""
        while (t := self.next_time()) is not None:
            self.advance(t)
        return self.now
