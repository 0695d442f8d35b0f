"""Query latency and index size as the collection grows: 5k, 11.3k and ~46.7k articles.

    python -m bench.scaling [--sizes 5000,11322,all] [--cache-mb MB] [--queries N] [--json F]

The collection of size N is the first N articles of vietnews (11,322) followed by
``../shared/data/news-baomoi/*.jsonl.gz`` in name order (46,661 in all).  Each index is built with
``search.indexer.build_index`` and cached under ``bench/out/latency-vnsearch-<N>-*`` (the 11,322
one is the latency benchmark's); building all 46.7k articles takes a long while on two cores, so
pick sizes with ``--sizes``.  The queries are ``bench.latency``'s (title queries of vietnews in
five typed forms) through ``SearchEngine.search(q, per_page=10)``, after a warm-up.  The
engine's posting cache has the server's default size (sized to the index, unless
``VNSEARCH_CACHE_MB`` is set) unless ``--cache-mb`` says otherwise; the table shows it.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from bench import common
from bench.latency import (
    dir_bytes,
    latency_queries,
    load_documents,
    percentiles,
    print_table,
    run_recorded,
    time_engine,
    vnsearch_index,
)

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
    args = parser.parse_args(argv)
    common.require(common.CORPUS)
    common.require(common.QUERIES)
    return run_recorded("scaling", lambda: run(args), argv, args.json, "scaling.json")


if __name__ == "__main__":
    sys.exit(main())
