"""The vnsearch web front end: a Flask application factory.

    flask --app web run                              # development
    gunicorn 'web:create_app()'                      # production

Configuration comes from ``search.config.load_settings``, as for the CLI: built-in defaults, then
``VNSEARCH_*`` environment variables, then ``test_config``'s upper-case setting names
(``INDEX_DIR``, ``MAX_PER_PAGE``, ...).  The settings are mirrored into ``app.config`` under those
names for reading; other ``test_config`` keys (``TESTING``, ``ENGINE_FACTORY``) are Flask's.
"""

from __future__ import annotations

import threading
from dataclasses import fields

from flask import Flask, current_app

from search.config import Settings, load_settings

# ``app.config`` key -> ``Settings`` field: INDEX_DIR -> index_dir (VNSEARCH_INDEX_DIR), ...
SETTING_KEYS = {f.name.upper(): f.name for f in fields(Settings)}


def create_app(test_config: dict | None = None) -> Flask:
    """The app; ``SettingsError`` (a ``ValueError`` naming the variable) for a setting that
    cannot be used, so a misconfigured server does not start."""
    app = Flask(__name__)
    flask_config = dict(test_config or {})
    settings = load_settings(
        **{name: flask_config.pop(key) for key, name in SETTING_KEYS.items() if key in flask_config}
    )
    app.config.from_mapping(
        {key: getattr(settings, name) for key, name in SETTING_KEYS.items()},
        INDEX_DIR=str(settings.index_dir),
        # A callable ``index_dir -> engine``; None means ``search.engine.SearchEngine``.
        ENGINE_FACTORY=None,
    )
    app.config.from_mapping(flask_config)
    app.extensions["vnsearch_settings"] = settings
    app.json.ensure_ascii = False  # readable Vietnamese in API responses
    app.jinja_env.trim_blocks = True
    app.jinja_env.lstrip_blocks = True

    app.extensions["vnsearch"] = None
    app.extensions["vnsearch_lock"] = threading.Lock()

    from .errors import register_error_handlers
    from .filters import register_filters
    from .hooks import register_hooks
    from .routes import bp

    app.register_blueprint(bp)
    register_filters(app)
    register_hooks(app)
    register_error_handlers(app)
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

                    engine = SearchEngine.from_settings(get_settings())
                else:
                    engine = factory(str(get_settings().index_dir))
                app.extensions["vnsearch"] = engine
    return engine


def get_settings() -> Settings:
    """The app's settings (``search.config.Settings``), fixed when the app was created."""
    return current_app.extensions["vnsearch_settings"]
