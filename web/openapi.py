"""The OpenAPI 3.0 description of the JSON API, served at ``GET /api/openapi.json``.

Built from the app's configuration so the documented limits (query length, page, page size) are the
ones enforced.  tests/test_openapi.py validates real responses against it, and runs schemathesis
against a live gunicorn, so the description cannot drift from what the server answers.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version

from search.config import Settings
from search.engine import DEFAULT_PER_PAGE, SORTS
from search.response import Hit, SearchResponse, keys

# Exactly the dates the API accepts: YYYY, YYYY-MM or a real YYYY-MM-DD (years 0001-9999, leap
# days only in leap years), so a client (or a fuzzer) can tell valid input from the description.
_YEAR = "([1-9][0-9]{3}|0[1-9][0-9]{2}|00[1-9][0-9]|000[1-9])"
_LEAP_YEAR = "([0-9]{2}(0[48]|[2468][048]|[13579][26])|(0[48]|[2468][048]|[13579][26])00)"
_MONTH = "(0[1-9]|1[0-2])"
_MONTH_DAY = "((0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])|(0[13-9]|1[0-2])-(29|30)|(0[13578]|1[02])-31)"
_DATE = f"({_YEAR}|{_YEAR}-{_MONTH}|{_YEAR}-{_MONTH_DAY}|{_LEAP_YEAR}-02-29)"
# Python's str.isspace() characters: a query must contain something else (and no NUL).
_SPACE = r"\t-\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
# A date as the API reads it: stripped of that whitespace first, and blank meaning no date.
DATE_PATTERN = rf"^[{_SPACE}]*({_DATE})?[{_SPACE}]*$"
QUERY_PATTERN = rf"^[^\x00]*[^\x00{_SPACE}][^\x00]*$"


def _version() -> str:
    try:
        return package_version("vnsearch")
    except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "0.0.0"


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable_string(description: str, **extra) -> dict:
    return {"type": "string", "nullable": True, "description": description, **extra}


def _json(schema: dict, description: str, headers: dict | None = None) -> dict:
    response = {"description": description, "content": {"application/json": {"schema": schema}}}
    if headers:
        response["headers"] = headers
    return response


def _error(description: str, codes: list[str]) -> dict:
    return _json(_ref("Error"), description + " Codes: " + ", ".join(f"`{c}`" for c in codes) + ".")


# Answered by the server (``web/server.py``) before the app sees the request: a query string far
# beyond ``max_query_chars`` makes the request line itself too long.
SERVER_LIMITS = {
    "414": _error("The request line is too long for the server.", ["uri_too_long"]),
    "431": _error(
        "The request's header fields are too large.", ["request_header_fields_too_large"]
    ),
}

CACHE_HEADERS = {
    "ETag": {
        "description": (
            "Weak validator: a hash of the body without `took_ms` (which differs on every call). "
            "Send it back in `If-None-Match` to get a 304."
        ),
        "schema": {"type": "string", "pattern": '^W/"[0-9a-f]+"$'},
    },
    "Cache-Control": {"schema": {"type": "string", "enum": ["public, max-age=60"]}},
}

IF_NONE_MATCH = {
    "name": "If-None-Match",
    "in": "header",
    "required": False,
    "description": "An `ETag` from an earlier answer: 304 without a body when it still matches.",
    "schema": {"type": "string"},
}

NOT_MODIFIED = {
    "description": "The `If-None-Match` validator still matches.",
    "headers": CACHE_HEADERS,
}


def _object(cls: type, schemas: dict[str, dict]) -> dict:
    """The schema of a ``search.response`` class: its fields, in order, all required, each
    described by ``schemas``; a field without a description is a ``KeyError``, an extra
    description a ``ValueError``."""
    names = keys(cls)
    if extra := set(schemas) - set(names):
        raise ValueError(f"{cls.__name__} has no fields {sorted(extra)}")
    return {
        "type": "object",
        "additionalProperties": False,
        "required": list(names),
        "properties": {name: schemas[name] for name in names},
    }


def build_spec(settings: Settings) -> dict:
    """The OpenAPI document for an app with these ``search.config.Settings``."""
    max_chars = settings.max_query_chars
    max_page = settings.max_page
    max_per_page = settings.max_per_page
    hit = _object(
        Hit,
        {
            "id": {"type": "string", "description": "Use with `GET /doc/{id}`."},
            "title": {
                "type": "string",
                "description": "Plain text (the first sentence when the document has no title).",
            },
            "title_html": {
                "type": "string",
                "description": "The title as escaped HTML in which "
                "only the matched words are wrapped in `<mark>`.",
            },
            "url": _nullable_string(
                "The original article: only ever an http(s) address.", pattern="^https?://"
            ),
            "snippet": {"type": "string", "description": "Escaped HTML; matches in `<mark>`."},
            "score": {"type": "number"},
            "source": _nullable_string("The publication (feed) the document came from."),
            "date": _nullable_string("ISO 8601 date or date-time, as indexed."),
            "lead": _nullable_string("The article's lead (sapo), plain text."),
            "similar": {
                "type": "array",
                "items": {"type": "string"},
                "description": "Ids of near-duplicates (same title and lead) collapsed into this "
                "hit, best-ranked first.",
            },
        },
    )
    facet_value = {
        "type": "object",
        "additionalProperties": False,
        "required": ["value", "count"],
        "properties": {
            "value": {"type": "string"},
            "count": {"type": "integer", "minimum": 1},
        },
    }
    search_result = _object(
        SearchResponse,
        {
            "query": {"type": "string"},
            "total": {
                "type": "integer",
                "minimum": 0,
                "description": "Stories found (near-duplicates counted once).",
            },
            "total_relation": {
                "type": "string",
                "enum": ["eq", "gte"],
                "description": "`eq`: `total` is exact; `gte`: a lower bound.",
            },
            "page": {"type": "integer", "minimum": 1, "maximum": max_page},
            "per_page": {"type": "integer", "minimum": 1, "maximum": max_per_page},
            "took_ms": {"type": "number", "minimum": 0},
            "interpreted_as": _nullable_string(
                "How the query was read when it differs from "
                "what was typed (Telex: `laof cai` → `lào cai`)."
            ),
            "suggestion": _nullable_string(
                "The query with its diacritics restored, when the index knows a better spelling."
            ),
            "hits": {"type": "array", "items": _ref("Hit"), "maxItems": max_per_page},
            "facets": {
                "type": "object",
                "additionalProperties": False,
                "required": ["source", "year"],
                "description": "Counts over all matching documents, before the source and date "
                "filters, most frequent first.",
                "properties": {
                    "source": {"type": "array", "items": _ref("FacetValue")},
                    "year": {"type": "array", "items": _ref("FacetValue")},
                },
            },
        },
    )
    q_param = {
        "name": "q",
        "in": "query",
        "description": 'Words, `"a phrase"`, `-word`, `-"a phrase"`. Blank is `missing_query`.',
        "schema": {
            "type": "string",
            "minLength": 1,
            "maxLength": max_chars,
            "pattern": QUERY_PATTERN,
        },
    }
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "vnsearch",
            "version": _version(),
            "description": (
                "Full-text search over Vietnamese news: with or without diacritics, Telex, "
                "either tone-mark placement. Errors are always "
                '`{"error": {"code": ..., "message": ...}}`. An optional parameter sent empty '
                "(`sort=`) is the same as leaving it out."
            ),
        },
        "paths": {
            "/api/search": {
                "get": {
                    "operationId": "search",
                    "summary": "Search the archive",
                    "parameters": [
                        {**q_param, "required": True},
                        {
                            "name": "page",
                            "in": "query",
                            "allowEmptyValue": True,
                            "schema": {
                                "type": "integer",
                                "minimum": 1,
                                "maximum": max_page,
                                "default": 1,
                            },
                        },
                        {
                            "name": "per_page",
                            "in": "query",
                            "allowEmptyValue": True,
                            "schema": {
                                "type": "integer",
                                "minimum": 1,
                                "maximum": max_per_page,
                                "default": DEFAULT_PER_PAGE,
                            },
                        },
                        {
                            "name": "source",
                            "in": "query",
                            "allowEmptyValue": True,
                            "description": "Only this source (exact value, as in `facets.source`).",
                            "schema": {"type": "string"},
                        },
                        {
                            "name": "from",
                            "in": "query",
                            "allowEmptyValue": True,
                            "description": "Earliest date: `YYYY`, "
                            "`YYYY-MM` or `YYYY-MM-DD` (a real date).",
                            "schema": {"type": "string", "pattern": DATE_PATTERN},
                        },
                        {
                            "name": "to",
                            "in": "query",
                            "allowEmptyValue": True,
                            "description": "Latest date, inclusive "
                            "(`2024` means to the end of 2024).",
                            "schema": {"type": "string", "pattern": DATE_PATTERN},
                        },
                        {
                            "name": "sort",
                            "in": "query",
                            "allowEmptyValue": True,
                            "schema": {
                                "type": "string",
                                "enum": list(SORTS),
                                "default": SORTS[0],
                            },
                        },
                        {
                            "name": "literal",
                            "in": "query",
                            "allowEmptyValue": True,
                            "description": "`1`, `true`, `on` or "
                            "`yes`: search the words as typed (no Telex reading).",
                            "schema": {"type": "string"},
                        },
                        IF_NONE_MATCH,
                    ],
                    "responses": {
                        "200": _json(_ref("SearchResult"), "One page of results.", CACHE_HEADERS),
                        "304": NOT_MODIFIED,
                        "400": _error(
                            "Bad parameters.",
                            ["missing_query", "query_too_long", "bad_query", "bad_parameter"],
                        ),
                        **SERVER_LIMITS,
                        "503": _error("No index has been built yet.", ["no_index"]),
                    },
                }
            },
            "/api/suggest": {
                "get": {
                    "operationId": "suggest",
                    "summary": "Complete a partly typed query",
                    "parameters": [
                        {
                            **q_param,
                            "required": False,
                            "description": "What has been typed; blank gives no suggestions.",
                            "schema": {"type": "string", "maxLength": max_chars},
                        },
                        IF_NONE_MATCH,
                    ],
                    "responses": {
                        "200": _json(_ref("Suggestions"), "At most 8 completions.", CACHE_HEADERS),
                        "304": NOT_MODIFIED,
                        "400": _error("The query is too long.", ["query_too_long"]),
                        **SERVER_LIMITS,
                        "503": _error("No index has been built yet.", ["no_index"]),
                    },
                }
            },
            "/healthz": {
                "get": {
                    "operationId": "health",
                    "summary": "Liveness and index status",
                    "responses": {
                        "200": _json(_ref("Health"), "The index is open."),
                        "503": _json(_ref("NoIndex"), "No index has been built yet."),
                    },
                }
            },
            "/api/openapi.json": {
                "get": {
                    "operationId": "openapi",
                    "summary": "This document",
                    "responses": {"200": _json({"type": "object"}, "OpenAPI 3.0 document.")},
                }
            },
        },
        "components": {
            "schemas": {
                "SearchResult": search_result,
                "Hit": hit,
                "FacetValue": facet_value,
                "Suggestions": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["query", "suggestions"],
                    "properties": {
                        "query": {"type": "string"},
                        "suggestions": {
                            "type": "array",
                            "maxItems": 8,
                            "items": {
                                "type": "object",
                                "additionalProperties": False,
                                "required": ["text", "html"],
                                "properties": {
                                    "text": {"type": "string"},
                                    "html": {
                                        "type": "string",
                                        "description": "Escaped HTML; "
                                        "the typed prefix in `<mark>`.",
                                    },
                                },
                            },
                        },
                    },
                },
                "Health": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["status", "documents", "index_version"],
                    "properties": {
                        "status": {"type": "string", "enum": ["ok"]},
                        "documents": {"type": "integer", "minimum": 0},
                        "index_version": {"type": "integer"},
                    },
                },
                "NoIndex": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["status", "message"],
                    "properties": {
                        "status": {"type": "string", "enum": ["no_index"]},
                        "message": {"type": "string"},
                    },
                },
                "Error": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["error"],
                    "properties": {
                        "error": {
                            "type": "object",
                            "additionalProperties": False,
                            "required": ["code", "message"],
                            "properties": {
                                "code": {"type": "string", "description": "Stable, for programs."},
                                "message": {
                                    "type": "string",
                                    "description": "Vietnamese, for people.",
                                },
                            },
                        }
                    },
                },
            }
        },
    }
