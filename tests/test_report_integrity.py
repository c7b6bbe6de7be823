"""A run killed mid-write, or any directory without a valid completion marker, is never read as
a finished run by `wrpsim.report`; the report's schemas, escaping and command-line errors."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from wrpsim.metrics.records import REQUEST_SCHEMA
from wrpsim.report.collect import LEFTOVERS, scan
from wrpsim.report.dashboard import json_for_script
from wrpsim.report.schemas import requests_all_schema


def run_into(out, *overrides):
    cmd = [sys.executable, "-m", "wrpsim", f"hydra.run.dir={out}", "sim.progress=false",
           *overrides]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    return p


def report(sweep_dir, *extra):
    return subprocess.run([sys.executable, "-m", "wrpsim.report", f"sweep_dir={sweep_dir}",
                           *extra], capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """One completed small run to copy from."""
    d = tmp_path_factory.mktemp("done") / "run"
    run_into(d, "workload.max_requests=200")
    return d


def _leftovers(run_dir) -> list:
    """Files a write in progress leaves (`LEFTOVERS`: atomic writes' temporaries, tables
    written in the background and renamed when the run succeeds)."""
    return [p for pat in LEFTOVERS for p in run_dir.glob(pat)]


def kill_mid_write(run_dir) -> bool:
    """Start the full default run in `run_dir`; SIGKILL it as soon as a temp file appears.
    False if it finished first, or if the write it saw was renamed into place before the kill
    landed (a small file can be: then nothing shows it was interrupted mid-write)."""
    cmd = [sys.executable, "-m", "wrpsim", f"hydra.run.dir={run_dir}", "sim.progress=false",
           "seed=3"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while proc.poll() is None:
            if any(run_dir.glob(".*.tmp-*")):
                os.kill(proc.pid, signal.SIGKILL)
                break
            time.sleep(0.001)
    finally:
        proc.wait(timeout=120)
    return proc.returncode == -signal.SIGKILL and bool(_leftovers(run_dir))


def test_run_killed_while_writing_over_a_finished_run_is_not_complete(tmp_path, finished):
    sweep = tmp_path / "sweep"
    for attempt in range(5):
        run_dir = sweep / str(attempt)
        shutil.copytree(finished, run_dir)  # an old, finished run in the same directory
        if kill_mid_write(run_dir):
            break
        shutil.rmtree(run_dir)
    else:
        pytest.skip("the run was never caught mid-write in five tries")
    # the old run's marker went before the new run started (app.py); its result files may
    # still be there, but without `_DONE` they are never read as a finished run
    assert not (run_dir / "_DONE").exists()
    assert _leftovers(run_dir)
    p = report(sweep)
    assert p.returncode == 0, p.stderr
    s = json.loads(p.stdout.strip().splitlines()[-1])
    assert (s["completed"], s["incomplete"]) == (0, 1)
    assert "interrupted while writing" in s["not_completed"][run_dir.name]
    assert pq.read_table(sweep / "requests_all.parquet").num_rows == 0


def test_directories_without_a_valid_marker_are_flagged_not_read(tmp_path, finished):
    sweep = tmp_path / "sweep"
    for name in ("ok", "no-marker", "tmp-left", "bad-marker", "marker-no-summary"):
        shutil.copytree(finished, sweep / name)
    (sweep / "no-marker" / "_DONE").unlink()
    (sweep / "tmp-left" / "_DONE").unlink()
    (sweep / "tmp-left" / ".summary.json.tmp-99").write_text("{")
    (sweep / "bad-marker" / "_DONE").write_text("{trunc")
    (sweep / "marker-no-summary" / "summary.json").unlink()
    runs = {r.name: r for r in scan(sweep)}
    assert {n: r.status for n, r in runs.items()} == {
        "bad-marker": "incomplete", "marker-no-summary": "incomplete", "no-marker": "incomplete",
        "ok": "completed", "tmp-left": "incomplete"}
    assert "no completion marker" in runs["no-marker"].reason
    assert ".summary.json.tmp-99" in runs["tmp-left"].reason
    assert all(r.summary is None for n, r in runs.items() if n != "ok")
    p = report(sweep, f"out_dir={tmp_path / 'out'}")
    assert p.returncode == 0, p.stderr
    t = pq.read_table(tmp_path / "out" / "results.parquet").to_pandas().set_index("run")
    assert t.loc["ok", "requests_total"] == 200
    assert t.drop(index="ok")["requests_total"].isna().all()
    assert set(pq.read_table(tmp_path / "out" / "requests_all.parquet")
               .column("run").to_pylist()) == {"ok"}


def test_unreadable_results_next_to_a_marker_are_incomplete_with_a_reason(tmp_path, finished):
    """A hand-edited summary (text for numbers, `{}`) or a truncated requests.parquet next to a
    valid `_DONE` is not a finished run: the report classes it incomplete, says why, and reads
    none of it, instead of a traceback or a run silently missing from the plots."""
    sweep = tmp_path / "sweep"
    for name in ("ok", "text", "empty", "truncated"):
        shutil.copytree(finished, sweep / name)
    (sweep / "text" / "summary.json").write_text('{"cost_usd":"cheap","slo_attainment":"high"}')
    (sweep / "empty" / "summary.json").write_text("{}")
    whole = (sweep / "truncated" / "requests.parquet").read_bytes()
    (sweep / "truncated" / "requests.parquet").write_bytes(whole[:1000])
    p = report(sweep, f"out_dir={tmp_path / 'out'}")
    assert p.returncode == 0, p.stderr
    assert "Traceback" not in p.stderr
    s = json.loads(p.stdout.strip().splitlines()[-1])
    assert (s["completed"], s["incomplete"]) == (1, 3)
    why = s["not_completed"]
    assert "summary.json lacks requests_total" in why["text"]
    assert "summary.json lacks requests_total" in why["empty"]
    assert "requests.parquet unreadable" in why["truncated"]
    # the required keys present but text where a number belongs
    good = json.loads((finished / "summary.json").read_text())
    (sweep / "text" / "summary.json").write_text(json.dumps({**good, "cost_usd": "cheap"}))
    assert {r.name: r.reason for r in scan(sweep)}["text"].endswith(
        'summary.json cost_usd is "cheap", not a number')
    t = pq.read_table(tmp_path / "out" / "results.parquet").to_pandas().set_index("run")
    assert t["status"].to_dict() == {"empty": "incomplete", "ok": "completed",
                                     "text": "incomplete", "truncated": "incomplete"}
    assert set(pq.read_table(tmp_path / "out" / "requests_all.parquet")
               .column("run").to_pylist()) == {"ok"}


def test_schemas_are_explicit(tmp_path, finished):
    sweep = tmp_path / "sweep"
    shutil.copytree(finished, sweep / "0")
    (sweep / "0" / ".hydra").mkdir(exist_ok=True)
    (sweep / "0" / ".hydra" / "overrides.yaml").write_text("- router=random\n- +a.b=3\n")
    done = json.loads((sweep / "0" / "_DONE").read_text())  # the record the report reads
    (sweep / "0" / "_DONE").write_text(json.dumps({**done, "overrides": ["router=random",
                                                                         "+a.b=3"]}))
    assert report(sweep).returncode == 0
    schema = pq.read_schema(sweep / "results.parquet")
    assert schema.field("sweep.router").type == pa.string()
    assert schema.field("sweep.a.b").type == pa.string()
    assert schema.field("cost_usd").type == pa.float64()
    assert schema.field("requests_total").type == pa.int64()
    assert json.loads(schema.metadata[b"wrpsim.swept"]) == ["router", "a.b"]
    req = pq.read_schema(sweep / "requests_all.parquet")
    assert req.names == ["run", *REQUEST_SCHEMA.names, "trace_request_id"]
    assert req.remove_metadata().equals(requests_all_schema().remove_metadata())


def test_json_for_script_cannot_close_the_script_element():
    text = json_for_script({"k": "</script><!-- \u2028 & >"})
    assert "</" not in text and "<!--" not in text and "\u2028" not in text and "&" not in text
    assert json.loads(text) == {"k": "</script><!-- \u2028 & >"}


@pytest.mark.parametrize(("args", "message"), [
    ([], r"sweep_dir is required"),
    (["sweep_dir=/nonexistent/x"], r"is not a directory"),
    (["sweep_dir=.", "colour=red"], r"unknown key 'colour'; valid keys: cdf_points"),
    (["sweep_dir=.", "cdf_points=1"], r"cdf_points must be an integer >= 2"),
    # 10**21 instants stopped the dashboard with numpy's ValueError (tests/test_fuzz_verbs.py)
    (["sweep_dir=.", "time_bins=999999999999999999999"],
     r"time_bins must be an integer in \[2, 100,000\]"),
])
def test_report_bad_input_is_one_line_and_status_2(tmp_path, args, message):
    import re

    p = subprocess.run([sys.executable, "-m", "wrpsim.report", *args], capture_output=True,
                       text=True, timeout=120, cwd=tmp_path)
    assert p.returncode == 2
    assert p.stderr.startswith("wrpsim: error:") and len(p.stderr.strip().splitlines()) == 1
    assert re.search(message, p.stderr), p.stderr


def test_report_on_an_empty_directory_says_there_is_no_run(tmp_path):
    p = report(tmp_path)
    assert p.returncode == 2 and "no runs under" in p.stderr


def test_report_on_a_capacity_plan_says_it_is_not_a_sweep(tmp_path):
    """A `wrpsim.plan` folder (plan.json) is not a sweep: one line pointing at its own report,
    nothing written into it (the report used to count the plan as one incomplete run)."""
    (tmp_path / "plan.json").write_text("{}")
    (tmp_path / "_DONE").write_text("{}")
    p = report(tmp_path)
    assert p.returncode == 2 and len(p.stderr.strip().splitlines()) == 1
    assert "is a capacity plan (plan.json), not a sweep" in p.stderr
    assert sorted(x.name for x in tmp_path.iterdir()) == ["_DONE", "plan.json"]


@pytest.fixture(scope="module")
def other_verbs(tmp_path_factory):
    """A real capacity plan and a real wrpsim.net scenario, to copy into sweeps."""
    d = tmp_path_factory.mktemp("verbs")
    p = subprocess.run([sys.executable, "-m", "wrpsim.plan", "workload.max_requests=200",
                        f"hydra.run.dir={d / 'plan'}"], capture_output=True, text=True,
                       timeout=300)
    assert p.returncode == 0, p.stderr
    n = subprocess.run([sys.executable, "-m", "wrpsim.net", "leaves=2", "hosts_per_leaf=2",
                        "spines=2", f"out_dir={d / 'net'}"], capture_output=True, text=True,
                       timeout=300)
    assert n.returncode == 0, n.stderr
    assert (d / "plan" / "plan.json").is_file() and (d / "net" / "summary.json").is_file()
    return d


def test_plan_and_net_folders_inside_a_sweep_are_not_runs(tmp_path, finished, other_verbs):
    """A plan next to a sweep's runs (docs/sweeps.md: its report.html is linked) and a
    wrpsim.net folder are neither rows nor controls; a plan job that failed before writing
    plan.json (its Hydra record names the job wrpsim-plan) is not a run either."""
    sweep = tmp_path / "sweep"
    for name in ("0", "1"):
        shutil.copytree(finished, sweep / name)
    shutil.copytree(other_verbs / "plan", sweep / "plan")
    shutil.copytree(other_verbs / "net", sweep / "net")
    shutil.copytree(other_verbs / "plan", sweep / "plan-failed")
    for f in ("plan.json", "_DONE"):
        (sweep / "plan-failed" / f).unlink()
    (sweep / "plan-failed" / "error.json").write_text('{"message": "boom"}')
    assert [r.name for r in scan(sweep)] == ["0", "1"]
    p = report(sweep)
    assert p.returncode == 0, p.stderr
    s = json.loads(p.stdout.strip().splitlines()[-1])
    assert (s["runs"], s["completed"], s["incomplete"], s["failed"]) == (2, 2, 0, 0)
    manifest = json.loads((sweep / "manifest.json").read_text())
    assert [r["run"] for r in manifest["runs"]] == ["0", "1"]
    assert 'href="plan/report.html"' in (sweep / "dashboard.html").read_text(encoding="utf-8")


@pytest.mark.parametrize("layout", ["plans", "net", "net-inside"])
def test_report_on_other_verbs_output_is_one_line_and_writes_nothing(tmp_path, other_verbs,
                                                                       layout):
    """A sweep of capacity plans (`wrpsim.plan -m`) or a wrpsim.net folder holds no run: one
    line naming what it holds, status 2, nothing written (both used to exit 0 with bogus
    'incomplete' runs)."""
    sweep = tmp_path / "sweep"
    if layout == "plans":
        for name in ("0", "1"):
            shutil.copytree(other_verbs / "plan", sweep / name)
    elif layout == "net":
        shutil.copytree(other_verbs / "net", sweep)
    else:
        shutil.copytree(other_verbs / "net", sweep / "n1")
    before = sorted(x.relative_to(sweep) for x in sweep.rglob("*"))
    p = report(sweep)
    assert p.returncode == 2 and len(p.stderr.strip().splitlines()) == 1, p.stderr
    assert p.stderr.startswith("wrpsim: error: report: sweep_dir")
    assert {"plans": "holds no simulation run, only capacity plans (0, 1;",
            "net": "is a network scenario (python -m wrpsim.net), not a sweep",
            "net-inside": "holds no simulation run, only network scenarios (n1)"}[layout] \
        in p.stderr
    assert sorted(x.relative_to(sweep) for x in sweep.rglob("*")) == before


def test_report_on_a_plan_sweep_with_a_failed_job_names_the_failure(tmp_path, other_verbs):
    """A `wrpsim.plan -m` folder whose job failed was refused without saying which failed."""
    from wrpsim.errors import ConfigError
    from wrpsim.report.collect import scan

    sweep = tmp_path / "sweep"
    for name in ("0", "1"):
        shutil.copytree(other_verbs / "plan", sweep / name)
    for f in ("plan.json", "_DONE"):
        (sweep / "0" / f).unlink(missing_ok=True)
    (sweep / "0" / "error.json").write_text('{"message": "boom"}')
    with pytest.raises(ConfigError, match=r"only capacity plans \(0, 1; .*; failed: 0 \(the "
                                          r"error is in 0/error\.json\)\)"):
        scan(sweep)
