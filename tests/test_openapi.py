"""``GET /api/openapi.json`` describes exactly what the API answers.

Real responses (from the real engine, over an index whose documents carry sources, dates and
near-duplicates, and over no index at all) are validated against the served description with a
small OpenAPI 3.0 schema validator below; then schemathesis fuzzes /api/search and /api/suggest
on a live gunicorn and checks every answer against the description (no 5xx, no schema violation).
"""

from __future__ import annotations

import re
from datetime import date

import pytest
from conftest import Server
from hypothesis import given, settings
from hypothesis import strategies as st

from search.config import Settings
from search.documents import Document
from web import create_app

NEWS = [
    Document(
        id="vne/1",
        title="Lào Cai mở cửa khẩu mới",
        lead="Cửa khẩu mới giúp hàng hóa qua lại nhanh hơn.",
        body="Tỉnh Lào Cai khai trương cửa khẩu mới với Trung Quốc.",
        source="VnExpress",
        date="2024-03-05",
        url="https://vnexpress.net/lao-cai-1.html",
    ),
    Document(
        id="tt/1",  # the same story from another feed: collapsed into vne/1
        title="Lào Cai mở cửa khẩu mới",
        lead="Cửa khẩu mới giúp hàng hóa qua lại nhanh hơn.",
        body="Lào Cai khai trương cửa khẩu mới, theo Tuổi Trẻ.",
        source="Tuổi Trẻ",
        date="2024-03-06",
    ),
    Document(
        id="tt/2",
        title="Du lịch Sa Pa đông khách",
        body="Sa Pa, Lào Cai đón hàng chục nghìn khách dịp cuối tuần.",
        source="Tuổi Trẻ",
        date="2023-12-30T08:00:00+07:00",
    ),
    Document(id="plain/1", body="Lào Cai mưa lớn, không có tiêu đề, nguồn hay ngày."),
]


# --------------------------------------------------------------------------- a small validator


class Invalid(AssertionError):
    pass


def validate(value, schema: dict, spec: dict, path: str = "$") -> None:
    """Validate ``value`` against an OpenAPI 3.0 schema object (the subset the spec uses)."""
    while "$ref" in schema:
        ref = schema["$ref"]
        assert ref.startswith("#/"), ref
        target = spec
        for part in ref[2:].split("/"):
            target = target[part]
        schema = target
    unknown = set(schema) - {
        "type", "nullable", "enum", "properties", "required", "additionalProperties", "items",
        "minItems", "maxItems", "minimum", "maximum", "minLength", "maxLength", "pattern",
        "description", "default",
    }  # fmt: skip
    assert not unknown, f"validator does not know {unknown} (at {path})"
    if value is None:
        if schema.get("nullable"):
            return
        raise Invalid(f"{path}: null is not allowed")
    kind = schema.get("type")
    checks = {
        "object": lambda v: isinstance(v, dict),
        "array": lambda v: isinstance(v, list),
        "string": lambda v: isinstance(v, str),
        "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
        "boolean": lambda v: isinstance(v, bool),
    }
    if kind is not None and not checks[kind](value):
        raise Invalid(f"{path}: {value!r} is not of type {kind}")
    if "enum" in schema and value not in schema["enum"]:
        raise Invalid(f"{path}: {value!r} is not one of {schema['enum']}")
    if isinstance(value, str):
        if len(value) < schema.get("minLength", 0):
            raise Invalid(f"{path}: shorter than {schema['minLength']}")
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            raise Invalid(f"{path}: longer than {schema['maxLength']}")
        if "pattern" in schema and not re.search(schema["pattern"], value):
            raise Invalid(f"{path}: {value!r} does not match {schema['pattern']}")
    if isinstance(value, int | float) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            raise Invalid(f"{path}: {value} < {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            raise Invalid(f"{path}: {value} > {schema['maximum']}")
    if isinstance(value, list):
        if len(value) < schema.get("minItems", 0):
            raise Invalid(f"{path}: fewer than {schema['minItems']} items")
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            raise Invalid(f"{path}: more than {schema['maxItems']} items")
        for i, item in enumerate(value):
            validate(item, schema.get("items", {}), spec, f"{path}[{i}]")
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        for name in schema.get("required", []):
            if name not in value:
                raise Invalid(f"{path}: missing {name!r}")
        extra = schema.get("additionalProperties", True)
        for name, item in value.items():
            if name in properties:
                validate(item, properties[name], spec, f"{path}.{name}")
            elif extra is False:
                raise Invalid(f"{path}: unexpected property {name!r}")
            elif isinstance(extra, dict):
                validate(item, extra, spec, f"{path}.{name}")


def check_response(spec: dict, path: str, response) -> dict | None:
    """Assert that a Flask test response is one the spec documents for ``GET path``; its body."""
    operation = spec["paths"][path]["get"]
    status = str(response.status_code)
    assert status in operation["responses"], f"{path}: undocumented status {status}"
    documented = operation["responses"][status]
    for name, header in documented.get("headers", {}).items():
        assert name in response.headers, f"{path} {status}: no {name} header"
        validate(response.headers[name], header["schema"], spec, f"header {name}")
    if "content" not in documented:
        assert response.get_data() == b""
        return None
    assert response.mimetype in documented["content"], response.mimetype
    body = response.get_json()
    validate(body, documented["content"][response.mimetype]["schema"], spec)
    return body


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def news_index(tmp_path_factory):
    from search.indexer import build_index

    path = tmp_path_factory.mktemp("openapi-news") / "index"
    build_index(NEWS, path, workers=1)
    return path


@pytest.fixture(scope="module")
def client(news_index):
    app = create_app({"TESTING": True, "INDEX_DIR": str(news_index)})
    return app.test_client()


@pytest.fixture(scope="module")
def spec(client) -> dict:
    response = client.get("/api/openapi.json")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    return response.get_json()


# --------------------------------------------------------------------------- the document


def test_spec_is_an_openapi_3_document_whose_refs_resolve(spec):
    assert spec["openapi"].startswith("3.0.")
    assert {"title", "version"} <= set(spec["info"])
    assert set(spec["paths"]) == {"/api/search", "/api/suggest", "/healthz", "/api/openapi.json"}
    refs = re.findall(r'"\$ref": "#/components/schemas/(\w+)"', str(spec).replace("'", '"'))
    assert refs and set(refs) <= set(spec["components"]["schemas"])
    for schema in spec["components"]["schemas"].values():
        validate_schema_keywords(schema)


def validate_schema_keywords(schema: dict) -> None:
    """Every schema object only uses keywords the validator (and OpenAPI 3.0) knows."""
    if "$ref" in schema:
        assert set(schema) == {"$ref"}
        return
    validate(None, {**schema, "nullable": True}, {})  # raises on an unknown keyword
    for child in schema.get("properties", {}).values():
        validate_schema_keywords(child)
    for key in ("items", "additionalProperties"):
        if isinstance(schema.get(key), dict):
            validate_schema_keywords(schema[key])


def test_documented_limits_follow_the_configuration(news_index, client, spec):
    app = create_app(
        {"TESTING": True, "INDEX_DIR": str(news_index), "MAX_PER_PAGE": 50, "MAX_QUERY_CHARS": 99}
    )
    ours = app.test_client()
    first = ours.get("/api/openapi.json")
    params = {p["name"]: p for p in first.get_json()["paths"]["/api/search"]["get"]["parameters"]}
    assert params["per_page"]["schema"]["maximum"] == 50
    assert params["q"]["schema"]["maxLength"] == 99
    assert params["q"]["required"] is True
    # Each app serves the document of its own settings, every time (it is built once per app).
    again = ours.get("/api/openapi.json")
    assert again.data == first.data and again.mimetype == "application/json"
    assert client.get("/api/openapi.json").get_json() == spec
    default = _parameter(spec, "/api/search", "per_page")["schema"]["maximum"]
    assert default == Settings().max_per_page != 50


def _parameter(spec: dict, path: str, name: str) -> dict:
    return next(p for p in spec["paths"][path]["get"]["parameters"] if p["name"] == name)


def is_real_date(value: str) -> bool:
    """``YYYY``, ``YYYY-MM`` or ``YYYY-MM-DD`` naming a real day, month or year."""
    if not re.fullmatch(r"[0-9]{4}(-[0-9]{2}(-[0-9]{2})?)?", value):
        return False
    year, month, day = ([int(p) for p in value.split("-")] + [1, 1])[:3]
    try:
        date(year, month, day)
    except ValueError:
        return False
    return True


def test_date_pattern_is_exactly_the_dates_accepted(client, spec):
    pattern = re.compile(_parameter(spec, "/api/search", "from")["schema"]["pattern"])
    assert _parameter(spec, "/api/search", "to")["schema"]["pattern"] == pattern.pattern
    candidates = []
    for year in (0, 1, 4, 99, 100, 400, 1900, 2000, 2023, 2024, 2100, 9999):
        candidates.append(f"{year:04d}")
        for month in range(0, 14):
            candidates.append(f"{year:04d}-{month:02d}")
            candidates += [
                f"{year:04d}-{month:02d}-{day:02d}" for day in (0, 1, 28, 29, 30, 31, 32)
            ]
    candidates += ["", "24", "2024-1", "2024-01-1", "02024", "2024/01/01", "2024-01-01T00:00"]
    # Read stripped of Python's whitespace (blank: no date); other digits than ASCII refused.
    candidates += [" 2024 ", "\x1c", "\u3000\t", "\x852024-02-29\u2028", "20 24", "٢٠٢٤", "2024-٠١"]
    for value in candidates:
        valid = value.strip() == "" or is_real_date(value.strip())
        assert bool(pattern.search(value)) is valid, value
        if value:
            status = client.get("/api/search", query_string={"q": "x", "from": value}).status_code
            assert status == (200 if valid else 400), value


@settings(max_examples=300, deadline=None)
@given(st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=8))
def test_query_pattern_is_exactly_the_queries_accepted(q):
    from web.openapi import QUERY_PATTERN

    accepted = bool(q.strip()) and "\x00" not in q
    assert bool(re.search(QUERY_PATTERN, q)) is accepted
    assert bool(re.search(QUERY_PATTERN, " \u3000" + q + "\x85\t")) is accepted


def test_the_validator_is_not_vacuous(spec):
    good = {
        "query": "x",
        "total": 0,
        "total_relation": "eq",
        "page": 1,
        "per_page": 10,
        "took_ms": 0.5,
        "interpreted_as": None,
        "suggestion": None,
        "hits": [],
        "facets": {"source": [], "year": []},
    }
    result = {"$ref": "#/components/schemas/SearchResult"}
    validate(good, result, spec)
    bad = [
        {**good, "extra": 1},
        {**good, "total_relation": "about"},
        {**good, "total": None},
        {**good, "total": True},
        {**good, "facets": {"source": []}},
        {**good, "facets": {"source": [{"value": "x", "count": 0}], "year": []}},
        {k: v for k, v in good.items() if k != "suggestion"},
        {**good, "hits": [{"id": "x"}]},
    ]
    for body in bad:
        with pytest.raises(Invalid):
            validate(body, result, spec)
    with pytest.raises(Invalid):
        validate({"error": {"code": "x"}}, {"$ref": "#/components/schemas/Error"}, spec)


# --------------------------------------------------------------------------- real responses


def test_search_responses_match(client, spec):
    seen_similar = seen_facets = seen_url = seen_null_url = False
    for qs in (
        "q=lao+cai",
        "q=lao+cai&per_page=1",
        "q=lao+cai&page=50",
        "q=lao+cai&source=VnExpress",
        "q=lao+cai&from=2024&to=2024-03-05&sort=newest",
        "q=laof+cai",
        "q=laof+cai&literal=1",
        "q=xyzzy",
        'q="c%E1%BB%ADa+kh%E1%BA%A9u"+-sa',
    ):
        body = check_response(spec, "/api/search", client.get("/api/search?" + qs))
        seen_facets |= bool(body["facets"]["source"] and body["facets"]["year"])
        for hit in body["hits"]:
            seen_similar |= bool(hit["similar"])
            seen_url |= hit["url"] is not None
            seen_null_url |= hit["url"] is None
    assert seen_similar and seen_facets and seen_url and seen_null_url


def test_search_body_details(client, spec):
    body = client.get("/api/search?q=lao+cai").get_json()
    assert body["total_relation"] == "eq"
    story = next(hit for hit in body["hits"] if hit["similar"])
    assert {story["id"], *story["similar"]} == {"vne/1", "tt/1"}
    assert not {"vne/1", "tt/1"} & {hit["id"] for hit in body["hits"] if hit is not story}
    assert body["total"] == len(NEWS) - 1  # stories, not documents
    assert "<mark>" in story["title_html"]
    plain = next(hit for hit in body["hits"] if hit["id"] == "plain/1")
    assert plain["source"] is None and plain["date"] is None and plain["lead"] is None
    assert {f["value"] for f in body["facets"]["source"]} == {"VnExpress", "Tuổi Trẻ"}
    assert {f["value"] for f in body["facets"]["year"]} == {"2023", "2024"}


@pytest.mark.parametrize(
    ("qs", "code"),
    [
        ("", "missing_query"),
        ("q=%20", "missing_query"),
        ("q=" + "a" * 1001, "query_too_long"),
        ("q=a%00b", "bad_query"),
        ("q=x&page=0", "bad_parameter"),
        ("q=x&per_page=101", "bad_parameter"),
        ("q=x&from=2024-02-30", "bad_parameter"),
        ("q=x&sort=oldest", "bad_parameter"),
    ],
)
def test_search_errors_match(client, spec, qs, code):
    response = client.get("/api/search?" + qs)
    assert response.status_code == 400
    assert check_response(spec, "/api/search", response)["error"]["code"] == code
    assert code in spec["paths"]["/api/search"]["get"]["responses"]["400"]["description"]


def test_not_modified_matches(client, spec):
    for path, qs in (("/api/search", "q=lao+cai"), ("/api/suggest", "q=lao")):
        etag = client.get(f"{path}?{qs}").headers["ETag"]
        response = client.get(f"{path}?{qs}", headers={"If-None-Match": etag})
        assert response.status_code == 304
        check_response(spec, path, response)


def test_suggest_responses_match(client, spec):
    for qs in ("q=lao", "q=lao+c", "q=", "", "q=zzzz", "q=" + "ầ" * 500):
        check_response(spec, "/api/suggest", client.get("/api/suggest?" + qs))
    body = client.get("/api/suggest?q=lao+c").get_json()
    assert body["suggestions"] and body["suggestions"][0]["text"].startswith("Lào Cai")
    response = client.get("/api/suggest?q=" + "a" * 1001)
    assert response.status_code == 400
    assert check_response(spec, "/api/suggest", response)["error"]["code"] == "query_too_long"


def test_health_and_spec_responses_match(client, spec):
    body = check_response(spec, "/healthz", client.get("/healthz"))
    assert body["documents"] == len(NEWS)
    check_response(spec, "/api/openapi.json", client.get("/api/openapi.json"))


def test_no_index_responses_match(tmp_path, spec):
    empty = create_app({"TESTING": True, "INDEX_DIR": str(tmp_path)}).test_client()
    assert check_response(spec, "/healthz", empty.get("/healthz"))["status"] == "no_index"
    for path in ("/api/search", "/api/suggest"):
        response = empty.get(path + "?q=lao")
        assert response.status_code == 503
        assert check_response(spec, path, response)["error"]["code"] == "no_index"


# --------------------------------------------------------------------------- schemathesis


@pytest.mark.parametrize("mode", ["positive", "negative"])
@pytest.mark.parametrize("path", ["/api/search", "/api/suggest"])
def test_live_api_conforms(samples_server: Server, path: str, mode: str) -> None:
    """schemathesis on a live gunicorn: no 5xx, every answer as described (50 examples each).

    Positive examples (valid by the description) must be accepted, negative ones rejected with a
    documented 4xx.

    (schemathesis's own pytest plugin, ``from_fixture(...).parametrize()``, does not run under
    pytest 9, so the operation's hypothesis strategy is driven directly.)
    """
    schemathesis = pytest.importorskip("schemathesis")
    from hypothesis import HealthCheck

    # A query string or header far beyond the limits is refused by the server itself, with the
    # documented 414 or 431 before the app sees it: rejections too, which schemathesis does not
    # count as such.
    rejections = ["400", "401", "403", "404", "405", "406", "409", "414", "415", "422", "428"]
    config = schemathesis.config.SchemathesisConfig.from_dict(
        {"checks": {"negative_data_rejection": {"expected-statuses": [*rejections, "429", "431"]}}}
    )
    schema = schemathesis.openapi.from_url(samples_server.url + "/api/openapi.json", config=config)
    operation = schema[path]["GET"]

    @given(case=operation.as_strategy(schemathesis.GenerationMode(mode)))
    @settings(
        max_examples=50,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    def conforms(case) -> None:
        case.call_and_validate(base_url=samples_server.url)

    conforms()
