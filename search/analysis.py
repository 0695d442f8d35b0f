"""The one Vietnamese analyzer, for indexing and for queries.

Pipeline (Whoosh style, ``Tokenizer | Filter | Filter``)::

    VietnameseTokenizer()   normalise (NFC, Ð, zero-width), split into syllables, numbers and
                            punctuation; offsets point into the ORIGINAL text
    | CompoundFilter()      pyvi word segmentation: adds ``hợp_tác`` at the position of ``hợp``
                            (index mode only; drops punctuation tokens in every mode)
    | ViewsFilter(view)     the terms of one view of the text (below)

Each text field is indexed in two views, for ``Hoà hợp tác``, both with frequencies only::

    folded  (recall):            hoa hop tac
    extra   (ranking, phrases):  hòa (accented, when it differs from folded),
                                 hop_tac (pyvi compound, folded),
                                 "hoa hop", "hop tac" (adjacent syllables, folded)

So a query in any typed form finds the document through the folded view, and an accented query
or one whose words stand as pyvi words or side by side ranks it higher through the extra view.
Adjacent pairs also decide quoted phrases, so no positions are stored: reading Whoosh's
pickled positions was most of the cost of loading a frequent term and of every phrase query.
The indexer stores a pair seen in only one document of its segment under a shared bucket term
(``pair_bucket``; ``indexer.POOLED``).
``index_terms`` computes both views in one pass for the indexer (Whoosh's token machinery costs
more than pyvi); ``tests/test_analysis.py`` pins that it equals the analyzers.  Whoosh pickles
these analyzers into the index schema: the import path ``search.analysis`` is part of the index
format.
"""

from __future__ import annotations

import re
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache

from whoosh.analysis import Composable, Filter, Token, Tokenizer

from .segmentation import word_starts
from .text import canonical_syllable, fold, map_span, normalize, normalize_with_spans

# Numbers with inner separators stay whole (``12,5``, ``1.000``); syllables are letter/digit runs
# without ``_``; any other non-space character is punctuation (kept for pyvi's context only).
_TOKEN_RE = re.compile(r"\d+(?:[.,]\d+)+|[^\W_]+|[^\w\s]")
COMPOUND_JOINER = "_"
PAIR_JOINER = " "  # ``lao cai``: two adjacent syllables (punctuation between them is ignored)
# A pair seen in one document of its segment is stored under one of PAIR_BUCKETS shared
# terms instead of its own (``indexer`` decides; ``phrases`` and ``ranking`` read both).
PAIR_BUCKETS = 1 << 16
BUCKET_PREFIX = "~"


def pair_bucket(pair: str) -> str:
    """The shared term a rare pair is stored under (``~`` and 4 hex digits; never a syllable)."""
    return f"{BUCKET_PREFIX}{zlib.crc32(pair.encode('utf-8')) % PAIR_BUCKETS:04x}"


@dataclass(frozen=True, slots=True)
class Piece:
    """One token of the normalised text: its text, and where it stands in the original."""

    text: str
    start: int
    end: int
    is_word: bool


def pieces(text: str) -> list[Piece]:
    """Split ``text`` into syllables/numbers and punctuation, offsets into ``text`` itself.

    >>> [(p.text, p.start, p.end) for p in pieces("Hoà, 12,5%")]
    [('Hoà', 0, 3), (',', 3, 4), ('12,5', 5, 9), ('%', 9, 10)]
    """
    norm, starts, ends = normalize_with_spans(text)
    out: list[Piece] = []
    for m in _TOKEN_RE.finditer(norm):
        word = m.group()
        s, e = map_span(*m.span(), starts, ends)
        out.append(Piece(word, s, e, word[0].isalnum()))
    return out


def syllables(text: str) -> list[Piece]:
    """Only the word pieces of ``text`` (syllables and numbers)."""
    return [p for p in pieces(text) if p.is_word]


class VietnameseTokenizer(Tokenizer):
    """Yields every piece; ``token.is_word`` tells syllables from punctuation.

    >>> [(t.text, t.pos, t.startchar, t.endchar) for t in VietnameseTokenizer()("Lào Cai.")]
    [('Lào', 0, 0, 3), ('Cai', 1, 4, 7), ('.', 1, 7, 8)]
    """

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self)

    def __call__(
        self,
        value: str,
        positions: bool = False,
        chars: bool = False,
        keeporiginal: bool = False,
        removestops: bool = True,
        start_pos: int = 0,
        start_char: int = 0,
        tokenize: bool = True,
        mode: str = "",
        **kwargs: object,
    ) -> Iterator[Token]:
        t = Token(positions, chars, removestops=removestops, mode=mode, **kwargs)
        pos = start_pos
        for piece in pieces(value):
            t.text = piece.text
            t.is_word = piece.is_word
            t.boost = 1.0
            t.stopped = False
            t.pos = pos if piece.is_word else max(pos - 1, start_pos)
            t.startchar = start_char + piece.start
            t.endchar = start_char + piece.end
            if piece.is_word:
                pos += 1
            yield t


class CompoundFilter(Filter):
    """Adds pyvi compounds (``Lào_Cai``) before their first syllable and drops punctuation.

    Segmentation is slow (a CRF over the whole text) and needs the context of the whole sentence,
    so it runs in index mode only; queries get their compounds from adjacent syllables instead.
    """

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self)

    def __call__(self, tokens: Iterator[Token]) -> Iterator[Token]:
        buffered = [t.copy() for t in tokens]
        if not buffered:
            return
        if buffered[0].mode != "index":
            yield from (t for t in buffered if t.is_word)
            return
        starts = word_starts([t.text for t in buffered])
        i, n = 0, len(buffered)
        while i < n:
            j = i + 1
            while j < n and not starts[j]:
                j += 1
            first = buffered[i]
            if j - i > 1:
                compound = first.copy()
                compound.text = COMPOUND_JOINER.join(t.text for t in buffered[i:j])
                compound.endchar = buffered[j - 1].endchar
                yield compound
            for t in buffered[i:j]:
                if t.is_word:
                    yield t
            i = j


FOLDED, EXTRA = "folded", "extra"


class ViewsFilter(Filter):
    """Keeps the terms of one view: ``folded`` syllables, or the ``extra`` ranking terms.

    >>> toks = VietnameseTokenizer()("Hoà bình", mode="index")
    >>> [t.text for t in ViewsFilter(EXTRA)(CompoundFilter()(toks))]
    ['hoa_binh', 'hòa', 'bình', 'hoa binh']
    """

    def __init__(self, view: str = FOLDED) -> None:
        self.view = view

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.view == self.view

    def __call__(self, tokens: Iterator[Token]) -> Iterator[Token]:
        extra = self.view == EXTRA
        previous: str | None = None
        for t in tokens:
            text = t.text
            folded, extras = _views(text)
            for term in extras if extra else folded:
                t.text = term
                yield t
            if extra and folded:  # a syllable (compounds have no folded term)
                if previous is not None:
                    t.text = previous + PAIR_JOINER + folded[0]
                    yield t
                previous = folded[0]


@lru_cache(maxsize=300_000)
def _views(text: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(folded-view terms, extra-view terms) of one token (syllable or ``_``-joined compound)."""
    if COMPOUND_JOINER in text:
        return (), (fold(canonical_term(text)),)
    accented = canonical_syllable(text)
    folded = fold(accented)
    return (folded,), ((accented,) if accented != folded else ())


def canonical_term(text: str) -> str:
    """Canonical accented form of a syllable or a ``_``-joined compound."""
    if COMPOUND_JOINER in text:
        return COMPOUND_JOINER.join(canonical_syllable(s) for s in text.split(COMPOUND_JOINER))
    return canonical_syllable(text)


def VietnameseAnalyzer(view: str = FOLDED) -> Composable:  # noqa: N802 - Whoosh naming
    """The analyzer stored in the schema for one view; see the module docstring."""
    return VietnameseTokenizer() | CompoundFilter() | ViewsFilter(view)


def index_terms(text: str) -> tuple[dict[str, int], dict[str, int]]:
    """Both views of ``text`` in one pass: term -> frequency for the folded and the extra view.

    Equal to running the two analyzers in index mode (``tests/test_analysis.py``), several times
    faster: no offsets, no token objects, and Python loops only where pyvi joined syllables.
    """
    tokens = _TOKEN_RE.findall(normalize(text))
    if not tokens:
        return {}, {}
    starts = word_starts(tokens)
    views = [_views(t) for t in tokens if t[0].isalnum()]
    syllables = [v[0][0] for v in views]
    folded = Counter(syllables)
    extra = Counter(a for v in views for a in v[1])
    extra.update(map(PAIR_JOINER.join, zip(syllables, syllables[1:], strict=False)))
    # A compound is the syllables of a run of tokens pyvi joined to the token before it.
    joined = [i for i, start in enumerate(starts) if not start]
    run_start = None
    for k, i in enumerate(joined):
        if run_start is None:
            run_start = i - 1
        if k + 1 == len(joined) or joined[k + 1] != i + 1:
            group = [t for t in tokens[run_start : i + 1] if t[0].isalnum()]
            if len(group) > 1:
                extra[_views(COMPOUND_JOINER.join(group))[1][0]] += 1
            run_start = None
    return folded, extra
