"""pyvi word segmentation over syllables we tokenised ourselves.

pyvi's ``ViTokenizer.tokenize`` returns a string, losing character offsets; its CRF model only needs
the syllable sequence.  So we feed the model our own tokens (with their offsets intact) and apply
pyvi's own merge rules to its labels.  ``tests/test_segmentation.py`` pins that the result equals
``ViTokenizer.tokenize`` on real text.
"""

from __future__ import annotations

import string
import warnings
from functools import lru_cache

_PUNCT = frozenset(string.punctuation)


@lru_cache(maxsize=1)
def _model():
    """Load pyvi lazily: importing it costs ~1 s and 60 MB, which query-only processes never pay."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SyntaxWarning)
        from pyvi.ViTokenizer import ViTokenizer
    return ViTokenizer, ViTokenizer.model.tagger_


def _features(tokens: list[str]) -> list[dict]:
    """pyvi's ``word2features`` for every position, each token's values computed once."""
    vit, _ = _model()
    bi, tri = vit.bi_grams, vit.tri_grams
    lows = [t.lower() for t in tokens]
    titles = [t.istitle() for t in tokens]
    uppers = [t.isupper() for t in tokens]
    n = len(tokens)
    out = []
    for i in range(n):
        low = lows[i]
        f = {
            "bias": 1.0,
            "word.lower()": low,
            "word.isupper()": uppers[i],
            "word.istitle()": titles[i],
            "word.isdigit()": tokens[i].isdigit(),
        }
        if i > 0:
            f["-1:word.lower()"] = lows[i - 1]
            f["-1:word.istitle()"] = titles[i - 1]
            f["-1:word.isupper()"] = uppers[i - 1]
            f["-1:word.bi_gram()"] = f"{lows[i - 1]} {low}" in bi
            if i > 1:
                f["-2:word.tri_gram()"] = f"{lows[i - 2]} {lows[i - 1]} {low}" in tri
        if i < n - 1:
            f["+1:word.lower()"] = lows[i + 1]
            f["+1:word.istitle()"] = titles[i + 1]
            f["+1:word.isupper()"] = uppers[i + 1]
            f["+1:word.bi_gram()"] = f"{low} {lows[i + 1]}" in bi
            if i < n - 2:
                f["+2:word.tri_gram()"] = f"{low} {lows[i + 1]} {lows[i + 2]}" in tri
        out.append(f)
    return out


def word_starts(tokens: list[str]) -> list[bool]:
    """For each token, True when it starts a new word (pyvi's B_W after its merge rules).

    >>> word_starts(["hợp", "tác", "giữa", "Lào", "Cai"])
    [True, False, True, True, False]
    """
    if not tokens:
        return []
    _, tagger = _model()
    labels = tagger.tag(_features(tokens))
    starts = [True]
    for i in range(1, len(tokens)):
        cur, prev = tokens[i], tokens[i - 1]
        joined = (
            labels[i] == "I_W"
            and cur not in _PUNCT
            and prev not in _PUNCT
            and not cur[0].isdigit()
            and not prev[0].isdigit()
            and not (cur[0].istitle() and not prev[0].istitle())
        )
        starts.append(not joined)
    return starts


def segment(tokens: list[str]) -> list[str]:
    """Join tokens into pyvi words with ``_`` (``["Lào", "Cai"]`` -> ``["Lào_Cai"]``)."""
    words: list[str] = []
    for token, start in zip(tokens, word_starts(tokens), strict=True):
        if start or not words:
            words.append(token)
        else:
            words[-1] += "_" + token
    return words
