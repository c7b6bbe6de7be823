"""Per-packet path choice of sprayed connections: which entropy value each data packet carries.

A sprayed connection (`lb` = spray, reps, bitmap, flowlet) stamps every data packet with an
*entropy value* (EV) in `[0, entropies)`; the source leaf hashes (src, dst, EV) with its salt to
one of the working spines (`ev_paths`), as a switch hashes the UDP source port that UEC and
RoCEv2 use as entropy. Several EVs can land on one spine and some spines on none, exactly as
with hashing. The choosers (one per connection; the engine calls `choose` once per data packet
sent, resends included, and `feedback` once per ACK or NACK, with the EV the packet carried):

- `Oblivious` (`spray`): round-robin over all EVs from a hashed start (`spray: round_robin`), or
  a uniformly random EV per packet (`spray: random`); ignores feedback.
- `Reps` (`reps`, after REPS, Bonato et al. 2025): EVs whose ACK came back without an ECN mark
  are *recycled*: kept in a FIFO of `reps_buffer` EVs (the oldest is forgotten when full) and
  reused, oldest first, one packet each; with the FIFO empty the packet explores the next EV of
  a round-robin over all EVs (REPS explores random ones; the round-robin covers the EV space
  evenly, as oblivious spraying does, so the first window is as balanced as `spray`'s).
  Marked ACKs and NACKs recycle nothing, so congested paths fade out of use.
- `Bitmap` (`bitmap`, after UEC's bitmap load balancer): round-robin over the EVs, skipping the
  penalised ones; an ECN-marked ACK adds 1 to its EV's penalty and a NACK 4 (at most 15); the
  first penalised EV a choice skips loses one point, so a path is retried after a few rounds.
- `Flowlet` (`flowlet`, LetFlow-style): keeps its EV while packets follow each other closely and
  draws a new random EV when the connection has not sent for `flowlet_gap_us`.

Contract: `choose(t)` returns an EV in `[0, n)` and does not advance time; `feedback(ev, sig)`
takes `GOOD`, `ECN` or `NACK`; randomness comes only from the `random.Random` passed in (one per
engine, seeded from the run seed), so a run is reproducible.
"""

from __future__ import annotations

import random
from collections import deque

from wrpsim.network.hashing import ecmp_index, extend_hash, flow_hash

GOOD, ECN, NACK = 0, 1, 2
MAX_PENALTY = 15
EV_WORD = 0xE17  # extra tuple word that tells an EV hash from a queue-pair hash


class Chooser:
    """Entropy choice of one connection among `n` EVs (module docstring). `adaptive`: uses
    feedback. (An abstract base in all but name: compiled, the choosers are extension types,
    `entropy.pxd`, which cannot derive from `abc.ABC`.)"""

    __slots__ = ("adaptive", "n")

    def __init__(self, n: int, adaptive: bool):
        self.n, self.adaptive = n, adaptive

    def choose(self, t: int) -> int:
        """The EV of the next data packet, sent at time `t` (ps)."""
        raise NotImplementedError

    def feedback(self, ev: int, sig: int) -> None:
        """An ACK (`GOOD` or `ECN`) or NACK for a packet that carried `ev`."""
        raise NotImplementedError


class Oblivious(Chooser):
    """Round-robin over all EVs from `start`, or uniformly random ones (`randomly`)."""

    __slots__ = ("i", "randomly", "rng")

    def __init__(self, n: int, start: int, rng: random.Random, randomly: bool):
        Chooser.__init__(self, n, False)
        self.i, self.rng, self.randomly = start, rng, randomly

    def feedback(self, ev: int, sig: int) -> None:
        """Oblivious: feedback changes nothing."""

    def choose(self, t: int) -> int:
        if self.randomly:
            return self.rng.randrange(self.n)
        i = self.i
        self.i = i + 1 if i + 1 < self.n else 0
        return i


class Reps(Chooser):
    """Recycle EVs acknowledged without a mark; explore the next EV of a round-robin from
    `start` when none is cached."""

    __slots__ = ("cache", "i")

    def __init__(self, n: int, start: int, size: int):
        Chooser.__init__(self, n, True)
        self.i = start
        self.cache: deque[int] = deque(maxlen=size)

    def choose(self, t: int) -> int:
        if self.cache:
            return self.cache.popleft()
        i = self.i
        self.i = i + 1 if i + 1 < self.n else 0
        return i

    def feedback(self, ev: int, sig: int) -> None:
        if sig == GOOD:
            self.cache.append(ev)


class Bitmap(Chooser):
    """Round-robin that skips EVs penalised by recent ECN marks or NACKs."""

    __slots__ = ("bad", "i", "penalty")

    def __init__(self, n: int, start: int):
        Chooser.__init__(self, n, True)
        self.i = start
        self.penalty = bytearray(n)
        self.bad = 0

    def choose(self, t: int) -> int:
        n, pen = self.n, self.penalty
        i = self.i
        if self.bad:
            first = True
            for _ in range(n):
                if not pen[i]:
                    break
                if first:
                    pen[i] -= 1
                    self.bad -= not pen[i]
                    first = False
                i = i + 1 if i + 1 < n else 0
        self.i = i + 1 if i + 1 < n else 0
        return i

    def feedback(self, ev: int, sig: int) -> None:
        if sig == GOOD:
            return
        pen = self.penalty
        if not pen[ev]:
            self.bad += 1
        pen[ev] = min(MAX_PENALTY, pen[ev] + (1 if sig == ECN else 4))


class Flowlet(Chooser):
    """A new random EV after an idle gap of `gap_ps`, else the current one."""

    __slots__ = ("ev", "gap", "last", "rng")

    def __init__(self, n: int, rng: random.Random, gap_ps: int):
        Chooser.__init__(self, n, False)
        self.rng, self.gap = rng, gap_ps
        self.ev = rng.randrange(n)
        self.last = -1

    def feedback(self, ev: int, sig: int) -> None:
        """Flowlets react to gaps, not to feedback."""

    def choose(self, t: int) -> int:
        if self.last >= 0 and t - self.last > self.gap:
            self.ev = self.rng.randrange(self.n)
        self.last = t
        return self.ev


def make_chooser(lb: str, cfg, salt: int, qp: int, rng: random.Random) -> Chooser:
    """The chooser of a connection with queue pair `qp` under load-balancing mode `lb`."""
    n = cfg.entropies
    start = ecmp_index(salt, (qp, EV_WORD), n)
    if lb == "spray":
        return Oblivious(n, start, rng, cfg.spray == "random")
    if lb == "reps":
        return Reps(n, start, cfg.reps_buffer)
    if lb == "bitmap":
        return Bitmap(n, start)
    if lb == "flowlet":
        return Flowlet(n, rng, round(cfg.flowlet_gap_us * 1e6))
    raise ValueError(f"lb={lb!r} does not spray")


def ev_spines(salt: int, src: int, dst: int, n: int, k: int) -> list[int]:
    """Index into the `k` working paths of (src, dst) of each of the `n` EVs: the source leaf's
    salted hash of (src, dst, EV) (`ecmp_index`, the (src, dst) prefix hashed once)."""
    if k < 1:
        raise ValueError(f"m must be >= 1, got {k}")
    h = flow_hash(salt, (src, dst))
    return [(extend_hash(h, (ev, EV_WORD)) * k) >> 64 for ev in range(n)]
