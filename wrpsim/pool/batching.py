"""Admission of waiting sequences into an instance's running batch (the scheduling policies).

Mixed into `Instance`. Each `_admit_*` method is called at an iteration boundary and returns
the prompt chunks `(seq, tokens, new_blocks)` the next iteration computes (new prompts only if
they joined the queue by `_cutoff`: the schedule lag of `Instance._plan`); new blocks are only
*promised* (allocated when the iteration starts), so every check subtracts what is pending.
Sequences whose KV cache arrived from a prefill instance (`kv_ready`) hold the blocks their
decode instance reserved for it (`handoff.py`) and join the decode batch directly
(`_admit_ready`), before any prompt. With a prefix cache, `_lookup` pins the cached leading
blocks of a sequence about to be admitted and `_unlookup` undoes that if it is not admitted
after all.
"""

from __future__ import annotations

from wrpsim.pool.lifecycle import SequenceSetMixin
from wrpsim.pool.sequence import PREFILL, Seq


class BatchingMixin(SequenceSetMixin):
    """Admission policies of `Instance` (see module docstring)."""

    __slots__ = ()  # (the attributes are `Instance`'s slots)

    def _admit_ready(self, now: float, admit: bool) -> None:
        """Move waiting sequences whose KV has arrived into the decode batch, in arrival order.

        They hold their blocks already (the whole KV plus the slot of their first decode step;
        orca: their whole life), so only the batch's next step must fit, with the watermark.
        They go before sequences this instance preempted (which would otherwise wait for
        blocks that arrived sequences hold); those are the only other waiting sequences of a
        decode instance and sit at the queue's head, so the arrived ones are its last
        `n_ready`."""
        waiting, kv = self.waiting, self.kv
        reserve = self.sched.policy == "orca"
        while admit and self.n_ready and len(self.running) < self.sched.max_seqs:
            i = len(waiting) - self.n_ready
            seq = waiting[i]
            step = kv.next_step_blocks(self.step) if self.n_dec else 0
            if step > kv.available - (self._watermark if self.running else 0):
                break
            del waiting[i]
            self.n_ready -= 1
            if not reserve:  # the first step's slot: the batch's step blocks count it now
                kv.release(seq.blocks - kv.blocks_for(seq.target), now)
            seq.state = PREFILL
            if seq.admit_s is None:
                seq.admit_s = now
            self.running[seq.req.id] = seq
            seq.reserved = reserve
            self._add_decoder(seq)

    def _lookup(self, seq: Seq) -> int:
        """Pin the cached leading blocks of a sequence about to be admitted; skip their prefill.

        Only whole blocks inside both the prompt and all but the last token to compute count,
        so the skipped prefix is a multiple of the block size and one token is always computed.
        Returns the HBM blocks that loading the lower-tier part of that prefix will take.
        """
        cache = self.prefix
        ids = seq.req.hash_ids
        if cache is None or not ids:
            return 0
        hb = cache.block_tokens
        k = cache.match(ids)
        if seq.admit_s is None:
            seq.hit_blocks = k
        k = min(k, min(seq.req.prompt_tokens, seq.target - 1) // hb)
        if k:
            here = [h for h in ids[:k] if h in cache]
            seq.promote = [h for h in ids[:k] if h not in cache]
            seq.pinned = tuple(here)
            cache.pin(seq.pinned)
            seq.shared = seq.done = k * hb
            return sum(cache.lower_blocks(h) for h in seq.promote)
        return 0

    def _unlookup(self, seq: Seq) -> None:
        if seq.pinned or seq.promote:
            self.prefix.unpin(seq.pinned[::-1])
            seq.pinned = ()
            seq.promote = ()
            seq.shared = seq.done = 0

    def _promote(self, seq: Seq, now: float) -> None:
        """Load the lower-tier blocks of an admitted sequence's prefix into HBM (blocking;
        called when it has some: `seq.promote`)."""
        seconds, blocks = self.prefix.promote(seq.promote, now)
        self._load_s += seconds
        self.kv_load_blocks += blocks
        n = len(seq.pinned) + len(seq.promote)
        seq.pinned = seq.req.hash_ids[:n]
        seq.promote = ()

    def _admit_chunks(self, now: float, admit: bool, step1: int) -> list:
        """sarathi: fill the token budget left by decodes with prompt chunks (FCFS); the
        decoding batch's next step needs `step1` blocks (0 without decoders)."""
        kv, bs = self.kv, self.sched.block_size
        budget = self.sched.token_budget - self.n_dec
        pending = step1  # blocks promised so far
        chunks = []
        available = kv.capacity - kv.used + kv.evictable  # (`kv.available`: constant until a
        # prompt is taken below)
        for seq in self.prefilling:
            if budget <= 0:
                break
            c = seq.target - seq.done
            if budget < c:  # (min, without the builtin's call)
                c = budget
            nb = -(-(seq.done + c - seq.shared) // bs) - seq.blocks
            if nb > available - pending:
                break
            pending += nb
            budget -= c
            chunks.append((seq, c, nb))
        waiting, running = self.waiting, self.running
        # prompts wait while a sequence whose KV arrived does (see _admit_ready)
        while (admit and waiting and not self.n_ready and budget > 0
               and len(running) < self.sched.max_seqs and waiting[0].enq_s <= self._cutoff):
            seq = waiting[0]
            load = self._lookup(seq) if self.prefix is not None else 0
            c = seq.target - seq.done
            if budget < c:  # (min, without the builtin's call)
                c = budget
            nb = -(-(seq.done + c - seq.shared) // bs)
            win = self._window_blocks(seq) if self._win is not None else 0
            available = kv.capacity - kv.used + kv.evictable  # (`kv.available`, inlined)
            if nb + load + win > available - pending - (self._watermark if running else 0):
                self._unlookup(seq)
                break
            self._take(seq, now)
            if win:
                self._hold_window(seq, win, now)
            pending += nb
            budget -= c
            chunks.append((seq, c, nb))
        return chunks

    def _admit_whole(self, now: float, reserve: bool, admit: bool) -> list:
        """vllm / orca: admit whole prompts FCFS within the token budget (at least one)."""
        kv = self.kv
        budget = self.sched.token_budget - (self.n_dec if reserve else 0)
        pending = 0
        chunks = []
        waiting, running = self.waiting, self.running
        while (admit and waiting and not self.n_ready and len(running) < self.sched.max_seqs
               and waiting[0].enq_s <= self._cutoff):
            seq = waiting[0]  # (prompts wait while a sequence whose KV arrived does)
            load = self._lookup(seq)
            c = seq.target - seq.done
            if chunks and c > budget:
                self._unlookup(seq)
                break
            own = seq.target - seq.shared
            decodes_here = reserve and seq.handoff is None
            nb = kv.blocks_for(own + (seq.req.output_tokens - seq.gen - 1 if decodes_here else 0))
            win = self._window_blocks(seq) if self._win is not None else 0
            if nb + load + win > kv.available - pending - (self._watermark if running else 0):
                self._unlookup(seq)
                break
            self._take(seq, now)
            if win:
                self._hold_window(seq, win, now)
            seq.reserved = reserve
            pending += nb
            budget -= c
            chunks.append((seq, c, nb))
        return chunks

    def _take(self, seq: Seq, now: float) -> None:
        """Admit the head of the waiting queue: start it and load its lower-tier prefix."""
        self.waiting.popleft()
        self._start_seq(seq, now)
        if seq.promote:
            self._promote(seq, now)

    def _start_seq(self, seq: Seq, now: float) -> None:
        seq.state = PREFILL
        if seq.admit_s is None:
            seq.admit_s = now
            seq.hit_tokens = seq.done
        self.running[seq.req.id] = seq
        self.prefilling.append(seq)
