"""Template filters and helpers: how numbers, times, dates, links and article paragraphs are shown.

Registered on the app by ``register_filters`` (``web.create_app``).
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date, datetime

from markupsafe import Markup

from search.results import safe_url

from .errors import REINDEX_COMMAND


def vi_number(value) -> str:
    """1234567 -> '1.234.567'."""
    try:
        return f"{int(value):,}".replace(",", ".")
    except (TypeError, ValueError):
        return str(value)


def vi_seconds(ms) -> str:
    """Milliseconds -> seconds with a decimal comma: 31.4 -> '0,03'."""
    try:
        seconds = float(ms) / 1000
    except (TypeError, ValueError):
        return "0,00"
    return f"{seconds:,.2f}".replace(",", "\0").replace(".", ",").replace("\0", ".")


def vi_date(value) -> str:
    """'2024-03-05' or '2024-03-05T08:00:00+07:00' -> '05/03/2024'; anything else unchanged."""
    if not value:
        return ""
    text = str(value)
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        try:
            parsed = datetime.fromisoformat(text[:10])
        except ValueError:
            return text
    return parsed.strftime("%d/%m/%Y")


def iso_date(value) -> str | None:
    """The yyyy-mm-dd part of an ISO date, for <time datetime>; None when not a date."""
    text = str(value or "")[:10]
    try:
        date.fromisoformat(text)
    except ValueError:
        return None
    return text


def safe_external_url(url) -> str | None:
    """The URL if it is an absolute http(s) URL, else None (``search.results.safe_url``).

    Any control character, C1 ones included (``\\x9b`` starts a terminal escape sequence),
    refuses the URL: a link is written into an ``href`` as it is.

    >>> safe_external_url("https://example.org/a\\x9bb") is None
    True
    """
    if not isinstance(url, str) or any(unicodedata.category(c) == "Cc" for c in url.strip()):
        return None
    return safe_url(url)


def html_paragraphs(body_html: str | list[str] | None) -> list[Markup]:
    """Paragraphs of already-escaped HTML: the engine's list, or a string split on line breaks.

    A <mark> never spans two paragraphs.
    """
    if isinstance(body_html, list | tuple):
        lines = [str(p) for p in body_html]
    else:
        lines = re.split(r"\r?\n", body_html or "")
    paragraphs: list[Markup] = []
    carry = False
    for line in lines:
        if not line.strip():
            continue
        if carry:
            line = "<mark>" + line
        opened = line.count("<mark>") - line.count("</mark>")
        carry = opened > 0
        if carry:
            line += "</mark>"
        paragraphs.append(Markup(line.strip()))  # noqa: S704 - engine output is escaped HTML
    return paragraphs


def template_helpers() -> dict:
    return {"safe_external_url": safe_external_url, "reindex_command": REINDEX_COMMAND}


FILTERS = {
    "vi_number": vi_number,
    "vi_seconds": vi_seconds,
    "vi_date": vi_date,
    "iso_date": iso_date,
}


def register_filters(app) -> None:
    for name, func in FILTERS.items():
        app.add_template_filter(func, name)
    app.context_processor(template_helpers)
