"""Rounds of calls in flight: a request plus the follow-up calls a router makes for it.

Shared by the closed-loop session driver (`wrpsim.sessions`, which holds a session's next
round until this one ends) and the client's in-flight cap (`wrpsim.clientcap`, which holds a
request until a round ends). A tracked round is a request id in `pending` with the count of
its calls not yet ended. Follow-up calls (rows with `parent_id`, e.g. cascade escalations or
multi-call fan-outs) are counted when the router submits them through `fleet.submit`, which
`attach` wraps, their `parent_id` chains followed back to the round. A round ends at the
simulated instant when none of its calls is pending, decided once every event of that instant
has run (so a follow-up submitted at that instant after its parent ended still counts); then
`round_ended(r)` runs. `call_ended(r, record)` runs for each of its calls as it ends.
"""

from __future__ import annotations


class RoundTracker:
    """Counts each tracked round's calls in flight (module docstring); subclasses say what a
    call's end (`call_ended`) and a round's end (`round_ended`) do."""

    def __init__(self, env, fleet, log):
        self.env = env
        self.fleet = fleet
        self.log = log
        #: tracked round id -> its calls not yet ended
        self.pending: dict[int, int] = {}
        self._root: dict[int, int] = {}  # follow-up id -> the id of its (tracked) round

    def attach(self) -> None:
        """Start tracking: subscribe to the log's call ends (after the router, which the
        dispatcher subscribed first) and wrap `fleet.submit` to count follow-ups."""
        self.log.on_complete.append(self._ended)
        self.log.on_dropped.append(self._ended)
        self._submit = self.fleet.submit
        self.fleet.submit = self._tracked_submit

    def call_ended(self, r: int, record: dict) -> None:
        """A call of tracked round `r` ended with `record` (its requests-table row)."""

    def round_ended(self, r: int) -> None:
        """Tracked round `r` has no call pending any more (it left `pending`)."""
        raise NotImplementedError

    def _tracked_submit(self, req, delay_s: float = 0.0) -> None:
        if req.parent_id is not None:
            r = self._root.get(req.parent_id, req.parent_id)
            if r in self.pending:
                self._root[req.id] = r
                self.pending[r] += 1
        self._submit(req, delay_s)

    def _ended(self, req, record: dict) -> None:
        r = req.id if req.parent_id is None else self._root.get(req.id)
        if r is None or r not in self.pending:
            return
        self.call_ended(r, record)
        self.pending[r] -= 1
        if self.pending[r] == 0:  # decide once every event of this instant has run
            ev = self.env.timeout(0)
            ev.callbacks.append(lambda _e: self._check(r))

    def _check(self, r: int) -> None:
        if self.pending.get(r) != 0:  # a follow-up was submitted in the same instant
            return
        del self.pending[r]
        self.round_ended(r)
