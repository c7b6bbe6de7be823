"""Closed-loop replay of sessions: a dependent round is sent after the previous one is answered.

A trace row is a *dependent round* when it has a `session_id`, a defined `think_s` (NaN/None =
open loop) and an earlier row of the same session in the replayed trace (rows in trace order;
the `think_s` of a session's first row is ignored). It is not sent at its `arrival_s`: the
`SessionDriver` holds it until the previous row of its session — its *predecessor round* — has
ended in the simulation, then sends it `think_s` seconds later; its `arrival_s` (and so its row
in `requests.parquet`) becomes that actual send time. Every other row arrives at its `arrival_s`
as before (`open_loop`), so a trace without dependent rounds replays exactly as without the
driver.

**When a round ends.** A round is its trace request plus the follow-up calls a router makes for
it (rows with `parent_id`, e.g. cascade escalations or multi-call fan-outs, followed through
`parent_id` chains; `wrpsim.roundtrack`). Follow-ups are counted when the router submits them
through `fleet.submit` (the dispatcher's `view.submit`; the driver wraps it), so they must be
submitted at the latest in the router's `on_complete` / `on_dropped` of one of the round's
calls, or by its `route`. The round ends at the simulated instant when none of its calls is
pending any more (checked once every event of that instant has run, so a follow-up submitted
at that instant after its parent ended still counts); it is *answered* if at least one of its
calls completed.

**Aborted sessions.** A round that ends unanswered (every call dropped: rejected, too large, lost
to a failure) ends its session: its held successors — the rest of the chain of dependent rounds
— are recorded at once as dropped with `drop_reason` ``session_aborted`` (`RequestLog.dropped`,
`arrival_s` = the abort time, as they were never sent), so every trace row still appears exactly
once in `requests.parquet`. An open-loop row of the same session is not held and still arrives
at its time. A trace whose `attrs["session_on_drop"]` (`ON_DROP_ATTR`) is ``continue`` — the
closed-loop benchmark clients of `wrpsim.workload.closed_loop`, whose requests are independent —
instead sends the next round `think_s` after an unanswered one ended, as after an answer; the
default ``abort`` is the behaviour above.

**Shared clients.** A trace whose `attrs["session_clients"]` (`CLIENTS_ATTR`) is ``shared`` — the
closed-loop benchmark clients — has one list of dependent rounds for all its sessions, as a
benchmark client's request list behind a semaphore of `concurrency` slots (`vllm bench serve
--max-concurrency`, ML.ENERGY's client: every request a task waiting for a slot, in list
order): when any round ends, the first dependent round not yet sent goes next, `think_s` after,
whatever session the trace dealt it to, and takes the session of the round that ended (its
`session_id` in `requests.parquet`, and its task in `tasks.parquet`). So
every slot stays busy until the list runs out, where fixed per-session lists would leave the
slots whose rounds ended early idle while others still hold several. A shared client goes on
after an unanswered round whatever `session_on_drop` says. The default ``own``: each session
sends its own rounds in order, as above.

**Horizon.** With `sim.horizon_s`, `replayable` decides which rows take part: open-loop rows
arriving before the horizon, and dependent rounds whose predecessor takes part (their recorded
`arrival_s` does not matter). Dependent rounds not yet sent when the run ends (their predecessor
still running, or in the think pause) are *not replayed*: they have no row in
`requests.parquet`, are counted in `summary.json`'s `requests_beyond_horizon` (with the open-loop
rows past the horizon) and leave their task `in_flight` in `tasks.parquet`.
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np

from wrpsim.errors import unknown_choice
from wrpsim.roundtrack import RoundTracker
from wrpsim.workload.columns import as_columns, present
from wrpsim.workload.request import iter_requests, to_requests

ABORTED = "session_aborted"
#: trace attribute: what an unanswered round does to the rest of its session (ON_DROP choices)
ON_DROP_ATTR = "session_on_drop"
ABORT, CONTINUE = "abort", "continue"
ON_DROP = (ABORT, CONTINUE)
#: trace attribute: who sends a dependent round (CLIENTS choices; module docstring)
CLIENTS_ATTR = "session_clients"
OWN, SHARED = "own", "shared"
CLIENTS = (OWN, SHARED)


def dependent_mask(trace) -> np.ndarray:
    """Boolean mask of the trace's dependent rounds (see the module docstring); `trace`: a
    canonical `TraceColumns` or DataFrame."""
    trace = as_columns(trace)
    n = len(trace)
    if "think_s" not in trace.columns or "session_id" not in trace.columns:
        return np.zeros(n, dtype=bool)
    think = np.asarray(trace["think_s"], dtype=np.float64)
    session = trace["session_id"]
    out = np.zeros(n, dtype=bool)
    seen: set = set()
    for i in np.flatnonzero(present(session)):
        s = session[i]
        out[i] = s in seen and not math.isnan(think[i])
        seen.add(s)
    return out


def replayable(trace, horizon_s: float) -> np.ndarray:
    """Rows that take part in a run with horizon `horizon_s`: open-loop rows arriving before it,
    and dependent rounds whose predecessor round (the previous row of its session) takes part.
    `trace`: a canonical `TraceColumns` or DataFrame."""
    trace = as_columns(trace)
    keep = np.asarray(trace["arrival_s"]) < horizon_s
    dep = dependent_mask(trace)
    if not dep.any():
        return keep
    session = trace["session_id"]
    last: dict = {}
    for i in np.flatnonzero(present(session)):
        s = session[i]
        if dep[i]:
            keep[i] = bool(keep[last[s]])
        last[s] = i
    return keep


class SessionDriver(RoundTracker):
    """Holds the dependent rounds of one simulation and releases them (module docstring).

    `requests`: the trace's `Request`s in trace order. `open_loop` is the list of the others,
    to be dispatched at their `arrival_s` by the caller (`for_trace`: an iterator building them
    as they are taken when the trace has no dependent rounds); `dispatch(req)` routes one
    request now.
    Subscribes to `log.on_complete` / `log.on_dropped` (after the router, which the dispatcher
    subscribed first) and wraps `fleet.submit` only when the trace has dependent rounds.
    `on_drop` (``abort`` | ``continue``, the trace's `attrs[ON_DROP_ATTR]`): what an unanswered
    round does to the rest of its session; `clients` (``own`` | ``shared``, the trace's
    `attrs[CLIENTS_ATTR]`): whether each session sends its own rounds or all share one list.
    """

    def __init__(self, env, fleet, log, dispatch, requests, on_drop: str = ABORT,
                 clients: str = OWN):
        if on_drop not in ON_DROP:
            raise unknown_choice(f"trace attrs {ON_DROP_ATTR}", on_drop, ON_DROP)
        if clients not in CLIENTS:
            raise unknown_choice(f"trace attrs {CLIENTS_ATTR}", clients, CLIENTS)
        super().__init__(env, fleet, log)  # (tracked rounds: those with a held successor)
        self.on_drop = on_drop
        self.dispatch = dispatch
        self.open_loop = []
        #: predecessor round id -> its held dependent successor
        self.waiting: dict = {}
        self.answered: set[int] = set()
        #: dependent rounds not yet sent, by id
        self.unsent: dict = {}
        self.aborted = 0
        #: shared clients: the dependent rounds in trace order; the session of each tracked
        #: round (id -> session)
        self.shared = deque() if clients == SHARED else None
        self.client_of: dict = {}
        last: dict = {}
        for req in requests:
            s = req.session_id
            prev = last.get(s) if s is not None else None
            if prev is not None and req.think_s is not None and not math.isnan(req.think_s):
                if self.shared is not None:
                    self.shared.append(req)
                else:
                    self.waiting[prev.id] = req
                    self.pending[prev.id] = 1
                self.unsent[req.id] = req
            else:
                self.open_loop.append(req)
                if self.shared is not None and s is not None:
                    self.pending[req.id] = 1
                    self.client_of[req.id] = s
            if s is not None:
                last[s] = req
        #: arrival time of the last open-loop request (0 without any)
        self.last_open_s = self.open_loop[-1].arrival_s if self.open_loop else 0.0
        if self.waiting or self.shared:
            self.attach()

    @classmethod
    def for_trace(cls, env, fleet, log, dispatch, trace) -> SessionDriver:
        """The driver of the canonical trace `trace` (`TraceColumns`), its `on_drop` the
        trace's `attrs[ON_DROP_ATTR]`. A trace without dependent rounds has nothing to hold:
        its `open_loop` is then `iter_requests(trace)`, which builds the requests a block at a
        time as they are dispatched instead of all of them up front (a million-request trace's
        `Request`s are ~300 MB)."""
        on_drop = trace.attrs.get(ON_DROP_ATTR, ABORT)
        clients = trace.attrs.get(CLIENTS_ATTR, OWN)
        if dependent_mask(trace).any():
            return cls(env, fleet, log, dispatch, to_requests(trace), on_drop, clients)
        driver = cls(env, fleet, log, dispatch, (), on_drop, clients)
        driver.open_loop = iter_requests(trace)
        arrival = trace["arrival_s"]
        driver.last_open_s = float(arrival[-1]) if len(arrival) else 0.0
        return driver

    @property
    def not_sent(self) -> int:
        """Dependent rounds not sent (yet): at the end of a run, the ones not replayed."""
        return len(self.unsent)

    def call_ended(self, r: int, record: dict) -> None:
        if record["status"] == "completed":
            self.answered.add(r)

    def round_ended(self, r: int) -> None:
        if self.shared is not None:
            self._next_shared(r)
            return
        nxt = self.waiting.pop(r)
        if r in self.answered or self.on_drop == CONTINUE:
            self.answered.discard(r)
            if nxt.think_s > 0:
                ev = self.env.timeout(nxt.think_s)
                ev.callbacks.append(lambda _e: self._send(nxt))
            else:
                self._send(nxt)
            return
        chain = [nxt]  # unanswered: the session's held rounds are never sent
        while chain[-1].id in self.waiting:
            self.pending.pop(chain[-1].id, None)
            chain.append(self.waiting.pop(chain[-1].id))
        self.pending.pop(chain[-1].id, None)
        for q in chain:
            del self.unsent[q.id]
            q.arrival_s = self.env.now
            self.aborted += 1
            self.log.dropped(q, self.fleet.model_of(q), ABORTED, self.env.now)

    def _next_shared(self, r: int) -> None:
        """Round `r` of a shared client ended: the list's next round goes, as its session."""
        client = self.client_of.pop(r)
        self.answered.discard(r)
        if not self.shared:
            return
        nxt = self.shared.popleft()
        nxt.session_id = self.client_of[nxt.id] = client
        self.pending[nxt.id] = 1
        if nxt.think_s > 0:
            ev = self.env.timeout(nxt.think_s)
            ev.callbacks.append(lambda _e: self._send(nxt))
        else:
            self._send(nxt)

    def _send(self, req) -> None:
        del self.unsent[req.id]
        req.arrival_s = self.env.now
        self.dispatch(req)
