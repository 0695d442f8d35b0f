"""Expensive and hostile requests against a running server, next to plain queries.

    python -m bench.attack [--index DIR] [--seconds 8] [--attackers 1] [--slow 50]

Starts gunicorn on a free 127.0.0.1 port exactly as the README's production setup
(``gunicorn.conf.py``: 2 workers, ``web.server.VnsearchWorker``) over the vietnews index of
``bench.latency`` (built and cached in ``bench/out/`` when ``--index`` is not given).  First a
quiet run of plain queries; then, case by case, ``--attackers`` clients repeat the attack while
one client sends plain queries.  Per case: the attack request's median time as a multiple of a
quiet plain query's median, the plain queries' p95 during the attack as a multiple of the quiet
p95, and the 5xx answers.  Goals (issue 15): no case above 25x, plain p95 under attack <= 3x,
no 5xx.  Held connections, each kind more than the workers' threads, replaced as the server
closes them: slow clients hold half-sent requests; idle ones send nothing; others send a whole
request and then neither read the answer nor close; slow readers (opened once) queue requests
for long articles, megabytes of answers, and read nothing.  On a shared machine the figures are
rough: compare runs made side by side.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import socket
import statistics
import string
import struct
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path

from bench import common

REPO = common.REPO
PLAIN = [
    "lào cai",
    "giá vàng",
    "hà nội mưa lớn",
    "bong da viet nam",
    "thi tot nghiep",
    "xuaats khaaur gaoj",
    "tai nạn giao thông",
    '"ủy ban nhân dân"',
    "covid",
    "bệnh viện",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def made_up(count: int, letters: int, seed: int) -> str:
    rng = random.Random(seed)
    return " ".join(
        "t" + "".join(rng.choice(string.ascii_lowercase) for _ in range(letters - 1))
        for _ in range(count)
    )


def get(port: int, path: str, timeout: float = 60) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def raw(port: int, data: bytes, timeout: float = 60) -> int:
    """Send raw bytes (tolerating a server that stops reading), return the status."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        try:
            for start in range(0, len(data), 1 << 16):
                sock.sendall(data[start : start + (1 << 16)])
        except OSError:
            pass
        try:
            head = sock.recv(64)
        except OSError:
            return 0
    parts = head.split()
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0


def search_path(q: str, **params: object) -> str:
    return "/api/search?" + urllib.parse.urlencode({"q": q, **params})


WORDS = (
    "ban",
    "bàn",
    "bán",
    "nhà",
    "nước",
    "chính",
    "phủ",
    "kinh",
    "tế",
    "xã",
    "hội",
    "giáo",
    "dục",
    "y",
    "tế",
    "bóng",
    "đá",
    "thể",
    "thao",
    "thời",
    "tiết",
    "mưa",
    "lớn",
    "giá",
    "vàng",
    "chứng",
    "khoán",
    "du",
    "lịch",
    "lào",
    "cai",
    "hà",
    "nội",
    "đà",
    "nẵng",
)


def cases(port: int) -> dict[str, Callable[[], int]]:
    """Name -> one attack request (returns its HTTP status; 0 when the server closed)."""
    line = b"GET /api/search?q=" + b"a" * (40 << 20) + b" HTTP/1.1\r\nHost: x\r\n\r\n"
    headers = b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 8000) for i in range(100))
    typo = made_up(64, 14, 15)
    many = " ".join(random.Random(3).choice(WORDS) for _ in range(200))
    triples = zip(WORDS, WORDS[1:], WORDS[2:], strict=False)
    phrases = " ".join(f'"{a} {b} {c}"' for a, b, c in triples)
    phrases += " " + " ".join(f"-{w}" for w in WORDS[:8])
    return {
        "64 made-up 14-letter words": lambda: get(port, search_path(typo)),
        "200 terms": lambda: get(port, search_path(many)),
        "phrases and exclusions": lambda: get(port, search_path(phrases)),
        "operators and wildcards": lambda: get(
            port, search_path("a* OR b* AND NOT c? " * 40 + "*" * 200)
        ),
        "deep page, 100 per page": lambda: get(port, search_path("nhà", page=1000, per_page=100)),
        "huge per_page and page (400)": lambda: get(
            port, search_path("nhà", page=10**9, per_page=10**9)
        ),
        "suggest, 1,000 characters": lambda: get(
            port, "/api/suggest?" + urllib.parse.urlencode({"q": "lào cai " * 125})
        ),
        "odd /doc/ ids": lambda: get(port, "/doc/" + "..%2F" * 500 + "etc%2Fpasswd"),
        "40 MB request line": lambda: raw(port, line),
        "100 headers of 8 KB": lambda: raw(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + headers),
    }


TCP_CLOSE_STATES = (7, 8)  # CLOSE, CLOSE_WAIT (Linux's tcp_info state): the server closed


def server_closed(sock: socket.socket) -> bool:
    """Whether the server closed ``sock``, found without reading what it sent."""
    try:
        info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)
    except OSError:
        return True
    return struct.unpack("B", info[:1])[0] in TCP_CLOSE_STATES


def long_article_requests(port: int, megabytes: float) -> bytes:
    """Pipelined requests for the longest articles among a common word's hits, about
    ``megabytes`` of answers in all (more than the kernel buffers for one connection)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.request("GET", search_path("nhà", per_page=100))
    ids = [hit["id"] for hit in json.loads(conn.getresponse().read())["hits"]]
    sizes = {}
    for doc_id in ids:
        conn.request("GET", "/doc/" + urllib.parse.quote(doc_id))
        sizes[doc_id] = len(conn.getresponse().read())
    conn.close()
    longest = sorted(ids, key=sizes.get, reverse=True)[:10]
    requests, total = [], 0
    while total < megabytes * 1e6:
        doc_id = longest[len(requests) % len(longest)]
        requests.append(f"GET /doc/{urllib.parse.quote(doc_id)} HTTP/1.1\r\nHost: x\r\n\r\n")
        total += sizes[doc_id]
    return "".join(requests).encode()


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def plain_run(port: int, seconds: float, stop: threading.Event | None = None) -> list[float]:
    times: list[float] = []
    deadline = time.monotonic() + seconds
    i = 0
    while time.monotonic() < deadline and not (stop and stop.is_set()):
        started = time.perf_counter()
        status = get(port, search_path(PLAIN[i % len(PLAIN)]))
        times.append((time.perf_counter() - started) * 1000)
        if status >= 500:
            times[-1] = float("inf")
        i += 1
    return times


def attack_case(
    port: int,
    attack: Callable[[], int] | None,
    seconds: float,
    attackers: int,
    slowloris: int = 0,
    first_bytes: bytes = b"GET /api/search?q=lao HTTP/1.1\r\nHost: x\r\nX-Slow: ",
    refill: bool = True,
) -> dict:
    """Plain queries for ``seconds`` while ``attackers`` clients repeat ``attack`` and
    ``slowloris`` connections that sent ``first_bytes`` stay open, reading nothing (replaced
    as the server closes them if ``refill``)."""
    stop = threading.Event()
    attack_ms: list[float] = []
    statuses: list[int] = []
    held: list[socket.socket] = []

    def loop() -> None:
        while not stop.is_set():
            started = time.perf_counter()
            statuses.append(attack())
            attack_ms.append((time.perf_counter() - started) * 1000)

    def slow() -> None:
        opened = 0
        while not stop.is_set():
            while len(held) < slowloris and (refill or opened < slowloris):
                try:
                    sock = socket.socket()
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                    sock.settimeout(5)
                    sock.connect(("127.0.0.1", port))
                    sock.setblocking(False)
                    if first_bytes:  # all of it, however long the server takes to read it
                        threading.Thread(target=send_all, args=(sock, first_bytes)).start()
                    held.append(sock)
                    opened += 1
                except OSError:
                    break
            for sock in list(held):  # replace what the server closed
                if refill and server_closed(sock):
                    held.remove(sock)
                    sock.close()
            time.sleep(0.2)

    def send_all(sock: socket.socket, data: bytes) -> None:
        view = memoryview(data)
        while view and not stop.is_set():
            try:
                view = view[sock.send(view) :]
            except BlockingIOError:
                time.sleep(0.05)
            except OSError:
                return

    threads = [threading.Thread(target=loop) for _ in range(attackers if attack else 0)]
    if slowloris:
        threads.append(threading.Thread(target=slow))
    for thread in threads:
        thread.start()
    time.sleep(0.5)
    plain = plain_run(port, seconds)
    stop.set()
    for thread in threads:
        thread.join()
    for sock in held:
        sock.close()
    return {
        "attack_median_ms": statistics.median(attack_ms) if attack_ms else None,
        "attack_requests": len(attack_ms),
        "statuses": sorted(set(statuses)),
        "plain_p95_ms": percentile(plain, 0.95),
        "plain_requests": len(plain),
        "errors_5xx": sum(s >= 500 for s in statuses) + sum(t == float("inf") for t in plain),
    }


def start_server(index: Path) -> tuple[subprocess.Popen, int]:
    port = free_port()
    env = {**os.environ, "VNSEARCH_INDEX_DIR": str(index)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--config", str(REPO / "gunicorn.conf.py"),
         "--bind", f"127.0.0.1:{port}", "wsgi:app"],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if get(port, "/healthz", timeout=2) == 200:
                return proc, port
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("bench: gunicorn did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", type=Path, default=None)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--attackers", type=int, default=1)
    parser.add_argument("--slow", type=int, default=50, help="slow and idle connections")
    args = parser.parse_args()

    from bench.latency import vnsearch_index

    index, _ = vnsearch_index(given=args.index)
    proc, port = start_server(index)
    try:
        plain_run(port, 3)  # warm both workers
        quiet = plain_run(port, args.seconds)
        quiet_median, quiet_p95 = statistics.median(quiet), percentile(quiet, 0.95)
        print(
            f"index {index}; quiet plain queries: median {quiet_median:.1f} ms, "
            f"p95 {quiet_p95:.1f} ms ({len(quiet)} requests)"
        )
        rows = {}
        for name, attack in cases(port).items():
            rows[name] = attack_case(port, attack, args.seconds, args.attackers)
        rows[f"{args.slow} slow clients (half-sent requests)"] = attack_case(
            port, None, args.seconds, 0, slowloris=args.slow
        )
        rows[f"{args.slow} idle connections"] = attack_case(
            port, None, args.seconds, 0, slowloris=args.slow, first_bytes=b""
        )
        rows[f"{args.slow} clients never closing"] = attack_case(
            port, None, args.seconds, 0, slowloris=args.slow,
            first_bytes=b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )  # fmt: skip
        rows["40 slow readers (6 MB queued each)"] = attack_case(
            port, None, args.seconds, 0, slowloris=40,
            first_bytes=long_article_requests(port, 6), refill=False,
        )  # fmt: skip
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    print(
        f"\n{'case':38} {'attack ms':>10} {'x plain':>8} {'plain p95':>10} {'x quiet':>8} "
        f"{'5xx':>4}  status"
    )
    ok = True
    for name, row in rows.items():
        ratio = row["attack_median_ms"] / quiet_median if row["attack_median_ms"] else None
        p95_ratio = row["plain_p95_ms"] / quiet_p95
        good = (ratio is None or ratio <= 25) and p95_ratio <= 3 and row["errors_5xx"] == 0
        ok &= good
        row.update(x_plain=ratio, p95_x_quiet=p95_ratio, ok=good)
        attack_ms = f"{row['attack_median_ms']:.1f}" if row["attack_median_ms"] else "-"
        print(
            f"{name:38} {attack_ms:>10} {ratio or 0:8.1f} {row['plain_p95_ms']:10.1f} "
            f"{p95_ratio:8.2f} {row['errors_5xx']:4d}  {row['statuses']} "
            f"{'PASS' if good else 'FAIL'}"
        )
    print(
        f"\n{'PASS' if ok else 'FAIL'}: no case above 25x a plain query's median, plain p95 "
        "under attack <= 3x quiet, 0 5xx"
    )
    out = common.OUT / "attack.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {"quiet_median_ms": quiet_median, "quiet_p95_ms": quiet_p95, "cases": rows},
            indent=1,
            default=str,
        )
    )


if __name__ == "__main__":
    main()
