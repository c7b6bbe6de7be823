"""The `plan` section of `conf/plan.yaml`, validated: candidate pools, SLO targets, search knobs.

A *candidate* is a pool template without `count` (the planner chooses counts)::

    plan:
      candidates:
        h100: {gpu: h100-80gb, model: llama3.1-70b, tp: 4, scheduler: {...}}
        h100-pd:                        # disaggregated: one prefill and one decode pool
          gpu: h100-80gb
          model: llama3.1-70b
          tp: 4
          role: disaggregated
          decode: {gpu: a100-80gb}      # optional per-side overrides of the template

A colocated candidate (`role: both`, the default) becomes one pool named like the candidate; a
disaggregated one becomes `<name>-prefill` and `<name>-decode`. Every template is checked by the
engine's own pool parser, and its latency model and KV capacity are built once, so a bad GPU, a
model that does not fit or an unknown key fails here with a message naming
`plan.candidates.<name>.<field>`. All candidates must serve one model (see docs/planning.md).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from wrpsim.errors import (
    ConfigError,
    FitError,
    boolean,
    check_keys,
    single_name,
    under,
    unknown_choice,
    warn,
)
from wrpsim.plan.slo import SLOTargets

PLAN_KEYS = ("candidates", "slo", "objective", "max_instances", "mix", "pd_ratios",
             "recheck_seed", "recheck_shuffle_window_s", "load_sensitivity", "search_window_s",
             "max_evaluations", "report")
OBJECTIVES = ("cost", "energy", "gpus")
SIDES = ("prefill", "decode")


@dataclass(frozen=True)
class PoolTemplate:
    """One pool the planner sizes: its engine config (no `count`), role and candidate."""

    name: str
    candidate: str
    role: str
    config: dict
    gpu: str
    tp: int
    price_per_hour_usd: float  # for the whole instance (tp GPUs)
    calibration: str = ""  # what its iteration times rest on ("uncalibrated: roofline ..." when
    # its GPU has no kernel measurements), as summary.json's `calibration`
    batching: str = ""  # its scheduler as parsed, defaults filled in ("sarathi, 2,048 tokens,
    # 256 sequences": a candidate without `scheduler` takes its engine's batch defaults)


@dataclass(frozen=True)
class PlanConfig:
    """The validated `plan` section (field meanings: conf/plan.yaml)."""

    pools: tuple[PoolTemplate, ...]
    candidates: tuple[str, ...]
    model: str
    slo: SLOTargets
    objective: str
    max_instances: int
    mix: bool
    pd_ratios: tuple[tuple[int, int], ...]
    recheck_seed: int | None
    recheck_shuffle_window_s: float | None
    load_sensitivity: float
    search_window_s: float | None
    max_evaluations: int
    report: bool
    #: candidates left out because their model does not fit their GPUs: (name, why) each
    unfit: tuple[tuple[str, str], ...] = ()


def _int(d: dict, key: str, low: int, default=None, high: int | None = None) -> int:
    v = d.get(key, default)
    if isinstance(v, bool) or not isinstance(v, int) or v < low:
        raise ConfigError(f"plan.{key} must be an integer >= {low}, got {v!r}")
    if high is not None and v > high:
        raise ConfigError(f"plan.{key} must be an integer in [{low}, {high}], got {v!r}")
    return v


def _opt_pos(d: dict, key: str, least: float = 0.0) -> float | None:
    """`plan.<key>`: null, or a finite number > 0 (at least `least` when given: a shuffle
    window of 1e-300 s overflowed into one window of the whole trace)."""
    v = d.get(key)
    if v is None:
        return None
    if (isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0
            or v == float("inf") or v < least):
        low = f">= {least:g}" if least else "> 0"
        raise ConfigError(f"plan.{key} must be null or a finite number {low}, got {v!r}")
    return float(v)


def parse_ratio(text) -> tuple[int, int]:
    """'1:2' -> (1, 2); `ConfigError` for anything but two positive integers."""
    m = re.fullmatch(r"\s*(\d+)\s*:\s*(\d+)\s*", str(text))
    if not m or int(m[1]) < 1 or int(m[2]) < 1:
        raise ConfigError(f"plan.pd_ratios: each ratio is 'P:D' with integers >= 1, got {text!r}")
    return int(m[1]), int(m[2])


def quiet_pool(name: str, cfg: dict):
    """`parse_pool(name, cfg with count 1)` with its warnings muted: the estimates and checks
    that parse a candidate again after `parse_plan` did (which showed each warning once)."""
    import warnings

    from wrpsim.errors import WrpsimWarning
    from wrpsim.pool.fleet import parse_pool

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", WrpsimWarning)
        return parse_pool(name, {**cfg, "count": 1})


def _check_pool(where: str, name: str, cfg: dict) -> PoolTemplate:
    """Validate one expanded pool with the engine's parser; errors renamed to `where`."""
    from wrpsim.pool.catalog import get_gpu, get_model
    from wrpsim.pool.fleet import (
        build_latency,
        check_context_fits,
        kv_capacity,
        parse_pool,
        pool_window,
    )
    from wrpsim.sanity import check_pool_sizes

    for key, get in (("gpu", get_gpu), ("model", get_model)):
        if not cfg.get(key):
            raise ConfigError(f"{where}.{key} is required")
        single_name(f"{where}.{key}", cfg[key], "a plan compares choices as candidates: one "
                    "entry under plan.candidates for each")
        try:
            get(cfg[key])
        except ConfigError as e:
            raise ConfigError(under(where, str(e))) from None
    try:
        spec = parse_pool(name, {**cfg, "count": 1})
        check_pool_sizes([spec])
        lat = build_latency(spec)
        if spec.kv_blocks is None:
            if not hasattr(lat, "kv_capacity_blocks"):
                raise ConfigError(f"pool.pools.{name}.kv_blocks is required with a constant "
                                  "latency model")
            win = pool_window(spec, lat)
            check_context_fits(spec, lat, kv_capacity(lat, spec.scheduler, win), where, win)
    except ConfigError as e:
        text = (str(e).replace(f"pool.pools.{name}", where)
                .replace("pool.pools", "plan.candidates"))
        if not text.startswith("plan.candidates"):  # e.g. the weights-per-GPU check: name it
            text = f"{where}: {text}"
        raise type(e)(text) from None  # (a FitError stays one: `parse_plan`)
    sch = spec.scheduler
    return PoolTemplate(name, "", spec.role, cfg, spec.gpu, spec.tp,
                        spec.price_per_gpu_hour * spec.tp,
                        str(getattr(lat, "calibration", "constant latency")),
                        f"{sch.policy}, {sch.token_budget:,} tokens, {sch.max_seqs:,} sequences")


def expand_candidate(name: str, raw) -> list[PoolTemplate]:
    """The pool template(s) of one candidate (one colocated pool, or a prefill/decode pair)."""
    where = f"plan.candidates.{name}"
    if not isinstance(raw, dict):
        raise ConfigError(f"{where} must be a mapping (a pool template without count)")
    if "count" in raw:
        raise ConfigError(f"{where}.count: candidates have no count (the planner chooses it); "
                          "remove the key")
    from wrpsim.pool.fleet import POOL_KEYS

    check_keys(raw, [k for k in POOL_KEYS if k != "count"] + list(SIDES), where)
    role = raw.get("role", "both")
    if role == "both":
        bad = [s for s in SIDES if s in raw]
        if bad:
            raise ConfigError(f"{where}.{bad[0]} is only valid with role: disaggregated")
        t = _check_pool(where, name, dict(raw))
        return [PoolTemplate(name, name, "both", t.config, t.gpu, t.tp, t.price_per_hour_usd,
                             t.calibration, t.batching)]
    if role != "disaggregated":
        raise unknown_choice(f"{where}.role", role, ("both", "disaggregated"))
    base = {k: v for k, v in raw.items() if k not in ("role", *SIDES)}
    out = []
    for side in SIDES:
        extra = raw.get(side) or {}
        if not isinstance(extra, dict) or "count" in extra or "role" in extra:
            raise ConfigError(f"{where}.{side} must be a mapping of pool keys (no count or role)")
        cfg = {**base, **extra, "role": side}
        if side != "prefill" and "kv_transfer" not in extra:
            cfg.pop("kv_transfer", None)  # (the prefill side sends: its key alone)
        t = _check_pool(f"{where}.{side}" if side in raw else where, f"{name}-{side}", cfg)
        out.append(PoolTemplate(f"{name}-{side}", name, side, cfg, t.gpu, t.tp,
                                t.price_per_hour_usd, t.calibration, t.batching))
    from wrpsim.pool.fleet import kv_width, same_kv_width

    have = {t.role: t.config.get("kv_dtype", "auto") for t in out}
    if kv_width(have["prefill"]) != kv_width(have["decode"]):
        # (the engine would refuse such a fleet only when it is first simulated)
        side = next((s for s in reversed(SIDES) if "kv_dtype" in (raw.get(s) or {})), "decode")
        other = "prefill" if side == "decode" else "decode"
        raise ConfigError(f"{where}.{side}.kv_dtype: {have[side]} differs from the {other} "
                          f"side's {have[other]} and the KV cache moves between them as is; "
                          f"valid choices: {', '.join(same_kv_width(have[other]))}")
    return out


def parse_plan(d) -> PlanConfig:
    """Validate the `plan` mapping; `ConfigError` naming the key and the valid values."""
    if not isinstance(d, dict):
        raise ConfigError("plan must be a mapping (see conf/plan.yaml)")
    check_keys(d, PLAN_KEYS, "plan")
    cands = d.get("candidates")
    if not isinstance(cands, dict) or not cands:
        raise ConfigError("plan.candidates must be a non-empty mapping of name -> pool template")
    pools, unfit = [], []
    for name, raw in cands.items():
        try:
            pools += expand_candidate(str(name), raw)
        except FitError as e:  # the others may fit: leave it out, say why
            unfit.append((str(name), str(e)))
    if not pools:
        raise ConfigError(unfit[0][1] + (f" (and {len(unfit) - 1} more candidate(s) that do "
                                         f"not fit)" if len(unfit) > 1 else ""))
    for _, line in unfit:
        warn(f"{line} (candidate left out of the plan)")
    models = sorted({p.config["model"] for p in pools})
    if len(models) > 1:
        raise ConfigError(f"plan.candidates serve several models {models}; a plan sizes the "
                          "fleet of one model (run one plan per model)")
    objective = d.get("objective", "cost")
    if objective not in OBJECTIVES:
        raise unknown_choice("plan.objective", objective, OBJECTIVES)
    mix = boolean("plan.mix", d.get("mix", True))
    ratios = d.get("pd_ratios")
    ratios = ["1:1"] if ratios is None else ratios
    if isinstance(ratios, str):
        ratios = [ratios]
    if not isinstance(ratios, (list, tuple)) or not ratios:
        raise ConfigError(f"plan.pd_ratios must list at least one 'P:D' ratio of integers "
                          f">= 1, e.g. [1:1, 1:2], got {ratios!r}")
    sens = d.get("load_sensitivity", 0.2)
    if (isinstance(sens, bool) or not isinstance(sens, (int, float))
            or not (sens == 0 or 0.01 <= sens < 1)):
        # (below 1 %, 1 - x and 1 + x name the same trace: the loads' tags collided)
        raise ConfigError(f"plan.load_sensitivity must be 0 (none) or a number in [0.01, 1), "
                          f"got {sens!r}")
    report = boolean("plan.report", d.get("report", True))
    return PlanConfig(
        pools=tuple(pools), candidates=tuple(dict.fromkeys(p.candidate for p in pools)),
        model=models[0],
        slo=SLOTargets.parse(d.get("slo")), objective=objective,
        max_instances=_int(d, "max_instances", 1, 32), mix=mix,
        pd_ratios=tuple(dict.fromkeys(parse_ratio(r) for r in ratios)),
        recheck_seed=(None if d.get("recheck_seed") is None  # (candidates.parquet: int64)
                      else _int(d, "recheck_seed", 0, high=2**63 - 1)),
        recheck_shuffle_window_s=_opt_pos(d, "recheck_shuffle_window_s", 1e-3),
        load_sensitivity=float(sens),
        # (a window of 1e-300 s searched on one request; the full-trace checks then corrected it)
        search_window_s=_opt_pos(d, "search_window_s", 1.0),
        max_evaluations=_int(d, "max_evaluations", 1, 300), report=report,
        unfit=tuple(unfit),
    )
