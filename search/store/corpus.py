"""Exact counts over a generation's documents: the accent vocabulary's and the suggestions'.

``CorpusCounts`` pairs ``AccentCounts`` (syllables and pairs of titles, leads and bodies) with
``SuggestCounts`` (phrases and titles).  Counts of documents add up and subtract, so the counts of
a generation are its predecessor's plus the new documents' minus the removed ones': the archive is
never read again.  ``derive_vocabulary`` and ``derive_suggest`` give what the workers read.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ..accent_tally import count_batch, count_texts
from ..accents import vocabulary_arrays
from ..suggest import add_tally, count_titles, table_arrays
from .accent_files import AccentBatch, AccentCounts, AccentTally, VocabularyArrays
from .suggest_files import SuggestArrays, SuggestCounts, SuggestTally

# A pair seen once says little and doubles the vocabulary's size: pruned when the model is derived.
MIN_PAIR_COUNT = 2
TextFields = tuple[str, str, str]  # a document's title, lead and body


@dataclass
class CorpusTally:
    """Counts of some documents; ``subtract`` another's to get a delta."""

    accents: AccentTally
    suggest: SuggestTally

    @classmethod
    def of(cls, documents: Iterable[TextFields]) -> CorpusTally:
        tally = cls(AccentTally(), SuggestTally())
        tally.count(documents)
        return tally

    def count(self, documents: Iterable[TextFields]) -> None:
        for title, lead, body in documents:
            count_texts((t for t in (title, lead, body) if t), self.accents)
            count_titles((title or "",), self.suggest)

    def subtract(self, other: CorpusTally) -> None:
        self.accents.subtract(other.accents)
        self.suggest.subtract(other.suggest)

    def merge(self, other: CorpusTally) -> None:
        """Add ``other``'s counts: a build tallies each batch where it is analysed and adds the
        tallies up, so no process ever holds the documents of the whole run."""
        self.accents.merge(other.accents)
        self.suggest.merge(other.suggest)

    def keys(self) -> int:
        """Keys held in all the counters: what the tally's memory grows with (a ``Counter`` key
        is a Python string or a pair of them, ~100-200 bytes each)."""
        accents, suggest = self.accents, self.suggest
        return (
            len(accents.unigrams)
            + len(accents.titles)
            + len(accents.bigrams)
            + len(accents.first_titles)
            + len(accents.second_titles)
            + len(suggest.phrases)
            + len(suggest.titles)
        )


@dataclass
class BatchCounts:
    """One analysed batch's counts as a pool worker sends them: the accent vocabulary's as
    arrays (``accent_tally.count_batch``: a fifth of a build's CPU went to ``Counter``s of it),
    the suggestions' tally (titles only: a few keys a document)."""

    accents: AccentBatch
    suggest: SuggestTally

    @classmethod
    def of(cls, documents: list[TextFields]) -> BatchCounts:
        texts = ([t for t in document if t] for document in documents)
        return cls(count_batch(texts), count_titles(title or "" for title, _, _ in documents))


@dataclass(frozen=True)
class CorpusCounts:
    accents: AccentCounts
    suggest: SuggestCounts

    @classmethod
    def empty(cls) -> CorpusCounts:
        return cls(AccentCounts.empty(), SuggestCounts.empty())

    @classmethod
    def of(cls, documents: Iterable[TextFields]) -> CorpusCounts:
        return cls.empty().add(CorpusTally.of(documents))

    def add(self, tally: CorpusTally) -> CorpusCounts:
        """These counts plus ``tally`` (its negative counts subtract)."""
        return CorpusCounts(self.accents.add(tally.accents), add_tally(self.suggest, tally.suggest))

    def merge(self, other: CorpusCounts) -> CorpusCounts:
        """These counts plus ``other``'s (both exact, nothing negative)."""
        return CorpusCounts(
            self.accents.merge(other.accents),
            SuggestCounts(
                self.suggest.phrases.merge(other.suggest.phrases),
                self.suggest.titles.merge(other.suggest.titles),
            ),
        )

    def is_empty(self) -> bool:
        return not (
            len(self.accents.syllables) or len(self.suggest.phrases) or len(self.suggest.titles)
        )

    def derive_vocabulary(self) -> VocabularyArrays:
        """The accent model the workers read (pairs seen once pruned)."""
        return vocabulary_arrays(self.accents, min_pair_count=MIN_PAIR_COUNT)

    def derive_suggest(self) -> SuggestArrays:
        """The suggestion table the workers read; independent of ``derive_vocabulary``, so the
        two can be derived at once (``store.generation``)."""
        return table_arrays(self.suggest)

    def save(self, directory: Path) -> None:
        self.accents.save(directory)
        self.suggest.save(directory)

    @classmethod
    def load(cls, directory: Path) -> CorpusCounts:
        return cls(AccentCounts.load(directory), SuggestCounts.load(directory))

    def equals(self, other: CorpusCounts) -> bool:
        return self.accents.equals(other.accents) and self.suggest.equals(other.suggest)
