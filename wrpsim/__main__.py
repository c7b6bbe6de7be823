"""`python -m wrpsim` / `wrpsim`: replay a workload through a router onto a fleet.

Hydra overrides select and tweak the catalogs, e.g.
`python -m wrpsim workload=azure-code-2023 pool=h100-llama70b router=least-outstanding seed=3`;
`-m` sweeps. A run prints a short summary on stderr (`wrpsim.runview`: fleet, requests, p50 / p99
TTFT and TPOT, SLO attainment, goodput, cost, energy, time, results directory; a warning line
when fewer than half the requests met the SLO); a sweep prints
one aligned line per run and a closing table. `json=true` also prints the whole summary as one
JSON line on stdout (for scripts; in a sweep with `run`, `out_dir` and `overrides` added, also
for a run skipped on resume); it is always in `summary.json`. The result files land in the
run's output directory (see conf/config.yaml), followed by the completion marker `_DONE`.

In a sweep (`-m`) a failing run writes `error.json` and the sweep goes on; re-running a sweep
with the same `hydra.sweep.dir=…` skips the runs already completed with the same config and
inputs (see
`wrpsim/jobs.py` and docs/sweeps.md). `python -m wrpsim.report sweep_dir=…` gathers a sweep.
"""

from __future__ import annotations

import json
import sys

# every file `wrpsim.sim.run` may write into a run's directory (some only when a feature is on:
# routing.parquet, network.*, trace.json); removed before a run, so a re-used directory keeps
# none from an earlier run (tests/test_out_dir.py checks this list against wrpsim/sim.py)
RUN_FILES = ("requests.parquet", "instances.parquet", "tasks.parquet", "routing.parquet",
             "network.json", "network.parquet", "config.yaml", "trace.json", "summary.json")


def _job_context() -> tuple[bool, list[str]]:
    """(inside a -m sweep, the job's overrides but the printing flags json= and sim.progress=)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    hc = HydraConfig.get()
    shown = list(hc.overrides.task)
    if shown:
        from wrpsim.jobs import presentation

        shown = [o for o in shown if not presentation(o)]
    return hc.mode == RunMode.MULTIRUN, shown


def _task(cfg: dict, out_dir: str) -> None:
    from pathlib import Path

    from wrpsim.app import say, warning_line
    from wrpsim.errors import boolean
    from wrpsim.runview import run_line, run_summary
    from wrpsim.sim import run
    from wrpsim.verdict import drop_warnings, idle_pool_warnings, verdict

    as_json = boolean("json", cfg.pop("json", False))
    summary = run(cfg, out_dir)
    sweep, overrides = _job_context()
    if sweep:
        say(run_line(summary, Path(out_dir).name, overrides), sys.stderr)
        for line in [*idle_pool_warnings(summary), *drop_warnings(summary)]:
            warning_line(f"run {Path(out_dir).name}: {line}")
    else:
        say(run_summary(summary, cfg, out_dir, overrides), sys.stderr)
        why = verdict(summary)
        for line in [*idle_pool_warnings(summary), why, *drop_warnings(summary, why)]:
            if line:
                warning_line(line)
    if as_json:
        say(json_line(summary, out_dir, overrides if sweep else None))


def json_line(summary: dict, out_dir: str, overrides: list[str] | None) -> str:
    """The `json=true` line: the summary; in a sweep (`overrides` given) with `run` (the run's
    folder name), `out_dir` and `overrides` added, so that the lines of parallel jobs, which
    arrive in completion order, say which run they are."""
    from pathlib import Path

    if overrides is not None:
        summary = {**summary, "run": Path(out_dir).name, "out_dir": str(out_dir),
                   "overrides": overrides}
    return json.dumps(summary, sort_keys=True)


def main() -> None:
    """Run the app (Hydra reads `sys.argv`); returns when done, raises SystemExit on a user
    error. Tests call it in-process; the console entry point is `cli`."""
    from wrpsim.app import hydra_entry

    hydra_entry(_task, outputs=RUN_FILES)


def cli() -> None:
    """Console-script entry point (`wrpsim`, `python -m wrpsim`): `main()`, then the process
    ends without the interpreter's teardown once it succeeded (`wrpsim.app.leave`), and starts
    with the garbage collector paused until the run's loop (`wrpsim.app.pause_gc`) and Arrow on
    the C library's allocator (`wrpsim.app.system_allocator`)."""
    from wrpsim.app import leave, pause_gc, system_allocator

    system_allocator()
    pause_gc()
    main()
    leave()


if __name__ == "__main__":
    cli()
