"""Ranking signals, one by one, and the ``RankingParams`` that weigh them (``search.ranking``)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import pytest

from search.documents import Document
from search.engine import SearchEngine
from search.indexer import build_index
from search.ranking import Ranked, rank
from search.ranking_params import DEFAULT_PARAMS, RankingParams

FILLER = [Document(id=f"f{i}", body=f"Tin thời sự số {i} trong ngày.") for i in range(20)]
DOCS = [
    Document(id="ban", body="Cửa hàng bán gỗ tốt."),
    Document(id="ban2", body="Cửa hàng bàn gỗ tốt."),
    Document(id="near", body="Lào Cai có mưa to."),
    Document(id="apart", body="Lào có mưa to Cai."),
    Document(id="both", body="Giá vàng tăng hôm nay, theo tin từ các cửa hàng trong phố."),
    Document(id="one", body="Giá vàng tăng. Giá vàng tăng. Giá vàng tăng."),
    Document(id="titled", title="Thủy điện", body="Tin ngắn."),
]


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ranking") / "index"
    build_index(DOCS + FILLER, path, workers=1)
    return path


@contextmanager
def ranked_for(
    index: Path, q: str, params: RankingParams = DEFAULT_PARAMS
) -> Iterator[tuple[Ranked, Sequence[str]]]:
    """``rank``'s answer for ``q`` under ``params``, and the id of each docnum."""
    engine = SearchEngine(index, warm=False, params=params)
    try:
        snapshot = engine.snapshot()
        yield rank(snapshot, engine.plan(q)), snapshot.column("id")
    finally:
        engine.close()


def scores(index: Path, q: str, params: RankingParams = DEFAULT_PARAMS) -> dict[str, float]:
    """Each candidate's score (without the tier bonuses) for ``q`` under ``params``."""
    with ranked_for(index, q, params) as (ranked, ids):
        return {ids[int(d)]: float(s) for d, s in zip(ranked.docs, ranked.scores, strict=True)}


def keys(index: Path, q: str, params: RankingParams = DEFAULT_PARAMS) -> list[str]:
    """Candidates in rank order."""
    with ranked_for(index, q, params) as (ranked, ids):
        order, _ = ranked.ordered(ranked.total)
        return [ids[int(ranked.docs[i])] for i in order]


def signals(**changes: float) -> RankingParams:
    return replace(DEFAULT_PARAMS, signals=replace(DEFAULT_PARAMS.signals, **changes))


def test_the_typed_diacritics_score_more(index: Path) -> None:
    on, off = scores(index, "bán"), scores(index, "bán", signals(accented=0.0))
    assert on["ban"] > on["ban2"]  # bán as typed, against bàn
    assert off["ban"] == pytest.approx(off["ban2"])  # the folded syllables alone tie them
    assert on["ban2"] == pytest.approx(off["ban2"])  # bàn gets nothing from the signal


def test_adjacent_syllables_score_more(index: Path) -> None:
    plain = signals(pair=0.0, compound=0.0)
    assert scores(index, "lào cai", plain)["near"] == pytest.approx(
        scores(index, "lào cai", plain)["apart"]
    )
    paired = scores(index, "lào cai", signals(compound=0.0))
    assert paired["near"] > paired["apart"]


def rank_keys(index: Path, q: str, params: RankingParams = DEFAULT_PARAMS) -> dict[str, float]:
    """Each candidate's rank key (the score with coordination and the bonuses) for ``q``."""
    with ranked_for(index, q, params) as (ranked, ids):
        return {ids[int(d)]: float(k) for d, k in zip(ranked.docs, ranked.key, strict=True)}


def test_holding_every_word_of_a_short_query_adds_a_bonus(index: Path) -> None:
    q = "giá vàng tăng nay"  # "one" lacks "nay" but repeats the other three
    found, key = scores(index, q), rank_keys(index, q)
    bonus, coord = DEFAULT_PARAMS.signals.all_words_bonus, DEFAULT_PARAMS.signals.coord
    assert (bonus, coord) == (2.0, 0.3)
    # every word, with the typed diacritics: the bonus twice, no coordination loss
    assert key["both"] == pytest.approx(found["both"] + 2 * bonus)
    # three of the four words: the score times (3/4) ** coord, no bonus
    assert key["one"] == pytest.approx(found["one"] * 0.75**coord, rel=1e-5)
    assert keys(index, q, signals(all_words_bonus=1e6))[:2] == ["both", "one"]  # a tier
    assert keys(index, q, signals(all_words_bonus=0.0, coord=0.0))[:2] == ["one", "both"]


def test_coordination_weighs_long_queries_too(index: Path) -> None:
    q = "giá vàng tăng hôm nay theo tin từ phố lớn"  # 10 words: no bonus, only coordination
    found, key = scores(index, q), rank_keys(index, q)
    assert key["both"] == pytest.approx(found["both"] * 0.9**0.3, rel=1e-5)  # 9 of 10: no "lớn"
    plain = rank_keys(index, q, signals(coord=0.0))
    assert plain["both"] == pytest.approx(found["both"])


def test_question_words_weigh_what_the_params_say() -> None:
    params = replace(DEFAULT_PARAMS, question_weight=0.5)
    engine = SearchEngine(Path("unused"), warm=False, params=params)
    weights = {c.folded: c.weight for c in engine.plan("giá vàng như thế nào").concepts}
    assert weights == {"gia": 1.0, "vang": 1.0, "nhu": 0.5, "the": 0.5, "nao": 0.5}


def test_field_weights_and_k1_come_from_the_params(index: Path) -> None:
    assert scores(index, "thủy điện")["titled"] > 0
    no_title = DEFAULT_PARAMS.with_field("weight", "title", 0.0)
    assert scores(index, "thủy điện", no_title)["titled"] == 0.0  # norms recomputed
    low_k1 = scores(index, "giá", replace(DEFAULT_PARAMS, k1=0.5))["one"]
    assert low_k1 < scores(index, "giá")["one"]  # a repeated word saturates sooner


def test_an_unknown_field_is_refused() -> None:
    with pytest.raises(KeyError):
        DEFAULT_PARAMS.with_field("b", "subtitle", 0.5)


def test_a_document_without_a_title_or_lead_leaves_length_normalisation_on(
    tmp_path: Path,
) -> None:
    """One article without a title or a lead made those fields' average length NaN, and with it
    every document's norm the bare field weight: a short title holding the words scored as a
    long one.  The average is over the documents that have the field (as Lucene's)."""
    body = "Tin ngắn trong ngày."
    docs = [
        Document(id="short", title="Thủy điện", lead="Thủy điện.", body=body),
        Document(
            id="long",
            title="Thủy điện và nhiều chuyện khác của tỉnh trong ngày hôm nay",
            lead="Thủy điện và nhiều chuyện khác của tỉnh trong ngày hôm nay, theo tin riêng.",
            body=body,
        ),
        Document(id="bare", body="Không có tiêu đề, không có sa pô."),
        *FILLER,
    ]
    path = tmp_path / "index"
    build_index(docs, path, workers=1)
    found = scores(path, "thủy điện")
    assert found["short"] > found["long"] * 1.05
    flat = DEFAULT_PARAMS.with_field("b", "title", 0.0).with_field("b", "lead", 0.0)
    unnormalised = scores(path, "thủy điện", flat)  # norms recomputed without length
    assert unnormalised["short"] == pytest.approx(unnormalised["long"], rel=1e-6)
