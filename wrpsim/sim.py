"""The pure core of a run: config in, result files and a summary out.

`run(cfg, out_dir)` builds the workload, fleet and router from a plain config mapping (what the
Hydra app composes), replays every request through the router onto the fleet in a SimPy
environment, and writes `requests.parquet`, `instances.parquet`, `tasks.parquet`,
`summary.json` and `config.yaml` into `out_dir`. It never reads Hydra state, so tests and other
tools call it directly.
"""

from __future__ import annotations

import gc
import resource
import sys
import time
from pathlib import Path

import numpy as np
import simpy

from wrpsim.app import resume_gc
from wrpsim.clientcap import MAX_IN_FLIGHT_ATTR, ClientCap
from wrpsim.dispatcher import Dispatcher
from wrpsim.errors import (
    ConfigError,
    boolean,
    check_keys,
    keyed_mapping,
    number,
    same_name,
    unknown_choice,
    warn,
)
from wrpsim.eventloop import Arrivals, run_all
from wrpsim.io import Background, write_json, write_text
from wrpsim.jobs import OUTPUT_KEYS
from wrpsim.metrics.quality import quality_summary
from wrpsim.metrics.records import RequestLog, instance_table, write_parquet
from wrpsim.metrics.summary import summarize
from wrpsim.metrics.tasks import task_summary, task_table
from wrpsim.pool.fleet import Fleet, parse_pool
from wrpsim.pool.spanning import parse_collectives, spans
from wrpsim.pool.transfer import FABRIC_KINDS, KVTransfer
from wrpsim.progress import Progress
from wrpsim.rng import stream
from wrpsim.router import routing_table
from wrpsim.router.build import build_router, router_deployment
from wrpsim.router.checked import is_user_router
from wrpsim.router.feed import ViewFeed
from wrpsim.router.semcache import CacheSpec, SemanticCache
from wrpsim.router.service import RouterService
from wrpsim.sanity import check_fleet_vs_trace, check_pool_sizes, run_seed, scaleup_gpus
from wrpsim.sessions import SessionDriver, replayable
from wrpsim.workload.columns import as_columns, present

RUN_KEYS = ("workload", "pool", "router", "network", "seed", "slo", "pue", "sim", "experiment",
            "qoe", "failures")


def _require(cfg: dict, key: str):
    if key not in cfg or cfg[key] is None:
        raise ConfigError(f"config key {key!r} is required")
    return cfg[key]


QOE_KEYS = ("ttft_s", "tokens_per_s", "target")
#: longest `sim.horizon_s`, seconds (about 3.2 years)
MAX_HORIZON_S = 1e8


def progress_setting(value):
    """`sim.progress` checked: auto, true, false or null (off, as false); else the one-line
    error (`python -m wrpsim.plan`, which turns it off for its simulations, checks it too)."""
    if value is not None and value != "auto" and not isinstance(value, bool):
        raise ConfigError(f"sim.progress must be auto, true or false, got {value!r}")
    return value


def parse_qoe(q) -> dict | None:
    """The `qoe` config (expected TTFT, reading pace, attainment target: finite numbers > 0,
    the target <= 1), or None (off). An infinite TTFT or pace would make every stream "on
    time" (QoE 1): refused, naming the key."""
    if q is None:
        return None
    if not isinstance(q, dict):
        raise ConfigError(f"qoe must be a mapping with keys {', '.join(QOE_KEYS)} or null")
    check_keys(q, QOE_KEYS, "qoe")
    out = {"ttft_s": 1.0, "tokens_per_s": 5.0, "target": 0.9, **q}
    out = {k: number(f"qoe.{k}", out[k], 0, strict_lo=True, finite=True)
           for k in QOE_KEYS}
    if out["target"] > 1:
        raise ConfigError(f"qoe.target must be in (0, 1], got {out['target']!r}")
    return out


#: keys of the `router` config that describe its deployment, not its policy
def build_transfer(env, net: dict, seed: int = 0) -> KVTransfer:
    """The KV-transfer link model of the `network` config group, with the collectives switch
    (`network.collectives`, `wrpsim.pool.spanning`) as its `collectives`."""
    kind = net.get("kind", "none")
    if kind not in ("nic", "none", *FABRIC_KINDS):  # (named before any key that needs a kind)
        raise unknown_choice("network.kind", kind, ("nic", "none", *FABRIC_KINDS))
    if (kind in ("none", "nic") and "leaves" in net) or (
            kind == "nic" and "nic_gbps" not in net and "leaves" not in net):
        # `network.kind=nic` on another group's file: its keys are not nic's (or nic_gbps is
        # missing), which named a key the user never set (collective_alpha_us, nic_gbps)
        raise ConfigError(f"network.kind={kind}: the other keys of this network config are "
                          f"another network's; choose the network with its config group, "
                          f"network={kind} (network.kind only switches fluid <-> packet)")
    net, coll = parse_collectives(net)
    if kind in FABRIC_KINDS:
        from wrpsim.network.transfer import build_fabric

        transfer = KVTransfer(env, fabric=build_fabric(net, seed))
        transfer.collectives = coll
        return transfer
    if kind in ("none", "nic"):
        # (the collectives' switch, taken out above, is valid too: listed so the line is whole)
        check_keys(net, ("kind", "nic_gbps", "collectives"), f"network (kind {kind})")
        if kind == "none" and net.get("nic_gbps") is not None:
            # (`network=nic network.kind=none`: the nic group's bandwidth, unread; a warning, as
            # the failures' unread keys are: the run is network=none's)
            warn(f"network.nic_gbps={net['nic_gbps']} changes nothing with network.kind=none "
                 f"(KV transfers take no time); for NICs of that bandwidth choose network=nic "
                 f"without network.kind=none")
        return KVTransfer(env, kind, net.get("nic_gbps"))
    raise unknown_choice("network.kind", kind, ("nic", "none", *FABRIC_KINDS))


def build_fleet(env, pcfg: dict, sink, hash_block_tokens: int = 0, transfer=None,
                requests: int = 0) -> Fleet:
    """Validate the `pool` config (against a trace of `requests` requests when given: see
    `wrpsim.sanity`) and build the fleet's instances."""
    valid = ("pools", "default_model", "name", "description", "remote_kv")
    if isinstance(pcfg, dict):  # (a misspelled `pools:` is named, not reported missing)
        check_keys(pcfg, valid, "pool")
    pools = _require(pcfg, "pools") if isinstance(pcfg, dict) else None
    if not isinstance(pools, dict) or not pools:
        raise ConfigError("pool.pools must be a mapping of pool name -> pool settings"
                          + (" with at least one pool" if isinstance(pools, dict) else ""))
    specs = [parse_pool(name, d) for name, d in pools.items()]
    spanning = transfer is not None and getattr(transfer, "collectives", None) is not None
    fabric = getattr(transfer, "fabric", None) if transfer is not None else None
    check_pool_sizes(specs, transfer.fabric.cfg.gpus_per_host if spanning else None,
                     fabric.cfg.gpus_per_host if fabric is not None else None)
    if spanning and not any(spans(s.tp, transfer.fabric.cfg.gpus_per_host, scaleup_gpus(s.gpu))
                            for s in specs):
        warn(f"network.collectives=true: no pool's tp exceeds a server's "
             f"{transfer.fabric.cfg.gpus_per_host} GPUs, so no collective crosses the fabric "
             f"(every group's all-reduces stay on its server's GPU link)")
    check_fleet_vs_trace(specs, requests)
    return Fleet(env, specs, sink, pcfg.get("default_model"), hash_block_tokens, transfer,
                 pcfg.get("remote_kv"))


#: `Simulation.run` collects before it freezes once the process's peak memory (KiB) has grown
#: by this much since the last collection (or the first run)
COLLECT_GROWTH_KIB = 256 * 1024
_PEAK_AT_COLLECT: int | None = None


class Simulation:
    """One replay of a workload through a router onto a fleet (see module docstring)."""

    def __init__(self, cfg: dict, trace=None):
        """`trace`: a canonical trace (`TraceColumns` or DataFrame) to replay instead of building
        `cfg['workload']`; `self.trace` holds the replayed one as `TraceColumns`."""

        unknown = sorted(k for k in cfg if k not in RUN_KEYS and k not in OUTPUT_KEYS)
        if unknown:
            raise ConfigError(f"unknown top-level key(s) {unknown}; valid: {', '.join(RUN_KEYS)}")
        self.cfg = cfg
        self.seed = run_seed(cfg.get("seed", 0))
        self.net = dict(cfg.get("network") or {"kind": "none"})
        self.slo = dict(keyed_mapping(_require(cfg, "slo"), ("ttft_s", "tpot_s"), "slo"))
        for k in ("ttft_s", "tpot_s"):  # (NaN compares false with everything: refused too)
            number(f"slo.{k}", self.slo.get(k), lo=0.0, strict_lo=True)
        self.qoe = parse_qoe(cfg.get("qoe", {}))  # absent: the defaults; null: off
        # facility / IT energy: a finite number >= 1 (nan or inf gave null energy and cost)
        self.pue = number("pue", cfg.get("pue", 1.0), lo=1.0, finite=True)
        simcfg = keyed_mapping(cfg.get("sim"), ("horizon_s", "progress", "trace"), "sim")
        # (at most ~3 years: a run steps through its horizon's failures and scrapes, so 1e12 s
        # of random outages never ended)
        self.horizon_s = number("sim.horizon_s", simcfg.get("horizon_s"), lo=0.0,
                                hi=MAX_HORIZON_S, strict_lo=True, finite=True, or_null=True)
        # auto: a line when stderr is a terminal
        self.progress = progress_setting(simcfg.get("progress", "auto"))

        if trace is None:
            from wrpsim.workload.build import build_trace

            trace = build_trace(_require(cfg, "workload"), self.seed)
        trace = as_columns(trace)
        self.beyond_horizon = 0
        if self.horizon_s is not None:  # requests arriving after the horizon are not replayed
            keep = replayable(trace, self.horizon_s)  # (dependent rounds: wrpsim.sessions)
            self.beyond_horizon = int((~keep).sum())
            trace = trace.take(keep)
        self.trace = trace
        self.client_cap = None  # (`_arrivals`: the client's cap on requests in flight)
        self.env = simpy.Environment()
        self.log = RequestLog()
        hbt = int(trace.attrs.get("hash_block_tokens") or 0) if "hash_ids" in trace.columns else 0
        self.fleet = build_fleet(self.env, _require(cfg, "pool"), self.log, hbt,
                                 build_transfer(self.env, self.net, self.seed), len(trace))
        self.fleet.transfer.place(self.fleet)
        if self.qoe is not None:
            for inst in self.fleet.instances:
                inst.qoe = (self.qoe["ttft_s"], self.qoe["tokens_per_s"])
        if "model" in self.trace.columns:
            models = self.trace["model"]
            wanted = sorted({m for m, ok in zip(models, present(models)) if ok})
            missing = [m for m in wanted if m not in self.fleet.models]
            if missing:
                near = same_name(missing[0], self.fleet.models)
                unserved = set(missing)
                lost = [i for i, m in enumerate(models) if m in unserved]
                raise ConfigError(
                    f"workload requests model(s) {missing} that no pool serves (workload.model, "
                    f"workload.model_mix or the trace's model column): {len(lost):,} of "
                    f"{len(models):,} requests, the first at {trace['arrival_s'][lost[0]]:,.3f} "
                    f"s; the fleet serves: {', '.join(self.fleet.models)}"
                    + (f"; did you mean {near}?" if near else
                       "; workload.model=NAME sends every request to one model"))
        if "outcomes" in self.trace.columns:
            self._warn_outcomes()
        rcfg = _require(cfg, "router")
        self.view_spec, service = router_deployment(rcfg)
        self.router = build_router(rcfg)
        service = service.resolve(self.router)
        self.feed = ViewFeed(self.env, self.fleet, self.view_spec, hbt,
                             scrape=self.router.reads_load)
        self.service = RouterService(service)
        if is_user_router(self.router):  # read-only view (`FleetView.guard`)
            self.feed.view.guard(self.router.reads_load)
        self.router.bind(self.feed.view, stream(self.seed, "router")
                         if self.router.draws_random else None)
        if getattr(self.router, "needs_prefix_ids", False):
            self._warn_no_prefixes(rcfg, hbt)
        if getattr(self.router, "needs_session_ids", False):
            self._warn_no_sessions(rcfg)
        if getattr(self.router, "chooses_models", False) and len(set(self.fleet.models)) == 1:
            name = rcfg.get("name") or getattr(self.router, "name", "")
            warn(f"the {name} router chooses which model answers, and the fleet serves one "
                 f"({self.fleet.models[0]}): every call goes to it, so its quality, cost and "
                 f"escalations compare nothing (pair it with a fleet of several models, e.g. "
                 f"pool=two-model-mixtral-gpt4like)")
        named = getattr(self.router, "named_categories", None)
        if named is not None:
            self._warn_unknown_categories(
                named(), typos_only=getattr(self.router, "categories_may_be_absent", False))
        if hbt:
            self._warn_image_prefixes()
        self.cache = None
        cache_spec = CacheSpec.parse(rcfg.get("cache") if isinstance(rcfg, dict) else None)
        if cache_spec is not None and cache_spec.hit_model == "trace":
            col = self.trace["semantic_cluster"] if "semantic_cluster" in \
                self.trace.columns else []
            if all(v is None or v != v for v in col):  # absent, or every value null / NaN
                raise ConfigError("router.cache.hit_model: trace needs the trace's "
                                  "semantic_cluster column, which this workload has no value "
                                  "in (0 hits would follow; docs/routers.md, 'The semantic "
                                  "cache', shows a trace with one); valid choices: curve")
        if cache_spec is not None:  # (its per-category settings, reusable across workloads)
            self._warn_unknown_categories(
                {f"cache.{k}": set(getattr(cache_spec, k)[1]) for k in
                 ("hit_rate", "threshold", "false_hit")}, typos_only=True)
            qoe = None if self.qoe is None else (self.qoe["ttft_s"], self.qoe["tokens_per_s"])
            self.cache = SemanticCache(cache_spec, stream(self.seed, "router.cache"), qoe)
        self.tracer = None
        if boolean("sim.trace", simcfg.get("trace"), False):
            from wrpsim.metrics.trace import Tracer

            self.tracer = Tracer()
            for inst in self.fleet.instances:
                inst.tracer = self.tracer
        self.failures = None
        if cfg.get("failures"):  # null or {}: no failures
            from wrpsim.failures import FailureInjector

            last = float(np.max(trace["arrival_s"])) if len(trace) else 0.0
            self.failures = FailureInjector(self.env, self.fleet, self.log, cfg["failures"],
                                            self.seed, self.horizon_s or last)
        self.dispatcher = Dispatcher(self.env, self.fleet, self.router, self.log, len(trace),
                                     self.failures, self.feed, self.service, self.cache)

    def _arrivals(self, requests, progress):
        """Dispatch `requests` at their arrival times, in order (`Arrivals`), through the
        client's cap on requests in flight where the trace has one (`ClientCap`)."""
        cap = self.trace.attrs.get(MAX_IN_FLIGHT_ATTR)
        dispatch = self.dispatcher.dispatch
        if cap is not None:
            self.client_cap = ClientCap(self.env, self.fleet, self.log, dispatch, int(cap))
            dispatch = self.client_cap.offer
        Arrivals(self.env, requests, dispatch, progress)

    def _warn_no_prefixes(self, rcfg: dict, hbt: int) -> None:
        """A prefix-scoring router (`needs_prefix_ids`) on a fleet that caches no prefixes or a
        workload without prefix-hash ids matches 0 everywhere: it routes on load alone."""
        name = rcfg.get("name") or "prefix-aware"
        if not any(s.prefix_cache for s in self.fleet.specs):
            warn(f"router={name} on a fleet where no pool caches prefixes "
                 f"(pool.pools.<name>.prefix_cache.enabled=false): every prefix match is 0, so "
                 f"it routes on load alone")
        elif not hbt:
            warn(f"router={name} on a workload without prefix-hash ids (hash_ids): every "
                 f"prefix match is 0, so it routes on load alone (give it ids: "
                 f"workload.prefix_ids=synthetic or session, or a trace that has them, e.g. "
                 f"workload=mooncake-conversation)")

    def _warn_image_prefixes(self) -> None:
        """Requests with images on a pool that caches prefixes match cached blocks by their
        text hash ids alone; vLLM also hashes the images into the blocks after them (not
        modelled), so their hits may be optimistic."""
        if "images" not in self.trace.columns or not any(s.prefix_cache
                                                          for s in self.fleet.specs):
            return
        n = int(np.count_nonzero(np.nan_to_num(np.asarray(self.trace["images"],
                                                          dtype=np.float64)) > 0))
        if n:
            warn(f"{n:,} requests carry images and are matched against the prefix cache by "
                 f"their text hash ids alone; vLLM also hashes the images into the blocks "
                 f"after them (not modelled here), so their cache hits may be optimistic")

    def _warn_outcomes(self) -> None:
        """Outcomes name the models whose answers they score. When they name models no pool
        serves (`gpt-4` for the fleet's `gpt4-class`), the served models they miss have their
        answers left out of `quality` (`wrpsim.metrics.quality`), and when they name no served
        model `quality` is null: say so before the run, not after it. (Outcomes that name only
        served models may leave some out on purpose, e.g. a guard model's.)"""
        named = {m for o in self.trace["outcomes"] if isinstance(o, dict) for m in o}
        served = list(self.fleet.models)
        unknown = sorted(m for m in named if m not in served)
        unscored = [m for m in served if m not in named]
        if not unknown or not unscored:
            return
        near = {m: same_name(m, unscored) for m in unknown}
        hint = "; ".join(f"{m} -> {c}?" for m, c in near.items() if c)
        hint = f" ({hint})" if hint else ""
        if len(unscored) == len(served):
            warn(f"the workload's outcomes name {', '.join(sorted(named))}, none of which a "
                 f"pool serves ({', '.join(served)}): no answer can be scored and quality "
                 f"will be null{hint}")
            return
        warn(f"the workload's outcomes name {', '.join(unknown)}, which no pool serves, and "
             f"never name {', '.join(unscored)}: answers from "
             f"{'it' if len(unscored) == 1 else 'them'} are left out of quality{hint}")

    def _warn_no_sessions(self, rcfg: dict) -> None:
        """A session-keyed router (`needs_session_ids`) on a trace without `session_id` has no
        session to keep together: it routes every request to the least outstanding instance."""
        col = self.trace["session_id"] if "session_id" in self.trace.columns else []
        if not present(col).any():
            name = rcfg.get("name") or "session-affinity"
            warn(f"router={name} on a workload without session ids (session_id): there is no "
                 f"session to keep on one instance, so it routes every request to the least "
                 f"outstanding one (use a trace that has them, e.g. workload=chat-sessions)")

    def _warn_unknown_categories(self, named: dict, typos_only: bool = False) -> None:
        """One warning per router field naming categories no request of the trace has (a typo
        would match nothing, silently): the names, the trace's categories, the nearest one.
        Nothing for a trace without categories (every request's is then None). `typos_only`:
        for settings written for many workloads (a rule file, the cache's per-category
        values), where a category absent from this one is normal: only names close to one of
        its categories are said: the same but for case and punctuation, or one or two
        characters off ('cod' for 'code'; MMLU subjects sharing words are not)."""
        from wrpsim.errors import did_you_mean, slip_of

        col = self.trace["category"] if "category" in self.trace.columns else []
        have = {str(c) for c in col if c is not None and c == c}
        if not have:
            return
        for field, cats in named.items():
            unknown = sorted(str(c) for c in cats if str(c) not in have
                             and (not typos_only or slip_of(str(c), have) is not None))
            if unknown:
                shown = sorted(have)
                warn(f"router.{field} names categor{'y' if len(unknown) == 1 else 'ies'} no "
                     f"request of the workload has: {', '.join(unknown)}; its categories: "
                     f"{', '.join(shown[:12])}{', …' if len(shown) > 12 else ''}"
                     f"{did_you_mean(unknown[0], shown)}")

    def run(self) -> tuple:
        """Simulate; return (requests table, instances table, duration_s).

        The objects that exist before the run (the modules, the config, the fleet) are frozen
        out of the garbage collector's sight while it runs (`gc.freeze`), so a full collection
        during the run does not traverse them all (it did once per default run: ~3 % of its
        time); they are unfrozen after, unless the caller had frozen objects itself. A collector
        the console entry paused for start-up (`wrpsim.app.pause_gc`) is resumed first. (The
        young generation keeps CPython's threshold: at 50,000 the ~80 young collections of a
        default run, ~12 ms, did not happen at all, but a million-request run took 2-3 % longer,
        its older generations collected in larger, cache-unfriendly batches.) In a process that
        runs one simulation after another (a fit, a validation, a plan's search, a test session)
        an earlier run's simulation, garbage by now, is frozen with the rest, and unfrozen
        objects join the oldest generation without counting toward its next collection, so
        run after run none came (~13 MB a run of an ML.ENERGY replay stayed: 24 GiB in a fit):
        a run whose process's peak memory has grown by `COLLECT_GROWTH_KIB` since the last
        collection collects first. The garbage kept is then bounded by that, and a full pass
        is paid only as memory grows, not before every run (a pass over all of a large
        process's objects, a test worker's, each time)."""
        global _PEAK_AT_COLLECT
        resume_gc()
        freeze = not gc.get_freeze_count()
        if freeze:
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            if _PEAK_AT_COLLECT is None:  # (the first run: nothing earlier to collect)
                _PEAK_AT_COLLECT = peak
            elif peak > _PEAK_AT_COLLECT + COLLECT_GROWTH_KIB:
                gc.collect()
                _PEAK_AT_COLLECT = peak
            gc.freeze()
        try:
            return self._run()
        finally:
            if freeze:
                gc.unfreeze()

    def _run(self) -> tuple:
        self.sessions = SessionDriver.for_trace(self.env, self.fleet, self.log,
                                                self.dispatcher.dispatch, self.trace)
        requests = self.sessions.open_loop
        progress = Progress.maybe(self.progress, self.horizon_s or self.sessions.last_open_s)
        self._arrivals(requests, progress)
        if self.horizon_s is not None:
            self.env.run(until=self.horizon_s)
            end = float(self.horizon_s)
        else:
            env, feed, failures = self.env, self.feed, self.failures
            if not feed.ticking and failures is None:
                run_all(env)
            else:  # the view's scrapes and outages to come alone do not prolong the run
                base = 1 if feed.ticking else 0
                while len(env._queue) > base + (failures.pending if failures else 0):
                    env.step()
            end = float(self.env.now)
        if progress:
            progress.close(end)
        self.beyond_horizon += self.sessions.not_sent  # dependent rounds never sent
        if self.client_cap is not None:  # requests the client still held
            self.beyond_horizon += self.client_cap.not_sent
        return self.log_remaining(end)

    def log_remaining(self, end: float) -> tuple:
        """Record requests still in the system at `end`; build the two result tables."""
        from wrpsim.pool.handoff import SENT
        from wrpsim.pool.sequence import Seq

        rows = []
        for inst in self.fleet.instances:
            # a horizon cuts the stretch in progress: the steps of a decode run that ended by
            # `end` count (busy time, tokens, the decoders' share), the one in progress does
            # not, and trace.json's slice ends with them (no-op when the run drained)
            inst.cut_off(end)
            inst.settle()
            for seq in [*inst.waiting, *inst.running.values(), *inst.waiting_handoffs()]:
                self.log.in_flight(seq, inst)
            spec = next(s for s in self.fleet.specs if s.name == inst.pool)
            cap = inst.kv.capacity
            rows.append((
                inst.pool, inst.index, spec.gpu, spec.model, inst.tp, inst.busy_s,
                inst.busy_s / end if end > 0 else 0.0, _budget_use(inst),
                inst.iterations, inst.prefill_tokens, inst.decode_tokens,
                inst.decode_iterations, inst.completed, inst.handed_off, inst.kv_sent_bytes,
                inst.preemptions, cap,
                inst.kv.peak,
                inst.kv.occupancy_integral(end) / (cap * end) if end > 0 else 0.0,
                *_tier_stats(inst),
                inst.energy_until(end), spec.price_per_gpu_hour,
                inst.in_system_integral(end) / end if end > 0 else 0.0,
                inst.failures, inst.downtime(end), spec.engine,
                getattr(inst.latency, "calibration", "constant latency")
                + self.fleet.kv_notes.get(inst.pool, ""),
            ))
        for inst in self.fleet.instances:  # KV on its way to a decode instance: the row
            # carries the GPU time, energy and cost its prefill already took
            for seq in list(inst.incoming.values()):
                if seq.xfer == SENT:
                    self.log.in_flight(seq, None)
        for req in list(self.log.open.values()):  # between instances when the run ended
            self.log.in_flight(Seq(req), None, sent=False)  # (routing or backing off)
        table = self.log.take_table()
        if self.cache is not None:
            table = self.cache.columns(table)
        return table, instance_table(rows), end


def _budget_use(inst) -> float:
    """Mean tokens per iteration over the scheduler's token budget (0 without iterations);
    from the instance's running token and iteration counters, so nothing per iteration is kept.
    Prefill tokens count when their iteration starts, so at most 1 (an iteration cut by the
    horizon)."""
    if not inst.iterations:
        return 0.0
    tokens = inst.prefill_tokens + inst.decode_tokens
    return min(1.0, tokens / (inst.iterations * inst.sched.token_budget))


def _tier_stats(inst) -> tuple:
    """prefix_cache_blocks, kv_dram_capacity_blocks, kv_dram_peak_blocks, kv_load_blocks."""
    cache = inst.prefix
    if cache is None:
        return 0, 0, 0, 0
    dram = cache.dram
    return (cache.size_blocks, dram.capacity if dram else 0, dram.peak if dram else 0,
            inst.kv_load_blocks)


def with_trace_ids(req_t, trace):
    """The requests table `req_t` with a last column `trace_request_id` — the replayed trace's
    own id of each request (its `trace_request_id` column), a router's follow-up call taking
    its root's (`parent_id` followed back to a row of the trace) — when the trace has ids;
    `req_t` as it is otherwise."""
    import pyarrow as pa

    if "trace_request_id" not in trace.columns:
        return req_t
    ids = np.asarray(trace["trace_request_id"], dtype=object)
    rid = req_t.column("request_id").to_numpy()
    parent = dict(zip(rid.tolist(), req_t.column("parent_id").to_pylist()))
    n = len(ids)

    def root(i: int) -> int:
        while i >= n and parent.get(i) is not None:
            i = parent[i]
        return i

    col = pa.array([None if (j := root(i)) >= n or ids[j] is None else str(ids[j])
                    for i in rid.tolist()], type=pa.string())  # (a frame given as is: text)
    return req_t.append_column(pa.field("trace_request_id", pa.string()), col)


def run(cfg: dict, out_dir: Path | str, trace=None) -> dict:
    """Run one scenario and write its result files into `out_dir`; return the summary.

    `requests.parquet` and `tasks.parquet` are written on threads (`wrpsim.io.Background`:
    Arrow's encoder releases the GIL) while the summary is computed and the smaller files are
    written, under hidden names until all succeeded; `summary.json` comes last, once every other
    file is complete; a write's error is raised here as it would be without the threads, and a
    run that fails leaves neither table (next to an earlier run's files in a reused folder).

    `trace` optionally replaces the configured workload by a canonical trace (`TraceColumns` or
    DataFrame).
    """
    t0 = time.perf_counter()
    sim = Simulation(cfg, trace)
    req_t, inst_t, end = sim.run()
    req_t = with_trace_ids(req_t, sim.trace)
    out = Path(out_dir)
    with Background() as files:  # (the large tables written while the summary is computed)
        files.start_file(write_parquet, req_t, out / "requests.parquet")
        summary, network = _summary(cfg, sim, req_t, inst_t, end, files, out)
        summary["sim_wall_s"] = time.perf_counter() - t0
        if network is not None:
            fabric = sim.fleet.transfer.fabric
            write_json(out / "network.json", network)
            links = fabric.link_table(end)
            if links is not None:
                write_parquet(links, out / "network.parquet")
        write_parquet(inst_t, out / "instances.parquet")
        rt = routing_table(sim.router)  # None for routers that keep no decision log
        if rt is not None:
            write_parquet(rt, out / "routing.parquet")
        clean = {k: v for k, v in cfg.items() if k not in OUTPUT_KEYS}
        write_text(out / "config.yaml", config_yaml(clean))
        if sim.tracer is not None:
            sim.tracer.write(out / "trace.json")
    write_json(out / "summary.json", summary)  # (last: every other file is complete)
    return summary


def _summary(cfg: dict, sim, req_t, inst_t, end: float, files,
             out: Path) -> tuple[dict, dict | None]:
    """The run's summary (`run`) and its fabric's figures (None without a fabric); starts
    `tasks.parquet`'s write on `files` as soon as its table exists."""
    summary = summarize(req_t, inst_t, end, sim.slo, sim.pue, sim.qoe)
    answers = getattr(sim.router, "answers", None)
    if sim.cache is not None and sim.cache.answers:  # false hits score 0
        answers = {**(answers or {}), **sim.cache.answers}
    summary.update(quality_summary(req_t, inst_t, sim.trace, sim.fleet.specs, sim.pue, end,
                                   answers=answers,
                                   judged=getattr(sim.router, "judged_quality", None)))
    summary["requests_beyond_horizon"] = sim.beyond_horizon
    if sim.failures is not None:
        summary.update(sim.failures.summary(end))
    else:  # (the same keys with failures off: a sweep over failures on / off compares them)
        from wrpsim.failures import failure_summary

        summary.update(failure_summary(0, 0.0, len(sim.fleet.instances), end))
    tasks_t = task_table(req_t, sim.trace)
    files.start_file(write_parquet, tasks_t, out / "tasks.parquet")
    summary.update(task_summary(tasks_t))
    stores = sim.fleet.remote_stores.values()
    summary["remote_kv_peak_blocks"] = sum(s.peak for s in stores)
    summary["remote_kv_loaded_blocks"] = sum(s.loaded_blocks for s in stores)
    summary["seed"] = sim.seed
    from wrpsim.workload.build import workload_label

    summary["workload"] = workload_label(cfg.get("workload") or {})
    summary["pool"] = str(cfg["pool"].get("name", ""))
    summary["calibration"] = {
        name: getattr(lat, "calibration", "constant latency") + sim.fleet.kv_notes.get(name, "")
        for name, lat in sim.fleet.latency.items()}
    summary["router"] = getattr(sim.router, "name", type(sim.router).__name__)
    v = sim.view_spec
    summary["router_view"] = v.label
    summary["router_view_kind"] = v.kind
    summary["router_view_interval_s"] = v.interval_s if v.kind == "scrape" else None
    summary["router_view_delay_s"] = v.delay_s if v.kind == "scrape" else None
    reads = getattr(sim.router, "oracle_reads", ())
    if reads:  # only then: summaries of real routers keep their keys
        summary["router_oracle"] = (f"upper bound: the router read the ground truth "
                                    f"({', '.join(reads)})")
    summary.update(sim.service.summary(end))
    summary.update(sim.router.summary_figures())
    if sim.cache is not None:
        summary.update(sim.cache.summary(req_t, summary.get("quality_requests"), end))
    fabric = getattr(sim.fleet.transfer, "fabric", None)
    network = fabric.figures(end) if fabric is not None else None
    if network is not None:
        summary.update(network_headline(network))
        _warn_empty_window(network, end)
    from wrpsim.sanity import warn_past_validated_batch

    warn_past_validated_batch(inst_t, sim.fleet.specs)
    return summary, network


def _plain(x) -> bool:
    """True for a tree of dicts with string keys, lists, and str / int / float / bool / None
    leaves, no string holding an interpolation (`${`) or OmegaConf's missing value (`???`)."""
    t = type(x)
    if t is dict:
        return all(type(k) is str and _plain(v) for k, v in x.items())
    if t is list:
        return all(_plain(v) for v in x)
    if t is str:
        return "${" not in x and x != "???"
    return t in (int, float, bool) or x is None


def config_yaml(clean: dict) -> str:
    """`OmegaConf.to_yaml(OmegaConf.create(clean))`, the text of config.yaml. A plain tree
    (`_plain`: what a composed config gives) comes back from OmegaConf's nodes unchanged, so it
    is dumped as it is, with the same YAML call `to_yaml` makes, over libyaml's emitter
    (`wrpsim.yamlfast.omegaconf_dumper`: the same text; ~0.5 instead of ~5 ms); anything else
    goes through OmegaConf."""
    if _plain(clean):
        import yaml

        from wrpsim.yamlfast import omegaconf_dumper

        return yaml.dump(clean, default_flow_style=False, allow_unicode=True, sort_keys=False,
                         Dumper=omegaconf_dumper())
    from omegaconf import OmegaConf

    return OmegaConf.to_yaml(OmegaConf.create(clean))


def _warn_empty_window(net: dict, end: float) -> None:
    """A `network.packet_window` in which no transfer started ran no packet: say so (a window
    after the run's end, or between its transfers, is allowed but is likely a mistake)."""
    window = net.get("packet_window")
    if window is None or net.get("window_transfers"):
        return
    t0, t1 = window
    span = f"[{t0:g}, {'inf' if t1 is None else format(t1, 'g')}]"
    where = (f"it starts after the run ended ({end:,.1f} s simulated)" if t0 >= end else
             "no KV transfer or collective started in it")
    warn(f"network.packet_window={span}: {where}, so the packet engine never ran and every "
         f"transfer was fluid")


def network_headline(net: dict) -> dict:
    """The `network_*` keys of summary.json from a fabric's figures (`Fabric.figures`; the
    whole of them goes to network.json): bytes moved, in all and by traffic class (`kv`:
    KV-cache transfers, `collective`: inter-server collectives of spanning instances), flows,
    flow completion times, the busiest link, the busiest link of the spine tier, and the packet
    engine's loss / reorder counters when it ran."""
    util = net.get("link_utilization", {})
    by_class = net["bytes_by_class"]
    out = {
        "network_kind": net["kind"], "network_bytes": net["bytes_moved"],
        "network_kv_bytes": by_class["kv"], "network_collective_bytes": by_class["collective"],
        "network_flows": net["flows"], "network_mean_fct_s": net["mean_fct_s"],
        "network_p99_fct_s": net.get("p99_fct_s"), "network_max_fct_s": net["max_fct_s"],
        "network_p99_transfer_s": net.get("p99_transfer_s"),
        "network_max_link_utilization": max((u["max"] for u in util.values()), default=0.0),
        "network_leaf_up_utilization_mean": util.get("leaf_up", {}).get("mean"),
        "network_leaf_up_utilization_max": util.get("leaf_up", {}).get("max"),
        "network_down_ports": net["down_ports"], "network_degraded_ports": net["degraded_ports"],
    }
    for k in ("drops", "trims", "retransmits", "out_of_order_packets", "ecn_marks"):
        if k in net:
            out[f"network_{k}"] = net[k]
    return out


def fail(msg: str) -> None:
    """Print a user error without a traceback and exit with status 2."""
    print(f"wrpsim: error: {msg}", file=sys.stderr)
    raise SystemExit(2)
