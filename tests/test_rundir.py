"""`wrpsim.rundir`: every command-line run, plan and sweep gets an output folder of its own."""

from __future__ import annotations

from pathlib import Path

from wrpsim import rundir
from wrpsim.paths import catalog_dir

CONF = catalog_dir("conf")


def test_two_runs_in_one_second_get_two_folders(tmp_path, monkeypatch):
    """Two commands started in the same second wrote into one folder (the later one's files
    replaced the earlier one's): each claim is an atomic mkdir of its own folder."""
    monkeypatch.chdir(tmp_path)
    first = rundir.claim(CONF / "config.yaml", ["workload.max_requests=10"])
    second = rundir.claim(CONF / "config.yaml", ["seed=2"])
    assert first[1] != second[1] and first[1].is_dir() and second[1].is_dir()
    assert first[0] == f"hydra.run.dir={first[1]}"
    assert first[1].parts[:2] == ("results", "runs")
    if first[1].name[:8] == second[1].name[:8]:  # (the same second, as almost always)
        assert second[1].name == first[1].name + "-1"
    plan = rundir.claim(CONF / "plan.yaml", [])
    assert plan[1].parts[:2] == ("results", "plans")
    sweep = rundir.claim(CONF / "config.yaml", ["-m", "seed=1,2"])
    assert sweep[0].startswith("hydra.sweep.dir=results/sweeps/")


def test_a_named_folder_or_a_print_only_command_is_left_alone(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for argv in (["hydra.run.dir=mine"], ["--help"], ["--cfg", "job"], ["--info"],
                 ["-m", "hydra.sweep.dir=s", "seed=1,2"], ["hydra.mode=RUN"],
                 # another primary config, or an added group, may name its own folder
                 ["-cd", "myconf", "-cn", "mine"], ["--config-name=mine"], ["+experiment=x"]):
        assert rundir.claim(CONF / "config.yaml", argv) is None, argv
    assert not (tmp_path / "results").exists()


def test_an_unused_claim_is_released(tmp_path, monkeypatch):
    """A command rejected before it ran leaves nothing: not its folder, nor the empty
    results/runs/<date>/ the claim made above it (it did); folders that were there, or that
    hold another run, stay."""
    monkeypatch.chdir(tmp_path)
    _, path = rundir.claim(CONF / "config.yaml", [])
    rundir.release(path)
    assert not path.exists() and not (tmp_path / "results").exists()
    (tmp_path / "results" / "runs").mkdir(parents=True)
    _, kept = rundir.claim(CONF / "config.yaml", [])
    (kept / "summary.json").write_text("{}")
    _, path = rundir.claim(CONF / "config.yaml", [])
    rundir.release(path)
    assert not path.exists() and (kept / "summary.json").is_file()
    rundir.release(kept)
    assert (kept / "summary.json").is_file()
    _, path = rundir.claim(CONF / "config.yaml", [])
    (path / "summary.json").write_text("{}")
    rundir.release(path)
    assert (path / "summary.json").is_file()
    assert isinstance(path, Path)


def test_a_sweep_hydra_refused_leaves_no_folder_of_only_multirun_yaml(tmp_path, monkeypatch,
                                                                     capsys):
    """`-m router=nope,round-robin`: Hydra's launcher writes multirun.yaml into the sweep's
    folder, then refuses the first job's config — which left a folder holding only that file
    (a walkthrough). A failed sweep's claimed folder with nothing else is removed; one whose
    runs wrote anything, or a command that did not fail, keeps it."""
    import sys

    import pytest

    from wrpsim.__main__ import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["wrpsim", "-m", "router=nope,round-robin",
                                      "workload.max_requests=5"])
    with pytest.raises(SystemExit) as e:
        main()
    assert e.value.code == 2
    assert "router: unknown value 'nope'" in capsys.readouterr().err
    assert not (tmp_path / "results").exists()
    _, path = rundir.claim(CONF / "config.yaml", ["-m", "seed=1,2"])
    (path / "multirun.yaml").write_text("hydra: {}\n")
    rundir.release(path)  # (not failed: kept)
    assert (path / "multirun.yaml").is_file()
    (path / "0").mkdir()
    rundir.release(path, failed=True)  # (a run's folder: kept)
    assert (path / "multirun.yaml").is_file()
    _, path = rundir.claim(CONF / "config.yaml", ["-m", "seed=1,2"])
    (path / "multirun.yaml").write_text("hydra: {}\n")
    rundir.release(path, failed=True)
    assert not path.exists()
