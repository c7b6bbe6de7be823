"""`wrpsim.pool.wakeup.wake_joined`: one heap entry for a run of waiters, same order as separate
timeouts."""

from __future__ import annotations

import random

import simpy

from wrpsim.pool.wakeup import wake, wake_joined


def _script(env, log, joined: bool, seed: int) -> None:
    """Random waiters — at a few distinct delays, interleaved with plain timeouts at the same
    times, and waiters that schedule more waiters — recording (time, label) as they run."""
    rng = random.Random(seed)
    delays = [0.0, 1.0, 1.0, 2.5]

    def waiter(label, depth):
        def fn(_ev):
            log.append((env.now, label))
            if depth and rng.random() < 0.5:
                for k in range(rng.randrange(1, 4)):
                    add(f"{label}.{k}", depth - 1)
        return fn

    def add(label, depth):
        d = rng.choice(delays)
        r = rng.random()
        if r < 0.2:  # someone else's event in between
            env.timeout(d).callbacks.append(lambda _e, lab=label: log.append((env.now, lab)))
        elif r < 0.3:
            wake(env, d, lambda _e, lab=label: log.append((env.now, lab)))
        elif joined:
            wake_joined(env, d, waiter(label, depth))
        else:
            env.timeout(d).callbacks.append(waiter(label, depth))

    for k in range(40):
        add(str(k), 3)


def test_joined_order_equals_separate_timeouts():
    for seed in range(20):
        logs = []
        for joined in (False, True):
            env = simpy.Environment()
            log: list = []
            _script(env, log, joined, seed)
            env.run()
            logs.append(log)
        assert logs[0] == logs[1]
        assert len(logs[0]) >= 40


def test_consecutive_waiters_share_one_entry():
    env = simpy.Environment()
    seen = []
    a = wake_joined(env, 1.0, lambda _e: seen.append("a"))
    b = wake_joined(env, 1.0, lambda _e: seen.append("b"))
    assert a is b and len(env._queue) == 1
    c = wake_joined(env, 2.0, lambda _e: seen.append("c"))   # another time: its own entry
    env.timeout(2.0)                                         # someone else in between
    d = wake_joined(env, 2.0, lambda _e: seen.append("d"))
    assert c is not d and len(env._queue) == 4
    env.run()
    assert seen == ["a", "b", "c", "d"]
    e = wake_joined(env, 0.0, lambda _e: seen.append("e"))   # the processed entry is not reused
    assert e is not d
    env.run()
    assert seen[-1] == "e"
