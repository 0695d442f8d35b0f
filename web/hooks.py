"""Headers added to every answer after the view: the security headers (``web.headers``) and,
for ``/api/*`` and only for configured origins, CORS."""

from __future__ import annotations

from flask import request

from . import get_settings
from .headers import SECURITY_HEADERS

CORS_ALLOW_HEADERS = "Accept, Content-Type, If-None-Match"
CORS_MAX_AGE = "600"


def security_headers(response):
    for name, value in SECURITY_HEADERS.items():
        response.headers[name] = value
    return response


def cors_origins() -> frozenset[str]:
    """``Settings.cors_origins`` (``VNSEARCH_CORS_ORIGINS``): exact origins, comma-separated, or
    ``*``."""
    raw = get_settings().cors_origins
    if not raw:
        return frozenset()
    items = raw.split(",") if isinstance(raw, str) else [str(item) for item in raw]
    return frozenset(item.strip() for item in items if item.strip())


def cors_headers(response):
    """CORS for /api/* only, and only for the configured origins (off by default)."""
    if not (request.path == "/api" or request.path.startswith("/api/")):
        return response
    origins = cors_origins()
    if not origins:
        return response
    origin = request.headers.get("Origin")
    if "*" in origins:
        allow = "*"  # the same for everyone: nothing for a cache to vary on
    else:
        response.vary.add("Origin")  # a shared cache must not hand one origin's answer to another
        allow = origin if origin in origins else None
    if allow is None:
        return response
    response.headers["Access-Control-Allow-Origin"] = allow
    response.headers["Access-Control-Expose-Headers"] = "ETag"
    if request.method == "OPTIONS" and request.headers.get("Access-Control-Request-Method"):
        response.headers["Access-Control-Allow-Methods"] = "GET"
        response.headers["Access-Control-Allow-Headers"] = CORS_ALLOW_HEADERS
        response.headers["Access-Control-Max-Age"] = CORS_MAX_AGE
        if response.status_code == 200:
            response.status_code = 204
            response.set_data(b"")
    return response


def register_hooks(app) -> None:
    app.after_request(security_headers)
    app.after_request(cors_headers)
