"""Simulations run one after another in one process (a fit, a validation, a plan's search)
leave nothing behind: `Simulation.run` freezes the objects that exist before it, so an earlier
run's simulation must be collected first or it is kept for good."""

from __future__ import annotations

import gc
import weakref
from pathlib import Path

from tests.conftest import constant_cfg
from wrpsim.sim import Simulation
from wrpsim.workload import build_workload

WORKLOADS = Path(__file__).resolve().parents[1] / "workloads"


def _run_once() -> weakref.ref:
    wl = {"name": "t", "source": {"kind": "closed_loop", "concurrency": 4, "num_requests": 40,
                                  "prompt_tokens": 64, "output_tokens": 8}}
    sim = Simulation(constant_cfg(), build_workload(wl, 0, WORKLOADS))
    sim.run()
    return weakref.ref(sim.env)  # (the environment is in cycles with the fleet's processes)


def test_an_earlier_simulation_is_collected_once_memory_has_grown(monkeypatch):
    """A run whose process's peak memory grew by `COLLECT_GROWTH_KIB` since the last collection
    collects before it freezes (here: any growth since an almost empty process)."""
    from wrpsim import sim as sim_module

    was = gc.isenabled()
    gc.enable()
    try:
        first = _run_once()  # (garbage once the call returned, in cycles)
        monkeypatch.setattr(sim_module, "_PEAK_AT_COLLECT", 1)
        monkeypatch.setattr(sim_module, "COLLECT_GROWTH_KIB", 0)
        _run_once()
        assert first() is None, "the first simulation outlived the second run"
        assert sim_module._PEAK_AT_COLLECT > 1  # (the peak that collection saw)
    finally:
        if not was:
            gc.disable()


def test_without_growth_no_run_pays_a_collection(monkeypatch):
    """Below the growth the runs freeze without collecting: an earlier simulation survives."""
    from wrpsim import sim as sim_module

    monkeypatch.setattr(sim_module, "COLLECT_GROWTH_KIB", 1 << 40)
    was = gc.isenabled()
    gc.disable()  # (no automatic pass either)
    try:
        first = _run_once()
        _run_once()
        assert first() is not None
    finally:
        if was:
            gc.enable()
