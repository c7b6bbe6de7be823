"""Disaggregated hand-off: a prefill instance passes a sequence's KV cache to a decode instance.

Mixed into `Instance`. The KV of a handed-off sequence is always held by the prefill instance,
the decode instance or both — never by neither — as with vLLM's disaggregated KV connectors,
Mooncake and DistServe:

1. **Reservation.** When the transfer could first start — when the iteration that completes
   the prompt is planned (``layerwise``: bytes leave as layers are computed) or, after the
   engine's orchestration (`LatencyModel.handover_s`: the prefill engine's answer, the
   router's second dispatch, the decode engine's scheduling of the pull), once it has ended
   (``serialized``, as vLLM's NixlConnector pulls) — the prefill instance asks the sequence's
   decode instance to reserve blocks for the whole KV it will send plus the slot of its first
   decode step (`reserve`; an ``orca`` decode instance reserves the sequence's whole life, as
   at a colocated admission).
2. **Grant, FCFS.** The decode instance grants reservations in the order they were asked,
   like admissions: from the blocks its running batch's planned iterations leave, keeping the
   watermark free while it holds anything, and none while a sequence it preempted waits to be
   recomputed (preempted sequences go first, as in vLLM). One that does not fit waits in
   `reservations`; waiting ones are granted at its iteration boundaries.
3. **Back-pressure.** Until the grant, the sequence stays on the prefill instance (`outgoing`)
   with its blocks, counted in the prefill instance's ledger and requests: hand-offs that wait
   fill its memory and it stops admitting prompts; a prompt in progress whose next chunk finds
   no blocks waits (`Instance._plan`) instead of being preempted, until a transfer frees them
   (`_send`'s arrival wakes the instance).
4. **Transfer.** Once granted, the KV is sent (`_send`). Layer-wise streaming needs the
   blocks before the first layer leaves: a sequence granted only after its last prefill
   iteration was planned is sent whole once its prompt is done. The prefill instance frees its
   blocks when the last byte has left; the decode instance holds them already (`incoming`)
   and `receive`s the sequence into `waiting` with them, where it waits to join the decode
   batch (`BatchingMixin._admit_ready`) without allocating again.
5. **First token.** The user's first token is the decode instance's: as vLLM's disaggregated
   KV connectors (NixlConnector, P2P NCCL, LMCache) run it, the token the prefill instance
   sampled is dropped and the decode engine computes the prompt's last position again and
   samples every output token, the first at the end of its first step with the sequence
   (`Instance._second_tokens`). So TTFT includes the transfer and any wait for a place in
   the decode batch (`max_seqs`), and TPOT is the decode instance's steps alone.

The exposed transfer of a request (`kv_transfer_s`: prompt done -> KV arrived) includes a
serialized pull's orchestration and the wait for the reservation (`kv_wait_s`: from the prompt's
end, or the later ask, to the blocks' grant; 0 when they were granted at once or before the
prompt was done).

Failures (`wrpsim.pool.failure`): a prefill instance that fails loses the sequences it holds —
queued, prefilling, or done and waiting for a reservation — and withdraws their reservations
(granted blocks are freed on the decode side); transfers already under way complete. A decode
instance that fails loses the sequences whose transfer to it is under way (their bytes still
arrive and are ignored; the prefill instance frees its blocks when they have left); the
reservations it had granted or queued for prompts still being computed are forgotten (those
prefill instances ask again when the prompt is done, and lose the sequence if the decode
instance is still down then); sequences done and waiting for its reservation are lost, their
prefill instance freeing their blocks.
"""

from __future__ import annotations

from collections import deque

from wrpsim.pool.failure import FailureMixin
from wrpsim.pool.sequence import WAITING, Seq
from wrpsim.pool.wakeup import wake

# Seq.xfer: where a hand-off stands
NONE, ASKED, GRANTED, STREAMING, SENT = 0, 1, 2, 3, 4


class HandoffMixin(FailureMixin):
    """Both sides of the disaggregated hand-off of `Instance` (see module docstring)."""

    __slots__ = ()  # (the attributes are `Instance`'s slots)

    def _init_handoff(self) -> None:
        # role, KV transfer link and parameters: set by the fleet
        self.role = "both"
        self.transfer = None
        self.kv_mode = "layerwise"
        self.layers = 1
        self.kv_bytes_per_token = 0.0
        self.state_bytes_per_seq = 0.0  # recurrent (Mamba) state of one sequence, all GPUs
        self.nic_free_by_group = None  # per attention group, when its NICs are free (`nic_groups`)
        self.gpus: list[int] = []  # fabric GPU ids (network=fluid|packet)
        self.handed_off = 0
        self.kv_sent_bytes = 0.0  # prefill side: KV bytes of every hand-off sent from here
        self.outgoing: dict[int, Seq] = {}  # prefill side, by id(seq): prompt done, KV here
        self.reservations: deque = deque()  # decode side: (seq, prefill instance) to grant
        self.incoming: dict[int, Seq] = {}  # decode side: blocks granted, KV not arrived yet
        self.n_ready = 0  # decode side: arrived sequences in `waiting` (behind preempted ones)
        self.on_received = None  # callable(request) told when `receive` counts one (oracle view)

    # ------------------------------------------------------------------ prefill side
    def admit_disaggregated(self, req, decode_instance) -> None:
        """Accept a request to prefill here and decode on `decode_instance`."""
        seq = Seq(req)
        seq.handoff = decode_instance
        self.waiting.append(seq)
        self._count(+1)
        self._wake()

    def waiting_handoffs(self) -> list:
        """Sequences whose prompt is done here and whose KV waits for a reservation."""
        return [s for s in self.outgoing.values() if s.xfer != SENT]

    def _stream_early(self, chunks: list, now: float, dur: float) -> None:
        """The iteration [now, now + dur] being planned completes some prompts: ask their
        reservations, and start streaming the KV of those granted layer by layer."""
        for seq, c, _ in chunks:
            if (seq.done + c == seq.target and seq.handoff is not None
                    and seq.gen + 1 < seq.req.output_tokens and self._ask(seq, now)):
                seq.xfer = STREAMING
                self.transfer.early(self, seq, xfer_bytes(seq), now, dur, self.layers)

    def _ask(self, seq: Seq, now: float) -> bool:
        """Ask the decode instance to reserve `seq`'s blocks; True if granted at once."""
        dst = seq.handoff
        if dst.down:
            return False  # asked again when the prompt is done
        seq.xfer = ASKED
        seq.ask_s = now
        return dst.reserve(seq, self, now)

    def _handoff(self, seq: Seq, now: float) -> None:
        """Prompt done on this prefill instance: send the KV cache once the decode instance
        has reserved its blocks (at once if it has). A `serialized` hand-off first waits the
        engine's orchestration (`LatencyModel.handover_s`: the decode engine learns of the
        request and pulls its KV only then), the KV held here meanwhile."""
        del self.running[seq.req.id]
        self.handed_off += 1
        seq.prefill_inst = self.name
        seq.prefill_end_s = now
        seq.xfer_bytes = xfer_bytes(seq)
        self.outgoing[id(seq)] = seq
        if seq.xfer == STREAMING:
            self._send(seq, now, self.kv_mode, self._t0)
            return
        delay = (self.latency.handover_s()
                 if seq.xfer == NONE and self.kv_mode == "serialized" else 0.0)
        if delay > 0.0:
            wake(self.env, delay, self._pull_later, (self.epoch, seq))
        else:
            self._pull(seq, now)

    def _pull_later(self, ev) -> None:
        """The orchestration of `seq`'s hand-off is over: the decode engine pulls (unless this
        instance failed meanwhile, which lost the sequence)."""
        epoch, seq = ev.value
        if epoch == self.epoch and self.outgoing.get(id(seq)) is seq:
            self._pull(seq, self.env.now)

    def _pull(self, seq: Seq, now: float) -> None:
        """Send `seq`'s KV once its decode instance has reserved the blocks (at once if it
        has or can); forget the hand-off if that instance is down."""
        if seq.xfer == GRANTED or (seq.xfer == NONE and self._ask(seq, now)):
            self._send(seq, now, "serialized", now)
        elif seq.xfer == NONE:  # its decode instance is down
            self._drop_handoff(seq, now)
            self.lost_handler(seq, seq.handoff)

    def _granted(self, seq: Seq, now: float) -> None:
        """The decode instance granted `seq`'s reservation (which had to wait): send its KV
        now if its prompt is done; otherwise `_handoff` sends it when it is."""
        if self.outgoing.get(id(seq)) is seq:
            self._send(seq, now, "serialized", now)

    def _send(self, seq: Seq, now: float, mode: str, t_start: float) -> None:
        """Start the transfer; free this instance's blocks when the last byte has left."""
        seq.xfer = SENT
        self._count(-1)
        dst = seq.handoff
        nbytes = seq.xfer_bytes
        self.kv_sent_bytes += nbytes
        epoch = self.epoch

        def arrived(t: float) -> None:
            if self.tracer is not None:  # from the first byte (`t_start`) to the last
                self.tracer.span(self.name, 1, f"kv -> {dst.name}", t_start, t, seq.req.id,
                                 request=seq.req.id, bytes=nbytes,
                                 kv_transfer_s=t - seq.prefill_end_s)
            if self.epoch == epoch:  # (a failure meanwhile freed every block already)
                del self.outgoing[id(seq)]
                self._release(seq, seq.blocks, seq.req.prompt_tokens, t)
                if self.waiting or self.running:
                    self._wake()  # the freed blocks may admit a prompt or let one go on
            dst.receive(seq)

        self.transfer.send(self, dst, seq, nbytes, mode, t_start, self.layers, arrived)

    def _drop_handoff(self, seq: Seq, now: float) -> None:
        """Forget a hand-off whose decode instance failed: free its blocks here."""
        del self.outgoing[id(seq)]
        self._count(-1)
        seq.xfer = NONE
        self._release(seq, seq.blocks, seq.req.prompt_tokens, now)
        if self.waiting or self.running:
            self._wake()

    # ------------------------------------------------------------------ decode side
    def reserve(self, seq: Seq, src, now: float) -> bool:
        """Reserve blocks for the KV `src` will send for `seq` (module docstring): grant at
        once and return True if none is waiting before it and they fit, else queue the
        request (`src._granted` is called when it is granted)."""
        life = self.sched.policy == "orca"
        seq.dst_blocks = self.kv.blocks_for(seq.target + (seq.req.output_tokens - 1 if life
                                                          else 1))
        if not self.reservations and self._fits(seq.dst_blocks):
            self._grant(seq, now)
            return True
        self.reservations.append((seq, src))
        return False

    def _fits(self, blocks: int) -> bool:
        kv = self.kv
        if self.down or len(self.waiting) > self.n_ready:  # a preempted sequence goes first
            return False
        headroom = self._watermark if kv.used > kv.evictable else 0
        return blocks <= kv.available - self._promised_blocks() - headroom

    def _grant(self, seq: Seq, now: float) -> None:
        self.kv.allocate(seq.dst_blocks, now)
        seq.xfer = GRANTED
        seq.grant_s = now
        self.incoming[seq.req.id] = seq
        self._refit_run()

    def _grant_reservations(self, now: float) -> None:
        """Grant waiting reservations FCFS while they fit."""
        q = self.reservations
        while q and self._fits(q[0][0].dst_blocks):
            seq, src = q.popleft()
            self._grant(seq, now)
            src._granted(seq, now)

    def _withdraw(self, seq: Seq, now: float) -> None:
        """`seq`'s prefill instance failed: free its granted blocks or drop its request."""
        if self.incoming.get(seq.req.id) is seq:
            del self.incoming[seq.req.id]
            self.kv.release(seq.dst_blocks, now)
        else:
            self.reservations = deque(r for r in self.reservations if r[0] is not seq)

    def receive(self, seq: Seq) -> None:
        """Accept a sequence whose KV cache has just arrived into the blocks reserved for it."""
        if self.incoming.get(seq.req.id) is not seq:
            return  # its reservation died with a failure of this instance: already lost
        del self.incoming[seq.req.id]
        now = self.env.now
        seq.state = WAITING
        seq.kv_ready = True
        seq.handoff = None
        seq.blocks = seq.dst_blocks
        seq.shared = 0
        seq.arrived_s = now
        # the token the prefill instance sampled is not the user's: as vLLM's disaggregated
        # connectors run it, the decode engine computes the prompt's last position again and
        # samples every output token, the first one at the end of its first step with the
        # sequence (`_second_tokens`), which may wait here for a place in the batch
        seq.gen = 0
        if self.qoe is not None:
            self._token_out(seq, now)  # (token 0: the meter starts)
        self.waiting.append(seq)
        self.n_ready += 1
        self._count(+1)
        if self.on_received is not None:
            self.on_received(seq.req)
        self._wake()

    # ------------------------------------------------------------------ failures
    def _fail_handoffs(self, now: float) -> list:
        """This instance fails now (before its state is cleared): settle both sides of its
        hand-offs (module docstring); return the extra sequences it loses."""
        lost = []
        dsts = {}  # (a dict: grants in a deterministic order)
        for seq in [*self.running.values(), *self.waiting, *self.waiting_handoffs()]:
            if seq.handoff is not None and seq.xfer in (ASKED, GRANTED, STREAMING):
                seq.handoff._withdraw(seq, now)
                dsts[seq.handoff] = None
        lost += self.waiting_handoffs()
        for seq in self.outgoing.values():  # a transfer under way completes, but its pins in
            seq.pinned = seq.promote = ()  # this prefix cache die with it (it is reset)
        self.outgoing.clear()
        for seq in self.incoming.values():
            if seq.xfer == SENT:
                lost.append(seq)
            else:  # its prompt is still being computed: asked again when it is done
                seq.xfer = NONE
                self.transfer.abandon(seq)
        self.incoming.clear()
        for seq, src in self.reservations:
            if src.outgoing.get(id(seq)) is seq:
                src._drop_handoff(seq, now)
                lost.append(seq)
            else:
                seq.xfer = NONE
        self.reservations.clear()
        self.n_ready = 0
        for dst in dsts:  # withdrawn reservations may make room for others
            dst._grant_reservations(now)
        return lost


def xfer_bytes(seq) -> float:
    """Bytes a hand-off moves for `seq`: what its decode instance will hold — each of its GPUs
    its share of the KV cache (its copy of replicated KV heads or of MLA's latent) at the
    kv_dtype both pools share, for every prompt token, and a hybrid model's recurrent (Mamba)
    state of the sequence, which does not grow with the prompt."""
    dst = seq.handoff
    return seq.target * dst.kv_bytes_per_token + dst.state_bytes_per_seq
