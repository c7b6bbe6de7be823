"""`python -m wrpsim.plan [group=option] [key=value]`: the cheapest fleet meeting an SLO.

Same config groups as `python -m wrpsim` (workload, router, network; `conf/plan.yaml`), with the
`pool` group replaced by `plan.candidates`, e.g.
`python -m wrpsim.plan workload=azure-code-2023 plan.objective=energy plan.slo.tpot_p99_s=0.08`.
Writes `plan.json`, `candidates.parquet`, `report.html` and `report.md` into the run's output
directory (`results/plans/<date>/<time>/`), then `_DONE`. Like `python -m wrpsim`, it prints
for a person on stderr — a line per simulation while it searches (`wrpsim.plan.progress`: stage
— candidate k of n, mixing, checks —, simulation number and search budget spent, best fleet so far,
elapsed time), then the verdict and where the files are — and nothing on stdout unless
`json=true`, which prints plan.json as one JSON line there (for scripts). A plan whose SLO no
fleet meets still exits 0, with `slo_met: false` and a warning line; bad config prints
`wrpsim: error: …` and exits with status 2.
"""

from __future__ import annotations

import json
import sys

# every file a plan writes (wrpsim.plan.planner.write_outputs; report.* only with plan.report),
# removed before a plan runs so a re-used directory keeps no report of an earlier plan
PLAN_FILES = ("plan.json", "candidates.parquet", "fleet.yaml", "report.html", "report.md")


def _task(cfg: dict, out_dir: str) -> None:
    from hydra.core.hydra_config import HydraConfig

    from wrpsim.app import say, warning_line
    from wrpsim.errors import boolean
    from wrpsim.plan.planner import run_plan
    from wrpsim.plan.progress import PlanProgress

    as_json = boolean("json", cfg.pop("json", False))
    plan = cfg.get("plan")
    progress = PlanProgress(str((plan if isinstance(plan, dict) else {}).get("objective", "cost")))
    try:
        choice = HydraConfig.get().runtime.choices.get("router") \
            if HydraConfig.initialized() else None
        record = run_plan(cfg, out_dir, progress=progress, router_choice=choice)
    finally:
        progress.close()
    if record["slo_met"]:
        say(f"wrpsim.plan: {record['message']}", sys.stderr)
    else:
        warning_line(record["message"], "wrpsim.plan")
    files = "plan.json, candidates.parquet, fleet.yaml" + (
        ", report.html and report.md" if (cfg.get("plan") or {}).get("report", True) else "")
    say(f"wrpsim.plan: {files} in {out_dir}", sys.stderr)
    if as_json:
        say(json.dumps(record, sort_keys=True, allow_nan=False))


def main() -> None:
    """Console entry point (Hydra app over conf/plan.yaml)."""
    from wrpsim.app import hydra_entry

    hydra_entry(_task, "plan", outputs=PLAN_FILES)


if __name__ == "__main__":
    main()
