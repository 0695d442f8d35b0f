"""Hostile input to a real gunicorn (and, for breadth, Flask's test client).

Never a 5xx, never slow, never a crashed worker, never unescaped markup, never a file outside the
index.

``tests/test_server.py`` already pins the exact answers to a blank query, 1,001 and 10,000
characters, bad paging, NUL, POST and ``%ff``; here every odd input is thrown at every endpoint.
"""

from __future__ import annotations

import http.client
import json
import random
import re
import socket
import time
import urllib.parse
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest
from conftest import Server

from search.documents import Document
from search.indexer import build_index
from web import create_app

SCRIPT = "<script>alert(1)</script>"
ATTR = '"onmouseover=alert(1) x="'
MARK_BREAK = "</mark><script>alert(2)</script>"
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)
SYLLABLES = (  # noqa: SIM905 - a sentence is easier to read than a list of strings
    "lào cai hà nội đà nẵng mưa lớn nắng nóng người dân chợ phiên bắc khách du lịch biển tỉnh "
    "huyện xã ủy ban nhân dân kinh tế phát triển nông nghiệp lúa gạo cà phê hợp tác đầu tư"
).split()

HOSTILE_DOCS = [
    Document(
        id="xss-1",
        title=f"{SCRIPT} Lào Cai mưa lớn",
        body=f"Mưa lớn ở Lào Cai {ATTR} kéo dài.\n\nĐoạn hai {MARK_BREAK} Lào Cai sạt lở.",
        lead=f"Tóm tắt {SCRIPT} Lào Cai",
        url="javascript:alert(1)",
        source=f"Báo {SCRIPT}",
        date="2024-03-05",
    ),
    Document(
        id="xss-2",
        title=f"Lào Cai {ATTR} đón khách",
        body=f"Lào Cai <img src=x onerror=alert(1)> {SCRIPT} du lịch.",
        url=" JaVaScRiPt:alert(1)",
    ),
    Document(
        id="xss-3",
        title="Lào Cai dữ liệu",
        body="Lào Cai data url.",
        url="data:text/html,<script>alert(1)</script>",
    ),
    Document(
        id="xss-4",
        title="Lào Cai liên kết thật",
        body="Lào Cai có liên kết http.",
        url='https://example.org/lao-cai?a=1&b="><script>alert(1)</script>',
    ),
]


def generated_docs(n: int = 120) -> list[Document]:
    rnd = random.Random(11)
    return [
        Document(
            id=f"gen/{i:03d}.txt",
            title=" ".join(rnd.choice(SYLLABLES) for _ in range(7)).capitalize(),
            body=". ".join(
                " ".join(rnd.choice(SYLLABLES) for _ in range(12)).capitalize() for _ in range(5)
            ),
        )
        for i in range(n)
    ]


@pytest.fixture(scope="module")
def hostile_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("hostile") / "index"
    build_index(HOSTILE_DOCS + generated_docs(), path, workers=1)
    return path


@pytest.fixture(scope="module")
def server(hostile_index: Path) -> Iterator[Server]:
    server = Server(hostile_index, workers=2)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def client(hostile_index: Path):
    app = create_app({"TESTING": True, "INDEX_DIR": str(hostile_index)})
    with app.test_client() as test_client:
        yield test_client


# --------------------------------------------------------------------------- HTTP helpers


class Reply:
    def __init__(self, status: int, headers: http.client.HTTPMessage, body: bytes, seconds: float):
        self.status, self.headers, self.body, self.seconds = status, headers, body, seconds

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")

    @property
    def json(self):
        assert self.headers.get("Content-Type") == "application/json", self.body[:300]
        return json.loads(self.text)


def request(server: Server, target: str, method: str = "GET") -> Reply:
    """Send ``target`` exactly as given (no normalisation of ``..`` or escapes)."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        started = time.monotonic()
        conn.putrequest(method, target, skip_accept_encoding=True)
        conn.endheaders()
        response = conn.getresponse()
        body = response.read()
        return Reply(response.status, response.headers, body, time.monotonic() - started)
    finally:
        conn.close()


def raw_request(server: Server, request_line: bytes) -> bytes:
    """A request line with arbitrary bytes (http.client refuses non-ASCII)."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(request_line + b"\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def worker_pids(server: Server) -> set[int]:
    """The gunicorn master's children (its workers), from /proc."""
    master = server.proc.pid
    children = Path(f"/proc/{master}/task/{master}/children")
    if children.exists():
        return {int(p) for p in children.read_text().split()}
    pids = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == master:
            pids.add(int(stat.parent.name))
    return pids


def assert_security_headers(reply: Reply, what: str) -> None:
    assert reply.headers["Content-Security-Policy"] == CSP, what
    assert reply.headers["X-Content-Type-Options"] == "nosniff", what
    assert reply.headers["Referrer-Policy"] == "strict-origin-when-cross-origin", what


def assert_error_json(reply: Reply, what: str) -> dict:
    body = reply.json
    assert set(body) == {"error"}, what
    assert set(body["error"]) == {"code", "message"}, what
    assert body["error"]["message"], what
    return body["error"]


# --------------------------------------------------------------------------- hostile queries

LONG_TERMS = " ".join(random.Random(3).choice(SYLLABLES) for _ in range(200))

# q values, percent-encoded exactly as they go on the wire.
HOSTILE_Q = {
    "empty": "",
    "spaces": "+++",
    "whitespace": "%20%09%0A%0D%0B%0C",
    "nbsp and ideographic space": "%C2%A0%E3%80%80",
    "10,000 chars": "a" * 10_000,
    "1,000 chars": "ab+" * 333 + "a",
    "1,000 syllables": urllib.parse.quote("ầ" * 1000),
    "200 terms": urllib.parse.quote(LONG_TERMS[:1000]),
    "100 phrases": urllib.parse.quote(" ".join(['"lào cai"'] * 100)[:1000]),
    "100 excluded phrases": urllib.parse.quote("lào " + " ".join(['-"hà nội"'] * 100)[:990]),
    "NUL": "lao%00cai",
    "control chars": "".join(f"%{i:02X}" for i in range(1, 32)) + "lao",
    "DEL and C1": "%7F%C2%80%C2%9Flao",
    "invalid UTF-8": "%FF%FE%FD",
    "truncated UTF-8": "l%C3",
    "overlong UTF-8": "%C0%AF",
    "invalid escape": "%ZZ%G",
    "lone percent": "%",
    "lone surrogate": "%ED%A0%80",
    "surrogate pair as UTF-8": "%ED%A0%BD%ED%B8%80",
    "emoji": urllib.parse.quote("Lào Cai 🌧️ 👨‍👩‍👧 🇻🇳"),
    "RTL marks": urllib.parse.quote("\u202elào cai\u202c \u200f\u200e"),
    "NFD": urllib.parse.quote("La\u0300o Cai"),
    "combining only": urllib.parse.quote("\u0300\u0301\u0303" * 20),
    "mixed scripts": urllib.parse.quote("Lào Cai Лао Кай 老街 ลาวไก لاو"),
    "zero width": urllib.parse.quote("L\u200bào\u200d Cai\ufeff"),
    "unbalanced quote": urllib.parse.quote('"lào cai'),
    "quotes only": urllib.parse.quote('"""'),
    "unbalanced parens": urllib.parse.quote("((lào cai"),
    "operators only": "AND+OR+NOT",
    "field": "title%3Afoo",
    "star": "*",
    "prefix": "a*",
    "tilde": "~",
    "fuzzy": "foo~2",
    "minus only": "-",
    "double minus": "--lao",
    "excluded only": "-lao+-cai",
    "markup": urllib.parse.quote(SCRIPT),
    "attribute breaker": urllib.parse.quote(ATTR),
    "mark breaker": urllib.parse.quote(MARK_BREAK),
    "backslashes": "%5C%5C%5C",
    "format specifiers": urllib.parse.quote("{0} %s %(x)s {{x}}"),
    "regex metachars": urllib.parse.quote(".*+?[](){}|^$\\"),
    "huge number": "9" * 400,
}

# Whole query strings (other parameters too).
HOSTILE_QS = {
    **{name: f"q={q}" for name, q in HOSTILE_Q.items()},
    "page 10**9": "q=lao&page=1000000000",
    "page huge": "q=lao&page=" + "9" * 50,
    "page negative": "q=lao&page=-1",
    "page float": "q=lao&page=1.5",
    "page unicode digits": "q=lao&page=%D9%A3",
    "per_page -1": "q=lao&per_page=-1",
    "per_page 0x10": "q=lao&per_page=0x10",
    "last page": "q=lao&page=1000",
    "repeated q": "q=lao&q=" + "a" * 5000,
    "repeated page": "q=lao&page=2&page=abc",
    "bad sort": "q=lao&sort=%3Cscript%3E",
    "bad dates": "q=lao&from=2024-13-45&to=abc",
    "source markup": "q=lao&source=" + urllib.parse.quote(SCRIPT),
    "literal": "q=laof+cai&literal=yes",
    "no q": "page=2",
    "q without value": "q",
    "many parameters": "&".join(f"p{i}={i}" for i in range(500)) + "&q=lao",
    "semicolons": "q=lao;page=2",
}


def check_api(reply: Reply, what: str) -> None:
    assert reply.status < 500, (what, reply.status, reply.body[:300])
    assert reply.seconds < 2, (what, reply.seconds)
    assert_security_headers(reply, what)
    if reply.status == 200:
        body = reply.json
        assert isinstance(body["total"], int), what
        for hit in body["hits"]:
            for field in ("title_html", "snippet"):
                assert re.findall(r"<[^>]*>", hit[field]) == re.findall(r"</?mark>", hit[field]), (
                    what,
                    hit[field],
                )
    else:
        assert 400 <= reply.status < 500, what
        assert_error_json(reply, what)


def check_page(reply: Reply, what: str) -> None:
    assert reply.status < 500, (what, reply.status, reply.body[:300])
    assert reply.seconds < 2, (what, reply.seconds)
    assert_security_headers(reply, what)
    assert reply.headers["Content-Type"] == "text/html; charset=utf-8", what
    page = reply.text
    assert "<html" in page, what
    # Whatever the query, the only script is the app's own file.
    assert re.findall(r"<script[^>]*>", page) == ['<script src="/static/app.js" defer>'], what


def test_hostile_queries_over_http(server: Server) -> None:
    workers = worker_pids(server)
    assert len(workers) == 2
    slow = {}
    for name, qs in HOSTILE_QS.items():
        api = request(server, f"/api/search?{qs}")
        check_api(api, name)
        page = request(server, f"/?{qs}")
        check_page(page, name)
        doc = request(server, f"/doc/xss-1?{qs}")
        assert doc.status in (200, 400), (name, doc.status)
        check_page(doc, name)
        suggest = request(server, f"/api/suggest?{qs}")
        check_api_suggest = suggest.status < 500 and suggest.seconds < 2
        assert check_api_suggest, (name, suggest.status, suggest.body[:200])
        for reply in (api, page, doc):
            if reply.seconds > 1:
                slow[name] = reply.seconds
    assert slow == {}
    assert worker_pids(server) == workers


def test_exact_answers_to_odd_queries(server: Server) -> None:
    def api(qs: str) -> Reply:
        return request(server, f"/api/search?{qs}")

    assert assert_error_json(api("q=%20%09%0A"), "blank")["code"] == "missing_query"
    assert assert_error_json(api("q=lao&page=1000000000"), "page")["code"] == "bad_parameter"
    assert assert_error_json(api("q=lao&per_page=-1"), "per_page")["code"] == "bad_parameter"
    # Repeated parameters: the first wins.
    assert api("q=lao&q=" + "a" * 5000).json["query"] == "lao"
    assert api("q=lao&page=2&page=abc").json["page"] == 2
    # Syntax that is not syntax: plain words, nothing raises.
    for q in ("AND OR NOT", "title:foo", "*", "a*", "~", "foo~2", "((", '"'):
        body = api(urllib.parse.urlencode({"q": q})).json
        assert body["query"] == q
    # Undecodable bytes stay literal text (Werkzeug), and match nothing.
    body = api("q=%ED%A0%80").json
    assert (body["query"], body["total"]) == ("%ED%A0%80", 0)
    # NFD, zero-width characters and RTL marks find what the NFC query finds.
    nfc = {h["id"] for h in api("q=" + urllib.parse.quote("Lào Cai")).json["hits"]}
    assert nfc >= {"xss-1", "xss-2", "xss-3", "xss-4"}
    for q in ("La\u0300o Cai", "L\u200bào Cai", "\u202eLào Cai\u202c"):
        assert {h["id"] for h in api("q=" + urllib.parse.quote(q)).json["hits"]} == nfc, q


def test_wrong_methods(server: Server) -> None:
    workers = worker_pids(server)
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        for path in ("/api/search?q=lao", "/healthz", "/api/suggest?q=l"):
            reply = request(server, path, method)
            assert reply.status == 405, (method, path)
            assert assert_error_json(reply, path)["code"] == "method_not_allowed"
            assert_security_headers(reply, path)
        for path in ("/?q=lao", "/doc/xss-1"):
            reply = request(server, path, method)
            assert reply.status == 405, (method, path)
            assert reply.headers["Content-Type"] == "text/html; charset=utf-8"
            assert f"Địa chỉ này không hỗ trợ phương thức {method}." in reply.text
            assert_security_headers(reply, path)
    head = request(server, "/api/search?q=lao", "HEAD")
    assert (head.status, head.body) == (200, b"")
    assert worker_pids(server) == workers


def test_raw_bytes_in_the_request_line(server: Server) -> None:
    workers = worker_pids(server)
    for line in (
        b"GET /api/search?q=\xff\xfe HTTP/1.1",
        b"GET /api/search?q=l\xc3\xa0o HTTP/1.1",
        b"GET /?q=\xed\xa0\x80 HTTP/1.1",
        b"GET /doc/\xff HTTP/1.1",
        b"GET /api/search?q=lao\x01cai HTTP/1.1",
    ):
        response = raw_request(server, line)
        status = int(response.split(b" ", 2)[1])
        assert 200 <= status < 500, (line, response[:300])
    assert worker_pids(server) == workers


# --------------------------------------------------------------------------- injection


class Tags(HTMLParser):
    """Every start tag of a page with its attributes, as a browser's tokenizer reads them."""

    def __init__(self, page: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.feed(page)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, {k: v or "" for k, v in attrs}))


def a_hrefs(page: str) -> list[str]:
    return [attrs["href"] for tag, attrs in Tags(page).tags if tag == "a" and "href" in attrs]


def assert_no_injection(page: str, what: str) -> None:
    """No markup from the documents or the query became a tag, an attribute or a link.

    (A ``"`` in text content is harmless: the engine escapes text with ``quote=False``, so the
    attribute breaker may appear verbatim between tags, never inside one.)
    """
    for raw in (SCRIPT, "<script>alert(2)", MARK_BREAK, "<img src=x"):
        assert raw not in page, (what, raw)
    assert "javascript:" not in page.lower(), what
    assert "data:text/html" not in page, what
    tags = Tags(page).tags
    scripts = [attrs for tag, attrs in tags if tag == "script"]
    assert scripts == [{"src": "/static/app.js", "defer": ""}], what
    assert [tag for tag, _ in tags if tag in ("img", "iframe", "object", "embed")] == [], what
    for tag, attrs in tags:
        assert not [name for name in attrs if name.startswith("on")], (what, tag, attrs)
    for href in a_hrefs(page):
        assert href.startswith(("/", "#", "http://", "https://")), (what, href)


def test_no_injection_in_pages_and_json(server: Server) -> None:
    page = request(server, "/?q=l%C3%A0o+cai&per_page=50")
    assert page.status == 200
    text = page.text
    assert_no_injection(text, "results page")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert f"<mark>Cai</mark> {ATTR} kéo dài" in text  # a quote in text content is just text
    assert "&lt;/mark&gt;&lt;script&gt;alert(2)&lt;/script&gt;" in text
    # The only external link is the real https one, attribute-escaped.
    external = [h for h in a_hrefs(text) if h.startswith("http")]
    assert external == ['https://example.org/lao-cai?a=1&b="><script>alert(1)</script>']

    for doc_id in ("xss-1", "xss-2", "xss-3", "xss-4"):
        doc = request(server, f"/doc/{doc_id}?q=l%C3%A0o+cai")
        assert doc.status == 200, doc_id
        assert_no_injection(doc.text, doc_id)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in request(server, "/doc/xss-1").text

    body = request(server, "/api/search?q=l%C3%A0o+cai&per_page=50").json
    hits = {h["id"]: h for h in body["hits"]}
    assert hits["xss-1"]["title"] == f"{SCRIPT} Lào Cai mưa lớn"  # plain text, as typed
    assert hits["xss-1"]["title_html"] == (
        "&lt;script&gt;alert(1)&lt;/script&gt; <mark>Lào</mark> <mark>Cai</mark> mưa lớn"
    )
    for hit in hits.values():
        assert hit["url"] is None or hit["url"].startswith(("http://", "https://")), hit
        for field in ("title_html", "snippet"):
            assert re.findall(r"<[^>]*>", hit[field]) == re.findall(r"</?mark>", hit[field])
    assert {i: hits[i]["url"] for i in ("xss-1", "xss-2", "xss-3")} == dict.fromkeys(
        ("xss-1", "xss-2", "xss-3")
    )


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/?q=lao",
        "/?q=%00",
        "/doc/xss-1",
        "/doc/nope",
        "/api/search?q=lao",
        "/api/search",
        "/api/nope",
        "/healthz",
        "/static/style.css",
        "/static/app.js",
        "/static/nope.css",
        "/nope",
    ],
)
def test_security_headers_on_every_response(server: Server, path: str) -> None:
    for method in ("GET", "POST"):
        reply = request(server, path, method)
        assert reply.status < 500, (method, path)
        assert_security_headers(reply, f"{method} {path}")


TRAVERSALS = [
    "/doc/..%2F..%2Fetc%2Fpasswd",
    "/doc/%2e%2e/%2e%2e/etc/passwd",
    "/doc/../../etc/passwd",
    "/doc/%2Fetc%2Fpasswd",
    "/doc//etc/passwd",
    "/doc/..%5C..%5Cetc%5Cpasswd",
    "/static/../search/engine.py",
    "/static/..%2Fsearch%2Fengine.py",
    "/static/%2e%2e/search/engine.py",
    "/static/..%2F..%2F..%2F..%2Fetc%2Fpasswd",
    "/static//etc/passwd",
    "/static/%2Fetc%2Fpasswd",
    "/../../etc/passwd",
    "/%2e%2e/%2e%2e/etc/passwd",
    "/api/../../etc/passwd",
    "/doc/MAIN_WRITELOCK",
    "/doc/sources.json",
    "/static/../index/sources.json",
]


@pytest.mark.parametrize("path", TRAVERSALS)
def test_no_file_outside_the_index_is_served(server: Server, path: str) -> None:
    reply = request(server, path)
    if reply.status == 308:
        # Werkzeug merges the doubled slash of a decoded path ("/doc//etc") with a redirect to the
        # same site; what it points to must be a 404 too.
        assert_security_headers(reply, path)
        location = reply.headers["Location"]
        assert location.startswith(f"{server.url}/"), location
        reply = request(server, location.removeprefix(server.url))
    assert reply.status == 404, (path, reply.status, reply.body[:200])
    body = reply.body
    for secret in (b"root:", b"class SearchEngine", b"import ", b'"sources"'):
        assert secret not in body, path
    assert_security_headers(reply, path)


# --------------------------------------------------------------------------- Flask breadth

PATHS = ["/", "/api/search", "/doc/xss-1", "/api/suggest", "/healthz"]


@pytest.mark.parametrize("qs", list(HOSTILE_QS.values()), ids=list(HOSTILE_QS))
def test_hostile_queries_in_process(client, qs: str) -> None:
    for path in PATHS:
        started = time.monotonic()
        response = client.get(f"{path}?{qs}")
        elapsed = time.monotonic() - started
        assert response.status_code < 500, (path, response.status_code, response.data[:300])
        assert elapsed < 2, (path, elapsed)
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        if path.startswith("/api") or path == "/healthz":
            assert response.mimetype == "application/json", path
            if response.status_code >= 400:
                assert set(response.get_json()) == {"error"}
        else:
            assert response.mimetype == "text/html", path
            assert_no_injection(response.get_data(as_text=True), f"{path}?{qs}"[:80])
