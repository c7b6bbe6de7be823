"""KV-cache transfers from prefill to decode instances (disaggregated serving).

A transfer moves a request's whole KV cache (`kv_bytes_per_token` × tokens, all layers, all TP
shards) from the prefill instance to the decode instance as `tp` equal flows that start
together, one per prefill GPU. `mode` says when the bytes may leave:

- ``serialized``: after the prefill iteration ends; it exposes all of bytes / bandwidth;
- ``layerwise``: each layer's share leaves as soon as the last prefill iteration has computed
  that layer (Splitwise, DistServe); with per-layer compute time c = T/L and per-layer transfer
  time x = X/L it finishes at t_start + max(L·c + x, c + L·x), exposing about one layer's share
  of the transfer plus the tail when the link keeps up.

Link models (`network.kind`): ``none`` — infinite bandwidth, the transfer takes no time;
``nic`` — each GPU's NIC moves `nic_gbps`; a NIC carries one transfer at a time (FIFO), so a
busy prefill instance queues its transfers. The fluid and packet fabrics of `wrpsim.network`
plug in through the same `send`.
"""

from __future__ import annotations

from wrpsim.errors import ConfigError, unknown_choice

MODES = ("layerwise", "serialized")
LINK_KINDS = ("none", "nic")


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

    def __init__(self, env, kind: str = "none", nic_gbps: float | None = None):
        if kind not in LINK_KINDS:
            raise unknown_choice("network.kind", kind, LINK_KINDS)
        if kind == "nic" and (not isinstance(nic_gbps, (int, float)) or nic_gbps <= 0):
            raise ConfigError(f"network.nic_gbps must be a number > 0, got {nic_gbps!r}")
        self.env = env
        self.kind = kind
        self.byte_rate = (nic_gbps or 0) * 1e9 / 8  # bytes/s per NIC
        self.bytes_total = 0
        self.transfers = 0

    def send(self, src, nbytes: float, mode: str, t_start: float, layers: int, done) -> None:
        """Move `nbytes` from instance `src` (whose last prefill iteration ran [t_start, now])
        and call `done(t)` when they have arrived."""
        env = self.env
        now = env.now
        self.bytes_total += nbytes
        self.transfers += 1
        if self.kind == "none":
            t = now
        else:
            xfer = nbytes / (self.byte_rate * src.tp)
            t = finish_time(mode, t_start, now, layers, xfer, src.nic_free_at)
            src.nic_free_at = t
        ev = env.timeout(max(0.0, t - now))
        ev.callbacks.append(lambda _e: done(env.now))
