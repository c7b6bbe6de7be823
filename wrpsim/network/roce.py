"""RoCE-style go-back-N transport (`transport: roce`): in-order only, NAK and go back.

Switch: a data packet that finds its port's buffer full is dropped (lossy RoCE: no PFC).
Receiver (expected sequence `e`, starting at 0):

    k == e   accept, e += 1, ACK k (cumulative, echoing the ECN mark)
    k >  e   out of sequence: discard (counted as out of order), and NAK e once per value of
             e; the discarded packet stays covered by the sender's retransmission timer (an RC
             sender times every unacknowledged packet), modelled as its loss timer armed at the
             discard: if no NAK made the sender go back first (a NAK can be overtaken by a
             later ACK on another path, and e is NAKed only once), `rto_us` later it goes back
             to `una`
    k <  e   duplicate: discard silently (ACKs are never lost, so no cumulative ACK is missing)

Sender (window `w` in packets, `una` the lowest unacknowledged, `infl = next − una`):

    SEND      while infl < w and next < npk: send `next` (a sequence sent before counts as a
              resend)
    ACK k     una ← max(una, k + 1); DCTCP's ECN law (`dctcp.py`, standing in for DCQCN's rate
              control); SEND; DONE when una = npk
    NAK e     una ← max(una, e); if e = una < next: GO BACK — next ← e, so every packet from e
              on is sent again, and halve w at most once per window
    TIMEOUT   a packet dropped `rto_us` ago and still unacknowledged: GO BACK to una

So any reordering — which per-packet spraying causes — looks like a loss and costs a window of
resends.
"""

from __future__ import annotations

from wrpsim.network.transport import ECN_FLAG, END, NACK_FLAG, TIMER, TransportBase


class RoceMixin(TransportBase):
    """The `roce` handlers of `PacketEngine` (module docstring)."""

    __slots__ = ()  # (the attributes are `PacketEngine`'s slots)

    def _roce_recv(self, c: int, k: int, ev: int, ecn: int, t: int, trimmed: bool) -> bool:
        e = self.c_epsn[c]
        if k == e:
            self.c_epsn[c] = e + 1
            self._ctrl(c, k, ev, ecn, t)
            return self._received(c, t)
        if k > e:
            self.c_ooo[c] += 1
            if k - e > self.c_maxdist[c]:
                self.c_maxdist[c] = k - e
            if self.c_nakpsn[c] != e:
                self.c_nakpsn[c] = e
                self._ctrl(c, e, ev, NACK_FLAG | ecn, t)
            # the sender's retransmission timer for k (a NAK overtaken by a later ACK, or a
            # second discard for the same e, would otherwise leave it waiting for ever)
            lost = self.c_lost[c]
            if lost is not None and k not in lost:
                lost[k] = t
                self._push((t + self.rto_ps, TIMER, c, k, 0, ev, t, 0, END))
        return False

    def _roce_ctrl(self, c: int, k: int, ev: int, fl: int, t: int) -> None:
        lost = self.c_lost[c]
        if lost is None:
            return
        self._feedback(c, ev, fl)
        if fl & NACK_FLAG:
            if k > self.c_una[c]:
                self.c_una[c] = k
            if k == self.c_una[c] and k < self.c_next[c]:
                self._go_back(c)
                self._loss_cut(c, k)
        else:
            if k >= self.c_una[c]:
                self.c_una[c] = k + 1
            self._ecn_window(c, k, fl & ECN_FLAG)
        self.c_infl[c] = self.c_next[c] - self.c_una[c]
        if not self._sender_done(c):
            self._pump(c, t)

    def _roce_timer(self, c: int, k: int, t0: int, t: int) -> None:
        lost = self.c_lost[c]
        if lost is None or lost.get(k) != t0 or k < self.c_una[c]:
            return
        self._go_back(c)
        self.c_infl[c] = 0
        self._pump(c, t)

    def _go_back(self, c: int) -> None:
        """Resume sending at the lowest unacknowledged packet; forget pending loss timers."""
        self.c_next[c] = self.c_una[c]
        self.c_lost[c].clear()
