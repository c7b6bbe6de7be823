"""The fabric's record of its transfers and flows: columns, plus live state while running.

A fleet run keeps one record per flow for the whole run (the figures need every completion
time), so records are compact columns: a transfer its start, finish and first flow id, a flow
its src GPU, dst GPU, bytes and arrival (its start is its transfer's). The ids and GPUs are
typed arrays (int64, int32); the times and bytes, which the fabric writes item by item on
every transfer, are lists (an array converts each item through CPython's argument parsing),
whose items are mostly shared objects: the flows of one transfer share its bytes and, once
it finishes, its arrival time with the transfer, and an unfinished record holds the one
`NAN`. Counters that only matter while something runs — connections a flow still
waits for, flows a transfer still waits for, the transfer's `done` callback — live in dicts
keyed by id and are dropped when the flow or transfer finishes, so they are bounded by what is
in flight. About 100–130 bytes per one-flow transfer, against ~370 for the lists of Python
objects the columns replaced.

Contract. Ids are dense and in creation order: transfer `x` owns the flows
`x_first[x] .. x_first[x + 1] - 1` (every transfer has at least one flow); an unfinished
transfer or flow has a NaN finish time. All values are stored exactly (IEEE doubles in, the
same doubles out), so figures computed from the columns equal those computed from Python
floats, operation for operation.
"""

from __future__ import annotations

import math
from array import array
from bisect import bisect_right
from collections.abc import Callable

import numpy as np

NAN = math.nan


def nans(n: int) -> tuple[float, ...]:
    """A tuple of `n` times the one `NAN`, made once per `n` (the unfinished records of a
    transfer's flows)."""
    a = NANS_BY_LEN.get(n)
    if a is None:
        a = NANS_BY_LEN[n] = (NAN,) * n
    return a


NANS_BY_LEN: dict[int, tuple[float, ...]] = {}  # `nans(n)` by n


class FlowLog:
    """Transfers and flows of one fabric (module docstring)."""

    def __init__(self):
        self.x_start: list[float] = []
        self.x_end: list[float] = []
        self.x_first = array("q")
        self.f_src = array("i")
        self.f_dst = array("i")
        self.f_bytes: list[int] = []
        self.f_end: list[float] = []
        self.x_live: dict[int, list] = {}   # running transfer -> [flows left, done]
        # running flow -> its transfer when one connection is left, else [connections left,
        # transfer]
        self.f_live: dict[int, int | list] = {}

    @property
    def ntransfers(self) -> int:
        return len(self.x_start)

    @property
    def nflows(self) -> int:
        return len(self.f_end)

    def new_transfer(self, now: float) -> int:
        """Open transfer record at `now`; its id."""
        x = len(self.x_start)
        self.x_start.append(now)
        self.x_end.append(NAN)
        self.x_first.append(len(self.f_end))
        return x

    def new_flow(self, src: int, dst: int, nbytes: int) -> int:
        """Flow record of the newest transfer (unfinished); its id."""
        self.f_src.append(src)
        self.f_dst.append(dst)
        self.f_bytes.append(nbytes)
        self.f_end.append(NAN)
        return len(self.f_end) - 1

    def new_single(self, now: float, src: int, dst: int, nbytes: int) -> tuple[int, int]:
        """`new_transfer(now)` and its one flow `new_flow(src, dst, nbytes)`: (transfer id, flow
        id)."""
        fid = len(self.f_end)
        x = len(self.x_start)
        self.x_start.append(now)
        self.x_end.append(NAN)
        self.x_first.append(fid)
        self.f_src.append(src)
        self.f_dst.append(dst)
        self.f_bytes.append(nbytes)
        self.f_end.append(NAN)
        return x, fid

    def wait(self, x: int, flows: int, done: Callable[[float], None]) -> None:
        """Transfer `x` finishes when `flows` of its flows have (`flow_part_done`)."""
        self.x_live[x] = [flows, done]

    def flow_parts(self, fid: int, x: int, parts: int) -> None:
        """Flow `fid` of transfer `x` arrives when `parts` more pieces (connections) have."""
        st = self.f_live.get(fid)
        if st is None:
            self.f_live[fid] = x if parts == 1 else [parts, x]
        elif st.__class__ is int:
            self.f_live[fid] = [parts + 1, st]
        else:
            st[0] += parts

    def flow_part_done(self, fid: int, now: float) -> Callable[[float], None] | None:
        """One piece of flow `fid` has arrived at `now`; the transfer's `done` when that
        completed the transfer (its live state is then dropped), else None."""
        x = self.f_live[fid]
        if x.__class__ is not int:
            x[0] -= 1
            if x[0]:
                return None
            x = x[1]
        del self.f_live[fid]
        self.f_end[fid] = now
        xs = self.x_live[x]
        xs[0] -= 1
        if xs[0]:
            return None
        del self.x_live[x]
        self.x_end[x] = now
        return xs[1]

    def flow_ids(self, x: int) -> range:
        end = len(self.f_end) if x + 1 == len(self.x_first) else self.x_first[x + 1]
        return range(self.x_first[x], end)

    def flow(self, fid: int) -> tuple[int, int, int, float, float]:
        """(src, dst, bytes, start, arrival) of flow `fid`."""
        x = bisect_right(self.x_first, fid) - 1
        return (self.f_src[fid], self.f_dst[fid], self.f_bytes[fid], self.x_start[x],
                self.f_end[fid])

    def flow_fcts(self) -> list[float]:
        """Arrival - start of every finished flow, in flow-id order."""
        nf = len(self.f_end)
        if not nf:
            return []
        first = np.frombuffer(self.x_first, dtype=np.int64)
        starts = np.repeat(np.asarray(self.x_start, dtype=np.float64),
                           np.diff(np.append(first, nf)))
        ends = np.asarray(self.f_end, dtype=np.float64)
        ok = ends == ends
        return (ends[ok] - starts[ok]).tolist()

    def transfer_spans(self) -> tuple[list[float], list[float]]:
        """(start, finish) of the finished transfers, in id order."""
        if not len(self.x_start):
            return [], []
        s = np.asarray(self.x_start, dtype=np.float64)
        e = np.asarray(self.x_end, dtype=np.float64)
        ok = e == e
        return s[ok].tolist(), e[ok].tolist()
