"""`benchmarks/check_identical.py`, the byte-identity gate of speed work: it refuses what it
cannot check (a misspelt scenario, a base that is not a source tree) instead of passing with
nothing compared, and `compare` finds a changed byte and ignores wall times."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "check_identical.py"


def _run(*args):
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=60)


def test_unknown_scenario_is_refused_with_the_valid_names():
    p = _run("--base", str(ROOT), "--only", "defaultt")
    assert p.returncode == 2 and "0/0" not in p.stdout
    assert "--only defaultt: unknown scenario; valid: default, least-outstanding" in p.stderr


def test_empty_only_and_missing_base_are_refused(tmp_path):
    p = _run("--base", str(ROOT), "--only")
    assert p.returncode == 2 and "--only (nothing): unknown scenario" in p.stderr
    p = _run("--base", str(tmp_path / "nowhere"), "--only", "default")
    assert p.returncode == 2 and "not a wrpsim source tree" in p.stderr
    assert "Traceback" not in p.stderr


def test_compare_ignores_wall_times_and_finds_changed_bytes(tmp_path):
    spec = importlib.util.spec_from_file_location("check_identical", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    a, b = tmp_path / "a", tmp_path / "b"
    for d, wall, blob in ((a, 1.0, b"\x00\x01"), (b, 9.0, b"\x00\x01")):
        d.mkdir()
        (d / "summary.json").write_text(json.dumps({"ttft_p99_s": 0.5, "sim_wall_s": wall}))
        (d / "requests.parquet").write_bytes(blob)
        (d / "_DONE").write_text(str(wall))
    assert mod.compare(a, b) == []
    (b / "requests.parquet").write_bytes(b"\x00\x02")
    (b / "summary.json").write_text(json.dumps({"ttft_p99_s": 0.6, "sim_wall_s": 9.0}))
    assert mod.compare(a, b) == ["requests.parquet differs (bytes)",
                                 "summary.json differs: ['ttft_p99_s']"]
