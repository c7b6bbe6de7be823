"""`wrpsim.io.Background`: result files written on threads while a run computes its summary."""

import threading
import time
from pathlib import Path

import pytest

from wrpsim.io import Background


def test_join_waits_for_every_call_and_returns_in_the_callers_thread():
    done = []

    def slow(name, delay):
        time.sleep(delay)
        done.append((name, threading.current_thread() is not threading.main_thread()))

    with Background() as bg:
        bg.start(slow, "a", 0.05)
        bg.start(slow, "b", 0.0)
    assert sorted(done) == [("a", True), ("b", True)]
    assert threading.active_count() == 1


def test_a_failed_call_raises_its_own_error_at_join():
    bg = Background()
    bg.start(lambda: (_ for _ in ()).throw(OSError("disk full")))
    bg.start(lambda: None)
    with pytest.raises(OSError, match="disk full"):
        bg.join()
    bg.join()  # (reported once)


def test_the_callers_error_wins_and_no_thread_is_left_running():
    finished = []
    with pytest.raises(KeyError), Background() as bg:
        bg.start(lambda: (time.sleep(0.05), finished.append(1)))
        bg.start(lambda: 1 / 0)  # (dropped: the block's own error is the one raised)
        raise KeyError("summary")
    assert finished == [1] and threading.active_count() == 1


def test_files_appear_only_when_every_write_succeeded(tmp_path):
    def write(text, path):
        Path(path).write_text(text)

    with Background() as bg:
        bg.start_file(write, "a", tmp_path / "a.txt")
        assert not (tmp_path / "a.txt").exists()  # (written, maybe, but not renamed yet)
    assert (tmp_path / "a.txt").read_text() == "a"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]

    bg = Background()
    bg.start_file(write, "b", tmp_path / "b.txt")
    bg.start(lambda: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        bg.join()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]  # b's file removed

    with pytest.raises(KeyError), Background() as bg:
        bg.start_file(write, "c", tmp_path / "c.txt")
        raise KeyError("summary")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]


def test_a_run_that_fails_in_its_summary_leaves_no_table_next_to_an_earlier_runs(
        tmp_path, monkeypatch):
    """A reused folder holds an earlier run's files; the new run fails after its tables were
    handed to the threads: none of its files replaces the earlier ones."""
    from tests.conftest import constant_cfg, make_trace
    from wrpsim import sim as simmod

    simmod.run(constant_cfg(), tmp_path, make_trace([0.0, 0.1], [10, 20], [5, 5]))
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    def broken(*a, **k):
        raise RuntimeError("summary broke")

    monkeypatch.setattr(simmod, "task_summary", broken)
    with pytest.raises(RuntimeError, match="summary broke"):
        simmod.run(constant_cfg(), tmp_path, make_trace([0.0, 0.1, 0.2, 0.3], [10] * 4, [5] * 4))
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_a_run_whose_table_cannot_be_written_fails_with_that_error_and_no_summary(tmp_path):
    """`requests.parquet`, written on a thread, cannot replace a folder of that name: the run
    raises the write's own error, and `summary.json` (written last) is not written."""
    from tests.conftest import constant_cfg, make_trace
    from wrpsim.sim import run

    (tmp_path / "requests.parquet").mkdir()
    trace = make_trace([0.0, 0.1, 0.2], [10, 20, 30], [5, 5, 5])
    with pytest.raises(OSError):
        run(constant_cfg(), tmp_path, trace)
    assert not (tmp_path / "summary.json").exists()
    assert threading.active_count() == 1
