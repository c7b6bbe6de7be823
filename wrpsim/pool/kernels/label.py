"""The calibration label of a `KernelLatency`: what its numbers rest on, in one line.

Every output that uses a latency model carries this label (`wrpsim.perf`'s `calibration`, a
run's summary, the planner's report), so a user can tell a measured kernel from a number moved
over from another GPU or taken from a roofline. In order: the kernel source's own label (its
tables and their vLLM version, or "uncalibrated: roofline"), what the source says of the pool's
GEMM and MoE precisions, the GPU's sustained-rate bounds, block-FP8 layers floored at BF16 (an
engine setting), a KV dtype or attention head widths the tables did not measure, the
all-reduce + RMSNorm fusion, a power shape copied from another GPU, data-parallel ranks
stalling async scheduling (an engine setting), another GPU's MLA / DSA module, an unmeasured
MoE shape, and how a Gated DeltaNet or DeepSeek Sparse Attention layer is timed.
"""

from __future__ import annotations

from wrpsim.pool.kernels import attention, operators
from wrpsim.pool.kernels import roofline as rl


def calibration(lat, moe_shape_measured: bool) -> str:
    """The label of the latency model `lat`, built (its precomputed state adopted);
    `moe_shape_measured`: whether the MoE table measured the model's expert shape
    (`operators.moe_shape_measured`, decided with the cached curves)."""
    from wrpsim.pool.kernels.borrowed import bound_note

    m, k, power = lat.model, lat.kernels, lat._power
    note, moe_note = getattr(k, "gemm_note", None), getattr(k, "moe_note", None)
    bound = bound_note(k, lat.dense_dtype)
    if m.moe and rl.math_on(lat.gpu, lat.moe_dtype) != rl.math_on(lat.gpu, lat.dense_dtype):
        bound += bound_note(k, lat.moe_dtype, "MoE layers")
    if operators.fp8_block_floored(lat, lat.dense_dtype) or operators.fp8_block_floored(
            lat, lat.moe_dtype):
        bound += "; block-FP8 layers no faster than BF16 (engine setting)"
    bound += attention.head_dim_note(lat)
    out = k.label + (note(lat.dense_dtype) if note else "") + (
        moe_note(lat.moe_dtype) if moe_note and m.moe else "") + bound + (
        f"; all-reduce fused with RMSNorm up to {operators.fusion_mb(lat):g} MiB "
        "(FlashInfer)" if lat.coll_tp > 1 and operators.fusion_mb(lat) > 0 else "") + (
        f"; power shape copied from {power.copied_from}"
        if power is not None and power.copied_from else "")
    if lat.adp > 1 and lat.c.dp_sync_stalls_async and lat.schedule_lag:
        out += "; data-parallel ranks' per-step sync stalls async scheduling (engine setting)"
    if lat.adp > 1 and m.moe and lat.c.moe_all2all:
        out += "; MoE tokens moved all-to-all (engine setting)"
    module_note = getattr(k, "module_note", None)
    if module_note is not None and lat._mla_tables:  # (another GPU's module: say so)
        out += module_note("dsa" if lat._dsa_tables else "mla")
    if not moe_shape_measured:
        out += (f"; MoE shape ({m.experts} experts of {m.intermediate}, top "
                f"{m.active_experts}, hidden {m.expert_hidden}) not measured: the nearest "
                f"measured shape by the roofline ratio")
    if m.gated_delta:
        own = getattr(k, "gdn_measured", lambda: False)()
        out += ("; Gated DeltaNet prefill as its scan's bytes (no kernel table)"
                if lat._gdn is None else "; Gated DeltaNet prefill from its measured kernels"
                if own else "; Gated DeltaNet prefill from another GPU's measured kernels by "
                "the BF16-peak ratio")
    if lat._dsa_tables:
        out += ("; sparse attention (DSA) from its measured module: indexer and sparse "
                "kernels fitted per key, per pair")
    elif m.dsa:  # nothing of DeepSeek Sparse Attention measured: how it is timed
        out += (f"; sparse attention (DSA), uncalibrated: prefill from FLOPs and bytes at "
                f"FlashMLA's published rate, {attention.sparse_mla_heads(lat)} heads a GPU, "
                f"decode as dense MLA over {m.index_topk} keys, indexer by roofline")
    return out
