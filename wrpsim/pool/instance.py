"""One model replica on `tp` GPUs: waiting queue, continuous batching, paged KV, preemption.

The instance is event-driven with one SimPy event per *stretch* of iterations, not per token:

- an iteration that prefills (prompt chunks, possibly mixed with decode steps) is one event;
- a run of decode-only iterations is planned in one go up to the next change of batch
  membership (the first sequence to finish, or the KV cache running out) and is one event; an
  arrival that could join the batch cuts the run short at the end of the iteration in progress.

Simulated behaviour is the same as stepping every iteration: iteration times come from the
`LatencyModel` one by one (`decode_run_s`), and arrivals join only at iteration boundaries.

A decode run's end times (from its start) are `_cum`: None for one iteration; (a, b, n) when
step k of its n lasts a + b k (`LatencyModel.decode_run_linear`; step k then ends at
a (k + 1) + b k (k + 1) / 2, computed when needed: `_end_at`, `_done_steps`); else the array
`LatencyModel.decode_run_cum_s`. A stretch ends with one light event (`wrpsim.pool.wakeup`).
Attribution of time and energy and the QoE breakpoints are in `accounting.py`.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import deque
from math import sqrt

import numpy as np

from wrpsim.pool.accounting import _DECODE_RUN, _MIXED
from wrpsim.pool.batching import BatchingMixin
from wrpsim.pool.frontend import FrontEnd
from wrpsim.pool.kvcache import KVLedger
from wrpsim.pool.latency import LatencyModel
from wrpsim.pool.prefix import PrefixCache
from wrpsim.pool.scheduler import SchedulerConfig
from wrpsim.pool.sequence import DECODE, Seq
from wrpsim.pool.wakeup import wake

__all__ = ["_DECODE_RUN", "_MIXED", "Instance"]
INF = float("inf")
#: the callback of a stretch's end that a cut made void (`_truncate`): any one-argument C
#: function that does nothing is cheaper than calling `_on_end` to find the token stale
_void = id


class Instance(BatchingMixin):
    """A model replica with an iteration-level scheduler (see module docstring).

    Read-only attributes for routers: `pool` (name), `index` (within the pool), `outstanding`
    (requests waiting or running), `num_waiting`, `num_running`, `kv_used_frac`.
    """

    # Every attribute is a slot (the mixins' too): the hot loop reads and writes them through
    # the interpreter's slot fast paths instead of a large instance dict. Attributes of the
    # mixins are set by their `_init_*` methods. (`__dict__` stays, empty, for attributes
    # tests and tools add or replace: an instance's method patched by a test, a log.)
    __slots__ = ("__dict__", "_c_cum", "_chunks", "_ctx_const", "_cum", "_cutoff", "_dec_in_iter",
                 "_dur", "_e_cum", "_end_fn", "_fresh", "_heap", "_in_area", "_in_system", "_in_t",
                 "_kick", "_kind", "_lag", "_late", "_load_s", "_mh", "_mi", "_n", "_power",
                 "_pre_tokens", "_pushes", "_qbase", "_qs", "_qt", "_slice", "_t0", "_token",
                 "_watermark", "_win", "_wk", "busy", "busy_s", "completed", "decode_iterations",
                 "decode_tokens", "down", "down_s", "down_since", "encode_s", "energy_j", "env",
                 "epoch", "failures", "frontend", "gpus", "handed_off", "incoming", "index",
                 "iterations", "itl", "kv", "kv_bytes_per_token", "kv_load_blocks", "kv_mode",
                 "kv_sent_bytes", "latency", "layers", "lost_handler", "max_context",
                 "max_run_steps", "model", "n_dec", "n_ready", "name", "nic_free_by_group",
                 "on_received", "outgoing", "pool", "power_log", "preemptions", "prefill_tokens",
                 "prefilling", "prefix", "price_per_gpu_hour", "qoe", "reservations", "role",
                 "running", "sched", "sink", "state_bytes_per_seq", "step", "tp", "tracer",
                 "transfer", "waiting")
    #: the default of `max_run_steps` (the longest decode-only run planned as one event; 1
    #: steps every iteration: tests compare both), set per instance at construction
    _default_run_steps: int = 1 << 62

    def __init__(self, env, pool: str, index: int, latency: LatencyModel,
                 sched: SchedulerConfig, kv_blocks: int, sink, prefix_block_tokens: int = 0,
                 prefix_capacity_blocks: int | None = None):
        """`prefix_block_tokens` > 0 enables the prefix cache (ids of that many tokens each)."""
        self.env = env
        self.max_run_steps = self._default_run_steps
        self._init_failure()
        self.pool = pool
        self.index = index
        self.name = f"{pool}/{index}"
        self.latency = latency
        self.frontend = FrontEnd(latency)
        self.tp = latency.tp
        self.sched = sched
        self.kv = KVLedger(sched.block_size, kv_blocks)
        #: a `window.WindowKV` (the ledger counts the full-attention layers' blocks and each
        #: sequence holds its sliding-window blocks beside them) or `window.MambaKV` (each
        #: sequence holds its Mamba state's blocks beside its KV), set by the fleet
        #: (`fleet.pool_window`; colocated instances only)
        self._win = None
        self.prefix = (PrefixCache(self.kv, prefix_block_tokens, prefix_capacity_blocks)
                       if prefix_block_tokens else None)
        self.sink = sink  # receives finished sequences: sink.finished(seq, instance, now)
        self.waiting: deque[Seq] = deque()
        self.running: dict[int, Seq] = {}  # admission order
        self.prefilling: list[Seq] = []  # FCFS
        self._heap: list = []  # (s_fin, req id, push number, seq) of decoding sequences
        self._pushes = 0
        self.step = 0  # decode-step counter
        self.n_dec = 0  # decoding sequences tracked by the KV phase histogram or reserved
        self._ctx_const = 0  # sum over decoders of (cached tokens at step s) - s
        self._watermark = int(sched.watermark * kv_blocks)
        # current stretch of iterations
        self.busy = False
        self._kick = False
        self._token = 0
        self._wk = None  # the Wakeup of the stretch's end (`_begin`; `_truncate` voids it)
        # `_on_end` bound once: a method read from the instance is a new object every time, and
        # every stretch (and every cut of a decode run) hands it to `wake`
        self._end_fn = self._on_end
        self._kind = 0
        self._t0 = 0.0
        self._n = 0
        self._cum: np.ndarray | tuple | None = None  # end times of a decode run (module doc)
        self._dur = 0.0
        self._chunks: list = []
        self._pre_tokens = 0  # prompt tokens of the iteration in progress (`_MIXED`)
        self._power = 0.0  # per-GPU watts of the stretch in progress
        self._dec_in_iter = 0
        # schedule lag (`LatencyModel.schedule_lag`): at a boundary of a busy engine, prompts
        # that arrived after the iteration just ended had started are not admitted yet
        self._lag = bool(latency.schedule_lag)
        self._cutoff = INF  # latest enq_s admissible at the boundary being planned
        # statistics
        self.busy_s = 0.0
        self.energy_j = 0.0
        self.iterations = 0
        self.prefill_tokens = 0
        self.decode_tokens = 0
        self.decode_iterations = 0  # iterations with at least one decoding sequence
        self.preemptions = 0
        self.completed = 0
        self._init_handoff()  # disaggregation: role, KV transfer, reservations
        self.tracer = None  # a wrpsim.metrics.trace.Tracer when the run is traced
        self._slice = None  # traced: the slice `_trace_begin` recorded for the latest stretch
        self.itl = None  # a wrpsim.metrics.itl.ItlLog when inter-token gaps are recorded
        self.power_log = None  # a wrpsim.metrics.powerlog.PowerLog when power is logged
        self._fresh: list[Seq] = []  # new decoders whose second-token time is not known yet
        # handed-off decoders whose second token was given the end of the running stretch's
        # second step (`_second_tokens`): taken back if the stretch is cut before it (`_truncate`)
        self._late = None
        self._load_s = 0.0  # lower-tier KV loads to add to the iteration being planned
        self.encode_s: dict[int, float] = {}  # vision-encoder s by request (wrpsim.pool.vision)
        self.kv_load_blocks = 0
        self._in_system = 0
        self._in_area = 0.0
        self._in_t = 0.0
        # attribution of busy time and energy to sequences (see `_charge`): running sums of one
        # decoder's share of every iteration so far, in instance-seconds and joules
        self.price_per_gpu_hour = 0.0  # set by the fleet
        self.model: str | None = None  # the catalog model it serves (set by the fleet)
        self.max_context = 0  # longest prompt + output accepted (0: no limit; set by the fleet)
        self._c_cum = 0.0
        self._e_cum = 0.0
        # streaming QoE: (expected TTFT s, expected tokens/s) or None; breakpoints of the
        # decode-step clock, step _qs[i] reached at time _qt[i] (see `_stint_qoe`)
        self.qoe = None
        self._qs: list[int] = []
        self._qt: list[float] = []
        self._qbase = 0  # breakpoints forgotten so far (absolute index of _qs[0])
        self._mi: list[int] = []  # suffix minima of s − pace·t: absolute indices, values
        self._mh: list[float] = []

    # ------------------------------------------------------------------ router view
    @property
    def outstanding(self) -> int:
        """Requests on this instance: waiting plus running."""
        return self._in_system

    @property
    def num_waiting(self) -> int:
        """Requests waiting to be admitted."""
        return len(self.waiting)

    @property
    def num_running(self) -> int:
        """Requests admitted (prefilling or decoding)."""
        return len(self.running)

    @property
    def kv_used_frac(self) -> float:
        """Fraction of KV blocks in active use now (held by sequences or pinned; evictable prefix
        cache blocks count as free, as in vLLM), counting the steps of a decode run so far."""
        used = self.kv.used - self.kv.evictable
        if self.busy and self._kind == _DECODE_RUN:
            used += self.kv.step_blocks(self.step, self._done_steps(self.env._now))
        return used / self.kv.capacity

    def _promised_blocks(self) -> int:
        """Blocks still to be allocated for the iterations done or in progress now (a decode
        run's; a run's later steps are planned again if their blocks are taken: `_refit_run`)."""
        if self.busy and self._kind == _DECODE_RUN:
            k, n = self._done_steps(self.env._now) + 1, self._n
            return self.kv.step_blocks(self.step, k if k < n else n)  # (min, without the call)
        return 0

    def _refit_run(self) -> None:
        """Blocks were just taken: end a decode run whose later steps no longer fit after the
        iteration in progress (stepping would find that out at the next boundary)."""
        if (self.busy and self._kind == _DECODE_RUN
                and self.kv.step_blocks(self.step, self._n) > self.kv.available):
            self._truncate()

    def stream_rate(self) -> float:
        """Output tokens per second the instance produces now: the decoding sequences of the
        iteration in progress over its mean step time (0 when idle)."""
        if not self.busy or self._dur <= 0.0:
            return 0.0
        return self._dec_in_iter * self._n / self._dur

    def _end_at(self, k: int) -> float:
        """End of iteration `k` (0-based) of the stretch in progress, from its start `_t0`."""
        cum = self._cum
        if cum is None:
            return self._dur
        if type(cum) is tuple:
            return _lin_end(cum[0], cum[1], k)
        return float(cum[k])

    def _cum_array(self) -> np.ndarray | None:
        """`_cum` as the array `LatencyModel.decode_run_cum_s` returns (None: one iteration)."""
        cum = self._cum
        if type(cum) is tuple:
            from wrpsim.pool.kernels.model import _step_grid

            a, b, n = cum
            k, tri = _step_grid(n)
            return a * k + b * tri
        return cum

    def _done_steps(self, now: float) -> int:
        """Iterations of the decode run in progress that have ended by `now`."""
        x = now - self._t0
        cum = self._cum
        if cum is None:
            return 1 if x >= self._dur else 0
        if type(cum) is tuple:  # bisect_right over the end times, computed as needed
            a, b, hi = cum
            if a > 0.0 and b >= 0.0:
                # the end times a j + b (j k / 2) (j = k + 1, `_lin_end`) then never decrease
                # (each operation rounds monotonically), so bisect_right's answer is the one
                # count of ends <= x: start from the root of b/2 k² + (a + b/2) k + a = x and
                # step to it with the same comparison
                h = a + b / 2.0
                if b > 0.0:
                    r = (sqrt(h * h + 2.0 * b * (x - a)) - h) / b if x >= a else -1.0
                else:
                    r = x / a - 1.0
                lo = int(r) + 1 if r >= 0.0 else 0
                if lo > hi:
                    lo = hi
                while lo > 0 and x < a * lo + b * (lo * (lo - 1) / 2.0):  # end of step lo - 1
                    lo -= 1
                while lo < hi and not x < a * (lo + 1) + b * ((lo + 1) * lo / 2.0):
                    lo += 1
                n = self._n  # (min(k, n), without the builtin's call: hot loop)
                return n if n < lo else lo
            lo = 0
            while lo < hi:
                mid = (lo + hi) // 2
                j = mid + 1
                if x < a * j + b * (j * mid / 2.0):  # _lin_end(a, b, mid)
                    hi = mid
                else:
                    lo = j
            n = self._n  # (min(k, n), without the builtin's call: hot loop)
            return n if n < lo else lo
        k, n = bisect_right(cum, x), self._n
        return n if n < k else k

    def prefix_match(self, request) -> int:
        """Leading prefix blocks of `request` cached here (0 without a prefix cache or ids)."""
        if self.prefix is None or not request.hash_ids:
            return 0
        return self.prefix.match(request.hash_ids)

    def _count(self, delta: int) -> None:
        now = self.env._now
        self._in_area += self._in_system * (now - self._in_t)
        self._in_t = now
        self._in_system += delta

    def in_system_integral(self, now: float) -> float:
        """Integral over [0, now] of the number of requests on the instance (for Little's law)."""
        return self._in_area + self._in_system * (now - self._in_t)

    # ------------------------------------------------------------------ arrivals
    def admit(self, req) -> None:
        """Accept a routed request into the waiting queue (at the current simulated time)."""
        seq = Seq(req)
        seq.enq_s = now = self.env._now
        self.waiting.append(seq)
        self._in_area += self._in_system * (now - self._in_t)  # (`_count(+1)`, inlined)
        self._in_t = now
        self._in_system += 1
        self._wake()

    def _wake(self) -> None:
        """A sequence joined the waiting queue now: plan if idle, or cut a decode run short."""
        if not self.busy:
            if not self._kick:  # plan after all arrivals of this instant have been admitted
                self._kick = True
                wake(self.env, 0, self._on_kick)
        elif self._kind == _DECODE_RUN and self._n > 1 and len(self.running) < self.sched.max_seqs:
            # with a schedule lag the next step is already scheduled: end the run after it
            self._truncate(1 if self._lag else 0)

    def _on_kick(self, _ev) -> None:
        self._kick = False
        if not self.busy:
            self._plan()  # an idle engine schedules at once: no lag
            if self.reservations:
                self._grant_reservations(self.env._now)

    def _truncate(self, extra: int = 0) -> None:
        """End the current decode run at the end of the iteration now in progress (`extra`
        iterations later)."""
        now = self.env._now
        k = self._done_steps(now) + extra
        if k + 1 < self._n:
            if k == 0 and self._late is not None:  # (their second step will not be this one)
                for seq in self._late:
                    seq.second_token_s = None
                    self._fresh.append(seq)
                self._late = None
            end = self._end_at(k)
            if self._slice is not None:  # traced: the slice recorded at the start ends earlier
                self._trace_cut(k + 1)
            self._n = k + 1
            self._dur = end
            # the stretch now ends `delay` from now: one light event; the one it replaces stays
            # on the heap, void: its callback is a no-op now, and `_on_end` would ignore it
            # anyway (it checks the token). (Voiding it saves a Python call per cut run.)
            wk = self._wk
            if wk is not None and wk.fn is self._end_fn and wk.value == self._token:
                wk.fn = _void
            delay = self._t0 + end - now
            self._token = token = self._token + 1
            self._wk = wake(self.env, delay if delay > 0.0 else 0.0, self._end_fn,
                            token)  # (max(0.0, ·))

    # ------------------------------------------------------------------ planning
    def _plan(self, cutoff: float = INF) -> None:
        """At an iteration boundary with nothing in progress: start the next stretch. Waiting
        prompts that joined after `cutoff` are held for one more iteration when there is other
        work to run (schedule lag); with none, the engine schedules them now."""
        now = self.env._now
        policy = self.sched.policy
        kv = self.kv
        preempted = False
        self._cutoff = cutoff
        self._late = None  # (the last stretch's second steps all ran)
        while True:
            admit = not (preempted and self.running)  # no new prompts in a step that preempted
            if admit and self.n_ready:
                self._admit_ready(now, admit)
            # blocks the decoding batch's next step needs (`KVLedger.next_step_blocks`, inlined)
            if self.n_dec:
                bs = kv.block_size
                step1 = kv._hist[(bs - 1 - self.step) % bs] if bs != 1 else kv.decoders
            else:
                step1 = 0
            if policy == "vllm":
                chunks = self._admit_whole(now, False, admit) if self.waiting else []
                n_dec = 0 if chunks else self.n_dec
            else:
                if step1 > kv.capacity - kv.used + kv.evictable:  # (n_dec > 0: step1 > 0)
                    self._preempt_last(now)
                    preempted = True
                    continue
                if policy == "orca":
                    chunks = self._admit_whole(now, True, admit)
                elif self.prefilling or self.waiting:
                    chunks = self._admit_chunks(now, admit, step1)
                else:
                    chunks = None
                n_dec = self.n_dec
            if chunks:
                self._start_mixed(now, chunks, n_dec, step1)
                return
            waiting = self.waiting
            lagged = bool(waiting) and waiting[0].enq_s > self._cutoff
            if lagged and not self.n_dec and not self.prefilling:
                self._cutoff = INF  # nothing else to run: schedule them now
                continue
            # a prompt held back only because this step preempted (or lagged) may join at the
            # next boundary; with a prefix cache, evictions during a run can turn a blocked
            # prompt admissible
            one = (waiting and (preempted or lagged or self.prefix is not None)
                   and len(self.running) < self.sched.max_seqs)
            if self.n_dec and self._start_decode_run(now, 1 if one else 0):
                return
            if self.running and self.outgoing and not self.n_dec:
                # a prefill instance whose memory hand-offs waiting for a grant or a transfer
                # hold: they free it without compute (`arrived` wakes it), where preempting a
                # prompt would throw its chunks away to re-admit it at once (as vLLM's
                # allocation simply fails and the request waits, its computed blocks kept)
                return
            if self.running:  # KV exhausted: free blocks by preemption, then try again
                self._preempt_last(now)
                preempted = True
                continue
            return  # idle

    def _start_mixed(self, now: float, chunks: list, n_dec: int, step1: int) -> None:
        """Start one iteration computing the prompt `chunks` and, when `n_dec`, a step of the
        decoding batch (which needs `step1` new blocks)."""
        attn = 0.0
        tokens = 0
        alloc = 0
        for seq, c, nb in chunks:
            tokens += c
            attn += c * (seq.done + (c + 1) / 2)
            alloc += nb
        if n_dec:
            alloc += step1
        self.kv.allocate(alloc, now)
        ctx = self._ctx_const + self.n_dec * self.step if n_dec else 0
        lat = self.latency
        dur = lat.iteration_s(tokens, attn, n_dec, ctx, len(chunks)) + self._load_s
        self._load_s = 0.0
        if self.encode_s:  # images of requests starting their prefill: encoder first
            dur += self._encoder_s(chunks)
        if self.role == "prefill" and self.kv_mode == "layerwise":
            self._stream_early(chunks, now, dur)
        self._kind = _MIXED
        self._chunks = chunks
        self._pre_tokens = tokens
        self._dec_in_iter = n_dec
        if n_dec and self._fresh:
            self._second_tokens(now + dur)
        self._begin(now, dur, 1, None, lat.power_w(tokens, n_dec, ctx, dur, attn, len(chunks)))
        self.prefill_tokens += tokens

    def _encoder_s(self, chunks: list) -> float:
        """Vision-encoder seconds of the requests whose prefill starts with `chunks` (taken
        from `encode_s`). (A method: a `cpdef` method such as `_start_mixed` holds no closure.)"""
        return sum(self.encode_s.pop(seq.req.id, 0.0) for seq, _c, _nb in chunks)

    def _start_decode_run(self, now: float, max_steps: int = 0) -> bool:
        """Plan decode-only iterations up to the next membership change (or `max_steps` > 0)."""
        step = self.step
        limit = self._heap[0][0] - step  # (the first finish step: `SequenceSetMixin`)
        cap = max_steps or self.max_run_steps
        n = self.kv.max_steps(step, limit if limit <= cap else cap)  # (min, without the call)
        if n == 0:
            return False
        nd = self.n_dec
        ctx = self._ctx_const + nd * step
        lat = self.latency
        if n == 1:
            dur = lat.iteration_s(0, 0.0, nd, ctx)
            cum = None
        else:
            lin = lat.decode_run_linear(nd, ctx, n)
            if lin is None:
                cum = lat.decode_run_cum_s(nd, ctx, n)
                dur = float(cum[-1])
            else:  # the end times `decode_run_cum_s` would give (`_end_at`)
                a, b = lin
                cum = (a, b, n)
                dur = a * n + b * (n * (n - 1) / 2.0)  # `_lin_end(a, b, n - 1)`, inlined
        self._kind = _DECODE_RUN
        self._dec_in_iter = nd
        if self._fresh:  # (the ends of the run's first two steps, as `_end_at` will give them)
            if cum is None:
                self._second_tokens(now + dur)
            elif type(cum) is tuple:
                self._second_tokens(now + (cum[0] * 1 + cum[1] * 0.0),
                                    now + _lin_end(cum[0], cum[1], 1))
            else:
                self._second_tokens(now + float(cum[0]), now + float(cum[1]))
        # power at the run's middle context (it changes little within a run)
        power = lat.decode_power_w(nd, ctx + (nd * (n - 1)) // 2, dur / n)
        self._begin(now, dur, n, cum, power)  # (a method: `SpanningInstance` replaces it)
        return True

    def _second_tokens(self, t: float, t2=None) -> None:
        """New decoders produce their second token at the end of the coming iteration `t`; a
        handed-off one (`HandoffMixin.receive`: no token yet) its first there and its second at
        `t2`, the end of the step after it (None: that step is not planned yet; the next
        iteration's start gives it)."""
        fresh = self._fresh
        later = None  # (`_plan` cleared `_late` before planning this stretch)
        for seq in fresh:
            if seq.state == DECODE and seq.second_token_s is None:
                if seq.first_token_s is not None:
                    seq.second_token_s = t
                    continue
                seq.first_token_s = t
                if later is None:
                    later = [seq]
                else:
                    later.append(seq)
        fresh.clear()
        if later is not None:
            if t2 is None:
                fresh.extend(later)
            else:  # (unless the stretch is cut after its first step: `_truncate`)
                for seq in later:
                    seq.second_token_s = t2
                self._late = later

    def _begin(self, now, dur, n, cum, power_w) -> None:
        """Start the stretch of `n` iterations planned at `now` (`now` is the clock's time):
        it ends `dur` later with one light event."""
        if self.tracer is not None:
            self._trace_begin(now, dur, n)
        self.busy = True
        self._t0 = now  # (four stores, not one of a tuple display: hot loop)
        self._dur = dur
        self._n = n
        self._cum = cum
        self._power = power_w
        self._token = token = self._token + 1
        self._wk = wake(self.env, dur, self._end_fn, token)

    def _trace_begin(self, now, dur, n) -> None:
        """Record the stretch starting now as a trace slice."""
        prefill = self._pre_tokens if self._kind == _MIXED else 0
        name = "prefill+decode" if prefill and self._dec_in_iter else (
            "prefill" if prefill else f"decode x{n}")
        self.tracer.slice(self.name, 0, name, now, dur, decode_seqs=self._dec_in_iter,
                          prefill_tokens=prefill, waiting=len(self.waiting))
        self._slice = self.tracer.events[-1]

    def cut_off(self, now: float) -> None:
        """The stretch in progress stops at `now` (a failure, or the horizon that ends the run):
        the iterations of a decode run that ended by then count (busy time, energy, tokens:
        `_count_ended_iterations`), the one in progress or a prefill iteration does not, and
        the traced slice ends with the ones that count (`_trace_cut`). Call it once."""
        ran = self._count_ended_iterations(now)
        if self.busy:
            self._trace_cut(ran)

    def _trace_cut(self, k: int) -> None:
        """The traced slice of the stretch in progress covers only its first `k` iterations (a
        decode run cut short, or those that ended before a failure); `k` 0 removes it (nothing
        of it ran). Nothing to do untraced, or for an instance that records its slices when
        they end (`SpanningInstance`)."""
        ev = self._slice
        if ev is None:
            return
        if k:
            ev["dur"] = self._end_at(k - 1) * 1e6
            ev["name"] = f"decode x{k}"
            return
        events = self.tracer.events
        i = len(events) - 1
        while events[i] is not ev:  # (recorded when the stretch began: near the end)
            i -= 1
        del events[i]
        self._slice = None

    # ------------------------------------------------------------------ iteration end
    def _on_end(self, ev) -> None:
        if ev.value != self._token:
            return  # superseded by a truncation
        now = self.env._now
        dur, n = self._dur, self._n
        if self.power_log is not None:
            self.power_log.add(now - dur, now, self._power * self.tp)
        if self._kind == _DECODE_RUN:
            if self.itl is not None:
                self.itl.add_run(self._cum_array(), dur, n, self._dec_in_iter)
            self._count_decode_run(dur, n)
            if self.qoe is not None:
                self._log_steps(n, now)
            kv = self.kv
            step = self.step
            kv.allocate(kv.step_blocks(step, n), now)
            self.step = step = step + n
            if self._heap[0][0] <= step:
                self._pop_finished(now)  # (someone finishes; else skip the call)
            if self._lag:  # (`_end_at(n - 2)` inlined)
                cum = self._cum
                if n < 2:
                    last = dur
                elif type(cum) is tuple:
                    k = n - 2
                    last = dur - (cum[0] * (k + 1) + cum[1] * ((k + 1) * k / 2.0))
                else:
                    last = dur - float(cum[n - 2])
                cutoff = now - last
            else:
                cutoff = INF
        else:
            tp = self.tp
            joules = self._power * tp * dur
            self.busy_s += dur
            self.energy_j += joules
            self.iterations += n
            # the iteration's time and energy are shared equally by the tokens it processed
            nd = self._dec_in_iter
            if self.itl is not None:
                self.itl.add(dur, nd)
            per = 1.0 / (self._pre_tokens + nd)
            chunks = self._chunks
            if nd:
                self._c_cum += dur * per
                self._e_cum += joules * per
                if self.qoe is not None:
                    self._log_steps(1, now)
                self.step += 1
                self.decode_tokens += nd
                self.decode_iterations += 1
                if self._heap[0][0] <= self.step:
                    self._pop_finished(now)  # (someone finishes; else skip the call)
            price = self.price_per_gpu_hour
            for seq, c, nb in chunks:
                # its share (`AccountingMixin._charge`), before it may finish below
                gpu_s = dur * c * per * tp
                seq.gpu_s += gpu_s
                seq.energy_j += joules * c * per
                seq.cost_usd += gpu_s * price / 3600.0
                seq.done += c
                seq.blocks += nb
                if self.prefix is not None and seq.req.hash_ids:
                    self._share_computed(seq, now)  # its full prompt blocks become shareable
                if seq.done == seq.target:
                    self.prefilling.remove(seq)
                    seq.gen += 1
                    if seq.handoff is not None and seq.gen < seq.req.output_tokens:
                        self._handoff(seq, now)
                        continue
                    if seq.first_token_s is None:
                        seq.first_token_s = now
                    elif seq.second_token_s is None:  # (a handed-off sequence preempted
                        seq.second_token_s = now  # between its first and second decode step)
                    if self.qoe is not None:
                        self._token_out(seq, now)
                    if seq.gen >= seq.req.output_tokens:
                        self._finish(seq, seq.blocks, now)
                    else:
                        self._add_decoder(seq)
            self._chunks = []
            cutoff = now - dur if self._lag else INF
        self.busy = False
        # the next iteration was scheduled when the last one started (schedule lag)
        self._plan(cutoff)
        if self.reservations:  # KV reservations get what the batch's next stretch leaves
            self._grant_reservations(now)


def _lin_end(a: float, b: float, k: int) -> float:
    """End of step `k` (0-based) of a decode run whose step i lasts a + b i: the element k of
    `KernelLatency.decode_run_cum_s`'s a·K + b·K(K − 1)/2 (K = k + 1), with the same float
    operations, so the same number."""
    j = k + 1
    return a * j + b * (j * k / 2.0)
