"""Read queries typed with the Vietnamese input method switched off (Telex or VNI keys).

Someone who meant ``Lào Cai`` but had Unikey off sends ``laof cai`` (with VNI, ``La2o Cai``).
The keys are still there, so the intended syllable can be rebuilt.  A decoded syllable is only a
*candidate* that the engine searches alongside the literal text, so a wrong guess costs a little
precision while a missed one costs recall; still, English and brand names (``covid``,
``facebook``) must never be "decoded".  Three things keep them out:

* the token must contain a key that changes it and the result must carry a diacritic;
* the result must be a well-formed Vietnamese syllable: known onset, known rhyme, onset/rhyme
  spelling rules (``k``/``gh``/``ngh`` before front vowels only...) and stop finals (``c ch p t``)
  with sắc or nặng only;
* a short list of common English tokens that happen to pass (``is``, ``us``, ``box``...) and
  VNI codes (``a4``, ``co2``) are *ambiguous*: ``decode_query`` decodes them only when another
  token of the same query was unmistakably Telex/VNI (``chaau as`` -> ``châu á``).

``encode_telex`` is the inverse (tone key at the end of each word), for tests and the benchmark.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from search.text import has_diacritics

# --- Vietnamese phonotactics -------------------------------------------------------------------

# Onsets as written, in Unicode.  ``gi`` and ``qu`` swallow their vowel letter; ``p`` and ``r``
# appear in loans and dialect words that news does print (``pin``, ``ra``).
ONSETS = frozenset(
    (
        "b",
        "c",
        "ch",
        "d",
        "đ",
        "g",
        "gh",
        "gi",
        "h",
        "k",
        "kh",
        "l",
        "m",
        "n",
        "ng",
        "ngh",
        "nh",
        "p",
        "ph",
        "qu",
        "r",
        "s",
        "t",
        "th",
        "tr",
        "v",
        "x",
    )
)

# Every rhyme (vowel nucleus with its glides and final consonant), without tone.
_OPEN_RHYMES = (
    "a e ê i o ô ơ u ư y ai ao au ay âu ây eo êu ia iu oa oe oi ôi ơi ua uê ui uy ưa ưi ưu uơ "
    "iêu yêu oai oao oay oeo uây uôi ươi ươu uya uyu"
)
_CLOSED_RHYMES = (
    "ac ach am an ang anh ap at ăc ăm ăn ăng ăp ăt âc âm ân âng âp ât "
    "ec em en eng ep et êch êm ên ênh êp êt ich im in inh ip it "
    "oc om on ong op ot ooc oong ôc ôm ôn ông ôp ôt ơm ơn ơp ơt "
    "uc um un ung up ut ưc ưm ưng ưt iêc iêm iên iêng iêp iêt yêm yên yêng yêt "
    "oac oach oam oan oang oanh oap oat oăc oăm oăn oăng oăt oen oet oem "
    "uân uâng uât uêch uênh uôc uôm uôn uông uôt ươc ươm ươn ương ươp ươt "
    "uych uyn uynh uyp uyt uyên uyêt"
)
RHYMES = frozenset((_OPEN_RHYMES + " " + _CLOSED_RHYMES).split())

_STOP_CODAS = ("ch", "c", "p", "t")
_CODAS = ("ch", "nh", "ng", "c", "m", "n", "p", "t")
_FRONT = frozenset("ieêy")
_VOWELS = frozenset("aăâeêioôơuưy")
_MARKED_VOWELS = frozenset("ăâêôơư")

# Tones are named by their Telex key: s sắc, f huyền, r hỏi, x ngã, j nặng.
_TONE_MARKS = {"s": "\u0301", "f": "\u0300", "r": "\u0309", "x": "\u0303", "j": "\u0323"}
_MARK_TO_TONE = {mark: key for key, mark in _TONE_MARKS.items()}
_STOP_TONES = frozenset("sj")

# Place names of the Central Highlands break the rules (final ``k``, ``k`` before ``o``) but are in
# the news every day: ``Đắk Lắk``, ``Đắk Nông``, ``Kon Tum``.
_PLACE_NAME_SYLLABLES = frozenset({("đ", "ăk"), ("l", "ăk"), ("k", "on"), ("k", "ông")})

# Letters a lone letter-name search may produce (``aa`` -> ``â``, ``dd`` -> ``đ``).
_BARE_LETTERS = frozenset({("", "â"), ("", "ă"), ("đ", "")})


def _coda(rhyme: str) -> str:
    """The final consonant of a rhyme ('' for an open rhyme)."""
    for coda in _CODAS:
        if rhyme.endswith(coda):
            return coda
    return ""


def _rhyme_fits_onset(onset: str, rhyme: str) -> bool:
    """Spelling rules that tie the onset to the rhyme.

    ``qu`` and ``gi`` already contain the glide/vowel (``quang`` = qu + oang sound, ``giếng`` =
    gi + iêng), so they are checked against the rhyme with that letter put back.
    """
    if onset == "qu":
        return "u" + rhyme in RHYMES or "o" + rhyme in RHYMES
    if onset == "gi":
        return rhyme in RHYMES or "i" + rhyme in RHYMES
    if rhyme not in RHYMES:
        return False
    first = rhyme[0]
    if onset in ("k", "gh", "ngh"):
        return first in _FRONT
    if onset in ("c", "ng"):
        return first not in _FRONT
    if onset == "g" and first in "eêy":  # ``gì``/``gìn`` are gi + i, written with one i
        return False
    if rhyme.startswith("iê"):
        return onset != ""  # without an onset it is written ``yê`` (``yêu``)
    return not (rhyme[0] == "y" and len(rhyme) > 1 and onset)  # ``tiên``, never ``tyên``


def _is_valid(onset: str, rhyme: str, tone: str | None) -> bool:
    """True when onset + rhyme + tone is a possible Vietnamese syllable."""
    if (onset, rhyme) in _BARE_LETTERS:
        return tone is None
    if (onset, rhyme) in _PLACE_NAME_SYLLABLES:
        return not rhyme.endswith("k") or tone in _STOP_TONES
    if onset not in ONSETS and onset:
        return False
    if not rhyme or not _rhyme_fits_onset(onset, rhyme):
        return False
    return _coda(rhyme) not in _STOP_CODAS or tone in _STOP_TONES


def _tone_position(rhyme: str) -> int:
    """Index of the vowel that carries the tone mark (old style: ``hòa``, ``thủy``).

    The old placement for open ``oa``/``oe``/``uy`` is what ``canonical_syllable`` indexes.
    """
    coda = _coda(rhyme)
    nucleus = rhyme[: len(rhyme) - len(coda)]
    if "ươ" in nucleus:
        return nucleus.index("ươ") + 1
    marked = [i for i, char in enumerate(nucleus) if char in _MARKED_VOWELS]
    if marked:
        return marked[-1]
    if coda or len(nucleus) == 1:
        return len(nucleus) - 1
    return 1 if len(nucleus) == 3 else 0


def _compose(onset: str, rhyme: str, tone: str | None) -> str:
    """Write the syllable with its tone mark on the right vowel, NFC."""
    if tone is None or not rhyme:
        return onset + rhyme
    i = _tone_position(rhyme)
    toned = unicodedata.normalize("NFC", rhyme[i] + _TONE_MARKS[tone])
    return onset + rhyme[:i] + toned + rhyme[i + 1 :]


def _split_tone(syllable: str) -> tuple[str, str | None]:
    """Return (syllable without tone, tone key or None)."""
    decomposed = unicodedata.normalize("NFD", syllable)
    tones = [_MARK_TO_TONE[c] for c in decomposed if c in _MARK_TO_TONE]
    bare = "".join(c for c in decomposed if c not in _MARK_TO_TONE)
    return unicodedata.normalize("NFC", bare), (tones[0] if tones else None)


def _split_onset_text(bare: str) -> tuple[str, str]:
    """Split an untoned Unicode syllable into onset and rhyme (``giường`` -> gi + ương)."""
    for size in (3, 2, 1):
        onset = bare[:size]
        if onset in ONSETS and len(onset) == size:
            rest = bare[size:]
            if onset == "gi" and not (set(rest) & _VOWELS):
                return "g", bare[1:]  # ``gìn`` = g + in
            return onset, rest
    return "", bare


@lru_cache(maxsize=65_536)
def is_valid_syllable(syllable: str) -> bool:
    """True when ``syllable`` (any case, NFC or not) is a possible Vietnamese syllable.

    >>> is_valid_syllable("người"), is_valid_syllable("tieng"), is_valid_syllable("covid")
    (True, False, False)
    """
    bare, tone = _split_tone(syllable.lower())
    onset, rhyme = _split_onset_text(bare)
    return _is_valid(onset, rhyme, tone)


# --- shared decoding ---------------------------------------------------------------------------

_ASCII_ONSETS = (
    "ngh",
    "ng",
    "nh",
    "ph",
    "th",
    "tr",
    "ch",
    "kh",
    "gh",
    "gi",
    "qu",
    "b",
    "c",
    "d",
    "g",
    "h",
    "k",
    "l",
    "m",
    "n",
    "p",
    "r",
    "s",
    "t",
    "v",
    "x",
)
_RHYME_KEYS = frozenset("aeiouycghkmnpt")  # k only for ``Đắk Lắk``
_CIRCUMFLEX = {"a": "â", "e": "ê", "o": "ô"}
_HORN = {"a": "ă", "o": "ơ", "u": "ư"}  # Telex ``w`` (and VNI 7/8) on each vowel
# ``ie``/``ye`` before a final (or u) only exists as ``iê``/``yê``; ``ưo`` + anything is ``ươ``;
# an open ``uă`` does not exist, so ``muaw`` meant ``mưa``.
_IE_RE = re.compile(r"([iy])e(?=[cmnptu])")
_UO_RE = re.compile(r"ưo(?=.)")
_UA_RE = re.compile(r"uă$")


def _split_onset_keys(token: str, *, telex: bool) -> tuple[str, str]:
    """Split typed keys into (onset, remaining keys); ``dd`` is đ in Telex."""
    if telex and token.startswith("dd"):
        return "đ", token[2:]
    for onset in _ASCII_ONSETS:
        if token.startswith(onset):
            rest = token[len(onset) :]
            if onset == "gi" and not any(c in "aeiouyw" for c in rest):
                return "g", token[1:]  # ``gif`` = g + ì
            return onset, rest
    return "", token


def _has_vowel(chars: list[str]) -> bool:
    return any(c in _VOWELS for c in chars)


def _finish(onset: str, candidates: list[str], tone: str | None, uo_horn: bool) -> str | None:
    """Return the first candidate rhyme that makes a valid syllable, composed with its tone."""
    tried: list[str] = []
    for rhyme in candidates:
        fixed = _UA_RE.sub("ưa", _UO_RE.sub("ươ", _IE_RE.sub(r"\1ê", rhyme)))
        tried += [rhyme, fixed]
        if uo_horn and fixed.endswith("ươ"):
            tried.append(fixed[:-2] + "uơ")  # ``thuowr`` -> ``thuở``
    for rhyme in tried:
        if _is_valid(onset, rhyme, tone):
            result = _compose(onset, rhyme, tone)
            return result if has_diacritics(result) else None
    return None


# --- Telex -------------------------------------------------------------------------------------

_TELEX_TONE_KEYS = frozenset("sfrxj")
# Tokens that decode to a valid syllable but are far more often English words or codes.
AMBIGUOUS_TELEX = frozenset(
    (
        "as",
        "is",
        "us",
        "of",
        "or",
        "if",
        "os",
        "ax",
        "ex",
        "ox",
        "box",
        "max",
        "tax",
        "sex",
        "six",
        "mix",
        "bus",
        "gas",
        "has",
        "his",
        "was",
        "how",
        "now",
        "this",
        "there",
        "these",
        "her",
        "more",
        "see",
        "been",
        "down",
        "taxi",
        "test",
        "bar",
    )
)


class _Telex:
    """Key-by-key state of one Telex syllable's rhyme (after the onset)."""

    __slots__ = ("chars", "tone", "floating_w", "uo_horn", "keyed")

    def __init__(self) -> None:
        self.chars: list[str] = []
        self.tone: str | None = None
        self.floating_w = False
        self.uo_horn = False
        self.keyed = False  # a Telex key was used: spelling fixes alone (tieng) do not count

    def tone_key(self, key: str) -> bool:
        """s f r x j set the tone once; a second tone key means the token is not Telex."""
        if not _has_vowel(self.chars) or self.tone is not None:
            return False
        self.tone = key
        return True

    def clear_tone(self) -> bool:
        """``z`` removes a tone typed before it (and is meaningless otherwise)."""
        if self.tone is None:
            return False
        self.tone = None
        return True

    def w(self) -> bool:
        """``w``: horn/breve on the vowel just typed, else on the nucleus later, else ``ư``."""
        chars = self.chars
        last = chars[-1] if chars else ""
        if last in _HORN:
            if last == "o" and len(chars) > 1 and chars[-2] == "u":
                chars[-2:] = ["ư", "ơ"]
                self.uo_horn = True
            else:
                chars[-1] = _HORN[last]
            return True
        if (last and last in "ăơư") or self.floating_w:
            return False  # ``ww`` undoes the mark: a literal w, which no rhyme has
        if not _has_vowel(chars):
            chars.append("ư")
            return True
        self.floating_w = True
        return True

    def vowel(self, key: str) -> None:
        """``aa``/``ee``/``oo`` put a circumflex; a third press gives the two plain letters back."""
        chars = self.chars
        if chars and chars[-1] == key and key in _CIRCUMFLEX:
            chars[-1] = _CIRCUMFLEX[key]
            self.keyed = True
        elif chars and key in _CIRCUMFLEX and chars[-1] == _CIRCUMFLEX[key]:
            chars[-1:] = [key, key]
        else:
            chars.append(key)

    def candidates(self) -> list[str]:
        """Rhymes to try; a ``w`` typed after the final consonant may belong to several vowels."""
        rhyme = "".join(self.chars)
        if not self.floating_w:
            return [rhyme]
        out = [rhyme.replace("uo", "ươ", 1)] if "uo" in rhyme else []
        out += [rhyme[:i] + _HORN[c] + rhyme[i + 1 :] for i, c in enumerate(rhyme) if c in _HORN]
        return out

    def horned_uo(self) -> bool:
        """Whether ``ươ`` came from ``uo`` + ``w``, so ``uơ`` (``thuở``) is a fallback."""
        return self.uo_horn or (self.floating_w and "uo" in "".join(self.chars))


def _decode_telex(token: str) -> str | None:
    onset, keys = _split_onset_keys(token, telex=True)
    state = _Telex()
    for key in keys:
        if key in _TELEX_TONE_KEYS:
            ok = state.keyed = state.tone_key(key)
        elif key == "z":
            ok = state.keyed = state.clear_tone()
        elif key == "w":
            ok = state.keyed = state.w()
        elif key in _RHYME_KEYS:
            state.vowel(key)
            ok = True
        else:
            ok = False
        if not ok:
            return None
    if not (state.keyed or onset == "đ"):
        return None
    return _finish(onset, state.candidates(), state.tone, state.horned_uo())


@lru_cache(maxsize=65_536)
def decode_token(token: str, *, allow_ambiguous: bool = False) -> str | None:
    """The syllable a Telex-typed token stands for, or None.

    Lower-case NFC, tone placed the old way (``hoaf`` -> ``hòa``, as ``canonical_syllable``
    indexes it).  None for plain syllables (``lao``), non-syllables (``covid``) and, unless
    ``allow_ambiguous``, for common English words that happen to decode (``is``, ``box``).

    >>> decode_token("nguwowif"), decode_token("ddaf"), decode_token("facebook")
    ('người', 'đà', None)
    """
    lowered = token.lower()
    if not (lowered.isascii() and lowered.isalpha()):
        return None
    if lowered in AMBIGUOUS_TELEX and not allow_ambiguous:
        return None
    result = _decode_telex(lowered)
    return None if result == lowered else result


# --- VNI ---------------------------------------------------------------------------------------

_VNI_TONES = {"1": "s", "2": "f", "3": "r", "4": "x", "5": "j"}
# Chemistry codes that read as VNI (``co2`` -> ``cò``); decoded only in a VNI-typed query.
AMBIGUOUS_VNI = frozenset({"co2", "so2", "no2", "so3", "no3"})


def _vni_mark(chars: list[str], digit: str) -> bool:
    """Apply VNI 6 (circumflex), 7 (horn), 8 (breve) to the nearest fitting vowel before it."""
    rhyme = "".join(chars)
    if digit == "7" and "uo" in rhyme:
        i = rhyme.rindex("uo")
        chars[i : i + 2] = ["ư", "ơ"]
        return True
    targets = {"6": "aeo", "7": "ou", "8": "a"}[digit]
    for i in range(len(chars) - 1, -1, -1):
        if chars[i] in targets:
            chars[i] = _CIRCUMFLEX[chars[i]] if digit == "6" else _HORN[chars[i]]
            return True
    return False


def _decode_vni(token: str) -> str | None:
    onset, keys = _split_onset_keys(token, telex=False)
    chars: list[str] = []
    tone: str | None = None
    tone_typed = uo_horn = False
    for key in keys:
        if key in _VNI_TONES:
            if tone is not None or not _has_vowel(chars):
                return None
            tone, tone_typed = _VNI_TONES[key], True
        elif key == "0":
            if tone is None:
                return None
            tone = None
        elif key == "9":
            if onset != "d" or tone_typed:
                return None
            onset = "đ"
        elif key in "678":
            # Marks come before the tone digit: ``u17`` (a team) is not ``ứ``.
            if tone_typed or not _vni_mark(chars, key):
                return None
            uo_horn = uo_horn or (key == "7" and "ươ" in "".join(chars))
        elif key in _RHYME_KEYS:
            chars.append(key)
        else:
            return None
    return _finish(onset, ["".join(chars)], tone, uo_horn)


@lru_cache(maxsize=65_536)
def decode_vni_token(token: str, *, allow_ambiguous: bool = False) -> str | None:
    """The syllable a VNI-typed token stands for (``vie65t`` -> ``việt``), or None.

    The token needs a letter first and at least one digit.  Two-character tokens (``a4``, ``e5``,
    ``u2``) and chemistry codes (``co2``) are paper sizes, engines and formulas far more often
    than syllables, so they decode only with ``allow_ambiguous``.

    >>> decode_vni_token("d9a2"), decode_vni_token("u23"), decode_vni_token("2023")
    ('đà', None, None)
    """
    lowered = token.lower()
    if not (lowered.isascii() and lowered.isalnum() and lowered[:1].isalpha()):
        return None
    if lowered.isalpha():
        return None
    if (len(lowered) <= 2 or lowered in AMBIGUOUS_VNI) and not allow_ambiguous:
        return None
    return _decode_vni(lowered)


# --- queries -----------------------------------------------------------------------------------

_TOKEN_RE = re.compile(r"[^\W_]+")


def _decode_any(token: str, *, allow_ambiguous: bool) -> str | None:
    """Telex for letter-only tokens, VNI for tokens with digits; None for non-ASCII."""
    if not token.isascii():
        return None
    if token.isalpha():
        return decode_token(token, allow_ambiguous=allow_ambiguous)
    return decode_vni_token(token, allow_ambiguous=allow_ambiguous)


def _match_case(original: str, decoded: str) -> str:
    """``LAOF`` -> ``LÀO``, ``Laof`` -> ``Lào``, anything else lower case."""
    if len(original) > 1 and original.isupper():
        return decoded.upper()
    if original[:1].isupper():
        return decoded[:1].upper() + decoded[1:]
    return decoded


def decode_query(text: str) -> tuple[str, bool]:
    """Decode every Telex/VNI token of a query; return (text, whether anything changed).

    Ambiguous tokens (``as``, ``a4``) are decoded only when some other token decoded, i.e. the
    query was evidently typed with the input method off.

    >>> decode_query("laof cai"), decode_query("covid tphcm")
    (('lào cai', True), ('covid tphcm', False))
    """
    matches = list(_TOKEN_RE.finditer(text))
    decoded: dict[int, str] = {}
    for i, match in enumerate(matches):
        result = _decode_any(match.group(), allow_ambiguous=False)
        if result is not None:
            decoded[i] = result
    if not decoded:
        return text, False
    for i, match in enumerate(matches):
        if i not in decoded:
            result = _decode_any(match.group(), allow_ambiguous=True)
            if result is not None:
                decoded[i] = result
    pieces: list[str] = []
    last = 0
    for i, match in enumerate(matches):
        if i in decoded:
            pieces += [text[last : match.start()], _match_case(match.group(), decoded[i])]
            last = match.end()
    pieces.append(text[last:])
    return "".join(pieces), True


# --- encoding ----------------------------------------------------------------------------------

_WORD_RE = re.compile(r"[^\W\d_]+")
_MARK_KEYS = {"\u0302": None, "\u0306": "w", "\u031b": "w"}  # circumflex doubles the letter


def _encode_word(word: str) -> str:
    keys: list[str] = []
    tone = ""
    previous = ""
    for char in word:
        decomposed = unicodedata.normalize("NFD", char)
        base = "dd" if char == "đ" else decomposed[0]
        # A literal ``oo`` (``xoong``) is typed ``ooo``: ``oo`` alone would make ``ô``.
        keys.append("oo" if base == "o" == previous and len(decomposed) == 1 else base)
        previous = decomposed[0]
        for mark in decomposed[1:]:
            if mark in _MARK_TO_TONE:
                tone = _MARK_TO_TONE[mark]
            elif mark in _MARK_KEYS:
                keys.append(_MARK_KEYS[mark] or base)
    return "".join(keys) + tone


def encode_telex(text: str) -> str:
    """Type ``text`` in Telex with the input method off: ``Đà Nẵng`` -> ``ddaf nawngx``.

    Lower case; marks right after their vowel (``người`` -> ``nguwowif``), the tone key at the end
    of each word.  Non-letters are kept.
    """
    lowered = unicodedata.normalize("NFC", text).lower()
    return _WORD_RE.sub(lambda match: _encode_word(match.group()), lowered)
