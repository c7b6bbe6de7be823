"""Cross-process cache of a `KernelLatency`'s precomputed kernel curves (start-up of short runs).

Building a kernel latency model reads the GPU's kernel tables (Parquet; pyarrow's conversion to
numpy imports pandas) and interpolates them into per-token curves and two attention grids
(`compute`): 0.15-0.5 s of a 10-request run, the same in every run of a sweep.
The result is stored as one `.npz` file per key and read back by later processes.

The key is everything the curves are computed from: the kernel source (a GPU's own tables, a
reference GPU's moved over by the roofline ratio, or both for a `Partial` source; the tables
directory with the name, size and modification time in ns of every file in it; the GPU specs;
the label; the MoE table read), the model spec, tp, ep, attn_dp, the all-reduce group,
precision, KV dtype, `max_tokens`, the engine constants, the code (SHA-256 of the sources of
`wrpsim/pool/kernels/` and of the model and GPU spec modules, the config.json reader
included), the numpy version and the CPU
features numpy runs on (`cpu_features`). The file name is a hash of the
key and the file holds the whole key, compared on reading: a stale or colliding file is never
read (a new one is written). A kernel source of another type is not cached (no key). Files are
written atomically (temporary file, then `os.replace`); a file that cannot be read or written
is ignored (the curves are computed).

Why the CPU features: numpy picks its SIMD kernels by the CPU's instruction sets, and some of
the interpolations round differently on different paths. Computed under valgrind (which hides
AVX-512), 97 of the 4,098 per-token values of Llama-3.1-70B on 4 x H100 differ from the same
computation on the same machine in the last bit, enough to move a few requests' `gpu_s` and
energy in the last digit; so a file written on another CPU (a home folder shared by a
cluster's nodes) or under an emulator is not read here.

Bounded: the folder keeps the `KEEP` most recently used files (`wrpsim.io.prune` after each
write; a read marks its file as used). Every checkout, catalog edit and code version makes new
keys, so without a bound the folder only grows (it had reached 47,000 files, 12 GB, on a
developer's machine).

Location: `$WRPSIM_MODEL_CACHE`, default `~/.cache/wrpsim/latency`; `off` (or 0 / false / no /
none) there or in `WRPSIM_CACHE` (the trace cache's switch) disables it.
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from functools import cache
from pathlib import Path

import numpy as np

from wrpsim.pool.kernels import attention, operators

#: arrays a cache file holds besides the key (`compute`'s result)
FIELDS = ("stream", "lin", "head", "pre_b", "pre_s", "pre_t", "dec_b", "dec_s", "dec_t",
          "pre_f", "dec_f", "dsa_c", "dsa_k", "gdn_b", "gdn_s", "gdn_t", "mla_tables", "lin_bound",
          "head_bound", "moe_shape_ok")
_OFF = ("off", "0", "false", "no", "none")
_FORMAT = 4
#: cache files kept (the least recently used beyond this are removed after a write)
KEEP = 512


def cache_dir() -> Path | None:
    """The cache directory, or None when disabled (module docstring)."""
    for var in ("WRPSIM_CACHE", "WRPSIM_MODEL_CACHE"):
        env = os.environ.get(var)
        if env is not None and env.strip().lower() in _OFF:
            return None
    env = os.environ.get("WRPSIM_MODEL_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "wrpsim" / "latency"


@cache
def code_version() -> str:
    """SHA-256 of the sources the precomputation runs (kernels package, model and GPU specs)."""
    pool = Path(__file__).resolve().parents[1]
    files = [*sorted(pool.joinpath("kernels").glob("*.py")), pool / "modelspec.py",
             pool / "hfconfig.py", pool / "catalog.py"]
    h = hashlib.sha256()
    for f in files:
        h.update(f.name.encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()


@cache
def cpu_features() -> list[str]:
    """The CPU features numpy's SIMD dispatch found enabled here (sorted names; empty if this
    numpy does not say)."""
    try:
        from numpy._core._multiarray_umath import __cpu_features__ as features
    except ImportError:  # numpy 1.x
        try:
            from numpy.core._multiarray_umath import __cpu_features__ as features
        except ImportError:
            return []
    return sorted(name for name, on in features.items() if on)


def _tables(directory: Path) -> dict:
    d = Path(directory).resolve()
    files = []
    for p in sorted(d.iterdir()):
        st = p.stat()
        files.append([p.name, st.st_size, st.st_mtime_ns])
    return {"dir": str(d), "files": files}


def source_key(kernels) -> dict | None:
    """The key part of a kernel source: its own tables, or a reference's moved over; None for
    a source of another type (not cached)."""
    from wrpsim.pool.kernels.borrowed import Partial, Transferred
    from wrpsim.pool.kernels.tables import Kernels

    if type(kernels) is Partial:
        own, ref = source_key(kernels.own), source_key(kernels.ref)
        if own is None or ref is None:
            return None
        return {"kind": "partial", "own": own, "ref": ref, "label": kernels.label}
    if type(kernels) is Kernels:
        return {"kind": "tables", **_tables(kernels.dir), "gpu": repr(kernels.gpu),
                "label": kernels.label, "moe_table": kernels.moe_table}
    if type(kernels) is Transferred:
        ref = source_key(kernels.ref)
        if ref is None:
            return None
        return {"kind": "transferred", "ref": ref, "gpu": repr(kernels.gpu),
                "label": kernels.label}
    return None


def model_key(lat) -> str | None:
    """The whole key of latency model `lat` (canonical JSON), or None when not cacheable."""
    try:
        src = source_key(lat.kernels)
    except OSError:
        return None
    if src is None:
        return None
    key = {"format": _FORMAT, "source": src, "model": repr(lat.model), "gpu": repr(lat.gpu),
           "tp": lat.tp, "ep": lat.ep, "attn_dp": lat.adp, "coll_tp": lat.coll_tp,
           "precision": lat.precision,
           "kv_dtype": lat.kv_dtype, "max_tokens": lat.max_tokens, "constants": repr(lat.c),
           "code": code_version(), "numpy": np.__version__, "cpu": cpu_features()}
    return json.dumps(key, sort_keys=True)


def _file(key: str) -> Path | None:
    d = cache_dir()
    if d is None:
        return None
    return d / f"{hashlib.sha256(key.encode()).hexdigest()[:32]}.npz"


def load(key: str | None) -> dict | None:
    """The stored arrays (`FIELDS`) for `key`, or None (no key, no file, unreadable, or a file
    of another key)."""
    path = _file(key) if key is not None else None
    if path is None:
        return None
    from wrpsim.io import touch

    try:
        with np.load(path, allow_pickle=False) as f:
            if str(f["key"][()]) != key:
                return None
            arrays = {name: f[name] for name in FIELDS}
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile):
        return None
    touch(path)  # used: `prune` keeps it
    return arrays


def store(key: str | None, arrays: dict) -> bool:
    """Store `arrays` (`FIELDS`) under `key` atomically, then keep the folder to `KEEP` files;
    False (nothing left) on I/O error."""
    path = _file(key) if key is not None else None
    if path is None:
        return False
    from wrpsim.io import atomic_path, prune

    try:
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.savez(f, key=np.array(key), **{name: arrays[name] for name in FIELDS})
    except OSError:
        return False
    prune(path.parent, "*.npz", KEEP)
    return True


def compute(lat) -> dict:
    """What the kernel tables give the latency model `lat` (a `KernelLatency`), as `FIELDS`:
    the streaming bandwidth, the per-token curves for T = 0..max_tokens
    (`operators.linear_curve`, `operators.head_curve`) and what the power-limit bound adds to
    them, the attention grids (`attention.attention_grids`; a DSA model's fitted constants,
    `attention.dsa_fit`, flagged), a Gated DeltaNet model's prefill table, and whether the
    MoE table measured the model's expert shape. Computed on a cache miss (it reads the
    tables), stored by `store`; sets on `lat` what the computation reads (the bandwidth,
    whether the measured MLA / DSA module times its attention, the GDN table), which
    `KernelLatency._adopt` then sets again from the result or a cached copy."""
    from wrpsim.pool.kernels.borrowed import short_loop

    lat._dsa_tables = attention.dsa_module_applies(lat)
    lat._mla_tables = lat._dsa_tables or attention.mla_module_applies(lat)
    lat._gdn = attention.gdn_table(lat)
    lat._stream = lat.kernels.stream_bw()  # (the curves read it)
    T = np.arange(lat.max_tokens + 1, dtype=np.float64)
    lin, head = operators.linear_curve(lat, T), operators.head_curve(lat, T)
    pre, dec = attention.attention_grids(lat)
    dsa_c, dsa_k = np.zeros(5), np.zeros(0)
    if lat._dsa_tables:
        dsa_c, dsa_k, dec = attention.dsa_fit(lat, pre, dec)
    gdn = lat._gdn
    pre_f, dec_f = (attention.full_grids(lat, pre, dec) if lat.model.split_attention
                    else (pre.t, dec.t))
    # the seconds the sustained-rate bound adds (`tables.sustained`): the power model takes
    # the GEMMs' compute utilisation over their unbounded time (`power_w`)
    free, bound = short_loop(lat.kernels), lat.kernels
    if free is bound:
        lin_b = head_b = np.zeros_like(T)
    else:
        lat.kernels = free
        try:
            lin_b = np.maximum(lin - operators.linear_curve(lat, T), 0.0)
            head_b = np.maximum(head - operators.head_curve(lat, T), 0.0)
        finally:
            lat.kernels = bound
    return {"stream": np.float64(lat._stream), "lin": lin, "head": head,
            "pre_b": pre.b, "pre_s": pre.s, "pre_t": pre.t,
            "dec_b": dec.b, "dec_s": dec.s, "dec_t": dec.t,
            "pre_f": pre_f, "dec_f": dec_f, "dsa_c": dsa_c, "dsa_k": dsa_k,
            "gdn_b": gdn.b if gdn else np.zeros(0), "gdn_s": gdn.s if gdn else np.zeros(0),
            "gdn_t": gdn.t if gdn else np.zeros((0, 0)),
            "mla_tables": np.bool_(lat._mla_tables), "lin_bound": lin_b,
            "moe_shape_ok": np.bool_(operators.moe_shape_measured(lat)),
            "head_bound": head_b}
