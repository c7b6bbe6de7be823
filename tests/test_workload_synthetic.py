"""Synthetic workloads: arrivals against theory, CDF sampling, fitted lengths, determinism."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wrpsim.errors import ConfigError, TraceError
from wrpsim.rng import stream
from wrpsim.workload import EmpiricalCDF, arrival_times, draw_dist, generate, validate_trace

WORKLOADS = Path(__file__).resolve().parents[1] / "workloads"
AZURE_CDF = "cdfs/fleetsim_azure_total_tokens_cdf.json"


def _source(**over) -> dict:
    src = {
        "kind": "synthetic",
        "num_requests": 2000,
        "arrivals": {"process": "poisson", "rate": 10.0},
        "lengths": {"kind": "cdf", "path": AZURE_CDF, "output_fraction": 0.1},
    }
    src.update(over)
    return src


def _gaps(spec: dict, n: int, seed: int = 7) -> np.ndarray:
    return np.diff(arrival_times(spec, stream(seed, "workload.arrivals"), num_requests=n))


def test_poisson_mean_and_cv():
    g = _gaps({"process": "poisson", "rate": 10.0}, 50_000)
    assert g.mean() == pytest.approx(0.1, rel=0.02)
    assert g.std() / g.mean() == pytest.approx(1.0, abs=0.03)
    # memorylessness: P(gap > 0.2) = exp(-2)
    assert (g > 0.2).mean() == pytest.approx(np.exp(-2), abs=0.01)


@pytest.mark.parametrize("cv", [0.5, 2.0, 3.0])
def test_gamma_cv_is_as_requested(cv):
    g = _gaps({"process": "gamma", "rate": 4.0, "cv": cv}, 50_000)
    assert g.mean() == pytest.approx(0.25, rel=0.03)
    assert g.std() / g.mean() == pytest.approx(cv, rel=0.08)


def test_deterministic_arrivals_and_first_at_zero():
    t = arrival_times({"process": "deterministic", "rate": 4.0}, stream(0, "a"), num_requests=5)
    assert t.tolist() == [0.0, 0.25, 0.5, 0.75, 1.0]


def test_duration_bound_and_both_bounds():
    spec = {"process": "poisson", "rate": 50.0}
    t = arrival_times(spec, stream(1, "a"), duration_s=100.0)
    assert t.max() < 100.0 and t[0] == 0.0
    assert len(t) == pytest.approx(5000, rel=0.05)
    assert np.all(np.diff(t) >= 0)
    assert len(arrival_times(spec, stream(1, "a"), num_requests=100, duration_s=1e6)) == 100
    assert arrival_times(spec, stream(1, "a"), num_requests=10**5, duration_s=1.0).max() < 1.0


def test_empirical_cdf_sampling_reproduces_the_cdf():
    cdf = EmpiricalCDF.from_file(WORKLOADS / AZURE_CDF)
    x = cdf.sample(stream(3, "workload.lengths"), 50_000)
    assert x.dtype == np.int64 and x.min() >= 1
    emp = np.array([(x <= k).mean() for k in cdf.tokens])
    assert np.abs(emp - cdf.fractions).max() < 0.01  # KS-like bound at the CDF points
    assert x.max() <= cdf.tokens[-1]


def test_cdf_object_format_and_invalid_files(tmp_path):
    cdf = EmpiricalCDF.from_file(WORKLOADS / "cdfs/fleetsim_agent_heavy_total_tokens_cdf.json")
    x = cdf.sample(stream(0, "x"), 5000)
    assert x.min() > 128  # F(128) = 0
    bad = tmp_path / "bad.json"
    for data, match in [([[10, 0.5], [5, 1.0]],
                         r"strictly increasing; entry 1 \(0-based\) is \[5, 1\] after "
                         r"\[10, 0\.5\]$"),
                        ([[10, 0.6], [20, 0.5], [30, 1.0]],
                         r"non-decreasing within \[0, 1\]; entry 1 \(0-based\) is \[20, 0\.5\]"),
                        ([[10, 0.5], [20, 0.9]], "last CDF fraction must be 1"),
                        ({"x": 1}, "list of \\[tokens, cumulative_fraction\\] pairs")]:
        bad.write_text(json.dumps(data))
        with pytest.raises(TraceError, match=r"bad\.json: .*" + match):
            EmpiricalCDF.from_file(bad)
    bad.write_text("[[1, 0.5],\n [2, 1.0]")
    with pytest.raises(TraceError, match=r"bad\.json: line 2: invalid JSON"):
        EmpiricalCDF.from_file(bad)


def test_cdf_split_by_output_fraction_and_by_output_dist():
    df = generate(_source(num_requests=20_000), seed=1, base_dir=WORKLOADS)
    validate_trace(df)
    total = df.prompt_tokens + df.output_tokens
    np.testing.assert_array_equal(
        df.output_tokens, np.clip(np.rint(0.1 * total), 1, total - 1).astype(np.int64)
    )
    lengths = {"kind": "cdf", "path": AZURE_CDF, "output": {"dist": "geometric", "mean": 50}}
    df2 = generate(_source(num_requests=20_000, lengths=lengths), seed=1, base_dir=WORKLOADS)
    np.testing.assert_array_equal(total, df2.prompt_tokens + df2.output_tokens)  # same totals
    assert df2.output_tokens.mean() == pytest.approx(50, rel=0.05)
    assert df2.prompt_tokens.min() >= 1


@pytest.mark.parametrize(
    ("spec", "mean"),
    [({"dist": "lognormal", "mean": 500, "sigma": 0.8}, 500),
     ({"dist": "geometric", "mean": 200}, 200),
     ({"dist": "exponential", "mean": 100}, 100.5),
     ({"dist": "uniform", "low": 10, "high": 20}, 15),
     ({"dist": "constant", "value": 64}, 64)],
)
def test_fitted_distributions(spec, mean):
    x = draw_dist(spec, stream(5, "workload.lengths"), 50_000)
    assert x.dtype == np.int64 and x.min() >= 1
    assert x.mean() == pytest.approx(mean, rel=0.03)
    if spec["dist"] == "uniform":
        assert set(np.unique(x)) == set(range(10, 21))
    capped = draw_dist({**spec, "max": 30}, stream(5, "workload.lengths"), 1000)
    assert capped.max() <= 30


def test_fitted_distributions_keep_integral_floats_and_their_documented_rounding():
    rng = lambda: stream(5, "workload.lengths")  # noqa: E731
    np.testing.assert_array_equal(draw_dist({"dist": "constant", "value": 12.0}, rng(), 3), 12)
    np.testing.assert_array_equal(
        draw_dist({"dist": "uniform", "low": 3.0, "high": 5.0}, rng(), 100),
        draw_dist({"dist": "uniform", "low": 3, "high": 5}, rng(), 100))
    # exponential: rounded up, mean 1 / (1 - e^(-1/mean)) (1.58 for mean 1; lengths docstring)
    x = draw_dist({"dist": "exponential", "mean": 1}, rng(), 200_000)
    assert x.mean() == pytest.approx(1 / (1 - np.exp(-1)), rel=0.01)
    # lognormal: rounded to nearest and raised to 1 (mean 1, sigma 1 -> 1.37)
    x = draw_dist({"dist": "lognormal", "mean": 1, "sigma": 1}, rng(), 200_000)
    assert x.mean() == pytest.approx(1.37, rel=0.01)


@pytest.mark.parametrize("spec", [
    {"dist": "lognormal", "mean": 2**53 - 1, "sigma": 3},
    {"dist": "lognormal", "mean": 10, "sigma": 2**53 - 1},
    {"dist": "lognormal", "mean": 10, "sigma": 60},
    {"dist": "exponential", "mean": 2**53 - 1},
    {"dist": "geometric", "mean": 2**53 - 1},
    {"dist": "uniform", "low": 1, "high": 2**53 - 1},
    {"dist": "constant", "value": 2**53 - 1, "max": 2**53 - 1},
])
def test_largest_parameters_draw_counts_within_the_token_limit(spec):
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        x = draw_dist(spec, stream(5, "workload.lengths"), 10_000)
    assert x.dtype == np.int64 and x.min() >= 1 and x.max() <= 2**53 - 1


@pytest.mark.parametrize(("where", "spec", "match"), [
    ("prompt", {"dist": "constant", "value": float("inf")},
     r"source\.lengths\.prompt\.value must be an integer >= 1 and <= 9007199254740991"),
    ("output", {"dist": "lognormal", "mean": 5, "sigma": 1, "max": float("nan")},
     r"source\.lengths\.output\.max must be a finite number >= 1 .*got nan"),
    ("output", {"dist": "geometric", "mean": 5, "max": "abc"},
     r"source\.lengths\.output\.max: a number is required for dist geometric, got 'abc'"),
])
def test_bad_fitted_parameters_are_one_line(where, spec, match):
    lengths = {"kind": "fitted", "prompt": {"dist": "constant", "value": 10},
               "output": {"dist": "constant", "value": 5}, where: spec}
    with pytest.raises(ConfigError, match=match) as e:
        generate(_source(lengths=lengths), seed=0, base_dir=WORKLOADS)
    assert "\n" not in str(e.value)


def test_same_seed_same_frame_different_seed_different():
    src = _source(arrivals={"process": "gamma", "rate": 5.0, "cv": 2.0})
    a = generate(src, seed=11, base_dir=WORKLOADS)
    pd.testing.assert_frame_equal(a, generate(src, seed=11, base_dir=WORKLOADS))
    b = generate(src, seed=12, base_dir=WORKLOADS)
    assert not a.arrival_s.equals(b.arrival_s) and not a.prompt_tokens.equals(b.prompt_tokens)


def test_changing_lengths_does_not_move_arrivals():
    a = generate(_source(), seed=3, base_dir=WORKLOADS)
    fitted = {"kind": "fitted", "prompt": {"dist": "constant", "value": 10},
              "output": {"dist": "constant", "value": 5}}
    b = generate(_source(lengths=fitted), seed=3, base_dir=WORKLOADS)
    pd.testing.assert_series_equal(a.arrival_s, b.arrival_s)
    assert set(b.prompt_tokens) == {10} and set(b.output_tokens) == {5}


@pytest.mark.parametrize(
    ("over", "match"),
    [({"arrivals": {"process": "weibull", "rate": 1}},
      r"source\.arrivals\.process: unknown value 'weibull'; "
      + r"valid choices: deterministic, gamma, poisson"),
     ({"arrivals": {"process": "poisson", "rate": 0}}, r"source\.arrivals\.rate must be > 0"),
     ({"arrivals": {"process": "gamma", "rate": 1}},
      r"source\.arrivals\.cv: gamma arrivals need cv, the coefficient of variation"),
     ({"arrivals": {"process": "gamma", "rate": 1, "cv": "x"}},
      r"source\.arrivals\.cv: a finite number is required, got 'x'"),
     ({"arrivals": {"process": "poisson", "rate": 1, "cv": 2}},
      r"source\.arrivals\.cv: not a key of poisson arrivals \(valid: process, rate\); cv is "
      r"gamma arrivals' \(source\.arrivals\.process=gamma\)"),
     ({"arrivals": {"process": "poisson", "rate": 1, "sigma": 2}},
      r"source\.arrivals\.sigma: unknown key 'sigma'; valid keys: process, rate"),
     ({"num_requests": None}, r"give num_requests or duration_s"),
     ({"num_requests": 2.5}, r"num_requests must be an integer"),
     ({"lengths": {"kind": "zipf"}}, r"source\.lengths\.kind: .*valid choices: cdf, fitted"),
     ({"lengths": {"kind": "cdf", "path": AZURE_CDF}}, r"exactly one of output_fraction"),
     ({"lengths": {"kind": "fitted", "prompt": {"dist": "normal"}, "output": None}},
      r"source\.lengths\.prompt\.dist: unknown value 'normal'; "
      + r"valid choices: constant, exponential, geometric, lognormal, uniform"),
     ({"lengths": {"kind": "fitted", "prompt": {"dist": "lognormal", "mean": 5},
                   "output": {"dist": "constant", "value": 1}}},
      r"source\.lengths\.prompt\.sigma: a number is required"),
     ({"rate": 3}, r"source\.rate: unknown key 'rate'; valid keys: ")],
)
def test_config_errors_name_the_field(over, match):
    with pytest.raises(ConfigError, match=match):
        generate(_source(**over), seed=0, base_dir=WORKLOADS)


@settings(max_examples=40, deadline=None)
@given(
    process=st.sampled_from(["poisson", "gamma", "deterministic"]),
    rate=st.floats(0.01, 1000.0),
    cv=st.floats(0.2, 5.0),
    n=st.integers(1, 300),
    seed=st.integers(0, 2**32 - 1),
)
def test_arrivals_invariants(process, rate, cv, n, seed):
    spec = {"process": process, "rate": rate, **({"cv": cv} if process == "gamma" else {})}
    t = arrival_times(spec, stream(seed, "workload.arrivals"), num_requests=n)
    assert len(t) == n and t[0] == 0.0
    assert np.all(np.diff(t) >= 0) and np.all(np.isfinite(t))


def test_a_relative_cdf_path_is_also_looked_for_in_the_current_directory(tmp_path,
                                                                          monkeypatch):
    """`workload.source.lengths.path=my_cdf.json` with the file in the current directory was
    looked for only in the workload's folder ("CDF file not found"), where a trace's relative
    `path` falls back to the current directory."""
    (tmp_path / "my_cdf.json").write_text(json.dumps([[10, 0.0], [100, 1.0]]))
    monkeypatch.chdir(tmp_path)
    src = _source(num_requests=50,
                  lengths={"kind": "cdf", "path": "my_cdf.json", "output_fraction": 0.1})
    df = generate(src, seed=0, base_dir=WORKLOADS)
    total = df["prompt_tokens"] + df["output_tokens"]
    assert len(df) == 50 and total.between(10, 100).all()
    # the workload's own folder still comes first
    shipped = _source(num_requests=50)
    pd.testing.assert_frame_equal(generate(shipped, seed=0, base_dir=WORKLOADS),
                                  generate(shipped, seed=0, base_dir=WORKLOADS))
    src["lengths"]["path"] = "nope.json"
    with pytest.raises(ConfigError, match=r"lengths\.path: CDF file 'nope\.json' not found in "
                                          r".* nor in the current directory"):
        generate(src, seed=0, base_dir=WORKLOADS)
