"""Ask the latency/power model directly: one JSON line on stdout.

    python -m wrpsim.perf model=llama2-70b gpu=h100-80gb tp=8 batch=4 prompt_tokens=512

prints `{"prefill_s": ..., "decode_step_s": ..., "power_w": ..., ...}`: `prefill_s` for one
prefill of `batch` prompts of `prompt_tokens` each, `decode_step_s` for one decode iteration of
`batch` sequences at `ctx_tokens` (default `prompt_tokens`) context each, `power_w` the per-GPU
power during that decode step, plus `prefill_power_w`, `idle_power_w`, `tdp_w`, KV capacity and
weight sizes, and the inputs. Arguments are Hydra overrides (`key=value`) of conf/perf.yaml;
`latency.<field>=value` overrides a calibrated field. Bad input prints one line on stderr and
exits with status 2.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from wrpsim.cli import parse_overrides, verb_main
from wrpsim.errors import ConfigError


def _defaults() -> dict[str, Any]:
    """The defaults of conf/perf.yaml."""
    from wrpsim.paths import catalog_dir

    try:
        path = catalog_dir("conf") / "perf.yaml"
    except ConfigError:
        path = Path(__file__).resolve().parents[1] / "conf" / "perf.yaml"
    return yaml.safe_load(path.read_text())


def parse_args(argv: list[str]) -> dict[str, Any]:
    """conf/perf.yaml with the `key=value` overrides of `argv` applied (Hydra's grammar);
    `ConfigError` naming an unknown key or a malformed override."""
    from wrpsim.pool.catalog import CALIBRATION_FIELDS

    cfg = _defaults()
    cfg["latency"] = dict(cfg.get("latency") or {})
    for key, value in parse_overrides(argv, "perf"):
        head, _, sub = key.partition(".")
        if head == "latency" and sub:
            if sub not in CALIBRATION_FIELDS:
                raise ConfigError(f"perf: unknown key {key!r}; valid latency.* keys: "
                                  f"{', '.join(CALIBRATION_FIELDS)}")
            cfg["latency"][sub] = value
        elif key in cfg and key != "latency":
            cfg[key] = value
        else:
            valid = sorted([k for k in cfg if k != "latency"] + ["latency.<field>"])
            raise ConfigError(f"perf: unknown key {key!r}; valid keys: {', '.join(valid)}")
    return cfg


def _int(cfg: dict, key: str, low: int) -> int:
    """`cfg[key]` checked to be an integer >= `low`."""
    v = cfg[key]
    if isinstance(v, bool) or not isinstance(v, int) or v < low:
        raise ConfigError(f"perf: {key} must be an integer >= {low}, got {v!r}")
    return v


def evaluate(cfg: dict[str, Any]) -> dict[str, Any]:
    """The JSON record for a parsed config (see the module docstring)."""
    from wrpsim.pool.perf import GIB, AnalyticalLatency

    for k in ("model", "gpu"):
        if not isinstance(cfg[k], str):
            raise ConfigError(f"perf: {k} must be a catalog name, got {cfg[k]!r}")
    batch, prompt = _int(cfg, "batch", 1), _int(cfg, "prompt_tokens", 1)
    ctx = prompt if cfg["ctx_tokens"] is None else _int(cfg, "ctx_tokens", 0)
    block = _int(cfg, "block_size", 1)
    for k in ("gpu_mem_util", "reserve_gib"):
        if isinstance(cfg[k], bool) or not isinstance(cfg[k], (int, float)):
            raise ConfigError(f"perf: {k} must be a number, got {cfg[k]!r}")
    for k, v in cfg["latency"].items():
        if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
            raise ConfigError(f"perf: latency.{k} must be a number >= 0, got {v!r}")
    tp = cfg["tp"]
    lat = AnalyticalLatency.from_names(cfg["model"], cfg["gpu"], tp, **cfg["latency"])
    blocks = lat.kv_capacity_blocks(block, float(cfg["gpu_mem_util"]), float(cfg["reserve_gib"]))
    decode_s = lat.decode_step_s(batch, ctx)
    return {
        "model": cfg["model"], "gpu": cfg["gpu"], "tp": tp, "batch": batch,
        "prompt_tokens": prompt, "ctx_tokens": ctx,
        "prefill_s": lat.prefill_s(batch, prompt),
        "decode_step_s": decode_s,
        "decode_tokens_per_s": batch / decode_s,
        "power_w": lat.power_at(0, batch, ctx),
        "prefill_power_w": lat.power_w(batch * prompt, 0),
        "idle_power_w": lat.idle_power_w(),
        "tdp_w": lat.gpu.tdp_w,
        "kv_capacity_blocks": blocks,
        "kv_capacity_tokens": blocks * block,
        "block_size": block,
        "weight_gib_per_gpu": lat.weight_bytes_per_gpu / GIB,
        "kv_bytes_per_token_per_gpu": lat.kv_bytes_per_token_per_gpu,
        "latency_overrides": dict(cfg["latency"]),
    }


def main(argv: list[str] | None = None) -> int:
    """Entry point: print one JSON line; on bad input one error line on stderr, status 2."""
    return verb_main(lambda a: evaluate(parse_args(a)), argv)


if __name__ == "__main__":
    raise SystemExit(main())
