"""What a person reads after `python -m wrpsim`: a short summary of a run, a line per sweep run,
and a closing table of a sweep.

Contracts (pure functions of a run's summary dict — `summary.json` — and its config; nothing is
printed here, `wrpsim.__main__` and `SweepView` print on stderr):

- `run_summary(summary, cfg, out_dir, overrides)`: a dozen lines: workload, router, pool file (and
  how many command-line overrides changed its fleet), seed; the fleet as run; requests;
  p50 / p99 TTFT and TPOT against the SLO; SLO attainment and goodput; streaming QoE (mean,
  p10, the share reaching `qoe.target`) when measured; a `route` line when routing is at least
  `ROUTE_LINE` of the mean TTFT; cost; energy; simulated
  and wall time; an `oracle` line when the run is an upper bound (the router read the ground
  truth, or the live fleet); the results directory. The full summary stays in `summary.json`.
- the warnings after a run's summary (why it missed its SLO, idle pools): `wrpsim.verdict`.
- `run_line(summary, name, overrides)`: what a sweep prints as each run finishes: one line of
  labelled fixed-width fields (p99 TTFT and TPOT, SLO attainment, QoE mean — '–' when not
  measured —, cost, energy, GPUs), so the lines align whatever order (or process) the jobs
  finish in, and need no header printed before the launcher has started.
- `sweep_line(summary, name, overrides)`: one row of the closing table (`SWEEP_HEADER`; its
  `qoe_mean` column only when a run of the sweep measured QoE).
- `sweep_table(sweep_dir, jobs)`: the header, one row per run of this sweep (`jobs`, from
  `sweep_jobs`: completed, failed or incomplete, in job order; run folders an earlier sweep
  left in the directory are only counted), and which completed run wins by
  `wrpsim.report.choice` (best SLO attainment, then lowest cost, costs within 1 % tying; ties:
  fewest requests unanswered, lower p99 TTFT, then run number) — the dashboard's winner too
  when the directory holds no other run.
  `SweepView` is the Hydra callback that prints it when a `-m` sweep ends (registered in
  conf/config.yaml under `hydra.callbacks`).
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

from hydra.experimental.callback import Callback

from wrpsim.textfmt import fmt_pct as _pct
from wrpsim.textfmt import fmt_s as _s
from wrpsim.textfmt import fmt_t as _t

COLUMNS = (("run", 5), ("ttft_p99", 9), ("tpot_p99", 9), ("slo_att", 8), ("qoe_mean", 8),
           ("goodput", 8), ("cost_usd", 10), ("energy_kwh", 10), ("gpus", 6))
#: the closing table's columns when no run of the sweep measured QoE (`qoe=null`)
COLUMNS_NO_QOE = tuple(c for c in COLUMNS if c[0] != "qoe_mean")
SWEEP_HEADER = "  ".join(f"{n:>{w}}" for n, w in COLUMNS) + "  overrides"


def _qoe(s: dict) -> str:
    """A run's QoE mean to 3 decimals, '–' when it was not measured (`qoe=null`)."""
    q = s.get("qoe_mean")
    return "–" if q is None else f"{q:.3f}"


def fleet_text(pool_cfg: dict) -> str:
    """'h100: 4 x 4 h100-80gb (llama3.1-70b)' (instances x GPUs each) per pool, joined by '; ';
    a pool's role, weight precision, KV dtype, data-parallel attention groups, expert
    parallelism and engine follow the model when not the defaults."""
    from wrpsim.pool.engines import DEFAULT_ENGINE

    parts = []
    for name, p in sorted(((pool_cfg or {}).get("pools") or {}).items()):
        if isinstance(p, dict):
            extra = [p["role"]] if p.get("role", "both") != "both" else []
            if p.get("precision", "bf16") not in ("bf16", None):
                extra.append(str(p["precision"]))
            if p.get("kv_dtype", "auto") not in ("auto", None):
                extra.append(f"KV {p['kv_dtype']}")
            if (p.get("attn_dp") or 1) > 1:
                extra.append(f"attn_dp {p['attn_dp']}")
            if (p.get("ep") or 1) > 1:
                extra.append(f"ep {p['ep']}")
            if p.get("engine", DEFAULT_ENGINE) not in (DEFAULT_ENGINE, None):
                extra.append(str(p["engine"]))
            parts.append(f"{name}: {p.get('count', 1)} x {p.get('tp', 1)} {p.get('gpu')} "
                         f"({', '.join([str(p.get('model')), *extra])})")
    return "; ".join(parts)


def _kwh(v: float) -> str:
    """kWh as printed: two decimals from 1 kWh, else three significant digits (a short run's
    2 Wh reads 0.00219, not 0.00)."""
    return f"{v:,.2f}" if v >= 1 or v == 0 else f"{v:#.3g}"


def _pool_overrides(overrides) -> str:
    """' + N pool overrides' for the command line's overrides of keys under `pool.` (the fleet
    run is then not the pool file's as shipped: the fleet line says what it is), else ''."""
    from wrpsim.jobs import split_override

    n = sum(1 for o in overrides or () if split_override(o)[0].startswith("pool."))
    return f" + {n} pool override{'' if n == 1 else 's'}" if n else ""


def run_summary(s: dict, cfg: dict, out_dir: str, overrides=()) -> str:
    """The human summary of one run (see module docstring); `overrides`: the command line's,
    counted in the header where they change the pool file's fleet."""
    total, done = s.get("requests_total", 0), s.get("requests_completed", 0)
    dropped, left = s.get("requests_dropped", 0), s.get("requests_in_flight", 0)
    lines = [
        f"wrpsim: {s.get('workload') or 'workload'} -> {s.get('router')} -> "
        f"{s.get('pool') or 'fleet'}{_pool_overrides(overrides)} (seed {s.get('seed')})",
        f"  fleet      {fleet_text(cfg.get('pool') or {})} = {s.get('gpu_count')} "
        f"GPU{'' if s.get('gpu_count') == 1 else 's'}",
        f"  requests   {total:,} total, {done:,} completed, {dropped:,} dropped, "
        f"{left:,} unfinished" + (f"; {s['requests_beyond_horizon']:,} more not sent before "
                                  f"sim.horizon_s (not simulated)"
                                  if s.get("requests_beyond_horizon") else ""),
        f"  TTFT       p50 {_t(s.get('ttft_p50_s'))}  p99 {_t(s.get('ttft_p99_s'))}  "
        f"(SLO {_t(s.get('slo_ttft_s'))})",
        *_route_line(s),
        f"  TPOT       p50 {_t(s.get('tpot_p50_s'))}  p99 {_t(s.get('tpot_p99_s'))}  "
        f"(SLO {_t(s.get('slo_tpot_s'))})",
        f"  SLO        {_pct(s.get('slo_attainment'))} of requests within both; goodput "
        f"{_s(s.get('goodput_rps'), ' req/s')}",
        *_qoe_line(s),
        f"  cost       ${s.get('cost_usd', 0):,.2f} total over the trace "
        f"(${s.get('cost_per_hour_usd', 0):,.2f}/h); per 1k requests "
        f"${s.get('provisioned_cost_per_1k_requests_usd') or 0:.3f} provisioned, "
        f"${s.get('cost_per_1k_requests_usd') or 0:.3f} of busy GPU time",
        f"  energy     {_kwh(s.get('energy_kwh') or 0)} kWh total (PUE {s.get('pue')}); "
        f"{_s(s.get('tokens_per_joule'), ' output tokens/J')}",
        f"  time       {s.get('duration_s', 0):,.0f} s simulated in {s.get('sim_wall_s', 0):.1f} s",
        *_extra_lines(s, cfg),
        f"  results    {out_dir}  (summary.json: every metric; json=true prints it on stdout)",
    ]
    return "\n".join(lines)


def _qoe_line(s: dict) -> list[str]:
    """The streaming-QoE line when QoE is measured (`qoe_attainment` not null): mean and p10
    over completed requests, the share of all requests reaching `qoe_target`."""
    if s.get("qoe_attainment") is None:
        return []
    target = s.get("qoe_target")
    reach = f"QoE >= {target:g} (qoe.target)" if target is not None else "qoe.target"
    q = {k: "n/a" if s.get(k) is None else f"{s[k]:.3f}" for k in ("qoe_mean", "qoe_p10")}
    return [f"  QoE        mean {q['qoe_mean']}  p10 {q['qoe_p10']} of completed requests; "
            f"{_pct(s['qoe_attainment'])} of all requests reach {reach}"]


def measurement_fleet(cfg: dict) -> bool:
    """True when every pool runs a constant iteration time (`latency.kind: constant`, e.g.
    pools/prefix-oracle.yaml): its latencies, cost and energy are not a serving estimate."""
    pools = [p for p in (((cfg or {}).get("pool") or {}).get("pools") or {}).values()
             if isinstance(p, dict)]
    return bool(pools) and all((p.get("latency") or {}).get("kind") == "constant"
                               for p in pools)


def _caches_prefixes(cfg: dict, s: dict) -> bool:
    """True when some pool of the run's config has its prefix cache on (or the config does not
    say: a summary shown without it), or leaves it to its engine's default (`enabled` null or
    left out: vLLM's engines cache) and the run served prompt blocks from it."""
    pools = (((cfg or {}).get("pool") or {}).get("pools") or {})
    if not pools:
        return True
    on = [(p.get("prefix_cache") or {}).get("enabled") for p in pools.values()
          if isinstance(p, dict)]
    return True in on or (None in on and bool(s.get("prefix_hit_ratio_blocks")))


def _extra_lines(s: dict, cfg: dict) -> list[str]:
    """The mean answer quality when the workload replays outcomes (and calls per task for a
    multi-round router); the prefix-cache hit ratio when a pool caches prefixes; instance
    failures and the requests they interrupted; the semantic cache's hits; a note on a
    measurement fleet and on pools whose GPU has no kernel measurements ("uncalibrated:
    roofline"); an `oracle` line when the router read the ground truth or the live
    fleet (an upper bound)."""
    out = []
    if s.get("router_oracle") or s.get("router_view_kind") == "oracle":
        out.append(f"  oracle     {s.get('router_oracle') or s.get('router_view')}")
    if s.get("quality") is not None:
        line = (f"  quality    {s['quality']:.4f} mean replayed score over "
                f"{s.get('quality_requests') or 0:,} tasks")
        if s.get("rounds_mean") is not None:
            line += f"; {s['rounds_mean']:.2f} calls per task"
        out.append(line)
    if s.get("prefix_hit_ratio_blocks") is not None and _caches_prefixes(cfg, s):
        out.append(f"  prefix     {_pct(s.get('prefix_hit_ratio_blocks'))} of prompt blocks "
                   f"({_pct(s.get('prefix_hit_ratio_tokens'))} of prompt tokens) served from "
                   f"the prefix cache")
    if s.get("kv_transfer_bytes"):
        net = s.get("network_kind") or ((cfg or {}).get("network") or {}).get("kind") or "none"
        line = (f"  KV         {s['kv_transfer_bytes'] / 1e9:,.1f} GB sent prefill -> decode; "
                f"exposed transfer mean {_t(s.get('kv_transfer_mean_s'))}, p99 "
                f"{_t(s.get('kv_transfer_p99_s'))} (network={net}")
        if s.get("network_max_link_utilization") is not None:
            line += f"; busiest link {_pct(s['network_max_link_utilization'])} used"
        out.append(line + ")")
    if s.get("instance_failures"):
        n, hit = s["instance_failures"], s.get("requests_interrupted") or 0
        line = (f"  failures   {n:,} instance failure{'' if n == 1 else 's'}, availability "
                f"{_pct(s.get('availability'))}; {hit:,} request{'' if hit == 1 else 's'} "
                f"interrupted ({s.get('requests_retried') or 0:,} retried)")
        if s.get("slo_attainment_interrupted") is not None:
            line += f", {_pct(s['slo_attainment_interrupted'])} of them within the SLO"
        out.append(line)
    if s.get("cache_lookups"):
        out.append(f"  cache      {_pct(s.get('cache_hit_ratio'))} of {s['cache_lookups']:,} "
                   f"lookups answered by the semantic cache ({_pct(s.get('cache_false_hit_ratio'))}"
                   f" of hits false); ${s.get('cache_saved_cost_usd') or 0:,.2f} of GPU time "
                   f"saved")
    if measurement_fleet(cfg):
        out.append("  note       constant iteration time (a measurement fleet): latencies, SLO, "
                   "cost and energy above are not a serving estimate")
    labels = (s.get("calibration") or {}).items()
    rough = uncalibrated_pools(s)
    partly = sorted(name for name, label in labels
                    if name not in rough and "uncalibrated" in str(label))
    pools = (cfg.get("pool") or {}).get("pools") or {}

    def named(names):
        gpus = {n: (pools.get(n) or {}).get("gpu") for n in names}
        return ", ".join(f"{n} ({gpus[n]})" if gpus[n] else n for n in names)

    if rough:
        out.append(f"  note       uncalibrated: roofline for pool(s) {named(rough)}: no kernel "
                   f"measurements for that GPU (summary.json: calibration)")
    if partly:
        out.append(f"  note       some operators of pool(s) {named(partly)} have no kernel "
                   f"measurements on that GPU and are timed by roofline (summary.json: "
                   f"calibration)")
    return out


def uncalibrated_pools(s: dict | None) -> list[str]:
    """The pools of summary `s` whose GPU has no kernel measurements at all: a whole GPU
    without measurements says so first in its label ("<engine>: uncalibrated: roofline"); a
    GPU measured but for some operators names them in a later clause (not counted here)."""
    return sorted(name for name, label in ((s or {}).get("calibration") or {}).items()
                  if "uncalibrated" in str(label).split(";")[0])


def rough_note(s: dict | None) -> str:
    """'uncalibrated: roofline (pool, ...)' for a run with such pools (`uncalibrated_pools`),
    else ''."""
    rough = uncalibrated_pools(s)
    return f"uncalibrated: roofline ({', '.join(rough)})" if rough else ""


#: the summary shows a `route` line when routing is at least this share of the mean TTFT
ROUTE_LINE = 0.1


def _route_line(s: dict) -> list[str]:
    """The `route` line when routing is a non-negligible share of TTFT (`ROUTE_LINE`)."""
    route, ttft = s.get("route_mean_s"), s.get("ttft_mean_s")
    if not route or not ttft or route < ROUTE_LINE * ttft:
        return []
    n = s.get("router_replicas") or 1
    return [f"  route      mean {_t(route)}  p99 {_t(s.get('route_p99_s'))} of TTFT in the "
            f"router (queue + service + decision latency); {_pct(s.get('router_utilization'))}"
            f" busy, {n} replica{'' if n == 1 else 's'}"]


def run_line(s: dict, name: str, overrides) -> str:
    """The line a sweep prints when run `name` finishes (see module docstring)."""
    return (f"wrpsim: run {name:>4} | TTFT p99 {_t(s.get('ttft_p99_s')):>9} | TPOT p99 "
            f"{_t(s.get('tpot_p99_s')):>9} | SLO {_pct(s.get('slo_attainment')):>7} | "
            f"QoE {_qoe(s):>5} | ${s.get('cost_usd', 0):>11,.2f} | "
            f"{_kwh(s.get('energy_kwh') or 0):>9} kWh | "
            f"{s.get('gpu_count', 0):>5} GPUs | {' '.join(overrides)}"
            + (f" | {note}" if (note := rough_note(s)) else ""))


def sweep_line(s: dict | None, name: str, overrides, status: str = "completed",
               width: int = COLUMNS[0][1], qoe: bool = True) -> str:
    """One fixed-width line of a sweep run (`sweep_header(width, qoe)`); `s` None for a run
    without one; `width`: of the `run` column (the longest run folder's name, e.g.
    override_dirname); `qoe`: whether the table has the QoE column."""
    ov = " ".join(overrides)
    cols = COLUMNS if qoe else COLUMNS_NO_QOE
    if s is None:
        return f"{name:>{width}}  {status:<{sum(w + 2 for _, w in cols[1:]) - 2}}  {ov}"
    cells = [name, _s(s.get("ttft_p99_s"), ""), _s(s.get("tpot_p99_s"), ""),
             _pct(s.get("slo_attainment")), *([_qoe(s)] if qoe else []),
             _s(s.get("goodput_rps"), ""), f"{s.get('cost_usd', 0):,.2f}",
             f"{s.get('energy_kwh', 0):,.2f}", str(s.get("gpu_count", ""))]
    widths = [width, *(w for _, w in cols[1:])]
    return "  ".join(f"{c:>{w}}" for c, w in zip(cells, widths)) + f"  {ov}"


def sweep_header(width: int = COLUMNS[0][1], qoe: bool = True) -> str:
    """The closing table's header line with a `run` column `width` wide (`SWEEP_HEADER`),
    without the `qoe_mean` column when `qoe` is False."""
    cols = COLUMNS if qoe else COLUMNS_NO_QOE
    return "  ".join(f"{n:>{width if n == 'run' else w}}" for n, w in cols) + "  overrides"


def sweep_table(sweep_dir: Path | str, jobs: list[str] | None = None) -> str:
    """The closing table of a sweep (see module docstring); '' when it holds no run. `jobs`:
    this sweep's run folders relative to `sweep_dir`, in job order (`sweep_jobs`); None: every
    run folder found there."""
    from wrpsim.errors import WrpsimError
    from wrpsim.report.choice import LOAD_NOTE, RULE, load_dimension, trace_sizes, winner
    from wrpsim.report.collect import (
        find_run_dirs,
        presentation,
        read_run,
        scan,
        split_override,
        varying_keys,
    )

    sweep = Path(sweep_dir)
    others = 0
    try:
        if jobs is None:
            runs = scan(sweep)
        else:
            runs = [read_run(sweep, sweep / j) for j in jobs]
            mine = {(sweep / j).resolve() for j in jobs}
            others = sum(p.resolve() not in mine for p in find_run_dirs(sweep))
    except (WrpsimError, OSError, ValueError):
        return ""
    if not runs:
        return ""
    varying = set(varying_keys(runs))  # presentation keys (json=, sim.progress=) never vary
    common = sorted({o for r in runs for o in r.overrides
                     if split_override(o)[0] not in varying and not presentation(o)})
    lines = [f"wrpsim: sweep {sweep_dir}: {len(runs)} run{'' if len(runs) == 1 else 's'} (p99 "
             f"latencies in s; goodput in req/s; cost and energy are totals over the trace)"]
    if common:
        lines.append(f"  every run: {' '.join(common)}")
    width = max(COLUMNS[0][1], *(len(r.name) for r in runs))
    qoe = any((r.summary or {}).get("qoe_mean") is not None for r in runs)
    lines.append(sweep_header(width, qoe))
    for r in runs:
        status = f"failed (see {r.name}/error.json)" if r.status == "failed" else r.status
        shown = [o for o in r.overrides if split_override(o)[0] in varying]
        lines.append(sweep_line(r.summary, r.name, shown, status, width, qoe))
    rough = [(r.name, note) for r in runs if (note := rough_note(r.summary))]
    if rough:
        lines.append("  " + "; ".join(f"run {n}: {note}" for n, note in rough)
                     + ": no kernel measurements for that GPU, its times are roofline estimates "
                     "(summary.json: calibration)")
    name = winner([(r.name, r.summary) for r in runs if r.status == "completed"])
    if name is not None:
        best = next(r for r in runs if r.name == name)
        shown = [o for o in best.overrides if split_override(o)[0] in varying]
        note = rough_note(best.summary)
        lines.append(f"{RULE}: run {best.name} "
                     f"({' '.join(shown) or 'the only configuration'}"
                     f"{'; ' + note if note else ''}). Dashboard: "
                     f"python -m wrpsim.report {shlex.quote(f'sweep_dir={sweep_dir}')}")
        load = load_dimension(runs, sorted(varying))
        sizes = trace_sizes([r.summary for r in runs if r.status == "completed"])
        if load:
            lines.append(f"  the runs differ in offered load ({load}): {LOAD_NOTE}")
        elif sizes:
            lines.append(f"  the runs replay traces of {sizes} requests: {LOAD_NOTE}")
    if others:
        lines.append(f"  {sweep_dir} also holds {others} run folder{'' if others == 1 else 's'} "
                     f"from earlier sweeps, not shown here; python -m wrpsim.report reads "
                     f"{'it' if others == 1 else 'them'} too")
    return "\n".join(lines)


def sweep_jobs(config, loader) -> list[str] | None:
    """The run folders (relative to `hydra.sweep.dir`) of the jobs of the sweep that `config`
    (Hydra's multirun config) describes, in job order, as Hydra's basic sweeper enumerates and
    numbers them; None when that cannot be told (another sweeper, no config loader). `loader`:
    Hydra's config loader, None for the running Hydra's."""
    from omegaconf import OmegaConf, open_dict

    try:
        from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
        from hydra.core.global_hydra import GlobalHydra
        from hydra.core.override_parser.overrides_parser import OverridesParser

        hydra = config.hydra
        if loader is None and GlobalHydra.instance().is_initialized():
            loader = GlobalHydra.instance().hydra.config_loader
        if loader is None or not str(hydra.sweeper.get("_target_", "")).endswith(
                ".BasicSweeper"):
            return None
        params = hydra.sweeper.get("params") or {}
        arguments = [f"{k}={v}" for k, v in params.items()]
        arguments += list(OmegaConf.to_container(hydra.overrides.task, resolve=False))
        parsed = OverridesParser.create(config_loader=loader).parse_overrides(arguments)
        batches = BasicSweeper.split_arguments(parsed, hydra.sweeper.get("max_batch_size"))
        overrides = [job for batch in batches for job in batch]
        raw = OmegaConf.to_container(hydra.sweep, resolve=False).get("subdir")
        if raw == "${hydra.job.num}":  # the default: the job number
            return [str(i) for i in range(len(overrides))]
        folders = []
        for i, job in enumerate(overrides):
            cfg = loader.load_sweep_config(config, list(job))
            with open_dict(cfg):
                cfg.hydra.job.id = f"{cfg.hydra.job.name}_{i}"
                cfg.hydra.job.num = i
            folders.append(str(OmegaConf.select(cfg, "hydra.sweep.subdir")))
        return folders
    except Exception:  # the table must not fail a finished sweep: show every folder instead
        return None


#: the last sweep of this process in which every job failed (its folder), else None: the app
#: then exits with status 2 after the closing table (`wrpsim.app.hydra_entry`), as a single run
#: that fails on bad input does; a sweep with any completed run exits 0
ALL_FAILED: list = [None]


class SweepView(Callback):
    """Hydra callback: the closing table when a `-m` sweep ends — of this sweep's jobs only, not
    of folders an earlier sweep left in the same directory."""

    def on_multirun_end(self, config, **kwargs) -> None:
        """Print the closing table; note a sweep none of whose jobs completed (`ALL_FAILED`)."""
        jobs = sweep_jobs(config, kwargs.get("loader"))
        if no_run(config, jobs):
            return
        table = sweep_table(config.hydra.sweep.dir, jobs)
        if table:
            _say(table)
        note_all_failed(config.hydra.sweep.dir, jobs)


def note_all_failed(sweep_dir, jobs) -> None:
    """Set `ALL_FAILED` when every one of the sweep's `jobs` (its run folders) failed: an
    `error.json` and no `_DONE` in each (the run and plan sweeps' closing callbacks)."""
    sweep = Path(str(sweep_dir))
    if jobs and all((sweep / j / "error.json").is_file() and not (sweep / j / "_DONE").exists()
                    for j in jobs):
        ALL_FAILED[0] = str(sweep)


def no_run(config, jobs) -> bool:
    """Say so when a sweep has no job (e.g. `seed=range(0,0)`: Hydra launches nothing and
    says only 'Launching 0 jobs'); True then."""
    if jobs != []:
        return False
    _say(f"wrpsim: warning: the sweep {config.hydra.sweep.dir} has no run: a swept value list "
         f"is empty")
    return True


def _say(text: str) -> None:
    sys.stderr.write(text + "\n")
    sys.stderr.flush()
