"""Hits, snippets and highlighting: turning ranked documents into one plain data structure.

Highlighting never re-runs the analyzer (pyvi is far too slow per hit): each folded query syllable
is looked for in a folded copy of the stored text (``Lào``, ``LÃO`` -> ``lao``; one character
for one, so offsets carry over), with one C-speed regular-expression scan, and an unaccented query
marks the accented original.  Only text that is not NFC (rare) is normalised first.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from html import escape
from urllib.parse import urlsplit

import numpy as np

from . import kernels
from .config import SNIPPET_CHARS
from .documents import first_sentence
from .text import (
    FOLD_TABLE,
    canonical_syllable,
    fold,
    folded_regex,
    folded_spellings,
    map_span,
    normalize_with_spans,
)

Span = tuple[int, int, str]
MAX_SPANS = 200
SNIPPET_SPANS = 60  # matches a snippet weighs to find its passage (the rest cannot beat them)
SNIPPET_SCAN_CHARS = 4000  # the best passage is looked for in the first 4,000 characters
# ... unless the first 1,200 already show half the query's words (usually the lead does):
# scanning 4,000 characters of every hit was a third of a query's time (bench.latency).
SNIPPET_HEAD_CHARS = 1200


def _span_fold_table() -> dict[int, str]:
    """Lower case and no diacritics, one character for one (``Lào`` -> ``lao``), so a match in the
    folded copy of a text has the same offsets in the text itself."""
    table = {ord(c): c.lower() for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ"}
    table.update({code: base.lower() for code, base in FOLD_TABLE.items() if base})
    return table


_SPAN_FOLD = _span_fold_table()
_LUT_SIZE = 0x2000  # every letter the table folds is below U+2000
_FOLD_LUT = np.arange(_LUT_SIZE, dtype=np.uint32)
for _code, _char in _SPAN_FOLD.items():
    _FOLD_LUT[_code] = ord(_char)


_SPAN_TABLE = str.maketrans(_SPAN_FOLD)
SHORT_TEXT = 200  # below this length ``str.translate`` beats numpy's fixed cost (titles)


def fold_in_place(text: str) -> str:
    """``text`` folded character by character: same length, same offsets.

    A table lookup over the code points, compiled (``kernels.fold_codes``, else numpy's):
    ``str.translate`` with a dict works a character at a time in Python's dict lookups, a
    visible share of a query's time over ten snippets.  Short texts (titles) still use
    ``translate``: the fixed cost per call is more than translating them.
    """
    if text.isascii():
        return text.lower()
    if len(text) < SHORT_TEXT:
        return text.translate(_SPAN_TABLE)
    codes = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    return kernels.fold_codes(codes, _FOLD_LUT).tobytes().decode("utf-32-le", "surrogatepass")


_WORDLIKE = re.compile(r"[^\W_]+")  # letters and digits only: ``str.isalnum`` characters
_WORD_END = re.compile(r"[^\W_]*")  # the letters and digits from a position on
SKIP_WORDS_AFTER = 8
# Terms of letters and digits longer than this are found with ``str.find`` (``_whole_words``);
# single letters by a regular expression, which skips their many occurrences inside words in C.
# Compiling a query's pattern cost ~130 us, paid by nearly every query (its terms differ), and
# the regex scanned a hit's 1,200-character head in ~31 us against ~22 (stop 41).
FIND_LONGER_THAN = 1


@lru_cache(maxsize=1024)
def _compile(terms: tuple[str, ...]) -> tuple[re.Pattern[str], bool]:
    """The pattern finding ``terms`` as whole words, and whether its matches still need their left
    boundary checked (``Matcher.left_checked``).

    Plain ASCII alternatives run over the folded copy of the text: compiling classes of every
    accented letter instead gave patterns so large that compiling them dominated a query's time.
    A pattern that opens with the alternatives lets the regex engine skip, in C, every position
    whose character starts no term; a left-boundary lookbehind first made it try the lookbehind
    at every position: 30 us a 1,200-character head against 14.  When every term is letters and
    digits the lookbehind is not needed to find every match: a match starting inside a word
    stays inside that word (it can only be a term at a word's end), so it never hides a match
    at a word start, and ``find_spans`` drops it.  Other terms keep the lookbehind.
    """
    body = "|".join(folded_regex(t) for t in terms)
    if all(_WORDLIKE.fullmatch(t) for t in terms):
        return re.compile(rf"(?:{body})(?![^\W_])"), True
    return re.compile(rf"(?<![^\W_])(?:{body})(?![^\W_])"), False


@dataclass(frozen=True, slots=True)
class Matcher:
    """What to mark: a regex over the folded terms, and the accented forms some terms require."""

    pattern: re.Pattern[str] | None  # the terms a regex finds (``None``: none)
    exact: Mapping[str, frozenset[str]]
    words: tuple[frozenset[str], ...] = ()  # the query's words, each as the terms that show it
    left_checked: bool = False  # matches preceded by a letter or digit are to be dropped
    spellings: tuple[str, ...] = ()  # whole words ``str.find`` looks for (``_whole_words``)
    # Every whole word looked for (the regex's and ``spellings``), as the compiled search reads
    # them (``_word_codes``): their code points one after another, and where each ends.
    words_codes: tuple[tuple[str, ...], np.ndarray, np.ndarray, np.ndarray] | None = field(
        default=None, compare=False
    )
    # Whether a word as written is marked, where ``exact`` decides it (``find_spans``).
    shown: dict[str, bool] = field(default_factory=dict, compare=False)

    def words_shown(self, spans: Iterable[Span]) -> int:
        """How many of ``words`` the spans show (``ky`` shows the term ``ki``)."""
        seen = {t for _, _, t in spans}
        seen.update([t[:-1] + "i" for t in seen if t.endswith("y")])
        return sum(1 for word in self.words if not word.isdisjoint(seen))


def matcher_for(
    terms: Iterable[str],
    exact: Mapping[str, frozenset[str]] | None = None,
    words: Iterable[frozenset[str]] | None = None,
) -> Matcher | None:
    """Find the folded ``terms`` as whole syllables in original, accented text; a term in
    ``exact`` only where it is spelled as one of its accented forms (``giá``, not ``gia``).
    ``words`` groups the terms by query word (default: a word a term)."""
    alternatives = tuple(sorted({t for t in terms if t}, key=lambda t: (-len(t), t)))
    if not alternatives:
        return None
    groups = tuple(words) if words is not None else tuple(frozenset([t]) for t in alternatives)
    if all(_WORDLIKE.fullmatch(t) for t in alternatives):
        short = tuple(t for t in alternatives if len(t) <= FIND_LONGER_THAN)
        spellings = {
            s for t in alternatives if len(t) > FIND_LONGER_THAN for s in folded_spellings(t)
        }
        pattern = _compile(short)[0] if short else None
        found = tuple(sorted(spellings))
        codes = _word_codes((*short, *found))
        return Matcher(pattern, exact or {}, groups, True, found, codes)
    pattern, left_checked = _compile(alternatives)
    return Matcher(pattern, exact or {}, groups, left_checked)


def _word_codes(
    words: tuple[str, ...],
) -> tuple[tuple[str, ...], np.ndarray, np.ndarray, np.ndarray]:
    """``words`` as ``kernels.word_spans`` reads them: themselves, their code points one after
    another (uint32), where each ends (int32) and their hash table."""
    joined = bytearray("".join(words).encode("utf-32-le", "surrogatepass"))
    ends = np.cumsum([len(w) for w in words], dtype=np.int64).astype(np.int32)
    return words, np.frombuffer(joined, dtype=np.uint32), ends, kernels.word_slots(words)


@lru_cache(maxsize=1)
def _word_table() -> np.ndarray:
    """What ``kernels.word_spans`` reads of each code point below U+10000: its folded form
    (``_FOLD_LUT``), plus ``kernels.LETTER`` when that is a letter or digit (``str.isalnum``,
    the ``[^\\W_]`` of the patterns).  256 KB, made on first use."""
    codes = np.arange(0x10000, dtype=np.uint32)
    codes[:_LUT_SIZE] = _FOLD_LUT
    folded = codes.tobytes().decode("utf-32-le", "surrogatepass")
    letters = np.array([c.isalnum() for c in folded], dtype=bool)
    codes[letters] |= np.uint32(kernels.LETTER)
    return codes


def _words_in(prepared: Prepared, matcher: Matcher, limit: int | None) -> list[Span] | None:
    """``_whole_words`` of ``prepared``'s folded text, from the compiled loop that folds as it
    reads (``kernels.word_spans``): a ``str.find`` per spelling and a check of the characters
    around each occurrence, in Python, were most of a snippet's time.  ``None`` where the loop
    does not run (no numba, a character past U+FFFF)."""
    if matcher.words_codes is None:
        return None
    words, terms, ends, slots = matcher.words_codes
    most = len(prepared.norm) + 1 if limit is None else limit
    found = kernels.word_spans(prepared.codes(), _word_table(), terms, ends, slots, most)
    if found is None:
        return None
    return [(found[i], found[i + 1], words[found[i + 2]]) for i in range(0, len(found), 3)]


def _whole_words(folded: str, matcher: Matcher, limit: int | None = None) -> list[Span]:
    """The first ``limit`` (default: every) whole words of ``folded`` that are one of a
    letters-and-digits matcher's terms, in order: the matches of its whole-word pattern
    (``_compile``), without compiling one.

    A whole word starts and ends where no letter or digit stands beside it, so two never
    overlap: past an occurrence of a spelling, the next is looked for from its end; once a
    spelling was found inside words ``SKIP_WORDS_AFTER`` times, from the end of the word it
    was found in (a run of ``aaaa...`` is then one step, not one a letter; in ordinary text
    that lookup costs more than the next ``find``).  Each spelling, and the regex's single
    letters, gives at most ``limit``: the first ``limit`` of all of them sorted together are
    the pattern's first ``limit``."""
    most = len(folded) + 1 if limit is None else limit
    spans: list[Span] = []
    if matcher.pattern is not None:
        found = 0
        for m in matcher.pattern.finditer(folded):
            start = m.start()
            if not start or not folded[start - 1].isalnum():
                spans.append((start, m.end(), m.group()))
                found += 1
                if found >= most:
                    break
    find, size, word_end = folded.find, len(folded), _WORD_END.match
    for spelling in matcher.spellings:
        length, found, inside = len(spelling), 0, 0
        at = find(spelling)
        while at >= 0:
            end = at + length
            if (not at or not folded[at - 1].isalnum()) and (
                end == size or not folded[end].isalnum()
            ):
                spans.append((at, end, spelling))
                found += 1
                if found >= most:
                    break
                at = find(spelling, end)
            else:  # inside a longer word: after a few, look on from that word's end
                inside += 1
                at = find(
                    spelling, end if inside < SKIP_WORDS_AFTER else word_end(folded, at).end()
                )
    if matcher.spellings:
        spans.sort()
    return spans if limit is None else spans[:limit]


def plan_matcher(plan) -> Matcher | None:
    """The matcher marking a parsed query's words (``query.Plan``) in its hits."""
    return matcher_for(plan.highlight_terms(), plan.exact_terms(), plan.highlight_words())


class Prepared:
    """A text as ``find_spans`` reads it: NFC (with the offset maps when that moved characters)
    and, when a regular expression needs it, its folded copy (``folded``; the compiled search
    folds as it reads).  It does not depend on the query, so a worker keeps the prepared text
    of the articles it shows (``HitText``): the same article answers many queries."""

    __slots__ = ("text", "norm", "starts", "ends", "_folded")

    def __init__(
        self, text: str, norm: str, starts: list[int] | None, ends: list[int] | None
    ) -> None:
        self.text, self.norm, self.starts, self.ends = text, norm, starts, ends
        self._folded: str | None = None

    @property
    def folded(self) -> str:
        """``norm`` folded character by character (``fold_in_place``), made on first use."""
        if self._folded is None:
            self._folded = fold_in_place(self.norm)
        return self._folded

    def codes(self) -> np.ndarray:
        """``norm``'s code points (uint8 for ASCII text), for the compiled search."""
        norm = self.norm  # in a bytearray: the compiled loop takes writable arrays
        if norm.isascii():
            return np.frombuffer(bytearray(norm.encode("ascii")), dtype=np.uint8)
        encoded = bytearray(norm.encode("utf-32-le", "surrogatepass"))
        return np.frombuffer(encoded, dtype=np.uint32)


def prepare(text: str) -> Prepared:
    return Prepared(text, *normalize_with_spans(text))


def find_spans(text: str | Prepared, matcher: Matcher | None, limit: int = MAX_SPANS) -> list[Span]:
    """``(start, end, folded term)`` of the first ``limit`` matches, offsets into ``text``."""
    if matcher is None:
        return []
    prepared = text if isinstance(text, Prepared) else prepare(text)
    if not prepared.text:
        return []
    norm, starts, ends = prepared.norm, prepared.starts, prepared.ends
    exact = matcher.exact
    found: Iterable[Span]
    if matcher.left_checked:  # at most ``limit`` needed, unless some are left out below
        most = limit if starts is None and not exact else None
        compiled = _words_in(prepared, matcher, most)
        found = compiled if compiled is not None else _whole_words(prepared.folded, matcher, most)
    else:
        assert matcher.pattern is not None
        finds = matcher.pattern.finditer(prepared.folded)
        found = ((m.start(), m.end(), m.group()) for m in finds)
    if starts is None and not exact:  # the common case, without a branch per match
        return list(itertools.islice(found, limit))
    spans = []
    shown = matcher.shown
    for start, end, term in found:
        if exact:
            written = norm[start:end]
            keep = shown.get(written)
            if keep is None:  # decided once a query and spelling: hits repeat the same words
                word = canonical_syllable(written)
                key = fold(word)  # the index's term: ``Kỳ`` -> ``kì`` -> ``ki``
                keep = shown[written] = key not in exact or word in exact[key]
            if not keep:
                continue
        s, e = (start, end) if starts is None else map_span(start, end, starts, ends)
        spans.append((s, e, term))
        if len(spans) >= limit:
            break
    return spans


def _same(text: str) -> str:
    return text


def _escaped(text: str) -> str:
    return escape(text, quote=False)


def mark(
    text: str, spans: Iterable[tuple[int, int, str]], start: int = 0, end: int | None = None
) -> str:
    """Escaped ``text[start:end]`` with the spans inside it wrapped in ``<mark>``."""
    end = len(text) if end is None else end
    window = text[start:end]
    # News text rarely holds ``&<>``: then no piece needs ``html.escape`` (3 replaces each).
    esc = _escaped if "&" in window or "<" in window or ">" in window else _same
    out: list[str] = []
    pos = start
    for s, e, _ in spans:
        if s < pos or e > end:
            continue
        out.append(esc(text[pos:s]))
        out.append(f"<mark>{esc(text[s:e])}</mark>")
        pos = e
    out.append(esc(text[pos:end]))
    return "".join(out)


def _best_window(spans: list[Span], width: int) -> int:
    """Start offset of the window of ``width`` characters holding the most distinct terms (then
    the most matches; then the first)."""
    ends = [e for _, e, _ in spans]
    terms = [t for _, _, t in spans]
    n = len(spans)
    best_distinct, best_count, best_start = -1, -1, spans[0][0]
    counts: dict[str, int] = {}
    distinct = right = 0
    for left, (s, _, term) in enumerate(spans):
        limit = s + width
        while right < n and (ends[right] <= limit or right == left):  # a long match: itself
            seen = counts.get(terms[right], 0)
            distinct += not seen
            counts[terms[right]] = seen + 1
            right += 1
        if distinct > best_distinct or (distinct == best_distinct and right - left > best_count):
            best_distinct, best_count, best_start = distinct, right - left, s
        counts[term] -= 1
        distinct -= not counts[term]
    return best_start


def single_spaced(text: str) -> str:
    """``" ".join(text.split())``: whitespace runs become one space, none at either end.

    Most stored texts only break lines with one ``\n`` between words: a newline replaced by a
    space is then the whole job, without splitting the text into a list of words (40 us for the
    2,100 characters a snippet reads, against 10; the check below is C-speed scans).  Printable
    text holds no whitespace but the space, so without a run of spaces only a space at either
    end is left to drop (a fifth of the passages snippets read: cut after a line).
    """
    spaced = text.replace("\n", " ")
    if "  " in spaced or not spaced.isprintable():
        return " ".join(spaced.split())  # other whitespace, or runs of it
    return spaced.strip(" ")


class HitText:
    """A hit's text (lead and body) as snippets read it, prepared on first use.

    Whitespace is collapsed in as much text as a passage in the head can reach, and in the whole
    scanned part only when the head is not enough (splitting the whole scanned part of every hit
    was work most snippets never use).  Both start alike: ``text[:head]`` is the same either way.
    Collapsing, NFC and folding do not depend on the query: a worker keeps them with the article,
    so an article that answers many queries is prepared once.
    """

    __slots__ = ("original", "_heads", "_scans")

    def __init__(self, original: str) -> None:
        self.original = original
        self._heads: dict[int, tuple[str, int, Prepared, bool]] = {}
        self._scans: dict[int, tuple[str, Prepared]] = {}

    def head(self, width: int) -> tuple[str, int, Prepared, bool]:
        """The text a passage of ``width`` in the head can reach, where its head ends (on a
        space; -1: the text is all head), the head prepared, and whether the original is longer
        than the text."""
        found = self._heads.get(width)
        if found is None:
            reach = SNIPPET_HEAD_CHARS + 2 * width
            text = single_spaced(self.original[: reach + reach // 4])[:reach]
            cut = len(self.original) > reach + reach // 4
            head = text.rfind(" ", 0, SNIPPET_HEAD_CHARS) if len(text) > SNIPPET_HEAD_CHARS else -1
            found = (text, head, prepare(text[:head] if head > 0 else text), cut)
            self._heads[width] = found
        return found

    def scan(self, head: int) -> tuple[str, Prepared]:
        """The whole scanned text, and its part after ``head`` prepared."""
        found = self._scans.get(head)
        if found is None:
            text = single_spaced(self.original[: SNIPPET_SCAN_CHARS + SNIPPET_SCAN_CHARS // 4])
            text = text[:SNIPPET_SCAN_CHARS]
            found = (text, prepare(text[head:]))
            self._scans[head] = found
        return found


def snippet(text: str | HitText, pattern: Matcher | None, width: int = SNIPPET_CHARS) -> str:
    """HTML snippet: the best passage of ``text`` for the query, matches marked, cut on words."""
    source = text if isinstance(text, HitText) else HitText(text)
    text, head, head_text, cut = source.head(width)
    spans = find_spans(head_text, pattern, SNIPPET_SPANS)
    if pattern is not None and head > 0 and 2 * pattern.words_shown(spans) < len(pattern.words):
        text, rest_text = source.scan(head)
        cut = False
        rest = find_spans(rest_text, pattern, SNIPPET_SPANS)
        spans += [(s + head, e + head, t) for s, e, t in rest]
    if len(text) <= width and not cut:
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
    return ("… " if start else "") + inner.strip() + (" …" if end < len(text) or cut else "")


@dataclass(frozen=True, slots=True)
class HitView:
    """What a hit shows of an article, prepared for highlighting (kept with the article)."""

    title: str
    title_text: Prepared
    text: HitText

    @classmethod
    def of(cls, stored: dict) -> HitView:
        title = display_title(stored)
        body = "\n".join(t for t in (stored.get("lead"), stored.get("body")) if t)
        return cls(title, prepare(title), HitText(body))


def display_title(stored: dict) -> str:
    """The stored title, or the first sentence of the text (display only)."""
    title = (stored.get("title") or "").strip()
    return title or first_sentence(stored.get("lead") or stored.get("body") or "")


_SAFE_URL = re.compile(r"^https?://[^\s\x00-\x1f\x7f]+$", re.IGNORECASE)


def safe_url(url: str | None) -> str | None:
    """Only http(s) links leave the site; anything else (``javascript:``...) is dropped.

    Control characters (a NUL, a line break) and whitespace are refused, not written into an
    ``href``; so is a URL without a host.
    """
    if not url:
        return None
    url = url.strip()
    if not _SAFE_URL.match(url):
        return None
    try:
        host = urlsplit(url).netloc
    except ValueError:  # an invalid IPv6 host
        return None
    return url if host else None


def paragraphs_html(text: str, pattern: Matcher | None) -> list[str]:
    """The text's paragraphs as escaped HTML with matches marked (for the article page)."""
    return [
        mark(p, find_spans(p, pattern)) for p in re.split(r"\n\s*\n|\n", text or "") if p.strip()
    ]
