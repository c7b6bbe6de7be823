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

from wrpsim.arrowcols import to_numpy
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


def _final_answers(req: pa.Table) -> tuple[dict[int, tuple], int, Counter, dict, dict]:
    """{root id: (model, finish_s, arrival of root)}, number of originals, calls per model,
    {id: parent id}, {id: arrival_s}."""
    ids = req.column("request_id").to_pylist()
    parents = req.column("parent_id").to_pylist()
    models = req.column("model").to_pylist()
    status = req.column("status").to_pylist()
    finish = req.column("finish_s").to_pylist()
    arrival = req.column("arrival_s").to_pylist()
    parent_of = dict(zip(ids, parents))
    arrival_of = dict(zip(ids, arrival))
    best: dict[int, tuple] = {}
    for i, m, s, f in zip(ids, models, status, finish):
        if s != "completed":
            continue
        root, depth = _root(i, parent_of)
        key = (depth, f)
        if root not in best or key > best[root][0]:
            best[root] = (key, m, f)
    finals = {r: (m, f, arrival_of[r]) for r, (_, m, f) in best.items()}
    return (finals, sum(p is None for p in parents), Counter(m for m in models if m is not None),
            parent_of, arrival_of)


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
    total = 0.0
    for pool, st, p, o in zip(req.column("pool").to_pylist(), req.column("status").to_pylist(),
                              req.column("prompt_tokens").to_pylist(),
                              req.column("output_tokens").to_pylist()):
        if st == "completed" and pool in prices:
            total += prices[pool].cost(p, o)
    return total


def quality_summary(requests_table: pa.Table, instances_table: pa.Table, trace_or_requests,
                    fleet_specs=None, pue: float = 1.0, duration_s: float | None = None,
                    answers=None) -> dict:
    """Routing-study metrics of one run (see the module docstring for the definitions).

    `trace_or_requests`: the replayed canonical trace frame (row i = request id i) or the list
    of `Request`s (None: no quality figures). `fleet_specs`: the fleet's `PoolSpec`s (for the
    token-priced cost; None leaves it out). `pue`: facility / IT energy. `duration_s`: the
    run's simulated duration (for the provisioned cost; None leaves it out). `answers`: a
    multi-call router's answers (None: the final-call rule everywhere).
    """
    finals, n_orig, calls, parent_of, arrival_of = _final_answers(requests_table)
    over = _by_root(answers, parent_of) if answers is not None else {}
    outcomes = _outcomes(trace_or_requests)
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
        if c is not None:
            scored.append(float(c))
            answered.append(float(c))
    shares = Counter(m for m, _, _ in finals.values())
    n_ans = sum(shares.values())
    n_calls = sum(calls.values())
    tp = to_numpy(instances_table.column("tp")).astype(np.float64)
    price = to_numpy(instances_table.column("price_per_gpu_hour_usd"))
    busy = to_numpy(instances_table.column("busy_s"))
    energy = float(to_numpy(instances_table.column("energy_j")).sum()) * pue
    per_k = 1000.0 / n_orig if n_orig else math.nan
    lat = [f - a for r, (_, f, a) in finals.items() if r not in over]
    lat += [a[1] - arrival_of.get(r, NAN) for r, a in over.items() if _finite(a[1])]
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
