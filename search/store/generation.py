"""A generation's files: written once by the indexer after its commit, mapped by every worker.

Layout, in the index directory::

    vnsearch/gen-000007/          one directory per Whoosh generation (its number, zero-padded)
        manifest.json             format version, generation, documents
        segments.json             the generation's Whoosh segments and their document counts
        live.npy lengths.npy norms.npy shared_story.npy facet_pairs.npy
        id.* hash.* {date,source,story,origin,year}.{codes.npy,labels.*}
        vocabulary-*              the accent model workers read (``VocabularyArrays``)
        typos-*                   the typo table built from it (``TypoArrays``)
        suggest-{keys,texts,weights,title_keys,title_texts}.*   the suggestion table
        accent-* suggest-{phrases,titles}.*   exact counts, read by the next reindex only
        tail-*                    the tail's terms with their BM25F arrays (``tail_terms``)
    vnsearch/postings-base-<key>/    posting arrays the workers share (``shared_postings``)
    vnsearch/pending-000008       a reindex is writing generation 8's files (holds its pid)

A directory is written under a temporary name and renamed into place, so it is complete or absent.
Readers of an old generation keep their maps when it is removed (the files live on until
unmapped); the indexer keeps the previous generation's directory too, for a worker that is opening
it at that moment, and removes older ones.

Between a commit and its files there is a moment when Whoosh's new generation exists and its
directory does not yet: a worker that already serves a generation keeps serving it
(``GenerationPending``), a fresh one waits for the files (at most ``PENDING_WAIT``).  A generation
that never gets its files (an index written before them, or a reindex killed after its commit) is
built by the worker itself, in its own memory, and said at WARNING.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import pickle
import shutil
import tempfile
import time
import weakref
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..children import fork_work, joined, stop
from ..ranking_params import DEFAULT_PARAMS
from ..typos import typo_arrays
from .accent_files import VocabularyArrays
from .columns import Columns, build_columns
from .corpus import CorpusCounts, CorpusTally, TextFields
from .counts import CountsMismatch
from .shared_postings import base_key, base_of, base_rows, parameters_key
from .shared_postings import generation_of as shared_generation
from .strings import StringArray, encode, fixed_width, linking_from
from .suggest_files import SuggestArrays
from .tail_terms import PREFIX as TAIL_PREFIX
from .tail_terms import write_tail_terms
from .typo_files import TypoArrays, TypoFilesDamaged

log = logging.getLogger(__name__)

FORMAT = "vnsearch-generation"
FORMAT_VERSION = 1
DIRECTORY = "vnsearch"
MANIFEST = "manifest.json"
LEGACY_ACCENTS = "accents.json.gz"  # the vocabulary file of older versions, beside Whoosh's
TALLY = "tally.pickle"  # an incremental run's counts of its new documents (in ``Update.work``)
RUN_COUNTS = "run"  # ... the part of them it folded into arrays as it went (a directory)
# Seconds a worker with nothing to serve waits for the files of a generation just committed.
PENDING_WAIT = 10.0
PENDING_POLL = 0.05
PENDING_MAX_AGE = 3600.0  # a marker older than this is stale whatever its pid says
STORED_TEXTS = ("title", "lead", "body")
NormsOf = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


class GenerationPending(OSError):
    """The generation's files are being written: serve the previous generation meanwhile."""


def store_dir(index_dir: Path) -> Path:
    return Path(index_dir) / DIRECTORY


def generation_dir(index_dir: Path, generation: int) -> Path:
    return store_dir(index_dir) / f"gen-{generation:06d}"


def pending_path(index_dir: Path, generation: int) -> Path:
    return store_dir(index_dir) / f"pending-{generation:06d}"


# -- reading ----------------------------------------------------------------------------------


@dataclass
class GenerationFiles:
    """What a worker reads of one generation besides postings.  ``vocabulary``, ``suggest``
    and ``typos`` are ``None`` when the generation has none (then the caller falls back: see
    ``Snapshot``); ``shared`` says whether the arrays are mapped files or this process's own."""

    generation: int
    columns: Columns
    vocabulary: VocabularyArrays | None
    suggest: SuggestArrays | None
    shared: bool
    typos: TypoArrays | None = None


def read_manifest(directory: Path) -> dict | None:
    try:
        manifest = json.loads((directory / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if manifest.get("format") != FORMAT or manifest.get("version") != FORMAT_VERSION:
        return None
    return manifest


def load_generation(index_dir: Path, generation: int) -> GenerationFiles | None:
    """The generation's files, memory-mapped; ``None`` when it has none (or of another format)."""
    directory = generation_dir(index_dir, generation)
    manifest = read_manifest(directory)
    if manifest is None or manifest.get("generation") != generation:
        return None
    try:
        files = GenerationFiles(
            generation,
            Columns.load(directory),
            VocabularyArrays.load(directory),
            SuggestArrays.load(directory),
            shared=True,
        )
    except (OSError, ValueError) as exc:
        log.warning(
            "the files of generation %d in %s are unreadable: %s", generation, index_dir, exc
        )
        return None
    try:  # none in a generation written before the table was: each worker builds its own
        files.typos = TypoArrays.load(directory)
    except TypoFilesDamaged as exc:
        log.warning(
            "the typo table of generation %d in %s is unreadable (%s): built again where needed",
            generation,
            index_dir,
            exc,
        )
    return files


def open_generation(
    index_dir: Path, generation: int, reader, norms_of: NormsOf, *, serving: bool
) -> GenerationFiles:
    """The files of the generation ``reader`` reads: mapped when the indexer wrote them.

    When a reindex is still writing them: raise ``GenerationPending`` if this process is
    ``serving`` another generation of the index, else wait up to ``PENDING_WAIT``.  When they
    are missing for good, build the columns from ``reader`` in this process (logged).
    """
    index_dir = Path(index_dir)
    found = load_generation(index_dir, generation)
    if found is None and _pending(index_dir, generation):
        if serving:
            raise GenerationPending(f"generation {generation}'s files are being written")
        deadline = time.monotonic() + PENDING_WAIT
        while found is None and time.monotonic() < deadline and _pending(index_dir, generation):
            time.sleep(PENDING_POLL)
            found = load_generation(index_dir, generation)
        found = found or load_generation(index_dir, generation)
    if found is not None:
        return found
    log.warning(
        "generation %d of %s has no shared files (an index written by an older vnsearch, or a "
        "reindex stopped after its commit): this process builds its own; the next reindex "
        "writes them",
        generation,
        index_dir,
    )
    return GenerationFiles(generation, build_columns(reader, norms_of), None, None, shared=False)


def _pending(index_dir: Path, generation: int) -> bool:
    """Whether a live reindex said it is writing this generation's files."""
    path = pending_path(index_dir, generation)
    try:
        pid = int((path.read_text(encoding="ascii").split() or ["0"])[0])
        age = time.time() - path.stat().st_mtime
    except (OSError, ValueError):
        return False
    return age < PENDING_MAX_AGE and _alive(pid)


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: it exists
        return True
    return True


# -- writing: the indexer ---------------------------------------------------------------------


@dataclass
class Update:
    """A reindex run's new generation, from before its commit until its files are written.

    ``begin`` (under the writer's lock, before the commit) marks the generation pending and
    keeps a reader of the base generation open: the documents the run deletes can be read after
    the commit has removed the base's files.  ``save_counts`` saves the counts of the new
    documents, tallied as the indexing pool analysed them, into ``work``.  ``publish`` (after
    the commit) adds them to the base generation's counts, subtracts the removed documents and
    writes the directory.
    """

    index_dir: Path
    base: int
    generation: int
    full: bool
    work: Path
    base_reader: object | None = field(default=None, repr=False)
    _release: Callable[[], None] | None = field(default=None, repr=False)

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["base_reader"] = state["_release"] = None  # they never leave this process
        return state

    @classmethod
    def begin(cls, index_dir: Path, ix, full: bool) -> Update:
        """``full``: the generation's counts start from nothing (a full run, or an empty base)."""
        index_dir = Path(index_dir)
        base = ix.latest_generation()
        full = full or ix.doc_count_all() == 0
        store_dir(index_dir).mkdir(exist_ok=True)
        update = cls(
            index_dir,
            base,
            base + 1,
            full,
            Path(tempfile.mkdtemp(dir=store_dir(index_dir), prefix=".work-", suffix=".tmp")),
        )
        marker = pending_path(index_dir, update.generation)
        _write_text(marker, f"{os.getpid()} {update.work.name}")
        if not full:
            update.base_reader = plain_storage(index_dir).open_index().searcher()
        # A run that fails before publishing still closes the reader and removes its work and
        # marker, when it is dropped.
        release = weakref.finalize(update, _release, update.base_reader, update.work, marker)
        update._release = release
        return update

    def base_counts_dir(self) -> Path | None:
        """The base generation's directory, when it holds its counts."""
        directory = generation_dir(self.index_dir, self.base)
        manifest = read_manifest(directory)
        return directory if manifest is not None and manifest.get("counts") else None

    def needs_count(self, held: Collection[str]) -> Callable[[list[str]], list[bool]]:
        """Whether each document of a batch of content hashes is to be counted: every one in a
        full run, the ones whose text the base generation does not hold (``held``: its live
        documents' hashes, which the indexer reads anyway) in an incremental run, none when the
        base has no counts to add them to (``publish`` then counts everything)."""
        if self.full:
            return lambda hashes: [True] * len(hashes)
        if self.base_counts_dir() is None:
            return lambda hashes: [False] * len(hashes)
        return lambda hashes: [h not in held for h in hashes]

    def save_counts(
        self, counts: CorpusCounts, tally: CorpusTally, hashes: Iterable[np.ndarray]
    ) -> None:
        """Save the run's counts of its new documents (``hashes``: ``S`` arrays of their content
        hashes, ``hash_array``) into ``work``: ``counts``, the
        tallies the run folded into arrays as it went, plus ``tally``, those it tallied since
        (``indexer.VocabularyCount``).  A full run's counts are the generation's (saved as
        arrays); an incremental run's are added to the base generation's by ``publish``: the
        folded ones saved as arrays (``RUN_COUNTS``, when there are any), the rest as a tally."""
        if self.full:
            counts.add(tally).save(self.work)
        elif self.base_counts_dir() is None:
            return
        else:
            if not counts.is_empty():
                (self.work / RUN_COUNTS).mkdir()
                counts.save(self.work / RUN_COUNTS)
            with open(self.work / TALLY, "wb") as fh:
                pickle.dump(tally, fh, protocol=pickle.HIGHEST_PROTOCOL)
        StringArray.from_bytes(sorted_hashes(hashes).tolist()).save(self.work, "counted")
        _write_text(self.work / "done", "1")

    def close(self) -> None:
        """Close the base reader, remove the work directory and this run's pending marker."""
        self.base_reader = None
        if self._release is not None:
            self._release()


def hash_array(hashes: list[str]) -> np.ndarray:
    """Content hashes as an ``S`` array: 32 bytes a hexadecimal digest instead of a Python
    string's ~90 (a full run notes every document's)."""
    return np.array([encode(h) for h in hashes], dtype=bytes) if hashes else np.zeros(0, "S1")


def sorted_hashes(parts: Iterable[np.ndarray]) -> np.ndarray:
    """The hashes of ``hash_array``s, sorted (as their strings: hexadecimal, so no NUL)."""
    parts = list(parts)
    return np.sort(np.concatenate(parts)) if parts else np.zeros(0, "S1")


def _release(reader, work: Path, marker: Path) -> None:
    if reader is not None:
        reader.close()
    shutil.rmtree(work, ignore_errors=True)
    with contextlib.suppress(OSError):
        if marker.read_text(encoding="ascii").split()[1:] == [work.name]:
            marker.unlink()


def publish(index_dir: Path, update: Update | None, norms_of: NormsOf) -> None:
    """Write the files of the generation ``update`` committed (``None``: the latest generation,
    if it has none yet), then remove older generations' files.  Never raises: the commit stands,
    and workers can do without the files (logged)."""
    from whoosh import index as whoosh_index

    index_dir = Path(index_dir)
    generation = update.generation if update else -1
    try:
        generation = generation if update else _latest(index_dir)
        if generation < 0 or load_generation(index_dir, generation) is not None:
            return
        with _reader_of(index_dir, generation) as reader:
            _write(index_dir, generation, reader, update, norms_of)
        _clean(index_dir, generation)
    except whoosh_index.EmptyIndexError:
        log.warning(
            "generation %s of %s is gone already: its files are not written", generation, index_dir
        )
    except Exception:
        log.exception("could not write the shared files of %s", index_dir)
    finally:
        if update is not None:
            update.close()


def _latest(index_dir: Path) -> int:
    from whoosh import index as whoosh_index

    if not whoosh_index.exists_in(str(index_dir)):
        return -1
    return whoosh_index.open_dir(str(index_dir)).latest_generation()


@contextlib.contextmanager
def _reader_of(index_dir: Path, generation: int) -> Iterator:
    """A Whoosh reader of exactly ``generation`` (not whatever is latest by now)."""
    reader = generation_reader(plain_storage(index_dir), "MAIN", generation)
    try:
        yield reader
    finally:
        reader.close()


def generation_reader(storage, indexname: str, generation: int):
    """A Whoosh reader of exactly ``generation`` of ``storage`` (not whatever is latest by
    now): Whoosh opens only the latest through its public API."""
    from whoosh.index import TOC, FileIndex

    toc = TOC.read(storage, indexname, gen=generation)
    return FileIndex._reader(storage, toc.schema, toc.segments, toc.generation)


def plain_storage(index_dir: Path):
    """Whoosh's storage without memory maps: Whoosh copies each mapped sub-file into a
    ``BytesIO`` (a second of copying at 47k articles); plain reads need no copy, and an open
    file stays readable after the commit that deletes it."""
    from whoosh.filedb.filestore import FileStorage

    return FileStorage(str(index_dir), supports_mmap=False)


def _write(index_dir: Path, generation: int, reader, update: Update | None, norms_of) -> None:
    base = load_generation(index_dir, update.base) if update and not update.full else None
    columns = build_columns(reader, norms_of, base.columns if base else None)
    counts = _counts(index_dir, generation, reader, columns, update, base)
    directory = store_dir(index_dir)
    directory.mkdir(exist_ok=True)
    temporary = Path(
        tempfile.mkdtemp(dir=directory, prefix=f".gen-{generation:06d}-", suffix=".tmp")
    )
    previous = generation_dir(index_dir, update.base) if update and update.base >= 0 else None
    helper: int | None = None
    try:
        with linking_from(previous):
            # An incremental run's suggestion table is derived and saved by a forked child while
            # this process derives the accent model and the typo table: single-threaded numpy
            # and Python, so the second core does the one half (at 300k articles the generation's
            # files took 1.5-2.0 s instead of 2.0-2.3; ``docs/scaling-log.md``, stop 50).  A full
            # build's second of it is not worth a second copy of its pages in the tree's RSS.
            if update is not None and not update.full:
                helper = fork_work(lambda: _save_suggest(counts, temporary))
                if helper is None:
                    log.info("the suggestion table is derived in this process (no fork here)")
            vocabulary = counts.derive_vocabulary()
            typos = typo_arrays(vocabulary, base.typos if base is not None else None)
            columns.save(temporary)
            counts.accents.save(temporary)
            vocabulary.save(temporary)
            typos.save(temporary)
            before = (previous, base.columns) if previous is not None and base else None
            _save_tail_terms(temporary, index_dir, reader, columns, before)
            if not joined(helper):
                if helper is not None:
                    log.warning("the suggestion table's process failed: writing it here")
                    # What it left may be links to the previous generation's files, which
                    # writing over would change under the workers that map them.
                    for path in temporary.glob("suggest-*"):
                        path.unlink()
                _save_suggest(counts, temporary)
            helper = None
        manifest = {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "generation": generation,
            "documents": int(columns.live.sum()),
            "counts": True,
        }
        (temporary / MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
        _sync_directory(temporary)
        os.rename(temporary, generation_dir(index_dir, generation))
        _fsync(directory)
    except BaseException:
        stop(helper)
        shutil.rmtree(temporary, ignore_errors=True)
        raise


def _save_tail_terms(
    directory: Path,
    index_dir: Path,
    reader,
    columns: Columns,
    previous: tuple[Path, Columns] | None,
) -> None:
    """The tail's terms (``tail_terms``), for the default scoring parameters the indexer's norms
    were written with, keeping what ``previous`` (the generation before: its directory and
    columns) holds of them; none where the generation has no tail.  Never raises: workers do
    without them (logged)."""
    bound = base_rows(columns.segments) if columns.segments else columns.size
    if bound >= columns.size:
        return
    params = DEFAULT_PARAMS
    key = parameters_key((params.k1, params.field_weights, params.field_b))
    leaves = reader.leaf_readers()
    try:
        if not write_tail_terms(
            directory, index_dir, leaves, columns, bound, params.k1, key, previous
        ):
            log.info("%s: a tail segment is read through Whoosh: no tail terms", directory)
    except Exception:  # noqa: BLE001 - the files are an optimisation: never fail the run
        log.exception("could not write the tail terms of %s", directory)
        for path in directory.glob(f"{TAIL_PREFIX}*"):
            path.unlink()


def _save_suggest(counts: CorpusCounts, directory: Path) -> None:
    """The suggestion counts and table, saved into ``directory`` and flushed."""
    counts.suggest.save(directory)
    counts.derive_suggest().save(directory)
    for path in directory.glob("suggest-*"):
        _fsync(path)


def _counts(
    index_dir: Path,
    generation: int,
    reader,
    columns: Columns,
    update: Update | None,
    base: GenerationFiles | None,
) -> CorpusCounts:
    """The generation's exact counts: a full run's, or the base generation's plus the run's new
    documents minus the removed ones; counted from every stored text when that is not possible
    (logged)."""
    if not columns.live.any():  # nothing to count (an index still empty)
        return CorpusCounts.empty()
    done = update is not None and (update.work / "done").exists()
    if update is None or not done or (not update.full and base is None):
        return _recount(index_dir, generation, reader, columns, "no counts to update")
    counted = StringArray.load(update.work, "counted")
    if update.full:
        if not _same_hashes(counted, columns.hashes.take(np.flatnonzero(columns.live))):
            return _recount(index_dir, generation, reader, columns, "the run counted others")
        return CorpusCounts.load(update.work)
    added, removed = _changes(base.columns, columns)
    with open(update.work / TALLY, "rb") as fh:
        tally: CorpusTally = pickle.load(fh)
    folded = update.work / RUN_COUNTS
    run = CorpusCounts.load(folded) if folded.is_dir() else None
    if not _same_hashes(counted, columns.hashes.take(added)):
        log.warning("the run's new documents are not the generation's: counting them again")
        tally, run = CorpusTally.of(_stored(reader, added)), None
    if removed.size:
        tally.subtract(CorpusTally.of(_stored(update.base_reader.reader(), removed)))
    try:
        counts = CorpusCounts.load(update.base_counts_dir())
        # The folded counts first: base + run never goes below zero, so a mismatch is found
        # where it was before they were folded, when the removed documents are subtracted.
        return (counts.merge(run) if run is not None else counts).add(tally)
    except CountsMismatch:
        return _recount(index_dir, generation, reader, columns, "the base counts are not its own")


def _same_hashes(ours: StringArray, theirs: StringArray) -> bool:
    """Whether two lists of content hashes hold the same set (compared as sorted ``S`` arrays:
    hexadecimal digests, no NUL; sets of a million Python strings would take ~300 MB)."""
    if not (len(ours) and len(theirs)):
        return not len(ours) and not len(theirs)
    if int(ours.lengths().max()) != int(theirs.lengths().max()):
        return False
    return np.array_equal(np.unique(fixed_width(ours)), np.unique(fixed_width(theirs)))


def _recount(index_dir: Path, generation: int, reader, columns: Columns, why: str) -> CorpusCounts:
    """Every live document's counts, from the stored texts (what an update avoids)."""
    log.warning(
        "counting the accent vocabulary and suggestions of generation %s of %s from every "
        "stored text (%s)",
        generation,
        index_dir,
        why,
    )
    return CorpusCounts.of(_stored(reader, np.flatnonzero(columns.live)))


def _changes(base: Columns, new: Columns) -> tuple[np.ndarray, np.ndarray]:
    """Documents live in ``new`` and not in ``base`` (new docnums), and the reverse (base
    docnums).  A segment both hold is compared by position (only its deletions change); then a
    document removed and added with the same content hash (merged into another segment, or
    re-read from another source) changed nothing."""
    base_rows, new_rows = base.segment_rows(), new.segment_rows()
    removed = [
        np.flatnonzero(base.live[old] & ~new.live[rows]) + old.start
        for segment_id, (rows, count) in new_rows.items()
        for old, old_count in [base_rows.get(segment_id, (None, -1))]
        if old is not None and old_count == count
    ]
    removed.append(_live_in(base, [r for s, (r, _) in base_rows.items() if s not in new_rows]))
    gone = np.concatenate(removed)
    came = _live_in(new, [r for s, (r, n) in new_rows.items() if base_rows.get(s, (0, -1))[1] != n])
    gone_hashes, came_hashes = base.hashes.take(gone).tolist(), new.hashes.take(came).tolist()
    same = set(gone_hashes) & set(came_hashes)
    added = np.array([d for d, h in zip(came.tolist(), came_hashes, strict=True) if h not in same])
    removed_docs = [d for d, h in zip(gone.tolist(), gone_hashes, strict=True) if h not in same]
    return added.astype(np.int64), np.sort(np.array(removed_docs, dtype=np.int64))


def _live_in(columns: Columns, rows: list[slice]) -> np.ndarray:
    if not rows:
        return np.zeros(0, np.int64)
    return np.concatenate([np.flatnonzero(columns.live[r]) + r.start for r in rows])


def _stored(reader, docnums: np.ndarray) -> Iterator[TextFields]:
    """The texts of ``docnums`` from the stored fields."""
    for docnum in docnums.tolist():
        stored = reader.stored_fields(docnum)
        yield tuple(stored.get(name) or "" for name in STORED_TEXTS)  # type: ignore[misc]


def _clean(index_dir: Path, generation: int) -> None:
    """Remove the files of generations before the previous one, work left by killed runs, stale
    pending markers and the vocabulary file of older versions; the previous generation's files
    stay for a worker opening it now."""
    directory = store_dir(index_dir)
    older = sorted(n for p in directory.iterdir() if (n := _number(p.name, "gen-")) is not None)
    keep = {generation, *[n for n in older if n < generation][-1:]}
    bases = _bases(index_dir, keep)
    for path in directory.iterdir():
        if _stale(path, generation, keep, bases):
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
    (Path(index_dir) / LEGACY_ACCENTS).unlink(missing_ok=True)


def _number(name: str, prefix: str) -> int | None:
    rest = name[len(prefix) :] if name.startswith(prefix) else ""
    return int(rest) if rest.isdigit() else None


def _bases(index_dir: Path, keep: set[int]) -> set[str] | None:
    """The bases of the kept generations' shared posting arrays (``None``: one is unreadable,
    so no base directory is removed this time)."""
    bases = set()
    for number in keep:
        found = load_generation(index_dir, number)
        if found is None:
            return None
        bases.add(base_key(found.columns.segments, found.columns.averages))
    return bases


def _stale(path: Path, generation: int, keep: set[int], bases: set[str] | None) -> bool:
    name = path.name
    if (number := _number(name, "gen-")) is not None:
        return number not in keep
    if (base := base_of(name)) is not None:  # workers' shared posting arrays
        return bases is not None and base not in bases
    if (number := shared_generation(name)) is not None:  # ... of older versions
        return number not in keep
    if (number := _number(name, "pending-")) is not None:
        return number <= generation and not _pending(path.parent.parent, number)
    return name.startswith(".") and name.endswith(".tmp") and not _in_use(path, generation)


def _in_use(path: Path, generation: int) -> bool:
    """Whether a temporary directory may belong to another reindex still running (one writes
    while this one publishes): any other generation's pending marker is live."""
    return any(
        _pending(path.parent.parent, int(p.name[8:]))
        for p in path.parent.iterdir()
        if p.name.startswith("pending-") and p.name[8:].isdigit() and int(p.name[8:]) != generation
    )


def _write_text(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o644)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _sync_directory(directory: Path) -> None:
    """Flush the files and make them readable by the web server's user (``mkdtemp`` is 0700)."""
    os.chmod(directory, 0o755)
    for path in directory.iterdir():
        os.chmod(path, 0o644)
        _fsync(path)
    _fsync(directory)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
