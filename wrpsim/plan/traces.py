"""The traces a plan replays: search window, fresh-seed recheck, scaled load.

All take and return canonical trace frames (`wrpsim.workload.request.TRACE_COLUMNS`), sorted by
arrival, and keep the frame's `attrs` (e.g. `hash_block_tokens`).

- `busiest_window(trace, w)`: the `w` seconds holding the most tokens (prompt + output) arriving,
  shifted to start at 0 — the conservative slice a search can run on when the full trace is too
  long for the time budget;
- `shuffle_within(trace, w, rng)`: a fresh sample path of the same workload for the recheck: the
  arrival instants stay, but the requests arriving in each window of `w` seconds are randomly
  permuted among those instants (rows move whole: prompt, output, model, session, hash ids), so
  the rate curve and the length mix of every window are kept while which request meets which
  queue changes. A fixed trace rebuilt with a new seed is otherwise the same trace;
- `scale_load(trace, f)`: arrival times divided by `f` (f = 1.2 is 20 % more load), like the
  workload's `rate_scale`; for a closed-loop benchmark (all arrivals at 0), f times the clients.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd


def _with_attrs(new: pd.DataFrame, old: pd.DataFrame) -> pd.DataFrame:
    new.attrs.update(old.attrs)
    return new


def window_bounds(trace: pd.DataFrame, window_s: float) -> tuple[float, float]:
    """[start, end) of the `window_s` seconds of `trace` with the most arriving tokens."""
    t = trace["arrival_s"].to_numpy(dtype=np.float64)
    if not len(t) or t[-1] - t[0] <= window_s:
        return (float(t[0]) if len(t) else 0.0, float(t[-1]) + 1e-9 if len(t) else 0.0)
    tok = (trace["prompt_tokens"].to_numpy(dtype=np.float64)
           + trace["output_tokens"].to_numpy(dtype=np.float64))
    csum = np.concatenate(([0.0], np.cumsum(tok)))
    starts = t[t <= t[-1] - window_s]
    ends = np.searchsorted(t, starts + window_s, side="left")
    first = np.searchsorted(t, starts, side="left")
    best = int(np.argmax(csum[ends] - csum[first]))
    return float(starts[best]), float(starts[best] + window_s)


def busiest_window(trace: pd.DataFrame, window_s: float) -> pd.DataFrame:
    """The rows of the busiest `window_s` seconds (see `window_bounds`), arrivals from 0."""
    lo, hi = window_bounds(trace, window_s)
    t = trace["arrival_s"].to_numpy()
    out = trace[(t >= lo) & (t < hi)].reset_index(drop=True).copy()
    out["arrival_s"] = out["arrival_s"] - lo
    return _with_attrs(out, trace)


#: the columns that make a closed loop's clients (`wrpsim.workload.closed_loop.deal`): they stay
#: with their row's position when `shuffle_within` deals the requests anew
CLIENT_COLUMNS = ("arrival_s", "session_id", "think_s")


def shuffle_within(trace: pd.DataFrame, window_s: float | None,
                   rng: np.random.Generator) -> pd.DataFrame:
    """Permute whole requests among the arrival instants of each `window_s` window (module
    docstring); `window_s` None returns the trace unchanged. Deterministic given `rng`.

    The rounds of a session that waits on its answers (a row with a finite `think_s`: sent
    after the previous row of its session is answered) keep their order: their rows stay
    where they are, so a session's first round stays first (moved after a later round it would
    be sent at its arrival instant, open loop, beside its own session). In a closed loop
    (`closed_loop_clients`), where every row belongs to such a session, the requests' contents
    (lengths, model, ...) are permuted over the whole trace instead, and each position keeps
    its client and pause (`CLIENT_COLUMNS`): the same clients send a fresh deal of the
    requests."""
    if window_s is None or len(trace) < 2:
        return trace
    t = trace["arrival_s"].to_numpy(dtype=np.float64)
    if closed_loop_clients(trace):
        order = rng.permutation(len(t))
        out = trace.iloc[order].reset_index(drop=True).copy()
        for col in CLIENT_COLUMNS:
            if col in trace.columns:  # (as a Series: its dtype kept, so an unchanged trace
                out[col] = trace[col].reset_index(drop=True)  # still equals the original)
        return _with_attrs(out, trace)
    movable = ~_in_chained_session(trace)
    group = np.floor((t - t[0]) / window_s).astype(np.int64)
    order = np.arange(len(t))
    edges = np.flatnonzero(np.diff(group)) + 1
    for lo, hi in zip(np.concatenate(([0], edges)), np.concatenate((edges, [len(t)]))):
        idx = lo + np.flatnonzero(movable[lo:hi])
        order[idx] = idx[rng.permutation(len(idx))]
    out = trace.iloc[order].reset_index(drop=True).copy()
    out["arrival_s"] = t
    return _with_attrs(out, trace)


def _in_chained_session(trace: pd.DataFrame) -> np.ndarray:
    """Per row: whether it belongs to a session of several rows some of which wait on the
    previous round's answer (a finite `think_s`), whose order `shuffle_within` keeps."""
    n = len(trace)
    if "think_s" not in trace.columns or "session_id" not in trace.columns:
        return np.zeros(n, dtype=bool)
    think = trace["think_s"].to_numpy(dtype=np.float64)
    sid = trace["session_id"]
    chained = sid[np.isfinite(think) & sid.notna().to_numpy()].unique()
    return (sid.isin(chained) & sid.notna()).to_numpy()


def closed_loop_clients(trace: pd.DataFrame) -> int:
    """The clients of a closed-loop benchmark trace (`wrpsim.workload.closed_loop`: every
    arrival at 0, requests that continue their client when dropped, sessions `client-<k>`),
    0 for any other trace."""
    from wrpsim.sessions import CONTINUE, ON_DROP_ATTR

    if (trace.attrs.get(ON_DROP_ATTR) != CONTINUE or "session_id" not in trace.columns
            or not len(trace) or trace["arrival_s"].to_numpy().any()):
        return 0
    ids = trace["session_id"].astype(str)
    return int(ids.nunique()) if ids.str.startswith("client-").all() else 0


def scaled_clients(clients: int, factor: float, requests: int) -> int:
    """The clients of a closed loop at `factor` times its load: rounded away from the base
    (up for more load, down for less) so that a small loop still changes — 1 client at 1.2 x
    is 2 — but at least one and at most one per request."""
    x = clients * factor
    c = math.ceil(x - 1e-9) if factor > 1 else math.floor(x + 1e-9)
    return min(max(1, c), max(1, requests))


def scale_load(trace: pd.DataFrame, factor: float) -> pd.DataFrame:
    """The trace at `factor` (> 0) times the load: arrival times divided by `factor`; for a
    closed loop (`closed_loop_clients`), whose clients send as fast as they are answered and
    whose arrivals are all 0, `factor` times the clients instead (`scaled_clients`: the same
    requests dealt round-robin to them, as `generate_closed_loop` deals them)."""
    out = trace.copy()
    c = closed_loop_clients(trace)
    if not c:
        out["arrival_s"] = trace["arrival_s"].to_numpy(dtype=np.float64) / factor
        return _with_attrs(out, trace)
    from wrpsim.workload.closed_loop import deal

    think = trace["think_s"].to_numpy(dtype=np.float64)
    pause = float(think[~np.isnan(think)][0]) if (~np.isnan(think)).any() else 0.0
    cols = deal(len(trace), scaled_clients(c, factor, len(trace)), pause)
    out["session_id"] = pd.Series(cols["session_id"], index=out.index,
                                  dtype=trace["session_id"].dtype)
    out["think_s"] = cols["think_s"]
    return _with_attrs(out, trace)


def describe(trace: pd.DataFrame) -> tuple[int, float, float]:
    """(requests, first arrival, last arrival) of a trace."""
    t = trace["arrival_s"].to_numpy(dtype=np.float64)
    return len(t), float(t[0]) if len(t) else 0.0, float(t[-1]) if len(t) else 0.0
