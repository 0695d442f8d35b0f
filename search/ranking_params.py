"""Every tunable number of the ranking, in one frozen value: ``RankingParams``.

BM25F's ``k1`` applies when a worker reads a term's postings; the field weights and ``b`` are
folded into each document's length norms, written with every generation at commit
(``postings.length_norms``); the signal weights (``Weights``) are what ``ranking.rank`` adds per
signal; ``question_weight`` is what ``query.parse`` gives question words.  The engine passes one
``RankingParams`` to the snapshot, the parser and ``rank``; ``bench.tune`` tries others on the dev
split.  Adding a signal: a field here, a function in ``ranking``, a test in
``tests/test_ranking.py``.  The figures behind each value are in the README and the commits that
set them, not here: they go stale.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace


@dataclass(frozen=True, slots=True)
class Weights:
    """Weights of the ranking signals (tuned on the dev split of ``bench.relevance``)."""

    accented: float = 0.8  # the exact accented syllable, when the query carried diacritics
    restored: float = 0.8  # the accented form restored for an unaccented word (a guess)
    compound: float = 0.4  # pyvi compounds of adjacent query syllables
    compound_longest: int = 3  # syllables in the longest compound looked up
    pair: float = 0.6  # adjacent query syllables adjacent in the document
    pair_pooled: float = 0.4  # the same, for pairs the indexer pooled into a bucket (rare ones)
    # Up to ``tier_max_words`` words, a document holding all of them gains this much score, and as
    # much again when it holds them with the typed diacritics.  A bonus, not a tier: a known
    # article whose text lacks one of the words typed (a title's word the body says otherwise)
    # still outranks weak documents that happen to hold them all.
    all_words_bonus: float = 2.0
    tier_max_words: int = 6  # a longer query is a sentence: missing a word or two is normal
    # Every score is multiplied by (share of the query's counted words the document holds) to this
    # power: coordination, for queries of any length (BM25 alone lets one frequent word carry a
    # document that lacks the others).
    coord: float = 0.3
    match_share: float = 0.5  # a query of 5+ words: share of them a document must hold
    repeat: float = 1.0  # weight of a word's second and later occurrences in the query


FIELD_WEIGHTS = (("title", 6.0), ("lead", 3.0), ("body", 1.0))
FIELD_B = (("title", 0.4), ("lead", 0.3), ("body", 0.75))


@dataclass(frozen=True, slots=True)
class RankingParams:
    """BM25F's constants, the signal weights and the weight of question words."""

    k1: float = 2.0
    field_weights: tuple[tuple[str, float], ...] = FIELD_WEIGHTS
    field_b: tuple[tuple[str, float], ...] = FIELD_B
    question_weight: float = 0.2  # "như thế nào", "bao nhiêu": weigh little, need not match
    signals: Weights = field(default_factory=Weights)

    def field_weight(self, name: str) -> float:
        """The BM25F weight of field ``name``.

        >>> RankingParams().field_weight("lead")
        3.0
        """
        return dict(self.field_weights)[name]

    def b(self, name: str) -> float:
        """BM25F's length normalisation of field ``name``."""
        return dict(self.field_b)[name]

    def with_field(self, table: str, name: str, value: float) -> RankingParams:
        """These params with one field's weight (``table="weight"``) or ``b`` changed.

        >>> RankingParams().with_field("b", "body", 0.5).b("body")
        0.5
        """
        attr = "field_weights" if table == "weight" else "field_b"
        pairs = tuple((f, value if f == name else v) for f, v in getattr(self, attr))
        if name not in dict(pairs):
            raise KeyError(name)
        return replace(self, **{attr: pairs})


DEFAULT_PARAMS = RankingParams()
