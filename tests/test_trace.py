"""The optional Chrome/Perfetto trace: one slice per iteration stretch, transfers on thread 1."""

from __future__ import annotations

import json

import pytest

from tests.conftest import constant_cfg, make_trace
from tests.test_disaggregation import disagg_cfg
from wrpsim.sim import run


def test_trace_slices_cover_exactly_the_busy_time(tmp_path):
    cfg = constant_cfg(step_s=0.01, count=2)
    cfg["sim"] = {"trace": True}
    trace = make_trace([0.0, 0.025, 0.03, 0.2], [10, 10, 300, 5], [5, 3, 8, 2])
    run(cfg, tmp_path, trace)
    events = json.loads((tmp_path / "trace.json").read_text())["traceEvents"]
    names = {e["args"]["name"] for e in events if e["name"] == "process_name"}
    assert names == {"p/0", "p/1"}
    import pyarrow.parquet as pq

    busy = {(r["pool"], r["instance"]): r["busy_s"]
            for r in pq.read_table(tmp_path / "instances.parquet").to_pylist()}
    pids = {e["pid"]: e["args"]["name"] for e in events if e["name"] == "process_name"}
    for pid, name in pids.items():
        total = sum(e["dur"] for e in events if e["ph"] == "X" and e["pid"] == pid)
        pool, _, idx = name.partition("/")
        assert total / 1e6 == pytest.approx(busy[(pool, int(idx))], rel=1e-9)


def _kv_spans(tmp_path) -> list[tuple[dict, dict]]:
    """(begin, end) event pairs of the KV transfers in trace.json, by request id."""
    events = json.loads((tmp_path / "trace.json").read_text())["traceEvents"]
    begin = {e["id"]: e for e in events if e["ph"] == "b" and e["tid"] == 1}
    end = {e["id"]: e for e in events if e["ph"] == "e" and e["tid"] == 1}
    assert begin.keys() == end.keys()
    assert not [e for e in events if e["ph"] == "X" and e["tid"] == 1]
    return [(begin[k], end[k]) for k in sorted(begin)]


@pytest.mark.parametrize("mode", ["serialized", "layerwise"])
def test_trace_shows_kv_transfers_of_prefill_instances_from_first_to_last_byte(tmp_path, mode):
    """A transfer is an async span from its first byte to its last: serialized, the whole KV
    at the NIC's rate after the prompt; layer-wise, from the start of the prompt's iteration
    (layers leave as they are computed). Its args carry the bytes and requests.parquet's
    kv_transfer_s (prompt done -> arrival)."""
    import pyarrow.parquet as pq

    cfg = disagg_cfg(mode, 100.0)
    cfg["sim"] = {"trace": True}
    run(cfg, tmp_path, make_trace([0.0], [4096], [3]))
    ((b, e),) = _kv_spans(tmp_path)
    assert b["name"] == e["name"] == "kv -> dec/0" and b["cat"] == "kv" and b["id"] == 0
    nbytes = 4096 * 131072
    assert b["args"]["bytes"] == nbytes
    row = pq.read_table(tmp_path / "requests.parquet").to_pylist()[0]
    assert b["args"]["kv_transfer_s"] == pytest.approx(row["kv_transfer_s"], rel=1e-12)
    wire = nbytes / 12.5e9
    if mode == "serialized":  # starts when the prompt is done (0.08 s), lasts bytes / rate
        assert b["ts"] == pytest.approx(0.08e6, rel=1e-12)
        assert e["ts"] - b["ts"] == pytest.approx(wire * 1e6, rel=1e-9)
    else:  # starts with the prompt's iteration; only the tail past its end is exposed
        assert b["ts"] == 0.0
        assert e["ts"] / 1e6 == pytest.approx(0.08 + row["kv_transfer_s"], rel=1e-9)
        assert row["kv_transfer_s"] < wire


def test_overlapping_kv_transfers_are_separate_spans(tmp_path):
    """Two prompts finishing in one iteration send at once: two spans that overlap in time,
    told apart by their ids."""
    cfg = disagg_cfg("layerwise", 100.0)
    cfg["sim"] = {"trace": True}
    run(cfg, tmp_path, make_trace([0.0, 0.0], [2048, 2048], [3, 3]))
    (b0, e0), (b1, e1) = _kv_spans(tmp_path)
    assert (b0["id"], b1["id"]) == (0, 1)
    assert b1["ts"] < e0["ts"] and b0["ts"] < e1["ts"]  # they overlap


def _iterations_and_busy(tmp_path) -> tuple[dict, dict]:
    """{instance name: (iterations, busy s)} from trace.json's iteration slices ("decode xN"
    counts N) and from instances.parquet."""
    import pyarrow.parquet as pq

    events = json.loads((tmp_path / "trace.json").read_text())["traceEvents"]
    pids = {e["pid"]: e["args"]["name"] for e in events if e["name"] == "process_name"}
    traced = {name: [0, 0.0] for name in pids.values()}
    for e in events:
        if e["ph"] == "X" and e["tid"] == 0:
            n = e["name"]
            t = traced[pids[e["pid"]]]
            t[0] += int(n.removeprefix("decode x")) if n.startswith("decode x") else 1
            t[1] += e["dur"] / 1e6
    rows = {f"{r['pool']}/{r['instance']}": (r["iterations"], r["busy_s"])
            for r in pq.read_table(tmp_path / "instances.parquet").to_pylist()}
    return {k: tuple(v) for k, v in traced.items()}, rows


def _one_answer_stopped(tmp_path, failure_at_s=None, horizon_s=None) -> list:
    """One 100-token answer at 0.1 s per iteration (a 0.1 s prefill, then one decode run from
    0.1 s) on an instance that fails at `failure_at_s`, or in a run that ends at `horizon_s`:
    its iteration slices, checked to add up to instances.parquet."""
    cfg = constant_cfg(step_s=0.1, count=1)
    cfg["sim"] = {"trace": True, **({"horizon_s": horizon_s} if horizon_s is not None else {})}
    if failure_at_s is not None:
        cfg["failures"] = {"policy": "drop", "events": [
            {"pool": "p", "instance": 0, "at_s": failure_at_s, "down_s": 1.0}]}
    run(cfg, tmp_path, make_trace([0.0], [10], [100]))
    traced, rows = _iterations_and_busy(tmp_path)
    assert traced["p/0"][0] == rows["p/0"][0]
    assert traced["p/0"][1] == pytest.approx(rows["p/0"][1], rel=1e-9, abs=1e-12)
    events = json.loads((tmp_path / "trace.json").read_text())["traceEvents"]
    return [(e["name"], e["ts"] / 1e6, e["dur"] / 1e6) for e in events
            if e["ph"] == "X" and e["tid"] == 0]


def test_a_failure_cuts_the_slice_in_progress_to_the_iterations_that_ran(tmp_path):
    """The decode run planned at 0.1 s for 99 steps is cut by the failure at 3.05 s: its slice
    ends at 3.0 s with the 29 steps that ended; the step in progress is lost (not busy)."""
    got = _one_answer_stopped(tmp_path, failure_at_s=3.05)
    assert [n for n, _, _ in got] == ["prefill", "decode x29"]
    assert got[1][1] == pytest.approx(0.1) and got[1][2] == pytest.approx(2.9)


def test_a_failure_during_a_prefill_leaves_no_slice(tmp_path):
    """The only iteration (the prefill, 0 to 0.1 s) never ends: no slice, no busy time."""
    assert _one_answer_stopped(tmp_path, failure_at_s=0.05) == []


def test_trace_matches_the_instances_under_random_failures(tmp_path):
    """Per instance, the trace's iterations and busy time are instances.parquet's when
    failures interrupt prefills and decode runs alike."""
    import numpy as np

    cfg = constant_cfg(step_s=0.02, prefill_s_per_token=0.0001, count=3)
    cfg["sim"] = {"trace": True}
    cfg["failures"] = {"policy": "retry", "mtbf_s": 4.0, "mttr_s": 1.0}
    rng = np.random.default_rng(5)
    n = 400
    s = run(cfg, tmp_path, make_trace(np.cumsum(rng.exponential(0.05, n)),
                                      rng.integers(20, 800, n), rng.integers(1, 200, n)))
    assert s["instance_failures"] >= 5
    traced, rows = _iterations_and_busy(tmp_path)
    assert traced.keys() == rows.keys()
    for name, (it, busy) in rows.items():
        assert traced[name][0] == it, name
        assert traced[name][1] == pytest.approx(busy, rel=1e-9), name


def test_a_horizon_cuts_the_slice_in_progress_to_the_iterations_that_ended(tmp_path):
    """The decode run planned at 0.1 s for 99 steps is cut by the horizon at 3.05 s: the 29
    steps that ended count in instances.parquet (30 iterations, 3.0 s busy with the prefill)
    and the slice ends with them at 3.0 s, not at 10 s, past the horizon."""
    import pyarrow.parquet as pq

    got = _one_answer_stopped(tmp_path, horizon_s=3.05)
    assert [n for n, _, _ in got] == ["prefill", "decode x29"]
    assert got[1][1] == pytest.approx(0.1) and got[1][2] == pytest.approx(2.9)
    row = pq.read_table(tmp_path / "instances.parquet").to_pylist()[0]
    assert row["iterations"] == 30 and row["busy_s"] == pytest.approx(3.0)
    assert row["decode_tokens"] == 29


def test_a_horizon_during_a_prefill_leaves_no_slice(tmp_path):
    assert _one_answer_stopped(tmp_path, horizon_s=0.05) == []


@pytest.mark.parametrize("failures", [False, True])
def test_trace_matches_the_instances_under_a_horizon(tmp_path, failures):
    """Per instance, the trace's iterations and busy time are instances.parquet's when the
    horizon ends the run with decode runs and prefills in progress (and with failures)."""
    import numpy as np

    cfg = constant_cfg(step_s=0.02, prefill_s_per_token=0.0001, count=3)
    cfg["sim"] = {"trace": True, "horizon_s": 12.0}
    if failures:
        cfg["failures"] = {"policy": "retry", "mtbf_s": 4.0, "mttr_s": 1.0}
    rng = np.random.default_rng(5)
    n = 400
    run(cfg, tmp_path, make_trace(np.cumsum(rng.exponential(0.05, n)),
                                  rng.integers(20, 800, n), rng.integers(1, 200, n)))
    traced, rows = _iterations_and_busy(tmp_path)
    assert traced.keys() == rows.keys()
    for name, (it, busy) in rows.items():
        assert traced[name][0] == it, name
        assert traced[name][1] == pytest.approx(busy, rel=1e-9), name
    events = json.loads((tmp_path / "trace.json").read_text())["traceEvents"]
    assert max(e["ts"] + e["dur"] for e in events if e["ph"] == "X" and e["tid"] == 0) <= 12e6
