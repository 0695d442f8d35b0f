"""What the index holds before a reindex: each live document's id, docnum, content hash and
source, looked up by id.

An incremental run at a million articles asks this about the few hundred documents it read and
checks, file by file, that the ids recorded for an unchanged file are still the index's from that
source.  A dict of a million ``(docnum, hash, origin)`` tuples took a second to build for that;
here the ids map to a row (one dict of ints, built in C) and the rest stays in arrays until a
row is asked for.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, KeysView, Sequence

import numpy as np

from .store.strings import StringArray, fixed_width

Entry = tuple[int, str, str]  # docnum, content hash, origin


class Existing:
    """The live documents of the run's base generation, by id (read-only)."""

    __slots__ = ("_rows", "_docnums", "_hashes", "_codes", "_labels")

    def __init__(
        self,
        ids: list[str],
        docnums: np.ndarray,
        hashes: StringArray | Sequence[str],
        codes: np.ndarray,
        labels: Sequence[str],
    ) -> None:
        self._rows: dict[str, int] = dict(zip(ids, range(len(ids)), strict=True))
        self._docnums = docnums
        self._hashes = hashes
        self._codes = codes
        self._labels = list(labels)

    @classmethod
    def of(cls, entries: dict[str, Entry]) -> Existing:
        """From a dict of entries (an index read through Whoosh, small tests)."""
        labels = sorted({origin for _, _, origin in entries.values()})
        code = {label: i for i, label in enumerate(labels)}
        values = list(entries.values())
        return cls(
            list(entries),
            np.array([v[0] for v in values], dtype=np.int64),
            [v[1] for v in values],
            np.array([code[v[2]] for v in values], dtype=np.int32),
            labels,
        )

    def __len__(self) -> int:
        return len(self._rows)

    def __contains__(self, doc_id: object) -> bool:
        return doc_id in self._rows

    def __iter__(self) -> Iterator[str]:
        return iter(self._rows)

    def keys(self) -> KeysView[str]:
        return self._rows.keys()

    def _entry(self, row: int) -> Entry:
        return (
            int(self._docnums[row]),
            str(self._hashes[row]),
            self._labels[int(self._codes[row])],
        )

    def get(self, doc_id: str) -> Entry | None:
        row = self._rows.get(doc_id)
        return None if row is None else self._entry(row)

    def __getitem__(self, doc_id: str) -> Entry:
        return self._entry(self._rows[doc_id])

    def all_from(self, ids: Iterable[str], origin: str) -> bool:
        """Whether the index holds every one of ``ids``, each from the source ``origin`` (a
        file's recorded ids: a million at a time in an archive, looked up in C)."""
        rows = list(map(self._rows.get, ids))
        if None in rows:
            return False
        if not rows:
            return True
        try:
            code = self._labels.index(origin)
        except ValueError:
            return False
        return bool((self._codes[np.array(rows, dtype=np.int64)] == code).all())

    def hashes(self) -> HeldHashes:
        """The content hashes of every live document, to ask whether a new copy's text is one
        the index holds already (``Update.needs_count``)."""
        held = self._hashes
        strings = held if isinstance(held, StringArray) else StringArray.from_strings(list(held))
        return HeldHashes(strings)


class HeldHashes(Collection[str]):
    """Content hashes answering ``in`` from their first eight bytes, sorted (an incremental run
    asks about a few hundred of a million: a set of them all took 0.35 s to build)."""

    __slots__ = ("_strings", "_order", "_prefixes")

    def __init__(self, strings: StringArray) -> None:
        self._strings = strings
        prefixes = _prefix_keys(strings)
        self._order = np.argsort(prefixes, kind="stable")
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


def _prefix_keys(strings: StringArray) -> np.ndarray:
    """Each string's first eight bytes (NUL-padded) as one integer."""
    return fixed_width(strings, 8).astype("S8").view(np.uint64)
