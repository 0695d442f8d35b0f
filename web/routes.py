"""Routes: the search page, the article page and the JSON API.

Every page is built the Datasette way: the view gets one answer from the engine (the same one
``/api/search`` returns as JSON) and the template renders it.  Parameters are read by
``web.params``, errors answered by ``web.errors``, values shown by ``web.filters``.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable

from flask import Blueprint, current_app, jsonify, render_template, request, url_for

from search.engine import SORTS
from search.errors import IndexMissing
from search.response import SearchResponse, Similar

from . import get_engine, get_settings
from .errors import NO_INDEX_MESSAGE, message_of
from .filters import html_paragraphs, safe_external_url
from .openapi import build_spec
from .params import date_input_value, link_params, query_param, search_params

bp = Blueprint("web", __name__)

PAGE_WINDOW = 9  # page numbers shown in the pager
API_CACHE_CONTROL = "public, max-age=60"
OPENAPI_BODY = "vnsearch_openapi"  # the app's served OpenAPI document, in ``app.extensions``


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
    q = query_param(request.args, required=False)
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
    the body, which is the same answer to the same question on the same index.  The body is that
    same serialisation with ``took_ms`` added at its end: one ``json.dumps`` of the answer, not
    one for the hash and another for the body (~0.1 ms of a search's 10 at a million articles).
    """
    stable = {k: v for k, v in body.items() if k != "took_ms"}
    text = json.dumps(stable, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    digest = hashlib.sha256(text.encode()).hexdigest()[:32]
    if request.if_none_match.contains_weak(digest):
        response = current_app.response_class(status=304)
    else:
        if "took_ms" in body:
            took = json.dumps(body["took_ms"])
            text = f'{text[:-1]}{"," if stable else ""}"took_ms":{took}}}'
        response = current_app.response_class(text + "\n", mimetype="application/json")
    response.set_etag(digest, weak=True)
    response.headers["Cache-Control"] = API_CACHE_CONTROL
    return response


@bp.get("/api/search")
def api_search():
    params = search_params(request.args, required=True)
    return cached_json(run_search(params).to_dict())


@bp.get("/api/suggest")
def api_suggest():
    if query_param(request.args, required=False) is None:  # raises query_too_long, blanks too
        return cached_json({"query": "", "suggestions": []})
    return cached_json(get_engine().suggest(request.args.get("q", "")))


@bp.get("/api/openapi.json")
def api_openapi():
    # Built once per app (its settings are fixed when it is created): 3.6 ms of a worker's CPU a
    # request otherwise, more than the rest of a small request costs.
    body = current_app.extensions.get(OPENAPI_BODY)
    if body is None:
        body = current_app.json.dumps(build_spec(get_settings())) + "\n"
        current_app.extensions[OPENAPI_BODY] = body
    response = current_app.response_class(body, mimetype="application/json")
    response.headers["Cache-Control"] = "public, max-age=3600"
    return response


@bp.get("/healthz")
def healthz():
    try:
        body, status = get_engine().health(), 200
    except IndexMissing as exc:
        current_app.logger.warning("no index: %s", message_of(exc))
        body, status = {"status": "no_index", "message": NO_INDEX_MESSAGE}, 503
    if body.get("status") == "no_index":
        status = 503
    response = jsonify(body)
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    return response
