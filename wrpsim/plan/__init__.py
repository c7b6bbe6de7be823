"""Capacity planning: the cheapest fleet that meets an SLO, found by simulation.

`python -m wrpsim.plan` (Hydra, `conf/plan.yaml`) or `run_plan(cfg, out_dir, trace=None)` from
Python. Modules, in the order a plan runs through them: `config` and `slo` (the validated `plan`
section), `traces` (search window, recheck, scaled load), `estimate` (analytical first guess),
`evaluate` (one fleet = one cached simulation), `search` (bisection per candidate, coordinate
descent over mixes and P:D ratios), `verify` (full trace, fresh-seed recheck, one fewer, ±load),
`record` (plan.json), `schemas` (candidates.parquet), `report` and `page` (report.md and the
offline report.html), `planner` (the pure core, which writes them). See docs/planning.md.
"""

from wrpsim.plan.planner import run_plan

__all__ = ["run_plan"]
