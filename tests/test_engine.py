"""SearchEngine over the toy index (exact contents) and the demo corpus in samples/."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from search.config import Settings
from search.documents import Document
from search.engine import SearchEngine
from search.errors import BadRequest, IndexMissing, NotFound
from search.indexer import build_index
from search.response import Hit, SearchResponse, keys

# The API's keys are the typed response's fields (``search.response``), which the OpenAPI
# description also lists: the engine's dicts must have exactly those.
RESULT_KEYS = set(keys(SearchResponse))
HIT_KEYS = set(keys(Hit))
DOCUMENT_KEYS = {
    "id",
    "title",
    "url",
    "source",
    "date",
    "lead",
    "body",
    "title_html",
    "lead_html",
    "body_html",
}


def ids(engine: SearchEngine, q: str, **kwargs: object) -> list[str]:
    return [h["id"] for h in engine.search(q, per_page=100, **kwargs)["hits"]]


def comparable(result: dict) -> dict:
    """A result without what legitimately differs between equivalent queries."""
    return {k: v for k, v in result.items() if k not in ("took_ms", "query")}


# -- toy index: ranking and matching ------------------------------------------------------------


@pytest.mark.parametrize("q", ["lao cai", "LAO CAI", "Lào Cai", "LÀO CAI", "La\u0300o Cai"])
def test_lao_cai_any_spelling_finds_laocai_first(toy_engine: SearchEngine, q: str) -> None:
    assert ids(toy_engine, q) == ["laocai", "scattered"]


def test_accented_query_prefers_the_exact_word(toy_engine: SearchEngine) -> None:
    hits = toy_engine.search("bán")["hits"]
    assert [h["id"] for h in hits] == ["ban-1", "ban-2"]
    assert hits[0]["score"] > hits[1]["score"]
    assert sorted(ids(toy_engine, "ban")) == ["ban-1", "ban-2"]
    assert ids(toy_engine, "bàn") == ["ban-2", "ban-1"]


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("hoà", "hòa", {"hoa-old", "hoa-new"}),
        ("khoẻ", "khỏe", {"hoa-old", "hoa-new"}),
        ("thuỷ", "thủy", {"hoa-old", "hoa-new"}),
        ("kĩ", "kỹ", {"hoa-old", "hoa-new", "laocai"}),
        ("Mĩ", "Mỹ", {"hoa-old", "hoa-new"}),
    ],
)
def test_spelling_variants_give_the_same_result(
    toy_engine: SearchEngine, a: str, b: str, expected: set[str]
) -> None:
    first, second = toy_engine.search(a), toy_engine.search(b)
    assert comparable(first) == comparable(second)
    assert {h["id"] for h in first["hits"]} == expected


def test_phrase_must_match_adjacent_words(toy_engine: SearchEngine) -> None:
    assert ids(toy_engine, '"hợp tác"') == ["laocai"]
    assert ids(toy_engine, '"hop tac"') == ["laocai"]
    assert ids(toy_engine, "hợp tác") == ["laocai", "scattered"]
    assert ids(toy_engine, '"tác hợp"') == []


def test_minus_excludes(toy_engine: SearchEngine) -> None:
    assert ids(toy_engine, "lào cai -quản") == ["laocai"]
    assert ids(toy_engine, "lào cai -QUAN") == ["laocai"]
    assert ids(toy_engine, 'lào cai -"hợp tác"') == ["scattered"]
    assert ids(toy_engine, "lào cai -tác") == []


def test_documents_with_all_words_rank_first(toy_engine: SearchEngine) -> None:
    # 'laocai' has lào and cai in its title (higher BM25F), 'scattered' holds all three words.
    assert ids(toy_engine, "lào cai quản") == ["scattered", "laocai"]


def test_long_query_finds_a_document_missing_a_few_words(toy_engine: SearchEngine) -> None:
    q = "hợp tác Lào Cai Lai Châu ký kết giai đoạn cửa hàng"
    assert ids(toy_engine, q) == ["laocai", "scattered"]
    # 'laocai' lacks 'cửa hàng' (10 of 12 words); the 'ban-*' documents hold only 'cửa hàng'.


@pytest.mark.parametrize("q", ['"4/3"', "4/3", "2023 - 2025", '"2023 - 2025"', "12,5%", '"12,5%"'])
def test_numbers(toy_engine: SearchEngine, q: str) -> None:
    assert ids(toy_engine, q) == ["laocai"]


@pytest.mark.parametrize("q", ['"3/4"', "12.5%", '"2025 - 2023"'])
def test_other_numbers_do_not_match(toy_engine: SearchEngine, q: str) -> None:
    assert ids(toy_engine, q) == []


def test_query_of_only_punctuation_finds_nothing(toy_engine: SearchEngine) -> None:
    result = toy_engine.search("?!")
    assert (result["total"], result["hits"]) == (0, [])


# -- toy index: result shape, snippets, escaping -----------------------------------------------


def test_result_keys_and_values(toy_engine: SearchEngine) -> None:
    result = toy_engine.search("lào cai")
    assert set(result) == RESULT_KEYS
    assert isinstance(result["took_ms"], float) and result["took_ms"] >= 0
    del result["took_ms"]
    for hit in result["hits"]:
        assert set(hit) == HIT_KEYS
        assert isinstance(hit.pop("score"), float)
    assert result == {
        "query": "lào cai",
        "total": 2,
        "total_relation": "eq",
        "page": 1,
        "per_page": 10,
        "interpreted_as": None,
        "suggestion": None,
        "hits": [
            {
                "id": "laocai",
                "title": "Hợp tác giữa Lào Cai và Lai Châu",
                "title_html": "Hợp tác giữa <mark>Lào</mark> <mark>Cai</mark> và Lai Châu",
                "url": "https://example.org/lao-cai",
                "snippet": "Hai tỉnh <mark>Lào</mark> <mark>Cai</mark> và Lai Châu ký kết hợp tác "
                "giai đoạn 2023 - 2025. Chiều 4/3 tăng 12,5%.",
                "source": "Báo Mẫu",
                "date": "2024-03-04",
                "lead": None,
                "similar": [],
            },
            {
                "id": "scattered",
                "title": "Tin vắn",
                "title_html": "Tin vắn",
                "url": None,
                "snippet": "Ông <mark>Lào</mark> nói chuyện. <mark>Cai</mark> quản kho hàng "
                "là việc của anh Tác, người hợp với nghề.",
                "source": "Báo Khác",
                "date": "2023-01-02",
                "lead": None,
                "similar": [],
            },
        ],
        "facets": {
            "source": [{"value": "Báo Khác", "count": 1}, {"value": "Báo Mẫu", "count": 1}],
            "year": [{"value": "2023", "count": 1}, {"value": "2024", "count": 1}],
        },
    }


def test_unaccented_query_marks_the_accented_original(toy_engine: SearchEngine) -> None:
    hit = toy_engine.search("hoa binh")["hits"][0]
    assert hit["id"] == "hoa-old"
    assert hit["title_html"] == "<mark>Hòa</mark> <mark>bình</mark>"


def test_html_is_escaped_and_only_matches_are_marked(toy_engine: SearchEngine) -> None:
    hit = toy_engine.search("script")["hits"][0]
    assert hit["id"] == "xss"
    assert hit["title"] == "<script>alert(1)</script> tiêu đề"
    assert hit["title_html"] == (
        "&lt;<mark>script</mark>&gt;alert(1)&lt;/<mark>script</mark>&gt; tiêu đề"
    )
    assert hit["snippet"] == (
        "Nội dung &lt;<mark>script</mark>&gt;alert(1)&lt;/<mark>script</mark>&gt; "
        '"onmouseover=x &lt;/mark&gt; an toàn.'
    )
    assert hit["url"] is None


def test_raw_mark_tag_in_text_is_escaped(toy_engine: SearchEngine) -> None:
    hit = toy_engine.search("an toàn")["hits"][0]
    assert hit["id"] == "xss"
    assert hit["snippet"] == (
        'Nội dung &lt;script&gt;alert(1)&lt;/script&gt; "onmouseover=x &lt;/mark&gt; '
        "<mark>an</mark> <mark>toàn</mark>."
    )
    assert hit["title_html"] == "&lt;script&gt;alert(1)&lt;/script&gt; tiêu đề"


def test_title_falls_back_to_first_sentence(toy_engine: SearchEngine) -> None:
    hit = toy_engine.search("câu thứ hai")["hits"][0]
    assert (hit["id"], hit["title"]) == ("nolead", "Câu mở đầu không có tiêu đề.")


def test_paging(toy_engine: SearchEngine) -> None:
    second = toy_engine.search("lào cai", page=2, per_page=1)
    assert (second["total"], second["page"], second["per_page"]) == (2, 2, 1)
    assert [h["id"] for h in second["hits"]] == ["scattered"]
    beyond = toy_engine.search("lào cai", page=3, per_page=1)
    assert (beyond["total"], beyond["hits"]) == (2, [])
    assert toy_engine.search("lào cai", page="2", per_page="1")["hits"] == second["hits"]


def test_filters_and_sort(toy_engine: SearchEngine) -> None:
    assert ids(toy_engine, "lào cai", source="Báo Khác") == ["scattered"]
    assert ids(toy_engine, "lào cai", date_from="2024-01-01") == ["laocai"]
    assert ids(toy_engine, "lào cai", date_to="2023") == ["scattered"]
    assert ids(toy_engine, "hợp", sort="newest") == ["laocai", "scattered"]


# -- document(), health() ------------------------------------------------------------------------


def test_document_highlights_the_query(toy_engine: SearchEngine) -> None:
    assert toy_engine.document("laocai", q="lao cai") == {
        "id": "laocai",
        "title": "Hợp tác giữa Lào Cai và Lai Châu",
        "url": "https://example.org/lao-cai",
        "source": "Báo Mẫu",
        "date": "2024-03-04",
        "lead": "",
        "body": "Hai tỉnh Lào Cai và Lai Châu ký kết hợp tác giai đoạn 2023 - 2025. "
        "Chiều 4/3 tăng 12,5%.",
        "title_html": "Hợp tác giữa <mark>Lào</mark> <mark>Cai</mark> và Lai Châu",
        "lead_html": "",
        "body_html": [
            "Hai tỉnh <mark>Lào</mark> <mark>Cai</mark> và Lai Châu ký kết hợp tác giai đoạn "
            "2023 - 2025. Chiều 4/3 tăng 12,5%."
        ],
    }


def test_document_without_query_and_escaping(toy_engine: SearchEngine) -> None:
    doc = toy_engine.document("xss")
    assert set(doc) == DOCUMENT_KEYS
    assert doc["url"] is None
    assert doc["title_html"] == "&lt;script&gt;alert(1)&lt;/script&gt; tiêu đề"
    assert doc["body_html"] == [
        'Nội dung &lt;script&gt;alert(1)&lt;/script&gt; "onmouseover=x &lt;/mark&gt; an toàn.'
    ]
    assert "<mark>" not in str(toy_engine.document("laocai"))


def test_document_not_found(toy_engine: SearchEngine) -> None:
    with pytest.raises(NotFound) as info:
        toy_engine.document("no-such-id")
    assert (info.value.code, info.value.status) == ("not_found", 404)


def test_health(toy_engine: SearchEngine) -> None:
    health = toy_engine.health()
    assert set(health) == {"status", "documents", "index_version"}
    assert health["status"] == "ok"
    assert health["documents"] == 8
    assert isinstance(health["index_version"], int)


# -- errors ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"q": None}, "missing_query"),
        ({"q": ""}, "missing_query"),
        ({"q": "  \t\n"}, "missing_query"),
        ({"q": 42}, "missing_query"),
        ({"q": "x" * 1001}, "query_too_long"),
        ({"q": "lao\x00cai"}, "bad_query"),
        ({"q": "lao", "page": 0}, "bad_parameter"),
        ({"q": "lao", "page": 1001}, "bad_parameter"),
        ({"q": "lao", "page": "abc"}, "bad_parameter"),
        ({"q": "lao", "page": "1.5"}, "bad_parameter"),
        ({"q": "lao", "page": True}, "bad_parameter"),
        ({"q": "lao", "per_page": 0}, "bad_parameter"),
        ({"q": "lao", "per_page": 101}, "bad_parameter"),
        ({"q": "lao", "per_page": "-1"}, "bad_parameter"),
        ({"q": "lao", "sort": "oldest"}, "bad_parameter"),
        ({"q": "lao", "date_from": "2024/01/01"}, "bad_parameter"),
        ({"q": "lao", "date_to": "yesterday"}, "bad_parameter"),
    ],
)
def test_bad_requests(toy_engine: SearchEngine, kwargs: dict, code: str) -> None:
    q = kwargs.pop("q")
    with pytest.raises(BadRequest) as info:
        toy_engine.search(q, **kwargs)
    assert (info.value.code, info.value.status) == (code, 400)
    assert info.value.message


def test_limits_are_inclusive(toy_engine: SearchEngine) -> None:
    assert toy_engine.search("x" * 1000)["total"] == 0
    result = toy_engine.search("lào", page=1000, per_page=100)
    assert (result["page"], result["per_page"], result["hits"]) == (1000, 100, [])
    assert toy_engine.search("lào", page="", per_page=None)["per_page"] == 10


def test_limits_come_from_the_settings(toy_index: Path) -> None:
    settings = Settings(max_query_chars=10, max_page=3, max_per_page=5)
    engine = SearchEngine(toy_index, warm=False, settings=settings)
    assert engine.search("lào", page=3, per_page=5)["per_page"] == 5
    for kwargs, message in [
        ({"per_page": 6}, "Tham số per_page phải là số nguyên từ 1 đến 5."),
        ({"page": 4}, "Tham số page phải là số nguyên từ 1 đến 3."),
    ]:
        with pytest.raises(BadRequest, match=message):
            engine.search("lào", **kwargs)
    with pytest.raises(BadRequest, match="dài quá 10 ký tự") as info:
        engine.search("lào cai lào cai")
    assert info.value.code == "query_too_long"


def test_snippet_width_comes_from_the_settings(tmp_path: Path) -> None:
    from html import unescape

    body = "Lào Cai mưa lớn. " + " ".join(f"câu thứ {i} kể chuyện mưa." for i in range(60))
    build_index([Document(id="long", title="Mưa", body=body)], tmp_path, workers=1)

    def shown(settings: Settings | None) -> str:
        engine = SearchEngine(tmp_path, warm=False, settings=settings)
        (hit,) = engine.search("lào cai")["hits"]
        engine.close()
        return unescape(hit["snippet"].replace("<mark>", "").replace("</mark>", ""))

    default, narrow = shown(None), shown(Settings(snippet_chars=60))
    assert 200 < len(default) <= 242  # the default width, 240, and an ellipsis
    assert 30 < len(narrow) <= 62
    assert narrow.startswith("Lào Cai mưa lớn.")


def test_a_word_longer_than_a_snippet_is_found_and_shown(tmp_path: Path) -> None:
    word = "x" * 300
    build_index([Document(id="long", title="Mã", body=f"đầu {word} cuối")], tmp_path, workers=1)
    engine = SearchEngine(tmp_path, warm=False)
    (hit,) = engine.search(word)["hits"]
    assert hit["id"] == "long" and hit["snippet"].startswith("đầu xxxx")
    engine.close()


def test_index_missing(tmp_path: Path) -> None:
    for directory in (tmp_path, tmp_path / "absent"):
        engine = SearchEngine(directory)
        with pytest.raises(IndexMissing) as info:
            engine.search("lao cai")
        assert (info.value.code, info.value.status) == ("no_index", 503)
        with pytest.raises(IndexMissing):
            engine.health()


# -- the demo corpus (samples/): page furniture, Unicode oddities ---------------------------------


@pytest.fixture(scope="module")
def samples_engine(samples_index: Path) -> Iterator[SearchEngine]:
    engine = SearchEngine(samples_index)
    yield engine
    engine.close()


def test_samples_are_all_indexed(samples_engine: SearchEngine) -> None:
    assert samples_engine.health()["documents"] == 30
    assert ids(samples_engine, "xưởng bàn ghế gỗ")[0] == "kinh-te/026-xuong-ban-ghe-go.txt"


@pytest.mark.parametrize(
    "q", ["tem", "nilon", "OTP", "robot", "STEM", "livestream", "container", "xăng", "fb", "yt zl"]
)
def test_teaser_and_share_words_find_nothing(samples_engine: SearchEngine, q: str) -> None:
    assert ids(samples_engine, q) == []


@pytest.mark.parametrize("q", ["bưu chính", "sưu tầm"])
def test_teaser_only_two_word_queries_find_nothing(samples_engine: SearchEngine, q: str) -> None:
    assert ids(samples_engine, q) == []


def test_photo_marker_and_related_titles_are_not_indexed(samples_engine: SearchEngine) -> None:
    # 015 mentions Lào Cai only in its related-news teasers.
    found = ids(samples_engine, '"lào cai"')
    assert "015-sa-pa-don-khach-nghi-le.txt" not in found
    assert len(found) == 11
    doc = samples_engine.document("003-thi-thpt-lao-cai.txt")
    assert not any(p.endswith(("ảnh 1", "ảnh 2")) for p in doc["body_html"])
    assert "fb yt zl tw" not in doc["body"]


def test_zero_width_space_inside_a_word(samples_engine: SearchEngine) -> None:
    assert ids(samples_engine, "fansipan") == ["015-sa-pa-don-khach-nghi-le.txt"]
    hit = samples_engine.search("Fansipan")["hits"][0]
    assert "<mark>Fan\u200bsipan</mark>" in hit["snippet"]


def test_eth_lookalike_file_is_found(samples_engine: SearchEngine) -> None:
    for q in ["Đà Nẵng", "da nang", "Ðà Nẵng"]:
        assert set(ids(samples_engine, f'"{q}"')) == {
            "002-da-nang-khanh-thanh-cau.txt",
            "008-co-vua-hoc-sinh-hoa.txt",
            "013-lua-dao-iphone-facebook.txt",
            "014-sinh-vien-an-toan-thong-tin.txt",
            "021-marathon-da-nang.txt",
            "kinh-te/028-xuat-khau-da-nang-tang.txt",
        }


def test_nfd_file_is_found_and_highlighted(samples_engine: SearchEngine) -> None:
    hit = samples_engine.search("mưa lớn hà nội")["hits"][0]
    assert hit["id"] == "017-mua-lon-ha-noi.txt"
    assert "<mark>" in hit["title_html"]


def test_diacritics_pick_the_word(samples_engine: SearchEngine) -> None:
    assert ids(samples_engine, "bàn")[0] == "kinh-te/026-xuong-ban-ghe-go.txt"
    assert ids(samples_engine, "bán")[0] == "kinh-te/027-phien-cho-nong-san.txt"
    assert {"kinh-te/026-xuong-ban-ghe-go.txt", "kinh-te/027-phien-cho-nong-san.txt"} <= set(
        ids(samples_engine, "ban")
    )


@pytest.mark.parametrize(
    ("a", "b", "must"),
    [
        ("hoà", "hòa", {"007-bong-da-thieu-nien-hoa.txt", "008-co-vua-hoc-sinh-hoa.txt"}),
        (
            "khoẻ",
            "khỏe",
            {"005-kham-suc-khoe-nguoi-cao-tuoi.txt", "006-giam-sat-covid-19-tphcm.txt"},
        ),
        ("thuỷ", "thủy", {"009-an-toan-ho-dap-thuy-dien.txt", "010-nuoi-ca-hoi-sa-pa.txt"}),
        ("kĩ", "kỹ", {"003-thi-thpt-lao-cai.txt", "004-lop-on-thi-mien-phi.txt"}),
        ("lí", "lý", {"003-thi-thpt-lao-cai.txt", "004-lop-on-thi-mien-phi.txt"}),
        (
            '"kì thi"',
            '"kỳ thi"',
            {
                "003-thi-thpt-lao-cai.txt",
                "004-lop-on-thi-mien-phi.txt",
                "025-olympic-lap-trinh-tphcm.txt",
            },
        ),
    ],
)
def test_samples_spelling_variants(
    samples_engine: SearchEngine, a: str, b: str, must: set[str]
) -> None:
    first, second = samples_engine.search(a, per_page=100), samples_engine.search(b, per_page=100)
    assert comparable(first) == comparable(second)
    assert must <= {h["id"] for h in first["hits"]}


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ('"4/3"', ["011-hdnd-ky-hop-chuyen-de.txt"]),
        ('"12,5%"', ["kinh-te/028-xuat-khau-da-nang-tang.txt"]),
        ('"87,5%"', ["kinh-te/030-khu-cong-nghiep-tang-loong.txt"]),
    ],
)
def test_samples_numbers(samples_engine: SearchEngine, q: str, expected: list[str]) -> None:
    assert ids(samples_engine, q) == expected


def test_samples_script_is_escaped(samples_engine: SearchEngine) -> None:
    hit = samples_engine.search("script")["hits"][0]
    assert hit["id"] == "014-sinh-vien-an-toan-thong-tin.txt"
    assert "&lt;<mark>script</mark>&gt;alert(1)&lt;/<mark>script</mark>&gt;" in hit["snippet"]
    assert "<script" not in hit["snippet"]


def test_a_kept_article_is_highlighted_for_each_query_anew(toy_index: Path) -> None:
    """An article's prepared text is kept between queries; its highlights never are."""
    warm = SearchEngine(toy_index, warm=False)
    answers = {q: comparable(warm.search(q)) for q in ("Lào Cai", "hợp tác", "lao cai", "Lào Cai")}
    for q, answer in answers.items():
        fresh = SearchEngine(toy_index, warm=False)
        assert comparable(fresh.search(q)) == answer
        fresh.close()
    hit = next(h for h in answers["hợp tác"]["hits"] if h["id"] == "laocai")
    assert "<mark>Hợp</mark> <mark>tác</mark>" in hit["title_html"]
    assert "<mark>Lào" not in hit["title_html"] and "<mark>Lào" not in hit["snippet"]
    warm.close()


DENSE_QUERIES = [
    "Lào Cai",
    "lao cai",
    "laof cai",
    "tỉnh Lào Cai tổ chức kỳ thi",
    "hop tac giua hai tinh",
    '"kỳ thi" -covid',
    "TP.HCM",
    "thành phố Hồ Chí Minh",
    "bàn ghế gỗ",
    "của và là",
]


@pytest.mark.parametrize("q", DENSE_QUERIES)
def test_frequent_terms_kept_dense_rank_exactly_as_sparse(
    samples_index: Path, monkeypatch: pytest.MonkeyPatch, q: str
) -> None:
    """A frequent term's weights spread over every docnum score, mark and filter exactly as its
    sorted ids do (same hits, order, scores, totals and facets)."""
    import search.postings as postings

    results, dense_terms = [], []
    for share in (2.0, 0.0):  # never dense, always dense
        monkeypatch.setattr(postings, "DENSE_SHARE", share)
        engine = SearchEngine(samples_index, warm=False)
        results.append(comparable(engine.search(q, per_page=100)))
        snap = engine.snapshot()
        dense_terms.append(sum(p.dense is not None for p in snap._cache.values()))
        engine.close()
    assert results[0]["total"] > 0
    assert results[0] == results[1]
    assert dense_terms[0] == 0 and dense_terms[1] > 0


# -- accent restoration, Telex and "did you mean" -------------------------------------------------


@pytest.mark.parametrize(
    ("q", "suggestion", "interpreted"),
    [
        ("lao cai", "Lào Cai", None),
        ("da nang", "Đà Nẵng", None),
        ("ha noi", "Hà Nội", None),
        ("laof cai", "Lào Cai", "lào cai"),
        ("Lào Cai", None, None),
    ],
)
def test_suggestion_and_interpretation(
    samples_engine: SearchEngine, q: str, suggestion: str | None, interpreted: str | None
) -> None:
    result = samples_engine.search(q)
    assert result["suggestion"] == suggestion
    assert result["interpreted_as"] == interpreted


def test_telex_query_finds_what_the_accented_one_finds(samples_engine: SearchEngine) -> None:
    assert ids(samples_engine, "laof cai") == ids(samples_engine, "lào cai")
    assert samples_engine.search("laof cai", literal=True)["interpreted_as"] is None


def test_restored_accents_rank_the_real_place_first(samples_engine: SearchEngine) -> None:
    """Documents about Đà Nẵng outrank those that merely hold "đã ... nắng" for ``da nang``."""
    from search.text import normalize

    top = ids(samples_engine, "da nang")[:3]
    for doc_id in top:
        assert "đà nẵng" in normalize(samples_engine.document(doc_id)["body"]).lower()


def test_accented_query_ranks_exact_words_first(samples_engine: SearchEngine) -> None:
    from search.text import normalize

    found = ids(samples_engine, "Đà Nẵng")
    exact = [d for d in found if "đà nẵng" in normalize(samples_engine.document(d)["body"]).lower()]
    assert len(exact) >= 5
    assert found[: len(exact)] == exact


def test_each_facet_counts_what_the_other_filter_lets_through(toy_engine: SearchEngine) -> None:
    both_sources = [{"value": "Báo Khác", "count": 1}, {"value": "Báo Mẫu", "count": 1}]
    both_years = [{"value": "2023", "count": 1}, {"value": "2024", "count": 1}]
    result = toy_engine.search("lào cai", source="Báo Mẫu")
    assert [h["id"] for h in result["hits"]] == ["laocai"]
    assert result["facets"] == {"source": both_sources, "year": [{"value": "2024", "count": 1}]}
    result = toy_engine.search("lào cai", date_from="2024")
    assert [h["id"] for h in result["hits"]] == ["laocai"]
    assert result["facets"] == {"source": [{"value": "Báo Mẫu", "count": 1}], "year": both_years}


def test_date_range_is_inclusive_by_prefix_and_newest_sorts(toy_engine: SearchEngine) -> None:
    assert ids(toy_engine, "lào cai", date_to="2023") == ["scattered"]
    assert ids(toy_engine, "lào cai", date_from="2023-01-02", date_to="2024-03-04") == [
        "laocai",
        "scattered",
    ]
    assert ids(toy_engine, "lào cai", date_from="2025") == []
    assert ids(toy_engine, "lào cai", source="Không có") == []
    newest = toy_engine.search("lào cai", sort="newest")["hits"]
    assert [h["date"] for h in newest] == ["2024-03-04", "2023-01-02"]


def test_phrases_and_exclusions_are_capped() -> None:
    from search.query import MAX_PHRASES, parse

    plan = parse(" ".join(f'"a{i} b{i}" -c{i}' for i in range(20)))
    assert len(plan.phrases) == MAX_PHRASES and len(plan.excluded) == MAX_PHRASES
    assert len(plan.concepts) == 40  # the other phrases' words still count as words


def test_the_default_posting_cache_grows_with_the_index(
    toy_index: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from search import postings

    monkeypatch.setattr(postings, "MIN_CACHED_BYTES", 1000)
    monkeypatch.setattr(postings, "CACHED_BYTES_PER_DOC", 10**6)
    engine = SearchEngine(toy_index, warm=False)
    snap = engine.snapshot()
    assert snap.size > 1
    assert snap.cache_bytes == 10**6 * snap.size  # per document, above the floor
    engine.close()
    explicit = SearchEngine(toy_index, warm=False, cache_mb=2)  # VNSEARCH_CACHE_MB wins
    assert explicit.snapshot().cache_bytes == 2 * 2**20
    explicit.close()


def test_posting_cache_keeps_at_most_its_number_of_terms(
    toy_index: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each mapped term is one memory map of the worker: the count is bounded besides bytes."""
    from search import postings

    queries = ["lào cai", "hòa bình", "cửa hàng bán đồ gỗ", "kỹ sư người Mỹ", "tin vắn"]
    monkeypatch.setattr(postings, "MAX_CACHED_TERMS", 6)
    engine = SearchEngine(toy_index, warm=False)
    answers = [comparable(engine.search(q)) for q in queries]
    snap = engine.snapshot()
    assert len(snap._cache) == 6  # the queries read more: the least recent went
    assert snap._cached_bytes == sum(p.nbytes for p in snap._cache.values())
    kept = set(snap._cache)
    engine.close()
    monkeypatch.undo()
    last = SearchEngine(toy_index, warm=False)
    last.search(queries[-1])
    assert kept <= set(last.snapshot()._cache)  # the most recent: the last query's terms
    last.close()
    roomy = SearchEngine(toy_index, warm=False)
    assert answers == [comparable(roomy.search(q)) for q in queries]
    assert len(roomy.snapshot()._cache) > 6
    roomy.close()


def test_posting_cache_stays_within_its_byte_bound(toy_index: Path) -> None:
    engine = SearchEngine(toy_index, cache_mb=1000 / 2**20)  # 1,000 bytes
    answers = []
    for q in ["lào cai", "hòa bình", "cửa hàng bán đồ gỗ", "kỹ sư người Mỹ", "tin vắn"]:
        answers.append(comparable(engine.search(q)))
    snap = engine.snapshot()
    assert snap.cache_bytes == 1000
    assert 0 < snap._cached_bytes <= 1000
    assert snap._cached_bytes == sum(p.nbytes for p in snap._cache.values())
    engine.close()
    roomy = SearchEngine(toy_index)  # the default cache: the same answers
    assert roomy.snapshot().cache_bytes == 64 * 2**20  # a small index: the 64 MiB floor
    assert answers == [
        comparable(roomy.search(q))
        for q in ["lào cai", "hòa bình", "cửa hàng bán đồ gỗ", "kỹ sư người Mỹ", "tin vắn"]
    ]
    roomy.close()


def test_accented_query_marks_only_the_typed_diacritics(toy_engine: SearchEngine) -> None:
    hits = {h["id"]: h for h in toy_engine.search("bán")["hits"]}
    assert hits["ban-1"]["title_html"] == "Cửa hàng <mark>bán</mark> đồ gỗ"
    assert hits["ban-2"]["title_html"] == "Cửa hàng bàn đồ gỗ"  # found through "ban", not marked
    unaccented = {h["id"]: h for h in toy_engine.search("ban")["hits"]}
    assert unaccented["ban-2"]["title_html"] == "Cửa hàng <mark>bàn</mark> đồ gỗ"


ABBREVIATED = [
    # The same body; one title says "Hà Nội" as typed, the other its abbreviation "HN".
    Document(id="typed", title="Hà Nội mưa lớn", body="Hà Nội mưa lớn suốt đêm qua."),
    Document(id="short", title="HN mưa lớn", body="Hà Nội mưa lớn suốt đêm qua."),
    Document(id="only-short", title="Tin sáng", body="HN mưa lớn suốt đêm qua."),
    Document(id="other", title="Đà Nẵng nắng nóng", body="Đà Nẵng nắng nóng suốt tuần."),
    # "Hà Nội" is common and "HN" rare, as in real archives: the abbreviation's idf is higher.
    *(
        Document(id=f"city-{i}", title=f"Tin {i}", body=f"Hà Nội có {i} dự án mới.")
        for i in range(8)
    ),
]


@pytest.mark.parametrize("query", ["hà nội mưa lớn", "ha noi mua lon", "HN mưa lớn"])
def test_an_abbreviation_counts_as_its_words_not_on_top_of_them(tmp_path: Path, query: str) -> None:
    build_index(ABBREVIATED, tmp_path / "ix", workers=1)
    engine = SearchEngine(tmp_path / "ix", warm=False)
    try:
        result = engine.search(query)
        ids = [h["id"] for h in result["hits"]]
        scores = {h["id"]: h["score"] for h in result["hits"]}
    finally:
        engine.close()
    assert sorted(ids) == ["only-short", "short", "typed"]  # either form finds the article
    if not query.startswith("HN"):
        # Holding "HN" as well as the "Hà Nội" typed scores no more than holding "Hà Nội": the
        # rarer abbreviation in a title used to lift "short" above "typed".
        assert ids[0] == "typed" and scores["typed"] >= scores["short"]


def test_typo_fallback_only_when_nothing_is_found(toy_engine: SearchEngine) -> None:
    result = toy_engine.search("giai đoạnn")
    assert result["interpreted_as"] == "giai doan"
    assert [h["id"] for h in result["hits"]] == ["laocai"]
    assert toy_engine.search("giai đoạn")["interpreted_as"] is None  # found as typed
    assert toy_engine.search("giai đoạnn", literal=True)["total"] == 0
    assert toy_engine.search("xqzw")["total"] == 0  # nothing near enough
    assert toy_engine.search("gỗx")["total"] == 0  # 3 letters + 1: "gox" is too short to fix
    # "doan bàn" finds nothing either: the answer is the typed query's, not "searched for ..."
    nowhere = toy_engine.search("đoạnn bàn")
    assert (nowhere["total"], nowhere["interpreted_as"]) == (0, None)
    assert toy_engine.search("đoạnn")["interpreted_as"] == "doan"  # alone, it is found


def test_opening_a_generation_loads_its_most_frequent_terms(toy_index: Path) -> None:
    engine = SearchEngine(toy_index)
    try:
        snap = engine.snapshot()
        engine.wait_warm(timeout=30)
        vocab = snap.accents()
        assert vocab is not None
        frequent = vocab.frequent_terms(5)
        assert {"hang", "hàng", "cua"} <= set(frequent)  # "Cửa hàng" four times in two documents
        assert all(snap.is_cached(term) for term in frequent)
        assert not snap.is_cached("khong co tu nay")
    finally:
        engine.close()


def test_searches_while_frequent_terms_load_give_the_settled_answers(
    samples_index: Path, samples_engine: SearchEngine
) -> None:
    # The loading thread reads the same segment files; sharing file handles with it once turned
    # searches into unpickling errors.  Fresh engines answer while their thread runs.
    queries = ["lào cai", "thi thpt", "giá vàng hôm nay", '"bàn ghế"', "xuong go", "ubnd"]
    settled = {q: comparable(samples_engine.search(q)) for q in queries}
    for _ in range(15):
        engine = SearchEngine(samples_index)
        try:
            for q in queries:
                assert comparable(engine.search(q)) == settled[q], q
        finally:
            engine.close()


def test_a_one_off_engine_loads_nothing_ahead(toy_index: Path) -> None:
    engine = SearchEngine(toy_index, warm=False)  # what the CLI uses
    try:
        engine.search("lào")
        engine.wait_warm(timeout=5)
        assert not engine.snapshot().is_cached("hang")
        assert engine.snapshot().is_cached("lao")
    finally:
        engine.close()


def test_stored_documents_are_read_once_while_they_stay_recent(tmp_path) -> None:
    from conftest import TOY_DOCS

    from search import postings

    build_index(TOY_DOCS, tmp_path / "ix", workers=1)
    engine = SearchEngine(tmp_path / "ix", warm=False)
    try:
        snap = engine.snapshot()
        reads: list[int] = []
        real = snap.searcher.stored_fields

        def counting(docnum: int) -> dict:
            reads.append(docnum)
            return real(docnum)

        snap.searcher.stored_fields = counting
        first = snap.stored(0)
        assert snap.stored(0) is first and reads == [0]
        assert first["id"] == TOY_DOCS[0].id
        old_limit = postings.STORED_CACHE
        postings.STORED_CACHE = 2
        try:
            snap.stored(1)
            snap.stored(2)  # three read, two kept: the least recent (0) goes
            assert reads == [0, 1, 2]
            assert snap.stored(2) is snap.stored(2) and reads == [0, 1, 2]
            snap.stored(0)
            assert reads == [0, 1, 2, 0]  # read again: it had been dropped
        finally:
            postings.STORED_CACHE = old_limit
    finally:
        engine.close()


def test_timings_hook_hears_every_step_and_changes_nothing(toy_index: Path) -> None:
    from search.engine import STEPS

    heard: list[tuple[str, float]] = []
    timed = SearchEngine(toy_index, warm=False, timings=lambda step, s: heard.append((step, s)))
    plain = SearchEngine(toy_index, warm=False)
    try:
        result = timed.search("lao cai")
        assert {step for step, _ in heard} == set(STEPS)
        assert all(seconds >= 0 for _, seconds in heard)
        assert comparable(result) == comparable(plain.search("lao cai"))
    finally:
        timed.close()
        plain.close()


def test_latency_bench_shares_time_through_the_hook(toy_engine: SearchEngine) -> None:
    from types import SimpleNamespace

    from bench.latency import time_steps
    from search.engine import STEPS

    steps = time_steps(toy_engine, [SimpleNamespace(text="lao cai"), SimpleNamespace(text="bán")])
    assert list(steps) == [*STEPS, "other"] and all(len(v) == 2 for v in steps.values())
    assert toy_engine.timings is None


def _one_article_index(tmp_path: Path) -> tuple[Path, Path]:
    """A source folder of one article and its index."""
    from search.indexer import reindex

    source = tmp_path / "src"
    source.mkdir()
    (source / "a.jsonl").write_text(
        json.dumps({"id": "a", "title": "Chợ phiên Bắc Hà", "body": "Đông vui."}) + "\n",
        encoding="utf-8",
    )
    index = tmp_path / "index"
    reindex(index, [source], workers=1)
    return source, index


def _add_and_reindex(source: Path, index: Path, article: dict) -> None:
    """Append ``article`` to the source and reindex (a new generation)."""
    from search.indexer import reindex

    with (source / "a.jsonl").open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(article) + "\n")
    reindex(index, workers=1)


def test_a_server_engine_serves_the_old_generation_until_the_new_one_is_warm(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a reindex, a worker's searches go on being answered from the generation it has
    warm while the next one is opened and warmed in the background; then the next one serves.
    A failure to open it leaves the old one serving, and the next search tries again."""
    from search import engine as engine_module

    source, index = _one_article_index(tmp_path)
    engine = SearchEngine(index, switch_when_warm=True)
    release = threading.Event()
    real_warm = engine_module._warm

    def slow_warm(snap, pause=None) -> None:
        release.wait(30)
        real_warm(snap, pause)

    try:
        assert engine.search("thủy điện")["total"] == 0
        first = engine.health()["index_version"]
        engine.wait_warm(30)
        monkeypatch.setattr(engine_module, "_warm", slow_warm)
        _add_and_reindex(source, index, {"id": "b", "title": "Thủy điện", "body": "Mưa lớn."})
        for _ in range(3):  # the new generation is warming: the old one answers, at once
            assert engine.search("thủy điện")["total"] == 0
            assert engine.health()["index_version"] == first
        release.set()
        engine.wait_warm(30)
        assert engine.search("thủy điện")["total"] == 1
        assert engine.health()["index_version"] == first + 1

        def broken(*args, **kwargs):
            raise OSError("disk gone")

        monkeypatch.setattr(engine_module, "open_for_reading", broken)
        _add_and_reindex(source, index, {"id": "c", "title": "Thủy điện nhỏ", "body": "Lũ."})
        assert engine.search("thủy điện")["total"] == 1
        engine.wait_warm(30)  # the switch failed: the old generation still serves
        assert engine.search("thủy điện")["total"] == 1
        monkeypatch.undo()
        engine.wait_warm(30)  # an attempt the last search started, with the broken open
        engine.search("thủy điện")  # starts the switch again
        engine.wait_warm(30)
        assert engine.search("thủy điện")["total"] == 2
        assert engine.health()["index_version"] == first + 2
    finally:
        release.set()
        engine.close()


def test_the_pacer_pauses_a_warm_up_only_while_a_search_runs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from search import engine as engine_module

    slept: list[float] = []
    monkeypatch.setattr(engine_module, "_sleep", slept.append)
    now, busy = [0.0], [True]
    pacer = engine_module.Pacer(lambda: busy[0], clock=lambda: now[0])
    slice_ = engine_module.SWITCH_SLICE
    now[0] = slice_ / 2
    pacer()  # within its slice: goes on
    assert slept == []
    now[0] = slice_
    pacer()  # its slice is used up and a search runs: it pauses
    assert slept == [engine_module.SWITCH_PAUSE]
    now[0] += slice_ / 2
    pacer()  # a new slice began at the pause
    busy[0] = False
    now[0] += slice_
    pacer()  # no search: it goes on
    assert slept == [engine_module.SWITCH_PAUSE]
    assert pacer.paused == engine_module.SWITCH_PAUSE


def test_a_switching_worker_leaves_the_process_to_a_running_search(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The warm-up of a new generation pauses while a search is under way (the search is held
    mid-way here until it has), and not while none is; the new generation then serves."""
    from search import engine as engine_module

    monkeypatch.setattr(engine_module, "SWITCH_SLICE", 0.0)
    paused = threading.Event()
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        paused.set()

    monkeypatch.setattr(engine_module, "_sleep", sleep)
    source, index = _one_article_index(tmp_path)
    engine = SearchEngine(index, switch_when_warm=True)
    try:
        assert engine.search("thủy điện")["total"] == 0
        engine.wait_warm(30)
        assert not engine.searching()
        _add_and_reindex(source, index, {"id": "b", "title": "Thủy điện", "body": "Mưa lớn."})
        waited: list[bool] = []

        def hold(step: str, seconds: float) -> None:
            if step == "snapshot":  # the switch has started: hold this search under way
                waited.append(paused.wait(30))
                assert engine.searching()

        engine.timings = hold
        assert engine.search("thủy điện")["total"] == 0  # the old generation answered
        engine.timings = None
        engine.wait_warm(30)
        assert waited == [True] and slept
        assert engine.search("thủy điện")["total"] == 1
        assert not engine.searching()
        slept.clear()
        _add_and_reindex(source, index, {"id": "c", "title": "Thủy điện nhỏ", "body": "Lũ."})
        engine.snapshot()  # a switch with no search under way
        engine.wait_warm(30)
        assert slept == []
        assert engine.search("thủy điện")["total"] == 2
    finally:
        engine.timings = None
        engine.close()


@pytest.mark.parametrize("switch_when_warm", [False, True])
def test_a_search_holding_the_old_generation_reads_it_to_the_end(
    tmp_path: Path, switch_when_warm: bool
) -> None:
    """A search that took the snapshot before a switch still reads its hits' stored text from
    it: the switch closed it under the search (``ReaderClosed``: HTTP 500s right after a
    reindex at a million articles under load).  It closes once the last search lets it go."""
    import gc

    source, index = _one_article_index(tmp_path)
    engine = SearchEngine(index, switch_when_warm=switch_when_warm)
    try:
        old = engine.snapshot()  # a search in another thread holds it ...
        engine.wait_warm(30)
        _add_and_reindex(source, index, {"id": "b", "title": "Thủy điện", "body": "Mưa lớn."})
        engine.search("thủy điện")  # ... while this one switches (or starts the switch)
        engine.wait_warm(30)
        assert engine.search("thủy điện")["total"] == 1
        assert engine.snapshot() is not old
        assert old.document(0).stored["id"] == "a"  # ... and reads its hit's text to the end
        searcher = old.searcher
        del old
        gc.collect()
        assert searcher.is_closed
    finally:
        engine.close()


def test_searches_list_the_index_directory_only_when_it_changed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each search asks the directory's mtime whether a generation was committed: a directory
    unchanged since it was listed is not listed again, a commit is seen by the next search, and
    a listing is not kept for a directory that changed just before it (a coarse mtime could
    hide a second change) nor past ``RELIST_SECONDS``."""
    import dataclasses
    import os

    from conftest import TOY_DOCS

    from search import engine as engine_module
    from search.indexer import reindex

    def write(docs: list[Document]) -> None:
        lines = (json.dumps(dataclasses.asdict(d), ensure_ascii=False) for d in docs)
        source.write_text("".join(line + "\n" for line in lines), encoding="utf-8")

    source, index = tmp_path / "tin.jsonl", tmp_path / "ix"
    write(TOY_DOCS[:3])
    reindex(index, [source], workers=1)
    listed: list[Path] = []
    real = engine_module.latest_generation

    def counting(folder: Path) -> int:
        listed.append(folder)
        return real(folder)

    monkeypatch.setattr(engine_module, "latest_generation", counting)
    engine = SearchEngine(index, warm=False)
    try:
        assert engine.health()["documents"] == 3
        old = os.stat(index).st_mtime_ns - 10**10
        os.utime(index, ns=(old, old))  # changed 10 s ago: settled
        engine.health()
        listed.clear()
        for _ in range(3):
            assert engine.health()["documents"] == 3
        assert listed == []  # a stat each, no listing
        generation = engine.health()["index_version"]
        write(TOY_DOCS)
        reindex(index, workers=1)  # a commit: the directory changes now
        assert engine.health() == {
            "status": "ok",
            "documents": len(TOY_DOCS),
            "index_version": generation + 1,
        }
        assert len(listed) == 1
        engine.health()
        assert len(listed) == 2  # changed just before the listing: listed again
        os.utime(index, ns=(old, old))
        engine.health()
        engine.health()
        assert len(listed) == 3
        monkeypatch.setattr(engine_module, "RELIST_SECONDS", 0.0)
        engine.health()
        assert len(listed) == 4  # past ``RELIST_SECONDS``: listed again all the same
    finally:
        engine.close()
