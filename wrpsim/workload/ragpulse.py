"""RAGPulse loader (`kind: ragpulse`): one week of RAG Q&A requests with grouped content ids.

Format (flashserve/RAGPulse `data/0_trace.jsonl`), one JSON object per line::

    {"timestamp": "82", "input_length": 3112, "output_length": 192,
     "hash_ids": {"sys_prompt": [8302, 14332, 15199], "passages_ids": [7398, ...],
                  "history": [15200], "web_search": [], "user_input": [26923]},
     "session_id": "1757476916095-afhwfadnh5ew"}

`timestamp` is a *string* of seconds since the start of the trace; `input_length` /
`output_length` become `prompt_tokens` / `output_tokens`; `session_id` is kept. Timestamps are
not strictly sorted (one step back, several ties): rows are ordered by a stable sort, ties keep
file order, and `arrival_s = t - min(t)`.

What the ids are. RAGPulse replaces every piece of prompt content by an id: the system prompt
and the chat history are cut into chunks of at most 512 tokens, a retrieved passage, a web
result and the user question are one chunk each; equal content has equal ids. The token length
of each id lives in side files (`1_sys_prompt.jsonl` ... `5_web_search.jsonl`) that are not
shipped here. RAGPulse's own replayer builds a prompt by concatenating the parts in key order:
system prompt, passages, history, web search, user input. So the ids are *content-chunk* ids of
variable length, grouped by part, not prefix blocks: an id equal in two requests after a
different system prompt is not a shared KV prefix.

How they become prefix-block ids (at `B = hash_block_tokens`, default 512):

1. flatten the parts in that prompt order into one chunk sequence c_1..c_m;
2. name each chunk *prefix* c_1..c_i by a trie node (equal sequences, equal nodes), which gives
   the id lists prefix semantics;
3. lay the chunks out with estimated lengths per part (`chunk_tokens`, defaults below; the
   last chunk extends to the end of the prompt), chunk i ending at token E_i;
4. block k (tokens [kB, min((k+1)B, P))) gets the id of (node of the chunk holding its last
   token, k): the first i with E_i >= the block's end, the last chunk if none, and always the
   last chunk for the final block (so two questions after the same context never look equal).

Step 4 is prefix-consistent because chunk ends E_1..E_i depend only on c_1..c_i. The estimates
matter little for reuse: the system prompt's chunks are 512 tokens (except the last), so at
B = 512 the shared system-prompt chunks map exactly onto blocks, and the third system-prompt
chunk is unique to almost every request, so nothing after it is shared anyway.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from wrpsim.errors import ConfigError, unknown_choice
from wrpsim.workload.prefix import check_block_tokens, n_blocks, set_block_tokens
from wrpsim.workload.readers import read_records
from wrpsim.workload.records import fail, int_list, integer, number, text
from wrpsim.workload.validate import canonical_frame, sort_by_arrival

PARTS = ("sys_prompt", "passages_ids", "history", "web_search", "user_input")
#: Estimated tokens per chunk of each part (system prompt / history: 512-token chunks; a
#: passage or web result: ~256; the user question always comes last and takes the rest).
CHUNK_TOKENS = {"sys_prompt": 512, "passages_ids": 256, "history": 256, "web_search": 256,
                "user_input": 64}
NATIVE_BLOCK_TOKENS = 512
OPTIONS = ("cache", "chunk_tokens", "hash_block_tokens")


def ragpulse_params(hash_block_tokens: int | None = None,
                    chunk_tokens: Mapping[str, int] | None = None) -> dict[str, Any]:
    """Resolved loader parameters: the block size and the per-part chunk-length estimates."""
    b = NATIVE_BLOCK_TOKENS if hash_block_tokens is None else check_block_tokens(
        hash_block_tokens, "hash_block_tokens")
    est = dict(CHUNK_TOKENS)
    if chunk_tokens is not None:
        if not isinstance(chunk_tokens, Mapping):
            raise ConfigError(f"source.chunk_tokens: expected a mapping {{part: tokens}}, got "
                              f"{chunk_tokens!r}")
        for part, v in chunk_tokens.items():
            if part not in PARTS:
                raise unknown_choice(f"source.chunk_tokens.{part}", part, PARTS)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ConfigError(f"source.chunk_tokens.{part} must be an integer >= 1, got {v!r}")
            est[part] = int(v)
    return {"hash_block_tokens": b, "chunk_tokens": est}


def _chunks(path: Path, line: int, rec: dict) -> list[tuple[int, int]]:
    """(part index, chunk id) in prompt order; errors name the file, line and part."""
    groups = rec.get("hash_ids")
    if not isinstance(groups, dict):
        raise fail(path, line, "hash_ids", f"expected an object of id lists per prompt part "
                   f"({', '.join(PARTS)}), got {groups!r}")
    for part in groups:
        if part not in PARTS:
            raise fail(path, line, f"hash_ids.{part}", f"unknown prompt part; valid parts: "
                       f"{', '.join(PARTS)}")
    out: list[tuple[int, int]] = []
    for p, part in enumerate(PARTS):
        ids = groups.get(part) or []
        out.extend((p, x) for x in int_list(path, line, ids, f"hash_ids.{part}"))
    return out


def _block_ids(chunks: list[tuple[int, int]], prompt: int, params: dict, trie: dict,
               ids: dict) -> list[int]:
    """Prefix-block ids of one request (steps 2-4 of the module docstring)."""
    b, est = params["hash_block_tokens"], params["chunk_tokens"]
    nodes, ends, node, end = [], [], 0, 0
    for p, x in chunks:
        node = trie.setdefault((node, p, x), len(trie) + 1)
        end += est[PARTS[p]]
        nodes.append(node)
        ends.append(end)
    if not nodes:  # no content ids: a context of its own
        nodes, ends = [-len(ids) - 1], [prompt]
    nb = n_blocks(prompt, b)
    block_end = np.minimum(np.arange(1, nb + 1) * b, prompt)
    which = np.minimum(np.searchsorted(np.asarray(ends), block_end, side="left"), len(nodes) - 1)
    which[-1] = len(nodes) - 1
    return [ids.setdefault((nodes[i], k), len(ids)) for k, i in enumerate(which.tolist())]


def load_ragpulse(path: str | Path, params: Mapping[str, Any]) -> pd.DataFrame:
    """Load a RAGPulse trace into the canonical frame (see the module docstring).

    `params` comes from `ragpulse_params`. The result has `session_id` and `hash_ids` columns
    and `attrs["hash_block_tokens"]`. Raises `TraceError` naming the file, line and field for
    bad JSON, a missing or non-numeric timestamp, a token count < 1 or non-integer, or id
    groups that are not lists of integers.
    """
    path = Path(path)
    recs = read_records(path)
    n = len(recs)
    t = np.empty(n)
    prompt = np.empty(n, dtype=np.int64)
    output = np.empty(n, dtype=np.int64)
    session: list[str | None] = []
    chunks: list[list[tuple[int, int]]] = []
    for i, (line, rec) in enumerate(recs):
        t[i] = number(path, line, rec, "timestamp", "arrival_s")
        prompt[i] = integer(path, line, rec, "input_length", "prompt_tokens")
        output[i] = integer(path, line, rec, "output_length", "output_tokens")
        chunks.append(_chunks(path, line, rec))
        session.append(text(path, line, rec, "session_id", "session_id"))
    order = np.argsort(t, kind="stable")
    trie: dict = {}
    ids: dict = {}
    hashes = [None] * n
    for i in order.tolist():
        hashes[i] = _block_ids(chunks[i], int(prompt[i]), params, trie, ids)
    df = canonical_frame(t - t.min(), prompt, output, {"session_id": session, "hash_ids": hashes})
    return set_block_tokens(sort_by_arrival(df), params["hash_block_tokens"])
