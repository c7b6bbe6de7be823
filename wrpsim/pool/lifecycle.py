"""The life of sequences inside an instance: decoding set, completion, preemption.

Mixed into `Instance`. Decoding sequences are tracked relative to the instance's decode-step
counter (see `sequence.py`) with a heap of finish steps, so a decode run of any length costs
O(log n) per finishing sequence. The heap holds exactly one entry per decoding sequence: a
preempted decoder's entry is taken out when it is preempted (O(n), rare), so the hot path reads
the heap's top without checking it. Leaving sequences return their blocks through `_release`,
which turns prompt blocks into prefix-cache entries when the instance has a cache (full
prompt blocks become entries earlier, as soon as a prefill chunk computes them:
`_share_computed`); it also
frees the blocks a model's sliding-window layers or Mamba state hold from admission on
(`_hold_window`, `wrpsim.pool.window`), which never become cache entries. The
hand-off of a prompt from a prefill to a decode instance is in `handoff.py`.
"""

from __future__ import annotations

import heapq

from wrpsim.pool.handoff import HandoffMixin
from wrpsim.pool.sequence import DECODE, DONE, WAITING, Seq


class SequenceSetMixin(HandoffMixin):
    """Decoding set and sequence exits of `Instance` (see module docstring)."""

    __slots__ = ()  # (the attributes are `Instance`'s slots)

    def _add_decoder(self, seq: Seq) -> None:
        seq.state = DECODE
        seq.kv0 = seq.target - seq.shared  # own (non-shared) cached tokens
        seq.s0 = self.step
        seq.s_fin = self.step + seq.req.output_tokens - seq.gen
        if not seq.reserved:
            self.kv.add_decoder(seq.kv0, seq.s0)
            seq.blocks = 0
        self._ctx_const += seq.kv0 + seq.shared - seq.s0
        seq.c0 = self._c_cum
        seq.e0 = self._e_cum
        self.n_dec += 1
        if seq.second_token_s is None:
            self._fresh.append(seq)
        self._pushes += 1
        seq.heap_no = self._pushes
        heapq.heappush(self._heap, (seq.s_fin, seq.req.id, self._pushes, seq))

    def _remove_decoder(self, seq: Seq) -> int:
        """Take `seq` out of the decoding set; return the blocks it holds."""
        if not seq.reserved:
            kv = self.kv
            kv.remove_decoder(seq.kv0, seq.s0)
            held = -(-(seq.kv0 + self.step - seq.s0) // kv.block_size)  # `kv.blocks_for`
        else:
            held = seq.blocks
        self._ctx_const -= seq.kv0 + seq.shared - seq.s0
        self.n_dec -= 1
        seq.gen += self.step - seq.s0
        self._charge_decoder(seq)
        if seq.qoe is not None:
            self._stint_qoe(seq)
        return held

    def _finish(self, seq: Seq, held: int, now: float) -> None:
        seq.state = DONE
        seq.gen = seq.req.output_tokens
        del self.running[seq.req.id]
        self._release(seq, held, seq.req.prompt_tokens, now)
        self.completed += 1
        self._count(-1)
        self.sink.finished(seq, self, now)

    def _preempt_last(self, now: float) -> None:
        """Preempt the most recently admitted running sequence (recompute later)."""
        _, seq = self.running.popitem()
        if seq.state == DECODE:
            held = self._remove_decoder(seq)
            heap = self._heap  # its finish entry goes (module docstring)
            heap.remove((seq.s_fin, seq.req.id, seq.heap_no, seq))
            heapq.heapify(heap)
            computed = seq.req.prompt_tokens
        else:
            self.prefilling.remove(seq)
            held = seq.blocks
            computed = seq.done
        self._release(seq, held, computed, now)
        seq.state = WAITING
        seq.target = seq.req.prompt_tokens + seq.gen
        seq.done = 0
        seq.shared = 0
        seq.kv_ready = False
        seq.blocks = 0
        seq.reserved = False
        seq.preemptions += 1
        self.preemptions += 1
        self.waiting.appendleft(seq)

    def _window_blocks(self, seq: Seq) -> int:
        """Ledger blocks `seq` holds here for its life beside its tokens' blocks: the window
        of its sliding-window layers, or its Mamba state, at the length it will reach, prompt
        plus output (`wrpsim.pool.window`; only a colocated instance pages them so, and it
        decodes here)."""
        return self._win.blocks(seq.req.prompt_tokens + seq.req.output_tokens)

    def _hold_window(self, seq: Seq, win: int, now: float) -> None:
        """Allocate an admitted sequence's window blocks (freed by `_release`)."""
        self.kv.allocate(win, now)
        seq.win = win

    def _share_computed(self, seq: Seq, now: float) -> None:
        """A prompt chunk of `seq` has just been computed: its prompt's full hash blocks now
        computed (block j holds prompt tokens [j·hb, (j + 1)·hb), whole and inside the prompt)
        that no cache entry holds yet become entries pinned by `seq`, as vLLM V1's
        `cache_full_blocks` and SGLang's radix cache share them while their owner still runs.
        Their KV blocks move from the sequence's own (`seq.blocks`) to the cache (the ledger's
        used blocks are unchanged) and `seq.shared` grows by their tokens, so every later block
        count (`_add_decoder`, the next chunk, `_release`) sees them as pinned entries. `pinned`
        grows contiguously from its length: an id cached meanwhile by another sequence stops
        it (those blocks stay the sequence's own; `_release` frees them). The prompt's last
        partial block, which decode tokens fill, stays its own (`_release` makes it an entry
        when it leaves)."""
        cache = self.prefix
        ids = seq.req.hash_ids
        hb = cache.block_tokens
        end = seq.done
        if end > seq.req.prompt_tokens:  # (a recomputed sequence's generated tokens)
            end = seq.req.prompt_tokens
        n = end // hb
        if n > len(ids):
            n = len(ids)
        j = len(seq.pinned)
        if j >= n:
            return
        new = []
        while j < n and ids[j] not in cache:
            new.append(ids[j])
            j += 1
        if not new:
            return
        per = hb // self.sched.block_size  # (hb is a multiple of it: `Fleet`)
        for hid in new:
            cache.insert(hid, per)
        cache.pin(new)
        seq.pinned = (*seq.pinned, *new)
        seq.shared += len(new) * hb
        seq.blocks -= len(new) * per
        cache.trim(now)

    def _release(self, seq: Seq, held: int, computed: int, now: float) -> None:
        """Free a leaving sequence's `held` own blocks and its window blocks; with a prefix
        cache, the blocks of its first `computed` prompt tokens become cache entries instead,
        and its pins are undone."""
        cache = self.prefix
        if cache is not None and seq.req.hash_ids:
            ids, hb, bs = seq.req.hash_ids, cache.block_tokens, self.sched.block_size
            prompt = seq.req.prompt_tokens
            j = len(seq.pinned)
            moved = 0
            new = []
            while j < len(ids):
                end = min((j + 1) * hb, prompt)
                if end > computed:
                    break
                if ids[j] not in cache:
                    b = -(-(end - j * hb) // bs)
                    if moved + b > held:
                        break
                    new.append((ids[j], b))
                    moved += b
                j += 1
            # deepest blocks first, so a prefix's head stays cached longest (as in vLLM)
            for hid, b in reversed(new):
                cache.insert(hid, b)
            cache.unpin(seq.pinned[::-1])
            seq.pinned = ()
            held -= moved
        if seq.win:  # its window or Mamba-state blocks (`wrpsim.pool.window`)
            held += seq.win
            seq.win = 0
        self.kv.release(held, now)
        if cache is not None:
            cache.trim(now)

    def _pop_finished(self, now: float) -> None:
        """Decoders whose last token came with the step just ended leave (`_finish`), in
        finish-heap order."""
        heap = self._heap
        step = self.step
        while self.n_dec:
            if heap[0][0] > step:
                return
            seq = heapq.heappop(heap)[3]
            held = self._remove_decoder(seq)
            self._finish(seq, held, now)
