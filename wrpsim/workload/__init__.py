"""The W of WRP: request model, trace loaders, synthetic generators, transforms and the builder.

Entry points: `build_workload(cfg, seed)` (a workload YAML's plain dict -> canonical frame),
`load_workload(name, seed)` (a catalog workload by name), `load_trace(path, kind=...)` (one trace
file), `to_requests(df)` (canonical frame -> `Request` objects for the engine),
`intrinsic_hit_ratio(df)` (the prefix-cache reference of a frame with hash ids),
`build_trace(cfg, seed)` (the same workload as `TraceColumns`, the run's pandas-free form).

The names are imported on first use (PEP 562 `__getattr__`), so importing one submodule, e.g.
`wrpsim.workload.request` on every run's path, does not import the others (and pandas).
"""

from wrpsim.lazy import lazy_names

_WHERE = {
    "load_agent_rounds": "agent",
    "build_trace": "build", "build_workload": "build", "list_workloads": "build",
    "load_workload": "build", "workloads_dir": "build",
    "TraceColumns": "columns",
    "EmpiricalCDF": "lengths", "draw_dist": "lengths",
    "load_trace": "loaders",
    "block_tokens": "prefix", "intrinsic_hit_ratio": "prefix", "prefix_violation": "prefix",
    "reblock": "prefix",
    "load_ragpulse": "ragpulse",
    "TRACE_COLUMNS": "request", "TRACE_SCHEMA": "request", "Request": "request",
    "to_requests": "request",
    "apply_prefix_ids": "reuse",
    "generate_sessions": "sessions",
    "arrival_times": "synthetic", "generate": "synthetic",
    "apply_transforms": "transforms", "assign_model": "transforms", "clip_tokens": "transforms",
    "first_n": "transforms", "rate_scale": "transforms", "sample_fraction": "transforms",
    "time_window": "transforms",
    "canonical_frame": "validate", "validate_trace": "validate",
}

__all__ = sorted(_WHERE)


__getattr__, __dir__ = lazy_names(__name__, _WHERE)
