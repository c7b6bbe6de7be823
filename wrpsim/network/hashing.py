"""Deterministic ECMP hashing with a per-switch salt.

A switch with `m` equal-cost next hops sends a queue pair (QP) to next hop
`ecmp_index(salt, (src, dst, qp), m)`. The hash is the splitmix64 finaliser applied to the
salted tuple words in turn: pure integer arithmetic, so the choice is identical in every process
and on every platform (Python's `hash()` of a string is randomised per process and is never used).

Salts come from the run seed through a named random stream (`wrpsim.rng.stream`), one 64-bit salt
per switch. Distinct salts decorrelate the choices of different switches, which is what prevents
*polarisation* (the same flows piling onto the same next-hop index at every tier); with
`salted=False` every switch uses salt 0, the polarising configuration, kept for tests and for
users who want to see the effect.
"""

from __future__ import annotations

from collections.abc import Iterable

from wrpsim.rng import stream

MASK64 = (1 << 64) - 1
GOLDEN = 0x9E3779B97F4A7C15


def mix64(x: int) -> int:
    """The splitmix64 finaliser: a bijective avalanche of a 64-bit integer."""
    x &= MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & MASK64
    return x ^ (x >> 31)


def flow_hash(salt: int, words: Iterable[int]) -> int:
    """64-bit hash of a tuple of non-negative integers under `salt` (order matters)."""
    return extend_hash(mix64(salt ^ GOLDEN), words)


def extend_hash(h: int, words: Iterable[int]) -> int:
    """`flow_hash` of a tuple whose first words hash to `h`, followed by `words`: hashes of
    tuples with a common prefix share its work."""
    for w in words:
        h = mix64((h + GOLDEN + (int(w) & MASK64)) & MASK64)
    return h


def ecmp_index(salt: int, words: Iterable[int], m: int) -> int:
    """Next-hop index in `[0, m)` of the tuple `words` at a switch with salt `salt`.

    Uses the high bits (multiply-shift) rather than a modulo of the low bits, so the choice is
    uniform for any `m`, including powers of two."""
    if m < 1:
        raise ValueError(f"m must be >= 1, got {m}")
    return (flow_hash(salt, words) * m) >> 64


def switch_salts(seed: int, count: int, salted: bool = True) -> list[int]:
    """One 64-bit salt per switch for run `seed` (all zero when `salted` is false)."""
    if not salted:
        return [0] * count
    rng = stream(seed, "network.ecmp-salt")
    return [int(x) for x in rng.integers(0, 1 << 63, size=count, dtype="int64")]
