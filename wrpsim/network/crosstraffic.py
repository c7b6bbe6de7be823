"""Cross-engine contention in a packet window: each engine sees the other's traffic.

With `network.packet_window`, transfers started in the window run on a packet engine and all
others on the fluid engine (`transfer.py`). The two meet on the links as follows — both sides
agree on one max-min split of every port:

- **Packets, seen by the fluid engine.** Every window connection has a *phantom* in the fluid
  engine from the instant it starts until the packet engine reports it complete: a fluid
  connection with no bytes of its own, on the same paths (a sprayed one 1/k on each of its k
  paths), plus its control packets on the reverse paths at `ack_bytes / (mtu_bytes +
  header_bytes)` of its rate (one ACK per data packet). It takes its max-min share like any
  fluid connection, so the fluid ones get the rest; it never finishes and moves no bytes of the
  fluid engine's.
- **Fluid, seen by the packet engine.** Whenever fluid rates change (a fluid connection or a
  phantom starts or ends), every port whose fluid rate changed is handed to the packet engine as
  background load (`PacketEngine.set_background`): its packets are then serialised at the line
  rate minus the fluid connections' rate (phantoms excluded), never below 1/1000 of it, against
  the same buffers in bytes. Background traffic occupies no buffer and is never marked,
  dropped or delayed itself: it is a slower link, not competing packets.

State machine of one window connection: *started* (phantom added to the fluid engine at the
packet start instant, fluid rates recomputed there and pushed to the packet engine before its
first packet leaves) → *running* (its packets see the fluid background of the moment; the
fluid flows see its max-min share, whatever its real packet rate) → *complete* (packet engine
reports its last packet; the phantom is removed at that instant, fluid rates recomputed and
pushed while other window connections run). With no window connection running nothing is
pushed (the ports that changed are remembered and pushed when the next one starts), so fluid
traffic after the window costs nothing extra. Rates are applied when the engines are driven:
the packet engine may already have run ahead to the next SimPy event with the old ones
(`drivers.py`, at most the time to the next scheduled event), and a packet already queued
keeps its departure time.

Assumptions. The phantom stands for the packet connection's *share*, not its measured rate: a
window connection slowed by its own losses or congestion control still reserves its max-min
share from the fluid flows (and a fluid flow's rate is its max-min rate, not what packets leave
it). Runs without a window never create this object: they are unchanged.
"""

from __future__ import annotations

from wrpsim.network.paths import Conn


class CrossTraffic:
    """Couples the window's packet engine with the run's fluid engine (module docstring).

    `fluid`: the `drivers.FluidDriver` (with `engine` and `reshape(add, remove)`); `packet`: the
    window's `PacketEngine`."""

    def __init__(self, fluid, packet):
        self.fluid, self.packet = fluid, packet
        self.topo = packet.topo
        cfg = packet.cfg
        self.ack = cfg.ack_bytes / (cfg.mtu_bytes + cfg.header_bytes)
        self.phantom: dict[int, int] = {}    # running window connection -> phantom id
        self.live = 0                        # window connections running (or starting)
        fluid.engine.watch = set()
        fluid.on_rates = self.push

    def loads(self, conn: Conn) -> tuple[tuple[int, ...], tuple[float, ...]]:
        """Ports and coefficients of the phantom of `conn`: data on its paths, ACKs back."""
        k = len(conn.paths)
        share: dict[int, float] = {}
        for path in conn.paths:
            for p in path:
                share[p] = share.get(p, 0.0) + 1.0 / k
            if self.ack > 0:
                for p in self.topo.reverse_path(path):
                    share[p] = share.get(p, 0.0) + self.ack / k
        ports = tuple(sorted(share))
        return ports, tuple(share[p] for p in ports)

    def started(self, first: int, conns: list[Conn]) -> None:
        """Window connections `first`, `first + 1`, ... (packet engine ids) start now."""
        self.live += len(conns)
        ids = self.fluid.reshape(add=[self.loads(c) for c in conns])
        for i, pid in enumerate(ids):
            self.phantom[first + i] = pid

    def finished(self, cids: list[int]) -> None:
        """Window connections `cids` are complete now."""
        self.live -= len(cids)
        self.fluid.reshape(remove=[self.phantom.pop(c) for c in cids])

    def push(self) -> None:
        """Hand the fluid rates of the ports that changed to the packet engine — while window
        connections run; otherwise the changed ports pile up in `watch` (at most every port)
        until the next one starts."""
        if not self.live:
            return
        eng = self.fluid.engine
        ports, eng.watch = eng.watch, set()
        for p in sorted(ports):
            self.packet.set_background(p, 8.0 * eng.port_rate(p))
