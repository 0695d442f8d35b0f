"""The vnsearch web front end: a Flask application factory.

    flask --app web run                              # development
    gunicorn 'web:create_app()'                      # production

Configuration, later sources win: built-in defaults, ``VNSEARCH_*`` environment variables
(``VNSEARCH_INDEX_DIR`` -> ``INDEX_DIR``), then ``test_config``.
"""

from __future__ import annotations

import os
import threading

from flask import Flask, current_app

from search.config import Settings, SettingsError


def create_app(test_config: dict | None = None) -> Flask:
    app = Flask(__name__)
    defaults = Settings()
    app.config.from_mapping(
        INDEX_DIR=str(defaults.index_dir),
        MAX_QUERY_CHARS=defaults.max_query_chars,
        MAX_PAGE=defaults.max_page,
        MAX_PER_PAGE=defaults.max_per_page,
        # posting arrays a worker keeps (VNSEARCH_CACHE_MB); None: sized to the index
        CACHE_MB=defaults.cache_mb,
        # A callable ``index_dir -> engine``; None means ``search.engine.SearchEngine``.
        ENGINE_FACTORY=None,
        # Origins allowed to call /api/* from a browser (VNSEARCH_CORS_ORIGINS): exact origins,
        # comma-separated, or "*"; empty means no CORS headers at all.
        CORS_ORIGINS="",
    )
    app.config.from_prefixed_env("VNSEARCH")
    if test_config is not None:
        app.config.from_mapping(test_config)
    # from_prefixed_env parses values as JSON, so a purely numeric directory name arrives as int.
    app.config["INDEX_DIR"] = os.fspath(str(app.config["INDEX_DIR"]))
    cache_mb = app.config["CACHE_MB"]
    if cache_mb is not None and (
        isinstance(cache_mb, bool) or not isinstance(cache_mb, int | float) or cache_mb < 1
    ):
        raise SettingsError(f"VNSEARCH_CACHE_MB must be a number of MB >= 1, not {cache_mb!r}")
    app.json.ensure_ascii = False  # readable Vietnamese in API responses
    app.jinja_env.trim_blocks = True
    app.jinja_env.lstrip_blocks = True

    app.extensions["vnsearch"] = None
    app.extensions["vnsearch_lock"] = threading.Lock()

    from . import views

    app.register_blueprint(views.bp)
    views.register_error_handlers(app)
    # Werkzeug answers ``//x`` with a redirect built from the request's Host header: with a
    # foreign Host that is an open redirect.  Such a path is simply not found.
    app.url_map.merge_slashes = False
    app.wsgi_app = OneAtATime(app.wsgi_app)
    return app


class OneAtATime:
    """Runs the app for one request at a time per process, with the response body in memory.

    gunicorn's threaded worker gives each connection a thread, so that slow or idle clients cost
    a thread and not the whole worker.  The engine, however, reads Whoosh's stored fields through
    file objects (seek, then read) that two threads must never share.  Serialising the app keeps
    every engine call single-threaded while sockets are read and written in parallel; searching
    is CPU work, so a worker gains nothing from running two at once anyway.
    """

    def __init__(self, app) -> None:
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        with self.lock:
            result = self.app(environ, start_response)
            try:
                return [b"".join(result)]
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()


def get_engine():
    """The app's one ``SearchEngine``, created on first use (it reopens new index generations)."""
    app = current_app
    engine = app.extensions.get("vnsearch")
    if engine is None:
        with app.extensions["vnsearch_lock"]:
            engine = app.extensions.get("vnsearch")
            if engine is None:
                factory = app.config.get("ENGINE_FACTORY")
                if factory is None:
                    from search.engine import SearchEngine

                    engine = SearchEngine(app.config["INDEX_DIR"], cache_mb=app.config["CACHE_MB"])
                else:
                    engine = factory(app.config["INDEX_DIR"])
                app.extensions["vnsearch"] = engine
    return engine
