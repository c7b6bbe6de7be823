"""DCTCP-style transport (`transport: dctcp`): drops, SACK, fast retransmit, ECN window law.

Switch: a data packet that finds its port's buffer full is dropped. Receiver: buffers out of
order (SACK) and ACKs every data packet, echoing its ECN mark. Sender state machine (window `w`
in packets, `infl` unacknowledged, `una` the lowest unacknowledged, `hi` the highest SACKed):

    SEND       while infl < w and next < npk: send `next`
    ACK k      first ACK of k: infl -= 1, advance una;
               α ← (1−g)·α + g·F once per window of ACKs (F: the fraction marked; α starts
               at 1, g = dctcp_g); ECN: w ← w·(1 − α/2) at most once per window, else
               w += 1/w (at most `window`);
               FAST RETRANSMIT every unSACKed sequence s ≤ hi − 3 not yet examined (three
               packets above it arrived, RFC 6675's rule; each s once): resend s and halve w
               at most once per window — reordering by more than 3 packets (spraying) triggers
               spurious resends;
               then SEND; DONE when every packet is acknowledged
    TIMEOUT s  a dropped packet not resent `rto_us` after its drop: resend it, w ← 1
"""

from __future__ import annotations

from wrpsim.network.roce import RoceMixin
from wrpsim.network.transport import ECN_FLAG

DUPTHRESH = 3


class DctcpMixin(RoceMixin):
    """The `dctcp` handlers of `PacketEngine` (its ECN window law, which `roce` shares, is
    `TransportBase._ecn_window`)."""

    __slots__ = ()  # (the attributes are `PacketEngine`'s slots)

    def _dctcp_ctrl(self, c: int, k: int, ev: int, fl: int, t: int) -> None:
        sacked = self.c_sacked[c]
        if sacked is None:
            return
        self._feedback(c, ev, fl)
        if not self._sack_ack(c, k, sacked):
            return
        if k > self.c_hi[c]:
            self.c_hi[c] = k
        lost = self.c_lost[c]
        lost.pop(k, None)
        self._ecn_window(c, k, fl & ECN_FLAG)
        s = max(self.c_scan[c], self.c_una[c])
        top = self.c_hi[c] - DUPTHRESH
        while s <= top:
            if not sacked[s]:
                lost.pop(s, None)
                self._loss_cut(c, s)
                self._emit(c, s, t)
            s += 1
        self.c_scan[c] = s
        if not self._sender_done(c):
            self._pump(c, t)

    def _dctcp_timer(self, c: int, k: int, t0: int, t: int) -> None:
        lost = self.c_lost[c]
        if lost is None or lost.get(k) != t0:
            return
        del lost[k]
        self.c_wnd[c] = 1.0
        self._emit(c, k, t)
