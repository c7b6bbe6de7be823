"""What `python -m wrpsim.plan` shows on stderr while it searches (it takes minutes).

`PlanProgress` is called by `Evaluator.evaluate` after every simulation (`Evaluator.on_eval`)
and prints one line per simulation — a cached result is not simulated, so not printed: the
stage (`candidate k of n: NAME` while bisecting each candidate, `mixing` during the descent
over mixed fleets, `best-effort` when every candidate is impossible, `checks` while verifying),
the simulation's number and the search budget spent (`plan.max_evaluations`; checks and
best-effort come on top), the fleet just simulated, on which trace (`full (= search)` when the
search ran on the full trace) and whether it met the SLO — `(again, to keep its request
tables)` when a fleet already judged is simulated once more for the report's plots —, the best
fleet so far (met the SLO on the search trace; lowest objective) and the elapsed wall time.
On a terminal the line is redrawn in place, the rows it wrapped onto included (it is wider than
most terminals); elsewhere (a log, a pipe) each simulation gets its own line. Contract: it only
reads the evaluator, never changes the plan's result.
"""

from __future__ import annotations

import os
import shutil
import sys
import time


class PlanProgress:
    """Progress lines of a plan (see module docstring)."""

    def __init__(self, objective: str, stream=None, redraw: bool | None = None):
        self.objective = objective
        self.stream = stream or sys.stderr
        self.redraw = self.stream.isatty() if redraw is None else redraw
        self.t0 = time.perf_counter()
        self.count = 0
        self.best = None  # (objective key, Evaluation)
        self._open = False
        self._rows = 0  # rows below the first that the redrawn line wrapped onto

    def _columns(self) -> int:
        """The terminal's width (of the stream's own terminal where it has one)."""
        try:
            return max(os.get_terminal_size(self.stream.fileno()).columns, 1)
        except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is both
            return max(shutil.get_terminal_size().columns, 1)

    def __call__(self, evaluator, ev) -> None:
        """Record one finished simulation `ev` of `evaluator` and print its line."""
        self.count += 1
        if ev.trace == "search" and ev.slo_met:
            key = evaluator.objective(ev, self.objective)
            if self.best is None or key < self.best[0]:
                self.best = (key, ev)
        best = "none yet"
        if self.best is not None:
            b = self.best[1].counts
            g = evaluator.gpus(b)
            figures = [f"${evaluator.cost(b):,.2f}/h", f"{g} GPU{'s' * (g != 1)}"]
            if self.objective == "energy":  # what it was chosen on, first
                figures.insert(0, f"{self.best[1].summary.get('energy_kwh') or 0:,.4g} kWh")
            best = f"{evaluator.label(b)} ({', '.join(figures)})"
        trace = getattr(evaluator, "requested", "") or ev.trace
        if trace != ev.trace:  # e.g. the full trace when the search ran on all of it
            trace = f"{trace} (= {ev.trace})"
        again = " (again, to keep its request tables)" if getattr(evaluator, "rerun", False) \
            else ""
        line = (f"wrpsim.plan: {evaluator.stage or ev.phase} | simulation {self.count} (search "
                f"budget {evaluator.spent}/{evaluator.budget}) | {evaluator.label(ev.counts)} on "
                f"{trace}{again}: {'meets' if ev.slo_met else 'misses'} the SLO | best so far: "
                f"{best} | {time.perf_counter() - self.t0:,.0f} s")
        if self.redraw:
            # back to the first row of the previous line, clear from there, draw: `\r\033[K`
            # alone cleared only its last row, and a wrapped line left the others on screen
            up = f"\033[{self._rows}A" if self._rows else ""
            self.stream.write(f"\r{up}\033[J{line}")
            self._rows = (len(line) - 1) // self._columns()
            self._open = True
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def close(self) -> None:
        """End a redrawn line (so what follows starts on a line of its own)."""
        if self._open:
            self.stream.write("\n")
            self.stream.flush()
            self._open = False
            self._rows = 0
