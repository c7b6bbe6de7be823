"""The GPU and model catalogs: `pools/catalog/gpus.yaml` and `pools/catalog/models.yaml`.

One YAML mapping per catalog, one entry per name. Entries are validated on load: a missing,
unknown, non-numeric or non-positive field raises `ConfigError` naming the file, the entry and the
field. A GPU's calibrated latency/power efficiencies live in its `calibration:` mapping, written by
`python -m wrpsim.pool.calibrate --write`; `calibration: {from: other-gpu}` copies another GPU's
values (used for GPUs without measurements). See pools/README.md for the figures and sources.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from wrpsim.errors import ConfigError, did_you_mean, finite_number, unknown_choice, warn, yaml_error
from wrpsim.paths import catalog_dir, user_catalog
from wrpsim.pool.hfconfig import HF_DEFAULTS, MAX_HF_INT, divisors, model_type, read_hf_config
from wrpsim.pool.modelspec import (
    BOOL_FIELDS,
    INT_FIELDS,
    REQUIRED,
    SPEC_FIELDS,
    VISION_FIELDS,
    ModelSpec,
    VisionSpec,
)
from wrpsim.yamlfast import safe_load

#: calibrated fields of a GPU (latency efficiencies, overheads, power shape), in YAML order
CALIBRATION_FIELDS = (
    "eff_compute", "eff_attn", "eff_mem", "eff_kv", "eff_link", "link_sat_mib", "coll_latency_us",
    "layer_overhead_us", "prefill_overhead_us", "iter_overhead_us", "seq_overhead_us",
    "power_active_frac", "power_mem_weight", "power_compute_weight",
)
_ZERO_OK = {"coll_latency_us", "layer_overhead_us", "prefill_overhead_us", "iter_overhead_us",
            "seq_overhead_us",
            "power_active_frac", "power_mem_weight", "power_compute_weight"}


@dataclass(frozen=True, slots=True)
class GpuSpec:
    """One GPU type. Memory in GiB (the nameplate figure read as GiB, as aiconfigurator does);
    bandwidths in GB/s (10^9 B/s); `link_gbs` is the scale-up link per GPU and direction;
    `fp8_tflops` / `fp4_tflops` are dense tensor-core rates (0: no native support).
    `bf16_sustained_tflops` / `fp8_sustained_tflops`: the GEMM rate the GPU sustains at its
    power limit, measured (0: not measured; `wrpsim.pool.kernels.roofline.sustained_flops`).
    `eff_*` are fractions of peak reached by an op group; overheads are in microseconds; the
    `power_*` fields shape `AnalyticalLatency.power_w`. `calibration_source` says where the
    calibrated fields come from."""

    name: str
    bf16_tflops: float
    mem_gib: float
    mem_bw_gbs: float
    tdp_w: float
    idle_w: float
    link_gbs: float
    price_per_hour_usd: float
    eff_compute: float
    eff_attn: float
    eff_mem: float
    eff_kv: float
    eff_link: float
    link_sat_mib: float
    coll_latency_us: float
    layer_overhead_us: float
    prefill_overhead_us: float
    iter_overhead_us: float
    seq_overhead_us: float
    power_active_frac: float
    power_mem_weight: float
    power_compute_weight: float
    calibration_source: str = ""
    fp8_tflops: float = 0.0
    fp4_tflops: float = 0.0
    bf16_sustained_tflops: float = 0.0
    fp8_sustained_tflops: float = 0.0
    #: query heads vLLM's sparse MLA kernels (FlashMLA, DeepSeek Sparse Attention) compute on
    #: this GPU whatever fewer a GPU holds: they exist for 64 and 128 heads, and vLLM pads to 64
    #: on Hopper, 128 on Blackwell (0: not known, no padding)
    mla_sparse_heads: float = 0.0
    #: how a server's GPUs reach each other: `nvlink` (NVLink / NVSwitch, Infinity Fabric) or
    #: `pcie` (no scale-up fabric: vLLM's custom all-reduce then serves at most two GPUs and a
    #: larger tensor-parallel group all-reduces with NCCL)
    scaleup: str = "nvlink"
    #: GB/s per direction of an NVLink bridge joining the GPUs of a `pcie` server in pairs
    #: (H100 NVL: 600 GB/s both ways); a group of two then talks over it (0: no bridge)
    pair_link_gbs: float = 0.0
    #: GiB of memory the CUDA driver reports (cudaMemGetInfo's total, what vLLM's
    #: `gpu_memory_utilization` multiplies: the nameplate less what the driver keeps), from a
    #: logged run (0: not known, `mem_gib` taken)
    cuda_mem_gib: float = 0.0
    #: the multiples vLLM's default MXFP4 MoE backend on this GPU pads each expert's
    #: intermediate width (per GPU) and hidden width up to when it allocates them
    #: (`vllm/model_executor/layers/quantization/mxfp4.py`, `Mxfp4MoEMethod.create_weights`):
    #: Marlin's 128 / 256 where neither Triton's nor FlashInfer's MXFP4 kernels run (the
    #: default), Triton's 64 / none (1) on Hopper, FlashInfer's 256 / 256 on B200 / B300
    #: (`sizes.mxfp4_pad`; precisions `mxfp4_marlin` and `mxfp4_mxfp8` pad as their kernels do)
    mxfp4_pad_inter: float = 128.0
    mxfp4_pad_hidden: float = 256.0
    #: GPUs one scale-up domain joins at `link_gbs` each (NVLink through NVSwitch): 8 in an
    #: HGX / OAM server (`wrpsim.sanity.GPUS_PER_SERVER`), 72 in a GB200 NVL72 rack. A
    #: tensor- or expert-parallel group of at most this many runs on that link; a larger
    #: one spans servers (its collectives on a fabric: `network.collectives`)
    scaleup_gpus: int = 8

    @property
    def visible_gib(self) -> float:
        """GiB an engine sizes its memory by: `cuda_mem_gib` where known, else `mem_gib`."""
        return self.cuda_mem_gib or self.mem_gib

    def link_for(self, group: int) -> float:
        """GB/s per direction a collective of `group` GPUs runs over: the pair's bridge for
        two GPUs where there is one, else the scale-up link (`link_gbs`)."""
        return self.pair_link_gbs if group == 2 and self.pair_link_gbs else self.link_gbs


def catalog_path() -> Path:
    """Directory holding gpus.yaml, models.yaml and profiles/ (`pools/catalog`).

    Falls back to the checkout next to the package while the repository's conf/ is incomplete."""
    try:
        return catalog_dir("pools") / "catalog"
    except ConfigError:
        return Path(__file__).resolve().parents[2] / "pools" / "catalog"


def _read(path: Path) -> dict[str, dict[str, Any]]:
    """The YAML mapping of name -> fields in `path`; `ConfigError` if unreadable or malformed."""
    try:
        data = safe_load(path.read_text())
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read catalog: {exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(yaml_error(path, exc)) from None
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise ConfigError(f"{path}: expected a mapping of name -> mapping of fields")
    return data


#: a number in exponent notation that YAML 1.1 (PyYAML) leaves a string: 1e-3, 2E+5, 1.0e300
_EXPONENT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+$")


def _num(path: Path, entry: str, key: str, raw: dict, *, integer: bool, zero_ok: bool = False,
         prefix: str = ""):
    """Field `key` of `raw` as a validated number; errors name file, entry and field."""
    label = prefix + key
    if key not in raw:
        raise ConfigError(f"{path}: entry {entry!r}: missing field {label!r}")
    v = raw[key]
    if isinstance(v, str) and _EXPONENT.match(v.strip()):  # YAML 1.1 reads 1e-3 as a string
        v = float(v)
    if (not finite_number(v) or (integer and v != int(v))):
        kind = "an integer" if integer else "a finite number"
        raise ConfigError(f"{path}: entry {entry!r}: field {label!r} must be {kind}, got {v!r}")
    if v < 0 or (v == 0 and not zero_ok):
        bound = ">= 0" if zero_ok else "> 0"
        raise ConfigError(f"{path}: entry {entry!r}: field {label!r} must be {bound}, got {v!r}")
    if integer and v > MAX_HF_INT:  # (a count no model or GPU has: C integers overflow)
        raise ConfigError(f"{path}: entry {entry!r}: field {label!r} must be at most 2^40, "
                          f"got {v!r}")
    return int(v) if integer else float(v)


def _check_keys(path: Path, entry: str, raw: dict, allowed: set[str], prefix: str = "") -> None:
    """Reject fields outside `allowed` (typos), listing the valid ones."""
    extra = sorted(set(raw) - allowed)
    if extra:
        raise ConfigError(f"{path}: entry {entry!r}: unknown field {prefix + extra[0]!r}; "
                          f"valid fields: {', '.join(sorted(allowed))}"
                          f"{did_you_mean(extra[0], sorted(allowed))}")


_GPU_BASE = ("bf16_tflops", "mem_gib", "mem_bw_gbs", "tdp_w", "idle_w", "link_gbs",
             "price_per_hour_usd")
_GPU_OPTIONAL = ("fp8_tflops", "fp4_tflops", "bf16_sustained_tflops", "fp8_sustained_tflops",
                 "mla_sparse_heads", "pair_link_gbs", "cuda_mem_gib", "mxfp4_pad_inter",
                 "mxfp4_pad_hidden", "scaleup_gpus")
SCALEUPS = ("nvlink", "pcie")


def load_gpus(path: Path, known: dict[str, GpuSpec] | None = None) -> dict[str, GpuSpec]:
    """Parse and validate a GPU catalog file; resolve `calibration: {from: ...}` references to
    its own entries or, for a user's file, to the `known` (shipped) GPUs."""
    data = _read(path)
    calib: dict[str, dict[str, float] | str] = {}
    for name, raw in data.items():
        _check_keys(path, name, raw, set(_GPU_BASE) | set(_GPU_OPTIONAL)
                    | {"calibration", "sources", "scaleup"})
        if raw.get("scaleup", "nvlink") not in SCALEUPS:
            raise ConfigError(f"{path}: entry {name!r}: field 'scaleup': unknown value "
                              f"{raw['scaleup']!r}; valid choices: {', '.join(SCALEUPS)}")
        c = raw.get("calibration")
        if not isinstance(c, dict):
            raise ConfigError(f"{path}: entry {name!r}: missing field 'calibration' (a mapping)")
        if "from" in c:
            if len(c) > 1:
                raise ConfigError(f"{path}: entry {name!r}: field 'calibration' with 'from' "
                                  f"takes no other fields, got {', '.join(sorted(c))}")
            calib[name] = str(c["from"])
            continue
        _check_keys(path, name, c, set(CALIBRATION_FIELDS) | {"source"}, "calibration.")
        calib[name] = {k: _num(path, name, k, c, integer=False, zero_ok=k in _ZERO_OK,
                               prefix="calibration.") for k in CALIBRATION_FIELDS}
        calib[name]["source"] = str(c.get("source", ""))
    known = known or {}
    for src in {c for c in calib.values() if isinstance(c, str)}:
        if src not in calib and src in known:  # a user's GPU copying a shipped one
            k = known[src]
            calib[src] = {f: getattr(k, f) for f in CALIBRATION_FIELDS}
            calib[src]["source"] = k.calibration_source
    out = {}
    for name, raw in data.items():
        src = calib[name] if isinstance(calib[name], str) else name
        if not isinstance(calib.get(src), dict):
            raise ConfigError(f"{path}: entry {name!r}: field 'calibration.from' names {src!r}, "
                              f"which is not a GPU with its own calibration")
        vals = {k: _num(path, name, k, raw, integer=False) for k in _GPU_BASE}
        vals.update({k: _num(path, name, k, raw, integer=False, zero_ok=True)
                     for k in _GPU_OPTIONAL if k in raw})
        if vals["idle_w"] >= vals["tdp_w"]:
            raise ConfigError(f"{path}: entry {name!r}: field 'idle_w' must be below tdp_w")
        for dt in ("bf16", "fp8"):
            sus, peak = vals.get(f"{dt}_sustained_tflops", 0.0), vals.get(f"{dt}_tflops", 0.0)
            if sus and not peak:
                raise ConfigError(f"{path}: entry {name!r}: field '{dt}_sustained_tflops' needs "
                                  f"{dt}_tflops: without it the GPU has no {dt.upper()} tensor "
                                  f"cores (runs {dt.upper()} weight-only at its BF16 rate)")
            if sus > peak:
                raise ConfigError(f"{path}: entry {name!r}: field '{dt}_sustained_tflops' "
                                  f"({sus:g}) must not exceed {dt}_tflops ({peak:g})")
        if vals.get("pair_link_gbs") and raw.get("scaleup", "nvlink") != "pcie":
            raise ConfigError(f"{path}: entry {name!r}: field 'pair_link_gbs' is the bridge "
                              f"joining a PCIe server's GPUs in pairs: it needs scaleup: pcie")
        if "scaleup_gpus" in vals:  # (a GPU count: 8, not 8.5 or 0)
            n = vals["scaleup_gpus"]
            if n != int(n) or not 1 <= n <= 576:
                raise ConfigError(f"{path}: entry {name!r}: field 'scaleup_gpus' must be a whole "
                                  f"number of GPUs from 1 to 576, got {raw['scaleup_gpus']!r}")
            vals["scaleup_gpus"] = int(n)
        if vals.get("cuda_mem_gib", 0.0) > vals["mem_gib"]:
            raise ConfigError(f"{path}: entry {name!r}: field 'cuda_mem_gib' "
                              f"({vals['cuda_mem_gib']:g}) must not exceed mem_gib "
                              f"({vals['mem_gib']:g}): the driver reports at most the nameplate")
        c = dict(calib[src])
        source = c.pop("source")
        if src != name:  # another GPU's 2023 fit on this GPU's peaks: not fitted on it
            source = f"uncalibrated: roofline (the 2023 fit of {src}: {source})"
        out[name] = GpuSpec(name=name, calibration_source=source, **vals, **c,
                            scaleup=str(raw.get("scaleup", "nvlink")))
    return out


_ZERO_OK_MODEL = set(INT_FIELDS) - set(REQUIRED) - {"experts", "active_experts",
                                                    "bytes_per_param"}


def _hf_entry(path: Path, name: str, raw: dict) -> dict:
    """An entry given as a Hugging Face config.json (`hf_config:` inline or `config_json:` path
    relative to the catalog file), converted to wrpsim's fields; other keys override them."""
    import json

    extra = {k: v for k, v in raw.items() if k not in ("hf_config", "config_json")}
    if "config_json" in raw:
        p = Path(str(raw["config_json"])).expanduser()
        p = p if p.is_absolute() else path.parent / p
        try:
            cfg = json.loads(p.read_text())
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{path}: entry {name!r}: field 'config_json': cannot read {p}: "
                              f"{exc}") from None
    else:
        cfg = raw["hf_config"]
    if not isinstance(cfg, dict):
        raise ConfigError(f"{path}: entry {name!r}: field 'hf_config' must be a mapping")
    try:
        fields, unread = read_hf_config(cfg)
        if "max_context" in extra and "default_context" not in extra \
                and fields.get("default_context"):
            # (an entry that sets its own context: the derived default within it)
            m = extra["max_context"]
            if isinstance(m, int) and not isinstance(m, bool) and m >= 1:
                fields["default_context"] = min(fields["default_context"], m)
        fields = {**fields, **extra}
        if "vision" in extra:  # the entry describes the vision tower itself
            unread = [k for k in unread if k != "vision_config"]
    except KeyError as exc:
        raise ConfigError(f"{path}: entry {name!r}: config.json lacks {exc.args[0]!r}") from None
    except ConfigError as exc:
        raise ConfigError(f"{path}: entry {name!r}: {exc}") from None
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{path}: entry {name!r}: bad config.json value: {exc}") from None
    if not fields.get("max_context") and "max_context" not in extra:
        mtype = model_type(cfg)
        near = did_you_mean(mtype, HF_DEFAULTS) if mtype not in HF_DEFAULTS else ""
        NO_CONTEXT[name] = (f"{path}: entry {name!r}: config.json gives no "
                            f"max_position_embeddings and model_type "
                            f"{mtype or '(not given)'!r} has no default wrpsim knows, so no "
                            f"context limit is enforced for it (add max_context: N to the "
                            f"entry){near}")
    if unread:  # said when the model is first used (`get_model`), not for every entry loaded
        quant = ("; weights are sized by the pool's precision (default bf16), not by the "
                 "checkpoint's quantization_config: set precision= to its format"
                 if "quantization_config" in unread else "")
        UNREAD[name] = (f"{path}: entry {name!r}: config.json keys that shape the model but "
                        f"that wrpsim does not read: {', '.join(unread)}; it is modelled from "
                        f"the keys it reads, without what these describe{quant}")
    return fields


#: model name -> the warning about its unread config.json keys, until `get_model` says it once
UNREAD: dict[str, str] = {}
#: model name -> the warning that its config.json sets no context limit, said the same way
NO_CONTEXT: dict[str, str] = {}
#: the user's refused entries already named (by a warning, or by the error of asking for one)
_SAID: set = set()


def load_models(path: Path, broken: dict[str, str] | None = None) -> dict[str, ModelSpec]:
    """Parse and validate a model catalog file (own fields, or `hf_config` / `config_json`).
    An invalid entry raises `ConfigError` (one line naming the file, entry and field); with
    `broken` given (a user's catalog) it is left out instead and its message kept there under
    its name, so that one bad entry does not stop the models that are fine."""
    out = {}
    for name, raw in _read(path).items():
        try:
            out[name] = _model_entry(path, name, raw)
        except ConfigError as exc:
            if broken is None:
                raise
            broken[name] = str(exc)
    return out


def _model_entry(path: Path, name: str, raw: dict) -> ModelSpec:
    """One validated entry of a model catalog file (`load_models`)."""
    if "hf_config" in raw or "config_json" in raw:
        raw = _hf_entry(path, name, raw)
    # (config_json / hf_config among the valid ones, so that a misspelling of them is named)
    _check_keys(path, name, raw, {*SPEC_FIELDS, "config_json", "hf_config"})
    vals: dict[str, Any] = {}
    for k in INT_FIELDS:
        if k in REQUIRED:
            vals[k] = _num(path, name, k, raw, integer=True)
        elif k in raw:
            vals[k] = _num(path, name, k, raw, integer=True, zero_ok=k in _ZERO_OK_MODEL)
    for k in BOOL_FIELDS:
        v = raw.get(k, k == "gated_mlp")
        if not isinstance(v, bool):
            raise ConfigError(f"{path}: entry {name!r}: field {k!r} must be true or false")
        vals[k] = v
    experts = vals.get("experts", 1)
    if vals.get("active_experts", 1) > experts:
        raise ConfigError(f"{path}: entry {name!r}: field 'active_experts' must be <= "
                          f"experts ({experts}), got {vals['active_experts']}")
    if vals["heads"] % vals["kv_heads"]:
        raise ConfigError(f"{path}: entry {name!r}: field 'kv_heads' must divide heads "
                          f"({vals['heads']}), got {vals['kv_heads']}; valid: "
                          f"{divisors(vals['heads'])}")
    if experts > 1 and vals.get("dense_layers", 0) >= vals["layers"]:
        raise ConfigError(f"{path}: entry {name!r}: field 'dense_layers' must be below layers "
                          f"({vals['layers']}) for a model with experts, got "
                          f"{vals['dense_layers']}")
    if vals.get("default_context", 0) and vals.get("max_context", 0) \
            and vals["default_context"] > vals["max_context"]:
        raise ConfigError(f"{path}: entry {name!r}: field 'default_context' must be <= "
                          f"max_context ({vals['max_context']}), got {vals['default_context']}")
    if vals.get("dense_layers", 0) > vals["layers"]:
        raise ConfigError(f"{path}: entry {name!r}: field 'dense_layers' must be <= layers "
                          f"({vals['layers']}), got {vals['dense_layers']}")
    if vals.get("sliding_layers", 0) > (vals.get("attention_layers") or vals["layers"]):
        raise ConfigError(f"{path}: entry {name!r}: field 'sliding_layers' must be <= the "
                          f"attention layers")
    if vals.get("sliding_layers", 0) and not vals.get("sliding_window", 0):
        raise ConfigError(f"{path}: entry {name!r}: field 'sliding_window' must be > 0 "
                          f"when sliding_layers is set")
    glob = [k for k in ("global_head_dim", "global_kv_heads", "global_k_eq_v") if vals.get(k)]
    if glob and not vals.get("sliding_layers", 0):
        raise ConfigError(f"{path}: entry {name!r}: field {glob[0]!r} describes the "
                          f"full-attention layers beside sliding-window ones; give "
                          f"sliding_layers and sliding_window (or the fields the global "
                          f"layers have as head_dim / kv_heads)")
    if vals.get("global_kv_heads", 0) and vals["heads"] % vals["global_kv_heads"]:
        raise ConfigError(f"{path}: entry {name!r}: field 'global_kv_heads' must divide heads")
    if vals.get("gated_delta") and not vals.get("mamba_layers", 0):
        raise ConfigError(f"{path}: entry {name!r}: field 'gated_delta' (Gated DeltaNet "
                          f"recurrent layers) needs mamba_layers > 0")
    if vals.get("index_topk", 0):
        if not vals.get("kv_lora_rank", 0):
            raise ConfigError(f"{path}: entry {name!r}: field 'index_topk' (DeepSeek Sparse "
                              f"Attention) needs an MLA model (kv_lora_rank > 0)")
        if not vals.get("index_heads", 0) or not vals.get("index_head_dim", 0):
            raise ConfigError(f"{path}: entry {name!r}: fields 'index_heads' and "
                              f"'index_head_dim' must be > 0 when index_topk is set")
        if vals.get("sliding_layers", 0):
            raise ConfigError(f"{path}: entry {name!r}: field 'index_topk' with "
                              f"sliding-window layers is not modelled; give one of them")
        attn = vals.get("attention_layers", 0) or vals["layers"]
        if vals.get("index_layers", 0) > attn:
            raise ConfigError(f"{path}: entry {name!r}: field 'index_layers' must be <= the "
                              f"attention layers ({attn}), got {vals['index_layers']}")
    elif vals.get("index_layers", 0):
        raise ConfigError(f"{path}: entry {name!r}: field 'index_layers' (layers with a DSA "
                          f"indexer of their own) needs index_topk > 0")
    if raw.get("vision") is not None:
        vals["vision"] = _vision(path, name, raw["vision"])
    return ModelSpec(name=name, source=str(raw.get("source", "")), **vals)


def _vision(path: Path, name: str, raw) -> VisionSpec:
    """An entry's `vision:` block: tokens_per_image, patches_per_image and encoder_params > 0
    (encoder_layers and encoder_hidden >= 0, optional)."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: entry {name!r}: field 'vision' must be a mapping, got {raw!r}")
    _check_keys(path, name, raw, set(VISION_FIELDS), "vision.")
    req = VISION_FIELDS[:3]
    vals = {k: _num(path, name, k, raw, integer=True, zero_ok=k not in req, prefix="vision.")
            for k in VISION_FIELDS if k in req or k in raw}
    return VisionSpec(**vals)


def _user_file(name: str) -> Path | None:
    """`name` in the user's catalog folder (`wrpsim.paths.user_catalog`), if it is there."""
    user = user_catalog()
    return user / name if user is not None and (user / name).is_file() else None


@cache
def gpus() -> dict[str, GpuSpec]:
    """All GPUs of the catalog by name (loaded once): the shipped ones, then the user's
    `gpus.yaml` (`$WRPSIM_CATALOG`), whose entries are added or replace shipped ones."""
    table = load_gpus(catalog_path() / "gpus.yaml")
    user = _user_file("gpus.yaml")
    if user is not None:
        table.update(load_gpus(user, known=table))
    return table


#: name -> why the user's `models.yaml` entry of that name was left out (`models`)
BROKEN: dict[str, str] = {}


@cache
def models() -> dict[str, ModelSpec]:
    """All models of the catalog by name (loaded once): the shipped ones, then the user's
    `models.yaml` (`$WRPSIM_CATALOG`), whose entries are added or replace shipped ones. A user's
    entry that is not valid is left out with a warning naming it and why (`BROKEN`; the other
    models still run), and asking for it (`get_model`) fails with that one line."""
    table = load_models(catalog_path() / "models.yaml")
    BROKEN.clear()
    _SAID.clear()
    user = _user_file("models.yaml")
    if user is not None:
        broken: dict[str, str] = {}
        table.update(load_models(user, broken))
        for name in broken:
            table.pop(name, None)  # (not the shipped entry it was meant to replace)
        BROKEN.update(broken)
    return table


def get_gpu(name: str) -> GpuSpec:
    """The catalog GPU `name`; `ConfigError` listing the valid names if unknown."""
    table = gpus()
    if name not in table:
        raise unknown_choice("gpu", name, table)
    return table[name]


def get_model(name: str) -> ModelSpec:
    """The catalog model `name`; `ConfigError` listing the valid names if unknown, or the
    one line saying why a user's entry of that name was left out (`BROKEN`)."""
    table = models()
    if name in BROKEN:
        _SAID.update(BROKEN)  # (its error says it: not also as a warning)
        raise ConfigError(BROKEN[name])
    for other, why in BROKEN.items():  # the others, once each, when a model is first asked for
        if other not in _SAID:
            _SAID.add(other)
            warn(f"{why} (entry left out of the catalog; the others are loaded)")
    if name not in table:
        raise unknown_choice("model", name, table)
    if name in UNREAD:
        warn(UNREAD.pop(name))
    if name in NO_CONTEXT:
        warn(NO_CONTEXT.pop(name))
    return table[name]


__all__ = [
    "CALIBRATION_FIELDS",
    "GpuSpec",
    "ModelSpec",
    "catalog_path",
    "get_gpu",
    "get_model",
    "gpus",
    "load_gpus",
    "load_models",
    "models",
]
