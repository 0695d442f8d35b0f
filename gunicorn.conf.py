"""gunicorn settings for vnsearch (override any of them on the command line)."""

import os

bind = os.environ.get("VNSEARCH_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("VNSEARCH_WORKERS", "2"))
worker_class = "sync"
timeout = 30
graceful_timeout = 10
keepalive = 5
# The app, not the server, must answer over-long queries with a JSON 400: let long request lines in.
limit_request_line = 0  # unlimited: the app answers over-long queries itself
limit_request_fields = 100
max_requests = 0
accesslog = os.environ.get("VNSEARCH_ACCESS_LOG") or None
errorlog = "-"
loglevel = os.environ.get("VNSEARCH_LOG_LEVEL", "info")
