"""What a hostile client can do to the served app (a real gunicorn, started as the README says):
huge or broken requests get the app's JSON error with its headers, slow and idle clients do not
stall the server, and nothing redirects to another host."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import platform
import socket
import struct
import subprocess
import sys
import textwrap
import threading
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from conftest import ROOT, Server

from search.results import safe_url
from web.headers import SECURITY_HEADERS


@pytest.fixture(scope="module")
def server(samples_index: Path) -> Iterator[Server]:
    """A server of its own: these tests tie up its connections on purpose."""
    started = Server(samples_index)
    yield started
    started.stop()


def raw_request(server: Server, data: bytes, timeout: float = 10) -> tuple[int, dict, bytes]:
    """Send ``data`` as is (tolerating a server that stops reading) and parse the answer."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=timeout) as sock:
        try:
            for start in range(0, len(data), 1 << 16):
                sock.sendall(data[start : start + (1 << 16)])
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed before reading it all
        chunks = []
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except ConnectionResetError:
            pass
    raw = b"".join(chunks)
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
    return status, headers, body


def assert_json_error(reply: tuple[int, dict, bytes], status: int, code: str) -> None:
    got_status, headers, body = reply
    assert got_status == status, body[:300]
    assert headers["content-type"] == "application/json; charset=utf-8"
    assert headers["cache-control"] == "no-store"
    for name, value in SECURITY_HEADERS.items():
        assert headers[name.lower()] == value
    error = json.loads(body.decode("utf-8"))["error"]
    assert set(error) == {"code", "message"} and error["code"] == code


def plain_query_seconds(server: Server, timeout: float = 10) -> float:
    started = time.monotonic()
    status, _, body = raw_request(
        server,
        b"GET /api/search?q=lao+cai HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        timeout,
    )
    assert status == 200 and json.loads(body)["total"] > 0
    return time.monotonic() - started


def test_a_40_mb_request_line_gets_a_json_414_at_once(server: Server) -> None:
    line = b"GET /api/search?q=" + b"a" * (40 << 20) + b" HTTP/1.1\r\nHost: x\r\n\r\n"
    assert_json_error(raw_request(server, line), 414, "uri_too_long")
    assert plain_query_seconds(server) < 2


def test_1000_accented_letters_still_reach_the_app(server: Server) -> None:
    query = "%E1%BA%A7" * 1000  # "ầ" percent-encoded: 9,000 bytes
    request = f"GET /api/search?q={query} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    status, _, body = raw_request(server, request.encode())
    assert status == 200 and json.loads(body)["total"] == 0


def test_too_many_or_too_large_headers_get_json_errors(server: Server) -> None:
    many = b"".join(b"X-H%d: v\r\n" % i for i in range(200))
    reply = raw_request(server, b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + many + b"\r\n")
    assert_json_error(reply, 431, "request_header_fields_too_large")
    large = b"X-Big: " + b"v" * 100_000 + b"\r\n"
    reply = raw_request(server, b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + large + b"\r\n")
    assert_json_error(reply, 431, "request_header_fields_too_large")


def unfinished_reply(server: Server, data: bytes) -> tuple[tuple[int, dict, bytes], float]:
    """Send ``data`` (a head without its blank line) and keep the connection open: the answer
    and how long it took."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(data)
        chunks = []
        with contextlib.suppress(ConnectionResetError):
            while chunk := sock.recv(65536):
                chunks.append(chunk)
    took = time.monotonic() - started
    assert chunks, f"closed without an answer after {took:.1f} s"
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
    return (int(lines[0].split()[1]), headers, body), took


def test_a_head_over_32_kb_is_answered_without_waiting_for_its_end(server: Server) -> None:
    # Ten headers of 4 KB are each within the limits, but no search needs a 40 KB head: the
    # client gets a JSON 431 at once instead of the server buffering on (or a thread waiting)
    # for the end of the head.
    headers = b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 4000) for i in range(10))
    reply, took = unfinished_reply(server, b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + headers)
    assert_json_error(reply, 431, "request_header_fields_too_large")
    assert took < 3
    # A request line over the limit and no end in sight: a JSON 414, at once too.
    reply, took = unfinished_reply(server, b"GET /api/search?q=" + b"a" * 40_000)
    assert_json_error(reply, 414, "uri_too_long")
    assert took < 3


def worker_pids(server: Server) -> set[int]:
    children = Path(f"/proc/{server.proc.pid}/task/{server.proc.pid}/children").read_text()
    return {int(pid) for pid in children.split()}


def test_heads_refused_to_clients_that_reset_at_once_crash_no_worker(server: Server) -> None:
    # Each client sends a head over the limit and resets the connection without reading the
    # 431: closing such connections must leave the worker's poller consistent.
    before = worker_pids(server)
    head = b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"X-H: " + b"v" * 40_000
    for _ in range(100):
        sock = socket.create_connection(("127.0.0.1", server.port))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        with contextlib.suppress(OSError):
            sock.sendall(head)
        sock.close()  # a reset, since SO_LINGER is 0
    assert plain_query_seconds(server) < 2
    assert worker_pids(server) == before


def test_a_nul_in_the_request_line_gets_a_json_400(server: Server) -> None:
    reply = raw_request(server, b"GET /api/search?q=a\x00b HTTP/1.1\r\nHost: x\r\n\r\n")
    assert_json_error(reply, 400, "bad_request")


def test_double_slash_with_a_foreign_host_is_not_redirected(server: Server) -> None:
    status, headers, _ = raw_request(
        server, b"GET //evil.example/x HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n"
    )
    assert status == 404 and "location" not in headers
    assert headers["cache-control"] == "no-store"


def test_client_errors_are_not_cached(server: Server) -> None:
    status, headers, _ = raw_request(
        server, b"GET /api/search?q= HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    assert status == 400 and headers["cache-control"] == "no-store"


# Far more connections than the two workers have threads (2 x 16 in gunicorn.conf.py).
MANY = 100


def open_connections(server: Server, count: int, first_bytes: bytes) -> list[socket.socket]:
    socks = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(count)]
    for sock in socks:
        if first_bytes:
            sock.sendall(first_bytes)
    return socks


def closed_by_server(socks: list[socket.socket], within: float) -> list[bool]:
    """Whether each socket is closed by the server within ``within`` seconds (answers ignored)."""
    closed: list[bool] = []

    def wait_closed(sock: socket.socket) -> None:
        sock.settimeout(within)
        try:
            while sock.recv(65536):
                pass
            closed.append(True)
        except TimeoutError:
            closed.append(False)
        except OSError:
            closed.append(True)

    threads = [threading.Thread(target=wait_closed, args=(s,)) for s in socks]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return closed


def test_slow_and_idle_clients_do_not_stall_the_server(server: Server) -> None:
    # Half-sent requests and idle connections, each kind more than the workers have threads:
    # a plain query is still answered at once, and the half-sent requests are closed by the
    # server once their time to arrive whole is up.
    partial = open_connections(server, MANY, b"GET /api/search?q=lao HTTP/1.1\r\nHost: x\r\nX-")
    idle = open_connections(server, MANY, b"")
    try:
        time.sleep(0.5)
        assert plain_query_seconds(server) < 2
        assert closed_by_server(partial, within=15) == [True] * MANY
        assert plain_query_seconds(server) < 2
    finally:
        for sock in partial + idle:
            sock.close()


def test_a_half_sent_next_request_on_a_kept_alive_connection_holds_no_thread(
    server: Server,
) -> None:
    # A whole request followed by part of the next one in the same write: the answer to the
    # first comes back, and the second part does not keep a thread waiting.
    whole = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    socks = open_connections(server, MANY, whole + b"GET /healthz HTTP/1.1\r\nHo")
    try:
        for sock in socks:
            sock.settimeout(10)
            assert sock.recv(12) == b"HTTP/1.1 200"
        assert plain_query_seconds(server) < 2
        assert closed_by_server(socks, within=15) == [True] * MANY
    finally:
        for sock in socks:
            sock.close()


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        # A body announced and never sent: the app answers (405) without it.
        b"POST /api/search?q=lao HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\nxx",
    ],
    ids=["connection-close", "unsent-body"],
)
def test_clients_that_never_close_after_their_answer_do_not_stall_the_server(
    server: Server, request_bytes: bytes
) -> None:
    # Each connection is answered and then closed by the server, while the client neither reads
    # nor closes its end: waiting for the client to close must not hold up other requests.
    socks = open_connections(server, 40, request_bytes)
    try:
        time.sleep(0.5)
        assert plain_query_seconds(server) < 2
        replies = [sock.recv(12) for sock in socks]
        assert set(replies) == {b"HTTP/1.1 200" if b"GET" in request_bytes else b"HTTP/1.1 405"}
        assert closed_by_server(socks, within=15) == [True] * len(socks)
    finally:
        for sock in socks:
            sock.close()


@pytest.fixture(scope="module")
def big_article_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server over an index holding one article as long as a field may be (2 MB of page)."""
    from search.documents import MAX_TEXT_CHARS, Document
    from search.indexer import build_index

    paragraph = "Lào Cai mưa lớn kéo dài nhiều ngày liền. " * 50 + "\n\n"
    body = (paragraph * (MAX_TEXT_CHARS // len(paragraph)))[:MAX_TEXT_CHARS]
    docs = [Document(id="big", title="Bài rất dài", body=body)]
    docs += [Document(id=f"d{i}", title=f"Lào Cai {i}", body="Lào Cai mưa lớn.") for i in range(3)]
    path = tmp_path_factory.mktemp("big-article") / "index"
    build_index(docs, path, workers=1)
    started = Server(path)
    yield started
    started.stop()


def test_clients_that_never_read_their_answer_do_not_hold_the_threads(
    big_article_server: Server,
) -> None:
    # Each client asks for the long article three times in a row (more than the kernel buffers
    # hold) and reads nothing, on more connections than the workers have threads: a thread
    # stuck sending is cut off, and a plain query still gets its answer.
    server = big_article_server
    many = b"GET /doc/big HTTP/1.1\r\nHost: x\r\n\r\n" * 3
    socks = []
    for _ in range(40):
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", server.port))
        sock.sendall(many)
        socks.append(sock)
    try:
        time.sleep(1)
        for _ in range(3):
            # Held threads made it wait 5 s or more; 4 leaves room for a loaded machine (the
            # worker is also pushing 240 copies of a 2 MB page meanwhile).
            assert plain_query_seconds(server) < 4
            time.sleep(1)
        assert closed_by_server(socks, within=30) == [True] * len(socks)
    finally:
        for sock in socks:
            sock.close()


def read_answers(sock: socket.socket, count: int) -> list[tuple[int, bytes]]:
    """``count`` HTTP/1.1 answers (status, body) read from ``sock``, by their Content-Length."""
    buffer = bytearray()
    answers = []
    while len(answers) < count:
        head_end = buffer.find(b"\r\n\r\n")
        if head_end >= 0:
            status_line, *lines = bytes(buffer[:head_end]).decode("latin-1").split("\r\n")
            headers = {k.lower(): v.strip() for k, v in (line.split(":", 1) for line in lines)}
            end = head_end + 4 + int(headers["content-length"])
            if len(buffer) >= end:
                answers.append((int(status_line.split()[1]), bytes(buffer[head_end + 4 : end])))
                del buffer[:end]
                continue
        chunk = sock.recv(1 << 20)
        assert chunk, f"closed after {len(answers)} answers"
        buffer += chunk
    return answers


def test_a_client_that_reads_slowly_gets_every_answer_whole_and_in_order(
    big_article_server: Server,
) -> None:
    server = big_article_server
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", server.port))
        sock.settimeout(10)
        sock.sendall(
            b"GET /doc/big HTTP/1.1\r\nHost: x\r\n\r\n" * 2
            + b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
        )
        time.sleep(2)  # the answers wait, part in the kernel, part in the worker
        answers = read_answers(sock, 3)
    with urllib.request.urlopen(f"{server.url}/doc/big", timeout=10) as response:
        page = response.read()
    assert len(page) > 2_000_000
    assert answers[:2] == [(200, page), (200, page)]
    assert answers[2][0] == 200 and json.loads(answers[2][1])["status"] == "ok"


def test_a_queued_socket_sends_what_the_kernel_takes_and_keeps_the_rest() -> None:
    """What a request writes goes out in one send once it is done (the head and the body
    together); what the kernel does not take then stays pending for the main loop."""
    from web.server import QueuedSocket

    ours, theirs = socket.socketpair()
    with ours, theirs:
        ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        theirs.setblocking(False)
        queued = QueuedSocket(ours)
        queued.sendall(b"HTTP/1.1 200 OK\r\n\r\n")
        queued.sendall(b"{}")
        with pytest.raises(BlockingIOError):
            theirs.recv(100)  # nothing sent while the request runs
        queued.flush()
        assert queued.pending == b""  # taken whole by the kernel
        assert theirs.recv(100) == b"HTTP/1.1 200 OK\r\n\r\n{}"  # in one piece
        data = bytes(range(256)) * 4096  # 1 MiB: more than the socket buffers hold
        queued.sendall(data)
        queued.flush()
        assert 0 < len(queued.pending) < len(data)
        queued.sendall(b"next")  # everything else queues behind it
        assert queued.pending.endswith(b"next")
        received = bytearray()
        with contextlib.suppress(BlockingIOError):
            while chunk := theirs.recv(1 << 20):
                received += chunk
        assert received + queued.pending == data + b"next"
        theirs.close()
        queued.flush()  # a broken connection: kept for the main loop to find
        assert queued.pending


def test_a_trickling_client_is_cut_off_at_its_deadline(server: Server) -> None:
    # One byte every 0.2 s never completes its head: the connection is closed after the 5 s a
    # request has to arrive whole, however long the client keeps trickling.
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.settimeout(0.2)
        request = b"GET /api/search?q=lao HTTP/1.1\r\nHost: x\r\nX-Trickle: " + b"v" * 200
        for byte in request:
            try:
                sock.sendall(bytes([byte]))
                if sock.recv(1) == b"":
                    break
            except TimeoutError:
                continue
            except OSError:
                break
    assert 4 < time.monotonic() - started < 12


def test_control_characters_never_reach_a_link() -> None:
    assert safe_url("https://example.org/a\x00b") is None
    assert safe_url("https://example.org/a\nb") is None
    assert safe_url("https://example.org/a\x7fb") is None
    assert safe_url("https://example.org/ok?x=1") == "https://example.org/ok?x=1"
    assert safe_url("https:///nohost") is None


@pytest.mark.parametrize(
    "name, value, message",
    [
        ("VNSEARCH_REQUEST_SECONDS", "soon", "_REQUEST_SECONDS must be a number, not 'soon'"),
        ("VNSEARCH_REQUEST_SECONDS", "nan", "_REQUEST_SECONDS must be at least 0.1, not nan"),
        ("VNSEARCH_WORKERS", "two", "VNSEARCH_WORKERS must be a whole number, not 'two'"),
        ("VNSEARCH_THREADS", "0", "VNSEARCH_THREADS must be at least 1, not 0"),
        ("VNSEARCH_CACHE_MB", "lots", "VNSEARCH_CACHE_MB must be"),
        ("VNSEARCH_KERNELS", "fast", "VNSEARCH_KERNELS must be one of numba, numpy, not 'fast'"),
    ],
)
def test_a_bad_setting_stops_gunicorn_with_one_line(
    tmp_path: Path, name: str, value: str, message: str
) -> None:
    """An operator's typo in a setting: gunicorn exits at once, non-zero, with one line naming
    the variable, not a traceback from every worker that fails to boot."""
    from conftest import free_port

    env = {**os.environ, "VNSEARCH_INDEX_DIR": str(tmp_path), name: value}
    done = subprocess.run(
        [sys.executable, "-m", "gunicorn", "--config", str(ROOT / "gunicorn.conf.py"),
         "--bind", f"127.0.0.1:{free_port()}", "wsgi:app"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode != 0
    assert message in done.stderr
    assert "Traceback" not in done.stderr
    assert "Booting worker" not in done.stderr


@pytest.mark.skipif(
    not (sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"),
    reason="malloc arenas are glibc's",
)
def test_worker_threads_reuse_the_memory_their_searches_freed() -> None:
    """A worker's threads run its searches: each search at a million articles holds tens of MB
    of arrays and frees them.  With the worker's malloc settings (``keep_freed_memory``,
    ``limit_malloc_arenas``) the next search reuses that memory; with an arena of their own the
    threads' freed heaps were handed back and every search faulted its arrays in again (at 1M,
    400,000 page faults a pass over 1,000 queries in one worker: ``bench.latency --http``)."""
    script = textwrap.dedent(
        """
        import resource
        from concurrent.futures import ThreadPoolExecutor
        import numpy as np
        from search.malloc import keep_freed_memory, limit_malloc_arenas

        assert keep_freed_memory(128) and limit_malloc_arenas()

        def search():
            arrays = [np.ones(1_000_000, np.float32) for _ in range(20)]  # 80 MB at once
            return sum(float(a[0]) for a in arrays)

        with ThreadPoolExecutor(max_workers=16) as threads:
            for _ in range(10):
                threads.submit(search).result()
            before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            for _ in range(50):
                threads.submit(search).result()
            print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    # 50 searches faulting 80 MB in again would be ~1,000,000 faults; a few stray pages remain.
    assert int(done.stdout) < 2_000


@pytest.fixture()
def slow_app(tmp_path: Path) -> Iterator[Server]:
    """Two workers serving ``tests/slow_wsgi.py`` (``/slow`` takes 1.5 s), both started."""
    started = Server(tmp_path, workers=2, app="slow_wsgi:app")
    try:
        pids: set[bytes] = set()
        deadline = time.monotonic() + 30
        with ThreadPoolExecutor(max_workers=4) as pool:  # four at once: both workers answer
            while len(pids) < 2 and time.monotonic() < deadline:  # the second may still start
                pids.update(pid for pid, _ in pool.map(fetch_fresh, [started] * 4, ["/pid"] * 4))
                time.sleep(0.02)
        assert len(pids) == 2, "the second worker did not answer within 30 s"
        yield started
    finally:
        started.stop()


def fetch_fresh(server: Server, path: str) -> tuple[bytes, float]:
    """GET ``path`` on a new connection: the answering worker's pid and the seconds it took."""
    started = time.monotonic()
    with urllib.request.urlopen(server.url + path, timeout=30) as reply:
        return reply.read(), time.monotonic() - started


def test_a_slow_request_leaves_new_connections_to_the_idle_worker(slow_app: Server) -> None:
    """A threaded worker accepted connections while its app ran a request and queued them behind
    it (at a million articles, plain queries waited behind an expensive one 4-5 times their
    time); it now leaves them to a worker that is free, as sync workers do."""
    slow: list[bytes] = []
    thread = threading.Thread(target=lambda: slow.append(fetch_fresh(slow_app, "/slow")[0]))
    thread.start()
    time.sleep(0.3)  # the slow request is in its worker's app now
    answers = [fetch_fresh(slow_app, "/fast") for _ in range(10)]
    thread.join()
    assert [seconds < 0.75 for _, seconds in answers] == [True] * 10
    pids = {pid for pid, _ in answers}
    assert len(pids) == 1 and len(slow) == 1 and pids != set(slow)  # all from the other worker


def answer_behind(tmp_path: Path, path: str, pause: float) -> tuple[list[str | None], float]:
    """One worker of ``tests/slow_wsgi.py`` and two kept-alive connections: ``path`` on the
    first and, ``pause`` seconds later, ``/fast`` on the second.  The ``Connection`` headers of
    both answers (the first's, the second's) and the seconds ``/fast`` took."""
    server = Server(tmp_path, workers=1, app="slow_wsgi:app")
    first = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    second = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        for conn in (first, second):  # both connections open and kept alive
            conn.request("GET", "/fast")
            reply = conn.getresponse()
            reply.read()
            assert reply.getheader("Connection") == "keep-alive"
        headers: list[str | None] = []

        def ahead() -> None:
            first.request("GET", path)
            reply = first.getresponse()
            reply.read()
            headers.append(reply.getheader("Connection"))

        thread = threading.Thread(target=ahead)
        thread.start()
        time.sleep(pause)
        started = time.monotonic()
        second.request("GET", "/fast")
        reply = second.getresponse()
        assert reply.read()
        seconds = time.monotonic() - started
        thread.join()
        return [*headers, reply.getheader("Connection")], seconds
    finally:
        first.close()
        second.close()
        server.stop()


def test_a_request_that_waited_for_the_app_closes_its_connection(tmp_path: Path) -> None:
    """Its client's next request then reaches whichever worker is free; a request that found
    the app free keeps its connection."""
    headers, seconds = answer_behind(tmp_path, "/slow", 0.3)  # /fast waits for /slow
    assert headers == ["keep-alive", "close"] and seconds > 0.5


def test_a_request_while_another_thread_finishes_its_answer_keeps_its_connection(
    tmp_path: Path,
) -> None:
    """Whether a request waits is the app's state, not the main loop's bookkeeping: a thread
    still finishing an answer whose app has returned (``/linger``'s close; or a thread the
    kernel set aside right after sending, as CI once saw) does not hold the app, so the next
    request is answered at once and keeps its connection."""
    headers, seconds = answer_behind(tmp_path, "/linger", 0.2)  # /linger's thread in close
    assert headers == ["keep-alive", "keep-alive"] and seconds < 0.5  # its 1 s not waited for


def test_a_kept_alive_client_yields_to_connections_waiting_to_be_accepted() -> None:
    """Under load a kept-alive client would be served ahead of new connections again and
    again: while any wait in the listening socket's queue, answers close their connection."""
    from web.server import VnsearchWorker

    worker = VnsearchWorker.__new__(VnsearchWorker)  # only its listening sockets are read
    with socket.create_server(("127.0.0.1", 0)) as listener:
        worker.sockets = [listener]
        assert not worker.others_waiting()
        with socket.create_connection(listener.getsockname()):
            deadline = time.monotonic() + 5
            while not worker.others_waiting() and time.monotonic() < deadline:
                time.sleep(0.01)
            assert worker.others_waiting()
            accepted, _ = listener.accept()
            accepted.close()
            assert not worker.others_waiting()
