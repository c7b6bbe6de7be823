"""The fluid engine's bundles: the flows of one transfer held and settled together.

`BundleMixin` is the part of `wrpsim.network.fluid.FluidEngine` that takes a transfer's flows
as one group (`group`, `add_group`): on an idle engine they are held without per-port checks or
a rate recomputation and settle in one step (`_hold`, `_settle`), their completion wake known at
once; a later arrival that shares their ports turns them into plain connections (`_unbundle`);
finished bundles leave at an advance (`_all_done`, `_bundles_done`). It works on the engine's
state (attributes set by `FluidEngine.__init__`; module docstring of `fluid.py`).
"""

from __future__ import annotations

import heapq

from wrpsim.network.flowlog import NANS_BY_LEN, nans
from wrpsim.network.fluid_rates import _NONES, _ONES, INF

_RANGES = tuple(range(k) for k in range(_NONES))  # a bundle's members at first


class BundleMixin:
    """Bundled transfers of `FluidEngine` (module docstring)."""

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
            s = pc[p]
            if s or held[p]:
                alone = False
            s.add(cid)
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
                    pc[p].add(c)
                conns[c] = [ports, _ONES[n] if n < _NONES else (1.0,) * n, float(sizes[i]),
                            rates[i], sync, fins[i]]
                heapq.heappush(heap, (fins[i], c))
                lazy[c] = None
        self._bundles = {}
        self._bat = {}

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
