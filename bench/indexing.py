"""Indexing speed and size of vnsearch, against pyvi alone and the straightforward Whoosh version.

    python -m bench.indexing [--docs N] [--workers N] [--floor-docs N] [--reference-docs N]
                             [--json F]

1. Full reindex of ``../shared/data/vietnews/corpus.jsonl.gz`` (11,322 articles) as a source:
   ``search.indexer.reindex(tmp, [corpus], full=True)``: wall time, docs/s, MB/s of raw text (UTF-8
   bytes of title + lead + body), index size on disk against the raw text, CPU seconds, and peak
   RSS: ``ru_maxrss`` of this process and of its largest child (``RUSAGE_CHILDREN``), plus the
   peak of the summed ``VmRSS`` of the whole process tree, sampled every 0.1 s.
2. The segmentation floor, pyvi alone: ``search.segmentation.word_starts_crfsuite`` (pyvi's
   features through pyvi's own crfsuite tagger) over the ``search.analysis.pieces`` of every
   title, lead and body (exactly what the indexer segments), on one core and split over
   ``--workers`` processes (``ProcessPoolExecutor``; the floor is the slowest worker's
   segmentation time, pyvi's model load and the tokenising excluded).  On one core, the same
   tokens also go through ``word_starts``, the decoder the indexer uses (same labels, faster);
   segmentation's share of indexing is that decoder's one-core CPU time over the reindex's CPU
   time (this process + its children).
3. The straightforward reference (``bench.reference.StraightforwardIndex.build``: pyvi
   ``ViTokenizer.tokenize`` + Whoosh's ``StandardAnalyzer``, one process) on the first
   ``--reference-docs`` documents (default 2,000), extrapolated to the whole corpus.
4. Incremental: a copy of the index, a temporary ``.jsonl`` holding 100 new articles (the first
   100 of news-baomoi) and 100 corpus articles with changed bodies, ``reindex(copy, [that file])``
   timed, while a thread searches the same index every ``--search-interval`` seconds (count,
   errors, generations seen; a thread in the same process, so paced to leave the GIL free), and
   the new and changed articles are searched for after the commit.

Goals (printed, not fatal): >= 3x the reference's docs/s, full reindex within 1.5x of the parallel
segmentation floor, the incremental run of 200 changes <= 5 s, index <= 3x the raw text.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import resource
import shutil
import sys
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from bench import common
from bench.latency import (
    BAOMOI,
    dir_bytes,
    load_documents,
    percentiles,
    raw_bytes,
    report_goals,
    rss_mb,
    run_recorded,
)

GOALS = {"reference_speedup": 3.0, "floor_ratio": 1.5, "incremental_s": 5.0, "size_ratio": 3.0}
CHANGES = 100
PARTS = ("title", "lead", "body")


# -- process tree RSS --------------------------------------------------------------------------


def _children_map() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        tree.setdefault(ppid, []).append(int(entry.name))
    return tree


def tree_rss_mb(root: int) -> float:
    """Summed ``VmRSS`` of ``root`` and all its descendants, in MB."""
    tree = _children_map()
    total, stack = 0.0, [root]
    while stack:
        pid = stack.pop()
        total += rss_mb(pid) or 0.0
        stack.extend(tree.get(pid, []))
    return total


class TreeSampler:
    """Samples the summed RSS of this process tree every ``interval`` seconds (context manager)."""

    def __init__(self, interval: float = 0.1) -> None:
        self.interval = interval
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, tree_rss_mb(os.getpid()))
            self._stop.wait(self.interval)

    def __enter__(self) -> TreeSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def _cpu(usage: resource.struct_rusage) -> float:
    return usage.ru_utime + usage.ru_stime


# -- segmentation floor ------------------------------------------------------------------------


def _texts(doc) -> list[str]:
    return [t for t in (getattr(doc, part) for part in PARTS) if t]


def segment_chunk(texts: list[str], decoder: str = "crfsuite") -> tuple[float, float, int]:
    """(tokenising seconds, segmentation seconds, tokens) for ``texts``, the model loaded first.

    ``decoder``: ``"crfsuite"`` is pyvi's own tagger (``word_starts_crfsuite``), ``"vnsearch"``
    the decoder the indexer uses (``word_starts``).
    """
    from search import segmentation
    from search.analysis import pieces

    segmentation._model()
    if decoder == "crfsuite":
        segmenter = segmentation.word_starts_crfsuite
    else:
        segmentation._decoder()
        segmenter = segmentation.word_starts
    tokenize_s = segment_s = 0.0
    tokens = 0
    for text in texts:
        t0 = time.perf_counter()
        words = [p.text for p in pieces(text)]
        t1 = time.perf_counter()
        segmenter(words)
        t2 = time.perf_counter()
        tokenize_s += t1 - t0
        segment_s += t2 - t1
        tokens += len(words)
    return tokenize_s, segment_s, tokens


def split_even(texts: list[str], parts: int) -> list[list[str]]:
    """``texts`` in ``parts`` chunks of about the same number of characters (order kept)."""
    total = sum(len(t) for t in texts)
    chunks: list[list[str]] = [[] for _ in range(parts)]
    done = 0
    for text in texts:
        index = min(parts - 1, done * parts // max(total, 1))
        chunks[index].append(text)
        done += len(text)
    return [c for c in chunks if c]


def segmentation_floor(docs: list, workers: int, floor_docs: int) -> dict:
    """pyvi's segmentation of the corpus alone: one core, and ``workers`` processes; and the
    indexer's decoder on one core."""
    texts = [t for d in docs for t in _texts(d)]
    one = [t for d in (docs[:floor_docs] if floor_docs else docs) for t in _texts(d)]
    tok_s, seg_s, tokens = segment_chunk(one, "crfsuite")
    _, ours_s, _ = segment_chunk(one, "vnsearch")
    scale = sum(len(t) for t in texts) / max(1, sum(len(t) for t in one))
    single = {
        "docs": floor_docs or len(docs),
        "tokens": tokens,
        "tokenize_s": round(tok_s, 2),
        "segment_s": round(seg_s, 2),
        "extrapolated": scale != 1.0,
        "segment_s_all": round(seg_s * scale, 2),
        "tokens_per_s": round(tokens / seg_s) if seg_s else 0,
        "decoder_s": round(ours_s, 2),
        "decoder_s_all": round(ours_s * scale, 2),
        "decoder_speedup": round(seg_s / ours_s, 1) if ours_s else 0,
    }
    started = time.perf_counter()
    with ProcessPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(segment_chunk, split_even(texts, workers)))
    pool_wall = time.perf_counter() - started
    parallel = {
        "workers": workers,
        "segment_s_per_worker": [round(r[1], 2) for r in results],
        "floor_s": round(max(r[1] for r in results), 2),
        "pool_wall_s": round(pool_wall, 2),
    }
    return {"single": single, "parallel": parallel}


# -- reference ---------------------------------------------------------------------------------


def reference_build(docs: list, limit: int) -> dict:
    from bench.reference import StraightforwardIndex

    subset = docs[:limit] if limit else docs
    with tempfile.TemporaryDirectory(prefix="vnsearch-bench-ref-") as tmp:
        index = StraightforwardIndex()
        started = time.perf_counter()
        index.build(subset, Path(tmp) / "ix")
        seconds = time.perf_counter() - started
        index.close()
        size = dir_bytes(Path(tmp))
    docs_per_s = len(subset) / seconds if seconds else 0.0
    return {
        "docs": len(subset),
        "seconds": round(seconds, 2),
        "docs_per_s": round(docs_per_s, 1),
        "extrapolated": len(subset) != len(docs),
        "seconds_all": round(len(docs) / docs_per_s, 1) if docs_per_s else None,
        "index_mb": round(size / 1e6, 1),
        "raw_mb": round(raw_bytes(subset) / 1e6, 1),
    }


# -- incremental -------------------------------------------------------------------------------


def changes_file(path: Path, docs: list) -> tuple[list[dict], list[dict]]:
    """Write 100 new (news-baomoi) and 100 changed corpus articles to ``path``; return both."""
    from search.documents import Document, read_source

    known = {d.id for d in docs}
    new: list[dict] = []
    for source in sorted(BAOMOI.glob("*.jsonl.gz")):
        for record in read_source(source):
            if isinstance(record, Document) and record.id not in known and record.title:
                new.append(
                    {
                        "id": record.id,
                        "title": record.title,
                        "abstract": record.lead,
                        "body": record.body,
                    }
                )
                if len(new) >= CHANGES:
                    break
        if len(new) >= CHANGES:
            break
    picked = sorted(docs, key=lambda d: common.stable_hash(f"incremental:{d.id}"))[:CHANGES]
    changed = [
        {
            "id": d.id,
            "title": d.title,
            "abstract": d.lead,
            "body": f"Cập nhật lúc 9 giờ: bài viết đã được biên tập lại (mã bcx{i:03d}).\n"
            + d.body.replace(".", ";", 1),
        }
        for i, d in enumerate(picked)
    ]
    with path.open("w", encoding="utf-8") as fh:
        for row in new + changed:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    return new, changed


def incremental(
    index_dir: Path, docs: list, workdir: Path, seconds_cap: float, interval: float = 0.05
) -> dict:
    """Reindex 100 new + 100 changed articles into a copy of the index while searching it."""
    from bench.latency import latency_queries
    from search.engine import SearchEngine
    from search.errors import VnsearchError
    from search.indexer import reindex

    copy = workdir / "incremental"
    shutil.copytree(index_dir, copy)
    source = workdir / "changes.jsonl"
    new, changed = changes_file(source, docs)
    queries = [q.text for q in latency_queries(500, salt="incremental")]
    engine = SearchEngine(copy)
    engine.search(queries[0])  # open the generation before the clock starts
    stop = threading.Event()
    served: list[float] = []
    errors: list[str] = []
    generations: set[int] = set()

    def searcher() -> None:
        deadline = time.monotonic() + seconds_cap
        i = 0
        while not stop.is_set() and time.monotonic() < deadline and i < 100_000:
            started = time.perf_counter()
            try:
                engine.search(queries[i % len(queries)], per_page=10)
                served.append((time.perf_counter() - started) * 1000)
                generations.add(engine.snapshot().generation)
            except (VnsearchError, OSError) as exc:
                errors.append(f"{type(exc).__name__}: {exc}")
            i += 1
            stop.wait(interval)  # paced: a tight loop would starve the reindex of the GIL

    thread = threading.Thread(target=searcher, daemon=True)
    thread.start()
    started = time.perf_counter()
    summary = reindex(copy, [source])
    seconds = time.perf_counter() - started
    stop.set()
    thread.join(timeout=seconds_cap + 30)

    found_new = sum(
        1 for row in new if any(h["id"] == row["id"] for h in engine.search(row["title"])["hits"])
    )
    found_changed = sum(
        1
        for i, row in enumerate(changed)
        if any(h["id"] == row["id"] for h in engine.search(f"bcx{i:03d}")["hits"])
    )
    engine.close()
    return {
        "seconds": round(seconds, 2),
        "summary": summary.line(),
        "added": summary.added,
        "updated": summary.updated,
        "searches_during": len(served),
        "search_errors": len(errors),
        "error_samples": sorted(set(errors))[:5],
        "search_ms_during": percentiles(served),
        "generations_seen": sorted(generations),
        "new_found_top10": found_new,
        "changed_found": found_changed,
    }


# -- main --------------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> dict:
    from search.indexer import reindex

    workers = args.workers or os.cpu_count() or 1
    corpus = common.require(common.CORPUS)
    result: dict = {"workers": workers, "docs_limit": args.docs or None}
    with tempfile.TemporaryDirectory(prefix="vnsearch-bench-index-") as tmp:
        workdir = Path(tmp)
        index_dir = workdir / "index"
        if args.docs:  # a quick run: the first N lines of the corpus as the source
            source = workdir / "corpus-head.jsonl.gz"
            with gzip.open(corpus, "rb") as src, gzip.open(source, "wb", compresslevel=1) as dst:
                for _, line in zip(range(args.docs), src, strict=False):
                    dst.write(line)
            corpus = source
        self_before = resource.getrusage(resource.RUSAGE_SELF)
        children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
        print(f"full reindex of {corpus} with {workers} workers ...", flush=True)
        with TreeSampler() as sampler:
            started = time.perf_counter()
            summary = reindex(index_dir, [corpus], full=True, workers=workers)
            wall = time.perf_counter() - started
        self_after = resource.getrusage(resource.RUSAGE_SELF)
        children_after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu_self = _cpu(self_after) - _cpu(self_before)
        cpu_children = _cpu(children_after) - _cpu(children_before)
        print(f"  {summary.line()}")

        docs = load_documents(args.docs) if args.docs else load_documents()
        raw = raw_bytes(docs)
        size = dir_bytes(index_dir)
        full = {
            "docs": summary.documents,
            "seconds": round(wall, 2),
            "docs_per_s": round(summary.documents / wall, 1),
            "raw_mb": round(raw / 1e6, 2),
            "raw_mb_per_s": round(raw / 1e6 / wall, 2),
            "index_mb": round(size / 1e6, 2),
            "size_ratio": round(size / raw, 2),
            "cpu_s_self": round(cpu_self, 1),
            "cpu_s_children": round(cpu_children, 1),
            "maxrss_self_mb": round(self_after.ru_maxrss / 1024, 1),
            "maxrss_largest_child_mb": round(children_after.ru_maxrss / 1024, 1),
            "peak_tree_rss_mb": round(sampler.peak, 1),
        }
        result["full"] = full

        print("segmentation floor ...", flush=True)
        floor = segmentation_floor(docs, workers, args.floor_docs)
        result["floor"] = floor
        seg_cpu = floor["single"]["decoder_s_all"]  # what the reindex spent segmenting
        index_cpu = cpu_self + cpu_children
        result["segmentation_share_pct"] = round(100 * seg_cpu / index_cpu, 1) if index_cpu else 0

        if args.reference_docs >= 0:
            print("reference build ...", flush=True)
            result["reference"] = reference_build(docs, args.reference_docs)

        print("incremental reindex ...", flush=True)
        result["incremental"] = incremental(
            index_dir, docs, workdir, args.incremental_cap, args.search_interval
        )

    print_report(result)
    return result


def print_report(r: dict) -> None:
    full, floor, inc = r["full"], r["floor"], r["incremental"]
    single, par = floor["single"], floor["parallel"]
    print("\nFull reindex (reindex(tmp, [corpus.jsonl.gz], full=True))")
    print(f"  documents            {full['docs']}")
    print(f"  wall                 {full['seconds']:.1f} s  ({r['workers']} workers)")
    print(f"  docs/s               {full['docs_per_s']:.1f}")
    print(f"  raw text             {full['raw_mb']:.1f} MB, {full['raw_mb_per_s']:.2f} MB/s")
    print(f"  index on disk        {full['index_mb']:.1f} MB = {full['size_ratio']:.2f}x raw text")
    print(
        f"  CPU                  {full['cpu_s_self']:.1f} s this process + "
        f"{full['cpu_s_children']:.1f} s children"
    )
    print(
        f"  peak RSS             self {full['maxrss_self_mb']:.0f} MB, largest child "
        f"{full['maxrss_largest_child_mb']:.0f} MB (ru_maxrss); process tree sum "
        f"{full['peak_tree_rss_mb']:.0f} MB (sampled)"
    )
    print(
        "\nSegmentation floor (pyvi alone: word_starts_crfsuite over pieces of title, lead, body)"
    )
    extra = f" on {single['docs']} docs, extrapolated" if single["extrapolated"] else ""
    print(
        f"  one core             {single['segment_s_all']:.1f} s{extra} "
        f"({single['tokens_per_s']} tokens/s; tokenising {single['tokenize_s']:.1f} s more)"
    )
    print(
        f"  vnsearch decoder     {single['decoder_s_all']:.1f} s{extra} on one core "
        f"({single['decoder_speedup']:.1f}x pyvi's tagger; word_starts, what the indexer runs)"
    )
    print(
        f"  {par['workers']} processes          floor {par['floor_s']:.1f} s (slowest worker; "
        f"per worker {par['segment_s_per_worker']}), pool wall {par['pool_wall_s']:.1f} s"
    )
    print(
        f"  share of indexing    {r['segmentation_share_pct']:.1f} % of the reindex's CPU time "
        "is segmentation (the vnsearch decoder)"
    )
    ref = r.get("reference")
    if ref:
        print("\nReference (StraightforwardIndex.build, one process)")
        note = f", extrapolated: {ref['seconds_all']:.0f} s for all" if ref["extrapolated"] else ""
        print(
            f"  {ref['docs']} docs in {ref['seconds']:.1f} s = {ref['docs_per_s']:.1f} docs/s"
            f"{note}; index {ref['index_mb']:.1f} MB for {ref['raw_mb']:.1f} MB raw"
        )
    print("\nIncremental (copy of the index; 100 new + 100 changed articles in one .jsonl)")
    print(f"  reindex              {inc['seconds']:.2f} s: {inc['summary']}")
    ms = inc["search_ms_during"]
    print(
        f"  searches meanwhile   {inc['searches_during']} served, {inc['search_errors']} errors, "
        f"p50 {ms['p50']:.1f} ms, p95 {ms['p95']:.1f} ms, max {ms['max']:.0f} ms; "
        f"generations {inc['generations_seen']}"
    )
    print(
        f"  after the commit     {inc['new_found_top10']}/100 new articles in the top 10 for their "
        f"title, {inc['changed_found']}/100 changed ones found by their new word"
    )
    for sample in inc["error_samples"]:
        print(f"  error: {sample}")

    goals: dict[str, tuple[bool, str]] = {}
    if ref:
        speedup = full["docs_per_s"] / ref["docs_per_s"] if ref["docs_per_s"] else float("inf")
        r["reference_speedup"] = round(speedup, 2)
        goals[">= 3x reference docs/s"] = (speedup >= GOALS["reference_speedup"], f"{speedup:.1f}x")
    floor_ratio = full["seconds"] / par["floor_s"] if par["floor_s"] else float("inf")
    r["floor_ratio"] = round(floor_ratio, 2)
    goals["within 1.5x of the segmentation floor"] = (
        floor_ratio <= GOALS["floor_ratio"],
        f"{floor_ratio:.2f}x",
    )
    goals["incremental 200 changes <= 5 s"] = (
        inc["seconds"] <= GOALS["incremental_s"],
        f"{inc['seconds']:.2f} s",
    )
    goals["index <= 3x raw text"] = (
        full["size_ratio"] <= GOALS["size_ratio"],
        f"{full['size_ratio']:.2f}x",
    )
    goals["searches served during the incremental run, no errors"] = (
        inc["searches_during"] > 0 and inc["search_errors"] == 0,
        f"{inc['searches_during']} served, {inc['search_errors']} errors",
    )
    r["goals"] = report_goals(goals)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.indexing", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--workers", type=int, default=0, help="processes (default: all cores)")
    parser.add_argument(
        "--docs", type=int, default=0, help="a quick run on the first N articles (0: all)"
    )
    parser.add_argument(
        "--floor-docs",
        type=int,
        default=0,
        help="one-core segmentation on the first N docs, extrapolated (0: all)",
    )
    parser.add_argument(
        "--reference-docs",
        type=int,
        default=2000,
        help="reference build on the first N docs, extrapolated (0: all, -1: skip)",
    )
    parser.add_argument(
        "--incremental-cap",
        type=float,
        default=120.0,
        help="stop searching during the incremental run after this many seconds",
    )
    parser.add_argument(
        "--search-interval",
        type=float,
        default=0.05,
        help="seconds between the searches run during the incremental reindex",
    )
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args(argv)
    common.require(common.CORPUS)
    return run_recorded("indexing", lambda: run(args), argv, args.json, "indexing.json")


if __name__ == "__main__":
    sys.exit(main())
