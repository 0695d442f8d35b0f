"""Our pyvi segmentation over our own tokens equals ``ViTokenizer.tokenize`` on real text."""

from __future__ import annotations

import json
import warnings

import pytest
from conftest import shared_path

from search.segmentation import segment, word_starts


def _vi_tokenizer():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SyntaxWarning)
        from pyvi.ViTokenizer import ViTokenizer
    return ViTokenizer


def _sentences(n: int) -> list[str]:
    path = shared_path("ud-vi-vtb", "vi_vtb-ud-test.ws.jsonl")
    out = []
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            out.append(json.loads(line)["text"])
            if len(out) == n:
                break
    return out


def test_segment_equals_pyvi_tokenize_on_200_treebank_sentences() -> None:
    vit = _vi_tokenizer()
    sentences = _sentences(200)
    assert len(sentences) == 200
    mismatches = []
    for text in sentences:
        _, syllables = vit.sylabelize(text)
        expected = vit.tokenize(text).split(" ")
        got = segment(syllables)
        if got != expected:
            mismatches.append((text, got, expected))
    assert mismatches == []


def test_segment_joins_known_compounds() -> None:
    assert segment(["hợp", "tác", "giữa", "Lào", "Cai"]) == ["hợp_tác", "giữa", "Lào_Cai"]


def test_punctuation_and_digits_are_never_joined() -> None:
    vit = _vi_tokenizer()
    text = "Ngày 4/3/2024 , giá tăng 12,5 % ."
    _, syllables = vit.sylabelize(text)
    words = segment(syllables)
    assert words == vit.tokenize(text).split(" ")
    for word in words:
        if "_" in word:
            parts = word.split("_")
            assert not any(p[0].isdigit() or not p[0].isalnum() for p in parts), word


@pytest.mark.parametrize("tokens", [[], ["Lào"]])
def test_trivial_inputs(tokens: list[str]) -> None:
    assert segment(tokens) == tokens
    assert word_starts(tokens) == [True] * len(tokens)
