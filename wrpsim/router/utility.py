"""Cost–quality utility routing (CARROT).

`UtilityRouter` picks, among its `models`, the one that maximises

    U(m) = q̂(m) − λ · ĉ(m) − μ · ê(m)

where q̂ is the predictor's probability that m answers correctly (`wrpsim.router.predict`),
ĉ the estimated cost of the request on m in USD per 1,000 such requests and ê its estimated
energy in kJ per 1,000 (`wrpsim.router.pricing.PriceBook` at the request's prompt length and its
*predicted* output length — the true one is not known at routing time; `output_predictor:` as
in `wrpsim.router.lengths`). λ = 0 buys the best predicted quality; a large λ the cheapest
model. CARROT estimates both quality and cost per query with learned predictors and sweeps λ to
trace the cost–quality frontier; sweep `router.lam` to do the same here.
"""

from __future__ import annotations

from wrpsim.router.config import number, served
from wrpsim.router.lengths import OutputPredictor
from wrpsim.router.predict import QualityPredictor
from wrpsim.router.selection import ModelRouter


class UtilityRouter(ModelRouter):
    """argmax over models of q̂ − λ·ĉ − μ·ê (see the module docstring)."""

    chooses_models = True

    name = "utility"

    def __init__(self, lam: float = 0.1, mu: float = 0.0, models=None, predictor=None,
                 output_predictor=None, **common):
        super().__init__(**common)
        self.lam = number("lam", lam, 0.0)
        self.mu = number("mu", mu, 0.0)
        self.models = models
        self.predictor = QualityPredictor(predictor)
        self.lengths = OutputPredictor(output_predictor)

    def bind(self, fleet, rng):
        """Validate the candidate models."""
        super().bind(fleet, rng)
        self._models = served("models", self.models, fleet)
        self._prices = [self.book.models[m] for m in self._models]
        self.predictor.warn_unnamed(self._models)

    def select(self, request, view, category, complexity):
        """The model of highest utility (first listed on ties)."""
        out = self.lengths.predict(request, category, self.rng)
        p, best, best_u = request.prompt_tokens, None, None
        for m, tp in zip(self._models, self._prices):
            u = (self.predictor.predict(request, m, category, self.rng)
                 - self.lam * 1000.0 * tp.cost(p, out) - self.mu * tp.energy(p, out))
            if best_u is None or u > best_u:
                best, best_u = m, u
        return best, None, best, best_u
