"""What a router may see: the `FleetView`, a periodically refreshed picture of the fleet.

A production router does not read its engines' memory. It scrapes their metrics endpoints
(vLLM's Prometheus `/metrics`: `vllm:num_requests_waiting`, `vllm:num_requests_running`,
`vllm:kv_cache_usage_perc`) every few moments, and between scrapes it knows only what it
dispatched itself. Config (`router.view`)::

    view:
      kind: scrape      # scrape (what a gateway knows) | oracle (live fleet: upper-bound studies)
      interval_s: 1.0   # time between two scrapes of every instance's metrics
      delay_s: 0.0      # a scrape becomes visible this long after it was taken

How often real gateways poll: the Gateway API Inference Extension's endpoint picker (the
scheduler of llm-d and other Kubernetes inference gateways) refreshes engine metrics every 50 ms
(`--refresh-metrics-interval`); the vLLM production-stack router's sample config scrapes engine
stats every 30 s (`engineScrapeInterval: 30`); Prometheus jobs commonly scrape every 15 s.
`interval_s` defaults to 1 s, a fast scrape between those: with the router's own dispatch counts
(below) a load balancer at 1 s routes nearly as at 50 ms (least-outstanding on the default
scenario: mean TTFT 0.135 s at 1 s, 0.141 s at 50 ms, 0.136 s live), while a 50 ms scrape of
every instance costs a third more run time on the hour-long default scenario. Set 0.05 for an
endpoint-picker-like gateway, 15-30 for a Prometheus-fed one. Per instance the view holds
(`InstanceView`):

- static facts a gateway is configured with: `name`, `pool`, `index`, `model`, `gpu`, `tp`,
  `role`, `max_context`, `kv_capacity_blocks`, `block_size`, `price_per_gpu_hour`, `latency`
  (the pool's performance model, as a router's offline profile of it);
- health, `down`: current (the endpoint list; failures are `wrpsim.failures`' business);
- scraped load, plus the requests this router dispatched there since the scrape was taken
  (gateways count their own dispatches, so that a stale view does not send a burst to one
  instance): `outstanding` (waiting + running), `num_waiting`, `num_running` (scraped only),
  `kv_used_frac` (plus the sent prompts' tokens over the cache's, and a hybrid model's Mamba
  state each where its pool pages that with the KV), `outstanding_tokens`
  (prompt tokens waiting for admission: the queued prefill work; neither engine nor router
  knows the answers' lengths, so decode work to come is not in it — a router that wants it
  predicts it, as `OutputLengthAware` does);
- `prefix_match(request)`: the leading prefix blocks of the request this router *sent* to the
  instance (`wrpsim.router.prefixindex`; a gateway does not see the engine's cache).

A scrape, like an engine's metrics endpoint, does not show the requests still in their decision
latency or the engine's front end: between scrapes the router's own counts stand for them.
With `kind: oracle` every field is the live value at the moment of the decision, counting as
waiting the requests routed to the instance and not yet admitted there (on a decode instance:
whose KV cache has not arrived yet), and `prefix_match` reads
the engine's own prefix cache.
It is labelled as an upper bound in `summary.json` (`router_view`), and it is the only view under
which the output-length predictor may be the oracle.

The view is filled by `wrpsim.router.feed.ViewFeed`; policies hold no reference to the fleet.
A router whose class is not wrpsim's gets it read-only (`FleetView.guard`: tuples, instances
that refuse writes and, with `reads_load = False`, reads of the load fields); the shipped
routers keep the plain objects, so their hot path is unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

from wrpsim.errors import keyed_mapping, number, unknown_choice
from wrpsim.pool.window import pages_state
from wrpsim.router.base import Placement

KINDS = ("oracle", "scrape")
KEYS = ("kind", "interval_s", "delay_s")
DEFAULT_INTERVAL_S = 1.0


@dataclass(frozen=True, slots=True)
class ViewSpec:
    """A validated `router.view` config."""

    kind: str = "scrape"
    interval_s: float = DEFAULT_INTERVAL_S
    delay_s: float = 0.0

    @classmethod
    def parse(cls, d) -> ViewSpec:
        """Validate the `router.view` mapping (None: the defaults)."""
        d = keyed_mapping(d, KEYS, "router.view")
        kind = d.get("kind", "scrape")
        if kind not in KINDS:
            raise unknown_choice("router.view.kind", kind, KINDS)
        interval = number("router.view.interval_s", d.get("interval_s", DEFAULT_INTERVAL_S),
                          0.0, strict_lo=True, finite=True)
        delay = number("router.view.delay_s", d.get("delay_s", 0.0), 0.0, finite=True)
        return cls(kind, interval, delay)

    @property
    def label(self) -> str:
        """How `summary.json` names the view."""
        if self.kind == "oracle":
            return "oracle (upper bound: live fleet state, not what a real router sees)"
        return f"scrape every {self.interval_s:g} s, {self.delay_s:g} s late"


class InstanceView:
    """One instance as the router sees it (fields: the module docstring).

    `_s` is the snapshot in force: (outstanding, num_waiting, num_running, kv_used_frac,
    waiting prompt tokens, sent, sent_tokens) where the last two are this router's dispatch
    counters (requests, prompt tokens) when the snapshot was taken; `_sent` / `_sent_tokens` are
    the counters now."""

    __slots__ = (
        "_placement",
        "_prefix",
        "_s",
        "_sent",
        "_sent_tokens",
        "_state_tokens",
        "block_size",
        "down",
        "gpu",
        "index",
        "kv_capacity_blocks",
        "latency",
        "max_context",
        "model",
        "name",
        "pool",
        "price_per_gpu_hour",
        "role",
        "tp",
    )

    def __init__(self, inst, spec, prefix):
        put = object.__setattr__  # the read-only subclasses (`FleetView.guard`) take no writes
        put(self, "name", inst.name)
        put(self, "pool", inst.pool)
        put(self, "index", inst.index)
        put(self, "model", spec.model)
        put(self, "gpu", spec.gpu)
        put(self, "tp", inst.tp)
        put(self, "role", spec.role)
        put(self, "max_context", inst.max_context)
        put(self, "kv_capacity_blocks", inst.kv.capacity)
        put(self, "block_size", spec.scheduler.block_size)
        put(self, "price_per_gpu_hour", spec.price_per_gpu_hour)
        put(self, "latency", inst.latency)
        put(self, "down", inst.down)
        put(self, "_s", (0, 0, 0, 0.0, 0, 0, 0))
        put(self, "_sent", 0)
        put(self, "_sent_tokens", 0)
        # KV tokens a request takes beyond its prompt's when admitted: its Mamba state where
        # the pool pages it with the KV (`wrpsim.pool.window.MambaKV`), in the cache's tokens
        win = getattr(inst, "_win", None)
        put(self, "_state_tokens",
            win.state_blocks * spec.scheduler.block_size if pages_state(win) else 0)
        put(self, "_prefix", prefix)  # PrefixIndex, or the engine's prefix_match (oracle)
        # `Placement(self)`, made once (a placement is frozen): what `Router.route` returns
        put(self, "_placement", Placement(self))

    @property
    def outstanding(self) -> int:
        """Requests waiting or running at the scrape, plus those sent here since."""
        s = self._s
        return s[0] + self._sent - s[5]

    @property
    def num_waiting(self) -> int:
        """Requests waiting at the scrape, plus those sent here since."""
        s = self._s
        return s[1] + self._sent - s[5]

    @property
    def num_running(self) -> int:
        """Requests running at the scrape."""
        return self._s[2]

    @property
    def kv_used_frac(self) -> float:
        """KV-cache use at the scrape (vLLM's `kv_cache_usage_perc`), plus the prompts this
        router sent here since, as a share of the cache's tokens (their KV is allocated on
        admission: counted as the router counts them in `outstanding`, so that a stale view
        does not send a burst to the instance that was emptiest at the scrape), each with its
        Mamba state where the pool pages that with the KV (a gateway configured with the
        model knows its state size)."""
        s = self._s
        extra = self._sent_tokens - s[6]
        if self._state_tokens:
            extra += (self._sent - s[5]) * self._state_tokens
        if not extra:
            return s[3]
        return s[3] + extra / max(1, self.kv_capacity_blocks * self.block_size)

    @property
    def outstanding_tokens(self) -> int:
        """Prompt tokens waiting for admission at the scrape, plus those sent here since."""
        s = self._s
        return s[4] + self._sent_tokens - s[6]

    def prefix_match(self, request) -> int:
        """Leading prefix blocks of `request` the router believes this instance holds."""
        if not request.hash_ids:
            return 0
        p = self._prefix
        return p.match(request.hash_ids) if hasattr(p, "match") else p(request)

    def __repr__(self) -> str:
        return f"InstanceView({self.name})"


#: what a router may read of an `InstanceView` (listed when it reads something else)
INSTANCE_FIELDS = ("name", "pool", "index", "model", "gpu", "tp", "role", "max_context",
                   "kv_capacity_blocks", "block_size", "price_per_gpu_hour", "latency", "down",
                   "outstanding", "num_waiting", "num_running", "kv_used_frac",
                   "outstanding_tokens", "prefix_match(request)")
#: the scraped load fields (`Router.reads_load`)
LOAD_FIELDS = ("outstanding", "num_waiting", "num_running", "kv_used_frac", "outstanding_tokens")


class ReadOnlyInstanceView(InstanceView):
    """An `InstanceView` that refuses writes to its public fields: what a router whose class is
    not wrpsim's gets (`FleetView.guard`). Writes of the feed's own (underscored) fields pass;
    a shipped router's view keeps the plain class (no `__setattr__` on the hot path)."""

    __slots__ = ()

    def __setattr__(self, name: str, value) -> None:
        if name[:1] == "_":
            object.__setattr__(self, name, value)
            return
        raise AttributeError(f"InstanceView.{name} is read-only: a router reads the view and "
                             f"never writes it (routers/README.md)")


class NoLoadInstanceView(ReadOnlyInstanceView):
    """A read-only `InstanceView` of a router that declares `reads_load = False`: the view takes
    no scrapes for it, so its load fields would be stale; reading one raises `LoadNotRead`."""

    __slots__ = ()

    def _no_load(self, name: str):
        raise LoadNotRead(f"InstanceView.{name} is unavailable to a router with reads_load = "
                          f"False (the view takes no scrapes for it, so the value would be "
                          f"stale): set reads_load = True in the router's class body")

    outstanding = property(lambda self: self._no_load("outstanding"))
    num_waiting = property(lambda self: self._no_load("num_waiting"))
    num_running = property(lambda self: self._no_load("num_running"))
    kv_used_frac = property(lambda self: self._no_load("kv_used_frac"))
    outstanding_tokens = property(lambda self: self._no_load("outstanding_tokens"))


class LoadNotRead(AttributeError):
    """A router with `reads_load = False` read a load field of the view."""


class FrozenCandidates(tuple):
    """A read-only candidate list (a tuple with the list's `model`, `key` and `every`): what
    `FleetView.candidates` returns to a router whose class is not wrpsim's."""

    model: str
    key: str
    every: tuple


def _frozen(c) -> FrozenCandidates:
    f = FrozenCandidates(c)
    f.model, f.key, f.every = getattr(c, "model", None), getattr(c, "key", None), tuple(c.every)
    return f


class FleetView:
    """The fleet as a router sees it: pools of `InstanceView`s and candidate lists.

    Also carries the fleet's configuration (`specs`, `models`, `default_model`, `latency` per
    pool, `disaggregated`, `max_tokens`, `gpu_count`), the simulated time `now`, and the two
    calls a router may make: `submit(request, delay_s=0.0)` and `follow_up(parent, **changes)`
    (installed by the dispatcher)."""

    def __init__(self, fleet, spec: ViewSpec, views: dict, clock, candidates: dict,
                 decode: dict):
        self.spec = spec
        self.kind = spec.kind
        self.specs = list(fleet.specs)
        self.models = list(fleet.models)
        self.default_model = fleet.default_model
        self.latency = dict(fleet.latency)
        self.disaggregated = set(fleet.disaggregated)
        self.max_tokens = dict(fleet.max_tokens)
        self.gpu_count = fleet.gpu_count
        self.pools = {n: [views[i.name] for i in insts] for n, insts in fleet.pools.items()}
        self.instances = [views[i.name] for i in fleet.instances]
        self._clock = clock
        self._cands, self._decode = candidates, decode
        self.submit = self.follow_up = _not_wired

    @property
    def now(self) -> float:
        """Simulated seconds now."""
        return self._clock()

    def model_of(self, request) -> str:
        """The model that serves `request` (its own, or the fleet's default)."""
        return request.model or self.default_model

    def candidates(self, request):
        """Healthy instances that can take `request` first (pool order, then index)."""
        return self._cands[request.model or self.default_model]

    def decode_candidates(self, request):
        """Healthy decode instances of the request's model (empty unless disaggregated)."""
        return self._decode[request.model or self.default_model]

    def guard(self, reads_load: bool = True) -> None:
        """Make this view read-only for a router whose class is not wrpsim's: its instances
        refuse writes (and, with `reads_load` False, reads of the load fields), `candidates` and
        `decode_candidates` return tuples, and the fleet's lists and mappings become tuples and
        read-only mappings. The shipped routers keep the plain view: none of this is on their
        hot path."""
        from types import MappingProxyType

        kind = ReadOnlyInstanceView if reads_load else NoLoadInstanceView
        for v in self.instances:
            v.__class__ = kind
        self.specs = tuple(self.specs)
        self.models = tuple(self.models)
        self.latency = MappingProxyType(self.latency)
        self.disaggregated = frozenset(self.disaggregated)
        self.max_tokens = MappingProxyType(self.max_tokens)
        self.pools = MappingProxyType({n: tuple(p) for n, p in self.pools.items()})
        self.instances = tuple(self.instances)
        frozen: dict = {}  # id of a live list -> its tuple, until an instance's health changes
        self._frozen = frozen

        def pick(lists, request):
            c = lists[request.model or self.default_model]
            f = frozen.get(id(c))
            if f is None:
                f = frozen[id(c)] = _frozen(c)
            return f

        self.candidates = lambda request: pick(self._cands, request)
        self.decode_candidates = lambda request: pick(self._decode, request)

    def health_changed(self) -> None:
        """An instance went down or came back: forget the guarded view's tuples."""
        frozen = getattr(self, "_frozen", None)
        if frozen:
            frozen.clear()


def _not_wired(*_a, **_k):
    raise RuntimeError("FleetView.submit / follow_up are installed by the dispatcher")
