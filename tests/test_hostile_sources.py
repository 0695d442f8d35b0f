"""Hostile or damaged sources: what `vnsearch reindex` does with them, run as a real command."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

from search.documents import FIELD_CAPS, MAX_LINE_BYTES, MAX_TXT_BYTES
from search.engine import SearchEngine

# Root reads any file whatever its mode: a run that must meet "Permission denied" drops the two
# capabilities that let it (root still owns the interpreter under /root, so it starts).
WITHOUT_DAC = (
    ["setpriv", "--bounding-set=-dac_override,-dac_read_search"] if os.geteuid() == 0 else []
)


def run_cli(*args: str, prefix: list[str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*(prefix or []), sys.executable, "-m", "search", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


def reindex(index: Path, *sources: Path) -> subprocess.CompletedProcess:
    return run_cli("reindex", "--index", str(index), "--workers", "1", *map(str, sources))


def jsonl_gz(path: Path, count: int) -> None:
    lines = (
        json.dumps({"id": f"n{i}", "title": f"Tin số {i}", "body": f"Nội dung bài {i} ở Lào Cai."})
        for i in range(count)
    )
    path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))


def ids(index: Path) -> set[str]:
    engine = SearchEngine(index, warm=False)
    try:
        return {
            h["id"]
            for p in (1, 2, 3, 4)
            for h in engine.search("lào cai", page=p, per_page=100, collapse=False)["hits"]
        }
    finally:
        engine.close()


def test_a_truncated_or_replaced_gzip_source_keeps_its_documents(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    news = src / "news.jsonl.gz"
    jsonl_gz(news, 300)
    index = tmp_path / "index"
    assert reindex(index, src).returncode == 0
    assert len(ids(index)) == 300

    news.write_bytes(news.read_bytes()[: news.stat().st_size // 3])
    done = reindex(index)
    assert done.returncode == 1
    assert "removed 0," in done.stdout and "unreadable 1 (their documents kept)" in done.stdout
    assert f"unreadable {news}: cannot read after line " in done.stderr
    assert done.stderr.strip().endswith("1 source(s) could not be read; their documents were kept")
    assert len(ids(index)) == 300

    news.write_bytes(b"this is not gzip at all\n")
    done = reindex(index)
    assert done.returncode == 1 and "removed 0," in done.stdout
    assert f"unreadable {news}: cannot read: Not a gzipped file" in done.stderr
    assert len(ids(index)) == 300


def test_a_deeply_nested_line_is_skipped_and_the_run_goes_on(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    good = json.dumps({"id": "ok", "body": "Tin ở Lào Cai."})
    (src / "news.jsonl").write_text("[" * 5000 + "\n" + good + "\n", encoding="utf-8")
    done = reindex(tmp_path / "index", src)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert f"skipped {src / 'news.jsonl'}:1: bad JSON: nested too deeply" in done.stderr
    assert done.stdout.startswith("added 1, updated 0, removed 0, unchanged 0, skipped 1 (1 bad")


def test_symlinks_out_of_the_source_are_not_indexed(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "passwd.txt").write_text("root:x:0:0\n\nmật khẩu Lào Cai\n", encoding="utf-8")
    (src / "a.txt").write_text("Lào Cai\n\nTin ở Lào Cai.\n", encoding="utf-8")
    (src / "passwd.txt").symlink_to(secret / "passwd.txt")
    (src / "outside").symlink_to(secret, target_is_directory=True)
    (src / "loop").symlink_to(src, target_is_directory=True)
    (src / "inside.txt").symlink_to(src / "a.txt")  # stays in the source: indexed
    index = tmp_path / "index"
    done = reindex(index, src)
    assert done.returncode == 0, done.stderr
    assert f"skipped {src / 'passwd.txt'}: symbolic link outside the source" in done.stderr
    assert f"skipped {src / 'outside'}: symbolic link outside the source" in done.stderr
    assert ids(index) == {"a.txt", "inside.txt"}
    followed = run_cli(
        "reindex", "--index", str(tmp_path / "i2"), "--workers", "1", "--follow-symlinks", str(src)
    )
    assert followed.returncode == 0, followed.stderr
    assert ids(tmp_path / "i2") == {"a.txt", "inside.txt", "passwd.txt", "outside/passwd.txt"}


def test_a_gzip_bomb_line_is_skipped_without_holding_it(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    good = json.dumps({"id": "ok", "body": "Tin ở Lào Cai."}).encode()
    with gzip.open(src / "bomb.jsonl.gz", "wb", compresslevel=9) as fh:
        fh.write(b'{"id": "b", "body": "')
        zeros = b"0" * (1 << 20)
        for _ in range(MAX_LINE_BYTES // len(zeros) + 8):
            fh.write(zeros)
        fh.write(b'"}\n' + good + b"\n")
    done = subprocess.run(
        ["/usr/bin/time", "-f", "maxrss_kb=%M", sys.executable, "-m", "search", "reindex",
         "--index", str(tmp_path / "index"), "--workers", "1", str(src)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert f"bomb.jsonl.gz:1: line longer than {MAX_LINE_BYTES:,} bytes" in done.stderr
    assert done.stdout.startswith("added 1, ")
    rss_kb = int(done.stderr.rsplit("maxrss_kb=", 1)[1].split()[0])
    assert rss_kb < MAX_LINE_BYTES // 1024 + 400_000  # never the whole line (~8x the bound)


def max_rss_kb(index: Path, source: Path) -> tuple[int, subprocess.CompletedProcess]:
    """Peak memory of a real ``reindex`` of ``source`` (``/usr/bin/time``), and the run."""
    done = subprocess.run(
        ["/usr/bin/time", "-f", "maxrss_kb=%M", sys.executable, "-m", "search", "reindex",
         "--index", str(index), "--workers", "1", str(source)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return int(done.stderr.rsplit("maxrss_kb=", 1)[1].split()[0]), done


def test_a_huge_txt_costs_what_its_capped_article_costs(tmp_path: Path) -> None:
    # A .txt of half a gigabyte (here sparse) is read up to MAX_TXT_BYTES, never whole: its run
    # takes no more memory than the run of a file of exactly MAX_TXT_BYTES, the same article.
    head = ("Tiêu đề\n\n" + "Mưa lớn ở Lào Cai. " * 500 + "\n").encode()
    for name, size in (("capped", MAX_TXT_BYTES), ("huge", 512 << 20)):
        (tmp_path / name).mkdir()
        with open(tmp_path / name / "big.txt", "wb") as fh:
            fh.write(head)
            fh.truncate(size)
    capped_kb, _ = max_rss_kb(tmp_path / "i1", tmp_path / "capped")
    huge_kb, done = max_rss_kb(tmp_path / "i2", tmp_path / "huge")
    path = tmp_path / "huge" / "big.txt"
    assert f"warning {path}: truncated to 2,000,000 characters" in done.stderr
    assert done.stdout.startswith("added 1, updated 0, removed 0, unchanged 0, skipped 0, ")
    assert huge_kb < capped_kb + 64 * 1024, (huge_kb, capped_kb)


def test_millions_of_bad_lines_are_counted_not_listed(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    with gzip.open(src / "empty-objects.jsonl.gz", "wb") as fh:
        fh.write(b"{}\n" * 300_000)
    done = reindex(tmp_path / "index", src)
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 11  # the first ten, then one line for the rest
    assert lines[-1] == "skipped ... and 299990 more"
    assert "skipped 300000 (300000 missing or invalid 'id')" in done.stdout


def test_every_field_is_capped(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    doc = {
        "id": "big",
        "title": "Lào Cai " * 10_000,
        "sapo": "mở đầu " * 200_000,
        "body": "Tin ở Lào Cai.",
        "source": "s" * 10_000,
    }
    (src / "news.jsonl").write_text(json.dumps(doc, ensure_ascii=False) + "\n", encoding="utf-8")
    index = tmp_path / "index"
    done = reindex(index, src)
    assert done.returncode == 0, done.stderr
    assert f"warning {src / 'news.jsonl'}:1: truncated title, lead, source" in done.stderr
    assert done.stdout.startswith(
        "added 1, updated 0, removed 0, unchanged 0, skipped 0, truncated 3 fields, warnings 1; "
    )
    engine = SearchEngine(index, warm=False)
    try:
        stored = engine.document("big")
        assert stored["title"] == doc["title"][: FIELD_CAPS["title"]].strip()
        assert len(stored["lead"]) <= FIELD_CAPS["lead"]
        hit = engine.search("lào cai")["hits"][0]
        assert len(json.dumps(hit, ensure_ascii=False)) < 20_000
    finally:
        engine.close()


@pytest.mark.skipif(
    bool(WITHOUT_DAC) and shutil.which("setpriv") is None, reason="root without setpriv"
)
def test_a_txt_or_directory_that_cannot_be_read_keeps_its_documents(tmp_path: Path) -> None:
    # chmod 000 on a remembered file or folder is not a deletion: nothing is removed, each is
    # named with its reason, the rest of the run commits, and the exit code is 1.
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    for name in ("a.txt", "b.txt", "sub/c.txt", "sub/d.txt"):
        (src / name).write_text(f"Tin {name}\n\nMưa lớn ở Lào Cai ({name}).\n", encoding="utf-8")
    index = tmp_path / "index"
    assert reindex(index, src).returncode == 0
    (src / "new.txt").write_text("Tin mới\n\nNắng ở Lào Cai.\n", encoding="utf-8")
    (src / "sub").chmod(0)
    try:
        done = run_cli("reindex", "--index", str(index), "--workers", "1", prefix=WITHOUT_DAC)
    finally:
        (src / "sub").chmod(0o755)
    assert done.returncode == 1, done.stderr
    assert done.stdout.startswith("added 1, updated 0, removed 0, unchanged 2, skipped 0, ")
    assert "unreadable 1 (their documents kept); 5 documents" in done.stdout
    assert f"unreadable {src / 'sub'}: cannot list: Permission denied" in done.stderr
    assert ids(index) == {"a.txt", "b.txt", "sub/c.txt", "sub/d.txt", "new.txt"}

    (src / "a.txt").chmod(0)
    (src / "b.txt").write_text("Tin b\n\nMưa nhỏ ở Lào Cai.\n", encoding="utf-8")
    done = run_cli("reindex", "--index", str(index), "--workers", "1", prefix=WITHOUT_DAC)
    assert done.returncode == 1, done.stderr
    assert done.stdout.startswith("added 0, updated 1, removed 0, unchanged 3, skipped 0, ")
    assert f"unreadable {src / 'a.txt'}: cannot read: Permission denied" in done.stderr
    assert "Traceback" not in done.stderr
    assert ids(index) == {"a.txt", "b.txt", "sub/c.txt", "sub/d.txt", "new.txt"}


@pytest.mark.skipif(
    bool(WITHOUT_DAC) and shutil.which("setpriv") is None, reason="root without setpriv"
)
def test_many_unreadable_files_are_counted_not_listed(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for i in range(12):
        (src / f"{i:02}.txt").write_text(f"Tin {i}\n\nMưa ở Lào Cai.\n", encoding="utf-8")
    index = tmp_path / "index"
    assert reindex(index, src).returncode == 0
    for path in src.iterdir():
        path.chmod(0)
    done = run_cli("reindex", "--index", str(index), "--workers", "1", prefix=WITHOUT_DAC)
    assert done.returncode == 1
    lines = done.stderr.splitlines()
    assert lines[:10] == [f"unreadable {src / f'{i:02}.txt'}: cannot read: Permission denied"
                          for i in range(10)]  # fmt: skip
    assert lines[10:] == [
        "unreadable ... and 2 more",
        "vnsearch: 12 source(s) could not be read; their documents were kept",
    ]
    assert "removed 0, unchanged 0, skipped 0, unreadable 12 (their documents kept); 12 " in (
        done.stdout
    )
