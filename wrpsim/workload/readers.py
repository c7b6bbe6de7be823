"""Vectorised readers of tabular trace files (CSV, JSON Lines, Parquet) into raw columns.

A reader returns a `RawTable`: the file's columns as pandas Series (values still as the file wrote
them) and a way to name where record `i` sits in the file (`line N` as a text editor numbers it,
header = line 1; `row N` for Parquet). The fast paths are pandas' C CSV parser, pyarrow's JSON
reader and pyarrow's Parquet reader; Python loops run only to locate a bad line for an error.
Blank lines are skipped in CSV and JSONL files (they hold no record).
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow as pa

from wrpsim.errors import TraceError
from wrpsim.workload.files import FORMATS, detect_format, not_text, require_file

__all__ = ["FORMATS", "RawTable", "detect_format", "not_text", "other_delimiter", "read_records",
           "read_table", "require_file"]

#: the delimiters a spreadsheet's export may use instead of commas: (name for messages, char)
OTHER_DELIMITERS = (("tabs", "\t"), ("semicolons", ";"), ("|", "|"))


def other_delimiter(columns) -> tuple[str, str] | None:
    """(name, char) of the delimiter (`OTHER_DELIMITERS`) a file read comma-separated holds in
    its header when that header read as one column — a file separated otherwise —, else None."""
    names = [str(c) for c in columns]
    if len(names) != 1:
        return None
    return next(((n, ch) for n, ch in OTHER_DELIMITERS if ch in names[0]), None)


@dataclass
class RawTable:
    """Columns of one trace file, plus the file position of each record for error messages."""

    path: Path
    fmt: str
    columns: dict[str, pd.Series]
    _lines: list[int] | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return len(next(iter(self.columns.values()))) if self.columns else 0

    def where(self, i: int) -> str:
        """Where record `i` (0-based) is in the file: 'line N' (1-based) or 'row N' (Parquet)."""
        if self.fmt == "parquet":
            return f"row {i + 1}"
        if self._lines is None:
            self._lines = _record_lines(self.path, self.fmt)
        return f"line {self._lines[i]}" if i < len(self._lines) else f"record {i + 1}"

    def field_count_problem(self, i: int) -> str | None:
        """For CSV: a message if record `i` has the wrong number of fields, else None."""
        if self.fmt != "csv":
            return None
        want = len(self.columns)
        with self.path.open(newline="", encoding="utf-8-sig") as f:
            rows = (r for r in csv.reader(f) if r)
            next(rows, None)
            for k, row in enumerate(rows):
                if k == i:
                    if len(row) != want:
                        names = ", ".join(self.columns)
                        return f"expected {want} fields ({names}), found {len(row)}"
                    return None
        return None


def _record_lines(path: Path, fmt: str) -> list[int]:
    """1-based line number of each data record (CSV: after the header; blank lines skipped)."""
    out: list[int] = []
    with path.open(newline="", encoding="utf-8-sig") as f:
        if fmt == "csv":
            reader = csv.reader(f)
            header_seen, prev = False, 0
            for row in reader:
                start, prev = prev + 1, reader.line_num
                if not row:
                    continue
                if header_seen:
                    out.append(start)
                header_seen = True
        else:
            out = [n for n, line in enumerate(f, start=1) if line.strip()]
    return out


def _read_csv(path: Path) -> RawTable:
    import io

    data = path.read_bytes()  # (once: pandas and the field-count check read the same bytes)
    try:
        df = pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False,
                         skip_blank_lines=True, encoding="utf-8-sig")
    except pd.errors.ParserError:
        _raise_csv_shape(path)
        raise
    except pd.errors.EmptyDataError as e:
        raise TraceError(f"{path}: empty file (no header line)") from e
    _check_header(path)
    _check_field_counts(path, len(df.columns), data)
    cols = {str(c): df[c] for c in df.columns}
    return RawTable(path, "csv", cols)


def _check_field_counts(path: Path, fields: int, data: bytes) -> None:
    """`TraceError` naming the first line with fewer fields than the header: pandas raises
    for more but pads a short line with empty strings, so a row missing its trailing `model`
    would have run on the default model. Lines of only whitespace are blank (pandas skips them
    too). Without quotes or bare-CR line ends in the file, counted with numpy (separators
    between newlines); else located by the `csv` module."""
    import numpy as np

    if b'"' in data or (b"\r" in data and b"\n" not in data):
        with path.open(newline="", encoding="utf-8-sig") as f:
            if any(len(row) != fields and _filled(row) for row in csv.reader(f)):
                _raise_csv_shape(path)
        return
    a = np.frombuffer(data, np.uint8)
    ends = np.append(np.flatnonzero(a == 10), a.size)  # one past each line's last byte
    starts = np.concatenate(([0], ends[:-1] + 1))
    length = ends - starts - (a[np.maximum(ends - 1, 0)] == 13) * (ends > starts)
    commas = np.flatnonzero(a == 44)
    count = np.searchsorted(commas, ends) - np.searchsorted(commas, starts)
    for i in np.flatnonzero((length > 0) & (count != fields - 1)):
        if data[starts[i]:ends[i]].strip():  # (not a line of spaces or tabs)
            _raise_csv_shape(path)


def _filled(row: list[str]) -> bool:
    """A CSV record with something in it (pandas skips lines of only whitespace)."""
    return any(field.strip() for field in row)


def _check_header(path: Path) -> None:
    """`TraceError` for a CSV header that names a column twice (pandas would rename the second
    `name.1` and the first would be used silently)."""
    with path.open(newline="", encoding="utf-8-sig") as f:
        header = next((r for r in csv.reader(f) if r), [])
    seen: set[str] = set()
    for name in header:
        if name in seen:
            raise TraceError(f"{path}: line 1: column {name} appears more than once in the "
                             f"header ({', '.join(header)}); each column name must be unique")
        seen.add(name)


def _raise_csv_shape(path: Path) -> None:
    """Locate the first CSV line whose field count differs from the header's and raise."""
    with path.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        header = None
        for row in reader:
            if not row or not _filled(row):
                continue
            if header is None:
                header = row
            elif len(row) != len(header):
                raise TraceError(
                    f"{path}: line {reader.line_num}: expected {len(header)} fields "
                    f"({', '.join(header)}), found {len(row)}"
                )
    raise TraceError(f"{path}: malformed CSV (could not locate the bad line)")


def _read_jsonl(path: Path) -> RawTable:
    import pyarrow.json as pj

    try:
        table = pj.read_json(path)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return _read_jsonl_slow(path)
    if any((pa.types.is_list(f.type) or pa.types.is_large_list(f.type))
           and pa.types.is_floating(f.type.value_type) for f in table.schema):
        # one float (or an integer past int64) in a list makes Arrow read every list of the
        # column as floats: [1] became [1.0] and the wrong line was named; keep raw values
        return _read_jsonl_slow(path)
    cols = {name: _arrow_series(table.column(name)) for name in table.column_names}
    return RawTable(path, "jsonl", cols)


def _read_jsonl_slow(path: Path) -> RawTable:
    """Line-by-line JSONL reader: raises on the first bad line, else keeps raw Python values."""
    pairs = list(_iter_records(path))
    records = [rec for _, rec in pairs]
    lines = [n for n, _ in pairs]
    names = list(dict.fromkeys(k for r in records for k in r))
    cols = {k: pd.Series([r.get(k) for r in records], dtype=object) for k in names}
    return RawTable(path, "jsonl", cols, _lines=lines)


def _iter_records(path: Path):
    """(1-based line number, JSON object) of each non-blank line; `TraceError` on a bad line."""
    with path.open(encoding="utf-8") as f:
        for n, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                raise TraceError(f"{path}: line {n}: invalid JSON: {e.msg}") from None
            if not isinstance(rec, dict):
                raise TraceError(f"{path}: line {n}: expected a JSON object, got {line.strip()!r}")
            yield n, rec


def read_records(path: Path) -> list[tuple[int, dict]]:
    """(1-based line number, JSON object) of each non-blank line of a JSONL file.

    Raises `TraceError` naming the file and line for a missing file, invalid JSON, a line that is
    not a JSON object, or a file without any record.
    """
    path = require_file(path)
    try:
        out = list(_iter_records(path))
    except UnicodeDecodeError as e:
        raise not_text(path, e) from None
    if not out:
        raise TraceError(f"{path}: the trace holds no records")
    return out


def _read_parquet(path: Path) -> RawTable:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as e:
        raise TraceError(f"{path}: not a readable Parquet file: {e}") from None
    cols = {name: _arrow_series(table.column(name)) for name in table.column_names}
    return RawTable(path, "parquet", cols)


def _arrow_series(col: pa.ChunkedArray) -> pd.Series:
    """Arrow column -> pandas Series; lists become Python lists, text becomes object/None,
    JSON objects (structs) and Parquet maps become dicts (a struct's absent keys left out)."""
    t = col.type
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return pd.Series(col.to_pylist(), dtype=object)
    if pa.types.is_struct(t):
        return pd.Series([None if v is None else {k: x for k, x in v.items() if x is not None}
                          for v in col.to_pylist()], dtype=object)
    if pa.types.is_map(t):
        return pd.Series([None if v is None else dict(v) for v in col.to_pylist()],
                         dtype=object)
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_null(t):
        return pd.Series(col.to_numpy(zero_copy_only=False), dtype=object)
    return col.to_pandas()


def read_table(path: Path, fmt: str | None = None) -> RawTable:
    """Read `path` (format from its suffix unless `fmt` is given) into a `RawTable`.

    Raises `TraceError` if the file is missing, empty, not valid JSON on some line, or a CSV line
    has the wrong number of fields (naming the line).
    """
    path = require_file(path)
    fmt = fmt or detect_format(path)
    readers = {"csv": _read_csv, "jsonl": _read_jsonl, "parquet": _read_parquet}
    if fmt not in readers:
        raise TraceError(f"{path}: unknown format {fmt!r}; valid choices: {', '.join(FORMATS)}")
    try:
        raw = readers[fmt](path)
    except UnicodeDecodeError as e:
        raise not_text(path, e) from None
    if not raw.columns or len(raw) == 0:
        raise TraceError(f"{path}: the trace holds no records")
    return raw
