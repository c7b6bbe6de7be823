# cython: nonecheck=True
# (compiled: an instance or sequence typed in the .pxd that is None raises instead of being read)
"""From an arriving request to an instance: routing, decision delay, follow-up calls.

Instances that failed (`wrpsim.failures`) are not among any router's candidates; a request
whose placement failed during the decision delay is routed again, and one that no instance can
take goes to the failure policy (`FailureInjector.unavailable`).

The router is a service (`wrpsim.router.service`): a request first waits for a router replica
and holds it for the decision's service time. When its replica starts on it, the dispatcher
brings the router's view up to date (`wrpsim.router.feed`) and asks the router — with the
request as a `RequestView` and the `FleetView`, never the fleet — for a `Placement` of view
instances, which it maps back to the fleet's and counts as the router's own dispatches. It then
applies the rest of the router's service time, the policy's decision latency
(`Placement.delay_s`) and the serving engine's front-end time (`Instance.frontend`: the API
server's HTTP handling and tokenization, queued behind the prompts it is already tokenizing,
before the engine sees the request), all counted
in the request's TTFT (the routing part, queue + service + decision latency, is the row's
`route_s`), checks that the request fits the chosen instances, and admits it
(colocated, or prefill + decode when disaggregated). While a request waits out those delays it
is counted on its instance by the oracle view (`ViewFeed.entering` / `entered`), and a
disaggregated request on its decode instance until its KV cache arrives there
(`ViewFeed.decoding_on` / `decode_done`). It also gives
routers two hooks for policies that act after a request ends (cascades, bandits, multi-call):

- `Router.on_complete(request, record)` is called with the request's result row (a dict of
  `REQUEST_SCHEMA` columns) when a request completes, `Router.on_dropped(request, record)` when
  it ends unanswered (rejected, longer than the model's context length — `drop_reason`
  ``context`` —, carrying images to a text-only model — ``modality``, `wrpsim.pool.vision` —,
  too large for any instance's KV cache, or lost to an instance failure);
- `view.submit(request, delay_s=0.0)` injects a new request — typically made with
  `view.follow_up(parent, **changes)` — which is routed like an arrival and recorded as its own
  row with `parent_id` set.

With the router's semantic cache on (`wrpsim.router.semcache`), a workload request is looked up
when its replica starts on it: a hit is answered `lookup_s` after the service ends, without the
policy or the fleet; a miss is routed with `lookup_s` added to its routing time.
"""

from __future__ import annotations

import dataclasses
import math

from wrpsim.errors import WrpsimError
from wrpsim.metrics.qoe import QoEMeter
from wrpsim.pool.vision import admit_images
from wrpsim.pool.wakeup import wake
from wrpsim.router.base import Router
from wrpsim.router.checked import NO_CANDIDATE, RouteChecker, is_user_router
from wrpsim.router.feed import ViewFeed
from wrpsim.router.requestview import RequestView, ground_truth
from wrpsim.router.service import RouterService, ServiceSpec
from wrpsim.router.view import ViewSpec


class Dispatcher:
    """Routes and admits requests for one simulation (see module docstring)."""

    def __init__(self, env, fleet, router, log, first_free_id: int, failures=None, feed=None,
                 service=None, cache=None):
        """`failures`: the run's `wrpsim.failures.FailureInjector`, or None; `feed`: the
        `ViewFeed` the router was bound to (default: a fresh oracle view); `service`: the
        router's `RouterService` (default: one free replica); `cache`: the router's
        `SemanticCache`, or None."""
        self.env = env
        self.fleet = fleet
        self.router = router
        self.log = log
        self.failures = failures
        self.feed = feed or ViewFeed(env, fleet, ViewSpec("oracle"))
        self.service = service or RouterService(ServiceSpec())
        view = self.feed.view
        view.submit = lambda req, delay_s=0.0: fleet.submit(ground_truth(req), delay_s)
        view.follow_up = lambda parent, **changes: RequestView(self.follow_up(parent, **changes))
        if failures is not None:
            failures.resend = self.submit
            if self.feed.live_view:  # the oracle counts requests on their decode instance
                failures.on_lost = self.feed.decode_done
        self._next_id = first_free_id
        self._admit_due_fn = self._admit_due  # (bound once: `wake` gets it for most requests)
        fleet.submit = self.submit
        fleet.follow_up = self.follow_up
        if type(router).on_complete is not Router.on_complete:
            log.on_complete.append(router.on_complete)
        if type(router).on_dropped is not Router.on_dropped:
            log.on_dropped.append(router.on_dropped)
        self.cache = cache
        if cache is not None:
            log.on_complete.append(cache.on_complete)
        if is_user_router(router):  # a user's router is held to the contract, one line per
            # breach; the shipped ones are called directly (`wrpsim.router.checked`)
            self._routed = RouteChecker(router, self.feed, fleet, failures)

    def follow_up(self, parent, **changes):
        """A new request derived from `parent` (fresh id, `parent_id` = parent's id, arriving now
        unless `arrival_s` is given); `changes` override any other `Request` field."""
        fields = {"arrival_s": self.env.now, **changes, "id": self._next_id,
                  "parent_id": parent.id}
        self._next_id += 1
        return dataclasses.replace(ground_truth(parent), **fields)

    def submit(self, req, delay_s: float = 0.0) -> None:
        """Route `req` now, or after `delay_s` simulated seconds."""
        if delay_s > 0:
            wake(self.env, delay_s, lambda _e: self.dispatch(req))
        else:
            self.dispatch(req)

    def dispatch(self, req) -> None:
        """A request reaches the router: queue for a replica, then decide (`_decide`)."""
        self.log.open[req.id] = req
        now = self.env._now
        if self.service.free:
            self.service.decisions += 1
            self._decide(req, now, now)
            return
        start, end = self.service.take(now)
        if start > now:
            wake(self.env, start - now, lambda _e: self._decide(req, now, end))
        else:
            self._decide(req, now, end)

    def _decide(self, req, came: float, end: float) -> None:
        """Route `req` on the view as it is now and admit it where the router says, after the
        rest of the service time (`end`), the decision latency and the front end."""
        lookup = 0.0
        if self.cache is not None and req.parent_id is None and req.id not in self.cache.looked_up:
            hit = self.cache.lookup(req, self.env._now)
            lookup = self.cache.spec.lookup_s if req.id in self.cache.looked_up else 0.0
            if hit is not None:
                self._cached(req, hit, end + lookup, end - came + lookup)
                return
        self.feed.refresh()
        placement = self._routed(self.router.route, req)
        if placement is False:
            return
        now = self.env._now
        end += lookup
        self.log.route_s[req.id] = end - came + (placement.delay_s if placement else 0.0)
        if placement is None:  # refused when the decision is out (its service time spent)
            if end > now:
                wake(self.env, end - now, self._reject_due, req)
            else:
                self.log.dropped(req, self.fleet.model_of(req), "router_rejected", now)
            return
        feed = self.feed
        inst = feed.live(placement.instance)
        feed.sent(placement.instance, req)
        dec = placement.decode_instance
        if dec is not None:
            feed.sent(dec, req)
            dec = feed.live(dec)
            if feed.live_view:
                feed.decoding_on(dec, req)
        delay = end - now + placement.delay_s
        tokens = req.prompt_tokens
        cap = inst.max_context
        if cap and tokens > cap:  # refused for its length once tokenized (`_fits`, context):
            tokens = cap + 1  # its tokenizer time is bounded by the context it overflows, so
            # a nonsense length (2^53 tokens) cannot hold the API server for centuries
        delay += inst.frontend.delay_s(now + delay, tokens, inst.stream_rate())
        if delay > 0:
            if feed.live_view:  # (the oracle's count: a scrape view does not see the front end)
                feed.entering(inst, req)
            wake(self.env, delay, self._admit_due_fn, (req, inst, dec, delay))
        else:
            self._admit(req, inst, dec)

    def _reject_due(self, ev) -> None:
        """The router's refusal of `ev.value` is out: drop it now (reason router_rejected)."""
        req = ev.value
        self.log.dropped(req, self.fleet.model_of(req), "router_rejected", self.env._now)

    def _admit_due(self, ev) -> None:
        """The front-end delay of `_decide` is over: admit (`ev.value`: `_admit`'s arguments),
        after telling the feed the request has left the front (`ViewFeed.entered`).
        (A bound method and a tuple: no closure cells in `_decide`, the hot path.)"""
        args = ev.value
        if self.feed.live_view:
            self.feed.entered(args[1], args[0])
        self._admit(*args)

    def _cached(self, req, hit, done: float, route_s: float) -> None:
        """Answer `req` from the semantic cache at `done` (routing took `route_s`)."""
        self.log.route_s[req.id] = route_s
        cache, log, router = self.cache, self.log, self.router

        def answer(_e=None):
            qoe = math.nan
            if cache.qoe is not None:
                meter = QoEMeter(req.arrival_s, cache.qoe[0], cache.qoe[1], req.output_tokens)
                qoe = meter.finish(self.env.now)
            cache.answered(req, self.env.now, hit)
            log.cached(req, hit.model, self.env.now, qoe, skip=(router.on_complete,))

        if done > self.env.now:
            self.env.timeout(done - self.env.now).callbacks.append(answer)
        else:
            answer()

    def _routed(self, route, req):
        """`route(request view, fleet view)`, or False when it found no candidate because every
        one is down (the request then goes to the failure policy)."""
        try:
            return route(RequestView(req), self.feed.view)
        except WrpsimError:
            raise
        except NO_CANDIDATE:  # no candidate: all are down
            if not self.fleet.down_count or self.failures is None:
                raise
            self.failures.unavailable(req)
            return False

    def _admit(self, req, inst, dec, delay: float = 0.0) -> None:
        """Admit `req` on `inst` (and hand it to `dec` when disaggregated); every path that does
        not hand it to `dec` tells the feed (`ViewFeed.decode_done`) so that the oracle stops
        counting it there."""
        if inst.down or (dec is not None and dec.down):  # failed during the decision delay
            if dec is not None:
                self.feed.decode_done(req)
            if delay > 0:
                self.dispatch(req)
            else:
                self.failures.unavailable(req)
            return
        if req.images and not admit_images(req, inst):  # text-only model (wrpsim.pool.vision)
            if dec is not None:
                self.feed.decode_done(req)
            self.log.dropped(req, self.fleet.model_of(req), "modality", self.env.now)
            return
        need = req.prompt_tokens + req.output_tokens
        if inst.role != "prefill":
            if dec is not None:  # (a decode instance for a colocated one: not handed off)
                self.feed.decode_done(req)
            if self._fits(req, inst, need):
                inst.admit(req)
            return
        # a prefill instance holds the prompt's KV and computes the first token (the one a
        # disaggregated vLLM prefill request asks for: max_tokens 1); its decode instance
        # holds the prompt's and every output token's, as a colocated one does
        if not self._fits(req, inst, req.prompt_tokens + 1, req.prompt_tokens):
            if dec is not None:
                self.feed.decode_done(req)
            return
        if dec is None:
            dec = self._routed(self.router.route_decode, req)
            if dec is False:
                return
            if dec is not None:
                self.feed.sent(dec, req)
                dec = self.feed.live(dec)
                self.feed.decoding_on(dec, req)
        if dec is None:
            self.log.dropped(req, self.fleet.model_of(req), "router_rejected", self.env.now)
        elif self._fits(req, dec, need):
            inst.admit_disaggregated(req, dec)
        else:
            self.feed.decode_done(req)

    def _fits(self, req, inst, context: int, kv: int | None = None) -> bool:
        """Whether `req` fits `inst`: `context` tokens within its `max_context` and `kv`
        tokens (default `context`) within one sequence's KV capacity; if not, record it as
        dropped (``context`` / ``exceeds_kv_capacity``)."""
        if inst.max_context and context > inst.max_context:
            self.log.dropped(req, self.fleet.model_of(req), "context", self.env.now)
            return False
        if (context if kv is None else kv) > _seq_kv_tokens(inst):
            self.log.dropped(req, self.fleet.model_of(req), "exceeds_kv_capacity", self.env.now)
            return False
        return True


def _seq_kv_tokens(inst) -> int:
    """KV tokens one sequence can hold on `inst`: its capacity, or one attention group's share
    of it with data-parallel attention (`attn_dp`: each group holds its own sequences); beside
    its window or Mamba-state blocks where the pool pages them (`wrpsim.pool.window`)."""
    group = inst.kv.capacity // getattr(inst.latency, "adp", 1)
    win = getattr(inst, "_win", None)
    return win.max_tokens(group) if win is not None else group * inst.kv.block_size
