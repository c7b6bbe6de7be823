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


def test_trace_shows_kv_transfers_of_prefill_instances(tmp_path):
    cfg = disagg_cfg("serialized", 100.0)
    cfg["sim"] = {"trace": True}
    run(cfg, tmp_path, make_trace([0.0], [4096], [3]))
    events = json.loads((tmp_path / "trace.json").read_text())["traceEvents"]
    xfers = [e for e in events if e["ph"] == "X" and e["tid"] == 1]
    assert len(xfers) == 1 and xfers[0]["name"] == "kv -> dec/0"
    assert xfers[0]["dur"] == pytest.approx(4096 * 131072 / 12.5e9 * 1e6, rel=1e-9)
