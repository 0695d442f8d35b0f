"""The keys of a generation's tail dictionaries are listed when it is warmed
(``Snapshot.list_tail_keys``, ``store.tail_keys``): a query's term is then looked up only in the
tail segments whose hash tables hold one of its keys, and every answer is the one looking it up
in each segment gives.  That is the path of a generation without the tail's terms file
(``store.tail_terms``: an index written by an older vnsearch, a tail segment read through
Whoosh), so the fixtures remove those files."""

from __future__ import annotations

import logging
import random
from pathlib import Path

import pytest
from test_generation_files import article, write_source

from search.engine import SearchEngine
from search.indexer import reindex
from search.schema import TEXT_FIELDS, extra_field
from search.store import tail_keys
from search.store.tail_keys import TailKeys
from search.store.term_reader import SegmentTerms, Unsupported, key_hash

QUERIES = (
    "lào cai",
    "lao cai",
    "laof cai",
    "LÀO CAI",
    "hoà bình",
    "hòa bình",
    "giá vàng",
    '"nắng nóng"',
    "zircon thạch anh",  # the new article's own words: in the tail alone
    "zircon",
    "xenon",
    "kripton ở Lào Cai",
)


@pytest.fixture
def tailed(tmp_path: Path) -> Path:
    """40 articles, then an incremental run: one edited, one added (whose title's words no
    other article holds): a base of 40 and a tail of 2."""
    rnd = random.Random(11)
    docs = {f"d{i}": article(rnd, f"d{i}") for i in range(40)}
    src, index = tmp_path / "src", tmp_path / "index"
    write_source(src, docs)
    reindex(index, [src], workers=1)
    docs["d3"]["body"] = " ".join(reversed(docs["d3"]["body"].split()))
    docs["n0"] = {**article(rnd, "n0"), "title": "Zircon thạch anh ở Lào Cai"}
    write_source(src, docs)
    summary = reindex(index, workers=1)
    assert (summary.added, summary.updated) == (1, 1)
    return _without_tail_terms(index)


@pytest.fixture
def three_runs(tmp_path: Path) -> Path:
    """40 articles, then three incremental runs adding one article each, whose title holds a
    word no other article does (``zircon``, ``xenon``, ``kripton``): a tail of three segments.
    The second article has no lead, so its segment numbers its fields otherwise (Whoosh numbers
    the fields a segment holds in order)."""
    rnd = random.Random(13)
    docs = {f"d{i}": article(rnd, f"d{i}") for i in range(40)}
    src, index = tmp_path / "src", tmp_path / "index"
    write_source(src, docs)
    reindex(index, [src], workers=1)
    for i, word in enumerate(("Zircon", "Xenon", "Kripton")):
        lead = "" if word == "Xenon" else "Tin mới từ Lào Cai"
        docs[f"n{i}"] = {**article(rnd, f"n{i}"), "title": f"{word} ở Lào Cai", "lead": lead}
        write_source(src, docs)
        assert reindex(index, workers=1).added == 1
    return _without_tail_terms(index)


def _without_tail_terms(index: Path) -> Path:
    """``index`` with its generations' tail terms files removed."""
    removed = list(index.glob("vnsearch/gen-*/tail-*"))
    assert removed
    for path in removed:
        path.unlink()
    return index


def _answers(engine: SearchEngine) -> list[dict]:
    out = []
    for q in QUERIES:
        response = engine.search(q)
        response.pop("took_ms")
        out.append(response)
    return out


def _tail_lookups(engine: SearchEngine, monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, str]]:
    """(position in the tail, term) of each lookup in the tail's segments from now on."""
    snap = engine.snapshot()
    tail = {id(terms): at for at, (_, _, terms) in enumerate(snap._tail)}
    asked: list[tuple[int, str]] = []
    real = SegmentTerms.postings

    def postings_of(self, field: str, term: bytes):
        if id(self) in tail:
            asked.append((tail[id(self)], term.decode("utf-8")))
        return real(self, field, term)

    monkeypatch.setattr(SegmentTerms, "postings", postings_of)
    return asked


def _plain_answers(index: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[list, list]:
    """The answers of an engine that lists nothing (every term asked of every tail segment),
    and the lookups they made."""
    plain = SearchEngine(index, warm=False)
    try:
        asked = _tail_lookups(plain, monkeypatch)
        return _answers(plain), asked
    finally:
        plain.close()
        monkeypatch.undo()


def _listed(index: Path) -> SearchEngine:
    engine = SearchEngine(index)  # warmed: its tail's keys listed
    engine.snapshot()
    engine.wait_warm()
    engine.snapshot()._cache.clear()  # every term read again, the listing in use
    return engine


def _tail_terms(snap) -> list[set[str]]:
    """Each tail segment's terms (every field)."""
    return [{t.decode("utf-8") for _, t in leaf.all_terms()} for leaf, _, _ in snap._tail]


def test_the_listing_is_every_key_of_the_tail_dictionaries(tailed: Path) -> None:
    engine = SearchEngine(tailed, warm=False)
    try:
        snap = engine.snapshot()
        assert (snap.bound, snap.size) == (40, 42)
        assert snap._tail_keys is None  # not listed until warmed
        assert snap.list_tail_keys() is True
        ((leaf, _, terms),) = snap._tail
        prefixes = terms.prefixes
        expected = {key_hash(prefixes[f] + t) for f, t in leaf.all_terms()}
        listed = snap._tail_keys
        assert listed.listed == 1
        assert sorted(listed._hashes) == sorted(expected)
        assert set(listed._owners) == {0}
        # Each field the segment holds a term in, and no other (its lead and body are random
        # syllables, never "zircon"); a word no article holds, in none.
        held = {(f, t) for f, t in leaf.all_terms()}
        for term in ("zircon", "lào", "cai", "thạch_anh"):
            fields = [*TEXT_FIELDS, *(extra_field(f) for f in TEXT_FIELDS)]
            expected_fields = [[0] if (f, term.encode()) in held else [] for f in fields]
            assert listed.holding(term.encode(), fields) == expected_fields
        assert listed.holding(b"zircon", TEXT_FIELDS) == [[0], [], []]
        assert listed.holding("không-có-từ-này".encode(), TEXT_FIELDS) == [[], [], []]
    finally:
        engine.close()


def test_listed_tail_keys_answer_as_looking_each_up(
    tailed: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every typed form: the same totals, hits, scores, highlights and facets; and only the
    terms the tail holds are looked up in it."""
    expected, plain_asked = _plain_answers(tailed, monkeypatch)
    assert {"cai", "vang"} <= {term for _, term in plain_asked}
    engine = _listed(tailed)
    try:
        snap = engine.snapshot()
        asked = _tail_lookups(engine, monkeypatch)
        assert _answers(engine) == expected
        assert [a["total"] for a in expected[8:10]] == [1, 1]  # "zircon": the new article
        (held,) = _tail_terms(snap)
        looked_up = {term for _, term in asked}
        assert "zircon" in looked_up and looked_up <= held
        absent = {"vàng", "vang", "gia vang"} - held
        assert absent and not absent & looked_up
    finally:
        engine.close()


def test_only_the_tail_segments_holding_a_term_are_asked(
    three_runs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected, _ = _plain_answers(three_runs, monkeypatch)
    assert [a["total"] for a in expected[9:11]] == [1, 1]  # zircon, xenon
    assert expected[11]["hits"][0]["id"] == "n2"  # kripton ở Lào Cai
    engine = _listed(three_runs)
    try:
        snap = engine.snapshot()
        assert len(snap._tail) == 3 and snap._tail_keys.listed == 3
        numbers = [terms.prefixes for _, _, terms in snap._tail]
        assert "lead" not in numbers[1] and numbers[0]["title"] != numbers[1]["title"]
        assert numbers[0] == numbers[2]
        asked = _tail_lookups(engine, monkeypatch)
        assert engine.search("xenon")["hits"][0]["id"] == "n1"
        assert asked == [(1, "xenon")]  # the second run's segment, its title field alone
        snap._cache.clear()
        asked.clear()
        assert _answers(engine) == expected
        held = _tail_terms(snap)
        assert asked and all(term in held[at] for at, term in asked)
    finally:
        engine.close()


def test_a_hash_two_keys_share_costs_a_lookup_not_an_answer(
    three_runs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every listed segment said to hold every key (as if every hash collided): each is asked,
    and the answers are the same."""
    expected, _ = _plain_answers(three_runs, monkeypatch)
    engine = _listed(three_runs)
    try:
        monkeypatch.setattr(
            TailKeys, "holding", lambda self, term, fields: [[0, 1, 2] for _ in fields]
        )
        asked = _tail_lookups(engine, monkeypatch)
        assert _answers(engine) == expected
        assert {at for at, _ in asked} == {0, 1, 2}
    finally:
        engine.close()


def test_segments_past_the_bound_are_asked_for_every_term(
    three_runs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Room for the first tail segment's keys alone: it is listed, the others are asked for
    every term, and the answers are the same."""
    expected, _ = _plain_answers(three_runs, monkeypatch)
    engine = SearchEngine(three_runs, warm=False)
    try:
        first = engine.snapshot()._tail[0][2]
        monkeypatch.setattr(tail_keys, "MAX_KEYS", first.key_count // 2)
        engine.snapshot().list_tail_keys()
        listed = engine.snapshot()._tail_keys
        assert (listed.listed, listed._unlisted) == (1, (1, 2))
        assert listed.holding(b"zircon", TEXT_FIELDS) == [[0, 1, 2], [1, 2], [1, 2]]
        asked = _tail_lookups(engine, monkeypatch)
        assert _answers(engine) == expected
        held = _tail_terms(engine.snapshot())
        first = {term for at, term in asked if at == 0}
        assert "zircon" in first and first <= held[0]  # listed: asked for what it holds
        unlisted = [{term for at, term in asked if at == at_} for at_ in (1, 2)]
        assert unlisted[0] == unlisted[1] > first  # asked for every term
    finally:
        engine.close()


def test_a_tail_too_large_to_list_is_looked_up_as_before(
    tailed: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tail_keys, "MAX_KEYS", 10)
    engine = SearchEngine(tailed)
    try:
        engine.snapshot()
        engine.wait_warm()
        assert engine.snapshot()._tail_keys is None
        assert engine.snapshot().list_tail_keys() is False
        assert engine.search("zircon")["total"] == 1
    finally:
        engine.close()


def test_a_damaged_tail_dictionary_is_logged_and_looked_up_as_before(
    tailed: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def damaged(self):
        raise Unsupported("hash table past the file")

    monkeypatch.setattr(SegmentTerms, "key_hashes", damaged)
    engine = SearchEngine(tailed, warm=False)
    try:
        with caplog.at_level(logging.WARNING, logger="search.store.tail_keys"):
            assert engine.snapshot().list_tail_keys() is False
        assert engine.snapshot()._tail_keys is None
        assert [r.getMessage() for r in caplog.records] == [
            f"a tail segment of {tailed} could not be listed (hash table past the file): "
            "its terms are looked up"
        ]
        assert engine.search("zircon")["total"] == 1
    finally:
        engine.close()


def test_without_a_tail_nothing_is_listed(tmp_path: Path) -> None:
    rnd = random.Random(12)
    src, index = tmp_path / "src", tmp_path / "index"
    write_source(src, {f"d{i}": article(rnd, f"d{i}") for i in range(10)})
    reindex(index, [src], workers=1)
    engine = SearchEngine(index, warm=False)
    try:
        snap = engine.snapshot()
        assert snap.bound == snap.size == 10
        assert snap.list_tail_keys() is False and snap._tail_keys is None
        assert snap._tail == []
    finally:
        engine.close()
