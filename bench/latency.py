"""Query latency of vnsearch, in process and over HTTP, against the straightforward Whoosh version.

    python -m bench.latency [--queries N] [--warmup N] [--reference-queries N] [--no-reference]
                            [--index DIR] [--rebuild] [--repeat N] [--json F]
    python -m bench.latency --http [--requests N] [--level-seconds S] [--concurrency 1,4,16]

In process: the vietnews corpus (11,322 articles, ``../shared/data/vietnews``) is indexed with
``search.indexer.build_index`` (cached under ``bench/out/`` by a fingerprint of ``search/*.py`` and
the data) and ``--queries`` queries (default 1,000: the same sampled title queries in each of five
typed forms: accented, unaccented, Telex, short 2-5 words, a quoted phrase of 2-3 words) run
through ``SearchEngine.search(q, per_page=10)``, snippets of the 10 hits included, after the engine
loaded its frequent terms (as a worker does in the background when it opens a generation).  A
second, fresh engine runs the same queries reporting its steps to a ``timings`` callback
(``search.engine.STEPS``: ``snapshot``; ``parse``; ``match_score`` = matching/scoring, ordering
and phrases; ``facets_collapse``; ``snippets`` for the 10 hits = snippets/highlighting; ``other``,
the rest of ``search()``, mostly the accent suggestion) for the share of time in each.
``--repeat N`` runs the same queries N more times on the first engine, as a server's worker sees
the searches of its readers again: what its caches keep (posting arrays, restored accents, stored
documents) shows there, where the first pass reads nearly every term for the first time.
The same queries go through ``bench.reference.StraightforwardIndex.search_with_snippets`` (pyvi
query segmentation, ``MultifieldParser``, Whoosh search, ``highlights("body")``): it takes seconds
per long query, so by default only ``--reference-queries`` of them (200, the same number of each
form), and the ratio compares both systems' p95 on those same queries.  ``--index DIR`` uses an
existing index as it is (the cache is keyed by the ``search/`` modules that decide what an index
holds, so editing the indexer rebuilds it: about 4 minutes on two cores).

``--http`` starts gunicorn (``gunicorn.conf.py``: 2 workers of ``web.server.VnsearchWorker``, a
free port on 127.0.0.1) on the same index and drives ``/api/search`` with 1, 4 and 16 client
threads (``http.client``, one connection each, kept alive while the server keeps it), at most
``--requests`` requests and ``--level-seconds`` seconds per level; each level sends ``--queries``
queries of its own, sampled as the in-process ones, so none runs on what an earlier one cached.
Worker RSS is read from ``/proc/<pid>/status`` at boot, after the warm-up and at the end, and each
worker's CPU seconds per level from ``/proc/<pid>/stat``: their split shows whether the workers
shared the load (all four clients once stuck to one worker, 88 req/s instead of ~120 at 1M).

Goals (printed, not fatal): in process p50 <= 5 ms, p95 <= 20 ms, p95 <= 1/20 of the reference's;
HTTP >= 250 req/s at 4 clients with p95 <= 40 ms and no errors; worker RSS <= 300 MB.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench import common
from bench.forms import short, telex, unaccented
from search.config import load_settings
from search.malloc import keep_freed_memory

FORMS: tuple[str, ...] = ("accented", "unaccented", "telex", "short", "phrase")
DEFAULT_QUERIES = 1000
DEFAULT_WARMUP = 50
PER_PAGE = 10
HOST = "127.0.0.1"
BAOMOI = common.SHARED / "data" / "news-baomoi"
VIETNEWS_DOCS = 11322
GOALS = {
    "p50_ms": 5.0,
    "p95_ms": 20.0,
    "reference_ratio": 20.0,
    "http_rps_4": 250.0,
    "http_p95_ms_4": 40.0,
    "worker_rss_mb": 300.0,
}
_LETTERS_RE = re.compile(r"[^\W\d_]+")


# -- data and indexes --------------------------------------------------------------------------


def corpus_sources() -> list[Path]:
    """vietnews first, then the news-baomoi files in name order (the scaling benchmark's order)."""
    return [common.require(common.CORPUS), *sorted(BAOMOI.glob("*.jsonl.gz"))]


def load_documents(limit: int | None = VIETNEWS_DOCS) -> list:
    """The first ``limit`` documents (``search.documents.Document``) of ``corpus_sources()``."""
    from search.documents import Document, read_source

    docs: list = []
    seen: set[str] = set()
    for source in corpus_sources():
        for record in read_source(source):
            if not isinstance(record, Document) or record.id in seen:
                continue
            seen.add(record.id)
            docs.append(record)
            if limit and len(docs) >= limit:
                return docs
    return docs


def raw_bytes(docs: Iterable) -> int:
    """UTF-8 bytes of the indexed text (title, lead, body) of ``docs``."""
    return sum(len(f"{d.title}{d.lead}{d.body}".encode()) for d in docs)


def _data_fingerprint(n_docs: int) -> str:
    files = [common.CORPUS] if n_docs <= VIETNEWS_DOCS else corpus_sources()
    return f"docs={n_docs};" + ";".join(common.file_fingerprint(p) for p in files)


# Modules that only read an index: editing them does not make a cached index stale.
QUERY_TIME_MODULES = frozenset(
    {
        "engine",
        "ranking",
        "postings",  # (the indexer takes only the accent file's name from it)
        "phrases",
        "query",
        "results",
        "cli",
        "__main__",
        "telex",
        "abbreviations",
        "suggest",
        "config",
        "errors",
    }
)


def index_code_fingerprint() -> str:
    """A hash of the ``search/`` modules that decide what an index holds (all but query-time)."""
    files = [p for p in (common.REPO / "search").glob("*.py") if p.stem not in QUERY_TIME_MODULES]
    store = sorted((common.REPO / "search" / "store").glob("*.py"))  # the index's own files
    files += [p for p in store if p.stem != "term_reader"]  # (term_reader only reads)
    return common.source_fingerprint(files)


def vnsearch_index(
    n_docs: int = VIETNEWS_DOCS,
    rebuild: bool = False,
    docs: list | None = None,
    given: Path | None = None,
) -> tuple[Path, float | None]:
    """The cached vnsearch index of the first ``n_docs`` documents, and its build seconds.

    ``given``: use that index directory as it is (``--index``), no fingerprint check.
    """
    from search.indexer import build_index, index_exists

    if given is not None:
        if not index_exists(given):
            raise SystemExit(f"bench: no index in {given}")
        return given, None

    fingerprint = "vnsearch:" + index_code_fingerprint() + ";" + _data_fingerprint(n_docs)
    took: list[float] = []

    def build(dirpath: Path) -> None:
        started = time.perf_counter()
        build_index(docs if docs is not None else load_documents(n_docs), dirpath)
        took.append(time.perf_counter() - started)

    path = common.cached_index(f"latency-vnsearch-{n_docs}", fingerprint, build, rebuild=rebuild)
    return path, (took[0] if took else None)


def reference_index(docs: Callable[[], list], rebuild: bool = False):
    """An open ``StraightforwardIndex`` of the vietnews corpus (cached), and its build seconds."""
    from bench.reference import StraightforwardIndex

    fingerprint = (
        "straightforward:"
        + common.source_fingerprint([common.REPO / "bench" / "reference.py"])
        + ";"
        + _data_fingerprint(VIETNEWS_DOCS)
    )
    index = StraightforwardIndex()
    took: list[float] = []

    def build(dirpath: Path) -> None:
        started = time.perf_counter()
        index.build(docs(), dirpath)
        index.close()
        took.append(time.perf_counter() - started)

    path = common.cached_index("latency-straightforward", fingerprint, build, rebuild=rebuild)
    index.open(path)
    return index, (took[0] if took else None)


def dir_bytes(path: Path) -> int:
    """Total size of the files under ``path``."""
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())


# -- queries -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class TimedQuery:
    form: str
    text: str
    qid: str


def phrase_form(title: str, qid: str) -> str:
    """A quoted run of 2-3 consecutive syllables of the title (where it starts: from the qid)."""
    words = _LETTERS_RE.findall(title)
    if len(words) < 2:
        return f'"{title}"'
    h = common.stable_hash(f"phrase:{qid}")
    size = min(len(words), 2 + h % 2)
    start = (h // 2) % (len(words) - size + 1)
    return '"' + " ".join(words[start : start + size]) + '"'


def typed_forms(title: str, qid: str) -> dict[str, str]:
    """The five forms of one title query used for latency."""
    return {
        "accented": title,
        "unaccented": unaccented(title),
        "telex": telex(title),
        "short": short(title, 2 + common.stable_hash(f"short:{qid}") % 4),
        "phrase": phrase_form(title, qid),
    }


def latency_queries(total: int = DEFAULT_QUERIES, salt: str = "latency") -> list[TimedQuery]:
    """``total`` queries: ``total // 5`` sampled title queries in each form, in a hashed order."""
    titles = [q for q in common.load_queries() if q.query_type == "title"]
    per_form = max(1, total // len(FORMS))
    out = [
        TimedQuery(form, text, query.qid)
        for query in common.sample(titles, per_form, salt=salt)
        for form, text in typed_forms(query.text, query.qid).items()
    ]
    return sorted(out, key=lambda q: common.stable_hash(f"{salt}:order:{q.form}:{q.qid}"))


# -- statistics --------------------------------------------------------------------------------


def percentiles(ms: Sequence[float]) -> dict[str, float]:
    """n, mean, p50/p95/p99 and max in milliseconds (numpy's linear interpolation)."""
    if not ms:
        return {"n": 0, "mean": 0.0, "p50": 0.0, "p95": 0.0, "p99": 0.0, "max": 0.0}
    arr = np.asarray(ms, dtype=np.float64)
    p50, p95, p99 = np.percentile(arr, [50, 95, 99])
    return {
        "n": int(arr.size),
        "mean": round(float(arr.mean()), 3),
        "p50": round(float(p50), 3),
        "p95": round(float(p95), 3),
        "p99": round(float(p99), 3),
        "max": round(float(arr.max()), 3),
    }


def by_form(queries: Sequence[TimedQuery], ms: Sequence[float]) -> dict[str, dict[str, float]]:
    """Percentiles per form, then ``all``."""
    out = {
        form: percentiles([t for q, t in zip(queries, ms, strict=True) if q.form == form])
        for form in FORMS
    }
    out["all"] = percentiles(ms)
    return out


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def report_goals(goals: dict[str, tuple[bool, str]]) -> dict[str, bool]:
    """Print each goal as PASS/FAIL with its figure; return name -> met, for the JSON."""
    print("\nGoals")
    for name, (ok, value) in goals.items():
        print(f"  {verdict(ok)}  {name}: {value}")
    return {name: ok for name, (ok, _) in goals.items()}


def print_table(title: str, rows: list[list[str]], header: list[str]) -> None:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    print(f"\n{title}")
    print("  ".join(str(h).ljust(w) for h, w in zip(header, widths, strict=True)))
    for row in rows:
        print(
            "  ".join(
                str(c).rjust(w) if i else str(c).ljust(w)
                for i, (c, w) in enumerate(zip(row, widths, strict=True))
            )
        )


def load_average() -> str:
    """The 1/5/15-minute load average (the machine may be shared: say how busy it was)."""
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} cores"


def machine() -> dict:
    """What the figures were measured on: the processor, and the best of 5 runs of two fixed
    pieces of work a search is made of, a pure-Python loop and ``np.add.at`` of 200,000 postings
    into a million scores.  The machine under these benchmarks changes from one session to the
    next (the same code served 156 requests a second on one, 131 on another): the reference
    figures tell whether a difference between two runs may be the machine's, not the code's."""
    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    rng = np.random.default_rng(0)
    scores = np.zeros(1_000_000, dtype=np.float32)
    ids = np.sort(rng.choice(scores.size, 200_000, replace=False)).astype(np.intp)
    weights = rng.random(ids.size).astype(np.float32)

    def python_loop() -> None:
        total = 0
        for i in range(1_000_000):
            total += i & 7

    def scatter() -> None:
        for _ in range(10):
            np.add.at(scores, ids, weights)

    def best_ms(work: Callable[[], None]) -> float:
        times = []
        for _ in range(5):
            started = time.perf_counter()
            work()
            times.append(time.perf_counter() - started)
        return round(min(times) * 1000, 1)

    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "python_loop_ms": best_ms(python_loop),
        "numpy_scatter_ms": best_ms(scatter),
    }


def machine_line(facts: dict) -> str:
    return (
        f"machine: {facts['cpu']}, {facts['cores']} cores; reference work: Python loop "
        f"{facts['python_loop_ms']} ms, numpy scatter {facts['numpy_scatter_ms']} ms"
    )


def write_json(data: dict, path: Path | None, default_name: str) -> Path:
    print(f"load average at the end: {load_average()}")
    data["load_average_end"] = load_average()
    target = path or (common.OUT / default_name)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")
    print(f"\nwrote {target}")
    return target


def run_recorded(
    name: str, run: Callable[[], dict], argv: list[str] | None, json_path: Path | None, default: str
) -> int:
    """Run a benchmark, record its command, wall time and machine load, and write its JSON."""
    load_start = load_average()
    print(f"load average at the start: {load_start}", flush=True)
    facts = machine()
    print(machine_line(facts), flush=True)
    started = time.perf_counter()
    result = run()
    result["machine"] = facts
    result["command"] = f"python -m bench.{name} " + " ".join(
        argv if argv is not None else sys.argv[1:]
    )
    result["wall_s"] = round(time.perf_counter() - started, 1)
    result["load_average_start"] = load_start
    write_json(result, json_path, default)
    return 0


# -- in process --------------------------------------------------------------------------------


def time_engine(engine, queries: Sequence[TimedQuery]) -> tuple[list[float], int]:
    """Milliseconds of ``engine.search`` per query, and the number of refused queries."""
    from search.errors import VnsearchError

    ms: list[float] = []
    errors = 0
    for query in queries:
        started = time.perf_counter()
        try:
            engine.search(query.text, per_page=PER_PAGE)
        except VnsearchError:
            errors += 1
        ms.append((time.perf_counter() - started) * 1000)
    return ms, errors


# Where a search's time goes: the engine reports each of its steps to a ``timings`` callback
# (``search.engine.STEPS``); "other" is the rest of ``search()`` (validation, the accent
# suggestion, building the response).
def _steps() -> tuple[str, ...]:
    from search.engine import STEPS as ENGINE_STEPS

    return (*ENGINE_STEPS, "other")


def time_steps(engine, queries: Sequence[TimedQuery]) -> dict[str, list[float]]:
    """Per query, milliseconds spent in each of the engine's steps (and "other") while
    ``engine.search`` runs."""
    from search.errors import VnsearchError

    steps = _steps()
    spent = dict.fromkeys(steps[:-1], 0.0)

    def record(step: str, seconds: float) -> None:
        spent[step] += seconds

    out: dict[str, list[float]] = {step: [] for step in steps}
    previous, engine.timings = engine.timings, record
    try:
        for query in queries:
            for step in spent:
                spent[step] = 0.0
            started = time.perf_counter()
            with contextlib.suppress(VnsearchError):
                engine.search(query.text, per_page=PER_PAGE)
            total = time.perf_counter() - started
            for step, value in spent.items():
                out[step].append(value * 1000)
            out["other"].append((total - sum(spent.values())) * 1000)
    finally:
        engine.timings = previous
    return out


def time_reference(index, queries: Sequence[TimedQuery]) -> tuple[list[float], int]:
    ms: list[float] = []
    errors = 0
    for query in queries:
        started = time.perf_counter()
        try:
            index.search_with_snippets(query.text, PER_PAGE)
        except Exception:  # noqa: BLE001 - a query the reference cannot parse counts as an error
            errors += 1
        ms.append((time.perf_counter() - started) * 1000)
    return ms, errors


def reference_subset(queries: Sequence[TimedQuery], limit: int) -> list[TimedQuery]:
    """The first ``limit // 5`` queries of each form (in run order); ``0``: all of them."""
    if limit <= 0 or limit >= len(queries):
        return list(queries)
    per_form = max(1, limit // len(FORMS))
    counts = dict.fromkeys(FORMS, 0)
    out = []
    for query in queries:
        if counts[query.form] < per_form:
            counts[query.form] += 1
            out.append(query)
    return out


def run_in_process(args: argparse.Namespace) -> dict:
    from search.engine import SearchEngine

    index_dir, build_s = vnsearch_index(rebuild=args.rebuild, given=args.index)
    print(
        f"vnsearch index: {index_dir} ({dir_bytes(index_dir) / 1e6:.1f} MB"
        + (f", built in {build_s:.1f} s)" if build_s else ", cached)")
    )
    queries = latency_queries(args.queries)
    warmup = latency_queries(args.warmup, salt="warmup") if args.warmup else []
    print(
        f"{len(queries)} queries ({len(queries) // len(FORMS)} per form: {', '.join(FORMS)}), "
        f"{len(warmup)} warm-up queries first (not counted)"
    )

    engine = SearchEngine(index_dir)
    started = time.perf_counter()
    engine.health()
    open_ms = (time.perf_counter() - started) * 1000
    engine.wait_warm()  # a worker loads its frequent terms in the background after opening
    warm_ms = (time.perf_counter() - started) * 1000 - open_ms
    time_engine(engine, warmup)
    ms, refused = time_engine(engine, queries)
    repeats = [percentiles(time_engine(engine, queries)[0]) for _ in range(args.repeat)]
    engine.close()
    stats = by_form(queries, ms)

    cold = SearchEngine(index_dir)
    cold.health()
    cold.wait_warm()
    time_steps(cold, warmup)
    steps = time_steps(cold, queries)
    cold.close()
    step_totals = {step: sum(v) for step, v in steps.items()}
    step_sum = sum(step_totals.values())
    shares = {
        step: round(100 * t / step_sum, 1) if step_sum else 0.0 for step, t in step_totals.items()
    }

    result: dict = {
        "index_dir": str(index_dir),
        "index_mb": round(dir_bytes(index_dir) / 1e6, 1),
        "index_build_s": build_s,
        "open_ms": round(open_ms, 1),
        "warm_ms": round(warm_ms, 1),
        "queries": len(queries),
        "warmup": len(warmup),
        "refused": refused,
        "vnsearch_ms": stats,
        "steps_ms_total": {k: round(v, 1) for k, v in step_totals.items()},
        "steps_share_pct": shares,
        "steps_p95_ms": {step: percentiles(v)["p95"] for step, v in steps.items()},
        "search_ms_total": round(sum(ms), 1),
        "repeated_ms": repeats,
    }

    ref_stats = None
    if not args.no_reference:
        index, ref_build = reference_index(load_documents, rebuild=args.rebuild)
        print("reference index: " + (f"built in {ref_build:.1f} s" if ref_build else "cached"))
        subset = reference_subset(queries, args.reference_queries)
        print(
            f"reference: {len(subset)} of the queries ({len(subset) // len(FORMS)} per form), "
            f"{min(len(warmup), 10)} warm-up queries first",
            flush=True,
        )
        time_reference(index, warmup[:10])
        ref_ms, ref_errors = time_reference(index, subset)
        index.close()
        ref_stats = by_form(subset, ref_ms)
        position = {id(q): i for i, q in enumerate(queries)}
        same = by_form(subset, [ms[position[id(q)]] for q in subset])
        result.update(
            reference_ms=ref_stats,
            reference_errors=ref_errors,
            reference_build_s=ref_build,
            reference_queries=len(subset),
            vnsearch_ms_on_reference_queries=same,
        )

    rows = []
    for form in (*FORMS, "all"):
        v = stats[form]
        row = [
            form,
            str(v["n"]),
            f"{v['p50']:.2f}",
            f"{v['p95']:.2f}",
            f"{v['p99']:.2f}",
            f"{v['max']:.1f}",
        ]
        if ref_stats:
            r, mine = ref_stats[form], same[form]
            ratio = r["p95"] / mine["p95"] if mine["p95"] else float("inf")
            row += [
                str(r["n"]),
                f"{r['p50']:.1f}",
                f"{r['p95']:.1f}",
                f"{r['p99']:.1f}",
                f"{mine['p95']:.2f}",
                f"{ratio:.1f}x",
            ]
        rows.append(row)
    header = ["form", "n", "p50 ms", "p95 ms", "p99 ms", "max ms"]
    if ref_stats:
        header += ["ref n", "ref p50", "ref p95", "ref p99", "p95 same q", "ref/vn p95"]
    print_table(
        "In-process latency, SearchEngine.search(q, per_page=10) (reference: "
        "StraightforwardIndex.search_with_snippets)",
        rows,
        header,
    )
    for run, figures in enumerate(repeats, 2):
        print(
            f"pass {run} over the same queries: p50 {figures['p50']:.2f} ms, "
            f"p95 {figures['p95']:.2f} ms, p99 {figures['p99']:.2f} ms"
        )
    print(
        f"\nindex open (first call): {open_ms:.0f} ms, then {warm_ms:.0f} ms loading frequent"
        f" terms in the background; refused queries: {refused}"
    )
    print(
        "time per step (fresh engine, same queries): "
        + ", ".join(
            f"{s} {shares[s]:.1f} % (p95 {result['steps_p95_ms'][s]:.2f} ms)" for s in shares
        )
        + f"; {step_sum:.0f} ms in all (instrumented pass) vs {sum(ms):.0f} ms (timed pass)"
    )

    overall = stats["all"]
    goals = {
        "p50 <= 5 ms": (overall["p50"] <= GOALS["p50_ms"], f"{overall['p50']:.2f} ms"),
        "p95 <= 20 ms": (overall["p95"] <= GOALS["p95_ms"], f"{overall['p95']:.2f} ms"),
    }
    if ref_stats:
        mine = same["all"]["p95"]
        ratio = ref_stats["all"]["p95"] / mine if mine else float("inf")
        result["reference_p95_ratio"] = round(ratio, 2)
        goals["p95 <= reference p95 / 20"] = (ratio >= GOALS["reference_ratio"], f"{ratio:.1f}x")
    result["goals"] = report_goals(goals)
    return result


# -- HTTP --------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def _stat_fields(pid: int) -> list[str] | None:
    """The fields of ``/proc/<pid>/stat`` after the command name (state first), None when the
    process is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat[stat.rindex(")") + 2 :].split()


def _ppid(pid: int) -> int | None:
    fields = _stat_fields(pid)
    return None if fields is None else int(fields[1])


def child_pids(parent: int) -> list[int]:
    """Direct children of ``parent`` (from ``/proc``)."""
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and _ppid(int(entry.name)) == parent:
            out.append(int(entry.name))
    return sorted(out)


def cpu_seconds(pid: int) -> float | None:
    """User and system CPU seconds of ``pid`` so far, None when it is gone."""
    fields = _stat_fields(pid)
    if fields is None:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float | None:
    """``VmRSS`` of ``pid`` in MB, None when it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


class Gunicorn:
    """gunicorn serving ``index_dir`` on a free port of 127.0.0.1 (a context manager)."""

    def __init__(self, index_dir: Path, workers: int = 2, boot_timeout: float = 90.0) -> None:
        self.index_dir = index_dir
        self.workers = workers
        self.boot_timeout = boot_timeout
        self.port = free_port()
        self.log_path = common.OUT / f"gunicorn-{self.port}.log"
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> Gunicorn:
        env = {
            **os.environ,
            "VNSEARCH_INDEX_DIR": str(self.index_dir),
            "VNSEARCH_WORKERS": str(self.workers),
            "VNSEARCH_LOG_LEVEL": "warning",
        }
        env.pop("VNSEARCH_ACCESS_LOG", None)
        common.OUT.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "--config",
                "gunicorn.conf.py",
                "--workers",
                str(self.workers),
                "--bind",
                f"{HOST}:{self.port}",
                "wsgi:app",
            ],
            cwd=common.REPO,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + self.boot_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"gunicorn exited with {self.proc.returncode}; see {self.log_path}"
                )
            try:
                status, _ = get(self.port, "/healthz", timeout=5)
                if status == 200 and len(self.worker_pids()) >= self.workers:
                    return self
            except OSError:
                pass
            time.sleep(0.2)
        self.__exit__(None, None, None)
        raise RuntimeError(f"gunicorn did not answer /healthz in {self.boot_timeout:.0f} s")

    def worker_pids(self) -> list[int]:
        return child_pids(self.proc.pid) if self.proc else []

    def worker_rss(self) -> dict[str, float | None]:
        return {str(pid): rss_mb(pid) for pid in self.worker_pids()}

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._log.close()
        if self.log_path.exists() and self.log_path.stat().st_size == 0:
            self.log_path.unlink()


def drive_workers(
    server: Gunicorn, paths: Sequence[str], clients: int, max_requests: int, max_seconds: float
) -> dict:
    """``drive`` against ``server``, with each worker's CPU seconds meanwhile
    (``worker_cpu_s``): their split shows whether the workers shared the load."""
    pids = server.worker_pids()
    before = [cpu_seconds(pid) for pid in pids]
    level = drive(server.port, paths, clients, max_requests, max_seconds)
    after = [cpu_seconds(pid) for pid in pids]
    level["worker_cpu_s"] = [
        round(b - a, 2) if a is not None and b is not None else None
        for a, b in zip(before, after, strict=True)
    ]
    return level


def get(port: int, path: str, timeout: float = 30.0) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def api_path(query: str) -> str:
    return "/api/search?" + urllib.parse.urlencode({"q": query, "per_page": PER_PAGE})


def drive(
    port: int, paths: Sequence[str], clients: int, max_requests: int, max_seconds: float
) -> dict:
    """``clients`` threads send GETs of ``paths`` (round robin) until either bound is reached."""
    lock = threading.Lock()
    counter = iter(range(max_requests))
    latencies: list[float] = []
    errors: list[str] = []
    deadline = time.monotonic() + max_seconds

    def next_index() -> int | None:
        if time.monotonic() >= deadline:
            return None
        with lock:
            return next(counter, None)

    def client() -> None:
        conn = http.client.HTTPConnection(HOST, port, timeout=30)
        mine: list[float] = []
        while (i := next_index()) is not None:
            started = time.perf_counter()
            try:
                conn.request("GET", paths[i % len(paths)])
                resp = conn.getresponse()
                body = resp.read()
                elapsed = (time.perf_counter() - started) * 1000
                if resp.status != 200 or not body.startswith(b"{"):
                    with lock:
                        errors.append(f"HTTP {resp.status}: {body[:120]!r}")
                else:
                    mine.append(elapsed)
            except (OSError, http.client.HTTPException) as exc:
                with lock:
                    errors.append(f"{type(exc).__name__}: {exc}")
                conn.close()
                conn = http.client.HTTPConnection(HOST, port, timeout=30)
        conn.close()
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=max_seconds + 60)
    wall = time.perf_counter() - started
    done = len(latencies) + len(errors)
    return {
        "clients": clients,
        "requests": done,
        "ok": len(latencies),
        "errors": len(errors),
        "error_samples": sorted(set(errors))[:5],
        "seconds": round(wall, 2),
        "rps": round(done / wall, 1) if wall else 0.0,
        "ms": percentiles(latencies),
    }


def http_rows(levels: Sequence[dict]) -> list[list[str]]:
    return [
        [
            str(r["clients"]),
            str(r["requests"]),
            f"{r['seconds']:.1f}",
            f"{r['rps']:.1f}",
            f"{r['ms']['p50']:.2f}",
            f"{r['ms']['p95']:.2f}",
            f"{r['ms']['p99']:.2f}",
            str(r["errors"]),
        ]
        for r in levels
    ]


HTTP_HEADER = ["clients", "requests", "s", "req/s", "p50 ms", "p95 ms", "p99 ms", "errors"]


def print_rss(label: str, rss: dict[str, float | None]) -> None:
    print(f"worker RSS {label}: " + ", ".join(f"pid {p} {v} MB" for p, v in rss.items()))


def run_http(args: argparse.Namespace) -> dict:
    index_dir, build_s = vnsearch_index(rebuild=args.rebuild, given=args.index)
    print(
        f"vnsearch index: {index_dir}"
        + (f" (built in {build_s:.1f} s)" if build_s else " (cached)")
    )
    levels_wanted = [int(c) for c in args.concurrency.split(",") if c.strip()]
    # Each level sends queries of its own, drawn as the in-process ones are: a level that
    # repeated an earlier level's queries would find their articles and terms in the workers'
    # caches already.
    level_paths = {
        clients: [api_path(q.text) for q in latency_queries(args.queries, salt=f"http-{clients}")]
        for clients in levels_wanted
    }
    warm_paths = [api_path(q.text) for q in latency_queries(args.warmup * 2 or 100, salt="warmup")]
    result: dict = {"index_dir": str(index_dir), "queries": args.queries, "levels": []}
    with Gunicorn(index_dir) as server:
        print(
            f"gunicorn on {HOST}:{server.port}, master pid {server.proc.pid}, "
            f"workers {server.worker_pids()}"
        )
        result["rss_boot_mb"] = server.worker_rss()
        print_rss("at boot", result["rss_boot_mb"])
        warm = drive(server.port, warm_paths, 2, len(warm_paths), 60)
        print(
            f"warm-up: {warm['requests']} requests with 2 clients, {warm['errors']} errors "
            "(not counted)"
        )
        result["warmup"] = warm
        result["rss_start_mb"] = server.worker_rss()
        print_rss("at start (after warm-up)", result["rss_start_mb"])
        for clients in levels_wanted:
            level = drive_workers(
                server, level_paths[clients], clients, args.requests, args.level_seconds
            )
            result["levels"].append(level)
            print(
                f"  {clients:>2} clients: {level['requests']} requests, {level['seconds']:.1f} s, "
                f"{level['rps']:.1f} req/s, p95 {level['ms']['p95']:.2f} ms, "
                f"{level['errors']} errors; workers' CPU s {level['worker_cpu_s']}"
            )
        result["rss_end_mb"] = server.worker_rss()
        print_rss("at end", result["rss_end_mb"])
    print_table(
        f"HTTP /api/search (gunicorn, 2 workers; {args.requests} requests or "
        f"{args.level_seconds:.0f} s per level)",
        http_rows(result["levels"]),
        HTTP_HEADER,
    )
    for level in result["levels"]:
        for sample in level["error_samples"]:
            print(f"  error ({level['clients']} clients): {sample}")

    goals: dict[str, tuple[bool, str]] = {}
    four = next((r for r in result["levels"] if r["clients"] == 4), None)
    if four:
        goals[">= 250 req/s at 4 clients"] = (
            four["rps"] >= GOALS["http_rps_4"],
            f"{four['rps']:.1f} req/s",
        )
        goals["p95 <= 40 ms at 4 clients"] = (
            four["ms"]["p95"] <= GOALS["http_p95_ms_4"],
            f"{four['ms']['p95']:.2f} ms",
        )
    total_errors = sum(r["errors"] for r in result["levels"])
    goals["zero errors"] = (total_errors == 0, f"{total_errors} errors")
    rss_values = [
        v for d in (result["rss_start_mb"], result["rss_end_mb"]) for v in d.values() if v
    ]
    top = max(rss_values, default=0.0)
    goals["worker RSS <= 300 MB"] = (top <= GOALS["worker_rss_mb"], f"max {top} MB")
    result["goals"] = report_goals(goals)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.latency", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--queries",
        type=int,
        default=DEFAULT_QUERIES,
        help="queries in all (split evenly over the five forms)",
    )
    parser.add_argument(
        "--warmup",
        type=int,
        default=DEFAULT_WARMUP,
        help="warm-up queries run first and not counted",
    )
    parser.add_argument("--no-reference", action="store_true", help="skip the Whoosh reference")
    parser.add_argument(
        "--reference-queries",
        type=int,
        default=200,
        help="run the (slow) reference on this many of the queries, evenly per form (0: all)",
    )
    parser.add_argument("--index", type=Path, help="use this index directory as it is")
    parser.add_argument("--rebuild", action="store_true", help="rebuild the cached indexes")
    parser.add_argument(
        "--repeat", type=int, default=0, help="in process: run the queries this many more times"
    )
    parser.add_argument("--http", action="store_true", help="drive gunicorn over HTTP instead")
    parser.add_argument("--requests", type=int, default=1000, help="HTTP: requests per level")
    parser.add_argument(
        "--level-seconds", type=float, default=60.0, help="HTTP: at most this long per level"
    )
    parser.add_argument("--concurrency", default="1,4,16", help="HTTP: client counts")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args(argv)
    # In process as in a server's workers (``SearchEngine.from_settings``).
    keep_freed_memory(load_settings().malloc_keep_mb)
    common.require(common.CORPUS)
    common.require(common.QUERIES)
    return run_recorded(
        "latency",
        lambda: run_http(args) if args.http else run_in_process(args),
        argv,
        args.json,
        "latency-http.json" if args.http else "latency.json",
    )


if __name__ == "__main__":
    sys.exit(main())
