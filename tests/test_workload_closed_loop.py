"""Benchmark-style workloads: closed-loop clients (`kind: closed_loop`) and constant-rate stages
(`kind: constant_rate`).

Closed-form checks run on a constant-latency pool (step δ = 0.01 s, prompts of one chunk): a
batch of requests of O output tokens admitted together finishes O·δ after it was sent.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml

from tests.conftest import compose_cfg, constant_cfg
from wrpsim.errors import ConfigError
from wrpsim.metrics.tasks import task_table
from wrpsim.rng import stream
from wrpsim.sessions import CLIENTS_ATTR, ON_DROP_ATTR, SessionDriver
from wrpsim.sim import Simulation, run
from wrpsim.workload import build_workload, draw_dist, load_workload
from wrpsim.workload.constant_rate import stage_count

ROOT = Path(__file__).resolve().parent.parent
WORKLOADS = ROOT / "workloads"
STEP = 0.01


def _closed(concurrency=4, num_requests=16, prompt=10, output=5, **extra) -> dict:
    src = {"kind": "closed_loop", "concurrency": concurrency, "num_requests": num_requests,
           "prompt_tokens": prompt, "output_tokens": output, **extra}
    return {"name": "test", "source": src}


def _rate(stages, prompt=10, output=5) -> dict:
    return {"name": "test", "source": {"kind": "constant_rate", "stages": stages,
                                       "prompt_tokens": prompt, "output_tokens": output}}


def _simulate(workload: dict, seed: int = 0, **pool):
    trace = build_workload(workload, seed, WORKLOADS)
    cfg = constant_cfg(step_s=STEP, **pool)
    cfg["seed"] = seed
    sim = Simulation(cfg, trace)
    req, _, end = sim.run()
    return trace, sim, req, req.to_pandas().set_index("request_id"), end


def _ended(r: pd.DataFrame) -> np.ndarray:
    """When each request ended: its `finish_s`, answered or dropped (never NaN here)."""
    assert not r.finish_s.isna().any()
    return r.finish_s.to_numpy()


# --- closed loop: the frame ------------------------------------------------------------------


def test_closed_loop_frame_spreads_requests_round_robin_over_clients():
    df = build_workload(_closed(3, 10, 512, 64, think_s=0.5), 0, WORKLOADS)
    assert len(df) == 10 and (df.arrival_s == 0).all()
    assert df.session_id.tolist() == [f"client-{i % 3}" for i in range(10)]
    assert df.think_s.isna().tolist() == [True] * 3 + [False] * 7
    assert (df.think_s.dropna() == 0.5).all()
    assert (df.prompt_tokens == 512).all() and (df.output_tokens == 64).all()
    assert df.attrs[ON_DROP_ATTR] == "continue"
    # fewer requests than clients: only that many clients, each sends one request
    few = build_workload(_closed(8, 3), 0, WORKLOADS)
    assert few.session_id.tolist() == ["client-0", "client-1", "client-2"]
    assert few.think_s.isna().all()


def test_closed_loop_lengths_from_a_distribution_are_seeded():
    prompt = {"dist": "lognormal", "mean": 300, "sigma": 0.5, "max": 2000}
    output = {"dist": "geometric", "mean": 20}
    wl = _closed(4, 200, prompt, output)
    a = build_workload(wl, 7, WORKLOADS)
    pd.testing.assert_frame_equal(a, build_workload(wl, 7, WORKLOADS))
    assert not a.prompt_tokens.equals(build_workload(wl, 8, WORKLOADS).prompt_tokens)
    # the documented streams, drawn in request order
    np.testing.assert_array_equal(a.prompt_tokens,
                                  draw_dist(prompt, stream(7, "workload.lengths"), 200))
    np.testing.assert_array_equal(a.output_tokens,
                                  draw_dist(output, stream(7, "workload.lengths.output"), 200))
    # a fixed length next to a distribution leaves the other stream's draws unchanged
    mixed = build_workload(_closed(4, 200, 128, output), 7, WORKLOADS)
    assert (mixed.prompt_tokens == 128).all()
    np.testing.assert_array_equal(mixed.output_tokens, a.output_tokens)


def test_shipped_closed_loop_yaml():
    df = load_workload("closed-loop", 0, WORKLOADS)
    cfg = yaml.safe_load((WORKLOADS / "closed-loop.yaml").read_text())["source"]
    assert cfg["kind"] == "closed_loop" and len(df) == cfg["num_requests"]
    assert df.session_id.nunique() == cfg["concurrency"]
    assert load_workload("closed-loop", 0, WORKLOADS, max_requests=40).session_id.nunique() \
        == min(40, cfg["concurrency"])


def test_repeats_send_the_list_again_with_the_same_prompts_and_ids():
    """`repeats: R`: request i repeats listed prompt i mod U (U = n / R) — its length and its
    prefix ids —, each output its own draw; R = 1 is the frame without the key (no ids)."""
    prompt = {"dist": "lognormal", "mean": 300, "sigma": 0.5, "max": 2000}
    output = {"dist": "geometric", "mean": 20}
    df = build_workload(_closed(4, 12, prompt, output, repeats=3), 5, WORKLOADS)
    u = 4
    p = df.prompt_tokens.to_numpy()
    np.testing.assert_array_equal(p, np.tile(p[:u], 3))
    np.testing.assert_array_equal(p[:u], draw_dist(prompt, stream(5, "workload.lengths"), u))
    np.testing.assert_array_equal(df.output_tokens,
                                  draw_dist(output, stream(5, "workload.lengths.output"), 12))
    ids = df.hash_ids.tolist()
    assert all(ids[i] == ids[i % u] for i in range(12))
    assert [len(x) for x in ids[:u]] == [-(-int(n) // 16) for n in p[:u]]  # one id a 16 tokens
    assert len({x[0] for x in ids[:u]}) == u  # the listed prompts share nothing
    assert df.attrs["hash_block_tokens"] == 16
    plain = build_workload(_closed(4, 12, prompt, output), 5, WORKLOADS)
    pd.testing.assert_frame_equal(build_workload(_closed(4, 12, prompt, output, repeats=1), 5,
                                                 WORKLOADS), plain)
    assert "hash_ids" not in plain.columns


@pytest.mark.parametrize("extra, pattern", [
    ({"repeats": 5}, r"^workload\.source\.repeats \(5\) must divide "
                     r"workload\.source\.num_requests \(12\)"),
    ({"repeats": 0}, r"^workload\.source\.repeats must be an integer >= 1"),
    ({"repeats": 1.5}, r"^workload\.source\.repeats must be an integer >= 1"),
])
def test_bad_repeats_are_one_error(extra, pattern):
    with pytest.raises(ConfigError, match=pattern):
        build_workload(_closed(4, 12, **extra), 0, WORKLOADS)


def test_repeats_refuse_synthetic_prefix_ids():
    wl = {**_closed(4, 12, repeats=2), "prefix_ids": "synthetic"}
    with pytest.raises(ConfigError, match=r"prefix_ids: synthetic would replace the ids that "
                                          r"source\.repeats gives"):
        build_workload(wl, 0, WORKLOADS)


def test_a_repeated_prompt_is_served_from_the_prefix_cache():
    """On one instance with a prefix cache every repeat of a 512-token prompt skips its full
    blocks (it was computed before the repeat is admitted: the list's first pass comes first)."""
    cfg = compose_cfg("workload=closed-loop", "workload.source.concurrency=4",
                      "workload.source.num_requests=16", "workload.source.repeats=2",
                      "workload.source.prompt_tokens=512", "workload.source.output_tokens=8",
                      "pool.pools.h100.count=1", "pool.pools.h100.prefix_cache.enabled=true")
    trace = build_workload(cfg["workload"], 0, WORKLOADS)
    req = Simulation(cfg, trace).run()[0].to_pandas().sort_values("request_id")
    hits = req.prefix_hit_tokens.to_numpy()
    assert (hits[:8] == 0).all() and (hits[8:] == 496).all()  # 31 of 32 blocks: one token is
    # always computed


# --- closed loop: the simulation --------------------------------------------------------------


@pytest.mark.parametrize("c, think", [(1, 0.0), (4, 0.0), (4, 0.5), (3, 0.25)])
def test_closed_loop_throughput_is_the_closed_form(c, think):
    k, out = 5, 5  # rounds per client, output tokens: every request takes out·δ
    *_, r, end = _simulate(_closed(c, k * c, 10, out, think_s=think))
    service = out * STEP
    assert (r.status == "completed").all() and len(r) == k * c
    np.testing.assert_allclose(r.e2e_s, service, rtol=1e-9)
    # the clients run in lockstep: round j of every client is sent at j·(service + think)
    np.testing.assert_allclose(r.arrival_s, (np.arange(k * c) // c) * (service + think),
                               rtol=0, atol=1e-9)
    assert end == pytest.approx(k * service + (k - 1) * think)
    # Little's law, measured: throughput × (mean e2e + mean pause taken) = concurrency
    throughput = len(r) / end
    assert throughput == pytest.approx(k * c / (k * service + (k - 1) * think))
    assert throughput * (r.e2e_s.mean() + think * (k - 1) / k) == pytest.approx(c)


def test_closed_loop_never_has_more_than_concurrency_requests_in_the_system():
    wl = _closed(5, 120, {"dist": "uniform", "low": 10, "high": 400},
                 {"dist": "geometric", "mean": 12}, think_s=0.02)
    trace, _, req, r, end = _simulate(wl, count=2, token_budget=256)
    assert (r.status == "completed").all()
    # requests in the system (sent, not finished) over time, from the arrival / finish events
    times = np.concatenate([r.arrival_s, r.finish_s])
    step = np.concatenate([np.ones(len(r)), -np.ones(len(r))])
    order = np.lexsort((step, times))  # a finish before a send at the same instant
    in_system = np.cumsum(step[order])
    assert in_system.max() == 5 and in_system.min() >= 0
    # every client (the session that sent it): first request at 0, each next one think_s
    # after the previous one ended
    for _, g in r.groupby("session_id"):
        assert g.arrival_s.iloc[0] == 0.0
        np.testing.assert_allclose(g.arrival_s.to_numpy()[1:], _ended(g)[:-1] + 0.02,
                                   rtol=0, atol=1e-12)
    # one list behind the clients: request c + j is sent think_s after the j-th end of all
    ends = np.sort(_ended(r))[:120 - 5]
    np.testing.assert_allclose(r.arrival_s.to_numpy()[5:], ends + 0.02, rtol=0, atol=1e-12)
    # finite-run Little's law: Σ client run times = Σ e2e + Σ think pauses
    tasks = task_table(req, trace).to_pandas()
    assert len(tasks) == 5 and (tasks.status == "completed").all()
    assert tasks.completion_s.sum() == pytest.approx(r.e2e_s.sum() + 0.02 * (120 - 5))
    assert (tasks.first_arrival_s == 0).all() and tasks.finish_s.max() == pytest.approx(end)


def test_a_dropped_request_does_not_end_its_client():
    # 4 KV blocks of 16 tokens: prompts above 64 tokens can never be served (dropped at once)
    wl = _closed(2, 24, {"dist": "uniform", "low": 10, "high": 100}, 3, think_s=0.1)
    trace, sim, req, r, _ = _simulate(wl, kv_blocks=4)
    assert len(r) == 24 and set(r.status) == {"completed", "dropped"}
    assert set(r.drop_reason.dropna()) == {"exceeds_kv_capacity"}  # no session_aborted
    assert sim.sessions.aborted == 0
    for _, g in r.groupby("session_id"):
        np.testing.assert_allclose(g.arrival_s.to_numpy()[1:], _ended(g)[:-1] + 0.1,
                                   rtol=0, atol=1e-12)
    # a client with a dropped request is a failed task, as a session with an unanswered round
    tasks = task_table(req, trace).to_pandas().set_index("task_id")
    assert tasks.rounds.sum() == 24 and (tasks.requests == tasks.rounds).all()
    assert tasks.rounds.tolist() == r.groupby("session_id").size().tolist()
    assert tasks.dropped.sum() == (r.status == "dropped").sum()
    assert ((tasks.status == "failed") == (tasks.dropped > 0)).all()


def test_a_dropped_row_says_when_it_was_dropped_and_its_client_resumes_think_s_later(tmp_path):
    # the default fleet's front end tokenizes a prompt before the context check drops it, so
    # a request dropped for its context ends after it was sent; finish_s says when
    cfg = compose_cfg("workload=closed-loop", "workload.source.concurrency=4",
                      "workload.source.num_requests=12", "workload.source.think_s=0.5",
                      "workload.source.prompt_tokens={dist: uniform, low: 1000, high: 250000}",
                      "workload.source.output_tokens=16")
    run(cfg, tmp_path)
    r = pq.read_table(tmp_path / "requests.parquet").to_pandas().sort_values("request_id")
    drop = r[r.status == "dropped"]
    assert len(drop) and set(drop.drop_reason) == {"context"}
    assert (drop.finish_s > drop.arrival_s).all()
    latencies = drop[["queue_wait_s", "ttft_s", "tpot_s", "e2e_s", "first_token_s"]]
    assert latencies.isna().to_numpy().all()
    for _, g in r.groupby("session_id"):
        np.testing.assert_allclose(g.arrival_s.to_numpy()[1:], g.finish_s.to_numpy()[:-1] + 0.5,
                                   rtol=0, atol=1e-9)


def test_agent_sessions_still_abort_on_an_unanswered_round():
    wl = _closed(2, 24, {"dist": "uniform", "low": 10, "high": 100}, 3, think_s=0.1)
    trace = build_workload(wl, 0, WORKLOADS)
    trace.attrs.pop(ON_DROP_ATTR)  # the defaults: abort, each session its own rounds
    trace.attrs.pop(CLIENTS_ATTR)
    sim = Simulation(constant_cfg(step_s=STEP, kv_blocks=4), trace)
    r = sim.run()[0].to_pandas()
    assert len(r) == 24 and "session_aborted" in set(r.drop_reason.dropna())
    with pytest.raises(ConfigError, match=r"session_on_drop.*valid choices: abort, continue"):
        SessionDriver(sim.env, sim.fleet, sim.log, None, [], on_drop="retry")
    with pytest.raises(ConfigError, match=r"session_clients.*valid choices: own, shared"):
        SessionDriver(sim.env, sim.fleet, sim.log, None, [], clients="pool")


def test_closed_loop_with_a_horizon_stops_sending():
    wl = _closed(4, 400, 10, 5)
    trace = build_workload(wl, 0, WORKLOADS)
    cfg = constant_cfg(step_s=STEP)
    cfg["sim"] = {"horizon_s": 0.12}
    sim = Simulation(cfg, trace)
    r = sim.run()[0].to_pandas()
    # rounds sent at 0, 0.05, 0.10; the last still running at the horizon
    assert len(r) == 12 and r.arrival_s.max() == pytest.approx(0.10)
    assert (r.status == "in_flight").sum() == 4
    assert sim.beyond_horizon == 400 - 12


def test_closed_loop_is_deterministic_for_a_seed(tmp_path):
    wl = _closed(3, 30, {"dist": "lognormal", "mean": 200, "sigma": 1.0, "max": 1000},
                 {"dist": "geometric", "mean": 8}, think_s=0.01)
    cfg = {**constant_cfg(step_s=STEP, count=2), "workload": wl, "seed": 4}
    run(cfg, tmp_path / "a")
    run(cfg, tmp_path / "b")
    for name in ("requests.parquet", "tasks.parquet"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_closed_loop_workload_runs_from_the_cli(tmp_path):
    cmd = [sys.executable, "-m", "wrpsim", f"hydra.run.dir={tmp_path}", "workload=closed-loop",
           "workload.source.concurrency=4", "workload.source.num_requests=40",
           "workload.source.prompt_tokens=256", "workload.source.output_tokens=16",
           "workload.source.think_s=0.5"]
    # this checkout's package, even where another checkout is the installed one
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, timeout=120, env=env)
    assert p.returncode == 0, p.stderr
    s = json.loads((tmp_path / "summary.json").read_text())
    assert s["workload"] == "closed-loop" and s["requests_completed"] == 40
    assert s["sessions_total"] == s["sessions_completed"] == 4
    r = pq.read_table(tmp_path / "requests.parquet").to_pandas().sort_values("request_id")
    assert (r.arrival_s.to_numpy()[:4] == 0).all()
    client = np.arange(40) % 4
    for k in range(4):
        g = r[client == k]
        np.testing.assert_allclose(g.arrival_s.to_numpy()[1:], g.finish_s.to_numpy()[:-1] + 0.5,
                                   rtol=0, atol=1e-9)
    # Little's law over the run: 4 clients busy for the whole run, within the last round
    x = 40 / s["duration_s"]
    assert x * (r.e2e_s.mean() + 0.5 * 36 / 40) == pytest.approx(4, rel=0.02)


# --- constant-rate stages ---------------------------------------------------------------------


def test_constant_rate_arrivals_are_exactly_spaced_stage_after_stage():
    wl = _rate([{"rate": 4, "duration_s": 2}, {"rate": 0.5, "duration_s": 5},
                {"rate": 10, "duration_s": 0.35}])
    wl["source"]["spacing"] = "even"
    df = build_workload(wl, 0, WORKLOADS)
    want = np.concatenate([np.arange(8) / 4, 2 + np.arange(3) / 0.5, 7 + np.arange(4) / 10])
    np.testing.assert_array_equal(df.arrival_s.to_numpy(), want)
    assert (df.prompt_tokens == 10).all() and "session_id" not in df.columns
    assert [stage_count(0.1, 30), stage_count(3, 1), stage_count(0.3, 1)] == [3, 3, 1]


def test_constant_rate_stages_space_requests_as_inference_perf_does():
    """inference-perf's ConstantLoadTimer (the default spacing): int(rate x duration)
    requests a stage, exponential gaps scaled to sum to the stage's duration — so the last
    request of a stage is at its end, the first one gap after its start, the gaps' coefficient
    of variation about 1 (a Poisson process at the stage's mean rate), not even spacing; seeded
    by the run's workload.arrivals stream. A stage it would run empty is an error."""
    wl = _rate([{"rate": 20, "duration_s": 100}, {"rate": 2.5, "duration_s": 1}])
    df = build_workload(wl, 0, WORKLOADS)
    t = df.arrival_s.to_numpy()
    assert len(t) == 2000 + int(2.5 * 1) == 2002  # (even spacing: ceil, 2,003)
    assert [stage_count(2.5, 1, "inference_perf"), stage_count(2.3, 10, "inference_perf")] == [
        2, int(2.3 * 10)]  # (Python's truncation of the float product: 22, as inference-perf)
    assert np.all(np.diff(t) > 0) and 0 < t[0] < 0.5
    assert t[1999] == pytest.approx(100.0, abs=1e-9) and t[-1] == pytest.approx(101.0, abs=1e-9)
    gaps = np.diff(np.concatenate([[0.0], t[:2000]]))
    assert gaps.mean() == pytest.approx(0.05, rel=1e-9)
    assert 0.9 < gaps.std() / gaps.mean() < 1.1
    np.testing.assert_array_equal(build_workload(wl, 0, WORKLOADS).arrival_s, df.arrival_s)
    assert not np.array_equal(build_workload(wl, 1, WORKLOADS).arrival_s.to_numpy(), t)
    with pytest.raises(ConfigError, match=r"workload\.source\.stages\[0\]: rate x duration_s = "
                                          r"0\.5 < 1: inference-perf sends int\(rate x "
                                          r"duration_s\) = 0 requests"):
        build_workload(_rate([{"rate": 0.5, "duration_s": 1}]), 0, WORKLOADS)
    wl["source"]["spacing"] = "poisson"
    with pytest.raises(ConfigError, match=r"workload\.source\.spacing: unknown value 'poisson'; "
                                          r"valid choices: even, inference_perf"):
        build_workload(wl, 0, WORKLOADS)


def test_constant_rate_requests_arrive_at_their_times_in_the_simulation():
    wl = _rate([{"rate": 50, "duration_s": 0.2}, {"rate": 200, "duration_s": 0.1}], 10,
               {"dist": "uniform", "low": 2, "high": 8})
    trace, _, _, r, _ = _simulate(wl)
    np.testing.assert_array_equal(r.arrival_s.to_numpy(), trace.arrival_s.to_numpy())
    assert len(r) == 10 + 20 and (r.status == "completed").all()
    # rate_scale scales every stage's rate
    fast = build_workload({**wl, "rate_scale": 2.0}, 0, WORKLOADS)
    np.testing.assert_allclose(fast.arrival_s, trace.arrival_s / 2)


def test_shipped_constant_rate_yaml():
    df = load_workload("constant-rate", 0, WORKLOADS)
    assert len(df) == 2 * 60 + 4 * 60 + 8 * 60
    t = df.arrival_s.to_numpy()
    assert t[119] == pytest.approx(60.0) and t[359] == pytest.approx(120.0)
    assert np.diff(t[:120]).std() > 0.2  # (inference-perf's gaps, not 0.5 s apart)


# --- bad input --------------------------------------------------------------------------------


BAD_CLOSED = [
    ({"concurency": 4}, r"workload\.source: unknown key\(s\) \['concurency'\]; valid keys: "
                        r"kind, concurrency, num_requests"),
    ({"concurrency": 2.5}, r"workload\.source\.concurrency must be an integer >= 1"),
    ({"concurrency": 0}, r"workload\.source\.concurrency must be an integer >= 1"),
    ({"concurrency": True}, r"workload\.source\.concurrency must be an integer"),
    ({"concurrency": "8"}, r"workload\.source\.concurrency must be an integer"),
    ({"concurrency": None}, r"workload\.source\.concurrency must be an integer"),
    ({"num_requests": -1}, r"workload\.source\.num_requests must be an integer >= 1"),
    ({"think_s": -1}, r"workload\.source\.think_s must be a finite number >= 0"),
    ({"think_s": float("inf")}, r"workload\.source\.think_s must be a finite number >= 0"),
    ({"prompt_tokens": 0}, r"workload\.source\.prompt_tokens: an integer in "
                           r"\[1, 9007199254740991\] \(2\^53 - 1\) or a distribution"),
    ({"prompt_tokens": 12.5}, r"workload\.source\.prompt_tokens: an integer in \[1, "),
    ({"prompt_tokens": 1e20}, r"workload\.source\.prompt_tokens: an integer in "
                              r"\[1, 9007199254740991\].*got 1e\+20"),
    ({"prompt_tokens": float("inf")}, r"workload\.source\.prompt_tokens: an integer in \[1, "),
    ({"prompt_tokens": {"dist": "lognormal", "mean": 1024, "sigma": 1, "max": "abc"}},
     r"workload\.source\.prompt_tokens\.max: a number is required for dist lognormal, "
     r"got 'abc'"),
    ({"prompt_tokens": {"dist": "lognormal", "mean": 1024, "sigma": 1, "max": float("nan")}},
     r"workload\.source\.prompt_tokens\.max must be a finite number >= 1 and <= "
     r"9007199254740991 \(2\^53 - 1\), got nan"),
    ({"prompt_tokens": {"dist": "lognormal", "mean": float("nan"), "sigma": 1}},
     r"workload\.source\.prompt_tokens\.mean must be a finite number >= 1 .*got nan"),
    ({"prompt_tokens": {"dist": "lognormal", "mean": 1e30, "sigma": 1}},
     r"workload\.source\.prompt_tokens\.mean must be a finite number >= 1 and <= "
     r"9007199254740991 \(2\^53 - 1\), got 1e\+30"),
    ({"prompt_tokens": {"dist": "lognormal", "mean": 10, "sigma": float("inf")}},
     r"workload\.source\.prompt_tokens\.sigma must be a finite number >= 0 .*got inf"),
    ({"prompt_tokens": {"dist": "constant", "value": float("inf")}},
     r"workload\.source\.prompt_tokens\.value must be an integer >= 1 and <= "
     r"9007199254740991 \(2\^53 - 1\) for dist constant, got inf"),
    ({"prompt_tokens": {"dist": "constant", "value": 12.5}},
     r"workload\.source\.prompt_tokens\.value must be an integer .*got 12\.5"),
    ({"prompt_tokens": {"dist": "geometric", "mean": float("inf")}},
     r"workload\.source\.prompt_tokens\.mean must be a finite number >= 1 .*got inf"),
    ({"prompt_tokens": {"dist": "exponential", "mean": 0.5}},
     r"workload\.source\.prompt_tokens\.mean must be a finite number >= 1 .*got 0\.5"),
    ({"prompt_tokens": {"dist": "uniform", "low": 1, "high": 1e30}},
     r"workload\.source\.prompt_tokens\.high must be an integer >= 1 and <= "
     r"9007199254740991 \(2\^53 - 1\) for dist uniform, got 1e\+30"),
    ({"prompt_tokens": {"dist": "uniform", "low": 1.5, "high": 2.9}},
     r"workload\.source\.prompt_tokens\.low must be an integer .*got 1\.5"),
    ({"output_tokens": {"dist": "uniform", "low": 1, "high": True}},
     r"workload\.source\.output_tokens\.high: a number is required for dist uniform"),
    ({"output_tokens": None}, r"workload\.source\.output_tokens is required"),
    ({"output_tokens": {"dist": "zipf"}}, r"workload\.source\.output_tokens\.dist: unknown "
                                          r"value 'zipf'; valid choices: constant"),
    ({"output_tokens": {"dist": "geometric", "mean": 5, "sd": 1}},
     r"workload\.source\.output_tokens\.sd: unknown key; valid keys for dist geometric: "
     r"dist, max, mean"),
    ({"output_tokens": {"foo": 1}}, r"workload\.source\.output_tokens: a fitted distribution "
                                   r"needs dist, one of constant"),
    ({"prompt_tokens": {"cdf": "x.csv"}}, r"workload\.source\.prompt_tokens: an empirical CDF "
                                         r"is not accepted here; a fitted distribution needs dist"),
]


def test_a_source_key_at_the_top_level_points_at_workload_source():
    wl = _closed()
    for key, value in (("concurrency", 4), ("think_s", 1)):
        with pytest.raises(ConfigError, match=rf"workload\.{key}: unknown key '{key}'; valid "
                           rf"keys: .*; did you mean workload\.source\.{key}\?$"):
            build_workload({**wl, key: value}, 0, WORKLOADS)
    with pytest.raises(ConfigError, match=r"workload\.concurrency: .*did you mean 'accuracy'"):
        build_workload({**_rate([{"rate": 1, "duration_s": 1}]), "concurrency": 4}, 0, WORKLOADS)


@pytest.mark.parametrize("patch, message", BAD_CLOSED, ids=[str(p) for p, _ in BAD_CLOSED])
def test_bad_closed_loop_input_is_one_line(patch, message):
    wl = _closed()
    wl["source"].update(patch)
    with pytest.raises(ConfigError, match=message) as e:
        build_workload(wl, 0, WORKLOADS)
    assert "\n" not in str(e.value)


BAD_RATE = [
    ([], r"workload\.source\.stages: a non-empty list"),
    (None, r"workload\.source\.stages: a non-empty list"),
    ({"rate": 1, "duration_s": 1}, r"workload\.source\.stages: a non-empty list"),
    ([{"rate": 0, "duration_s": 1}],
     r"workload\.source\.stages\[0\]\.rate must be a finite number > 0"),
    ([{"rate": float("inf"), "duration_s": 5}],
     r"workload\.source\.stages\[0\]\.rate must be a finite number > 0, got inf"),
    ([{"rate": 1, "duration_s": float("inf")}],
     r"stages\[0\]\.duration_s must be a finite number > 0, got inf"),
    ([{"rate": 1, "duration_s": 1}, {"rate": -2, "duration_s": 1}],
     r"workload\.source\.stages\[1\]\.rate must be a finite number > 0"),
    ([{"rate": 1, "duration_s": 0}], r"stages\[0\]\.duration_s must be a finite number > 0"),
    ([{"rate": 1}], r"stages\[0\]\.duration_s must be a finite number > 0, got None"),
    ([{"rate": 1, "duration_s": 1, "ramp": 2}],
     r"workload\.source\.stages\[0\]: unknown key\(s\) \['ramp'\]; valid keys: rate, duration_s"),
    ([5], r"workload\.source\.stages\[0\]: expected a mapping"),
    ([{"rate": 1e6, "duration_s": 1e6}], r"workload\.source\.stages: more than"),
]


@pytest.mark.parametrize("stages, message", BAD_RATE, ids=[str(s) for s, _ in BAD_RATE])
def test_bad_constant_rate_input_is_one_line(stages, message):
    with pytest.raises(ConfigError, match=message) as e:
        build_workload(_rate(stages), 0, WORKLOADS)
    assert "\n" not in str(e.value)


def test_constant_rate_unknown_key_and_bad_kind():
    wl = _rate([{"rate": 1, "duration_s": 1}])
    wl["source"]["concurrency"] = 4
    with pytest.raises(ConfigError, match=r"workload\.source: unknown key\(s\) \['concurrency'\]; "
                                          r"valid keys: kind, stages, spacing, prompt_tokens"):
        build_workload(wl, 0, WORKLOADS)
    wl = _closed()
    wl["source"]["kind"] = "closed-loop"
    with pytest.raises(ConfigError, match=r"workload\.source\.kind: unknown value "
                                          r"'closed-loop'; valid choices: .*closed_loop, "
                                          r"constant_rate"):
        build_workload(wl, 0, WORKLOADS)


@pytest.mark.parametrize("key, value, message", [
    ("rate_scale", 2.0, r"workload\.rate_scale: a closed_loop source sends as fast"),
    ("start_s", 10.0, r"workload\.start_s: a closed_loop source has no arrival schedule"),
    ("end_s", 10.0, r"workload\.end_s: a closed_loop source has no arrival schedule"),
    ("prefix_ids", "session", r"workload\.prefix_ids: session would chain"),
])
def test_closed_loop_rejects_transforms_it_cannot_honour(key, value, message):
    with pytest.raises(ConfigError, match=message):
        build_workload({**_closed(), key: value}, 0, WORKLOADS)
    ok = build_workload({**_closed(), "rate_scale": 1.0, "prefix_ids": "synthetic"}, 0, WORKLOADS)
    assert ok.hash_ids.notna().all() and ok.attrs[ON_DROP_ATTR] == "continue"


def test_a_null_key_of_a_merged_length_mapping_is_dropped():
    """`workload.source.lengths.prompt={dist: geometric, mean: 300}` on a workload whose own
    mapping is a lognormal is merged by Hydra into {dist: geometric, mean: 300, sigma: 1.0}:
    the error says how to drop the old key, and a null drops it."""
    from wrpsim.errors import ConfigError
    from wrpsim.workload.lengths import check_dist

    with pytest.raises(ConfigError, match=r"\.sigma: unknown key; valid keys for dist geometric:"
                       r" dist, max, mean \(.*merged into the workload's own: add sigma: null"):
        check_dist({"dist": "geometric", "mean": 300, "sigma": 1.0}, "p")
    assert check_dist({"dist": "geometric", "mean": 300, "sigma": None}, "p") == {
        "dist": "geometric", "mean": 300}


def test_a_run_past_512_sequences_a_step_is_told_its_decode_times_are_optimistic(tmp_path):
    """Above 512 decoding sequences a step wrpsim's decode times were measured against one
    engine only and came out about a fifth short (docs/validation.md): a run whose pool's
    busiest instance averages more over its decode steps is warned once, naming the pool and
    that batch — also under a scheduler that never mixes prompts into decode steps, whose many
    prefill-only iterations must not dilute it; a light run, and the same load on a
    constant-latency pool (no kernel tables to be wrong), are not."""
    from wrpsim.errors import WrpsimWarning

    big = ("workload=closed-loop", "workload.source.concurrency=1024",
           "workload.source.num_requests=2048", "workload.source.prompt_tokens=32",
           "workload.source.output_tokens=512", "pool.pools.h100.count=1",
           "pool.pools.h100.scheduler.max_seqs=1024")
    for i, extra in enumerate(([], ["pool.pools.h100.scheduler.policy=vllm",
                                    "workload.source.output_tokens=64",
                                    "workload.source.num_requests=8192"])):
        with pytest.warns(WrpsimWarning, match=r"pool h100: its busiest instance ran [\d,]+ "
                                               r"decoding sequences a step on average; above "
                                               r"512 sequences a step") as got:
            run(compose_cfg(*big, *extra), tmp_path / f"big{i}")
        assert sum("above 512 sequences a step" in str(w.message) for w in got) == 1
        t = pq.read_table(tmp_path / f"big{i}" / "instances.parquet").to_pylist()[0]
        assert t["decode_tokens"] / t["decode_iterations"] > 512
        if extra:  # most iterations prefill only: the mean over all of them is far below 512
            assert t["decode_tokens"] / t["iterations"] < 512
    light = compose_cfg(*big[:1], "workload.source.concurrency=64",
                        "workload.source.num_requests=128", *big[3:])
    const = compose_cfg(*big, "+pool.pools.h100.latency={kind: constant, decode_step_s: 0.02}",
                        "+pool.pools.h100.kv_blocks=100000")
    for i, cfg in enumerate((light, const)):
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            run(cfg, tmp_path / f"other{i}")
        assert not any("above 512 sequences a step" in str(w.message) for w in seen)
