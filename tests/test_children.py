"""Work in a forked child of a reindex: done there, reported by its exit code, never forked
beside other threads."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from search.children import fork_work, joined, stop


def test_work_runs_in_a_child_and_reports_success(tmp_path: Path) -> None:
    out = tmp_path / "pid"
    pid = fork_work(lambda: out.write_text(str(os.getpid())))
    assert pid is not None and joined(pid)
    assert out.read_text() == str(pid) != str(os.getpid())


def test_work_that_raises_reports_failure() -> None:
    def fails() -> None:
        raise ValueError("no")

    assert joined(fork_work(fails)) is False


def test_no_fork_beside_other_threads(tmp_path: Path) -> None:
    """A lock another thread holds at a fork stays locked in the child: the caller does the work
    itself (``None``), and nothing ran."""
    out = tmp_path / "ran"
    release = threading.Event()
    other = threading.Thread(target=release.wait)
    other.start()
    try:
        assert fork_work(lambda: out.write_text("ran")) is None
    finally:
        release.set()
        other.join()
    assert not out.exists()
    assert joined(None) is False


def test_a_stopped_child_is_killed_and_reaped() -> None:
    pid = fork_work(lambda: threading.Event().wait(60))
    assert pid is not None
    stop(pid)
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
    else:
        raise AssertionError("the child was not reaped")
