"""Full and incremental reindexing.

Whoosh is the source of truth: every commit is a new generation (its TOC file), written beside the
old one and switched atomically, so searches keep being served from the previous generation until
the commit lands, and a killed reindex leaves the previous generation intact.  Only one writer can
hold Whoosh's lock; a second reindex waits ``lock_timeout`` seconds, then gives up.

The index remembers its sources in ``sources.json`` (in the index directory).  Each document stores
its ``origin`` (the source it came from) and a content ``hash``, so an incremental run adds new
documents, updates changed ones, removes those gone from their source and skips the rest.

The sources are read once to learn each id's winning copy (content hash and source, not its
text); new and changed documents are then read again as they are written, unless they are few
enough (``HELD_DOCS``) to have been kept from the first reading: a build never holds the archive
in memory.  They are analysed ``ANALYSIS_BATCH`` at a time by worker processes (segmentation is
most of the work), which also tally their accent vocabulary and suggestions, and written, in
order, into segments of bounded memory by this process (``segment_merge.RunSegments``), which
holds the lock throughout and commits them together with the deletions as one generation.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import json
import logging
import multiprocessing
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Collection, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path

import numpy as np
from whoosh import index as whoosh_index
from whoosh.index import LockError
from whoosh.writing import CLEAR

from .analysis import PAIR_JOINER, index_terms, pair_bucket
from .children import die_with
from .config import env_int
from .documents import (
    Document,
    Record,
    Skipped,
    Unreadable,
    Warning_,
    has_lone_surrogate,
    read_source,
)
from .errors import IndexBusy, SourceChanged, SourceMissing, SourceUnreadable, VnsearchError
from .existing import Existing
from .pooled_reading import POOLED_BYTES, ReadCopy, list_sources, read_in_pool, size_of
from .postings import Snapshot, length_norms
from .schema import SCHEMA_VERSION, TEXT_FIELDS, build_schema, codec, extra_field
from .source_files import Fingerprint, Reading, SourceFiles
from .store.accent_files import AccentRun
from .store.commit import clean_stale_files, commit_segments
from .store.corpus import BatchCounts, CorpusCounts, CorpusTally
from .store.generation import Update, hash_array, load_generation, plain_storage, publish
from .store.segment_merge import (
    MAX_SEGMENT_DOCS,
    MergePolicy,
    RunSegments,
)
from .store.segment_writer import BatchPostings, FieldPostings
from .store.strings import StringArray, same_strings

log = logging.getLogger(__name__)
SOURCES_FILE = "sources.json"
META_FILE = "vnsearch.json"
# Documents analysed together by one pool worker.
ANALYSIS_BATCH = 1000
# ... and together in this process (a run of one batch), between two progress reports: the index
# is the same whatever the batches (pairs are pooled per segment), so a small reindex need not
# show its progress bar jumping from 0 to 100 %.
PROGRESS_STEP = 50
# Batches a pool worker may have queued or finished ahead of the writing (a writer slower than
# the pool must not gather every batch's postings in memory).
IN_FLIGHT = 2
# A build writes the segment it holds and starts another once the postings it holds would take
# this much memory (``SegmentBuilder.held_bytes``; writing them needs about as much again): its
# memory does not grow with the archive.  The segments are merged at the end (``segment_merge``).
# At a million articles 1,024 took the build's tree to 4.14 GiB (a segment written midway) and
# 512 to 3.28 GiB, no slower (``docs/scaling-log.md``).
SEGMENT_MB = 512
# New and changed documents kept in memory from the first reading of the sources when there are
# at most this many (an incremental run reads its sources once); more are read again as they
# are written (a full build of a million articles would otherwise hold them all: ~6 GB).
HELD_DOCS = 10_000
# Keys (phrases, titles) the suggestions' tally of a run holds before it is folded into arrays
# (``VocabularyCount``): ~300 MB of ``Counter``s.  A fold costs ~10 us a key (its keys are sorted
# and looked up in the arrays) plus a rebuild of the arrays, so a smaller bound folds more often
# the keys every window repeats.  Also the rows of accent pairs (20 bytes each) the batches sent
# that a run holds before it sums them into its pair table (``AccentRun``).
TALLY_KEYS = 2_000_000


@dataclass(frozen=True)
class BuildLimits:
    """A run's memory bounds: the defaults above, or ``VNSEARCH_SEGMENT_MB``,
    ``VNSEARCH_HELD_DOCS``, ``VNSEARCH_MAX_SEGMENT_DOCS`` and ``VNSEARCH_TALLY_KEYS``, read when
    a run starts (the CLI checks them first: a value that cannot be used is one line and exit
    2)."""

    segment_bytes: int
    held_docs: int
    max_segment_docs: int
    tally_keys: int

    @classmethod
    def from_env(cls) -> BuildLimits:
        return cls(
            env_int("segment_mb", SEGMENT_MB, 0) * 2**20,
            env_int("held_docs", HELD_DOCS, 0),
            env_int("max_segment_docs", MAX_SEGMENT_DOCS, 1),
            env_int("tally_keys", TALLY_KEYS, 1),
        )


Progress = Callable[[int, int], None]


# Skipped lines and warnings listed one by one in a summary; beyond, they are only counted (a
# file of three million bad lines must not make three million messages).
REPORTED = 10


@dataclass
class Summary:
    """What a reindex did: the CLI prints it as one line, after the first ``REPORTED`` skipped
    lines, warnings and unreadable sources."""

    added: int = 0
    updated: int = 0
    removed: int = 0
    unchanged: int = 0
    clashes: int = 0
    skipped: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)
    skipped_count: int = 0
    unreadable_count: int = 0
    warning_count: int = 0
    skip_reasons: dict[str, int] = field(default_factory=dict)
    truncated_fields: int = 0
    files_unread: int = 0
    seconds: float = 0.0
    documents: int = 0

    def skip(self, record: object, reason: str) -> None:
        self.skipped_count += 1
        self.skip_reasons[reason] = self.skip_reasons.get(reason, 0) + 1
        if len(self.skipped) < REPORTED:
            self.skipped.append(str(record))

    def cannot_read(self, record: Unreadable) -> None:
        self.unreadable_count += 1
        if len(self.unreadable) < REPORTED:
            self.unreadable.append(str(record))

    def warn(self, record: Warning_) -> None:
        self.warning_count += 1
        self.truncated_fields += len(record.truncated)
        if len(self.warnings) < REPORTED:
            self.warnings.append(str(record))

    def line(self) -> str:
        why = ", ".join(f"{n} {r}" for r, n in sorted(self.skip_reasons.items()))
        parts = [
            f"added {self.added}",
            f"updated {self.updated}",
            f"removed {self.removed}",
            f"unchanged {self.unchanged}",
            f"skipped {self.skipped_count}" + (f" ({why})" if why else ""),
        ]
        if self.clashes:
            parts.append(f"id clashes {self.clashes} (later source wins)")
        if self.truncated_fields:
            plural = "s" if self.truncated_fields > 1 else ""
            parts.append(f"truncated {self.truncated_fields} field{plural}")
        if self.warning_count:
            parts.append(f"warnings {self.warning_count}")
        if self.unreadable_count:
            parts.append(f"unreadable {self.unreadable_count} (their documents kept)")
        if self.files_unread:
            plural = "s" if self.files_unread > 1 else ""
            parts.append(f"{self.files_unread} unchanged source file{plural} not read")
        return ", ".join(parts) + f"; {self.documents} documents in {self.seconds:.1f} s"


def _reason(skipped: Skipped) -> str:
    """The kind of a skip, for the summary's counts (``bad JSON``, not the parser's detail)."""
    return skipped.reason.split(" (")[0].split(":")[0]


def index_exists(index_dir: Path) -> bool:
    return Path(index_dir).is_dir() and whoosh_index.exists_in(str(index_dir))


def _atomic_write_json(path: Path, data: object) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        # mkstemp makes the file 0600: give it the mode Whoosh's own files get (0644 under the
        # usual umask), or another user serving or refreshing the index cannot read it
        # (tests/test_reliability.py::test_index_files_are_readable_by_other_users).
        os.fchmod(fd, 0o644)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, ensure_ascii=False, indent=1)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_sources(index_dir: Path) -> list[str]:
    path = Path(index_dir) / SOURCES_FILE
    if not path.exists():
        return []
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        log.warning("%s is unreadable; remembering no sources", path)
        return []
    return [str(s) for s in data.get("sources", [])] if isinstance(data, dict) else []


def open_or_create(index_dir: Path, full: bool = False):
    """Open the index, creating it (or replacing an incompatible one when ``full``)."""
    index_dir.mkdir(parents=True, exist_ok=True)
    meta_path = index_dir / META_FILE
    if index_exists(index_dir):
        version = None
        if meta_path.exists():
            try:
                version = json.loads(meta_path.read_text(encoding="utf-8")).get("schema_version")
            except (OSError, ValueError):
                version = None
        if version == SCHEMA_VERSION:
            return _open_plain(index_dir)
        if not full:
            raise VnsearchError(
                f"index in {index_dir} was built by another vnsearch version; "
                "rebuild it with `vnsearch reindex --full`",
                code="index_version",
            )
    ix = (
        whoosh_index.create_in(str(index_dir), build_schema())
        if not index_exists(index_dir)
        else _open_plain(index_dir)
    )
    _atomic_write_json(meta_path, {"schema_version": SCHEMA_VERSION})
    return ix


def _open_plain(index_dir: Path):
    """The index through storage without memory maps: through Whoosh's maps, every reader
    copies each file it opens into memory (10 s and gigabytes at a million articles:
    ``store.generation.plain_storage``)."""
    return plain_storage(index_dir).open_index()


def _existing_of(index_dir: Path, writer, generation: int) -> Existing:
    """The live documents of ``generation`` (the writer's base), by id: from its shared files
    when they are the writer's segments (a fraction of a second at a million documents), else
    read through Whoosh's columns (about 17 s at a million; logged)."""
    files = load_generation(index_dir, generation) if generation >= 0 else None
    segments = [(s.segment_id(), s.doc_count_all()) for s in writer.segments]
    if files is not None and [tuple(s) for s in files.columns.segments] == segments:
        columns = files.columns
        live = np.flatnonzero(columns.live)
        origin = columns.coded["origin"]
        return Existing(
            columns.live_strings(columns.ids),
            live,
            columns.live_strings(columns.hashes),
            origin.codes[live],
            origin.labels.tolist(),
        )
    if segments:
        log.info(
            "generation %s of %s has no shared files: reading ids through Whoosh",
            generation,
            index_dir,
        )
    with writer.reader() as reader:
        return Existing.of(_existing(reader, None))


def _record_files(index_dir: Path, generation: int, scan: Scan, incomplete: set[str]) -> None:
    """Remember the files this run read or found unchanged, with the ids the index holds from
    each (``source_files``), so that the next run reads only the files that changed."""
    copies = scan.copies
    won: dict[str, list[str] | StringArray] = {}
    for path, ids in scan.won.items():
        if path in scan.overtaken:
            ids = [
                i for i in dict.fromkeys(ids) if (c := copies.get(i)) is not None and c[2] == path
            ]
        won[path] = ids
    for number, file in enumerate(scan.unread):
        if file.path not in scan.reading.unread:  # read after all: its ids are in ``won``
            continue
        if file.path in scan.overtaken:
            won[file.path] = file.ids.take(np.flatnonzero(scan.unread_of[file.rows] == number))
        else:
            won[file.path] = file.ids
    scan.reading.record(index_dir, generation, won, incomplete, scan.overtaken)


def _existing(reader, origins: set[str] | None) -> dict[str, tuple[int, str, str]]:
    """id -> (docnum, hash, origin) for live documents, read from columns (no stored bodies)."""
    if reader.doc_count_all() == 0:
        return {}
    ids = reader.column_reader("id")
    hashes = reader.column_reader("hash")
    origin_col = reader.column_reader("origin")
    out: dict[str, tuple[int, str, str]] = {}
    for docnum in reader.all_doc_ids():
        origin = origin_col[docnum]
        if origins is None or origin in origins:
            out[ids[docnum]] = (docnum, hashes[docnum], origin)
    return out


Terms = dict[str, dict[str, int]]  # field -> term -> frequency, for one document


def _analyze(doc: Document) -> Terms:
    """Both views of one document's text fields (runs in pool workers)."""
    terms: Terms = {}
    for name in TEXT_FIELDS:
        text = getattr(doc, name)
        terms[name], terms[extra_field(name)] = index_terms(text) if text else ({}, {})
    opening = doc.opening  # an article without a lead: its opening counts twice
    if opening:
        for name, found in zip(("body", extra_field("body")), index_terms(opening), strict=True):
            terms[name] = Counter(terms[name]) + found
    return terms


Analysed = tuple[dict[str, BatchPostings], BatchCounts | None]


def _analyse_batch(docs: list[Document], count: list[bool]) -> Analysed:
    """The postings of a batch of documents, as arrays per field (runs in pool workers: arrays
    cross the process boundary cheaply), and the tally of the accent vocabulary and suggestions
    of the documents ``count`` marks (``None`` when none is)."""
    analysed = [_analyze(d) for d in docs]
    out: dict[str, BatchPostings] = {}
    for name in TEXT_FIELDS + tuple(extra_field(n) for n in TEXT_FIELDS):
        postings = FieldPostings()
        for terms in analysed:
            postings.add(terms[name])
        out[name] = postings.batch()
    counted = [(d.title, d.lead, d.body) for d, wanted in zip(docs, count, strict=True) if wanted]
    return out, BatchCounts.of(counted) if counted else None


def _shared_pair(term: str) -> str | None:
    """The bucket term an adjacent pair goes under when one document of the segment holds it
    (``analysis.pair_bucket``); ``None`` for any other term of the extra view."""
    return pair_bucket(term) if PAIR_JOINER in term else None


# Pairs found in one document of a new segment are pooled (``SegmentBuilder``'s ``shared``).
POOLED = {extra_field(name): _shared_pair for name in TEXT_FIELDS}


def _write_documents(
    ix,
    docs: Iterable[Hashed],
    total: int,
    workers: int,
    progress: Progress | None,
    vocabulary: VocabularyCount | None = None,
) -> list:
    """Write the ``total`` documents of ``docs`` (read as they are written, each with its
    ``content_hash``) as new segments; returns them, for ``_commit``.

    Pool workers analyse ``ANALYSIS_BATCH`` documents at a time (pyvi is most of the work) and
    tally what ``vocabulary`` counts, at most ``IN_FLIGHT`` batches a worker ahead, while this
    process writes the batches that came back, in order, into segments of bounded memory
    (``segment_merge.RunSegments``: one segment pooled as always, or segments of ``SEGMENT_MB``
    merged into one at the end), since a segment keeps one dictionary entry per term and costs
    one lookup per term and field at query time.  The files exist from the start; a run killed
    midway leaves only files no generation refers to, which the next reindex removes.
    """
    if progress:
        progress(0, total)
    if not total:
        if vocabulary is not None:
            vocabulary.finish()
        return []
    pooled = workers > 1 and total > 2 * PROGRESS_STEP
    # A small run's batches (of ``PROGRESS_STEP``) shared among the workers too: 200 documents
    # took 4 s in this process alone.
    size = ANALYSIS_BATCH if pooled and total > ANALYSIS_BATCH else PROGRESS_STEP
    batches = _batches(docs, size, vocabulary)
    limits = BuildLimits.from_env()
    run = RunSegments(ix, codec(), POOLED, limits.segment_bytes, limits.max_segment_docs)
    try:
        with contextlib.ExitStack() as stack:
            # One batch is analysed here: a worker process would only add its start (~1 s).
            if pooled:
                pool = stack.enter_context(analysis_pool(workers, _lock_fds(ix)))
                analysed = _in_order(pool, batches, workers * IN_FLIGHT)
            else:
                analysed = ((b, _analyse_batch(b.docs, b.count)) for b in batches)
            done = 0
            for batch, (postings, tally) in analysed:
                if vocabulary is not None and tally is not None:
                    vocabulary.add(tally)
                values = [_values(d, h) for d, h in zip(batch.docs, batch.hashes, strict=True)]
                run.add_batch(values, postings)
                done += len(batch.docs)
                if progress:
                    progress(done, total)
            if done != total:
                raise SourceChanged(
                    f"a source changed while it was indexed ({total - done} of {total} new or "
                    "changed documents were not found again); the index is unchanged: run "
                    "reindex again"
                )
            if vocabulary is None:
                return run.finish()
            # The counts are saved while the segments are merged (numpy and I/O, mostly).
            saving = threading.Thread(target=vocabulary.finish, name="vnsearch-vocabulary")
            saving.start()
            try:
                return run.finish()
            finally:
                saving.join()
    except BaseException:
        run.cancel()
        raise


# A document with its ``content_hash``, computed once: every hash is a JSON dump of the whole
# article (45 us), and the first reading of the sources has computed it already.
Hashed = tuple[Document, str]


@dataclass(frozen=True, slots=True)
class Batch:
    """Documents analysed together, their content hashes and which of them the vocabulary
    counts."""

    docs: list[Document]
    hashes: list[str]
    count: list[bool]


def _batches(
    docs: Iterable[Hashed], size: int, vocabulary: VocabularyCount | None
) -> Iterator[Batch]:
    """``docs`` in batches of ``size``, read as they are asked for."""
    docs = iter(docs)
    while pairs := list(islice(docs, size)):
        batch = [doc for doc, _ in pairs]
        hashes = [content_hash for _, content_hash in pairs]
        count = vocabulary.flags(hashes) if vocabulary is not None else [False] * len(batch)
        yield Batch(batch, hashes, count)


def _in_order(
    pool: ProcessPoolExecutor, batches: Iterable[Batch], window: int
) -> Iterator[tuple[Batch, Analysed]]:
    """Each batch with its postings and tally, in order, analysed by ``pool`` with at most
    ``window`` batches submitted and not yet taken."""
    pending: deque[tuple[Batch, Future]] = deque()
    batches = iter(batches)
    try:
        while True:
            while len(pending) < window:
                batch = next(batches, None)
                if batch is None:
                    break
                pending.append((batch, pool.submit(_analyse_batch, batch.docs, batch.count)))
            if not pending:
                return
            batch, future = pending.popleft()
            yield batch, future.result()
    finally:
        for _, future in pending:
            future.cancel()


def _remove_segments(index_dir: Path, segments: Iterable) -> None:
    """Delete the files of segments written by a run that failed before its commit."""
    for segment in segments:
        for path in index_dir.glob(f"{segment.segment_id()}.*"):
            path.unlink(missing_ok=True)


def _lock_fds(ix) -> tuple[int, ...]:
    """File descriptors of the index's write lock held by this process (inherited by forked
    pool workers, which must not keep the lock alive)."""
    lock = os.path.realpath(Path(ix.storage.folder) / f"{ix.indexname}_WRITELOCK")
    fds = []
    proc = Path("/proc/self/fd")
    for entry in proc.iterdir() if proc.is_dir() else ():
        with contextlib.suppress(OSError):
            if os.readlink(entry) == lock:
                fds.append(int(entry.name))
    return tuple(fds)


def analysis_pool(workers: int, lock_fds: tuple[int, ...] = ()) -> ProcessPoolExecutor:
    """The processes that analyse a reindex's batches: forked from this one
    (``_pool_context``), each started by ``_pool_worker_start``; ``lock_fds``: the write
    lock's descriptors, which they close."""
    return ProcessPoolExecutor(
        max_workers=workers,
        mp_context=_pool_context(),
        initializer=_pool_worker_start,
        initargs=(os.getpid(), lock_fds),
    )


def _pool_context() -> multiprocessing.context.BaseContext:
    """The pool's start method, always ``fork`` (not the interpreter's default, ``forkserver``
    from Python 3.14): ``_pool_worker_start`` ties a worker to the reindex that forked it, which
    a forkserver's child is not (it would exit at once); and a forked worker starts with the
    parent's loaded models, where a forkserver or spawned one imports and loads them again
    before its first batch."""
    return multiprocessing.get_context("fork")


def _pool_worker_start(parent: int, lock_fds: tuple[int, ...]) -> None:
    """Runs first in every analysis process: it dies with the reindex that started it, and
    holds none of its index lock.

    Forked workers inherit the parent's descriptors, the write lock's among them (a ``flock`` is
    held while any descriptor of it is open): after a ``kill -9`` of the reindex, surviving
    workers kept the index locked for every later run.  Closing the inherited descriptor leaves
    the lock to the parent alone, and ``PR_SET_PDEATHSIG`` makes the kernel kill the worker when
    the parent dies (checked once more for a parent that died before the call).

    Everything the worker inherited is frozen out of its garbage collector (``gc.freeze``):
    the parent's objects (its models, the first reading's tables) live as long as the worker,
    and each full collection walked them and wrote their headers, copying their pages.  On
    200,000 articles of the 1M benchmark archive a worker's collections took 9 s instead of 20
    (its full ones 3 instead of 14), its CPU 7 % less, the build 6.5 % shorter
    (``docs/scaling-log.md``, stop 54).
    """
    for fd in lock_fds:
        with contextlib.suppress(OSError):
            os.close(fd)
    die_with(parent)
    gc.freeze()


def _commit(writer, segments: list, mergetype=None) -> None:
    """Commit the writer's changes plus the run's segments as one new generation, merged as
    ``segment_merge.MergePolicy`` plans with this run's ``max_segment_docs``."""
    policy = MergePolicy(max_docs=BuildLimits.from_env().max_segment_docs)
    commit_segments(writer, codec(), segments, POOLED, policy, mergetype)


Copy = tuple[str, str, str]  # a document's content hash, its source and the file it is read from


@dataclass
class Unread:
    """A file not read (unchanged since the last run): the ids it gave the index, as recorded,
    and their rows in the index (``Existing``)."""

    source: str
    path: str
    ids: StringArray
    rows: np.ndarray


@dataclass
class Scan:
    """What the first reading of the sources found.

    ``copies``: each id's winning copy read (a later source's replaces an earlier one).  The
    copies of the files not read are the index's own: those files are ``unread``, and
    ``unread_of`` gives, for each row of the index (``Existing``), which of them the index
    holds it from (-1: none), so a million unchanged ids need no Python object.
    ``incomplete``: the sources that could not be read whole: nothing of theirs may be removed,
    since what was not read is not known to be gone.  ``held``: the documents new or changed
    against the index, kept when there are at most ``HELD_DOCS`` of them; ``None`` when more
    (they are read again as they are written, ``_to_write``).  ``reading``: which files were
    read and which were not (unchanged since the last run, ``source_files``).
    """

    copies: dict[str, Copy]
    incomplete: set[str]
    held: dict[str, Document] | None
    reading: Reading = field(default_factory=lambda: Reading(None))
    # Each file read's ids in the order it gave them, including ids a later file took since:
    # those of the files in ``overtaken`` (``_record_files`` keeps only the ids each still wins).
    won: dict[str, list[str]] = field(default_factory=dict)
    overtaken: set[str] = field(default_factory=set)
    unread: list[Unread] = field(default_factory=list)
    unread_of: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    # The rows of the index the copies read hold (the index's ids among ``copies``).
    read_rows: dict[str, int] = field(default_factory=dict)

    def unchanged(self) -> int:
        """How many documents the files not read hold (as the index does)."""
        return int(np.count_nonzero(self.unread_of >= 0))

    def covered(self) -> np.ndarray:
        """Which rows of the index some copy of this run holds (the others are gone from their
        sources, unless a source could not be read whole)."""
        covered = self.unread_of >= 0
        covered[list(self.read_rows.values())] = True
        return covered


def _scan(
    sources: list[str],
    summary: Summary,
    follow_symlinks: bool,
    existing: Existing,
    full: bool,
    files: SourceFiles | None = None,
    workers: int = 1,
    lock_fds: tuple[int, ...] = (),
) -> Scan:
    """Read every source in order, counting what is skipped, and keep what ``Scan`` holds.

    A file ``files`` records as unchanged since the last run is not read: its documents are the
    index's (``existing``), when the index holds each of them from its source.  The ids it held
    whose copy came from a later file must still come from a later file; when one does not
    (its copy went away), the file is read after all, its copies winning over earlier ones.
    A full run of ``workers`` > 1 over sources of ``POOLED_BYTES`` or more reads its files in
    an analysis pool (``pooled_reading``), the copies taken here in the same order.
    """
    copies: dict[str, Copy] = {}
    incomplete: set[str] = set()
    state = _Held({}, BuildLimits.from_env().held_docs)
    reading = Reading(None if full else files)
    deferred: list[tuple[str, str, list[str]]] = []  # (source, file, the ids it lost)
    won: dict[str, list[str]] = {}
    overtaken: set[str] = set()
    unread: list[Unread] = []
    unread_of = np.full(len(existing), -1, dtype=np.int32)
    read_rows: dict[str, int] = {}
    read_mark = np.zeros(len(existing), dtype=bool)  # the rows of ``read_rows``

    def visit(source: str, path: Path) -> bool:
        name = sys.intern(str(path))
        fingerprint = reading.start(name)
        previous = reading.previous
        if previous is None or not previous.unchanged(name, fingerprint):
            reading.read(name, fingerprint)
            return True
        ids = previous.won_array(name)
        rows = existing.rows_from(ids, source)
        if rows is None:
            reading.read(name, fingerprint)
            return True
        # Copies read from earlier files that this one's replace (vectorised: a million ids).
        for row in rows[read_mark[rows]].tolist():
            doc_id = existing.id_at(row)
            before = copies.pop(doc_id)
            overtaken.add(before[2])
            if before[1] != source:
                summary.clashes += 1
            del read_rows[doc_id]
            read_mark[row] = False
            state.unchanged(doc_id)
        unread_of[rows] = len(unread)
        unread.append(Unread(source, name, ids, rows))
        lost = previous.lost(name)
        if lost:
            deferred.append((source, name, lost))
        reading.skip(name, fingerprint, ids, lost)
        return False

    def take(doc: Document | ReadCopy, wins: Callable[[Copy | None], bool]) -> None:
        doc_id = doc.id
        origin = sys.intern(doc.origin)  # one string per source, not per document
        previous = copies.get(doc_id)
        row = None if full else existing.row(doc_id)
        held_by = int(unread_of[row]) if row is not None else -1
        if previous is None and held_by >= 0:
            was = unread[held_by]
            previous = ("", was.source, was.path)
        if previous is not None and previous[1] != origin:
            summary.clashes += 1
        reading.count(doc_id)
        if not wins(previous):
            return
        content_hash = doc.content_hash
        current = reading.current
        copies[doc_id] = (content_hash, origin, current)
        if held_by >= 0:  # the copy of a file not read: this one replaces it
            unread_of[row] = -1
            overtaken.add(previous[2])  # type: ignore[index]
            won.setdefault(current, []).append(doc_id)
        elif previous is None:
            won.setdefault(current, []).append(doc_id)
        elif previous[2] != current:
            overtaken.add(previous[2])
            won.setdefault(current, []).append(doc_id)
        if full:
            state.changed(doc)
            return
        if row is None:
            state.changed(doc)
            return
        read_rows[doc_id] = row
        read_mark[row] = True
        _docnum, old_hash, old_origin = existing.entry(row)
        if old_hash != content_hash or old_origin != origin:
            state.changed(doc)
        else:
            state.unchanged(doc_id)  # an earlier copy, replaced by the indexed one

    def holder(doc_id: str) -> str | None:
        """The file whose copy of ``doc_id`` wins so far, if any."""
        copy = copies.get(doc_id)
        if copy is not None:
            return copy[2]
        row = existing.row(doc_id)
        return unread[unread_of[row]].path if row is not None and unread_of[row] >= 0 else None

    listed = list_sources(sources, follow_symlinks) if full and workers > 1 else None
    if listed is None or size_of(listed) < POOLED_BYTES:
        for doc in _read_documents(sources, follow_symlinks, summary, incomplete, visit):
            take(doc, _always)
    else:
        state.held = None  # a full build of this size: its documents are read again
        with analysis_pool(workers, lock_fds) as pool:
            for source, name, records in read_in_pool(listed, visit, pool, workers):
                if name is not None:
                    reading.current = name
                for record in records:
                    doc = _document(record, source, summary, incomplete)
                    if doc is not None:
                        take(doc, _always)
    for source, name, lost in deferred:
        rank = reading.order[name]
        if all((h := holder(i)) is not None and reading.order[h] > rank for i in lost):
            continue
        # A copy that shadowed one of this file's went away: read the file after all.
        reading.read(name, Fingerprint.of(name))
        reading.current = name
        overtaken.add(name)  # its ids, as recorded, may have moved since
        only = functools.partial(_only, name)
        for doc in _read_documents([source], follow_symlinks, summary, incomplete, only):
            take(doc, functools.partial(_beats, reading.order, name))
    summary.files_unread = len(reading.unread)
    return Scan(
        copies, incomplete, state.held, reading, won, overtaken, unread, unread_of, read_rows
    )


def _always(_previous: Copy | None) -> bool:
    return True


def _only(name: str, _source: str, path: Path) -> bool:
    return str(path) == name


def _beats(order: dict[str, int], name: str, previous: Copy | None) -> bool:
    """Whether a copy read from the file ``name`` replaces ``previous`` (read before it, or
    from a file read before it)."""
    return previous is None or previous[2] == name or order[previous[2]] < order[name]


@dataclass
class _Held:
    """The new and changed documents a scan keeps, until there are more than ``most``."""

    held: dict[str, Document] | None
    most: int

    def changed(self, doc: Document) -> None:
        if self.held is not None:
            self.held[doc.id] = doc
            if len(self.held) > self.most:
                self.held = None

    def unchanged(self, doc_id: str) -> None:
        if self.held is not None:
            self.held.pop(doc_id, None)


def _read_documents(
    sources: list[str],
    follow_symlinks: bool,
    summary: Summary | None = None,
    incomplete: set[str] | None = None,
    visit: Callable[[str, Path], bool] | None = None,
) -> Iterator[Document]:
    """The documents of ``sources``, in order; what is not a document is counted into
    ``summary`` (and the sources not read whole into ``incomplete``) when given.  ``visit``
    (a source, one of its files) says whether to read the file."""
    for source in sources:
        told = None if visit is None else functools.partial(visit, source)
        for record in read_source(Path(source), follow_symlinks, told):
            doc = _document(record, source, summary, incomplete)
            if doc is not None:
                yield doc


def _document(
    record: Record | ReadCopy, source: str, summary: Summary | None, incomplete: set[str] | None
) -> Document | ReadCopy | None:
    """``record`` if it is a document to index; otherwise ``None``, and what it is counted."""
    if isinstance(record, Unreadable):
        if summary is not None and incomplete is not None:
            incomplete.add(source)
            summary.cannot_read(record)
        log.debug("unreadable %s", record)
    elif isinstance(record, Skipped):
        if summary is not None:
            summary.skip(record, _reason(record))
    elif isinstance(record, Warning_):
        if summary is not None:
            summary.warn(record)
    elif isinstance(record, Document) and has_lone_surrogate(record):
        if summary is not None:
            reason = f"invalid Unicode (lone surrogate in id {ascii(record.id[:80])})"
            summary.skip(Skipped(record.origin, None, reason), "invalid Unicode")
    else:
        return record
    return None


def _to_write(
    scan: Scan, ids: list[str], sources: list[str], follow_symlinks: bool
) -> Iterable[Hashed]:
    """The documents of ``ids`` (in source order) with their hashes: those the scan held, or
    each winning copy read again from the sources as it is asked for (not from the files the
    scan did not read: they hold none of them).  A copy not found again (its source changed
    meanwhile) is missing from what this yields, and ``_write_documents`` fails the run."""
    copies = scan.copies
    if scan.held is not None:
        return [(scan.held[doc_id], copies[doc_id][0]) for doc_id in ids]
    wanted = {doc_id: copies[doc_id][:2] for doc_id in ids}
    unread = scan.reading.unread

    def found(doc: Document) -> Hashed | None:
        copy = wanted.get(doc.id)
        if copy is None:
            return None
        content_hash = doc.content_hash
        if copy != (content_hash, doc.origin):
            return None
        del wanted[doc.id]
        return doc, content_hash

    read = _read_documents(sources, follow_symlinks, visit=lambda _s, path: str(path) not in unread)
    return filter(None, map(found, read))


def _shadowed(origin: str, held_by: str, incomplete: set[str], rank: dict[str, int]) -> bool:
    """Whether the indexed copy of an id, from the source ``held_by`` that could not be read
    this run, stays: that source is listed after ``origin`` (the source of the copy read), so
    its copy wins whenever it is read, and replacing it now would lose it until the source is
    readable again."""
    return held_by in incomplete and rank.get(held_by, -1) > rank.get(origin, -1)


def _resolve(paths: Iterable[str | Path]) -> list[str]:
    out = []
    for p in paths:
        path = Path(p).expanduser()
        if not path.exists():
            raise SourceMissing(f"source not found: {p}")
        resolved = str(path.resolve())
        if resolved not in out:
            out.append(resolved)
    return out


class VocabularyCount:
    """The accent vocabulary and suggestion counts of a run's documents whose text the base
    generation does not hold, tallied batch by batch where the batches are analysed and added
    up here (no process ever holds the run's documents); ``finish`` saves them for ``_publish``,
    which adds them to the base generation's counts and subtracts the removed documents after
    the commit.  The archive is never read again for them.

    The accent vocabulary's batches come as arrays and add up as arrays (``AccentRun``, its
    pairs summed once ``fold_keys`` rows wait).  The suggestions' tally is ``Counter``s of Python
    strings (100-200 bytes a key, some five times its arrays): once it holds ``fold_keys`` keys
    it is folded into ``counts`` (sorted arrays, ``CorpusCounts``) and started again, so the
    run's memory grows with the arrays, not with the Python objects (4.92 GiB at the end of a
    million articles when the accents were ``Counter``s too).
    """

    def __init__(
        self, update: Update, fold_keys: int = TALLY_KEYS, held: Collection[str] = ()
    ) -> None:
        self.update = update
        self.fold_keys = fold_keys
        self._needs = update.needs_count(held)
        self.counts: CorpusCounts | None = CorpusCounts.empty()
        self.tally: CorpusTally | None = CorpusTally.of(())
        self.accents: AccentRun | None = AccentRun(fold_keys)
        self.hashes: list[np.ndarray] = []  # the counted documents' (``hash_array``)
        self.folds = 0
        self.fold_seconds = 0.0

    def flags(self, hashes: list[str]) -> list[bool]:
        """Which of the documents of content ``hashes`` are to be counted (noted as counted)."""
        flags = self._needs(hashes)
        counted = [h for h, wanted in zip(hashes, flags, strict=True) if wanted]
        self.hashes.append(hash_array(counted))
        return flags

    def add(self, batch: BatchCounts) -> None:
        assert self.tally is not None and self.counts is not None, "counted after finish"
        assert self.accents is not None
        self.accents.add(batch.accents)
        self.tally.suggest.merge(batch.suggest)
        if self.tally.keys() > self.fold_keys:
            started = time.perf_counter()
            self.counts = self.counts.add(self.tally)
            self.tally = CorpusTally.of(())
            self.folds += 1
            self.fold_seconds += time.perf_counter() - started

    def finish(self) -> None:
        """Save the counts, then let them go: the run still publishes its generation."""
        assert self.tally is not None and self.counts is not None, "finished twice"
        assert self.accents is not None
        try:
            counts = self.counts
            if self.update.full or self.accents.folds:
                counts = CorpusCounts(self.accents.counts(), counts.suggest)
            else:  # a few documents: added to the base's counts with the removed ones'
                self.tally.accents.merge(self.accents.tally())
            self.update.save_counts(counts, self.tally, self.hashes)
        except Exception:  # a hint, never a reason to fail a reindex: publishing counts again
            log.exception("could not save the accent vocabulary of the new documents")
        finally:
            self.counts = self.tally = self.accents = None
            self.hashes = []
        if self.folds:
            log.info(
                "the suggestions' tally was folded into arrays %d times (%.1f s)",
                self.folds,
                self.fold_seconds,
            )


def _vocabulary(index_dir: Path, ix, full: bool, held: Collection[str] = ()) -> VocabularyCount:
    """The counting this run needs (under the writer's lock, before the commit); the new
    generation's shared files are marked pending until ``_publish`` has written them.
    ``held``: the content hashes of the base generation's live documents, when known."""
    limit = BuildLimits.from_env().tally_keys
    return VocabularyCount(Update.begin(index_dir, ix, full), limit, held)


def _publish(index_dir: Path, vocabulary: VocabularyCount | None) -> None:
    """Write the committed generation's shared files (``store.generation.publish``): after the
    commit of a run with changes, or for an index that has none yet."""
    publish(index_dir, vocabulary.update if vocabulary is not None else None, length_norms)


def _share_frequent(index_dir: Path) -> None:
    """Write the committed generation's frequent terms' shared posting arrays
    (``Snapshot.share_frequent``) and its base's terms file (``Snapshot.write_base_terms``), so
    that the workers switching to it map them instead of building them while they serve.  The
    commit stands whatever happens here: a failure is logged, and the workers build the arrays
    as they would have.

    Both are single-threaded Python after the build's pool has gone, so a helper process
    (``terms_helper``) writes chunks of the terms file meanwhile: the two cores share what one
    did alone (both steps at 150k articles 45.5 -> 24.6 s, at a million 144.9 -> 76.8 s)."""
    started = time.perf_counter()
    helper: subprocess.Popen | None = None
    writer = None
    try:
        snap = Snapshot(_open_plain(index_dir))
        try:
            writer = snap.base_terms_writer()
            if writer is not None and writer.chunks > 1:
                helper = _start_terms_helper(index_dir, writer.temporary)
            written = snap.share_frequent()
            if written:
                log.info(
                    "shared %d frequent terms' arrays in %.1f s",
                    written,
                    time.perf_counter() - started,
                )
            if writer is not None and snap.write_base_terms(
                writer, before_finish=lambda: _stop_terms_helper(helper)
            ):
                log.info(
                    "shared arrays and the base's terms file written in %.1f s "
                    "(%d of its %d chunks by a helper process)",
                    time.perf_counter() - started,
                    writer.chunks - writer.own,
                    writer.chunks,
                )
        finally:
            if writer is not None:
                writer.cancel()  # what is left of it on a failure (none once in place)
            if helper is not None and helper.poll() is None:  # a failure: no use waiting
                helper.kill()
                helper.wait()
            snap.close()
    except Exception:  # noqa: BLE001 - serving does not depend on it
        log.warning("could not share the frequent terms of %s", index_dir, exc_info=True)


# A helper still writing its last chunk once the indexer has written all the others is given
# this long (a chunk takes about a second), then killed: the indexer writes that chunk itself.
HELPER_GRACE_S = 60.0


def _start_terms_helper(index_dir: Path, temporary: Path) -> subprocess.Popen | None:
    """Start ``terms_helper`` in a new interpreter (not a fork: this process may hold gigabytes
    after a build, which a forked child's resident size would count again); ``None`` when it
    cannot start (the indexer then writes every chunk)."""
    package_root = str(Path(__file__).resolve().parent.parent)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    code = "import sys; from search.indexer import terms_helper; sys.exit(terms_helper(sys.argv))"
    argv = [sys.executable, "-c", code, str(index_dir), str(temporary), str(os.getpid())]
    try:
        return subprocess.Popen(
            argv,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            close_fds=True,
        )
    except (OSError, ValueError, TypeError) as error:  # no interpreter to start
        log.info("no helper for the base's terms file (%s): written by this process", error)
        return None


def _stop_terms_helper(helper: subprocess.Popen | None) -> None:
    """Wait for the helper to finish its chunk (``HELPER_GRACE_S`` at most), else kill it; a
    helper that failed is logged (the indexer writes what it left)."""
    if helper is None or helper.returncode is not None:
        return
    try:
        status = helper.wait(timeout=HELPER_GRACE_S)
    except subprocess.TimeoutExpired:
        log.warning("the terms file's helper took over %.0f s on a chunk: killed", HELPER_GRACE_S)
        helper.kill()
        helper.wait()
        return
    if status:
        log.warning(
            "the terms file's helper process exited with status %d: this process wrote its part",
            status,
        )


def terms_helper(argv: list[str]) -> int:
    """The helper process of ``_share_frequent``: ``argv`` is ``[_, index_dir, temporary,
    parent_pid]``.  It writes chunks of the terms file the indexer listed in ``temporary`` until
    none is left, and dies with the indexer (``PR_SET_PDEATHSIG``; it also stops at its next
    chunk once the indexer is gone).  Exit status 0 when it wrote what it could; 1 when it
    found another base than the indexer's; 2 when it failed (the indexer writes its part: its
    stderr is not the user's)."""
    index_dir, temporary, parent = Path(argv[1]), Path(argv[2]), int(argv[3])
    die_with(parent)
    try:
        snap = Snapshot(_open_plain(index_dir))
        try:
            done = snap.help_write_base_terms(temporary, lambda: os.getppid() == parent)
        finally:
            snap.close()
    except Exception:  # noqa: BLE001 - reported by its exit status
        return 2
    return 1 if done < 0 else 0


def reindex(
    index_dir: str | Path,
    sources: Iterable[str | Path] = (),
    *,
    full: bool = False,
    forget: Iterable[str | Path] = (),
    progress: Progress | None = None,
    workers: int | None = None,
    lock_timeout: float = 10.0,
    follow_symlinks: bool = False,
) -> Summary:
    """Bring the index up to date with its sources; see the module docstring for the rules."""
    started = time.perf_counter()
    index_dir = Path(index_dir)
    summary = Summary()
    named = _resolve(sources)
    forgotten = {str(Path(p).expanduser().resolve()) for p in forget}
    remembered = load_sources(index_dir) if index_exists(index_dir) else []
    unknown = forgotten - set(remembered)
    if unknown:
        raise SourceMissing(f"not a remembered source: {sorted(unknown)[0]}")
    kept = [s for s in remembered if s not in forgotten]
    all_sources = kept + [s for s in named if s not in kept]
    # Every run reads every remembered source, in their order, so the copy of an id held by two
    # sources is always the one of the source listed later, whichever source changed, and a copy
    # shadowed by a document that goes away comes back.  Only new and changed documents are
    # analysed.
    process = all_sources
    workers = workers if workers is not None else max(1, os.cpu_count() or 1)

    ix = open_or_create(index_dir, full=full)
    try:
        writer = ix.writer(timeout=lock_timeout, limitmb=256, codec=codec())
    except LockError as exc:
        raise IndexBusy(
            f"another reindex is writing to {index_dir}; try again when it has finished"
        ) from exc
    clean_stale_files(writer, index_dir)
    segments: list = []
    base_generation = writer.generation - 1
    try:
        existing = _existing_of(index_dir, writer, base_generation)
        known = None if full else SourceFiles.load(index_dir, base_generation)
        fds = _lock_fds(ix) if full else ()
        scan = _scan(process, summary, follow_symlinks, existing, full, known, workers, fds)
        copies, incomplete = scan.copies, scan.incomplete
        if full and incomplete:
            raise SourceUnreadable(
                f"cannot rebuild: {summary.unreadable[0]}; the index is unchanged"
            )
        to_add: list[str] = []
        replaced: list[str] = []
        if full:
            to_add = list(copies)
        else:
            scope = set(process) | forgotten
            # Deleting by docnum (read with the writer's own generation, under the lock) avoids
            # ``delete_by_term``, which opens a fresh searcher per call: 35 ms a document.
            codes = [existing.code(o) for o in scope - incomplete]
            in_scope = np.isin(existing.codes, [c for c in codes if c is not None])
            for row in np.flatnonzero(in_scope & ~scan.covered()).tolist():
                writer.delete_document(existing.docnum_at(row))
                summary.removed += 1
            rank = {source: i for i, source in enumerate(process)}
            # A copy taken from the index for an unchanged file is the index's: unchanged.
            summary.unchanged += scan.unchanged()
            for doc_id in copies:
                content_hash, origin, _file = copies[doc_id]
                row = scan.read_rows.get(doc_id)
                old = None if row is None else existing.entry(row)
                if old is None:
                    to_add.append(doc_id)
                elif old[1] == content_hash and old[2] == origin:
                    summary.unchanged += 1
                elif _shadowed(origin, old[2], incomplete, rank):
                    summary.clashes += 1
                else:
                    if old[2] != origin and old[2] not in process:
                        summary.clashes += 1
                    replaced.append(doc_id)
                    to_add.append(doc_id)
            for doc_id in replaced:
                writer.delete_document(existing.docnum_at(scan.read_rows[doc_id]))
        changed = len(to_add) + summary.removed
        generation = writer.generation
        held = () if full else existing.hashes()
        vocabulary = _vocabulary(index_dir, ix, full, held) if changed else None
        docs = _to_write(scan, to_add, process, follow_symlinks)
        segments = _write_documents(ix, docs, len(to_add), workers, progress, vocabulary)
        if full:
            _count_full(summary, existing, to_add, copies)
            _commit(writer, segments, CLEAR)
        elif to_add or summary.removed:
            summary.updated = len(replaced)
            summary.added = len(to_add) - len(replaced)
            _commit(writer, segments)
        else:
            _discard(writer, index_dir)
            generation = base_generation
    except BaseException:
        _discard(writer, index_dir, segments)
        raise
    _publish(index_dir, vocabulary)
    if vocabulary is not None:
        _share_frequent(index_dir)
    _atomic_write_json(index_dir / SOURCES_FILE, {"sources": all_sources})
    _record_files(index_dir, generation, scan, incomplete)
    with _open_plain(index_dir).searcher() as searcher:
        summary.documents = searcher.doc_count()
    summary.seconds = time.perf_counter() - started
    return summary


def _count_full(summary: Summary, existing: Existing, to_add: list[str], copies: dict) -> None:
    """A full run's summary: what it adds, changes and drops against the index it replaces."""
    rows = existing.rows(StringArray.from_strings(to_add))
    held = rows >= 0
    new_hashes = [copies[i][0] for i, h in zip(to_add, held.tolist(), strict=True) if h]
    same = same_strings(existing.hashes_at(rows[held]), StringArray.from_strings(new_hashes))
    summary.added = int(np.count_nonzero(~held))
    summary.updated = int(np.count_nonzero(~same))
    summary.unchanged = len(to_add) - summary.added - summary.updated
    summary.removed = len(existing) - int(np.count_nonzero(held))


def _discard(writer, index_dir: Path, segments: Iterable = ()) -> None:
    """Cancel a writer and remove the files of the segment it had started and of the new
    ``segments`` it was to commit.

    Cancelling can fail again for the reason the run failed (ENOSPC while Whoosh closes the new
    segment's column files): the segment's files, Whoosh's temp directory and the lock are then
    released anyway, and the caller re-raises the original error
    (tests/test_reliability.py::test_disk_full_during_reindex).
    """
    segment_id = writer.newsegment.segment_id()
    try:
        if not writer.is_closed:
            writer.cancel()
    except Exception as exc:  # noqa: BLE001 - the caller reports the error that got us here
        log.debug("cancelling the index writer failed too: %s", exc)
        # Close what Whoosh left open (the postings files, the columns' temp file).
        for stream in (writer.fieldwriter, getattr(writer.perdocwriter, "_cols", None)):
            stream = getattr(stream, "_temp", stream)
            if stream is not None and not getattr(stream, "is_closed", False):
                with contextlib.suppress(Exception):  # best effort on the way out
                    stream.close()
        shutil.rmtree(index_dir / f"{writer.indexname}.tmp", ignore_errors=True)
        if writer.writelock is not None and writer.writelock.fd is not None:
            writer.writelock.release()
        writer.is_closed = True
    for path in index_dir.glob(f"{segment_id}.*"):
        path.unlink(missing_ok=True)
    _remove_segments(index_dir, segments)


def _values(doc: Document, content_hash: str | None = None) -> dict[str, object]:
    """The stored and column values of ``doc`` (its text fields' terms come from ``_analyze``);
    ``content_hash``: its ``content_hash`` when already computed."""
    values: dict[str, object] = {
        "id": doc.id,
        "url": doc.url,
        "date": doc.date,
        "source": doc.source,
        "category": doc.category,
        "origin": doc.origin,
        "hash": content_hash or doc.content_hash,
        "story": doc.story_key,
    }
    for name in TEXT_FIELDS:
        values[f"_stored_{name}"] = getattr(doc, name)
    return values


def build_index(docs: Iterable[Document], index_dir: str | Path, workers: int | None = None) -> int:
    """Index ``docs`` into a fresh index at ``index_dir`` (tests and benchmarks); returns the count.

    Unlike ``reindex`` it remembers no sources: the documents come from memory.
    """
    index_dir = Path(index_dir)
    if index_dir.exists():
        shutil.rmtree(index_dir)
    ix = open_or_create(index_dir, full=True)
    docs = list(docs)
    writer = ix.writer(limitmb=256, codec=codec())
    try:
        workers = workers or max(1, os.cpu_count() or 1)
        vocabulary = _vocabulary(index_dir, ix, True)
        hashed = [(doc, doc.content_hash) for doc in docs]
        segments = _write_documents(ix, hashed, len(docs), workers, None, vocabulary)
        _commit(writer, segments, CLEAR)
    except BaseException:
        writer.cancel()
        raise
    _publish(index_dir, vocabulary)
    _share_frequent(index_dir)
    return len(docs)
