"""Sliding-window layers' KV and Mamba state under vLLM's hybrid KV-cache manager.

vLLM's V1 engine (0.10 on) keeps a sliding-window layer's KV only for the blocks that hold the
last `sliding_window` tokens and frees the older ones; full-attention layers keep every token.
It groups the layers of each kind into groups of G layers (G the smaller of the two counts,
or the larger where it is under 1.25 times the smaller; the last group of a kind padded) and
pages every group out of one pool of blocks, a block holding `block_size` tokens of G layers.
wrpsim's KV ledger (`kvcache.KVLedger`) counts blocks that grow one per `block_size` tokens a
sequence caches; for a model with sliding layers (Gemma-2 / 3, gpt-oss) a ledger block is
such a G-layer block of the full-attention layers, the same memory holds attention layers / G
times as many as blocks of every layer, and a sequence holds, beside its full layers' blocks,
its window blocks: ceil(sliding / G) per block of window, at most `window_blocks` =
ceil((sliding_window - 1) / block_size) + 1 of them (the blocks the window's tokens can span;
vLLM's decode peak). Where the full layers would take more than one group (more full than
sliding layers), a ledger block is `block_size` tokens of all the full layers and the window
takes sliding / full of them per block, rounded up. The instance charges a sequence's window
blocks when it is admitted — for the length it will reach, prompt plus output (only a
colocated instance pages windows apart: below), at most the window — and frees them when it
finishes or is preempted (`SequenceSetMixin._hold_window`): vLLM allocates them as
the sequence grows, so wrpsim holds them early by at most one window.

Not modelled this way (every layer counted per token, as before): Llama 4's chunked local
attention (`ModelSpec.chunked_attention`), whose KV vLLM 0.11 keeps whole; a model whose every
attention layer is windowed (vLLM frees those too; wrpsim's ledger needs a full layer to count
in); pools with a KV connector — disaggregated prefill / decode roles, a prefix cache with
host-DRAM or remote KV tiers — for which vLLM 0.11 turns its hybrid manager off ("Turning off
hybrid kv cache manager because `--kv-transfer-config` is set"; assumed of later engines too);
and the engines outside vLLM's V1 (the analytical 2023 model, constant latency models). Also
not: while a prompt chunk of C tokens is computed vLLM's sliding layers briefly hold up to W -
1 + C tokens (before the blocks out of the window are freed), and prefix-cache entries hold no
window blocks.

Mamba hybrids (`MambaKV`): vLLM pages a sequence's recurrent state out of the same pool. It
makes one page of every layer the same size — the attention block grows to the smallest
multiple of 16 tokens (its kernels' alignment) whose KV of one layer is at least one
sequence's state of one layer ("Setting attention block size to N tokens to ensure that
attention page size is >= mamba page size"; the state page padded to it) — groups the
attention and the Mamba layers as above (padded), and gives a sequence one block of each Mamba
group and ceil(tokens / N) blocks of the attention group. wrpsim's ledger keeps counting
`block_size` tokens of every attention layer; a sequence holds beside them, from admission to
release, its Mamba groups' blocks and what its last attention block of N tokens (of the
padded group) takes beyond its tokens, both in those ledger blocks. The instance's capacity
then reserves no state for `max_seqs` sequences (`fleet.kv_capacity`): as many run at once as
the blocks hold, as in vLLM 0.11, which capped its batch so (later vLLM refuses to start when
`max_num_seqs` exceeds the state blocks). Not for a model with sliding-window layers too, nor
with a KV connector: those reserve `max_seqs` states up front (`KernelLatency.kv_capacity_blocks`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class WindowKV:
    """Window accounting of one model at one block size (see module docstring): a ledger
    block is `block_size` tokens of `unit_layers` full-attention layers; a sequence's window
    holds ceil(`win_num` x min(its blocks, `window_blocks`) / `win_den`) ledger blocks. Where a
    full-attention layer's token takes other bytes than a sliding layer's (Gemma 4), the layer
    counts are weighted by those bytes (`window_kv`)."""

    all_layers: int  # attention layers (the capacity's memory holds this many per token;
    # in units of a layer's bytes a token where the kinds differ: `window_kv`)
    unit_layers: int  # layers one ledger block holds (the same units)
    win_num: int
    win_den: int
    window_blocks: int  # blocks one sliding layer group holds at most
    block_size: int

    def capacity(self, blocks_all_layers: int) -> int:
        """Ledger blocks in the memory of `blocks_all_layers` blocks of every attention
        layer."""
        return blocks_all_layers * self.all_layers // self.unit_layers

    def blocks(self, tokens: int) -> int:
        """Ledger blocks the window of a sequence of `tokens` tokens holds at most."""
        n = -(-tokens // self.block_size)
        if n > self.window_blocks:
            n = self.window_blocks
        return -(-(self.win_num * n) // self.win_den)

    def seq_blocks(self, tokens: int) -> int:
        """Ledger blocks of a sequence of `tokens` tokens: its full layers' and its window's."""
        return -(-tokens // self.block_size) + self.blocks(tokens)

    def max_tokens(self, blocks: int) -> int:
        """The longest sequence (whole blocks of tokens) that `blocks` ledger blocks hold."""
        bs = self.block_size
        whole = self.blocks(self.window_blocks * bs)  # a full window's ledger blocks
        if blocks >= self.window_blocks + whole:
            return (blocks - whole) * bs
        n = 0
        while (n + 1) + self.blocks((n + 1) * bs) <= blocks:
            n += 1
        return n * bs


def group_size(full: int, sliding: int) -> int:
    """Layers per KV-cache group of vLLM's hybrid manager (its uniform-page-size grouping):
    the smaller count, or the larger where it is under 1.25 times the smaller (fewer padded
    layers)."""
    lo, hi = min(full, sliding), max(full, sliding)
    return hi if hi < 1.25 * lo else lo


def window_kv(model, block_size: int, lat=None) -> WindowKV | None:
    """The `WindowKV` of `model` (a `ModelSpec`) at `block_size`, or None where wrpsim counts
    every layer's KV per token (no sliding layers, chunked attention, no full-attention
    layer: module docstring). Where the full-attention layers have their own KV shape
    (`ModelSpec.split_attention`, Gemma 4) every layer count is weighted by its layer's bytes
    a token on one GPU (`lat`'s heads a GPU; the whole model's without `lat`): vLLM makes the
    pages of both kinds one size by giving the kind with the smaller token more tokens a
    block, so a kind's memory is its layers times their bytes."""
    if not model.sliding_layers or model.chunked_attention or not model.sliding_window:
        return None
    full, sliding = model.attn_layers - model.sliding_layers, model.sliding_layers
    if full <= 0:
        return None
    wb = -(-(model.sliding_window - 1) // block_size) + 1
    g = group_size(full, sliding)
    ef = es = 1  # a full and a sliding layer's KV a token (in any common unit)
    if model.split_attention:
        es, ef = model.split_kv_elems(1 if lat is None else lat.atp)
        k = math.gcd(ef, es)
        ef, es = ef // k, es // k
    all_w = full * ef + sliding * es
    if -(-full // g) == 1:  # the full layers are one group: vLLM's blocks exactly
        return WindowKV(all_w, g * ef, -(-sliding // g) * es, ef, wb, block_size)
    return WindowKV(all_w, full * ef, sliding * es, full * ef, wb, block_size)


#: tokens vLLM aligns a hybrid model's grown attention block to (its kernels' block alignment)
ALIGN = 16


@dataclass(frozen=True)
class MambaKV:
    """Mamba state paged with the KV cache, as vLLM's hybrid KV-cache manager pages it (module
    docstring, "Mamba hybrids"): a ledger block is `block_size` tokens of every attention
    layer, as without it; a sequence holds beside its attention blocks its Mamba state
    (`state_tokens`: its Mamba groups' blocks, in tokens of one attention layer) and what
    vLLM's large attention blocks (`attn_block` tokens of `padded_layers` layers,
    `attn_layers` of them real) take beyond its tokens' blocks, in ledger blocks (rounded up
    once, as one sum)."""

    state_tokens: int
    attn_block: int  # tokens of one of vLLM's attention blocks (its page = one Mamba state)
    padded_layers: int  # attention layers in vLLM's attention groups, padding included
    attn_layers: int
    block_size: int

    @property
    def state_blocks(self) -> int:
        """Ledger blocks of one sequence's Mamba state alone (rounded up)."""
        return -(-self.state_tokens // (self.block_size * self.attn_layers))

    def capacity(self, blocks_all_layers: int) -> int:
        """Ledger blocks: those of every attention layer, the state held per sequence."""
        return blocks_all_layers

    def blocks(self, tokens: int) -> int:
        """Ledger blocks a sequence of `tokens` tokens holds beside its tokens' blocks: its
        Mamba state and its vLLM attention blocks (groups padded) beyond its tokens."""
        unit = self.block_size * self.attn_layers
        att = -(-tokens // self.attn_block) * self.attn_block * self.padded_layers
        return -(-(self.state_tokens + att) // unit) - -(-tokens // self.block_size)

    def seq_blocks(self, tokens: int) -> int:
        """Ledger blocks of a sequence of `tokens` tokens, its state included."""
        return -(-tokens // self.block_size) + self.blocks(tokens)

    def max_seqs(self, blocks: int) -> int:
        """Sequences whose state (and one attention block each) `blocks` ledger blocks hold:
        the most vLLM runs at once in that memory."""
        return blocks // self.seq_blocks(1)

    def max_tokens(self, blocks: int) -> int:
        """The longest sequence (whole blocks of tokens) that `blocks` ledger blocks hold."""
        lo, hi = 0, max(blocks, 0)  # in blocks of tokens; seq_blocks grows with the tokens
        while lo < hi:
            mid = (lo + hi + 1) // 2
            lo, hi = (mid, hi) if self.seq_blocks(mid * self.block_size) <= blocks else (
                lo, mid - 1)
        return lo * self.block_size


def pages_state(win) -> bool:
    """Whether a pool's window object `win` (`for_pool`) pages its Mamba state with the KV."""
    return isinstance(win, MambaKV)


def reserved_seqs(win, max_seqs: int) -> int:
    """Sequences whose Mamba state an instance's KV capacity reserves up front
    (`KernelLatency.kv_capacity_blocks`): `max_seqs`, or none where `win` pages it."""
    return 0 if isinstance(win, MambaKV) else max_seqs


def mamba_kv(lat, model, block_size: int) -> MambaKV | None:
    """The `MambaKV` of a Mamba hybrid under latency model `lat` (its per-GPU state and KV
    bytes) at `block_size`, or None for a model without Mamba layers, without attention
    layers, or with sliding-window layers too (their two pagings are not combined: such a
    pool reserves its state up front, `KernelLatency.kv_capacity_blocks`)."""
    state = float(getattr(lat, "mamba_state_bytes", 0.0) or 0.0)
    a, m = model.attn_layers, model.mamba_layers
    if not state or not m or not a or model.sliding_layers:
        return None
    # one sequence, one layer, one GPU of its attention group (`attn_dp` groups of tp /
    # attn_dp GPUs each hold their own sequences, as their KV)
    per_layer_state = state / getattr(lat, "atp", lat.tp) / m
    per_token_layer = lat.kv_bytes_per_token_per_gpu / a
    bs = block_size
    # vLLM's attention kernels' block alignment: 16 tokens, whatever the scheduler's block
    attn_block = ALIGN * -(-per_layer_state // (ALIGN * per_token_layer))  # page >= a state
    g = group_size(a, m)
    state_tokens = -(-m // g) * g * attn_block  # its Mamba groups' blocks (padded layers)
    return MambaKV(int(state_tokens), int(attn_block), -(-a // g) * g, a, bs)


def for_pool(lat, model, block_size: int, connector: bool = False):
    """`window_kv` (sliding windows) or `mamba_kv` (Mamba state) for an instance whose latency
    model is `lat`: vLLM's engines only (the kernel-table models, `KernelLatency`), and only
    without a KV connector (`connector`: a disaggregated role or KV tiers), with which vLLM
    0.11 keeps every layer whole; None for the analytical 2023 model, which reproduces old
    results, and for constant latency models."""
    if connector or model is None or getattr(lat, "kernels", None) is None:
        return None
    return window_kv(model, block_size, lat) or mamba_kv(lat, model, block_size)


def label(model, win, lat) -> str:
    """What a pool's outputs add to its calibration label about its sliding-window KV or
    Mamba state: how its instances count it (paged apart, or every layer per token and why;
    Mamba state paged per sequence, or reserved for `max_seqs` sequences); '' for a model
    with neither or a latency model outside vLLM's V1 engines."""
    if model is None or getattr(lat, "kernels", None) is None:
        return ""
    if isinstance(win, MambaKV):
        return (f"; Mamba state paged with the KV cache: {win.state_blocks} blocks a sequence, "
                f"attention blocks of {win.attn_block} tokens (vLLM's hybrid KV-cache manager)")
    state = ("; Mamba state reserved for max_seqs sequences (not paged with the KV cache)"
             if model.mamba_layers and getattr(lat, "mamba_state_bytes", 0.0) else "")
    if not model.sliding_layers:
        return state
    if win is not None:
        return ("; sliding-window KV: one window a sequence (vLLM's hybrid KV-cache manager)"
                + state)
    if model.chunked_attention:
        why = "chunked attention, which vLLM keeps whole: 0.11, assumed of later engines"
    elif model.sliding_layers >= model.attn_layers:
        why = "every attention layer windowed: not paged apart"
    else:
        why = "a KV connector, with which vLLM 0.11 turns its hybrid manager off"
    return f"; windowed layers' KV counted for every token ({why})" + state
