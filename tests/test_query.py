"""Query plans: how typed words become concepts."""

from __future__ import annotations

import pytest

from search.query import QUESTION_WEIGHT, parse


def _weights(q: str) -> list[tuple[str, float, bool]]:
    return [(c.folded, c.weight, c.counted) for c in parse(q).concepts]


def test_question_words_weigh_little_and_need_not_match() -> None:
    assert _weights("giá vàng hôm nay như thế nào") == [
        ("gia", 1.0, True),
        ("vang", 1.0, True),
        ("hom", 1.0, True),
        ("nay", 1.0, True),
        ("nhu", QUESTION_WEIGHT, False),
        ("the", QUESTION_WEIGHT, False),
        ("nao", QUESTION_WEIGHT, False),
    ]


def test_a_question_phrase_anywhere_and_more_than_one() -> None:
    assert _weights("vì sao Lào Cai mưa bao nhiêu") == [
        ("vi", QUESTION_WEIGHT, False),
        ("sao", QUESTION_WEIGHT, False),
        ("lao", 1.0, True),
        ("cai", 1.0, True),
        ("mua", 1.0, True),
        ("bao", QUESTION_WEIGHT, False),
        ("nhieu", QUESTION_WEIGHT, False),
    ]


@pytest.mark.parametrize(
    "q",
    [
        "là gì",  # nothing but question words: they are the query
        "thế nào",
        "Lào gì",  # fewer than three words
        "sao Hỏa sáng",  # "sao" alone is no question phrase
    ],
)
def test_questions_are_left_alone(q: str) -> None:
    assert all(weight == 1.0 and counted for _, weight, counted in _weights(q))
