"""The typo fallback: a query that found nothing is retried with its unknown words respelled.

The candidates come from ``search/typos.py``'s deletion table, whose lookups do not grow with the
archive; this module decides which words of a parsed query are typos worth correcting and
rewrites the plan.  The engine searches the corrected plan and keeps it only when it finds
something.
"""

from __future__ import annotations

from dataclasses import replace

from . import typos
from .postings import Snapshot
from .query import Concept, Plan
from .telex import is_valid_syllable


def correct_typos(snap: Snapshot, plan: Plan) -> Plan | None:
    """The plan with its first unknown words of 4+ letters replaced by their nearest spellings.

    Only for a query that found nothing, and only words the index does not hold at all and that
    are no Vietnamese syllable: a real syllable is never turned into another (``chó`` stays).
    One edit for words up to six letters, two beyond; the most frequent near spelling the index
    holds wins.  At most ``typos.MAX_WORDS`` words are corrected, from a table whose lookups do
    not grow with the archive (``search/typos.py``): a query of many made-up words must cost a
    few plain ones.
    """
    if snap.accents() is None:
        return None
    fixes: dict[int, str] = {}
    tried = 0
    for i, concept in enumerate(plan.concepts):
        word = concept.folded
        if tried >= typos.MAX_WORDS:
            break
        if concept.alternatives or not word.isalpha():
            continue
        if not typos.MIN_WORD_LETTERS <= len(word) <= typos.MAX_WORD_LETTERS:
            continue  # never corrected: it must not take one of the words that can be
        if is_valid_syllable(concept.accented or word):
            continue  # a real syllable the index lacks (``xăng``) is not a typo
        if any(snap.postings(f).df for f in concept.folded_forms):
            continue
        tried += 1
        table = snap.typos()  # mapped from the generation's files, or built on first use
        fix = typos.first(table.candidates(word), lambda t: snap.postings(t).df > 0)
        if fix is not None:
            fixes[i] = fix
    if not fixes:
        return None
    concepts = [Concept(folded=fixes[i]) if i in fixes else c for i, c in enumerate(plan.concepts)]
    words = [fixes.get(i, c.accented or c.folded) for i, c in enumerate(plan.concepts)]
    return replace(plan, concepts=concepts, interpreted_as=" ".join(words), phrases=[])
