"""Freed memory kept for the next search: megabyte arrays are not faulted in afresh each time."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

from search.config import SettingsError, load_settings
from search.malloc import keep_freed_memory

# Twenty times holds six arrays of 8 MB at once, then frees them (a search's score and mask
# arrays at a million documents), and prints the page faults that took.
FAULTS = """
import resource, sys
import numpy as np
from search.malloc import keep_freed_memory
took = keep_freed_memory(int(sys.argv[1]))
def search():
    arrays = [np.ones(2_000_000, np.float32) for _ in range(6)]
    return sum(a.sum() for a in arrays)
search()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    search()
print(took, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _faults(keep_mb: int) -> tuple[str, int]:
    out = subprocess.run(
        [sys.executable, "-c", FAULTS, str(keep_mb)], capture_output=True, text=True, check=True
    ).stdout.split()
    return out[0], int(out[1])


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_kept_memory_is_reused_without_faulting_it_in_again() -> None:
    took, kept = _faults(128)
    default, fresh = _faults(0)
    assert (took, default) == ("True", "False")
    assert fresh >= 20 * 1900  # an 8 MB array (~2,000 pages) or more faulted in again a time
    assert kept < 500  # reused from the heap


def test_setting_comes_from_the_environment_and_refuses_a_negative() -> None:
    assert load_settings({}).malloc_keep_mb == 128
    assert load_settings({"VNSEARCH_MALLOC_KEEP_MB": "0"}).malloc_keep_mb == 0
    with pytest.raises(SettingsError, match="VNSEARCH_MALLOC_KEEP_MB must be at least 0"):
        load_settings({"VNSEARCH_MALLOC_KEEP_MB": "-1"})
    assert keep_freed_memory(0) is False
