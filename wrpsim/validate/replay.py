"""Replay one measured `Case` through the simulator and report the same metrics it measured.

The case's pool becomes a one-pool fleet under the chosen engine; the workload is the case's
trace (replayed request by request) or workload config (closed loop). Metrics, over all
completed requests: mean / median TTFT, TPOT (`(finish - first token) / (output - 1)`, as the
benchmarks compute it) and end-to-end latency; the token-weighted median inter-token gap
(`wrpsim.metrics.itl`); the average power per GPU over the run (busy and idle energy of the
instances over the run's duration, divided by its GPUs).
"""

from __future__ import annotations

import numpy as np

from wrpsim.metrics.itl import ItlLog

ROUTERS = {"round-robin": "wrpsim.router.RoundRobin",
           "least-outstanding": "wrpsim.router.LeastOutstanding"}


def case_config(case, engine: str | None = None, overrides: dict | None = None) -> dict:
    """The plain run config of `case` (one pool named after the GPU)."""
    pool = {k: v for k, v in case.pool.items() if v is not None}
    if engine:
        pool["engine"] = engine
    if overrides:  # on top of the case's own engine settings (`Case.pool["latency"]`)
        pool["latency"] = {"kind": "engine", **(pool.get("latency") or {}), **overrides}
    return {
        "workload": case.workload or {"name": case.set},
        "pool": {"name": case.name, "pools": {case.gpu: pool}},
        "router": {"_target_": ROUTERS[case.router]},
        "seed": 0, "slo": {"ttft_s": 1e9, "tpot_s": 1e9}, "qoe": None, "pue": 1.0,
        "sim": {"progress": False},
    }


def simulate(case, engine: str | None = None, overrides: dict | None = None) -> dict:
    """Simulated metrics of `case` (keys as `Case.measured`, plus `requests`, `sim_s`)."""
    from wrpsim.sim import Simulation

    sim = Simulation(case_config(case, engine, overrides), trace=case.trace)
    logs = []
    for inst in sim.fleet.instances:
        inst.itl = ItlLog()
        logs.append(inst.itl)
    req, inst_t, end = sim.run()
    done = req.filter(np.asarray(req.column("status").to_numpy(zero_copy_only=False))
                      == "completed")
    ttft = done.column("ttft_s").to_numpy()
    tpot = done.column("tpot_s").to_numpy()
    tpot = tpot[~np.isnan(tpot)]
    e2e = done.column("e2e_s").to_numpy()
    itl = ItlLog()
    for log in logs:
        itl.merge(log)
    gpus = int(np.sum(inst_t.column("tp").to_numpy()))
    energy = float(np.sum(inst_t.column("energy_j").to_numpy()))
    out = {"requests": done.num_rows, "sim_s": float(end)}
    if done.num_rows:
        out.update(ttft_mean_s=float(ttft.mean()), ttft_p50_s=float(np.median(ttft)),
                   e2e_mean_s=float(e2e.mean()), e2e_p50_s=float(np.median(e2e)))
    if len(tpot):
        out.update(tpot_mean_s=float(tpot.mean()), tpot_p50_s=float(np.median(tpot)))
    out["itl_p50_s"] = itl.quantile(0.5)
    out["power_w"] = energy / end / gpus if end > 0 and gpus else float("nan")
    out["calibration"] = sim.fleet.latency[case.gpu].calibration \
        if hasattr(sim.fleet.latency[case.gpu], "calibration") else ""
    return out


def errors(case, sim: dict) -> dict:
    """Signed relative error (sim / measured - 1) per measured metric."""
    return {k: sim[k] / v - 1.0 for k, v in case.measured.items()
            if k in sim and v and np.isfinite(sim[k])}
