"""Optional Chrome/Perfetto trace of a run (`sim.trace=true` writes `trace.json`).

One process per instance (pid = instance number, named `pool/index`), thread 0 for its
iterations — one complete ("X") slice per prefill iteration or decode run, with the batch in its
args — and thread 1 for the KV transfers it sends. Thread 0's slices are the busy time and
iterations of `instances.parquet`: a decode run an arrival or a failure cuts short ends with the
iterations that ended (`decode xN`), and an iteration a failure interrupts is lost work, not
shown (`wrpsim.pool.failure`). A KV transfer is an async slice ("b" / "e", category `kv`, id the
request id) from the moment its bytes start to leave — the start of the iteration that completes
the prompt when layer-wise streaming sends layers as they are computed, else the moment the
prompt is done and the decode side has granted its blocks — to the arrival of the last byte,
with its `bytes` and `kv_transfer_s` (prompt done → arrival, as in `requests.parquet`: the
exposed part, with any wait for the grant) in its args; transfers overlap (several sequences
of one iteration, the fabric's shared links), which async slices show on separate rows. Open
the file in https://ui.perfetto.dev or chrome://tracing. Times are microseconds of simulated time.
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

    def span(self, inst: str, tid: int, name: str, t0: float, t1: float, key: int,
             **args) -> None:
        """Record an async slice [t0, t1] of instance `inst` (category `kv`, id `key`): spans
        that may overlap on one thread, which complete slices cannot show."""
        pid = self.pid(inst)
        self.events.append({"ph": "b", "cat": "kv", "id": key, "name": name, "pid": pid,
                            "tid": tid, "ts": t0 * 1e6, "args": args})
        self.events.append({"ph": "e", "cat": "kv", "id": key, "name": name, "pid": pid,
                            "tid": tid, "ts": t1 * 1e6})

    def write(self, path: Path) -> None:
        """Write the Chrome trace JSON atomically."""
        write_text(path, json.dumps({"traceEvents": self.events, "displayTimeUnit": "ms"}))
