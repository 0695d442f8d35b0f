"""Full and incremental reindexing through ``search.indexer.reindex``."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from conftest import shared_path

from search.documents import Document
from search.engine import SearchEngine
from search.errors import SourceMissing, SourceUnreadable, VnsearchError
from search.indexer import META_FILE, SOURCES_FILE, Summary, build_index, load_sources, reindex
from search.schema import SCHEMA_VERSION

LINE_RE = re.compile(r"^(?P<counts>.*); (?P<docs>\d+) documents in \d+\.\d s$")


def counts(summary: Summary) -> str:
    m = LINE_RE.match(summary.line())
    assert m, summary.line()
    return f"{m['counts']}; {m['docs']} documents"


def article(path: Path, title: str, body: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{title}\n\n{body}\n", encoding="utf-8")


def ids(index_dir: Path, q: str) -> list[str]:
    engine = SearchEngine(index_dir)
    try:
        return [h["id"] for h in engine.search(q, per_page=100)["hits"]]
    finally:
        engine.close()


@pytest.fixture
def src(tmp_path: Path) -> Path:
    root = tmp_path / "src"
    article(root / "a.txt", "Lào Cai mưa lớn", "Mưa lớn kéo dài ở Lào Cai.")
    article(root / "b.txt", "Hà Nội nắng nóng", "Nắng nóng ở Hà Nội.")
    article(root / "sub" / "c.txt", "Đà Nẵng đón khách", "Biển Đà Nẵng đông khách.")
    return root


def test_first_reindex_adds_everything(tmp_path: Path, src: Path) -> None:
    index = tmp_path / "index"
    summary = reindex(index, [src], workers=1)
    assert counts(summary) == ("added 3, updated 0, removed 0, unchanged 0, skipped 0; 3 documents")
    assert load_sources(index) == [str(src.resolve())]
    assert json.loads((index / SOURCES_FILE).read_text(encoding="utf-8")) == {
        "sources": [str(src.resolve())]
    }
    assert json.loads((index / META_FILE).read_text(encoding="utf-8")) == {
        "schema_version": SCHEMA_VERSION
    }
    assert ids(index, "da nang") == ["sub/c.txt"]


def test_incremental_reindex_refreshes_remembered_sources(tmp_path: Path, src: Path) -> None:
    index = tmp_path / "index"
    reindex(index, [src], workers=1)
    article(src / "a.txt", "Lào Cai mưa to", "Mưa to kéo dài ở Lào Cai.")
    (src / "b.txt").unlink()
    article(src / "d.txt", "Huế mùa lũ", "Sông Hương dâng cao.")
    summary = reindex(index, [], workers=1)
    assert counts(summary) == ("added 1, updated 1, removed 1, unchanged 1, skipped 0; 3 documents")
    assert ids(index, "ha noi") == []
    assert ids(index, "song huong") == ["d.txt"]
    assert ids(index, "mưa to") == ["a.txt"]
    again = reindex(index, workers=1)
    assert counts(again) == "added 0, updated 0, removed 0, unchanged 3, skipped 0; 3 documents"


def test_later_source_wins_an_id_clash(tmp_path: Path, src: Path) -> None:
    index = tmp_path / "index"
    reindex(index, [src], workers=1)
    other = tmp_path / "other"
    article(other / "a.txt", "Lào Cai bản khác", "Bài của nguồn thứ hai.")
    summary = reindex(index, [other], workers=1)
    # Every run reads every remembered source (in their order): the two others are unchanged.
    assert counts(summary) == (
        "added 0, updated 1, removed 0, unchanged 2, skipped 0, "
        "id clashes 1 (later source wins); 3 documents"
    )
    assert ids(index, "nguồn thứ hai") == ["a.txt"]
    assert ids(index, "mưa lớn") == []
    assert load_sources(index) == [str(src.resolve()), str(other.resolve())]


def test_clash_within_one_run_is_counted(tmp_path: Path, src: Path) -> None:
    other = tmp_path / "other"
    article(other / "a.txt", "Lào Cai bản khác", "Bài của nguồn thứ hai.")
    summary = reindex(tmp_path / "index", [src, other], workers=1)
    assert counts(summary) == (
        "added 3, updated 0, removed 0, unchanged 0, skipped 0, "
        "id clashes 1 (later source wins); 3 documents"
    )
    assert ids(tmp_path / "index", "nguồn thứ hai") == ["a.txt"]


def test_forget_drops_a_source_and_its_documents(tmp_path: Path, src: Path) -> None:
    index = tmp_path / "index"
    other = tmp_path / "other.jsonl"
    other.write_text('{"id": "j1", "body": "Tin từ tệp JSON."}\n', encoding="utf-8")
    reindex(index, [src, other], workers=1)
    summary = reindex(index, forget=[other], workers=1)
    assert counts(summary) == "added 0, updated 0, removed 1, unchanged 3, skipped 0; 3 documents"
    assert load_sources(index) == [str(src.resolve())]
    assert ids(index, "tệp json") == []


def test_forget_restores_a_shadowed_document(tmp_path: Path, src: Path) -> None:
    index = tmp_path / "index"
    other = tmp_path / "other"
    article(other / "a.txt", "Lào Cai bản khác", "Bài của nguồn thứ hai.")
    reindex(index, [src, other], workers=1)
    reindex(index, forget=[other], workers=1)
    assert ids(index, "mưa lớn") == ["a.txt"]


def test_forget_an_unknown_source_fails(tmp_path: Path, src: Path) -> None:
    index = tmp_path / "index"
    reindex(index, [src], workers=1)
    with pytest.raises(SourceMissing, match="not a remembered source"):
        reindex(index, forget=[tmp_path / "never"], workers=1)


def test_full_rebuild(tmp_path: Path, src: Path) -> None:
    index = tmp_path / "index"
    reindex(index, [src], workers=1)
    article(src / "b.txt", "Hà Nội mưa rào", "Mưa rào ở Hà Nội.")
    summary = reindex(index, full=True, workers=1)
    assert counts(summary) == "added 0, updated 1, removed 0, unchanged 2, skipped 0; 3 documents"
    assert ids(index, "mưa rào") == ["b.txt"]
    # One of each: a new article, one edited, one gone, one as it was.
    article(src / "d.txt", "Huế mưa phùn", "Mưa phùn ở Huế.")
    article(src / "b.txt", "Hà Nội mưa đá", "Mưa đá ở Hà Nội.")
    (src / "sub" / "c.txt").unlink()
    summary = reindex(index, full=True, workers=1)
    assert counts(summary) == "added 1, updated 1, removed 1, unchanged 1, skipped 0; 3 documents"
    assert sorted(ids(index, "mưa")) == ["a.txt", "b.txt", "d.txt"]


def test_missing_source_leaves_the_index_unchanged(tmp_path: Path, src: Path) -> None:
    index = tmp_path / "index"
    reindex(index, [src], workers=1)
    before = (index / SOURCES_FILE).read_text(encoding="utf-8")
    with pytest.raises(SourceMissing, match="source not found"):
        reindex(index, [src, tmp_path / "missing"], workers=1)
    assert (index / SOURCES_FILE).read_text(encoding="utf-8") == before
    engine = SearchEngine(index)
    assert engine.health()["documents"] == 3
    engine.close()


def test_remembered_source_that_vanished_keeps_its_documents(tmp_path: Path, src: Path) -> None:
    # An unmounted disk or a renamed folder is not a deletion: nothing of the source is removed,
    # the summary says so, and the CLI exits non-zero (tests/test_cli.py).
    index = tmp_path / "index"
    reindex(index, [src], workers=1)
    moved = tmp_path / "moved"
    src.rename(moved)
    summary = reindex(index, workers=1)
    assert summary.unreadable == [f"{src.resolve()}: source not found"]
    assert counts(summary) == (
        "added 0, updated 0, removed 0, unchanged 0, skipped 0, "
        "unreadable 1 (their documents kept); 3 documents"
    )
    assert load_sources(index) == [str(src.resolve())]
    with pytest.raises(SourceUnreadable, match="source not found; the index is unchanged"):
        reindex(index, full=True, workers=1)
    assert ids(index, "mưa lớn") == ["a.txt"]


def test_bad_records_are_counted_by_reason(tmp_path: Path, src: Path) -> None:
    (src / "news.jsonl").write_text(
        '{"id": "j1", "body": "Một."}\n{oops\n{"id": "j2"}\n{"id": "j3", "body": "Ba."}\n',
        encoding="utf-8",
    )
    (src / "bin.txt").write_bytes(b"\x00\x01")
    (src / "empty.txt").write_bytes(b"")
    (src / "latin1.txt").write_bytes("Tiêu đề".encode("cp1258", errors="replace") + b"\xff")
    summary = reindex(tmp_path / "index", [src], workers=1)
    news = str(src / "news.jsonl")
    assert summary.skipped[:2] == [
        f"{src / 'bin.txt'}: binary file (NUL bytes)",
        f"{src / 'empty.txt'}: empty file",
    ]
    assert summary.skipped[2].startswith(f"{src / 'latin1.txt'}: not valid UTF-8 (byte ")
    assert summary.skipped[3].startswith(f"{news}:2: bad JSON: ")
    assert summary.skipped[4] == f"{news}:3: missing or invalid 'body' (must be a string)"
    assert counts(summary) == (
        "added 5, updated 0, removed 0, unchanged 0, skipped 5 (1 bad JSON, 1 binary file, "
        "1 empty file, 1 missing or invalid 'body', 1 not valid UTF-8); 5 documents"
    )


def test_index_of_another_schema_version_needs_full(tmp_path: Path, src: Path) -> None:
    index = tmp_path / "index"
    reindex(index, [src], workers=1)
    (index / META_FILE).write_text('{"schema_version": 0}', encoding="utf-8")
    with pytest.raises(VnsearchError) as info:
        reindex(index, workers=1)
    assert info.value.code == "index_version"
    summary = reindex(index, full=True, workers=1)
    assert summary.documents == 3
    assert json.loads((index / META_FILE).read_text(encoding="utf-8")) == {
        "schema_version": SCHEMA_VERSION
    }


def test_build_index_replaces_the_directory(tmp_path: Path) -> None:
    index = tmp_path / "index"
    assert build_index([Document(id="1", body="một"), Document(id="2", body="hai")], index) == 2
    assert build_index([Document(id="3", body="ba")], index, workers=1) == 1
    engine = SearchEngine(index)
    assert engine.health()["documents"] == 1
    assert [h["id"] for h in engine.search("ba")["hits"]] == ["3"]
    engine.close()


def test_engine_sees_a_new_generation_without_reopening(tmp_path: Path, src: Path) -> None:
    index = tmp_path / "index"
    reindex(index, [src], workers=1)
    engine = SearchEngine(index)
    assert engine.search("huế")["total"] == 0
    generation = engine.health()["index_version"]
    article(src / "d.txt", "Huế mùa lũ", "Sông Hương dâng cao.")
    reindex(index, workers=1)
    assert [h["id"] for h in engine.search("huế")["hits"]] == ["d.txt"]
    assert engine.health() == {"status": "ok", "documents": 4, "index_version": generation + 1}
    engine.close()


@pytest.mark.slow
def test_real_news_slice_jsonl_gz(tmp_path: Path) -> None:
    import gzip
    import itertools

    corpus = shared_path("vietnews", "corpus.jsonl.gz")
    with gzip.open(corpus, "rb") as fh:
        lines = list(itertools.islice(fh, 100))
    source = tmp_path / "vietnews-100.jsonl.gz"
    source.write_bytes(gzip.compress(b"".join(lines)))
    index = tmp_path / "index"
    summary = reindex(index, [source])
    assert counts(summary) == (
        "added 100, updated 0, removed 0, unchanged 0, skipped 0; 100 documents"
    )
    first = json.loads(lines[0])
    engine = SearchEngine(index)
    assert engine.search(first["title"])["hits"][0]["id"] == first["id"]
    doc = engine.document(first["id"])
    assert (doc["title"], doc["lead"], doc["body"]) == (
        first["title"],
        first["abstract"],
        first["body"],
    )
    engine.close()
    again = reindex(index, [])
    assert counts(again) == (
        "added 0, updated 0, removed 0, unchanged 100, skipped 0; 100 documents"
    )


def _articles(n: int) -> list[Document]:
    return [
        Document(
            id=f"tin-{i:03}",
            title=f"Tin {i}: Lào Cai mưa lớn ngày {i % 28 + 1}",
            body=f"Mưa lớn kéo dài ở Lào Cai, xã {i} bị chia cắt. Giá vàng tăng {i} đồng.",
        )
        for i in range(n)
    ]


def test_a_small_reindex_reports_progress_as_it_goes(tmp_path: Path) -> None:
    src = tmp_path / "src.jsonl"
    src.write_text(
        "\n".join(
            json.dumps({"id": d.id, "title": d.title, "body": d.body}) for d in _articles(120)
        ),
        encoding="utf-8",
    )
    seen: list[tuple[int, int]] = []
    reindex(tmp_path / "index", [src], progress=lambda done, total: seen.append((done, total)))
    assert seen == [(0, 120), (50, 120), (100, 120), (120, 120)]


def test_the_index_is_the_same_whatever_the_batches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Analysed 7 articles at a time or all at once, the same terms, postings and answers."""
    import search.indexer as indexer

    docs = _articles(60)
    contents = []
    for step in (7, 1000):
        monkeypatch.setattr(indexer, "PROGRESS_STEP", step)
        path = tmp_path / f"index-{step}"
        build_index(docs, path, workers=1)
        engine = SearchEngine(path, warm=False)
        reader = engine.snapshot().reader
        terms = {
            (field, term): [(d, w) for d, w in reader.postings(field, term).items_as("weight")]
            for field, term in reader.all_terms()
        }
        answers = [
            engine.search(q, per_page=100)["hits"] for q in ("lào cai", '"giá vàng"', "xã 7")
        ]
        contents.append((terms, answers))
        engine.close()
    assert contents[0] == contents[1]
    assert len(contents[0][0]) > 100


def test_an_id_in_two_sources_does_not_flip_and_comes_back(tmp_path: Path) -> None:
    # The copy served is the one of the source listed later in sources.json, whatever source a
    # run names; when that copy goes away, the other source's copy is served again.
    first, second = tmp_path / "first", tmp_path / "second"
    article(first / "x.txt", "Bản thứ nhất", "Nội dung của nguồn một.")
    article(second / "x.txt", "Bản thứ hai", "Nội dung của nguồn hai.")
    index = tmp_path / "index"
    reindex(index, [first, second], workers=1)
    assert ids(index, "nguồn hai") == ["x.txt"] and ids(index, "nguồn một") == []
    article(first / "x.txt", "Bản thứ nhất", "Nội dung mới của nguồn một.")
    reindex(index, [first], workers=1)  # naming the earlier source does not make it win
    assert ids(index, "nguồn hai") == ["x.txt"] and ids(index, "nguồn một") == []
    reindex(index, [second], workers=1)
    assert ids(index, "nguồn hai") == ["x.txt"]
    (second / "x.txt").unlink()
    summary = reindex(index, [second], workers=1)
    assert counts(summary) == "added 0, updated 1, removed 0, unchanged 0, skipped 0; 1 documents"
    assert ids(index, "nguồn một") == ["x.txt"] and ids(index, "nguồn hai") == []


def test_an_id_whose_winning_source_is_unreadable_keeps_that_copy(tmp_path: Path) -> None:
    # While the later source cannot be read, the earlier source's copy of a shared id must not
    # replace it (that would lose the unreadable source's document until it is readable again);
    # reindexing each source alone, in either order, serves the later source's copy.
    first, second = tmp_path / "first", tmp_path / "second"
    article(first / "x.txt", "Bản thứ nhất", "Nội dung của nguồn một.")
    article(second / "x.txt", "Bản thứ hai", "Nội dung của nguồn hai.")
    index = tmp_path / "index"
    reindex(index, [first, second], workers=1)
    for order in ([second], [first]), ([first], [second]):
        for named in order:
            reindex(index, named, workers=1)
            assert ids(index, "nguồn hai") == ["x.txt"] and ids(index, "nguồn một") == []
    second_real = second.resolve()
    second.rename(tmp_path / "unmounted")  # the later source vanishes (an unmounted disk)
    summary = reindex(index, workers=1)
    assert summary.unreadable == [f"{second_real}: source not found"]
    assert counts(summary) == (
        "added 0, updated 0, removed 0, unchanged 0, skipped 0, id clashes 1 (later source wins), "
        "unreadable 1 (their documents kept); 1 documents"
    )
    assert ids(index, "nguồn hai") == ["x.txt"] and ids(index, "nguồn một") == []


def test_article_without_lead_is_ranked_by_its_opening(tmp_path: Path) -> None:
    """Issue 16: an article without a lead has the opening of its body counted twice, so words of
    its first sentence outrank the same words deep in a long body (stored text unchanged)."""
    filler = " ".join(f"Đoạn văn thứ {i} kể chuyện khác của phường bên cạnh." for i in range(40))
    deep = Document(id="deep", body=f"{filler} Đoàn khách đã đến Mù Cang Chải.")
    opening = Document(
        id="opening", body=f"Mù Cang Chải đón đoàn khách đầu tiên. {filler} Thêm một câu nữa."
    )
    build_index([deep, opening], tmp_path / "index", workers=1)
    assert ids(tmp_path / "index", "mù cang chải") == ["opening", "deep"]
    engine = SearchEngine(tmp_path / "index")
    try:
        assert engine.document("opening")["lead"] == ""
    finally:
        engine.close()
