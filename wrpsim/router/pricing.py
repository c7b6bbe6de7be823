"""What a router may know about the price and energy of each model before it routes.

`PriceBook` turns the fleet's catalog figures into per-token estimates at one reference operating
point of each pool, from the pool's own latency/power model:

- a prompt token costs the GPU time of a prefill of `ref_ctx` tokens divided by `ref_ctx`;
- an output token costs one decode iteration of `ref_batch` sequences at `ref_ctx` tokens of
  context, divided by `ref_batch` (the batch shares the iteration);
- GPU time × tp × the pool's price per GPU-second is the cost (USD); × the modelled per-GPU power
  of that iteration is the energy (J, IT energy before PUE).

A model's figures are those of its cheapest pool. These are *estimates* for routing decisions
(CARROT's cost term, the bandits' cost and energy per token); the metrics measure the run itself
(`wrpsim.metrics.quality`).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class TokenPrices:
    """Per-token estimates of one pool or model."""

    usd_prompt: float
    usd_output: float
    j_prompt: float
    j_output: float

    def cost(self, prompt_tokens: int, output_tokens: int) -> float:
        """Estimated USD of one request."""
        return prompt_tokens * self.usd_prompt + output_tokens * self.usd_output

    def energy(self, prompt_tokens: int, output_tokens: int) -> float:
        """Estimated joules of one request."""
        return prompt_tokens * self.j_prompt + output_tokens * self.j_output


def pool_prices(spec, lat, ref_batch: int = 32, ref_ctx: int = 1024) -> TokenPrices:
    """Per-token estimates of one pool (see the module docstring)."""
    gpu_s = spec.price_per_gpu_hour / 3600.0
    t_pre = lat.iteration_s(ref_ctx, ref_ctx * (ref_ctx + 1) / 2.0, 0, 0) / ref_ctx
    t_dec = lat.iteration_s(0, 0.0, ref_batch, ref_batch * ref_ctx) / ref_batch
    # power over each reference step as a run charges it (its duration given)
    p_pre = lat.power_w(ref_ctx, 0, None, t_pre * ref_ctx)
    p_dec = lat.power_w(0, ref_batch, ref_batch * ref_ctx, t_dec * ref_batch)
    tp = spec.tp
    return TokenPrices(tp * t_pre * gpu_s, tp * t_dec * gpu_s, tp * t_pre * p_pre,
                       tp * t_dec * p_dec)


class PriceBook:
    """Per-pool and per-model token prices of a fleet (see the module docstring)."""

    def __init__(self, fleet, ref_batch: int = 32, ref_ctx: int = 1024):
        self.pools: dict[str, TokenPrices] = {
            s.name: pool_prices(s, fleet.latency[s.name], ref_batch, ref_ctx)
            for s in fleet.specs if s.role != "decode"
        }
        self.models: dict[str, TokenPrices] = {}
        for s in fleet.specs:
            p = self.pools.get(s.name)
            if p is None:
                continue
            old = self.models.get(s.model)
            if old is None or p.cost(1, 1) < old.cost(1, 1):
                self.models[s.model] = p

    def cost(self, model: str, prompt_tokens: int, output_tokens: int) -> float:
        """Estimated USD of a request on `model`."""
        return self.models[model].cost(prompt_tokens, output_tokens)

    def energy(self, model: str, prompt_tokens: int, output_tokens: int) -> float:
        """Estimated joules of a request on `model`."""
        return self.models[model].energy(prompt_tokens, output_tokens)

    def by_cost(self, models) -> list[str]:
        """`models` from cheapest to dearest (per prompt + output token; ties by name)."""
        return sorted(models, key=lambda m: (self.models[m].cost(1, 1), m))
