"""Query latency, index size and full builds as the collection grows (and synthetic archives).

Sizes: 5k, 11.3k and ~46.7k real articles; synthetic archives of any size with ``--archive``.

    python -m bench.scaling [--sizes 5000,11322,all] [--cache-mb MB] [--queries N] [--json F]
    python -m bench.scaling --archive 150000,300000,1000000 [--seed 14] [--workers 2]
                            [--code DIR] [--collect] [--queries N] [--json F] [--tail-runs N]

The collection of size N is the first N articles of vietnews (11,322) followed by
``../shared/data/news-baomoi/*.jsonl.gz`` in name order (46,661 in all).  Each index is built with
``search.indexer.build_index`` and cached under ``bench/out/latency-vnsearch-<N>-*`` (the 11,322
one is the latency benchmark's); building all 46.7k articles takes a long while on two cores, so
pick sizes with ``--sizes``.  The queries are ``bench.latency``'s (title queries of vietnews in
five typed forms) through ``SearchEngine.search(q, per_page=10)``, after a warm-up.  The
engine's posting cache has the server's default size (sized to the index, unless
``VNSEARCH_CACHE_MB`` is set) unless ``--cache-mb`` says otherwise; the table shows it.

``--archive`` builds archives instead: the 46.7k real articles followed by synthetic ones made
from them, seeded (``bench.archive``: the title of one real article, the lead of another, a body
of sentence runs from two or three others cut to a real body's length), written as JSONL.gz
shards under ``bench/out/archive-<size>-<seed>`` (streamed, reused when complete).  Each is
indexed by ``vnsearch reindex --full`` in a subprocess (the checkout ``--code`` names, this one by
default: a before/after comparison), while /proc is sampled every 0.2 s for the whole process
tree (the reindex and its pool workers): peak summed RSS, peak summed PSS (pages forked workers
share counted once), the reindex's own peak and the largest worker's.  Then the index's size and
segments, a fresh engine's opening and first search, the index served by gunicorn as in
production (2 workers on 127.0.0.1, this checkout's code; ``--http-requests`` title queries from
4 clients after a warm-up, as ``bench.latency --http`` sends them: req/s, p50 / p95, errors, then
each worker's private and shared memory from ``/proc/PID/smaps_rollup``; ``--http-requests 0``
skips it; ``--http-rounds`` times, each with a fresh gunicorn, the round of median req/s shown),
the in-process latency of the queries above, and an incremental run adding 100 new
and 100 changed articles as a later source (its time, memory, a fresh engine's first search
after it, and the engine that served the queries switching to it as a server's worker does: the
seconds until the new generation is warm, then the same queries on it).  ``--tail-runs N`` then
makes N more such runs (each its own new and changed articles) and serves the index over HTTP
again, one round: an archive reindexed daily serves most days with a dozen small segments or
more after its base, which the merge policy lets stand.  ``--collect`` also
measures what the first reading of the archive holds (``indexer._scan``: each id's winning copy;
older code held every document until the build ended), in a process of its own.
"""

from __future__ import annotations

import argparse
import itertools
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

from bench import common
from bench.latency import (
    Gunicorn,
    api_path,
    dir_bytes,
    drive,
    drive_workers,
    latency_queries,
    load_documents,
    percentiles,
    print_table,
    run_recorded,
    time_engine,
    vnsearch_index,
)
from search.config import load_settings
from search.malloc import keep_freed_memory

DEFAULT_SIZES = "5000,11322,all"


def parse_sizes(text: str) -> list[int]:
    """``"5000,11322,all"`` -> sizes (``all`` = every article; sizes above it are clamped)."""
    sizes: list[int] = []
    for part in text.split(","):
        part = part.strip().lower()
        if not part:
            continue
        size = 0 if part == "all" else int(part)
        if size < 0:
            raise SystemExit(f"bench.scaling: bad size {part!r}")
        sizes.append(size)
    return sizes


def run(args: argparse.Namespace) -> dict:
    from search.engine import SearchEngine

    wanted = parse_sizes(args.sizes)
    limit = None if 0 in wanted else max(wanted)
    started = time.perf_counter()
    docs = load_documents(limit)
    print(f"{len(docs)} articles loaded in {time.perf_counter() - started:.1f} s", flush=True)
    sizes = sorted({min(s, len(docs)) if s else len(docs) for s in wanted})
    queries = latency_queries(args.queries)
    warmup = latency_queries(args.warmup, salt="warmup") if args.warmup else []
    rows, out = [], []
    for size in sizes:
        print(f"index of {size} articles ...", flush=True)
        index_dir, build_s = vnsearch_index(size, rebuild=args.rebuild, docs=docs[:size])
        engine = SearchEngine(index_dir, cache_mb=args.cache_mb)
        opened = time.perf_counter()
        engine.health()
        open_ms = (time.perf_counter() - opened) * 1000
        cache_mb = engine.snapshot().cache_bytes / 2**20
        engine.wait_warm()  # as bench.latency: a running worker has loaded its frequent terms
        warm_ms = (time.perf_counter() - opened) * 1000 - open_ms
        time_engine(engine, warmup)
        ms, refused = time_engine(engine, queries)
        engine.close()
        stats = percentiles(ms)
        size_mb = dir_bytes(index_dir) / 1e6
        entry = {
            "docs": size,
            "index_dir": str(index_dir),
            "index_mb": round(size_mb, 1),
            "build_s": round(build_s, 1) if build_s else None,
            "open_ms": round(open_ms, 1),
            "warm_ms": round(warm_ms, 1),
            "cache_mb": round(cache_mb, 1),
            "refused": refused,
            "ms": stats,
        }
        out.append(entry)
        rows.append(
            [
                str(size),
                f"{size_mb:.1f}",
                f"{build_s:.0f}" if build_s else "cached",
                f"{open_ms:.0f}",
                f"{warm_ms:.0f}",
                f"{cache_mb:.0f}",
                f"{stats['p50']:.2f}",
                f"{stats['p95']:.2f}",
                f"{stats['p99']:.2f}",
            ]
        )
        print(
            f"  p50 {stats['p50']:.2f} ms, p95 {stats['p95']:.2f} ms, index {size_mb:.1f} MB",
            flush=True,
        )
    print_table(
        f"Scaling: SearchEngine.search(q, per_page=10), {len(queries)} queries "
        f"({args.warmup} warm-up first)",
        rows,
        [
            "docs",
            "index MB",
            "build s",
            "open ms",
            "warm ms",
            "cache MiB",
            "p50 ms",
            "p95 ms",
            "p99 ms",
        ],
    )
    return {
        "queries": len(queries),
        "warmup": len(warmup),
        "cache_mb_given": args.cache_mb,
        "sizes": out,
    }


def build_archive_index(
    archive: Path, index: Path, workers: int, code: Path, full: bool = True
) -> dict:
    """``vnsearch reindex --full`` of ``archive`` into ``index`` with ``code``'s vnsearch (or,
    not ``full``, an incremental run that adds ``archive`` as a source), its process tree's
    memory sampled."""
    command = [sys.executable, "-m", "search", "reindex", "--index", str(index)]
    command += ["--full"] if full else []
    command += ["--workers", str(workers), str(archive)]
    started = time.perf_counter()
    proc = subprocess.Popen(
        command, cwd=code, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    sampler = common.TreeMemory(proc.pid)
    out, err = proc.communicate()
    memory = sampler.stop()
    if proc.returncode:
        raise SystemExit(f"bench.scaling: reindex failed ({proc.returncode}): {err[-2000:]}")
    return {"seconds": time.perf_counter() - started, "summary": out.strip(), **memory}


def write_updates(
    archive: Path, directory: Path, new: int = 100, changed: int = 100, run: int = 0
) -> Path:
    """A source of ``new`` articles with ids the archive lacks and ``changed`` with ids it holds
    (the first shard's first ones, another text): added as a later source, they are an
    incremental run of ``new`` added and ``changed`` updated articles.  ``run``: the how-manyth
    such run (from 0); each adds a file of its own to ``directory``, with new ids and changed
    articles of its own (the first shard's next ones)."""
    import gzip

    shards = sorted(archive.glob("shard-*.jsonl.gz"))
    size = new + changed
    with gzip.open(shards[0], "rt", encoding="utf-8") as fh:
        first = [json.loads(line) for line in itertools.islice(fh, run * size, (run + 1) * size)]
    directory.mkdir(parents=True, exist_ok=True)
    lines = []
    for i, doc in enumerate(first):
        other = first[(i + 1) % len(first)]
        new_id = f"update-{i}" if not run else f"update-{run}-{i}"
        doc_id = new_id if i < new else doc["id"]
        lines.append({"id": doc_id, "title": other["title"], "sapo": doc.get("sapo", ""),
                      "body": other["body"] + " Cập nhật."})  # fmt: skip
    text = "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines)
    name = "updates.jsonl" if not run else f"updates-{run:03d}.jsonl"
    (directory / name).write_text(text, encoding="utf-8")
    return directory


def tail_runs(
    index: Path, archive: Path, updates: Path, runs: int, workers: int, code: Path, requests: int
) -> dict:
    """``runs`` more incremental runs of 100 new + 100 changed articles after the first, as an
    archive reindexed every day gathers small segments (the merge policy lets a dozen or two
    stand), then the HTTP phase again (one round): what a server serves in between merges.
    Each run's seconds (the process's start included), the segments then, and the round."""
    seconds = []
    for run in range(1, runs + 1):
        write_updates(archive, updates, run=run)
        done = build_archive_index(updates, index, workers, code, full=False)
        seconds.append(round(done["seconds"], 2))
    out: dict = {"runs": runs, "seconds": seconds, "segments": segment_count(index)}
    if requests:
        out["http"] = serve(index, requests, 1)
    return out


def first_search_ms(index: Path, query: str = "giá vàng hôm nay") -> dict:
    """A fresh engine on ``index`` (as a new worker opens it): its opening and its first
    search, before any warming has finished.

    The compiled loops are loaded first and timed apart (``kernels_ms``): a server's worker
    loads them when it boots, before it opens an index (``web.server``), and a checkout's
    first process compiles them (~3.5 s, more in a slow hour): stop 55's run counted 16 s of
    that as opening a 1M index, which then opened in 0.11 s (1.2 s with the loops loaded from
    numba's cache)."""
    from search import kernels
    from search.engine import SearchEngine

    loading = time.perf_counter()
    kernels.compiled()
    started = time.perf_counter()
    engine = SearchEngine(index)
    engine.health()
    opened = time.perf_counter()
    engine.search(query)
    done = time.perf_counter()
    engine.close()
    return {
        "kernels_ms": (started - loading) * 1000,
        "open_ms": (opened - started) * 1000,
        "first_search_ms": (done - opened) * 1000,
    }


COLLECT = """
import sys, time
from pathlib import Path
from search.indexer import Summary
try:  # what the first reading of the sources keeps (each id's winning copy, not its text)
    from search.indexer import _scan
    read = lambda: _scan([sys.argv[1]], Summary(), False, {}, True).copies
except ImportError:  # older code: every document
    from search.indexer import _collect
    read = lambda: _collect([sys.argv[1]], Summary())[0]
def rss():
    return int(Path("/proc/self/status").read_text().split("VmRSS:")[1].split()[0]) * 1024
before = rss()
started = time.perf_counter()
held = read()
print(len(held), rss() - before, time.perf_counter() - started)
"""


def collect_memory(archive: Path, code: Path) -> dict:
    """What reading ``archive`` before writing holds (``indexer._scan`` of a full build, or the
    documents older code's ``_collect`` held): the memory it takes (RSS after reading, less
    before), in a process of its own."""
    done = subprocess.run(
        [sys.executable, "-c", COLLECT, str(archive)],
        cwd=code, capture_output=True, text=True, check=True,
    )  # fmt: skip
    count, held, seconds = done.stdout.split()
    return {"documents": int(count), "bytes": int(held), "seconds": round(float(seconds), 1)}


# Clients of the HTTP phase: the serving setup (2 workers, 4 clients).
HTTP_CLIENTS = 4


def serve(index: Path, requests: int, rounds: int = 1) -> dict:
    """``index`` served by gunicorn (2 workers): ``requests`` title queries from
    ``HTTP_CLIENTS`` clients after a warm-up of 100 with 2 (the queries and the warm-up of
    ``bench.latency --http``), then each worker's memory in MB (``bench.memory.smaps``: private
    is the worker's own, shared what the page cache and the other worker share) and its CPU seconds
    during the queries (``worker_cpu_s``: whether the workers shared them).

    ``rounds`` times, each with a fresh gunicorn (fresh workers see each query for the first
    time, as in one round): the same code gave 158 to 190 req/s in rounds of one hour on the
    2-core machine of the README, so one round says little about a change of a few percent.
    The round of median req/s is returned, with every round's req/s (``rounds_rps``) and the
    errors of all of them (``errors_all``)."""
    from bench.memory import smaps

    warm = [api_path(q.text) for q in latency_queries(100, salt="warmup")]
    paths = [api_path(q.text) for q in latency_queries(requests, salt=f"http-{HTTP_CLIENTS}")]
    results = []
    for _ in range(max(1, rounds)):
        with Gunicorn(index, workers=2) as server:
            drive(server.port, warm, 2, len(warm), 60)
            result = drive_workers(server, paths, HTTP_CLIENTS, requests, 600)
            result["workers"] = {str(pid): smaps(pid) for pid in server.worker_pids()}
        results.append(result)
    chosen = sorted(results, key=lambda r: r["rps"])[(len(results) - 1) // 2]
    chosen["rounds_rps"] = [round(r["rps"], 1) for r in results]
    chosen["errors_all"] = sum(r["errors"] for r in results)
    return chosen


def segment_count(index: Path) -> int:
    from whoosh import index as whoosh_index

    return len(whoosh_index.open_dir(str(index)).reader().leaf_readers())


def run_archives(args: argparse.Namespace) -> dict:
    """Build and query each archive size of ``--archive`` (see the module docstring)."""
    from bench.archive import write_archive
    from search.engine import SearchEngine

    queries = latency_queries(args.queries)
    warmup = latency_queries(args.warmup, salt="warmup") if args.warmup else []
    code = (args.code or common.REPO).resolve()
    rows, out = [], []
    for size in parse_sizes(args.archive):
        started = time.perf_counter()
        archive = write_archive(size, args.seed)
        print(f"archive {archive} ({time.perf_counter() - started:.0f} s)", flush=True)
        entry: dict = {"docs": size, "archive": str(archive), "code": str(code)}
        if args.collect:
            entry["collect"] = collect_memory(archive, code)
            held = entry["collect"]["bytes"] / 2**30
            print(f"  reading the archive holds {held:.2f} GiB", flush=True)
        index = common.OUT / f"scaling-index-{size}-{args.seed}"
        shutil.rmtree(index, ignore_errors=True)  # a fresh index: no older generation's files
        build = build_archive_index(archive, index, args.workers, code)
        print(f"  {build['summary']}", flush=True)
        segments = sum(p.stat().st_size for p in index.glob("*.seg"))
        entry.update(build=build, index_bytes=dir_bytes(index), segment_bytes=segments)
        entry["segments"] = segment_count(index)
        entry["fresh"] = first_search_ms(index)
        print(f"  fresh engine: {json.dumps(entry['fresh'])}", flush=True)
        if args.http_requests:
            http = entry["http"] = serve(index, args.http_requests, args.http_rounds)
            print(f"  HTTP: {json.dumps(http)}", flush=True)
        # A server's worker: it keeps serving a generation until the next one is warm.
        engine = SearchEngine(index, cache_mb=args.cache_mb, switch_when_warm=True)
        try:
            engine.health()
            engine.wait_warm()
            time_engine(engine, warmup)
            ms, refused = time_engine(engine, queries)
            stats = percentiles(ms)
            entry.update(ms=stats, refused=refused)
            updates = common.OUT / f"scaling-updates-{size}-{args.seed}"
            shutil.rmtree(updates, ignore_errors=True)  # no run's files of an earlier benchmark
            write_updates(archive, updates)
            incremental = build_archive_index(updates, index, args.workers, code, full=False)
            incremental["after"] = first_search_ms(index)
            # The worker that served the queries: its switch to the new generation (opening
            # it, warming it while it goes on serving the old one), then the same queries.
            started = time.perf_counter()
            engine.snapshot()
            engine.wait_warm()
            incremental["switch_s"] = round(time.perf_counter() - started, 2)
            after_ms, _ = time_engine(engine, queries)
            incremental["after_switch_ms"] = percentiles(after_ms)
        finally:
            engine.close()
        entry["incremental"] = incremental
        print(f"  incremental: {json.dumps(entry['incremental'])}", flush=True)
        if args.tail_runs:
            entry["tail"] = tail_runs(
                index, archive, updates, args.tail_runs, args.workers, code, args.http_requests
            )
            print(f"  after {args.tail_runs} more runs: {json.dumps(entry['tail'])}", flush=True)
        out.append(entry)
        gib = 2**30
        rows.append(
            [
                str(size),
                f"{build['seconds']:.0f}",
                f"{size / build['seconds']:.0f}",
                f"{build['peak_tree_rss'] / gib:.2f}",
                f"{build['peak_tree_pss'] / gib:.2f}",
                f"{build['peak_main_rss'] / gib:.2f}",
                f"{build['peak_worker_rss'] / gib:.2f}",
                f"{entry['index_bytes'] / 2**20:.0f}",
                f"{entry['segment_bytes'] / 2**20:.0f}",
                str(entry["segments"]),
                f"{stats['p50']:.2f}",
                f"{stats['p95']:.2f}",
                *_http_cells(entry.get("http")),
            ]
        )
        print(f"  {json.dumps(rows[-1])}", flush=True)
    print_table(
        f"Full builds (reindex --full, {args.workers} workers; code {code}); latency: "
        f"{len(queries)} queries ({len(warmup)} warm-up first)",
        rows,
        [
            "docs",
            "build s",
            "docs/s",
            "tree RSS GiB",
            "tree PSS GiB",
            "main GiB",
            "worker GiB",
            "index MiB",
            "segs MiB",
            "segments",
            "p50 ms",
            "p95 ms",
            "HTTP req/s",
            "HTTP p95",
            "errors",
            "private MB",
            "shared MB",
        ],
    )
    return {"queries": len(queries), "warmup": len(warmup), "archives": out}


def _http_cells(http: dict | None) -> list[str]:
    """The HTTP phase's cells: req/s (the median round's, with the range of the rounds), its
    p95, the errors of every round, and the larger worker's private
    (``Private_Dirty``) and shared (``Shared_Clean`` + ``Shared_Dirty``) memory."""
    if not http:
        return ["-"] * 5
    workers = list(http["workers"].values())
    private = max((w.get("Private_Dirty", 0.0) for w in workers), default=0.0)
    shared = max(
        (w.get("Shared_Clean", 0.0) + w.get("Shared_Dirty", 0.0) for w in workers), default=0.0
    )
    rounds = http.get("rounds_rps") or [http["rps"]]
    spread = f" ({min(rounds):.0f}-{max(rounds):.0f})" if len(rounds) > 1 else ""
    return [
        f"{http['rps']:.1f}{spread}",
        f"{http['ms']['p95']:.1f}",
        str(http.get("errors_all", http["errors"])),
        f"{private:.0f}",
        f"{shared:.0f}",
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.scaling", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--sizes",
        default=DEFAULT_SIZES,
        help="comma-separated collection sizes; 'all' = every article",
    )
    parser.add_argument(
        "--cache-mb",
        type=int,
        help="the engine's posting cache in MiB (default: the server's, sized to the index)",
    )
    parser.add_argument("--queries", type=int, default=1000, help="queries per size")
    parser.add_argument("--warmup", type=int, default=50, help="warm-up queries (not counted)")
    parser.add_argument("--rebuild", action="store_true", help="rebuild the cached indexes")
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument(
        "--archive", help="build synthetic archives of these sizes (comma-separated) instead"
    )
    parser.add_argument("--seed", type=int, default=14, help="the synthetic archive's seed")
    parser.add_argument("--workers", type=int, default=2, help="reindex --workers")
    parser.add_argument(
        "--http-requests",
        type=int,
        default=1000,
        help="--archive: requests to gunicorn (2 workers, 4 clients); 0 skips the HTTP phase",
    )
    parser.add_argument(
        "--http-rounds",
        type=int,
        default=3,
        help="--archive: HTTP rounds, each with a fresh gunicorn (the median one is shown)",
    )
    parser.add_argument("--code", type=Path, help="checkout whose vnsearch builds (default: this)")
    parser.add_argument(
        "--tail-runs",
        type=int,
        default=0,
        help="--archive: this many more incremental runs after the first, then HTTP again",
    )
    parser.add_argument(
        "--collect",
        action="store_true",
        help="also measure what the first reading of the archive holds",
    )
    args = parser.parse_args(argv)
    # In process as in a server's workers (``SearchEngine.from_settings``).
    keep_freed_memory(load_settings().malloc_keep_mb)
    common.require(common.CORPUS)
    common.require(common.QUERIES)
    if args.archive:
        return run_recorded(
            "scaling", lambda: run_archives(args), argv, args.json, "scaling-archive.json"
        )
    return run_recorded("scaling", lambda: run(args), argv, args.json, "scaling.json")


if __name__ == "__main__":
    sys.exit(main())
