"""The Router contract and the placement it returns.

A router sees each request once, at its arrival, together with the *fleet view*: the fleet's
pools and instances with their read-only load signals (`outstanding`, `num_waiting`,
`num_running`, `kv_used_frac`). It returns a `Placement` naming the instance that serves the
request, or None to drop it (recorded with reason ``router_rejected``).

Two-phase construction (style.md): `__init__` takes only config values (Hydra-instantiable and
picklable); `bind(fleet, rng)` attaches the run's fleet and the router's own random stream and
validates the config against the fleet.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass

import numpy as np

from wrpsim.workload.request import Request


@dataclass(frozen=True, slots=True)
class Placement:
    """Where a request runs: the instance that prefills and decodes it."""

    instance: object


class Router(abc.ABC):
    """Chooses a placement for each arriving request.

    Contract: `route` does not advance simulated time, reads `view` without mutating it, draws
    randomness only from `self.rng`, and returns an instance among `view.candidates(request)`
    (the instances whose pool serves the request's model) or None.
    """

    #: short name recorded in results
    name: str = "router"

    def bind(self, fleet, rng: np.random.Generator) -> None:
        """Attach the run's fleet view and random stream; validate against the fleet."""
        self.fleet = fleet
        self.rng = rng

    @abc.abstractmethod
    def route(self, request: Request, view) -> Placement | None:
        """Return the placement of `request`, or None to reject it."""
