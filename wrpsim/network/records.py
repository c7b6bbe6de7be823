"""Arrow schemas of the network tables: one row per flow (`flows.parquet`; a collective's flows
have their own schema, with steps and dependencies) and per port (`links.parquet`).

Times are simulated seconds (the packet engine's integer picoseconds divided by 1e12). Packet-only
columns are null for the fluid engine and fluid-only ones null for the packet engine.
"""

from __future__ import annotations

import pyarrow as pa

FLOW_SCHEMA = pa.schema(
    [
        ("flow_id", pa.int64()),
        ("src", pa.int32()),            # endpoint (GPU NIC) ids
        ("dst", pa.int32()),
        ("src_leaf", pa.int32()),
        ("dst_leaf", pa.int32()),
        ("bytes", pa.int64()),
        ("link", pa.string()),          # fabric | nvlink (same server) | none (zero bytes)
        ("conns", pa.int32()),          # queue pairs / pieces carrying the flow (0 on nvlink)
        # spine of each connection; [] when sprayed or within one leaf
        ("spines", pa.list_(pa.field("element", pa.int32()))),
        ("sprayed", pa.bool_()),
        ("start_s", pa.float64()),
        ("finish_s", pa.float64()),
        ("fct_s", pa.float64()),
        ("data_packets", pa.int64()),   # packet engine: data packets sent, resends included
        ("retransmits", pa.int64()),
        ("drops", pa.int64()),          # drops and trims of this flow's packets
        ("out_of_order", pa.int64()),
        ("max_reorder", pa.int64()),    # largest reorder distance (packets)
    ],
    metadata={"wrpsim.table": "flows", "wrpsim.version": "1",
              "wrpsim.units": "seconds of simulated time, bytes"},
)

COLLECTIVE_FLOW_SCHEMA = pa.schema(
    [
        ("flow_id", pa.int64()),        # position in the collective's DAG
        ("step", pa.int32()),           # round of the algorithm the flow belongs to
        ("src_rank", pa.int32()),       # ranks: positions in the group
        ("dst_rank", pa.int32()),
        ("src", pa.int32()),            # endpoint (GPU NIC) ids
        ("dst", pa.int32()),
        ("src_leaf", pa.int32()),
        ("dst_leaf", pa.int32()),
        ("bytes", pa.int64()),
        ("link", pa.string()),          # fabric | nvlink (same server) | none (zero bytes)
        # flow ids whose arrival the flow waited for
        ("deps", pa.list_(pa.field("element", pa.int64()))),
        ("conns", pa.int32()),
        ("spines", pa.list_(pa.field("element", pa.int32()))),
        ("sprayed", pa.bool_()),
        ("ready_s", pa.float64()),      # its last input arrived
        ("start_s", pa.float64()),      # ready_s + the per-step latency alpha
        ("finish_s", pa.float64()),     # its last byte arrived
        ("fct_s", pa.float64()),
        ("data_packets", pa.int64()),
        ("retransmits", pa.int64()),
        ("drops", pa.int64()),
        ("out_of_order", pa.int64()),
        ("max_reorder", pa.int64()),
    ],
    metadata={"wrpsim.table": "collective_flows", "wrpsim.version": "1",
              "wrpsim.units": "seconds of simulated time from the collective's start, bytes"},
)

LINK_SCHEMA = pa.schema(
    [
        ("port", pa.int32()),
        ("kind", pa.string()),          # host_up | leaf_down | leaf_up | spine_down
        ("src_node", pa.string()),
        ("dst_node", pa.string()),
        ("rate_gbps", pa.float64()),      # 0 when the port is down (failed_links)
        ("offered_bytes", pa.float64()),  # bytes the path choices put on the port
        ("bytes", pa.float64()),          # bytes carried (packet engine: resends included)
        ("utilization", pa.float64()),    # bytes / (rate × completion time), at most 1
        ("max_conns", pa.int64()),        # fluid: most connections sharing the port at once
        ("max_queue_bytes", pa.float64()),  # packet: largest backlog seen by an arrival
        ("drops", pa.int64()),
        ("trims", pa.int64()),
        ("ecn_marks", pa.int64()),
    ],
    metadata={"wrpsim.table": "links", "wrpsim.version": "1",
              "wrpsim.units": "bytes; rate in Gb/s; one row per port (direction of a link)"},
)


def to_table(rows: list[tuple], schema: pa.Schema) -> pa.Table:
    """Arrow table of `schema` from tuples in its column order."""
    cols = list(zip(*rows)) if rows else [[] for _ in schema]
    return pa.table([pa.array(c, type=f.type) for c, f in zip(cols, schema)], schema=schema)
