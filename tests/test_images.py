"""Requests with images (wrpsim.pool.vision): encoder tokens, encoder time, modality drops."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from wrpsim.errors import ConfigError, TraceError
from wrpsim.pool.catalog import get_model
from wrpsim.pool.engines import build_latency_model
from wrpsim.sim import Simulation
from wrpsim.workload.request import to_requests
from wrpsim.workload.signals import assign_signals
from wrpsim.workload.validate import canonical_frame, validate_trace


def _cfg(model: str) -> dict:
    return {"workload": {"name": "t"}, "seed": 0, "slo": {"ttft_s": 10, "tpot_s": 1},
            "router": {"_target_": "wrpsim.router.RoundRobin"},
            "pool": {"pools": {"p": {"gpu": "h100-80gb", "model": model, "tp": 1}}}}


def _trace():
    """A text request at 0 s, the same with one image at 10 s (alone on the instance)."""
    return canonical_frame(np.array([0.0, 10.0]), np.array([1000, 1000]), np.array([20, 20]),
                           {"modality": ["text", "image"], "images": [0, 1]})


def test_image_tokens_and_encoder_time_closed_form():
    v = get_model("gemma-3-12b").vision
    # google/gemma-3-12b-it config.json: mm_tokens_per_image 256, SigLIP 896 px / 14 px patches
    assert (v.tokens_per_image, v.patches_per_image) == (256, 4096)
    n, P, L, H = 4096.0, v.encoder_params, 27, 1152
    flops = 2 * P * n + 4 * L * n * n * H
    assert v.flops(2) == pytest.approx(2 * flops)
    lat = build_latency_model("gemma-3-12b", "h100-80gb", 1)
    t_gemm = float(lat.kernels.gemm("bf16", 4 * H, H)(n))  # measured GEMM at the MLP shape
    enc = flops * t_gemm / (2 * n * 4 * H * H)
    assert lat.encoder_s(v, 1) == pytest.approx(enc)
    peak = lat.gpu.bf16_tflops * 1e12
    assert flops / peak < enc < 3 * flops / peak  # 5.5 TFLOP: a few ms on an H100
    df = Simulation(_cfg("gemma-3-12b"), trace=_trace()).run()[0].to_pandas()
    assert df["status"].tolist() == ["completed", "completed"]
    assert df["prompt_tokens"].tolist() == [1000, 1000 + 256]
    ttft = df["ttft_s"].to_numpy()
    assert ttft[1] - ttft[0] >= enc
    # against the same prompt as 1256 text tokens: the encoder, less the front end's per-token
    # tokenization of 256 more text tokens (images are not tokenized as text)
    text = canonical_frame(np.array([0.0]), np.array([1256]), np.array([20]))
    t_text = Simulation(_cfg("gemma-3-12b"), trace=text).run()[0].to_pandas()["ttft_s"][0]
    tok = lat.frontend_s(1256) - lat.frontend_s(1000)
    assert ttft[1] - t_text == pytest.approx(enc - tok, rel=1e-6)


def test_text_model_refuses_images_and_runs_are_deterministic():
    a = Simulation(_cfg("llama3.1-8b"), trace=_trace()).run()[0].to_pandas()
    assert a["status"].tolist() == ["completed", "dropped"]
    assert a["drop_reason"].tolist()[1] == "modality"
    b = Simulation(_cfg("llama3.1-8b"), trace=_trace()).run()[0].to_pandas()
    pd.testing.assert_frame_equal(a, b)


def test_signals_images_follow_modality():
    df = canonical_frame(np.zeros(4), np.full(4, 10), np.full(4, 5),
                         {"modality": ["text", "image", "both", None], "images": [0, 0, 3, 2]})
    out = assign_signals(df, {"images": 1}, np.random.default_rng(0))
    assert out["images"].tolist() == [0, 1, 3, 2]
    assert out["modality"].tolist() == ["text", "image", "both", "image"]
    assert [r.images for r in to_requests(validate_trace(out))] == [0, 1, 3, 2]


@pytest.mark.parametrize("bad", [0, -1, 1.5, True])
def test_bad_signals_images_one_line(bad):
    df = canonical_frame(np.zeros(1), np.ones(1), np.ones(1))
    with pytest.raises(ConfigError, match=r"signals\.images: an integer >= 1") as e:
        assign_signals(df, {"images": bad}, np.random.default_rng(0))
    assert "\n" not in str(e.value)


def test_negative_or_fractional_images_one_line():
    df = canonical_frame(np.zeros(1), np.ones(1), np.ones(1), {"images": [-1]})
    with pytest.raises(TraceError, match="row 0: images must be >= 0, got -1") as e:
        validate_trace(df)
    assert "\n" not in str(e.value)
    with pytest.raises(TraceError, match="images must be a whole number"):
        canonical_frame(np.zeros(1), np.ones(1), np.ones(1), {"images": [0.5]})


@pytest.mark.parametrize("vision, pattern", [
    ({"tokens_per_image": 0, "patches_per_image": 4096, "encoder_params": 4e8},
     r"field 'vision.tokens_per_image' must be > 0, got 0"),
    ({"tokens_per_image": 256, "patches_per_image": 4096},
     r"missing field 'vision.encoder_params'"),
    ({"tokens_per_image": 256, "patches_per_image": 4096, "encoder_params": 4e8, "px": 1},
     r"unknown field 'vision.px'"),
    (256, r"field 'vision' must be a mapping"),
])
def test_bad_vision_block_one_line(tmp_path, vision, pattern):
    import yaml

    from wrpsim.pool.catalog import load_models

    entry = {"layers": 2, "hidden": 64, "heads": 4, "kv_heads": 4, "head_dim": 16,
             "intermediate": 128, "vocab": 100, "vision": vision}
    p = tmp_path / "models.yaml"
    p.write_text(yaml.safe_dump({"m": entry}))
    with pytest.raises(ConfigError, match=pattern) as e:
        load_models(p)
    assert "\n" not in str(e.value)


def test_shipped_modality_routing_drops_none_and_text_fleet_refuses_images():
    from tests.conftest import compose_cfg

    cfg = compose_cfg("router=modality-vision", "pool=vision-text-h100-a100",
                      "workload=semantic-router-images", "workload.max_requests=80")
    sim = Simulation(cfg)
    req = sim.run()[0].to_pandas()
    imgs = np.asarray(sim.trace["images"])
    assert set(req["status"]) == {"completed"} and 5 <= (imgs > 0).sum() <= 30
    got = req.set_index("request_id")
    assert (got.loc[np.flatnonzero(imgs > 0), "model"] == "gemma-3-12b").all()
    cfg = compose_cfg("pool=h100-llama70b", "workload=semantic-router-images",
                      "workload.max_requests=80")
    req = Simulation(cfg).run()[0].to_pandas()
    assert (req["drop_reason"] == "modality").sum() == (imgs > 0).sum()


def test_a_row_with_images_and_no_modality_is_routed_as_an_image_request():
    """A trace with `images` but no `modality` column routed every image request as text (the
    detector's default), so modality-vision dropped them all with reason modality."""
    from tests.conftest import compose_cfg

    cfg = compose_cfg("router=modality-vision", "pool=vision-text-h100-a100")
    trace = canonical_frame(np.array([0.0, 1.0, 2.0]), np.full(3, 500), np.full(3, 10),
                            {"images": [1, 0, 2]})
    req = Simulation(cfg, trace=trace).run()[0].to_pandas().set_index("request_id")
    assert req["status"].tolist() == ["completed"] * 3
    assert req["model"].tolist() == ["gemma-3-12b", "llama3.1-8b", "gemma-3-12b"]


def test_a_modality_outside_text_image_both_is_one_line_with_the_file_line(tmp_path):
    from wrpsim.workload import load_trace

    f = tmp_path / "t.csv"
    f.write_text("t,p,o,m\n0,10,5,image\n1,20,5,foo\n")
    cols = {"arrival_s": "t", "prompt_tokens": "p", "output_tokens": "o", "modality": "m"}
    with pytest.raises(TraceError, match=r"t\.csv: line 3: field m \(modality\): modality must "
                                         r"be one of text, image, both or empty, got 'foo'$"):
        load_trace(f, kind="generic", columns=cols)
    df = canonical_frame(np.zeros(1), np.ones(1), np.ones(1))
    with pytest.raises(ConfigError, match=r"^signals\.modality: unknown value 'audio'; valid "
                                          r"choices: both, image, text$"):
        assign_signals(df, {"modality": {"text": 0.5, "audio": 0.5}}, np.random.default_rng(0))


def test_loaders_keep_images_and_the_trace_cache_round_trips(tmp_path, monkeypatch):
    from wrpsim.workload import load_trace

    monkeypatch.setenv("WRPSIM_CACHE", str(tmp_path / "cache"))
    f = tmp_path / "t.csv"
    f.write_text("t,p,o,m,k\n0,10,5,image,2\n1,20,5,text,\n")
    cols = {"arrival_s": "t", "prompt_tokens": "p", "output_tokens": "o", "modality": "m",
            "images": "k"}
    for _ in range(2):  # parsed, then read back from the cache
        df = validate_trace(load_trace(f, kind="generic", columns=cols))
        assert df["images"].dtype == np.int64 and df["images"].tolist() == [2, 0]


def test_encoder_time_of_the_analytical_and_constant_models():
    from wrpsim.pool.catalog import get_gpu
    from wrpsim.pool.constant import ConstantLatency
    from wrpsim.pool.perf import AnalyticalLatency

    m, g = get_model("gemma-3-12b"), get_gpu("h100-80gb")
    lat = AnalyticalLatency(m, g, 2)
    want = m.vision.flops(3) / 2 / (g.bf16_tflops * 1e12 * g.eff_compute)
    assert lat.encoder_s(m.vision, 3) == pytest.approx(want)
    assert ConstantLatency.encoder_s(None, m.vision, 3) == 0.0


def test_image_requests_on_a_prefix_cache_are_warned_about():
    """Text hash ids only: a request with images may hit blocks cached by one with other
    images (vLLM hashes the images too), so the run says its hits may be optimistic."""
    from wrpsim.errors import WrpsimWarning

    cfg = _cfg("gemma-3-12b")
    cfg["pool"]["pools"]["p"]["prefix_cache"] = {"enabled": True}
    trace = canonical_frame(np.array([0.0, 10.0]), np.array([1024, 1024]), np.array([20, 20]),
                            {"images": [1, 2], "hash_ids": [list(range(64))] * 2})
    trace.attrs["hash_block_tokens"] = 16
    with pytest.warns(WrpsimWarning, match=r"^2 requests carry images and are matched against "
                      r"the prefix cache by their text hash ids alone"):
        Simulation(cfg, trace=trace).run()
