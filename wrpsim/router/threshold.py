"""Threshold routing between a strong and a weak model (RouteLLM).

`ThresholdRouter` sends a request to the strong model when its predicted win rate
(`wrpsim.router.predict.win_rate` of the predictor's q̂ for both models) is at or above a
threshold τ, else to the weak model. τ is either fixed (`threshold:`) or calibrated online to a
target strong-model share `strong_share` = s* by stochastic approximation:

    τ ← τ + η · (1[routed strong] − s*)        (clipped to [0, 1], η = `step`)

Summing the updates over T requests gives (realised share − s*) = (τ_T − τ_0) / (η·T), so with
scores in [0, 1] the realised share is within 1 / (η·T) of the target whatever the score
distribution (0.7 points for η = 0.01 and T = 15,000) — RouteLLM calibrates τ offline on a
sample for the same purpose; this needs no sample and tracks a drifting mix.

Strong and weak default to the dearest and the cheapest served model (`PriceBook`).
"""

from __future__ import annotations

from wrpsim.errors import ConfigError
from wrpsim.router.config import number, served
from wrpsim.router.predict import QualityPredictor, win_rate
from wrpsim.router.selection import ModelRouter


class ThresholdRouter(ModelRouter):
    """Strong model iff predicted win rate >= τ (see the module docstring)."""

    chooses_models = True

    name = "threshold"

    def __init__(self, strong: str | None = None, weak: str | None = None,
                 threshold: float | None = None, strong_share: float | None = 0.5,
                 step: float = 0.01, initial_threshold: float = 0.5, predictor=None, **common):
        super().__init__(**common)
        self.strong, self.weak = strong, weak
        if threshold is None and strong_share is None:
            raise ConfigError("router: give threshold (fixed) or strong_share (calibrated)")
        self.fixed = threshold is not None
        self.tau = number("threshold", threshold, 0.0, 1.0) if self.fixed else number(
            "initial_threshold", initial_threshold, 0.0, 1.0)
        self.target = None if self.fixed else number("strong_share", strong_share, 0.0, 1.0)
        self.step = number("step", step, 0.0, strict_lo=True)
        self.predictor = QualityPredictor(predictor)

    def bind(self, fleet, rng):
        """Resolve the strong and weak models against the fleet."""
        super().bind(fleet, rng)
        if self.strong is not None:
            served("strong", [self.strong], fleet)
        if self.weak is not None:
            served("weak", [self.weak], fleet)
        order = self.book.by_cost(fleet.models)
        self._strong = self.strong or order[-1]
        self._weak = self.weak or order[0]
        if self._strong == self._weak:
            raise ConfigError(f"router: strong and weak are the same model ({self._strong}); "
                              "the fleet must serve two models")
        self.predictor.warn_unnamed([self._weak, self._strong])
        self.routed = {"strong": 0, "weak": 0}

    def score(self, request, category) -> float:
        """Predicted win rate of the strong model."""
        p = self.predictor
        return win_rate(p.predict(request, self._strong, category, self.rng),
                        p.predict(request, self._weak, category, self.rng))

    def select(self, request, view, category, complexity):
        """Strong iff score >= τ; then move τ towards the target share."""
        w = self.score(request, category)
        strong = w >= self.tau
        if not self.fixed:
            t = self.tau + self.step * ((1.0 if strong else 0.0) - self.target)
            self.tau = 0.0 if t < 0.0 else (1.0 if t > 1.0 else t)
        label = "strong" if strong else "weak"
        self.routed[label] += 1
        return (self._strong if strong else self._weak), None, label, w
