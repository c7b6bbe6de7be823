"""Disaggregation memory: the KV of a handed-off sequence is always held by some instance.

A decode instance has *accepted* a sequence from the moment it reserved blocks for the
sequence's KV (`wrpsim/pool/handoff.py`; independently of the engine's bookkeeping: at the
latest when the KV transfer to it starts) until the sequence leaves it (finished, or lost to a
failure): while the bytes are on their way, once they have arrived and the sequence waits to
join the decode batch, and while it runs there (decoding, or prefilling again after a
preemption). The blocks such a sequence needs are

- reserved, in flight or arrived and waiting: the blocks of its whole transferred KV (`target`
  tokens);
- decoding: the blocks of the tokens cached at the instance's decode-step counter (the ledger's
  own convention: a decode run in progress allocates its steps' blocks when it ends);
- prefilling again after a preemption: the blocks it was given so far (`seq.blocks`).

A prefill instance needs the blocks of its prompts in progress and of the hand-offs whose KV is
still on it (waiting for a reservation, or being sent). The checks run after every SimPy event.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import make_trace
from wrpsim.pool.sequence import DECODE
from wrpsim.sim import Simulation

STEP_S, PREFILL_S = 0.0101327, 0.0071313  # no short rational relation: no float ties


def disagg(kv_dec=400, kv_pre=100_000, step_s=0.01, prefill_s=0.005, nic_gbps=100.0,
           mode="serialized", d_count=1, p_count=1, policy="sarathi", max_seqs=64,
           dec_policy=None, block_size=16, token_budget=4096, router="LeastOutstanding",
           per_token_s=0.0):
    lat = {"kind": "constant", "decode_step_s": step_s, "prefill_s_fixed": prefill_s,
           "prefill_s_per_token": per_token_s}

    def pool(role, count, blocks, pol):
        return {"gpu": "h100-80gb", "model": "llama3.1-8b", "tp": 1, "count": count,
                "kv_blocks": blocks, "role": role, "latency": lat,
                "scheduler": {"policy": pol, "max_seqs": max_seqs,
                              "token_budget": token_budget, "block_size": block_size},
                **({"kv_transfer": {"mode": mode}} if role == "prefill" else {})}

    return {
        "seed": 0, "slo": {"ttft_s": 1.0, "tpot_s": 0.1}, "pue": 1.0,
        "network": {"kind": "nic", "nic_gbps": nic_gbps} if nic_gbps else {"kind": "none"},
        "pool": {"pools": {"pre": pool("prefill", p_count, kv_pre, policy),
                           "dec": pool("decode", d_count, kv_dec, dec_policy or policy)}},
        "router": {"_target_": f"wrpsim.router.{router}"},
    }


class Watch:
    """Checks the KV invariants after every event of `sim` (module docstring)."""

    def __init__(self, sim):
        self.sim = sim
        # id(seq) -> (seq, decode instance, its failures then): KV on its way
        self.flying: dict[int, tuple] = {}
        self.deficit = 0  # largest shortfall: accepted blocks a decode instance did not hold
        self.pre_deficit = 0  # the same for a prefill instance's prompts and hand-offs
        self.unheld = 0  # largest fleet-wide shortfall: needed blocks no instance held
        self.pressure = 0  # most blocks of waiting hand-offs on a prefill instance with prompts
        self.events = 0  # waiting for admission
        xfer = sim.fleet.transfer
        send = xfer.send

        def watched_send(src, dst, seq, nbytes, mode, t_start, layers, done):
            self.flying[id(seq)] = (seq, dst, dst.epoch)

            def landed(t):
                self.flying.pop(id(seq), None)
                done(t)

            send(src, dst, seq, nbytes, mode, t_start, layers, landed)

        xfer.send = watched_send
        env = sim.env
        step = env.step

        def stepped():
            step()
            self.check()

        env.step = stepped

    def need(self, inst) -> int:
        """Blocks needed by the sequences the decode instance `inst` has accepted."""
        kv = inst.kv
        accepted = {id(s): s for s in inst.incoming.values()}
        # (a sequence whose decode instance failed since its transfer started was lost)
        accepted.update((k, s) for k, (s, d, e) in self.flying.items()
                        if d is inst and e == inst.epoch)
        n = sum(kv.blocks_for(s.target) for s in accepted.values())
        n += sum(kv.blocks_for(s.target) for s in inst.waiting if s.kv_ready)
        for s in inst.running.values():
            n += kv.blocks_for(s.kv0 + inst.step - s.s0) if s.state == DECODE else s.blocks
        return n

    def check(self) -> None:
        self.events += 1
        fleet_held = fleet_need = 0
        for inst in self.sim.fleet.instances:
            kv = inst.kv
            assert 0 <= kv.used <= kv.capacity
            held = kv.used - kv.evictable
            fleet_held += held
            if inst.role == "decode":
                need = self.need(inst)
                self.deficit = max(self.deficit, need - held)
                fleet_need += need
                # arrived sequences queue behind the ones this instance preempted
                w = list(inst.waiting)
                assert [s.kv_ready for s in w] == [False] * (len(w) - inst.n_ready) + [
                    True] * inst.n_ready
            else:
                prompts = sum(s.blocks for s in inst.running.values())
                waiting = sum(s.blocks for s in inst.waiting_handoffs())
                sending = sum(s.blocks for s in inst.outgoing.values()) - waiting
                self.pre_deficit = max(self.pre_deficit, prompts + waiting + sending - held)
                fleet_need += prompts + waiting  # (sent KV counts on the decode side)
                if inst.waiting:
                    self.pressure = max(self.pressure, waiting)
        self.unheld = max(self.unheld, fleet_need - fleet_held)

    def assert_held(self) -> None:
        assert self.events > 0
        assert self.unheld <= 0, f"{self.unheld} blocks of accepted KV held by no instance"
        assert self.deficit <= 0, f"a decode side held {self.deficit} blocks less than accepted"
        assert self.pre_deficit <= 0, f"a prefill side held {self.pre_deficit} blocks too few"


def assert_drained(sim) -> None:
    """Every block is back (or a prefix-cache entry), no reservation or hand-off is left."""
    for inst in sim.fleet.instances:
        cached = inst.prefix.size_blocks if inst.prefix else 0
        assert inst.kv.used == cached and inst.kv.evictable == cached, inst.name
        assert not inst.incoming and not inst.reservations and not inst.outgoing
        assert inst.n_ready == 0 and not inst.waiting and not inst.running


def flood(n=120, prompt=512, output=200, gap=0.002):
    """Many prompts at once: transfers complete while the decode side is full."""
    return make_trace([i * gap for i in range(n)], [prompt] * n, [output] * n)


def test_old_hole_arrived_kv_is_held_by_the_decode_side():
    """The old hole: a decode instance with room for ~12 sequences receives 120 hand-offs in a
    quarter of a second. Before the fix, the prefill instance freed a sequence's blocks when its
    transfer ended and the decode instance allocated them only when the sequence joined its
    batch, so the KV of ~100 arrived sequences (≈ 55,000 tokens) was held by no instance."""
    sim = Simulation(disagg(kv_dec=400), flood())
    watch = Watch(sim)
    req, _, _ = sim.run()
    assert watch.events > 100  # the checks ran
    watch.assert_held()
    assert set(req.column("status").to_pylist()) == {"completed"}
    assert_drained(sim)


def test_hand_offs_that_wait_for_a_reservation_back_pressure_the_prefill_instance():
    """A prefill instance with room for 6 prompts and a decode instance with room for ~12
    sequences: hand-offs wait on the prefill instance for the decode side's blocks, fill its
    memory and hold back the prompts queued behind them; the wait is part of the exposed
    transfer and reported on its own."""
    sim = Simulation(disagg(kv_dec=400, kv_pre=200), flood(n=60))
    watch = Watch(sim)
    req, _, _ = sim.run()
    watch.assert_held()
    pre = sim.fleet.pools["pre"][0]
    # hand-offs holding all but a prompt's worth of the prefill instance's blocks while prompts
    # wait there
    assert watch.pressure >= pre.kv.capacity - pre.kv.blocks_for(512)
    rows = req.to_pandas()
    assert (rows.status == "completed").all()
    assert (rows.kv_wait_s > 0.5).sum() > 20
    assert (rows.kv_transfer_s >= rows.kv_wait_s).all()
    assert rows.queue_wait_s.max() > 1.0  # prompts waited for the prefill instance's memory
    assert_drained(sim)


def test_a_prefill_instance_full_of_hand_offs_waits_instead_of_recomputing_prompts():
    """Prompts longer than one chunk on a prefill instance whose memory hand-offs waiting for
    the decode side's grant fill: it preempted the prompt in progress, re-admitted it at once
    (its blocks were just freed), computed a chunk and preempted it again — 43 % of a heavy
    run's prefill work redone, one request preempted 171 times. It now waits for a transfer
    to free blocks: every prompt token is computed once, no preemption."""
    trace = flood(n=60, prompt=2048)
    sim = Simulation(disagg(kv_dec=600, kv_pre=300, token_budget=512, per_token_s=1e-5),
                     trace)
    watch = Watch(sim)
    req, inst, _ = sim.run()
    watch.assert_held()
    rows = req.to_pandas()
    assert (rows.status == "completed").all()
    pre = inst.to_pandas().set_index("pool").loc["pre"]
    assert pre.preemptions == 0
    assert pre.prefill_tokens == 60 * 2048
    assert (rows.kv_wait_s > 0.5).sum() > 20  # (it was held back: the case this is about)
    assert_drained(sim)


def test_a_decode_instance_with_room_grants_at_once_and_timing_is_unchanged():
    """With room on the decode side the reservation is granted when the transfer can start:
    no wait, and the closed-form exposure of tests/test_disaggregation.py holds."""
    for mode in ("serialized", "layerwise"):
        sim = Simulation(disagg(mode=mode, prefill_s=0.08), make_trace([0.0], [4096], [3]))
        watch = Watch(sim)
        r = sim.run()[0].to_pylist()[0]
        watch.assert_held()
        xfer = 4096 * 131072 / 12.5e9
        assert r["kv_wait_s"] == 0.0
        assert math.isclose(r["kv_transfer_s"], xfer if mode == "serialized" else xfer / 32,
                            rel_tol=1e-9)
        assert_drained(sim)


def test_reservations_are_granted_first_come_first_served():
    """Two prefill instances hand off to one small decode instance: it grants reservations in
    the order they were asked for."""
    sim = Simulation(disagg(kv_dec=300, p_count=2), flood(n=80, prompt=300, output=120))
    dec = sim.fleet.pools["dec"][0]
    asked, granted = [], []
    reserve, grant = dec.reserve, dec._grant

    def spy_reserve(seq, src, now):
        asked.append(seq.req.id)
        return reserve(seq, src, now)

    def spy_grant(seq, now):
        granted.append(seq.req.id)
        grant(seq, now)

    dec.reserve, dec._grant = spy_reserve, spy_grant
    watch = Watch(sim)
    req, _, _ = sim.run()
    watch.assert_held()
    assert len(asked) == 80 and granted == asked
    assert (req.to_pandas().kv_wait_s > 0).sum() > 10  # (most had to wait)
    assert_drained(sim)


# ---------------------------------------------------------------------- random scenarios
@st.composite
def scenarios(draw, failures=False):
    n = draw(st.integers(1, 30))
    gaps = draw(st.lists(st.floats(0, 0.05), min_size=n, max_size=n))
    prompts = draw(st.lists(st.integers(1, 300), min_size=n, max_size=n))
    outputs = draw(st.lists(st.integers(1, 80), min_size=n, max_size=n))
    block = draw(st.sampled_from([1, 4, 16]))
    need = -(-max(p + o for p, o in zip(prompts, outputs)) // block)
    max_seqs = draw(st.integers(1, 16))
    cfg = disagg(
        kv_dec=draw(st.integers(need, 3 * need + 2)), kv_pre=draw(st.integers(need, 3 * need)),
        step_s=STEP_S, prefill_s=PREFILL_S, per_token_s=draw(st.sampled_from([0.0, 1.03e-4])),
        nic_gbps=draw(st.sampled_from([None, 0.1, 1.0, 50.0])),
        mode=draw(st.sampled_from(["layerwise", "serialized"])),
        p_count=draw(st.integers(1, 2)), d_count=draw(st.integers(1, 2)),
        policy=draw(st.sampled_from(["sarathi", "vllm", "orca"])),
        dec_policy=draw(st.sampled_from(["sarathi", "vllm", "orca"])),
        max_seqs=max_seqs, token_budget=draw(st.integers(max(max_seqs, block), 512)),
        block_size=block, router=draw(st.sampled_from(["RoundRobin", "LeastOutstanding",
                                                        "LeastKV"])))
    ids = None
    if draw(st.booleans()):  # prefix caches on both sides; requests share leading blocks
        ids = []
        for k, p in enumerate(prompts):
            m = -(-p // block)  # one id per block
            cut = draw(st.integers(0, m))
            ids.append(list(range(10**6, 10**6 + cut)) + [10**7 + 1000 * k + j
                                                           for j in range(m - cut)])
        for p in cfg["pool"]["pools"].values():
            p["prefix_cache"] = {"enabled": True, "capacity_blocks": draw(
                st.sampled_from([None, 0, 50]))}
    if failures:
        events, spans = [], {}
        for _ in range(draw(st.integers(1, 3))):
            pool = draw(st.sampled_from(["pre", "dec"]))
            count = cfg["pool"]["pools"][pool]["count"]
            ev = {"pool": pool, "instance": draw(st.integers(0, count - 1)),
                  "at_s": draw(st.floats(0.0, 1.0)),
                  "down_s": draw(st.sampled_from([0.05, 0.5]))}
            lo, hi = ev["at_s"], ev["at_s"] + ev["down_s"]
            mine = spans.setdefault((pool, ev["instance"]), [])
            if all(hi <= a or b <= lo for a, b in mine):  # overlapping outages are refused
                mine.append((lo, hi))
                events.append(ev)
        cfg["failures"] = {"policy": draw(st.sampled_from(["retry", "reroute", "drop"])),
                           "retry_delay_s": 0.1, "events": events}
    trace = make_trace(np.cumsum(gaps), prompts, outputs,
                       **({} if ids is None else {"hash_ids": ids}))
    if ids is not None:
        trace.attrs["hash_block_tokens"] = block
    return cfg, trace


def run(cfg, trace, step_mode=False, watch=True):
    sim = Simulation(cfg, trace)
    if step_mode:
        for inst in sim.fleet.instances:
            inst.max_run_steps = 1
    w = Watch(sim) if watch else None
    req, _, end = sim.run()
    if w is not None:
        w.assert_held()
    return sim, req.to_pylist(), end


@settings(max_examples=80, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_accepted_kv_is_always_held_and_every_block_returns(sc):
    cfg, trace = sc
    sim, rows, _ = run(cfg, trace)
    assert [r["request_id"] for r in rows] == list(range(len(trace)))
    assert all(r["status"] == "completed" for r in rows)  # no request is lost
    for r in rows:
        if r["prefill_pool"] is not None:
            assert 0.0 <= r["kv_wait_s"] <= r["kv_transfer_s"]
    assert_drained(sim)
    # jump == step: a reservation granted during a decode run plans its later steps again
    _, step, _ = run(cfg, trace, step_mode=True, watch=False)
    for a, b in zip(rows, step):
        for k in ("first_token_s", "finish_s", "kv_wait_s"):
            x, y = a[k], b[k]
            assert x == y or math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-9) or (
                math.isnan(x) and math.isnan(y)), k


@settings(max_examples=40, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(scenarios(failures=True))
def test_failures_release_reservations_and_conserve_requests(sc):
    cfg, trace = sc
    sim, rows, _ = run(cfg, trace)
    assert [r["request_id"] for r in rows] == list(range(len(trace)))
    assert {r["status"] for r in rows} <= {"completed", "dropped"}
    # every interrupted attempt is accounted for: retried, or counted in a dropped row
    lost = sum(r["attempts"] - (r["status"] == "completed") for r in rows)
    assert lost == sim.failures.interrupted
    assert_drained(sim)


# ---------------------------------------------------------------------- failures
def failing(events, policy="retry", **kw):
    cfg = disagg(mode="layerwise", prefill_s=0.08, **kw)
    cfg["failures"] = {"policy": policy, "retry_delay_s": 1.0, "events": events}
    return cfg


def test_a_decode_failure_during_the_last_prefill_iteration_forgets_the_reservation():
    """The decode instance fails while the iteration completing a prompt streams its KV and
    is back before the prompt is done: the prefill instance asks again then and sends the KV
    whole (the layer-wise start died with the reservation); nothing is lost."""
    cfg = failing([{"pool": "dec", "instance": 0, "at_s": 0.04, "down_s": 0.01}])
    sim = Simulation(cfg, make_trace([0.0], [4096], [3]))
    watch = Watch(sim)
    r = sim.run()[0].to_pylist()[0]
    watch.assert_held()
    assert r["status"] == "completed" and r["attempts"] == 1 and sim.failures.interrupted == 0
    assert r["kv_wait_s"] == 0.0
    assert r["kv_transfer_s"] == pytest.approx(4096 * 131072 / 12.5e9, rel=1e-9)  # whole
    assert_drained(sim)



def test_a_transfer_that_outlives_its_prefill_instance_leaves_no_pin_behind():
    """The second prompt hits the prefill instance's prefix cache (its 8 blocks pinned) and its
    KV is on the wire when that instance fails: the transfer completes, but the pins died with
    the failed instance's (reset) cache, so the decode side must not undo them in its own
    cache when the request finishes (it did: KeyError, found by the property test below)."""
    cfg = disagg(nic_gbps=0.1, block_size=1, router="RoundRobin")
    for p in cfg["pool"]["pools"].values():
        p["prefix_cache"] = {"enabled": True, "capacity_blocks": None}
    cfg["failures"] = {"policy": "retry", "retry_delay_s": 0.1,
                       "events": [{"pool": "pre", "instance": 0, "at_s": 1.05, "down_s": 0.01}]}
    ids = list(range(1, 9))
    trace = make_trace([0.0, 1.0], [8, 8], [2, 2], hash_ids=[ids, ids])
    trace.attrs["hash_block_tokens"] = 1
    sim, rows, _ = run(cfg, trace)
    assert [(r["status"], r["attempts"]) for r in rows] == [("completed", 1)] * 2
    assert rows[1]["prefix_hit_blocks"] == 8 and sim.failures.interrupted == 0
    dec = sim.fleet.instances[1]
    assert dec.role == "decode" and dec.prefix.size_blocks == 8
    assert_drained(sim)

def test_a_prompt_whose_kv_is_on_the_wire_is_shared_on_its_prefill_instance():
    """Request 1 arrives while request 0's KV (the same 128-token prompt, 8 ids) still crosses a
    0.1 Gb/s NIC: request 0 made its 8 full blocks cache entries when its prefill computed them,
    so request 1 finds them and computes only its last block; the prefill instance holds the
    prompt once plus request 1's own copy of that block (before, request 0's entries appeared
    only when its transfer ended: no hit, 16 blocks)."""
    cfg = disagg(nic_gbps=0.1, router="RoundRobin")
    for p in cfg["pool"]["pools"].values():
        p["prefix_cache"] = {"enabled": True, "capacity_blocks": None}
    ids = list(range(1, 9))
    trace = make_trace([0.0, 0.5], [128, 128], [20, 20], hash_ids=[ids, ids])
    trace.attrs["hash_block_tokens"] = 16
    sim, rows, _ = run(cfg, trace)
    assert rows[0]["first_token_s"] > 0.5  # (request 0's KV still on its way at 0.5 s)
    assert [r["prefix_hit_blocks"] for r in rows] == [0, 8]
    assert [r["prefix_hit_tokens"] for r in rows] == [0, 112]
    pre = sim.fleet.instances[0]
    assert pre.role == "prefill" and pre.prefill_tokens == 128 + 16
    assert pre.kv.peak == 8 + 1 and pre.prefix.size_blocks == 8
    assert_drained(sim)


def test_queued_reservations_die_with_the_decode_instance():
    """Two prompts complete in one iteration; the small decode instance grants the first and
    queues the second. It fails during that iteration: both reservations are forgotten and
    asked again when the prompts are done — granted (back by then) or lost (still down)."""
    trace = make_trace([0.0, 0.0], [300, 300], [150, 150])
    back = failing([{"pool": "dec", "instance": 0, "at_s": 0.04, "down_s": 0.01}], kv_dec=30)
    sim = Simulation(back, trace)
    watch = Watch(sim)
    rows = sim.run()[0].to_pandas()
    watch.assert_held()
    assert (rows.status == "completed").all() and (rows.attempts == 1).all()
    assert rows.kv_wait_s.tolist()[0] == 0.0 and rows.kv_wait_s.tolist()[1] > 1.0
    assert_drained(sim)
    down = failing([{"pool": "dec", "instance": 0, "at_s": 0.04, "down_s": 0.5}], kv_dec=30)
    sim = Simulation(down, trace)
    watch = Watch(sim)
    rows = sim.run()[0].to_pandas()
    watch.assert_held()
    assert sim.failures.interrupted == 2  # at 0.08 s, when the prompts were done
    assert (rows.status == "completed").all() and (rows.attempts == 2).all()
    assert_drained(sim)


def test_a_prefill_failure_withdraws_its_waiting_hand_offs():
    """Hand-offs wait on the prefill instance for a full decode instance when the prefill
    instance fails: they are lost and their queued reservations withdrawn; the decode side
    serves the rest and every block returns."""
    cfg = disagg(kv_dec=400)
    cfg["failures"] = {"policy": "retry", "retry_delay_s": 0.5, "events": [
        {"pool": "pre", "instance": 0, "at_s": 0.5, "down_s": 0.2}]}
    sim = Simulation(cfg, flood())
    dec = sim.fleet.pools["dec"][0]
    seen = []
    fail = sim.fleet.pools["pre"][0].fail

    def spy_fail():
        seen.append((len(sim.fleet.pools["pre"][0].waiting_handoffs()), len(dec.reservations)))
        return fail()

    sim.fleet.pools["pre"][0].fail = spy_fail
    watch = Watch(sim)
    rows = sim.run()[0].to_pandas()
    watch.assert_held()
    assert seen[0][0] > 10 and seen[0][1] == seen[0][0]  # waiting hand-offs, all queued
    assert sim.failures.interrupted >= seen[0][0]
    assert (rows.status == "completed").all()
    assert_drained(sim)
