"""`--help` of every verb: keys with their defaults and descriptions, exit status 0 (in-process)."""

from __future__ import annotations

from importlib import import_module

import pytest

from tests.conftest import run_app
from wrpsim.keyhelp import EXIT_STATUSES, yaml_keys
from wrpsim.paths import catalog_dir

VERBS = ("perf", "net", "report", "validate", "calibrate")
MODULES = {"perf": "wrpsim.perf", "net": "wrpsim.net", "report": "wrpsim.report.__main__",
           "validate": "wrpsim.validate.__main__", "calibrate": "wrpsim.calibrate.__main__"}


def check_page(text: str, defaults: str) -> None:
    keys = yaml_keys(catalog_dir("conf") / defaults)
    assert keys
    lines, described = text.splitlines(), set()
    for key, value, desc in keys:
        line = next((ln for ln in lines if ln.startswith(f"  {key}={value}")), None)
        assert line is not None, f"{key}={value} missing"
        name = key.rpartition(".")[2]  # a key repeated under siblings is described once
        assert desc or name in described, f"{defaults}: {key} has no description"
        assert not desc or desc in line or desc in text
        described.add(name)
    assert text.rstrip().endswith(EXIT_STATUSES.splitlines()[-1])


@pytest.mark.parametrize("verb", VERBS)
@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_key_value_verbs_print_their_keys_and_exit_0(capsys, verb, flag):
    main = import_module(MODULES[verb]).main
    assert main(["colour=red", flag]) == 0  # --help wins over a bad key
    out, err = capsys.readouterr()
    assert err == ""
    assert out.startswith(f"usage: python -m wrpsim.{verb} [key=value ...]")
    check_page(out, f"{verb}.yaml")


@pytest.mark.parametrize(("module", "conf", "groups"), [
    ("wrpsim", "config.yaml", ("workload", "pool", "router", "network", "failures", "experiment")),
    ("wrpsim.plan", "plan.yaml", ("workload", "router", "network", "experiment")),
])
def test_hydra_apps_list_groups_with_defaults_and_keys(monkeypatch, capsys, tmp_path, module,
                                                       conf, groups):
    code, out, err = run_app(monkeypatch, capsys, tmp_path, "--help", module=module)
    assert code == 0 and err == ""
    for g in groups:
        assert f"\n  {g}: " in out, g
    assert "azure-conv-2023*" in out and "hydra/launcher: basic*, joblib, ray, slurm" in out
    check_page(out, conf)
    assert not (tmp_path / "run").exists()


def test_help_lists_the_launchers_hydra_accepts(monkeypatch, capsys, tmp_path):
    """The launcher list comes from the config group, plugins included (docs/sweeps.md uses
    hydra/launcher=submitit_local), not from a fixed list."""
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    code, out, _ = run_app(monkeypatch, capsys, tmp_path, "--help")
    line = next(ln for ln in out.splitlines() if ln.strip().startswith("hydra/launcher:"))
    assert code == 0 and "submitit_local" in line and "submitit_slurm" in line
    # docs/sweeps.md: the preset is slurm
    assert "submitit_slurm (use slurm)" in line


def test_yaml_keys_reads_inline_and_block_comments(tmp_path):
    f = tmp_path / "x.yaml"
    f.write_text("defaults:\n  - a: b\n# The seed of the run, an integer\nseed: 0\n"
                 "# topology\nleaves: 4   # leaf switches\n"
                 "slo:   # targets\n  ttft_s: 2.0\n  tpot_s: 0.1  # per token\n"
                 "name: 'a # b'  # quoted hash\nhydra:\n  run: {dir: x}\n")
    assert yaml_keys(f) == [
        ("seed", "0", "The seed of the run, an integer"), ("leaves", "4", "leaf switches"),
        ("slo.ttft_s", "2.0", "targets"), ("slo.tpot_s", "0.1", "per token"),
        ("name", "'a # b'", "quoted hash")]
