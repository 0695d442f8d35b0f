"""Shared plumbing for the benchmarks: where the data is, how it is read, split and sampled.

The data lives beside the checkout in ``../shared`` (read-only, third-party text); nothing from it
is ever copied into the repository.  Built indexes are cached under ``bench/out/`` (git-ignored),
keyed by a fingerprint of the system's code and the corpus.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import math
import shutil
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
OUT = REPO / "bench" / "out"
VIETNEWS = SHARED / "data" / "vietnews"
CORPUS = VIETNEWS / "corpus.jsonl.gz"
QUERIES = VIETNEWS / "dev-queries.jsonl.gz"
UD_TEST = SHARED / "data" / "ud-vi-vtb" / "vi_vtb-ud-test.ws.jsonl"

TUNE_PERCENT = 30  # doc-id hash buckets 0..29 are "tune" (--split dev), the rest "report" (test)
SPLITS = ("dev", "test", "all")
BUILT_MARKER = "BUILT"


@dataclass(frozen=True)
class BenchDoc:
    """One evaluation document: ``lead`` is the article's abstract."""

    id: str
    title: str
    lead: str
    body: str


@dataclass(frozen=True)
class Query:
    """One known-item query: ``qid`` is ``<doc id>#title`` or ``<doc id>#abstract``."""

    qid: str
    text: str
    query_type: str
    relevant_ids: tuple[str, ...]


def require(path: Path) -> Path:
    """Return ``path``, or exit with a clear message when the shared data is not there."""
    if not path.exists():
        sys.exit(
            f"bench: {path} not found. The benchmarks read the shared data from ../shared beside "
            f"the checkout ({SHARED}); make it available there and retry."
        )
    return path


def read_jsonl(path: Path) -> Iterator[dict]:
    """Yield one JSON object per line of a ``.jsonl`` or ``.jsonl.gz`` file."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(require(path), "rt", encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                yield json.loads(line)


def load_corpus(limit: int | None = None) -> list[BenchDoc]:
    """The vietnews corpus in file order, the first ``limit`` documents when given (0/None: all)."""
    docs: list[BenchDoc] = []
    for row in read_jsonl(CORPUS):
        if limit and len(docs) >= limit:
            break
        docs.append(
            BenchDoc(id=row["id"], title=row["title"], lead=row["abstract"], body=row["body"])
        )
    return docs


def load_queries() -> list[Query]:
    """Every known-item query in file order."""
    return [
        Query(
            qid=row["qid"],
            text=row["query"],
            query_type=row["query_type"],
            relevant_ids=tuple(row["relevant_ids"]),
        )
        for row in read_jsonl(QUERIES)
    ]


def stable_hash(text: str) -> int:
    """A process-independent 64-bit hash (Python's ``hash`` is salted per process)."""
    return int.from_bytes(hashlib.sha1(text.encode("utf-8")).digest()[:8], "big")


def split_of(doc_id: str) -> str:
    """``"dev"`` (the 30 % tune split) or ``"test"`` (the 70 % report split), from the doc id."""
    return "dev" if stable_hash(doc_id) % 100 < TUNE_PERCENT else "test"


def in_split(doc_id: str, split: str) -> bool:
    """True when ``doc_id`` belongs to ``split`` (``dev``, ``test`` or ``all``)."""
    return split == "all" or split_of(doc_id) == split


def sample(queries: list[Query], limit: int, salt: str = "sample") -> list[Query]:
    """A deterministic sample of ``limit`` queries (``0``: all), in a stable hashed order."""
    ordered = sorted(queries, key=lambda q: stable_hash(f"{salt}:{q.qid}"))
    return ordered if limit <= 0 else ordered[:limit]


def without_title(docs: Iterable[BenchDoc]) -> list[BenchDoc]:
    """Index A, for title queries: each article with its title removed."""
    return [BenchDoc(id=d.id, title="", lead=d.lead, body=d.body) for d in docs]


def without_abstract(docs: Iterable[BenchDoc]) -> list[BenchDoc]:
    """Index B, for abstract queries: each article with its abstract removed."""
    return [BenchDoc(id=d.id, title=d.title, lead="", body=d.body) for d in docs]


def file_fingerprint(path: Path) -> str:
    """Cheap identity of a data file: name, size and modification time."""
    stat = require(path).stat()
    return f"{path.name}:{stat.st_size}:{int(stat.st_mtime)}"


def source_fingerprint(paths: Iterable[Path]) -> str:
    """A hash of the contents of source files (a change in the code means a new index)."""
    digest = hashlib.sha1()
    for path in sorted(paths):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def cached_index(
    name: str,
    fingerprint: str,
    build: Callable[[Path], None],
    *,
    rebuild: bool = False,
) -> Path:
    """Return ``bench/out/<name>-<fingerprint>``, building it with ``build(dirpath)`` if needed.

    A directory counts as built only once ``build`` returned (a marker file is written last), so
    an interrupted build is redone on the next run.  A finished build removes the stale
    ``<name>-*`` directories (older fingerprints of the same index).
    """
    key = hashlib.sha1(fingerprint.encode()).hexdigest()[:12]
    dirpath = OUT / f"{name}-{key}"
    if (dirpath / BUILT_MARKER).exists() and not rebuild:
        return dirpath
    if dirpath.exists():  # an interrupted build of this very index
        shutil.rmtree(dirpath)
    dirpath.mkdir(parents=True)
    build(dirpath)  # may refuse (bench.tune builds nothing): older builds are kept until it works
    for stale in OUT.glob(f"{name}-*"):
        if stale != dirpath and stale.is_dir() and stale.name[len(name) + 1 :].isalnum():
            shutil.rmtree(stale)
    (dirpath / BUILT_MARKER).write_text(fingerprint + "\n", encoding="utf-8")
    return dirpath


# -- memory of a process tree -------------------------------------------------------------------


def _proc_field(text: str, key: str) -> int:
    """A ``kB`` field of /proc/<pid>/status or smaps_rollup, in bytes (0 when absent)."""
    for line in text.splitlines():
        if line.startswith(key):
            return int(line.split()[1]) * 1024
    return 0


def process_tree(root: int) -> list[int]:
    """``root`` and every process under it, from /proc."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        parent = int(text.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(stat.parent.name))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


def tree_memory(root: int, pss: bool = True) -> dict[int, tuple[int, int]]:
    """pid -> (RSS, PSS) in bytes of ``root`` and its descendants (a process that ends meanwhile
    is left out; PSS 0 without ``pss``).  RSS counts pages forked workers share with their
    parent once per process; PSS splits them between the sharers, so PSS sums to what the tree
    really holds."""
    out = {}
    for pid in process_tree(root):
        try:
            rss = _proc_field(Path(f"/proc/{pid}/status").read_text(), "VmRSS:")
            rollup = Path(f"/proc/{pid}/smaps_rollup").read_text() if pss else "Pss: 0 kB"
        except OSError:
            continue
        out[pid] = (rss, _proc_field(rollup, "Pss:"))
    return out


class TreeMemory:
    """Samples the memory of a process tree from /proc every ``interval`` seconds, in a thread,
    until ``stop``: the peaks of the summed RSS and PSS, the root's own peak RSS and the largest
    peak RSS of any descendant (a pool worker).

    RSS is read every time (``/proc/PID/status``); PSS when the tree's RSS has passed the one of
    the last PSS reading by ``PSS_GROWTH``, and every ``PSS_EVERY`` seconds: the kernel walks
    every page of a process for ``smaps_rollup``, and reading it for a 1M build's three
    processes five times a second took 16 % of a core for the whole build (8 % of the machine
    the build measures)."""

    PSS_GROWTH = 1.02
    PSS_EVERY = 5.0

    def __init__(self, root: int, interval: float = 0.2) -> None:
        self.root, self.interval = root, interval
        self.peak_rss = self.peak_pss = self.root_rss = self.child_rss = 0
        self.samples = self.pss_samples = 0
        self._pss_at, self._pss_rss = -math.inf, 0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tree-memory", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._done.is_set():
            self.sample()
            self._done.wait(self.interval)

    def sample(self) -> None:
        memory = tree_memory(self.root, pss=False)
        if not memory:
            return
        self.samples += 1
        rss = sum(rss for rss, _ in memory.values())
        now = time.monotonic()
        if rss > self.PSS_GROWTH * self._pss_rss or now - self._pss_at >= self.PSS_EVERY:
            memory = tree_memory(self.root) or memory
            rss = sum(rss for rss, _ in memory.values())
            self._pss_at, self._pss_rss = now, rss
            self.pss_samples += 1
            self.peak_pss = max(self.peak_pss, sum(pss for _, pss in memory.values()))
        self.peak_rss = max(self.peak_rss, rss)
        self.root_rss = max(self.root_rss, memory.get(self.root, (0, 0))[0])
        children = [rss for pid, (rss, _) in memory.items() if pid != self.root]
        self.child_rss = max([self.child_rss, *children])

    def stop(self) -> dict[str, int]:
        self._done.set()
        self._thread.join()
        return {
            "peak_tree_rss": self.peak_rss,
            "peak_tree_pss": self.peak_pss,
            "peak_main_rss": self.root_rss,
            "peak_worker_rss": self.child_rss,
            "samples": self.samples,
            "pss_samples": self.pss_samples,
        }
