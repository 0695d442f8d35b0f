"""Bounded-memory builds and segment merges (``search.store.segment_merge``).

A build over its memory bound flushes several segments and merges them at the end; the merged
segment must be the one a single builder writes from all the documents (every term's statistics
and postings, stored fields, lengths, columns), so every query answers exactly the same.
"""

from __future__ import annotations

import random
import re
import unicodedata
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from conftest import TOY_DOCS
from test_segment_writer import _contents, _documents
from whoosh import index as whoosh_index
from whoosh.codec.whoosh3 import W3Codec
from whoosh.writing import CLEAR

from bench.forms import nfd_other_tone, telex, unaccented
from search import indexer
from search.documents import Document
from search.engine import SearchEngine
from search.indexer import POOLED, _analyze, _commit, _values, build_index, open_or_create, reindex
from search.schema import codec
from search.store import segment_merge
from search.store.segment_merge import MergePolicy, merge_runs, merge_segments
from search.store.segment_writer import SegmentBuilder

_SENTENCE = re.compile(r"(?<=[.!?])\s+")


def _mixed_documents(n: int, seed: int = 14) -> list[Document]:
    """``n`` documents made of the sample articles' sentences, seeded: many adjacent pairs occur
    in two documents that land in different flushed segments, others in one document only."""
    sentences = [s for d in _documents() for s in _SENTENCE.split(d.body) if len(s) > 20]
    titles = [d.title for d in _documents() if d.title]
    rng = random.Random(seed)
    return [
        Document(
            id=f"m{i:03}",
            title=rng.choice(titles),
            lead=rng.choice(sentences) if i % 3 else "",
            body=" ".join(rng.sample(sentences, rng.randint(1, 4))),
            source=f"Báo {i % 4}",
            date=f"202{i % 5}-0{i % 9 + 1}-1{i % 10}",
        )
        for i in range(n)
    ]


def _builder_index(path: Path, parts: list[list[Document]], pool: bool, codec_=None):
    """Documents written by one builder per part; several parts are merged by
    ``merge_segments``.  Returns the opened index."""
    codec_ = codec_ or codec()
    ix = open_or_create(path, full=True)
    segments = []
    for part in parts:
        builder = SegmentBuilder(ix, codec_, POOLED)
        for doc in part:
            builder.add_document(_values(doc), _analyze(doc))
        segments.append(builder.finish(pool=pool))
    if len(segments) > 1:
        segments = [merge_segments(ix, codec_, segments, POOLED)]
    _commit(ix.writer(codec=codec_), segments, CLEAR)
    return whoosh_index.open_dir(str(path))


@pytest.mark.parametrize(
    ("chunk_terms", "read_bytes", "blocklimit"),
    [(segment_merge.CHUNK_TERMS, segment_merge.READ_BYTES, 1024), (3, 40, 2)],
)
def test_flushed_segments_merge_into_the_segment_one_builder_writes(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    chunk_terms: int,
    read_bytes: int,
    blocklimit: int,
) -> None:
    monkeypatch.setattr(segment_merge, "CHUNK_TERMS", chunk_terms)
    monkeypatch.setattr(segment_merge, "READ_BYTES", read_bytes)
    small_blocks = W3Codec(blocklimit=blocklimit)
    docs = _documents() + _mixed_documents(60)
    one = _contents(_builder_index(tmp_path / "one", [docs], True, small_blocks))
    parts = [docs[:5], docs[5:40], docs[40:41], docs[41:]]
    merged = _contents(_builder_index(tmp_path / "merged", parts, False, small_blocks))
    assert merged["terms"].keys() == one["terms"].keys()
    assert len(one["terms"]) > 5000
    pooled = [k for k in one["terms"] if k[1].startswith(b"~")]
    assert len(pooled) > 100  # pairs held by one document, under their bucket terms
    for key, value in one["terms"].items():
        assert merged["terms"][key] == value, key
    for part in ("stored", "lengths", "totals", "columns"):
        assert merged[part] == one[part], part


@pytest.mark.parametrize(
    ("copy_bytes", "chunk_postings", "chunk_terms"),
    [
        (segment_merge.COPY_BYTES, segment_merge.CHUNK_POSTINGS, segment_merge.CHUNK_TERMS),
        (7, 3, 5),
    ],
)
def test_a_merge_drops_deleted_documents(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    copy_bytes: int,
    chunk_postings: int,
    chunk_terms: int,
) -> None:
    monkeypatch.setattr(segment_merge, "COPY_BYTES", copy_bytes)
    # Small chunks: terms of inputs with deletions decoded a few postings at a time.
    monkeypatch.setattr(segment_merge, "CHUNK_POSTINGS", chunk_postings)
    monkeypatch.setattr(segment_merge, "CHUNK_TERMS", chunk_terms)
    docs = _documents() + _mixed_documents(40)
    deleted = {1, 6, 30, 50, len(docs) - 1}
    live = [d for i, d in enumerate(docs) if i not in deleted]
    one = _contents(_builder_index(tmp_path / "one", [live], pool=True))
    ix = open_or_create(tmp_path / "merged", full=True)
    segments, first = [], 0
    for part in (docs[:10], docs[10:45], docs[45:]):
        builder = SegmentBuilder(ix, codec(), POOLED)
        for doc in part:
            builder.add_document(_values(doc), _analyze(doc))
        segment = builder.finish(pool=False)
        for docnum in range(len(part)):
            if first + docnum in deleted:
                segment.delete_document(docnum)
        segments.append(segment)
        first += len(part)
    _commit(ix.writer(), [merge_segments(ix, codec(), segments, POOLED)], CLEAR)
    merged = _contents(whoosh_index.open_dir(str(tmp_path / "merged")))
    assert merged["terms"] == one["terms"]  # a pair left in one live document is pooled
    for part in ("stored", "lengths", "columns"):
        assert merged[part] == one[part], part


def test_a_merge_of_nothing_live_writes_no_segment(tmp_path: Path) -> None:
    ix = open_or_create(tmp_path / "ix", full=True)
    builder = SegmentBuilder(ix, codec(), POOLED)
    builder.add_document(_values(TOY_DOCS[0]), _analyze(TOY_DOCS[0]))
    segment = builder.finish(pool=False)
    segment.delete_document(0)
    assert merge_segments(ix, codec(), [segment], POOLED) is None


QUERIES = (
    "lào cai",
    "Lào Cai mưa lớn",
    "sa pa",
    "giá vàng",
    "hòa bình",
    "hoà giải",
    "kỹ sư",
    '"lào cai"',
    '"bảng giá"',
    '"khánh thành cầu"',
    "lào cai -mưa",
    'đà nẵng -"khánh thành"',
    "học sinh -lào",
    "2023",
    "xã 7",
    "laof cai",
    "thi thpt",
)


def _typed(query: str) -> list[str]:
    """The query as people type it: as written, folded, in Telex, NFD with the other tone-mark
    placement (the quoted and excluded parts as written)."""
    if '"' in query or "-" in query:
        return [query, unaccented(query)]
    return [query, unaccented(query), telex(query), nfd_other_tone(query)]


def _answers(index_dir: Path, queries: list[str]) -> list[dict]:
    engine = SearchEngine(index_dir, warm=False)
    try:
        out = []
        for q in queries:
            answer = engine.search(q, per_page=100, collapse=False)
            answer.pop("took_ms")
            out.append(answer)
        return out
    finally:
        engine.close()


def _postings(index_dir: Path) -> dict:
    with whoosh_index.open_dir(str(index_dir)).searcher() as searcher:
        reader = searcher.reader()
        return {
            (field, term): list(reader.postings(field, term).items_as("weight"))
            for field, term in reader.all_terms()
        }


def test_a_build_over_the_memory_bound_merges_into_the_same_index(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 5 batches of 50: a bound of 0 flushes the builder before each batch but the first; the 5
    # segments are merged into one, and every query answers as from one segment.
    docs = _documents()[:10] + _mixed_documents(240)[: 240 - 10]
    build_index(docs, tmp_path / "one", workers=1)
    merged: list[int] = []
    real_merge = segment_merge.merge_segments

    def counting(ix, codec, segments, shared=None):
        merged.append(len(segments))
        return real_merge(ix, codec, segments, shared)

    monkeypatch.setattr(segment_merge, "merge_segments", counting)
    monkeypatch.setattr(indexer, "SEGMENT_MB", 0)
    build_index(docs, tmp_path / "many", workers=1)
    assert merged == [5]
    for name in ("one", "many"):
        assert len(whoosh_index.open_dir(str(tmp_path / name)).reader().leaf_readers()) == 1
    assert len(list((tmp_path / "many").glob("*.seg"))) == 1  # the flushed ones are gone
    assert _postings(tmp_path / "many") == _postings(tmp_path / "one")
    queries = [form for q in QUERIES for form in _typed(q)]
    assert unicodedata.normalize("NFD", "hòa") in "".join(queries)
    one, many = _answers(tmp_path / "one", queries), _answers(tmp_path / "many", queries)
    assert sum(a["total"] for a in one) > 300
    for query, expected, got in zip(queries, one, many, strict=True):
        assert got == expected, query


def test_a_build_larger_than_the_segment_limit_keeps_several_segments(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    docs = _mixed_documents(120)
    build_index(docs, tmp_path / "one", workers=1)
    monkeypatch.setattr(indexer, "SEGMENT_MB", 0)
    monkeypatch.setattr(indexer, "MAX_SEGMENT_DOCS", 50)  # batches of 50: 50, 50, 20
    build_index(docs, tmp_path / "index", workers=1)
    reader = whoosh_index.open_dir(str(tmp_path / "index")).reader()
    assert [leaf.doc_count_all() for leaf, _ in reader.leaf_readers()] == [50, 50, 20]
    # Pairs are pooled per segment, so scores may differ; the same documents are found.
    queries = ["lào cai", "thi", "sa pa", "khánh thành cầu"]
    for one, several in zip(
        _answers(tmp_path / "one", queries), _answers(tmp_path / "index", queries), strict=True
    ):
        assert one["total"] == several["total"] > 0
        assert {h["id"] for h in one["hits"]} == {h["id"] for h in several["hits"]}


def test_the_pool_keeps_a_bounded_number_of_batches_in_flight() -> None:
    batches = [
        indexer.Batch([doc], [doc.content_hash], [i % 2 == 0]) for i, doc in enumerate(TOY_DOCS)
    ]
    submitted = 0
    taken = 0
    most = 0

    class Recording(ThreadPoolExecutor):
        def submit(self, fn, *args):
            nonlocal most, submitted
            assert fn is indexer._analyse_batch
            submitted += 1
            most = max(most, submitted - taken)
            return super().submit(fn, *args)

    with Recording(max_workers=2) as pool:
        got = []
        for batch, (postings, tally) in indexer._in_order(pool, batches, 3):
            got.append(batch.docs[0].id)
            assert set(postings) == {"title", "lead", "body", "title_x", "lead_x", "body_x"}
            assert (tally is not None) == batch.count[0]  # tallied only where counted
            taken += 1
    assert got == [doc.id for doc in TOY_DOCS]
    assert most == 3
    assert submitted == len(TOY_DOCS)


def test_merge_policy_merges_ten_similar_neighbours() -> None:
    policy = MergePolicy(max_docs=2_000_000)
    assert policy.plan([200] * 10) == []  # ten segments of a tier may stay
    assert policy.plan([1_000_000] + [200] * 11) == [list(range(1, 11))]
    assert policy.plan([50_000] * 25) == [list(range(0, 10)), list(range(10, 20))]
    assert policy.plan([1_500_000, 1_200_000]) == []  # too large to merge further
    small = MergePolicy(max_docs=1000, floor_docs=10)
    assert small.plan([600] + [100] * 12) == [list(range(1, 11))]
    assert merge_runs([50] * 5, 120) == [[0, 1], [2, 3], [4]]
    assert merge_runs([200, 10, 10], 100) == [[0], [1, 2]]


def _write(path: Path, title: str, body: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{title}\n\n{body}\n", encoding="utf-8")


def test_incremental_runs_merge_small_segments_without_changing_answers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each run adds one article, so one segment; the eleventh run's commit merges ten of them.
    # Merging pooled segments changes no answer: the same index without merges answers alike.
    docs = _mixed_documents(11)
    src = tmp_path / "src"
    segments = []
    for doc in docs:
        _write(src / f"{doc.id}.txt", doc.title, doc.body)
        reindex(tmp_path / "index", [src], workers=1)
        reader = whoosh_index.open_dir(str(tmp_path / "index")).reader()
        segments.append(len(reader.leaf_readers()))
    assert segments == [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 2]
    monkeypatch.setattr(
        indexer, "MergePolicy", lambda **limits: MergePolicy(segments_per_tier=100, **limits)
    )
    for doc in docs:
        reindex(tmp_path / "unmerged", [src / f"{doc.id}.txt"], workers=1)
    assert len(whoosh_index.open_dir(str(tmp_path / "unmerged")).reader().leaf_readers()) == 11
    queries = ["lào cai", '"lào cai"', "sa pa -lào", "thi", "đà nẵng"]
    assert _answers(tmp_path / "index", queries) == _answers(tmp_path / "unmerged", queries)


def test_a_failed_merge_leaves_the_index_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = tmp_path / "src"
    docs = _mixed_documents(12)
    for doc in docs[:10]:
        _write(src / f"{doc.id}.txt", doc.title, doc.body)
        reindex(tmp_path / "index", [src / f"{doc.id}.txt"], workers=1)
    before = sorted(p.name for p in (tmp_path / "index").iterdir() if p.name != "vnsearch")
    answers = _answers(tmp_path / "index", ["lào cai", "thi"])

    monkeypatch.setattr(segment_merge, "write_sorted", _disk_full)
    _write(src / "late.txt", docs[10].title, docs[10].body)
    with pytest.raises(OSError, match="No space"):
        reindex(tmp_path / "index", [src / "late.txt"], workers=1)
    after = sorted(p.name for p in (tmp_path / "index").iterdir() if p.name != "vnsearch")
    assert after == before
    assert _answers(tmp_path / "index", ["lào cai", "thi"]) == answers


def test_a_build_failing_in_its_merge_leaves_nothing_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = tmp_path / "src"
    for doc in _mixed_documents(120):
        _write(src / f"{doc.id}.txt", doc.title, doc.body)
    reindex(tmp_path / "index", [src / "m000.txt"], workers=1)
    before = sorted(p.name for p in (tmp_path / "index").iterdir() if p.name != "vnsearch")
    monkeypatch.setattr(indexer, "SEGMENT_MB", 0)  # three flushed segments, then their merge
    monkeypatch.setattr(segment_merge, "write_sorted", _disk_full)
    with pytest.raises(OSError, match="No space"):
        reindex(tmp_path / "index", [src], workers=1)
    after = sorted(p.name for p in (tmp_path / "index").iterdir() if p.name != "vnsearch")
    assert after == before


def _disk_full(*args, **kwargs):
    raise OSError(28, "No space left on device")


def test_segments_the_merge_cannot_read_stay_as_they_are(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Segments Whoosh wrote itself, as plain files (an index from elsewhere): left unmerged.
    ix = open_or_create(tmp_path / "ix", full=True)
    for doc in TOY_DOCS:
        writer = ix.writer(compound=False)
        writer.add_document(**_values(doc))
        writer.commit(merge=False)
    ix = whoosh_index.open_dir(str(tmp_path / "ix"))
    segments = ix._segments()
    assert len(segments) == len(TOY_DOCS) and not segments[0].is_compound()
    policy = MergePolicy(segments_per_tier=2)
    with caplog.at_level("WARNING", logger="search.store.segment_merge"):
        kept, written = segment_merge.merge_committed(ix, codec(), segments, POOLED, policy)
    assert kept == segments and written == []
    assert "left unmerged" in caplog.text
