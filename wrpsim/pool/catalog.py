"""The GPU and model catalogs: `pools/catalog/gpus.yaml` and `pools/catalog/models.yaml`.

One YAML mapping per catalog, one entry per name. Entries are validated on load: a missing,
unknown, non-numeric or non-positive field raises `ConfigError` naming the file, the entry and the
field. A GPU's calibrated latency/power efficiencies live in its `calibration:` mapping, written by
`python -m wrpsim.pool.calibrate --write`; `calibration: {from: other-gpu}` copies another GPU's
values (used for GPUs without measurements). See pools/README.md for the figures and sources.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from wrpsim.errors import ConfigError, unknown_choice
from wrpsim.paths import catalog_dir

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
    bandwidths in GB/s (10^9 B/s); `link_gbs` is the scale-up link per GPU and direction.
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


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """One transformer architecture (dense or mixture-of-experts). `intermediate` is the FFN
    width of one expert; `gated_mlp` means three FFN matrices (SwiGLU) instead of two. Norms and
    biases are ignored (< 0.1 % of parameters)."""

    name: str
    layers: int
    hidden: int
    heads: int
    kv_heads: int
    head_dim: int
    intermediate: int
    vocab: int
    experts: int = 1
    active_experts: int = 1
    bytes_per_param: int = 2
    gated_mlp: bool = True
    tied_embeddings: bool = False
    source: str = ""

    @property
    def attn_params_per_layer(self) -> int:
        """Q, K, V and output projection weights of one layer."""
        q = self.heads * self.head_dim
        return 2 * self.hidden * q + 2 * self.hidden * self.kv_heads * self.head_dim

    @property
    def expert_params_per_layer(self) -> int:
        """FFN weights of one expert in one layer."""
        return (3 if self.gated_mlp else 2) * self.hidden * self.intermediate

    @property
    def embedding_params(self) -> int:
        """Input embedding plus the LM head (shared when `tied_embeddings`)."""
        return self.vocab * self.hidden * (1 if self.tied_embeddings else 2)

    @property
    def params(self) -> int:
        """Total parameters (all experts)."""
        per_layer = self.attn_params_per_layer + self.experts * self.expert_params_per_layer
        return self.layers * per_layer + self.embedding_params

    @property
    def active_params(self) -> int:
        """Parameters one token goes through (routed experts only)."""
        per_layer = self.attn_params_per_layer + self.active_experts * self.expert_params_per_layer
        return self.layers * per_layer + self.embedding_params

    @property
    def kv_bytes_per_token(self) -> int:
        """KV-cache bytes of one token: 2 (K and V) x layers x kv_heads x head_dim x bytes."""
        return 2 * self.layers * self.kv_heads * self.head_dim * self.bytes_per_param


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
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read catalog: {exc}") from None
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise ConfigError(f"{path}: expected a mapping of name -> mapping of fields")
    return data


def _num(path: Path, entry: str, key: str, raw: dict, *, integer: bool, zero_ok: bool = False,
         prefix: str = ""):
    """Field `key` of `raw` as a validated number; errors name file, entry and field."""
    label = prefix + key
    if key not in raw:
        raise ConfigError(f"{path}: entry {entry!r}: missing field {label!r}")
    v = raw[key]
    if isinstance(v, bool) or not isinstance(v, (int, float)) or (integer and v != int(v)):
        kind = "an integer" if integer else "a number"
        raise ConfigError(f"{path}: entry {entry!r}: field {label!r} must be {kind}, got {v!r}")
    if v < 0 or (v == 0 and not zero_ok):
        bound = ">= 0" if zero_ok else "> 0"
        raise ConfigError(f"{path}: entry {entry!r}: field {label!r} must be {bound}, got {v!r}")
    return int(v) if integer else float(v)


def _check_keys(path: Path, entry: str, raw: dict, allowed: set[str], prefix: str = "") -> None:
    """Reject fields outside `allowed` (typos), listing the valid ones."""
    extra = sorted(set(raw) - allowed)
    if extra:
        raise ConfigError(f"{path}: entry {entry!r}: unknown field {prefix + extra[0]!r}; "
                          f"valid fields: {', '.join(sorted(allowed))}")


_GPU_BASE = ("bf16_tflops", "mem_gib", "mem_bw_gbs", "tdp_w", "idle_w", "link_gbs",
             "price_per_hour_usd")


def load_gpus(path: Path) -> dict[str, GpuSpec]:
    """Parse and validate a GPU catalog file; resolve `calibration: {from: ...}` references."""
    data = _read(path)
    calib: dict[str, dict[str, float] | str] = {}
    for name, raw in data.items():
        _check_keys(path, name, raw, set(_GPU_BASE) | {"calibration", "sources"})
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
    out = {}
    for name, raw in data.items():
        src = calib[name] if isinstance(calib[name], str) else name
        if not isinstance(calib.get(src), dict):
            raise ConfigError(f"{path}: entry {name!r}: field 'calibration.from' names {src!r}, "
                              f"which is not a GPU with its own calibration")
        vals = {k: _num(path, name, k, raw, integer=False) for k in _GPU_BASE}
        if vals["idle_w"] >= vals["tdp_w"]:
            raise ConfigError(f"{path}: entry {name!r}: field 'idle_w' must be below tdp_w")
        c = dict(calib[src])
        source = c.pop("source") + ("" if src == name else f" (copied from {src})")
        out[name] = GpuSpec(name=name, calibration_source=source, **vals, **c)
    return out


_MODEL_INT = ("layers", "hidden", "heads", "kv_heads", "head_dim", "intermediate", "vocab")


def load_models(path: Path) -> dict[str, ModelSpec]:
    """Parse and validate a model catalog file."""
    out = {}
    for name, raw in _read(path).items():
        _check_keys(path, name, raw, set(_MODEL_INT) | {
            "experts", "active_experts", "bytes_per_param", "gated_mlp", "tied_embeddings",
            "source"})
        vals: dict[str, Any] = {k: _num(path, name, k, raw, integer=True) for k in _MODEL_INT}
        for k, default in (("experts", 1), ("active_experts", 1), ("bytes_per_param", 2)):
            vals[k] = _num(path, name, k, {k: default, **raw}, integer=True)
        for k in ("gated_mlp", "tied_embeddings"):
            v = raw.get(k, k == "gated_mlp")
            if not isinstance(v, bool):
                raise ConfigError(f"{path}: entry {name!r}: field {k!r} must be true or false")
            vals[k] = v
        if vals["active_experts"] > vals["experts"]:
            raise ConfigError(f"{path}: entry {name!r}: field 'active_experts' must be <= "
                              f"experts ({vals['experts']}), got {vals['active_experts']}")
        if vals["heads"] % vals["kv_heads"]:
            raise ConfigError(f"{path}: entry {name!r}: field 'kv_heads' must divide heads")
        out[name] = ModelSpec(name=name, source=str(raw.get("source", "")), **vals)
    return out


@cache
def gpus() -> dict[str, GpuSpec]:
    """All GPUs of the catalog by name (loaded once)."""
    return load_gpus(catalog_path() / "gpus.yaml")


@cache
def models() -> dict[str, ModelSpec]:
    """All models of the catalog by name (loaded once)."""
    return load_models(catalog_path() / "models.yaml")


def get_gpu(name: str) -> GpuSpec:
    """The catalog GPU `name`; `ConfigError` listing the valid names if unknown."""
    table = gpus()
    if name not in table:
        raise unknown_choice("gpu", name, table)
    return table[name]


def get_model(name: str) -> ModelSpec:
    """The catalog model `name`; `ConfigError` listing the valid names if unknown."""
    table = models()
    if name not in table:
        raise unknown_choice("model", name, table)
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
