"""Work in a forked child of a reindex: done there, reported by its exit code, never forked
beside other threads.

Each check runs in a fresh interpreter: the suite's own process may hold threads of earlier
tests (a browser driver, a server), beside which ``fork_work`` rightly refuses to fork."""

from __future__ import annotations

import threading
from pathlib import Path

from conftest import run_fresh

from search.children import fork_work, joined


def test_work_runs_in_a_child_and_reports_success(tmp_path: Path) -> None:
    out = tmp_path / "pid"
    script = (
        "import os, sys\n"
        "from pathlib import Path\n"
        "from search.children import fork_work, joined\n"
        "pid = fork_work(lambda: Path(sys.argv[1]).write_text(str(os.getpid())))\n"
        "print(pid, joined(pid), os.getpid())\n"
    )
    pid, ok, parent = run_fresh(script, str(out)).split()
    assert ok == "True"
    assert out.read_text() == pid != parent


def test_work_that_raises_reports_failure() -> None:
    script = (
        "from search.children import fork_work, joined\n"
        "def fails():\n"
        "    raise ValueError('no')\n"
        "pid = fork_work(fails)\n"
        "print(pid is not None, joined(pid))\n"
    )
    assert run_fresh(script) == "True False"


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
    script = (
        "import os, threading\n"
        "from search.children import fork_work, stop\n"
        "pid = fork_work(lambda: threading.Event().wait(60))\n"
        "stop(pid)\n"
        "try:\n"
        "    os.waitpid(pid, os.WNOHANG)\n"
        "except ChildProcessError:\n"
        "    print('reaped')\n"
        "else:\n"
        "    print('still there')\n"
    )
    assert run_fresh(script) == "reaped"
