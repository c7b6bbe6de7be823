"""Sliding-window layers' KV under vLLM's hybrid KV-cache manager.

vLLM's V1 engine (0.10 on) keeps a sliding-window layer's KV only for the blocks that hold the
last `sliding_window` tokens and frees the older ones; full-attention layers keep every token.
It pages both kinds out of one pool of blocks. wrpsim's KV ledger (`kvcache.KVLedger`) counts
blocks of `block_size` tokens that grow one per `block_size` tokens a sequence caches; for a
model with sliding layers (Gemma-2 / 3, gpt-oss, Mistral-style windows) a ledger block is
`block_size` tokens of the *full-attention* layers only, and a sequence holds, beside those,
its window blocks: `sliding / full` ledger blocks per block of window, at most
`window_blocks` = ceil((sliding_window - 1) / block_size) + 1 of them (the blocks the window's
tokens can span), rounded up to whole ledger blocks. The instance charges a sequence's window
blocks when it is admitted (for the length it will reach: prompt plus output, at most the
window) and frees them when it leaves, finishes or is preempted (`Instance._window_blocks`):
vLLM allocates them as the sequence grows, so wrpsim holds them early by at most the window of
a sequence admitted shorter than it.

Not modelled this way: Llama 4's chunked local attention (`ModelSpec.chunked_attention`),
whose KV vLLM keeps whole; a model whose every attention layer is windowed (no full layer to
count blocks in: its layers are counted in full, as before); and the engines outside vLLM's
V1 (the analytical 2023 model, constant latency models). KV transfers between prefill and
decode instances still send every layer's KV for every token (an upper bound).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class WindowKV:
    """Window accounting of one model at one block size (see module docstring)."""

    full: int  # attention layers that keep every token
    sliding: int  # sliding-window layers
    window_blocks: int  # blocks one sliding layer holds at most
    block_size: int

    def capacity(self, blocks_all_layers: int) -> int:
        """Ledger blocks (of the full layers) in the memory of `blocks_all_layers` blocks of
        every attention layer."""
        return blocks_all_layers * (self.full + self.sliding) // self.full

    def blocks(self, tokens: int) -> int:
        """Ledger blocks the window of a sequence of `tokens` tokens holds at most."""
        n = -(-tokens // self.block_size)
        if n > self.window_blocks:
            n = self.window_blocks
        return -(-(self.sliding * n) // self.full)

    def seq_blocks(self, tokens: int) -> int:
        """Ledger blocks of a sequence of `tokens` tokens: its full layers' and its window's."""
        return -(-tokens // self.block_size) + self.blocks(tokens)

    def max_tokens(self, blocks: int) -> int:
        """The longest sequence (whole blocks of tokens) that `blocks` ledger blocks hold."""
        bs = self.block_size
        whole = self.blocks(self.window_blocks * bs)  # a full window's ledger blocks
        if blocks >= self.window_blocks + whole:
            return (blocks - whole) * bs
        n = blocks * self.full // (self.full + self.sliding)  # every layer's block, below
        while (n + 1) + self.blocks((n + 1) * bs) <= blocks:
            n += 1
        return n * bs


def window_kv(model, block_size: int) -> WindowKV | None:
    """The `WindowKV` of `model` (a `ModelSpec`) at `block_size`, or None where vLLM keeps
    every layer's KV whole (no sliding layers, chunked attention, no full-attention layer)."""
    if not model.sliding_layers or model.chunked_attention or not model.sliding_window:
        return None
    full = model.attn_layers - model.sliding_layers
    if full <= 0:
        return None
    return WindowKV(full, model.sliding_layers,
                    -(-(model.sliding_window - 1) // block_size) + 1, block_size)


def for_latency(lat, model, block_size: int) -> WindowKV | None:
    """`window_kv` for an instance whose latency model is `lat`: vLLM's engines only (the
    kernel-table models, `KernelLatency`); None for the analytical 2023 model, which reproduces
    old results, and for constant latency models."""
    if getattr(lat, "kernels", None) is None:
        return None
    return window_kv(model, block_size)
