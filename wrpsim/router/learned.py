"""A learned quality predictor: per-(category, prompt-length bucket) smoothed mean scores.

What a real learned router (GraphRouter, RouterDC, CARROT's quality head) has at decision time
is the request itself, not the answer. This predictor reads only two such features — the
category the router's classifier *sees* and the prompt length in tokens — and is fitted offline
on a training split of per-prompt outcomes (`routers/studies/fit_learned_predictor.py` writes
the JSON model file; its accuracy on a held-out split is measured there and recorded in the
file). Per model m, with g_m the training mean score, k the smoothing strength:

    p(m | c)    = (Σ_{c} y_m + k · g_m)        / (n_c  + k)
    p(m | c, b) = (Σ_{c,b} y_m + k · p(m | c)) / (n_cb + k)

where b is the request's length bucket inside its category: `edges[c]` are the training
prompt-token quantiles 1/B, …, (B−1)/B of category c (duplicates dropped), and b = the number
of edges ≤ the prompt's tokens. An unknown category falls back to g_m; an unknown model to the
predictor's `default`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from wrpsim.errors import ConfigError

FORMAT = "wrpsim-learned-quality/1"


def fit(categories, prompt_tokens, scores: dict[str, Any], buckets: int = 3,
        smoothing: float = 10.0) -> dict:
    """The model (a JSON-ready dict) fitted on the given rows (see the module docstring).

    `scores` maps each model to its per-row score in [0, 1], aligned with `categories` and
    `prompt_tokens`.
    """
    if buckets < 1 or smoothing < 0:
        raise ValueError("buckets must be >= 1 and smoothing >= 0")
    cats = np.asarray([str(c) for c in categories], dtype=object)
    toks = np.asarray(prompt_tokens, dtype=np.float64)
    ys = {m: np.asarray(v, dtype=np.float64) for m, v in scores.items()}
    k = float(smoothing)
    g = {m: float(y.mean()) for m, y in ys.items()}
    out: dict[str, Any] = {"format": FORMAT, "features": ["category", "prompt_tokens"],
                           "buckets": int(buckets), "smoothing": k, "models": list(ys),
                           "global": g, "categories": {}}
    for c in sorted(set(cats)):
        sel = cats == c
        t = toks[sel]
        qs = [float(np.quantile(t, i / buckets)) for i in range(1, buckets)]
        edges = sorted(set(qs))
        b = np.searchsorted(np.asarray(edges), t, side="right")
        entry: dict[str, Any] = {"n": int(sel.sum()), "edges": edges, "mean": {}, "cells": {}}
        for m, y in ys.items():
            yc = y[sel]
            pc = (float(yc.sum()) + k * g[m]) / (len(yc) + k)
            entry["mean"][m] = pc
            entry["cells"][m] = [(float(yc[b == j].sum()) + k * pc) / (int((b == j).sum()) + k)
                                 for j in range(len(edges) + 1)]
        out["categories"][c] = entry
    return out


class LearnedModel:
    """A fitted model file: `predict(model, category, prompt_tokens)`."""

    def __init__(self, raw: dict, source: str = "learned model"):
        if not isinstance(raw, dict) or raw.get("format") != FORMAT:
            raise ConfigError(f"{source}: not a learned quality model (format {FORMAT})")
        self.raw = raw
        self.glob = {str(m): float(v) for m, v in raw["global"].items()}
        self.cats = {str(c): (np.asarray(e["edges"], dtype=np.float64),
                              {str(m): list(map(float, v)) for m, v in e["cells"].items()})
                     for c, e in raw["categories"].items()}

    @classmethod
    def load(cls, path: str | Path) -> LearnedModel:
        path = Path(path)
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise ConfigError(f"{path}: cannot read a learned quality model: {e}") from None
        return cls(raw, str(path))

    def predict(self, model: str, category: str | None, prompt_tokens: float,
                default: float | None = None) -> float | None:
        """Predicted score of `model` on a prompt of `category` and `prompt_tokens` tokens."""
        entry = self.cats.get(category) if category is not None else None
        if entry is None:
            return self.glob.get(model, default)
        edges, cells = entry
        row = cells.get(model)
        if row is None:
            return default
        return row[int(np.searchsorted(edges, prompt_tokens, side="right"))]


def auc(pred, y) -> float | None:
    """P(pred of a positive > pred of a negative), ties counted ½, over rows with y ∈ {0, 1}
    (None without both classes)."""
    pred, y = np.asarray(pred, dtype=np.float64), np.asarray(y, dtype=np.float64)
    pos, neg = pred[y == 1.0], pred[y == 0.0]
    if not len(pos) or not len(neg):
        return None
    d = pos[:, None] - neg[None, :]
    return float(((d > 0).sum() + 0.5 * (d == 0).sum()) / d.size)


def evaluate(model: LearnedModel, categories, prompt_tokens, scores: dict[str, Any]) -> dict:
    """Accuracy of `model` on the given rows: per model the Brier score (mean squared error of
    the predicted score, every row) and the AUC (binary rows); for routing, the mean score of
    the predicted-best model (argmax of the predictions, first listed on ties), how often it is
    a best model of the row, the best single model's mean and the oracle's (row maximum)."""
    names = list(scores)
    ys = np.column_stack([np.asarray(scores[m], dtype=np.float64) for m in names])
    preds = np.asarray([[model.predict(m, str(c), float(t), 0.5) for m in names]
                        for c, t in zip(categories, prompt_tokens)], dtype=np.float64)
    pick = preds.argmax(axis=1)
    got = ys[np.arange(len(ys)), pick]
    best = ys.max(axis=1)
    means = ys.mean(axis=0)
    return {
        "rows": len(ys),
        "brier": {m: round(float(((preds[:, i] - ys[:, i]) ** 2).mean()), 4)
                  for i, m in enumerate(names)},
        "auc": {m: (None if (a := auc(preds[:, i], ys[:, i])) is None else round(a, 4))
                for i, m in enumerate(names)},
        "routing": {
            "predicted_best_quality": round(float(got.mean()), 4),
            "predicted_best_is_a_best_model": round(float((got == best).mean()), 4),
            "best_single_model": names[int(means.argmax())],
            "best_single_quality": round(float(means.max()), 4),
            "oracle_quality": round(float(best.mean()), 4),
            "predicted_best_share": {m: round(float((pick == i).mean()), 4)
                                     for i, m in enumerate(names)},
        },
    }
