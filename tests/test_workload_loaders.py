"""Trace loaders: shipped traces (counts, sums, timestamps), generic formats, errors and cache.

Expected values are computed independently with the csv / json / datetime stdlib modules.
"""

from __future__ import annotations

import csv
import json
import os
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from wrpsim.errors import ConfigError, TraceError
from wrpsim.workload import load_trace, validate_trace
from wrpsim.workload.cache import cache_file

TRACES = Path(__file__).resolve().parents[1] / "workloads" / "traces"
HEADER = "TIMESTAMP,ContextTokens,GeneratedTokens\n"


@pytest.fixture(autouse=True, scope="module")
def _cache_env(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WRPSIM_CACHE", str(tmp_path_factory.mktemp("trace-cache")))
        yield


def _azure_ns(ts: str) -> int:
    """Integer nanoseconds since the epoch of an Azure timestamp, parsed by hand."""
    base, frac = ts.split(".")
    sec = datetime.strptime(base, "%Y-%m-%d %H:%M:%S").timestamp()
    return int(sec) * 10**9 + int(frac.ljust(9, "0"))


def _write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


@pytest.mark.parametrize(
    ("name", "rows"), [("azure_conv_2023.csv", 19366), ("azure_code_2023.csv", 8819)]
)
def test_azure_counts_sums_and_arrivals(name, rows):
    with (TRACES / name).open(newline="") as f:
        recs = list(csv.DictReader(f))
    assert len(recs) == rows
    df = load_trace(TRACES / name, kind="azure")
    validate_trace(df)
    assert len(df) == rows
    assert list(df.columns) == ["arrival_s", "prompt_tokens", "output_tokens"]
    assert int(df.prompt_tokens.sum()) == sum(int(r["ContextTokens"]) for r in recs)
    assert int(df.output_tokens.sum()) == sum(int(r["GeneratedTokens"]) for r in recs)
    ns = np.array([_azure_ns(r["TIMESTAMP"]) for r in recs], dtype=np.int64)
    np.testing.assert_allclose(df.arrival_s.to_numpy(), (ns - ns.min()) / 1e9, rtol=0, atol=1e-9)


def test_azure_conv_first_arrivals_by_hand():
    df = load_trace(TRACES / "azure_conv_2023.csv", kind="azure")
    # 18:15:46.6805900, 18:15:50.9951690, 18:15:51.2224670
    assert df.arrival_s.iloc[:3].tolist() == pytest.approx([0.0, 4.314579, 4.541877], abs=1e-12)
    assert df.prompt_tokens.iloc[:2].tolist() == [374, 396]
    assert df.output_tokens.iloc[:2].tolist() == [44, 109]


def test_seven_fractional_digits_are_kept(tmp_path):
    p = _write(tmp_path, "t.csv", HEADER + "2023-11-16 18:15:46.0000001,10,1\n"
               "2023-11-16 18:15:46.0000009,10,1\n2023-11-16 18:15:47.1234567,10,1")
    a = load_trace(p, kind="azure", cache=False).arrival_s.to_numpy()
    np.testing.assert_allclose(a, [0.0, 8e-7, 1.1234566], rtol=0, atol=1e-13)


@pytest.mark.parametrize(
    ("name", "rows"), [("mooncake_conversation.jsonl", 12031), ("mooncake_synthetic.jsonl", 3993)]
)
def test_mooncake_counts_sums_and_hash_ids(name, rows):
    with (TRACES / name).open() as f:
        recs = [json.loads(line) for line in f if line.strip()]
    assert len(recs) == rows
    df = load_trace(TRACES / name, kind="mooncake")
    validate_trace(df)
    assert len(df) == rows
    assert int(df.prompt_tokens.sum()) == sum(r["input_length"] for r in recs)
    assert int(df.output_tokens.sum()) == sum(r["output_length"] for r in recs)
    ts = sorted(r["timestamp"] for r in recs)
    assert df.arrival_s.tolist() == [(t - ts[0]) / 1000 for t in ts]
    assert df.hash_ids.tolist() == [r["hash_ids"] for r in recs]  # file is sorted already
    assert all(type(h) is list for h in df.hash_ids)


def test_generic_csv_with_mapping_and_ms(tmp_path):
    p = _write(tmp_path, "g.csv", "ts,in_len,out_len,who\n1500,10,2,m1\n2500,20,3,\n1000,5,1,m2\n")
    df = load_trace(p, columns={"arrival_s": "ts", "prompt_tokens": "in_len",
                                "output_tokens": "out_len", "model": "who"}, time_unit="ms")
    validate_trace(df)
    assert df.arrival_s.tolist() == [0.0, 0.5, 1.5]
    assert df.prompt_tokens.tolist() == [5, 10, 20]
    assert df.model.tolist() == ["m2", "m1", None]  # a blank cell names no model


def test_generic_parquet_and_jsonl_us(tmp_path):
    t = pa.table({"arrival_s": [0.0, 2.5], "prompt_tokens": [3, 4], "output_tokens": [1, 9],
                  "session_id": ["a", None]})
    pq.write_table(t, tmp_path / "g.parquet")
    df = load_trace(tmp_path / "g.parquet", columns={"session_id": "session_id"})
    assert df.arrival_s.tolist() == [0.0, 2.5]
    assert df.session_id.tolist() == ["a", None] and df.session_id.dtype == object
    p = _write(tmp_path, "g.jsonl", '{"t": 10, "p": 3, "o": 1}\n{"t": 1000010, "p": 4, "o": 2}\n')
    df = load_trace(p, columns={"arrival_s": "t", "prompt_tokens": "p", "output_tokens": "o"},
                    time_unit="us")
    assert df.arrival_s.tolist() == [0.0, 1.0]


def test_generic_datetime_iso(tmp_path):
    p = _write(tmp_path, "d.csv", "arrival_s,prompt_tokens,output_tokens\n"
               "2024-01-01T00:00:01.5,1,1\n2024-01-01T00:00:00,2,2\n")
    df = load_trace(p, time_unit="datetime")
    assert df.arrival_s.tolist() == [0.0, 1.5]
    assert df.prompt_tokens.tolist() == [2, 1]


def test_unsorted_timestamps_are_sorted_stably(tmp_path):
    p = _write(tmp_path, "u.csv", "arrival_s,prompt_tokens,output_tokens\n"
               "3.0,1,1\n1.0,2,1\n1.0,3,1\n2.0,4,1\n")
    df = load_trace(p, cache=False)
    assert df.prompt_tokens.tolist() == [2, 3, 4, 1]
    assert df.arrival_s.tolist() == [0.0, 0.0, 1.0, 2.0]
    assert df.index.tolist() == [0, 1, 2, 3]


# --- errors: file, line (header = line 1), field and value are named --------------------------


@pytest.mark.parametrize(
    ("body", "match"),
    [
        ("2023-11-16 18:15:46.1,1,1\n\n2023-11-16 18:15:47.1,3x4,44\n",
         r"bad\.csv: line 4: field ContextTokens \(prompt_tokens\): not a number: '3x4'"),
        ("2023-11-16 18:15:46.1,1,1\n2023-11-16 18:15:47.1,5\n",
         r"bad\.csv: line 3: expected 3 fields .*found 2"),
        ("2023-11-16 18:15:46.1,1,1\n2023-11-16 18:15:47.1,5,5,5\n",
         r"bad\.csv: line 3: expected 3 fields .*found 4"),
        ("2023-11-16 18:15:46.1,1,1\n2023-11-16 18:15:4x.1,5,5\n",
         r"bad\.csv: line 3: field TIMESTAMP \(arrival_s\): cannot parse timestamp"),
        ("2023-11-16 18:15:46.1,1,1\n2023-11-16 18:15:47.1,1,1\n2023-11-16 18:15:48.1,-5,1\n",
         r"bad\.csv: line 4: field ContextTokens \(prompt_tokens\): .*>= 1, got -5"),
        ("2023-11-16 18:15:46.1,0,1\n",
         r"bad\.csv: line 2: field ContextTokens \(prompt_tokens\): .*>= 1, got 0"),
        ("2023-11-16 18:15:46.1,7,0\n",
         r"bad\.csv: line 2: field GeneratedTokens \(output_tokens\): .*>= 1, got 0"),
        ("2023-11-16 18:15:46.1,7,2.5\n",
         r"bad\.csv: line 2: field GeneratedTokens \(output_tokens\): not an integer: '2\.5'"),
    ],
    ids=["non-numeric", "too-few-fields", "too-many-fields", "bad-timestamp", "negative",
         "zero-prompt", "zero-output", "non-integer"],
)
def test_azure_bad_rows(tmp_path, body, match):
    p = _write(tmp_path, "bad.csv", HEADER + body)
    with pytest.raises(TraceError, match=match):
        load_trace(p, kind="azure")


def test_missing_column_names_file_column_and_found(tmp_path):
    p = _write(tmp_path, "m.csv", "TIMESTAMP,Context,GeneratedTokens\n2023-11-16 18:15:46.1,1,1\n")
    with pytest.raises(TraceError, match=r"m\.csv: missing column\(s\) ContextTokens "
                       r"\(for prompt_tokens\); columns found: 'TIMESTAMP', 'Context', "
                       r"'GeneratedTokens' \(name the file's column: "
                       r"\+\+workload\.source\.columns\.prompt_tokens=<column>\)"):
        load_trace(p, kind="azure")


_OK = '{"timestamp": 0, "input_length": 5, "output_length": 3, "hash_ids": [1]}\n'


@pytest.mark.parametrize(
    ("body", "match"),
    [
        ('{"timestamp": 5, "input_length": 5\n', r"line 3: invalid JSON"),
        ('[1, 2]\n', r"line 3: expected a JSON object"),
        ('{"timestamp": 5, "input_length": "abc", "output_length": 3, "hash_ids": []}\n',
         r"line 3: field input_length \(prompt_tokens\): not a number: 'abc'"),
        ('{"timestamp": 5, "output_length": 3, "hash_ids": []}\n',
         r"line 3: field input_length \(prompt_tokens\): missing value"),
        ('{"timestamp": 5, "input_length": 5, "output_length": -2, "hash_ids": []}\n',
         r"line 3: field output_length \(output_tokens\): .*>= 1, got -2"),
        ('{"timestamp": 5, "input_length": 5, "output_length": 2, "hash_ids": ["a"]}\n',
         r"line 3: field hash_ids \(hash_ids\): expected a list of signed 64-bit integers"),
    ],
    ids=["bad-json", "not-object", "non-numeric", "missing-key", "negative", "bad-hash-ids"],
)
def test_mooncake_bad_lines(tmp_path, body, match):
    p = _write(tmp_path, "bad.jsonl", _OK + "\n" + body)  # blank line 2 still counts
    with pytest.raises(TraceError, match=r"bad\.jsonl: " + match):
        load_trace(p, kind="mooncake")


def test_file_and_option_errors(tmp_path):
    with pytest.raises(TraceError, match=r"nope\.csv: trace file not found"):
        load_trace(tmp_path / "nope.csv", kind="azure")
    with pytest.raises(TraceError, match=r"empty file"):
        load_trace(_write(tmp_path, "e.csv", ""), kind="azure")
    with pytest.raises(TraceError, match=r"holds no records"):
        load_trace(_write(tmp_path, "h.csv", HEADER), kind="azure")
    with pytest.raises(TraceError, match=r"valid suffixes"):
        load_trace(_write(tmp_path, "x.txt", "a"))
    p = TRACES / "azure_conv_2023.csv"
    with pytest.raises(ConfigError, match=r"kind: unknown value 'azur'; valid choices: "
                       r"agent_rounds, azure, generic, mooncake, ragpulse"):
        load_trace(p, kind="azur")
    with pytest.raises(ConfigError, match=r"time_unit: .*valid choices: datetime, ms, s, us"):
        load_trace(p, kind="azure", time_unit="ns")
    with pytest.raises(ConfigError, match=r"columns\.prompt: unknown key 'prompt'; valid keys: "
                       r".*did you mean 'prompt_tokens'"):
        load_trace(p, columns={"prompt": "x"})


# --- cache ------------------------------------------------------------------------------------


def _loader(kind: str) -> dict:
    from wrpsim.workload.loaders import loader_params

    return loader_params(kind)


def _params(p: Path) -> Path:
    return cache_file(p, {"kind": "azure", **_loader("azure")})


def test_cache_is_transparent_and_recovers_from_corruption(tmp_path, monkeypatch):
    monkeypatch.setenv("WRPSIM_CACHE", str(tmp_path / "c"))
    src = TRACES / "azure_code_2023.csv"
    fresh = load_trace(src, kind="azure", cache=False)
    first = load_trace(src, kind="azure")
    cfile = _params(src)
    assert cfile.is_file() and cfile.parent == tmp_path / "c"
    hit = load_trace(src, kind="azure")
    pd.testing.assert_frame_equal(fresh, first)
    pd.testing.assert_frame_equal(fresh, hit)
    cfile.write_bytes(b"not parquet at all")
    pd.testing.assert_frame_equal(fresh, load_trace(src, kind="azure"))
    assert pq.read_table(cfile).num_rows == len(fresh)  # rebuilt
    assert not [p for p in cfile.parent.iterdir() if ".tmp" in p.name]  # no temporaries left


def test_cache_keeps_optional_columns_and_tracks_source_changes(tmp_path, monkeypatch):
    monkeypatch.setenv("WRPSIM_CACHE", str(tmp_path / "c"))
    p = _write(tmp_path, "s.jsonl", _OK + '{"timestamp": 9, "input_length": 700, '
               '"output_length": 1, "hash_ids": [1, 2]}\n')
    fresh = load_trace(p, kind="mooncake", cache=False)
    load_trace(p, kind="mooncake")
    pd.testing.assert_frame_equal(fresh, load_trace(p, kind="mooncake"))
    assert load_trace(p, kind="mooncake").hash_ids.tolist() == [[1], [1, 2]]
    p.write_text(_OK)
    os.utime(p, ns=(1, 1))
    assert len(load_trace(p, kind="mooncake")) == 1
    # the same size and the mtime restored after a rewrite (as `cp -p` / `rsync -t` do): the
    # ctime still tells the content changed
    before = p.stat()
    p.write_text(_OK.replace('"output_length": 3', '"output_length": 7'))
    assert p.stat().st_size == before.st_size
    os.utime(p, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert load_trace(p, kind="mooncake").output_tokens.tolist() == [7]


def test_cache_keeps_its_most_recently_used_traces(tmp_path, monkeypatch):
    """After a write the folder holds the `KEEP` most recently used traces; a hit is a use."""
    import wrpsim.workload.cache as cache

    monkeypatch.setenv("WRPSIM_CACHE", str(tmp_path / "c"))
    monkeypatch.setattr(cache, "KEEP", 2)
    srcs = [_write(tmp_path, f"s{i}.jsonl", _OK) for i in range(3)]
    files = []
    for i, p in enumerate(srcs[:2]):
        load_trace(p, kind="mooncake")
        files.append(cache_file(p, {"kind": "mooncake", **_loader("mooncake")}))
        os.utime(files[-1], ns=(10**18 + i, 10**18 + i))  # s0 older than s1
    load_trace(srcs[0], kind="mooncake")  # a hit: s0 is now the most recently used
    load_trace(srcs[2], kind="mooncake")  # a write: the least recently used (s1) goes
    assert files[0].exists() and not files[1].exists()
    assert len(list((tmp_path / "c").glob("*.parquet"))) == 2


def test_cache_off(tmp_path, monkeypatch):
    monkeypatch.setenv("WRPSIM_CACHE", "off")
    df = load_trace(TRACES / "azure_code_2023.csv", kind="azure")
    assert len(df) == 8819
    assert cache_file(TRACES / "azure_code_2023.csv", {}) is None


# --- bring-your-own-trace: optional columns, outcomes, datetimes, CSV lists (review4) ---

def test_mapped_outcomes_load_as_dicts_in_every_format_and_through_the_cache(tmp_path,
                                                                             monkeypatch):
    monkeypatch.setenv("WRPSIM_CACHE", str(tmp_path / "c"))
    want = [{"llama3.1-70b": 1.0, "llama3.1-8b": 0.0}, {"llama3.1-70b": 0.5}]
    j = _write(tmp_path, "o.jsonl", "".join(
        json.dumps({"arrival_s": i, "prompt_tokens": 5, "output_tokens": 3, "outcomes": o}) + "\n"
        for i, o in enumerate(want)))
    c = _write(tmp_path, "o.csv", "arrival_s,prompt_tokens,output_tokens,outcomes\n"
               '0,5,3,"{""llama3.1-70b"": 1, ""llama3.1-8b"": 0}"\n'
               '1,5,3,"{""llama3.1-70b"": 0.5}"\n')
    q = tmp_path / "o.parquet"
    pq.write_table(pa.table({"arrival_s": [0.0, 1.0], "prompt_tokens": [5, 5],
                             "output_tokens": [3, 3],
                             "outcomes": pa.array([list(o.items()) for o in want],
                                                  pa.map_(pa.string(), pa.float64()))}), q)
    for p in (j, c, q):
        assert load_trace(p, cache=False)["outcomes"].tolist() == want, p
        load_trace(p)  # written to the cache
        assert load_trace(p)["outcomes"].tolist() == want, p  # read back from it
    from wrpsim.workload.request import to_requests
    assert [r.outcomes for r in to_requests(load_trace(q))] == want


def test_write_cached_skips_what_it_cannot_serialise(tmp_path):
    from wrpsim.workload.cache import write_cached

    df = pd.DataFrame({"arrival_s": [0.0], "prompt_tokens": [5], "output_tokens": [3],
                       "outcomes": pd.Series(["not a map"], dtype=object)})
    assert write_cached(tmp_path / "x.parquet", df) is False
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("unit", ["s", "ms", "datetime"])
def test_a_parquet_timestamp_column_is_time_whatever_the_unit(tmp_path, unit):
    q = tmp_path / "t.parquet"
    t = pd.date_range("2024-01-01", periods=3, freq="1500ms")
    pd.DataFrame({"arrival_s": t, "prompt_tokens": [5, 5, 5],
                  "output_tokens": [3, 3, 3]}).to_parquet(q)
    df = load_trace(q, time_unit=unit, cache=False)
    assert df["arrival_s"].tolist() == [0.0, 1.5, 3.0]


def test_optional_columns_of_canonical_name_are_read_unless_set_null(tmp_path):
    p = _write(tmp_path, "o.csv", "arrival_s,prompt_tokens,output_tokens,model,session_id,"
               "think_s,category,extra\n0,5,3,m1,s1,,chat,x\n1,5,3,m2,s1,2.5,code,y\n")
    df = load_trace(p, cache=False)
    assert list(df.columns) == ["arrival_s", "prompt_tokens", "output_tokens", "model",
                                "session_id", "category", "think_s"]
    assert df["model"].tolist() == ["m1", "m2"] and df["think_s"].tolist()[1] == 2.5
    df = load_trace(p, cache=False, columns={"model": None, "session_id": "category"})
    assert "model" not in df.columns and "category" not in df.columns  # used as session_id
    assert df["session_id"].tolist() == ["chat", "code"]
    with pytest.raises(ConfigError, match=r"columns\.arrival_s: a required column cannot be"):
        load_trace(p, cache=False, columns={"arrival_s": None})


def test_hash_ids_in_a_csv_cell_are_a_json_list(tmp_path):
    p = _write(tmp_path, "h.csv", 'arrival_s,prompt_tokens,output_tokens,hash_ids\n'
               '1,600,5,"[1, 2]"\n0,700,5,\n')
    df = load_trace(p, hash_block_tokens=512, cache=False)
    assert df["hash_ids"].tolist() == [None, [1, 2]]


def test_checks_after_parsing_name_the_file_line_not_the_sorted_row(tmp_path):
    p = _write(tmp_path, "s.csv", "arrival_s,prompt_tokens,output_tokens,images\n"
               "9,5,3,0\n0,5,3,0\n5,5,3,-2\n")
    with pytest.raises(TraceError, match=r"s\.csv: line 4: images must be >= 0, got -2$"):
        load_trace(p, cache=False)


def test_a_blank_text_cell_is_a_missing_value(tmp_path):
    """A blank `model` cell is a request that names no model (it goes to the default model);
    it was the model '' that no pool serves."""
    p = _write(tmp_path, "b.csv", "arrival_s,prompt_tokens,output_tokens,model,session_id\n"
               "0,5,3,m1,s1\n1,5,3,,\n2,5,3,  ,s2\n")
    df = load_trace(p, cache=False)
    assert df["model"].tolist()[0] == "m1"
    assert [v is None or v != v for v in df["model"].tolist()[1:]] == [True, True]
    assert df["session_id"].tolist()[0] == "s1" and df["session_id"].tolist()[2] == "s2"
    assert df["session_id"].tolist()[1] is None or df["session_id"].tolist()[1] != \
        df["session_id"].tolist()[1]


def test_times_with_a_zone_are_compared_in_utc(tmp_path):
    """A zone-qualified ISO time (…Z, +01:00) in text or a tz-aware Parquet timestamp column
    was a TypeError traceback; both are moved to UTC."""
    p = _write(tmp_path, "z.csv", "ts,prompt_tokens,output_tokens\n2024-01-01T00:00:02Z,5,3\n"
               "2024-01-01T00:00:00+00:00,5,3\n2024-01-01T01:00:01+01:00,5,3\n")
    df = load_trace(p, cache=False, columns={"arrival_s": "ts"}, time_unit="datetime")
    assert df.arrival_s.tolist() == [0.0, 1.0, 2.0]
    t = pd.DataFrame({"arrival_s": pd.date_range("2024-01-01", periods=3, freq="1500ms",
                                                 tz="Europe/Paris")[::-1],
                      "prompt_tokens": [5, 5, 5], "output_tokens": [3, 3, 3]})
    t.to_parquet(tmp_path / "z.parquet")
    assert load_trace(tmp_path / "z.parquet", cache=False).arrival_s.tolist() == [0.0, 1.5, 3.0]


def test_a_preset_kinds_columns_take_user_entries_without_losing_their_own(tmp_path):
    """An azure-format file with extra columns of trace-column names: one line naming the
    column and how to skip it; `columns: {complexity: null}` merges into the preset's
    mapping (it replaced it, losing TIMESTAMP / ContextTokens / GeneratedTokens)."""
    p = _write(tmp_path, "az.csv", "TIMESTAMP,ContextTokens,GeneratedTokens,complexity\n"
               "2023-11-16 18:15:46.6805900,374,44,low\n"
               "2023-11-16 18:15:50.5011290,396,109,high\n")
    with pytest.raises(TraceError, match=r"line 2: field complexity \(complexity\): not a "
                       r"number: 'low' \(the column was read because it has the name of a "
                       r"trace column; ignore it with \+\+workload\.source\.columns\."
                       r"complexity=null\)"):
        load_trace(p, kind="azure", cache=False)
    df = load_trace(p, kind="azure", cache=False, columns={"complexity": None})
    assert df.prompt_tokens.tolist() == [374, 396] and "complexity" not in df.columns


def test_hash_ids_that_break_prefix_semantics_are_a_file_line_error(tmp_path):
    """An id names the whole prefix up to its block: a reversed list reuses ids at other
    positions, which a prefix cache would count as hits on unrelated blocks (58 % of blocks
    "cached" in a three-row trace). The loader stops at the first such row, naming both lines."""
    p = _write(tmp_path, "v.csv", 'arrival_s,prompt_tokens,output_tokens,hash_ids\n'
               '0.0,64,10,"[1,2,3,4]"\n1.0,64,10,"[4,3,2,1]"\n2.0,64,10,"[2,3,4,9]"\n')
    with pytest.raises(TraceError) as e:
        load_trace(p, hash_block_tokens=16)
    assert str(e.value) == (f"{p}: line 3: hash_ids break prefix semantics: id 4 at position 0 "
                            f"(first), but line 2 has it at position 3 after id 3 (an id names "
                            f"the whole prefix up to its block, so it always sits at the same "
                            f"position after the same id)")
    ok = _write(tmp_path, "ok.csv", 'arrival_s,prompt_tokens,output_tokens,hash_ids\n'
                '0.0,64,10,"[1,2,3,4]"\n1.0,48,10,"[1,2,5]"\n')
    assert load_trace(ok, hash_block_tokens=16).hash_ids.tolist() == [[1, 2, 3, 4], [1, 2, 5]]


def test_a_hash_id_list_with_a_null_or_a_fraction_is_a_row_error(tmp_path):
    """The file loaders check each id; a trace frame handed over directly (the library API,
    `Simulation(cfg, trace)`) reached the prefix check with a None as a bare TypeError, and a
    fractional id was truncated."""
    from wrpsim.workload.validate import canonical_frame

    for ids, shown in (([1, None], "None"), ([1, 1.5], "1.5")):
        df = canonical_frame(np.array([0.0, 1.0]), np.array([32, 32]), np.array([5, 5]),
                             {"hash_ids": [[1, 2], ids]})
        with pytest.raises(TraceError, match=rf"^trace: row 1: hash_ids must hold integers, "
                                             rf"got {shown} in "):
            validate_trace(df)
    p = tmp_path / "n.parquet"  # (the Parquet loader names the file's row itself)
    pq.write_table(pa.table({"arrival_s": [0.0, 1.0], "prompt_tokens": [32, 32],
                             "output_tokens": [5, 5],
                             "hash_ids": pa.array([[1, 2], [1, None]],
                                                  type=pa.list_(pa.int64()))}), p)
    with pytest.raises(TraceError, match=r"n\.parquet: row 2: field hash_ids"):
        load_trace(p, hash_block_tokens=16)


@pytest.mark.parametrize("text", [
    "ts,inp,out,mdl\n0.0,100,10,llama3.1-8b\n1.0,100,10\n",            # plain
    "ts,inp,out,mdl\r\n0.0,100,10,llama3.1-8b\r\n\r\n1.0,100,10\r\n",  # CRLF, a blank line
    'ts,inp,out,mdl\n0.0,100,10,"llama3.1-8b"\n1.0,100,10\n',          # quotes: csv module
])
def test_a_line_short_of_its_trailing_optional_field_is_named(tmp_path, text):
    """pandas pads a short line with empty strings: its request ran on the default model."""
    p = _write(tmp_path, "short.csv", text)
    with pytest.raises(TraceError, match=r"short\.csv: line [34]: expected 4 fields "
                       r"\(ts, inp, out, mdl\), found 3"):
        load_trace(p, kind="generic", columns={"arrival_s": "ts", "prompt_tokens": "inp",
                                               "output_tokens": "out", "model": "mdl"},
                   time_unit="s")


@pytest.mark.parametrize("text", [
    "ts,inp,out\n0,100,10\n   \n1,100,10\n \t\n",  # lines of whitespace: blank, as pandas
    "ts,inp,out\r0,100,10\r1,100,10\r",             # old Mac line ends
    'ts,inp,out\n0,100,"10"\n  \n1,100,10\n',       # quotes: the csv module's path
])
def test_blank_and_bare_cr_lines_are_not_short_lines(tmp_path, text):
    p = _write(tmp_path, "ok.csv", text)
    got = load_trace(p, kind="generic", columns={"arrival_s": "ts", "prompt_tokens": "inp",
                                                 "output_tokens": "out"}, time_unit="s",
                     cache=False)
    assert got.prompt_tokens.tolist() == [100, 100]


def test_a_tab_separated_csv_gets_a_hint(tmp_path):
    p = _write(tmp_path, "tab.csv", "ts\tinp\tout\n0\t100\t10\n")
    with pytest.raises(TraceError, match=r"columns found: 'ts\\tinp\\tout' .*the header looks "
                       r"separated by tabs, and CSV traces are read comma-separated"):
        load_trace(p, kind="generic", columns={"arrival_s": "ts", "prompt_tokens": "inp",
                                               "output_tokens": "out"}, time_unit="s")


@pytest.mark.parametrize(("bad", "shown"), [("1.5", r"\[1\.5\]"),
                                            ("99999999999999999999", r"\[99999999999999999999\]")])
def test_a_float_or_oversized_hash_id_is_named_on_its_own_line(tmp_path, bad, shown):
    """Arrow read a list column with one float (or an id past int64) as floats throughout, so
    the first row failed, shown as [1.0]: the line with the bad id is named, with its value."""
    p = _write(tmp_path, "h.jsonl", _OK + _OK.replace('"timestamp": 0', '"timestamp": 1')
               + _OK.replace('"timestamp": 0', '"timestamp": 2').replace("[1]", f"[{bad}]"))
    with pytest.raises(TraceError, match=r"h\.jsonl: line 3: field hash_ids \(hash_ids\): "
                       r"expected a list of signed 64-bit integers, e\.g\. \[1, 2\], got " + shown):
        load_trace(p, kind="mooncake", cache=False)
