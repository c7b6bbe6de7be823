"""Predicted output length, and routing by predicted work.

A router does not know how long an answer will be. `OutputPredictor` models a length predictor
and its error (`output_predictor:` of the routers that use one)::

    output_predictor: {kind: lognormal, sigma: 0.5, value: 256}
    # lognormal (the default): true × exp(sigma · N(0, 1)), rounded, >= 1 (median-unbiased,
    #   ~sigma log-error: a learned length predictor) | constant: `value` tokens for every
    #   request | oracle: the true length — only with `router.view.kind: oracle`, the
    #   upper-bound view (a router cannot know the answer's length before it exists)
    # (keys a kind does not use are ignored, so one YAML can switch kinds by override)

`OutputLengthAware` is least-work-left dispatch with predicted sizes: each request goes to the
instance of its model with the fewest *predicted outstanding tokens* (Σ prompt + predicted output
of the requests placed there and not yet completed), instead of the fewest requests. A request's
predicted work is released when it completes; a request dropped after placement keeps its work
counted (rare: it did not fit the instance's KV cache).
"""

from __future__ import annotations

import math
from typing import Any

from wrpsim.errors import ConfigError, check_keys
from wrpsim.router.config import number, plain
from wrpsim.router.requestview import ground_truth
from wrpsim.router.selection import ModelRouter

KINDS = ("constant", "lognormal", "oracle")
KEYS = ("kind", "value", "sigma")
DEFAULT = {"kind": "lognormal", "sigma": 0.5}
NAN = math.nan


class OutputPredictor:
    """Predicted output tokens of a request (see the module docstring)."""

    def __init__(self, spec: Any = None):
        spec = plain(spec) or dict(DEFAULT)
        if not isinstance(spec, dict):
            raise ConfigError(f"router.output_predictor must be a mapping with kind (one of "
                              f"{', '.join(KINDS)}), got {spec!r}")
        if spec.get("kind") not in KINDS:
            from wrpsim.errors import unknown_choice

            raise unknown_choice("router.output_predictor.kind", spec.get("kind"), KINDS)
        self.kind = spec["kind"]
        check_keys(spec, KEYS, "router.output_predictor")
        self.value = number("output_predictor.value", spec.get("value", 256), 1.0, finite=True)
        # (a log-normal error: exp of an infinite sigma has no length)
        self.sigma = number("output_predictor.sigma", spec.get("sigma", 0.5), 0.0, hi=10.0)

    def check(self, view) -> None:
        """The oracle needs the oracle view: else `ConfigError` naming both fields."""
        if self.kind == "oracle" and view.kind != "oracle":
            raise ConfigError("router.output_predictor.kind: oracle needs router.view.kind: "
                              f"oracle (an upper-bound study); with router.view.kind: "
                              f"{view.kind} use one of constant, lognormal")

    def predict(self, request, category, rng) -> int:
        """Predicted output tokens (>= 1); the modelled predictor's error is drawn around the
        true length (`ground_truth`), which the policy never sees."""
        if self.kind == "constant":
            return int(self.value)
        true = ground_truth(request).output_tokens
        if self.kind == "oracle":
            return true
        z = self.sigma * float(rng.standard_normal()) if self.sigma else 0.0
        return max(1, round(true * math.exp(z)))


class OutputLengthAware(ModelRouter):
    """Least predicted work left among the instances of the request's model."""

    name = "output_length_aware"

    def __init__(self, output_predictor=None, **common):
        super().__init__(**common)
        self.lengths = OutputPredictor(output_predictor)

    def bind(self, fleet, rng):
        """Start with no work anywhere."""
        super().bind(fleet, rng)
        self._work = {inst.name: 0 for inst in fleet.instances}
        self._pending: dict[int, tuple[str, int]] = {}
        self._size = 0

    def select(self, request, view, category, complexity):
        """The request's own model; remember its predicted size for `place`."""
        self._size = request.prompt_tokens + self.lengths.predict(request, category, self.rng)
        return view.model_of(request), None, "least_work", float(self._size)

    def place(self, request, cands):
        """Fewest predicted outstanding tokens (first on ties)."""
        work = self._work
        best = min(cands, key=lambda i: work[i.name])
        work[best.name] += self._size
        self._pending[request.id] = (best.name, self._size)
        return best

    def on_complete(self, request, record):
        """Release the request's predicted work."""
        got = self._pending.pop(request.id, None)
        if got is not None:
            self._work[got[0]] -= got[1]
