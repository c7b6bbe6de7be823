"""Closed-form queueing results (oracles.md) on degenerate one-instance configurations.

One instance, one sequence at a time (`max_seqs=1`), constant iteration time δ for prefill and
every decode step: a request of `o` output tokens holds the server for exactly o·δ. Geometric `o`
with small success probability p makes service (nearly) exponential with mean δ/p — M/M/1;
fixed `o` makes it deterministic — M/D/1.

Each run is checked twice: every request's queue wait equals the Lindley recursion of a FIFO
single server, W_{k+1} = max(0, W_k + S_k − A_{k+1}), on the same arrivals and service times o·δ
(exact, whatever the sample size), and the mean wait over a few seeds equals the closed form.
The second check is statistical: the tolerance is ~4 standard deviations of the sample mean,
measured with 400 replications of the Lindley recursion at the test's sizes (see each test).
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import constant_cfg, lindley, make_trace
from wrpsim.sim import Simulation

DELTA = 1e-3


def _mean_wait(trace) -> float:
    cfg = constant_cfg(step_s=DELTA, max_seqs=1, token_budget=64)
    cfg["qoe"] = None  # not measured here: streaming QoE accounting is 30 % of the run time
    req, _, _ = Simulation(cfg, trace).run()
    waits = np.full(len(trace), np.nan)  # a request missing from the table fails the check
    waits[req.column("request_id").to_numpy()] = req.column("queue_wait_s").to_numpy()
    waits_fifo = lindley(trace["arrival_s"].to_numpy(), trace["output_tokens"].to_numpy() * DELTA)
    np.testing.assert_allclose(waits, waits_fifo, rtol=0, atol=1e-9)
    return float(np.mean(waits))


def _poisson(rng, lam, n):
    t = np.cumsum(rng.exponential(1.0 / lam, n))
    return t - t[0]


def test_mm1_mean_wait_matches_closed_form():
    p = 0.01
    mu = p / DELTA  # service rate: mean service δ/p = 0.1 s
    lam = 0.6 * mu
    waits = []
    for seed in range(4):
        rng = np.random.default_rng(1000 + seed)
        n = 15_000
        trace = make_trace(_poisson(rng, lam, n), np.full(n, 8), rng.geometric(p, n))
        waits.append(_mean_wait(trace))
    oracle = (lam / mu) / (mu - lam)  # W_q = ρ/(μ − λ)
    # 4 × 15,000 requests: the mean of the 4 runs' mean waits has a relative standard deviation
    # of 2.5 % (one run of 15,000 at ρ = 0.6: 5.0 %) and a bias under 1 % (the empty start;
    # geometric `o` is a shade less variable than exponential), so 10 % is 4 sigma. (It was 5 %
    # with 8 × 30,000; an error in the queueing itself fails the exact Lindley check above.)
    assert np.mean(waits) == pytest.approx(oracle, rel=0.10)


def test_md1_mean_wait_matches_closed_form():
    o = 50
    d = o * DELTA  # fixed service 50 ms
    lam = 0.7 / d
    waits = []
    for seed in range(3):
        rng = np.random.default_rng(2000 + seed)
        n = 15_000
        trace = make_trace(_poisson(rng, lam, n), np.full(n, 8), np.full(n, o))
        waits.append(_mean_wait(trace))
    rho = lam * d
    oracle = rho * d / (2 * (1 - rho))  # W_q = ρD/(2(1 − ρ))
    # 3 × 15,000 requests: the mean of the 3 runs' mean waits has a relative standard deviation
    # of 2.5 % (one run of 15,000 at ρ = 0.7: 4.4 %), so 10 % is 4 sigma. (It was 5 % with
    # 6 × 30,000; an error in the queueing itself fails the exact Lindley check above.)
    assert np.mean(waits) == pytest.approx(oracle, rel=0.10)
