"""The analyzer: exact terms, positions and offsets into the ORIGINAL text."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from search.analysis import EXTRA, FOLDED, PAIR_JOINER, VietnameseAnalyzer, index_terms

VIEWS = (VietnameseAnalyzer(FOLDED), VietnameseAnalyzer(EXTRA))


def _kind(term: str) -> int:
    """Order within a position: compound, accented syllable, folded syllable."""
    return 0 if "_" in term else 1 if not term.isascii() else 2


def tokens(text: str, mode: str = "index") -> list[tuple[str, int, int, int]]:
    """Both views' tokens (term, pos, startchar, endchar), by position; adjacent pairs are left
    to ``test_views_split_the_terms``."""
    found = [
        (t.text, t.pos, t.startchar, t.endchar)
        for analyzer in VIEWS
        for t in analyzer(text, positions=True, chars=True, mode=mode)
        if PAIR_JOINER not in t.text
    ]
    return sorted(found, key=lambda t: (t[1], _kind(t[0])))


def test_views_split_the_terms() -> None:
    folded = [t.text for t in VIEWS[0]("Hoà bình và hợp tác", mode="index")]
    extra = [t.text for t in VIEWS[1]("Hoà bình và hợp tác", mode="index")]
    assert folded == ["hoa", "binh", "va", "hop", "tac"]
    assert extra == [
        "hoa_binh",
        "hòa",
        "bình",
        "hoa binh",
        "và",
        "binh va",
        "hop_tac",
        "hợp",
        "va hop",
        "tác",
        "hop tac",
    ]


def test_index_terms_equals_the_analyzers_on_real_text() -> None:
    from tests.conftest import shared_path

    path = shared_path("seed", "000_62158ec9e2e359d5.txt")
    text = path.read_text(encoding="utf-8")
    folded, extra = index_terms(text)
    expected_folded: dict[str, int] = {}
    for t in VIEWS[0](text, mode="index"):
        expected_folded[t.text] = expected_folded.get(t.text, 0) + 1
    expected_extra: dict[str, int] = {}
    for t in VIEWS[1](text, mode="index"):
        expected_extra[t.text] = expected_extra.get(t.text, 0) + 1
    assert dict(folded) == expected_folded
    assert dict(extra) == expected_extra
    assert extra["lao_cai"] >= 10 and "lào" in extra and extra["lao cai"] >= extra["lao_cai"]


SENTENCE = "Hợp tác giữa Lào Cai và Lai Châu."


def test_index_mode_sentence_exact_terms() -> None:
    assert tokens(SENTENCE) == [
        ("hop_tac", 0, 0, 7),
        ("hợp", 0, 0, 3),
        ("hop", 0, 0, 3),
        ("tác", 1, 4, 7),
        ("tac", 1, 4, 7),
        ("giữa", 2, 8, 12),
        ("giua", 2, 8, 12),
        ("lao_cai", 3, 13, 20),
        ("lào", 3, 13, 16),
        ("lao", 3, 13, 16),
        ("cai", 4, 17, 20),
        ("và", 5, 21, 23),
        ("va", 5, 21, 23),
        ("lai_chau", 6, 24, 32),
        ("lai", 6, 24, 27),
        ("châu", 7, 28, 32),
        ("chau", 7, 28, 32),
    ]


def test_query_mode_emits_no_compounds() -> None:
    assert tokens(SENTENCE, mode="query") == [
        ("hợp", 0, 0, 3),
        ("hop", 0, 0, 3),
        ("tác", 1, 4, 7),
        ("tac", 1, 4, 7),
        ("giữa", 2, 8, 12),
        ("giua", 2, 8, 12),
        ("lào", 3, 13, 16),
        ("lao", 3, 13, 16),
        ("cai", 4, 17, 20),
        ("và", 5, 21, 23),
        ("va", 5, 21, 23),
        ("lai", 6, 24, 27),
        ("châu", 7, 28, 32),
        ("chau", 7, 28, 32),
    ]


def test_canonical_spelling_is_indexed() -> None:
    assert tokens("Hoà Kỹ", mode="query") == [
        ("hòa", 0, 0, 3),
        ("hoa", 0, 0, 3),
        ("kĩ", 1, 4, 6),
        ("ki", 1, 4, 6),
    ]


def test_nfd_input_offsets_point_into_the_original() -> None:
    text = unicodedata.normalize("NFD", "Hòa bình ở Lào Cai")
    assert len(text) == 23
    assert tokens(text) == [
        ("hoa_binh", 0, 0, 10),
        ("hòa", 0, 0, 4),
        ("hoa", 0, 0, 4),
        ("bình", 1, 5, 10),
        ("binh", 1, 5, 10),
        ("ở", 2, 11, 14),
        ("o", 2, 11, 14),
        ("lao_cai", 3, 15, 23),
        ("lào", 3, 15, 19),
        ("lao", 3, 15, 19),
        ("cai", 4, 20, 23),
    ]
    syllables = [text[s:e] for term, _, s, e in tokens(text, mode="query") if term.isascii()]
    nfd = [unicodedata.normalize("NFD", w) for w in ["Hòa", "bình", "ở", "Lào", "Cai"]]
    assert syllables == nfd


def test_zero_width_before_and_inside_words() -> None:
    text = "\u200bLào Cai hợp\u200btác"
    assert tokens(text, mode="query") == [
        ("lào", 0, 1, 4),
        ("lao", 0, 1, 4),
        ("cai", 1, 5, 8),
        ("hợptác", 2, 9, 16),
        ("hoptac", 2, 9, 16),
    ]


def test_zero_width_after_a_word_is_not_part_of_its_span() -> None:
    text = "Lào\u200b Cai\u200b."
    spans = [text[s:e] for term, _, s, e in tokens(text, mode="query") if term in ("lào", "cai")]
    assert spans == ["Lào", "Cai"]


def test_doubled_tone_mark_span_covers_the_whole_syllable() -> None:
    assert tokens("Hoa\u0300\u0300 bình", mode="query")[0][2:] == (0, 5)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Chiều 4/3", [("chiều", 0, 0, 5), ("chieu", 0, 0, 5), ("4", 1, 6, 7), ("3", 2, 8, 9)]),
        ("tăng 12,5%", [("tăng", 0, 0, 4), ("tang", 0, 0, 4), ("12,5", 1, 5, 9)]),
        ("1.000 người", [("1.000", 0, 0, 5), ("người", 1, 6, 11), ("nguoi", 1, 6, 11)]),
        ("2023 - 2025", [("2023", 0, 0, 4), ("2025", 1, 7, 11)]),
    ],
)
def test_numbers(text: str, expected: list[tuple[str, int, int, int]]) -> None:
    assert tokens(text, mode="query") == expected


def test_no_english_stop_words_are_removed() -> None:
    assert tokens("an to may the o", mode="query") == [
        ("an", 0, 0, 2),
        ("to", 1, 3, 5),
        ("may", 2, 6, 9),
        ("the", 3, 10, 13),
        ("o", 4, 14, 15),
    ]


def test_punctuation_takes_no_position_and_is_dropped() -> None:
    assert tokens("Lào, Cai!", mode="query") == [
        ("lào", 0, 0, 3),
        ("lao", 0, 0, 3),
        ("cai", 1, 5, 8),
    ]


@pytest.mark.parametrize("text", ["", "   ", "\u200b", "...", "\u0300"])
def test_nothing_to_index(text: str) -> None:
    assert tokens(text) == []


@settings(max_examples=150, deadline=None)
@given(st.text())
def test_analyzer_never_raises(text: str) -> None:
    tokens(text)
    tokens(text, mode="query")


@settings(max_examples=150, deadline=None)
@given(st.text())
@example("a\u0300\u0301")
def test_offsets_are_inside_the_text(text: str) -> None:
    for term, _, start, end in tokens(text):
        assert 0 <= start < end <= len(text), (term, start, end)
