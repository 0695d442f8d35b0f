"""The two ways of counting the accent vocabulary count the same (``search.accent_tally``).

A build counts its batches as arrays (``count_batch``, added up by ``AccentRun``); an
incremental run subtracts its removed documents' ``Counter`` tally (``count_texts``) from those
counts, and a recount uses the tally too.  Any difference between the two would drift the counts
run after run (or stop an incremental run with ``CountsMismatch``), so they are compared here
key for key, on hand-made texts that hit every rule and on real articles.
"""

from __future__ import annotations

import gzip
import json
import random

import pytest

from search.accent_tally import _is_title, _Scan, count_batch, count_texts
from search.store.accent_files import AccentCounts, AccentRun
from tests.conftest import shared_path

# Every rule: sentence starts (``.``, ``:``, quotes, line breaks) and capitals away from them,
# digits inside a phrase, commas, underscores, tabs and no-break spaces, a token starting a
# text, decomposed diacritics, shouted and mixed-case words.
TEXTS = [
    ["Lào Cai, cải bắp", "Nông dân Lào Cai trồng cải.\nLào Cai mưa"],
    ["Năm 2024 Hà Nội đón khách", "ngày 6/2 Hà Nội: \u201cSa Pa\u201d đẹp"],
    ["iPhone HÀ NỘI Hà\tNội Hà\u00a0Nội Hà_Nội", "Ho\u0300a Bình  và\n\nHòa Bình"],
    ["", "x² Mỹ kỹ thuật", "(Lào Cai) Sa Pa; [Hà Giang]"],
    ["A", "B c", "3 Lào Cai", "Lào 3 Cai"],
]


def _counted_both_ways(documents: list[list[str]], fold_rows: int) -> tuple:
    run = AccentRun(fold_rows)
    for first in range(0, len(documents), 2):
        run.add(count_batch(documents[first : first + 2]))
    tally = None
    for document in documents:
        tally = count_texts(document, tally)
    assert tally is not None
    return run.counts(), AccentCounts.empty().add(tally)


def test_the_hand_made_texts_count_as_expected() -> None:
    tally = count_texts(TEXTS[0])
    assert tally.bigrams[("lào", "cai")] == 3
    assert tally.bigrams[("cai", "cải")] == 0  # the comma ends the phrase
    assert tally.bigrams[("cải", "lào")] == 0  # so does the sentence end
    assert tally.titles["lào"] == 1  # ``Nông dân Lào``: the other two open a text or a sentence
    assert tally.second_titles[("dân", "lào")] == 1
    assert tally.first_titles[("lào", "cai")] == 1
    numbers = count_texts(TEXTS[1])
    assert numbers.unigrams["2024"] == 0 and numbers.unigrams["6"] == 0
    assert numbers.bigrams[("năm", "hà")] == 0  # the number between them breaks the chain
    assert numbers.titles["hà"] == 2  # after a number: not a sentence start
    assert numbers.titles["sa"] == 0  # after an opening quote: a sentence start
    spaces = count_texts(TEXTS[2])
    assert spaces.bigrams[("hà", "nội")] == 3  # capitals, a tab, a no-break space: not ``_``
    assert spaces.titles["hà"] == 3 and spaces.titles["iphone"] == 0
    assert spaces.unigrams["hòa"] == 2  # decomposed or not


@pytest.mark.parametrize("fold_rows", [1, 5, 10**9])
def test_arrays_count_what_the_tally_counts(fold_rows: int) -> None:
    ours, theirs = _counted_both_ways(TEXTS, fold_rows)
    assert ours.equals(theirs)
    assert ours.syllables.tolist()[:3] == ["a", "b", "bình"]  # numbers are never counted


def test_random_texts_count_the_same() -> None:
    rnd = random.Random(11)
    pieces = list("aAđĐàÀ _.,!?…:\n\r\"“”'‘’([]) \t\u00a0\u2028")
    pieces += ["Hà", "Nội", "2020", "HÀ", "x²"]
    documents = [
        ["".join(rnd.choice(pieces) for _ in range(rnd.randint(0, 40))) for _ in range(3)]
        for _ in range(400)
    ]
    ours, theirs = _counted_both_ways(documents, 50)
    assert ours.equals(theirs)
    assert len(theirs.syllables) > 5 and len(theirs.pairs) > 5


def test_real_articles_count_the_same() -> None:
    path = shared_path("news-baomoi", "baomoi-000.jsonl.gz")
    documents = []
    with gzip.open(path, "rt", encoding="utf-8") as lines:
        for line in lines:
            record = json.loads(line)
            documents.append([record.get(k) or "" for k in ("title", "sapo", "body")])
            if len(documents) == 300:
                break
    ours, theirs = _counted_both_ways(documents, 20_000)
    assert ours.equals(theirs)
    assert len(theirs.pairs) > 10_000


def test_an_empty_batch_adds_nothing() -> None:
    run = AccentRun(10)
    run.add(count_batch([["", "2024 - 25"], []]))
    counts = run.counts()
    assert len(counts.syllables) == 0 and len(counts.pairs) == 0


def test_titles_are_found_by_the_rule() -> None:
    rnd = random.Random(5)
    words = ["Hà", "hà", "HÀ", "iPhone", "A", "a", "Ǆa", "ǅa", "Ab1", "Đà", "x²", "中b", "A中b"]
    for _ in range(300):
        text = " ".join(rnd.choice(words) for _ in range(rnd.randint(1, 12)))
        scan = _Scan(text)
        tokens = text.split()
        digits = {j for j, t in enumerate(tokens) if any(c.isdecimal() for c in t)}
        expected = [j for j, t in enumerate(tokens) if j not in digits and _is_title(t)]
        assert scan.titled == expected, text
