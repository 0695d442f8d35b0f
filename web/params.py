"""Request parameters: the query string read into Python values, and links that reproduce a search.

The views only read the query string; the checks and their messages are the engine's
(``search.engine.check_search``), called before the engine is asked, so bad input is always a 4xx
and the HTML page and the API can never disagree.
"""

from __future__ import annotations

import calendar

from search.engine import DEFAULT_PER_PAGE, check_query, check_search, parse_whole_number

from . import get_settings

TRUE_WORDS = {"1", "true", "on", "yes"}


def query_param(args, *, required: bool) -> str | None:
    """``q``, stripped (``None`` when blank and not ``required``), or ``BadRequest``."""
    return check_query(args.get("q"), get_settings().max_query_chars, required=required)


def search_params(args, *, required: bool = True) -> dict:
    """Search parameters from a query string (repeated parameters: the first wins), checked by
    the engine's rules before any engine is asked."""
    return check_search(
        args.get("q"),
        parse_whole_number(args.get("page")),
        parse_whole_number(args.get("per_page")),
        source=args.get("source"),
        date_from=args.get("from"),
        date_to=args.get("to"),
        sort=args.get("sort"),
        literal=(args.get("literal") or "").strip().lower() in TRUE_WORDS,
        settings=get_settings(),
        required=required,
    )


def link_params(params: dict, **changes) -> dict:
    """Query-string arguments that reproduce this search (defaults left out), with changes."""
    out = {
        "q": params["q"],
        "page": params["page"],
        "per_page": params["per_page"] if params["per_page"] != DEFAULT_PER_PAGE else None,
        "source": params["source"],
        "from": params["date_from"],
        "to": params["date_to"],
        "sort": params["sort"] if params["sort"] != "relevance" else None,
        "literal": 1 if params["literal"] else None,
    }
    out.update(changes)
    if out.get("page") == 1:
        out["page"] = None
    return {k: v for k, v in out.items() if v is not None}


def date_input_value(raw: str | None, *, end: bool) -> str:
    """A validated ``YYYY[-MM[-DD]]`` as the full date an ``<input type=date>`` shows.

    ``from=2024`` is 2024-01-01, ``to=2024-02`` is 2024-02-29: the same range the engine applies.
    """
    if not raw:
        return ""
    parts = [int(p) for p in raw.split("-")]
    if len(parts) == 3:
        return raw
    year = parts[0]
    month = parts[1] if len(parts) == 2 else (12 if end else 1)
    day = calendar.monthrange(year, month)[1] if end else 1
    return f"{year:04d}-{month:02d}-{day:02d}"
