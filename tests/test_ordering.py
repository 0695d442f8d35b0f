"""Ordering only as far as a page needs gives the answer ordering every candidate gives."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import search.ranking as ranking
from search.documents import Document
from search.engine import SearchEngine
from search.indexer import build_index
from search.phrases import CHECK_ALL
from search.ranking import Ranked


@pytest.mark.parametrize("upto", [1, 3, 10, 57, 200, 1000])
def test_ordered_puts_the_best_first_in_rank_order_and_the_rest_in_docnum_order(
    monkeypatch: pytest.MonkeyPatch, upto: int
) -> None:
    monkeypatch.setattr(ranking, "SORT_ALL", 0)
    rng = np.random.default_rng(3)
    docs = np.sort(rng.choice(10_000, 400, replace=False)).astype(np.int64)
    key = rng.integers(0, 25, docs.size).astype(np.float64)  # many ties
    key[rng.random(docs.size) < 0.2] += 1e6  # a tier above
    ranked = Ranked(docs, key.astype(np.float32), key)

    order, exact = ranked.ordered(upto)

    full = np.lexsort((docs, -key))
    assert min(upto, docs.size) <= exact <= docs.size
    assert order[:exact].tolist() == full[:exact].tolist()
    assert order[exact:].tolist() == sorted(set(range(docs.size)) - set(order[:exact].tolist()))
    if exact < docs.size:  # everything left out ranks below what was ordered
        assert key[order[exact:]].max() < key[order[exact - 1]]


@pytest.mark.parametrize("upto", [1, 10, 44, 1000])
@pytest.mark.parametrize("above", [0, 3, 60])
def test_a_sampled_threshold_keeps_the_best_of_many_candidates(upto: int, above: int) -> None:
    """Past ``SAMPLE_SIZE`` candidates the best are looked for above a threshold a sample
    gives: the order is still the full sort's, ties included, whether few or many keys stand
    above the rest (``above``) and whatever the page needs."""
    rng = np.random.default_rng(upto * 100 + above)
    docs = np.sort(rng.choice(2_000_000, 90_000, replace=False)).astype(np.int64)
    key = rng.integers(0, 40, docs.size).astype(np.float32)  # many ties
    key[rng.choice(docs.size, above, replace=False)] += 1000.0
    ranked = Ranked(docs, key, key)

    order, exact = ranked.ordered(upto)

    full = np.lexsort((docs, -key))
    assert upto <= exact < docs.size
    assert order[:exact].tolist() == full[:exact].tolist()
    rest = np.ones(docs.size, dtype=bool)
    rest[order[:exact]] = False
    assert order[exact:].tolist() == np.flatnonzero(rest).tolist()
    assert key[order[exact:]].max() < key[order[exact - 1]]


def _doc(id_: str, title: str, body: str, source: str, date: str) -> Document:
    return Document(
        id=id_, title=title, lead=f"Tin: {title.lower()}.", body=body, source=source, date=date
    )


# Stories told several times (collapsed), documents that hold a phrase, documents that hold its
# pairs but not the phrase (more than CHECK_ALL: checked only as far as a page needs), and
# documents with the words apart; dates and sources vary so that every option reorders them.
DOCS = (
    [
        _doc(
            f"story-{s}-{c}",
            "Giá vàng tăng" + " vàng" * (6 - s) + f" lần {s}",  # a story's copies rank together
            "Giá vàng tăng" + " vàng" * c,
            f"Báo {'ABC'[c % 3]}",
            f"202{c % 4}-0{1 + s % 9}-1{c}",
        )
        for s in range(6)
        for c in range(12)
    ]
    + [
        _doc(
            f"near-{i:02}",
            f"Bản tin {i}",
            "Giá vàng sáng nay. Chiều nay vàng tăng" + " giá" * (i % 5),
            f"Báo {'AB'[i % 2]}",
            f"202{i % 3}-05-0{1 + i % 9}",
        )
        for i in range(CHECK_ALL + 8)
    ]
    + [
        _doc(
            f"apart-{i:02}",
            f"Rau {i}",
            f"Vàng bạc {i} và giá rau tăng" + " rau" * (i % 4),
            "Báo C",
            f"2019-0{1 + i % 9}-01",
        )
        for i in range(15)
    ]
)

QUERIES = [
    "giá vàng tăng",
    '"giá vàng tăng"',
    '"giá vàng tăng" sáng chiều',  # documents that fail the check rank first
    '"giá vàng tăng" tin',
    "gia vang",
    "vàng -rau",
    '"vàng tăng" giá',
    "tăng",
]
OPTIONS = [
    {"per_page": 1},
    {"per_page": 2, "page": 3},
    {"per_page": 3, "page": 5},
    {"per_page": 1, "sort": "newest"},
    {"per_page": 2, "collapse": False, "page": 4},
    {"per_page": 1, "source": "Báo A"},
    {"per_page": 2, "date_from": "2021"},
    {"per_page": 100},
]


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path: Path = tmp_path_factory.mktemp("ordering") / "index"
    build_index(DOCS, path, workers=1)
    yield path


@pytest.mark.parametrize(
    "options", OPTIONS, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items())
)
def test_partial_ordering_answers_as_ordering_everything(
    index: Path, monkeypatch: pytest.MonkeyPatch, options: dict
) -> None:
    """Same hits, scores, similar lists, totals (exact or lower bounds) and facets."""
    cut_short = []
    best = Ranked.best

    def spy(self: Ranked, upto: int) -> np.ndarray:
        top = best(self, upto)
        cut_short.append(top.size < self.total)
        return top

    monkeypatch.setattr(Ranked, "best", spy)
    long_lists = []  # lists without phrases, longer than the first ordering reaches
    ranked_page = SearchEngine._ranked_page

    def page_spy(self: SearchEngine, snap, candidates: Ranked, needed: int, shared):
        long_lists.append(candidates.total > 4 * (needed + 1))
        return ranked_page(self, snap, candidates, needed, shared)

    monkeypatch.setattr(SearchEngine, "_ranked_page", page_spy)
    answers = []
    for sort_all in (10**9, 0):  # everything sorted; only what the page needs
        monkeypatch.setattr(ranking, "SORT_ALL", sort_all)
        cut_short.clear()
        engine = SearchEngine(index, warm=False)
        answers.append(
            [
                {k: v for k, v in engine.search(q, **options).items() if k != "took_ms"}
                for q in QUERIES
            ]
        )
        engine.close()
    whole, partial = answers
    assert whole == partial
    assert all(a["total"] > 0 for a in whole)
    if options.get("sort") != "newest" and options["per_page"] < 100:
        assert any(cut_short)  # the partial path ran
        assert any(long_lists)  # ... and for lists without phrases too


def test_the_corpus_has_copies_and_unchecked_phrases(index: Path) -> None:
    """What the comparison above relies on: stories told more than once, and phrase totals that
    are lower bounds."""
    engine = SearchEngine(index, warm=False)
    assert any(h["similar"] for h in engine.search("giá vàng tăng", per_page=100)["hits"])
    assert engine.search('"giá vàng tăng"', per_page=1)["total_relation"] == "gte"
    engine.close()
