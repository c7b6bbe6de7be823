"""The cross-process cache of a kernel latency model's curves (`wrpsim.pool.kernels.precomputed`):
a model read from the cache equals one computed from the tables, and a cache file is read only
for the exact inputs it was computed from (a changed table, a different key, a disabled
cache: computed again)."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest

from wrpsim.pool.catalog import catalog_path, get_gpu, get_model
from wrpsim.pool.engines import get_engine
from wrpsim.pool.kernels import precomputed
from wrpsim.pool.kernels.borrowed import Transferred
from wrpsim.pool.kernels.model import KernelLatency
from wrpsim.pool.kernels.tables import Kernels

TABLES = catalog_path() / "engines" / "vllm-0.24" / "h100-80gb"


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.delenv("WRPSIM_CACHE", raising=False)
    monkeypatch.setenv("WRPSIM_MODEL_CACHE", str(tmp_path / "latency"))
    return tmp_path / "latency"


def _model(kernels, tp: int = 4, **kw) -> KernelLatency:
    consts = get_engine("vllm-0.24").constants
    return KernelLatency(get_model("llama3.1-70b"), get_gpu("h100-80gb"), tp, kernels, consts,
                         max_tokens=4096, **kw)


def _state(lat: KernelLatency) -> list:
    return [lat._stream, lat._lin, lat._head, lat._pre.b, lat._pre.s, lat._pre.t, lat._dec.b,
            lat._dec.s, lat._dec.t]


def _same(a: KernelLatency, b: KernelLatency) -> None:
    for x, y in zip(_state(a), _state(b)):
        np.testing.assert_array_equal(x, y)
    for args in ((512, 1e5, 32, 32 * 2000.0), (0, 0.0, 200, 200 * 9000.0), (16000, 4e7, 0, 0)):
        assert a.iteration_s(*args) == b.iteration_s(*args)
    assert a.decode_run_cum_s(48, 1500, 64).tolist() == b.decode_run_cum_s(48, 1500, 64).tolist()


def test_a_cached_model_equals_a_computed_one(cache, monkeypatch):
    monkeypatch.setenv("WRPSIM_MODEL_CACHE", "off")
    computed = _model(Kernels(TABLES, get_gpu("h100-80gb")))
    monkeypatch.setenv("WRPSIM_MODEL_CACHE", str(cache))
    stored = _model(Kernels(TABLES, get_gpu("h100-80gb")))
    assert len(list(cache.glob("*.npz"))) == 1
    fresh = Kernels(TABLES, get_gpu("h100-80gb"))
    loaded = _model(fresh)
    assert fresh._cache == {}  # no table was read: the curves came from the cache
    _same(loaded, computed)
    _same(stored, computed)


def test_every_input_is_part_of_the_key(cache):
    k = Kernels(TABLES, get_gpu("h100-80gb"))
    base = precomputed.model_key(_model(k))
    others = [_model(k, tp=8), _model(k, precision="fp8"), _model(k, kv_dtype="fp8"),
              _model(k, scaleup=2),
              _model(Transferred(k, get_gpu("a100-80gb")))]
    keys = {precomputed.model_key(m) for m in others}
    assert base not in keys and len(keys) == len(others)


def test_a_changed_table_file_is_never_read_from_the_cache(cache, tmp_path):
    tables = tmp_path / "tables"
    shutil.copytree(TABLES, tables)
    first = _model(Kernels(tables, get_gpu("h100-80gb")))
    key = precomputed.model_key(first)
    assert precomputed.load(key) is not None
    gemm = tables / "gemm.parquet"
    st = gemm.stat()
    os.utime(gemm, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    lat = _model(Kernels(tables, get_gpu("h100-80gb")))
    assert precomputed.model_key(lat) != key
    assert len(list(cache.glob("*.npz"))) == 2


def test_a_file_holding_another_key_is_ignored(cache):
    lat = _model(Kernels(TABLES, get_gpu("h100-80gb")))
    key = precomputed.model_key(lat)
    path = next(cache.glob("*.npz"))
    arrays = precomputed.load(key)
    with open(path, "wb") as f:  # same file name, another key inside (a hash collision)
        np.savez(f, key=np.array(key + " "), **arrays)
    assert precomputed.load(key) is None
    path.write_bytes(b"not an npz")
    assert precomputed.load(key) is None
    _same(_model(Kernels(TABLES, get_gpu("h100-80gb"))), lat)  # computed again, stored again
    assert precomputed.load(key) is not None


@pytest.mark.parametrize("var", ["WRPSIM_MODEL_CACHE", "WRPSIM_CACHE"])
def test_the_cache_can_be_switched_off(cache, monkeypatch, var):
    monkeypatch.setenv(var, "off")
    assert precomputed.cache_dir() is None
    _model(Kernels(TABLES, get_gpu("h100-80gb")))
    assert not cache.exists()


def test_partial_sources_and_data_parallel_attention_are_cached_under_their_own_keys(cache):
    """A GPU with its own GEMM / attention tables and a reference for the rest (`Partial`) is
    cached like the others; `attn_dp` is part of the key and its cached model equals the
    computed one."""
    from wrpsim.pool.engines import kernels_for

    part = kernels_for(get_engine("vllm-0.24"), "rtxpro6000-96gb")
    consts = get_engine("vllm-0.24").constants

    def moe(kernels, **kw):
        return KernelLatency(get_model("qwen3-30b-a3b"), get_gpu("rtxpro6000-96gb"), 2, kernels,
                             consts, ep=2, max_tokens=4096, **kw)

    keys = {precomputed.model_key(moe(part)), precomputed.model_key(moe(part, attn_dp=2))}
    assert None not in keys and len(keys) == 2
    first = moe(part, attn_dp=2)
    again = moe(kernels_for(get_engine("vllm-0.24"), "rtxpro6000-96gb"), attn_dp=2)
    _same(again, first)


def test_a_damaged_cache_file_is_ignored(cache):
    """A corrupt or truncated `.npz` (zip) is not read: the curves are computed again."""
    k = Kernels(TABLES, get_gpu("h100-80gb"))
    first = _model(k)
    (path,) = cache.glob("*.npz")
    path.write_bytes(path.read_bytes()[:200])  # truncated: not a zip file any more
    _same(_model(Kernels(TABLES, get_gpu("h100-80gb"))), first)


def test_curves_computed_on_another_cpu_are_not_read(cache, monkeypatch):
    """numpy's SIMD paths round some interpolations differently per CPU (module docstring):
    the CPU features are part of the key, so a file written where they differ (another node
    sharing the folder, an emulator) is not read here."""
    assert precomputed.cpu_features()  # numpy says which features it dispatches on
    k = Kernels(TABLES, get_gpu("h100-80gb"))
    here = precomputed.model_key(_model(k))
    monkeypatch.setattr(precomputed, "cpu_features", lambda: ["SSE2"])
    there = precomputed.model_key(_model(k))
    assert there != here and precomputed.load(there) is not None
    assert len(list(cache.glob("*.npz"))) == 2


def test_the_cache_keeps_its_most_recently_used_files(cache, monkeypatch):
    """After a write, only the `KEEP` most recently used files stay; a read counts as a use."""
    monkeypatch.setattr(precomputed, "KEEP", 2)
    k = Kernels(TABLES, get_gpu("h100-80gb"))
    first = precomputed.model_key(_model(k, tp=1))
    files = {first: precomputed._file(first)}
    for tp in (2, 4):
        key = precomputed.model_key(_model(k, tp=tp))
        files[key] = precomputed._file(key)
    assert len(list(cache.glob("*.npz"))) == 2 and not files[first].exists()  # the oldest went
    second, third = list(files)[1:]
    old = files[third].stat().st_mtime_ns - 10**9  # make the tp=4 file the oldest, then use it
    os.utime(files[third], ns=(old, old))
    os.utime(files[second], ns=(old + 1, old + 1))
    assert precomputed.load(third) is not None  # a read: now the most recent
    _model(k, tp=8)
    assert files[third].exists() and not files[second].exists()
    assert len(list(cache.glob("*.npz"))) == 2


def test_prune_skips_what_it_cannot_list_or_remove(tmp_path):
    from wrpsim.io import prune

    assert prune(tmp_path / "missing", "*.npz", 1) == 0
    for i in range(4):
        p = tmp_path / f"{i}.npz"
        p.write_bytes(b"x")
        os.utime(p, ns=(10**18 + i, 10**18 + i))
    (tmp_path / "keep.json").write_text("{}")  # not the pattern: never removed
    (tmp_path / "sub.npz").mkdir()  # a folder: never removed
    assert prune(tmp_path, "*.npz", 2) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["2.npz", "3.npz", "keep.json",
                                                          "sub.npz"]
