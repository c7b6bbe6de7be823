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

from wrpsim.network.transport import ECN_FLAG

DUPTHRESH = 3


class DctcpMixin:
    """The `dctcp` handlers of `PacketEngine`, and the ECN window law `roce` shares."""

    __slots__ = ()

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

    def _dctcp_loss(self, c: int, k: int, hop: int, ev: int, t: int) -> None:
        self._drop(c, k, hop, ev, t)

    def _dctcp_timer(self, c: int, k: int, t0: int, t: int) -> None:
        lost = self.c_lost[c]
        if lost is None or lost.get(k) != t0:
            return
        del lost[k]
        self.c_wnd[c] = 1.0
        self._emit(c, k, t)

    def _ecn_window(self, c: int, k: int, ecn: int) -> None:
        """DCTCP's law on an ACK of k: α once per window, cut by α/2 once per window on a
        mark, else +1/w up to the configured window."""
        self.c_acked[c] += 1
        if ecn:
            self.c_marked[c] += 1
        if k >= self.c_wend[c]:
            g = self.cfg.dctcp_g
            self.c_alpha[c] = (1 - g) * self.c_alpha[c] + g * self.c_marked[c] / self.c_acked[c]
            self.c_acked[c] = self.c_marked[c] = 0
            self.c_wend[c] = self.c_next[c]
        w = self.c_wnd[c]
        if ecn and k > self.c_cut[c]:
            w = max(1.0, w * (1 - self.c_alpha[c] / 2))
            self.c_cut[c] = self.c_next[c]
        elif not ecn:
            w = min(self.wmax, w + 1.0 / w)
        self.c_wnd[c] = w

    def _loss_cut(self, c: int, k: int) -> None:
        """Halve the window on a loss of k, at most once per window."""
        if k > self.c_cut[c]:
            self.c_wnd[c] = max(1.0, self.c_wnd[c] / 2)
            self.c_cut[c] = self.c_next[c]
