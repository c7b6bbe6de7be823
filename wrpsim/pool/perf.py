"""The 2023 analytical (roofline) latency and power model: engine `splitwise-2023`.

Calibrated on the Splitwise Llama-2-70B profile (an engine much slower than today's); kept so
that results made before the kernel-table engines (`wrpsim.pool.kernels`) can be reproduced.

Per iteration, per GPU, with T = prefill tokens + decode sequences (tokens through the linear
layers), A = causal prefill attention (token pairs), B = decode sequences, C = their summed
context, the time is the sum of op groups, each a roofline max(compute, memory):

    linear    max(2 N_act T / tp / (F e_c) + logits,  W(T) / (BW e_m))
    prefill   max(4 L H d A / tp / (F e_a),  T_pre kv / (BW e_m))
    decode    max(4 L H d C / tp / (F e_a),  (C + B) kv / (BW e_kv))
    comm      2 L [2 (tp-1) alpha + 2 (tp-1)/tp M / (link e_l) (1 + M / S)]   (0 at tp = 1)
    overhead  o_iter + L o_layer + B o_seq

M = T h b is the bytes of one all-reduce, S = `link_sat_mib` the message size at which large
all-reduces run at half speed (M / S capped at 512 MiB / S). W(T) is the weight bytes read per
GPU: dense weights plus, for mixture-of-experts, the expected number of distinct experts touched
by T tokens, E (1 - (1 - k/E)^T). pools/README.md derives the terms and documents the
calibration (`wrpsim.pool.calibrate`).
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from wrpsim.errors import ConfigError
from wrpsim.pool.catalog import CALIBRATION_FIELDS, GpuSpec, ModelSpec, get_gpu, get_model
from wrpsim.pool.latency import LatencyModel

GIB = float(1 << 30)
#: the activation / runtime reserve per GPU the 2023 model (engine splitwise-2023) takes
LEGACY_RESERVE_GIB = 3.5
#: all-reduce slowdown (1 + bytes / link_sat) is not extrapolated past the largest profiled message
#: (32768 Llama-2-70B tokens x 8192 x 2 B = 512 MiB)
MAX_MESSAGE_BYTES = float(512 << 20)


class AnalyticalLatency(LatencyModel):
    """Roofline latency and utilisation-based power of `model` on `tp` x `gpu`.

    `overrides` replace calibrated fields of the GPU (names in `CALIBRATION_FIELDS`, e.g.
    `layer_overhead_us=3.0` to model a CUDA-graph stack). Raises `ConfigError` for a bad `tp`
    (must be >= 1 and divide the model's attention heads and fit its KV heads:
    `ModelSpec.fits_tp`) or an unknown override. All methods
    are pure; `iteration_s` is plain float arithmetic on coefficients computed here."""

    #: per-sequence context assumed by `power_w` for decode sequences (tokens)
    power_ctx_tokens: int = 1024

    def __init__(self, model: ModelSpec, gpu: GpuSpec, tp: int = 1, **overrides: float) -> None:
        if isinstance(tp, bool) or not isinstance(tp, int) or not model.fits_tp(tp):
            raise ConfigError(f"tp must be an integer >= 1 that "
                              f"{model.tp_rule(domain=gpu.scaleup_gpus)}; got {tp!r}")
        bad = sorted(set(overrides) - set(CALIBRATION_FIELDS))
        if bad:
            raise ConfigError(f"unknown latency override {bad[0]!r}; valid: "
                              f"{', '.join(CALIBRATION_FIELDS)}")
        g = replace(gpu, **{k: float(v) for k, v in overrides.items()}) if overrides else gpu
        self.model, self.gpu, self.tp = model, g, tp
        flops, bw = g.bf16_tflops * 1e12, g.mem_bw_gbs * 1e9
        b, L = model.bytes_per_param, model.layers
        # routed experts' weights (for a dense model its FFN layers' weights, all read every
        # iteration: q = 0), counted over the layers that have them: not every layer
        # for DeepSeek's leading dense layers, Llama 4's interleaved ones or a hybrid's
        # Mamba and attention-only layers
        expert_params = (model.expert_params if model.moe
                         else model.ffn_layers * model.expert_params_per_layer)
        input_table = 0 if model.tied_embeddings else model.vocab * model.hidden
        dense_read = (model.params - expert_params - input_table) * b / tp
        attn_flops = 4.0 * (model.attn_dim_layers if model.split_attention
                            else L * model.head_dim) * model.heads / tp
        kv = self.kv_bytes_per_token_per_gpu
        nonembed_active = model.active_params - model.embedding_params
        self._lin_flops = 2.0 * nonembed_active / tp
        self._c_lin = self._lin_flops / (flops * g.eff_compute)
        self._c_logit = 2.0 * model.vocab * model.hidden / tp / (flops * g.eff_compute)
        self._m_dense = dense_read / (bw * g.eff_mem)
        self._m_exp = expert_params * b / tp / (bw * g.eff_mem)
        self._q = 1.0 - model.active_experts / model.experts
        self._c_attn = attn_flops / (flops * g.eff_attn)
        self._m_kvw = kv / (bw * g.eff_mem)
        self._m_kvr = kv / (bw * g.eff_kv)
        ring = 2.0 * (tp - 1)
        self._comm0 = 2 * L * ring * g.coll_latency_us * 1e-6
        self._comm_tok = (2 * L * ring / tp * model.hidden * b
                          / (g.link_for(tp) * 1e9 * g.eff_link))
        self._comm_tok2 = self._comm_tok * model.hidden * b / (g.link_sat_mib * (1 << 20))
        self._t_sat = MAX_MESSAGE_BYTES / (model.hidden * b)
        self._ovh = (g.iter_overhead_us + L * g.layer_overhead_us) * 1e-6
        self._ovh_pre = L * g.prefill_overhead_us * 1e-6
        self._ovh_seq = g.seq_overhead_us * 1e-6
        self._bytes_dense, self._bytes_exp = dense_read, expert_params * b / tp
        self._kv, self._flops, self._bw, self._attn_flops = kv, flops, bw, attn_flops
        a = g.power_active_frac * g.tdp_w
        self._p_base = min(g.tdp_w, g.idle_w + a)
        self._p_span = g.tdp_w - self._p_base

    def encoder_s(self, vision, images: int) -> float:
        """Vision-encoder FLOPs over tp GPUs at the compute roofline of the linear layers,
        F e_c (`wrpsim.pool.vision`)."""
        return vision.flops(images) / self.tp / (self._flops * self.gpu.eff_compute)

    @classmethod
    def from_names(cls, model: str, gpu: str, tp: int = 1, **overrides: float) -> AnalyticalLatency:
        """Build from catalog names (`ConfigError` listing valid names if unknown)."""
        return cls(get_model(model), get_gpu(gpu), tp, **overrides)

    @property
    def weight_bytes_per_gpu(self) -> float:
        """Bytes of weights held by each GPU (all parameters / tp)."""
        return self.model.params * self.model.bytes_per_param / self.tp

    @property
    def kv_bytes_per_token_per_gpu(self) -> float:
        """KV bytes of one token on each GPU; KV heads are replicated when tp > kv_heads (a
        Gemma 4's full-attention layers with their own heads and width: each kind its own)."""
        m = self.model
        if m.split_attention:
            slide, full = m.split_kv_elems(self.tp)
            return float(m.sliding_layers * slide + m.full_attn_layers * full) * m.bytes_per_param
        return 2.0 * m.layers * math.ceil(m.kv_heads / self.tp) * m.head_dim * m.bytes_per_param

    def iteration_s(
        self, prefill_tokens: int, prefill_attn: float, decode_seqs: int, decode_ctx: int,
        prefill_seqs: int = 1,
    ) -> float:
        """Seconds for one iteration (see `LatencyModel.iteration_s`); 0 for an empty one
        (`prefill_seqs` does not enter this model)."""
        t = prefill_tokens + decode_seqs
        if t <= 0:
            return 0.0
        c = t * self._c_lin + decode_seqs * self._c_logit
        m = self._m_dense + self._m_exp * (1.0 - self._q ** t)
        s = (c if c > m else m) + self._ovh + self._comm0
        s += t * (self._comm_tok + (t if t < self._t_sat else self._t_sat) * self._comm_tok2)
        if prefill_tokens:
            c = prefill_attn * self._c_attn
            m = prefill_tokens * self._m_kvw
            s += (c if c > m else m) + self._ovh_pre
        if decode_seqs:
            c = decode_ctx * self._c_attn
            m = (decode_ctx + decode_seqs) * self._m_kvr
            s += (c if c > m else m) + decode_seqs * self._ovh_seq
        return s

    def breakdown(
        self, prefill_tokens: int, prefill_attn: float, decode_seqs: int, decode_ctx: int,
        prefill_seqs: int = 1,
    ) -> dict[str, float]:
        """`iteration_s` by the module docstring's terms, seconds: `linear` (the linear
        layers' roofline: weights read or FLOPs, logits included), `collectives` (the
        all-reduces' latency and bandwidth terms), `prefill_attention`, `decode_attention`
        and `overhead` (per-iteration, per-layer, per-prefill-layer and per-sequence
        constants)."""
        out = dict.fromkeys(("linear", "collectives", "prefill_attention", "decode_attention",
                             "overhead"), 0.0)
        t = prefill_tokens + decode_seqs
        if t <= 0:
            return out
        c = t * self._c_lin + decode_seqs * self._c_logit
        m = self._m_dense + self._m_exp * (1.0 - self._q ** t)
        out["linear"] = c if c > m else m
        out["collectives"] = self._comm0 + t * (
            self._comm_tok + (t if t < self._t_sat else self._t_sat) * self._comm_tok2)
        out["overhead"] = self._ovh
        if prefill_tokens:
            c, m = prefill_attn * self._c_attn, prefill_tokens * self._m_kvw
            out["prefill_attention"] = c if c > m else m
            out["overhead"] += self._ovh_pre
        if decode_seqs:
            c, m = decode_ctx * self._c_attn, (decode_ctx + decode_seqs) * self._m_kvr
            out["decode_attention"] = c if c > m else m
            out["overhead"] += decode_seqs * self._ovh_seq
        return out

    def decode_run_s(self, batch: int, ctx0: int, n: int) -> np.ndarray:
        """Durations of `n` decode-only iterations of `batch` sequences, summed context `ctx0`
        growing by `batch` per step; equal to looping `iteration_s`, vectorised."""
        if batch <= 0 or n <= 0:
            return np.zeros(max(n, 0), dtype=np.float64)
        ctx = ctx0 + batch * np.arange(n, dtype=np.float64)
        c = batch * self._c_lin + batch * self._c_logit
        m = self._m_dense + self._m_exp * (1.0 - self._q ** batch)
        comm = batch * (self._comm_tok + min(batch, self._t_sat) * self._comm_tok2)
        fixed = (c if c > m else m) + self._ovh + self._comm0 + comm
        attn = np.maximum(ctx * self._c_attn, (ctx + batch) * self._m_kvr)
        return fixed + (attn + batch * self._ovh_seq)

    def prefill_s(self, batch: int, prompt_tokens: int) -> float:
        """One prefill iteration of `batch` prompts of `prompt_tokens` each (no chunking)."""
        p = prompt_tokens
        return self.iteration_s(batch * p, batch * p * (p + 1) / 2.0, 0, 0)

    def decode_step_s(self, batch: int, ctx_per_seq: int) -> float:
        """One decode iteration of `batch` sequences with `ctx_per_seq` tokens of context each."""
        return self.iteration_s(0, 0.0, batch, batch * ctx_per_seq)

    def power_at(self, prefill_tokens: int, decode_seqs: int, ctx_per_seq: float) -> float:
        """Per-GPU power (W) of an iteration: base + span x min(1, w_m u_mem + w_c u_compute).

        u_compute is the achieved fraction of peak FLOP/s (linear layers and decode attention);
        u_mem the fraction of the iteration spent moving bytes: weights and KV at peak bandwidth,
        the bandwidth part of the all-reduces, and the per-sequence time (GPU-busy: measured
        power rises with batch); base = idle + power_active_frac x TDP, span = TDP - base.
        Fixed overheads and collective latencies draw only the base."""
        t_tok = prefill_tokens + decode_seqs
        if t_tok <= 0:
            return self.gpu.idle_w
        ctx = decode_seqs * ctx_per_seq
        dt = self.iteration_s(prefill_tokens, 0.0, decode_seqs, round(ctx))
        flops = t_tok * self._lin_flops + ctx * self._attn_flops
        nbytes = (self._bytes_dense + self._bytes_exp * (1.0 - self._q ** t_tok)
                  + (t_tok + ctx) * self._kv)
        comm_s = t_tok * (self._comm_tok + min(t_tok, self._t_sat) * self._comm_tok2)
        mem_s = nbytes / self._bw + comm_s + decode_seqs * self._ovh_seq
        u = (self.gpu.power_mem_weight * mem_s + self.gpu.power_compute_weight * flops
             / self._flops) / dt
        return self._p_base + self._p_span * (u if u < 1.0 else 1.0)

    def power_w(
        self, prefill_tokens: int, decode_seqs: int, decode_ctx: int | None = None,
        duration_s: float | None = None, prefill_attn: float | None = None,
        prefill_seqs: int = 1,
    ) -> float:
        """Per-GPU power of an iteration whose decode sequences hold `decode_ctx` tokens in all
        (`power_ctx_tokens` each when None); between `idle_power_w()` and the GPU's TDP
        (`duration_s` is not used: this model recomputes its own; nor are `prefill_attn` and
        `prefill_seqs`: the 2023 calibration has no attention or per-prompt term in its
        power)."""
        if decode_ctx is None or not decode_seqs:
            return self.power_at(prefill_tokens, decode_seqs, self.power_ctx_tokens)
        return self.power_at(prefill_tokens, decode_seqs, decode_ctx / decode_seqs)

    def idle_power_w(self) -> float:
        """Idle power of one GPU (catalog `idle_w`)."""
        return self.gpu.idle_w

    def reserve_gib(self, sched_seqs: int = 256, token_budget: int = 2048) -> float:
        """GiB per GPU the KV cache leaves beside the weights unless a pool sets its own: the
        fixed 3.5 GiB this 2023 model always took, whatever the scheduler (the arguments are
        the common signature's, `KernelLatency.reserve_gib`)."""
        return LEGACY_RESERVE_GIB

    def kv_capacity_blocks(
        self, block_size: int, gpu_mem_util: float = 0.9, reserve_gib: float | None = None,
        max_seqs: int = 0, sched_seqs: int = 256, token_budget: int = 2048,
    ) -> int:
        """KV blocks per instance: floor((HBM x util - weights/tp - reserve) /
        (block_size x kv bytes per token / tp)), the nameplate memory and, where `reserve_gib`
        is None, the 3.5 GiB this 2023 model always took (old results reproduce).
        `ConfigError` when the weights leave no room for one block (message gives the sizes in
        GiB) or an argument is out of range. `max_seqs`, `sched_seqs` and `token_budget` are
        accepted for the common signature (this model keeps no per-sequence state and no
        profiled reserve)."""
        if reserve_gib is None:
            reserve_gib = self.reserve_gib(sched_seqs, token_budget)
        if block_size < 1 or not 0.0 < gpu_mem_util <= 1.0 or not 0 <= reserve_gib < math.inf:
            raise ConfigError(f"kv capacity needs block_size >= 1, 0 < gpu_mem_util <= 1 and "
                              f"reserve_gib >= 0; got {block_size}, {gpu_mem_util}, {reserve_gib}")
        usable = self.gpu.mem_gib * gpu_mem_util - reserve_gib
        weights = self.weight_bytes_per_gpu / GIB
        per_block = block_size * self.kv_bytes_per_token_per_gpu
        blocks = math.floor((usable - weights) * GIB / per_block)
        if blocks < 1:
            raise ConfigError(
                f"{self.model.name} needs {weights:.1f} GiB of weights per GPU at tp={self.tp} on "
                f"{self.gpu.name} (mem_gib {self.gpu.mem_gib:g} GiB x gpu_mem_util "
                f"{gpu_mem_util:.2f} - reserve_gib {reserve_gib:g} GiB = {usable:.1f} GiB usable), "
                f"leaving no room for one KV block of {block_size} tokens")
        return blocks
