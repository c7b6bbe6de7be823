"""The kernel-table latency model (engines vllm-0.24 / vllm-0.11): measured points, physics
invariants, precisions, architectures, calibration labels and context limits."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from tests.conftest import gpu_yaml
from wrpsim.errors import ConfigError
from wrpsim.pool.catalog import catalog_path, get_gpu, get_model, gpus, load_gpus
from wrpsim.pool.engines import build_latency_model, get_engine, kernels_for
from wrpsim.pool.kernels import operators
from wrpsim.pool.kernels import roofline as rl
from wrpsim.pool.kernels.borrowed import short_loop

TABLES = catalog_path() / "engines" / "vllm-0.24"


def _rows(gpu: str, table: str) -> dict:
    t = pq.read_table(TABLES / gpu / f"{table}.parquet")
    return {c: t.column(c).to_numpy() for c in t.column_names}


@pytest.mark.parametrize("gpu", ["h100-80gb", "b200-180gb", "a100-80gb"])
def test_gemm_curve_returns_the_measurement_at_measured_shapes(gpu):
    """BF16 cells come back exactly, or at the GPU's sustained rate where the short-loop
    measurement ran faster than the GPU sustains at its power limit (H100); a quantised cell
    comes back as measured or, where it was measured slower than BF16, no slower than BF16
    (the engine's path: see calibrate.aic) — again no faster than the sustained rate."""
    k = kernels_for(get_engine("vllm-0.24"), gpu)
    g = get_gpu(gpu)
    rows = _rows(gpu, "gemm")
    rng = np.random.default_rng(0)
    for i in rng.choice(len(rows["m"]), 60, replace=False):
        dt, m, n, kk = str(rows["dtype"][i]), rows["m"][i], rows["n"][i], rows["k"][i]
        got = float(k.gemm(dt, int(n), int(kk))(float(m)))
        floor = 2.0 * m * n * kk / (rl.sustained_flops(g, dt) or math.inf)
        meas = rows["ms"][i] * 1e-3
        if dt == "bf16":
            assert got == pytest.approx(max(meas, floor), rel=1e-5)
        else:
            bf16 = float(k.gemm("bf16", int(n), int(kk))(float(m)))
            assert got <= max(meas, floor) * (1 + 1e-6)
            assert got <= max(bf16, floor) * (1 + 1e-6)
            assert got >= floor * (1 - 1e-9)
    # the bound binds somewhere in the table exactly where the GPU has a measured rate (the
    # short loops run BF16 GEMMs faster than the H100 / H200 / B200 sustain at their limit)
    bf = rows["dtype"] == "bf16"
    rate = 2.0 * rows["m"][bf] * rows["n"][bf] * rows["k"][bf] / (rows["ms"][bf] * 1e-3)
    bound = rl.sustained_flops(g, "bf16")
    assert bool(bound > 0 and (rate > bound).any()) == bool(g.bf16_sustained_tflops)


def test_a_step_at_the_sustained_rate_draws_the_power_limit():
    """While the bound holds the GPU is at its power limit (that is where the rate was
    measured): the power shape, fitted on utilisations over unbounded kernel times, takes the
    GEMMs' compute utilisation over their time without the bound and reaches TDP (it gave
    666 W for this step, its GEMMs bounded, against 690 W before the bound); a GPU without a
    sustained rate (A100) is unchanged by this, and the B200's looser bound holds only on
    long prefill steps."""
    lat = build_latency_model("llama3.1-8b", "h100-80gb", 1)
    fresh = 4 * 4096 * 4097 / 2
    dur = lat.iteration_s(4 * 4096, fresh, 0, 0, 4)
    assert lat.power_w(4 * 4096, 0, None, dur, fresh) >= 685.0
    assert lat.power_w(2048, 0, None, lat.iteration_s(2048, 2048 * 2049 / 2, 0, 0, 1)) == 700.0
    assert sum(lat._lin_bound) > 0 and lat._lin_bound[16] == 0.0  # decode-sized: no bound
    a100 = build_latency_model("llama3.1-8b", "a100-80gb", 1)
    assert not any(a100._lin_bound) and not any(a100._head_bound)
    b200 = build_latency_model("llama3.1-8b", "b200-180gb", 1)
    assert sum(b200._lin_bound) > 0 and b200._lin_bound[256] == 0.0


def test_the_calibration_label_states_the_sustained_rate():
    """Its own rate, for the dense math and, where the MoE layers compute in another, for
    those; for a GPU timed from the H100's tables, the share of peak carried over."""
    gpt = build_latency_model("gpt-oss-120b", "h100-80gb", 1, precision="mxfp4_mxfp8")
    assert gpt.calibration.endswith("; GEMMs at most 666 TFLOP/s (bf16, sustained at the power "
                                    "limit); MoE layers at most 1,249 TFLOP/s (fp8, sustained "
                                    "at the power limit); MoE shape (128 experts of 2880, top "
                                    "4, hidden 2880) not measured: the nearest measured shape "
                                    "by the roofline ratio")  # (in the FP8 table it is timed
    # from; its own MXFP4 one has it: no note)
    assert "MoE shape" not in build_latency_model("gpt-oss-120b", "h100-80gb", 1,
                                                  precision="mxfp4").calibration
    mi = build_latency_model("qwen3-14b", "mi300x-192gb", 1).calibration
    assert "; GEMMs at most 880 TFLOP/s (bf16, h100-80gb's sustained share of peak)" in mi
    assert build_latency_model("llama3.1-70b", "h100-80gb", 4, precision="fp8").calibration \
        .endswith("; GEMMs at most 1,249 TFLOP/s (fp8, sustained at the power limit); "
                  "all-reduce fused with RMSNorm up to 2 MiB (FlashInfer)")
    assert "GEMMs at most 666 TFLOP/s (bf16, sustained at the power limit); power shape " \
        "copied from h100-80gb" in build_latency_model("llama3.1-8b", "h200-141gb", 1).calibration
    assert "; GEMMs at most 1,456 TFLOP/s (bf16, sustained at the power limit)" in \
        build_latency_model("llama3.1-8b", "b200-180gb", 1).calibration
    assert "sustained" not in build_latency_model("llama3.1-8b", "a100-80gb", 1).calibration


def test_sustained_gemm_rates_are_the_h200_power_limit_measurement():
    """The catalog's sustained rates are the shipped measurement (BF16: median of the m >= 1,024
    GEMMs at the power limit; FP8: its one row), copied to the H100 (same die, same limit);
    the B200's are ml-engineering's published MSMF (stas00/ml-engineering 082816f,
    compute/accelerator/README.md: 1,456.3 / 2,795.7 TFLOP/s at ~994 W, 1,339 MHz); GPUs
    without a measurement are not capped."""
    import csv
    import subprocess
    import sys

    from wrpsim.validate.kernels import sustained_rates

    path = catalog_path().parent / "measured" / "device" / "power" / "h200-141gb.csv"
    with path.open() as f:
        rows = [r for r in csv.DictReader(f) if r["workload"].startswith("gemm")]
    rate = {dt: [float(r["flops"]) / float(r["replay_s"]) / 1e12 for r in rows
                 if r["workload"] == f"gemm_{dt}" and int(r["m"]) >= 1024]
            for dt in ("bf16", "fp8")}
    assert sorted(round(r) for r in rate["bf16"]) == [662, 666, 675] and len(rate["fp8"]) == 1
    for gpu in ("h200-141gb", "h100-80gb"):
        g = get_gpu(gpu)
        assert g.bf16_sustained_tflops == round(float(np.median(rate["bf16"])))
        assert g.fp8_sustained_tflops == round(float(np.median(rate["fp8"])))
        # weight-only MXFP4 computes at the BF16 rate; block FP8 on the FP8 tensor cores
        assert rl.sustained_flops(g, "mxfp4_marlin") == g.bf16_sustained_tflops * 1e12
        assert rl.sustained_flops(g, "fp8_block") == g.fp8_sustained_tflops * 1e12
    # what the experiment script prints for the catalog, from the same rows
    assert sustained_rates(path) == {"bf16_sustained_tflops": 666.0,
                                     "fp8_sustained_tflops": 1249.0}
    script = catalog_path().parents[1] / "docs" / "experiments" / "device_power.py"
    r = subprocess.run([sys.executable, str(script), "sustained", str(path)],
                       capture_output=True, text=True, check=True)
    assert r.stdout == "  bf16_sustained_tflops: 666\n  fp8_sustained_tflops: 1249\n"
    b200 = get_gpu("b200-180gb")
    assert (b200.bf16_sustained_tflops, b200.fp8_sustained_tflops) == (1456, 2796)
    for gpu in ("b300-288gb", "a100-80gb", "l40s-48gb"):
        assert rl.sustained_flops(get_gpu(gpu), "bf16") == 0.0


def test_a_long_prefill_gemm_runs_at_the_sustained_rate_and_a_decode_gemm_as_measured():
    """On the H100, the projection GEMMs of an 8k-token prefill chunk take FLOPs / sustained
    rate (the tables' short loops ran them 7-25 % faster); a 16-token decode GEMM, bound by
    reading its weights, keeps its measured time. MoE layers are bounded the same way."""
    k = kernels_for(get_engine("vllm-0.24"), "h100-80gb")
    free = short_loop(k)  # as the tables' short loops measured
    for n, kk in ((7168, 5120), (5120, 17408), (34816, 5120)):
        for m in (2048.0, 8192.0):
            got, was = float(k.gemm("bf16", n, kk)(m)), float(free.gemm("bf16", n, kk)(m))
            assert got == pytest.approx(max(was, 2 * m * n * kk / 666e12), rel=1e-9)
            assert got > was
        assert float(k.gemm("bf16", n, kk)(16.0)) == float(free.gemm("bf16", n, kk)(16.0))
    moe, moe_free = (x.moe("bf16", 2048, 768, 8, 128, 1, 1) for x in (k, free))
    t = moe.x[-1]
    assert float(moe(t)) >= rl.moe_flops(t, 2048, 768, 8, 1, 1) / 666e12 * (1 - 1e-12)
    assert float(moe(t)) >= float(moe_free(t))
    assert float(moe(1.0)) == float(moe_free(1.0))
    a100 = kernels_for(get_engine("vllm-0.24"), "a100-80gb")
    assert short_loop(a100) is a100  # no sustained rate measured: nothing to take off
    # a GPU timed from the H100's tables carries the bound; short_loop takes it off there too
    mi = kernels_for(get_engine("vllm-0.24"), "mi300x-192gb")
    assert short_loop(mi) is not mi and short_loop(mi) is short_loop(mi)
    assert float(short_loop(mi).gemm("bf16", 8192, 8192)(16384.0)) < float(
        mi.gemm("bf16", 8192, 8192)(16384.0))


def _perf_breakdown(catalog, *args: str) -> dict:
    """`python -m wrpsim.perf ... breakdown=true`'s prefill terms, with `catalog` as the user's
    catalog folder (None: the shipped catalog only)."""
    import json
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "WRPSIM_CATALOG"}
    if catalog is not None:
        env["WRPSIM_CATALOG"] = str(catalog)
    r = subprocess.run([sys.executable, "-m", "wrpsim.perf", *args, "breakdown=true"],
                       capture_output=True, text=True, env=env, check=True)
    return json.loads(r.stdout)["prefill_breakdown_s"]


def _user_gpu(tmp_path, name: str, like: str, **fields) -> Path:
    """A user catalog folder whose gpus.yaml holds `name`: the shipped `like` without its
    sustained rates, plus `fields`."""
    import yaml

    entry = yaml.safe_load((catalog_path() / "gpus.yaml").read_text())[like]
    for k in ("bf16_sustained_tflops", "fp8_sustained_tflops"):
        entry.pop(k, None)
    entry.update(fields)
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "gpus.yaml").write_text(yaml.safe_dump({name: entry}))
    return tmp_path


def test_the_bound_only_adds_gemm_time_and_leaves_mla_attention_as_measured(tmp_path):
    """DeepSeek-R1 on 8 x H100: with the sustained rates (shipped) against the same GPU
    without them (a user's catalog replacing the entry), the prefill's GEMMs take longer and
    every other term is the same — the MLA module's attention is what is left of the
    short-loop module after its projections timed in short loops too (it used to lose the
    time the bound added to them: -25 %)."""
    args = ("model=deepseek-r1", "gpu=h100-80gb", "tp=8", "precision=fp4",
            "prompt_tokens=2048")
    bound = _perf_breakdown(None, *args)
    free = _perf_breakdown(_user_gpu(tmp_path, "h100-80gb", "h100-80gb"), *args)
    assert bound["gemms"] > free["gemms"] * 1.05
    assert {k: v for k, v in bound.items() if k != "gemms"} == {
        k: v for k, v in free.items() if k != "gemms"}


def test_a_gpu_without_tables_meets_its_own_sustained_rate(tmp_path):
    """A user's GPU timed from the H100's tables by the roofline ratio carries the H100's
    efficiency, its bound included (666 of 989 TFLOP/s, as a share of the GPU's own peak); a
    sustained rate of its own takes that bound's place, below or above it (it used to be
    ignored, while the label printed it)."""
    args = ("model=llama3.1-8b", "gpu=mygpu", "tp=1", "prompt_tokens=4096", "batch=4")
    flops = 2 * 4 * 4096 * 6.98e9  # Llama-3.1-8B's projections, all layers
    plain = _perf_breakdown(_user_gpu(tmp_path / "a", "mygpu", "h100-80gb"), *args)
    assert plain["gemms"] >= flops / 666e12 * 0.99
    slow = _perf_breakdown(_user_gpu(tmp_path / "b", "mygpu", "h100-80gb",
                                     bf16_sustained_tflops=100), *args)
    assert slow["gemms"] == pytest.approx(flops / 100e12, rel=0.02)
    fast = _perf_breakdown(_user_gpu(tmp_path / "c", "mygpu", "h100-80gb",
                                     bf16_sustained_tflops=900), *args)
    assert flops / 900e12 * 0.999 <= fast["gemms"] < plain["gemms"]


def test_a_sustained_fp8_rate_needs_fp8_tensor_cores_and_a_typo_is_named(tmp_path):
    f = tmp_path / "gpus.yaml"
    f.write_text(gpu_yaml("x1", bf16_tflops=100, fp8_sustained_tflops=50))
    with pytest.raises(ConfigError, match=r"entry 'x1': field 'fp8_sustained_tflops' needs "
                                          r"fp8_tflops: without it the GPU has no FP8 tensor"):
        load_gpus(f, known=gpus())
    f.write_text(gpu_yaml("x1", bf16_tflops=100, bf16_sustaned_tflops=50))
    with pytest.raises(ConfigError, match=r"unknown field 'bf16_sustaned_tflops'; valid fields: "
                                          r".*; did you mean 'bf16_sustained_tflops'\?$"):
        load_gpus(f, known=gpus())


def test_a_sustained_rate_above_the_peak_is_refused(tmp_path):
    f = tmp_path / "gpus.yaml"
    f.write_text(gpu_yaml("x1", bf16_tflops=100, bf16_sustained_tflops=120))
    with pytest.raises(ConfigError, match=r"gpus.yaml: entry 'x1': field "
                                          r"'bf16_sustained_tflops' \(120\) must not exceed "
                                          r"bf16_tflops \(100\)"):
        load_gpus(f, known=gpus())


def test_decode_attention_grid_returns_the_measurement():
    k = kernels_for(get_engine("vllm-0.24"), "h100-80gb")
    grid = k.attn_decode("bf16", 16, 2, 128)
    rows = _rows("h100-80gb", "attn_decode")
    sel = ((rows["heads"] == 16) & (rows["kv_heads"] == 2) & (rows["head_dim"] == 128)
           & (rows["window"] == 0) & (rows["kv_dtype"] == "bf16"))
    kept = 0
    for b, c, ms in zip(rows["batch"][sel], rows["ctx"][sel], rows["ms"][sel]):
        i, j = list(grid.b).index(b), list(grid.s).index(c)
        # the grid is the measurement's monotone fit (`wrpsim.pool.kernels.monotone`): cells
        # already in order kept exactly, the others moved a little towards their neighbours
        assert grid.t[i, j] == pytest.approx(ms * 1e-3, rel=0.25)
        kept += grid.t[i, j] == pytest.approx(ms * 1e-3, rel=1e-6)  # (float32 rows)
    assert kept >= 0.6 * sel.sum()
    assert np.all(np.diff(grid.t, axis=0) >= 0) and np.all(np.diff(grid.t, axis=1) >= 0)


MODELS = [("llama3.1-8b", "h100-80gb", 1), ("llama3.1-70b", "h200-141gb", 4),
          ("qwen3-30b-a3b", "h100-80gb", 1), ("gpt-oss-120b", "b200-180gb", 2),
          ("gemma-3-12b", "l40s-48gb", 1), ("deepseek-v3", "h200-141gb", 8),
          ("nemotron-nano-9b-v2", "a100-80gb", 1), ("llama3.1-8b", "mi300x-192gb", 1)]


@pytest.mark.parametrize("model, gpu, tp", MODELS)
def test_decode_runs_equal_stepping_iterations(model, gpu, tp):
    lat = build_latency_model(model, gpu, tp)
    for batch, ctx0, n in ((1, 5, 3), (7, 7 * 126 + 3, 40), (33, 33 * 1000, 300),
                           (100, 100 * 120, 20), (64, 64 * 131000, 5)):
        run = lat.decode_run_s(batch, ctx0, n)
        step = [lat.iteration_s(0, 0.0, batch, ctx0 + k * batch) for k in range(n)]
        np.testing.assert_allclose(run, step, rtol=1e-12)


@pytest.mark.parametrize("model, gpu, tp", MODELS)
def test_iteration_time_grows_with_work(model, gpu, tp):
    lat = build_latency_model(model, gpu, tp)
    dec = [lat.decode_step_s(b, 1000) for b in (1, 8, 64, 256)]
    assert dec == sorted(dec) and dec[0] > 0
    ctx = [lat.decode_step_s(32, c) for c in (100, 1000, 10000)]
    assert ctx == sorted(ctx)
    pre = [lat.prefill_s(1, p) for p in (16, 512, 4096, 16384)]
    assert pre == sorted(pre)
    # a prefill chunk after a long cached prefix costs more than the same chunk alone
    p, c = 8000, 512
    assert lat.iteration_s(c, c * (p + (c + 1) / 2), 0, 0) > lat.iteration_s(
        c, c * (c + 1) / 2, 0, 0)
    assert lat.iteration_s(0, 0.0, 0, 0) == 0.0


def test_decode_is_memory_bound_at_small_batch():
    """The projections of one decode step of a dense model at batch 1 read every weight once:
    their measured time is at least weights / peak bandwidth, and the measured kernels reach
    at least 60 % of it on a calibrated GPU."""
    for gpu in ("h100-80gb", "h200-141gb", "b200-180gb", "a100-80gb", "l40s-48gb"):
        lat = build_latency_model("llama3.1-8b", gpu, 1)
        ideal = lat.weight_bytes_per_gpu / (lat.gpu.mem_bw_gbs * 1e9)
        t = lat._lin_at(1) + lat._head_at(1)
        assert ideal < t < ideal / 0.6, (gpu, t, ideal)


def test_uncalibrated_gpu_moves_by_the_roofline_ratio():
    h100 = build_latency_model("llama3.1-8b", "h100-80gb", 1)
    mi = build_latency_model("llama3.1-8b", "mi300x-192gb", 1)
    assert "uncalibrated: roofline" in mi.calibration and "H100" in mi.calibration
    # memory-bound decode: faster by about the bandwidth ratio (5.3 / 3.35 TB/s)
    ratio = h100.gpu_s(0, 0.0, 4, 400) / mi.gpu_s(0, 0.0, 4, 400)
    assert ratio == pytest.approx(5300 / 3350, rel=0.15)
    # compute-bound prefill: about the FLOP ratio (1307 / 989)
    ratio = h100.gpu_s(8192, 8192 * 8193 / 2, 0, 0) / mi.gpu_s(8192, 8192 * 8193 / 2, 0, 0)
    assert ratio == pytest.approx(1307 / 989, rel=0.15)


def test_precisions_change_weights_kv_and_speed():
    bf = build_latency_model("llama3.1-70b", "h100-80gb", 4)
    f8 = build_latency_model("llama3.1-70b", "h100-80gb", 4, precision="fp8")
    kv8 = build_latency_model("llama3.1-70b", "h100-80gb", 4, precision="fp8", kv_dtype="fp8")
    m = get_model("llama3.1-70b")
    emb = m.embedding_params * 2 / 4
    assert f8.weight_bytes_per_gpu - emb == pytest.approx((bf.weight_bytes_per_gpu - emb) / 2)
    assert kv8.kv_bytes_per_token_per_gpu == bf.kv_bytes_per_token_per_gpu / 2
    assert kv8.kv_capacity_blocks(16) > 2 * bf.kv_capacity_blocks(16)
    assert f8.decode_step_s(16, 1000) < 0.8 * bf.decode_step_s(16, 1000)
    assert kv8.decode_step_s(64, 8000) < f8.decode_step_s(64, 8000)


def test_mxfp4_expert_kernels_are_timed_from_their_own_measurements():
    """gpt-oss's MXFP4 experts under the three kernels vLLM can pick (calibrate.aic): the same
    weights, padded to each kernel's multiples; at prefill sizes Marlin (Hopper) is slower
    than the default Triton kernel, MXFP8 activations (B200) are faster than BF16 ones, and a
    GPU whose table has only Marlin (L40S) times the default precision from it."""
    m = get_model("gpt-oss-120b")
    t = {}  # (gpu, precision) -> MoE layer seconds at 4 and at 8192 tokens, moe_tp 2
    for gpu, prec in [("h100-80gb", "mxfp4"), ("h100-80gb", "mxfp4_marlin"),
                      ("b200-180gb", "mxfp4"), ("b200-180gb", "mxfp4_mxfp8")]:
        k = kernels_for(get_engine("vllm-0.24"), gpu)
        curve = k.moe(prec, m.hidden, m.intermediate, m.active_experts, m.experts, 2, 1)
        t[gpu, prec] = (float(curve(4.0)), float(curve(8192.0)))
    h_tri, h_mar = t["h100-80gb", "mxfp4"], t["h100-80gb", "mxfp4_marlin"]
    assert h_mar[1] > 1.5 * h_tri[1]  # measured: ~2x at 8k tokens
    assert h_mar[0] == pytest.approx(h_tri[0], rel=0.5)  # both read the same 4-bit weights
    b_bf, b_f8 = t["b200-180gb", "mxfp4"], t["b200-180gb", "mxfp4_mxfp8"]
    assert b_f8[1] < 0.5 * b_bf[1]
    a = build_latency_model("gpt-oss-120b", "h100-80gb", 2, precision="mxfp4")
    b = build_latency_model("gpt-oss-120b", "h100-80gb", 2, precision="mxfp4_marlin")
    # the same 4-bit weights, which Marlin pads to larger multiples than Triton
    # (test_mxfp4_experts_are_padded_as_vllms_kernel_allocates_them)
    assert a.weight_bytes_per_gpu < b.weight_bytes_per_gpu < 1.15 * a.weight_bytes_per_gpu
    lk = kernels_for(get_engine("vllm-0.24"), "l40s-48gb")
    args = (m.hidden, m.intermediate, m.active_experts, m.experts, 1, 1)
    assert float(lk.moe("mxfp4", *args)(512.0)) == float(lk.moe("mxfp4_marlin", *args)(512.0))


def test_eager_iterations_are_bound_by_the_cpu_launching_every_layer():
    """With FULL_DECODE_ONLY graphs (cudagraph_mixed 0) a step holding a prompt chunk is
    launched eagerly: it takes at least layers x eager_layer_us; pure decode steps stay graphed,
    and so does everything with mixed graphs."""
    ov = {"eager_layer_us": 400.0, "iter_overhead_us": 0.0, "seq_overhead_us": 0.0}
    base = build_latency_model("llama3.1-8b", "h100-80gb", 1, overrides={
        **ov, "eager_layer_us": 0.0, "cudagraph_mixed": 0})
    mixed = build_latency_model("llama3.1-8b", "h100-80gb", 1, overrides=ov)
    lat = build_latency_model("llama3.1-8b", "h100-80gb", 1,
                              overrides={**ov, "cudagraph_mixed": 0})
    floor = (32 + 32) * 400e-6  # attention and FFN blocks
    assert base.iteration_s(16, 136.0, 8, 8000) < floor
    assert lat.iteration_s(16, 136.0, 8, 8000) == pytest.approx(floor)
    assert mixed.iteration_s(16, 136.0, 8, 8000) == base.iteration_s(16, 136.0, 8, 8000)
    assert lat.decode_step_s(8, 1000) == base.decode_step_s(8, 1000) < floor
    run = lat.decode_run_s(128, 128 * 500, 5)
    assert np.allclose(run, base.decode_run_s(128, 128 * 500, 5))
    big = lat.iteration_s(8192, 8192 * 8193 / 2, 0, 0)  # GPU-bound: the floor does not bind
    assert big == base.iteration_s(8192, 8192 * 8193 / 2, 0, 0) > floor


def test_mxfp4_experts_are_padded_as_vllms_kernel_allocates_them():
    """vLLM pads each MXFP4 expert's per-GPU intermediate and hidden widths to its kernel's
    multiples (mxfp4.py `create_weights`): FlashInfer on B200 256 / 256 (gpt-oss's 2,880 ->
    3,072, and at TP 8 each GPU's 360 -> 512), Triton on Hopper 64 / none, Marlin 128 / 256.
    Computed here from config.json numbers: 36 layers x 128 experts x 3 matrices x 0.53125 B
    per weight (MXFP4 with its E8M0 scale per 32), the rest BF16."""
    from wrpsim.pool.kernels import sizes
    from wrpsim.pool.kernels.sizes import GIB

    m = get_model("gpt-oss-120b")
    router = 36 * 2880 * 128 * 2.0  # (replicated on every GPU, BF16)
    rest = (m.params - m.expert_params) * 2.0 - router  # (BF16: attention, embeddings)

    def experts_gib(inter: int, hidden: int, tp: int) -> float:
        return 36 * 128 * 3 * inter * hidden * 0.53125 / tp / GIB

    def gib(gpu: str, tp: int, precision: str = "mxfp4", ep: int = 1) -> float:
        return (build_latency_model("gpt-oss-120b", gpu, tp, precision=precision,
                                    ep=ep).weight_bytes_per_gpu - router) / GIB

    assert gib("b200-180gb", 1) == pytest.approx(rest / GIB + experts_gib(3072, 3072, 1))
    assert gib("b200-180gb", 8) == pytest.approx(rest / 8 / GIB + experts_gib(512, 3072, 1))
    # with expert parallelism each GPU holds whole experts: 2,880 -> 3,072 again
    assert gib("b200-180gb", 8, ep=8) == pytest.approx(
        rest / 8 / GIB + experts_gib(3072, 3072, 8))
    assert gib("h100-80gb", 1) == pytest.approx(rest / GIB + experts_gib(2880, 2880, 1))
    assert gib("h100-80gb", 8) == pytest.approx(rest / 8 / GIB + experts_gib(384, 2880, 1))
    assert gib("a100-80gb", 1) == pytest.approx(rest / GIB + experts_gib(2944, 3072, 1))
    assert gib("h200-141gb", 1, "mxfp4_marlin") == pytest.approx(
        rest / GIB + experts_gib(2944, 3072, 1))
    # other precisions and dense models are not padded
    lat = build_latency_model("qwen3-30b-a3b", "b200-180gb", 1, precision="fp8")
    assert sizes.mxfp4_pad(lat) == 1.0


def test_architectures_size_their_kv_and_weights():
    ds = build_latency_model("deepseek-v3", "h200-141gb", 8, precision="fp8_block")
    assert ds.kv_bytes_per_token_per_gpu == 61 * (512 + 64) * 2  # MLA latent, replicated
    assert ds.weight_bytes_per_gpu / 2**30 == pytest.approx(671e9 * 1.0078 / 8 / 2**30, rel=0.03)
    q = build_latency_model("qwen3-30b-a3b", "h100-80gb", 2, ep=2)
    assert q.ep == 2
    with pytest.raises(ConfigError, match="ep must be 1 or equal to tp"):
        build_latency_model("qwen3-30b-a3b", "h100-80gb", 2, ep=4)
    with pytest.raises(ConfigError, match="mixture-of-experts"):
        build_latency_model("llama3.1-8b", "h100-80gb", 2, ep=2)
    nem = build_latency_model("nemotron-nano-9b-v2", "h100-80gb", 1)
    # 4 attention layers keep KV; the Mamba state is reserved per sequence
    assert nem.kv_bytes_per_token_per_gpu == 4 * 2 * 8 * 128 * 2
    assert nem.kv_capacity_blocks(16, max_seqs=256) < nem.kv_capacity_blocks(16, max_seqs=1)


def test_mamba_ssm_state_dtype_sets_state_memory_and_decode_traffic():
    """vLLM's --mamba-ssm-cache-dtype float32 (NVIDIA's setting for Nemotron-H) doubles the
    SSM state: twice the bytes a decode step reads and writes per sequence, less KV room."""
    bf = build_latency_model("nemotron-nano-9b-v2", "h100-80gb", 1)
    f32 = build_latency_model("nemotron-nano-9b-v2", "h100-80gb", 1,
                              overrides={"mamba_ssm_dtype": "fp32"})
    m = bf.model
    d_in = m.mamba_heads * m.mamba_head_dim  # 128 heads x 80
    ssm = m.mamba_layers * d_in * m.ssm_state  # 27 layers x 10,240 x 128 elements
    assert f32.mamba_state_bytes - bf.mamba_state_bytes == pytest.approx(2 * ssm)
    # the extra state is read and written once per decoding sequence at the streaming rate
    extra = 128 * 2 * 2 * ssm / bf.kernels.stream_bw()
    assert f32.decode_step_s(128, 1000) - bf.decode_step_s(128, 1000) == pytest.approx(extra)
    assert f32.kv_capacity_blocks(16, max_seqs=256) < bf.kv_capacity_blocks(16, max_seqs=256)
    with pytest.raises(ConfigError, match=r"^pool\.pools\.p\.latency\.mamba_ssm_dtype: .*fp32"):
        build_latency_model("nemotron-nano-9b-v2", "h100-80gb", 1,
                            overrides={"mamba_ssm_dtype": "float64"},
                            where="pool.pools.p.latency")


def test_sliding_window_layers_stop_growing_past_the_window():
    from dataclasses import replace

    from wrpsim.pool.kernels.model import KernelLatency

    g = build_latency_model("gemma-3-12b", "h100-80gb", 1)
    spec = replace(get_model("gemma-3-12b"), sliding_layers=0, sliding_window=0)
    full = KernelLatency(spec, g.gpu, 1, g.kernels, g.c)
    # 40 of Gemma-3's 48 layers see at most 1024 tokens: past the window only 8 layers grow
    dg = g.decode_step_s(32, 16000) - g.decode_step_s(32, 2000)
    df = full.decode_step_s(32, 16000) - full.decode_step_s(32, 2000)
    assert dg == pytest.approx(df * 8 / 48, rel=1e-6)
    assert g.decode_step_s(32, 500) == pytest.approx(full.decode_step_s(32, 500), rel=1e-12)


def test_sliding_window_prefill_counts_the_windowed_pairs():
    """A sliding layer's prefill attention is timed on the pairs the window leaves: query i of a
    prompt sees min(i, w) keys (n w - w (w - 1) / 2 for n > w), not min(all pairs, n w)."""
    from wrpsim.pool.kernels import model as km

    w = 4096.0
    for n in (100, 4096, 6000, 8000, 20000):
        assert km._window_pairs(n, w) == sum(min(i, w) for i in range(1, n + 1))
    g = build_latency_model("gemma-3-12b", "h100-80gb", 1)
    assert g._window == 1024
    row, drow = g._pre.row(1.0).tolist(), g._dec_row(1)[1]

    def layers(pairs, ctx):  # one layer's attention: the larger of the prefill and read times
        return max(km._pairs_time(row, g._pre_s, 1, pairs), km._interp1(ctx, g._dec_sl, drow))

    # one fresh 6,000-token prompt, then 2,000 after 3,000 cached (the `_pairs_time` of the
    # sliding layers is called, compiled, as a C function: its argument cannot be watched)
    for tokens, cached in ((6000, 0), (2000, 3000)):
        pairs = tokens * (cached + (tokens + 1) / 2)
        ctx = pairs / tokens + tokens / 2.0
        windowed = sum(min(i, 1024) for i in range(cached + 1, cached + tokens + 1))
        want = (g._n_full * layers(pairs, ctx)
                + g._n_slide * layers(windowed, min(ctx, 1024.0)))
        got = g._prefill_attn(1, tokens, pairs)
        assert got == pytest.approx(want, rel=1e-9)
        assert got < g._n_full * layers(pairs, ctx) + g._n_slide * layers(pairs, ctx) * 0.9


def test_every_calibrated_gpu_labels_its_tables():
    for gpu, version in (("h100-80gb", "0.24.0"), ("l40s-48gb", "0.24.0"),
                         ("a100-80gb", "0.14.0")):
        lat = build_latency_model("llama3.1-8b", gpu, 1)
        assert lat.calibration.startswith("vllm-0.24: kernels: vllm " + version), lat.calibration


def test_engine_constants_have_physical_meaning():
    """Each fitted constant adds exactly its share: layer floor per block, CPU per sequence
    (hidden by async scheduling while the GPU is slower), front end per request."""
    base = build_latency_model("llama3.1-8b", "h100-80gb", 1, engine="vllm-0.11",
                               overrides={"layer_overhead_us": 0, "seq_overhead_us": 0,
                                          "iter_overhead_us": 0})
    lay = build_latency_model("llama3.1-8b", "h100-80gb", 1, engine="vllm-0.11",
                              overrides={"layer_overhead_us": 10, "seq_overhead_us": 0,
                                         "iter_overhead_us": 0})
    assert lay.decode_step_s(8, 500) - base.decode_step_s(8, 500) == pytest.approx(64 * 10e-6)
    seq = build_latency_model("llama3.1-8b", "h100-80gb", 1, engine="vllm-0.11",
                              overrides={"layer_overhead_us": 0, "seq_overhead_us": 50,
                                         "iter_overhead_us": 0})
    assert seq.decode_step_s(100, 500) - base.decode_step_s(100, 500) == pytest.approx(5e-3)
    asyn = build_latency_model("llama3.1-8b", "h100-80gb", 1, engine="vllm-0.24",
                               overrides={"seq_overhead_us": 50, "iter_overhead_us": 0})
    assert asyn.decode_step_s(100, 500) == pytest.approx(max(asyn.gpu_s(0, 0.0, 100, 50000),
                                                             5e-3))
    assert asyn.frontend_s(1000) == pytest.approx(
        (asyn.c.frontend_us + 1000 * asyn.c.frontend_us_per_token) * 1e-6)


def test_frontend_tokenizes_one_prompt_at_a_time():
    """The API server's fixed latency overlaps across requests; its tokenization queues: a
    burst of n equal prompts at t = 0 reaches the engine at fixed + k x work, k = 1 … n, and a
    prompt arriving after the queue drained waits only for itself."""
    from wrpsim.pool.frontend import FrontEnd
    lat = build_latency_model("llama3.1-8b", "h100-80gb", 1, engine="vllm-0.24",
                              overrides={"frontend_us": 15000, "frontend_us_per_token": 2.0,
                                         "frontend_us_serial": 0.0})
    work = lat.frontend_work_s(1000)
    fixed = lat.frontend_s(1000) - work
    assert work == pytest.approx(2e-3) and fixed == pytest.approx(15e-3)
    fe = FrontEnd(lat)
    assert [fe.delay_s(0.0, 1000) for _ in range(4)] == pytest.approx(
        [fixed + k * work for k in (1, 2, 3, 4)])
    assert fe.delay_s(1.0, 1000) == pytest.approx(fixed + work)  # idle again: no wait
    assert fe.delay_s(1.0005, 1000) == pytest.approx(fixed + 2 * work - 0.0005)


def test_the_servers_own_cpu_per_request_queues_with_its_tokenization():
    """`frontend_us_serial`, the part of `frontend_us` that is the API server's own CPU per
    request, queues like tokenization: a burst of n requests reaches the engine at
    (frontend_us - serial) + k x (serial + tokenization); one request alone is not slowed;
    more than frontend_us is refused."""
    from wrpsim.pool.frontend import FrontEnd

    lat = build_latency_model("llama3.1-8b", "h100-80gb", 1, engine="vllm-0.24", overrides={
        "frontend_us": 15000, "frontend_us_per_token": 2.0, "frontend_us_serial": 5000})
    assert lat.frontend_s(1000) == pytest.approx(17e-3)  # unchanged in total
    assert lat.frontend_work_s(1000) == pytest.approx(7e-3)
    fe = FrontEnd(lat)
    assert [fe.delay_s(0.0, 1000) for _ in range(3)] == pytest.approx(
        [10e-3 + k * 7e-3 for k in (1, 2, 3)])
    assert fe.delay_s(5.0, 1000) == pytest.approx(17e-3)
    with pytest.raises(ConfigError, match=r"latency\.frontend_us_serial \(20000\) is the part "
                                          r"of frontend_us \(15000\) queued in the API server"):
        build_latency_model("llama3.1-8b", "h100-80gb", 1, engine="vllm-0.24", overrides={
            "frontend_us": 15000, "frontend_us_serial": 20000}, where="latency")


def test_frontend_slows_under_the_streaming_load_of_running_requests():
    """The API server also streams every output token (`frontend_us_per_stream_token` each):
    at r tokens/s a share rho = r x that of its CPU is taken, and a new request's handling —
    fixed part and tokenization alike — takes 1 / (1 - rho) as long (processor sharing),
    rho capped at RHO_MAX; no streaming, no change."""
    from wrpsim.pool.frontend import RHO_MAX, FrontEnd
    lat = build_latency_model("llama3.1-8b", "h100-80gb", 1, engine="vllm-0.24",
                              overrides={"frontend_us": 15000, "frontend_us_per_token": 2.0,
                                         "frontend_us_per_stream_token": 100.0,
                                         "frontend_us_serial": 0.0})
    base = lat.frontend_s(1000)
    assert FrontEnd(lat).delay_s(0.0, 1000) == pytest.approx(base)
    # 5,000 tokens/s x 100 us = half the server
    assert FrontEnd(lat).delay_s(0.0, 1000, 5000.0) == pytest.approx(base / 0.5)
    fe = FrontEnd(lat)  # queued tokenization is stretched too: 2 ms -> 4 ms each
    assert [fe.delay_s(0.0, 1000, 5000.0) for _ in range(2)] == pytest.approx(
        [(15e-3 + 2e-3) / 0.5, (15e-3 + 2 * 2e-3) / 0.5])
    assert FrontEnd(lat).delay_s(0.0, 1000, 1e6) == pytest.approx(base / (1.0 - RHO_MAX))


def test_power_between_idle_and_tdp_and_rising_with_load():
    lat = build_latency_model("llama3.1-70b", "h100-80gb", 4)
    g = get_gpu("h100-80gb")
    p = [lat.power_w(0, b, b * 1000) for b in (1, 16, 128)]
    assert g.idle_w <= p[0] <= p[1] <= p[2] <= g.tdp_w
    assert lat.power_w(8192, 0) >= p[0]
    assert lat.power_w(0, 0) == lat.idle_power_w() == g.idle_w
    assert "ML.ENERGY" in lat._power.source
    assert "copied from h100-80gb" in build_latency_model(
        "llama3.1-8b", "h200-141gb", 1)._power.source


@pytest.mark.parametrize("model,tp", [("llama3.1-8b", 1), ("llama3.1-70b", 4)])
def test_a_chunk_deep_in_its_prompt_draws_the_power_of_its_attention_work(model, tp):
    """A 2,048-token chunk at offset 100k takes 2.3-4.1 x a fresh chunk's time, most of it
    attention FLOPs; its power counted the pairs of a fresh chunk over that long duration
    (470 W on one H100 against 700 W for the fresh chunk). With the iteration's own attention
    work, both are compute-bound: within a few % of each other, the deep one not lower by a
    third; one iteration of two fresh prompts counts each prompt's pairs, not (c1 + c2)² / 2."""
    lat = build_latency_model(model, "h100-80gb", tp)
    t, off = 2048, 100_000
    deep = t * (off + (t + 1) / 2)
    fresh = t * (t + 1) / 2
    d_deep, d_fresh = lat.iteration_s(t, deep, 0, 0, 1), lat.iteration_s(t, fresh, 0, 0, 1)
    assert d_deep > 2 * d_fresh
    p_fresh = lat.power_w(t, 0, None, d_fresh, fresh)
    assert p_fresh == lat.power_w(t, 0, None, d_fresh)  # (the default is a fresh prompt)
    assert lat.power_w(t, 0, None, d_deep, deep) >= 0.95 * p_fresh
    assert lat.power_w(t, 0, None, d_deep) < 0.8 * p_fresh  # what the default would say
    two = 2 * (1024 * 1025 / 2)
    d_two = lat.iteration_s(t, two, 0, 0, 2)
    assert lat.power_w(t, 0, None, d_two, two) <= lat.power_w(t, 0, None, d_two)


def test_calibration_label_names_a_copied_power_shape():
    """Outputs that name the calibration (summary.json, instances.parquet, wrpsim.perf) say when
    a GPU's power shape was fitted on another GPU's watts, and say nothing for a GPU's own."""
    h200 = build_latency_model("llama3.1-8b", "h200-141gb", 1)
    assert h200.calibration.endswith("; power shape copied from h100-80gb")
    assert h200._power.copied_from == "h100-80gb"
    l4 = build_latency_model("llama3.1-8b", "l4-24gb", 1)
    assert l4.calibration.startswith("vllm-0.24: uncalibrated: roofline")
    assert l4.calibration.endswith("; power shape copied from a100-80gb")
    own = build_latency_model("llama3.1-8b", "h100-80gb", 1)
    assert "copied" not in own.calibration and own._power.copied_from == ""


@pytest.mark.parametrize("field, kwargs, pattern", [
    ("engine", {"engine": "vllm-9"}, r"engine: unknown value 'vllm-9'; valid choices: "),
    ("precision", {"precision": "fp9"}, r"precision: unknown value 'fp9'; valid choices: bf16"),
    ("kv_dtype", {"kv_dtype": "int3"}, r"kv_dtype: unknown value 'int3'; valid choices: auto"),
    ("override", {"overrides": {"warp_speed": 1}}, r"unknown key\(s\) \['warp_speed'\]"),
])
def test_bad_names_fail_with_one_line(field, kwargs, pattern):
    with pytest.raises(ConfigError, match=pattern) as e:
        build_latency_model("llama3.1-8b", "h100-80gb", 1, **kwargs)
    assert "\n" not in str(e.value)


def test_requests_longer_than_the_context_are_dropped(tmp_path):
    import pandas as pd

    from wrpsim.sim import Simulation
    from wrpsim.workload.validate import canonical_frame

    trace = canonical_frame(np.array([0.0, 0.1, 0.2]), np.array([1000, 40000, 4000]),
                            np.array([100, 1000, 100]))
    cfg = {"workload": {"name": "t"}, "seed": 0, "slo": {"ttft_s": 10, "tpot_s": 1},
           "router": {"_target_": "wrpsim.router.RoundRobin"},
           "pool": {"pools": {"p": {"gpu": "h100-80gb", "model": "qwen3-8b", "tp": 1}}}}
    req, _, _ = Simulation(cfg, trace=trace).run()
    df = req.to_pandas()
    assert get_model("qwen3-8b").max_context == 40960
    assert df["status"].tolist() == ["completed", "dropped", "completed"]
    assert df["drop_reason"].tolist()[1] == "context"
    cfg["pool"]["pools"]["p"]["max_context"] = 4096
    df = Simulation(cfg, trace=trace).run()[0].to_pandas()
    assert (df["drop_reason"] == "context").sum() == 2
    cfg["pool"]["pools"]["p"]["max_context"] = 100000
    with pytest.raises(ConfigError, match=r"max_context \(100000\) exceeds qwen3-8b"):
        Simulation(cfg, trace=trace)
    assert isinstance(pd.__version__, str)


def test_a_nonsense_prompt_length_does_not_hold_the_api_server_for_centuries():
    """A trace row of 2^53 - 1 prompt tokens is refused for its length; its tokenization is
    charged only up to the context it overflows, so the request after it is served at once
    instead of queueing behind ~1,000 years of tokenizer work."""
    from wrpsim.sim import Simulation
    from wrpsim.workload.validate import canonical_frame

    trace = canonical_frame(np.array([0.0, 0.5]), np.array([2**53 - 1, 100]),
                            np.array([10, 10]))
    cfg = {"workload": {"name": "t"}, "seed": 0, "slo": {"ttft_s": 10, "tpot_s": 1},
           "router": {"_target_": "wrpsim.router.RoundRobin"},
           "pool": {"pools": {"p": {"gpu": "h100-80gb", "model": "qwen3-8b", "tp": 1}}}}
    req, _, end = Simulation(cfg, trace=trace).run()
    df = req.to_pandas()
    assert df["drop_reason"].tolist()[0] == "context" and df["status"].tolist()[1] == "completed"
    assert df["ttft_s"].tolist()[1] < 1.0 and end < 10.0


def test_kv_bytes_follow_math():
    lat = build_latency_model("llama3.1-8b", "h100-80gb", 2)
    assert lat.kv_bytes_per_token_per_gpu == 2 * 32 * math.ceil(8 / 2) * 128 * 2


def test_own_moe_table_answers_only_its_precisions_and_grows_past_its_last_size_by_roofline(
        tmp_path):
    """A GPU whose own tables measured one MoE shape in BF16 up to 2,048 tokens (as an
    LLMServingSim MoE-block profile does): other precisions come from the reference GPU's
    tables (which measure their kernels), and larger batches keep the last measured efficiency
    (roofline ratio), not a time proportional to the tokens."""
    import shutil

    import pandas as pd

    from wrpsim.pool.catalog import get_gpu
    from wrpsim.pool.kernels.borrowed import Partial, Transferred
    from wrpsim.pool.kernels.tables import load_kernels

    src = kernels_for(get_engine("vllm-0.24"), "rtxpro6000-96gb").dir
    for name in ("gemm", "attn_decode", "attn_prefill"):
        shutil.copy(src / f"{name}.parquet", tmp_path / f"{name}.parquet")
    moe = pd.read_parquet(src / "moe.parquet")
    moe = moe[(moe["dtype"] == "bf16") & (moe["hidden"] == 2048) & (moe["inter"] == 768)
              & (moe["experts"] == 128) & (moe["moe_tp"] == 1) & (moe["moe_ep"] == 1)
              & (moe["tokens"] <= 2048)]
    moe.to_parquet(tmp_path / "moe.parquet", index=False)
    gpu = get_gpu("rtxpro6000-96gb")
    ref = Transferred(load_kernels(str(src.parent / "l40s-48gb"), get_gpu("l40s-48gb")), gpu)
    k = Partial(load_kernels(str(tmp_path), gpu), ref)
    assert k.own.moe_dtypes() == {"bf16"}
    shape = (2048, 768, 8, 128, 1, 1)
    fp8 = k.moe("fp8", *shape)
    assert np.array_equal(fp8.y, k.ref.moe("fp8", *shape).y)
    bf16 = k.moe("bf16", *shape)
    t2k, t4k = float(bf16(2048.0)), float(bf16(4096.0))
    assert t2k < t4k < 1.5 * t2k  # memory-bound there: the experts are read once either way
    assert bf16.x[-1] == 16384


def test_fp8_moe_is_never_timed_slower_than_bf16_but_weight_only_formats_may_be():
    """H100 / H200 tables time per-tensor FP8 experts through FlashInfer's CUTLASS kernel at
    2-3.5x the BF16 Triton time (Mixtral on H200: fp8 decode 22 ms vs bf16 8.8 ms before).
    FP8 (W8A8) reads half the bytes at twice the rate, so those points take the measured
    block-FP8 kernel or BF16, whichever is faster; points faster than BF16 keep their
    measurement. MXFP4 (weight-only) keeps its measured, slower-than-BF16 prefill."""
    from wrpsim.pool.engines import get_engine, kernels_for

    k = kernels_for(get_engine("vllm-0.24"), "h200-141gb")
    shape = (4096, 14336, 2, 8, 1, 1)  # Mixtral-8x7B
    tok = np.array([1.0, 8, 64, 512, 4096, 16384])
    b16, fp8 = k.moe("bf16", *shape)(tok), k.moe("fp8", *shape)(tok)
    raw = k.moe("fp8", *shape, as_measured=True)(tok)
    block = k.moe("fp8_block", *shape, as_measured=True)(tok)
    assert np.all(raw > 2 * b16)  # the measured per-tensor path
    assert np.all(fp8 <= b16 * (1 + 1e-12))
    assert fp8 == pytest.approx(np.minimum(block, b16), rel=1e-9)
    assert np.all(np.diff(fp8) >= 0)
    gpt = (2880, 2880, 4, 128, 1, 1)  # gpt-oss-120b
    assert np.array_equal(k.moe("mxfp4", *gpt)(tok), k.moe("mxfp4", *gpt, as_measured=True)(tok))
    bf = build_latency_model("mixtral-8x7b", "h200-141gb", 1).decode_step_s(1, 1024)
    f8 = build_latency_model("mixtral-8x7b", "h200-141gb", 1,
                             precision="fp8").decode_step_s(1, 1024)
    assert f8 < bf


@pytest.mark.parametrize("gpu", ["h100-80gb", "h200-141gb"])
def test_a_precision_timed_from_fp8_points_is_no_slower_than_fp8(gpu):
    """MXFP4 experts with MXFP8 activations have no Hopper table and are timed from its FP8
    points: from the raw per-tensor ones (2-3.5x BF16) they came out 2-2.5x BF16 (gpt-oss-120b
    at TP 4, 32 sequences on an H100: a 22 ms step against 10.4 in FP8); timed no slower than
    the FP8 layer as corrected, moved by the roofline ratio, they are below it — half its
    weight bytes at the same math rate — as on the B200, whose tables measure them."""
    from wrpsim.pool.engines import get_engine, kernels_for

    k = kernels_for(get_engine("vllm-0.24"), gpu)
    gpt = (2880, 2880, 4, 128, 1, 1)  # gpt-oss-120b, one GPU's experts
    tok = np.array([1.0, 8, 64, 512, 4096, 16384])
    fp8, mx = k.moe("fp8", *gpt)(tok), k.moe("mxfp4_mxfp8", *gpt)(tok)
    assert np.all(mx <= fp8 * (1 + 1e-12)) and np.all(mx <= k.moe("bf16", *gpt)(tok))
    assert np.all(np.diff(mx) >= 0)
    step = {p: build_latency_model("gpt-oss-120b", gpu, 4, precision=p).decode_step_s(32, 1024)
            for p in ("fp8", "mxfp4_mxfp8", "bf16")}
    assert step["mxfp4_mxfp8"] < step["fp8"] < step["bf16"]


def test_block_fp8_moe_keeps_its_slow_prefill_tail_but_not_a_slow_first_token():
    """Block-FP8 weights run only block-scaled kernels: vLLM 0.24 on B200 runs FlashInfer's
    TensorRT-LLM one, which the table measures at up to 2 x the BF16 kernel at prefill sizes
    (MiniMax-M2.5's shape from 4,096 tokens, DeepSeek-V3's at EP 8 from 1,024). That tail, past
    the last token count measured faster than BF16, is kept (until 2026-12-06 it took the
    per-tensor FP8 kernel's time, which made MiniMax's 8k-token FP8 prompts on B200 / B300
    30-40 % fast), and a MiniMax FP8 prefill of 8k tokens is then slower than its FP4 one.
    A slow point below faster ones — DeepSeek-V3 at EP 8 at one token, 2 x BF16, faster
    from four — is the collector's per-call cost and still takes the faster kernel's time,
    so decoding one sequence is no slower than in BF16."""
    k = kernels_for(get_engine("vllm-0.24"), "b200-180gb")
    shape = (3072, 1536, 8, 256, 2, 1)  # MiniMax-M2.5 at TP 2
    tok = np.array([64.0, 1024, 4096, 8192, 16384])
    block = k.moe("fp8_block", *shape)(tok)
    assert np.array_equal(block, k.moe("fp8_block", *shape, as_measured=True)(tok))
    b16 = k.moe("bf16", *shape)(tok)
    assert block[3] > 1.1 * b16[3]  # (the kept points are the slow ones)
    assert block[0] < b16[0]  # decode sizes: faster than BF16, as measured
    fp8 = build_latency_model("minimax-m2.5", "b200-180gb", 2, precision="fp8_block")
    fp4 = build_latency_model("minimax-m2.5", "b200-180gb", 2, precision="fp4_attn_bf16")
    assert fp8.prefill_s(1, 8192) > 1.25 * fp4.prefill_s(1, 8192)
    ds = (7168, 2048, 8, 256, 1, 8)  # DeepSeek-V3 at EP 8
    tok = np.array([1.0, 4, 4096])
    raw, got = k.moe("fp8_block", *ds, as_measured=True)(tok), k.moe("fp8_block", *ds)(tok)
    b16 = k.moe("bf16", *ds)(tok)
    assert raw[0] > 1.5 * b16[0] and got[0] <= b16[0]  # the first token: replaced
    assert raw[1] < b16[1] and got[1] == raw[1]
    assert got[2] == raw[2] > 1.3 * b16[2]  # the prefill tail: kept


def test_an_engine_whose_block_fp8_layers_run_no_faster_than_bf16():
    """vLLM 0.11 ran block-FP8 layers (Triton fused MoE, block matmul) no faster than BF16
    (`fp8_block_no_faster_than_bf16`, on in vllm-0.11, off in vllm-0.24): each GEMM, MoE
    layer and MLA module takes the longer of the two tables' times on a GPU with FP8 tensor
    cores, so a block-FP8 model is never faster than its BF16 self under that engine, while
    under vllm-0.24 it decodes faster; the label says so, a pool can set it, and a
    non-boolean is one line."""
    assert get_engine("vllm-0.11").constants.fp8_block_no_faster_than_bf16
    assert not get_engine("vllm-0.24").constants.fp8_block_no_faster_than_bf16
    args = ("qwen3-235b-a22b", "h100-80gb", 8)
    on = {"fp8_block_no_faster_than_bf16": True}
    fast = build_latency_model(*args, precision="fp8_block")
    slow = build_latency_model(*args, precision="fp8_block", overrides=on)
    b16 = build_latency_model(*args, overrides=on)
    T = np.array([1.0, 8, 64, 512, 4096])
    k, m = slow.kernels, slow.model
    shape = (m.hidden, m.intermediate, m.active_experts, m.experts, 8, 1, m.gated_mlp)
    want = m.moe_layers * np.maximum(k.moe("fp8_block", *shape)(T), k.moe("bf16", *shape)(T))
    assert operators.moe_layers_s(slow, T) == pytest.approx(want, rel=1e-12)
    assert operators.moe_layers_s(fast, T) == pytest.approx(
        m.moe_layers * k.moe("fp8_block", *shape)(T), rel=1e-12)
    assert np.all(operators.gemms_s(slow, T) >= operators.gemms_s(b16, T) * (1 - 1e-12))
    assert np.all(operators.gemms_s(slow, T) >= operators.gemms_s(fast, T))
    for batch in (1, 8, 64, 256):
        assert slow.decode_step_s(batch, 1024) >= b16.decode_step_s(batch, 1024) * (1 - 1e-9)
    assert fast.decode_step_s(8, 1024) < 0.8 * b16.decode_step_s(8, 1024)
    assert "block-FP8 layers no faster than BF16" in slow.calibration
    assert "block-FP8" not in fast.calibration
    assert "block-FP8" not in b16.calibration  # BF16 weights: nothing to say
    # an MLA model's attention is its measured module less its projections, measured in
    # each precision: the block-FP8 module is floored at the BF16 one too
    for gpu in ("b200-180gb", "h200-141gb"):
        mla = ("deepseek-v3", gpu, 8)
        f8 = build_latency_model(*mla, precision="fp8_block", overrides=on)
        bf = build_latency_model(*mla, overrides=on)
        for batch, ctx in ((2, 8192), (64, 2048), (256, 1024)):
            assert f8.decode_step_s(batch, ctx) >= bf.decode_step_s(batch, ctx) * (1 - 1e-9)
        for n in (512, 4096):
            assert f8.prefill_s(1, n) >= bf.prefill_s(1, n) * (1 - 1e-9)
    # without FP8 tensor cores (A100) FP8 runs weight-only (Marlin): the setting says nothing
    a100 = ("llama3.1-8b", "a100-80gb", 1)
    assert build_latency_model(*a100, precision="fp8_block", overrides=on).decode_step_s(
        8, 1024) < build_latency_model(*a100, overrides=on).decode_step_s(8, 1024)
    with pytest.raises(ConfigError, match=r"^pool\.pools\.p\.latency\."
                                          r"fp8_block_no_faster_than_bf16 must be true or false"):
        build_latency_model(*args, precision="fp8_block",
                            overrides={"fp8_block_no_faster_than_bf16": "sometimes"},
                            where="pool.pools.p.latency")


@pytest.mark.parametrize("gpu", ["l40s-48gb", "h100-80gb", "b200-180gb", "rtxpro6000-96gb"])
def test_decode_attention_is_never_faster_than_reading_the_kv_cache_from_hbm(gpu):
    """The collector re-reads one layer's KV cache, which stays in L2 where it fits (L40S:
    1.8 TB/s at 16 x 1k tokens over an 864 GB/s HBM); in serving every layer's cache passes
    through L2 between two reads of one layer's, so decode attention is floored at the HBM
    roofline (codegemma-7b on 2 x L40S: 17.1 ms per step, below the 18.6 ms it takes to read
    the weights and KV once; now 22.1)."""
    from wrpsim.pool.catalog import get_gpu
    from wrpsim.pool.engines import get_engine, kernels_for
    from wrpsim.pool.kernels import roofline as rl

    k, g = kernels_for(get_engine("vllm-0.24"), gpu), get_gpu(gpu)
    for heads, kvh, hd in ((32, 8, 128), (8, 8, 256), (16, 16, 256)):
        grid = k.attn_decode("bf16", heads, kvh, hd)
        bb, ss = np.meshgrid(grid.b, grid.s, indexing="ij")
        assert np.all(grid.t >= rl.attn_decode_roofline(bb, ss, heads, kvh, hd, g) * (1 - 1e-12))
    lat = build_latency_model("codegemma-7b", "l40s-48gb", 2)
    floor = (lat.weight_bytes_per_gpu + 8 * 4096 * lat.kv_bytes_per_token_per_gpu) / (
        lat.gpu.mem_bw_gbs * 1e9)
    assert lat.decode_step_s(8, 4096) >= floor


@pytest.mark.parametrize("model", ["llama3.1-8b", "qwen3-8b", "gemma-3-12b", "mixtral-8x7b"])
def test_fp8_on_a_gpu_without_fp8_tensor_cores_is_weight_only(model):
    """The A10G (no kernel tables, no FP8 math) times an FP8 model from its reference's BF16
    kernels, as a weight-only kernel runs: prefill at the BF16 time (the same math), decode
    faster (half the weight bytes) — never slower than BF16, as the A100 (own tables, no FP8
    rows) already was. Moving the reference's FP8 kernel carried its efficiency at twice the
    rate over and made every prefill 3-45 % slower than BF16."""
    tp = 2 if model == "mixtral-8x7b" else 1
    for gpu in ("a10g-24gb", "a100-80gb"):
        bf, f8 = (build_latency_model(model, gpu, tp, precision=p) for p in ("bf16", "fp8"))
        pre = (4096, 4096 * 4097 / 2, 0, 0, 1)
        assert f8.iteration_s(*pre) == pytest.approx(bf.iteration_s(*pre), rel=0.02), gpu
        dec = (0, 0.0, 8, 8 * 1024)
        assert f8.iteration_s(*dec) < 0.85 * bf.iteration_s(*dec), gpu


def test_no_room_for_kv_names_the_mamba_state_when_that_is_what_fills_the_gpu():
    """Nemotron-Nano-12B-v2 on one L40S: 22.9 GiB of weights fit in the 37.4 usable (44.39 GiB,
    as CUDA reports it, x 0.9 less the 2.54 GiB vLLM's profile keeps for 512 sequences'
    sampler), but 512 sequences' Mamba state (72 MiB each) takes 36 GiB more; the message
    says so."""
    lat = build_latency_model("nemotron-nano-12b-v2", "l40s-48gb", 1)
    with pytest.raises(ConfigError, match=r"reserve 2\.54 GiB = 37\.4 GiB usable\) and 36\.0 GiB "
                                          r"of Mamba state for max_seqs = 512 sequences, "
                                          r"leaving no room"):
        lat.kv_capacity_blocks(16, max_seqs=512, sched_seqs=512)
    assert lat.kv_capacity_blocks(16, max_seqs=64, sched_seqs=64) > 0


def test_a_precision_the_gpus_tables_did_not_measure_says_so_in_the_label():
    """The calibration label names what an unmeasured precision is timed from: the A100's
    tables hold BF16 only (FP8 GEMMs and MoE from them), the H100's hold FP8 (nothing to
    say), the RTX PRO 6000's vLLM 0.24 tables no block-FP8 GEMM or MoE kernel (from FP8's)."""
    a100 = build_latency_model("qwen3-30b-a3b", "a100-80gb", 1, precision="fp8").calibration
    assert ("; fp8 GEMMs: uncalibrated, the bf16 table by the roofline ratio; fp8 MoE: "
            "uncalibrated, the bf16 table by the roofline ratio") in a100
    h100 = build_latency_model("qwen3-30b-a3b", "h100-80gb", 1, precision="fp8").calibration
    assert "uncalibrated" not in h100
    h100 = build_latency_model("qwen3-30b-a3b", "h100-80gb", 1,
                               precision="mxfp4_mxfp8").calibration
    assert "; mxfp4_mxfp8 MoE: uncalibrated, the fp8 table by the roofline ratio;" in h100
    rtx = build_latency_model("qwen3-30b-a3b", "rtxpro6000-96gb", 1,
                              precision="fp8_block").calibration
    assert ("; fp8_block GEMMs: uncalibrated, the fp8 table by the roofline ratio; fp8_block "
            "MoE: uncalibrated, the fp8 table by the roofline ratio") in rtx
    for prec in ("bf16", "fp8"):
        assert "uncalibrated" not in build_latency_model(
            "qwen3-30b-a3b", "rtxpro6000-96gb", 1, precision=prec).calibration


def test_a_kv_dtype_the_gpus_attention_tables_did_not_measure_says_so_in_the_label():
    """The A100's attention tables hold BF16 KV only: an FP8 KV cache's attention is timed
    from those rows by the roofline ratio (`Kernels._attn`), and its label said nothing of it
    (`wrpsim.perf gpu=a100-80gb kv_dtype=fp8`, a user walk-through). It now says so, as for
    an unmeasured GEMM precision; the H100's tables measured FP8 KV (nothing to say), and a
    GPU moved over from another's tables reads the reference's."""
    note = "; fp8 KV attention: not measured, the bf16 KV rows by the roofline ratio"
    a100 = build_latency_model("llama3.1-8b", "a100-80gb", 1, kv_dtype="fp8")
    assert note in a100.calibration
    assert note not in build_latency_model("llama3.1-8b", "a100-80gb", 1).calibration
    assert "KV attention" not in build_latency_model("llama3.1-8b", "h100-80gb", 1,
                                                     kv_dtype="fp8").calibration
    assert a100.kernels.attn_kv_dtypes() == {"bf16"}
    assert build_latency_model("llama3.1-8b", "h100-80gb", 1).kernels.attn_kv_dtypes() == {
        "bf16", "fp8"}
    # the RTX 4090's tables, compacted from a BF16 layer profile, say so too (they said
    # nothing until 2026-12-07: no note)
    rtx = build_latency_model("llama3.1-8b", "rtx4090-24gb", 1, kv_dtype="fp8")
    assert rtx.kernels.attn_kv_dtypes() == {"bf16"} and note in rtx.calibration


@pytest.mark.parametrize("gpu", ["h100-80gb", "h200-141gb", "l40s-48gb"])
def test_fp4_on_a_gpu_without_fp4_tensor_cores_runs_weight_only(gpu):
    """vLLM runs FP4 checkpoints on Hopper and Ada weight-only (Marlin W4A16, BF16 math). FP4
    GEMMs were timed from the BF16 table at the FP8 rate — BF16's efficiency at twice its
    speed, a compute-bound prefill 16-42 % faster than on the measured FP8 kernels. Now: the
    BF16 kernels at FP4 bytes (prefill as BF16, decode reading a quarter of BF16's weights);
    MoE layers from the measured W4A16 Marlin experts where the table has them."""
    bf16 = build_latency_model("llama3.1-70b", gpu, 4)
    fp4 = build_latency_model("llama3.1-70b", gpu, 4, precision="fp4")
    fp8 = build_latency_model("llama3.1-70b", gpu, 4, precision="fp8")
    assert fp4.prefill_s(8, 2048) == pytest.approx(bf16.prefill_s(8, 2048), rel=0.02)
    assert fp4.decode_step_s(8, 2048) < 0.9 * fp8.decode_step_s(8, 2048)
    assert "; fp4 GEMMs: uncalibrated, the bf16 table by the roofline ratio" in fp4.calibration
    if gpu != "l40s-48gb":
        moe = build_latency_model("qwen3-30b-a3b", gpu, 1, precision="fp4").calibration
        assert "; fp4 MoE: uncalibrated, the mxfp4_marlin table by the roofline ratio" in moe


def test_pcie_gpus_all_reduce_with_nccl_beyond_two_gpus():
    """vLLM's custom all-reduce needs every GPU pair linked: on PCIe-only GPUs it serves TP 2
    and NCCL's all-reduce TP 4 and 8 (`scaleup: pcie`); NVLink GPUs keep the custom one."""
    assert get_gpu("l40s-48gb").scaleup == "pcie" and get_gpu("h100-80gb").scaleup == "nvlink"
    for tp in (2, 4, 8):
        lat = build_latency_model("llama3.1-8b", "l40s-48gb", tp)
        e = np.array([4096.0 * 512])
        k = lat.kernels
        want = (k.nccl("all_reduce", tp)(e) if tp > 2 else k.allreduce(tp, True)(e))
        got = operators.allreduce_s(lat, 1, np.array([512.0]))
        assert got == pytest.approx(want, rel=1e-12), tp
    h100 = build_latency_model("llama3.1-8b", "h100-80gb", 8)
    assert operators.allreduce_s(h100, 1, np.array([512.0])) == pytest.approx(
        h100.kernels.allreduce(8, True)(np.array([4096.0 * 512])), rel=1e-12)


def test_fp4_on_a_gpu_with_fp4_tensor_cores_but_a_reference_without_them():
    """A GPU that computes FP4 on tensor cores (the RTX PRO 6000) timed from a reference whose
    tables have no FP4 kernel (the L40S's): its MoE layers follow the reference's FP8 (W8A8)
    experts moved to FP4's rate and bytes, not its weight-only W4A16 path scaled to FP4's
    rate."""
    from wrpsim.pool.catalog import get_gpu, get_model
    from wrpsim.pool.kernels.borrowed import Transferred
    from wrpsim.pool.kernels.model import EngineConstants, KernelLatency

    l40s = kernels_for(get_engine("vllm-0.24"), "l40s-48gb")
    ref = Transferred(l40s, get_gpu("rtxpro6000-96gb"))
    assert ref._src("fp4") == "fp8"
    assert build_latency_model("qwen3-30b-a3b", "a10g-24gb", 1, precision="fp8").kernels._src(
        "fp8") == "bf16"  # (weight-only on an A10G: the L40S's BF16 kernel)
    spec, gpu = get_model("qwen3-30b-a3b"), get_gpu("rtxpro6000-96gb")
    lat = KernelLatency(spec, gpu, 1, ref, EngineConstants(), precision="fp4")
    fp8 = KernelLatency(spec, gpu, 1, ref, EngineConstants(), precision="fp8")
    assert lat.prefill_s(64, 512) < fp8.prefill_s(64, 512)


def test_int4_experts_carry_a_bf16_scale_per_group_of_32():
    """Kimi-K2 / K2.5 ship INT4 experts as compressed-tensors `pack-quantized` (symmetric,
    group 32) with a BF16 scale per group: 4 + 16 / 32 = 4.5 bits a weight (0.53125 B, an
    8-bit scale's, until 2026-12-07: 3.7 GiB too little a GPU of eight H200s)."""
    m = get_model("kimi-k2.5")
    bf = build_latency_model("kimi-k2.5", "h200-141gb", 8, precision="bf16")
    i4 = build_latency_model("kimi-k2.5", "h200-141gb", 8, precision="int4")
    assert bf.weight_bytes_per_gpu - i4.weight_bytes_per_gpu == pytest.approx(
        m.expert_params * (2.0 - 4.5 / 8) / 8, rel=1e-12)


def _moved_gpus():
    """Catalog GPUs whose collectives vllm-0.24 moves over from another GPU's tables."""
    from wrpsim.pool.kernels.borrowed import Partial, Transferred

    eng = get_engine("vllm-0.24")
    out = []
    for g in sorted(gpus()):
        try:
            k = kernels_for(eng, g)
        except ConfigError:
            continue
        moved = k if isinstance(k, Transferred) else (
            k.ref if isinstance(k, Partial) and not k.own.has("allreduce") else None)
        if moved is not None:
            out.append((g, moved))
    return out


@pytest.mark.parametrize("tp", [2, 4, 8])
def test_collectives_moved_to_another_link_keep_eager_above_graph_and_grow_with_bytes(tp):
    """A GPU without collective tables times them from another GPU's, moved to its own link.
    The move stretched each curve above its own first point, so an eager all-reduce (first
    point: launch time) came out faster than the CUDA-graph one past a few hundred KB — a PCIe
    H100's decode step got 11 % faster from 512 to 513 sequences, where vLLM leaves the graph
    — and NCCL's small-message protocol step grew seven-fold on a 64 GB/s link (physical
    probe, 2026-12-07). Now the bytes' extra time on the slower link is added: eager stays at
    or above graph, every curve grows with the message, and a message's extra time is what
    its bytes need on the link (within the reference's link share)."""
    moved = _moved_gpus()
    assert {"h100-pcie-80gb", "h100-nvl-94gb", "a10g-24gb"} <= {g for g, _ in moved}
    for g, k in moved:
        graph, eager = k.allreduce(tp, True), k.allreduce(tp, False)
        gap = eager(graph.x) - graph.y  # the launch time eager adds; where the reference's
        ref_gap = k.ref.allreduce(tp, False)(graph.x) - k.ref.allreduce(tp, True)(graph.x)
        assert np.all(gap >= np.minimum(ref_gap, 0.0) - 1e-12), g  # eager is not below graph
        for c in (graph, eager, k.nccl("all_gather", tp), k.nccl("reduce_scatter", tp)):
            assert np.all(np.diff(c.y) >= 0), g
        ref = k.ref.allreduce(tp, True)
        slower = get_gpu(g).link_for(tp) < k.ref.gpu.link_for(tp)
        extra = graph.y - ref(graph.x)
        assert np.all(extra >= -1e-15) if slower else np.all(extra <= 1e-15), g
        x = graph.x[-1]  # the largest message: at least its bytes at the new link's rate
        assert graph.y[-1] >= 2 * (tp - 1) / tp * 2 * x / (get_gpu(g).link_for(tp) * 1e9) \
            or not slower, g


def test_a_moved_collective_takes_longer_on_more_gpus_of_a_slower_link():
    """A ring over more GPUs sends more of the message through each GPU's link; moved with a
    link share per group size, 8 PCIe H100s all-reduced 16.8M elements in 990 µs and 4 in
    1,039 (the SXM's 8-GPU share is its NVSwitch's in-network reduction; diff review,
    2026-12-07). One share for every size: the time grows with the group."""
    for g in ("h100-pcie-80gb", "h100-nvl-94gb"):
        k = kernels_for(get_engine("vllm-0.24"), g)
        x = np.array([2.1e6, 16.8e6, 67e6])
        for four, eight in ((k.nccl("all_reduce", 4), k.nccl("all_reduce", 8)),
                            (k.allreduce(4, True), k.allreduce(8, True)),
                            (k.nccl("all_gather", 4), k.nccl("all_gather", 8))):
            assert np.all(four(x) <= eight(x)), g


def test_a_pcie_h100_step_does_not_get_faster_past_the_cuda_graph():
    lat = build_latency_model("llama3.1-8b", "h100-pcie-80gb", 2)
    steps = [lat.decode_step_s(b, b * 128) for b in (511, 512, 513, 520)]
    assert steps == sorted(steps)


@pytest.mark.parametrize("gpu", ["h100-80gb", "h200-141gb"])
@pytest.mark.parametrize("dtype", ["fp4", "mxfp4"])
def test_a_weight_only_gemm_is_held_to_the_sustained_rate_of_the_math_it_runs(gpu, dtype):
    """An FP4 GEMM on Hopper runs weight-only at the BF16 rate; moved from the BF16 table by
    the roofline ratio it escaped the sustained-rate bound, so an H100 ran Llama-3.1-70B's
    FP4 GEMMs at 800 TFLOP/s, above the 666 it sustains, and beat an H200 (physical probe,
    2026-12-07)."""
    k = kernels_for(get_engine("vllm-0.24"), gpu)
    rate = rl.sustained_flops(get_gpu(gpu), dtype)
    assert rate == get_gpu(gpu).bf16_sustained_tflops * 1e12
    c = k.gemm(dtype, 24576, 8192)
    for m in (256.0, 1024.0, 4096.0):
        assert c(m) >= rl.gemm_flops(m, 24576, 8192) / rate * (1 - 1e-9), m
    h100 = build_latency_model("llama3.1-70b", "h100-80gb", 1, precision="fp4")
    h200 = build_latency_model("llama3.1-70b", "h200-141gb", 1, precision="fp4")
    assert h100.decode_step_s(256, 256 * 512) >= h200.decode_step_s(256, 256 * 512)
