"""The progress line: shown when forced or on a terminal, silent otherwise."""

from __future__ import annotations

import io

from tests.conftest import constant_cfg, make_trace
from wrpsim.progress import Progress
from wrpsim.sim import Simulation


def test_progress_is_silent_when_stderr_is_not_a_terminal(capsys):
    assert Progress.maybe("auto", 10.0) is None  # pytest captures stderr: not a tty
    assert Progress.maybe(False, 10.0) is None


def test_forced_progress_reports_simulated_time():
    out = io.StringIO()
    p = Progress(100.0, stream=out)
    p.update(25.0)
    p.close(100.0)
    text = out.getvalue()
    assert "sim t=25.0 / 100.0 s ( 25.0%)" in text and "done" in text


def test_a_run_with_progress_forced_prints_to_stderr(capsys):
    cfg = constant_cfg()
    cfg["sim"] = {"progress": True}
    Simulation(cfg, make_trace([0.0, 1.0], [10, 10], [2, 2])).run()
    assert "wrpsim: sim t=" in capsys.readouterr().err


def test_a_progress_value_other_than_auto_true_false_is_one_clear_error():
    import pytest

    from wrpsim.errors import ConfigError

    cfg = constant_cfg()
    cfg["sim"] = {"progress": "maybe"}  # (was taken as true: a progress line in a redirect)
    with pytest.raises(ConfigError, match=r"^sim.progress must be auto, true or false, got "
                                          r"'maybe'$"):
        Simulation(cfg, make_trace([0.0], [10], [2]))
    cfg["sim"] = {"progress": None}  # (null: off, as before)
    Simulation(cfg, make_trace([0.0], [10], [2])).run()
