"""Parquet files written and read through pyarrow's Parquet core, without `pyarrow.parquet`.

`import pyarrow.parquet` also imports `pyarrow.fs` (its filesystem layer, which loads OpenSSL
through `ssl`): ~7-8 ms of every run's start-up, for a run that only writes its result files to
a local path and reads its trace cache. `pyarrow.parquet.write_table` and `ParquetFile` hand the
work to the classes of `pyarrow._parquet` (the compiled module `pyarrow.parquet` wraps); these
two functions call them directly:

- `write_table(table, path, compression)`: the same file, byte for byte, as
  `pyarrow.parquet.write_table(table, path, compression=compression, write_statistics=True)`:
  the writer gets exactly the options that call passes it with its defaults (`_WRITE_OPTIONS`,
  those of pyarrow 26; `tests/test_parquetio.py` compares the bytes);
- `read_table(path)`: the table `pyarrow.parquet.ParquetFile(path).read()` gives.

Under any other pyarrow major version (whose defaults may differ), or if the compiled module
does not take these arguments, both go through `pyarrow.parquet` as before: same result, only
the import is not saved.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

#: the pyarrow major version whose `pyarrow.parquet.write_table` defaults `_WRITE_OPTIONS` holds
_MAJOR = 26

#: what `pyarrow.parquet.write_table` (26.x) passes to `pyarrow._parquet.ParquetWriter` for a
#: call with its defaults but `compression` (and `write_statistics=True`, the default)
_WRITE_OPTIONS = dict(
    version="2.6", use_dictionary=True, write_statistics=True,
    use_deprecated_int96_timestamps=False, compression_level=None, use_byte_stream_split=False,
    column_encoding=None, writer_engine_version="V2", data_page_version="1.0",
    use_compliant_nested_type=True, encryption_properties=None, write_batch_size=None,
    dictionary_pagesize_limit=None, store_schema=True, write_page_index=False,
    write_page_checksum=False, sorting_columns=None, store_decimal_as_integer=False,
    write_time_adjusted_to_utc=False, max_rows_per_page=None, bloom_filter_options=None,
    use_content_defined_chunking=False, coerce_timestamps=None, data_page_size=None,
    allow_truncated_timestamps=False,
)


def _core():
    """`pyarrow._parquet` when this pyarrow is the one `_WRITE_OPTIONS` describes, else None."""
    try:
        major = int(pa.__version__.split(".", 1)[0])
    except ValueError:
        return None
    if major != _MAJOR:
        return None
    try:
        from pyarrow import _parquet
    except ImportError:
        return None
    return _parquet


def write_table(table: pa.Table, path: Path | str, compression: str) -> None:
    """`pyarrow.parquet.write_table(table, path, compression=compression)` (module docstring);
    `path` is a local file, created or replaced."""
    core = _core()
    if core is not None:
        try:
            writer = core.ParquetWriter(str(path), table.schema, compression=compression,
                                        **_WRITE_OPTIONS)
        except TypeError:  # (arguments this build does not take)
            pass
        else:
            try:
                writer.write_table(table, row_group_size=None)
            finally:
                writer.close()
            return
    import pyarrow.parquet as pq

    pq.write_table(table, path, compression=compression, write_statistics=True)


def read_table(path: Path | str) -> pa.Table:
    """`pyarrow.parquet.ParquetFile(path).read()` (module docstring); OSError / ArrowException as
    that call raises them."""
    core = _core()
    if core is not None:
        reader = core.ParquetReader()
        try:
            # (`ParquetFile`'s defaults where `open`'s differ)
            reader.open(str(path), arrow_extensions_enabled=True)
            return reader.read_all(use_threads=True)
        finally:
            reader.close()
    import pyarrow.parquet as pq

    with pq.ParquetFile(path) as f:
        return f.read()
