"""Failure what-ifs: instances that crash and come back, and what happens to their requests.

Configured by the top-level `failures` key (null: no failures)::

    failures:
      policy: retry        # retry | reroute | drop: what happens to a request a failure interrupts
      retry_delay_s: 1.0   # retry: the client re-sends after this back-off
      max_retries: 3       # a request whose attempts were lost more often than this is lost
      events:              # scheduled outages
        - {pool: h100, instance: 0, at_s: 600, down_s: 300}   # down_s null: never repaired
      mtbf_s: null         # random failures: every instance of `pools` fails after an
      mttr_s: 600          #   exponential up time (mean mtbf_s) and is repaired after an
      pools: null          #   exponential repair time (mean mttr_s); pools null = all

When an instance fails (`wrpsim.pool.failure`), every request on it — queued, prefilling,
decoding, or whose KV cache reaches it while it is down — is *interrupted*. By policy it is

- `retry`: sent again by the client after `retry_delay_s`, through the router (which no longer
  sees the failed instance), keeping its original arrival time, so its TTFT and end-to-end
  latency include the lost attempt and the back-off;
- `reroute`: re-dispatched by the serving layer at once (the same, without back-off);
- `drop`: lost — recorded with status ``dropped`` and drop_reason ``instance_failed``.

A request interrupted more than `max_retries` times is lost the same way. Nothing disappears:
each request ends as exactly one row (completed, dropped or in flight) whose `attempts` counts
the times it was sent to an instance and whose `gpu_s` / `energy_j` / `cost_usd` include the
work its lost attempts burnt. A request routed while no instance can take it (every candidate
down) is retried after the back-off under `retry` (up to `max_retries` times) and otherwise
dropped with reason ``no_healthy_instance``.

Random failures are drawn from the run's seed (one stream per instance) and only start before
the last arrival of the workload (or the horizon), so a run still ends; a repair in progress
then still completes.
"""

from __future__ import annotations

from wrpsim.errors import ConfigError, check_keys, number, unknown_choice, warn
from wrpsim.rng import stream

KEYS = ("policy", "retry_delay_s", "max_retries", "events", "mtbf_s", "mttr_s", "pools")
#: defaults of the retry policy's keys (conf/failures/*.yaml give the same)
RETRY_DELAY_S, MAX_RETRIES = 1.0, 3
EVENT_KEYS = ("pool", "instance", "at_s", "down_s")
POLICIES = ("drop", "reroute", "retry")


class FailureInjector:
    """Schedules instance failures and handles the requests they interrupt (module docstring)."""

    def __init__(self, env, fleet, log, cfg: dict, seed: int, last_arrival_s: float):
        if not isinstance(cfg, dict):
            raise ConfigError("failures must be a mapping (see wrpsim/failures.py) or null")
        check_keys(cfg, KEYS, "failures")
        self.env, self.fleet, self.log = env, fleet, log
        self.policy = cfg.get("policy", "retry")
        if self.policy not in POLICIES:
            raise unknown_choice("failures.policy", self.policy, POLICIES)
        self.retry_delay_s = number("failures.retry_delay_s",
                                    cfg.get("retry_delay_s", RETRY_DELAY_S), 0, finite=True)
        mr = cfg.get("max_retries", MAX_RETRIES)
        if isinstance(mr, bool) or not isinstance(mr, int) or mr < 0:
            raise ConfigError(f"failures.max_retries must be an integer >= 0, got {mr!r}")
        self.max_retries = mr
        # a policy's unread key set away from its default would change nothing (a warning, not
        # an error: a sweep over policy and retry_delay_s runs every pair)
        if self.policy != "retry" and self.retry_delay_s != RETRY_DELAY_S:
            warn(f"failures.retry_delay_s={cfg.get('retry_delay_s')} applies only to "
                 f"failures.policy=retry (the client's back-off); with policy {self.policy} it "
                 f"changes nothing")
        if self.policy == "drop" and mr != MAX_RETRIES:
            warn(f"failures.max_retries={mr} changes nothing with failures.policy=drop (every "
                 f"interrupted request is dropped); it applies to retry and reroute")
        self.resend = None  # the dispatcher's submit(request, delay_s): set by the dispatcher
        #: callable(request) told first when an attempt is lost (the dispatcher's, under the
        #: oracle view: `ViewFeed.decode_done`), or None
        self.on_lost = None
        self.failures = 0
        self.interrupted = 0
        #: failure-schedule timeouts not yet fired: they alone do not prolong a run (`sim`)
        self.pending = 0
        self._not_started: dict[int, float] = {}  # scheduled outages (index: at_s) to come
        self._outages: dict[int, list] = {}  # id(instance) -> [(event index, at, end)]
        self._tries: dict[int, int] = {}
        for inst in fleet.instances:
            inst.lost_handler = self.lost
        events = cfg.get("events")
        if events is not None and (isinstance(events, (str, dict))
                                   or not isinstance(events, (list, tuple))):
            raise ConfigError(f"failures.events must be a list of outages like "
                              f"[{{pool: h100, instance: 0, at_s: 600, down_s: 300}}], "
                              f"got {events!r}")
        for k, ev in enumerate(events or []):
            self._schedule(k, ev)
        mtbf = number("failures.mtbf_s", cfg.get("mtbf_s"), 0, strict_lo=True, finite=True,
                      or_null=True)
        if not events and mtbf is None:
            raise ConfigError("failures: nothing would fail: give failures.events (scheduled "
                              "outages, failures=scheduled) or failures.mtbf_s (random crashes, "
                              "failures=random); failures=none runs without failures")
        self._random_until = last_arrival_s if mtbf is not None else None
        if mtbf is None:  # (the random crashes' keys, set without them, would do nothing; the
            # defaults of conf/failures/random.yaml, mttr_s 600 and pools null, are not "set")
            idle = [k for k, default in (("mttr_s", 600), ("pools", None))
                    if cfg.get(k) is not None and cfg.get(k) != default]
            if idle:
                raise ConfigError(f"failures.{idle[0]} applies to random crashes only, which "
                                  f"failures.mtbf_s turns on (failures=random); scheduled "
                                  f"outages name their pool and down_s in failures.events")
        if mtbf is not None:
            mttr = number("failures.mttr_s", cfg.get("mttr_s", 600.0), 0, strict_lo=True,
                          finite=True)
            for inst in self._random_targets(cfg.get("pools")):
                rng = stream(seed, f"failures/{inst.name}")
                env.process(self._random(inst, rng, mtbf, mttr, last_arrival_s))

    # ------------------------------------------------------------------ configuration
    def _instance(self, where: str, pool, index):
        pools = self.fleet.pools
        if pool not in pools:
            err = unknown_choice(f"{where}.pool", pool, sorted(pools))
            # (failures=scheduled's example event names the default fleet's pool `h100`)
            k = where.rpartition("[")[2].rstrip("]")
            hint = f" (set it with failures.events.{k}.pool=NAME)" if k.isdigit() else ""
            raise ConfigError(f"{err}{hint}")
        n = len(pools[pool])
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < n:
            raise ConfigError(f"{where}.instance must be an integer in [0, {n - 1}] "
                              f"(pool {pool} has {n} instances), got {index!r}")
        return pools[pool][index]

    def _schedule(self, k: int, ev) -> None:
        where = f"failures.events[{k}]"
        if not isinstance(ev, dict):
            raise ConfigError(f"{where} must be a mapping with keys {', '.join(EVENT_KEYS)}")
        check_keys(ev, EVENT_KEYS, where)
        inst = self._instance(where, ev.get("pool"), ev.get("instance", 0))
        at = number(f"{where}.at_s", ev.get("at_s"), 0, finite=True)
        down = number(f"{where}.down_s", ev.get("down_s"), 0, strict_lo=True, finite=True,
                      or_null=True)

        end = float("inf") if down is None else at + down
        for j, a, b in self._outages.setdefault(id(inst), []):
            if at < b and a < end:  # the shorter one's repair would end the longer one early
                def span(lo, hi):
                    return f"[{lo:g}, {hi:g}) s" if hi != float("inf") else f"[{lo:g} s, never)"
                raise ConfigError(
                    f"{where} ({span(at, end)}) overlaps failures.events[{j}] ({span(a, b)}) on "
                    f"pool {ev.get('pool')} instance {ev.get('instance', 0)}: give one outage "
                    f"per stretch of down time")
        self._outages[id(inst)].append((k, at, end))
        self._not_started[k] = at

        def outage():
            yield self._wait(at)
            del self._not_started[k]
            self.fail(inst)
            if down is not None:
                yield self._wait(down)
                now = self.env.now  # an outage that starts as this one ends keeps it down
                if not any(j != k and a <= now < b for j, a, b in self._outages[id(inst)]):
                    self.fleet.set_down(inst, False)

        self.env.process(outage())

    def _random_targets(self, pools) -> list:
        if pools is None:
            return list(self.fleet.instances)
        if isinstance(pools, str) or not isinstance(pools, (list, tuple)) or not pools:
            raise ConfigError(f"failures.pools must be a non-empty list of pool names or null "
                              f"(every pool), got {pools!r}; valid choices: "
                              f"{', '.join(sorted(self.fleet.pools))}")
        out = []
        for p in pools:
            if p not in self.fleet.pools:
                raise unknown_choice("failures.pools", p, sorted(self.fleet.pools))
            out.extend(self.fleet.pools[p])
        return out

    def _random(self, inst, rng, mtbf: float, mttr: float, until: float):
        while True:
            up = float(rng.exponential(mtbf))
            if self.env.now + up >= until:
                return
            yield self._wait(up)
            self.fail(inst)
            yield self._wait(float(rng.exponential(mttr)))
            self.fleet.set_down(inst, False)

    def _wait(self, delay: float):
        """A timeout of the failure schedule, counted in `pending` until it fires."""
        self.pending += 1
        ev = self.env.timeout(delay)
        ev.callbacks.append(self._fired)
        return ev

    def _fired(self, _ev) -> None:
        self.pending -= 1

    # ------------------------------------------------------------------ failures
    def fail(self, inst) -> None:
        """Take `inst` down now and handle the requests it held."""
        if inst.down:
            return
        self.failures += 1
        for seq in self.fleet.set_down(inst, True):
            self.lost(seq, inst)

    def lost(self, seq, inst) -> None:
        """`seq`'s attempt died with `inst`: retry, reroute or drop its request."""
        req = seq.req
        if self.on_lost is not None:
            self.on_lost(req)
        prior = self.log.retried.setdefault(req.id, [0, 0.0, 0.0, 0.0])
        prior[0] += 1
        prior[1] += seq.gpu_s
        prior[2] += seq.energy_j
        prior[3] += seq.cost_usd
        self.interrupted += 1
        if self.policy == "drop" or prior[0] > self.max_retries:
            self.log.dropped(req, self.fleet.model_of(req), "instance_failed", self.env.now)
        else:
            self.resend(req, self.retry_delay_s if self.policy == "retry" else 0.0)

    def unavailable(self, req) -> None:
        """No instance could take `req` (its candidates are all down)."""
        n = self._tries.get(req.id, 0) + 1
        self._tries[req.id] = n
        if self.policy == "retry" and n <= self.max_retries:
            self.resend(req, self.retry_delay_s)
        else:
            self.log.dropped(req, self.fleet.model_of(req), "no_healthy_instance", self.env.now)

    def summary(self, end: float) -> dict:
        """instance_failures, instance_downtime_s, availability (up instance-time share); warns
        about scheduled outages that never started (the run ended before their `at_s`) and
        about random failures drawn over less than half the run (the last arrival came early:
        a closed loop without a horizon)."""
        if self._not_started:
            from wrpsim.errors import warn

            late = ", ".join(f"failures.events[{k}] (at_s {at:g})"
                             for k, at in sorted(self._not_started.items()))
            warn(f"{late}: the run ended at {end:.0f} s, when its last request finished, before "
                 f"the outage began; it did not happen")
        until = self._random_until
        if until is not None and end > 0 and until < 0.5 * end:
            from wrpsim.errors import warn

            warn(f"failures.mtbf_s: random failures start only until {until:.0f} s, the "
                 f"workload's last arrival time, while the run lasted {end:.0f} s (a closed "
                 f"loop's and a session's later rounds are sent as the run goes, after that "
                 f"time, and an overloaded fleet drains its queue after it); "
                 f"{self.failures} failed — give sim.horizon_s to draw them over the whole run")
        insts = self.fleet.instances
        return failure_summary(self.failures, sum(i.downtime(end) for i in insts), len(insts),
                               end)


def failure_summary(failures: int, down: float, instances: int, end: float) -> dict:
    """instance_failures, instance_downtime_s, availability (up share of instance-time) of a
    run that ended at `end`; a run without a failure model reports 0, 0 and 1 (`wrpsim.sim`)."""
    return {
        "instance_failures": failures,
        "instance_downtime_s": down,
        "availability": 1.0 - down / (instances * end) if end > 0 and instances else None,
    }
