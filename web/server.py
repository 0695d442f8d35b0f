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
The app itself runs one request at a time per process (``web.OneAtATime``).

Errors gunicorn answers itself (a request line or header over the limits of ``gunicorn.conf.py``,
a NUL in the request line, an invalid header) never reach Flask; ``write_error`` gives them the
``{"error": {"code", "message"}}`` body and the headers every other answer carries.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import selectors
import socket
import time
from functools import partial

from gunicorn import http, util
from gunicorn.http import message
from gunicorn.http2 import negotiation
from gunicorn.workers import gthread
from gunicorn.workers.gthread import TConn, ThreadWorker

from .headers import SECURITY_HEADERS

# Seconds a client has to send a whole request (line and headers) once it started sending.
REQUEST_READ_SECONDS = float(os.environ.get("VNSEARCH_REQUEST_SECONDS", "5"))
# Seconds a thread waits for more of a request body, or for the first bytes of a connection the
# main loop did not read itself, before giving the connection back to the poller.
IDLE_HANDOFF_SECONDS = 0.2
# Bytes read from a socket at a time while a request head arrives.
RECV_BYTES = 65536

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


class VnsearchWorker(ThreadWorker):
    """``gthread`` that reads request heads in its main loop, with deadlines and JSON errors."""

    def init_process(self) -> None:
        # conn -> monotonic deadline, for the requests a thread is reading now.  Plain dict
        # operations are atomic under the GIL; the main loop only reads a copy.
        self.reading: dict = {}
        # conn -> monotonic deadline, for the heads the main loop is reading (main thread only;
        # insertion order is deadline order, every deadline being now + the same delay).
        self.heads: dict[TConn, float] = {}
        cfg = self.cfg
        # Past this many bytes without the blank line the head is over gunicorn's limits: the
        # parser, given it, answers the JSON 414 or 431 instead of waiting for more.
        self.head_limit = (
            cfg.limit_request_line + cfg.limit_request_fields * (cfg.limit_request_field_size + 2)
        ) or 1 << 20
        util.write_error = write_error
        # gunicorn caps ``limit_request_line`` at 8190 bytes, but a query of 1,000 accented
        # letters takes 9,000 once percent-encoded: raise the cap to the configured limit.
        message.MAX_REQUEST_LINE = max(message.MAX_REQUEST_LINE, cfg.limit_request_line)
        # A connection given to a thread before its bytes arrived (TLS, HTTP/2 prior knowledge,
        # a body) waits this long before it is parked in the poller, not gunicorn's 5 s.
        gthread.DEFAULT_WORKER_DATA_TIMEOUT = IDLE_HANDOFF_SECONDS
        super().init_process()

    def reads_heads_itself(self, conn: TConn) -> bool:
        """TLS and HTTP/2 prior knowledge need gunicorn's own first read, in a thread."""
        return not self.cfg.is_ssl and not negotiation.prior_knowledge_allowed(
            self.cfg, conn.client
        )

    def accept(self, listener) -> None:
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
        try:
            data = conn.sock.recv(RECV_BYTES)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:  # the client went away before sending a whole request
            self.drop_head(conn)
            return
        conn.head += data
        if head_complete(conn.head) or len(conn.head) > self.head_limit:
            self.hand_over(conn)

    def stop_reading_head(self, conn: TConn) -> None:
        self.heads.pop(conn, None)
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
        # A client may send part of its next request together with the last one: that part
        # waits in the main loop like any other head instead of holding a thread.
        if self.alive and conn.parser is not None and self.reads_heads_itself(conn):
            with contextlib.suppress(Exception):
                ahead = conn.parser.unreader.buf.getvalue()
                if fs.result() is True and ahead and not head_complete(ahead):
                    self.wait_for_head(conn, conn.parser.unreader.take_buffered())
                    return
        super().finish_request(conn, fs)

    def enqueue_req(self, conn) -> None:
        # A thread's time to read the rest of a request counts from when the connection waits
        # for it, so requests queued behind others expire too instead of each taking a turn.
        self.reading.setdefault(conn, time.monotonic() + REQUEST_READ_SECONDS)
        super().enqueue_req(conn)

    def handle(self, conn):
        try:
            return super().handle(conn)
        finally:
            self.reading.pop(conn, None)

    def handle_request(self, req, conn):
        self.reading.pop(conn, None)  # read whole: the deadline no longer applies
        return super().handle_request(req, conn)

    def murder_keepalived(self, force: bool = False) -> None:
        """Runs on every turn of the main loop: also cut the requests that are late."""
        super().murder_keepalived(force)
        now = time.monotonic()
        for conn, deadline in list(self.heads.items()):
            if deadline > now and not force:
                break
            self.log.info("closing a request not sent whole in %s s", REQUEST_READ_SECONDS)
            self.drop_head(conn)
        for conn, deadline in list(self.reading.items()):
            if deadline <= now and self.reading.pop(conn, None) is not None:
                self.log.info("closing a request not sent whole in %s s", REQUEST_READ_SECONDS)
                with contextlib.suppress(OSError):  # its thread's read returns at once
                    conn.sock.shutdown(socket.SHUT_RDWR)
