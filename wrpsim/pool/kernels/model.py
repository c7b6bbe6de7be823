"""`KernelLatency`: an iteration's time as the sum of its operators, timed from kernel tables.

One iteration of a model replica on `tp` GPUs processes T tokens (prompt chunks plus one token
per decoding sequence) for m sequences. Its GPU time is, per GPU (all terms in seconds):

    linear(T)      every projection GEMM of every layer at m = T (QKV / MLA factors, O, dense
                   FFN, shared experts, router, Mamba in/out projections), timed from the GEMM
                   table in the pool's precision; the fused MoE layers from the MoE table
    allreduce(T)   one all-reduce of T x hidden BF16 values after every attention, Mamba and FFN
                   block (tp > 1), from vLLM's custom all-reduce table: in a CUDA graph when
                   T <= `cudagraph_max_tokens`, eagerly (with its buffer copy) above; with
                   `allreduce_fusion` (vLLM's all-reduce + RMSNorm fusion) one up to its size
                   limit from the TensorRT-LLM all-reduce table FlashInfer's fused kernel
                   runs (the norm's traffic stays in stream(T): conservative) (NCCL's
                   all-reduce for tp > 2 on PCIe-only GPUs, where vLLM turns it off). With
                   expert parallelism (ep > 1) and tensor-parallel attention the tokens are
                   on every GPU already and each GPU's experts' outputs are all-reduced like
                   any block's (vLLM's FusedMoE: no dispatch without data parallelism); with
                   data-parallel attention (`attn_dp`) an MoE layer gathers its tokens and
                   scatters the expert outputs (NCCL all-gather + reduce-scatter of T x
                   hidden), or moves them all-to-all (`moe_all2all`) — over the GPUs of one
                   server when the group spans servers (the inter-server part then crosses
                   the fabric: `wrpsim.pool.spanning`)
    stream(T)      the element-wise kernels (residual + RMSNorm, RoPE, KV-cache write,
                   activation, SSM scan) move bytes_per_token x T bytes at the GPU's measured
                   streaming bandwidth (`Kernels.stream_bw`)
    attention      prefill attention of the chunks and decode attention of the decoding
                   sequences, per attention layer, from the attention tables (sliding-window
                   layers see at most `sliding_window` tokens, a DeepSeek Sparse Attention
                   layer its `index_topk` picked keys: as a window of that many, its KV kept
                   whole); an MLA model of DeepSeek-V3's latent shape grows over batch and
                   length as the measured MLA module does (`attention.mla_module_grids`; the
                   module's RoPE and KV-cache write then leave stream); the grids are built
                   once per model (`wrpsim.pool.kernels.attention`)
    indexer        a DSA model's lightning indexer scores every cached key of every query
                   (`attention.indexer_costs`: its FLOPs at the FP8 GEMM table's
                   compute-bound rate, its key cache and FP32 logits at the streaming
                   bandwidth), and its prefill attention is DeepSeek's sparse kernel over
                   every query's top-k slots (FP8 KV) or picked keys (BF16 KV)
                   (`attention.sparse_prefill_pair_s`, heads padded as vLLM pads them); both
                   are counted in the attention terms of `breakdown`; its projections are in
                   linear(T). Where the GPU's tables measured DeepSeek-V3.2's attention
                   module (H100, H200, B200) the indexer's two costs, the sparse kernel's and
                   the decode grid come from it instead (`attention.dsa_fit`: least-squares
                   fits of those terms to the measured module)
    linear attn.   a Gated DeltaNet model's (Qwen3-Next, Qwen3.5) prompt chunks: the measured
                   causal convolution and chunked delta rule of that many fresh prompts of
                   their mean length (`_gdn_prefill`, the breakdown's `linear_attention`;
                   its scan then leaves stream(T)); without a table, the scan's bytes
    head(m)        the LM head GEMM at m (vLLM computes logits for the last token of every
                   scheduled sequence) and sampling: `sampling_floor_us` (the sampler's few
                   kernels' minimum durations) plus `sampling_passes` passes over m x vocab
                   FP32 logits at the streaming bandwidth; both measured on an H200 for vLLM's
                   sampler at temperature > 0 without top-k / top-p, its default
                   (`docs/experiments/device_sampler.py`)
    layer floor    `layer_overhead_us` per layer: the minimum duration and launch gaps of a
                   layer's small kernels inside a CUDA graph, which do not scale with tokens
    eager launch   with `cudagraph_mixed` = 0 (vLLM's FULL_DECODE_ONLY mode, no piecewise
                   graphs) an iteration holding a prompt chunk runs outside any CUDA graph and
                   its kernels are launched one by one by the CPU: the GPU cannot finish before
                   the CPU has launched every layer, so it takes at least `eager_layer_us` per
                   layer. (Iterations above `cudagraph_max_tokens` in piecewise mode are not
                   bounded so: the measured runs in that mode show no such floor.)

and the CPU time of the engine is `iter_overhead_us + seq_overhead_us x m` (scheduling, input
preparation, output processing). With `async_scheduling` the CPU prepares the next iteration
while the GPU runs this one, so an iteration takes max(GPU, CPU); otherwise GPU + CPU. (The
schedule for the next iteration is then fixed before this one ends: a request arriving now
joins the iteration after next, `LatencyModel.schedule_lag`.) Before
the engine sees a request, its API server spends `frontend_us + frontend_us_per_token x prompt
tokens` on it (HTTP, tokenization): `frontend_s`, added to the request's TTFT; the per-token
part and `frontend_us_serial` of the fixed part are the API server's CPU work and queue there,
one request at a time (`wrpsim.pool.frontend`).

Only these overheads are engine constants fitted end to end
(`wrpsim.calibrate`); every other term is a measured kernel time (a DSA model's per-key and
per-pair constants least-squares fits to its measured module) or a byte count from the
model's config.json numbers. Per-token terms are precomputed per instance for T up to
`max_tokens` (array lookups in the hot loop); larger T is evaluated from the same curves. The
precomputed curves are cached across processes (`wrpsim.pool.kernels.precomputed`).

`KernelLatency` holds what runs per iteration (its hot path, compiled) and delegates the rest,
one concept per module of this package, mostly run once per model: `operators` (the per-token
terms: GEMMs, MoE, all-reduce, dispatch, element-wise traffic, LM head and sampling; also per
iteration for T beyond `max_tokens` and for a data-parallel-attention step with prompt
chunks), `attention` (the attention grids and a DSA or Gated DeltaNet model's constants),
`sizes` (KV and weight bytes per GPU, KV capacity), `power` (watts from utilisation),
`precomputed` (computing the curves once, cached) and `label` (the calibration label).

The module is compiled with the event loop (`wrpsim._native`): `KernelLatency` is then an
extension type (`model.pxd`) whose hot methods read its attributes as struct fields and call
each other as C functions, with the same float operations in the same order (byte-identical
results). An extension type cannot derive from the ABC `LatencyModel`: `KernelLatency` defines
the whole contract itself and is registered as its virtual subclass.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from dataclasses import dataclass

import numpy as np

from wrpsim.errors import ConfigError
from wrpsim.pool.kernels import attention, label, operators, precomputed, sizes
from wrpsim.pool.kernels.power import bound_s, work_constants
from wrpsim.pool.latency import LatencyModel

#: precisions of a pool: GEMM dtype of the dense layers and of the routed experts. The three
#: MXFP4 entries are one checkpoint (MXFP4 experts, BF16 elsewhere, e.g. gpt-oss) under the
#: three expert kernels vLLM can run it with: `mxfp4` its default (BF16 activations), and the
#: ones its environment switches select, `mxfp4_marlin` (VLLM_MXFP4_USE_MARLIN=1) and
#: `mxfp4_mxfp8` (VLLM_USE_FLASHINFER_MOE_MXFP4_MXFP8=1, MXFP8 activations, Blackwell)
PRECISIONS = {"bf16": ("bf16", "bf16"), "fp8": ("fp8", "fp8"),
              "fp8_block": ("fp8_block", "fp8_block"), "fp4": ("fp4", "fp4"),
              "mxfp4": ("bf16", "mxfp4"), "mxfp4_marlin": ("bf16", "mxfp4_marlin"),
              "mxfp4_mxfp8": ("bf16", "mxfp4_mxfp8"), "int4": ("bf16", "int4"),
              "fp4_attn_bf16": ("fp4", "fp4")}
#: precisions whose attention projections keep another dtype than the rest of the dense layers:
#: NVIDIA's ModelOpt NVFP4 releases of MoE models leave every layer's `self_attn*` out of
#: NVFP4 (their hf_quant_config.json `exclude_modules`: nvidia/Kimi-K2.5-NVFP4,
#: MiniMax-M2.5-NVFP4, GLM-5.x-NVFP4; DeepSeek-V3.1-NVFP4 all but o_proj), so those stay BF16
#: while the experts, shared experts and dense MLPs are NVFP4
ATTENTION_DTYPES = {"fp4_attn_bf16": "bf16"}
KV_DTYPES = ("auto", "bf16", "fp8")
#: bytes per element of a Mamba layer's SSM state by vLLM's `--mamba-ssm-cache-dtype`
#: (`auto`: the checkpoint's `mamba_ssm_cache_dtype` — `mamba_ssm_dtype` for Qwen3.5 — where
#: its config.json names one, as vLLM takes it for Nemotron-H and Qwen3.5 — float32 for
#: Nemotron 3 and Qwen3.5 — else the model's BF16; vLLM's own
#: spellings `bfloat16` / `float32` are accepted too)
MAMBA_SSM_DTYPES = {"auto": 2.0, "bf16": 2.0, "fp32": 4.0, "bfloat16": 2.0, "float32": 4.0}


@dataclass(frozen=True)
class EngineConstants:
    """The per-iteration constants of an engine version (fitted end to end, see module doc)."""

    iter_overhead_us: float = 0.0
    seq_overhead_us: float = 0.0
    layer_overhead_us: float = 0.0
    frontend_us: float = 0.0
    frontend_us_per_token: float = 0.0
    #: bytes the sampler moves per logit, in 4-byte passes over m x vocab FP32 logits, and
    #: the floor its kernels take at any m: measured, not fitted (`device_sampler.py`)
    sampling_passes: float = 3.0
    sampling_floor_us: float = 0.0
    async_scheduling: bool = True
    cudagraph_max_tokens: int = 512
    cudagraph_mixed: int = 1
    eager_layer_us: float = 0.0
    #: API-server CPU time per output token it streams (detokenizing, the SSE chunk); fitted
    frontend_us_per_stream_token: float = 0.0
    #: the part of `frontend_us` that is the API server's own CPU per request (HTTP parsing,
    #: request validation, chat template), done one request at a time in its one process and
    #: so queued behind the requests ahead (`wrpsim.pool.frontend`); at most `frontend_us`
    frontend_us_serial: float = 0.0
    #: a disaggregated hand-off's orchestration (`HandoffMixin._handoff`): the seconds x 1e6
    #: from a prompt's end on its prefill instance until its decode engine pulls the KV, spent
    #: outside the GPUs' steps — the prefill engine's answer through the router, the router's
    #: second dispatch, the decode engine's scheduling of the pull at its step boundaries and
    #: the connector's notifications (vLLM's NixlConnector pulls after the prompt); fitted
    #: (`serialized` hand-offs only: a layer-wise push is arranged before the prompt ends)
    handover_us: float = 0.0
    #: engine setting, not fitted: the dtype of the Mamba SSM state (`MAMBA_SSM_DTYPES`);
    #: it sets the state's memory and the bytes every decode step reads and writes
    mamba_ssm_dtype: str = "auto"
    #: engine property, not fitted: its block-FP8 layers (128 x 128 weight scales, activations
    #: quantised per 128-group) run no faster than its BF16 ones, so a `fp8_block` GEMM or MoE
    #: layer takes the longer of the tables' block-FP8 and BF16 times (`operators.fp8_block_floor`).
    #: vLLM 0.11 ran them through its Triton fused-MoE and block matmul kernels: the same
    #: model measured in both precisions decodes no faster in FP8 (docs/validation.md)
    fp8_block_no_faster_than_bf16: bool = False
    #: engine property, not fitted: with data-parallel attention (`attn_dp` > 1) its ranks
    #: agree on their token counts before every forward pass (an all-reduce: NCCL, a GPU
    #: sync, until vllm-project/vllm#29311; then a CPU Gloo all-reduce, whose bubbles
    #: vllm-project/vllm#32140 and #44636 measure), which stalls async scheduling: an
    #: iteration then takes its GPU time plus its CPU time, as without async scheduling (the
    #: schedule is still fixed one iteration ahead)
    dp_sync_stalls_async: bool = False
    #: engine setting, not fitted: vLLM fuses each all-reduce with the RMSNorm after it
    #: (`pass_config.fuse_allreduce_rms`, FlashInfer's TensorRT-LLM kernel; on by default at
    #: -O2 since vLLM 0.16 on Hopper and Blackwell with TP > 1, vllm-project/vllm#34299): an
    #: all-reduce whose bf16 input is at most `allreduce_fusion_mb` MiB runs as that kernel,
    #: in a CUDA graph or not (`Kernels.allreduce_fused`, its norm in the kernel's epilogue);
    #: a larger one as vLLM's custom all-reduce. Where the GPU's tables do not measure the
    #: kernel, or the group spans servers, it is off (`engines._fusion`)
    allreduce_fusion: bool = False
    #: its size limit in MiB (vLLM's `fi_allreduce_fusion_max_size_mb`); 0: the engine's
    #: default for the GPU and the all-reduce group (`gpus.<gpu>.allreduce_fusion_mb`, vLLM's
    #: FI_ALLREDUCE_FUSION_MAX_SIZE_MB by compute capability and world size)
    allreduce_fusion_mb: float = 0.0
    #: engine setting, not fitted: MoE layers run vLLM's Triton fused-MoE kernel
    #: (`fused_experts`) for BF16, FP8 and block-FP8 experts, timed from the GPU's
    #: `moe_triton` table (`engines._moe_kernel`), not the engine's default kernel. vLLM took
    #: FlashInfer's BF16 experts on Blackwell in 2026-01 (vllm-project/vllm#32954) and its FP8
    #: ones behind `VLLM_USE_FLASHINFER_MOE_FP8`, so vLLM 0.11 ran Triton there; a newer vLLM
    #: runs it with `VLLM_USE_FLASHINFER_MOE_FP16=0` / `VLLM_USE_FLASHINFER_MOE_FP8=0` and
    #: `VLLM_MOE_USE_DEEP_GEMM=0`
    moe_triton: bool = False
    #: engine setting, not fitted: with data-parallel attention (`attn_dp` > 1) the MoE
    #: layers move each token only to the GPUs that hold its experts and back, point to point
    #: (vLLM's `--all2all-backend` deepep_*, pplx or flashinfer_*; SGLang's DeepEP), timed from
    #: the NCCL all-to-all table (`operators.dispatch_s`), instead of gathering every token on
    #: every GPU and reduce-scattering the outputs (vLLM's default, allgather_reducescatter)
    moe_all2all: bool = False


def attn_dp_divides(tp: int, attn_dp) -> bool:
    """Whether `attn_dp` is an integer >= 1 (not a bool) that divides the integer `tp`: the
    rule `KernelLatency` checks, with its one-line error, and `engines` asks before it."""
    return (not isinstance(attn_dp, bool) and isinstance(attn_dp, int) and attn_dp >= 1
            and tp % attn_dp == 0)


_GRID: list = [np.zeros(0), np.zeros(0)]


def _step_grid(n: int) -> tuple[np.ndarray, np.ndarray]:
    """(k, k (k - 1) / 2) for k = 1..n, as views of arrays grown by doubling (shared, never
    written)."""
    k = _GRID[0]
    if len(k) < n:
        k = np.arange(1, max(n, 2 * len(k), 1024) + 1, dtype=np.float64)
        k.flags.writeable = False
        tri = k * (k - 1) / 2.0
        tri.flags.writeable = False
        _GRID[:] = [k, tri]
    return _GRID[0][:n], _GRID[1][:n]


class KernelLatency:
    """A `LatencyModel` (registered as a virtual subclass: compiled, the class is an extension
    type, which cannot derive from that ABC; it defines every method of the contract itself).

    Iteration times of `model` on `tp` x `gpu` from `kernels` (a `tables.Kernels` or
    `borrowed.Transferred`), with an engine's `constants` (see the module docstring).

    `precision`: one of `PRECISIONS` (weights and GEMMs); `kv_dtype`: `auto` (BF16), `bf16` or
    `fp8`; `ep`: 1 (experts sharded by tensor parallelism) or `tp` (whole experts distributed
    over the instance's GPUs, vLLM's expert parallelism). Power is given by `power` (a
    `wrpsim.pool.kernels.power.PowerModel`) or, when None, by a constant TDP/idle split.
    `scaleup`: GPUs of one server when the group spans servers (`wrpsim.pool.spanning`): the
    all-reduce term then covers only the intra-server part, a collective over `scaleup` GPUs
    (the inter-server part runs on the fabric); None: the whole group is one server.

    `attn_dp`: data-parallel attention (vLLM `--data-parallel-size attn_dp` with
    `--tensor-parallel-size tp / attn_dp` and expert parallelism; SGLang's DP attention): the
    instance's `tp` GPUs form `attn_dp` groups of `tp / attn_dp` GPUs; each group runs
    attention, the dense layers and the LM head, tensor-parallel inside the group, for its own
    share of the sequences and holds their KV cache (the instance holds `attn_dp` times one
    group's KV); the MoE layers run on all `tp` GPUs (experts spread by `ep` = tp, or sharded
    by tensor parallelism with `ep` = 1) over every token of the instance, gathered from and
    scattered back to the groups (NCCL all-gather + reduce-scatter). The ranks step in lock
    step, so an iteration lasts as long as its busiest group: the instance's sequences are
    taken as spread evenly, the busiest group holding ceil(n / attn_dp) of n. Each group's
    engine core has its own CPU, so the per-sequence CPU time is over the group's share."""

    # Every attribute is a slot, declared in `model.pxd`: compiled, the class is an extension
    # type whose hot methods read them as struct fields and call each other as C functions;
    # pure Python, the hot loop reads them through CPython's type-level specialisations (as
    # instance-dict entries, more than the 30 a shared-key dict holds, they were dict-hint
    # look-ups tied to one model object's dict, which miss for the next model a process builds:
    # a sweep, a benchmark's repeats). (`engine` is set by `wrpsim.pool.engines`, `_work_c` by
    # `power.work_constants`; other attributes a caller adds go to the instance dict.)
    __slots__ = (
        "__dict__",
        "_async",
        "_cpu0",
        "_cpu_seq",
        "_dec",
        "_dec_f",
        "_dec_power",
        "_dec_rows",
        "_dec_s",
        "_dec_sl",
        "_dsa",
        "_dsa_pair",
        "_dsa_pick",
        "_dsa_tables",
        "_eager",
        "_floor",
        "_gdn",
        "_gdn_rows",
        "_gdn_sl",
        "_graph_mixed",
        "_has_bound",
        "_head",
        "_head_bound",
        "_head_list",
        "_idx_dec",
        "_idx_k",
        "_idx_pre",
        "_layers_total",
        "_lin",
        "_lin_bound",
        "_lin_list",
        "_mamba_dec",
        "_mla_tables",
        "_n_full",
        "_n_gdn",
        "_n_slide",
        "_power",
        "_power_c",
        "_pre",
        "_pre_f",
        "_pre_rows",
        "_pre_s",
        "_run_consts",
        "_split",
        "_stream",
        "_window",
        "_work_c",
        "adp",
        "atp",
        "attn_dtype",
        "c",
        "calibration",
        "coll_tp",
        "dense_dtype",
        "engine",
        "ep",
        "gpu",
        "kernels",
        "kv_dtype",
        "mamba_state_bytes",
        "max_tokens",
        "model",
        "moe_dtype",
        "precision",
        "schedule_lag",
        "tp",
    )

    def __init__(self, model, gpu, tp: int, kernels, constants: EngineConstants,
                 precision: str = "bf16", kv_dtype: str = "auto", ep: int = 1,
                 max_tokens: int = 16384, power=None, scaleup: int | None = None,
                 attn_dp: int = 1):
        rule = model.tp_rule(domain=gpu.scaleup_gpus)
        if isinstance(tp, bool) or not isinstance(tp, int) or tp < 1:
            raise ConfigError(f"tp must be an integer >= 1 that {rule}; got {tp!r}")
        if not attn_dp_divides(tp, attn_dp):
            raise ConfigError(f"attn_dp must be an integer >= 1 that divides tp ({tp}), "
                              f"got {attn_dp!r}")
        atp = tp // attn_dp
        if not model.fits_tp(atp):
            if attn_dp == 1:
                raise ConfigError(f"tp must be an integer >= 1 that {rule}; got {tp!r}")
            raise ConfigError(f"tp / attn_dp ({atp}) must be a value that {rule}")
        if attn_dp > 1 and not model.moe:
            raise ConfigError(f"attn_dp > 1 needs a mixture-of-experts model; {model.name} is "
                              f"dense: run data-parallel replicas as separate instances (count)")
        if attn_dp > 1 and scaleup is not None:
            raise ConfigError(f"attn_dp > 1 with a group of tp={tp} spanning servers is not "
                              f"modelled; keep the instance within one server")
        if precision not in PRECISIONS:
            from wrpsim.errors import unknown_choice

            raise unknown_choice("precision", precision, PRECISIONS)
        if kv_dtype not in KV_DTYPES:
            from wrpsim.errors import unknown_choice

            raise unknown_choice("kv_dtype", kv_dtype, KV_DTYPES)
        if ep not in (1, tp):
            raise ConfigError(f"ep must be 1 or equal to tp ({tp}), got {ep!r}")
        if ep > 1 and not model.moe:
            raise ConfigError(f"ep > 1 needs a mixture-of-experts model; {model.name} is dense")
        self.model, self.gpu, self.tp, self.ep = model, gpu, tp, ep
        #: data-parallel attention groups and the tensor-parallel size inside one
        self.adp, self.atp = attn_dp, atp
        self.coll_tp = atp if scaleup is None else min(tp, scaleup)  # all-reduce group on NVLink
        self.kernels, self.c = kernels, constants
        self.precision, self.kv_dtype = precision, ("bf16" if kv_dtype == "auto" else kv_dtype)
        self.dense_dtype, self.moe_dtype = PRECISIONS[precision]
        #: the attention projections' GEMM dtype (`ATTENTION_DTYPES`; else the dense one)
        self.attn_dtype = ATTENTION_DTYPES.get(precision, self.dense_dtype)
        self.max_tokens = max_tokens
        self._power = power
        self._power_c: tuple | None = None  # (power model, its constants): see `power_w`
        self._dec_power: dict = {}  # batch -> its terms of `decode_power_w`
        if constants.mamba_ssm_dtype not in MAMBA_SSM_DTYPES:
            from wrpsim.errors import unknown_choice

            raise unknown_choice("mamba_ssm_dtype", constants.mamba_ssm_dtype, MAMBA_SSM_DTYPES)
        #: bytes of Mamba state one sequence holds (all layers, whole instance)
        ssm = MAMBA_SSM_DTYPES[constants.mamba_ssm_dtype]
        if constants.mamba_ssm_dtype == "auto" and model.mamba_ssm_bytes:
            ssm = float(model.mamba_ssm_bytes)  # (vLLM's auto: the checkpoint's own dtype)
        self.mamba_state_bytes = model.mamba_state_bytes_at(ssm)
        m = model
        self._layers_total = m.attn_layers + m.mamba_layers + m.ffn_layers
        self._floor = self._layers_total * constants.layer_overhead_us * 1e-6
        self._eager = self._layers_total * constants.eager_layer_us * 1e-6
        self._graph_mixed = bool(constants.cudagraph_mixed)
        self.schedule_lag = bool(constants.async_scheduling)
        self._async = self.schedule_lag  # (`c.async_scheduling`, read as a struct field)
        if attn_dp > 1 and constants.dp_sync_stalls_async and self._async:
            self._async = False  # (the ranks' per-step sync: GPU + CPU, `EngineConstants`)
        self._cpu0 = constants.iter_overhead_us * 1e-6
        self._cpu_seq = constants.seq_overhead_us * 1e-6 / attn_dp  # each group's own CPU
        key = precomputed.model_key(self)
        curves = precomputed.load(key)
        if curves is None:
            curves = precomputed.compute(self)
            precomputed.store(key, curves)
        self._adopt(curves)
        self._dsa = bool(model.dsa)
        if self._dsa_tables:  # DSA from the measured module (`attention.dsa_fit`)
            (self._idx_dec, self._idx_pre, self._dsa_pair,
             self._dsa_pick) = (float(v) for v in curves["dsa_c"][1:])
        else:
            self._idx_dec, self._idx_pre = attention.indexer_costs(self)
            # the sparse kernel's FLOPs per top-k slot (FP8 KV: vLLM gathers and dequantizes
            # all of a query's slots) or per picked key (BF16 KV), as the measured modules
            # grow (`attention.dsa_fit`)
            pair = attention.sparse_prefill_pair_s(self)
            self._dsa_pair, self._dsa_pick = (pair, 0.0) if self.kv_dtype == "fp8" else (
                0.0, pair)
        self._dec_rows: dict = {}
        self._run_consts: dict = {}  # batch -> `_decode_run_consts`
        #: what the iteration times (and a power shape fitted on another GPU) rest on
        self.calibration = label.calibration(self, bool(curves["moe_shape_ok"]))

    # ------------------------------------------------------------------ sizes
    @property
    def kv_heads_per_gpu(self) -> int:
        """KV heads each GPU holds (replicated when tp exceeds the KV heads; MLA: 1 latent)."""
        return 1 if self.model.mla else math.ceil(self.model.kv_heads / self.atp)

    @property
    def full_kv_heads_per_gpu(self) -> int:
        """KV heads each GPU holds in a full-attention layer of its own shape (Gemma 4:
        `ModelSpec.split_attention`); `kv_heads_per_gpu` otherwise."""
        return (math.ceil(self.model.full_kv_heads / self.atp) if self.model.split_attention
                else self.kv_heads_per_gpu)

    @property
    def kv_bytes_per_token_per_gpu(self) -> float:
        """KV-cache bytes of one token on each GPU (`sizes.kv_bytes_per_token_per_gpu`)."""
        return sizes.kv_bytes_per_token_per_gpu(self)

    @property
    def weight_bytes_per_gpu(self) -> float:
        """Bytes of weights held by each GPU (`sizes.weight_bytes_per_gpu`)."""
        return sizes.weight_bytes_per_gpu(self)

    def reserve_gib(self, sched_seqs: int, token_budget: int) -> float:
        """GiB per GPU the KV cache leaves beside the weights unless a pool sets its own: vLLM's
        profiled reserve for a scheduler of `sched_seqs` sequences and `token_budget` tokens
        (`sizes.profile_reserve_gib`)."""
        return sizes.profile_reserve_gib(self, sched_seqs, token_budget)

    def kv_capacity_blocks(self, block_size: int, gpu_mem_util: float = 0.9,
                           reserve_gib: float | None = None, max_seqs: int = 0,
                           sched_seqs: int = 256, token_budget: int = 2048) -> int:
        """KV blocks per instance (`sizes.kv_capacity_blocks`: what the GPUs' memory leaves
        beside the weights, the reserve — `reserve_gib`, or where None vLLM's profiled one for
        a scheduler of `sched_seqs` sequences and `token_budget` tokens — and the Mamba state
        of `max_seqs` sequences)."""
        return sizes.kv_capacity_blocks(self, block_size, gpu_mem_util, reserve_gib, max_seqs,
                                        sched_seqs, token_budget)

    # ------------------------------------------------------------------ precomputed state
    def _adopt(self, c: dict) -> None:
        """Set the precomputed state from `precomputed.compute`'s result (or its cached copy)."""
        from wrpsim.pool.kernels.tables import Grid

        self._stream = float(c["stream"])
        self._mla_tables = bool(c["mla_tables"])
        self._dsa_tables = bool(c["dsa_c"][0])
        #: the fitted indexer's seconds per cached key of a decode step, per batch of the
        #: decode grid (`attention.dsa_fit`); None: per sequence, `_idx_dec`
        self._idx_k = c["dsa_k"] if len(c["dsa_k"]) else None
        # a Gated DeltaNet model's measured prefill kernels (`attention.gdn_table`), or None
        self._gdn = Grid(c["gdn_b"], c["gdn_s"], c["gdn_t"]) if len(c["gdn_b"]) else None
        self._gdn_rows: dict = {}
        self._gdn_sl = self._gdn.s.tolist() if self._gdn is not None else []
        self._n_gdn = self.model.mamba_layers if self._gdn is not None else 0
        self._lin, self._head = c["lin"], c["head"]
        self._lin_list = self._lin.tolist()
        self._head_list = self._head.tolist()
        self._lin_bound = c["lin_bound"].tolist()
        self._head_bound = c["head_bound"].tolist()
        self._has_bound = bool(np.any(c["lin_bound"]) or np.any(c["head_bound"]))
        m = self.model
        self._pre = Grid(c["pre_b"], c["pre_s"], c["pre_t"])
        self._dec = Grid(c["dec_b"], c["dec_s"], c["dec_t"])
        # the full-attention layers' grids: the same objects unless their attention has its
        # own shape (Gemma 4), so that every other model's arithmetic is unchanged
        self._split = bool(m.split_attention)
        self._pre_f = Grid(c["pre_b"], c["pre_s"], c["pre_f"]) if self._split else self._pre
        self._dec_f = Grid(c["dec_b"], c["dec_s"], c["dec_f"]) if self._split else self._dec
        self._n_slide = m.capped_layers  # sliding-window layers, or all of a DSA model's
        self._n_full = m.attn_layers - self._n_slide
        self._window = m.attn_cap
        self._pre_s = self._pre.s.tolist()
        self._dec_s = self._dec.s
        self._dec_sl = self._dec.s.tolist()
        self._pre_rows: dict = {}
        # a decoding sequence reads and writes its Mamba state once per iteration (over its
        # group's GPUs; with attn_dp the busiest group holds 1 / attn_dp of the sequences)
        self._mamba_dec = 2.0 * self.mamba_state_bytes / self.tp / self._stream

    # ------------------------------------------------------------------ attention
    def _group_seqs(self, batch: int) -> int:
        """Sequences of the busiest data-parallel attention group when the instance runs
        `batch`: ceil(batch / attn_dp) (all of them without `attn_dp`)."""
        return batch if self.adp == 1 else -(-batch // self.adp)

    def _dec_row(self, batch: int) -> tuple:
        """Decode-attention times over the context grid at `batch` sequences of the instance
        (array and list), then the full-attention layers' (array and list: the same objects
        unless they have their own shape, `_split`): the busiest group's (`_group_seqs`); then
        a DSA indexer's seconds per cached key of the step (0 without DSA)."""
        row = self._dec_rows.get(batch)
        if row is None:
            b = float(self._group_seqs(batch))
            r = self._dec.row(b)
            rl = r.tolist()
            idx = self._idx_dec * self._group_seqs(batch)
            if self._idx_k is not None:  # (the fitted indexer: per batch, `attention.dsa_fit`)
                from wrpsim.pool.kernels.tables import Grid

                idx = float(Grid(self._dec.b, self._dec.s[:1], self._idx_k[:, None]).row(b)[0])
            if self._split:
                f = self._dec_f.row(b)
                row = self._dec_rows[batch] = (r, rl, f, f.tolist(), idx)
            else:
                row = self._dec_rows[batch] = (r, rl, r, rl, idx)
        return row

    def _decode_attn(self, batch: int, ctx_per_seq: np.ndarray) -> np.ndarray:
        """Decode attention seconds (all attention layers) at per-sequence contexts (array)."""
        rows, s = self._dec_row(batch), self._dec_s
        row = rows[0]
        c = np.asarray(ctx_per_seq, dtype=np.float64)
        t = self._n_full * _interp_tail(c, s, rows[2])
        if self._n_slide:
            t = t + self._n_slide * _interp_tail(np.minimum(c, self._window), s, row)
        if self._idx_dec:  # DSA: the indexer scores every cached key
            t = t + rows[4] * c
        return t + self._mamba_dec * batch

    def _decode_attn1(self, batch: int, c: float) -> float:
        """`_decode_attn` at one context, in plain floats (the hot path)."""
        rows = self._dec_row(batch)
        row = rows[1]
        s = self._dec_sl
        t = self._n_full * _interp1(c, s, rows[3])
        if self._n_slide:
            w = self._window
            t += self._n_slide * _interp1(c if c < w else float(w), s, row)
        if self._idx_dec:  # DSA: the indexer scores every cached key
            t += rows[4] * c
        return t + self._mamba_dec * batch

    def _prefill_attn(self, seqs: int, tokens: int, pairs: float) -> float:
        """Prefill attention seconds (all attention layers) of `seqs` chunks holding `tokens`
        tokens and `pairs` causal (query, key) pairs in all.

        A chunk of c tokens after p cached ones has c (p + (c + 1) / 2) pairs. The kernel time
        is the larger of (a) the measured time of `seqs` fresh prompts with the same pairs per
        prompt (length sqrt(2 pairs / seqs): equal work, at the efficiency measured there) and
        (b) the measured decode-attention time of `seqs` sequences reading the chunks' whole
        context (a short chunk after a long prefix reads its KV like a decode step)."""
        b = seqs if seqs > 1 else 1  # (max(1, seqs) without the builtin call, as below)
        s = tokens / b
        ctx = pairs / tokens + s / 2.0 if tokens else 0.0  # keys per query, on average
        br, pr = b, pairs  # the busiest group's chunks and pairs (attn_dp)
        if self.adp > 1:
            br = -(-b // self.adp)
            pr = pairs * br / b
        rows = self._pre_rows.get(b)
        if rows is None:
            row = self._pre.row(float(br)).tolist()
            rows = self._pre_rows[b] = (row, self._pre_f.row(float(br)).tolist()
                                        if self._split else row)
        row = rows[0]
        drows, s_dec = self._dec_row(b), self._dec_sl
        drow = drows[1]
        # the full-attention layers (their own kernel where their shape differs: `_split`)
        t_pairs = _pairs_time(rows[1], self._pre_s, br, pr)
        t_read = _interp1(ctx, s_dec, drows[3])
        total = self._n_full * (t_read if t_read > t_pairs else t_pairs)
        if self._n_slide:
            w = float(self._window)
            # query i of a chunk after p cached tokens sees min(p + i, w) keys (a window's, or
            # the keys a DSA query picks); each of the br chunks taken as the average one, s
            # tokens after p cached ones (pairs / b = s (p + (s + 1) / 2))
            p = pairs / tokens - (s + 1.0) / 2.0 if tokens else 0.0
            p = p if p > 0.0 else 0.0
            pw = br * (_window_pairs(p + s, w) - _window_pairs(p, w))
            if self._dsa:  # DSA: the sparse kernel over every query's top-k slots and over
                # the keys each picks
                total += self._dsa_pair * (br * s) * w + self._dsa_pick * pw
            else:
                total += self._n_slide * max(_pairs_time(row, self._pre_s, br, pw),
                                             _interp1(min(ctx, w), s_dec, drow))
        if self._idx_pre:  # DSA: the indexer scores every (query, key) pair
            total += self._idx_pre * pr
        if self._n_gdn:  # Gated DeltaNet layers: their measured prefill kernels
            total += self._gdn_prefill(seqs, tokens)
        return total

    def _gdn_prefill(self, chunks: int, tokens: int) -> float:
        """Seconds of the Gated DeltaNet layers' prefill kernels (all of them) for `chunks`
        prompt chunks of `tokens` tokens in all, on the busiest group: the measured time of
        that many fresh prompts of the chunks' mean length (a recurrent layer's prefill does
        not depend on what is cached before the chunk: it carries a fixed state), linear
        between the measured lengths and in proportion to the tokens beyond the longest; 0
        without the table."""
        if self._gdn is None or tokens <= 0:
            return 0.0
        b = chunks if chunks > 1 else 1
        br = b if self.adp == 1 else -(-b // self.adp)
        row = self._gdn_rows.get(br)
        if row is None:
            row = self._gdn_rows[br] = self._gdn.row(float(br)).tolist()
        return self._n_gdn * _len_time(row, self._gdn_sl, tokens / b)

    # ------------------------------------------------------------------ LatencyModel
    def _lin_at(self, t: int) -> float:
        if t <= self.max_tokens:
            return self._lin_list[t]
        return float(operators.linear_curve(self, np.array([float(t)]))[0])

    def _head_at(self, m: int) -> float:
        if m <= self.max_tokens:
            return self._head_list[m]
        return float(operators.head_curve(self, np.array([float(m)]))[0])

    def gpu_s(self, prefill_tokens: int, prefill_attn: float, decode_seqs: int,
              decode_ctx: int, prefill_seqs: int = 1) -> float:
        """GPU seconds of one iteration (see `iteration_s`)."""
        t = prefill_tokens + decode_seqs
        if t <= 0:
            return 0.0
        pre_seqs = prefill_seqs if prefill_tokens else 0
        m = decode_seqs + pre_seqs
        top = self.max_tokens  # (`_lin_at`, `_head_at`, inlined: hot loop)
        if prefill_tokens and self.adp > 1:
            lin = operators.split_linear(self, prefill_tokens, pre_seqs, decode_seqs)
        else:
            lin = self._lin_list[t] if t <= top else self._lin_at(t)
        head = self._head_list[m] if m <= top else self._head_at(m)
        g = lin + head + self._floor
        if prefill_tokens:
            g += self._prefill_attn(pre_seqs, prefill_tokens, prefill_attn)
        if decode_seqs:
            g += self._decode_attn1(decode_seqs, decode_ctx / decode_seqs)
        if g < self._eager and prefill_tokens and not self._graph_mixed:
            return self._eager  # launched eagerly: bound by the CPU's launches
        return g

    def iteration_s(self, prefill_tokens: int, prefill_attn: float, decode_seqs: int,
                    decode_ctx: int, prefill_seqs: int = 1) -> float:
        """Seconds for one iteration (`LatencyModel.iteration_s`); `prefill_seqs` is the number
        of prompt chunks in it (1 when unknown)."""
        g = self.gpu_s(prefill_tokens, prefill_attn, decode_seqs, decode_ctx, prefill_seqs)
        if g == 0.0:
            return 0.0
        seqs = decode_seqs + (prefill_seqs if prefill_tokens else 0)
        cpu = self._cpu0 + self._cpu_seq * seqs
        if self._async:
            return g if g > cpu else cpu
        return g + cpu

    def breakdown(self, prefill_tokens: int, prefill_attn: float, decode_seqs: int,
                  decode_ctx: int, prefill_seqs: int = 1) -> dict[str, float]:
        """`iteration_s` by term (`LatencyModel.breakdown`), seconds: `gemms` (every
        projection outside the fused experts: QKV, output, dense and shared-expert MLPs, the
        router, Mamba in / out projections), `moe_experts` (fused expert GEMMs), `all_reduce`
        (tensor-parallel), `moe_dispatch` (gathering tokens to their experts' GPUs and back),
        `elementwise` (norms, activations, rotary, KV-cache writes and a Mamba layer's scan of
        its tokens: their memory traffic), `lm_head_sampling`,
        `layer_floor` (per-layer launch / sync floor), `prefill_attention`,
        `decode_attention` (with a DSA model's indexer scoring the keys), `mamba_state`
        (recurrent state read and written per decoding sequence), `linear_attention` (a Gated
        DeltaNet model's measured prefill kernels: the convolution and the chunked delta rule
        over its prompt chunks), `eager_launch` (a step
        launched eagerly waiting on the CPU's launches beyond its GPU work) and `cpu`
        (scheduler and input preparation not hidden behind the GPU).
        Terms of the busiest data-parallel attention group where `attn_dp` > 1."""
        names = ("gemms", "moe_experts", "all_reduce", "moe_dispatch", "elementwise",
                 "lm_head_sampling", "layer_floor", "prefill_attention", "decode_attention",
                 "mamba_state", "linear_attention", "eager_launch", "cpu")
        out = dict.fromkeys(names, 0.0)
        t = prefill_tokens + decode_seqs
        if t <= 0:
            return out
        pre_seqs = prefill_seqs if prefill_tokens else 0
        if self.adp > 1 and prefill_tokens:
            busy = operators.busy_tokens(self, prefill_tokens, pre_seqs, decode_seqs)
        else:
            busy = -(-t // self.adp)
        out.update(operators.linear_parts(self, float(busy), float(t)))
        out["lm_head_sampling"] = float(operators.head_curve(self, np.array([float(decode_seqs
                                                                          + pre_seqs)]))[0])
        out["layer_floor"] = self._floor
        if prefill_tokens:
            gdn = self._gdn_prefill(pre_seqs, prefill_tokens)
            out["prefill_attention"] = self._prefill_attn(pre_seqs, prefill_tokens,
                                                          prefill_attn) - gdn
            out["linear_attention"] = gdn
        if decode_seqs:
            mamba = self._mamba_dec * decode_seqs
            out["decode_attention"] = self._decode_attn1(decode_seqs,
                                                         decode_ctx / decode_seqs) - mamba
            out["mamba_state"] = mamba
        g = self.gpu_s(prefill_tokens, prefill_attn, decode_seqs, decode_ctx, prefill_seqs)
        gpu = sum(out.values())
        out["eager_launch"] = g - gpu if g > gpu else 0.0
        cpu = self._cpu0 + self._cpu_seq * (decode_seqs + pre_seqs)
        out["cpu"] = (cpu - g if cpu > g else 0.0) if self._async else cpu
        return out

    def decode_run_s(self, batch: int, ctx0: int, n: int) -> np.ndarray:
        """Durations of `n` decode-only iterations (vectorised `iteration_s`)."""
        if batch <= 0 or n <= 0:
            return np.zeros(max(n, 0), dtype=np.float64)
        fixed = self._lin_at(batch) + self._head_at(batch) + self._floor
        c0 = ctx0 / batch
        attn = self._decode_run_attn(batch, c0, n)
        g = attn + fixed if attn is not None else fixed + self._decode_attn(
            batch, c0 + np.arange(n, dtype=np.float64))
        cpu = self._cpu0 + self._cpu_seq * batch
        if self._async:
            return np.maximum(g, cpu) if cpu > fixed else g
        return g + cpu

    def decode_run_cum_s(self, batch: int, ctx0: int, n: int) -> np.ndarray:
        """End times of a decode run (`LatencyModel.decode_run_cum_s`). While the context stays
        inside one segment of the attention grid and the GPU outlasts the CPU, every step is
        a + b k, so the end times are (k + 1) a + b k (k + 1) / 2: one numpy expression."""
        lin = self.decode_run_linear(batch, ctx0, n)
        if lin is None:
            return np.cumsum(self.decode_run_s(batch, ctx0, n))
        a, b = lin
        k, tri = _step_grid(n)
        return a * k + b * tri

    def decode_run_linear(self, batch: int, ctx0: int, n: int) -> tuple[float, float] | None:
        """(a, b) with step k of the run lasting a + b k (`LatencyModel.decode_run_linear`), or
        None when the run is not that simple: one iteration, the per-sequence context leaving
        a segment of the attention grid or crossing the sliding window, or the engine's CPU
        bounding some steps."""
        if batch <= 0 or n <= 1:
            return None
        c0 = ctx0 / batch
        s = self._dec_sl
        c1 = c0 + n - 1
        lo, hi = s[0], s[-1]  # (list items read into locals: C doubles, compiled)
        if c0 < lo or c1 >= hi:
            return None
        i = bisect_right(s, c0) - 1
        lo, hi = s[i], s[i + 1]
        w = self._window
        if c1 > hi or (self._n_slide and c0 < w <= c1):
            return None
        consts = self._run_consts.get(batch)
        if consts is None:
            consts = self._decode_run_consts(batch)
        row, rowf, mamba, saturated, fixed, cpu, idx_b = consts
        r, r1 = row[i], row[i + 1]
        slope = (r1 - r) / (hi - lo)
        t0 = r + slope * (c0 - lo)
        if self._split:  # the full layers on their own row, the sliding ones on theirs
            r, r1 = rowf[i], rowf[i + 1]
            slope_f = (r1 - r) / (hi - lo)
            a = self._n_full * (r + slope_f * (c0 - lo)) + mamba
            slope_all = self._n_full * slope_f
            if c1 < w:
                a += self._n_slide * t0
                slope_all += self._n_slide * slope
        else:
            lay = self._n_full + (self._n_slide if c1 < w else 0)
            a = lay * t0 + mamba
            slope_all = lay * slope
        if self._n_slide and c0 >= w:
            a += saturated
        a += fixed
        idx = 0.0
        if self._idx_dec:  # DSA: the indexer's scoring grows by one key per sequence a step
            idx = idx_b
            a += idx * c0
        if self._async:
            if cpu > a:  # the CPU may bound some steps: not linear
                return None
        else:
            a += cpu
        if idx:
            return a, slope_all + idx
        return a, slope_all

    def _decode_run_consts(self, batch: int) -> tuple:
        """The terms of `decode_run_linear` that depend on the batch only, computed once per
        batch size: (decode-attention row over the context grid, the full-attention layers'
        row, Mamba state traffic, the sliding layers' attention at the window, linear + head +
        layer floor, engine CPU, a DSA indexer's seconds per cached key of the step)."""
        rows = self._dec_row(batch)
        row = rows[1]
        s, w = self._dec_sl, self._window
        consts = self._run_consts[batch] = (
            row, rows[3], self._mamba_dec * batch,
            self._n_slide * _interp1(float(w), s, row) if self._n_slide else 0.0,
            self._lin_at(batch) + self._head_at(batch) + self._floor,
            self._cpu0 + self._cpu_seq * batch, rows[4])
        return consts

    def _decode_run_attn(self, batch: int, c0: float, n: int) -> np.ndarray | None:
        """Decode attention of a run whose per-sequence context goes c0, c0 + 1, ... when it
        stays inside one segment of the grid (the common case: the time is then linear in the
        step, one numpy operation); None otherwise."""
        s = self._dec_sl
        c1 = c0 + n - 1
        if c0 < s[0] or c1 >= s[-1]:
            return None
        i = bisect_right(s, c0) - 1
        if c1 > s[i + 1] or (self._n_slide and c0 < self._window <= c1):
            return None
        rows = self._dec_row(batch)
        row = rows[1]
        slope = (row[i + 1] - row[i]) / (s[i + 1] - s[i])
        t0 = row[i] + slope * (c0 - s[i])
        k = np.arange(n, dtype=np.float64)
        if self._split:  # the full layers on their own row, the sliding ones on theirs
            rowf = rows[3]
            slope_f = (rowf[i + 1] - rowf[i]) / (s[i + 1] - s[i])
            out = self._n_full * (rowf[i] + slope_f * (c0 - s[i]) + slope_f * k)
            if c1 < self._window:
                out += self._n_slide * (t0 + slope * k)
        else:
            lay = self._n_full + (self._n_slide if c1 < self._window else 0)
            out = lay * (t0 + slope * k)
        if self._n_slide and c0 >= self._window:  # sliding layers saturated at the window
            out += self._n_slide * _interp1(float(self._window), s, row)
        if self._idx_dec:  # DSA: the indexer scores every cached key
            out += rows[4] * (c0 + k)
        return out + self._mamba_dec * batch

    def encoder_s(self, vision, images: int) -> float:
        """Vision-encoder FLOPs (`wrpsim.pool.vision`) over tp GPUs at the rate the measured
        BF16 GEMM table gives the encoder's MLP shape (n = 4 x hidden / tp, k = hidden; the
        language model's hidden when the entry has none) at m = images x patches."""
        h = vision.encoder_hidden or self.model.hidden
        n, m = -(-4 * h // self.tp), images * vision.patches_per_image
        t = float(self.kernels.gemm("bf16", n, h)(m))
        return vision.flops(images) / self.tp * t / (2.0 * m * n * h)

    def frontend_s(self, prompt_tokens: int) -> float:
        """The API server's time on a request before the engine sees it (module docstring)."""
        return (self.c.frontend_us + self.c.frontend_us_per_token * prompt_tokens) * 1e-6

    def frontend_work_s(self, prompt_tokens: int) -> float:
        """The part of `frontend_s` queued in the one API server: tokenization (per token) and
        the server's own CPU per request (`frontend_us_serial`)."""
        c = self.c
        return (c.frontend_us_serial + c.frontend_us_per_token * prompt_tokens) * 1e-6

    def frontend_stream_s(self) -> float:
        """API-server seconds per output token streamed (`LatencyModel.frontend_stream_s`)."""
        return self.c.frontend_us_per_stream_token * 1e-6

    def handover_s(self) -> float:
        """A serialized hand-off's orchestration (`LatencyModel.handover_s`)."""
        return self.c.handover_us * 1e-6

    def prefill_s(self, batch: int, prompt_tokens: int) -> float:
        """One prefill iteration of `batch` prompts of `prompt_tokens` each (no chunking)."""
        p = prompt_tokens
        return self.iteration_s(batch * p, batch * p * (p + 1) / 2.0, 0, 0, batch)

    def decode_step_s(self, batch: int, ctx_per_seq: int) -> float:
        """One decode iteration of `batch` sequences with `ctx_per_seq` cached tokens each."""
        return self.iteration_s(0, 0.0, batch, batch * ctx_per_seq)

    # ------------------------------------------------------------------ power
    def power_w(self, prefill_tokens: int, decode_seqs: int,
                decode_ctx: int | None = None, duration_s: float | None = None,
                prefill_attn: float | None = None, prefill_seqs: int = 1) -> float:
        """Per-GPU power of an iteration (`wrpsim.pool.kernels.power`); `duration_s` is the
        iteration's duration when the caller knows it; `prefill_attn` the prompt chunks'
        attention work as `iteration_s` took it (query-key pairs: a chunk deep in its prompt
        attends to every earlier token), by default T (T + 1) / 2, a fresh prompt's;
        `prefill_seqs` the prompt chunks holding the prefill tokens (each a sequence to the
        CPU and the LM head, as `iteration_s` counts them).
        Utilisation is taken over the GPU's share of the iteration and that power is drawn for
        the whole of it: the per-sequence time the engine adds (sampling, output handling)
        does not lower the measured power."""
        pm = self._power
        if pm is None:
            if prefill_tokens + decode_seqs <= 0:
                return self.gpu.idle_w
            return self.gpu.tdp_w
        t_tok = prefill_tokens + decode_seqs
        seqs = decode_seqs + (prefill_seqs if prefill_tokens else 0)
        if duration_s and not self._async:  # the GPU's share of the iteration
            duration_s = max(duration_s - self._cpu0 - self._cpu_seq * seqs, 1e-9)
        if t_tok <= 0 or not duration_s:
            return pm.power_w(self, prefill_tokens, decode_seqs, decode_ctx, duration_s,
                              prefill_attn, prefill_seqs)
        # `PowerModel.power_w` with the duration given, in one function (the hot loop calls
        # this once per iteration): the same operations in the same order, on the constants
        # of `power.iteration_work` and of `pm` fetched once per (model, power model)
        c = self._power_c
        if c is None or c[0] is not pm:
            c = self._power_c = (pm, *work_constants(self), pm.active, pm.w_compute,
                                 pm.w_memory, pm.idle_w, pm.tdp_w - pm.idle_w)
        (_, lin, head, attn, fixed, experts, q, kv, stream, peak, bw, state, active, w_c, w_m,
         idle, span) = c
        ctx = float(decode_seqs * 1024 if decode_ctx is None else decode_ctx)
        if prefill_attn is None:
            pairs = prefill_tokens * (prefill_tokens + 1) / 2.0
        else:
            pairs = prefill_attn
        flops = lin * t_tok + head * seqs + attn * (pairs + ctx)
        touched = 1.0 - q ** t_tok if q else 1.0
        nbytes = (fixed + experts * touched + (ctx + t_tok) * kv + t_tok * stream
                  + seqs * state)
        dur = duration_s  # (the locals are C doubles, compiled: `model.pxd`)
        dur_c = dur
        if self._has_bound:  # (`power.bound_s`, inlined: the lists hold T = 0..max_tokens)
            top = self.max_tokens
            dur_c = dur - (self._lin_bound[t_tok if t_tok <= top else top]
                           + self._head_bound[seqs if seqs <= top else top])
            dur_c = dur_c if dur_c > 1e-12 else 1e-12
        f = active + w_c * (flops / (peak * dur_c)) + w_m * (nbytes / (bw * dur))
        return idle + span * (f if f < 1.0 else 1.0)

    def decode_power_w(self, decode_seqs: int, decode_ctx: int, duration_s: float) -> float:
        """`power_w(0, decode_seqs, decode_ctx, duration_s)` (`LatencyModel.decode_power_w`):
        the same operations in the same order, the terms that depend on the batch only (and the
        constants) taken from a cache per batch size."""
        pm = self._power
        t = self._dec_power.get(decode_seqs)
        if t is None or t[0] is not pm:
            if pm is None or decode_seqs <= 0 or not self._async:
                return self.power_w(0, decode_seqs, decode_ctx, duration_s)
            self.power_w(0, decode_seqs, decode_ctx, duration_s)  # (fetches `_power_c`)
            (_, lin, head, attn, fixed, experts, q, kv, stream, peak, bw, state, active, w_c,
             w_m, idle, span) = self._power_c
            n = decode_seqs  # prefill 0: tokens = sequences = n, pairs = 0.0
            t = self._dec_power[n] = (
                pm, lin * n + head * n, attn, fixed + experts * (1.0 - q ** n if q else 1.0),
                kv, n * stream, n * state, peak, bw, active, w_c, w_m, idle, span,
                bound_s(self, 0, n))
        if not duration_s:
            return self.power_w(0, decode_seqs, decode_ctx, duration_s)
        (_, flops0, attn, bytes0, kv, b_stream, b_state, peak, bw, active, w_c, w_m, idle, span,
         bnd) = t
        ctx = float(decode_ctx)
        flops = flops0 + attn * ctx  # (`power_w`: `attn * (pairs + ctx)`, pairs = 0.0)
        nbytes = bytes0 + (ctx + decode_seqs) * kv + b_stream + b_state
        dur = duration_s  # (as in `power_w`)
        dur_c = dur - bnd
        dur_c = dur_c if dur_c > 1e-12 else 1e-12
        f = active + w_c * (flops / (peak * dur_c)) + w_m * (nbytes / (bw * dur))
        return idle + span * (f if f < 1.0 else 1.0)

    def idle_power_w(self) -> float:
        return self.gpu.idle_w if self._power is None else self._power.idle_w


LatencyModel.register(KernelLatency)


def _interp1(c: float, s: list, row: list) -> float:
    """`_interp_tail` for one value, on lists (plain floats). (Every list item is read into a
    local first: compiled, the locals are C doubles and the arithmetic is C's.)"""
    top = s[-1]
    if c >= top:
        r = row[-1]
        return r * (c + 1.0) / (top + 1.0)
    if c <= s[0]:
        return row[0]
    i = bisect_right(s, c) - 1
    lo = s[i]  # (one statement each: a 4-tuple would cost pure Python its allocation)
    hi = s[i + 1]
    r = row[i]
    r1 = row[i + 1]
    w = (c - lo) / (hi - lo)
    return r + (r1 - r) * w


def _interp_tail(c, s: np.ndarray, row: np.ndarray):
    """np.interp of `row` over grid `s` at `c`, proportional to (c + 1) beyond the grid."""
    out = np.interp(c, s, row)
    big = c > s[-1]
    if big.any():  # (the method: `np.any`'s dispatch costs 2-3 us a call)
        out = np.where(big, row[-1] * (c + 1.0) / (s[-1] + 1.0), out)
    return out


def _len_time(row: list, s_grid: list, s: float) -> float:
    """Time over a length grid at length `s`: linear between its points, its first below,
    in proportion to the length beyond its last. (List items read into locals, as in
    `_interp1`.)"""
    top = s_grid[-1]
    if s >= top:
        r = row[-1]
        return r * s / top
    if s <= s_grid[0]:
        return row[0]
    i = bisect_right(s_grid, s) - 1
    lo = s_grid[i]
    hi = s_grid[i + 1]
    r = row[i]
    r1 = row[i + 1]
    return r + (r1 - r) * (s - lo) / (hi - lo)


def _window_pairs(n: float, w: float) -> float:
    """Causal (query, key) pairs of the first n positions of a sequence under a sliding window
    of w keys: position i (1-based) attends to min(i, w) keys, so n (n + 1) / 2 up to the
    window and w (w + 1) / 2 + (n - w) w beyond it (continuous in n)."""
    if n <= w:
        return n * (n + 1.0) / 2.0
    return w * (w + 1.0) / 2.0 + (n - w) * w


def _pairs_time(row: list, s_grid: list, b: float, pairs: float) -> float:
    """Table time of b fresh prompts with `pairs` causal pairs in all (row over s_grid at batch
    b): each prompt of length s with s (s + 1) / 2 = pairs / b; beyond the grid's longest
    prompt the time grows with the pairs (compute-bound). (List items read into locals, as in
    `_interp1`.)"""
    s = (math.sqrt(8.0 * pairs / b + 1.0) - 1.0) / 2.0 if pairs > 0 else 0.0
    s_ref = s_grid[-1]
    if s >= s_ref:
        r = float(row[-1])
        return r * pairs / (b * s_ref * (s_ref + 1) / 2.0)
    i = bisect_right(s_grid, s) - 1
    if i < 0:
        return float(row[0])
    lo = s_grid[i]
    hi = s_grid[i + 1]
    r = row[i]
    r1 = row[i + 1]
    w = (s - lo) / (hi - lo)
    return float(r * (1 - w) + r1 * w)
