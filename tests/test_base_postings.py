"""The posting arrays of a generation's base outlive it (``store.shared_postings``): an
incremental run keeps the older segments and the average lengths, so the next generation maps the
arrays the workers already built, reads only its new segments, and answers exactly as a worker
reading every segment again would."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
from test_generation_files import article, write_source

from search import postings
from search.engine import SearchEngine
from search.indexer import reindex
from search.store import columns as store_columns
from search.store import shared_postings
from search.store.columns import AVERAGE_DRIFT, field_averages
from search.store.generation import load_generation, store_dir

QUERIES = (
    "lào cai",
    "lao cai",
    "laof cai",
    "giá vàng",
    "mưa lớn ở hà nội",
    "UBND tỉnh",
    "hoà bình",
    '"nắng nóng"',
    "cai nghiện",
)
TERMS = ("lao", "cai", "lào", "gia", "vàng", "lao_cai", "lao cai", "ubnd", "nang nong")


@pytest.fixture(autouse=True)
def _without_terms_file(no_base_terms) -> None:
    """These tests are about the per-term files (``tests/test_base_terms.py``: the terms file)."""


@pytest.fixture(autouse=True)
def shared_everything(monkeypatch: pytest.MonkeyPatch) -> None:
    """Share every array, however small (these indexes have no large ones)."""
    monkeypatch.setattr(postings, "MIN_SHARED_BYTES", 0)


def _build(tmp_path: Path, seed: int = 5) -> tuple[dict[str, dict], Path, Path]:
    rnd = random.Random(seed)
    docs = {f"d{i}": article(rnd, f"d{i}") for i in range(40)}
    src, index = tmp_path / "src", tmp_path / "index"
    write_source(src, docs)
    reindex(index, [src], workers=1)
    return docs, src, index


def _latest(index: Path):
    number = max(int(p.name[4:]) for p in store_dir(index).glob("gen-*"))
    files = load_generation(index, number)
    assert files is not None
    return files.columns


def _base(index: Path) -> str:
    columns = _latest(index)
    return shared_postings.base_key(columns.segments, columns.averages)


def _files(index: Path) -> dict[str, int]:
    """The shared arrays on disk: name -> inode (a file written again gets a new one)."""
    return {
        f"{d.name}/{p.name}": p.stat().st_ino
        for d in store_dir(index).glob("postings-*")
        for p in d.iterdir()
    }


def _answers(engine: SearchEngine) -> list:
    out = []
    for q in QUERIES:
        response = engine.search(q)
        out.append((response["total"], [(h["id"], h["score"]) for h in response["hits"]]))
    return out


def _terms(engine: SearchEngine) -> list[tuple]:
    """Each term's df and its live documents' weights (arrays written before a deletion still
    hold the deleted document: no query counts or ranks it)."""
    snap = engine.snapshot()
    out = []
    for term in TERMS:
        found = snap.postings(term)
        live = snap.live[found.docs]
        out.append((found.df, found.docs[live].tolist(), found.weight[live].tobytes()))
    return out


def _read_again(index: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[list, list]:
    """Answers and terms of a worker that reads every segment from Whoosh, as one part."""
    with monkeypatch.context() as patch:
        patch.setattr(shared_postings, "TAIL_SHARE", 0.0)
        engine = SearchEngine(index, warm=False)
        try:
            snap = engine.snapshot()
            assert snap.bound == snap.size
            snap._shared = None
            return _answers(engine), _terms(engine)
        finally:
            engine.close()


def _closest_to_average(docs: dict[str, dict]) -> dict:
    """An article whose body is as long as the others' on average (adding a copy keeps the
    averages near)."""
    lengths = {k: len(d["body"].split()) for k, d in docs.items()}
    mean = sum(lengths.values()) / len(lengths)
    return docs[min(lengths, key=lambda k: abs(lengths[k] - mean))]


def test_an_incremental_run_maps_the_arrays_of_the_generation_before(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    docs, src, index = _build(tmp_path)
    first = SearchEngine(index, warm=False)
    before = _answers(first), _terms(first)
    first.close()
    written, base, averages = _files(index), _base(index), _latest(index).averages.copy()
    assert written and before[0][0][0]  # arrays were written; "lào cai" finds articles
    # One article edited (its words reordered: the same lengths), one added (a copy of an
    # average one under a new id): a new segment of two, the old one with one deletion.
    docs["d3"]["body"] = " ".join(reversed(docs["d3"]["body"].split()))
    docs["n0"] = {**_closest_to_average(docs), "id": "n0"}
    write_source(src, docs)
    summary = reindex(index, workers=1)
    assert (summary.added, summary.updated) == (1, 1)
    columns = _latest(index)
    assert [count for _, count in columns.segments] == [40, 2]
    assert np.array_equal(columns.averages, averages, equal_nan=True)  # kept ...
    exact = field_averages(np.asarray(columns.lengths), np.asarray(columns.live))
    assert not np.array_equal(exact, averages, equal_nan=True)  # ... though the exact ones moved
    assert np.allclose(exact, averages, rtol=AVERAGE_DRIFT, equal_nan=True)
    assert _base(index) == base
    second = SearchEngine(index, warm=False)
    try:
        snap = second.snapshot()
        assert (snap.bound, snap.size) == (40, 42)
        after = _answers(second), _terms(second)
        cached = list(snap._cache.values())
        split = [p for p in cached if isinstance(p, postings.SplitPostings)]
        # Mapped bases stay mapped: split from the tail's part, or over every docnum (dense).
        assert split and all(p.base.mapped for p in split)
        assert all(p.tail.held or p.base.dense is not None for p in split)
        # A sparse mapped base that no tail document holds is its arrays as they are, mapped;
        # the other terms are this worker's own arrays, joined.
        whole = [p for p in cached if p not in split and p.mapped]
        assert whole and all(p.dense is None for p in whole)
        unsplit = [t for t, p in snap._cache.items() if p in whole]
        assert all(not snap._load(t, None, snap.bound, snap.size).held for t in unsplit)
    finally:
        second.close()
    assert _files(index) == written  # every array mapped as the first worker wrote it
    assert after == _read_again(index, monkeypatch)
    assert after != before  # the new article and the edit count


def test_a_small_mapped_base_the_tail_adds_to_is_joined_into_one_part(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A mapped base below ``JOIN_BELOW`` whose term the tail holds too is copied into one
    part (every operation on two parts costs two slices); below it nothing else changes, and
    both forms answer alike."""
    docs, src, index = _build(tmp_path)
    docs["n0"] = {**_closest_to_average(docs), "id": "n0"}
    write_source(src, docs)
    reindex(index, workers=1)
    seen = {}
    for join_below in (0, postings.JOIN_BELOW):
        monkeypatch.setattr(postings, "JOIN_BELOW", join_below)
        engine = SearchEngine(index, warm=False)
        try:
            snap = engine.snapshot()
            assert (snap.bound, snap.size) == (40, 41)
            found = {t: snap.postings(t) for t in TERMS}
            seen[join_below] = (found, _answers(engine), _terms(engine))
        finally:
            engine.close()
    split, joined = seen[0][0], seen[postings.JOIN_BELOW][0]
    in_tail = [t for t, p in split.items() if isinstance(p, postings.SplitPostings) and p.tail.df]
    assert in_tail  # the new article holds some of the terms
    for term, found in joined.items():
        if term in in_tail:
            assert type(found) is postings.TermPostings and not found.mapped
        else:
            assert type(found) is type(split[term])
    assert seen[0][1:] == seen[postings.JOIN_BELOW][1:] == _read_again(index, monkeypatch)


def test_documents_deleted_after_the_arrays_were_written_are_not_counted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_columns, "AVERAGE_DRIFT", 0.5)  # two deletions move them by more
    docs, src, index = _build(tmp_path, seed=6)
    first = SearchEngine(index, warm=False)
    before = _terms(first)
    _answers(first)
    holding = [k for k, d in docs.items() if "Lào Cai" in d["title"] + d["body"]][:2]
    assert len(holding) == 2
    first.close()
    written, base = _files(index), _base(index)
    for doc_id in holding:
        del docs[doc_id]
    write_source(src, docs)
    assert reindex(index, workers=1).removed == 2
    second = SearchEngine(index, warm=False)
    try:
        snap = second.snapshot()
        assert snap.bound == snap.size == 40 and snap.doc_count == 38
        after = _answers(second), _terms(second)
        lao = snap.postings("lao")
        assert lao.mapped and lao.df == before[0][0] - 2  # the arrays still hold both
    finally:
        second.close()
    assert _base(index) == base and _files(index) == written
    assert after == _read_again(index, monkeypatch)
    assert not {doc_id for _, hits in after[0] for doc_id, _ in hits} & set(holding)


def test_a_full_run_or_a_large_change_takes_the_averages_again(tmp_path: Path) -> None:
    docs, src, index = _build(tmp_path, seed=7)
    kept = _latest(index).averages.copy()
    docs["d1"]["body"] = " ".join(reversed(docs["d1"]["body"].split()))
    docs["n0"] = {**_closest_to_average(docs), "id": "n0"}
    write_source(src, docs)
    reindex(index, workers=1)
    assert np.array_equal(_latest(index).averages, kept, equal_nan=True)
    base = _base(index)

    def exact() -> np.ndarray:
        columns = _latest(index)
        return field_averages(np.asarray(columns.lengths), np.asarray(columns.live))

    reindex(index, full=True, workers=1)
    assert np.array_equal(_latest(index).averages, exact(), equal_nan=True)
    assert not np.array_equal(exact(), kept, equal_nan=True) and _base(index) != base
    rnd = random.Random(8)
    for i in range(20):  # long articles: the averages move by far more than the drift
        docs[f"long{i}"] = {**article(rnd, f"long{i}"), "body": docs["d2"]["body"] * 6}
    write_source(src, docs)
    reindex(index, workers=1)
    assert np.array_equal(_latest(index).averages, exact(), equal_nan=True)


@pytest.mark.parametrize("min_shared", [0, 2**40], ids=["shared", "private"])
def test_a_switching_worker_takes_over_the_arrays_its_searches_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, min_shared: int
) -> None:
    """After each incremental run, a server's worker joins what it had read for the terms its
    searches used (its base, mapped or its own, and its tail) with what the run's new segment
    holds, instead of reading or mapping any of it again; documents deleted meanwhile are not
    counted; it answers as a worker reading everything again."""
    monkeypatch.setattr(postings, "MIN_SHARED_BYTES", min_shared)
    monkeypatch.setattr(store_columns, "AVERAGE_DRIFT", 0.5)  # the base stays: this test's point
    docs, src, index = _build(tmp_path, seed=9)
    engine = SearchEngine(index, warm=True, switch_when_warm=True)
    reads: list[tuple[str, int]] = []  # (term, first docnum) read from Whoosh or mapped (-1)
    load, get = postings.Snapshot._load, shared_postings.SharedPostings.get

    def spy_load(self, term, leaves=None, start=0, end=None):
        mapped = self._tail_terms is not None and start == self.bound  # the tail's terms file
        reads.append((term, -1 if mapped else start))
        return load(self, term, leaves, start, end)

    def spy_get(self, term):
        reads.append((term, -1))
        return get(self, term)

    try:
        engine.wait_warm()
        for round_, deleted in enumerate(([], ["d2", "d7"], [])):
            _answers(engine)
            old = engine.snapshot()
            used = {term for term, found in old._cache.items() if found.df}
            mapped = any(p.mapped for p in old._cache.values() if p.df)
            assert len(used) > 50 and mapped is not bool(min_shared)
            docs[f"n{round_}"] = {**_closest_to_average(docs), "id": f"n{round_}"}
            for doc_id in deleted:
                del docs[doc_id]
            write_source(src, docs)
            reindex(index, workers=1)
            reads.clear()
            with monkeypatch.context() as patch:
                patch.setattr(postings.Snapshot, "_load", spy_load)
                patch.setattr(shared_postings.SharedPostings, "get", spy_get)
                assert engine.snapshot() is old  # the new generation opens and warms apart
                engine.wait_warm()
            new = engine.snapshot()
            assert new is not old and (new.bound, new.size) == (40, 41 + round_)
            assert not new._adopted  # nothing kept alive past the warm-up
            assert all(term in new._cache for term in used)
            # What the searches used was read only from the run's own segment (the base's
            # arrays and the tail's kept, or mapped: -1).
            assert new._tail_terms is not None
            used_reads = {start for term, start in reads if term in used}
            assert used_reads and used_reads <= {old.size, -1}
            assert reads and {term for term, _ in reads} - used  # the others: read
            after = _answers(engine), _terms(engine)
            assert after == _read_again(index, monkeypatch), f"round {round_}"
            assert not {doc_id for _, hits in after[0] for doc_id, _ in hits} & set(deleted)
    finally:
        engine.close()


@pytest.mark.parametrize("min_shared", [0, 2**40], ids=["shared", "private"])
def test_runs_that_only_delete_keep_the_counts_exact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, min_shared: int
) -> None:
    """Runs that only delete leave the segments (no tail): the arrays a switching worker takes
    over hold more and more deleted documents, and every count stays that of the live ones."""
    monkeypatch.setattr(postings, "MIN_SHARED_BYTES", min_shared)
    monkeypatch.setattr(store_columns, "AVERAGE_DRIFT", 0.5)
    docs, src, index = _build(tmp_path, seed=10)
    engine = SearchEngine(index, warm=True, switch_when_warm=True)
    try:
        engine.wait_warm()
        for deleted in (["d1", "d4"], ["d5", "d9", "d11"]):
            _answers(engine)
            for doc_id in deleted:
                del docs[doc_id]
            write_source(src, docs)
            assert reindex(index, workers=1).removed == len(deleted)
            engine.snapshot()
            engine.wait_warm()
            snap = engine.snapshot()
            assert snap.bound == snap.size == 40 and not snap._adopted
            after = _answers(engine), _terms(engine)
            assert after == _read_again(index, monkeypatch)
    finally:
        engine.close()


def test_an_index_whose_averages_were_nan_takes_them_afresh_at_its_next_run(
    tmp_path: Path,
) -> None:
    """Before empty fields were left out of the averages, an article without a title made the
    title's average NaN (and every title norm the bare weight).  Such a generation's next
    incremental run takes exact averages, so its norms and shared arrays are the fixed ones."""
    rnd = random.Random(9)
    docs = {f"d{i}": article(rnd, f"d{i}") for i in range(40)}
    docs["untitled"] = {**docs["d3"], "id": "untitled", "title": ""}
    src, index = tmp_path / "src", tmp_path / "index"
    write_source(src, docs)
    reindex(index, [src], workers=1)
    columns = _latest(index)
    exact = field_averages(np.asarray(columns.lengths), np.asarray(columns.live))
    assert np.isnan(np.asarray(columns.lengths)[0]).sum() == 1 and not np.isnan(exact).any()
    assert np.array_equal(columns.averages, exact)
    # What the older code kept: rewrite the generation's averages as it wrote them.
    number = max(int(p.name[4:]) for p in store_dir(index).glob("gen-*"))
    written = store_dir(index) / f"gen-{number:06d}" / "averages.npy"
    old = exact.copy()
    old[0] = np.nan
    np.save(written, old)
    assert np.isnan(_latest(index).averages[0])
    base = _base(index)
    docs["d1"]["source"] = "Báo Khác"  # a change that leaves every length as it was
    write_source(src, docs)
    reindex(index, workers=1)
    columns = _latest(index)
    assert np.array_equal(
        columns.averages, field_averages(np.asarray(columns.lengths), np.asarray(columns.live))
    )
    assert _base(index) != base  # shared arrays under the new averages
    norms = np.asarray(columns.norms)[0]
    titled = ~np.isnan(np.asarray(columns.lengths)[0])
    assert np.unique(norms[titled]).size > 1  # title lengths normalised
