"""Start-up stays lean (issue 16): one Hydra composition, catalogs read on demand, no module a
plain run does not need.

The default scenario's run path never imports pandas (~0.3 s): a run carries its workload as
`TraceColumns` (`wrpsim.workload.columns`), reads its kernel curves from the cross-process cache
(`wrpsim.pool.kernels.precomputed`) and builds and reads its result tables through
`wrpsim.arrowcols`; pandas is imported only where a configured feature needs it. Those runs go
through the normal entry point in a fresh interpreter with their own caches, once to fill them
(parsing a trace uses pandas) and once as every later run of the scenario does."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from wrpsim.app import GROUPS
from wrpsim.hydra_mode import mode_may_be_set

ROOT = Path(__file__).resolve().parents[1]
PROBE = """
import json, sys
sys.argv = ["wrpsim", "workload.max_requests=3", "hydra.run.dir=" + sys.argv[1]]
from hydra._internal.hydra import Hydra
composed = []
compose = Hydra.compose_config
def counted(self, *a, **k):
    composed.append(1)
    return compose(self, *a, **k)
Hydra.compose_config = counted
from wrpsim.__main__ import main
main()
print(json.dumps({"compositions": len(composed), "modules": sorted(sys.modules)}))
"""


def test_shipped_configs_cannot_set_hydra_mode():
    assert not mode_may_be_set(["workload.max_requests=10", "router=random"], GROUPS)
    assert mode_may_be_set(["hydra.mode=MULTIRUN"], GROUPS)
    assert mode_may_be_set(["--config-dir=/tmp"], GROUPS)


def test_plain_run_composes_once_and_imports_only_what_it_uses(tmp_path):
    """A warm start (the latency model's curves cached, as every run after the first one of a
    checkout: `wrpsim.pool.kernels.precomputed`); the first run with a cold cache reads the
    kernel tables, which imports more. Its own cache folder, warmed by a first run, so the
    result does not depend on which tests ran before it."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "WRPSIM_MODEL_CACHE": str(tmp_path / "c")}
    env.pop("WRPSIM_CATALOG", None)
    env.pop("WRPSIM_CACHE", None)
    for run in ("cold", "run"):
        out = subprocess.run([sys.executable, "-c", PROBE, str(tmp_path / run)], cwd=ROOT,
                             env=env, capture_output=True, text=True, check=True).stdout
    probe = json.loads(out.strip().splitlines()[-1])
    assert probe["compositions"] == 1
    modules = set(probe["modules"])
    assert "wrpsim.router.policies" in modules  # the router it runs
    unused = {"wrpsim.router.bandit", "wrpsim.router.multicall", "wrpsim.router.rules",
              "wrpsim.report", "pyarrow.dataset", "plotly", "scipy",
              "numpy.random"}  # (round-robin draws nothing: `Router.draws_random`)
    assert not unused & modules


def test_another_hydra_app_does_not_see_wrpsims_catalogs(tmp_path):
    """The catalog source joins only wrpsim's own apps: a Hydra app elsewhere in the same
    environment, with a `pool` group of its own, sees its options and no wrpsim pool."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    (tmp_path / "pool").mkdir()
    (tmp_path / "pool" / "mine.yaml").write_text("size: 3\n")
    (tmp_path / "config.yaml").write_text("defaults:\n  - pool: mine\n")
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(tmp_path), version_base="1.3"):
        assert compose("config")["pool"] == {"size": 3}
        with pytest.raises(Exception, match="h100-llama70b"):  # not an option here
            compose("config", overrides=["pool=h100-llama70b"])
    GlobalHydra.instance().clear()


RUN = """
import sys
sys.argv = ["wrpsim", *sys.argv[1:]]
try:
    from wrpsim.__main__ import main
    main()
finally:
    print("pandas imported:", "pandas" in sys.modules, file=sys.stderr)
"""


def _run(tmp_path: Path, *overrides: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "WRPSIM_CACHE": str(tmp_path / "traces"),
           "WRPSIM_MODEL_CACHE": str(tmp_path / "latency")}
    out = subprocess.run([sys.executable, "-c", RUN, *overrides,
                          f"hydra.run.dir={tmp_path / 'run'}"],
                         capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "run" / "requests.parquet").is_file()
    return out.stderr


def test_default_scenario_runs_without_pandas(tmp_path):
    first = _run(tmp_path, "workload.max_requests=10")  # fills the caches
    assert "pandas imported:" in first
    again = _run(tmp_path, "workload.max_requests=10")
    assert "pandas imported: False" in again, again


def test_a_workload_that_needs_pandas_imports_it_when_it_runs(tmp_path):
    out = _run(tmp_path, "workload=azure-conv-tasks", "workload.max_requests=20")
    assert "pandas imported: True" in out  # its categories / accuracy steps are DataFrame code


def test_console_entry_skips_teardown_but_keeps_every_output(tmp_path):
    """`python -m wrpsim` ends with `os._exit` after the atexit handlers (`wrpsim.app.leave`):
    stdout's JSON line, the log file Hydra's logging writes and the result files are complete,
    and the exit status is 0."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "WRPSIM_CACHE": str(tmp_path / "traces"),
           "WRPSIM_MODEL_CACHE": str(tmp_path / "latency")}
    out = subprocess.run([sys.executable, "-m", "wrpsim", "workload.max_requests=5", "json=true",
                          f"hydra.run.dir={tmp_path / 'run'}"], capture_output=True, text=True,
                         env=env, cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    assert summary["requests_completed"] == 5
    run = tmp_path / "run"
    assert json.loads((run / "summary.json").read_text()) == summary
    assert (run / "_DONE").is_file() and (run / "requests.parquet").stat().st_size > 0
    assert "results" in out.stderr  # the run summary on stderr, flushed before the exit


@pytest.mark.parametrize("preset, imported_first, expected", [
    (None, False, "system"), (None, True, "system"), ("mimalloc", False, "mimalloc")])
def test_console_entry_puts_arrow_on_the_system_allocator(preset, imported_first, expected):
    """`wrpsim.app.system_allocator` (called by `cli`) moves Arrow off mimalloc, whose huge-page
    arenas cost the default run ~0.15-0.2 s of page clearing, also when pyarrow was imported
    before; a pool the user chose through `ARROW_DEFAULT_MEMORY_POOL` is kept."""
    env = {k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"}
    env["PYTHONPATH"] = str(ROOT)
    if preset:
        env["ARROW_DEFAULT_MEMORY_POOL"] = preset
    code = ("import pyarrow\n" if imported_first else "") + (
        "from wrpsim.app import system_allocator\nsystem_allocator()\n"
        "import pyarrow as pa\nprint(pa.array([1.0, 2.0]).buffers()[1] is not None,"
        " pa.default_memory_pool().backend_name)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["True", expected]


def test_the_allocator_changes_no_result_byte(tmp_path):
    """The same run on mimalloc and on the system allocator writes the same files."""
    files = {}
    for pool in ("mimalloc", "system"):
        env = {**os.environ, "PYTHONPATH": str(ROOT), "ARROW_DEFAULT_MEMORY_POOL": pool,
               "WRPSIM_CACHE": str(tmp_path / "traces"),
               "WRPSIM_MODEL_CACHE": str(tmp_path / "latency")}
        run = tmp_path / pool
        out = subprocess.run([sys.executable, "-m", "wrpsim", "workload.max_requests=200",
                              f"hydra.run.dir={run}"], capture_output=True, text=True, env=env,
                             cwd=ROOT, timeout=300)
        assert out.returncode == 0, out.stderr
        files[pool] = {f: (run / f).read_bytes() for f in
                       ("requests.parquet", "instances.parquet", "tasks.parquet")}
    assert files["mimalloc"] == files["system"]


def test_leave_returns_while_another_thread_runs():
    """With a second thread alive (it might still be writing), `leave` returns and the process
    ends the usual way."""
    import threading

    from wrpsim.app import leave

    stop = threading.Event()
    t = threading.Thread(target=stop.wait)
    t.start()
    try:
        assert leave() is None  # (had it exited, pytest would have ended here)
    finally:
        stop.set()
        t.join()


def test_profiling_the_console_entry_still_writes_the_profile(tmp_path):
    """Under a profiler the process ends the usual way (`leave` returns), so cProfile's own
    code after the module writes its file."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "WRPSIM_CACHE": str(tmp_path / "traces"),
           "WRPSIM_MODEL_CACHE": str(tmp_path / "latency")}
    prof = tmp_path / "run.prof"
    out = subprocess.run([sys.executable, "-m", "cProfile", "-o", str(prof), "-m", "wrpsim",
                          "workload.max_requests=5", f"hydra.run.dir={tmp_path / 'run'}"],
                         capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr
    import pstats

    assert pstats.Stats(str(prof)).total_calls > 0


@pytest.mark.parametrize("sweep", [False, True])
def test_a_closed_stdout_does_not_fail_a_finished_run(tmp_path, sweep):
    """`wrpsim json=true | head -c 10`: the reader leaves before the JSON line; the run (each
    run of a sweep) still completes with its `_DONE` and exit status 0."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "WRPSIM_CACHE": str(tmp_path / "traces"),
           "WRPSIM_MODEL_CACHE": str(tmp_path / "latency")}
    args = (["-m", "seed=0,1", f"hydra.sweep.dir={tmp_path / 'run'}"] if sweep
            else [f"hydra.run.dir={tmp_path / 'run'}"])
    p = subprocess.Popen([sys.executable, "-m", "wrpsim", *args, "workload.max_requests=5",
                          "json=true"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                         cwd=ROOT)
    p.stdout.close()  # the reader is gone before anything is written
    err = p.stderr.read().decode()
    assert p.wait(timeout=300) == 0, err
    runs = [tmp_path / "run" / "0", tmp_path / "run" / "1"] if sweep else [tmp_path / "run"]
    for run in runs:
        assert (run / "_DONE").is_file() and not (run / "error.json").exists(), err
    assert "BrokenPipe" not in err


def test_caches_that_cannot_be_written_are_skipped(tmp_path):
    """`WRPSIM_CACHE` / `WRPSIM_MODEL_CACHE` under a regular file (no folder can be made there):
    the trace cache, the catalog-check record and the latency-curve cache are skipped and the
    run goes on uncached (their temporaries' clean-up raised NotADirectoryError: a traceback)."""
    blocker = tmp_path / "afile"
    blocker.write_text("")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "WRPSIM_CACHE": str(blocker / "traces"),
           "WRPSIM_MODEL_CACHE": str(blocker / "latency")}
    out = subprocess.run([sys.executable, "-m", "wrpsim", "workload.max_requests=5",
                          f"hydra.run.dir={tmp_path / 'run'}"], capture_output=True, text=True,
                         env=env, cwd=ROOT, timeout=300)
    assert out.returncode == 0 and "Traceback" not in out.stderr, out.stderr
    assert (tmp_path / "run" / "_DONE").is_file() and blocker.read_text() == ""
