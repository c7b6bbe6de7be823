"""User-facing errors.

Every error a user can cause with bad input (a malformed trace row, an unknown catalog name, an
impossible configuration) is raised as a `WrpsimError` subclass whose message names the file,
line or field and, where there is a closed set, the valid choices. The command-line entry points
print these messages without a traceback and exit with status 2.
"""

from __future__ import annotations

import difflib
import math
import warnings


class WrpsimError(Exception):
    """Base class of errors caused by user input; the message is shown verbatim."""


class ConfigError(WrpsimError, ValueError):
    """A configuration value is unknown, out of range or impossible (e.g. model does not fit)."""


class FitError(ConfigError):
    """A valid pool whose model does not fit its GPUs: the weights leave no room for one KV
    block (a planner leaves such a candidate out instead of stopping)."""


class TraceError(WrpsimError, ValueError):
    """A trace file is missing, malformed or holds an invalid value (file, line, field named)."""


class WrpsimWarning(UserWarning):
    """A configuration that runs but is probably not what the user meant (e.g. a fleet with more
    instances than the trace has requests); the command-line entry points print it as one line
    `wrpsim: warning: …` on stderr."""


class ContextWarning(WrpsimWarning):
    """A pool whose KV cache, by wrpsim's memory estimate, cannot hold one sequence of its
    `max_context` (`wrpsim.pool.fleet.check_context_fits`). Not said of a measured run's replay
    (`wrpsim.validate.replay`): that server started, so its own context fitted its cache, and
    the replay's requests are the ones it served."""


def warn(message: str, category: type = WrpsimWarning) -> None:
    """Issue a `WrpsimWarning` (or a subclass, `category`; the pure core never prints; the CLI
    shows it as one line)."""
    warnings.warn(category(message), stacklevel=2)


def under(where: str, message: str) -> str:
    """`message` of a nested error reported under config key `where`: `where.field ...` when it
    starts with a field name (`gpu: unknown value ...`), `where: FILE: ...` when it starts with a
    file path (a broken catalog entry), so the key is not glued to the path."""
    return f"{where}: {message}" if starts_with_a_file(message) else f"{where}.{message}"


def starts_with_a_file(message: str) -> bool:
    """Whether `message` starts with a file path (`FILE: ...`), not a field name."""
    head = message.split(": ", 1)[0]
    return "/" in head or "\\" in head or head.endswith((".yaml", ".yml", ".json"))


def closest(name: str, valid) -> str | None:
    """The valid name closest to `name`, or None when none is close; a name that differs from
    one valid name only in case (`FP8` for `fp8`) is that name, and so is one that is the one
    valid name's leading part up to a '-', in any case (`h200` or `H200` for `h200-141gb`)."""
    names = [str(v) for v in valid]
    same = [v for v in names if v.lower() == str(name).lower()]
    if len(same) == 1:
        return same[0]
    lead = [v for v in names if str(name) and v.lower().startswith(f"{name}-".lower())]
    if len(lead) == 1:
        return lead[0]
    close = difflib.get_close_matches(str(name), names, n=1, cutoff=0.6)
    return close[0] if close else None


def same_name(name: str, models) -> str | None:
    """The one of `models` that `name` spells differently only in case and punctuation
    (`Llama3.1-8B` for `llama3.1-8b`), else None: model names a digit apart are other models
    (llama3.1-8b is not a misspelt llama3.1-70b), so nothing closer is suggested — a stricter
    `closest` for names where near is not the same."""
    key = "".join(ch for ch in str(name).lower() if ch.isalnum())
    hits = [m for m in models if "".join(ch for ch in m.lower() if ch.isalnum()) == key]
    return hits[0] if len(hits) == 1 else None


def slip_of(name: str, valid) -> str | None:
    """The one of `valid` that `name` is a slip of — the same but for case and punctuation
    (`same_name`), or one or two characters inserted, dropped or changed — else None: stricter
    than `closest`, for names that may be missing, not misspelt."""
    same = same_name(name, valid)
    if same is not None:
        return same
    near = [v for v in valid if near_miss(name, v)]
    return near[0] if len(near) == 1 else None


def near_miss(a: str, b: str) -> bool:
    """Whether `a` is within two typed characters of `b` (inserted, dropped or changed)."""
    return abs(len(a) - len(b)) <= 2 and edit_distance(a, b) <= 2


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance: single-character insertions, deletions and substitutions."""
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, cb in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (ca != cb))
    return row[-1]


def did_you_mean(name: str, valid) -> str:
    """'; did you mean 'x'?' for the valid name closest to `name` (`closest`), or ''."""
    near = closest(name, valid)
    return f"; did you mean {near!r}?" if near else ""


def unknown_choice(field: str, value: object, choices) -> ConfigError:
    """Build the standard 'unknown name' error listing the valid choices in sorted order."""
    valid = ", ".join(sorted(str(c) for c in choices))
    hint = did_you_mean(value, choices) if isinstance(value, str) else ""
    return ConfigError(f"{field}: unknown value {value!r}; valid choices: {valid}{hint}")


def choice(field: str, value, choices):
    """`value` when it is a name among `choices`, else `unknown_choice`'s error (a list or a
    mapping from YAML is no name: testing it against a dict of choices raised a TypeError)."""
    if not isinstance(value, str) or value not in choices:
        raise unknown_choice(field, value, choices)
    return value


def unknown_key(field: str, key: object, valid) -> ConfigError:
    """The standard error for a key outside `valid` (`field` is the key's full path), listing
    the valid keys with the nearest one suggested."""
    prefix = str(field).rpartition(".")[0]
    return ConfigError(f"{field}: unknown key {key!r}; valid keys: "
                       f"{', '.join(str(v) for v in valid)}"
                       f"{vllm_hint(key, valid, prefix) or did_you_mean(key, valid)}")


#: vLLM's engine arguments (`vllm serve`) and where a pool holds them
VLLM_ENGINE_ARGS = {"max_num_batched_tokens": "scheduler.token_budget",
                    "max_num_seqs": "scheduler.max_seqs",
                    "gpu_memory_utilization": "scheduler.gpu_mem_util",
                    "block_size": "scheduler.block_size", "max_model_len": "max_context",
                    "tensor_parallel_size": "tp", "kv_cache_dtype": "kv_dtype",
                    "num_gpu_blocks_override": "kv_blocks", "data_parallel_size": "attn_dp",
                    "enable_expert_parallel": "ep", "quantization": "precision",
                    "enable_prefix_caching": "prefix_cache.enabled"}
#: what a vLLM argument's wrpsim key means beyond the name (said after it, `vllm_hint` and
#: `wrpsim.hydra_errors`)
VLLM_NOTES = {"data_parallel_size": " with expert-parallel MoE (data-parallel attention); "
                                    "replicas of a dense model are the pool's count"}
#: `vllm bench serve`'s arguments and the closed-loop / constant-rate source keys that hold them
VLLM_BENCH_ARGS = {"random_input_len": "prompt_tokens", "random_output_len": "output_tokens",
                   "input_len": "prompt_tokens", "output_len": "output_tokens",
                   "max_concurrency": "concurrency", "num_prompts": "num_requests",
                   "request_rate": "stages"}
#: the same arguments where workload.source is `kind: synthetic` (workloads/vllm-bench.yaml);
#: --max-concurrency is the source's own max_concurrency (no hint needed) and --burstiness gamma
#: arrivals of cv 1 / sqrt(burstiness) (`vllm_hint`, `wrpsim.hydra_errors`)
VLLM_BENCH_SYNTHETIC = {"random_input_len": "lengths.prompt.value",
                        "random_output_len": "lengths.output.value",
                        "input_len": "lengths.prompt.value", "output_len": "lengths.output.value",
                        "num_prompts": "num_requests", "request_rate": "arrivals.rate"}


#: what `vllm bench serve`'s arguments are for a trace replay (its own arrivals and lengths)
TRACE_BENCH = {
    "num_prompts": "workload.max_requests (the trace's first N requests)",
    "request_rate": "workload.rate_scale (the trace's own arrivals, that many times faster)",
    "burstiness": "the trace's own arrivals (a synthetic source's gamma arrivals: cv 1/sqrt(b))",
    "max_concurrency": ("a cap on requests in flight, which a trace does not take (a kind: "
                        "synthetic source's max_concurrency, e.g. workload=vllm-bench)"),
    **{k: ("the trace's own lengths (workload.max_prompt_tokens / max_output_tokens clip them; "
           "fixed lengths: workload=vllm-bench)")
       for k in ("random_input_len", "random_output_len", "input_len", "output_len")},
}


def vllm_hint(key: str, valid, prefix: str = "") -> str:
    """'; vLLM's KEY is X here' when `key` is a vLLM argument whose wrpsim key (or its first
    part, or its last) is among `valid`, else ''; X is a full path when `prefix` (the path of
    the mapping `valid` belongs to) is given. An arrivals mapping (`process`, `rate`) takes
    --request-rate as its rate and --burstiness b as gamma arrivals of cv 1/sqrt(b)."""
    name = str(key).replace("-", "_")
    if "path" in valid and name in TRACE_BENCH:  # a trace's source: its own count and rates
        return f"; vllm bench serve's {key}: {TRACE_BENCH[name]}"
    at = f"{prefix}." if prefix else ""
    bench = VLLM_BENCH_SYNTHETIC if "lengths" in valid else VLLM_BENCH_ARGS
    if "process" in valid and "rate" in valid:  # an arrivals mapping
        bench = {"request_rate": "rate"}
        at_arrivals = at
    else:
        at_arrivals = f"{at}arrivals."
    if name == "burstiness" and ("arrivals" in valid or "process" in valid):
        return (f"; vllm bench serve's burstiness b is gamma arrivals of cv 1/sqrt(b) here "
                f"({at_arrivals}process: gamma, {at_arrivals}cv)")
    target = VLLM_ENGINE_ARGS.get(name) or bench.get(name)
    if not target:
        return ""
    who = "vllm bench serve's" if name in bench else "vLLM's"
    note = "" if name in bench else VLLM_NOTES.get(name, "")
    parts = target.split(".")
    if parts[0] in valid:
        return f"; {who} {key} is {at}{target} here{note}"
    if parts[-1] in valid:
        return f"; {who} {key} is {at}{parts[-1]} here{note}"
    return ""


def check_keys(mapping, valid, where: str) -> None:
    """Raise the standard 'unknown key(s)' error if `mapping` has a key outside `valid`, with the
    nearest valid key suggested for the first unknown one (or, for a vLLM argument's name, the
    key that holds it: `vllm_hint`)."""
    bad = sorted(k for k in mapping if k not in valid)
    if bad:
        # (the hint names the full path, as a Hydra override's does: `where`'s key path, after
        # a file name where it starts with one)
        path = str(where).rpartition(": ")[2]
        path = path if path and " " not in path else ""
        hint = vllm_hint(bad[0], valid, path) or did_you_mean(bad[0], valid)
        raise ConfigError(f"{where}: unknown key(s) {bad}; valid keys: {', '.join(valid)}"
                          f"{hint}")


def keyed_mapping(value, valid, where: str) -> dict:
    """`value` as a mapping whose keys are among `valid` (None: an empty one); otherwise the
    standard error naming `where` and the valid keys."""
    value = {} if value is None else value
    if not isinstance(value, dict):
        raise ConfigError(f"{where} must be a mapping with keys {', '.join(valid)}, "
                          f"got {value!r}")
    check_keys(value, valid, where)
    return value


def single_name(where: str, value, several: str | None = None):
    """`value` unchanged when it is a name (a string); otherwise the standard error — a list
    here is usually an attempt to compare several, which a sweep does (`-m where=a,b`), or
    what `several` says instead."""
    if not isinstance(value, str):
        hint = ""
        if isinstance(value, (list, tuple)) and value:
            hint = "; " + (several or f"to compare several, sweep them: python -m wrpsim -m "
                                      f"{where}={','.join(map(str, value))}")
        raise ConfigError(f"{where} must be a name, got {value!r}{hint}")
    return value


def boolean(where: str, value, default: bool | None = None) -> bool:
    """`value` as a bool (None: `default`, when one is given), else the standard 'must be true
    or false' error: a string such as 'off' or 'maybe' is not taken as true."""
    if value is None and default is not None:
        return default
    if not isinstance(value, bool):
        raise ConfigError(f"{where} must be true or false, got {value!r}")
    return value


def integer(where: str, value, lo: int | None = None) -> int:
    """`value` as an int (not a bool, not a float such as 1.5) >= `lo`, else the standard
    'must be an integer' error."""
    ok = isinstance(value, int) and not isinstance(value, bool)
    if not ok or (lo is not None and value < lo):
        rule = f" >= {lo}" if lo is not None else ""
        raise ConfigError(f"{where} must be an integer{rule}, got {value!r}")
    return int(value)


def finite_number(value) -> bool:
    """True for an int or float (not a bool) of finite value; an integer too large for a
    float (YAML reads 400 digits as one) is not finite, and none raises."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def finite_or_none(v) -> float | None:
    """`v` (a table cell: a number or its text) as a finite float, or None where it is
    missing, NaN, infinite, text that is no number, or a bool."""
    if v is None or isinstance(v, bool):
        return None
    try:
        x = float(v)
    except (TypeError, ValueError, OverflowError):
        return None
    return x if math.isfinite(x) else None


def bound_text(x) -> str:
    """A bound as a user wrote it: 1e8 as 100000000, 0.0 as 0, 0.5 as 0.5."""
    return str(int(x)) if isinstance(x, float) and x.is_integer() and abs(x) < 1e16 else str(x)


def number(where: str, value, lo: float | None = None, hi: float | None = None,
           strict_lo: bool = False, finite: bool = False, or_null: bool = False) -> float | None:
    """`value` as a float within the bounds (`lo` exclusive when `strict_lo`; finite when
    `finite`; None allowed when `or_null`), else the standard 'must be a number' error ('must
    be a finite number' when `finite`, so inf is not told it is below a bound)."""
    if value is None and or_null:
        return None
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if ok and (finite or isinstance(value, int)):  # (an int beyond a float's range: not one)
        ok = finite_number(value)
    if ok and lo is not None:
        ok = value > lo if strict_lo else value >= lo
    if ok and hi is not None:
        ok = value <= hi
    if not ok:
        bounds = []
        if lo is not None:
            bounds.append(f"{'>' if strict_lo else '>='} {bound_text(lo)}")
        if hi is not None:
            bounds.append(f"<= {bound_text(hi)}")
        rule = f" {' and '.join(bounds)}" if bounds else ""
        kind = "a finite number" if finite else "a number"
        raise ConfigError(f"{where} must be {kind}{rule}{' or null' if or_null else ''}, "
                          f"got {value!r}")
    return float(value)


def yaml_error(path, exc) -> str:
    """One line for an invalid catalog YAML: file:line:column of the problem and what PyYAML
    says of it (its own message spans four lines and names a '<unicode string>')."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None)
    if mark is None or not problem:
        return f"{path}: invalid YAML: {' '.join(str(exc).split())}"
    text = problem
    ctx, cmark = getattr(exc, "context", None), getattr(exc, "context_mark", None)
    if ctx:
        text += f" ({ctx}" + (f" at line {cmark.line + 1}" if cmark is not None else "") + ")"
    return f"{path}:{mark.line + 1}:{mark.column + 1}: invalid YAML: {text}"
