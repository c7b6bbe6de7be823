"""docs/experiments/inference_perf_check.py reads inference-perf experiment folders (the layout of
github.com/inference-sim/training `default_args/`, not shipped): checked on a folder made here."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import yaml

SCRIPT = Path(__file__).resolve().parents[1] / "docs/experiments/inference_perf_check.py"


def _module():
    spec = importlib.util.spec_from_file_location("inference_perf_check", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _stage(ok: int, failed: int, prompt: float, ttft: float, e2e: float) -> dict:
    return {"successes": {"count": ok, "prompt_len": {"mean": prompt},
                          "latency": {"time_to_first_token": {"mean": ttft, "p90": 1.2 * ttft},
                                      "request_latency": {"mean": e2e, "p90": 1.1 * e2e}}},
            "failures": {"count": failed}}


def _experiment(root: Path, name: str, model: str, stages: list, metrics: list) -> None:
    d = root / "default_args" / name
    (d / "results").mkdir(parents=True)
    (d / "exp-config.yaml").write_text(yaml.safe_dump(
        {"model": model, "tensor_parallelism": 2, "max_model_len": 4096,
         "max_num_batched_tokens": 2048, "max_num_seqs": 128, "app": "inference-perf"}))
    # the resolved config, which is what ran (profile.yaml's aliases did not reach it)
    (d / "results" / "config.yaml").write_text(yaml.safe_dump(
        {"data": {"type": "shared_prefix", "shared_prefix": {
            "num_groups": 10, "num_prompts_per_group": 10, "system_prompt_len": 100,
            "question_len": 447, "output_len": 248}},
         "load": {"type": "constant", "stages": stages}}))
    for i, m in enumerate(metrics):
        (d / "results" / f"stage_{i}_lifecycle_metrics.json").write_text(json.dumps(m))


def test_stages_are_read_with_their_prompt_reuse_and_failures(tmp_path):
    mod = _module()
    _experiment(tmp_path, "20260218-130541-mixtral-8x7b-v0-1-tp2-general",
                "mistralai/Mixtral-8x7B-v0.1",
                [{"rate": 8.0, "duration": 600}, {"rate": 20.0, "duration": 600}],
                [_stage(4800, 0, 571.3, 0.0639, 4.80), _stage(11000, 1000, 571.0, 0.071, 5.14)])
    cases = mod.experiments(tmp_path)
    assert [c["case"] for c in cases] == ["mixtral-8x7b-v0-1-tp2-general @8/s",
                                          "mixtral-8x7b-v0-1-tp2-general @20/s"]
    first, second = cases
    assert first["model"] == "mixtral-8x7b" and first["tp"] == 2
    assert (first["token_budget"], first["max_seqs"], first["max_model_len"]) == (2048, 128, 4096)
    assert first["prompt"] == 571 and first["output"] == 248
    assert first["prompts"] == 100  # 10 system prompts x 10 questions, each sent over and over
    assert first["failed"] == 0.0
    assert first["ttft_p90"] == pytest.approx(1.2 * 0.0639)
    assert first["e2e_p90"] == pytest.approx(1.1 * 4.80)
    assert second["failed"] == pytest.approx(1000 / 12000)
    assert second["failed"] > mod.MAX_FAILED  # listed, not compared


def test_a_folder_that_is_not_a_clone_is_one_line(tmp_path):
    with pytest.raises(SystemExit, match="is not a folder"):
        _module().experiments(tmp_path)


def test_a_load_other_than_constant_is_refused(tmp_path):
    _experiment(tmp_path, "x-llama-2-7b-tp1-general", "meta-llama/Llama-2-7b-hf",
                [{"rate": 8.0, "duration": 60}], [_stage(480, 0, 575, 0.027, 2.06)])
    cfg = tmp_path / "default_args/x-llama-2-7b-tp1-general/results/config.yaml"
    run = yaml.safe_load(cfg.read_text())
    run["load"]["type"] = "poisson"
    cfg.write_text(yaml.safe_dump(run))
    with pytest.raises(SystemExit, match=r"load\.type 'poisson', expected 'constant'"):
        _module().experiments(tmp_path)
