"""Optional Chrome/Perfetto trace of a run (`sim.trace=true` writes `trace.json`).

One process per instance (pid = instance number, named `pool/index`), thread 0 for its
iterations — one complete ("X") slice per prefill iteration or decode run, with the batch in its
args — and thread 1 for the KV transfers it sends. Thread 0's slices are the busy time and
iterations of `instances.parquet`: a decode run an arrival or a failure cuts short ends with the
iterations that ended (`decode xN`), and an iteration a failure interrupts is lost work, not
shown (`wrpsim.pool.failure`). Open the file in https://ui.perfetto.dev or
chrome://tracing. Times are microseconds of simulated time.
"""

from __future__ import annotations

import json
from pathlib import Path

from wrpsim.io import write_text


class Tracer:
    """Collects trace events in memory and writes them once at the end."""

    def __init__(self):
        self.events: list[dict] = []
        self._pids: dict[str, int] = {}

    def pid(self, name: str) -> int:
        """Process id of instance `name`, registering its name on first use."""
        pid = self._pids.get(name)
        if pid is None:
            pid = self._pids[name] = len(self._pids) + 1
            self.events.append({"ph": "M", "name": "process_name", "pid": pid,
                                "args": {"name": name}})
            for tid, label in ((0, "iterations"), (1, "kv transfers")):
                self.events.append({"ph": "M", "name": "thread_name", "pid": pid, "tid": tid,
                                    "args": {"name": label}})
        return pid

    def slice(self, inst: str, tid: int, name: str, t0: float, dur: float, **args) -> None:
        """Record a complete slice on thread `tid` of instance `inst`."""
        self.events.append({"ph": "X", "name": name, "pid": self.pid(inst), "tid": tid,
                            "ts": t0 * 1e6, "dur": dur * 1e6, "args": args})

    def write(self, path: Path) -> None:
        """Write the Chrome trace JSON atomically."""
        write_text(path, json.dumps({"traceEvents": self.events, "displayTimeUnit": "ms"}))
