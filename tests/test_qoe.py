"""Streaming QoE (Andes): closed forms, the engine's per-request values, the run summary."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from conftest import constant_cfg, make_trace

from wrpsim.metrics.qoe import QoEMeter, constant_rate_qoe, piece_area
from wrpsim.sim import Simulation


def numeric_qoe(t1: float, r: float, n: int, e: float, p: float, grid: int = 2_000_001) -> float:
    """QoE by brute-force integration of min(A, T) on a fine grid (independent of qoe.py):
    first token at t1, then r tokens/s until all n are out."""
    t_done = t1 + (n - 1) / r
    t_end = max(t_done, e + (n - 1) / p)
    t = np.linspace(min(t1, e), t_end, grid)
    a = np.where(t >= t1, np.minimum(n, 1 + r * (t - t1)), 0.0)
    T = np.where(t >= e, np.minimum(n, 1 + p * (t - e)), 0.0)
    return np.trapezoid(np.minimum(a, T), t) / np.trapezoid(T, t)


def stream(t1: float, r: float, n: int, e_ttft: float, p: float) -> float:
    m = QoEMeter(0.0, e_ttft, p, n)
    m.advance(t1, 1.0)
    m.line(t1 + (n - 1) / r, float(n))
    return m.finish(t1 + (n - 1) / r)


@pytest.mark.parametrize("n,p,r",
                         [(2, 5.0, 1.0), (50, 5.0, 2.0), (400, 4.0, 3.9), (1000, 5.0, 0.5)])
def test_constant_rate_below_pace_matches_the_closed_form(n, p, r):
    q = stream(1.0, r, n, 1.0, p)
    assert q == pytest.approx(constant_rate_qoe(n, p, r), rel=1e-12)
    assert q == pytest.approx((n + 1) * p / (2 * n * p - (n - 1) * r), rel=1e-12)
    assert q < 1.0


def test_long_answers_tend_to_p_over_2p_minus_r():
    assert constant_rate_qoe(10**7, 5.0, 2.0) == pytest.approx(5.0 / 8.0, rel=1e-6)


@pytest.mark.parametrize("r", [5.0, 5.0001, 20.0, 1e4])
@pytest.mark.parametrize("early", [0.0, 0.3])
def test_a_stream_at_or_above_the_pace_has_qoe_one(r, early):
    assert stream(1.0 - early, r, 300, 1.0, 5.0) == 1.0


def test_late_first_token_at_full_pace():
    """TTFT late by d, then exactly the expected pace: QoE = (l² − 1) / (l² − 1 + 2·p·n·d)."""
    n, p, d = 100, 5.0, 3.0
    assert stream(1.0 + d, p, n, 1.0, p) == pytest.approx(
        (n * n - 1) / (n * n - 1 + 2 * p * n * d), rel=1e-12)


@pytest.mark.parametrize("t1,r", [(4.0, 20.0), (2.5, 6.0), (1.0, 3.0), (0.2, 4.0), (7.0, 1.0)])
def test_meter_matches_brute_force_integration(t1, r):
    n, e, p = 60, 1.0, 5.0
    assert stream(t1, r, n, e, p) == pytest.approx(numeric_qoe(t1, r, n, e, p), abs=2e-5)


def test_piece_area_against_the_grid_on_random_segments():
    rng = np.random.default_rng(7)
    for _ in range(200):
        ta = rng.uniform(0, 5)
        tb = ta + rng.uniform(0.01, 5)
        ya = rng.uniform(0, 30)
        yb = ya + rng.uniform(0, 40)
        e, p, n = rng.uniform(0, 3), rng.uniform(1, 10), int(rng.integers(2, 60))
        t = np.linspace(ta, tb, 200_001)
        a = ya + (yb - ya) * (t - ta) / (tb - ta)
        T = np.where(t >= e, np.minimum(n, 1 + p * (t - e)), 0.0)
        want = np.trapezoid(np.minimum(a, T), t)
        assert piece_area(ta, ya, tb, yb, e, p, n) == pytest.approx(want, abs=1e-3 * (tb - ta))


def one_token(t1: float, ttft: float = 1.0, p: float = 5.0, n: int = 1) -> float:
    """QoE of an answer whose `n` tokens all come out at `t1` (sent at 0)."""
    m = QoEMeter(0.0, ttft, p, n)
    m.advance(t1, float(n))
    return m.finish(t1)


def test_one_token_answers():
    """On time: 1; d late: 1 − p·d (scored over the reader's 1/p for the token), 0 from 1/p."""
    assert one_token(0.5) == one_token(1.0) == 1.0
    for d in (1e-9, 0.01, 0.05, 0.1, 0.19):
        assert one_token(1.0 + d) == pytest.approx(1 - 5.0 * d, rel=1e-9, abs=1e-12)
    assert one_token(1.2) == one_token(2.0) == 0.0


def test_one_token_qoe_is_continuous_in_lateness_and_like_two_tokens_at_once():
    """The reviewer's case: one token a little late no longer scores 0 while two equally late
    score nearly 1. Two tokens d late together: 1 − (2/3)(p·d + (p·d)²/2), by the same
    definition; both fall from 1 at d = 0 to 0 at d = 1/p."""
    p = 5.0
    ds = np.linspace(0.0, 0.25, 51)
    q1 = [one_token(1.0 + d, p=p) for d in ds]
    q2 = [one_token(1.0 + d, p=p, n=2) for d in ds]
    for d, a, b in zip(ds, q1, q2):
        x = min(p * d, 1.0)
        assert a == pytest.approx(1 - x, abs=1e-12)
        assert b == pytest.approx(1 - 2 / 3 * (x + x * x / 2), abs=1e-12)
    steps = [x - y for x, y in itertools.pairwise(q1)]  # no jump: non-increasing, by p·Δd
    assert min(steps) >= 0 and max(steps) <= p * (ds[1] - ds[0]) + 1e-12


# ---------------------------------------------------------------------------- engine
def run_one(step_s: float, prompt: int, out: int, prefill_s_per_token: float = 0.0,
            qoe=None):
    cfg = constant_cfg(step_s=step_s, prefill_s_per_token=prefill_s_per_token)
    cfg["qoe"] = qoe or {"ttft_s": step_s, "tokens_per_s": 5.0}
    req, _, _ = Simulation(cfg, make_trace([0.0], [prompt], [out])).run()
    return req.to_pylist()[0]


def test_engine_stream_below_pace_is_the_closed_form():
    """One request, constant 0.5 s iterations: the first token at 0.5 s (= the expected TTFT),
    then 2 tokens/s against an expected 5 tokens/s."""
    row = run_one(0.5, 100, 40)
    assert row["ttft_s"] == pytest.approx(0.5)
    assert row["qoe"] == pytest.approx(constant_rate_qoe(40, 5.0, 2.0), rel=1e-9)


def test_engine_stream_above_pace_has_qoe_one():
    assert run_one(0.1, 100, 200)["qoe"] == 1.0


def test_engine_one_token_answer_a_little_late():
    """A one-token answer whose first (only) token comes d after the expected TTFT scores
    1 − p·d in a run, not 0."""
    row = run_one(0.05, 100, 1, prefill_s_per_token=0.0002,
                  qoe={"ttft_s": 0.05, "tokens_per_s": 5.0})
    d = row["ttft_s"] - 0.05
    assert 0 < d < 0.2
    assert row["qoe"] == pytest.approx(1 - 5.0 * d, rel=1e-9)


def test_engine_late_first_token_then_catching_up():
    """A 2,000-token prompt takes 2 s to prefill (expected TTFT 1 s); decode then runs at
    20 tokens/s and catches up with the 5 tokens/s reader."""
    row = run_one(0.05, 2000, 80, prefill_s_per_token=0.001,
                  qoe={"ttft_s": 1.0, "tokens_per_s": 5.0})
    t1 = row["ttft_s"]
    assert t1 > 1.5
    assert row["qoe"] == pytest.approx(numeric_qoe(t1, 20.0, 80, 1.0, 5.0), abs=1e-4)
    assert 0 < row["qoe"] < 1


def _loaded_run(max_run_steps=None, qoe=True):
    rng = np.random.default_rng(3)
    n = 300
    arrivals = np.cumsum(rng.exponential(0.2, n))
    prompts = rng.integers(50, 1500, n)
    outs = rng.integers(1, 300, n)
    cfg = constant_cfg(step_s=0.02, prefill_s_per_token=0.0002, count=2, kv_blocks=600)
    cfg["qoe"] = {"ttft_s": 0.5, "tokens_per_s": 15.0} if qoe else None
    sim = Simulation(cfg, make_trace(arrivals, prompts, outs))
    if max_run_steps:
        for inst in sim.fleet.instances:
            inst.max_run_steps = max_run_steps
    return sim.run()[0].to_pandas()


def test_decode_runs_give_the_same_qoe_as_stepping_every_iteration():
    """Under load (queueing, preemptions) the per-run breakpoints and the closed-form shortcut
    for streams ahead of their reader give what one breakpoint per iteration gives."""
    runs, steps = _loaded_run(), _loaded_run(max_run_steps=1)
    assert (runs.preemptions > 0).any() and (runs.qoe < 0.999).any() and (runs.qoe == 1).any()
    np.testing.assert_allclose(runs.qoe.to_numpy(), steps.qoe.to_numpy(), rtol=1e-9, atol=1e-12)
    assert ((runs.qoe >= 0) & (runs.qoe <= 1)).all()


def test_qoe_null_leaves_the_column_nan():
    df = _loaded_run(qoe=False)
    assert df.qoe.isna().all()


def test_summary_reports_qoe(tmp_path):
    from wrpsim.sim import run

    cfg = constant_cfg(step_s=0.5)
    cfg["qoe"] = {"ttft_s": 0.5, "tokens_per_s": 5.0, "target": 0.6}
    s = run(cfg, tmp_path, make_trace([0.0, 100.0], [100, 100], [40, 2]))
    q = constant_rate_qoe(40, 5.0, 2.0)  # 0.6366; the 2-token answer: constant_rate_qoe(2, ...)
    q2 = constant_rate_qoe(2, 5.0, 2.0)
    assert s["qoe_mean"] == pytest.approx((q + q2) / 2)
    assert s["qoe_attainment"] == pytest.approx(sum(x >= 0.6 for x in (q, q2)) / 2)
    assert math.isclose(s["qoe_tokens_per_s"], 5.0)


@pytest.mark.parametrize("bad,msg", [
    ({"tokens_per_s": 0}, r"qoe\.tokens_per_s must be a finite number > 0, got 0"),
    ({"tokens_per_s": math.inf}, r"qoe\.tokens_per_s must be a finite number > 0, got inf"),
    ({"ttft_s": math.inf}, r"qoe\.ttft_s must be a finite number > 0, got inf"),
    ({"ttft_s": math.nan}, r"qoe\.ttft_s must be a finite number > 0, got nan"),
    ({"pace": 3}, r"unknown key\(s\) \['pace'\]"),
    ({"target": 1.5}, r"qoe\.target must be in \(0, 1\]"),
])
def test_bad_qoe_config_is_a_clear_error(bad, msg):
    from wrpsim.errors import ConfigError

    cfg = constant_cfg()
    cfg["qoe"] = bad
    with pytest.raises(ConfigError, match=msg):
        Simulation(cfg, make_trace([0.0], [10], [2]))


def test_qoe_keys_say_their_population_and_stay_when_off(tmp_path):
    """qoe_mean / qoe_p10 are over completed requests, qoe_attainment over all (a dropped
    request is a miss); the target is written; with qoe=null the six keys stay, null; the
    console's QoE line shows them, and only when measured."""
    from wrpsim.runview import run_summary
    from wrpsim.sim import run

    cfg = constant_cfg(step_s=0.5)
    cfg["qoe"] = {"ttft_s": 0.5, "tokens_per_s": 5.0, "target": 0.6}
    trace = make_trace([0.0, 100.0, 200.0], [100, 100, 10_000_000], [40, 2, 5])
    s = run(cfg, tmp_path / "on", trace)
    assert (s["requests_completed"], s["requests_dropped"]) == (2, 1)
    q, q2 = constant_rate_qoe(40, 5.0, 2.0), constant_rate_qoe(2, 5.0, 2.0)
    assert s["qoe_mean"] == pytest.approx((q + q2) / 2)  # the dropped one is not a zero
    assert s["qoe_attainment"] == pytest.approx(sum(x >= 0.6 for x in (q, q2)) / 3)
    assert s["qoe_target"] == 0.6
    line = [ln for ln in run_summary(s, cfg, "out").splitlines() if ln.startswith("  QoE")]
    assert line == [f"  QoE        mean {s['qoe_mean']:.3f}  p10 {s['qoe_p10']:.3f} of completed "
                    f"requests; {100 * s['qoe_attainment']:.1f} % of all requests reach "
                    f"QoE >= 0.6 (qoe.target)"]
    cfg["qoe"] = None
    off = run(cfg, tmp_path / "off", trace)
    keys = ("qoe_mean", "qoe_p10", "qoe_attainment", "qoe_target", "qoe_ttft_s",
            "qoe_tokens_per_s")
    assert {k: off[k] for k in keys} == dict.fromkeys(keys)
    assert "  QoE" not in run_summary(off, cfg, "out")
    # a sweep of QoE-off runs still has numeric QoE columns
    from wrpsim.report.collect import Run
    from wrpsim.report.dataset import results_table

    t = results_table([Run("0", tmp_path / "off", "completed", summary=off)])
    assert all(str(t.schema.field(k).type) == "double" for k in keys)


def test_pct_is_numpys_percentile_bit_for_bit():
    """`wrpsim.metrics.summary.pct` computes the linear percentile itself (np.percentile
    imports numpy.ma): the same float as `np.percentile` for every array and q it is given."""
    import struct

    from wrpsim.metrics.summary import pct

    rng = np.random.default_rng(1)
    for trial in range(600):
        n = int(rng.integers(1, 60)) if trial % 3 else int(rng.integers(1, 5000))
        kind = trial % 4
        if kind == 0:
            x = rng.random(n)
        elif kind == 1:
            x = rng.exponential(size=n) * 10.0 ** int(rng.integers(-6, 6))
        elif kind == 2:
            x = rng.integers(0, 5, n).astype(float)  # ties
        else:
            x = np.where(rng.random(n) < 0.1, np.nan, rng.normal(size=n))
        for q in (0, 1, 10, 12.5, 50, 90, 99, 99.9, 100, int(rng.integers(0, 101))):
            finite = x[~np.isnan(x)]
            want = float(np.percentile(finite, q)) if finite.size else None
            got = pct(x, q)
            assert (got is None and want is None) or struct.pack("<d", got) == struct.pack(
                "<d", want), (n, kind, q)
    assert pct([np.nan], 50) is None
