"""Near-duplicates: one story told by several feeds is shown once, its copies listed in
``similar``, and facets count stories, not copies."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from search.documents import Document
from search.engine import SearchEngine
from search.indexer import build_index


def _doc(id_: str, title: str, source: str, date: str, body: str = "") -> Document:
    lead = f"Tóm tắt: {title.lower()}."
    return Document(
        id=id_,
        title=title,
        lead=lead,
        body=body or "Nội dung về thủy điện.",
        source=source,
        date=date,
    )


DOCS = [
    # "Thủy điện mới" told three times by two feeds, the best copy (more matches) first.
    _doc("a-1", "Thủy điện mới", "Báo A", "2024-01-01", "Thủy điện, thủy điện và thủy điện."),
    _doc("a-2", "Thủy điện mới", "Báo B", "2024-01-02"),
    _doc("a-3", "Thủy điện mới", "Báo A", "2023-01-03"),
    _doc("b-1", "Thủy điện cũ", "Báo B", "2024-02-01"),
    _doc("c-1", "Thủy điện nhỏ", "Báo C", "2022-03-01"),
    _doc("c-2", "Thủy điện nhỏ", "Báo C", "2022-03-02"),
]


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SearchEngine]:
    path: Path = tmp_path_factory.mktemp("collapse") / "index"
    build_index(DOCS, path, workers=1)
    engine = SearchEngine(path)
    yield engine
    engine.close()


def test_each_story_is_shown_once_with_its_copies(engine: SearchEngine) -> None:
    result = engine.search("thủy điện")
    shown = {h["id"]: h["similar"] for h in result["hits"]}
    assert result["total"] == 3
    assert shown["a-1"] == ["a-2", "a-3"] or shown["a-1"] == ["a-3", "a-2"]
    assert shown["b-1"] == []
    assert len(shown) == 3 and any(v in (["c-2"], ["c-1"]) for k, v in shown.items() if k[0] == "c")


def test_without_collapsing_every_copy_is_a_hit(engine: SearchEngine) -> None:
    result = engine.search("thủy điện", collapse=False)
    assert result["total"] == 6 and all(h["similar"] == [] for h in result["hits"])


def test_facets_count_stories_once_per_value(engine: SearchEngine) -> None:
    facets = engine.search("thủy điện")["facets"]
    # Story a is in Báo A (twice) and Báo B; story b in Báo B; story c in Báo C (twice).
    assert facets["source"] == [
        {"value": "Báo B", "count": 2},
        {"value": "Báo A", "count": 1},
        {"value": "Báo C", "count": 1},
    ]
    assert facets["year"] == [
        {"value": "2024", "count": 2},
        {"value": "2022", "count": 1},
        {"value": "2023", "count": 1},
    ]


def test_typed_hits_carry_each_copys_title_source_and_date(engine: SearchEngine) -> None:
    response = engine.search_response("thủy điện")
    assert response.to_dict()["hits"] == [
        {k: v for k, v in hit.items() if k != "took_ms"}
        for hit in engine.search("thủy điện")["hits"]
    ]
    story = next(hit for hit in response.hits if hit.id == "a-1")
    by_id = {d.id: d for d in DOCS}
    assert {(s.id, s.title, s.source, s.date) for s in story.similar} == {
        (i, by_id[i].title, by_id[i].source, by_id[i].date) for i in ("a-2", "a-3")
    }
    assert story.to_dict()["similar"] == [s.id for s in story.similar]
