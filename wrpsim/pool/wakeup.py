"""A light SimPy event for the engine's hot loop: one callback at a time, nothing else.

`simpy.Environment.timeout(delay)` builds a `Timeout` (value, definition checks, a `schedule`
call) and the caller appends its callback; the engine does that for every stretch of
iterations, every front-end delay and every arrival. `wake(env, delay, fn, value)` puts a
`Wakeup` on the environment's event heap directly, with the entry SimPy's `schedule` makes for
a timeout — `(now + delay, NORMAL, next id, event)` — so it is processed at the same time and
in the same order as the `Timeout` it replaces, and `Environment.step` treats it as any
succeeded event: it calls `fn(event)`, where `event.value` is `value`.

Only for events nobody yields on or waits for (a process cannot wait on a `Wakeup`), and
nobody keeps once processed: `wrpsim.eventloop.run_all` puts a processed `Wakeup` in `SPARE`
and `wake` reuses it (building an object costs more than the rest of an event).
`delay` must be >= 0 (not checked: the callers compute it as a duration or a maximum with 0).
"""

from __future__ import annotations

from heapq import heappush

from simpy.events import NORMAL, URGENT

__all__ = ["NORMAL", "SPARE", "URGENT", "JoinedWakeup", "Wakeup", "wake", "wake_joined"]


class Wakeup:
    """A triggered, succeeded event that calls `fn(event)` once, with `value` (module
    docstring). SimPy's `Environment.step` sees `callbacks`: `[fn]`, then None."""

    __slots__ = ("fn", "value")
    _ok = True  # succeeded: what `Environment.step` checks after the callbacks

    def __init__(self, fn, value=None):
        self.fn = fn
        self.value = value

    @property
    def callbacks(self) -> list | None:
        """`[fn]` until processed, None after (SimPy's view of the event)."""
        return None if self.fn is None else [self.fn]

    @callbacks.setter
    def callbacks(self, callbacks: list | None) -> None:
        # `Environment.step` sets None once it has taken them; a list holds the one callback
        (self.fn,) = callbacks if callbacks is not None else (None,)


#: processed `Wakeup`s that `wake` reuses (`run_all` fills it and empties it when it returns)
SPARE: list[Wakeup] = []


def wake(env, delay: float, fn, value=None, priority: int = NORMAL) -> Wakeup:
    """Call `fn(event)` `delay` simulated seconds from now, as `env.timeout(delay, value)`
    with `fn` appended to its callbacks would (module docstring). Returns the event: until it
    is processed, its owner may replace its `fn` (by a no-op, when what it would do is void);
    once processed it may be reused by anyone, so an owner that keeps the reference longer
    must first check that `fn` and `value` are still its own (`Instance._truncate` does)."""
    try:
        ev = SPARE.pop()
    except IndexError:
        ev = Wakeup(fn, value)
    else:
        ev.fn = fn
        ev.value = value
    heappush(env._queue, (env._now + delay, priority, next(env._eid), ev))
    return ev


class JoinedWakeup:
    """The heap entry of `wake_joined`: a list of callbacks, processed by `Environment.step`
    (not reused: `run_all` handles only plain `Wakeup`s itself)."""

    __slots__ = ("callbacks", "value")
    _ok = True

    def __init__(self, fn):
        self.callbacks = [fn]
        self.value = None


def wake_joined(env, delay: float, fn) -> JoinedWakeup:
    """Call `fn(event)` `delay` simulated seconds from now, as `wake(env, delay, fn)` would, but
    with one heap entry for a run of such calls: when the previous `wake_joined` of `env` is
    due at the same time, is still on the heap and nothing else has been scheduled since, `fn`
    joins its entry's callbacks instead of getting an entry of its own.

    Same order as separate entries: the joined waiters have consecutive event ids (each call
    still takes one, so nobody else's order moves), so no other event can come between them —
    provided no waiter schedules an `URGENT` event for the current time (one scheduled at
    `NORMAL` priority, or later, comes after the rest of the waiters either way). `event.value`
    is None. Only for events nobody yields on or waits for, like `wake`."""
    t = env._now + delay
    eid = next(env._eid)
    last = getattr(env, "_joined_wake", None)  # (not `env.__dict__`: see `run_all`)
    if last is not None and last[0] == t and last[1] + 1 == eid and last[2].callbacks is not None:
        last[1] = eid
        ev = last[2]
        ev.callbacks.append(fn)
        return ev
    ev = JoinedWakeup(fn)
    heappush(env._queue, (t, NORMAL, eid, ev))
    env._joined_wake = [t, eid, ev]
    return ev
