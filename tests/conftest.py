"""Shared fixtures: expensive indexes are built once per session; servers are real gunicorns."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from search.documents import Document
from search.engine import SearchEngine
from search.indexer import build_index

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
SAMPLES = ROOT / "samples"


def run_fresh(script: str, *args: str, timeout: float = 300) -> str:
    """``script``'s output, run by a fresh interpreter in the repository: what must not see the
    suite's own process (the threads earlier tests left, beside which the indexer does not
    fork)."""
    done = subprocess.run(
        [sys.executable, "-c", script, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=True,
    )
    return done.stdout.strip()


def shared_path(*parts: str) -> Path:
    """A path in ../shared/data, or skip the test with a clear message when it is absent."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared test data not found: {path} (expected beside the checkout)")
    return path


def mapping_of(array):
    """What ``array``'s memory belongs to, through array bases and memoryviews (as
    ``store.shared_postings.fault_in`` finds a map): an ``mmap.mmap`` for a mapped file's."""
    base = array
    while True:
        if isinstance(base, memoryview):
            base = base.obj
        elif getattr(base, "base", None) is not None:
            base = base.base
        else:
            return base


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# Small fictional documents with exact, known contents for ranking and highlighting tests.
TOY_DOCS = [
    Document(id="ban-1", title="Cửa hàng bán đồ gỗ", body="Cửa hàng bán đồ gỗ ở phố cổ."),
    Document(id="ban-2", title="Cửa hàng bàn đồ gỗ", body="Cửa hàng bàn đồ gỗ ở phố cổ."),
    Document(
        id="laocai",
        title="Hợp tác giữa Lào Cai và Lai Châu",
        body=(
            "Hai tỉnh Lào Cai và Lai Châu ký kết hợp tác giai đoạn 2023 - 2025."
            " Chiều 4/3 tăng 12,5%."
        ),
        url="https://example.org/lao-cai",
        source="Báo Mẫu",
        date="2024-03-04",
    ),
    Document(
        id="scattered",
        title="Tin vắn",
        body="Ông Lào nói chuyện. Cai quản kho hàng là việc của anh Tác, người hợp với nghề.",
        source="Báo Khác",
        date="2023-01-02",
    ),
    Document(id="hoa-old", title="Hòa bình", body="Khỏe mạnh và thủy chung, kỹ sư người Mỹ."),
    Document(id="hoa-new", title="Hoà giải", body="Khoẻ re, thuỷ điện, kĩ thuật ở Mĩ."),
    Document(
        id="xss",
        title="<script>alert(1)</script> tiêu đề",
        body='Nội dung <script>alert(1)</script> "onmouseover=x </mark> an toàn.',
        url="javascript:alert(1)",
    ),
    Document(id="nolead", body="Câu mở đầu không có tiêu đề. Câu thứ hai."),
]


@pytest.fixture()
def no_base_terms(monkeypatch: pytest.MonkeyPatch) -> None:
    """Indexes built without a base's terms file (``store.base_terms``), as before it existed:
    every term a worker has not read goes through the shared files or the segments, the paths
    the tests using this fixture are about."""
    from search import postings

    monkeypatch.setattr(postings.Snapshot, "base_terms_writer", lambda self: None)


@pytest.fixture(scope="session")
def toy_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("toy") / "index"
    build_index(TOY_DOCS, path, workers=1)
    return path


@pytest.fixture(scope="session")
def toy_engine(toy_index: Path) -> Iterator[SearchEngine]:
    engine = SearchEngine(toy_index)
    yield engine
    engine.close()


@pytest.fixture(scope="session")
def samples_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from search.indexer import reindex

    path = tmp_path_factory.mktemp("samples") / "index"
    reindex(path, [SAMPLES], workers=1)
    return path


class Server:
    """A gunicorn serving ``wsgi:app`` (or ``app``, a module of ``tests/``) on a free 127.0.0.1
    port."""

    def __init__(self, index_dir: Path, workers: int = 2, app: str = "wsgi:app") -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "VNSEARCH_INDEX_DIR": str(index_dir)}
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "--config",
                str(ROOT / "gunicorn.conf.py"),
                "--bind",
                f"127.0.0.1:{self.port}",
                "--workers",
                str(workers),
                *(() if app == "wsgi:app" else ("--pythonpath", str(ROOT / "tests"))),
                app,
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited: {self.proc.stderr.read().decode()[-2000:]}")
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=2):
                    return
            except urllib.error.HTTPError:
                return  # answering (503 without an index is still an answer)
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("gunicorn did not start within 30 s")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stderr:
            self.proc.stderr.close()


@pytest.fixture(scope="session")
def samples_server(samples_index: Path) -> Iterator[Server]:
    server = Server(samples_index)
    yield server
    server.stop()
