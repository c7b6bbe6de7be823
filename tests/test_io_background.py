"""`wrpsim.io.Background`: result files written on threads while a run computes its summary."""

import threading
import time

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
