"""The typo fallback: which spellings it proposes, and that its work is bounded per query."""

from __future__ import annotations

import numpy as np
import pytest

from search import typos
from search.engine import SearchEngine
from search.typos import TypoTable, deletions, edit_distance


def test_deletions_are_every_string_up_to_depth_deletions_away() -> None:
    assert sorted(deletions("abc", 1)) == ["ab", "abc", "ac", "bc"]
    assert sorted(deletions("abc", 2)) == ["a", "ab", "abc", "ac", "b", "bc", "c"]


def test_edit_distance_counts_a_transposition_as_one_edit() -> None:
    assert edit_distance("covdi", "covid", 2) == 1
    assert edit_distance("thongg", "thong", 2) == 1
    assert edit_distance("nguoi", "nguoi", 2) == 0
    assert edit_distance("abcdef", "azcdeg", 2) == 2
    assert edit_distance("abcdefgh", "a", 2) == 3  # stops early: more than the limit


TABLE = TypoTable(
    [("thong", 50), ("thang", 80), ("thanh", 200), ("chong", 70), ("vietnam", 9), ("vietnamese", 3)]
)


def test_candidates_are_near_spellings_with_the_same_first_letter_most_frequent_first() -> None:
    # "thonh": thanh (1 sub), thong (1 sub); chong starts with another letter.
    assert TABLE.candidates("thonh") == ["thanh", "thong"]
    assert TABLE.candidates("thongg") == ["thong"]  # one extra letter
    assert TABLE.candidates("htong") == []  # a different first letter is never proposed


@pytest.mark.parametrize(
    ("change", "built"),
    [
        ("counts moved", []),
        ("a spelling added", ["thinh"]),
        ("one gone, one added", ["thinh"]),
        ("most of it new", None),  # past TAKE_NEW_SHARE: built afresh
    ],
)
def test_a_new_generations_table_takes_the_one_before(
    monkeypatch: pytest.MonkeyPatch, change: str, built: list[str] | None
) -> None:
    """The counts (and so the order) moved, a few spellings came or went: the table before is
    taken, renumbered, with entries built only for the new spellings; it answers as a table
    built afresh, with the new counts."""
    monkeypatch.setattr(typos, "TAKE_NEW_SHARE", 0.2)
    moved = [("thong", 500), ("vietnamese", 3), ("chong", 70), ("thanh", 20), ("thang", 80)]
    moved.append(("vietnam", 9))
    if change == "a spelling added":
        moved.append(("thinh", 40))
    elif change == "one gone, one added":
        moved = [(w, c) for w, c in moved if w != "chong"] + [("thinh", 40)]
    elif change == "most of it new":
        moved += [("thinh", 1), ("thuong", 2), ("trang", 3)]
    calls: list[list[str]] = []
    entries = TypoTable._entries

    def spy(words: list[str]):
        calls.append(list(words))
        return entries(words)

    monkeypatch.setattr(TypoTable, "_entries", staticmethod(spy))
    taken = TypoTable(moved, like=[TABLE])
    if built is None:
        assert calls == [[w for w, _ in moved]]
    else:
        assert calls == ([built] if built else [])
    fresh = TypoTable(moved)

    def pairs(table: TypoTable) -> list[tuple[int, str]]:
        return sorted(zip(table._keys.tolist(), [table.words[i] for i in table._ids], strict=True))

    assert pairs(taken) == pairs(fresh)  # every deletion string, under the same spelling
    assert np.all(np.diff(taken._keys) >= 0)  # sorted, for the binary searches
    assert taken.candidates("thonh") == fresh.candidates("thonh")
    assert taken.candidates("thonh")[0] == "thong"  # the count of 500 now leads
    for word in ("thongg", "vietnamm", "vietnamxx", "chonh", "thanb", "thinb", "htong"):
        assert taken.candidates(word) == fresh.candidates(word)
    assert ("chong" in taken.candidates("chonh")) is (change != "one gone, one added")
    assert ("thinh" in taken.candidates("thinb")) is (change != "counts moved")


def test_long_words_get_two_edits_short_ones_one() -> None:
    assert TABLE.candidates("vietnamm") == ["vietnam"]
    assert TABLE.candidates("vietnamxx") == ["vietnam"]  # two extra letters, 9 letters long
    assert TABLE.candidates("thxngg") == []  # six letters: one edit only


def test_words_too_short_or_too_long_are_not_looked_up() -> None:
    assert TABLE.candidates("tho") == []
    assert TABLE.candidates("t" * (typos.MAX_WORD_LETTERS + 1)) == []


def test_at_most_max_words_unknown_words_are_corrected(toy_engine: SearchEngine) -> None:
    # Five misspelled words of the toy corpus: the first four are corrected, the fifth is
    # searched as typed, so a query of many made-up words costs a bounded number of lookups.
    assert typos.MAX_WORDS == 4
    result = toy_engine.search("doann hangg giaii chauu tangg")
    assert result["interpreted_as"] == "doan hang giai chau tangg"
    assert result["total"] > 0


def test_a_corrected_query_searches_the_corrected_words(toy_engine: SearchEngine) -> None:
    result = toy_engine.search("hopp tacc")
    assert result["interpreted_as"] == "hop tac"
    assert [h["id"] for h in result["hits"]][0] == "laocai"


def test_the_mapped_vocabulary_gives_the_same_typo_candidates(toy_engine: SearchEngine) -> None:
    # Workers read the accent vocabulary from memory-mapped files: its folded counts, and so the
    # typo table, are those of the vocabulary counted from the text.
    vocab = toy_engine.snapshot().accents()
    assert dict(vocab.folded_counts()) == dict(vocab.to_counts().folded_counts())
    assert typos.table_for(vocab).candidates("doann") == ["doan"]


def test_an_over_long_word_does_not_take_a_correction(toy_engine: SearchEngine) -> None:
    # A 25-letter word is never corrected: the four corrections go to the words after it.
    result = toy_engine.search("t" * 25 + " doann hangg giaii chauu")
    assert result["interpreted_as"] == "t" * 25 + " doan hang giai chau"
