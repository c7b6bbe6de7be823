"""The Router contract and the placement it returns.

A router sees each request once, when a router replica starts on it (`wrpsim.router.service`),
as a `RequestView` (no true output length, no per-model correctness:
`wrpsim.router.requestview`), together with the `FleetView` (`wrpsim.router.view`): the fleet's
pools and instances as scraped metrics show them (`outstanding`, `num_waiting`, `num_running`,
`kv_used_frac`, `outstanding_tokens`, `prefix_match`), never the fleet itself. It returns a
`Placement` naming the instance (of the view) that serves the request, or None to drop it
(recorded with reason ``router_rejected``).

Two-phase construction (style.md): `__init__` takes only config values (Hydra-instantiable and
picklable); `bind(view, rng)` attaches the run's `FleetView` and the router's own random stream
and validates the config against it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from wrpsim.workload.request import Request


@dataclass(frozen=True, slots=True)
class Placement:
    """Where a request runs: `instance` takes it first (prefills, and decodes unless the model
    is disaggregated); `decode_instance` decodes it in a disaggregated fleet (None: let the
    router's `route_decode` pick one)."""

    instance: object  # an InstanceView of the FleetView
    decode_instance: object = None
    delay_s: float = 0.0  # the router's decision latency, added before admission (and to TTFT)


class Router:
    """Chooses a placement for each arriving request.

    Contract: `route` does not advance simulated time, reads `view` without mutating it, draws
    randomness only from `self.rng`, and returns an instance among `view.candidates(request)`
    (the instances whose pool serves the request's model) or None. In a disaggregated fleet the
    decode instance comes from `view.decode_candidates(request)`.

    Most policies only implement `choose(request, candidates)`; the default `route` applies it
    to the prefill-capable candidates and `route_decode` to the decode candidates.
    """

    #: short name recorded in results
    name: str = "router"
    #: False for a policy that never reads the view's scraped metrics (queues, KV use, prefix
    #: index): the run then takes no periodic scrapes for it (they could change nothing). Not
    #: inherited: a subclass reads load unless its own body says otherwise
    reads_load: bool = True
    #: False for a policy that never draws a random number: the run then hands it no random
    #: stream (`bind` gets None: making the stream imports numpy's random module, ~5 ms of a
    #: short run). Not inherited either: a subclass draws unless its own body says otherwise
    draws_random: bool = True
    #: True for a policy whose decision is which model answers (a bandit, an ensemble, a
    #: cost-quality router): on a fleet that serves one model it has nothing to choose, and
    #: the run says so (inherited)
    chooses_models: bool = False

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        for flag in ("reads_load", "draws_random"):  # (declared per class body, not inherited)
            if flag not in cls.__dict__:
                setattr(cls, flag, True)

    def bind(self, fleet, rng: np.random.Generator | None) -> None:
        """Attach the run's `FleetView` (as `self.fleet`) and random stream (None for a router
        whose `draws_random` is False); validate against it."""
        self.fleet = fleet
        self.rng = rng

    def named_categories(self) -> dict:
        """{config field: the request categories it names} for a router whose settings list
        categories (a guard's `block`); the run warns about a name no request of the workload
        has, which would otherwise match nothing in silence. {} by default."""
        return {}

    def choose(self, request: Request, candidates):
        """Pick one of `candidates` (a non-empty list of instances) for `request`."""
        raise NotImplementedError(f"{type(self).__name__} implements neither choose nor route")

    def route(self, request: Request, view) -> Placement | None:
        """Return the placement of `request`, or None to reject it."""
        inst = self.choose(request, view.candidates(request))
        # an instance of the view keeps its `Placement(inst)` (building a frozen dataclass costs
        # more than the rest of a round-robin decision); anything else gets a new one
        p = getattr(inst, "_placement", None)
        return Placement(inst) if p is None else p

    def on_complete(self, request: Request, record: dict) -> None:
        """Called when a request completes, with its result row; default: nothing. Policies
        that learn (bandits) or act after a call (cascades) override it, and may inject
        follow-up requests with `self.fleet.submit(self.fleet.follow_up(request, ...))`."""

    def on_dropped(self, request: Request, record: dict) -> None:
        """Called when a request ends unanswered (its row has status ``dropped`` and a
        `drop_reason`); default: nothing. Multi-call policies use it to resolve a fan-out
        whose call was lost."""

    def summary_figures(self) -> dict:
        """The policy's own measured figures for `summary.json` at the end of the run (e.g. a
        verifier's error rates); default: none."""
        return {}

    def route_decode(self, request: Request, view):
        """The decode instance of a disaggregated request (called after `route`)."""
        return self.choose(request, view.decode_candidates(request))
