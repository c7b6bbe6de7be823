"""`python -m wrpsim.plan [group=option] [key=value]`: the cheapest fleet meeting an SLO.

Same config groups as `python -m wrpsim` (workload, router, network; `conf/plan.yaml`), with the
`pool` group replaced by `plan.candidates`, e.g.
`python -m wrpsim.plan workload=azure-code-2023 plan.objective=energy plan.slo.tpot_p99_s=0.08`.
Writes `plan.json`, `candidates.parquet`, `report.html` and `report.md` into the run's output
directory (`results/plans/<date>/<time>/`), then `_DONE`; the last line of stdout is plan.json
as one JSON line. While it searches, stderr shows a line per simulation (`wrpsim.plan.progress`:
stage — candidate k of n, mixing, checks —, simulations spent of the budget, best fleet so far,
elapsed time). A plan whose SLO no fleet meets still exits 0, with `slo_met: false` and a
message (also printed on stderr); bad config prints `wrpsim: error: …` and exits with status 2.
"""

from __future__ import annotations

import json
import sys


def _task(cfg: dict, out_dir: str) -> None:
    from wrpsim.app import say
    from wrpsim.plan.planner import run_plan
    from wrpsim.plan.progress import PlanProgress

    progress = PlanProgress(str((cfg.get("plan") or {}).get("objective", "cost")))
    try:
        record = run_plan(cfg, out_dir, progress=progress)
    finally:
        progress.close()
    say(f"wrpsim.plan: {record['message']}")
    if not record["slo_met"]:
        say(f"wrpsim.plan: warning: {record['message']}", sys.stderr)
    say(f"wrpsim.plan: plan.json, candidates.parquet and reports in {out_dir}")
    say(json.dumps(record, sort_keys=True, allow_nan=False))


def main() -> None:
    """Console entry point (Hydra app over conf/plan.yaml)."""
    from wrpsim.app import hydra_entry

    hydra_entry(_task, "plan")


if __name__ == "__main__":
    main()
