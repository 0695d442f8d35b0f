"""gunicorn settings for vnsearch (override any of them on the command line).

The worker (``web.server.VnsearchWorker``) reads request heads in its main loop and gives a
thread only a request that arrived whole, so slow and idle clients cost a buffer, not a thread nor
a worker; a request must arrive whole within ``VNSEARCH_REQUEST_SECONDS`` (5 s).  Requests are
bounded to what a search needs: a query is at most 1,000 characters, under 12 KB percent-encoded,
browsers send well under 50 headers, and a whole head over 32 KB is refused
(``web.server.HEAD_BYTES``).
"""

import os

from search.config import SettingsError, env_choice, env_float, env_int, load_settings

# Every setting is checked here, once, when gunicorn starts: a value that cannot be used is one
# line and exit 1, not a traceback from each worker that fails to boot.
try:
    workers = env_int("workers", 2, 1)
    # Threads a worker reads and writes connections with (the app runs one request at a time).
    threads = env_int("threads", 16, 1)
    env_float("request_seconds", 5.0, 0.1)  # read by web.server
    env_choice("kernels", "numba", ("numba", "numpy"))  # read by search.kernels
    load_settings()  # the app's own (VNSEARCH_INDEX_DIR, VNSEARCH_CACHE_MB, ...)
except SettingsError as exc:
    raise SystemExit(f"vnsearch: {exc}") from None

bind = os.environ.get("VNSEARCH_BIND", "127.0.0.1:8000")
worker_class = "web.server.VnsearchWorker"
worker_connections = 1000
timeout = 30
graceful_timeout = 10
keepalive = 5
# 1,000 accented letters percent-encoded (9,000 bytes) plus the path and the other parameters; a
# longer request line gets a JSON 414 (web.server raises gunicorn's own 8,190 cap to this).
limit_request_line = 12288
limit_request_fields = 50
limit_request_field_size = 8190  # a longer header, or more of them: a JSON 431 / 400
max_requests = 0
accesslog = os.environ.get("VNSEARCH_ACCESS_LOG") or None
errorlog = "-"
loglevel = os.environ.get("VNSEARCH_LOG_LEVEL", "info")
