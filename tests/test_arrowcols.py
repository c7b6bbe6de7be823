"""`wrpsim.arrowcols` gives exactly what pyarrow's `pa.array` / `to_numpy` give (values, nulls,
types, the Parquet bytes written), without importing pandas."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from wrpsim import arrowcols

CASES = [
    (pa.float64(), [1.0, None, 2.5, float("nan"), 3]),
    (pa.float64(), [1.0, 2.0]),
    (pa.float64(), [np.float64(2.5), 1, None]),
    (pa.float64(), np.array([1.0, np.nan])),
    (pa.float64(), []),
    (pa.float64(), [2**60]),
    (pa.int64(), [1, None, -5, 2**40]),
    (pa.int64(), np.array([1, 2])),
    (pa.int64(), [np.int64(3), 4]),
    (pa.int64(), [True, 1]),
    (pa.int32(), [1, 2, 3]),
    (pa.int32(), [None, None]),
    (pa.int32(), np.array([1, 2])),
    (pa.int32(), [2**40]),
    (pa.bool_(), [True, False, None, True] * 5),
    (pa.bool_(), [True, False] * 9),
    (pa.string(), ["a", None, "héllo", ""]),
    (pa.string(), []),
]


def _buffers(values, t: pa.DataType) -> pa.Array:
    """`arrowcols.array` as a process without pandas runs it (the buffer path)."""
    pandas = sys.modules.pop("pandas", None)
    try:
        return arrowcols.array(values, t)
    finally:
        if pandas is not None:
            sys.modules["pandas"] = pandas


def _parquet(arr: pa.Array) -> bytes:
    buf = io.BytesIO()
    pq.write_table(pa.table([arr], names=["c"]), buf, compression="zstd", write_statistics=True)
    return buf.getvalue()


@pytest.mark.parametrize("case", range(len(CASES)))
def test_array_equals_pyarrows(case):
    t, values = CASES[case]
    try:
        want = pa.array(values, type=t)
    except (pa.ArrowException, OverflowError, TypeError, ValueError) as e:
        with pytest.raises(type(e)):
            _buffers(values, t)
        if isinstance(values, list):
            with pytest.raises(type(e)):
                _buffers(tuple(values), t)
        return
    got = arrowcols.array(values, t)
    assert "pandas" not in sys.modules or str(got) == str(want)  # (then it is pa.array)
    got = _buffers(values, t)
    got.validate(full=True)
    assert got.type == want.type and got.null_count == want.null_count
    assert str(got) == str(want)  # (NaN != NaN, so compared as text)
    assert _parquet(got) == _parquet(want)
    if isinstance(values, list):  # a tuple (a column of `zip(*rows)`) is read without a copy
        as_tuple = _buffers(tuple(values), t)
        as_tuple.validate(full=True)
        assert str(as_tuple) == str(want) and _parquet(as_tuple) == _parquet(want)


@pytest.mark.parametrize("case", range(len(CASES)))
def test_to_numpy_equals_pyarrows(case):
    t, values = CASES[case]
    try:
        arr = pa.array(values, type=t)
    except (pa.ArrowException, OverflowError, TypeError, ValueError):
        return
    for col in (pa.chunked_array([arr], type=t), arr,
                pa.chunked_array([arr, arr.slice(1)], type=t) if len(arr) else arr):
        got, want = arrowcols.to_numpy(col), col.to_numpy(zero_copy_only=False)
        assert got.dtype == want.dtype
        if got.dtype.kind == "f":
            np.testing.assert_array_equal(got, want)
        else:
            assert got.tolist() == want.tolist()


def test_no_pandas_is_imported():
    code = """
import sys
import pyarrow as pa
from wrpsim import arrowcols
s = pa.schema([("a", pa.int64()), ("b", pa.string()), ("c", pa.float64())])
t = arrowcols.table([[1, 2], ["x", None], [0.5, None]], s)
arrowcols.to_numpy(t.column("c"))
print("pandas" in sys.modules)
"""
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env={**os.environ, "PYTHONPATH": str(root)})
    assert out.stdout.strip() == "False"


def test_factorize_codes_give_back_the_values(monkeypatch):
    monkeypatch.setattr(arrowcols, "BLOCK_ROWS", 3)  # several blocks, across chunk bounds
    values = ["b", None, "a", "b", "é", None, "a", "b"]
    col = pa.chunked_array([pa.array(values[:5]), pa.array(values[5:])])
    codes, distinct = arrowcols.factorize(col)
    assert distinct == ["b", None, "a", "é"] and codes.dtype == np.int64
    assert [distinct[c] for c in codes] == values


@pytest.mark.parametrize("values", [["é"] * 5, [""] * 4, ["ab", "ab", "a", "b"], ["x", "x", "xy"],
                                    ["x", "x", "x\x00"], ["ab", "", "ab", "ab"]])
def test_factorize_of_one_repeated_string_as_of_any_column(values):
    # the all-equal shortcut reads the buffers: sliced and chunked columns, near misses
    col = pa.chunked_array([pa.array(["z", *values[:2]]).slice(1), pa.array([]).cast(pa.string()),
                            pa.array(values[2:])])
    codes, distinct = arrowcols.factorize(col)
    assert [distinct[c] for c in codes] == values and codes.dtype == np.int64
    assert distinct == list(dict.fromkeys(values))


def test_request_log_take_table_equals_table_and_releases_the_rows(monkeypatch):
    import pyarrow.compute as pc

    from wrpsim.metrics import records
    from wrpsim.workload import Request

    monkeypatch.setattr(records, "CHUNK_ROWS", 8)  # 50 rows: six Arrow chunks and a tail
    log = records.RequestLog()
    for i in np.random.default_rng(0).permutation(50).tolist():
        log.dropped(Request(i, i * 0.5, 10 + i, 5), f"m{i % 3}", "context", i * 0.5)
    ref = pa.concat_tables([*log.rows.chunks, records._rows_to_table(
        log.rows, records.REQUEST_SCHEMA)]).combine_chunks()  # (one table sorted as a whole)
    ref = ref.take(pc.sort_indices(ref, sort_keys=[("request_id", "ascending")]))
    got, again = log.table(), log.take_table()

    def parquet(t):
        buf = io.BytesIO()
        pq.write_table(t, buf, compression="zstd", write_statistics=True)
        return buf.getvalue()

    assert parquet(got) == parquet(again) == parquet(ref)
    assert again.schema.equals(records.REQUEST_SCHEMA, check_metadata=True)
    assert again.column("request_id").to_pylist() == list(range(50))
    assert all(c.num_chunks == 1 for c in again.columns)
    assert not log.rows and not log.rows.chunks
