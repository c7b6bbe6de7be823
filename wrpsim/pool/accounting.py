"""What an instance's iterations cost and how its streams read: attribution and QoE.

Mixed into `Instance`. Two bookkeeping concerns that follow the iterations without steering
them:

- **Attribution.** Every iteration's busy time and energy are shared equally by the tokens it
  processed (prompt chunk tokens and one per decoding sequence). A prompt chunk is charged when
  its iteration ends; decoders are charged lazily: the instance keeps running sums of one
  decoder's share of every iteration (`_c_cum` instance-seconds, `_e_cum` joules) and a decoder
  is charged the difference since it joined or was last charged (`_charge_decoder`) when it
  leaves the decoding set, or when the run ends or the instance fails (`settle`). Seconds are
  charged as GPU-seconds (× `tp`) and priced at the instance's GPU-hour price.
- **Streaming QoE** (`wrpsim.metrics.qoe`). The decode-step clock's breakpoints — step `_qs[i]`
  reached at time `_qt[i]`, two per stretch of iterations (`_log_steps`) — describe every
  decoder's token timeline at once; a leaving decoder's QoE meter is fed its stint from them
  (`_stint_qoe`). A stack of suffix minima of s − pace·t (`_mi` absolute indices, `_mh`
  values) finds in O(log n) the point after which a stream stays ahead of its reader.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right

from wrpsim.metrics.qoe import QoEMeter
from wrpsim.pool.sequence import DECODE, Seq

_DECODE_RUN, _MIXED = 1, 2  # the kinds of a stretch of iterations (`Instance._kind`)


class AccountingMixin:
    """Attribution of busy time and energy, and QoE breakpoints, of `Instance` (module
    docstring)."""

    __slots__ = ()  # (the attributes are `Instance`'s slots)

    def _charge(self, seq: Seq, inst_s: float, joules: float) -> None:
        """Attribute `inst_s` seconds of this instance (all its GPUs) and `joules` to `seq`."""
        gpu_s = inst_s * self.tp
        seq.gpu_s += gpu_s
        seq.energy_j += joules
        seq.cost_usd += gpu_s * self.price_per_gpu_hour / 3600.0

    def _count_decode_run(self, dur: float, n: int) -> None:
        """`n` decode-only iterations of `dur` seconds in all happened: busy time, energy,
        tokens, and every decoder's equal share of them."""
        joules = self._power * self.tp * dur
        nd = self._dec_in_iter
        self.busy_s += dur
        self.energy_j += joules
        self.iterations += n
        self.decode_iterations += n
        self.decode_tokens += n * nd
        self._c_cum += dur / nd
        self._e_cum += joules / nd

    def _count_ended_iterations(self, now: float) -> int:
        """The stretch in progress is cut off at `now` (a crash): the iterations of a decode run
        that ended by then happened; the one in progress, or a prefill iteration, is lost.
        Returns how many happened."""
        if self.busy and self._kind == _DECODE_RUN:
            k = self._done_steps(now)
            if k:
                self._count_decode_run(self._end_at(k - 1), k)
            return k
        return 0

    def _charge_decoder(self, seq: Seq) -> None:
        """Charge a decoder its share of the iterations since it joined (or was last charged)."""
        c_cum, e_cum = self._c_cum, self._e_cum
        gpu_s = (c_cum - seq.c0) * self.tp  # (`_charge`, inlined: once per leaving decoder)
        seq.gpu_s += gpu_s
        seq.energy_j += e_cum - seq.e0
        seq.cost_usd += gpu_s * self.price_per_gpu_hour / 3600.0
        seq.c0, seq.e0 = c_cum, e_cum

    def settle(self) -> None:
        """Charge every decoding sequence its share of the iterations so far (the run ends, or
        the instance fails)."""
        for seq in self.running.values():
            if seq.state == DECODE:
                self._charge_decoder(seq)

    def _log_steps(self, n: int, now: float) -> None:
        """The decode-step clock went from `step` (at the stretch's start `_t0`) to
        `step + n` (at `now`): append both breakpoints, keeping the stack of suffix minima
        of h = s − pace·t (called only with QoE on)."""
        qs, qt = self._qs, self._qt
        s, t0 = self.step, self._t0
        if not qs or qs[-1] != s or qt[-1] != t0:
            # (a stretch that starts when and where the last one ended adds no breakpoint:
            # a repeated point changes no line `_stint_qoe` draws and no suffix minimum)
            self._push_breakpoint(s, t0)
        # `_push_breakpoint(s + n, now)`, inlined (once per stretch)
        mi, mh = self._mi, self._mh
        qs.append(s + n)
        qt.append(now)
        h = (s + n) - self.qoe[1] * now
        while mh and mh[-1] >= h:
            mi.pop()
            mh.pop()
        mi.append(self._qbase + len(qs) - 1)
        mh.append(h)
        if len(qs) > 1 << 16:  # forget breakpoints no decoder can still need
            first = min((q.s0 for q in self.running.values() if q.state == DECODE),
                        default=self.step)
            k = bisect_right(qs, first) - 1
            if k > 0:
                del qs[:k], self._qt[:k]
                self._qbase += k
                i = bisect_left(self._mi, self._qbase)
                del self._mi[:i], self._mh[:i]

    def _push_breakpoint(self, s: int, t: float) -> None:
        """Append the step clock's breakpoint (s, t) and keep `_mi` / `_mh` the stack of suffix
        minima of h = s − pace·t (a new point pops every entry it is not above)."""
        qs, mi, mh = self._qs, self._mi, self._mh
        qs.append(s)
        self._qt.append(t)
        h = s - self.qoe[1] * t
        while mh and mh[-1] >= h:
            mi.pop()
            mh.pop()
        mi.append(self._qbase + len(qs) - 1)
        mh.append(h)

    def _token_out(self, seq: Seq, now: float) -> None:
        """A prefill just delivered the sequence's token number `seq.gen` (a KV arrival: 0, no
        token yet; the meter starts)."""
        m = seq.qoe
        if m is None:
            m = seq.qoe = QoEMeter(seq.req.arrival_s, self.qoe[0], self.qoe[1],
                                   seq.req.output_tokens)
        m.advance(now, float(seq.gen))

    def _stint_qoe(self, seq: Seq) -> None:
        """Feed the QoE meter the tokens `seq` decoded since it joined the decode set at step
        `seq.s0`: A(t) runs through the step clock's breakpoints. Where every later breakpoint
        has A >= T (a suffix minimum of s − pace·t, O(log n)), the rest is ∫ T in closed form;
        only a stream that is behind its reader is integrated piece by piece."""
        m = seq.qoe
        qs, qt, base = self._qs, self._qt, self._qbase
        s0 = seq.s0
        y0 = float(seq.gen) - (self.step - s0)  # tokens when it joined (gen already updated)
        # A >= T at breakpoint j  <=>  s_j − p·t_j >= 1 + s0 − y0 − p·e
        thr = 1.0 + s0 - y0 - m.p * m.e
        mi, mh = self._mi, self._mh
        last = len(qs) - 1
        first = bisect_right(qs, s0) - 1
        for j in range(first if first > 0 else 0, last + 1):  # (max(0, ·), as below)
            d = qs[j] - s0
            m.line(qt[j], y0 + (d if d > 0 else 0))
            if mh[bisect_left(mi, j + base)] >= thr:
                m.ahead(qt[last], y0 + (qs[last] - s0))
                return

    def energy_until(self, now: float) -> float:
        """Energy in joules of the instance's GPUs over [0, now], idle time included."""
        idle_s = max(0.0, now - self.busy_s - self.downtime(now))  # no power while down
        return self.energy_j + self.latency.idle_power_w() * self.tp * idle_s
