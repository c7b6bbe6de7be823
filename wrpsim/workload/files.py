"""Trace files before parsing: the formats wrpsim reads and the checks made before reading.

Kept apart from the readers (`wrpsim.workload.readers`, which need pandas) because every run
checks its trace file and loader options, while only a trace-cache miss parses the file.
"""

from __future__ import annotations

from pathlib import Path

from wrpsim.errors import TraceError

FORMATS = ("csv", "jsonl", "parquet")
_SUFFIXES = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet",
             ".pq": "parquet"}


def require_file(path: Path, what: str = "trace file") -> Path:
    """`path` if it is a regular file; else `TraceError` saying it is missing or a directory."""
    path = Path(path)
    if path.is_dir():
        raise TraceError(f"{path}: is a directory; give the {what} itself "
                         f"(csv, jsonl or parquet)")
    if not path.is_file():
        raise TraceError(f"{path}: {what} not found")
    return path


def not_text(path: Path, exc: UnicodeDecodeError) -> TraceError:
    """The error for a trace that is not UTF-8 text (a binary file given as a CSV or JSONL)."""
    return TraceError(f"{path}: not a text file (byte {exc.start} is not UTF-8); a trace is CSV "
                      f"or JSON Lines text, or Parquet")


def detect_format(path: Path) -> str:
    """Format of `path` from its suffix (.csv, .jsonl/.ndjson, .parquet/.pq); TraceError else."""
    fmt = _SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        raise TraceError(
            f"{path}: cannot tell the trace format from suffix {path.suffix!r}; "
            f"valid suffixes: {', '.join(sorted(_SUFFIXES))} "
            f"(or ++workload.source.format=csv|jsonl|parquet)"
        )
    return fmt
