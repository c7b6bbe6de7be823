"""`wrpsim.parquetio` writes the bytes `pyarrow.parquet.write_table` writes and reads what
`ParquetFile.read` reads, and a run that hits its caches never imports `pyarrow.parquet`."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from wrpsim import parquetio
from wrpsim.metrics.records import INSTANCE_SCHEMA, REQUEST_SCHEMA, write_parquet
from wrpsim.metrics.tasks import TASK_SCHEMA

ROOT = Path(__file__).resolve().parents[1]


def _tables():
    n = 3000
    req = {f.name: [] for f in REQUEST_SCHEMA}
    for i in range(n):
        for f in REQUEST_SCHEMA:
            t = f.type
            if t == pa.string():
                v = None if i % 7 == 0 else ("ünï" if i % 5 == 0 else f"s{i % 13}")
            elif t == pa.float64():
                v = math.nan if i % 11 == 0 else (None if i % 17 == 0 else i * 0.37)
            else:
                v = None if i % 19 == 0 else i % 1000
            req[f.name].append(v)
    tables = [pa.table(req, schema=REQUEST_SCHEMA), pa.table(
        {f.name: pa.nulls(4, f.type) for f in INSTANCE_SCHEMA}, schema=INSTANCE_SCHEMA),
        pa.table({f.name: pa.array([], f.type) for f in TASK_SCHEMA}, schema=TASK_SCHEMA),
        pa.table({"task_id": [f"request:{i}" for i in range(20_000)]})]
    return tables


def _same(a: pa.Table, b: pa.Table) -> bool:
    """Equal schemas (metadata included) and values (NaN equal to NaN)."""
    return (a.schema.equals(b.schema, check_metadata=True)
            and repr(a.to_pydict()) == repr(b.to_pydict()))


@pytest.mark.parametrize("compression", ["zstd", "snappy"])
def test_written_bytes_are_pyarrow_parquets(tmp_path, compression):
    for k, t in enumerate(_tables()):
        pq.write_table(t, tmp_path / f"ref{k}", compression=compression, write_statistics=True)
        parquetio.write_table(t, tmp_path / f"ours{k}", compression=compression)
        assert (tmp_path / f"ours{k}").read_bytes() == (tmp_path / f"ref{k}").read_bytes()
        assert _same(parquetio.read_table(tmp_path / f"ref{k}"),
                     pq.ParquetFile(tmp_path / f"ref{k}").read())


def test_the_fast_path_is_taken_under_this_pyarrow():
    # (if this fails after a pyarrow upgrade: check `_WRITE_OPTIONS` against the new
    # `pyarrow.parquet.write_table` and raise `_MAJOR`; the bytes test above must pass)
    assert parquetio._core() is not None


def test_other_pyarrow_versions_go_through_pyarrow_parquet(tmp_path, monkeypatch):
    monkeypatch.setattr(parquetio, "_MAJOR", -1)
    t = _tables()[0]
    write_parquet(t, tmp_path / "a.parquet")
    pq.write_table(t, tmp_path / "b.parquet", compression="zstd")
    assert (tmp_path / "a.parquet").read_bytes() == (tmp_path / "b.parquet").read_bytes()
    assert _same(parquetio.read_table(tmp_path / "a.parquet"), t)


def test_reading_a_missing_or_broken_file_raises_as_pyarrow_does(tmp_path):
    with pytest.raises(OSError):
        parquetio.read_table(tmp_path / "absent.parquet")
    (tmp_path / "bad.parquet").write_bytes(b"not parquet at all")
    with pytest.raises((OSError, pa.ArrowException)):
        parquetio.read_table(tmp_path / "bad.parquet")


RUN = """
import json, sys
sys.argv = ["wrpsim", *sys.argv[1:]]
from wrpsim.__main__ import main
main()
print(json.dumps(sorted(sys.modules)))
"""


def test_a_run_on_warm_caches_does_not_import_pyarrow_parquet(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "WRPSIM_CACHE": str(tmp_path / "traces"),
           "WRPSIM_MODEL_CACHE": str(tmp_path / "latency")}
    for _ in range(2):  # (the first fills the caches: parsing the trace imports pyarrow.parquet)
        out = subprocess.run([sys.executable, "-c", RUN, "workload.max_requests=10",
                              f"hydra.run.dir={tmp_path / 'run'}"], capture_output=True,
                             text=True, env=env, cwd=ROOT, timeout=300, check=True)
    modules = set(json.loads(out.stdout.strip().splitlines()[-1]))
    assert "pyarrow._parquet" in modules
    assert not {"pyarrow.parquet", "pyarrow.fs"} & modules
    assert pq.read_table(tmp_path / "run" / "requests.parquet").num_rows == 10
