"""`python -m wrpsim.plan` shows its progress on stderr: a line per simulation with the stage,
the budget spent, the fleet, the best fleet so far and the elapsed time — without changing the
plan."""

from __future__ import annotations

import io
import json
import re

from tests.conftest import run_app
from tests.test_plan_config import SMALL, compose_plan
from wrpsim.plan import run_plan
from wrpsim.plan.progress import PlanProgress

LINE = re.compile(r"^wrpsim\.plan: (candidate \d of 3: (a100|h100|h200)|mixing|checks) \| "
                  r"simulation (\d+) \(search budget \d+/300\) \| .+ on [\w.-]+"
                  r"( \(= search\))?( \(again, to keep its request tables\))?: (meets|misses) "
                  r"the SLO \| best so far: (none yet|.+ \(\$[\d,.]+/h, \d+ GPUs\)) \| [\d,]+ s$")


def test_progress_lines_follow_the_search_and_leave_the_plan_unchanged(tmp_path):
    cfg = compose_plan(*SMALL, "plan.load_sensitivity=0")
    stream = io.StringIO()
    progress = PlanProgress("cost", stream, redraw=False)
    with_progress = run_plan(cfg, tmp_path / "a", progress=progress)
    lines = stream.getvalue().splitlines()
    assert lines and all(LINE.match(ln) for ln in lines), lines
    stages = [ln.split(" | ")[0].removeprefix("wrpsim.plan: ") for ln in lines]
    assert stages[0] == "candidate 1 of 3: a100" and stages[-1] == "checks"
    assert "candidate 3 of 3: h200" in stages
    assert f"best so far: {with_progress['fleet_label']} (" in lines[-1]  # the plan's fleet
    # one line per simulation, numbered: a cached result is not printed again
    assert [int(LINE.match(ln)[3]) for ln in lines] == list(range(1, len(lines) + 1))
    s = with_progress["search"]
    assert len(lines) == s["evaluations"] + s["reruns"]
    assert len({ln.split(" | ")[2] for ln in lines if "(again" not in ln}) == s["evaluations"]
    without = run_plan(compose_plan(*SMALL, "plan.load_sensitivity=0"), tmp_path / "b")
    assert (json.dumps(with_progress, sort_keys=True, default=str)
            == json.dumps(without, sort_keys=True, default=str))


def test_redrawn_progress_ends_its_line_on_close():
    class Tty(io.StringIO):
        def isatty(self):
            return True

    stream = Tty()
    progress = PlanProgress("cost", stream)
    assert progress.redraw
    progress.close()
    assert stream.getvalue() == ""  # nothing drawn: nothing to end


def test_the_cli_prints_for_a_person_on_stderr_and_json_only_when_asked(monkeypatch, capsys,
                                                                        tmp_path):
    args = (*SMALL, "plan.load_sensitivity=0", "plan.candidates.a100.gpu=h100-80gb",
            "plan.report=false")
    code, out, err = run_app(monkeypatch, capsys, tmp_path, *args, module="wrpsim.plan")
    assert code == 0, err
    assert out == ""  # like python -m wrpsim: stdout stays empty without json=true
    assert sum(bool(LINE.match(ln)) for ln in err.splitlines()) >= 3
    record = json.loads((tmp_path / "run" / "plan.json").read_text())
    assert err.splitlines()[-2:] == [
        f"wrpsim.plan: {record['message']}",
        f"wrpsim.plan: plan.json, candidates.parquet, fleet.yaml in {tmp_path / 'run'}"]
    code, out, err = run_app(monkeypatch, capsys, tmp_path, *args, "json=true",
                             module="wrpsim.plan")
    assert code == 0, err
    assert json.loads(out) == record  # one JSON line, the same plan
    code, _, err = run_app(monkeypatch, capsys, tmp_path, *args, "json=1", module="wrpsim.plan")
    assert code == 2 and err.strip() == "wrpsim: error: json must be true or false, got 1"


def test_an_energy_objective_shows_the_best_fleets_energy_first():
    """The best fleet so far is shown with what it was chosen on: kWh first under
    plan.objective=energy, then its price and GPUs (cost only, before)."""
    from types import SimpleNamespace

    ev = SimpleNamespace(trace="search", slo_met=True, counts=(2,), phase="x",
                         summary={"energy_kwh": 3.4912})
    evaluator = SimpleNamespace(objective=lambda e, o: (e.summary["energy_kwh"],),
                                label=lambda c: "2 x h200", cost=lambda c: 24.0,
                                gpus=lambda c: 4, stage="mixing", spent=1, budget=300)
    stream = io.StringIO()
    PlanProgress("energy", stream, redraw=False)(evaluator, ev)
    out = stream.getvalue()
    assert "best so far: 2 x h200 (3.491 kWh, $24.00/h, 4 GPUs)" in out, out


def test_a_redrawn_line_that_wrapped_is_cleared_from_its_first_row(monkeypatch):
    """On a terminal narrower than the progress line (~190 characters: most are), `\\r\\033[K`
    cleared only the last row the line wrapped onto, so every simulation left the rows above
    it on screen (a user walk-through, 80 columns): the redraw goes back to the line's first
    row and clears from there."""
    from types import SimpleNamespace

    import wrpsim.plan.progress as mod

    class Tty(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.setattr(mod.PlanProgress, "_columns", lambda self: 80, raising=False)
    ev = SimpleNamespace(trace="search", slo_met=True, counts=(2,), phase="x", summary={})
    evaluator = SimpleNamespace(objective=lambda e, o: (1,), label=lambda c: "2 x h200",
                                cost=lambda c: 24.0, gpus=lambda c: 4, stage="mixing", spent=1,
                                budget=300)
    stream = Tty()
    progress = mod.PlanProgress("cost", stream)
    progress(evaluator, ev)
    first = stream.getvalue()
    assert first.startswith("\r\033[J")  # nothing above it yet
    line = first.removeprefix("\r\033[J")
    assert len(line) > 80  # wraps at 80 columns (a real one is ~190 characters)
    rows = (len(line) - 1) // 80
    progress(evaluator, ev)
    second = stream.getvalue()[len(first):]
    assert second.startswith(f"\r\033[{rows}A\033[J"), repr(second[:12])
    progress.close()
    assert stream.getvalue().endswith("\n")
