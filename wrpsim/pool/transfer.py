"""KV-cache transfers from prefill to decode instances (disaggregated serving).

A transfer moves a request's whole KV cache (the decode instance's `kv_bytes_per_token` ×
tokens — all layers, all its GPUs' shards at the `kv_dtype` both pools share,
`wrpsim.pool.fleet.kv_bytes_per_token`) from the prefill instance to the decode instance as
`tp` equal flows that start together, one per prefill GPU. `mode` says when the bytes may leave:

- ``serialized``: after the prefill iteration ends; it exposes all of bytes / bandwidth;
- ``layerwise``: each layer's share leaves as soon as the last prefill iteration has computed
  that layer (Splitwise, DistServe); with per-layer compute time c = T/L and per-layer transfer
  time x = X/L it finishes at t_start + max(L·c + x, c + L·x), exposing about one layer's share
  of the transfer plus the tail when the link keeps up.

Link models (`network.kind`): ``none`` — infinite bandwidth, the transfer takes no time;
``nic`` — each GPU's NIC moves `nic_gbps`, so a transfer runs at `nic_gbps` × the NICs of
the end that has fewer (min of the prefill and decode instances' `kv_gpus`: a TP 8 prefill
instance sends to a TP 4 decode instance through the decode side's 4 NICs); each instance's
NICs carry one transfer at a time (FIFO, sending or receiving), so a busy prefill instance
queues its transfers and so does a decode instance that several prefill instances send to
(with data-parallel attention, `attn_dp`, per attention group: a sequence's KV is one group's,
each group has NICs of its own, and a transfer takes each end's group whose NICs free first);
``fluid`` / ``packet`` — the leaf-spine fabric of
`wrpsim.network` (instances placed on its GPUs, flows sharing links). On a fabric a layer-wise
transfer is two transfers: the first L−1 layers' bytes start when the last prefill iteration
has computed its first layer (`early`), the last layer's share when it ends; the KV has arrived
when both have.
"""

from __future__ import annotations

from wrpsim.errors import number, unknown_choice
from wrpsim.pool.wakeup import wake

MODES = ("layerwise", "serialized")
LINK_KINDS = ("none", "nic")
FABRIC_KINDS = ("fluid", "packet")


def finish_time(mode: str, t_start: float, t_end: float, layers: int, xfer_s: float,
                nic_free: float) -> float:
    """When the last byte arrives (closed form of the module docstring), NIC free at `nic_free`."""
    if mode == "serialized":
        return max(t_end, nic_free) + xfer_s
    c = (t_end - t_start) / layers
    x = xfer_s / layers
    return max(nic_free + xfer_s, t_start + max(layers * c + x, c + layers * x))


class KVTransfer:
    """Schedules KV transfers on the run's SimPy environment (see module docstring)."""

    def __init__(self, env, kind: str = "none", nic_gbps: float | None = None, fabric=None):
        """`fabric`: a `wrpsim.network.transfer.Fabric` (then `kind` is its kind)."""
        self.fabric = fabric
        if fabric is not None:
            fabric.attach(env)
            kind = "fabric"
        elif kind not in LINK_KINDS:
            raise unknown_choice("network.kind", kind, LINK_KINDS + FABRIC_KINDS)
        if kind == "nic":  # (NaN compares false, inf would make transfers free: both refused)
            number("network.nic_gbps", nic_gbps, lo=0.0, strict_lo=True, finite=True)
        self.env = env
        self.kind = kind
        self.byte_rate = (nic_gbps or 0) * 1e9 / 8  # bytes/s per NIC
        self.bytes_total = 0
        self.transfers = 0
        self._early: dict[int, _Layerwise] = {}  # request id -> its early start's state
        self._routes: dict[tuple, tuple] = {}  # (src, dst instance) -> `Fabric.route`
        #: a `wrpsim.pool.spanning.CollectiveSpec` when groups spanning servers put their
        #: collectives on the fabric (`network.collectives`); None: off
        self.collectives = None

    def place(self, fleet) -> None:
        """Put every instance of `fleet` on fabric GPUs (`inst.gpus`); no-op without a fabric."""
        if self.fabric is None:
            return
        gpus = self.fabric.place([(s.name, s.count, s.tp) for s in fleet.specs])
        for inst in fleet.instances:
            inst.gpus = gpus[(inst.pool, inst.index)]
        from wrpsim.pool.catalog import get_gpu

        for spec in fleet.specs:  # a PCIe server's GPUs copy to each other over PCIe
            g = get_gpu(spec.gpu)
            if g.scaleup == "pcie":
                for i in range(spec.count):
                    self.fabric.set_server_link(gpus[(spec.name, i)], g.link_gbs * 8)

    def _flows(self, src, dst, nbytes: float, done) -> None:
        route = self._routes.get((src, dst))
        if route is not None:  # (the fabric's plan of this pair of instances' GPU lists)
            self.fabric.transfer_on(route, round(nbytes), done, "kv")
            return
        # a sequence's KV is held by the GPUs of one attention group (all of them unless the
        # pool has data-parallel attention, `attn_dp`): those send it
        src_gpus = src.gpus[:kv_gpus(src)]
        n, g = len(src_gpus), dst.gpus
        dst_gpus = g[:n] if n <= len(g) else [g[i % len(g)] for i in range(n)]
        self.fabric.transfer(src_gpus, dst_gpus, round(nbytes), done, tag="kv")
        route = self.fabric.route(src_gpus, dst_gpus)
        if route is not None:  # (instances keep their GPUs for the whole run)
            self._routes[(src, dst)] = route

    def early(self, src, seq, nbytes: float, t_start: float, dur: float, layers: int) -> None:
        """On a fabric, start the first L−1 layers of a layer-wise transfer at t_start + dur/L
        (called when the iteration that completes `seq`'s prompt is planned)."""
        if self.fabric is None or layers < 2:
            return
        state = self._early[seq.req.id] = _Layerwise(self, src, seq, nbytes, layers)
        wake(self.env, dur / layers, state.start)

    def abandon(self, seq) -> None:
        """`seq`'s prefill instance crashed before the hand-off: forget its layer-wise early
        start (the bytes already on the fabric finish; a retry starts afresh)."""
        self._early.pop(seq.req.id, None)

    def send(self, src, dst, seq, nbytes: float, mode: str, t_start: float, layers: int,
             done) -> None:
        """Move `nbytes` of `seq`'s KV from instance `src` (whose last prefill iteration ran
        [t_start, now]) to `dst` and call `done(t)` when they have arrived."""
        env = self.env
        now = env.now
        self.bytes_total += nbytes
        self.transfers += 1
        if self.fabric is not None:
            state = self._early.pop(seq.req.id, None)
            if state is None:  # serialized: everything leaves now
                self._flows(src, dst, nbytes, done)
                return
            state.left += 1
            state.done = done
            self._flows(src, dst, nbytes / layers, state.arrived)
            return
        if self.kind == "none":
            t = now
        else:
            # each prefill GPU's NIC sends its share to a decode GPU's NIC: the end with
            # fewer NICs (a TP 8 prefill instance sending to a TP 4 decode one) is the
            # bottleneck, as on the fabric (`_flows` maps the flows onto the decode GPUs)
            xfer = nbytes / (self.byte_rate * min(kv_gpus(src), kv_gpus(dst)))
            # a sequence's KV is one attention group's: with data-parallel attention each group
            # has NICs of its own, and the transfer takes each end's group whose NICs free first
            fs, fd = nic_groups(src), nic_groups(dst)
            gs, gd = fs.index(min(fs)), fd.index(min(fd))
            t = finish_time(mode, t_start, now, layers, xfer, max(fs[gs], fd[gd]))
            fs[gs] = fd[gd] = t  # both ends' NICs carry it: FIFO at each
        wake(env, max(0.0, t - now), lambda _e: done(env.now))


class _Layerwise:
    """A layer-wise hand-off on a fabric (`KVTransfer.early` / `send`): `start` sends the
    first L−1 layers' bytes to `seq.handoff` (the decode instance when it runs); `arrived(t)`
    is each of its transfers' `done`, and the last of them (`left`: those not arrived yet)
    calls `done(t)` once `send` has set it."""

    __slots__ = ("done", "layers", "left", "nbytes", "seq", "src", "xfer")

    def __init__(self, xfer: KVTransfer, src, seq, nbytes: float, layers: int):
        self.xfer, self.src, self.seq, self.nbytes, self.layers = xfer, src, seq, nbytes, layers
        self.left = 1  # the bulk's transfer; `send` adds the last layer's
        self.done = None

    def start(self, _ev) -> None:
        layers = self.layers
        self.xfer._flows(self.src, self.seq.handoff, self.nbytes * (layers - 1) / layers,
                         self.arrived)

    def arrived(self, t: float) -> None:
        self.left -= 1
        if not self.left and self.done is not None:
            done, self.done = self.done, None  # (nothing keeps the hand-off's closure)
            done(t)


def nic_groups(inst) -> list[float]:
    """When the NICs of each of `inst`'s attention groups are next free (one group unless the
    pool has data-parallel attention, `attn_dp`), made on first use."""
    f = inst.nic_free_by_group
    if f is None:
        f = inst.nic_free_by_group = [0.0] * getattr(inst.latency, "adp", 1)
    return f


def kv_gpus(inst) -> int:
    """GPUs (and their NICs) holding one sequence's KV on `inst`: its tensor-parallel group,
    `tp / attn_dp` with data-parallel attention, else all `tp`."""
    return inst.tp // getattr(inst.latency, "adp", 1)
