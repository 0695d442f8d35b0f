"""Each generation's shared files: written by the indexer, mapped by workers, kept exact by
incremental runs (``search.store``)."""

from __future__ import annotations

import json
import logging
import mmap
import os
import random
import shutil
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import TOY_DOCS, mapping_of, run_fresh

from search.accents import CountsVocabulary, MappedVocabulary
from search.documents import Document, read_source
from search.engine import SearchEngine
from search.indexer import build_index, reindex
from search.store import generation as store
from search.store import shared_postings
from search.store.corpus import MIN_PAIR_COUNT, CorpusCounts
from search.store.tail_terms import META as TAIL_META
from search.store.tail_terms import PREFIX as TAIL_PREFIX
from search.suggest import SuggestionTable
from search.typos import TypoTable

SYLLABLES = (  # noqa: SIM905 - a sentence is easier to read than a list
    "lào cai hà nội đà nẵng mưa lớn nắng nóng người dân chợ phiên cải bắp cai nghiện giá vàng "
    "tăng giảm kỹ thuật thủy điện hòa bình khỏe ủy ban nhân dân tỉnh huyện xã bão lũ sạt lở"
).split()
NAMES = ("Lào Cai", "Hà Nội", "Đà Nẵng", "Hòa Bình", "UBND", "Mỹ")


def article(rnd: random.Random, doc_id: str) -> dict:
    """A short article: capitals mid-sentence, a name, sometimes no lead, titles that repeat."""

    def sentence(n: int) -> str:
        words = [rnd.choice(SYLLABLES) for _ in range(n)]
        words.insert(rnd.randrange(n), rnd.choice(NAMES))
        return " ".join(words).capitalize()

    title = sentence(rnd.randint(2, 6))
    if rnd.random() < 0.15:
        title = title.upper()
    if rnd.random() < 0.2:
        title = rnd.choice(["Giá vàng hôm nay", "Mưa lớn ở Lào Cai", "Tin nóng"])
    lead = sentence(8) if rnd.random() < 0.7 else ""
    body = ". ".join(sentence(rnd.randint(5, 12)) for _ in range(rnd.randint(2, 5))) + "."
    return {"id": doc_id, "title": title, "lead": lead, "body": body, "source": "Báo Mẫu"}


def write_source(path: Path, articles: dict[str, dict]) -> None:
    path.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps(a, ensure_ascii=False) for a in articles.values()]
    (path / "docs.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")


def live_texts(index: Path) -> list[tuple[str, str, str]]:
    engine = SearchEngine(index, warm=False)
    try:
        snap = engine.snapshot()
        stored = [snap.stored(d) for d in np.flatnonzero(snap.live).tolist()]
    finally:
        engine.close()
    return [(s.get("title") or "", s.get("lead") or "", s.get("body") or "") for s in stored]


def as_counts(vocab) -> CountsVocabulary:
    return vocab.to_counts() if isinstance(vocab, MappedVocabulary) else vocab


def assert_exact(index: Path) -> None:
    """The generation's vocabulary and suggestions are those of its live documents, counted
    afresh: what a full build of the same documents holds."""
    texts = live_texts(index)
    flat = [t for doc in texts for t in doc if t]
    expected_vocab = CountsVocabulary.from_texts(flat, min_pair_count=MIN_PAIR_COUNT)
    engine = SearchEngine(index, warm=False)
    try:
        snap = engine.snapshot()
        assert as_counts(snap.accents()) == expected_vocab
        table = snap.suggestions()
        expected_table = SuggestionTable(title for title, _, _ in texts)
        assert _entries(table) == _entries(expected_table)
        # the typo table the indexer wrote (taken from the generation before, renumbered, in an
        # incremental run) is the one built afresh from these counts
        assert snap.files.typos is not None
        afresh = TypoTable(expected_vocab.folded_counts())
        assert _typo_entries(snap.typos()) == _typo_entries(afresh)
        generation = snap.reader.generation()
    finally:
        engine.close()
    counts = CorpusCounts.load(store.generation_dir(index, generation))
    assert counts.equals(CorpusCounts.of(texts))


def _typo_entries(table: TypoTable) -> tuple:
    """A typo table's spellings with their counts, and each deletion hash with its spelling
    (sorted: keys that tie may come in another order)."""
    words = [table.words[i] for i in range(len(table.words))]
    keyed = sorted(zip(table._keys.tolist(), [words[i] for i in table._ids.tolist()], strict=True))
    return words, table.counts.tolist(), keyed


def _entries(table: SuggestionTable) -> tuple:
    arrays = table.arrays
    return (
        arrays.keys.tolist(),
        arrays.texts.tolist(),
        arrays.weights.tolist(),
        arrays.title_keys.tolist(),
        arrays.title_texts.tolist(),
    )


def test_incremental_runs_keep_exact_counts(tmp_path: Path) -> None:
    rnd = random.Random(4)
    one = {f"a{i}": article(rnd, f"a{i}") for i in range(60)}
    two = {f"b{i}": article(rnd, f"b{i}") for i in range(15)}
    src_one, src_two, index = tmp_path / "one", tmp_path / "two", tmp_path / "index"
    write_source(src_one, one)
    reindex(index, [src_one], workers=1)
    assert_exact(index)

    # 8 new, 6 edited, 5 deleted: a small run (< 5 % once kept the old vocabulary)
    for i in range(60, 68):
        one[f"a{i}"] = article(rnd, f"a{i}")
    for i in range(0, 12, 2):
        one[f"a{i}"] = article(rnd, f"a{i}")
    for i in range(1, 11, 2):
        del one[f"a{i}"]
    write_source(src_one, one)
    summary = reindex(index, workers=1)
    assert (summary.added, summary.updated, summary.removed) == (8, 6, 5)
    assert_exact(index)

    # a second source, one of its documents also in the first (the later source wins)
    two["a20"] = dict(one["a20"])
    write_source(src_two, two)
    reindex(index, [src_two], workers=1)
    assert_exact(index)

    # one edit, in the source that now holds a20
    two["a20"]["body"] = "Mưa lớn ở Lào Cai. " + two["a20"]["body"]
    write_source(src_two, two)
    reindex(index, workers=1)
    assert_exact(index)

    reindex(index, forget=[src_two], workers=1)  # a20 comes back from the first source
    assert_exact(index)

    # the same documents built at once: the very same counts, files byte for byte
    fresh = tmp_path / "fresh"
    build_index([d for d in read_source(src_one) if isinstance(d, Document)], fresh, workers=1)
    ours = _generation_dir(index)
    theirs = _generation_dir(fresh)
    for name in sorted(p.name for p in theirs.iterdir()):
        if name.startswith(("accent-", "suggest-", "vocabulary-")):
            assert (ours / name).read_bytes() == (theirs / name).read_bytes(), name


def test_merged_segments_keep_exact_counts(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Small segments are merged every few runs (here past 3 of them): their documents change
    docnums and segment, and are compared by content; every run updates the counts without
    reading anything else."""
    from search import indexer
    from search.store.segment_merge import MergePolicy

    monkeypatch.setattr(
        indexer, "MergePolicy", lambda **limits: MergePolicy(segments_per_tier=3, **limits)
    )
    rnd = random.Random(8)
    docs = {f"d{i}": article(rnd, f"d{i}") for i in range(12)}
    src, index = tmp_path / "src", tmp_path / "index"
    segments: list[int] = []
    with caplog.at_level(logging.WARNING, logger="search"):
        for run in range(8):
            docs[f"n{run}"] = article(rnd, f"n{run}")
            docs[f"d{run}"] = article(rnd, f"d{run}")
            docs.pop(f"n{run - 2}", None)
            write_source(src, docs)
            reindex(index, [src], workers=1)
            segments.append(len(json.loads((_generation_dir(index) / "segments.json").read_text())))
            assert_exact(index)
    assert any(b < a for a, b in zip(segments, segments[1:], strict=False)), segments  # merged
    assert caplog.records == []


def test_a_full_reindex_counts_from_scratch(tmp_path: Path) -> None:
    rnd = random.Random(9)
    docs = {f"d{i}": article(rnd, f"d{i}") for i in range(30)}
    src, index = tmp_path / "src", tmp_path / "index"
    write_source(src, docs)
    reindex(index, [src], workers=1)
    del docs["d3"]
    docs["d4"] = article(rnd, "d4")
    write_source(src, docs)
    reindex(index, full=True, workers=1)
    assert_exact(index)


def test_counts_cross_the_process_pool(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from search import indexer

    monkeypatch.setattr(indexer, "ANALYSIS_BATCH", 20)  # a pool for a few dozen documents
    rnd = random.Random(2)
    docs = {f"p{i}": article(rnd, f"p{i}") for i in range(45)}
    src, index = tmp_path / "src", tmp_path / "index"
    write_source(src, docs)
    reindex(index, [src], workers=2)
    for i in range(45, 70):
        docs[f"p{i}"] = article(rnd, f"p{i}")
    del docs["p1"]
    write_source(src, docs)
    reindex(index, workers=2)
    assert_exact(index)


def test_workers_map_the_generation_files(toy_index: Path) -> None:
    engine = SearchEngine(toy_index, warm=False)
    try:
        snap = engine.snapshot()
        assert snap.files.shared
        arrays = [snap.live, snap.codes("date"), snap.codes("story"), snap.shared_story()]
        arrays.append(snap.facet_pairs())
        arrays += [*(snap._norms[f] for f in ("title", "lead", "body")), snap.column("id").blob]
        vocab = snap.accents()
        assert isinstance(vocab, MappedVocabulary)
        arrays += [vocab.arrays.pair_keys, vocab.arrays.syllables.blob]
        arrays += [snap.suggestions().arrays.keys.blob, snap.suggestions().arrays.weights]
        typos = snap.typos()
        arrays += [typos.words.blob, typos.counts, typos._keys, typos._ids]
        assert all(isinstance(mapping_of(a), mmap.mmap) for a in arrays)
        assert snap.labels("date")[snap.codes("date")[0]] == (snap.stored(0).get("date") or "")
    finally:
        engine.close()


def test_a_run_that_adds_nothing_to_an_empty_index_says_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    src = tmp_path / "src"
    write_source(src, {})
    with caplog.at_level(logging.WARNING, logger="search.store"):
        reindex(tmp_path / "index", [src], workers=1)
    assert caplog.records == []
    engine = SearchEngine(tmp_path / "index", warm=False)
    try:
        assert engine.snapshot().files.shared
        assert engine.search("lào cai")["total"] == 0
        assert engine.suggest("lao") == {"query": "lao", "suggestions": []}
    finally:
        engine.close()


def _one_body_reordered(
    rnd: random.Random, src: Path, index: Path
) -> tuple[dict[str, dict], Path, Path]:
    """A build of 40 articles, then a run with one body's words put in another order (same
    titles, same syllables): the articles and the two generations' directories."""
    docs = {f"d{i}": article(rnd, f"d{i}") for i in range(40)}
    write_source(src, docs)
    reindex(index, [src], workers=1)
    before = _generation_dir(index)
    docs["d3"]["body"] = " ".join(reversed(docs["d3"]["body"].split()))
    write_source(src, docs)
    assert reindex(index, workers=1).updated == 1
    return docs, before, _generation_dir(index)


def test_files_an_incremental_run_leaves_as_they_were_are_links(tmp_path: Path) -> None:
    """A file holding the bytes of the previous generation's is a hard link to it (not written
    again), every other file is written, and the links outlive the old generation."""
    rnd = random.Random(11)
    src, index = tmp_path / "src", tmp_path / "index"
    docs, before, after = _one_body_reordered(rnd, src, index)
    assert after != before
    linked, written = set(), set()
    for path in sorted(after.iterdir()):
        old = before / path.name
        same = old.exists() and old.read_bytes() == path.read_bytes()
        if os.path.samefile(path, old) if old.exists() else False:
            linked.add(path.name)
            assert same, path.name
        else:
            written.add(path.name)
            assert not same or path.suffix != ".npy", path.name
    assert {"suggest-titles.blob.npy", "accent-syllables.blob.npy"} <= linked
    assert {"hash.blob.npy", "manifest.json"} <= written
    # Two more runs remove the first generation's directory: the linked files stay whole.
    for round_ in range(2):
        docs[f"n{round_}"] = article(rnd, f"n{round_}")
        write_source(src, docs)
        reindex(index, workers=1)
    assert not before.exists()
    assert_exact(index)


def test_without_hard_links_every_file_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file system that refuses hard links (or a link that fails) gets each file written."""
    from search.store import strings

    def refuse(_src, _dst) -> None:
        raise PermissionError("no hard links here")

    monkeypatch.setattr(strings.os, "link", refuse)
    index = tmp_path / "index"
    _docs, before, after = _one_body_reordered(random.Random(12), tmp_path / "src", index)
    names = sorted(p.name for p in before.iterdir())  # a full build's: no tail
    tail = [
        f"{TAIL_PREFIX}{name}"
        for name in ("meta.json", "starts.npy", "docs.npy", "weights.npy")
        + tuple(f"names.{part}.npy" for part in ("blob", "offsets", "prefix"))
    ]
    assert sorted(p.name for p in after.iterdir()) == sorted(names + tail)
    assert all(os.stat(after / name).st_nlink == 1 for name in names + tail)
    assert (after / "suggest-titles.blob.npy").read_bytes() == (
        before / "suggest-titles.blob.npy"
    ).read_bytes()
    assert_exact(index)


def test_old_generations_files_are_removed(tmp_path: Path) -> None:
    rnd = random.Random(1)
    docs = {f"d{i}": article(rnd, f"d{i}") for i in range(10)}
    src, index = tmp_path / "src", tmp_path / "index"
    for round_ in range(4):
        docs[f"n{round_}"] = article(rnd, f"n{round_}")
        write_source(src, docs)
        reindex(index, [src], workers=1)
    names = sorted(p.name for p in store.store_dir(index).iterdir())
    generation = SearchEngine(index).health()["index_version"]
    kept = [f"gen-{generation - 1:06d}", f"gen-{generation:06d}"]
    # ... and the shared arrays of their bases alone (each run here moved the base up).
    bases = set()
    for number in (generation - 1, generation):
        columns = store.load_generation(index, number).columns
        bases.add(shared_postings.base_key(columns.segments, columns.averages))
    assert [n for n in names if n.startswith("gen-")] == kept
    shared = [shared_postings.base_of(n) for n in names if n not in kept]
    assert sorted(shared) == sorted(bases) and len(bases) == 2
    assert not (index / "accents.json.gz").exists()


def test_a_generation_without_files_is_built_by_the_worker(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """An index written before the shared files: the worker builds its own (logged), and every
    answer is the same; the next reindex writes the files."""
    index = tmp_path / "index"
    build_index(TOY_DOCS, index, workers=1)
    queries = ["lao cai", "cửa hàng", "hoa", '"bàn đồ"', "ban do go"]
    expected = _answers(index, queries)
    shutil.rmtree(store.store_dir(index))
    texts = [t for d in TOY_DOCS for t in (d.title, d.lead, d.body) if t]
    older = CountsVocabulary.from_texts(texts, min_pair_count=MIN_PAIR_COUNT)
    older.save(index / "accents.json.gz")  # what older versions wrote beside the index
    with caplog.at_level(logging.WARNING):
        answers = _answers(index, queries)
    assert answers == expected
    assert any("has no shared files" in r.getMessage() for r in caplog.records)
    assert any("accent vocabulary of an older vnsearch" in r.getMessage() for r in caplog.records)
    assert any("suggestions from every title" in r.getMessage() for r in caplog.records)
    engine = SearchEngine(index, warm=False)
    try:
        assert not engine.snapshot().files.shared
        assert engine.snapshot().accents() == older
    finally:
        engine.close()
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        reindex(index, workers=1)  # nothing changed: the files of the generation are written
    assert any("from every stored text" in r.getMessage() for r in caplog.records)
    assert _answers(index, queries) == expected
    assert store.load_generation(index, SearchEngine(index).health()["index_version"])


TYPO_QUERIES = ["hopp tacc", "doann hangg giaii chauu tangg", "cuaa hangg"]


def _corrected(index: Path) -> list[str | None]:
    engine = SearchEngine(index, warm=False)
    try:
        return [engine.search(q)["interpreted_as"] for q in TYPO_QUERIES]
    finally:
        engine.close()


@pytest.mark.parametrize(
    "damage",
    [
        "missing",
        "ids out of range",
        "keys out of order",
        "not UTF-8",
        "an empty spelling",
        "no array",
    ],
)
def test_a_typo_table_that_does_not_read_as_written_is_built_by_the_worker(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, damage: str
) -> None:
    """A generation without the typo table's files (written before them) or with files that do
    not read as the indexer writes them (an id past the spellings would raise mid-search, keys
    out of order would miss spellings, an empty spelling or bytes that are not UTF-8 would raise
    when a candidate is read): the worker builds its own table from the vocabulary, says so for a
    damaged one, and corrects queries exactly as with the files."""
    index = tmp_path / "index"
    build_index(TOY_DOCS, index, workers=1)
    expected = _corrected(index)
    assert expected == ["hop tac", "doan hang giai chau tangg", "cua hang"]
    directory = _generation_dir(index)
    ids, keys = directory / "typos-ids.npy", directory / "typos-keys.npy"
    if damage == "missing":
        ids.unlink()
    elif damage == "ids out of range":
        changed = np.load(ids)
        changed[changed.size // 2] = 1_000_000
        np.save(ids, changed)
    elif damage == "keys out of order":
        changed = np.load(keys)
        changed[[0, -1]] = changed[[-1, 0]]
        np.save(keys, changed)
    elif damage == "an empty spelling":
        offsets = directory / "typos-words.offsets.npy"
        changed = np.load(offsets)
        changed[1] = 0  # the first spelling empty, its letters the second's
        np.save(offsets, changed)
    elif damage == "not UTF-8":
        blob = directory / "typos-words.blob.npy"
        changed = np.load(blob)
        changed[:] = 0xFF  # never a byte of UTF-8
        np.save(blob, changed)
    else:
        ids.write_bytes(b"not an array")
    with caplog.at_level(logging.WARNING):
        assert _corrected(index) == expected
    warned = [r.getMessage() for r in caplog.records if "typo table" in r.getMessage()]
    assert len(warned) == (0 if damage == "missing" else 1)
    engine = SearchEngine(index, warm=False)
    try:
        snap = engine.snapshot()
        assert snap.files.shared and snap.files.typos is None
        assert not isinstance(mapping_of(snap.typos()._keys), mmap.mmap)  # this process's own
    finally:
        engine.close()


def test_a_generation_written_before_the_facet_pairs_answers_the_same(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A generation directory without ``facet_pairs.npy`` (written by an older vnsearch): the
    worker derives the pairs from the source and year codes (logged) and counts the same
    facets."""
    index = tmp_path / "index"
    build_index(TOY_DOCS, index, workers=1)
    queries = ["lao cai", "cửa hàng", "hoa", "ban do go"]
    expected = _answers(index, queries)
    assert any(body["facets"]["source"] for body, _, _ in expected)
    (_generation_dir(index) / "facet_pairs.npy").unlink()
    with caplog.at_level(logging.INFO, logger="search.store.columns"):
        assert _answers(index, queries) == expected
    assert any("no facet_pairs.npy" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    "written",
    [
        np.full(3, 1, dtype=np.int32),  # another length
        np.full(len(TOY_DOCS), 10**6, dtype=np.int32),  # codes out of range
        np.full(len(TOY_DOCS), -1, dtype=np.int32),
        np.zeros(len(TOY_DOCS), dtype=np.float64),  # another type
    ],
)
def test_facet_pairs_that_do_not_fit_the_generation_are_computed_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, written: np.ndarray
) -> None:
    """A ``facet_pairs.npy`` that is not one code in range per document (a damaged or foreign
    file) is not used: the worker computes the pairs (warned) and counts the same facets."""
    index = tmp_path / "index"
    build_index(TOY_DOCS, index, workers=1)
    queries = ["lao cai", "hoa", "ban do go"]
    expected = _answers(index, queries)
    np.save(_generation_dir(index) / "facet_pairs.npy", written)
    with caplog.at_level(logging.WARNING, logger="search.store.columns"):
        assert _answers(index, queries) == expected
    assert any("facet_pairs.npy" in r.getMessage() for r in caplog.records)


def test_a_serving_worker_keeps_its_generation_while_the_next_ones_files_are_written(
    tmp_path: Path,
) -> None:
    rnd = random.Random(3)
    docs = {f"d{i}": article(rnd, f"d{i}") for i in range(10)}
    src, index = tmp_path / "src", tmp_path / "index"
    write_source(src, docs)
    reindex(index, [src], workers=1)
    engine = SearchEngine(index, warm=False)
    try:
        first = engine.health()["index_version"]
        docs["new"] = article(rnd, "new")
        write_source(src, docs)
        _commit_without_publishing(index)
        store.pending_path(index, first + 1).write_text(str(os.getpid()), encoding="ascii")
        assert engine.health() == {"status": "ok", "documents": 10, "index_version": first}
        store.publish(index, None, _norms())
        assert engine.health() == {"status": "ok", "documents": 11, "index_version": first + 1}
        assert engine.snapshot().files.shared
    finally:
        engine.close()


def test_a_fresh_worker_waits_for_the_files_being_written(tmp_path: Path) -> None:
    rnd = random.Random(5)
    docs = {f"d{i}": article(rnd, f"d{i}") for i in range(10)}
    src, index = tmp_path / "src", tmp_path / "index"
    write_source(src, docs)
    reindex(index, [src], workers=1)
    docs["new"] = article(rnd, "new")
    write_source(src, docs)
    _commit_without_publishing(index)
    marker = store.pending_path(index, _latest(index))
    marker.write_text(str(os.getpid()), encoding="ascii")

    def publish_later() -> None:
        time.sleep(0.3)
        store.publish(index, None, _norms())
        marker.unlink(missing_ok=True)

    writer = threading.Thread(target=publish_later)
    writer.start()
    engine = SearchEngine(index, warm=False)
    try:
        assert engine.health()["documents"] == 11
        assert engine.snapshot().files.shared  # waited for them rather than building its own
    finally:
        engine.close()
        writer.join()


def _commit_without_publishing(index: Path) -> None:
    from search import indexer

    real = indexer._publish
    indexer._publish = lambda index_dir, vocabulary: (
        vocabulary.update.close() if vocabulary else None
    )
    try:
        reindex(index, workers=1)
    finally:
        indexer._publish = real
    store.pending_path(index, _latest(index)).unlink(missing_ok=True)


def _latest(index: Path) -> int:
    from whoosh import index as whoosh_index

    return whoosh_index.open_dir(str(index)).latest_generation()


def _norms():
    from search.postings import length_norms

    return length_norms


def _generation_dir(index: Path) -> Path:
    return store.generation_dir(index, _latest(index))


def _answers(index: Path, queries: list[str]) -> list:
    engine = SearchEngine(index, warm=False)
    try:
        out = []
        for q in queries:
            body = engine.search(q, per_page=20, sort="relevance")
            body.pop("took_ms")
            newest = engine.search(q, sort="newest", date_from="2023")
            newest.pop("took_ms")
            out.append((body, newest, engine.suggest(q[:4])))
        return out
    finally:
        engine.close()


def test_field_averages_leave_out_documents_without_the_field() -> None:
    from search.postings import length_norms
    from search.store.columns import field_averages

    nan = float("nan")
    lengths = np.array(
        [[4.0, nan, 8.0, 100.0], [nan, 0.0, nan, nan], [10.0, 20.0, 30.0, 40.0]], np.float32
    )
    live = np.array([True, True, True, False])  # the fourth is deleted
    assert field_averages(lengths, live).tolist() == [6.0, 0.0, 20.0]
    norms = length_norms(lengths, live)
    assert not np.isnan(norms).any()
    # A generation written before kept NaN averages: they are taken again from the lengths.
    assert np.array_equal(length_norms(lengths, live, np.array([nan, nan, 20.0])), norms)
    assert norms[0, 0] > norms[0, 2]  # the shorter title weighs more
    assert norms[0, 1] == norms[1, 0] * 2 == 6.0  # no title: the bare title weight (6, lead 3)
    # An empty field read as 0 (some segments) counts no more than one read as NaN.
    assert field_averages(np.where(np.isnan(lengths), 0, lengths), live).tolist() == [6.0, 0, 20.0]


def _two_copies_updated(
    rnd: random.Random, tmp_path: Path, bodies_only: bool = False
) -> tuple[Path, Path]:
    """An index of 40 articles and a copy of it, then the same run (5 new, 3 edited, 2 deleted,
    a title changed; or, ``bodies_only``, two bodies edited) given to each: the two indexes."""
    docs = {f"d{i}": article(rnd, f"d{i}") for i in range(40)}
    src, index, copy = tmp_path / "src", tmp_path / "index", tmp_path / "copy"
    write_source(src, docs)
    reindex(index, [src], workers=1)
    shutil.copytree(index, copy, symlinks=True)
    if bodies_only:  # the titles' suggestion counts stay as they were: their files are links
        docs["d2"]["body"] = docs["d5"]["body"]
        docs["d7"]["body"] = " ".join(reversed(docs["d7"]["body"].split()))
        write_source(src, docs)
        return index, copy
    for i in range(40, 45):
        docs[f"d{i}"] = article(rnd, f"d{i}")
    for i in (2, 4, 6):
        docs[f"d{i}"] = article(rnd, f"d{i}")
    docs["d8"]["title"] = "Giá vàng hôm nay tăng mạnh"
    del docs["d1"], docs["d3"]
    write_source(src, docs)
    return index, copy


def _generation_files(index: Path) -> dict[str, bytes]:
    """The latest generation's files but ``segments.json``, and the tail terms' meta without
    its segments' names (Whoosh names segments at random)."""
    directory = _generation_dir(index)
    files = {p.name: p.read_bytes() for p in directory.iterdir() if p.name != "segments.json"}
    if TAIL_META in files:
        meta = json.loads(files[TAIL_META])
        meta["segments"] = [count for _, count in meta["segments"]]
        files[TAIL_META] = json.dumps(meta).encode()
    return files


# An incremental reindex in a fresh interpreter (the suite's process may hold other tests'
# threads, beside which the indexer rightly does not fork): the forks it made, its own pid, what
# it added, updated and removed, and what the generation writer logged.  ``die``: the child
# that writes the suggestion table saves the counts, then fails.
_FORKING_RUN = """
import json, logging, os, sys
from pathlib import Path
from search.indexer import reindex
from search.store import generation as store

index, mode = Path(sys.argv[1]), sys.argv[2]
forks, messages, parent = [], [], os.getpid()
fork_work, save = store.fork_work, store._save_suggest

def recorded(work):
    forks.append(fork_work(work))
    return forks[-1]

def dies_in_the_child(counts, directory):
    if os.getpid() != parent:
        counts.suggest.save(directory)
        raise MemoryError("the child ran out of memory")
    save(counts, directory)

class Messages(logging.Handler):
    def emit(self, record):
        messages.append(record.getMessage())

store.fork_work = recorded
if mode == "die":
    store._save_suggest = dies_in_the_child
logger = logging.getLogger("search.store.generation")
logger.addHandler(Messages())
logger.setLevel(logging.INFO)
summary = reindex(index, workers=1)
counts = [summary.added, summary.updated, summary.removed]
print(json.dumps({"forks": forks, "pid": parent, "counts": counts, "log": messages}))
"""


def _forking_run(index: Path, mode: str = "record") -> dict:
    return json.loads(run_fresh(_FORKING_RUN, str(index), mode).splitlines()[-1])


def test_an_incremental_runs_suggestion_table_is_written_by_a_child_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An incremental run derives the suggestion table in a forked child while it derives the
    accent model: the files are those one process writes, byte for byte."""
    index, copy = _two_copies_updated(random.Random(21), tmp_path)
    run = _forking_run(index)
    assert run["counts"] == [5, 4, 2]
    assert len(run["forks"]) == 1 and run["forks"][0] not in (None, run["pid"])
    assert run["log"] == []
    monkeypatch.setattr(store, "fork_work", lambda work: None)  # as a process with threads
    reindex(copy, workers=1)
    ours, theirs = _generation_files(index), _generation_files(copy)
    assert sorted(ours) == sorted(theirs)
    assert any(name.startswith("suggest-") for name in ours)
    for name in ours:
        assert ours[name] == theirs[name], name
    assert_exact(index)


def test_a_failed_child_leaves_its_part_to_the_indexer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The child that writes the suggestion table dies halfway (a file written, then an
    error): the indexer says so and writes the table itself; the generation is exact."""
    index, copy = _two_copies_updated(random.Random(22), tmp_path, bodies_only=True)
    previous = _generation_dir(index)
    stamps = {p.name: p.stat().st_mtime_ns for p in previous.iterdir()}
    run = _forking_run(index, "die")
    assert len(run["forks"]) == 1 and run["forks"][0] is not None
    assert run["log"] == ["the suggestion table's process failed: writing it here"]
    # The files the child linked to the previous generation's were not written over: a worker
    # still maps those.
    assert {p.name: p.stat().st_mtime_ns for p in previous.iterdir()} == stamps
    assert any(
        os.path.samefile(p, previous / p.name)
        for p in _generation_dir(index).glob("suggest-*")
        if (previous / p.name).exists()
    )
    monkeypatch.setattr(store, "fork_work", lambda work: None)
    reindex(copy, workers=1)
    assert _generation_files(index) == _generation_files(copy)
    assert_exact(index)
