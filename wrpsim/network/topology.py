"""The two-tier leaf-spine fabric: endpoints, ports, rates, delays, buffers and paths.

Endpoints are GPU NICs, numbered like GPUs: GPU `k` of server `j` is endpoint `j·G + k`
(`G = gpus_per_host`). Each leaf has `hosts_per_leaf` downlink ports (one NIC each) and one
uplink to every spine. Without rail optimisation a server's `G` NICs sit on consecutive ports of
one leaf; with it, leaves form rail groups of `G` and GPU `k` of every server in group `q` plugs
into leaf `q·G + k` (a leaf then holds one NIC of each of `hosts_per_leaf` servers).

A *port* is one direction of one link, identified by an integer:

    [0, N)                     host_up     NIC of endpoint e -> its leaf   (unbounded queue)
    [N, 2N)                    leaf_down   leaf -> endpoint e
    2N + l·S + s               leaf_up     leaf l -> spine s
    2N + L·S + s·L + l         spine_down  spine s -> leaf l

A path is the tuple of ports a packet is queued at: 4 (host_up, leaf_up, spine_down, leaf_down)
between leaves, 2 within a leaf. Every port has a rate (bit/s, integer), a propagation delay
(integer picoseconds) and, except host_up, a finite buffer. The uplink rate is `uplink_gbps`,
else `hosts_per_leaf·host_gbps / (spines·oversubscription)`, else `host_gbps`.

Link failures (`failed_links`, docs/network.md "Link failures"): a failed port is *down*
(`port_up[p]` false; it keeps its nominal `rate` so nothing divides by zero, but no path uses it);
a degraded one stays up at `rate_factor` × its nominal rate (its buffer stays that of the nominal
rate). `spines_between(a, b)` are the spines with both leaf a -> spine and spine -> leaf b up: the
ECMP group a leaf keeps for another leaf's prefixes once routing has withdrawn the failed next
hops; `paths` returns only those.
"""

from __future__ import annotations

import math

from wrpsim.errors import ConfigError
from wrpsim.network.config import NetConfig
from wrpsim.network.rates import PS_PER_S, base_rtt_ps, bdp_bytes, link_rates_bps, tx_ps

__all__ = ["PS_PER_S", "LeafSpine", "tx_ps"]  # PS_PER_S and tx_ps live in rates.py


class LeafSpine:
    """Immutable description of one fabric (see the module docstring for the numbering)."""

    def __init__(self, cfg: NetConfig):
        self.cfg = cfg
        L, H, S, G = cfg.leaves, cfg.hosts_per_leaf, cfg.spines, cfg.gpus_per_host
        self.L, self.H, self.S, self.G = L, H, S, G
        self.n = N = L * H
        self.servers = N // G
        self.leaf_of: list[int] = [0] * N
        self.server_of: list[int] = [e // G for e in range(N)]
        for e in range(N):
            j, k = divmod(e, G)
            if cfg.rail_optimized:
                self.leaf_of[e] = (j // H) * G + k
            else:
                self.leaf_of[e] = e // H
        host_bps, up_bps = link_rates_bps(cfg)
        self.host_bps, self.uplink_bps = host_bps, up_bps
        prop = round(cfg.prop_delay_ns * 1000)
        self.nports = 2 * N + 2 * L * S
        self.rate = [host_bps] * (2 * N) + [up_bps] * (2 * L * S)
        self.prop = [prop] * self.nports
        self.kind = ["host_up"] * N + ["leaf_down"] * N + ["leaf_up"] * (L * S) + \
            ["spine_down"] * (L * S)
        self.src_node = [f"gpu{e}" for e in range(N)] + \
            [f"leaf{self.leaf_of[e]}" for e in range(N)] + \
            [f"leaf{a}" for a in range(L) for _ in range(S)] + \
            [f"spine{s}" for s in range(S) for _ in range(L)]
        self.dst_node = [f"leaf{self.leaf_of[e]}" for e in range(N)] + \
            [f"gpu{e}" for e in range(N)] + \
            [f"spine{s}" for _ in range(L) for s in range(S)] + \
            [f"leaf{a}" for _ in range(S) for a in range(L)]
        mtu = cfg.mtu_bytes + cfg.header_bytes  # a full packet on the wire
        self.base_rtt_ps = base_rtt_ps(cfg, host_bps, up_bps)
        self.window_packets = cfg.window_packets or max(
            1, math.ceil(cfg.window_bdp * self.bdp_bytes(host_bps) / mtu))
        self.buffer = [
            None if self.kind[p] == "host_up" else
            (cfg.buffer_bytes or math.ceil(cfg.buffer_bdp * self.bdp_bytes(self.rate[p])))
            for p in range(self.nports)
        ]
        self.port_up = [True] * self.nports
        self.degraded: list[int] = []
        for (leaf, spine, direction), f in sorted(cfg.link_faults().items()):
            p = self.leaf_up(leaf, spine) if direction == "up" else self.spine_down(spine, leaf)
            if f == 0:
                self.port_up[p] = False
            elif f < 1:
                self.rate[p] = max(1, round(self.rate[p] * f))
                self.degraded.append(p)
        self.down_ports = [p for p in range(self.nports) if not self.port_up[p]]
        self.has_down = bool(self.down_ports)
        self.all_spines = tuple(range(S))
        self.up_spines = [tuple(s for s in range(S) if self.port_up[self.leaf_up(a, s)])
                          for a in range(L)]
        self.down_spines = [tuple(s for s in range(S) if self.port_up[self.spine_down(s, a)])
                            for a in range(L)]
        self._between: dict[tuple[int, int], tuple[int, ...]] = {}

    def bdp_bytes(self, rate_bps: int) -> float:
        """Bandwidth-delay product at `rate_bps` over the unloaded round trip `base_rtt_ps`."""
        return bdp_bytes(rate_bps, self.base_rtt_ps)

    @property
    def oversubscription(self) -> float:
        """σ = H·C_host / (S·C_uplink) (oracle 9)."""
        return self.H * self.host_bps / (self.S * self.uplink_bps)

    def host_up(self, e: int) -> int:
        """Port of endpoint `e`'s NIC towards its leaf."""
        return e

    def leaf_down(self, e: int) -> int:
        """Port of the leaf towards endpoint `e`."""
        return self.n + e

    def leaf_up(self, leaf: int, spine: int) -> int:
        """Port of `leaf` towards `spine`."""
        return 2 * self.n + leaf * self.S + spine

    def spine_down(self, spine: int, leaf: int) -> int:
        """Port of `spine` towards `leaf`."""
        return 2 * self.n + self.L * self.S + spine * self.L + leaf

    def path(self, src: int, dst: int, spine: int) -> tuple[int, ...]:
        """Ports from endpoint `src` to endpoint `dst` via `spine` (ignored within a leaf)."""
        a, b = self.leaf_of[src], self.leaf_of[dst]
        if a == b:
            return (src, self.n + dst)
        return (src, self.leaf_up(a, spine), self.spine_down(spine, b), self.n + dst)

    def spines_between(self, a: int, b: int) -> tuple[int, ...]:
        """Spines through which leaf `a` reaches leaf `b` (`a != b`) with both links up, in
        increasing order (every spine on a fabric with no port down)."""
        if not self.has_down:
            return self.all_spines
        key = (a, b)
        out = self._between.get(key)
        if out is None:
            down = set(self.down_spines[b])
            out = self._between[key] = tuple(s for s in self.up_spines[a] if s in down)
            if not out:
                raise ConfigError(f"network.failed_links: no path from leaf {a} to leaf {b}")
        return out

    def paths(self, src: int, dst: int) -> list[tuple[int, ...]]:
        """All working equal-cost paths from `src` to `dst`, one per spine of
        `spines_between` (one path within a leaf)."""
        a, b = self.leaf_of[src], self.leaf_of[dst]
        if a == b:
            return [self.path(src, dst, 0)]
        return [self.path(src, dst, s) for s in self.spines_between(a, b)]

    def same_leaf(self, src: int, dst: int) -> bool:
        """Whether `src` and `dst` hang off the same leaf (no spine on the path)."""
        return self.leaf_of[src] == self.leaf_of[dst]

    def reverse_path(self, path: tuple[int, ...]) -> tuple[int, ...]:
        """Ports an ACK of a packet that took `path` queues at on its way back: from the
        receiver's NIC through the same spine when both its links back are up (else the spine of
        the working reverse group at the same index modulo its size) to the sender."""
        src, dst = path[0], path[-1] - self.n
        if len(path) == 2:
            return self.path(dst, src, 0)
        spine = (path[1] - 2 * self.n) % self.S
        back = self.spines_between(self.leaf_of[dst], self.leaf_of[src])
        if spine not in back:
            spine = back[spine % len(back)]
        return self.path(dst, src, spine)

    def min_latency_ps(self, nbytes: int, src: int, dst: int) -> int:
        """Oracle 1 on an empty fabric with equal rates: M'/C + (h−1)·S_pkt/C + Σ d_i, where
        M' counts `header_bytes` per packet and the first packet (the largest) sets the
        store-and-forward pipeline's per-hop lag."""
        path = self.path(src, dst, 0)
        mtu, hdr = self.cfg.mtu_bytes, self.cfg.header_bytes
        full, last = divmod(nbytes, mtu)
        sizes = [mtu + hdr] * full + ([last + hdr] if last else [])
        rate = self.rate[path[0]]
        t = sum(tx_ps(s, rate) for s in sizes) + (len(path) - 1) * tx_ps(sizes[0], rate)
        return t + sum(self.prop[p] for p in path)
