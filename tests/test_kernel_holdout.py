"""Kernel tables on shapes they never saw: the RTX PRO 6000's six LLMServingSim profiles
(Llama-3.1-8B, Qwen3-32B and Qwen3-30B-A3B at TP 1 and 2; vLLM 0.19 on the machine of its
serving runs) timed by the GPU's engine tables (AIConfigurator's, another machine) and leave one
profile out (each by tables merged from the other five); the H200's AIConfigurator GEMM grid
against the developers' own H200 timings of catalog models' shapes off that grid; and the
head-layout transfer's fixed latency."""

from __future__ import annotations

import numpy as np
import pytest

from wrpsim.pool.catalog import get_gpu
from wrpsim.pool.engines import get_engine, kernels_for
from wrpsim.validate.kernels import (
    COLUMNS,
    engine_layouts,
    holdout_errors,
    leave_one_out,
    merged_profiles,
    shipped_holdouts,
)

HOLDOUTS = shipped_holdouts()


RTX = "rtxpro6000-96gb"


@pytest.fixture(scope="module")
def merged(tmp_path_factory):
    """The six RTX PRO 6000 profiles merged (in this session's temporary folder)."""
    return merged_profiles(HOLDOUTS[RTX], get_gpu(RTX), tmp_path_factory.mktemp("merged"))


@pytest.fixture(scope="module")
def loo(merged):
    """{profile: its errors under tables merged from the other five}."""
    return {r["tables"]: r for r in leave_one_out(merged, HOLDOUTS[RTX])}


def test_shipped_holdouts_are_other_sources_or_other_shapes(merged):
    assert set(HOLDOUTS) == {RTX, "h200-141gb"}
    assert {d.name for d in HOLDOUTS["h200-141gb"]} == {
        "torch-linear", "torch-linear-grid", "torch-linear-msweep", "torch-scaled-mm-fp8",
        "torch-scaled-mm-fp8-grid"}
    names = {d.name for d in HOLDOUTS[RTX]}
    assert names == {f"{m}-tp{tp}" for m in ("Llama-3.1-8B", "Qwen3-32B", "Qwen3-30B-A3B")
                     for tp in (1, 2)}
    assert len(engine_layouts(merged)) == 6
    for engine in ("vllm-0.24", "vllm-0.19"):  # AIConfigurator's: none of the six in them
        assert engine_layouts(kernels_for(get_engine(engine), RTX)) == []
    assert engine_layouts(kernels_for(get_engine("vllm-0.24"), "h200-141gb")) == []


#: the leave-one-profile-out figures docs/validation.md publishes: median absolute error % of
#: GEMMs (all, m <= 64, m > 64), decode and prefill attention
PUBLISHED = {
    "Llama-3.1-8B-tp1": (4.3, 3.6, 5.6, 1.4, 2.3),
    "Llama-3.1-8B-tp2": (5.3, 4.1, 5.6, 1.6, 5.4),
    "Qwen3-30B-A3B-tp1": (16.6, 53.4, 15.4, 1.6, 2.1),
    "Qwen3-30B-A3B-tp2": (10.6, 22.2, 9.1, 1.2, 5.7),
    "Qwen3-32B-tp1": (2.8, 1.5, 3.2, 3.6, 7.4),
    "Qwen3-32B-tp2": (3.9, 2.6, 4.6, 1.5, 1.7),
}


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_rtxpro6000_profiles_predicted_by_the_other_five(name, loo):
    """Each of the RTX PRO 6000's six profiles, timed by tables merged from the other five,
    gives the published figures (within 0.5 points). The dense models' GEMMs are within 6 %
    and every prefill-attention column within 8 %; what carries over badly is documented, not
    bounded: Qwen3-30B-A3B's small attention projections (hidden 2,048: n or k below every
    other profile's) at decode sizes (+53 / -22 %). Decode attention of a layout the others lack
    is timed as the same query-heads-per-KV-head layout at the scaled batch: within 4 % (it was
    +10 to +17 % and -12 % moved by the roofline ratio)."""
    res = loo[name]
    assert res["source"].startswith("casys-kaist/LLMServingSim @ 5daddb2")
    assert res["held_out_of"] == 5
    for col, want in zip(COLUMNS, PUBLISHED[name]):
        assert res[col]["n"] >= 19, col
        assert res[col]["abs_median"] == pytest.approx(want, abs=0.5), (col, res[col])
    if "A3B" not in name:
        assert res["gemm"]["abs_median"] <= 6.0 and abs(res["gemm"]["signed_median"]) <= 3.0
    assert res["attn_prefill"]["abs_median"] <= 8.0
    assert res["attn_decode"]["abs_median"] <= 4.0


def test_leave_one_out_never_times_a_profile_with_its_own_rows(merged, loo):
    """With all six profiles merged a profile's own rows come back as measured (every GEMM and
    in-range attention row exact; Qwen3-32B TP 2 and Qwen3-30B-A3B TP 1, whose attention
    layout is the same 32 / 4 heads of 128, each within 2 % of the two profiles' median, which
    the tables hold); left out, they do not."""
    twins = {"Qwen3-32B-tp2", "Qwen3-30B-A3B-tp1"}
    for d in HOLDOUTS[RTX]:
        own = holdout_errors(merged, d)
        for col in COLUMNS:
            if d.name in twins and col.startswith("attn"):
                assert 0.0 < own[col]["abs_median"] <= 2.0, (d, col, own[col])
            else:
                assert own[col]["abs_median"] == 0.0 == own[col]["signed_median"], (d, col)
        assert loo[d.name]["gemm"]["abs_median"] > 1.0


def test_two_sources_of_one_gpus_kernels_agree():
    """The RTX PRO 6000 measured twice, by two tools on two machines: LLMServingSim's eager
    per-layer profiles (vLLM 0.19, the machine of its serving runs) timed by AIConfigurator's
    kernel sweeps (vLLM 0.19 and 0.24): every profile's GEMMs, decode and prefill attention
    agree within 12.5 / 11 / 10 % at the median under either version's tables (measured: at
    most 12.0 / 10.7 / 9.5; published in docs/validation.md). The 0.24 tables run faster
    than the 0.19 ones on every profile's GEMMs."""
    got = {}
    for engine in ("vllm-0.19", "vllm-0.24"):
        k = kernels_for(get_engine(engine), RTX)
        for d in HOLDOUTS[RTX]:
            res = got[engine, d.name] = holdout_errors(k, d)
            assert res["source"].startswith("casys-kaist/LLMServingSim @ 5daddb2")
            assert res["gemm"]["abs_median"] <= 12.5, (engine, d.name, res["gemm"])
            assert res["attn_decode"]["abs_median"] <= 11.0, (engine, d.name)
            assert res["attn_prefill"]["abs_median"] <= 10.0, (engine, d.name)
    for d in HOLDOUTS[RTX]:
        assert (got["vllm-0.24", d.name]["gemm"]["signed_median"]
                < got["vllm-0.19", d.name]["gemm"]["signed_median"])


def test_h200_gemm_interpolation_adds_little_to_the_machine_offset():
    """Catalog models' GEMM shapes off the H200 table's n, k and m grid, timed on an H200 with
    the tables' own kernel and method: their error is the machine's offset from the tables
    (measured on the grid itself, -8.4 %) plus what interpolation adds (measured: -8.3 %, i.e.
    nothing at the median); both within 12 %."""
    k = kernels_for(get_engine("vllm-0.24"), "h200-141gb")
    d = {p.name: p for p in HOLDOUTS["h200-141gb"]}
    held, grid = holdout_errors(k, d["torch-linear"]), holdout_errors(k, d["torch-linear-grid"])
    assert held["source"].startswith("wrpsim developers' own measurement, NVIDIA H200")
    assert held["gemm"]["n"] == 2300 and grid["gemm"]["n"] == 240
    assert held["attn_decode"]["n"] == 0  # GEMMs only
    for res in (held, grid):
        assert res["gemm"]["abs_median"] <= 12.0 and abs(res["gemm"]["signed_median"]) <= 12.0
    assert abs(held["gemm"]["signed_median"] - grid["gemm"]["signed_median"]) <= 3.0


def test_h200_fp8_interpolation_shows_no_bias_on_real_projection_sizes():
    """FP8 GEMMs timed on an H200 with cuBLASLt (`torch._scaled_mm`; the tables are vLLM's
    CUTLASS kernel): on weights of n*k >= 16 M elements the held-out shapes' signed median is
    within 10 points of the on-grid control's at both decode (m <= 64) and prefill sizes
    (measured: +6.7 vs -5.4, -0.5 vs +0.9); on small weights cuBLASLt is 30-48 % slower on and
    off the grid (a kernel difference; docs/validation.md)."""
    from wrpsim.validate.kernels import gemm_errors, read_cols

    k = kernels_for(get_engine("vllm-0.24"), "h200-141gb")
    d = {p.name: p for p in HOLDOUTS["h200-141gb"]}
    med = {}
    for name in ("torch-scaled-mm-fp8", "torch-scaled-mm-fp8-grid"):
        g = read_cols(d[name] / "gemm.parquet")
        assert set(g["dtype"].tolist()) == {"fp8"}
        e = gemm_errors(k, g)
        big = g["n"].astype(np.int64) * g["k"] >= 1 << 24
        for small_m in (True, False):
            sel = big & ((g["m"] <= 64) == small_m)
            med[name, small_m] = float(np.median(e[sel]))
            assert abs(med[name, small_m]) <= 10.0, (name, small_m, med[name, small_m])
        assert float(np.median(e[~big])) < -25.0  # cuBLASLt slower on small weights
    for small_m in (True, False):
        assert abs(med["torch-scaled-mm-fp8", small_m]
                   - med["torch-scaled-mm-fp8-grid", small_m]) <= 15.0


def test_head_layout_transfer_keeps_the_kernel_latency_floor(merged):
    """Half the heads of a measured layout (Qwen3-30B-A3B at TP 2: 16 / 2 heads; no profile
    measures 8 / 1) is the measured layout at half the batch (the same (sequence, KV head)
    work items): its grid holds the measured times at twice the batches, and below them it
    stays at the measured launch floor — never faster than the measured kernel's smallest
    time, never slower than the measured layout at the same batch."""
    k = merged
    own = k.attn_decode("bf16", 16, 2, 128)
    half = k.attn_decode("bf16", 8, 1, 128)
    assert np.array_equal(half.b, 2 * own.b) and np.array_equal(own.s, half.s)
    assert np.array_equal(half.t, own.t)
    floor = own.t.min()
    for b in (1.0, 2.0, 8.0, 100.0, 256.0):
        row_half, row_own = half.row(b), own.row(b)
        assert np.all(row_half >= floor - 1e-15)
        assert np.all(row_half <= row_own + 1e-15)
    # no layout of 8 query heads to one KV head has fewer KV heads than 16 / 2: one sequence
    # of 8 / 1 (half a sequence of 16 / 2) lies below the measured batches and is timed as
    # their first row, one sequence of 16 / 2 — an overestimate by at most that row's work
    assert np.array_equal(half.row(1.0), own.t[0])


def test_h200_power_shape_on_measured_watts():
    """H200's power shape is copied from H100 / B200 (no serving measurements); against watts
    measured on an H200 (pools/measured/device/power/): idle is the measured value; compute-
    bound GEMMs and prefill steps within 8 % (measured: -1 … +2 % and +1 / +1 %);
    bandwidth-bound GEMMs 11-16 % low; Llama-3.1-8B decode steps of 1 and 8 sequences within
    6 % (measured: +5, +3 %), of 32 within 12 % (-11 %).
    (A device copy, which keeps few SMs busy, is 32 % high; decode steps of 128-256 sequences,
    whose PyTorch attention is slower than the engine's, are 19-21 % low: documented, not
    asserted.)"""
    from wrpsim.paths import catalog_dir
    from wrpsim.validate.kernels import power_at_known_utilisation, power_of_measured_steps

    d = catalog_dir("pools") / "measured" / "device" / "power"
    rows = {(r["workload"], r["m"]): r for r in
            power_at_known_utilisation(d / "h200-141gb.csv", "h200-141gb")}
    assert abs(rows[("idle", 0)]["error"]) < 1.0
    for key, r in rows.items():
        if key[0].startswith("gemm") and r["u_compute"] > 0.5:
            assert abs(r["error"]) <= 8.0, (key, r)
        elif key[0].startswith("gemm"):
            assert -20.0 <= r["error"] <= 0.0, (key, r)  # bandwidth-bound: the model is low
    steps = power_of_measured_steps(d / "h200-141gb-steps.csv", "llama3.1-8b", "h200-141gb")
    assert len(steps) == 7
    for r in steps:
        if r["prompt"]:
            assert abs(r["error"]) <= 8.0, r
        elif r["seqs"] <= 32:
            assert abs(r["error"]) <= (6.0 if r["seqs"] <= 8 else 12.0), r
            assert r["gpu_s"] == pytest.approx(r["step_s"], rel=0.25)  # same step, two stacks


def test_sampler_constants_are_the_h200_measurement():
    """The engines' sampler terms are the random path measured on an H200: the shipped fit
    reproduces every measured point within 17 %, and an iteration's head time grows by
    exactly floor + passes x m x vocab x 4 B / streaming bandwidth over the LM head GEMM."""
    import csv
    from pathlib import Path

    from wrpsim.paths import catalog_dir
    from wrpsim.pool.engines import build_latency_model

    c = get_engine("vllm-0.24").constants
    assert get_engine("vllm-0.11").constants.sampling_passes == c.sampling_passes
    bw = kernels_for(get_engine("vllm-0.24"), "h200-141gb").stream_bw()
    path = Path(catalog_dir("pools")) / "measured" / "device" / "sampler" / "h200-141gb.csv"
    rows = [r for r in csv.DictReader(path.open()) if r["path"] == "random"]
    assert len(rows) == 15
    for r in rows:
        model = c.sampling_floor_us * 1e-6 + c.sampling_passes * int(r["m"]) * int(
            r["vocab"]) * 4.0 / bw
        assert abs(model / (float(r["ms"]) * 1e-3) - 1) <= 0.17, r
    lat = build_latency_model("llama3.1-8b", "h200-141gb", 1)
    bare = build_latency_model("llama3.1-8b", "h200-141gb", 1, overrides={
        "sampling_passes": 0.0, "sampling_floor_us": 0.0})
    for m in (1, 64, 512):
        extra = lat._head_at(m) - bare._head_at(m)
        assert extra == pytest.approx(c.sampling_floor_us * 1e-6 + c.sampling_passes * m
                                      * 128256 * 4.0 / lat._stream, rel=1e-9)
