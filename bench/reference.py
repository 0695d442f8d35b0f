"""Baselines built with plain Whoosh, to measure vnsearch against.

* ``ReferenceIndex``: the "index twice" recipe.  Title, lead and body are each indexed twice: the
  accented syllables (``[^\\W_]+`` over NFC, lower case) and a unidecode-folded copy; the accented
  fields weigh twice as much.  Whoosh's default BM25F ranks an OR over every field of the query's
  syllables (accented syllables against the accented fields, folded ones against the folded
  fields).
* ``StraightforwardIndex``: what a first attempt looks like, for the speed benchmark: pyvi
  segmentation (``ViTokenizer.tokenize``), Whoosh's ``StandardAnalyzer`` on an accented field and
  the same plus ``CharsetFilter(accent_map)`` on a folded one, ``MultifieldParser`` with an OR
  group, and ``highlights()`` on the body for snippets.

Both have ``build(docs, dirpath)`` (which also opens the index), ``open(dirpath)`` for an index
built earlier, ``search(query, k) -> ids`` and ``close()``.  ``docs`` are any objects with ``id``,
``title``, ``lead`` and ``body`` attributes.
"""

from __future__ import annotations

import re
import unicodedata
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Protocol

import numpy as np
from unidecode import unidecode
from whoosh import index as whoosh_index
from whoosh.analysis import CharsetFilter, LowercaseFilter, RegexTokenizer, StandardAnalyzer
from whoosh.fields import ID, TEXT, Schema
from whoosh.qparser import MultifieldParser, OrGroup
from whoosh.query import Or, Query, Term
from whoosh.scoring import BM25F, bm25
from whoosh.searching import Searcher
from whoosh.support.charset import accent_map

PARTS = ("title", "lead", "body")
SYLLABLE_PATTERN = r"[^\W_]+"
_SYLLABLE_RE = re.compile(SYLLABLE_PATTERN)
WRITER_LIMITMB = 256


class DocLike(Protocol):
    """What the baselines read from a document."""

    id: str
    title: str
    lead: str
    body: str


def nfc(text: str) -> str:
    """Unicode NFC."""
    return unicodedata.normalize("NFC", text)


def _unique(items: Iterable[str]) -> list[str]:
    """Items in first-seen order, without repeats."""
    return list(dict.fromkeys(items))


class _WhooshBaseline:
    """Opening, closing and the shared searcher of a Whoosh-backed baseline."""

    name = "baseline"

    def __init__(self) -> None:
        self._index: whoosh_index.Index | None = None
        self._searcher: Searcher | None = None

    def schema(self) -> Schema:  # pragma: no cover - overridden
        raise NotImplementedError

    def fields_of(self, doc: DocLike) -> dict[str, str]:  # pragma: no cover - overridden
        raise NotImplementedError

    def build(self, docs: Iterable[DocLike], dirpath: str | Path) -> None:
        """Index ``docs`` into a new Whoosh index at ``dirpath`` and open it."""
        self.close()
        path = Path(dirpath)
        path.mkdir(parents=True, exist_ok=True)
        ix = whoosh_index.create_in(str(path), self.schema())
        writer = ix.writer(limitmb=WRITER_LIMITMB)
        for doc in docs:
            writer.add_document(**self.fields_of(doc))
        writer.commit()
        ix.close()
        self.open(path)

    def open(self, dirpath: str | Path) -> None:
        """Open an index built earlier with ``build``."""
        self.close()
        self._index = whoosh_index.open_dir(str(dirpath))
        self._searcher = self._index.searcher()

    @property
    def searcher(self) -> Searcher:
        """The open searcher (``build`` or ``open`` first)."""
        if self._searcher is None:
            raise RuntimeError(f"{self.name}: no index open; call build() or open() first")
        return self._searcher

    def close(self) -> None:
        """Release the searcher and the index."""
        if self._searcher is not None:
            self._searcher.close()
        if self._index is not None:
            self._index.close()
        self._searcher = self._index = None


class ReferenceIndex(_WhooshBaseline):
    """The "index twice" reference: accented syllables ×2 plus a unidecode-folded copy, BM25F."""

    name = "reference"
    ACCENTED_BOOST = 2.0

    def schema(self) -> Schema:
        """``id`` plus ``title``/``lead``/``body`` (accented, ×2) and their ``*_folded`` copies."""
        fields: dict[str, object] = {"id": ID(stored=True, unique=True)}
        for part in PARTS:
            fields[part] = TEXT(analyzer=self.analyzer(), field_boost=self.ACCENTED_BOOST)
            fields[f"{part}_folded"] = TEXT(analyzer=self.analyzer())
        return Schema(**fields)

    @staticmethod
    def analyzer() -> RegexTokenizer:
        """Syllables (``[^\\W_]+``), lower case; the input is NFC (or folded) already."""
        return RegexTokenizer(SYLLABLE_PATTERN) | LowercaseFilter()

    @staticmethod
    def folded(text: str) -> str:
        """The unidecode-folded copy of a text (``Đà Nẵng`` -> ``Da Nang``)."""
        return unidecode(nfc(text))

    def fields_of(self, doc: DocLike) -> dict[str, str]:
        """The field values for one document."""
        values: dict[str, str] = {"id": doc.id}
        for part in PARTS:
            text = nfc(getattr(doc, part) or "")
            values[part] = text
            values[f"{part}_folded"] = unidecode(text)
        return values

    def parse(self, query: str) -> Query:
        """OR over every field of the query's syllables, each distinct term once.

        >>> ReferenceIndex().parse("Đà Nẵng")  # doctest: +ELLIPSIS
        Or([Term('title', 'đà'), Term('title', 'nẵng'), Term('lead', 'đà'), ...
        """
        text = nfc(query).lower()
        accented = _unique(_SYLLABLE_RE.findall(text))
        folded = _unique(_SYLLABLE_RE.findall(unidecode(text).lower()))
        terms: list[Query] = []
        for part in PARTS:
            terms.extend(Term(part, syllable) for syllable in accented)
        for part in PARTS:
            terms.extend(Term(f"{part}_folded", syllable) for syllable in folded)
        return Or(terms)

    def search_whoosh(self, query: str, k: int = 10) -> list[str]:
        """Ids of the top ``k`` documents for ``query``, searched by Whoosh itself (slow).

        ``optimize=False``: Whoosh's block-quality skipping is lossy on long OR queries (it can
        drop a document that an exhaustive search ranks in the top 10).
        """
        parsed = self.parse(query)
        if not parsed.subqueries:
            return []
        return [hit["id"] for hit in self.searcher.search(parsed, limit=k, optimize=False)]

    def open(self, dirpath: str | Path) -> None:
        """Open an index built earlier with ``build``, and reset the per-term score cache."""
        super().open(dirpath)
        searcher = self.searcher
        self._doc_ids = [fields["id"] for fields in searcher.all_stored_fields()]
        self._lengths: dict[str, np.ndarray] = {}
        self._term_cache: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]] = {}

    def _field_lengths(self, fieldname: str) -> np.ndarray:
        """Whoosh's (byte-quantised) length of ``fieldname`` per document, as its scorer sees it."""
        if fieldname not in self._lengths:
            searcher = self.searcher
            self._lengths[fieldname] = np.array(
                [
                    searcher.doc_field_length(d, fieldname, 1)
                    for d in range(searcher.doc_count_all())
                ],
                dtype=np.float64,
            )
        return self._lengths[fieldname]

    def term_scores(self, fieldname: str, text: str) -> tuple[np.ndarray, np.ndarray]:
        """``(docnums, BM25F scores)`` of one term: exactly what Whoosh's ``BM25FScorer`` gives."""
        key = (fieldname, text)
        cached = self._term_cache.get(key)
        if cached is not None:
            return cached
        searcher = self.searcher
        docnums: list[int] = []
        weights: list[float] = []
        if (fieldname, text) in searcher.reader():
            matcher = searcher.postings(fieldname, text)
            while matcher.is_active():
                docnums.append(matcher.id())
                weights.append(matcher.weight())
                matcher.next()
        ids = np.array(docnums, dtype=np.int64)
        if ids.size:
            model = BM25F()
            idf = searcher.idf(fieldname, text)
            avgfl = searcher.avg_field_length(fieldname) or 1
            lengths = self._field_lengths(fieldname)[ids]
            scores = bm25(idf, np.array(weights), lengths, avgfl, model.B, model.K1)
        else:
            scores = np.zeros(0)
        self._term_cache[key] = (ids, scores)
        return ids, scores

    def search(self, query: str, k: int = 10) -> list[str]:
        """Ids of the top ``k`` documents for ``query`` (Whoosh's BM25F, summed with numpy).

        Ties go to the lower document number, as in Whoosh's collector.
        """
        parsed = self.parse(query)
        if not parsed.subqueries:
            return []
        total = np.zeros(len(self._doc_ids))
        matched = np.zeros(len(self._doc_ids), dtype=bool)
        for term in parsed.subqueries:
            ids, scores = self.term_scores(term.fieldname, term.text)
            total[ids] += scores
            matched[ids] = True
        candidates = np.flatnonzero(matched)
        order = np.lexsort((candidates, -total[candidates]))[:k]
        return [self._doc_ids[d] for d in candidates[order]]


def pyvi_tokenize(text: str) -> str:
    """pyvi's word segmentation: syllables of a word joined with ``_`` (``Đà_Nẵng``)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SyntaxWarning)
        from pyvi import ViTokenizer
    return ViTokenizer.tokenize(text) if text.strip() else ""


class StraightforwardIndex(_WhooshBaseline):
    """A first attempt: pyvi words, Whoosh's StandardAnalyzer, a folded copy, MultifieldParser."""

    name = "straightforward"
    FOLD_MAP = {**accent_map, ord("đ"): "d", ord("Đ"): "D"}

    def schema(self) -> Schema:
        """``id``; each part accented (body stored for snippets) and folded (``*_folded``)."""
        accented = StandardAnalyzer(stoplist=None, minsize=1)
        folded = StandardAnalyzer(stoplist=None, minsize=1) | CharsetFilter(self.FOLD_MAP)
        fields: dict[str, object] = {"id": ID(stored=True, unique=True)}
        for part in PARTS:
            fields[part] = TEXT(analyzer=accented, stored=part == "body")
            fields[f"{part}_folded"] = TEXT(analyzer=folded)
        return Schema(**fields)

    def fields_of(self, doc: DocLike) -> dict[str, str]:
        """pyvi-segmented text, the same string in the accented and the folded field."""
        values: dict[str, str] = {"id": doc.id}
        for part in PARTS:
            words = pyvi_tokenize(nfc(getattr(doc, part) or ""))
            values[part] = words
            values[f"{part}_folded"] = words
        return values

    def parser(self) -> MultifieldParser:
        """A parser over all six fields, terms joined by OR."""
        fields = [*PARTS, *(f"{part}_folded" for part in PARTS)]
        return MultifieldParser(fields, self.searcher.schema, group=OrGroup)

    def _results(self, query: str, k: int):  # noqa: ANN202 - whoosh.searching.Results
        parsed = self.parser().parse(pyvi_tokenize(nfc(query)))
        return self.searcher.search(parsed, limit=k)

    def search(self, query: str, k: int = 10) -> list[str]:
        """Ids of the top ``k`` documents for ``query``."""
        return [hit["id"] for hit in self._results(query, k)]

    def search_with_snippets(self, query: str, k: int = 10) -> list[dict[str, str]]:
        """Top ``k`` hits as ``{"id", "snippet"}``, the snippet from ``highlights("body")``."""
        return [
            {"id": hit["id"], "snippet": hit.highlights("body").replace("_", " ")}
            for hit in self._results(query, k)
        ]
