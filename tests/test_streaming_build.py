"""Builds that never hold the archive: the sources are read once for each id's winning copy, and
the new and changed documents read again as they are written (``indexer.HELD_DOCS``)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from test_generation_files import _answers, _generation_dir, article, assert_exact, write_source

from search import indexer
from search.errors import SourceChanged
from search.existing import Existing
from search.indexer import Summary, reindex

QUERIES = ["lào cai", "mua lon", "giá vàng", "hoà bình", '"ủy ban"', "ubnd"]


def _runs(index: Path, src_one: Path, src_two: Path) -> list[tuple[int, int, int, int]]:
    """A full build of two sources (an id in both), then an incremental run with new, edited,
    deleted and unchanged documents; the summaries' counts."""
    rnd = random.Random(11)
    one = {f"a{i}": article(rnd, f"a{i}") for i in range(40)}
    two = {f"b{i}": article(rnd, f"b{i}") for i in range(10)}
    two["a7"] = article(rnd, "a7")  # the later source's copy wins
    write_source(src_one, one)
    write_source(src_two, two)
    first = reindex(index, [src_one, src_two], workers=1)
    for i in range(40, 46):
        one[f"a{i}"] = article(rnd, f"a{i}")
    for i in range(0, 10, 3):
        one[f"a{i}"] = article(rnd, f"a{i}")
    del one["a5"], two["b2"]
    two["a7"] = article(rnd, "a7")
    write_source(src_one, one)
    write_source(src_two, two)
    second = reindex(index, workers=1)
    return [(s.added, s.updated, s.removed, s.clashes) for s in (first, second)]


def test_documents_read_again_build_the_same_index(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    held = _runs(tmp_path / "held", tmp_path / "h1", tmp_path / "h2")
    monkeypatch.setattr(indexer, "HELD_DOCS", 3)  # every run reads its documents twice
    streamed = _runs(tmp_path / "streamed", tmp_path / "s1", tmp_path / "s2")
    assert held == streamed == [(50, 0, 0, 1), (6, 5, 2, 1)]
    assert _answers(tmp_path / "streamed", QUERIES) == _answers(tmp_path / "held", QUERIES)
    assert_exact(tmp_path / "streamed")
    ours, theirs = _generation_dir(tmp_path / "streamed"), _generation_dir(tmp_path / "held")
    for name in sorted(p.name for p in theirs.iterdir()):
        if name.startswith(("accent-", "suggest-", "vocabulary-")):
            assert (ours / name).read_bytes() == (theirs / name).read_bytes(), name


@pytest.mark.parametrize("bound", [1, 300])
def test_a_tally_folded_into_arrays_gives_the_same_counts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bound: int
) -> None:
    """``VNSEARCH_TALLY_KEYS``: a run folds the suggestions' tally into arrays whenever it
    holds more keys than that, and the accent pairs its batches sent into the run's table
    whenever that many rows wait (after every batch for 1; now and then for 300, leaving some
    for the end).  The full build and the incremental run (folded new documents, a tally,
    removed ones) write the very same counts, vocabulary and suggestions, byte for byte, as
    runs that never fold."""
    monkeypatch.setattr(indexer, "PROGRESS_STEP", 4)  # batches of 4 documents
    whole = _runs(tmp_path / "whole", tmp_path / "w1", tmp_path / "w2")
    folds: list[tuple[int, bool, int, int]] = []
    finish = indexer.VocabularyCount.finish

    def noted(self: indexer.VocabularyCount) -> None:
        assert self.tally is not None and self.accents is not None
        left = self.tally.keys() > 0
        folds.append((self.folds, left, self.accents.folds, self.accents._held))
        finish(self)

    monkeypatch.setattr(indexer.VocabularyCount, "finish", noted)
    monkeypatch.setenv("VNSEARCH_TALLY_KEYS", str(bound))
    folded = _runs(tmp_path / "folded", tmp_path / "f1", tmp_path / "f2")
    assert folded == whole == [(50, 0, 0, 1), (6, 5, 2, 1)]
    # full build: 13 batches; incremental: 11 new or changed documents, 3 batches.  Then the
    # suggestions' folds, whether a tally was left to save with them, the accent pairs' folds
    # and the rows left for the end.
    if bound == 1:
        assert folds == [(13, False, 13, 0), (3, False, 3, 0)]
    else:
        assert folds == [(2, True, 5, 72), (0, True, 1, 138)]
    assert_exact(tmp_path / "folded")
    ours, theirs = _generation_dir(tmp_path / "folded"), _generation_dir(tmp_path / "whole")
    names = sorted(p.name for p in theirs.iterdir())
    assert names == sorted(p.name for p in ours.iterdir())
    for name in names:
        if name.startswith(("accent-", "suggest-", "vocabulary-")):
            assert (ours / name).read_bytes() == (theirs / name).read_bytes(), name


def test_only_a_few_new_documents_are_held(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(indexer, "HELD_DOCS", 5)
    rnd = random.Random(3)
    docs = {f"d{i}": article(rnd, f"d{i}") for i in range(8)}
    src, index = tmp_path / "src", tmp_path / "index"
    write_source(src, docs)
    full = indexer._scan([str(src)], Summary(), False, Existing.of({}), True)
    assert full.held is None and len(full.copies) == 8  # a build of 8 holds no document
    reindex(index, [src], workers=1)
    docs["d2"] = article(rnd, "d2")
    docs["d9"] = article(rnd, "d9")
    write_source(src, docs)
    with indexer.whoosh_index.open_dir(str(index)).searcher() as searcher:
        existing = Existing.of(indexer._existing(searcher.reader(), None))
    run = indexer._scan([str(src.resolve())], Summary(), False, existing, False)
    assert run.held is not None and sorted(run.held) == ["d2", "d9"]


def test_a_source_changed_between_its_readings_leaves_the_index_unchanged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(indexer, "HELD_DOCS", 0)
    rnd = random.Random(5)
    docs = {f"d{i}": article(rnd, f"d{i}") for i in range(12)}
    src, index = tmp_path / "src", tmp_path / "index"
    write_source(src, docs)
    reindex(index, [src], workers=1)
    before = _answers(index, QUERIES)
    docs["d1"] = article(rnd, "d1")
    docs["d4"] = article(rnd, "d4")
    write_source(src, docs)
    scan = indexer._scan

    def edited_meanwhile(*args, **kwargs):
        found = scan(*args, **kwargs)
        docs["d4"] = article(rnd, "d4")  # an editor saves d4 again while the run goes on
        write_source(src, docs)
        return found

    monkeypatch.setattr(indexer, "_scan", edited_meanwhile)
    with pytest.raises(SourceChanged, match="1 of 2 new or changed documents were not found"):
        reindex(index, workers=1)
    assert _answers(index, QUERIES) == before
    monkeypatch.setattr(indexer, "_scan", scan)
    summary = reindex(index, workers=1)  # run again: both edits land
    assert (summary.added, summary.updated, summary.removed) == (0, 2, 0)
    assert_exact(index)
