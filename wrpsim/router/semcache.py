"""The router's semantic cache: answers kept by prompt meaning, served without the fleet.

The vLLM Semantic Router embeds each prompt, searches an in-memory store of earlier prompts and
their answers, and returns a stored answer when the nearest one is at least
`similarity_threshold` similar (cosine; a global default of 0.8, overridable per category, and
caching can be switched off per category); the store holds `max_entries` (1,000) answers, drops
them after `ttl_seconds` (3,600 s) and evicts by `eviction_policy` (fifo by default; lru, lfu).
wrpsim models the effect of such a cache on the fleet, not its embeddings. Config
(`router.cache`, any router; off by default)::

    cache:
      enabled: false
      hit_model: curve      # curve: a configured hit rate | trace: the trace's duplicate clusters
      hit_rate: 0.3         # curve: P(a request is a near-duplicate of an entry in the cache)
      threshold: 0.8        # trace: min semantic_similarity for a hit; null: category not cached
      false_hit: 0.05       # P(a hit's cached answer is wrong for this prompt)
      capacity: 1000        # entries
      eviction: fifo        # fifo | lru
      ttl_s: 3600           # an entry expires this long after it was stored (null: never)
      lookup_s: 0.010       # embedding the prompt + the nearest-neighbour search

`hit_rate`, `threshold` and `false_hit` take a number or a mapping of per-category values with a
`default` (`{default: 0.8, code: 0.95}`); a request without a category uses the default.

Contract. Only a workload's own requests (no `parent_id`) are looked up, once, when a router
replica starts on them (after the router's queue and before its policy). Every looked-up request
pays `lookup_s` (part of its `route_s`). On a hit it skips the policy and the fleet: it completes
`lookup_s` after the router's service ends, with the cached answer's model and no GPU time,
energy or cost, the whole answer at once (its row's TTFT = E2E; TPOT NaN: no token streamed by
the fleet, so the run's TPOT figures describe the served requests), and the router's
`on_complete` is not called for it. On a miss it is routed as
before. A completed answer is stored when its row is recorded (follow-up calls are stored under
their original's key, adding their GPU time), evicting per the policy when the cache is full.
An entry expires `ttl_s` after it was stored: expired entries are dropped before each lookup and
each store (so a lookup sees only live entries and a full cache evicts only live ones).
Entries are kept per requested `model` (the trace's, before any router chose one: a request
naming a model is only answered from entries of requests that named the same one); a category
whose threshold is null is neither looked up nor stored.

Hit models (random draws from the stream ``router.cache`` of the run's seed):

- ``curve``: with probability `hit_rate` of its category, a request is a near-duplicate of an
  entry drawn uniformly from the live entries of its category (and requested model); with no
  such entry (warm-up, or all expired) it misses. The hit ratio approaches `hit_rate` once the
  cache holds answers; a threshold only switches a category off (null) — the curve is what some
  threshold gave, so set `hit_rate` and `false_hit` together.
- ``trace``: requests with the same `semantic_cluster` (a trace column: prompts one answer
  serves) are near-duplicates; a request hits when an entry of its cluster is live and its
  `semantic_similarity` (a trace column; absent or NaN: 1, an exact duplicate) is at least its
  category's threshold.

A hit is *false* with probability `false_hit` of its category: the cached answer is wrong for
this prompt and scores quality 0 (an answer with status ``cache_false_hit`` in the quality
metrics). A true hit scores what the cached answer's model scores on this prompt (the
workload's outcomes). `summary.json` (`summary`): `cache_lookups`, `cache_hits`,
`cache_hit_ratio` (hits / lookups), `cache_false_hits`, `cache_false_hit_ratio` (of hits),
`cache_saved_gpu_s` and `cache_saved_cost_usd` (Σ over hits of the GPU time and cost attributed
to the cached answer when it was computed — an estimate of what serving the hit would have
taken; batched requests share iterations, so the fleet's busy time falls by less),
`cache_quality_lost` (Σ over false hits of the quality the cached model would have scored on the
prompt, over the scored requests: how much lower the run's `quality` is than with every hit
true), `cache_entries` (live at the run's end), `cache_evictions` (dropped to make room),
`cache_expired` (dropped when their TTL ran out, up to the run's end) and the settings.
`requests.parquet` gains the columns `cache_hit` and `cache_false_hit` (only when the cache is on).
"""

from __future__ import annotations

import math
from collections import OrderedDict, deque
from dataclasses import dataclass

import pyarrow as pa

from wrpsim.errors import ConfigError, boolean, keyed_mapping, number, unknown_choice

KEYS = ("enabled", "hit_model", "hit_rate", "threshold", "false_hit", "capacity", "eviction",
        "ttl_s", "lookup_s")
HIT_MODELS = ("curve", "trace")
EVICTIONS = ("fifo", "lru")
#: defaults: the vLLM Semantic Router's (threshold, capacity, eviction, TTL); the embedding
#: signal's 10 ms (`wrpsim.router.service`) for a lookup; hit and false-hit rates are assumptions
DEFAULTS = {"enabled": False, "hit_model": "curve", "hit_rate": 0.3, "threshold": 0.8,
            "false_hit": 0.05, "capacity": 1000, "eviction": "fifo", "ttl_s": 3600.0,
            "lookup_s": 0.010}


def per_category(field: str, value, or_null: bool = False) -> tuple:
    """(default, {category: value}) of a number in [0, 1] or a mapping of them with `default`
    (null allowed where `or_null`)."""
    if not isinstance(value, dict):
        return number(field, value, 0.0, 1.0, or_null=or_null), {}
    cats = {}
    for k, v in value.items():
        if not isinstance(k, str) or not k:
            raise ConfigError(f"{field}: category names must be strings, got {k!r}")
        cats[k] = number(f"{field}.{k}", v, 0.0, 1.0, or_null=or_null)
    return cats.pop("default", DEFAULTS[field.rsplit(".", 1)[-1]]), cats


@dataclass(frozen=True, slots=True)
class CacheSpec:
    """A validated `router.cache` config."""

    hit_model: str = "curve"
    hit_rate: tuple = (0.3, {})
    threshold: tuple = (0.8, {})
    false_hit: tuple = (0.05, {})
    capacity: int = 1000
    eviction: str = "fifo"
    ttl_s: float | None = 3600.0
    lookup_s: float = 0.010

    @classmethod
    def parse(cls, d) -> CacheSpec | None:
        """Validate the `router.cache` mapping; None when it is absent or not enabled."""
        d = {**DEFAULTS, **keyed_mapping(d, KEYS, "router.cache")}
        boolean("router.cache.enabled", d["enabled"])
        if d["hit_model"] not in HIT_MODELS:
            raise unknown_choice("router.cache.hit_model", d["hit_model"], HIT_MODELS)
        if d["eviction"] not in EVICTIONS:
            raise unknown_choice("router.cache.eviction", d["eviction"], EVICTIONS)
        cap = d["capacity"]
        if isinstance(cap, bool) or not isinstance(cap, int) or cap < 1:
            raise ConfigError(f"router.cache.capacity must be an integer >= 1 (entries), got "
                              f"{cap!r}")
        spec = cls(d["hit_model"], per_category("router.cache.hit_rate", d["hit_rate"]),
                   per_category("router.cache.threshold", d["threshold"], or_null=True),
                   per_category("router.cache.false_hit", d["false_hit"]), cap, d["eviction"],
                   number("router.cache.ttl_s", d["ttl_s"], 0.0, strict_lo=True, or_null=True),
                   number("router.cache.lookup_s", d["lookup_s"], 0.0, finite=True))
        return spec if d["enabled"] else None

    def of(self, pair: tuple, category):
        """The value of a per-category pair for `category`."""
        default, cats = pair
        return cats.get(category, default) if category is not None else default


class _Entry:
    __slots__ = ("bag", "cost_usd", "gpu_s", "model", "root", "stored_s")

    def __init__(self, root, bag, model, gpu_s, cost_usd, stored_s):
        self.root, self.bag, self.model = root, bag, model
        self.gpu_s, self.cost_usd, self.stored_s = gpu_s, cost_usd, stored_s


@dataclass(frozen=True, slots=True)
class Hit:
    """A lookup that found an answer: the entry's model, whether it is wrong for this prompt,
    and the GPU time and cost it took to compute."""

    model: str | None
    false: bool
    gpu_s: float
    cost_usd: float


class SemanticCache:
    """The cache of one run (see the module docstring); `rng` is its own random stream."""

    def __init__(self, spec: CacheSpec, rng, qoe: tuple | None = None):
        self.spec = spec
        self.rng = rng
        self.qoe = qoe  # (expected TTFT, reading pace) of the run's QoE, or None
        self._entries: OrderedDict = OrderedDict()  # key -> _Entry, in eviction order
        self._bags: dict = {}  # curve: (category, model) -> list of keys (random pick)
        self._pos: dict = {}  # curve: key -> index in its bag
        self._root: dict[int, int] = {}  # follow-up id -> its original's id
        #: with a TTL: (key, entry) in the order stored, which is the order they expire in
        #: (answers are stored at the simulated time they complete, and a TTL is the same for
        #: all); an entry evicted or replaced meanwhile is skipped when it comes up
        self._ages: deque = deque()
        self.looked_up: set[int] = set()
        self.asked: dict[int, str | None] = {}  # looked-up id -> the model it asked for
        self.hits: dict[int, Hit] = {}
        self.answers: dict = {}  # false hits as quality answers (`wrpsim.metrics.quality`)
        self.lost = 0.0
        self.evictions = self.expired = 0

    def cached_category(self, req) -> bool:
        """True when `req`'s category is cached (its threshold is not null)."""
        return self.spec.of(self.spec.threshold, req.category) is not None

    def _key(self, req, root: int):
        if self.spec.hit_model == "curve":
            return root
        c = req.semantic_cluster
        return None if c is None else (c, self.asked[root])

    def lookup(self, req, now: float) -> Hit | None:
        """Look `req` up at `now` (once per request: later calls return None); the hit or None.
        A hit refreshes the entry's place under LRU."""
        if req.id in self.looked_up or not self.cached_category(req):
            return None
        self.looked_up.add(req.id)
        self.asked[req.id] = req.model
        self._expire(now)
        spec, cat = self.spec, req.category
        if spec.hit_model == "curve":
            if self.rng.random() >= spec.of(spec.hit_rate, cat):
                return None
            bag = self._bags.get((cat, req.model))
            if not bag:
                return None
            key = bag[int(self.rng.integers(len(bag)))]
        else:
            key = self._key(req, req.id)
            if key is None or key not in self._entries:
                return None
            sim = req.semantic_similarity
            if sim is not None and not math.isnan(sim) and sim < spec.of(spec.threshold, cat):
                return None
        e = self._entries[key]
        if spec.eviction == "lru":
            self._entries.move_to_end(key)
        false = bool(self.rng.random() < spec.of(spec.false_hit, cat))
        hit = self.hits[req.id] = Hit(e.model, false, e.gpu_s, e.cost_usd)
        return hit

    def answered(self, req, finish_s: float, hit: Hit) -> None:
        """Note the quality of a hit answered at `finish_s` (a false one scores 0)."""
        if not hit.false:
            return
        from wrpsim.router.multicall import Answer

        self.answers[req.id] = Answer(0.0, finish_s, 0, 0.0, "cache_false_hit")
        o = req.outcomes.get(hit.model) if req.outcomes else None
        if o is not None:
            self.lost += float(o)

    def on_complete(self, req, record: dict) -> None:
        """Store a completed call's answer under its original's key (a `RequestLog` hook)."""
        if req.id in self.hits:
            return
        root = req.id if req.parent_id is None else self._root.get(req.parent_id, req.parent_id)
        if req.parent_id is not None:
            self._root[req.id] = root
        if root not in self.asked or not self.cached_category(req):
            return
        key = self._key(req, root)
        if key is None:
            return
        now, model = record["finish_s"], record["model"]
        self._expire(now)
        e = self._entries.get(key)
        if e is not None and e.root == root:  # a later call of the same original
            e.model, e.gpu_s, e.cost_usd = model, e.gpu_s + record["gpu_s"], \
                e.cost_usd + record["cost_usd"]
            return
        if e is not None:
            self._remove(key)
        while len(self._entries) >= self.spec.capacity:
            self._remove(next(iter(self._entries)))
            self.evictions += 1
        bag = (req.category, self.asked[root])
        e = _Entry(root, bag, model, record["gpu_s"], record["cost_usd"], now)
        self._entries[key] = e
        if self.spec.ttl_s is not None:
            self._ages.append((key, e))
        if self.spec.hit_model == "curve":
            keys = self._bags.setdefault(bag, [])
            self._pos[key] = len(keys)
            keys.append(key)

    def _expire(self, now: float) -> None:
        """Drop the entries whose TTL has run out at `now` (stored more than `ttl_s` before),
        counting them in `expired`: what is left is live."""
        ttl, ages = self.spec.ttl_s, self._ages
        while ages and now - ages[0][1].stored_s > ttl:
            key, e = ages.popleft()
            if self._entries.get(key) is e:
                self._remove(key)
                self.expired += 1

    def _remove(self, key) -> None:
        e = self._entries.pop(key)
        if self.spec.hit_model == "curve":  # swap-remove from its bag
            keys, i = self._bags[e.bag], self._pos.pop(key)
            last = keys.pop()
            if last != key:
                keys[i] = last
                self._pos[last] = i

    def columns(self, table: pa.Table) -> pa.Table:
        """`table` (requests) with the `cache_hit` and `cache_false_hit` columns."""
        ids = table.column("request_id").to_pylist()
        hits = self.hits
        hit = [i in hits for i in ids]
        false = [i in hits and hits[i].false for i in ids]
        table = table.append_column(pa.field("cache_hit", pa.bool_()), [pa.array(hit)])
        return table.append_column(pa.field("cache_false_hit", pa.bool_()), [pa.array(false)])

    def summary(self, table: pa.Table, quality_requests: int | None, end: float) -> dict:
        """The `cache_*` keys of `summary.json` (module docstring); `table`: the requests,
        `quality_requests`: how many the quality metric scored, `end`: the run's end, when
        `cache_entries` are counted (entries expired by then are dropped and count as
        expired). Hits not answered before the run's end (horizon) are not counted."""
        import pyarrow.compute as pc  # (~50 ms to import: only runs with the cache on)

        self._expire(end)

        done = set(table.filter(pc.equal(table.column("status"), "completed"))
                   .column("request_id").to_pylist())
        hits = [h for i, h in self.hits.items() if i in done]
        n, false = len(hits), sum(h.false for h in hits)
        s = self.spec
        return {
            "cache_hit_model": s.hit_model, "cache_lookups": len(self.looked_up),
            "cache_hits": n,
            "cache_hit_ratio": n / len(self.looked_up) if self.looked_up else None,
            "cache_false_hits": false, "cache_false_hit_ratio": false / n if n else None,
            "cache_saved_gpu_s": sum(h.gpu_s for h in hits),
            "cache_saved_cost_usd": sum(h.cost_usd for h in hits),
            "cache_quality_lost": self.lost / quality_requests if quality_requests else None,
            "cache_entries": len(self._entries), "cache_evictions": self.evictions,
            "cache_expired": self.expired, "cache_capacity": s.capacity,
            "cache_eviction": s.eviction, "cache_ttl_s": s.ttl_s, "cache_lookup_s": s.lookup_s,
        }
