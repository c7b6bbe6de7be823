"""The fabric's engines run inside SimPy: one driver per engine of a `transfer.Fabric`.

Fluid: rates are recomputed when connections start or finish, and the next
completion is a SimPy timeout; a generation counter voids stale timeouts (SimPy cannot cancel
them). Packet: the engine keeps its own integer-picosecond event queue and is advanced by SimPy
timeouts at its event times (seconds = ps / 1e12). Between SimPy events it runs ahead up to the
next SimPy event (`env.peek()`) or the next connection completion, whichever is first, so one
SimPy event serves thousands of packets. Both drive exactly the engine code the standalone
scenarios use. The fabric's timeouts are the light events of `wrpsim.pool.wakeup` (same times,
same order as `env.timeout`, without the `Timeout` objects).
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING

import simpy

from wrpsim.network.fluid import FluidEngine
from wrpsim.network.packet import PacketEngine
from wrpsim.network.topology import PS_PER_S
from wrpsim.pool.wakeup import wake

if TYPE_CHECKING:
    from wrpsim.network.transfer import Fabric


def _delay(now: float, target: float) -> float:
    """A delay `d >= 0` with `now + d == target` in floating point where one exists."""
    d = max(0.0, target - now)
    for _ in range(4):
        if now + d >= target or d == math.inf:
            break
        d = math.nextafter(d, math.inf)
    return d


class FluidDriver:
    """Runs a `FluidEngine` inside SimPy for a `Fabric` (module docstring)."""

    def __init__(self, fabric: Fabric, env: simpy.Environment, engine: FluidEngine):
        self.fabric, self.env, self.engine = fabric, env, engine
        # engine connection id -> the fabric's flow index; and -> its transfer when it is its
        # flow's only connection and the flow has no `FlowLog.f_live` state
        # (`Fabric._fluid_transfer`), else -1. Lists, not typed arrays: each connection writes
        # and reads both once, which an array does through per-item argument parsing and a
        # new int object per read
        self.conn_flow: list[int] = []
        self.conn_x: list[int] = []
        self.gen = 0
        self.pending: list[int] = []
        self._arming = False
        self._early = -1.0  # the instant whose first add armed the wake at once (`arm_soon`)
        self.on_rates: Callable[[], None] | None = None  # after rates may have changed
        self._t = 0.0                    # the time the latest wake (generation `gen`) is for
        self._deferred = self._arm  # (bound once: `arm_soon`'s wake passes its event)
        self._woken = self._wake

    def add(self, conns) -> None:
        self.catch_up()
        eng = self.engine
        for c in conns:
            eng.add(c)
        self.arm_soon()

    def catch_up(self) -> None:
        """Bring the engine to now before connections are added (the first add of an instant;
        a second add in one instant finds it there); what finishes goes to `pending`."""
        eng, now = self.engine, self.env._now
        if not (self._arming or self._early == now) or eng.now < now:
            done = eng.advance(now if now > eng.now else eng.now)
            if done:
                self.pending += done

    def arm_soon(self, t: float | None = None) -> None:
        """One recomputation for all transfers started at this instant: after this event.

        `t`: the engine's next completion, when the connections just added are all it runs
        and it knows their finishes without a recomputation (`FluidEngine.add_group` on an
        idle engine). If this is the instant's first add and t is later than now, the wake
        for t is scheduled at once, as the deferred `_arm` would schedule it, with no
        deferred event: the engine's recomputation (which changes nothing of theirs) is left
        to its next `advance` or `next_time`, and a second add in this instant still gets a
        deferred `_arm` for them all (its wake voids this one). The wake then has an earlier
        event id than `_arm`'s would have had, which orders it differently only against an
        event scheduled for exactly t (the same float) between now and the end of this
        instant's events; no other event moves."""
        if self._arming:
            return
        now = self.env._now
        if t is not None and t > now and not self.pending and self.on_rates is None:
            self._early = now
            self._schedule(now, t)
            return
        self._arming = True
        wake(self.env, 0, self._deferred)

    def reshape(self, add=(), remove=()) -> list[int]:
        """Add phantoms `add` = [(ports, coefs)] and remove phantoms `remove` now; rates are
        recomputed at once (`on_rates` sees them); the new phantoms' ids."""
        eng = self.engine
        self.pending += eng.advance(max(self.env.now, eng.now))
        ids = [eng.add_phantom(ports, coefs) for ports, coefs in add]
        for pid in remove:
            eng.remove(pid)
        eng.next_time()
        self._arm()
        return ids

    def _arm(self, deferred=None) -> None:
        """Schedule the wake for the engine's next completion (a new generation voids the
        one scheduled before); `deferred`: the event of `arm_soon`'s recomputation, which
        ends the instant's arming."""
        if deferred is not None:
            self._arming = False
        now = self.env._now
        t = now if self.pending else self.engine.next_time()
        if self.on_rates is not None:
            self.on_rates()
        if t is not None:
            self._schedule(now, t)

    def _schedule(self, now: float, t: float) -> None:
        """The wake for time t (a new generation: it voids the one scheduled before)."""
        self.gen += 1
        self._t = t
        d = t - now
        if d < 0.0:
            d = 0.0
        if now + d < t:
            d = _delay(now, t)
        wake(self.env, d, self._woken, self.gen)

    def _wake(self, ev) -> None:
        if ev.value != self.gen:  # voided by a later `_arm`
            return
        eng = self.engine
        t = self._t
        done = self.pending
        if done:  # (finished before, at a `catch_up`: first)
            self.pending = []
            done += eng.advance(t if t > eng.now else eng.now)
        else:
            done = eng.advance(t if t > eng.now else eng.now)
        if done:  # (`Fabric._conns_done`)
            now = self.env._now
            log = self.fabric.log
            f_live, x_live, f_end, x_end = log.f_live, log.x_live, log.f_end, log.x_end
            cf, cx = self.conn_flow, self.conn_x
            i, n = 0, len(done)
            c, e = done[0], done[-1]
            x = cx[c]
            if (x >= 0 and e - c == n - 1 and cx[e] == x and cf[e] - cf[c] == n - 1
                    and x_live[x][0] == n):
                # the connections done now are all the flows their transfer waits for (the
                # loop's first case below, for all of them): it is done (the common case)
                f_end[cf[c]:cf[e] + 1] = [now] * n
                xs = x_live.pop(x)
                x_end[x] = now
                xs[1](now)
                i = n
            while i < n:
                c = done[i]
                i += 1
                x = cx[c]
                if x < 0:  # (`FlowLog.flow_part_done`)
                    fid = cf[c]
                    x = f_live[fid]
                    if x.__class__ is not int:
                        x[0] -= 1
                        if x[0]:
                            continue
                        x = x[1]
                    del f_live[fid]
                    f_end[fid] = now
                    xs = x_live[x]
                else:
                    xs = x_live[x]
                    k = xs[0]
                    e = c + k - 1
                    if (k > 1 and i + k - 2 < n and done[i + k - 2] == e and cx[e] == x
                            and cf[e] - cf[c] == k - 1):
                        # the k flows the transfer waits for all arrive now: its connections
                        # c..e (consecutive, `_fluid_transfer`; `done` is sorted) on
                        # consecutive flows, settled together, the last one below
                        fid = cf[c]
                        f_end[fid:fid + k] = [now] * k
                        i += k - 1
                        xs[0] = 1
                    else:
                        f_end[cf[c]] = now
                xs[0] -= 1
                if xs[0]:
                    continue
                del x_live[x]
                x_end[x] = now
                xs[1](now)  # the transfer's live state (and `done`'s closure) is gone
        self._arm()


class PacketDriver:
    """Runs a `PacketEngine` inside SimPy for a `Fabric` (module docstring)."""

    def __init__(self, fabric: Fabric, env: simpy.Environment, engine: PacketEngine):
        self.fabric, self.env, self.engine = fabric, env, engine
        self.conn_flow = array("q")      # engine connection id -> the fabric's flow index
        self.conn_x = array("q")         # (`FluidDriver.conn_x`; all -1 here)
        self.gen = 0
        self.pending: list[tuple[int, int]] = []
        self.on_done: Callable[[list[int]], None] | None = None  # connections complete now

    def _now_ps(self) -> int:
        return max(round(self.env.now * PS_PER_S), self.engine.now)

    def add(self, conns, before: Callable[[], None] | None = None) -> None:
        """Start `conns` now; `before()` once the engine has caught up with now."""
        eng = self.engine
        t = self._now_ps()
        self.pending += eng.run(t)
        if before is not None:
            before()
        for c in conns:
            eng.add(c, t)
        self._arm()

    def _arm(self) -> None:
        t = min(p[0] for p in self.pending) if self.pending else self.engine.peek()
        if t is None:
            return
        self.gen += 1
        wake(self.env, _delay(self.env.now, t / PS_PER_S), partial(self._wake, self.gen, t))

    def _wake(self, gen: int, t: int, _ev) -> None:
        if gen != self.gen:
            return
        eng = self.engine
        done = [p for p in self.pending if p[0] <= t] + eng.run(t)
        self.pending = [p for p in self.pending if p[0] > t]
        cids = [c for _, c in done]
        if self.on_done is not None and cids:
            self.on_done(cids)
        self.fabric._conns_done(cids, self.conn_flow)
        horizon = self.env.peek()
        if horizon > self.env.now and not self.pending:
            limit = None if horizon == math.inf else round(horizon * PS_PER_S)
            self.pending += eng.run(limit, inclusive=False, stop_at_done=True)
        self._arm()
