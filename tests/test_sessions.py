"""Closed-loop sessions (wrpsim.sessions) and tasks as results (wrpsim.metrics.tasks).

Hand-worked timelines on a constant-latency pool (step 0.01 s, prompts fit one chunk): a lone
request with O output tokens arriving at a finishes at a + 0.01·O.
"""

from __future__ import annotations

import itertools
import json
import math
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from tests.conftest import compose_cfg, constant_cfg, make_trace
from wrpsim.errors import TraceError
from wrpsim.metrics.tasks import TASK_SCHEMA, task_table
from wrpsim.router.policies import RoundRobin
from wrpsim.sessions import SessionDriver, dependent_mask, replayable
from wrpsim.sim import Simulation, run
from wrpsim.workload import build_workload, load_trace, load_workload
from wrpsim.workload.cache import read_cached, write_cached
from wrpsim.workload.readers import read_records
from wrpsim.workload.validate import canonical_frame, validate_trace

ROOT = Path(__file__).resolve().parent.parent
WORKLOADS = ROOT / "workloads"
TRACELAB = WORKLOADS / "traces" / "tracelab_agent_sample.jsonl"
NAN = math.nan


def _sim(cfg, trace):
    sim = Simulation(cfg, trace)
    req, _, end = sim.run()
    return {r["request_id"]: r for r in req.to_pylist()}, sim, req, end


def _session(think, prompts=(10, 30, 50), outputs=(5, 5, 5), arrivals=None, sid="a"):
    n = len(prompts)
    return make_trace(arrivals if arrivals is not None else [0.001 * k for k in range(n)],
                      prompts, outputs, session_id=[sid] * n, think_s=think)


# --- closed-loop semantics -------------------------------------------------------------------


def test_an_open_loop_trace_builds_its_requests_as_they_are_dispatched():
    from dataclasses import astuple

    from wrpsim.workload.columns import as_columns
    from wrpsim.workload.request import to_requests

    trace = as_columns(make_trace([0.0, 0.5, 1.0], [10, 20, 30], [5, 5, 5]))
    sim = Simulation(constant_cfg(step_s=0.01), trace)
    driver = SessionDriver.for_trace(sim.env, sim.fleet, sim.log, None, trace)
    assert not isinstance(driver.open_loop, list) and driver.last_open_s == 1.0
    assert list(map(astuple, driver.open_loop)) == list(map(astuple, to_requests(trace)))
    closed = as_columns(_session([NAN, 0.5, 0.25]))
    sim = Simulation(constant_cfg(step_s=0.01), closed)
    driver = SessionDriver.for_trace(sim.env, sim.fleet, sim.log, None, closed)
    assert [r.id for r in driver.open_loop] == [0] and sorted(driver.unsent) == [1, 2]


def test_round_is_sent_its_think_time_after_the_previous_answer():
    trace = _session([NAN, 0.5, 0.25])
    rows, _, req, end = _sim(constant_cfg(step_s=0.01), trace)
    r = [rows[i] for i in range(3)]
    assert r[0]["arrival_s"] == 0.0 and r[0]["finish_s"] == pytest.approx(0.05)
    # exactly: round k's send = round k-1's finish + think_k
    assert r[1]["arrival_s"] == r[0]["finish_s"] + 0.5
    assert r[2]["arrival_s"] == r[1]["finish_s"] + 0.25
    assert r[1]["finish_s"] == pytest.approx(0.60) and r[2]["finish_s"] == pytest.approx(0.90)
    assert [x["prompt_tokens"] for x in r] == [10, 30, 50]  # the growing context is kept
    assert all(x["status"] == "completed" and x["queue_wait_s"] == 0 for x in r)
    # session completion = Σ service + Σ think (closed form)
    t = task_table(req, trace).to_pylist()
    assert len(t) == 1 and t[0]["task_id"] == "a" and t[0]["kind"] == "session"
    assert t[0]["completion_s"] == pytest.approx(3 * 0.05 + 0.75)
    assert t[0]["think_s"] == pytest.approx(0.75)
    assert t[0]["status"] == "completed" and t[0]["rounds_answered"] == 3
    assert end == pytest.approx(0.90)


def test_open_loop_rows_keep_their_arrival_times():
    # without think_s (or with NaN everywhere) the rounds overlap at their recorded times
    for trace in (_session([NAN] * 3).drop(columns="think_s"), _session([NAN] * 3)):
        rows, sim, req, _ = _sim(constant_cfg(step_s=0.01), trace)
        assert [rows[i]["arrival_s"] for i in range(3)] == [0.0, 0.001, 0.002]
        assert sim.sessions.waiting == {} and sim.log.on_complete == []
        t = task_table(req, trace).to_pylist()[0]
        assert t["status"] == "completed" and t["think_s"] == 0.0


def test_sessions_are_independent_and_first_round_think_is_ignored():
    a = _session([7.0, 0.2], prompts=(10, 20), outputs=(3, 3), arrivals=[0.0, 5.0], sid="a")
    b = _session([NAN, 0.1], prompts=(10, 20), outputs=(2, 4), arrivals=[1.0, 1.5], sid="b")
    solo = make_trace([2.0], [10], [1], session_id=[None], think_s=[0.3])
    trace = pd.concat([a, b, solo]).sort_values("arrival_s", kind="stable").reset_index(
        drop=True)
    # rows: 0 a1 @0, 1 b1 @1, 2 b2 @1.5, 3 solo @2, 4 a2 @5
    assert dependent_mask(trace).tolist() == [False, False, True, False, True]
    rows, _, req, _ = _sim(constant_cfg(step_s=0.01, count=4), trace)
    assert rows[0]["arrival_s"] == 0.0 and rows[1]["arrival_s"] == 1.0
    assert rows[3]["arrival_s"] == 2.0  # no session: open loop, think_s ignored
    assert rows[4]["arrival_s"] == rows[0]["finish_s"] + 0.2 == pytest.approx(0.23)
    assert rows[2]["arrival_s"] == rows[1]["finish_s"] + 0.1 == pytest.approx(1.12)
    tasks = {t["task_id"]: t for t in task_table(req, trace).to_pylist()}
    assert list(tasks) == ["a", "b", "request:3"]
    assert tasks["request:3"]["kind"] == "request" and tasks["request:3"]["think_s"] == 0
    assert tasks["a"]["completion_s"] == pytest.approx(0.03 + 0.2 + 0.03)
    assert tasks["a"]["think_s"] == pytest.approx(0.2)
    assert tasks["b"]["completion_s"] == pytest.approx(0.02 + 0.1 + 0.04)
    assert tasks["request:3"]["completion_s"] == pytest.approx(rows[3]["e2e_s"])


def test_unanswered_round_aborts_the_rest_of_its_session(tmp_path):
    # 4 blocks of 16 tokens: round 2's 100-token prompt can never fit -> dropped
    trace = _session([NAN, 0.5, 0.1, 0.1], prompts=(10, 100, 20, 30), outputs=(2, 2, 2, 2))
    solo = make_trace([0.01], [10], [2], session_id=[None], think_s=[NAN])
    trace = pd.concat([trace, solo]).sort_values("arrival_s", kind="stable").reset_index(
        drop=True)
    out = tmp_path
    summary = run(constant_cfg(step_s=0.01, kv_blocks=4), out, trace=trace)
    req = pq.read_table(out / "requests.parquet").to_pylist()
    # conservation: every trace row exactly once
    assert [r["request_id"] for r in req] == list(range(len(trace)))
    by = {r["request_id"]: r for r in req}
    assert by[0]["status"] == "completed"
    assert by[1]["drop_reason"] == "exceeds_kv_capacity"
    assert by[1]["arrival_s"] == by[0]["finish_s"] + 0.5
    for i in (2, 3):  # the held rounds, recorded dropped at the abort time
        assert by[i]["status"] == "dropped" and by[i]["drop_reason"] == "session_aborted"
        assert by[i]["arrival_s"] == by[1]["arrival_s"]
    assert by[4]["status"] == "completed"  # the sessionless request is unaffected
    assert summary["requests_dropped"] == 3 and summary["requests_total"] == 5
    tasks = {t["task_id"]: t for t in pq.read_table(out / "tasks.parquet").to_pylist()}
    assert tasks["a"]["status"] == "failed" and math.isnan(tasks["a"]["completion_s"])
    assert tasks["a"]["rounds"] == 4 and tasks["a"]["rounds_answered"] == 1
    assert tasks["a"]["dropped"] == 3
    # only round 1's pause (0.5 s) was taken: rounds 2 and 3 were never sent
    assert tasks["a"]["think_s"] == pytest.approx(0.5)
    assert summary["tasks_total"] == 2 and summary["tasks_failed"] == 1
    assert summary["tasks_completed"] == 1 and summary["sessions_total"] == 1
    assert summary["sessions_completed"] == 0


def test_rounds_not_sent_by_the_horizon_are_not_replayed(tmp_path):
    # round 2 would be sent at 0.05 + 0.5 > horizon 0.3; round 3's recorded time (10 s) is
    # past the horizon but it takes part as a dependent round; the open-loop row at 5 s does not
    trace = _session([NAN, 0.5, 0.1], arrivals=[0.0, 0.001, 10.0])
    late = make_trace([5.0], [10], [2], session_id=[None], think_s=[NAN])
    trace = pd.concat([trace, late]).sort_values("arrival_s", kind="stable").reset_index(
        drop=True)
    assert replayable(trace, 0.3).tolist() == [True, True, False, True]
    cfg = {**constant_cfg(step_s=0.01), "sim": {"horizon_s": 0.3}}
    out = tmp_path
    summary = run(cfg, out, trace=trace)
    req = pq.read_table(out / "requests.parquet").to_pylist()
    assert [r["request_id"] for r in req] == [0]
    assert summary["requests_beyond_horizon"] == 3
    t = pq.read_table(out / "tasks.parquet").to_pylist()
    assert [x["status"] for x in t] == ["in_flight"] and t[0]["rounds"] == 3
    assert t[0]["requests"] == 1 and t[0]["rounds_answered"] == 1
    assert t[0]["think_s"] == 0.0  # round 2 (0.5 s pause) was never sent
    # a dependent round whose predecessor is past the horizon does not take part either
    trace2 = _session([NAN, 0.1], prompts=(10, 20), outputs=(2, 2), arrivals=[1.0, 1.1])
    assert replayable(trace2, 0.5).tolist() == [False, False]


class FollowUpOnce(RoundRobin):
    """Asks one follow-up call (3 output tokens) after each original request completes."""

    def on_complete(self, request, record):
        if request.parent_id is None:
            self.fleet.submit(self.fleet.follow_up(request, output_tokens=3))


def test_round_completes_when_its_follow_up_calls_have():
    trace = _session([NAN, 0.5], prompts=(10, 30), outputs=(5, 5))
    cfg = {**constant_cfg(step_s=0.01),
           "router": {"_target_": "tests.test_sessions.FollowUpOnce"}}
    rows, _, req, _ = _sim(cfg, trace)
    assert rows[2]["parent_id"] == 0 and rows[2]["arrival_s"] == rows[0]["finish_s"]
    # a follow-up call is in its parent's session (requests.parquet's session_id)
    assert rows[2]["session_id"] == rows[0]["session_id"] == rows[1]["session_id"] is not None
    assert rows[2]["finish_s"] == pytest.approx(0.08)
    # round 2 waits for round 1's follow-up, not just its first call
    assert rows[1]["arrival_s"] == rows[2]["finish_s"] + 0.5
    t = task_table(req, trace).to_pylist()[0]
    assert t["requests"] == 4 and t["rounds"] == 2 and t["status"] == "completed"
    assert t["completion_s"] == pytest.approx(rows[3]["finish_s"])


# --- tasks.parquet ---------------------------------------------------------------------------


def test_task_cost_is_the_sum_of_its_calls(tmp_path):
    cfg = compose_cfg("workload=chat-sessions", "workload.max_requests=300",
                      "workload.source.dependent=true", "router=least-outstanding")
    summary = run(cfg, tmp_path)
    req = pq.read_table(tmp_path / "requests.parquet").to_pandas()
    tasks = pq.read_table(tmp_path / "tasks.parquet")
    assert tasks.schema.equals(TASK_SCHEMA, check_metadata=True)
    t = tasks.to_pandas().set_index("task_id")
    trace = build_workload(cfg["workload"], 0)
    # requests.parquet carries each request's session: the task it belongs to
    assert (req.session_id.to_numpy() == trace.session_id.to_numpy()[req.request_id.to_numpy()]
            ).all()
    req["task"] = req.session_id
    assert req.task.notna().all()
    assert t.requests.sum() == len(req) == summary["requests_total"]
    for col in ("cost_usd", "energy_j", "gpu_s"):
        if col not in req.columns:
            pytest.skip(f"requests.parquet has no {col} column yet")
        np.testing.assert_allclose(t[col], req.groupby("task")[col].sum().reindex(t.index),
                                   rtol=1e-12)
    done = t[t.status == "completed"]
    assert summary["tasks_completed"] == len(done) == summary["sessions_completed"]
    assert summary["cost_per_task_usd"] == pytest.approx(done.cost_usd.mean())
    assert summary["task_completion_p50_s"] == pytest.approx(done.completion_s.median())
    assert (done.completion_s >= done.think_s).all()


def test_same_seed_gives_byte_identical_tasks_parquet(tmp_path):
    cfg = compose_cfg("workload=tracelab-agent", "router=least-kv", "seed=3")
    a, b = tmp_path / "a", tmp_path / "b"
    run(cfg, a)
    run(cfg, b)
    assert (a / "tasks.parquet").read_bytes() == (b / "tasks.parquet").read_bytes()
    assert (a / "requests.parquet").read_bytes() == (b / "requests.parquet").read_bytes()


def test_tracelab_agent_runs_closed_loop_from_the_cli(tmp_path):
    cmd = [sys.executable, "-m", "wrpsim", f"hydra.run.dir={tmp_path}", "workload=tracelab-agent"]
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert p.returncode == 0, p.stderr
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["sessions_total"] == summary["sessions_completed"] == 2
    assert summary["tasks_total"] == 2 and summary["requests_completed"] == 19
    req = pq.read_table(tmp_path / "requests.parquet").to_pandas()
    trace = load_workload("tracelab-agent", 0, WORKLOADS)
    req["session"], req["think"] = trace.session_id.to_numpy(), trace.think_s.to_numpy()
    tasks = pq.read_table(tmp_path / "tasks.parquet").to_pandas().set_index("task_id")
    for s, g in req.groupby("session"):
        g = g.sort_values("arrival_s")
        # every round after the first is sent its pause after the previous round's answer
        np.testing.assert_allclose(g.arrival_s.to_numpy()[1:],
                                   g.finish_s.to_numpy()[:-1] + g.think.to_numpy()[1:],
                                   rtol=0, atol=1e-9)
        t = tasks.loc[s]
        assert t.completion_s >= t.think_s == pytest.approx(g.think.sum())
        # rounds run back to back: completion = Σ end-to-end + Σ pauses
        assert t.completion_s == pytest.approx(g.e2e_s.sum() + g.think.sum())


# --- the think_s column in the workload layer ------------------------------------------------


def _stamp(ts: str) -> float:
    return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()


def test_agent_think_time_is_the_pause_after_the_recorded_output():
    df = load_trace(TRACELAB, kind="agent_rounds", cache=False)
    validate_trace(df)
    want = {}
    by: dict[str, list] = {}
    for _, r in read_records(TRACELAB):
        by.setdefault(r["session_id"], []).append(r)
    for s, rounds in by.items():
        rounds.sort(key=lambda r: r["round_index"])
        want[s] = [NAN]
        for prev, cur in itertools.pairwise(rounds):
            ev = cur["timing_events"]
            sent = max(_stamp(e["timestamp"]) for e in ev
                       if e["event_type"] in ("user_message", "tool_result"))
            end = max(_stamp(e["timestamp"]) for e in prev["timing_events"]
                      if e["event_type"] not in ("user_message", "tool_result"))
            want[s].append(max(0.0, sent - end))
    for s, g in df.groupby("session_id", sort=False):
        np.testing.assert_allclose(g.think_s.to_numpy(), want[s], atol=1e-6)
    assert df.think_s.max() < 22 and df.think_s.min() >= 0
    assert "think_s" not in load_trace(TRACELAB, kind="agent_rounds", dependent=False).columns
    spaced = load_trace(TRACELAB, kind="agent_rounds", think_time_s=4)
    assert sorted(spaced.think_s.fillna(-1).tolist()) == [-1, -1] + [4.0] * 17
    with pytest.raises(Exception, match=r"source\.dependent must be true or false"):
        load_trace(TRACELAB, kind="agent_rounds", dependent="yes")


def test_sessions_generator_can_emit_dependent_turns():
    src = {"kind": "sessions", "num_sessions": 50, "arrivals": {"process": "poisson", "rate": 1},
           "turns": {"dist": "geometric", "mean": 3}, "think_time_s": 5.0,
           "first_prompt": {"dist": "constant", "value": 100},
           "new_tokens": {"dist": "constant", "value": 20},
           "output": {"dist": "constant", "value": 10}}
    open_loop = build_workload({"source": src}, 1)
    closed = build_workload({"source": {**src, "dependent": True}}, 1)
    assert "think_s" not in open_loop.columns
    pd.testing.assert_frame_equal(closed.drop(columns="think_s"), open_loop)
    for _, g in closed.groupby("session_id", sort=False):
        assert math.isnan(g.think_s.iloc[0])
        np.testing.assert_allclose(g.think_s.to_numpy()[1:], np.diff(g.arrival_s.to_numpy()))


def test_think_column_survives_the_cache_and_stale_caches_are_not_read(tmp_path, monkeypatch):
    monkeypatch.setenv("WRPSIM_CACHE", str(tmp_path / "cache"))
    fresh = load_trace(TRACELAB, kind="agent_rounds")
    hit = load_trace(TRACELAB, kind="agent_rounds")
    pd.testing.assert_frame_equal(fresh, hit)
    assert hit.think_s.dtype == np.float64 and hit.attrs == fresh.attrs
    # a file written under the previous schema version is ignored
    old = tmp_path / "old.parquet"
    assert write_cached(old, fresh)
    import pyarrow.parquet as pqm

    t = pqm.read_table(old)
    meta = {**t.schema.metadata, b"wrpsim.version": b"1"}
    pqm.write_table(t.replace_schema_metadata(meta), old)
    assert read_cached(old) is None


def test_validate_rejects_bad_think_times():
    df = canonical_frame(np.array([0.0, 1.0]), [5, 5], [5, 5],
                         {"session_id": ["a", "a"], "think_s": [None, -1.0]})
    assert df.think_s.dtype == np.float64 and math.isnan(df.think_s[0])
    with pytest.raises(TraceError, match=r"row 1: think_s must be NaN or a finite number >= 0"):
        validate_trace(df)


def test_generic_files_can_map_a_think_column(tmp_path):
    f = tmp_path / "t.csv"
    f.write_text("t,p,o,s,th\n0,10,5,a,\n1,20,5,a,0.5\n2,30,5,b,\n")
    cols = {"arrival_s": "t", "prompt_tokens": "p", "output_tokens": "o", "session_id": "s",
            "think_s": "th"}
    df = validate_trace(load_trace(f, kind="generic", columns=cols, cache=False))
    assert df.think_s.dtype == np.float64 and df.think_s.isna().tolist() == [True, False, True]
    assert dependent_mask(df).tolist() == [False, True, False]
    f.write_text("t,p,o,s,th\n0,10,5,a,\n1,20,5,a,soon\n")
    with pytest.raises(TraceError, match=r"line 3: field th \(think_s\): not a number: 'soon'"):
        load_trace(f, kind="generic", columns=cols, cache=False)
