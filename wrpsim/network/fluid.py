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

The engine is one class in three modules: `FluidEngine` here (state, driving, lazy replay of
the steps), its rate recomputation (`fluid_rates.RateMixin`, with the max-min solvers) and its
bundled transfers (`fluid_bundles.BundleMixin`).
"""

from __future__ import annotations

import heapq
from collections import defaultdict

import numpy as np

from wrpsim.network.fluid_bundles import BundleMixin
from wrpsim.network.fluid_rates import (
    _NONES,
    _ONES,
    INF,
    SMALL,
    RateMixin,
    maxmin_rates,
    maxmin_small,
)
from wrpsim.network.paths import Conn
from wrpsim.network.topology import LeafSpine

__all__ = ["SMALL", "FluidEngine", "maxmin_rates", "maxmin_small"]
TRIM_STEPS = 4096  # steps kept before dropping the ones nothing has to replay
NAN = float("nan")


class FluidEngine(RateMixin, BundleMixin):
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
        # port -> active connection ids (a port enters with its first connection)
        self._port_conns: defaultdict[int, set[int]] = defaultdict(set)
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
            pc[p].add(cid)
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
            pc[p].add(cid)
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
            s = pc[p]
            if s or held[p]:
                self._mixed = True
            s.add(cid)
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

    def run(self) -> float:
        """Run standalone until every connection has finished; the last finish time."""
        while (t := self.next_time()) is not None:
            self.advance(t)
        return self.now
