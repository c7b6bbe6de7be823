"""Acceptance on the Azure 2023 conversation trace: Llama-3.1-70B on A100, H100 and H200
candidates (`conf/plan.yaml` as shipped). The chosen fleet meets the SLO when re-simulated with
a seed the planner never used, and every fleet with one instance fewer fails it.

The plan runs on the trace's busiest 300 s, [1640, 1940) s (2,372 of its 19,366 requests), not
the whole hour: the ~25 simulations of a plan on the full trace took a minute, mostly in
under-provisioned fleets whose backlog grows for an hour. The peak is what sizes a fleet, and
the decision keeps clear margins: the chosen fleet (a mix, cheaper than every single-type fleet)
meets the p99 targets by 19 % and 35 %, and with seeds 2 to 5 alike each one-fewer fleet misses
a target by 41 % or more.
"""

from __future__ import annotations

import copy
import json

import numpy as np
import pyarrow.parquet as pq
import pytest

from tests.test_plan_config import compose_plan, plan_cli
from wrpsim.metrics.summary import summarize
from wrpsim.plan.slo import SLOTargets
from wrpsim.plan.traces import shuffle_within
from wrpsim.rng import stream
from wrpsim.sim import Simulation
from wrpsim.workload import build_workload

NEW_SEED = 2  # the plan searched with seed 0 and re-checked with seed 1
PEAK = ("workload.start_s=1640", "workload.end_s=1940")  # the busiest 300 s (docstring)


def judge(cfg: dict, counts: dict, trace, seed: int) -> tuple[bool, dict]:
    run = {k: copy.deepcopy(cfg[k]) for k in ("router", "network", "slo", "pue", "sim")}
    pools = {name: {**cfg["plan"]["candidates"][name], "count": n}
             for name, n in counts.items() if n}
    # qoe off: the SLO has no QoE target (as in the planner's own runs, whose summaries leave
    # QoE out); per-token QoE accounting is most of the time of an under-provisioned fleet
    run.update(seed=seed, pool={"name": "check", "pools": pools}, qoe=None)
    sim = Simulation(run, trace)
    summary = summarize(*sim.run(), sim.slo, sim.pue)
    slo = SLOTargets.parse(cfg["plan"]["slo"])
    margins = slo.margins(summary)
    return slo.met(margins), margins


@pytest.mark.slow
def test_azure_plan_meets_the_slo_with_a_new_seed_and_one_fewer_fails(tmp_path):
    p = plan_cli(tmp_path, *PEAK, "json=true")
    assert p.returncode == 0, p.stderr
    record = json.loads(p.stdout)
    assert record == json.loads((tmp_path / "plan.json").read_text())
    assert record["slo_met"] and record["recheck"]["slo_met"]
    assert record["workload"] == "azure-conv-2023" and record["model"] == "llama3.1-70b"
    assert {f["gpu"] for f in record["fleet"]} <= {"a100-80gb", "h100-80gb", "h200-141gb"}
    assert record["gpu_count"] == sum(f["gpus"] for f in record["fleet"])
    assert record["cost_per_hour_usd"] == pytest.approx(
        sum(f["cost_per_hour_usd"] for f in record["fleet"]))
    assert all(m >= 0 for m in record["slo_margins"].values())
    assert record["one_fewer"] and not any(o["slo_met_full"] for o in record["one_fewer"])
    singles = [r["cost_per_hour_usd"] for r in record["search"]["single_type"]]
    assert record["cost_per_hour_usd"] <= min(c for c in singles if c is not None)

    cands = pq.read_table(tmp_path / "candidates.parquet").to_pandas()
    assert set(cands.trace) >= {"search", "recheck", "load-0.8", "load-1.2"}
    assert cands.chosen.any()
    for f in ("report.html", "report.md", "_DONE"):
        assert (tmp_path / f).is_file(), f
    # fleet.yaml replays the fleet as report.md says: copied into a catalog's pools folder,
    # `python -m wrpsim pool=plan` with the plan's router and workload gives its figures
    import os
    import subprocess
    import sys

    cat = tmp_path / "cat"
    (cat / "pools").mkdir(parents=True)
    (cat / "pools" / "plan.yaml").write_text((tmp_path / "fleet.yaml").read_text())
    r = subprocess.run([sys.executable, "-m", "wrpsim", "pool=plan", "router=least-outstanding",
                        *PEAK, "json=true", f"hydra.run.dir={tmp_path / 'replay'}"],
                       capture_output=True, text=True, timeout=300,
                       env={**os.environ, "WRPSIM_CATALOG": str(cat)})
    assert r.returncode == 0, r.stderr
    replay = json.loads(r.stdout.strip().splitlines()[-1])
    assert replay["cost_per_hour_usd"] == pytest.approx(record["cost_per_hour_usd"])
    assert replay["ttft_p99_s"] == pytest.approx(record["metrics"]["ttft_p99_s"])
    assert "router=least-outstanding" in (tmp_path / "report.md").read_text()

    cfg = compose_plan(*PEAK)
    trace = shuffle_within(build_workload(cfg["workload"], NEW_SEED), 300.0,
                           stream(NEW_SEED, "test.recheck"))
    assert not np.array_equal(trace["output_tokens"].to_numpy(),
                              build_workload(cfg["workload"], 0)["output_tokens"].to_numpy())
    counts = record["counts"]
    met, margins = judge(cfg, counts, trace, NEW_SEED)
    assert met, margins
    for name, n in counts.items():
        if n:
            fewer = {**counts, name: n - 1}
            if any(fewer.values()):
                assert not judge(cfg, fewer, trace, NEW_SEED)[0], fewer
