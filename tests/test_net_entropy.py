"""Per-packet entropy choosers (`entropy.py`): exact choice sequences and their feedback rules."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from wrpsim.network.config import NetConfig
from wrpsim.network.entropy import (
    ECN,
    GOOD,
    MAX_PENALTY,
    NACK,
    Bitmap,
    Flowlet,
    Oblivious,
    Reps,
    ev_spines,
    make_chooser,
)
from wrpsim.network.hashing import ecmp_index


def test_oblivious_round_robin_covers_every_ev_once_per_cycle():
    ch = Oblivious(8, 5, random.Random(0), randomly=False)
    seq = [ch.choose(0) for _ in range(16)]
    assert seq == [5, 6, 7, 0, 1, 2, 3, 4] * 2
    ch.feedback(5, NACK)  # ignored
    assert ch.choose(0) == 5


def test_oblivious_random_is_uniform_and_seeded():
    a, b = (Oblivious(4, 0, random.Random(7), True) for _ in range(2))
    assert [a.choose(0) for _ in range(20)] == [b.choose(0) for _ in range(20)]
    ch = Oblivious(4, 0, random.Random(1), True)
    counts = Counter(ch.choose(0) for _ in range(8000))
    assert sorted(counts) == [0, 1, 2, 3] and min(counts.values()) > 1800


def test_reps_recycles_only_unmarked_evs_oldest_first():
    ch = Reps(16, 3, size=2)
    assert [ch.choose(0) for _ in range(3)] == [3, 4, 5]   # nothing cached: explore
    ch.feedback(4, GOOD)
    ch.feedback(3, ECN)                                     # marked: forgotten
    ch.feedback(5, NACK)                                    # trimmed: forgotten
    ch.feedback(9, GOOD)
    assert [ch.choose(0) for _ in range(3)] == [4, 9, 6]   # recycled, then explore on
    for ev in (1, 2, 3):                                    # a full cache drops the oldest
        ch.feedback(ev, GOOD)
    assert [ch.choose(0) for _ in range(2)] == [2, 3]


def test_bitmap_skips_penalised_evs_and_forgives_one_point_per_skip():
    ch = Bitmap(6, 0)
    ch.feedback(1, ECN)
    ch.feedback(2, NACK)
    assert list(ch.penalty) == [0, 1, 4, 0, 0, 0] and ch.bad == 2
    assert ch.choose(0) == 0
    assert ch.choose(0) == 3        # skips 1 (1 -> 0) and 2 (not decremented: not the first)
    assert list(ch.penalty) == [0, 0, 4, 0, 0, 0] and ch.bad == 1
    assert [ch.choose(0) for _ in range(4)] == [4, 5, 0, 1]
    for _ in range(10):
        ch.feedback(4, NACK)
    assert ch.penalty[4] == MAX_PENALTY
    ch.feedback(4, GOOD)            # a good ACK does not clear a penalty
    assert ch.penalty[4] == MAX_PENALTY


def test_bitmap_with_every_ev_penalised_still_chooses():
    ch = Bitmap(3, 0)
    for ev in range(3):
        ch.feedback(ev, ECN)
    assert ch.choose(0) in (0, 1, 2)


def test_flowlet_keeps_its_ev_until_an_idle_gap():
    ch = Flowlet(1 << 16, random.Random(3), gap_ps=1000)
    first = ch.choose(0)
    assert [ch.choose(t) for t in (500, 1400, 2300)] == [first] * 3  # gaps <= 1000 ps
    changed = [ch.choose(t) for t in (10_000, 20_000, 30_000)]
    assert len({first, *changed}) == 4                                  # new flowlet each time


def test_ev_spines_hash_like_a_switch():
    idx = ev_spines(12345, 3, 9, 256, 16)
    assert idx == ev_spines(12345, 3, 9, 256, 16)
    assert idx[7] == ecmp_index(12345, (3, 9, 7, 0xE17), 16)
    counts = Counter(idx)
    assert len(counts) == 16 and max(counts.values()) < 32           # about 16 EVs per spine
    assert ev_spines(12345, 3, 10, 256, 16) != idx


@pytest.mark.parametrize("lb, cls", [("spray", Oblivious), ("reps", Reps), ("bitmap", Bitmap),
                                     ("flowlet", Flowlet)])
def test_make_chooser(lb, cls):
    cfg = NetConfig(lb=lb, entropies=64)
    ch = make_chooser(lb, cfg, salt=1, qp=2, rng=random.Random(0))
    assert isinstance(ch, cls) and 0 <= ch.choose(0) < 64
    with pytest.raises(ValueError, match="does not spray"):
        make_chooser("ecmp", cfg, 1, 2, random.Random(0))
