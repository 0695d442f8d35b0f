"""Query text -> a plan of concepts, phrases and exclusions.

The query goes through the same normalisation and syllable split as the documents
(``analysis.syllables``), so ``Hoà``, ``hòa``, ``HOA`` and NFD input all meet the same terms.  The
syntax is deliberately small and can never fail: ``"quoted text"`` must match as a phrase,
``-word`` and ``-"a phrase"`` exclude, everything else is words.  Unbalanced quotes, stray
operators and field or wildcard syntax are read as plain words; punctuation is ignored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from .abbreviations import find_alternatives
from .analysis import syllables
from .ranking_params import DEFAULT_PARAMS
from .telex import decode_query
from .text import canonical_syllable, fold

MAX_CONCEPTS = 64  # a longer query keeps its first 64 syllables: enough for any real question
MAX_PHRASES = 4  # quoted phrases (and, separately, exclusions) verified per query
# Question words (folded) that carry no topic: "giá xăng hôm nay là bao nhiêu?" is about "giá xăng".
QUESTION_PHRASES = tuple(
    tuple(p.split())
    for p in (
        "nhu the nao",
        "the nao",
        "ra sao",
        "la gi",
        "la ai",
        "o dau",
        "bao nhieu",
        "bao gio",
        "khi nao",
        "tai sao",
        "vi sao",
        "lam sao",
        "co phai",
        "phai khong",
        "duoc khong",
        "co khong",
        "hay khong",
        "nao",
        "gi",
        "dau",
        "khong",
        "chua",
        "nhi",
        "vay",
        "a",
    )
)

# ``-word`` excludes only a word that starts with a letter: ``S -500`` and ``-34`` are names and
# numbers, not exclusions.
_PART_RE = re.compile(
    r'(?P<neg>(?<!\S)-)?"(?P<phrase>[^"]*)"|(?P<negword>(?<!\S)-(?=[^\W\d_]))?(?P<text>[^"\s]+|")'
)
# More words than this outside quotes make a sentence (a pasted lead, a quotation): its quotes
# are quotation marks, not phrase syntax.  Reading them as phrases lost 12 of 200 dev abstract
# queries their article (``Không ai có thể "mua lại" tuổi thơ``).
SENTENCE_WORDS = 8


@dataclass(frozen=True, slots=True)
class Concept:
    """One query syllable: the folded term every typed form shares, and what was typed."""

    folded: str
    accented: str | None = None  # set when typed with diacritics: exact matches rank higher
    alternatives: tuple[
        tuple[str, str | None], ...
    ] = ()  # e.g. a Telex reading: (folded, accented)
    weight: float = 1.0  # question words and the like weigh less
    counted: bool = True  # whether it takes part in the "holds all the words" rule
    restored: str | None = None  # likely accented form of an unaccented word (a soft signal)

    @property
    def folded_forms(self) -> tuple[str, ...]:
        return (self.folded, *(f for f, _ in self.alternatives))


@dataclass(frozen=True, slots=True)
class Expansion:
    """Another way to write concepts ``start..end``: ``UBND`` for ``ủy ban nhân dân`` or back."""

    start: int
    end: int
    folded: tuple[str, ...]
    accented: tuple[str, ...]


@dataclass(slots=True)
class Plan:
    """What to search: concepts in typed order, phrases that must match, exclusions."""

    text: str
    concepts: list[Concept] = field(default_factory=list)
    phrases: list[list[Concept]] = field(default_factory=list)
    excluded: list[list[Concept]] = field(default_factory=list)
    breaks: set[int] = field(default_factory=set)  # no compound spans concept i-1 -> i
    expansions: list[Expansion] = field(default_factory=list)
    interpreted_as: str | None = None

    @property
    def empty(self) -> bool:
        return not self.concepts and not self.phrases

    def with_restored_accents(self, vocab) -> tuple[Plan, str | None]:
        """This plan with each unaccented word marked with its likely accented form, and the
        suggested query.  A new plan: plans may be cached and shared, so this one is never
        changed.

        The restored forms only add a small score (``ranking_params.Weights.restored``): the literal
        folded match still counts, so a wrong guess can never hide a document.
        """
        from .accents import restore, restore_query

        if vocab is None or not any(c.accented is None for c in self.concepts):
            return self, None
        typed = [
            c.accented or (c.alternatives[0][1] if c.alternatives else None) or c.folded
            for c in self.concepts
        ]
        restored = restore(typed, vocab)
        plan = self
        if restored is not None:
            plan = replace(
                self,
                concepts=[
                    replace(c, restored=r)
                    if c.accented is None and r != c.folded and r.isalpha()
                    else c
                    for c, r in zip(self.concepts, restored, strict=True)
                ],
            )
        if self.interpreted_as:
            # A Telex reading keeps the user's own accents; the corpus only lends capitals.
            cased = restore_query(" ".join(fold(w) for w in self.interpreted_as.split()), vocab)
            same = cased is not None and cased.casefold() == self.interpreted_as.casefold()
            suggestion = cased if same else self.interpreted_as
        else:
            suggestion = restore_query(self.text, vocab)
        if not suggestion or suggestion.casefold() == self.text.casefold():
            return plan, None
        return plan, " ".join(suggestion.split())

    def highlight_terms(self) -> set[str]:
        """Folded syllables to mark in snippets (all typed forms, never the excluded words)."""
        terms = {f for c in self.concepts for f in c.folded_forms}
        for expansion in self.expansions:
            terms.update(expansion.folded)
        for phrase in self.phrases:
            terms.update(c.folded for c in phrase)
        return terms

    def highlight_words(self) -> list[frozenset[str]]:
        """The query's words, each as the folded terms that show it in a text: its typed forms
        (``laof``, ``lao``) and the abbreviation that stands for it (``ubnd`` for ``ủy``).

        A snippet looks further into a text when its head shows too few of them: counting terms
        instead, a Telex query (two forms a word) looked further for 80% of its hits.
        """
        words: dict[frozenset[str], None] = {}
        for i, concept in enumerate(self.concepts):
            forms = set(concept.folded_forms)
            for expansion in self.expansions:
                if expansion.start <= i < expansion.end:
                    forms.update(expansion.folded)
            words[frozenset(f for f in forms if f)] = None
        return [w for w in words if w]

    def exact_terms(self) -> dict[str, frozenset[str]]:
        """Folded syllables the reader typed only with diacritics -> the accented forms to mark.

        For ``giá vàng`` only ``giá`` is marked, not ``gia`` in ``chuyên gia``; a syllable also
        typed without diacritics (or reached another way) is marked in every spelling.
        """
        exact: dict[str, set[str]] = {}
        loose: set[str] = set()
        # An abbreviation's reading has its own diacritics: ``TP.HCM`` marks ``thành phố Hồ``,
        # not ``thánh`` or ``căn hộ``; its unaccented syllables (``ban``, ``minh``) mark as typed.
        for expansion in self.expansions:
            for folded, accented in zip(expansion.folded, expansion.accented, strict=True):
                if accented and accented != folded:
                    exact.setdefault(folded, set()).add(canonical_syllable(accented))
                else:
                    loose.add(folded)
        for concept in self.concepts:
            if concept.accented and not concept.alternatives:
                exact.setdefault(concept.folded, set()).add(concept.accented)
            else:
                loose.update(concept.folded_forms)
        return {f: frozenset(forms) for f, forms in exact.items() if f not in loose}


def concept_for(word: str) -> Concept:
    """The concept for one syllable as typed (``Hoà`` -> folded ``hoa``, accented ``hòa``)."""
    accented = canonical_syllable(word)
    folded = fold(accented)
    return Concept(folded=folded, accented=accented if accented != folded else None)


def concepts_of(text: str, telex: bool = True) -> list[Concept]:
    """Concepts of a stretch of query text; Telex/VNI spellings get their decoded reading."""
    words = [p.text for p in syllables(text)]
    concepts = [concept_for(w) for w in words]
    if not telex or not words:
        return concepts
    decoded_text, changed = decode_query(text)
    if not changed:
        return concepts
    decoded = [p.text for p in syllables(decoded_text)]
    if len(decoded) != len(words):
        return concepts
    out = []
    for concept, word, reading in zip(concepts, words, decoded, strict=True):
        if reading != word and concept.accented is None:
            alt = concept_for(reading)
            concept = Concept(folded=concept.folded, alternatives=((alt.folded, alt.accented),))
        out.append(concept)
    return out


# Looked up by a query word (trying every phrase at every position cost more than the parse).
_QUESTIONS_BY_FIRST_WORD: dict[str, list[tuple[str, ...]]] = {}
for _phrase in QUESTION_PHRASES:
    _QUESTIONS_BY_FIRST_WORD.setdefault(_phrase[0], []).append(_phrase)


def _mark_questions(concepts: list[Concept], weight: float) -> list[Concept]:
    """Question words weigh ``weight`` and need not match, unless the query is nothing else."""
    folded = [c.folded for c in concepts]
    flags = [False] * len(concepts)
    for i, word in enumerate(folded):
        for phrase in _QUESTIONS_BY_FIRST_WORD.get(word, ()):
            n = len(phrase)
            if tuple(folded[i : i + n]) == phrase and concepts[i].alternatives == ():
                flags[i : i + n] = [True] * n
    if all(flags) or not any(flags) or len(concepts) < 3:
        return concepts
    return [
        replace(c, weight=weight, counted=False) if flag else c
        for c, flag in zip(concepts, flags, strict=True)
    ]


def _expansions(concepts: list[Concept]) -> list[Expansion]:
    typed = [c.accented or c.folded for c in concepts]
    out = []
    for alt in find_alternatives(typed):
        accented = tuple(canonical_syllable(s) for s in alt.replacement)
        out.append(Expansion(alt.start, alt.end, tuple(fold(s) for s in accented), accented))
    return out


def parse(
    text: str, literal: bool = False, question_weight: float = DEFAULT_PARAMS.question_weight
) -> Plan:
    """Parse a query; never raises.  Question words weigh ``question_weight``
    (``RankingParams.question_weight``).

    >>> plan = parse('hợp tác "Lào Cai" -bầu')
    >>> [c.folded for c in plan.concepts], [[c.folded for c in p] for p in plan.phrases]
    (['hop', 'tac', 'lao', 'cai'], [['lao', 'cai']])
    >>> [[c.folded for c in e] for e in plan.excluded]
    [['bau']]
    """
    plan = Plan(text=text)
    for m in _PART_RE.finditer(text):
        if m.group("phrase") is not None:
            words = concepts_of(m.group("phrase"), telex=not literal)
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
            words = concepts_of(m.group("text"), telex=not literal)
            if not words:
                continue
            if m.group("negword"):
                plan.excluded.append(words)
                continue
            plan.concepts.extend(words)
    if len(plan.concepts) - sum(len(p) for p in plan.phrases) > SENTENCE_WORDS:
        plan.phrases = []
    del plan.concepts[MAX_CONCEPTS:]
    # Each phrase or exclusion costs posting reads and maybe a look at stored text: a query keeps
    # a few (the rest of a phrase's words still count as words), so no query can run for seconds.
    del plan.phrases[MAX_PHRASES:]
    del plan.excluded[MAX_PHRASES:]
    plan.concepts = _mark_questions(plan.concepts, question_weight)
    plan.expansions = _expansions(plan.concepts)
    if not literal and any(c.alternatives for c in plan.concepts):
        decoded, changed = decode_query(text)
        plan.interpreted_as = decoded if changed else None
    return plan
