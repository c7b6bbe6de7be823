"""Arrow columns from and to numpy / Python values without pyarrow's pandas shim.

`pa.array(...)` and `Array.to_numpy()` / `ChunkedArray.to_numpy()` import pandas on their first
call in a process (pyarrow checks whether the values are pandas objects), about 0.3 s: most of
a short run's start-up. The run path builds and reads its result tables through these two
functions instead, which read and write the Arrow buffers directly for the types the result
schemas use, and give exactly what the pyarrow calls give:

- `array(values, type)`: a list / tuple of Python values (None = null) as an Arrow array of
  `type` (float64 / int64 / int32 / bool / string built from buffers; any other type, or a
  value the fast path does not take as pyarrow would, goes to `pa.array`);
- `to_numpy(column)`: what `column.to_numpy(zero_copy_only=False)` returns (a new array; nulls
  of a float column NaN, an integer column with nulls float64 with NaN, strings an object
  array of `str` / None; other types go to pyarrow's `to_numpy`);
- `factorize(column)`: (codes, values) with `values[codes[i]]` the i-th value as
  `to_pylist()` gives it, converting `BLOCK_ROWS` values at a time: a million-row string
  column is read without a million Python strings at once (and a string column holding one
  value throughout, the run's one model, pool or status, without any: `_all_equal`).
"""

from __future__ import annotations

import sys
from itertools import repeat
from operator import is_

import numpy as np
import pyarrow as pa

_FIXED = {pa.float64(): np.float64, pa.int64(): np.int64, pa.int32(): np.int32}
type_of = type  # (the builtin; `array` takes an argument named `type`, as `pa.array` does)
_NONE = type(None)
_FAST = (*_FIXED, pa.bool_(), pa.string())  # the types `array` builds from buffers


def _validity(is_null: np.ndarray) -> pa.Buffer:
    return pa.py_buffer(np.packbits(~is_null, bitorder="little"))


def _fixed(values: list, kinds: set, nulls: np.ndarray | None,
           type: pa.DataType) -> np.ndarray | None:
    """`values` as the numpy array of a fixed-width `type` (0 at nulls), or None when pyarrow
    might convert them differently (a value of another Python type, out of range). `kinds`:
    the Python types of the non-null values."""
    if any(issubclass(k, bool) or not issubclass(k, (int, float)) for k in kinds):
        return None
    floats = any(issubclass(k, float) for k in kinds)
    if floats and type != pa.float64():
        return None
    filled = values if nulls is None else [0 if v is None else v for v in values]
    try:  # (`fromiter`, not `np.array`: a third faster; the same values once `kinds` passed)
        out = np.fromiter(filled, dtype=np.float64 if floats else np.int64, count=len(filled))
    except OverflowError:
        return None
    if type == pa.float64():
        if not floats and out.size and np.abs(out).max() > 2**53:
            return None
        return out.astype(np.float64, copy=False)
    info = np.iinfo(_FIXED[type])
    if out.size and (out.min() < info.min or out.max() > info.max):
        return None
    return out.astype(_FIXED[type], copy=False)


def _strings(values: list, nulls: np.ndarray | None) -> tuple[np.ndarray, bytes]:
    """(int64 offsets, UTF-8 data) of a string column (nulls: empty)."""
    texts = values if nulls is None else ["" if v is None else v for v in values]
    data = "".join(texts).encode("utf-8")
    lengths = np.fromiter(map(len, texts), dtype=np.int64, count=len(texts))
    if len(data) != lengths.sum():  # not all ASCII: lengths in bytes
        lengths = np.fromiter((len(t.encode("utf-8")) for t in texts), dtype=np.int64,
                              count=len(texts))
    offsets = np.zeros(len(texts) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return offsets, data


def array(values, type: pa.DataType) -> pa.Array:
    """`values` (a sequence of Python values, None = null, or a numpy array) as an Arrow array
    of `type`; equal to `pa.array(values, type=type)` (module docstring). When pandas is
    already imported there is no import to avoid and `pa.array` itself is used: its C
    conversion is faster (~0.5 vs ~1.2 ms per 20,000-value column)."""
    if "pandas" in sys.modules:
        return pa.array(values, type=type)
    if isinstance(values, np.ndarray):
        if type in _FIXED and values.dtype == _FIXED[type]:
            return pa.Array.from_buffers(type, len(values),
                                         [None, pa.py_buffer(np.ascontiguousarray(values))])
        values = values.tolist()
    if type_of(values) is not tuple and not isinstance(values, list):
        values = list(values)  # (a tuple, e.g. a column of `zip(*rows)`, is read as it is)
    n = len(values)
    kinds = set(map(type_of, values))
    nulls = None
    if _NONE in kinds:
        kinds.discard(_NONE)
        if not kinds and type in _FAST:  # all null
            return pa.nulls(n, type)
        nulls = np.fromiter(map(is_, values, repeat(None)), dtype=bool, count=n)
    null_count = 0 if nulls is None else int(nulls.sum())
    validity = None if nulls is None else _validity(nulls)
    if type in _FIXED:
        data = _fixed(values, kinds, nulls, type)
        if data is not None:
            return pa.Array.from_buffers(type, n, [validity, pa.py_buffer(data)],
                                         null_count=null_count)
    elif type == pa.bool_() and kinds <= {bool}:
        bits = np.array([v is True for v in values], dtype=bool)
        return pa.Array.from_buffers(type, n, [validity, pa.py_buffer(
            np.packbits(bits, bitorder="little"))], null_count=null_count)
    elif type == pa.string() and kinds <= {str}:
        offsets, data = _strings(values, nulls)
        if offsets[-1] < 2**31:
            return pa.Array.from_buffers(type, n, [
                validity, pa.py_buffer(offsets.astype(np.int32)), pa.py_buffer(data)],
                null_count=null_count)
    return pa.array(values if isinstance(values, list) else list(values), type=type)


def table(columns: list, schema: pa.Schema) -> pa.Table:
    """A table of `schema` from one sequence of Python values per field (`array`)."""
    return pa.Table.from_arrays([array(c, f.type) for c, f in zip(columns, schema)],
                                schema=schema)


def to_numpy(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """`column.to_numpy(zero_copy_only=False)` as a new array (module docstring)."""
    chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
    t = column.type
    if t in _FIXED:
        dt = _FIXED[t]
        parts = []
        nulls = []
        for c in chunks:
            if not len(c):
                continue
            parts.append(np.frombuffer(c.buffers()[1], dtype=dt)[c.offset:c.offset + len(c)])
            nulls.append(_null_mask(c))
        data = np.concatenate(parts) if parts else np.empty(0, dtype=dt)
        if not any(m is not None for m in nulls):
            return data
        mask = np.concatenate([np.zeros(len(p), bool) if m is None else m
                               for p, m in zip(parts, nulls)])
        out = data.astype(np.float64)
        out[mask] = np.nan
        return out
    if t == pa.bool_() and not column.null_count:
        return np.array(column.to_pylist(), dtype=bool)
    if t == pa.string():
        return np.array(column.to_pylist(), dtype=object)
    return column.to_numpy(zero_copy_only=False)


#: values `factorize` converts to Python at a time
BLOCK_ROWS = 65_536


def factorize(column: pa.ChunkedArray | pa.Array) -> tuple[np.ndarray, list]:
    """(int64 code of each value, distinct values in order of first appearance) of a column of
    hashable values (strings, numbers): values[code] equals the value `column.to_pylist()` has
    there (None for a null)."""
    n = len(column)
    if n and column.null_count == n:  # all null (e.g. prefill_pool of a colocated fleet)
        return np.zeros(n, dtype=np.int64), [None]
    if n and column.type == pa.string() and not column.null_count:
        first = column[0].as_py()
        if _all_equal(column, first.encode("utf-8")):  # (one model, pool or status: common)
            return np.zeros(n, dtype=np.int64), [first]
    index: dict = {}
    codes = np.empty(n, dtype=np.int64)
    for lo in range(0, len(column), BLOCK_ROWS):
        block = column.slice(lo, BLOCK_ROWS).to_pylist()
        codes[lo:lo + len(block)] = [index.setdefault(v, len(index)) for v in block]
    return codes, list(index)


def _all_equal(column: pa.ChunkedArray | pa.Array, value: bytes) -> bool:
    """Whether every value of a string column without nulls is `value` (UTF-8), read from its
    offsets and data buffers: no Python string per row."""
    size = len(value)
    chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
    for c in chunks:
        if not len(c):
            continue
        _, offsets, data = c.buffers()
        off = np.frombuffer(offsets, dtype=np.int32)[c.offset:c.offset + len(c) + 1]
        if not (np.diff(off) == size).all():
            return False
        raw = b"" if data is None else data.to_pybytes()
        if raw[off[0]:off[-1]] != value * len(c):
            return False
    return True


def _null_mask(chunk: pa.Array) -> np.ndarray | None:
    if not chunk.null_count:
        return None
    bits = np.frombuffer(chunk.buffers()[0], dtype=np.uint8)
    valid = np.unpackbits(bits, bitorder="little")[chunk.offset:chunk.offset + len(chunk)]
    return valid == 0
