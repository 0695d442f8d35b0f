"""A WSGI app for the worker's balancing tests: ``/slow`` takes ``SLOW_SECONDS``, anything else
answers at once, each with the pid of the worker that ran it; one request at a time per process,
as vnsearch's app runs (``web.OneAtATime``).  Served by ``conftest.Server(app=...)``."""

from __future__ import annotations

import os
import time

from web import OneAtATime

SLOW_SECONDS = 1.5


def _answer(environ, start_response):
    if environ.get("PATH_INFO") == "/slow":
        time.sleep(SLOW_SECONDS)
    body = str(os.getpid()).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


app = OneAtATime(_answer)
