"""Query plans: how typed words become concepts."""

from __future__ import annotations

import pytest

from search.query import parse
from search.ranking_params import DEFAULT_PARAMS

QUESTION_WEIGHT = DEFAULT_PARAMS.question_weight


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


def test_restoring_accents_gives_a_new_plan_and_leaves_the_old_one() -> None:
    # Plans may be cached and shared between searches: restoring accents must not change one.
    import copy

    from search.accents import CountsVocabulary

    vocab = CountsVocabulary.from_texts(["Mưa lớn ở Lào Cai.", "Lào Cai mưa lớn kéo dài."] * 3)
    plan = parse("lao cai mua lon")
    before = copy.deepcopy(plan)
    restored, suggestion = plan.with_restored_accents(vocab)
    assert plan == before and all(c.restored is None for c in plan.concepts)
    assert [c.restored for c in restored.concepts] == ["lào", None, "mưa", "lớn"]  # cai: as typed
    assert suggestion == "Lào Cai mưa lớn"
    assert parse("lào cai").with_restored_accents(vocab) == (parse("lào cai"), None)
