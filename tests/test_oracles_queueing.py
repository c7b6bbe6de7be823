"""Closed-form queueing results (oracles.md) on degenerate one-instance configurations.

One instance, one sequence at a time (`max_seqs=1`), constant iteration time δ for prefill and
every decode step: a request of `o` output tokens holds the server for exactly o·δ. Geometric `o`
with small success probability p makes service (nearly) exponential with mean δ/p — M/M/1;
fixed `o` makes it deterministic — M/D/1. Means are compared over several seeds.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import constant_cfg, make_trace
from wrpsim.sim import Simulation

DELTA = 1e-3


def _mean_wait(trace) -> float:
    cfg = constant_cfg(step_s=DELTA, max_seqs=1, token_budget=64)
    req, _, _ = Simulation(cfg, trace).run()
    return float(np.mean(req.column("queue_wait_s").to_numpy()))


def _poisson(rng, lam, n):
    t = np.cumsum(rng.exponential(1.0 / lam, n))
    return t - t[0]


def test_mm1_mean_wait_matches_closed_form():
    p = 0.01
    mu = p / DELTA  # service rate: mean service δ/p = 0.1 s
    lam = 0.6 * mu
    waits = []
    for seed in range(8):
        rng = np.random.default_rng(1000 + seed)
        n = 30_000
        trace = make_trace(_poisson(rng, lam, n), np.full(n, 8), rng.geometric(p, n))
        waits.append(_mean_wait(trace))
    oracle = (lam / mu) / (mu - lam)  # W_q = ρ/(μ − λ)
    assert np.mean(waits) == pytest.approx(oracle, rel=0.05)


def test_md1_mean_wait_matches_closed_form():
    o = 50
    d = o * DELTA  # fixed service 50 ms
    lam = 0.7 / d
    waits = []
    for seed in range(6):
        rng = np.random.default_rng(2000 + seed)
        n = 30_000
        trace = make_trace(_poisson(rng, lam, n), np.full(n, 8), np.full(n, o))
        waits.append(_mean_wait(trace))
    rho = lam * d
    oracle = rho * d / (2 * (1 - rho))  # W_q = ρD/(2(1 − ρ))
    assert np.mean(waits) == pytest.approx(oracle, rel=0.05)
