"""``term_reader`` gives exactly what Whoosh's own path gives.

Every term of every field is read both ways (``SegmentTerms.postings`` and ``whoosh_postings``)
from segments written by ``segment_writer`` (inlined lists and multi-block lists), by Whoosh's own
writer, and by Whoosh merging the two; missing terms, unknown fields, several segments with
deleted documents, segments it does not take (not compound, or mapped by Whoosh) and entries it
does not decode must all end as they did before.
"""

from __future__ import annotations

import contextlib
import os
import struct
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from conftest import TOY_DOCS
from test_segment_writer import _bulk_index, _documents, _whoosh_index
from whoosh import index as whoosh_index
from whoosh.codec.whoosh3 import W3Codec
from whoosh.matching import ListMatcher

from search import postings
from search.documents import Document
from search.engine import open_for_reading
from search.indexer import _values, build_index
from search.postings import Snapshot
from search.schema import TEXT_FIELDS, extra_field
from search.store import segment_writer, term_reader
from search.store.term_reader import SegmentTerms, whoosh_postings


def _same(got, expected) -> bool:
    """Bit-identical arrays (values, dtypes), or both ``None``."""
    if got is None or expected is None:
        return got is None and expected is None
    return all(
        a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()
        for a, b in zip(got, expected, strict=True)
    )


def _open(path: Path):
    """The index at ``path`` as workers open it (``supports_mmap=False``: plain files)."""
    return open_for_reading(path)


def _check_every_term(ix) -> dict[str, int]:
    """Read every term of every segment both ways; returns how many lists of each kind."""
    kinds = {"inline": 0, "blocks": 0, "multiblock": 0, "missing": 0}
    with ix.searcher() as searcher:
        for leaf, _base in searcher.reader().leaf_readers():
            reader = SegmentTerms.open(leaf)
            assert reader is not None, "a compound W3 segment gets a reader"
            try:
                for field, term in leaf.all_terms():
                    expected = whoosh_postings(leaf, field, term)
                    got = reader.postings(field, term)
                    assert _same(got, expected), (field, term)
                    matcher = leaf._terms.matcher(field, term, leaf.schema[field].format)
                    if isinstance(matcher, ListMatcher):
                        kinds["inline"] += 1
                    else:
                        kinds["blocks"] += 1
                        kinds["multiblock"] += not matcher._lastblock
                    for missing_field, missing in (
                        (field, term + b"\x00missing"),
                        (field, term[:-1]),
                        ("url", term),  # a stored-only field: not in the term dictionary
                    ):
                        expected = whoosh_postings(leaf, missing_field, missing)
                        assert _same(reader.postings(missing_field, missing), expected)
                        kinds["missing"] += expected is None
            finally:
                reader.close()
    return kinds


# The term dictionary read from the file a lookup at a time, or read whole when small.
IMAGES = pytest.mark.parametrize(
    "image_bytes", [0, term_reader.IMAGE_BYTES], ids=["pread", "image"]
)


@IMAGES
@pytest.mark.parametrize(("blocklimit", "inline"), [(1024, segment_writer.INLINE_POSTINGS), (4, 2)])
def test_bulk_written_segment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, blocklimit: int, inline: int, image_bytes: int
) -> None:
    monkeypatch.setattr(segment_writer, "INLINE_POSTINGS", inline)
    monkeypatch.setattr(term_reader, "IMAGE_BYTES", image_bytes)
    _bulk_index(tmp_path, _documents(), W3Codec(blocklimit=blocklimit))
    kinds = _check_every_term(_open(tmp_path))
    assert kinds["inline"] > 1000 and kinds["blocks"] > 50 and kinds["missing"] > 1000
    if blocklimit == 4:
        assert kinds["multiblock"] > 100


@IMAGES
@pytest.mark.parametrize(("probe", "entry"), [(4, 160), (1, 0), (3, 7)])
def test_whoosh_written_segment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, probe: int, entry: int, image_bytes: int
) -> None:
    """Also with one slot a read, and entries' values always (or often) read apart."""
    monkeypatch.setattr(term_reader, "IMAGE_BYTES", image_bytes)
    monkeypatch.setattr(term_reader, "PROBE_SLOTS", probe)
    monkeypatch.setattr(term_reader, "ENTRY_BYTES", entry)
    _whoosh_index(tmp_path, _documents(), W3Codec(blocklimit=4))
    kinds = _check_every_term(_open(tmp_path))
    assert kinds["blocks"] > 1000 and kinds["multiblock"] > 100
    assert kinds["inline"] == 0  # Whoosh's writer never inlines


def _add(ix, docs: list[Document], codec: W3Codec, **commit) -> None:
    writer = ix.writer(codec=codec)
    for doc in docs:
        writer.add_document(
            **_values(doc),
            **{n: getattr(doc, n) for n in TEXT_FIELDS},
            **{extra_field(n): getattr(doc, n) for n in TEXT_FIELDS},
        )
    writer.commit(**commit)


def test_segment_merged_by_whoosh(tmp_path: Path) -> None:
    codec = W3Codec(blocklimit=4)
    ix = _bulk_index(tmp_path, _documents(), codec)
    _add(ix, [Document(id="one-more", title="Lào Cai", body="Lào Cai mùa xuân.")], codec)
    ix = whoosh_index.open_dir(str(tmp_path))
    _add(ix, [], codec, optimize=True)
    ix = _open(tmp_path)
    assert len(ix._segments()) == 1
    kinds = _check_every_term(ix)
    assert kinds["blocks"] > 1000 and kinds["inline"] == 0


def _loads(snapshot: Snapshot, terms: list[str]) -> list[postings.TermPostings]:
    return [snapshot._load(term) for term in terms]


def _assert_same_loads(got: list, expected: list) -> None:
    for a, b in zip(got, expected, strict=True):
        assert a.df == b.df
        assert _same((a.docs, a.weight), (b.docs, b.weight))


def _terms(ix) -> list[str]:
    """Every text term of the index, plus some that are nowhere."""
    with ix.searcher() as searcher:
        names = set(TEXT_FIELDS) | {extra_field(n) for n in TEXT_FIELDS}
        found = {t.decode() for f, t in searcher.reader().all_terms() if f in names}
    return sorted(found) + ["không-có-đâu", "zzzz", "~ffff", "a_b c"]


def test_snapshot_over_segments_with_deletions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Several segments (bulk and Whoosh-written, some documents deleted): whole-term loads are
    what they were through Whoosh alone."""
    codec = W3Codec(blocklimit=4)
    ix = _bulk_index(tmp_path, _documents(), codec)
    _add(ix, list(TOY_DOCS[:3]), codec)
    ix = whoosh_index.open_dir(str(tmp_path))
    writer = ix.writer(codec=codec)
    writer.delete_by_term("id", TOY_DOCS[0].id)
    writer.delete_document(1)
    writer.commit()
    ix = _open(tmp_path)
    terms = _terms(ix)
    fast = Snapshot(ix)
    assert len(fast._leaves) == 2
    assert all(r is not None for _, _, r in fast._leaves)
    assert not fast.live.all()
    got = _loads(fast, terms)
    monkeypatch.setattr(SegmentTerms, "open", classmethod(lambda cls, leaf: None))
    plain = Snapshot(ix)
    assert all(m is None for _, _, m in plain._leaves)
    _assert_same_loads(got, _loads(plain, terms))
    assert sum(p.df > 0 for p in got) > 2000
    fast.close()
    plain.close()


def test_segment_not_compound_reads_through_whoosh(tmp_path: Path) -> None:
    codec = W3Codec(blocklimit=4)
    docs = _documents()
    compound = _whoosh_index(tmp_path / "compound", docs, codec)
    (tmp_path / "loose").mkdir()
    loose = whoosh_index.create_in(str(tmp_path / "loose"), compound.schema)
    writer = loose.writer(codec=codec, compound=False)
    writer.add_reader(compound.reader())
    writer.commit()
    loose = _open(tmp_path / "loose")
    assert not loose._segments()[0].is_compound()
    compound = _open(tmp_path / "compound")
    terms = _terms(compound)
    snapshot = Snapshot(loose)
    assert [m for _, _, m in snapshot._leaves] == [None]
    _assert_same_loads(_loads(snapshot, terms), _loads(Snapshot(compound), terms))
    snapshot.close()


def test_segment_mapped_by_whoosh_reads_through_whoosh(tmp_path: Path) -> None:
    """Whoosh's own ``supports_mmap`` (not what workers use) closes the file: no reader."""
    _bulk_index(tmp_path, _documents(), W3Codec(blocklimit=4))
    mapped = whoosh_index.open_dir(str(tmp_path))
    terms = _terms(mapped)
    snapshot = Snapshot(mapped)
    assert [r for _, _, r in snapshot._leaves] == [None]
    _assert_same_loads(_loads(snapshot, terms), _loads(Snapshot(_open(tmp_path)), terms))
    snapshot.close()


def test_entries_the_reader_does_not_decode_go_through_whoosh(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _bulk_index(tmp_path, _documents(), W3Codec(blocklimit=4))
    ix = _open(tmp_path)
    terms = _terms(ix)
    expected = _loads(Snapshot(ix), terms)

    def unsupported(self, field: str, term: bytes):
        raise term_reader.Unsupported("test")

    monkeypatch.setattr(SegmentTerms, "postings", unsupported)
    _assert_same_loads(_loads(Snapshot(ix), terms), expected)


def test_concurrent_loads_share_a_reader(tmp_path: Path) -> None:
    """Threads may read one segment at once: ``pread`` needs no file position."""
    _bulk_index(tmp_path, _documents(), W3Codec(blocklimit=4))
    ix = _open(tmp_path)
    terms = _terms(ix)
    snapshot = Snapshot(ix)
    expected = _loads(snapshot, terms)
    results: list[list] = [[], []]

    def run(slot: int) -> None:
        for _ in range(3):
            results[slot] = _loads(snapshot, terms[slot::2] + terms[1 - slot :: 2])

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    by_term = dict(zip(terms, expected, strict=True))
    for slot in range(2):
        order = terms[slot::2] + terms[1 - slot :: 2]
        _assert_same_loads(results[slot], [by_term[t] for t in order])
    snapshot.close()


def test_closed_snapshot_closes_its_readers(tmp_path: Path) -> None:
    _bulk_index(tmp_path, _documents(), W3Codec())
    snapshot = Snapshot(_open(tmp_path))
    ((leaf, _base, reader),) = snapshot._leaves
    term = next(t for f, t in leaf.all_terms() if f == "body")
    assert reader.postings("body", term) is not None
    snapshot.close()
    with pytest.raises(ValueError):
        reader.postings("body", term)
    reader.close()  # twice: nothing happens


def test_inline_and_block_arrays_match_whoosh_defaults() -> None:
    docs, weights = term_reader.inline_arrays((1, 5, 9), None)
    assert docs.dtype == np.int32 and weights.tolist() == [1.0, 1.0, 1.0]
    docs, weights = term_reader.block_arrays((3, 2, 4), 2.0)
    assert docs.tolist() == [3, 5, 9] and weights.dtype == np.float32
    assert weights.tolist() == [2.0, 2.0, 2.0]
    docs, weights = term_reader.concatenate([])
    assert docs.size == weights.size == 0


@IMAGES
def test_small_dictionaries_are_read_into_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, image_bytes: int
) -> None:
    monkeypatch.setattr(term_reader, "IMAGE_BYTES", image_bytes)
    with _segment_terms(tmp_path, 20) as (_, terms):
        assert (terms._image is not None) is bool(image_bytes)


@contextlib.contextmanager
def _segment_terms(tmp_path: Path, count: int) -> Iterator[tuple[object, SegmentTerms]]:
    """The index of ``count`` documents Whoosh writes as one segment, and that segment's
    ``SegmentTerms`` (closed afterwards)."""
    _whoosh_index(tmp_path, _documents()[:count], W3Codec())
    ix = _open(tmp_path)
    reader = ix.reader()
    try:
        ((leaf, _),) = reader.leaf_readers()
        terms = term_reader.SegmentTerms.open(leaf)
        assert terms is not None
        try:
            yield ix, terms
        finally:
            terms.close()
    finally:
        reader.close()


def test_a_scan_of_the_dictionary_finds_what_whoosh_lists(tmp_path: Path) -> None:
    """``SegmentTerms.frequent`` reads the entries one after the other: every term of the
    fields asked for, with Whoosh's own document frequency, and no other."""
    path = tmp_path / "index"
    build_index(TOY_DOCS, path, workers=1)
    fields = [*TEXT_FIELDS, *(extra_field(f) for f in TEXT_FIELDS)]
    ix = open_for_reading(path)
    with ix.reader() as reader:
        ((leaf, _),) = reader.leaf_readers()
        terms = SegmentTerms.open(leaf)
        assert terms is not None
        try:
            for least in (1, 2, 3):
                found = sorted(terms.frequent(fields, least))
                expected = sorted(
                    (f, t.decode("utf-8"), leaf.doc_frequency(f, t))
                    for f, t in leaf.all_terms()
                    if f in fields and leaf.doc_frequency(f, t) >= least
                )
                assert found == expected and found
                assert all(terms.doc_frequency(f, t.encode()) == df for f, t, df in found)
            assert terms.doc_frequency("body", b"xyzzy") == 0
        finally:
            terms.close()


@pytest.mark.parametrize(
    "entry", [struct.pack("!ii", -8, 0), struct.pack("!ii", 4, -100), struct.pack("!ii", 10**6, 0)]
)
def test_a_damaged_dictionary_is_refused_not_looped_on(tmp_path: Path, entry: bytes) -> None:
    data = entry + b"\0" * 64
    path = tmp_path / "trm"
    path.write_bytes(data)
    fd = os.open(path, os.O_RDONLY)
    terms = SegmentTerms(fd, [], {"body": 0}, 0, (0, 0), None, (0, len(data)))
    try:
        with pytest.raises(term_reader.Unsupported):
            list(terms.frequent(["body"], 1))
    finally:
        terms.close()


def test_a_mapped_dictionary_reads_every_term_as_pread_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The terms file's writer reads every term through a map of the dictionary (``mapped``):
    the same postings as through ``pread`` for every term and some that are nowhere, and the
    reader reads with ``pread`` again afterwards."""
    monkeypatch.setattr(term_reader, "IMAGE_BYTES", 0)  # not read into memory: pread
    with _segment_terms(tmp_path, 40) as (ix, terms):
        assert terms._image is None
        keys = [(f, t.encode()) for f in postings.ALL_VIEWS for t in _terms(ix)]
        preads: list[int] = []
        pread = os.pread
        monkeypatch.setattr(os, "pread", lambda fd, n, at: preads.append(n) or pread(fd, n, at))
        expected = [terms.postings(f, t) for f, t in keys]
        outside = len(preads)
        with terms.mapped():
            got = [terms.postings(f, t) for f, t in keys]
            assert terms._image is not None
        inside = len(preads) - outside
        found = sum(e is not None for e in expected)
        assert found > 100
        for a, b in zip(got, expected, strict=True):
            assert (a is None and b is None) or _same(a, b)
        # Outside, reads of hash slots and entries, and of each found term's blocks; inside,
        # only the blocks (Whoosh's own writer inlines no list).
        assert outside > len(keys)
        assert inside == found
        assert terms._image is None
        terms.postings(*keys[0])
        assert len(preads) > outside + inside  # ``pread`` again
