"""Launcher presets for clusters: they compose, and tiny sweeps run on a real local Ray cluster
(wrpsim's own plugin) and on submitit's local executor."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from tests.conftest import register_catalogs_once
from wrpsim.paths import catalog_dir

PRESETS = {
    "joblib": "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher",
    "ray": "hydra_plugins.wrpsim_ray_launcher.ray_launcher.RayLauncher",
    "slurm": "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher",
}


@pytest.mark.parametrize(("name", "target"), sorted(PRESETS.items()))
def test_launcher_preset_composes(name, target):
    register_catalogs_once()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(catalog_dir("conf")), version_base="1.3"):
        cfg = compose("config", overrides=[f"hydra/launcher={name}"], return_hydra_config=True)
    assert cfg.hydra.launcher._target_ == target
    if name == "slurm":
        assert cfg.hydra.launcher.cpus_per_task == 1 and cfg.hydra.launcher.partition is None
    if name == "ray":
        assert cfg.hydra.launcher.ray.remote.num_cpus == 1
        assert cfg.hydra.launcher.ray.remote.max_retries == 0  # a dead worker's job is not rerun


def tiny_sweep(cwd, launcher, *extra):
    cmd = [sys.executable, "-m", "wrpsim", "-m", f"hydra/launcher={launcher}",
           "hydra.sweep.dir=sweep", "router=round-robin,least-outstanding",
           "workload.max_requests=100", "sim.progress=false", *extra]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=540, cwd=cwd)
    assert p.returncode == 0, (p.stdout[-2000:], p.stderr[-4000:])
    r = subprocess.run([sys.executable, "-m", "wrpsim.report", "sweep_dir=sweep"],
                       capture_output=True, text=True, timeout=300, cwd=cwd)
    assert r.returncode == 0, r.stderr
    return p, json.loads(r.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_tiny_sweep_on_a_local_ray_cluster_prints_one_json_line_per_run(tmp_path):
    """Four runs on a local Ray cluster of 2 CPUs (one Ray start for both checks): each ran in
    a worker process, each finished, and each printed its own JSON line — Ray folded the runs'
    lines that differ only in numbers into one ('[repeated 2x across cluster]') and lost the
    last job's line at shutdown: 2 of 5 came out."""
    pytest.importorskip("ray", reason="ray is not installed (pip install -e '.[ray]')")
    p, s = tiny_sweep(tmp_path, "ray", "hydra.launcher.ray.init.num_cpus=2",
                      "hydra.launcher.ray.init.object_store_memory=78643200", "json=true",
                      "workload.rate_scale=1,2")
    assert (s["runs"], s["completed"]) == (4, 4), s
    out = p.stdout + p.stderr
    assert "Ray launcher: 4 jobs" in out
    # each job ran in a Ray worker process, not in the driver (the launcher logs both pids;
    # Ray's relay of the workers' own output is asynchronous and may miss lines under load)
    ran = re.findall(r"Ray worker pid (\d+) \(driver pid (\d+)\) ran job", out)
    assert len(ran) == 4 and all(w != d for w, d in ran), out[-3000:]
    for n in ("0", "1", "2", "3"):
        assert (tmp_path / "sweep" / n / "_DONE").is_file()
    lines = [ln[ln.index("{"):] for ln in p.stdout.splitlines() if "{" in ln]
    runs = sorted(json.loads(ln)["run"] for ln in lines)
    assert len(runs) == 4 and runs == sorted(set(runs)), p.stdout[-2000:]
    assert "repeated" not in out


def test_tiny_sweep_on_submitits_local_executor(tmp_path):
    if importlib.util.find_spec("hydra_plugins.hydra_submitit_launcher") is None:
        pytest.skip("hydra-submitit-launcher is not installed (pip install -e '.[slurm]')")
    _, s = tiny_sweep(tmp_path, "submitit_local", "hydra.launcher.timeout_min=5")
    assert (s["runs"], s["completed"]) == (2, 2), s
    assert (tmp_path / "sweep" / ".submitit").is_dir()


def test_a_ray_request_the_local_cluster_can_never_meet_is_one_line():
    """remote.num_cpus=4 on a local cluster of 2 CPUs used to wait for the autoscaler for ever:
    the launcher checks each job's request against the cluster it started."""
    from hydra_plugins.wrpsim_ray_launcher._core import unmet

    total = {"CPU": 2.0, "memory": 8e9, "object_store_memory": 1e9}
    assert unmet({"num_cpus": 1, "memory": 4_000_000_000, "max_retries": 0}, total) is None
    assert unmet({"num_cpus": 4}, total) == (
        "hydra.launcher.ray.remote.num_cpus=4: every job asks for 4 CPU but the local Ray "
        "cluster this sweep started has 2 in all (hydra.launcher.ray.init.num_cpus sets it), "
        "so no job could ever start; ask for at most 2, or give the cluster more")
    assert unmet({"num_gpus": 1}, total).startswith(
        "hydra.launcher.ray.remote.num_gpus=1: every job asks for 1 GPU but ")
    assert unmet({"resources": {"fast": 1}}, total).startswith(
        "hydra.launcher.ray.remote.resources.fast=1: ")


def test_the_ray_presets_remote_options_include_memory():
    """docs/sweeps.md sets hydra.launcher.ray.remote.memory without a '+'."""
    register_catalogs_once()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(catalog_dir("conf")), version_base="1.3"):
        cfg = compose("config", overrides=["hydra/launcher=ray",
                                           "hydra.launcher.ray.remote.memory=4000000000"],
                      return_hydra_config=True)
    assert cfg.hydra.launcher.ray.remote.memory == 4_000_000_000
