"""The ways people type a query: derived forms for the known-item evaluation.

Each function takes the query as written (NFC, with diacritics) and returns one typed form:

* ``unaccented``: every diacritic removed, ``đ`` -> ``d``, lower case (``search.text.fold``).
* ``telex``: the keystrokes of the Telex input method, modifier keys inline and the tone key at the
  end of each syllable (``Đà Nẵng`` -> ``ddaf nawngx``), lower case.
* ``nfd_other_tone``: decomposed (NFD) and with the other tone-mark placement on the open rhymes
  ``oa``/``oe``/``uy`` (``hòa`` <-> ``hoà``; never after ``qu``: ``quý`` stays).
* ``short``: the first five words (syllables) of the query; ``short_unaccented`` the same, folded.

``derive_forms`` gives every title-derived form at once; the ``abstract`` form is the abstract
query itself and is not derived here.
"""

from __future__ import annotations

import re
import unicodedata

from search.text import fold

# Forms derived from a title query, in table order; "abstract" is the abstract query as given.
TITLE_FORMS: tuple[str, ...] = (
    "accented",
    "unaccented",
    "telex",
    "nfd_other_tone",
    "short",
    "short_unaccented",
)
ALL_FORMS: tuple[str, ...] = (*TITLE_FORMS, "abstract")
SHORT_WORDS = 5

# NFD combining marks -> Telex keys.
_TONE_KEYS = {
    "\u0301": "s",  # sắc
    "\u0300": "f",  # huyền
    "\u0309": "r",  # hỏi
    "\u0303": "x",  # ngã
    "\u0323": "j",  # nặng
}
_BREVE, _CIRCUMFLEX, _HORN = "\u0306", "\u0302", "\u031b"
_LETTER_RUN_RE = re.compile(r"[^\W\d_]+")
_WORD_RE = re.compile(r"\w+")
_VOWELS = "aeiouyăâêôơư"
# An open rhyme oa/oe/uy after an optional onset; "qu" is excluded by the caller.
_OPEN_GLIDE_RE = re.compile(rf"^([^{_VOWELS}]*)(?:(o)([ae])|(u)(y))$")


def unaccented(query: str) -> str:
    """Fold every character: no diacritics, ``đ`` -> ``d``, lower case.

    >>> unaccented("Đường phố Hà Nội")
    'duong pho ha noi'
    """
    return "".join(fold(char) for char in unicodedata.normalize("NFC", query))


def _telex_syllable(syllable: str) -> str:
    """Telex keystrokes for one run of letters (already lower case)."""
    keys: list[str] = []
    tone = ""
    for char in syllable:
        if char == "đ":
            keys.append("dd")
            continue
        decomposed = unicodedata.normalize("NFD", char)
        base, marks = decomposed[0], decomposed[1:]
        keys.append(base)
        for mark in marks:
            if mark in _TONE_KEYS:
                tone = _TONE_KEYS[mark]
            elif mark == _CIRCUMFLEX:
                keys.append(base)
            elif mark in (_BREVE, _HORN):
                keys.append("w")
    return "".join(keys) + tone


def telex(query: str) -> str:
    """Type the query in Telex: ``ă=aw â=aa ê=ee ô=oo ơ=ow ư=uw đ=dd``, tone key last.

    Digits and punctuation are left as they are; everything is lower case.

    >>> telex("Đà Nẵng"), telex("người")
    ('ddaf nawngx', 'nguwowif')
    """
    text = unicodedata.normalize("NFC", query).lower()
    return _LETTER_RUN_RE.sub(lambda m: _telex_syllable(m.group(0)), text)


def _other_tone_syllable(word: str) -> str:
    """Move the tone mark to the other vowel of an open ``oa``/``oe``/``uy`` rhyme, else as is."""
    nfc = unicodedata.normalize("NFC", word)
    lowered = nfc.lower()
    if lowered.startswith("qu"):
        return nfc
    tone = ""
    tone_at = -1
    bare_chars: list[str] = []
    for index, char in enumerate(nfc):
        decomposed = unicodedata.normalize("NFD", char)
        marks = [m for m in decomposed[1:] if m in _TONE_KEYS]
        if marks:
            tone, tone_at = marks[0], index
            decomposed = "".join(c for c in decomposed if c not in _TONE_KEYS)
        bare_chars.append(unicodedata.normalize("NFC", decomposed))
    if not tone:
        return nfc
    bare = "".join(bare_chars)
    match = _OPEN_GLIDE_RE.match(bare.lower())
    if not match:
        return nfc
    first = len(match.group(1))
    second = first + 1
    if tone_at not in (first, second):
        return nfc
    target = second if tone_at == first else first
    bare_chars[target] = unicodedata.normalize("NFC", bare_chars[target] + tone)
    return "".join(bare_chars)


def other_tone_placement(query: str) -> str:
    """Swap old and new tone placement on open ``oa``/``oe``/``uy`` syllables (NFC result).

    >>> other_tone_placement("hòa bình Quý khoẻ Thủy")
    'hoà bình Quý khỏe Thuỷ'
    """
    text = unicodedata.normalize("NFC", query)
    return _WORD_RE.sub(lambda m: _other_tone_syllable(m.group(0)), text)


def nfd_other_tone(query: str) -> str:
    """The other tone placement (see ``other_tone_placement``), then decomposed to NFD."""
    return unicodedata.normalize("NFD", other_tone_placement(query))


def short(query: str, words: int = SHORT_WORDS) -> str:
    """The query up to its ``words``-th word (a whitespace token with a letter or digit).

    >>> short("Bản án cho đối tượng giả danh công an")
    'Bản án cho đối tượng'
    >>> short('VKSND tỉnh - “nữ hoàng lục bình”')
    'VKSND tỉnh - “nữ hoàng lục'
    """
    kept: list[str] = []
    count = 0
    for token in query.split():
        kept.append(token)
        if _WORD_RE.search(token):
            count += 1
            if count == words:
                break
    return " ".join(kept)


def short_unaccented(query: str, words: int = SHORT_WORDS) -> str:
    """``short`` then ``unaccented``."""
    return unaccented(short(query, words))


def derive_forms(query: str) -> dict[str, str]:
    """Every title-derived form of ``query``, keyed by form name (see ``TITLE_FORMS``)."""
    return {
        "accented": query,
        "unaccented": unaccented(query),
        "telex": telex(query),
        "nfd_other_tone": nfd_other_tone(query),
        "short": short(query),
        "short_unaccented": short_unaccented(query),
    }
