"""The simulator's side of the router's view: scraping the fleet into a `FleetView`.

`ViewFeed` owns the live fleet and the `FleetView` built from it; the router gets only the view
(`wrpsim.router.view`). With `kind: scrape` a SimPy process takes a snapshot of every instance at
t = 0, `interval_s`, 2·`interval_s`, …; a snapshot becomes the view's when it is `delay_s` old
(`refresh`, called by the dispatcher before each decision). With `kind: oracle` the view reads
every instance when the policy does, and counts as waiting there the requests routed to it and
still in their decision delay or the engine's front end (`entering` / `entered`, from the
dispatcher), which the instance itself has not seen yet: a live view of where requests are
going, so that a burst does not pile onto the instance that looked idle. In a disaggregated
fleet a request's decode instance counts it the same way (as waiting, with its prompt tokens)
from the routing decision until its KV cache arrives there and the instance counts it itself
(`decoding_on` / `decode_done`: `HandoffMixin.receive`), or until the attempt ends first —
dropped at admission, lost to a failure, or routed again. A scrape does not see
them (an engine's metrics do not count requests in its API server); the router's own dispatch
counts since the scrape cover them until the next one. The dispatcher also tells the feed where
each request was sent (`sent`: those counts and the prefix index) and turns the view's instances
back into the fleet's (`live`).

The scrape process never ends on its own; `idle(env)` tells the run loop when the scrape is the
only thing left to happen, so a run without a horizon ends at its last real event, exactly as it
would without the feed.
"""

from __future__ import annotations

import math
from collections import deque
from heapq import heappush

from simpy.events import NORMAL, Event

from wrpsim.pool.fleet import Candidates
from wrpsim.router.prefixindex import PrefixIndex
from wrpsim.router.view import FleetView, InstanceView, ViewSpec


def _reading(inst) -> tuple:
    """(outstanding, num_waiting, num_running, kv_used_frac, waiting prompt tokens) of `inst`
    (zeros while down)."""
    if inst.down:
        return 0, 0, 0, 0.0, 0
    return (inst.outstanding, inst.num_waiting, inst.num_running, inst.kv_used_frac,
            _waiting_tokens(inst))


def _last_tick_before(t: float, dt: float, until: float) -> float:
    """The last of the ticks t, t + dt, (t + dt) + dt, … before `until` (t itself when none
    is), by the same additions; past a million ticks, by one multiplication to within a tick,
    then additions (a gap that long was a million scrapes before)."""
    if (until - t) > 1e6 * dt:
        t += max(0.0, math.floor((until - t) / dt) - 2.0) * dt
    while t + dt < until:
        if t + dt == t:  # (a clock past 2^53 ticks cannot tell them apart)
            break
        t += dt
    return t


def _waiting_tokens(inst) -> int:
    """Prompt tokens of the requests waiting for admission on `inst`."""
    return sum(s.req.prompt_tokens for s in inst.waiting)


def _index_capacity(inst, block_size: int, hash_block_tokens: int) -> int:
    """Hash ids the router's prefix index keeps for `inst`: as many as the engine's prefix cache
    can hold — its HBM share (`capacity_blocks`, else the whole KV cache) plus its host-DRAM
    tier — as an operator would size a gateway's index (0 without a prefix cache). A shared
    remote pool is not per instance and is not counted."""
    cache = inst.prefix
    if cache is None or not hash_block_tokens:
        return 0
    blocks = inst.kv.capacity if cache.capacity is None else min(cache.capacity,
                                                                   inst.kv.capacity)
    if cache.dram is not None:
        blocks += cache.dram.capacity
    return blocks * block_size // hash_block_tokens


class _Live:
    """The oracle's snapshot: each field read from the instance when the policy reads it, plus
    the `front` requests (`front_tokens` prompt tokens) routed to it and not yet admitted or
    dropped, counted as waiting."""

    __slots__ = ("_inst", "_view", "front", "front_tokens")

    def __init__(self, inst, view):
        self._inst, self._view = inst, view
        self.front = self.front_tokens = 0

    def count(self, req, n: int) -> None:
        """Count `req` as waiting here (`n` = 1) or no longer (`n` = −1)."""
        self.front += n
        self.front_tokens += n * req.prompt_tokens

    def __getitem__(self, k: int):
        i = self._inst
        if k == 0:
            return i.outstanding + self.front
        if k == 1:
            return i.num_waiting + self.front
        if k == 2:
            return i.num_running
        if k == 3:
            return i.kv_used_frac
        if k == 4:
            return _waiting_tokens(i) + self.front_tokens
        # no dispatches "since the scrape": the view is live
        return self._view._sent if k == 5 else self._view._sent_tokens


class ViewFeed:
    """Fills a `FleetView` from the live fleet (see the module docstring)."""

    def __init__(self, env, fleet, spec: ViewSpec, hash_block_tokens: int = 0,
                 scrape: bool = True):
        """`scrape` False: the router reads no scraped metrics (`Router.reads_load`), so the
        view is read once and never scraped again."""
        self.env = env
        self.spec = spec
        self._live = {i.name: i for i in fleet.instances}
        by_pool = {s.name: s for s in fleet.specs}
        self._views: dict[str, InstanceView] = {}
        for inst in fleet.instances:
            spec_p = by_pool[inst.pool]
            if spec.kind == "oracle":
                prefix = inst.prefix_match
            else:
                prefix = PrefixIndex(_index_capacity(inst, spec_p.scheduler.block_size,
                                                     hash_block_tokens))
            self._views[inst.name] = InstanceView(inst, spec_p, prefix)
        cands, decode = fleet.candidate_lists()
        self.view = FleetView(fleet, spec, self._views, lambda: env.now,
                              self._mirror(cands), self._mirror(decode))
        fleet.health_watchers.append(self._health)
        self._pending: deque = deque()  # (visible at, readings) of delayed scrapes
        self.ticking = spec.kind == "scrape" and scrape
        self.live_view = spec.kind != "scrape"  # the oracle's
        self._front: dict[str, _Live] = {}  # oracle: instance name -> its live reading
        #: oracle: request id -> the live reading of the decode instance counting it
        self.decoding: dict[int, _Live] = {}
        if spec.kind != "scrape":
            for n, v in self._views.items():
                v._s = self._front[n] = _Live(self._live[n], v)
            for inst in fleet.instances:
                inst.on_received = self.decode_done
        else:
            self._scrape()  # a router that reads no load keeps this first reading
            if self.ticking:
                env.process(self._scraper())

    def _mirror(self, lists: dict) -> dict:
        """Candidate lists of the views of the fleet's candidate lists (all up at the start)."""
        out = {}
        for key, c in lists.items():
            m = Candidates(self._views[i.name] for i in c.every)
            m.model, m.key = c.model, c.key
            out[key] = m
        return out

    def _health(self, inst, down: bool) -> None:
        object.__setattr__(self._views[inst.name], "down", down)  # read-only to user routers
        self.view.health_changed()

    def _scraper(self):
        """Scrape at t = interval_s, 2·interval_s, … (each tick one addition after the last, as
        SimPy's timeouts add them), skipping the ticks nobody would see: a decision happens at
        an event, at the earliest the next one on the heap (T), and reads the last scrape
        published by then — the last tick at or before T - `delay_s`, so every tick before the
        last one before T - `delay_s` is superseded before anyone reads it (a reading depends
        on the time too: a decode run's KV grows step by step). A sparse workload or a long
        router decision otherwise stepped through every second of its idle stretches."""
        env, dt, delay = self.env, self.spec.interval_s, self.spec.delay_s
        queue = env._queue
        while True:
            t = env._now + dt
            if queue and t + dt < queue[0][0] - delay:
                t = _last_tick_before(t, dt, queue[0][0] - delay)
            ev = Event(env)
            ev._ok, ev._value = True, None
            heappush(queue, (t, NORMAL, next(env._eid), ev))  # (a timeout due at exactly t)
            yield ev
            self._scrape()

    def _scrape(self) -> None:
        """Read every instance now; publish now or after `delay_s`."""
        readings = [(v, (*_reading(self._live[n]), v._sent, v._sent_tokens))
                    for n, v in self._views.items()]
        if self.spec.delay_s > 0:
            self._pending.append((self.env.now + self.spec.delay_s, readings))
        else:
            self._install(readings)

    @staticmethod
    def _install(readings) -> None:
        for v, s in readings:
            v._s = s

    def refresh(self) -> None:
        """Bring the view up to now before a decision (the oracle's is always live)."""
        pend = self._pending
        while pend and pend[0][0] <= self.env._now:  # (no delayed scrape: the clock unread)
            self._install(pend.popleft()[1])

    def sent(self, view_inst, req) -> None:
        """The router sent `req` to `view_inst`: count it and remember its prefix."""
        view_inst._sent += 1
        view_inst._sent_tokens += req.prompt_tokens
        p = view_inst._prefix
        if req.hash_ids and isinstance(p, PrefixIndex):
            p.sent(req.hash_ids)

    def entering(self, inst, req) -> None:
        """`req` was routed to the fleet's `inst` and waits out its decision delay and front
        end before `inst` admits it: the oracle counts it there (a scrape does not)."""
        lv = self._front.get(inst.name)
        if lv is not None:
            lv.count(req, 1)

    def entered(self, inst, req) -> None:
        """`req`'s delay before `inst` is over (`Dispatcher._admit` runs next, whatever it
        then does with it: admit, drop or route again): no longer counted by `entering`."""
        lv = self._front.get(inst.name)
        if lv is not None:
            lv.count(req, -1)

    def decoding_on(self, inst, req) -> None:
        """`req` was routed to decode on the fleet's `inst`: the oracle counts it there as
        waiting until `decode_done` (a scrape does not). A request that will not be handed off
        (one output token: its prefill instance answers it) is not counted."""
        lv = self._front.get(inst.name)
        if lv is not None and req.output_tokens > 1:
            self.decode_done(req)  # (counted once, where it was routed last)
            lv.count(req, 1)
            self.decoding[req.id] = lv

    def decode_done(self, req) -> None:
        """`req`'s decode instance counts it itself now (its KV cache arrived), or the attempt
        counted by `decoding_on` ended before (dropped, lost, routed again): stop counting it."""
        lv = self.decoding.pop(req.id, None)
        if lv is not None:
            lv.count(req, -1)

    def live(self, view_inst):
        """The fleet's instance behind a view's instance (None stays None)."""
        return None if view_inst is None else self._live[view_inst.name]

    def idle(self, env) -> bool:
        """True when nothing but the scrape process is left to happen."""
        return len(env._queue) <= (1 if self.ticking else 0)  # simpy's event heap
