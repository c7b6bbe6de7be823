"""The command-line app as a user runs it: outputs and determinism (subprocesses), clear errors
(in-process, as `python -m wrpsim` runs them: tests/conftest.py `run_app`)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.conftest import run_app

ROOT = Path(__file__).resolve().parent.parent


def wrpsim(tmp_path, *overrides, module="wrpsim"):
    cmd = [sys.executable, "-m", module, f"hydra.run.dir={tmp_path}", *overrides]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, timeout=300)


def test_default_scenario_replays_every_request_of_the_conversation_trace(tmp_path):
    p = wrpsim(tmp_path, "json=true")
    assert p.returncode == 0, p.stderr
    assert len(p.stdout.splitlines()) == 1  # json=true: the summary, one line, nothing else
    summary = json.loads(p.stdout)
    assert p.stderr.splitlines()[0] == ("wrpsim: azure-conv-2023 -> round_robin -> "
                                        "h100-llama70b (seed 0)")
    assert f"  results    {tmp_path}  " in p.stderr
    assert summary["requests_total"] == 19_366
    assert summary["requests_completed"] == 19_366
    assert summary["workload"] == "azure-conv-2023"
    for f in ("requests.parquet", "instances.parquet", "summary.json", "config.yaml"):
        assert (tmp_path / f).is_file(), f
    assert json.loads((tmp_path / "summary.json").read_text()) == summary
    req = pq.read_table(tmp_path / "requests.parquet")
    assert req.num_rows == 19_366
    assert req.column("request_id").to_pylist() == list(range(19_366))
    inst = pq.read_table(tmp_path / "instances.parquet")
    assert inst.num_rows == summary["instance_count"]
    assert "workload:" in (tmp_path / "config.yaml").read_text()


def test_same_seed_gives_byte_identical_requests_parquet(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    args = ("router=power-of-d", "workload.max_requests=1000", "seed=5")  # 3,000: 0.4 s more a run
    assert wrpsim(a, *args).returncode == 0
    assert wrpsim(b, *args).returncode == 0
    assert (a / "requests.parquet").read_bytes() == (b / "requests.parquet").read_bytes()
    assert (a / "instances.parquet").read_bytes() == (b / "instances.parquet").read_bytes()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["pool.pools.h100.gpu=h100-81gb"], r"valid choices: a100-80gb, a10g-24gb"),
        (["pool.pools.h100.model=llama9"], r"llama3\.1-70b"),
        (["pool.pools.h100.gpu=a10g-24gb"], r"GiB"),
        (["pool.pools.h100.count=0"], r"pool\.pools\.h100\.count must be an integer >= 1"),
        (["pool.pools.h100.scheduler.policy=fifo"], r"valid choices: orca, sarathi, vllm"),
        (["slo.ttft_s=-1"], r"slo\.ttft_s must be a number > 0"),
        # NaN compares false with every bound: it ran, at 0 % attainment and a wrong verdict
        (["slo.tpot_s=nan"], r"slo\.tpot_s must be a number > 0, got nan"),
        (["+pool.pools.h100.colour=red"], r"unknown key\(s\) \['colour'\]"),
    ],
)
def test_bad_config_stops_with_one_clear_line(monkeypatch, capsys, tmp_path, overrides, message):
    code, _, err = run_app(monkeypatch, capsys, tmp_path, "workload.max_requests=10", *overrides)
    assert code == 2
    assert "Traceback" not in err
    assert err.startswith("wrpsim: error:") and len(err.splitlines()) == 1, err
    assert re.search(message, err), err


def test_unknown_catalog_option_lists_available_options(monkeypatch, capsys, tmp_path):
    code, _, err = run_app(monkeypatch, capsys, tmp_path, "router=telepathy")
    assert code == 2
    assert "Traceback" not in err
    assert "round-robin" in err and "least-outstanding" in err


def test_a_warning_is_kept_in_the_runs_log_file_not_on_stdout(tmp_path, capsys):
    """A `WrpsimWarning` goes to stderr as one line and into the root logger's log files (a
    Hydra run's `wrpsim.log`), never to the console handler whose stream is stdout."""
    import logging
    import warnings

    from wrpsim.app import show_warnings
    from wrpsim.errors import warn

    root = logging.getLogger()
    log = logging.FileHandler(tmp_path / "wrpsim.log")
    console = logging.StreamHandler(sys.stdout)
    root.addHandler(log)
    root.addHandler(console)
    saved = warnings.showwarning
    try:
        show_warnings()
        warn("the fleet has more instances than the trace has requests")
    finally:
        warnings.showwarning = saved
        root.removeHandler(log)
        root.removeHandler(console)
        log.close()
    out, err = capsys.readouterr()
    assert out == ""
    line = "wrpsim: warning: the fleet has more instances than the trace has requests"
    assert err.splitlines() == [line]
    assert (tmp_path / "wrpsim.log").read_text().splitlines() == [line]


def test_warnings_worded_after_the_run_are_in_its_log_too(tmp_path):
    """The lines a run prints after its simulation (a pool that received nothing, requests
    dropped) are kept in its wrpsim.log like every other warning."""
    p = wrpsim(tmp_path, "workload=closed-loop", "workload.source.prompt_tokens=200000",
               "workload.source.num_requests=3", "sim.progress=false")
    assert p.returncode == 0, p.stderr
    warned = [ln for ln in p.stderr.splitlines() if ln.startswith("wrpsim: warning: ")]
    assert any("received no request" in ln for ln in warned)
    assert any(ln.startswith("wrpsim: warning: no request of 3 completed") for ln in warned)
    log = (tmp_path / "wrpsim.log").read_text()
    for line in warned:
        assert line in log


def test_flags_go_in_front_of_the_overrides_whatever_order_they_were_typed_in():
    from wrpsim.app import flags_first

    assert flags_first(["seed=1", "-m", "seed=1,2"]) == ["-m", "seed=1", "seed=1,2"]
    assert flags_first(["a=1", "--multirun", "b=2", "--cfg=job"]) == [
        "--multirun", "--cfg=job", "a=1", "b=2"]
    assert flags_first(["-m", "a=1"]) == ["-m", "a=1"]  # (as typed when already in front)
    assert flags_first(["--cfg", "job", "a=1"]) == ["--cfg", "job", "a=1"]
    # a flag's value travels with it; --info's only when it is one of its choices
    assert flags_first(["seed=1", "--cfg", "job", "seed=2"]) == ["--cfg", "job", "seed=1",
                                                                  "seed=2"]
    assert flags_first(["a=1", "-cn", "plan", "-m", "b=2"]) == ["-cn", "plan", "-m", "a=1", "b=2"]
    assert flags_first(["a=1", "--info", "searchpath"]) == ["--info", "searchpath", "a=1"]
    assert flags_first(["a=1", "--info", "b=2"]) == ["--info", "a=1", "b=2"]
    assert flags_first(["seed=-1", "-m"]) == ["-m", "seed=-1"]
    assert flags_first(["a=1", "-sc", "b=2"]) == ["-sc", "a=1", "b=2"]  # (takes no value)


def test_a_sweep_flag_after_an_override_runs_the_sweep(tmp_path):
    """`python -m wrpsim key=v -m seed=1,2` is the sweep a user means, not Hydra's usage page
    naming a hydra.sweep.dir they never typed."""
    p = subprocess.run([sys.executable, "-m", "wrpsim", "workload.max_requests=5", "-m",
                        "seed=1,2", f"hydra.sweep.dir={tmp_path / 'sw'}", "sim.progress=false"],
                       capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert p.returncode == 0, p.stderr
    assert "usage:" not in p.stderr
    assert (tmp_path / "sw" / "0" / "summary.json").is_file()
    assert (tmp_path / "sw" / "1" / "summary.json").is_file()


def test_a_joblib_sweeps_warnings_are_one_line_and_in_each_runs_log(tmp_path):
    """Warnings given in a launcher's worker processes are `wrpsim: warning:` lines too, and
    land in their own run's wrpsim.log."""
    p = subprocess.run([sys.executable, "-m", "wrpsim", "-m", "hydra/launcher=joblib",
                        "hydra.launcher.n_jobs=2", f"hydra.sweep.dir={tmp_path / 'sw'}",
                        "workload.max_requests=1,2", "sim.progress=false"],
                       capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert p.returncode == 0, p.stderr
    assert "WrpsimWarning" not in p.stderr
    for job, n in ((0, "1 request:"), (1, "2 requests:")):
        log = (tmp_path / "sw" / str(job) / "wrpsim.log").read_text()
        assert f"wrpsim: warning: the fleet has 4 instances (16 GPUs) for {n}" in log
