"""The router as a service: replicas that take time per decision, with a FIFO queue in front.

A router is a program on some machine; when its decision runs a model, it has a capacity, and
past it requests queue for the router before they reach any engine. Config::

    replicas: 1                  # identical router replicas behind one FIFO queue
    service: {signal: none, time_s: null}   # the decision's cost: a signal kind's table value,
                                            # or time_s seconds per decision when set

Per-decision service time by the heaviest signal the router computes (`SIGNALS`):

- `none` 0 s: routing treated as free (every run before the router had a capacity);
- `cpu_rule` 50 µs: a load-balancing or keyword / regex rule in the gateway process (Envoy's
  and the Gateway API endpoint picker's per-request scheduling is tens of microseconds);
- `cpu_classifier` 30 ms: a BERT-base-sized text classifier on CPU cores (the vLLM Semantic
  Router's ModernBERT category / PII / jailbreak classifiers run on CPU by default; a BERT-base
  forward pass over a few hundred tokens takes tens of milliseconds on a few cores);
- `gpu_classifier` 20 ms: the same classifier on a GPU, served one request at a time
  behind a Python server (kernel launches and host round trips dominate a batch of one);
- `embedding` 10 ms: an embedding model plus a nearest-neighbour lookup (semantic routing by
  similarity to reference prompts);
- `llm` 300 ms: a small LLM as the router (Router-R1 / "LLM-as-router"): a prompt prefill and a
  few output tokens of a 1-8B model;
- `rules`: the rule router's own signals (`router=semantic-rules` and the `semantic-*`
  configs): the latencies of the signals its decisions use, their max when evaluated in
  parallel (vLLM Semantic Router's default) or their sum when sequential
  (`wrpsim.router.ruleset`, `RuleSet.signal_time_s`); only for a router with a rule file.

These are order-of-magnitude defaults for comparison, not measurements of one deployment; give
your own with `time_s`. `RouterService` is the FIFO multi-server queue: requests arrive in time
order, each takes the replica that frees first, starts at max(arrival, that replica's free
time) and holds it for the service time (the Kiefer-Wolfowitz recursion — exact for FIFO with
service times known at arrival, and no simulation events unless a request waits). The policy
decides when its replica starts on the request (it reads the view then); the request leaves the
router when the service ends.

Replicas share one policy state and one view, including the dispatch counts and prefix index
kept between scrapes: they behave as one router with more capacity. Real replicas each know only
their own dispatches, so with several replicas and a stale view wrpsim's load balancing is
optimistic.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

from wrpsim.errors import ConfigError, choice, keyed_mapping, number

SIGNALS = {"none": 0.0, "cpu_rule": 50e-6, "cpu_classifier": 0.030, "gpu_classifier": 0.020,
           "embedding": 0.010, "llm": 0.300, "rules": None}
SERVICE_KEYS = ("signal", "time_s")
#: most router replicas (each a server of the FIFO queue)
MAX_REPLICAS = 100_000
#: longest decision `time_s` may give, seconds
MAX_DECISION_S = 3600.0


@dataclass(frozen=True, slots=True)
class ServiceSpec:
    """Validated `router.replicas` and `router.service`."""

    replicas: int = 1
    signal: str = "none"
    time_s: float = 0.0

    @classmethod
    def parse(cls, replicas, service) -> ServiceSpec:
        """Validate the two keys (None: the defaults)."""
        replicas = 1 if replicas is None else replicas
        if isinstance(replicas, bool) or not isinstance(replicas, int) or \
                not 1 <= replicas <= MAX_REPLICAS:
            raise ConfigError(f"router.replicas must be an integer in [1, {MAX_REPLICAS:,}], "
                              f"got {replicas!r}")
        service = keyed_mapping(service, SERVICE_KEYS, "router.service")
        signal = service.get("signal", "none")
        choice("router.service.signal", signal, SIGNALS)
        # (at most an hour a decision: the view's scrapes tick through the whole run, so a
        # 1e21-second decision would take as many steps)
        t = number("router.service.time_s", service.get("time_s"), 0.0, hi=MAX_DECISION_S,
                   finite=True, or_null=True)
        if signal == "rules" and t is not None:
            raise ConfigError("router.service: give signal: rules (the rule file's signal "
                              "latencies) or time_s, not both")
        return cls(replicas, signal, SIGNALS[signal] if t is None else t)

    def resolve(self, router) -> ServiceSpec:
        """The spec with `signal: rules` replaced by the router's rule-file cost."""
        if self.signal != "rules":
            return self
        t = getattr(router, "signal_time_s", None)
        if t is None:
            raise ConfigError("router.service.signal: rules needs a router with a rule file "
                              f"(router=semantic-rules, semantic-*); {type(router).__name__} "
                              "has none; valid choices for it: "
                              f"{', '.join(k for k in SIGNALS if k != 'rules')}")
        return ServiceSpec(self.replicas, self.signal, float(t))

class RouterService:
    """FIFO queue in front of `replicas` router replicas (see the module docstring)."""

    def __init__(self, spec: ServiceSpec):
        self.spec = spec
        self._free = [0.0] * spec.replicas  # heap of the times each replica frees
        self.busy_s = 0.0
        self.decisions = 0

    @property
    def free(self) -> bool:
        """True when decisions take no time (no queue, no events)."""
        return self.spec.time_s == 0.0

    def take(self, now: float) -> tuple[float, float]:
        """A request reaches the router at `now`: (start, end) of its decision."""
        s = self.spec.time_s
        start = max(now, heapq.heappop(self._free))
        heapq.heappush(self._free, start + s)
        self.busy_s += s
        self.decisions += 1
        return start, start + s

    def summary(self, end: float) -> dict:
        """Router keys of `summary.json`: replicas, signal, service time, utilisation."""
        beyond = sum(max(0.0, f - end) for f in self._free)  # queued work past the run's end
        util = (self.busy_s - beyond) / (self.spec.replicas * end) if end > 0 else None
        return {"router_replicas": self.spec.replicas, "router_signal": self.spec.signal,
                "router_service_s": self.spec.time_s, "router_decisions": self.decisions,
                "router_utilization": util}
