"""One GPU's measured kernel tables and the shape queries the latency model asks of them.

The tables are those `wrpsim.calibrate.aic.compact` writes (see there for their columns). A query
names an operator's shape and returns a `Curve` (time as a function of one size: tokens,
elements) or a `Grid` (time over batch x length), in seconds, ready for the per-instance
precomputation of `wrpsim.pool.kernels.model`:

- inside the measured range, times are interpolated: GEMMs bilinearly in (log n, log k) of
  log t at every measured m, then linearly in m; attention linearly on its (batch, length) grid;
- outside it (a larger m, n or batch, a head layout, MoE shape or precision the table lacks),
  the nearest measured time is carried over by the ratio of roofline times
  (`wrpsim.pool.kernels.roofline`): the measured efficiency is kept, the work is the real one;
- GEMMs and MoE layers are never faster than the GPU sustains at its power limit, where that
  rate is measured (`roofline.sustained_flops`; the tables' short loops run below the limit);
- nor faster than their roofline at the GPU's peak HBM bandwidth (a GEMM its weights,
  activations and output; a MoE layer the experts its tokens must touch: `moe_stream_floor`):
  a short loop over a small weight matrix re-reads it from L2 (L40S and RTX PRO 6000: up to
  2.9 x their HBM bandwidth at a few tokens), a serving step streams every layer from HBM;
- a time is never shorter at more tokens: a curve carried over by a ratio of rooflines is kept
  non-decreasing (the ratio can fall where one shape's experts are all touched and the other's
  are not).

`Kernels` answers from a GPU's own tables; for a GPU without (all of) them,
`wrpsim.pool.kernels.borrowed` answers from a reference GPU's, scaled by the roofline ratio of
the two GPUs (`Transferred`, "uncalibrated: roofline"; `Partial`: own tables where it has them).
"""

from __future__ import annotations

import json
from bisect import bisect_right
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from wrpsim.errors import ConfigError
from wrpsim.pool.kernels import roofline as rl
from wrpsim.pool.kernels.monotone import monotone_curve, monotone_grid

MS = 1e-3
#: MoE curves reach this many tokens (measured, or past the last measurement by the roofline)
MOE_MAX_TOKENS = 16384
#: the MoE table's columns that name a layer's layout (besides its precision)
MOE_LAYOUT = ("hidden", "inter", "topk", "experts", "moe_tp", "moe_ep")
#: MoE precisions that quantise activations too (W8A8: GEMMs on FP8 tensor cores), whose
#: measured points slower than BF16 are replaced (`Kernels._moe_not_slower_than_bf16`)
W8A8_MOE = ("fp8", "fp8_block")
#: of those, the ones whose slow points at prefill sizes are kept: past the last token count
#: where the kernel measured faster than BF16. Block-FP8 weights run only block-scaled
#: kernels, and at prefill sizes the one measured is what vLLM runs (on Blackwell FlashInfer's
#: TensorRT-LLM kernel, up to 2 x BF16 there, as MiniMax-M2.5's FP8 runs on B200 / B300
#: measure; docs/validation.md, "Block-FP8 experts keep their measured time")
MOE_SLOW_TAIL_KEPT = ("fp8_block",)
#: MoE dtypes to time a precision from, in order, when a GPU's table lacks it (then moved over
#: by the roofline ratio): the closest kernel family first, BF16 last. A GPU whose engine has
#: no default MXFP4 kernel (Ada, Ampere) runs MXFP4 experts with Marlin.
MOE_FALLBACK = {"fp8": ["fp8", "fp8_block"], "fp8_block": ["fp8_block", "fp8"],
                # FP4 on a GPU whose tables lack it: without FP4 tensor cores the weight-only
                # W4A16 experts vLLM runs there (Marlin; `roofline.math_on`); with them, the
                # W8A8 experts (`moe_source`)
                "fp4": ["fp4", "mxfp4_marlin", "int4"],
                "fp4/tensor": ["fp4", "fp8_block", "fp8"],
                "mxfp4": ["mxfp4", "mxfp4_marlin"],
                "mxfp4_marlin": ["mxfp4_marlin", "int4", "mxfp4"],
                "mxfp4_mxfp8": ["mxfp4_mxfp8", "fp8", "fp8_block"],
                "int4": ["int4", "mxfp4_marlin"]}


def gemm_source(dtype: str, has_fp8: bool, gpu) -> str:
    """The measured GEMM precision a table without `dtype` rows times `dtype` from: its FP8
    rows for a precision that computes on tensor cores of FP8 or below on `gpu` (FP8, and FP4
    where the GPU has FP4 tensor cores; when the table has FP8 rows), else BF16 — FP8 on a GPU
    without FP8 tensor cores and FP4 on one without FP4 tensor cores run weight-only at the
    BF16 rate (`roofline.math_on`): the BF16 kernels at the precision's bytes."""
    return "fp8" if rl.math_on(gpu, dtype) in ("fp8", "fp4") and has_fp8 else "bf16"


def moe_source(dtype: str, measured, gpu) -> str:
    """The MoE precision a table that measured the precisions `measured` times `dtype` from:
    the first of `MOE_FALLBACK[dtype]` it has (`dtype` itself first; for FP4 on a `gpu` with
    FP4 tensor cores `MOE_FALLBACK["fp4/tensor"]`), else BF16."""
    key = "fp4/tensor" if dtype == "fp4" and rl.has_math(gpu, "fp4") else dtype
    return next((d for d in MOE_FALLBACK.get(key, [dtype]) if d in measured), "bf16")


@dataclass(frozen=True)
class Curve:
    """Seconds `y` at increasing sizes `x`; linear in between, the first value below the first
    size, proportional to the size beyond the last (work grows linearly)."""

    x: np.ndarray
    y: np.ndarray

    def __call__(self, v):
        """Time(s) at size(s) `v` (scalar or array)."""
        v = np.asarray(v, dtype=np.float64)
        out = np.interp(v, self.x, self.y)
        big = v > self.x[-1]
        if np.any(big):
            out = np.where(big, self.y[-1] * v / self.x[-1], out)
        return out

    def scaled(self, factor) -> Curve:
        """The curve with its times multiplied by `factor` (scalar or per-point array)."""
        return Curve(self.x, self.y * factor)


@dataclass(frozen=True)
class Grid:
    """Seconds `t[i, j]` at batch `b[i]` and length `s[j]` (both increasing), every cell filled;
    linear in both between grid points, clamped below, proportional to the batch beyond the
    last batch (`row`), and extrapolated in length by the caller. `measured`: which cells
    were measured rather than filled (None: not recorded)."""

    b: np.ndarray
    s: np.ndarray
    t: np.ndarray
    measured: np.ndarray | None = None

    def row(self, batch: float) -> np.ndarray:
        """Times over `s` at `batch` (interpolated between batch rows)."""
        b = self.b
        if batch >= b[-1]:
            return self.t[-1] * (batch / b[-1])
        if batch <= b[0]:
            return self.t[0]
        i = bisect_right(b.tolist(), batch) - 1
        w = (batch - b[i]) / (b[i + 1] - b[i])
        return self.t[i] * (1.0 - w) + self.t[i + 1] * w

    def scaled(self, factor) -> Grid:
        return Grid(self.b, self.s, self.t * factor, self.measured)


class Cols(dict):
    """A table as {column: numpy array}, read straight from Parquet (no pandas: building an
    instance's latency model must stay cheap)."""

    @property
    def rows(self) -> int:
        return len(next(iter(self.values()))) if self else 0

    def where(self, mask: np.ndarray) -> Cols:
        return Cols({k: v[mask] for k, v in self.items()})


def read_cols(path: Path) -> Cols:
    """A Parquet table as `Cols` (numpy arrays by column name)."""
    import pyarrow.parquet as pq

    with pq.ParquetFile(path) as f:  # not pq.read_table: that imports pyarrow.dataset (start-up)
        t = f.read()
    return Cols({c: t.column(c).to_numpy() for c in t.column_names})


#: KV bytes of a decode-attention cell large enough to stream from DRAM: twice the largest L2
#: cache of a catalog GPU (128 MB, RTX PRO 6000; B200 126 MB, L40S 96 MB, H100 50 MB)
STREAM_MIN_BYTES = 256e6


class Kernels:
    """The kernel tables of one GPU for one engine, loaded from `directory` (see module doc)."""

    calibrated = True

    def __init__(self, directory: str | Path, gpu, label: str = "", hbm_floor: bool = True,
                 moe_table: str = "moe"):
        self.dir = Path(directory)
        self.gpu = gpu
        #: GEMMs and MoE layers no faster than their HBM roofline (module docstring); False
        #: for `loop_timed`, which answers as a short loop over one kernel measures
        self.hbm_floor = hbm_floor
        #: the table MoE layers are timed from: `moe` (the engine's own kernel) or
        #: `moe_triton` (vLLM's Triton fused MoE, engine constant `moe_triton`); precisions
        #: the Triton table lacks are timed from `moe` (`_moe_home`)
        self.moe_table = moe_table
        if not (self.dir / "gemm.parquet").is_file():
            raise ConfigError(f"engine tables: {self.dir} has no gemm.parquet")
        meta = self.dir / "meta.json"
        self.meta = json.loads(meta.read_text()) if meta.is_file() else {}
        self.label = label or f"kernels: {self.dir.name}"
        self._cache: dict = {}

    def lists(self, name: str) -> bool:
        """Whether the GPU's folder holds a non-empty table `name` as meta.json lists it (no
        Parquet read: for choices made when a model is built)."""
        info = self.meta.get("tables", {}).get(name)
        return (info is not None and info.get("rows", 1) > 0
                and (self.dir / f"{name}.parquet").is_file())

    def has(self, name: str) -> bool:
        """Whether the GPU has a non-empty table `name` (gemm, moe, allreduce, nccl, ...)."""
        t = self._table(name)
        return t is not None and t.rows > 0

    def gemm_note(self, dtype: str) -> str:
        """'' when the GEMM table measured `dtype`, else how its GEMMs are timed instead (for
        the calibration label: a precision the GPU's tables lack is not calibrated on it).
        Read from meta.json's `dtypes` (written by `wrpsim.calibrate`), not the Parquet file,
        so that a model whose curves are cached reads no table; '' for tables made before it."""
        got = set((self.meta.get("tables") or {}).get("gemm", {}).get("dtypes") or ())
        if not got or dtype in got:
            return ""
        src = gemm_source(dtype, "fp8" in got, self.gpu)
        return f"; {dtype} GEMMs: uncalibrated, the {src} table by the roofline ratio"

    def attn_head_dims(self, kv_dtype: str) -> set | None:
        """The head widths the prefill attention table measured with KV in `kv_dtype`, from
        meta.json (its kernels' `<kv>/<head_dim>` keys); None when it does not say (tables made
        before the kernel was chosen per head width)."""
        t = (self.meta.get("tables") or {}).get("attn_prefill", {})
        keys = [k.split("/") for k in t.get("kernels") or {}]
        if not keys or any(len(k) != 2 for k in keys):
            return None
        kv = {"bf16": "bfloat16"}.get(kv_dtype, kv_dtype)
        return {int(d) for k, d in keys if k == kv}

    def attn_kv_dtypes(self) -> set | None:
        """The KV dtypes both attention tables measured (`bf16`, `fp8`), from meta.json (their
        kernels' `<kv>` or `<kv>/<head_dim>` keys); None when it does not say."""
        out = None
        for name in ("attn_prefill", "attn_decode"):
            keys = ((self.meta.get("tables") or {}).get(name) or {}).get("kernels") or {}
            if not keys:
                return None
            got = {{"bfloat16": "bf16"}.get(k.split("/")[0], k.split("/")[0]) for k in keys}
            out = got if out is None else out & got
        return out

    def measured_in(self, table: str) -> set:
        """The precisions MoE table `table` measured, from meta.json (its kernels' keys, or
        the `dtypes` `wrpsim.calibrate` writes); empty when it does not say."""
        t = (self.meta.get("tables") or {}).get(table, {})
        return {k.split("/")[0] for k in t.get("kernels") or {}} | set(t.get("dtypes") or ())

    def _moe_home(self, dtype: str) -> Kernels:
        """The tables that time `dtype`'s MoE layers: these, or — where these read the
        Triton table (`moe_table`) and it lacks `dtype` (MXFP4, NVFP4, INT4: kernels of their
        own, not Triton's fused MoE) — the same folder's default MoE table."""
        if self.moe_table == "moe" or dtype in self.measured_in(self.moe_table):
            return self
        return self._default_moe()

    def _default_moe(self) -> Kernels:
        """These tables with MoE layers from the folder's default table (`moe`)."""
        if "default_moe" not in self._cache:
            self._cache["default_moe"] = Kernels(self.dir, self.gpu, self.label, self.hbm_floor)
        return self._cache["default_moe"]

    def moe_measured(self) -> set:
        """The precisions the MoE tables read measured (`measured_in`; with the Triton
        table, its precisions and the default table's); empty when meta.json does not say."""
        got = self.measured_in(self.moe_table)
        return got if self.moe_table == "moe" else got | self.measured_in("moe")

    def moe_note(self, dtype: str) -> str:
        """As `gemm_note`, for the MoE table: '' when it measured `dtype` (or says nothing of
        its precisions), else which measured precision its layers are timed from instead."""
        home = self._moe_home(dtype)
        if home is not self:
            return home.moe_note(dtype)
        got = self.moe_measured()
        if not got or dtype in got:
            return ""
        src = moe_source(dtype, got, self.gpu)
        return f"; {dtype} MoE: uncalibrated, the {src} table by the roofline ratio"

    def _table(self, name: str):
        if name not in self._cache:
            path = self.dir / f"{name}.parquet"
            self._cache[name] = read_cols(path) if path.is_file() else None
        return self._cache[name]

    # ------------------------------------------------------------------ GEMM
    def _gemm_cube(self, dtype: str):
        key = ("cube", dtype)
        if key not in self._cache:
            df = self._table("gemm")
            df = df.where(df["dtype"] == dtype)
            if df.rows == 0:
                self._cache[key] = None
            else:
                ms, ns, ks = (np.unique(df[c]).astype(np.float64) for c in ("m", "n", "k"))
                cube = np.full((len(ms), len(ns), len(ks)), np.nan)
                cube[np.searchsorted(ms, df["m"]), np.searchsorted(ns, df["n"]),
                     np.searchsorted(ks, df["k"])] = df["ms"].astype(np.float64) * MS
                self._fill_gemm(cube, ms, ns, ks, dtype)
                if dtype != "bf16":
                    self._not_slower_than_bf16(cube, ms, ns, ks, dtype)
                self._cache[key] = (ms, ns, ks, np.log(cube))
        return self._cache[key]

    def _not_slower_than_bf16(self, cube, ms, ns, ks, dtype) -> None:
        """Cells of a quantised GEMM measured slower than BF16 at the same shape were timed on
        a path the engine does not take there (`wrpsim.calibrate.aic`): time them from BF16 by
        the roofline ratio, then keep the time non-decreasing in m (lower envelope)."""
        base = self._gemm_cube("bf16")
        if base is None:
            return
        bm, bn, bk, blog = base
        im, jn, qk = (np.searchsorted(b, a) for a, b in ((ms, bm), (ns, bn), (ks, bk)))
        ok_m = (im < len(bm)) & (bm[np.minimum(im, len(bm) - 1)] == ms)
        ok_n = (jn < len(bn)) & (bn[np.minimum(jn, len(bn) - 1)] == ns)
        ok_k = (qk < len(bk)) & (bk[np.minimum(qk, len(bk) - 1)] == ks)
        for a in np.flatnonzero(ok_m):
            b16 = np.exp(blog[im[a]][np.ix_(jn[ok_n], qk[ok_k])])
            sub = cube[a][np.ix_(np.flatnonzero(ok_n), np.flatnonzero(ok_k))]
            nn, kk = np.meshgrid(ns[ok_n], ks[ok_k], indexing="ij")
            ratio = _roof_ratio(ms[a], nn, kk, dtype, self.gpu)
            slow = sub > b16
            sub[slow] = (b16 * ratio)[slow]
            cube[a][np.ix_(np.flatnonzero(ok_n), np.flatnonzero(ok_k))] = sub
        cube[:] = np.minimum.accumulate(cube[::-1], axis=0)[::-1]

    def _fill_gemm(self, cube, ms, ns, ks, dtype) -> None:
        """Fill unmeasured (m, n, k) cells from the nearest measured (n, k) at the same m."""
        for j, q in zip(*np.nonzero(np.isnan(cube).any(axis=0))):
            for i in np.flatnonzero(np.isnan(cube[:, j, q])):
                ok = np.argwhere(~np.isnan(cube[i]))
                d = np.abs(np.log(ns[ok[:, 0]] / ns[j])) + np.abs(np.log(ks[ok[:, 1]] / ks[q]))
                jj, qq = ok[int(np.argmin(d))]
                r = (rl.gemm_roofline(ms[i], ns[j], ks[q], dtype, self.gpu)
                     / rl.gemm_roofline(ms[i], ns[jj], ks[qq], dtype, self.gpu))
                cube[i, j, q] = cube[i, jj, qq] * r

    def gemm(self, dtype: str, n: int, k: int) -> Curve:
        """Time of a GEMM with weight n x k in `dtype` as a function of m (tokens)."""
        cube = self._gemm_cube(dtype)
        if cube is None:
            if dtype == "bf16":
                raise ConfigError(f"engine tables {self.dir}: no bf16 GEMM rows")
            src = gemm_source(dtype, self._gemm_cube("fp8") is not None, self.gpu)
            base = self.gemm(src, n, k)
            # (moved by the roofline ratio, then held to the sustained rate of the math it
            # computes in: an FP4 weight-only GEMM on Hopper runs at the BF16 rate, and the
            # ratio of its memory-bound rooflines took it below that — an H100 faster than an
            # H200 at a compute-bound step)
            y = base.y * (rl.gemm_roofline(base.x, n, k, dtype, self.gpu)
                          / rl.gemm_roofline(base.x, n, k, src, self.gpu))
            return Curve(base.x, sustained(y, rl.gemm_flops(base.x, n, k), dtype, self.gpu))
        ms, ns, ks, lc = cube
        nq, kq = min(max(n, ns[0]), ns[-1]), min(max(k, ks[0]), ks[-1])
        j, wn = _weights(np.log(ns), np.log(nq))
        q, wk = _weights(np.log(ks), np.log(kq))
        logt = ((1 - wn) * (1 - wk) * lc[:, j, q] + wn * (1 - wk) * lc[:, j + 1, q]
                + (1 - wn) * wk * lc[:, j, q + 1] + wn * wk * lc[:, j + 1, q + 1])
        t = np.exp(logt)
        roof = rl.gemm_roofline(ms, n, k, dtype, self.gpu)
        if nq != n or kq != k:  # outside the measured n or k: carry the edge over
            t = t * (roof / rl.gemm_roofline(ms, nq, kq, dtype, self.gpu))
        if self.hbm_floor:
            # no faster than its roofline: a short loop over a small weight matrix reads it
            # from L2 (L40S: up to 2.9 x its HBM bandwidth at m <= 16), a serving step from HBM
            t = np.maximum(t, roof)
        return Curve(ms, sustained(t, rl.gemm_flops(ms, n, k), dtype, self.gpu))

    # ------------------------------------------------------------------ all-reduce
    def allreduce(self, tp: int, graph: bool) -> Curve:
        """Time of vLLM's custom all-reduce of bf16 elements over `tp` GPUs (in a CUDA graph or
        eager) as a function of the element count."""
        df = self._table("allreduce")
        if df is None or df.rows == 0:
            raise ConfigError(f"engine tables {self.dir}: no all-reduce table")
        return _collective_curve(df.where(df["graph"] == int(graph)), tp)

    def allreduce_fused(self, tp: int) -> Curve | None:
        """Time of TensorRT-LLM's one-/two-shot all-reduce of bf16 elements over `tp` GPUs — the
        kernel FlashInfer's all-reduce + RMSNorm fusion runs — as a function of the element
        count; None where the tables did not measure it (`allreduce_fused.parquet`)."""
        if not self.lists("allreduce_fused"):
            return None
        return _collective_curve(self._table("allreduce_fused"), tp)

    def measures_fused_allreduce(self) -> bool:
        """Whether `allreduce_fused` answers (from meta.json: no Parquet read at build time)."""
        return self.lists("allreduce_fused")

    def nccl(self, op: str, tp: int) -> Curve:
        """Time of an NCCL collective `op` (all_gather, reduce_scatter, ...) of half-precision
        elements over `tp` GPUs as a function of the element count; the custom all-reduce's
        eager curve when the GPU has no NCCL table."""
        df = self._table("nccl")
        if df is None or not np.any(df["op"] == op):
            return self.allreduce(tp, False)
        return _collective_curve(df.where(df["op"] == op), tp)

    # ------------------------------------------------------------------ attention
    def _attn(self, name: str, kv_dtype: str, heads: int, kv_heads: int, head_dim: int) -> Grid:
        key = (name, kv_dtype, heads, kv_heads, head_dim)
        if key in self._cache:
            return self._cache[key]
        size = "ctx" if name == "attn_decode" else "isl"
        kv_dtype_src, df, cfgs = self._attn_rows(name, kv_dtype)
        h, kvh, d, per_batch = _attn_layout(cfgs, heads, kv_heads, head_dim,
                                            same_ratio=size == "ctx")
        sub = df.where((df["heads"] == h) & (df["kv_heads"] == kvh) & (df["head_dim"] == d))
        b, bi = np.unique(sub["batch"], return_inverse=True)
        s, si = np.unique(sub[size], return_inverse=True)
        b, s = b.astype(np.float64), s.astype(np.float64)
        t = np.full((len(b), len(s)), np.nan)
        t[bi, si] = sub["ms"].astype(np.float64) * MS
        roof = rl.attn_decode_roofline if size == "ctx" else rl.attn_prefill_roofline
        kvb = rl.KV_BYTES
        bb, ss = np.meshgrid(b, s, indexing="ij")
        r_ref = roof(bb, ss, h, kvh, d, self.gpu, kvb[kv_dtype_src])
        floor = float(np.nanmin(t))
        t = monotone_grid(_fill(t, r_ref))
        # this layout's batches: the measured layout's over `per_batch` (1 but for a layout
        # timed as the same heads-per-KV-head layout at a scaled batch, which is then the
        # same work: no roofline scaling for its heads)
        b = b / per_batch
        bt = bb / per_batch
        other = per_batch == 1.0 and (h, kvh, d) != (heads, kv_heads, head_dim)
        if other or kv_dtype_src != kv_dtype:
            # another head layout: only the work above the kernel's fixed latency (the
            # smallest measured time: launch and one wave, whatever the heads) scales with the
            # roofline ratio
            r = roof(bt, ss, heads, kv_heads, head_dim, self.gpu, kvb[kv_dtype]) / r_ref
            t = floor + np.maximum(t - floor, 0.0) * r
        if size == "ctx":
            # no faster than reading the KV cache from HBM: the collector re-reads one layer's
            # cache, which stays in L2 where it fits (L40S: up to 1.8 TB/s over its 0.86), but
            # in serving every layer's cache and the weights pass through L2 between two reads
            # of one layer's cache
            t = np.maximum(t, roof(bt, ss, heads, kv_heads, head_dim, self.gpu, kvb[kv_dtype]))
        grid = Grid(b, s, t)
        self._cache[key] = grid
        return grid

    def _attn_rows(self, name: str, kv_dtype: str) -> tuple[str, Cols, np.ndarray]:
        """(the KV dtype the attention table `name` is read in — `kv_dtype` where it measured
        it, else BF16 —, its rows without a sliding window in that dtype, their distinct
        (heads, KV heads, head dim) layouts): the same for every model of the GPU, read once."""
        key = ("attn_rows", name, kv_dtype)
        if key not in self._cache:
            df = self._table(name)
            df = df.where(df["window"] == 0)
            src = kv_dtype if np.any(df["kv_dtype"] == kv_dtype) else "bf16"
            df = df.where(df["kv_dtype"] == src)
            cfgs = np.unique(np.stack([df["heads"], df["kv_heads"], df["head_dim"]], axis=1),
                             axis=0)
            self._cache[key] = (src, df, cfgs)
        return self._cache[key]

    def attn_prefill(self, kv_dtype: str, heads: int, kv_heads: int, head_dim: int) -> Grid:
        """Prefill attention time over (batch, prompt length) for one GPU's head layout."""
        return self._attn("attn_prefill", kv_dtype, heads, kv_heads, head_dim)

    def attn_decode(self, kv_dtype: str, heads: int, kv_heads: int, head_dim: int) -> Grid:
        """Decode attention time over (batch, cached tokens per sequence)."""
        return self._attn("attn_decode", kv_dtype, heads, kv_heads, head_dim)

    def mla_module(self) -> dict | None:
        """The attention shape (config.json numbers) of the model whose MLA module the
        `mla_prefill` / `mla_decode` tables time, or None without those tables."""
        return self._module_shape("mla")

    def dsa_module(self) -> dict | None:
        """The attention shape (config.json numbers, its indexer's included) of the model whose
        DeepSeek Sparse Attention module the `dsa_prefill` / `dsa_decode` tables time, or None
        without those tables."""
        return self._module_shape("dsa")

    def _module_shape(self, kind: str) -> dict | None:
        if not (self.has(f"{kind}_prefill") and self.has(f"{kind}_decode")):
            return None
        return self.meta.get("tables", {}).get(f"{kind}_decode", {}).get("module")

    def mla(self, phase: str, kv_dtype: str, gemm: str, heads: int) -> tuple[Grid, str] | None:
        """Measured seconds of one whole MLA module (`wrpsim.calibrate.aic`) with `heads` heads
        on the GPU, over (batch, prompt length) for `phase` "prefill" or (batch, cached tokens)
        for "decode"; projections in `gemm` (BF16 rows when the table lacks it), KV in
        `kv_dtype` (BF16 rows when it lacks it); returned with the projections' precision used.
        None when no row has `heads` heads: the model then composes the module from GEMMs and
        the attention tables."""
        return self._module("mla", phase, kv_dtype, gemm, heads)

    def dsa(self, phase: str, kv_dtype: str, gemm: str, heads: int) -> tuple[Grid, str] | None:
        """`mla` for the DeepSeek Sparse Attention module (`dsa_module`)."""
        return self._module("dsa", phase, kv_dtype, gemm, heads)

    def _module(self, kind: str, phase: str, kv_dtype: str, gemm: str,
                heads: int) -> tuple[Grid, str] | None:
        name = f"{kind}_{phase}"
        key = (name, kv_dtype, gemm, heads)
        if key in self._cache:
            return self._cache[key]
        df = self._table(name)
        grid = None
        if df is not None:
            if not np.any(df["kv_dtype"] == kv_dtype):
                kv_dtype = "bf16"
            df = df.where(df["kv_dtype"] == kv_dtype)
            gemm = gemm if np.any(df["gemm"] == gemm) else "bf16"
            df = df.where(df["gemm"] == gemm)
            df = df.where(df["heads"] == heads)
            if df.rows:
                size = "ctx" if phase == "decode" else "isl"
                b, bi = np.unique(df["batch"], return_inverse=True)
                s, si = np.unique(df[size], return_inverse=True)
                b, s = b.astype(np.float64), s.astype(np.float64)
                t = np.full((len(b), len(s)), np.nan)
                t[bi, si] = df["ms"].astype(np.float64) * MS
                bb, ss = np.meshgrid(b, s, indexing="ij")
                kvb = rl.KV_BYTES[kv_dtype]
                m = self.meta["tables"][name]["module"]
                if phase == "decode":  # holes filled by the absorbed-MQA attention's roofline
                    roof = rl.attn_decode_roofline(bb, ss, heads, 1, m["kv_lora_rank"]
                                                   + m["qk_rope_head_dim"], self.gpu, kvb)
                else:
                    roof = rl.attn_prefill_roofline(bb, ss, heads, heads, m["qk_nope_head_dim"]
                                                    + m["qk_rope_head_dim"], self.gpu, kvb)
                measured = ~np.isnan(t)
                t = monotone_grid(_fill(t, roof))
                grid = (Grid(b, s, t, measured), gemm)
        self._cache[key] = grid
        return grid

    def gdn_measured(self) -> bool:
        """Whether this GPU's own tables measured the Gated DeltaNet prefill kernels."""
        return self.has("gdn_prefill")

    def gdn_prefill(self, k_heads: int, key_dim: int, v_heads: int,
                    value_dim: int) -> Grid | None:
        """Measured seconds of a Gated DeltaNet layer's prefill kernels (causal convolution and
        chunked delta rule, `wrpsim.calibrate.aic`) over (batch, prompt length) for one GPU's
        heads: the measured head layout nearest this one (by value heads, then key heads),
        times the ratio of their state sizes (value heads x key_dim x value_dim: the rule's
        work per token) where it is not this one; None without the table."""
        key = ("gdn", k_heads, key_dim, v_heads, value_dim)
        if key in self._cache:
            return self._cache[key]
        df = self._table("gdn_prefill")
        grid = None
        if df is not None and df.rows:
            cfgs = np.unique(np.stack([df["v_heads"], df["k_heads"], df["key_dim"],
                                       df["value_dim"]], axis=1), axis=0)
            dist = (np.abs(np.log(cfgs[:, 0] / v_heads)) * 4 + np.abs(np.log(cfgs[:, 1] / k_heads))
                    + np.abs(np.log(cfgs[:, 2] * cfgs[:, 3] / (key_dim * value_dim))))
            vh, kh, kd, vd = (int(x) for x in cfgs[int(np.argmin(dist))])
            sub = df.where((df["v_heads"] == vh) & (df["k_heads"] == kh)
                           & (df["key_dim"] == kd) & (df["value_dim"] == vd))
            b, bi = np.unique(sub["batch"], return_inverse=True)
            s, si = np.unique(sub["isl"], return_inverse=True)
            t = np.full((len(b), len(s)), np.nan)
            t[bi, si] = sub["ms"].astype(np.float64) * MS
            # holes (the longest prompts of a large batch): from the nearest measured cell of
            # the same batch, in proportion to the tokens
            bb, ss = np.meshgrid(b.astype(np.float64), s.astype(np.float64), indexing="ij")
            t = monotone_grid(_fill(t, bb * ss))
            ratio = (v_heads * key_dim * value_dim) / (vh * kd * vd)
            grid = Grid(b.astype(np.float64), s.astype(np.float64), t * ratio)
        self._cache[key] = grid
        return grid

    def stream_bw(self) -> float:
        """Highest bandwidth (bytes/s) a measured decode-attention step reached streaming a KV
        cache of at least `STREAM_MIN_BYTES` (any step where none is that large), at most the
        GPU's DRAM bandwidth (`mem_bw_gbs`): the GPU's achievable DRAM bandwidth for streaming
        kernels. (A cell whose KV fits the L2 cache, timed over and over, reads faster than
        DRAM: the L40S's reach 2.9x its 864 GB/s, the RTX PRO 6000's 2x, the RTX 4090's 1.2x;
        above 256 MB 0.89x, 0.96x and 0.95x, and the H100's 0.95x either way.)"""
        key = "stream_bw"
        if key not in self._cache:
            df = self._table("attn_decode")
            df = df.where((df["kv_dtype"] == "bf16") & (df["window"] == 0))
            nbytes = (df["batch"] * (df["ctx"] + 1.0) * 2.0 * df["kv_heads"] * df["head_dim"]
                      * 2.0)
            rate = nbytes / (df["ms"] * MS)
            big = nbytes >= STREAM_MIN_BYTES
            self._cache[key] = min(float(np.max(rate[big] if np.any(big) else rate)),
                                   self.gpu.mem_bw_gbs * 1e9)
        return self._cache[key]

    # ------------------------------------------------------------------ MoE
    def moe_shapes(self, dtype: str) -> set | None:
        """The MoE layer shapes (hidden, inter, topk, experts) the GPU's MoE table measured in
        the precision `dtype`'s layers are timed from (`moe_source`); None without a table."""
        home = self._moe_home(dtype)
        if home is not self:
            return home.moe_shapes(dtype)
        key = ("moe_shapes", dtype)
        if key not in self._cache:
            df = self._table(self.moe_table)
            got = None
            if df is not None and df.rows:
                df = df.where(df["dtype"] == moe_source(dtype, self._table_dtypes(), self.gpu))
                got = {tuple(int(x) for x in r) for r in zip(
                    df["hidden"], df["inter"], df["topk"], df["experts"])}
            self._cache[key] = got
        return self._cache[key]

    def moe_dtypes(self) -> set:
        """The MoE precisions the GPU's MoE tables read measured (empty without one; with the
        Triton table, its precisions and the default table's)."""
        key = "moe_dtypes"
        if key not in self._cache:
            got = self._table_dtypes()
            if self.moe_table != "moe":
                got |= self._default_moe().moe_dtypes()
            self._cache[key] = got
        return self._cache[key]

    def _table_dtypes(self) -> set:
        """The precisions of the MoE table read (`moe_table`) alone."""
        key = ("table_dtypes", self.moe_table)
        if key not in self._cache:
            df = self._table(self.moe_table)
            self._cache[key] = (set() if df is None or df.rows == 0
                                else {str(d) for d in np.unique(df["dtype"])})
        return set(self._cache[key])

    def moe(self, dtype: str, hidden: int, inter: int, topk: int, experts: int, moe_tp: int,
            moe_ep: int, gated: bool = True, as_measured: bool = False) -> Curve:
        """Time of one fused MoE layer as a function of the tokens entering it; beyond the
        largest measured token count, that time moved over by the roofline ratio (up to
        `MOE_MAX_TOKENS`, proportional past it). A `W8A8_MOE` dtype's points measured slower
        than BF16 are replaced (`_moe_not_slower_than_bf16`) unless `as_measured`. Made once
        per shape (a data-parallel-attention step evaluates it at its own token count)."""
        home = self._moe_home(dtype)
        if home is not self:
            return home.moe(dtype, hidden, inter, topk, experts, moe_tp, moe_ep, gated,
                            as_measured)
        key = ("moe", dtype, hidden, inter, topk, experts, moe_tp, moe_ep, gated, as_measured)
        if key not in self._cache:
            self._cache[key] = self._moe(dtype, hidden, inter, topk, experts, moe_tp, moe_ep,
                                         gated, as_measured)
        return self._cache[key]

    def _moe(self, dtype: str, hidden: int, inter: int, topk: int, experts: int, moe_tp: int,
             moe_ep: int, gated: bool, as_measured: bool) -> Curve:
        """`moe`, made."""
        df = self._table(self.moe_table)
        want = (hidden, inter, topk, experts, moe_tp, moe_ep)
        if df is None or df.rows == 0:
            raise ConfigError(f"engine tables {self.dir}: no MoE table ({self.moe_table})")
        src = moe_source(dtype, self._table_dtypes(), self.gpu)
        df_all = df
        df, cfgs = self._moe_rows(src)
        w = np.array(want, dtype=np.float64)
        dist = np.abs(np.log(cfgs / w)).sum(axis=1)
        ref = cfgs[int(np.argmin(dist))]
        sel = np.ones(df.rows, dtype=bool)
        for c, v in zip(MOE_LAYOUT, ref):
            sel &= df[c] == v
        sub = df.where(sel)
        order = np.argsort(sub["tokens"], kind="stable")
        x = sub["tokens"][order].astype(np.float64)
        y = monotone_curve(sub["ms"][order].astype(np.float64) * MS)
        h0, i0, k0, e0, tp0, ep0 = (int(v) for v in ref)
        if tuple(int(v) for v in ref) != want or src != dtype:
            # (the ratio falls where the layer with fewer experts has touched them all and the
            # reference has not: kept non-decreasing, as more tokens never take less time)
            y = np.maximum.accumulate(y * (
                rl.moe_roofline(x, hidden, inter, topk, experts, moe_tp, moe_ep, dtype,
                                self.gpu, gated)
                / rl.moe_roofline(x, h0, i0, k0, e0, tp0, ep0, src, self.gpu, gated)))
        if self.hbm_floor:
            # no faster than streaming the experts its tokens must touch (a short loop keeps a
            # few experts in L2: L40S up to 3 x its HBM bandwidth)
            y = np.maximum(y, rl.moe_stream_floor(x, hidden, inter, topk, moe_tp, moe_ep,
                                                  dtype, self.gpu, gated))
        if x[-1] < MOE_MAX_TOKENS:  # larger batches at the last point's efficiency
            more = x[-1] * 2.0 ** np.arange(1, 1 + int(np.log2(MOE_MAX_TOKENS / x[-1])))
            roof = rl.moe_roofline(np.append(x[-1:], more), hidden, inter, topk, experts,
                                   moe_tp, moe_ep, dtype, self.gpu, gated)
            x, y = np.append(x, more), np.append(y, y[-1] * roof[1:] / roof[0])
        if not as_measured and src == dtype and dtype in W8A8_MOE and np.any(
                df_all["dtype"] == "bf16"):
            y = self._moe_not_slower_than_bf16(x, y, dtype, want, gated)
        elif not as_measured and src != dtype and src in W8A8_MOE:
            # timed from a W8A8 table's points (MXFP4 weights with MXFP8 activations, FP4 on a
            # GPU whose tables lack it): no slower than that precision's own layer as its
            # correction above times it, moved by the same roofline ratio as the points
            # (Hopper's raw per-tensor FP8 points, 2-3.5 x BF16, made mxfp4_mxfp8 2-2.5 x BF16)
            y = np.minimum(y, self.moe(src, *want, gated=gated)(x) * (
                rl.moe_roofline(x, *want, dtype, self.gpu, gated)
                / rl.moe_roofline(x, *want, src, self.gpu, gated)))
        return Curve(x, sustained(
            y, rl.moe_flops(x, hidden, inter, topk, moe_tp, moe_ep, gated), dtype, self.gpu))

    def _moe_rows(self, src: str) -> tuple[Cols, np.ndarray]:
        """(the MoE table's rows in precision `src`, their distinct `MOE_LAYOUT`s as floats):
        the same for every model of the GPU, read once."""
        key = ("moe_rows", self.moe_table, src)
        if key not in self._cache:
            df = self._table(self.moe_table)
            df = df.where(df["dtype"] == src)
            cfgs = np.unique(np.stack([df[c] for c in MOE_LAYOUT], axis=1), axis=0)
            self._cache[key] = (df, cfgs.astype(np.float64))
        return self._cache[key]

    def _moe_not_slower_than_bf16(self, x, y, dtype: str, want: tuple, gated: bool):
        """An FP8 (W8A8) MoE layer reads half the BF16 expert bytes and computes on FP8 tensor
        cores at twice the BF16 rate, so a token count where its measured time exceeds BF16's
        was timed on a path the engine does not take there (H100 / H200 per-tensor FP8 experts
        through FlashInfer's CUTLASS kernel: 2-3.5x the BF16 Triton time), or, at a few tokens,
        with a per-call cost the collector pays and a CUDA graph does not (block-scaled FP8:
        2x BF16 at one token for DeepSeek-V3 at EP 8 on B200, faster than BF16 from 16). Such
        a point takes the fastest other measured kernel of its precision family
        (`MOE_FALLBACK`: block-scaled FP8 for FP8, per-tensor for block) where that one is
        faster, else the BF16 time; the curve stays non-decreasing. Points faster than BF16
        keep their measurement, and so does a `MOE_SLOW_TAIL_KEPT` dtype's slow tail: its
        points past the last token count it measured faster than BF16 (prefill sizes, where
        block scaling costs compute, and what the engine runs: MiniMax-M2.5's FP8 runs on
        B200 / B300). Weight-only formats (MXFP4, INT4: W4A16) are exempt: they compute at
        the BF16 rate after dequantising, so measured times above BF16's in compute-bound
        prefill are real (gpt-oss on Hopper)."""
        b16 = self.moe("bf16", *want, gated=gated)(x)
        slow = y > b16
        if dtype in MOE_SLOW_TAIL_KEPT:  # (keep the slow tail past the last faster point)
            fast = np.flatnonzero(~slow)
            if len(fast):
                slow &= np.arange(len(y)) < fast[-1]
        if not np.any(slow):
            return y
        best, measured = b16, self._table_dtypes()  # (this table's kernels, not the other's)
        for alt in MOE_FALLBACK[dtype][1:]:  # the other W8A8 kernels, never BF16
            if alt in measured:
                best = np.minimum(best, self.moe(alt, *want, gated=gated,
                                                 as_measured=True)(x))
        return np.maximum.accumulate(np.where(slow, best, y))


def _collective_curve(df, tp: int) -> Curve:
    """Time vs element count of one collective's rows `df` at group size `tp`: the measured
    curve of the nearest measured size (monotone), its bandwidth part scaled by the ring
    factor (tp - 1) / tp when the size differs."""
    tps = np.unique(df["tp"]).tolist()
    ref = min(tps, key=lambda v: abs(np.log(v / tp)))
    sub = df.where(df["tp"] == ref)
    order = np.argsort(sub["elements"], kind="stable")
    x = sub["elements"][order].astype(np.float64)
    y = monotone_curve(sub["ms"][order].astype(np.float64) * MS)
    if ref != tp:
        lat = y[0]
        y = lat + (y - lat) * ((tp - 1) / tp) / ((ref - 1) / ref)
    return Curve(x, y)


def _roof_ratio(m: float, n: np.ndarray, k: np.ndarray, dtype: str, gpu) -> np.ndarray:
    """Roofline time of a GEMM in `dtype` over the same GEMM in BF16 (element-wise over n, k)."""
    flops = rl.gemm_flops(m, n, k)
    bw = gpu.mem_bw_gbs * 1e9

    def roof(dt: str) -> np.ndarray:
        nbytes = n * k * rl.WEIGHT_BYTES[dt] + m * k * rl.ACT_BYTES[dt] + 2.0 * m * n
        return np.maximum(flops / rl.peak_flops(gpu, dt), nbytes / bw)

    return roof(dtype) / roof("bf16")


def _attn_layout(cfgs: np.ndarray, heads: int, kv_heads: int, head_dim: int,
                 same_ratio: bool = True) -> tuple[int, int, int, float]:
    """The measured attention layout (heads, KV heads, head width) that times a GPU's
    (`heads`, `kv_heads`, `head_dim`), and `per_batch`: how many of the measured layout's
    sequences one sequence of the asked layout counts as. The layout itself where measured;
    else (with `same_ratio`: decode attention) one with the same head width and the same
    query heads per KV head, at `per_batch` = kv_heads / its KV heads — a decode kernel's
    work items are (sequence, KV head) pairs, each streaming its KV head's cache for its
    group of query heads, so b sequences of k x the KV heads are k x b sequences of the
    measured layout (the tables bear it out on layouts held out of them, within 1.5-7.5 %
    median where the nearest layout scaled by the roofline ratio is 4.7-54 % off:
    docs/experiments/attention_layout_check.py). Of those, the one with the most KV heads up
    to `kv_heads` (`per_batch` >= 1: one sequence stays inside the measured batches), else
    the one with the fewest. Otherwise the nearest layout in log distance (head width
    weighted 4 x), `per_batch` 1, which the caller scales by the roofline ratio — as for
    prefill attention, whose tables measure up to 64 KV heads (held out, the per-batch rule
    is no better there at 2 x the KV heads, better on four GPUs of five at 4 x).
    `cfgs`: the measured (heads, KV heads, head width) rows."""
    cfgs = cfgs.astype(np.float64)
    exact = np.flatnonzero((cfgs[:, 0] == heads) & (cfgs[:, 1] == kv_heads)
                           & (cfgs[:, 2] == head_dim))
    if len(exact) == 0 and same_ratio:
        same = np.flatnonzero((cfgs[:, 2] == head_dim)
                              & (cfgs[:, 0] * kv_heads == cfgs[:, 1] * heads))
        if len(same):
            kv = cfgs[same, 1]
            below = kv <= kv_heads
            i = (same[int(np.argmax(np.where(below, kv, -np.inf)))] if below.any()
                 else same[int(np.argmin(kv))])
            h, kvh, d = (int(v) for v in cfgs[i])
            return h, kvh, d, kv_heads / kvh
    dist = (np.abs(np.log(cfgs[:, 0] / heads)) + np.abs(np.log(cfgs[:, 1] / kv_heads))
            + 4 * np.abs(np.log(cfgs[:, 2] / head_dim)))
    h, kvh, d = (int(v) for v in cfgs[int(np.argmin(dist))])
    return h, kvh, d, 1.0


def _fill(t: np.ndarray, roof: np.ndarray) -> np.ndarray:
    """Fill the unmeasured cells of a (batch x length) grid: from the nearest measured cell
    of the same length (else of the same batch), scaled by the ratio of roofline times."""
    t = t.copy()
    for axis in (0, 1):
        for j in range(t.shape[1 - axis]):
            col = t[:, j] if axis == 0 else t[j, :]
            r = roof[:, j] if axis == 0 else roof[j, :]
            ok = np.flatnonzero(~np.isnan(col))
            if len(ok) == 0 or len(ok) == len(col):
                continue
            for i in np.flatnonzero(np.isnan(col)):
                near = ok[np.argmin(np.abs(ok - i))]
                col[i] = col[near] * r[i] / r[near]
    return t


def _weights(grid: np.ndarray, v: float) -> tuple[int, float]:
    """Index i and weight w with v = (1 - w) grid[i] + w grid[i + 1] (grid of length >= 2)."""
    if len(grid) == 1:
        return 0, 0.0
    i = int(min(max(np.searchsorted(grid, v, side="right") - 1, 0), len(grid) - 2))
    return i, float((v - grid[i]) / (grid[i + 1] - grid[i]))


def load_kernels(directory: str, gpu, label: str = "", moe_table: str = "moe") -> Kernels:
    """One `Kernels` per (directory, GPU, label, MoE table) per process: tables are read once
    per object (`_load_kernels`, keyed alike however the call passes its arguments)."""
    return _load_kernels(str(directory), gpu, label, moe_table)


@cache
def _load_kernels(directory: str, gpu, label: str, moe_table: str) -> Kernels:
    return Kernels(directory, gpu, label, moe_table=moe_table)


def sustained(t: np.ndarray, flops, dtype: str, gpu) -> np.ndarray:
    """Times `t` of GEMMs or MoE layers doing `flops` in `dtype` on `gpu`, no shorter than its
    sustained rate at its power limit allows (`roofline.sustained_flops`; `t` itself where that
    rate is not measured). A GPU timed from another's tables (`Transferred`) carries the
    reference's bound over with its efficiency, or meets its own instead where it has one."""
    rate = rl.sustained_flops(gpu, dtype)
    return np.maximum(t, flops / rate) if rate else t

