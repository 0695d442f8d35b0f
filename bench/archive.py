"""A synthetic archive of any size, and what a full build of it costs (issue 14).

    python -m bench.archive --size 150000 [--seed 14] [--workers 2] [--no-build] [--queries 300]

The archive is the 46.7k real articles of ``../shared/data`` (vietnews, then news-baomoi) followed
by synthetic ones made from them, seeded: the title of one real article, the lead of another, and
a body of runs of 1-6 sentences from two or three others, cut to the length of a fourth real
body.  It is written as JSONL.gz shards of 50,000 articles under ``bench/out/archive-<size>-<seed>``
(streamed, reused when present).  Then ``vnsearch reindex --full`` runs on it as a subprocess,
and the table gives the build's time, articles a second, peak memory (PSS) of the whole process
tree (sampled from /proc every 0.2 s: the reindex and its pool workers), the index's size, and the
in-process latency of ``bench.latency``'s title queries on the result.
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

from bench import common
from bench.latency import corpus_sources, dir_bytes, latency_queries, percentiles, time_engine

SHARD = 50_000
_SENTENCE = re.compile(r"(?<=[.!?…])\s+")


def real_articles() -> list[dict]:
    """The real articles (title, lead, body), vietnews first, each id once."""
    from search.documents import Document, read_source

    seen: set[str] = set()
    out = []
    for source in corpus_sources():
        for record in read_source(source):
            if isinstance(record, Document) and record.id not in seen:
                seen.add(record.id)
                out.append({"title": record.title, "lead": record.lead, "body": record.body})
    return out


def synthetic(real: list[dict], sentences: list[list[str]], rng: random.Random) -> dict:
    n = len(real)
    length = len(real[rng.randrange(n)]["body"])
    parts: list[str] = []
    for source in rng.sample(range(n), rng.choice((2, 3))):
        run = sentences[source]
        if run:
            start = rng.randrange(len(run))
            parts.extend(run[start : start + rng.randint(1, 6)])
    body = " ".join(parts)
    while len(body) < length and parts:
        body += " " + rng.choice(parts)
    return {
        "title": real[rng.randrange(n)]["title"],
        "sapo": real[rng.randrange(n)]["lead"],
        "body": body[: max(length, 200)],
    }


def write_archive(size: int, seed: int) -> Path:
    """The archive's directory (written unless a complete one is there)."""
    out = common.OUT / f"archive-{size}-{seed}"
    done = out / ".complete"
    if done.exists():
        return out
    out.mkdir(parents=True, exist_ok=True)
    real = real_articles()
    sentences = [_SENTENCE.split(a["body"]) for a in real]
    rng = random.Random(seed)
    written = 0
    shard = 0
    while written < size:
        path = out / f"shard-{shard:04d}.jsonl.gz"
        with gzip.open(path, "wt", encoding="utf-8", compresslevel=1) as fh:
            for _ in range(min(SHARD, size - written)):
                if written < len(real):
                    doc = {"title": real[written]["title"], "sapo": real[written]["lead"],
                           "body": real[written]["body"]}  # fmt: skip
                else:
                    doc = synthetic(real, sentences, rng)
                doc["id"] = f"a{written}"
                fh.write(json.dumps(doc, ensure_ascii=False) + "\n")
                written += 1
        shard += 1
    done.write_text(str(written))
    return out


def tree_memory(pid: int) -> int:
    """Proportional set size (PSS) of ``pid`` and every process under it, in bytes: pages that
    forked pool workers still share with the reindex count once, not once per process."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parents[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        try:
            rollup = Path(f"/proc/{current}/smaps_rollup").read_text()
            total += int(rollup.split("\nPss:", 1)[1].split()[0]) * 1024
        except (OSError, IndexError, ValueError):
            pass
        todo.extend(p for p, parent in parents.items() if parent == current)
    return total


def build(archive: Path, index: Path, workers: int) -> dict:
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "search", "reindex", "--full", "--index", str(index),
         "--workers", str(workers), str(archive)],
        cwd=common.REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    peak = 0
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, tree_memory(proc.pid))
            time.sleep(0.2)

    sampler = threading.Thread(target=sample)
    sampler.start()
    out, err = proc.communicate()
    stop.set()
    sampler.join()
    if proc.returncode:
        raise SystemExit(f"bench: reindex failed ({proc.returncode}): {err[-2000:]}")
    return {"seconds": time.perf_counter() - started, "peak_tree_rss": peak, "summary": out}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=150_000)
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--no-build", action="store_true", help="only write the archive")
    args = parser.parse_args()

    common.require(common.CORPUS)
    started = time.perf_counter()
    archive = write_archive(args.size, args.seed)
    print(f"archive {archive}: {args.size} articles ({time.perf_counter() - started:.0f} s)")
    if args.no_build:
        return
    index = common.OUT / f"archive-index-{args.size}-{args.seed}"
    result = build(archive, index, args.workers)
    size = dir_bytes(index)
    print(result["summary"].strip())
    print(
        f"full build: {result['seconds']:.0f} s, {args.size / result['seconds']:.0f} articles/s,"
        f" peak PSS of the tree {result['peak_tree_rss'] / 2**30:.2f} GiB, "
        f"index {size / 2**20:.0f} MiB"
    )

    from search.engine import SearchEngine

    engine = SearchEngine(index)
    queries = latency_queries(args.queries)
    engine.search(queries[0].text)
    engine.wait_warm()
    time_engine(engine, queries)  # first pass: load the terms
    ms, _ = time_engine(engine, queries)
    stats = percentiles(ms)
    print(
        f"in-process, {len(queries)} queries (second pass): p50 {stats['p50']:.2f} ms, "
        f"p95 {stats['p95']:.2f} ms"
    )
    engine.close()
    out = common.OUT / f"archive-{args.size}.json"
    out.write_text(json.dumps({**result, "index_bytes": size, "latency": stats}, indent=1))


if __name__ == "__main__":
    main()
