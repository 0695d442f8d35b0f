"""Hits, snippets and highlighting: turning ranked documents into one plain data structure.

Highlighting never re-runs the analyzer (pyvi is far too slow per hit): the stored text is folded
character by character (``text.fold_text`` keeps offsets for Vietnamese) and the query's folded
syllables are found with one regular expression, so an unaccented query marks the accented original.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from html import escape

from .documents import first_sentence
from .text import fold, fold_text, map_span, normalize_with_spans

Span = tuple[int, int]
MAX_SPANS = 400


def matcher_for(terms: Iterable[str]) -> re.Pattern[str] | None:
    """A regex finding any of the folded ``terms`` as whole syllables in folded text."""
    alternatives = sorted({t for t in terms if t}, key=len, reverse=True)
    if not alternatives:
        return None
    body = "|".join(re.escape(t) for t in alternatives)
    return re.compile(rf"(?<![^\W_])(?:{body})(?![^\W_])")


def _folded_view(text: str) -> tuple[str, list[int] | None, list[int] | None]:
    """Folded text, and the spans mapping it back to ``text`` (``None``: same offsets)."""
    norm, starts, ends = normalize_with_spans(text)
    folded = fold_text(norm)
    if len(folded) != len(norm):  # a character whose lower case is longer (rare outside Vietnamese)
        folded = "".join(f if len(f := fold(c)) == 1 else "?" for c in norm)
    return folded, starts, ends


def find_spans(text: str, pattern: re.Pattern[str] | None) -> list[tuple[int, int, str]]:
    """``(start, end, folded term)`` of every match, offsets into the original ``text``."""
    if pattern is None or not text:
        return []
    folded, starts, ends = _folded_view(text)
    spans = []
    for m in pattern.finditer(folded):
        s, e = map_span(*m.span(), starts, ends)
        spans.append((s, e, m.group()))
        if len(spans) >= MAX_SPANS:
            break
    return spans


def mark(
    text: str, spans: Iterable[tuple[int, int, str]], start: int = 0, end: int | None = None
) -> str:
    """Escaped ``text[start:end]`` with the spans inside it wrapped in ``<mark>``."""
    end = len(text) if end is None else end
    out: list[str] = []
    pos = start
    for s, e, _ in spans:
        if s < pos or e > end:
            continue
        out.append(escape(text[pos:s], quote=False))
        out.append(f"<mark>{escape(text[s:e], quote=False)}</mark>")
        pos = e
    out.append(escape(text[pos:end], quote=False))
    return "".join(out)


def _best_window(spans: list[tuple[int, int, str]], width: int) -> int:
    """Start offset of the window of ``width`` characters holding the most distinct terms."""
    best, best_start = (-1, -1), spans[0][0]
    for i, (s, _, _) in enumerate(spans):
        terms: set[str] = set()
        count = 0
        for _s2, e2, t2 in spans[i:]:
            if e2 - s > width:
                break
            terms.add(t2)
            count += 1
        score = (len(terms), count)
        if score > best:
            best, best_start = score, s
    return best_start


def snippet(text: str, pattern: re.Pattern[str] | None, width: int = 240) -> str:
    """HTML snippet: the best passage of ``text`` for the query, matches marked, cut on words."""
    text = " ".join(text.split())
    spans = find_spans(text, pattern)
    if len(text) <= width:
        return mark(text, spans)
    if not spans:
        start = 0
    else:
        focus = _best_window(spans, width)
        start = max(0, focus - width // 6)
        if start:
            space = text.rfind(" ", max(0, start - 20), start + 1)
            start = space + 1 if space >= 0 else start
    end = min(len(text), start + width)
    if end < len(text):
        space = text.rfind(" ", start + width // 2, end)
        end = space if space > 0 else end
    inner = mark(text, spans, start, end)
    return ("… " if start else "") + inner.strip() + (" …" if end < len(text) else "")


def display_title(stored: dict) -> str:
    """The stored title, or the first sentence of the text (display only)."""
    title = (stored.get("title") or "").strip()
    return title or first_sentence(stored.get("lead") or stored.get("body") or "")


def safe_url(url: str | None) -> str | None:
    """Only http(s) links leave the site; anything else (``javascript:``...) is dropped."""
    if not url:
        return None
    url = url.strip()
    return url if re.match(r"^https?://[^\s]+$", url, re.IGNORECASE) else None


def paragraphs_html(text: str, pattern: re.Pattern[str] | None) -> list[str]:
    """The text's paragraphs as escaped HTML with matches marked (for the article page)."""
    return [
        mark(p, find_spans(p, pattern)) for p in re.split(r"\n\s*\n|\n", text or "") if p.strip()
    ]
