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

from wrpsim.network.dctcp import DctcpMixin
from wrpsim.network.entropy import ECN, GOOD, NACK
from wrpsim.network.topology import tx_ps
from wrpsim.network.transport import NACK_FLAG, TRIM


class UecMixin(DctcpMixin):
    """The `uec` handlers of `PacketEngine` (module docstring)."""

    __slots__ = ()  # (the attributes are `PacketEngine`'s slots)

    def _uec_ctrl(self, c: int, k: int, ev: int, fl: int, t: int) -> None:
        sacked = self.c_sacked[c]
        if sacked is None:
            return
        # uec's flags are 0 or ECN_FLAG (an ACK) or NACK_FLAG alone, so plain compares (which
        # CPython 3.11 specialises; `&` it does not) tell them apart
        ch = self.c_chooser[c]
        if ch is not None and ch.adaptive:  # `_feedback`, inlined
            ch.feedback(ev, NACK if fl == NACK_FLAG else ECN if fl else GOOD)
        if fl == NACK_FLAG:
            self.c_wnd[c] = max(1.0, self.c_wnd[c] - 1.0)
            self._emit(c, k, t)
            return
        if not self._sack_ack(c, k, sacked):
            return
        rtt = t - self.c_sendt[c][k]
        target = self.target_ps
        w = self.c_wnd[c]
        if fl:  # ECN_FLAG
            if rtt > target and k > self.c_cut[c]:
                w *= 1.0 - min(0.5, (rtt - target) / rtt)
                self.c_cut[c] = self.c_next[c]
        elif rtt <= target:
            w += (1.0 + self.pi_gain * (target - rtt) / target) / w
        else:
            w += 1.0 / w
        if w < 1.0:
            w = 1.0
        elif w > self.wmax:
            w = self.wmax
        self.c_wnd[c] = w
        if self.c_una[c] < self.c_npk[c]:
            self._pump(c, t)
        else:
            self._sender_done(c)

    def _uec_loss(self, c: int, k: int, hop: int, ev: int, t: int) -> None:
        """Trim packet k at the port of `hop`: its header (at least 1 byte) reaches the receiver
        after one header serialisation and the propagation delay of each remaining hop."""
        path = self.c_paths[c][ev]
        self.ptrims[path[hop]] += 1
        self.c_drops[c] += 1
        h = max(1, self.hdr)
        rest = 0  # (a loop: a compiled method cannot hold a generator)
        for p in path[hop:-1]:
            rest += tx_ps(h, self.rate[p]) + self.prop[p]
        arr = t + rest
        self._push((arr, TRIM, c, k, len(path) - 1, ev, h, 0, path))
