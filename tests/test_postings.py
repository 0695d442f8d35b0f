"""Posting arrays: how a term's per-field lists become one BM25F list."""

from __future__ import annotations

import numpy as np
import pytest

from search.postings import _union


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
