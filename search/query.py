"""Query text -> a plan of concepts, phrases and exclusions.

The query goes through the same normalisation and syllable split as the documents
(``analysis.syllables``), so ``Hoà``, ``hòa``, ``HOA`` and NFD input all meet the same terms.  The
syntax is deliberately small and can never fail: ``"quoted text"`` must match as a phrase,
``-word`` and ``-"a phrase"`` exclude, everything else is words.  Unbalanced quotes, stray
operators and field or wildcard syntax are read as plain words; punctuation is ignored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .analysis import syllables
from .text import canonical_syllable, fold

MAX_CONCEPTS = 64  # a longer query keeps its first 64 syllables: enough for any real question

_PART_RE = re.compile(r'(?P<neg>(?<!\S)-)?"(?P<phrase>[^"]*)"|(?P<negword>(?<!\S)-(?=[^\W_]))?(?P<text>[^"\s]+|")')


@dataclass(frozen=True, slots=True)
class Concept:
    """One query syllable: the folded term every typed form shares, and what was typed."""

    folded: str
    accented: str | None = None  # set when typed with diacritics: exact matches rank higher
    alternatives: tuple[tuple[str, str | None], ...] = ()  # e.g. a Telex reading: (folded, accented)
    weight: float = 1.0  # question words and the like weigh less
    counted: bool = True  # whether it takes part in the "holds all the words" rule

    @property
    def folded_forms(self) -> tuple[str, ...]:
        return (self.folded, *(f for f, _ in self.alternatives))


@dataclass(slots=True)
class Plan:
    """What to search: concepts in typed order, phrases that must match, exclusions."""

    text: str
    concepts: list[Concept] = field(default_factory=list)
    phrases: list[list[Concept]] = field(default_factory=list)
    excluded: list[list[Concept]] = field(default_factory=list)
    breaks: set[int] = field(default_factory=set)  # no compound spans concept i-1 -> i
    interpreted_as: str | None = None

    @property
    def empty(self) -> bool:
        return not self.concepts and not self.phrases

    def highlight_terms(self) -> set[str]:
        """Folded syllables to mark in snippets (all typed forms, never the excluded words)."""
        terms = {f for c in self.concepts for f in c.folded_forms}
        for phrase in self.phrases:
            terms.update(c.folded for c in phrase)
        return terms


def concept_for(word: str) -> Concept:
    """The concept for one syllable as typed (``Hoà`` -> folded ``hoa``, accented ``hòa``)."""
    accented = canonical_syllable(word)
    folded = fold(accented)
    return Concept(folded=folded, accented=accented if accented != folded else None)


def concepts_of(text: str) -> list[Concept]:
    return [concept_for(p.text) for p in syllables(text)]


def parse(text: str) -> Plan:
    """Parse a query; never raises.

    >>> plan = parse('hợp tác "Lào Cai" -bầu')
    >>> [c.folded for c in plan.concepts], [[c.folded for c in p] for p in plan.phrases]
    (['hop', 'tac', 'lao', 'cai'], [['lao', 'cai']])
    >>> [[c.folded for c in e] for e in plan.excluded]
    [['bau']]
    """
    plan = Plan(text=text)
    for m in _PART_RE.finditer(text):
        if m.group("phrase") is not None:
            words = concepts_of(m.group("phrase"))
            if not words:
                continue
            if m.group("neg"):
                plan.excluded.append(words)
                continue
            plan.breaks.add(len(plan.concepts))
            plan.phrases.append(words)
            plan.concepts.extend(words)
            plan.breaks.add(len(plan.concepts))
        else:
            words = concepts_of(m.group("text"))
            if not words:
                continue
            if m.group("negword"):
                plan.excluded.append(words)
                continue
            plan.concepts.extend(words)
    del plan.concepts[MAX_CONCEPTS:]
    return plan
