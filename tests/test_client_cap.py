"""`source.max_concurrency`: a benchmark client that holds a request while that many of its
own are in flight (`wrpsim.clientcap`, `vllm bench serve --request-rate R --max-concurrency C`)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import compose_cfg
from wrpsim.errors import ConfigError
from wrpsim.sim import Simulation

POOL = ("pool.pools.h100.model=llama3.1-8b", "pool.pools.h100.tp=1",
        "pool.pools.h100.count=1")


def _run(*overrides):
    cfg = compose_cfg("workload=vllm-bench", "workload.source.num_requests=300",
                      "workload.source.lengths.prompt.value=700",
                      "workload.source.lengths.output.value=200", *POOL, *overrides)
    sim = Simulation(cfg)
    req, _, _ = sim.run()
    return sim, req.to_pandas()


def _most_in_flight(req) -> int:
    """The most requests in flight at once, from their send and finish times."""
    t = np.concatenate([req.arrival_s.to_numpy(), req.finish_s.to_numpy()])
    step = np.concatenate([np.ones(len(req)), -np.ones(len(req))])
    order = np.lexsort((step, t))  # at a tie, an end before a start: the slot is free again
    return int(np.cumsum(step[order]).max())


@pytest.mark.parametrize("cap", [1, 4, 16])
def test_no_more_than_the_cap_are_ever_in_flight(cap):
    _, free = _run("workload.source.arrivals.rate=40")
    sim, req = _run("workload.source.arrivals.rate=40", f"workload.source.max_concurrency={cap}")
    assert _most_in_flight(free) > cap  # the load needs more than the cap
    assert _most_in_flight(req) == cap
    assert (req.status == "completed").all() and len(req) == 300
    # a held request is sent the moment a slot frees: its send time is another's finish
    sched = sim.trace["arrival_s"]
    held = req.arrival_s.to_numpy() > np.asarray(sched)[req.request_id] + 1e-12
    assert held.any()
    finishes = set(np.round(req.finish_s.to_numpy(), 9))
    assert all(round(a, 9) in finishes for a in req.arrival_s.to_numpy()[held])
    if cap == 1:  # one at a time: each sent when the one before it finished, or at its time
        r = req.sort_values("arrival_s")
        assert (r.arrival_s.to_numpy()[1:] >= r.finish_s.to_numpy()[:-1] - 1e-12).all()


def test_a_cap_that_never_binds_changes_nothing():
    _, free = _run("workload.source.arrivals.rate=2")
    _, capped = _run("workload.source.arrivals.rate=2", "workload.source.max_concurrency=300")
    assert free.equals(capped)


def test_requests_held_at_the_horizon_are_beyond_it():
    sim, req = _run("workload.source.arrivals.rate=40", "workload.source.max_concurrency=2",
                    "sim.horizon_s=5")
    assert sim.client_cap.not_sent > 0
    assert len(req) + sim.beyond_horizon == 300


@pytest.mark.parametrize("value, message", [
    ("0", r"workload\.source\.max_concurrency must be >= 1, got 0"),
    ("2.5", r"workload\.source\.max_concurrency must be an integer, got 2\.5"),
])
def test_a_bad_cap_is_one_line(value, message):
    with pytest.raises(ConfigError, match=message):
        _run(f"workload.source.max_concurrency={value}")
