"""The column form of a trace (`TraceColumns`) and the transforms written on it.

Each transform of steps 0-6 has one implementation, on columns; these tests hold it to the
DataFrame code it replaced (kept here as the reference, `_ref_*`), on frames with every kind
of column (text, hash ids, optional numbers), and check that the column form and the frame form
of `apply_transforms` / `build_workload` / `validate_*` agree."""

from __future__ import annotations

from dataclasses import astuple

import numpy as np
import pandas as pd
import pytest

from wrpsim.errors import TraceError
from wrpsim.rng import stream
from wrpsim.workload import (
    apply_transforms,
    assign_model,
    build_workload,
    canonical_frame,
    clip_tokens,
    first_n,
    rate_scale,
    reblock,
    sample_fraction,
    time_window,
    to_requests,
)
from wrpsim.workload.build import build_trace
from wrpsim.workload.columns import TraceColumns, as_columns, present
from wrpsim.workload.prefix import n_blocks
from wrpsim.workload.validate import validate_columns, validate_trace


@pytest.fixture(autouse=True, scope="module")
def _cache_env(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WRPSIM_CACHE", str(tmp_path_factory.mktemp("trace-cache")))
        yield


def _frame(n: int = 400, seed: int = 0, block: int = 32) -> pd.DataFrame:
    """A canonical frame with text, hash-id and optional number columns (some None / NaN)."""
    rng = np.random.default_rng(seed)
    t = np.concatenate([[0.0], np.cumsum(rng.exponential(0.5, n - 1))])
    prompt = rng.integers(1, 3000, n)
    ids = [None if i % 7 == 0 else list(range(i * 1000, i * 1000 + n_blocks(p, block)))
           for i, p in enumerate(prompt.tolist())]
    df = canonical_frame(t, prompt, rng.integers(1, 800, n), {
        "model": [None if i % 5 == 0 else f"m{i % 3}" for i in range(n)],
        "session_id": [None if i % 4 == 0 else f"s{i % 11}" for i in range(n)],
        "hash_ids": ids,
        "complexity": [None if i % 6 == 0 else float(rng.random()) for i in range(n)],
        "images": [i % 3 for i in range(n)],
    })
    df.attrs["hash_block_tokens"] = block
    return df


# -- the DataFrame code each column transform replaced (the reference behaviour) ------------

def _ref_time_window(df, start_s, end_s):
    start = 0.0 if start_s is None else float(start_s)
    a = df["arrival_s"].to_numpy()
    keep = a >= start
    if end_s is not None:
        keep &= a < end_s
    out = df.loc[keep].reset_index(drop=True)
    if start:
        out["arrival_s"] = out["arrival_s"].to_numpy() - start
    return out


def _ref_rate_scale(df, f):
    out = df.copy()
    out["arrival_s"] = out["arrival_s"].to_numpy() / f
    return out


def _ref_sample_fraction(df, f, rng):
    k = round(f * len(df))
    idx = np.sort(rng.choice(len(df), size=k, replace=False))
    return df.iloc[idx].reset_index(drop=True)


def _ref_first_n(df, n):
    return df.iloc[:n].reset_index(drop=True)


def _ref_clip(df, max_prompt, max_output):
    out = df.copy()
    for col, bound in (("prompt_tokens", max_prompt), ("output_tokens", max_output)):
        if bound is not None:
            out[col] = np.minimum(out[col].to_numpy(), bound).astype(np.int64)
    if max_prompt is not None:
        b = out.attrs["hash_block_tokens"]
        out["hash_ids"] = pd.Series(
            [None if h is None else list(h[: n_blocks(p, b)])
             for h, p in zip(out["hash_ids"], out["prompt_tokens"].tolist())], dtype=object)
    return out


def _ref_assign_model(df, model, mix, rng):
    out = df.copy()
    if model is not None:
        out["model"] = pd.Series([model] * len(out), dtype=object)
        return out
    names = sorted(mix)
    w = np.array([float(mix[k]) for k in names])
    pick = rng.choice(len(names), size=len(out), p=w / w.sum())
    out["model"] = pd.Series(np.array(names, dtype=object)[pick], dtype=object)
    return out


def _same(got: pd.DataFrame, want: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(got, want)
    assert got.attrs == want.attrs


CASES = [
    (lambda d: time_window(d, 20.0, 90.0), lambda d: _ref_time_window(d, 20.0, 90.0)),
    (lambda d: time_window(d, None, 50.0), lambda d: _ref_time_window(d, None, 50.0)),
    (lambda d: time_window(d, 10.0), lambda d: _ref_time_window(d, 10.0, None)),
    (lambda d: rate_scale(d, 2.5), lambda d: _ref_rate_scale(d, 2.5)),
    (lambda d: sample_fraction(d, 0.3, stream(3, "workload.sample")),
     lambda d: _ref_sample_fraction(d, 0.3, stream(3, "workload.sample"))),
    (lambda d: first_n(d, 17), lambda d: _ref_first_n(d, 17)),
    (lambda d: clip_tokens(d, 700, 100), lambda d: _ref_clip(d, 700, 100)),
    (lambda d: clip_tokens(d, None, 50), lambda d: _ref_clip(d, None, 50)),
    (lambda d: assign_model(d, "llama3.1-70b"),
     lambda d: _ref_assign_model(d, "llama3.1-70b", None, None)),
    (lambda d: assign_model(d, None, {"a": 1, "b": 3}, stream(1, "workload.model")),
     lambda d: _ref_assign_model(d, None, {"a": 1, "b": 3}, stream(1, "workload.model"))),
]


@pytest.mark.parametrize("case", range(len(CASES)))
def test_column_transforms_match_the_dataframe_reference(case):
    fn, ref = CASES[case]
    df = _frame()
    want = ref(df)
    _same(fn(df), want)  # a DataFrame in: a DataFrame out
    got = fn(TraceColumns.from_frame(df))  # the column form: the same values, no pandas
    assert isinstance(got, TraceColumns)
    _same(got.to_frame(), want)
    _same(df, _frame())  # the input is not modified


def test_reblock_matches_per_row_reblocking():
    df = _frame(block=64)
    for new in (32, 128):
        got = reblock(TraceColumns.from_frame(df), new)
        assert got.attrs["hash_block_tokens"] == new
        assert [None if h is None else len(h) for h in got["hash_ids"]] == [
            None if h is None else n_blocks(p, new)
            for h, p in zip(df["hash_ids"], df["prompt_tokens"])]
        _same(reblock(df, new), got.to_frame())


def test_apply_transforms_gives_the_same_trace_in_both_forms():
    df = _frame()
    opts = {"start_s": 5.0, "end_s": 150.0, "sample_fraction": 0.8, "max_requests": 150,
            "rate_scale": 1.5, "max_prompt_tokens": 1200, "max_output_tokens": 300,
            "model_mix": {"x": 1.0, "y": 2.0}, "hash_block_tokens": 64}
    framed = apply_transforms(df, opts, 7)
    cols = apply_transforms(TraceColumns.from_frame(df), opts, 7)
    _same(cols.to_frame(), framed)
    assert list(map(astuple, to_requests(cols))) == list(map(astuple, to_requests(framed)))


def test_round_trip_keeps_values_and_dtypes():
    df = _frame()
    back = TraceColumns.from_frame(df).to_frame()
    _same(back, df)
    assert [str(t) for t in back.dtypes] == [str(t) for t in df.dtypes]


def test_take_head_select_and_present():
    t = as_columns(_frame(20))
    assert t.take(np.array([3, 1]))["session_id"] == [t["session_id"][3], t["session_id"][1]]
    mask = np.zeros(20, dtype=bool)
    mask[[0, 5]] = True
    assert t.take(mask)["arrival_s"].tolist() == t["arrival_s"][[0, 5]].tolist()
    assert len(t.head(4)) == 4 and t.head(4).attrs == t.attrs
    assert t.select(["model", "arrival_s", "nope"]).columns == ("model", "arrival_s")
    assert present([None, float("nan"), "a", 0.0]).tolist() == [False, False, True, True]
    with pytest.raises(TraceError, match="different lengths"):
        TraceColumns({"arrival_s": np.zeros(2), "prompt_tokens": np.ones(3, dtype=np.int64)})


def test_validate_columns_says_what_validate_trace_says():
    good = _frame(30)
    assert validate_columns(as_columns(good)) is not None
    bad_frames = []
    df = good.copy()
    df.loc[3, "prompt_tokens"] = 0
    bad_frames.append(df)
    df = good.copy()
    df["arrival_s"] = df["arrival_s"].to_numpy()[::-1].copy()
    bad_frames.append(df)
    df = good.copy()
    df.loc[2, "model"] = 5
    bad_frames.append(df)
    df = good.copy()
    df.attrs["hash_block_tokens"] = 64
    bad_frames.append(df)
    for df in bad_frames:
        with pytest.raises(TraceError) as framed:
            validate_trace(df, source="t")
        with pytest.raises(TraceError) as cols:
            validate_columns(as_columns(df), source="t")
        assert str(cols.value) == str(framed.value)
    wrong = as_columns(good).with_columns({"complexity": good["complexity"].tolist()})
    with pytest.raises(TraceError, match="column complexity has dtype object, expected float64"):
        validate_columns(wrong)


def test_build_trace_is_build_workload_in_columns():
    cfg = {"name": "t", "source": {"kind": "azure", "path": "traces/azure_conv_2023.csv"},
           "start_s": 60, "end_s": 600, "max_requests": 300, "rate_scale": 2.0,
           "max_output_tokens": 200, "model": "llama3.1-70b"}
    cols = build_trace(cfg, 0)
    assert isinstance(cols, TraceColumns)
    _same(cols.to_frame(), build_workload(cfg, 0))


def test_iter_requests_builds_the_same_requests_a_block_at_a_time():
    from wrpsim.workload.request import iter_requests

    cols = apply_transforms(TraceColumns.from_frame(_frame()), {"hash_block_tokens": 64}, 7)
    want = list(map(astuple, to_requests(cols)))
    it = iter_requests(cols, block=7)
    first = next(it)  # built before the rest of the trace is read
    assert [astuple(first), *map(astuple, it)] == want
    assert list(map(astuple, iter_requests(cols.to_frame(), block=1000))) == want
