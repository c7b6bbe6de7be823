"""Predicted answer quality: what a learned router (RouteLLM, CARROT) believes before routing.

`QualityPredictor.predict(request, model, category)` is the predicted probability that `model`
answers `request` correctly:

    logit q̂ = logit(prior(model, category)) + skill · (2·y − 1) + ε,   ε ~ N(0, noise_sd²)

- `prior` is the per-(model, category) accuracy of a table (`table:`, the formats of
  `wrpsim.workload.outcomes.read_accuracy`; category = the one the router *sees*), else
  `default` — a category-level predictor learned from data, with no per-prompt knowledge;
- `y` is the request's replayed correctness on `model` (`request.outcomes`), so `skill > 0`
  models a per-prompt predictor whose scores lean towards the truth (skill 0: category only;
  larger: better ranking); unknown `y` adds nothing;
- `ε` (drawn from the router's stream, one per (request, model)) is its error.

RouteLLM's predicted *win rate* of a strong model S over a weak model W, with ties split evenly
and the two answers independent, is P(S right, W wrong) + ½·P(tie) = ½ + ½·(q̂_S − q̂_W)
(`win_rate`).

`kind: oracle` (default `model`, the noisy predictor above) predicts the replayed outcome itself
(the prior where the request has none): the ground truth no real router has before the answer
exists, so — like the oracle output-length predictor (`wrpsim.router.lengths`) — it is allowed
only with `router.view.kind: oracle`, the labelled upper-bound view (`check`). RouterBench's
oracle router (`wrpsim.router.routerbench.OracleRouter`) reads the outcomes through it.

`kind: learned` with `model: <file>` (relative to `routers/`) predicts from a model fitted
offline on a training split (`wrpsim.router.learned`: per-(category seen, prompt-length bucket)
smoothed mean scores; `routers/studies/fit_learned_predictor.py` fits it and records its
accuracy on the held-out split in the file). It reads only the category the router sees and
`request.prompt_tokens` — never the replayed outcome — so `skill` must be 0 and `table` is not
read; `noise_sd` still adds logit noise; `default` answers for a model the file does not name.
"""

from __future__ import annotations

import math
from typing import Any

from wrpsim.errors import ConfigError, check_keys, unknown_choice, warn
from wrpsim.router.config import number, plain, router_path
from wrpsim.router.learned import LearnedModel
from wrpsim.router.requestview import ground_truth
from wrpsim.workload.outcomes import lookup, read_accuracy

KEYS = ("kind", "table", "skill", "noise_sd", "default", "model")
KINDS = ("model", "oracle", "learned")


def _logit(p: float) -> float:
    p = min(max(p, 1e-4), 1 - 1e-4)
    return math.log(p / (1 - p))


class QualityPredictor:
    """Predicted P(correct) per (request, model) (see the module docstring)."""

    def __init__(self, spec: Any = None):
        spec = plain(spec) or {}
        if not isinstance(spec, dict):
            raise ConfigError(f"router.predictor must be a mapping, got {spec!r}")
        check_keys(spec, KEYS, "router.predictor")
        self.kind = spec.get("kind", "model")
        if self.kind not in KINDS:
            raise unknown_choice("router.predictor.kind", self.kind, KINDS)
        t = spec.get("table")
        self.table = read_accuracy(router_path("predictor.table", t)) if t else {}
        # (logit-scale: an infinite skill or noise makes the predicted score NaN or 0 / 1)
        self.skill = number("predictor.skill", spec.get("skill", 0.0), 0.0, finite=True)
        self.noise = number("predictor.noise_sd", spec.get("noise_sd", 0.0), 0.0, finite=True)
        self.default = number("predictor.default", spec.get("default", 0.5), 0.0, 1.0)
        self._prior: dict[tuple, float] = {}
        self.learned = None
        if self.kind == "learned":
            if self.skill:
                raise ConfigError("router.predictor.skill must be 0 with kind: learned (skill "
                                  "leans on the replayed outcome, which a learned model has not)")
            self.learned = LearnedModel.load(router_path("predictor.model", spec.get("model")))
        elif spec.get("model") is not None:
            raise ConfigError(f"router.predictor.model is read only with kind: learned (kind: "
                              f"{self.kind})")

    def prior(self, model: str, category: str | None) -> float:
        """Table accuracy of `model` on `category` (else `default`)."""
        key = (model, category)
        p = self._prior.get(key)
        if p is None:
            p = lookup(self.table, model, category, self.default)
            self._prior[key] = p
        return p

    def check(self, view) -> None:
        """The oracle needs the oracle view: else `ConfigError` naming both fields."""
        if self.kind == "oracle" and view.kind != "oracle":
            raise ConfigError("router.predictor.kind: oracle needs router.view.kind: oracle (an "
                              f"upper-bound study); with router.view.kind: {view.kind} use "
                              "kind: model")

    def warn_unnamed(self, models) -> None:
        """Warn when the table or learned model names none of `models` (two or more: the
        choice a router whose choice rests on q̂ makes among them), every one of which would
        be predicted `default` on every request: quality would play no part in the choice."""
        field, known = (("model", self.learned.glob) if self.learned is not None else
                        ("table", self.table))
        served = list(models or ())
        if known and len(served) > 1 and not any(m in known for m in served):
            warn(f"router.predictor.{field} names none of the served models "
                 f"({', '.join(served)}; it names {', '.join(sorted(known))}): each is "
                 f"predicted router.predictor.default ({self.default:g}) for every request, so "
                 f"predicted quality plays no part in the choice")

    def replayed(self, request) -> bool:
        """True when `request` carries replayed per-model outcomes (what the oracle reads; the
        oracle router refuses a workload without them)."""
        return bool(ground_truth(request).outcomes)

    def predict(self, request, model: str, category: str | None, rng) -> float:
        """Predicted probability that `model` answers `request` correctly."""
        if self.kind == "oracle":
            o = ground_truth(request).outcomes  # the upper bound: the replayed outcome itself
            y = o.get(model) if o else None
            return self.prior(model, category) if y is None else float(y)
        if self.learned is not None:  # features the router has: category seen, prompt length
            p = self.learned.predict(model, category, request.prompt_tokens, self.default)
            if not self.noise:
                return p
            z = _logit(p)
        else:
            z = _logit(self.prior(model, category))
        if self.skill:
            o = ground_truth(request).outcomes  # the modelled predictor's skill leans on it
            y = o.get(model) if o else None
            if y is not None:
                z += self.skill * (2.0 * y - 1.0)
        if self.noise:
            z += self.noise * float(rng.standard_normal())
        if z < -700.0:  # (exp(-z) would overflow: a large skill on a wrong answer; ~e^z)
            return math.exp(z)
        return 1.0 / (1.0 + math.exp(-z))


def win_rate(q_strong: float, q_weak: float) -> float:
    """Predicted win rate of the strong model, ties split: ½ + ½·(q_S − q_W)."""
    return 0.5 + 0.5 * (q_strong - q_weak)
