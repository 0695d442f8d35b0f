"""Searches during and after a reindex: what readers see while editors publish.

    python -m bench.commit_load --index DIR --archive DIR [--clients 4] [--after 60]
                                [--new 100] [--changed 100] [--json F]

``--index`` (a built index of ``--archive``, e.g. ``bench.scaling``'s) is copied first (its
shared posting arrays left out: the workers build them as after a fresh build), so the original
is never changed.  gunicorn (``gunicorn.conf.py``, 2 workers) serves the copy; ``--clients``
threads send mixed title queries (accented, unaccented, Telex, short, phrase) without pause.
After a warm-up, an incremental reindex adds a source of ``--new`` new and ``--changed``
changed articles (``bench.scaling.write_updates``, tagged with the time so that every run
changes something), and the clients go on for ``--after`` seconds after its commit.

Printed: the reindex's time and summary; per phase (before, during the reindex, the minute after
its commit) requests, p50 / p95 / max and requests over 200 ms; errors (must be 0); and the
generation the workers answered from (``/healthz``) at the end.
"""

from __future__ import annotations

import argparse
import http.client
import json
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import unquote

import numpy as np

from bench import common
from bench.latency import HOST, Gunicorn, api_path, get, latency_queries, run_recorded
from bench.scaling import write_updates

SLOW_MS = 200.0
SLOWEST = 8  # slow requests listed per phase


def copy_index(index: Path, target: Path) -> Path:
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(index, target, ignore=shutil.ignore_patterns("postings-*"))
    return target


class Clients:
    """Threads sending GETs of ``paths`` in turn until stopped, each answer timed."""

    def __init__(self, port: int, paths: list[str], clients: int) -> None:
        self.port, self.paths = port, paths
        self.records: list[tuple[float, float, int, str]] = []  # (start, ms, status, path)
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._next = 0
        self.threads = [threading.Thread(target=self._client, daemon=True) for _ in range(clients)]

    def __enter__(self) -> Clients:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        for thread in self.threads:
            thread.join(60)

    def _client(self) -> None:
        conn = http.client.HTTPConnection(HOST, self.port, timeout=60)
        while not self._stop.is_set():
            with self._lock:
                path = self.paths[self._next % len(self.paths)]
                self._next += 1
            started = time.monotonic()
            try:
                conn.request("GET", path)
                resp = conn.getresponse()
                resp.read()
                status = resp.status
            except (OSError, http.client.HTTPException) as exc:
                status = 0
                with self._lock:
                    self.errors.append(f"{type(exc).__name__}: {exc}")
                conn.close()
                conn = http.client.HTTPConnection(HOST, self.port, timeout=60)
            elapsed = (time.monotonic() - started) * 1000
            with self._lock:
                self.records.append((started, elapsed, status, path))
                if status != 200 and status:
                    self.errors.append(f"HTTP {status}")
        conn.close()


def phase(records: list[tuple[float, float, int, str]], start: float, end: float) -> dict:
    ms = np.array([r[1] for r in records if start <= r[0] < end])
    if not ms.size:
        return {"requests": 0}
    slow = sorted(
        (r for r in records if start <= r[0] < end and r[1] > SLOW_MS), key=lambda r: -r[1]
    )
    return {
        # The slowest requests: when (seconds into the phase), how long, which query.
        "slowest": [
            {"at_s": round(r[0] - start, 1), "ms": round(r[1], 1), "query": unquote(r[3])}
            for r in slow[:SLOWEST]
        ],
        "requests": int(ms.size),
        "p50": round(float(np.percentile(ms, 50)), 1),
        "p95": round(float(np.percentile(ms, 95)), 1),
        "max": round(float(ms.max()), 1),
        "over_200ms": int((ms > SLOW_MS).sum()),
        "errors": sum(1 for r in records if start <= r[0] < end and r[2] != 200),
    }


def run(args: argparse.Namespace) -> dict:
    work = copy_index(args.index.resolve(), common.OUT / "commit-load-index")
    tag = time.strftime("%H%M%S")
    updates = write_updates(args.archive, common.OUT / f"commit-load-updates-{tag}", args.new,
                            args.changed)  # fmt: skip
    text = (updates / "updates.jsonl").read_text(encoding="utf-8")
    (updates / "updates.jsonl").write_text(
        text.replace("Cập nhật.", f"Cập nhật {tag}.").replace('"update-', f'"update-{tag}-'),
        encoding="utf-8",
    )
    queries = [api_path(q.text) for q in latency_queries(1000)]
    out: dict = {"index": str(args.index), "copy": str(work), "clients": args.clients}
    with Gunicorn(work, workers=2) as server:
        for path in queries[:100]:  # warm-up: the workers read their frequent terms
            get(server.port, path)
        time.sleep(args.settle)
        with Clients(server.port, queries[100:], args.clients) as clients:
            time.sleep(args.before)
            began = time.monotonic()
            proc = subprocess.run(
                [sys.executable, "-m", "search", "reindex", "--index", str(work),
                 "--workers", "2", str(args.archive), str(updates)],
                cwd=common.REPO, capture_output=True, text=True,
            )  # fmt: skip
            committed = time.monotonic()
            time.sleep(args.after)
            ended = time.monotonic()
        status, body = get(server.port, "/healthz")
    if proc.returncode:
        raise SystemExit(f"bench.commit_load: reindex failed: {proc.stderr[-2000:]}")
    records = clients.records
    out["reindex"] = {"seconds": round(committed - began, 1), "summary": proc.stdout.strip()}
    out["phases"] = {
        "before": phase(records, min((r[0] for r in records), default=0.0), began),
        "during reindex": phase(records, began, committed),
        f"{args.after:.0f} s after commit": phase(records, committed, ended),
    }
    out["errors"] = clients.errors[:20]
    out["healthz"] = json.loads(body) if status == 200 else status
    print(f"reindex: {out['reindex']['seconds']} s: {out['reindex']['summary']}")
    print(f"{'phase':<22}{'requests':>9}{'p50 ms':>9}{'p95 ms':>9}{'max ms':>9}"
          f"{'>200 ms':>9}{'errors':>8}")  # fmt: skip
    for name, row in out["phases"].items():
        print(f"{name:<22}{row.get('requests', 0):>9}{row.get('p50', '-'):>9}"
              f"{row.get('p95', '-'):>9}{row.get('max', '-'):>9}"
              f"{row.get('over_200ms', '-'):>9}{row.get('errors', '-'):>8}")  # fmt: skip
    for name, row in out["phases"].items():
        for slow in row.get("slowest", []):
            print(f"  slow in {name!r}: +{slow['at_s']} s, {slow['ms']} ms, {slow['query']}")
    print(f"errors: {len(clients.errors)}; /healthz at the end: {out['healthz']}")
    shutil.rmtree(work, ignore_errors=True)
    shutil.rmtree(updates, ignore_errors=True)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.commit_load", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--index", type=Path, required=True, help="a built index (copied)")
    parser.add_argument("--archive", type=Path, required=True, help="the index's source")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--new", type=int, default=100, help="new articles in the reindex")
    parser.add_argument("--changed", type=int, default=100, help="changed articles")
    parser.add_argument("--before", type=float, default=20.0, help="seconds before the reindex")
    parser.add_argument("--after", type=float, default=60.0, help="seconds after its commit")
    parser.add_argument(
        "--settle", type=float, default=30.0, help="seconds for the workers to warm first"
    )
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args(argv)
    common.require(common.QUERIES)
    if not (args.index / "vnsearch").is_dir():
        raise SystemExit(f"bench.commit_load: {args.index} is not a vnsearch index")
    return run_recorded("commit_load", lambda: run(args), argv, args.json, "commit-load.json")


if __name__ == "__main__":
    sys.exit(main())
