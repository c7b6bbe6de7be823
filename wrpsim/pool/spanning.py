"""Instances whose tensor- or expert-parallel group spans servers: collectives on the fabric.

With `network.collectives: true` on a fabric (`network=fluid|packet`), a pool whose `tp` exceeds
one server (G = `network.gpus_per_host` GPUs) is placed on n = tp/G whole servers, and every
collective of an iteration is a hierarchical all-reduce of S = T × hidden × 2 bytes (T tokens in
the iteration, BF16 activations, as in the kernel model):

- **intra-server** — reduce-scatter, then (after the inter-server step) all-gather among the G
  GPUs of each server over the GPU link. This is the kernel model's all-reduce term at group
  size G (`KernelLatency(scaleup=G)`), part of the iteration's compute time;
- **inter-server** — G rails (GPU k of every server) each all-reduce their S/G shard with a ring
  over the n servers (`allreduce_ring` of `wrpsim.network.collectives`), on the fabric, sharing
  links with every other transfer (KV transfers of disaggregated pools included).

An expert-parallel MoE layer's all-gather + reduce-scatter moves the same bytes between servers
as an all-reduce, so every attention, FFN and Mamba block counts as one collective: C of them
per iteration (2L for a dense model of L layers).

**Aggregation.** C ring all-reduces per rail per iteration (160 for a 70B model) would cost
C·2n(n − 1) flows each iteration. Instead each rail runs one ring all-reduce per iteration
carrying the summed bytes, C·S/G per rank, with a per-step latency of C·α (`collective_alpha_us`
per step of one collective). On an idle fabric this is exact in the α–β model,
Σ_l 2(n − 1)(S/(nGB) + α) = 2(n − 1)(C·S/(nGB) + C·α), and so it meets
`wrpsim.network.theory.ring_collective_s`. What it misses: the traffic of one iteration is one
burst instead of C bursts spread over the iteration, so a competing flow meets it for a shorter
stretch at a higher load (its mean delay over the iteration is right; the shape is not), and
under contention a real layer's ring waits on its slowest link C times in lock step, where the
aggregate waits once over all its bytes (about the same for steady contention).

**Timing: sequential, not overlapped.** In inference, a layer's all-reduce waits for its GEMMs
and the next layer's GEMMs wait for it, so compute and communication do not overlap (unless an
engine splits the batch into overlapped micro-batches, which vLLM does not). An iteration of a
spanning instance therefore lasts compute + collective: its inter-server ring all-reduces start
on the fabric when the iteration starts, and the iteration ends `compute` seconds after the last
of them completes (the traffic is on the wire at the start of the iteration rather than spread
over it). On an idle fabric: compute + 2(n − 1)·(C·S/(n·G·B) + C·α).

Such an instance steps one iteration at a time (`max_run_steps = 1`: the end of each iteration is
known only when its collective completes), and its new decoders' second-token times are set when
the iteration ends. The GPUs draw the iteration's power for all of it, waiting included.
Everything else — scheduling, KV, hand-offs, failures — is `Instance`'s. Instances that fit in
a server are plain `Instance`s (their collectives stay on the GPU link, in the latency model), and
with the switch off nothing here runs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial

from wrpsim.errors import ConfigError, boolean, number
from wrpsim.network import FLEET_KEYS, VALUE_KINDS
from wrpsim.pool.instance import _MIXED, Instance
from wrpsim.pool.sequence import DECODE
from wrpsim.pool.wakeup import wake
from wrpsim.sanity import GPUS_PER_SERVER, in_rack

#: keys of the `network` config that belong to fleet runs' collectives, not to the fabric
COLLECTIVE_KEYS = FLEET_KEYS
DEFAULT_ALPHA_US = 10.0


@dataclass(frozen=True)
class CollectiveSpec:
    """Collectives of spanning instances on the fabric: `alpha_s` per ring step of one
    collective (module docstring)."""

    alpha_s: float = DEFAULT_ALPHA_US * 1e-6


def parse_collectives(net: dict) -> tuple[dict, CollectiveSpec | None]:
    """Split the `network` mapping into the fabric's keys and the collectives switch:
    (`net` without `COLLECTIVE_KEYS`, a `CollectiveSpec` when `collectives` is true, else
    None). `ConfigError` for a non-boolean switch, a bad latency, or the switch on without a
    fabric."""
    rest = {k: v for k, v in net.items() if k not in COLLECTIVE_KEYS}
    on = boolean("network.collectives", net.get("collectives", False))
    alpha = net.get("collective_alpha_us")
    kind = net.get("kind", "none")
    if alpha is not None and kind not in VALUE_KINDS["collective_alpha_us"]:  # (a no-op)
        raise ConfigError(f"network.collective_alpha_us applies only with a fabric "
                          f"(network=fluid or network=packet, with network.collectives=true), "
                          f"got network.kind={kind}")
    alpha = DEFAULT_ALPHA_US if alpha is None else number("network.collective_alpha_us", alpha, 0,
                                                                1e9, finite=True)
    if not on:
        return rest, None
    if kind not in VALUE_KINDS["collectives"]:
        raise ConfigError(f"network.collectives=true needs a fabric (network=fluid or "
                          f"network=packet), got network.kind={kind}")
    return rest, CollectiveSpec(alpha * 1e-6)


def spans(tp: int, server_gpus: int | None, domain: int = GPUS_PER_SERVER) -> bool:
    """True when a group of `tp` GPUs is larger than one server of `server_gpus` (None: no
    spanning groups in this run), unless its GPUs' scale-up domain of `domain` GPUs is a
    rack's that holds it (`sanity.in_rack`)."""
    return server_gpus is not None and tp > server_gpus and not in_rack(tp, domain)


class SpanningInstance(Instance):
    """An `Instance` on several servers whose collectives cross the fabric (module docstring).

    `span` = (G GPUs per server, hidden size, collectives per iteration C, `CollectiveSpec`).
    Extra statistics: `collective_s` (seconds of iterations spent in inter-server collectives);
    `iteration_log`, when a list, gets (start, compute_s, collective_s,
    tokens) per iteration."""

    _default_run_steps = 1  # (`Instance.max_run_steps`)

    def __init__(self, *args, span: tuple, **kw):
        super().__init__(*args, **kw)
        self.server_gpus, self.hidden, self.collectives, self.coll = span
        self.collective_s = 0.0
        self.iteration_log: list | None = None
        self._rails: list[tuple[int, ...]] | None = None
        self._colls: dict[int, list] = {}  # bytes per rank -> the rails' `Collective`s
        self._compute = 0.0
        self._coll_t = math.nan  # when the iteration in progress finished its collectives
        self._second: list = []
        self._tokens = 0

    def rails(self) -> list[tuple[int, ...]]:
        """The inter-server rings: GPU k of every server, for k < G (`gpus` are placed server
        by server)."""
        if self._rails is None:
            g, gpus = self.server_gpus, self.gpus
            n = len(gpus) // g
            if n * g != len(gpus) or n < 2:
                raise ConfigError(f"pool.pools.{self.pool}: {len(gpus)} GPUs are not whole "
                                  f"servers of {g}")
            self._rails = [tuple(gpus[s * g + k] for s in range(n)) for k in range(g)]
        return self._rails

    def rank_bytes(self, tokens: int) -> int:
        """Bytes per rank of one rail's aggregated ring all-reduce for an iteration of
        `tokens` tokens: C × tokens × hidden × 2 / G."""
        return self.collectives * tokens * self.hidden * 2 // self.server_gpus

    def _second_tokens(self, t: float, t2=None) -> None:
        """The second token (a handed-off sequence's first: `Instance._second_tokens`) comes at
        the iteration's end, known only when it ends."""
        self._second = [s for s in self._fresh if s.state == DECODE and s.second_token_s is None]
        self._fresh.clear()

    def _begin(self, now, dur, n, cum, power_w) -> None:
        """Start one iteration of `dur` seconds of compute and its collectives on the fabric."""
        from wrpsim.network.collectives import Collective, start_collective

        tokens = self._dec_in_iter
        if self._kind == _MIXED:
            tokens += sum(c for _, c, _ in self._chunks)
        self.busy = True
        self._t0, self._n, self._cum = now, 1, None
        self._compute = dur
        self._tokens = tokens
        self._coll_t = math.nan
        self._power = power_w
        nbytes = self.rank_bytes(tokens)
        alpha = self.coll.alpha_s * self.collectives
        rails = self.rails()
        n_ranks = len(rails[0])
        fabric = self.transfer.fabric
        # until the collectives end, the idle-fabric estimate stands in for the duration
        rate = fabric.topo.host_bps if fabric.topo is not None else math.inf
        self._dur = dur + 2 * (n_ranks - 1) * (nbytes * 8 / (n_ranks * rate) + alpha)
        self._token += 1
        left = [len(rails)]
        done = partial(self._rail_done, self._token, left)
        colls = self._colls.get(nbytes)
        if colls is None:  # one ring per rail, the same for every iteration of this size
            if len(self._colls) >= 4096:
                self._colls.clear()
            colls = self._colls[nbytes] = [Collective("allreduce_ring", rail, nbytes, alpha)
                                           for rail in rails]
        for coll in colls:
            start_collective(fabric, coll, done)

    def _rail_done(self, token: int, left: list, t: float) -> None:
        left[0] -= 1
        if left[0] or token != self._token:
            return  # rails still running, or the instance failed meanwhile
        self._coll_t = t
        self._dur = t - self._t0 + self._compute
        wake(self.env, self._compute, self._end_fn, token)

    def _done_steps(self, now: float) -> int:
        """1 once the iteration in progress has ended (its end is known after its collectives)."""
        return 1 if self._coll_t == self._coll_t and now >= self._t0 + self._dur else 0

    def _on_end(self, ev) -> None:
        if ev.value == self._token:
            now = self.env.now
            coll = self._coll_t - self._t0
            self.collective_s += coll
            if self.iteration_log is not None:
                self.iteration_log.append((self._t0, self._compute, coll, self._tokens))
            for seq in self._second:
                if seq.first_token_s is None:  # its second token: the next iteration's end
                    seq.first_token_s = now
                    self._fresh.append(seq)
                else:
                    seq.second_token_s = now
            self._second = []
            if self.tracer is not None:
                prefill = self._tokens - self._dec_in_iter
                name = "prefill+decode" if prefill and self._dec_in_iter else (
                    "prefill" if prefill else "decode x1")
                self.tracer.slice(self.name, 0, name, self._t0, self._dur,
                                  decode_seqs=self._dec_in_iter, prefill_tokens=prefill,
                                  collective_s=coll, waiting=len(self.waiting))
        super()._on_end(ev)

    def fail(self) -> list:
        """Go down (`FailureMixin.fail`); the pending second tokens are lost with the batch."""
        self._second = []
        return super().fail()
