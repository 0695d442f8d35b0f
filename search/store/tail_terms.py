"""The tail's terms with their BM25F arrays: written with each generation, mapped by every worker.

A generation's base (``shared_postings.base_rows``) has its terms in files every worker maps
(``base_terms``, ``shared_postings``); its tail, the small segments incremental runs add, was
read by each worker itself: a term read for the first time was looked up in each tail segment
that might hold it (``tail_keys``), once per field, its lists unpickled, weighed with the norms
and merged, and the tail's deleted documents dropped: 90-150 us a term with a few tail segments,
against 14-20 on a fresh build, in every worker, and the arrays were each worker's own.  So the
indexer writes the tail's terms with each generation, in its directory::

    tail-meta.json              the tail's first docnum (``bound``), the generation's documents,
                                the scoring parameters' key, the average lengths, its segments
    tail-names.{blob,offsets,prefix}.npy   every term of the tail's text fields (both views),
                                sorted (UTF-8 bytes)
    tail-starts.npy             int64, one more than the terms: term i's arrays are from
                                starts[i] to starts[i + 1]
    tail-docs.npy               int32, each term's live documents, numbered from ``bound``
    tail-weights.npy            float32, their BM25F weights, bit for bit as
                                ``Snapshot._load`` gives them

A term of the tail is then one binary search and two slices of mapped arrays.  An incremental run
does not read the whole tail again: every tail document the previous generation's file holds
with the same id and content hash keeps its arrays, renumbered (a merge in the tail moves
documents), and only the segments holding other live documents are read (the run's own,
mostly; ``_kept``).  Where the base, the scoring parameters or the averages changed, every tail
segment is read again.  A worker whose generation has no such files, or files that do not read
as written or were written for other parameters, looks its terms up in the tail segments as
before (logged once).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..schema import TEXT_FIELDS, extra_field
from .columns import Columns
from .segment_merge import Unmergeable, segment_postings
from .strings import StringArray, load_array, save_array

log = logging.getLogger(__name__)

PREFIX = "tail-"
META = f"{PREFIX}meta.json"
FORMAT = "vnsearch-tail-terms"
VERSION = 1
# Every field a term of the tail may be in, and the text field whose norms weigh it.
VIEWS = (*TEXT_FIELDS, *(extra_field(f) for f in TEXT_FIELDS))
_NORM_OF = {view: position % len(TEXT_FIELDS) for position, view in enumerate(VIEWS)}
# Directories whose missing or damaged files were logged (once each).
_LOGGED: set[Path] = set()


@dataclass(frozen=True, slots=True)
class Table:
    """Terms (sorted) with their documents (numbered from the tail's first docnum) and weights."""

    names: StringArray
    starts: np.ndarray
    docs: np.ndarray
    weights: np.ndarray

    @classmethod
    def empty(cls) -> Table:
        return cls(
            StringArray.empty(),
            np.zeros(1, np.int64),
            np.zeros(0, np.int32),
            np.zeros(0, np.float32),
        )


class TailTerms:
    """A generation's tail terms, mapped (``open``)."""

    __slots__ = ("table", "span")

    def __init__(self, table: Table, span: int) -> None:
        self.table, self.span = table, span

    @classmethod
    def open(cls, directory: Path, bound: int, size: int, key: str) -> TailTerms | None:
        """The tail terms of the generation in ``directory`` when they were written for a tail
        from ``bound`` to ``size`` and the parameters ``key``; ``None`` otherwise (logged)."""
        meta = read_meta(directory)
        why, level = None, logging.INFO
        if meta is None:
            why = "no tail terms file"
        elif (meta.get("bound"), meta.get("size"), meta.get("key")) != (bound, size, key):
            why = "its tail terms are of another tail or other scoring parameters"
        else:
            try:
                table = _load_table(directory)
                why = _problem(table, size - bound)
            except (OSError, ValueError) as exc:
                why = str(exc)
            level = logging.WARNING  # written, but not readable as written
        if why is not None:
            if directory not in _LOGGED:
                _LOGGED.add(directory)
                log.log(
                    level, "%s: %s: the tail's terms are looked up in its segments", directory, why
                )
            return None
        return cls(table, size - bound)

    def arrays(self, term: str) -> tuple[np.ndarray, np.ndarray] | None:
        """The term's documents (from the tail's first docnum) and weights; ``None``: the tail
        holds it in no live document."""
        table = self.table
        at = table.names.find(term)
        if at < 0:
            return None
        start, end = int(table.starts[at]), int(table.starts[at + 1])
        return table.docs[start:end], table.weights[start:end]


def read_meta(directory: Path) -> dict | None:
    try:
        meta = json.loads((directory / META).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(meta, dict) or (meta.get("format"), meta.get("version")) != (FORMAT, VERSION):
        return None
    return meta


def _load_table(directory: Path) -> Table:
    return Table(
        StringArray.load(directory, f"{PREFIX}names"),
        load_array(directory / f"{PREFIX}starts.npy"),
        load_array(directory / f"{PREFIX}docs.npy"),
        load_array(directory / f"{PREFIX}weights.npy"),
    )


def _problem(table: Table, span: int) -> str | None:
    """What keeps ``table`` from being read as the writer left it (``None``: nothing)."""
    names, starts, docs, weights = table.names, table.starts, table.docs, table.weights
    count = len(names)
    layout = names.layout_problem()
    if layout is not None:
        return f"names' {layout}"
    if starts.dtype != np.int64 or docs.dtype != np.int32 or weights.dtype != np.float32:
        return "types"
    if starts.shape != (count + 1,) or docs.shape != weights.shape or docs.ndim != 1:
        return "lengths"
    if starts[0] != 0 or starts[-1] != docs.size or np.any(starts[1:] <= starts[:-1]):
        return "starts"
    if docs.size and (docs.min() < 0 or docs.max() >= span):
        return "docnums past the tail"
    # Each term's documents ascend: a fall is allowed only where a term starts.
    falls = np.flatnonzero(docs[1:] <= docs[:-1]) + 1
    if falls.size and not np.isin(falls, starts[1:-1]).all():
        return "docnums out of order"
    prefixes = names.prefixes()
    if count > 1 and np.any(prefixes[1:] < prefixes[:-1]):
        return "names out of order"
    return None


def write_tail_terms(
    directory: Path,
    index_dir: Path,
    leaves: Sequence[tuple[object, int]],
    columns: Columns,
    bound: int,
    k1: float,
    key: str,
    previous: tuple[Path, Columns] | None = None,
) -> bool:
    """Write the tail terms of a generation of the index in ``index_dir`` into ``directory``:
    its ``leaves`` (segment reader, first docnum) and ``columns``, the tail from docnum
    ``bound``, BM25's ``k1``, the key of the parameters.  ``previous``: the directory and columns
    of the generation before, whose arrays are kept for the documents both hold (``_kept``).
    ``False`` (nothing written) where a segment to read is not laid out as ``segment_merge``
    reads them (``Unmergeable``): workers then look terms up as before."""
    live = np.asarray(columns.live)
    size = int(live.size)
    tail = _tail_of(columns.segments, bound)
    averages_hex = np.asarray(columns.averages, dtype=np.float64).tobytes().hex()
    kept, read = _kept(previous, columns, tail, bound, key, averages_hex)
    parts = [leaf for leaf in leaves if leaf[1] >= bound and read[leaf[1] - bound]]
    try:
        added = _read(index_dir, parts, bound, live, columns.norms, k1)
    except Unmergeable as exc:
        log.info("%s: %s", directory, exc)
        return False
    table = _combined(kept, added)
    names = f"{PREFIX}names"
    table.names.save(directory, names, sorted_=True)
    save_array(directory / f"{PREFIX}starts.npy", table.starts)
    save_array(directory / f"{PREFIX}docs.npy", table.docs)
    save_array(directory / f"{PREFIX}weights.npy", table.weights)
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "bound": bound,
        "size": size,
        "key": key,
        "averages": averages_hex,
        "segments": tail,
    }
    (directory / META).write_text(json.dumps(meta), encoding="utf-8")
    return True


def _tail_of(segments: Sequence[tuple[str, int]], bound: int) -> list[tuple[str, int]]:
    """The segments from docnum ``bound`` on (``bound`` is a segment boundary)."""
    out, start = [], 0
    for segment_id, count in segments:
        if start >= bound:
            out.append((segment_id, int(count)))
        start += int(count)
    return out


def _kept(
    previous: tuple[Path, Columns] | None,
    columns: Columns,
    tail: list[tuple[str, int]],
    bound: int,
    key: str,
    averages_hex: str,
) -> tuple[Table, np.ndarray]:
    """What the previous generation's tail terms give of this tail, and which of its segments
    must be read (a flag at each of the ``tail`` segments' first docnum, from ``bound``).

    A live document of the new tail that was in the previous tail with the same content (its
    id and content hash) keeps its arrays, renumbered: a merge in the tail moves documents
    (the tiered policy merges the older, small segments first), and a run's new segment holds
    the new and changed ones, the only segment read then.  Nothing is kept where the base, the
    scoring parameters or the averages differ (the weights would)."""
    span = columns.size - bound
    counts = np.asarray([count for _, count in tail], dtype=np.int64)
    starts = np.cumsum(counts) - counts
    read = np.zeros(span + 1, dtype=bool)
    read[starts] = counts > 0
    old = read_meta(previous[0]) if previous is not None else None
    if old is None or (old.get("bound"), old.get("key"), old.get("averages")) != (
        bound,
        key,
        averages_hex,
    ):
        return Table.empty(), read
    directory, before = previous  # type: ignore[misc]
    try:
        end = int(old["size"])
        table = _load_table(directory)
        problem = _problem(table, end - bound)
        if before.size != end:
            problem = "its columns are of another generation"
    except (OSError, ValueError, KeyError, TypeError) as exc:
        problem = str(exc)
    if problem is not None:
        log.warning(
            "%s: the previous tail terms are unreadable (%s): read again", directory, problem
        )
        return Table.empty(), read
    docmap = _docmap(before, columns, bound, end)
    covered = np.zeros(span, dtype=bool)
    covered[docmap[docmap >= 0]] = True
    live = np.asarray(columns.live)[bound:]
    for start, count in zip(starts.tolist(), counts.tolist(), strict=True):
        read[start] = bool(np.any(live[start : start + count] & ~covered[start : start + count]))
    in_read = np.repeat(read[starts], counts)  # their documents come from the segments read
    docmap[docmap >= 0] = np.where(in_read[docmap[docmap >= 0]], -1, docmap[docmap >= 0])
    return _renumbered(table, docmap), read


def _docmap(before: Columns, columns: Columns, bound: int, end: int) -> np.ndarray:
    """For each docnum of the previous tail (``bound`` to ``end``): the same document's docnum
    in the new tail (from ``bound``) where it is live in both with the same content hash, else
    -1."""
    docmap = np.full(end - bound, -1, dtype=np.int64)
    new_live = np.flatnonzero(np.asarray(columns.live)[bound:])
    if not new_live.size:
        return docmap
    at = {(columns.ids.raw(bound + d), columns.hashes.raw(bound + d)): d for d in new_live.tolist()}
    old_live = np.flatnonzero(np.asarray(before.live)[bound:end])
    for d in old_live.tolist():
        found = at.get((before.ids.raw(bound + d), before.hashes.raw(bound + d)))
        if found is not None:
            docmap[d] = found
    return docmap


def _renumbered(table: Table, docmap: np.ndarray) -> Table:
    """``table``'s documents that ``docmap`` keeps (>= 0), renumbered as it says, each term's
    ascending; terms left with none are dropped."""
    new = docmap[table.docs]
    keep = new >= 0
    term = np.repeat(np.arange(len(table.names)), np.diff(table.starts))[keep]
    docs, weights = new[keep], table.weights[keep]
    kept = docmap[docmap >= 0]
    if kept.size > 1 and not np.all(kept[1:] > kept[:-1]):  # moved out of order: sorted again
        order = np.lexsort((docs, term))
        term, docs, weights = term[order], docs[order], weights[order]
    counts = np.bincount(term, minlength=len(table.names))
    held = counts > 0
    starts = np.zeros(int(held.sum()) + 1, np.int64)
    np.cumsum(counts[held], out=starts[1:])
    return Table(table.names.take(np.flatnonzero(held)), starts, docs.astype(np.int32), weights)


def _read(
    index_dir: Path,
    leaves: Sequence[tuple[object, int]],
    bound: int,
    live: np.ndarray,
    norms: np.ndarray,
    k1: float,
) -> Table:
    """Every term of ``leaves`` with its live documents (numbered from ``bound``) and weights,
    computed as ``Snapshot._load`` does: each field's frequency times the field's norm (float32),
    the fields added up in float64 in field order, saturated with ``k1``."""
    ids: dict[bytes, int] = {}
    term_parts: list[np.ndarray] = []
    field_parts: list[np.ndarray] = []
    size_parts: list[np.ndarray] = []
    docs_parts: list[np.ndarray] = []
    tf_parts: list[np.ndarray] = []
    for leaf, first in leaves:
        segment = leaf.segment()  # type: ignore[attr-defined]
        count = segment.doc_count_all()
        docmap = np.where(live[first : first + count], np.arange(count) + (first - bound), -1)
        views, names, sizes, docs, tf = segment_postings(
            str(index_dir),
            leaf.schema,
            segment,
            docmap,
            VIEWS,  # type: ignore[attr-defined]
        )
        number = ids.setdefault
        term_parts.append(np.fromiter((number(n, len(ids)) for n in names), np.int64, len(names)))
        field_parts.append(np.fromiter(map(_NORM_OF.__getitem__, views), np.int64, len(views)))
        size_parts.append(sizes)
        docs_parts.append(docs)
        tf_parts.append(tf.astype(np.float32))
    if not ids:
        return Table.empty()
    sizes = np.concatenate(size_parts)
    docs = np.concatenate(docs_parts)
    tf = np.concatenate(tf_parts)
    field = np.repeat(np.concatenate(field_parts), sizes)
    term_ids = np.concatenate(term_parts)
    # Terms numbered in sorted order (the names' order).
    names = sorted(ids)
    rank = np.empty(len(names), np.int64)
    rank[np.fromiter((ids[name] for name in names), np.int64, len(names))] = np.arange(len(names))
    term = np.repeat(rank[term_ids], sizes)
    keep = live[bound + docs]
    term, docs, field, tf = term[keep], docs[keep], field[keep], tf[keep]
    weighed = tf * norms[field, bound + docs]
    order = np.lexsort((field, docs, term))
    term, docs, weighed = term[order], docs[order], weighed[order]
    first = np.empty(term.size, dtype=bool)
    first[:1] = True
    if term.size > 1:
        first[1:] = (term[1:] != term[:-1]) | (docs[1:] != docs[:-1])
    group = np.cumsum(first) - 1
    sums = np.bincount(group, weights=weighed.astype(np.float64), minlength=int(first.sum()))
    tf_sum = sums.astype(np.float32)
    weights = (tf_sum * (k1 + 1) / (k1 + tf_sum)).astype(np.float32, copy=False)
    term, docs = term[first], docs[first]
    per_term = np.bincount(term, minlength=len(names))
    held = per_term > 0
    starts = np.zeros(int(held.sum()) + 1, np.int64)
    np.cumsum(per_term[held], out=starts[1:])
    kept_names = [name for name, h in zip(names, held.tolist(), strict=True) if h]
    return Table(StringArray.from_bytes(kept_names), starts, docs.astype(np.int32), weights)


def _combined(first: Table, second: Table) -> Table:
    """The terms of both tables, each term's documents of both, ascending (no document is in
    both)."""
    if not len(second.names):
        return first
    if not len(first.names):
        return second
    one, two = _raw(first.names), _raw(second.names)
    # Two sorted runs: one merge in C, then each term once (``dict`` keeps the order).
    union = list(dict.fromkeys(sorted(one + two)))
    at = {name: i for i, name in enumerate(union)}
    where_one = np.fromiter((at[n] for n in one), np.int64, len(one))
    where_two = np.fromiter((at[n] for n in two), np.int64, len(two))
    count_one, count_two = np.diff(first.starts), np.diff(second.starts)
    if int(first.docs.max()) < int(second.docs.min()):
        # Every document of ``second`` after ``first``'s (a run's own segment, last): each
        # term's documents of ``first``, then of ``second``, placed without sorting.
        counts = np.zeros(len(union), np.int64)
        counts[where_one] += count_one
        before_two = counts.copy()
        counts[where_two] += count_two
        starts = np.zeros(len(union) + 1, np.int64)
        np.cumsum(counts, out=starts[1:])
        docs = np.empty(int(starts[-1]), np.int32)
        weights = np.empty(int(starts[-1]), np.float32)
        for table, where, count, shift in (
            (first, where_one, count_one, 0),
            (second, where_two, count_two, before_two[where_two]),
        ):
            offset = starts[where] + shift - table.starts[:-1]
            positions = np.repeat(offset, count) + np.arange(table.docs.size)
            docs[positions] = table.docs
            weights[positions] = table.weights
        return Table(StringArray.from_bytes(union), starts, docs, weights)
    term = np.concatenate([np.repeat(where_one, count_one), np.repeat(where_two, count_two)])
    docs = np.concatenate([first.docs, second.docs])
    weights = np.concatenate([first.weights, second.weights])
    order = np.lexsort((docs, term))
    starts = np.zeros(len(union) + 1, np.int64)
    np.cumsum(np.bincount(term, minlength=len(union)), out=starts[1:])
    return Table(StringArray.from_bytes(union), starts, docs[order], weights[order])


def _raw(names: StringArray) -> list[bytes]:
    """Every string of ``names`` as bytes (slices of one copy of the blob)."""
    blob, offsets = names.blob.tobytes(), names.offsets.tolist()
    return [blob[a:b] for a, b in zip(offsets[:-1], offsets[1:], strict=True)]
