"""The closing table of a `python -m wrpsim.plan -m` sweep: one row per job, in job order."""

from __future__ import annotations

import json

from wrpsim.plan.sweepview import plan_sweep_table


def _job(root, name, plan=None, error=False, overrides=()):
    d = root / name
    (d / ".hydra").mkdir(parents=True)
    (d / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))
    if plan is not None:
        (d / "plan.json").write_text(json.dumps(plan))
        (d / "_DONE").write_text("{}")
    if error:
        (d / "error.json").write_text("{}")


def test_the_plan_sweep_table_names_each_jobs_fleet_or_failure_in_job_order(tmp_path):
    plan = {"fleet_label": "2 × h200", "cost_per_hour_usd": 24.0, "gpu_count": 4,
            "energy_kwh_per_hour": 2.953, "slo_met": True}
    _job(tmp_path, "0", plan, overrides=["plan.objective=cost", "json=true"])
    _job(tmp_path, "1", error=True, overrides=["plan.objective=bogus"])
    _job(tmp_path, "2", overrides=["plan.objective=gpus"])  # no plan.json: incomplete
    _job(tmp_path, "10", {**plan, "slo_met": False}, overrides=["plan.objective=energy"])
    lines = plan_sweep_table(tmp_path).splitlines()
    assert lines[0] == f"wrpsim.plan: sweep {tmp_path}: 4 plans, 1 meets the SLO"
    assert lines[1].split() == ["job", "fleet", "$/h", "GPUs", "kWh/h", "SLO", "overrides"]
    assert lines[2].split() == ["0", "2", "×", "h200", "24.00", "4", "2.95", "meets",
                                "plan.objective=cost"]  # json= is not an override shown
    assert lines[3].split()[:4] == ["1", "failed", "(see", "error.json)"]
    assert lines[3].endswith("plan.objective=bogus")
    assert lines[4].split() == ["2", "incomplete", "plan.objective=gpus"]
    assert lines[5].split()[0] == "10" and "misses" in lines[5]  # 10 after 2: job order
    # this sweep's jobs only, when they are known
    assert plan_sweep_table(tmp_path, ["1"]).splitlines()[0].endswith("1 plan, 0 meet the SLO")
    assert plan_sweep_table(tmp_path / "none") == ""


def test_a_plan_whose_record_is_damaged_is_not_skipped_on_resume(tmp_path):
    """Resume skipped a plan whose plan.json was cut short (its sweep table then called it
    incomplete on every resume); a skipped plan with json=true prints its record."""
    from wrpsim.jobs import _json_of_skipped, completed_with, config_digest

    digest = config_digest({"seed": 0})
    (tmp_path / "_DONE").write_text(json.dumps({"config_sha256": digest,
                                                "inputs_sha256": "x"}))
    outputs = ("plan.json", "candidates.parquet", "report.html", "report.md")
    (tmp_path / "plan.json").write_text('{"slo_met": tr')
    assert not completed_with(tmp_path, digest, "x", outputs)
    (tmp_path / "plan.json").write_text('{"slo_met": true}')
    assert completed_with(tmp_path, digest, "x", outputs)
    assert not completed_with(tmp_path, digest, "y", outputs)  # inputs changed
    import io
    import sys

    out, sys.stdout = sys.stdout, io.StringIO()
    try:
        _json_of_skipped({"json": True}, tmp_path, [])
        printed = sys.stdout.getvalue()
    finally:
        sys.stdout = out
    assert json.loads(printed) == {"slo_met": True}
