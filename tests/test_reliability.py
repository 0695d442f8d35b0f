"""Reindexing under stress: zero downtime, kill -9, read-only and full disks, one writer, bad input.

Everything runs on small generated corpora (a few hundred short Vietnamese-like articles; 1,500
where a reindex must use its process pool, which takes more than ``indexer.ANALYSIS_BATCH``) and
the real command line (``python -m search``) or a real gunicorn (``conftest.Server``) on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import errno
import gc
import gzip
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import ROOT, Server
from whoosh import index as whoosh_index
from whoosh.index import TOC

from search import documents, indexer
from search.cli import cli
from search.engine import SearchEngine
from search.indexer import SOURCES_FILE, Summary, reindex

WORD = "khèn"  # in every third generated article, before and after each reindex
SYLLABLES = (  # noqa: SIM905 - a sentence is easier to read than a list of 60 strings
    "lào cai hà nội đà nẵng mưa lớn nắng nóng người dân chợ phiên bắc khách du lịch biển tỉnh "
    "huyện xã ủy ban nhân dân kinh tế phát triển nông nghiệp lúa gạo cà phê hợp tác đầu tư giao "
    "thông đường sạt lở học sinh giáo viên trường bệnh viện bác sĩ thời tiết mùa đông sương muối"
).split()
QUERIES = (WORD, "lào cai", "mưa lớn", '"giao thông"', "nong nghiep -lúa")
LINE_RE = re.compile(r"^(?P<counts>.*); (?P<docs>\d+) documents in \d+\.\d s$")


# --------------------------------------------------------------------------- helpers


def write_article(root: Path, name: str, rnd: random.Random, with_word: bool, words: int = 60):
    title = " ".join(rnd.choice(SYLLABLES) for _ in range(8)).capitalize()
    sentences = [
        " ".join(rnd.choice(SYLLABLES) for _ in range(12)).capitalize() for _ in range(words // 12)
    ]
    if with_word:
        sentences.insert(1, f"Lễ hội {WORD} Mông")
    (root / name).write_text(f"{title}\n\n" + ". ".join(sentences) + ".\n", encoding="utf-8")


def make_corpus(root: Path, n: int, seed: int = 0, words: int = 60) -> int:
    """``n`` articles ``0000.txt``... of about ``words`` words; returns how many hold ``WORD``."""
    root.mkdir(parents=True, exist_ok=True)
    rnd = random.Random(seed)
    for i in range(n):
        write_article(root, f"{i:04d}.txt", rnd, with_word=i % 3 == 0, words=words)
    return len(range(0, n, 3))


def run_cli(*args: str, env: dict | None = None, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "search", *args],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
        **kwargs,
    )


def results(index: Path) -> dict[str, dict]:
    """Every query's full response (without timing) from a fresh engine on ``index``."""
    engine = SearchEngine(index)
    try:
        out = {}
        for q in QUERIES:
            body = engine.search(q, per_page=100)
            body.pop("took_ms")
            out[q] = body
        return out
    finally:
        engine.close()


def generation(index: Path) -> int:
    return whoosh_index.open_dir(str(index)).latest_generation()


def assert_clean(index: Path) -> None:
    """One TOC, every segment file belongs to it, no temp files or directories."""
    ix = whoosh_index.open_dir(str(index))
    toc = TOC.read(ix.storage, ix.indexname)
    live = {seg.segment_id() for seg in toc.segments}
    toc_re, seg_re = TOC._pattern(ix.indexname), TOC._segment_pattern(ix.indexname)
    names = sorted(p.name for p in index.iterdir())
    assert [n for n in names if toc_re.match(n)] == [f"_{ix.indexname}_{toc.generation}.toc"]
    orphans = [n for n in names if seg_re.match(n) and seg_re.match(n).group(1) not in live]
    assert orphans == [], names
    assert [n for n in names if ".tmp" in n or ".toc." in n] == [], names


def segment_files(index: Path) -> set[str]:
    try:
        return set(os.listdir(index))
    except FileNotFoundError:
        return set()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, int]:
    """(source dir, index built from it by the CLI, number of articles holding WORD)."""
    root = tmp_path_factory.mktemp("reliability")
    source = root / "tin"
    with_word = make_corpus(source, 300)
    index = root / "index"
    done = run_cli("reindex", "--index", str(index), str(source))
    assert done.returncode == 0, done.stderr
    return source, index, with_word


@pytest.fixture
def index_copy(corpus, tmp_path: Path) -> Path:
    """A private copy of the corpus index (its sources.json names the shared source dir)."""
    _, index, _ = corpus
    copy = tmp_path / "index"
    shutil.copytree(index, copy)
    return copy


# --------------------------------------------------------------------------- zero downtime


class Hammer(threading.Thread):
    """Asks ``/api/search?q=WORD&n=<i>`` in a loop and keeps (status, total, hits) of each."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url, self.stop = url, threading.Event()
        self.replies: list[tuple[int, int | None, int, str]] = []
        self.errors: list[str] = []

    def run(self) -> None:
        n = 0
        while not self.stop.is_set():
            n += 1
            qs = urllib.parse.urlencode({"q": WORD, "n": n})
            try:
                with urllib.request.urlopen(f"{self.url}/api/search?{qs}", timeout=20) as r:
                    body = json.loads(r.read().decode("utf-8"))
                    self.replies.append((r.status, body["total"], len(body["hits"]), qs))
            except urllib.error.HTTPError as exc:
                with exc:
                    self.replies.append((exc.code, None, 0, exc.read()[:200].decode()))
            except Exception as exc:  # noqa: BLE001 - any failure is a finding
                self.errors.append(repr(exc))

    def totals(self) -> set:
        return {total for _, total, _, _ in self.replies}


def pids_by_tag(access_log: Path, tags: list[str]) -> dict[str, str]:
    """Which worker (gunicorn's ``%(p)s``) answered each tagged request (waits for the log)."""
    deadline = time.monotonic() + 5
    while True:
        found = {}
        for line in access_log.read_text(encoding="utf-8").splitlines():
            pid, _, qs = line.partition(" ")
            found[qs] = pid
        if all(t in found for t in tags) or time.monotonic() > deadline:
            return {t: found[t] for t in tags if t in found}
        time.sleep(0.05)


def versions_per_worker(server: Server, access_log: Path, label: str) -> dict[str, int]:
    """``/healthz`` index_version of each of the 2 workers (asks until both have answered).

    Asks for up to 30 s with a short pause between requests: a worker busy loading a new index
    generation rarely wins the accept race against an idle one, so a fixed count of
    back-to-back requests can all land on the same worker.  A worker whose answers name two
    generations was switching to the newer one while asked (it serves the older one until the
    newer one is warm): the answers so far are dropped and it is asked again; one that never
    settles on one generation fails the test.
    """
    bodies: dict[str, dict] = {}
    deadline = time.monotonic() + 30
    i = asked = -1
    mixed: dict[str, set[int]] = {}
    while time.monotonic() < deadline:
        i += 1
        asked += 1
        if i:
            time.sleep(0.02)
        tag = f"h={label}{i}"
        with urllib.request.urlopen(f"{server.url}/healthz?{tag}", timeout=10) as r:
            bodies[tag] = json.loads(r.read())
        if asked >= 5:
            owners = pids_by_tag(access_log, list(bodies))
            if len(set(owners.values())) == 2:
                per_worker: dict[str, set[int]] = {}
                for tag_, pid in owners.items():
                    per_worker.setdefault(pid, set()).add(bodies[tag_]["index_version"])
                if all(len(v) == 1 for v in per_worker.values()):
                    return {pid: v.pop() for pid, v in per_worker.items()}
                mixed = per_worker
                bodies.clear()
                asked = -1
    assert not mixed, f"a worker kept answering from two generations: {mixed}"
    pytest.fail("only one gunicorn worker answered /healthz")


def test_zero_downtime_reindex(
    corpus, index_copy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source_root, _, with_word = corpus
    # A private source (the incremental run changes it), remembered by the copied index.
    source = tmp_path / "tin"
    shutil.copytree(source_root, source)
    (index_copy / SOURCES_FILE).write_text(json.dumps({"sources": [str(source)]}), "utf-8")
    before = with_word
    access_log = tmp_path / "access.log"
    monkeypatch.setenv(
        "GUNICORN_CMD_ARGS", f"--access-logfile {access_log} --access-logformat '%(p)s %(q)s'"
    )
    server = Server(index_copy, workers=2)
    hammer = Hammer(server.url)
    try:
        v0 = versions_per_worker(server, access_log, "a")
        assert len(set(v0.values())) == 1
        hammer.start()
        while len(hammer.replies) < 5 and not hammer.errors:
            time.sleep(0.05)
        full = run_cli("reindex", "--index", str(index_copy), "--full")
        assert full.returncode == 0, full.stderr
        assert full.stdout.startswith("added 0, updated 0, removed 0, unchanged 300, skipped 0;")
        # Incremental: 30 new articles hold the word, 10 without it are deleted, 5 edited.
        rnd = random.Random(7)
        for i in range(30):
            write_article(source, f"new-{i:02d}.txt", rnd, with_word=True)
        for i in range(1, 31, 3):
            (source / f"{i:04d}.txt").unlink()
        for i in range(2, 17, 3):
            write_article(source, f"{i:04d}.txt", rnd, with_word=False)
        after = before + 30
        incremental = run_cli("reindex", "--index", str(index_copy))
        assert incremental.returncode == 0, incremental.stderr
        assert incremental.stdout.startswith("added 30, updated 5, removed 10, unchanged 285,")
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not hammer.errors:
            recent = hammer.replies[-10:]
            if len(recent) == 10 and {total for _, total, _, _ in recent} == {after}:
                break
            time.sleep(0.05)
        hammer.stop.set()
        hammer.join(timeout=30)
        v1 = versions_per_worker(server, access_log, "b")
    finally:
        hammer.stop.set()
        server.stop()

    assert hammer.errors == []
    assert [r for r in hammer.replies if r[0] != 200] == []
    assert [r for r in hammer.replies if r[2] == 0] == []  # never an empty result
    assert hammer.totals() == {before, after}  # one generation or the other, never a mix
    # Both workers served the query while the index changed under them ...
    served = pids_by_tag(access_log, [qs for *_, qs in hammer.replies])
    assert len(set(served.values())) == 2
    # ... and both moved on to the last generation (full + incremental = 2 commits) unrestarted.
    assert set(v1) == set(v0)
    assert v1 == {pid: version + 2 for pid, version in v0.items()}


def test_engine_serves_the_generation_it_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A commit landing while the engine opens a generation must not make it stick to old data.

    ``Snapshot`` took its generation number from a directory listing made *after* its reader had
    read the TOC: a commit in between labelled the old data with the new number, and the engine
    then served the old generation until the next reindex.
    """
    source = tmp_path / "tin"
    source.mkdir()
    write_article(source, "a.txt", random.Random(1), with_word=False)
    index = tmp_path / "index"
    reindex(index, [source], workers=1)
    write_article(source, "b.txt", random.Random(2), with_word=True)
    real_reader = whoosh_index.FileIndex.reader
    state = {"commits": 0}

    def reader_then_commit(self, *args, **kwargs):
        reader = real_reader(self, *args, **kwargs)
        if state["commits"] == 0:
            state["commits"] += 1
            reindex(index, workers=1)  # a reindex commits just after this reader read its TOC
        return reader

    engine = SearchEngine(index)
    try:
        monkeypatch.setattr(whoosh_index.FileIndex, "reader", reader_then_commit)
        assert engine.search(WORD)["total"] == 0  # the old generation, consistently
        monkeypatch.undo()
        assert engine.health()["documents"] == 2
        assert engine.search(WORD)["total"] == 1
    finally:
        engine.close()


# --------------------------------------------------------------------------- kill -9


def _new_ids(names: set[str], base: set[str], suffix: str) -> set[str]:
    return {n.split(".")[0] for n in names - base if n.endswith(suffix)}


@pytest.fixture(scope="module")
def big_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An index of 1,500 generated articles of 240 words."""
    root = tmp_path_factory.mktemp("big")
    make_corpus(root / "tin", BIG_CORPUS, words=240)
    done = run_cli("reindex", "--index", str(root / "index"), str(root / "tin"))
    assert done.returncode == 0, done.stderr
    return root / "index"


# Two analysis batches (a process pool), and a full reindex that holds the lock for several times
# as long as a second CLI takes to start and give up.
BIG_CORPUS = 1500


KILL_POINTS = {
    # the writer and the new segment's builder have opened their files; pool workers are
    # segmenting (no column written yet)
    "segmenting": lambda new: len(_new_ids(new, set(), ".trm")) >= 2,
    # the builder is writing the segment's columns
    "writing": lambda new: any(n.endswith(".col") for n in new),
    # the new segment is complete: only the commit is left
    "committing": lambda new: len(_new_ids(new, set(), ".seg")) >= 1,
}


def _children(pid: int) -> set[int]:
    """Processes whose parent is ``pid`` (read from /proc)."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.add(int(stat.parent.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_kill_9_of_the_reindex_alone_leaves_no_worker_and_no_lock(
    big_corpus: Path, tmp_path: Path
) -> None:
    # Only the reindex itself is killed, as an operator's `kill -9 <pid>` or the OOM killer
    # does (not its whole process group): its analysis workers must die with it and must not
    # keep the index's write lock, or every later reindex says "another reindex is writing".
    index_copy = tmp_path / "index"
    shutil.copytree(big_corpus, index_copy)
    expected = results(index_copy)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "search",
            "reindex",
            "--index",
            str(index_copy),
            "--full",
            "--workers",
            "2",
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    workers: set[int] = set()
    try:
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline and len(workers) < 2:
            workers = _children(proc.pid)
            time.sleep(0.01)
        assert len(workers) >= 2, f"no pool workers seen (rc {proc.returncode})"
        time.sleep(0.3)  # well into segmenting
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    deadline = time.monotonic() + 10
    while any(_alive(w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [w for w in workers if _alive(w)] == []
    assert results(index_copy) == expected
    done = run_cli("reindex", "--index", str(index_copy), env={"VNSEARCH_LOCK_TIMEOUT": "2"})
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"added 0, updated 0, removed 0, unchanged {BIG_CORPUS}, ")


POOL_UNDER_ANOTHER_DEFAULT = """
import multiprocessing, sys
multiprocessing.set_start_method("forkserver")  # the default from Python 3.14 on Linux
from search import indexer
indexer.ANALYSIS_BATCH = 10
print(indexer.reindex(sys.argv[1], [sys.argv[2]], workers=2).line())
"""


def test_the_pool_forks_whatever_the_default_start_method(tmp_path: Path) -> None:
    # Workers tie themselves to the reindex that forked them (they die with it): a worker
    # started by a forkserver, whose parent is the server, exited at once and broke the pool.
    make_corpus(tmp_path / "tin", 40, words=20)
    done = subprocess.run(
        [sys.executable, "-c", POOL_UNDER_ANOTHER_DEFAULT, str(tmp_path / "index"),
         str(tmp_path / "tin")],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("added 40, updated 0, removed 0, unchanged 0, skipped 0; 40 ")


def test_pool_workers_leave_what_they_inherited_out_of_their_collections() -> None:
    # A worker's full collections walked every object it was forked with (the models, the
    # first reading's tables) and wrote their headers, copying pages it shared with the reindex.
    gc.unfreeze()  # nothing frozen here: whatever the worker finds frozen, it froze
    inherited = [{"docnum": i} for i in range(50_000)]
    with indexer.analysis_pool(1) as pool:
        frozen = pool.submit(gc.get_freeze_count).result(timeout=60)
    assert frozen >= len(inherited)


@pytest.mark.parametrize("point", list(KILL_POINTS))
def test_kill_9_during_reindex(big_corpus: Path, tmp_path: Path, point: str) -> None:
    index_copy = tmp_path / "index"
    shutil.copytree(big_corpus, index_copy)
    expected = results(index_copy)
    base_names = segment_files(index_copy)
    gen = generation(index_copy)
    proc = subprocess.Popen(
        [sys.executable, "-m", "search", "reindex", "--index", str(index_copy), "--full"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        reached = False
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline:
            new = segment_files(index_copy) - base_names
            if KILL_POINTS[point](new):
                if point == "segmenting":
                    time.sleep(0.3)  # well into pyvi, still before any column is written
                reached = True
                break
            time.sleep(0.002)
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert reached, f"reindex finished (rc {proc.returncode}) before reaching {point}"
    leftovers = segment_files(index_copy) - base_names
    if point == "segmenting":
        assert not any(n.endswith(".col") for n in leftovers), leftovers
    # The previous generation is still the index, and serves exactly what it served.
    assert generation(index_copy) == gen, "the commit won the race: the point was missed"
    assert results(index_copy) == expected
    assert leftovers, "a killed reindex leaves files behind (else this test checks nothing)"

    done = run_cli("reindex", "--index", str(index_copy))
    assert done.returncode == 0, done.stderr
    assert "left by an interrupted reindex" in done.stderr
    assert done.stdout.startswith(f"added 0, updated 0, removed 0, unchanged {BIG_CORPUS}, ")
    assert_clean(index_copy)
    assert results(index_copy) == expected


# --------------------------------------------------------------------------- one writer


def test_second_reindex_waits_then_fails(big_corpus: Path, tmp_path: Path) -> None:
    index_copy = tmp_path / "index"
    shutil.copytree(big_corpus, index_copy)
    expected = results(index_copy)
    gen = generation(index_copy)
    base_names = segment_files(index_copy)
    first = subprocess.Popen(
        [sys.executable, "-m", "search", "reindex", "--index", str(index_copy), "--full"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        # The first holds the lock once its own new segment appears.
        deadline = time.monotonic() + 30
        while not _new_ids(segment_files(index_copy), base_names, ".trm"):
            assert first.poll() is None and time.monotonic() < deadline, "first never started"
            time.sleep(0.01)
        # Paused while the second runs: a full reindex of this corpus can end before a second
        # CLI has started and waited its second for the lock (it takes ~3 s).
        os.killpg(first.pid, signal.SIGSTOP)
        try:
            started = time.monotonic()
            second = run_cli(
                "reindex", "--index", str(index_copy), env={"VNSEARCH_LOCK_TIMEOUT": "1"}
            )
            waited = time.monotonic() - started
        finally:
            os.killpg(first.pid, signal.SIGCONT)
        out, err = first.communicate(timeout=120)
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
            first.communicate()
    assert second.returncode != 0
    assert second.stdout == ""
    assert second.stderr.count("\n") == 1, second.stderr
    assert "another reindex" in second.stderr
    assert second.stderr.startswith("vnsearch: another reindex is writing to ")
    assert 1.0 <= waited < 15
    assert first.returncode == 0, err
    assert out.startswith(f"added 0, updated 0, removed 0, unchanged {BIG_CORPUS}, skipped 0;")
    assert generation(index_copy) == gen + 1
    assert_clean(index_copy)
    assert results(index_copy) == expected


# --------------------------------------------------------------------------- unwritable index


def _snapshot_files(index: Path) -> dict[str, tuple[int, int]]:
    return {p.name: (p.stat().st_size, p.stat().st_mtime_ns) for p in index.iterdir()}


@contextlib.contextmanager
def read_only(directory: Path):
    """Make ``directory`` unwritable: chmod 0555, or ``chattr +i`` as root (root ignores modes).

    Yields the error text the reindex must report.
    """
    if os.geteuid() != 0:
        directory.chmod(0o555)
        try:
            yield "Permission denied"
        finally:
            directory.chmod(0o755)
        return
    if not shutil.which("chattr"):
        pytest.skip("running as root without chattr: cannot make a directory read-only")
    done = subprocess.run(["chattr", "+i", str(directory)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"running as root and chattr +i fails here: {done.stderr.strip()}")
    try:
        yield "Operation not permitted"
    finally:
        subprocess.run(["chattr", "-i", str(directory)], check=True)


def test_read_only_index_directory(corpus, index_copy: Path) -> None:
    """One clear line, non-zero exit, the old index untouched and still searchable."""
    source, _, _ = corpus
    expected = results(index_copy)
    before = _snapshot_files(index_copy)
    with read_only(index_copy) as reason:
        for args in (["reindex"], ["reindex", "--full"], ["reindex", str(source)]):
            done = run_cli(*args, "--index", str(index_copy))
            assert done.returncode == 1, args
            assert done.stdout == ""
            assert done.stderr.splitlines() == [
                f"vnsearch: cannot write the index in {index_copy}: {reason}"
            ], done.stderr
        assert results(index_copy) == expected  # served while read-only, too
    assert _snapshot_files(index_copy) == before
    assert results(index_copy) == expected


def test_index_directory_under_a_file(tmp_path: Path, corpus) -> None:
    source, _, _ = corpus
    a_file = tmp_path / "a-file"
    a_file.write_text("not a directory\n", encoding="utf-8")
    done = run_cli("reindex", "--index", str(a_file / "index"), str(source))
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.splitlines() == [
        f"vnsearch: cannot write the index in {a_file / 'index'}: Not a directory"
    ]
    assert a_file.read_text(encoding="utf-8") == "not a directory\n"


def test_index_files_are_readable_by_other_users(corpus) -> None:
    """The files vnsearch writes beside the index are as readable as Whoosh's own files.

    ``tempfile.mkstemp`` creates 0600 files, and ``os.replace`` kept that mode: a second editor (or
    the web server's user) could not read ``vnsearch.json`` (and was told the index was built by
    another vnsearch version) nor the accent vocabulary.  The generation's shared files
    (``search.store``) are written in a ``mkdtemp`` directory (0700) and renamed into place.
    """
    _, index, _ = corpus
    readable = next(index.glob("_MAIN_*.toc")).stat().st_mode & 0o444
    assert readable == 0o444  # under the usual umasks
    shared = sorted((index / "vnsearch").rglob("*"))
    assert any(p.name == "vocabulary-syllables.blob.npy" for p in shared)
    for path in [index / SOURCES_FILE, index / "vnsearch.json", *shared]:
        assert path.stat().st_mode & 0o444 == readable, path


# --------------------------------------------------------------------------- disk full


def _enospc_on(monkeypatch: pytest.MonkeyPatch, match) -> list[str]:
    """Make Whoosh's file creation fail with ENOSPC for names ``match`` accepts."""
    from whoosh.filedb.filestore import FileStorage

    real = FileStorage.create_file
    hit: list[str] = []

    def create_file(self, name, *args, **kwargs):
        if match(name):
            hit.append(name)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), name)
        return real(self, name, *args, **kwargs)

    monkeypatch.setattr(FileStorage, "create_file", create_file)
    return hit


@pytest.mark.parametrize(
    "where",
    {
        "columns": lambda name: name.endswith(".col"),
        "compound segment": lambda name: name.endswith(".seg"),
        "toc": lambda name: ".toc." in name,
    }.items(),
    ids=lambda item: item[0],
)
def test_disk_full_during_reindex(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where) -> None:
    source = tmp_path / "tin"
    make_corpus(source, 40, seed=3)
    index = tmp_path / "index"
    reindex(index, [source], workers=1)
    expected = results(index)
    before = _snapshot_files(index)
    gen = generation(index)
    rnd = random.Random(5)
    for i in range(5):
        write_article(source, f"extra-{i}.txt", rnd, with_word=True)

    hit = _enospc_on(monkeypatch, where[1])
    runner = CliRunner()
    outcome = runner.invoke(cli, ["reindex", "--index", str(index), "--workers", "1"])
    assert hit, "the simulated disk-full point was never reached"
    assert outcome.exit_code == 1
    assert outcome.stdout == ""
    assert outcome.stderr.splitlines()[-1] == (
        f"vnsearch: cannot write the index in {index}: No space left on device"
    )
    # The previous generation is untouched and searchable; nothing was left behind.
    assert generation(index) == gen
    assert results(index) == expected
    assert set(_snapshot_files(index)) - set(before) == set()
    monkeypatch.undo()
    summary = reindex(index, workers=1)
    assert summary.added == 5
    assert generation(index) == gen + 1
    assert results(index)[WORD]["total"] == expected[WORD]["total"] + 5
    assert_clean(index)


# --------------------------------------------------------------------------- broken documents


def counts(summary: Summary) -> str:
    m = LINE_RE.match(summary.line())
    assert m, summary.line()
    return f"{m['counts']}; {m['docs']} documents"


def test_broken_documents_are_never_fatal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Indexing the 2,000,000 characters kept of a 50 MB file takes ~6 s: a lower cap keeps the
    # same code path (read all, decode, truncate with a warning) fast.
    monkeypatch.setattr(documents, "MAX_TEXT_CHARS", 100_000)
    monkeypatch.setattr(indexer, "REPORTED", 100)  # every skip listed, not only the first 10
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir()
    two.mkdir()
    (one / "good.txt").write_text("Lào Cai mưa lớn\n\nMưa lớn ở Lào Cai.\n", encoding="utf-8")
    (one / "bad-utf8.txt").write_bytes("Tiêu đề\n\nNội dung ".encode() + b"\xff\xfe hong\n")
    (one / "latin1.txt").write_bytes("Café à Hà Nội\n\nnội dung".encode("latin-1", "replace"))
    (one / "empty.txt").write_bytes(b"")
    (one / "blank.txt").write_text("\n   \n\t\n", encoding="utf-8")
    (one / "binary.txt").write_bytes(bytes(range(256)) * 4)
    (one / "bom.txt").write_bytes("\ufeffCó BOM\n\nnội dung có BOM\n".encode())
    (one / "broken.jsonl.gz").write_bytes(gzip.compress(b'{"id": "gz", "body": "x"}\n')[:-8])
    lines = [
        json.dumps({"id": "j-ok", "title": "Đà Nẵng", "body": "Biển Đà Nẵng đông khách."}),
        json.dumps({"id": ["list"], "body": "id is a list"}),
        json.dumps({"id": True, "body": "id is a bool"}),
        json.dumps({"id": "  ", "body": "blank id"}),
        json.dumps({"id": "no-body"}),
        json.dumps({"id": "num-body", "body": 5}),
        json.dumps({"id": "int-title", "title": 7, "body": "x"}),
        json.dumps({"id": "dict-url", "url": {"a": 1}, "body": "x"}),
        json.dumps([1, 2, 3]),
        '{"id": "truncated", "body": "abc',
        json.dumps({"id": 42, "body": "Số nguyên làm id, nội dung có \u0000 NUL và \u202e RTL."}),
        json.dumps({"id": "dup", "title": "Bản cũ", "body": "Bản đầu tiên."}),
        json.dumps({"id": "surrogate", "title": "Lào \ud800 Cai", "body": "mưa"}),
    ]
    raw = "\n".join(lines).encode("utf-8") + b"\n" + b'{"id": "bytes", "body": "\xff"}\n'
    (one / "docs.jsonl").write_bytes(raw)
    (two / "docs.jsonl").write_text(
        json.dumps({"id": "dup", "title": "Bản mới", "body": "Bản thay thế."}) + "\n",
        encoding="utf-8",
    )
    big = tmp_path / "big"
    big.mkdir()
    rnd = random.Random(0)
    paragraph = (" ".join(rnd.choice(SYLLABLES) for _ in range(2000)) + ".\n").encode()
    with (big / "huge.txt").open("wb") as fh:
        fh.write("Một bài rất dài\n\n".encode())
        for _ in range(50 * 1024 * 1024 // len(paragraph) + 1):
            fh.write(paragraph)
    assert (big / "huge.txt").stat().st_size > 50 * 1024 * 1024

    index = tmp_path / "index"
    summary = reindex(index, [one, two, big], workers=1)
    assert counts(summary) == (
        "added 7, updated 0, removed 0, unchanged 0, skipped 16 (2 bad JSON, 1 binary file, "
        "2 empty file, 1 field 'title' must be a string, 1 field 'url' must be a "
        "string, 1 invalid Unicode, 2 missing or invalid 'body', 3 missing or invalid 'id', "
        "1 not a JSON object, 2 not valid UTF-8), id clashes 1 (later source wins), "
        "truncated 1 field, warnings 1, unreadable 1 (their documents kept); 7 documents"
    )
    assert summary.unreadable == [
        f"{one / 'broken.jsonl.gz'}: cannot read after line 1: Compressed file ended before the "
        "end-of-stream marker was reached"
    ]
    assert summary.warnings == [f"{big / 'huge.txt'}: truncated to 100,000 characters"]
    assert any(
        s.startswith(f"{one / 'docs.jsonl'}:14: bad JSON: 'utf-8' codec can't decode")
        for s in summary.skipped
    )
    assert f"{one}: invalid Unicode (lone surrogate in id 'surrogate')" in summary.skipped
    engine = SearchEngine(index)
    try:
        assert engine.document("dup")["title"] == "Bản mới"
        assert engine.document("42")["body"].startswith("Số nguyên làm id")
        assert engine.document("bom.txt")["title"] == "Có BOM"
        assert engine.document("gz")["body"] == "x"  # lines before the corruption are kept
        assert len(engine.document("huge.txt")["body"]) < 100_000
        assert {h["id"] for h in engine.search("lào cai", per_page=100)["hits"]} >= {"good.txt"}
    finally:
        engine.close()
