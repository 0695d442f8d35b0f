"""The accent vocabulary's files: exact counts (for the indexer) and the derived vocabulary
(memory-mapped by every worker).

``AccentCounts`` is every syllable and adjacent pair of the generation's text, nothing pruned, so
an incremental run adds the counts of its new documents and subtracts those of the documents it
deleted or replaced.  ``VocabularyArrays`` is what ``accents.MappedVocabulary`` reads: the pruned
model (``accents.vocabulary_arrays``), laid out for lookups by binary search.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, fields
from operator import itemgetter
from pathlib import Path

import numpy as np

from ..text import fold
from .counts import (
    CountsMismatch,
    KeyCounts,
    load_counts,
    pair_ids,
    pair_keys,
    remap_keys,
    save_counts,
    union,
)
from .strings import StringArray, load_array, save_array

Pair = tuple[str, str]


@dataclass
class AccentTally:
    """Counts of some texts (``accents.count_texts``); negative after ``subtract``."""

    unigrams: Counter[str] = field(default_factory=Counter)
    titles: Counter[str] = field(default_factory=Counter)
    bigrams: Counter[Pair] = field(default_factory=Counter)
    first_titles: Counter[Pair] = field(default_factory=Counter)
    second_titles: Counter[Pair] = field(default_factory=Counter)

    def subtract(self, other: AccentTally) -> None:
        for name in ("unigrams", "titles", "bigrams", "first_titles", "second_titles"):
            getattr(self, name).subtract(getattr(other, name))

    def merge(self, other: AccentTally) -> None:
        """Add ``other``'s counts (one batch's, as a build goes)."""
        for name in ("unigrams", "titles", "bigrams", "first_titles", "second_titles"):
            getattr(self, name).update(getattr(other, name))


@dataclass(frozen=True)
class AccentBatch:
    """One batch's counts as arrays (``accent_tally.count_batch``), as a pool worker sends them:
    its ``syllables`` (numbered in first-seen order, each once), their ``unigrams`` (occurrences,
    capitalised occurrences away from a sentence start) and its pairs (``first << 32 | second``
    of those numbers, sorted unique) with (occurrences, first capitalised, second capitalised)."""

    syllables: list[str]
    unigrams: np.ndarray
    pair_keys: np.ndarray
    pair_counts: np.ndarray

    @classmethod
    def empty(cls) -> AccentBatch:
        no_pairs = np.zeros((0, 3), np.int32)
        return cls([], np.zeros((0, 2), np.int32), np.zeros(0, np.uint64), no_pairs)


class AccentRun:
    """The batches of a run added up (``indexer.VocabularyCount``), in the writer, in arrays.

    Syllables are numbered as they first come (a dictionary of the run's syllables: a few
    hundred thousand strings, the only Python objects kept); each batch's numbers are mapped to
    the run's, its unigrams added in place and its pairs kept as they come until they hold
    ``fold_rows`` rows, then summed into the table (``KeyCounts``).  ``counts`` gives the
    ``AccentCounts`` of the run: the same, key for key, as ``AccentCounts.add`` of the batches'
    ``Counter`` tallies.
    """

    def __init__(self, fold_rows: int) -> None:
        self.fold_rows = fold_rows
        self.numbers: dict[str, int] = {}
        self.unigrams = np.zeros((0, 2), np.int64)
        self.pairs = KeyCounts.empty(3)
        self._keys: list[np.ndarray] = []
        self._counts: list[np.ndarray] = []
        self._held = 0
        self.folds = 0

    def add(self, batch: AccentBatch) -> None:
        numbers = self.numbers
        for word in batch.syllables:  # a few thousand a batch, most known already
            if word not in numbers:
                numbers[word] = len(numbers)
        if not batch.syllables:
            return
        words = batch.syllables
        ours = np.fromiter(map(numbers.__getitem__, words), np.int64, len(words))
        if len(numbers) > self.unigrams.shape[0]:
            grown = np.zeros((max(len(numbers), 2 * self.unigrams.shape[0]), 2), np.int64)
            grown[: self.unigrams.shape[0]] = self.unigrams
            self.unigrams = grown
        self.unigrams[ours] += batch.unigrams  # numbers of one batch are unique
        keys = batch.pair_keys
        if keys.size:
            self._keys.append(remap_keys(keys, ours))
            self._counts.append(batch.pair_counts)
            self._held += keys.size
            if self._held >= self.fold_rows:
                self._fold()

    def _fold(self) -> None:
        if not self._keys:
            return
        counts = np.concatenate(self._counts).astype(np.int64)  # batches send int32
        pending = KeyCounts.from_rows(np.concatenate(self._keys), counts)
        self.pairs = self.pairs.add(pending.keys, pending.counts)
        self._keys, self._counts, self._held = [], [], 0
        self.folds += 1

    def tally(self) -> AccentTally:
        """The run's counts as a ``Counter`` tally: what an incremental run of a few hundred
        documents hands to ``AccentCounts.add`` (one pass over the generation's tables, where
        arrays would take one to merge and another for the removed documents' tally)."""
        words = list(self.numbers)
        rows = self.unigrams[: len(words)]
        tally = AccentTally()
        for column, counter in ((0, tally.unigrams), (1, tally.titles)):
            counts = rows[:, column]
            held = np.flatnonzero(counts).tolist()
            counter.update(dict(zip([words[i] for i in held], counts[held].tolist(), strict=True)))
        pending = KeyCounts.from_rows(
            np.concatenate([self.pairs.keys, *self._keys]),
            np.concatenate([self.pairs.counts, *self._counts]).astype(np.int64),
        )
        firsts, seconds = pair_ids(pending.keys)
        pairs = [
            (words[a], words[b]) for a, b in zip(firsts.tolist(), seconds.tolist(), strict=True)
        ]
        counters = (tally.bigrams, tally.first_titles, tally.second_titles)
        for column, counter in enumerate(counters):
            counts = pending.counts[:, column]
            held = np.flatnonzero(counts).tolist()
            counter.update(dict(zip([pairs[i] for i in held], counts[held].tolist(), strict=True)))
        return tally

    def counts(self) -> AccentCounts:
        """The run's counts, by sorted syllable (``AccentCounts``)."""
        self._fold()
        words = list(self.numbers)
        if not words:
            return AccentCounts.empty()
        lexicon, _, ids = union(StringArray.empty(), words)
        old_to_new = np.fromiter(map(ids.__getitem__, words), np.int64, len(words))
        unigrams = np.zeros((len(words), 2), np.int64)
        unigrams[old_to_new] = self.unigrams[: len(words)]
        pairs = KeyCounts.from_rows(remap_keys(self.pairs.keys, old_to_new), self.pairs.counts)
        folded = StringArray.from_strings(fold(word) for word in lexicon.tolist())
        return AccentCounts(lexicon, folded, unigrams, pairs)


@dataclass(frozen=True)
class AccentCounts:
    """Exact counts: ``syllables`` sorted, ``unigrams[i]`` = (occurrences, capitalised
    occurrences away from a sentence start) of syllable ``i``; ``pairs`` keyed by
    ``first id << 32 | second id`` with (occurrences, first capitalised, second capitalised)."""

    syllables: StringArray
    folded: StringArray  # each syllable folded (``text.fold``), kept to derive the model fast
    unigrams: np.ndarray
    pairs: KeyCounts

    @classmethod
    def empty(cls) -> AccentCounts:
        return cls(
            StringArray.empty(), StringArray.empty(), np.zeros((0, 2), np.int64), KeyCounts.empty(3)
        )

    def add(self, tally: AccentTally) -> AccentCounts:
        """These counts plus ``tally`` (its negative counts subtract)."""
        words = set(tally.unigrams) | set(tally.titles)
        for pairs in (tally.bigrams, tally.first_titles, tally.second_titles):
            words.update(map(itemgetter(0), pairs))
            words.update(map(itemgetter(1), pairs))
        lexicon, old_to_new, ids, folded = self._grown(sorted(words))
        unigrams = np.zeros((len(lexicon), 2), np.int64)
        unigrams[old_to_new] = self.unigrams
        for column, counter in enumerate((tally.unigrams, tally.titles)):
            if counter:
                at = np.fromiter(map(ids.__getitem__, counter), np.int64, len(counter))
                np.add.at(unigrams[:, column], at, np.fromiter(counter.values(), np.int64))
        pairs = self.pairs.remap(old_to_new).add(*_pair_rows(tally, ids))
        return AccentCounts(lexicon, folded, unigrams, pairs).without_unused()

    def merge(self, other: AccentCounts) -> AccentCounts:
        """These counts plus ``other`` (an incremental run's counts of its new documents, folded
        as the run went: ``indexer.VocabularyCount``)."""
        if not len(other.syllables):
            return self
        words = other.syllables.tolist()
        lexicon, old_to_new, ids, folded = self._grown(words)
        other_to_new = np.fromiter(map(ids.__getitem__, words), np.int64, len(words))
        unigrams = np.zeros((len(lexicon), 2), np.int64)
        unigrams[old_to_new] = self.unigrams
        unigrams[other_to_new] += other.unigrams  # ids are unique: no repeated rows
        theirs = other.pairs.remap(other_to_new)
        pairs = self.pairs.remap(old_to_new).add(theirs.keys, theirs.counts)
        return AccentCounts(lexicon, folded, unigrams, pairs).without_unused()

    def _grown(
        self, words: list[str]
    ) -> tuple[StringArray, np.ndarray, dict[str, int], StringArray]:
        """The lexicon with ``words`` (sorted) it lacks, each old id's new id, each word's id and
        every syllable's folding (computed for the new ones only)."""
        lexicon, old_to_new, ids = union(self.syllables, words)
        if len(lexicon) == len(self.syllables):  # no new syllable: every id and folding stays
            return lexicon, old_to_new, ids, self.folded
        fresh = np.ones(len(lexicon), dtype=bool)
        fresh[old_to_new] = False
        at = np.empty(len(lexicon), dtype=np.int64)  # where each syllable's folding comes from
        at[old_to_new] = np.arange(old_to_new.size)
        at[fresh] = old_to_new.size + np.arange(int(fresh.sum()))
        new_folds = StringArray.from_strings(fold(lexicon[i]) for i in np.flatnonzero(fresh))
        folded = StringArray.concat([self.folded, new_folds]).take(at)
        return lexicon, old_to_new, ids, folded

    def without_unused(self) -> AccentCounts:
        """Syllables whose count fell to 0 dropped (no pair can hold them any more)."""
        if np.any(self.unigrams < 0):
            raise CountsMismatch("a syllable counted below zero")
        keep = self.unigrams[:, 0] > 0
        if keep.all():
            return self
        old_to_new = np.cumsum(keep) - 1
        rows = np.flatnonzero(keep)
        first, second = pair_ids(self.pairs.keys)
        if not (keep[first].all() and keep[second].all()):
            raise CountsMismatch("a pair of a syllable counted zero times")
        return AccentCounts(
            self.syllables.take(rows),
            self.folded.take(rows),
            self.unigrams[rows],
            self.pairs.remap(old_to_new),
        )

    def save(self, directory: Path) -> None:
        self.syllables.save(directory, "accent-syllables")
        self.folded.save(directory, "accent-folded")
        save_counts(directory / "accent-unigrams.npy", self.unigrams)
        self.pairs.save(directory, "accent-pairs")

    @classmethod
    def load(cls, directory: Path) -> AccentCounts:
        return cls(
            StringArray.load(directory, "accent-syllables"),
            StringArray.load(directory, "accent-folded"),
            load_counts(directory / "accent-unigrams.npy"),
            KeyCounts.load(directory, "accent-pairs"),
        )

    def equals(self, other: AccentCounts) -> bool:
        return (
            self.syllables.tolist() == other.syllables.tolist()
            and self.folded.tolist() == other.folded.tolist()
            and np.array_equal(self.unigrams, other.unigrams)
            and self.pairs.equals(other.pairs)
        )


def _pair_rows(tally: AccentTally, ids: dict[str, int]) -> tuple[np.ndarray, np.ndarray]:
    """The tally's pairs as ``KeyCounts`` rows (keys unique).  Loops in C (``map``): a build
    folds millions of pairs (``indexer.BuildLimits.tally_keys``); ``Counter``'s lookup of a
    missing key runs Python code, so each counter fills its own column."""
    rows = dict.fromkeys(tally.bigrams)
    rows.update(dict.fromkeys(tally.first_titles))
    rows.update(dict.fromkeys(tally.second_titles))
    if not rows:
        return np.zeros(0, np.uint64), np.zeros((0, 3), np.int64)
    ordered = list(rows)
    index = dict(zip(ordered, range(len(ordered)), strict=True))
    first = np.fromiter(map(ids.__getitem__, map(itemgetter(0), ordered)), np.int64, len(ordered))
    second = np.fromiter(map(ids.__getitem__, map(itemgetter(1), ordered)), np.int64, len(ordered))
    counts = np.zeros((len(ordered), 3), np.int64)
    for column, counter in enumerate((tally.bigrams, tally.first_titles, tally.second_titles)):
        if counter:
            at = np.fromiter(map(index.__getitem__, counter), np.int64, len(counter))
            counts[at, column] = np.fromiter(counter.values(), np.int64, len(counter))
    return pair_keys(first, second), counts


@dataclass(frozen=True)
class VocabularyArrays:
    """The pruned accent model, as ``accents.MappedVocabulary`` reads it.

    ``syllables`` sorted (UTF-8 order), with ``counts``, ``titles`` (capitalised mid-sentence) and
    ``types`` (distinct followers before pruning) per syllable.  ``fold_keys`` sorted; the
    syllables folding to ``fold_keys[k]`` are ``fold_members[fold_starts[k]:fold_starts[k + 1]]``,
    most frequent first.  ``pair_keys`` (``first << 32 | second``, sorted) with ``pair_counts``:
    the pairs kept after pruning.  ``cased_keys`` with ``cased``: the kept pairs whose
    capitalisation overrules their words' usual one, and how often each word was capitalised.
    """

    syllables: StringArray
    counts: np.ndarray
    titles: np.ndarray
    types: np.ndarray
    fold_keys: StringArray
    fold_starts: np.ndarray
    fold_members: np.ndarray
    pair_keys: np.ndarray
    pair_counts: np.ndarray
    cased_keys: np.ndarray
    cased: np.ndarray

    def save(self, directory: Path) -> None:
        for item in fields(self):
            value = getattr(self, item.name)
            if isinstance(value, StringArray):
                value.save(directory, f"vocabulary-{item.name}", sorted_=True)
            else:
                save_array(directory / f"vocabulary-{item.name}.npy", value)

    @classmethod
    def load(cls, directory: Path) -> VocabularyArrays:
        values = {}
        for item in fields(cls):
            if item.type == "StringArray":
                values[item.name] = StringArray.load(directory, f"vocabulary-{item.name}")
            else:
                values[item.name] = load_array(directory / f"vocabulary-{item.name}.npy")
        return cls(**values)
