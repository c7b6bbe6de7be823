"""The closing table of a `python -m wrpsim.plan -m` sweep (stderr), as `wrpsim.runview`'s is
for runs: one row per job of this sweep, in job order — its fleet, price per hour, GPUs,
facility energy per hour and whether it meets the SLO, or `failed` (its `error.json`) or
`incomplete` — and its overrides. A pure function of the job folders (`plan_sweep_table`);
`PlanSweepView` is the Hydra callback that prints it (conf/plan.yaml, `hydra.callbacks`)."""

from __future__ import annotations

import sys
from pathlib import Path

from hydra.experimental.callback import Callback

HEADER = ("job", "fleet", "$/h", "GPUs", "kWh/h", "SLO", "overrides")


def _row(sweep: Path, name: str) -> tuple[str, ...]:
    from wrpsim.report.collect import DONE, ERROR, presentation, read_json, recorded_overrides

    job = sweep / name
    done, error = read_json(job / DONE), read_json(job / ERROR)
    ov = " ".join(o for o in recorded_overrides(job, done, error) if not presentation(o))
    plan = read_json(job / "plan.json")
    if plan is not None and done is not None:
        return (name, str(plan.get("fleet_label", "?")),
                f"{plan.get('cost_per_hour_usd') or 0:,.2f}", str(plan.get("gpu_count", "?")),
                f"{plan.get('energy_kwh_per_hour') or 0:,.3g}",
                "meets" if plan.get("slo_met") else "misses", ov)
    status = "failed (see error.json)" if (job / ERROR).is_file() else "incomplete"
    return (name, status, "", "", "", "", ov)


def plan_sweep_table(sweep_dir: Path | str, jobs: list[str] | None = None) -> str:
    """The closing table of the plan sweep in `sweep_dir` (`jobs`: its job folders in order;
    None: every numbered folder there), '' when there is none."""
    sweep = Path(sweep_dir)
    if jobs is None:
        jobs = sorted((p.name for p in sweep.iterdir() if p.is_dir() and p.name.isdigit()),
                      key=int) if sweep.is_dir() else []
    rows = [_row(sweep, j) for j in jobs]
    if not rows:
        return ""
    widths = [max(len(r[i]) for r in [HEADER, *rows]) for i in range(len(HEADER) - 1)]
    line = lambda r: "  ".join(f"{c:<{w}}" for c, w in zip(r, widths)) + "  " + r[-1]  # noqa: E731
    met = sum(r[5] == "meets" for r in rows)
    return "\n".join([f"wrpsim.plan: sweep {sweep}: {len(rows)} plan{'' if len(rows) == 1 else 's'}"
                      f", {met} meet{'s' if met == 1 else ''} the SLO",
                      line(HEADER), *map(line, rows)])


class PlanSweepView(Callback):
    """Hydra callback: the closing table when a `python -m wrpsim.plan -m` sweep ends."""

    def on_multirun_end(self, config, **kwargs) -> None:
        from wrpsim.runview import no_run, note_all_failed, sweep_jobs

        jobs = sweep_jobs(config, kwargs.get("loader"))
        if no_run(config, jobs):
            return
        table = plan_sweep_table(config.hydra.sweep.dir, jobs)
        if table:
            sys.stderr.write(table + "\n")
            sys.stderr.flush()
        note_all_failed(config.hydra.sweep.dir, jobs)  # (the app then exits 2)
