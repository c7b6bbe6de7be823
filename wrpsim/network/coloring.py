"""König edge colouring of bipartite multigraphs (for the `split` load-balancing mode).

König's theorem: the edges of a bipartite multigraph of maximum degree D can be coloured with D
colours so that no two edges at a vertex share a colour. `edge_coloring` builds such a colouring
with the classic alternating-path argument: to colour edge (u, v), take a colour `a` free at `u`
and `b` free at `v`; if `a` is not free at `v`, swap `a` and `b` along the a/b alternating path
from `v` (it cannot reach `u` in a bipartite graph), after which `a` is free at both ends.
O(E·(V + log D)) time (each vertex keeps a lazy heap of its free colours); deterministic (edges
are coloured in input order, lowest free colour first).
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence


def max_degree(edges: Sequence[tuple[int, int]]) -> int:
    """Maximum degree of the bipartite multigraph (left ids and right ids are separate sets)."""
    left: dict[int, int] = {}
    right: dict[int, int] = {}
    for u, v in edges:
        left[u] = left.get(u, 0) + 1
        right[v] = right.get(v, 0) + 1
    return max([0, *left.values(), *right.values()])


def edge_coloring(edges: Sequence[tuple[int, int]], colors: int | None = None) -> list[int]:
    """A proper edge colouring of the bipartite multigraph `edges` ((left, right) pairs) with
    `colors` colours (default: the maximum degree, the minimum possible); colour per edge."""
    d = max_degree(edges)
    colors = d if colors is None else colors
    if colors < d:
        raise ValueError(f"{colors} colours cannot colour a graph of maximum degree {d}")
    at_left: dict[int, dict[int, int]] = {}
    at_right: dict[int, dict[int, int]] = {}
    free_left: dict[int, list[int]] = {}
    free_right: dict[int, list[int]] = {}
    color = [-1] * len(edges)

    def free(used: dict[int, int], heap: list[int]) -> int:
        while heap[0] in used:
            heapq.heappop(heap)
        return heap[0]

    for i, (u, v) in enumerate(edges):
        lu = at_left.setdefault(u, {})
        rv = at_right.setdefault(v, {})
        if u not in free_left:
            free_left[u] = list(range(colors))
        if v not in free_right:
            free_right[v] = list(range(colors))
        a, b = free(lu, free_left[u]), free(rv, free_right[v])
        if a in rv:
            path = []
            node, side, want = v, 1, a
            while True:
                table = at_right[node] if side else at_left[node]
                e = table.get(want)
                if e is None:
                    break
                path.append(e)
                eu, ev = edges[e]
                node, side = (eu, 0) if side else (ev, 1)
                want = b if want == a else a
            for e in path:
                eu, ev = edges[e]
                del at_left[eu][color[e]]
                del at_right[ev][color[e]]
                heapq.heappush(free_left[eu], color[e])
                heapq.heappush(free_right[ev], color[e])
            for e in path:
                eu, ev = edges[e]
                color[e] = b if color[e] == a else a
                at_left[eu][color[e]] = e
                at_right[ev][color[e]] = e
        color[i] = a
        lu[a] = i
        rv[a] = i
    return color
