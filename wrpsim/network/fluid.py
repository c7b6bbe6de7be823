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

Phantoms (a packet window's cross traffic, `crosstraffic.py`): `add_phantom(ports, coefs)`
adds a connection with no bytes of its own (negative id) that takes its max-min share like
any other but never finishes, carries no bytes in `port_bytes` and is not counted in
`port_max_conns`; `remove(id)` takes it out. `watch`, when a set, collects the ports whose
rate (`port_rate`) may have changed. An engine that never gets a phantom behaves exactly as
one without these hooks.
"""

from __future__ import annotations

import heapq

import numpy as np

from wrpsim.network.flowlog import NANS_BY_LEN, nans
from wrpsim.network.paths import Conn
from wrpsim.network.topology import LeafSpine

SMALL = 48
TRIM_STEPS = 4096  # steps kept before dropping the ones nothing has to replay
NAN, INF = float("nan"), float("inf")
_ONES = tuple((1.0,) * k for k in range(9))
_NONES = len(_ONES)
_RANGES = tuple(range(k) for k in range(_NONES))  # a bundle's members at first


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
    """Max-min fluid simulation of connections on a `LeafSpine` (module docstring).

    Incremental and lazy: a connection's remaining bytes and a port's carried bytes are brought
    up to date only when its rate changes or they are read, by replaying the engine's steps
    (`_steps`: the `dt` of every `advance` that moved time) with the rate it had over them —
    exactly the float operations (`rem - rate*dt`, `bytes + rate*dt`, one step after another)
    of updating every connection and port at every step, so results do not depend on when
    they are read. Per change the work is the recomputed component and the steps its
    connections lived through; the next completion comes from a heap."""

    def __init__(self, topo: LeafSpine):
        self.topo = topo
        self.now = 0.0
        self.cap = np.asarray(topo.rate, dtype=float) / 8.0  # bytes per second
        self._capl = self.cap.tolist()
        n = topo.nports
        self.port_max_conns = [0] * n
        # by connection id, for the whole run (lists: written item by item; a batch of
        # connections shares its start and finish objects)
        self.start_s: list[float] = []
        self.finish_s: list[float] = []      # NaN while the connection runs
        self._steps: list[float] = []        # dt of every advance that moved time
        self._base = 0                       # absolute index of _steps[0] (trimmed prefix)
        # active connection id -> [ports, coefs, rem, rate, synced step, finish]
        self._conns: dict[int, list] = {}
        self._trim_at = TRIM_STEPS
        self._heap: list[tuple[float, int]] = []   # (finish, id), stale entries skipped
        self._port_conns: dict[int, set[int]] = {}   # port -> active connection ids
        # port -> its bundle's first id + 1 while a member of a marked bundle (`_bundles`) runs
        # on it, else 0: a bundle's members are not in `_port_conns` (they enter it when
        # `_unbundle` makes them connections). A bundle started on an idle engine is marked
        # only when something may read the marks (`_settle`): most finish before that
        self._held = [0] * n
        self._pbytes = [0.0] * n             # bytes carried up to step _psync[p]
        self._prate = [0.0] * n              # current rate through the port (bytes/s)
        self._psync = [0] * n
        self._busy: set[int] = set()         # ports with a non-zero rate
        self._dirty_ports: set[int] = set()
        # a recomputation is due before the next `next_time` / `advance`: True; only the
        # trivial one of bundles started on an idle engine (`add_group`), which those skip
        # (setting False): None; none: False
        self._dirty: bool | None = False
        # connections added since the last recomputation, in id order, and whether anything
        # else changed since (an add onto a busy port, a departure leaving a port in use, a
        # phantom, a sprayed connection): when not, each of `_fresh` is alone on its ports and
        # `_rate_fresh` rates them without looking for components (`_recompute`)
        self._fresh: list[int] = []
        self._eager: list[int] = []  # rated when added (`add_paths`), since the last one
        # bundles of `add_group`: first id -> [first id, paths, sizes, rates, finishes, sync
        # step, indices still running, latest finish, the group, whether its ports are marked
        # in `_held` (None: not yet, nor its members in `_eager`: `_settle`)]; `_bat`: the id
        # of a bundle's heap entry -> the bundle
        self._bundles: dict[int, list] = {}
        self._bat: dict[int, list] = {}
        # connections rated when added whose ports' rate, sync step and busy mark are implied
        # (each alone on its ports, which were idle: its rate, from its st[4] on) until
        # `_materialize` writes them; a departure adds its bytes to its ports directly
        self._lazy: dict[int, None] = {}
        self._mixed = False
        # (29 attributes at most: CPython 3.11 keeps an instance's attributes inline, with
        # fast lookups, only while its class's shared keys number fewer than 30)
        self._phantoms = 0                   # phantoms added (their ids: -1, -2, ...)
        self._ph_ports: dict[int, int] = {}  # port -> phantoms on it
        self.watch: set[int] | None = None   # ports whose rate may have changed

    def port_rate(self, p: int) -> float:
        """Bytes per second the connections (not the phantoms) put through port `p` now."""
        if self._bundles:
            self._unbundle()
        if self._lazy:
            self._materialize()
        return self._prate[p]

    def add_phantom(self, ports: tuple[int, ...], coefs: tuple[float, ...]) -> int:
        """Start a phantom on `ports` (rate × `coefs[i]` on `ports[i]`) at `now`; its id."""
        if self._bundles:
            self._settle()
        self._phantoms += 1
        cid = -self._phantoms
        self._conns[cid] = [tuple(ports), tuple(coefs), INF, 0.0, self._base + len(self._steps),
                            INF]
        pc, ph = self._port_conns, self._ph_ports
        for p in ports:
            pc.setdefault(p, set()).add(cid)
            ph[p] = ph.get(p, 0) + 1
        self._dirty_ports.update(ports)
        self._dirty = self._mixed = True
        return cid

    def remove(self, cid: int) -> None:
        """Take phantom `cid` out at `now`; the others' rates are recomputed."""
        if self._bundles:
            self._settle()
        st = self._conns.pop(cid)
        pc, ph = self._port_conns, self._ph_ports
        for p in st[0]:
            pc[p].discard(cid)
            ph[p] -= 1
        self._dirty_ports.update(st[0])
        self._dirty = self._mixed = True

    # -- lazy state ---------------------------------------------------------------------------

    def _replay(self, x: float, r: float, since: int, sign: float) -> float:
        """`x` moved by `sign`·r·dt for every step from absolute index `since` on."""
        steps = self._steps
        i = since - self._base
        if i == len(steps) - 1:  # one step (the common case): no slice
            return x - r * steps[i] if sign < 0 else x + r * steps[i]
        if sign < 0:
            for dt in steps[i:] if i else steps:
                x = x - r * dt
        else:
            for dt in steps[i:] if i else steps:
                x = x + r * dt
        return x

    def _sync_conn(self, st: list) -> None:
        end = self._base + len(self._steps)
        if st[4] != end:
            if st[3]:
                st[2] = self._replay(st[2], st[3], st[4], -1.0)
            st[4] = end

    def _sync_port(self, p: int) -> None:
        end = self._base + len(self._steps)
        if self._psync[p] != end:
            r = self._prate[p]
            if r:
                self._pbytes[p] = self._replay(self._pbytes[p], r, self._psync[p], 1.0)
            self._psync[p] = end

    def _trim(self) -> None:
        """Drop the steps no active connection, bundle or busy port still has to replay, and
        set the next trim at twice the steps kept (at least `TRIM_STEPS`). Callers trim when
        `len(self._steps) >= self._trim_at`, and only between departures: a bundle already
        taken out of `_bundles` but not yet settled would lose the steps it replays."""
        end = self._base + len(self._steps)
        low = min((st[4] for st in self._conns.values()), default=end)
        low = min(low, min((b[5] for b in self._bundles.values()), default=end))
        low = min(low, min((self._psync[p] for p in self._busy), default=end))
        if low > self._base:
            del self._steps[:low - self._base]
            self._base = low
        self._trim_at = max(TRIM_STEPS, 2 * len(self._steps))

    # -- views (tests, scenarios) -------------------------------------------------------------

    @property
    def active(self) -> list[int]:
        """Ids of the connections still running (ascending)."""
        if self._bundles:
            self._unbundle()
        return sorted(self._conns)

    @property
    def act(self) -> np.ndarray:
        """Ids of the active connections, ascending (the order of `rate` and the entries)."""
        return np.asarray(self.active, dtype=np.int64)

    @property
    def rate(self) -> np.ndarray:
        """Rates (bytes/s) of the active connections, in `act` order."""
        return np.asarray([self._conns[c][3] for c in self.active], dtype=float)

    @property
    def rem(self) -> np.ndarray:
        """Remaining bytes of the active connections, in `act` order."""
        out = []
        for c in self.active:
            self._sync_conn(self._conns[c])
            out.append(self._conns[c][2])
        return np.asarray(out, dtype=float)

    def _entries(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        idx, ports, coefs = [], [], []
        for i, c in enumerate(self.active):
            st = self._conns[c]
            idx += [i] * len(st[0])
            ports += st[0]
            coefs += st[1]
        return (np.asarray(idx, dtype=np.int64), np.asarray(ports, dtype=np.int64),
                np.asarray(coefs, dtype=float))

    @property
    def e_idx(self) -> np.ndarray:
        """Entry i: connection `act[e_idx[i]]` puts `e_coef[i]` × its rate on `e_port[i]`."""
        return self._entries()[0]

    @property
    def e_port(self) -> np.ndarray:
        return self._entries()[1]

    @property
    def e_coef(self) -> np.ndarray:
        return self._entries()[2]

    @property
    def port_bytes(self) -> np.ndarray:
        """Bytes every port has carried up to `now`."""
        if self._bundles:
            self._unbundle()
        if self._lazy:
            self._materialize()
        for p in self._busy:
            self._sync_port(p)
        return np.asarray(self._pbytes, dtype=float)

    # -- driving ------------------------------------------------------------------------------

    def add(self, conn: Conn) -> int:
        """Start `conn` at `now`; returns its connection id."""
        paths = conn.paths
        if len(paths) == 1:
            return self.add_path(paths[0], conn.nbytes)
        # a sprayed connection: 1/k of its rate per path, shared ports summed
        if self._bundles:
            self._settle()
        cid = len(self.start_s)
        self.start_s.append(self.now)
        self.finish_s.append(NAN)
        share: dict[int, float] = {}
        for path in paths:
            for p in path:
                share[p] = share.get(p, 0.0) + 1.0 / len(paths)
        plist = tuple(sorted(share))
        coefs = tuple(share[p] for p in plist)
        self._conns[cid] = [plist, coefs, float(conn.nbytes), 0.0,
                            self._base + len(self._steps), INF]
        pc = self._port_conns
        for p in plist:
            s = pc.get(p)
            if s is None:
                pc[p] = {cid}
            else:
                s.add(cid)
        self._dirty_ports.update(plist)
        self._dirty = self._mixed = True
        return cid

    def add_path(self, ports: tuple[int, ...], nbytes: int) -> int:
        """Start a connection of `nbytes` on the one path `ports` at `now` (what `add` does for
        a `Conn` with one path); returns its connection id."""
        cid = len(self.start_s)
        self.start_s.append(self.now)
        self.finish_s.append(NAN)
        n = len(ports)
        self._conns[cid] = [ports, _ONES[n] if n < _NONES else (1.0,) * n, float(nbytes), 0.0,
                            self._base + len(self._steps), INF]
        if self._bundles:
            self._settle()
        pc, held = self._port_conns, self._held
        for p in ports:
            s = pc.get(p)
            if s is None:
                pc[p] = {cid}
            else:
                if s:
                    self._mixed = True
                s.add(cid)
            if held[p]:
                self._mixed = True
        self._dirty_ports.update(ports)
        self._fresh.append(cid)
        self._dirty = True
        return cid

    def add_paths(self, paths: list[tuple[int, ...]], sizes: list[int]) -> None:
        """`add_path(paths[i], sizes[i])` for every i, in order (ids consecutive from the
        number of connections so far). A connection whose ports are all idle is rated at once,
        as `_rate_fresh` would rate it at the next recomputation (its ports are then not
        marked; `_recompute` marks them again if anything else changed, so the component
        search starts from the same ports as when they were), so `port_rate` shows it before
        `next_time()` does. When every one of them is alone on idle ports (a KV transfer's
        flows), they are kept as one bundle (`_bundles`) with one heap entry, until they
        finish or anything else needs them as connections (`_unbundle`). `paths` and `sizes`
        are kept: not to be changed afterwards. (`add_group(group(paths), sizes)`.)"""
        self.add_group(self.group(paths), sizes)

    def group(self, paths) -> tuple:
        """What `add_group` needs to know of connections on `paths` (one path each), whatever
        their bytes: the paths (a tuple), all their ports in path order, each path's rate when
        alone on idle ports (its smallest capacity, as `_register` gives it), per port of
        the second item its path's rate, whether every port appears once (`add_group` then
        needs no check on an idle engine), the paths' one rate when they all have the same
        (else None) and a one-item list the engine sets to True once every one of its ports
        has had a connection (`port_max_conns` at least 1: it never drops again, so
        `add_group` need not look again). Valid for this engine's whole life (its
        capacities do not change): a caller that starts connections on the same paths again
        may keep it."""
        cap = self._capl
        flat: list[int] = []
        rates = []
        prates: list[float] = []
        for ports in paths:
            rc = INF
            for p in ports:
                v = cap[p]
                if v < rc:  # min(): the first smallest; caps are positive
                    rc = v
            rates.append(rc)
            flat += ports
            prates += [rc] * len(ports)
        one = rates[0] if rates and rates.count(rates[0]) == len(rates) else None
        return (tuple(paths), tuple(flat), tuple(rates), tuple(prates),
                len(set(flat)) == len(flat), one, [False])

    def add_group(self, group: tuple, sizes: list[int]) -> float | None:
        """`add_paths(paths, sizes)` for the paths of `group` (`group(paths)`). On an idle
        engine (no connection, phantom or bundle: no port has a connection or is held) paths
        whose ports appear once are a bundle without looking at their ports, and it is not
        marked in `_held`, nor are its members entered among the connections rated since the
        last recomputation (`_eager`) or the engine marked for one: a recomputation would
        change nothing of theirs (`_settle` does both when anything else changes the engine).
        Its earliest finish is then returned: the engine's next completion (else None)."""
        paths, flat, rates, _, distinct, one, seen = group
        cid = c0 = len(self.start_s)
        k = len(paths)
        if not k:
            if self._bundles:
                self._settle()
            self._dirty = True
            return None
        now = self.now
        self.start_s.extend([now] * k)  # (list products: no `repeat`'s argument parsing)
        self.finish_s.extend(NANS_BY_LEN.get(k) or nans(k))  # (one `NAN` object)
        sync = self._base + len(self._steps)
        idle = (distinct and not self._conns and not self._bundles and self.watch is None)
        if idle or self._hold(flat, c0 + 1):  # a bundle: one heap entry, its earliest
            if not seen[0]:  # (finish, id)
                pmax = self.port_max_conns
                for p in flat:
                    if not pmax[p]:
                        pmax[p] = 1
                seen[0] = True
            fmin = fmax = now + float(sizes[0]) / rates[0]  # (`_rate_fresh`)
            c = c0
            if one is not None and sizes.count(sizes[0]) == k:  # all the same: one division
                fins = [fmin] * k
            else:
                fins = []
                for b, rc in zip(sizes, rates):  # (min(), index() and max() in one pass)
                    f = now + float(b) / rc
                    fins.append(f)
                    if f < fmin:
                        fmin, c = f, c0 + len(fins) - 1
                    elif f > fmax:
                        fmax = f
            self._bundles[c0] = self._bat[c] = [c0, paths, sizes, rates, fins, sync,
                                                _RANGES[k] if k < _NONES else range(k), fmax,
                                                group, None if idle else True]
            heapq.heappush(self._heap, (fmin, c))
            if idle:
                if not self._dirty:
                    self._dirty = None
                return fmin
            self._eager.extend(range(c0, c0 + k))
            self._dirty = True
            return None
        register = self._register
        rates = []
        fins = []
        for ports, b in zip(paths, sizes):
            rc = register(ports, cid)
            if rc is None:
                break
            rates.append(rc)
            fins.append(now + float(b) / rc)  # (`_rate_fresh`)
            cid += 1
        # connection `cid` shares a port: those before it alone (rated), it and the rest
        # one by one (`_register` finds it: some connection does, as `_hold` found)
        conns, heap, eager, lazy = self._conns, self._heap, self._eager, self._lazy
        for j in range(cid - c0):
            ports = paths[j]
            n = len(ports)
            conns[c0 + j] = [ports, _ONES[n] if n < _NONES else (1.0,) * n, float(sizes[j]),
                             rates[j], sync, fins[j]]
            heapq.heappush(heap, (fins[j], c0 + j))
            eager.append(c0 + j)
            lazy[c0 + j] = None
        j = cid - c0
        ports = paths[j]
        n = len(ports)
        conns[cid] = [ports, _ONES[n] if n < _NONES else (1.0,) * n, float(sizes[j]), 0.0, sync,
                      INF]
        self._dirty_ports.update(ports)
        self._mixed = True
        self._add_each(paths[j + 1:], sizes[j + 1:], cid + 1, sync)
        self._dirty = True
        return None

    def _add_each(self, paths: list[tuple[int, ...]], sizes: list[int], cid: int,
                  sync: int) -> None:
        """`add_paths`' connections one by one from id `cid` on (start and finish times
        already recorded): each rated at once when alone on idle ports, else marked."""
        now = self.now
        conns, eager, lazy = self._conns, self._eager, self._lazy
        heap, push, register = self._heap, heapq.heappush, self._register
        for ports, b in zip(paths, sizes):
            n = len(ports)
            st = conns[cid] = [ports, _ONES[n] if n < _NONES else (1.0,) * n, float(b), 0.0,
                               sync, INF]
            rc = register(ports, cid)
            if rc is not None:  # (`_rate_fresh`; its ports' rates are implied: `_lazy`)
                st[3] = rc
                f = st[5] = now + st[2] / rc
                push(heap, (f, cid))
                eager.append(cid)
                lazy[cid] = None
            else:
                self._dirty_ports.update(ports)
                self._mixed = True
            cid += 1

    def _hold(self, ports: tuple[int, ...], mark: int) -> bool:
        """The bundle test of `add_group` on an engine that is not idle: when nothing watches
        it and every one of `ports` (a group's, in path order) is idle (no connection, no
        bundle member) and appears once, hold them (`_held`: `mark`, the bundle's first id
        + 1) and return True; else False, nothing held."""
        if self._bundles:  # (the connections `add_group` makes otherwise read `_held` too)
            self._settle()
        if self.watch is not None:
            return False
        pc, held = self._port_conns, self._held
        for p in ports:
            if held[p] or pc.get(p):
                for q in ports:  # (undo: the ports held with `mark` are this call's)
                    if held[q] == mark:
                        held[q] = 0
                return False
            held[p] = mark
        return True

    def _settle(self) -> None:
        """Before anything but a bundle on an idle engine changes the engine (or reads
        `_held`): enter the members of the bundles `add_group` started on an idle engine
        since the last recomputation (or `next_time` / `advance`, which skipped its trivial
        one: `_dirty` False since) among the connections rated since then (`_eager`), and
        mark the engine for one, as `add_group` does for a bundle on an engine that is not
        idle — so that recomputation starts from the same ports as if they had been entered
        at once; and mark in `_held` the ports of the running members of every bundle not
        marked yet."""
        held = self._held
        recall = self._dirty is not False
        for b in self._bundles.values():
            if b[9] is None and recall:
                self._eager.extend(range(b[0], b[0] + len(b[1])))
                self._dirty = True
            if not b[9]:
                b[9] = True
                mark, paths = b[0] + 1, b[1]
                for i in b[6]:
                    for p in paths[i]:
                        held[p] = mark

    def _register(self, ports: tuple[int, ...], cid: int) -> float | None:
        """Enter connection `cid` on its `ports` (their connection sets, their most concurrent
        connections at least 1); its rate when it is alone on every one of them and nothing
        watches the engine — the smallest capacity, as `_rate_fresh` would give it — else
        None."""
        pc, cap, pmax = self._port_conns, self._capl, self.port_max_conns
        alone = self.watch is None
        rc = INF
        held = self._held
        for p in ports:
            s = pc.get(p)
            if s is None:
                pc[p] = {cid}
            else:
                if s:
                    alone = False
                s.add(cid)
            if held[p]:
                alone = False
            v = cap[p]
            if v < rc:  # min(): the first smallest; caps are positive
                rc = v
            if not pmax[p]:  # (at least 1 once rated, whichever way)
                pmax[p] = 1
        return rc if alone else None

    def _unbundle(self) -> None:
        """Make the running connections of every bundle plain ones (state, heap entry, lazily
        kept ports, entered on their ports' connection sets), as `add_paths` would have made
        them one by one."""
        self._settle()
        conns, heap, lazy = self._conns, self._heap, self._lazy
        pc, held = self._port_conns, self._held
        for c0, paths, sizes, rates, fins, sync, alive, _, _, _ in self._bundles.values():
            for i in alive:
                ports = paths[i]
                n = len(ports)
                c = c0 + i
                for p in ports:
                    held[p] = 0
                    s = pc.get(p)
                    if s is None:
                        pc[p] = {c}
                    else:
                        s.add(c)
                conns[c] = [ports, _ONES[n] if n < _NONES else (1.0,) * n, float(sizes[i]),
                            rates[i], sync, fins[i]]
                heapq.heappush(heap, (fins[i], c))
                lazy[c] = None
        self._bundles = {}
        self._bat = {}

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
        conns = self._conns
        e_idx, e_port, e_coef = self._entries()
        r = maxmin_rates(len(comp), e_idx, e_port, e_coef, self.cap).tolist()
        pr: dict[int, float] = {}
        for c, rc in zip(comp, r):
            st = conns[c]
            if c < 0:  # a phantom carries nothing
                for p in st[0]:
                    pr.setdefault(p, 0.0)
                continue
            for p, a in zip(st[0], st[1]):
                pr[p] = pr.get(p, 0.0) + a * rc
        for p in self._busy:
            if p not in pr:
                pr[p] = 0.0
        return r, pr

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
        if len(steps) >= self._trim_at:
            self._trim()

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

    def next_time(self) -> float | None:
        """Time of the next completion, or None when no connection is active: the earliest
        valid finish on the heap (stale entries dropped)."""
        if self._dirty:
            self._recompute()
        elif self._dirty is None:  # (`add_group`'s bundles on an idle engine: nothing to do)
            self._dirty = False
        heap, conns, bat = self._heap, self._conns, self._bat
        while heap:
            f, c = heap[0]
            if c in bat:  # a bundle's entry (its id is no connection's while it is one)
                return f
            st = conns.get(c)
            if st is not None and st[5] == f:
                return f
            heapq.heappop(heap)
        return None

    def advance(self, t: float) -> list[int]:
        """Move to time `t` (not past `next_time()`); ids of connections that finish at `t`."""
        if self._dirty:
            self._recompute()
        elif self._dirty is None:  # (`add_group`'s bundles on an idle engine: nothing to do)
            self._dirty = False
        dt = t - self.now
        if dt < 0:
            raise ValueError(f"fluid engine cannot go back in time: now={self.now}, t={t}")
        if dt > 0:
            self._steps.append(dt)
            self.now = t
        heap = self._heap
        if not heap:
            return []
        lim = t + 1e-12 * abs(t) + 1e-15
        if heap[0][0] > lim:
            return []
        conns, bat = self._conns, self._bat
        done = []
        bdone = None
        pop = heapq.heappop
        while heap and heap[0][0] <= lim:
            f, c = pop(heap)
            b = bat.pop(c, None)  # (a bundle's entry: its id is no connection's meanwhile)
            if b is None:
                st = conns.get(c)
                if st is not None and st[5] == f:
                    done.append((c, st))
                    del conns[c]
                continue
            # a bundle: every member due by `lim` finishes, as with an entry each
            if b[7] <= lim:  # all of them (the latest finish is due)
                due = b[6]
                del self._bundles[b[0]]
                if (bdone is None and not done and (not heap or heap[0][0] > lim)
                        and len(due) == len(b[1]) and b[5] == self._base + len(self._steps) - 1):
                    # (the only departure: the common case; bundles on an idle engine need
                    # no recomputation, whose trim they then skip: trimmed here)
                    ids = self._all_done(t, b)
                    if len(self._steps) >= self._trim_at:
                        self._trim()
                    return ids
            else:
                c0, fins = b[0], b[4]
                due = []
                keep = []
                for i in b[6]:
                    if fins[i] <= lim:
                        due.append(i)
                    else:
                        keep.append(i)
                if keep:  # the rest: a new entry, their earliest (finish, id)
                    b[6] = keep
                    fm, im = INF, -1
                    for i in keep:
                        if fins[i] < fm:
                            fm, im = fins[i], i
                    heapq.heappush(heap, (fm, c0 + im))
                    bat[c0 + im] = b
                else:
                    del self._bundles[c0]
            if bdone is None:
                bdone = [(b, due)]
            else:
                bdone.append((b, due))
        if bdone is not None:
            return self._bundles_done(t, done, bdone)
        if not done:
            return []
        if len(done) > 1:
            done.sort()
        return self._depart(t, done)

    def _depart(self, t: float, done: list) -> list[int]:
        """Connections `done` = [(id, state)], sorted, finish at `t` (`advance`): their ports
        are brought up to date and freed; their ids."""
        pc, prate, busy = self._port_conns, self._prate, self._busy
        steps = self._steps
        psync, pbytes, end = self._psync, self._pbytes, self._base + len(steps)
        last = end - 1  # a port synced up to the last step: one step to add (`_replay`)
        dtl = steps[-1] if steps else 0.0
        watch, finish_s, lazy = self.watch, self.finish_s, self._lazy
        shared = False
        for c, st in done:
            finish_s[c] = t
            ports = st[0]
            if c in lazy:  # alone on its ports all along: they carried its rate since st[4]
                del lazy[c]
                i = st[4]
                rc = st[3]
                for p in ports:
                    pc[p].discard(c)
                    if i == last:
                        pbytes[p] = pbytes[p] + rc * dtl
                    elif i != end:
                        pbytes[p] = self._replay(pbytes[p], rc, i, 1.0)
                continue
            # a port's rate drops to 0 when no connection is left on it; the others are
            # recomputed with the component before the next step (a port left empty joins
            # no component: it is not marked)
            for p in ports:
                s = pc[p]
                s.discard(c)
                if s:
                    if not shared:
                        shared = True
                        dirty = self._dirty_ports
                    dirty.add(p)
                elif prate[p]:
                    i = psync[p]
                    if i == last:
                        pbytes[p] = pbytes[p] + prate[p] * dtl
                        psync[p] = end
                    elif i != end:
                        pbytes[p] = self._replay(pbytes[p], prate[p], i, 1.0)
                        psync[p] = end
                    prate[p] = 0.0
                    busy.discard(p)
                    if watch is not None:
                        watch.add(p)
        if shared:
            self._dirty = self._mixed = True
        return [c for c, _ in done]

    def _all_done(self, t: float, b: list) -> list[int]:
        """Every member of bundle `b` (out of `_bundles`) finishes at `t`, one step after the
        bundle started (`advance`): their finish times, their ports' bytes (each port its
        member's rate times that step, as a `_lazy` connection's) and marks; their ids."""
        c0, k = b[0], len(b[1])
        self.finish_s[c0:c0 + k] = [t] * k
        _, ports, _, prates, _, one, _ = b[8]
        if b[9]:  # (an unmarked bundle's ports are all 0 in `_held`)
            held = self._held
            for p in ports:
                held[p] = 0
        steps = self._steps
        pbytes, dtl = self._pbytes, steps[-1]
        if one is not None:  # (one rate: every member's product is the same)
            inc = one * dtl
            for p in ports:
                pbytes[p] = pbytes[p] + inc
        else:
            for p, r in zip(ports, prates):  # (r * dtl: each member's product, per port)
                pbytes[p] = pbytes[p] + r * dtl
        return list(range(c0, c0 + k))

    def _bundles_done(self, t: float, done: list, bdone: list) -> list[int]:
        """`advance`'s departures at `t` when bundle members are among them: the members'
        ports get their bytes as a `_lazy` connection's do; the plain connections `done` go
        through `advance`'s own path (`_depart`)."""
        held, pbytes, finish_s, steps = self._held, self._pbytes, self.finish_s, self._steps
        end = self._base + len(steps)
        last = end - 1
        dtl = steps[-1] if steps else 0.0
        ids = []
        for b, due in bdone:
            c0, paths, rates, s0 = b[0], b[1], b[3], b[5]
            if s0 == last and len(due) == len(paths):  # all at once, one step since they
                ids += self._all_done(t, b)  # started
                continue
            if b[9]:  # (an unmarked bundle's ports are all 0 in `_held`)
                for i in due:
                    for p in paths[i]:
                        held[p] = 0
            if s0 == last:  # one step since the bundle started
                for i in due:
                    c = c0 + i
                    ids.append(c)
                    finish_s[c] = t
                    inc = rates[i] * dtl  # (the same product for every port)
                    for p in paths[i]:
                        pbytes[p] = pbytes[p] + inc
                continue
            for i in due:
                c = c0 + i
                ids.append(c)
                finish_s[c] = t
                if s0 != end:
                    for p in paths[i]:
                        pbytes[p] = self._replay(pbytes[p], rates[i], s0, 1.0)
        if done:
            done.sort()
            ids += self._depart(t, done)
            ids.sort()
        elif len(bdone) > 1:  # (one bundle's are in order)
            ids.sort()
        if len(steps) >= self._trim_at:  # (after every departure is settled: `_trim`)
            self._trim()
        return ids

    def run(self) -> float:
        """Run standalone until every connection has finished; the last finish time."""
        while (t := self.next_time()) is not None:
            self.advance(t)
        return self.now
