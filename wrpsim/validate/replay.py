"""Replay one measured `Case` through the simulator and report the same metrics it measured.

The case's pool becomes a one-pool fleet under the chosen engine; the workload is the case's
trace (replayed request by request) or workload config (closed loop, constant rate). Metrics,
over all completed requests: mean / median TTFT, TPOT (`(finish - first token) / (output -
1)`, as the benchmarks compute it) and end-to-end latency, the 90th percentile of TTFT and
latency; the token-weighted median inter-token gap (`wrpsim.metrics.itl`); the average power
per GPU over the run (busy and idle energy of the instances over the run's duration, divided by
its GPUs) or, for a case whose benchmark measured
power over its steady state (`Case.info["steady_state"]`, ML.ENERGY), over the same window:
from the moment `concurrency` requests have their first token to the moment all but
`concurrency + 1` have finished (`steady_window`).
"""

from __future__ import annotations

import warnings
from contextlib import contextmanager

import numpy as np

from wrpsim.metrics.itl import ItlLog
from wrpsim.metrics.powerlog import PowerLog

ROUTERS = {"round-robin": "wrpsim.router.RoundRobin",
           "least-outstanding": "wrpsim.router.LeastOutstanding"}


def case_config(case, engine: str | None = None, overrides: dict | None = None) -> dict:
    """The plain run config of `case` (its `Case.pool_configs`). With `engine` (every case
    under one engine), the memory fraction stays the measured server's: its own engine's
    `gpu_mem_util` where the case leaves it out (a server's version sets it, not the
    calibration)."""
    pools = {n: _pool_config(p, engine, overrides) for n, p in case.pool_configs.items()}
    out = {
        "workload": case.workload or {"name": case.set},
        "pool": {"name": case.name, "pools": pools},
        "router": {"_target_": ROUTERS[case.router]},
        "seed": 0, "slo": {"ttft_s": 1e9, "tpot_s": 1e9}, "qoe": None, "pue": 1.0,
        "sim": {"progress": False},
    }
    if case.network is not None:
        out["network"] = case.network
    return out


def _pool_config(pool: dict, engine: str | None, overrides: dict | None) -> dict:
    """One pool of `case_config` (its docstring says what `engine` keeps)."""
    pool = {k: v for k, v in pool.items() if v is not None}
    if engine:
        sched = pool.get("scheduler")
        if isinstance(sched, dict) and sched.get("gpu_mem_util") is None:
            from wrpsim.pool.engines import DEFAULT_ENGINE, get_engine

            own = get_engine(pool.get("engine") or DEFAULT_ENGINE).gpu_mem_util
            pool["scheduler"] = {**sched, "gpu_mem_util": own}
        pool["engine"] = engine
    if overrides:  # on top of the case's own engine settings (`Case.pool["latency"]`)
        pool["latency"] = {"kind": "engine", **(pool.get("latency") or {}), **overrides}
    return pool


#: inside `case_warnings_once`: the case warnings already said (None: say every one)
_said: set | None = None


@contextmanager
def case_warnings_once():
    """A block (a fit that replays each case many times) in which each case warning
    (`_as_case_warnings`) is said once, not once per replay."""
    global _said
    outer, _said = _said, set() if _said is None else _said
    try:
        yield
    finally:
        _said = outer


@contextmanager
def _as_case_warnings(case):
    """Warnings about a replayed case's pool (its `pool.pools.<gpu>` is the case's, set as the
    measured run was, not the user's) said as the case's: 'replay of measured case NAME (its
    own settings): …' (once per block of `case_warnings_once`)."""
    from wrpsim.errors import ContextWarning, WrpsimWarning, warn

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", WrpsimWarning)
        yield
    for w in caught:
        if issubclass(w.category, ContextWarning):
            continue  # (the measured server started: its own context fitted its cache)
        if issubclass(w.category, WrpsimWarning):
            text = f"replay of measured case {case.name} (its own settings): {w.message}"
            if _said is not None:
                if text in _said:
                    continue
                _said.add(text)
            warn(text)
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


def simulate(case, engine: str | None = None, overrides: dict | None = None,
             power_probe: tuple | None = None) -> dict:
    """Simulated metrics of `case` (keys as `Case.measured`, plus `requests`, `sim_s`, and
    `busy_frac`: the share of its GPUs' time over the power window they were running
    iterations, the busy fraction of the power model).

    `power_probe`: fields (active, w_compute, w_memory) of a power model with idle 0 W and a
    1 W span put in place of every instance's (`wrpsim.calibrate.power`), so `power_w`
    reports that combination of busy fraction and utilisations instead of watts."""
    from wrpsim.pool.kernels.power import PowerModel
    from wrpsim.sim import Simulation

    with _as_case_warnings(case):
        sim = Simulation(case_config(case, engine, overrides), trace=case.trace)
    if power_probe is None:
        return _simulate(case, sim)
    # the latency models are shared by every simulation of the process (`build_latency_model`'s
    # cache): the probe is put back after the run, or later runs would report probe "watts"
    kept = {id(lat): (lat, lat._power) for lat in sim.fleet.latency.values()}
    for lat, _ in kept.values():
        lat._power = PowerModel(0.0, 1.0, *power_probe, source="probe")
    try:
        return _simulate(case, sim)
    finally:
        for lat, power in kept.values():
            lat._power = power


def _simulate(case, sim) -> dict:
    """`simulate`'s run of `sim` (built for `case`) and its metrics."""
    logs, plogs = [], []
    steady = bool(case.info.get("steady_state"))
    for inst in sim.fleet.instances:
        inst.itl = ItlLog()
        logs.append(inst.itl)
        if steady:
            inst.power_log = PowerLog()
            plogs.append((inst.power_log, inst.latency.idle_power_w() * inst.tp, inst.tp))
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
                   ttft_p90_s=float(np.percentile(ttft, 90)),
                   e2e_mean_s=float(e2e.mean()), e2e_p50_s=float(np.median(e2e)),
                   e2e_p90_s=float(np.percentile(e2e, 90)))
    if len(tpot):
        out.update(tpot_mean_s=float(tpot.mean()), tpot_p50_s=float(np.median(tpot)))
    out["itl_p50_s"] = itl.quantile(0.5)
    window = steady_window(done, int(case.info.get("concurrency", 0))) if steady else None
    if window is None or not gpus:  # (the whole run's)
        out["power_w"] = energy / end / gpus if end > 0 and gpus else float("nan")
        out["busy_frac"] = (sum(inst.busy_s * inst.tp for inst in sim.fleet.instances) / end
                            / gpus if end > 0 and gpus else float("nan"))
    else:
        a, b = window
        joules = sum(log.energy_j(a, b, idle) for log, idle, _ in plogs)
        out["power_w"] = joules / (b - a) / gpus
        out["busy_frac"] = sum(log.busy_s(a, b) * tp for log, _, tp in plogs) / (b - a) / gpus
        out["steady_s"] = b - a
        out["batch_avg"] = running_avg(done, a, b)
    lat = sim.fleet.latency[next(iter(case.pool_configs))]
    out["calibration"] = getattr(lat, "calibration", "")
    return out


def running_avg(done, a: float, b: float) -> float:
    """Time-averaged number of the completed requests `done` running over [a, b]: admitted
    into a batch (arrival + queue wait) and not yet finished — what a server's
    `num_requests_running` averages to over that window (ML.ENERGY's `avg_batch_size`); a
    request preempted and readmitted counts from its first admission."""
    admit = (done.column("arrival_s").to_numpy()
             + np.nan_to_num(done.column("queue_wait_s").to_numpy()))
    fin = done.column("finish_s").to_numpy()
    overlap = np.clip(np.minimum(fin, b) - np.maximum(admit, a), 0.0, None)
    return float(overlap.sum() / (b - a))


def steady_window(done, concurrency: int) -> tuple[float, float] | None:
    """ML.ENERGY's steady state of a closed loop of `concurrency` clients over the completed
    requests `done`: from the `concurrency`-th first token to the (N - concurrency - 1)-th
    finish (N requests); None when that window is empty."""
    n = done.num_rows
    if concurrency < 1 or n - concurrency - 1 < 1 or n < concurrency:
        return None
    first = np.sort(done.column("first_token_s").to_numpy())
    fin = np.sort(done.column("finish_s").to_numpy())
    a, b = float(first[concurrency - 1]), float(fin[n - concurrency - 2])
    return (a, b) if b > a else None


def errors(case, sim: dict) -> dict:
    """Signed relative error (sim / measured - 1) per measured metric."""
    return {k: sim[k] / v - 1.0 for k, v in case.measured.items()
            if k in sim and v and np.isfinite(sim[k])}
