"""The price book's energy per token is the energy a run charges for its reference steps.

`pool_prices` multiplies each reference step's time by the power of that step. That power was
taken over the step's GPU time, while a run charges it over the whole step (`decode_power_w` with
the step's duration): under async scheduling a decode step of many short sequences is CPU-bound,
its GPU waiting part of it, so the book overstated a small model's joules per output token."""

from __future__ import annotations

import pytest

from wrpsim.pool.engines import build_latency_model
from wrpsim.router.pricing import pool_prices


class _Spec:
    price_per_gpu_hour = 3.6
    tp = 1


@pytest.mark.parametrize("model,gpu,batch", [
    ("qwen2.5-7b", "b300-288gb", 1024),  # CPU-bound: the GPU busy 13 of a 60 ms step
    ("llama3.1-8b", "h100-80gb", 32),    # GPU-bound at the book's default batch
])
def test_the_books_joules_per_output_token_are_what_a_run_charges(model, gpu, batch):
    lat = build_latency_model(model, gpu, 1, "vllm-0.24")
    prices = pool_prices(_Spec(), lat, ref_batch=batch, ref_ctx=128)
    step = lat.iteration_s(0, 0.0, batch, batch * 128)
    charged = lat.decode_power_w(batch, batch * 128, step) * step / batch
    assert prices.j_output == pytest.approx(charged, rel=1e-9)
    assert prices.usd_output == pytest.approx(step / batch * 3.6 / 3600.0, rel=1e-9)
