"""The bulk segment writer writes what Whoosh's own writer writes, as Whoosh reads it back.

Both writers get the same documents and the same analysis (Whoosh through the schema's analyzers,
the bulk writer through ``indexer._analyze``, which ``test_analysis`` pins to them); every term's
statistics and postings, every stored field, length and column must then be equal, before and
after Whoosh merges the segment.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import SAMPLES, TOY_DOCS
from whoosh import index as whoosh_index
from whoosh.codec.whoosh3 import W3Codec
from whoosh.writing import CLEAR

from search.documents import Document, read_source
from search.indexer import _analyze, _commit, _values, open_or_create
from search.schema import TEXT_FIELDS, extra_field
from search.store import segment_writer
from search.store.segment_writer import SegmentBuilder, length_bytes


@pytest.fixture(autouse=True)
def _fields_own_text(monkeypatch: pytest.MonkeyPatch) -> None:
    """Terms from each field's own text, as Whoosh's writer analyses it: no opening counted twice
    for an article without a lead (``tests/test_indexer.py``
    ``::test_article_without_lead_is_ranked_by_its_opening``)."""
    monkeypatch.setattr(Document, "opening", property(lambda doc: ""))


def _documents() -> list[Document]:
    samples = [d for d in read_source(SAMPLES) if isinstance(d, Document)]
    empty = Document(id="empty-body", title="Chỉ có tiêu đề", body="")
    return samples + list(TOY_DOCS) + [empty]


def _whoosh_index(path: Path, docs: list[Document], codec: W3Codec):
    ix = open_or_create(path, full=True)
    writer = ix.writer(codec=codec)
    for doc in docs:
        fields = _values(doc)
        for name in TEXT_FIELDS:
            text = getattr(doc, name)
            fields[name] = fields[extra_field(name)] = text
        writer.add_document(**fields)
    writer.commit(mergetype=CLEAR)
    return whoosh_index.open_dir(str(path))


def _bulk_index(path: Path, docs: list[Document], codec: W3Codec):
    ix = open_or_create(path, full=True)
    builder = SegmentBuilder(ix, codec)
    for doc in docs:
        builder.add_document(_values(doc), _analyze(doc))
    segment = builder.finish()
    _commit(ix.writer(codec=codec), [segment], CLEAR)
    return whoosh_index.open_dir(str(path))


def _contents(ix) -> dict:
    """Everything a reader can tell about the index, in plain values."""
    with ix.searcher() as searcher:
        reader = searcher.reader()
        terms = {}
        for field, term in reader.all_terms():
            info = reader.term_info(field, term)
            matcher = reader.postings(field, term)
            postings = []
            while matcher.is_active():
                postings.append((matcher.id(), float(matcher.weight())))
                matcher.next()
            terms[(field, term)] = (
                float(info.weight()),
                info.doc_frequency(),
                info.min_length(),
                info.max_length(),
                float(info.max_weight()),
                info.min_id(),
                info.max_id(),
                postings,
            )
        docs = list(range(reader.doc_count_all()))
        names = sorted(reader.schema.names())
        return {
            "terms": terms,
            "stored": [reader.stored_fields(d) for d in docs],
            "lengths": {n: [reader.doc_field_length(d, n) for d in docs] for n in names},
            "totals": {n: reader.field_length(n) for n in names},
            "columns": {
                n: [reader.column_reader(n)[d] for d in docs] for n in names if reader.has_column(n)
            },
        }


@pytest.mark.parametrize(
    ("blocklimit", "inline", "chunk"),
    [(1024, segment_writer.INLINE_POSTINGS, segment_writer.CHUNK_POSTINGS), (4, 2, 7), (2, 0, 1)],
)
def test_bulk_segment_reads_back_as_whoosh_writes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, blocklimit: int, inline: int, chunk: int
) -> None:
    monkeypatch.setattr(segment_writer, "INLINE_POSTINGS", inline)
    monkeypatch.setattr(segment_writer, "CHUNK_POSTINGS", chunk)
    docs = _documents()
    codec = W3Codec(blocklimit=blocklimit)
    expected = _contents(_whoosh_index(tmp_path / "whoosh", docs, codec))
    bulk_ix = _bulk_index(tmp_path / "bulk", docs, codec)
    got = _contents(bulk_ix)
    assert got["terms"].keys() == expected["terms"].keys()
    assert len(got["terms"]) > 2000
    for key, value in expected["terms"].items():
        assert got["terms"][key] == value, key
    for part in ("stored", "lengths", "totals", "columns"):
        assert got[part] == expected[part], part
    # Whoosh merges the bulk segment with one of its own: nothing changes but the doc numbers.
    extra = Document(id="one-more", title="Lào Cai", body="Lào Cai mùa xuân.")
    writer = bulk_ix.writer(codec=codec)
    writer.add_document(
        **_values(extra),
        **{n: getattr(extra, n) for n in TEXT_FIELDS},
        **{extra_field(n): getattr(extra, n) for n in TEXT_FIELDS},
    )
    writer.commit(optimize=True)
    merged = _contents(whoosh_index.open_dir(str(tmp_path / "bulk")))
    before_ids = [stored["id"] for stored in expected["stored"]]
    after_ids = [stored["id"] for stored in merged["stored"]]
    assert sorted(after_ids) == sorted([*before_ids, "one-more"])

    def by_id(ids: list[str], postings: list) -> set:
        return {(ids[docnum], weight) for docnum, weight in postings}

    for key, value in expected["terms"].items():
        got_postings = by_id(after_ids, merged["terms"][key][-1]) - {("one-more", 1.0)}
        assert got_postings == by_id(before_ids, value[-1]), key
    assert by_id(after_ids, merged["terms"][("title", b"lao")][-1]) >= {("one-more", 1.0)}


def test_short_posting_lists_live_in_the_term_dictionary(tmp_path: Path) -> None:
    docs = _documents()
    ix = _bulk_index(tmp_path / "bulk", docs, W3Codec(blocklimit=1024))
    with ix.searcher() as searcher:
        reader = searcher.reader()
        inlined = {(f, t): reader.term_info(f, t).is_inlined() for f, t in reader.all_terms()}
        for (field, term), is_inlined in inlined.items():
            df = reader.doc_frequency(field, term)
            assert is_inlined == (df <= segment_writer.INLINE_POSTINGS), (field, term, df)
    assert sum(inlined.values()) > len(inlined) // 2


def test_length_bytes_equal_whoosh_length_to_byte() -> None:
    import numpy as np
    from whoosh.util.numeric import length_to_byte

    lengths = np.array([0, 1, 2, 10, 11, 12, 999, 1000, 106373, 106374, 10**7])
    assert length_bytes(lengths).tolist() == [length_to_byte(int(n)) for n in lengths]


def test_pairs_held_by_one_document_of_the_segment_share_a_bucket_term(tmp_path: Path) -> None:
    from search.analysis import pair_bucket
    from search.indexer import POOLED

    docs = [
        Document(id="a", title="x", body="Giá vàng tăng. Lịch thi mới."),
        Document(id="b", title="y", body="Giá vàng giảm."),
    ]
    ix = open_or_create(tmp_path / "ix", full=True)
    builder = SegmentBuilder(ix, W3Codec(), POOLED)
    for doc in docs:
        builder.add_document(_values(doc), _analyze(doc))
    _commit(ix.writer(), [builder.finish()], CLEAR)
    got = _contents(whoosh_index.open_dir(str(tmp_path / "ix")))["terms"]
    assert got[("body_x", b"gia vang")][-1] == [(0, 1.0), (1, 1.0)]  # in both: its own term
    assert ("body_x", b"vang tang") not in got and ("body_x", b"lich thi") not in got
    for pair in ("vang tang", "lich thi", "thi moi", "tang lich"):
        assert any(d == 0 for d, _ in got[("body_x", pair_bucket(pair).encode())][-1]), pair
    buckets = {t for f, t in got if f == "body_x" and t.startswith(b"~")}
    total = sum(w for t in buckets for d, w in got[("body_x", t)][-1] if d == 0)
    assert total == 4  # the first document's 4 rare pairs, none lost
    assert got[("body", b"vang")][-1] == [(0, 1.0), (1, 1.0)]  # the folded view is untouched


def test_pooling_adds_up_a_document_s_pairs_that_share_a_bucket(tmp_path: Path) -> None:
    one_bucket = {"body_x": lambda term: "~0000" if " " in term else None}
    docs = [Document(id="a", title="x", body="Giá vàng tăng mạnh."), Document(id="b", body="Khác")]
    ix = open_or_create(tmp_path / "ix", full=True)
    builder = SegmentBuilder(ix, W3Codec(), one_bucket)
    for doc in docs:
        builder.add_document(_values(doc), _analyze(doc))
    _commit(ix.writer(), [builder.finish()], CLEAR)
    got = _contents(whoosh_index.open_dir(str(tmp_path / "ix")))
    assert got["terms"][("body_x", b"~0000")][-1] == [(0, 3.0)]  # gia vang, vang tang, tang manh
    assert not any(f == "body_x" and b" " in t for f, t in got["terms"])
    assert got["lengths"]["body_x"][0] == expected_length(docs[0])


def expected_length(doc: Document) -> int:
    return sum(_analyze(doc)["body_x"].values())
