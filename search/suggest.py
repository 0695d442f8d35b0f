"""Suggest-as-you-type: completions of what the reader has typed so far.

Candidates come from the index's own titles: every run of one to four syllables (``Lào Cai``,
``giá vàng``) counted over all titles, plus the titles themselves.  Keys are folded, so ``lao c``
completes to ``Lào Cai`` whatever the reader types.  The table is built once per index generation,
on first use, and answered with a binary search over sorted keys.
"""

from __future__ import annotations

import bisect
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from html import escape

from .text import fold, normalize

MAX_NGRAM = 4
_WORD_RE = re.compile(r"[^\W_]+(?:[.,][^\W_]+)*")


@dataclass(frozen=True, slots=True)
class Suggestion:
    text: str
    folded: str
    weight: float


def _folded_words(text: str) -> str:
    return " ".join(fold(w) for w in _WORD_RE.findall(text))


class SuggestionTable:
    """Sorted folded keys with their display text; built from titles."""

    def __init__(self, titles: Iterable[str]) -> None:
        phrase_counts: Counter[str] = Counter()
        displays: dict[str, Counter[str]] = {}
        title_entries: dict[str, str] = {}
        for raw in titles:
            title = " ".join(normalize(raw).split())
            words = _WORD_RE.findall(title)
            if not words:
                continue
            folded = [fold(w) for w in words]
            key = " ".join(folded)
            title_entries.setdefault(key, title)
            seen: set[str] = set()
            for size in range(1, MAX_NGRAM + 1):
                for i in range(len(words) - size + 1):
                    gram_key = " ".join(folded[i : i + size])
                    if gram_key in seen or (size == 1 and len(gram_key) < 2):
                        continue
                    seen.add(gram_key)
                    phrase_counts[gram_key] += 1
                    displays.setdefault(gram_key, Counter())[" ".join(words[i : i + size])] += 1
        entries: list[Suggestion] = []
        for key, count in phrase_counts.items():
            if count < 2 and " " in key:
                continue  # a phrase seen once is noise; whole titles cover it
            text = _display(displays[key])
            entries.append(Suggestion(text, key, count + 0.1 * key.count(" ")))
        phrase_keys = {e.folded for e in entries}
        entries.extend(
            Suggestion(title, key, 0.5)
            for key, title in title_entries.items()
            if key not in phrase_keys
        )
        entries.sort(key=lambda e: e.folded)
        self._entries = entries
        self._keys = [e.folded for e in entries]

    def __len__(self) -> int:
        return len(self._entries)

    def complete(self, prefix: str, limit: int = 8) -> list[Suggestion]:
        """Up to ``limit`` completions of ``prefix``, most frequent first."""
        key = _folded_words(prefix)
        if not key:
            return []
        if prefix[-1:].isspace():
            key += " "
        lo = bisect.bisect_left(self._keys, key)
        hi = bisect.bisect_left(self._keys, key + "\uffff", lo)
        matches = self._entries[lo:hi]
        if len(matches) > 2000:  # a one-letter prefix: look at the most frequent only
            matches = sorted(matches, key=lambda e: -e.weight)[:2000]
        best = sorted(matches, key=lambda e: (-e.weight, len(e.folded), e.folded))
        return best[:limit]


def _display(forms: Counter[str]) -> str:
    """The most frequent spelling, preferring one that is not all capitals."""
    ranked = sorted(forms.items(), key=lambda kv: (kv[0].isupper() and len(kv[0]) > 3, -kv[1]))
    return ranked[0][0]


def highlight_prefix(text: str, prefix: str) -> str:
    """Escaped ``text`` with the part the reader typed wrapped in ``<mark>``.

    >>> highlight_prefix("Lào Cai", "lao c")
    '<mark>Lào C</mark>ai'
    """
    typed = _folded_words(prefix)
    folded = fold(text)
    if len(folded) != len(text):
        return escape(text, quote=False)
    end = 0
    target = typed.replace(" ", "")
    count = 0
    for i, char in enumerate(folded):
        if count == len(target):
            break
        if char.isalnum():
            if char != target[count]:
                return escape(text, quote=False)
            count += 1
        end = i + 1
    if count < len(target):
        return escape(text, quote=False)
    return f"<mark>{escape(text[:end], quote=False)}</mark>{escape(text[end:], quote=False)}"
