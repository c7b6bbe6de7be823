"""The W of WRP: request model, trace loaders, synthetic generators, transforms and the builder.

Entry points: `build_workload(cfg, seed)` (a workload YAML's plain dict -> canonical frame),
`load_workload(name, seed)` (a catalog workload by name), `load_trace(path, kind=...)` (one trace
file), `to_requests(df)` (canonical frame -> `Request` objects for the engine),
`intrinsic_hit_ratio(df)` (the prefix-cache reference of a frame with hash ids).
"""

from wrpsim.workload.agent import load_agent_rounds
from wrpsim.workload.build import build_workload, list_workloads, load_workload, workloads_dir
from wrpsim.workload.lengths import EmpiricalCDF, draw_dist
from wrpsim.workload.loaders import load_trace
from wrpsim.workload.prefix import (
    block_tokens,
    intrinsic_hit_ratio,
    prefix_violation,
    reblock,
)
from wrpsim.workload.ragpulse import load_ragpulse
from wrpsim.workload.request import TRACE_COLUMNS, TRACE_SCHEMA, Request, to_requests
from wrpsim.workload.reuse import apply_prefix_ids
from wrpsim.workload.sessions import generate_sessions
from wrpsim.workload.synthetic import arrival_times, generate
from wrpsim.workload.transforms import (
    apply_transforms,
    assign_model,
    clip_tokens,
    first_n,
    rate_scale,
    sample_fraction,
    time_window,
)
from wrpsim.workload.validate import canonical_frame, validate_trace

__all__ = [
    "TRACE_COLUMNS",
    "TRACE_SCHEMA",
    "EmpiricalCDF",
    "Request",
    "apply_prefix_ids",
    "apply_transforms",
    "arrival_times",
    "assign_model",
    "block_tokens",
    "build_workload",
    "canonical_frame",
    "clip_tokens",
    "draw_dist",
    "first_n",
    "generate",
    "generate_sessions",
    "intrinsic_hit_ratio",
    "list_workloads",
    "load_agent_rounds",
    "load_ragpulse",
    "load_trace",
    "load_workload",
    "prefix_violation",
    "rate_scale",
    "reblock",
    "sample_fraction",
    "time_window",
    "to_requests",
    "validate_trace",
    "workloads_dir",
]
