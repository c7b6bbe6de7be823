"""A user's own trace read in the wrong unit, or with a near-miss column name, is said, not
replayed silently (a review of 2026-12-06: epoch milliseconds read as seconds made ten minutes
of trace a week of simulation, $10,718 of GPU time, without a word)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from wrpsim.errors import TraceError, WrpsimWarning
from wrpsim.workload.build import build_trace
from wrpsim.workload.loaders import load_trace

ROOT = Path(__file__).resolve().parents[1]


def _trace(path: Path, arrival, **cols) -> Path:
    n = len(arrival)
    pd.DataFrame({"arrival_s": arrival, "prompt_tokens": 500, "output_tokens": 100,
                  **cols}).head(n).to_csv(path, index=False)
    return path


def _cfg(path: Path, **source) -> dict:
    return {"name": "mine", "source": {"kind": "generic", "path": str(path), **source}}


@pytest.mark.parametrize("scale, unit, fits", [(1e3, "s", "ms"), (1e6, "s", "us"),
                                               (1e6, "ms", "us")])
def test_a_unix_time_in_a_finer_unit_is_refused_naming_the_unit_it_fits(tmp_path, scale, unit,
                                                                        fits):
    t = 1.7e9 + np.arange(5) * 60.0  # Unix seconds, a minute apart
    p = _trace(tmp_path / "t.csv", (t * scale).round())
    with pytest.raises(TraceError, match=rf"t\.csv: line 2: field arrival_s \(arrival_s\): "
                                         rf"\d+ read as {unit} would be [\d,]+ years after 1970: "
                                         rf"it reads as a Unix time in {fits} \(set "
                                         rf"\+\+workload\.source\.time_unit={fits}\)"):
        load_trace(p, time_unit=unit)
    # the unit it fits reads it: a minute apart
    got = load_trace(p, time_unit=fits)
    assert np.allclose(got["arrival_s"], np.arange(5) * 60.0)
    # Unix seconds read as seconds (today's 1.7e9) are not questioned
    assert len(load_trace(_trace(tmp_path / "s.csv", t), time_unit="s")) == 5


def test_a_file_far_denser_than_any_service_is_warned_about_before_rate_scale(tmp_path):
    """Seconds read as ms: 2,000 requests of ten minutes in 0.6 s (3,300 a second) is named
    with the unit to set; a rate_scale of the file's own rate is meant and not questioned."""
    t = np.sort(np.random.default_rng(0).uniform(0, 600, 2000))
    p = _trace(tmp_path / "d.csv", t)
    with pytest.warns(WrpsimWarning, match=r"d\.csv: the file's 2,000 requests arrive in "
                                           r"0\.6 s \(3,3\d\d requests/s.*"
                                           r"\+\+workload\.source\.time_unit=s \(or ms\)"):
        build_trace(_cfg(p, time_unit="ms"), 0)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", WrpsimWarning)
        build_trace({**_cfg(p), "rate_scale": 20.0}, 0)  # 67 a second: meant


def test_a_column_that_nearly_spells_a_trace_column_is_named(tmp_path):
    p = _trace(tmp_path / "c.csv", [0.0, 1.0], sesion_id=["a", "a"])
    with pytest.warns(WrpsimWarning, match=r"c\.csv: column 'sesion_id' is not read \(did you "
                                           r"mean the trace column 'session_id'\? map it with "
                                           r"\+\+workload\.source\.columns\.session_id="
                                           r"sesion_id\)"):
        load_trace(p)


def test_complexity_outside_zero_to_one_is_refused(tmp_path):
    p = _trace(tmp_path / "x.csv", [0.0, 1.0], complexity=[0.5, 1.7])
    with pytest.raises(TraceError, match=r"x\.csv: line 3: complexity must be NaN or a task "
                                         r"complexity in \[0, 1\], got 1\.7"):
        load_trace(p)


def test_a_failed_single_run_leaves_its_reason_for_the_report(tmp_path):
    """The run's folder held only .hydra/, so the report said 'still running, killed'."""
    p = _trace(tmp_path / "neg.csv", [0.0], prompt_tokens=[-5])
    env = {**os.environ, "WRPSIM_CACHE": str(tmp_path / "cache")}
    r = subprocess.run([sys.executable, "-m", "wrpsim", "sim.progress=false",
                        f"hydra.run.dir={tmp_path / 'runs' / 'bad'}",
                        "workload.source.kind=generic", f"workload.source.path={p}"],
                       capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    err = json.loads((tmp_path / "runs" / "bad" / "error.json").read_text())
    assert err["user_error"] and "token count must be >= 1, got -5" in err["message"]
    rep = subprocess.run([sys.executable, "-m", "wrpsim.report",
                          f"sweep_dir={tmp_path / 'runs'}", f"out_dir={tmp_path / 'rep'}"],
                         capture_output=True, text=True, env=env, timeout=120)
    said = json.loads(rep.stdout.strip().splitlines()[-1])
    assert said["failed"] == 1 and "got -5" in said["not_completed"]["bad"]
    # a bare folder given to the report names the key that takes it
    rep = subprocess.run([sys.executable, "-m", "wrpsim.report", str(tmp_path / "runs")],
                         capture_output=True, text=True, env=env, timeout=120)
    assert rep.returncode == 2 and "the folder to read is given as sweep_dir=" in rep.stderr


@pytest.mark.parametrize("verb, made", [("wrpsim", "runs"), ("wrpsim.plan", "plans")])
def test_out_dir_on_a_hydra_verb_names_hydra_run_dir(tmp_path, verb, made):
    """`out_dir=` (the other verbs' key) on `python -m wrpsim` was 'did you mean router?'."""
    r = subprocess.run([sys.executable, "-m", verb, f"out_dir={tmp_path}"], cwd=tmp_path,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert (f"a run's folder is hydra.run.dir=… (a sweep's hydra.sweep.dir=…; default "
            f"results/{made}/<date>/<time>)") in r.stderr


def test_dates_where_seconds_are_expected_name_time_unit_datetime(tmp_path):
    p = tmp_path / "dt.csv"
    p.write_text("arrival_s,prompt_tokens,output_tokens\n2024-05-01 12:00:00.000000,5,10\n"
                 "2024-05-01 12:00:01,5,10\n")
    with pytest.raises(TraceError, match=r"dt\.csv: line 2: field arrival_s \(arrival_s\): not a "
                                         r"number: '2024-05-01 12:00:00\.000000' \(a date and "
                                         r"time: set \+\+workload\.source\.time_unit=datetime"):
        load_trace(p)
    assert np.allclose(load_trace(p, time_unit="datetime")["arrival_s"], [0.0, 1.0])


def test_a_bad_or_unused_time_format_is_one_line(tmp_path):
    """A strptime format pandas cannot compile, or one that is no string, was a traceback, and
    one given without time_unit datetime was ignored without a word (the numbers were read)."""
    from wrpsim.errors import ConfigError

    p = tmp_path / "dt.csv"
    p.write_text("arrival_s,prompt_tokens,output_tokens\n2024-05-01 12:00:00,5,10\n"
                 "2024-05-01 12:00:01,5,10\n")
    with pytest.raises(ConfigError, match=r"^time_format: 'Q' is a bad directive in format "
                                          r"'%Q'$"):
        load_trace(p, cache=False, time_unit="datetime", time_format="%Q")
    with pytest.raises(ConfigError, match=r"^time_format must be a strptime format .*got 123$"):
        load_trace(p, cache=False, time_unit="datetime", time_format=123)
    with pytest.raises(ConfigError, match=r"^time_format applies only to time_unit datetime; got "
                                          r"time_format='%Y' with time_unit s"):
        load_trace(_trace(tmp_path / "s.csv", [0.0, 1.0]), cache=False, time_format="%Y")
    df = load_trace(p, cache=False, time_unit="datetime", time_format="%Y-%m-%d %H:%M:%S")
    assert np.allclose(df["arrival_s"], [0.0, 1.0])
    # the azure preset's own format is not the user's: another time_unit is still refused as
    # numbers, not as an unused time_format
    with pytest.raises(TraceError, match=r"not a number"):
        load_trace(ROOT / "workloads/traces/azure_conv_2023.csv", kind="azure", cache=False,
                   time_unit="s")


def test_columns_that_are_no_mapping_is_one_line(tmp_path):
    """`++workload.source.columns=abc` (or a list) was a ValueError traceback from dict()."""
    from wrpsim.errors import ConfigError

    p = _trace(tmp_path / "t.csv", [0.0, 1.0])
    for bad in ("abc", ["a", "b"]):
        got = re.escape(repr(bad))
        with pytest.raises(ConfigError, match=r"^columns must be a mapping \{canonical name: "
                                              r"file column\}.*got " + got):
            load_trace(p, cache=False, columns=bad)
    assert len(load_trace(p, cache=False, columns={"arrival_s": "arrival_s"})) == 2


def test_a_missing_optional_preset_column_says_it_can_be_left_unread(tmp_path):
    """A Mooncake-format file of one's own without hash_ids was told only to name the file's
    column, which it does not have; the line now also gives the '=null' that runs it."""
    p = tmp_path / "m.jsonl"
    p.write_text('{"timestamp": 0, "input_length": 600, "output_length": 5}\n')
    with pytest.raises(TraceError, match=r"missing column\(s\) hash_ids \(for hash_ids\); .*"
                       r"\+\+workload\.source\.columns\.hash_ids=<column>, or read none with "
                       r"\+\+workload\.source\.columns\.hash_ids=null\)$"):
        load_trace(p, kind="mooncake", cache=False)
    assert len(load_trace(p, kind="mooncake", cache=False, columns={"hash_ids": None})) == 1
    # a required column has no such way out
    q = tmp_path / "t.csv"
    q.write_text("t,p,o\n0,5,10\n")
    with pytest.raises(TraceError, match=r"columns\.prompt_tokens=<column>\)$"):
        load_trace(q, cache=False, columns={"arrival_s": "t", "prompt_tokens": "nope",
                                            "output_tokens": "o"})


def test_a_bad_mapping_under_kind_generic_is_not_told_to_use_kind_generic(tmp_path):
    """A generic file with wrpsim's own names and a mistyped mapping was told to 'read it with
    workload.source.kind=generic', which it already was; that hint stays for other presets."""
    p = tmp_path / "g.csv"
    p.write_text("arrival_s,prompt_tokens,output_tokens,in_len\n0,10,5,7\n")
    with pytest.raises(TraceError, match=r"missing column\(s\) in_lenn \(for prompt_tokens\); "
                       r"columns found: .*columns\.prompt_tokens=<column>\)$"):
        load_trace(p, cache=False, columns={"prompt_tokens": "in_lenn"})
    with pytest.raises(TraceError, match=r"read it with workload\.source\.kind=generic"):
        load_trace(p, kind="azure", cache=False)
