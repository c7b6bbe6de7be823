"""The planner finds the exact minimum count where queueing theory gives it in closed form.

wrpsim routes at arrival (no central queue), so a fleet of c instances is *not* an M/M/c queue.
With `router=random`, Poisson thinning makes each of c instances an independent M/G/1 queue fed
at λ/c; with the constant latency model and `max_seqs: 1`, a request of `o` output tokens holds
its instance for exactly o·δ (tests/test_oracles_queueing.py). The mean wait in queue is then the
Pollaczek–Khinchine formula W_q(c) = (λ/c)·E[S²] / (2(1 − (λ/c)·E[S])), so the smallest c with
W_q(c) <= target is known exactly; the SLO is `plan.slo.queue_wait_mean_s`.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from tests.conftest import make_trace
from wrpsim.plan import run_plan

DELTA = 1e-3  # one iteration (s)
LAM = 100.0  # total arrival rate (1/s)
N = 40_000  # requests (400 s of arrivals)


def pk_wait(c: int, es: float, es2: float) -> float:
    """Mean M/G/1 wait of one of c instances under random splitting (inf when unstable)."""
    lam = LAM / c
    rho = lam * es
    return math.inf if rho >= 1 else lam * es2 / (2 * (1 - rho))


def exact_min(target: float, es: float, es2: float) -> int:
    return next(c for c in range(1, 100) if pk_wait(c, es, es2) <= target)


def plan_cfg(target: float) -> dict:
    return {
        "seed": 0, "slo": {"ttft_s": 1.0, "tpot_s": 0.1}, "pue": 1.0,
        "router": {"_target_": "wrpsim.router.Random"}, "sim": {"horizon_s": None},
        "plan": {
            "candidates": {"server": {
                "gpu": "h100-80gb", "model": "llama3.1-8b", "tp": 1, "kv_blocks": 100_000,
                "scheduler": {"max_seqs": 1, "token_budget": 64},
                "latency": {"kind": "constant", "decode_step_s": DELTA}}},
            "slo": {"queue_wait_mean_s": target}, "objective": "gpus", "max_instances": 24,
            "load_sensitivity": 0, "report": False, "recheck_shuffle_window_s": None},
    }


@pytest.mark.parametrize(("service", "target"), [("deterministic", 0.05), ("geometric", 0.07)])
def test_planner_finds_the_exact_minimum_count(tmp_path, service, target):
    rng = np.random.default_rng(7)
    arrivals = np.cumsum(rng.exponential(1.0 / LAM, N))
    if service == "deterministic":  # M/D/1 per instance: S = 50 δ
        out = np.full(N, 50)
        es, es2 = 50 * DELTA, (50 * DELTA) ** 2
    else:  # M/G/1, o ~ Geometric(p): E[o] = 1/p, E[o²] = (2 − p)/p²
        p = 0.02
        out = rng.geometric(p, N)
        es, es2 = DELTA / p, DELTA**2 * (2 - p) / p**2
    c_star = exact_min(target, es, es2)
    # the case is well posed: the neighbours are clearly on either side of the target
    assert pk_wait(c_star, es, es2) <= 0.92 * target
    assert pk_wait(c_star - 1, es, es2) >= 1.1 * target

    record = run_plan(plan_cfg(target), tmp_path, make_trace(arrivals - arrivals[0],
                                                             np.full(N, 8), out))
    assert record["counts"] == {"server": c_star}
    assert record["slo_met"] and record["recheck"]["slo_met"]
    assert record["metrics"]["queue_wait_mean_s"] == pytest.approx(
        pk_wait(c_star, es, es2), rel=0.08)
    assert [o["slo_met"] for o in record["one_fewer"]] == [False]
    assert record["search"]["single_type"][0]["fleet"] == f"{c_star} × server"
    assert (tmp_path / "plan.json").is_file() and (tmp_path / "candidates.parquet").is_file()
