"""Quoted and excluded phrases: decided by adjacent-pair postings, or checked in the text."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from search.documents import Document
from search.engine import SearchEngine
from search.indexer import build_index
from search.phrases import CHECK_ALL


def _docs(prefix: str, body: str, count: int, source: str, date: str) -> list[Document]:
    return [
        Document(
            id=f"{prefix}-{i:02}",
            title=f"Bản tin {prefix} {i}",
            body=body.format(i=i),
            source=source,
            date=date,
        )
        for i in range(count)
    ]


# "giá vàng tăng" as a phrase in 5 articles (2 across a comma, which the tokenizer reads as
# adjacent); more than CHECK_ALL hold both of its adjacent pairs but not the phrase (so they are
# checked only as far as a page needs); 12 hold its words apart.
PHRASE = _docs("phrase", "Hôm nay giá vàng tăng {i} lần.", 3, "Báo B", "2024-05-01")
COMMA = _docs("comma", "Nói về giá, vàng tăng {i} lần.", 2, "Báo C", "2024-06-01")
NEAR = _docs(
    "near", "Giá vàng sáng nay. Chiều nay vàng tăng {i} lần.", CHECK_ALL + 5, "Báo A", "2023-05-01"
)
APART = _docs("apart", "Vàng bạc {i} và giá rau hôm nay.", 12, "Báo A", "2023-05-01")
EXAM = [Document(id="exam", title="Kỳ thi tốt nghiệp", body="Lịch kỳ thi năm nay.")]
HOLDERS = {d.id for d in PHRASE + COMMA}


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SearchEngine]:
    path: Path = tmp_path_factory.mktemp("phrases") / "index"
    build_index(PHRASE + COMMA + NEAR + APART + EXAM, path, workers=1)
    engine = SearchEngine(path)
    yield engine
    engine.close()


def test_a_phrase_finds_exactly_its_documents_when_the_page_holds_them_all(
    engine: SearchEngine,
) -> None:
    result = engine.search('"giá vàng tăng"', per_page=50)
    assert {h["id"] for h in result["hits"]} == HOLDERS
    assert (result["total"], result["total_relation"]) == (5, "eq")
    assert result["facets"] == {
        "source": [{"value": "Báo B", "count": 3}, {"value": "Báo C", "count": 2}],
        "year": [{"value": "2024", "count": 5}],
    }


def test_a_small_page_checks_only_what_it_shows_and_says_the_total_is_a_lower_bound(
    engine: SearchEngine,
) -> None:
    result = engine.search('"gia vang tang"', per_page=2)
    assert len(result["hits"]) == 2 and {h["id"] for h in result["hits"]} <= HOLDERS
    # One document beyond the page is confirmed, so the reader knows there is a next page.
    assert (result["total"], result["total_relation"]) == (3, "gte")
    assert sum(v["count"] for v in result["facets"]["year"]) == 3  # lower bounds too
    last = engine.search('"gia vang tang"', per_page=2, page=3)
    assert len(last["hits"]) == 1 and last["hits"][0]["id"] in HOLDERS
    assert (last["total"], last["total_relation"]) == (5, "eq")  # checked to the end


def test_a_two_syllable_phrase_is_decided_by_its_pair_alone(engine: SearchEngine) -> None:
    result = engine.search('"giá vàng"', per_page=2)
    assert (result["total"], result["total_relation"]) == (len(NEAR) + 5, "eq")
    assert engine.search('"vàng giá"', per_page=2)["total"] == 0


def test_an_excluded_phrase_drops_only_documents_that_hold_it(engine: SearchEngine) -> None:
    result = engine.search('vàng -"giá vàng tăng"', per_page=100)
    assert {h["id"] for h in result["hits"]} == {d.id for d in NEAR + APART}
    assert (result["total"], result["total_relation"]) == (len(NEAR) + 12, "eq")


def test_a_source_filter_checks_phrases_within_that_source(engine: SearchEngine) -> None:
    result = engine.search('"giá vàng tăng"', per_page=1, source="Báo C")
    assert [h["id"] for h in result["hits"]] in (["comma-00"], ["comma-01"])
    assert (result["total"], result["total_relation"]) == (2, "eq")


def test_phrases_and_highlights_accept_both_spellings_of_a_lone_i_y(engine: SearchEngine) -> None:
    for query in ('"kì thi"', '"ky thi"', '"kỳ thi"'):
        result = engine.search(query)
        assert [h["id"] for h in result["hits"]] == ["exam"], query
        assert result["hits"][0]["title_html"] == "<mark>Kỳ</mark> <mark>thi</mark> tốt nghiệp"


def test_a_pair_seen_in_one_document_is_still_a_phrase(engine: SearchEngine) -> None:
    # "lịch kỳ" occurs once: the indexer pools such pairs into a shared bucket term.
    result = engine.search('"lịch kỳ"')
    assert [h["id"] for h in result["hits"]] == ["exam"]
    assert (result["total"], result["total_relation"]) == (1, "eq")
    assert engine.search('"kỳ lịch"')["total"] == 0
    # Every pair of a longer phrase: both of these are in a bucket (each in one document).
    for query in ('"lịch kỳ thi"', '"lich ky thi nam"', 'thi -"kỳ thi năm nay"'):
        expected = [] if query.startswith("thi -") else ["exam"]
        assert [h["id"] for h in engine.search(query)["hits"]] == expected, query
    assert engine.search('"lịch thi"')["total"] == 0


def test_a_minus_before_a_number_is_part_of_a_name_not_an_exclusion() -> None:
    from search.query import parse

    plan = parse("tên lửa S -500 và Su -34")
    assert plan.excluded == []
    assert [c.folded for c in plan.concepts][-4:] == ["500", "va", "su", "34"]
    assert [[c.folded for c in e] for e in parse("tên lửa -đạn").excluded] == [["dan"]]


def test_quotes_inside_a_sentence_are_quotation_marks_not_a_phrase() -> None:
    from search.query import SENTENCE_WORDS, parse

    sentence = 'Không ai có thể "mua lại" tuổi thơ của những đứa trẻ đã lớn lên'
    assert len(sentence.replace('"mua lại"', "").split()) > SENTENCE_WORDS
    plan = parse(sentence)
    assert plan.phrases == [] and "mua" in [c.folded for c in plan.concepts]
    assert [[c.folded for c in p] for p in parse('giá "mua lại" nhà').phrases] == [["mua", "lai"]]
