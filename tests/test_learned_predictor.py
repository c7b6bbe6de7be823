"""The learned quality predictor (wrpsim.router.learned, predictor kind: learned): the fit in
closed form, the shipped model file and its measured test accuracy, the test-split workload,
routing between the best single model and the oracle, no ground truth, one-line config errors."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

import wrpsim.router.predict as predict_mod
from tests.conftest import compose_cfg
from wrpsim.errors import ConfigError
from wrpsim.metrics.quality import quality_summary
from wrpsim.router.learned import LearnedModel, auc, fit
from wrpsim.router.predict import QualityPredictor
from wrpsim.router.requestview import RequestView
from wrpsim.sim import Simulation
from wrpsim.workload import load_workload
from wrpsim.workload.outcomes import join_outcomes

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "routers" / "data" / "llmrouter_predictor.json"
SPEC = {"kind": "learned", "model": "data/llmrouter_predictor.json"}
TEST_RUN = ("workload=llmrouter-14-tasks-test", "pool=six-model-llmrouter")


def _fitter():
    path = ROOT / "routers" / "studies" / "fit_learned_predictor.py"
    spec = importlib.util.spec_from_file_location("fit_learned_predictor", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_fit_is_the_smoothed_means_in_closed_form():
    cats = ["a", "a", "a", "a", "b", "b"]
    toks = [10, 20, 30, 40, 5, 5]
    raw = fit(cats, toks, {"m": [1, 0, 1, 1, 0, 0]}, buckets=2, smoothing=2.0)
    assert raw["global"] == {"m": 0.5}
    a, b = raw["categories"]["a"], raw["categories"]["b"]
    assert a["edges"] == [25.0] and b["edges"] == [5.0]
    assert a["mean"]["m"] == pytest.approx((3 + 2 * 0.5) / (4 + 2))
    pa_ = 4 / 6
    assert a["cells"]["m"] == pytest.approx([(1 + 2 * pa_) / 4, (2 + 2 * pa_) / 4])
    assert b["mean"]["m"] == pytest.approx(0.25)
    assert b["cells"]["m"] == pytest.approx([0.25, (0 + 2 * 0.25) / 4])  # empty bucket: p(m|c)
    lm = LearnedModel(json.loads(json.dumps(raw)))
    assert lm.predict("m", "a", 24) == pytest.approx((1 + 2 * pa_) / 4)
    assert lm.predict("m", "a", 25) == pytest.approx((2 + 2 * pa_) / 4)  # an edge opens a bucket
    assert lm.predict("m", "zzz", 25) == 0.5 and lm.predict("other", "a", 25, 0.3) == 0.3
    assert auc([0.9, 0.1, 0.5, 0.5], [1, 0, 1, 0]) == pytest.approx(0.875)


def test_shipped_model_is_the_train_fit_and_its_recorded_test_accuracy_is_recomputed():
    shipped = json.loads(MODEL.read_text())
    assert MODEL.stat().st_size < 50_000
    assert _fitter().build() == shipped  # regenerating gives the same file
    assert shipped["fitted_on"]["split"] == "train" and shipped["fitted_on"]["rows"] == 5602
    # independent recomputation on the 500 test rows of the shipped CSV
    df = pd.read_csv(ROOT / "routers" / "data" / "llmrouter_outcomes_9models.csv")
    test = df[df["split"] == "test"]
    toks = (np.ceil(test["prompt_chars"] / 4.0) + 40).to_numpy()
    lm = LearnedModel(shipped)
    cols = shipped["fitted_on"]["models"]
    preds = {m: np.array([lm.predict(m, c, t) for c, t in zip(test["category"], toks)])
             for m in cols}
    ys = {m: test[c].to_numpy() for m, c in cols.items()}
    rec = shipped["test"]
    assert rec["rows"] == len(test) == 500
    for m in cols:
        assert rec["brier"][m] == pytest.approx(((preds[m] - ys[m]) ** 2).mean(), abs=5e-5)
        assert 0.6 < rec["auc"][m] < 1.0
    names = list(cols)
    pick = np.column_stack([preds[m] for m in names]).argmax(axis=1)
    y = np.column_stack([ys[m] for m in names])
    got = y[np.arange(len(y)), pick].mean()
    r = rec["routing"]
    assert r["predicted_best_quality"] == pytest.approx(got, abs=5e-5)
    assert r["oracle_quality"] == pytest.approx(y.max(axis=1).mean(), abs=5e-5)
    assert r["best_single_quality"] == pytest.approx(y.mean(axis=0).max(), abs=5e-5)
    assert r["best_single_quality"] < r["predicted_best_quality"] < r["oracle_quality"]


def test_test_split_workload_replays_only_the_test_rows():
    df = load_workload("llmrouter-14-tasks-test")
    src = pd.read_csv(ROOT / "routers" / "data" / "llmrouter_outcomes_9models.csv")
    test = src[src["split"] == "test"]
    assert len(df) == 500
    assert sorted(df["category"]) == sorted(test["category"])
    assert sorted(df["prompt_tokens"]) == sorted(np.ceil(test["prompt_chars"] / 4).astype(int)
                                                 + 40)
    assert np.mean([o["gemma-2-9b"] for o in df["outcomes"]]) == pytest.approx(
        test["correct_gemma2_9b"].mean(), abs=1e-12)


def _quality(*overrides):
    sim = Simulation(compose_cfg(*TEST_RUN, *overrides))
    req, inst, end = sim.run()
    return sim, quality_summary(req, inst, sim.trace, sim.fleet.specs, sim.pue, end)


def test_learned_utility_lies_between_the_best_single_model_and_the_oracle(monkeypatch):
    def no_truth(_):
        raise AssertionError("the learned predictor read the ground truth")

    monkeypatch.setattr(predict_mod, "ground_truth", no_truth)
    sim, learned = _quality("router=learned-utility")
    monkeypatch.undo()
    _, oracle = _quality("router=oracle")
    outcomes = list(sim.trace["outcomes"])
    best_single = max(np.mean([o[m] for o in outcomes]) for m in outcomes[0])
    assert learned["quality_requests"] == oracle["quality_requests"] == 500
    assert best_single < learned["quality"] < oracle["quality"]
    rec = json.loads(MODEL.read_text())["test"]["routing"]
    # at the shipped λ the router picks the predicted-best model: the file's measurement
    assert learned["quality"] == pytest.approx(rec["predicted_best_quality"], abs=5e-5)
    assert oracle["quality"] == pytest.approx(rec["oracle_quality"], abs=5e-5)


def test_learned_predictor_reads_only_the_view():
    p = QualityPredictor(SPEC)
    req = SimpleNamespace(prompt_tokens=120, outcomes={"gemma-2-9b": 1.0})
    view = RequestView(req)
    with pytest.raises(AttributeError):
        view.outcomes  # noqa: B018  (the view hides it; the predictor must not need it)
    got = p.predict(view, "gemma-2-9b", "mmlu", None)
    req.outcomes = {"gemma-2-9b": 0.0}
    assert p.predict(view, "gemma-2-9b", "mmlu", None) == got  # the outcome changes nothing
    assert p.predict(view, "not-in-file", "mmlu", None) == 0.5


@pytest.mark.parametrize("spec, message", [
    ({"kind": "learned", "model": "data/nope.json"}, r"router\.predictor\.model: file not found"),
    ({"kind": "learned"}, r"router\.predictor\.model: a file path is required"),
    ({"kind": "learnt", "model": "x"}, r"router\.predictor\.kind"),
    ({**SPEC, "skill": 0.5}, r"router\.predictor\.skill must be 0 with kind: learned"),
    ({"kind": "model", "model": "data/llmrouter_predictor.json"},
     r"router\.predictor\.model is read only with kind: learned"),
    ({"kind": "learned", "model": "data/llmrouter_category_accuracy.csv"},
     "cannot read a learned quality model"),
])
def test_bad_predictor_configs_are_one_line(spec, message):
    with pytest.raises(ConfigError, match=message) as e:
        QualityPredictor(spec)
    assert "\n" not in str(e.value)


def test_bad_split_is_one_line():
    spec = {"path": "llmrouter_outcomes_9models.csv", "models": {"gemma2_9b": "gemma-2-9b"},
            "split": "dev"}
    df = pd.DataFrame({"arrival_s": [0.0], "prompt_tokens": [1], "output_tokens": [1]})
    with pytest.raises(ConfigError, match=r"outcomes\.split.*test.*train") as e:
        join_outcomes(df, spec, np.random.default_rng(0), ROOT / "routers" / "data")
    assert "\n" not in str(e.value)


def test_a_predictor_that_names_none_of_the_served_models_is_warned_about():
    """learned-utility on the RouteLLM two-model fleet predicted 0.5 for both models on every
    request (its file names six other models) and chose on cost alone, without a word."""
    import warnings

    from wrpsim.errors import WrpsimWarning

    def warned(spec, models):
        with warnings.catch_warnings(record=True) as got:
            warnings.simplefilter("always")
            q = QualityPredictor(spec)
            q.check(SimpleNamespace(kind="scrape", models=models))
            q.warn_unnamed(models)
        return [str(w.message) for w in got if issubclass(w.category, WrpsimWarning)]

    learned = {"kind": "learned", "model": "data/llmrouter_predictor.json"}
    (msg,) = warned(learned, ["mixtral-8x7b", "gpt4-class"])
    assert msg.startswith("router.predictor.model names none of the served models "
                          "(mixtral-8x7b, gpt4-class; it names ")
    assert "router.predictor.default (0.5)" in msg
    assert not warned(learned, ["llama3.1-8b", "gpt4-class"])  # one named: no warning
    table = {"table": "data/llmrouter_category_accuracy.csv"}
    (msg,) = warned(table, ["mixtral-8x7b", "gpt4-class"])
    assert msg.startswith("router.predictor.table names none of the served models")
    assert not warned(table, ["qwen2.5-7b", "gpt4-class"])
    assert not warned({}, ["mixtral-8x7b", "gpt4-class"])
    assert not warned(table, ["llama3.1-70b"])  # one model served: there is no choice
