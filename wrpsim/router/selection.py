"""The common frame of routers that choose *which model* (or which pool) serves a request.

A `ModelRouter` reads the request as its classifier sees it (`wrpsim.router.signals`), asks its
policy (`select`) for a target — a model, or a named pool — then places the request on the
least outstanding instance of that target and charges its decision latency. The chosen model is
written into `request.model`, so the request's result row names the model that answered it; the
workload's own `model` column is therefore ignored by these routers.

Common config (every model-selecting router takes these)::

    classifier: {}                     # category confusion / complexity noise (signals.py)
    decision_latency_s: 0.0            # fixed decision time, added to TTFT
    decision_latency_per_token_s: 0.0  # plus this per prompt token (a classifier's pass)
    record: true                       # keep the per-request decision side table

`decisions` holds one tuple per routing call in `wrpsim.router.decisions.ROUTING_SCHEMA` order
(`routing_table(router)` makes the Arrow table of `routing.parquet`).
"""

from __future__ import annotations

from wrpsim.errors import ConfigError, boolean
from wrpsim.pool.fleet import Candidates
from wrpsim.router.base import Placement, Router
from wrpsim.router.config import name_list, number
from wrpsim.router.pricing import PriceBook
from wrpsim.router.signals import Classifier


def least_outstanding(cands):
    """The candidate with the fewest outstanding requests (first on ties)."""
    best, best_v = cands[0], cands[0].outstanding
    for inst in cands:
        v = inst.outstanding
        if v < best_v:
            best, best_v = inst, v
    return best


class ModelRouter(Router):
    """Base of model- and pool-selecting policies (see the module docstring).

    Subclasses implement `select(request, view, category, complexity)` returning
    `(model, pool, decision, score)`: `pool` None means any pool of `model`, both None a
    refusal (the request is dropped, reason ``router_rejected``); `decision` is a short
    label recorded in the side table (rule name, arm, "strong"/"weak"…), `score` the number the
    policy decided on (NaN when none)."""

    name = "model_router"

    def __init__(self, classifier=None, decision_latency_s: float = 0.0,
                 decision_latency_per_token_s: float = 0.0, record: bool = True):
        self.classifier = Classifier(classifier)
        self.latency_s = number("decision_latency_s", decision_latency_s, 0.0)
        self.latency_tok_s = number("decision_latency_per_token_s",
                                    decision_latency_per_token_s, 0.0)
        self.record = boolean("router.record", record)

    def bind(self, fleet, rng):
        """Attach the run; build the price book and the per-pool candidate lists."""
        super().bind(fleet, rng)
        self.book = PriceBook(fleet)
        self.decisions: list[tuple] = []
        self._pool_cands: dict[str, Candidates] = {}
        for spec in fleet.specs:
            if spec.role == "decode":
                continue
            c = Candidates(fleet.pools[spec.name])
            c.model, c.key = spec.model, "pool:" + spec.name
            self._pool_cands[spec.name] = c
        self._pool_model = {s.name: s.model for s in fleet.specs}
        for part in ("lengths", "predictor"):  # Output- / QualityPredictor, where it has one
            got = getattr(self, part, None)
            if got is not None:
                got.check(fleet)
        self._timed = (self.latency_s > 0 or self.latency_tok_s > 0
                       or type(self).delay_s is not ModelRouter.delay_s)

    @property
    def oracle_reads(self) -> tuple[str, ...]:
        """The ground truth this router's predictors read (oracle kinds): empty for a real
        router; `summary.json` labels a run that read any as an upper bound (`router_oracle`)."""
        out = []
        if getattr(getattr(self, "predictor", None), "kind", None) == "oracle":
            out.append("per-model outcomes")
        if getattr(getattr(self, "lengths", None), "kind", None) == "oracle":
            out.append("output lengths")
        verifier = getattr(self, "verifier", None)  # a cascade's or a rounds router's
        if getattr(getattr(verifier, "predictor", None), "kind", None) == "oracle":
            out.append("per-model outcomes (verifier)")
        return tuple(out)

    def check_pools(self, field: str, pools) -> list[str]:
        """Validate pool names against the fleet (prefill-capable pools)."""
        pools = name_list(field, pools, "pool")
        for p in pools:
            if p not in self._pool_cands:
                raise ConfigError(f"router.{field}: unknown pool {p!r}; valid pools: "
                                  f"{', '.join(sorted(self._pool_cands))}")
        return [str(p) for p in pools]

    def select(self, request, view, category, complexity) -> tuple:
        """(model, pool or None, decision label, score) for `request`."""
        raise NotImplementedError

    def _unserved(self, what: str, name, served) -> ConfigError:
        """The error for a `select` that names a model / pool the fleet does not have."""
        cls = type(self)
        return ConfigError(f"router {cls.__module__}.{cls.__qualname__}: select returned "
                           f"{what} {name!r}, which the fleet does not serve; the fleet's "
                           f"{what}s: {', '.join(sorted(str(m) for m in served))}")

    def place(self, request, cands):
        """The instance of the target's candidates that takes the request."""
        return least_outstanding(cands)

    def choose(self, request, cands):
        """Least outstanding of `cands` (used for the decode side of a disaggregated model)."""
        return least_outstanding(cands)

    def delay_s(self, request, decision: str) -> float:
        """Decision latency charged to `request` (added before admission, counted in TTFT)."""
        return self.latency_s + self.latency_tok_s * request.prompt_tokens

    def route(self, request, view):
        """Classify, select a target, place on its least outstanding instance."""
        if self.classifier.exact:
            cat, cx = request.category, request.complexity
        else:
            cat, cx = self.classifier.observe(request, self.rng)
        model, pool, label, score = self.select(request, view, cat, cx)
        if model is None and pool is None:  # the policy refuses the request
            if self.record:
                self.decisions.append((request.id, request.parent_id, self.name, label, None,
                                       None, score, cat, request.prompt_tokens, 0.0))
            return None
        if pool is not None:
            try:
                model = self._pool_model[pool]
            except KeyError:
                raise self._unserved("pool", pool, self._pool_model) from None
            request.model = model
            inst = self.place(request, self._pool_cands[pool])
        else:
            request.model = model
            try:
                cands = view.candidates(request)
            except KeyError:  # not on the hot path: only for a model the fleet does not serve
                raise self._unserved("model", model, view.models) from None
            inst = self.place(request, cands)
        delay = self.delay_s(request, label) if self._timed else 0.0
        if self.record:
            self.decisions.append((request.id, request.parent_id, self.name, label, model,
                                   inst.pool, score, cat, request.prompt_tokens, delay))
        return Placement(inst, delay_s=delay)
