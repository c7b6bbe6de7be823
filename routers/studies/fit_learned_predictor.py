"""Fit the learned quality predictor on the LLMRouter train split; measure it on the test split.

Usage: `python routers/studies/fit_learned_predictor.py [--buckets 3] [--smoothing 10]
[--out routers/data/llmrouter_predictor.json]`

Reads `routers/data/llmrouter_outcomes_9models.csv` and the routed models and prompt-token rule
of `workloads/llmrouter-14-tasks.yaml` (prompt tokens = ceil(prompt_chars / chars_per_token) +
prompt_overhead_tokens, the tokens the router sees in a run). Fits, on the `train` rows only,
the per-(category, prompt-length bucket) smoothed means of `wrpsim.router.learned` for the six
routed models (named by their catalog names) and, as the baseline, the same fit with one bucket
(the category alone). Measures both on the 500 `test` rows (`wrpsim.router.learned.evaluate`:
per-model Brier score and AUC; the mean score of the predicted-best model against the best
single model and the oracle), records the measurement in the model file (`test`,
`test_category_only`) and prints it as JSON. The predictor's accuracy is thus a measured
property of the file, not a knob. Deterministic; < 2 s.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from wrpsim.router.learned import LearnedModel, evaluate, fit

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "routers" / "data" / "llmrouter_outcomes_9models.csv"
WORKLOAD = ROOT / "workloads" / "llmrouter-14-tasks.yaml"


def load(path: Path = DATA, workload: Path = WORKLOAD):
    """The outcomes file with `prompt_tokens` added, and {file key: catalog model}."""
    spec = yaml.safe_load(workload.read_text(encoding="utf-8"))["outcomes"]
    df = pd.read_csv(path)
    ratio = float(spec.get("chars_per_token", 4.0))
    overhead = int(spec.get("prompt_overhead_tokens", 0))
    df["prompt_tokens"] = (np.ceil(df["prompt_chars"] / ratio) + overhead).clip(1).astype(int)
    return df, dict(spec["models"]), {"chars_per_token": ratio,
                                      "prompt_overhead_tokens": overhead}


def split_rows(df: pd.DataFrame, models: dict, split: str):
    """(categories, prompt tokens, {model: scores}) of one split."""
    part = df[df["split"] == split]
    return (part["category"].astype(str).tolist(), part["prompt_tokens"].tolist(),
            {m: part[f"correct_{k}"].to_numpy(dtype=float) for k, m in models.items()})


def build(buckets: int = 3, smoothing: float = 10.0, path: Path = DATA,
          workload: Path = WORKLOAD) -> dict:
    """The model file's contents: the fit on `train` and its measurement on `test`."""
    df, models, rule = load(path, workload)
    train, test = split_rows(df, models, "train"), split_rows(df, models, "test")
    raw = fit(*train, buckets=buckets, smoothing=smoothing)
    base = fit(*train, buckets=1, smoothing=smoothing)
    raw["fitted_on"] = {"file": "routers/data/llmrouter_outcomes_9models.csv", "split": "train",
                        "rows": len(train[0]), "prompt_tokens": rule,
                        "models": {m: f"correct_{k}" for k, m in models.items()}}
    raw["test"] = evaluate(LearnedModel(raw), *test)
    raw["test_category_only"] = evaluate(LearnedModel(base), *test)
    return raw


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--buckets", type=int, default=3)
    ap.add_argument("--smoothing", type=float, default=10.0)
    ap.add_argument("--out", default=str(ROOT / "routers" / "data" / "llmrouter_predictor.json"))
    a = ap.parse_args()
    raw = build(a.buckets, a.smoothing)
    Path(a.out).write_text(json.dumps(raw, indent=1) + "\n", encoding="utf-8")
    print(json.dumps({"test": raw["test"], "test_category_only": raw["test_category_only"]},
                     indent=1))


if __name__ == "__main__":
    main()
