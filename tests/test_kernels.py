"""The compiled per-posting loops (``search.kernels``) give numpy's results, bit for bit, and the
numpy path takes over, with a warning, where numba cannot be loaded."""

from __future__ import annotations

import logging
import sys

import numpy as np
import pytest

from search import kernels


def _sorted_ids(rng: np.random.Generator, size: int, count: int) -> np.ndarray:
    return np.sort(rng.choice(size, count, replace=False)).astype(np.int32)


def _read_only(values: np.ndarray) -> np.ndarray:
    values = values.copy()
    values.flags.writeable = False
    return values


def test_the_compiled_loops_run_here() -> None:
    """numba is a dependency: the suite checks the compiled loops, not only the fallback."""
    assert kernels.compiled() is True


@pytest.mark.parametrize("read_only", [False, True], ids=["private", "mapped"])
def test_scatter_add_sums_what_ufunc_at_sums(read_only: bool) -> None:
    """Every weight times the scale, rounded to float32, added at its document: the float32
    sums of ``np.add.at`` over the same lists in the same order (a shared file's arrays are
    read-only)."""
    rng = np.random.default_rng(5)
    size = 50_000
    compiled = rng.random(size).astype(np.float32)
    reference = compiled.copy()
    for count, scale in ((1, 0.1), (900, 1.7312345678), (20_000, 3.0), (size, 0.333)):
        ids = _sorted_ids(rng, size, count)
        weights = (rng.random(count) * 4).astype(np.float32)
        if read_only:
            ids, weights = _read_only(ids), _read_only(weights)
        kernels.scatter_add(compiled, ids, weights, scale)
        np.add.at(reference, ids.astype(np.intp), scale * weights)
        assert compiled.tobytes() == reference.tobytes()
    # A contiguous part of the scores (a base's docnums) takes ids numbered from its start.
    ids = _sorted_ids(rng, 1000, 300)
    weights = rng.random(300).astype(np.float32)
    kernels.scatter_add(compiled[5000:6000], ids, weights, 2.5)
    np.add.at(reference[5000:6000], ids.astype(np.intp), 2.5 * weights)
    assert compiled.tobytes() == reference.tobytes()


@pytest.mark.parametrize("read_only", [False, True], ids=["private", "mapped"])
def test_scatter_units_adds_truncated_units_as_numpy_does(read_only: bool) -> None:
    """A term's weights in whole units of a quantised score: each weight times the factor,
    rounded to float32 and truncated, added at its document as numpy adds it; the same in a
    contiguous part of the units (a base's docnums)."""
    rng = np.random.default_rng(15)
    size = 50_000
    compiled = rng.integers(0, 1000, size).astype(np.uint16)
    reference = compiled.copy()
    for count, factor in ((1, 0.5), (900, 1234.5678), (20_000, 3000.0), (size, 7.25)):
        ids = _sorted_ids(rng, size, count)
        weights = (rng.random(count) * 4).astype(np.float32)
        if read_only:
            ids, weights = _read_only(ids), _read_only(weights)
        kernels.scatter_units(compiled, ids, weights, factor)
        reference[ids] += (weights * np.float32(factor)).astype(np.uint16)
        assert compiled.tobytes() == reference.tobytes()
    # The truncation by hand: 2.9 units add 2, 0.99 none, 1.0 one.
    units = np.zeros(4, dtype=np.uint16)
    kernels.scatter_units(
        units, np.array([0, 1, 3], np.int32), np.array([2.9, 0.99, 1.0], np.float32), 1.0
    )
    assert units.tolist() == [2, 0, 0, 1]
    ids = _sorted_ids(rng, 1000, 300)
    weights = rng.random(300).astype(np.float32)
    kernels.scatter_units(compiled[5000:6000], ids, weights, 99.0)
    reference[5000:6000][ids] += (weights * np.float32(99.0)).astype(np.uint16)
    assert compiled.tobytes() == reference.tobytes()


@pytest.mark.parametrize("dtype", [np.uint8, np.int16])
def test_count_ones_adds_one_at_each_document(dtype) -> None:
    rng = np.random.default_rng(6)
    counts = np.zeros(10_000, dtype=dtype)
    first, second = _sorted_ids(rng, 10_000, 3000), _read_only(_sorted_ids(rng, 10_000, 7000))
    kernels.count_ones(counts, first)
    kernels.count_ones(counts, second)
    expected = np.zeros(10_000, dtype=dtype)
    expected[first] += 1
    expected[second] += 1
    assert counts.dtype == dtype
    assert counts.tolist() == expected.tolist()
    assert int(counts.max()) == (2 if np.intersect1d(first, second).size else 1)


@pytest.mark.parametrize("doc_type", [np.int32, np.int64])
def test_weights_at_finds_each_document_or_gives_zero(doc_type) -> None:
    """Documents before, between, inside and after a term's ids, few or many, read-only or not."""
    rng = np.random.default_rng(7)
    for size, held, asked in ((1, 1, 1), (10, 3, 10), (5000, 40, 3000), (5000, 4000, 12)):
        ids = _sorted_ids(rng, size, held)
        weights = (rng.random(held) + 0.5).astype(np.float32)
        docs = np.sort(rng.choice(size + 5, min(asked, size + 5), replace=False)).astype(doc_type)
        spread = np.zeros(size + 5, dtype=np.float32)
        spread[ids] = weights
        found = kernels.weights_at(ids, weights, docs)
        assert found is not None and found.dtype == np.float32
        assert found.tolist() == spread[docs].tolist()
        again = kernels.weights_at(_read_only(ids), _read_only(weights), _read_only(docs))
        assert again is not None and again.tolist() == found.tolist()
    none = kernels.weights_at(ids, weights, np.zeros(0, dtype=doc_type))
    assert none is not None and none.size == 0
    # Types the loop was not compiled for: the caller's numpy lookup, not an error.
    assert kernels.weights_at(ids.astype(np.int64), weights, docs) is None
    assert kernels.weights_at(ids, weights.astype(np.float64), docs) is None
    assert kernels.weights_at(ids, weights, docs.astype(np.uint32)) is None


@pytest.mark.parametrize("doc_type", [np.int32, np.int64])
def test_count_codes_counts_what_bincount_counts(doc_type) -> None:
    """The facets' counts: how many of the candidates have each code, from a mapped (read-only)
    column or a private one; a code past the labels or below zero gets numpy's own answer."""
    rng = np.random.default_rng(8)
    codes = rng.integers(0, 37, 20_000).astype(np.int32)
    for asked in (0, 1, 300, 20_000):
        docs = np.sort(rng.choice(20_000, asked, replace=False)).astype(doc_type)
        expected = np.bincount(codes[docs], minlength=37)
        for column in (codes, _read_only(codes)):
            counted = kernels.count_codes(column, docs, 37)
            assert counted.tolist() == expected.tolist()
    # Long runs of one code (a source's articles come together), counted in lanes; and more
    # codes than the lanes are used for.
    runs = np.repeat(np.arange(10, dtype=np.int32), 2_000)
    docs = np.arange(3, 20_000, 3, dtype=doc_type)
    expected = np.bincount(runs[docs], minlength=10)
    assert kernels.count_codes(runs, docs, 10).tolist() == expected.tolist()
    many = rng.integers(0, kernels.LANES_BELOW + 1, 20_000).astype(np.int32)
    bins = kernels.LANES_BELOW + 1
    expected = np.bincount(many[docs], minlength=bins)
    assert kernels.count_codes(many, docs, bins).tolist() == expected.tolist()
    docs = np.arange(20_000, dtype=doc_type)
    wider = codes.copy()
    wider[5] = 40
    assert kernels.count_codes(wider, docs, 37).tolist() == np.bincount(wider).tolist()
    wider[5] = -1
    with pytest.raises(ValueError):
        kernels.count_codes(wider, docs, 37)


@pytest.mark.parametrize("dtype", [np.uint8, np.int16])
def test_gather_held_reads_what_take_reads(dtype) -> None:
    """The partial scores, the counts of words held and their coordination factors at the
    candidates: the values ``take`` gives, bit for bit, with or without a factor table."""
    rng = np.random.default_rng(9)
    partial = rng.random(30_000).astype(np.float32)
    matched = rng.integers(0, 9, 30_000).astype(dtype)
    table = (np.arange(9, dtype=np.float32) / np.float32(8)) ** np.float32(0.3)
    for asked in (0, 1, 5000, 30_000):
        docs = np.sort(rng.choice(30_000, asked, replace=False)).astype(np.int64)
        shown, held, factor = kernels.gather_held(partial, matched, docs, table)
        assert shown.dtype == np.float32 and held.dtype == dtype
        assert shown.tobytes() == partial[docs].tobytes()
        assert held.tolist() == matched[docs].tolist()
        assert factor is not None and factor.tobytes() == table[matched[docs]].tobytes()
        assert kernels.gather_held(partial, matched, docs, None)[2] is None
        units = (partial * 1000).astype(np.uint16)  # a quantised partial score: as float32
        shown = kernels.gather_held(units, matched, docs, table)[0]
        assert shown.dtype == np.float32 and shown.tolist() == units[docs].tolist()
    # A count past the table (not a count of the query's words): numpy's IndexError.
    with pytest.raises(IndexError):
        kernels.gather_held(partial, matched, docs, table[:5])


def test_mark_ones_marks_what_numpy_marks() -> None:
    """A term's documents set in a mask (a concept's, a phrase's): every other stays as it was,
    from a mapped (read-only) list or a private one, in a contiguous part of the mask too."""
    rng = np.random.default_rng(10)
    mask = rng.random(20_000) < 0.01
    expected = mask.copy()
    for count in (0, 1, 700, 20_000):
        ids = _sorted_ids(rng, 20_000, count)
        kernels.mark_ones(mask, ids if count % 2 else _read_only(ids))
        expected[ids] = True
        assert mask.tolist() == expected.tolist()
    part = np.zeros(100, dtype=bool)
    kernels.mark_ones(part[40:], np.array([0, 59], np.int32))
    assert np.flatnonzero(part).tolist() == [40, 99]


def test_spread_puts_each_weight_at_its_document() -> None:
    rng = np.random.default_rng(11)
    for size, count in ((1, 1), (50, 0), (9000, 300), (9000, 9000)):
        ids = _sorted_ids(rng, size, count)
        weights = (rng.random(count) + 0.25).astype(np.float32)
        expected = np.zeros(size + 3, dtype=np.float32)
        expected[ids] = weights
        for arrays in ((ids, weights), (_read_only(ids), _read_only(weights))):
            spread = kernels.spread(*arrays, size + 3)
            assert spread.dtype == np.float32 and spread.tobytes() == expected.tobytes()


def test_fold_codes_looks_up_the_table_and_keeps_the_codes_past_it() -> None:
    table = np.arange(300, dtype=np.uint32)
    table[200:300] = 7
    codes = np.array([0, 65, 199, 200, 299, 300, 0x1F600, 2**32 - 1], dtype=np.uint32)
    expected = [0, 65, 199, 7, 7, 300, 0x1F600, 2**32 - 1]
    assert kernels.fold_codes(codes, table).tolist() == expected
    assert kernels.fold_codes(_read_only(codes), _read_only(table)).tolist() == expected
    assert kernels.fold_codes(codes[:0], table).tolist() == []


def _unloaded(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "_scatter_add",
        "_scatter_units",
        "_count_ones",
        "_weights_at",
        "_count_codes",
        "_gather_held",
        "_mark_ones",
        "_spread",
        "_fold_codes",
        "_word_spans",
        "_at_least",
        "_best_path",
    ):
        monkeypatch.setattr(kernels, name, None)
    monkeypatch.setattr(kernels, "_loaded", False)


def test_without_numba_numpy_does_the_work_and_says_so(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    _unloaded(monkeypatch)
    monkeypatch.setitem(sys.modules, "numba", None)  # ``import numba`` raises ImportError
    with caplog.at_level(logging.WARNING, logger="search.kernels"):
        assert kernels.compiled() is False
    assert [r.getMessage().split(" (")[0] for r in caplog.records] == ["numba not available"]
    scores = np.zeros(8, dtype=np.float32)
    ids = np.array([1, 4, 6], dtype=np.int32)
    kernels.scatter_add(scores, ids, np.array([1, 2, 3], dtype=np.float32), 0.5)
    assert scores.tolist() == [0, 0.5, 0, 0, 1.0, 0, 1.5, 0]
    units = np.zeros(8, dtype=np.uint16)
    kernels.scatter_units(units, ids, np.array([1, 2, 3], dtype=np.float32), 1.5)
    assert units.tolist() == [0, 1, 0, 0, 3, 0, 4, 0]
    counts = np.zeros(8, dtype=np.uint8)
    kernels.count_ones(counts, ids)
    assert counts.tolist() == [0, 1, 0, 0, 1, 0, 1, 0]
    assert kernels.weights_at(ids, np.ones(3, dtype=np.float32), ids) is None
    assert kernels.count_codes(ids, np.array([0, 2]), 8).tolist() == [0, 1, 0, 0, 0, 0, 1, 0]
    shown, held, factor = kernels.gather_held(
        scores, counts, np.array([1, 2], dtype=np.int64), np.array([0.0, 0.5], np.float32)
    )
    assert (shown.tolist(), held.tolist(), factor.tolist()) == ([0.5, 0], [1, 0], [0.5, 0])
    mask = np.zeros(8, dtype=bool)
    kernels.mark_ones(mask, ids)
    assert np.flatnonzero(mask).tolist() == [1, 4, 6]
    weights = np.array([1, 2, 3], dtype=np.float32)
    assert kernels.spread(ids, weights, 7).tolist() == [0, 1, 0, 0, 2, 0, 3]
    table = np.array([5, 6], dtype=np.uint32)
    assert kernels.fold_codes(np.array([1, 0, 9], np.uint32), table).tolist() == [6, 5, 9]
    words = np.array([97], np.uint32), np.array([1], np.int32), kernels.word_slots(("a",))
    assert kernels.word_spans(np.array([97], np.uint8), table, *words, 5) is None
    assert kernels.at_least(np.array([2, 0, 3], np.uint8), 2).tolist() == [0, 2]
    pairs = np.zeros(0, np.uint64), np.zeros(0, np.int64)
    assert kernels.best_path([0, 1], [0], [3], [1], *pairs, 4.5, 0.75, 0.5) is None


def test_the_numpy_path_can_be_chosen(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """``VNSEARCH_KERNELS=numpy`` (the reference implementation, for comparisons) never loads
    numba, and is logged without a warning."""
    _unloaded(monkeypatch)
    monkeypatch.setenv("VNSEARCH_KERNELS", "numpy")
    with caplog.at_level(logging.INFO, logger="search.kernels"):
        assert kernels.compiled() is False
    assert [r.levelno for r in caplog.records] == [logging.INFO]


def test_a_mistyped_choice_keeps_the_compiled_loops_and_says_why(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A server refuses to start with it (``gunicorn.conf.py``); a library caller is warned."""
    _unloaded(monkeypatch)
    monkeypatch.setenv("VNSEARCH_KERNELS", "fast")
    with caplog.at_level(logging.WARNING, logger="search.kernels"):
        assert kernels.compiled() is True
    assert [r.getMessage() for r in caplog.records] == [
        "VNSEARCH_KERNELS must be one of numba, numpy, not 'fast': per-posting work runs "
        "through numba"
    ]


def test_without_a_place_to_cache_the_loops_are_compiled_all_the_same(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A read-only install and no writable home: numba refuses to cache (it raises at once);
    each process then compiles the loops itself, and says so, rather than running numpy's."""
    import numba

    real = numba.njit

    def njit(*args, cache: bool = False, **kwargs):
        if cache:
            raise RuntimeError("cannot cache function 'f': no locator available for file 'k.py'")
        return real(*args, cache=cache, **kwargs)

    _unloaded(monkeypatch)
    monkeypatch.setattr(numba, "njit", njit)
    with caplog.at_level(logging.WARNING, logger="search.kernels"):
        assert kernels.compiled() is True
    assert [r.getMessage().split(" (")[0] for r in caplog.records] == [
        "numba cannot cache compiled code"
    ]
    scores = np.zeros(4, dtype=np.float32)
    kernels.scatter_add(scores, np.array([1, 3], np.int32), np.ones(2, np.float32), 0.5)
    assert scores.tolist() == [0, 0.5, 0, 0.5]


@pytest.mark.parametrize("bad", [-1, 8, 2**31 - 1])
def test_a_docnum_out_of_range_raises_as_numpy_does(bad: int) -> None:
    """A damaged segment's docnum past the archive: an ``IndexError`` (the request fails, as
    with numpy), never a write past the array.  Lists whose weights do not match their ids go
    to numpy, which raises its own error."""
    assert kernels.compiled()
    scores = np.zeros(8, dtype=np.float32)
    guard = np.zeros(64, dtype=np.float32)  # a neighbour a stray write could land in
    ids = np.array([1, bad], dtype=np.int32)
    with pytest.raises(IndexError, match=f"docnum {bad} out of range for 8 documents"):
        kernels.scatter_add(scores, ids, np.ones(2, dtype=np.float32), 1.0)
    counts = np.zeros(8, dtype=np.uint8)
    with pytest.raises(IndexError, match=f"docnum {bad} out of range for 8 documents"):
        kernels.scatter_units(np.zeros(8, np.uint16), ids, np.ones(2, dtype=np.float32), 1.0)
    with pytest.raises(IndexError, match=f"docnum {bad} out of range for 8 documents"):
        kernels.count_ones(counts, ids)
    with pytest.raises(IndexError, match=f"docnum {bad} out of range for 8 documents"):
        kernels.count_codes(np.zeros(8, np.int32), ids, 4)
    with pytest.raises(IndexError, match=f"docnum {bad} out of range for 8 documents"):
        kernels.gather_held(scores, counts, ids.astype(np.int64), None)
    with pytest.raises(IndexError, match=f"docnum {bad} out of range for 8 documents"):
        kernels.mark_ones(np.zeros(8, dtype=bool), ids)
    with pytest.raises(IndexError, match=f"docnum {bad} out of range for 8 documents"):
        kernels.spread(ids, np.ones(2, dtype=np.float32), 8)
    assert not guard.any()
    with pytest.raises(ValueError):
        kernels.scatter_add(scores, np.array([1, 2], np.int32), np.ones(3, np.float32), 1.0)
    assert kernels.weights_at(np.array([1, 2], np.int32), np.ones(1, np.float32), ids) is None


def test_a_serving_engine_loads_the_loops_in_the_thread_that_creates_it(
    monkeypatch: pytest.MonkeyPatch, toy_index
) -> None:
    """numba parses the loops' source when it compiles them: never in the warm-up thread, beside
    whatever the caller's threads parse (CPython 3.11.2 then fails one of them, gh-106905)."""
    import threading

    from search.engine import SearchEngine

    _unloaded(monkeypatch)
    threads: list[str] = []
    real = kernels._compile

    def compile_here() -> None:
        threads.append(threading.current_thread().name)
        real()

    monkeypatch.setattr(kernels, "_compile", compile_here)
    engine = SearchEngine(toy_index)
    try:
        assert threads == [threading.current_thread().name] and kernels.compiled()
        engine.search("lào cai")
        engine.wait_warm()
        assert threads == [threading.current_thread().name]  # not again, nor elsewhere
    finally:
        engine.close()


def test_word_spans_finds_whole_words_through_colliding_slots() -> None:
    """Words are maximal runs of letters and digits, compared once folded; ``a`` and ``q``
    share a slot of the hash table (97 and 113 modulo 16), and ``qa`` probes past both."""
    table = np.arange(256, dtype=np.uint32)
    table[[c for c in range(256) if chr(c).isalnum()]] |= np.uint32(kernels.LETTER)
    table[ord("A")] = ord("a") | kernels.LETTER  # folds to a letter
    words = ("a", "q", "qa")
    terms = np.frombuffer(bytearray("".join(words).encode("utf-32-le")), dtype=np.uint32)
    ends = np.array([1, 2, 4], dtype=np.int32)
    slots = kernels.word_slots(words)
    assert slots.tolist()[:5] == [-1, 0, 1, 2, -1] and slots.size == 16
    text = "A q aq qa, xa a"
    expected = [0, 1, 0, 2, 3, 1, 7, 9, 2, 14, 15, 0]
    for dtype in (np.uint8, np.uint32):
        codes = np.array([ord(c) for c in text], dtype=dtype)
        assert kernels.word_spans(codes, table, terms, ends, slots, 10) == expected
        assert kernels.word_spans(_read_only(codes), table, terms, ends, slots, 2) == expected[:6]
        assert kernels.word_spans(codes[:0], table, terms, ends, slots, 10) == []
    past = np.array([ord("a"), ord(" "), 300], dtype=np.uint32)  # a code past the table
    assert kernels.word_spans(past, table, terms, ends, slots, 10) is None


def test_at_least_lists_the_positions_holding_enough() -> None:
    rng = np.random.default_rng(17)
    for dtype, size in ((np.uint8, 0), (np.uint8, 1), (np.uint8, 5000), (np.int16, 5000)):
        counts = rng.integers(0, 7, size).astype(dtype)
        for least in (0, 1, 3, 6, 7):
            expected = np.flatnonzero(counts >= least)
            for given in (counts, _read_only(counts)):
                found = kernels.at_least(given, least)
                assert found.dtype == np.int64 and found.tolist() == expected.tolist()
