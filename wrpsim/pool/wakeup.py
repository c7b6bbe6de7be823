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

__all__ = ["NORMAL", "URGENT", "Wakeup", "wake"]


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
