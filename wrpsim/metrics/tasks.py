"""Tasks as first-class results: `tasks.parquet` and the task keys of `summary.json`.

A *task* is what a user or an agent waits for:

- kind ``session``: every request of one `session_id` (its rounds, replayed open- or
  closed-loop, see `wrpsim.sessions`) together with their follow-up calls;
- kind ``request``: a workload request without a session and its follow-up calls.

Follow-up calls (rows with `parent_id`: cascade escalations, multi-call fan-outs) belong to the
task of the trace request at the root of their `parent_id` chain. A task's *rounds* are its
trace rows (one for kind request). A round is *answered* when at least one of its calls
completed and none is still in flight; *unanswered* when none completed and none is in flight
(all dropped, including ``session_aborted``); *in flight* when a call was still running at the
horizon or the round was never sent (a dependent round not replayed by the end of the run).

One row per task (schema `TASK_SCHEMA`), in the order of the task's first trace row (a round
never sent — aborted with its session, or not reached by the horizon — took no pause, so its
`think_s` is not counted):

| column | meaning |
|---|---|
| `task_id` | the `session_id`; ``request:<id>`` for a request without a session |
| `kind` | ``session`` or ``request`` |
| `rounds`, `rounds_answered` | trace rows of the task; of those, answered |
| `requests`, `completed`, `dropped` | calls in `requests.parquet` (follow-ups included) |
| `first_arrival_s` | the earliest call's arrival (send) time; NaN if none was sent |
| `finish_s` | the latest finish of a completed call; NaN if none completed |
| `completion_s` | `finish_s - first_arrival_s` for a completed task, else NaN |
| `think_s` | Σ `think_s` of its dependent rounds that were sent: the pauses it includes |
| `prompt_tokens`, `output_tokens` | Σ over its calls |
| `gpu_s`, `energy_j`, `cost_usd` | Σ over its calls of those columns of `requests.parquet` |
| `status` | ``failed`` (a round unanswered), ``in_flight`` (a round in flight), ``completed`` |

`task_summary` adds to `summary.json`: `tasks_total`, `tasks_completed`, `tasks_failed`,
`tasks_in_flight`, `sessions_total`, `sessions_completed`, `task_completion_mean_s`,
`task_completion_p50_s`, `task_completion_p90_s`, `task_completion_p99_s` (over completed
tasks), `session_completion_p50_s`, `session_completion_p99_s` (completed sessions),
`cost_per_task_usd` and `energy_per_task_j` (mean `cost_usd` / `energy_j` of completed
tasks: their calls' busy GPU time priced, failed attempts included; GPU energy while busy, no
idle share and no PUE — unlike `energy_per_request_j`, the facility energy of the whole fleet,
idle included, × PUE, per request; None where undefined).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from wrpsim.arrowcols import table, to_numpy
from wrpsim.metrics.summary import equals, json_ready, masks, mean, pct
from wrpsim.sessions import CLIENTS_ATTR, SHARED, dependent_mask
from wrpsim.workload.columns import as_columns, present

TASK_SCHEMA = pa.schema(
    [
        ("task_id", pa.string()),
        ("kind", pa.string()),  # session | request
        ("rounds", pa.int64()),
        ("rounds_answered", pa.int64()),
        ("requests", pa.int64()),
        ("completed", pa.int64()),
        ("dropped", pa.int64()),
        ("first_arrival_s", pa.float64()),
        ("finish_s", pa.float64()),
        ("completion_s", pa.float64()),
        ("think_s", pa.float64()),
        ("prompt_tokens", pa.int64()),
        ("output_tokens", pa.int64()),
        ("gpu_s", pa.float64()),
        ("energy_j", pa.float64()),
        ("cost_usd", pa.float64()),
        ("status", pa.string()),  # completed | failed | in_flight
    ],
    metadata={"wrpsim.table": "tasks", "wrpsim.version": "1",
              "wrpsim.units": "seconds of simulated time"},
)

SPENT = ("gpu_s", "energy_j", "cost_usd")


def _roots(ids: np.ndarray, parents: list) -> np.ndarray:
    """The trace request at the root of each call's `parent_id` chain (ids sorted ascending)."""
    root = ids.copy()
    of: dict[int, int] = {}
    for k in np.flatnonzero([p is not None for p in parents]):
        p = parents[k]
        root[k] = of.setdefault(int(ids[k]), of.get(p, p))
    return root


def _factorize(values) -> tuple[np.ndarray, int]:
    """(code of each value, number of distinct values), codes in order of first appearance."""
    index: dict = {}
    codes = np.fromiter((index.setdefault(v, len(index)) for v in values), dtype=np.int64,
                        count=len(values))
    return codes, len(index)


def task_table(requests: pa.Table, trace) -> pa.Table:
    """The tasks of a run (module docstring) from its requests table and the replayed trace
    (a canonical `TraceColumns` or DataFrame; row i = request id i; its `session_id` and
    `think_s` columns are used when present). In a shared client pool (`wrpsim.sessions`,
    `attrs["session_clients"]` ``shared``) a sent row belongs to the client that sent it, its
    `session_id` in `requests`; an unsent row to the one the trace dealt it to."""
    trace = as_columns(trace)
    n = len(trace)
    sessions = "session_id" in trace.columns
    session = (np.array(trace["session_id"], dtype=object) if sessions
               else np.full(n, None, dtype=object))
    if sessions and trace.attrs.get(CLIENTS_ATTR) == SHARED:
        rid = to_numpy(requests.column("request_id"))
        own = np.flatnonzero(rid < n)
        sent = np.array(requests.column("session_id").to_pylist(), dtype=object)
        session[rid[own]] = sent[own]
    think = np.where(dependent_mask(trace), np.asarray(trace["think_s"], dtype=np.float64)
                     if "think_s" in trace.columns else 0.0, 0.0)
    # task of each trace row: sessions by first appearance, other rows one task each
    has = present(session) if sessions else np.zeros(n, dtype=bool)
    codes, n_sessions = _factorize(session[has])
    first = np.full(n, -1, dtype=np.int64)
    rows = np.flatnonzero(has)
    first_of_session = np.full(n_sessions, n, dtype=np.int64)
    np.minimum.at(first_of_session, codes, rows)
    first[rows] = first_of_session[codes]
    first[~has] = np.flatnonzero(~has)
    # tasks ordered by their first trace row
    order, task_of_row = np.unique(first, return_inverse=True)
    n_tasks = len(order)

    ids = to_numpy(requests.column("request_id"))
    pcol = requests.column("parent_id")
    root = ids.copy() if pcol.null_count == len(pcol) else _roots(ids, pcol.to_pylist())
    rows_in = root < n  # (a follow-up of a row not in the trace would be a bug; skip it)
    root, sel = root[rows_in], np.flatnonzero(rows_in)
    done, drop, live = (m[sel] for m in masks(requests.column("status"), "completed",
                                              "dropped", "in_flight"))
    fdone, flive = done.astype(np.float64), live.astype(np.float64)

    def col(name, dtype=np.float64):
        if name not in requests.column_names:
            return np.full(len(sel), np.nan)
        return to_numpy(requests.column(name)).astype(dtype)[sel]

    # rounds: answered / unanswered / in flight (unsent rounds have no calls)
    calls = np.bincount(root, minlength=n)
    r_done = np.bincount(root, weights=fdone, minlength=n) > 0
    r_live = (np.bincount(root, weights=flive, minlength=n) > 0) | (calls == 0)
    answered, unanswered = r_done & ~r_live, ~r_done & ~r_live

    task = task_of_row[root]
    # a round's pause was taken only if it was sent: not a round dropped because its session
    # was aborted before it (nor one with no call at all: beyond the horizon)
    aborted = (equals(requests.column("drop_reason"), "session_aborted")[sel]
               if "drop_reason" in requests.column_names else np.zeros(len(sel), dtype=bool))
    sent = np.bincount(root, weights=(~aborted).astype(np.float64), minlength=n) > 0
    think = np.where(sent, think, 0.0)

    def per_task(values, rows=False):
        return np.bincount(task_of_row if rows else task,
                           weights=np.asarray(values, dtype=np.float64), minlength=n_tasks)

    arrival, finish = col("arrival_s"), col("finish_s")
    first_arrival = np.full(n_tasks, np.inf)
    np.minimum.at(first_arrival, task, arrival)
    last_finish = np.full(n_tasks, -np.inf)
    np.maximum.at(last_finish, task[done], finish[done])
    first_arrival[np.isinf(first_arrival)] = np.nan
    last_finish[np.isinf(last_finish)] = np.nan
    failed = per_task(unanswered, rows=True) > 0
    in_flight = ~failed & (per_task(~answered & ~unanswered, rows=True) > 0)
    ok = ~failed & ~in_flight
    # (text columns as lists of a few shared strings, not a new one per task)
    state = ["failed" if f else "in_flight" if i else "completed"
             for f, i in zip(failed.tolist(), in_flight.tolist())]
    spent = {name: per_task(np.nan_to_num(col(name))) if name in requests.column_names
             else np.full(n_tasks, np.nan) for name in SPENT}  # (NaN: a table without them)
    is_session = has[order]
    if is_session.any():
        task_id = [str(session[i]) if s else f"request:{i}"  # (Python ints: numpy's format
                   for i, s in zip(order.tolist(), is_session.tolist())]  # is slower)
        kind = ["session" if s else "request" for s in is_session.tolist()]
    else:  # (no session: every task one request)
        task_id, kind = [f"request:{i}" for i in order.tolist()], ["request"] * n_tasks
    cols = {
        "task_id": task_id,
        "kind": kind,
        "rounds": np.bincount(task_of_row, minlength=n_tasks),
        "rounds_answered": per_task(answered, rows=True).astype(np.int64),
        "requests": np.bincount(task, minlength=n_tasks),
        "completed": per_task(fdone).astype(np.int64),
        "dropped": per_task(drop).astype(np.int64),
        "first_arrival_s": first_arrival,
        "finish_s": last_finish,
        "completion_s": np.where(ok, last_finish - first_arrival, np.nan),
        "think_s": per_task(think, rows=True),
        "prompt_tokens": per_task(col("prompt_tokens")).astype(np.int64),
        "output_tokens": per_task(col("output_tokens")).astype(np.int64),
        **spent,
        "status": state,
    }
    return table([cols[f.name] for f in TASK_SCHEMA], TASK_SCHEMA)


def task_summary(tasks: pa.Table) -> dict:
    """The task keys of `summary.json` (module docstring); None where undefined."""
    done, failed, in_flight = masks(tasks.column("status"), "completed", "failed", "in_flight")
    session = equals(tasks.column("kind"), "session")
    comp = to_numpy(tasks.column("completion_s"))
    out = {
        "tasks_total": len(done),
        "tasks_completed": int(done.sum()),
        "tasks_failed": int(failed.sum()),
        "tasks_in_flight": int(in_flight.sum()),
        "sessions_total": int(session.sum()),
        "sessions_completed": int((session & done).sum()),
        "task_completion_mean_s": mean(comp[done]),
        "task_completion_p50_s": pct(comp[done], 50),
        "task_completion_p90_s": pct(comp[done], 90),
        "task_completion_p99_s": pct(comp[done], 99),
        "session_completion_p50_s": pct(comp[done & session], 50),
        "session_completion_p99_s": pct(comp[done & session], 99),
        "cost_per_task_usd": mean(to_numpy(tasks.column("cost_usd"))[done]),
        "energy_per_task_j": mean(to_numpy(tasks.column("energy_j"))[done]),
    }
    return json_ready(out)
