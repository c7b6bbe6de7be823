"""Instance failures: conservation of requests under every policy, retry timing, MTBF/MTTR,
energy while down, attribution of the work lost attempts burnt, clear config errors."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest
from conftest import constant_cfg, make_trace

from wrpsim.errors import ConfigError
from wrpsim.sim import Simulation, run


def loaded_trace(n=400, gap=0.05, seed=5):
    rng = np.random.default_rng(seed)
    return make_trace(np.cumsum(rng.exponential(gap, n)), rng.integers(20, 800, n),
                      rng.integers(1, 200, n))


def simulate(failures, trace=None, **pool):
    cfg = constant_cfg(step_s=0.02, prefill_s_per_token=0.0001, count=pool.pop("count", 3),
                       **pool)
    cfg["failures"] = failures
    sim = Simulation(cfg, loaded_trace() if trace is None else trace)
    req, inst, end = sim.run()
    return sim, req.to_pandas(), inst.to_pandas(), end


OUTAGE = [{"pool": "p", "instance": 1, "at_s": 5.0, "down_s": 4.0},
          {"pool": "p", "instance": 2, "at_s": 7.5, "down_s": None}]


@pytest.mark.parametrize("policy", ["retry", "reroute", "drop"])
def test_every_interrupted_request_is_retried_rerouted_or_lost(policy):
    """Conservation: each trace request ends as exactly one row; the requests in flight on the
    failed instances are all accounted for by the policy."""
    sim, df, inst, _ = simulate({"policy": policy, "events": OUTAGE})
    n = len(sim.trace)
    assert sorted(df.request_id) == list(range(n))
    assert set(df.status) <= {"completed", "dropped"}
    interrupted = sim.failures.interrupted
    assert interrupted > 10  # the outages hit busy instances
    assert sim.failures.failures == 2
    lost = (df.drop_reason == "instance_failed").sum()
    retried = (df.attempts > 1).sum()
    if policy == "drop":
        assert lost == interrupted and retried == 0
        assert (df.status == "completed").sum() == n - interrupted
    else:  # every lost attempt was sent again (max_retries 3 is never reached here)
        assert lost == 0 and (df.attempts - 1).sum() == interrupted
        assert 0 < retried <= interrupted
        assert (df.status == "completed").all()
    assert inst.failures.tolist() == [0, 1, 1]
    assert inst.down_s.iloc[1] == pytest.approx(4.0)
    # nobody is served by an instance while it is down
    down1 = (df.instance == 1) & (df.first_token_s > 5.0) & (df.first_token_s < 9.0)
    assert not down1.any()
    assert not ((df.instance == 2) & (df.arrival_s > 7.5) & (df.status == "completed")).any()


def test_slo_impact_is_reported(tmp_path):
    base = run(constant_cfg(step_s=0.02, prefill_s_per_token=0.0001, count=3), tmp_path / "a",
               loaded_trace())
    cfg = constant_cfg(step_s=0.02, prefill_s_per_token=0.0001, count=3)
    cfg["failures"] = {"policy": "retry", "retry_delay_s": 2.0, "events": OUTAGE}
    hit = run(cfg, tmp_path / "b", loaded_trace())
    assert base["requests_retried"] == 0 and base["slo_attainment_interrupted"] is None
    assert hit["instance_failures"] == 2 and hit["requests_retried"] > 10
    assert hit["slo_attainment"] < base["slo_attainment"]
    assert hit["slo_attainment_interrupted"] < hit["slo_attainment"]
    assert 0 < hit["availability"] < 1
    assert hit["instance_downtime_s"] == pytest.approx(4.0 + (hit["duration_s"] - 7.5))


def test_a_retried_request_restarts_after_the_back_off():
    """Two instances, one 100-token answer at 0.1 s per iteration on instance 0, which fails at
    t = 3.05 s: the client re-sends at 3.05 + 2 s to instance 1, which needs 10 s again."""
    cfg = constant_cfg(step_s=0.1, count=2)
    cfg["failures"] = {"policy": "retry", "retry_delay_s": 2.0,
                       "events": [{"pool": "p", "instance": 0, "at_s": 3.05, "down_s": 100.0}]}
    sim = Simulation(cfg, make_trace([0.0], [10], [100]))
    row = sim.run()[0].to_pylist()[0]
    assert row["status"] == "completed" and row["attempts"] == 2 and row["instance"] == 1
    assert row["finish_s"] == pytest.approx(5.05 + 100 * 0.1)
    assert row["ttft_s"] == pytest.approx(5.15)
    # the 30 iterations (3 s) the lost attempt completed are paid for, and the 10 s of the
    # second one; the iteration cut off at 3.05 s is not
    assert row["gpu_s"] == pytest.approx(13.0)


def test_retries_are_bounded_by_max_retries():
    cfg = constant_cfg(step_s=0.1, count=2)
    cfg["failures"] = {"policy": "retry", "retry_delay_s": 0.5, "max_retries": 1, "events": [
        {"pool": "p", "instance": 0, "at_s": 1.0, "down_s": 1.0},
        {"pool": "p", "instance": 1, "at_s": 3.0, "down_s": 1.0}]}
    row = Simulation(cfg, make_trace([0.0], [10], [100])).run()[0].to_pylist()[0]
    assert row["status"] == "dropped" and row["drop_reason"] == "instance_failed"
    assert row["attempts"] == 2


@pytest.mark.parametrize("order", [1, -1])
def test_back_to_back_outages_on_one_instance_are_one_stretch_of_down_time(order):
    """[1, 2) then [2, 3): the second outage starts as the first one's repair is due; the
    instance stays down to 3 s (the repair used to win and serve a request arriving at 2.2 s
    in 0.1 s), in either order of the events."""
    cfg = constant_cfg(step_s=0.1, count=1)
    events = [{"pool": "p", "instance": 0, "at_s": 1.0, "down_s": 1.0},
              {"pool": "p", "instance": 0, "at_s": 2.0, "down_s": 1.0}][::order]
    cfg["failures"] = {"policy": "retry", "retry_delay_s": 0.05, "max_retries": 100,
                       "events": events}
    req, inst, _ = Simulation(cfg, make_trace([2.2], [10], [5])).run()
    row = req.to_pylist()[0]
    assert row["status"] == "completed" and row["first_token_s"] >= 3.0
    assert inst.to_pylist()[0]["down_s"] == pytest.approx(2.0)


def test_requests_cut_off_and_then_dropped_for_no_healthy_instance_count_as_lost():
    """Every instance down for good mid-run: the requests running on them are resent, find no
    healthy instance and are dropped. They were interrupted by the failure and lost to it:
    the summary counted neither (only `instance_failed` drops and resent requests)."""
    from wrpsim.metrics.summary import summarize

    cfg = constant_cfg(step_s=0.1, count=1)
    cfg["failures"] = {"policy": "retry", "retry_delay_s": 0.5, "max_retries": 1,
                       "events": [{"pool": "p", "instance": 0, "at_s": 1.0, "down_s": None}]}
    req, inst, end = Simulation(cfg, make_trace([0.0, 0.1, 5.0], [10, 10, 10],
                                                [100, 100, 5])).run()
    rows = req.to_pylist()
    cut = [r for r in rows if r["gpu_s"] > 0]
    assert len(cut) == 2 and all(r["status"] == "dropped" and r["attempts"] == 1
                                 and r["drop_reason"] == "no_healthy_instance" for r in cut)
    late = next(r for r in rows if r["arrival_s"] == 5.0)  # never sent: not a failure's loss
    assert late["drop_reason"] == "no_healthy_instance" and late["attempts"] == 0
    s = summarize(req, inst, end, {"ttft_s": 2.0, "tpot_s": 0.1}, 1.0)
    assert s["requests_interrupted"] == s["requests_lost"] == 2
    assert s["slo_attainment_interrupted"] == 0.0


def _retried_until_up_or_dropped(cfg: dict, events: list, first_s: float = 0.1) -> None:
    """One request at 1 s while its only candidate is down from 0.5 to 2.5 s: under `retry`
    (every 1 s) it is served at the third try (its first token `first_s` later), under `drop`
    dropped as having no candidate."""
    cfg["failures"] = {"policy": "retry", "retry_delay_s": 1.0, "max_retries": 5,
                       "events": events}
    row = Simulation(cfg, make_trace([1.0], [10], [5])).run()[0].to_pylist()[0]
    assert row["status"] == "completed" and row["attempts"] == 1
    assert row["first_token_s"] == pytest.approx(3.0 + first_s)  # tries at 1, 2, 3 s; up at 2.5
    cfg["failures"] = {"policy": "drop", "events": events}
    row = Simulation(cfg, make_trace([1.0], [10], [5])).run()[0].to_pylist()[0]
    assert row["status"] == "dropped" and row["drop_reason"] == "no_healthy_instance"


def test_with_every_instance_down_requests_wait_for_the_repair_or_are_dropped():
    events = [{"pool": "p", "instance": 0, "at_s": 0.5, "down_s": 2.0}]
    cfg = constant_cfg(step_s=0.1, count=1)
    _retried_until_up_or_dropped(cfg, events)


def test_a_disaggregated_request_waits_while_every_decode_instance_is_down():
    """The prefill instance is up, the only decode instance down: the request is retried (or
    dropped) like one whose every candidate is down."""
    cfg = constant_cfg(step_s=0.1, count=1)
    pool = cfg["pool"]["pools"].pop("p")
    cfg["pool"]["pools"]["pre"] = {**pool, "role": "prefill"}
    cfg["pool"]["pools"]["dec"] = {**pool, "role": "decode"}
    events = [{"pool": "dec", "instance": 0, "at_s": 0.5, "down_s": 2.0}]
    # (the prefill step, then the decode instance's first step gives the first token)
    _retried_until_up_or_dropped(cfg, events, first_s=0.2)


def test_random_failures_are_deterministic_and_conserve_requests(tmp_path):
    f = {"policy": "reroute", "mtbf_s": 6.0, "mttr_s": 2.0}
    outs = []
    for k in range(2):
        cfg = constant_cfg(step_s=0.02, prefill_s_per_token=0.0001, count=3)
        cfg["failures"] = f
        s = run(cfg, tmp_path / str(k), loaded_trace())
        outs.append((tmp_path / str(k) / "requests.parquet").read_bytes())
    assert outs[0] == outs[1]
    df = pq.read_table(tmp_path / "0" / "requests.parquet").to_pandas()
    assert s["instance_failures"] >= 3
    assert sorted(df.request_id) == list(range(400))
    lost = df[df.status != "completed"]  # interrupted more than max_retries (3) times
    assert (lost.drop_reason == "instance_failed").all() and (lost.attempts == 4).all()
    assert s["requests_retried"] > 0 and s["requests_lost"] == len(lost)


def test_no_power_while_down_and_attribution_adds_up():
    sim, df, inst, end = simulate({"policy": "retry", "events": OUTAGE})
    lat = sim.fleet.instances[0].latency
    busy_energy = inst.energy_j - lat.idle_power_w() * inst.tp * (end - inst.busy_s - inst.down_s)
    assert df.energy_j.sum() == pytest.approx(busy_energy.sum(), rel=1e-9)
    assert df.gpu_s.sum() == pytest.approx((inst.busy_s * inst.tp).sum(), rel=1e-9)
    price = inst.price_per_gpu_hour_usd
    assert df.cost_usd.sum() == pytest.approx((inst.busy_s * inst.tp * price).sum() / 3600)


def test_disaggregated_decode_failure_conserves_requests():
    from wrpsim.pool.fleet import Fleet  # noqa: F401  (the fleet builds both roles)

    cfg = constant_cfg(step_s=0.02, prefill_s_per_token=0.0001, count=2)
    pool = cfg["pool"]["pools"].pop("p")
    cfg["pool"]["pools"]["pre"] = {**pool, "role": "prefill"}
    cfg["pool"]["pools"]["dec"] = {**pool, "role": "decode"}
    cfg["network"] = {"kind": "nic", "nic_gbps": 1.0}  # slow: KV transfers are in flight
    cfg["failures"] = {"policy": "reroute", "events": [
        {"pool": "dec", "instance": 0, "at_s": 4.0, "down_s": 3.0},
        {"pool": "pre", "instance": 1, "at_s": 6.0, "down_s": 2.0}]}
    sim = Simulation(cfg, loaded_trace())
    df = sim.run()[0].to_pandas()
    assert sorted(df.request_id) == list(range(400))
    assert (df.status == "completed").all()
    assert sim.failures.interrupted == (df.attempts - 1).sum() > 0


def test_kv_sent_counts_every_transfer_started_lost_first_sends_included(tmp_path):
    """`kv_transfer_bytes` ("GB sent prefill -> decode") sums the prefill instances' transfers
    (`instances.parquet` `kv_sent_bytes`): a request whose decode instance failed after its KV
    arrived is sent again and counts twice, where the requests' column holds the last send
    only (the summary used to sum that, missing the lost sends); without failures the two
    agree."""
    cfg = constant_cfg(step_s=0.02, prefill_s_per_token=0.0001, count=2)
    pool = cfg["pool"]["pools"].pop("p")
    cfg["pool"]["pools"]["pre"] = {**pool, "role": "prefill"}
    cfg["pool"]["pools"]["dec"] = {**pool, "role": "decode"}
    cfg["network"] = {"kind": "nic", "nic_gbps": 1.0}
    clean = run(cfg, tmp_path / "clean", loaded_trace())
    req = pq.read_table(tmp_path / "clean" / "requests.parquet").to_pandas()
    inst = pq.read_table(tmp_path / "clean" / "instances.parquet").to_pandas()
    assert clean["kv_transfer_bytes"] == pytest.approx(req.kv_transfer_bytes.sum(), rel=1e-12)
    assert inst.kv_sent_bytes[inst.pool == "dec"].sum() == 0
    cfg["failures"] = {"policy": "reroute", "events": [
        {"pool": "dec", "instance": 0, "at_s": 4.0, "down_s": 3.0}]}
    hit = run(cfg, tmp_path / "hit", loaded_trace())
    req = pq.read_table(tmp_path / "hit" / "requests.parquet").to_pandas()
    inst = pq.read_table(tmp_path / "hit" / "instances.parquet").to_pandas()
    assert hit["kv_transfer_bytes"] == pytest.approx(inst.kv_sent_bytes.sum(), rel=1e-12)
    assert hit["kv_transfer_bytes"] > req.kv_transfer_bytes.sum() * 1.001
    assert hit["kv_transfer_bytes"] > clean["kv_transfer_bytes"]


def test_horizon_records_requests_between_instances():
    """A request lost at 1 s whose re-send (at 6 s) the 2 s horizon cuts off is in flight,
    between instances, sent once: `attempts` counts sends (it said 2, and the run counted the
    request as retried, for a send that never happened)."""
    cfg = constant_cfg(step_s=0.1, count=1)
    cfg["sim"] = {"horizon_s": 2.0}
    cfg["failures"] = {"policy": "retry", "retry_delay_s": 5.0,
                       "events": [{"pool": "p", "instance": 0, "at_s": 1.0, "down_s": 0.5}]}
    row = Simulation(cfg, make_trace([0.0], [10], [100])).run()[0].to_pylist()[0]
    assert row["status"] == "in_flight" and row["pool"] is None and row["attempts"] == 1
    # its re-send inside the horizon: sent twice
    cfg["failures"]["retry_delay_s"] = 0.2
    row = Simulation(cfg, make_trace([0.0], [10], [100])).run()[0].to_pylist()[0]
    assert row["attempts"] == 2


@pytest.mark.parametrize("bad,msg", [
    ({"policy": "pray"}, r"failures\.policy.*valid choices: drop, reroute, retry"),
    ({"events": [{"pool": "q", "at_s": 1}]}, r"failures\.events\[0\]\.pool.*valid choices: p"),
    ({"events": [{"pool": "p", "instance": 3, "at_s": 1}]},
     r"failures\.events\[0\]\.instance must be an integer in \[0, 2\]"),
    ({"events": [{"pool": "p", "at_s": -1}]},
     r"failures\.events\[0\]\.at_s must be a finite number"),
    ({"mtbf_s": 0}, r"failures\.mtbf_s must be a finite number > 0"),
    ({"mtbf": 10}, r"unknown key\(s\) \['mtbf'\]"),
    ({"max_retries": -1}, r"failures\.max_retries must be an integer >= 0"),
    # the shorter outage's repair brought the instance back inside the longer one
    ({"events": [{"pool": "p", "instance": 0, "at_s": 10, "down_s": 30},
                 {"pool": "p", "instance": 0, "at_s": 12, "down_s": 2}]},
     r"^failures\.events\[1\] \(\[12, 14\) s\) overlaps failures\.events\[0\] \(\[10, 40\) s\) "
     r"on pool p instance 0: give one outage per stretch of down time$"),
    ({"events": [{"pool": "p", "instance": 2, "at_s": 5, "down_s": None},
                 {"pool": "p", "instance": 2, "at_s": 50, "down_s": 1}]},
     r"\(\[50, 51\) s\) overlaps failures\.events\[0\] \(\[5 s, never\)\)"),
])
def test_bad_failure_config_is_a_clear_error(bad, msg):
    cfg = constant_cfg(count=3)
    cfg["failures"] = bad
    with pytest.raises(ConfigError, match=msg):
        Simulation(cfg, make_trace([0.0], [10], [2]))


def test_outages_to_come_do_not_prolong_a_finished_run():
    """The run ends when its last request does: an outage scheduled after that (a whole-trace
    schedule on a shortened trace) used to stretch the run to the repair — 4x the cost, and an
    availability for idle time — and now does not happen, with a warning; an outage whose
    repair falls after the end leaves the end where the work finished."""
    import warnings

    from wrpsim.errors import WrpsimWarning

    trace = make_trace([0.0, 0.5], [10, 10], [5, 5])
    late = [{"pool": "p", "instance": 0, "at_s": 600.0, "down_s": 300.0}]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sim, req, _, end = simulate({"policy": "retry", "events": late}, trace, count=2)
        s = sim.failures.summary(end)
    assert end == pytest.approx(req["finish_s"].max()) and end < 2.0
    assert s["instance_failures"] == 0 and s["availability"] == 1.0
    said = [str(w.message) for w in caught if issubclass(w.category, WrpsimWarning)]
    assert len(said) == 1 and said[0].startswith("failures.events[0] (at_s 600): the run ended")
    early = [{"pool": "p", "instance": 1, "at_s": 0.2, "down_s": 300.0}]
    sim, req, _, end = simulate({"policy": "retry", "events": early}, trace, count=2)
    assert end == pytest.approx(req["finish_s"].max()) and end < 2.0
    assert sim.failures.failures == 1


def test_random_failures_over_a_closed_loop_without_a_horizon_are_warned_about(tmp_path):
    """A closed loop's requests all carry arrival 0 (the clients send the rest as the run
    goes), and random failures start only before the last arrival: none happened over a 47 s
    run, without a word."""
    from conftest import compose_cfg

    from wrpsim.errors import WrpsimWarning

    cfg = compose_cfg("workload=closed-loop", "workload.source.num_requests=120",
                      "failures=random", "failures.mtbf_s=30")
    with pytest.warns(WrpsimWarning, match=r"failures\.mtbf_s: random failures start only "
                      r"until 0 s, the workload's last arrival time, while the run lasted "
                      r"\d+ s .* 0 failed — give sim\.horizon_s"):
        run(cfg, tmp_path)


ALL_DOWN = ("failures=scheduled", "failures.policy=retry", "failures.max_retries=0",
            "failures.events=[" + ",".join(f"{{pool:h100,instance:{i},at_s:20,down_s:30}}"
                                           for i in range(4)) + "]")


@pytest.mark.parametrize("router", ["round-robin", "slo-aware", "energy-aware", "token-budget",
                                    "compress-route"])
def test_every_router_hands_requests_to_the_failure_policy_when_its_instances_are_down(router):
    """With every instance down for 30 s, the requests that arrive then go to the failure
    policy (here: dropped, no_healthy_instance) under every router. slo-aware and energy-aware
    crashed (their choice was None); token-budget and compress-route kept instance lists of
    their own that still held the failed instances, so requests were routed to them again and
    again until the outage ended (35,880 decisions for 300 requests, none dropped)."""
    from tests.conftest import compose_cfg

    cfg = compose_cfg("workload.max_requests=300", f"router={router}", *ALL_DOWN)
    sim = Simulation(cfg)
    req = sim.run()[0].to_pandas()
    lost = req[req.drop_reason == "no_healthy_instance"]
    base = Simulation(compose_cfg("workload.max_requests=300", "router=round-robin", *ALL_DOWN))
    want = (base.run()[0].to_pandas().drop_reason == "no_healthy_instance").sum()
    assert len(lost) == want > 50
    assert ((lost.arrival_s >= 20) & (lost.arrival_s <= 50.5)).all()


def test_the_summarys_preemptions_count_those_of_lost_attempts_too(tmp_path):
    """summary.json summed the requests' column, which holds each request's last attempt: the
    preemptions of attempts lost to a failure were missing (92 against the instances' 96)."""
    from tests.conftest import compose_cfg

    cfg = compose_cfg("+pool.pools.h100.kv_blocks=1500", "workload.max_requests=600",
                      "workload.rate_scale=4", "failures=scheduled",
                      "failures.events.0.at_s=30", "failures.events.0.down_s=30",
                      "failures.policy=reroute")
    s = run(cfg, tmp_path)
    inst = pq.read_table(tmp_path / "instances.parquet").to_pandas()
    req = pq.read_table(tmp_path / "requests.parquet").to_pandas()
    assert s["preemptions"] == inst.preemptions.sum() > req.preemptions.sum()


def test_a_policys_unread_key_set_away_from_its_default_is_warned_about():
    """`failures.policy=reroute failures.retry_delay_s=10` (or max_retries under drop) ran as
    if the key were not there, without a word; a warning says it changes nothing."""
    import warnings

    from wrpsim.errors import WrpsimWarning

    def said(**failures):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            simulate({"events": OUTAGE, **failures})
        return [str(w.message) for w in caught if issubclass(w.category, WrpsimWarning)]

    assert said(policy="reroute", retry_delay_s=10.0) == [
        "failures.retry_delay_s=10.0 applies only to failures.policy=retry (the client's "
        "back-off); with policy reroute it changes nothing"]
    assert said(policy="drop", max_retries=5) == [
        "failures.max_retries=5 changes nothing with failures.policy=drop (every interrupted "
        "request is dropped); it applies to retry and reroute"]
    # the keys a policy reads, and the defaults of conf/failures/*.yaml, say nothing
    assert not said(policy="retry", retry_delay_s=10.0, max_retries=5)
    assert not said(policy="reroute", retry_delay_s=1.0, max_retries=5)
    assert not said(policy="drop", retry_delay_s=1.0, max_retries=3)
