"""Snippets: the best passage of a hit, with the query's words marked."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from search import kernels
from search.query import parse
from search.results import (
    SNIPPET_HEAD_CHARS,
    _best_window,
    find_spans,
    fold_in_place,
    mark,
    matcher_for,
    plan_matcher,
    single_spaced,
    snippet,
)
from search.text import folded_regex

FILLER = "Một câu không liên quan gì cả. " * 60  # ~1,900 characters


def _snippet(text: str, query: str) -> str:
    plan = parse(query)
    return snippet(text, plan_matcher(plan))


def test_when_the_head_holds_every_word_the_passage_is_there() -> None:
    text = "Giá vàng hôm nay tăng mạnh. " + FILLER + "Giá vàng lại tăng."
    assert _snippet(text, "giá vàng").startswith("<mark>Giá</mark> <mark>vàng</mark> hôm nay")


def test_words_missing_from_the_head_are_looked_for_further() -> None:
    assert len(FILLER) > SNIPPET_HEAD_CHARS
    text = "Giá cả ổn định. " + FILLER + "Sau đó giá vàng lại tăng mạnh trong phiên chiều."
    result = _snippet(text, "giá vàng tăng")  # the head holds one of the three
    assert "<mark>giá</mark> <mark>vàng</mark> lại <mark>tăng</mark> mạnh" in result
    assert result.startswith("… ")


@pytest.mark.parametrize("query", ["Lào Cai mưa", "lao cai mua", "laof cai muwa", "LAO CAI MUA"])
def test_every_typed_form_counts_the_words_its_head_shows_alike(query: str) -> None:
    """Two of three words in the head are enough in every form: a Telex word's two spellings
    (``laof``, ``lao``) are one word, not two terms the head fails to show."""
    text = "Lào Cai hôm nay. " + FILLER + "Lào Cai mưa to."
    assert _snippet(text, query).startswith("<mark>Lào</mark> <mark>Cai</mark> hôm nay.")


def test_an_abbreviation_shows_the_words_it_stands_for() -> None:
    text = "Ủy ban nhân dân tỉnh họp. " + FILLER + "UBND tỉnh Lào Cai họp."
    plan = parse("UBND tỉnh Lào Cai")
    assert plan_matcher(plan).words_shown(find_spans(text[:40], plan_matcher(plan))) == 2
    assert _snippet(text, "UBND tỉnh Lào Cai").startswith("<mark>Ủy</mark> <mark>ban</mark>")


def test_an_abbreviation_marks_its_reading_with_its_diacritics() -> None:
    text = "Thánh địa, căn hộ ở Thành phố Hồ Chí Minh; TP.HCM, thanh pho ho chi minh."
    marked = [text[s:e] for s, e, _ in find_spans(text, plan_matcher(parse("TP.HCM")))]
    assert marked == ["Thành", "phố", "Hồ", "Chí", "Minh", "TP", "HCM", "minh"]
    # "minh" has no diacritics to hold to; "thanh", typed without them, marks every spelling
    loose = [text[s:e] for s, e, _ in find_spans(text, plan_matcher(parse("TP.HCM thanh")))]
    assert loose == ["Thánh", "Thành", "phố", "Hồ", "Chí", "Minh", "TP", "HCM", "thanh", "minh"]


def test_the_head_is_cut_on_a_space_never_inside_a_word() -> None:
    # "caiman" straddles the 1,200th character: "cai" must not be marked inside it.
    text = "x" * (SNIPPET_HEAD_CHARS - 4) + " caiman Lào Cai " + FILLER
    assert text[SNIPPET_HEAD_CHARS - 3 : SNIPPET_HEAD_CHARS + 3] == "caiman"
    result = _snippet(text, "cai")
    assert "<mark>cai</mark>man" not in result and "Lào <mark>Cai</mark>" in result


@pytest.mark.parametrize(
    "text",
    [
        "Lào Cai\nHà Nội",
        "một  hai",
        " đầu",
        "cuối ",
        "\nđầu",
        "cuối\n",
        "a\n\nb",
        "a \n b",
        "tab\there",
        "nbsp\xa0here",
        "ideographic\u3000space",
        "thin\u2009space",
        "line\u2028sep",
        "unit\x1fsep",
        "zero\u200bwidth",  # not whitespace: kept
        "",
        "\n",
    ],
)
def test_single_spaced_is_split_and_join(text: str) -> None:
    assert single_spaced(text) == " ".join(text.split())


def test_single_spaced_covers_every_whitespace_character() -> None:
    for code in range(0x3001):
        char = chr(code)
        for text in (f"x{char}y", f"{char}x y{char}", f" x{char}", f"{char}x "):
            assert single_spaced(text) == " ".join(text.split()), (hex(code), text)


@pytest.mark.parametrize(
    ("text", "terms", "marked"),
    [
        ("Toàn an ninh, An Giang", ["an"], ["an", "An"]),  # never inside "Toàn"
        ("Lan an, lanan lan", ["an", "lan"], ["Lan", "an", "lan"]),  # a term ending a word
        ("an đầu", ["an"], ["an"]),  # at the very start
        ("(an) x_an an1 1an", ["an"], ["an", "an"]),  # after punctuation or "_", not by digits
        ("Kỳ thi, kì thi, kia", ["ki"], ["Kỳ", "kì"]),  # a lone i/y rhyme: both spellings
        ("i y yi", ["i"], ["i"]),
        ("tăng 12,5% và 12,50%", ["12,5%"], ["12,5%"]),
        ("Lào Cai, Lao Cai, lào", ["lao", "cai"], ["Lào", "Cai", "Lao", "Cai", "lào"]),
        ("aaaaaa aa xaa aab aa", ["aa"], ["aa", "aa"]),  # never inside a longer word
        ("a" * 40 + " aa " + "xaa" * 12 + " aa", ["aa"], ["aa", "aa"]),  # past many inside words
    ],
)
def test_only_whole_words_are_marked(text: str, terms: list[str], marked: list[str]) -> None:
    assert [text[s:e] for s, e, _ in find_spans(text, matcher_for(terms))] == marked


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "python"])
@settings(max_examples=300, deadline=None)
@given(
    st.text(alphabet="aanlLtoàÀkiyỳĐđd _-1,%.\n😀", max_size=60),
    st.lists(st.sampled_from(["a", "an", "lan", "toan", "la", "1", "an1", "a-1", "_a", "%", "ki",
                              "ky", "k", "i", "aa", "kia", "d", "da", "dan", "dd", "lanan",
                              "t", "to", "ta", "ia", "ya", "al", "na", "ll", "ad"]),
             min_size=1, max_size=12),
)  # fmt: skip
def test_matches_are_those_of_a_whole_word_pattern(
    compiled: bool, text: str, terms: list[str]
) -> None:
    # find_spans finds terms of letters and digits without a regex (the compiled loop of
    # ``kernels.word_spans``, a hash table of the terms; in Python ``str.find`` and boundary
    # checks, single letters through a regex without a lookbehind; either way Python past
    # U+FFFF): its matches must be exactly those of the plain whole-word regex, ``ki`` spelled
    # ``ky`` too.
    if not compiled:
        kernels.compiled()
        saved, kernels._word_spans = kernels._word_spans, None
    try:
        _assert_whole_word_matches(text, terms)
    finally:
        if not compiled:
            kernels._word_spans = saved


def _assert_whole_word_matches(text: str, terms: list[str]) -> None:
    alternatives = sorted(set(terms), key=lambda t: (-len(t), t))
    body = "|".join(map(folded_regex, alternatives))
    whole_word = re.compile(rf"(?<![^\W_])(?:{body})(?![^\W_])")
    expected = [(m.start(), m.end(), m.group()) for m in whole_word.finditer(fold_in_place(text))]
    assert find_spans(text, matcher_for(terms)) == expected
    assert find_spans(text, matcher_for(terms), 2) == expected[:2]  # the first ones, in order


def _best_window_by_brute_force(spans: list[tuple[int, int, str]], width: int) -> int:
    """Every window that starts at a span: the most distinct terms, then the most spans, then
    the first.  A match longer than the window is a window of its own."""
    best = None
    for s, _, _ in spans:
        inside = [t for a, b, t in spans if a == s or (a >= s and b <= s + width)]
        score = (len(set(inside)), len(inside))
        if best is None or score > best[0]:
            best = (score, s)
    return best[1]


@given(
    st.lists(
        st.tuples(st.integers(0, 400), st.integers(1, 12), st.sampled_from("abcde")),
        min_size=1,
        max_size=40,
    ),
    st.integers(5, 120),
)
def test_best_window_holds_the_most_distinct_terms(raw, width: int) -> None:
    spans, pos = [], 0
    for gap, length, term in raw:  # ordered and apart, as matches in a text are
        spans.append((pos + gap, pos + gap + length, term))
        pos += gap + length
    assert _best_window(spans, width) == _best_window_by_brute_force(spans, width)


@pytest.mark.parametrize("text", ["a < b & c > d", "Lào Cai", "x &amp; y"])
def test_mark_escapes_exactly_what_html_needs(text: str) -> None:
    start = text.index(text.split()[-1])
    marked = mark(text, [(start, len(text), "x")])
    expected_head = text[:start].replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    tail = text[start:].replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    assert marked == f"{expected_head}<mark>{tail}</mark>"


def test_a_match_longer_than_the_snippet_is_a_passage_of_its_own() -> None:
    """A word longer than the snippet's width (a pasted code, a URL-like token) used to crash
    the passage search (KeyError): it is shown, cut on the width."""
    word = "x" * 300
    result = snippet("đầu " + word + " cuối" * 50, matcher_for([word]))
    assert result.startswith("đầu " + "x" * 200) and result.endswith(" …")
