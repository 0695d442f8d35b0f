"""A base's terms file (``store.base_terms``): every term of the base listed, the arrays of the
rarer ones in it, written by the indexer after its commit.  A worker answers exactly as one that
reads each segment; a term in no base document costs it no lookup; a damaged file is never
trusted; a file written after a worker opened its base is picked up."""

from __future__ import annotations

import logging
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT
from test_generation_files import article, write_source

from search import postings
from search.engine import SearchEngine
from search.indexer import _open_plain, _share_frequent, reindex
from search.schema import TEXT_FIELDS, extra_field
from search.store import base_terms, shared_postings
from search.store import columns as store_columns
from search.store.strings import StringArray

QUERIES = (
    "lào cai",
    "lao cai",
    "laof cai",
    "giá vàng",
    "gia vang",
    "mưa lớn ở hà nội",
    "UBND tỉnh",
    "hoà bình",
    "hòa bình",
    '"nắng nóng"',
    "cai nghiện",
    "xyzzy plugh",
)


def _build(tmp_path: Path, seed: int = 5, count: int = 60) -> tuple[dict[str, dict], Path, Path]:
    rnd = random.Random(seed)
    docs = {f"d{i}": article(rnd, f"d{i}") for i in range(count)}
    src, index = tmp_path / "src", tmp_path / "index"
    write_source(src, docs)
    reindex(index, [src], workers=1)
    return docs, src, index


@pytest.fixture()
def built(tmp_path: Path) -> tuple[dict[str, dict], Path, Path]:
    return _build(tmp_path)


def _terms_dir(index: Path) -> Path:
    engine = SearchEngine(index, warm=False)
    try:
        return engine.snapshot()._shared.directory / base_terms.DIRECTORY
    finally:
        engine.close()


def _answers(engine: SearchEngine) -> list:
    out = []
    for q in QUERIES:
        response = engine.search(q)
        hits = [(h["id"], h["score"], h["title_html"], h["snippet"]) for h in response["hits"]]
        out.append((response["total"], hits, response["facets"]))
    return out


def _answers_without_the_file(index: Path) -> list:
    """What a worker answers that reads every base term from the segments."""
    hidden = _terms_dir(index).with_name("hidden")
    _terms_dir(index).rename(hidden)
    engine = SearchEngine(index, warm=False)
    try:
        assert engine.snapshot()._shared.base_terms() is None
        return _answers(engine)
    finally:
        engine.close()
        hidden.rename(_terms_dir(index))


def _base_terms(index: Path) -> set[str]:
    """Every term of the index's text fields, both views, as Whoosh lists them."""
    ix = _open_plain(index)
    with ix.reader() as reader:
        fields = [*TEXT_FIELDS, *(extra_field(f) for f in TEXT_FIELDS)]
        return {t.decode("utf-8") for f in fields for t in reader.lexicon(f)}


def _segment_reads(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """Every term a worker reads from the segments from now on, with the first docnum read."""
    reads: list[tuple[str, int]] = []
    load = postings.Snapshot._load

    def spy(self, term, leaves=None, start=0, end=None):
        reads.append((term, start))
        return load(self, term, leaves, start, end)

    monkeypatch.setattr(postings.Snapshot, "_load", spy)
    return reads


def test_the_indexer_lists_every_base_term_with_the_rarer_ones_arrays(built) -> None:
    _, _, index = built
    engine = SearchEngine(index, warm=False)
    try:
        snap = engine.snapshot()
        assert snap.bound == snap.size  # one segment: all of it is the base
        terms = snap._shared.base_terms()
        assert terms is not None
        names = list(terms.names)
        assert names == sorted(_base_terms(index))
        large = postings._shared_min_df(snap.bound)
        with_arrays = 0
        for at, term in enumerate(names):
            read = snap._load(term, None, 0, snap.bound)
            found = terms.arrays(at)
            if found is None:  # in enough documents of its fields for a shared file
                assert terms.large[at]
                assert read.df >= large or sum(_field_dfs(snap, term)) >= large
                continue
            with_arrays += 1
            assert found[0].tolist() == read.docs.tolist()
            assert found[1].tobytes() == read.weight.tobytes()  # the very weights, bit for bit
        assert 0 < with_arrays < len(names)
    finally:
        engine.close()


def _field_dfs(snap: postings.Snapshot, term: str) -> list[int]:
    btext = term.encode("utf-8")
    fields = postings._indexed_fields(term)
    return [t.doc_frequency(f, btext) for _, _, t in snap._leaves for f in fields]


def test_answers_are_the_same_with_and_without_the_terms_file(built) -> None:
    _, _, index = built
    engine = SearchEngine(index, warm=False)
    try:
        with_file = _answers(engine)
        assert engine.snapshot()._shared.base_terms() is not None
    finally:
        engine.close()
    assert with_file == _answers_without_the_file(index)
    assert sum(total for total, _, _ in with_file) > 0


def test_a_term_in_no_base_document_costs_no_lookup(built, monkeypatch: pytest.MonkeyPatch) -> None:
    """Absent terms (most compounds a query asks for) and rare ones come out of the terms file:
    only the large ones are read from the segments (or their shared files)."""
    _, _, index = built
    engine = SearchEngine(index, warm=False)
    try:
        snap = engine.snapshot()
        terms = snap._shared.base_terms()
        rare = [t for at, t in enumerate(terms.names) if not terms.large[at]][:50]
        large = [t for at, t in enumerate(terms.names) if terms.large[at]][:5]
        reads = _segment_reads(monkeypatch)
        assert snap.postings("qwzx_vbnm").df == 0
        assert snap.postings("lao_qwzx").df == 0
        assert all(snap.postings(t).df > 0 for t in rare)
        assert reads == []
        assert all(snap.postings(t).df > 0 for t in large)
        assert reads == [(t, 0) for t in large]
    finally:
        engine.close()


def _damage(folder: Path, how: str) -> None:
    if how == "truncated":
        data = (folder / "docs.npy").read_bytes()
        (folder / "docs.npy").write_bytes(data[: len(data) // 2])
    elif how == "weights-type":
        weights = np.load(folder / "weights.npy")
        np.save(folder / "weights.npy", weights.astype(np.float64))
    elif how == "starts":
        starts = np.load(folder / "starts.npy")
        starts[1], starts[2] = starts[2], starts[1]
        np.save(folder / "starts.npy", starts)
    elif how == "names":
        names = list(StringArray.load(folder, "names"))
        StringArray.from_strings(reversed(names)).save(folder, "names", sorted_=True)
    elif how == "docs-order":  # the first two documents of each term of several swapped
        docs, starts = np.load(folder / "docs.npy"), np.load(folder / "starts.npy")
        for start in starts[:-1][np.diff(starts) >= 2]:
            docs[start], docs[start + 1] = docs[start + 1], docs[start]
        np.save(folder / "docs.npy", docs)
    elif how == "docs-range":
        docs = np.load(folder / "docs.npy")
        np.save(folder / "docs.npy", docs + np.int32(10_000))
    elif how == "missing":
        (folder / "large.npy").unlink()
    else:
        raise AssertionError(how)


@pytest.mark.parametrize(
    "how",
    ["truncated", "weights-type", "starts", "names", "docs-order", "docs-range", "missing"],
)
def test_a_damaged_terms_file_is_never_trusted(
    built, how: str, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever cut or changed the files (a hostile hand in the index directory), the worker
    reads the terms from the segments, says so once, and answers as before."""
    _, _, index = built
    expected = _answers_without_the_file(index)
    _damage(_terms_dir(index), how)
    monkeypatch.setattr(base_terms, "_LOGGED", set())
    caplog.set_level(logging.WARNING)
    engine = SearchEngine(index, warm=False)
    try:
        assert _answers(engine) == expected
    finally:
        engine.close()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("base's terms" in w for w in warnings), warnings


def test_a_terms_file_written_after_the_worker_opened_its_base_is_picked_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full build's workers may open the new base before the indexer wrote its terms file:
    they read terms from the segments meanwhile and look for the file again now and then."""
    with monkeypatch.context() as patch:
        patch.setattr(postings.Snapshot, "base_terms_writer", lambda self: None)
        _, _, index = _build(tmp_path)
    assert not _terms_dir(index).exists()
    monkeypatch.setattr(shared_postings, "RECHECK_S", 3600.0)
    engine = SearchEngine(index, warm=False)
    try:
        expected = _answers(engine)  # from the segments
        snap = engine.snapshot()
        _share_frequent(index)  # what the indexer does after a commit
        assert _terms_dir(index).is_dir()
        reads = _segment_reads(monkeypatch)
        assert snap.postings("qwzx_vbnm").df == 0  # a term no query above asked for
        assert reads == [("qwzx_vbnm", 0)]  # looked for again within the hour: not yet
        snap._shared._terms_looked -= 3600.0
        assert snap.postings("vbnm_qwzx").df == 0
        assert reads == [("qwzx_vbnm", 0)]  # found now: no lookup
    finally:
        engine.close()
    fresh = SearchEngine(index, warm=False)
    try:
        assert _answers(fresh) == expected
    finally:
        fresh.close()


def test_an_incremental_run_keeps_the_base_and_its_terms_file(
    built, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run that keeps the base leaves its terms file as it was (not written again); terms of
    the new segment and deleted documents are answered as a worker reading everything does."""
    monkeypatch.setattr(store_columns, "AVERAGE_DRIFT", 0.5)  # the base stays: this test's point
    docs, src, index = built
    folder = _terms_dir(index)
    inode = (folder / "docs.npy").stat().st_ino
    rnd = random.Random(11)
    docs["new"] = {**article(rnd, "new"), "title": "Hợp tác xyzzy với Lào Cai"}
    del docs["d3"], docs["d8"]
    write_source(src, docs)
    reindex(index, workers=1)
    assert _terms_dir(index) == folder
    assert (folder / "docs.npy").stat().st_ino == inode
    engine = SearchEngine(index, warm=False)
    try:
        snap = engine.snapshot()
        assert snap.bound < snap.size  # the new segment is the tail
        assert snap.postings("xyzzy").df == 1  # in the tail alone
        answers = _answers(engine)
    finally:
        engine.close()
    shutil.move(folder, folder.with_name("aside"))
    plain = SearchEngine(index, warm=False)
    try:
        assert _answers(plain) == answers
    finally:
        plain.close()


def _synthetic(directory: Path, terms: int = 200, per_term: int = 1000) -> dict[str, tuple]:
    """A terms file of ``terms`` terms of ``per_term`` documents each, written a few arrays a
    flush; every third term large (no arrays)."""
    rnd = np.random.default_rng(3)
    arrays = {}
    for i in range(terms):
        docs = np.sort(rnd.choice(10 * per_term, per_term, replace=False)).astype(np.int32)
        arrays[f"t{i:04d}"] = (docs, rnd.random(per_term, dtype=np.float32))
    listed = [(term, i % 3 == 0) for i, term in enumerate(sorted(arrays))]
    assert base_terms.write_base_terms(directory, listed, arrays.get)
    assert not base_terms.write_base_terms(directory, listed, arrays.get)  # there already
    return arrays


def test_the_terms_file_holds_what_it_was_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(base_terms, "FLUSH_VALUES", 2500)  # written in many parts
    arrays = _synthetic(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == [base_terms.DIRECTORY]  # nothing temporary
    terms = base_terms.BaseTerms.open(tmp_path, 10_000)
    assert terms is not None and len(terms.names) == len(arrays)
    for i, term in enumerate(sorted(arrays)):
        at = terms.find(term)
        assert at == i
        found = terms.arrays(at)
        if i % 3 == 0:
            assert found is None
        else:
            assert found[0].tolist() == arrays[term][0].tolist()
            assert found[1].tobytes() == arrays[term][1].tobytes()
    assert terms.find("t") == terms.find("t00000") == terms.find("zzz") == -1
    assert base_terms.BaseTerms.open(tmp_path / "elsewhere", 10_000) is None


@pytest.mark.skipif(not Path("/proc/self/smaps").exists(), reason="needs Linux's /proc/self/smaps")
def test_the_warm_up_maps_in_a_rare_terms_pages_only(tmp_path: Path) -> None:
    """The warm-up maps in the arrays of the terms it loads (``fault_in``): for a term of the
    terms file, its own pages, not the whole file (a gigabyte at a million articles)."""
    from test_shared_postings import _mapped_kib

    _synthetic(tmp_path, terms=120, per_term=20_000)
    terms = base_terms.BaseTerms.open(tmp_path, 200_000)
    found = terms.arrays(terms.find("t0031"))  # its docnums read (checked), its weights not yet
    postings_ = postings.TermPostings(found[0], found[1], int(found[0].size))
    postings_.mapped = True
    path = tmp_path / base_terms.DIRECTORY / "weights.npy"
    before = _mapped_kib(path) or 0
    postings_.fault_in()
    after = _mapped_kib(path)
    own = 4 * (-(-found[1].nbytes // 4096) + 1)  # its pages, one more where it straddles
    whole = path.stat().st_size // 1024
    assert before < own // 2
    assert own - 8 <= after <= whole // 4  # the kernel maps some neighbours in (fault-around)


def test_a_terms_file_written_meanwhile_by_another_process_is_kept(tmp_path: Path) -> None:
    """Two writers of one base (an indexer and a copy of it run by hand): the first file in
    place stays, the other's work is dropped, nothing temporary is left."""
    final = tmp_path / base_terms.DIRECTORY
    docs = np.arange(3, dtype=np.int32)

    def arrays(term: str):
        if not final.exists():  # the other writer finishes first
            assert base_terms.write_base_terms(tmp_path, [("b", False)], lambda t: (docs, docs))
        return docs, docs.astype(np.float32)

    assert not base_terms.write_base_terms(tmp_path, [("a", False), ("c", False)], arrays)
    assert [p.name for p in tmp_path.iterdir()] == [base_terms.DIRECTORY]
    terms = base_terms.BaseTerms.open(tmp_path, 10)
    assert list(terms.names) == ["b"]


def test_a_writer_killed_midway_leaves_no_file_and_the_next_one_cleans_up(tmp_path: Path) -> None:
    """Killed while writing (``kill -9``): no ``terms`` directory, so workers read terms as
    before; the next run writes the file and removes what the killed one left."""
    script = f"""
import os, signal
from pathlib import Path
import numpy as np
from search.store import base_terms
docs = np.arange(5, dtype=np.int32)
def arrays(term):
    if term == "t0500":
        os.kill(os.getpid(), signal.SIGKILL)
    return docs, docs.astype(np.float32)
base_terms.FLUSH_VALUES = 10
terms = [(f"t{{i:04d}}", False) for i in range(900)]
base_terms.write_base_terms(Path({str(tmp_path)!r}), terms, arrays)
"""
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, check=False)
    assert done.returncode == -signal.SIGKILL
    left = [p.name for p in tmp_path.iterdir()]
    assert len(left) == 1 and left[0].startswith(".terms-")  # the killed writer's, unfinished
    assert base_terms.BaseTerms.open(tmp_path, 10) is None
    killed = tmp_path / left[0]
    arrays = _synthetic(tmp_path, terms=30, per_term=5)
    assert len(base_terms.BaseTerms.open(tmp_path, 100).names) == len(arrays)
    assert killed.exists()  # left alone while it may be a live writer's ...
    stale = time.time() - base_terms.STALE_S - 60
    for path in [killed, *killed.iterdir()]:
        os.utime(path, (stale, stale))
    assert not base_terms.write_base_terms(tmp_path, [], dict.get)  # the next run's look
    assert [p.name for p in tmp_path.iterdir()] == [base_terms.DIRECTORY]  # ... removed once idle


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def _slow_indexer(monkeypatch: pytest.MonkeyPatch, seconds: float = 0.25) -> None:
    """This process writes a chunk only every ``seconds`` (the helper, another process, is not
    slowed): the helper surely gets chunks to write."""
    write = base_terms.TermsWriter._write

    def slow(self, chunk, arrays):
        time.sleep(seconds)
        return write(self, chunk, arrays)

    monkeypatch.setattr(base_terms.TermsWriter, "_write", slow)


def _rewritten(index: Path, caplog: pytest.LogCaptureFixture) -> tuple[dict, dict, str]:
    """The terms file as the build wrote it (one chunk: no helper), then as ``_share_frequent``
    writes it again in chunks of 40 terms, and the line it logged."""
    folder = _terms_dir(index)
    before = _files(folder)
    shutil.rmtree(folder)
    with caplog.at_level(logging.INFO, logger="search.indexer"):
        _share_frequent(index)
    lines = [r.getMessage() for r in caplog.records if "terms file" in r.getMessage()]
    assert [p.name for p in folder.parent.iterdir() if p.name.startswith(".terms-")] == []
    return before, _files(folder), "\n".join(lines)


def test_a_helper_process_writes_chunks_of_the_terms_file_as_one_process_does(
    built, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """After a build the indexer and a helper process write the terms file a chunk each at a
    time (the two cores share a phase one did alone): the same file, byte for byte."""
    _, _, index = built
    monkeypatch.setattr(base_terms, "CHUNK_TERMS", 40)
    _slow_indexer(monkeypatch)
    before, after, line = _rewritten(index, caplog)
    assert after == before
    assert sorted(after) == [
        "docs.npy",
        "large.npy",
        "names.blob.npy",
        "names.offsets.npy",
        "names.prefix.npy",
        "starts.npy",
        "weights.npy",
    ]
    chunks = -(-len(StringArray.load(_terms_dir(index), "names")) // 40)
    helped = int(line.split("(")[1].split(" of ")[0])
    assert f"of its {chunks} chunks by a helper process" in line and 0 < helped < chunks, line


def test_a_helper_killed_midway_leaves_its_chunks_to_the_indexer(
    built, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """``kill -9`` of the helper once it has written a chunk: the indexer writes every chunk
    the helper did not finish, and the file is the one a single process writes."""
    from search import indexer

    _, _, index = built
    monkeypatch.setattr(base_terms, "CHUNK_TERMS", 40)
    _slow_indexer(monkeypatch, 0.5)
    start = indexer._start_terms_helper
    killed: list[int] = []

    def start_then_kill(index_dir: Path, temporary: Path):
        helper = start(index_dir, temporary)
        while not list(temporary.glob("chunk-*.lengths.npy")):  # it wrote one
            assert helper.poll() is None
            time.sleep(0.001)
        helper.kill()
        killed.append(helper.pid)
        return helper

    monkeypatch.setattr(indexer, "_start_terms_helper", start_then_kill)
    before, after, line = _rewritten(index, caplog)
    assert len(killed) == 1
    assert after == before
    chunks = -(-len(StringArray.load(_terms_dir(index), "names")) // 40)
    helped = int(line.split("written in ")[1].split("(")[1].split(" of ")[0])
    assert 0 < helped < chunks - 1, line  # the indexer wrote the rest
    assert f"exited with status {-signal.SIGKILL}: this process wrote its part" in line


def test_the_indexer_writes_the_terms_file_alone_when_its_helper_fails(
    built, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A helper that cannot start, or exits at once with an error: the indexer writes every
    chunk, and says so."""
    from search import indexer

    _, _, index = built
    monkeypatch.setattr(base_terms, "CHUNK_TERMS", 40)
    monkeypatch.setattr(indexer.sys, "executable", "/bin/false")
    before, after, line = _rewritten(index, caplog)
    assert after == before
    assert "(0 of its" in line
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        "the terms file's helper process exited with status 1: this process wrote its part"
    ]
    caplog.clear()
    monkeypatch.setattr(indexer.sys, "executable", str(index / "no-such-python"))
    before, after, line = _rewritten(index, caplog)
    assert after == before and "(0 of its" in line
    assert [r.levelno for r in caplog.records if r.levelno >= logging.WARNING] == []


def test_a_helper_writes_only_for_its_own_base(built, tmp_path: Path) -> None:
    """A helper whose snapshot is of another base than the listing's (a generation committed
    meanwhile) writes nothing."""
    _, _, index = built
    snap = postings.Snapshot(_open_plain(index))
    try:
        other = tmp_path / "postings-base-other" / ".terms-x.tmp"
        other.mkdir(parents=True)
        assert snap.help_write_base_terms(other, lambda: True) == -1
        assert list(other.iterdir()) == []
    finally:
        snap.close()


def test_unfinished_and_damaged_chunks_are_written_again(tmp_path: Path) -> None:
    """What a helper left: a chunk claimed and never finished (killed), a chunk whose arrays do
    not agree with its lengths (damaged).  ``finish`` writes both again; every other chunk is
    taken as written; the file is the one a single process writes."""
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir()
    two.mkdir()
    rnd = np.random.default_rng(8)
    arrays = {}
    for i in range(50):
        size = int(rnd.integers(1, 30))
        docs = np.sort(rnd.choice(1000, size, replace=False)).astype(np.int32)
        arrays[f"t{i:03d}"] = (docs, rnd.random(size, dtype=np.float32))
    listed = [(term, i % 7 == 0) for i, term in enumerate(sorted(arrays))]
    assert base_terms.write_base_terms(one, listed, arrays.get)
    expected = _files(one / base_terms.DIRECTORY)

    base_terms.CHUNK_TERMS, chunk_terms = 8, base_terms.CHUNK_TERMS
    try:
        writer = base_terms.TermsWriter.begin(two, listed)
    finally:
        base_terms.CHUNK_TERMS = chunk_terms
    assert writer is not None and writer.chunks == 7
    helper = base_terms.TermsWriter.join(writer.temporary)
    assert helper.work(arrays.get, keep_going=iter([True, True, True, False]).__next__) == 3
    chunk = writer.temporary / "chunk-000003"
    chunk.with_suffix(".claim").touch()  # claimed, then killed before it wrote anything
    weights = writer.temporary / "chunk-000001.weights.npy"
    weights.write_bytes(weights.read_bytes()[:-4])  # one value short
    assert writer.work(arrays.get) == 3  # chunks 4, 5 and 6
    assert writer.finish(arrays.get)
    assert writer.own == 5  # and 1 and 3 again
    assert _files(two / base_terms.DIRECTORY) == expected
    assert [p.name for p in two.iterdir()] == [base_terms.DIRECTORY]
    assert helper.work(arrays.get) == 0  # its listing is gone: nothing to do


def test_chunks_are_joined_where_the_kernel_cannot_copy_between_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file system without ``copy_file_range`` (``EXDEV``, ``EINVAL``...): the chunks are
    read and written through the process instead, the same file."""
    import errno

    expected = tmp_path / "expected"
    expected.mkdir()
    _synthetic(expected, terms=90, per_term=300)
    calls: list[int] = []

    def refused(*args, **kwargs):
        calls.append(1)
        raise OSError(errno.EXDEV, "cross-device link")

    monkeypatch.setattr(base_terms.os, "copy_file_range", refused)
    monkeypatch.setattr(base_terms, "CHUNK_TERMS", 16)
    copied = tmp_path / "copied"
    copied.mkdir()
    _synthetic(copied, terms=90, per_term=300)
    assert len(calls) == 2 * 6  # docs and weights of each of the 6 chunks
    assert _files(copied / base_terms.DIRECTORY) == _files(expected / base_terms.DIRECTORY)


def test_the_helper_dies_with_a_killed_indexer_and_the_next_run_writes_the_file(
    built, caplog: pytest.LogCaptureFixture
) -> None:
    """``kill -9`` of the indexer while its helper writes chunks: the kernel kills the helper
    too (no process left writing into the index), no terms file is in place, and the next run
    writes the one a single process writes."""
    _, _, index = built
    folder = _terms_dir(index)
    expected = _files(folder)
    shutil.rmtree(folder)
    script = f"""
import sys, time
from pathlib import Path
from search import indexer
from search.store import base_terms
base_terms.CHUNK_TERMS = 40
write = base_terms.TermsWriter._write
def slow(self, chunk, arrays):
    time.sleep(0.5)
    return write(self, chunk, arrays)
base_terms.TermsWriter._write = slow
start = indexer._start_terms_helper
def started(index_dir, temporary):
    helper = start(index_dir, temporary)
    print(helper.pid, flush=True)
    return helper
indexer._start_terms_helper = started
indexer._share_frequent(Path({str(index)!r}))
"""
    proc = subprocess.Popen(
        [sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        helper = int(proc.stdout.readline())
        temporary = next(folder.parent.glob(".terms-*.tmp"))
        deadline = time.monotonic() + 60
        while not list(temporary.glob("chunk-*.lengths.npy")):  # the helper is at work
            assert time.monotonic() < deadline
            time.sleep(0.01)
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()
    deadline = time.monotonic() + 10
    while Path(f"/proc/{helper}").exists() and "Z" not in _state(helper):
        assert time.monotonic() < deadline, "the helper outlived the indexer"
        time.sleep(0.01)
    assert not folder.exists()
    count = len(list(temporary.glob("chunk-*.lengths.npy")))
    time.sleep(0.3)  # nothing writes there any more
    assert len(list(temporary.glob("chunk-*.lengths.npy"))) == count
    with caplog.at_level(logging.INFO, logger="search.indexer"):
        _share_frequent(index)
    assert _files(folder) == expected
    assert temporary.exists()  # the killed run's, removed once idle for STALE_S


def _state(pid: int) -> str:
    """A process's state letter (``Z``: a zombie, dead), ``""`` once it is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return ""
