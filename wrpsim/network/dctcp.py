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

try:
    import cython
except ImportError:  # pure Python without Cython installed
    from wrpsim import _cyshim as cython

from wrpsim.network.connection import ConnState
from wrpsim.network.roce import RoceMixin

if not cython.compiled:  # (compiled, the enum of `transport.pxd`)
    from wrpsim.network.transport import ECN_FLAG

DUPTHRESH = 3


class DctcpMixin(RoceMixin):
    """The `dctcp` handlers of `PacketEngine` (its ECN window law, which `roce` shares, is
    `TransportBase._ecn_window`)."""

    __slots__ = ()  # (the attributes are `PacketEngine`'s slots)

    def _dctcp_ctrl(self, cs: ConnState, k: int, ev: int, fl: int, t: int) -> None:
        sacked = cs.sacked
        if sacked is None:
            return
        self._feedback(cs, ev, fl)
        if not self._sack_ack(cs, k, sacked):
            return
        if k > cs.hi:
            cs.hi = k
        lost = cs.lost
        lost.pop(k, None)
        self._ecn_window(cs, k, fl & ECN_FLAG)
        s = max(cs.scan, cs.una)
        top = cs.hi - DUPTHRESH
        while s <= top:
            if not sacked[s]:
                lost.pop(s, None)
                self._loss_cut(cs, s)
                self._emit(cs, s, t)
            s += 1
        cs.scan = s
        if not self._sender_done(cs):
            self._pump(cs, t)

    def _dctcp_timer(self, cs: ConnState, k: int, t0: int, t: int) -> None:
        lost = cs.lost
        if lost is None or lost.get(k) != t0:
            return
        del lost[k]
        cs.wnd = 1.0
        self._emit(cs, k, t)
