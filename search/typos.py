"""Typo correction for a query that found nothing, at a cost that does not grow with the archive.

Whoosh's ``terms_within`` walks the whole term dictionary of a field with a Levenshtein automaton:
its cost grows with the vocabulary, and a query of many made-up words ran it once per word and
field, seconds of one worker per request (issue 15).  Here candidates come from a symmetric
deletion table (SymSpell, Wolf Garbe): every spelling the accent vocabulary knows is stored under
itself and under each string one deletion away; a typed word looks up itself and the strings up
to ``max_distance`` deletions away.  Two strings meet when deleting at most that many letters from
the typed word and at most one from the known spelling gives the same string, which covers one
substitution, insertion, deletion or transposition, and for long words two of them where at most
one letter is missing from what was typed.  Each meeting is then checked with the real
(optimal string alignment) edit distance.

The work per word is bounded by its length (``MAX_WORD_LETTERS``) and the number of words
corrected (``MAX_WORDS``), never by the archive: a lookup is a binary search in a sorted array of
64-bit hashes.  The table is built once per index generation, from the accent vocabulary (the
syllables and words of the indexed text with their counts), in compact numpy arrays: by the
indexer, which writes it with the generation's files for every worker to map
(``store.typo_files``), or by a worker that opens a generation without them.
"""

from __future__ import annotations

import itertools
import logging
import threading
import weakref
import zlib
from collections.abc import Callable, Iterable, Sequence

import numpy as np

from .store.strings import StringArray
from .store.typo_files import TypoArrays

log = logging.getLogger(__name__)

# Unknown words corrected in one query: the rest are searched as typed.  A query of 64 made-up
# words must cost a few plain queries, not 64 corrections.
MAX_WORDS = 4
# Longer words are not corrected: no indexed word worth suggesting is that long, and the number
# of deletion strings grows with the square of the length.
MAX_WORD_LETTERS = 20
# Words shorter than this are not corrected (``gox`` could be anything).
MIN_WORD_LETTERS = 4
# Candidates checked against the index, most frequent first, before giving up on a word.
MAX_CHECKED = 8
# A new generation's table takes the previous one's deletion table while its new spellings are
# at most this share of its own (``TypoTable._take``).
TAKE_NEW_SHARE = 0.05


def _key(text: str) -> int:
    """A stable 63-bit hash (the table is a sorted array of them; a collision is only a wasted
    distance check)."""
    data = text.encode("utf-8")
    return (zlib.crc32(data) << 31) ^ zlib.adler32(data) & 0x7FFFFFFF


def deletions(word: str, depth: int) -> set[str]:
    """``word`` and every string ``depth`` or fewer deletions away from it.

    >>> sorted(deletions("abc", 1))
    ['ab', 'abc', 'ac', 'bc']
    """
    found = {word}
    frontier = {word}
    for _ in range(depth):
        frontier = {w[:i] + w[i + 1 :] for w in frontier for i in range(len(w))} - found
        found |= frontier
    return found


def edit_distance(a: str, b: str, limit: int) -> int:
    """Optimal string alignment distance of ``a`` and ``b`` (a transposition is one edit), or
    ``limit + 1`` as soon as it must exceed ``limit``.

    >>> edit_distance("hanoi", "hanio", 2), edit_distance("doan", "doann", 2)
    (1, 1)
    """
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            cost = 0 if ca == cb else 1
            value = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                value = min(value, previous2[j - 2] + 1)
            current[j] = value
        if min(current) > limit:
            return limit + 1
        previous2, previous = previous, current
    return previous[-1]


def max_distance(word: str) -> int:
    """One edit for words up to six letters, two beyond (what people mistype in longer ones)."""
    return 1 if len(word) <= 6 else 2


class TypoTable:
    """Known spellings (folded, alphabetic) with their counts, and their deletion table."""

    words: Sequence[str]  # a list when built here, a ``StringArray`` when mapped
    counts: np.ndarray
    _keys: np.ndarray
    _ids: np.ndarray

    def __init__(self, counts: Iterable[tuple[str, int]], like: Iterable[TypoTable] = ()) -> None:
        """``like``: tables that may know the same spellings (the generation before's), whose
        deletion table is then taken instead of built again (``_take``)."""
        words: list[str] = []
        frequency: list[int] = []
        for word, count in counts:
            if MIN_WORD_LETTERS - 1 <= len(word) <= MAX_WORD_LETTERS + 2 and word.isalpha():
                words.append(word)
                frequency.append(count)
        self.words = words
        self.counts = np.asarray(frequency, dtype=np.int64)
        if any(self._take(other) for other in like):
            return
        keys, ids = self._entries(words)
        order = np.argsort(keys, kind="stable")
        self._keys = keys[order]
        self._ids = ids[order]

    def _take(self, other: TypoTable) -> bool:
        """Take ``other``'s deletion table, renumbered to this table's order (the counts, and
        so the order, move with every commit), without the spellings this one lacks and with
        the entries of the ones it adds, if those are at most ``TAKE_NEW_SHARE`` of its own.
        Building the whole table is ~0.4 s of Python at a million articles, done by the
        indexer for every incremental run (or by a worker opening a generation without the
        table's files); an incremental run brings a few new spellings at most."""
        if not other.words or not self.words:
            return False
        position = {word: i for i, word in enumerate(self.words)}
        renumber = np.fromiter(
            (position.get(word, -1) for word in other.words), np.int64, len(other.words)
        )
        known = np.zeros(len(self.words), dtype=bool)
        known[renumber[renumber >= 0]] = True
        new = np.flatnonzero(~known)
        if new.size > TAKE_NEW_SHARE * len(self.words):
            return False
        ids = renumber[other._ids]
        kept = ids >= 0
        keys, ids = other._keys[kept], ids[kept]
        if new.size:
            added_keys, added = self._entries([self.words[i] for i in new.tolist()])
            keys = np.concatenate([keys, added_keys])
            ids = np.concatenate([ids, new[added]])
            order = np.argsort(keys, kind="stable")
            keys, ids = keys[order], ids[order]
        self._keys, self._ids = keys, ids.astype(np.int32)
        return True

    @classmethod
    def from_arrays(cls, arrays: TypoArrays) -> TypoTable:
        """The table of ``arrays`` (a generation's mapped files), read where it lies."""
        table = cls.__new__(cls)
        table.words, table.counts = arrays.words, arrays.counts
        table._keys, table._ids = arrays.keys, arrays.ids
        return table

    def arrays(self) -> TypoArrays:
        """The table as the arrays its files hold (``store.typo_files``)."""
        words = self.words
        if not isinstance(words, StringArray):
            words = StringArray.from_strings(list(words))
        return TypoArrays(
            words,
            self.counts.astype(np.int64, copy=False),
            self._keys.astype(np.int64, copy=False),
            self._ids.astype(np.int32, copy=False),
        )

    @staticmethod
    def _entries(words: list[str]) -> tuple[np.ndarray, np.ndarray]:
        keys: list[int] = []
        ids: list[int] = []
        for i, word in enumerate(words):
            for variant in deletions(word, 1):
                keys.append(_key(variant))
                ids.append(i)
        return np.asarray(keys, dtype=np.int64), np.asarray(ids, dtype=np.int32)

    @property
    def nbytes(self) -> int:
        return int(self._keys.nbytes + self._ids.nbytes + self.counts.nbytes)

    def _lookup(self, variant: str) -> np.ndarray:
        key = _key(variant)
        low = np.searchsorted(self._keys, key, side="left")
        high = np.searchsorted(self._keys, key, side="right")
        return self._ids[low:high]

    def candidates(self, word: str) -> list[str]:
        """Known spellings within ``max_distance(word)`` edits of ``word`` that start with the
        same letter, most frequent first (ties alphabetical); ``word`` itself excluded."""
        if not MIN_WORD_LETTERS <= len(word) <= MAX_WORD_LETTERS or not self.words:
            return []
        limit = max_distance(word)
        found: set[int] = set()
        for variant in deletions(word, limit):
            found.update(self._lookup(variant).tolist())
        near = [
            self.words[i]
            for i in found
            if self.words[i] != word
            and self.words[i][0] == word[0]
            and edit_distance(word, self.words[i], limit) <= limit
        ]
        rank = {self.words[i]: int(self.counts[i]) for i in found}
        return sorted(near, key=lambda w: (-rank[w], w))


def first(items: Iterable[str], keep: Callable[[str], bool]) -> str | None:
    """The first of ``items`` that ``keep`` accepts, looking at ``MAX_CHECKED`` at most."""
    for item in itertools.islice(items, MAX_CHECKED):
        if keep(item):
            return item
    return None


def typo_arrays(vocabulary, previous: TypoArrays | None = None) -> TypoArrays:
    """The typo table of a generation's accent vocabulary (``VocabularyArrays``), as the indexer
    writes it; ``previous``: the table of the generation before, taken when it knows nearly
    every spelling (``TypoTable._take``)."""
    from .accents import MappedVocabulary

    like = [TypoTable.from_arrays(previous)] if previous is not None else []
    return TypoTable(MappedVocabulary(vocabulary).folded_counts(), like).arrays()


_TABLES: dict[int, TypoTable] = {}
_TABLES_LOCK = threading.Lock()


def table_for(vocab) -> TypoTable:
    """The deletion table of an accent vocabulary, built on first use and kept as long as the
    vocabulary (one per index generation, dropped with it)."""
    key = id(vocab)
    with _TABLES_LOCK:
        table = _TABLES.get(key)
        if table is None:
            table = TypoTable(vocab.folded_counts(), like=list(_TABLES.values()))
            _TABLES[key] = table
            weakref.finalize(vocab, _TABLES.pop, key, None)
    return table
