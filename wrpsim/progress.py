"""A progress line in simulated time for long runs.

Shown on stderr only when it is a terminal (or when forced with `sim.progress=true`); silent
otherwise, so logs and CI output stay clean.
"""

from __future__ import annotations

import sys
import time


class Progress:
    """Prints `sim t=… / … s (…%)` at most a few times per second."""

    def __init__(self, total_s: float, stream=None):
        self.total = max(total_s, 1e-9)
        self.stream = stream or sys.stderr
        self._last = 0.0

    @classmethod
    def maybe(cls, mode, total_s: float) -> Progress | None:
        """A Progress if `mode` is true, or 'auto' and stderr is a terminal; else None."""
        if mode == "auto":
            mode = sys.stderr.isatty()
        return cls(total_s) if mode else None

    def update(self, now: float) -> None:
        """Redraw if at least 0.2 s of wall time passed."""
        t = time.perf_counter()
        if t - self._last >= 0.2:
            self._last = t
            pct = min(100.0, 100.0 * now / self.total)
            self.stream.write(f"\rwrpsim: sim t={now:,.1f} / {self.total:,.1f} s ({pct:5.1f}%)")
            self.stream.flush()

    def close(self, now: float) -> None:
        """Final line."""
        self.stream.write(f"\rwrpsim: sim t={now:,.1f} s done{' ' * 20}\n")
        self.stream.flush()
