"""Routing on the fleet view's live state: SLO/latency-aware and energy-aware policies.

Both estimate, for every candidate instance (of every pool serving one of the router's `models`;
default: the request's own model), from the view's `num_waiting` / `num_running` and its pool's
latency/power model:

- TTFT ≈ (num_waiting · p̄ + P) · t_tok, with t_tok the prefill time per token of one full chunk
  (`scheduler.token_budget`) and p̄ a running mean of the prompts routed (EMA, α = 0.05);
- TPOT ≈ one iteration of n + 1 decode sequences at c̄ tokens of context each, n the requests
  there (`outstanding`: running, waiting and sent since the scrape, at most `max_seqs`) (a
  running mean of prompt + half the predicted output) that also carries a prefill chunk of the
  prompt tokens queued there (`outstanding_tokens`, at most what the token budget leaves): while
  prompts wait, every step of a chunked-prefill engine computes part of one, and the decode
  sequences wait for it.

Candidates that score alike (instances of one pool cost the same per request) are told apart by
predicted TTFT, then TPOT, then outstanding requests, so equal instances share the load instead
of the first one taking every request its estimate allows.

`SloAwareRouter` takes the cheapest candidate (estimated cost of the request, `PriceBook` per
pool) predicted to meet `ttft_s` and `tpot_s` (default: the run's SLO when the YAML interpolates
`${slo.*}`); when none is, the one with the lowest predicted TTFT (then TPOT, then
outstanding requests).

`EnergyAwareRouter` takes the candidate whose *marginal* energy per decode step is lowest —
tp · [P(n+1)·t(n+1) − P(n)·t(n)] for n running sequences, tp · (P(1) − P_idle)·t(1) on an idle
instance (its idle power is spent anyway) — among those predicted to meet the SLO (else the
lowest predicted TTFT). It consolidates work onto busy instances, where batching makes tokens
cheap, as long as latency allows.
"""

from __future__ import annotations

from wrpsim.router.config import number, served
from wrpsim.router.lengths import OutputPredictor
from wrpsim.router.selection import ModelRouter

ALPHA = 0.05


class _FleetAware(ModelRouter):
    """Shared estimates of TTFT and TPOT per instance (see the module docstring)."""

    def __init__(self, ttft_s: float = 2.0, tpot_s: float = 0.1, models=None,
                 output_predictor=None, **common):
        super().__init__(**common)
        self.ttft = number("ttft_s", ttft_s, 0.0, strict_lo=True)
        self.tpot = number("tpot_s", tpot_s, 0.0, strict_lo=True)
        self.models = models
        self.lengths = OutputPredictor(output_predictor)

    def bind(self, fleet, rng):
        """Per-pool prefill time per token; candidate instances of the allowed models."""
        super().bind(fleet, rng)
        self._models = served("models", self.models, fleet) if self.models is not None else None
        self._tok_s, self._budget, self._seqs = {}, {}, {}
        for s in fleet.specs:
            b = s.scheduler.token_budget
            self._budget[s.name], self._seqs[s.name] = b, s.scheduler.max_seqs
            self._tok_s[s.name] = fleet.latency[s.name].iteration_s(b, b * (b + 1) / 2, 0, 0) / b
        self._p_mean, self._c_mean = 512.0, 1024.0
        self._choice = None

    def candidates(self, request, view) -> list:
        """Instances of every pool serving an allowed model, pool order then index."""
        models = self._models or [view.model_of(request)]
        return [i for n, c in self._pool_cands.items() if c.model in models for i in c]

    def estimate(self, inst, prompt: int) -> tuple[float, float]:
        """(predicted TTFT, predicted TPOT) of a request of `prompt` tokens on `inst`."""
        ttft = (inst.num_waiting * self._p_mean + prompt) * self._tok_s[inst.pool]
        n = self.batch(inst) + 1
        chunk = max(0, min(self._budget[inst.pool] - n, inst.outstanding_tokens))
        tpot = inst.latency.iteration_s(chunk, chunk * (chunk + 1) / 2, n, int(n * self._c_mean))
        return ttft, tpot

    def batch(self, inst) -> int:
        """Sequences `inst` will run besides a new one: its requests as far as the router
        knows (the scrape's running and waiting ones plus those it sent since), at most
        `max_seqs`."""
        return min(inst.outstanding, self._seqs[inst.pool])

    def score(self, request, inst, out: int) -> float:
        """Lower is better among the candidates predicted to meet the SLO."""
        raise NotImplementedError

    def select(self, request, view, category, complexity):
        """Best-scoring candidate meeting the SLO, else the lowest predicted TTFT."""
        p = request.prompt_tokens
        out = self.lengths.predict(request, category, self.rng)
        self._p_mean += ALPHA * (p - self._p_mean)
        self._c_mean += ALPHA * (p + out / 2 - self._c_mean)
        best = fast = None
        best_s, fast_t = (0.0,), (0.0, 0.0, 0)
        for inst in self.candidates(request, view):
            ttft, tpot = self.estimate(inst, p)
            key = (ttft, tpot, inst.outstanding)
            if fast is None or key < fast_t:
                fast, fast_t = inst, key
            if ttft <= self.ttft and tpot <= self.tpot:
                s = (self.score(request, inst, out), *key)
                if best is None or s < best_s:
                    best, best_s = inst, s
        if fast is None:  # every candidate is down: the failure policy takes the request
            raise IndexError("no candidate instance is up")
        self._choice = best or fast
        label = "meets_slo" if best is not None else "fastest"
        return self._pool_model[self._choice.pool], None, label, best_s[0] if best else fast_t[0]

    def place(self, request, cands):
        """The instance chosen in `select`."""
        return self._choice


class SloAwareRouter(_FleetAware):
    """Cheapest candidate predicted to meet the SLO (see the module docstring)."""

    name = "slo_aware"

    def score(self, request, inst, out):
        """Estimated cost of the request on the instance's pool."""
        return self.book.pools[inst.pool].cost(request.prompt_tokens, out)


class EnergyAwareRouter(_FleetAware):
    """Lowest marginal energy per step among candidates meeting the SLO."""

    name = "energy_aware"

    def score(self, request, inst, out):
        """tp · [P(n+1)·t(n+1) − P(n)·t(n)] (idle instance: tp · (P(1) − P_idle)·t(1))."""
        lat, n, c = inst.latency, self.batch(inst), self._c_mean
        t1 = lat.iteration_s(0, 0.0, n + 1, int((n + 1) * c))
        # (power over the step, as a run charges it: a step the CPU outlasts keeps the GPU
        # waiting part of it)
        e1 = lat.power_w(0, n + 1, int((n + 1) * c), t1) * t1
        if n == 0:
            return inst.tp * (e1 - lat.idle_power_w() * t1)
        t0 = lat.iteration_s(0, 0.0, n, int(n * c))
        return inst.tp * (e1 - lat.power_w(0, n, int(n * c), t0) * t0)
