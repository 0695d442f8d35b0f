"""Posting arrays: how a term's per-field lists become one BM25F list."""

from __future__ import annotations

import numpy as np
import pytest

from search import kernels, postings
from search.postings import SplitPostings, TermPostings, _held, _spread_sums, _union
from search.ranking import holding_all


def test_union_merges_field_runs_like_unique() -> None:
    """Ids present in several fields come out once, sorted, with their field weights added in
    field order (the same float32 sums as ``np.unique`` with its inverse gave)."""
    rng = np.random.default_rng(7)
    runs = [np.sort(rng.choice(5000, size, replace=False)) for size in (40, 900, 3000)]
    ids = np.concatenate(runs).astype(np.int32)
    tf = rng.random(ids.size).astype(np.float32)

    docs, sums = _union(ids, tf)

    expected_docs, inverse = np.unique(ids, return_inverse=True)
    expected = np.bincount(inverse, weights=tf, minlength=expected_docs.size).astype(np.float32)
    assert docs.tolist() == expected_docs.tolist()
    assert sums.dtype == np.float32
    assert sums.tobytes() == expected.tobytes()


@pytest.mark.parametrize("size", [0, 1, 2, 40, 3000])
def test_union_of_any_ids_is_numpy_unique(size: int) -> None:
    rng = np.random.default_rng(size)
    ids = rng.integers(0, max(1, size // 2), size).astype(np.int32)
    tf = rng.random(size).astype(np.float32)
    docs, sums = _union(ids, tf)
    expected_docs, inverse = np.unique(ids, return_inverse=True)
    expected = np.bincount(inverse, weights=tf, minlength=expected_docs.size).astype(np.float32)
    assert docs.dtype == expected_docs.dtype and docs.tobytes() == expected_docs.tobytes()
    assert sums.tobytes() == expected.tobytes()


def test_union_of_small_runs() -> None:
    docs, sums = _union(
        np.array([2, 5, 9, 0, 5, 9], dtype=np.int32),
        np.array([1.0, 2.0, 3.0, 10.0, 20.0, 30.0], dtype=np.float32),
    )
    assert docs.tolist() == [0, 2, 5, 9]
    assert sums.tolist() == [10.0, 1.0, 22.0, 33.0]


def test_the_article_cache_is_bounded_by_characters_too(
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from search import postings
    from search.documents import Document
    from search.engine import SearchEngine
    from search.indexer import build_index

    docs = [Document(id=f"d{i}", title=f"Bài {i}", body="chữ " * 2_500) for i in range(6)]
    build_index(docs, tmp_path / "index", workers=1)
    engine = SearchEngine(tmp_path / "index", warm=False)
    try:
        snap = engine.snapshot()
        size = snap.document(0).chars
        assert size > 10_000
        monkeypatch.setattr(postings, "STORED_CACHE_CHARS", 3 * size)
        for docnum in range(6):
            snap.document(docnum)
        assert list(snap._stored) == [3, 4, 5]  # the three most recent fit, not six
        assert snap._stored_chars == 3 * size
        monkeypatch.setattr(postings, "STORED_CACHE_CHARS", size // 2)
        snap.document(0)
        assert list(snap._stored) == [0]  # one huge article is still kept, alone
    finally:
        engine.close()


def _term(docs: list[int], weights: list[float]) -> TermPostings:
    return TermPostings(np.array(docs, np.int32), np.array(weights, np.float32), len(docs))


# Documents are looked up by binary search (ratio 0) or through an array over docnums.
LOOKUPS = pytest.mark.parametrize("ratio", [0, 10**9], ids=["search", "spread"])


@LOOKUPS
def test_weights_at_reads_a_sparse_term_at_given_documents(
    monkeypatch: pytest.MonkeyPatch, ratio: int
) -> None:
    """An abbreviation's other form is scored on the documents holding it alone: each one's
    weight, 0 where the term is absent (before the first id, between ids, past the last)."""
    monkeypatch.setattr(postings, "LOOKUP_RATIO", ratio)
    term = _term([3, 7, 9], [0.5, 1.25, 2.0])
    at = term.weights_at(np.array([0, 3, 5, 7, 9, 12], np.int64))
    assert at.dtype == np.float32
    assert at.tolist() == [0.0, 0.5, 0.0, 1.25, 2.0, 0.0]
    assert term.weights_at(np.zeros(0, np.int64)).tolist() == []
    assert TermPostings.empty().weights_at(np.array([1, 2])).tolist() == [0.0, 0.0]


def test_weights_at_reads_a_dense_term_and_scatter_adds_once_per_document() -> None:
    dense = np.array([0, 1.5, 0, 0.25], np.float32)
    term = TermPostings.spread(dense, 2)
    assert term.weights_at(np.array([0, 1, 3])).tolist() == [0.0, 1.5, 0.25]
    scores = np.ones(4, np.float32)
    _term([1, 3], [2.0, 4.0]).add_to(scores, 0.5)
    assert scores.tolist() == [1.0, 2.0, 1.0, 3.0]


@LOOKUPS
def test_holds_and_holding_all_agree_with_masks_over_every_docnum(
    monkeypatch: pytest.MonkeyPatch, ratio: int
) -> None:
    """Whether documents hold a term (sparse or dense), and the documents holding every one of
    several terms, found without a mask over every docnum: as the masks say."""
    monkeypatch.setattr(postings, "LOOKUP_RATIO", ratio)
    rng = np.random.default_rng(7)
    size = 5000
    terms = []
    for share in (0.002, 0.05, 0.4, 0.6):
        present = rng.random(size) < share
        weights = np.where(present, rng.random(size) + 0.1, 0).astype(np.float32)
        ids = np.flatnonzero(present)
        sparse = TermPostings(ids.astype(np.int32), weights[ids], int(ids.size))
        terms.append(sparse if share < 0.25 else TermPostings.spread(weights, int(ids.size)))
    probe = np.sort(rng.choice(size, 700, replace=False)).astype(np.int64)
    for term in terms + [TermPostings.empty()]:
        assert term.holds(probe).tolist() == term.mask(size)[probe].tolist()
    for chosen in ([0, 1], [1, 2, 3], [2, 3], [3]):
        picked = [terms[i] for i in chosen]
        expected = np.flatnonzero(np.logical_and.reduce([t.mask(size) for t in picked]))
        assert holding_all(picked, size).tolist() == expected.tolist()
    assert holding_all([terms[1], TermPostings.empty()], size).tolist() == []


@pytest.mark.parametrize("size", [1, 3000, 20_000])
def test_spread_union_adds_up_fields_as_union_does(size: int) -> None:
    """A frequent term's fields are added up over every docnum: the same ids and, bit for bit,
    the same float32 sums as merging the sorted runs."""
    rng = np.random.default_rng(size)
    runs = [
        (np.sort(rng.choice(size, count, replace=False)).astype(np.int32), rng.random(count))
        for count in (min(size, 5), size // 3, size)
    ]
    runs = [(ids, (tf * 7 + 0.01).astype(np.float32)) for ids, tf in runs]

    docs, sums = _held(_spread_sums(runs, size + 5))

    expected_docs, expected = _union(
        np.concatenate([ids for ids, _ in runs]), np.concatenate([tf for _, tf in runs])
    )
    assert docs.tolist() == expected_docs.tolist()
    assert sums.dtype == np.float32
    assert sums.tobytes() == expected.tobytes()


@pytest.mark.parametrize("deleted", [0, 3])
def test_a_term_loads_to_the_same_weights_whichever_way_it_is_added_up(
    samples_index, monkeypatch: pytest.MonkeyPatch, deleted: int
) -> None:
    """Sorted or spread over every docnum, kept sparse or dense, with deleted documents or not:
    a term's documents and weights are the same to the last bit (deleted ones left out)."""
    from search.engine import SearchEngine

    engine = SearchEngine(samples_index, warm=False)
    snap = engine.snapshot()
    if deleted:  # as a reindex that deleted the first documents leaves them
        snap.live = snap.live.copy()
        snap.live[:deleted] = False
        snap.doc_count = int(snap.live.sum())
    terms = ["lao", "cai", "cua", "va", "tinh", "thi", "lào", "lao_cai", "lao cai"]
    loads = []
    for spread, dense in ((2.0, 2.0), (0.0, 2.0), (0.0, 0.0), (2.0, 0.0)):
        monkeypatch.setattr(postings, "SPREAD_UNION_SHARE", spread)
        monkeypatch.setattr(postings, "DENSE_SHARE", dense)
        loaded = [snap._load(term) for term in terms]
        loads.append([(t.docs.tolist(), t.weight.tolist(), t.df) for t in loaded])
        if dense == 0.0:
            assert all(t.dense is not None for t in loaded if t.df)
    engine.close()
    assert all(df for _, _, df in loads[0])
    assert all(docs[0] >= deleted for docs, _, _ in loads[0])
    assert loads[1] == loads[0] and loads[2] == loads[0] and loads[3] == loads[0]


@pytest.mark.parametrize(
    ("ratio", "compiled"),
    [(1, False), (10**9, False), (1, True)],
    ids=["numpy-masked", "numpy-scattered", "compiled"],
)
def test_counting_a_term_where_it_occurs_adds_its_mask(
    monkeypatch: pytest.MonkeyPatch, ratio: int, compiled: bool
) -> None:
    """A query counts how many of its words each document holds: a term adds 1 at each of its
    documents, sparse or dense, split into base and tail, straight, through a mask or in a
    compiled loop (``search.kernels``), as adding its mask over every docnum does; and twice
    where it is counted twice."""
    monkeypatch.setattr(postings, "COUNT_SCATTER_RATIO", ratio)
    assert kernels.compiled()
    if not compiled:  # numpy's operations, as where numba cannot be loaded
        for name in ("_scatter_add", "_count_ones", "_weights_at"):
            monkeypatch.setattr(kernels, name, None)
    rng = np.random.default_rng(11)
    size, bound = 6000, 5000
    terms = []
    for share in (0.001, 0.03, 0.5):
        present = rng.random(size) < share
        weights = np.where(present, rng.random(size) + 0.1, 0).astype(np.float32)
        ids = np.flatnonzero(present)
        sparse = TermPostings(ids.astype(np.int32), weights[ids], int(ids.size))
        terms.append(sparse if share < 0.25 else TermPostings.spread(weights, int(ids.size)))
        base_ids, tail_ids = ids[ids < bound], ids[ids >= bound] - bound
        base = TermPostings(base_ids.astype(np.int32), weights[ids[ids < bound]], base_ids.size)
        tail = TermPostings(tail_ids.astype(np.int32), weights[ids[ids >= bound]], tail_ids.size)
        terms.append(SplitPostings(base, tail, bound, int(ids.size)))
    terms.append(TermPostings.empty())
    for term in terms:
        counts = np.zeros(size, np.uint8)
        term.count_into(counts)
        term.count_into(counts)
        assert counts.tolist() == (2 * term.mask(size).view(np.uint8)).tolist()


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "numpy"])
def test_a_term_adds_its_weights_in_whole_units(
    monkeypatch: pytest.MonkeyPatch, compiled: bool
) -> None:
    """The bounds' quantised partial score (``ranking.Scorer.bounds``): a term sparse, dense, or
    split into base and tail adds each weight times the factor, truncated, at its document,
    and nothing elsewhere."""
    if not compiled:
        monkeypatch.setattr(kernels, "_scatter_units", None)
    rng = np.random.default_rng(12)
    size, bound, factor = 6000, 5000, 2500.5
    for share in (0.002, 0.05, 0.5):
        present = rng.random(size) < share
        weights = np.where(present, rng.random(size) * 3 + 0.1, 0).astype(np.float32)
        ids = np.flatnonzero(present)
        expected = (weights * np.float32(factor)).astype(np.uint16)
        sparse = TermPostings(ids.astype(np.int32), weights[ids], int(ids.size))
        dense = TermPostings.spread(weights, int(ids.size))
        low, high = ids[ids < bound], ids[ids >= bound]
        base = TermPostings(low.astype(np.int32), weights[low], low.size)
        tail = TermPostings((high - bound).astype(np.int32), weights[high], high.size)
        for term in (sparse, dense, SplitPostings(base, tail, bound, int(ids.size))):
            units = np.zeros(size, np.uint16)
            term.add_units_to(units, factor)
            assert units.tolist() == expected.tolist()  # 0 where the term is absent
