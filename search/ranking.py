"""Ranking: BM25F over cached posting arrays, plus the signals Vietnamese needs.

Per query concept (one typed syllable) the score adds:

* the folded syllable (every typed form shares it: recall);
* the exact accented syllable when the query carried diacritics (``bán`` above ``bàn``);
* pyvi compounds for adjacent concepts (``lao_cai``): documents where the query's words stand as
  words, not as scattered syllables, rank higher.

The rank key then weighs how much of the query a document holds: its score times the share of
the query's words it holds to the power ``Weights.coord``, and for queries of up to
``Weights.tier_max_words`` words (``ranking_params``) a bonus for holding every word, doubled
when the query was typed with diacritics and the document holds every word with exactly those.
A bonus, not a tier: a tier (every such document above every other) put articles whose text
lacks one word of a 5-word query below hundreds of weak ones holding all five (the figures are
in the README).  Every query still returns documents missing a few words
(minimum-should-match), never those missing most.

Each signal is one function (``_score_*``) that adds its terms to the query's steps; ``rank``
calls them in order, and a ``Scorer`` runs the steps where scores are needed.  Their weights
come from ``ranking_params.RankingParams`` (the snapshot's, unless given).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, replace

import numpy as np

from . import kernels
from .analysis import COMPOUND_JOINER, PAIR_JOINER, pair_bucket
from .arrays import select
from .postings import Snapshot, TermPostings
from .query import Concept, Expansion, Plan
from .ranking_params import RankingParams, Weights

# A pair in this many documents under its own term is common: the few documents that hold it
# only through its bucket add little (its idf is low), and reading the bucket is not free.
POOLED_LOOKUP_DF = 64


# Candidate lists up to this long are sorted whole; a longer one only as far as a page needs.
SORT_ALL = 256
# Candidates scored at their documents (``Scorer.at``) while they are at most one in
# ``AT_RATIO`` docnums; more, and over every docnum (``Scorer.dense``).  A lookup per candidate
# and term costs more than a pass over every docnum per term well before half of them: at one
# in 16, 'Lào Cai Sa Pa' typed 16 times (37,553 candidates of a million, ~200 terms) took 44 ms
# against 31 over every docnum; at one in 64 it is 31 ms, and title queries gain as much.
AT_RATIO = 64
# A long list's best are found from bounds first (``Scorer.bounds``, MaxScore's idea): the
# terms in at least one document in ``DEFER_RATIO`` (frequent words: a low idf, a pass over
# every docnum each) are left out of a partial score, and only the candidates whose partial
# score plus the most those terms can add could reach the page are scored whole, at their
# documents.  At a million articles (1,000 title queries, ``bench.latency``) a median of 445 of
# 180,000 candidates could, and a warm pass took 8.8 ms a query against 9.8 scoring them all;
# deferring the terms in one document in 8 (or 16) as well left too many candidates (median
# 13,563) and was slower than scoring them all.
# Where more than one docnum in ``REACH_RATIO`` could reach the page, every candidate is
# scored.  A frequent term looked up at the candidates in doubt costs a gather where scoring
# every candidate costs a pass over every docnum: at a million articles one docnum in 64 gave
# up on 59 of 678 bounded queries (17,000 to 260,000 candidates in doubt, most with a dozen
# frequent terms); at one in 8 a warm pass took 8.18-8.26 ms a query against 8.40-8.52 (p95
# 14.1-14.3 against 14.6-14.9; 4 and 16 were no better).  ``PRUNE`` off always scores every
# candidate (the answers are the same, bit for bit).
DEFER_RATIO = 4
REACH_RATIO = 8
FEW_REACHING = 4
PRUNE = True
# Bounds are compared with a margin this much of the threshold and slack: the partial score adds
# float32 values in another order than the whole one, which rounds them differently.
ROUNDING = 1e-4
# The bounds' partial score is added up in whole units of at most this many to a document (uint16,
# ``Scorer.bounds``): a million of them fit a core's L2 cache where float32 scores do not, and
# adding a title query's 1.45 million postings took 1.8 ms against 3.0.  A unit is the most the
# kept terms add together over this (less two a term, which the truncations may be off by).
QUANT_LEVELS = 65_000
QUANTISE = True
# Keys sampled to find a threshold that the best of many candidates reach (``_best_positions``),
# and how many sampled keys past the page's share the threshold lets through.
SAMPLE_SIZE = 4096
SAMPLE_MARGIN = 8


class Ranked:
    """Every candidate (counts are exact), in docnum order, with what orders them.

    Rank order is ``key`` descending, then docnum.  Sorting thousands of candidates for a page
    that shows ten is wasted: ``ordered`` sorts only the best ``upto`` (``np.partition`` finds
    them in linear time).  A list ``rank`` made holds its ``Scorer`` and computes ``scores`` and
    ``key`` when they are first read: a short list at its own documents, a long one over every
    docnum (``AT_RATIO``); ``scores_at`` / ``key_at`` score a few documents alone (a page
    whose list is ordered already, the copies of a story it lists).  Either way each score is
    the one scoring every docnum gives, bit for bit.
    """

    __slots__ = ("docs", "_scores", "_key", "scorer", "_bounds", "_scored")

    def __init__(
        self,
        docs: np.ndarray,  # int64, ascending
        scores: np.ndarray | None = None,  # float32, the score shown (no coordination, bonuses)
        key: np.ndarray | None = None,  # the score weighed by coordination plus the bonuses
        scorer: Scorer | None = None,  # computes both where they are not given
    ) -> None:
        if (scores is None or key is None) and scorer is None:
            raise ValueError("a Ranked list needs its scores and key, or a scorer")
        self.docs, self._scores, self._key, self.scorer = docs, scores, key, scorer
        self._bounds: Bounds | None = None  # ``Scorer.bounds``, once worked out
        # The candidates ``best`` scored whole from the bounds: their positions (ascending),
        # scores and keys, which ``scores_at`` and ``key_at`` then read instead of scoring a
        # page's hits again (a lookup a term and hit).
        self._scored: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    @classmethod
    def scored_by(cls, docs: np.ndarray, scorer: Scorer) -> Ranked:
        return cls(docs, scorer=scorer)

    @property
    def total(self) -> int:
        return int(self.docs.size)

    @property
    def scores(self) -> np.ndarray:
        self._score_all()
        return self._scores  # type: ignore[return-value]

    @property
    def key(self) -> np.ndarray:
        self._score_all()
        return self._key  # type: ignore[return-value]

    def _score_all(self) -> None:
        if self._scores is not None and self._key is not None:
            return
        scorer, docs = self.scorer, self.docs
        if docs.size * AT_RATIO <= scorer.size:  # a few: at their documents
            shown = scorer.at(docs)
        else:
            shown = scorer.dense().take(docs)
        parts = self._bounds.parts if self._bounds is not None else None
        self._scores, self._key = shown, scorer.key(shown, docs, parts)

    def scores_at(self, positions: np.ndarray) -> np.ndarray:
        """The scores of the candidates at ``positions``."""
        return self._at(positions)[0]

    def key_at(self, positions: np.ndarray) -> np.ndarray:
        """The rank keys of the candidates at ``positions``."""
        return self._at(positions)[1]

    def _at(self, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        positions = np.asarray(positions, dtype=np.intp)
        if self._scores is not None and self._key is not None:
            return self._scores[positions], self._key[positions]
        if self._scored is not None and positions.size:
            scored, shown, key = self._scored
            at = np.minimum(np.searchsorted(scored, positions), scored.size - 1)
            if np.array_equal(scored[at], positions):  # every one scored already
                return shown[at], key[at]
        order = np.argsort(positions, kind="stable")  # the scorer reads ascending docnums
        docs = self.docs[positions[order]]
        shown = self.scorer.at(docs)
        key = self.scorer.key(shown, docs)
        back = np.empty_like(order)
        back[order] = np.arange(order.size)
        return shown[back], key[back]

    def subset(self, mask: np.ndarray | None) -> Ranked:
        """The candidates where ``mask`` (aligned with ``docs``) is set."""
        if mask is None:
            return self
        if self._scores is None or self._key is None:
            return Ranked(select(self.docs, mask), scorer=self.scorer)
        kept = np.flatnonzero(mask)
        return Ranked(self.docs[kept], self._scores[kept], self._key[kept], self.scorer)

    def best(self, upto: int) -> np.ndarray:
        """Positions of the best ``upto`` candidates (and all tied with the last of them, or
        every candidate) in rank order."""
        size = self.docs.size
        if upto >= size or size <= SORT_ALL:
            return np.lexsort((self.docs, -self.key))
        if self._key is None and PRUNE and size * AT_RATIO > self.scorer.size:
            top = self._pruned_best(upto)
            if top is not None:
                return top
        within = _best_positions(self.key, upto)
        negated = -self.key[within]
        bound = np.partition(negated, upto - 1)[upto - 1]
        top = within[negated <= bound]  # the best ``upto`` and everything tied with them
        return top[np.argsort(-self.key[top], kind="stable")]  # ties stay in docnum order

    def _pruned_best(self, upto: int) -> np.ndarray | None:
        """``best`` from the bounds (``Scorer.bounds``): the candidates that can reach the
        best ``upto`` scored whole, at their documents; ``None`` where too many can."""
        if self._bounds is None:
            self._bounds = self.scorer.bounds(self.docs)
        bounds = self._bounds
        if bounds is None:
            return None
        reaching = bounds.reaching(upto)
        if reaching is None:
            return None
        maybe, shown = reaching
        key = self.scorer.key(shown, self.docs[maybe])
        self._scored = (maybe, shown, key)
        order = np.lexsort((maybe, -key))  # ties in docnum order
        last = key[order[upto - 1]]
        return maybe[order[key[order] >= last]]  # the best ``upto`` and all tied with them

    def ordered(self, upto: int) -> tuple[np.ndarray, int]:
        """Positions of the candidates, and ``exact``: the first ``exact`` positions (at least
        ``upto``, or all) are the best candidates in rank order; the others follow in docnum
        order."""
        top = self.best(upto)
        if top.size == self.docs.size:
            return top, top.size
        rest = np.ones(self.docs.size, dtype=bool)
        rest[top] = False
        return np.concatenate([top, np.flatnonzero(rest)]), int(top.size)


@dataclass(frozen=True, slots=True)
class Bounds:
    """The candidates' partial scores (every term but the frequent ones) and the frequent
    terms left out, the one that can add most first (``Scorer.bounds``).  A key is at least
    the one of the partial score and at most that plus what the terms left out add at most
    (``top`` times their scale): the coordination factor is at most 1 and the bonuses do not
    depend on the score."""

    docs: np.ndarray  # the candidates (ascending docnums)
    shown: np.ndarray  # float32, their partial scores
    deferred: list[_Term]
    factor: np.ndarray  # float32, the coordination factor of each candidate
    bonus: np.ndarray  # float32, the bonuses of each candidate
    size: int  # docnums
    parts: TierParts  # what ``factor`` and ``bonus`` come from, for the keys
    # How far above ``shown`` the partial scores may be (a quantised partial score's units,
    # the tops of the ``Scorer``'s loose terms); 0: ``shown`` is exact, and the deferred terms
    # added to it give the scores.
    slack: float = 0.0
    scorer: Scorer | None = None  # scores the candidates left whole, where ``slack``

    def reaching(self, upto: int) -> tuple[np.ndarray, np.ndarray] | None:
        """The candidates whose key may be among the best ``upto`` (fewer than the candidates):
        their positions (ascending) and exact scores; ``None`` where more than one docnum in
        ``REACH_RATIO`` may (looking them up would cost more than passes over every docnum).

        At least ``upto`` keys reach the ``upto``-th best lower bound, so a candidate whose
        upper bound (the partial score plus ``slack`` plus the tops of the terms left out)
        stays below it is not among the best.  The terms left out are added at the
        candidates still in doubt (a lookup each) one at a time, in the scorer's order, each
        raising the threshold and lowering the slack, until few remain (``FEW_REACHING`` times
        ``upto``); the rest are then added at those few alone.  Where the partial scores are
        bounds themselves (``slack``: whole units), every term left out is added first and the
        candidates still in doubt are then scored whole (``Scorer.at``).
        """
        shown, factor, bonus, slack = self.shown, self.factor, self.bonus, self.slack
        tops = [term.scale * term.postings.top for term in self.deferred]
        total = sum(tops) + slack
        bonused = self.parts[1] is not None  # else every bonus is 0: not added
        positions: np.ndarray | None = None  # every candidate, until the first cut
        done = 0
        while True:
            low = shown * factor  # the key's operations in another order
            if bonused:
                low += bonus
            within = _best_positions(low, upto)
            threshold = float(np.partition(low[within], within.size - upto)[within.size - upto])
            margin = ROUNDING * (abs(threshold) + total)  # for the rounding of that order
            reach = low >= np.float32(threshold - sum(tops[done:]) - slack - margin)
            count = int(np.count_nonzero(reach))
            if count * REACH_RATIO > self.size:
                return None
            keep = np.flatnonzero(reach)
            positions = keep if positions is None else positions[keep]
            shown, factor = shown[keep], factor[keep]
            if bonused:
                bonus = bonus[keep]
            if done == len(tops) or (count <= FEW_REACHING * upto and not slack):
                break
            term = self.deferred[done]
            shown += term.scale * term.postings.weights_at(self.docs[positions])
            done += 1
        docs = self.docs[positions]
        if slack:  # the partial scores were bounds: score the few left whole
            return positions, self.scorer.at(docs)  # type: ignore[union-attr]
        for term in self.deferred[done:]:
            shown += term.scale * term.postings.weights_at(docs)
        return positions, shown


def _best_positions(key: np.ndarray, upto: int) -> np.ndarray:
    """Positions (ascending) of a few of ``key``'s values among which its best ``upto`` are.

    Partitioning hundreds of thousands of keys for a page of ten costs milliseconds; a strided
    sample's ``upto / stride + SAMPLE_MARGIN``-th best is a threshold that about
    ``upto + SAMPLE_MARGIN * stride`` keys reach, and every key above it is kept.  Only when
    fewer than ``upto`` reach it (a sample that fell on the very best) is every position kept.
    """
    stride = key.size // SAMPLE_SIZE
    if stride < 2:
        return np.arange(key.size)
    sample = key[::stride]
    rank = min(sample.size, upto // stride + SAMPLE_MARGIN)
    threshold = np.partition(sample, sample.size - rank)[sample.size - rank]
    within = np.flatnonzero(key >= threshold)
    return within if within.size >= upto else np.arange(key.size)


def idf(df: int, n: int) -> float:
    return math.log(1.0 + (n - df + 0.5) / (df + 0.5))


def _add(
    steps: list[_Step],
    postings: TermPostings,
    n: int,
    weight: float,
    group: int | None = None,
) -> None:
    """Add ``postings`` weighed by ``weight`` and its idf to the score (``group``: into the
    group of the concept at that position)."""
    if postings.df == 0 or weight == 0:
        return
    steps.append(_Term(postings, weight * idf(postings.df, n), group))


def _add_at(
    acc: np.ndarray,
    docs: np.ndarray,
    postings: TermPostings,
    n: int,
    weight: float,
    max_idf: float = math.inf,
) -> None:
    """``_add`` for the documents ``docs`` (ascending) alone: ``acc`` is aligned with them."""
    if postings.df == 0 or weight == 0:
        return
    acc += weight * min(idf(postings.df, n), max_idf) * postings.weights_at(docs)


def min_should_match(n: int, share: float = 0.5) -> int:
    """How many of ``n`` concepts a document must hold to be returned at all.

    Words found nowhere still count: ``bưu chính`` must not turn into a search for ``chính``.
    """
    if n <= 2:
        return n
    if n <= 4:
        return n - 1
    return max(3, math.ceil(share * n))


def _runs(concepts: list[Concept], breaks: set[int], size: int) -> list[tuple[int, list[str]]]:
    """Folded runs of ``size`` adjacent concepts (a Telex token counts as its decoded reading),
    each with the position of its first concept."""
    words = [c.alternatives[0][0] if c.alternatives else c.folded for c in concepts]
    return [
        (i, words[i : i + size])
        for i in range(len(concepts) - size + 1)
        if not any(j in breaks for j in range(i + 1, i + size))
    ]


def _compounds(concepts: list[Concept], breaks: set[int], longest: int = 3) -> list[str]:
    """The pyvi compounds a document may hold for the query (``lao_cai``, 2 to ``longest``
    syllables)."""
    return [
        COMPOUND_JOINER.join(run)
        for size in range(2, longest + 1)
        for _, run in _runs(concepts, breaks, size)
    ]


def _pairs(concepts: list[Concept], breaks: set[int]) -> list[tuple[int, str]]:
    """Adjacent query syllables as the index's adjacent pairs (``lao cai``): proximity.  Each
    comes with the position of its first concept."""
    return [(i, PAIR_JOINER.join(run)) for i, run in _runs(concepts, breaks, 2)]


def _add_pair(
    steps: list[_Step],
    snapshot: Snapshot,
    pair: str,
    holds_both: tuple[Hit, Hit],
    n: int,
    weight: float,
    pooled_weight: float,
) -> None:
    """Score a pair through its own term, and through its shared bucket (where the indexer put
    it when it was rare) for the bucket's documents that hold both syllables."""
    own = snapshot.postings(pair)
    _add(steps, own, n, weight)
    if not pooled_weight or own.df >= POOLED_LOOKUP_DF:
        return
    pooled = snapshot.postings(pair_bucket(pair))
    if not pooled.df:
        return
    first, second = holds_both
    # The part's df counts live documents: a base's arrays may hold documents deleted since.
    deleted = snapshot.doc_count < snapshot.size
    if pooled.present is not None:  # a frequent bucket: masks over every docnum
        size = snapshot.size
        both = _as_mask(first, size) & _as_mask(second, size) & pooled.present
        if deleted:
            both &= snapshot.live
        docs = np.flatnonzero(both).astype(np.int32)
        part = TermPostings(docs, pooled.dense[docs], docs.size)
    else:
        ids = pooled.docs.astype(np.intp)
        both = _held(first, ids) & _held(second, ids)
        if deleted:
            both &= snapshot.live[ids]
        kept = np.flatnonzero(both)
        part = TermPostings(pooled.docs.take(kept), pooled.weight.take(kept), int(kept.size))
    _add(steps, part, n, pooled_weight)


def term_mask(snapshot: Snapshot, terms: list[str]) -> np.ndarray:
    mask = np.zeros(snapshot.size, dtype=bool)
    for term in terms:
        snapshot.postings(term).mark(mask)
    return mask


def _expand(
    steps: list[_Step],
    snapshot: Snapshot,
    expansion: Expansion,
    plan_concepts: list[Concept],
    hits: list[Hit],
    n: int,
    weights: Weights,
    seen: dict[tuple, tuple[np.ndarray, np.ndarray]],
) -> None:
    """Documents holding the other form of an abbreviation count as holding the span's words.

    The other form scores at most as the span's words would (the idf of the words it stands
    for: ``HN`` is rarer than ``Hà Nội``), and a document holding both forms scores the better
    of the two, not their sum (``_Span``): a title saying ``HN`` over a body saying ``Hà Nội``
    ranked above titles saying the ``Hà Nội`` the reader typed.  ``seen``: the other forms
    (``_other_forms``).
    """
    key = _expansion_key(expansion, plan_concepts)
    where, _ = seen[key]
    positions = range(expansion.start, min(expansion.end, len(plan_concepts)))
    steps.append(_Span(key, tuple(positions)))
    joined = "_".join(expansion.folded)
    if len(expansion.folded) > 1:
        _add(steps, snapshot.postings(joined), n, weights.compound)
    for i in range(expansion.start, min(expansion.end, len(hits))):
        hit = hits[i]
        if not isinstance(hit, np.ndarray):  # a term's documents: a mask of this query's own
            mask = np.zeros(snapshot.size, dtype=bool)
            hit.mark(mask)
            hits[i] = hit = mask
        hit[where] = True


def _expansion_key(expansion: Expansion, concepts: list[Concept]) -> tuple:
    """What an expansion's other form and its score depend on: a query repeating an
    abbreviation looks its other form up once."""
    spanned = concepts[expansion.start : expansion.end]
    span = expansion.end - expansion.start
    return (expansion.folded, expansion.accented, span, tuple(c.folded for c in spanned))


def _other_forms(
    snapshot: Snapshot, plan: Plan, n: int, weights: Weights
) -> tuple[dict[tuple, tuple[np.ndarray, np.ndarray]], dict[int, list[tuple]]]:
    """Each distinct expansion's other form (``_other_form``, by ``_expansion_key``), and the
    expansions spanning each concept (by position)."""
    seen: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}
    spans: dict[int, list[tuple]] = {}
    for expansion in plan.expansions:
        key = _expansion_key(expansion, plan.concepts)
        if key not in seen:
            concepts = plan.concepts[expansion.start : expansion.end]
            # The same abbreviation comes back in many queries ('TP HCM': 5 ms at a million
            # articles to find and score the documents holding 'thành phố Hồ Chí Minh').
            seen[key] = snapshot.derived(  # type: ignore[assignment]
                ("other form", key, n, weights.accented),
                functools.partial(_other_form, snapshot, expansion, concepts, n, weights),
            )
        for position in range(expansion.start, expansion.end):
            spans.setdefault(position, []).append(key)
    return seen, spans


def _other_form(
    snapshot: Snapshot, expansion: Expansion, concepts: list[Concept], n: int, weights: Weights
) -> tuple[np.ndarray, np.ndarray]:
    """The documents holding every word of an expansion's other form (their docnums) and what
    the other form scores in each of them."""
    found = [p.df for p in (snapshot.postings(c.folded) for c in concepts) if p.df]
    span_idf = sum(idf(df, n) for df in found) / len(found) if found else math.inf
    share = (expansion.end - expansion.start) / len(expansion.folded)
    # Only documents holding every word of the other form gain: the work runs on those alone
    # (at a million documents, a dozen passes over every docnum cost more than the rest of a
    # long query).
    where = holding_all([snapshot.postings(f) for f in expansion.folded], snapshot.size)
    other = np.zeros(where.size, dtype=np.float32)
    for folded, accented in zip(expansion.folded, expansion.accented, strict=True):
        _add_at(other, where, snapshot.postings(folded), n, share, span_idf)
        if accented != folded:
            scale = weights.accented * share
            _add_at(other, where, snapshot.postings(accented), n, scale, span_idf)
    return where, other


def holding_all(terms: list[TermPostings], size: int) -> np.ndarray:
    """The docnums (ascending, int64) of the documents holding every one of ``terms``: the
    rarest term's documents, narrowed by each of the others (no pass over every docnum)."""
    if not terms:
        return np.arange(size)
    rarest, *others = sorted(terms, key=lambda t: t.df)
    where = rarest.docs.astype(np.int64)
    for term in others:
        where = select(where, term.holds(where))
    return where


def rank(
    snapshot: Snapshot,
    plan: Plan,
    allowed: np.ndarray | None = None,
    params: RankingParams | None = None,
) -> Ranked:
    """Find the documents for ``plan`` and how to score them; ``allowed`` is a boolean mask
    (filters, phrases).  ``params``: the snapshot's ``RankingParams`` unless given (its ``k1``
    and field weights are the snapshot's in any case: they are in its posting weights and
    norms).

    Which documents match (every concept's occurrences, how many each document holds) is
    worked out over every docnum; scoring them is left to the ``Ranked`` list (``Scorer``):
    a query of rare words holds a few hundred candidates, whose scores cost a few lookups
    each where a pass over every docnum costs milliseconds at a million documents.
    """
    signals = (params or snapshot.params).signals
    n = max(snapshot.doc_count, 1)
    size = snapshot.size
    typed_accents = any(c.accented for c in plan.concepts)
    exact_all: list[TermPostings | np.ndarray] | None = [] if typed_accents else None
    hits: list[Hit] = []
    # A concept that an abbreviation spans is scored apart (a group) and its score kept at the
    # documents of the expansions spanning it, so that the other form of the span replaces its
    # words' score instead of adding to it (``_Span``); the others add straight into the scores.
    other_forms, spans = _other_forms(snapshot, plan, n, signals)
    steps: list[_Step] = []
    seen: set[str] = set()
    for position, concept in enumerate(plan.concepts):
        if concept.folded in seen and signals.repeat != 1.0:
            concept = replace(concept, weight=concept.weight * signals.repeat)
        seen.add(concept.folded)
        group = position if position in spans else None
        if group is not None:
            steps.append(_Group(position))
        hit = _score_folded(steps, group, snapshot, concept, n)
        _score_restored(steps, group, snapshot, concept, n, signals)
        _score_accented(steps, group, exact_all, snapshot, concept, n, signals)
        if group is not None:
            steps.append(_GroupEnd(position, tuple(spans[position])))
        hits.append(hit)
    for expansion in plan.expansions:
        _expand(steps, snapshot, expansion, plan.concepts, hits, n, signals, other_forms)
    matched, known = _count_matches(plan.concepts, hits, exact_all, size)
    _score_compounds(steps, snapshot, plan, n, signals)
    _score_pairs(steps, snapshot, plan, hits, n, signals)
    docs = _candidates(snapshot, plan, matched, known, allowed, signals)
    scorer = Scorer(size, steps, other_forms, matched, known, exact_all, signals)
    return Ranked.scored_by(docs, scorer)


@dataclass(frozen=True, slots=True)
class _Term:
    """Add a term's weights times ``scale`` into the scores (or the open group's)."""

    postings: TermPostings
    scale: float
    group: int | None = None


@dataclass(frozen=True, slots=True)
class _Group:
    """A concept an abbreviation spans starts: its terms add into a group of their own."""

    position: int


@dataclass(frozen=True, slots=True)
class _GroupEnd:
    """The group adds into the scores, and is kept at the documents of its expansions."""

    position: int
    keys: tuple[tuple, ...]  # the expansions spanning it (``_expansion_key``)


@dataclass(frozen=True, slots=True)
class _Span:
    """Where an expansion's other form scores more than its words, it scores that instead."""

    key: tuple
    positions: tuple[int, ...]  # the spanned concepts with a group


_Step = _Term | _Group | _GroupEnd | _Span
# Where a concept occurs: a boolean mask over docnums, or the one term that stands for it (no
# mask made: ``_score_folded``).
Hit = np.ndarray | TermPostings
# A rank key's coordination factors, all-words mask and exact-diacritics positions (``_tiers``).
TierParts = tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None]


class Scorer:
    """A query's score as a list of steps (``_Term`` additions, groups, spans), run over every
    docnum (``dense``) or at a few documents (``at``), with the same float32 operations in the
    same order: both give every document the same score, bit for bit (``tests/test_scorer.py``).
    Scoring every docnum is a pass or two over every docnum a term; scoring a few hundred
    candidates, a lookup each."""

    def __init__(
        self,
        size: int,
        steps: list[_Step],
        other_forms: dict[tuple, tuple[np.ndarray, np.ndarray]],
        matched: np.ndarray,
        known: int,
        exact_all: list[TermPostings | np.ndarray] | None,
        signals: Weights,
    ) -> None:
        self.size, self.steps, self.other_forms = size, steps, other_forms
        # How many of the counted concepts each docnum holds, and how many there are
        # (``_count_matches``): the rank key weighs the score by them (``_tiers``).
        self.matched, self.known = matched, known
        self.exact_all, self.signals = exact_all, signals
        # The frequent terms (``DEFER_RATIO``) that add straight into the scores come last, the
        # one that can add most first: the steps before them give the partial score of the
        # bounds (``bounds``), and each path adds the rest in the same order.  A term inside an
        # abbreviation's group stays in its place (its group's sum is compared with the other
        # form: ``_Span``), as does one that subtracts; everything the partial score holds is
        # exact, and each term left out adds at most its ``top`` times its scale.
        self.deferred: list[_Term] = []
        self._partial: np.ndarray | None = None  # the partial score, until ``dense`` uses it
        limit = size / DEFER_RATIO
        # The frequent terms of an abbreviation's groups stay in their places, but the partial
        # score leaves them out too (``loose``): the most they add is a slack of the bounds.
        self.loose = _loose_terms(steps, limit)
        frequent = [
            i
            for i, step in enumerate(steps)
            if isinstance(step, _Term)
            and step.group is None
            and step.scale >= 0
            and step.postings.held >= limit
        ]
        if frequent:
            self.deferred = sorted(
                (steps[i] for i in frequent),  # type: ignore[misc]
                key=lambda term: term.scale * term.postings.top,
                reverse=True,
            )
            left_out = set(frequent)
            kept = [step for i, step in enumerate(steps) if i not in left_out]
            self.steps = [*kept, *self.deferred]

    def _kept(self) -> list[_Step]:
        """The steps the partial score adds: those before the deferred ones, but the loose."""
        kept = self.steps[: len(self.steps) - len(self.deferred)]
        if not self.loose:
            return kept
        loose = {id(term) for term in self.loose}
        return [step for step in kept if id(step) not in loose]

    def _kept_sum(self) -> np.ndarray:
        """Every docnum's partial score (``_kept``)."""
        if self._partial is not None:
            partial, self._partial = self._partial, None
            return partial
        return self._run(self._kept())

    def dense(self) -> np.ndarray:
        """Every docnum's score (float32)."""
        if self.deferred and not self.loose:  # the partial score, then the frequent terms
            scores = self._kept_sum()
            for term in self.deferred:
                term.postings.add_to(scores, term.scale)
            return scores
        return self._run(self.steps)

    def _run(self, steps: list[_Step]) -> np.ndarray:
        """Every docnum's score after ``steps``, from zero."""
        scores = np.zeros(self.size, dtype=np.float32)
        scratch: np.ndarray | None = None
        own: dict[int, dict[tuple, np.ndarray]] = {}
        for step in steps:
            if isinstance(step, _Term):
                step.postings.add_to(scores if step.group is None else scratch, step.scale)
            elif isinstance(step, _Group):
                if scratch is None:
                    scratch = np.zeros(self.size, dtype=np.float32)
                else:
                    scratch.fill(0)
            elif isinstance(step, _GroupEnd):
                scores += scratch
                own[step.position] = {
                    key: scratch.take(self.other_forms[key][0]) for key in step.keys
                }
            else:
                where, other = self.other_forms[step.key]
                zero = np.zeros(where.size, np.float32)
                words = sum((own[i][step.key] for i in step.positions), zero)
                scores[where] += np.maximum(other - words, 0)
        return scores

    def at(self, docs: np.ndarray) -> np.ndarray:
        """The scores of ``docs`` (ascending docnums), as ``dense`` gives them."""
        scores = np.zeros(docs.size, dtype=np.float32)
        groups: dict[int, np.ndarray] = {}
        inside: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}
        group: np.ndarray | None = None
        for step in self.steps:
            if isinstance(step, _Term):
                target = scores if step.group is None else group
                target += step.scale * step.postings.weights_at(docs)
            elif isinstance(step, _Group):
                group = groups[step.position] = np.zeros(docs.size, dtype=np.float32)
            elif isinstance(step, _GroupEnd):
                scores += group
            else:
                if step.key not in inside:
                    inside[step.key] = _inside(self.other_forms[step.key][0], docs)
                held, at = inside[step.key]
                other = self.other_forms[step.key][1][at]
                zero = np.zeros(at.size, np.float32)
                words = sum((groups[i][held] for i in step.positions), zero)
                scores[held] += np.maximum(other - words, 0)
        return scores

    def bounds(self, docs: np.ndarray) -> Bounds | None:
        """Bounds of the keys of ``docs`` (ascending) from every step but the frequent terms
        (``deferred``): a pass over every docnum for a frequent term costs as much as for any,
        but adds little (a low idf), so a few candidates looked up replace those passes.
        ``None`` where no frequent term adds straight into the scores.  The partial score over
        every docnum is kept for ``dense``, should the bounds be too loose."""
        if not self.deferred and not self.loose:
            return None
        quantised = self._quantised_kept() if QUANTISE else None
        if quantised is None:
            partial = self._kept_sum()
            if not self.loose:  # else ``dense`` runs every step (the loose in their groups)
                self._partial = partial
            slack = 0.0
        else:
            partial, unit, below, above = quantised
        table = _coord_table(self.known, self.signals)
        shown, held, factor = kernels.gather_held(partial, self.matched, docs, table)
        if quantised is not None:
            # The partial score lies within ``(units - below) * unit`` and ``(units + above) *
            # unit`` (``_quantised_kept``); ``shown`` rounds the units' value down by a
            # millionth (0.065 units at most) to stay below.
            shown *= np.float32(unit * (1 - 1e-6))
            shown -= np.float32(below * unit)
            slack = (below + above + 0.1) * unit
        # A group's sum plus what its other form adds beyond it is the larger of the two
        # (``_Span``), which the loose terms raise by at most their tops.
        slack += sum(term.scale * term.postings.top for term in self.loose)
        parts = _tier_parts_of(docs, held, factor, self.known, self.exact_all, self.signals)
        factor, all_words, exact = parts
        # The bonuses alone: the key of a score of 0 without coordination.
        zero = np.zeros(docs.size, dtype=np.float32)
        bonus = _tiers(zero, (None, all_words, exact), self.signals)
        if factor is None:
            factor = np.ones(docs.size, dtype=np.float32)
        return Bounds(docs, shown, self.deferred, factor, bonus, self.size, parts, slack, self)

    def _quantised_kept(self) -> tuple[np.ndarray, float, float, float] | None:
        """The partial score (``_kept``) in whole units (uint16 over every docnum;
        ``QUANT_LEVELS``), the unit, and how far below and above the units the partial score
        may lie (in units); ``None`` where a term subtracts, where they add nothing, or where
        so many additions would take half the levels.

        Each term's weights are truncated to units (what it adds lies within ``units - 1/50``
        and ``units + 1.02``: the truncation, and float32's rounding of the factor and the
        product; 0.01 more above is a margin).  An abbreviation's other form adds what it
        scores beyond its words (``_Span``), worked out here from its words' units: each of its
        ``k`` terms' truncation widens that (within ``1.02 k + 0.01`` below and ``0.02 k +
        1.01`` above).  Its words' frequent terms are left out (``loose``)."""
        kept = self._kept()
        terms = [step for step in kept if isinstance(step, _Term)]
        if any(term.scale < 0 for term in terms):
            return None
        spans = [step for step in kept if isinstance(step, _Span)]
        grouped: dict[int, list[_Term]] = {}
        for term in terms:
            if term.group is not None:
                grouped.setdefault(term.group, []).append(term)
        words_of = [[t for p in span.positions for t in grouped.get(p, ())] for span in spans]
        most = sum(term.scale * term.postings.top for term in terms)
        most += sum(float(self.other_forms[s.key][1].max(initial=0)) for s in spans)
        added = len(terms) + sum(len(words) + 1 for words in words_of)
        levels = QUANT_LEVELS - 2 * added
        if not added or not most > 0 or levels < QUANT_LEVELS // 2:  # units too coarse
            return None
        unit = most / levels
        units = np.zeros(self.size, dtype=np.uint16)
        for term in terms:  # a group's terms add into the scores with it (``_GroupEnd``)
            term.postings.add_units_to(units, term.scale / unit)
        below, above = len(terms) / 50, len(terms) * 1.03  # (0.01 of margin a term)
        scratch: np.ndarray | None = None
        for span, words in zip(spans, words_of, strict=True):
            below += 1.02 * len(words) + 0.01
            above += 0.02 * len(words) + 1.01
            where, other = self.other_forms[span.key]
            if not where.size:
                continue
            if scratch is None:
                scratch = np.zeros(self.size, dtype=np.uint16)
            else:
                scratch.fill(0)
            for term in words:
                term.postings.add_units_to(scratch, term.scale / unit)
            beyond = other * np.float32(1 / unit) - scratch[where]
            np.maximum(beyond, 0, out=beyond)
            kernels.scatter_units(units, where.astype(np.int32), beyond, 1.0)
        return units, unit, below, above

    def tier_parts(self, docs: np.ndarray) -> TierParts:
        """What the rank keys of ``docs`` weigh their scores with (``_tier_parts``)."""
        return _tier_parts(docs, self.matched, self.known, self.exact_all, self.signals)

    def key(
        self, shown: np.ndarray, docs: np.ndarray, parts: TierParts | None = None
    ) -> np.ndarray:
        """The rank key of ``docs`` from their scores ``shown`` (``_tiers``); ``parts``: their
        ``tier_parts``, where known."""
        return _tiers(shown, parts if parts is not None else self.tier_parts(docs), self.signals)


def _loose_terms(steps: list[_Step], limit: float) -> list[_Term]:
    """The terms of abbreviations' groups held by ``limit`` documents or more, which a partial
    score may leave out: a group's words add into the scores, and its other form adds what it
    scores beyond them (``_Span``), so together they add the larger of the two, which a term
    left out lowers by at most its top, and never raises (its scale is not negative).  That
    holds where no two other forms share a word (else a word's term would lower the sum of
    both); there, and where a group's term subtracts, none is left out."""
    spanned: set[int] = set()
    for step in steps:
        if isinstance(step, _Span):
            if spanned.intersection(step.positions):
                return []
            spanned.update(step.positions)
    grouped = [s for s in steps if isinstance(s, _Term) and s.group is not None]
    if any(term.scale < 0 or term.group not in spanned for term in grouped):
        return []
    return [term for term in grouped if term.postings.held >= limit]


def _inside(where: np.ndarray, docs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Which of ``docs`` are in ``where`` (both ascending): a mask over ``docs``, and their
    positions in ``where``."""
    if not where.size:
        return np.zeros(docs.size, dtype=bool), np.zeros(0, dtype=np.intp)
    at = np.minimum(np.searchsorted(where, docs), where.size - 1)
    held = where[at] == docs
    return held, at[held]


def _score_folded(
    steps: list[_Step], group: int | None, snapshot: Snapshot, concept: Concept, n: int
) -> Hit:
    """The folded syllable (every typed form shares it: recall); returns where it occurs."""
    found = [snapshot.postings(folded) for folded in concept.folded_forms]
    for postings in found:
        _add(steps, postings, n, concept.weight, group)
    # A form in no document marks nothing: a Telex token as typed (``ddoongf`` beside ``dong``)
    # mostly is, and the term of the other form then stands for the concept's documents alone.
    held = [postings for postings in found if postings.held]
    if len(held) <= 1:  # the term stands for its documents: no mask over every docnum
        return held[0] if held else found[0]
    hit = np.zeros(snapshot.size, dtype=bool)
    for postings in held:
        postings.mark(hit)
    return hit


def _as_mask(hit: Hit, size: int) -> np.ndarray:
    """``hit`` as a boolean array over docnums (read only: a term's may be its own)."""
    return hit if isinstance(hit, np.ndarray) else hit.mask(size)


def _held(hit: Hit, docs: np.ndarray) -> np.ndarray:
    """Whether each of ``docs`` (ascending docnums) is in ``hit``."""
    return hit[docs] if isinstance(hit, np.ndarray) else hit.holds(docs)


def _score_restored(
    steps: list[_Step],
    group: int | None,
    snapshot: Snapshot,
    concept: Concept,
    n: int,
    signals: Weights,
) -> None:
    """The accented form guessed for an unaccented word (``Plan.with_restored_accents``)."""
    if concept.restored:
        postings = snapshot.postings(concept.restored)
        _add(steps, postings, n, signals.restored * concept.weight, group)


def _score_accented(
    steps: list[_Step],
    group: int | None,
    exact_all: list[TermPostings | np.ndarray] | None,
    snapshot: Snapshot,
    concept: Concept,
    n: int,
    signals: Weights,
) -> None:
    """The syllable with the diacritics typed (or a Telex reading's): ``bán`` above ``bàn``;
    adds the typed accented word to what ``exact_all`` requires."""
    accented = [concept.accented, *(a for _, a in concept.alternatives)]
    for term in {a for a in accented if a}:
        postings = snapshot.postings(term)
        _add(steps, postings, n, signals.accented * concept.weight, group)
        if exact_all is not None and concept.counted and term == concept.accented:
            exact_all.append(postings)


def _count_matches(
    concepts: list[Concept],
    hits: list[Hit],
    exact_all: list[TermPostings | np.ndarray] | None,
    size: int,
) -> tuple[np.ndarray, int]:
    """How many of the counted concepts each document holds, and how many there are; a word
    typed without diacritics adds its folded form to what ``exact_all`` requires."""
    # A count of ``query.MAX_CONCEPTS`` (64) fits a byte; adding a boolean mask viewed as bytes
    # is one pass without a conversion (7 times faster than into int16 from bool).
    matched = np.zeros(size, dtype=np.uint8 if len(concepts) < 256 else np.int16)
    known = 0
    for concept, hit in zip(concepts, hits, strict=True):
        if concept.counted:
            known += 1
            if isinstance(hit, np.ndarray):
                matched += hit.view(np.uint8)
            else:
                hit.count_into(matched)
            if exact_all is not None and not concept.accented:
                exact_all.append(hit)
    return matched, known


def _score_compounds(
    steps: list[_Step], snapshot: Snapshot, plan: Plan, n: int, signals: Weights
) -> None:
    """pyvi compounds of adjacent query syllables (``lao_cai``): the words stand as words."""
    for compound in _compounds(plan.concepts, plan.breaks, signals.compound_longest):
        _add(steps, snapshot.postings(compound), n, signals.compound)


def _score_pairs(
    steps: list[_Step],
    snapshot: Snapshot,
    plan: Plan,
    hits: list[Hit],
    n: int,
    signals: Weights,
) -> None:
    """Adjacent query syllables adjacent in the document (proximity)."""
    if not signals.pair:
        return
    for i, pair in _pairs(plan.concepts, plan.breaks):
        holds = (hits[i], hits[i + 1])
        _add_pair(steps, snapshot, pair, holds, n, signals.pair, signals.pair_pooled)


def _candidates(
    snapshot: Snapshot,
    plan: Plan,
    matched: np.ndarray,
    known: int,
    allowed: np.ndarray | None,
    signals: Weights,
) -> np.ndarray:
    """Live documents holding enough of the words (``min_should_match``) and ``allowed``."""
    if not plan.concepts:
        keep = snapshot.live.copy()
    elif not known:
        return np.zeros(0, dtype=np.intp)
    elif allowed is None:  # the counts of deleted documents are never read: zeroed, not masked
        deleted = snapshot.deleted
        if deleted.size:
            matched[deleted] = 0
        return kernels.at_least(matched, min_should_match(known, signals.match_share))
    else:  # a new array: the live mask is only read where documents were deleted
        keep = matched >= min_should_match(known, signals.match_share)
        if snapshot.doc_count < snapshot.size:
            keep &= snapshot.live
    if allowed is not None:
        keep &= allowed
    return np.flatnonzero(keep)


def _tiers(shown: np.ndarray, parts: TierParts, signals: Weights) -> np.ndarray:
    """The rank key: the score times the share of the query's words a document holds (to the
    power ``coord``), plus, for a short query, a bonus for holding every word and as much again
    for holding them with exactly the typed diacritics (``_tier_parts``)."""
    factor, all_words, exact = parts
    final = shown if factor is None else shown * factor
    if all_words is not None:
        final = final + all_words * np.float32(signals.all_words_bonus)
        if exact is not None:
            final[exact] += np.float32(signals.all_words_bonus)
    return final


def _coord_table(known: int, signals: Weights) -> np.ndarray | None:
    """The coordination factor of each count of held words, 0 to ``known`` (``None``: no
    coordination).  A share takes one of ``known + 1`` values: raising those to the power once
    and looking each candidate's up gives the same float32 operations as one ``pow`` a
    candidate."""
    if not (signals.coord and known):
        return None
    shares = np.arange(known + 1, dtype=np.float32) / np.float32(known)
    return shares ** np.float32(signals.coord)


def _tier_parts(
    docs: np.ndarray,
    matched: np.ndarray,
    known: int,
    exact_all: list[TermPostings | np.ndarray] | None,
    signals: Weights,
) -> TierParts:
    """What ``_tiers`` weighs the scores of ``docs`` with: the coordination factor (``None``:
    1), which hold every word (``None``: no bonus) and the positions of those holding them with
    exactly the typed diacritics (``None``: none typed; ``exact_all``: what a document must
    hold for that, terms or masks over docnums)."""
    held = matched.take(docs)
    table = _coord_table(known, signals)
    factor = table.take(held) if table is not None else None
    return _tier_parts_of(docs, held, factor, known, exact_all, signals)


def _tier_parts_of(
    docs: np.ndarray,
    held: np.ndarray,
    factor: np.ndarray | None,
    known: int,
    exact_all: list[TermPostings | np.ndarray] | None,
    signals: Weights,
) -> TierParts:
    """``_tier_parts`` from what ``docs`` hold (``held``) and their coordination ``factor``."""
    all_words = positions = None
    if known <= signals.tier_max_words:
        all_words = held >= known
        if exact_all is not None:  # typed with diacritics: exactly those diacritics count more
            # Decided for the candidates holding every word alone (a few, mostly).
            positions = np.flatnonzero(all_words)
            held_docs = docs[positions]
            # The masks first (a read each), then the terms, rarest first: the documents left
            # to look up shrink fastest, and which hold every one does not depend on the order.
            for required in sorted(exact_all, key=_lookup_order):
                if isinstance(required, np.ndarray):
                    keep = required[held_docs]
                else:
                    keep = required.holds(held_docs)
                kept = np.flatnonzero(keep)
                positions, held_docs = positions.take(kept), held_docs.take(kept)
    return factor, all_words, positions


def _lookup_order(required: TermPostings | np.ndarray) -> int:
    """Masks over docnums before terms, and terms by their documents (``_tier_parts_of``)."""
    return -1 if isinstance(required, np.ndarray) else required.df
