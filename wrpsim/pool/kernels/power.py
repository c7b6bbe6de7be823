"""Per-GPU power of an iteration from its compute and memory utilisation.

    P = idle + (TDP - idle) x min(1, active + w_compute x u_compute + w_memory x u_memory)

u_compute is the iteration's FLOPs (projections, attention, LM head) over the GPU's peak rate
for the pool's precision times the iteration's duration; u_memory its bytes (weights read,
experts touched, KV read and written, activations) over peak bandwidth times duration. `active`
is the fraction of the idle-to-TDP span a GPU draws as soon as it runs kernels at all (clocks
up, SMs busy waiting on memory); the weights say how much more full compute or full bandwidth
costs. Three numbers per GPU, fitted on measured average power (`wrpsim.calibrate.power`:
ML.ENERGY for H100 and B200, Splitwise for A100); a GPU without measurements takes another's
fit, labelled as copied. Between iterations a GPU draws `idle_w` (catalog). Where a GEMM's
time is its GPU's sustained rate at the power limit (`tables.sustained`), u_compute is taken
over the time without that bound (`bound_s`): the shape was fitted on unbounded kernel times,
and a GPU held at its limit draws TDP.
"""

from __future__ import annotations

from dataclasses import dataclass

from wrpsim.pool.kernels import operators, sizes
from wrpsim.pool.kernels import roofline as rl

POWER_FIELDS = ("active", "w_compute", "w_memory")


@dataclass(frozen=True)
class PowerModel:
    """Fitted power shape of one GPU (see module docstring); `source` says where it is from."""

    idle_w: float
    tdp_w: float
    active: float
    w_compute: float
    w_memory: float
    source: str = ""
    #: the GPU whose fitted shape this one copies ("" when fitted on this GPU's own watts)
    copied_from: str = ""

    def utilisation(self, lat, prefill_tokens: int, decode_seqs: int,
                    decode_ctx: float, prefill_attn: float | None = None,
                    prefill_seqs: int = 1) -> tuple[float, float]:
        """(u_compute, u_memory) of one iteration of `lat` (a `KernelLatency`) over its GPU
        time (`KernelLatency.gpu_s`); `prefill_seqs` prompt chunks hold the prefill tokens."""
        if prefill_tokens + decode_seqs <= 0:
            return 0.0, 0.0
        if prefill_attn is None:
            prefill_attn = prefill_tokens * (prefill_tokens + 1) / 2.0
        chunks = prefill_seqs if prefill_tokens else 0
        dt = lat.gpu_s(prefill_tokens, prefill_attn, decode_seqs, round(decode_ctx), chunks)
        return utilisation(lat, prefill_tokens, decode_seqs, decode_ctx, prefill_attn, dt,
                           prefill_seqs)

    def power_at(self, u_c: float, u_m: float) -> float:
        """Watts at utilisations (u_compute, u_memory)."""
        f = self.active + self.w_compute * u_c + self.w_memory * u_m
        return self.idle_w + (self.tdp_w - self.idle_w) * (f if f < 1.0 else 1.0)

    def power_w(self, lat, prefill_tokens: int, decode_seqs: int,
                decode_ctx: int | None = None, duration_s: float | None = None,
                prefill_attn: float | None = None, prefill_seqs: int = 1) -> float:
        """Per-GPU watts of an iteration (`LatencyModel.power_w`); decode sequences hold 1024
        tokens each when `decode_ctx` is None; the utilisations are over `duration_s` when
        given (the iteration's GPU time, as the latency model computed it), else over
        `gpu_s` recomputed."""
        if prefill_tokens + decode_seqs <= 0:
            return self.idle_w
        ctx = float(decode_seqs * 1024 if decode_ctx is None else decode_ctx)
        if duration_s:
            pairs = (prefill_tokens * (prefill_tokens + 1) / 2.0 if prefill_attn is None
                     else prefill_attn)
            return self.power_at(*utilisation(lat, prefill_tokens, decode_seqs, ctx, pairs,
                                              duration_s, prefill_seqs))
        return self.power_at(*self.utilisation(lat, prefill_tokens, decode_seqs, ctx,
                                               prefill_attn, prefill_seqs))


def work_constants(lat) -> tuple:
    """Per-model work coefficients of `iteration_work` (FLOPs per token, LM-head FLOPs per
    sequence, FLOPs per attention pair, bytes read every iteration, bytes of all experts, the
    probability an expert is untouched by one token, KV bytes per token, element-wise bytes per
    token, peak FLOP/s, peak bytes/s, Mamba state bytes per sequence), computed once per
    latency model. Per token and sequence of the instance: with data-parallel attention
    (`lat.adp` groups of `lat.atp` GPUs) a GPU does 1 / adp of the attention and dense work of
    its group's share, but reads the dense weights of its group's shard every iteration."""
    c = getattr(lat, "_work_c", None)
    if c is None:
        m, tp = lat.model, lat.tp
        adp, atp = getattr(lat, "adp", 1), getattr(lat, "atp", tp)
        wb = rl.WEIGHT_BYTES
        head = m.vocab * m.hidden / tp
        dense = (m.params - m.expert_params - m.embedding_params) / atp
        attn = (4.0 * (m.heads // tp) * m.attn_dim_layers if adp == 1
                else 4.0 * (m.heads // atp) * m.attn_dim_layers / adp)
        c = lat._work_c = (
            2.0 * (m.active_params - m.embedding_params) / tp,  # FLOPs per token
            2.0 * head,  # LM-head FLOPs per sequence
            attn,  # FLOPs per (query, key) pair
            dense * wb[lat.dense_dtype] + m.vocab * m.hidden / atp * 2.0  # read every iteration
            + sizes.attn_extra_bytes_per_gpu(lat),
            m.expert_params / tp * wb[lat.moe_dtype],  # bytes of all experts
            1.0 - m.active_experts / m.experts if m.moe else 0.0,
            lat.kv_bytes_per_token_per_gpu / adp,
            operators.stream_bytes_per_token(lat, all_bytes=True) / adp,
            rl.peak_flops(lat.gpu, lat.dense_dtype), lat.gpu.mem_bw_gbs * 1e9,
            2.0 * getattr(lat, "mamba_state_bytes", 0.0) / tp)  # Mamba state read + written
    return c


def iteration_work(lat, prefill_tokens: int, decode_seqs: int, decode_ctx: float,
                   prefill_attn: float, prefill_seqs: int = 1) -> tuple[float, float]:
    """(FLOPs, bytes) one GPU of `lat`'s instance spends on an iteration: projections at 2
    FLOPs per active parameter and token, LM head per sequence (each decoding one and each of
    the `prefill_seqs` prompt chunks), attention at 4 x heads x head_dim per (query, key) pair;
    weights read once (experts: those the tokens touch, uniform routing), KV read and written,
    element-wise traffic, each sequence's Mamba state read and written."""
    lin, head, attn, fixed, experts, q, kv, stream, _, _, state = work_constants(lat)
    t_tok = prefill_tokens + decode_seqs
    seqs = decode_seqs + (prefill_seqs if prefill_tokens else 0)
    flops = lin * t_tok + head * seqs + attn * (prefill_attn + decode_ctx)
    touched = 1.0 - q ** t_tok if q else 1.0
    nbytes = (fixed + experts * touched + (decode_ctx + t_tok) * kv + t_tok * stream
              + seqs * state)
    return flops, nbytes


def bound_s(lat, prefill_tokens: int, decode_seqs: int, prefill_seqs: int = 1) -> float:
    """Seconds the sustained-rate bound (`tables.sustained`) adds to an iteration's GEMMs
    (projections at its tokens, LM head at its sequences); 0 for a latency model without it.
    The GPU is at its power limit while the bound holds: the shape (fitted on utilisations over
    unbounded kernel times) takes u_compute over the time without it, and reaches TDP."""
    if not getattr(lat, "_has_bound", False):
        return 0.0
    t, m = prefill_tokens + decode_seqs, decode_seqs + (prefill_seqs if prefill_tokens else 0)
    lb, hb = lat._lin_bound, lat._head_bound
    return (lb[t] if t < len(lb) else lb[-1]) + (hb[m] if m < len(hb) else hb[-1])


def utilisation(lat, prefill_tokens: int, decode_seqs: int, decode_ctx: float,
                prefill_attn: float, dt: float, prefill_seqs: int = 1) -> tuple[float, float]:
    """(u_compute, u_memory) of an iteration that took `dt` seconds (u_compute over the time
    without the sustained-rate bound: `bound_s`)."""
    flops, nbytes = iteration_work(lat, prefill_tokens, decode_seqs, decode_ctx, prefill_attn,
                                   prefill_seqs)
    c = work_constants(lat)
    dt_c = max(dt - bound_s(lat, prefill_tokens, decode_seqs, prefill_seqs), 1e-12)
    return flops / (c[8] * dt_c), nbytes / (c[9] * dt)


def load_power(path) -> dict:
    """The per-GPU power fits of `path` (pools/catalog/power.yaml): {gpu: fields or {from:}}."""
    import yaml

    from wrpsim.errors import ConfigError
    from wrpsim.yamlfast import safe_load

    try:
        data = safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read power fits: {exc}") from None
    for g, e in data.items():
        if not isinstance(e, dict):
            raise ConfigError(f"{path}: entry {g!r} must be a mapping")
        if "from" in e:
            continue
        for k in POWER_FIELDS:
            v = e.get(k)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
                raise ConfigError(f"{path}: entry {g!r}: field {k!r} must be a number >= 0")
    return data


def power_model(gpu, table: dict) -> PowerModel | None:
    """The power model of `gpu` from the fits `table` (`load_power`): its own entry, or the
    entry it names with `from:` (labelled as copied), or `default_from`'s; None without fits."""
    if not table:
        return None
    entry = table.get(gpu.name)
    source_gpu = gpu.name
    copied = entry is None or "from" in entry
    if copied:
        source_gpu = (entry or {}).get("from") or table.get("default_from", {}).get("from")
        if source_gpu is None or source_gpu not in table:
            return None
        entry = table[source_gpu]
    vals = {k: float(entry[k]) for k in POWER_FIELDS}
    src = str(entry.get("source", ""))
    if copied:
        src = f"copied from {source_gpu}: {src}"
    return PowerModel(gpu.idle_w, gpu.tdp_w, source=src, copied_from=source_gpu if copied else "",
                      **vals)
