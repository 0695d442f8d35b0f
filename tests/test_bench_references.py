"""The relevance benchmark's real-engine references (SQLite FTS5, Xapian) and its protocols."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import common
from bench.fts5_ref import Fts5Reference, match_expression
from bench.relevance import PROTOCOLS, VARIANTS, best_reference, goal_cell, table
from bench.xapian_ref import XapianReference, fold

DOCS = [
    common.BenchDoc(id="ban", title="Cửa hàng bán gỗ", lead="", body="Cửa hàng bán đồ gỗ."),
    common.BenchDoc(id="ban2", title="Bạn bè", lead="", body="Những người bạn cũ."),
    common.BenchDoc(id="dong", title="Giá đồng", lead="Giá đồng tăng", body="Đồng tăng giá."),
    common.BenchDoc(id="danang", title="", lead="", body="Đà Nẵng đón khách."),
]


def test_body_only_variant_drops_title_and_lead() -> None:
    doc = VARIANTS["C"](DOCS)[2]
    assert (doc.id, doc.title, doc.lead, doc.body) == ("dong", "", "", "Đồng tăng giá.")
    assert PROTOCOLS["body"] == {"C": PROTOCOLS["current"]["A"] + PROTOCOLS["current"]["B"]}


def test_fts5_match_expression_quotes_every_word() -> None:
    assert match_expression("Hoa\u0300 - OR NOT x*") == '"Hoà" OR "OR" OR "NOT" OR "x"'
    assert match_expression("?!") == ""


def test_fts5_folds_diacritics_but_not_d_stroke(tmp_path: Path) -> None:
    fts5 = Fts5Reference()
    if reason := fts5.unavailable():
        pytest.skip(reason)
    fts5.build(DOCS, tmp_path)
    try:
        # remove_diacritics merges bán and bạn: both answer, the shorter title first
        assert fts5.search("bán") == ["ban2", "ban"]
        assert fts5.search("ban") == ["ban2", "ban"]
        assert fts5.search("dong") == []  # đ is a letter of its own to unicode61
        assert fts5.search("đông") == ["dong"]
        assert fts5.search("Da\u0300 Na\u0306\u0303ng") == ["danang"]  # NFD in, NFC matched
        assert fts5.search("?!") == []
    finally:
        fts5.close()


def test_xapian_fold() -> None:
    assert fold("Đồng hồ, THUỶ ĐIỆN") == "Dong ho, THUY DIEN"


def test_xapian_searches_as_typed_and_folded(tmp_path: Path) -> None:
    xapian = XapianReference()
    if reason := xapian.unavailable():
        pytest.skip(reason)
    xapian.build(DOCS, tmp_path)
    try:
        # the accented term and the folded copy both match bán: above bạn (folded copy only)
        assert xapian.search("bán") == ["ban", "ban2"]
        assert xapian.search("bạn") == ["ban2", "ban"]
        assert xapian.search("dong") == ["dong"]
        assert xapian.search("da nang") == ["danang"]
        assert xapian.search("ddaf nawngx") == []
    finally:
        xapian.close()
    assert xapian.fingerprint().startswith("xapian:1.")


def test_xapian_missing_is_reported(tmp_path: Path) -> None:
    assert "not evaluated" in (XapianReference(str(tmp_path / "python")).unavailable() or "")


def _results(vn: float, whoosh: float, fts5: float) -> dict[str, dict]:
    def system(mrr: float) -> dict:
        return {"protocols": {"body": {"accented": {"n": 1, "mrr": mrr, "r1": 0.0, "r10": 1.0}}}}

    return {"vnsearch": system(vn), "reference": system(whoosh), "fts5": system(fts5)}


def test_margin_goal_against_the_best_reference() -> None:
    results = _results(0.84, 0.80, 0.81)
    assert best_reference(results, "body", "accented") == ("fts5", 0.81)
    assert goal_cell(results, "body", "accented") == "best+0.035 MISSED"
    assert goal_cell(_results(0.85, 0.80, 0.81), "body", "accented") == "best+0.035 ok"
    row = table(results, "body").splitlines()[3]
    assert row.split("|")[2].split() == ["0.800", "0.810", "-"]
    assert row.split("|")[3].split() == ["0.810", "+0.030"]
