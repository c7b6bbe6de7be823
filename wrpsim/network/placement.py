"""Placement of pool instances on the fabric's GPUs (`pack` or `spread`).

GPU ids are endpoint ids (`topology.py`): GPU k of server j is `j·G + k`. An instance of
`g <= G` GPUs always sits inside one server (its tensor-parallel group stays on NVLink); a larger
one takes `ceil(g/G)` whole free servers.

- `pack`: instances in the order given, each on the lowest-numbered server(s) with room (first
  fit), so instances of one pool share servers and leaves.
- `spread`: each instance on the server with the most free GPUs, ties broken by an order that
  visits every leaf (or rail group) before reusing one, so consecutive instances land on
  different servers and leaves.
"""

from __future__ import annotations

from math import ceil

from wrpsim.errors import ConfigError
from wrpsim.network.topology import LeafSpine


def _spread_order(topo: LeafSpine) -> list[int]:
    """Servers ordered so that consecutive ones hang off different leaves / rail groups."""
    first_leaf = {j: topo.leaf_of[j * topo.G] for j in range(topo.servers)}
    rank: dict[int, int] = {}
    seen: dict[int, int] = {}
    for j in range(topo.servers):
        leaf = first_leaf[j]
        rank[j] = seen.get(leaf, 0)
        seen[leaf] = rank[j] + 1
    return sorted(range(topo.servers), key=lambda j: (rank[j], first_leaf[j], j))


def place(topo: LeafSpine, pools: list[tuple[str, int, int]], policy: str
          ) -> dict[tuple[str, int], list[int]]:
    """Map every (pool, instance) of `pools` = [(name, count, gpus_per_instance)] to GPU ids."""
    G = topo.G
    free = [list(range(j * G, (j + 1) * G)) for j in range(topo.servers)]
    order = list(range(topo.servers)) if policy == "pack" else _spread_order(topo)
    position = {j: i for i, j in enumerate(order)}
    need = sum(count * g for _, count, g in pools)
    out: dict[tuple[str, int], list[int]] = {}
    for name, count, g in pools:
        if g < 1 or count < 0:
            raise ConfigError(f"network placement: pool {name!r} needs count >= 0 and "
                              f"gpus_per_instance >= 1, got {count} and {g}")
        for i in range(count):
            gpus = _take(free, order, position, g, G, policy)
            if gpus is None:
                raise ConfigError(
                    f"network: the fabric has {topo.n} GPUs ({topo.servers} "
                    f"server{'s' if topo.servers != 1 else ''} of {G}) but "
                    f"the pools need {need}; cannot place {name!r} instance {i} (its "
                    f"{_ordinal(i + 1)}, {g} GPUs, placement {policy}); raise network.leaves or "
                    f"network.hosts_per_leaf")
            out[(name, i)] = gpus
    return out


def _ordinal(n: int) -> str:
    """'1st', '2nd', '3rd', '4th', …, '11th', '12th', '13th', '21st' …"""
    tail = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{tail}"


def _take(free, order, position, g, G, policy):
    if g <= G:
        cands = [j for j in order if len(free[j]) >= g]
        if not cands:
            return None
        j = cands[0] if policy == "pack" else \
            max(cands, key=lambda s: (len(free[s]), -position[s]))
        gpus, free[j] = free[j][:g], free[j][g:]
        return gpus
    k = ceil(g / G)
    whole = [j for j in order if len(free[j]) == G][:k]
    if len(whole) < k:
        return None
    gpus = []
    for j in whole:
        gpus += free[j]
        free[j] = []
    free[whole[-1]] = gpus[g:]
    return gpus[:g]
