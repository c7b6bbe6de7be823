"""RouterBench's two reference routers (Hu et al. 2024): the oracle and the zero router.

**Oracle** (`OracleRouter`, `routers/oracle.yaml`): each request goes to the cheapest model
that answers it correctly; when no model does, to the cheapest model. "Cheapest" is the
request's estimated cost on each model (`PriceBook` at its prompt length and its *true* output
length: the token-priced cost axis of `wrpsim.metrics.quality`), ties by price order then name.
With expected accuracies instead of replayed 1/0 outcomes it takes the cheapest model of the
highest expected correctness. No router can do better: at its quality none is cheaper (on the
token-priced axis), and none is of higher quality at all. It is an upper bound, not a policy —
it reads the ground truth (per-model outcomes, answer length) that a real router cannot know
before the answer exists — so it reads it only through the oracle kinds of the predictors
(`router.predictor.kind: oracle`, `router.output_predictor.kind: oracle`), which are allowed
only with the labelled upper-bound view `router.view.kind: oracle` (its YAML sets it; bind
refuses any other view). `summary.json` says so: `router_view` ("oracle (upper bound: …)") and
`router_oracle` (what ground truth the router read), and the run summary prints an `oracle`
line.

**Zero router** (`ZeroRouter`, `routers/zero.yaml`): the non-predictive baseline. Each request
goes to model i with probability p_i (`p: {model: weight}`, the weights >= 0 summing to 1; or
`strong_share: s` on a two-model fleet: the dearest model with probability s; neither: uniform
over the served models), one uniform draw per request from the router's stream. Its expected
point on the cost–quality plane is the p-weighted mean of the single models' points; over all
p those mixtures fill the convex hull of the single-model points, whose upper, non-decreasing
boundary is the zero router's curve (`wrpsim.report.aiq.zero_curve`). A router worth deploying
lies above it (a higher AIQ).

Both place the request on the least outstanding instance of the chosen model, like every
model-selecting router (`wrpsim.router.selection`).
"""

from __future__ import annotations

import math

from wrpsim.errors import ConfigError, unknown_choice
from wrpsim.errors import number as finite_number
from wrpsim.router.config import number, plain, served
from wrpsim.router.lengths import OutputPredictor
from wrpsim.router.predict import QualityPredictor
from wrpsim.router.selection import ModelRouter


class OracleRouter(ModelRouter):
    """The cheapest correct model per request (upper bound; see the module docstring)."""

    chooses_models = True

    name = "oracle"

    def __init__(self, models=None, **common):
        super().__init__(**common)
        self.models = models
        self.predictor = QualityPredictor({"kind": "oracle"})
        self.lengths = OutputPredictor({"kind": "oracle"})

    def bind(self, fleet, rng):
        """Refuse any view but the oracle view; resolve the candidate models."""
        if fleet.kind != "oracle":
            raise ConfigError(
                "router.view.kind: the oracle router reads each request's per-model outcomes "
                "and answer length, so it needs router.view.kind: oracle (a labelled upper-bound "
                f"study), got {fleet.kind}")
        super().bind(fleet, rng)
        self._models = served("models", self.models, fleet)
        order = {m: i for i, m in enumerate(self.book.by_cost(self._models))}
        self._prices = [(order[m], m, self.book.models[m]) for m in self._models]
        self.routed = {"correct": 0, "none_correct": 0, "expected": 0}

    def select(self, request, view, category, complexity):
        """Highest outcome, then lowest estimated cost, then price order. A request without
        replayed outcomes stops the run (`ConfigError`): the oracle would route on the category
        prior and still call itself an upper bound."""
        if not self.predictor.replayed(request):
            raise ConfigError("router=oracle needs a workload that replays per-model outcomes "
                              "(workload.outcomes, e.g. workload=routellm-mmlu-gsm8k); request "
                              f"{request.id} has none")
        out = self.lengths.predict(request, category, self.rng)
        p = request.prompt_tokens
        best, best_key = None, None
        for rank, m, tp in self._prices:
            y = self.predictor.predict(request, m, category, self.rng)
            key = (-y, tp.cost(p, out), rank)
            if best_key is None or key < best_key:
                best, best_key = m, key
        y = -best_key[0]
        label = "correct" if y >= 1.0 else ("none_correct" if y <= 0.0 else "expected")
        self.routed[label] += 1
        return best, None, label, y


def mixture(field: str, p, strong_share, fleet, book) -> dict[str, float]:
    """The zero router's weights {model: p_i} (served models only, in the fleet's order)."""
    p = plain(p)
    if p is not None and strong_share is not None:
        raise ConfigError(f"router.{field}: give p or strong_share, not both")
    models = list(fleet.models)
    if strong_share is not None:
        s = number("strong_share", strong_share, 0.0, 1.0)
        if len(models) != 2:
            raise ConfigError(f"router.strong_share needs a fleet serving two models; it serves "
                              f"{len(models)} ({', '.join(models)}): give router.p instead")
        weak, strong = book.by_cost(models)
        return {weak: 1.0 - s, strong: s}
    if p is None:
        return {m: 1.0 / len(models) for m in models}
    if not isinstance(p, dict) or not p:
        raise ConfigError(f"router.{field} must be a mapping {{model: weight}} over the served "
                          f"models ({', '.join(sorted(models))}), got {p!r}")
    weights = {}
    for m, w in p.items():
        if m not in models:
            raise unknown_choice(f"router.{field}", m, models)
        weights[str(m)] = finite_number(f"router.{field}.{m}", w, 0.0, finite=True)
    total = math.fsum(weights.values())
    if abs(total - 1.0) > 1e-9:
        raise ConfigError(f"router.{field} must sum to 1, got {total:g} "
                          f"({', '.join(f'{m}: {w:g}' for m, w in weights.items())})")
    return {m: weights.get(m, 0.0) for m in models}


class ZeroRouter(ModelRouter):
    """Model i with probability p_i, whatever the request (see the module docstring)."""

    chooses_models = True

    name = "zero"

    def __init__(self, p=None, strong_share: float | None = None, **common):
        super().__init__(**common)
        self.p, self.strong_share = plain(p), strong_share
        if strong_share is not None:
            number("strong_share", strong_share, 0.0, 1.0)

    def bind(self, fleet, rng):
        """Validate the weights against the served models."""
        super().bind(fleet, rng)
        self.weights = mixture("p", self.p, self.strong_share, fleet, self.book)
        acc, self._cdf = 0.0, []
        for m, w in self.weights.items():
            if w > 0.0:
                acc += w
                self._cdf.append((acc, m))
        self.routed = dict.fromkeys(self.weights, 0)

    def select(self, request, view, category, complexity):
        """One uniform draw u; the first model whose cumulative weight exceeds u."""
        u = float(self.rng.random())
        cdf = self._cdf
        model = cdf[-1][1]
        for acc, m in cdf:
            if u < acc:
                model = m
                break
        self.routed[model] += 1
        return model, None, model, self.weights[model]
