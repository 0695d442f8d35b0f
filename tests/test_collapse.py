"""Near-duplicates: one story told by several feeds is shown once, its copies listed in
``similar``, and facets count stories, not copies."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import search.ranking as ranking
from search import facets
from search.documents import Document
from search.engine import SearchEngine
from search.indexer import build_index
from search.ranking import Ranked
from search.stories import MAX_SIMILAR


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


class _Stories:
    """What story collapsing reads of a snapshot: which documents are copies, their story."""

    def __init__(self, story: np.ndarray) -> None:
        told = np.bincount(story)
        self._shared, self._story = told[story] > 1, story

    def shared_story(self) -> np.ndarray:
        return self._shared

    def codes(self, name: str) -> np.ndarray:
        assert name == "story"
        return self._story


class _Untimed:
    @staticmethod
    def _timed(_step: str, func, *args):
        return func(*args)


@pytest.mark.parametrize("needed", [1, 10, 37, 400])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_page_of_many_candidates_collapses_as_the_whole_list_would(
    monkeypatch: pytest.MonkeyPatch, needed: int, seed: int
) -> None:
    """Thousands of candidates, most of them copies of a few hundred stories, keys with ties:
    the page ordered and collapsed as far as it shows is the whole list's (every candidate in
    rank order, each story at its best copy), with its copies in rank order and the total of
    stories."""
    monkeypatch.setattr(ranking, "SORT_ALL", 0)
    rng = np.random.default_rng(seed)
    size = 20_000
    story = rng.integers(0, 300, size)  # 300 stories told many times ...
    story = np.where(rng.random(size) < 0.4, 300 + np.arange(size), story)  # ... and told once
    snap = _Stories(story)
    docs = np.sort(rng.choice(size, 6000, replace=False)).astype(np.int64)
    key = rng.integers(0, 50, docs.size).astype(np.float32)  # many ties
    ranked = Ranked(docs, key * 2, key)

    shown, scores, similar, total, exact = SearchEngine._ranked_page(
        _Untimed(), snap, ranked, needed, snap.shared_story()[docs]
    )

    stories: dict[int, list[int]] = {}  # positions of each story's copies, in rank order
    for position in np.lexsort((docs, -key)).tolist():
        stories.setdefault(int(story[docs[position]]), []).append(position)
    heads = list(stories.values())  # in the order of their best copies
    assert exact and total == len(stories) < docs.size
    assert shown.tolist() == [int(docs[m[0]]) for m in heads[:needed]]
    assert scores.tolist() == [float(key[m[0]] * 2) for m in heads[:needed]]
    for i, members in enumerate(heads[:needed]):
        expected = [int(docs[m]) for m in members[1 : MAX_SIMILAR + 1]]
        assert (similar(i) if similar else []) == expected


class _Coded:
    """What the facets read of a snapshot: coded columns, their labels and the pair codes."""

    def __init__(self, rng: np.random.Generator, size: int) -> None:
        self._labels = {
            "source": ["", "Báo A", "Báo B", "Báo C", "Báo D"],
            "year": ["", "2021", "2022", "2023"],
        }
        self._codes = {name: rng.integers(0, len(v), size) for name, v in self._labels.items()}
        self._codes["story"] = np.where(
            rng.random(size) < 0.5, rng.integers(0, 40, size), 40 + np.arange(size)
        )
        self._labels["story"] = [str(i) for i in range(40 + size)]
        self.pairs = self._codes["source"] * 4 + self._codes["year"]

    def labels(self, name: str) -> list[str]:
        return self._labels[name]

    def codes(self, name: str) -> np.ndarray:
        return self._codes[name]

    def facet_pairs(self) -> np.ndarray:
        return self.pairs


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("collapse", [False, True])
def test_both_facets_from_the_pair_codes_are_each_facet_counted_alone(
    seed: int, collapse: bool
) -> None:
    """Counting (source, year) pairs once gives each facet's counts, stories told by several
    copies counted once per value, the empty value left out, at most MAX_FACET_VALUES."""
    rng = np.random.default_rng(seed)
    snap = _Coded(rng, 3000)
    docs = np.sort(rng.choice(3000, 1200, replace=False))
    told = np.bincount(snap.codes("story"))
    shared = (told[snap.codes("story")] > 1)[docs] if collapse else None

    paired = facets.paired_facets(snap, docs, shared)  # type: ignore[arg-type]

    for name in ("source", "year"):
        expected: dict[str, set] = {}
        for doc in docs.tolist():
            value = snap.labels(name)[snap.codes(name)[doc]]
            story = snap.codes("story")[doc] if collapse else -1 - doc
            if value:
                expected.setdefault(value, set()).add(int(story))
        counts = sorted(((-len(s), v) for v, s in expected.items()))
        assert paired[name] == [{"value": v, "count": -n} for n, v in counts]
        assert paired[name] == facets.facet(snap, name, docs, shared)  # type: ignore[arg-type]
