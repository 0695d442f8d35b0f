"""The suggestion table's files: exact counts (for the indexer) and the derived table (memory-mapped
by every worker).

``SuggestCounts`` counts, over the generation's titles, each phrase (a run of one to four words,
keyed by its folded form and spelled as written: ``"lao cai\\0Lào Cai"``) and each whole title
(``"lao cai mua lon\\0Lào Cai mưa lớn"``); nothing is pruned, so an incremental run adds the titles
of its new documents and subtracts those it deleted or replaced.  ``SuggestArrays`` is what
``suggest.SuggestionTable`` reads: the entries ``suggest.table_arrays`` keeps, sorted by folded key.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np

from .counts import StringCounts
from .strings import StringArray, load_array, save_array

SEPARATOR = "\x00"  # between a key's folded form and its spelling: sorts before any character


@dataclass
class SuggestTally:
    """Counts of some titles (``suggest.count_titles``); negative after ``subtract``."""

    phrases: Counter[str] = field(default_factory=Counter)
    titles: Counter[str] = field(default_factory=Counter)

    def subtract(self, other: SuggestTally) -> None:
        self.phrases.subtract(other.phrases)
        self.titles.subtract(other.titles)

    def merge(self, other: SuggestTally) -> None:
        """Add ``other``'s counts (one batch's, as a build goes)."""
        self.phrases.update(other.phrases)
        self.titles.update(other.titles)


@dataclass(frozen=True)
class SuggestCounts:
    """Exact counts.  ``phrases``: ``folded\\0spelling`` -> titles holding it, with fixed values
    per key (``suggest.phrase_attrs``: whether the spelling is a shouted one, a hash of the
    folded part, its spaces); ``titles``: ``folded\\0title`` -> documents with that title, with
    whether it has at most ``suggest.MAX_NGRAM`` words (only then can it be a phrase too), the
    hash and the spaces.  The hash tells most rows of another folded key apart without reading
    them."""

    phrases: StringCounts
    titles: StringCounts

    @classmethod
    def empty(cls) -> SuggestCounts:
        return cls(StringCounts.empty(3), StringCounts.empty(3))

    def save(self, directory: Path) -> None:
        self.phrases.save(directory, "suggest-phrases")
        self.titles.save(directory, "suggest-titles")

    @classmethod
    def load(cls, directory: Path) -> SuggestCounts:
        return cls(
            StringCounts.load(directory, "suggest-phrases"),
            StringCounts.load(directory, "suggest-titles"),
        )

    def equals(self, other: SuggestCounts) -> bool:
        return self.phrases.equals(other.phrases) and self.titles.equals(other.titles)


@dataclass(frozen=True)
class SuggestArrays:
    """Completion entries sorted by folded key: phrases (``keys``, ``texts``, ``weights``) and
    whole titles (``title_keys``, ``title_texts``; weight ``suggest.TITLE_WEIGHT``), no folded key
    in both."""

    keys: StringArray
    texts: StringArray
    weights: np.ndarray
    title_keys: StringArray
    title_texts: StringArray

    def save(self, directory: Path) -> None:
        for item in fields(self):
            value = getattr(self, item.name)
            if isinstance(value, StringArray):
                value.save(directory, f"suggest-{item.name}", sorted_=item.name.endswith("keys"))
            else:
                save_array(directory / f"suggest-{item.name}.npy", value)

    @classmethod
    def load(cls, directory: Path) -> SuggestArrays:
        values = {}
        for item in fields(cls):
            if item.type == "StringArray":
                values[item.name] = StringArray.load(directory, f"suggest-{item.name}")
            else:
                values[item.name] = load_array(directory / f"suggest-{item.name}.npy")
        return cls(**values)
