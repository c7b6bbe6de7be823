"""The `inference_perf` validation set (`wrpsim.validate.inference_perf`) reads inference-perf
experiment folders — the layout of github.com/inference-sim/training `default_args/`, not
shipped: checked on folders made here, and replayed through the simulator."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from wrpsim.validate.inference_perf import IP_ENGINE, MAX_FAILED, inference_perf_cases


def _stage(ok: int, failed: int, prompt: float, ttft: float, e2e: float) -> dict:
    return {"successes": {"count": ok, "prompt_len": {"mean": prompt},
                          "latency": {"time_to_first_token": {"mean": ttft, "p90": 1.2 * ttft},
                                      "request_latency": {"mean": e2e, "p90": 1.1 * e2e}}},
            "failures": {"count": failed}}


def _experiment(root: Path, name: str, model: str, stages: list, metrics: list,
                tp: int = 2) -> Path:
    d = root / "default_args" / name
    (d / "results").mkdir(parents=True)
    (d / "exp-config.yaml").write_text(yaml.safe_dump(
        {"model": model, "tensor_parallelism": tp, "max_model_len": 4096,
         "max_num_batched_tokens": 2048, "max_num_seqs": 128, "app": "inference-perf"}))
    # the resolved config, which is what ran (profile.yaml's aliases did not reach it)
    (d / "results" / "config.yaml").write_text(yaml.safe_dump(
        {"data": {"type": "shared_prefix", "shared_prefix": {
            "num_groups": 10, "num_prompts_per_group": 10, "system_prompt_len": 100,
            "question_len": 447, "output_len": 248}},
         "load": {"type": "constant", "stages": stages}}))
    for i, m in enumerate(metrics):
        (d / "results" / f"stage_{i}_lifecycle_metrics.json").write_text(json.dumps(m))
    return d


def test_stages_become_cases_with_their_prompt_reuse_and_overloads_are_left_out(tmp_path):
    _experiment(tmp_path, "20260218-130541-mixtral-8x7b-v0-1-tp2-general",
                "mistralai/Mixtral-8x7B-v0.1",
                [{"rate": 8.0, "duration": 600}, {"rate": 20.0, "duration": 600}],
                [_stage(4800, 0, 571.3, 0.0639, 4.80), _stage(11000, 1000, 571.0, 0.071, 5.14)])
    skipped: dict[str, int] = {}
    cases = inference_perf_cases(tmp_path, skipped)
    assert [c.name for c in cases] == ["mixtral-8x7b-v0-1-tp2-general @8/s"]
    assert skipped == {f"more than {MAX_FAILED:.0%} of the stage's requests failed "
                       "(overloaded)": 1}
    c = cases[0]
    assert (c.set, c.gpu, c.model, c.split) == ("inference_perf", "h100-80gb", "mixtral-8x7b",
                                                "test")
    assert c.pool["tp"] == 2 and c.pool["engine"] == IP_ENGINE
    assert c.pool["scheduler"]["token_budget"] == 2048 and c.pool["scheduler"]["max_seqs"] == 128
    assert c.pool["max_context"] == 4096
    assert c.pool["latency"]["allreduce_fusion"] is False
    src = c.workload["source"]
    assert src == {"kind": "constant_rate", "stages": [{"rate": 8.0, "duration_s": 600.0}],
                   "spacing": "inference_perf", "prompt_tokens": 571, "output_tokens": 248}
    # 10 system prompts x 10 questions, each sent over and over: whole prompts are reused
    assert c.workload["prefix_ids"] == "synthetic"
    assert c.workload["prefix_reuse"] == {"share": 1.0, "tokens": 571, "prefixes": 100,
                                          "zipf_s": 0.0}
    assert c.measured["ttft_mean_s"] == 0.0639 and c.measured["e2e_mean_s"] == 4.80
    assert c.measured["tpot_mean_s"] == pytest.approx((4.80 - 0.0639) / 247)
    assert c.info["e2e_p90_s"] == pytest.approx(1.1 * 4.80)


def test_other_loads_data_and_models_are_counted_not_dropped_silently(tmp_path):
    d = _experiment(tmp_path, "a-llama-2-7b-tp1-general", "meta-llama/Llama-2-7b-hf",
                    [{"rate": 8.0, "duration": 60}], [_stage(480, 0, 575, 0.027, 2.06)], tp=1)
    run = yaml.safe_load((d / "results/config.yaml").read_text())
    run["load"]["type"] = "poisson"
    (d / "results/config.yaml").write_text(yaml.safe_dump(run))
    _experiment(tmp_path, "b-unknown", "someone/Unknown-7B", [{"rate": 1.0, "duration": 60}],
                [_stage(60, 0, 500, 0.03, 1.0)])
    skipped: dict[str, int] = {}
    assert inference_perf_cases(tmp_path, skipped) == []
    assert skipped == {"load type 'poisson' (replayed: constant)": 1,
                       "model someone/Unknown-7B is no catalog entry's source": 1}


def test_a_stage_replays_near_its_measurement(tmp_path):
    """Llama-2-70B at TP 4, 8 requests a second of 575-token prompts, 248 out (the measured
    run's figures: 57 ms TTFT, 4.68 s latency), replayed for 60 s: within 15 % in latency
    (+10 %: the first hundred prompts, a fifth of these, are not cached yet; the full 600 s
    stage replays at +2 %: docs/validation.md)."""
    from wrpsim.validate.replay import simulate

    _experiment(tmp_path, "20260217-202857-llama-2-70b-tp4-general",
                "meta-llama/Llama-2-70b-hf", [{"rate": 8.0, "duration": 60}],
                [_stage(480, 0, 575, 0.0574, 4.68)], tp=4)
    (case,) = inference_perf_cases(tmp_path)
    sim = simulate(case)
    assert sim["requests"] == 480
    assert sim["e2e_mean_s"] == pytest.approx(4.68, rel=0.15)
    assert sim["ttft_p90_s"] >= sim["ttft_p50_s"] > 0


def test_a_folder_missing_a_field_is_one_line(tmp_path):
    from wrpsim.errors import ConfigError

    d = _experiment(tmp_path, "a-llama-2-7b-tp1-general", "meta-llama/Llama-2-7b-hf",
                    [{"rate": 8.0, "duration": 60}], [_stage(480, 0, 575, 0.027, 2.06)], tp=1)
    cfg = yaml.safe_load((d / "exp-config.yaml").read_text())
    del cfg["max_num_seqs"]
    (d / "exp-config.yaml").write_text(yaml.safe_dump(cfg))
    with pytest.raises(ConfigError, match=r"a-llama-2-7b-tp1-general: missing or malformed "
                                          r"field max_num_seqs"):
        inference_perf_cases(tmp_path)
    (d / "exp-config.yaml").write_text("model: [unclosed")
    with pytest.raises(ConfigError, match=r"exp-config.yaml: cannot be read") as err:
        inference_perf_cases(tmp_path)
    assert "missing or malformed" not in str(err.value)  # (said once, not wrapped again)
