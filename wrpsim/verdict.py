"""Why a run missed its SLO, in one line: the warnings printed after a run's summary
(`wrpsim.__main__`, a sweep's run lines).

- `verdict(summary)`: a one-line warning when the fleet could not carry the trace (fewer than
  `CARRY_MIN` of the requests met the SLO, or none completed), else None — so a run whose
  numbers mean "overloaded" says so; when dropped requests make up at least half of the misses
  it names them (how many, the main `drop_reason`) instead of blaming load or latency, and so
  for requests still running at `sim.horizon_s`; when
  routing is at least `ROUTE_SHARE` of the mean TTFT it names the router (its queue: more
  `router.replicas`; or its decision latency), and when the exposed KV transfers of a
  disaggregated run are, the links, instead of the fleet; otherwise load (`loaded`: queueing
  or busy instances) or the requests themselves (prefills longer than the target).
- `idle_pool_warnings(summary)`: a warning per pool that received no request (its name, model
  and why), printed after the summary of a run and after the line of a sweep run;
- `drop_warnings(summary)`: a warning per reason requests were dropped (how many, why), unless
  the verdict already names the drops.

Pure functions of a run's `summary.json` dict; nothing is printed here.
"""

from __future__ import annotations

from wrpsim.textfmt import fmt_pct as _pct
from wrpsim.textfmt import fmt_t as _t

CARRY_MIN = 0.5


def verdict(s: dict) -> str | None:
    """The 'this fleet cannot carry the trace' warning (see module docstring), or None."""
    total, done = s.get("requests_total") or 0, s.get("requests_completed") or 0
    if total and not done:
        reasons = s.get("drop_reasons") or {}
        main = (f"; most dropped for {min(reasons, key=lambda k: (-reasons[k], k))}"
                if reasons else "")
        if not reasons and (s.get("requests_in_flight") or 0) >= total:
            main = "; sim.horizon_s ended the run before any could finish"
        return (f"no request of {total:,} completed: the fleet served nothing{main} (see "
                f"requests.parquet's status and drop_reason)")
    att = s.get("slo_attainment")
    if not (total and att is not None and att < CARRY_MIN):
        return None
    head = (f"only {_pct(att)} of requests met the SLO (p99 TTFT {_t(s.get('ttft_p99_s'))}, "
            f"p99 TPOT {_t(s.get('tpot_p99_s'))})")
    drops = _dropped_misses(s, total, att)
    if drops:
        return f"{head}: {drops}"
    cut = _unfinished_misses(s, total, att)
    if cut:
        return f"{head}: {cut}"
    routing = _router_bound(s)
    if routing:
        return f"{head}: {routing}"
    transfer = _transfer_bound(s)
    if transfer:
        return f"{head}: {transfer}"
    if loaded(s):
        return (f"{head}: this fleet cannot carry the trace (python -m wrpsim.plan finds one "
                f"that can)")
    return (f"{head} without queueing (mean queue wait {_t(s.get('queue_wait_mean_s'))}, "
            f"utilization {_pct(s.get('mean_utilization'))}): the requests miss it on an idle "
            f"fleet, e.g. long prompts whose prefill exceeds the TTFT target "
            f"({_t(s.get('slo_ttft_s'))}); more instances will not help, a faster GPU, more "
            f"tensor parallelism or a looser SLO may")


def idle_pool_warnings(s: dict) -> list[str]:
    """One warning per pool that received no request (`summary.json`'s `idle_pools`): its
    name, model and why — no request asked for that model, or the router sent them elsewhere
    — since its GPUs are in the run's cost and energy all the same."""
    out = []
    reasons = ", ".join(f"{k} {v:,}" for k, v in (s.get("drop_reasons") or {}).items())
    for pool, d in sorted((s.get("idle_pools") or {}).items()):
        model, n = d.get("model"), d.get("requests_for_model") or 0
        lost = d.get("dropped_for_model") or 0
        if not n and s.get("requests_beyond_horizon"):
            why = (f"no request for {model} reached it before sim.horizon_s "
                   f"({s['requests_beyond_horizon']:,} requests not sent before it, not "
                   f"simulated)")
        elif not n:  # (`requests.parquet`'s model is the one that served: after routing)
            why = (f"no request went to {model}: the workload asks for none "
                   f"(workload.model_mix sets each model's share), or a router that picks "
                   f"the model chose others for all of them")
        elif lost >= n:
            said = "; ".join(f"`{k}`: {DROP_WHY[k]}" for k in (s.get("drop_reasons") or {})
                             if k in DROP_WHY)
            why = (f"all {n:,} requests for {model} were dropped (drop_reasons: {reasons}"
                   + (f"; {said})" if said else ")"))
        else:
            why = (f"the router sent all {n - lost:,} requests for {model} it routed to other "
                   f"pools" + (f" ({lost:,} more were dropped)" if lost else ""))
        out.append(f"pool {pool} ({model}) received no request: {why}; its GPUs are still in "
                   f"the cost and energy")
    return out


#: a run is router-bound when routing (router queue + service + decision latency) is this
#: share of its mean TTFT (and transfer-bound when its exposed KV transfers are)
ROUTE_SHARE = 0.5


def _router_bound(s: dict) -> str | None:
    """When routing is most of the mean TTFT: what the time is (the queue for a router replica,
    or the router's own decision latency) and what helps, instead of blaming the fleet; else
    None."""
    route, ttft = s.get("route_mean_s"), s.get("ttft_mean_s")
    if not route or not ttft or route < ROUTE_SHARE * ttft:
        return None
    share = f"mean routing time {_t(route)} of mean TTFT {_t(ttft)}"
    util, n = s.get("router_utilization") or 0.0, s.get("router_replicas") or 1
    if util >= BUSY_MIN:
        more = max(n + 1, -(-n * util // 0.6))
        return (f"most of TTFT is the router's queue ({share}; the router is "
                f"{_pct(util)} busy with {n} replica{'' if n == 1 else 's'} at "
                f"{_t(s.get('router_service_s'))} per decision): more router replicas "
                f"(router.replicas={int(more)}) or a faster decision (router.service) would "
                f"help, a bigger fleet would not")
    return (f"most of TTFT is routing ({share}, the router {_pct(util)} busy): the router's "
            f"decision latency (its delay_s, router.service) is the time to cut, not the "
            f"fleet's")


def _transfer_bound(s: dict) -> str | None:
    """When the KV transfers from prefill to decode instances take at least half the mean TTFT
    (or of the TTFT target): the links are the bottleneck, not the GPUs — or, when most of that
    time was spent waiting for the decode side's KV blocks (`kv_wait_mean_s`), the decode
    instances' KV cache is; else None."""
    kv, ttft = s.get("kv_transfer_mean_s"), s.get("ttft_mean_s") or 0.0
    if not kv or kv < ROUTE_SHARE * max(ttft, s.get("slo_ttft_s") or 0.0):
        return None
    wait = s.get("kv_wait_mean_s") or 0.0
    if wait >= ROUTE_SHARE * kv:  # most of it waited for decode KV blocks, not on the wire
        return (f"the decode instances' KV cache is the bottleneck: arrived prompts wait for "
                f"blocks there (mean {_t(wait)} of the mean exposed KV transfer {_t(kv)}, "
                f"against mean TTFT {_t(ttft)}): more or larger decode instances would help, "
                f"faster links would not")
    if s.get("network_kind"):  # a fabric (network.json); else the per-NIC model
        how = ("faster or less oversubscribed links, or spraying on a loaded fabric "
               "(network.lb=spray)")
    else:
        how = "faster NICs (network.nic_gbps) or more of them (a larger prefill tp sends over more)"
    return (f"the KV transfers from prefill to decode instances are the bottleneck (mean "
            f"exposed transfer {_t(kv)} against mean TTFT {_t(ttft)}): {how} would help, more "
            f"GPUs of the same kind would not")


#: what a drop_reason means, for the warning of a run whose misses are mostly drops
DROP_WHY = {
    "no_healthy_instance": "no instance of the model was up",
    "instance_failed": "lost when their instance failed",
    "context": "longer than the context length: the model's, or the pool's max_context",
    "exceeds_kv_capacity": "larger than an instance's KV cache",
    "modality": "a modality the model does not take",
    "router_rejected": "rejected by the router",
    "session_aborted": "their session was aborted",
}


def drop_warnings(s: dict, shown: str | None = None) -> list[str]:
    """One line per reason requests were dropped (`summary.json`'s `drop_reasons`): how many,
    why and where to look — a request dropped is never silent, even when the run met its SLO.
    Empty when nothing was dropped, or when `shown`, the verdict printed beside them (a
    single run's; a sweep prints none), already blames the drops."""
    reasons = s.get("drop_reasons") or {}
    total = s.get("requests_total") or 0
    if not reasons or "dropped" in (shown or ""):
        return []
    return [f"{n:,} of {total:,} requests dropped for {k}"
            + (f" ({DROP_WHY[k]})" if k in DROP_WHY else "")
            + " (requests.parquet: drop_reason)"
            for k, n in sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0])) if n]


def _half_of_misses(n: int, total: int, att: float) -> bool:
    """Whether `n` (> 0) requests are at least half of a run's SLO misses."""
    return bool(n) and n >= 0.5 * (total - round(att * total))


def _dropped_misses(s: dict, total: int, att: float) -> str | None:
    """When dropped requests make up at least half of a run's SLO misses: how many, and the
    main `drop_reason` (`summary.json`'s `drop_reasons`), as the cause of the warning; else
    None (the misses are latency, judged by `loaded`)."""
    dropped = s.get("requests_dropped") or 0
    if not _half_of_misses(dropped, total, att):
        return None
    reasons = s.get("drop_reasons") or {}
    text = f"{dropped:,} of {total:,} requests were dropped"
    if reasons:
        main, n = min(reasons.items(), key=lambda kv: (-kv[1], kv[0]))
        why = DROP_WHY.get(main)
        text += f", {'all' if n == dropped else 'most'} for {main} ({n:,}" + (
            f": {why})" if why else ")")
    done = s.get("requests_completed") or 0
    met = round(att * total)
    if done:
        text += f"; {'all' if met == done else f'{met:,} of the'} {done:,} completed met it"
    return (f"{text}, so the misses are dropped requests, not latency (summary.json: "
            f"drop_reasons; requests.parquet: drop_reason)")


def _unfinished_misses(s: dict, total: int, att: float) -> str | None:
    """When requests still running at `sim.horizon_s` make up at least half of the misses:
    that the horizon cut them off (they count as misses), not latency; else None."""
    left = s.get("requests_in_flight") or 0
    if not _half_of_misses(left, total, att):
        return None
    return (f"{left:,} of {total:,} requests were still running when the run ended at "
            f"sim.horizon_s ({_t(s.get('duration_s'))}) and count as misses, so the misses are "
            f"requests the horizon cut off, not latency (a longer sim.horizon_s lets them "
            f"finish)")


#: a fleet is loaded when requests queue for this share of the TTFT target on average, or its
#: instances are busy this share of the run
QUEUE_SHARE, BUSY_MIN = 0.25, 0.8


def loaded(s: dict) -> bool:
    """Whether a run's SLO misses come from load (queueing for an instance or, disaggregated,
    for a decode instance's KV blocks; busy instances), not from the requests themselves;
    True when the summary lacks the figures (an older one)."""
    wait, util, ttft = (s.get(k) for k in ("queue_wait_mean_s", "mean_utilization",
                                           "slo_ttft_s"))
    if wait is None or util is None or not ttft:
        return True
    kv_wait = s.get("kv_wait_mean_s") or 0.0
    return max(wait, kv_wait) >= QUEUE_SHARE * ttft or util >= BUSY_MIN
