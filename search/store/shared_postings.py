"""Posting arrays shared by every worker, through files in the index directory.

A worker turns a term's Whoosh postings into BM25F weight arrays (``postings.Snapshot``).  At a
million articles the frequent terms' arrays are gigabytes and take ~40 s of CPU to build; kept in
each worker's heap, N workers held N private copies.  So a large array is written here once and
every worker maps the file: one copy in the page cache, built once.  The indexer writes every
large array of a new base right after its commit (``Snapshot.share_frequent``, the most frequent
terms first, within the limit below), so the workers that open the generation build none while
they serve; a term it could not write is written by the first worker that reads it.

The files cover a generation's *base*: its older segments, up to the first segment boundary past
which at most ``TAIL_SHARE`` of the documents, and ``TAIL_MAX_DOCS``, lie (``base_rows``). Whoosh
segments never change (only their deletions do) and the indexer keeps the average field lengths
while they stay near (``columns.kept_averages``), so an incremental run leaves the base and its
documents' weights as they were: the next generation maps the same files, and its workers read only
the new segments (the tail) from Whoosh, instead of every worker rebuilding the arrays of a million
documents after each commit (21 s of CPU at 1M, slow searches for ~12 s). Documents deleted since a
file was written keep their weights in it: queries count and rank live documents only.

Layout, beside the generations' own files::

    vnsearch/postings-base-<base>-<params>/   one directory per base and scoring parameters
        <sha256 of the term>.npy      int32: MAGIC, kind, df, size, then the arrays
        .claim-<sha256>               a worker is building that term (others do other terms)
        .frequent-shared              the indexer wrote the frequent terms' arrays after a commit
        terms/                        every term of the base, the rarer ones' arrays (base_terms)

``<base>`` hashes the base's Whoosh segment ids and sizes and the average lengths (so a rebuilt
index, whose segment ids are new, never reads an older one's arrays); ``<params>`` the parameters
the weights depend on (k1, field weights and b).  A file is written under a temporary name,
flushed and renamed into place: complete or absent, whatever kills the worker.  A file that does
not read as a valid array of its base is ignored (the worker builds the term itself), never
trusted.  The indexer removes the directories no kept generation's base names
(``generation._clean``).  An index directory the workers cannot write to just means private
arrays, as before (logged once).
"""

from __future__ import annotations

import errno
import hashlib
import logging
import mmap
import os
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .base_terms import RECHECK_S, BaseTerms
from .strings import NPY_HEADER, load_array, npy_header

log = logging.getLogger(__name__)

PREFIX = "postings-"
MAGIC = 0x564E5350  # "VNSP"
DENSE, SPARSE = 1, 2
HEADER = 4  # int32 values before the arrays: MAGIC, kind, df, size


# Arrays smaller than this stay in the worker that built them: cheap to build again, and a file
# per rare term would only fill the directory.  While workers wrote the files during their
# searches, 8 KiB was tried: the first 1,000 searches of a fresh 150k index wrote 1,430 files,
# ~0.5 ms each flushed to disk in the search (p95 10.5 -> 15.9 ms).  Now the indexer writes them
# after its commit (``Snapshot.share_frequent``).  From 32 KiB: 14,700 files, 3.8 GB at 1M
# (4,143 files, 3.2 GB from 128 KiB), +16 s of build.  A term under the threshold is decoded
# from Whoosh's blocks by every worker that reads it (~70 us warm, 150-190 us in a fresh
# worker's first searches, mostly per-call costs, for 1,000-3,000 postings): on the same fresh
# 1M build, bench.scaling's HTTP phase served 179.7 / 165.4 / 172.8 req/s (10.4-11.2 ms of
# worker CPU a request) against 166.2 / 161.6 / 168.5 (11.2-11.6 ms) from 128 KiB, alternating;
# two processes sharing the queries as the two workers do, 9.4-10.1 against 10.4-11.1 ms of CPU a
# query (4 alternating runs).
# (One bench.scaling run each at stop 34 had favoured 128 KiB: 179.7 against 162.7 req/s; the
# runs differ by more than the thresholds do.)
MIN_SHARED_BYTES = 32 * 2**10
# A generation's shared arrays take at most this much disk per document: queries choose the
# terms, and a public search box sent every frequent word, pair and compound would otherwise
# write the arrays of the whole vocabulary (gigabytes).  Past it, workers keep further terms to
# themselves (logged once).  1,000 varied queries at a million articles wrote 2.7 GB.
MAX_BYTES_PER_DOC = 4 * 2**10
MIN_BYTES_LIMIT = 256 * 2**20
# A worker lists the directory (a stat a file: 15 ms for the 5,800 files of a 1M index) to see
# what all workers wrote only once its own writes since the last listing reach this share of the
# limit, or when its count nears the limit; between, it counts its own writes.  Other workers'
# writes since its last listing can take the directory past the limit by at most what they
# wrote meanwhile.  (A listing every 32 writes cost a worker ~0.5 ms a write at 5,800 files, and
# grew with them.)
RESCAN_SHARE = 1 / 64


# Present once the indexer has shared the base's frequent terms (``Snapshot.share_frequent``).
FREQUENT_MARK = ".frequent-shared"

BASE = "base-"
# The newest segments holding at most this share of the documents, and at most TAIL_MAX_DOCS,
# are a generation's tail, read by each worker from Whoosh into its own memory; the others its
# base, shared through files across generations.  The tail's arrays count in each worker's
# posting cache (at most 160 MiB at a million documents, ``postings.default_cache_bytes``), ~5
# bytes a tail document for every frequent term: with 120,000 tail documents at 1M the 1,500
# frequent terms' tails alone were ~900 MB, the cache reread them on every pass (52,000 term
# loads for 1,000 queries) and searches took 2.5 times as long (p50 11.5 → 28.4 ms).  Past the
# bound the base moves up to newer segments (the workers build its arrays once more).
TAIL_SHARE = 1 / 8
TAIL_MAX_DOCS = 16_384


def base_rows(segments: Sequence[tuple[str, int]]) -> int:
    """Where a generation's base ends (a docnum; every docnum when the base is everything): the
    first segment boundary past which at most ``TAIL_SHARE`` of the documents, and at most
    ``TAIL_MAX_DOCS``, lie.  The boundary stays where it is while incremental runs add small
    segments, so the base does too."""
    size = sum(count for _, count in segments)
    tail = min(TAIL_SHARE * size, TAIL_MAX_DOCS)
    end = 0
    for _, count in segments:
        end += count
        if size - end <= tail:
            return end
    return size


def base_key(segments: Sequence[tuple[str, int]], averages: np.ndarray) -> str:
    """Names a generation's base (``base_rows``): its segments and the average lengths its
    weights are normalised with."""
    end, held = base_rows(segments), []
    for segment_id, count in segments:
        if sum(c for _, c in held) >= end:
            break
        held.append((segment_id, int(count)))
    text = repr((held, np.asarray(averages, dtype=np.float64).tobytes().hex()))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def parameters_key(parameters: tuple) -> str:
    """The scoring parameters the weights depend on, as part of a directory name."""
    return hashlib.sha256(repr(parameters).encode("utf-8")).hexdigest()[:12]


def directory_name(base: str, parameters: str) -> str:
    return f"{PREFIX}{BASE}{base}-{parameters}"


def base_of(name: str) -> str | None:
    """The base key of a ``postings-base-<base>-<params>`` directory name (``None``: another
    name)."""
    if not name.startswith(PREFIX + BASE):
        return None
    return name[len(PREFIX + BASE) :].split("-", 1)[0]


def generation_of(name: str) -> int | None:
    """The generation of a ``postings-NNNNNN-key`` directory name, the layout of versions that
    shared arrays per generation (``None``: another name)."""
    if not name.startswith(PREFIX):
        return None
    number = name[len(PREFIX) :].split("-", 1)[0]
    return int(number) if number.isdigit() else None


# Files a base keeps mapped after a term's first read (the most recently read), whether or not
# the posting cache still holds the term.  The cache drops terms to stay within its limits and
# a worker serving varied queries reads ~1 mapped term a query again (at a million articles); a
# kept map answers it without opening the file, and its pages are still mapped in (a fault per
# 64 KiB otherwise).  Each is one memory map (Linux allows 65,530 a process): with the cache's
# own (``postings.MAX_CACHED_TERMS``), two generations' worth stays well under that.
MAPS_KEPT = 8192
# Linux's madvise advice (5.14 and later) that maps every page of a range now, as reading it would.
MADV_POPULATE_READ = getattr(mmap, "MADV_POPULATE_READ", 22)
_PAGE = mmap.PAGESIZE
_populate_refused = False  # logged once


def fault_in(array: np.ndarray) -> None:
    """Map every page of a mapped array into this process now.

    A worker maps a shared file when it first reads the term, but the kernel maps its pages into
    the process one fault at a time as they are read (a page cache hit each, ~0.1 s of system
    time a GB on the 2-core machine).  At a million articles, the dense files of the frequent
    terms a worker had warmed without reading them took 926 MiB of such faults in one worker
    during ``bench.scaling``'s 1,000 HTTP searches (~500 a worker).
    The warm-up calls this for the terms it loads, so the searches find them mapped.  Where the
    kernel lacks ``MADV_POPULATE_READ`` one value a page is read instead (the same faults, off
    the request path all the same); an array that is not a file's mapping is left alone, and so
    is a file the kernel cannot map in whole (one cut short since it was mapped: reading it one
    page at a time would kill the worker with ``SIGBUS``).
    """
    global _populate_refused
    view = array.base  # arrays, then a memoryview, over the map
    while view is not None and not isinstance(view, mmap.mmap):
        view = view.base if isinstance(view, np.ndarray) else getattr(view, "obj", None)
    if view is None or view.closed or not array.nbytes:
        return
    # The array's own pages only: a term of a base's terms file (``base_terms``) is a slice of
    # one map of every rare term's arrays.
    whole = np.frombuffer(view, np.uint8)
    offset = array.ctypes.data - whole.ctypes.data
    start = offset - offset % _PAGE
    length = offset + array.nbytes - start
    if not _populate_refused:
        try:
            view.madvise(MADV_POPULATE_READ, start, length)
            return
        except OSError as error:
            if error.errno != errno.EINVAL:  # a range it cannot map in (EFAULT: past the end)
                log.warning("a shared posting file not mapped in ahead (%s)", error)
                return
            _populate_refused = True  # an advice this kernel does not know
            log.info("madvise(MADV_POPULATE_READ) refused (%s): pages read one by one", error)
    pages = whole[start : start + length : _PAGE]
    int(pages.sum(dtype=np.uint64))


def _mapped(path: Path) -> np.ndarray | None:
    """The int32 values of a file ``put`` wrote, mapped read-only; ``None`` when its header is
    not exactly the one ``np.save`` writes for them (``np.load`` then reads it, or rejects it).

    ``np.load`` parses the header as Python source (``ast.literal_eval``) and goes through
    ``np.memmap``: ~66 us a file against ~9 us here, for each of the hundreds of terms a fresh
    worker maps in its first thousand searches.
    """
    fd = os.open(path, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        count, odd = divmod(size - NPY_HEADER, 4)
        if count <= 0 or odd:
            return None
        header = os.pread(fd, NPY_HEADER, 0)
        if header != npy_header("<i4", count):
            return None
        view = mmap.mmap(fd, size, prot=mmap.PROT_READ)
    finally:
        os.close(fd)
    return np.frombuffer(view, "<i4", count, NPY_HEADER)


class SharedPostings:
    """One base's shared posting arrays (``get`` maps, ``put`` writes then maps); ``size``: the
    base's documents."""

    def __init__(self, directory: Path, size: int, owner: Path | None = None) -> None:
        self.directory = directory
        self.size = size
        self.owner = owner  # the reading generation's directory: no writing once it is removed
        self.writable = True
        self.limit = max(MIN_BYTES_LIMIT, MAX_BYTES_PER_DOC * size)
        self._full = False
        self._counted: int | None = None  # bytes of arrays in the directory, last listed ...
        self._written = 0  # ... plus this process's writes since, this many bytes
        self._kept: OrderedDict[str, tuple[np.ndarray, np.ndarray, int, bool]] = OrderedDict()
        self._kept_lock = threading.Lock()  # the warm-up thread maps terms too
        self._terms: BaseTerms | None = None  # the base's terms file (``base_terms``)
        self._terms_looked = -RECHECK_S  # when it was last looked for (``time.monotonic``)

    def base_terms(self) -> BaseTerms | None:
        """The base's terms and the arrays of the rarer ones (``store.base_terms``), mapped;
        ``None`` while the indexer has not written them (looked for again every
        ``RECHECK_S``) or when they do not read as written."""
        terms = self._terms
        if terms is not None:
            return terms
        now = time.monotonic()
        if now - self._terms_looked < RECHECK_S:
            return None
        self._terms_looked = now
        self._terms = BaseTerms.open(self.directory, self.size)
        return self._terms

    @classmethod
    def open(
        cls, store: Path, base: str, parameters: str, size: int, owner: Path | None = None
    ) -> SharedPostings:
        return cls(store / directory_name(base, parameters), size, owner)

    def _path(self, term: str) -> tuple[Path, str]:
        digest = hashlib.sha256(term.encode("utf-8")).hexdigest()
        return self.directory / f"{digest}.npy", digest

    def has(self, term: str) -> bool:
        """Whether a file holds the term (written by some worker; ``get`` checks it)."""
        return self._path(term)[0].exists()

    def get(self, term: str) -> tuple[np.ndarray, np.ndarray, int, bool] | None:
        """The term's arrays, mapped: ``(docs, weight, df, False)`` for a sparse term,
        ``(dense, present, df, True)`` for a dense one; ``None`` when no valid file holds it.
        The last ``MAPS_KEPT`` files read stay mapped."""
        with self._kept_lock:
            kept = self._kept.get(term)
            if kept is not None:
                self._kept.move_to_end(term)
                return kept
        path, _ = self._path(term)
        try:
            mapped = _mapped(path)
            if mapped is None:  # not laid out as ``put`` writes it: any ``.npy`` header
                mapped = load_array(path)
        except (FileNotFoundError, NotADirectoryError):  # not written (yet)
            return None
        except (OSError, ValueError) as error:
            log.warning("%s: not a shared posting array (%s): ignored", path, error)
            return None
        found = self._arrays(path, mapped)
        if found is not None:
            with self._kept_lock:
                self._kept[term] = found
                while len(self._kept) > MAPS_KEPT:
                    self._kept.popitem(last=False)
        return found

    def _arrays(self, path: Path, mapped) -> tuple[np.ndarray, np.ndarray, int, bool] | None:
        values = np.asarray(mapped)
        if values.dtype != np.int32 or values.ndim != 1 or values.size < HEADER:
            log.warning("%s: not a shared posting array: ignored", path)
            return None
        magic, kind, df, size = (int(v) for v in values[:HEADER])
        body = values[HEADER:]
        if magic != MAGIC or size != self.size or not 0 <= df <= size:
            log.warning("%s: a shared posting array of another index: ignored", path)
            return None
        if kind == DENSE and body.size == size + (size + 3) // 4:
            return body[:size].view(np.float32), body[size:].view(np.bool_)[:size], df, True
        if kind == SPARSE and body.size == 2 * df:
            docs = body[:df]
            if df and (docs[0] < 0 or docs[-1] >= size or not np.all(docs[1:] > docs[:-1])):
                log.warning("%s: a shared posting array out of order: ignored", path)
                return None
            return docs, body[df:].view(np.float32), df, False
        log.warning("%s: a shared posting array of the wrong length: ignored", path)
        return None

    def claim(self, term: str) -> bool:
        """Say this process builds ``term`` now; ``False`` when another one already said so (a
        worker warming a generation then builds other terms first).  Claims are advice: a stale
        one (its worker was killed) only defers the term."""
        _, digest = self._path(term)
        try:
            self.directory.mkdir(parents=False, exist_ok=True)
            fd = os.open(self.directory / f".claim-{digest}", os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            return False
        except OSError:
            return True
        os.close(fd)
        return True

    def _room(self, nbytes: int) -> bool:
        """Whether ``nbytes`` more keep the directory within its limit (every worker's arrays
        count: they share it)."""
        counted = self._counted
        rescan = self._written >= RESCAN_SHARE * self.limit
        if counted is None or rescan or counted + nbytes > self.limit:
            self._counted, self._written = self._listed(), 0
        return self._counted + nbytes <= self.limit

    def _listed(self) -> int:
        """Bytes of arrays in the directory now."""
        try:
            with os.scandir(self.directory) as entries:
                return sum(e.stat().st_size for e in entries if e.name.endswith(".npy"))
        except OSError:  # not made yet (or going away with its generation)
            return 0

    @property
    def full(self) -> bool:
        """Whether a write was refused for the directory's limit (further terms stay private)."""
        return self._full

    def shared_frequent(self) -> bool:
        """Whether the indexer has shared this base's frequent terms (``Snapshot.share_frequent``):
        a later run that keeps the base has nothing to do."""
        return (self.directory / FREQUENT_MARK).exists()

    def mark_frequent_shared(self) -> None:
        """Record that the base's frequent terms are shared (best effort: without the mark the
        next run only looks again)."""
        if not self.writable:
            return
        try:
            self.directory.mkdir(parents=False, exist_ok=True)
            (self.directory / FREQUENT_MARK).touch()
        except OSError:
            pass

    def release(self, term: str) -> None:
        """Withdraw this process's ``claim`` (the term is written, or too small to share)."""
        _, digest = self._path(term)
        (self.directory / f".claim-{digest}").unlink(missing_ok=True)

    def put(
        self, term: str, first: np.ndarray, second: np.ndarray, df: int, dense: bool
    ) -> tuple[np.ndarray, np.ndarray, int, bool] | None:
        """Write the term's arrays (as ``get`` returns them) and map them; ``None`` when they
        cannot be written (then the caller keeps its own)."""
        return self.get(term) if self._write(term, first, second, df, dense) else None

    def _write(
        self, term: str, first: np.ndarray, second: np.ndarray, df: int, dense: bool
    ) -> bool:
        """``put``'s writing; whether the file was written.  The ``.npy`` header and the values
        go out as they are: ``np.save`` formatted its header in Python and needed the values
        joined first (a copy of up to 5 MB a term at 1M; 158 against 119 us of CPU a 16 KB
        file, flushed to disk either way)."""
        if not self.writable:
            return False
        if self.owner is not None and not self.owner.exists():
            # A generation no longer kept (a worker still serving it, slow to switch): its
            # directory was removed with it, and must not come back.
            self.writable = False
            return False
        nbytes = NPY_HEADER + 4 * (HEADER + (self.size + (self.size + 3) // 4 if dense else 2 * df))
        if self._full or not self._room(nbytes):
            if not self._full:
                self._full = True
                log.warning(
                    "%s holds %d MiB of shared posting arrays, its limit: further terms stay "
                    "in the worker that reads them",
                    self.directory,
                    self.limit >> 20,
                )
            return False
        path, _ = self._path(term)
        if dense:
            present = np.zeros((self.size + 3) // 4 * 4, dtype=np.bool_)
            present[: self.size] = second
            parts = (first.view(np.int32), present.view(np.int32))
        else:
            parts = (first.astype(np.int32, copy=False), second.view(np.int32))
        header = np.array([MAGIC, DENSE if dense else SPARSE, df, self.size], dtype="<i4")
        count = HEADER + sum(part.size for part in parts)
        npy = npy_header("<i4", count)
        try:
            self.directory.mkdir(parents=False, exist_ok=True)
            os.chmod(self.directory, 0o755)
            fd, temporary = tempfile.mkstemp(dir=self.directory, prefix=".", suffix=".tmp")
        except OSError as error:
            self.writable = False
            log.warning(
                "cannot write shared posting arrays in %s (%s): each worker keeps its own",
                self.directory,
                error,
            )
            return False
        try:
            os.fchmod(fd, 0o644)
            with os.fdopen(fd, "wb") as fh:
                fh.write(npy)
                fh.write(header.tobytes())
                for part in parts:
                    fh.write(np.ascontiguousarray(part, dtype="<i4").data)  # as the header says
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(temporary, path)
            self._counted = (self._counted or 0) + nbytes
            self._written += nbytes
        except OSError as error:
            Path(temporary).unlink(missing_ok=True)
            log.warning("cannot write %s (%s): kept in this worker", path, error)
            return False
        finally:
            self.release(term)
        return True
