"""The `inference_perf` set: constant-rate vLLM 0.15.1 runs on H100 measured with inference-perf,
as replayable cases.

The runs are the ones BLIS's latency model was fitted on (github.com/inference-sim/training,
`default_args/`); that repository states no licence, so the set is read from a clone given as
`inference_perf_dir` and never shipped. Each experiment folder holds one vLLM server
(`exp-config.yaml`: model, TP, max_model_len, max_num_batched_tokens, max_num_seqs) and the
inference-perf config that ran (`results/config.yaml`: constant-rate stages — int(rate x
duration) requests, their gaps exponential scaled to fill the stage, inference-perf's
`ConstantLoadTimer`, as `kind: constant_rate` replays it by default — of `shared_prefix`
requests, `num_groups` system prompts each with `num_prompts_per_group` questions, every prompt
generated once and sent over and over, and `output_len` tokens out with `ignore_eos`), with the
measured figures per stage
(`results/stage_<i>_lifecycle_metrics.json`). The runs' authors state vLLM v0.15.1 on H100
SXM, FP16, prefix caching and chunked prefill on (inference-sim/sim-to-real-accuracy-validation,
docs/plans/2026-03-04-sim-to-real-accuracy-validation-design.md).

One case per stage: a constant-rate stage of the stage's duration, prompts of the stage's
measured mean length (as the server tokenized them), the configured output length, and the
prompts' reuse — every request sharing all its full blocks with one of the `num_groups x
num_prompts_per_group` prompts (`prefix_ids: synthetic`, `prefix_reuse`, drawn uniformly;
inference-perf cycles through them). Engine `IP_ENGINE` with `IP_LATENCY` (vLLM 0.15: async
scheduling on, the all-reduce + RMSNorm fusion not yet on by default, BF16 experts as Triton's
fused MoE on Hopper). Measured: mean TTFT, mean latency and the time per output token, (mean
latency - mean TTFT) / (output_len - 1) — inference-perf's own TPOT and ITL count streamed
chunks and its output length re-tokenizes the text, so neither is the engine's (its request
latency and TTFT are). A stage where more than `MAX_FAILED` of the requests failed is left out
(the successes alone are a censored sample of an overloaded server). Every case is in the test
split: nothing was fitted on these runs.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import yaml

from wrpsim.errors import ConfigError
from wrpsim.validate.sets import Case, catalog_model, skipper

#: vLLM 0.15.1's calibration: the V1 engine with async scheduling (vllm-0.19's constants)
IP_ENGINE = "vllm-0.19"
#: ... as 0.15 ran it: no all-reduce + RMSNorm fusion (default from 0.16), Triton fused MoE
IP_LATENCY = {"kind": "engine", "allreduce_fusion": False, "moe_triton": True}
#: the GPU the runs' authors name (H100 SXM)
IP_GPU = "h100-80gb"
#: share of a stage's requests that failed above which the stage is left out
MAX_FAILED = 0.01


def experiment_dirs(root: Path) -> list[Path]:
    """The experiment folders of a clone (`root/default_args/*`, or `root/*` when `root` is
    that folder itself), sorted by name."""
    base = root / "default_args" if (root / "default_args").is_dir() else root
    return sorted(d for d in base.iterdir() if (d / "exp-config.yaml").is_file())


def _read(path: Path):
    """A YAML / JSON file of an experiment folder (one line naming it when it cannot be read)."""
    try:
        text = path.read_text()
        return json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (OSError, ValueError, yaml.YAMLError) as e:
        raise ConfigError(f"validate: inference_perf: {path}: cannot be read "
                          f"({type(e).__name__})") from None


def inference_perf_cases(root: Path, skipped: dict[str, int] | None = None) -> list[Case]:
    """One `Case` per stage of every experiment under `root` (module docstring); stages left
    out are counted in `skipped` by reason. A folder missing a field the replay needs stops
    with one line naming the folder and the field (`ConfigError`)."""
    skip = skipper(skipped)
    out: list[Case] = []
    for d in experiment_dirs(root):
        try:
            out += _experiment_cases(d, skip)
        except ConfigError:  # (a file that cannot be read: `_read` named it)
            raise
        except (KeyError, TypeError, ValueError) as e:
            raise ConfigError(f"validate: inference_perf: {d}: missing or malformed field "
                              f"{e.args[0] if isinstance(e, KeyError) else e} (exp-config.yaml, "
                              f"results/config.yaml, results/stage_<i>_lifecycle_metrics.json)"
                              ) from None
    return out


def _experiment_cases(d: Path, skip) -> list[Case]:
    """The cases of one experiment folder `d` (see `inference_perf_cases`)."""
    cfg = _read(d / "exp-config.yaml")
    run = _read(d / "results" / "config.yaml")
    model = catalog_model(str(cfg.get("model", "")))
    load, data = run.get("load") or {}, run.get("data") or {}
    if model is None:
        skip(f"model {cfg.get('model')} is no catalog entry's source")
        return []
    if load.get("type") != "constant":
        skip(f"load type {load.get('type')!r} (replayed: constant)")
        return []
    sp = data.get("shared_prefix")
    if data.get("type") != "shared_prefix" or not sp:
        skip(f"data type {data.get('type')!r} (replayed: shared_prefix)")
        return []
    prompts = int(sp["num_groups"]) * int(sp["num_prompts_per_group"])
    out_len = int(sp["output_len"])
    out: list[Case] = []
    for i, st in enumerate(load.get("stages") or []):
        path = d / "results" / f"stage_{i}_lifecycle_metrics.json"
        if not path.is_file():
            skip("stage without its lifecycle metrics")
            continue
        m = _read(path)
        ok, lat = m["successes"], m["successes"]["latency"]
        failed = int((m.get("failures") or {}).get("count", 0) or 0)
        if failed > MAX_FAILED * (failed + int(ok["count"])):
            skip(f"more than {MAX_FAILED:.0%} of the stage's requests failed (overloaded)")
            continue
        rate, duration = float(st["rate"]), float(st["duration"])
        prompt = round(float(ok["prompt_len"]["mean"]))
        ttft = float(lat["time_to_first_token"]["mean"])
        e2e = float(lat["request_latency"]["mean"])
        measured = {"ttft_mean_s": ttft, "e2e_mean_s": e2e,
                    "tpot_mean_s": (e2e - ttft) / (out_len - 1)}
        if not all(math.isfinite(v) and v > 0 for v in measured.values()):
            skip("non-positive or missing mean TTFT / latency")
            continue
        pool = {"gpu": IP_GPU, "model": model, "tp": int(cfg["tensor_parallelism"]),
                "count": 1, "engine": IP_ENGINE, "max_context": int(cfg["max_model_len"]),
                "scheduler": {"policy": "sarathi", "block_size": 16,
                              "token_budget": int(cfg["max_num_batched_tokens"]),
                              "max_seqs": int(cfg["max_num_seqs"])},
                "latency": dict(IP_LATENCY)}
        wl = {"name": "inference-perf", "source": {
            "kind": "constant_rate", "stages": [{"rate": rate, "duration_s": duration}],
            "spacing": "inference_perf", "prompt_tokens": prompt, "output_tokens": out_len},
            "prefix_ids": "synthetic",
            "prefix_reuse": {"share": 1.0, "tokens": prompt, "prefixes": prompts,
                             "zipf_s": 0.0}}
        name = f"{d.name.split('-', 2)[-1]} @{rate:g}/s"
        out.append(Case("inference_perf", name, IP_GPU, model, "test", pool, measured,
                        workload=wl, info={"rate": rate, "duration_s": duration,
                                           "ttft_p90_s": lat["time_to_first_token"]["p90"],
                                           "e2e_p90_s": lat["request_latency"]["p90"]}))
    return out
