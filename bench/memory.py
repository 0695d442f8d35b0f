"""Worker memory: what each gunicorn worker holds privately and what the workers share.

    python -m bench.memory [--docs N|all] [--index DIR] [--repo DIR] [--queries N]
                           [--suggest N] [--clients N] [--json F]

The index is ``bench.scaling``'s (the first ``--docs`` articles of vietnews + news-baomoi, built
and cached under ``bench/out/``) unless ``--index`` names one.  gunicorn (``gunicorn.conf.py``,
2 workers) is started from ``--repo`` (default: this checkout; another checkout measures
its code on the same index), then ``--queries`` mixed queries (accented, unaccented, Telex, short,
phrase) and ``--suggest`` suggest-as-you-type prefixes are sent from ``--clients`` threads.  Each
worker's ``/proc/PID/smaps_rollup`` is read after boot and at the end: ``Private_Dirty`` (its own
heap: what N workers hold N times), ``Private_Clean`` (mostly file pages only it has touched so
far), ``Shared_*`` (pages another process maps too), ``Rss`` and ``Pss`` (RSS with shared pages
divided among their users).

In this process, a fresh ``SearchEngine`` opens the index and answers its first search and its
first suggestion: what a fresh worker does before its first answer.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

from bench import common
from bench.latency import (
    HOST,
    child_pids,
    drive,
    free_port,
    get,
    latency_queries,
    load_documents,
    print_table,
    run_recorded,
    vnsearch_index,
)

FIELDS = ("Rss", "Pss", "Private_Dirty", "Private_Clean", "Shared_Clean", "Shared_Dirty")


def smaps(pid: int) -> dict[str, float]:
    """``/proc/PID/smaps_rollup`` in MB (the fields of ``FIELDS`` and ``Anonymous``)."""
    out: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in FIELDS or key == "Anonymous":
            out[key] = round(int(rest.split()[0]) / 1024, 1)
    return out


class Server:
    """gunicorn from ``repo`` serving ``index_dir`` with 2 workers on a free port."""

    def __init__(self, repo: Path, index_dir: Path, workers: int = 2) -> None:
        self.repo, self.index_dir, self.workers = repo, index_dir, workers
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> Server:
        env = {
            **os.environ,
            "VNSEARCH_INDEX_DIR": str(self.index_dir),
            "VNSEARCH_WORKERS": str(self.workers),
            "VNSEARCH_LOG_LEVEL": "warning",
            "PYTHONPATH": str(self.repo),
        }
        command = [sys.executable, "-m", "gunicorn", "--config", "gunicorn.conf.py"]
        command += ["--workers", str(self.workers), "--bind", f"{HOST}:{self.port}", "wsgi:app"]
        self.proc = subprocess.Popen(
            command, cwd=self.repo, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if get(self.port, "/healthz", timeout=5)[0] == 200 and len(self.pids()) >= 2:
                    return self
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("gunicorn did not start")

    def pids(self) -> list[int]:
        return child_pids(self.proc.pid) if self.proc else []

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=30)


def first_answers(index_dir: Path, query: str, prefix: str) -> dict[str, float]:
    """Milliseconds a fresh engine takes to open the index, then answer a search, a suggestion."""
    from search.engine import SearchEngine

    out = {}
    started = time.perf_counter()
    engine = SearchEngine(index_dir, warm=False)
    engine.health()
    out["open_ms"] = (time.perf_counter() - started) * 1000
    mark = time.perf_counter()
    engine.search(query)
    out["first_search_ms"] = (time.perf_counter() - mark) * 1000
    mark = time.perf_counter()
    engine.suggest(prefix)
    out["first_suggest_ms"] = (time.perf_counter() - mark) * 1000
    engine.close()
    return {k: round(v, 1) for k, v in out.items()}


def suggest_paths(count: int) -> list[str]:
    """Prefixes people type: the first one to four words of dev titles, cut mid-word."""
    rnd = random.Random(5)
    titles = [q.text for q in common.load_queries() if q.query_type == "title"]
    paths = []
    for title in rnd.sample(titles, count):
        words = title.split()
        text = " ".join(words[: rnd.randint(1, min(4, len(words)))])
        prefix = text[: rnd.randint(1, len(text))]
        paths.append("/api/suggest?" + urllib.parse.urlencode({"q": prefix}))
    return paths


def run(args: argparse.Namespace) -> dict:
    if args.index:
        index_dir = args.index
    else:
        docs = load_documents(None if args.docs == "all" else int(args.docs))
        index_dir, _ = vnsearch_index(len(docs), docs=docs)
    print(f"index {index_dir}, code from {args.repo}", flush=True)
    result: dict = {"index_dir": str(index_dir), "repo": str(args.repo)}
    result["fresh"] = first_answers(index_dir, "giá vàng hôm nay", "lao c")
    print(f"fresh engine: {result['fresh']}", flush=True)
    searches = [
        "/api/search?" + urllib.parse.urlencode({"q": q.text, "per_page": 10})
        for q in latency_queries(args.queries)
    ]
    with Server(args.repo, index_dir) as server:
        pids = server.pids()
        drive(server.port, ["/healthz"] * 20, 2, 20, 30)  # both workers open the generation
        result["boot"] = {str(p): smaps(p) for p in pids}
        load = drive(server.port, searches, args.clients, len(searches), 600)
        suggest = drive(server.port, suggest_paths(args.suggest), args.clients, args.suggest, 600)
        result["end"] = {str(p): smaps(p) for p in pids}
        result["requests"] = {
            "search": {k: load[k] for k in ("requests", "errors")},
            "suggest": {k: suggest[k] for k in ("requests", "errors")},
        }
    rows = [
        [when, pid, *(f"{values.get(f, 0):.1f}" for f in FIELDS)]
        for when in ("boot", "end")
        for pid, values in result[when].items()
    ]
    print_table(
        f"Worker memory (MB), {args.queries} searches + {args.suggest} suggestions "
        f"from {args.clients} clients",
        rows,
        ["when", "pid", *FIELDS],
    )
    print(json.dumps(result["requests"]))
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.memory", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--docs", default="all", help="articles in the index (a number or all)")
    parser.add_argument("--index", type=Path, help="an existing index to serve as it is")
    parser.add_argument("--repo", type=Path, default=common.REPO, help="the checkout to serve")
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--suggest", type=int, default=400)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args(argv)
    return run_recorded("memory", lambda: run(args), argv, args.json, "memory.json")


if __name__ == "__main__":
    sys.exit(main())
