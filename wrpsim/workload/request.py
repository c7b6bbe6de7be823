"""The Request model and the canonical columnar trace form.

A workload is carried in *canonical form* (see `TRACE_COLUMNS`): one row per request, sorted by
`arrival_s` (seconds from the start of the trace, first arrival at 0 unless a transform shifts
it), either as a pandas DataFrame or as `wrpsim.workload.columns.TraceColumns` (the same columns
without pandas: what a run carries). Loaders produce it, transforms map it to itself, and
`to_requests` (or `iter_requests`, a block at a time) turns it into `Request` objects for the
engine.

`think_s` makes a request a *dependent round* of its session (closed-loop replay, see
`wrpsim.sessions`): a row with `session_id` set and a finite `think_s` >= 0 that is not the first
row of its session is sent `think_s` seconds after the previous row of the same session has been
answered in the simulation, not at its `arrival_s` (which then only keeps the recorded schedule:
the order of rows and the first round's send time). NaN (or no column) = open loop: the row
arrives at `arrival_s`. The `think_s` of a session's first row is ignored.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

#: Canonical trace columns: name -> (pandas dtype, required). Optional columns may be absent.
TRACE_COLUMNS: dict[str, tuple[str, bool]] = {
    "arrival_s": ("float64", True),
    "prompt_tokens": ("int64", True),
    "output_tokens": ("int64", True),
    "model": ("object", False),  # requested model name (catalog name) or None
    "session_id": ("object", False),  # conversation / agent session id or None
    "category": ("object", False),  # task category or None
    "hash_ids": ("object", False),  # list of prefix-block ids (Mooncake) or None
    "complexity": ("float64", False),  # task complexity in [0, 1] (NaN = unknown)
    "outcomes": ("object", False),  # {model: correctness in [0, 1]} or None (see outcomes.py)
    "think_s": ("float64", False),  # closed loop: pause after the previous round (NaN = open)
    # semantic cache (wrpsim.router.semcache, hit_model trace): prompts one answer serves share a
    # cluster id; the similarity of the prompt to its cluster's cached one (NaN = 1, a duplicate)
    "semantic_cluster": ("object", False),
    "semantic_similarity": ("float64", False),
    # what a semantic router's signals read (wrpsim.router.detectors): keyword tags the prompt
    # carries and the PII types it holds (comma-separated), its true intent, jailbreak flag
    # (1 attempt, 0 / NaN benign), language (None: "en") and the modality it asks for
    # (None: "text"); each detector applies its own error model to these
    "tags": ("object", False),
    "intent": ("object", False),
    "pii": ("object", False),
    "jailbreak": ("float64", False),
    "language": ("object", False),
    "modality": ("object", False),
    # images the prompt carries (0 / no column: none); a vision model turns each into its
    # catalog entry's `vision.tokens_per_image` encoder tokens (wrpsim.pool.vision)
    "images": ("int64", False),
    # the file's own id of the request (its `trace_request_id` column, else `request_id`, or
    # `columns: {trace_request_id: ...}`), as text; carried to requests.parquet
    "trace_request_id": ("object", False),
}

#: Arrow schema of the canonical form, used when a parsed trace is cached as Parquet.
TRACE_SCHEMA = pa.schema(
    [
        pa.field("arrival_s", pa.float64(), nullable=False),
        pa.field("prompt_tokens", pa.int64(), nullable=False),
        pa.field("output_tokens", pa.int64(), nullable=False),
        pa.field("model", pa.string()),
        pa.field("session_id", pa.string()),
        pa.field("category", pa.string()),
        pa.field("hash_ids", pa.list_(pa.int64())),
        pa.field("complexity", pa.float64()),
        pa.field("outcomes", pa.map_(pa.string(), pa.float64())),
        pa.field("think_s", pa.float64()),
        pa.field("semantic_cluster", pa.string()),
        pa.field("semantic_similarity", pa.float64()),
        pa.field("tags", pa.string()),
        pa.field("intent", pa.string()),
        pa.field("pii", pa.string()),
        pa.field("jailbreak", pa.float64()),
        pa.field("language", pa.string()),
        pa.field("modality", pa.string()),
        pa.field("images", pa.int64()),
        pa.field("trace_request_id", pa.string()),
    ],
    metadata={"wrpsim.table": "trace", "wrpsim.version": "3"},
)


@dataclass(slots=True, eq=False)
class Request:
    """One inference request as the engine sees it.

    `id` is the row index in the (transformed) trace, unique within a run. `arrival_s` is the
    simulated arrival time. `prompt_tokens` >= 1 and `output_tokens` >= 1 (the first output token
    is produced by the prefill). Optional attributes are None when the trace does not carry them.
    """

    id: int
    arrival_s: float
    prompt_tokens: int
    output_tokens: int
    model: str | None = None
    session_id: str | None = None
    category: str | None = None
    hash_ids: tuple[int, ...] | None = None
    parent_id: int | None = None  # set on follow-up calls made by a router (cascades, chains)
    complexity: float | None = None  # task complexity in [0, 1], where the workload knows it
    outcomes: dict | None = None  # {model: correctness in [0, 1]}: the replayed answer quality
    think_s: float | None = None  # closed loop: seconds after the previous round is answered
    semantic_cluster: str | None = None  # prompts one answer serves share it (semantic cache)
    semantic_similarity: float | None = None  # to its cluster's cached prompt (None: 1)
    tags: str | None = None  # keyword tags of the prompt, comma-separated (keyword signal)
    intent: str | None = None  # true intent (embedding signal; None: the category stands in)
    pii: str | None = None  # PII types in the prompt, comma-separated (pii signal)
    jailbreak: float | None = None  # 1: a jailbreak attempt; 0 / None: benign
    language: str | None = None  # language of the prompt (None: "en")
    modality: str | None = None  # modality it asks for (None: "image" with images, else "text")
    images: int = 0  # images in the prompt (each becomes encoder tokens on a vision model)
    image_tokens: int = 0  # encoder tokens of its images counted in prompt_tokens (at admission)


def to_requests(trace) -> list[Request]:
    """Convert a canonical trace (`TraceColumns` or DataFrame) to `Request` objects, ids 0..n-1
    in row order."""
    from wrpsim.workload.columns import as_columns

    t = as_columns(trace)
    return _build(t, 0, len(t))


#: rows `iter_requests` converts at a time
BLOCK_ROWS = 4096


def iter_requests(trace, block: int = BLOCK_ROWS):
    """The `Request`s of `to_requests(trace)`, equal to them field by field, built `block` rows
    at a time as they are taken: a run that dispatches them in order holds about one block of
    not yet dispatched requests instead of the whole trace's."""
    from wrpsim.workload.columns import as_columns

    t = as_columns(trace)
    n = len(t)
    for lo in range(0, n, block):
        yield from _build(t, lo, min(lo + block, n))


def _build(t, lo: int, hi: int) -> list[Request]:
    """The `Request`s of rows lo..hi-1 of the `TraceColumns` `t` (ids lo..hi-1)."""
    n = hi - lo
    names = t.columns
    arrival = np.asarray(t["arrival_s"], dtype=np.float64)[lo:hi].tolist()
    prompt = np.asarray(t["prompt_tokens"], dtype=np.int64)[lo:hi].tolist()
    output = np.asarray(t["output_tokens"], dtype=np.int64)[lo:hi].tolist()

    def col(name):
        if name not in names:
            return [None] * n
        v = t[name][lo:hi]
        return [None if (x is None or (isinstance(x, float) and math.isnan(x))) else x
                for x in (v.tolist() if isinstance(v, np.ndarray) else v)]

    model, session, category = col("model"), col("session_id"), col("category")
    hashes = [None if h is None else tuple(int(x) for x in h) for h in col("hash_ids")]
    reqs = [
        Request(lo + i, arrival[i], prompt[i], output[i], model[i], session[i], category[i],
                hashes[i])
        for i in range(n)
    ]
    if "complexity" in names:
        for r, c in zip(reqs, col("complexity")):
            r.complexity = None if c is None else float(c)
    if "outcomes" in names:
        for r, o in zip(reqs, col("outcomes")):
            r.outcomes = None if o is None else dict(o)
    if "think_s" in names:
        for r, x in zip(reqs, col("think_s")):
            r.think_s = None if x is None else float(x)
    if "semantic_cluster" in names:
        for r, c in zip(reqs, col("semantic_cluster")):
            r.semantic_cluster = c
    if "semantic_similarity" in names:
        for r, v in zip(reqs, col("semantic_similarity")):
            r.semantic_similarity = v
    for name in ("tags", "intent", "pii", "language", "modality"):
        if name in names:
            for r, v in zip(reqs, col(name)):
                setattr(r, name, v)
    if "images" in names:
        for r, v in zip(reqs, np.asarray(t["images"], dtype=np.int64)[lo:hi].tolist()):
            r.images = v
    if "jailbreak" in names:
        for r, v in zip(reqs, col("jailbreak")):
            r.jailbreak = None if v is None else float(v)
    return reqs
