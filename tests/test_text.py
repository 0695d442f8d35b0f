"""Normalisation and folding: which spellings count as the same word."""

from __future__ import annotations

import unicodedata

import pytest

from search.text import (
    canonical_syllable,
    fold,
    has_diacritics,
    map_span,
    normalize,
    normalize_with_spans,
)


@pytest.mark.parametrize(
    ("old_style", "new_style", "canonical"),
    [
        ("hòa", "hoà", "hòa"),
        ("Hóa", "Hoá", "hóa"),
        ("tỏa", "toả", "tỏa"),
        ("khỏe", "khoẻ", "khỏe"),
        ("thủy", "thuỷ", "thủy"),
        ("Thúy", "Thuý", "thúy"),
        ("ủy", "uỷ", "ủy"),
    ],
)
def test_oa_oe_uy_have_one_tone_placement(old_style: str, new_style: str, canonical: str) -> None:
    assert canonical_syllable(old_style) == canonical
    assert canonical_syllable(new_style) == canonical


@pytest.mark.parametrize(
    "syllable", ["quý", "quỳ", "quà", "qua", "giá", "gì", "gìn", "khuya", "ngoằn"]
)
def test_qu_gi_onsets_and_closed_rhymes_are_left_alone(syllable: str) -> None:
    assert canonical_syllable(syllable) == syllable


@pytest.mark.parametrize(
    ("y_form", "i_form", "canonical"),
    [("kỹ", "kĩ", "kĩ"), ("Mỹ", "Mĩ", "mĩ"), ("lý", "lí", "lí"), ("ky", "ki", "ki")],
)
def test_lone_i_y_rhyme_after_a_consonant(y_form: str, i_form: str, canonical: str) -> None:
    assert canonical_syllable(y_form) == canonical
    assert canonical_syllable(i_form) == canonical


@pytest.mark.parametrize("syllable", ["tai", "tay", "y", "ý", "tuy", "quy"])
def test_y_that_is_not_a_lone_rhyme_stays(syllable: str) -> None:
    assert canonical_syllable(syllable) == syllable


def test_tay_and_tai_stay_different_words() -> None:
    assert canonical_syllable("tay") != canonical_syllable("tai")
    assert canonical_syllable("máy") != canonical_syllable("mái")


def test_canonical_syllable_lowercases_and_accepts_nfd() -> None:
    assert canonical_syllable("HOÀ") == "hòa"
    assert canonical_syllable(unicodedata.normalize("NFD", "Hoà")) == "hòa"
    assert canonical_syllable(unicodedata.normalize("NFD", "Việt")) == "việt"


def test_normalize_makes_nfc() -> None:
    nfd = unicodedata.normalize("NFD", "Tiếng Việt")
    assert nfd != "Tiếng Việt"
    assert normalize(nfd) == "Tiếng Việt"


def test_eth_lookalike_is_read_as_d_with_stroke() -> None:
    assert normalize("\u00d0à Nẵng") == "Đà Nẵng"
    assert normalize_with_spans("\u00d0à Nẵng") == ("Đà Nẵng", None, None)
    assert fold("\u00d0à") == "da"


def test_zero_width_characters_are_dropped() -> None:
    for zw in ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad"]:
        assert normalize(f"Lào{zw} Cai") == "Lào Cai"
        assert normalize(f"ph{zw}ố") == "phố"


def test_offsets_are_none_when_nothing_moved() -> None:
    assert normalize_with_spans("Lào Cai") == ("Lào Cai", None, None)
    assert normalize_with_spans("plain ascii") == ("plain ascii", None, None)


def test_offsets_map_nfd_back_to_the_original() -> None:
    assert normalize_with_spans("Ho\u0300a") == ("Hòa", [0, 1, 3], [1, 3, 4])


def test_offsets_map_zero_width_back_to_the_original() -> None:
    assert normalize_with_spans("Lào\u200bCai") == (
        "LàoCai",
        [0, 1, 2, 4, 5, 6],
        [1, 2, 3, 5, 6, 7],
    )
    assert normalize_with_spans("\u200b") == ("", [], [])
    # "Lào" keeps its own span: the dropped zero-width character after it is not part of it.
    assert map_span(0, 3, *normalize_with_spans("Lào\u200bCai")[1:]) == (0, 3)


def test_offsets_for_mixed_nfd_and_zero_width() -> None:
    original = "\u200bVie\u0323\u0302t\u200b Nam"
    norm, starts, ends = normalize_with_spans(original)
    assert norm == "Việt Nam"
    assert starts is not None and ends is not None and len(starts) == len(ends) == len(norm)
    assert map_span(0, 4, starts, ends) == (1, 7)  # "Việt", without the zero-width after it
    # Each normalised character comes from the original cluster starting at starts[i].
    assert [original[starts[i]] for i in range(len(norm))] == list("Vi") + ["e"] + list("t Nam")


@pytest.mark.parametrize(
    ("text", "folded"),
    [
        ("Đà Nẵng", "da nang"),
        ("NGƯỜI", "nguoi"),
        ("Ð", "d"),
        ("Thừa Thiên Huế", "thua thien hue"),
        ("ỹ", "y"),
        ("hello", "hello"),
    ],
)
def test_fold(text: str, folded: str) -> None:
    assert fold(text) == folded


def test_has_diacritics() -> None:
    assert has_diacritics("bán")
    assert has_diacritics("đi")
    assert not has_diacritics("ban")
    assert not has_diacritics("BAN")
