"""The gunicorn worker vnsearch is served with: request heads read without a thread, a deadline
for a request to arrive whole, and gunicorn's own error answers in the app's JSON shape with its
security headers.

gunicorn's ``sync`` worker reads a request in the one process that also runs the app: two
clients that send half a request and go idle stall both workers (issue 15).  The ``gthread``
worker parks idle keep-alive connections in its poller, but hands a new connection to a thread
as soon as it sends a byte, and that thread then blocks until the request head is complete: a
few dozen clients that send part of a request and stop hold every thread, and a plain query
waits for their deadline.  ``VnsearchWorker`` reads each request head (request line and
headers) in its main loop, without blocking, as a proxy such as nginx would, and gives a thread
only a connection whose head has arrived whole (or is already over the size limits, for the
parser to refuse).  A half-sent request then costs a buffer, not a thread.  A head must arrive
whole within ``REQUEST_READ_SECONDS`` or its connection is closed; the same deadline still
applies once a thread reads the rest of a request (a body), as a backstop.
The app itself runs one request at a time per process (``web.OneAtATime``).  A connection that
closes after its answer is drained in the main loop too, without waiting there for the client:
gunicorn's graceful close would block the loop for each client that never closes its end.

Answers are written the same way: a thread writes what the kernel takes at once and leaves the
rest (``QueuedSocket``) to the main loop, which sends it as the client reads, before it reads
that connection's next request.  A client that does not read its answer (with requests for long
articles queued behind it) therefore holds no thread; it has ``SEND_SECONDS`` to take it, and a
worker holds at most ``SEND_BUFFER_BYTES`` of such answers.

A worker leaves new connections to the other workers while a request of its own is in its app
(``set_accept_enabled``), as gunicorn's ``sync`` workers do by only accepting when idle: a
threaded worker otherwise accepts whatever arrives and queues it behind the request it runs,
while another worker may sit idle.  For the same reason a request that had to wait for the app,
or that starts while new connections wait to be accepted, is answered with ``Connection: close``:
its client's next request comes back through ``accept``, in turn, to a worker that is free,
instead of queueing again on the busy one or going ahead of the waiting connections.  A lone
client keeps its connection.  (At a million articles, 4 clients on 2 workers had stuck to one
worker as often as not: 83-133 req/s for the same run, and a plain query waited behind an
expensive one.)

Errors gunicorn answers itself (a request line or header over the limits of ``gunicorn.conf.py``,
a NUL in the request line, an invalid header) never reach Flask; ``write_error`` gives them the
``{"error": {"code", "message"}}`` body and the headers every other answer carries.
"""

from __future__ import annotations

import contextlib
import errno
import json
import select
import selectors
import socket
import threading
import time
from functools import partial

from gunicorn import http, util
from gunicorn.http import message
from gunicorn.http2 import negotiation
from gunicorn.workers import gthread
from gunicorn.workers.gthread import TConn, ThreadWorker

from search import kernels
from search.config import env_float
from search.malloc import limit_malloc_arenas

from .headers import SECURITY_HEADERS

# Seconds a client has to send a whole request (line and headers) once it started sending.
# (gunicorn.conf.py checks the setting when gunicorn starts: a bad value is one line, not a
# traceback per worker.)
REQUEST_READ_SECONDS = env_float("request_seconds", 5.0, 0.1)
# Seconds a thread waits for more of a request body, or for the first bytes of a connection the
# main loop did not read itself, before giving the connection back to the poller.
IDLE_HANDOFF_SECONDS = 0.2
# Bytes read from a socket at a time while a request head arrives.
RECV_BYTES = 65536
# A whole request head (line and headers) the main loop buffers at most: a search needs a
# request line within ``limit_request_line`` and a few short headers.  A longer head gets a JSON
# 414 or 431 at once, so a thousand connections cost at most this much memory each.
HEAD_BYTES = 32768
# Seconds a connection is still read (and the bytes dropped) after its last answer, so that
# closing it with unread data does not reset the connection before the client reads the answer.
LINGER_SECONDS = 1.0
# Seconds a client has to take the part of an answer the kernel could not buffer, and bytes of
# such parts a worker holds for all its clients: past either, the connection is closed.
SEND_SECONDS = 10.0
SEND_BUFFER_BYTES = 64 << 20

# status -> (code, message) of the answers gunicorn gives without the app.
SERVER_ERRORS = {
    400: ("bad_request", "Yêu cầu không hợp lệ."),
    403: ("forbidden", "Yêu cầu bị từ chối."),
    414: ("uri_too_long", "Địa chỉ yêu cầu quá dài: truy vấn tối đa 1.000 ký tự."),
    417: ("expectation_failed", "Yêu cầu không hợp lệ."),
    431: ("request_header_fields_too_large", "Phần đầu (header) của yêu cầu quá lớn."),
    500: ("internal_server_error", "Máy chủ gặp lỗi khi xử lý yêu cầu. Vui lòng thử lại sau."),
    501: ("not_implemented", "Máy chủ không hỗ trợ yêu cầu này."),
}


def error_bytes(status: int, reason: str) -> bytes:
    """A whole HTTP response for an error gunicorn answers itself, in the app's error shape."""
    code, message = SERVER_ERRORS.get(status, SERVER_ERRORS[400 if status < 500 else 500])
    body = json.dumps({"error": {"code": code, "message": message}}, ensure_ascii=False).encode()
    headers = {
        "Connection": "close",
        "Content-Type": "application/json; charset=utf-8",
        "Content-Length": str(len(body)),
        "Cache-Control": "no-store",
        **SECURITY_HEADERS,
    }
    head = f"HTTP/1.1 {status} {reason}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    return (head + "\r\n").encode("latin-1") + body


def write_error(sock, status_int: int, reason: str, mesg: str) -> None:
    """Replaces ``gunicorn.util.write_error`` (HTML naming the parser's complaint) in our
    workers; the complaint itself is logged by gunicorn, not sent back."""
    util.write_nonblock(sock, error_bytes(int(status_int), reason))


def head_complete(head: bytes | bytearray) -> bool:
    """Whether ``head`` holds a whole request line and headers (the blank line after them).

    >>> head_complete(b"GET / HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n")
    True
    >>> head_complete(b"GET / HTTP/1.1\\r\\nHost: x\\r\\n")
    False
    """
    return b"\r\n\r\n" in head or b"\n\n" in head


class QueuedSocket:
    """The socket a thread writes an answer to.  What the request writes is kept (``pending``)
    until it is done, then ``flush`` sends what the kernel takes at once and leaves the rest
    for the main loop, so that a client that reads slowly or not at all holds no thread.

    One send an answer: gunicorn writes the head and the body apart, and two sends on a
    connection cost two trips through the kernel's TCP path (and two wake-ups of the client)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.pending = bytearray()

    def sendall(self, data) -> None:
        self.pending += data

    def flush(self) -> None:
        """Send what the kernel takes now of what the request wrote; the rest stays pending (a
        connection the client broke is found by the main loop when it sends the rest)."""
        if not self.pending:
            return
        try:
            sent = self.sock.send(self.pending, socket.MSG_DONTWAIT)
        except OSError:  # full (BlockingIOError), interrupted, or broken
            return
        del self.pending[:sent]

    def send(self, data) -> int:
        self.sendall(data)
        return len(data)

    def __getattr__(self, name: str):
        return getattr(self.sock, name)


class VnsearchWorker(ThreadWorker):
    """``gthread`` that reads request heads in its main loop, with deadlines and JSON errors."""

    def init_process(self) -> None:
        # conn -> monotonic deadline, for the requests a thread is reading now.  Plain dict
        # operations are atomic under the GIL; the main loop only reads a copy.
        self.reading: dict = {}
        # conn -> monotonic deadline, for the heads the main loop is reading and the closed
        # connections it still drains (main thread only).
        self.heads: dict[TConn, float] = {}
        cfg = self.cfg
        # Connections answered and closed for writing, read until the client closes or lingers.
        self.lingering: set[TConn] = set()
        # conn -> monotonic deadline, for the answers the main loop is still sending, and the
        # bytes of them it holds.
        self.sending: dict[TConn, float] = {}
        self.send_bytes = 0
        self.head_limit = max(HEAD_BYTES, cfg.limit_request_line + 2)
        util.write_error = write_error
        # gunicorn caps ``limit_request_line`` at 8190 bytes, but a query of 1,000 accented
        # letters takes 9,000 once percent-encoded: raise the cap to the configured limit.
        message.MAX_REQUEST_LINE = max(message.MAX_REQUEST_LINE, cfg.limit_request_line)
        # A connection given to a thread before its bytes arrived (TLS, HTTP/2 prior knowledge,
        # a body) waits this long before it is parked in the poller, not gunicorn's 5 s.
        gthread.DEFAULT_WORKER_DATA_TIMEOUT = IDLE_HANDOFF_SECONDS
        # Requests handed to a thread and not finished yet (the app runs one at a time): while
        # there is one, this worker accepts no new connection.  Changed by the main loop only.
        self.in_app = 0
        # Requests between the start of ``handle_request`` (a thread) and their app's return,
        # under ``app_lock``: a request that finds one there waits for the app.  Counted by
        # the threads themselves, and uncounted before the answer is written, so that a
        # client's next request never finds its own last one still counted (``in_app`` drops
        # only once the main loop has taken the thread's result).
        self.app_lock = threading.Lock()
        self.app_requests = 0
        self.app_local = threading.local()
        limit_malloc_arenas()
        # numba's loops loaded (or compiled) before the worker serves, in its one thread: not
        # on the first search, nor beside requests (``search.engine.SearchEngine``).
        kernels.compiled()
        super().init_process()

    def load_wsgi(self) -> None:
        super().load_wsgi()
        app = self.wsgi

        def counted(environ, start_response):
            try:
                return app(environ, start_response)
            finally:
                self.leave_app()

        self.wsgi = counted

    def enter_app(self) -> bool:
        """Count this thread's request in; whether another is in the app (it will wait)."""
        with self.app_lock:
            self.app_requests += 1
            self.app_local.counted = True
            return self.app_requests > 1

    def leave_app(self) -> None:
        """Count this thread's request out, once (the app returned, or it never ran)."""
        if getattr(self.app_local, "counted", False):
            with self.app_lock:
                self.app_requests -= 1
                self.app_local.counted = False

    def set_accept_enabled(self, enabled: bool) -> None:
        """Accept new connections only while no request of this worker is in its app: they
        wait in the kernel's queue for a worker that is free (every worker polls it)."""
        super().set_accept_enabled(enabled and self.in_app == 0)

    def enqueue_req(self, conn: TConn) -> None:
        self.in_app += 1
        self.set_accept_enabled(False)
        fs = self.tpool.submit(self.handle, conn)
        fs.add_done_callback(lambda fut: self.method_queue.defer(self.request_done, conn, fut))

    def others_waiting(self) -> bool:
        """Whether new connections wait to be accepted (by any worker): a kept-alive client
        would otherwise be served ahead of them, again and again, while they wait."""
        try:
            poller = select.poll()  # not ``select.select``: any descriptor number
            for listener in self.sockets:
                poller.register(listener, select.POLLIN)
            return bool(poller.poll(0))
        except (OSError, ValueError):
            return False

    def request_done(self, conn: TConn, fs) -> None:
        """A thread is done with ``conn``'s request (main loop); accepting resumes with the
        loop's next turn once none is left."""
        self.in_app -= 1
        self.finish_request(conn, fs)

    def reads_heads_itself(self, conn: TConn) -> bool:
        """TLS and HTTP/2 prior knowledge need gunicorn's own first read, in a thread."""
        return not self.cfg.is_ssl and not negotiation.prior_knowledge_allowed(
            self.cfg, conn.client
        )

    def accept(self, listener) -> None:
        if self.in_app:  # a request started in this turn of the loop: leave it to the others
            return
        try:
            client_sock, client_addr = listener.accept()
        except OSError as e:
            if e.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise
            return
        self.nr_conns += 1
        conn = TConn(self.cfg, client_sock, client_addr, listener.getsockname())
        if self.reads_heads_itself(conn):
            self.wait_for_head(conn, b"")
        else:
            client_sock.setblocking(True)
            self.enqueue_req(conn)

    def wait_for_head(self, conn: TConn, head: bytes) -> None:
        """Read ``conn``'s next request head in the main loop (``head``: what already came)."""
        conn.sock.setblocking(False)
        conn.head = bytearray(head)
        self.heads[conn] = time.monotonic() + REQUEST_READ_SECONDS
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self.on_head_bytes, conn))

    def on_head_bytes(self, conn: TConn, _sock=None) -> None:
        """The socket is readable: take what came, and hand a whole head to a thread."""
        room = self.head_limit + 1 - len(conn.head)
        try:
            data = conn.sock.recv(RECV_BYTES if conn in self.lingering else min(RECV_BYTES, room))
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:  # the client went away (or, lingering, read its answer)
            self.drop_head(conn)
        elif conn in self.lingering:
            pass  # dropped: the answer was sent
        elif head_complete(conn.head + data):
            conn.head += data
            self.hand_over(conn)
        elif len(conn.head) + len(data) > self.head_limit:
            line_end = (conn.head + data).find(b"\n")
            conn.head.clear()
            self.refuse(conn, 0 <= line_end <= self.cfg.limit_request_line + 1)
        else:
            conn.head += data

    def refuse(self, conn: TConn, line_fits: bool) -> None:
        """Answer a head over ``head_limit`` (JSON 431, or 414 if its request line is the
        culprit) and close the connection once the client has had time to read it."""
        status, reason = (431, "Request Header Fields Too Large")
        if not line_fits:
            status, reason = (414, "URI Too Long")
        self.log.info("refusing a request head over %s bytes: %s", self.head_limit, status)
        with contextlib.suppress(OSError):
            conn.sock.send(error_bytes(status, reason))
        self.linger(conn)

    def linger(self, conn: TConn) -> None:
        """Close ``conn`` for writing and drain it in the main loop until the client closes or
        ``LINGER_SECONDS`` pass, then close it.

        gunicorn's own graceful close (``util.close_graceful``) waits for the client in the
        main loop itself, up to 2 s a connection: a few clients that never close after their
        answer would hold up every other request of the worker.
        """
        conn.head = bytearray()
        try:
            conn.sock.setblocking(False)
            conn.sock.shutdown(socket.SHUT_WR)
            with contextlib.suppress(KeyError, ValueError):
                self.poller.unregister(conn.sock)
            self.poller.register(conn.sock, selectors.EVENT_READ, partial(self.on_head_bytes, conn))
        except (OSError, ValueError):  # already closed, or reset by the client
            self.drop_head(conn)
            return
        self.lingering.add(conn)
        self.heads[conn] = time.monotonic() + LINGER_SECONDS

    def stop_reading_head(self, conn: TConn) -> None:
        self.heads.pop(conn, None)
        self.lingering.discard(conn)
        with contextlib.suppress(KeyError, ValueError, OSError):
            self.poller.unregister(conn.sock)

    def drop_head(self, conn: TConn) -> None:
        self.stop_reading_head(conn)
        self.nr_conns -= 1
        conn.close()

    def hand_over(self, conn: TConn) -> None:
        """Give a connection with a whole head to a thread, its bytes already in the parser."""
        self.stop_reading_head(conn)
        if conn.parser is None:
            conn.parser = http.get_parser(self.cfg, conn.sock, conn.client)
            conn.initialized = True
        conn.parser.unreader.unread(bytes(conn.head))
        conn.head = bytearray()
        conn.data_ready = True
        self.enqueue_req(conn)

    def on_client_socket_readable(self, conn: TConn, client) -> None:
        """A kept-alive connection sends its next request: read its head here too."""
        self.poller.unregister(client)
        self.keepalived_conns.remove(conn)
        self.wait_for_head(conn, b"")
        self.on_head_bytes(conn)

    def finish_request(self, conn: TConn, fs) -> None:
        outbox = getattr(conn, "outbox", None)
        if outbox:  # the answer is sent whole before the connection's next request is read
            self.send_rest(conn, outbox, fs)
            return
        # A client may send part of its next request together with the last one: that part
        # waits in the main loop like any other head instead of holding a thread.
        if self.alive and conn.parser is not None and self.reads_heads_itself(conn):
            with contextlib.suppress(Exception):
                ahead = conn.parser.unreader.buf.getvalue()
                if fs.result() is True and ahead and not head_complete(ahead):
                    self.wait_for_head(conn, conn.parser.unreader.take_buffered())
                    return
        if not fs.cancelled() and fs.exception() is None and not fs.result():
            self.linger(conn)  # not gunicorn's close, which waits for the client here
            return
        super().finish_request(conn, fs)

    def send_rest(self, conn: TConn, outbox: bytearray, fs) -> None:
        """Send what the kernel did not take of an answer from the main loop, then finish the
        request (``fs``) as if the thread had sent it all."""
        conn.outbox = None
        if self.send_bytes + len(outbox) > SEND_BUFFER_BYTES:
            self.log.info("closing a connection: %s bytes of answers wait already", self.send_bytes)
            self.close_now(conn)
            return
        try:
            conn.sock.setblocking(False)
            self.poller.register(conn.sock, selectors.EVENT_WRITE, partial(self.on_writable, conn))
        except (OSError, ValueError):  # closed by its thread after an error
            self.close_now(conn)
            return
        conn.outbox, conn.outbox_sent, conn.answered = outbox, 0, fs
        self.send_bytes += len(outbox)
        self.sending[conn] = time.monotonic() + SEND_SECONDS

    def on_writable(self, conn: TConn, _sock=None) -> None:
        try:
            with memoryview(conn.outbox) as rest:
                sent = conn.sock.send(rest[conn.outbox_sent :])
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self.stop_sending(conn)
            self.close_now(conn)
            return
        conn.outbox_sent += sent
        self.send_bytes -= sent
        if conn.outbox_sent == len(conn.outbox):
            self.finish_request(conn, self.stop_sending(conn))

    def stop_sending(self, conn: TConn):
        """Forget ``conn``'s answer in progress; the request it answers (a future)."""
        self.sending.pop(conn, None)
        self.send_bytes -= len(conn.outbox) - conn.outbox_sent
        conn.outbox = None
        with contextlib.suppress(KeyError, ValueError, OSError):
            self.poller.unregister(conn.sock)
        return conn.answered

    def close_now(self, conn: TConn) -> None:
        """Close ``conn`` at once; a closed socket left registered in the poller would make the
        next connection given the same descriptor fail to register."""
        with contextlib.suppress(KeyError, ValueError, OSError):
            self.poller.unregister(conn.sock)
        self.nr_conns -= 1
        conn.close()

    def handle(self, conn):
        # A thread reading a request it was given before it arrived whole (TLS, a body) gives up
        # after the same deadline a head has.  A request waiting for a free thread never expires.
        self.reading[conn] = time.monotonic() + REQUEST_READ_SECONDS
        try:
            return super().handle(conn)
        finally:
            self.reading.pop(conn, None)

    def handle_request(self, req, conn):
        self.reading.pop(conn, None)  # read whole: the deadline no longer applies
        waits = self.enter_app()
        try:
            if waits or self.others_waiting():  # the client reconnects next time
                req.must_close = True
            if self.cfg.is_ssl:  # a TLS socket sends nothing without blocking
                return super().handle_request(req, conn)
            sock = conn.sock
            conn.sock = queued = QueuedSocket(sock)
            try:
                return super().handle_request(req, conn)
            finally:
                queued.flush()
                conn.outbox, conn.sock = queued.pending, sock
        finally:
            self.leave_app()  # where the app never ran (an error before it)

    def murder_keepalived(self, force: bool = False) -> None:
        """Runs on every turn of the main loop: also cut the requests that are late."""
        super().murder_keepalived(force)
        now = time.monotonic()
        for conn, deadline in list(self.heads.items()):
            # A stopping worker waits for no head that has not started to arrive.
            idle = not self.alive and not conn.head
            if deadline <= now or force or idle:
                if conn.head:
                    self.log.info("closing a request not sent whole in %s s", REQUEST_READ_SECONDS)
                self.drop_head(conn)
        for conn, deadline in list(self.sending.items()):
            if deadline <= now or force:
                self.log.info("closing a connection: answer not taken in %s s", SEND_SECONDS)
                self.stop_sending(conn)
                self.close_now(conn)
        for conn, deadline in list(self.reading.items()):
            if deadline <= now and self.reading.pop(conn, None) is not None:
                self.log.info("closing a request not sent whole in %s s", REQUEST_READ_SECONDS)
                with contextlib.suppress(OSError):  # its thread's read returns at once
                    conn.sock.shutdown(socket.SHUT_RDWR)
