"""Build `llmrouter_outcomes_9models.csv` and `llmrouter_category_accuracy.csv` from LLMRouter.

Source: github.com/ulab-uiuc/LLMRouter (MIT licence, © 2024 U Lab @UIUC), commit
4e7a796942ce26e9d5f2b93191c7c2585c99c2e3, files

- `data/dcrouter_preprocessed/train.json`, `test.json`: per query, the score of each of nine
  LLMs ({"question": text, "scores": {model: score}}); scores are 1/0 (exact match of a choice
  letter, GSM8K/MATH answer checks, code tests passed) except Natural Questions / TriviaQA (token
  F1) and CommonGen (concept coverage), which lie in [0, 1];
- `data/example_data/query_data/default_query_train.jsonl`, `default_query_test.jsonl`: the same
  queries with `task_name` (the benchmark), `metric` and `choices`.

Run by hand, never at test time (it reads a local mirror of the repository, not the network)::

    python routers/data/make_llmrouter_outcomes.py --git-dir /path/to/LLMRouter/.git

What is transformed:

- each score row is joined to its query record on the exact question text, which gives the
  benchmark; the 6 question texts that the query files list under two benchmarks (MMLU and
  ARC / OpenBookQA) are dropped, since the source's aggregation by text merged their scores;
- the question text itself is not shipped: `prompt_chars` = characters of the question plus its
  answer choices (MMLU, GPQA, CommonsenseQA, OpenBookQA, ARC, logic grid) or MBPP test asserts,
  each choice counted with a 4-character label ("(A) ", "A. "), joined by newlines; the task
  instructions of the source's prompt templates (≈ 60–280 characters) are not counted (the
  workload adds them as `prompt_overhead_tokens`);
- scores are rounded to 4 decimals; `category` = `benchmark` = the source's `task_name`;
  `split` = the source's train / test file; rows keep the source's order.

The accuracy table is the mean score per (benchmark, model) over the shipped rows, columns named
by the wrpsim catalog models of `workloads/llmrouter-14-tasks.yaml` (the predictors' prior).
"""

from __future__ import annotations

import argparse
import ast
import json
import subprocess
from collections import defaultdict
from pathlib import Path

import pandas as pd

COMMIT = "4e7a796942ce26e9d5f2b93191c7c2585c99c2e3"
SCORES = {"train": "data/dcrouter_preprocessed/train.json",
          "test": "data/dcrouter_preprocessed/test.json"}
QUERIES = ["data/example_data/query_data/default_query_train.jsonl",
           "data/example_data/query_data/default_query_test.jsonl"]
# source model name -> file column key (correct_<key>)
KEYS = {
    "qwen2.5-7b-instruct": "qwen25_7b",
    "llama-3.1-8b-instruct": "llama31_8b",
    "mistral-7b-instruct-v0.3": "mistral_7b",
    "gemma-2-9b-it": "gemma2_9b",
    "codegemma-7b": "codegemma_7b",
    "llama3-chatqa-1.5-8b": "chatqa15_8b",
    "llama3-chatqa-1.5-70b": "chatqa15_70b",
    "llama-3.1-nemotron-51b-instruct": "nemotron_51b",
    "llama-3.3-nemotron-super-49b-v1": "nemotron_super_49b",
}
# file column key -> catalog model of the routing workload (the accuracy table's columns)
CATALOG = {"llama31_8b": "llama3.1-8b", "qwen25_7b": "qwen2.5-7b", "mistral_7b": "mistral-7b-v0.3",
           "gemma2_9b": "gemma-2-9b", "codegemma_7b": "codegemma-7b",
           "nemotron_51b": "nemotron-51b-class"}
LABEL_CHARS = 4  # "(A) " / "A. " before each choice


def _show(git_dir: Path, path: str) -> str:
    return subprocess.run(["git", "--git-dir", str(git_dir), "show", f"{COMMIT}:{path}"],
                          check=True, capture_output=True, text=True).stdout


def _choice_texts(choices) -> list[str]:
    if choices is None:
        return []
    if isinstance(choices, str):
        try:
            choices = ast.literal_eval(choices)
        except (ValueError, SyntaxError):
            return [choices]
    if isinstance(choices, dict):
        return [str(t) for t in choices.get("text", [])]
    return [str(t) for t in choices]


def prompt_chars(query: str, choices) -> int:
    texts = _choice_texts(choices)
    return len(query) + sum(1 + LABEL_CHARS + len(t) for t in texts)


def build(git_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    by_text: dict[str, list[dict]] = defaultdict(list)
    for path in QUERIES:
        for line in _show(git_dir, path).split("\n"):
            if line.strip():
                rec = json.loads(line)
                by_text[rec["query"]].append(rec)
    rows, dropped = [], 0
    for split, path in SCORES.items():
        for item in json.loads(_show(git_dir, path)):
            recs = by_text[item["question"]]
            tasks = {r["task_name"] for r in recs}
            if len(tasks) != 1:
                dropped += 1
                continue
            rec = recs[0]
            row = {"benchmark": rec["task_name"], "category": rec["task_name"], "split": split,
                   "metric": rec["metric"],
                   "prompt_chars": prompt_chars(item["question"], rec.get("choices"))}
            if set(item["scores"]) != set(KEYS):
                raise ValueError(f"unexpected models {sorted(item['scores'])}")
            for model, key in KEYS.items():
                row[f"correct_{key}"] = round(float(item["scores"][model]), 4)
            rows.append(row)
    df = pd.DataFrame(rows)
    df.insert(0, "prompt_id", range(len(df)))
    print(f"{len(df)} rows, {dropped} dropped (question text under two benchmarks)")
    acc = df.groupby("category")[[f"correct_{k}" for k in CATALOG]].mean().round(4)
    acc.columns = [CATALOG[c.removeprefix("correct_")] for c in acc.columns]
    acc.insert(0, "n", df.groupby("category").size())
    return df, acc.reset_index()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--git-dir", type=Path, required=True,
                    help="a clone (or bare mirror) of ulab-uiuc/LLMRouter holding commit " + COMMIT)
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    a = ap.parse_args()
    df, acc = build(a.git_dir)
    df.to_csv(a.out / "llmrouter_outcomes_9models.csv", index=False)
    acc.to_csv(a.out / "llmrouter_category_accuracy.csv", index=False)
    print(df[[c for c in df.columns if c.startswith("correct_")]].mean().round(4).to_string())


if __name__ == "__main__":
    main()
