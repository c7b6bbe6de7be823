"""A light SimPy event for the engine's hot loop: one callback at a time, nothing else.

`simpy.Environment.timeout(delay)` builds a `Timeout` (value, definition checks, a `schedule`
call) and the caller appends its callback; the engine does that for every stretch of
iterations, every front-end delay and every arrival. `wake(env, delay, fn, value)` puts a
`Wakeup` on the environment's event heap directly, with the entry SimPy's `schedule` makes for
a timeout — `(now + delay, NORMAL, next id, event)` — so it is processed at the same time and
in the same order as the `Timeout` it replaces, and `Environment.step` treats it as any
succeeded event: it calls `fn(event)`, where `event.value` is `value`.

Only for events nobody yields on or waits for (a process cannot wait on a `Wakeup`).
`delay` must be >= 0 (not checked: the callers compute it as a duration or a maximum with 0).
"""

from __future__ import annotations

from heapq import heappush

from simpy.events import NORMAL, URGENT

__all__ = ["NORMAL", "URGENT", "Wakeup", "wake", "wake_joined"]


class Wakeup:
    """A triggered, succeeded event with callbacks `[fn]` and `value` (module docstring)."""

    __slots__ = ("callbacks", "value")
    _ok = True  # succeeded: what `Environment.step` checks after the callbacks

    def __init__(self, fn, value=None):
        self.callbacks = [fn]
        self.value = value


def wake(env, delay: float, fn, value=None, priority: int = NORMAL) -> Wakeup:
    """Call `fn(event)` `delay` simulated seconds from now, as `env.timeout(delay, value)`
    with `fn` appended to its callbacks would (module docstring)."""
    ev = Wakeup(fn, value)
    heappush(env._queue, (env._now + delay, priority, next(env._eid), ev))
    return ev


def wake_joined(env, delay: float, fn) -> Wakeup:
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
    last = env.__dict__.get("_joined_wake")
    if last is not None and last[0] == t and last[1] + 1 == eid and last[2].callbacks is not None:
        last[1] = eid
        ev = last[2]
        ev.callbacks.append(fn)
        return ev
    ev = Wakeup(fn)
    heappush(env._queue, (t, NORMAL, eid, ev))
    env._joined_wake = [t, eid, ev]
    return ev
