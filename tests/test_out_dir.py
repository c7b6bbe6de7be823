"""One convention for the folders the verbs write into (issue 15): `out_dir=DIR` names the
folder, a relative DIR is taken from the current directory (never the package or the
repository), and null is the verb's default under the current directory — `results/<verb>/
<date>/<time>` for net and validate; report's is the sweep it reads; calibrate's is
`$WRPSIM_CATALOG/engines`, else `results/calibrate/<date>/<time>/engines`. perf writes nothing.
(`tests/test_net_cli.py` checks net's default.)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from wrpsim.keyhelp import yaml_keys

ROOT = Path(__file__).resolve().parents[1]
SHIPPED_ENGINES = ROOT / "pools" / "catalog" / "engines"


def _verb(verb: str, *args: str, cwd: Path, catalog: Path | None = None):
    env = {k: v for k, v in os.environ.items() if k != "WRPSIM_CATALOG"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    if catalog is not None:
        env["WRPSIM_CATALOG"] = str(catalog)
    return subprocess.run([sys.executable, "-m", f"wrpsim.{verb}", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def _last_json(r) -> dict:
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("verb", ["net", "report", "validate", "calibrate"])
def test_every_writing_verb_documents_out_dir_the_same_way(verb):
    keys = {k: (v, d) for k, v, d in yaml_keys(ROOT / "conf" / f"{verb}.yaml")}
    value, desc = keys["out_dir"]
    assert value == "null"
    assert "relative to the current directory; null: " in desc, desc


def test_perf_writes_nothing_and_says_so():
    assert "out_dir" not in {k for k, _, _ in yaml_keys(ROOT / "conf" / "perf.yaml")}
    assert "writes no files" in (ROOT / "conf" / "perf.yaml").read_text()


def test_validate_writes_under_the_current_directory(tmp_path):
    out = _last_json(_verb("validate", "sets=[llmservingsim]", "mlenergy_dir=null",
                           cwd=tmp_path))
    parts = Path(out["summary_md"]).parts
    assert parts[:2] == ("results", "validate") and len(parts) == 5, parts
    assert (tmp_path / out["summary_md"]).is_file()
    out = _last_json(_verb("validate", "sets=[llmservingsim]", "mlenergy_dir=null",
                           "out_dir=mine", cwd=tmp_path))
    assert (tmp_path / "mine" / "validation_summary.md").is_file()


def _steps_csv(path: Path) -> Path:
    rows = [{"model": "llama3.1-8b", "gpu": "h100-80gb", "tp": 1, "prefill_tokens": p,
             "decode_seqs": b, "decode_ctx": b * 700, "step_ms": ms}
            for p, b, ms in ((0, 1, 7.0), (0, 16, 8.0), (512, 8, 30.0))]
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_calibrate_never_writes_into_the_package_by_default(tmp_path):
    steps = _steps_csv(tmp_path / "steps.csv")
    before = sorted(p.name for p in SHIPPED_ENGINES.iterdir())
    shipped = (SHIPPED_ENGINES / "vllm-0.24.yaml").read_bytes()
    # no out_dir, no WRPSIM_CATALOG: a catalog folder of its own under the current directory;
    # refitting a shipped engine copies it there (its own constants, not base's)
    work = tmp_path / "work"
    work.mkdir()
    out = _last_json(_verb("calibrate", "engine=vllm-0.11", f"steps={steps}",
                           "fit=[layer_overhead_us]", cwd=work))
    f = Path(out["file"])  # (absolute: WRPSIM_CATALOG=<catalog> works from any folder)
    assert f.relative_to(work.resolve()).parts[:2] == ("results", "calibrate")
    assert f.parts[-2:] == ("engines", "vllm-0.11.yaml")
    assert out["catalog"] == str(f.parent.parent)
    text = f.read_text()
    assert "async_scheduling: false" in text  # vllm-0.11's, not base vllm-0.24's
    # with WRPSIM_CATALOG: its engines/ folder; a relative out_dir: from the current directory
    cat = tmp_path / "cat"
    cat.mkdir()
    out = _last_json(_verb("calibrate", "engine=mine", f"steps={steps}",
                           "fit=[layer_overhead_us]", cwd=work, catalog=cat))
    assert Path(out["file"]) == cat / "engines" / "mine.yaml" and Path(out["file"]).is_file()
    out = _last_json(_verb("calibrate", "engine=mine", f"steps={steps}",
                           "fit=[layer_overhead_us]", "out_dir=here/engines", cwd=work))
    assert (work / "here" / "engines" / "mine.yaml").is_file()
    assert out["catalog"] == str((work / "here").resolve())
    assert sorted(p.name for p in SHIPPED_ENGINES.iterdir()) == before
    assert (SHIPPED_ENGINES / "vllm-0.24.yaml").read_bytes() == shipped


@pytest.mark.parametrize("given", [2024, 0.5, float("inf"), ["a"], {"a": 1}])
def test_an_out_dir_that_is_no_path_is_one_line(given):
    """Hydra reads `out_dir=2024` as a number and `out_dir=[a]` as a list: one line saying to
    quote it (pathlib raised a TypeError), and nothing is created."""
    from wrpsim.errors import ConfigError
    from wrpsim.io import make_dir

    with pytest.raises(ConfigError, match=r"^out_dir must be a folder path, got .*; quote a "
                       r"name Hydra reads as a number or a list, quotes and all: \"out_dir='"):
        make_dir(given, "out_dir")


@pytest.mark.parametrize("given", ["0", "[]", "{}", "false"])
@pytest.mark.parametrize(("verb", "args"), [
    ("net", ["leaves=2", "hosts_per_leaf=2", "spines=2"]),
    ("validate", ["sets=[llmservingsim]", "fast=true"]),
    ("calibrate", ["engine=x", f"benchmarks={ROOT / 'docs/examples/calibrate_benchmarks.csv'}",
                   "fit=[layer_overhead_us]", "write=false"]),
    ("report", ["sweep_dir=."]),
])
def test_an_out_dir_hydra_reads_as_a_false_value_is_refused_not_the_default(
        verb, args, given, tmp_path, monkeypatch, capsys):
    """`out_dir=0` (Hydra's number 0), `[]`, `{}` or `false` is no folder: one line, as for
    `out_dir=2024`; these wrote into the default folder (report: into the sweep) as if out_dir
    were null, and report named a folder '[1, 2]' or 'True' after any other value
    (tests/test_fuzz_verbs.py). Nothing is written."""
    from importlib import import_module

    main = import_module(f"wrpsim.{verb}" if verb == "net" else f"wrpsim.{verb}.__main__").main
    monkeypatch.chdir(tmp_path)
    assert main([*args, f"out_dir={given}"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("wrpsim: error: out_dir must be a folder path, got ") \
        and err.count("\n") == 1, err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("given", ["0", "[1,2]", "true", "{a: 1}"])
def test_a_sweep_dir_that_is_no_path_is_one_line(given, tmp_path, monkeypatch, capsys):
    from wrpsim.report.__main__ import main

    monkeypatch.chdir(tmp_path)
    assert main([f"sweep_dir={given}"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("wrpsim: error: sweep_dir must be a folder path, got "), err


def test_a_home_relative_out_dir_and_sweep_dir_are_expanded(tmp_path, monkeypatch, capsys):
    """`out_dir='~/x'` (a `~` the shell left, quoted for Hydra) made a folder named `~` in the
    current directory, then pyarrow, which expands `~`, wrote into `$HOME/x`: a traceback (a
    user walk-through, wrpsim.report and wrpsim.net); `sweep_dir='~/s'` was 'not a
    directory'. Both are expanded, as calibrate's out_dir and every input path already were."""
    from wrpsim.net import main as net
    from wrpsim.report.__main__ import main as report

    home, work = tmp_path / "home", tmp_path / "work"
    sweep = home / "sweep" / "0"
    sweep.mkdir(parents=True)
    work.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(work)
    assert net(["leaves=2", "hosts_per_leaf=2", "spines=2", "out_dir='~/net'"]) == 0
    assert (home / "net" / "summary.json").is_file()
    (sweep / "error.json").write_text(json.dumps({"status": "failed", "message": "m"}))
    assert report(["sweep_dir='~/sweep'", "out_dir='~/rep'", "dashboard=false"]) == 0, \
        capsys.readouterr().err
    assert (home / "rep" / "results.parquet").is_file()
    assert list(work.iterdir()) == []  # no folder named '~'


def test_an_unexpanded_tilde_names_its_cause(monkeypatch, capsys):
    """zsh leaves `out_dir=~/x` as typed, and Hydra's grammar refuses a `~` in a value with a
    bare 'LexerNoViableAltException': the line says why and what to write instead."""
    from wrpsim.net import main as net

    assert net(["out_dir=~/x"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "takes no '~' in a value" in err and "$HOME" in err, err
    from wrpsim.hydra_errors import tilde_hint

    assert tilde_hint("hydra.run.dir=~/runs/a") and not tilde_hint("router=round~robin")
