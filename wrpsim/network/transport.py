"""Transport reactions of the packet engine: loss recovery, DCTCP-like control, counters.

A mixin of `PacketEngine` (it uses the engine's flat per-port and per-connection lists and its
`_push` / `_send`), kept apart from the hot event loop: these paths run once per drop, per ACK
under `cc: dctcp`, or once per run.

- Loss: a dropped packet is resent `rto_us` after the drop (the timer only exists for lost
  packets, so there are no spurious timeouts); with `overflow: trim` the header reaches the
  receiver, which NACKs, and the packet is resent one NACK trip after the trim. The window slot
  stays held until the resent copy is acknowledged.
- DCTCP-like: α ← (1−g)·α + g·F once per window of ACKs (F: fraction marked; α starts at 1);
  the window is cut by α/2 on a marked ACK at most once per window, and grows by 1/window per
  unmarked ACK, never above the configured fixed window nor below one packet.
"""

from __future__ import annotations


class TransportMixin:
    """Cold-path transport behaviour of `PacketEngine` (module docstring)."""

    def _overflow(self, c: int, k: int, hop: int, path: tuple, t: int) -> None:
        """Drop (resend after the RTO) or trim (resend after a NACK trip) packet k of c."""
        p = path[hop]
        self.c_drops[c] += 1
        if self.trim:
            self.ptrims[p] += 1
            back = sum(self.prop[q] for q in path[hop:]) + self.c_ackd[c]
        else:
            self.pdrops[p] += 1
            back = self.rto_ps
        self._push((t + back, c, k, -2, None, 0, 0))

    def _ack_dctcp(self, c: int, k: int, ecn: int, t: int) -> None:
        """An ACK of packet k (ecn: the echoed mark) under DCTCP-like control: update α once
        per window, cut the window by α/2 at most once per window, else grow it by 1/window;
        then send while the window allows."""
        self.c_infl[c] -= 1
        self.c_acked[c] += 1
        if ecn:
            self.c_marked[c] += 1
        w = self.c_wnd[c]
        if k >= self.c_wend[c]:
            g = self.cfg.dctcp_g
            frac = self.c_marked[c] / self.c_acked[c]
            self.c_alpha[c] = (1 - g) * self.c_alpha[c] + g * frac
            self.c_acked[c] = self.c_marked[c] = 0
            self.c_wend[c] = self.c_next[c]
        if ecn and k > self.c_cut[c]:
            w = max(1.0, w * (1 - self.c_alpha[c] / 2))
            self.c_cut[c] = self.c_next[c]
        else:
            w = min(float(self.window), w + 1.0 / w)
        self.c_wnd[c] = w
        while self.c_infl[c] < w and self.c_next[c] < self.c_npk[c]:
            self._send(c, self.c_next[c], t)
            self.c_next[c] += 1
            self.c_infl[c] += 1

    def sent(self, c: int) -> int:
        """Data packets connection `c` has sent, resends included."""
        return self.c_next[c] + self.c_retx[c]

    def sent_total(self) -> int:
        """Data packets sent by every connection, resends included."""
        return sum(self.c_next) + sum(self.c_retx)

    def stats(self) -> dict:
        """Totals: data packets sent (with resends), resends, drops, trims, ECN marks,
        out-of-order arrivals, largest reorder distance (packets)."""
        return {
            "data_packets": self.sent_total(),
            "retransmits": sum(self.c_retx),
            "drops": sum(self.pdrops),
            "trims": sum(self.ptrims),
            "ecn_marks": sum(self.pmarks),
            "out_of_order_packets": sum(self.c_ooo),
            "max_reorder_distance": max(self.c_maxdist, default=0),
        }
