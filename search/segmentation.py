"""pyvi word segmentation over syllables we tokenised ourselves.

pyvi's ``ViTokenizer.tokenize`` returns a string, losing character offsets; its CRF model only needs
the syllable sequence.  So we feed the model our own tokens (with their offsets intact) and apply
pyvi's own merge rules to its labels.  ``tests/test_segmentation.py`` pins that the result equals
``ViTokenizer.tokenize`` on real text.

Two decoders of the same model give identical labels:

* ``word_starts`` (what the indexer runs): our own decoder (``_Decoder`` with ``search.crf``).
  Building pyvi's feature dicts and having pycrfsuite turn each into ``key:value`` strings and
  look them up cost ~5.5 us a token, most of indexing.  But a position's state score is a sum of
  weights that each depend on one token type (its lower-case form and three flags, as itself or
  as a neighbour) or on a pair or triple being in pyvi's n-gram list.  So each distinct token is
  turned once into an integer code; per position, numpy reads the weights from tables by code,
  bigrams from a bitmap and trigrams by ``searchsorted``, and adds them in crfsuite's order, so
  even the rounding is crfsuite's; then a tight Viterbi loop.  Several times faster (see
  ``bench/indexing.py``); the tables are built once per process, from the model file itself.
* ``word_starts_crfsuite``: pyvi's feature dicts through pyvi's crfsuite tagger, the reference
  the tests compare with and ``bench/indexing.py``'s "pyvi alone" floor.
"""

from __future__ import annotations

import codecs
import importlib.util
import logging
import pickle
import string
import warnings
from functools import lru_cache
from pathlib import Path

import numpy as np

from .crf import CrfModel, read_model, viterbi

log = logging.getLogger(__name__)

_PUNCT = frozenset(string.punctuation)
INSIDE = "I_W"  # pyvi's label for a syllable that continues the word before it
# pyvi's files, as ``ViTokenizer`` reads them: its pickled sklearn-crfsuite estimator (which holds
# the crfsuite model file's bytes) and its list of known bigrams and trigrams.
PYVI_MODEL = "pyvi3.pkl"
PYVI_WORDS = "words.txt"
# What a pickle or word list of another layout than the one read here raises.
_UNREADABLE = (OSError, ValueError, KeyError, TypeError, AttributeError, pickle.UnpicklingError)


@lru_cache(maxsize=1)
def _model():
    """Load pyvi lazily: importing it costs time and memory that query-only processes never need."""
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


def tag_crfsuite(tokens: list[str]) -> list[str]:
    """pyvi's labels for ``tokens``: its feature dicts through its own crfsuite tagger."""
    if not tokens:
        return []
    _, tagger = _model()
    return tagger.tag(_features(tokens))


def word_starts_crfsuite(tokens: list[str]) -> list[bool]:
    """``word_starts`` computed by pyvi's crfsuite tagger (the reference; 7-9x slower)."""
    labels = tag_crfsuite(tokens)
    starts = [True] * min(1, len(tokens))
    for i in range(1, len(tokens)):
        cur, prev = tokens[i], tokens[i - 1]
        joined = (
            labels[i] == INSIDE
            and cur not in _PUNCT
            and prev not in _PUNCT
            and not cur[0].isdigit()
            and not prev[0].isdigit()
            and not (cur[0].istitle() and not prev[0].istitle())
        )
        starts.append(not joined)
    return starts


# -- our decoder -------------------------------------------------------------------------------

# A token's code: bit 0 "never joined" (punctuation, or starts with a digit), bit 1 its first
# character is title case (both for pyvi's merge rules), bits 2-4 isdigit, istitle, isupper (the
# model's flags), then its lower-case form's row in the model tables (``mid``), then its id in
# pyvi's n-gram vocabulary (``gid``).  So ``code >> 2`` starts with (mid, isupper, istitle,
# isdigit), the row of its own scores, and ``code >> 3`` with (mid, isupper, istitle), what it
# contributes as a neighbour.
_NEVER, _FIRST_TITLE, _DIGIT, _TITLE, _UPPER = 1, 2, 4, 8, 16
_FLAG_BITS = 5
_UNSEEN = 0  # mid or gid of a form the model or the n-gram list never saw
_SPACED = 1  # gid of a token holding a space: n-grams must then be matched as strings
_CACHE_LIMIT = 1 << 17  # distinct tokens remembered (then forgotten at once) per process

# crfsuite starts a position's state score at 0.0 and adds the weights of its attributes in the
# order of pyvi's feature dict:
#   own:             bias, word.lower(), word.isupper(), word.istitle(), word.isdigit()
#   token before:    -1:word.lower(), -1:word.istitle(), -1:word.isupper(), and the pair's
#                    -1:word.bi_gram(); then -2:word.tri_gram() of the triple ending here
#   token after:     +1:word.lower(), +1:word.istitle(), +1:word.isupper(), and the pair's
#                    +1:word.bi_gram(); then +2:word.tri_gram() of the triple starting here
# The own part is summed once per token type (it starts the sum, so that is exact); then every
# other attribute is one ``+=`` over the positions that have it, in this order, so each state
# score is the very float crfsuite computes.  A missing attribute, or a False flag, is an added
# 0.0 (crfsuite adds nothing or ``weight * 0.0``): the same sum.


class _Codes(dict[str, int]):
    """Token -> code, computed on first sight (``dict.__missing__`` keeps the hits in C)."""

    def __init__(self, decoder: _Decoder) -> None:
        super().__init__()
        self.decoder = decoder

    def __missing__(self, token: str) -> int:
        if len(self) >= _CACHE_LIMIT:  # bounded: a long-lived indexer sees endless numbers
            self.clear()
        code = self[token] = self.decoder.code(token)
        return code


class _Decoder:
    """pyvi's CRF labels from integer token codes and numpy weight tables (see the module doc)."""

    def __init__(self, model: CrfModel, bi_grams: set[str], tri_grams: set[str]) -> None:
        self.label_names = model.labels
        self.inside = model.labels.index(INSIDE)
        self.transitions = model.transitions
        self.bi_grams, self.tri_grams = bi_grams, tri_grams
        self._lower_forms(model)
        self._own_table(model)
        self.prev = self._neighbour_table(model, "-1:")
        self.next = self._neighbour_table(model, "+1:")
        self.prev_tri = model.weights("-2:word.tri_gram()")
        self.next_tri = model.weights("+2:word.tri_gram()")
        self._ngram_tables(bi_grams, tri_grams)
        self.codes = _Codes(self)

    def _lower_forms(self, model: CrfModel) -> None:
        """A row (``mid``) per lower-case form the model knows, as itself or as a neighbour."""
        prefixes = ("word.lower():", "-1:word.lower():", "+1:word.lower():")
        forms = {a[len(p) :] for a in model.attributes for p in prefixes if a.startswith(p)}
        self.mid = {form: i for i, form in enumerate(sorted(forms), start=_UNSEEN + 1)}
        self.mid_count = len(self.mid) + 1
        self.mid_bits = self.mid_count.bit_length()
        self.gid_shift = self.mid_bits + _FLAG_BITS

    def _lower_weights(self, model: CrfModel, prefix: str) -> np.ndarray:
        """``(mid, labels)`` weights of ``prefix + form``; row ``_UNSEEN`` stays zero."""
        table = np.zeros((self.mid_count, len(model.labels)))
        for form, i in self.mid.items():
            table[i] = model.weights(prefix + form)
        return table

    def _own_table(self, model: CrfModel) -> None:
        """Slot 0 per (mid, isupper, istitle, isdigit), summed from 0.0 in pyvi's dict order."""
        w = model.weights
        flags = np.arange(8)[:, None]
        upper, title, digit = (flags >> 2) & 1, (flags >> 1) & 1, flags & 1
        own = 0.0 + w("bias") + self._lower_weights(model, "word.lower():")[:, None, :]
        own = own + upper * w("word.isupper()")
        own = own + title * w("word.istitle()")
        own = own + digit * w("word.isdigit()")
        self.own = own.reshape(-1, len(model.labels))  # row (mid << 3) | flags
        self.own_mask = (1 << (self.mid_bits + 3)) - 1

    def _neighbour_table(self, model: CrfModel, side: str) -> np.ndarray:
        """Slots of one neighbour block per (mid, isupper, istitle, bi_gram) of the neighbour.

        ``(rows, 4, labels)``: lower, istitle, isupper, bi_gram, in pyvi's dict order.
        """
        w = model.weights
        flags = np.arange(8)
        upper, title, bigram = (flags >> 2) & 1, (flags >> 1) & 1, flags & 1
        table = np.zeros((self.mid_count, 8, 4, len(model.labels)))
        table[:, :, 0] = self._lower_weights(model, f"{side}word.lower():")[:, None, :]
        table[:, :, 1] = title[:, None] * w(f"{side}word.istitle()")
        table[:, :, 2] = upper[:, None] * w(f"{side}word.isupper()")
        table[:, :, 3] = bigram[:, None] * w(f"{side}word.bi_gram()")
        self.neighbour_mask = (1 << (self.mid_bits + 2)) - 1
        return table.reshape(-1, 4, len(model.labels))  # row (mid, upper, title) << 1 | bigram

    def _ngram_tables(self, bi_grams: set[str], tri_grams: set[str]) -> None:
        """Ids (``gid``) for the syllables of pyvi's n-gram list; bigrams as a bitmap over id
        pairs (~4 MB, one lookup each), trigrams as sorted integers plus, per id, whether it
        occurs first, second or third in some trigram (to search only the few candidates)."""
        parts = sorted({p for gram in bi_grams | tri_grams for p in gram.split(" ")})
        self.gid = {form: i for i, form in enumerate(parts, start=_SPACED + 1)}
        self.gid_base = base = len(parts) + _SPACED + 1
        pairs = np.array([self._gram_code(g) for g in bi_grams], dtype=np.int64)
        self.bi_bits = np.zeros((base * base + 7) // 8, np.uint8)
        np.bitwise_or.at(self.bi_bits, pairs >> 3, (1 << (pairs & 7)).astype(np.uint8))
        triples = sorted(self._gram_code(g) for g in tri_grams)
        self.tri_codes = np.array(triples + [np.iinfo(np.int64).max], dtype=np.int64)
        self.tri_role = np.zeros((3, base), bool)
        for gram in tri_grams:
            for role, part in enumerate(gram.split(" ")):
                self.tri_role[role, self.gid[part]] = True

    def _gram_code(self, gram: str) -> int:
        code = 0
        for part in gram.split(" "):
            code = code * self.gid_base + self.gid[part]
        return code

    def code(self, token: str) -> int:
        """The code of one token (see ``_FLAG_BITS``); cached by ``self.codes``."""
        low = token.lower()
        # crfsuite looks attributes up as C strings: a NUL ends the name.
        mid = self.mid.get(low.partition("\0")[0], _UNSEEN)
        gid = _SPACED if " " in low else self.gid.get(low, _UNSEEN)
        # An empty token never joins (pyvi's rules would index its first character and fail).
        never = not token or token in _PUNCT or token[0].isdigit()
        bits = (
            _NEVER * never
            | _FIRST_TITLE * (bool(token) and token[0].istitle())
            | _DIGIT * token.isdigit()
            | _TITLE * token.istitle()
            | _UPPER * token.isupper()
        )
        return (gid << self.gid_shift) | (mid << _FLAG_BITS) | bits

    def ngrams(self, tokens: list[str], codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Whether each adjacent pair and triple of ``tokens`` is in pyvi's n-gram list (0/1)."""
        gids = codes >> self.gid_shift
        if (gids == _SPACED).any():  # a space inside a token: ids cannot tell "a b"+"c" apart
            return self._ngrams_as_strings(tokens)
        pairs = gids[:-1] * self.gid_base + gids[1:]
        bi = (self.bi_bits.take(pairs >> 3) >> (pairs & 7)) & 1
        first, middle, last = self.tri_role
        maybe = first.take(gids[:-2]) & middle.take(gids[1:-1]) & last.take(gids[2:])
        maybe = np.flatnonzero(maybe)
        triples = pairs.take(maybe) * self.gid_base + gids.take(maybe + 2)
        tri = np.zeros(len(gids) - 2, np.uint8)
        found = self.tri_codes.take(np.searchsorted(self.tri_codes, triples)) == triples
        tri[maybe] = found
        return bi, tri

    def _ngrams_as_strings(self, tokens: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """``ngrams`` the way ``_features`` computes them (for tokens holding spaces)."""
        lows = [t.lower() for t in tokens]
        bi = [f"{a} {b}" in self.bi_grams for a, b in zip(lows, lows[1:], strict=False)]
        tri = [" ".join(lows[i : i + 3]) in self.tri_grams for i in range(len(lows) - 2)]
        return np.array(bi, np.uint8), np.array(tri, np.uint8)

    def state_scores(self, tokens: list[str], codes: np.ndarray) -> np.ndarray:
        """``(positions, labels)`` state scores, summed as crfsuite sums them (see above)."""
        scores = self.own.take((codes >> 2) & self.own_mask, axis=0)
        if len(codes) < 2:
            return scores
        bi, tri = self.ngrams(tokens, codes)
        neighbour = ((codes >> 3) & self.neighbour_mask) << 1
        before = self.prev.take(neighbour[:-1] | bi, axis=0)  # what i-1 adds to i
        after = self.next.take(neighbour[1:] | bi, axis=0)  # what i+1 adds to i
        tri = tri[:, None]
        head = scores[1:]
        for k in range(4):
            head += before[:, k]
        scores[2:] += tri * self.prev_tri
        tail = scores[:-1]
        for k in range(4):
            tail += after[:, k]
        scores[:-2] += tri * self.next_tri
        return scores

    def _codes_of(self, tokens: list[str]) -> np.ndarray:
        return np.fromiter(map(self.codes.__getitem__, tokens), np.int64, len(tokens))

    def labels(self, tokens: list[str]) -> np.ndarray:
        """Label indices (into ``label_names``) of ``tokens``."""
        if not tokens:
            return np.zeros(0, np.uint8)
        return viterbi(self.state_scores(tokens, self._codes_of(tokens)), self.transitions)

    def word_starts(self, tokens: list[str]) -> list[bool]:
        """pyvi's merge rules over our labels, vectorised over the codes' merge bits."""
        if not tokens:
            return []
        codes = self._codes_of(tokens)
        inside = viterbi(self.state_scores(tokens, codes), self.transitions)[1:] == self.inside
        never = (codes & _NEVER) > 0
        first_title = (codes & _FIRST_TITLE) > 0
        joined = inside & ~never[1:] & ~never[:-1] & ~(first_title[1:] & ~first_title[:-1])
        return [True, *(~joined).tolist()]


@lru_cache(maxsize=1)
def _decoder() -> _Decoder:
    """Our decoder of pyvi's model, built once per process from pyvi's own files."""
    try:
        raw, bi_grams, tri_grams = _pyvi_files()
        model = read_model(raw)
    except _UNREADABLE as exc:
        log.warning("reading pyvi's model files failed (%s): loading pyvi itself", exc)
        vit, tagger = _model()
        model = read_model(Path(vit.model.modelfile.name).read_bytes())
        if list(model.labels) != tagger.labels():
            raise RuntimeError(f"pyvi's model labels {model.labels} != {tagger.labels()}") from exc
        bi_grams, tri_grams = vit.bi_grams, vit.tri_grams
    return _Decoder(model, bi_grams, tri_grams)


class _State:
    """Any object of pyvi's pickle, kept as the state it was pickled with."""

    def __init__(self, *args) -> None:
        self.args = args
        self.state: dict = {}

    def __setstate__(self, state) -> None:
        self.state = state


class _ModelUnpickler(pickle.Unpickler):
    """Reads pyvi's pickled estimator as plain states: only the bytes of its crfsuite model file
    are needed, and importing pyvi (sklearn-crfsuite, and through it scikit-learn, to rebuild the
    estimator) cost every process that segments 1.3 s, most of a small reindex.  No class or
    function of the pickle is ever called, but the one that rebuilds ``bytes``."""

    def find_class(self, module: str, name: str):
        if (module, name) == ("_codecs", "encode"):
            return codecs.encode
        return _State


def _pyvi_files() -> tuple[bytes, set[str], set[str]]:
    """The crfsuite model file pyvi's estimator holds, and pyvi's bigrams and trigrams, read
    from its package without importing it (``ViTokenizer`` reads the same two files)."""
    spec = importlib.util.find_spec("pyvi")
    if spec is None or not spec.submodule_search_locations:
        raise OSError("pyvi is not installed")
    models = Path(next(iter(spec.submodule_search_locations))) / "models"
    with open(models / PYVI_MODEL, "rb") as fh:
        estimator = _ModelUnpickler(fh).load()
    raw = estimator.state["modelfile"].state["__FILE_RESOURCE_DATA__"]
    if not isinstance(raw, bytes):
        raise ValueError(f"{PYVI_MODEL}: no model file in the estimator")
    bi_grams: set[str] = set()
    tri_grams: set[str] = set()
    for token in (models / PYVI_WORDS).read_text(encoding="utf-8").split("\n"):
        spaces = token.count(" ")
        if spaces == 1:
            bi_grams.add(token)
        elif spaces == 2:
            tri_grams.add(token)
    return raw, bi_grams, tri_grams


def tag(tokens: list[str]) -> list[str]:
    """pyvi's labels for ``tokens`` by our decoder (identical to ``tag_crfsuite``)."""
    decoder = _decoder()
    return [decoder.label_names[i] for i in decoder.labels(tokens).tolist()]


def word_starts(tokens: list[str]) -> list[bool]:
    """For each token, True when it starts a new word (pyvi's B_W after its merge rules).

    >>> word_starts(["hợp", "tác", "giữa", "Lào", "Cai"])
    [True, False, True, True, False]
    """
    return _decoder().word_starts(tokens)


def segment(tokens: list[str]) -> list[str]:
    """Join tokens into pyvi words with ``_`` (``["Lào", "Cai"]`` -> ``["Lào_Cai"]``)."""
    words: list[str] = []
    for token, start in zip(tokens, word_starts(tokens), strict=True):
        if start or not words:
            words.append(token)
        else:
            words[-1] += "_" + token
    return words
