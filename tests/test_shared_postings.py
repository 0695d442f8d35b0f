"""Posting arrays shared by the workers of a generation: written once, mapped by every worker,
never trusted when damaged, removed with their generation."""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, TOY_DOCS

from search import postings
from search.documents import Document
from search.engine import SearchEngine
from search.indexer import build_index, reindex
from search.schema import TEXT_FIELDS, extra_field
from search.store import shared_postings
from search.store.generation import load_generation, store_dir

# Of the toy documents: dense terms (in a quarter of them or more: ``cua``, ``lao``), sparse
# ones (``chau``), accented syllables, a compound, and a term found nowhere.
TERMS = ("cua", "hang", "lao", "lào", "chau", "hop_tac", "bán", "xyzzy")
QUERIES = ("cửa hàng bán", "lao cai", "laof cai", "hoà bình", '"hợp tác"', "khoe")


@pytest.fixture(autouse=True)
def _without_terms_file(no_base_terms) -> None:
    """These tests are about the per-term files (``tests/test_base_terms.py``: the terms file)."""


@pytest.fixture()
def shared_everything(monkeypatch: pytest.MonkeyPatch) -> None:
    """Share every array, however small (the toy index has no large ones)."""
    monkeypatch.setattr(postings, "MIN_SHARED_BYTES", 0)


@pytest.fixture()
def index(tmp_path: Path) -> Path:
    path = tmp_path / "index"
    build_index(TOY_DOCS, path, workers=1)
    return path


def _dirs(index: Path) -> list[Path]:
    return sorted(store_dir(index).glob("postings-*"))


def _files(index: Path) -> list[Path]:
    return sorted(p for d in _dirs(index) for p in d.iterdir())


def _arrays(p: postings.TermPostings) -> tuple:
    return (p.df, p.docs.tolist(), p.weight.tobytes())


def _private(index: Path, term: str) -> tuple:
    """The term as a worker without shared files reads it."""
    engine = SearchEngine(index, warm=False)
    try:
        snap = engine.snapshot()
        snap._shared = None
        return _arrays(snap.postings(term))
    finally:
        engine.close()


def _answers(engine: SearchEngine) -> list[list[tuple[str, float]]]:
    return [[(h["id"], h["score"]) for h in engine.search(q)["hits"]] for q in QUERIES]


def test_the_second_worker_maps_what_the_first_wrote(index: Path, shared_everything) -> None:
    first, second = SearchEngine(index, warm=False), SearchEngine(index, warm=False)
    try:
        written = {t: first.snapshot().postings(t) for t in TERMS}
        names = _files(index)
        assert len(names) == len([t for t in TERMS if written[t].df])  # one file a found term
        assert all(p.suffix == ".npy" for p in names)  # no temporary or claim file left
        for term in TERMS:
            mapped = second.snapshot().postings(term)
            assert mapped.mapped is bool(mapped.df)
            assert _arrays(mapped) == _arrays(written[term]) == _private(index, term)
        assert _answers(first) == _answers(second)
    finally:
        first.close()
        second.close()


def test_answers_are_the_same_with_and_without_shared_arrays(
    index: Path, shared_everything
) -> None:
    shared = SearchEngine(index, warm=False)
    plain = SearchEngine(index, warm=False)
    try:
        plain.snapshot()._shared = None
        assert _answers(shared) == _answers(plain)
        assert _files(index)  # the shared engine wrote its arrays
        again = SearchEngine(index, warm=False)  # ... and one reading them answers the same
        try:
            assert _answers(again) == _answers(plain)
        finally:
            again.close()
    finally:
        shared.close()
        plain.close()


def _damage(path: Path, how: str) -> None:
    values = np.load(path)
    if how == "truncated":
        path.write_bytes(path.read_bytes()[:-4])
    elif how == "magic":
        values[0] = 7
        np.save(path, values)
    elif how == "size":
        values[3] += 1
        np.save(path, values)
    elif how == "range":  # a sparse term's document past the index
        values[4] = values[3] + 5
        np.save(path, values)
    elif how == "dtype":
        np.save(path, values.astype(np.int64))
    elif how == "garbage":
        path.write_bytes(b"not an array at all")


DAMAGES = ["truncated", "magic", "size", "dtype", "garbage"]


@pytest.mark.parametrize(
    ("term", "how"), [("chau", h) for h in [*DAMAGES, "range"]] + [("cua", h) for h in DAMAGES]
)
def test_a_damaged_shared_file_is_never_trusted(
    index: Path, shared_everything, term: str, how: str, caplog: pytest.LogCaptureFixture
) -> None:
    expected = _private(index, term)
    writer = SearchEngine(index, warm=False)
    writer.snapshot().postings(term)
    writer.close()
    (path,) = _files(index)
    _damage(path, how)
    reader = SearchEngine(index, warm=False)
    try:
        with caplog.at_level(logging.WARNING, logger="search.store.shared_postings"):
            found = reader.snapshot().postings(term)
        assert _arrays(found) == expected
        assert "ignored" in caplog.text
        assert reader.search("lao cai")["hits"][0]["id"] == "laocai"
    finally:
        reader.close()


def test_an_unwritable_place_means_private_arrays(
    index: Path, shared_everything, caplog: pytest.LogCaptureFixture
) -> None:
    """Where the directory cannot be made (here a file holds its name; a read-only index is
    the same to the worker), each worker keeps its own arrays and says so once."""
    engine = SearchEngine(index, warm=False)
    try:
        snap = engine.snapshot()
        snap._shared.directory.write_text("in the way")
        with caplog.at_level(logging.WARNING, logger="search.store.shared_postings"):
            found = {t: snap.postings(t) for t in TERMS}
            answers = _answers(engine)
        assert not any(p.mapped for p in found.values())
        assert caplog.text.count("each worker keeps its own") == 1
        assert caplog.text.count("WARNING") == 1
        assert all(_arrays(found[t]) == _private(index, t) for t in TERMS)
        plain = SearchEngine(index, warm=False)
        plain.snapshot()._shared = None
        assert answers == _answers(plain)
        plain.close()
    finally:
        engine.close()


def _latest_base(index: Path) -> str:
    """The base key of the index's latest generation (``shared_postings.base_key``)."""
    files = load_generation(index, max(int(p.name[4:]) for p in store_dir(index).glob("gen-*")))
    assert files is not None
    return shared_postings.base_key(files.columns.segments, files.columns.averages)


def test_a_reindex_removes_the_arrays_no_kept_generation_reads(
    tmp_path: Path, shared_everything
) -> None:
    """Each run here adds a fifth of the documents (past ``TAIL_SHARE``): a new base each time,
    and the directories of bases no kept generation reads go."""
    source = tmp_path / "source.jsonl"
    index = tmp_path / "index"
    bases: list[str] = []

    def run(docs: list[Document]) -> list[str]:
        lines = [json.dumps(dataclasses.asdict(d), ensure_ascii=False) for d in docs]
        source.write_text("\n".join(lines) + "\n", encoding="utf-8")
        reindex(index, [source], workers=1)
        engine = SearchEngine(index, warm=False)
        engine.search("cửa hàng")
        engine.close()
        bases.append(_latest_base(index))
        return sorted(shared_postings.base_of(p.name) for p in _dirs(index))

    assert run(TOY_DOCS[:3]) == bases
    assert run(TOY_DOCS[:4]) == sorted(bases)
    assert run(TOY_DOCS[:5]) == sorted(bases[1:])  # the first base went; the previous stays
    assert len(set(bases)) == 3


def test_workers_warming_together_share_the_work(index: Path, shared_everything) -> None:
    """A term another worker has claimed is left for last, then mapped from its file; nothing
    of the claims stays behind."""
    engine = SearchEngine(index, warm=False)
    try:
        snap = engine.snapshot()
        vocab = snap.accents()
        terms = vocab.frequent_terms(postings.WARM_TERMS)
        claimed = terms[0]
        assert snap._shared.claim(claimed)  # another worker is building it
        order: list[str] = []
        fetch = snap._fetch

        def spy(term, leaves=None):
            order.append(term)
            return fetch(term, leaves)

        snap._fetch = spy
        assert snap.warm() == len(terms)
        assert order[-1] == claimed and order.count(claimed) == 1
        assert all(snap.is_cached(t) for t in terms)
        assert not [p for p in _files(index) if p.name.startswith(".")]
    finally:
        engine.close()


def test_mapped_arrays_cost_the_cache_nothing(index: Path, shared_everything) -> None:
    engine = SearchEngine(index, warm=False)
    try:
        snap = engine.snapshot()
        for term in TERMS:
            snap.postings(term)
        assert snap._cached_bytes == 200 * len(TERMS)
    finally:
        engine.close()
    assert postings.default_cache_bytes(10**6, shared=False) == 6 * 2**10 * 10**6
    assert postings.default_cache_bytes(10**6, shared=True) == postings.MAX_PRIVATE_BYTES
    assert postings.default_cache_bytes(1000, shared=True) == postings.MIN_CACHED_BYTES


@pytest.mark.parametrize("version", [(1, 0), (2, 0)])
def test_a_file_numpy_wrote_another_way_is_still_read(
    index: Path, shared_everything, version: tuple[int, int]
) -> None:
    """Shared files are mapped without numpy's header parser when their header is exactly what
    ``put`` writes; any other valid ``.npy`` layout of the same values still reads (through
    ``np.load``), with the same answers."""
    expected = _private(index, "chau")
    writer = SearchEngine(index, warm=False)
    writer.snapshot().postings("chau")
    writer.close()
    (path,) = _files(index)
    values = np.load(path)
    assert np.array_equal(shared_postings._mapped(path), values)
    with path.open("wb") as fh:
        np.lib.format.write_array(fh, values, version=version)
    assert (shared_postings._mapped(path) is None) is (version != (1, 0))
    reader = SearchEngine(index, warm=False)
    try:
        found = reader.snapshot().postings("chau")
        assert found.mapped and _arrays(found) == expected
    finally:
        reader.close()


def test_a_worker_of_a_removed_generation_does_not_bring_its_directory_back(
    index: Path, shared_everything
) -> None:
    expected = _private(index, "hang")
    engine = SearchEngine(index, warm=False)
    try:
        snap = engine.snapshot()
        snap.postings("cua")
        shutil.rmtree(snap._shared.owner)  # a reindex removed the generation (two runs later)
        shutil.rmtree(snap._shared.directory)
        assert _arrays(snap.postings("hang")) == expected
        assert not snap._shared.directory.exists()
    finally:
        engine.close()


def test_the_shared_arrays_of_a_generation_stay_within_their_limit(
    index: Path, shared_everything, caplog: pytest.LogCaptureFixture
) -> None:
    """Queries choose the terms: past the directory's limit, further terms stay private (said
    once), and the answers do not change."""
    unlimited = SearchEngine(index, warm=False)
    for term in TERMS:
        unlimited.snapshot().postings(term)
    unlimited.close()
    everything = sum(p.stat().st_size for p in _files(index))
    for directory in _dirs(index):
        shutil.rmtree(directory)
    engine = SearchEngine(index, warm=False)
    try:
        snap = engine.snapshot()
        snap._shared.limit = everything // 2
        with caplog.at_level(logging.WARNING, logger="search.store.shared_postings"):
            found = {t: snap.postings(t) for t in TERMS}
        written = sum(p.stat().st_size for p in _files(index))
        assert 0 < written <= everything // 2
        assert any(p.mapped for p in found.values()) and not all(
            p.mapped for p in found.values() if p.df
        )
        assert caplog.text.count("its limit") == 1
        assert all(_arrays(found[t]) == _private(index, t) for t in TERMS)
    finally:
        engine.close()


def test_the_tail_stays_small_enough_for_the_workers_caches() -> None:
    """The newest segments are the tail (each worker's own arrays) while they hold at most an
    eighth of the documents and at most ``TAIL_MAX_DOCS``; past that the base takes them, so a
    large archive's workers never reread tails that outgrow their posting cache."""
    from search.store.shared_postings import TAIL_MAX_DOCS, base_rows

    assert TAIL_MAX_DOCS == 16_384
    small = [("a", 40_000), ("b", 200), ("c", 4_000)]  # 4,200 of 44,200: within an eighth
    assert base_rows(small) == 40_000
    assert base_rows([("a", 40_000), ("b", 7_000)]) == 47_000  # past an eighth: all base
    runs = [("a", 1_000_000), ("b", 200), ("c", 200)]
    assert base_rows(runs) == 1_000_000
    # 16,400 newer documents: the first boundary with at most 16,384 after it
    assert base_rows([*runs, ("d", 16_000)]) == 1_000_200
    assert base_rows([*runs, ("d", 15_000)]) == 1_000_000
    assert base_rows([*runs, ("d", 120_000)]) == 1_120_400  # within an eighth, past the bound
    assert base_rows([("a", 1_000_000), ("b", 120_000), ("c", 300)]) == 1_120_000


def test_workers_see_each_others_arrays_before_passing_the_limit(tmp_path: Path) -> None:
    """Each worker counts its own writes and lists the directory (a stat a file) only once they
    reach ``RESCAN_SHARE`` of the limit, or before refusing one: a worker that has not yet seen
    another's arrays writes at most that much more past the limit, then stops."""
    directory = tmp_path / "postings-base-x-y"
    size = 1000
    first, second = (shared_postings.SharedPostings(directory, size) for _ in range(2))
    docs = np.arange(0, size, 4, dtype=np.int32)  # 250 documents: 2,136 bytes a file
    weights = np.ones(docs.size, dtype=np.float32)
    nbytes = shared_postings.NPY_HEADER + 4 * (shared_postings.HEADER + 2 * docs.size)
    limit = 200 * nbytes
    first.limit = second.limit = limit
    assert first.put("a0", docs, weights, docs.size, False) is not None  # first lists: empty
    written = 1
    while second.put(f"b{written}", docs, weights, docs.size, False) is not None:
        written += 1
    assert written * nbytes <= limit < (written + 1) * nbytes  # the second filled it exactly
    late = 0
    while first.put(f"a{late + 1}", docs, weights, docs.size, False) is not None:
        late += 1
    # The first worker wrote on its stale count until its own writes reached 1/64 of the limit,
    # then listed the directory and stopped.
    assert 0 < late * nbytes <= shared_postings.RESCAN_SHARE * limit + nbytes
    on_disk = sum(p.stat().st_size for p in directory.glob("*.npy"))
    assert on_disk == (written + late) * nbytes
    assert first.get("b1") is not None and second.get("a1") is not None


def _reindexed(tmp_path: Path, docs: list[Document]) -> Path:
    source = tmp_path / "source.jsonl"
    lines = [json.dumps(dataclasses.asdict(d), ensure_ascii=False) for d in docs]
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    index = tmp_path / "index"
    reindex(index, [source], workers=1)
    return index


def test_the_indexer_shares_the_frequent_terms_before_any_worker_opens_them(
    tmp_path: Path, shared_everything
) -> None:
    """After a commit the reindex writes the base's arrays itself: a worker opening the
    generation maps each term it reads and writes nothing; a later run that keeps the base looks
    at nothing."""
    index = _reindexed(tmp_path, TOY_DOCS)
    (directory,) = _dirs(index)
    assert (directory / shared_postings.FREQUENT_MARK).exists()
    names = {p.name for p in directory.glob("*.npy")}
    engine = SearchEngine(index, warm=False)
    try:
        snap = engine.snapshot()
        assert snap.warm() > 0
        assert _answers(engine)
        assert all(snap.postings(t).mapped for t in TERMS if snap.postings(t).df)
        assert {p.name for p in directory.glob("*.npy")} == names  # the worker wrote nothing
        assert all(_arrays(snap.postings(t)) == _private(index, t) for t in TERMS)
        assert [p.name for p in directory.iterdir() if p.name.startswith(".claim")] == []
        loads: list[str] = []
        fetch = snap._fetch_base
        snap._fetch_base = lambda term, leaves: loads.append(term) or fetch(term, leaves)
        assert snap.share_frequent() == 0 and loads == []  # the base is marked done
    finally:
        engine.close()


def _text_terms(index: Path) -> set[str]:
    """Every term of the text fields, as Whoosh lists them."""
    fields = {*TEXT_FIELDS, *(extra_field(f) for f in TEXT_FIELDS)}
    engine = SearchEngine(index, warm=False)
    try:
        reader = engine.snapshot().reader
        return {t.decode("utf-8") for f, t in reader.all_terms() if f in fields}
    finally:
        engine.close()


@pytest.mark.parametrize("least", [2, 4])
def test_the_indexer_shares_exactly_the_terms_large_enough_to_share(
    index: Path, monkeypatch: pytest.MonkeyPatch, least: int
) -> None:
    """Syllables, accented forms, compounds, pairs and numbers alike: a term is written ahead of
    searches when its arrays reach ``MIN_SHARED_BYTES`` (here those of ``least`` documents),
    and no other."""
    terms = _text_terms(index)
    size = postings.TERM_OBJECT_BYTES + 8 * least
    plain = SearchEngine(index, warm=False)
    try:
        snap = plain.snapshot()
        snap._shared = None
        large = {t for t in terms if snap.postings(t).nbytes >= size}
    finally:
        plain.close()
    assert large and large != terms
    assert any("_" in t for t in large) and any(" " in t for t in large)
    monkeypatch.setattr(postings, "MIN_SHARED_BYTES", size)
    engine = SearchEngine(index, warm=False)
    try:
        snap = engine.snapshot()
        assert snap.share_frequent() == len(large)
        shared = snap._shared
        assert {p.name for p in shared.directory.glob("*.npy")} == {
            shared._path(t)[0].name for t in large
        }
    finally:
        engine.close()


def test_a_reindex_whose_arrays_cannot_be_shared_still_commits(
    tmp_path: Path, shared_everything, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The commit stands whatever sharing the arrays meets: the workers build them instead."""

    def broken(self, limit=postings.WARM_TERMS):
        raise OSError("disk full")

    monkeypatch.setattr(postings.Snapshot, "share_frequent", broken)
    index = _reindexed(tmp_path, TOY_DOCS)
    assert not list(store_dir(index).glob("postings-*/*.npy"))
    engine = SearchEngine(index, warm=False)
    try:
        assert engine.health()["documents"] == len(TOY_DOCS)
        assert engine.search("lao cai")["total"] > 0
        assert list(store_dir(index).glob("postings-*/*.npy"))  # the worker built its own
    finally:
        engine.close()


def _mapped_kib(path: Path) -> int | None:
    """How much of ``path`` this process has mapped in (its maps' ``Rss`` in smaps, KiB)."""
    total, inside = None, False
    for line in Path("/proc/self/smaps").read_text().splitlines():
        fields = line.split()
        if fields and not fields[0].endswith(":"):  # a map's first line: range, ..., path
            inside = fields[-1] == str(path)
        elif inside and fields[0] == "Rss:":
            total = (total or 0) + int(fields[1])
    return total


@pytest.mark.skipif(not Path("/proc/self/smaps").exists(), reason="needs Linux's /proc/self/smaps")
def test_fault_in_maps_every_page_of_a_shared_file(tmp_path: Path) -> None:
    """A term's file mapped by ``get`` has its pages mapped into the process only as they are
    read; ``fault_in`` (the warm-up's) maps an array's pages at once: both arrays of a dense and
    a sparse term, the whole file."""
    size = 200_000
    shared = shared_postings.SharedPostings(tmp_path / "postings-base-x-y", size)
    weights = np.zeros(size, np.float32)
    weights[::3] = 1.5
    docs = np.arange(0, size, 2, dtype=np.int32)
    assert shared.put("cua", weights, weights > 0, int(np.count_nonzero(weights)), True)
    assert shared.put("chau", docs, np.ones(docs.size, np.float32), docs.size, False)
    for term in ("cua", "chau"):
        path = shared._path(term)[0]
        whole = -(-path.stat().st_size // 4096) * 4
        first, second, *_ = shared.get(term)
        assert _mapped_kib(path) < whole  # its header, and the sparse ids' order check
        shared_postings.fault_in(first)
        shared_postings.fault_in(second)
        assert _mapped_kib(path) == whole


def test_the_warm_up_maps_in_the_shared_terms_it_loads(
    index: Path, shared_everything, monkeypatch: pytest.MonkeyPatch
) -> None:
    faulted: list[np.ndarray] = []
    monkeypatch.setattr(postings, "fault_in", faulted.append)
    engine = SearchEngine(index, warm=False)
    try:
        snap = engine.snapshot()
        terms = snap.accents().frequent_terms(postings.WARM_TERMS)
        assert snap.warm() == len(terms)
        found = [snap.postings(t) for t in terms]
        expected = [
            array
            for p in found
            if p.df
            for array in ((p.dense, p.present) if p.dense is not None else (p.docs, p.weight))
        ]
        assert len(faulted) == len(expected) > 0
        assert all(a is b for a, b in zip(faulted, expected, strict=True))
        # Each term's top weight is worked out too: a search reading it makes no pass for it.
        for p in found:
            parts = (p.base, p.tail) if isinstance(p, postings.SplitPostings) else (p,)
            for part in parts:
                weights = part.dense if part.dense is not None else part.weight
                assert part._top == (float(weights.max()) if weights.size else 0.0)
    finally:
        engine.close()


def test_a_term_the_cache_dropped_is_read_again_from_its_kept_map(
    index: Path, shared_everything, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The posting cache drops terms (here it keeps one); the last ``MAPS_KEPT`` files read stay
    mapped, so reading such a term again opens no file, and the ones past that are let go."""
    monkeypatch.setattr(postings, "MAX_CACHED_TERMS", 1)
    monkeypatch.setattr(shared_postings, "MAPS_KEPT", 2)
    engine = SearchEngine(index, warm=False)
    try:
        snap = engine.snapshot()
        expected = {t: _arrays(snap.postings(t)) for t in ("cua", "lao", "chau")}
        opened: list[str] = []
        mapped = shared_postings._mapped
        monkeypatch.setattr(
            shared_postings, "_mapped", lambda path: opened.append(path.name) or mapped(path)
        )
        assert not snap.is_cached("lao")
        assert _arrays(snap.postings("lao")) == expected["lao"]  # kept: "lao" and "chau"
        assert _arrays(snap.postings("chau")) == expected["chau"]
        assert opened == []
        assert _arrays(snap.postings("cua")) == expected["cua"]  # let go: mapped again
        assert opened == [snap._shared._path("cua")[0].name]
        assert _arrays(snap.postings("cua")) == expected["cua"] == _private(index, "cua")
    finally:
        engine.close()


def test_fault_in_leaves_arrays_that_map_no_file_alone() -> None:
    values = np.arange(10, dtype=np.int32)
    for array in (values, values[2:], np.frombuffer(values.tobytes(), np.int32)):
        shared_postings.fault_in(array)
    assert values.tolist() == list(range(10))


def test_fault_in_of_a_file_cut_short_since_it_was_mapped_leaves_it_alone(tmp_path: Path) -> None:
    """Whatever cut the file (a hostile hand in the index directory), the warm-up leaves it to
    the searches instead of reading past its end, which would kill the worker (``SIGBUS``)."""
    script = f"""
import os
import numpy as np
from search.store import shared_postings
shared = shared_postings.SharedPostings(__import__("pathlib").Path({str(tmp_path)!r}), 100_000)
weights = np.ones(100_000, np.float32)
shared.put("cua", weights, weights > 0, 100_000, True)
dense, *_ = shared.get("cua")
os.truncate(shared._path("cua")[0], 8192)
shared_postings.fault_in(dense)
shared_postings.fault_in(dense)
print("alive", shared_postings._populate_refused)
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["alive", "False"]
    assert done.stderr.count("not mapped in ahead") == 2
