"""Workload side of routing studies: outcomes joined per prompt, categories, accuracy tables."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import make_trace
from wrpsim.errors import ConfigError
from wrpsim.workload import apply_transforms, build_workload, load_workload, to_requests
from wrpsim.workload.categories import LEVELS
from wrpsim.workload.outcomes import lookup, read_accuracy

ROOT = Path(__file__).resolve().parents[1]
OUTCOMES = ROOT / "routers" / "data" / "routellm_outcomes_mixtral_vs_gpt4.csv"
SPEC = {"path": str(OUTCOMES), "models": {"small": "mixtral-8x7b", "large": "gpt4-class"}}


def _frame(n=50):
    return make_trace(np.arange(n) * 0.5, [7] * n, [3] * n)


def test_outcomes_join_one_file_row_per_request():
    src = pd.read_csv(OUTCOMES)
    out = apply_transforms(_frame(), {"outcomes": {**SPEC, "order": "file"}}, seed=0)
    assert out["category"].tolist() == src["category"][:50].tolist()
    assert out["prompt_tokens"].tolist() == np.ceil(src["prompt_chars"][:50] / 4).astype(
        int).tolist()
    assert out["output_tokens"].tolist() == [3] * 50  # kept from the trace
    assert out["outcomes"][7] == {"mixtral-8x7b": float(src["correct_small"][7]),
                                  "gpt4-class": float(src["correct_large"][7])}
    # shuffled: a permutation of the file, the same for the same seed
    a = apply_transforms(_frame(), {"outcomes": SPEC}, seed=4)
    b = apply_transforms(_frame(), {"outcomes": SPEC}, seed=4)
    assert a["category"].tolist() == b["category"].tolist()
    assert a["category"].tolist() != out["category"].tolist()


def test_outcomes_prompt_overhead_outputs_and_errors():
    spec = {**SPEC, "chars_per_token": 2.0, "prompt_overhead_tokens": 10, "order": "file",
            "output": {"mmlu": {"dist": "constant", "value": 5},
                       "gsm8k": {"dist": "constant", "value": 99}}}
    out = apply_transforms(_frame(3), {"outcomes": spec}, seed=0)
    src = pd.read_csv(OUTCOMES)[:3]
    assert out["prompt_tokens"].tolist() == (np.ceil(src["prompt_chars"] / 2) + 10).astype(
        int).tolist()
    assert out["output_tokens"].tolist() == [5, 5, 5]
    keep = apply_transforms(_frame(3), {"outcomes": {**SPEC, "prompt": "trace"}}, seed=0)
    assert keep["prompt_tokens"].tolist() == [7, 7, 7]
    for bad, match in (({"colour": 1}, r"outcomes\.colour: unknown value"),
                       ({"models": {"tiny": "x"}}, r"column correct_tiny missing"),
                       ({"order": "random"}, r"outcomes\.order: unknown value 'random'"),
                       ({"path": "nope.csv"}, r"outcomes\.path: file not found"),
                       ({"output": {"mmlu": {"dist": "constant", "value": 5}}},
                        r"no length distribution for benchmark")):
        with pytest.raises(ConfigError, match=match):
            apply_transforms(_frame(3000), {"outcomes": {**SPEC, **bad}}, seed=0)


def test_categories_mix_complexity_and_overwrite():
    df = _frame(4000)
    df["category"] = pd.Series(["code"] * 10 + [None] * 3990, dtype=object)
    spec = {"mix": {"prose": 3, "code": 1}, "complexity": {"prose": [0.1, 0.3], "code": "high"}}
    out = apply_transforms(df, {"categories": spec}, seed=0)
    cats = out["category"].tolist()
    assert cats[:10] == ["code"] * 10  # kept
    assert 0.70 < cats.count("prose") / 4000 < 0.80
    cx = out["complexity"].to_numpy()
    assert out["complexity"].dtype == np.float64
    assert np.all(cx[np.array(cats) == "code"] == LEVELS["high"])
    p = cx[np.array(cats) == "prose"]
    assert p.min() >= 0.1 and p.max() <= 0.3
    over = apply_transforms(df, {"categories": {**spec, "overwrite": True}}, seed=0)
    assert over["category"].tolist()[:10] != ["code"] * 10
    assert to_requests(out)[0].complexity == pytest.approx(0.8)
    for bad, match in (({"mixx": {}}, r"categories\.mixx: unknown value"),
                       ({"mix": {"a": -1}}, r"weights must be >= 0"),
                       ({"complexity": {"a": 2}}, r"categories\.complexity\.a: a number in")):
        with pytest.raises(ConfigError, match=match):
            apply_transforms(df, {"categories": bad}, seed=0)


def test_accuracy_tables_fill_expected_outcomes():
    table = read_accuracy(ROOT / "routers" / "data" / "llama31_category_accuracy.yaml")
    assert lookup(table, "llama3.1-8b", "code") == pytest.approx(0.726)
    assert lookup(table, "llama3.1-8b", "poetry") == pytest.approx(0.730)  # default row
    assert lookup(table, "gpt-5", "code") is None
    csv = read_accuracy(ROOT / "routers" / "data" / "routellm_category_accuracy.csv")
    assert csv["gpt4-class"]["abstract_algebra"] == pytest.approx(0.46)
    df = _frame(2)
    df["category"] = pd.Series(["code", None], dtype=object)
    out = apply_transforms(df, {"accuracy": str(ROOT / "routers" / "data" /
                                                "llama31_category_accuracy.yaml")}, seed=0)
    assert out["outcomes"][0] == {"llama3.1-70b": 0.805, "llama3.1-8b": 0.726}
    assert out["outcomes"][1] == {"llama3.1-70b": 0.86, "llama3.1-8b": 0.73}


def test_shipped_routing_workloads():
    rl = load_workload("routellm-mmlu-gsm8k")
    assert len(rl) == 15361 and rl["outcomes"].notna().all()
    assert sum(o["gpt4-class"] for o in rl["outcomes"]) / len(rl) == pytest.approx(
        12445 / 15361)
    sr = load_workload("semantic-router-sample")
    raw = pd.read_json(ROOT / "workloads" / "traces" / "semantic_router_decisions_sample.jsonl",
                       lines=True).sort_values("timestamp", kind="stable")
    assert sr["complexity"].tolist() == [LEVELS[c] for c in raw["complexity"]]
    assert sr["category"].tolist() == raw["category"].tolist()
    reqs = to_requests(sr)
    assert reqs[0].outcomes and not math.isnan(reqs[0].complexity)
    az = build_workload({"source": {"kind": "azure", "path": "traces/azure_conv_2023.csv"},
                         "max_requests": 100, "categories": {"mix": {"x": 1}}}, seed=0)
    assert set(az["category"]) == {"x"} and "complexity" not in az.columns
