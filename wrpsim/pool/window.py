"""Sliding-window layers' KV under vLLM's hybrid KV-cache manager.

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
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class WindowKV:
    """Window accounting of one model at one block size (see module docstring): a ledger
    block is `block_size` tokens of `unit_layers` full-attention layers; a sequence's window
    holds ceil(`win_num` x min(its blocks, `window_blocks`) / `win_den`) ledger blocks."""

    all_layers: int  # attention layers (the capacity's memory holds this many per token)
    unit_layers: int  # layers one ledger block holds
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


def window_kv(model, block_size: int) -> WindowKV | None:
    """The `WindowKV` of `model` (a `ModelSpec`) at `block_size`, or None where wrpsim counts
    every layer's KV per token (no sliding layers, chunked attention, no full-attention
    layer: module docstring)."""
    if not model.sliding_layers or model.chunked_attention or not model.sliding_window:
        return None
    full, sliding = model.attn_layers - model.sliding_layers, model.sliding_layers
    if full <= 0:
        return None
    wb = -(-(model.sliding_window - 1) // block_size) + 1
    g = group_size(full, sliding)
    if -(-full // g) == 1:  # the full layers are one group: vLLM's blocks exactly
        return WindowKV(full + sliding, g, -(-sliding // g), 1, wb, block_size)
    return WindowKV(full + sliding, full, sliding, full, wb, block_size)


def for_pool(lat, model, block_size: int, connector: bool = False) -> WindowKV | None:
    """`window_kv` for an instance whose latency model is `lat`: vLLM's engines only (the
    kernel-table models, `KernelLatency`), and only without a KV connector (`connector`: a
    disaggregated role or KV tiers), with which vLLM 0.11 keeps every layer whole; None for
    the analytical 2023 model, which reproduces old results, and for constant latency
    models."""
    if connector or model is None or getattr(lat, "kernels", None) is None:
        return None
    return window_kv(model, block_size)


def label(model, win: WindowKV | None, lat) -> str:
    """What a pool's outputs add to its calibration label about its sliding-window KV: how
    its instances count it (paged apart, or every layer per token and why); '' for a model
    without windowed layers or a latency model outside vLLM's V1 engines."""
    if model is None or not model.sliding_layers or getattr(lat, "kernels", None) is None:
        return ""
    if win is not None:
        return "; sliding-window KV: one window a sequence (vLLM's hybrid KV-cache manager)"
    if model.chunked_attention:
        why = "chunked attention, which vLLM 0.11 keeps whole"
    elif model.sliding_layers >= model.attn_layers:
        why = "every attention layer windowed: not paged apart"
    else:
        why = "a KV connector, with which vLLM 0.11 turns its hybrid manager off"
    return f"; windowed layers' KV counted for every token ({why})"
