"""The packet engine's event queue (`wrpsim.network.calendar`): its calendar runs events in
exactly the order of a (time, creation number) heap — across the ring's horizon, its growth,
stops inside a bucket and events pushed while a bucket runs."""

from __future__ import annotations

import heapq
import random

import pytest

from wrpsim.network.calendar import ROW, EventQueue

T, NEXT, TAG = ROW.index("t"), ROW.index("next"), ROW.index("conn")


def _new(q: EventQueue, t: int, tag: int) -> int:
    return q.add(t, tag, 0, 0, 0, 0, 0)


def _drain(q: EventQueue, rng: random.Random, lag: int, ref: list, seq: list,
           lim: int = 1 << 62) -> list[tuple[int, int]]:
    """Run q up to `lim` as the engine does: each event run may push new ones at least `lag`
    later (mirrored in the heap `ref`); returns the (time, tag) order run."""
    out = []
    while True:
        n = q.take(lim)
        if n == 0:
            return out
        for i, s in enumerate(q.taken(n)):
            t, tag = q.row(s)[T], q.row(s)[TAG]
            if t > lim:
                q.putback(i, n)
                return out
            out.append((t, tag))
            q.release(s)
            for _ in range(rng.choice((0, 1, 1, 2))):
                t2 = t + lag + rng.choice((0, rng.randrange(4 * lag), rng.randrange(500 * lag)))
                tag = seq[0]
                seq[0] += 1
                _new(q, t2, tag)
                heapq.heappush(ref, (t2, tag))


@pytest.mark.parametrize("seed", range(6))
def test_calendar_runs_events_in_heap_order(seed):
    rng = random.Random(seed)
    width, lag = 16, 64  # (the engine's rule: width <= the smallest event-to-event delay)
    q = EventQueue(width, horizon=rng.choice((1, 40, 400)), cap=rng.choice((1, 4, 64)))
    ref: list[tuple[int, int]] = []
    seq = [0]
    for _ in range(50):
        t = rng.randrange(3000)
        _new(q, t, seq[0])
        heapq.heappush(ref, (t, seq[0]))
        seq[0] += 1
    got = []
    lim = 0
    while len(got) < 3000 and (ref or q.peek() is not None):
        assert q.peek() == (ref[0][0] if ref else None)
        lim += rng.randrange(1, 300)  # stops inside buckets, as `run(limit)` makes
        ran = _drain(q, rng, lag, ref, seq, lim)
        want = []
        while ref and ref[0][0] <= lim:
            want.append(heapq.heappop(ref))
        # the ones pushed while draining and due by `lim` are in `ran` too, in heap order
        assert ran == want[:len(ran)] and len(ran) == len(want)
        got += ran
        if rng.random() < 0.2 and (ref or q.peek() is not None):  # a new event from outside
            t = max(lim, rng.randrange(lim, lim + 50))
            _new(q, t, seq[0])
            heapq.heappush(ref, (t, seq[0]))
            seq[0] += 1
    assert len(got) >= 50
    assert sorted(q.pending()) == sorted(
        s for s in range(q.cap) if s not in _free(q))  # every slot pending or free


def _free(q: EventQueue) -> set[int]:
    out, s = set(), q.free
    while s >= 0:
        out.add(s)
        s = q.row(s)[NEXT]
    return out


def test_equal_times_keep_creation_order_across_the_horizon():
    q = EventQueue(width=10, horizon=1)  # a ring of 64 buckets
    far = 10 * 64 * 3 + 5  # beyond the horizon: waits in the overflow heap first
    a = _new(q, far, 1)
    _new(q, 0, 0)
    assert q.take(0) == 1
    q.release(q.taken(1)[0])
    for tag in (2, 3):
        _new(q, far, tag)
    assert q.peek() == far
    n = q.take(far)
    assert [q.row(s)[TAG] for s in q.taken(n)] == [1, 2, 3]
    assert q.taken(n)[0] == a


def test_take_hands_out_a_bucket_only_once_one_of_its_events_is_due():
    q = EventQueue(width=10, horizon=1)
    _new(q, 92, 0)
    _new(q, 95, 1)
    assert q.take(91) == 0 and q.cur == 0  # (bucket 9 starts at 90; nothing due by 91)
    _new(q, 85, 2)  # still allowed: no event past 85 has run
    assert q.take(91) == 1 and q.cur == 8
    assert q.take(93) == 2 and q.cur == 9  # the caller puts back what is past its limit
    q.putback(1, 2)
    assert q.peek() == 95 and q.count == 1
    assert q.take(95) == 1


@pytest.mark.parametrize("width", [1, 200, 257, 65_536, 70_000, 1 << 20, (1 << 31) - 1])
@pytest.mark.parametrize("n", [49, 700])
def test_a_large_bucket_comes_out_in_time_then_creation_order(width, n):
    # (more events than the insertion sort takes: the radix passes, one per byte of an offset,
    # 1 to 4 of them; offsets over the whole bucket, and ties from a small pool)
    rng = random.Random(width * 1000 + n)
    pool = [rng.randrange(width) for _ in range(20)] + [0, width - 1]
    q = EventQueue(width=width, horizon=1)
    want = []
    for tag in range(n):
        off = rng.choice(pool) if rng.random() < 0.5 else rng.randrange(width)
        t = 3 * width + off
        _new(q, t, tag)
        want.append((t, tag))
    assert q.take(4 * width) == n
    assert [(q.row(s)[T], q.row(s)[TAG]) for s in q.taken(n)] == sorted(want)


def test_a_bucket_still_in_the_overflow_heap_is_peeked_and_taken_only_when_due():
    q = EventQueue(width=10, horizon=1)  # a ring of 64 buckets
    far = 10 * 64 * 5  # bucket 320: beyond the horizon, in the heap
    _new(q, far + 7, 0)
    _new(q, far + 3, 1)
    assert q.count == 0 and len(q.ovf) == 2
    assert q.peek() == far + 3
    assert q.take(far + 2) == 0 and q.cur == 0  # due by nothing: the heap keeps it
    _new(q, 40, 2)  # still allowed
    assert q.take(far + 2) == 1 and q.cur == 4
    q.release(q.taken(1)[0])
    n = q.take(far + 5)
    assert [q.row(s)[TAG] for s in q.taken(n)] == [1, 0] and q.cur == far // 10


def test_a_bucket_width_past_the_key_packing_is_refused():
    with pytest.raises(ValueError, match="width"):
        EventQueue(width=1 << 31, horizon=1)
