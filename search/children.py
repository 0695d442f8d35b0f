"""Child processes of a reindex: tied to the process that started them, reaped on failure.

The indexer's analysis pool and its terms helper, and the generation writer's forked half
(``store.generation``), must not outlive a reindex that is killed (``kill -9``): they would go
on writing, or hold the index's lock.  ``die_with`` has the kernel kill a child with its parent;
``fork_work`` / ``joined`` / ``stop`` run one piece of work in a forked child.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Callable


def die_with(parent: int) -> None:
    """Have the kernel kill this process when its parent (``parent``) dies, and exit now if it
    has died already (Linux's ``PR_SET_PDEATHSIG``; elsewhere a no-op)."""
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:
        os._exit(1)


def fork_work(work: Callable[[], None]) -> int | None:
    """``work`` in a forked child (its pid), which exits 0 once it is done and 1 if it raised;
    ``None`` where this process cannot fork safely: no ``fork``, or other threads (a lock one of
    them holds at the fork would stay locked in the child forever: an engine warming beside an
    in-process reindex, say), and then the caller does the work itself."""
    if not hasattr(os, "fork") or threading.active_count() > 1:
        return None
    parent = os.getpid()
    try:
        pid = os.fork()
    except OSError:
        return None
    if pid:
        return pid
    code = 1  # the child: never returns into the caller's code
    try:
        die_with(parent)
        work()
        code = 0
    except BaseException:  # noqa: BLE001, S110 - reported by its exit code: the parent does it
        pass
    finally:
        os._exit(code)


def joined(pid: int | None) -> bool:
    """Wait for the child ``fork_work`` started; whether it did its work."""
    if pid is None:
        return False
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status) == 0


def stop(pid: int | None) -> None:
    """Kill and reap a child ``fork_work`` started (the caller failed: its work is not wanted)."""
    if pid is None:
        return
    with contextlib.suppress(OSError):
        os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(OSError):
        os.waitpid(pid, 0)
