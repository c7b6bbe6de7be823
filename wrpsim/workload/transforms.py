"""Transforms of canonical trace frames (each returns a new frame, the input is not modified).

`apply_transforms` applies the flat workload keys in one fixed order:

0. `hash_block_tokens`: re-express the trace's hash ids at this block size (a multiple or a
   divisor of the trace's own, `prefix.reblock`); `prefix_ids` (null | session | synthetic,
   with `prefix_reuse:` parameters): generate ids (`reuse`) at `hash_block_tokens` (else the
   trace's block size, else 16). Ids are made before any request is dropped, so they describe
   the same content whatever the window or sample;
1. `start_s` / `end_s`: keep requests with start_s <= arrival_s < end_s (in the source's time),
   then shift times by -start_s so the window starts at 0;
2. `sample_fraction`: keep round(fraction * n) requests drawn without replacement (stream
   `workload.sample`), in their original order;
3. `max_requests`: keep the first N requests;
4. `rate_scale`: divide every arrival time by the factor (2.0 doubles the rate, halves the span);
5. `max_prompt_tokens` / `max_output_tokens`: clip token counts to the bound (rows are kept;
   hash ids are cut to the clipped prompt's ceil(P / B) blocks);
6. `model` (one name for every request) or `model_mix` ({name: weight}; each request drawn
   independently with probability weight / sum, stream `workload.model`). With neither, a
   `model` column the trace already has is kept;
7. `outcomes` (a per-prompt outcomes file joined one row per request: category, prompt length,
   per-model correctness; stream `workload.outcomes`; `wrpsim.workload.outcomes`);
8. `categories` (category mix and complexity for traces without them; stream
   `workload.category`; `wrpsim.workload.categories`);
9. `accuracy` (outcomes of the requests that have none from a per-(model, category) accuracy
   table: expected correctness; `wrpsim.workload.outcomes`);
10. `signals` (what a semantic router's signals read: jailbreak flags, PII types, keyword tags,
   language, modality, intent, drawn from configured rates; stream `workload.signals`;
   `wrpsim.workload.signals`).

Paths of 7 and 9 are relative to `base_dir` (the `workloads/` catalog when built from a YAML).

Every transform keeps the trace's `attrs` (`hash_block_tokens`).

Steps 0 (re-blocking), 1-6 are written once, on `TraceColumns` (`wrpsim.workload.columns`); each
also takes a DataFrame and then returns one (`columns.columnwise`), so the frame form has no
second implementation. `prefix_ids` and steps 7-10 are written on DataFrames: `apply_transforms`
converts to a frame for them only when they are configured, so a workload using none of them
never imports pandas.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from wrpsim.errors import ConfigError, bound_text, finite_number, warn
from wrpsim.rng import stream
from wrpsim.workload.columns import TraceColumns, columnwise, present
from wrpsim.workload.prefix import (
    DEFAULT_BLOCK_TOKENS,
    block_tokens,
    check_block_tokens,
    reblock,
    truncate_ids,
)

INT64_MAX = int(np.iinfo(np.int64).max)
TRANSFORM_KEYS = ("hash_block_tokens", "prefix_ids", "prefix_reuse", "start_s", "end_s",
                  "sample_fraction", "max_requests", "rate_scale", "max_prompt_tokens",
                  "max_output_tokens", "model", "model_mix", "outcomes", "categories", "accuracy",
                  "signals")


def _num(value: Any, field: str, low: float, strict: bool) -> float:
    if not finite_number(value):
        raise ConfigError(f"{field}: a finite number is required, got {value!r}")
    if value < low or (strict and value == low):
        raise ConfigError(f"{field} must be {'>' if strict else '>='} {bound_text(low)}, "
                          f"got {value}")
    return float(value)


def _int(value: Any, field: str, low: int) -> int:
    v = _num(value, field, low, strict=False)
    if not v.is_integer():
        raise ConfigError(f"{field} must be an integer, got {value}")
    return int(v)


@columnwise
def time_window(trace: TraceColumns, start_s: float | None = None,
                end_s: float | None = None) -> TraceColumns:
    """Rows with start_s <= arrival_s < end_s (None = unbounded), times shifted by -start_s."""
    start = 0.0 if start_s is None else _num(start_s, "start_s", 0.0, strict=False)
    a = trace["arrival_s"]
    keep = a >= start
    if end_s is not None:
        end = _num(end_s, "end_s", start, strict=True)
        keep &= a < end
    out = trace.take(keep)
    if start:
        out = out.with_columns({"arrival_s": out["arrival_s"] - start})
    return out


@columnwise
def rate_scale(trace: TraceColumns, factor: float) -> TraceColumns:
    """Arrival times divided by `factor` (> 0): factor 2 doubles the request rate."""
    f = _num(factor, "rate_scale", 0.0, strict=True)
    return trace.with_columns({"arrival_s": trace["arrival_s"] / f})


@columnwise
def sample_fraction(trace: TraceColumns, fraction: float,
                    rng: np.random.Generator) -> TraceColumns:
    """Exactly round(fraction * len(trace)) rows drawn without replacement, original order kept."""
    f = _num(fraction, "sample_fraction", 0.0, strict=True)
    if f > 1:
        raise ConfigError(f"sample_fraction must be <= 1, got {fraction}")
    k = round(f * len(trace))
    idx = np.sort(rng.choice(len(trace), size=k, replace=False))
    return trace.take(idx)


@columnwise
def first_n(trace: TraceColumns, n: int) -> TraceColumns:
    """The first `n` (>= 1) rows."""
    return trace.head(_int(n, "max_requests", 1))


@columnwise
def clip_tokens(trace: TraceColumns, max_prompt_tokens: int | None = None,
                max_output_tokens: int | None = None) -> TraceColumns:
    """Token counts clipped to the given maxima (None = no bound); no row is dropped.

    Hash ids are cut to the clipped prompt's ceil(P / B) blocks (`prefix.truncate_ids`).
    """
    out = trace
    for col, bound in (("prompt_tokens", max_prompt_tokens), ("output_tokens", max_output_tokens)):
        if bound is not None:
            b = min(_int(bound, f"max_{col}", 1), INT64_MAX)  # (a larger bound clips nothing)
            out = out.with_columns({col: np.minimum(out[col], b).astype(np.int64)})
    if max_prompt_tokens is not None:
        out = truncate_ids(out)
    return out


@columnwise
def assign_model(trace: TraceColumns, model: str | None = None,
                 model_mix: Mapping[str, float] | None = None,
                 rng: np.random.Generator | None = None) -> TraceColumns:
    """Set the `model` column to one name, or draw it per request from `model_mix` weights."""
    if model is None or model_mix is not None:  # the mix is what this call would use
        if not isinstance(model_mix, Mapping):
            raise ConfigError(f"model_mix: expected a mapping {{model: weight}}, "
                              f"got {model_mix!r}")
        if not model_mix:
            raise ConfigError("model_mix: an empty mapping; give {model: weight, ...} "
                              "(weights, normalised) or null")
    if model is not None and model_mix:
        raise ConfigError("model and model_mix are exclusive; set one of them to null")
    if "model" in trace.columns and present(trace["model"]).any():
        from wrpsim.errors import warn

        key = "model" if model is not None else "model_mix"
        warn(f"workload.{key} replaces the model the trace names per request (its model "
             f"column); set workload.{key}=null to replay the trace's own")
    if model is not None:
        if not isinstance(model, str) or not model:
            raise ConfigError(f"model: a catalog model name is required, got {model!r}")
        return trace.with_columns({"model": [model] * len(trace)})
    names = sorted(str(k) for k in model_mix)
    w = np.array([_num(model_mix[k], f"model_mix.{k}", 0.0, strict=False) for k in names])
    if w.sum() <= 0:
        raise ConfigError("model_mix: the weights must not all be 0")
    rng = rng if rng is not None else np.random.default_rng(0)
    pick = rng.choice(len(names), size=len(trace), p=w / w.sum())
    return trace.with_columns({"model": np.array(names, dtype=object)[pick].tolist()})


def _on_frame(trace: TraceColumns, fn) -> TraceColumns:
    """Apply a DataFrame step `fn` (pandas) to `trace`."""
    return TraceColumns.from_frame(fn(trace.to_frame()))


def _quality(df, o: Mapping[str, Any], seed: int, base_dir: Path | None):
    """Steps 7-9 on a DataFrame: outcomes, categories, accuracy."""
    from wrpsim.workload.categories import assign_categories
    from wrpsim.workload.outcomes import expected_outcomes, join_outcomes

    if base_dir is None:
        from wrpsim.workload.build import workloads_dir

        base_dir = workloads_dir()
    if o["outcomes"] is not None:
        df = join_outcomes(df, o["outcomes"], stream(seed, "workload.outcomes"), Path(base_dir))
    if o["categories"] is not None:
        df = assign_categories(df, o["categories"], stream(seed, "workload.category"))
    if o["accuracy"] is not None:
        df = expected_outcomes(df, o["accuracy"], Path(base_dir))
    return df


@columnwise
def apply_transforms(trace: TraceColumns, opts: Mapping[str, Any], seed: int,
                     base_dir: Path | None = None) -> TraceColumns:
    """Apply the transform keys of `opts` (see the module docstring) in their fixed order.

    Takes and returns `TraceColumns`, or a DataFrame (`columns.columnwise`). `base_dir` resolves
    the relative paths of `outcomes` and `accuracy` (default: the `workloads/` catalog)."""
    o = {k: opts.get(k) for k in TRANSFORM_KEYS}
    t, attrs = trace, dict(trace.attrs)
    block = None
    if o["hash_block_tokens"] is not None:
        block = check_block_tokens(o["hash_block_tokens"], "hash_block_tokens")
        t = reblock(t, block)
    if o["prefix_reuse"] is not None:
        from wrpsim.workload.reuse import reuse_params

        reuse_params(o["prefix_reuse"])
        if o["prefix_ids"] != "synthetic":  # it parameterises the synthetic ids only (a
            # warning, not an error: a sweep over prefix_ids=null,synthetic keeps it set)
            warn(f"workload.prefix_reuse applies only with prefix_ids: synthetic (it sets the "
                 f"synthetic prefix model); prefix_ids is "
                 f"{'null' if o['prefix_ids'] is None else o['prefix_ids']}, so it is not used")
    if o["prefix_ids"] is not None:
        from wrpsim.workload.reuse import apply_prefix_ids

        block = block or block_tokens(t) or DEFAULT_BLOCK_TOKENS
        t = _on_frame(t, lambda df: apply_prefix_ids(df, o["prefix_ids"], o["prefix_reuse"],
                                                     block, seed))
        attrs = dict(t.attrs)
    if o["start_s"] is not None or o["end_s"] is not None:
        t = time_window(t, o["start_s"], o["end_s"])
    if o["sample_fraction"] is not None:
        t = sample_fraction(t, o["sample_fraction"], stream(seed, "workload.sample"))
    if o["max_requests"] is not None:
        t = first_n(t, o["max_requests"])
    if o["rate_scale"] is not None:
        t = rate_scale(t, o["rate_scale"])
    if o["max_prompt_tokens"] is not None or o["max_output_tokens"] is not None:
        t = clip_tokens(t, o["max_prompt_tokens"], o["max_output_tokens"])
    if o["model"] is not None or o["model_mix"] is not None:
        t = assign_model(t, o["model"], o["model_mix"], stream(seed, "workload.model"))
    if o["outcomes"] is not None or o["categories"] is not None or o["accuracy"] is not None:
        t = _on_frame(t, lambda df: _quality(df, o, seed, base_dir))
    if o["signals"] is not None:
        from wrpsim.workload.signals import assign_signals

        t = _on_frame(t, lambda df: assign_signals(df, o["signals"],
                                                   stream(seed, "workload.signals")))
    if block is not None and "hash_ids" in t.columns:
        attrs["hash_block_tokens"] = block
    if "hash_ids" not in t.columns:
        attrs.pop("hash_block_tokens", None)
    return t.with_attrs(attrs) if t.attrs != attrs else t
