"""Token-budget pool routing: short- and long-context pools, spillover, compress-and-route.

`TokenBudgetRouter` splits the pools of a model at a token boundary B: a request whose length —
prompt + predicted output (`output_predictor:`, `wrpsim.router.lengths`)
— is at most B goes to the short pool(s), the rest to the long pool(s). When the short pools are
saturated (their least loaded instance has `spill_outstanding` or more requests, or
`spill_kv` or more of its KV cache in use) a short request *spills over* to the long pools,
which serve both. A long request never goes to a short pool. Within a group, the least
outstanding instance takes the request. This is the two-pool topology of the vLLM Semantic
Router fleet studies (fleet-sim's spillover router).

Pools default to the pools of the request's model ordered by per-instance KV capacity: the
smallest is short, the others long (`short_pools:` / `long_pools:` name them instead).

`CompressAndRoute` adds the band (B, γ·B]: a borderline request of a category that compresses
safely (`safe_categories`, default prose, rag, mixed: extractive compression keeps meaning;
code does not) has its prompt cut to B − predicted output tokens and goes to the short pool,
charged `compress_latency_s` (3 ms: vLLM Semantic Router's TextRank compressor on a CPU). The
request's `prompt_tokens` is rewritten, so its result row shows the compressed prompt (the side
table keeps the routed length); its prefix-hash ids are dropped (compressed text shares no
cached prefix). The answer's quality is assumed unchanged.
"""

from __future__ import annotations

from wrpsim.errors import ConfigError, boolean
from wrpsim.router.config import number
from wrpsim.router.lengths import OutputPredictor
from wrpsim.router.selection import ModelRouter, least_outstanding


class TokenBudgetRouter(ModelRouter):
    """Short pool up to B tokens, long pool beyond, spillover when short is saturated."""

    name = "token_budget"

    def __init__(self, boundary_tokens: int = 4096, short_pools=None, long_pools=None,
                 spill: bool = True, spill_outstanding: int = 64, spill_kv: float = 0.95,
                 output_predictor=None, **common):
        super().__init__(**common)
        b = number("boundary_tokens", boundary_tokens, 1.0)
        if b != int(b):  # a token count: 10.5 would have been cut to 10 silently
            raise ConfigError(f"router.boundary_tokens must be an integer >= 1, "
                              f"got {boundary_tokens!r}")
        self.boundary = int(b)
        self.short_names, self.long_names = short_pools, long_pools
        self.spill = boolean("router.spill", spill)
        self.spill_out = number("spill_outstanding", spill_outstanding, 1.0)
        self.spill_kv = number("spill_kv", spill_kv, 0.0, 1.0)
        self.lengths = OutputPredictor(output_predictor)

    def bind(self, fleet, rng):
        """Group each model's pools into short and long."""
        super().bind(fleet, rng)
        self._groups: dict[str, tuple[list, list]] = {}
        if self.short_names is not None or self.long_names is not None:
            short = self.check_pools("short_pools", self.short_names or [])
            long = self.check_pools("long_pools", self.long_names or [])
            both = sorted(set(short) & set(long))
            if both:  # (the long side would get nothing: a request goes to the first match)
                raise ConfigError(f"router.short_pools and router.long_pools both list "
                                  f"{', '.join(both)}: a pool is short or long, not both")
            models = {self._pool_model[p] for p in short + long}
            if len(models) != 1:
                raise ConfigError(f"router.short_pools/long_pools must serve one model, got "
                                  f"{sorted(models)}")
            self._groups[models.pop()] = (self._insts(short), self._insts(long))
        for model in fleet.models:
            if model in self._groups:
                continue
            pools = [s for s in fleet.specs if s.model == model and s.name in self._pool_cands]
            pools.sort(key=lambda s: fleet.pools[s.name][0].kv_capacity_blocks)
            names = [s.name for s in pools]
            self._groups[model] = (self._insts(names[:1]), self._insts(names[1:] or names[:1]))
        self.counts = {"short": 0, "long": 0, "spill": 0, "compressed": 0}

    def _insts(self, names) -> list:
        """The instances of pools `names`, as a registered `Candidates` list, so that a failed
        instance leaves it and a repaired one returns (a plain list kept routing to instances
        that were down: the requests waited out the outage, routed again and again)."""
        from wrpsim.pool.fleet import Candidates

        return Candidates(i for n in names for i in self._pool_cands[n])

    def saturated(self, insts) -> bool:
        """True when the least loaded of `insts` is at the spill limits."""
        inst = least_outstanding(insts)
        return inst.outstanding >= self.spill_out or inst.kv_used_frac >= self.spill_kv

    def classify(self, request, category, length: int) -> str:
        """"short" or "long" for a request of `length` tokens (prompt + predicted output)."""
        return "short" if length <= self.boundary else "long"

    def select(self, request, view, category, complexity):
        """Short, long or spill; the instances are chosen in `place`."""
        length = request.prompt_tokens + self.lengths.predict(request, category, self.rng)
        model = view.model_of(request)
        short, long = self._groups[model]
        label = self.classify(request, category, length)
        if label == "short" and self.spill and self.saturated(short):
            label = "spill"
        self._target = short if label in ("short", "compressed") else long
        self.counts[label] += 1
        return model, None, label, float(length)

    def place(self, request, cands):
        """Least outstanding instance of the chosen group."""
        return least_outstanding(self._target)


class CompressAndRoute(TokenBudgetRouter):
    """Token-budget routing that compresses borderline prompts into the short pool."""

    name = "compress_and_route"

    def __init__(self, gamma: float = 1.5, safe_categories=("prose", "rag", "mixed"),
                 compress_latency_s: float = 0.003, **kw):
        super().__init__(**kw)
        self.gamma = number("gamma", gamma, 1.0)
        self.safe = frozenset(safe_categories or ())
        #: the categories the user named (the defaults are a convention, not a claim on the
        #: workload: `named_categories`)
        self._safe_given = tuple(safe_categories or ()) != ("prose", "rag", "mixed")
        self.compress_s = number("compress_latency_s", compress_latency_s, 0.0)

    def named_categories(self) -> dict:
        """`safe_categories` when set (`Router.named_categories`)."""
        return {"safe_categories": self.safe} if self._safe_given else {}

    def classify(self, request, category, length: int) -> str:
        """Compress a safe borderline request to fit the boundary."""
        if length <= self.boundary:
            return "short"
        out = length - request.prompt_tokens
        if (length <= self.gamma * self.boundary and category in self.safe
                and self.boundary - out >= 1):
            request.prompt_tokens = self.boundary - out
            request.hash_ids = None
            return "compressed"
        return "long"

    def delay_s(self, request, decision: str) -> float:
        """The decision latency, plus the compressor's on a compressed request."""
        d = super().delay_s(request, decision)
        return d + self.compress_s if decision == "compressed" else d
