"""A trace's own request ids reach requests.parquet (`trace_request_id`): read from the file's
`trace_request_id` or `request_id` column (or a `columns:` mapping), kept through sorting and
sampling, a router's follow-up calls taking their root request's; no column without ids."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from tests.conftest import compose_cfg
from wrpsim.sim import Simulation, with_trace_ids
from wrpsim.workload.build import build_trace

ROOT = Path(__file__).resolve().parents[1]


def _write(path: Path, id_col: str | None, n: int = 40) -> pd.DataFrame:
    rows = pd.DataFrame({"arrival_s": [(7 * i) % n * 0.25 for i in range(n)],  # unsorted
                         "prompt_tokens": [100 + 13 * i for i in range(n)],
                         "output_tokens": [5 + i % 7 for i in range(n)]})
    if id_col:
        rows.insert(0, id_col, [f"r{i:03d}" if i % 5 else 1000 + i for i in range(n)])
    rows.to_csv(path, index=False)
    return rows


def test_ids_are_read_from_request_id_trace_request_id_or_a_mapping(tmp_path):
    for col, mapping in (("request_id", None), ("trace_request_id", None), ("uid", "uid")):
        rows = _write(tmp_path / "t.csv", col)
        src = {"kind": "generic", "path": str(tmp_path / "t.csv")}
        if mapping:
            src["columns"] = {"trace_request_id": mapping}
        t = build_trace({"name": "t", "source": src}, 0).to_frame()
        want = dict(zip(rows.prompt_tokens, rows[col].astype(str)))
        assert t.trace_request_id.tolist() == [want[p] for p in t.prompt_tokens], col
    _write(tmp_path / "t.csv", None)
    t = build_trace({"name": "t", "source": {"kind": "generic",
                                             "path": str(tmp_path / "t.csv")}}, 0)
    assert "trace_request_id" not in t.columns


def test_rows_that_repeat_an_id_are_said_once_naming_the_first_pair(tmp_path):
    """A file whose ids repeat was read silently, though trace_request_id is how results join
    back to its rows (new-user walkthrough, 2026-12-07): one warning names the count and the
    first repeated id's two lines; unique ids say nothing."""
    import warnings

    rows = _write(tmp_path / "t.csv", "request_id")
    rows["request_id"] = [f"s{i % 10}" for i in range(len(rows))]  # each id 4 times
    rows.to_csv(tmp_path / "d.csv", index=False)
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        build_trace({"name": "t", "source": {"kind": "generic",
                                             "path": str(tmp_path / "d.csv")}}, 0)
        build_trace({"name": "t", "source": {"kind": "generic",
                                             "path": str(tmp_path / "t.csv")}}, 0)
    rep = [str(w.message) for w in said if "repeat an id" in str(w.message)]
    assert rep == [f"{tmp_path / 'd.csv'}: column request_id (trace_request_id): 30 row(s) repeat "
                   f"an id of an earlier row (first 's0': line 2 and line 12); requests.parquet's "
                   f"trace_request_id then joins back to several rows"], rep


def test_requests_parquet_carries_the_files_ids_after_sampling(tmp_path):
    rows = _write(tmp_path / "t.csv", "request_id", n=200)
    out = tmp_path / "run"
    r = subprocess.run([sys.executable, "-m", "wrpsim", "sim.progress=false", "json=true",
                        f"hydra.run.dir={out}", "workload.source.kind=generic",
                        f"workload.source.path={tmp_path / 't.csv'}",
                        "workload.sample_fraction=0.5"], cwd=tmp_path, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout.strip().splitlines()[-1])["requests_total"] == 100
    req = pq.read_table(out / "requests.parquet").to_pandas()
    assert req.columns[-1] == "trace_request_id" and req.trace_request_id.notna().all()
    assert req.trace_request_id.is_unique
    src = rows.assign(request_id=rows.request_id.astype(str)).set_index("request_id")
    assert (src.loc[req.trace_request_id, "prompt_tokens"].to_numpy()
            == req.prompt_tokens.to_numpy()).all()


def test_follow_up_calls_take_their_root_requests_id():
    cfg = compose_cfg("workload=routellm-mmlu-gsm8k", "pool=two-model-mixtral-gpt4like",
                      "router=cascade", "workload.max_requests=120")
    trace = build_trace(cfg["workload"], 0).to_frame()
    trace["trace_request_id"] = [f"q{i}" for i in range(len(trace))]
    sim = Simulation(cfg, trace)
    req, _, _ = sim.run()
    t = with_trace_ids(req, sim.trace).to_pandas()
    assert t.trace_request_id.notna().all()
    follow = t[t.parent_id.notna()]
    assert len(follow) > 0  # the cascade escalated some
    by_id = t.set_index("request_id").trace_request_id
    assert (follow.trace_request_id.to_numpy()
            == by_id.loc[follow.parent_id.astype(int)].to_numpy()).all()
    firsts = t[t.parent_id.isna()]
    assert (firsts.trace_request_id == "q" + firsts.request_id.astype(str)).all()


def test_ids_survive_a_json_blank_and_a_sweeps_requests_all(tmp_path):
    """A JSONL id column with a missing id reads as floats: the ids are still written as the
    integers they were ('1000', not '1000.0'); and a sweep's requests_all.parquet keeps the
    column (null for a run whose trace has no ids)."""
    (tmp_path / "t.jsonl").write_text(
        '{"request_id": 1000, "arrival_s": 0.1, "prompt_tokens": 10, "output_tokens": 2}\n'
        '{"arrival_s": 0.2, "prompt_tokens": 10, "output_tokens": 2}\n'
        '{"request_id": 7, "arrival_s": 0.3, "prompt_tokens": 10, "output_tokens": 2}\n')
    t = build_trace({"name": "t", "source": {"kind": "generic",
                                             "path": str(tmp_path / "t.jsonl")}}, 0)
    assert list(t["trace_request_id"]) == ["1000", None, "7"]
    _write(tmp_path / "t.csv", "request_id", n=30)
    sweep = tmp_path / "sweep"
    r = subprocess.run([sys.executable, "-m", "wrpsim", "-m", "sim.progress=false",
                        f"hydra.sweep.dir={sweep}", "workload.source.kind=generic",
                        f"workload.source.path={tmp_path / 't.csv'},"
                        f"{tmp_path / 't.jsonl'}"], cwd=tmp_path, capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    r = subprocess.run([sys.executable, "-m", "wrpsim.report", f"sweep_dir={sweep}"], cwd=tmp_path,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    req = pq.read_table(sweep / "requests_all.parquet").to_pandas()
    ids = set(req.trace_request_id.dropna())
    assert {"1000", "7"} <= ids and len(ids) == 31  # (30 in the CSV, its first 1000 too)


def test_an_id_column_not_read_is_named_on_every_run(tmp_path, monkeypatch):
    """A file column named like a request id (`id`, `req_id`, ...) that the trace does not
    read is named with the mapping that reads it — on every run, the cached parse too (its
    warnings are kept with it) — and not when the mapping turns the ids off."""
    import warnings

    from wrpsim.errors import WrpsimWarning

    monkeypatch.setenv("WRPSIM_CACHE", str(tmp_path / "cache"))
    _write(tmp_path / "t.csv", "req_id", n=10)
    src = {"kind": "generic", "path": str(tmp_path / "t.csv")}
    for _ in range(2):  # a parse, then a cache hit
        with warnings.catch_warnings(record=True) as said:
            warnings.simplefilter("always")
            t = build_trace({"name": "t", "source": src}, 0)
        assert "trace_request_id" not in t.columns
        assert [str(w.message) for w in said if w.category is WrpsimWarning] == [
            f"{tmp_path / 't.csv'}: column 'req_id' is not read (did you mean the trace column "
            f"'trace_request_id'? map it with ++workload.source.columns.trace_request_id=req_id)"]
    _write(tmp_path / "u.csv", "request_id", n=10)
    off = {"kind": "generic", "path": str(tmp_path / "u.csv"),
           "columns": {"trace_request_id": None}}
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        t = build_trace({"name": "t", "source": off}, 0)
    assert "trace_request_id" not in t.columns
    assert not [w for w in said if w.category is WrpsimWarning]
