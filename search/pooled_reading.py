"""A full build's first reading of its sources, shared with the analysis pool's processes.

A full build reads every document twice: first to learn which copy of each id wins and its
content hash (``indexer._scan``), then again as the documents are analysed.  The first reading
was one core's work while the other idled: 88 s of a million-article build (stop 56 of
``docs/scaling-log.md``).  Here the files go to pool processes, a few at a time, in order; each
sends back what the first reading keeps of its documents (``ReadCopy``: id, origin, content
hash) and every record that is not a document, and the indexer takes them in the order one reader
meets them, so the run is the same.  Each file is fingerprinted (``visit``) before a process
reads it, as one reader does.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future
from pathlib import Path
from typing import NamedTuple

from .documents import (
    Document,
    Record,
    Skipped,
    Unreadable,
    has_lone_surrogate,
    read_file,
    source_files,
)

# A full build reads its sources in the pool when they hold at least this many bytes: below,
# the new documents fit ``indexer.HELD_DOCS`` (kept by the first reading, never read again)
# and starting the processes costs more than it saves.
POOLED_BYTES = 64 << 20
# Files sent to a process at once (fewer when they pass ``TASK_BYTES``): an archive of one
# small file per article must not cost a round trip per file.
TASK_FILES = 256
TASK_BYTES = 8 << 20
# Tasks sent ahead of the one being taken, per process (what waits in memory is their copies).
AHEAD = 2


class ReadCopy(NamedTuple):
    """What the first reading keeps of a document (``indexer._scan``'s ``take`` reads these
    three attributes of a ``Document``)."""

    id: str
    origin: str
    content_hash: str


Entry = Path | Skipped | Unreadable
Listed = list[tuple[str, Path, str, list[Entry]]]  # source, its root, its origin, its entries


def list_sources(sources: list[str], follow_symlinks: bool) -> Listed:
    """Every source's files and what is not one (``documents.read_source``'s order and records:
    a source not found, or that cannot be listed, is one ``Unreadable``)."""
    listed: Listed = []
    for source in sources:
        root = Path(source)
        origin = str(root.resolve())
        entries: list[Entry]
        if not root.exists():
            entries = [Unreadable(str(root), "source not found")]
        else:
            try:
                entries = list(source_files(root, follow_symlinks))
            except OSError as exc:
                entries = [Unreadable(str(root), f"cannot list: {exc.strerror or exc}")]
        listed.append((source, root, origin, entries))
    return listed


def size_of(listed: Listed) -> int:
    """The bytes of the listed files (those that cannot be read count 0)."""
    return sum(_bytes(e) for *_, entries in listed for e in entries if isinstance(e, Path))


def _bytes(path: Path) -> int:
    try:
        return os.stat(path).st_size
    except OSError:  # read as it can be: the reading says what went wrong
        return 0


def read_files(root: str, paths: list[str], origin: str) -> list[list[Record | ReadCopy]]:
    """Runs in a pool process: each file's records, its documents as ``ReadCopy`` (a document whose
    text cannot be encoded stays whole: the indexer skips it with its reason)."""
    out = []
    for path in paths:
        records: list[Record | ReadCopy] = []
        for record in read_file(Path(root), Path(path), origin):
            if isinstance(record, Document) and not has_lone_surrogate(record):
                record = ReadCopy(record.id, record.origin, record.content_hash)
            records.append(record)
        out.append(records)
    return out


def read_in_pool(
    listed: Listed, visit: Callable[[str, Path], bool], pool: Executor, processes: int
) -> Iterator[tuple[str, str | None, list[Record | ReadCopy]]]:
    """The records of ``listed`` in order, as (source, the file they come from or ``None``,
    records); the files ``visit`` lets through are read by ``pool``'s ``processes``."""
    window = AHEAD * processes
    pending: deque[tuple[str, list[str], Future | list[Record]]] = deque()
    tasks = _tasks(listed, visit, pool)
    try:
        while True:
            while sum(1 for *_, f in pending if isinstance(f, Future)) < window:
                task = next(tasks, None)
                if task is None:
                    break
                pending.append(task)
            if not pending:
                return
            source, paths, task_or_records = pending.popleft()
            if not isinstance(task_or_records, Future):
                yield source, None, task_or_records
                continue
            for path, records in zip(paths, task_or_records.result(), strict=True):
                yield source, path, records
    finally:
        for *_, future in pending:
            if isinstance(future, Future):
                future.cancel()


def _tasks(
    listed: Listed, visit: Callable[[str, Path], bool], pool: Executor
) -> Iterator[tuple[str, list[str], Future | list[Record]]]:
    """The pool's tasks (consecutive files of one source) and, between them, the records that
    are not files, in order; each file is visited as its task is sent."""
    for source, root, origin, entries in listed:
        paths: list[str] = []
        size = 0
        for entry in [*entries, None]:
            if isinstance(entry, Path):
                if not visit(source, entry):
                    continue
                paths.append(str(entry))
                size += _bytes(entry)
                if len(paths) < TASK_FILES and size < TASK_BYTES:
                    continue
            if paths:
                yield source, paths, pool.submit(read_files, str(root), paths, origin)
                paths, size = [], 0
            if entry is not None and not isinstance(entry, Path):
                yield source, [], [entry]
