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

try:
    import cython
except ImportError:  # pure Python without Cython installed
    from wrpsim import _cyshim as cython

from wrpsim.network.connection import ConnState
from wrpsim.network.transport import TransportBase

if not cython.compiled:  # (compiled, the enum of `transport.pxd`)
    from wrpsim.network.transport import ECN_FLAG, NACK_FLAG, NOPATH, TIMER


class RoceMixin(TransportBase):
    """The `roce` handlers of `PacketEngine` (module docstring)."""

    __slots__ = ()  # (the attributes are `PacketEngine`'s slots)

    def _roce_recv(self, cs: ConnState, k: int, ev: int, ecn: int, t: int,
                   trimmed: bool) -> bool:
        e = cs.epsn
        if k == e:
            cs.epsn = e + 1
            self._ctrl(cs, k, ev, ecn, t)
            return self._received(cs, t)
        if k > e:
            cs.ooo += 1
            if k - e > cs.maxdist:
                cs.maxdist = k - e
            if cs.nakpsn != e:
                cs.nakpsn = e
                self._ctrl(cs, e, ev, NACK_FLAG | ecn, t)
            # the sender's retransmission timer for k (a NAK overtaken by a later ACK, or a
            # second discard for the same e, would otherwise leave it waiting for ever)
            lost = cs.lost
            if lost is not None and k not in lost:
                lost[k] = t
                self._event(t + self.rto_ps, TIMER, cs.cid, k, 0, ev, t, 0, NOPATH)
        return False

    def _roce_ctrl(self, cs: ConnState, k: int, ev: int, fl: int, t: int) -> None:
        lost = cs.lost
        if lost is None:
            return
        self._feedback(cs, ev, fl)
        if fl & NACK_FLAG:
            if k > cs.una:
                cs.una = k
            if k == cs.una and k < cs.next:
                self._go_back(cs)
                self._loss_cut(cs, k)
        else:
            if k >= cs.una:
                cs.una = k + 1
            self._ecn_window(cs, k, fl & ECN_FLAG)
        cs.infl = cs.next - cs.una
        if not self._sender_done(cs):
            self._pump(cs, t)

    def _roce_timer(self, cs: ConnState, k: int, t0: int, t: int) -> None:
        lost = cs.lost
        if lost is None or lost.get(k) != t0 or k < cs.una:
            return
        self._go_back(cs)
        cs.infl = 0
        self._pump(cs, t)

    def _go_back(self, cs: ConnState) -> None:
        """Resume sending at the lowest unacknowledged packet; forget pending loss timers."""
        cs.next = cs.una
        cs.lost.clear()
