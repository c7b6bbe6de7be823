"""A benchmark client's cap on the requests it has in flight.

`vllm bench serve --request-rate R --max-concurrency C` draws its send times at rate R but
holds a request while C of its own are unanswered (an asyncio semaphore, acquired before the
request's clock starts). A synthetic workload replays that with `source.max_concurrency: C`
(`wrpsim.workload.synthetic`; the trace's `attrs[MAX_IN_FLIGHT_ATTR]`): `ClientCap` sits
between the arrival schedule and the dispatcher. A request whose time comes while C rounds are
in flight waits in a FIFO until one ends, and is then sent at once; its `arrival_s` (and so its
row in `requests.parquet`, from which TTFT and end-to-end latency count) becomes that send
time, as vLLM's client times it.

A round is the request plus the follow-up calls a router makes for it, tracked as
`wrpsim.roundtrack` does; it ends when none of them is pending — answered or dropped alike,
since the client moves on either way.
Requests still held when a horizon ends the run are never sent: `not_sent` counts them (the
run's `requests_beyond_horizon`).
"""

from __future__ import annotations

from collections import deque

from wrpsim.roundtrack import RoundTracker

#: trace attribute: the client's cap on requests in flight (None / absent: no cap)
MAX_IN_FLIGHT_ATTR = "max_in_flight"


class ClientCap(RoundTracker):
    """Holds requests beyond `cap` in flight (module docstring). `offer(req)` is what the
    arrival schedule calls at a request's time; `dispatch(req)` routes one now."""

    def __init__(self, env, fleet, log, dispatch, cap: int):
        super().__init__(env, fleet, log)
        self.dispatch = dispatch
        self.cap = cap
        self.in_flight = 0
        self.held: deque = deque()
        self.attach()

    @property
    def not_sent(self) -> int:
        """Requests still held: at the end of a run, the ones a horizon cut off."""
        return len(self.held)

    def offer(self, req) -> None:
        """`req`'s scheduled time has come: send it, or hold it while `cap` are in flight."""
        if self.in_flight < self.cap:
            self._send(req)
        else:
            self.held.append(req)

    def _send(self, req) -> None:
        self.in_flight += 1
        self.pending[req.id] = 1
        req.arrival_s = self.env.now
        self.dispatch(req)

    def round_ended(self, r: int) -> None:
        self.in_flight -= 1
        if self.held:
            self._send(self.held.popleft())
