"""Fit an engine's per-iteration constants on measured timings.

Two kinds of measurements, each row a measurement of one model on `tp` GPUs of one type:

- **steps** (`steps=FILE.csv`): one scheduler iteration each, columns `model, gpu, tp,
  prefill_tokens, decode_seqs, decode_ctx, step_ms` and optionally `precision`, `kv_dtype`,
  `prefill_seqs`, `prefill_pairs` (as `LatencyModel.iteration_s`; pairs default to a fresh
  prompt's). The fit compares `iteration_s` with `step_ms` directly (fast).
- **benchmarks** (`benchmarks=FILE.csv`): serving benchmarks, columns `model, gpu, tp,
  concurrency, isl, osl` and at least one of `ttft_ms`, `tpot_ms` (means), `itl_ms` (the
  median), optionally `precision`, `kv_dtype`, `ep`, `num_requests`, `range_ratio` (lengths
  uniform in [ratio x len, len]; default 1: fixed), `max_num_seqs`, `max_num_batched_tokens`,
  `gpu_memory_utilization` (vLLM's `--gpu-memory-utilization`, in (0, 1]; default 0.9),
  `request_rate`, and the server's kernels where they differ from the engine's (`BENCH_SETTINGS`:
  `allreduce_fusion`, `moe_triton`, true / false; blank: the engine's); no other columns (a
  misspelled one is refused, not left out). A row without
  `request_rate` is a closed loop of `concurrency` clients (num_requests default 10 x
  concurrency, max_num_seqs the concurrency, max_num_batched_tokens 8192: InferenceMAX's
  client and server); one with it is `vllm bench serve --request-rate`: Poisson arrivals at
  that rate, `concurrency` its `--max-concurrency` (blank: none), num_requests default 1,000
  and the batch limits `vllm serve`'s defaults for the GPU. vllm bench serve's names of these
  columns are read as them (`BENCH_ALIASES`). Each row is replayed through the
  simulator (`wrpsim.validate.replay`), so queueing and chunked prefill are part of the fit.

The fitted constants (`FIT_FIELDS` by default) minimise the sum over rows and metrics of
a robust loss (`LOSS`) of log(simulated / measured) with non-negative bounds; the report
gives the median and 90th-percentile absolute percentage error before and after the fit, the
constants the data do not constrain (kept at the engine's values), those ending on a bound,
and every row's signed error before and after (`fit_constants`). Rows are checked as they are
read (`check_pool`; steps also against the model's context and the GPUs' memory); a benchmark
row beyond the model's context is left out with a warning naming its line.
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from wrpsim.errors import ConfigError, warn
from wrpsim.pool import window

FIT_FIELDS = ("iter_overhead_us", "seq_overhead_us", "layer_overhead_us", "frontend_us",
              "frontend_us_per_token")
#: upper bounds of the fittable constants (physical ranges: a few ms per iteration at most);
#: `eager_layer_us` is fitted only when named (`fit=[...]`): it needs runs whose prompt steps
#: are launched eagerly (FULL_DECODE_ONLY graphs) and CPU-bound
BOUNDS = {"iter_overhead_us": 20000.0, "seq_overhead_us": 500.0, "layer_overhead_us": 200.0,
          "frontend_us": 200000.0, "frontend_us_per_token": 50.0, "sampling_passes": 50.0,
          "eager_layer_us": 2000.0, "frontend_us_per_stream_token": 1000.0,
          "frontend_us_serial": 200000.0}
#: robust loss of the fit: Cauchy on log(simulated / measured) with a 5 % scale, so a few rows
#: far off (a case the model misses) do not pull the constants away from the bulk of the rows
LOSS, F_SCALE = "cauchy", 0.05
STEP_COLUMNS = ("model", "gpu", "tp", "prefill_tokens", "decode_seqs", "decode_ctx", "step_ms")
BENCH_COLUMNS = ("model", "gpu", "tp", "concurrency", "isl", "osl")
BENCH_METRICS = {"ttft_ms": "ttft_mean_s", "tpot_ms": "tpot_mean_s", "itl_ms": "itl_p50_s"}
#: the optional columns of each kind of file (module docstring); any other column is refused,
#: so that a misspelled measurement or setting is not silently left out of the fit
STEP_OPTIONAL = ("precision", "kv_dtype", "prefill_seqs", "prefill_pairs")
#: engine settings a benchmark row may give for its own server (true / false; blank: the
#: engine's): the kernels it ran, which differ between servers of one engine version
BENCH_SETTINGS = ("allreduce_fusion", "moe_triton")
BENCH_OPTIONAL = (*BENCH_METRICS, "precision", "kv_dtype", "ep", "num_requests", "range_ratio",
                  "max_num_seqs", "max_num_batched_tokens", "gpu_memory_utilization",
                  "request_rate", *BENCH_SETTINGS)
#: required columns a row may leave blank where another column is given: a rate row's
#: concurrency (no --max-concurrency)
BLANK_WITH = {"concurrency": "request_rate"}
#: `vllm bench serve`'s names (its arguments and its --save-result fields) of benchmark
#: columns, read as the column they name
BENCH_ALIASES = {"max_concurrency": "concurrency", "num_prompts": "num_requests",
                 "random_input_len": "isl", "random_output_len": "osl", "input_len": "isl",
                 "output_len": "osl", "mean_ttft_ms": "ttft_ms", "mean_tpot_ms": "tpot_ms",
                 "median_itl_ms": "itl_ms", "tensor_parallel_size": "tp",
                 "kv_cache_dtype": "kv_dtype"}
#: vllm bench serve's other statistics of the compared metrics: refused with what to give
OTHER_STATS = {f"{stat}_{m}_ms": m for stat in ("median", "p90", "p95", "p99", "std", "mean")
               for m in ("ttft", "tpot", "itl", "e2el")}


def _read_csv(path: str | Path, required: tuple, optional: tuple = (),
              aliases: dict | None = None) -> pd.DataFrame:
    """The rows of `path`, which must have the `required` columns and may have the
    `optional` ones, nothing else (`ConfigError` naming the file, the column and the valid
    ones); a column named by one of `aliases` is read as the column it names."""
    import csv
    import io

    from wrpsim.errors import did_you_mean

    path = Path(path)
    try:  # every row as many cells as the header (pandas would take a first column as index)
        with path.open(newline="") as f:
            text = f.read()  # (read once: the cell check and pandas parse the same text)
        cells = list(csv.reader(io.StringIO(text, newline="")))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ConfigError(f"{path}: cannot read CSV: {exc}") from None
    head = [c.strip() for c in cells[0]] if cells else []
    twice = next((c for k, c in enumerate(head) if c in head[:k]), None)
    if twice is not None:
        raise ConfigError(f"{path}: column {twice!r} appears twice in the header")
    for i, row in enumerate(cells[1:], start=2):
        if row and len(row) != len(cells[0]):
            raise ConfigError(f"{path}: line {i}: {len(row)} cells, the header has "
                              f"{len(cells[0])}")
    try:  # (blank lines kept as empty rows, so every row keeps its line number in the file)
        df = pd.read_csv(io.StringIO(text, newline=""), skip_blank_lines=False,
                         index_col=False)
    except (OSError, ValueError) as exc:
        first = " ".join(str(exc).split())  # (pandas' messages run over several lines)
        raise ConfigError(f"{path}: cannot read CSV: {first}") from None
    valid = (*required, *optional)
    aliases = aliases or {}
    for alias, name in aliases.items():
        if alias in df.columns:
            if name in df.columns:
                raise ConfigError(f"{path}: columns {name!r} and {alias!r} (vllm bench serve's "
                                  f"name for it) both given; keep one")
            df = df.rename(columns={alias: name})
    if aliases:
        other = next((str(c) for c in df.columns if str(c) in OTHER_STATS
                      and str(c) not in aliases), None)
        if other is not None:
            m = OTHER_STATS[other]
            raise ConfigError(f"{path}: column {other!r}: wrpsim compares the mean TTFT and TPOT "
                              f"and the median ITL (give mean_ttft_ms / ttft_ms, mean_tpot_ms / "
                              f"tpot_ms, median_itl_ms / itl_ms)"
                              + ("; end-to-end latency is not fitted on" if m == "e2el" else ""))
    unknown = [str(c) for c in df.columns if c not in valid]
    if unknown:
        raise ConfigError(f"{path}: unknown column {unknown[0]!r}; required: "
                          f"{', '.join(required)}; optional: {', '.join(optional)}"
                          f"{did_you_mean(unknown[0], valid)}")
    missing = [c for c in required if c not in df.columns]
    if missing:
        blank = [f"; a {BLANK_WITH[c]} row may leave {c} empty, but the column must be there"
                 for c in missing if c in BLANK_WITH and BLANK_WITH[c] in valid]
        raise ConfigError(f"{path}: missing column(s) {missing}; required: {', '.join(required)}"
                          + "".join(blank[:1]))
    blank = df.isna().all(axis=1)
    lines = [int(i) + 2 for i in df.index[~blank]]
    df = df[~blank].reset_index(drop=True)
    if df.empty:
        raise ConfigError(f"{path}: no rows")
    for line, (_, row) in zip(lines, df.iterrows()):
        empty = [c for c in required if _nan(row[c])
                 and (c not in BLANK_WITH or _nan(row.get(BLANK_WITH[c])))]
        if empty:  # (pandas reads an empty cell as NaN, which would be named 'nan')
            also = (f"; only a {BLANK_WITH[empty[0]]} row may leave it empty"
                    if empty[0] in BLANK_WITH and BLANK_WITH[empty[0]] in valid else "")
            raise ConfigError(f"{path}: line {line}: {empty[0]} is empty (a required column"
                              f"{also})")
    df.attrs["lines"] = lines  # the file's line of each row (header: line 1)
    return df


def rows(df: pd.DataFrame):
    """(line in the file, row as a dict) of every row of a table `_read_csv` read."""
    return zip(df.attrs.get("lines") or range(2, len(df) + 2), df.to_dict("records"))


class Cases(list):
    """The `Case`s of a benchmarks file, and in `left_out` the (row, why) of its rows left out
    before the fit (they get a row of their own in the per-row report)."""

    left_out: list


def benchmark_cases(path: str | Path, split: str = "fit") -> Cases:
    """`wrpsim.validate.sets.Case`s of a benchmarks CSV (see module docstring)."""
    from wrpsim.validate.sets import Case

    df = _read_csv(path, BENCH_COLUMNS, BENCH_OPTIONAL, BENCH_ALIASES)
    if not any(c in df.columns for c in BENCH_METRICS):
        raise ConfigError(f"{path}: needs at least one of the columns {', '.join(BENCH_METRICS)}")
    out = Cases()
    out.left_out = []
    for i, r in rows(df):
        where = f"{path}: line {i}"
        rate = None if _nan(r.get("request_rate")) else _number(r.get("request_rate"))
        if not _nan(r.get("request_rate")) and (rate is None or rate <= 0):
            raise ConfigError(f"{where}: request_rate must be a number > 0 (requests per "
                              f"second; --request-rate inf, every request at once, is a closed "
                              f"loop: leave request_rate blank, concurrency = num_requests), "
                              f"got {r.get('request_rate')!r}")
        c = (None if rate is not None and _nan(r.get("concurrency"))
             else _int(r, "concurrency", where, high=MAX_SEQS, name="concurrency"))
        isl, osl = _int(r, "isl", where), _int(r, "osl", where)
        ratio = _fraction(r, "range_ratio", where, 1.0,
                          " (lengths uniform in [ratio x len, len]: 1 fixed; vLLM 0.9+'s "
                          "--random-range-ratio r is isl = len (1 + r), ratio = (1 - r) / "
                          "(1 + r))")
        if all(_nan(r.get(k)) for k in BENCH_METRICS):
            raise ConfigError(f"{where}: no measurement: needs at least one of "
                              f"{', '.join(BENCH_METRICS)}")
        if rate is None:  # a closed loop, as InferenceMAX's client and server run it
            mns_default, budget_default, n_default = c, 8192, 10 * c
        else:  # vllm bench serve --request-rate against `vllm serve`'s defaults
            served = _served_defaults(str(r["gpu"]), where)
            mns_default, budget_default = served["max_seqs"], served["token_budget"]
            n_default = 1000
        mns = _int(r, "max_num_seqs", where, default=mns_default, high=MAX_SEQS)
        budget = _int(r, "max_num_batched_tokens", where, default=budget_default)
        util = _fraction(r, "gpu_memory_utilization", where, 0.9)
        n_req = _int(r, "num_requests", where, default=n_default, high=MAX_REQUESTS)
        if rate is None and n_req < c:
            raise ConfigError(f"{where}: num_requests ({n_req:,}) is below the concurrency "
                              f"({c:,}): a closed loop of {c:,} clients needs at least as many "
                              f"requests to reach it")
        pool = {"gpu": str(r["gpu"]), "model": str(r["model"]), "tp": _int(r, "tp", where),
                "ep": _int(r, "ep", where, default=1), "count": 1,
                "precision": _text(r.get("precision"), "bf16"),
                "kv_dtype": _text(r.get("kv_dtype"), "auto"),
                "scheduler": {"policy": "sarathi", "token_budget": max(budget, mns),
                              "max_seqs": mns, "block_size": 16, "gpu_mem_util": util}}
        settings = {k: _flag(r, k, where) for k in BENCH_SETTINGS if not _nan(r.get(k))}
        if settings:
            pool["latency"] = {"kind": "engine", **settings}
        measured = {v: _positive(r, k, where) / 1e3 for k, v in BENCH_METRICS.items()
                    if k in r and not _nan(r[k])}
        # (checked without the kernel settings: the engine they run under may be the one this
        # call compacts; the replay names the row if its GPU's tables lack a kernel)
        plain = {k: v for k, v in pool.items() if k != "latency"}
        limit = check_pool(where, plain, scheduled=True).model.max_context
        if limit and isl + osl > limit:
            why = (f"isl + osl ({isl + osl:,} tokens) exceeds {pool['model']}'s context of "
                   f"{limit:,} tokens, so every request would be dropped")
            warn(f"{where}: row left out of the fit: {why}")
            out.left_out.append((where, why))
            continue
        if rate is None:
            wl = {"name": "benchmark", "source": {
                "kind": "closed_loop", "concurrency": c,
                "num_requests": n_req,
                "prompt_tokens": _lengths(isl, ratio), "output_tokens": _lengths(osl, ratio)}}
        else:  # (workloads/vllm-bench.yaml)
            wl = {"name": "benchmark", "source": {
                "kind": "synthetic", "num_requests": n_req,
                "arrivals": {"process": "poisson", "rate": rate},
                "lengths": {"kind": "fitted", "prompt": _dist(_lengths(isl, ratio)),
                            "output": _dist(_lengths(osl, ratio))},
                "max_concurrency": c}}
        out.append(Case("benchmarks", f"{path.name if hasattr(path, 'name') else path}:{i}",
                        pool["gpu"], pool["model"], split, pool, measured, workload=wl,
                        info={"where": where}))
    return out


def check_pool(where: str, pool: dict, scheduled: bool = False):
    """The latency model of a row's pool (`pool`: a pool config, its engine the default),
    checked as a run checks its pools (`wrpsim.pool.fleet.parse_pool`, the one-server tp
    limit, the model's heads; with `scheduled`, a benchmark's pool, also room for its KV cache
    beside the weights, `wrpsim.pool.fleet.kv_capacity`); `ConfigError` naming `where` (file
    and line) and the column, not the pool path the row becomes."""
    from wrpsim.pool.fleet import build_latency, kv_capacity, parse_pool, pool_window
    from wrpsim.sanity import check_pool_sizes

    name = str(pool.get("gpu"))
    try:
        spec = parse_pool(name, pool)
        check_pool_sizes([spec])
        lat = build_latency(spec)
        if scheduled:
            kv_capacity(lat, spec.scheduler, pool_window(spec, lat))
        return lat
    except ConfigError as e:
        msg = str(e)
        for pre in (f"pool.pools.{name}.", f"pool.pools.{name}"):
            if msg.startswith(pre):
                msg = msg[len(pre):].lstrip(".")
                break
        raise ConfigError(f"{where}: {msg}") from None


#: the spellings of a true / false cell
_FLAGS = {"true": True, "false": False, "1": True, "0": False, "yes": True, "no": False}


def _flag(r: dict, key: str, where: str) -> bool:
    """Row `r`'s `key` as true or false (`_FLAGS`; pandas' own booleans too); `ConfigError`
    naming `where` and the column otherwise."""
    v = r.get(key)
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, float, np.integer, np.floating)) and float(v) in (0.0, 1.0):
        return bool(v)
    got = _FLAGS.get(str(v).strip().lower())
    if got is None:
        raise ConfigError(f"{where}: {key} must be true or false (blank: the engine's "
                          f"setting), got {v!r}")
    return got


def _text(v, default: str) -> str:
    """A text cell, `default` when empty."""
    return default if _nan(v) or v == "" else str(v)


def _fraction(r: dict, key: str, where: str, default: float, explain: str = "") -> float:
    """Row `r`'s `key` as a number in (0, 1], `default` when blank; `ConfigError` naming
    `where` and the column otherwise (`explain` follows the range)."""
    v = default if _nan(r.get(key)) else _number(r.get(key))
    if v is None or not 0 < v <= 1:
        raise ConfigError(f"{where}: {key} must be a number in (0, 1]{explain}, got "
                          f"{r.get(key)!r}")
    return v


def _dist(length: int | dict) -> dict:
    """A `_lengths` value as a synthetic source's fitted distribution."""
    return length if isinstance(length, dict) else {"dist": "constant", "value": length}


def _served_defaults(gpu: str, where: str) -> dict:
    """`vllm serve`'s batch limits on catalog GPU `gpu` (`Engine.default_batch`)."""
    from wrpsim.pool.catalog import get_gpu
    from wrpsim.pool.engines import DEFAULT_ENGINE, get_engine

    try:
        spec = get_gpu(gpu)
    except ConfigError as e:
        raise ConfigError(f"{where}: gpu: {str(e).partition(': ')[2] or e}") from None
    engine = get_engine(DEFAULT_ENGINE)
    return engine.default_batch(spec) or {"token_budget": 8192, "max_seqs": 1024}


def _lengths(n: int, ratio: float) -> int | dict:
    """A fixed length, or lengths uniform in [ratio x n, n]."""
    return n if ratio == 1 else {"dist": "uniform", "low": max(1, int(n * ratio)), "high": n}


def _nan(v) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def _number(v) -> float | None:
    """`v` as a finite float, or None (missing, text, NaN or infinite)."""
    if _nan(v) or isinstance(v, bool):
        return None
    try:
        x = float(v)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


#: the largest concurrency / max_num_seqs and num_requests a benchmark row may name (the
#: scheduler's and the closed-loop workload's own limits)
MAX_SEQS, MAX_REQUESTS = 65_536, 50_000_000


def _int(r: dict, key: str, where: str, low: int = 1, default: int | None = None,
         high: int | None = None, name: str | None = None) -> int:
    """Column `key` of row `r` as an integer in [`low`, `high`] (`default` when the cell is
    empty and a default is given); `ConfigError` naming the file, line and column otherwise."""
    v = r.get(key)
    if default is not None and (_nan(v) or v == ""):
        return default
    x = _number(v)
    if x is None or x != int(x) or int(x) < low or (high is not None and int(x) > high):
        span = f">= {low:,}" if high is None else f"in {low:,}..{high:,}"
        raise ConfigError(f"{where}: {name or key} must be an integer {span}, got {v!r}")
    return int(x)


def _positive(r: dict, key: str, where: str) -> float:
    """Column `key` of row `r` as a number > 0 (a measured time); `ConfigError` otherwise."""
    x = _number(r.get(key))
    if x is None or x <= 0:
        raise ConfigError(f"{where}: {key} must be a number > 0, got {r.get(key)!r}")
    return x


def read_steps(path: str | Path) -> pd.DataFrame:
    """The rows of a steps CSV (module docstring), each checked: `tp` an integer >= 1,
    `prefill_tokens`, `decode_seqs`, `decode_ctx` (and `prefill_seqs` when given) integers >= 0
    with some work in the step, no more prompt chunks than prompt tokens and at least one KV
    token per decoding sequence, `step_ms` (and `prefill_pairs` when given) a number > 0;
    `ConfigError` naming the file, line and column of the first bad cell."""
    df = _read_csv(path, STEP_COLUMNS, STEP_OPTIONAL)
    df.attrs["path"] = str(path)
    lats: dict = {}
    for i, r in rows(df):
        where = f"{path}: line {i}"
        _int(r, "tp", where)
        p = _int(r, "prefill_tokens", where, low=0)
        d = _int(r, "decode_seqs", where, low=0)
        ctx = _int(r, "decode_ctx", where, low=0)
        if p + d == 0:
            raise ConfigError(f"{where}: a step needs prefill_tokens or decode_seqs > 0 "
                              f"(a step with no work has no time to fit)")
        if ctx < d:
            raise ConfigError(f"{where}: decode_ctx ({ctx:,}) is below decode_seqs ({d:,}): "
                              f"it is the tokens in the KV cache of all decoding sequences, "
                              f"at least one each")
        _positive(r, "step_ms", where)
        if not _nan(r.get("prefill_pairs")):
            _positive(r, "prefill_pairs", where)
        seqs = 1 if _nan(r.get("prefill_seqs")) else _int(r, "prefill_seqs", where)
        if p and seqs > p:
            raise ConfigError(f"{where}: prefill_seqs ({seqs:,}) exceeds prefill_tokens "
                              f"({p:,}): every prompt chunk in the step has a token at least")
        pool = {"gpu": str(r["gpu"]), "model": str(r["model"]), "tp": _int(r, "tp", where),
                "precision": _text(r.get("precision"), "bf16"),
                "kv_dtype": _text(r.get("kv_dtype"), "auto")}
        key = tuple(pool.values())
        if key not in lats:
            lats[key] = check_pool(where, pool)
        _check_step_context(where, lats[key], p, seqs if p else 0, d, ctx)
    return df


def _check_step_context(where: str, lat, prefill: int, prefill_seqs: int, decode: int,
                        ctx: int) -> None:
    """The rule of `wrpsim.perf`: no sequence longer than the model's context (a prompt
    chunk of prefill_tokens / prefill_seqs, a decode sequence of decode_ctx / decode_seqs
    tokens on average), and the step's KV (decode_ctx + prefill_tokens tokens) within what the
    GPUs can hold with all their memory beside the weights (a bound no engine setting lifts)."""
    m = lat.model
    limit = m.max_context
    for what, n, k in (("prefill_tokens / prefill_seqs", prefill, prefill_seqs),
                       ("decode_ctx / decode_seqs", ctx, decode)):
        if limit and k and n / k > limit:
            raise ConfigError(f"{where}: {what} ({n:,} / {k:,} tokens a sequence) exceeds "
                              f"{m.name}'s context of {limit:,} tokens")
    if hasattr(lat, "kv_capacity_blocks"):
        win = window.for_pool(lat, m, 1)
        state = window.pages_state(win)  # Mamba state paged per sequence
        try:
            cap = lat.kv_capacity_blocks(1, 1.0, 0.0,
                                         window.reserved_seqs(win, prefill_seqs + decode))
        except ConfigError as e:  # (the weights alone fill the GPUs)
            raise ConfigError(f"{where}: {e}") from None
        need = ctx + prefill
        if win is not None:  # one window or one Mamba state a sequence (as vLLM pages them)
            cap = win.capacity(cap)
            need += sum(k * win.blocks(n // k) for n, k in ((ctx, decode),
                                                            (prefill, prefill_seqs)) if k)
        if need > cap:
            what = ("its Mamba state is paged with the KV, one a sequence" if state else
                    "its sliding-window layers hold one window a sequence")
            held = "" if win is None else (
                f"; {what}: {need:,} tokens of its attention layers' room of {cap:,}")
            raise ConfigError(f"{where}: decode_ctx + prefill_tokens ({ctx + prefill:,} KV "
                              f"tokens) exceeds the KV cache {m.name} can have on tp={lat.tp} "
                              f"x {lat.gpu.name} ({cap:,} tokens with all memory beside the "
                              f"weights{held})")


#: the benchmarks CSV column of each simulated metric (per-row report)
COLUMN_OF = {v: k for k, v in BENCH_METRICS.items()}
#: a constant whose residuals move by less than this (log ratio: 0.01 %) when it moves by 5 %
#: of its range is one the data do not constrain: the simulator is deterministic, but a
#: replayed benchmark's metric can shift by a hair with anything that moves a request's
#: timing (a front-end constant on ITL rows), which is no evidence for the constant
SENSITIVITY_TOL = 1e-4
#: where in its range (fractions of `BOUNDS`) a constant that does not move the residuals at
#: its start is probed again: a CPU time hidden behind the GPU matters only once it exceeds
#: the GPU's step
PROBE_FRACTIONS = (0.02, 0.1, 0.3, 1.0)
#: where in its range a constant the fit could not move from its start is tried before the
#: fit starts again (log-spaced: a CPU time per sequence of 5 µs and of 250 µs both occur)
SCAN_FRACTIONS = (0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.4, 0.7, 1.0)
#: the least relative drop of the median or 90th-percentile error that makes a fit better
#: than its start (`_better`)
IMPROVEMENT = 0.005
#: a fitted constant this close to an end of its range (a fraction of the range) is on it
ON_BOUND_TOL = 1e-4


def _with(y: np.ndarray, k: int, v: float, hi: np.ndarray) -> np.ndarray:
    """`y` with its k-th entry set to `v`, inside [0, hi]."""
    y = y.copy()
    y[k] = v
    return np.clip(y, 0, hi)


def _cost(r: np.ndarray) -> float:
    """The fit's objective at residuals `r` (`LOSS` at `F_SCALE`, as `least_squares` sums
    it)."""
    return float(0.5 * F_SCALE ** 2 * np.sum(np.log1p((r / F_SCALE) ** 2)))


def case_entries(cases, engine: str, overrides: dict) -> list[tuple]:
    """(row, metric, log(simulated / measured) or None, why None) for every measured metric of
    every case; row: the case's file and line (`info['where']`) or its name."""
    from wrpsim.validate.replay import simulate

    out = []
    for case in cases:
        row = case.info.get("where", case.name)
        try:
            sim = simulate(case, engine, overrides)
        except ConfigError as e:  # (a row's own setting its engine cannot run: name the row)
            msg = str(e)
            pre = f"pool.pools.{case.pool.get('gpu')}."
            raise ConfigError(f"{row}: {msg[len(pre):] if msg.startswith(pre) else msg}") \
                from None
        for k, v in case.measured.items():
            if k == "power_w":  # the constants are times; power has its own fit
                continue
            s = sim.get(k)
            if s is not None and np.isfinite(s) and s > 0 and v > 0:
                out.append((row, COLUMN_OF.get(k, k), math.log(s / v), ""))
            else:
                why = ("the simulation completed no request" if not sim.get("requests")
                       else f"the simulation gave no {k}")
                out.append((row, COLUMN_OF.get(k, k), None, why))
    return out


def step_entries(df: pd.DataFrame, engine: str, overrides: dict) -> list[tuple]:
    """(row, 'step_ms', log(iteration_s / step_ms), '') of every row of a steps table."""
    from wrpsim.pool.engines import build_latency_model

    out = []
    models: dict = {}
    path = df.attrs.get("path", "steps")
    for i, r in rows(df):
        key = (r["model"], r["gpu"], int(r["tp"]), _text(r.get("precision"), "bf16"),
               _text(r.get("kv_dtype"), "auto"))
        lat = models.get(key)
        if lat is None:
            lat = models[key] = build_latency_model(*key[:3], engine, key[3], key[4], 1,
                                                    overrides)
        p = int(r["prefill_tokens"])
        pairs = r.get("prefill_pairs")
        pairs = p * (p + 1) / 2.0 if _nan(pairs) else float(pairs)
        seqs = r.get("prefill_seqs")
        seqs = 1 if _nan(seqs) else int(seqs)
        t = lat.iteration_s(p, pairs, int(r["decode_seqs"]), int(r["decode_ctx"]), seqs)
        out.append((f"{path}: line {i}", "step_ms",
                    math.log(t / (float(r["step_ms"]) / 1e3)), ""))
    return out


def fit_constants(engine: str, cases=(), steps: pd.DataFrame | None = None,
                  fields=FIT_FIELDS, start: dict | None = None) -> tuple[dict, dict]:
    """Least-squares fit of `fields` (engine constants) on `cases` and/or `steps`; returns
    (fitted values, report). A measurement whose simulation gives no value at the start (no
    request completed, say) is left out with a warning naming its row; none left is an error.
    A constant the data do not constrain (the residuals move neither when it moves by 5 % of
    its range nor at `PROBE_FRACTIONS` of it: e.g. `iter_overhead_us` under async scheduling
    when no row is CPU-bound, hidden behind the GPU), or one they bound from above only (any
    smaller value fits as well), is not fitted: it keeps the engine's value and is listed in
    `not_constrained`. A constant flat at its start but seen elsewhere in its range (rows
    whose CPU time exceeds the GPU's once it is long enough) is fitted from there too, the
    better of the two fits kept. The report has the
    median / p90 absolute % error 'before' and 'after', `on_bound` (fitted constants at an end
    of their range) and `rows`: (row, metric, signed % error before, after, note) of every
    measurement. A fit that lowers neither error figure (`_better`) is not taken: nothing
    is fitted, the report's 'after' is 'before', and `kept` names the constants it would have
    moved (refitting an earlier fit's result gives that, not a drift)."""
    from scipy.optimize import least_squares

    from wrpsim.pool.engines import get_engine

    eng = get_engine(engine)
    if eng.kind != "kernels":
        raise ConfigError(f"engine {engine}: only kernels engines have constants to fit")
    bad = [f for f in fields if f not in BOUNDS]
    if bad:
        raise ConfigError(f"fit: unknown field(s) {bad}; valid: {', '.join(BOUNDS)}")
    fields = list(fields)
    base = {f: float(getattr(eng.constants, f)) for f in fields}
    x0 = np.array([(start or base).get(f, base[f]) for f in fields], dtype=float)

    def serial_top(values: dict) -> float:
        """The ceiling of `frontend_us_serial`, the queued part of frontend_us: all of it (as
        `values` have it, else the engine's)."""
        return values.get("frontend_us", float(eng.constants.frontend_us))

    def entries(values: np.ndarray) -> list[tuple]:
        ov = dict(zip(fields, np.maximum(values, 0.0)))
        serial = ov.get("frontend_us_serial", float(eng.constants.frontend_us_serial))
        if "frontend_us_serial" in ov or serial > serial_top(ov):  # (a part of frontend_us)
            ov["frontend_us_serial"] = min(serial, serial_top(ov))
        out = case_entries(cases, engine, ov) if cases else []
        return out + (step_entries(steps, engine, ov) if steps is not None else [])

    e0 = entries(x0)
    keep = [i for i, e in enumerate(e0) if e[2] is not None]
    for row, metric, _, why in (e for e in e0 if e[2] is None):
        warn(f"{row}: {metric} left out of the fit: {why}")
    if not keep:
        raise ConfigError("calibrate: no usable measurement left to fit (every row was left "
                          "out: see the warnings)")

    def resid(values: np.ndarray) -> np.ndarray:
        e = entries(values)
        # a measurement that stops giving a value mid-fit counts as a factor e off
        return np.array([1.0 if e[i][2] is None else e[i][2] for i in keep])

    r0 = resid(x0)

    def moves(j: int, value: float, at: np.ndarray, r_at: np.ndarray) -> bool:
        x = at.copy()
        x[j] = value
        return bool(np.max(np.abs(resid(x) - r_at)) > SENSITIVITY_TOL)

    free, seen = [], {}  # seen: field -> a value at which it moves the residuals
    for j, f in enumerate(fields):
        step = 0.05 * BOUNDS[f]
        probe = x0[j] + step if x0[j] + step <= BOUNDS[f] else x0[j] - step
        if moves(j, probe, x0, r0):
            free.append(j)
            seen[j] = probe
            continue
        # flat at the start: a CPU time hidden behind the GPU, say, which the data may still
        # see once it is long enough to show; probe across the range before giving up
        for frac in PROBE_FRACTIONS:
            if abs(frac * BOUNDS[f] - x0[j]) > step and moves(j, frac * BOUNDS[f], x0, r0):
                free.append(j)
                seen[j] = frac * BOUNDS[f]
                break
    x_end, nfev = x0.copy(), 0
    if free:
        scale = np.array([max(BOUNDS[fields[j]] / 100.0, 1e-3) for j in free])
        hi = np.array([BOUNDS[fields[j]] for j in free]) / scale

        def sub(y: np.ndarray) -> np.ndarray:
            x = x0.copy()
            x[free] = np.maximum(y * scale, 0.0)
            return resid(x)

        def fit_from(y0: np.ndarray):
            return least_squares(sub, np.clip(y0, 0, hi), bounds=(np.zeros(len(free)), hi),
                                 loss=LOSS, f_scale=F_SCALE, diff_step=0.1, max_nfev=60)

        # start inside the bounds (1 % of each range at least) so finite differences have a
        # step
        ys = np.clip(np.maximum(x0[free] / scale, 1.0), 0, hi)
        best = fit_from(ys)
        nfev = int(best.nfev)
        # a constant the fit left where it started saw no gradient there (a CPU time hidden
        # behind the GPU: a small step shows nothing, the probe's larger one did), and one
        # whose local slope led it away from a better region (a queued front end: a little
        # queueing spreads a burst's arrivals and shortens its TTFT, more lengthens it, so the
        # fit slides to 0 while the probe's point fits far better): fit again from where the
        # probe saw it matter, and keep the better of the two fits
        stuck = [k for k in range(len(free)) if abs(best.x[k] - ys[k]) <= 1e-9 * max(1.0, ys[k])
                 or _cost(sub(_with(best.x, k, seen[free[k]] / scale[k], hi))) < _cost(
                     best.fun)]
        nfev += len(free)  # (the probe points' costs, at most one each)
        if stuck:
            # each such constant from the best point of a scan over its range (the residuals
            # are flat in stretches: a local step may see nothing)
            y2 = best.x.copy()
            for k in stuck:
                grid = [seen[free[k]] / scale[k]] + [f * hi[k] for f in SCAN_FRACTIONS]
                costs = []
                for v in grid:
                    costs.append(_cost(sub(_with(y2, k, v, hi))))
                nfev += len(grid)
                y2[k] = grid[int(np.argmin(costs))]
            again = fit_from(y2)
            nfev += int(again.nfev)
            if again.cost < best.cost:
                best = again
        x_end[free] = best.x * scale
        # a constant fitted into a flat stretch (any smaller value fits as well: the data
        # bound it from above only, as a CPU time hidden behind the GPU) is not constrained:
        # it keeps the engine's value where that fits as well
        r_end = resid(x_end)
        for j in list(free):
            down = max(x_end[j] - 0.05 * BOUNDS[fields[j]], 0.0)
            if down < x_end[j] and not moves(j, down, x_end, r_end) and not moves(
                    j, base[fields[j]], x_end, r_end):
                free.remove(j)
    fixed = [fields[j] for j in range(len(fields)) if j not in free]
    for j, f in enumerate(fields):  # a constant the data do not see keeps the engine's value
        if j not in free:
            x_end[j] = base[f]
    if "frontend_us_serial" in fields:  # as `entries` took it
        j = fields.index("frontend_us_serial")
        x_end[j] = min(x_end[j], serial_top(dict(zip(fields, x_end))))
    fitted = {fields[j]: round(float(x_end[j]), 3) for j in free}
    e1 = entries(x_end)
    r1 = np.array([1.0 if e1[i][2] is None else e1[i][2] for i in keep])
    kept = False
    if fitted and not _better(r1, r0):  # (a refit of an earlier fit, say: keep what is there)
        fitted, x_end, e1, r1, kept = {}, x0.copy(), e0, r0, True
    rows = []
    for i, (row, metric, before, why) in enumerate(e0):
        after = e1[i][2] if before is not None else None
        rows.append({"row": row, "metric": metric, "before_pct": _pct(before),
                     "after_pct": _pct(after), "note": f"left out: {why}" if why else ""})
    rows[:0] = [{"row": row, "metric": "", "before_pct": None, "after_pct": None,  # rows the
                 "note": f"left out: {why}"}  # benchmarks file could not fit, first
                for row, why in getattr(cases, "left_out", ())]
    # (within ON_BOUND_TOL of its range: the bounded least-squares stops just inside a bound)
    on_bound = [f for f, v in fitted.items()
                if v <= ON_BOUND_TOL * BOUNDS[f] or v >= BOUNDS[f] * (1 - ON_BOUND_TOL)]
    if "frontend_us_serial" in fitted and "frontend_us_serial" not in on_bound:
        if fitted["frontend_us_serial"] >= serial_top(fitted) * (1 - ON_BOUND_TOL):
            on_bound.append("frontend_us_serial")
    report = {"before": _ape(r0), "after": _ape(r1), "evaluations": nfev,
              "not_constrained": fixed, "on_bound": on_bound, "rows": rows}
    if ("frontend_us" in fitted and "frontend_us_serial" not in fitted
            and eng.constants.frontend_us_serial > fitted["frontend_us"]):
        # the engine's queued part (not asked for, or not constrained by the data) cannot
        # exceed the front end it is part of: lowered with it (as `entries` simulated it),
        # and written so (not fitted: other data may say otherwise)
        report["lowered"] = {"frontend_us_serial": fitted["frontend_us"]}
    if "frontend_us_serial" in on_bound:  # which end: 0, or all of frontend_us
        top = serial_top({**base, **fitted})
        v = fitted.get("frontend_us_serial", 0.0)
        report["serial_end"] = "top" if top > 0 and v >= top * (1 - ON_BOUND_TOL) else "bottom"
    if kept:
        report["kept"] = [fields[j] for j in free]
    return fitted, report


def _better(after: np.ndarray, before: np.ndarray) -> bool:
    """Whether residuals `after` improve on `before` as the report measures them: a lower
    median or 90th-percentile absolute % error, by more than the report's rounding and 0.5 %
    of itself (a 90th percentile of 60,000 % — a row in other units — that moves by 2 points
    is no improvement). The fit
    minimises a robust loss, whose surface over a simulation is rough: started from an earlier
    fit's result it can land on another point of about the same loss with both figures a
    little worse; such a fit is not taken. (One of them may rise: a row far off, which the
    robust loss lets go, can lift the 90th percentile while the bulk of the rows improves.)"""
    a, b = _ape(after), _ape(before)
    return any(a[k] < b[k] * (1 - IMPROVEMENT) - 0.05 for k in ("median_pct", "p90_pct"))


def _pct(log_ratio: float | None) -> float | None:
    """Signed % error (simulated / measured - 1) of a log ratio, None for none."""
    return None if log_ratio is None else round(float(math.expm1(log_ratio)) * 100, 2) + 0.0


def _ape(log_ratios: np.ndarray) -> dict:
    a = np.abs(np.expm1(log_ratios)) * 100
    return {"n": len(a), "median_pct": round(float(np.median(a)), 1),
            "p90_pct": round(float(np.percentile(a, 90)), 1)} if len(a) else {"n": 0}


def apply(engine, fitted: dict):
    """The engine with `fitted` constants (for reporting before writing)."""
    return replace(engine, constants=replace(engine.constants, **fitted))
