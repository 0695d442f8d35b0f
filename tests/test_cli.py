"""The command line: ``vnsearch reindex`` and ``vnsearch search`` (CliRunner and a real process)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import ROOT

from search.cli import cli
from search.engine import SearchEngine

SUMMARY_RE = re.compile(r"^(?P<counts>.*); (?P<docs>\d+) documents in \d+\.\d s\n$")


def summary(stdout: str) -> str:
    m = SUMMARY_RE.match(stdout)
    assert m, stdout
    return f"{m['counts']}; {m['docs']} documents"


def article(path: Path, title: str, body: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{title}\n\n{body}\n", encoding="utf-8")


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.delenv("VNSEARCH_INDEX_DIR", raising=False)
    return CliRunner()


@pytest.fixture
def src(tmp_path: Path) -> Path:
    root = tmp_path / "src"
    article(root / "a.txt", "Lào Cai mưa lớn", "Mưa lớn kéo dài ở Lào Cai.")
    article(root / "b.txt", "Hà Nội nắng nóng", "Nắng nóng ở Hà Nội.")
    article(root / "c.txt", "Đà Nẵng đón khách", "Biển Đà Nẵng đông khách.")
    return root


def run(runner: CliRunner, *args: str):
    return runner.invoke(cli, list(args), catch_exceptions=False)


def test_reindex_then_refresh_without_path(runner: CliRunner, tmp_path: Path, src: Path) -> None:
    index = str(tmp_path / "index")
    first = run(runner, "reindex", str(src), "--index", index, "--workers", "1")
    assert first.exit_code == 0
    assert summary(first.stdout) == (
        "added 3, updated 0, removed 0, unchanged 0, skipped 0; 3 documents"
    )
    assert first.stderr == ""

    article(src / "a.txt", "Lào Cai mưa to", "Mưa to kéo dài ở Lào Cai.")
    (src / "b.txt").unlink()
    article(src / "d.txt", "Huế mùa lũ", "Sông Hương dâng cao.")
    second = run(runner, "reindex", "--index", index, "--workers", "1")
    assert second.exit_code == 0
    assert summary(second.stdout) == (
        "added 1, updated 1, removed 1, unchanged 1, skipped 0; 3 documents"
    )


def test_index_dir_from_environment(runner: CliRunner, tmp_path: Path, src: Path) -> None:
    index = tmp_path / "env-index"
    result = runner.invoke(
        cli, ["reindex", str(src), "--workers", "1"], env={"VNSEARCH_INDEX_DIR": str(index)}
    )
    assert result.exit_code == 0, result.output
    assert summary(result.stdout).endswith("; 3 documents")
    engine = SearchEngine(index)
    assert engine.health()["documents"] == 3
    engine.close()


def test_clashing_id_later_source_wins(runner: CliRunner, tmp_path: Path, src: Path) -> None:
    index = str(tmp_path / "index")
    run(runner, "reindex", str(src), "--index", index, "--workers", "1")
    other = tmp_path / "other"
    article(other / "a.txt", "Lào Cai bản khác", "Bài của nguồn thứ hai.")
    (other / "extra.jsonl").write_text('{"id": "j1", "body": "Tin JSON."}\n', encoding="utf-8")
    clash = run(runner, "reindex", str(other), "--index", index, "--workers", "1")
    assert clash.exit_code == 0
    assert summary(clash.stdout) == (
        "added 1, updated 1, removed 0, unchanged 2, skipped 0, "
        "id clashes 1 (later source wins); 4 documents"
    )
    found = run(runner, "search", "nguồn thứ hai", "--json", "--index", index)
    assert [h["id"] for h in json.loads(found.stdout)["hits"]] == ["a.txt"]


def test_forget_and_full(runner: CliRunner, tmp_path: Path, src: Path) -> None:
    index = str(tmp_path / "index")
    other = tmp_path / "other.jsonl"
    other.write_text(
        '{"id": "j1", "body": "Tin JSON."}\n{"id": "j2", "body": "Hai."}\n', encoding="utf-8"
    )
    run(runner, "reindex", str(src), str(other), "--index", index, "--workers", "1")

    forget = run(runner, "reindex", "--forget", str(other), "--index", index, "--workers", "1")
    assert forget.exit_code == 0
    assert summary(forget.stdout) == (
        "added 0, updated 0, removed 2, unchanged 3, skipped 0; 3 documents"
    )
    sources = json.loads((tmp_path / "index" / "sources.json").read_text(encoding="utf-8"))
    assert sources == {"sources": [str(src.resolve())]}

    article(src / "c.txt", "Đà Nẵng mưa", "Đà Nẵng mưa suốt tuần.")
    full = run(runner, "reindex", "--full", "--index", index, "--workers", "1")
    assert full.exit_code == 0
    assert summary(full.stdout) == (
        "added 0, updated 1, removed 0, unchanged 2, skipped 0; 3 documents"
    )


def test_missing_source_fails_and_leaves_the_index(
    runner: CliRunner, tmp_path: Path, src: Path
) -> None:
    index = tmp_path / "index"
    run(runner, "reindex", str(src), "--index", str(index), "--workers", "1")
    sources = (index / "sources.json").read_text(encoding="utf-8")
    missing = tmp_path / "missing"
    result = run(runner, "reindex", str(missing), "--index", str(index))
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == f"vnsearch: source not found: {missing}\n"
    assert (index / "sources.json").read_text(encoding="utf-8") == sources
    engine = SearchEngine(index)
    assert engine.health()["documents"] == 3
    engine.close()


def test_forget_unknown_source_fails(runner: CliRunner, tmp_path: Path, src: Path) -> None:
    index = str(tmp_path / "index")
    run(runner, "reindex", str(src), "--index", index, "--workers", "1")
    result = run(runner, "reindex", "--forget", str(tmp_path / "nope"), "--index", index)
    assert result.exit_code == 1
    assert result.stderr == f"vnsearch: not a remembered source: {tmp_path / 'nope'}\n"


def test_bad_json_line_is_reported_and_skipped(
    runner: CliRunner, tmp_path: Path, src: Path
) -> None:
    news = src / "news.jsonl"
    news.write_text(
        '{"id": "j1", "body": "Một."}\n{"id": "j2", "body": \n{"id": "j3", "body": "Ba."}\n',
        encoding="utf-8",
    )
    result = run(runner, "reindex", str(src), "--index", str(tmp_path / "index"), "--workers", "1")
    assert result.exit_code == 0
    assert summary(result.stdout) == (
        "added 5, updated 0, removed 0, unchanged 0, skipped 1 (1 bad JSON); 5 documents"
    )
    lines = result.stderr.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"skipped {news}:2: bad JSON: ")


def test_search_json_equals_engine_result(runner: CliRunner, tmp_path: Path, src: Path) -> None:
    index = tmp_path / "index"
    run(runner, "reindex", str(src), "--index", str(index), "--workers", "1")
    result = run(runner, "search", "lao cai", "--json", "--index", str(index))
    assert result.exit_code == 0
    printed = json.loads(result.stdout)
    engine = SearchEngine(index)
    expected = engine.search("lao cai", page=1, per_page=10)
    engine.close()
    assert isinstance(printed.pop("took_ms"), float)
    expected.pop("took_ms")
    assert printed == expected
    assert [h["id"] for h in printed["hits"]] == ["a.txt"]
    assert "Lào Cai" in result.stdout  # not \u-escaped


def test_search_text_output(runner: CliRunner, tmp_path: Path, src: Path) -> None:
    index = tmp_path / "index"
    run(runner, "reindex", str(src), "--index", str(index), "--workers", "1")
    result = run(runner, "search", "lao cai", "--index", str(index))
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert re.fullmatch(r"1 results \(\d+(\.\d+)? ms\)", lines[0])
    assert lines[1] == "did you mean: Lào Cai"
    assert re.fullmatch(r"  1\. Lào Cai mưa lớn  \[a\.txt\]  \d+\.\d\d", lines[2])
    assert lines[3] == "     Mưa lớn kéo dài ở [Lào] [Cai]."
    assert len(lines) == 4


def test_search_blank_query(runner: CliRunner, tmp_path: Path, src: Path) -> None:
    index = tmp_path / "index"
    run(runner, "reindex", str(src), "--index", str(index), "--workers", "1")
    result = run(runner, "search", "   ", "--index", str(index))
    assert result.exit_code == 1
    assert (result.stdout, result.stderr) == ("", "vnsearch: Thiếu từ khóa tìm kiếm (tham số q).\n")


def test_search_without_index(runner: CliRunner, tmp_path: Path) -> None:
    result = run(runner, "search", "lao cai", "--index", str(tmp_path / "none"))
    assert result.exit_code == 1
    assert result.stderr == (
        f"vnsearch: Chưa có chỉ mục tại {tmp_path / 'none'}. Hãy chạy: vnsearch reindex samples/\n"
    )


def test_python_dash_m_exit_codes(tmp_path: Path, src: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PYTHONPATH": str(ROOT)}
    index = tmp_path / "index"
    missing = tmp_path / "missing"
    bad = subprocess.run(
        [sys.executable, "-m", "search", "reindex", str(missing), "--index", str(index)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=60,
    )
    assert bad.returncode == 1
    assert bad.stdout == ""
    assert bad.stderr == f"vnsearch: source not found: {missing}\n"

    ok = subprocess.run(
        [
            sys.executable,
            "-m",
            "search",
            "reindex",
            str(src),
            "--index",
            str(index),
            "--workers",
            "1",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=60,
    )
    assert ok.returncode == 0, ok.stderr
    assert summary(ok.stdout) == (
        "added 3, updated 0, removed 0, unchanged 0, skipped 0; 3 documents"
    )
    assert "Traceback" not in ok.stderr


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("VNSEARCH_LOCK_TIMEOUT", "abc", "VNSEARCH_LOCK_TIMEOUT must be a number, not 'abc'"),
        ("VNSEARCH_CACHE_MB", "lots", "VNSEARCH_CACHE_MB must be a whole number, not 'lots'"),
        ("VNSEARCH_CACHE_MB", "0", "VNSEARCH_CACHE_MB must be at least 1, not 0"),
    ],
)
def test_an_unusable_setting_is_one_line_and_exit_2(
    runner: CliRunner, tmp_path: Path, name: str, value: str, message: str
) -> None:
    for args in (["search", "x"], ["reindex", str(tmp_path)], ["serve", "--help"]):
        result = runner.invoke(cli, [*args, "--index", str(tmp_path)], env={name: value})
        if args[-1] == "--help":  # help needs no settings
            assert result.exit_code == 0
            continue
        assert result.exit_code == 2, result.output
        assert result.output == f"vnsearch: {message}\n"


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("VNSEARCH_SEGMENT_MB", "1g", "VNSEARCH_SEGMENT_MB must be a whole number, not '1g'"),
        ("VNSEARCH_HELD_DOCS", "-1", "VNSEARCH_HELD_DOCS must be at least 0, not -1"),
        ("VNSEARCH_MAX_SEGMENT_DOCS", "0", "VNSEARCH_MAX_SEGMENT_DOCS must be at least 1, not 0"),
        ("VNSEARCH_TALLY_KEYS", "0", "VNSEARCH_TALLY_KEYS must be at least 1, not 0"),
    ],
)
def test_an_unusable_build_limit_stops_reindex_before_it_starts(
    runner: CliRunner, tmp_path: Path, src: Path, name: str, value: str, message: str
) -> None:
    index = tmp_path / "index"
    result = runner.invoke(cli, ["reindex", str(src), "--index", str(index)], env={name: value})
    assert (result.exit_code, result.output) == (2, f"vnsearch: {message}\n")
    assert not index.exists()  # nothing was written
    ok = runner.invoke(cli, ["reindex", str(src), "--index", str(index)], env={name: "5"})
    assert ok.exit_code == 0, ok.output  # a usable value is used


def test_search_uses_the_cache_setting(
    runner: CliRunner, tmp_path: Path, src: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from search import engine as engine_module

    index = tmp_path / "index"
    assert runner.invoke(cli, ["reindex", str(src), "--index", str(index)]).exit_code == 0
    seen = []
    real = engine_module.SearchEngine

    def spy(*args, **kwargs):
        seen.append(kwargs.get("cache_mb"))
        return real(*args, **kwargs)

    monkeypatch.setattr(engine_module, "SearchEngine", spy)
    result = runner.invoke(
        cli, ["search", "lào cai", "--index", str(index)], env={"VNSEARCH_CACHE_MB": "8"}
    )
    assert result.exit_code == 0 and "Lào Cai mưa lớn" in result.output
    assert seen == [8]
