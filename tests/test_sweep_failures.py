"""Failure recording and resume rules of the Hydra shell (wrpsim/app.py), on the basic launcher."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from wrpsim.jobs import completed_with, config_digest

BASE = ("workload.max_requests=100", "sim.progress=false")


def multirun(sweep_dir, *overrides, env=None):
    cmd = [sys.executable, "-m", "wrpsim", "-m", f"hydra.sweep.dir={sweep_dir}", *BASE, *overrides]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300,
                          env={**os.environ, **(env or {})})


def skips(p) -> int:
    return sum(ln.startswith("wrpsim: skip ") for ln in p.stderr.splitlines())


def test_a_user_error_in_a_sweep_is_recorded_and_the_sweep_goes_on(tmp_path):
    p = multirun(tmp_path, "pool.pools.h100.gpu=a10g-24gb,h100-80gb")
    assert p.returncode == 0, p.stderr
    assert "Traceback" not in p.stderr
    err_line = [ln for ln in p.stderr.splitlines() if ln.startswith("wrpsim: error:")]
    assert len(err_line) == 1 and "GiB" in err_line[0]
    err = json.loads((tmp_path / "0" / "error.json").read_text())
    assert err["exception_type"] == "ConfigError" and err["user_error"] is True
    assert "a10g-24gb" in err["message"]
    assert "pool.pools.h100.gpu=a10g-24gb" in err["overrides"]
    assert not (tmp_path / "0" / "_DONE").exists()
    done = json.loads((tmp_path / "1" / "_DONE").read_text())
    assert done["status"] == "completed" and len(done["config_sha256"]) == 64
    assert (tmp_path / "1" / "summary.json").is_file()


def test_a_sweep_whose_every_run_failed_exits_2_after_its_table(tmp_path):
    """Every run refused on bad input: the sweep used to exit 0, which a script or CI job could
    not tell from success. The table still shows each run; the last line says all failed."""
    p = multirun(tmp_path, "pool.pools.h100.count=abc,xyz")
    assert p.returncode == 2, p.stderr
    lines = p.stderr.strip().splitlines()
    assert lines[-1] == (f"wrpsim: error: every run of the sweep {tmp_path} failed (each one's "
                         f"error is above and in its error.json)")
    assert sum("failed (see " in ln for ln in lines) == 2
    assert "Traceback" not in p.stderr
    # its report has nothing to tabulate: it says so (the JSON line's not_completed says why)
    r = subprocess.run([sys.executable, "-m", "wrpsim.report", f"sweep_dir={tmp_path}"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stderr.strip() == (f"wrpsim: warning: report: no run under {tmp_path} completed "
                                f"(2 failed, 0 incomplete or unreadable): the tables hold no "
                                f"results; not_completed in the JSON line says why each is left "
                                f"out")
    assert json.loads(r.stdout.strip().splitlines()[-1])["completed"] == 0


def test_a_plan_sweep_whose_every_plan_failed_exits_2(tmp_path):
    """The plan's sweeps share the app's entry: a sweep of plans that all failed exits 2 too."""
    cmd = [sys.executable, "-m", "wrpsim.plan", "-m", f"hydra.sweep.dir={tmp_path}",
           "workload.max_requests=20", "plan.objective=foo,bar"]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert p.returncode == 2, p.stderr
    assert p.stderr.strip().splitlines()[-1].startswith(
        f"wrpsim: error: every run of the sweep {tmp_path} failed")


def test_a_changed_config_is_rerun_not_skipped(tmp_path):
    assert multirun(tmp_path, "router=round-robin,random").returncode == 0
    same = multirun(tmp_path, "router=round-robin,random")
    assert skips(same) == 2
    other = multirun(tmp_path, "router=round-robin,random", "seed=1")
    assert skips(other) == 0
    assert json.loads((tmp_path / "0" / "summary.json").read_text())["seed"] == 1
    forced = multirun(tmp_path, "router=round-robin,random", "seed=1", env={"WRPSIM_RERUN": "1"})
    assert skips(forced) == 0 and forced.returncode == 0


def test_a_failed_run_is_retried_and_its_stale_error_removed(tmp_path):
    assert multirun(tmp_path, "router=round-robin").returncode == 0
    (tmp_path / "0" / "_DONE").unlink()
    (tmp_path / "0" / "error.json").write_text('{"message": "old"}')
    p = multirun(tmp_path, "router=round-robin")
    assert skips(p) == 0
    assert (tmp_path / "0" / "_DONE").is_file() and not (tmp_path / "0" / "error.json").exists()


def test_single_run_user_error_stays_one_line_and_status_2(tmp_path):
    cmd = [sys.executable, "-m", "wrpsim", f"hydra.run.dir={tmp_path}", *BASE,
           "pool.pools.h100.count=0"]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert p.returncode == 2
    assert p.stderr.startswith("wrpsim: error:") and "Traceback" not in p.stderr
    assert p.stderr.count("\n") == 1 and not (tmp_path / "_DONE").exists()
    # the folder says why it holds no results (the report read it as 'still running, killed')
    err = json.loads((tmp_path / "error.json").read_text())
    assert err["user_error"] and err["message"] in p.stderr


@pytest.mark.parametrize("content", ["", "not json", '{"config_sha256": "abc"}', "[1]"])
def test_completion_marker_must_match_the_digest(tmp_path, content):
    digest = config_digest({"seed": 0, "hydra": {"ignored": True}})
    assert digest == config_digest({"seed": 0})
    (tmp_path / "_DONE").write_text(content)
    assert not completed_with(tmp_path, digest)
    (tmp_path / "_DONE").write_text(json.dumps({"config_sha256": digest}))
    assert completed_with(tmp_path, digest)


def test_a_worker_that_dies_is_not_called_a_launcher_that_cannot_start(tmp_path):
    """A job whose process dies (os.abort stands for the out-of-memory killer) under joblib is
    one line saying a worker died and where the finished runs are, not 'cannot start'."""
    pytest.importorskip("hydra_plugins.hydra_joblib_launcher")
    p = multirun(tmp_path, "hydra/launcher=joblib", "hydra.launcher.n_jobs=2",
                 "router._target_=wrpsim.router.RoundRobin,os.abort")
    assert p.returncode == 1  # a failure, not bad input (--help's exit statuses)
    line = [ln for ln in p.stderr.splitlines() if ln.startswith("wrpsim: error:")]
    assert len(line) == 1 and "Traceback" not in p.stderr, p.stderr
    assert line[0].startswith("wrpsim: error: a sweep job's worker died (killed, e.g. out of "
                              "memory, or crashed): TerminatedWorkerError: ")
    assert "; the launcher cancelled the sweep's other jobs; " in line[0]
    done = len(list(tmp_path.rglob("_DONE")))  # joblib may or may not have finished job 0
    assert (f"{done} finished run in {tmp_path}" if done else
            f"no run in {tmp_path} has finished") in line[0] and "cannot start" not in line[0]


def test_a_submitit_job_that_died_is_a_dead_worker_and_no_finished_run_is_promised(tmp_path):
    """submitit's UncompletedJobError was 'the sweep launcher cannot start', cut off at a
    pickle path; and a sweep with no finished run pointed at its finished runs."""
    from wrpsim.hydra_errors import explain

    class UncompletedJobError(RuntimeError):
        pass

    exc = UncompletedJobError("Job 9903 (task: 0) with path /x/.submitit/9903/9903_0_result.pkl"
                              "\nhas not produced any output (state: FINISHED)")
    argv = ["-m", f"hydra.sweep.dir={tmp_path}"]
    assert explain(exc, argv) == (
        "a sweep job's worker died (killed, e.g. out of memory, or crashed): UncompletedJobError:"
        " Job 9903 (task: 0) has not produced any output (state: FINISHED); no run in "
        f"{tmp_path} has finished; rerunning the same command resumes the sweep (completed runs "
        "are skipped)")
    for n in ("0", "1"):
        (tmp_path / n).mkdir()
        (tmp_path / n / "_DONE").write_text("{}")
    assert (f"; 2 finished runs in {tmp_path} (python -m wrpsim.report sweep_dir={tmp_path} "
            "tabulates them); ") in explain(exc, argv)


def test_a_rerun_in_the_same_directory_leaves_no_file_of_the_earlier_run(tmp_path):
    """trace.json of a sim.trace=true run and routing.parquet of a compress-route run used to
    survive a plain rerun into the same directory, read as results of the new config. The
    files wrpsim writes (and their interrupted temporaries) go first; a user's file stays."""
    def run(*overrides):
        cmd = [sys.executable, "-m", "wrpsim", f"hydra.run.dir={tmp_path}", *BASE, *overrides]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        assert p.returncode == 0, p.stderr

    run("router=compress-route", "sim.trace=true")
    assert (tmp_path / "trace.json").is_file() and (tmp_path / "routing.parquet").is_file()
    (tmp_path / "notes.txt").write_text("mine")
    (tmp_path / ".summary.json.tmp-1").write_text("{")
    run("router=round-robin")
    assert not (tmp_path / "trace.json").exists() and not (tmp_path / "routing.parquet").exists()
    assert not (tmp_path / ".summary.json.tmp-1").exists()
    assert (tmp_path / "notes.txt").read_text() == "mine"
    assert (tmp_path / "summary.json").is_file() and (tmp_path / "_DONE").is_file()


def test_the_cleared_files_are_every_file_the_verbs_write():
    """RUN_FILES / PLAN_FILES (what a rerun removes) name every file sim.run / the planner
    writes into a run's directory, so a new output cannot be forgotten there."""
    import re
    from pathlib import Path

    from wrpsim.__main__ import RUN_FILES
    from wrpsim.plan import planner
    from wrpsim.plan.__main__ import PLAN_FILES

    sim = (Path(__file__).resolve().parents[1] / "wrpsim" / "sim.py").read_text()
    assert set(re.findall(r'\bout / "([^"]+)"', sim)) == set(RUN_FILES)
    assert {planner.PLAN_JSON, planner.CANDIDATES, planner.FLEET_YAML, planner.REPORT_HTML,
            planner.REPORT_MD} == set(PLAN_FILES)


def test_a_rerun_rejected_for_a_bad_value_leaves_the_earlier_results(tmp_path):
    """`seed=abc` stops with one line before simulating: the earlier run's results stay (it
    removed them all, leaving an empty folder), only its `_DONE` goes."""
    def run(*overrides):
        cmd = [sys.executable, "-m", "wrpsim", f"hydra.run.dir={tmp_path}", *BASE, *overrides]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=300)

    assert run().returncode == 0
    before = (tmp_path / "requests.parquet").read_bytes()
    p = run("seed=abc")
    assert p.returncode == 2 and "seed must be an integer" in p.stderr
    assert (tmp_path / "requests.parquet").read_bytes() == before
    assert (tmp_path / "summary.json").is_file() and not (tmp_path / "_DONE").exists()


def test_a_resume_that_only_turns_the_progress_line_off_skips_completed_runs(tmp_path):
    from wrpsim.jobs import config_digest

    p = multirun(tmp_path, "router=round-robin,random")
    assert p.returncode == 0, p.stderr
    p = multirun(tmp_path, "router=round-robin,random", "sim.progress=false")
    assert p.returncode == 0 and skips(p) == 2, p.stderr
    base = {"seed": 0, "sim": {"progress": "auto", "horizon_s": None}}
    assert config_digest({**base, "sim": {"progress": False, "horizon_s": None}}) == \
        config_digest(base) != config_digest({**base, "seed": 1})


def test_a_resume_with_json_true_changes_no_recorded_override_nor_sweep_dimension(tmp_path):
    """Hydra rewrites `.hydra/overrides.yaml` of every job of a resumed sweep, skipped ones too;
    the report reads the overrides the run's marker recorded, and the print-only keys (json,
    sim.progress) are never swept dimensions nor shown in the winner box or the table."""
    import pyarrow.parquet as pq

    p = multirun(tmp_path, "router=round-robin,random")
    assert p.returncode == 0, p.stderr
    p = multirun(tmp_path, "router=round-robin,random", "json=true")
    assert p.returncode == 0 and skips(p) == 2, p.stderr
    assert "json=True" in (tmp_path / "0" / ".hydra" / "overrides.yaml").read_text()  # Hydra's
    r = subprocess.run([sys.executable, "-m", "wrpsim.report", f"sweep_dir={tmp_path}"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    t = pq.read_table(tmp_path / "results.parquet")
    swept = [c for c in t.column_names if c.startswith("sweep.")]
    assert swept == ["sweep.workload.max_requests", "sweep.router"]
    assert "json" not in t.column("overrides")[0].as_py()
    page = (tmp_path / "dashboard.html").read_text()
    assert '"overrides":["router=round-robin"]' in page or '"overrides":["router=random"]' in page
    assert "json=True" not in page
    # the closing table of a resume names no print-only key either
    table = p.stderr[p.stderr.index("wrpsim: sweep "):]
    assert "json=" not in table and "sim.progress" not in table


@pytest.mark.parametrize("sweep", [True, False])
def test_ctrl_c_is_one_line_and_status_130(monkeypatch, capsys, tmp_path, sweep):
    """Ctrl-C printed Hydra's ~50-line KeyboardInterrupt traceback."""
    from tests.conftest import run_app

    def interrupt(*_a, **_k):
        raise KeyboardInterrupt

    monkeypatch.setattr("wrpsim.sim.run", interrupt)
    code, _, err = run_app(monkeypatch, capsys, tmp_path, *(["-m"] if sweep else []), *BASE)
    assert code == 130 and "Traceback" not in err
    assert err.splitlines()[-1] == ("wrpsim: interrupted; completed runs keep their results — "
                                    "rerun the same command to resume" if sweep else
                                    "wrpsim: interrupted")


def test_ctrl_c_in_a_key_value_verb_is_one_line_and_status_130(capsys):
    from wrpsim.cli import verb_main

    def work(_argv):
        raise KeyboardInterrupt

    assert verb_main(work, []) == 130
    assert capsys.readouterr().err == "wrpsim: interrupted\n"


def test_resume_reruns_what_the_report_calls_incomplete_and_runs_whose_inputs_changed(tmp_path):
    """Resume skipped a run whose `_DONE` sat next to a truncated requests table or a
    hand-edited summary (the sweep's own closing table called it incomplete), and a run whose
    catalog changed (a GPU's price ×10 under $WRPSIM_CATALOG kept the old cost)."""
    sweep = tmp_path / "s"
    p = multirun(sweep, "workload.rate_scale=1,2,3")
    assert p.returncode == 0, p.stderr
    (sweep / "0" / "requests.parquet").write_bytes(
        (sweep / "0" / "requests.parquet").read_bytes()[:1000])
    s = json.loads((sweep / "1" / "summary.json").read_text())
    (sweep / "1" / "summary.json").write_text(json.dumps({**s, "cost_usd": "abc"}))
    p = multirun(sweep, "workload.rate_scale=1,2,3")
    assert p.returncode == 0, p.stderr
    assert skips(p) == 1 and "s/2: already completed with the same config and inputs" in p.stderr
    assert json.loads((sweep / "1" / "summary.json").read_text())["cost_usd"] == s["cost_usd"]
    # the same sweep under a catalog whose H100 costs ten times as much: every run again
    import yaml

    from wrpsim.paths import catalog_dir

    cat = tmp_path / "cat"  # ($WRPSIM_CATALOG/gpus.yaml: README, "Your own catalog")
    cat.mkdir()
    gpus = yaml.safe_load((catalog_dir("pools") / "catalog" / "gpus.yaml").read_text())
    mine = {"h100-80gb": {**gpus["h100-80gb"],
                          "price_per_hour_usd": 10 * gpus["h100-80gb"]["price_per_hour_usd"]}}
    (cat / "gpus.yaml").write_text(yaml.safe_dump(mine))
    p = multirun(sweep, "workload.rate_scale=1,2,3", env={"WRPSIM_CATALOG": str(tmp_path / "cat")})
    assert p.returncode == 0, p.stderr
    assert skips(p) == 0
    assert json.loads((sweep / "1" / "summary.json").read_text())["cost_usd"] == pytest.approx(
        10 * s["cost_usd"])


def test_the_inputs_digest_covers_files_any_config_value_names(tmp_path, monkeypatch):
    """A file a config value names by an absolute path (a router's rules or an outcomes table
    kept outside the catalogs) is in `inputs_digest`: a resume re-runs after it changes, even
    one that did not exist before. A relative string is read by those loaders from the
    catalogs (already in the digest), so a same-named file in the working directory is not
    counted; strings that name no file, or no path this machine can expand, change nothing."""
    from wrpsim.jobs import inputs_digest

    rules = tmp_path / "my-rules.yaml"
    rules.write_text("rules: []\n")
    monkeypatch.chdir(tmp_path)
    cfg = {"router": {"name": "semantic", "rules": str(rules),
                      "extra": [{"table": str(tmp_path / "outcomes.csv")}]},
           "pool": {"name": "h100/llama"}}
    before = inputs_digest(cfg)
    assert inputs_digest(cfg) == before
    rules.write_text("rules: [{if: code, then: big}]\n")
    assert inputs_digest(cfg) != before
    after_rules = inputs_digest(cfg)
    (tmp_path / "outcomes.csv").write_text("a,b\n1,2\n")  # named before it existed
    assert inputs_digest(cfg) != after_rules
    now = inputs_digest(cfg)
    for other in ("not/a/file", "my-rules.yaml", "~nosuchuser_zz/x.yaml", "/no/such/file.csv"):
        assert inputs_digest({**cfg, "note": other}) == now, other
