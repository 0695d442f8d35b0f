"""What a reindex read from each source file, so that the next run need not read a file again
that has not changed since.

Reading the sources is most of an incremental run at archive sizes (parsing every JSON line and
hashing every article: about 100 s at a million articles, for a run that adds 200).  A file whose
size, modification and change times, inode and device are those recorded when a run read it,
and whose every document that run indexed, holds the documents the index holds from it: their
ids and content hashes are the index's own, so the next run takes them from the index and reads
only the files that changed (``indexer._scan``).

The record is tied to the generation the run left: a run uses it only when the index is still
at that generation (a run killed between its commit and this record, or an index written by
older code, makes the next run read every file).  A file is never skipped by ``--full``; it is
not recorded when it was modified in the last ``RACY_SECONDS`` before it was read (a change in
the same clock tick, keeping the size, could go unseen, as git's "racy" index entries), nor
when any of its documents was not indexed from it (an id repeated, or replaced by a later
source's: the copy the index holds is then not this file's, and may come back from it).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from .store.strings import StringArray

log = logging.getLogger(__name__)

Ids = list[str] | StringArray  # a file's ids: read, or as the record of the last run held them
PREFIX = "source-files-"
MANIFEST = "manifest.json"
VERSION = 1
# A file modified this little before it was read is read again next time.
RACY_SECONDS = 2.0


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """What changes whenever a file's content can have changed (``ctime`` too: setting the
    modification time back after writing changes it, and a new file has a new inode)."""

    size: int
    mtime_ns: int
    ctime_ns: int
    inode: int
    device: int

    @classmethod
    def of(cls, path: str | Path) -> Fingerprint | None:
        try:
            st = os.stat(path)
        except OSError:
            return None
        return cls(st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev)

    def racy(self, read_at_ns: int) -> bool:
        """Whether the file was modified too close to when it was read to be trusted."""
        newest = max(self.mtime_ns, self.ctime_ns)
        return newest >= read_at_ns - int(RACY_SECONDS * 1e9)


@dataclass(frozen=True)
class SourceFiles:
    """The files a run read (or found unchanged): for each, the ids the index holds from it
    (``won``) and the ids it holds whose copy another file gave (``lost``: a later source's, or
    a later copy in the same file)."""

    generation: int
    fingerprints: dict[str, Fingerprint]
    ranges: dict[str, tuple[int, int, int]]  # path -> (start, won, lost) in ``ids``
    ids: StringArray

    def won(self, path: str) -> list[str]:
        return self.won_array(path).tolist()

    def won_array(self, path: str) -> StringArray:
        """The ids ``path`` won, as a view of the record (no string decoded)."""
        start, won, _lost = self.ranges[path]
        return self.ids.rows(start, start + won)

    def lost(self, path: str) -> list[str]:
        start, won, lost = self.ranges[path]
        return self.ids.rows(start + won, start + won + lost).tolist()

    def unchanged(self, path: str, fingerprint: Fingerprint | None) -> bool:
        return fingerprint is not None and self.fingerprints.get(path) == fingerprint

    @classmethod
    def load(cls, index_dir: Path, generation: int) -> SourceFiles | None:
        """The record of ``generation``; ``None`` when there is none (or it is unreadable)."""
        directory = Path(index_dir) / f"{PREFIX}{generation:06d}"
        try:
            manifest = json.loads((directory / MANIFEST).read_text(encoding="utf-8"))
            if manifest.get("version") != VERSION or manifest.get("generation") != generation:
                return None
            ids = StringArray.load(directory, "ids")
            fingerprints, ranges = {}, {}
            for path, fields, start, won, lost in manifest["files"]:
                fingerprints[path] = Fingerprint(*fields)
                ranges[path] = (int(start), int(won), int(lost))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("the record of source files in %s is unreadable: %s", directory, exc)
            return None
        if sum(won + lost for _, won, lost in ranges.values()) != len(ids):
            log.warning("the record of source files in %s is inconsistent", directory)
            return None
        return cls(generation, fingerprints, ranges, ids)


def save(
    index_dir: Path,
    generation: int,
    fingerprints: dict[str, Fingerprint],
    ids: dict[str, tuple[Ids, Ids]],
) -> None:
    """Record the files of ``fingerprints`` with the ids each won and lost (``SourceFiles``),
    for ``generation``; remove the records of other generations.  Never raises: without a
    record the next run reads every file."""
    index_dir = Path(index_dir)
    paths = [p for p in fingerprints if p in ids]
    try:
        temporary = Path(tempfile.mkdtemp(dir=index_dir, prefix=f".{PREFIX}", suffix=".tmp"))
        try:
            files, start = [], 0
            for path in paths:
                fp = fingerprints[path]
                fields = [fp.size, fp.mtime_ns, fp.ctime_ns, fp.inode, fp.device]
                won, lost = ids[path]
                files.append([path, fields, start, len(won), len(lost)])
                start += len(won) + len(lost)
            parts = [_strings(part) for p in paths for part in ids[p]]
            StringArray.concat(parts).save(temporary, "ids")
            manifest = {"version": VERSION, "generation": generation, "files": files}
            (temporary / MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
            os.chmod(temporary, 0o755)
            target = index_dir / f"{PREFIX}{generation:06d}"
            if target.exists():
                shutil.rmtree(target)
            os.rename(temporary, target)
        except BaseException:
            shutil.rmtree(temporary, ignore_errors=True)
            raise
    except OSError as exc:
        log.warning("could not record the source files of %s: %s", index_dir, exc)
        return
    _remove_others(index_dir, generation)


def _strings(ids: Ids) -> StringArray:
    return ids if isinstance(ids, StringArray) else StringArray.from_strings(list(ids))


def _remove_others(index_dir: Path, generation: int) -> None:
    keep = f"{PREFIX}{generation:06d}"
    for path in index_dir.iterdir():
        name = path.name
        ours = name.startswith(PREFIX) or (name.startswith(f".{PREFIX}") and name.endswith(".tmp"))
        if ours and name != keep and path.is_dir():
            with contextlib.suppress(OSError):
                shutil.rmtree(path)


class Reading:
    """One run's reading of its source files, in order: the fingerprint each had when it was
    read, the ids each gave, and which were not read (unchanged since ``previous``)."""

    def __init__(self, previous: SourceFiles | None) -> None:
        self.previous = previous
        self.fingerprints: dict[str, Fingerprint] = {}
        self.order: dict[str, int] = {}
        self.read_ids: dict[str, list[str]] = {}
        self.unread: set[str] = set()
        # The ids the files not read won and lost, as ``previous`` recorded them.
        self.recorded: dict[str, tuple[Ids, list[str]]] = {}
        self.current = ""

    def start(self, path: str) -> Fingerprint | None:
        """A file about to be read (or skipped): its fingerprint now."""
        self.current = path
        self.order[path] = len(self.order)
        return Fingerprint.of(path)

    def read(self, path: str, fingerprint: Fingerprint | None) -> None:
        self.fingerprints.pop(path, None)
        if fingerprint is not None and not fingerprint.racy(time.time_ns()):
            self.fingerprints[path] = fingerprint
        self.read_ids[path] = []
        self.unread.discard(path)
        self.recorded.pop(path, None)

    def skip(self, path: str, fingerprint: Fingerprint, won: Ids, lost: list[str]) -> None:
        self.fingerprints[path] = fingerprint
        self.recorded[path] = (won, lost)
        self.unread.add(path)

    def count(self, doc_id: str) -> None:
        """One more document of the current file."""
        self.read_ids[self.current].append(doc_id)

    def record(
        self,
        index_dir: Path,
        generation: int,
        won: dict[str, Ids],
        spoilt: set[str],
        overtaken: set[str] = frozenset(),  # type: ignore[assignment]
    ) -> None:
        """Save each file's fingerprint with the ids it gave the index (``won``) and the others
        it holds; not the files of a source in ``spoilt`` (not read whole).  A file not read
        keeps its record unless a later file took some of its ids (``overtaken``)."""
        ids = {}
        for path in self.fingerprints:
            if any(path == s or path.startswith(s.rstrip(os.sep) + os.sep) for s in spoilt):
                continue
            recorded = self.recorded.get(path)
            if recorded is not None and path not in overtaken:
                ids[path] = recorded
                continue
            kept = won.get(path, [])
            held = set(kept)
            gave = self.read_ids.get(path, []) if recorded is None else [*recorded[0], *recorded[1]]
            lost = [i for i in dict.fromkeys(gave) if i not in held]
            ids[path] = (kept, lost)
        save(index_dir, generation, {p: self.fingerprints[p] for p in ids}, ids)
