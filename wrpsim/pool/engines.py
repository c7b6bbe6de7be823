"""Serving-engine calibrations: `pools/catalog/engines/<name>.yaml` and their kernel tables.

An *engine* is one serving engine version calibrated per GPU. A pool names it (`engine:`,
default `DEFAULT_ENGINE`) and `python -m wrpsim.perf engine=…` asks it directly. Two kinds:

- ``kernels``: iteration times summed from measured kernel tables
  (`wrpsim.pool.kernels.model.KernelLatency`). The YAML lists, per catalog GPU, either
  `tables: <dir>` (relative to the YAML's folder; written by `python -m wrpsim.calibrate`) or
  `roofline: <gpu>` (no measurements: that GPU's tables moved over by the roofline ratio,
  labelled "uncalibrated: roofline"); a GPU the engine does not list is treated as
  `roofline: <default_roofline>`. `constants:` are the per-iteration constants of
  `EngineConstants`, fitted end to end. Power comes from the per-GPU fits of
  `pools/catalog/power.yaml` (`wrpsim.pool.kernels.power`), shared by the kernels engines.
- ``analytical``: the 2023 roofline model calibrated on the Splitwise profile
  (`wrpsim.pool.perf.AnalyticalLatency`, GPU `calibration:` blocks of gpus.yaml), kept so old
  results can be reproduced.

Engines are read from `pools/catalog/engines/` and, when the environment variable
`WRPSIM_CATALOG` names a folder, from its `engines/` subfolder too (a user's own calibrations
without editing the repository; a name there replaces the shipped one). Every latency model
built here carries a `calibration` label that outputs repeat.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from functools import cache, lru_cache
from pathlib import Path

import yaml

from wrpsim.errors import (
    ConfigError,
    boolean,
    check_keys,
    choice,
    did_you_mean,
    finite_number,
    number,
    starts_with_a_file,
    unknown_choice,
    warn,
    yaml_error,
)
from wrpsim.pool.catalog import CALIBRATION_FIELDS, catalog_path, get_gpu, get_model
from wrpsim.pool.kernels.model import (
    KV_DTYPES,
    MAMBA_SSM_DTYPES,
    PRECISIONS,
    EngineConstants,
    attn_dp_divides,
)
from wrpsim.pool.kernels.operators import nccl_only
from wrpsim.yamlfast import safe_load

DEFAULT_ENGINE = "vllm-0.24"
KINDS = ("kernels", "analytical")
ENGINE_KEYS = ("description", "kind", "constants", "gpus", "default_roofline", "fit", "source",
               "prefix_caching", "batch_defaults", "gpu_memory_utilization")
#: `batch_defaults` choices: how a pool that leaves `scheduler.token_budget` / `max_seqs` out
#: is batched (`Engine.default_batch`)
BATCH_DEFAULTS = ("fixed", "vllm")
#: `vllm serve`'s batch limits (EngineArgs.get_batch_defaults, OpenAI API server): the first on
#: a GPU of at least 70 GiB that is not an A100, the second on the others (`Engine.default_batch`)
VLLM_BATCH_BIG = {"token_budget": 8192, "max_seqs": 1024}
VLLM_BATCH_SMALL = {"token_budget": 2048, "max_seqs": 256}
CONSTANT_FIELDS = tuple(f.name for f in fields(EngineConstants))


@dataclass(frozen=True)
class Engine:
    """One engine calibration (see module docstring)."""

    name: str
    kind: str
    description: str
    path: Path
    constants: EngineConstants = field(default_factory=EngineConstants)
    gpus: dict = field(default_factory=dict)
    default_roofline: str = "h100-80gb"
    #: whether the engine caches prompt prefixes by default (vLLM's V1 engine does:
    #: `--enable-prefix-caching` unless told otherwise); a pool that leaves
    #: `prefix_cache.enabled` out takes it (`wrpsim.pool.fleet.parse_pool`)
    prefix_caching: bool = False
    #: `vllm`: a pool that leaves scheduler.token_budget / max_seqs out takes `vllm serve`'s
    #: defaults for its GPU (`default_batch`); `fixed`: the SchedulerConfig defaults
    batch_defaults: str = "fixed"
    #: the fraction of GPU memory the engine sizes its KV cache in by default (vLLM's
    #: `--gpu-memory-utilization`: 0.9, 0.92 from vllm-project/vllm#38284, 2026-04); a pool
    #: that leaves `scheduler.gpu_mem_util` out takes it (`wrpsim.pool.fleet.with_batch_defaults`)
    gpu_mem_util: float = 0.9

    def default_batch(self, gpu) -> dict:
        """(token_budget, max_seqs) a pool on catalog GPU `gpu` (a `GpuSpec`) takes when it
        leaves them out, as a mapping ({} under `fixed`: the SchedulerConfig defaults).
        `vllm`: `vllm serve`'s defaults (vLLM EngineArgs.get_batch_defaults, OpenAI API server):
        8,192 batched tokens and 1,024 sequences on a GPU of at least 70 GiB that is not an
        A100, else 2,048 and 256."""
        if self.batch_defaults != "vllm":
            return {}
        big = gpu.mem_gib >= 70 and not gpu.name.startswith("a100")
        return dict(VLLM_BATCH_BIG if big else VLLM_BATCH_SMALL)

    def gpu_entry(self, gpu: str) -> dict:
        """`{'tables': dir}`, `{'roofline': ref_gpu}` or both (own tables for the operators
        they hold, the reference for the rest) for a catalog GPU."""
        return self.gpus.get(gpu) or {"roofline": self.default_roofline}


def engines_dir() -> Path:
    return catalog_path() / "engines"


def _constant_value(name: str, v, label: str):
    """`v` checked as the value of `EngineConstants` field `name`; `label` names it in the
    one-line error (`<file>: constants.<name>` or `pool.pools.<p>.latency.<name>`)."""
    f = _FIELDS[name]
    if name == "mamba_ssm_dtype":
        return choice(label, v, MAMBA_SSM_DTYPES)
    if f.type in ("bool", bool):
        return boolean(label, v)
    if name == "cudagraph_max_tokens":  # (a token count: 0.5 was truncated to 0, silently)
        if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= CONSTANT_MAX[name]:
            raise ConfigError(f"{label} must be an integer >= 0 and <= "
                              f"{CONSTANT_MAX[name]:,}, got {v!r}")
        return v
    if name == "cudagraph_mixed":  # (a mode: 0.5 was taken as 0 and 1e12 as 1)
        if isinstance(v, bool) or v not in (0, 1):
            raise ConfigError(f"{label} must be 1 (iterations with prompt chunks graphed too: "
                              f"vLLM's FULL_AND_PIECEWISE) or 0 (FULL_DECODE_ONLY), got {v!r}")
        return int(v)
    number(label, v, 0.0, CONSTANT_MAX[name], finite=True)  # (an int too large for a float too)
    return v


#: the largest value of each numeric engine constant, beyond which it is no engine's: a time
#: in µs (CPU per iteration, sequence, layer, request or token; the sampler's GPU floor) of
#: more than 10 s, a sampler pass count over a thousand, a fusion size limit over 1 TiB, a
#: CUDA-graph capture size over 2^20 tokens (`tests/test_perf_cli.py` checks every numeric
#: field of `EngineConstants` has one)
_US_MAX = 10_000_000
CONSTANT_MAX = {"iter_overhead_us": _US_MAX, "seq_overhead_us": _US_MAX,
                "layer_overhead_us": _US_MAX, "frontend_us": _US_MAX,
                "frontend_us_per_token": _US_MAX, "sampling_floor_us": _US_MAX,
                "eager_layer_us": _US_MAX, "frontend_us_per_stream_token": _US_MAX,
                "frontend_us_serial": _US_MAX, "handover_us": _US_MAX, "sampling_passes": 1_000,
                "allreduce_fusion_mb": 1 << 20, "cudagraph_max_tokens": 1 << 20}


_FIELDS = {f.name: f for f in fields(EngineConstants)}


def _constants(path: Path, raw) -> EngineConstants:
    raw = raw or {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: field 'constants' must be a mapping")
    check_keys(raw, CONSTANT_FIELDS, f"{path}: constants")
    c = EngineConstants(**{k: _constant_value(k, v, f"{path}: constants.{k}")
                           for k, v in raw.items()})
    _serial_within(c, f"{path}: constants")
    return c


def _serial_within(c: EngineConstants, label: str) -> None:
    """`frontend_us_serial` is part of `frontend_us`: one line when it exceeds it."""
    if c.frontend_us_serial > c.frontend_us:
        raise ConfigError(f"{label}.frontend_us_serial ({c.frontend_us_serial:g}) is the part "
                          f"of frontend_us ({c.frontend_us:g}) queued in the API server, so it "
                          f"must be at most frontend_us")


def load_engine(path: Path) -> Engine:
    """Parse and validate one engine YAML."""
    try:
        raw = safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(yaml_error(path, exc)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read engine: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping")
    check_keys(raw, ENGINE_KEYS, str(path))
    kind = raw.get("kind", "kernels")
    if kind not in KINDS:
        raise unknown_choice(f"{path}: kind", kind, KINDS)
    gpus = raw.get("gpus") or {}
    for g, entry in gpus.items():
        if (not isinstance(entry, dict) or not set(entry) & {"tables", "roofline"}
                or not set(entry) <= {"tables", "roofline", "allreduce_fusion_mb"}):
            raise ConfigError(f"{path}: gpus.{g} must be {{tables: DIR}}, {{roofline: GPU}} or "
                              f"{{tables: DIR, roofline: GPU}} (own tables for some operators), "
                              f"optionally with allreduce_fusion_mb: {{TP: MiB}}")
        if "allreduce_fusion_mb" in entry:
            _fusion_limits(entry["allreduce_fusion_mb"], f"{path}: gpus.{g}.allreduce_fusion_mb")
    return Engine(name=path.stem, kind=kind, description=str(raw.get("description", "")),
                  path=path, constants=_constants(path, raw.get("constants")), gpus=gpus,
                  default_roofline=str(raw.get("default_roofline", "h100-80gb")),
                  prefix_caching=boolean(f"{path}: prefix_caching",
                                         raw.get("prefix_caching", False)),
                  batch_defaults=_batch_defaults(path, raw.get("batch_defaults", "fixed")),
                  gpu_mem_util=_fraction(path, "gpu_memory_utilization",
                                         raw.get("gpu_memory_utilization")))


def _fraction(path: Path, key: str, v) -> float:
    """An engine YAML's fraction in (0, 1], checked (one line naming the field); left out or
    null: `Engine.gpu_mem_util`'s default."""
    if v is None:
        return Engine.gpu_mem_util
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0.0 < v <= 1.0:
        raise ConfigError(f"{path}: {key} must be a number in (0, 1], got {v!r}")
    return float(v)


#: the all-reduce group sizes FlashInfer's fused all-reduce runs on (vLLM's
#: FI_SUPPORTED_WORLD_SIZES: any other size keeps vLLM's own all-reduce)
FUSED_GROUPS = (2, 4, 8)


def _fusion_limits(v, label: str) -> dict:
    """An engine's `gpus.<gpu>.allreduce_fusion_mb` ({all-reduce group size: MiB}), checked."""
    top = CONSTANT_MAX["allreduce_fusion_mb"]
    if not isinstance(v, dict) or not v or any(
            isinstance(k, bool) or k not in FUSED_GROUPS or not finite_number(m)
            or not 0 <= m <= top for k, m in v.items()):
        sizes = ", ".join(map(str, FUSED_GROUPS))
        raise ConfigError(f"{label} must map all-reduce group sizes ({sizes}: those vLLM "
                          f"fuses) to size limits in MiB (numbers >= 0 and <= {top:,}), e.g. "
                          f"{{2: 64, 4: 2, 8: 0.5}}; got {v!r}")
    return v


def _fusion(eng: Engine, gpu, kernels, consts: EngineConstants, group: int | None,
            overrides: dict, label: str) -> EngineConstants:
    """`consts` with vLLM's all-reduce + RMSNorm fusion resolved for an all-reduce group of
    `group` GPUs of catalog GPU `gpu` (a `GpuSpec`; `group` None: it spans servers): on, with
    its size limit (the pool's `allreduce_fusion_mb`, else the engine's for the GPU and group),
    where the engine turns it on or the pool asks for it (`allreduce_fusion: true`, or an
    `allreduce_fusion_mb` above 0 without `allreduce_fusion: false`), the group is one
    server's NVLink group of 2, 4 or 8 GPUs (`FUSED_GROUPS`; a PCIe server's groups above 2
    run NCCL) and the GPU's tables measured the kernel (`Kernels.allreduce_fused`); else off.
    A pool that asks for it where it cannot run gets one line saying why."""
    mb = overrides.get("allreduce_fusion_mb") or 0
    explicit = overrides.get("allreduce_fusion") is True or (
        mb > 0 and overrides.get("allreduce_fusion") is not False)
    if not (consts.allreduce_fusion or explicit):
        return consts
    off = replace(consts, allreduce_fusion=False, allreduce_fusion_mb=0.0)
    if group is not None and group < 2:
        return off  # (no all-reduce)
    limit = consts.allreduce_fusion_mb or (
        eng.gpu_entry(gpu.name).get("allreduce_fusion_mb") or {}).get(group, 0.0)
    measured = kernels.measures_fused_allreduce()
    if group is None:
        why = "the all-reduce group spans servers (wrpsim fuses within one server's NVLink)"
    elif group not in FUSED_GROUPS:
        why = (f"vLLM fuses all-reduce groups of {', '.join(map(str, FUSED_GROUPS))} GPUs, "
               f"this one has {group}")
    elif nccl_only(gpu, group):
        why = f"{gpu.name} has no NVLink: vLLM runs NCCL's all-reduce for {group} GPUs"
    elif not measured:
        can = sorted(g for g, e in eng.gpus.items() if e.get("allreduce_fusion_mb")
                     and kernels_for(eng, g).measures_fused_allreduce())
        why = (f"{gpu.name}'s kernel tables do not measure the fused kernel (vLLM fuses on "
               f"Hopper and Blackwell; engine {eng.name} has it for "
               f"{', '.join(can) or 'no GPU'})")
    elif limit <= 0:
        why = (f"engine {eng.name} gives no size limit for {gpu.name} at a group of {group}: "
               f"give one as allreduce_fusion_mb beside it (vLLM's "
               f"fi_allreduce_fusion_max_size_mb, MiB)")
    else:
        return replace(consts, allreduce_fusion=True, allreduce_fusion_mb=float(limit))
    if explicit:
        asked = ("allreduce_fusion: true" if overrides.get("allreduce_fusion") is True
                 else f"allreduce_fusion_mb: {mb:g}")
        raise ConfigError(f"{label}.{asked.split(':')[0]}: {asked.split(': ')[1]} asks for "
                          f"vLLM's all-reduce + RMSNorm fusion, but {why}")
    return off


def _batch_defaults(path: Path, v) -> str:
    """An engine YAML's `batch_defaults`, checked (one line naming the field and choices)."""
    if v not in BATCH_DEFAULTS:
        raise unknown_choice(f"{path}: batch_defaults", v, BATCH_DEFAULTS)
    return v


@cache
def power_fits() -> dict:
    """pools/catalog/power.yaml (empty when absent)."""
    from wrpsim.pool.kernels.power import load_power

    path = catalog_path() / "power.yaml"
    return load_power(path) if path.is_file() else {}


_EXTRA_DIRS: list[Path] = []


def register_engine_dir(path: Path) -> None:
    """Also read engines from `path` in this process (`python -m wrpsim.calibrate out_dir=`)."""
    if path not in _EXTRA_DIRS:
        _EXTRA_DIRS.append(path)
        clear_caches()


def engine_dirs() -> list[Path]:
    """The folders engines are read from (see module docstring), in override order."""
    from wrpsim.paths import user_catalog

    dirs = [engines_dir()]
    user = user_catalog()
    if user is not None:
        dirs.append(user / "engines")
    return dirs + _EXTRA_DIRS


#: name -> why the engine file of that name in a user's folder was left out (`engines`)
BROKEN: dict[str, str] = {}
_SAID: set = set()


@cache
def engines() -> dict[str, Engine]:
    """Every engine of the catalog by name. A user's engine file (`$WRPSIM_CATALOG/engines`,
    a calibrate `out_dir`) that is not valid is left out (`BROKEN`): the other engines still
    run, naming it is that one line (`get_engine`), and the others' runs warn of it once; a
    shipped one that is not valid is an error whatever is run."""
    out = {}
    BROKEN.clear()  # (`_SAID` is kept: a reload, `register_engine_dir`, does not warn again)
    shipped = engines_dir()
    for d in engine_dirs():
        for p in sorted(d.glob("*.yaml")):
            try:
                out[p.stem] = load_engine(p)
                BROKEN.pop(p.stem, None)
            except ConfigError as e:
                if d == shipped:
                    raise
                out.pop(p.stem, None)  # (not the engine of that name it was meant to replace)
                BROKEN[p.stem] = str(e)
    return out


def get_engine(name: str) -> Engine:
    """The engine `name`; `ConfigError` listing the valid names if unknown, or the one line
    saying why a user's engine file of that name was left out (`BROKEN`)."""
    table = engines()
    if isinstance(name, str) and name in BROKEN:
        _SAID.add(name)  # (its error says it: not also as a warning)
        raise ConfigError(BROKEN[name])
    for other, why in BROKEN.items():  # the others, once each
        if other not in _SAID:
            _SAID.add(other)
            warn(f"{why} (engine file left out of the catalog; the others are loaded)")
    if not isinstance(name, str) or name not in table:
        err = unknown_choice("engine", name, table)
        if isinstance(name, str) and not did_you_mean(name, table):  # (one's own not found)
            import os

            where = os.environ.get("WRPSIM_CATALOG")
            if not where:
                said = " (WRPSIM_CATALOG is not set)"
            elif (Path(where).expanduser() / f"{name}.yaml").is_file():
                said = (f" (WRPSIM_CATALOG={where} is an engines folder itself: set it to "
                        f"its parent)")
            else:
                said = f" (WRPSIM_CATALOG={where} has none named {name!r})"
            err = ConfigError(f"{err}; engines of your own (python -m wrpsim.calibrate) are "
                              f"found in $WRPSIM_CATALOG/engines{said}")
        raise err
    return table[name]


def kernels_for(engine: Engine, gpu_name: str, moe_table: str = "moe"):
    """The kernel source of `gpu_name` under a kernels engine: its own tables, a reference
    GPU's moved over by the roofline ratio, or both (`borrowed.Partial`). `moe_table`: the
    table of its own that MoE layers are timed from (`moe`, or `moe_triton`: `_moe_kernel`)."""
    from wrpsim.pool.kernels.borrowed import Partial, Transferred
    from wrpsim.pool.kernels.tables import load_kernels

    gpu = get_gpu(gpu_name)
    entry = engine.gpu_entry(gpu_name)
    own = None
    if "tables" in entry:
        d = tables_dir(engine, gpu_name, entry["tables"])
        label = _label(engine, d)
        if moe_table != "moe":
            label += _moe_table_label(d, moe_table)
        own = load_kernels(str(d), gpu, label, moe_table)
        if "roofline" not in entry:
            return own
    ref = str(entry["roofline"])
    ref_entry = engine.gpus.get(ref, {})
    if "tables" not in ref_entry:
        with_tables = sorted(g for g, e in engine.gpus.items() if "tables" in e)
        if gpu_name not in engine.gpus:  # (the default reference: the file lacks the GPUs)
            raise ConfigError(
                f"{engine.path}: no gpus.{gpu_name} entry, and default_roofline {ref!r} has no "
                f"kernel tables in this engine (GPUs with tables: "
                f"{', '.join(with_tables) or 'none'}); a kernels engine lists its GPUs' "
                f"tables under gpus: (python -m wrpsim.calibrate engine=NAME writes one from "
                f"base=vllm-0.24's)")
        raise ConfigError(f"{engine.path}: gpus.{gpu_name}.roofline names {ref!r}, which has "
                          f"no kernel tables (GPUs with tables: "
                          f"{', '.join(with_tables) or 'none'})")
    d = tables_dir(engine, ref, ref_entry["tables"])
    moved = Transferred(load_kernels(str(d), get_gpu(ref), _label(engine, d)), gpu)
    return moved if own is None else Partial(own, moved)


def _moe_table_label(d: Path, moe_table: str) -> str:
    """'; MoE layers: Triton fused MoE (vllm 0.22.0)' from the tables' meta.json (framework and
    version as it records them); '' where it does not list the table (the default table then
    times every MoE layer, `Kernels._moe_home`)."""
    import json

    try:
        t = json.loads((d / "meta.json").read_text())["tables"][moe_table]
        return f"; MoE layers: Triton fused MoE ({t['framework']} {t['version']})"
    except (OSError, KeyError, ValueError, TypeError):
        return ""


def triton_moe_dtypes(engine: Engine, gpu_name: str) -> set:
    """The expert precisions `gpu_name`'s own tables under `engine` time vLLM's Triton
    fused-MoE kernel in (`moe_triton.parquet`, as meta.json lists it; read without the Parquet
    file); empty where they do not time it."""
    from wrpsim.pool.kernels.tables import Kernels

    rel = engine.gpu_entry(gpu_name).get("tables")
    d = find_tables_dir(engine.path, rel) if rel else None
    if d is None or not (d / "gemm.parquet").is_file():
        return set()
    k = Kernels(d, get_gpu(gpu_name), moe_table="moe_triton")
    return k.measured_in("moe_triton") if k.lists("moe_triton") else set()


def _moe_kernel(eng: Engine, gpu_name: str, consts: EngineConstants, model, precision: str,
                overrides: dict, label: str) -> EngineConstants:
    """`consts` with `moe_triton` resolved for `model`'s experts in `precision` on catalog GPU
    `gpu_name`: on where the engine or the pool (`latency: {moe_triton: true}`) asks for
    vLLM's Triton fused-MoE kernel, the model has routed experts and the GPU's own tables time
    that kernel in the experts' precision (`triton_moe_dtypes`: BF16, FP8, block FP8 — MXFP4,
    NVFP4 and INT4 experts run kernels of their own); else off — silently for a dense model
    (nothing to run it on, as vLLM ignores the setting there). A pool that asks for it for
    an MoE model where it cannot apply gets one line saying why."""
    if not consts.moe_triton:
        return consts
    off = replace(consts, moe_triton=False)
    if not model.moe:
        return off
    experts = PRECISIONS[precision][1]
    got = triton_moe_dtypes(eng, gpu_name)
    if experts in got:
        return consts
    if overrides.get("moe_triton") is not True:
        return off  # (the engine's own setting: the default kernel where Triton's is not timed)
    if got:
        why = (f"its tables time it for {', '.join(sorted(got))} experts, and precision "
               f"{precision}'s experts are {experts} (a kernel of their own)")
    else:
        can = sorted(g for g in eng.gpus if triton_moe_dtypes(eng, g))
        why = (f"engine {eng.name}'s tables of {gpu_name} do not time it (they do for "
               f"{', '.join(can) or 'no GPU'})")
    raise ConfigError(f"{label}.moe_triton: true asks for vLLM's Triton fused-MoE kernel, "
                      f"but {why}")


def find_tables_dir(engine_file: Path, rel) -> Path | None:
    """The folder a `gpus.<gpu>.tables` entry `rel` of the engine file `engine_file` names:
    relative to that file's folder, else to the shipped engines folder (a calibration written
    by `python -m wrpsim.calibrate` names the shipped tables it builds on that way, so its
    folder can be moved or shared); None when neither holds it."""
    for d in (engine_file.parent / str(rel), engines_dir() / str(rel)):
        if d.is_dir():
            return d
    return None


def tables_dir(engine: Engine, gpu_name: str, rel) -> Path:
    """The folder of an engine's `gpus.<gpu>.tables` entry (`find_tables_dir`); a
    `ConfigError` naming the entry when there is none."""
    d = find_tables_dir(engine.path, rel)
    if d is not None:
        return d
    raise ConfigError(f"{engine.path}: gpus.{gpu_name}.tables: no folder {str(rel)!r} beside "
                      f"the engine file or in the shipped engines folder {engines_dir()}")


def _label(engine: Engine, d: Path) -> str:
    """'kernels: vLLM 0.24.0 (NVIDIA H100 80GB HBM3)' from the tables' meta.json."""
    import json

    meta = d / "meta.json"
    try:
        tables = json.loads(meta.read_text())["tables"]
        tab = tables["gemm"]
        of = f"; {tab['profile']}" if tab.get("profile") else ""
        moe = (tables.get("moe") or {}).get("profile")
        if moe and moe != tab.get("profile"):  # MoE block from another model's profile
            of += f"; MoE: {moe}"
        carried = {}  # tables kept from the GPU's earlier ones (`python -m wrpsim.calibrate`)
        for name, t in sorted(tables.items()):
            # (the Triton MoE table is named where a model reads it: `_moe_table_label`)
            if t.get("carried_from") and name != "moe_triton":
                carried.setdefault(t["carried_from"], []).append(name)
        for folder, names in carried.items():
            of += f"; {', '.join(names)} kept from {folder}"
        return f"kernels: {tab['framework']} {tab['version']} ({tab['device']}{of})"
    except (OSError, KeyError, ValueError):
        return f"kernels: {engine.name} {d.name}"


def labelled_name(engine: Engine) -> str:
    """The engine's name as calibration labels give it: with its file where that is not in
    the shipped catalog (`calibration_label`)."""
    if engine.path.parent.resolve() == engines_dir().resolve():
        return engine.name
    return f"{engine.name} ({engine.path.resolve()})"


def calibration_label(engine_name: str, gpu_name: str) -> str:
    """What a run on `gpu_name` under `engine_name` is calibrated on (for catalogs, outputs);
    an engine read from outside the shipped catalog is named with its file (a calibration of
    your own under a shipped engine's name replaces it: the label says whose it is)."""
    engine = get_engine(engine_name)
    name = labelled_name(engine)
    if engine.kind == "analytical":
        return f"{name}: " + get_gpu(gpu_name).calibration_source
    return f"{name}: " + kernels_for(engine, gpu_name).label


def build_latency_model(model: str, gpu: str, tp: int, engine: str = DEFAULT_ENGINE,
                        precision: str = "bf16", kv_dtype: str = "auto", ep: int = 1,
                        overrides: dict | None = None, max_tokens: int = 16384,
                        where: str = "latency", prefix: str = "", scaleup: int | None = None,
                        attn_dp: int = 1):
    """The latency/power model of `model` on `tp` x `gpu` under `engine` (see `_build`); one
    object per distinct set of arguments per process (the models are pure, so pools and runs of
    a sweep share them and their precomputed tables). `scaleup`: GPUs per server of a group
    that spans servers (`wrpsim.pool.spanning`; kernels engines only). `attn_dp`: data-parallel
    attention groups (`KernelLatency`; kernels engines only)."""
    for k, v in (overrides or {}).items():  # (a list or mapping cannot key the cache)
        if isinstance(v, (list, dict)):
            if k in _FIELDS:
                _constant_value(k, v, f"{where}.{k}")
            raise ConfigError(f"{where}.{k}: a number, true / false or a name, got {v!r}")
    key = tuple(sorted((overrides or {}).items()))
    try:
        return _cached(model, gpu, tp, engine, precision, kv_dtype, ep, key, max_tokens, scaleup,
                       attn_dp)
    except ConfigError as e:
        raise _named(e, where, prefix) from None


#: fields `KernelLatency` names at the start of its messages (they get the caller's prefix)
_FIELD_MESSAGES = ("tp ", "attn_dp ", "ep ")


def _named(e: ConfigError, where: str, prefix: str) -> ConfigError:
    msg = str(e).replace("\x00where", where)
    if prefix and msg.startswith("\x00") and starts_with_a_file(msg[1:]):
        msg = f"{prefix.rstrip('. :')}: {msg[1:]}"  # 'KEY: FILE: ...', not 'KEY.FILE: ...'
    msg = msg.replace("\x00", prefix)
    if prefix and msg.startswith(_FIELD_MESSAGES):
        msg = prefix + msg
    return ConfigError(msg)


@lru_cache(maxsize=256)
def _cached(model, gpu, tp, engine, precision, kv_dtype, ep, overrides, max_tokens,
            scaleup=None, attn_dp=1):
    return _build(model, gpu, tp, engine, precision, kv_dtype, ep, dict(overrides), max_tokens,
                  "\x00where", "\x00", scaleup, attn_dp)


def clear_caches() -> None:
    """Forget loaded engines and built models (after an engine file changed on disk)."""
    engines.cache_clear()
    forget_models()


def forget_models() -> None:
    """Forget the built latency models (`build_latency_model`'s cache), e.g. between a fit's
    points, whose constants differ each time, so none is built twice: each holds its
    precomputed curves (tens of MB), and the 256 the cache keeps filled 24 GiB."""
    _cached.cache_clear()


def _build(model: str, gpu: str, tp: int, engine: str = DEFAULT_ENGINE,
           precision: str = "bf16", kv_dtype: str = "auto", ep: int = 1,
           overrides: dict | None = None, max_tokens: int = 16384,
           where: str = "latency", prefix: str = "", scaleup: int | None = None,
           attn_dp: int = 1):
    """The latency/power model of `model` on `tp` x `gpu` under `engine`.

    `overrides` replace engine constants (kernels engines: `EngineConstants` fields) or
    calibrated GPU fields (analytical engine: `CALIBRATION_FIELDS`); an unknown name raises
    `ConfigError` naming `where` and the valid names. Errors about the other settings name
    `prefix + field` (e.g. `pool.pools.h100.precision`)."""
    try:
        eng = get_engine(engine)
    except ConfigError as e:
        raise ConfigError(f"{prefix}{e}") from None
    overrides = dict(overrides or {})
    if eng.kind == "analytical":
        if scaleup is not None:
            raise ConfigError(f"{prefix}tp={tp} spans servers: engine {engine} (the analytical "
                              f"2023 model) cannot split its collectives; use a kernels engine "
                              f"such as {DEFAULT_ENGINE}")
        if precision != "bf16" or kv_dtype not in ("auto", "bf16") or ep != 1 or attn_dp != 1:
            raise ConfigError(f"{prefix}engine: {engine} (the analytical 2023 model) knows only "
                              f"precision bf16, kv_dtype auto, ep 1 and attn_dp 1")
        check_keys(overrides, CALIBRATION_FIELDS, where)
        from wrpsim.pool.catalog import _ZERO_OK

        for k, v in overrides.items():  # (as gpus.yaml's calibration: eff_compute=0 was a
            # ZeroDivisionError, nan and inf printed NaN and Infinity in perf's JSON line)
            number(f"{where}.{k}", v, lo=0.0, strict_lo=k not in _ZERO_OK, finite=True)
        from wrpsim.pool.perf import AnalyticalLatency

        m = get_model(model)
        if m.mamba_layers or m.mla:
            kind = ("Gated DeltaNet (linear-attention) layers" if m.gated_delta
                    else "Mamba layers" if m.mamba_layers else "latent (MLA) attention")
            raise ConfigError(f"{prefix}engine: {engine} (the analytical 2023 model) times every "
                              f"layer as multi-head attention with a KV cache; {m.name} has "
                              f"{kind}, which it would size and time wrongly: use a kernels "
                              f"engine such as {DEFAULT_ENGINE}")
        lat = AnalyticalLatency(m, get_gpu(gpu), tp, **overrides)
        lat.calibration = f"{labelled_name(eng)}: {lat.gpu.calibration_source}"
        lat.engine = engine
        return lat
    from wrpsim.pool.kernels.model import KernelLatency
    from wrpsim.pool.kernels.power import power_model

    check_keys(overrides, CONSTANT_FIELDS, where)
    overrides = {k: _constant_value(k, v, f"{where}.{k}") for k, v in overrides.items()}
    consts = replace(eng.constants, **overrides) if overrides else eng.constants
    _serial_within(consts, where)
    if precision not in PRECISIONS:
        raise unknown_choice(f"{prefix}precision", precision, PRECISIONS)
    if kv_dtype not in KV_DTYPES:
        raise unknown_choice(f"{prefix}kv_dtype", kv_dtype, KV_DTYPES)
    m = get_model(model)
    if not m.moe and PRECISIONS[precision][0] != PRECISIONS[precision][1]:
        dense = sorted(k for k, (d, e) in PRECISIONS.items() if d == e)
        raise ConfigError(f"{prefix}precision: {precision} quantises the routed experts only "
                          f"(the other layers stay BF16); {m.name} is dense, so it would run "
                          f"as bf16: use one of {', '.join(dense)}")
    g = get_gpu(gpu)
    consts = _moe_kernel(eng, gpu, consts, m, precision, overrides, where)
    kernels = kernels_for(eng, gpu, "moe_triton" if consts.moe_triton else "moe")
    # (an attn_dp that does not divide tp is KernelLatency's one-line error, not the fusion's)
    if isinstance(tp, int) and attn_dp_divides(tp, attn_dp):
        group = tp // attn_dp if scaleup is None else None
        consts = _fusion(eng, g, kernels, consts, group, overrides, where)
    lat = KernelLatency(m, g, tp, kernels, consts, precision,
                        kv_dtype, ep, max_tokens, power_model(g, power_fits()), scaleup, attn_dp)
    lat.calibration = f"{labelled_name(eng)}: {lat.calibration}"
    lat.engine = engine
    return lat
