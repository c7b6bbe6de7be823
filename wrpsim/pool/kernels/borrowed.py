"""Kernel answers for a GPU without (all of) its own tables, and views of any kernel source.

`Transferred` answers for a GPU without kernel tables from a reference GPU's (`tables.Kernels`),
each time multiplied by the ratio of the two GPUs' roofline times for the same operator
("uncalibrated: roofline"); `Partial` answers from a GPU's own tables where it has them (e.g. a
layer profile of one model: GEMMs and attention) and from a `Transferred` reference for the
operators they lack. All three kinds answer the same queries (`tables.Kernels` documents them).

`short_loop` and `loop_timed` view any of the three without the sustained-rate bound (and
without the HBM floor): times as the tables' short loops measured them, for held-out checks and
for taking a measured module apart; `bound_note` words the bound for a calibration label.
"""

from __future__ import annotations

import dataclasses
from functools import cache

import numpy as np

from wrpsim.pool.kernels import roofline as rl
from wrpsim.pool.kernels.tables import Curve, Grid, Kernels, sustained

#: the group sizes whose link share a moved collective takes the smallest of (`_on_own_link`)
SHARE_GROUPS = (2, 4, 8)


class Transferred:
    """Answers for `gpu` (no kernel tables) from `ref`'s tables, each time multiplied by the
    ratio of the two GPUs' roofline times for the same operator ("uncalibrated: roofline")."""

    calibrated = False

    def __init__(self, ref: Kernels, gpu):
        self.ref, self.gpu = ref, gpu
        self.label = f"uncalibrated: roofline (efficiencies of {ref.label})"
        self._moe_memo: dict = {}  # (`moe`: one curve per shape)

    def gemm_note(self, dtype: str) -> str:
        return ""  # (every answer is labelled "uncalibrated: roofline" already)

    def moe_note(self, dtype: str) -> str:
        return ""

    def _src(self, dtype: str) -> str:
        """The precision of the reference's kernels that `dtype` follows on this GPU:
        `dtype` itself where both GPUs compute it alike (both on its tensor cores, or both
        weight-only); the reference's BF16 kernel where this GPU lacks the tensor cores the
        reference has (FP8 on an A10G, from the L40S: a weight-only kernel at the BF16 rate;
        moving the reference's FP8 kernel would carry its efficiency at the FP8 rate over to a
        GPU that computes at the BF16 rate); and, where this GPU has them and the reference
        does not (FP4 on an RTX PRO 6000, from the L40S), the reference's kernel of the nearest
        tensor-core math it has — FP8 for FP4 — rather than its weight-only path scaled to
        FP4's rate."""
        mine, ref = rl.has_math(self.gpu, dtype), rl.has_math(self.ref.gpu, dtype)
        if mine == ref:
            return dtype
        if ref:
            return "bf16"
        return "fp8" if rl.MATH[dtype] == "fp4" and rl.has_math(self.ref.gpu, "fp8") else dtype

    def _base(self, dtype: str):
        """The reference's kernels to move over for `dtype`: as bounded by its own sustained
        rate (its efficiency at its power limit, carried over with the rest), unless this GPU
        has a sustained rate of its own for that math, which then takes the bound's place."""
        return short_loop(self.ref) if rl.sustained_flops(self.gpu, dtype) else self.ref

    def gemm(self, dtype, n, k) -> Curve:
        src = self._src(dtype)
        c = self._base(dtype).gemm(src, n, k)
        c = c.scaled(rl.gemm_roofline(c.x, n, k, dtype, self.gpu)
                     / rl.gemm_roofline(c.x, n, k, src, self.ref.gpu))
        return Curve(c.x, sustained(c.y, rl.gemm_flops(c.x, n, k), dtype, self.gpu))

    def _on_own_link(self, c: Curve, tp: int, passes: float, rates) -> Curve:
        """A collective's curve of `tp` GPUs on the reference GPU moved to the link of this
        GPU's group of `tp` (`GpuSpec.link_for`: a bridged pair's, else the scale-up link):
        the reference's time plus the time its bytes take longer (or shorter) on this link —
        each GPU sends `passes` x (tp - 1) / tp of the message's 2-byte elements (a ring
        all-reduce 2, an all-gather or reduce-scatter 1) — at the share of its link the
        reference reached on its largest message, the smallest over its group sizes (`rates`:
        that collective's curves at 2, 4 and 8 GPUs; the CUDA-graph all-reduce's for both
        all-reduce curves, so the eager one, which adds only launch time, stays the slower):
        one share for every size, as an NVSwitch's in-network reduction, which lifts the
        reference's 8-GPU share to its nominal rate, is no property of the new link (a share
        per size made 8 PCIe GPUs all-reduce faster than 4). The latency and protocol steps the
        reference measured are kept as measured, not stretched with the bytes (a stretched
        eager all-reduce of a 2 MiB message came out faster than the graph one, 74 against
        117 µs on a PCIe H100); no message crosses faster than its bytes at this link's
        rate."""
        def share_of(r: Curve, g: int) -> float:
            span = float(r.y[-1] - r.y[0])
            w = passes * (g - 1) / g * 2.0
            return min(1.0, w * float(r.x[-1]) / (self.ref.gpu.link_for(g) * 1e9) / span) \
                if span > 0 else 1.0

        share = min(share_of(r, g) for g, r in rates)
        wire = passes * (tp - 1) / tp * 2.0  # bytes each GPU sends per element
        bw_ref = self.ref.gpu.link_for(tp) * 1e9
        bw = self.gpu.link_for(tp) * 1e9
        extra = wire * c.x * (1.0 / bw - 1.0 / bw_ref) / share
        # (and never faster than its bytes cross this link: a reference that beat its own
        # nominal link, NVSwitch reducing in the network, carries no such gain to PCIe)
        return Curve(c.x, np.maximum.accumulate(np.maximum(np.maximum(c.y + extra, c.y[0]),
                                                           wire * c.x / bw)))

    def allreduce(self, tp, graph) -> Curve:
        return self._on_own_link(self.ref.allreduce(tp, graph), tp, 2.0,
                                 [(g, self.ref.allreduce(g, True)) for g in SHARE_GROUPS])

    def allreduce_fused(self, tp) -> None:
        """None: a kernel measured on another GPU says nothing of whether this one runs it."""
        return None

    def measures_fused_allreduce(self) -> bool:
        return False

    def nccl(self, op, tp) -> Curve:
        return self._on_own_link(self.ref.nccl(op, tp), tp, 2.0 if op == "all_reduce" else 1.0,
                                 [(g, self.ref.nccl(op, g)) for g in SHARE_GROUPS])

    def _grid(self, g: Grid, roof, heads, kv_heads, head_dim, kv_dtype) -> Grid:
        kvb = rl.KV_BYTES[kv_dtype]
        bb, ss = np.meshgrid(g.b, g.s, indexing="ij")
        return g.scaled(roof(bb, ss, heads, kv_heads, head_dim, self.gpu, kvb)
                        / roof(bb, ss, heads, kv_heads, head_dim, self.ref.gpu, kvb))

    def attn_prefill(self, kv_dtype, heads, kv_heads, head_dim) -> Grid:
        return self._grid(self.ref.attn_prefill(kv_dtype, heads, kv_heads, head_dim),
                          rl.attn_prefill_roofline, heads, kv_heads, head_dim, kv_dtype)

    def attn_decode(self, kv_dtype, heads, kv_heads, head_dim) -> Grid:
        return self._grid(self.ref.attn_decode(kv_dtype, heads, kv_heads, head_dim),
                          rl.attn_decode_roofline, heads, kv_heads, head_dim, kv_dtype)

    def stream_bw(self) -> float:
        return self.ref.stream_bw() * self.gpu.mem_bw_gbs / self.ref.gpu.mem_bw_gbs

    def gdn_measured(self) -> bool:
        return False

    def gdn_prefill(self, k_heads, key_dim, v_heads, value_dim) -> Grid | None:
        """The reference's Gated DeltaNet prefill, moved over by the ratio of the GPUs'
        BF16 peaks (the chunked rule is tensor-core matmuls on chunks)."""
        g = self.ref.gdn_prefill(k_heads, key_dim, v_heads, value_dim)
        if g is None:
            return None
        return g.scaled(rl.peak_flops(self.ref.gpu, "bf16") / rl.peak_flops(self.gpu, "bf16"))

    def mla_module(self) -> dict | None:
        return self.ref.mla_module()

    def attn_head_dims(self, kv_dtype: str) -> set | None:
        return self.ref.attn_head_dims(kv_dtype)

    def attn_kv_dtypes(self) -> set | None:
        return self.ref.attn_kv_dtypes()

    def dsa_module(self) -> dict | None:
        return self.ref.dsa_module()

    def mla(self, phase, kv_dtype, gemm, heads) -> tuple[Grid, str] | None:
        """The reference GPU's measured MLA module moved over by the ratio of the module's
        attention rooflines (the roofline its unmeasured cells are filled from)."""
        return self._module("mla", phase, kv_dtype, gemm, heads)

    def dsa(self, phase, kv_dtype, gemm, heads) -> tuple[Grid, str] | None:
        """The reference GPU's measured DSA module, moved over as `mla` moves the MLA one."""
        return self._module("dsa", phase, kv_dtype, gemm, heads)

    def _module(self, kind, phase, kv_dtype, gemm, heads) -> tuple[Grid, str] | None:
        got = getattr(self.ref, kind)(phase, kv_dtype, gemm, heads)
        if got is None:
            return None
        grid, used = got
        m = getattr(self.ref, f"{kind}_module")()
        kvb = rl.KV_BYTES[kv_dtype if kv_dtype in rl.KV_BYTES else "bf16"]
        bb, ss = np.meshgrid(grid.b, grid.s, indexing="ij")
        if phase == "decode":
            args = (heads, 1, m["kv_lora_rank"] + m["qk_rope_head_dim"])
            roof = rl.attn_decode_roofline
        else:
            args = (heads, heads, m["qk_nope_head_dim"] + m["qk_rope_head_dim"])
            roof = rl.attn_prefill_roofline
        ratio = roof(bb, ss, *args, self.gpu, kvb) / roof(bb, ss, *args, self.ref.gpu, kvb)
        return grid.scaled(ratio), used

    def moe(self, dtype, hidden, inter, topk, experts, moe_tp, moe_ep, gated=True) -> Curve:
        key = (dtype, hidden, inter, topk, experts, moe_tp, moe_ep, gated)
        if key not in self._moe_memo:
            self._moe_memo[key] = self._moe(dtype, hidden, inter, topk, experts, moe_tp, moe_ep,
                                            gated)
        return self._moe_memo[key]

    def _moe(self, dtype, hidden, inter, topk, experts, moe_tp, moe_ep, gated) -> Curve:
        """`moe`, made (once per shape)."""
        src = self._src(dtype)  # (as for GEMMs)
        c = self._base(dtype).moe(src, hidden, inter, topk, experts, moe_tp, moe_ep, gated)
        shape = (hidden, inter, topk, experts, moe_tp, moe_ep)
        c = c.scaled(rl.moe_roofline(c.x, *shape, dtype, self.gpu, gated)
                     / rl.moe_roofline(c.x, *shape, src, self.ref.gpu, gated))
        y = np.maximum.accumulate(c.y)  # (the ratio's regimes change at different tokens)
        return Curve(c.x, sustained(
            y, rl.moe_flops(c.x, hidden, inter, topk, moe_tp, moe_ep, gated), dtype, self.gpu))


class Partial:
    """Answers for a GPU whose own tables (`own`) hold only some operator families: GEMMs,
    attention and the streaming bandwidth from them; MoE layers, collectives and the MLA / DSA
    attention modules from `own` when it has those tables, else from `ref` (another GPU's
    tables moved over by the roofline ratio). The label names both sources."""

    calibrated = True

    def __init__(self, own: Kernels, ref: Transferred):
        self.own, self.ref, self.gpu = own, ref, own.gpu
        lacks = [n for n, t in (("MoE", "moe"), ("all-reduce", "allreduce"), ("NCCL", "nccl"))
                 if not own.has(t)]
        self.label = own.label + (f"; {', '.join(lacks)}: {ref.label}" if lacks else "")

    def gemm(self, dtype, n, k) -> Curve:
        return self.own.gemm(dtype, n, k)

    def gemm_note(self, dtype: str) -> str:
        return self.own.gemm_note(dtype)

    def moe_note(self, dtype: str) -> str:
        """'' when the GPU's own MoE table measured `dtype` (or the label already names the
        reference for every MoE layer), else that `dtype`'s layers come from the reference."""
        got = self.own.moe_measured()
        if not got or dtype in got:
            return ""
        return f"; {dtype} MoE: {self.ref.label}"

    def attn_prefill(self, kv_dtype, heads, kv_heads, head_dim) -> Grid:
        return self.own.attn_prefill(kv_dtype, heads, kv_heads, head_dim)

    def attn_decode(self, kv_dtype, heads, kv_heads, head_dim) -> Grid:
        return self.own.attn_decode(kv_dtype, heads, kv_heads, head_dim)

    def stream_bw(self) -> float:
        return self.own.stream_bw()

    def gdn_measured(self) -> bool:
        return self.own.has("gdn_prefill")

    def gdn_prefill(self, k_heads, key_dim, v_heads, value_dim) -> Grid | None:
        src = self.own if self.gdn_measured() else self.ref
        return src.gdn_prefill(k_heads, key_dim, v_heads, value_dim)

    def _module_src(self, kind: str):
        """Where `kind` (`mla` / `dsa`) module tables come from: `own` when it has both."""
        own = self.own.lists(f"{kind}_prefill") and self.own.lists(f"{kind}_decode")
        return self.own if own else self.ref

    def module_note(self, kind: str) -> str:
        """'' when the GPU's own tables hold the `kind` (`mla` / `dsa`) attention module, else
        where a model timed from that module gets it (for its calibration label)."""
        if self._module_src(kind) is self.own:
            return ""
        return f"; {kind.upper()} modules: {self.ref.label}"

    def mla_module(self) -> dict | None:
        return self._module_src("mla").mla_module()

    def attn_head_dims(self, kv_dtype: str) -> set | None:
        return self.own.attn_head_dims(kv_dtype)

    def attn_kv_dtypes(self) -> set | None:
        return self.own.attn_kv_dtypes()

    def moe_shapes(self, dtype: str) -> set | None:
        return self.own.moe_shapes(dtype) if self.own.moe_measured() & {dtype} else None

    def mla(self, phase, kv_dtype, gemm, heads) -> tuple[Grid, str] | None:
        return self._module_src("mla").mla(phase, kv_dtype, gemm, heads)

    def dsa_module(self) -> dict | None:
        return self._module_src("dsa").dsa_module()

    def dsa(self, phase, kv_dtype, gemm, heads) -> tuple[Grid, str] | None:
        return self._module_src("dsa").dsa(phase, kv_dtype, gemm, heads)

    def allreduce(self, tp, graph) -> Curve:
        return (self.own if self.own.has("allreduce") else self.ref).allreduce(tp, graph)

    def allreduce_fused(self, tp) -> Curve | None:
        return self.own.allreduce_fused(tp)

    def measures_fused_allreduce(self) -> bool:
        return self.own.measures_fused_allreduce()

    def nccl(self, op, tp) -> Curve:
        if self.own.has("nccl") or self.own.has("allreduce"):
            return self.own.nccl(op, tp)
        return self.ref.nccl(op, tp)

    def moe(self, dtype, hidden, inter, topk, experts, moe_tp, moe_ep, gated=True) -> Curve:
        """From the GPU's own MoE table for a precision it measured, else from the reference
        (whose tables measure the other precisions' kernels)."""
        src = self.own if self.own.moe_dtypes() & {dtype} else self.ref
        return src.moe(dtype, hidden, inter, topk, experts, moe_tp, moe_ep, gated)


def bound_note(kernels, dtype: str, what: str = "GEMMs") -> str:
    """The calibration label's words on the sustained-rate bound of `dtype`'s kernels on
    `kernels`' GPU: its own measured rate, or the share of peak a reference GPU's rate carries
    over to a GPU timed from that GPU's tables; '' when neither bounds them."""
    gpu = kernels.gpu
    math = rl.math_on(gpu, dtype)
    own = rl.sustained_flops(gpu, dtype)
    if own:
        return f"; {what} at most {own / 1e12:,.0f} TFLOP/s ({math}, sustained at the power limit)"
    if isinstance(kernels, Transferred):
        src = kernels._src(dtype)
        ref = rl.sustained_flops(kernels.ref.gpu, src)
        if ref:
            carried = ref / rl.peak_flops(kernels.ref.gpu, src) * rl.peak_flops(gpu, dtype)
            return (f"; {what} at most {carried / 1e12:,.0f} TFLOP/s ({math}, "
                    f"{kernels.ref.gpu.name}'s sustained share of peak)")
    return ""


@cache
def loop_timed(kernels):
    """`short_loop(kernels)` without the HBM floor either (`Kernels.hbm_floor`): times as a
    loop over one kernel measures them, small weights read from L2 where they fit — what a
    held-out kernel timing made that way is compared with (`wrpsim.validate.kernels`). One
    object per `kernels` (cached)."""
    free = short_loop(kernels)
    if isinstance(free, Kernels):
        return Kernels(free.dir, free.gpu, free.label, hbm_floor=False,
                       moe_table=free.moe_table)
    if isinstance(free, Transferred):
        return Transferred(loop_timed(free.ref), free.gpu)
    return Partial(loop_timed(free.own), loop_timed(free.ref))


@cache
def short_loop(kernels):
    """`kernels` without the sustained-rate bound (`sustained`), its reference GPU's included:
    times as the tables' short loops measured them, to compare with other kernel timings made
    the same way (the held-out tables of `wrpsim.validate.kernels`) and to take apart a
    measured module (`attention.mla_module_grids`). `kernels` itself where no GPU in it
    has a sustained rate; one object per `kernels` (cached)."""
    g = kernels.gpu
    free = (dataclasses.replace(g, bf16_sustained_tflops=0.0, fp8_sustained_tflops=0.0)
            if g.bf16_sustained_tflops or g.fp8_sustained_tflops else g)
    if isinstance(kernels, Kernels):
        return kernels if free is g else Kernels(kernels.dir, free, kernels.label,
                                                 moe_table=kernels.moe_table)
    if isinstance(kernels, Transferred):
        ref = short_loop(kernels.ref)
        return kernels if ref is kernels.ref and free is g else Transferred(ref, free)
    own, ref = short_loop(kernels.own), short_loop(kernels.ref)
    return kernels if own is kernels.own and ref is kernels.ref else Partial(own, ref)
