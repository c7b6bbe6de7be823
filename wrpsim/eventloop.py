"""The run's event loop: open-loop arrivals and `run_all`, both on light events.

`Arrivals` dispatches the trace's requests at their arrival times and `run_all` processes the
environment's events, each with `wrpsim.pool.wakeup`'s light events where SimPy's generic
machinery (a process per generator, `Environment.step` per event) would cost more, in exactly
the order SimPy would process them (the results are byte-identical to a SimPy process and
`env.run()`: `benchmarks/check_identical.py`).
"""

from __future__ import annotations

from heapq import heappop

from wrpsim.pool.wakeup import SPARE, URGENT, Wakeup, wake


class Arrivals:
    """Dispatches open-loop requests at their arrival times with one light event per distinct
    arrival time (`wrpsim.pool.wakeup`), as a SimPy process looping over them would: started
    by an urgent event now (a process's initialisation), a request due after the current time
    `dt` ahead waits `env.timeout(dt)` (so it is dispatched at `now + dt`), requests due by then
    are dispatched at once in the same step, and a last event at the last dispatch (the
    process's end) closes it. `progress` (or None) is updated every 1,024 requests.

    `requests`: the requests in arrival order, as an iterable taken one at a time (an iterator
    may build them as they are taken: `wrpsim.workload.request.iter_requests`); a list is
    consumed, each slot set to None once its request is taken. So a long run keeps no
    finished request alive through its arrivals."""

    __slots__ = ("dispatch", "env", "k", "next_fn", "pending", "progress", "requests")

    def __init__(self, env, requests, dispatch, progress=None):
        self.env, self.dispatch, self.progress = env, dispatch, progress
        self.requests = _taken(requests) if isinstance(requests, list) else iter(requests)
        self.k = 0  # requests dispatched so far
        self.pending = None  # the next request to dispatch, once taken from `requests`
        self.next_fn = self._next  # (bound once: `wake` gets it for every arrival time)
        wake(env, 0, self.next_fn, False, URGENT)

    def _next(self, ev) -> None:
        env, dispatch, progress = self.env, self.dispatch, self.progress
        requests = self.requests
        k = self.k
        req = self.pending if self.pending is not None else next(requests, None)
        self.pending = None
        due = ev.value  # woken by the timeout of `req`: it is due now
        while req is not None:
            if not due:
                dt = req.arrival_s - env._now
                if dt > 0:
                    self.k, self.pending = k, req
                    wake(env, dt, self.next_fn, True)
                    return
            due = False
            dispatch(req)
            if progress and not k & 1023:
                progress.update(env._now)
            k += 1
            req = next(requests, None)
        self.k = k
        wake(env, 0, _done)  # the process's end


def _taken(requests: list):
    """The items of `requests`, each slot set to None as its item is taken."""
    for k in range(len(requests)):
        req, requests[k] = requests[k], None
        yield req


def _done(_ev) -> None:
    """The arrivals are all dispatched (nothing to do: `Arrivals`)."""


def run_all(env) -> None:
    """`env.run()`: process every event until none is left. A light event
    (`wrpsim.pool.wakeup.Wakeup`) is processed here as `Environment.step` would (pop it, set
    the clock, call its callback; it cannot fail), then kept for reuse; any other event by
    `env.step()` itself.
    An environment whose `step` was replaced (a test checking invariants after every event)
    is run by `env.run()`, which calls it for every event. (That is checked on the bound
    `env.step`, not with `vars(env)`: building the instance dict of `env` would turn every
    `env._now` read and write of the hot path from CPython's inline-values specialisation into
    a dict-hint one that keeps missing.)"""
    if getattr(env.step, "__func__", None) is not type(env).step:
        env.run()
        return
    queue = env._queue
    step = env.step
    spare = SPARE
    try:
        # (`while True` with a `break`, not `while queue`: CPython 3.11 compiles the latter's
        # test at the bottom as a conditional backward jump, which never warms the code up, so
        # this one call's loop would run unspecialised; an unconditional backward jump does)
        while True:
            if not queue:
                break
            ev = queue[0][3]
            if type(ev) is Wakeup:
                env._now = heappop(queue)[0]
                fn = ev.fn
                fn(ev)
                spare.append(ev)  # processed: `wake` may reuse it
            else:
                step()
    finally:
        spare.clear()  # (they hold this run's callbacks and values)
