"""The LLMRouter outcomes (routers/data/llmrouter_outcomes_9models.csv): schema, the source's
figures, the llmrouter-14-tasks workload and the quality of runs on six-model-llmrouter."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from tests.conftest import compose_cfg
from wrpsim.metrics.quality import quality_summary
from wrpsim.pool.catalog import get_model
from wrpsim.sim import Simulation
from wrpsim.workload import load_workload
from wrpsim.workload.outcomes import read_accuracy

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "routers" / "data"
FILE = DATA / "llmrouter_outcomes_9models.csv"
WORKLOAD = "llmrouter-14-tasks"
POOL = "six-model-llmrouter"
# Mean score per model over the 6,102 queries, from the source's score files
# (ulab-uiuc/LLMRouter 4e7a796, data/dcrouter_preprocessed/{train,test}.json, less the 6 question
# texts listed under two benchmarks), as routers/data/README.md quotes them.
SOURCE_MEANS = {"nemotron_51b": 0.6163, "nemotron_super_49b": 0.5727, "llama31_8b": 0.5564,
                "gemma2_9b": 0.5276, "qwen25_7b": 0.5122, "mistral_7b": 0.3632,
                "codegemma_7b": 0.2973, "chatqa15_70b": 0.2003, "chatqa15_8b": 0.1732}
BENCH_ROWS = {"natural_qa": 550, "trivia_qa": 550, "gsm8k": 550, "mbpp": 548, "mmlu": 544,
              "math": 504, "commonsense_qa": 500, "gpqa": 498, "arc_challenge": 498,
              "openbook_qa": 496, "agentverse-mgsm": 250, "human_eval": 214,
              "agentverse-logicgrid": 200, "commongen": 200}
BINARY_METRICS = {"em_mc", "GSM8K", "MATH", "code_eval"}  # F1 and coverage lie in [0, 1]


@pytest.fixture(scope="module")
def src() -> pd.DataFrame:
    return pd.read_csv(FILE)


@pytest.fixture(scope="module")
def spec() -> dict:
    return yaml.safe_load((ROOT / "workloads" / f"{WORKLOAD}.yaml").read_text())["outcomes"]


def test_schema_and_source_figures(src):
    assert FILE.stat().st_size < 2_000_000
    cols = [c for c in src.columns if c.startswith("correct_")]
    assert len(cols) == 9 >= 5
    assert {"prompt_id", "benchmark", "category", "split", "metric", "prompt_chars"} <= set(
        src.columns)
    assert len(src) == 6102 and src["prompt_id"].tolist() == list(range(6102))
    assert src["benchmark"].value_counts().to_dict() == BENCH_ROWS
    assert (src["category"] == src["benchmark"]).all()
    assert src["split"].value_counts().to_dict() == {"train": 5602, "test": 500}
    assert (src["prompt_chars"] > 0).all()
    vals = src[cols].to_numpy()
    assert ((vals >= 0) & (vals <= 1)).all()
    binary = src["metric"].isin(BINARY_METRICS).to_numpy()
    assert np.isin(vals[binary], (0.0, 1.0)).all()
    assert not np.isin(vals[~binary], (0.0, 1.0)).all()  # F1 / coverage do take partial values
    for key, mean in SOURCE_MEANS.items():
        assert src[f"correct_{key}"].mean() == pytest.approx(mean, abs=1e-4), key


def test_category_accuracy_table_is_the_files_means(src, spec):
    table = read_accuracy(DATA / "llmrouter_category_accuracy.csv")
    assert set(table) == set(spec["models"].values())
    for key, model in spec["models"].items():
        means = src.groupby("category")[f"correct_{key}"].mean()
        assert set(table[model]) == set(means.index)
        for cat, acc in table[model].items():
            assert acc == pytest.approx(means[cat], abs=5e-5), (model, cat)


def test_routed_models_are_catalog_models_served_by_the_pool(spec):
    pool = yaml.safe_load((ROOT / "pools" / f"{POOL}.yaml").read_text())
    served = {p["model"] for p in pool["pools"].values()}
    assert len(spec["models"]) >= 5 and set(spec["models"].values()) == served
    # config.json parameter counts as published (billions)
    for name, params in (("mistral-7b-v0.3", 7.25), ("gemma-2-9b", 9.24),
                         ("codegemma-7b", 8.54), ("qwen2.5-7b", 7.62), ("llama3.1-8b", 8.03)):
        assert get_model(name).params / 1e9 == pytest.approx(params, rel=0.01), name
    g = get_model("gemma-2-9b")
    assert (g.sliding_window, g.sliding_layers, g.max_context) == (4096, 21, 8192)
    # the stand-in costs what its parent Llama-3.1-70B costs
    assert get_model("nemotron-51b-class").params == get_model("llama3.1-70b").params


def test_workload_carries_outcomes_of_every_routed_model(src, spec):
    df = load_workload(WORKLOAD)
    assert len(df) == len(src)  # one file row per request, each row once
    models = set(spec["models"].values())
    assert all(set(o) == models for o in df["outcomes"])
    for key, model in spec["models"].items():
        got = np.mean([o[model] for o in df["outcomes"]])
        assert got == pytest.approx(src[f"correct_{key}"].mean(), abs=1e-12)
    expect = np.ceil(src["prompt_chars"] / 4.0).astype(int) + 40
    assert sorted(df["prompt_tokens"]) == sorted(expect)
    assert sorted(df["category"]) == sorted(src["category"])
    assert (df["output_tokens"] >= 1).all()


def _run(*overrides: str):
    sim = Simulation(compose_cfg(f"workload={WORKLOAD}", f"pool={POOL}", *overrides))
    req, inst, end = sim.run()
    return sim, req, quality_summary(req, inst, sim.trace, sim.fleet.specs, sim.pue, end)


def test_single_model_run_quality_is_the_models_mean_score(src):
    _, _, q = _run("workload.model=gemma-2-9b")
    assert q["model_share"] == {"gemma-2-9b": 1.0}
    assert q["quality_requests"] == 6102
    assert q["quality"] == pytest.approx(src["correct_gemma2_9b"].mean(), abs=1e-9)


def test_routed_run_quality_is_the_mean_of_the_chosen_models_scores(spec):
    sim, req, q = _run("router=carrot-utility",
                       "router.predictor.table=data/llmrouter_category_accuracy.csv",
                       "workload.max_requests=400")
    rows = [r for r in req.to_pylist() if r["parent_id"] is None]
    assert len(rows) == 400 and all(not math.isnan(r["finish_s"]) for r in rows)
    outcomes = list(sim.trace["outcomes"])
    chosen = [outcomes[r["request_id"]][r["model"]] for r in rows]
    assert q["quality"] == pytest.approx(np.mean(chosen), abs=1e-12)
    assert len(q["model_share"]) >= 3  # the utility router mixes the models
    best_single = max(np.mean([o[m] for o in outcomes]) for m in spec["models"].values())
    assert q["quality"] > best_single
