"""UEC-style transport (`transport: uec`): trimming, NACK-driven resend, ECN + delay control.

Switch: a data packet that finds its port's buffer full is *trimmed* to its header, which
reaches the receiver ahead of the queues (a priority class); nothing is ever lost, so no timer
is armed. Receiver: delivers out of order into a bitmap and answers every data packet with an
ACK (echoing its ECN mark and EV) and every trimmed header with a NACK. Sender state machine,
per connection (window `w` in packets, `infl` packets unacknowledged, `una` the lowest of them):

    SEND     while infl < w and next < min(npk, una + reorder_window): send `next`
             (the bounded reorder window: the receiver's bitmap spans reorder_window packets)
    ACK k    first ACK of k: infl -= 1, advance una; RTT sample r = now - send time of k,
             target T = 1.5 x the base RTT (the htsim UEC model's default: 50 % over it):
               no ECN, r <= T   w += (1 + B/2 x (T - r)/T) / w  (proportional increase: up to
                                                        1 + B/6 packets per RTT, B the host BDP
                                                        in packets, so a halved window
                                                        recovers in a few RTTs)
               no ECN, r >  T   w += 1 / w             (fair increase, 1 per RTT)
               ECN,    r <= T   w unchanged            (a transient or one-path queue: left
                                                        to the path chooser)
               ECN,    r >  T   w *= 1 - min(1/2, (r - T) / r), at most once per window
             then SEND; DONE when every packet is acknowledged
    NACK k   resend k at once (fast resend, no timer) and w -= 1

with w kept in [1, window]. These are the four quadrants of UEC's NSCC with simple laws, not
its exact constants.
"""

from __future__ import annotations

try:
    import cython
except ImportError:  # pure Python without Cython installed
    from wrpsim import _cyshim as cython

from wrpsim.network.connection import ConnState
from wrpsim.network.dctcp import DctcpMixin
from wrpsim.network.entropy import ECN, GOOD, NACK
from wrpsim.network.topology import tx_ps

if not cython.compiled:  # (compiled, the enum of `transport.pxd`)
    from wrpsim.network.transport import END, NACK_FLAG, TRIM


class UecMixin(DctcpMixin):
    """The `uec` handlers of `PacketEngine` (module docstring)."""

    __slots__ = ()  # (the attributes are `PacketEngine`'s slots)

    def _uec_ctrl(self, cs: ConnState, k: int, ev: int, fl: int, t: int) -> None:
        sacked = cs.sacked
        if sacked is None:
            return
        ch = cs.chooser
        if ch is not None and ch.adaptive:  # `_feedback`, inlined (uec's flags are 0,
            #                                 ECN_FLAG or NACK_FLAG alone)
            ch.feedback(ev, NACK if fl == NACK_FLAG else ECN if fl else GOOD)
        if fl == NACK_FLAG:
            cs.wnd = max(1.0, cs.wnd - 1.0)
            self._emit(cs, k, t)
            return
        if not self._sack_ack(cs, k, sacked):
            return
        rtt = t - cs.sendt[k]
        target = self.target_ps
        w = cs.wnd
        if fl:  # ECN_FLAG
            if rtt > target and k > cs.cut:
                w *= 1.0 - min(0.5, (rtt - target) / rtt)
                cs.cut = cs.next
        elif rtt <= target:
            w += (1.0 + self.pi_gain * (target - rtt) / target) / w
        else:
            w += 1.0 / w
        if w < 1.0:
            w = 1.0
        elif w > self.wmax:
            w = self.wmax
        cs.wnd = w
        if cs.una < cs.npk:
            self._pump(cs, t)
        else:
            self._sender_done(cs)

    def _uec_loss(self, cs: ConnState, k: int, o: int, hop: int, ev: int, t: int) -> None:
        """Trim packet k at the port of `hop` of the path at offset `o`: its header (at least 1
        byte) reaches the receiver after one header serialisation and the propagation delay of
        each remaining hop."""
        pports = self.pports
        self.ptrims[pports[o + hop]] += 1
        cs.drops += 1
        h = max(1, self.hdr)
        rest = 0
        while pports[o + hop] != END:
            p = pports[o + hop]
            rest += tx_ps(h, self.rate[p]) + self.prop[p]
            hop += 1
        self._event(t + rest, TRIM, cs.cid, k, hop, ev, h, 0, o)
