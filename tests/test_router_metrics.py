"""Routing-study metrics (quality, model share, cost and energy per request) and AIQ."""

from __future__ import annotations

import math
from itertools import pairwise

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import compose_cfg
from wrpsim.metrics.quality import quality_summary
from wrpsim.metrics.records import INSTANCE_SCHEMA, REQUEST_SCHEMA
from wrpsim.report.aiq import aiq, curve_at, curves, nondecreasing_hull, random_mix
from wrpsim.sim import Simulation
from wrpsim.workload import Request

NAN = math.nan


def _requests(rows):
    """A requests table from (id, parent, model, status, arrival, finish) tuples."""
    cols = {f.name: [] for f in REQUEST_SCHEMA}
    for rid, parent, model, status, arrival, finish in rows:
        row = {f.name: None for f in REQUEST_SCHEMA}
        row.update(request_id=rid, parent_id=parent, model=model, status=status,
                   arrival_s=arrival, finish_s=finish, prompt_tokens=10, output_tokens=5,
                   pool=model)
        for k in cols:
            cols[k].append(row[k])
    return pa.table([pa.array(cols[f.name], type=f.type) for f in REQUEST_SCHEMA],
                    schema=REQUEST_SCHEMA)


def _instances(busy, tp, price, energy):
    n = len(busy)
    data = {f.name: [0] * n for f in INSTANCE_SCHEMA}
    data.update(busy_s=busy, tp=tp, price_per_gpu_hour_usd=price, energy_j=energy,
                pool=["a"] * n, gpu=["g"] * n, model=["m"] * n, engine=["e"] * n,
                calibration=["c"] * n)
    return pa.table([pa.array(data[f.name], type=f.type) for f in INSTANCE_SCHEMA],
                    schema=INSTANCE_SCHEMA)


def test_quality_follows_the_final_answer_of_each_chain():
    # 0: cheap answer kept; 1: escalated twice (cheap -> mid -> big); 2: dropped; 3: no outcome
    req = _requests([
        (0, None, "cheap", "completed", 0.0, 1.0),
        (1, None, "cheap", "completed", 0.0, 1.0),
        (2, None, "cheap", "dropped", 0.0, NAN),
        (3, None, "cheap", "completed", 0.0, 1.0),
        (4, 1, "mid", "completed", 1.0, 2.0),
        (5, 4, "big", "completed", 2.0, 5.0),
    ])
    reqs = [Request(0, 0.0, 10, 5, outcomes={"cheap": 1.0}),
            Request(1, 0.0, 10, 5, outcomes={"cheap": 0.0, "mid": 0.0, "big": 1.0}),
            Request(2, 0.0, 10, 5, outcomes={"cheap": 1.0}),
            Request(3, 0.0, 10, 5, outcomes=None)]
    inst = _instances([3600.0, 1800.0], [1, 4], [2.0, 1.0], [1000.0, 3000.0])
    q = quality_summary(req, inst, reqs, None, pue=1.5, duration_s=7200.0)
    assert q["quality"] == pytest.approx((1 + 1 + 0) / 3)  # dropped scores 0, no outcome skipped
    assert q["quality_answered"] == pytest.approx(1.0)
    assert q["quality_requests"] == 3
    assert q["model_share"] == {"big": pytest.approx(1 / 3), "cheap": pytest.approx(2 / 3)}
    assert q["call_share"]["cheap"] == pytest.approx(4 / 6)
    assert q["followups_per_request"] == pytest.approx(2 / 4)
    # busy GPU cost: (1 h x 1 GPU x $2 + 0.5 h x 4 GPUs x $1) per 4 originals, per 1,000
    assert q["cost_per_1k_requests_usd"] == pytest.approx(4.0 / 4 * 1000)
    assert q["provisioned_cost_per_1k_requests_usd"] == pytest.approx(2 * 6.0 / 4 * 1000)
    assert q["energy_per_request_j"] == pytest.approx(4000 * 1.5 / 4)
    assert q["e2e_final_p50_s"] == pytest.approx(1.0)
    assert q["token_cost_per_1k_requests_usd"] is None
    # same from the trace frame form
    import pandas as pd

    frame = pd.DataFrame({"outcomes": [r.outcomes for r in reqs]})
    assert quality_summary(req, inst, frame)["quality"] == pytest.approx(q["quality"])
    assert quality_summary(req, inst, None)["quality"] is None


def test_final_answer_is_deepest_then_latest_then_first_in_table_order():
    # rows out of id order: chain 0's two depth-1 calls tie (same finish); the first in the
    # table (2, model c) is its final answer, not the root's later finish
    req = _requests([
        (3, None, "d", "completed", 0.0, 4.0),
        (4, 3, "e", "dropped", 4.0, NAN),
        (0, None, "a", "completed", 0.0, 3.0),
        (2, 0, "c", "completed", 1.0, 2.0),
        (1, 0, "b", "completed", 1.0, 2.0),
    ])
    inst = _instances([1.0], [1], [1.0], [1.0])
    q = quality_summary(req, inst, None)
    assert q["model_share"] == {"c": 0.5, "d": 0.5}
    assert q["call_share"] == {m: 0.2 for m in "abcde"}
    assert q["e2e_final_p50_s"] == 3.0 and q["followups_per_request"] == 1.5


def test_summary_of_a_real_run_is_consistent():
    cfg = compose_cfg("workload=routellm-mmlu-gsm8k", "pool=two-model-mixtral-gpt4like",
                      "workload.max_requests=500", "workload.model=mixtral-8x7b")
    sim = Simulation(cfg)
    req, inst, end = sim.run()
    q = quality_summary(req, inst, sim.trace, sim.fleet.specs, sim.pue, end)
    expect = sum(o["mixtral-8x7b"] for o in sim.trace["outcomes"]) / 500
    assert q["quality"] == pytest.approx(expect)
    assert q["model_share"] == {"mixtral-8x7b": 1.0}
    assert 0 < q["cost_per_1k_requests_usd"] < q["provisioned_cost_per_1k_requests_usd"]
    assert q["token_cost_per_1k_requests_usd"] > 0 and q["energy_per_request_j"] > 0


def test_nondecreasing_hull_and_aiq_closed_forms():
    hull = nondecreasing_hull([0, 1, 2, 3, 1.5], [0.5, 0.7, 0.75, 0.72, 0.6])
    assert hull == [(0.0, 0.5), (1.0, 0.7), (2.0, 0.75)]  # (1.5, .6) inside; (3, .72) decreases
    assert curve_at(hull, 0.5) == pytest.approx(0.6) and curve_at(hull, 3) == 0.75
    assert curve_at(hull, -1) == 0.0
    # trapezoids: 0.6 + 0.725 + 0.75 over a range of 3
    assert aiq([0, 1, 2, 3], [0.5, 0.7, 0.75, 0.72]) == pytest.approx(2.075 / 3)
    # two single models: AIQ = mean of their qualities = the random-mix line's
    assert aiq([1, 3], [0.6, 0.8]) == pytest.approx(0.7)
    assert random_mix((1, 0.6), (3, 0.8), 2) == pytest.approx(0.7)
    # a point above the line raises AIQ; below the cheapest point the curve is 0
    assert aiq([1, 2, 3], [0.6, 0.78, 0.8]) > 0.7
    assert aiq([2, 3], [0.6, 0.8], 1, 3) == pytest.approx((0 + 0.7) / 2)


def test_curves_compare_routers_over_one_cost_range():
    rows = [{"router": "a", "cost_per_1k_requests_usd": 1.0, "quality": 0.6},
            {"router": "a", "cost_per_1k_requests_usd": 3.0, "quality": 0.8},
            {"router": "b", "cost_per_1k_requests_usd": 2.0, "quality": 0.8},
            {"router": "b", "cost_per_1k_requests_usd": None, "quality": 0.9}]
    c = curves(rows)
    assert c["cost_range"] == [1.0, 3.0]
    assert c["routers"]["a"]["aiq"] == pytest.approx(0.7)
    assert c["routers"]["b"]["aiq"] == pytest.approx(0.8 / 2)  # 0 below its cheapest point
    assert curves([]) == {}


def test_report_writes_aiq_json_for_sweeps_with_quality(tmp_path):
    import json

    import pyarrow.parquet as pq

    from wrpsim.report.aiq import maybe_write_aiq

    rows = [{"run": str(i), "status": s, "router": r, "quality": q,
             "cost_per_1k_requests_usd": c,
             "token_cost_per_1k_requests_usd": None if c is None else c / 10}
            for i, (s, r, q, c) in enumerate([("completed", "a", 0.6, 1.0),
                                              ("completed", "a", 0.8, 3.0),
                                              ("failed", "a", None, None)])]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "results.parquet")
    files = maybe_write_aiq(tmp_path / "results.parquet", tmp_path)
    data = json.loads((tmp_path / "aiq.json").read_text())
    assert files == {"aiq": str(tmp_path / "aiq.json")}
    assert data["cost_per_1k_requests_usd"]["routers"]["a"]["aiq"] == pytest.approx(0.7)
    assert data["token_cost_per_1k_requests_usd"]["cost_range"] == [0.1, 0.3]
    pq.write_table(pa.table({"run": ["0"], "status": ["completed"]}), tmp_path / "r2.parquet")
    assert maybe_write_aiq(tmp_path / "r2.parquet", tmp_path) == {}


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 100, allow_nan=False), st.floats(0, 1, allow_nan=False)),
                min_size=1, max_size=20))
def test_hull_is_nondecreasing_concave_and_dominates_the_points(pts):
    cs, qs = [c for c, _ in pts], [q for _, q in pts]
    hull = nondecreasing_hull(cs, qs)
    assert [c for c, _ in hull] == sorted({c for c, _ in hull})
    assert all(q1 > q0 for (_, q0), (_, q1) in pairwise(hull))
    for c, q in pts:
        if c >= hull[0][0]:
            assert curve_at(hull, c) >= q - 1e-9
    a = aiq(cs, qs)
    assert 0.0 <= a <= max(qs) + 1e-9


def test_aiq_over_a_subnormal_cost_range_is_the_quality_it_holds():
    """Hypothesis found it: 0.75 over costs [0, 5e-324] came out as 1.0 (a quality times a
    subnormal width rounds up; each interval's share of the range is taken first now)."""
    assert aiq([0.0, 5e-324], [0.75, 0.0]) == 0.75
