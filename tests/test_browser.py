"""The web front end in a real browser: Debian's Chromium driven by Playwright, against gunicorn.

Every page a test visits is watched: a console error, an uncaught exception, a Content Security
Policy violation or a JavaScript dialog (``alert``) fails the test.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from conftest import ROOT, Server

from search.documents import Document

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = ROOT / "docs" / "screenshots"  # rewritten only with UPDATE_SCREENSHOTS=1
STATS = re.compile(r"^(Khoảng )?\d+ kết quả \(\d+,\d+ giây\)$")
XSS = "<script>alert(1)</script>"

# Reports CSP violations on the console, where the page fixture collects them.
CSP_WATCH = """
document.addEventListener("securitypolicyviolation", (e) => {
  console.error("CSP violation: " + e.violatedDirective + " blocked " + e.blockedURI);
});
"""


@pytest.fixture(scope="module")
def browser() -> Iterator:
    if not CHROMIUM.exists():
        pytest.skip(f"Chromium not found at {CHROMIUM} (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


class Watch:
    """Problems seen on the pages of one browser context."""

    def __init__(self, expected_404: tuple[str, ...] = ()) -> None:
        self.expected_404 = expected_404
        self.problems: list[str] = []
        self.dialogs: list[str] = []

    def attach(self, page) -> None:
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.problems.append(f"pageerror: {exc}"))
        page.on("dialog", self._dialog)

    def _console(self, message) -> None:
        if (
            "status of 404" in message.text
            and urlsplit(message.location.get("url", "")).path in self.expected_404
        ):
            return  # the browser logs the 404 of an error page we visit on purpose
        if message.type in {"error", "warning"} or "Content Security Policy" in message.text:
            self.problems.append(f"console {message.type}: {message.text} at {message.location}")

    def _dialog(self, dialog) -> None:
        self.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()


@pytest.fixture
def new_page(browser, samples_server: Server):
    """``new_page(**context_options)``: a watched page; its problems fail the test at the end."""
    contexts, watches = [], []

    def make(*, expected_404: tuple[str, ...] = (), **options):
        options.setdefault("base_url", samples_server.url)
        context = browser.new_context(**options)
        context.set_default_timeout(5000)
        context.add_init_script(CSP_WATCH)
        watch = Watch(expected_404)
        context.on("page", watch.attach)
        contexts.append(context)
        watches.append(watch)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()
    for watch in watches:
        assert watch.dialogs == [], "a JavaScript dialog was opened"
        assert watch.problems == []


@pytest.fixture
def page(new_page):
    return new_page(viewport={"width": 1280, "height": 800})


def query_of(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query)


def search(page, text: str) -> None:
    page.fill("#q", text)
    with page.expect_navigation():
        page.press("#q", "Enter")


def assert_lao_cai_results(page) -> None:
    assert query_of(page.url) == {"q": ["lao cai"]}
    assert page.title() == "lao cai – Tìm kiếm tin tức – vnsearch"
    assert page.input_value("#q") == "lao cai"
    stats = page.inner_text(".result-stats").strip()
    assert STATS.match(stats), stats
    assert stats.startswith("11 kết quả (")
    titles = page.locator(".result-title")
    assert titles.count() == 10
    assert titles.first.inner_text() == (
        "Nắng nóng kéo dài, Lào Cai cảnh báo cháy rừng cấp cực kỳ nguy hiểm"
    )
    assert titles.first.locator("mark").all_inner_texts() == ["Lào", "Cai"]
    marked = page.locator(".result-title mark").all_inner_texts()
    assert {"Lào", "Cai"} <= set(marked)
    assert page.locator(".snippet mark").count() >= 20


# --------------------------------------------------------------------------- searching


def test_type_and_submit(page) -> None:
    page.goto("/")
    assert page.inner_text(".intro h1") == "Tìm kiếm tin tức tiếng Việt"
    assert page.inner_text(".intro p").strip() == "Đang tìm trong 30 bài viết."
    page.click("#q")
    page.keyboard.type("lao cai")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert_lao_cai_results(page)


def test_pagination_keeps_the_query(page) -> None:
    page.goto("/?q=lao+cai")
    with page.expect_navigation():
        page.click(".pager a[rel=next]")
    assert query_of(page.url) == {"q": ["lao cai"], "page": ["2"]}
    assert page.input_value("#q") == "lao cai"
    assert page.inner_text(".result-stats").strip().startswith("Trang 2 · 11 kết quả (")
    assert page.locator(".result").count() == 1
    assert page.get_attribute("ol.results", "start") == "11"
    assert page.get_attribute(".pager [aria-current=page]", "aria-label") == "Trang 2"

    page.goto("/?q=lao+cai&per_page=4")
    assert page.locator(".pager a[aria-label^=Trang]").all_inner_texts() == ["1", "2", "3"]
    with page.expect_navigation():
        page.click(".pager a[aria-label='Trang 3']")
    assert query_of(page.url) == {"q": ["lao cai"], "page": ["3"], "per_page": ["4"]}
    assert page.locator(".result").count() == 3
    with page.expect_navigation():
        page.click(".pager a[rel=prev]")
    assert query_of(page.url) == {"q": ["lao cai"], "page": ["2"], "per_page": ["4"]}
    # A new search from a later page starts at page 1 and keeps the page size.
    search(page, "sa pa")
    assert query_of(page.url) == {"q": ["sa pa"], "per_page": ["4"]}
    assert page.locator(".result").count() == 4


def test_interpreted_query_and_literal_link(page) -> None:
    page.goto("/")
    search(page, "laof cai")
    notice = page.locator("p.notice")
    assert re.sub(r"\s+", " ", notice.inner_text()).strip() == (
        "Đang hiển thị kết quả cho «lào cai». Tìm chính xác «laof cai»"
    )
    assert page.inner_text(".result-stats").strip().startswith("11 kết quả (")
    with page.expect_navigation():
        notice.get_by_role("link", name="Tìm chính xác «laof cai»").click()
    assert query_of(page.url) == {"q": ["laof cai"], "literal": ["1"]}
    assert page.input_value("#q") == "laof cai"
    assert page.locator("p.notice").count() == 0
    assert page.inner_text("#no-results-title") == "Không tìm thấy kết quả nào cho «laof cai»"


def test_slash_focuses_the_search_box(page) -> None:
    page.goto("/?q=lao+cai")
    page.locator("main").focus()
    assert page.evaluate("document.activeElement.id") == "main"
    page.keyboard.press("/")
    assert page.evaluate("document.activeElement.id") == "q"
    # The "/" is not typed; the old query is selected, so typing replaces it.
    assert page.input_value("#q") == "lao cai"
    page.keyboard.type("sa/pa")
    assert page.input_value("#q") == "sa/pa"


def test_search_works_without_javascript(new_page) -> None:
    page = new_page(java_script_enabled=False, viewport={"width": 1280, "height": 800})
    page.goto("/")
    assert page.get_attribute("#q", "role") is None  # app.js did not run
    search(page, "lao cai")
    assert_lao_cai_results(page)
    with page.expect_navigation():
        page.click(".pager a[rel=next]")
    assert query_of(page.url) == {"q": ["lao cai"], "page": ["2"]}


def test_article_page_highlights(page) -> None:
    page.goto("/?q=lao+cai")
    with page.expect_navigation():
        page.click(".result-title a >> nth=0")
    assert urlsplit(page.url).path == "/doc/024-canh-bao-chay-rung.txt"
    assert query_of(page.url) == {"q": ["lao cai"]}
    assert page.locator("article.doc h1 mark").all_inner_texts() == ["Lào", "Cai"]
    body_marks = page.locator(".doc-body mark").all_inner_texts()
    assert body_marks and {m.lower() for m in body_marks} <= {"lào", "cai"}
    with page.expect_navigation():
        page.click("text=← Quay lại kết quả tìm kiếm")
    assert query_of(page.url) == {"q": ["lao cai"]}

    page.goto("/doc/kinh-te/028-xuat-khau-da-nang-tang.txt?q=da+nang")
    assert page.locator("article.doc h1 mark").all_inner_texts() == ["Đà", "Nẵng"]
    # (The body also marks "đã", which matches the unaccented word "da".)
    assert {"Đà", "Nẵng"} <= set(page.locator(".doc-body mark").all_inner_texts())


# --------------------------------------------------------------------------- escaping


def test_script_in_an_article_is_shown_as_text(page) -> None:
    for q, marks in (("alert", ["alert"]), ("script", ["script", "script"])):
        page.goto("/")
        search(page, q)
        assert page.locator(".result").count() == 1
        snippet = page.locator(".snippet")
        assert XSS in snippet.inner_text()
        assert snippet.locator("script").count() == 0
        assert snippet.locator("mark").all_inner_texts() == marks
    # Only app.js is a script element on the page.
    assert page.evaluate("[...document.scripts].map(s => new URL(s.src).pathname)") == [
        "/static/app.js"
    ]
    with page.expect_navigation():
        page.click(".result-title a >> nth=0")
    assert urlsplit(page.url).path == "/doc/014-sinh-vien-an-toan-thong-tin.txt"
    body = page.locator(".doc-body")
    assert XSS in body.inner_text()
    assert body.locator("script").count() == 0
    assert body.locator("mark").all_inner_texts() == ["script", "script"]
    page.goto("/?q=" + "%3Cscript%3Ealert(1)%3C%2Fscript%3E")
    assert page.input_value("#q") == XSS
    assert page.locator("main script").count() == 0


# --------------------------------------------------------------------------- layout


# 320 px is below the 360 px the design targets, but small phones exist: nothing may overflow.
@pytest.mark.parametrize("width", [320, 360, 1280])
def test_no_horizontal_scroll(new_page, width: int) -> None:
    page = new_page(viewport={"width": width, "height": 800}, expected_404=("/nope",))
    paths = [
        "/",
        "/?q=laof+cai",
        "/?q=kh%C3%B4ng+c%C3%B3+g%C3%AC+c%E1%BA%A3",
        "/doc/014-sinh-vien-an-toan-thong-tin.txt?q=script",
        "/nope",
        "/?q=lao+cai",
    ]
    for path in paths:
        page.goto(path)
        assert_no_overflow(page, path)


def assert_no_overflow(page, path: str) -> None:
    widths = page.evaluate(
        "[document.documentElement.scrollWidth, window.innerWidth, document.body.scrollWidth]"
    )
    assert widths[0] <= widths[1], (path, widths)
    assert widths[2] <= widths[1], (path, widths)


# --------------------------------------------------------------------------- suggestions


def test_suggestions_combobox(page) -> None:
    page.goto("/")
    page.click("#q")
    page.keyboard.type("lao c")
    listbox = page.locator("#q-suggestions[role=listbox]")
    listbox.wait_for(state="visible", timeout=2000)
    assert page.get_attribute("#q", "aria-expanded") == "true"
    options = listbox.locator("[role=option]")
    assert options.first.inner_text() == "Lào Cai"
    page.keyboard.press("ArrowDown")
    assert options.first.get_attribute("aria-selected") == "true"
    assert page.get_attribute("#q", "aria-activedescendant") == options.first.get_attribute("id")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert query_of(page.url) == {"q": ["Lào Cai"]}
    assert page.locator(".result").count() > 0


def test_suggestions_escape_closes_and_arrows_wrap(page) -> None:
    page.goto("/")
    page.click("#q")
    page.keyboard.type("lao")
    listbox = page.locator("#q-suggestions[role=listbox]")
    listbox.wait_for(state="visible", timeout=2000)
    options = listbox.locator("[role=option]")
    assert options.count() >= 1
    assert options.first.inner_html().startswith("<mark>")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowUp")
    page.keyboard.press("Escape")
    listbox.wait_for(state="hidden", timeout=2000)
    assert page.get_attribute("#q", "aria-expanded") == "false"
    assert page.input_value("#q") == "lao"


# --------------------------------------------------------------------------- filters, duplicates

# Fictional articles that carry what real feeds carry: a source, a date, and one story published
# by two feeds with the same title and lead (collapsed into "1 bài tương tự").
SAME_TITLE = "Lào Cai mở thêm cửa khẩu phụ cho xe chở nông sản"
SAME_LEAD = "Cửa khẩu phụ mới giúp xe chở nông sản không phải xếp hàng nhiều ngày."
NEWS_DOCS = [
    Document(
        id="vne/cua-khau.html",
        title=SAME_TITLE,
        lead=SAME_LEAD,
        body="Tỉnh Lào Cai vừa đưa vào hoạt động cửa khẩu phụ thứ hai dành cho xe nông sản.",
        source="VnExpress",
        date="2024-05-14T08:30:00+07:00",
    ),
    Document(
        id="tt/cua-khau.html",
        title=SAME_TITLE,
        lead=SAME_LEAD,
        body="Lào Cai mở cửa khẩu phụ, theo ghi nhận của phóng viên Tuổi Trẻ tại biên giới.",
        source="Tuổi Trẻ",
        date="2024-05-14T09:10:00+07:00",
    ),
    Document(
        id="tt/sa-pa.html",
        title="Sa Pa đón hơn 20.000 lượt khách dịp nghỉ lễ",
        body="Thị xã Sa Pa, tỉnh Lào Cai, đón hơn 20.000 lượt khách trong bốn ngày nghỉ lễ.",
        source="Tuổi Trẻ",
        date="2023-05-02",
    ),
    Document(
        id="tn/lu-quet.html",
        title="Lào Cai khắc phục hậu quả lũ quét ở Bát Xát",
        body="Mưa lớn gây lũ quét tại huyện Bát Xát, Lào Cai; chính quyền đã sơ tán các hộ dân.",
        source="Thanh Niên",
        date="2023-08-20",
    ),
    Document(
        id="vne/duong-cao-toc.html",
        title="Khởi công mở rộng cao tốc Nội Bài – Lào Cai",
        body="Dự án mở rộng cao tốc Nội Bài – Lào Cai lên bốn làn xe được khởi công sáng nay.",
        source="VnExpress",
        date="2024-01-09",
    ),
    Document(
        id="tn/che-shan.html",
        title="Chè shan tuyết Lào Cai vào mùa thu hoạch",
        body="Người dân vùng cao Lào Cai thu hái chè shan tuyết cổ thụ đầu mùa xuân.",
        source="Thanh Niên",
        date="2024-03-01",
    ),
]


@pytest.fixture(scope="module")
def news_server(tmp_path_factory) -> Iterator[Server]:
    from search.indexer import build_index

    index = tmp_path_factory.mktemp("browser-news") / "index"
    build_index(NEWS_DOCS, index, workers=1)
    server = Server(index, workers=1)
    yield server
    server.stop()


@pytest.fixture
def news_page(new_page, news_server: Server):
    return new_page(base_url=news_server.url, viewport={"width": 1280, "height": 900})


def result_sources(page) -> list[str]:
    return page.locator(".result .result-meta .source").all_inner_texts()


def result_dates(page) -> list[str]:
    return page.locator(".result > .result-meta time").all_inner_texts()


def test_source_filter_with_counts_keeps_the_query(news_page) -> None:
    page = news_page
    page.goto("/?q=lao+cai")
    assert page.inner_text(".result-stats").startswith("5 kết quả (")  # 6 documents, 5 stories
    chips = page.locator(".filters .chips").first.locator("a")
    assert [re.sub(r"\s+", " ", t) for t in chips.all_inner_texts()] == [
        "Tất cả",
        "Thanh Niên (2)",
        "Tuổi Trẻ (2)",
        "VnExpress (2)",
    ]
    assert chips.first.get_attribute("aria-current") == "true"
    with page.expect_navigation():
        chips.filter(has_text="Thanh Niên").click()
    assert query_of(page.url) == {"q": ["lao cai"], "source": ["Thanh Niên"]}
    assert page.input_value("#q") == "lao cai"
    assert result_sources(page) == ["Thanh Niên", "Thanh Niên"]
    current = page.locator(".filters .chips a[aria-current]")
    assert re.sub(r"\s+", " ", current.inner_text()) == "Thanh Niên (2)"
    # A new search keeps the filter; "Tất cả" drops it.
    search(page, "lũ quét")
    assert query_of(page.url) == {"q": ["lũ quét"], "source": ["Thanh Niên"]}
    with page.expect_navigation():
        page.click(".filters .chips a:text-is('Tất cả')")
    assert query_of(page.url) == {"q": ["lũ quét"]}


def test_date_range_and_newest_first(news_page) -> None:
    page = news_page
    page.goto("/?q=lao+cai&sort=newest")
    assert result_dates(page) == [
        "14/05/2024",
        "01/03/2024",
        "09/01/2024",
        "20/08/2023",
        "02/05/2023",
    ]
    page.fill("#date-from", "2024-01-01")
    page.fill("#date-to", "2024-03-31")
    with page.expect_navigation():
        page.click(".date-filter button")
    assert query_of(page.url) == {
        "q": ["lao cai"],
        "sort": ["newest"],
        "from": ["2024-01-01"],
        "to": ["2024-03-31"],
    }
    assert result_dates(page) == ["01/03/2024", "09/01/2024"]
    assert page.input_value("#date-from") == "2024-01-01"
    # Year shortcuts set the whole year; sort by relevance again keeps the dates.
    with page.expect_navigation():
        page.click(".years a:has-text('2023')")
    assert query_of(page.url) == {
        "q": ["lao cai"],
        "sort": ["newest"],
        "from": ["2023"],
        "to": ["2023"],
    }
    assert page.input_value("#date-from") == "2023-01-01"
    assert page.input_value("#date-to") == "2023-12-31"
    with page.expect_navigation():
        page.click(".sort a:text-is('Liên quan nhất')")
    assert query_of(page.url) == {"q": ["lao cai"], "from": ["2023"], "to": ["2023"]}
    assert sorted(result_dates(page)) == ["02/05/2023", "20/08/2023"]
    with page.expect_navigation():
        page.click("text=Bỏ lọc thời gian")
    assert query_of(page.url) == {"q": ["lao cai"]}


def test_filters_work_without_javascript(new_page, news_server: Server) -> None:
    page = new_page(
        base_url=news_server.url, java_script_enabled=False, viewport={"width": 360, "height": 800}
    )
    page.goto("/?q=lao+cai")
    with page.expect_navigation():
        page.click(".filters .chips a:has-text('VnExpress')")
    page.fill("#date-from", "2024-02-01")
    with page.expect_navigation():
        page.click(".date-filter button")
    assert query_of(page.url) == {"q": ["lao cai"], "source": ["VnExpress"], "from": ["2024-02-01"]}
    assert result_sources(page) == ["VnExpress"]
    assert page.locator(".result-title").inner_text() == SAME_TITLE


def test_near_duplicates_expand(news_page) -> None:
    page = news_page
    page.goto("/?q=c%E1%BB%ADa+kh%E1%BA%A9u")
    assert page.locator(".result").count() == 1
    details = page.locator(".result details.similar")
    assert details.locator("summary").inner_text() == "1 bài tương tự"
    link = details.locator("a")
    assert not link.is_visible()
    details.locator("summary").click()
    assert link.is_visible()
    shown = page.locator(".result > .result-meta .source").inner_text()
    other = {"VnExpress": "Tuổi Trẻ", "Tuổi Trẻ": "VnExpress"}[shown]
    assert link.inner_text() == other
    assert details.locator("time").inner_text() == "14/05/2024"
    with page.expect_navigation():
        link.click()
    assert query_of(page.url) == {"q": ["cửa khẩu"]}
    assert urlsplit(page.url).path in {"/doc/vne/cua-khau.html", "/doc/tt/cua-khau.html"}
    assert page.locator("article.doc .source").inner_text() == other
    assert page.locator("article.doc h1 mark").all_inner_texts() == ["cửa", "khẩu"]


def test_did_you_mean(page) -> None:
    page.goto("/?q=lao+cai")
    link = page.locator("p.suggestion a")
    assert link.inner_text() == "Lào Cai"
    with page.expect_navigation():
        link.click()
    assert query_of(page.url) == {"q": ["Lào Cai"]}
    assert page.input_value("#q") == "Lào Cai"
    assert page.locator(".result").count() == 10
    assert page.locator("p.suggestion").count() == 0  # already the suggestion


def test_empty_results_say_so_and_offer_the_suggestion(new_page, news_server: Server) -> None:
    page = new_page(base_url=news_server.url, viewport={"width": 1280, "height": 800})
    page.goto("/?q=lao+cai&from=2030")
    assert page.inner_text("#no-results-title") == "Không tìm thấy kết quả nào cho «lao cai»"
    assert page.locator(".result-stats").count() == 0
    assert page.locator(".no-results li").count() >= 3
    with page.expect_navigation():
        page.click("text=Tìm lại không có bộ lọc")
    assert query_of(page.url) == {"q": ["lao cai"]}
    page.goto("/?q=lao+cai&from=2030")
    with page.expect_navigation():
        page.click(".no-results .suggestion a")
    assert query_of(page.url) == {"q": ["Lào Cai"], "from": ["2030"]}


# --------------------------------------------------------------------------- colours, focus

# Relative luminance and contrast (WCAG 2.x) of computed colours; the background is the first
# opaque one up the tree.  Every visible text node on the page is checked, plus placeholders,
# <mark> and the focus ring.
CONTRAST_JS = """
() => {
  const parse = (c) => {
    const m = c.match(/rgba?\\(([^)]+)\\)/);
    if (!m) return null;
    const p = m[1].split(/[ ,/]+/).filter(Boolean).map(Number);
    return { r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1 };
  };
  const lum = (c) => {
    const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(c.r) + 0.7152 * f(c.g) + 0.0722 * f(c.b);
  };
  const ratio = (a, b) => {
    const [x, y] = [lum(a), lum(b)].sort((m, n) => n - m);
    return (x + 0.05) / (y + 0.05);
  };
  const background = (el) => {
    for (let e = el; e; e = e.parentElement) {
      const c = parse(getComputedStyle(e).backgroundColor);
      if (c && c.a > 0.5) return c;
    }
    const root = getComputedStyle(document.documentElement).backgroundColor;
    return parse(root) || { r: 255, g: 255, b: 255, a: 1 };
  };
  const out = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const el = n.parentElement;
    if (!n.nodeValue.trim() || !el.checkVisibility()) continue;
    if (el.closest(".visually-hidden, .skip-link")) continue;
    const r = el.getBoundingClientRect();
    if (r.width < 2 || r.height < 2) continue;
    const style = getComputedStyle(el);
    const size = parseFloat(style.fontSize), bold = Number(style.fontWeight) >= 700;
    const large = size >= 24 || (bold && size >= 18.66);
    out.push({ text: n.nodeValue.trim().slice(0, 30), tag: el.tagName, kind: "text",
               ratio: ratio(parse(style.color), background(el)), need: large ? 3 : 4.5 });
  }
  for (const el of document.querySelectorAll("input[placeholder]")) {
    const style = getComputedStyle(el, "::placeholder");
    out.push({ text: el.placeholder, tag: "placeholder", kind: "text",
               ratio: ratio(parse(style.color), background(el)), need: 4.5 });
  }
  return out;
}
"""

FOCUS_JS = """
() => {
  const el = document.activeElement;
  const s = getComputedStyle(el);
  return { tag: el.tagName, text: (el.innerText || el.value || "").slice(0, 30),
           style: s.outlineStyle, width: parseFloat(s.outlineWidth), color: s.outlineColor,
           shadow: s.boxShadow };
}
"""


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_contrast_aa_focus_and_landmarks(
    new_page, news_server: Server, samples_server: Server, scheme: str
) -> None:
    page = new_page(
        base_url=news_server.url, color_scheme=scheme, viewport={"width": 1280, "height": 900}
    )
    page.goto("/?q=lao+cai")
    page.locator("details.similar summary").click()  # its links must pass too
    bg = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert (bg == "rgb(255, 255, 255)") is (scheme == "light"), bg
    results = page.evaluate(CONTRAST_JS)
    tags = {r["tag"] for r in results}
    assert {"MARK", "A", "P", "SUMMARY", "TIME", "SPAN", "placeholder"} <= tags
    failing = [r for r in results if r["ratio"] < r["need"]]
    assert failing == [], failing
    # The current source chip; the pager (the samples have 11 results for lao cai); no results.
    with page.expect_navigation():
        page.click(".filters .chips a:has-text('VnExpress')")
    for url in (page.url, samples_server.url + "/?q=lao+cai", "/?q=xyzzy", "/"):
        page.goto(url)
        failing = [r for r in page.evaluate(CONTRAST_JS) if r["ratio"] < r["need"]]
        assert failing == [], (url, failing)

    # Every tab stop shows a focus ring of at least 2 px (a solid outline).
    page.goto("/?q=lao+cai")
    page.locator("body").focus()
    seen: list[str] = []
    while "SUMMARY" not in seen and len(seen) < 80:
        page.keyboard.press("Tab")
        focus = page.evaluate(FOCUS_JS)
        seen.append(focus["tag"])
        assert focus["style"] != "none" and focus["width"] >= 2, focus
    assert {"A", "INPUT", "BUTTON", "SUMMARY"} <= set(seen)

    # Landmarks: one banner, search, main and contentinfo; every nav is labelled.
    for role in ("banner", "search", "main", "contentinfo"):
        assert page.get_by_role(role).count() == 1, role
    navs = page.locator("nav")
    assert navs.count() >= 1
    for i in range(navs.count()):
        assert navs.nth(i).get_attribute("aria-label")
    assert page.get_by_role("region", name="Lọc kết quả").count() == 1


@pytest.mark.parametrize("width", [320, 360])
def test_filters_fit_small_phones(new_page, news_server: Server, width: int) -> None:
    page = new_page(base_url=news_server.url, viewport={"width": width, "height": 800})
    for path in ("/?q=lao+cai", "/?q=lao+cai&source=VnExpress&from=2024-01-01&to=2024-12-31"):
        page.goto(path)
        for summary in page.locator("details.similar summary").all():
            summary.click()
        assert_no_overflow(page, path)


@pytest.mark.parametrize(
    ("name", "width", "scheme"),
    [("desktop", 1280, "light"), ("phone", 360, "light"), ("dark", 1280, "dark")],
)
def test_screenshots(
    new_page, news_server: Server, name: str, width: int, scheme: str, tmp_path: Path
) -> None:
    # A test run leaves the checkout as it was: the README's screenshots are rewritten only when
    # asked for (``UPDATE_SCREENSHOTS=1 make test``); otherwise they go to a temporary directory.
    page = new_page(
        base_url=news_server.url,
        color_scheme=scheme,
        locale="vi-VN",
        viewport={"width": width, "height": 900},
    )
    page.goto("/?q=lao+cai")
    page.locator("details.similar summary").click()
    assert_no_overflow(page, "/?q=lao+cai")
    folder = SCREENSHOTS if os.environ.get("UPDATE_SCREENSHOTS") == "1" else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    shot = folder / f"results-{name}.png"
    page.screenshot(path=str(shot), full_page=True)
    png = shot.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert int.from_bytes(png[16:20], "big") == width  # the IHDR width: the page, not wider
