"""Quoted phrases and exclusions: decided from postings where they can be, from the text otherwise.

The index holds every pair of adjacent syllables (``lao cai``), so a two-syllable phrase is one
posting list (plus, for a pair the indexer pooled into a shared bucket term because it was rare,
the bucket's documents that hold both syllables).  A longer phrase needs all its pairs.  Documents
postings cannot decide (a pooled pair; all pairs of a longer phrase but not its pyvi compound,
which certainly holds it) are "doubtful": for them a regular expression looks over the folded
stored fields, the same matching the highlighter does.  Walking Whoosh's positional ``Phrase``
matchers over every candidate instead made phrase queries the slowest kind by far, and most of
the CPU time of a mixed query load (``bench.latency``).

Up to ``CHECK_ALL`` doubtful documents are all checked, so the total stays exact.  More are checked
in the order the reader sees them, only until the requested page is full; the rest stay undecided,
so the total is then a lower bound (``total_relation: "gte"``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from . import kernels
from .analysis import COMPOUND_JOINER, PAIR_JOINER, pair_bucket
from .postings import Snapshot, TermPostings
from .query import Concept, Plan
from .ranking import term_mask
from .results import fold_in_place
from .schema import TEXT_FIELDS
from .text import folded_regex, normalize

# Doubtful documents are all checked when there are this few (each check is one regular
# expression over one document's stored text, cheap next to the query), so common phrases keep
# exact totals although a few of their documents come through a shared pair bucket.
CHECK_ALL = 40


def phrase_pattern(words: list[Concept]) -> re.Pattern[str]:
    """The folded syllables in order, only non-word characters between them (as the tokenizer
    sees adjacency: ``Lào, Cai`` holds ``lao cai``; ``Lào Cai Hà`` does not hold ``lao ha``)."""
    body = r"[\W_]+".join(folded_regex(c.folded) for c in words)
    return re.compile(rf"(?<![^\W_]){body}(?![^\W_])")


@dataclass(slots=True)
class Check:
    """One multi-word phrase to look for in doubtful documents."""

    pattern: re.Pattern[str]
    required: bool  # a quoted phrase (True) or an excluded one (False)
    doubtful: np.ndarray  # documents postings cannot decide for this phrase


@dataclass(slots=True)
class Constraints:
    """What the phrases and exclusions of a query allow."""

    allowed: np.ndarray | None = None  # necessary condition, from postings (None: everything)
    checks: list[Check] = field(default_factory=list)
    verdicts: dict[int, bool] = field(default_factory=dict)  # docnum -> checked in the text
    doubtful: np.ndarray | None = None  # documents some check is doubtful for (None: none)

    def _allow(self, mask: np.ndarray) -> None:
        self.allowed = mask if self.allowed is None else self.allowed & mask

    def holds(self, snap: Snapshot, docnum: int) -> bool:
        """Whether the document's text satisfies every check it is doubtful for (memoised)."""
        verdict = self.verdicts.get(docnum)
        if verdict is None:
            stored = snap.stored(docnum)
            texts = [fold_in_place(normalize(stored.get(f) or "")) for f in TEXT_FIELDS]
            verdict = all(
                any(check.pattern.search(t) for t in texts) == check.required
                for check in self.checks
                if check.doubtful[docnum]
            )
            self.verdicts[docnum] = verdict
        return verdict


def pair_docs(snap: Snapshot, first: str, second: str) -> tuple[TermPostings, np.ndarray]:
    """The documents holding the adjacent pair under its own term (certain), and the docnums
    (ascending) of those that may hold it under its shared bucket (rare pairs,
    ``indexer.POOLED``): the bucket's documents that hold both syllables and not the pair's
    own term.  A bucket holds a few documents: they are looked up in the syllables' postings,
    not masks made over every docnum (two syllables of a phrase are frequent words, mostly)."""
    pair = first + PAIR_JOINER + second
    own = snap.postings(pair)
    bucket = snap.postings(pair_bucket(pair))
    if not bucket.held:
        return own, np.zeros(0, dtype=np.int32)
    held = bucket.docs
    keep = snap.postings(first).holds(held) & snap.postings(second).holds(held)
    keep &= ~own.holds(held)
    return own, held[keep]


def phrase_docs(snap: Snapshot, words: list[Concept]) -> tuple[np.ndarray, np.ndarray]:
    """The docnums (ascending) that may hold a phrase of two words or more (every pair, under
    its own term or its bucket), and the positions among them of those that surely do (the
    pair itself for two words, the pyvi compound for more).

    Narrowed from the pair in fewest documents by looking the others up at those alone: a
    phrase's pairs are rare next to its syllables (at a million articles a median of 2,200
    documents), where masks over every docnum cost a pass each (1.5 ms a phrase query)."""
    pairs = sorted(
        (pair_docs(snap, a.folded, b.folded) for a, b in zip(words, words[1:], strict=False)),
        key=lambda pair: pair[0].df + pair[1].size,
    )
    own, pooled = pairs[0]
    possible = _with(own.docs, pooled)
    for own, pooled in pairs[1:]:
        keep = own.holds(possible)
        if pooled.size:
            keep |= np.isin(possible, pooled)
        possible = possible[keep]
    if len(words) == 2:  # one pair: its own term decides
        certain = own.holds(possible)
    else:
        compound = COMPOUND_JOINER.join(c.folded for c in words)
        certain = snap.postings(compound).holds(possible)
    return possible, np.flatnonzero(certain)


def _with(docs: np.ndarray, more: np.ndarray) -> np.ndarray:
    """Ascending ``docs`` with the few ascending docnums ``more`` (none of them in ``docs``)."""
    if not more.size:
        return docs
    return np.insert(docs, np.searchsorted(docs, more), more)


def _mask(size: int, docs: np.ndarray) -> np.ndarray:
    mask = np.zeros(size, dtype=bool)
    kernels.mark_ones(mask, docs)
    return mask


def constraints(snap: Snapshot, plan: Plan) -> Constraints:
    """Postings-level masks for the plan's phrases and exclusions, and what is left to check."""
    out = Constraints()
    groups = [(words, True) for words in plan.phrases] + [(w, False) for w in plan.excluded]
    for words, required in groups:
        if len(words) == 1:  # one syllable: postings decide exactly
            mask = term_mask(snap, list(words[0].folded_forms))
            out._allow(mask if required else ~mask)
            continue
        possible, certain = phrase_docs(snap, words)
        if required:
            out._allow(_mask(snap.size, possible))
        else:
            out._allow(~_mask(snap.size, possible[certain]))
        if certain.size < possible.size:
            doubtful = _mask(snap.size, np.delete(possible, certain))
            out.checks.append(Check(phrase_pattern(words), required, doubtful))
            out.doubtful = doubtful if out.doubtful is None else out.doubtful | doubtful
    return out


def confirm(
    snap: Snapshot, cons: Constraints, docs: np.ndarray, needed: int, ordered: int | None = None
) -> tuple[np.ndarray, bool] | None:
    """Positions in ``docs`` (kept in order) of the documents that satisfy the constraints,
    checking doubtful ones only until ``needed`` are confirmed; and whether all were decided.

    Only the first ``ordered`` positions of ``docs`` are in rank order (default: all).  Where the
    checks would have to look past them, nothing further is checked and the answer is ``None``:
    order more first.  (Which documents are checked decides the facets' counts, so they must be
    the ones ordering every candidate would check.)
    """
    doubtful = cons.doubtful
    everything = np.arange(docs.size)
    if doubtful is None or not docs.size:
        return everything, True
    unsure = doubtful[docs]
    if not unsure.any():
        return everything, True
    keep = ~unsure
    sure_before = np.cumsum(keep) - keep  # sure documents ahead of each position
    confirmed = 0
    decided = docs.size
    check_all = int(unsure.sum()) <= CHECK_ALL  # few: check them all, so the total is exact
    limit = docs.size if ordered is None or check_all else ordered  # all checked: any order
    for position in np.flatnonzero(unsure).tolist():
        if position >= limit:
            return None
        if not check_all and int(sure_before[position]) + confirmed >= needed:
            decided = position
            break
        if cons.holds(snap, int(docs[position])):
            keep[position] = True
            confirmed += 1
    return np.flatnonzero(keep[:decided]), decided == docs.size


def known_good(cons: Constraints, docs: np.ndarray) -> np.ndarray | None:
    """Mask over ``docs``: sure from postings, or checked and found good (facets count these);
    ``None`` when every document is sure."""
    doubtful = cons.doubtful
    if doubtful is None:
        return None
    good = ~doubtful[docs]
    passed = [d for d, ok in cons.verdicts.items() if ok]
    if passed:
        good |= np.isin(docs, np.asarray(passed, dtype=docs.dtype))
    return good
