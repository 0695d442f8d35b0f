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

import errno
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
# Terms a chunk of the work (``TermsWriter``): ~1 s of reads at a million articles.
CHUNK_TERMS = 1 << 15
# The listing's large flags (the file's own ``large.npy`` adds the terms that proved large).
LISTED_FILE = "listed-large.npy"
BOUNDS_FILE = "chunks.npy"  # where each chunk's terms start (the helper reads them)
# ``copy_file_range`` refused: copied through this process instead.
_NO_COPY_RANGE = {errno.EXDEV, errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.EPERM}
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

    def append_file(self, path: Path, count: int) -> None:
        """Add the ``count`` values of a chunk's file (``_ArrayWriter`` of this dtype), copied
        by the kernel."""
        self._flush()
        self._file.flush()
        copy = getattr(os, "copy_file_range", None)  # Linux's
        with open(path, "rb") as source:
            left, offset = count * self.dtype.itemsize, NPY_HEADER
            while left:
                sent = None
                if copy is not None:
                    try:
                        sent = copy(source.fileno(), self._file.fileno(), left, offset)
                    except OSError as error:  # a file system or kernel without it
                        if error.errno not in _NO_COPY_RANGE:
                            raise
                        copy = None  # refused: the rest of the file read and written here
                if sent is None:
                    source.seek(offset)
                    raw = self._file.raw  # the buffer is flushed: write past it
                    sent = raw.write(source.read(min(left, 1 << 24)))
                if not sent:
                    raise OSError(f"{path}: shorter than its {count} values")
                left, offset = left - sent, offset + sent
        self._file.seek(0, os.SEEK_END)
        self.count += count

    def _flush(self) -> None:
        if self._parts:
            self._file.write(np.concatenate(self._parts).tobytes())
        self._parts, self._pending = [], 0

    def close(self, sync: bool = True) -> None:
        self._flush()
        self._file.seek(0)
        self._file.write(npy_header(self.dtype.str, self.count))
        self._file.flush()
        if sync:
            os.fsync(self._file.fileno())
        self._file.close()


Arrays = Callable[[str], "tuple[np.ndarray, np.ndarray] | None"]


class TermsWriter:
    """Writes a base's terms file a chunk of ``CHUNK_TERMS`` terms at a time, so that two
    processes can share the work: the indexer (``begin``, ``work``, then ``finish``) and a
    helper process it starts (``join``, then ``work``).

    The file's terms are listed first (``names``, in the temporary directory); each process
    claims the next chunk no one has claimed (a file made with ``O_EXCL``) and writes its
    arrays to files of its own, the chunk's lengths last (renamed into place: the chunk is
    complete).  ``finish`` writes any chunk that is not complete or does not read as written
    (a helper killed midway, or one that never started), then joins the chunks into the
    file's arrays and renames the directory into place.  One process reading every rare term
    took 84 s of a 1M build's single-core end (37 s at 150k)."""

    def __init__(
        self,
        temporary: Path,
        names: list[str] | StringArray,
        listed: np.ndarray,
        bounds: np.ndarray,
    ) -> None:
        self.temporary, self.names, self.listed = temporary, names, listed
        self.bounds = bounds  # where each chunk's terms start, then where the last one ends
        self.own = 0  # chunks this process wrote

    @property
    def chunks(self) -> int:
        return int(self.bounds.size - 1)

    @classmethod
    def begin(cls, directory: Path, terms: Iterable[tuple[str, bool]]) -> TermsWriter | None:
        """List ``terms`` (each term, sorted by its UTF-8 bytes, and whether it is large: no
        arrays here) for ``directory/terms``; ``None`` when that is written already."""
        final = directory / DIRECTORY
        for left in directory.glob(".terms-*.tmp"):  # a writer killed midway (kill -9, power cut)
            if _idle_for(left) > STALE_S:
                shutil.rmtree(left, ignore_errors=True)
        if final.exists():
            return None
        directory.mkdir(parents=False, exist_ok=True)
        temporary = Path(tempfile.mkdtemp(dir=directory, prefix=".terms-", suffix=".tmp"))
        try:
            names: list[str] = []
            large: list[bool] = []
            for term, is_large in terms:
                names.append(term)
                large.append(is_large)
            listed = np.asarray(large, dtype=np.bool_)
            bounds = np.append(np.arange(0, len(names), CHUNK_TERMS), len(names))
            StringArray.from_strings(names).save(temporary, "names", sorted_=True)
            np.save(temporary / LISTED_FILE, listed)
            np.save(temporary / BOUNDS_FILE, bounds.astype(np.int64))
        except BaseException:
            shutil.rmtree(temporary, ignore_errors=True)
            raise
        return cls(temporary, names, listed, bounds)

    @classmethod
    def join(cls, temporary: Path) -> TermsWriter:
        """The writer of another process's listing (a helper's)."""
        names = StringArray.load(temporary, "names")
        listed, bounds = load_array(temporary / LISTED_FILE), load_array(temporary / BOUNDS_FILE)
        if listed.shape != (len(names),) or bounds.size < 1 or bounds[-1] != len(names):
            raise ValueError(f"{temporary}: not a terms file's listing")
        return cls(temporary, names, listed, bounds)

    def _path(self, chunk: int, what: str) -> Path:
        return self.temporary / f"chunk-{chunk:06d}.{what}"

    def _claim(self, chunk: int) -> bool:
        try:
            fd = os.open(self._path(chunk, "claim"), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        try:
            os.write(fd, str(os.getpid()).encode())
        finally:
            os.close(fd)
        return True

    def work(self, arrays: Arrays, keep_going: Callable[[], bool] | None = None) -> int:
        """Write the chunks no one has claimed, one at a time; returns how many.  Stops early
        when ``keep_going`` says so, or when the listing is gone (its writer gave up)."""
        done = 0
        for chunk in range(self.chunks):
            if keep_going is not None and not keep_going():
                break
            try:
                if not self._claim(chunk):
                    continue
            except FileNotFoundError:  # the directory was removed: nothing left to do
                break
            self._write(chunk, arrays)
            done += 1
        self.own += done
        return done

    def _write(self, chunk: int, arrays: Arrays) -> None:
        start, stop = int(self.bounds[chunk]), int(self.bounds[chunk + 1])
        lengths = np.full(stop - start, -1, dtype=np.int64)
        docs = _ArrayWriter(self._path(chunk, "docs.npy"), "<i4")
        weights = _ArrayWriter(self._path(chunk, "weights.npy"), "<f4")
        names = self.names
        terms = names[start:stop] if isinstance(names, list) else names.rows(start, stop).tolist()
        try:
            for i, term in enumerate(terms):
                found = None if self.listed[start + i] else arrays(term)
                if found is not None:
                    docs.add(found[0])
                    weights.add(found[1])
                    lengths[i] = found[0].size
        finally:
            docs.close(sync=False)  # the joined file is synced, not the chunks
            weights.close(sync=False)
        done = self._path(chunk, "lengths-tmp.npy")
        np.save(done, lengths)
        os.rename(done, self._path(chunk, "lengths.npy"))

    def _lengths(self, chunk: int) -> np.ndarray | None:
        """A complete chunk's lengths (-1: no arrays here), ``None`` when it is not complete or
        its files do not agree with them."""
        start, stop = int(self.bounds[chunk]), int(self.bounds[chunk + 1])
        try:
            lengths = np.load(self._path(chunk, "lengths.npy"), allow_pickle=False)
            count = int(np.maximum(lengths, 0).sum()) if lengths.dtype == np.int64 else -1
            files = [self._path(chunk, f"{what}.npy") for what in ("docs", "weights")]
            heads = [npy_header(dtype, count) for dtype in ("<i4", "<f4")]
            with open(files[0], "rb") as d, open(files[1], "rb") as w:
                written = [d.read(NPY_HEADER), w.read(NPY_HEADER)]
            sizes = [path.stat().st_size for path in files]
        except (OSError, ValueError):
            return None
        if lengths.dtype != np.int64 or lengths.shape != (stop - start,):
            return None
        if np.any(lengths < -1) or np.any(lengths[self.listed[start:stop]] != -1):
            return None
        if written != heads or sizes != [NPY_HEADER + 4 * count] * 2:
            return None
        return lengths

    def finish(self, arrays: Arrays) -> bool:
        """Write what no process finished, join the chunks and put the file in place; returns
        whether it was written (``False``: another process put one there meanwhile)."""
        temporary = self.temporary
        try:
            parts = []
            for chunk in range(self.chunks):
                lengths = self._lengths(chunk)
                if lengths is None:  # never claimed, or its writer died or failed midway
                    self._write(chunk, arrays)
                    self.own += 1
                    lengths = self._lengths(chunk)
                    if lengths is None:
                        raise OSError(f"{temporary}: chunk {chunk} does not read as written")
                parts.append(lengths)
            lengths = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
            counts = np.maximum(lengths, 0)
            docs = _ArrayWriter(temporary / "docs.npy", "<i4")
            weights = _ArrayWriter(temporary / "weights.npy", "<f4")
            try:
                for chunk, part in enumerate(parts):
                    count = int(np.maximum(part, 0).sum())
                    docs.append_file(self._path(chunk, "docs.npy"), count)
                    weights.append_file(self._path(chunk, "weights.npy"), count)
            finally:
                docs.close()
                weights.close()
            starts = np.zeros(lengths.size + 1, dtype=np.int64)
            np.cumsum(counts, out=starts[1:])
            np.save(temporary / "starts.npy", starts)
            np.save(temporary / "large.npy", self.listed | (lengths < 0))
            for path in temporary.iterdir():
                if path.name.startswith("chunk-") or path.name in (LISTED_FILE, BOUNDS_FILE):
                    path.unlink()
            for path in temporary.iterdir():
                with open(path, "rb") as fh:
                    os.fsync(fh.fileno())
            os.chmod(temporary, 0o755)
            final = temporary.parent / DIRECTORY
            try:
                os.rename(temporary, final)
            except OSError:
                if not final.is_dir():
                    raise
                shutil.rmtree(temporary, ignore_errors=True)  # written meanwhile elsewhere
                return False
        except BaseException:
            self.cancel()
            raise
        return True

    def write(self, arrays: Arrays, before_finish: Callable[[], object] | None = None) -> bool:
        """``work``, then ``before_finish`` (the indexer stops its helper there), then
        ``finish``; the listing goes on any error."""
        try:
            self.work(arrays)
            if before_finish is not None:
                before_finish()
        except BaseException:
            self.cancel()
            raise
        return self.finish(arrays)

    def cancel(self) -> None:
        """Give up: the listing and every chunk go (a helper still at work stops at its next
        claim)."""
        shutil.rmtree(self.temporary, ignore_errors=True)


def write_base_terms(
    directory: Path,
    terms: Iterable[tuple[str, bool]],
    arrays: Arrays,
) -> bool:
    """Write ``directory/terms`` from ``terms`` (each term, sorted by its UTF-8 bytes, and
    whether it is large: no arrays here) and ``arrays`` (a term's docnums and weights, or
    ``None``: large after all), in this process alone.  Returns whether it was written
    (``False``: there already)."""
    writer = TermsWriter.begin(directory, terms)
    return writer is not None and writer.write(arrays)


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
