"""The gunicorn worker vnsearch is served with: threads for slow clients, a deadline for reading a
request, and gunicorn's own error answers in the app's JSON shape with its security headers.

gunicorn's ``sync`` worker reads a request in the one process that also runs the app: two
clients that send half a request and go idle stall both workers (issue 15).  The ``gthread``
worker reads each connection in a thread of its own and parks idle keep-alive connections in
its poller, but a client that sends part of a request and then trickles or stops still holds a
thread while gunicorn waits for the rest.  ``VnsearchWorker`` gives every request
``REQUEST_READ_SECONDS`` to arrive whole, counted from when its connection waits for a thread:
the worker's main loop (which wakes at least once a second) shuts down the connections of the
requests that are late, which frees their threads.
The app itself runs one request at a time per process (``web.OneAtATime``).

Errors gunicorn answers itself (a request line or header over the limits of ``gunicorn.conf.py``,
a NUL in the request line, an invalid header) never reach Flask; ``write_error`` gives them the
``{"error": {"code", "message"}}`` body and the headers every other answer carries.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time

from gunicorn import util
from gunicorn.http import message
from gunicorn.workers import gthread
from gunicorn.workers.gthread import ThreadWorker

from .headers import SECURITY_HEADERS

# Seconds a client has to send a whole request (line and headers) once it started sending.
REQUEST_READ_SECONDS = float(os.environ.get("VNSEARCH_REQUEST_SECONDS", "5"))
# Seconds a thread waits for the first bytes of a new connection before parking it.
IDLE_HANDOFF_SECONDS = 0.2

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


class VnsearchWorker(ThreadWorker):
    """``gthread`` with a deadline for reading each request and JSON error answers."""

    def init_process(self) -> None:
        # conn -> monotonic deadline, for the requests being read now.  Plain dict operations
        # are atomic under the GIL; the main loop only reads a copy.
        self.reading: dict = {}
        util.write_error = write_error
        # gunicorn caps ``limit_request_line`` at 8190 bytes, but a query of 1,000 accented
        # letters takes 9,000 once percent-encoded: raise the cap to the configured limit.
        message.MAX_REQUEST_LINE = max(message.MAX_REQUEST_LINE, self.cfg.limit_request_line)
        # A new connection that has sent nothing yet holds a thread this long before it is
        # parked in the poller (gunicorn's 5 s let 32 idle connections hold every thread).
        gthread.DEFAULT_WORKER_DATA_TIMEOUT = IDLE_HANDOFF_SECONDS
        super().init_process()

    def enqueue_req(self, conn) -> None:
        # The time to arrive whole counts from when the connection waits for a thread, so
        # half-sent requests queued behind others expire too instead of each taking a full turn.
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
        for conn, deadline in list(self.reading.items()):
            if deadline <= now and self.reading.pop(conn, None) is not None:
                self.log.info("closing a request not sent whole in %s s", REQUEST_READ_SECONDS)
                with contextlib.suppress(OSError):  # its thread's read returns at once
                    conn.sock.shutdown(socket.SHUT_RDWR)
