"""What the index holds before a reindex: each live document's id, docnum, content hash and
source, found by id.

An incremental run at a million articles asks this about the few hundred documents it read,
and checks, file by file, that the ids recorded for an unchanged file are still the index's from
that source.  A dict of a million ids took ~0.3 s to build and as much to look a million ids up
in; here each id is a 64-bit digest (``store.strings.digests``), sorted once, and a file's ids
are found with one vectorised search, each match checked on its bytes.  A row is the position
of a live document among the live documents (``docnum_at`` gives its docnum).
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence

import numpy as np

from .store.strings import (
    StringArray,
    digest,
    digests,
    encode,
    same_strings,
)

Entry = tuple[int, str, str]  # docnum, content hash, origin
DICT_AFTER = 50_000
SHARED_DIGEST = 8  # ids sharing one digest scanned by ``row`` before the ids go into a dict
SORTED_SEARCH = 1024  # ids ``rows`` looks up in ascending order (``_search_sorted``)


class Existing:
    """The live documents of the run's base generation, by id (read-only)."""

    __slots__ = (
        "_ids",
        "_docnums",
        "_hashes",
        "_codes",
        "_labels",
        "_order",
        "_sorted",
        "_lookups",
        "_rows",
    )

    def __init__(
        self,
        ids: StringArray,
        docnums: np.ndarray,
        hashes: StringArray,
        codes: np.ndarray,
        labels: Sequence[str],
    ) -> None:
        self._ids = ids
        self._docnums = np.asarray(docnums, dtype=np.int64)
        self._hashes = hashes
        self._codes = np.asarray(codes)
        self._labels = list(labels)
        keys = digests(ids)
        self._order = np.argsort(keys)
        self._sorted = keys[self._order]
        self._lookups = 0
        self._rows: dict[str, int] | None = None

    @classmethod
    def of(cls, entries: dict[str, Entry]) -> Existing:
        """From a dict of entries (an index read through Whoosh, small tests)."""
        labels = sorted({origin for _, _, origin in entries.values()})
        code = {label: i for i, label in enumerate(labels)}
        values = list(entries.values())
        return cls(
            StringArray.from_strings(list(entries)),
            np.array([v[0] for v in values], dtype=np.int64),
            StringArray.from_strings([v[1] for v in values]),
            np.array([code[v[2]] for v in values], dtype=np.int32),
            labels,
        )

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, doc_id: object) -> bool:
        return isinstance(doc_id, str) and self.row(doc_id) is not None

    def row(self, doc_id: str) -> int | None:
        """The row of the document ``doc_id``, or ``None``.  A run that reads every document
        (no record of the files, a source changed whole) asks for each: past ``DICT_AFTER``
        lookups (~6 us each) the ids are put in a dict (~0.3 s at a million, 0.1 us a lookup).
        So they are when more than ``SHARED_DIGEST`` ids share the digest asked for: the
        multiplier is public, and a source of ids made to share one digest would otherwise
        cost a scan of all of them per lookup."""
        if self._rows is not None:
            return self._rows.get(doc_id)
        self._lookups += 1
        key = np.uint64(digest(doc_id))
        lo = int(np.searchsorted(self._sorted, key, side="left"))
        hi = int(np.searchsorted(self._sorted, key, side="right"))
        if self._lookups > DICT_AFTER or hi - lo > SHARED_DIGEST:
            self._rows = dict(zip(self._ids.tolist(), range(len(self._ids)), strict=True))
            return self._rows.get(doc_id)
        raw = encode(doc_id)
        for row in self._order[lo:hi].tolist():
            if self._ids.raw(row) == raw:
                return row
        return None

    def rows(self, ids: StringArray) -> np.ndarray:
        """The row of each of ``ids`` (-1 for an id the index does not hold)."""
        out = np.full(len(ids), -1, dtype=np.int64)
        if not len(ids) or not len(self):
            return out
        keys = digests(ids)
        at = np.minimum(_search_sorted(self._sorted, keys), self._sorted.size - 1)
        matched = np.flatnonzero(self._sorted[at] == keys)
        if not matched.size:
            return out
        candidates = self._order[at[matched]]
        theirs = ids if matched.size == len(ids) else ids.take(matched)
        same = same_strings(self._ids.take(candidates), theirs)
        out[matched[same]] = candidates[same]
        # Another string with the same digest came first: look the id up on its own (rare).
        for i in matched[~same].tolist():
            row = self.row(ids[i])
            out[i] = -1 if row is None else row
        return out

    def rows_from(self, ids: StringArray, origin: str) -> np.ndarray | None:
        """The rows of ``ids`` when the index holds every one of them from the source
        ``origin`` (a file's recorded ids), else ``None``."""
        rows = self.rows(ids)
        if not rows.size:
            return rows
        code = self.code(origin)
        if code is None or (rows < 0).any():
            return None
        return rows if bool((self._codes[rows] == code).all()) else None

    def code(self, origin: str) -> int | None:
        """The code of the source ``origin`` among the rows' (``codes``), if any row has it."""
        try:
            return self._labels.index(origin)
        except ValueError:
            return None

    @property
    def codes(self) -> np.ndarray:
        """Each row's source, as a code (``code``)."""
        return self._codes

    def id_at(self, row: int) -> str:
        return self._ids[row]

    def docnum_at(self, row: int) -> int:
        return int(self._docnums[row])

    def entry(self, row: int) -> Entry:
        return (
            int(self._docnums[row]),
            str(self._hashes[row]),
            self._labels[int(self._codes[row])],
        )

    def hashes_at(self, rows: np.ndarray) -> StringArray:
        """The content hashes of ``rows``."""
        return self._hashes.take(rows)

    def get(self, doc_id: str) -> Entry | None:
        row = self.row(doc_id)
        return None if row is None else self.entry(row)

    def __getitem__(self, doc_id: str) -> Entry:
        row = self.row(doc_id)
        if row is None:
            raise KeyError(doc_id)
        return self.entry(row)

    def hashes(self) -> HeldHashes:
        """The content hashes of every live document, to ask whether a new copy's text is one
        the index holds already (``Update.needs_count``)."""
        return HeldHashes(self._hashes)


class HeldHashes(Collection[str]):
    """Content hashes answering ``in`` from their first eight bytes, sorted (an incremental run
    asks about a few hundred of a million: a set of them all took 0.35 s to build)."""

    __slots__ = ("_strings", "_order", "_prefixes")

    def __init__(self, strings: StringArray) -> None:
        self._strings = strings
        prefixes = _prefix_keys(strings)
        self._order = np.argsort(prefixes)
        self._prefixes = prefixes[self._order]

    def __len__(self) -> int:
        return len(self._strings)

    def __iter__(self) -> Iterator[str]:
        return iter(self._strings)

    def __contains__(self, value: object) -> bool:
        if not isinstance(value, str):
            return False
        key = _prefix_keys(StringArray.from_strings([value]))
        lo = int(np.searchsorted(self._prefixes, key[0], side="left"))
        hi = int(np.searchsorted(self._prefixes, key[0], side="right"))
        return any(self._strings[int(row)] == value for row in self._order[lo:hi])


def _search_sorted(table: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """``np.searchsorted(table, keys)``, the keys searched in ascending order when there are
    many: numpy then starts each search from where the last one ended, in the part of the table
    it has just read.  An incremental run checks every unchanged file's recorded ids this way
    (at a million articles, 20 files of 50,000 random digests in a table of a million: 22-33 ms
    a file searched as they come, 10-15 sorted first, the sort included)."""
    if keys.size < SORTED_SEARCH:
        return np.searchsorted(table, keys)
    order = np.argsort(keys)
    at = np.empty(keys.size, dtype=np.intp)
    at[order] = np.searchsorted(table, keys[order])
    return at


def _prefix_keys(strings: StringArray) -> np.ndarray:
    """Each string's first eight bytes (NUL-padded) as one integer, a byte column at a time (a
    million hashes in ~0.03 s)."""
    starts, lengths = strings.offsets[:-1], strings.lengths()
    padded = np.concatenate([strings.blob, np.zeros(8, np.uint8)])
    keys = np.zeros(starts.size, dtype=np.uint64)
    for column in range(8):
        byte = np.where(lengths > column, padded[starts + column], 0).astype(np.uint64)
        keys |= byte << np.uint64(8 * column)
    return keys
