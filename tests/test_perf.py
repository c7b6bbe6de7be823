"""The analytical latency/power model: acceptance against the shipped Splitwise profile,
monotonicity invariants, vectorisation, tensor-parallel terms and power bounds."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wrpsim.errors import ConfigError
from wrpsim.pool import calibrate
from wrpsim.pool.catalog import get_gpu, get_model, gpus, load_gpus, models
from wrpsim.pool.perf import AnalyticalLatency

MAX_MEDIAN_APE = 15.0
COMBOS = [("llama3.1-8b", "a10g-24gb", 1), ("llama3.1-8b", "l4-24gb", 2),
          ("llama3.1-70b", "h100-80gb", 4), ("llama2-70b", "a100-80gb", 8),
          ("mixtral-8x7b", "h200-141gb", 2), ("bloom-176b", "b200-180gb", 8),
          ("qwen2.5-7b", "mi300x-192gb", 1), ("llama3.1-405b", "l40s-48gb", 8)]
combo = st.sampled_from(COMBOS)


def lat(c, **kw) -> AnalyticalLatency:
    return AnalyticalLatency.from_names(*c, **kw)


@pytest.fixture(scope="module")
def errors():
    return calibrate.profile_errors()  # the repo copy, pools/catalog/profiles/


def test_acceptance_median_error_per_gpu_phase_and_overall(errors):
    """Llama-2-70B rows, A100 and H100, TP 2/4/8, prefill and decode: median APE <= 15 %."""
    assert set(errors["hardware"]) == {"a100-80gb", "h100-80gb"}
    assert set(errors["tensor_parallel"]) == {2, 4, 8}
    for rows in (errors, errors[errors["fits"]]):  # all rows, and the ones whose KV fits
        assert rows["ape_pct"].median() <= MAX_MEDIAN_APE
        for (hw, phase), e in rows.groupby(["hardware", "phase"]):
            assert e["ape_pct"].median() <= MAX_MEDIAN_APE, (hw, phase)
        for hw, e in rows.groupby("hardware"):
            assert e["ape_pct"].median() <= MAX_MEDIAN_APE, hw


def test_acceptance_per_tp(errors):
    table = calibrate.error_table(errors)
    assert (table["median"] <= MAX_MEDIAN_APE).all(), table
    assert (table["count"] >= 18).all()


def test_only_anomalous_rows_do_not_fit(errors):
    bad = errors[~errors["fits"]].drop_duplicates(calibrate._KEYS)
    assert sorted(zip(bad["hardware"], bad["tensor_parallel"], bad["batch_size"])) == [
        ("a100-80gb", 2, 64), ("h100-80gb", 2, 64)]


def test_calibration_check_and_write_roundtrip(tmp_path, capsys):
    assert calibrate.main(["--check"]) == 0
    assert "h100-80gb" in capsys.readouterr().out
    path = tmp_path / "gpus.yaml"
    path.write_text((calibrate.catalog_path() / "gpus.yaml").read_text())
    new = {"a100-80gb": get_gpu("a100-80gb").__class__(**{
        **{f: getattr(get_gpu("a100-80gb"), f) for f in get_gpu("a100-80gb").__slots__},
        "eff_compute": 0.4321})}
    calibrate.write_calibration(path, new, {"a100-80gb": "test"})
    loaded = load_gpus(path)
    assert loaded["a100-80gb"].eff_compute == 0.4321
    assert loaded["l4-24gb"].eff_compute == 0.4321  # copies follow their source
    assert loaded["h100-80gb"] == gpus()["h100-80gb"]


@settings(max_examples=200, deadline=None)
@given(combo, st.integers(0, 8192), st.integers(1, 512), st.integers(0, 256),
       st.integers(0, 4096))
def test_time_grows_with_tokens_batch_and_context(c, p, dp, b, ctx):
    m = lat(c)
    attn = p * (p + 1) / 2.0
    base = m.iteration_s(p, attn, b, b * ctx)
    assert base >= 0.0
    assert m.iteration_s(p + dp, (p + dp) * (p + dp + 1) / 2.0, b, b * ctx) >= base
    assert m.iteration_s(p, attn, b + 1, (b + 1) * ctx) >= base
    assert m.iteration_s(p, attn, b, b * (ctx + dp)) >= base
    assert m.prefill_s(2, max(p, 1)) >= m.prefill_s(1, max(p, 1))


@settings(max_examples=100, deadline=None)
@given(combo, st.integers(1, 300), st.integers(0, 100_000), st.integers(0, 64))
def test_decode_run_equals_looping_iteration(c, batch, ctx0, n):
    m = lat(c)
    loop = [m.iteration_s(0, 0.0, batch, ctx0 + k * batch) for k in range(n)]
    np.testing.assert_allclose(m.decode_run_s(batch, ctx0, n), loop, rtol=1e-12, atol=0)


def test_large_allreduce_slowdown_is_not_extrapolated():
    m = lat(("llama3.1-70b", "h100-80gb", 8))
    per_tok = [m.prefill_s(n, 4096) / (n * 4096) for n in (1, 4, 16, 64)]
    assert per_tok[1] > per_tok[0] * 1.05  # within the profiled range: superlinear
    assert per_tok[3] < per_tok[2] * 1.05  # beyond 512 MiB messages: linear again


def test_empty_iteration_is_free():
    assert lat(COMBOS[2]).iteration_s(0, 0.0, 0, 0) == 0.0


@pytest.mark.parametrize("c", COMBOS)
def test_tp1_has_no_comm_term(c):
    one = (c[0], c[1], 1)
    m, m2 = lat(one), lat(one, coll_latency_us=1e4, eff_link=0.01, link_sat_mib=1.0)
    for args in ((512, 512 * 256.5, 0, 0), (0, 0.0, 32, 32 * 1000), (256, 1000.0, 8, 8000)):
        assert m.iteration_s(*args) == m2.iteration_s(*args)
    if c[2] > 1:
        assert lat(c, coll_latency_us=1e4).decode_step_s(1, 100) > lat(c).decode_step_s(1, 100)


@settings(max_examples=200, deadline=None)
@given(combo, st.integers(0, 65536), st.integers(0, 1024))
def test_power_between_idle_and_tdp(c, p, b):
    m = lat(c)
    w = m.power_w(p, b)
    assert m.idle_power_w() <= w <= m.gpu.tdp_w
    assert m.power_w(0, 0) == m.idle_power_w()


def test_power_shape():
    m = lat(("llama3.1-70b", "h100-80gb", 4))
    assert m.power_w(4096, 0) > m.power_w(0, 1) > m.idle_power_w()
    assert m.power_w(0, 128) > m.power_w(0, 1)


def test_moe_reads_expected_distinct_experts():
    """A memory-bound MoE step reads the dense weights plus E(1 - (1 - k/E)^T) experts."""
    m = lat(("mixtral-8x7b", "h100-80gb", 1), seq_overhead_us=0.0, layer_overhead_us=0.0,
            iter_overhead_us=0.0)
    model, g = get_model("mixtral-8x7b"), m.gpu
    bw = g.mem_bw_gbs * 1e9 * g.eff_mem
    expert = 32 * 8 * model.expert_params_per_layer * 2
    dense = model.params * 2 - expert - model.vocab * model.hidden * 2  # input table not read
    kv = model.kv_bytes_per_token / (g.mem_bw_gbs * 1e9 * g.eff_kv)
    for t in (1, 4, 64):
        touched = 8 * (1 - (1 - 2 / 8) ** t) / 8
        expect = (dense + expert * touched) / bw + t * kv
        assert m.decode_step_s(t, 0) == pytest.approx(expect, rel=1e-9)


def test_kv_heads_replicate_beyond_their_count():
    m = AnalyticalLatency(get_model("llama3.1-70b"), get_gpu("h100-80gb"), 16)
    assert m.kv_bytes_per_token_per_gpu == 2 * 80 * 1 * 128 * 2
    assert lat(("llama3.1-70b", "h100-80gb", 4)).kv_bytes_per_token_per_gpu == 320 * 1024 / 4


@pytest.mark.parametrize("tp", [0, 3, -2, 2.0, True])
def test_bad_tp(tp):
    with pytest.raises(ConfigError, match=r"tp must be an integer >= 1 that divides the "
                       r"attention heads of llama3\.1-70b \(64\)"):
        AnalyticalLatency(get_model("llama3.1-70b"), get_gpu("h100-80gb"), tp)


def test_unknown_override():
    with pytest.raises(ConfigError, match=r"unknown latency override 'eff_magic'; valid: "):
        lat(COMBOS[0], eff_magic=1.0)


def test_override_changes_the_model():
    base = lat(COMBOS[2])
    fast = lat(COMBOS[2], layer_overhead_us=0.0, seq_overhead_us=0.0)
    assert fast.decode_step_s(32, 1000) < base.decode_step_s(32, 1000)
    assert fast.gpu.layer_overhead_us == 0.0 and base.gpu.layer_overhead_us > 0.0


# microsoft/Phi-3-medium-4k-instruct config.json: 40 attention heads, 10 KV heads
PHI3_MEDIUM = dict(layers=40, hidden=5120, heads=40, kv_heads=10, head_dim=128,
                   intermediate=17920, vocab=32064, max_context=4096)


@pytest.mark.parametrize("tp", [4, 8])
def test_tp_that_splits_the_kv_heads_unevenly_is_refused(tp):
    """vLLM's rule: kv_heads % tp == 0 when kv_heads >= tp, else tp % kv_heads == 0 (KV heads
    replicated); tp 4 and 8 divide Phi-3-medium's 40 heads but not its 10 KV heads."""
    from wrpsim.pool.catalog import ModelSpec

    m = ModelSpec(name="phi-3-medium", **PHI3_MEDIUM)
    assert m.tp_choices() == [1, 2, 5, 10, 20, 40]
    msg = ("tp must be an integer >= 1 that divides the attention heads of phi-3-medium (40) "
           "and splits or replicates its 10 KV heads evenly; valid: 1, 2, 5 (10, 20, 40 only as "
           "a group across servers, with its collectives on a fabric: network.collectives=true); "
           f"got {tp}")
    with pytest.raises(ConfigError) as e:
        AnalyticalLatency(m, get_gpu("h100-80gb"), tp)
    assert str(e.value) == msg
    assert AnalyticalLatency(m, get_gpu("h100-80gb"), 20).kv_bytes_per_token_per_gpu == \
        2 * 40 * 1 * 128 * 2  # 20 GPUs: each of the 10 KV heads on two of them


def test_a_pool_with_a_tp_that_does_not_fit_the_kv_heads_names_its_field(tmp_path,
                                                                         monkeypatch):
    import yaml

    from wrpsim.pool import catalog
    from wrpsim.pool.engines import clear_caches
    from wrpsim.pool.fleet import build_latency, parse_pool

    (tmp_path / "models.yaml").write_text(yaml.safe_dump({"phi-3-medium": PHI3_MEDIUM}))
    monkeypatch.setenv("WRPSIM_CATALOG", str(tmp_path))
    catalog.models.cache_clear()
    try:
        spec = parse_pool("h100", {"gpu": "h100-80gb", "model": "phi-3-medium", "tp": 8})
        with pytest.raises(ConfigError, match=r"^pool\.pools\.h100\.tp must be an integer >= 1 "
                           r"that divides the attention heads of phi-3-medium \(40\) and splits "
                           r"or replicates its 10 KV heads evenly; valid: 1, 2, 5 \(10, 20, 40 "
                           r"only as a group across servers.*\); got 8$"):
            build_latency(spec)
    finally:
        monkeypatch.delenv("WRPSIM_CATALOG")
        catalog.models.cache_clear()
        clear_caches()


@pytest.mark.parametrize("name", sorted(models()))
def test_the_2023_model_reads_every_weight_once_and_its_power_stays_in_range(name):
    """Oracle: with every expert touched, an iteration of the analytical (2023) model reads
    each weight but the input embedding table once — dense part plus experts equal the
    parameters less that table, for models with leading or interleaved dense layers (DeepSeek,
    Llama 4) and hybrids with FFN-less layers (Nemotron-H) too. Its power is between idle and
    TDP at every batch (a negative dense part once made Llama 4's negative)."""
    m = get_model(name)
    tp = m.tp_choices()[0]
    lat = AnalyticalLatency(m, get_gpu("h200-141gb"), tp)
    table = 0 if m.tied_embeddings else m.vocab * m.hidden
    read = (lat._bytes_dense + lat._bytes_exp) * tp / m.bytes_per_param
    assert lat._bytes_dense > 0 and read == pytest.approx(m.params - table, rel=1e-9)
    for batch in (1, 16, 256):
        assert lat.gpu.idle_w <= lat.power_w(0, batch) <= lat.gpu.tdp_w
        assert lat.gpu.idle_w <= lat.power_w(batch * 512, 0) <= lat.gpu.tdp_w
