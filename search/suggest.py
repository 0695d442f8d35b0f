"""Suggest-as-you-type: completions of what the reader has typed so far.

Candidates come from the index's own titles: every run of one to four syllables (``Lào Cai``,
``giá vàng``) counted over all titles, plus the titles themselves.  Keys are folded, so ``lao c``
completes to ``Lào Cai`` whatever the reader types.  A query is a binary search over sorted keys.

The indexer counts phrases and titles exactly (``count_titles``) and keeps the counts with each
generation, updated with the titles that changed; ``table_arrays`` derives the table from them and
the workers memory-map it (``search.store``), so every worker shares one copy.  When several
spellings of a phrase (or several titles with one folded form) are equally frequent, the one that
sorts last is shown (lower case sorts after capitals: a phrase seen once opening a title and once
inside one is shown as written inside); the answer depends on the titles, never on the order they
were indexed in.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from html import escape

import numpy as np

from .store.counts import StringCounts
from .store.strings import StringArray, encode, separators, window
from .store.suggest_files import SEPARATOR, SuggestArrays, SuggestCounts, SuggestTally
from .text import fold, normalize

MAX_NGRAM = 4
MAX_CANDIDATES = 2000  # a one-letter prefix: only the most frequent matches are ranked
TITLE_WEIGHT = 0.5
_WORD_RE = re.compile(r"[^\W_]+(?:[.,][^\W_]+)*")


@dataclass(frozen=True, slots=True)
class Suggestion:
    text: str
    folded: str
    weight: float


def _folded_words(text: str) -> str:
    return " ".join(fold(w) for w in _WORD_RE.findall(text))


# -- counting ---------------------------------------------------------------------------------


def count_titles(titles: Iterable[str], tally: SuggestTally | None = None) -> SuggestTally:
    """Phrases and whole titles of ``titles``, counted exactly (added to ``tally`` if given).

    A phrase counts once per title (its first spelling there); a phrase of one word needs two
    letters.  Keys are ``folded + SEPARATOR + spelling``.
    """
    tally = SuggestTally() if tally is None else tally
    for raw in titles:
        title = " ".join(normalize(raw).split())
        words = _WORD_RE.findall(title)
        if not words:
            continue
        folded = [fold(w) for w in words]
        tally.titles[" ".join(folded) + SEPARATOR + title] += 1
        seen: set[str] = set()
        for size in range(1, MAX_NGRAM + 1):
            for i in range(len(words) - size + 1):
                gram_key = " ".join(folded[i : i + size])
                if gram_key in seen or (size == 1 and len(gram_key) < 2):
                    continue
                seen.add(gram_key)
                tally.phrases[gram_key + SEPARATOR + " ".join(words[i : i + size])] += 1
    return tally


def phrase_attrs(key: str) -> tuple[int, int, int]:
    """A phrase key's fixed values: whether its spelling is all capitals (and longer than three
    characters: such a spelling is shown only when there is no other), ``folded_hash`` and the
    spaces in its folded form."""
    folded, _, text = key.partition(SEPARATOR)
    return int(text.isupper() and len(text) > 3), folded_hash(folded), folded.count(" ")


def title_attrs(key: str) -> tuple[int, int, int]:
    """A title key's fixed values: whether the title has few enough words to be a phrase too,
    ``folded_hash`` and the spaces in its folded form."""
    folded, _, title = key.partition(SEPARATOR)
    short = len(_WORD_RE.findall(title)) <= MAX_NGRAM
    return int(short), folded_hash(folded), folded.count(" ")


def folded_hash(folded: str) -> int:
    """A stable 63-bit hash of a folded key (two keys with different hashes differ)."""
    digest = hashlib.blake2b(folded.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


def add_tally(counts: SuggestCounts, tally: SuggestTally) -> SuggestCounts:
    """``counts`` plus ``tally`` (its negative counts subtract)."""
    phrases = counts.phrases.add(tally.phrases, phrase_attrs)
    return SuggestCounts(phrases, counts.titles.add(tally.titles, title_attrs))


# -- the table --------------------------------------------------------------------------------


def table_arrays(counts: SuggestCounts) -> SuggestArrays:
    """The completion entries of exact counts.

    Phrases of several words seen in one title only are noise (whole titles cover them).  A
    phrase shows its most frequent spelling that is not shouted; a folded title its most frequent
    title; ties go to the spelling that sorts last.  A title whose folded form is a phrase's is
    left to the phrase.
    """
    phrases = _Keys(counts.phrases)
    rows, totals = phrases.chosen(counts.phrases.attrs[:, 0])
    spaces = counts.phrases.attrs[rows, 2]
    kept = (totals >= 2) | (spaces == 0)
    rows = rows[kept]
    phrase_keys = phrases.folded(rows)
    weights = (totals[kept] + 0.1 * spaces[kept]).astype(np.float64)
    titles = _Keys(counts.titles)
    title_rows, _ = titles.chosen(np.zeros(len(counts.titles), np.int64))
    title_keys = titles.folded(title_rows)
    duplicate = np.zeros(title_rows.size, dtype=bool)
    for i in np.flatnonzero(counts.titles.attrs[title_rows, 0]).tolist():
        duplicate[i] = phrase_keys.find(title_keys[i]) >= 0
    unique = np.flatnonzero(~duplicate)
    return SuggestArrays(
        phrase_keys,
        phrases.spelled(rows),
        weights,
        title_keys.take(unique),
        titles.spelled(title_rows[unique]),
    )


class _Keys:
    """A count table's ``folded\\0spelling`` keys, cut at the separator."""

    def __init__(self, table: StringCounts) -> None:
        self.table = table
        keys = table.keys
        self.starts, self.ends = keys.offsets[:-1], keys.offsets[1:]
        self.cut = separators(keys, ord(SEPARATOR))

    def chosen(self, demoted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per folded key (in order): the row to show (not ``demoted`` if possible, then the most
        frequent, then the last) and the key's total count."""
        table = self.table
        first = ~self._same_folded_as_previous()
        groups = np.flatnonzero(first)
        group = np.cumsum(first) - 1
        order = np.lexsort((-np.arange(len(table)), -table.counts, demoted, group))
        totals = np.add.reduceat(table.counts, groups) if groups.size else table.counts[:0]
        return order[groups], totals

    def _same_folded_as_previous(self) -> np.ndarray:
        """Per row: whether its folded key is the previous row's.  Rows whose hashes or lengths
        differ do not share it; only the others are compared byte for byte."""
        hashes, lengths = self.table.attrs[:, 1], self.cut - self.starts
        out = np.zeros(len(self.table), dtype=bool)
        maybe = np.flatnonzero((hashes[1:] == hashes[:-1]) & (lengths[1:] == lengths[:-1])) + 1
        keys = self.table.keys
        this = window(keys, self.starts[maybe], lengths[maybe])
        before = window(keys, self.starts[maybe - 1], lengths[maybe])
        differs = np.concatenate([[0], np.cumsum(this.blob != before.blob)])
        out[maybe] = differs[this.offsets[1:]] == differs[this.offsets[:-1]]
        return out

    def folded(self, rows: np.ndarray) -> StringArray:
        return window(self.table.keys, self.starts[rows], self.cut[rows] - self.starts[rows])

    def spelled(self, rows: np.ndarray) -> StringArray:
        return window(self.table.keys, self.cut[rows] + 1, self.ends[rows] - self.cut[rows] - 1)


class SuggestionTable:
    """Completion entries sorted by folded key (``SuggestArrays``), from a generation's files or
    built from ``titles`` (tests, and indexes written before the shared files)."""

    def __init__(self, titles: Iterable[str] = (), *, arrays: SuggestArrays | None = None) -> None:
        if arrays is None:
            arrays = table_arrays(add_tally(SuggestCounts.empty(), count_titles(titles)))
        self.arrays = arrays

    def __len__(self) -> int:
        return len(self.arrays.keys) + len(self.arrays.title_keys)

    def complete(self, prefix: str, limit: int = 8) -> list[Suggestion]:
        """Up to ``limit`` completions of ``prefix``, most frequent first."""
        key = _folded_words(prefix)
        if not key:
            return []
        if prefix[-1:].isspace():
            key += " "
        low, high = encode(key), encode(key + "\uffff")
        arrays = self.arrays
        lo = arrays.keys.bisect_left(low)
        hi = arrays.keys.bisect_left(high, lo)
        title_lo = arrays.title_keys.bisect_left(low)
        title_hi = arrays.title_keys.bisect_left(high, title_lo)
        # Every phrase weighs at least 1, every title 0.5: the most frequent matches are the
        # phrases by weight (ties in key order), then the titles in key order.
        phrases = np.arange(lo, hi)
        if phrases.size > MAX_CANDIDATES:
            order = np.argsort(-arrays.weights[lo:hi], kind="stable")[:MAX_CANDIDATES]
            phrases = phrases[order]
        titles = np.arange(title_lo, title_hi)[: max(0, MAX_CANDIDATES - phrases.size)]
        weights = np.concatenate([arrays.weights[phrases], np.full(titles.size, TITLE_WEIGHT)])
        if weights.size > limit:  # only candidates as heavy as the ``limit``-th can make it
            floor = np.partition(weights, weights.size - limit)[weights.size - limit]
            heavy = weights >= floor
        else:
            heavy = np.ones(weights.size, dtype=bool)
        candidates = [
            Suggestion(arrays.texts[i], arrays.keys[i], float(arrays.weights[i]))
            for i in phrases[heavy[: phrases.size]].tolist()
        ] + [
            Suggestion(arrays.title_texts[i], arrays.title_keys[i], TITLE_WEIGHT)
            for i in titles[heavy[phrases.size :]].tolist()
        ]
        best = sorted(candidates, key=lambda e: (-e.weight, len(e.folded), e.folded))
        return best[:limit]


def highlight_prefix(text: str, prefix: str) -> str:
    """Escaped ``text`` with the part the reader typed wrapped in ``<mark>``.

    >>> highlight_prefix("Lào Cai", "lao c")
    '<mark>Lào C</mark>ai'
    """
    typed = _folded_words(prefix)
    folded = fold(text)
    if len(folded) != len(text):
        return escape(text, quote=False)
    end = 0
    target = typed.replace(" ", "")
    count = 0
    for i, char in enumerate(folded):
        if count == len(target):
            break
        if char.isalnum():
            if char != target[count]:
                return escape(text, quote=False)
            count += 1
        end = i + 1
    if count < len(target):
        return escape(text, quote=False)
    return f"<mark>{escape(text[:end], quote=False)}</mark>{escape(text[end:], quote=False)}"
