"""A full build reads large sources in the analysis pool (``search.pooled_reading``): the run
must be the one a single reader makes, record for record.

The source here is small, so ``POOLED_BYTES`` is lowered to take the pooled path, and
``TASK_FILES`` to one file a task, so files come back through several tasks, in order.  It holds
every kind of record a reader meets: copies of one id in two files and twice in one file (the
later wins), bad JSON, a lone surrogate, an over-long title, an empty ``.txt``, a file in a
subdirectory, and a gzip file.
"""

from __future__ import annotations

import gzip
import json
import random
from pathlib import Path

import pytest
from test_generation_files import _answers, _generation_dir, article, assert_exact

from search import indexer, pooled_reading, source_files
from search.errors import SourceUnreadable
from search.existing import Existing
from search.indexer import Summary, reindex
from search.source_files import SourceFiles

QUERIES = ["lào cai", "mua lon", "giá vàng", "hoà bình", '"ủy ban"', "ubnd"]


def _line(doc: dict) -> str:
    return json.dumps(doc, ensure_ascii=False)


def _hostile_source(root: Path) -> None:
    rnd = random.Random(21)
    docs = {f"x{i}": article(rnd, f"x{i}") for i in range(8)}
    root.mkdir(parents=True)
    lines = [_line(d) for d in docs.values()]
    lines.insert(3, "{not json")
    lines.insert(5, '{"id": "bad", "title": "L\\ud800o", "body": "một hai"}')
    lines.append(_line({**article(rnd, "x3"), "id": "x3"}))  # x3 again: this copy wins
    long_title = {**article(rnd, "x9"), "id": "x9", "title": "Lào Cai " * 200}
    lines.append(_line(long_title))
    (root / "a.jsonl").write_text("\n".join(lines) + "\n\n", encoding="utf-8")
    (root / "b").mkdir()
    later = [article(rnd, f"y{i}") for i in range(3)] + [{**article(rnd, "x2"), "id": "x2"}]
    with gzip.open(root / "b" / "c.jsonl.gz", "wt", encoding="utf-8") as fh:
        fh.write("\n".join(map(_line, later)) + "\n")
    (root / "d.txt").write_text("Mưa lớn ở Lào Cai\n\nNước sông Hồng dâng cao.\n", encoding="utf-8")
    (root / "e.txt").write_text("", encoding="utf-8")


@pytest.fixture
def pooled(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The pooled path taken by every full build of two workers; counts its readings."""
    monkeypatch.setattr(indexer, "POOLED_BYTES", 0)
    monkeypatch.setattr(pooled_reading, "TASK_FILES", 1)
    taken: list[int] = []
    read_in_pool = indexer.read_in_pool

    def counted(*args, **kwargs):
        taken.append(1)
        return read_in_pool(*args, **kwargs)

    monkeypatch.setattr(indexer, "read_in_pool", counted)
    return taken


def _scan_of(sources: list[Path], workers: int):
    summary = Summary()
    named = [str(src.resolve()) for src in sources]
    scan = indexer._scan(named, summary, False, Existing.of({}), True, None, workers)
    return scan, summary


def test_the_pooled_reading_finds_what_one_reader_finds(tmp_path: Path, pooled: list[int]) -> None:
    src, other = tmp_path / "src", tmp_path / "other"
    _hostile_source(src)
    other.mkdir()
    (other / "z.jsonl").write_text(_line(article(random.Random(4), "x5")) + "\n", encoding="utf-8")
    alone, alone_summary = _scan_of([src, other, tmp_path / "missing"], 1)
    assert not pooled
    shared, shared_summary = _scan_of([src, other, tmp_path / "missing"], 2)
    assert pooled == [1]
    assert shared.copies == alone.copies
    assert list(shared.copies) == list(alone.copies)  # the same order: the files' and lines'
    assert shared.copies["x2"][2].endswith("c.jsonl.gz")  # the later file's copy
    assert shared.copies["x5"][2].endswith("z.jsonl")  # the later source's
    assert shared.incomplete == alone.incomplete == {str((tmp_path / "missing").resolve())}
    assert shared_summary.line() == alone_summary.line()
    assert shared_summary.unreadable == [f"{tmp_path / 'missing'}: source not found"]
    assert shared_summary.skip_reasons == {"bad JSON": 1, "empty file": 1, "invalid Unicode": 1}
    assert shared_summary.truncated_fields == 1
    assert shared.reading.read_ids == alone.reading.read_ids
    assert list(shared.reading.order) == list(alone.reading.order)
    assert shared.won == alone.won and shared.overtaken == alone.overtaken
    assert shared.held is None and alone.held is not None  # read again as they are written


def test_a_pooled_build_is_the_build_of_one_reader(
    tmp_path: Path, pooled: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(source_files, "RACY_SECONDS", 0)  # files written now are fingerprinted
    src = tmp_path / "src"
    _hostile_source(src)
    one = reindex(tmp_path / "one", [src], full=True, workers=1)
    two = reindex(tmp_path / "two", [src], full=True, workers=2)
    assert pooled == [1]
    assert (two.added, two.skipped_count, two.clashes, two.documents) == (
        one.added,
        one.skipped_count,
        one.clashes,
        one.documents,
    )
    assert two.documents == 13  # x0-x7, x9, y0-y2 and d.txt
    assert _answers(tmp_path / "two", QUERIES) == _answers(tmp_path / "one", QUERIES)
    assert_exact(tmp_path / "two")
    ours, theirs = _generation_dir(tmp_path / "two"), _generation_dir(tmp_path / "one")
    for name in sorted(p.name for p in theirs.iterdir()):
        if name.startswith(("accent-", "suggest-", "vocabulary-")):
            assert (ours / name).read_bytes() == (theirs / name).read_bytes(), name
    recorded = [SourceFiles.load(tmp_path / d, 1) for d in ("one", "two")]
    assert recorded[0] is not None and recorded[1] is not None
    paths = sorted(recorded[0].fingerprints)
    assert sorted(recorded[1].fingerprints) == paths and len(paths) == 4
    for path in paths:
        assert recorded[1].won(path) == recorded[0].won(path)
        assert recorded[1].lost(path) == recorded[0].lost(path)
    # An incremental run after it reads nothing: every file is recorded as read.
    again = reindex(tmp_path / "two", workers=2)
    assert (again.added, again.updated, again.removed, again.files_unread) == (0, 0, 0, 4)


def test_an_unreadable_file_stops_a_pooled_build(tmp_path: Path, pooled: list[int]) -> None:
    src = tmp_path / "src"
    _hostile_source(src)
    reindex(tmp_path / "index", [src], full=True, workers=2)
    before = _answers(tmp_path / "index", QUERIES)
    (src / "b" / "c.jsonl.gz").write_bytes(b"\x1f\x8b\x08\x00broken")
    with pytest.raises(SourceUnreadable, match="cannot rebuild"):
        reindex(tmp_path / "index", full=True, workers=2)
    assert pooled == [1, 1]
    assert _answers(tmp_path / "index", QUERIES) == before
