"""Vietnamese text normalisation and folding.

Everything that decides whether two spellings are "the same word" lives here, so the indexer and
the query parser can never disagree:

* ``normalize_with_spans`` makes text NFC, reads the look-alike ``Ð`` (U+00D0) as ``Đ`` and drops
  zero-width characters, while remembering where each character came from in the original, so
  highlights land on what the author wrote.
* ``canonical_syllable`` gives one spelling per syllable: lower case, one tone-mark placement
  for the open rhymes ``oa``/``oe``/``uy`` (``hoà`` = ``hòa``), and ``i`` for a lone ``y``
  rhyme after a consonant (``kỹ`` = ``kĩ``, never ``tay`` = ``tai``).
* ``fold`` strips every diacritic (``đ`` -> ``d``) with one ``str.translate``: Vietnamese
  folding maps one character to one, so it costs next to nothing per token.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from unidecode import unidecode

ZERO_WIDTH = "\u200b\u200c\u200d\u2060\ufeff\u00ad"
_LOOKALIKES = str.maketrans({"\u00d0": "\u0110"})  # Ð (Icelandic eth) -> Đ

# Combining marks that carry the five Vietnamese tones (NFD).
TONE_MARKS = "\u0300\u0301\u0303\u0309\u0323"
_TONE_SET = frozenset(TONE_MARKS)
# Onsets that can stand before an open oa/oe/uy or a lone i/y rhyme.  ``qu`` and ``gi`` are absent
# on purpose: in ``quý`` and ``giá`` the u/i belongs to the onset and the tone stays where it is.
_ONSETS = "b|c|ch|d|đ|g|gh|h|k|kh|l|m|n|ng|ngh|nh|p|ph|r|s|t|th|tr|v|x"
_OPEN_GLIDE_RE = re.compile(rf"^({_ONSETS})?(o)(a|e)$|^({_ONSETS})?(u)(y)$")
_LONE_IY_RE = re.compile(rf"^({_ONSETS})(i|y)$")


def _build_fold_table() -> dict[int, str]:
    """Map every precomposed Latin letter to its bare ASCII letter (``ệ`` -> ``e``)."""
    table: dict[int, str] = {}
    for code in list(range(0x00C0, 0x0250)) + list(range(0x1E00, 0x1F00)):
        char = chr(code)
        base = unicodedata.normalize("NFD", char)[0]
        if base.isascii() and base.isalpha():
            table[code] = base
    for char, base in (("đ", "d"), ("Đ", "D"), ("\u00d0", "D")):
        table[ord(char)] = base
    for mark in range(0x0300, 0x0370):  # stray combining marks vanish when folding
        table[mark] = None  # type: ignore[assignment]
    return table


FOLD_TABLE = _build_fold_table()


def normalize_with_spans(text: str) -> tuple[str, list[int] | None, list[int] | None]:
    """Return ``(normalised, starts, ends)``.

    ``normalised`` is NFC, with ``Ð`` read as ``Đ`` and zero-width characters removed.  ``starts``
    and ``ends`` are ``None`` when every character kept its place (the common case: NFC text with
    no zero-width characters); otherwise character ``i`` of ``normalised`` came from
    ``text[starts[i]:ends[i]]`` (a whole cluster of base letter and combining marks).

    >>> normalize_with_spans("Ho\u0300a")
    ('Hòa', [0, 1, 3], [1, 3, 4])
    """
    if text.isascii():
        return text, None, None
    # Six substring tests are C scans, five times faster than a character-class regex search.
    if unicodedata.is_normalized("NFC", text) and not any(z in text for z in ZERO_WIDTH):
        return (text.translate(_LOOKALIKES) if "\u00d0" in text else text), None, None
    out: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    i, n = 0, len(text)
    while i < n:
        j = i + 1
        while j < n and unicodedata.combining(text[j]):
            j += 1
        for char in unicodedata.normalize("NFC", text[i:j]):
            if char not in ZERO_WIDTH:
                out.append(char)
                starts.append(i)
                ends.append(j)
        i = j
    return "".join(out).translate(_LOOKALIKES), starts, ends


def map_span(
    start: int, end: int, starts: list[int] | None, ends: list[int] | None
) -> tuple[int, int]:
    """Map ``[start, end)`` of normalised text back to the original text."""
    if starts is None or ends is None or end <= start:
        return start, end
    return starts[start], ends[end - 1]


def normalize(text: str) -> str:
    """NFC, ``Ð`` -> ``Đ``, no zero-width characters (see ``normalize_with_spans``)."""
    return normalize_with_spans(text)[0]


def _split_tone(syllable: str) -> tuple[str, str]:
    """Split a syllable into its NFC letters without tone and the tone mark ('' for none)."""
    decomposed = unicodedata.normalize("NFD", syllable)
    tone = "".join(c for c in decomposed if c in _TONE_SET)
    bare = "".join(c for c in decomposed if c not in _TONE_SET)
    return unicodedata.normalize("NFC", bare), tone[:1]


def _with_tone(letter: str, tone: str) -> str:
    return unicodedata.normalize("NFC", letter + tone) if tone else letter


@lru_cache(maxsize=200_000)
def canonical_syllable(token: str) -> str:
    """The one spelling a syllable is indexed and searched under.

    >>> [canonical_syllable(s) for s in ["Hoà", "khoẻ", "thuỷ", "quý", "kỹ", "Mỹ", "tay", "giá"]]
    ['hòa', 'khỏe', 'thủy', 'quý', 'kĩ', 'mĩ', 'tay', 'giá']
    """
    lowered = token.lower()
    if lowered.isascii():
        match = _LONE_IY_RE.match(lowered)
        return f"{match.group(1)}i" if match and match.group(2) == "y" else lowered
    bare, tone = _split_tone(lowered)
    match = _OPEN_GLIDE_RE.match(bare)
    if match:
        if match.group(2):
            onset, first, second = match.group(1) or "", match.group(2), match.group(3)
        else:
            onset, first, second = match.group(4) or "", match.group(5), match.group(6)
        return onset + _with_tone(first, tone) + second
    match = _LONE_IY_RE.match(bare)
    if match:
        return match.group(1) + _with_tone("i", tone)
    return unicodedata.normalize("NFC", lowered)


@lru_cache(maxsize=200_000)
def fold(token: str) -> str:
    """Lower case, no diacritics, ``đ`` -> ``d``; anything still non-ASCII goes through unidecode.

    >>> fold("Đà Nẵng"), fold("NGƯỜI"), fold("Ð")
    ('da nang', 'nguoi', 'd')
    """
    folded = token.translate(FOLD_TABLE).lower()
    if folded.isascii():
        return folded
    return unidecode(folded).lower()


def folded_regex(term: str) -> str:
    """A regular expression for a folded term in folded text, where a lone ``i``/``y`` rhyme may be
    spelled either way: ``ki`` (the term of ``kì`` and ``kỳ``) also matches ``ky``."""
    match = _LONE_IY_RE.match(term)
    if match and match.group(2) == "i":
        return re.escape(match.group(1)) + "[iy]"
    return re.escape(term)


def folded_spellings(term: str) -> tuple[str, ...]:
    """The spellings ``folded_regex(term)`` matches: ``ki`` and ``ky`` for ``ki``."""
    match = _LONE_IY_RE.match(term)
    if match and match.group(2) == "i":
        return (match.group(1) + "i", match.group(1) + "y")
    return (term,)


def has_diacritics(token: str) -> bool:
    """True when folding changes the token (``bán`` yes, ``ban`` no)."""
    return fold(token) != token.lower()
