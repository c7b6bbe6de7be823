"""The dashboard's reduced per-run views: CDF downsampling, requests in system, decision mix,
load-dimension detection and report links."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from wrpsim.report.choice import load_dimension
from wrpsim.report.collect import Run, split_override
from wrpsim.report.dashboard import report_links
from wrpsim.report.views import cdf, decision_mix, in_system


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(0, 1e4, allow_nan=False), min_size=1, max_size=3000),
       st.integers(2, 600))
def test_cdf_is_monotone_bounded_and_exact_at_the_ends(values, points):
    x = np.asarray([*values, np.nan, np.inf])
    xs, ps = cdf(x, points)
    assert len(xs) == len(ps) <= max(points, 1)
    assert xs == sorted(xs) and ps == sorted(ps)
    assert ps[-1] == 1.0 and np.isclose(xs[0], min(values), rtol=1e-5)
    assert np.isclose(xs[-1], max(values), rtol=1e-5)


def test_cdf_of_no_values_is_empty():
    assert cdf(np.asarray([np.nan]), 10) == [[], []]


def test_in_system_counts_arrivals_minus_departures():
    ts, n = in_system(np.asarray([0.0, 1.0, 2.0]), np.asarray([1.5, np.nan, 2.5]), 3.0, bins=7)
    assert ts == [0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0]
    assert n == [1, 1, 2, 1, 2, 1, 1]  # the unfinished request stays to the end


def test_decision_mix_counts_instances_and_drops():
    t = pa.table({"pool": ["a", None, "a", "a"],
                  "instance": pa.array([0, None, 1, 0], pa.int32()),
                  "status": ["completed", "dropped", "in_flight", "completed"]})
    assert decision_mix(t) == {"a/0": 2, "a/1": 1, "dropped": 1}


def test_decision_mix_tells_cache_answers_and_unplaced_requests_from_drops():
    """A semantic-cache hit (completed, no pool) and a request between instances at the end
    (in flight, no pool) are neither drops nor instances; a drop at an instance is a drop."""
    t = pa.table({"pool": [None, None, "a", "a", None],
                  "instance": pa.array([None, None, 0, 1, None], pa.int32()),
                  "status": ["completed", "in_flight", "dropped", "completed", "dropped"]})
    assert decision_mix(t) == {"a/1": 1, "dropped": 2, "in flight": 1, "semantic cache": 1}


def _run(**params) -> Run:
    return Run(name="0", path=Path("."), status="completed", params=params)


def test_load_dimension_is_a_numeric_rate_like_key():
    runs = [_run(**{"workload.rate_scale": "1", "router": "x"}),
            _run(**{"workload.rate_scale": "2.5", "router": "y"})]
    assert load_dimension(runs, ["router", "workload.rate_scale"]) == "workload.rate_scale"
    assert load_dimension(runs, ["router"]) is None
    bad = [_run(**{"workload.rate_scale": "fast"})]
    assert load_dimension(bad, ["workload.rate_scale"]) is None


def test_split_override_handles_append_and_delete():
    assert split_override("+a.b=3") == ("a.b", "3")
    assert split_override("++a=x=y") == ("a", "x=y")
    assert split_override("~a.b") == ("a.b", "~")


def test_report_links_are_relative_and_quoted(tmp_path):
    (tmp_path / "plan").mkdir()
    (tmp_path / "plan" / "report.html").write_text("<html></html>")
    (tmp_path / "plan" / "a b&c.html").write_text("<html></html>")
    (tmp_path / "dashboard.html").write_text("x")
    links = report_links(tmp_path, tmp_path)
    assert links == [("plan/a%20b%26c.html", "plan/a b&c.html"),
                     ("plan/report.html", "plan/report.html")]
    out = tmp_path / "out"
    out.mkdir()
    assert ("../plan/report.html", "plan/report.html") in report_links(tmp_path, out)
