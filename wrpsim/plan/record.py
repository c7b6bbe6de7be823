"""`plan.json`: the recommended fleet and the evidence for it, as one deterministic record.

Keys (all figures of the recommended fleet on the full trace with the run's seed unless said):

- `slo_met` (met on the full trace *and* on the fresh-seed recheck), `message` (one sentence);
- `fleet` (one entry per pool with count > 0: pool, candidate, gpu, model, tp, role, count,
  gpus, cost_per_hour_usd, calibration — "uncalibrated: roofline …" for a GPU without kernel
  measurements, as in a run's summary.json, and then `message` says so —, batching: its
  scheduler policy, token budget and sequences, defaults filled in), `fleet_label`,
  `counts` (pool -> count, every planned pool), `uncalibrated` (the planned pools, recommended
  or compared, whose latencies are a roofline estimate);
- `cost_per_hour_usd`, `cost_per_million_output_tokens_usd`, `cost_per_million_tokens_usd`
  (prompt + output), `provisioned_cost_per_1k_requests_usd` (the fleet's hours over the trace
  per thousand of its requests, as a run's summary.json counts it), `energy_kwh` (facility
  energy over the replayed trace), `energy_kwh_per_hour`,
  `gpu_count`, `instance_count`;
- `slo_targets`, `slo_margins` (see `wrpsim.plan.slo`), `metrics` (latency percentiles,
  attainment, throughput, duration);
- `recheck` (seed, trace, slo_met, margins, metrics, `first_met`: whether the searched fleet
  passed before any instance was added, `instances_added`: whether instances were added after
  it failed — never when no fleet met the SLO, whose closest fleet is not repaired),
  `one_fewer` (per pool: its fleet, met per trace, `reason` — why it is not the plan),
  `load_sensitivity` (per load factor: the plan's result, and the fleet
  needed at that load with its USD/h and its energy over that trace, `needed_energy_kwh`);
- `search` (objective, evaluations — distinct fleet × trace runs —, `reruns` (simulations
  repeated only to keep a fleet's request tables for the report), `found` (some fleet met the
  SLO on the search trace), whether the budget sufficed, the traces, phase-1 results per
  candidate and P:D ratio (`same_as`: an earlier ratio that rounded to the same fleet), the
  analytical estimates, monotonicity violations, impossible candidates);
- `router`: the `router=` option the plan simulated, as typed (`least-outstanding`; its class
  path when no option of the catalog matches it), `router_class` its class path (`_target_`).

No wall-clock time or path is recorded, so the same config and seed give a byte-identical file.
"""

from __future__ import annotations

METRICS = ("ttft_p50_s", "ttft_p90_s", "ttft_p99_s", "tpot_p50_s", "tpot_p90_s", "tpot_p99_s",
           "e2e_p50_s", "e2e_p99_s", "queue_wait_mean_s", "ttft_mean_s", "slo_attainment",
           "unserved_frac", "requests_total", "requests_completed", "throughput_tokens_per_s",
           "throughput_prompt_tokens_per_s", "duration_s", "energy_kwh", "mean_utilization",
           "mean_token_budget_use", "mean_kv_use", "mean_decode_batch")


def metrics(summary: dict) -> dict:
    """The plan's subset of a run summary."""
    return {k: summary.get(k) for k in METRICS}


def per_million(cost_per_hour: float, tokens_per_s: float | None) -> float | None:
    """USD per million tokens at a throughput (None when nothing was served)."""
    if not tokens_per_s:
        return None
    return cost_per_hour / (tokens_per_s * 3600.0) * 1e6


def fleet_rows(ev, counts) -> list[dict]:
    """One entry per pool with instances."""
    return [{"pool": p.name, "candidate": p.candidate, "gpu": p.gpu, "model": p.config["model"],
             "tp": p.tp, "role": p.role, "count": n, "gpus": n * p.tp,
             "precision": p.config.get("precision") or "bf16",
             "kv_dtype": p.config.get("kv_dtype") or "auto",
             "cost_per_hour_usd": n * p.price_per_hour_usd, "calibration": p.calibration,
             "batching": p.batching}
            for p, n in zip(ev.pools, counts) if n]


def miss_text(key: str, margin, bound) -> str:
    """'misses tpot_p99_s: 0.104 s against 0.1 s (+4%)' from a (negative) margin."""
    if margin is None:
        return f"{key} undefined (nothing served)"
    if key in ("attainment_min", "unserved_max") or not bound:
        return f"misses {key} by {-margin:.4f}"
    ratio = 1.0 - margin  # value / bound for an upper bound on a latency
    how = f"{ratio:.1f}× the target" if ratio >= 2 else f"+{-margin:.0%}"
    return f"misses {key}: {ratio * bound:.3g} s against {bound:g} s ({how})"


def why_fewer(o: dict, targets: dict) -> str:
    """Why the fleet with one instance fewer is not the plan (or that it would do): plan.json's
    `one_fewer[].reason` and the reports' "why not" cell."""
    if o.get("reason"):
        return str(o["reason"])
    if o.get("slo_met"):
        return "meets the SLO on both traces"
    for t, name in (("full", "full trace"), ("recheck", "recheck")):
        w = o.get(f"worst_{t}")
        if o.get(f"slo_met_{t}") is False and w:
            return f"{miss_text(w['target'], w['margin'], targets.get(w['target']))} ({name})"
    return "misses the SLO"


def uncalibrated_note(pools) -> str:
    """'uncalibrated: roofline for ...' naming the pools (and GPUs) among `pools` whose GPU has
    no kernel measurements — their latencies are a roofline estimate — or ''."""
    rough = [p for p in pools if "uncalibrated" in p.calibration]
    if not rough:
        return ""
    return ("uncalibrated: roofline for " + ", ".join(f"{p.name} ({p.gpu})" for p in rough)
            + ": no kernel measurements for that GPU, so its latencies (and this plan's counts "
            "for it) are a roofline estimate")


def _message(ev, plan, checks, notes, feasible: bool, slo_met: bool, complete: bool,
             limits: list[str] = ()) -> str:
    out = _verdict(ev, plan, checks, notes, feasible, slo_met, complete, bool(limits))
    if limits:  # the fabric, not plan.max_instances, bounded the search
        out += (" The network fabric bounded the search: " + "; ".join(limits)
                + " (raise network.leaves or network.hosts_per_leaf for larger fleets).")
    rough = uncalibrated_note([p for p, n in zip(ev.pools, checks["final"]) if n])
    if rough:
        out += f" Note: {rough}."
    if not complete:
        out += (f" The search stopped at plan.max_evaluations ({plan.max_evaluations}); raise "
                "it for a better answer.")
    return out


def _verdict(ev, plan, checks, notes, feasible: bool, slo_met: bool,
             complete: bool = True, fabric_bound: bool = False) -> str:
    counts, full = checks["final"], checks["full"]
    kwh = full.summary.get("energy_kwh")
    energy = ("" if plan.objective != "energy" or kwh is None
              else f", {kwh:.4g} kWh over the trace")
    g = ev.gpus(counts)
    label = f"{ev.label(counts)} (${ev.cost(counts):.2f}/h, {g} GPU{'s' * (g != 1)}{energy})"
    if not feasible:
        key, m = plan.slo.worst(full.margins) if full.margins else ("?", None)
        impossible = {n.split(":")[0].removeprefix("candidate ") for n in notes}
        searched = [c for c in plan.candidates if c not in impossible]
        cap = (f"at most {plan.max_instances} instances per pool, fewer where the network "
               "fabric bounded the search (below)" if fabric_bound
               else f"at most {plan.max_instances} instances per pool")
        search = (f"no fleet of {cap} met it" if complete
                  else "no fleet simulated before the search budget ran out met it (larger "
                       "fleets were not tried)")
        if searched and notes:
            search = f"of {', '.join(searched)}, {search}"
        why = "; ".join([*notes, *([search] if searched else [])])
        return (f"no fleet meets the SLO: {why}. Closest fleet found: {label}, which misses "
                f"{key} by {_miss_text(key, m)}.")
    rc = checks["recheck"]
    seed_note = (f"re-checked with fresh seed {rc.seed}: met" if checks["recheck_first_met"]
                 else f"re-checked with fresh seed {rc.seed}: the searched fleet "
                      f"{ev.label(checks['after_full'])} failed, instances were added")
    if _same_requests(ev):
        seed_note += (" (the workload draws nothing at random — fixed lengths and arrivals —, "
                      "so the recheck replayed the same requests and adds no evidence)")
    grown = tuple(checks["after_full"]) != tuple(checks["searched"])
    if checks.get("shrunk_from") is not None:
        seed_note += (f"; {ev.label(checks['shrunk_from'])}, where the search stopped, had "
                      f"instances to spare: fewer met both traces")
    if slo_met:
        state = "meets the SLO"
    else:  # which target misses, on which trace (the recheck may have met it)
        miss = [(t, *plan.slo.worst(e.margins)) for t, e in (("full trace", full),
                                                             ("recheck", rc))
                if not e.slo_met and e.margins]
        state = "still misses the SLO after repair" + (
            f" ({miss[0][1]} by {_miss_text(miss[0][1], miss[0][2])} on the {miss[0][0]})"
            if miss else "")
    best = {"cost": "cheapest fleet", "energy": "lowest-energy fleet",
            "gpus": "fewest-GPU fleet"}[plan.objective]
    if not slo_met:
        best = "closest fleet found"
    elif grown:  # the search's best failed the full trace: grown, so maybe not the best there
        best = (f"fleet (the search's {best.split()[0]} on "
                f"{ev.traces['search'].description if 'search' in ev.traces else 'its trace'}, "
                f"{ev.label(checks['searched'])}, failed the full trace and was grown)")
    return f"{best}: {label} {state}; {seed_note}."


def _miss_text(key: str, m) -> str:
    """How far a target is missed, as the verdicts say it."""
    return "undefined" if m is None else f"{-m:.1%}" if key != "attainment_min" else f"{-m:.4f}"


def _same_requests(ev) -> bool:
    """Whether the recheck's trace holds exactly the full trace's requests (evenly spaced
    constant-rate stages or a fixed-length closed loop: a fresh seed changes nothing)."""
    full, re = ev.traces.get("full"), ev.traces.get("recheck")
    try:
        return full is not None and re is not None and full.frame.equals(re.frame)
    except Exception:  # (a frame that does not compare: say nothing)
        return False


def plan_record(ev, plan, cfg: dict, checks: dict, search, info: dict, notes: list,
                traces: dict, feasible: bool, router_choice: str | None = None) -> dict:
    """The plan.json mapping (module docstring); `router_choice`: the command line's
    `router=` option (`router_option`)."""
    counts, full, rc = checks["final"], checks["full"], checks["recheck"]
    s = full.summary
    slo_met = feasible and full.slo_met and rc.slo_met
    dur_h = (s.get("duration_s") or 0.0) / 3600.0
    tok, ptok = s.get("throughput_tokens_per_s"), s.get("throughput_prompt_tokens_per_s") or 0.0
    cost = ev.cost(counts)
    sens = []
    for r in checks["sensitivity"]:
        e, need = r["eval"], r["needed"]
        sens.append({"load": float(r["tag"].removeprefix("load-")), "slo_met": e.slo_met,
                     "margins": e.margins, "metrics": metrics(e.summary),
                     "needed_fleet": None if need is None else ev.label(need),
                     "needed_counts": None if need is None else dict(
                         zip([p.name for p in ev.pools], need)),
                     "needed_cost_per_hour_usd": None if need is None else ev.cost(need),
                     "needed_energy_kwh": r.get("needed_kwh"),
                     "needed_slo_met": r["needed_met"]})
    single = [{"candidate": r["candidate"], "pd_ratio": r["ratio"], "guess": r["guess"],
               "fleet": None if r["counts"] is None else ev.label(r["counts"]),
               "cost_per_hour_usd": None if r["counts"] is None else ev.cost(r["counts"]),
               "gpu_count": None if r["counts"] is None else ev.gpus(r["counts"]),
               "uncalibrated": any("uncalibrated" in p.calibration for p in ev.pools
                                   if p.candidate == r["candidate"])}
              for r in search.single]
    for k, r in enumerate(single):  # P:D ratios that round to the same fleet: say so
        r["same_as"] = next((o["pd_ratio"] for o in single[:k] if r["fleet"] and
                             o["candidate"] == r["candidate"] and o["fleet"] == r["fleet"]),
                            None)
    return {
        "slo_met": bool(slo_met),
        "message": _message(ev, plan, checks, notes, feasible, slo_met, search.complete,
                            search.limits),
        "objective": plan.objective,
        "model": plan.model,
        "fleet": fleet_rows(ev, counts),
        "fleet_label": ev.label(counts),
        "counts": dict(zip([p.name for p in ev.pools], counts)),
        "uncalibrated": [p.name for p in ev.pools if "uncalibrated" in p.calibration],
        "cost_per_hour_usd": cost,
        "cost_per_million_output_tokens_usd": per_million(cost, tok),
        "cost_per_million_tokens_usd": per_million(cost, (tok or 0.0) + ptok),
        "provisioned_cost_per_1k_requests_usd": (
            cost * dur_h / len(traces["full"].frame) * 1000.0 if len(traces["full"].frame)
            else None),
        "energy_kwh": s.get("energy_kwh"),
        "energy_kwh_per_hour": (s.get("energy_kwh") or 0.0) / dur_h if dur_h else None,
        "gpu_count": ev.gpus(counts),
        "instance_count": int(sum(counts)),
        "slo_targets": plan.slo.as_dict(),
        "slo_thresholds": {k: cfg.get("slo", {}).get(k) for k in ("ttft_s", "tpot_s")},
        "slo_margins": full.margins,
        "metrics": metrics(s),
        "recheck": {"seed": rc.seed, "trace": traces["recheck"].description,
                    "slo_met": rc.slo_met, "first_met": checks["recheck_first_met"],
                    "searched_fleet": ev.label(checks["after_full"]),
                    "instances_added": bool(checks["added"]),
                    "margins": rc.margins, "metrics": metrics(rc.summary)},
        "one_fewer": [{**o, "reason": why_fewer(o, plan.slo.as_dict())}
                      for o in checks["one_fewer"]],
        "load_sensitivity": sens,
        "search": {
            "evaluations": len(ev.rows), "search_evaluations": ev.spent,
            "reruns": ev.reruns,
            "complete": search.complete, "max_evaluations": plan.max_evaluations,
            "trace": traces["search"].description, "full_trace": traces["full"].description,
            "window_s": [traces["search"].start_s, traces["search"].end_s]
            if plan.search_window_s else None,
            "searched_fleet": ev.label(checks["searched"]),
            "found": bool(feasible),
            "mix": plan.mix, "pd_ratios": [f"{p}:{d}" for p, d in plan.pd_ratios],
            "single_type": single, "analytical": info, "impossible": notes,
            "monotonicity_violations": checks["violations"],
        },
        "seed": full.seed,
        "workload": str((cfg.get("workload") or {}).get("name", "")),
        "router": router_option(cfg.get("router"), router_choice),
        "router_class": str((cfg.get("router") or {}).get("_target_", "")),
    }


#: a router's deployment keys, which every router takes (conf/config.yaml's `router:`)
DEPLOYMENT = ("view", "replicas", "service", "cache")


def router_option(rcfg, choice: str | None = None) -> str:
    """The `router=` option a plan simulated, as the user types it (`least-outstanding`, a
    routers/*.yaml file's stem): `choice` (Hydra's, from the command line) when its file names
    the run's router class; else the one option of that class (several: the one whose every
    key the run's router keeps); else the class path (`_target_`), which names no option."""
    import yaml

    from wrpsim.paths import catalog_dirs, option_file

    rcfg = rcfg if isinstance(rcfg, dict) else {}
    target = str(rcfg.get("_target_", ""))
    try:
        folders = catalog_dirs("routers")
        names = sorted({p.stem for d in folders if d.is_dir() for p in d.glob("*.yaml")})
        options = {n: yaml.safe_load(option_file(folders, n).read_text("utf-8")) for n in names}
    except Exception:  # (an unreadable catalog: the class path, as before)
        return target
    same = {n: o for n, o in options.items() if isinstance(o, dict) and o.get("_target_") == target}
    if choice in same:
        return str(choice)
    if len(same) > 1:  # (its deployment, which conf/plan.yaml may set, names no option)
        same = {n: o for n, o in same.items()
                if _kept({k: v for k, v in o.items() if k not in DEPLOYMENT}, rcfg)}
    return next(iter(same)) if len(same) == 1 else target


def _kept(option: dict, rcfg: dict) -> bool:
    """Whether every key of a router option's file has the same value in the run's router."""
    for k, v in option.items():
        if isinstance(v, dict) and isinstance(rcfg.get(k), dict):
            if not _kept(v, rcfg[k]):
                return False
        elif k not in rcfg or rcfg[k] != v:
            return False
    return True
