"""Accent restoration: the most likely Vietnamese spelling of a query typed without diacritics.

Users type ``lao cai`` far more often than ``Lào Cai``.  Folded search already finds both, but
showing "did you mean *Lào Cai*?" (and ranking exact-accent matches) needs a guess at what they
meant.  Guessing word by word fails exactly where it matters: ``cải`` (cabbage) is a more frequent
syllable than ``cai``, yet after ``lào`` the index has seen ``cai`` many times and ``cải`` never.
So the guess is a bigram language model over the index's own vocabulary, decoded with Viterbi:

* each unaccented syllable offers the accented forms the corpus has for its folding
  (``cai`` -> ``cái``, ``cải``, ``cai``, ...); a syllable the user already accented is fixed, and a
  syllable the corpus never saw passes through untouched;
* transitions use interpolated absolute discounting (the Kneser-Ney interpolation weight, with a
  plain add-k unigram below it): a seen pair scores ``(c(v,w) - D) / c(v) + λ(v) P(w)``, an unseen
  one ``λ(v) P(w)`` with ``λ(v) = D (T(v) + 1) / (c(v) + 1)``, ``T(v)`` the number of distinct
  followers of ``v``.  A raw-frequency unigram (not KN's continuation count) sits below because a
  one-word query should get the syllable's most common spelling;
* the unseen-pair part of the recursion does not depend on the current candidate, so each step costs
  one pair-count lookup per (previous, current) pair, all asked at once (``pair_table``).

The statistics come through two small protocols so the engine can plug in whatever the indexer
stores.  ``CountsVocabulary`` is the plain-dict implementation, built from texts (tests, and
indexes written before the shared files).  ``MappedVocabulary`` gives the same answers from the
arrays the indexer writes with each generation (``search.store``), memory-mapped by every worker:
the indexer keeps exact counts (``count_texts``, nothing pruned) and updates them with the
documents that changed, so the model is always that of the generation's documents.
"""

from __future__ import annotations

import gzip
import heapq
import json
import math
import re
import sys
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from itertools import pairwise
from pathlib import Path
from types import MappingProxyType
from typing import Any, Protocol, runtime_checkable

import numpy as np

from search import kernels
from search.accent_tally import count_texts
from search.store.accent_files import AccentCounts, AccentTally, VocabularyArrays
from search.store.strings import StringArray, fixed_width
from search.text import canonical_syllable, fold, has_diacritics, normalize

#: Absolute discount subtracted from every seen pair count (the usual Kneser-Ney value).
DISCOUNT = 0.75
#: Add-k for the unigram floor: a fixed syllable the corpus never saw still gets a finite score.
UNIGRAM_K = 0.5
#: A syllable is written capitalised when at least this share of its corpus occurrences is.
TITLE_THRESHOLD = 0.5
#: Cap on candidates per position: keeps the decoder's cost bounded whatever the vocabulary holds.
MAX_VARIANTS = 16

FORMAT = "vnsearch-accents"
FORMAT_VERSION = 1

_EMPTY: Mapping[str, int] = MappingProxyType({})
_NO_PAIR = (1 << 64) - 1  # the key of a pair with an unknown syllable: in no pair table
_TOKEN_RE = re.compile(r"[^\W_]+")
_DIGIT_RE = re.compile(r"\d")


@runtime_checkable
class AccentVocabulary(Protocol):
    """Corpus statistics the decoder needs; keys are canonical syllables (``canonical_syllable``).

    ``followers`` rather than a per-pair lookup: the decoder asks once per previous candidate and
    probes the returned mapping, and ``follower_types`` gives the interpolation weight without
    scanning it (a syllable like ``của`` has thousands of followers).
    """

    @property
    def total(self) -> int:
        """Total syllable occurrences in the corpus (the unigram denominator)."""
        ...

    def variants(self, folded: str) -> Mapping[str, int]:
        """Folded syllable -> {accented canonical syllable: corpus frequency}; empty if unseen."""
        ...

    def followers(self, first: str) -> Mapping[str, int]:
        """Accented syllable -> {syllable seen right after it: pair frequency}."""
        ...

    def follower_types(self, first: str) -> int:
        """How many distinct syllables followed ``first`` (counted before any pruning)."""
        ...


@runtime_checkable
class CasedAccentVocabulary(AccentVocabulary, Protocol):
    """An ``AccentVocabulary`` that also knows how the corpus capitalises syllables."""

    def title_share(self, syllable: str) -> float:
        """Share of the syllable's occurrences written capitalised mid-sentence (0.0 if unseen)."""
        ...

    def pair_title_shares(self, first: str, second: str) -> tuple[float, float] | None:
        """Shares of the pair's occurrences with the first / second syllable capitalised.

        ``None`` when the vocabulary has no pair-specific evidence: the pair is unseen, or (an
        implementation may prune these) its capitalisation agrees with each word's own
        ``title_share``.  Only pairs that overrule a word's usual case need an answer.
        """
        ...


class CountsVocabulary:
    """Unigram and bigram counts of canonical syllables, held in plain dicts.

    Memory is dominated by the bigrams (about 70 bytes per stored pair once loaded); ``from_texts``
    can drop pairs seen fewer than ``min_pair_count`` times.  Most pairs in news text are seen
    once, so ``min_pair_count=2`` roughly halves the pairs, and the memory, for a small loss of
    syllable accuracy: the rare pairs it drops rarely decide an accent.
    """

    def __init__(
        self,
        unigrams: Mapping[str, int],
        bigrams: Mapping[tuple[str, str], int],
        *,
        titles: Mapping[str, int] | None = None,
        pair_titles: Mapping[tuple[str, str], tuple[int, int]] | None = None,
        follower_types: Mapping[str, int] | None = None,
    ) -> None:
        """Build from counts keyed by canonical syllables.

        ``titles``: mid-sentence capitalised occurrences per syllable.  ``pair_titles``: per pair,
        how often its first / second syllable was capitalised; only pairs whose case overrules a
        word's usual one matter (``from_texts`` keeps just those), and a pair missing from
        ``bigrams`` is ignored.
        ``follower_types``: distinct followers per syllable before pruning; derived from
        ``bigrams`` when omitted.  A syllable that appears only in ``bigrams`` is added to the
        unigrams with its pair count, so the model never divides by a zero context count.
        """
        counts: dict[str, int] = {_intern(s): int(c) for s, c in unigrams.items() if c > 0}
        followers: dict[str, dict[str, int]] = {}
        for (first, second), count in bigrams.items():
            if count <= 0:
                continue
            first, second = _intern(first), _intern(second)
            followers.setdefault(first, {})[second] = int(count)
            for syllable in (first, second):
                if counts.get(syllable, 0) < count:
                    counts[syllable] = int(count)
        self._unigrams = counts
        self._followers = followers
        self._types: dict[str, int] = (
            {_intern(s): int(n) for s, n in follower_types.items() if n > 0}
            if follower_types is not None
            else {first: len(seconds) for first, seconds in followers.items()}
        )
        self._titles: dict[str, int] = {
            _intern(s): int(n) for s, n in (titles or {}).items() if n > 0
        }
        self._pair_titles: dict[tuple[str, str], tuple[int, int]] = {
            (_intern(a), _intern(b)): (int(f), int(s))
            for (a, b), (f, s) in (pair_titles or {}).items()
            if b in followers.get(a, _EMPTY)
        }
        self._total = sum(counts.values())
        by_fold: dict[str, dict[str, int]] = {}
        # Most frequent first, so callers (and the decoder's cap) see the likeliest spellings first.
        for syllable, count in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
            by_fold.setdefault(fold(syllable), {})[syllable] = count
        self._by_fold = by_fold

    def frequent_terms(self, limit: int) -> list[str]:
        """The index terms most often read: folded syllables, accented syllables and folded
        adjacent pairs, most frequent first (a worker loads their postings ahead of queries)."""
        scored: dict[str, int] = {}
        for syllable, count in self._unigrams.items():
            folded = fold(syllable)
            scored[folded] = scored.get(folded, 0) + count
            if folded != syllable:
                scored[syllable] = count
        # A pair rarer than a quarter of the last syllable that makes the cut cannot make it
        # (its accented spellings would have to add up four times over): skip the long tail.
        ranked = heapq.nlargest(limit, scored.values())
        floor = ranked[-1] // 4 if ranked else 0
        for first, seconds in self._followers.items():
            for second, count in seconds.items():
                if count >= floor:
                    pair = f"{fold(first)} {fold(second)}"
                    scored[pair] = scored.get(pair, 0) + count
        best = heapq.nlargest(limit, scored.items(), key=lambda kv: (kv[1], kv[0]))
        return [term for term, _ in best]

    # -- AccentVocabulary ---------------------------------------------------------------------

    @property
    def total(self) -> int:
        """Total syllable occurrences."""
        return self._total

    def variants(self, folded: str) -> Mapping[str, int]:
        """Accented spellings of a folded syllable with their frequencies, most frequent first."""
        return self._by_fold.get(folded, _EMPTY)

    def folded_counts(self) -> Iterator[tuple[str, int]]:
        """Every folded spelling with the total count of its accented forms (typo candidates)."""
        for folded, variants in self._by_fold.items():
            yield folded, sum(variants.values())

    def followers(self, first: str) -> Mapping[str, int]:
        """Syllables seen right after ``first`` with the pair frequencies."""
        return self._followers.get(first, _EMPTY)

    def follower_types(self, first: str) -> int:
        """Distinct followers of ``first`` before pruning."""
        return self._types.get(first, 0)

    # -- CasedAccentVocabulary ----------------------------------------------------------------

    def title_share(self, syllable: str) -> float:
        """Share of occurrences written capitalised mid-sentence."""
        count = self._unigrams.get(syllable, 0)
        return self._titles.get(syllable, 0) / count if count else 0.0

    def pair_title_shares(self, first: str, second: str) -> tuple[float, float] | None:
        """Per-position capitalised shares of a pair that overrules its words' usual case."""
        cased = self._pair_titles.get((first, second))
        if cased is None:
            return None
        count = self._followers.get(first, _EMPTY).get(second, 0)
        return (cased[0] / count, cased[1] / count) if count else None

    # -- conveniences -------------------------------------------------------------------------

    def count(self, syllable: str) -> int:
        """Corpus frequency of an accented canonical syllable."""
        return self._unigrams.get(syllable, 0)

    def pair_count(self, first: str, second: str) -> int:
        """Frequency of ``first`` immediately followed by ``second`` (0 if unseen or pruned)."""
        return self._followers.get(first, _EMPTY).get(second, 0)

    def __len__(self) -> int:
        """Number of distinct syllables."""
        return len(self._unigrams)

    @property
    def pair_total(self) -> int:
        """Number of distinct stored pairs (a proxy for the memory the vocabulary holds)."""
        return sum(len(seconds) for seconds in self._followers.values())

    def __eq__(self, other: object) -> bool:
        """Equal when every statistic matches (used to check serialisation round trips)."""
        if not isinstance(other, CountsVocabulary):
            return NotImplemented
        return self.to_payload() == other.to_payload()

    __hash__ = None  # type: ignore[assignment]  # mutable-looking container semantics

    def __repr__(self) -> str:
        return f"CountsVocabulary({len(self)} syllables, {self.pair_total} pairs)"

    # -- building -----------------------------------------------------------------------------

    @classmethod
    def from_texts(cls, texts: Iterable[str], *, min_pair_count: int = 1) -> CountsVocabulary:
        """Count syllables and adjacent pairs in ``texts`` (``count_texts``) and keep the model
        (``from_tally``)."""
        return cls.from_tally(count_texts(texts), min_pair_count=min_pair_count)

    @classmethod
    def from_tally(cls, tally: AccentTally, *, min_pair_count: int = 1) -> CountsVocabulary:
        """The model of exact counts: pairs seen fewer than ``min_pair_count`` times are dropped
        (their follower types still count, so the smoothing knows how much it lost)."""
        unigrams, titles, bigrams = tally.unigrams, tally.titles, tally.bigrams
        first_titles, second_titles = tally.first_titles, tally.second_titles
        types: Counter[str] = Counter(first for first, _ in bigrams)
        if min_pair_count > 1:
            bigrams = Counter({p: c for p, c in bigrams.items() if c >= min_pair_count})
        # Pairs keep their own capitalisation only where it overrules a word's usual one (``Cai``
        # in ``Lào Cai`` when ``cai`` is mostly lower case, ``cai`` in ``cai nghiện`` when ``Cai``
        # is mostly capitalised): everything else the unigram shares already decide, and the
        # exceptions are a small fraction of the pairs that contain a capital at all.
        usually_title = {w for w, n in titles.items() if n >= TITLE_THRESHOLD * unigrams[w]}
        pair_titles = {}
        for (first, second), count in bigrams.items():
            cased = (first_titles.get((first, second), 0), second_titles.get((first, second), 0))
            if (cased[0] >= TITLE_THRESHOLD * count) != (first in usually_title) or (
                cased[1] >= TITLE_THRESHOLD * count
            ) != (second in usually_title):
                pair_titles[first, second] = cased
        return cls(
            unigrams,
            bigrams,
            titles=titles,
            pair_titles=pair_titles,
            follower_types=types,
        )

    # -- serialisation ------------------------------------------------------------------------

    def to_payload(self) -> dict[str, Any]:
        """A JSON-ready dict: syllables listed once, everything else as flat lists of ids.

        Syllables are ordered by frequency, so frequent ones get short ids and the file stays small.
        """
        syllables = sorted(self._unigrams, key=lambda s: (-self._unigrams[s], s))
        ids = {syllable: i for i, syllable in enumerate(syllables)}
        pairs: list[int] = []
        for first in syllables:
            seconds = self._followers.get(first)
            if seconds:
                for second, count in sorted(seconds.items(), key=lambda kv: ids[kv[0]]):
                    pairs += (ids[first], ids[second], count)
        pair_titles: list[int] = []
        for (first, second), (f, s) in sorted(
            self._pair_titles.items(), key=lambda kv: (ids[kv[0][0]], ids[kv[0][1]])
        ):
            pair_titles += (ids[first], ids[second], f, s)
        return {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "syllables": syllables,
            "counts": [self._unigrams[s] for s in syllables],
            "types": [self._types.get(s, 0) for s in syllables],
            "titles": [self._titles.get(s, 0) for s in syllables],
            "pairs": pairs,
            "pair_titles": pair_titles,
        }

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> CountsVocabulary:
        """Rebuild from ``to_payload`` output; rejects other formats and versions."""
        if payload.get("format") != FORMAT or payload.get("version") != FORMAT_VERSION:
            raise ValueError(
                f"not a {FORMAT} v{FORMAT_VERSION} payload: "
                f"{payload.get('format')!r} v{payload.get('version')!r}"
            )
        syllables: list[str] = payload["syllables"]
        pairs: list[int] = payload["pairs"]
        pair_titles: list[int] = payload["pair_titles"]
        return cls(
            dict(zip(syllables, payload["counts"], strict=True)),
            {
                (syllables[pairs[i]], syllables[pairs[i + 1]]): pairs[i + 2]
                for i in range(0, len(pairs), 3)
            },
            titles=dict(zip(syllables, payload["titles"], strict=True)),
            pair_titles={
                (syllables[pair_titles[i]], syllables[pair_titles[i + 1]]): (
                    pair_titles[i + 2],
                    pair_titles[i + 3],
                )
                for i in range(0, len(pair_titles), 4)
            },
            follower_types=dict(zip(syllables, payload["types"], strict=True)),
        )

    def to_json(self) -> str:
        """Compact JSON text (UTF-8 friendly, no spaces)."""
        return json.dumps(self.to_payload(), ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes) -> CountsVocabulary:
        """Inverse of ``to_json``."""
        return cls.from_payload(json.loads(text))

    def save(self, path: str | Path) -> None:
        """Write the JSON sidecar; gzip-compressed when the name ends in ``.gz``."""
        data = self.to_json().encode("utf-8")
        path = Path(path)
        if path.suffix == ".gz":
            data = gzip.compress(data, mtime=0)
        path.write_bytes(data)

    @classmethod
    def load(cls, path: str | Path) -> CountsVocabulary:
        """Read a sidecar written by ``save``."""
        path = Path(path)
        data = path.read_bytes()
        if path.suffix == ".gz":
            data = gzip.decompress(data)
        return cls.from_json(data)

    def __getstate__(self) -> dict[str, Any]:
        """Pickle the compact payload, not the derived indexes: smaller, and re-interned on load."""
        return self.to_payload()

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(CountsVocabulary.from_payload(state).__dict__)


def vocabulary_arrays(counts: AccentCounts, *, min_pair_count: int = 1) -> VocabularyArrays:
    """The model ``CountsVocabulary.from_tally`` keeps of exact counts, as arrays for
    ``MappedVocabulary``: the same pruning and capitalisation exceptions, computed with numpy."""
    syllables = counts.syllables
    unigrams, titles = counts.unigrams[:, 0], counts.unigrams[:, 1]
    keys, pair_counts = counts.pairs.keys, counts.pairs.counts
    first = (keys >> np.uint64(32)).astype(np.int64)
    second = (keys & np.uint64(0xFFFFFFFF)).astype(np.int64)
    types = np.bincount(first, minlength=len(syllables)).astype(np.int64)
    kept = pair_counts[:, 0] >= min_pair_count
    count = pair_counts[kept, 0]
    usually_title = titles >= TITLE_THRESHOLD * unigrams
    overrules = (
        (pair_counts[kept, 1] >= TITLE_THRESHOLD * count) != usually_title[first[kept]]
    ) | ((pair_counts[kept, 2] >= TITLE_THRESHOLD * count) != usually_title[second[kept]])
    folds = fixed_width(counts.folded)
    fold_keys, fold_of = np.unique(folds, return_inverse=True)
    members = np.lexsort((np.arange(len(syllables)), -unigrams, fold_of))
    fold_starts = np.searchsorted(fold_of[members], np.arange(len(fold_keys) + 1))
    return VocabularyArrays(
        syllables=syllables,
        counts=unigrams.copy(),
        titles=titles.copy(),
        types=types,
        fold_keys=StringArray.from_bytes(fold_keys.tolist()),
        fold_starts=fold_starts.astype(np.int64),
        fold_members=members.astype(np.int32),
        pair_keys=keys[kept],
        pair_counts=count.copy(),
        cased_keys=keys[kept][overrules],
        cased=pair_counts[kept][overrules][:, 1:].copy(),
    )


class MappedVocabulary:
    """A ``CasedAccentVocabulary`` over ``VocabularyArrays``: the same answers as the
    ``CountsVocabulary`` of the same counts, read from memory-mapped files that every worker
    shares instead of dicts each worker builds (hundreds of bytes a pair).

    A syllable is found by binary search in the sorted syllables, then known by its id; a pair
    (``first id << 32 | second id``) by binary search in the sorted pairs.  Queries keep asking
    about the same few thousand syllables and pairs, so the answers are kept in small dicts (at
    most ``CACHED`` entries each, emptied when full).  The decoder asks for all the pairs of two
    positions at once (``pair_table``): a large table is one vectorised search.
    """

    CACHED = 100_000

    def __init__(self, arrays: VocabularyArrays) -> None:
        self.arrays = arrays
        self._total = int(arrays.counts.sum())
        self._ids: dict[str, tuple[int, int, int, int]] = {}
        self._variants: dict[str, Mapping[str, int]] = {}
        self._cased: dict[int, tuple[int, int] | None] = {}

    # -- lookups ------------------------------------------------------------------------------

    def _syllable(self, syllable: str) -> tuple[int, int, int, int]:
        """The syllable's id, count, capitalised count and follower types (id -1: unknown)."""
        found = self._ids.get(syllable)
        if found is None:
            i = self.arrays.syllables.find(syllable)
            arrays = self.arrays
            found = (
                (i, int(arrays.counts[i]), int(arrays.titles[i]), int(arrays.types[i]))
                if i >= 0
                else (-1, 0, 0, 0)
            )
            if len(self._ids) >= self.CACHED:
                self._ids.clear()
            self._ids[syllable] = found
        return found

    def _id(self, syllable: str) -> int:
        return self._syllable(syllable)[0]

    def _search(self, keys: np.ndarray, table: np.ndarray) -> np.ndarray:
        """Each key's row in sorted ``table``, -1 where it is not there."""
        if not table.size:
            return np.full(keys.size, -1, dtype=np.int64)
        slots = np.minimum(np.searchsorted(table, keys), table.size - 1)
        return np.where(table[slots] == keys, slots, -1)

    def _pair_counts(self, keys: np.ndarray) -> np.ndarray:
        if not self.arrays.pair_counts.size:  # no pair kept (a small index)
            return np.zeros(keys.size, dtype=np.int64)
        rows = self._search(keys, self.arrays.pair_keys)
        return np.where(rows >= 0, self.arrays.pair_counts[np.maximum(rows, 0)], 0)

    def pair_tables(self, columns: list[list[str]]) -> list[list[list[int]] | None]:
        """``pair_table`` of every two neighbouring ``columns`` (``None`` first), from one
        vectorised search: the decoder asks about hundreds of pairs a query, too varied to
        keep, and numpy's cost is mostly per call."""
        known, find = self._ids, self._syllable
        ids = [[(known.get(w) or find(w))[0] for w in column] for column in columns]
        keys = [
            (x << 32) | y if x >= 0 and y >= 0 else _NO_PAIR
            for firsts, seconds in pairwise(ids)
            for x in firsts
            for y in seconds
        ]
        counts = self._pair_counts(np.array(keys, dtype=np.uint64)).tolist()
        tables: list[list[list[int]] | None] = [None]
        start = 0
        for firsts, seconds in pairwise(ids):
            n = len(seconds)
            tables.append([counts[start + i * n : start + (i + 1) * n] for i in range(len(firsts))])
            start += n * len(firsts)
        return tables

    def best_path(self, lattice: list[tuple[list[str], list[int]]]) -> list[int] | None:
        """``_viterbi``'s choice at each position of ``lattice`` (the candidate's rank there),
        decoded by the compiled loop (``kernels.best_path``); ``None`` where it does not run."""
        known, find = self._ids, self._syllable
        starts, ids, counts, types = [0], [], [], []
        for words, word_counts in lattice:
            for word in words:
                found = known.get(word) or find(word)
                ids.append(found[0])
                types.append(found[3])
            counts += word_counts
            starts.append(len(ids))
        arrays = self.arrays
        return kernels.best_path(
            starts,
            ids,
            counts,
            types,
            arrays.pair_keys,
            arrays.pair_counts,
            self.total + UNIGRAM_K,
            DISCOUNT,
            UNIGRAM_K,
        )

    def pair_table(self, firsts: list[str], seconds: list[str]) -> list[list[int]]:
        """``pair_count(f, s)`` for every ``f`` in ``firsts`` (rows) and ``s`` in ``seconds``."""
        return self.pair_tables([firsts, seconds])[1]  # type: ignore[return-value]

    def _cased_counts(self, first: str, second: str) -> tuple[int, int] | None:
        """How often the pair's first and second syllable were capitalised, for a pair that
        overrules its words' usual case (``None`` otherwise)."""
        a, b = self._id(first), self._id(second)
        if a < 0 or b < 0:
            return None
        key = (a << 32) | b
        if key not in self._cased:
            row = int(self._search(np.array([key], dtype=np.uint64), self.arrays.cased_keys)[0])
            if len(self._cased) >= self.CACHED:
                self._cased.clear()
            self._cased[key] = tuple(self.arrays.cased[row].tolist()) if row >= 0 else None
        return self._cased[key]

    # -- AccentVocabulary ---------------------------------------------------------------------

    @property
    def total(self) -> int:
        return self._total

    def variants(self, folded: str) -> Mapping[str, int]:
        """Accented spellings of a folded syllable with their frequencies, most frequent first."""
        cached = self._variants.get(folded)
        if cached is not None:
            return cached
        arrays = self.arrays
        k = arrays.fold_keys.find(folded)
        if k < 0:
            found: Mapping[str, int] = _EMPTY
        else:
            members = arrays.fold_members[arrays.fold_starts[k] : arrays.fold_starts[k + 1]]
            found = MappingProxyType(
                {arrays.syllables[int(i)]: int(arrays.counts[i]) for i in members}
            )
        if len(self._variants) >= self.CACHED:
            self._variants.clear()
        self._variants[folded] = found
        return found

    def folded_counts(self) -> Iterator[tuple[str, int]]:
        """Every folded spelling with the total count of its accented forms (what a typo table
        is built from), most frequent form first as ``CountsVocabulary`` gives them."""
        arrays = self.arrays
        if not arrays.fold_members.size:
            return
        totals = np.add.reduceat(arrays.counts[arrays.fold_members], arrays.fold_starts[:-1])
        first = arrays.fold_members[arrays.fold_starts[:-1]]
        order = np.lexsort((first, -arrays.counts[first]))
        for k, total in zip(order.tolist(), totals[order].tolist(), strict=True):
            yield arrays.fold_keys[k], total

    def followers(self, first: str) -> Mapping[str, int]:
        """Syllables seen right after ``first`` with the pair frequencies."""
        a = self._id(first)
        if a < 0:
            return _EMPTY
        keys = self.arrays.pair_keys
        lo, hi = np.searchsorted(keys, np.array([a << 32, (a + 1) << 32], dtype=np.uint64))
        seconds = (keys[lo:hi] & np.uint64(0xFFFFFFFF)).tolist()
        counts = self.arrays.pair_counts[lo:hi].tolist()
        return {self.arrays.syllables[b]: c for b, c in zip(seconds, counts, strict=True)}

    def follower_types(self, first: str) -> int:
        return self._syllable(first)[3]

    # -- CasedAccentVocabulary ----------------------------------------------------------------

    def title_share(self, syllable: str) -> float:
        _, count, titles, _ = self._syllable(syllable)
        return titles / count if count else 0.0

    def pair_title_shares(self, first: str, second: str) -> tuple[float, float] | None:
        cased = self._cased_counts(first, second)
        if cased is None:
            return None
        count = self.pair_count(first, second)
        return (cased[0] / count, cased[1] / count) if count else None

    # -- conveniences -------------------------------------------------------------------------

    def count(self, syllable: str) -> int:
        return self._syllable(syllable)[1]

    def pair_count(self, first: str, second: str) -> int:
        return self.pair_table([first], [second])[0][0]

    def __len__(self) -> int:
        return len(self.arrays.syllables)

    @property
    def pair_total(self) -> int:
        return int(self.arrays.pair_keys.size)

    def frequent_terms(self, limit: int) -> list[str]:
        """``CountsVocabulary.frequent_terms``, over the arrays."""
        arrays = self.arrays
        syllables = arrays.syllables.tolist()
        scored: dict[str, int] = {}
        for syllable, count in zip(syllables, arrays.counts.tolist(), strict=True):
            folded = fold(syllable)
            scored[folded] = scored.get(folded, 0) + count
            if folded != syllable:
                scored[syllable] = count
        ranked = heapq.nlargest(limit, scored.values())
        floor = ranked[-1] // 4 if ranked else 0
        rows = np.flatnonzero(arrays.pair_counts >= floor)
        keys = arrays.pair_keys[rows]
        firsts = (keys >> np.uint64(32)).tolist()
        seconds = (keys & np.uint64(0xFFFFFFFF)).tolist()
        for a, b, count in zip(firsts, seconds, arrays.pair_counts[rows].tolist(), strict=True):
            pair = f"{fold(syllables[a])} {fold(syllables[b])}"
            scored[pair] = scored.get(pair, 0) + count
        best = heapq.nlargest(limit, scored.items(), key=lambda kv: (kv[1], kv[0]))
        return [term for term, _ in best]

    def to_counts(self) -> CountsVocabulary:
        """The same model as a ``CountsVocabulary`` (to compare two vocabularies)."""
        arrays = self.arrays
        syllables = arrays.syllables.tolist()

        def pairs(keys: np.ndarray) -> list[tuple[str, str]]:
            firsts = (keys >> np.uint64(32)).tolist()
            seconds = (keys & np.uint64(0xFFFFFFFF)).tolist()
            return [(syllables[a], syllables[b]) for a, b in zip(firsts, seconds, strict=True)]

        return CountsVocabulary(
            dict(zip(syllables, arrays.counts.tolist(), strict=True)),
            dict(zip(pairs(arrays.pair_keys), arrays.pair_counts.tolist(), strict=True)),
            titles=dict(zip(syllables, arrays.titles.tolist(), strict=True)),
            pair_titles={
                pair: (int(f), int(s))
                for pair, (f, s) in zip(pairs(arrays.cased_keys), arrays.cased, strict=True)
            },
            follower_types=dict(zip(syllables, arrays.types.tolist(), strict=True)),
        )

    def __repr__(self) -> str:
        return f"MappedVocabulary({len(self)} syllables, {self.pair_total} pairs)"


def _intern(syllable: str) -> str:
    """Share one string object per syllable between the unigram, pair and fold tables.

    ``sys.intern`` rather than a module-level table: interned strings die with their last user, so
    an old index generation's vocabulary is freed when the engine drops it.
    """
    return sys.intern(syllable)


# -- decoding ---------------------------------------------------------------------------------


# Decoded runs per vocabulary: a plain unaccented query is decoded twice (its concepts, then the
# suggestion text: the same words), and popular queries come back.
RESTORE_CACHE = 4096


def restore(syllables: list[str], vocab: AccentVocabulary) -> list[str] | None:
    """``_restore``, remembered per vocabulary (an attribute of it: vocabularies compare by value
    and cannot be dictionary keys) for the last ``RESTORE_CACHE`` inputs.

    The decoding sees only each syllable's canonical spelling, so it is remembered under those:
    the concepts (``gia``) and the suggestion text (``Gia``) share one decoding.  The first kept
    its capitals in the key, and a capitalised query was decoded twice (1,285 decodings for 1,000
    queries of ``bench.latency``).
    """
    cache = getattr(vocab, "_restore_cache", None)
    if cache is None:
        cache = {}
        try:
            vocab._restore_cache = cache  # type: ignore[attr-defined]
        except AttributeError:  # a vocabulary without attributes of its own: no memory
            return _restore(syllables, vocab)
    key = tuple(canonical_syllable(s) for s in syllables)
    if key in cache:
        chosen = cache[key]
    else:
        chosen = _choices(list(key), vocab)
        if len(cache) >= RESTORE_CACHE:
            cache.clear()
        cache[key] = chosen
    return _as_typed(chosen, syllables)


def _as_typed(chosen: tuple[str | None, ...] | None, syllables: list[str]) -> list[str] | None:
    """The chosen spellings, and every other syllable exactly as typed."""
    if chosen is None:
        return None
    return [
        word if word is not None else given for word, given in zip(chosen, syllables, strict=True)
    ]


def _restore(syllables: list[str], vocab: AccentVocabulary) -> list[str] | None:
    """``restore`` without its memory."""
    chosen = _choices(syllables, vocab)
    return _as_typed(chosen, syllables)


def _choices(syllables: list[str], vocab: AccentVocabulary) -> tuple[str | None, ...] | None:
    """The most likely accented spelling of ``syllables``, or ``None`` when it changes nothing.

    Input: syllables as typed (``['lao', 'cai']``); a syllable that already carries diacritics is
    kept and only constrains its neighbours.  Output, per position: the chosen canonical accented
    syllable for each unaccented one the corpus knows, ``None`` for every other item (unknown
    words, numbers, fixed accented syllables: ``restore`` gives them back exactly as typed).
    ``None`` when nothing is known or the best path keeps every unaccented syllable as typed.
    """
    lattice: list[tuple[list[str], list[int]]] = []  # candidates and their counts, per position
    keys: list[str | None] = []  # canonical form of each free syllable, for the "changed?" test
    has_choice = False
    for syllable in syllables:
        if has_diacritics(syllable):
            word = canonical_syllable(syllable)
            lattice.append(([word], [vocab.variants(fold(word)).get(word, 0)]))
            keys.append(None)
            continue
        key = canonical_syllable(syllable)  # lower case; ``ky`` -> ``ki`` as the index spells it
        options = vocab.variants(key)
        if not options:
            lattice.append(([key], [0]))
            keys.append(None)
            continue
        ranked = sorted(options.items(), key=lambda kv: (-kv[1], kv[0]))[:MAX_VARIANTS]
        lattice.append(([w for w, _ in ranked], [c for _, c in ranked]))
        keys.append(key)
        has_choice = True
    if not has_choice:
        return None

    path = _viterbi(lattice, vocab)
    if all(key is None or word == key for word, key in zip(path, keys, strict=True)):
        return None
    return tuple(word if key is not None else None for word, key in zip(path, keys, strict=True))


def pair_tables(vocab: AccentVocabulary, columns: list[list[str]]) -> list[list[list[int]] | None]:
    """``pair_table`` of every two neighbouring ``columns`` (``None`` at position 0), all at
    once when the vocabulary can (``MappedVocabulary``: one search for the whole lattice); else
    ``None`` everywhere, and the decoder asks ``pair_table`` where it needs one."""
    own = getattr(vocab, "pair_tables", None)
    return own(columns) if own is not None else [None] * len(columns)


def pair_table(vocab: AccentVocabulary, firsts: list[str], seconds: list[str]) -> list[list[int]]:
    """The count of every pair (``firsts[j]``, ``seconds[i]``) as ``rows[j][i]`` (0: unseen).

    A vocabulary with a ``pair_table`` of its own answers all at once (``MappedVocabulary``: one
    vectorised search); any other through ``followers``.
    """
    own = getattr(vocab, "pair_table", None)
    if own is not None:
        return own(firsts, seconds)
    rows = []
    for first in firsts:
        seen = vocab.followers(first)
        rows.append([seen.get(w, 0) for w in seconds] if seen else [0] * len(seconds))
    return rows


def _viterbi(lattice: list[tuple[list[str], list[int]]], vocab: AccentVocabulary) -> list[str]:
    """Best candidate per position under the interpolated bigram model (log space).

    A mapped vocabulary (a server's) decodes through a compiled loop, the same float64
    operations in the same order (``MappedVocabulary.best_path``); any other, or where numba
    does not run, the loop below (``_viterbi_python``)."""
    own = getattr(vocab, "best_path", None)
    path = own(lattice) if own is not None else None
    if path is not None:
        return [words[i] for (words, _), i in zip(lattice, path, strict=True)]
    return _viterbi_python(lattice, vocab)


def _viterbi_python(
    lattice: list[tuple[list[str], list[int]]], vocab: AccentVocabulary
) -> list[str]:
    """``_viterbi`` in Python."""
    log = math.log
    total = vocab.total + UNIGRAM_K
    follower_types = vocab.follower_types
    tables = pair_tables(vocab, [words for words, _ in lattice])
    back: list[list[int]] = []
    prev_words: list[str] = []
    prev_counts: list[int] = []
    prev_scores: list[float] = []
    for position, (words, counts) in enumerate(lattice):
        unigram = [(c + UNIGRAM_K) / total for c in counts]
        log_unigram = [log(u) for u in unigram]
        # Unknown syllables (count 0 on either side) carry no pair evidence: treat them as a
        # boundary, so they neither favour nor penalise the candidates around them.
        linked = position > 0 and any(counts) and any(prev_counts)
        if not linked:
            if position == 0:
                scores, pointers = log_unigram, [0] * len(words)
            else:
                best = max(range(len(prev_scores)), key=prev_scores.__getitem__)
                scores = [prev_scores[best] + u for u in log_unigram]
                pointers = [best] * len(words)
        else:
            # Unseen pairs: λ(v) P(w), so the best previous candidate is the same for every w.
            weights = [
                DISCOUNT * (follower_types(word) + 1) / (count + 1)
                for word, count in zip(prev_words, prev_counts, strict=True)
            ]
            bases = [score + log(w) for score, w in zip(prev_scores, weights, strict=True)]
            best = max(range(len(bases)), key=bases.__getitem__)
            scores = [bases[best] + u for u in log_unigram]
            pointers = [best] * len(words)
            # Seen pairs add (c(v,w) - D) / c(v) on top: every (previous, current) pair's count.
            for j, row in enumerate(tables[position] or pair_table(vocab, prev_words, words)):
                if not any(row):
                    continue
                inverse_context = 1.0 / max(prev_counts[j], 1)
                weight, score = weights[j], prev_scores[j]
                for i, pair in enumerate(row):
                    if pair:
                        candidate = score + log(
                            (pair - DISCOUNT) * inverse_context + weight * unigram[i]
                        )
                        if candidate > scores[i]:
                            scores[i], pointers[i] = candidate, j
        back.append(pointers)
        prev_words, prev_counts, prev_scores = words, counts, scores

    index = max(range(len(prev_scores)), key=prev_scores.__getitem__)
    chosen: list[str] = []
    for position in range(len(lattice) - 1, -1, -1):
        chosen.append(lattice[position][0][index])
        index = back[position][index]
    chosen.reverse()
    return chosen


def restore_query(text: str, vocab: CasedAccentVocabulary) -> str | None:
    """``text`` with its unaccented words restored (``ha noi`` -> ``Hà Nội``), or ``None``.

    Runs of words separated only by spaces are decoded together; punctuation splits the query,
    as it split the pairs the vocabulary was counted from.  Words the model leaves alone keep the
    user's exact spelling.  A restored word copies the user's capitalisation when they used any
    (``LAO CAI`` -> ``LÀO CAI``, ``Gia vang`` -> ``Giá vàng``); a lower-case one follows the corpus
    (``lao cai`` -> ``Lào Cai``, ``gia vang`` -> ``giá vàng``).
    """
    text = normalize(text)
    matches = list(_TOKEN_RE.finditer(text))
    words = [match.group() for match in matches]
    changed = False
    segment: list[int] = []  # indexes into ``words`` of the current space-separated run

    def flush() -> None:
        nonlocal changed
        if segment:
            originals = [words[k] for k in segment]
            restored = restore(originals, vocab)
            if restored is not None:
                for k, word in zip(
                    segment, _cased_segment(originals, restored, vocab), strict=True
                ):
                    changed = changed or word != words[k]
                    words[k] = word
            segment.clear()

    end = 0
    for k, match in enumerate(matches):
        if not text[end : match.start()].isspace():
            flush()
        end = match.end()
        if _DIGIT_RE.search(match.group()):
            flush()
        else:
            segment.append(k)
    flush()
    if not changed:
        return None
    pieces: list[str] = []
    end = 0
    for match, word in zip(matches, words, strict=True):
        pieces += (text[end : match.start()], word)
        end = match.end()
    pieces.append(text[end:])
    return "".join(pieces)


def _cased_segment(
    originals: list[str], restored: list[str], vocab: CasedAccentVocabulary
) -> list[str]:
    """Case one restored segment.

    Accented words the user typed stay exactly as typed; unknown words keep their letters.  Every
    word follows the user's capitals when they used any, else the corpus: that includes a
    word whose letters did not change, so ``lao cai`` gives ``Lào Cai``, not ``Lào cai``.
    """
    lowered = [canonical_syllable(word) for word in restored]
    out: list[str] = []
    for i, (original, word) in enumerate(zip(originals, restored, strict=True)):
        if has_diacritics(original):
            out.append(original)  # fixed by the user
            continue
        if word == canonical_syllable(original):
            word = original.lower()  # same syllable (``ky`` = ``ki``): keep the user's letters
        if original.isupper() and len(original) > 1:
            out.append(word.upper())
        elif original[:1].isupper() or _corpus_capitalises(lowered, i, vocab):
            out.append(word[:1].upper() + word[1:])
        else:
            out.append(word)
    return out


def _corpus_capitalises(words: list[str], i: int, vocab: CasedAccentVocabulary) -> bool:
    """Whether the corpus writes ``words[i]`` capitalised in this context.

    Seen neighbouring pairs decide when there are any (``Cai`` in ``Lào Cai`` but ``cai`` in
    ``cai nghiện``); a word with no seen neighbour falls back to its overall share.
    """
    shares: list[float] = []
    if i > 0:
        left = vocab.pair_title_shares(words[i - 1], words[i])
        if left is not None:
            shares.append(left[1])
    if i + 1 < len(words):
        right = vocab.pair_title_shares(words[i], words[i + 1])
        if right is not None:
            shares.append(right[0])
    if shares:
        return max(shares) >= TITLE_THRESHOLD
    return vocab.title_share(words[i]) >= TITLE_THRESHOLD
