"""The routing side table: one row per routing call of a model- or pool-selecting router.

`requests.parquet` says where each request ran; `routing.parquet` says *why*: the rule or arm that
decided, the score, the category the router saw (after its classifier's errors), the prompt
length it routed (after compression) and the decision latency it charged. Rows are buffered as
tuples in `router.decisions` (see `wrpsim.router.selection.ModelRouter`) and converted once.
"""

from __future__ import annotations

import pyarrow as pa

ROUTING_SCHEMA = pa.schema(
    [
        ("request_id", pa.int64()),
        ("parent_id", pa.int64()),  # set on a router's follow-up call (cascade escalation)
        ("router", pa.string()),
        ("decision", pa.string()),  # rule name, arm, strong/weak, short/long/spill, …
        ("model", pa.string()),
        ("pool", pa.string()),
        ("score", pa.float64()),  # the number the policy decided on (NaN when none)
        ("category_seen", pa.string()),  # the category as the router's classifier saw it
        ("prompt_tokens_routed", pa.int64()),  # after compress-and-route
        ("decision_delay_s", pa.float64()),  # added before admission (counts in TTFT)
    ],
    metadata={"wrpsim.table": "routing", "wrpsim.version": "1"},
)


def routing_table(router) -> pa.Table | None:
    """The router's decisions as an Arrow table of `ROUTING_SCHEMA` sorted by request id, or
    None for a router that keeps no decisions (the load balancers)."""
    rows = getattr(router, "decisions", None)
    if rows is None:
        return None
    rows = sorted(rows, key=lambda t: t[0])
    cols = list(zip(*rows)) if rows else [[] for _ in ROUTING_SCHEMA]
    return pa.table([pa.array(c, type=f.type) for c, f in zip(cols, ROUTING_SCHEMA)],
                    schema=ROUTING_SCHEMA)
