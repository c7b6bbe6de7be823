"""Transforms and the workload builder (every shipped workload YAML builds a canonical frame)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from wrpsim.errors import ConfigError, TraceError, WrpsimWarning
from wrpsim.rng import stream
from wrpsim.workload import (
    TRACE_COLUMNS,
    apply_transforms,
    assign_model,
    build_workload,
    canonical_frame,
    clip_tokens,
    first_n,
    list_workloads,
    load_workload,
    rate_scale,
    sample_fraction,
    time_window,
    to_requests,
    validate_trace,
)

WORKLOADS = Path(__file__).resolve().parents[1] / "workloads"
YAMLS = sorted(WORKLOADS.glob("*.yaml"))


@pytest.fixture(autouse=True, scope="module")
def _cache_env(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WRPSIM_CACHE", str(tmp_path_factory.mktemp("trace-cache")))
        yield


def _frame(n: int = 1000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    t = np.concatenate([[0.0], np.cumsum(rng.exponential(0.5, n - 1))])
    return canonical_frame(t, rng.integers(1, 5000, n), rng.integers(1, 800, n))


def _cfg(name: str) -> dict:
    return yaml.safe_load((WORKLOADS / f"{name}.yaml").read_text())


def test_time_window_keeps_and_rebases():
    df = _frame()
    out = time_window(df, 100.0, 200.0)
    a = df.arrival_s.to_numpy()
    sel = (a >= 100) & (a < 200)
    assert len(out) == sel.sum()
    np.testing.assert_allclose(out.arrival_s, a[sel] - 100.0)
    assert out.prompt_tokens.tolist() == df.prompt_tokens[sel].tolist()
    assert len(time_window(df, end_s=50.0)) == (a < 50).sum()
    with pytest.raises(ConfigError, match="end_s must be > 100"):
        time_window(df, 100.0, 100.0)


def test_rate_scale_halves_span_keeps_rows():
    df = _frame()
    out = rate_scale(df, 2.0)
    assert len(out) == len(df)
    assert out.arrival_s.iloc[-1] == pytest.approx(df.arrival_s.iloc[-1] / 2)
    assert df.arrival_s.iloc[-1] > out.arrival_s.iloc[-1]  # input untouched
    with pytest.raises(ConfigError, match="rate_scale must be > 0"):
        rate_scale(df, 0)


def test_sampling_counts_order_and_seed():
    df = _frame()
    a = sample_fraction(df, 0.25, stream(1, "workload.sample"))
    assert len(a) == 250
    assert np.all(np.diff(a.arrival_s) >= 0)
    assert set(a.arrival_s).issubset(set(df.arrival_s))
    pd.testing.assert_frame_equal(a, sample_fraction(df, 0.25, stream(1, "workload.sample")))
    assert not a.equals(sample_fraction(df, 0.25, stream(2, "workload.sample")))
    assert first_n(df, 10).equals(df.iloc[:10])
    with pytest.raises(ConfigError, match="sample_fraction must be <= 1"):
        sample_fraction(df, 1.5, stream(1, "s"))


def test_clip_tokens():
    out = clip_tokens(_frame(), max_prompt_tokens=100, max_output_tokens=7)
    assert out.prompt_tokens.max() == 100 and out.output_tokens.max() == 7
    assert out.prompt_tokens.dtype == np.int64


def test_model_assignment():
    df = _frame(20_000)
    assert set(assign_model(df, model="llama3.1-70b").model) == {"llama3.1-70b"}
    mix = {"llama3.1-8b": 0.7, "llama3.1-70b": 0.3}
    a = assign_model(df, model_mix=mix, rng=stream(4, "workload.model"))
    assert a.model.dtype == object
    assert (a.model == "llama3.1-8b").mean() == pytest.approx(0.7, abs=0.015)
    again = assign_model(df, model_mix=mix, rng=stream(4, "workload.model"))
    pd.testing.assert_frame_equal(a, again)
    with pytest.raises(ConfigError, match="model and model_mix are exclusive"):
        assign_model(df, model="a", model_mix=mix)
    with pytest.raises(ConfigError, match=r"model_mix\.b must be >= 0"):
        assign_model(df, model_mix={"a": 1, "b": -1})


@settings(max_examples=40, deadline=None)
@given(
    start=st.one_of(st.none(), st.floats(0, 300)),
    length=st.one_of(st.none(), st.floats(1, 300)),
    frac=st.one_of(st.none(), st.floats(0.05, 1.0)),
    scale=st.floats(0.1, 10.0),
    cap=st.one_of(st.none(), st.integers(1, 5000)),
    seed=st.integers(0, 1000),
)
def test_transforms_keep_the_canonical_form(start, length, frac, scale, cap, seed):
    df = _frame(300, seed)
    end = None if length is None else (start or 0.0) + length
    opts = {"start_s": start, "end_s": end, "sample_fraction": frac, "rate_scale": scale,
            "max_prompt_tokens": cap, "model_mix": {"x": 1.0, "y": 2.0}}
    out = apply_transforms(df, opts, seed)
    validate_trace(out)
    assert len(out) <= len(df)
    if len(out):
        assert out.arrival_s.max() <= (df.arrival_s.max() - (start or 0.0)) / scale + 1e-9


# --- builder ----------------------------------------------------------------------------------


def test_catalog_lists_the_shipped_workloads():
    want = {"azure-conv-2023", "azure-code-2023", "mooncake-conversation", "mooncake-synthetic",
            "poisson-azure-cdf", "gamma-bursty"}
    assert want <= set(list_workloads(WORKLOADS))


@pytest.mark.parametrize("path", YAMLS, ids=[p.stem for p in YAMLS])
def test_every_workload_yaml_builds_a_canonical_frame(path):
    cfg = yaml.safe_load(path.read_text())
    assert cfg["name"] == path.stem
    df = build_workload(cfg, seed=5, base_dir=WORKLOADS)
    validate_trace(df)
    src = cfg["source"]
    if src.get("kind") == "constant_rate" and src.get("spacing") == "inference_perf":
        # (inference-perf's first request of a stage comes one gap after the stage starts)
        assert len(df) > 0 and 0 < df.arrival_s.iloc[0] < src["stages"][0]["duration_s"]
    else:
        assert len(df) > 0 and df.arrival_s.iloc[0] == 0.0
    assert list(df.columns) == [c for c in TRACE_COLUMNS if c in df.columns]
    pd.testing.assert_frame_equal(df, build_workload(cfg, seed=5, base_dir=WORKLOADS))
    reqs = to_requests(df.iloc[:3])
    assert [r.prompt_tokens for r in reqs] == df.prompt_tokens.iloc[:3].tolist()


def test_vllm_bench_is_poisson_at_the_rate_with_fixed_lengths():
    """`vllm bench serve --request-rate R` (burstiness 1): exponential gaps of mean 1/R (the
    sample mean within 4 standard errors, the coefficient of variation near 1) and every
    request the --random-input-len / --random-output-len it names."""
    cfg = _cfg("vllm-bench")
    cfg["source"]["arrivals"]["rate"] = 16.0
    cfg["source"]["num_requests"] = 4000
    cfg["source"]["lengths"]["prompt"]["value"] = 512
    df = build_workload(cfg, seed=3, base_dir=WORKLOADS)
    gaps = np.diff(df.arrival_s.to_numpy())
    assert len(df) == 4000
    assert abs(gaps.mean() - 1 / 16) < 4 * (1 / 16) / np.sqrt(len(gaps))
    assert gaps.std() / gaps.mean() == pytest.approx(1.0, abs=0.08)
    assert set(df.prompt_tokens) == {512} and set(df.output_tokens) == {128}


def test_default_workload_is_the_whole_conversation_trace():
    df = build_workload(_cfg("azure-conv-2023"), seed=0, base_dir=WORKLOADS)
    assert len(df) == 19366


def test_flat_overrides():
    base = build_workload(_cfg("azure-conv-2023"), seed=0, base_dir=WORKLOADS)
    fast = load_workload("azure-conv-2023", seed=0, base_dir=WORKLOADS, rate_scale=2.0)
    assert fast.arrival_s.iloc[-1] == pytest.approx(base.arrival_s.iloc[-1] / 2)
    win = load_workload("azure-conv-2023", 0, WORKLOADS, start_s=600, end_s=1200, model="m")
    assert win.arrival_s.min() >= 0 and win.arrival_s.max() < 600
    assert set(win.model) == {"m"}
    few = load_workload("mooncake-conversation", 0, WORKLOADS, sample_fraction=0.1)
    assert len(few) == round(0.1 * 12031)
    assert len(load_workload("gamma-bursty", 0, WORKLOADS, max_requests=7)) == 7


def test_dictconfig_input_and_seed_dependence():
    from omegaconf import OmegaConf

    cfg = OmegaConf.create(_cfg("gamma-bursty"))
    a = build_workload(cfg, seed=1, base_dir=WORKLOADS)
    pd.testing.assert_frame_equal(a, build_workload(_cfg("gamma-bursty"), 1, WORKLOADS))
    assert not a.equals(build_workload(cfg, seed=2, base_dir=WORKLOADS))


def test_generic_source_with_absolute_path(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("t,i,o\n0.5,3,2\n0.0,4,1\n")
    cfg = {"name": "x", "source": {"kind": "generic", "path": str(p),
                                   "columns": {"arrival_s": "t", "prompt_tokens": "i",
                                               "output_tokens": "o"}}}
    df = build_workload(cfg, seed=0)
    assert df.prompt_tokens.tolist() == [4, 3]


@pytest.mark.parametrize(
    ("cfg", "match"),
    [({"source": {"kind": "csv"}},
      r"workload\.source\.kind: unknown value 'csv'; "
      + r"valid choices: agent_rounds, azure, closed_loop, constant_rate, generic, mooncake, "
      + r"ragpulse, sessions, synthetic"),
     ({"source": {"kind": "azure", "path": "traces/azure_conv_2023.csv"}, "ratescale": 2},
      r"workload\.ratescale: unknown key 'ratescale'; valid keys: .*rate_scale"),
     ({"source": {"kind": "azure", "path": "traces/azure_conv_2023.csv", "sep": ";"}},
      r"workload\.source\.sep: unknown key 'sep'; valid keys: kind, path, cache, columns, "
      r"format"),
     ({"source": {"kind": "azure"}}, r"workload\.source\.path: a trace file is required"),
     ({"source": {"kind": "azure", "path": "traces/azure_conv_2023.csv"}, "start_s": 1e9},
      r"no request left")],
)
def test_builder_config_errors(cfg, match):
    with pytest.raises(ConfigError, match=match):
        build_workload(cfg, seed=0, base_dir=WORKLOADS)


def test_builder_missing_trace_file():
    with pytest.raises(ConfigError, match=r"workload\.source\.path: trace file 'nope\.csv' not "
                       r"found in .*workloads \(the workload catalog folders\) nor in the "
                       r"current directory"):
        build_workload({"source": {"kind": "azure", "path": "nope.csv"}}, 0, WORKLOADS)
    with pytest.raises(ConfigError, match=r"^workload\.source\.path: trace file '.*nope\.csv' "
                       r"not found$"):  # absolute: names its field too
        build_workload({"source": {"kind": "azure", "path": str(WORKLOADS / "nope.csv")}}, 0,
                       WORKLOADS)


def test_a_relative_trace_path_is_found_in_the_current_directory(tmp_path, monkeypatch):
    """`workload.source.path=my.csv` with my.csv here was looked up in workloads/ only."""
    (tmp_path / "my.csv").write_text("arrival_s,prompt_tokens,output_tokens\n0,100,5\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WRPSIM_CACHE", "off")
    df = build_workload({"source": {"kind": "generic", "path": "my.csv"}}, 0, WORKLOADS)
    assert df["prompt_tokens"].tolist() == [100]
    with pytest.raises(ConfigError, match=r"workload: unknown value 'nope'; valid choices: "):
        load_workload("nope", base_dir=WORKLOADS)


def test_a_trace_path_in_the_catalog_and_here_warns_and_dot_slash_means_here(tmp_path,
                                                                            monkeypatch):
    """A user's traces/azure_conv_2023.csv (five rows) was silently replaced by the shipped
    19,366-row file of the same relative name: now the catalog's still wins for the bare name
    but a warning names both, and ./traces/... reads the current directory's."""
    (tmp_path / "traces").mkdir()
    shipped = (WORKLOADS / "traces" / "azure_conv_2023.csv").read_text().splitlines()
    (tmp_path / "traces" / "azure_conv_2023.csv").write_text("\n".join(shipped[:6]) + "\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WRPSIM_CACHE", "off")
    src = {"kind": "azure", "path": "traces/azure_conv_2023.csv"}
    with pytest.warns(WrpsimWarning, match=r"workload\.source\.path: 'traces/azure_conv_2023"
                      r"\.csv' is both .*workloads/traces/azure_conv_2023\.csv \(workload "
                      r"catalog, used\) and .*\(current directory\); write "
                      r"\./traces/azure_conv_2023\.csv"):
        assert len(build_workload({"source": src}, 0, WORKLOADS)) == len(shipped) - 1
    here = {"kind": "azure", "path": "./traces/azure_conv_2023.csv"}
    assert len(build_workload({"source": here}, 0, WORKLOADS)) == 5
    with pytest.raises(ConfigError, match=r"trace file '\./nope\.csv' not found in the current "
                       r"directory"):
        build_workload({"source": {"kind": "azure", "path": "./nope.csv"}}, 0, WORKLOADS)


def test_timestamps_a_user_most_likely_did_not_mean_are_warned_about(tmp_path, monkeypatch):
    """Millisecond timestamps read as seconds (200 requests over 26 hours) and one mistyped
    timestamp (a 31.7-year trace, paid for in full) ran without a word."""
    monkeypatch.setenv("WRPSIM_CACHE", "off")
    ms = tmp_path / "ms.csv"
    ms.write_text("ts,inp,out\n" + "".join(f"{i * 480},100,10\n" for i in range(200)))
    cols = {"arrival_s": "ts", "prompt_tokens": "inp", "output_tokens": "out"}
    src = {"kind": "generic", "path": str(ms), "columns": cols}
    with pytest.warns(WrpsimWarning, match=r"ms\.csv: 200 requests over 95,520 s \(0\.0021 "
                      r"requests/s\): if the file's timestamps are milliseconds or microseconds, "
                      r"set \+\+workload\.source\.time_unit=ms"):
        build_workload({"source": src}, 0, WORKLOADS)
    typo = tmp_path / "typo.csv"
    typo.write_text("ts,inp,out\n" + "".join(f"{i},100,10\n" for i in range(199))
                    + "1000000000,100,10\n")
    with pytest.warns(WrpsimWarning, match=r"typo\.csv: the last of 200 arrivals \(at "
                      r"1,000,000,000\.000 s\) is 999,999,802 s from all the others, most of "
                      r"the trace's 1,000,000,000 s: a mistyped timestamp\?"):
        build_workload({"source": {**src, "path": str(typo)}}, 0, WORKLOADS)
    with warnings.catch_warnings():  # cut off by the transforms: nothing left to say
        warnings.simplefilter("error", WrpsimWarning)
        build_workload({"source": {**src, "path": str(typo)}, "end_s": 500}, 0, WORKLOADS)
        two = tmp_path / "two.csv"  # two batches hours apart: not a typo
        two.write_text("ts,inp,out\n" + "".join(f"{t},100,10\n" for t in
                                                (0, 1, 2, 3, 20000, 20001, 20002)))
        build_workload({"source": {**src, "path": str(two)}}, 0, WORKLOADS)
    with warnings.catch_warnings():  # an ordinary trace: nothing to say
        warnings.simplefilter("error", WrpsimWarning)
        build_workload({"source": {**src, "time_unit": "ms"}}, 0, WORKLOADS)


def test_think_times_without_sessions_are_warned_about_and_one_column_twice_refused(
        tmp_path, monkeypatch):
    monkeypatch.setenv("WRPSIM_CACHE", "off")
    f = tmp_path / "th.csv"
    f.write_text("ts,inp,out,think\n0,100,10,1\n1,100,10,2\n")
    cols = {"arrival_s": "ts", "prompt_tokens": "inp", "output_tokens": "out", "think_s": "think"}
    src = {"kind": "generic", "path": str(f), "columns": cols}
    with pytest.warns(WrpsimWarning, match=r"th\.csv: the trace has think times \(think_s\) but "
                      r"no session_id: .* every row is sent at its arrival_s"):
        build_workload({"source": src}, 0, WORKLOADS)
    both = {**src, "columns": {"arrival_s": "ts", "prompt_tokens": "inp", "output_tokens": "inp"}}
    with pytest.raises(TraceError, match=r"th\.csv: column inp is mapped to prompt_tokens and "
                       r"output_tokens; each trace field reads its own column"):
        build_workload({"source": both}, 0, WORKLOADS)


def test_a_model_mix_over_a_trace_that_names_its_models_is_warned_about(tmp_path, monkeypatch):
    monkeypatch.setenv("WRPSIM_CACHE", "off")
    f = tmp_path / "m.csv"
    f.write_text("arrival_s,prompt_tokens,output_tokens,model\n0,100,10,llama3.1-8b\n"
                 "1,100,10,llama3.1-70b\n")
    src = {"kind": "generic", "path": str(f)}
    with pytest.warns(WrpsimWarning, match=r"workload\.model_mix replaces the model the trace "
                      r"names per request \(its model column\); set workload\.model_mix=null"):
        got = build_workload({"source": src, "model_mix": {"llama3.1-8b": 1.0}}, 0, WORKLOADS)
    assert got["model"].tolist() == ["llama3.1-8b"] * 2
    with warnings.catch_warnings():
        warnings.simplefilter("error", WrpsimWarning)
        assert build_workload({"source": src}, 0, WORKLOADS)["model"].tolist() == [
            "llama3.1-8b", "llama3.1-70b"]
