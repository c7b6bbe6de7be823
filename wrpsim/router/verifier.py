"""The verifier of a finished answer: accept it, or ask again — and how often it errs.

A cascade (`wrpsim.router.cascade`) and a multi-round router (`wrpsim.router.rounds`) judge
each answer after its call completes. `Verifier(spec, default_predictor)` reads the
`router.verifier` mapping; `kind` picks the model of that judgement:

- `oracle-rates` (the cascade's behaviour before verifiers had kinds; its default): the
  verifier is *told* the answer's correctness — the replayed outcome y, a Bernoulli draw at
  y where y is an expected accuracy in (0, 1), or a draw at the predictor's prior where y is
  unknown — and rejects a wrong answer with probability `tpr`, a right one with `fpr`. Its
  error rates are inputs. With y in (0, 1) the verdict tells about the answer: its expected
  correctness given the verdict is the posterior (`posterior_of`), accepted y(1 − fpr) /
  (y(1 − fpr) + (1 − y)(1 − tpr)), rejected y·fpr / (y·fpr + (1 − y)·tpr) — what the
  answer the router keeps scores, and what the measured rates weigh it by (a perfect verifier
  passes the right share of a 0.7-accurate model's answers, not 70 % of any; y of 0 or 1 is
  its own posterior).
- `confidence`: the verifier computes a confidence that the answer is right and accepts it iff
  the confidence ≥ `threshold`:

      logit c = logit(q̂) + skill · (2·y − 1) + noise_sd · ε,   ε ~ N(0, 1)

  with q̂ the pre-call estimate of `predictor` (default: the router's own predictor) for the
  answering model, on the category the router saw and the request's prompt length — with
  `predictor.kind: learned` a model fitted on a training split (`wrpsim.router.learned`), so
  with `skill` 0 (the default) the confidence comes from outcome data alone and the verifier
  never reads the answer's correctness. `skill` > 0 models a verifier that reads the answer (an
  LLM judge, a reward model) whose judgement leans on the replayed outcome y of the answer that
  now exists (y ∈ [0, 1]; unknown y adds nothing); `noise_sd` its error. Its error rates are
  **outputs**: every judged answer with a known outcome is logged and measured against it.

Measured (`figures()`, into `summary.json` by the run), with y ∈ [0, 1] the answer's replayed
score (oracle-rates: its posterior given the verdict) weighting "right" (y) against "wrong"
(1 − y): `verifier_false_accept_rate` = Σ accepted · (1 − y) / Σ (1 − y) — the share of wrong
answers let through (1 − tpr); and `verifier_false_reject_rate` = Σ rejected · y / Σ y — the
share of right answers sent on (fpr);
`verifier_checks` (answers judged), `verifier_reject_rate` (their share rejected),
`verifier_confidence_mean` (confidence kind). Draws come only from the router's stream:
`oracle-rates` two uniforms per judgement (as before), `confidence` one normal when `noise_sd`
> 0.
"""

from __future__ import annotations

import math

from wrpsim.errors import ConfigError, check_keys, unknown_choice
from wrpsim.router.config import number, plain
from wrpsim.router.predict import QualityPredictor

KINDS = ("confidence", "oracle-rates")
KEYS = ("kind", "tpr", "fpr", "latency_s", "threshold", "predictor", "skill", "noise_sd")
RATE_KEYS = ("tpr", "fpr")
CONFIDENCE_KEYS = ("threshold", "predictor", "skill", "noise_sd")


def _logit(p: float) -> float:
    p = min(max(p, 1e-4), 1 - 1e-4)
    return math.log(p / (1 - p))


class Verifier:
    """Accept or reject a finished answer (see the module docstring)."""

    def __init__(self, spec=None, default_predictor=None, default_kind: str = "oracle-rates"):
        v = plain(spec) or {}
        if not isinstance(v, dict):
            raise ConfigError(f"router.verifier must be a mapping, got {v!r}")
        check_keys(v, KEYS, "router.verifier")
        self.kind = v.get("kind", default_kind)
        if self.kind not in KINDS:
            raise unknown_choice("router.verifier.kind", self.kind, KINDS)
        other = CONFIDENCE_KEYS if self.kind == "oracle-rates" else RATE_KEYS
        given = sorted(k for k in other if k in v and v[k] is not None)
        if given:
            raise ConfigError(f"router.verifier: {', '.join(given)} not read with kind: "
                              f"{self.kind} (kind oracle-rates reads tpr, fpr; kind confidence "
                              "reads threshold, predictor, skill, noise_sd)")
        self.latency_s = number("verifier.latency_s", v.get("latency_s", 0.0), 0.0)
        if self.kind == "oracle-rates":
            self.tpr = number("verifier.tpr", v.get("tpr", 1.0), 0.0, 1.0)
            self.fpr = number("verifier.fpr", v.get("fpr", 0.0), 0.0, 1.0)
            self.predictor = QualityPredictor(default_predictor)
        else:
            self.threshold = number("verifier.threshold", v.get("threshold", 0.5), 0.0, 1.0)
            self.skill = number("verifier.skill", v.get("skill", 0.0), 0.0)
            self.noise_sd = number("verifier.noise_sd", v.get("noise_sd", 0.0), 0.0)
            p = v.get("predictor")
            self.predictor = QualityPredictor(default_predictor if p is None else p)
        self.checks = 0
        self.rejected = 0
        self._wrong = self._wrong_accepted = 0.0  # Σ (1 − y), Σ accepted · (1 − y)
        self._right = self._right_rejected = 0.0  # Σ y, Σ rejected · y
        self._conf_sum = 0.0
        self._posterior: dict = {}  # (request id, model) -> expected correctness, verdict known

    def check(self, view) -> None:
        """Validate the predictor against the view (an oracle predictor needs the oracle view)."""
        self.predictor.check(view)

    def confidence(self, request, model: str, category, rng) -> float:
        """The confidence kind's confidence that `model`'s finished answer is right."""
        z = _logit(self.predictor.predict(request, model, category, rng))
        y = _score(request, model)
        if self.skill and y is not None:
            z += self.skill * (2.0 * y - 1.0)
        if self.noise_sd:
            z += self.noise_sd * float(rng.standard_normal())
        return 1.0 / (1.0 + math.exp(-z))

    def judge(self, request, model: str, category, rng) -> tuple[bool, float]:
        """(accepted, confidence) of `model`'s finished answer to `request` (the engine's
        request: the answer exists, its outcome is no longer hidden); logged for `figures`."""
        y = _score(request, model)
        if self.kind == "oracle-rates":
            p = y if y is not None else self.predictor.prior(model, request.category)
            wrong = rng.random() >= p
            accepted = not rng.random() < (self.tpr if wrong else self.fpr)
            conf = math.nan
            if y is not None and 0.0 < y < 1.0:  # the verdict's news about the answer
                y = posterior(y, accepted, self.tpr, self.fpr)
                self._posterior[(request.id, model)] = y
        else:
            conf = self.confidence(request, model, category, rng)
            accepted = conf >= self.threshold
            self._conf_sum += conf
        self.checks += 1
        self.rejected += 0 if accepted else 1
        if y is not None:
            self._wrong += 1.0 - y
            self._right += y
            if accepted:
                self._wrong_accepted += 1.0 - y
            else:
                self._right_rejected += y
        return accepted, conf

    def posterior_of(self, request, model: str) -> float | None:
        """The expected correctness of `model`'s answer to `request` given the verdict on it,
        where that verdict changed what is known (oracle-rates, an expected accuracy in
        (0, 1)); None otherwise (its replayed outcome stands)."""
        return self._posterior.get((request.id, model))

    def forget(self, request, model: str) -> float | None:
        """`posterior_of`, dropping the entry (a router that resolves its answer at once)."""
        return self._posterior.pop((request.id, model), None)

    def judged(self) -> dict:
        """{(request id, model): posterior} of the answers whose verdict changed their expected
        correctness (`posterior_of`)."""
        return dict(self._posterior)

    def figures(self) -> dict:
        """The measured judgement figures (see the module docstring); None where undefined."""
        n = self.checks
        out = {
            "verifier_kind": self.kind,
            "verifier_checks": n,
            "verifier_reject_rate": self.rejected / n if n else None,
            "verifier_false_accept_rate": (self._wrong_accepted / self._wrong
                                           if self._wrong > 0 else None),
            "verifier_false_reject_rate": (self._right_rejected / self._right
                                           if self._right > 0 else None),
        }
        if self.kind == "confidence":
            out["verifier_threshold"] = self.threshold
            out["verifier_confidence_mean"] = self._conf_sum / n if n else None
        return out


def posterior(y: float, accepted: bool, tpr: float, fpr: float) -> float:
    """P(right | verdict) of an answer right with probability `y`, judged by a verifier that
    rejects a wrong answer with probability `tpr` and a right one with `fpr` (`y` itself where
    the verdict has probability 0)."""
    right = y * ((1.0 - fpr) if accepted else fpr)
    wrong = (1.0 - y) * ((1.0 - tpr) if accepted else tpr)
    return right / (right + wrong) if right + wrong > 0.0 else y


def _score(request, model: str) -> float | None:
    """The finished answer's replayed score (None where unknown)."""
    o = request.outcomes
    y = o.get(model) if o else None
    return None if y is None else float(y)
