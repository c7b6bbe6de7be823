"""Answer quality, model mix, and cost and energy per request: the routing-study metrics.

`quality_summary` reads a run's result tables and the replayed workload. Definitions (all keys
JSON-ready, None where undefined):

- *original requests*: rows of `requests.parquet` with a null `parent_id` (the workload's own
  requests); a router's follow-up calls (cascade escalations) have `parent_id` set and belong to
  the chain of their root original. A chain's *final answer* is its completed call of greatest
  depth (ties: the latest finish) — for a cascade, the answer the user keeps.
- `quality`: mean over the original requests that carry outcomes (`Request.outcomes`, from the
  workload's `outcomes` / `accuracy` transforms) of the final answer's correctness,
  outcomes[final model] (1/0 replayed, or an expected accuracy); an original with no completed
  answer scores 0; one whose final model has no outcome is left out. `quality_requests`: how
  many were scored. `quality_answered`: the same mean over answered originals only.
- `model_share`: {model: fraction of answered originals whose final answer it gave};
  `call_share`: {model: fraction of all calls routed to it (follow-ups included)};
  `followups_per_request`: follow-up calls / original requests.
- `cost_per_1k_requests_usd`: the GPU time the run kept busy, priced — Σ over instances of
  busy seconds × tp × price per GPU-hour / 3600 — per 1,000 original requests. Every call
  counts, follow-ups included, so a cascade pays for its cheap attempts. (Idle provisioned
  capacity is not charged here: it depends on fleet sizing, not on routing.)
  `provisioned_cost_per_1k_requests_usd`: the whole provisioned fleet over the run (summary's
  `cost_usd`) per 1,000 original requests, when `duration_s` is given.
  `token_cost_per_1k_requests_usd`: every completed call priced per token at its pool's
  reference operating point (`wrpsim.router.pricing`: prefill of 1,024 tokens, decode at batch
  32) — an API-style price, linear in the routing mix and blind to load (RouterBench's cost
  axis), per 1,000 original requests; needs `fleet_specs`.
- `energy_per_request_j`: facility energy of every GPU over the run, busy and idle (Σ
  instance `energy_j` × `pue`), per original request.
- `e2e_final_p50_s` / `e2e_final_p99_s`: final answer's finish − the original's arrival, over
  answered originals (a cascade's user-perceived latency, cheap attempt included).

*Answers* (`answers=`, a multi-call or guarded router's `answers`: {request id: (quality,
finish_s, …)}, e.g. `wrpsim.router.multicall.Answer`) override the final-call rule for the
originals they cover: an answer keyed by any call of a chain applies to its root original (the
deepest key wins when several do). Its quality replaces outcomes[final model] (None: left out),
its finish the final call's (NaN or None: unanswered, scored 0); model and call shares keep the
final-call rule. With answers, `answer_status` counts them by status (`Answer.status`:
answered, partial, failed, pending, blocked, diverted).
"""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pyarrow as pa

from wrpsim.arrowcols import BLOCK_ROWS, factorize, to_numpy
from wrpsim.metrics.summary import json_ready, pct

NAN = math.nan


def _outcomes(trace_or_requests) -> dict[int, dict]:
    """{original request id: outcomes} from a canonical trace (`TraceColumns` or DataFrame) or
    a list of Requests."""
    if trace_or_requests is None:
        return {}
    if hasattr(trace_or_requests, "columns"):
        if "outcomes" not in trace_or_requests.columns:
            return {}
        return {i: o for i, o in enumerate(list(trace_or_requests["outcomes"]))
                if isinstance(o, dict)}
    return {r.id: r.outcomes for r in trace_or_requests
            if r.parent_id is None and r.outcomes is not None}


def _root(i: int, parent_of: dict) -> tuple[int, int]:
    """(root original, depth) of request `i` in its follow-up chain."""
    root, depth = i, 0
    while parent_of.get(root) is not None:
        root, depth = parent_of[root], depth + 1
    return root, depth


class _Finals:
    """The final answer of each chain (module docstring) by its root original: `roots` (ids,
    ascending) and, per root, the final call's `model` and `finish` and the root's `arrival`
    (arrays; `model` a list)."""

    __slots__ = ("arrival", "finish", "model", "roots")

    def __init__(self, roots: np.ndarray, model: list, finish: np.ndarray, arrival: np.ndarray):
        self.roots, self.model, self.finish, self.arrival = roots, model, finish, arrival

    def get(self, rid: int) -> tuple | None:
        """(model, finish_s, arrival of the root) of root `rid`'s final answer; None if its
        chain has no completed call."""
        k = int(np.searchsorted(self.roots, rid))
        if k < len(self.roots) and self.roots[k] == rid:
            return self.model[k], float(self.finish[k]), float(self.arrival[k])
        return None

    def latencies(self, skip) -> np.ndarray:
        """finish − root arrival of the final answers whose root is not in `skip`."""
        lat = self.finish - self.arrival
        if skip:
            lat = lat[[r not in skip for r in self.roots.tolist()]]
        return lat


def _final_answers(req: pa.Table) -> tuple[_Finals, int, Counter, dict, object]:
    """The chains of a requests table (request ids unique): the final answers, number of
    originals, calls per model, {follow-up id: parent id} and `arrival_of(id, default)`.
    Columns are read as arrays and codes, not as a Python object per row (a million-row
    table's would take ~0.5 GB)."""
    ids = to_numpy(req.column("request_id"))
    pcol = req.column("parent_id")
    if pcol.null_count == len(pcol):  # no follow-up call (the common case): no list of Nones
        follow, parent_of, n_orig = [], {}, len(pcol)
    else:
        parents = pcol.to_pylist()
        follow = [k for k, p in enumerate(parents) if p is not None]
        parent_of = {int(ids[k]): parents[k] for k in follow}
        n_orig = len(parents) - len(follow)
        del parents
    models, names = factorize(req.column("model"))
    status, states = factorize(req.column("status"))
    done = (status == states.index("completed") if "completed" in states
            else np.zeros(len(status), dtype=bool))
    finish = to_numpy(req.column("finish_s")).astype(np.float64, copy=False)
    arrival = to_numpy(req.column("arrival_s")).astype(np.float64, copy=False)
    root, depth = ids.copy(), np.zeros(len(ids), dtype=np.int64)
    for k in follow:
        root[k], depth[k] = _root(int(ids[k]), parent_of)
    # each root's completed call of greatest (depth, finish), the first in table order on ties
    c = np.flatnonzero(done)
    c = c[np.lexsort((c, -finish[c], -depth[c], root[c]))]
    first = np.ones(len(c), dtype=bool)
    first[1:] = root[c[1:]] != root[c[:-1]]
    best = c[first]
    roots = root[best]
    by_id = np.argsort(ids, kind="stable")
    sorted_ids = ids[by_id]

    def rows_of(keys: np.ndarray) -> np.ndarray:  # the last row of each id, as a dict keeps
        pos = np.searchsorted(sorted_ids, keys, side="right") - 1
        missing = (pos < 0) | (sorted_ids[np.maximum(pos, 0)] != keys)
        if missing.any():
            raise KeyError(int(keys[np.argmax(missing)]))
        return by_id[pos]

    def arrival_of(rid, default=NAN) -> float:
        try:
            return float(arrival[rows_of(np.array([rid]))[0]])
        except KeyError:
            return default

    finals = _Finals(roots, [names[m] for m in models[best].tolist()], finish[best],
                     arrival[rows_of(roots)])
    counts = np.bincount(models, minlength=len(names)).tolist()
    calls = Counter({m: k for m, k in zip(names, counts) if m is not None and k})
    return finals, n_orig, calls, parent_of, arrival_of


def _by_root(answers, parent_of: dict) -> dict[int, tuple]:
    """The answers keyed by root original (deepest key wins): {root: answer}."""
    best: dict[int, tuple] = {}
    for key, a in answers.items():
        root, depth = _root(key, parent_of)
        if root not in best or depth > best[root][0]:
            best[root] = (depth, a)
    return {r: a for r, (_, a) in best.items()}


def _finite(x) -> bool:
    return x is not None and math.isfinite(x)


def _token_cost(req: pa.Table, fleet_specs) -> float | None:
    """Σ over completed calls of the pool's reference per-token price (USD)."""
    if not fleet_specs:
        return None
    from wrpsim.pool.fleet import build_latency
    from wrpsim.router.pricing import pool_prices

    prices = {s.name: pool_prices(s, build_latency(s)) for s in fleet_specs}
    if all(type(p.cost(1, 1)) is float for p in prices.values()) and not (
            req.column("prompt_tokens").null_count or req.column("output_tokens").null_count):
        return _token_cost_columns(req, prices)
    total = 0.0
    for lo in range(0, req.num_rows, BLOCK_ROWS):  # (a block at a time: no row per object)
        part = req.slice(lo, BLOCK_ROWS)
        for pool, st, p, o in zip(part.column("pool").to_pylist(),
                                  part.column("status").to_pylist(),
                                  part.column("prompt_tokens").to_pylist(),
                                  part.column("output_tokens").to_pylist()):
            if st == "completed" and pool in prices:
                total += prices[pool].cost(p, o)
    return total


def _token_cost_columns(req: pa.Table, prices: dict) -> float:
    """`_token_cost` from columns: each pool's `cost` computed on its completed rows' token
    arrays (the same float operations as on one row's ints), then added up in row order one
    by one as the row loop does, so the total is the same float."""
    n = req.num_rows
    pools, names = factorize(req.column("pool"))
    status, states = factorize(req.column("status"))
    if "completed" not in states:
        return 0.0
    done = status == states.index("completed")
    prompt = to_numpy(req.column("prompt_tokens"))
    output = to_numpy(req.column("output_tokens"))
    cost = np.zeros(n, dtype=np.float64)
    take = np.zeros(n, dtype=bool)
    for code, pool in enumerate(names):
        if pool in prices:
            rows = done & (pools == code)
            cost[rows] = prices[pool].cost(prompt[rows], output[rows])
            take |= rows
    total = 0.0
    for c in cost[take].tolist():
        total += c
    return total


def quality_summary(requests_table: pa.Table, instances_table: pa.Table, trace_or_requests,
                    fleet_specs=None, pue: float = 1.0, duration_s: float | None = None,
                    answers=None, judged=None) -> dict:
    """Routing-study metrics of one run (see the module docstring for the definitions).

    `trace_or_requests`: the replayed canonical trace frame (row i = request id i) or the list
    of `Request`s (None: no quality figures). `fleet_specs`: the fleet's `PoolSpec`s (for the
    token-priced cost; None leaves it out). `pue`: facility / IT energy. `duration_s`: the
    run's simulated duration (for the provisioned cost; None leaves it out). `judged`: {call
    id: (model, expected correctness)} of answers a verifier's verdict told about (a
    cascade's `judged_quality`), each scoring its chain where it is the final answer in place
    of outcomes[model]. `answers`: a
    multi-call router's answers (None: the final-call rule everywhere).
    """
    finals, n_orig, calls, parent_of, arrival_of = _final_answers(requests_table)
    over = _by_root(answers, parent_of) if answers is not None else {}
    outcomes = _outcomes(trace_or_requests)
    told = _by_root(judged, parent_of) if judged else {}
    scored, answered = [], []
    for rid, o in outcomes.items():
        a = over.get(rid)
        if a is not None:
            if not _finite(a[1]):
                scored.append(0.0)
            elif a[0] is not None:
                scored.append(float(a[0]))
                answered.append(float(a[0]))
            continue
        f = finals.get(rid)
        if f is None:
            scored.append(0.0)
            continue
        c = o.get(f[0])
        j = told.get(rid)
        if j is not None and j[0] == f[0] and c is not None:
            c = j[1]
        if c is not None:
            scored.append(float(c))
            answered.append(float(c))
    shares = Counter(finals.model)
    n_ans = sum(shares.values())
    n_calls = sum(calls.values())
    tp = to_numpy(instances_table.column("tp")).astype(np.float64)
    price = to_numpy(instances_table.column("price_per_gpu_hour_usd"))
    busy = to_numpy(instances_table.column("busy_s"))
    energy = float(to_numpy(instances_table.column("energy_j")).sum()) * pue
    per_k = 1000.0 / n_orig if n_orig else math.nan
    lat = np.concatenate([finals.latencies(over), np.array(
        [a[1] - arrival_of(r, NAN) for r, a in over.items() if _finite(a[1])], dtype=np.float64)])
    out = {
        "quality": float(np.mean(scored)) if scored else None,
        "quality_answered": float(np.mean(answered)) if answered else None,
        "quality_requests": len(scored),
        "model_share": {m: shares[m] / n_ans for m in sorted(shares)} if n_ans else {},
        "call_share": {m: calls[m] / n_calls for m in sorted(calls)} if n_calls else {},
        "followups_per_request": (requests_table.num_rows - n_orig) / n_orig if n_orig else None,
        "cost_per_1k_requests_usd": float((busy * tp * price).sum()) / 3600.0 * per_k,
        "provisioned_cost_per_1k_requests_usd": (
            float((tp * price).sum()) * duration_s / 3600.0 * per_k
            if duration_s is not None else None),
        "token_cost_per_1k_requests_usd": (
            tok * per_k if (tok := _token_cost(requests_table, fleet_specs)) is not None
            else None),
        "energy_per_request_j": energy / n_orig if n_orig else None,
        "e2e_final_p50_s": pct(lat, 50),
        "e2e_final_p99_s": pct(lat, 99),
    }
    if answers is not None:
        out["answer_status"] = dict(sorted(Counter(
            getattr(a, "status", "answered") for a in over.values()).items()))
    return json_ready(out)
