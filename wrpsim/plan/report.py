"""The plan's report data, and its Markdown summary (`report.md`); the HTML page is `page.py`.

`report_data` reduces the evaluations to what both need: every candidate simulated on the
search trace (cost, p99 TTFT/TPOT, verdict), the Pareto fronts of cost vs p99 TTFT and vs p99
TPOT (fleets no cheaper-or-equal fleet beats on that latency), the load sensitivity rows, per-pool
utilisation of the recommended fleet (busy fraction, token-budget use, mean KV use, mean
requests in system, from its instance table) and its latency CDFs on the full trace and on the
fresh-seed recheck (downsampled with the sweep dashboard's `cdf`).

The "why" tables — single-type alternatives, one instance fewer, what other loads need, and
utilisation — are built once here as `(head, rows)` of strings (`why_tables`), so report.md and
report.html show the same rows; `UTIL_NOTE` defines the utilisation figures for both.
"""

from __future__ import annotations

import numpy as np

from wrpsim.report.choice import pareto  # the front, shared with the sweep dashboard


def _cdfs(tables, points: int = 400) -> dict:
    from wrpsim.report.views import cdf

    if not tables:
        return {}
    req = tables[0]
    done = np.asarray([s == "completed" for s in req.column("status").to_pylist()], dtype=bool)
    return {c.removesuffix("_s"): cdf(req.column(c).to_numpy(zero_copy_only=False)
                                      .astype(np.float64)[done], points)
            for c in ("ttft_s", "tpot_s", "e2e_s")}


def utilisation(tables) -> list[dict]:
    """Per pool of the recommended fleet: instances, and the per-instance means of busy
    fraction, token-budget use, KV use and requests in system."""
    if not tables:
        return []
    inst = tables[1].to_pydict()
    out = {}
    for k, pool in enumerate(inst["pool"]):
        r = out.setdefault(pool, {"pool": pool, "gpu": inst["gpu"][k], "instances": 0,
                                  "busy": 0.0, "budget": 0.0, "kv": 0.0, "in_system": 0.0,
                                  "tokens": 0})
        r["instances"] += 1
        r["busy"] += inst["utilization"][k]
        r["budget"] += inst["token_budget_use"][k]
        r["kv"] += inst["kv_mean_util"][k]
        r["in_system"] += inst["mean_requests_in_system"][k]
        r["tokens"] += inst["decode_tokens"][k] + inst["prefill_tokens"][k]
    for r in out.values():
        for key in ("busy", "budget", "kv", "in_system"):
            r[key] /= r["instances"]
    return list(out.values())


def report_data(ev, record: dict, checks: dict, timing: dict) -> dict:
    """Everything the HTML page draws (JSON-ready)."""
    cands = []
    for e in ev.rows:
        if e.trace != "search" or not e.summary:
            continue
        cands.append({"index": e.index, "fleet": ev.label(e.counts), "cost": ev.cost(e.counts),
                      "gpus": ev.gpus(e.counts), "phase": e.phase, "met": e.slo_met,
                      "ttft_p99": e.summary.get("ttft_p99_s"),
                      "tpot_p99": e.summary.get("tpot_p99_s"),
                      "energy": e.summary.get("energy_kwh"),
                      "chosen": e.counts == tuple(checks["final"])})
    fronts = {k: pareto([(c["cost"], c[k], c["index"]) for c in cands if c[k] is not None])
              for k in ("ttft_p99", "tpot_p99")}
    full = checks["full"].summary
    sens = [{"load": 1.0, "met": checks["full"].slo_met, "ttft_p99": full.get("ttft_p99_s"),
             "tpot_p99": full.get("tpot_p99_s"), "attainment": full.get("slo_attainment"),
             "needed_cost": record["cost_per_hour_usd"] if record["slo_met"] else None,
             "needed_kwh": record["energy_kwh"] if record["slo_met"] else None,
             "needed": record["fleet_label"] if record["slo_met"] else None}]
    for r in record["load_sensitivity"]:
        m = r["metrics"]
        sens.append({"load": r["load"], "met": r["slo_met"], "ttft_p99": m.get("ttft_p99_s"),
                     "tpot_p99": m.get("tpot_p99_s"), "attainment": m.get("slo_attainment"),
                     # (a fleet the repair stopped at without meeting the SLO is none found)
                     **({"needed_cost": r["needed_cost_per_hour_usd"],
                         "needed_kwh": r.get("needed_energy_kwh"), "needed": r["needed_fleet"]}
                        if r.get("needed_slo_met") else
                        {"needed_cost": None, "needed_kwh": None, "needed": None})})
    sens.sort(key=lambda r: r["load"])
    return {"record": record, "candidates": cands, "pareto": fronts, "sensitivity": sens,
            "utilisation": utilisation(checks["full"].tables),
            "cdf": {"full trace": _cdfs(checks["full"].tables),
                    f"recheck (seed {checks['recheck'].seed})": _cdfs(checks["recheck"].tables)},
            "targets": record["slo_targets"], "timing": timing}


def _f(v, fmt: str = ".4g") -> str:
    if v is None:
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "no"
    return format(v, fmt) if isinstance(v, (int, float)) else str(v)


def fmt_margin(key: str, m) -> str:
    """A signed margin as text: percent for latency bounds, absolute for shares."""
    if m is None:
        return "undefined"
    return f"{m:+.4f}" if key in ("attainment_min", "unserved_max") else f"{m:+.1%}"


UTIL_NOTE = ("Busy fraction: share of the time an iteration runs; under continuous batching it "
             "is near 1 as soon as any request is in flight, so it is not headroom. Token-budget "
             "use: tokens per iteration (prefill chunks + one per decoding sequence) over the "
             "scheduler's token_budget — compute headroom. KV use: time-average share of "
             "KV-cache blocks held — memory headroom. Low token-budget and KV use with latency "
             "near its target means latency, not capacity, sets the instance count.")


def _usd_delta(cost, base) -> str:
    if cost is None:
        return "–"
    d = cost - base
    if abs(d) < 5e-3:
        return "same cost"
    return f"{'+' if d > 0 else '−'}${abs(d):.2f}/h ({d / base:+.0%})" if base else f"{d:+.2f}"


def recheck_sentence(r: dict) -> str:
    """What the fresh-seed recheck found and what was done about it (report.md and .html):
    instances are said to be added only when they were, and a fleet that met no SLO is said to
    be the closest found, not a repaired one."""
    rc = r["recheck"]
    head = (f"Re-checked with a fresh seed ({rc['seed']}: {rc['trace']}) before being reported: "
            f"{'met' if rc['slo_met'] else 'NOT met'}")
    if rc["first_met"]:
        return head + "."
    if rc.get("instances_added"):
        return head + (f" (the searched fleet {rc['searched_fleet']} failed the recheck; "
                       + ("instances were added until both runs met the SLO)." if r["slo_met"]
                          else "instances were added, but the fleet still misses the SLO)."))
    if not r["search"].get("found", True):
        return head + (" (no fleet met the SLO in the search, so nothing was repaired: this is "
                       "the closest fleet found).")
    return head + (f" (the searched fleet {rc['searched_fleet']} failed the recheck, and no "
                   "instance could be added within plan.max_instances).")


def star_text(r: dict) -> str:
    """What the star on the Pareto plots marks, by the plan's objective (report.md and .html):
    the recommendation is the cheapest fleet meeting every target only under `cost`."""
    if not r["slo_met"]:
        return "the closest fleet found (none met every target)"
    best = {"cost": "cheapest", "energy": "lowest-energy", "gpus": "fewest-GPU"}.get(
        r.get("objective"), "best")
    return f"the {best} fleet meeting every target"


def why_tables(data: dict) -> dict[str, tuple[list[str], list[list[str]]]]:
    """The tables that say why this fleet: name -> (head, rows), every cell a string."""
    r = data["record"]
    base = r["cost_per_hour_usd"]
    single = (["candidate", "P:D tried", "smallest fleet meeting the SLO", "GPUs", "USD/h",
               "vs recommended"],
              [[_cand(c),
                c["pd_ratio"] or "–", _same(c, "none meets the SLO"),
                _f(c.get("gpu_count")), _f(c["cost_per_hour_usd"], ".2f"),
                "recommended" if c["fleet"] == r["fleet_label"] else
                _usd_delta(c["cost_per_hour_usd"], base)] for c in r["search"]["single_type"]])
    fewer = (["pool with one instance fewer", "fleet", "meets SLO (full trace)",
              "meets SLO (recheck)", "why not"],
             [[o["pool"], o["fleet"], _f(o.get("slo_met_full")), _f(o.get("slo_met_recheck")),
               o["reason"]] for o in r["one_fewer"]])  # (plan_record: `why_fewer`)
    # under objective=energy the fleet needed is the least-energy one: its energy too (over
    # that load's trace, so not comparable across rows as USD/h is)
    energy = r.get("objective") == "energy"
    load = (["load", "recommended fleet meets SLO", "p99 TTFT (s)", "p99 TPOT (s)",
             "attainment", "fleet needed", "USD/h needed", "vs recommended",
             *(["kWh needed (over that load's trace)"] if energy else [])],
            [[f"{s['load']:g} ×", _f(s["met"]), _f(s["ttft_p99"]), _f(s["tpot_p99"]),
              _f(s["attainment"]), s["needed"] or "none found", _f(s["needed_cost"], ".2f"),
              _usd_delta(s["needed_cost"], base),
              *([_f(s.get("needed_kwh"), ".4g")] if energy else [])]
             for s in data["sensitivity"]])
    util = (["pool", "GPU", "instances", "busy fraction", "token-budget use", "KV use",
             "mean requests in system, per instance"],
            [[u["pool"], u["gpu"], str(u["instances"]), f"{u['busy']:.3f}",
              f"{u.get('budget', 0.0):.3f}", f"{u['kv']:.3f}", f"{u['in_system']:.2f}"]
             for u in data["utilisation"]])
    return {"single": single, "fewer": fewer, "load": load, "util": util}


def _same(c: dict, none: str) -> str:
    """A single-type fleet, or that it is the fleet of an earlier P:D ratio (rounding)."""
    if not c["fleet"]:
        return none
    return c["fleet"] + (f" (same fleet as {c['same_as']})" if c.get("same_as") else "")


def _cand(c: dict) -> str:
    return c["candidate"] + (" (uncalibrated: roofline)" if c.get("uncalibrated") else "")


def timings(calibration: str) -> str:
    """The fleet table's 'timings' cell: measured kernels, or the roofline estimate."""
    return "uncalibrated: roofline" if "uncalibrated" in str(calibration) else "measured"


def fleet_table(r: dict) -> tuple[list[str], list[list]]:
    """The recommended (or closest) fleet, one row per pool, with what its timings rest on."""
    return (["pool", "GPU", "TP", "precision", "role", "instances", "GPUs", "USD/h", "batching",
             "timings"],
            [[f["pool"], f["gpu"], f["tp"], precision_text(f), f["role"], f["count"], f["gpus"],
              f"{f['cost_per_hour_usd']:.2f}", f.get("batching", ""),
              timings(f.get("calibration", ""))]
             for f in r["fleet"]])


def precision_text(f: dict) -> str:
    """'bf16', 'fp8', 'fp8, KV fp8': a fleet row's weight precision and a KV dtype that is not
    the model's own."""
    kv = f.get("kv_dtype", "auto")
    return f"{f.get('precision', 'bf16')}" + ("" if kv in ("auto", None) else f", KV {kv}")


EMPTY = {
    "fewer": "One instance fewer: none — the plan does not meet the SLO, so there is no smaller "
             "fleet to judge.",
    "single": "none — no candidate was searched (every one is impossible at any count; below).",
    "search": "No candidate was searched: every one is impossible at any count (below).",
}


def _empty(r: dict, key: str) -> str:
    """The line for an empty single-type table: every candidate impossible (said below), or the
    search budget spent before a candidate's own search (`search.complete` false)."""
    if r["search"].get("complete", True) or r["search"].get("impossible"):
        return EMPTY[key]
    return ("none — the search budget (plan.max_evaluations, "
            f"{r['search'].get('max_evaluations')}) ran out before any candidate was searched "
            "on its own; raise it." if key == "single" else
            "No candidate was searched on its own: the search budget (plan.max_evaluations, "
            f"{r['search'].get('max_evaluations')}) ran out first; raise it.")


def _table(head: list[str], rows: list[list], empty: str = "none.") -> list[str]:
    """A Markdown table, or the line `empty` when there is no row (no header-only table)."""
    if not rows:
        return [empty, ""]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    out += ["| " + " | ".join(str(c).replace("|", "\\|") for c in r) + " |" for r in rows]
    return [*out, ""]


def markdown(data: dict) -> str:
    """The Markdown summary of a plan (a planner can paste it into a ticket)."""
    r, t = data["record"], data["timing"]
    rc = r["recheck"]
    lines = [f"# Capacity plan: {r['workload'] or 'workload'} on {r['model']}", "",
             f"**{'SLO met' if r['slo_met'] else 'SLO NOT met'}** — {r['message']}", "",
             "## Recommended fleet" if r["slo_met"] else "## Closest fleet found (misses the SLO)",
             ""]
    lines += _table(*fleet_table(r))
    if r.get("router"):
        # (an option's name when one matched, else the class path: `record.router_option`)
        if r["router"] != r.get("router_class", r["router"]):
            routed = (f"Routed by `router={r['router']}`, the plan's router (its default is "
                      f"least-outstanding")
            replay = (f"`WRPSIM_CATALOG=<catalog> python -m wrpsim pool=plan "
                      f"router={r['router']}` with")
        else:
            routed = (f"Routed by `{r['router']}`, the plan's `router=` (default "
                      f"least-outstanding")
            replay = ("`WRPSIM_CATALOG=<catalog> python -m wrpsim pool=plan` with the plan's "
                      "`router=` option and")
        lines += [f"{routed}, where `python -m wrpsim` defaults to round-robin). To replay this "
                  f"fleet: copy `fleet.yaml` (next to this report) to "
                  f"`<catalog>/pools/plan.yaml` and run {replay} every other run setting "
                  f"given to `wrpsim.plan` — the plan's command line less its `plan.*` keys: "
                  f"`workload=…` and its overrides, `slo.ttft_s` / `slo.tpot_s` (SLO "
                  f"attainment counts requests within them), `seed`, `network=…`, `pue`.", ""]
    lines += ["## Cost and energy", ""]
    lines += _table(["figure", "value"], [
        ["cost per hour (USD)", _f(r["cost_per_hour_usd"], ".2f")],
        ["cost per million output tokens (USD)", _f(r["cost_per_million_output_tokens_usd"])],
        ["cost per million tokens, prompt + output (USD)", _f(r["cost_per_million_tokens_usd"])],
        ["cost per 1,000 requests, the fleet over the trace (USD)",
         _f(r["provisioned_cost_per_1k_requests_usd"])],
        ["energy over the trace (kWh, facility)", _f(r["energy_kwh"])],
        ["energy per hour (kWh)", _f(r["energy_kwh_per_hour"])],
        ["GPUs / instances", f"{r['gpu_count']} / {r['instance_count']}"]])
    lines += ["## SLO margins", "",
              f"Margins are positive when met (relative headroom for latency bounds). Full "
              f"trace with seed {r['seed']}, and the fresh-seed recheck ({rc['trace']}).", ""]
    rows = []
    for k, bound in r["slo_targets"].items():
        metric = {"attainment_min": "slo_attainment", "unserved_max": "unserved_frac"}.get(k, k)
        rows.append([k, _f(bound), _f(r["metrics"].get(metric)), fmt_margin(k, r["slo_margins"][k]),
                     _f(rc["metrics"].get(metric)), fmt_margin(k, rc["margins"].get(k))])
    lines += _table(["target", "bound", "value", "margin", "recheck value", "recheck margin"],
                    rows)
    lines += ["## Robustness", "",
              f"- {recheck_sentence(r)}", ""]
    why = why_tables(data)
    lines += _table(*why["fewer"], empty=EMPTY["fewer"])
    lines += ["## Single-type alternatives", "",
              "The smallest fleet of each candidate alone that meets the SLO (search trace).", ""]
    lines += _table(*why["single"], empty=_empty(r, "single"))
    lines += ["## Sensitivity to load", ""]
    lines += _table(*why["load"])
    lines += ["## Per-pool utilisation (full trace)", "", UTIL_NOTE, ""]
    lines += _table(*why["util"])
    by_index = {c["index"]: c for c in data["candidates"]}
    for key, name in (("ttft_p99", "TTFT"), ("tpot_p99", "TPOT")):
        lines += [f"## Pareto front: cost vs p99 {name} (search trace)", "",
                  f"Fleets no cheaper (or equally priced) fleet beats on p99 {name}; ★ marks "
                  f"the recommendation, which is {star_text(r).replace('every', '*every*')}.", ""]
        lines += _table(["fleet", "USD/h", "p99 TTFT (s)", "p99 TPOT (s)", "meets SLO"],
                        [[c["fleet"] + (" ★" if c["chosen"] else ""), f"{c['cost']:.2f}",
                          _f(c["ttft_p99"]), _f(c["tpot_p99"]), _f(c["met"])]
                         for c in (by_index[i] for i in data["pareto"][key])])
    s = r["search"]
    lines += ["## Search", "",
              f"{s['evaluations'] + s.get('reruns', 0)} simulations: {s['evaluations']} fleet × "
              f"trace runs ({s['search_evaluations']} in the search, "
              f"budget {s['max_evaluations']}{'' if s['complete'] else ', EXHAUSTED'})"
              + (f" and {s['reruns']} repeated to keep a fleet's request tables for the plots"
                 if s.get("reruns") else "")
              + f"; search trace: {s['trace']}; wall time {t.get('total_s', 0):.1f} s (search "
              f"{t.get('search_s', 0):.1f} s, checks {t.get('verify_s', 0):.1f} s).", ""]
    lines += _table(["candidate", "P:D", "first guess (analytical)",
                     "smallest fleet meeting the SLO"],
                    [[_cand(c),
                c["pd_ratio"] or "–", c["guess"], _same(c, "none")]
                     for c in s["single_type"]], empty=_empty(r, "search"))
    mono = s["monotonicity_violations"]
    lines += [f"Monotonicity (more instances never hurt): "
              f"{'no violation among the evaluated fleets' if not mono else mono}.", ""]
    lines += [f"- {n}" for n in s["impossible"]] + ([""] if s["impossible"] else [])
    lines += ["Plots (Pareto fronts, load sensitivity, utilisation, latency CDFs): `report.html`."]
    return "\n".join(lines) + "\n"
