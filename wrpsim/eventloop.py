"""The run's event loop: open-loop arrivals and `run_all`, both on light events.

`Arrivals` dispatches the trace's requests at their arrival times and `run_all` processes the
environment's events, each with `wrpsim.pool.wakeup`'s light events where SimPy's generic
machinery (a process per generator, `Environment.step` per event) would cost more, in exactly
the order SimPy would process them (the results are byte-identical to a SimPy process and
`env.run()`: `benchmarks/check_identical.py`).
"""

from __future__ import annotations

from heapq import heappop

from wrpsim.pool.wakeup import URGENT, Wakeup, wake


class Arrivals:
    """Dispatches open-loop requests at their arrival times with one light event per distinct
    arrival time (`wrpsim.pool.wakeup`), as a SimPy process looping over them would: started
    by an urgent event now (a process's initialisation), a request due after the current time
    `dt` ahead waits `env.timeout(dt)` (so it is dispatched at `now + dt`), requests due by then
    are dispatched at once in the same step, and a last event at the last dispatch (the
    process's end) closes it. `progress` (or None) is updated every 1,024 requests. Each
    request leaves the list once dispatched (its slot becomes None), so a long run does not
    keep every finished request alive."""

    __slots__ = ("dispatch", "env", "k", "progress", "requests")

    def __init__(self, env, requests, dispatch, progress=None):
        self.env, self.requests, self.dispatch, self.progress = env, requests, dispatch, progress
        self.k = 0  # the next request to dispatch
        wake(env, 0, self._next, False, URGENT)

    def _next(self, ev) -> None:
        env, requests, dispatch, progress = self.env, self.requests, self.dispatch, self.progress
        k = self.k
        due = ev.value  # woken by the timeout of requests[k]: it is due now
        while k < len(requests):
            req = requests[k]
            if not due:
                dt = req.arrival_s - env._now
                if dt > 0:
                    self.k = k
                    wake(env, dt, self._next, True)
                    return
            due = False
            requests[k] = None
            dispatch(req)
            if progress and not k & 1023:
                progress.update(env._now)
            k += 1
        self.k = k
        wake(env, 0, _done)  # the process's end


def _done(_ev) -> None:
    """The arrivals are all dispatched (nothing to do: `Arrivals`)."""


def run_all(env) -> None:
    """`env.run()`: process every event until none is left. A light event
    (`wrpsim.pool.wakeup.Wakeup`) is processed here as `Environment.step` would (pop it, set
    the clock, call its callbacks; it cannot fail); any other event by `env.step()` itself.
    An environment whose `step` was replaced (a test checking invariants after every event)
    is run by `env.run()`, which calls it for every event."""
    if "step" in vars(env):
        env.run()
        return
    queue = env._queue
    step = env.step
    while queue:
        ev = queue[0][3]
        if type(ev) is Wakeup:
            env._now = heappop(queue)[0]
            callbacks, ev.callbacks = ev.callbacks, None
            for fn in callbacks:
                fn(ev)
        else:
            step()
