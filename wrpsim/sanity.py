"""Checks that stop or flag a run configuration that would run but answer nothing useful.

Contracts:

- `run_seed(value)`: the run seed as an int >= 0; `ConfigError` for anything else (`seed=abc`,
  `seed=1.5`, `seed=true`, `seed=-1`), never a silent truncation.
- `check_pool_sizes(specs, server_gpus)`: `ConfigError` for a pool whose tensor-parallel group
  is larger than its GPU's scale-up domain (`GpuSpec.scaleup_gpus`: one server's
  `GPUS_PER_SERVER` GPUs, or a GB200 NVL72 rack's 72): the latency model times TP collectives
  over the GPUs' scale-up link (NVLink / Infinity Fabric), so a larger group would be timed as
  if it had a scale-up domain its GPUs do not have. Such a group is valid
  only when its inter-server collectives run on a fabric (`network.collectives: true` with
  `network=fluid|packet`; `server_gpus` is then the fabric's `gpus_per_host` and the group must
  be whole servers of it: `wrpsim.pool.spanning`).
- `check_fleet_vs_trace(specs, requests)`: a `WrpsimWarning` when the fleet has more instances
  than the trace has requests (most instances never see a request; cost and energy still count
  every one of them), and a `ConfigError` when the instances could not even be built in
  reasonable memory (more than `MAX_INSTANCES`).
- `past_validated_batch(seqs, attn_dp, lead)`: a `WrpsimWarning` when decode steps of `seqs`
  sequences (`wrpsim.perf`'s `batch`) exceed `VALIDATED_BATCH` per data-parallel attention
  rank, the most that wrpsim's decode times are validated at for every engine;
  `warn_past_validated_batch(inst_t, specs, who)` the same for each pool of a run's or a plan's
  instance table, judged on its busiest instance's mean over its decode steps;
  `kernel_timed(engine, kind)` says which pools they concern.
"""

from __future__ import annotations

from wrpsim.errors import ConfigError, integer, warn

GPUS_PER_SERVER = 8  # HGX / OAM servers of every GPU in the shipped catalog
MAX_INSTANCES = 100_000
#: the most sequences a step at which wrpsim's decode times are validated for every engine:
#: above it only vLLM 0.11's were measured (ML.ENERGY's runs at 768-4,096 clients), and there
#: wrpsim's ITL came out about a fifth short (docs/validation.md, "Steps of more than 512
#: sequences")
VALIDATED_BATCH = 512


def kernel_timed(engine: str, latency_kind: str = "engine") -> bool:
    """Whether a pool of `engine` with latency `kind` is timed from kernel tables — the
    engines whose decode times `VALIDATED_BATCH` is about (not a constant-latency pool, not the
    2023 roofline `splitwise-2023`)."""
    from wrpsim.pool.engines import get_engine

    return latency_kind == "engine" and get_engine(engine).kind == "kernels"


def past_validated_batch(seqs: int, attn_dp: int, lead: str) -> None:
    """One warning when a decode step of `seqs` sequences — each of `attn_dp` data-parallel
    attention ranks stepping ceil(seqs / attn_dp) — is beyond `VALIDATED_BATCH` per rank,
    where the one engine measured came out optimistic; `lead` opens the message and says what
    ran that batch (the per-rank share follows it). Nothing at or below it."""
    rank = -(-seqs // attn_dp)
    if rank > VALIDATED_BATCH:
        if attn_dp > 1:
            lead += f" ({rank:,} per data-parallel attention rank)"
        warn(f"{lead}; above {VALIDATED_BATCH} sequences a step wrpsim's decode times are "
             f"measured against vLLM 0.11 alone (ML.ENERGY), where they came out about a "
             f"fifth shorter than the server's (docs/validation.md, \"Steps of more than "
             f"{VALIDATED_BATCH} sequences\"): read ITL and throughput there as optimistic")


def warn_past_validated_batch(inst_t, specs, who: str = "pool") -> None:
    """One warning per pool of `specs` (`PoolSpec`s) timed from kernel tables (`kernel_timed`)
    whose busiest instance in the instance table `inst_t` ran more than `VALIDATED_BATCH`
    decoding sequences a step on average over its decode steps (`decode_tokens /
    decode_iterations`: prefill-only iterations do not dilute it) per data-parallel attention
    rank; the message starts with `who` and the pool's name: its decode times there are
    likely optimistic (`past_validated_batch`)."""
    rows = zip(inst_t.column("pool").to_pylist(), inst_t.column("decode_tokens").to_pylist(),
               inst_t.column("decode_iterations").to_pylist())
    busiest: dict[str, float] = {}
    for pool, tokens, steps in rows:
        if steps:
            busiest[pool] = max(busiest.get(pool, 0.0), tokens / steps)
    for spec in specs:
        mean = busiest.get(spec.name)
        if mean is None or not kernel_timed(spec.engine, spec.latency.get("kind", "engine")):
            continue
        past_validated_batch(round(mean), spec.attn_dp, f"{who} {spec.name}: its busiest "
                             f"instance ran {mean:,.0f} decoding sequences a step on average")


def run_seed(value, where: str = "seed") -> int:
    """The run seed, an integer >= 0 (see module docstring)."""
    return integer(where, value, 0)


def check_pool_sizes(specs, server_gpus: int | None = None,
                     fabric_gpus: int | None = None) -> None:
    """`ConfigError` naming the first pool whose `tp` exceeds one server, unless its
    collectives run on a fabric of `server_gpus`-GPU servers and it is whole servers of it.
    `fabric_gpus`: the GPUs per server of a fabric whose collectives are not simulated
    (`network.collectives` off); a group larger than that would span its servers with its
    all-reduces timed as if on one server's scale-up link, so it is refused too."""
    for s in specs:
        domain = scaleup_gpus(s.gpu)
        if in_rack(s.tp, domain):
            continue  # (a rack-scale NVLink domain: the group's collectives stay on it)
        if (server_gpus is None and fabric_gpus is not None
                and fabric_gpus < s.tp <= GPUS_PER_SERVER):
            raise ConfigError(
                f"pool.pools.{s.name}.tp={s.tp} spans servers of {fabric_gpus} GPUs "
                f"(network.gpus_per_host) whose collectives are not simulated: set "
                f"network.collectives=true to put them on the fabric, or network.gpus_per_host "
                f">= {s.tp}")
        if server_gpus is not None and s.tp > server_gpus:
            if s.tp % server_gpus:
                raise ConfigError(
                    f"pool.pools.{s.name}.tp={s.tp} spans servers of {server_gpus} GPUs "
                    f"(network.gpus_per_host) but is not a multiple of {server_gpus}; a group "
                    f"spanning servers takes whole servers")
            continue
        if s.tp > domain:
            raise ConfigError(
                f"pool.pools.{s.name}.tp={s.tp} spans more than one {domain_words(domain)} of "
                f"{s.gpu}; wrpsim models tensor parallelism inside one scale-up link, so tp must "
                f"be at most {domain} (for more capacity, add instances; for a group across "
                f"servers, put its collectives on a fabric: network=fluid "
                f"network.collectives=true)")


def scaleup_gpus(gpu: str) -> int:
    """GPUs one scale-up domain of catalog GPU `gpu` joins (`GpuSpec.scaleup_gpus`)."""
    from wrpsim.pool.catalog import get_gpu

    return get_gpu(gpu).scaleup_gpus


def in_rack(tp: int, domain: int) -> bool:
    """Whether a group of `tp` GPUs whose scale-up domain joins `domain` GPUs stays on a
    rack-scale NVLink domain (larger than one server: a GB200 NVL72's), and so never spans
    servers over a fabric."""
    return GPUS_PER_SERVER < domain and tp <= domain


def domain_words(domain: int) -> str:
    """'8-GPU server', or for another domain size '72-GPU NVLink domain' (error messages)."""
    return f"{domain}-GPU {'server' if domain == GPUS_PER_SERVER else 'NVLink domain'}"


#: how the warning on a fleet larger than its trace begins (the planner mutes it: its candidates
#: are fleets of every size)
FLEET_VS_TRACE = "the fleet has"


def check_fleet_vs_trace(specs, requests: int) -> None:
    """Stop on a fleet too large to build; warn on one larger than the trace (module doc)."""
    instances = sum(s.count for s in specs)
    if instances > MAX_INSTANCES:
        counts = ", ".join(f"pool.pools.{s.name}.count={s.count}" for s in specs)
        raise ConfigError(f"the fleet has {instances:,} instances ({counts}); at most "
                          f"{MAX_INSTANCES:,} are simulated")
    if requests and instances > requests:
        gpus = sum(s.count * s.tp for s in specs)
        noun = "request" if requests == 1 else "requests"
        warn(f"{FLEET_VS_TRACE} {instances:,} instances ({gpus:,} GPUs) for {requests:,} {noun}: "
             f"most instances stay idle, and cost and energy count every one of them "
             f"(python -m wrpsim.plan finds the smallest fleet that meets the SLO)")
