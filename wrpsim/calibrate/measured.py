"""The measurement files a fit of engine constants reads (`wrpsim.calibrate.fit`).

Two kinds of measurements, each row a measurement of one model on `tp` GPUs of one type:

- **steps** (`steps=FILE.csv`): one scheduler iteration each, columns `model, gpu, tp,
  prefill_tokens, decode_seqs, decode_ctx, step_ms` and optionally `precision`, `kv_dtype`,
  `prefill_seqs`, `prefill_pairs` (as `LatencyModel.iteration_s`; pairs default to a fresh
  prompt's). The fit compares `iteration_s` with `step_ms` directly (fast).
- **benchmarks** (`benchmarks=FILE.csv`): serving benchmarks, columns `model, gpu, tp,
  concurrency, isl, osl` and at least one of `ttft_ms`, `tpot_ms` (means), `itl_ms` (the
  median), optionally `precision`, `kv_dtype`, `ep`, `num_requests`, `range_ratio` (lengths
  uniform in [ratio x len, len]; default 1: fixed), `max_num_seqs`, `max_num_batched_tokens`,
  `gpu_memory_utilization` (vLLM's `--gpu-memory-utilization`, in (0, 1]; default 0.9, vLLM's
  own before it became 0.92 with vllm-project/vllm#38284 — give it for a newer server's),
  `request_rate`, and the server's kernels where they differ from the engine's (`BENCH_SETTINGS`:
  `allreduce_fusion`, `moe_triton`, true / false; blank: the engine's); no other columns (a
  misspelled one is refused, not left out). A row without
  `request_rate` is a closed loop of `concurrency` clients (num_requests default 10 x
  concurrency, max_num_seqs the concurrency, max_num_batched_tokens 8192: InferenceMAX's
  client and server); one with it is `vllm bench serve --request-rate`: Poisson arrivals at
  that rate, `concurrency` its `--max-concurrency` (blank: none), num_requests default 1,000
  and the batch limits `vllm serve`'s defaults for the GPU; `inf` is a burst: a closed loop of
  `concurrency` clients, or of `num_requests` without one. vllm bench serve's names of these
  columns are read as them (`BENCH_ALIASES`; its `model_id`, a Hugging Face id, as the catalog
  model whose `source` it is), and its other `--save-result` fields are read past
  (`VLLM_BENCH_INFO`, `_STAT`), so that its results flattened into a table paste whole. Each
  row is replayed through the simulator (`wrpsim.validate.replay`), so queueing and chunked
  prefill are part of the fit.

Only an empty cell is "not given": text such as `nan`, `N/A` or `NULL` is refused as no number
(pandas would read it as empty, and a measurement so written was left out of the fit without a
word). Rows are checked as they are
read (`check_pool`; steps also against the model's context and the GPUs' memory); a benchmark
row beyond the model's context is left out with a warning naming its line.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pandas as pd

from wrpsim.errors import ConfigError, finite_or_none, warn
from wrpsim.pool import window
from wrpsim.workload.readers import other_delimiter

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
                 "kv_cache_dtype": "kv_dtype", "model_id": "model"}
#: `vllm bench serve --save-result` fields that describe a run but are neither compared nor
#: needed (labels, totals, throughputs; `model_id` where `model` is given): read past, so that
#: its results table can be pasted whole with `model` (or its `model_id`), `gpu`, `tp` and the
#: lengths it was asked for beside it
VLLM_BENCH_INFO = ("date", "endpoint_type", "backend", "label", "tokenizer_id", "burstiness",
                   "duration", "completed", "failed", "total_input_tokens",
                   "total_output_tokens", "request_throughput", "request_goodput",
                   "output_throughput", "total_token_throughput", "max_output_tokens_per_s",
                   "max_concurrent_requests")
#: vllm bench serve's statistics of its latency metrics (mean, median, std, percentiles):
#: those of a metric wrpsim compares are read past where the compared one is given (the mean
#: TTFT / TPOT, the median ITL), refused naming it where not; end-to-end latency is not fitted
_STAT = re.compile(r"(mean|median|std|p\d+(?:\.\d+)?)_(ttft|tpot|itl|e2el)_ms")
_COMPARED = {"ttft": "ttft_ms", "tpot": "tpot_ms", "itl": "itl_ms"}


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
    if not any(any(c.strip() for c in row) for row in cells):  # (pandas: "No columns to parse")
        raise ConfigError(f"{path}: empty file: a header line of column names comes first "
                          f"(required: {', '.join(required)})")
    head = [c.strip() for c in cells[0]]
    twice = next((c for k, c in enumerate(head) if c in head[:k]), None)
    if twice is not None:
        raise ConfigError(f"{path}: column {twice!r} appears twice in the header")
    for i, row in enumerate(cells[1:], start=2):
        if row and len(row) != len(cells[0]):
            raise ConfigError(f"{path}: line {i}: {len(row)} cells, the header has "
                              f"{len(cells[0])}")
    try:  # (blank lines kept as empty rows, so every row keeps its line number in the file)
        # only an empty cell is "not given": pandas would also read 'nan', 'N/A', 'NULL',
        # 'None' ... as one, so that a measurement written so was silently left out
        df = pd.read_csv(io.StringIO(text, newline=""), skip_blank_lines=False,
                         index_col=False, keep_default_na=False, na_values=[""])
    except (OSError, ValueError) as exc:
        first = " ".join(str(exc).split())  # (pandas' messages run over several lines)
        raise ConfigError(f"{path}: cannot read CSV: {first}") from None
    valid = (*required, *optional)
    aliases = aliases or {}
    if aliases and "model" in df.columns and "model_id" in df.columns:
        df = df.drop(columns=["model_id"])  # (the catalog name given beside vLLM's id)
    for alias, name in aliases.items():
        if alias in df.columns:
            if name in df.columns:
                raise ConfigError(f"{path}: columns {name!r} and {alias!r} (vllm bench serve's "
                                  f"name for it) both given; keep one")
            df = df.rename(columns={alias: name})
    if aliases:  # (a benchmarks file: vllm bench serve's other result fields)
        past = [c for c in df.columns if str(c) in VLLM_BENCH_INFO]
        for c in df.columns:
            m = _STAT.fullmatch(str(c))
            if m is None or str(c) in valid:
                continue
            metric = m.group(2)
            if metric != "e2el" and _COMPARED[metric] not in df.columns:
                raise ConfigError(f"{path}: column {c!r}: wrpsim compares the mean TTFT and "
                                  f"TPOT and the median ITL: give {_COMPARED[metric]} (vllm "
                                  f"bench serve's {_vllm_name(_COMPARED[metric])}) too; the "
                                  f"other statistics are read past")
            past.append(c)
        df = df.drop(columns=past)
    unknown = [str(c) for c in df.columns if c not in valid]
    sep = other_delimiter(df.columns) if unknown else None
    if sep is not None:  # (one header cell holding every name: another delimiter)
        raise ConfigError(f"{path}: the header is one column, {unknown[0]!r}: the file is "
                          f"separated by {sep[1]!r}, not commas; save it as comma-separated "
                          f"(required: {', '.join(required)})")
    if unknown:
        raise ConfigError(f"{path}: unknown column {unknown[0]!r}; required: "
                          f"{', '.join(required)}; optional: {', '.join(optional)}"
                          f"{did_you_mean(unknown[0], valid)}")
    missing = [c for c in required if c not in df.columns]
    if missing:
        blank = [f"; a {BLANK_WITH[c]} row may leave {c} empty, but the column must be there"
                 for c in missing if c in BLANK_WITH and BLANK_WITH[c] in valid]
        if aliases and {"gpu", "tp", "isl", "osl"} & set(missing):
            blank.append("; vllm bench serve's results do not record the server's GPU and "
                         "tensor parallelism or the lengths it asked for: add gpu, tp and isl / "
                         "osl (its --random-input-len / --random-output-len) beside them")
        raise ConfigError(f"{path}: missing column(s) {missing}; required: {', '.join(required)}"
                          + "".join(blank[:1]))
    blank = df.isna().all(axis=1)
    lines = [int(i) + 2 for i in df.index[~blank]]
    df = df[~blank].reset_index(drop=True)
    if df.empty:
        raise ConfigError(f"{path}: no rows")
    for line, (_, row) in zip(lines, df.iterrows()):
        empty = [c for c in required if is_blank(row[c])
                 and (c not in BLANK_WITH or is_blank(row.get(BLANK_WITH[c])))]
        if empty:  # (pandas reads an empty cell as NaN, which would be named 'nan')
            also = (f"; only a {BLANK_WITH[empty[0]]} row may leave it empty"
                    if empty[0] in BLANK_WITH and BLANK_WITH[empty[0]] in valid else "")
            raise ConfigError(f"{path}: line {line}: {empty[0]} is empty (a required column"
                              f"{also})")
    df.attrs["lines"] = lines  # the file's line of each row (header: line 1)
    return df


def _vllm_name(column: str) -> str:
    """vllm bench serve's name of a benchmarks column (`BENCH_ALIASES`)."""
    return next((a for a, c in BENCH_ALIASES.items() if c == column and a.endswith("_ms")),
                column)


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
        rate = finite_or_none(r.get("request_rate"))  # (None when blank)
        burst = str(r.get("request_rate")).strip().lower() in ("inf", "infinity")
        if burst:  # (vllm bench serve's --request-rate inf: every request at once)
            if is_blank(r.get("concurrency")):  # (no --max-concurrency: all of them)
                r["concurrency"] = _int(r, "num_requests", where, high=MAX_REQUESTS,
                                        name="num_requests (a burst, request_rate inf, "
                                             "without a concurrency runs them all at once)")
        elif not is_blank(r.get("request_rate")) and (rate is None or rate <= 0):
            raise ConfigError(f"{where}: request_rate must be a number > 0 (requests per "
                              f"second) or inf (every request at once: a closed loop of "
                              f"concurrency clients, or of num_requests without one), got "
                              f"{r.get('request_rate')!r}")
        c = (None if rate is not None and is_blank(r.get("concurrency"))
             else _int(r, "concurrency", where, high=MAX_SEQS, name="concurrency"))
        isl, osl = _int(r, "isl", where), _int(r, "osl", where)
        ratio = _fraction(r, "range_ratio", where, 1.0,
                          " (lengths uniform in [ratio x len, len]: 1 fixed; vLLM 0.9+'s "
                          "--random-range-ratio r is isl = len (1 + r), ratio = (1 - r) / "
                          "(1 + r))")
        if all(is_blank(r.get(k)) for k in BENCH_METRICS):
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
        pool = {"gpu": str(r["gpu"]), "model": _model_name(r["model"]),
                "tp": _int(r, "tp", where), "ep": _int(r, "ep", where, default=1), "count": 1,
                "precision": text_or(r.get("precision"), "bf16"),
                "kv_dtype": text_or(r.get("kv_dtype"), "auto"),
                "scheduler": {"policy": "sarathi", "token_budget": max(budget, mns),
                              "max_seqs": mns, "block_size": 16, "gpu_mem_util": util}}
        settings = {k: _flag(r, k, where) for k in BENCH_SETTINGS if not is_blank(r.get(k))}
        if settings:
            pool["latency"] = {"kind": "engine", **settings}
        measured = {v: _positive(r, k, where) / 1e3 for k, v in BENCH_METRICS.items()
                    if k in r and not is_blank(r[k])}
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


def _model_name(cell) -> str:
    """A row's model as a catalog name: the name itself, or the catalog entry a Hugging Face
    id names (vllm bench serve's `model_id`, e.g. meta-llama/Llama-3.1-8B-Instruct:
    `wrpsim.validate.sets.catalog_model`); an unknown one as given (its error lists the
    catalog's)."""
    from wrpsim.pool.catalog import models
    from wrpsim.validate.sets import catalog_model

    name = str(cell).strip()
    if name in models():
        return name
    return catalog_model(name) or name


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
        for pre in (f"pool.pools.{name}.", f"pool.pools.{name}: ", f"pool.pools.{name}"):
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


def text_or(v, default: str) -> str:
    """A text cell, `default` when empty."""
    return default if is_blank(v) or v == "" else str(v)


def _fraction(r: dict, key: str, where: str, default: float, explain: str = "") -> float:
    """Row `r`'s `key` as a number in (0, 1], `default` when blank; `ConfigError` naming
    `where` and the column otherwise (`explain` follows the range)."""
    v = default if is_blank(r.get(key)) else finite_or_none(r.get(key))
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
    from wrpsim.pool.engines import DEFAULT_ENGINE, VLLM_BATCH_BIG, get_engine

    try:
        spec = get_gpu(gpu)
    except ConfigError as e:
        raise ConfigError(f"{where}: gpu: {str(e).partition(': ')[2] or e}") from None
    engine = get_engine(DEFAULT_ENGINE)
    return engine.default_batch(spec) or dict(VLLM_BATCH_BIG)


def _lengths(n: int, ratio: float) -> int | dict:
    """A fixed length, or lengths uniform in [ratio x n, n]."""
    return n if ratio == 1 else {"dist": "uniform", "low": max(1, int(n * ratio)), "high": n}


def is_blank(v) -> bool:
    """An empty cell (None or NaN)."""
    return v is None or (isinstance(v, float) and math.isnan(v))


#: the largest concurrency / max_num_seqs and num_requests a benchmark row may name (the
#: scheduler's and the closed-loop workload's own limits)
MAX_SEQS, MAX_REQUESTS = 65_536, 50_000_000


def _int(r: dict, key: str, where: str, low: int = 1, default: int | None = None,
         high: int | None = None, name: str | None = None) -> int:
    """Column `key` of row `r` as an integer in [`low`, `high`] (`default` when the cell is
    empty and a default is given); `ConfigError` naming the file, line and column otherwise."""
    v = r.get(key)
    if default is not None and (is_blank(v) or v == ""):
        return default
    x = finite_or_none(v)
    if x is None or x != int(x) or int(x) < low or (high is not None and int(x) > high):
        span = f">= {low:,}" if high is None else f"in {low:,}..{high:,}"
        raise ConfigError(f"{where}: {name or key} must be an integer {span}, got {v!r}")
    return int(x)


def _positive(r: dict, key: str, where: str) -> float:
    """Column `key` of row `r` as a number > 0 (a measured time); `ConfigError` otherwise."""
    x = finite_or_none(r.get(key))
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
        if not is_blank(r.get("prefill_pairs")):
            _positive(r, "prefill_pairs", where)
        seqs = 1 if is_blank(r.get("prefill_seqs")) else _int(r, "prefill_seqs", where)
        if p and seqs > p:
            raise ConfigError(f"{where}: prefill_seqs ({seqs:,}) exceeds prefill_tokens "
                              f"({p:,}): every prompt chunk in the step has a token at least")
        pool = {"gpu": str(r["gpu"]), "model": str(r["model"]), "tp": _int(r, "tp", where),
                "precision": text_or(r.get("precision"), "bf16"),
                "kv_dtype": text_or(r.get("kv_dtype"), "auto")}
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
