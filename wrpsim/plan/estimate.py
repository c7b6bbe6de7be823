"""The analytical first guess: instance capacity from the latency model, count from a queue.

For one instance of a pool, with the trace's mean prompt P and output O tokens and mean decode
context c = P + O/2:

- batch b = min(max_seqs, KV-limited concurrency kv_tokens·0.9/(P+O) (with sliding-window
  layers or a paged Mamba state: blocks·0.9 over one sequence's blocks, `wrpsim.pool.window`),
  the largest b whose decode step stays under 0.8 × the TPOT target when one is set);
- service time of one request S = prefill(P) + (O − 1)·step(b)/b (a prefill iteration, then its
  share of batched decode iterations); capacity μ = 1/S requests per second.

The fleet is then an M/M/c queue with c servers of rate μ fed at λ = the peak arrival rate (the
busiest sliding window of `PEAK_WINDOW_FRAC` of the trace, at least 10 s; for a closed-loop
benchmark, whose arrivals are all at 0, its N clients' rate by Little's law, N over one
request's time at the planning batch, prefill(P) + O·step(b)): the first guess is
the smallest c with ρ = λ/(cμ) <= 0.85 and, where a TTFT/queue-wait target t is set, an
Erlang-C waiting tail P(W > t') = C(c, λ/μ)·e^(−(cμ−λ)t') <= 1 % (t' = t minus the prefill time)
or a mean wait C/(cμ − λ) <= t. Disaggregated candidates size prefill (μ_p from chunked prefill
at `token_budget` tokens per iteration) and decode (μ_d = b/(O·step(b))) pools separately.
wrpsim routes at arrival (no central queue), so this is an estimate, not an oracle: the search
brackets and bisects from it. `floors` gives analytical lower bounds on TTFT (at the target's
percentile) and TPOT that make a target impossible whatever the count.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

PEAK_WINDOW_FRAC = 0.1
RHO_MAX = 0.85


@dataclass(frozen=True)
class TraceStats:
    """Load figures of a trace (rates per second, token means and medians)."""

    requests: int
    duration_s: float
    rate_mean: float
    rate_peak: float
    prompt_mean: float
    output_mean: float
    prompt_p50: float
    longest_tokens: int
    prompt_p90: float = 0.0
    prompt_p99: float = 0.0
    #: clients of a closed-loop benchmark (every arrival at 0: no rate), else 0
    clients: int = 0
    #: every request's prompt + output tokens, sorted (`beyond`)
    totals: tuple = ()
    #: every request's prompt tokens, sorted (`beyond(..., prompts=True)`)
    prompts: tuple = ()
    #: whether requests carry prefix hash ids (a prefix cache can then skip prompt tokens)
    hashed: bool = False
    #: p50 / p90 / p99 of the prompt tokens a perfect cache could not skip (those of blocks no
    #: earlier request had: `fresh_tokens`); the prompt percentiles without hash ids
    fresh: tuple = ()

    def beyond(self, context: int, prompts: bool = False) -> int:
        """Requests whose prompt + output (with `prompts`, prompt alone: what a prefill
        instance holds) exceed `context` tokens (0 for no limit): dropped by any fleet whose
        instances hold no more."""
        values = self.prompts if prompts else self.totals
        if not context or not values:
            return 0
        from bisect import bisect_right

        return len(values) - bisect_right(values, context)


def trace_stats(trace) -> TraceStats:
    """Summarise a canonical trace frame (at least one row)."""
    t = trace["arrival_s"].to_numpy(dtype=np.float64)
    p = trace["prompt_tokens"].to_numpy(dtype=np.float64)
    o = trace["output_tokens"].to_numpy(dtype=np.float64)
    dur = max(float(t[-1] - t[0]), 1e-9) if len(t) else 1e-9
    w = min(dur, max(10.0, PEAK_WINDOW_FRAC * dur))
    counts = np.searchsorted(t, t + w, side="left") - np.arange(len(t))
    from wrpsim.plan.traces import closed_loop_clients

    hashed = "hash_ids" in trace.columns and bool(trace["hash_ids"].notna().any())
    fresh = fresh_tokens(trace) if hashed and len(p) else p
    return TraceStats(len(t), dur, len(t) / dur, max(len(t) / dur, float(counts.max()) / w),
                      float(p.mean()), float(o.mean()), float(np.median(p)),
                      int((p + o).max()), float(np.percentile(p, 90)),
                      float(np.percentile(p, 99)), closed_loop_clients(trace),
                      tuple(np.sort(p + o).astype(np.int64).tolist()),
                      tuple(np.sort(p).astype(np.int64).tolist()),
                      hashed, tuple(float(np.percentile(fresh, q)) for q in (50, 90, 99)))


def fresh_tokens(trace) -> np.ndarray:
    """Per request, the prompt tokens no prefix cache can skip: those of its blocks (hash ids)
    no earlier request had — what even an unbounded cache that kept every block computes —
    and any tokens beyond its ids; the whole prompt without ids. A lower bound on each
    request's prefill work, in arrival order."""
    block = int(trace.attrs.get("hash_block_tokens") or 0)
    prompts = trace["prompt_tokens"].to_numpy(dtype=np.float64)
    if block <= 0:
        return prompts
    seen: set = set()
    out = prompts.copy()
    for k, ids in enumerate(trace["hash_ids"]):
        if ids is None or not len(ids):
            continue
        new = sum(1 for i in ids if i not in seen)
        seen.update(ids)
        beyond = max(0.0, prompts[k] - len(ids) * block)
        out[k] = max(1.0, min(prompts[k], new * block + beyond))
    return out


def erlang_c(c: int, a: float) -> float:
    """Probability of waiting in M/M/c with offered load a = λ/μ (1 when a >= c)."""
    if a >= c:
        return 1.0
    term, total = 1.0, 1.0
    for k in range(1, c):
        term *= a / k
        total += term
    last = term * a / c / (1.0 - a / c)
    return last / (total + last)


def mmc_count(lam: float, mu: float, wait_s: float | None, mean: bool, cap: int) -> int:
    """Smallest c <= cap with ρ <= RHO_MAX and the Erlang-C wait bound (see module docstring)."""
    c = max(1, math.ceil(lam / (mu * RHO_MAX)))
    while c < cap:
        if wait_s is None:
            return c
        pw = erlang_c(c, lam / mu)
        if mean and pw / (c * mu - lam) <= wait_s:
            return c
        if not mean and pw * math.exp(-(c * mu - lam) * max(wait_s, 0.0)) <= 0.01:
            return c
        c += 1
    return cap


@dataclass(frozen=True)
class Capacity:
    """One instance of a pool at its planning batch."""

    batch: int
    prefill_s: float
    step_s: float
    service_s: float
    prefill_tokens_per_s: float
    kv_tokens: int

    @property
    def rate(self) -> float:
        """Requests per second one colocated instance sustains."""
        return 1.0 / self.service_s


def capacity(template, stats: TraceStats, tpot_target: float | None) -> Capacity:
    """The `Capacity` of one instance of a `PoolTemplate` under the trace's mean request."""
    from wrpsim.plan.config import quiet_pool
    from wrpsim.pool.fleet import build_latency, kv_capacity, pool_window

    spec = quiet_pool(template.name, template.config)
    lat = build_latency(spec)
    s = spec.scheduler
    win = pool_window(spec, lat)
    blocks = spec.kv_blocks or kv_capacity(lat, s, win)
    kv_tokens = blocks * s.block_size
    pm, om = max(stats.prompt_mean, 1.0), max(stats.output_mean, 1.0)
    ctx = pm + om / 2
    if win is None:
        b = max(1, min(s.max_seqs, int(kv_tokens * 0.9 / (pm + om))))
    else:  # a sequence's blocks beside its window's or state's (`wrpsim.pool.window`)
        kv_tokens = win.max_tokens(blocks)
        b = max(1, min(s.max_seqs, int(blocks * 0.9 / win.seq_blocks(round(pm + om)))))

    def step(n: int) -> float:
        return lat.iteration_s(0, 0.0, n, round(n * ctx))

    if tpot_target is not None and step(b) > 0.8 * tpot_target:
        lo, hi = 1, b  # the largest batch whose step fits the budget (step grows with b)
        while lo < hi:
            mid = (lo + hi + 1) // 2
            lo, hi = (mid, hi) if step(mid) <= 0.8 * tpot_target else (lo, mid - 1)
        b = lo
    pre = lat.iteration_s(round(pm), pm * (pm + 1) / 2, 0, 0)
    chunk = s.token_budget
    pre_tps = chunk / max(lat.iteration_s(chunk, chunk * (pm / 2 + chunk / 2), 0, 0), 1e-12)
    service = pre + max(om - 1, 0.0) * step(b) / b
    return Capacity(b, pre, step(b), max(service, 1e-12), pre_tps, kv_tokens)


def floors(template, stats: TraceStats, pct: str = "p50") -> dict:
    """Lower bounds on the `pct` (p50, p90, p99) TTFT and TPOT of any fleet of this pool: at no
    load a request's TTFT is its prompt's prefill, which grows with the prompt, so the TTFT
    percentile is at least the prefill of the prompt at that percentile, in one iteration
    (chunks only add iterations) — with a prefix cache (the pool's `prefix_cache`, as the run
    resolves it) over a trace of hash ids, of the tokens no cache could skip at that percentile
    (`fresh`: True); TPOT at batch 1 after the median prompt."""
    from wrpsim.plan.config import quiet_pool
    from wrpsim.pool.fleet import build_latency

    spec = quiet_pool(template.name, template.config)
    lat = build_latency(spec)
    fresh = bool(stats.hashed and stats.fresh and spec.prefix_cache)
    if fresh:
        # a prefix cache skips the blocks it holds: the floor is that of the tokens no cache
        # could skip (`fresh_tokens`)
        prompt = dict(zip(("p50", "p90", "p99"), stats.fresh)).get(pct) or stats.fresh[0]
    else:
        prompt = {"p90": stats.prompt_p90, "p99": stats.prompt_p99}.get(pct) or stats.prompt_p50
    p, m = max(round(prompt), 1), max(round(stats.prompt_p50), 1)
    return {"ttft": lat.iteration_s(p, p * (p + 1) / 2, 0, 0),
            "tpot": lat.iteration_s(0, 0.0, 1, m), "prompt": p, "fresh": fresh}


def _wait_target(slo) -> tuple[float | None, bool]:
    """(waiting-time budget, is-a-mean) from the SLO's TTFT or queue-wait bound."""
    for key, mean in (("ttft_p99_s", False), ("ttft_p90_s", False), ("queue_wait_mean_s", True),
                      ("ttft_mean_s", True)):
        if key in slo.upper:
            return slo.upper[key], mean
    return None, False


def first_guess(templates, stats: TraceStats, slo, cap: int) -> dict[str, int]:
    """Instance count per pool name for one candidate's pools (one colocated pool, or a
    prefill and a decode pool); each count in [1, cap]."""
    tpot = slo.upper.get("tpot_p99_s") or slo.upper.get("tpot_p90_s")
    wait, mean = _wait_target(slo)
    out = {}
    for t in templates:
        c = capacity(t, stats, tpot)
        lam = stats.rate_peak
        if stats.clients:  # a closed loop: its clients' rate at the planning batch's latency
            # (Little's law: N clients / the time one request takes)
            lam = stats.clients / (c.prefill_s + max(stats.output_mean, 1.0) * c.step_s)
        if t.role == "both":
            w = None if wait is None else wait - (0 if mean else c.prefill_s)
            out[t.name] = mmc_count(lam, c.rate, w, mean, cap)
        elif t.role == "prefill":
            mu = c.prefill_tokens_per_s / max(stats.prompt_mean, 1.0)
            w = None if wait is None else wait - (0 if mean else 1.0 / mu)
            out[t.name] = mmc_count(lam, mu, w, mean, cap)
        else:
            mu = c.batch / (max(stats.output_mean, 1.0) * c.step_s)
            out[t.name] = min(cap, max(1, math.ceil(lam / (mu * RHO_MAX))))
    return out
