"""`python -m wrpsim` / `wrpsim`: replay a workload through a router onto a fleet.

Hydra overrides select and tweak the catalogs, e.g.
`python -m wrpsim workload=azure-code-2023 pool=h100-llama70b router=least-outstanding seed=3`;
`-m` sweeps. The summary is printed as one JSON line; the result files land in the run's output
directory (see conf/config.yaml), followed by the completion marker `_DONE`.

In a sweep (`-m`) a failing run writes `error.json` and the sweep goes on; re-running a sweep
with the same `hydra.sweep.dir=…` skips the runs already completed with the same config (see
`wrpsim/app.py` and docs/sweeps.md). `python -m wrpsim.report sweep_dir=…` gathers a sweep.
"""

from __future__ import annotations

import json


def _task(cfg: dict, out_dir: str) -> None:
    from wrpsim.app import say
    from wrpsim.sim import run

    summary = run(cfg, out_dir)
    say(f"wrpsim: results in {out_dir}")
    say(json.dumps(summary, sort_keys=True))


def main() -> None:
    """Console-script entry point."""
    from wrpsim.app import hydra_entry

    hydra_entry(_task)


if __name__ == "__main__":
    main()
