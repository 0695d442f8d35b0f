"""Sustained load: many concurrent clients against gunicorn for a fixed time.

    python -m bench.load [--clients 20] [--seconds 60] [--index DIR] [--json F]

gunicorn (``gunicorn.conf.py``, 2 workers) serves the vietnews index of ``bench.latency``
(built and cached there) on a free port of 127.0.0.1; ``--clients`` threads send
``/api/search?q=...&per_page=10`` for ``--seconds`` seconds (and at most ``--max-requests``
requests), cycling through a mixed query set (title queries of vietnews, accented, unaccented and
in Telex).  Printed: requests/s, p50/p95/p99, errors (must be 0), and each worker's RSS at start
(after a warm-up) and at the end.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bench import common
from bench.latency import (
    HTTP_HEADER,
    Gunicorn,
    api_path,
    drive,
    http_rows,
    latency_queries,
    print_rss,
    print_table,
    report_goals,
    run_recorded,
    vnsearch_index,
)

MIXED_FORMS = ("accented", "unaccented", "telex")
RSS_GOAL_MB = 300.0


def run(args: argparse.Namespace) -> dict:
    index_dir, build_s = vnsearch_index(rebuild=args.rebuild, given=args.index)
    print(f"vnsearch index: {index_dir}" + (f" (built in {build_s:.1f} s)" if build_s else ""))
    mixed = [q for q in latency_queries(args.queries) if q.form in MIXED_FORMS]
    paths = [api_path(q.text) for q in mixed]
    warm = [api_path(q.text) for q in latency_queries(100, salt="warmup")]
    result: dict = {"index_dir": str(index_dir), "queries": len(paths), "forms": MIXED_FORMS}
    with Gunicorn(index_dir) as server:
        print(f"gunicorn on 127.0.0.1:{server.port}, workers {server.worker_pids()}")
        warmed = drive(server.port, warm, 2, len(warm), 60)
        print(f"warm-up: {warmed['requests']} requests, {warmed['errors']} errors (not counted)")
        result["rss_start_mb"] = server.worker_rss()
        print_rss("at start", result["rss_start_mb"])
        print(f"{args.clients} clients for {args.seconds:.0f} s ...", flush=True)
        level = drive(server.port, paths, args.clients, args.max_requests, args.seconds)
        result["rss_end_mb"] = server.worker_rss()
        print_rss("at end", result["rss_end_mb"])
        result["load"] = level
        alive = server.proc.poll() is None
    result["server_alive_at_end"] = alive
    print_table(
        f"Load: /api/search, {len(paths)} mixed queries ({', '.join(MIXED_FORMS)}), "
        "gunicorn 2 workers",
        http_rows([level]),
        HTTP_HEADER,
    )
    for sample in level["error_samples"]:
        print(f"  error: {sample}")
    rss = [v for d in (result["rss_start_mb"], result["rss_end_mb"]) for v in d.values() if v]
    top = max(rss, default=0.0)
    goals = {
        "zero errors": (level["errors"] == 0, f"{level['errors']} errors"),
        "worker RSS <= 300 MB": (top <= RSS_GOAL_MB, f"max {top} MB"),
        "server alive at the end": (alive, "yes" if alive else "no"),
    }
    result["goals"] = report_goals(goals)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.load", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--clients", type=int, default=20, help="concurrent client threads")
    parser.add_argument("--seconds", type=float, default=60.0, help="how long to send requests")
    parser.add_argument("--max-requests", type=int, default=200_000, help="upper bound on requests")
    parser.add_argument(
        "--queries",
        type=int,
        default=1500,
        help="query set size before keeping the three mixed forms",
    )
    parser.add_argument("--rebuild", action="store_true", help="rebuild the cached index")
    parser.add_argument("--index", type=Path, help="use this index directory as it is")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args(argv)
    common.require(common.CORPUS)
    common.require(common.QUERIES)
    return run_recorded("load", lambda: run(args), argv, args.json, "load.json")


if __name__ == "__main__":
    sys.exit(main())
