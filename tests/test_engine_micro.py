"""Exact timelines of micro-scenarios, worked out by hand (style.md layer d)."""

from __future__ import annotations

import pytest

from tests.conftest import constant_cfg, make_trace
from wrpsim.sim import Simulation


def _rows(cfg, trace):
    sim = Simulation(cfg, trace)
    req, inst, end = sim.run()
    return {r["request_id"]: r for r in req.to_pylist()}, inst.to_pylist(), end, sim


def test_sarathi_arrival_joins_running_decode_at_iteration_boundary():
    # req0 prefills in [0, .01], decodes 4 steps; req1 arrives at .025 mid-step and its prompt
    # chunk joins the batch at the boundary .03 together with req0's decode step.
    trace = make_trace([0.0, 0.025], [10, 10], [5, 3])
    rows, inst, end, _ = _rows(constant_cfg(step_s=0.01), trace)
    r0, r1 = rows[0], rows[1]
    assert r0["ttft_s"] == pytest.approx(0.01)
    assert r0["finish_s"] == pytest.approx(0.05)
    assert r0["tpot_s"] == pytest.approx(0.01)
    assert r1["queue_wait_s"] == pytest.approx(0.005)
    assert r1["first_token_s"] == pytest.approx(0.04)
    assert r1["finish_s"] == pytest.approx(0.06)
    assert end == pytest.approx(0.06)
    assert inst[0]["busy_s"] == pytest.approx(0.06)
    assert inst[0]["decode_tokens"] == 4 + 2
    assert inst[0]["prefill_tokens"] == 20
    # six iterations, five with a decoding sequence: all but r0's prefill (r1's prefill runs
    # beside r0's third decode step); r0 and r1 decode together once
    assert (inst[0]["iterations"], inst[0]["decode_iterations"]) == (6, 5)


def test_schedule_lag_admits_an_arrival_into_the_iteration_after_next():
    # As above, but the engine schedules iteration N + 1 while N runs (vLLM async scheduling):
    # req1 arrives at .025 during the step [.02, .03]; the step [.03, .04] was already
    # scheduled, so its chunk joins at .04 and its first token comes at .05. An idle engine
    # schedules at once: req0's first token is unchanged.
    trace = make_trace([0.0, 0.025], [10, 10], [5, 3])
    cfg = constant_cfg(step_s=0.01)
    cfg["pool"]["pools"]["p"]["latency"]["schedule_lag"] = True
    rows, _, end, _ = _rows(cfg, trace)
    r0, r1 = rows[0], rows[1]
    assert r0["first_token_s"] == pytest.approx(0.01)
    assert r0["finish_s"] == pytest.approx(0.05)
    assert r1["queue_wait_s"] == pytest.approx(0.015)
    assert r1["first_token_s"] == pytest.approx(0.05)
    assert r1["finish_s"] == pytest.approx(0.07)
    assert end == pytest.approx(0.07)
    # a lone arrival at an idle engine is not delayed; one behind a lone prefill waits for it
    rows, _, _, _ = _rows(cfg, make_trace([0.0, 0.005], [10, 10], [1, 1]))
    assert rows[0]["first_token_s"] == pytest.approx(0.01)
    assert rows[1]["first_token_s"] == pytest.approx(0.02)


def test_vllm_prefill_stalls_decodes():
    # Same arrivals: with prefill priority req1's prefill iteration [.03, .04] pauses req0.
    trace = make_trace([0.0, 0.025], [10, 10], [5, 3])
    rows, _, _, _ = _rows(constant_cfg(step_s=0.01, policy="vllm"), trace)
    assert rows[1]["first_token_s"] == pytest.approx(0.04)
    assert rows[0]["finish_s"] == pytest.approx(0.06)
    assert rows[1]["finish_s"] == pytest.approx(0.06)


def test_simultaneous_arrivals_share_first_iteration():
    trace = make_trace([0.0, 0.0, 0.0], [10, 20, 30], [2, 2, 2])
    rows, inst, _, _ = _rows(constant_cfg(step_s=0.01), trace)
    assert [rows[i]["first_token_s"] for i in range(3)] == pytest.approx([0.01] * 3)
    assert [rows[i]["finish_s"] for i in range(3)] == pytest.approx([0.02] * 3)
    assert inst[0]["iterations"] == 2


def test_chunked_prefill_splits_long_prompt_by_token_budget():
    # budget 64 tokens: a 150-token prompt takes 3 iterations (64, 64, 22)
    trace = make_trace([0.0], [150], [1])
    rows, inst, _, _ = _rows(constant_cfg(step_s=0.01, token_budget=64, max_seqs=8), trace)
    assert rows[0]["ttft_s"] == pytest.approx(0.03)
    assert rows[0]["finish_s"] == pytest.approx(0.03)
    assert inst[0]["iterations"] == 3


def test_preemption_by_recompute_when_kv_runs_out():
    # block_size 1, 12 blocks: two sequences growing to 4+5=9 tokens each cannot coexist.
    trace = make_trace([0.0, 0.0], [4, 4], [6, 6])
    rows, inst, _, sim = _rows(constant_cfg(step_s=0.01, kv_blocks=12, block_size=1), trace)
    assert all(r["status"] == "completed" for r in rows.values())
    assert inst[0]["preemptions"] >= 1
    assert inst[0]["kv_peak_blocks"] <= 12
    assert sim.fleet.instances[0].kv.used == 0
    # the later-admitted sequence is the victim and is recomputed
    assert rows[1]["preemptions"] >= 1 and rows[0]["preemptions"] == 0


def test_orca_reserves_whole_request_and_never_preempts():
    trace = make_trace([0.0, 0.0], [4, 4], [6, 6])
    rows, inst, _, _ = _rows(
        constant_cfg(step_s=0.01, kv_blocks=12, block_size=1, policy="orca"), trace)
    assert inst[0]["preemptions"] == 0
    # the second request waits until the first frees its 9 reserved blocks
    assert rows[1]["queue_wait_s"] == pytest.approx(rows[0]["finish_s"])


def test_request_larger_than_kv_capacity_is_dropped_with_reason():
    trace = make_trace([0.0, 0.1], [100, 5], [100, 5])
    rows, _, _, _ = _rows(constant_cfg(kv_blocks=10, block_size=16), trace)
    assert rows[0]["status"] == "dropped" and rows[0]["drop_reason"] == "exceeds_kv_capacity"
    assert rows[1]["status"] == "completed"


def test_horizon_leaves_requests_in_flight():
    trace = make_trace([0.0, 0.0, 5.0], [10, 10, 10], [1000, 2, 2])
    cfg = constant_cfg(step_s=0.01, max_seqs=1, token_budget=16)
    cfg["sim"] = {"horizon_s": 1.0}
    rows, _, end, _ = _rows(cfg, trace)
    assert end == 1.0
    assert rows[0]["status"] == "in_flight" and rows[0]["first_token_s"] == pytest.approx(0.01)
    assert rows[1]["status"] == "in_flight" and rows[1]["queue_wait_s"] != rows[1]["queue_wait_s"]
    assert len(rows) == 2  # the request arriving after the horizon never arrived


def test_a_cut_decode_runs_old_end_event_is_void_not_called(monkeypatch):
    # req1's arrival at .025 cuts req0's decode run (planned to end at .05) at the boundary .03:
    # the run's old end event stays on the heap, void (`instance._void`), so `_on_end` is never
    # called with a stale token; the timeline is the one of the test above.
    from wrpsim.pool import fleet
    from wrpsim.pool.instance import Instance

    stale, ends = [], []

    class Watched(Instance):
        # (a subclass, not a patched `Instance`: compiled, `Instance` is an immutable type)
        def _on_end(self, ev):
            (stale if ev.value != self._token else ends).append(ev.value)
            return super()._on_end(ev)

    monkeypatch.setattr(fleet, "Instance", Watched)  # (`_on_end` is bound at construction)
    trace = make_trace([0.0, 0.025], [10, 10], [5, 3])
    rows, _, end, _ = _rows(constant_cfg(step_s=0.01), trace)
    assert stale == [] and len(ends) >= 3
    assert rows[1]["first_token_s"] == pytest.approx(0.04)
    assert end == pytest.approx(0.06)
