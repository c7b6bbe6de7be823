"""Traffic patterns of the standalone scenarios: lists of (src, dst, bytes) flows started together.

- `permutation`: every endpoint sends one flow to a distinct endpoint on another leaf (a uniform
  random permutation repaired by random swaps until no pair shares a leaf).
- `all_to_all`: every endpoint sends one flow to every other endpoint.
- `ring_allreduce`: endpoints on a ring ordered by (leaf, port); each sends one flow to its
  successor — the bandwidth phase of ring all-reduce, where every ring link carries the same
  bytes at once (for a buffer of B bytes over N ranks, give `flow_bytes = 2(N−1)/N · B`). At most
  one flow leaves and one enters each leaf.
"""

from __future__ import annotations

import numpy as np

from wrpsim.errors import ConfigError, unknown_choice
from wrpsim.network.topology import LeafSpine
from wrpsim.rng import stream

PATTERNS = ("permutation", "all_to_all", "ring_allreduce")


def permutation(topo: LeafSpine, rng: np.random.Generator) -> list[int]:
    """dst[e] for every endpoint e: a permutation with no intra-leaf pair."""
    if topo.L < 2:
        raise ConfigError("pattern=permutation needs leaves >= 2 (flows cross leaves)")
    leaf = np.asarray(topo.leaf_of)
    n = topo.n
    dst = rng.permutation(n)
    for _ in range(10_000):
        bad = np.flatnonzero(leaf == leaf[dst])
        if len(bad) == 0:
            return [int(d) for d in dst]
        for i in bad:
            if leaf[i] != leaf[dst[i]]:
                continue
            for j in rng.permutation(n):
                if leaf[j] != leaf[dst[i]] and leaf[i] != leaf[dst[j]]:
                    dst[i], dst[j] = dst[j], dst[i]
                    break
    raise ConfigError("pattern=permutation: no inter-leaf permutation exists for this topology")


def ring_order(topo: LeafSpine) -> list[int]:
    """Endpoints sorted by (leaf, position): consecutive ranks share a leaf where they can."""
    return sorted(range(topo.n), key=lambda e: (topo.leaf_of[e], e))


def flows(topo: LeafSpine, pattern: str, flow_bytes: int, seed: int) -> list[tuple[int, int, int]]:
    """The flows of `pattern` with `flow_bytes` each (random choices from `seed`)."""
    if pattern == "permutation":
        dst = permutation(topo, stream(seed, "network.pattern"))
        return [(e, dst[e], flow_bytes) for e in range(topo.n)]
    if pattern in ("all_to_all", "ring_allreduce") and topo.n < 2:
        raise ConfigError(f"pattern={pattern} needs at least 2 endpoints (leaves x "
                          f"hosts_per_leaf), got {topo.n}")
    if pattern == "all_to_all":
        return [(a, b, flow_bytes) for a in range(topo.n) for b in range(topo.n) if a != b]
    if pattern == "ring_allreduce":
        order = ring_order(topo)
        return [(order[i], order[(i + 1) % len(order)], flow_bytes) for i in range(len(order))
                if len(order) > 1]
    from wrpsim.network.collectives import KINDS

    if pattern in KINDS:  # (`python -m wrpsim.net` sends these to the collective scenario)
        raise ConfigError(f"pattern={pattern} is a collective: run it with "
                          f"wrpsim.network.collective_scenario.run_collective; flow patterns: "
                          f"{', '.join(PATTERNS)}")
    raise unknown_choice("pattern", pattern, PATTERNS + KINDS)
