"""Prefix-block hash ids: block size metadata, re-blocking, consistency and intrinsic hit ratio.

A request's `hash_ids` lists one id per *prefix block* of `B = df.attrs["hash_block_tokens"]`
tokens of its prompt: block k covers prompt tokens [k·B, min((k+1)·B, P)), so a prompt of P
tokens has ceil(P / B) ids and only the last block may be partial. Ids have *prefix semantics*:
two requests share their first k blocks iff their first k ids are equal; equivalently (and this
is what `prefix_violation` checks) every occurrence of an id sits at the same position k and
follows the same id at k - 1. So one id names a whole prefix.

`B` must be a positive multiple of `KV_BLOCK_TOKENS` (16, the engine's default KV block size),
so a hit always covers whole KV blocks. Ids generated here (sessions, agent rounds, synthetic
reuse) default to `DEFAULT_BLOCK_TOKENS` = 16: hits are then as fine as the engine's own blocks.

`intrinsic_hit_ratio` is the reference the engine's prefix cache is compared against: an
unbounded cache that sees every request's blocks at its arrival (see its docstring).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from wrpsim.errors import ConfigError
from wrpsim.workload.columns import TraceColumns, columnwise

if TYPE_CHECKING:
    import pandas as pd

KV_BLOCK_TOKENS = 16
DEFAULT_BLOCK_TOKENS = 16
ATTR = "hash_block_tokens"


def check_block_tokens(value: Any, field: str = "hash_block_tokens") -> int:
    """`value` as an int if it is a positive multiple of 16, else ConfigError naming `field`."""
    ok = isinstance(value, (int, np.integer, float)) and not isinstance(value, bool)
    if ok and float(value).is_integer() and value > 0 and int(value) % KV_BLOCK_TOKENS == 0:
        return int(value)
    raise ConfigError(f"{field} must be a positive integer multiple of {KV_BLOCK_TOKENS} (the "
                      f"engine's KV block size default), got {value!r}")


def block_tokens(df: pd.DataFrame | TraceColumns) -> int | None:
    """The trace's `hash_block_tokens` attribute, or None when it carries no hash ids."""
    if "hash_ids" not in df.columns:
        return None
    v = df.attrs.get(ATTR)
    return None if v is None else int(v)


def set_block_tokens(df: pd.DataFrame | TraceColumns,
                     value: int | None) -> pd.DataFrame | TraceColumns:
    """Set (or, with None, drop) the `hash_block_tokens` attribute of `df` in place; return df."""
    if value is None:
        df.attrs.pop(ATTR, None)
    else:
        df.attrs[ATTR] = int(value)
    return df


def n_blocks(prompt_tokens: int, block: int) -> int:
    """ceil(prompt_tokens / block): the number of prefix blocks of a prompt."""
    return -(-int(prompt_tokens) // int(block))


def reblock_ids(ids: Sequence[int], old: int, new: int, prompt_tokens: int) -> list[int]:
    """The ids of one prompt at block size `new`, from its ids at block size `old`.

    `new` must be a multiple or a divisor of `old`. Coarsening by f = new/old: block m takes the
    id of its last old block (under prefix semantics that id names the whole prefix). Refining by
    f = old/new: sub-block s of old block i = s // f gets id `ids[i] * f + s % f` (injective, so
    prefix semantics hold; sharing is only known at the old granularity).
    """
    n = min(n_blocks(prompt_tokens, new), -(-len(ids) * old // new))
    if new >= old:
        f = new // old
        return [int(ids[min((m + 1) * f, len(ids)) - 1]) for m in range(n)]
    f = old // new
    return [int(ids[s // f]) * f + s % f for s in range(n)]


@columnwise
def reblock(trace: TraceColumns, new: int, field: str = "hash_block_tokens") -> TraceColumns:
    """The trace with its hash ids re-expressed at block size `new` (see `reblock_ids`); takes
    and returns `TraceColumns` or a DataFrame (`columns.columnwise`)."""
    new = check_block_tokens(new, field)
    old = block_tokens(trace)
    if old is None or old == new:
        return trace
    if new % old and old % new:
        raise ConfigError(f"{field}: cannot re-block hash ids of {old}-token blocks into "
                          f"{new}-token blocks; use a multiple or a divisor of {old}")
    ids = [None if h is None else reblock_ids(h, old, new, p)
           for h, p in zip(trace["hash_ids"], trace["prompt_tokens"].tolist())]
    out = trace.with_columns({"hash_ids": ids})
    return set_block_tokens(out, new)


def truncate_ids(trace: TraceColumns) -> TraceColumns:
    """The trace with every id list cut to ceil(prompt_tokens / B) ids (after prompts were
    clipped); unchanged without hash ids or B."""
    b = block_tokens(trace)
    if b is None:
        return trace
    return trace.with_columns({"hash_ids": [
        None if h is None else list(h[: n_blocks(p, b)])
        for h, p in zip(trace["hash_ids"], trace["prompt_tokens"].tolist())]})


class IdMinter:
    """Deterministic fresh ids `start, start + 1, ...`; `chain` builds prefix-consistent lists."""

    def __init__(self, start: int = 0) -> None:
        """Start counting at `start`."""
        self.next = int(start)

    def fresh(self, n: int) -> list[int]:
        """`n` ids never returned before by this minter."""
        out = list(range(self.next, self.next + n))
        self.next += n
        return out

    def chain(self, head: Sequence[int], shared_tokens: int, prompt_tokens: int,
              block: int) -> list[int]:
        """Ids of a prompt whose first `shared_tokens` tokens equal the prompt behind `head`.

        The blocks lying wholly inside the shared tokens keep `head`'s ids (at most len(head)),
        every other block gets a fresh id, so the result is prefix-consistent with `head`.
        """
        keep = min(max(shared_tokens, 0), prompt_tokens) // block
        ids = [int(x) for x in head[:keep]]
        return ids + self.fresh(n_blocks(prompt_tokens, block) - len(ids))


def prefix_violation(id_lists: Iterable[Sequence[int] | None]) -> str | None:
    """None if the id lists are prefix-consistent, else a description of the first violation.

    Checks, in one pass over all ids, that each id always appears at the same position with the
    same predecessor (None at position 0). By induction on k this is equivalent to: whenever
    two lists have equal ids at position k, their first k + 1 ids are equal.
    """
    v = first_prefix_violation(id_lists)
    if v is None:
        return None
    row, x, k, prev, (k0, prev0, row0) = v
    return (f"request {row}: id {x} at position {k} after {prev}, but request {row0} has it "
            f"at position {k0} after {prev0}")


def first_prefix_violation(id_lists: Iterable[Sequence[int] | None]) -> tuple | None:
    """The first violation `prefix_violation` describes, as (row, id, position, predecessor,
    (position, predecessor, row) where the id was first seen), or None."""
    seen: dict[int, tuple[int, int | None, int]] = {}
    for row, ids in enumerate(id_lists):
        if ids is None:
            continue
        prev = None
        for k, x in enumerate(ids):
            x = int(x)
            first = seen.setdefault(x, (k, prev, row))
            if first[0] != k or first[1] != prev:
                return row, x, k, prev, first
            prev = x
    return None


def intrinsic_hits(df: pd.DataFrame) -> np.ndarray:
    """Per request (row order = arrival order), the number of leading ids seen in earlier rows."""
    seen: set[int] = set()
    out = np.zeros(len(df), dtype=np.int64)
    if "hash_ids" not in df.columns:
        return out
    for i, ids in enumerate(df["hash_ids"].tolist()):
        if ids is None:
            continue
        h = 0
        for x in ids:
            if x not in seen:
                break
            h += 1
        out[i] = h
        seen.update(ids)
    return out


def intrinsic_hit_ratio(df: pd.DataFrame) -> tuple[float, float]:
    """(block_ratio, token_ratio) of an unbounded prefix cache replaying `df` in row order.

    Requests are taken in row order (canonical frames are sorted by arrival; ties keep file
    order). Request i's hit h_i is the length of the longest prefix of its ids that all occur in
    rows before i; then all its ids become visible (no eviction, visible from arrival on, so no
    engine with a finite or per-instance cache can hit more). A request without ids has
    h_i = 0 and ceil(P_i / B) blocks.

    block_ratio = sum h_i / sum n_i, with n_i = len(ids_i) (or ceil(P_i / B) without ids).
    token_ratio = sum B · min(h_i, floor((P_i - 1) / B)) / sum P_i: the hit blocks in tokens,
    capped at P_i - 1 rounded down to whole blocks, so at least one prompt token is always
    computed (it produces the first output token) and a skipped prefix is whole cache blocks (the
    engine's rule). Both are 0.0 for a frame without hash ids.
    """
    b = block_tokens(df)
    if b is None or len(df) == 0:
        return 0.0, 0.0
    hits = intrinsic_hits(df)
    prompt = df["prompt_tokens"].to_numpy(dtype=np.int64)
    sizes = np.array([n_blocks(p, b) if h is None else len(h)
                      for h, p in zip(df["hash_ids"], prompt.tolist())], dtype=np.int64)
    blocks = float(hits.sum() / sizes.sum()) if sizes.sum() else 0.0
    tokens = float((b * np.minimum(hits, (prompt - 1) // b)).sum() / prompt.sum())
    return blocks, tokens
