"""gunicorn settings for vnsearch (override any of them on the command line).

The worker (``web.server.VnsearchWorker``) reads request heads in its main loop and gives a
thread only a request that arrived whole, so slow and idle clients cost a buffer, not a thread nor
a worker; a request must arrive whole within ``VNSEARCH_REQUEST_SECONDS`` (5 s).  Requests are
bounded to what a search needs: a query is at most 1,000 characters, under 12 KB percent-encoded,
browsers send well under 50 headers, and a whole head over 32 KB is refused
(``web.server.HEAD_BYTES``).
"""

import os

bind = os.environ.get("VNSEARCH_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("VNSEARCH_WORKERS", "2"))
worker_class = "web.server.VnsearchWorker"
# Threads a worker reads and writes connections with (the app runs one request at a time).
threads = int(os.environ.get("VNSEARCH_THREADS", "16"))
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
