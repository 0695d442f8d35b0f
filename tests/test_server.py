"""The real service over HTTP: gunicorn (2 sync workers) + the Flask app + the engine.

Uses only ``urllib`` so what is checked is exactly what a client on the wire receives: status
codes, JSON bodies, headers, and how gunicorn itself copes with odd request lines.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from conftest import ROOT, Server
from unidecode import unidecode

from search.engine import SearchEngine
from search.indexer import reindex
from search.response import Hit, SearchResponse, keys

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)
# The typed response's fields (``search.response``); docs/CONTRACT.md lists the hit's first eight,
# and the engine also returns ``title_html`` (the results page highlights titles) and ``similar``.
RESPONSE_KEYS = set(keys(SearchResponse))
HIT_KEYS = set(keys(Hit))


class Reply:
    def __init__(self, status: int, headers, body: bytes) -> None:
        self.status, self.headers, self.body = status, headers, body

    @property
    def json(self):
        assert self.headers.get("Content-Type") == "application/json", self.body[:300]
        return json.loads(self.body.decode("utf-8"))


def fetch(url: str, *, method: str = "GET") -> Reply:
    request = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return Reply(response.status, response.headers, response.read())
    except urllib.error.HTTPError as exc:
        with exc:
            return Reply(exc.code, exc.headers, exc.read())


def api(server: Server, raw_query: str) -> Reply:
    """GET /api/search with a query string sent exactly as given (no re-encoding)."""
    return fetch(f"{server.url}/api/search?{raw_query}")


def error_of(reply: Reply, status: int) -> dict:
    assert reply.status == status, reply.body[:300]
    body = reply.json
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message"}
    return body["error"]


def strip_marks(html: str) -> str:
    return html.replace("<mark>", "").replace("</mark>", "")


# --------------------------------------------------------------------------- health, contract


def test_healthz(samples_server: Server) -> None:
    reply = fetch(samples_server.url + "/healthz")
    assert reply.status == 200
    body = reply.json
    assert set(body) == {"status", "documents", "index_version"}
    assert body["status"] == "ok"
    assert body["documents"] == 30
    assert type(body["index_version"]) is int
    assert reply.headers["Cache-Control"] == "no-store"


def test_search_json_contract(samples_server: Server) -> None:
    reply = api(samples_server, "q=lao+cai")
    assert reply.status == 200
    body = reply.json
    assert set(body) == RESPONSE_KEYS
    assert body["query"] == "lao cai"
    assert body["page"] == 1
    assert body["per_page"] == 10
    assert body["total_relation"] == "eq"
    assert isinstance(body["took_ms"], int | float) and body["took_ms"] >= 0
    # Lào Cai is in 12 files; one of them only in its (stripped) related-news block.
    assert body["total"] == 11
    assert len(body["hits"]) == 10
    for hit in body["hits"]:
        assert set(hit) == HIT_KEYS, hit["id"]
        for field in ("snippet", "title_html"):
            html = hit[field]
            # The only markup is <mark>, wrapped around one query word: "Lào", "Cai" (or the
            # word "lao" as in "lao động", which matches the unaccented query word "lao").
            assert re.findall(r"<[^>]*>", html) == re.findall(r"</?mark>", html), html
            marked = re.findall(r"<mark>(.*?)</mark>", html)
            assert {unidecode(m).lower() for m in marked} <= {"lao", "cai"}, (hit["id"], marked)
        assert strip_marks(hit["title_html"]) == hit["title"]
        assert re.findall(r"<mark>(.*?)</mark>", hit["snippet"]), hit["id"]
    assert [h["score"] for h in body["hits"]] == sorted(
        (h["score"] for h in body["hits"]), reverse=True
    )


def test_search_over_http_equals_the_engine(samples_server: Server, samples_index: Path) -> None:
    body = api(samples_server, "q=lao+cai").json
    engine = SearchEngine(samples_index)
    try:
        expected = json.loads(json.dumps(engine.search("lao cai")))
    finally:
        engine.close()
    body.pop("took_ms")
    expected.pop("took_ms")
    assert body == expected


# --------------------------------------------------------------------------- errors


def test_missing_query(samples_server: Server) -> None:
    for raw in ("", "q=", "q=+++", "page=2"):
        error = error_of(api(samples_server, raw), 400)
        assert error == {
            "code": "missing_query",
            "message": "Thiếu từ khóa tìm kiếm (tham số q).",
        }, raw


TOO_LONG = {"code": "query_too_long", "message": "Từ khóa tìm kiếm dài quá 1.000 ký tự."}


def test_query_of_1001_chars(samples_server: Server) -> None:
    assert error_of(api(samples_server, "q=" + "a" * 1001), 400) == TOO_LONG
    assert api(samples_server, "q=" + "a" * 1000).status == 200


def test_long_request_lines_reach_the_app(samples_server: Server) -> None:
    # 10,000 characters: the app's JSON 400 (the request line is under gunicorn.conf.py's
    # limit_request_line; a longer one gets the JSON 414 of tests/test_server_limits.py).
    assert error_of(api(samples_server, "q=" + "a" * 10_000), 400) == TOO_LONG
    # 1,000 Vietnamese letters are a valid query but take 9,000 bytes once percent-encoded.
    reply = api(samples_server, urllib.parse.urlencode({"q": "ầ" * 1000}))
    assert reply.status == 200, reply.body[:200]
    assert reply.json["total"] == 0


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("q=lao&page=0", "Tham số page phải là số nguyên từ 1 đến 1000."),
        ("q=lao&page=1001", "Tham số page phải là số nguyên từ 1 đến 1000."),
        ("q=lao&page=abc", "Tham số page phải là số nguyên từ 1 đến 1000."),
        ("q=lao&per_page=0", "Tham số per_page phải là số nguyên từ 1 đến 100."),
        ("q=lao&per_page=101", "Tham số per_page phải là số nguyên từ 1 đến 100."),
    ],
)
def test_bad_paging(samples_server: Server, raw: str, message: str) -> None:
    assert error_of(api(samples_server, raw), 400) == {"code": "bad_parameter", "message": message}


def test_post_is_405_json(samples_server: Server) -> None:
    reply = fetch(samples_server.url + "/api/search?q=lao", method="POST")
    assert error_of(reply, 405) == {
        "code": "method_not_allowed",
        "message": "Địa chỉ này không hỗ trợ phương thức POST.",
    }
    assert set(re.split(r",\s*", reply.headers["Allow"])) == {"GET", "HEAD", "OPTIONS"}


def test_unknown_api_path_is_404_json(samples_server: Server) -> None:
    assert error_of(fetch(samples_server.url + "/api/x"), 404) == {
        "code": "not_found",
        "message": "Không có trang nào ở địa chỉ này.",
    }


def test_invalid_percent_encoding_is_never_5xx(samples_server: Server) -> None:
    # Werkzeug keeps undecodable escapes as literal text: a valid query that matches nothing.
    for raw, query in (("q=%ff%fe", "%FF%FE"), ("q=%", "%"), ("q=%zz", "%zz")):
        reply = api(samples_server, raw)
        assert reply.status == 200, raw
        body = reply.json
        assert (body["query"], body["total"], body["hits"]) == (query, 0, []), raw


def test_nul_is_a_json_400(samples_server: Server) -> None:
    for raw in ("q=%00", "q=lao%00cai"):
        assert error_of(api(samples_server, raw), 400) == {
            "code": "bad_query",
            "message": "Từ khóa chứa ký tự không hợp lệ.",
        }, raw
    # The HTML page answers the same input with an error page, not a 500.
    page = fetch(samples_server.url + "/?q=%00")
    assert page.status == 400
    assert page.headers["Content-Type"] == "text/html; charset=utf-8"
    assert "Từ khóa chứa ký tự không hợp lệ." in page.body.decode("utf-8")


# --------------------------------------------------------------------------- headers


@pytest.mark.parametrize(
    "path", ["/", "/?q=lao+cai", "/api/search?q=lao", "/api/search", "/healthz", "/nope"]
)
def test_security_headers(samples_server: Server, path: str) -> None:
    reply = fetch(samples_server.url + path)
    assert reply.status in {200, 400, 404}
    assert reply.headers["Content-Security-Policy"] == CSP
    assert reply.headers["X-Content-Type-Options"] == "nosniff"
    assert reply.headers["Referrer-Policy"] == "strict-origin-when-cross-origin"


# --------------------------------------------------------------------------- live reindex


def article(title: str, *paragraphs: str) -> str:
    return "\n\n".join((title, *paragraphs)) + "\n"


def test_reindex_is_picked_up_without_restart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "tin"
    source.mkdir()
    (source / "001-cho-phien.txt").write_text(
        article(
            "Chợ phiên Bắc Hà đông vui ngày cuối tuần",
            "LCĐT - Sáng 7/4, chợ phiên Bắc Hà đón hàng nghìn lượt khách.",
            "Người dân bán rau, thịt và thổ cẩm.",
        ),
        encoding="utf-8",
    )
    (source / "002-mua-dong.txt").write_text(
        article(
            "Mùa đông đến sớm ở vùng cao",
            "SP - Nhiệt độ ở Sa Pa xuống dưới 5 độ C trong đêm.",
        ),
        encoding="utf-8",
    )
    index = tmp_path / "index"
    reindex(index, [source], workers=1)
    # An access log of "<worker pid> <query string>" tells which worker answered each request.
    access_log = tmp_path / "access.log"
    monkeypatch.setenv(
        "GUNICORN_CMD_ARGS", f"--access-logfile {access_log} --access-logformat '%(p)s %(q)s'"
    )
    server = Server(index, workers=2)
    try:

        def ask_every_worker(q: str) -> list[dict]:
            """Ask until both workers have answered (at least 10 times); every answer.

            Four requests at a time: one at a time, an idle worker can win every accept (the
            other never answers) once answers take a few milliseconds.  For up to 30 s, not a
            number of rounds: the server is up when one worker answers, and the other may still
            be starting (a CI run saw one worker answer 200 requests in a row).
            """
            qs = urllib.parse.urlencode({"q": q})
            bodies = []
            deadline = time.monotonic() + 30
            with ThreadPoolExecutor(max_workers=4) as pool:
                while time.monotonic() < deadline:
                    replies = list(pool.map(fetch, [f"{server.url}/api/search?{qs}"] * 4))
                    for reply in replies:
                        assert reply.status == 200, reply.body[:300]
                        bodies.append(reply.json)
                    lines = access_log.read_text(encoding="utf-8").splitlines()
                    pids = {line.split()[0] for line in lines if line.endswith(" " + qs)}
                    if len(bodies) >= 10 and len(pids) == 2:
                        return bodies
                    time.sleep(0.02)
            pytest.fail(f"only workers {pids} answered {len(bodies)} requests in 30 s")

        # Both workers open the old generation first.
        assert {b["total"] for b in ask_every_worker("chợ phiên")} == {1}
        assert {b["total"] for b in ask_every_worker("khèn mông")} == {0}
        version = json.loads(fetch(server.url + "/healthz").body)["index_version"]

        (source / "003-le-hoi-khen.txt").write_text(
            article(
                "Lễ hội khèn Mông lần thứ nhất",
                "HG - Tối 20/11, lễ hội khèn Mông khai mạc với 200 nghệ nhân.",
            ),
            encoding="utf-8",
        )
        done = subprocess.run(
            [sys.executable, "-m", "search", "reindex", "--index", str(index), "--workers", "1"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr

        # Each worker answers from the old generation until it has opened and warmed the new
        # one in the background (``switch_when_warm``), then from the new one: never an error,
        # never a mix, and both get there within seconds.
        deadline = time.monotonic() + 20
        seen: set[int] = set()
        while True:
            bodies = ask_every_worker("khèn mông")
            seen |= {b["total"] for b in bodies}
            if {b["total"] for b in bodies} == {1} or time.monotonic() > deadline:
                break
        assert seen <= {0, 1}
        assert {b["total"] for b in bodies} == {1}
        assert {b["hits"][0]["id"] for b in bodies} == {"003-le-hoi-khen.txt"}
        assert {b["hits"][0]["title"] for b in bodies} == {"Lễ hội khèn Mông lần thứ nhất"}
        healths = [json.loads(fetch(server.url + "/healthz").body) for _ in range(10)]
        assert {h["documents"] for h in healths} == {3}
        assert {h["index_version"] for h in healths} == {version + 1}
    finally:
        server.stop()
