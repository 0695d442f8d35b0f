"""The terms of a generation's tail are listed when it is warmed (``Snapshot.list_tail_terms``):
a query's term that no tail segment holds is then never looked up there, and every answer is the
one looking each term up gives."""

from __future__ import annotations

import logging
import random
from pathlib import Path

import pytest
from test_generation_files import article, write_source

from search import postings
from search.engine import SearchEngine
from search.indexer import reindex
from search.postings import ALL_VIEWS
from search.store.term_reader import SegmentTerms, Unsupported

QUERIES = (
    "lào cai",
    "lao cai",
    "laof cai",
    "LÀO CAI",
    "hoà bình",
    "hòa bình",
    "giá vàng",
    '"nắng nóng"',
    "zircon thạch anh",  # the new article's own words: in the tail alone
    "zircon",
)


@pytest.fixture
def tailed(tmp_path: Path) -> Path:
    """40 articles, then an incremental run: one edited, one added (whose title's words no
    other article holds): a base of 40 and a tail of 2."""
    rnd = random.Random(11)
    docs = {f"d{i}": article(rnd, f"d{i}") for i in range(40)}
    src, index = tmp_path / "src", tmp_path / "index"
    write_source(src, docs)
    reindex(index, [src], workers=1)
    docs["d3"]["body"] = " ".join(reversed(docs["d3"]["body"].split()))
    docs["n0"] = {**article(rnd, "n0"), "title": "Zircon thạch anh ở Lào Cai"}
    write_source(src, docs)
    summary = reindex(index, workers=1)
    assert (summary.added, summary.updated) == (1, 1)
    return index


def _answers(engine: SearchEngine) -> list[dict]:
    out = []
    for q in QUERIES:
        response = engine.search(q)
        response.pop("took_ms")
        out.append(response)
    return out


def _tail_lookups(engine: SearchEngine, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The terms looked up in the tail's segments from now on (a list that fills)."""
    snap = engine.snapshot()
    tail = {id(terms) for _, base, terms in snap._leaves if base >= snap.bound}
    asked: list[str] = []
    real = SegmentTerms.postings

    def postings_of(self, field: str, term: bytes):
        if id(self) in tail:
            asked.append(term.decode("utf-8"))
        return real(self, field, term)

    monkeypatch.setattr(SegmentTerms, "postings", postings_of)
    return asked


def test_the_tail_terms_are_every_term_of_its_text_fields(tailed: Path) -> None:
    engine = SearchEngine(tailed, warm=False)
    try:
        snap = engine.snapshot()
        assert (snap.bound, snap.size) == (40, 42)
        assert snap._tail_terms is None  # not listed until warmed
        assert snap.list_tail_terms() is True
        (leaf,) = [leaf for leaf, base, _ in snap._leaves if base >= snap.bound]
        expected = {t.decode("utf-8") for f, t in leaf.all_terms() if f in ALL_VIEWS}
        assert snap._tail_terms == expected
        assert {"zircon", "thach", "thạch", "lao", "lào"} <= expected
    finally:
        engine.close()


def test_listed_tail_terms_answer_as_looking_each_up(
    tailed: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every typed form: the same totals, hits, scores, highlights and facets; and only the
    terms the tail holds are looked up in it."""
    plain = SearchEngine(tailed, warm=False)
    try:
        looked_up = _tail_lookups(plain, monkeypatch)
        expected = _answers(plain)
        assert "cai" in looked_up and "vang" in looked_up
    finally:
        plain.close()
    monkeypatch.undo()
    engine = SearchEngine(tailed)  # warmed: its tail terms listed
    try:
        snap = engine.snapshot()
        engine.wait_warm()
        assert snap._tail_terms is not None
        snap._cache.clear()  # every term read again, the listing in use
        looked_up = _tail_lookups(engine, monkeypatch)
        assert _answers(engine) == expected
        assert [a["total"] for a in expected[-2:]] == [1, 1]  # "zircon": the new article
        assert looked_up and set(looked_up) <= snap._tail_terms
        absent = {"vàng", "vang", "gia vang"} - snap._tail_terms
        assert absent and not absent & set(looked_up)
    finally:
        engine.close()


def test_a_tail_too_large_to_list_is_looked_up_as_before(
    tailed: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(postings, "TAIL_TERMS_BYTES", 100)
    engine = SearchEngine(tailed)
    try:
        engine.snapshot()
        engine.wait_warm()
        assert engine.snapshot()._tail_terms is None
        assert engine.snapshot().list_tail_terms() is False
        assert engine.search("zircon")["total"] == 1
    finally:
        engine.close()


def test_a_damaged_tail_dictionary_is_logged_and_looked_up_as_before(
    tailed: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def damaged(self, fields, min_df):
        yield "title", "zircon", 1
        raise Unsupported("entry lengths")

    monkeypatch.setattr(SegmentTerms, "frequent", damaged)
    engine = SearchEngine(tailed, warm=False)
    try:
        with caplog.at_level(logging.WARNING, logger="search.postings"):
            assert engine.snapshot().list_tail_terms() is False
        assert engine.snapshot()._tail_terms is None
        assert [r.getMessage() for r in caplog.records] == [
            f"the tail terms of {tailed} could not be listed (entry lengths)"
        ]
        assert engine.search("lào cai")["total"] > 0
    finally:
        engine.close()


def test_without_a_tail_nothing_is_listed(tmp_path: Path) -> None:
    rnd = random.Random(12)
    src, index = tmp_path / "src", tmp_path / "index"
    write_source(src, {f"d{i}": article(rnd, f"d{i}") for i in range(10)})
    reindex(index, [src], workers=1)
    engine = SearchEngine(index, warm=False)
    try:
        snap = engine.snapshot()
        assert snap.bound == snap.size == 10
        assert snap.list_tail_terms() is False and snap._tail_terms is None
    finally:
        engine.close()
