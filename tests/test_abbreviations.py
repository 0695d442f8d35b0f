"""Abbreviation alternatives: exact expectations both ways, folded input, non-overlapping spans."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from search.abbreviations import ENTRIES, Alternative, expand, find_alternatives
from search.telex import is_valid_syllable
from search.text import canonical_syllable, fold

UBND_LONG = ("ủy", "ban", "nhân", "dân")
HCM_LONG = ("thành", "phố", "hồ", "chí", "minh")


def _words(text: str) -> list[str]:
    return text.split()


def test_short_to_long() -> None:
    assert find_alternatives(_words("ubnd tỉnh")) == [Alternative(0, 1, UBND_LONG)]
    assert expand(_words("ubnd tỉnh")) == [list(UBND_LONG)]


def test_long_to_short() -> None:
    assert find_alternatives(_words("chủ tịch ủy ban nhân dân tỉnh")) == [
        Alternative(2, 6, ("ubnd",))
    ]
    assert expand(_words("ủy ban nhân dân")) == [["ubnd"]]


@pytest.mark.parametrize(
    "query",
    ["uỷ ban nhân dân", "ủy ban nhân dân", "uy ban nhan dan", "Ủy Ban Nhân Dân", "uy ban nhân dan"],
)
def test_long_form_spellings_agree(query: str) -> None:
    assert find_alternatives(_words(query)) == [Alternative(0, 4, ("ubnd",))]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("hdnd", ("hội", "đồng", "nhân", "dân")),
        ("hđnd", ("hội", "đồng", "nhân", "dân")),
        ("HĐND", ("hội", "đồng", "nhân", "dân")),
        ("mttq", ("mặt", "trận", "tổ", "quốc")),
        ("csgt", ("cảnh", "sát", "giao", "thông")),
        ("thpt", ("trung", "học", "phổ", "thông")),
        ("thcs", ("trung", "học", "cơ", "sở")),
        ("đh", ("đại", "học")),
        ("bhxh", ("bảo", "hiểm", "xã", "hội")),
        ("bhyt", ("bảo", "hiểm", "y", "tế")),
        ("cntt", ("công", "nghệ", "thông", "tin")),
        ("qdnd", ("quân", "đội", "nhân", "dân")),
        ("cand", ("công", "an", "nhân", "dân")),
        ("tand", ("tòa", "án", "nhân", "dân")),
        ("vksnd", ("viện", "kiểm", "sát", "nhân", "dân")),
        ("ubkt", ("ủy", "ban", "kiểm", "tra")),
        ("đbqh", ("đại", "biểu", "quốc", "hội")),
        ("nhnn", ("ngân", "hàng", "nhà", "nước")),
        ("kcn", ("khu", "công", "nghiệp")),
        ("hlv", ("huấn", "luyện", "viên")),
        ("vn", ("việt", "nam")),
        ("hn", ("hà", "nội")),
        ("dbscl", ("đồng", "bằng", "sông", "cửu", "long")),
        ("atgt", ("an", "toàn", "giao", "thông")),
        ("pccc", ("phòng", "cháy", "chữa", "cháy")),
        ("gtvt", ("giao", "thông", "vận", "tải")),
        ("tngt", ("tai", "nạn", "giao", "thông")),
        ("bch", ("ban", "chấp", "hành")),
        ("btv", ("ban", "thường", "vụ")),
        ("tw", ("trung", "ương")),
        ("ldld", ("liên", "đoàn", "lao", "động")),
        ("sn", ("sinh", "năm")),
        ("tp", ("thành", "phố")),
        ("ths", ("thạc", "sĩ")),
    ],
)
def test_single_short_forms(query: str, expected: tuple[str, ...]) -> None:
    assert find_alternatives([query]) == [Alternative(0, 1, expected)]


def test_tphcm_spellings() -> None:
    one_token = [
        Alternative(0, 1, ("tp", "hcm")),
        Alternative(0, 1, ("hcm",)),
        Alternative(0, 1, HCM_LONG),
    ]
    assert find_alternatives(["tphcm"]) == one_token
    assert find_alternatives(["tp.hcm"]) == one_token
    assert find_alternatives(["TP.HCM"]) == one_token
    assert find_alternatives(["tp", "hcm"]) == [
        Alternative(0, 2, ("tphcm",)),
        Alternative(0, 2, ("hcm",)),
        Alternative(0, 2, HCM_LONG),
    ]
    # "hcm" is part of "tp hcm": that alternative could only narrow the search.
    assert find_alternatives(["hcm"]) == [
        Alternative(0, 1, ("tphcm",)),
        Alternative(0, 1, HCM_LONG),
    ]
    assert expand(_words("thanh pho ho chi minh")) == [["tphcm"], ["tp", "hcm"], ["hcm"]]


def test_hcm_is_the_city_not_the_person() -> None:
    assert find_alternatives(_words("chủ tịch hồ chí minh")) == []


def test_joined_short_forms_also_match_split() -> None:
    long_forms = [
        ("giáo", "dục", "và", "đào", "tạo"),
        ("giáo", "dục", "đào", "tạo"),
    ]
    assert expand(["gd&đt"]) == [["gd", "đt"], *map(list, long_forms)]
    assert expand(["gdđt"]) == [["gd", "đt"], *map(list, long_forms)]
    assert expand(["gd", "dt"]) == [["gdđt"], *map(list, long_forms)]
    assert expand(_words("giáo dục và đào tạo")) == [["gdđt"], ["gd", "đt"], list(long_forms[1])]
    assert expand(["kh&cn"])[:2] == [["kh", "cn"], ["khoa", "học", "và", "công", "nghệ"]]


def test_several_spans_in_order_without_overlap() -> None:
    assert find_alternatives(_words("sở gd đt hà nội")) == [
        Alternative(1, 3, ("gdđt",)),
        Alternative(1, 3, ("giáo", "dục", "và", "đào", "tạo")),
        Alternative(1, 3, ("giáo", "dục", "đào", "tạo")),
        Alternative(3, 5, ("hn",)),
    ]


def test_longest_form_wins() -> None:
    assert find_alternatives(_words("viện kiểm sát nhân dân tối cao")) == [
        Alternative(0, 7, ("vksndtc",))
    ]
    assert find_alternatives(_words("đt việt nam")) == [
        Alternative(0, 3, ("đtvn",)),
        Alternative(0, 3, ("đt", "vn")),
        Alternative(0, 3, ("đội", "tuyển", "việt", "nam")),
    ]
    assert find_alternatives(_words("thi thpt quốc gia")) == [
        Alternative(1, 4, ("thptqg",)),
        Alternative(1, 4, ("thpt", "qg")),
        Alternative(1, 4, ("trung", "học", "phổ", "thông", "quốc", "gia")),
    ]


@pytest.mark.parametrize(
    "query",
    [
        "hả nói",  # typed with other diacritics: not Hà Nội
        "gdp tăng trưởng",  # GDP is searched as is
        "đt",  # ambiguous: đội tuyển, điện thoại, đào tạo
        "cp",
        "",
        "tin tức",
    ],
)
def test_no_alternatives(query: str) -> None:
    assert find_alternatives(_words(query)) == []


def test_mixed_folded_and_accented_syllables() -> None:
    assert expand(["ha", "nội"]) == [["hn"]]


def test_table_is_large_and_canonical() -> None:
    assert len(ENTRIES) >= 80
    for entry in ENTRIES:
        for form in entry.forms:
            assert all(syllable == canonical_syllable(syllable) for syllable in form)


def test_short_forms_never_fold_to_a_syllable() -> None:
    """Otherwise a plain word typed without diacritics (``tu``) would expand."""
    clashes = [
        form
        for entry in ENTRIES
        for form in entry.shorts
        if len(form) == 1 and is_valid_syllable(fold(form[0]))
    ]
    assert clashes == []


def test_folded_forms_belong_to_one_entry() -> None:
    seen: dict[tuple[str, ...], int] = {}
    for number, entry in enumerate(ENTRIES):
        for form in entry.forms:
            folded = tuple(fold(syllable) for syllable in form)
            assert seen.setdefault(folded, number) == number, folded


def test_every_form_finds_its_entry() -> None:
    for entry in ENTRIES:
        for form in entry.forms:
            alternatives = find_alternatives(list(form))
            assert alternatives, form
            assert {(a.start, a.end) for a in alternatives} == {(0, len(form))}


_VOCABULARY = sorted({s for entry in ENTRIES for form in entry.forms for s in form} | {"tỉnh", "x"})


@given(st.lists(st.sampled_from(_VOCABULARY), max_size=20))
def test_spans_are_ordered_and_disjoint(syllables: list[str]) -> None:
    alternatives = find_alternatives(syllables)
    last_end = 0
    spans = sorted({(a.start, a.end) for a in alternatives})
    for start, end in spans:
        assert last_end <= start < end <= len(syllables)
        last_end = end
    in_order = [(a.start, a.end) for a in alternatives]
    assert in_order == sorted(in_order)
    for alternative in alternatives:
        assert alternative.replacement != tuple(syllables[alternative.start : alternative.end])
