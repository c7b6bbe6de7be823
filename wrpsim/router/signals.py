"""The router's own reading of a request: a category classifier with errors, complexity noise.

A real semantic router classifies the prompt (a BERT-class model in vLLM Semantic Router) and
gets it wrong some of the time. `Classifier` models that: the category the router *sees* is drawn
from a row of a confusion matrix indexed by the request's true category, and the complexity it
sees is the true one plus Gaussian noise (clipped to [0, 1]). With neither configured the router
sees the truth and draws nothing.

Config (the `classifier:` mapping of a model-selecting router)::

    classifier:
      confusion: data/confusion.yaml   # {true: {seen: probability}} (a path or inline mapping);
                                       # rows are normalised; a missing row = always correct
      accuracy: null                   # or: keep the true category with this probability,
      categories: null                 #   else one of the other `categories`, uniformly
      complexity_noise_sd: 0.0         # sd of the error added to complexity

All draws come from the router's stream, one per request for the category and one for the
complexity (only where configured), so runs are reproducible.
"""

from __future__ import annotations

from bisect import bisect_right
from itertools import accumulate
from typing import Any

from wrpsim.errors import ConfigError, check_keys
from wrpsim.router.config import number, plain, router_path

KEYS = ("confusion", "accuracy", "categories", "complexity_noise_sd")


def _confusion(value: Any) -> dict[str, dict[str, float]]:
    if isinstance(value, (str,)):
        import yaml

        value = yaml.safe_load(router_path("classifier.confusion", value).read_text())
    if not isinstance(value, dict):
        raise ConfigError("router.classifier.confusion must be a mapping {true: {seen: p}} or a "
                          f"YAML file of one, got {value!r}")
    out = {}
    for true, row in value.items():
        if not isinstance(row, dict) or not row:
            raise ConfigError(f"router.classifier.confusion.{true} must be a mapping "
                              f"{{seen: probability}}, got {row!r}")
        for seen, p in row.items():
            number(f"classifier.confusion.{true}.{seen}", p, 0.0)
        total = sum(row.values())
        if total <= 0:
            raise ConfigError(f"router.classifier.confusion.{true}: probabilities sum to 0")
        out[str(true)] = {str(k): float(v) / total for k, v in row.items()}
    return out


class Classifier:
    """Category and complexity as the router sees them (see the module docstring)."""

    def __init__(self, spec: Any = None):
        spec = plain(spec) or {}
        if not isinstance(spec, dict):
            raise ConfigError(f"router.classifier must be a mapping, got {spec!r}")
        check_keys(spec, KEYS, "router.classifier")
        table = _confusion(spec["confusion"]) if spec.get("confusion") is not None else {}
        acc = spec.get("accuracy")
        if acc is not None:
            if table:
                raise ConfigError("router.classifier: give confusion or accuracy, not both")
            acc = number("classifier.accuracy", acc, 0.0, 1.0)
            cats = spec.get("categories")
            if not isinstance(cats, list) or len(cats) < 2:
                raise ConfigError("router.classifier.categories: a list of at least two "
                                  "categories is required with accuracy")
            for c in cats:
                others = [o for o in cats if o != c]
                table[str(c)] = {str(c): acc, **{str(o): (1 - acc) / len(others) for o in others}}
        self.rows = {t: (list(r), list(accumulate(r.values()))) for t, r in table.items()}
        self.noise = number("classifier.complexity_noise_sd",
                            spec.get("complexity_noise_sd", 0.0), 0.0)
        self.exact = not self.rows and self.noise == 0.0

    def observe(self, request, rng) -> tuple[str | None, float | None]:
        """(category, complexity) as the router sees them."""
        cat, cx = request.category, request.complexity
        if self.exact:
            return cat, cx
        row = self.rows.get(cat) if cat is not None else None
        if row is not None:
            labels, cum = row
            cat = labels[min(bisect_right(cum, rng.random() * cum[-1]), len(labels) - 1)]
        if self.noise and cx is not None:
            cx = min(1.0, max(0.0, cx + self.noise * float(rng.standard_normal())))
        return cat, cx
