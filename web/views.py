"""Routes, error pages and security headers.

Every page is built the Datasette way: the view gets one data dict from the engine (the same dict
``/api/search`` returns as JSON) and the template renders it.  The views only read the query
string into Python values; the checks and their messages are the engine's (``search.engine.
check_search``), called before the engine is asked, so bad input is always a 4xx with
``{"error": {"code": ..., "message": ...}}`` and the HTML page and the API can never disagree.
"""

from __future__ import annotations

import calendar
import hashlib
import json
import math
import re
import unicodedata
from collections.abc import Iterable
from datetime import date, datetime

from flask import Blueprint, current_app, jsonify, make_response, render_template, request, url_for
from markupsafe import Markup
from werkzeug.exceptions import HTTPException

from search.engine import DEFAULT_PER_PAGE, SORTS, check_query, check_search, parse_whole_number
from search.errors import IndexMissing, VnsearchError
from search.response import SearchResponse, Similar
from search.results import safe_url

from . import get_engine, get_settings
from .headers import SECURITY_HEADERS
from .openapi import build_spec

bp = Blueprint("web", __name__)

PAGE_WINDOW = 9  # page numbers shown in the pager
REINDEX_COMMAND = "vnsearch reindex samples/"
NO_INDEX_MESSAGE = f"Chưa có chỉ mục tìm kiếm. Người quản trị cần chạy: {REINDEX_COMMAND}"
# Errors are never cached: a shared cache must not keep serving a 404 or a 503 once fixed.
ERROR_CACHE_CONTROL = "no-store"
API_CACHE_CONTROL = "public, max-age=60"
CORS_ALLOW_HEADERS = "Accept, Content-Type, If-None-Match"
CORS_MAX_AGE = "600"

HTTP_ERROR_TEXT = {
    400: ("Yêu cầu không hợp lệ", "Yêu cầu không hợp lệ."),
    404: ("Không tìm thấy trang", "Không có trang nào ở địa chỉ này."),
    405: ("Phương thức không được hỗ trợ", "Địa chỉ này không hỗ trợ phương thức {method}."),
    413: ("Yêu cầu quá lớn", "Yêu cầu quá lớn."),
    500: ("Đã xảy ra lỗi", "Máy chủ gặp lỗi khi xử lý yêu cầu. Vui lòng thử lại sau."),
    503: ("Dịch vụ tạm thời không khả dụng", "Dịch vụ tạm thời không khả dụng."),
}


# --------------------------------------------------------------------------- parameters

TRUE_WORDS = {"1", "true", "on", "yes"}


def _query(args, *, required: bool) -> str | None:
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


def run_search(params: dict) -> SearchResponse:
    return get_engine().search_response(
        params["q"],
        params["page"],
        params["per_page"],
        source=params["source"],
        date_from=params["date_from"],
        date_to=params["date_to"],
        sort=params["sort"],
        literal=params["literal"],
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


def pagination(data: dict, params: dict) -> dict | None:
    per_page = data.get("per_page") or params["per_page"]
    page = data.get("page") or params["page"]
    total = data.get("total") or 0
    last = math.ceil(total / per_page) if per_page else 1
    if data.get("total_relation") == "gte" and len(data.get("hits") or []) >= per_page:
        last = max(last, page + 1)
    last = min(last, get_settings().max_page)
    if last <= 1 and page <= 1:
        return None
    start = max(1, min(page - PAGE_WINDOW // 2, last - PAGE_WINDOW + 1))
    end = min(last, start + PAGE_WINDOW - 1)

    def link(n: int) -> str:
        return url_for("web.index", **link_params(params, page=n))

    return {
        "page": page,
        "prev": link(min(page - 1, last)) if page > 1 else None,
        "next": link(page + 1) if page < last else None,
        "pages": [
            {"number": n, "url": link(n), "current": n == page} for n in range(start, end + 1)
        ],
    }


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


# --------------------------------------------------------------------------- template filters


@bp.app_template_filter("vi_number")
def vi_number(value) -> str:
    """1234567 -> '1.234.567'."""
    try:
        return f"{int(value):,}".replace(",", ".")
    except (TypeError, ValueError):
        return str(value)


@bp.app_template_filter("vi_seconds")
def vi_seconds(ms) -> str:
    """Milliseconds -> seconds with a decimal comma: 31.4 -> '0,03'."""
    try:
        seconds = float(ms) / 1000
    except (TypeError, ValueError):
        return "0,00"
    return f"{seconds:,.2f}".replace(",", "\0").replace(".", ",").replace("\0", ".")


@bp.app_template_filter("vi_date")
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


@bp.app_template_filter("iso_date")
def iso_date(value) -> str | None:
    """The yyyy-mm-dd part of an ISO date, for <time datetime>; None when not a date."""
    text = str(value or "")[:10]
    try:
        date.fromisoformat(text)
    except ValueError:
        return None
    return text


@bp.app_context_processor
def template_helpers() -> dict:
    return {"safe_external_url": safe_external_url, "reindex_command": REINDEX_COMMAND}


# --------------------------------------------------------------------------- routes


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


def search_filters(data: dict, params: dict) -> dict | None:
    """Source and date filters built from the result's facets, as plain links and a GET form.

    Shown only where documents carry a source or a date (or a filter is already applied, so it
    can be removed).
    """
    facets = data.get("facets") or {}
    sources = [f for f in facets.get("source") or [] if f.get("value")]
    years = [f for f in facets.get("year") or [] if f.get("value")]
    active = params["source"]
    dated = bool(params["date_from"] or params["date_to"])
    if not (sources or years or active or dated):
        return None

    def link(**changes) -> str:
        return url_for("web.index", **link_params(params, page=None, **changes))

    source_links = [
        {
            "value": f["value"],
            "count": f.get("count"),
            "url": link(source=f["value"]),
            "current": f["value"] == active,
        }
        for f in sources
    ]
    if active and not any(s["current"] for s in source_links):
        source_links.append({"value": active, "count": 0, "url": link(), "current": True})
    year_links = [
        {
            "value": f["value"],
            "count": f.get("count"),
            "url": link(**{"from": f["value"], "to": f["value"]}),
            "current": params["date_from"] == f["value"] and params["date_to"] == f["value"],
        }
        for f in sorted(years, key=lambda f: f["value"], reverse=True)
    ]
    # The date form replaces from/to and keeps everything else.
    keep = link_params(params, page=None, **{"from": None, "to": None})
    return {
        "sources": source_links if (sources or active) else None,
        "all_sources_url": link(source=None),
        "years": year_links,
        "show_dates": bool(years) or dated,
        "date_from": date_input_value(params["date_from"], end=False),
        "date_to": date_input_value(params["date_to"], end=True),
        "date_hidden": [(k, v) for k, v in keep.items()],
        "clear_dates_url": link(**{"from": None, "to": None}) if dated else None,
        "clear_all_url": link(source=None, **{"from": None, "to": None})
        if (active or dated)
        else None,
    }


def similar_links(similar: Iterable[Similar], q: str) -> list[dict]:
    """Links to the near-duplicates collapsed into a hit, labelled with their source and date
    (the search found them: no article is read again)."""
    return [
        {
            "id": s.id,
            "url": url_for("web.document", doc_id=s.id, q=q),
            "label": s.source or s.title or s.id,
            "date": s.date,
        }
        for s in similar
    ]


@bp.get("/")
def index():
    params = search_params(request.args, required=False)
    if params["q"] is None:
        health = get_engine().health()  # IndexMissing -> the 503 "build an index" page
        return render_template("search.html", q="", data=None, health=health)
    response = run_search(params)
    data = response.to_dict()
    hits = []
    for typed, hit in zip(response.hits, data["hits"], strict=True):
        doc_url = url_for("web.document", doc_id=hit["id"], q=params["q"])
        external = safe_external_url(hit.get("url"))
        hits.append(
            {
                **hit,
                "href": external or doc_url,
                "doc_url": doc_url,
                "external": external,
                "similar_links": similar_links(typed.similar, params["q"]),
            }
        )
    suggestion = data.get("suggestion")
    interpreted = data.get("interpreted_as")
    filters = search_filters(data, params)
    return render_template(
        "search.html",
        q=params["q"],
        params=params,
        data=data,
        hits=hits,
        filters=filters,
        pager=pagination(data, params),
        suggestion_url=(
            url_for("web.index", **link_params(params, q=suggestion, page=None, literal=None))
            if suggestion and suggestion != params["q"]
            else None
        ),
        literal_url=(
            url_for("web.index", **link_params(params, page=None, literal=1))
            if interpreted
            else None
        ),
        sort_urls={
            s: url_for(
                "web.index", **link_params(params, page=None, sort=None if s == "relevance" else s)
            )
            for s in SORTS
        },
        first_page_url=url_for("web.index", **link_params(params, page=None)),
    )


@bp.get("/doc/<path:doc_id>")
def document(doc_id: str):
    q = _query(request.args, required=False)
    doc = get_engine().document(doc_id, q=q)
    return render_template(
        "doc.html",
        q=q or "",
        doc=doc,
        paragraphs=html_paragraphs(doc.get("body_html")),
        show_lead=_lead_not_in_body(doc),
        external=safe_external_url(doc.get("url")),
        back_url=url_for("web.index", q=q) if q else None,
    )


def _lead_not_in_body(doc: dict) -> bool:
    lead, body = (doc.get("lead") or "").strip(), (doc.get("body") or "").strip()
    return bool(lead and doc.get("lead_html")) and not body.startswith(lead)


def cached_json(body: dict):
    """A 200 JSON answer with a weak ETag and a minute of caching, or 304 when it still matches.

    The validator is weak because ``took_ms`` differs on every call: the hash covers the rest of
    the body, which is the same answer to the same question on the same index.
    """
    stable = {k: v for k, v in body.items() if k != "took_ms"}
    digest = hashlib.sha256(
        json.dumps(stable, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()
    ).hexdigest()[:32]
    if request.if_none_match.contains_weak(digest):
        response = current_app.response_class(status=304)
    else:
        response = jsonify(body)
    response.set_etag(digest, weak=True)
    response.headers["Cache-Control"] = API_CACHE_CONTROL
    return response


@bp.get("/api/search")
def api_search():
    params = search_params(request.args, required=True)
    return cached_json(run_search(params).to_dict())


@bp.get("/api/suggest")
def api_suggest():
    q = request.args.get("q", "")
    if not q.strip():
        return cached_json({"query": "", "suggestions": []})
    _query(request.args, required=True)  # raises query_too_long
    return cached_json(get_engine().suggest(q))


@bp.get("/api/openapi.json")
def api_openapi():
    response = jsonify(build_spec(get_settings()))
    response.headers["Cache-Control"] = "public, max-age=3600"
    return response


@bp.get("/healthz")
def healthz():
    try:
        body, status = get_engine().health(), 200
    except IndexMissing as exc:
        current_app.logger.warning("no index: %s", _message(exc))
        body, status = {"status": "no_index", "message": NO_INDEX_MESSAGE}, 503
    if body.get("status") == "no_index":
        status = 503
    response = jsonify(body)
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.after_app_request
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


@bp.after_app_request
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


# --------------------------------------------------------------------------- errors


def wants_json() -> bool:
    path = request.path
    return path == "/api" or path.startswith("/api/") or path == "/healthz"


def _message(exc) -> str:
    return str(getattr(exc, "message", None) or exc)


def error_response(
    code: str,
    message: str,
    status: int,
    *,
    title: str | None = None,
    no_index: bool = False,
    headers=None,
):
    """The one place errors are built: JSON for the API, a friendly Vietnamese page otherwise."""
    if wants_json():
        response = jsonify({"error": {"code": code, "message": message}})
    else:
        fallback = HTTP_ERROR_TEXT[400 if status < 500 else 500]
        page = render_template(
            "error.html",
            status=status,
            code=code,
            title=title or HTTP_ERROR_TEXT.get(status, fallback)[0],
            message=message,
            no_index=no_index,
            q=(request.args.get("q") or "")[: get_settings().max_query_chars],
        )
        response = make_response(page)
    response.status_code = status
    response.headers["Cache-Control"] = ERROR_CACHE_CONTROL
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def handle_vnsearch_error(exc: VnsearchError):
    status = int(getattr(exc, "status", 500) or 500)
    code = getattr(exc, "code", None) or "error"
    if isinstance(exc, IndexMissing):
        # The detail names the server's index directory: it goes to the log, not to the world.
        current_app.logger.warning("no index: %s", _message(exc))
        return error_response(
            code or "no_index",
            NO_INDEX_MESSAGE,
            503,
            title="Chưa có chỉ mục tìm kiếm",
            no_index=True,
        )
    title = "Không tìm thấy bài viết" if status == 404 else None
    return error_response(code, _message(exc), status, title=title)


def handle_http_exception(exc: HTTPException):
    status = exc.code or 500
    code = (exc.name or "error").lower().replace(" ", "_").replace("'", "")
    title, message = HTTP_ERROR_TEXT.get(status, (None, exc.description or exc.name))
    message = message.format(method=request.method)
    headers = {}
    if status == 405:
        allow = exc.get_response().headers.get("Allow")
        if allow:
            headers["Allow"] = allow
    return error_response(code, message, status, title=title, headers=headers)


def register_error_handlers(app) -> None:
    app.register_error_handler(VnsearchError, handle_vnsearch_error)
    app.register_error_handler(HTTPException, handle_http_exception)
