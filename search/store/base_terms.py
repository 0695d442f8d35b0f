"""Every term of a base with the BM25F arrays of the rarer ones, in a few files every worker maps.

A term a worker has not read yet cost it a dictionary lookup per field and segment, then the
decoding of Whoosh's pickled blocks, then the fields' lists merged and weighed: 70-220 us a term,
~1.8 ms of a fresh worker's first-pass search at a million articles (a title query asks for ~15
terms it has not read: compounds in no document, adjacent pairs in a few thousand).  The shared
posting files (``shared_postings``) only hold the large arrays: a file a term for the 1.8 million
rarer ones would be a directory of millions of files.  So the indexer writes, once a base, right
after its commit (``Snapshot.write_base_terms``):

    vnsearch/postings-base-<base>-<params>/terms/
        names.blob.npy, names.offsets.npy, names.prefix.npy
                          every term of the base's text fields (both views), sorted
        starts.npy        int64, one more than the terms: term i's arrays are from
                          starts[i] to starts[i + 1]
        large.npy         bool: term i's arrays are not here (a shared file's, or read as before)
        docs.npy          int32, the docnums of each term, ascending
        weights.npy       float32, their BM25F weights, as ``Snapshot._load`` gives them

A term that is not among ``names`` is in no document of the base: no lookup at all.  A rarer one
is two slices of mapped arrays.  The directory is written under a temporary name and renamed into
place whole, so it is complete or absent; arrays that do not read as the writer left them (sizes,
order, docnums past the base) are never trusted: the worker reads terms as before, logged once.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from .strings import NPY_HEADER, StringArray, load_array, npy_header

log = logging.getLogger(__name__)

DIRECTORY = "terms"
# A worker that found no terms file looks again after this many seconds: a full build's workers
# may open the new base before the indexer has written it (right after the commit).
RECHECK_S = 15.0
# Directories whose missing or damaged terms file was logged (once each, not once a look).
_LOGGED: set[Path] = set()
# Arrays written per flush while the terms are read (bounded memory, whatever the archive).
FLUSH_VALUES = 1 << 20
# A temporary directory left unchanged this long is a killed writer's, removed by the next one
# (a live writer at a million articles flushes its arrays about twice a second).
STALE_S = 600.0


def _idle_for(folder: Path) -> float:
    """Seconds since ``folder`` or a file in it last changed (a live writer appends to its
    arrays every ``FLUSH_VALUES``)."""
    try:
        times = [folder.stat().st_mtime, *(p.stat().st_mtime for p in folder.iterdir())]
    except OSError:  # gone meanwhile
        return 0.0
    return time.time() - max(times)


class _ArrayWriter:
    """A ``.npy`` file of one dtype written a part at a time; its header, written last, gives
    the count (a fixed-size header, so the values never move)."""

    def __init__(self, path: Path, dtype: str) -> None:
        self.path, self.dtype, self.count = path, np.dtype(dtype), 0
        self._file = open(path, "wb")  # noqa: SIM115 - closed by ``close``
        self._file.write(b"\0" * NPY_HEADER)
        self._parts: list[np.ndarray] = []
        self._pending = 0

    def add(self, values: np.ndarray) -> None:
        self._parts.append(np.ascontiguousarray(values, dtype=self.dtype))
        self._pending += values.size
        self.count += values.size
        if self._pending >= FLUSH_VALUES:
            self._flush()

    def _flush(self) -> None:
        if self._parts:
            self._file.write(np.concatenate(self._parts).tobytes())
        self._parts, self._pending = [], 0

    def close(self) -> None:
        self._flush()
        self._file.seek(0)
        self._file.write(npy_header(self.dtype.str, self.count))
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()


def write_base_terms(
    directory: Path,
    terms: Iterable[tuple[str, bool]],
    arrays: Callable[[str], tuple[np.ndarray, np.ndarray] | None],
) -> bool:
    """Write ``directory/terms`` from ``terms`` (each term, sorted by its UTF-8 bytes, and
    whether it is large: no arrays here) and ``arrays`` (a term's docnums and weights, or
    ``None``: large after all).  Returns whether it was written (``False``: there already)."""
    final = directory / DIRECTORY
    for left in directory.glob(".terms-*.tmp"):  # a writer killed midway (kill -9, power cut)
        if _idle_for(left) > STALE_S:
            shutil.rmtree(left, ignore_errors=True)
    if final.exists():
        return False
    directory.mkdir(parents=False, exist_ok=True)
    temporary = Path(tempfile.mkdtemp(dir=directory, prefix=".terms-", suffix=".tmp"))
    try:
        docs = _ArrayWriter(temporary / "docs.npy", "<i4")
        weights = _ArrayWriter(temporary / "weights.npy", "<f4")
        names: list[str] = []
        starts, large = [0], []
        try:
            for term, is_large in terms:
                found = None if is_large else arrays(term)
                if found is not None:
                    docs.add(found[0])
                    weights.add(found[1])
                names.append(term)
                large.append(found is None)
                starts.append(docs.count)
        finally:
            docs.close()
            weights.close()
        StringArray.from_strings(names).save(temporary, "names", sorted_=True)
        np.save(temporary / "starts.npy", np.asarray(starts, dtype=np.int64))
        np.save(temporary / "large.npy", np.asarray(large, dtype=np.bool_))
        for path in temporary.iterdir():
            with open(path, "rb") as fh:
                os.fsync(fh.fileno())
        os.chmod(temporary, 0o755)
        try:
            os.rename(temporary, final)
        except OSError:
            if not final.is_dir():
                raise
            shutil.rmtree(temporary, ignore_errors=True)  # written meanwhile by another process
            return False
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    return True


class BaseTerms:
    """The mapped ``terms`` directory of a base (``open``: ``None`` where absent or damaged)."""

    __slots__ = ("names", "starts", "large", "docs", "weights", "size", "_warned")

    def __init__(
        self,
        names: StringArray,
        starts: np.ndarray,
        large: np.ndarray,
        docs: np.ndarray,
        weights: np.ndarray,
        size: int,
    ) -> None:
        self.names, self.starts, self.large = names, starts, large
        self.docs, self.weights, self.size = docs, weights, size
        self._warned = False  # about arrays out of order (once, not once a term)

    @classmethod
    def open(cls, directory: Path, size: int) -> BaseTerms | None:
        """The terms of the base in ``directory`` (of ``size`` documents); ``None`` when they
        were not written (logged) or do not read as written (logged as a warning)."""
        folder = directory / DIRECTORY
        if not folder.is_dir():
            if directory not in _LOGGED:
                _LOGGED.add(directory)
                log.info("%s: no terms file (yet): terms are looked up in each segment", directory)
            return None
        try:
            names = StringArray.load(folder, "names")
            starts, large = load_array(folder / "starts.npy"), load_array(folder / "large.npy")
            docs, weights = load_array(folder / "docs.npy"), load_array(folder / "weights.npy")
            problem = _problem(names, starts, large, docs, weights)
        except (OSError, ValueError) as error:
            problem = str(error)
        if problem is not None:
            if folder not in _LOGGED:
                _LOGGED.add(folder)
                log.warning("%s: not a base's terms (%s): ignored", folder, problem)
            return None
        return cls(names, starts, large, docs, weights, size)

    def find(self, term: str) -> int:
        """The term's position (-1: in no document of the base)."""
        return self.names.find(term)

    def arrays(self, at: int) -> tuple[np.ndarray, np.ndarray] | None:
        """The docnums and weights of the term at ``at`` (views of the maps); ``None`` when they
        are not here (a large term) or are not in order (a damaged file: read as before)."""
        if self.large[at]:
            return None
        start, end = int(self.starts[at]), int(self.starts[at + 1])
        docs = self.docs[start:end]
        if docs.size and (docs[0] < 0 or docs[-1] >= self.size or np.any(docs[1:] <= docs[:-1])):
            if not self._warned:
                self._warned = True
                log.warning("a base's terms file holds docnums out of order: those are read")
            return None
        return docs, self.weights[start:end]


def _problem(
    names: StringArray,
    starts: np.ndarray,
    large: np.ndarray,
    docs: np.ndarray,
    weights: np.ndarray,
) -> str | None:
    """What keeps the arrays from being read as the writer left them (``None``: nothing)."""
    count = len(names)
    layout = names.layout_problem()
    if layout is not None:
        return f"names' {layout}"
    if starts.dtype != np.int64 or large.dtype != np.bool_:
        return "types"
    if docs.dtype != np.int32 or weights.dtype != np.float32:
        return "types"
    if starts.shape != (count + 1,) or large.shape != (count,):
        return "lengths"
    if docs.shape != weights.shape or starts[0] != 0 or starts[-1] != docs.size:
        return "lengths"
    if count and np.any(starts[1:] < starts[:-1]):
        return "starts out of order"
    prefixes = names.prefixes()
    if prefixes.shape != (count,):
        return "names' prefixes"
    if count > 1 and np.any(prefixes[1:] < prefixes[:-1]):
        return "names out of order"
    return None
