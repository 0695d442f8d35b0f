"""A WSGI app for the worker's balancing tests: ``/slow`` takes ``SLOW_SECONDS``, anything else
answers at once, each with the pid of the worker that ran it; one request at a time per process,
as vnsearch's app runs (``web.OneAtATime``).  ``/linger`` answers at once but holds its thread
``LINGER_SECONDS`` after the answer is written (``close``), as a thread the kernel set aside
right after writing would.  Served by ``conftest.Server(app=...)``."""

from __future__ import annotations

import os
import time

from web import OneAtATime

SLOW_SECONDS = 1.5
LINGER_SECONDS = 1.0


def _answer(environ, start_response):
    if environ.get("PATH_INFO") == "/slow":
        time.sleep(SLOW_SECONDS)
    body = str(os.getpid()).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


class _Lingering(list):
    def close(self) -> None:
        time.sleep(LINGER_SECONDS)


_one_at_a_time = OneAtATime(_answer)


def app(environ, start_response):
    body = _one_at_a_time(environ, start_response)
    return _Lingering(body) if environ.get("PATH_INFO") == "/linger" else body
