"""Evaluate one candidate fleet: build its run config, simulate, summarise, judge the SLO.

A fleet is a tuple of instance counts aligned with the plan's pool templates. `Evaluator`
replays a named trace (`search`, `full`, `recheck`, `load-1.2`, …) through
`wrpsim.sim.Simulation` and `summarize` — nothing is written per candidate — and caches the
result by (counts, trace): the same fleet on the same trace with the same seed is the same
simulation, so every candidate sees identical arrivals, lengths and router randomness (common
random numbers) and is never simulated twice. Fleets that cannot run (no instance, a
disaggregated fleet without a prefill or decode pool, or more GPUs than the `network` fabric
holds) are judged infeasible without simulating.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from wrpsim.plan.slo import unserved_frac


@dataclass(frozen=True)
class TraceRun:
    """A trace the planner replays and the seed it runs with."""

    tag: str
    frame: object
    seed: int
    description: str
    start_s: float = 0.0
    end_s: float = 0.0


@dataclass(frozen=True)
class Evaluation:
    """The judged result of one fleet on one trace (`summary` is the run's summary dict)."""

    index: int
    counts: tuple
    trace: str
    seed: int
    phase: str
    summary: dict
    margins: dict
    slo_met: bool
    wall_s: float
    note: str = ""
    tables: tuple = field(default=(), repr=False, compare=False)


def reissue(caught, shown: set, skip: str | None = None) -> None:
    """Issue again the warnings `caught` while they were recorded: any other category as it
    was; each `WrpsimWarning` once per plan — not when its text is in `shown` (to which it is
    added) or starts with `skip`."""
    import warnings

    from wrpsim.errors import WrpsimWarning

    for w in caught:
        text = str(w.message)
        if not issubclass(w.category, WrpsimWarning):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        elif not (skip and text.startswith(skip)) and text not in shown:
            shown.add(text)
            warnings.warn(w.message, stacklevel=3)


class BudgetExhausted(Exception):
    """Raised by `Evaluator.evaluate` in a search phase when `max_evaluations` is reached."""


class Evaluator:
    """Simulates fleets for a plan (see module docstring).

    `base` holds the run-wide config (router, network, slo, pue, sim); `pools` the plan's pool
    templates; `traces` maps tag -> `TraceRun`. `budget` bounds simulations made in phases
    named in `budget_phases`; other phases (final checks) are not bounded."""

    budget_phases = ("bisect", "descent")

    def __init__(self, base: dict, pools, slo, traces: dict, budget: int):
        self.base, self.pools, self.slo, self.traces = base, tuple(pools), slo, traces
        self.budget, self.spent = budget, 0
        self.cache: dict[tuple, Evaluation] = {}
        self.rows: list[Evaluation] = []
        self.alias: dict[str, str] = {}  # tag -> tag of the identical trace (e.g. full -> search)
        self.stage = ""  # what the planner is doing, for progress lines (`wrpsim.plan.progress`)
        self.on_eval = None  # called as on_eval(self, evaluation) after every simulation
        self.reruns = 0  # simulations repeated only to keep a cached result's tables (`keep`)
        self.requested = ""  # the trace tag the last evaluate() asked for (before `alias`)
        self.rerun = False  # whether the last simulation was such a repeat
        self._fabric = None  # the run's fabric, built on the first placement check
        self.warned: set[str] = set()  # warnings of building a simulation, issued once each

    def label(self, counts) -> str:
        """Human-readable fleet, e.g. '2 × h100 + 1 × h200'."""
        parts = [f"{n} × {p.name}" for p, n in zip(self.pools, counts) if n]
        return " + ".join(parts) or "(empty)"

    def cost(self, counts) -> float:
        """USD per hour of the fleet (every instance's GPUs at catalog price)."""
        return float(sum(p.price_per_hour_usd * n for p, n in zip(self.pools, counts)))

    def gpus(self, counts) -> int:
        """GPUs in the fleet."""
        return int(sum(p.tp * n for p, n in zip(self.pools, counts)))

    def invalid(self, counts) -> str:
        """Why the fleet cannot run ('' when it can): no instance, a disaggregated side
        without the other, or more GPUs than the run's `network` fabric has (a fleet the planner
        chose is then out of reach, not an error in the plan's config)."""
        if not any(counts):
            return "no instance"
        roles = {p.role for p, n in zip(self.pools, counts) if n}
        if roles != {"both"} and roles != {"prefill", "decode"}:
            names = " and ".join(sorted(roles))
            return (f"only {names} instances: a fleet needs colocated instances, or both "
                    "prefill and decode ones")
        if roles == {"prefill", "decode"}:  # (mixing two candidates' sides, plan.mix)
            from wrpsim.pool.fleet import kv_width

            widths = {kv_width(p.config.get("kv_dtype", "auto")): p.name
                      for p, n in zip(self.pools, counts) if n}
            if len(widths) > 1:
                return (f"prefill and decode pools with KV caches of different types "
                        f"({', '.join(f'{w} in {n}' for w, n in sorted(widths.items()))}): the "
                        f"KV moves between them as is")
        return self._unplaceable(counts)

    def _unplaceable(self, counts) -> str:
        """'' when the fleet fits the fabric of `base['network']` (always without one), else
        why not: the placement the simulation would make, tried here without simulating."""
        from wrpsim.errors import ConfigError

        net = self.base.get("network") or {}
        from wrpsim.pool.transfer import FABRIC_KINDS

        if net.get("kind") not in FABRIC_KINDS:  # (none / nic: no fabric to place on)
            return ""
        if self._fabric is None:
            from wrpsim.network.transfer import build_fabric

            self._fabric = build_fabric(net, 0)
        if self._fabric.topo is None:
            return ""
        try:
            self._fabric.place([(p.name, n, p.tp) for p, n in zip(self.pools, counts) if n])
        except ConfigError as e:  # the placement's own reason (GPUs, or whole servers)
            return str(e).removeprefix("network: ").split("; raise network.leaves")[0]
        return ""

    def fleet_pools(self, counts) -> dict:
        """The `pool.pools` mapping of the fleet: each pool's config with its count (pools with
        count 0 left out)."""
        return {p.name: {**p.config, "count": n} for p, n in zip(self.pools, counts) if n}

    def run_config(self, counts, seed: int) -> dict:
        """The engine config of the fleet (`fleet_pools`). Streaming QoE is off: no plan
        target, record or report reads it, and its per-token accounting was half the time of a
        plan (most of an under-provisioned fleet's run)."""
        return {**self.base, "seed": seed, "qoe": None,
                "pool": {"name": self.label(counts), "pools": self.fleet_pools(counts)}}

    def evaluate(self, counts, trace: str = "search", phase: str = "bisect",
                 keep: bool = False) -> Evaluation:
        """The (cached) evaluation of `counts` on trace `trace`; `keep` also retains the
        request and instance tables (a cached result without them is simulated again, counted
        in `reruns`). `on_eval` is called once per simulation, never for a cached result.
        Raises `BudgetExhausted` past the search budget."""
        counts = tuple(int(n) for n in counts)
        requested, trace = trace, self.alias.get(trace, trace)
        key = (counts, trace)
        hit = self.cache.get(key)
        if hit is not None and (hit.tables or not keep or not hit.summary):
            return hit
        run = self.traces[trace]
        why = self.invalid(counts)
        if why:
            ev = Evaluation(-1, counts, trace, run.seed, phase, {}, {}, False, 0.0, why)
            self.cache[key] = ev
            return ev
        if phase in self.budget_phases and hit is None:
            if self.spent >= self.budget:
                raise BudgetExhausted(f"plan.max_evaluations ({self.budget}) reached")
            self.spent += 1
        t0 = time.perf_counter()
        summary, tables = self.simulate(counts, run)
        summary["unserved_frac"] = unserved_frac(summary)
        margins = self.slo.margins(summary)
        ev = Evaluation(hit.index if hit else len(self.rows), counts, trace, run.seed,
                        hit.phase if hit else phase, summary, margins, self.slo.met(margins),
                        time.perf_counter() - t0, tables=tables if keep else ())
        self.cache[key] = ev
        if hit is None:
            self.rows.append(ev)
        else:
            self.rows[hit.index] = ev
            self.reruns += 1
        self.requested, self.rerun = requested, hit is not None
        if self.on_eval is not None:
            self.on_eval(self, ev)
        return ev

    def simulate(self, counts: tuple, run: TraceRun) -> tuple[dict, tuple]:
        """One simulation of the fleet on a trace: (summary, (requests, instances) tables).
        A fleet larger than the trace is a candidate like any other here: its warning is muted,
        and so is a pool's KV too small for its context, which the plan has said for each
        candidate under its `plan.candidates` key (the fleet's names `pool.pools.<name>`, a key
        a plan replaces); every other warning of building a simulation (a setting that changes
        nothing, ...) is the same for every fleet and is issued once per plan (`warned`)."""
        import warnings

        from wrpsim.errors import ContextWarning, WrpsimWarning
        from wrpsim.metrics.summary import summarize
        from wrpsim.sanity import FLEET_VS_TRACE
        from wrpsim.sim import Simulation

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", WrpsimWarning)
            sim = Simulation(self.run_config(counts, run.seed), run.frame)
        reissue([w for w in caught if not issubclass(w.category, ContextWarning)],
                self.warned, FLEET_VS_TRACE)
        req, inst, end = sim.run()
        return summarize(req, inst, end, sim.slo, sim.pue), (req, inst)

    def objective(self, ev: Evaluation, objective: str) -> tuple:
        """Sort key of a judged fleet: the objective first, then cost, GPUs, energy, counts."""
        energy = ev.summary.get("energy_kwh") or 0.0
        first = {"cost": self.cost(ev.counts), "gpus": float(self.gpus(ev.counts)),
                 "energy": energy}[objective]
        return (round(first, 9), round(self.cost(ev.counts), 9), self.gpus(ev.counts),
                round(energy, 9), ev.counts)

    def bound(self, counts, objective: str) -> float | None:
        """The objective of a fleet known before simulating (None for energy)."""
        if objective == "cost":
            return self.cost(counts)
        if objective == "gpus":
            return float(self.gpus(counts))
        return None
