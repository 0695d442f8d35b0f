"""Readers: the archive's .txt articles and JSON lines, and what they skip and why."""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import shutil
from dataclasses import fields
from pathlib import Path

import pytest
from conftest import shared_path

from search.documents import Document, Skipped, Unreadable, read_source

SEED_NAME = "000_62158ec9e2e359d5.txt"
SEED_TITLE = "Tiếp tục đẩy mạnh hợp tác giữa hai tỉnh Lào Cai và Lai Châu"


def only_doc(records: list) -> Document:
    assert len(records) == 1 and isinstance(records[0], Document), records
    return records[0]


@pytest.fixture(scope="module")
def seed_doc() -> Document:
    return only_doc(list(read_source(shared_path("seed", SEED_NAME))))


def test_seed_named_directly_id_is_file_name(seed_doc: Document) -> None:
    path = shared_path("seed", SEED_NAME)
    assert seed_doc.id == SEED_NAME
    assert seed_doc.title == SEED_TITLE
    assert seed_doc.origin == str(path.resolve())


def test_seed_in_a_directory_id_is_relative_path(tmp_path: Path) -> None:
    (tmp_path / "2024" / "03").mkdir(parents=True)
    shutil.copy(shared_path("seed", SEED_NAME), tmp_path / "2024" / "03" / SEED_NAME)
    (tmp_path / "notes.md").write_text("not a source\n", encoding="utf-8")
    (tmp_path / ".hidden.txt").write_text("Ẩn\n\nẨn.\n", encoding="utf-8")
    doc = only_doc(list(read_source(tmp_path)))
    assert doc.id == f"2024/03/{SEED_NAME}"
    assert doc.title == SEED_TITLE
    assert doc.origin == str(tmp_path.resolve())


def test_seed_body_keeps_the_article(seed_doc: Document) -> None:
    assert seed_doc.body.startswith("LCĐT - Chiều 4/3, tại thị xã Sa Pa đã diễn ra Hội nghị")
    assert seed_doc.body.endswith("Đoàn đại biểu hai tỉnh chụp ảnh lưu niệm.")


def test_seed_photo_markers_are_dropped(seed_doc: Document) -> None:
    lines = seed_doc.body.splitlines()
    assert [line for line in lines if re.search(r"ảnh \d+\s*$", line)] == []
    assert SEED_TITLE not in seed_doc.body


def test_seed_captions_are_kept(seed_doc: Document) -> None:
    lines = seed_doc.body.splitlines()
    for caption in [
        "Quang cảnh hội nghị.",
        "Các đại biểu dự hội nghị.",
        "Đồng chí Đặng Xuân Phong, Bí thư Tỉnh ủy phát biểu tại hội nghị.",
        "Đoàn đại biểu hai tỉnh chụp ảnh lưu niệm.",
    ]:
        assert caption in lines


def test_seed_related_news_and_share_links_are_dropped(seed_doc: Document) -> None:
    for furniture in ["bầu cử", "hài cốt liệt sĩ", "Có thể bạn quan tâm", "Tin cùng chuyên mục"]:
        assert furniture not in seed_doc.body
    assert "fb yt zl tw" not in seed_doc.body
    assert "Quang cảnh hội nghị tại điểm cầu tỉnh Lào Cai." not in seed_doc.body


def test_txt_photo_marker_of_another_caption_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "a.txt"
    path.write_text(
        "Tiêu đề bài\n\nĐoạn một.\nTiêu đề bài ảnh 1\nMột bức ảnh 2\nfb yt zl\n", encoding="utf-8"
    )
    doc = only_doc(list(read_source(path)))
    assert doc.title == "Tiêu đề bài"
    assert doc.body == "Đoạn một.\nMột bức ảnh 2"


def test_txt_bom_and_crlf(tmp_path: Path) -> None:
    path = tmp_path / "bom.txt"
    path.write_bytes("\ufeffTiêu đề\r\n\r\nThân bài.\r\nDòng hai.\r\n".encode())
    doc = only_doc(list(read_source(path)))
    assert (doc.title, doc.body) == ("Tiêu đề", "Thân bài.\nDòng hai.")


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "empty file"),
        (b"  \n\n\t\n", "empty file"),
        (b"abc\x00def\n", "binary file (NUL bytes)"),
        (b"Ti\xeau \xf0\x28\n", "not valid UTF-8 (byte 2)"),
    ],
)
def test_txt_unreadable_files_are_skipped(tmp_path: Path, content: bytes, reason: str) -> None:
    path = tmp_path / "bad.txt"
    path.write_bytes(content)
    assert list(read_source(path)) == [Skipped(str(path), None, reason)]
    assert str(Skipped(str(path), None, reason)) == f"{path}: {reason}"


def write_jsonl(path: Path, lines: list[object]) -> Path:
    text = "".join(
        (x if isinstance(x, str) else json.dumps(x, ensure_ascii=False)) + "\n" for x in lines
    )
    path.write_text(text, encoding="utf-8")
    return path


def test_jsonl_fields_and_lead(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "news.jsonl",
        [
            {
                "id": "a",
                "body": "Thân A.",
                "title": "Tựa A",
                "url": "https://x.vn/a",
                "date": "2024-03-04",
                "source": "Báo A",
                "category": "Xã hội",
                "sapo": "Sapo A",
            },
            {"id": "b", "body": "Thân B.", "sapo": "  ", "abstract": "Tóm tắt B", "lead": "L"},
            {"id": "c", "body": "Thân C.", "summary": "Tóm lược C", "lead": "Lead C"},
            {"id": "d", "body": "Thân D.", "lead": "Lead D", "title": None, "extra": [1]},
            {"id": 7, "body": ""},
        ],
    )
    records = list(read_source(path))
    origin = str(path.resolve())
    assert records == [
        Document(
            id="a",
            body="Thân A.",
            title="Tựa A",
            lead="Sapo A",
            url="https://x.vn/a",
            date="2024-03-04",
            source="Báo A",
            category="Xã hội",
        ),
        Document(id="b", body="Thân B.", lead="Tóm tắt B"),
        Document(id="c", body="Thân C.", lead="Tóm lược C"),
        Document(id="d", body="Thân D.", lead="Lead D"),
        Document(id="7", body=""),
    ]
    assert {r.origin for r in records} == {origin}


def test_jsonl_bad_lines_are_skipped_with_line_numbers(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "mixed.jsonl",
        [
            {"id": "ok-1", "body": "Một."},
            "{not json",
            "",
            [1, 2],
            {"body": "no id"},
            {"id": 1.5, "body": "float id"},
            {"id": True, "body": "bool id"},
            {"id": "  ", "body": "blank id"},
            {"id": "x"},
            {"id": "y", "body": ["list"]},
            {"id": "z", "body": "b", "title": 5},
            {"id": "ok-2", "body": "Hai."},
        ],
    )
    records = list(read_source(path))
    assert [r.id for r in records if isinstance(r, Document)] == ["ok-1", "ok-2"]
    skipped = [(r.path, r.line, r.reason) for r in records if isinstance(r, Skipped)]
    name = str(path)
    assert skipped[0][:2] == (name, 2) and skipped[0][2].startswith("bad JSON: ")
    assert skipped[1:] == [
        (name, 4, "not a JSON object"),
        (name, 5, "missing or invalid 'id'"),
        (name, 6, "missing or invalid 'id'"),
        (name, 7, "missing or invalid 'id'"),
        (name, 8, "missing or invalid 'id'"),
        (name, 9, "missing or invalid 'body' (must be a string)"),
        (name, 10, "missing or invalid 'body' (must be a string)"),
        (name, 11, "field 'title' must be a string"),
    ]
    assert str(records[1]).startswith(f"{name}:2: bad JSON: ")


def test_jsonl_invalid_utf8_and_nul_lines_are_skipped(tmp_path: Path) -> None:
    path = tmp_path / "bytes.jsonl"
    path.write_bytes(
        b'{"id": "a", "body": "x\xff"}\n{"id": "b", "body": "a\x00"}\n{"id": "c", "body": "ok"}\n'
    )
    records = list(read_source(path))
    assert [(r.line, r.reason.split(":")[0]) for r in records if isinstance(r, Skipped)] == [
        (1, "bad JSON"),
        (2, "bad JSON"),
    ]
    assert [r.id for r in records if isinstance(r, Document)] == ["c"]


def test_jsonl_gz(tmp_path: Path) -> None:
    path = tmp_path / "news.jsonl.gz"
    path.write_bytes(gzip.compress('{"id": "g", "body": "Nén gzip."}\n'.encode()))
    assert list(read_source(path)) == [Document(id="g", body="Nén gzip.")]


def test_jsonl_gz_that_is_not_gzip_is_skipped(tmp_path: Path) -> None:
    path = tmp_path / "fake.jsonl.gz"
    path.write_bytes(b'{"id": "g", "body": "plain"}\n')
    records = list(read_source(path))
    # Not gzip: the file cannot be read, which is not the same as a file with no documents (a
    # reindex keeps what it had from it).
    assert records == [Unreadable(str(path), "cannot read: Not a gzipped file (b'{\"')")]


def test_directory_reads_every_format_in_sorted_order(tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "x.txt").write_text("Tựa X\n\nThân X.\n", encoding="utf-8")
    write_jsonl(tmp_path / "a.jsonl", [{"id": "j", "body": "J"}])
    (tmp_path / "c.jsonl.gz").write_bytes(gzip.compress(b'{"id": "z", "body": "Z"}\n'))
    (tmp_path / "skip.json").write_text('{"id": "no", "body": "no"}', encoding="utf-8")
    assert [r.id for r in read_source(tmp_path)] == ["j", "b/x.txt", "z"]


def test_display_title() -> None:
    assert Document(id="x", title="  Tựa  ", body="Thân.").display_title == "Tựa"
    assert Document(id="x", body="Câu một dài. Câu hai.").display_title == "Câu một dài."
    assert Document(id="x", body="B. C.", lead="Mở đầu! Tiếp").display_title == "Mở đầu!"
    assert Document(id="x", title=" ", body="Xin chào\nthế giới. Hai.").display_title == (
        "Xin chào thế giới."
    )
    long = Document(id="x", body="từ " * 100).display_title
    assert long.endswith("từ…") and len(long) <= 161


def test_content_hash_ignores_origin_only() -> None:
    a = Document(id="x", body="b", origin="/one")
    assert a.content_hash == Document(id="x", body="b", origin="/two").content_hash
    assert a.content_hash != Document(id="x", body="b", title="t").content_hash


def test_content_hash_is_the_one_indexes_hold() -> None:
    # Indexes store these hashes: a new way of computing them must give the same ones, or every
    # document of an existing index would be re-analysed as changed on the next reindex.
    doc = Document(
        id="a/1", body='Thân "bài"\\\nđ', title="Tiêu đề", lead="Sa pô", url="https://x.vn/1",
        date="2024-05-01", source="Báo Lào Cai", category="Xã hội", origin="/src",
    )  # fmt: skip
    data = {f.name: getattr(doc, f.name) for f in fields(Document) if f.name != "origin"}
    raw = json.dumps(data, ensure_ascii=False, sort_keys=True).encode("utf-8")
    assert doc.content_hash == hashlib.blake2b(raw, digest_size=16).hexdigest()
    assert doc.content_hash == "0bafa4e397c18689d10096bad7593082"
