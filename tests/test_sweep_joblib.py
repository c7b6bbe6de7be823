"""The acceptance sweep: 3 routers × 3 pools on the joblib launcher, one run made to fail, the
report, and resume (subprocesses, as a user runs them).

Run 4 is made to fail by an obstacle: a directory where its `requests.parquet` must go, so the
atomic rename raises `IsADirectoryError` (an I/O failure, i.e. "any exception", not a user error).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pyarrow.parquet as pq
import pytest

ROUTERS = ("round-robin", "least-outstanding", "power-of-d")
POOLS = ("h100-llama70b", "hetero-llama70b", "mixed-a100-h100")
FAILING = "4"
# Requests per run: enough for every pool to serve some; the sweep's cost is the launcher's
# worker start-up and 9 simulations (300 requests each took 4 s more on 2 cores).
REQUESTS = 50


def sweep(sweep_dir, *extra, env=None):
    cmd = [sys.executable, "-m", "wrpsim", "-m", "hydra/launcher=joblib",
           "hydra.launcher.n_jobs=2", f"hydra.sweep.dir={sweep_dir}",
           f"router={','.join(ROUTERS)}", f"pool={','.join(POOLS)}",
           f"workload.max_requests={REQUESTS}", "sim.progress=false", *extra]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert p.returncode == 0, p.stderr[-3000:]
    return p


def report(sweep_dir):
    p = subprocess.run([sys.executable, "-m", "wrpsim.report", f"sweep_dir={sweep_dir}"],
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    return json.loads(p.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    d = tmp_path_factory.mktemp("joblib") / "sweep"
    (d / FAILING / "requests.parquet").mkdir(parents=True)
    return d, sweep(d)


def test_failed_run_is_recorded_and_the_rest_complete(swept):
    d, p = swept
    runs = sorted((x for x in d.iterdir() if x.is_dir()), key=lambda x: int(x.name))
    assert [x.name for x in runs] == [str(i) for i in range(9)]
    for r in runs:
        assert (r / "_DONE").is_file() == (r.name != FAILING), r
        assert (r / "error.json").is_file() == (r.name == FAILING), r
    err = json.loads((d / FAILING / "error.json").read_text())
    assert err["exception_type"] == "IsADirectoryError"
    assert "Traceback" in err["traceback"] and err["message"]
    assert "router=least-outstanding" in err["overrides"]
    assert "pool=hetero-llama70b" in err["overrides"]
    assert f"run {d / FAILING} failed" in p.stderr


def test_report_builds_nine_rows_the_request_dataset_and_the_dashboard(swept):
    d, _ = swept
    s = report(d)
    assert (s["runs"], s["completed"], s["failed"], s["incomplete"]) == (9, 8, 1, 0)
    assert set(s["not_completed"]) == {FAILING}
    t = pq.read_table(d / "results.parquet").to_pandas()
    assert len(t) == 9
    assert sorted(t["sweep.router"].unique()) == sorted(ROUTERS)
    assert sorted(t["sweep.pool"].unique()) == sorted(POOLS)
    failed = t[t["status"] == "failed"]
    assert failed["run"].tolist() == [FAILING]
    assert failed["error_type"].tolist() == ["IsADirectoryError"]
    assert failed["cost_usd"].isna().all()
    done = t[t["status"] == "completed"]
    assert (done["requests_total"] == REQUESTS).all() and (done["cost_usd"] > 0).all()
    req = pq.read_table(d / "requests_all.parquet")
    assert req.num_rows == 8 * REQUESTS
    assert req.schema.names[0] == "run" and FAILING not in set(req.column("run").to_pylist())
    manifest = json.loads((d / "manifest.json").read_text())
    assert [r["status"] for r in manifest["runs"]].count("failed") == 1
    assert (d / "dashboard.html").stat().st_size > 1_000_000


def test_rerun_skips_the_eight_finished_runs_then_completes_the_fixed_one(swept):
    d, _ = swept
    mtimes = {r.name: (r / "requests.parquet").stat().st_mtime_ns
              for r in d.iterdir() if (r / "_DONE").is_file()}
    assert len(mtimes) == 8
    p = sweep(d)
    assert p.stderr.count("wrpsim: skip ") == 8, p.stderr
    assert all((d / n / "requests.parquet").stat().st_mtime_ns == m for n, m in mtimes.items())
    assert (d / FAILING / "error.json").is_file()
    shutil.rmtree(d / FAILING / "requests.parquet")
    p = sweep(d)
    assert p.stderr.count("wrpsim: skip ") == 8, p.stderr
    assert (d / FAILING / "_DONE").is_file() and not (d / FAILING / "error.json").exists()
    assert report(d)["completed"] == 9
