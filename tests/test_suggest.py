"""Suggest-as-you-type: completions from the index's titles, diacritic-insensitive."""

from __future__ import annotations

from pathlib import Path

from search.engine import SearchEngine
from search.suggest import SuggestionTable, highlight_prefix

TITLES = [
    "Lào Cai khai trương chợ phiên",
    "Mưa lớn ở Lào Cai",
    "Giá vàng tăng mạnh",
    "Giá vàng giảm nhẹ",
    "Lao động trẻ ở Hà Nội",
    "Hà Nội cấm xe máy",
]


def texts(table: SuggestionTable, prefix: str) -> list[str]:
    return [s.text for s in table.complete(prefix)]


def test_unaccented_prefix_completes_to_the_accented_phrase() -> None:
    table = SuggestionTable(TITLES)
    assert texts(table, "lao c")[0] == "Lào Cai"
    assert texts(table, "LÀO C")[0] == "Lào Cai"
    assert texts(table, "gia v") == ["Giá vàng", "Giá vàng giảm nhẹ", "Giá vàng tăng mạnh"]


def test_phrases_seen_once_are_left_to_the_whole_title() -> None:
    table = SuggestionTable(TITLES)
    assert "Hà Nội cấm xe máy" in texts(table, "ha noi c")
    assert "Hà Nội cấm" not in texts(table, "ha noi c")


def test_a_trailing_space_asks_for_the_next_word() -> None:
    table = SuggestionTable(TITLES)
    assert texts(table, "ha noi ") == ["Hà Nội cấm xe máy"]


def test_limit_and_no_match() -> None:
    table = SuggestionTable(TITLES)
    assert len(table.complete("l", limit=3)) == 3
    assert table.complete("xyz") == []
    assert table.complete("   ") == []


def test_highlight_marks_the_typed_part_only() -> None:
    assert highlight_prefix("Lào Cai", "lao c") == "<mark>Lào C</mark>ai"
    assert highlight_prefix("<b>Lào</b>", "x") == "&lt;b&gt;Lào&lt;/b&gt;"
    assert highlight_prefix("Đà Nẵng", "da n") == "<mark>Đà N</mark>ẵng"


def test_engine_suggest_shape(samples_index: Path) -> None:
    engine = SearchEngine(samples_index)
    result = engine.suggest("lao c")
    assert result["query"] == "lao c"
    assert result["suggestions"][0] == {"text": "Lào Cai", "html": "<mark>Lào C</mark>ai"}
    assert len(result["suggestions"]) <= 8
    assert engine.suggest("") == {"query": "", "suggestions": []}
    engine.close()


def test_equally_frequent_spellings_do_not_depend_on_the_order_of_titles() -> None:
    """The spelling that sorts last wins a tie (lower case sorts after capitals): a phrase seen
    once opening a title and once inside one is shown as written inside, whichever came first.
    Before, the first title seen decided, so a reindex that reordered documents changed it."""
    opening, inside = "Lào cai nắng to", "Mưa ở lào cai"  # a made-up lower-case "cai"
    for titles in ([opening, inside], [inside, opening]):
        assert texts(SuggestionTable(titles), "lao c")[0] == "lào cai"
    shouted, plain = "GIÁ XĂNG TĂNG MẠNH SÁNG NAY", "Giá xăng tăng mạnh sáng nay!"
    for titles in ([shouted, plain], [plain, shouted]):
        assert texts(SuggestionTable(titles), "gia xang tang manh s") == [plain]


def test_the_table_is_derived_from_exact_counts() -> None:
    """Titles added and removed in any order give the table of the titles that remain."""
    from search.store.suggest_files import SuggestCounts
    from search.suggest import add_tally, count_titles, table_arrays

    counts = add_tally(SuggestCounts.empty(), count_titles(TITLES + ["Lào Cai mưa đá"]))
    removed = count_titles(["Lào Cai mưa đá", "Giá vàng tăng mạnh"])
    gone = count_titles([])
    gone.subtract(removed)
    counts = add_tally(counts, gone)
    rest = [t for t in TITLES if t != "Giá vàng tăng mạnh"]
    assert counts.equals(add_tally(SuggestCounts.empty(), count_titles(rest)))
    table = SuggestionTable(arrays=table_arrays(counts))
    assert texts(table, "gia v") == ["Giá vàng giảm nhẹ"]
    assert texts(table, "lao c") == texts(SuggestionTable(rest), "lao c")


def test_a_shared_hash_never_merges_two_phrases(monkeypatch) -> None:
    """Rows are told apart by a hash of their folded key first; equal hashes are compared byte
    for byte, so even a hash that never differs gives the same table."""
    import search.suggest as suggest

    expected = SuggestionTable(TITLES).arrays
    monkeypatch.setattr(suggest, "folded_hash", lambda folded: 7)
    arrays = SuggestionTable(TITLES).arrays
    for name in ("keys", "texts", "title_keys", "title_texts"):
        assert getattr(arrays, name).tolist() == getattr(expected, name).tolist(), name
    assert arrays.weights.tolist() == expected.weights.tolist()
