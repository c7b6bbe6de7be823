"""Collectives as traffic: NCCL-style algorithms as DAGs of flows, run on a fabric.

    coll = Collective("allreduce_ring", ranks=(0, 16, 32, 48), nbytes=64 << 20, alpha_s=5e-6)
    run = start_collective(fabric, coll, done=lambda t: ...)   # at fabric.env.now
    yield run.event                                            # or wait for done(t)

Contract (what the fleet calls, inside a running SimPy environment with any other traffic, e.g.
KV transfers, on the same `Fabric`): `start_collective` starts the collective at `env.now` and
returns a `CollectiveRun`; `done(t)` is called once and `run.event` succeeds (value `t`) when
the last flow of the DAG has arrived. It never calls `done` re-entrantly (a group of one rank, or
one with nothing to send, completes through a zero-delay event). Every flow is one `Fabric.
transfer` of one flow: same-server pairs take the GPU link (`nvlink_gbps`), others cross the
fabric and share it max-min (fluid) or packet by packet with everything else; under
`kind: none` every flow is instantaneous and only the step latencies count. Connections are
keyed by the group (`key`), so ECMP keeps each rank pair on one spine across steps and calls,
like NCCL's persistent queue pairs. Cost: one transfer per flow and one SimPy heap entry per
set of flows that become ready together (`wrpsim.pool.wakeup.wake_joined`).

`nbytes` = S is the buffer per rank: the all-reduce's input (= output), the all-gather's
output, the reduce-scatter's input, the all-to-all's send buffer. A flow starts `alpha_s` (the
per-step software / launch latency) after its last input has arrived. Algorithms (n ranks in the
order given; chunk c is S/n bytes, the remainder spread over the first chunks):

- `reducescatter`, `allgather`: ring, n − 1 steps. In step k rank i sends chunk (i − k) mod n to
  rank i + 1; the send waits for the flow that brought that chunk (rank i − 1's step k − 1) and
  for rank i's own step k − 1 send (one connection per neighbour, as one NCCL channel).
- `allreduce_ring`: reduce-scatter then all-gather on the same ring and rule, 2(n − 1) steps.
- `allreduce_tree`: binomial tree rooted at the first rank: reduce (rank r sends to
  r − lowbit(r) once every child r + 2^j, 2^j < lowbit(r), has arrived), then broadcast (a rank
  forwards to its children, largest subtree first, one send after another) — the textbook /
  MPI tree: every round a rank sends and receives at most one message. With `chunks` c > 1 every
  message is c pieces and piece p of a send waits for piece p of its inputs and for piece p − 1
  of the same send (pipelining). Not NCCL's double binary tree.
- `alltoall`: every rank sends chunk j to rank j, all n(n − 1) flows at once (NCCL posts them
  together as one group of sends and receives); no dependencies.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from wrpsim.errors import ConfigError, unknown_choice
from wrpsim.pool.wakeup import wake, wake_joined

KINDS = ("allreduce_ring", "allreduce_tree", "allgather", "reducescatter", "alltoall")
STEPS_CACHE = 1024  # DAGs kept by (kind, group size, bytes, chunks) (`Collective.steps`)
_STEPS: dict[tuple, list] = {}


@dataclass(frozen=True, slots=True)
class Step:
    """One flow of a collective's DAG: ranks (indices into the group), bytes, the step (round)
    it belongs to, and the ids of the flows whose arrival it waits for (all lower ids)."""

    src: int
    dst: int
    nbytes: int
    step: int
    deps: tuple[int, ...]


def chunk_sizes(nbytes: int, n: int) -> list[int]:
    """`nbytes` cut into `n` chunks that differ by at most one byte (larger ones first)."""
    q, r = divmod(nbytes, n)
    return [q + (c < r) for c in range(n)]


@dataclass(frozen=True)
class Collective:
    """A collective of `kind` over the endpoints `ranks` with S = `nbytes` per rank (module
    docstring); `alpha_s` seconds of latency per step; `chunks` pieces per tree message."""

    kind: str
    ranks: tuple[int, ...]
    nbytes: int
    alpha_s: float = 0.0
    chunks: int = 1

    def __post_init__(self):
        object.__setattr__(self, "ranks", tuple(self.ranks))  # hashable: the connection key
        if self.kind not in KINDS:
            raise unknown_choice("collective", self.kind, KINDS)
        if len(set(self.ranks)) != len(self.ranks):
            raise ConfigError(f"collective: ranks must be distinct, got {list(self.ranks)}")
        if self.nbytes < 0 or self.alpha_s < 0 or self.chunks < 1:
            raise ConfigError(f"collective: need nbytes >= 0, alpha_s >= 0 and chunks >= 1, "
                              f"got {self.nbytes}, {self.alpha_s}, {self.chunks}")

    @property
    def n(self) -> int:
        """Number of ranks."""
        return len(self.ranks)

    def steps(self) -> list[Step]:
        """The DAG, in an order where every flow comes after the flows it waits for. The list is
        shared by every collective of the same kind, size, bytes and chunks (the rails of a
        spanning instance, its iterations of one batch size): read it, do not change it."""
        n = self.n
        if n < 2:
            return []
        shape = (self.kind, n, self.nbytes, self.chunks)
        out = _STEPS.get(shape)
        if out is not None:
            return out
        if self.kind == "alltoall":
            sizes = chunk_sizes(self.nbytes, n)
            out = [Step(i, j, sizes[j], 0, ()) for i in range(n) for j in range(n) if i != j]
        elif self.kind == "allreduce_tree":
            out = _tree(n, self.nbytes, self.chunks)
        else:
            out = _ring(n, self.nbytes, 2 * (n - 1) if self.kind == "allreduce_ring" else n - 1)
        if len(_STEPS) >= STEPS_CACHE:
            _STEPS.clear()
        _STEPS[shape] = out
        return out

    def depth(self) -> int:
        """Flows on the longest dependency chain of `steps()` (the steps an ideal run waits
        for), measured on the DAG: 2(n − 1) for the ring all-reduce, n − 1 for the other rings,
        1 for all-to-all, 2⌈log2 n⌉ + chunks − 1 for a tree of n a power of 2 (fewer for other
        n, where some subtrees are shallower)."""
        return int(longest_chain(self.steps(), lambda _i, _s: 1))


def longest_chain(steps: list[Step], weight: Callable[[int, Step], float]) -> float:
    """The heaviest dependency chain of the DAG `steps` (each flow after the flows it waits
    for), a chain weighing the sum of `weight(i, step)` over its flows; 0 for no flows. With
    `weight` = α + a flow's time alone at its link's full rate it is a lower bound on the
    collective's completion time, whatever the traffic around it."""
    end: list[float] = []
    for i, s in enumerate(steps):
        end.append(weight(i, s) + max((end[d] for d in s.deps), default=0))
    return max(end, default=0)


def log2_ceil(n: int) -> int:
    """⌈log2 n⌉ for n >= 1."""
    return (n - 1).bit_length()


def _ring(n: int, nbytes: int, nsteps: int) -> list[Step]:
    sizes = chunk_sizes(nbytes, n)
    out = []
    for k in range(nsteps):
        for i in range(n):
            deps = () if k == 0 else ((k - 1) * n + (i - 1) % n, (k - 1) * n + i)
            out.append(Step(i, (i + 1) % n, sizes[(i - k) % n], k, deps))
    return out


def _tree(n: int, nbytes: int, chunks: int) -> list[Step]:
    pieces = chunk_sizes(nbytes, chunks)
    L = log2_ceil(n)
    out: list[Step] = []
    up: dict[tuple[int, int], int] = {}    # (child rank, piece) -> id of its reduce send
    # reduce: ranks by increasing lowbit, so every child is emitted before its parent
    order = sorted(range(1, n), key=lambda r: (r & -r, r))
    for p in range(chunks):
        for r in order:
            low = r & -r
            kids = [r + (1 << j) for j in range(low.bit_length() - 1) if r + (1 << j) < n]
            deps = tuple(up[(c, p)] for c in kids) + ((up[(r, p - 1)],) if p else ())
            up[(r, p)] = len(out)
            out.append(Step(r, r - low, pieces[p], low.bit_length() - 1, deps))
    down: dict[tuple[int, int], int] = {}  # (receiving rank, piece) -> id of the send to it
    for p in range(chunks):
        root_in = tuple(up[(1 << j, p)] for j in range(L) if (1 << j) < n)
        for r in sorted(range(n), key=lambda r: -(r & -r) if r else -n):
            bits = L if r == 0 else (r & -r).bit_length() - 1
            prev: int | None = down.get((r, p))
            got = root_in if r == 0 else (prev,)
            last = None
            for j in reversed(range(bits)):
                c = r + (1 << j)
                if c >= n:
                    continue
                deps = got + ((last,) if last is not None else ()) + \
                    ((down[(c, p - 1)],) if p else ())
                last = down[(c, p)] = len(out)
                out.append(Step(r, c, pieces[p], L + (L - 1 - j), deps))
    return out


class CollectiveRun:
    """One collective in flight on a fabric (`start_collective`). `ready_s[i]`: when flow i's
    inputs had all arrived; `xfer[i]`: its `Fabric.transfer` id (-1 until started);
    `finish_s[i]`: its arrival; `finish` the collective's end (NaN while running); `event`: a
    SimPy event that succeeds with the end time (made when first asked for: one asked for
    after the end succeeds at once).

    Its callbacks are bound methods (`partial(run._arrived, i)`), not closures over each
    other, so a finished run is freed by reference counting, not left to the cycle collector.
    """

    __slots__ = ("_after", "_done", "_event", "_fabric", "_key", "_left", "_tag", "_waiting",
                 "coll", "finish", "finish_s", "ready_s", "start", "steps", "xfer")

    def __init__(self, fabric, coll: Collective, start: float, steps: list[Step],
                 done: Callable[[float], None] | None, tag: str, key):
        m = len(steps)
        self.coll, self.start, self.steps = coll, start, steps
        self.ready_s = [math.nan] * m
        self.xfer = [-1] * m
        self.finish_s = [math.nan] * m
        self.finish = math.nan
        self._fabric, self._done, self._tag, self._key = fabric, done, tag, key
        self._event = None
        self._waiting = [len(s.deps) for s in steps]
        self._after = _after(coll, steps)
        self._left = m

    @property
    def event(self):
        """A SimPy event that succeeds (value: the end time) when the collective ends."""
        if self._event is None:
            self._event = self._fabric.env.event()
            if self.finish == self.finish:  # already over
                self._event.succeed(self.finish)
        return self._event

    def _finished(self, t: float) -> None:
        self.finish = t
        if self._event is not None:
            self._event.succeed(t)
        if self._done is not None:
            self._done(t)

    def _launch(self, i: int, _ev=None) -> None:
        s = self.steps[i]
        ranks = self.coll.ranks
        self.xfer[i] = self._fabric.send(ranks[s.src], ranks[s.dst], s.nbytes,
                                         partial(self._arrived, i), self._tag, self._key)

    def _ready(self, i: int) -> None:
        env = self._fabric.env
        self.ready_s[i] = env._now
        wake_joined(env, self.coll.alpha_s, partial(self._launch, i))

    def _arrived(self, i: int, t: float) -> None:
        self.finish_s[i] = t
        waiting = self._waiting
        for j in self._after[i]:
            waiting[j] -= 1
            if waiting[j] == 0:
                self._ready(j)
        self._left -= 1
        if self._left == 0:
            self._finished(t)


_AFTER: dict[tuple, list[tuple[int, ...]]] = {}


def _after(coll: Collective, steps: list[Step]) -> list[tuple[int, ...]]:
    """For every flow of `steps`, the flows that wait for it (cached by the DAG's shape: the
    dependencies depend on the kind, the group size and the chunks, not on the bytes)."""
    shape = (coll.kind, coll.n, coll.chunks)
    out = _AFTER.get(shape)
    if out is None or len(out) != len(steps):
        after: list[list[int]] = [[] for _ in steps]
        for i, s in enumerate(steps):
            for d in s.deps:
                after[d].append(i)
        out = [tuple(a) for a in after]
        if len(_AFTER) < 64:
            _AFTER[shape] = out
    return out


def start_collective(fabric, coll: Collective, done: Callable[[float], None] | None = None,
                     tag: str = "collective", key=None) -> CollectiveRun:
    """Start `coll` on `fabric` (a `wrpsim.network.transfer.Fabric` attached to its SimPy
    environment) at `env.now` (module docstring); `key`: the connection key, by default the
    group, so repeated collectives of one group reuse their queue pairs."""
    env = fabric.env
    if env is None:
        raise RuntimeError("start_collective before Fabric.attach(env)")
    topo = fabric.topo
    if topo is not None and coll.ranks and not (0 <= min(coll.ranks) and max(coll.ranks) < topo.n):
        bad = [g for g in coll.ranks if not 0 <= g < topo.n]
        raise ConfigError(f"network: GPU id {bad[0]} outside the fabric's 0..{topo.n - 1}")
    steps = coll.steps()
    key = ("collective", coll.ranks) if key is None else key
    run = CollectiveRun(fabric, coll, env.now, steps, done, tag, key)
    if not steps:
        wake(env, 0, lambda _e: run._finished(env.now))
    for i, s in enumerate(steps):
        if not s.deps:
            run._ready(i)
    return run
