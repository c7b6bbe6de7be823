"""Run summary: latency percentiles, SLO attainment, goodput, cost and energy.

Definitions (all in `summary.json`):

- a *request* here is a row of `requests.parquet`: every call the fleet was sent, a router's
  follow-up calls (cascade escalations, ensemble votes, rounds) included, so `requests_total`,
  `slo_attainment` and `goodput_rps` count calls; the routing-study figures
  (`wrpsim.metrics.quality`: `cost_per_1k_requests_usd`, `energy_per_request_j`, `quality`)
  are per *original* request, the workload's own (`requests_total` / (1 +
  `followups_per_request`) of them);
- latency percentiles are over *completed* requests; TPOT = (finish − first token)/(output − 1)
  and is undefined for one-token answers and for answers from the router's semantic cache (not
  streamed by the fleet: TPOT figures describe the requests the fleet served);
- `drop_reasons`: {`drop_reason`: count} of the dropped requests (`{}` when none was dropped;
  the reasons of `requests.parquet`'s `drop_reason` column);
- `slo_attainment`: fraction of *all* requests that completed with TTFT <= `slo.ttft_s` and TPOT
  <= `slo.tpot_s` (dropped and unfinished requests count as misses; a one-token answer or a
  semantic-cache hit, which has no TPOT, meets the TPOT part); `goodput_rps` is the number of
  such requests per simulated second;
- `throughput_tokens_per_s`: output tokens of completed requests per simulated second;
- `prefix_hit_ratio_blocks`: prefix-hash ids found cached at each request's first admission over
  all ids; `prefix_hit_ratio_tokens`: prompt tokens whose prefill the cache saved over all prompt
  tokens (both over all requests, None when the workload carries no ids);
- the simulated duration (`duration_s`, the denominator of every per-second figure) runs from
  0 to the last request's finish — the drain after the last arrival included — or to
  `sim.horizon_s` when one is set;
- `gpu_hours` = provisioned GPUs × simulated duration; `cost_usd` = Σ GPU-hours × price per
  GPU-hour of each pool;
- `energy_kwh` = ∫ power dt of every GPU (busy and idle) × PUE; `tokens_per_joule` = output tokens
  of completed requests / that facility energy in joules;
- capacity use, each an unweighted mean over instances (a 1-GPU instance counts as much as an
  8-GPU one; prefill and decode instances alike; per instance in `instances.parquet`):
  `mean_utilization` — busy fraction, the share of the run an iteration was running; under
  continuous batching it is near 1 as soon as any request is in flight, so it is *not* headroom;
  `mean_token_budget_use` — tokens per iteration (prefill chunk tokens + one per decoding
  sequence) over the scheduler's `token_budget` (the compute headroom of a batch);
  `mean_kv_use` — the time-average share of KV-cache blocks held (the memory headroom);
  `mean_decode_batch` — decoding sequences per decode iteration (`decode_tokens /
  decode_iterations`), over the instances that decoded (None when none did): above 512 a
  step wrpsim's decode times are likely optimistic (`wrpsim.sanity.VALIDATED_BATCH`);
- `busy_cost_usd` / `busy_gpu_hours`: the GPU time requests kept busy (Σ of the per-request
  `cost_usd` / `gpu_s`; the rest of `cost_usd` paid for idle capacity);
- `kv_transfer_mean_s` / `kv_transfer_p99_s`: exposed KV transfer of disaggregated requests
  (prompt done -> KV arrived at the decode instance), of which `kv_wait_mean_s` was spent
  waiting for the decode instance to reserve the KV's blocks (`wrpsim/pool/handoff.py`);
- `qoe_mean`, `qoe_p10`: streaming QoE (`wrpsim.metrics.qoe`) over *completed* requests
  (like the latency percentiles); `qoe_attainment`: fraction of *all* requests that completed
  with QoE >= `qoe_target` (= `qoe.target`; dropped and unfinished requests count as misses,
  like `slo_attainment`); `qoe_ttft_s`, `qoe_tokens_per_s`: the settings; all six null when QoE
  is off (`qoe=null`);
- `idle_pools`: {pool: {`model`, `requests_for_model`, `dropped_for_model`}} of the pools that
  received no request (paid for, serving nothing), with how many requests went to the pool's
  model (`requests.parquet`'s model, the one chosen after routing; 0: the workload never names
  it, or a router that picks the model chose others) and how many of those were dropped (e.g.
  `context`: longer than the model's context, before any pool could take them); `{}` when
  every pool got requests; `idle_pools`;
- `route_mean_s` / `route_p99_s`: time being routed (router queue + service + decision
  latency, the `route_s` column) over completed requests; the router's replicas, signal and
  utilisation and its view are added by `wrpsim.sim` (`router_*` keys);
- the router's semantic cache (`router.cache`, only when on): `cache_*` keys defined in
  `wrpsim.router.semcache` (`cache_hit_ratio`, `cache_false_hit_ratio`, `cache_saved_gpu_s` —
  the GPU time attributed to the cached answers when computed, not the fleet's busy-time drop —,
  `cache_quality_lost`, entries, evictions); added by `wrpsim.sim`;
- failures (`failures` config): `requests_retried` (sent to an instance more than once),
  `requests_lost` (ended unanswered because of an instance failure), `requests_interrupted`
  (either), `slo_attainment_interrupted` (SLO attainment among those); and, added by
  `wrpsim.sim` (`wrpsim.failures`), `instance_failures`, `instance_downtime_s`, `availability`
  (the up share of instance-time: 1 with failures off, as are the others 0).
"""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa

from wrpsim.arrowcols import factorize, to_numpy


def pct(x, q: float) -> float | None:
    """The q-th percentile of the non-NaN values of `x` (None if there are none): what
    `float(np.percentile(x, q))` gives (its default, linear method), computed here with the
    same float operations on the two order statistics around the virtual index (numpy's
    `_lerp`), because `np.percentile` imports `numpy.ma` (via `np.unique`) on first use, ~6 ms
    of every run (tests/test_qoe.py compares the two bit for bit)."""
    x = np.asarray(x, dtype=np.float64)
    x = x[~np.isnan(x)]
    n = x.size
    if not n:
        return None
    if type(q) not in (int, float) or not 0 <= q <= 100:
        return float(np.percentile(x, q))  # (numpy's checks and messages)
    v = float(n - 1) * (q / 100)
    if v >= n - 1:  # the largest value (numpy: both neighbours index -1)
        k, a = -1, float(x.max())
        b = a
    else:
        k = math.floor(v)
        part = np.partition(x, (k, k + 1))
        a, b = float(part[k]), float(part[k + 1])
    t = v - k
    d = b - a
    return b - d * (1 - t) if t >= 0.5 else a + d * t


def mean(x) -> float | None:
    """The mean of the non-NaN values of `x` (None if there are none)."""
    x = np.asarray(x, dtype=np.float64)
    x = x[~np.isnan(x)]
    return float(x.mean()) if x.size else None


def _col_mean(table: pa.Table, name: str) -> float | None:
    """Mean of an instance-table column over instances (None without instances or column)."""
    if not len(table) or name not in table.column_names:
        return None
    return float(np.mean(to_numpy(table.column(name))))


def _decode_batch(table: pa.Table) -> float | None:
    """Mean over the instances that decoded of their decoding sequences per decode iteration
    (None when none did, or the table has no `decode_iterations`)."""
    if not len(table) or "decode_iterations" not in table.column_names:
        return None
    steps = to_numpy(table.column("decode_iterations")).astype(np.float64)
    tokens = to_numpy(table.column("decode_tokens")).astype(np.float64)
    ok = steps > 0
    return float(np.mean(tokens[ok] / steps[ok])) if ok.any() else None


def json_ready(d: dict) -> dict:
    """`d` with non-finite floats as None (summary.json holds no NaN or infinity)."""
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v)
            for k, v in d.items()}


def masks(column: pa.ChunkedArray | pa.Array, *values) -> list[np.ndarray]:
    """Boolean masks of the rows of `column` (of strings) equal to each of `values`, from one
    pass through codes (`factorize`), not one Python object per row or a pass per value."""
    codes, seen = factorize(column)
    return [codes == seen.index(v) if v in seen else np.zeros(len(codes), dtype=bool)
            for v in values]


def equals(column: pa.ChunkedArray | pa.Array, value) -> np.ndarray:
    """Boolean mask of the rows of `column` (of strings) equal to `value` (`masks`)."""
    return masks(column, value)[0]


class _Columns:
    """Request-table columns as float64 arrays, converted when read and not kept: a summary
    of a million requests holds a few of its columns at a time, not twenty."""

    __slots__ = ("table",)

    def __init__(self, table: pa.Table):
        self.table = table

    def __getitem__(self, name: str) -> np.ndarray:
        return to_numpy(self.table.column(name)).astype(np.float64)


def _ratio(num: np.ndarray, den: np.ndarray) -> float | None:
    d = den.sum()
    return float(num.sum() / d) if d > 0 else None


def _qoe_keys(q: np.ndarray, done: np.ndarray, cfg: dict | None) -> dict:
    """qoe_mean / qoe_p10 over completed requests; qoe_attainment over all requests (requests
    not completed count as misses, as for slo_attainment) against qoe_target; the settings
    echoed. Every key is present, null when QoE is off (`qoe=null`)."""
    if cfg is None:
        return dict.fromkeys(("qoe_mean", "qoe_p10", "qoe_attainment", "qoe_target",
                              "qoe_ttft_s", "qoe_tokens_per_s"))
    qd = q[done]
    return {"qoe_mean": mean(qd), "qoe_p10": pct(qd, 10),
            "qoe_attainment": float((qd >= cfg["target"]).sum() / len(q)) if len(q) else None,
            "qoe_target": float(cfg["target"]),
            "qoe_ttft_s": cfg["ttft_s"], "qoe_tokens_per_s": cfg["tokens_per_s"]}


def _drop_reasons(reasons: tuple[np.ndarray, list], dropped: np.ndarray) -> dict:
    """{drop_reason: count} of the dropped requests; `reasons`: the drop_reason column
    factorized."""
    if not dropped.any():
        return {}
    codes, seen = reasons
    counts = np.bincount(codes[dropped], minlength=len(seen))
    pairs = [(str(seen[i]) if seen[i] is not None else "unknown", int(n))
             for i, n in enumerate(counts) if n]
    return dict(sorted(pairs))


def idle_pools(requests: pa.Table, instances: pa.Table, dropped: np.ndarray) -> dict:
    """{pool: {"model", "requests_for_model", "dropped_for_model"}} of the pools no request was
    sent to (neither its `pool` nor its `prefill_pool`), with how many of the run's requests
    asked for the pool's model — 0 means the workload never named it (`workload.model_mix`),
    more that they were dropped or the router sent them elsewhere — and how many of those were
    dropped (`dropped`: the rows' mask, `summarize`'s). Such a pool is paid for (cost, energy)
    and serves nothing."""
    if not len(instances):
        return {}
    used = set()
    for name in ("pool", "prefill_pool"):  # (`factorize`: no `pyarrow.compute` import, ~25 ms)
        if name in requests.column_names:
            used.update(v for v in factorize(requests.column(name))[1] if v)
    models = {}
    for pool, model in zip(instances.column("pool").to_pylist(),
                           instances.column("model").to_pylist()):
        models.setdefault(pool, model)
    idle = {p: m for p, m in models.items() if p not in used}
    if not idle:
        return {}
    codes, models_seen = factorize(requests.column("model"))
    n = len(models_seen)
    asked = dict(zip(models_seen, np.bincount(codes, minlength=n).tolist()))
    lost = dict(zip(models_seen, np.bincount(codes[dropped], minlength=n).tolist()))
    return {p: {"model": m, "requests_for_model": int(asked.get(m, 0)),
                "dropped_for_model": int(lost.get(m, 0))}
            for p, m in sorted(idle.items())}


def _failure_keys(reasons: tuple[np.ndarray, list], attempts: np.ndarray, ok: np.ndarray,
                  dropped: np.ndarray) -> dict:
    """Requests touched by instance failures: retried (sent more than once), lost (ended
    unanswered because of a failure: dropped as `instance_failed`, or dropped for any other
    reason — `no_healthy_instance`, or `exceeds_kv_capacity` on the smaller instance a re-send
    found — after an attempt died with its instance: a dropped row's `attempts` counts the
    attempts lost), and the SLO attainment of the interrupted ones."""
    codes, seen = reasons
    lost = (codes == seen.index("instance_failed") if "instance_failed" in seen
            else np.zeros(len(codes), dtype=bool))
    lost = lost | (dropped & (attempts >= 1))
    hit = (attempts > 1) | lost
    return {
        "requests_retried": int((attempts > 1).sum()),
        "requests_lost": int(lost.sum()),
        "requests_interrupted": int(hit.sum()),
        "slo_attainment_interrupted": float(ok[hit].mean()) if hit.any() else None,
    }


def _instances_total(instances: pa.Table, column: str, requests_total):
    """The sum of an instance-table `column` (what the instances did, lost attempts included),
    or `requests_total`, the requests' figure, for a table written without that column."""
    if column in instances.column_names:
        return to_numpy(instances.column(column)).sum()
    return requests_total


def summarize(requests: pa.Table, instances: pa.Table, duration_s: float, slo: dict,
              pue: float, qoe: dict | None = None) -> dict:
    """Compute the summary dictionary (JSON-ready: None where a value is undefined).

    `qoe`: the run's QoE settings (`target` is used), None when QoE is not measured."""
    done, dropped, in_flight = masks(requests.column("status"), "completed", "dropped",
                                     "in_flight")
    col = _Columns(requests)
    reasons = factorize(requests.column("drop_reason"))
    ttft, tpot, e2e = col["ttft_s"][done], col["tpot_s"][done], col["e2e_s"][done]
    out_tokens = float(col["output_tokens"][done].sum())
    in_tokens = float(col["prompt_tokens"][done].sum())
    ok = done.copy()
    ok[done] = (ttft <= slo["ttft_s"]) & (np.isnan(tpot) | (tpot <= slo["tpot_s"]))
    total = len(done)
    dur = max(duration_s, 1e-12)

    gpus = to_numpy(instances.column("tp")).astype(np.int64)
    price = to_numpy(instances.column("price_per_gpu_hour_usd"))
    it_energy_j = float(to_numpy(instances.column("energy_j")).sum())
    facility_j = it_energy_j * pue
    gpu_hours = float(gpus.sum()) * duration_s / 3600.0
    cost = float((gpus * price).sum()) * duration_s / 3600.0
    s = {
        "requests_total": total,
        "requests_completed": int(done.sum()),
        "requests_dropped": int(dropped.sum()),
        "requests_in_flight": int(in_flight.sum()),
        "drop_reasons": _drop_reasons(reasons, dropped),
        "ttft_mean_s": mean(ttft), "ttft_p50_s": pct(ttft, 50), "ttft_p90_s": pct(ttft, 90),
        "ttft_p99_s": pct(ttft, 99),
        "tpot_mean_s": mean(tpot), "tpot_p50_s": pct(tpot, 50), "tpot_p90_s": pct(tpot, 90),
        "tpot_p99_s": pct(tpot, 99),
        "e2e_mean_s": mean(e2e), "e2e_p50_s": pct(e2e, 50), "e2e_p90_s": pct(e2e, 90),
        "e2e_p99_s": pct(e2e, 99),
        "queue_wait_mean_s": mean(col["queue_wait_s"][done]),
        "tt2t_p50_s": pct(col["tt2t_s"][done], 50), "tt2t_p99_s": pct(col["tt2t_s"][done], 99),
        # KV bytes sent prefill -> decode: every transfer the prefill instances handed off (a
        # request sent again after its decode instance failed counts each time; one whose KV
        # still waits for a reservation at the horizon not yet, nor the first layers of a
        # layer-wise stream cut short before its prompt was done)
        "kv_transfer_bytes": float(_instances_total(instances, "kv_sent_bytes",
                                                    col["kv_transfer_bytes"].sum())),
        "kv_transfer_mean_s": mean(col["kv_transfer_s"][done]),
        "kv_transfer_p99_s": pct(col["kv_transfer_s"][done], 99),
        "kv_wait_mean_s": mean(col["kv_wait_s"][done]),
        "slo_ttft_s": float(slo["ttft_s"]), "slo_tpot_s": float(slo["tpot_s"]),
        "slo_attainment": float(ok.sum() / total) if total else None,
        "goodput_rps": float(ok.sum()) / dur,
        "throughput_tokens_per_s": out_tokens / dur,
        "throughput_prompt_tokens_per_s": in_tokens / dur,
        # every preemption the instances made (a lost attempt's too: the requests' column
        # holds each request's last attempt)
        "preemptions": int(_instances_total(instances, "preemptions",
                                            col["preemptions"].sum())),
        "prefix_hit_ratio_blocks": _ratio(col["prefix_hit_blocks"], col["prefix_blocks"]),
        "prefix_hit_ratio_tokens": _ratio(col["prefix_hit_tokens"], col["prompt_tokens"])
        if col["prefix_blocks"].sum() > 0 else None,
        "duration_s": float(duration_s),
        "gpu_count": int(gpus.sum()),
        "instance_count": len(gpus),
        "gpu_hours": gpu_hours,
        "cost_usd": cost,
        "cost_per_hour_usd": float((gpus * price).sum()),
        "pue": float(pue),
        "energy_it_kwh": it_energy_j / 3.6e6,
        "energy_kwh": facility_j / 3.6e6,
        "tokens_per_joule": out_tokens / facility_j if facility_j > 0 else None,
        "mean_utilization": float(np.mean(to_numpy(instances.column("utilization"))))
        if len(gpus) else None,
        "mean_token_budget_use": _col_mean(instances, "token_budget_use"),
        "mean_kv_use": _col_mean(instances, "kv_mean_util"),
        "mean_decode_batch": _decode_batch(instances),
        "busy_cost_usd": float(col["cost_usd"].sum()),
        "busy_gpu_hours": float(col["gpu_s"].sum()) / 3600.0,
        "idle_pools": idle_pools(requests, instances, dropped),
        "route_mean_s": mean(col["route_s"][done]), "route_p99_s": pct(col["route_s"][done], 99),
        **_qoe_keys(col["qoe"], done, qoe),
        **_failure_keys(reasons, col["attempts"], ok, dropped),
    }
    return json_ready(s)
