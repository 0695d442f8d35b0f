"""WSGI entry point: ``gunicorn wsgi:app`` (settings from ``VNSEARCH_*`` and gunicorn.conf.py)."""

from web import create_app

app = create_app()
