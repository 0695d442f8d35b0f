"""Compiled loops for the per-posting work of a query, with numpy's operations as the fallback.

At a million articles a title query adds 1.5 million postings (4 million for a long one) into
its scores and counts, and numpy's ``np.add.at`` is the fastest numpy way to do it, at ~2 ns a
posting; the same loop compiled takes 0.6-0.75 ns (stop 39: a list of 250,000 postings into a
million scores, 151 us with numba's ``@njit`` against 354; 40 lists holding 4 million, 2.9 ms
as a C loop against 7.5, the same float32 sums bit for bit).  Block bounds
could not spare that work: on the 1M benchmark archive every 256-document block of a title
query's candidates could still reach the page (``docs/scaling-log.md``).

numba is imported on first use (0.4 s with its cache of compiled code, ~3.5 s compiling the
first time: the cache is ``search/__pycache__``, else numba's user-wide one, else
``NUMBA_CACHE_DIR``; where none can be written, each process compiles the loops), not when
``search`` is imported, so a command that never searches does not pay for it.  A serving engine
loads it in the thread that creates it, a server's worker before it serves: never beside other
threads, as numba parses the loops' source when it compiles them and CPython 3.11 before 3.11.5
miscounts when two threads build ASTs at once (gh-106905).  Where numba cannot be imported the
numpy operations run instead, with the same results, and a warning says so once;
``VNSEARCH_KERNELS=numpy`` chooses them (the reference implementation, for comparisons).

Each loop does exactly what its numpy counterpart does, in the same order: ``scale * weight``
rounded to float32 (numpy multiplies a float32 array by a Python float in float32), then added
to the float32 score; so scoring at a few documents (``Scorer.at``) and over every docnum
(``Scorer.dense``) still agree bit for bit.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable

import numpy as np

from .config import SettingsError, env_choice

log = logging.getLogger(__name__)

CHOICES = ("numba", "numpy")  # VNSEARCH_KERNELS

_lock = threading.Lock()
_loaded = False
_scatter_add: Callable | None = None
_scatter_units: Callable | None = None
_count_ones: Callable | None = None
_weights_at: Callable | None = None
_count_codes: Callable | None = None
_gather_held: Callable | None = None
_mark_ones: Callable | None = None
_spread: Callable | None = None
_fold_codes: Callable | None = None
_word_spans: Callable | None = None
_at_least: Callable | None = None
_best_path: Callable | None = None


def _compile() -> None:
    """Import numba and compile (or load from its cache) the loops, once a process."""
    global _loaded, _scatter_add, _scatter_units, _count_ones, _weights_at, _count_codes
    global _gather_held, _mark_ones, _spread, _fold_codes, _word_spans, _at_least, _best_path
    with _lock:
        if _loaded:
            return
        _loaded = True
        try:
            choice = env_choice("kernels", "numba", CHOICES)
        except SettingsError as exc:  # checked when a server starts (gunicorn.conf.py)
            log.warning("%s: per-posting work runs through numba", exc)
            choice = "numba"
        if choice == "numpy":
            log.info("VNSEARCH_KERNELS=numpy: per-posting work runs through numpy")
            return
        try:
            from numba import njit, types
        except Exception as exc:  # noqa: BLE001 - any failure to load means the numpy path
            log.warning("numba not available (%s): per-posting work runs through numpy", exc)
            return

        def arrays(dtype) -> list:
            return [types.Array(dtype, 1, "C", readonly=ro) for ro in (False, True)]

        float32s, int32s = arrays(types.float32), arrays(types.int32)
        scatter_types = [
            types.intp(float32s[0], ids, weights, types.float32)
            for ids, weights in zip(int32s, float32s, strict=True)
        ]
        units_types = [
            types.intp(types.Array(types.uint16, 1, "C"), ids, weights, types.float32)
            for ids, weights in zip(int32s, float32s, strict=True)
        ]
        count_types = [
            types.intp(types.Array(counter, 1, "C"), ids)
            for counter in (types.uint8, types.int16)
            for ids in int32s
        ]
        lookup_types = [
            types.void(ids, weights, docs, float32s[0])
            for ids, weights in zip(int32s, float32s, strict=True)
            for docs in (*int32s, *arrays(types.int64))
        ]
        int64s = arrays(types.int64)
        lanes = types.Array(types.int64, 2, "C")
        code_types = [
            types.intp(codes, docs, lanes) for codes in int32s for docs in (*int32s, *int64s)
        ]
        gather_types = [
            types.intp(partial, held, int64s[0], float32s[0], float32s[0], held, float32s[0])
            for partial in (float32s[0], arrays(types.uint16)[0])
            for held in (arrays(types.uint8)[0], arrays(types.int16)[0])
        ]
        mark_types = [types.intp(types.Array(types.boolean, 1, "C"), ids) for ids in int32s]
        spread_types = [
            types.intp(float32s[0], ids, weights)
            for ids, weights in zip(int32s, float32s, strict=True)
        ]
        uint32s = arrays(types.uint32)
        fold_types = [types.void(codes, uint32s[1], uint32s[0]) for codes in uint32s]
        span_types = [
            types.intp(codes, uint32s[0], uint32s[0], int32s[0], int32s[0], int32s[0])
            for codes in (uint32s[0], arrays(types.uint8)[0])
        ]
        least_types = [
            types.Array(types.int64, 1, "C")(types.Array(counter, 1, "C", readonly=ro), types.intp)
            for counter in (types.uint8, types.int16)
            for ro in (False, True)
        ]
        path_types = [
            types.intp(*int64s[:1] * 4, keys, counts, *[types.float64] * 3, int64s[0])
            for keys in arrays(types.uint64)
            for counts in int64s
        ]
        loops = (
            (_scatter_add_loop, scatter_types),
            (_scatter_units_loop, units_types),
            (_count_ones_loop, count_types),
            (_weights_at_loop, lookup_types),
            (_count_codes_loop, code_types),
            (_gather_held_loop, gather_types),
            (_mark_ones_loop, mark_types),
            (_spread_loop, spread_types),
            (_fold_codes_loop, fold_types),
            (_word_spans_loop, span_types),
            (_at_least_loop, least_types),
            (_best_path_loop, path_types),
        )
        for cache in (True, False):
            try:
                compiled = [njit(sigs, cache=cache, nogil=True)(loop) for loop, sigs in loops]
            except Exception as exc:  # noqa: BLE001 - a compiler failure: the numpy path
                if cache and "no locator available" in str(exc):
                    log.warning(
                        "numba cannot cache compiled code (%s): compiling it in this process, "
                        "~2 s (NUMBA_CACHE_DIR names a writable place for it)",
                        exc,
                    )
                    continue
                log.warning(
                    "numba could not compile (%s): per-posting work runs through numpy", exc
                )
                return
            (
                _scatter_add,
                _scatter_units,
                _count_ones,
                _weights_at,
                _count_codes,
                _gather_held,
                _mark_ones,
                _spread,
                _fold_codes,
                _word_spans,
                _at_least,
                _best_path,
            ) = compiled
            return


# The loops check each docnum against the array they write: numpy raises ``IndexError`` for a
# docnum out of range (a damaged segment), where an unchecked compiled loop would write past the
# array.  The check costs nothing measurable (250,000 postings: 143 us against 151 unchecked;
# numba's own ``boundscheck`` 206).  They return the position of the first docnum out of range,
# or -1.


def _scatter_add_loop(scores, ids, weights, scale):  # pragma: no cover - compiled
    size = scores.size
    for i in range(ids.size):
        doc = ids[i]
        if doc < 0 or doc >= size:
            return i
        scores[doc] += scale * weights[i]
    return -1


def _scatter_units_loop(units, ids, weights, factor):  # pragma: no cover - compiled
    size = units.size
    for i in range(ids.size):
        doc = ids[i]
        if doc < 0 or doc >= size:
            return i
        units[doc] += np.uint16(factor * weights[i])
    return -1


def _count_ones_loop(counts, ids):  # pragma: no cover - compiled
    size = counts.size
    for i in range(ids.size):
        doc = ids[i]
        if doc < 0 or doc >= size:
            return i
        counts[doc] += 1
    return -1


def _mark_ones_loop(mask, ids):  # pragma: no cover - compiled
    size = mask.size
    for i in range(ids.size):
        doc = ids[i]
        if doc < 0 or doc >= size:
            return i
        mask[doc] = True
    return -1


def _spread_loop(out, ids, weights):  # pragma: no cover - compiled
    size = out.size
    for i in range(ids.size):
        doc = ids[i]
        if doc < 0 or doc >= size:
            return i
        out[doc] = weights[i]
    return -1


def _fold_codes_loop(codes, table, out):  # pragma: no cover - compiled
    known = table.size
    for i in range(codes.size):
        code = codes[i]
        out[i] = table[code] if code < known else code


# ``word_spans``: a table entry holds a code's folded form in its low bits, and this bit when that
# folded form is a letter or digit; a word's hash multiplies by ``WORD_HASH`` (in uint64, as
# ``word_slots`` does in Python).
LETTER = 0x80000000
WORD_HASH = 1000003


def _word_spans_loop(codes, table, terms, term_ends, slots, out):  # pragma: no cover - compiled
    # The maximal runs of letters and digits of the folded text that are one of the terms, in
    # text order, at most a third of ``out`` of them (start, end, term for each).  Returns how
    # many, or -1 at a code past the table (the caller then asks Python).
    n, known, count, cap, mask = codes.size, table.size, 0, out.size // 3, slots.size - 1
    i = 0
    while i < n and count < cap:
        code = codes[i]
        if code >= known:
            return -1
        entry = table[code]
        if entry < LETTER:
            i += 1
            continue
        word = np.uint64(entry - LETTER)
        j = i + 1
        while j < n:
            code = codes[j]
            if code >= known:
                return -1
            entry = table[code]
            if entry < LETTER:
                break
            word = word * np.uint64(WORD_HASH) ^ np.uint64(entry - LETTER)
            j += 1
        at = np.intp(word & np.uint64(mask))
        while slots[at] >= 0:  # open addressing: the terms of this hash, then an empty slot
            t = slots[at]
            first = term_ends[t - 1] if t else 0
            if term_ends[t] - first == j - i:
                same = True
                for k in range(j - i):
                    if table[codes[i + k]] - LETTER != terms[first + k]:
                        same = False
                        break
                if same:
                    out[3 * count], out[3 * count + 1], out[3 * count + 2] = i, j, t
                    count += 1
                    break
            at = (at + 1) & mask
        i = j
    return count


def _at_least_loop(counts, least):  # pragma: no cover - compiled
    # Count first (a vectorised pass), then write every position and move on past those that
    # count: no branch to mispredict where one in five or so is kept.
    total = 0
    for i in range(counts.size):
        total += counts[i] >= least
    out = np.empty(total + 1, dtype=np.int64)
    kept = 0
    for i in range(counts.size):
        out[kept] = i
        kept += counts[i] >= least
    return out[:total]


def _best_path_loop(
    starts, ids, counts, types, pair_keys, pair_counts, total, discount, smoothing, chosen
):  # pragma: no cover - compiled
    # ``accents._viterbi``'s decoding, the same float64 operations in the same order (ties to
    # the first candidate); positions ``starts[p]`` to ``starts[p + 1]`` of the flat arrays are
    # position p's candidates, their syllable ids (-1: unknown), counts and follower types.
    # Returns -1 at an empty position (the caller then decodes in Python), else 0.
    positions, size = starts.size - 1, ids.size
    scores = np.empty(size)
    unigram = np.empty(size)
    weights = np.empty(size)  # a candidate's weight as the context of the next position's
    back = np.zeros(size, dtype=np.int64)
    first, last, seen_before = 0, 0, False
    for p in range(positions):
        start, end = starts[p], starts[p + 1]
        if end <= start:
            return -1
        seen = False
        for i in range(start, end):
            unigram[i] = (counts[i] + smoothing) / total
            seen = seen or counts[i] != 0
        if p == 0:
            for i in range(start, end):
                scores[i] = math.log(unigram[i])
        elif not (seen and seen_before):  # no pair evidence: the best so far, then unigrams
            best = first
            for j in range(first, last):
                if scores[j] > scores[best]:
                    best = j
            for i in range(start, end):
                scores[i] = scores[best] + math.log(unigram[i])
                back[i] = best - first
        else:
            best, base = first, 0.0
            for j in range(first, last):
                weights[j] = discount * (types[j] + 1) / (counts[j] + 1)
                value = scores[j] + math.log(weights[j])
                if j == first or value > base:
                    best, base = j, value
            for i in range(start, end):
                scores[i] = base + math.log(unigram[i])
                back[i] = best - first
            for j in range(first, last):
                if ids[j] < 0 or not pair_keys.size:
                    continue
                weight = weights[j]
                inverse_context = 1.0 / max(counts[j], 1)
                high = np.uint64(ids[j]) << np.uint64(32)
                for i in range(start, end):
                    if ids[i] < 0:
                        continue
                    key = high | np.uint64(ids[i])
                    at = np.searchsorted(pair_keys, key)
                    if at < pair_keys.size and pair_keys[at] == key and pair_counts[at]:
                        pair = pair_counts[at]
                        value = scores[j] + math.log(
                            (pair - discount) * inverse_context + weight * unigram[i]
                        )
                        if value > scores[i]:
                            scores[i], back[i] = value, j - first
        first, last, seen_before = start, end, seen
    best = first
    for j in range(first, last):
        if scores[j] > scores[best]:
            best = j
    index = best - first
    for p in range(positions - 1, -1, -1):
        chosen[p] = index
        index = back[starts[p] + index]
    return 0


def _weights_at_loop(ids, weights, docs, out):  # pragma: no cover - compiled
    # Both ascending: from where the previous document was found, gallop (1, 2, 4... ahead)
    # to a bound, then search between; as cheap for a few documents in a long list as for a
    # merge of two lists of a size.
    n = ids.size
    j = 0
    for i in range(docs.size):
        doc = docs[i]
        if j < n and ids[j] < doc:
            low, step = j, 1  # ids[low] < doc
            high = low + 1
            while high < n and ids[high] < doc:
                low = high
                step *= 2
                high = low + step
            if high > n:
                high = n
            low += 1
            while low < high:  # the first position in (low, high] whose id is >= doc
                middle = (low + high) >> 1
                if ids[middle] < doc:
                    low = middle + 1
                else:
                    high = middle
            j = low
        out[i] = weights[j] if j < n and ids[j] == doc else np.float32(0)


def _count_codes_loop(codes, docs, counts):  # pragma: no cover - compiled
    # ``counts`` holds CODE_LANES rows, one a lane: documents in a row mostly share their code
    # (a source's articles come together), and adding one to the same count again waits for
    # the addition before; the lanes' counts are independent.
    size, lanes, bins = codes.size, counts.shape[0], counts.shape[1]
    for i in range(docs.size):
        doc = docs[i]
        if doc < 0 or doc >= size:
            return i
        code = codes[doc]
        if code < 0 or code >= bins:
            return -2  # not a count this array holds: numpy's answer (or its error)
        counts[i & (lanes - 1), code] += 1
    return -1


def _gather_held_loop(partial, matched, docs, table, shown, held, factor):  # pragma: no cover
    size, shares = partial.size, table.size
    for i in range(docs.size):
        doc = docs[i]
        if doc < 0 or doc >= size:
            return i
        count = matched[doc]
        shown[i] = partial[doc]
        held[i] = count
        if shares:
            if count < 0 or count >= shares:
                return -2
            factor[i] = table[count]
    return -1


def compiled() -> bool:
    """Whether the compiled loops run (loading them now if not yet tried)."""
    if not _loaded:
        _compile()
    return _scatter_add is not None


def _out_of_range(at: int, ids: np.ndarray, size: int) -> None:
    if at >= 0:
        raise IndexError(f"docnum {int(ids[at])} out of range for {size} documents")


def _scatters(out: np.ndarray, dtype, ids: np.ndarray, weights: np.ndarray) -> bool:
    """Whether a compiled scatter loop takes these arrays: ``out`` a writable contiguous array
    of ``dtype``, int32 ``ids`` and as many float32 ``weights``."""
    return (
        out.dtype == dtype
        and ids.dtype == np.int32
        and weights.dtype == np.float32
        and weights.size == ids.size
        and out.flags.c_contiguous
        and out.flags.writeable
    )


def scatter_add(scores: np.ndarray, ids: np.ndarray, weights: np.ndarray, scale: float) -> None:
    """``scores[ids] += float32(scale) * weights`` for unique ``ids`` (int32) and float32
    ``weights``, ``scores`` a contiguous float32 array: ``np.add.at``'s sums, bit for bit."""
    if not _loaded:
        _compile()
    if _scatter_add is not None and _scatters(scores, np.float32, ids, weights):
        at = _scatter_add(scores, _contiguous(ids), _contiguous(weights), np.float32(scale))
        _out_of_range(at, ids, scores.size)
    else:
        np.add.at(scores, ids.astype(np.intp, copy=False), scale * weights)


def scatter_units(units: np.ndarray, ids: np.ndarray, weights: np.ndarray, factor: float) -> None:
    """``units[ids] += uint16(float32(factor) * weights)`` (truncated) for unique ``ids``
    (int32), float32 ``weights`` and a contiguous uint16 ``units``: a term's weights added as
    whole units of a quantised score (``ranking.Scorer.bounds``; the caller keeps the sums
    below 65,536).  Half the bytes of a float32 score: at a million documents the array fits a
    core's L2 cache where the float32 one does not (27 terms of 1.45 million postings: 1.8 ms
    against 3.0)."""
    if not _loaded:
        _compile()
    factor32 = np.float32(factor)
    if _scatter_units is not None and _scatters(units, np.uint16, ids, weights):
        at = _scatter_units(units, _contiguous(ids), _contiguous(weights), factor32)
        _out_of_range(at, ids, units.size)
    else:
        # The ids are unique: each adds once.
        units[ids.astype(np.intp, copy=False)] += (weights * factor32).astype(np.uint16)


def count_ones(counts: np.ndarray, ids: np.ndarray) -> None:
    """``counts[ids] += 1`` for unique ``ids`` (int32), ``counts`` a contiguous uint8 or int16
    array."""
    if not _loaded:
        _compile()
    if (
        _count_ones is not None
        and counts.dtype in (np.uint8, np.int16)
        and ids.dtype == np.int32
        and counts.flags.c_contiguous
        and counts.flags.writeable
    ):
        _out_of_range(_count_ones(counts, _contiguous(ids)), ids, counts.size)
    else:
        counts[ids.astype(np.intp, copy=False)] += 1  # the ids are unique: each adds once


def mark_ones(mask: np.ndarray, ids: np.ndarray) -> None:
    """``mask[ids] = True`` for int32 ``ids`` and a contiguous boolean ``mask``: a term's
    documents marked (a concept's, a phrase's).  numpy converts the ids to its index type
    first and then writes through them: 3 times slower for a term in 5 % of a million
    documents (100 us against 26)."""
    if not _loaded:
        _compile()
    if (
        _mark_ones is not None
        and mask.dtype == np.bool_
        and ids.dtype == np.int32
        and mask.flags.c_contiguous
        and mask.flags.writeable
    ):
        _out_of_range(_mark_ones(mask, _contiguous(ids)), ids, mask.size)
    else:
        mask[ids.astype(np.intp, copy=False)] = True


def spread(ids: np.ndarray, weights: np.ndarray, size: int) -> np.ndarray:
    """A float32 array of ``size`` holding ``weights`` at ``ids`` (int32, unique) and 0
    elsewhere: a term's weights by docnum, read at many documents at once
    (``TermPostings.weights_at``); twice as fast as numpy's write through converted ids."""
    if not _loaded:
        _compile()
    out = np.zeros(size, dtype=np.float32)
    if (
        _spread is not None
        and ids.dtype == np.int32
        and weights.dtype == np.float32
        and weights.size == ids.size
    ):
        _out_of_range(_spread(out, _contiguous(ids), _contiguous(weights)), ids, size)
    else:
        out[ids.astype(np.intp, copy=False)] = weights
    return out


def fold_codes(codes: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Each of ``codes`` (uint32 code points) through ``table`` (uint32), or as it is when past
    the table: a text folded character by character (``results.fold_in_place``) in one pass,
    where numpy clips, looks up and puts the codes past the table back in three (9.5 us a
    1,400-character passage against 4)."""
    if not _loaded:
        _compile()
    if _fold_codes is not None and codes.dtype == np.uint32 and table.dtype == np.uint32:
        out = np.empty(codes.size, dtype=np.uint32)
        _fold_codes(_contiguous(codes), _contiguous(table), out)
        return out
    folded = table[np.minimum(codes, table.size - 1)]
    beyond = codes >= table.size
    return np.where(beyond, codes, folded) if beyond.any() else folded


def at_least(counts: np.ndarray, least: int) -> np.ndarray:
    """``np.flatnonzero(counts >= least)`` (int64) for uint8 or int16 ``counts``: the documents
    holding enough of a query's words.  numpy builds the boolean array and then finds its set
    positions with a branch each, mispredicted where a fifth of a million are set (0.6-0.7 ms
    against 0.45-0.5 at a million articles, scratch ``candmicro2.py`` of stop 46)."""
    if not _loaded:
        _compile()
    if _at_least is not None and counts.dtype in (np.uint8, np.int16) and counts.ndim == 1:
        return _at_least(_contiguous(counts), least)
    return np.flatnonzero(counts >= least)


def best_path(
    starts: list[int],
    ids: list[int],
    counts: list[int],
    types: list[int],
    pair_keys: np.ndarray,
    pair_counts: np.ndarray,
    total: float,
    discount: float,
    smoothing: float,
) -> list[int] | None:
    """The accent decoder's best path (``accents._viterbi``) through a lattice of syllables:
    position p's candidates are ``starts[p]`` to ``starts[p + 1]`` of ``ids`` (-1: unknown),
    ``counts`` and follower ``types``; ``pair_keys`` (uint64, sorted) and ``pair_counts`` the
    vocabulary's pairs.  Returns the chosen candidate of each position (its rank within the
    position), or ``None`` where the compiled loop does not run.  The Python decoder asks
    about every pair of neighbouring candidates through lists and a vectorised search: ~0.25 ms
    of a query's first search at a million articles, against ~0.07 here."""
    if not _loaded:
        _compile()
    if _best_path is None or pair_keys.dtype != np.uint64 or pair_counts.dtype != np.int64:
        return None
    chosen = np.empty(len(starts) - 1, dtype=np.int64)
    flat = [np.array(values, dtype=np.int64) for values in (starts, ids, counts, types)]
    keys, paired = _contiguous(pair_keys), _contiguous(pair_counts)
    if _best_path(*flat, keys, paired, total, discount, smoothing, chosen) < 0:
        return None
    return chosen.tolist()


def word_slots(words: tuple[str, ...]) -> np.ndarray:
    """The hash table ``word_spans`` finds ``words`` (folded, letters and digits) with: each
    word's position at its hash's slot or the next free one (-1: free), at most a quarter
    full.  Made once a query, in Python lists (numpy's item access costs more than the rest)."""
    size = 16
    while size < 4 * len(words):
        size *= 2
    slots, mask = [-1] * size, size - 1
    for position, word in enumerate(words):
        value = ord(word[0])
        for char in word[1:]:
            value = (value * WORD_HASH ^ ord(char)) & 0xFFFFFFFFFFFFFFFF
        at = value & mask
        while slots[at] >= 0:
            at = (at + 1) & mask
        slots[at] = position
    return np.array(slots, dtype=np.int32)


def word_spans(
    codes: np.ndarray,
    table: np.ndarray,
    terms: np.ndarray,
    term_ends: np.ndarray,
    slots: np.ndarray,
    limit: int,
) -> list[int] | None:
    """The first ``limit`` whole words of a text (its code points ``codes``, uint8 or uint32)
    that are one of the folded ``terms``: a word is a maximal run of codes whose ``table``
    entry (uint32: the folded code, plus ``LETTER`` for a letter or digit) has ``LETTER`` set.
    ``terms`` (uint32) are the words' code points one after another, ``term_ends`` (int32)
    where each ends and ``slots`` (int32) their hash table (``word_slots``); all contiguous
    and writable, the types the loop is compiled for (``codes`` is copied where it is not).
    Returns each word's start, end and term (its position in ``term_ends``), one after
    another, in text order; ``None`` where the compiled loop does not run or the text holds a
    code past the table (``results.find_spans`` then searches in Python).  The checks are few:
    a call costs ~1 us, a title's search in Python 1-2."""
    if not _loaded:
        _compile()
    if _word_spans is None or codes.dtype.char not in "BI":
        return None
    cap = max(0, min(limit, codes.size // 2 + 1))  # words stand apart: one in two codes at most
    out = np.empty(3 * cap, dtype=np.int32)
    count = _word_spans(_writable(codes), table, terms, term_ends, slots, out)
    return None if count < 0 else out[: 3 * count].tolist()


def _writable(values: np.ndarray) -> np.ndarray:
    """``values``, or a copy where it is not contiguous or not writable (the types the loops
    were compiled for)."""
    flags = values.flags
    return values if flags.c_contiguous and flags.writeable else values.copy()


def _contiguous(values: np.ndarray) -> np.ndarray:
    return values if values.flags.c_contiguous else np.ascontiguousarray(values)


def weights_at(ids: np.ndarray, weights: np.ndarray, docs: np.ndarray) -> np.ndarray | None:
    """The weight of each of ``docs`` (ascending) in a term's ``ids`` (ascending, int32) and
    ``weights`` (float32), 0 where it is absent; ``None`` where the compiled loop does not run
    (the caller then looks them up with numpy)."""
    if not _loaded:
        _compile()
    if (
        _weights_at is None
        or ids.dtype != np.int32
        or weights.dtype != np.float32
        or weights.size != ids.size
        or docs.dtype not in (np.int32, np.int64)
    ):
        return None
    out = np.empty(docs.size, dtype=np.float32)
    _weights_at(_contiguous(ids), _contiguous(weights), _contiguous(docs), out)
    return out


# ``count_codes`` counts in this many lanes (a power of two) where there are at most
# ``LANES_BELOW`` codes: 170,000 candidates of one code at a million documents, 0.22 ms against
# 0.32 in one lane (stop 59, scratch ``lanes.py``).
CODE_LANES = 8
LANES_BELOW = 4096


def count_codes(codes: np.ndarray, docs: np.ndarray, bins: int) -> np.ndarray:
    """``np.bincount(codes[docs], minlength=bins)``: how many of ``docs`` have each code (the
    facets' counts), in one pass where numpy gathers the codes into an array first and then
    counts them (at a million articles, ~200,000 candidates: 0.14 ms against 0.47)."""
    if not _loaded:
        _compile()
    if (
        _count_codes is not None
        and codes.dtype == np.int32
        and docs.dtype in (np.int32, np.int64)
        and codes.flags.c_contiguous
    ):
        lanes = CODE_LANES if bins <= LANES_BELOW else 1
        counts = np.zeros((lanes, bins), dtype=np.int64)
        at = _count_codes(codes, _contiguous(docs), counts)
        if at == -1:
            return counts[0] if lanes == 1 else counts.sum(axis=0)
        _out_of_range(at, docs, codes.size)
    return np.bincount(codes.take(docs), minlength=bins)


def gather_held(
    partial: np.ndarray, matched: np.ndarray, docs: np.ndarray, table: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """``partial[docs]`` (float32, from a float32 or uint16 ``partial``), ``matched[docs]``
    and ``table[matched[docs]]`` (``None`` without a table): what the bounds of a long
    candidate list read at each candidate, in one pass over the candidates instead of three
    gathers (``ranking.Scorer.bounds``)."""
    if not _loaded:
        _compile()
    writable = all(
        a.flags.c_contiguous and a.flags.writeable
        for a in (partial, matched, docs, *(() if table is None else (table,)))
    )
    if (
        _gather_held is not None
        and writable
        and partial.dtype in (np.float32, np.uint16)
        and matched.dtype in (np.uint8, np.int16)
        and matched.size == partial.size
        and docs.dtype == np.int64
        and (table is None or table.dtype == np.float32)
    ):
        shown = np.empty(docs.size, dtype=np.float32)
        held = np.empty(docs.size, dtype=matched.dtype)
        factor = np.empty(docs.size if table is not None else 0, dtype=np.float32)
        shares = table if table is not None else np.zeros(0, dtype=np.float32)
        at = _gather_held(partial, matched, docs, shares, shown, held, factor)
        if at == -1:
            return shown, held, factor if table is not None else None
        _out_of_range(at, docs, partial.size)
    held = matched.take(docs)
    shown = partial.take(docs).astype(np.float32, copy=False)
    return shown, held, table.take(held) if table is not None else None
