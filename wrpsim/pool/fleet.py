"""Pools and fleets built from the `pool` config group.

A *pool* is `count` identical instances: one model on `tp` GPUs of one type with one scheduler.
A *fleet* is one or more pools, possibly of different GPU types and models. The fleet is also
the routers' read-only *view*: `candidates(request)` lists the instances that can serve it.

Config (one YAML per fleet in `pools/`)::

    pools:
      h100:                       # pool name
        gpu: h100-80gb            # GPU catalog name
        model: llama3.1-70b       # model catalog name
        tp: 4
        count: 4
        scheduler: {policy: sarathi, token_budget: 2048, max_seqs: 256}
        engine: vllm-0.24         # serving-engine calibration (pools/catalog/engines/)
        precision: bf16           # bf16 | fp8 | fp8_block | fp4[_attn_bf16] | int4 |
                                  # mxfp4[_marlin|_mxfp8]
        kv_dtype: auto            # auto (BF16) | bf16 | fp8
        ep: 1                     # expert parallelism: 1, or tp (experts spread over the GPUs)
        attn_dp: 1                # data-parallel attention groups (MoE models): tp GPUs as
                                  # attn_dp groups of tp / attn_dp for attention, all tp for MoE
        max_context: null         # vLLM's max_model_len (default: what vLLM serves without
                                  # --max-model-len, the model's max_context — a LongRoPE
                                  # model's original length —; none with a constant latency
                                  # model)
        latency: {kind: engine}   # or {kind: constant, decode_step_s: 0.02, ...}; other keys
                                  # override engine constants, e.g. {iter_overhead_us: 500}
        kv_blocks: null           # override the computed KV capacity (blocks)
    default_model: null           # model of requests that name none (default: first pool's)
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

from wrpsim.errors import (
    ConfigError,
    ContextWarning,
    boolean,
    check_keys,
    number,
    single_name,
    under,
    unknown_choice,
    warn,
)
from wrpsim.pool import window
from wrpsim.pool.catalog import get_gpu, get_model
from wrpsim.pool.constant import ConstantLatency
from wrpsim.pool.instance import Instance
from wrpsim.pool.scheduler import SchedulerConfig
from wrpsim.pool.spanning import SpanningInstance, spans
from wrpsim.pool.tiers import TierStore
from wrpsim.pool.transfer import MODES, KVTransfer

POOL_KEYS = ("gpu", "model", "tp", "count", "scheduler", "latency", "kv_blocks", "prefix_cache",
             "role", "kv_transfer", "kv_tiers", "engine", "precision", "kv_dtype", "ep", "attn_dp",
             "max_context")
TIER_KEYS = ("dram_gib", "pcie_gbps")
REMOTE_KEYS = ("capacity_gib", "nic_gbps")
ROLES = ("both", "prefill", "decode")
KV_TRANSFER_KEYS = ("mode",)
PREFIX_KEYS = ("enabled", "capacity_blocks")
LATENCY_KINDS = ("engine", "constant")


@dataclass(frozen=True)
class PoolSpec:
    """A validated pool configuration."""

    name: str
    gpu: str
    model: str
    tp: int
    count: int
    scheduler: SchedulerConfig
    latency: dict
    kv_blocks: int | None
    price_per_gpu_hour: float
    prefix_cache: bool = False
    prefix_capacity_blocks: int | None = None
    role: str = "both"
    kv_mode: str = "layerwise"
    dram_gib: float = 0.0
    pcie_gbps: float = 25.0
    engine: str = "vllm-0.24"
    precision: str = "bf16"
    kv_dtype: str = "auto"
    ep: int = 1
    max_context: int = 0
    attn_dp: int = 1


def parse_pool(name: str, d: dict) -> PoolSpec:
    """Validate one pool's mapping, naming the offending field (`pool.pools.<name>.<field>`)."""
    where = f"pool.pools.{name}"
    if not isinstance(d, dict):
        raise ConfigError(f"{where} must be a mapping with keys {', '.join(POOL_KEYS)}")
    check_keys(d, POOL_KEYS, where)
    for key in ("gpu", "model"):
        if not d.get(key):
            raise ConfigError(f"{where}.{key} is required")
        single_name(f"{where}.{key}", d[key])
    for key in ("engine", "precision", "kv_dtype"):
        if d.get(key) is not None:
            single_name(f"{where}.{key}", d[key])
    for key in ("scheduler", "latency"):  # a scalar where a section belongs
        if d.get(key) is not None and not isinstance(d[key], dict):
            raise ConfigError(f"{where}.{key} must be a mapping of {key} settings "
                              f"(pools/README.md), got {d[key]!r}")
    try:
        gpu = get_gpu(d["gpu"])
        model = get_model(d["model"])
    except ConfigError as e:  # name the field where the config has it
        raise ConfigError(under(where, str(e))) from None
    from wrpsim.pool.engines import DEFAULT_ENGINE, get_engine
    from wrpsim.pool.kernels.model import KV_DTYPES, PRECISIONS

    engine = DEFAULT_ENGINE if d.get("engine") is None else d["engine"]  # ("" is no name)
    try:
        eng = get_engine(engine)
    except ConfigError as e:
        raise ConfigError(under(where, str(e))) from None
    precision = "bf16" if d.get("precision") is None else d["precision"]
    if precision not in PRECISIONS:
        raise unknown_choice(f"{where}.precision", precision, PRECISIONS)
    kv_dtype = "auto" if d.get("kv_dtype") is None else d["kv_dtype"]
    if kv_dtype not in KV_DTYPES:
        raise unknown_choice(f"{where}.kv_dtype", kv_dtype, KV_DTYPES)
    for key, default in (("tp", 1), ("count", 1), ("ep", 1), ("attn_dp", 1)):
        v = d.get(key, default)
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise ConfigError(f"{where}.{key} must be an integer >= 1, got {v!r}")
    ep = d.get("ep", 1)
    if ep not in (1, d.get("tp", 1)):
        raise ConfigError(f"{where}.ep must be 1 or equal to tp ({d.get('tp', 1)}), got {ep!r}")
    if ep > 1 and not model.moe:
        raise ConfigError(f"{where}.ep: {model.name} is not a mixture-of-experts model; "
                          f"use ep: 1")
    attn_dp = d.get("attn_dp", 1)
    if d.get("tp", 1) % attn_dp:
        raise ConfigError(f"{where}.attn_dp must divide tp ({d.get('tp', 1)}), got {attn_dp!r}")
    if attn_dp > 1 and not model.moe:
        raise ConfigError(f"{where}.attn_dp: {model.name} is not a mixture-of-experts model; "
                          f"use attn_dp: 1 and count for data-parallel replicas")
    max_ctx = d.get("max_context")
    if max_ctx is not None and (isinstance(max_ctx, bool) or not isinstance(max_ctx, int)
                                or max_ctx < 1):
        raise ConfigError(f"{where}.max_context must be null or an integer >= 1, "
                          f"got {max_ctx!r}")
    if max_ctx and model.max_context and max_ctx > model.max_context:
        raise ConfigError(f"{where}.max_context ({max_ctx}) exceeds {model.name}'s maximum "
                          f"context length ({model.max_context})")
    latency = dict(d.get("latency") or {"kind": "engine"})
    kind = latency.get("kind", "engine")
    if kind not in LATENCY_KINDS:
        raise unknown_choice(f"{where}.latency.kind", kind, LATENCY_KINDS)
    # a constant-latency pool is an abstract server (queueing oracles, measurement fleets): the
    # model's context length binds it only when max_context says so
    max_ctx = max_ctx or (0 if kind == "constant"
                          else model.default_context or model.max_context)
    kv_blocks = d.get("kv_blocks")
    if kv_blocks is not None and (not isinstance(kv_blocks, int) or isinstance(kv_blocks, bool)
                                  or kv_blocks < 1):
        raise ConfigError(f"{where}.kv_blocks must be null or an integer >= 1, got {kv_blocks!r}")
    pc = d.get("prefix_cache") or {}
    if not isinstance(pc, dict) or sorted(k for k in pc if k not in PREFIX_KEYS):
        raise ConfigError(f"{where}.prefix_cache must be a mapping with keys "
                          f"{', '.join(PREFIX_KEYS)}; got {pc!r}")
    cap = pc.get("capacity_blocks")
    if cap is not None and (not isinstance(cap, int) or isinstance(cap, bool) or cap < 0):
        raise ConfigError(f"{where}.prefix_cache.capacity_blocks must be null or an integer >= 0,"
                          f" got {cap!r}")
    role = d.get("role", "both")
    if role not in ROLES:
        raise unknown_choice(f"{where}.role", role, ROLES)
    kt = d.get("kv_transfer") or {}
    if not isinstance(kt, dict):
        raise ConfigError(f"{where}.kv_transfer must be a mapping with keys "
                          f"{', '.join(KV_TRANSFER_KEYS)}, got {kt!r}"
                          + (f"; did you mean {where}.kv_transfer.mode={kt}?"
                             if kt in MODES else ""))
    bad = sorted(k for k in kt if k not in KV_TRANSFER_KEYS)
    if bad:
        raise ConfigError(f"{where}.kv_transfer: unknown key(s) {bad}; valid keys: "
                          f"{', '.join(KV_TRANSFER_KEYS)}")
    if d.get("kv_transfer") is not None and role != "prefill":
        raise ConfigError(f"{where}.kv_transfer applies to pools with role prefill (they send "
                          f"the KV); this pool's role is {role} (valid roles: "
                          f"{', '.join(ROLES)}); remove kv_transfer or set role: prefill")
    mode = kt.get("mode", "layerwise")
    if mode not in MODES:
        raise unknown_choice(f"{where}.kv_transfer.mode", mode, MODES)
    tiers = _numbers(d.get("kv_tiers"), f"{where}.kv_tiers", TIER_KEYS)
    prefix = boolean(f"{where}.prefix_cache.enabled", pc.get("enabled"),
                     default_prefix_cache(eng, model, role, kind))
    if tiers.get("dram_gib") and not prefix:
        warn(f"{where}.kv_tiers.dram_gib: the host-DRAM tier holds prefix-cache blocks, and "
             f"this pool has no prefix cache, so it is not used (set "
             f"{where}.prefix_cache.enabled: true, with a workload that has prefix ids)")
    return PoolSpec(
        name=name, gpu=d["gpu"], model=d["model"], tp=d.get("tp", 1), count=d.get("count", 1),
        scheduler=SchedulerConfig.from_dict(
            with_batch_defaults(d.get("scheduler"), eng, gpu, attn_dp, kind),
            f"{where}.scheduler"),
        latency=latency, kv_blocks=kv_blocks, price_per_gpu_hour=gpu.price_per_hour_usd,
        prefix_cache=prefix,
        prefix_capacity_blocks=cap,
        role=role, kv_mode=mode, dram_gib=tiers.get("dram_gib", 0.0),
        pcie_gbps=tiers.get("pcie_gbps", 25.0), engine=engine, precision=precision,
        kv_dtype=kv_dtype, ep=ep, max_context=max_ctx, attn_dp=attn_dp,
    )


def with_batch_defaults(sched, engine, gpu, attn_dp: int = 1, latency_kind: str = "engine"):
    """A pool's scheduler mapping with the engine's batch defaults for its GPU where it leaves
    `token_budget` / `max_seqs` out or null (`Engine.default_batch`: `vllm serve`'s for the
    vLLM engines): per data-parallel attention rank, as vLLM gives each rank its own (the
    instance schedules all `attn_dp` ranks' sequences), a defaulted `max_seqs` at most the
    token budget (vLLM takes the smaller); and the engine's `gpu_mem_util` where the pool leaves
    that out (`Engine.gpu_mem_util`: vLLM's default `--gpu-memory-utilization` of its version);
    none for a constant latency model (an abstract server keeps the scheduler's own). Anything
    that is not a mapping is returned as is (refused downstream)."""
    if sched is not None and not isinstance(sched, dict):
        return sched
    out = {k: v for k, v in (sched or {}).items() if v is not None}
    if latency_kind == "constant":
        return out
    given = set(out)
    for k, v in engine.default_batch(gpu).items():
        out.setdefault(k, v * attn_dp)
    out.setdefault("gpu_mem_util", engine.gpu_mem_util)
    if "max_seqs" not in given and isinstance(out.get("token_budget"), int) \
            and not isinstance(out.get("token_budget"), bool) and "max_seqs" in out:
        out["max_seqs"] = min(out["max_seqs"], out["token_budget"])
    return out


def default_prefix_cache(engine, model, role: str, latency_kind: str) -> bool:
    """Whether a pool that leaves `prefix_cache.enabled` out (or null) caches prefixes: as its
    engine does by default (`Engine.prefix_caching`: vLLM's V1 engine, `--enable-prefix-caching`
    on unless turned off) — but not for a Mamba hybrid (vLLM 0.11 turns prefix caching off for
    them: no recurrent state is kept at a cached prefix), not on a decode pool (its prompts
    arrive computed), and not for a constant latency model (an abstract server)."""
    return (engine.prefix_caching and not model.mamba_layers and role != "decode"
            and latency_kind != "constant")


#: bandwidths of the KV tiers (GB/s, Gb/s): a transfer divides by them, so they must be > 0
_RATES = ("pcie_gbps", "nic_gbps")


def _numbers(d, where: str, keys: tuple) -> dict:
    """Validate a small mapping of finite numbers with known keys: >= 0, bandwidths > 0."""
    d = d or {}
    if not isinstance(d, dict):
        raise ConfigError(f"{where} must be a mapping with keys {', '.join(keys)}")
    check_keys(d, keys, where)
    return {k: number(f"{where}.{k}", v, lo=0, strict_lo=k in _RATES, finite=True)
            for k, v in d.items() if v is not None}


def build_latency(spec: PoolSpec, scaleup: int | None = None):
    """The latency model of one instance of the pool (shared by its instances); `scaleup`:
    GPUs per server when the pool's group spans servers (`wrpsim.pool.spanning`)."""
    opts = {k: v for k, v in spec.latency.items() if k != "kind"}
    where = f"pool.pools.{spec.name}.latency"
    try:
        if spec.latency.get("kind", "engine") == "constant":
            if spec.attn_dp > 1:
                raise ConfigError(f"pool.pools.{spec.name}.attn_dp: a constant latency model "
                                  f"has no attention groups; use attn_dp: 1")
            return ConstantLatency(tp=spec.tp, **opts)
        from wrpsim.pool.engines import build_latency_model

        s = spec.scheduler
        return build_latency_model(
            spec.model, spec.gpu, spec.tp, spec.engine, spec.precision, spec.kv_dtype, spec.ep,
            opts, max_tokens=max(s.token_budget, s.max_seqs, 2048), where=where,
            prefix=f"pool.pools.{spec.name}.", scaleup=scaleup, attn_dp=spec.attn_dp)
    except TypeError as e:
        raise ConfigError(f"{where}: {e}") from None


def kv_capacity(lat, sched, win=None) -> int:
    """KV blocks of an instance with latency model `lat` under scheduler settings `sched`: of
    every attention layer beside the Mamba state of `max_seqs` sequences, or, with `win`
    (`pool_window`: a model whose sliding-window layers or Mamba state vLLM pages with its
    KV), the ledger blocks in the same memory (a Mamba state then held per sequence)."""
    blocks = lat.kv_capacity_blocks(sched.block_size, sched.gpu_mem_util, sched.reserve_gib,
                                    window.reserved_seqs(win, sched.max_seqs), sched.max_seqs,
                                    sched.token_budget)
    return win.capacity(blocks) if win is not None else blocks


def pool_window(spec: PoolSpec, lat, remote_kv: bool = False):
    """The `window.WindowKV` or `window.MambaKV` of a pool's instances, or None where they
    count every layer's KV per token and reserve any Mamba state up front
    (`wrpsim.pool.window`): also None with a KV connector — a prefill / decode
    role, or a prefix cache with a host-DRAM tier or (`remote_kv`) the model's remote KV
    pool — for which vLLM 0.11 keeps every layer whole."""
    connector = spec.role != "both" or (spec.prefix_cache and (bool(spec.dram_gib)
                                                               or remote_kv))
    return window.for_pool(lat, get_model(spec.model), spec.scheduler.block_size, connector)


def seq_capacity(spec: PoolSpec, blocks: int, win=None) -> int:
    """KV tokens one sequence of an instance of `blocks` KV blocks can hold: its attention
    group's share (a sequence lives on one group); with `win` (`pool_window`) beside its
    window or Mamba-state blocks."""
    group = blocks // spec.attn_dp
    return win.max_tokens(group) if win is not None else group * spec.scheduler.block_size


def check_context_fits(spec: PoolSpec, lat, blocks: int, key: str, win=None) -> None:
    """Warn when, by wrpsim's memory estimate, a pool's KV (`blocks` blocks per instance)
    cannot hold one `max_context` sequence: vLLM refuses to start a server whose own estimate
    falls short so; wrpsim runs it and drops the longer requests. vLLM's check needs one
    sequence's Mamba state, not `max_seqs` of them. With `win` (`pool_window`: the pool pages
    sliding-window layers apart) a sequence's layers hold one window each; without it every
    layer counts per token, as the instances count it. `key`: the pool's config key, for the
    message."""
    if not spec.max_context:
        return
    cap = one = seq_capacity(spec, blocks, win)
    if getattr(lat, "mamba_state_bytes", 0.0) and not window.pages_state(win):
        s = spec.scheduler
        one = seq_capacity(spec, lat.kv_capacity_blocks(s.block_size, s.gpu_mem_util,
                                                        s.reserve_gib, 1, s.max_seqs,
                                                        s.token_budget))
    if one >= spec.max_context:
        return
    warn(f"{key}: by wrpsim's memory estimate (scheduler.gpu_mem_util x GPU memory - "
         f"weights - the activation reserve, scheduler.reserve_gib) its KV cache holds "
         f"{one:,} tokens for one "
         f"sequence, fewer than its max_context ({spec.max_context:,}); vLLM refuses to "
         f"start a server whose own estimate falls short so, and wrpsim drops the longer "
         f"requests (exceeds_kv_capacity). Set {key}.max_context to at most {one:,} (with "
         f"a '+' where the pool's file leaves it out), or give the KV room "
         f"(scheduler.gpu_mem_util / reserve_gib{' / max_seqs' if one != cap else ''}, tp, "
         f"kv_dtype)", ContextWarning)


def check_mamba_pool(spec: PoolSpec, lat, blocks: int, key: str, win=None) -> None:
    """Warn where a Mamba hybrid's pool is not what vLLM would run: `max_seqs` above the
    sequences whose state its cache holds (`win`: a `window.MambaKV`; vLLM 0.11 runs at most
    that many at once, as wrpsim does; later vLLM refuses to start), and a prefix cache, which
    vLLM 0.11 turns off for such models (wrpsim's hits skip prefill it could not skip: the
    state at a cached prefix is not kept)."""
    model = get_model(spec.model)
    if not model.mamba_layers or getattr(lat, "kernels", None) is None:
        return
    if window.pages_state(win):
        most = win.max_seqs(blocks // spec.attn_dp) * spec.attn_dp
        if spec.scheduler.max_seqs > most:
            warn(f"{key}.scheduler.max_seqs ({spec.scheduler.max_seqs:,}) exceeds the "
                 f"{most:,} sequences whose Mamba state (with one attention block each) its "
                 f"KV cache holds; vLLM 0.11 runs at most that many at once, as wrpsim does, "
                 f"and later vLLM refuses to start (\"max_num_seqs exceeds available Mamba "
                 f"cache blocks\"): set {key}.scheduler.max_seqs to at most {most:,} to "
                 f"plan for it")
    if spec.prefix_cache:
        warn(f"{key}.prefix_cache: vLLM 0.11 turns prefix caching off for Mamba hybrids "
             f"({spec.model}); wrpsim's hits skip the cached prompt tokens as for attention "
             f"models, though no Mamba state is kept at a cached prefix (optimistic)")


def kv_bytes_per_token(lat, model, spec: PoolSpec) -> float:
    """KV-cache bytes one token of a sequence occupies on an instance of `spec`, all its
    layers on all the GPUs that hold the sequence: the latency model's bytes per GPU (at the
    pool's `kv_dtype`; KV heads replicated when the group's TP exceeds them, MLA's latent on
    every GPU) times the GPUs of one attention group (`tp / attn_dp`). A block occupies that
    in the host-DRAM and remote tiers (each GPU offloads its HBM), and a disaggregated hand-off
    sends the decode instance's figure: each decode GPU receives its share, its own copy of
    replicated heads or of the latent included (as vLLM's KV connectors pull per worker). A
    constant latency model has no KV layout: the model's native `kv_bytes_per_token`."""
    per_gpu = getattr(lat, "kv_bytes_per_token_per_gpu", None)
    if per_gpu is None:
        return float(model.kv_bytes_per_token)
    return per_gpu * (spec.tp // spec.attn_dp)


def kv_width(kv_dtype) -> str:
    """The element type a KV cache of `kv_dtype` stores and a disaggregated hand-off sends
    (auto is BF16: `wrpsim.pool.kernels.model`)."""
    return "bf16" if kv_dtype in (None, "auto") else str(kv_dtype)


def same_kv_width(kv_dtype) -> list[str]:
    """The `kv_dtype` values whose cache can receive a `kv_dtype` cache as is."""
    from wrpsim.pool.kernels.model import KV_DTYPES

    return [d for d in KV_DTYPES if kv_width(d) == kv_width(kv_dtype)]


def _check_disaggregated(model: str, mine: list, specs: list) -> None:
    """One line naming the pool field that makes a disaggregated model's pools unusable."""
    roles = {s.role for s in mine}
    if "both" in roles:
        bad = next(s for s in mine if s.role == "both")
        raise ConfigError(
            f"pool.pools.{bad.name}.role: model {model} has pools with roles "
            f"{sorted(roles)}; a disaggregated model needs pools with role prefill and role "
            f"decode and none with role both")
    need = "decode" if "prefill" in roles else "prefill"
    if need in roles:
        p = next(s for s in mine if s.role == "prefill")
        for s in mine:
            if kv_width(s.kv_dtype) != kv_width(p.kv_dtype):
                raise ConfigError(
                    f"pool.pools.{s.name}.kv_dtype: {s.kv_dtype} differs from prefill pool "
                    f"{p.name}'s {p.kv_dtype} and the KV cache moves between them as is; "
                    f"valid choices: {', '.join(same_kv_width(p.kv_dtype))}")
        return
    have = next(s for s in mine if s.role in ("prefill", "decode"))
    others = [s for s in specs if s.role == need]
    if others:  # the pool that would pair with it serves another model
        o = others[0]
        raise ConfigError(
            f"pool.pools.{o.name}.model: {o.model}, but {need} pool {o.name} must serve the "
            f"model of a {have.role} pool and {have.role} pool {have.name}'s {model} has no "
            f"{need} pool")
    raise ConfigError(
        f"pool.pools.{have.name}.role: model {model} has a {have.role} pool and no {need} "
        f"pool; a disaggregated model needs pools with role prefill and role decode (valid "
        f"roles: {', '.join(ROLES)})")


class Candidates(list):
    """Instances that can serve one model, with the model's name and a per-role key attached.

    Every Candidates list is registered so that `Fleet.set_down` can leave a failed instance
    out of all of them — the fleet's and those routers build — and put it back on repair."""

    model: str
    key: str

    def __init__(self, instances=()):
        super().__init__(instances)
        self.every = tuple(self)  # all instances, up or down, in order
        _REGISTRY.append(weakref.ref(self))


_REGISTRY: list = []  # weak references to every Candidates list (lists are unhashable)


class Fleet:
    """All pools of a run; the routers' read-only view of it."""

    def __init__(self, env, specs: list[PoolSpec], sink, default_model: str | None = None,
                 hash_block_tokens: int = 0, transfer: KVTransfer | None = None,
                 remote_kv: dict | None = None):
        """`hash_block_tokens`: tokens per prefix-hash id of the workload (0: it has no ids);
        `transfer`: the KV-transfer link model for disaggregated pools (default: instant);
        `remote_kv`: {capacity_gib, nic_gbps} of a remote KV pool per model (prefix caches)."""
        remote = _numbers(remote_kv, "pool.remote_kv", REMOTE_KEYS)
        self.remote_stores: dict[str, TierStore] = {}
        self.transfer = transfer or KVTransfer(env)
        if not specs:
            raise ConfigError("pool.pools must define at least one pool")
        self.specs = specs
        self.pools: dict[str, list[Instance]] = {}
        self.latency = {}
        #: per pool, what outputs add to its calibration label on sliding-window KV
        self.kv_notes: dict[str, str] = {}
        self.max_tokens: dict[str, int] = {}  # per model: longest request (prompt + output) a
        # colocated or decode instance can hold
        # collectives of groups spanning servers, on the fabric (None: off)
        coll = getattr(self.transfer, "collectives", None)
        server = self.transfer.fabric.cfg.gpus_per_host if coll is not None else None
        for spec in specs:
            span = spans(spec.tp, server, get_gpu(spec.gpu).scaleup_gpus)
            lat = build_latency(spec, server if span else None)
            win = pool_window(spec, lat, bool(remote.get("capacity_gib")))
            blocks = spec.kv_blocks
            if blocks is None:
                if not hasattr(lat, "kv_capacity_blocks"):
                    raise ConfigError(f"pool.pools.{spec.name}.kv_blocks is required with a "
                                      "constant latency model")
                try:
                    blocks = kv_capacity(lat, spec.scheduler, win)
                except ConfigError as e:  # the weights leave no room: name the pool
                    raise ConfigError(f"pool.pools.{spec.name}: {e}") from None
            self.latency[spec.name] = lat
            self.kv_notes[spec.name] = window.label(get_model(spec.model), win, lat)
            pbt = hash_block_tokens if spec.prefix_cache else 0
            if pbt % spec.scheduler.block_size:
                raise ConfigError(
                    f"pool.pools.{spec.name}.prefix_cache: the workload's hash_block_tokens "
                    f"({pbt}) must be a multiple of scheduler.block_size "
                    f"({spec.scheduler.block_size})")
            model = get_model(spec.model)
            kind, kw = Instance, {}
            if span:
                kind = SpanningInstance
                kw["span"] = (server, model.hidden,
                              model.attn_layers + model.ffn_layers + model.mamba_layers, coll)
            self.pools[spec.name] = [
                kind(env, spec.name, i, lat, spec.scheduler, blocks, sink, pbt,
                     spec.prefix_capacity_blocks, **kw)
                for i in range(spec.count)
            ]
            kv_token = kv_bytes_per_token(lat, model, spec)
            if pbt:
                self._attach_tiers(spec, kv_token, remote)
            for inst in self.pools[spec.name]:
                inst.role = spec.role
                inst.price_per_gpu_hour = spec.price_per_gpu_hour
                inst.model = spec.model
                inst.transfer = self.transfer
                inst.kv_mode = spec.kv_mode
                inst.layers = model.layers
                inst.kv_bytes_per_token = kv_token
                inst.state_bytes_per_seq = float(getattr(lat, "mamba_state_bytes", 0.0) or 0.0)
                inst.max_context = spec.max_context
                inst._win = win
            cap = seq_capacity(spec, blocks, win)
            if spec.kv_blocks is None:
                check_context_fits(spec, lat, blocks, f"pool.pools.{spec.name}", win)
            check_mamba_pool(spec, lat, blocks, f"pool.pools.{spec.name}", win)
            if spec.role != "prefill":  # a prefill instance holds the prompt only; the decode
                # (or colocated) instance holds prompt + output and bounds the request
                self.max_tokens[spec.model] = max(self.max_tokens.get(spec.model, 0), cap)
        self.models = sorted({s.model for s in specs})
        self.default_model = default_model or specs[0].model
        if self.default_model not in self.models:
            raise unknown_choice("pool.default_model", self.default_model, self.models)
        self._cands: dict[str, Candidates] = {}
        self._decode: dict[str, Candidates] = {}
        self.disaggregated: set[str] = set()
        for model in self.models:
            mine = [s for s in specs if s.model == model]
            roles = {s.role for s in mine}
            if "prefill" in roles or "decode" in roles:
                _check_disaggregated(model, mine, specs)
                self.disaggregated.add(model)
            c = Candidates(i for s in mine if s.role != "decode" for i in self.pools[s.name])
            c.model, c.key = model, model
            self._cands[model] = c
            d = Candidates(i for s in mine if s.role == "decode" for i in self.pools[s.name])
            d.model, d.key = model, model + "/decode"
            self._decode[model] = d
        self.instances = [i for s in specs for i in self.pools[s.name]]
        self.down_count = 0  # instances down now (wrpsim.failures)
        #: callables(instance, down) told of every failure and repair before the candidate
        #: lists change (the router's view mirrors health: `wrpsim.router.feed`)
        self.health_watchers: list = []

    def _attach_tiers(self, spec: PoolSpec, kv_token: float, remote: dict) -> None:
        """Give each instance's prefix cache its DRAM tier and the model's remote pool
        (`kv_token`: KV bytes of one token on the instance, `kv_bytes_per_token`)."""
        bs = spec.scheduler.block_size
        block_bytes = bs * kv_token  # whole instance
        per_gpu = block_bytes / (spec.tp // spec.attn_dp)  # one attention group holds it
        store = None
        if remote.get("capacity_gib"):
            store = self.remote_stores.get(spec.model)
            if store is None:
                cap = int(remote["capacity_gib"] * 2**30 // block_bytes)
                rate = remote.get("nic_gbps", 400.0) * 1e9 / 8
                store = self.remote_stores[spec.model] = TierStore("remote", cap, rate)
        for inst in self.pools[spec.name]:
            cache = inst.prefix
            cache.block_bytes_per_gpu = per_gpu
            cache.remote = store
            if spec.dram_gib:
                cap = int(spec.dram_gib * 2**30 // block_bytes)
                cache.dram = TierStore("dram", cap, spec.pcie_gbps * 1e9)

    def set_down(self, inst, down: bool) -> list:
        """Fail an instance and leave it out of every candidate list (return the sequences it
        lost), or repair it and put it back (return [])."""
        if down == inst.down:
            return []
        seqs = inst.fail() if down else []
        if not down:
            inst.recover()
        self.down_count += 1 if down else -1
        for fn in self.health_watchers:
            fn(inst, down)
        _REGISTRY[:] = [r for r in _REGISTRY if r() is not None]
        name = inst.name
        for r in _REGISTRY:  # lists of instances, or of the router's views of them (same names)
            c = r()
            if c is not None and any(i.name == name for i in c.every):
                c[:] = [i for i in c.every if not i.down]
        return seqs

    def model_of(self, request) -> str:
        """The model that serves `request` (its own, or the fleet's default)."""
        return request.model or self.default_model

    def candidates(self, request) -> Candidates:
        """Instances that can take the request first: those whose pool serves its model with
        role both or prefill (pool order, then index)."""
        return self._cands[request.model or self.default_model]

    def candidate_lists(self) -> tuple[dict, dict]:
        """(model -> Candidates, model -> decode Candidates): every list `candidates` and
        `decode_candidates` return."""
        return self._cands, self._decode

    def decode_candidates(self, request) -> Candidates:
        """Decode-role instances for the request's model (empty unless it is disaggregated)."""
        return self._decode[request.model or self.default_model]

    @property
    def gpu_count(self) -> int:
        """GPUs provisioned in the fleet."""
        return sum(s.tp * s.count for s in self.specs)
