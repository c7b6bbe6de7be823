"""Cascades: try the cheap model first, escalate when its answer fails a check.

`CascadeRouter` sends every new request to the first model of its cascade (`models`, cheapest
first; default: the fleet's models by estimated cost). When an attempt completes, a verifier
(`wrpsim.router.verifier`) judges the answer, on the category the router saw for the request:

- `verifier.kind: oracle-rates` (the default, the cascade's behaviour before verifiers had
  kinds): a wrong answer (by the request's replayed `outcomes`, or a draw at the predictor's
  prior accuracy where the outcome is unknown) is flagged with probability `verifier.tpr`, a
  right one with probability `verifier.fpr` — error rates given, not measured;
- `verifier.kind: confidence`: the answer is flagged when the verifier's confidence — the
  predictor's estimate for the answering model (a learned one: from outcome data), plus an
  optional answer-reading term (`skill`) and noise — is below `verifier.threshold`; its false
  accept and false reject rates are measured against the replayed outcomes (`figures`).

A flagged answer is re-asked of the
next model as a follow-up call (`view.follow_up`, recorded with `parent_id`) after
`verifier.latency_s`; the last model's answer is final. Every attempt is a real request on the
fleet, so the cheap attempt's time, GPU time, energy and cost all count — a cascade can never be
cheaper than its first model alone (it serves every request there, plus the escalations).

Pool-aware abort (`abort_when_saturated: true`): when the first model's pool is saturated — its
least loaded instance has `saturation_outstanding` or more requests, or `saturation_kv` or more
of its KV cache in use — a new request skips the cheap attempt and goes straight to the last
model, instead of queueing behind a backlog for an answer that may be thrown away.
"""

from __future__ import annotations

import math

from wrpsim.errors import ConfigError, boolean
from wrpsim.router.config import number, plain, served
from wrpsim.router.predict import QualityPredictor
from wrpsim.router.selection import ModelRouter, least_outstanding
from wrpsim.router.verifier import Verifier

NAN = math.nan


class CascadeRouter(ModelRouter):
    """Cheap first, escalate on a flagged answer (see the module docstring)."""

    chooses_models = True

    name = "cascade"

    def __init__(self, models=None, verifier=None, abort_when_saturated: bool = False,
                 saturation_outstanding: int = 64, saturation_kv: float = 0.95,
                 predictor=None, **common):
        super().__init__(**common)
        self.models = models
        self.verifier = Verifier(verifier, plain(predictor))
        self.verify_s = self.verifier.latency_s
        self.abort = boolean("router.abort_when_saturated", abort_when_saturated)
        self.sat_out = number("saturation_outstanding", saturation_outstanding, 1.0)
        self.sat_kv = number("saturation_kv", saturation_kv, 0.0, 1.0)
        self.predictor = QualityPredictor(predictor)

    def bind(self, fleet, rng):
        """Resolve the cascade's models (cheapest first by default)."""
        super().bind(fleet, rng)
        chain = served("models", self.models, fleet)
        twice = sorted({m for m in chain if chain.count(m) > 1})
        if twice:  # escalating to the model that just answered buys nothing but a second call
            raise ConfigError(f"router.models: {', '.join(twice)} listed more than once; a "
                              f"cascade escalates to a different model at each step")
        self._chain = chain if self.models is not None else self.book.by_cost(chain)
        if len(self._chain) < 2:
            raise ConfigError(f"router.models: a cascade needs at least two models; got "
                              f"{', '.join(self._chain) or 'none'}, and the fleet serves: "
                              f"{', '.join(fleet.models)} (a pool per model: e.g. "
                              f"pool=two-model-mixtral-gpt4like)")
        self.verifier.check(fleet)
        self._stage: dict[int, int] = {}
        self._seen: dict[int, object] = {}  # request id -> the category the router saw
        self.escalated = 0
        self.aborted = 0

    def _saturated(self, view, request) -> bool:
        first = self._chain[0]
        request.model = first
        inst = least_outstanding(view.candidates(request))
        return inst.outstanding >= self.sat_out or inst.kv_used_frac >= self.sat_kv

    def select(self, request, view, category, complexity):
        """Stage of the request: 0 for a new one (or the last when aborting), else its own."""
        stage = self._stage.get(request.id)
        label = "attempt"
        if stage is None:
            stage = 0
            if self.abort and self._saturated(view, request):
                stage, label = len(self._chain) - 1, "abort"
                self.aborted += 1
            self._stage[request.id] = stage
        elif stage > 0:
            label = "escalate"
        self._seen[request.id] = category
        return self._chain[stage], None, label, float(stage)

    def on_complete(self, request, record):
        """Verify the answer; escalate a flagged one to the next model."""
        stage = self._stage.pop(request.id, None)
        seen = self._seen.pop(request.id, None)
        if stage is None or stage + 1 >= len(self._chain):
            return
        accepted, _ = self.verifier.judge(request, self._chain[stage], seen, self.rng)
        if not accepted:
            nxt = self.fleet.follow_up(request, model=self._chain[stage + 1])
            self._stage[nxt.id] = stage + 1
            self.escalated += 1
            self.fleet.submit(nxt, self.verify_s)

    def on_dropped(self, request, record):
        """Forget a lost attempt (nothing to verify)."""
        self._stage.pop(request.id, None)
        self._seen.pop(request.id, None)

    @property
    def judged_quality(self) -> dict:
        """{call id: (model, expected correctness)} of the answers whose verdict changed what
        is known of them (`Verifier.posterior_of`), accepted or rejected: the quality the user
        keeps where that call's answer is the chain's final one — an accepted answer, or a
        rejected one whose escalation was lost (`wrpsim.metrics.quality.quality_summary(
        judged=...)`: the deepest judged call of a chain, where its model answered last)."""
        return {rid: (m, q) for (rid, m), q in self.verifier.judged().items()}

    def summary_figures(self) -> dict:
        """The verifier's measured figures and the cascade's counts, for `summary.json`."""
        return {**self.verifier.figures(), "cascade_escalated": self.escalated,
                "cascade_aborted": self.aborted}
