"""The pure core of `python -m wrpsim.plan`: config in, the cheapest fleet meeting the SLO out.

`run_plan(cfg, out_dir, trace=None, progress=None)` takes the composed `conf/plan.yaml` as a plain
dict (the run keys of `conf/config.yaml` without `pool`, plus `plan`) — and optionally a callable
told of every simulation (`wrpsim.plan.progress.PlanProgress`, what the CLI shows) — and:

1. builds the traces: `full` (the workload with `seed`), `search` (the busiest
   `plan.search_window_s` of it, or the full trace), `recheck` (the workload rebuilt with
   `plan.recheck_seed`, default seed + 1, its requests shuffled within
   `plan.recheck_shuffle_window_s` windows), `load-<f>` (the full trace at 1 ± x load);
2. sizes every candidate analytically (`estimate`) and drops candidates that cannot meet a
   latency target at any count (their floor exceeds it);
3. searches (`search`: bisection per candidate, coordinate descent over mixes and P:D ratios)
   with common random numbers: one seed, one trace for every candidate;
4. verifies (`verify`): the chosen fleet on the full trace, then on the fresh-seed recheck —
   adding instances when either fails — then one instance fewer, then ±x % load;
5. writes `plan.json` (also returned), `candidates.parquet`, `report.html` and `report.md`
   (`write_outputs`).

An SLO no fleet meets is a result, not an error: `slo_met` is false, `fleet` the closest fleet
found and `message` says what misses. Bad config raises `ConfigError`.
"""

from __future__ import annotations

import time
from pathlib import Path

from wrpsim.errors import ConfigError, number
from wrpsim.plan import estimate, verify
from wrpsim.plan.config import parse_plan
from wrpsim.plan.evaluate import Evaluator, TraceRun
from wrpsim.plan.record import plan_record
from wrpsim.plan.search import Search
from wrpsim.plan.slo import SLOTargets
from wrpsim.plan.traces import (
    busiest_window,
    closed_loop_clients,
    describe,
    scale_load,
    scaled_clients,
    shuffle_within,
)
from wrpsim.sanity import run_seed

#: the largest seed candidates.parquet's 64-bit seed column holds
MAX_SEED = 2**63 - 1

PLAN_TOP_KEYS = ("workload", "router", "network", "seed", "slo", "pue", "sim", "plan",
                 "experiment", "json", "hydra")  # json: a printing flag, not used here
BASE_KEYS = ("router", "network", "slo", "pue", "sim")
PLAN_JSON, CANDIDATES, FLEET_YAML = "plan.json", "candidates.parquet", "fleet.yaml"
REPORT_HTML, REPORT_MD = "report.html", "report.md"


def build_traces(cfg: dict, plan, seed: int, trace=None) -> dict:
    """The named traces of a plan (module docstring, step 1)."""
    from wrpsim.rng import stream
    from wrpsim.workload import build_workload

    def load(s: int):
        if trace is not None:
            return trace
        if not cfg.get("workload"):
            raise ConfigError("config key 'workload' is required")
        return build_workload(cfg["workload"], s)

    full = load(seed)
    if not len(full):
        raise ConfigError("the workload has no requests to plan for")
    n, t0, t1 = describe(full)
    clients = closed_loop_clients(full)
    what = (f"{n} requests from {clients} closed-loop client{'s' * (clients != 1)}" if clients
            else f"{n} requests over {t1 - t0:.0f} s")
    out = {"full": TraceRun("full", full, seed, f"full trace: {what}", t0, t1)}
    w = plan.search_window_s
    if w is not None and w < t1 - t0:
        win = busiest_window(full, w)
        n2, _, _ = describe(win)
        from wrpsim.plan.traces import window_bounds

        lo, hi = window_bounds(full, w)
        out["search"] = TraceRun("search", win, seed, f"busiest {w:g} s window "
                                 f"[{lo:.0f}, {hi:.0f}) s: {n2} requests", lo, hi)
    else:
        out["search"] = TraceRun("search", full, seed, out["full"].description, t0, t1)
    rs = plan.recheck_seed if plan.recheck_seed is not None else seed + 1
    if rs == seed:
        raise ConfigError(f"plan.recheck_seed must differ from seed ({seed}) to be a fresh seed")
    shuffled = shuffle_within(load(rs), plan.recheck_shuffle_window_s, stream(rs, "plan.recheck"))
    sw = plan.recheck_shuffle_window_s
    out["recheck"] = TraceRun("recheck", shuffled, rs, f"workload rebuilt with seed {rs}" + (
        f", requests shuffled within {sw:g} s windows" if sw else ""), *describe(shuffled)[1:])
    s = plan.load_sensitivity
    for f in ((1 - s, 1 + s) if s > 0 else ()):
        tag = f"load-{f:g}"
        c2 = scaled_clients(clients, f, len(full)) if clients else 0
        what = (f"{c2} client{'s' * (c2 != 1)} instead of {clients}" if clients
                else f"{f:g} × load")
        out[tag] = TraceRun(tag, scale_load(full, f), seed, f"full trace at {what}",
                            t0 / f, t1 / f)
    return out


def analyse(plan, stats) -> tuple[dict, dict, dict, list, set]:
    """First guesses, per-instance rates and floors per pool; the candidates that can meet
    the latency targets, and messages for those that cannot."""
    guesses, rates, info = {}, {}, {}
    # candidates that cannot hold the model were left out when the plan was read: listed here
    # with the impossible ones (plan.json `search.impossible`, the reports)
    notes = [f"candidate {name}: does not fit: {why.split(': ', 1)[1]}"
             for name, why in plan.unfit]
    tpot = plan.slo.upper.get("tpot_p99_s") or plan.slo.upper.get("tpot_p90_s")
    for cand in plan.candidates:
        pools = [p for p in plan.pools if p.candidate == cand]
        guesses.update(estimate.first_guess(pools, stats, plan.slo, plan.max_instances))
        for p in pools:
            c = estimate.capacity(p, stats, tpot)
            fl = estimate.floors(p, stats)
            rates[p.name] = (c.prefill_tokens_per_s / max(stats.prompt_mean, 1.0)
                             if p.role == "prefill" else
                             c.batch / (max(stats.output_mean, 1.0) * c.step_s)
                             if p.role == "decode" else c.rate)
            info[p.name] = {"guess": guesses[p.name], "batch": c.batch,
                            "rate_rps": rates[p.name], "floor_ttft_s": fl["ttft"],
                            "floor_tpot_s": fl["tpot"], "kv_tokens": c.kv_tokens}
            for key, bound in sorted(plan.slo.upper.items()):
                kind, pct = key.split("_")[0], key.split("_")[1]
                if pct in ("p50", "p90", "p99") and kind in ("ttft", "tpot") and (
                        (p.role != "decode") if kind == "ttft" else (p.role != "prefill")):
                    at = estimate.floors(p, stats, pct) if kind == "ttft" else fl
                    floor = at[kind]
                    if bound < floor:
                        which = ("the median request" if kind == "tpot" or pct == "p50" else
                                 f"the {pct} prompt ({at['prompt']:,} tokens"
                                 + (" no prefix cache could skip" if at["fresh"] else "") + ")")
                        notes.append(f"candidate {cand}: {key} target {bound:g} s is below "
                                     f"what one {p.name} instance takes alone for {which} "
                                     f"({floor:.4g} s) — impossible at any count; a faster GPU, "
                                     f"more tensor parallelism or a looser target may do")
            allowed = plan.slo.unserved_max * stats.requests
            prompt_only = p.role == "prefill"  # (a prefill instance holds the prompt alone)
            held = "prompt" if prompt_only else "prompt + output"
            big = stats.beyond(c.kv_tokens, prompts=prompt_only)
            if big > allowed:
                notes.append(f"candidate {cand}: {big:,} of the {stats.requests:,} requests "
                             f"need more KV ({held}) than the {c.kv_tokens:,} tokens a {p.name} "
                             f"instance holds — dropped at any count, more than "
                             f"plan.slo.unserved_max ({plan.slo.unserved_max:g}) allows"
                             + _looser(big, stats.requests))
            limit = _context_of(p)
            over = stats.beyond(limit)
            if over > allowed:
                whose = (f"the pool's max_context ({limit:,} tokens)" if p.config.get(
                    "max_context") else f"the {limit:,}-token context of "
                    f"{p.config.get('model')}")
                fix = ("a larger max_context" if p.config.get("max_context")
                       else "a model with a longer context")
                notes.append(f"candidate {cand}: {over:,} of the {stats.requests:,} requests "
                             f"need more than {whose} (prompt + output) — dropped at any count "
                             f"(drop_reason context), more than plan.slo.unserved_max "
                             f"({plan.slo.unserved_max:g}) allows; {fix}"
                             + _looser(over, stats.requests, " or "))
    bad = {n.split(":")[0].removeprefix("candidate ") for n in notes}
    return guesses, rates, info, notes, bad


def _looser(n: int, total: int, lead: str = "; ") -> str:
    """'; unserved_max >= x' when a looser target would take `n` of `total` requests dropped
    (none when all of them are: unserved_max must stay below 1)."""
    return f"{lead}unserved_max >= {n / total:.4f}" if n < total else ""


def _context_of(p) -> int:
    """The context length a pool template's instances enforce: `PoolSpec.max_context` as
    `parse_pool` reads it (its `max_context`, else its model's, none under a constant latency
    model); 0 when there is none or the template does not parse (the run itself refuses it,
    and an estimate must not fail first)."""
    from wrpsim.errors import ConfigError
    from wrpsim.plan.config import quiet_pool

    try:
        return int(quiet_pool(p.name, p.config).max_context or 0)
    except ConfigError:
        return 0


def best_effort(ev, plan, stats, cand: str, limit: int = 6) -> None:
    """For a candidate that cannot meet the SLO at any count: simulate its load-only first
    guess, then double it (up to `max_instances`, at most `limit` times) while that brings its
    worst margin at least 0.05 closer (5 % of a latency target), so the closest fleet reported
    is not just the first guess."""
    pools = [p for p in plan.pools if p.candidate == cand]
    g = estimate.first_guess(pools, stats, SLOTargets(), plan.max_instances)
    idx = {i: g[p.name] for i, p in enumerate(plan.pools) if p.candidate == cand}
    counts = _placeable(ev, tuple(idx.get(i, 0) for i in range(len(plan.pools))))
    if counts is None:  # not even one instance per pool fits the fabric: nothing to simulate
        return
    margin = verify.worst_margin(ev, counts, ["search"], "best-effort")
    for _ in range(limit):
        more = tuple(min(2 * c, plan.max_instances) for c in counts)
        if more == counts or ev.invalid(more):
            return
        m = verify.worst_margin(ev, more, ["search"], "best-effort")
        if not m > margin + 0.05:  # 5 % of a latency target closer, or stop
            return
        counts, margin = more, m


def _placeable(ev, counts: tuple) -> tuple | None:
    """`counts`, halved (each pool in the fleet keeping at least one instance) until the
    fleet fits the run's network fabric (`Evaluator.invalid`); None when even that does not."""
    while ev.invalid(counts):
        if max(counts) <= 1:
            return None
        counts = tuple(max(1, c // 2) if c else 0 for c in counts)
    return counts


def _warn_unused_thresholds(cfg: dict, plan) -> None:
    """`slo.ttft_s` / `slo.tpot_s` are the per-request thresholds behind SLO attainment (as in
    `python -m wrpsim`); the plan's targets are `plan.slo.*`. Set away from the defaults while
    no attainment target reads them, they would change nothing: say so."""
    if plan.slo.attainment_min is not None:
        return
    from wrpsim.cli import load_defaults
    from wrpsim.errors import warn

    defaults = load_defaults("config").get("slo") or {}
    changed = [f"slo.{k}={v}" for k, v in (cfg.get("slo") or {}).items()
               if k in ("ttft_s", "tpot_s") and v != defaults.get(k)]
    if changed:
        warn(f"{' '.join(changed)} is the per-request threshold behind SLO attainment, which "
             f"this plan does not target (plan.slo.attainment_min is null): the plan's targets "
             f"are plan.slo.ttft_p99_s / tpot_p99_s (e.g. plan.slo.ttft_p99_s=1.0), or set "
             f"plan.slo.attainment_min to use the thresholds")


def run_plan(cfg: dict, out_dir: Path | str, trace=None, progress=None,
             router_choice: str | None = None) -> dict:
    """Plan, write the result files into `out_dir`, return plan.json's content;
    `router_choice`: the `router=` option Hydra composed (plan.json names the router by it)."""
    t_start = time.perf_counter()
    if "pool" in cfg:
        raise ConfigError("plan: the pool group is replaced by plan.candidates "
                          "(pool templates without count); remove pool=…")
    unknown = sorted(k for k in cfg if k not in PLAN_TOP_KEYS)
    if unknown:
        raise ConfigError(f"unknown top-level key(s) {unknown}; valid: "
                          f"{', '.join(k for k in PLAN_TOP_KEYS if k != 'hydra')}")
    for key in ("slo", "sim", "plan"):  # a scalar where a section belongs (slo=2)
        if cfg.get(key) is not None and not isinstance(cfg[key], dict):
            raise ConfigError(f"{key} must be a mapping (conf/"
                              f"{'plan' if key == 'plan' else 'config'}.yaml), got {cfg[key]!r}")
    if (cfg.get("sim") or {}).get("horizon_s") is not None:
        # every fleet would leave the requests arriving near the horizon unfinished, so the
        # unserved target would fail for every fleet and blame its size
        raise ConfigError("plan: sim.horizon_s must be null: a plan judges each fleet on whole "
                          "traces (requests cut off by a horizon count as unserved for every "
                          "fleet); shorten the workload with workload.max_requests or "
                          "workload.end_s, or the search with plan.search_window_s")
    slo = cfg.get("slo") or {}
    for k in ("ttft_s", "tpot_s"):  # (plan.json records them: inf stopped its writing)
        if k in slo:
            number(f"slo.{k}", slo[k], lo=0.0, strict_lo=True, finite=True)
    shown, plan = _shown(parse_plan, cfg.get("plan"))  # (simulations do not repeat them)
    _warn_unused_thresholds(cfg, plan)
    seed = run_seed(cfg.get("seed", 0))
    top = MAX_SEED if plan.recheck_seed is not None else MAX_SEED - 1  # (the recheck's seed + 1)
    if seed > top:
        why = "" if plan.recheck_seed is not None else "; the recheck's default is seed + 1"
        raise ConfigError(f"seed must be an integer in [0, {top}] for a plan "
                          f"(candidates.parquet holds the seeds as 64-bit integers{why}), got "
                          f"{seed!r}")
    base = {k: cfg[k] for k in BASE_KEYS if k in cfg}
    # (the planner shows its own progress; a value the simulator refuses passed unread, while
    # auto and null, which it takes, stay valid here too)
    from wrpsim.sim import progress_setting

    progress_setting((cfg.get("sim") or {}).get("progress", False))
    base["sim"] = {**(cfg.get("sim") or {}), "progress": False}
    traces = build_traces(cfg, plan, seed, trace)
    stats = estimate.trace_stats(traces["search"].frame)
    tpot_keys = [k for k in plan.slo.upper if k.startswith("tpot_")]
    if tpot_keys and int(traces["full"].frame["output_tokens"].max()) <= 1:
        raise ConfigError(f"plan.slo.{tpot_keys[0]}: every request of the workload has one "
                          f"output token, so no time per output token is measured and no "
                          f"fleet can meet a TPOT target; set plan.slo.{tpot_keys[0]}=null")
    from dataclasses import replace

    # more instances of a pool than requests can serve nothing more: a target no count meets
    # (an end-to-end bound under a request's own decode time) is not searched for beyond that
    full_n = len(traces["full"].frame)
    if plan.max_instances > full_n:
        plan = replace(plan, max_instances=max(1, full_n))
    guesses, rates, info, notes, bad = analyse(plan, stats)

    ok_cands = tuple(c for c in plan.candidates if c not in bad)
    ev = Evaluator(base, plan.pools, plan.slo, traces, plan.max_evaluations)
    ev.warned.update(shown)
    ev.on_eval = progress  # e.g. wrpsim.plan.progress.PlanProgress (the CLI's)
    if traces["search"].frame is traces["full"].frame:
        ev.alias["full"] = "search"
    search = Search(ev, replace(plan, candidates=ok_cands), guesses, rates)
    t0 = time.perf_counter()
    best = search.run() if ok_cands else None
    timing = {"search_s": time.perf_counter() - t0}
    feasible = best is not None
    if not feasible:
        rows = [e for e in ev.rows if e.trace == "search" and e.summary]
        if not rows:  # nothing simulated (every candidate impossible): best-effort fleets
            ev.stage = "best-effort"
            for cand in plan.candidates:
                best_effort(ev, plan, stats, cand)
            rows = [e for e in ev.rows if e.trace == "search" and e.summary]
        if not rows:
            raise ConfigError(
                "plan: no fleet of plan.candidates fits the network fabric, not even one "
                "instance per pool (" + "; ".join(search.limits or notes) + "): raise "
                "network.leaves or network.hosts_per_leaf, or plan a smaller tp")
        # the closest of every fleet evaluated on the search trace
        best = max(rows, key=lambda e: (verify.worst_margin(ev, e.counts, ["search"], "x"),
                                        [-c for c in e.counts])).counts
    t0 = time.perf_counter()
    ev.stage = "checks"
    checks = verify_plan(ev, plan, best, feasible, traces)
    timing["verify_s"] = time.perf_counter() - t0
    warn_planned_batch(ev, checks, feasible)
    record = plan_record(ev, plan, cfg, checks, search, info, notes, traces, feasible,
                         router_choice)
    timing["total_s"] = time.perf_counter() - t_start
    timing["simulations"] = len(ev.rows) + ev.reruns
    write_outputs(Path(out_dir), ev, plan, record, checks, timing)
    return record


def _shown(fn, *args) -> tuple[set, object]:
    """(the texts of the `WrpsimWarning`s `fn(*args)` issued, its result); the warnings are
    issued as before (`evaluate.reissue`). The evaluator, whose simulations parse the same
    pools again, shows each of its own only once per plan (`Evaluator.warned`); these count
    as shown."""
    import warnings

    from wrpsim.errors import WrpsimWarning
    from wrpsim.plan.evaluate import reissue

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", WrpsimWarning)
        out = fn(*args)
    shown: set = set()
    reissue(caught, shown)
    return shown, out


def verify_plan(ev, plan, best: tuple, feasible: bool, traces: dict) -> dict:
    """Full-trace check, recheck, one fewer, load sensitivity (module docstring, step 4)."""
    out = {"searched": best}
    counts = best
    # keep=True: the plan's own runs keep their tables for the report (no second simulation)
    if feasible and not ev.evaluate(counts, "full", "final", keep=True).slo_met:
        counts = verify.repair(ev, plan, counts, ["full"], "final")
    out["after_full"] = counts
    first = ev.evaluate(counts, "recheck", "recheck", keep=True)
    out["recheck_first_met"] = first.slo_met
    if feasible and not (first.slo_met and ev.evaluate(counts, "full", "final").slo_met):
        counts = verify.repair(ev, plan, counts, ["full", "recheck"], "recheck")
    out["added"] = counts != out["after_full"]  # instances added after the recheck failed
    out["shrunk_from"] = None
    if feasible and not out["added"] and verify.passes(ev, counts, ["full", "recheck"],
                                                        "one-fewer"):
        # a fleet with one instance fewer that meets both traces is the better plan (a search
        # cut short by plan.max_evaluations, or a non-monotone step, can stop above it)
        smaller = verify.shrink(ev, plan, counts, ["full", "recheck"], "one-fewer")
        if smaller != counts:
            out["shrunk_from"], counts = counts, smaller
    out["final"] = counts
    out["full"] = ev.evaluate(counts, "full", "final", keep=True)
    out["recheck"] = ev.evaluate(counts, "recheck", "recheck", keep=True)
    out["one_fewer"] = verify.one_fewer(ev, counts, ["full", "recheck"]) if feasible else []
    sens = []
    for tag in sorted((t for t in traces if t.startswith("load-")),
                      key=lambda t: float(t.removeprefix("load-"))):
        e = ev.evaluate(counts, tag, "sensitivity")
        need = None
        if feasible:
            need = (verify.shrink(ev, plan, counts, [tag], "sensitivity") if e.slo_met else
                    verify.repair(ev, plan, counts, [tag], "sensitivity"))
        ne = ev.evaluate(need, tag, "sensitivity") if need is not None else None
        sens.append({"tag": tag, "eval": e, "needed": need,
                     "needed_met": ne is not None and ne.slo_met,
                     "needed_kwh": ne.summary.get("energy_kwh") if ne is not None else None})
    out["sensitivity"] = sens
    out["violations"] = verify.monotonicity_violations(ev)
    return out


def warn_planned_batch(ev, checks: dict, feasible: bool) -> None:
    """The planned (or, without a feasible plan, the closest) fleet's pools whose busiest
    instance on the full trace ran more than `sanity.VALIDATED_BATCH` decoding sequences a step
    are warned about, as a run's are (`sanity.warn_past_validated_batch`): the plan may
    rest on optimistic decode times. The pools are parsed again for their specs with their
    own warnings muted (the plan showed each once already)."""
    from wrpsim.plan.config import quiet_pool
    from wrpsim.sanity import warn_past_validated_batch

    full = checks["full"]
    if not full.tables:
        return
    specs = [quiet_pool(name, cfg) for name, cfg in ev.fleet_pools(checks["final"]).items()]
    which = "planned" if feasible else "closest"
    warn_past_validated_batch(full.tables[1], specs, f"plan: the {which} fleet's pool")


def fleet_yaml(ev, counts) -> str:
    """The planned (or closest) fleet as a pool file of the `pool` group, named `plan`: copied
    into a catalog's `pools/` folder it replays with `python -m wrpsim pool=plan` and the
    plan's router and workload (report.md says how)."""
    import yaml

    pools = ev.fleet_pools(counts)
    head = (f"# The fleet wrpsim.plan chose ({ev.label(counts)}). To replay it: copy this\n"
            "# file to <catalog>/pools/plan.yaml, then run\n"
            "# WRPSIM_CATALOG=<catalog> python -m wrpsim pool=plan\n"
            "# with the plan's router= and every other run setting of the plan's command\n"
            "# line but its plan.* keys: workload, slo.ttft_s / slo.tpot_s, seed, network\n"
            "# (report.md).\n")
    class Plain(yaml.SafeDumper):  # no &id001 / *id001: the two sides of a disaggregated
        def ignore_aliases(self, data):  # candidate share one scheduler mapping, and a
            return True  # planner editing one side's anchored block would edit both

    return head + yaml.dump({"name": "plan", "pools": pools}, Dumper=Plain, sort_keys=False)


def write_outputs(out: Path, ev, plan, record: dict, checks: dict, timing: dict) -> dict:
    """Write `candidates.parquet`, `report.html` and `report.md` (unless `plan.report` is
    false), then `plan.json` — each atomically; return name -> path. The recommended fleet's
    own run is not written as Parquet: its figures are in the record, its CDFs and utilisation
    in the report."""
    from wrpsim.io import write_json, write_text
    from wrpsim.plan.schemas import candidate_table, write_candidates

    out.mkdir(parents=True, exist_ok=True)
    files = {"plan": out / PLAN_JSON, "candidates": out / CANDIDATES, "fleet": out / FLEET_YAML}
    write_candidates(candidate_table(ev, checks["final"]), files["candidates"])
    write_text(files["fleet"], fleet_yaml(ev, checks["final"]))
    if plan.report:
        from wrpsim.plan.page import render
        from wrpsim.plan.report import markdown, report_data

        data = report_data(ev, record, checks, timing)
        files["report_html"], files["report_md"] = out / REPORT_HTML, out / REPORT_MD
        write_text(files["report_html"], render(data))
        write_text(files["report_md"], markdown(data))
    write_json(files["plan"], record)
    return {k: str(v) for k, v in files.items()}
