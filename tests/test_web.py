"""The web layer, through Flask's test client.

Two kinds of app:

* ``client`` / ``empty_client`` run the real ``search.engine.SearchEngine`` over a small index built
  from the ``DOCS`` below (or over an empty directory).  They are skipped while ``search.engine``
  does not exist yet.
* ``stub`` runs a ``StubEngine`` (injected through ``ENGINE_FACTORY``) that records its calls and
  answers a fixed result: validation must reject bad input before the engine is ever called, and the
  exact wording of counts, times, suggestions etc. is checked on known data.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re

import pytest

from search.documents import Document
from search.errors import BadRequest, NotFound
from search.response import Hit, SearchResponse, Similar
from web import create_app

XSS = "<script>alert(1)</script>"

DOCS = [
    Document(
        id="xss/1.txt",
        title=f"Lào Cai mưa lũ {XSS}",
        body=f"Mưa lớn kéo dài ở Lào Cai.\n\nNhiều tuyến đường bị sạt lở {XSS} tại Lào Cai.",
        url="javascript:alert(1)",
        source="VnExpress",
        date="2024-03-05",
    ),
    Document(
        id="hn/2.txt",
        title="Hà Nội khai trương tuyến metro mới",
        body="Tuyến metro Nhổn – ga Hà Nội chính thức chạy thương mại.\n\nHành khách đông.",
        url="https://vnexpress.net/ha-noi-metro-2.html",
        source="Tuổi Trẻ",
        date="2023-12-31",
    ),
    Document(
        id="dn/3.txt",
        title="Đà Nẵng đón khách du lịch",
        body="Đà Nẵng đón hàng nghìn khách du lịch dịp lễ. Bãi biển Mỹ Khê kín người.",
    ),
]

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)


def assert_security_headers(response) -> None:
    assert response.headers["Content-Security-Policy"] == CSP
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "strict-origin-when-cross-origin"


def assert_error(response, status: int, code: str) -> None:
    assert response.status_code == status
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message"}
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]


def html(response) -> str:
    assert response.mimetype == "text/html"
    return response.get_data(as_text=True)


def assert_no_inline_code(page: str) -> None:
    """CSP forbids inline scripts and styles, so templates must not contain any."""
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", page)
    assert "<style" not in page
    assert not re.search(r"\sstyle=", page)
    assert not re.search(r"\son[a-z]+=", page)


# --------------------------------------------------------------------------- real engine


@pytest.fixture(scope="session")
def index_dir(tmp_path_factory):
    pytest.importorskip("search.engine", reason="needs the real engine (search/engine.py)")
    from search.indexer import build_index

    path = tmp_path_factory.mktemp("web-index")
    build_index(DOCS, path, workers=1)
    return path


@pytest.fixture()
def client(index_dir):
    app = create_app({"TESTING": True, "INDEX_DIR": str(index_dir)})
    with app.test_client() as test_client:
        yield test_client
    engine = app.extensions.get("vnsearch")
    if engine is not None:  # its warm-up thread stops with it, not during the next test
        engine.close()


@pytest.fixture()
def empty_client(tmp_path):
    pytest.importorskip("search.engine", reason="needs the real engine (search/engine.py)")
    app = create_app({"TESTING": True, "INDEX_DIR": str(tmp_path)})
    return app.test_client()


def test_api_search_returns_the_engine_dict(client):
    response = client.get("/api/search", query_string={"q": "Lào Cai"})
    assert response.status_code == 200
    assert_security_headers(response)
    body = response.get_json()
    assert {"query", "total", "total_relation", "page", "per_page", "took_ms", "hits"} <= set(body)
    assert body["page"] == 1 and body["per_page"] == 10
    assert [hit["id"] for hit in body["hits"]][:1] == ["xss/1.txt"]


def test_search_page_escapes_script_in_title_and_snippet(client):
    response = client.get("/", query_string={"q": "Lào Cai"})
    assert response.status_code == 200
    page = html(response)
    assert XSS not in page
    assert "alert(1)" in page  # the text is shown, escaped
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<mark>" in page  # the snippet's highlight is real HTML
    assert '<ol class="results"' in page
    assert_no_inline_code(page)
    assert_security_headers(response)


def test_javascript_url_is_never_a_link(client):
    page = html(client.get("/", query_string={"q": "Lào Cai"}))
    assert "javascript:" not in page
    assert 'href="/doc/xss/1.txt?q=L%C3%A0o+Cai"' in page


def test_http_url_is_the_title_link_with_a_cached_copy(client):
    page = html(client.get("/", query_string={"q": "metro"}))
    assert '<a href="https://vnexpress.net/ha-noi-metro-2.html">' in page
    assert 'href="/doc/hn/2.txt?q=metro"' in page
    assert "31/12/2023" in page and "Tuổi Trẻ" in page


# URLs a source may hold that must never be written into an ``href``: a NUL, a line break and
# a C1 control character inside an otherwise valid http(s) URL.
CONTROL_URLS = {
    "nul/1.txt": "https://example.org/a\x00b",
    "newline/2.txt": "https://example.org/a\nb",
    "c1/3.txt": "https://example.org/a\x9b31mb",
}


@pytest.fixture(scope="session")
def control_url_client(tmp_path_factory):
    pytest.importorskip("search.engine", reason="needs the real engine (search/engine.py)")
    from search.indexer import build_index

    path = tmp_path_factory.mktemp("control-url-index")
    docs = [
        Document(id=doc_id, title="Cầu Rồng Đà Nẵng", body="Cầu Rồng phun lửa.", url=url)
        for doc_id, url in CONTROL_URLS.items()
    ]
    build_index(docs, path, workers=1)
    app = create_app({"TESTING": True, "INDEX_DIR": str(path)})
    return app.test_client()


def test_urls_with_control_characters_are_never_links(control_url_client):
    page = html(control_url_client.get("/", query_string={"q": "cầu rồng"}))
    hrefs = re.findall(r'href="([^"]*)"', page)
    assert not [h for h in hrefs if "example.org" in h]
    for doc_id in CONTROL_URLS:  # the title links to the cached copy instead
        assert f'href="/doc/{doc_id}?q=c%E1%BA%A7u+r%E1%BB%93ng"' in page
        doc_page = html(control_url_client.get(f"/doc/{doc_id}"))
        assert "example.org" not in doc_page and "Đọc bài gốc" not in doc_page


def test_search_without_diacritics_finds_vietnamese(client):
    body = client.get("/api/search", query_string={"q": "da nang"}).get_json()
    assert [hit["id"] for hit in body["hits"]] == ["dn/3.txt"]


def test_no_results_page(client):
    response = client.get("/", query_string={"q": "xyzzyqwv"})
    assert response.status_code == 200
    page = html(response)
    assert "Không tìm thấy kết quả nào cho «xyzzyqwv»" in page
    assert "Thử bỏ dấu" in page and "Dùng ít từ hơn" in page


def test_document_page_escapes_and_highlights(client):
    response = client.get("/doc/xss/1.txt", query_string={"q": "Lào Cai"})
    assert response.status_code == 200
    page = html(response)
    assert XSS not in page
    assert "&lt;script&gt;" in page
    assert "<mark>" in page
    assert "javascript:" not in page
    assert page.count("<p>") >= 2  # paragraphs kept
    assert_no_inline_code(page)


def test_engine_validation_errors_reach_the_api_as_json(client):
    assert_error(client.get("/api/search?q=a%00b"), 400, "bad_query")


def test_document_page_unknown_id_is_a_friendly_404(client):
    response = client.get("/doc/does/not/exist.txt")
    assert response.status_code == 404
    assert "Không tìm thấy" in html(response)
    assert_security_headers(response)


def test_healthz_ok(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "ok"
    assert body["documents"] == len(DOCS)


def test_suggest(client):
    response = client.get("/api/suggest", query_string={"q": "Lào"})
    assert response.status_code == 200
    body = response.get_json()
    assert body["query"] == "Lào"
    assert isinstance(body["suggestions"], list)


def test_no_index_pages(empty_client):
    for url in ("/", "/?q=lao+cai", "/doc/a.txt"):
        response = empty_client.get(url)
        assert response.status_code == 503, url
        page = html(response)
        assert "vnsearch reindex samples/" in page
        assert_security_headers(response)


def test_no_index_healthz_and_api(empty_client):
    response = empty_client.get("/healthz")
    assert response.status_code == 503
    assert response.get_json()["status"] == "no_index"
    assert_security_headers(response)
    assert_error(empty_client.get("/api/search?q=lao"), 503, "no_index")


def test_no_index_answers_do_not_show_the_servers_paths(empty_client, tmp_path):
    message = "Chưa có chỉ mục tìm kiếm. Người quản trị cần chạy: vnsearch reindex samples/"
    assert empty_client.get("/healthz").get_json()["message"] == message
    response = empty_client.get("/api/search?q=lao")
    assert response.get_json()["error"]["message"] == message
    assert response.headers["Cache-Control"] == "no-store"
    for url in ("/", "/?q=lao", "/healthz", "/api/search?q=lao"):
        assert str(tmp_path) not in empty_client.get(url).get_data(as_text=True), url


# --------------------------------------------------------------------------- stub engine


def _result(**changes) -> dict:
    result = {
        "query": "lao cai",
        "total": 1234,
        "total_relation": "eq",
        "page": 1,
        "per_page": 10,
        "took_ms": 31.4,
        "interpreted_as": None,
        "suggestion": None,
        "hits": [
            {
                "id": "a/1.txt",
                "title": f"Tiêu đề {XSS}",
                "url": "javascript:alert(1)",
                "snippet": "mưa ở <mark>Lào Cai</mark> &lt;b&gt;",
                "score": 1.0,
                "source": "VnExpress",
                "date": "2024-03-05",
                "lead": "",
            }
        ],
    }
    result.update(changes)
    return result


class StubEngine:
    def __init__(
        self,
        result: dict | None = None,
        error: Exception | None = None,
        docs: dict[str, dict] | None = None,
    ) -> None:
        self.result = result or _result()
        self.error = error
        self.docs = docs or {}
        self.calls: list[tuple] = []

    def search(
        self,
        q,
        page=1,
        per_page=10,
        *,
        source=None,
        date_from=None,
        date_to=None,
        sort="relevance",
        literal=False,
    ):
        self.calls.append((q, page, per_page, source, date_from, date_to, sort, literal))
        if self.error:
            raise self.error
        return {**copy.deepcopy(self.result), "page": page, "per_page": per_page}

    def search_response(self, q, page=1, per_page=10, **kwargs) -> SearchResponse:
        """``search``'s dict as the engine's typed answer: keys the stub leaves out get blank
        values, and near-duplicates their title, source and date from ``docs``."""
        result = self.search(q, page, per_page, **kwargs)

        def similar(doc_id: str) -> Similar:
            doc = self.docs.get(doc_id, {})
            return Similar(doc_id, doc.get("title", ""), doc.get("source"), doc.get("date"))

        blank = {"title_html": "", "lead": None}
        hits = tuple(
            Hit(
                **{**blank, **{k: v for k, v in h.items() if k != "similar"}},
                similar=tuple(similar(i) for i in h.get("similar", [])),
            )
            for h in result["hits"]
        )
        return SearchResponse(**{"facets": {}, **result, "hits": hits})

    def document(self, doc_id, q=None):
        self.calls.append(("document", doc_id))
        if doc_id not in self.docs:
            raise NotFound(f"Không tìm thấy bài viết «{doc_id}».")
        return {"id": doc_id, "title": "", "source": None, "date": None, **self.docs[doc_id]}

    def health(self):
        return {"status": "ok", "documents": 3, "index_version": 1}

    def suggest(self, prefix, limit=8):
        self.calls.append(("suggest", prefix))
        return {
            "query": prefix,
            "suggestions": [{"text": "Lào Cai", "html": "<mark>Lào</mark> Cai"}],
        }

    def close(self):
        pass


def make_stub(engine, **config):
    app = create_app({"TESTING": True, "ENGINE_FACTORY": lambda index_dir: engine, **config})
    return app.test_client(), engine


@pytest.fixture()
def stub():
    return make_stub(StubEngine())


@pytest.mark.parametrize(
    ("query_string", "code"),
    [
        ("", "missing_query"),
        ("q=", "missing_query"),
        ("q=%20%20%09", "missing_query"),
        ("page=2", "missing_query"),
        ("q=" + "a" * 1001, "query_too_long"),
        ("q=x&page=0", "bad_parameter"),
        ("q=x&page=-1", "bad_parameter"),
        ("q=x&page=abc", "bad_parameter"),
        ("q=x&page=1.5", "bad_parameter"),
        ("q=x&page=1001", "bad_parameter"),
        ("q=x&page=99999999999999999999", "bad_parameter"),
        ("q=x&per_page=0", "bad_parameter"),
        ("q=x&per_page=101", "bad_parameter"),
        ("q=x&per_page=ten", "bad_parameter"),
        ("q=x&sort=oldest", "bad_parameter"),
        ("q=x&from=yesterday", "bad_parameter"),
        ("q=x&to=2024-02-30", "bad_parameter"),
        ("q=x&to=2024-13", "bad_parameter"),
    ],
)
def test_api_search_rejects_bad_input(stub, query_string, code):
    client, engine = stub
    response = client.get("/api/search?" + query_string)
    assert_error(response, 400, code)
    assert_security_headers(response)
    assert engine.calls == []  # validated before the engine is asked


def test_api_search_boundaries_are_accepted(stub):
    client, engine = stub
    accepted = (
        "q=" + "a" * 1000,
        "q=x&page=1000",
        "q=x&per_page=100",
        "q=x&per_page=1",
        "q=x&from=2024&to=2024-06",
        "q=x&from=2024-02-29",
    )
    for qs in accepted:
        assert client.get("/api/search?" + qs).status_code == 200, qs
    assert len(engine.calls) == len(accepted)


def test_repeated_parameters_take_the_first(stub):
    client, engine = stub
    response = client.get("/api/search?q=first&q=second&page=2&page=abc")
    assert response.status_code == 200
    assert engine.calls[0][:2] == ("first", 2)


def test_filters_are_passed_through(stub):
    client, engine = stub
    qs = "q=x&source=VnExpress&from=2024-01-01&to=2024-12-31&sort=newest&per_page=5"
    assert client.get("/api/search?" + qs).status_code == 200
    assert engine.calls == [("x", 1, 5, "VnExpress", "2024-01-01", "2024-12-31", "newest", False)]


def test_literal_is_passed_to_the_engine():
    client, engine = make_stub(StubEngine())
    client.get("/api/search?q=laof+cai&literal=1")
    assert engine.calls[-1][-1] is True


def test_post_is_405_json(stub):
    client, _ = stub
    response = client.post("/api/search?q=x")
    assert_error(response, 405, "method_not_allowed")
    assert "GET" in response.headers["Allow"]
    assert_security_headers(response)


def test_unknown_api_path_is_404_json(stub):
    client, _ = stub
    response = client.get("/api/nope")
    assert_error(response, 404, "not_found")
    assert_security_headers(response)


def test_unknown_page_is_a_friendly_html_404(stub):
    client, _ = stub
    response = client.get("/nope")
    assert response.status_code == 404
    page = html(response)
    assert '<html lang="vi">' in page and "Không tìm thấy trang" in page
    assert_security_headers(response)


def test_engine_errors_keep_their_code_and_status():
    client, _ = make_stub(StubEngine(error=BadRequest("Cú pháp sai", code="bad_query")))
    assert_error(client.get("/api/search?q=x"), 400, "bad_query")
    response = client.get("/?q=x")
    assert response.status_code == 400
    assert "Cú pháp sai" in html(response)


def test_unexpected_errors_are_json_500_on_the_api():
    client, _ = make_stub(StubEngine(error=RuntimeError("boom")), PROPAGATE_EXCEPTIONS=False)
    response = client.get("/api/search?q=x")
    assert_error(response, 500, "internal_server_error")
    assert "boom" not in response.get_data(as_text=True)
    assert_security_headers(response)


def test_suggest_blank_and_too_long(stub):
    client, engine = stub
    for qs in ("", "q=", "q=%20"):
        response = client.get("/api/suggest?" + qs)
        assert response.status_code == 200
        assert response.get_json() == {"query": "", "suggestions": []}
    assert_error(client.get("/api/suggest?q=" + "a" * 1001), 400, "query_too_long")
    # Blank but over the limit: the schema's maxLength holds for blanks too (a form-feed query
    # once got a 200 where the OpenAPI document promised a 400).
    for blank in ("%0C" * 1001, "%20" * 1001):
        assert_error(client.get("/api/suggest?q=" + blank), 400, "query_too_long")
        assert_error(client.get("/api/search?q=" + blank), 400, "query_too_long")
    assert engine.calls == []
    assert client.get("/api/suggest?q=l%C3%A0").get_json()["suggestions"][0]["text"] == "Lào Cai"


def test_security_headers_everywhere(stub):
    client, _ = stub
    for url in ("/", "/?q=x", "/api/search?q=x", "/healthz", "/static/style.css", "/static/app.js"):
        response = client.get(url)
        response.close()  # static files are streamed from an open file
        assert response.status_code == 200, url
        assert_security_headers(response)


def test_page_layout_and_accessibility_hooks(stub):
    client, _ = stub
    page = html(client.get("/?q=lao+cai"))
    assert '<html lang="vi">' in page
    assert '<label for="q"' in page and 'id="q"' in page
    assert 'class="skip-link" href="#main"' in page and 'id="main"' in page
    for tag in ("<header", "<main", "<footer", '<ol class="results"', '<h2 class="result-title"'):
        assert tag in page
    assert_no_inline_code(page)


def test_result_count_time_and_date_in_vietnamese_format(stub):
    client, _ = stub
    page = html(client.get("/?q=lao+cai"))
    assert "1.234 kết quả (0,03 giây)" in page
    assert "Khoảng" not in page
    assert "05/03/2024" in page and "VnExpress" in page
    # the snippet is engine HTML, the title is text
    assert "mưa ở <mark>Lào Cai</mark> &lt;b&gt;" in page
    assert "Tiêu đề &lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert XSS not in page and "javascript:" not in page
    assert 'href="/doc/a/1.txt?q=lao+cai"' in page


def test_estimated_totals_say_khoang():
    client, _ = make_stub(StubEngine(_result(total=1234567, total_relation="gte", took_ms=1234.5)))
    page = html(client.get("/?q=lao+cai"))
    assert "Khoảng 1.234.567 kết quả (1,23 giây)" in page


def test_pagination_keeps_the_query(stub):
    client, _ = stub
    page = html(client.get("/?q=lao+cai&page=3&sort=newest"))
    assert 'href="/?q=lao+cai&amp;page=2&amp;sort=newest" rel="prev">‹ Trước' in page
    assert 'href="/?q=lao+cai&amp;page=4&amp;sort=newest" rel="next">Sau ›' in page
    assert 'href="/?q=lao+cai&amp;page=3&amp;sort=newest" aria-current="page"' in page
    assert 'href="/?q=lao+cai&amp;sort=newest"' in page  # page 1 without page=1
    assert '<ol class="results" start="21">' in page


def test_empty_result_with_suggestion():
    result = _result(total=0, hits=[], suggestion="Lào Cai", query="lao caii")
    client, _ = make_stub(StubEngine(result))
    page = html(client.get("/?q=lao+caii"))
    assert "Không tìm thấy kết quả nào cho «lao caii»" in page
    assert "Thử bỏ dấu" in page and "Dùng ít từ hơn" in page
    assert 'Có phải bạn muốn tìm: <a href="/?q=L%C3%A0o+Cai"><b>Lào Cai</b></a>?' in page


def test_interpreted_query_offers_the_literal_search():
    client, engine = make_stub(StubEngine(_result(interpreted_as="lào cai")))
    page = html(client.get("/?q=laof+cai"))
    assert "Đang hiển thị kết quả cho «<b>lào cai</b>»" in page
    assert '<a href="/?q=laof+cai&amp;literal=1">Tìm chính xác «laof cai»</a>' in page
    assert engine.calls[-1][-1] is False
    client.get("/?q=laof+cai&literal=1")
    assert engine.calls[-1][-1] is True


def test_html_search_errors_are_friendly_pages(stub):
    client, engine = stub
    response = client.get("/?q=x&page=abc")
    assert response.status_code == 400
    assert "Yêu cầu không hợp lệ" in html(response)
    response = client.get("/?q=" + "a" * 1001)
    assert response.status_code == 400
    assert engine.calls == []


def test_home_page_without_query(stub):
    client, engine = stub
    response = client.get("/")
    assert response.status_code == 200
    assert "Tìm kiếm tin tức" in html(response)
    assert engine.calls == []


def test_index_dir_from_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("VNSEARCH_INDEX_DIR", str(tmp_path))
    assert create_app().config["INDEX_DIR"] == str(tmp_path)
    assert create_app({"INDEX_DIR": "elsewhere"}).config["INDEX_DIR"] == "elsewhere"


def test_cache_size_from_environment(monkeypatch, tmp_path):
    from web import get_engine

    monkeypatch.setenv("VNSEARCH_INDEX_DIR", str(tmp_path))
    monkeypatch.setenv("VNSEARCH_CACHE_MB", "200")
    app = create_app()
    with app.app_context():
        assert get_engine()._cache_bytes == 200 * 2**20
    monkeypatch.setenv("VNSEARCH_CACHE_MB", "0")
    with pytest.raises(ValueError, match="VNSEARCH_CACHE_MB must be at least 1, not 0"):
        create_app()


def test_settings_reach_the_engine(monkeypatch, index_dir):
    from web import get_engine

    monkeypatch.setenv("VNSEARCH_SNIPPET_CHARS", "60")
    monkeypatch.setenv("VNSEARCH_MAX_PER_PAGE", "50")
    app = create_app({"TESTING": True, "INDEX_DIR": str(index_dir), "MAX_PER_PAGE": 20})
    with app.app_context():
        settings = get_engine().settings
    assert (settings.snippet_chars, settings.max_per_page) == (60, 20)  # explicit beats the env
    client = app.test_client()
    assert client.get("/api/search?q=x&per_page=20").status_code == 200
    assert_error(client.get("/api/search?q=x&per_page=21"), 400, "bad_parameter")


@pytest.mark.parametrize(
    ("query_string", "kwargs"),
    [
        ("q=" + "a" * 1001, {"q": "a" * 1001}),
        ("q=x&page=1001", {"page": 1001}),
        ("q=x&per_page=abc", {"per_page": "abc"}),
        ("q=x&sort=oldest", {"sort": "oldest"}),
        ("q=x&to=2024-02-30", {"date_to": "2024-02-30"}),
        ("q=a%00b", {"q": "a\x00b"}),
    ],
)
def test_the_api_refuses_with_the_engines_words(client, index_dir, query_string, kwargs):
    from search.engine import SearchEngine

    engine = SearchEngine(index_dir, warm=False)
    with pytest.raises(BadRequest) as info:
        engine.search(**{"q": "x", **kwargs})
    body = client.get("/api/search?" + query_string).get_json()
    assert body == {"error": {"code": info.value.code, "message": info.value.message}}


def test_one_engine_per_app_created_lazily():
    created = []

    def factory(index_dir):
        created.append(index_dir)
        return StubEngine()

    app = create_app({"TESTING": True, "ENGINE_FACTORY": factory, "INDEX_DIR": "ix"})
    assert created == [] and app.extensions["vnsearch"] is None
    client = app.test_client()
    client.get("/api/search?q=a")
    client.get("/api/search?q=b")
    assert created == ["ix"]
    assert isinstance(app.extensions["vnsearch"], StubEngine)


# --------------------------------------------------------------------------- filters, duplicates

FACETS = {
    "source": [{"value": "VnExpress", "count": 2}, {"value": "Tuổi Trẻ", "count": 1}],
    "year": [{"value": "2023", "count": 2}, {"value": "2024", "count": 1}],
}


def test_no_filters_when_documents_carry_no_source_or_date(stub):
    client, _ = stub
    page = html(client.get("/?q=lao+cai"))  # the stub's result has no facets
    assert 'class="filters"' not in page


def test_source_filter_links_with_counts_keep_the_query():
    client, _ = make_stub(StubEngine(_result(facets=FACETS)))
    page = html(client.get("/?q=lao+cai&sort=newest&page=2"))
    assert '<section class="filters" aria-labelledby="filters-title">' in page
    assert (
        '<a href="/?q=lao+cai&amp;source=VnExpress&amp;sort=newest">VnExpress'
        ' <span class="count">(2)</span></a>' in page
    )
    assert 'href="/?q=lao+cai&amp;source=Tu%E1%BB%95i+Tr%E1%BA%BB&amp;sort=newest">Tuổi Trẻ' in page
    assert '<a href="/?q=lao+cai&amp;sort=newest" aria-current="true">Tất cả</a>' in page
    # A chosen source is marked current and "Tất cả" removes it.
    page = html(client.get("/?q=lao+cai&source=VnExpress"))
    assert (
        '<a href="/?q=lao+cai&amp;source=VnExpress" aria-current="true">VnExpress'
        ' <span class="count">(2)</span></a>' in page
    )
    assert '<a href="/?q=lao+cai">Tất cả</a>' in page
    # The search box keeps the filter for the next query.
    assert '<input type="hidden" name="source" value="VnExpress">' in page


def test_date_range_form_works_without_javascript():
    client, engine = make_stub(StubEngine(_result(facets=FACETS)))
    page = html(client.get("/?q=lao+cai&source=VnExpress&from=2024&to=2024-02&sort=newest"))
    form = page[
        page.index('<form class="date-filter"') : page.index(
            "</form>", page.index('<form class="date-filter"')
        )
    ]
    assert 'action="/" method="get"' in form
    assert '<input type="hidden" name="q" value="lao cai">' in form
    assert '<input type="hidden" name="source" value="VnExpress">' in form
    assert '<input type="hidden" name="sort" value="newest">' in form
    assert 'name="page"' not in form
    # YYYY and YYYY-MM are shown as the days they stand for.
    assert 'id="date-from" name="from" type="date" value="2024-01-01"' in form
    assert 'id="date-to" name="to" type="date" value="2024-02-29"' in form
    assert '<label for="date-from">Từ ngày</label>' in form
    assert 'href="/?q=lao+cai&amp;source=VnExpress&amp;sort=newest">Bỏ lọc thời gian</a>' in form
    # Year shortcuts, newest first, with counts.
    assert page.index(">2024 <span") < page.index(">2023 <span")
    assert (
        'href="/?q=lao+cai&amp;source=VnExpress&amp;from=2023&amp;to=2023&amp;sort=newest"' in page
    )
    assert engine.calls[-1] == ("lao cai", 1, 10, "VnExpress", "2024", "2024-02", "newest", False)
    # The form's empty date fields are the same as no dates.
    assert client.get("/?q=lao+cai&from=&to=&source=").status_code == 200
    assert engine.calls[-1] == ("lao cai", 1, 10, None, None, None, "relevance", False)


def test_filtered_empty_result_offers_to_drop_the_filters():
    result = _result(total=0, hits=[], facets=FACETS, suggestion="Lào Cai", query="lao cai")
    client, _ = make_stub(StubEngine(result))
    page = html(client.get("/?q=lao+cai&source=VnExpress&from=2030"))
    assert "Không tìm thấy kết quả nào cho «lao cai»" in page
    assert '<a href="/?q=lao+cai">Tìm lại không có bộ lọc</a>' in page
    assert 'class="filters"' in page  # still there, to change them
    assert page.count("Có phải bạn muốn tìm") == 1
    assert "Thử bỏ dấu" in page


def test_near_duplicates_expand_to_links_without_javascript():
    hit = {**_result()["hits"][0], "similar": ["b/2.txt", "gone/3.txt"]}
    docs = {"b/2.txt": {"source": "Tuổi Trẻ", "date": "2024-03-06T07:00:00+07:00"}}
    client, engine = make_stub(StubEngine(_result(hits=[hit]), docs=docs))
    page = html(client.get("/?q=lao+cai"))
    assert '<details class="similar">' in page
    assert "<summary>2 bài tương tự</summary>" in page
    assert (
        '<li><a href="/doc/b/2.txt?q=lao+cai">Tuổi Trẻ</a> · '
        '<time datetime="2024-03-06">06/03/2024</time></li>' in page
    )
    # The search tells each copy's source and date: no article is read again.
    assert not [call for call in engine.calls if call[0] == "document"]
    # A copy without a source or title is labelled with its id.
    assert '<li><a href="/doc/gone/3.txt?q=lao+cai">gone/3.txt</a></li>' in page
    assert_no_inline_code(page)


def test_no_similar_no_details(stub):
    client, _ = stub
    page = html(client.get("/?q=lao+cai"))
    assert "<details" not in page and "bài tương tự" not in page


def test_real_engine_facets_on_the_page(client):
    page = html(client.get("/", query_string={"q": "Hà Nội"}))
    assert 'href="/?q=H%C3%A0+N%E1%BB%99i&amp;source=Tu%E1%BB%95i+Tr%E1%BA%BB">Tuổi Trẻ' in page
    assert 'href="/?q=H%C3%A0+N%E1%BB%99i&amp;from=2023&amp;to=2023">2023' in page
    page = html(client.get("/", query_string={"q": "Hà Nội", "source": "VnExpress"}))
    assert "Không tìm thấy kết quả nào" in page
    assert 'href="/?q=H%C3%A0+N%E1%BB%99i">Tìm lại không có bộ lọc</a>' in page


# --------------------------------------------------------------------------- caching, CORS


def test_api_answers_carry_an_etag_and_honour_if_none_match(client):
    first = client.get("/api/search", query_string={"q": "Lào Cai"})
    again = client.get("/api/search", query_string={"q": "Lào Cai"})
    etag = first.headers["ETag"]
    assert re.fullmatch(r'W/"[0-9a-f]{32}"', etag)
    assert again.headers["ETag"] == etag  # took_ms differs, the answer does not
    assert first.headers["Cache-Control"] == "public, max-age=60"
    other = client.get("/api/search", query_string={"q": "Lào Cai", "per_page": 5})
    assert other.headers["ETag"] != etag
    for sent in (etag, etag.removeprefix("W/"), f'"nope", {etag}', "*"):
        response = client.get(
            "/api/search", query_string={"q": "Lào Cai"}, headers={"If-None-Match": sent}
        )
        assert response.status_code == 304, sent
        assert response.get_data() == b""
        assert response.headers["ETag"] == etag
        assert response.headers["Cache-Control"] == "public, max-age=60"
        assert_security_headers(response)
    response = client.get(
        "/api/search", query_string={"q": "Lào Cai"}, headers={"If-None-Match": 'W/"nope"'}
    )
    assert response.status_code == 200 and response.get_json()["hits"]


def test_api_body_is_the_engine_answer_in_utf8_json_and_the_etag_hashes_it(client, index_dir):
    """One serialisation makes both the body and its validator: the body parses to the engine's
    answer (``took_ms`` included), Vietnamese letters go out as UTF-8, not ``\\u`` escapes, and
    the ETag is the hash of the body without ``took_ms``."""
    response = client.get("/api/search", query_string={"q": "Lào Cai", "per_page": 3})
    raw = response.get_data()
    body = json.loads(raw)
    assert response.headers["Content-Type"] == "application/json"
    assert "Lào Cai".encode() in raw and b"\\u" not in raw
    from search.engine import SearchEngine

    engine = SearchEngine(index_dir)
    try:
        expected = engine.search("Lào Cai", per_page=3)
    finally:
        engine.close()
    assert isinstance(body.pop("took_ms"), float)
    expected.pop("took_ms")
    assert body == expected
    stable = json.dumps(body, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    digest = hashlib.sha256(stable.encode()).hexdigest()[:32]
    assert response.headers["ETag"] == f'W/"{digest}"'


def test_suggest_etag(client):
    first = client.get("/api/suggest", query_string={"q": "Lào"})
    assert first.headers["Cache-Control"] == "public, max-age=60"
    response = client.get(
        "/api/suggest", query_string={"q": "Lào"}, headers={"If-None-Match": first.headers["ETag"]}
    )
    assert response.status_code == 304
    blank = client.get("/api/suggest")
    assert blank.status_code == 200 and "ETag" in blank.headers


def test_no_etag_on_errors_pages_and_health(client):
    for url in ("/api/search", "/api/search?q=x&page=0", "/?q=Lào+Cai", "/healthz"):
        response = client.get(url)
        assert "ETag" not in response.headers, url
    assert client.get("/healthz").headers["Cache-Control"] == "no-store"
    assert "public" not in client.get("/api/search?q=x&page=0").headers.get("Cache-Control", "")


def test_cors_is_off_by_default(stub):
    client, _ = stub
    origin = {"Origin": "https://example.org"}
    response = client.get("/api/search?q=x", headers=origin)
    assert response.status_code == 200
    assert not any(h.lower().startswith("access-control-") for h, _ in response.headers)
    assert "Origin" not in response.headers.get("Vary", "")
    preflight = client.options(
        "/api/search?q=x", headers={**origin, "Access-Control-Request-Method": "GET"}
    )
    assert "Access-Control-Allow-Origin" not in preflight.headers


def test_cors_for_configured_origins_on_the_api_only():
    config = {"CORS_ORIGINS": "https://a.example, https://b.example"}
    client, _ = make_stub(StubEngine(), **config)
    for origin in ("https://a.example", "https://b.example"):
        for url in ("/api/search?q=x", "/api/suggest?q=l", "/api/search", "/api/openapi.json"):
            response = client.get(url, headers={"Origin": origin})
            assert response.headers["Access-Control-Allow-Origin"] == origin, url
            assert "Origin" in response.headers["Vary"]
            assert response.headers["Access-Control-Expose-Headers"] == "ETag"
    # Not an allowed origin (exact match only): no CORS, but caches must still vary on Origin.
    for origin in ("https://c.example", "https://a.example.evil", "http://a.example", "null"):
        response = client.get("/api/search?q=x", headers={"Origin": origin})
        assert "Access-Control-Allow-Origin" not in response.headers, origin
        assert "Origin" in response.headers["Vary"]
    # Pages and health are not part of the API.
    for url in ("/?q=x", "/healthz", "/static/style.css"):
        response = client.get(url, headers={"Origin": "https://a.example"})
        response.close()
        assert "Access-Control-Allow-Origin" not in response.headers, url


def test_cors_preflight():
    client, engine = make_stub(StubEngine(), CORS_ORIGINS="https://a.example")
    headers = {
        "Origin": "https://a.example",
        "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "if-none-match",
    }
    response = client.options("/api/search?q=x", headers=headers)
    assert response.status_code == 204
    assert response.get_data() == b""
    assert response.headers["Access-Control-Allow-Origin"] == "https://a.example"
    assert response.headers["Access-Control-Allow-Methods"] == "GET"
    assert "If-None-Match" in response.headers["Access-Control-Allow-Headers"]
    assert int(response.headers["Access-Control-Max-Age"]) > 0
    assert engine.calls == []  # a preflight never searches
    refused = client.options("/api/search", headers={**headers, "Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in refused.headers
    assert "Access-Control-Allow-Methods" not in refused.headers


def test_cors_star():
    client, _ = make_stub(StubEngine(), CORS_ORIGINS="*")
    for headers in ({"Origin": "https://anywhere.example"}, {}):
        response = client.get("/api/search?q=x", headers=headers)
        assert response.headers["Access-Control-Allow-Origin"] == "*"
        assert "Origin" not in response.headers.get("Vary", "")
    assert "Access-Control-Allow-Origin" not in client.get("/?q=x").headers


def test_cors_origins_from_environment(monkeypatch):
    monkeypatch.setenv("VNSEARCH_CORS_ORIGINS", "https://a.example,https://b.example")
    app = create_app({"TESTING": True, "ENGINE_FACTORY": lambda index_dir: StubEngine()})
    response = app.test_client().get("/api/search?q=x", headers={"Origin": "https://b.example"})
    assert response.headers["Access-Control-Allow-Origin"] == "https://b.example"
    monkeypatch.setenv("VNSEARCH_CORS_ORIGINS", "*")
    app = create_app({"TESTING": True, "ENGINE_FACTORY": lambda index_dir: StubEngine()})
    assert app.test_client().get("/api/search?q=x").headers["Access-Control-Allow-Origin"] == "*"


def test_openapi_is_served(stub):
    client, _ = stub
    response = client.get("/api/openapi.json")
    assert response.status_code == 200
    assert response.get_json()["openapi"].startswith("3.")
    assert_security_headers(response)
