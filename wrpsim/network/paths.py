"""Load balancing: which path(s) each flow's bytes take.

A *flow* (src endpoint, dst endpoint, bytes) is carried by one or more *connections* (queue
pairs, `Conn`), each with its own window in the packet engine and its own max-min rate in the
fluid engine; a flow is complete when its last connection is. Modes:

- `ecmp`: one connection; the source leaf hashes (src, dst, qp) with its salt to pick a spine.
- `ecmp_subflows`: `subflows` connections of equal size (remainder on the first), each with its
  own qp number and so its own, independent hash.
- `spray`, `reps`, `bitmap`, `flowlet`: one connection over every spine. The packet engine
  chooses an entropy value per packet (`entropy.py`) and the source leaf hashes it to a spine;
  the fluid engine splits the rate evenly, 1/S per spine (it has no per-packet feedback).
- `split`: Theorem 1 of Addanki et al. (2024): with S spines and at most r inter-leaf flows at
  any leaf (in or out) among the flows started together, each flow is split into
  S/gcd(r, S) equal pieces and the pieces are placed — chosen, not hashed — by a König edge
  colouring of the leaf-to-leaf multigraph with r·S/gcd(r, S) colours, r/gcd(r, S) colours per
  spine. Every uplink and downlink then carries exactly its share under ideal spraying. The
  guarantee covers the flows of one call (a collective or one transfer); independent calls are
  decorrelated by rotating the spines by a hashed offset.

Flows within one leaf have a single 2-port path in every mode.

Failed links (`failed_links`; degraded links change nothing here). Between leaves a and b only
the spines of `topo.spines_between(a, b)` are used: `spray` sprays over them; `ecmp` picks among
them by `ecmp_remap` — `rehash` hashes into the surviving group (multiply-shift over its size:
what a switch does when the failed next hop leaves the group; the flows of every affected pair
may move), `resilient` keeps the healthy choice and rehashes only the flows whose spine failed,
uniformly over the survivors (resilient hashing); `split` keeps its colouring and divides a
piece whose spine is unusable for its pair evenly over the pair's surviving spines.
"""

from __future__ import annotations

import math
from typing import NamedTuple

from wrpsim.network.coloring import edge_coloring
from wrpsim.network.config import SPRAYED
from wrpsim.network.hashing import GOLDEN, MASK64, ecmp_index, mix64, switch_salts
from wrpsim.network.topology import LeafSpine

REHASH_WORD = 0xFA11  # extra tuple word of the resilient rehash (an independent second hash)


class Conn(NamedTuple):
    """One connection: its flow's index in the call, endpoints, bytes and candidate paths
    (one path, or one per spine with `spray`)."""

    flow: int
    src: int
    dst: int
    nbytes: int
    paths: tuple[tuple[int, ...], ...]
    spray: bool
    qp: int


class LoadBalancer:
    """Turns flows into connections with paths, per the configured mode (module docstring).

    Deterministic: qp numbers come from a per-instance counter, salts from the run seed."""

    def __init__(self, topo: LeafSpine, seed: int):
        self.topo = topo
        self.cfg = topo.cfg
        self.salts = switch_salts(seed, topo.L + topo.S, topo.cfg.salted)
        self.next_qp = 0
        self.calls = 0
        self._pinned: dict[tuple, int] = {}
        self._prefix: dict[tuple[int, int], int] = {}  # (src, dst) -> `_hash`'s state after them

    def _qp(self) -> int:
        self.next_qp += 1
        return self.next_qp - 1

    def _qp_of(self, key, src: int, dst: int, j: int) -> int:
        """A new qp number, or with `key` the one (key, src, dst, j) got the first time (a
        connection kept open across the calls of one collective)."""
        if key is None:
            return self._qp()
        k = (key, src, dst, j)
        qp = self._pinned.get(k)
        if qp is None:
            qp = self._pinned[k] = self._qp()
        return qp

    def _hash(self, src: int, dst: int, qp: int) -> int:
        """`flow_hash(salt of src's leaf, (src, dst, qp))`, with the state after (salt, src,
        dst) kept per pair (the same integer operations: only qp's round is computed again)."""
        h = self._prefix.get((src, dst))
        if h is None:
            h = mix64(self.salts[self.topo.leaf_of[src]] ^ GOLDEN)
            h = mix64((h + GOLDEN + (src & MASK64)) & MASK64)
            h = self._prefix[(src, dst)] = mix64((h + GOLDEN + (dst & MASK64)) & MASK64)
        return mix64((h + GOLDEN + (qp & MASK64)) & MASK64)

    def ecmp_spine(self, src: int, dst: int, qp: int) -> int:
        """The spine the source leaf's ECMP hash picks for queue pair (src, dst, qp), among the
        spines that reach the destination leaf (`ecmp_remap`, module docstring)."""
        topo = self.topo
        if not topo.has_down:  # (`ecmp_index(salt, (src, dst, qp), S)`)
            return (self._hash(src, dst, qp) * topo.S) >> 64
        a = topo.leaf_of[src]
        salt = self.salts[a]
        alive = topo.spines_between(a, topo.leaf_of[dst])
        if self.cfg.ecmp_remap == "resilient":
            s = ecmp_index(salt, (src, dst, qp), topo.S)
            if s in alive:
                return s
            return alive[ecmp_index(salt, (src, dst, qp, REHASH_WORD), len(alive))]
        return alive[ecmp_index(salt, (src, dst, qp), len(alive))]

    def connections(self, flows: list[tuple[int, int, int]], key=None) -> list[Conn]:
        """Connections of `flows` = [(src, dst, nbytes)] started together (zero-byte flows and
        src == dst flows get none). With a `key` (hashable), every (src, dst) pair keeps the qp
        numbers it got in the first call with that key, so ECMP keeps its spines across the
        steps of one collective, as persistent queue pairs do."""
        topo, mode = self.topo, self.cfg.lb
        self.calls += 1
        out: list[Conn] = []
        split_flows = []
        for i, (src, dst, nbytes) in enumerate(flows):
            if nbytes <= 0 or src == dst:
                continue
            if topo.same_leaf(src, dst):
                out.append(Conn(i, src, dst, nbytes, (topo.path(src, dst, 0),), False, self._qp()))
            elif mode == "ecmp":
                qp = self._qp_of(key, src, dst, 0)
                path = topo.path(src, dst, self.ecmp_spine(src, dst, qp))
                out.append(Conn(i, src, dst, nbytes, (path,), False, qp))
            elif mode == "ecmp_subflows":
                k = min(self.cfg.subflows, nbytes)
                for j in range(k):
                    qp = self._qp_of(key, src, dst, j)
                    size = nbytes // k + (nbytes % k if j == 0 else 0)
                    path = topo.path(src, dst, self.ecmp_spine(src, dst, qp))
                    out.append(Conn(i, src, dst, size, (path,), False, qp))
            elif mode in SPRAYED:
                out.append(Conn(i, src, dst, nbytes, tuple(topo.paths(src, dst)), True,
                                self._qp_of(key, src, dst, 0)))
            else:
                split_flows.append((i, src, dst, nbytes))
        if split_flows:  # the other modes append in (flow, qp) order already
            out.extend(self._split(split_flows))
            out.sort(key=lambda c: (c.flow, c.qp))
        return out

    def connection(self, src: int, dst: int, nbytes: int, key=None) -> list[Conn]:
        """`connections([(src, dst, nbytes)], key)` for one flow with `nbytes > 0` and
        `src != dst` (same connections, qp numbers and state), taking a path within one leaf
        and ECMP directly."""
        topo = self.topo
        leaf = topo.leaf_of
        if leaf[src] == leaf[dst]:  # (`same_leaf`)
            self.calls += 1
            qp = self.next_qp  # (`_qp`)
            self.next_qp = qp + 1
            return [Conn(0, src, dst, nbytes, (topo.path(src, dst, 0),), False, qp)]
        if self.cfg.lb == "ecmp":
            self.calls += 1
            qp = self._qp_of(key, src, dst, 0)
            path = topo.path(src, dst, self.ecmp_spine(src, dst, qp))
            return [Conn(0, src, dst, nbytes, (path,), False, qp)]
        return self.connections([(src, dst, nbytes)], key)

    def _split(self, flows: list[tuple[int, int, int, int]]) -> list[Conn]:
        topo, S = self.topo, self.topo.S
        leaf = topo.leaf_of
        edges = [(leaf[s], leaf[d]) for _, s, d, _ in flows]
        out_deg: dict[int, int] = {}
        in_deg: dict[int, int] = {}
        for a, b in edges:
            out_deg[a] = out_deg.get(a, 0) + 1
            in_deg[b] = in_deg.get(b, 0) + 1
        r = max([*out_deg.values(), *in_deg.values()])
        g = math.gcd(r, S)
        pieces, per_spine = S // g, r // g
        piece_edges = [e for e in edges for _ in range(pieces)]
        colors = edge_coloring(piece_edges, r * pieces)
        offset = ecmp_index(self.salts[0], (self.calls,), S) if self.calls > 1 else 0
        out = []
        for n, (i, src, dst, nbytes) in enumerate(flows):
            k = min(pieces, nbytes)
            alive = topo.spines_between(leaf[src], leaf[dst])
            for j in range(k):
                spine = (colors[n * pieces + j] // per_spine + offset) % S
                size = nbytes // k + (nbytes % k if j == 0 else 0)
                subs = [spine] if not topo.has_down or spine in alive else alive[:size]
                for m, s in enumerate(subs):  # a piece on a failed spine: evenly over `alive`
                    part = size // len(subs) + (size % len(subs) if m == 0 else 0)
                    out.append(Conn(i, src, dst, part, (topo.path(src, dst, s),), False,
                                    self._qp()))
        return out


def offered_bytes(topo: LeafSpine, conns: list[Conn]) -> list[float]:
    """Bytes each port is asked to carry by `conns` (a sprayed connection spreads its bytes
    evenly over its paths)."""
    load = [0.0] * topo.nports
    for c in conns:
        share = c.nbytes / len(c.paths)
        for path in c.paths:
            for p in path:
                load[p] += share
    return load


def ideal_cct_s(topo: LeafSpine, flows: list[tuple[int, int, int]]) -> float:
    """Completion time of `flows` started together under ideal (fluid, perfectly even) spraying
    over the working paths: the most loaded port's bytes over its rate."""
    load = [0.0] * topo.nports
    for src, dst, nbytes in flows:
        if nbytes <= 0 or src == dst:
            continue
        paths = topo.paths(src, dst)
        for path in paths:
            for p in path:
                load[p] += nbytes / len(paths)
    return max(8 * b / r for b, r in zip(load, topo.rate))
