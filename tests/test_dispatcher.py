"""Router hooks: decision latency, completion callbacks and follow-up calls."""

from __future__ import annotations

import pytest

from tests.conftest import constant_cfg, make_trace
from wrpsim.router import Placement, RoundRobin
from wrpsim.sim import Simulation


class SlowDecider(RoundRobin):
    """Round-robin that takes 50 ms to decide."""

    def route(self, request, view):
        return Placement(self.choose(request, view.candidates(request)), delay_s=0.05)


class Escalate(RoundRobin):
    """A toy cascade: every original request is retried once with twice the output."""

    def bind(self, fleet, rng):
        super().bind(fleet, rng)
        self.seen = []

    def on_complete(self, request, record):
        self.seen.append((request.id, record["status"], record["finish_s"]))
        if request.parent_id is None:
            retry = self.fleet.follow_up(request, output_tokens=2 * request.output_tokens)
            self.fleet.submit(retry)


def _cfg(router_cls):
    cfg = constant_cfg(step_s=0.01)
    cfg["router"] = {"_target_": f"{__name__}.{router_cls.__name__}"}
    return cfg


def test_decision_latency_counts_in_ttft():
    req, _, _ = Simulation(_cfg(SlowDecider), make_trace([0.0], [10], [2])).run()
    r = req.to_pylist()[0]
    assert r["ttft_s"] == pytest.approx(0.05 + 0.01)


def test_follow_up_calls_are_routed_recorded_and_linked_to_their_parent():
    sim = Simulation(_cfg(Escalate), make_trace([0.0, 0.5], [10, 10], [3, 4]))
    req, _, _ = sim.run()
    rows = req.to_pylist()
    assert [r["request_id"] for r in rows] == [0, 1, 2, 3]
    assert [r["parent_id"] for r in rows] == [None, None, 0, 1]
    assert [r["output_tokens"] for r in rows] == [3, 4, 6, 8]
    assert all(r["status"] == "completed" for r in rows)
    # the follow-up arrives when its parent finishes
    assert rows[2]["arrival_s"] == pytest.approx(rows[0]["finish_s"])
    assert [s[0] for s in sim.router.seen] == [0, 2, 1, 3]
