"""The tail's terms file (``store.tail_terms``): an incremental run writes every term of the
generation's tail with its BM25F arrays, workers map it, and each tail term is then read from it
instead of being looked up in each tail segment; the arrays, and so every answer, are the ones
the segments give, bit for bit."""

from __future__ import annotations

import json
import logging
import random
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from test_generation_files import article, write_source
from test_tail_keys import _answers

from search.engine import SearchEngine
from search.indexer import reindex
from search.ranking_params import DEFAULT_PARAMS
from search.store import columns as store_columns
from search.store import shared_postings, tail_terms
from search.store.generation import generation_dir
from search.store.segment_merge import MergePolicy
from search.store.strings import StringArray
from search.store.tail_terms import META, PREFIX, VIEWS, TailTerms, write_tail_terms
from search.store.term_reader import SegmentTerms


class Archive:
    """An index of 40 articles and its source, with incremental runs made one at a time."""

    def __init__(self, root: Path) -> None:
        self.rnd = random.Random(17)
        self.docs = {f"d{i}": article(self.rnd, f"d{i}") for i in range(40)}
        self.src, self.index = root / "src", root / "index"
        write_source(self.src, self.docs)
        reindex(self.index, [self.src], workers=1)

    def run(self, **changes: dict | None) -> None:
        """Add, replace (``{...}``) or drop (``None``) articles, then reindex."""
        for doc_id, doc in changes.items():
            if doc is None:
                del self.docs[doc_id]
            else:
                self.docs[doc_id] = doc
        write_source(self.src, self.docs)
        reindex(self.index, workers=1)

    def new(self, doc_id: str, title: str, lead: str = "Tin mới từ Lào Cai") -> dict:
        return {**article(self.rnd, doc_id), "title": title, "lead": lead}


@pytest.fixture
def archive(tmp_path: Path) -> Archive:
    """Three incremental runs after the first build: one adds ``zircon``'s article and edits
    an old one, one adds ``xenon``'s (no lead), one adds ``kripton``'s."""
    archive = Archive(tmp_path)
    d3 = {**archive.docs["d3"], "body": " ".join(reversed(archive.docs["d3"]["body"].split()))}
    archive.run(n0=archive.new("n0", "Zircon thạch anh ở Lào Cai"), d3=d3)
    archive.run(n1=archive.new("n1", "Xenon ở Lào Cai", lead=""))
    archive.run(n2=archive.new("n2", "Kripton ở Lào Cai"))
    return archive


def _tail_dictionary_terms(snap) -> set[str]:
    """Every term (both views) of the tail's segments that a live document holds."""
    terms: set[str] = set()
    for leaf, first, _ in snap._tail:
        for field, term in leaf.all_terms():
            if field not in VIEWS:
                continue
            docs = [first + d for d in leaf.postings(field, term).all_ids()]
            if any(snap.live[d] for d in docs):
                terms.add(term.decode("utf-8"))
    return terms


def _same_as_the_segments(snap, terms) -> None:
    """Each term's tail postings from the file are those read from the segments, bit for bit."""
    mapped = snap._tail_terms
    assert mapped is not None
    for term in terms:
        from_file = snap._tail_postings(term)
        snap._tail_terms = None
        try:
            read = snap._load(term, None, snap.bound, snap.size)
        finally:
            snap._tail_terms = mapped
        assert (from_file.df, from_file.held) == (read.df, read.held), term
        assert (from_file.dense is None) == (read.dense is None), term
        if read.dense is not None:
            assert from_file.dense.tobytes() == read.dense.tobytes(), term
        else:
            assert from_file.docs.tolist() == read.docs.tolist(), term
            assert from_file.weight.tobytes() == read.weight.tobytes(), term


def _replace(path: Path, write) -> None:
    """``path`` replaced by what ``write`` writes (to a new file, renamed over it)."""
    new = path.with_name(f"new-{path.name}")
    write(new)
    new.replace(path)


def _without_files(index: Path) -> None:
    for path in index.glob(f"vnsearch/gen-*/{PREFIX}*"):
        path.unlink()


def test_each_run_writes_the_tail_terms_as_the_segments_give_them(archive: Archive) -> None:
    index = archive.index
    generations = sorted(index.glob("vnsearch/gen-*"))
    assert len(generations) == 2  # the last one, and the one before for workers switching
    engine = SearchEngine(index, warm=False)
    try:
        snap = engine.snapshot()
        assert (snap.bound, snap.size) == (40, 44)  # d3's old copy still counted, deleted
        assert snap._tail_terms is not None and snap._tail_keys is None
        meta = json.loads((generation_dir(index, snap.generation) / META).read_text("utf-8"))
        assert (meta["bound"], meta["size"]) == (40, 44)
        assert [count for _, count in meta["segments"]] == [2, 1, 1]
        held = _tail_dictionary_terms(snap)
        names = set(snap._tail_terms.table.names)
        assert names == held
        assert {"zircon", "xenon", "kripton", "thạch", "thach_anh", "lao cai"} <= names
        _same_as_the_segments(snap, sorted(held) + ["không-có-từ-này", "vàng"])
        assert not snap.list_tail_keys()  # nothing left to list
        zircon = snap._tail_postings("zircon")
        assert zircon.docs.tolist() == [1]  # n0: after d3's new copy
    finally:
        engine.close()


def test_the_answers_are_the_ones_the_segments_give(archive: Archive) -> None:
    engine = SearchEngine(archive.index)
    try:
        engine.wait_warm()
        assert engine.snapshot()._tail_terms is not None
        with_file = _answers(engine)
    finally:
        engine.close()
    _without_files(archive.index)
    plain = SearchEngine(archive.index)
    try:
        plain.wait_warm()
        assert plain.snapshot()._tail_terms is None
        assert _answers(plain) == with_file
    finally:
        plain.close()
    assert [a["total"] for a in with_file[9:11]] == [1, 1]
    assert with_file[11]["hits"][0]["id"] == "n2"


def test_a_run_reads_only_its_own_segment_and_drops_what_it_deleted(
    archive: Archive, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fourth run edits ``n0`` (an article of the first run's segment) so that its title
    loses ``zircon``, and adds ``n3``: only the run's segment is read, the earlier arrays are
    kept without n0's old copy, and the file is the one reading every tail segment gives.  (The
    tail may hold half the documents here: at an eighth, the base would take the first run's
    segment in and every tail segment would be read again, as it must when the base moves.)"""
    monkeypatch.setattr(shared_postings, "TAIL_SHARE", 0.5)
    read = _segments_read(monkeypatch)
    n0 = {**archive.docs["n0"], "title": "Thạch anh ở Lào Cai"}
    archive.run(n0=n0, n3=archive.new("n3", "Radon ở Sa Pa"))
    assert read == [2]  # one segment: the run's two articles
    engine = SearchEngine(archive.index, warm=False)
    try:
        snap = engine.snapshot()
        assert (snap.bound, snap.size) == (40, 46)
        table = snap._tail_terms.table
        assert snap._tail_terms.arrays("zircon") is None  # n0's old copy: deleted
        assert snap._tail_terms.arrays("radon")[0].tolist() == [5]
        _same_as_the_segments(snap, _tail_dictionary_terms(snap))
        assert _written_afresh(snap) == _arrays(table)
        assert read == [2, 1, 1, 1, 2]  # then every tail segment's live documents
    finally:
        engine.close()
    engine = SearchEngine(archive.index)
    try:
        assert engine.search("zircon")["total"] == 0
        assert engine.search("radon sa pa")["hits"][0]["id"] == "n3"
    finally:
        engine.close()


def _segments_read(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The documents of each segment the tail terms' writer reads from now on."""
    read: list[int] = []
    real = tail_terms.segment_postings

    def counted(index_dir, schema, segment, docmap, fields):
        read.append(int(np.count_nonzero(docmap >= 0)))
        return real(index_dir, schema, segment, docmap, fields)

    monkeypatch.setattr(tail_terms, "segment_postings", counted)
    return read


def _key() -> str:
    params = DEFAULT_PARAMS
    return shared_postings.parameters_key((params.k1, params.field_weights, params.field_b))


def _arrays(table) -> tuple:
    return (
        list(table.names),
        table.starts.tolist(),
        table.docs.tolist(),
        table.weights.tobytes(),
    )


def _written_afresh(snap) -> tuple:
    """The snapshot's tail terms as a file written from every tail segment (no previous
    generation) gives them."""
    fresh = generation_dir(snap.folder, snap.generation).parent / f"fresh-{snap.generation}"
    fresh.mkdir()
    key = _key()
    columns = snap.files.columns
    leaves = [(leaf, first) for leaf, first, _ in snap._leaves]
    assert write_tail_terms(fresh, snap.folder, leaves, columns, snap.bound, DEFAULT_PARAMS.k1, key)
    return _arrays(TailTerms.open(fresh, snap.bound, snap.size, key).table)


def test_a_merge_in_the_tail_keeps_the_arrays_of_the_documents_it_moved(
    archive: Archive, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run whose commit merges tail segments (the base, of 40, left alone): the documents of
    the segments not read keep their arrays; a merged segment holding the run's new article is
    read; the file is the one reading every tail segment gives."""
    monkeypatch.setattr(shared_postings, "TAIL_SHARE", 0.5)
    monkeypatch.setattr(store_columns, "AVERAGE_DRIFT", 0.5)  # new averages: everything read
    # The base, then the three runs' segments (2, 1, 1 articles), then this run's (3): the
    # second and third runs' are merged, in their place.
    plans: list[list[int]] = []

    def plan(self, sizes: list[int]) -> list[list[int]]:
        plans.append(sizes)
        return [[2, 3]] if sizes[1:] == [2, 1, 1, 3] else []

    monkeypatch.setattr(MergePolicy, "plan", plan)
    read = _segments_read(monkeypatch)
    new = {f"n{i}": archive.new(f"n{i}", f"Radon {i} ở Sa Pa") for i in (3, 4, 5)}
    archive.run(**new, d5=None)
    engine = SearchEngine(archive.index, warm=False)
    try:
        snap = engine.snapshot()
        meta = json.loads((generation_dir(archive.index, snap.generation) / META).read_text())
        counts = [count for _, count in meta["segments"]]
        assert [38, 2, 1, 1, 3] in plans  # live documents: d3 and d5 deleted in the base
        assert counts == [2, 2, 3]
        assert read == [3]  # the run's own segment: the merged one's documents kept
        assert snap.bound == 40
        _same_as_the_segments(snap, _tail_dictionary_terms(snap))
        assert _written_afresh(snap) == _arrays(snap._tail_terms.table)
        assert engine.search("kripton")["hits"][0]["id"] == "n2"
        assert engine.search("radon")["hits"][0]["id"] == "n3"
    finally:
        engine.close()


@pytest.mark.parametrize("damage", ["docs past the tail", "cut short", "other parameters"])
def test_files_that_do_not_read_as_written_are_not_used(
    archive: Archive, damage: str, caplog: pytest.LogCaptureFixture
) -> None:
    engine = SearchEngine(archive.index)
    try:
        engine.wait_warm()
        expected = _answers(engine)
        directory = generation_dir(archive.index, engine.snapshot().generation)
    finally:
        engine.close()
    tail_terms._LOGGED.clear()
    # Each damaged file replaces the original (a new file, as every writer of the index makes
    # them): a mapped file cut short in place would fault whoever still maps its pages.
    if damage == "docs past the tail":
        docs = np.load(directory / f"{PREFIX}docs.npy")
        docs[-1] = 4  # the tail holds docnums 0-3
        _replace(directory / f"{PREFIX}docs.npy", lambda path: np.save(path, docs))
    elif damage == "cut short":
        weights = directory / f"{PREFIX}weights.npy"
        cut = weights.read_bytes()[:-8]
        _replace(weights, lambda path: path.write_bytes(cut))
    else:
        meta = json.loads((directory / META).read_text("utf-8"))
        meta["key"] = "another"
        _replace(directory / META, lambda path: path.write_text(json.dumps(meta), "utf-8"))
    with caplog.at_level(logging.INFO, logger="search.store.tail_terms"):
        engine = SearchEngine(archive.index)
        try:
            engine.snapshot()
            engine.wait_warm()
            assert engine.snapshot()._tail_terms is None
            assert engine.snapshot()._tail_keys is not None  # listed instead
            assert _answers(engine) == expected
        finally:
            engine.close()
    (record,) = [r for r in caplog.records if r.name == "search.store.tail_terms"]
    assert record.getMessage().endswith(": the tail's terms are looked up in its segments")
    wanted = {
        "docs past the tail": (logging.WARNING, "docnums past the tail"),
        "cut short": (logging.WARNING, "weights.npy"),
        "other parameters": (logging.INFO, "another tail or other scoring parameters"),
    }[damage]
    assert record.levelno == wanted[0] and wanted[1] in record.getMessage()


def test_an_engine_with_other_scoring_parameters_reads_the_segments(archive: Archive) -> None:
    """The file holds weights of the default parameters: an engine tuned otherwise (``bench.tune``)
    reads the tail's segments, and answers as it does on the index without the files."""
    params = replace(DEFAULT_PARAMS, k1=0.9)
    engine = SearchEngine(archive.index, params=params)
    try:
        engine.wait_warm()
        assert engine.snapshot()._tail_terms is None
        tuned = _answers(engine)
    finally:
        engine.close()
    _without_files(archive.index)
    plain = SearchEngine(archive.index, params=params)
    try:
        plain.wait_warm()
        assert _answers(plain) == tuned
    finally:
        plain.close()


def test_no_tail_terms_without_a_tail_or_where_a_segment_is_not_readable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    archive = Archive(tmp_path)
    assert not list(archive.index.glob(f"vnsearch/gen-*/{PREFIX}*"))  # a full build: no tail
    monkeypatch.setattr(SegmentTerms, "open", classmethod(lambda cls, leaf: None))
    with caplog.at_level(logging.INFO, logger="search.store.generation"):
        archive.run(n0=archive.new("n0", "Zircon ở Lào Cai"))
    assert not list(archive.index.glob(f"vnsearch/gen-*/{PREFIX}*"))
    assert any("no tail terms" in r.getMessage() for r in caplog.records)
    monkeypatch.undo()
    engine = SearchEngine(archive.index)
    try:
        assert engine.snapshot()._tail_terms is None
        assert engine.search("zircon")["hits"][0]["id"] == "n0"
    finally:
        engine.close()


def _table(terms: dict[str, list[tuple[int, float]]]) -> tail_terms.Table:
    names = sorted(terms)
    starts = np.cumsum([0] + [len(terms[n]) for n in names]).astype(np.int64)
    docs = np.asarray([d for n in names for d, _ in terms[n]], np.int32)
    weights = np.asarray([w for n in names for _, w in terms[n]], np.float32)
    return tail_terms.Table(StringArray.from_strings(names), starts, docs, weights)


def _as_dict(table: tail_terms.Table) -> dict[str, list[tuple[int, float]]]:
    out = {}
    for i, name in enumerate(table.names):
        a, b = int(table.starts[i]), int(table.starts[i + 1])
        out[name] = list(zip(table.docs[a:b].tolist(), table.weights[a:b].tolist(), strict=True))
    return out


def test_kept_and_read_arrays_interleaved_come_out_in_docnum_order() -> None:
    """Documents a merge moved after those read (and out of their order): each term's come out
    ascending, as the segments hold them."""
    kept = _table({"cai": [(4, 1.0), (6, 2.0)], "lao": [(6, 3.0)], "zircon": [(0, 4.0)]})
    read = _table({"cai": [(1, 5.0), (5, 6.0)], "sa": [(2, 7.0)], "zircon": [(3, 8.0)]})
    assert _as_dict(tail_terms._combined(kept, read)) == {
        "cai": [(1, 5.0), (4, 1.0), (5, 6.0), (6, 2.0)],
        "lao": [(6, 3.0)],
        "sa": [(2, 7.0)],
        "zircon": [(0, 4.0), (3, 8.0)],
    }
    # ... and when every read document comes after the kept ones (a run's own segment).
    after = _table({"cai": [(7, 9.0)], "an": [(8, 1.5)]})
    assert _as_dict(tail_terms._combined(kept, after)) == {
        "an": [(8, 1.5)],
        "cai": [(4, 1.0), (6, 2.0), (7, 9.0)],
        "lao": [(6, 3.0)],
        "zircon": [(0, 4.0)],
    }
    # Renumbered out of order (docs 0 and 1 swapped), one dropped (-1).
    moved = tail_terms._renumbered(
        _table({"cai": [(0, 1.0), (1, 2.0), (2, 3.0)], "lao": [(2, 4.0)]}),
        np.asarray([1, 0, -1], np.int64),
    )
    assert _as_dict(moved) == {"cai": [(0, 2.0), (1, 1.0)]}
