"""The W of WRP: request model, trace loaders, synthetic generators, transforms and the builder.

Entry points: `build_workload(cfg, seed)` (a workload YAML's plain dict -> canonical frame),
`load_workload(name, seed)` (a catalog workload by name), `load_trace(path, kind=...)` (one trace
file), `to_requests(df)` (canonical frame -> `Request` objects for the engine).
"""

from wrpsim.workload.build import build_workload, list_workloads, load_workload, workloads_dir
from wrpsim.workload.lengths import EmpiricalCDF, draw_dist
from wrpsim.workload.loaders import load_trace
from wrpsim.workload.request import TRACE_COLUMNS, TRACE_SCHEMA, Request, to_requests
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
    "apply_transforms",
    "arrival_times",
    "assign_model",
    "build_workload",
    "canonical_frame",
    "clip_tokens",
    "draw_dist",
    "first_n",
    "generate",
    "list_workloads",
    "load_trace",
    "load_workload",
    "rate_scale",
    "sample_fraction",
    "time_window",
    "to_requests",
    "validate_trace",
    "workloads_dir",
]
