"""What a router may see: the scraped FleetView, its staleness and local counts, the oracle view,
and the ground truth no policy can read."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import compose_cfg, constant_cfg, make_trace
from wrpsim.errors import ConfigError
from wrpsim.metrics.summary import summarize
from wrpsim.router import RoundRobin
from wrpsim.router.base import Placement
from wrpsim.router.prefixindex import PrefixIndex
from wrpsim.router.requestview import TRUTH_READERS
from wrpsim.router.view import FleetView, InstanceView
from wrpsim.sim import Simulation, run


class ReadsTrueLength(RoundRobin):
    """A policy that tries to route on the answer's true length."""

    def choose(self, request, cands):
        return cands[request.output_tokens % len(cands)]


class ReadsOutcomes(RoundRobin):
    """A policy that tries to route on per-model correctness."""

    def choose(self, request, cands):
        return cands[0] if request.outcomes else cands[-1]


class GrabsTheFleet(RoundRobin):
    """A policy that tries to reach the live fleet through its view."""

    def route(self, request, view):
        self.seen = (view, view.candidates(request)[0])
        view.candidates(request)[0].admit(request)


def _cfg(router: str, count: int = 2, view=None, **kw) -> dict:
    cfg = constant_cfg(step_s=0.01, count=count, **kw)
    cfg["router"] = {"_target_": router}
    if view is not None:
        cfg["router"]["view"] = view
    return cfg


@pytest.mark.parametrize("policy", [ReadsTrueLength, ReadsOutcomes])
def test_a_policy_cannot_read_the_ground_truth(policy):
    sim = Simulation(_cfg(f"{__name__}.{policy.__name__}"), make_trace([0.0], [10], [3]))
    # a router of the user's (not wrpsim's): one line naming it and its own file:line
    with pytest.raises(ConfigError, match=rf"router {re.escape(__name__)}\.{policy.__name__}: "
                       r"a router cannot read request\.\w+: it is ground truth the router does "
                       r"not know .*test_router_view\.py:\d+\)$"):
        sim.run()


def test_a_policy_sees_a_view_not_the_fleet():
    sim = Simulation(_cfg(f"{__name__}.GrabsTheFleet"), make_trace([0.0], [10], [3]))
    with pytest.raises(ConfigError, match=r"read InstanceView\.admit .*which the view does not "
                       r"have; an InstanceView has: name, pool"):
        sim.run()
    view, inst = sim.router.seen
    assert isinstance(view, FleetView) and sim.router.fleet is view
    assert isinstance(inst, InstanceView)
    for name in ("fleet", "pools_live", "env", "dispatcher"):
        assert not hasattr(view, name)
    for name in ("waiting", "running", "kv", "prefix", "admit", "env", "__dict__"):
        assert not hasattr(inst, name)


def _reachable(root, depth: int = 8) -> set:
    """Types of the objects reachable from `root` through attributes, slots and containers
    (not through the cells of closures: `view.submit` must call into the simulation)."""
    seen, types, frontier = set(), set(), [root]
    for _ in range(depth):
        nxt = []
        for o in frontier:
            if id(o) in seen or isinstance(o, (str, bytes, int, float, type(None), type)):
                continue
            seen.add(id(o))
            types.add(type(o).__name__)
            kids = list(o.values()) + list(o) if isinstance(o, dict) else []
            if isinstance(o, (list, tuple, set, frozenset)):
                kids = list(o)
            kids += list(getattr(o, "__dict__", {}).values())
            for cls in type(o).__mro__:
                for slot in cls.__dict__.get("__slots__", ()):
                    if hasattr(o, slot):
                        kids.append(getattr(o, slot))
            nxt += kids
        frontier = nxt
    return types


def test_no_attribute_path_leads_from_a_policy_to_the_live_fleet():
    sim = Simulation(compose_cfg("router=least-outstanding", "workload.max_requests=50"))
    sim.run()
    types = _reachable(sim.router)
    assert "InstanceView" in types and "FleetView" in types
    assert not types & {"Fleet", "Instance", "Dispatcher", "RequestLog", "Environment",
                        "ViewFeed", "KVLedger", "PrefixCache", "Seq"}
    # the search finds the live instances where they are reachable: the oracle view reads them
    oracle = Simulation(compose_cfg("router=least-outstanding", "workload.max_requests=50",
                                    "router.view.kind=oracle"))
    assert "Instance" in _reachable(oracle.router)


def test_only_predictor_models_and_call_mechanics_read_the_truth():
    """Policies never call `ground_truth`; the predictor models and follow-up mechanics may."""
    router_dir = Path(__file__).resolve().parents[1] / "wrpsim" / "router"
    readers = sorted(p.stem for p in router_dir.glob("*.py")
                     if re.search(r"\bground_truth\b", p.read_text(encoding="utf-8"))
                     and p.stem != "requestview")
    assert readers == sorted(TRUTH_READERS)


LONG_THEN_SHORT = make_trace([0.0, 0.05, 1.0], [10, 10, 10], [1000, 10, 10])


@pytest.mark.parametrize(("view", "third_on"), [
    ({"kind": "oracle"}, 1),                       # live: instance 1 is empty again
    ({"interval_s": 0.5}, 1),                      # the scrape at 0.5 s shows it
    ({"interval_s": 0.5, "delay_s": 0.6}, 0),      # ... but only from 1.1 s on
    ({"interval_s": 10.0}, 0),                     # no scrape since t = 0: counts only
])
def test_least_outstanding_sees_completions_only_through_scrapes(view, third_on):
    """Request 0 (long) goes to instance 0 and request 1 (short) to instance 1, which is empty
    again at 0.2 s. At 1 s the router knows that only if a scrape since then is visible; else
    its own dispatch counts (1 and 1) tie and it picks instance 0."""
    sim = Simulation(_cfg("wrpsim.router.LeastOutstanding", view=view), LONG_THEN_SHORT)
    rows = sim.run()[0].to_pylist()
    assert [r["instance"] for r in rows] == [0, 1, third_on]


class Recorder(RoundRobin):
    """Round-robin that logs what the view shows of the first instance at each decision."""

    def bind(self, fleet, rng):
        super().bind(fleet, rng)
        self.log = []

    def choose(self, request, cands):
        i = cands[0]
        self.log.append((i.outstanding, i.num_waiting, i.outstanding_tokens))
        return i


@pytest.mark.parametrize(("view", "seen"), [
    # scrape at 0 (empty) + own dispatches, then the scrape at 1 s: 1 running, 30 + 40 waiting
    ({"interval_s": 1.0}, [(0, 0, 0), (1, 1, 100), (2, 2, 130), (3, 2, 70)]),
    ({"kind": "oracle"}, [(0, 0, 0), (1, 0, 0), (2, 1, 30), (3, 2, 70)]),
])
def test_the_view_shows_queued_prompt_tokens(view, seen):
    """One sequence at a time: request 0 runs for 5 s, the next ones wait."""
    cfg = _cfg(f"{__name__}.Recorder", count=1, view=view, max_seqs=1)
    sim = Simulation(cfg, make_trace([0.0, 0.1, 0.2, 1.5], [100, 30, 40, 50], [500, 5, 5, 5]))
    sim.run()
    assert sim.router.log == seen


def test_local_dispatch_counts_keep_a_stale_view_from_herding():
    """Between scrapes a burst is spread by the router's own counts, not sent to one instance."""
    trace = make_trace([0.001 * i for i in range(8)], [10] * 8, [500] * 8)
    sim = Simulation(_cfg("wrpsim.router.LeastOutstanding", count=4,
                          view={"interval_s": 30.0}), trace)
    rows = sim.run()[0].to_pylist()
    assert [r["instance"] for r in rows] == [0, 1, 2, 3, 0, 1, 2, 3]


def test_least_kv_spreads_a_burst_between_scrapes():
    """least-kv read the scraped KV use alone: every request between two scrapes went to the
    instance emptiest at the last one (61 % of the code trace's multi-request seconds went to
    one instance). The view adds the prompts it sent since, as a share of the cache."""
    trace = make_trace([0.001 * i for i in range(8)], [1000] * 8, [500] * 8)
    sim = Simulation(_cfg("wrpsim.router.LeastKV", count=4, view={"interval_s": 30.0}), trace)
    rows = sim.run()[0].to_pylist()
    assert [r["instance"] for r in rows] == [0, 1, 2, 3, 0, 1, 2, 3]
    v = next(iter(sim.feed._views.values()))  # 2 × 1,000 prompt tokens sent since t = 0
    assert v._s[3] == 0.0  # (the scrape at t = 0 saw an empty cache)
    assert v.kv_used_frac == pytest.approx(2000 / (v.kv_capacity_blocks * v.block_size))


def test_the_view_counts_a_hybrids_state_with_the_prompts_it_sent():
    """A Mamba hybrid whose pool pages its state with the KV (Nemotron-Nano-12B-v2 on one H100:
    410 blocks of 16 tokens a sequence): between scrapes the view adds each sent request's
    state to its prompt tokens, as the instance will hold them on admission."""
    trace = make_trace([0.001 * i for i in range(4)], [1000] * 4, [50] * 4)
    cfg = {"seed": 0, "slo": {"ttft_s": 1e9, "tpot_s": 1e9}, "pue": 1.0,
           "pool": {"pools": {"n": {"gpu": "h100-80gb", "model": "nemotron-nano-12b-v2",
                                    "tp": 1, "count": 2, "engine": "vllm-0.11",
                                    "scheduler": {"max_seqs": 128}}}},
           "router": {"_target_": "wrpsim.router.LeastKV", "view": {"interval_s": 30.0}}}
    sim = Simulation(cfg, trace)
    sim.run()
    v = next(iter(sim.feed._views.values()))  # 2 requests of 1,000 prompt tokens sent
    state = sim.fleet.instances[0]._win.state_blocks
    assert state > 100 and v._state_tokens == state * 16
    assert v.kv_used_frac == pytest.approx(
        (2000 + 2 * state * 16) / (v.kv_capacity_blocks * v.block_size))


class SlowLeastOutstanding(RoundRobin):
    """Least outstanding with a 50 ms decision latency; logs (outstanding, num_waiting,
    outstanding_tokens) of every candidate at each decision."""

    reads_load = True

    def bind(self, fleet, rng):
        super().bind(fleet, rng)
        self.log = []

    def route(self, request, view):
        cands = view.candidates(request)
        self.log.append([(i.outstanding, i.num_waiting, i.outstanding_tokens) for i in cands])
        return Placement(min(cands, key=lambda i: i.outstanding), delay_s=0.05)


def test_the_oracle_counts_requests_routed_but_not_yet_admitted():
    """Requests 1 ms apart, each admitted 50 ms after its decision: the live view counts the
    ones still in their delay as waiting where they were sent (with their prompt tokens), so
    least outstanding spreads them; once admitted they are counted by the instance alone."""
    trace = make_trace([0.001 * i for i in range(8)] + [1.0], [10 * (i + 1) for i in range(9)],
                       [5] * 9)
    sim = Simulation(_cfg(f"{__name__}.SlowLeastOutstanding", count=4,
                          view={"kind": "oracle"}), trace)
    rows = sim.run()[0].to_pylist()
    assert [r["instance"] for r in rows] == [0, 1, 2, 3, 0, 1, 2, 3, 0]
    log = sim.router.log
    assert log[1] == [(1, 1, 10), (0, 0, 0), (0, 0, 0), (0, 0, 0)]
    assert log[5] == [(2, 2, 60), (1, 1, 20), (1, 1, 30), (1, 1, 40)]
    assert log[8] == [(0, 0, 0)] * 4  # all done by 1 s: nothing left in front
    assert all(lv.front == lv.front_tokens == 0 for lv in sim.feed._front.values())


def test_the_oracle_spreads_a_burst_through_the_front_end():
    """The default fleet's API server takes a few ms per request before the engine sees it;
    the reviewer's burst (8 requests 1 ms apart) is spread, not piled on instance 0."""
    trace = make_trace([0.001 * i for i in range(8)], [1000] * 8, [50] * 8)
    sim = Simulation(compose_cfg("router=least-outstanding", "router.view.kind=oracle"), trace)
    rows = sim.run()[0].to_pylist()
    assert [r["instance"] for r in rows] == [0, 1, 2, 3, 0, 1, 2, 3]


def _assert_oracle_drained(sim) -> None:
    """Every count the oracle keeps of requests on their way to an instance (front end,
    decode side) is back to 0 once the run has drained."""
    feed = sim.feed
    assert feed.decoding == {}
    assert all(lv.front == lv.front_tokens == 0 for lv in feed._front.values())


DISAGG_BURST = ("pool=h100-llama70b-disagg", "network=nic", "router=least-outstanding",
                "router.view.kind=oracle")


@pytest.mark.parametrize("kind", ["oracle", "scrape"])
def test_a_disaggregated_burst_spreads_on_both_sides(kind):
    """16 requests 1 ms apart on the disaggregated fleet (2 prefill + 2 decode instances): the
    oracle counts a request on its decode instance from the routing decision until its KV
    arrives there, so the decode side is split like the prefill side (it sent all 16 to
    decode 0 when only the prefill side's front end was counted); the scrape's own dispatch
    counts split both sides too."""
    trace = make_trace([0.001 * i for i in range(16)], [3000] * 16, [50] * 16)
    sim = Simulation(compose_cfg(*DISAGG_BURST[:-1], f"router.view.kind={kind}"), trace)
    rows = sim.run()[0].to_pylist()
    assert all(r["status"] == "completed" for r in rows)
    pre = [r["prefill_instance"] for r in rows]
    dec = [r["instance"] for r in rows]
    assert (pre.count(0), pre.count(1)) == (8, 8)
    assert (dec.count(0), dec.count(1)) == (8, 8)
    if kind == "oracle":
        _assert_oracle_drained(sim)


@pytest.mark.parametrize("policy", ["retry", "drop"])
@pytest.mark.parametrize("pool", ["prefill", "decode"])
def test_the_oracle_decode_counts_return_to_zero_through_failures(pool, policy):
    """Requests lost to a failure of their prefill or decode instance (retried or dropped),
    dropped at admission (too long for the model) or answered by their prefill instance
    (one output token) leave no count behind on any decode instance."""
    n = 40
    prompts = [3000] * n
    prompts[7] = 200_000  # longer than the model's context: dropped at admission
    outputs = [50] * n
    outputs[9] = 1
    trace = make_trace([0.002 * i for i in range(n)], prompts, outputs)
    cfg = compose_cfg(*DISAGG_BURST)
    cfg["failures"] = {"policy": policy, "retry_delay_s": 0.05,
                       "events": [{"pool": pool, "instance": 0, "down_s": 0.2,
                                   "at_s": 0.05 if pool == "prefill" else 0.6}]}
    sim = Simulation(cfg, trace)
    rows = sim.run()[0].to_pylist()
    assert len(rows) == n
    status = [(r["status"], r["drop_reason"]) for r in rows]
    assert ("dropped", "context") in status
    assert sim.failures.interrupted > 0
    if policy == "drop":
        assert ("dropped", "instance_failed") in status
    _assert_oracle_drained(sim)


def test_session_affinity_under_the_oracle_spreads_closed_loop_clients():
    """8 closed-loop clients start together; each one's first request must see the ones routed
    before it, or every session (and so all 64 requests) goes home to instance 0."""
    sim = Simulation(compose_cfg("workload=closed-loop", "workload.source.num_requests=64",
                                 "workload.source.concurrency=8", "router=session-affinity",
                                 "router.view.kind=oracle"))
    inst = sim.run()[0].column("instance").to_pylist()
    assert {i: inst.count(i) for i in set(inst)} == {0: 16, 1: 16, 2: 16, 3: 16}


def test_scrapes_do_not_prolong_the_run():
    sim = Simulation(_cfg("wrpsim.router.LeastOutstanding", view={"interval_s": 7.0}),
                     LONG_THEN_SHORT)
    req, _inst, end = sim.run()
    assert end == max(req.column("finish_s").to_pylist()) == pytest.approx(10.0, abs=0.1)


def test_the_router_remembers_the_prefixes_it_sent():
    """The engine caches a prompt's blocks only once a prefill iteration has computed them;
    the router's own index knows at once where it sent a prefix, so the second request, sent
    before the first's prefill has ended, follows the first (the oracle, reading the engine's
    still-empty cache, spreads them)."""
    trace = make_trace([0.0, 0.01], [64, 64], [50, 50], hash_ids=[[1, 2, 3, 4], [1, 2, 3, 4]])
    trace.attrs["hash_block_tokens"] = 16
    got = {}
    for kind in ("scrape", "oracle"):
        cfg = _cfg("wrpsim.router.PrefixAware", view={"kind": kind},
                   prefix_cache={"enabled": True})
        got[kind] = [r["instance"] for r in Simulation(cfg, trace).run()[0].to_pylist()]
    assert got == {"scrape": [0, 0], "oracle": [0, 1]}


def test_prefix_index_is_an_lru_of_the_ids_sent():
    idx = PrefixIndex(capacity=4)
    idx.sent([1, 2, 3])
    assert idx.match([1, 2, 9]) == 2 and idx.match([5]) == 0
    idx.sent([7, 8])  # 1 is the least recently sent: evicted
    assert len(idx) == 4 and idx.match([1, 2]) == 0 and idx.match([7, 8]) == 2


def test_raising_the_scrape_interval_makes_least_outstanding_worse_on_the_default_scenario():
    """The default workload and fleet, first 3,000 requests at 6x the trace's rate (at its own
    rate the fleet is lightly loaded and where a request goes hardly matters). A 5 s scrape
    sends each scrape's apparent imbalance to the emptiest instance in a burst."""
    base = ("router=least-outstanding", "workload.max_requests=3000", "workload.rate_scale=6")
    out = {}
    for interval in (1.0, 5.0):
        sim = Simulation(compose_cfg(*base, f"router.view.interval_s={interval}"))
        req, inst, end = sim.run()
        out[interval] = summarize(req, inst, end, sim.slo, 1.0)
    assert out[5.0]["ttft_mean_s"] > 1.5 * out[1.0]["ttft_mean_s"]
    assert out[5.0]["ttft_p99_s"] > 2.0 * out[1.0]["ttft_p99_s"]


def test_the_oracle_view_is_labelled_an_upper_bound(tmp_path):
    s = run(_cfg("wrpsim.router.LeastOutstanding", view={"kind": "oracle"}), tmp_path,
            LONG_THEN_SHORT)
    assert s["router_view_kind"] == "oracle" and "upper bound" in s["router_view"]
    assert s["router_view_interval_s"] is None
    s = run(_cfg("wrpsim.router.LeastOutstanding"), tmp_path, LONG_THEN_SHORT)
    assert (s["router_view_kind"], s["router_view_interval_s"], s["router_view_delay_s"]) == (
        "scrape", 1.0, 0.0)


def test_the_oracle_length_predictor_needs_the_oracle_view():
    cfg = _cfg("wrpsim.router.OutputLengthAware")
    cfg["router"]["output_predictor"] = {"kind": "oracle"}
    with pytest.raises(ConfigError, match=r"router\.output_predictor\.kind: oracle needs "
                                          r"router\.view\.kind: oracle"):
        Simulation(cfg, LONG_THEN_SHORT)
    cfg["router"]["view"] = {"kind": "oracle"}
    Simulation(cfg, LONG_THEN_SHORT).run()


@pytest.mark.parametrize(("view", "message"), [
    ({"interval_s": -1}, r"router\.view\.interval_s must be a finite number > 0"),
    ({"interval_s": 0}, r"router\.view\.interval_s must be a finite number > 0"),
    ({"delay_s": -0.5}, r"router\.view\.delay_s must be a finite number >= 0"),
    ({"kind": "psychic"}, r"router\.view\.kind: unknown value 'psychic'; valid choices: "
                          r"oracle, scrape"),
    ({"every": 1}, r"router\.view: unknown key\(s\) \['every'\]; valid keys: kind, interval_s"),
])
def test_bad_view_configs_name_the_field_and_the_choices(view, message):
    with pytest.raises(ConfigError, match=message):
        Simulation(_cfg("wrpsim.router.LeastOutstanding", view=view), LONG_THEN_SHORT)


def test_same_config_same_bytes_with_a_stale_view_and_a_router_queue(tmp_path):
    trace = make_trace([0.003 * i for i in range(300)], [20 + i % 7 for i in range(300)],
                       [5 + i % 13 for i in range(300)])
    cfg = _cfg("wrpsim.router.PowerOfD", count=3, view={"interval_s": 0.05, "delay_s": 0.02})
    cfg["router"].update(replicas=2, service={"signal": "llm"})  # and a queue at the router
    a, b = tmp_path / "a", tmp_path / "b"
    run(cfg, a, trace)
    run(cfg, b, trace)
    assert (a / "requests.parquet").read_bytes() == (b / "requests.parquet").read_bytes()


class ScrapedRoundRobin(RoundRobin):
    """Round-robin declared as reading load (subclasses read load unless they say not)."""


def test_a_router_that_reads_no_load_takes_no_scrapes_and_loses_nothing():
    """Round-robin never reads the scraped metrics, so the run takes no scrapes for it; the
    same policy with scrapes gives the same rows (they could change nothing)."""
    assert RoundRobin.reads_load is False and ScrapedRoundRobin.reads_load is True
    trace = make_trace([0.3 * i for i in range(30)], [50] * 30, [40] * 30)
    plain = Simulation(_cfg("wrpsim.router.RoundRobin", count=3), trace)
    scraped = Simulation(_cfg(f"{__name__}.ScrapedRoundRobin", count=3), trace)
    assert not plain.feed.ticking and scraped.feed.ticking
    a, b = plain.run(), scraped.run()
    assert a[0].to_pandas().equals(b[0].to_pandas()) and a[2] == b[2]  # NaN-aware


class DrawingRoundRobin(RoundRobin):
    """Round-robin that also draws a number per decision (subclasses draw unless they say not)."""

    def choose(self, request, cands):
        self.drawn = float(self.rng.random())
        return super().choose(request, cands)


def test_a_router_that_never_draws_gets_no_random_stream():
    """Round-robin declares `draws_random = False`: the run hands it None (making a stream
    imports numpy's random module); a subclass draws unless its own body says not, gets its
    stream and the same placements."""
    assert RoundRobin.draws_random is False and DrawingRoundRobin.draws_random is True
    trace = make_trace([0.3 * i for i in range(12)], [50] * 12, [40] * 12)
    plain = Simulation(_cfg("wrpsim.router.RoundRobin", count=3), trace)
    drawing = Simulation(_cfg(f"{__name__}.DrawingRoundRobin", count=3), trace)
    assert plain.router.rng is None and drawing.router.rng is not None
    a, b = plain.run(), drawing.run()
    assert 0.0 <= drawing.router.drawn < 1.0
    assert a[0].to_pandas().equals(b[0].to_pandas())


@pytest.mark.parametrize("interval, delay", [(1.0, 0.0), (0.07, 0.0), (0.3, 0.45)])
def test_scrapes_skip_idle_stretches_and_change_nothing(monkeypatch, interval, delay):
    """A decision reads the last scrape published by its time, so the ticks before the last
    one before the next event (less `delay_s`) are never read and the scraper skips them: the
    same tables, bit for bit, as a tick each, on a sparse workload (1 % of the trace's rate)
    at a dyadic and a non-dyadic interval and with a delayed view, under least-kv (whose
    reading grows during a decode run: the time matters, not only the state); and a run
    whose requests come hours apart ends at once instead of stepping through them."""
    from wrpsim.router import feed
    from wrpsim.sim import Simulation

    cfg = compose_cfg("router=least-kv", "workload.rate_scale=0.01",
                      "workload.max_requests=120", f"router.view.interval_s={interval}",
                      f"router.view.delay_s={delay}")
    skipped = []
    first_tick = feed._last_tick_before

    def counted(t, dt, until):
        skipped.append(until - t)
        return first_tick(t, dt, until)

    runs = []
    for fn in (counted, lambda t, dt, until: t):  # (the second: one tick every interval)
        monkeypatch.setattr(feed, "_last_tick_before", fn)
        req, inst, _ = Simulation(cfg).run()
        runs.append((req.to_pandas(), inst.to_pandas()))
    assert len(skipped) > 50 and max(skipped) > 100 * interval
    assert runs[0][0].equals(runs[1][0]) and runs[0][1].equals(runs[1][1])  # (values, dtypes)
    monkeypatch.setattr(feed, "_last_tick_before", first_tick)
    sparse = compose_cfg("router=least-outstanding", "workload.rate_scale=1e-9",
                         "workload.max_requests=5")
    req = Simulation(sparse).run()[0].to_pandas()
    assert req["arrival_s"].max() > 1e9 and req["finish_s"].notna().all()
