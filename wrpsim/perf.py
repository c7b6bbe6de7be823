"""Ask the latency/power model directly: one JSON line on stdout.

    python -m wrpsim.perf model=llama2-70b gpu=h100-80gb tp=8 batch=4 prompt_tokens=512

prints `{"prefill_s": ..., "decode_step_s": ..., "power_w": ..., ...}`: `prefill_s` for one
prefill of `batch` prompts of `prompt_tokens` each, `decode_step_s` for one decode iteration of
`batch` sequences at `ctx_tokens` (default `prompt_tokens`) context each, `power_w` the per-GPU
power during that decode step, plus `prefill_power_w`, `idle_power_w`, `tdp_w`, KV capacity
(`kv_capacity_blocks` / `_tokens`: every attention layer counted per token, as vLLM's "GPU KV
cache size" counts them; `kv_seqs_at_ctx`: sequences of `ctx_tokens` the cache holds at once in
whole blocks, as a colocated instance counts them — for a model with sliding-window layers,
paged as vLLM pages them, each holding its full-attention layers' KV per token and one window
of the others: more than `kv_capacity_tokens` / `ctx_tokens` once `ctx_tokens` exceeds the
window, `wrpsim.pool.window`; for a Mamba hybrid the capacity is the whole pool, from which
each of those sequences takes its state as vLLM pages it, and `max_seqs` reserves none;
`kv_fits`: whether the decode batch of `batch` sequences fits; the memory beside the weights
that the cache leaves, `reserve_gib`, is what vLLM's start-up profile keeps for the scheduler's
`max_seqs` and `token_budget` — the engine's batch defaults for the GPU unless given, as a pool
takes them — unless `reserve_gib` is given: all three are in the record)
and weight sizes (`params_b`, `active_params_b`: the model's parameters, all and per token,
in billions, as read from its config.json, both counting the embedding and LM head matrices,
which model cards' "activated" counts often leave out; `weight_gib_per_gpu`), the inputs, and
`calibration`: what the numbers rest on (the engine and its
kernel tables, or "uncalibrated: roofline" for a GPU without measurements). `engine=`,
`precision=`, `kv_dtype=`, `ep=` and `attn_dp=` choose the engine calibration and the pool
settings; engines, models and GPUs of your own (`python -m wrpsim.calibrate`, a config.json
model) are read from the catalog folder `WRPSIM_CATALOG` names (its `engines/`, `models.yaml`,
`gpus.yaml`), and a calibration label names an engine file of your own by its path.
`breakdown=true` adds `prefill_breakdown_s` and `decode_breakdown_s`: those two steps' seconds
by term of the latency model (`LatencyModel.breakdown`: GEMMs, attention, all-reduce, MoE,
per-layer floor, CPU ... for the kernel-table engines; `linear`, `collectives`, attention and
`overhead` for `splitwise-2023`), summing to `prefill_s` and `decode_step_s`.
Arguments are Hydra overrides (`key=value`) of conf/perf.yaml; `latency.<field>=value`
overrides an engine constant (a calibrated GPU field under `splitwise-2023`). Bad input — also
a `prompt_tokens` or `ctx_tokens` beyond the model's context, or `batch` above 65,536 — prints
one line on stderr and exits with status 2. A `batch` above 512 (`sanity.VALIDATED_BATCH`)
under a kernel-table engine adds one warning line on stderr: beyond it wrpsim's decode times
were measured against one engine only, and came out about a fifth short there.
"""

from __future__ import annotations

from typing import Any

from wrpsim.cli import load_defaults, parse_overrides, verb_main
from wrpsim.errors import ConfigError, did_you_mean, number, vllm_hint


def _defaults() -> dict[str, Any]:
    """The defaults of conf/perf.yaml."""
    return load_defaults("perf")


def parse_args(argv: list[str]) -> dict[str, Any]:
    """conf/perf.yaml with the `key=value` overrides of `argv` applied (Hydra's grammar);
    `ConfigError` naming an unknown key or a malformed override."""
    from wrpsim.pool.catalog import CALIBRATION_FIELDS
    from wrpsim.pool.engines import CONSTANT_FIELDS

    cfg = _defaults()
    cfg["latency"] = dict(cfg.get("latency") or {})
    valid_sub = sorted(set(CALIBRATION_FIELDS) | set(CONSTANT_FIELDS))
    for key, value in parse_overrides(argv, "perf"):
        head, _, sub = key.partition(".")
        if head == "latency" and sub:
            if sub not in valid_sub:
                raise ConfigError(f"perf: unknown key {key!r}; valid latency.* keys: "
                                  f"{', '.join(valid_sub)}{did_you_mean(sub, valid_sub)}")
            cfg["latency"][sub] = value
        elif key in cfg and key != "latency":
            cfg[key] = value
        elif key == "latency":
            raise ConfigError(f"perf: latency takes one field at a time, latency.<field>=value "
                              f"(e.g. latency.layer_overhead_us=12), got latency={value!r}; "
                              f"fields: {', '.join(valid_sub)}")
        else:
            valid = sorted([k for k in cfg if k != "latency"] + ["latency.<field>"])
            hint = vllm_hint(key, valid) or did_you_mean(key, valid)
            raise ConfigError(f"perf: unknown key {key!r}; valid keys: {', '.join(valid)}{hint}")
    return cfg


def _one_server(message: str, model: str, domain: int) -> str:
    """`message` with `model`'s tp rule as perf takes it, one scale-up domain's values (of
    `domain` GPUs: a server's, or a GB200 NVL72 rack's): the larger groups it lists run
    across servers only in a fleet (`python -m wrpsim`'s network.collectives, no key of
    perf's; a tp above the domain is refused above)."""
    from wrpsim.errors import WrpsimError
    from wrpsim.pool.catalog import get_model

    try:
        spec = get_model(model)
    except WrpsimError:
        return message
    return message.replace(spec.tp_rule(domain=domain),
                           spec.tp_rule(across=False, domain=domain))


def _int(cfg: dict, key: str, low: int) -> int:
    """`cfg[key]` checked to be an integer >= `low`."""
    v = cfg[key]
    if isinstance(v, bool) or not isinstance(v, int) or v < low:
        raise ConfigError(f"perf: {key} must be an integer >= {low}, got {v!r}")
    return v


def _batch(cfg: dict, lat, attn_dp: int) -> tuple[int, int, float]:
    """(max_seqs, token_budget, gpu_mem_util) of the scheduler perf sizes the KV cache for: as a
    pool's (`fleet.with_batch_defaults`: the engine's batch defaults for the GPU where
    `max_seqs` / `token_budget` are null, per data-parallel attention rank, a defaulted
    `max_seqs` at most the budget; the engine's `gpu_mem_util` where null), checked as a pool's
    scheduler is."""
    from wrpsim.pool.engines import get_engine
    from wrpsim.pool.fleet import with_batch_defaults
    from wrpsim.pool.scheduler import SchedulerConfig

    given = {k: cfg[k] for k in ("max_seqs", "token_budget", "gpu_mem_util")
             if cfg[k] is not None}
    d = with_batch_defaults(given, get_engine(cfg["engine"]), lat.gpu, attn_dp)
    try:
        s = SchedulerConfig(**d)
    except ConfigError as e:
        raise ConfigError(f"perf: {str(e).replace('scheduler.', '')}") from None
    return s.max_seqs, s.token_budget, float(s.gpu_mem_util)


def evaluate(cfg: dict[str, Any]) -> dict[str, Any]:
    """The JSON record for a parsed config (see the module docstring)."""
    from wrpsim.pool.engines import build_latency_model
    from wrpsim.pool.perf import GIB

    for k in ("model", "gpu", "engine", "precision", "kv_dtype"):
        if not isinstance(cfg[k], str):
            raise ConfigError(f"perf: {k} must be a name, got {cfg[k]!r}")
    batch, prompt = _int(cfg, "batch", 1), _int(cfg, "prompt_tokens", 1)
    ctx = prompt if cfg["ctx_tokens"] is None else _int(cfg, "ctx_tokens", 0)
    block = _int(cfg, "block_size", 1)
    number("perf: gpu_mem_util", cfg["gpu_mem_util"], 0.0, 1.0, strict_lo=True, finite=True,
           or_null=True)
    number("perf: reserve_gib", cfg["reserve_gib"], 0.0, finite=True, or_null=True)
    tp, ep, attn_dp = _int(cfg, "tp", 1), _int(cfg, "ep", 1), _int(cfg, "attn_dp", 1)
    from wrpsim.sanity import GPUS_PER_SERVER, domain_words, scaleup_gpus

    domain = GPUS_PER_SERVER
    if isinstance(cfg["gpu"], str):
        try:
            domain = scaleup_gpus(cfg["gpu"])
        except ConfigError:
            pass  # (an unknown GPU: build_latency_model names it, with the choices)
    if tp > domain:
        raise ConfigError(f"perf: tp={tp} spans more than one {domain_words(domain)}; perf "
                          f"models tensor parallelism inside one scale-up link, so tp must be "
                          f"at most {domain} (a group across servers runs in a fleet: python -m "
                          f"wrpsim network=fluid network.collectives=true)")
    if not isinstance(cfg["breakdown"], bool):
        raise ConfigError(f"perf: breakdown must be true or false, got {cfg['breakdown']!r}")
    try:
        lat = build_latency_model(cfg["model"], cfg["gpu"], tp, cfg["engine"], cfg["precision"],
                                  cfg["kv_dtype"], ep, cfg["latency"], where="perf: latency",
                                  prefix="perf: ", attn_dp=attn_dp)
    except ConfigError as e:
        msg = _one_server(str(e), cfg["model"], domain)
        raise ConfigError(msg if msg.startswith("perf") else f"perf: {msg}") from None
    limit = lat.model.max_context
    for key, v in (("prompt_tokens", prompt), ("ctx_tokens", ctx)):
        if limit and v > limit:
            raise ConfigError(f"perf: {key} ({v:,}) exceeds {cfg['model']}'s context of "
                              f"{limit:,} tokens")
    from wrpsim.pool.scheduler import MAX_SEQS  # a batch is at most a scheduler's sequences

    if batch > MAX_SEQS:
        raise ConfigError(f"perf: batch must be an integer in 1..{MAX_SEQS:,} (sequences in "
                          f"one iteration), got {batch:,}")
    from wrpsim.pool import window

    win = window.for_pool(lat, lat.model, block)  # (a colocated pool: no KV connector)
    max_seqs, budget, util = _batch(cfg, lat, attn_dp)
    reserve = None if cfg["reserve_gib"] is None else float(cfg["reserve_gib"])
    try:
        blocks = lat.kv_capacity_blocks(block, util, reserve,
                                        window.reserved_seqs(win, max_seqs), max_seqs, budget)
    except ConfigError as e:  # the model does not fit: named like perf's other errors
        raise ConfigError(f"perf: {e}") from None
    # sequences of ctx_tokens the cache holds at once, in whole blocks as a colocated
    # instance counts them (None at ctx_tokens 0: a sequence without KV)
    seqs = None
    if ctx > 0:
        seqs = blocks // -(-ctx // block)
        if win is not None:  # each sequence's window or Mamba state beside its own blocks
            seqs = win.capacity(blocks) // win.seq_blocks(ctx)
    from wrpsim.sanity import kernel_timed, past_validated_batch

    if kernel_timed(cfg["engine"]):  # (its tables are what the warning is about)
        past_validated_batch(batch, attn_dp, f"perf: batch={batch}: a decode step of "
                                             f"{batch:,} sequences")
    decode_s = lat.decode_step_s(batch, ctx)
    # over the step as a run charges it (`Instance` passes the step's duration: with async
    # scheduling a step the CPU outlasts keeps the GPU waiting part of it)
    power = lat.power_at(0, batch, ctx) if hasattr(lat, "power_at") else lat.decode_power_w(
        batch, batch * ctx, decode_s)
    record = {
        "model": cfg["model"], "gpu": cfg["gpu"], "tp": tp, "batch": batch,
        "engine": cfg["engine"], "precision": cfg["precision"], "kv_dtype": cfg["kv_dtype"],
        "ep": ep, "attn_dp": attn_dp,
        "calibration": lat.calibration + window.label(lat.model, win, lat),
        "prompt_tokens": prompt, "ctx_tokens": ctx,
        "prefill_s": lat.prefill_s(batch, prompt),
        "decode_step_s": decode_s,
        "decode_tokens_per_s": batch / decode_s,
        "power_w": power,
        # the same batch of `batch` prompts as `prefill_s` (not one prompt of batch × prompt)
        "prefill_power_w": lat.power_w(batch * prompt, 0, None, lat.prefill_s(batch, prompt),
                                       batch * prompt * (prompt + 1) / 2.0, batch),
        "idle_power_w": lat.idle_power_w(),
        "tdp_w": lat.gpu.tdp_w,
        "max_seqs": max_seqs, "token_budget": budget, "gpu_mem_util": util,
        # GiB per GPU beside the weights that the KV cache leaves: reserve_gib, or vLLM's
        # profiled activations and non-PyTorch memory for max_seqs / token_budget
        "reserve_gib": reserve if reserve is not None else lat.reserve_gib(max_seqs, budget),
        "kv_capacity_blocks": blocks,
        "kv_capacity_tokens": blocks * block,
        # the KV the decode step's batch holds (batch x ctx_tokens): above the capacity the
        # engine could not hold that batch at once (it would queue or preempt)
        "kv_tokens_needed": batch * ctx,
        "kv_fits": seqs is None or batch <= seqs,
        "kv_seqs_at_ctx": seqs,
        "block_size": block,
        # the model's size as wrpsim reads it (from its config.json): a check that a new
        # model's numbers came out right (a publisher's total, a vision tower not included);
        # active: the weights one token goes through, its routed experts only, the input
        # embedding and LM head included — publishers differ there (gpt-oss-120b: 5.71 B here,
        # OpenAI's 5.13 B leaves the input embedding out)
        "params_b": lat.model.params / 1e9,
        "active_params_b": lat.model.active_params / 1e9,
        "weight_gib_per_gpu": lat.weight_bytes_per_gpu / GIB,
        "kv_bytes_per_token_per_gpu": lat.kv_bytes_per_token_per_gpu,
        "latency_overrides": dict(cfg["latency"]),
    }
    if cfg["breakdown"]:
        record["prefill_breakdown_s"] = lat.breakdown(batch * prompt,
                                                      batch * prompt * (prompt + 1) / 2.0,
                                                      0, 0, batch)
        record["decode_breakdown_s"] = lat.breakdown(0, 0.0, batch, batch * ctx)
    return record


def main(argv: list[str] | None = None) -> int:
    """Entry point: print one JSON line; on bad input one error line on stderr, status 2."""
    return verb_main(lambda a: evaluate(parse_args(a)), argv, verb="perf", doc=__doc__)


if __name__ == "__main__":
    raise SystemExit(main())
