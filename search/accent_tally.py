"""Counting the accent vocabulary of texts: syllables, adjacent pairs and their capitals.

The indexer counts every document it writes (``store.corpus``), so this is a build's second
largest cost after segmentation: at a million articles the ``Counter`` tally of each batch, sent
from the pool worker and added up in the writer, took about a fifth of the build's CPU.  Two
ways to count share one reading of each text (``_Scan``):

* ``count_texts`` adds to an ``AccentTally`` (``Counter``s): a few documents (an incremental
  run's removed ones, a recount, ``accents.CountsVocabulary``);
* ``count_batch`` counts a batch of documents into arrays (``AccentBatch``): the syllables once
  each, the rest as numbers counted by numpy, which cross the process boundary as a few arrays
  and add up in the writer without a Python object per key (``accent_files.AccentRun``).

Both count exactly the same (``tests/test_accent_tally.py``): the rules are ``_Scan``'s.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Iterable
from functools import lru_cache
from itertools import compress

import numpy as np

from .store.accent_files import AccentBatch, AccentTally
from .store.counts import pair_keys, remap_keys
from .text import canonical_syllable, normalize

_DIGIT_RE = re.compile(r"\d")
# A token after one of these starts a sentence (or a quote, caption, list item): its capital letter
# says nothing about the word, so it is not counted as evidence for a proper noun.
_SENTENCE_START_RE = re.compile(r"[.!?…:\n\r\"“”'‘’(\[]")
# Tokens and what lies between them: ``split`` gives gap, token, gap, ... in one C call.
_TOKENS_RE = re.compile(r"([^\W_]+)")
# Whitespace that does not break a line: tokens it separates are adjacent (a pair).
_JOINING_RE = re.compile(r"[^\S\n\r]+")


def _is_title(token: str) -> bool:
    """``Hà`` yes; ``hà``, ``iPhone`` and ``HÀ`` (a shouted headline says nothing) no.  The rule
    ``_Scan`` applies with ``map`` (``tests/test_accent_tally.py`` holds it to this)."""
    return token[:1].isupper() and (len(token) == 1 or token[1:].islower())


# A gap other than one space: 0 ends a phrase, 1 joins its tokens (whitespace without a line
# break), 2 ends a phrase and starts a sentence.  The same few gaps (``, ``, ``. ``, ``\n``)
# come back all the time.
@lru_cache(maxsize=4096)
def _gap_kind(gap: str) -> int:
    if _JOINING_RE.fullmatch(gap):
        return 1
    return 2 if _SENTENCE_START_RE.search(gap) else 0


_FIRST = operator.itemgetter(0)
_REST = operator.itemgetter(slice(1, None))


class _Scan:
    """One text read for counting.

    Tokens are ``[^\\W_]+`` runs, canonicalised (``syllables``).  Two tokens form a pair only
    when just whitespace without a line break separates them (``joined[j]``: tokens ``j`` and
    ``j + 1``): ``Lào Cai, cải bắp`` must not teach that ``cai`` comes before ``cải``.  Tokens
    with digits are not counted and break the chain (``kept``: ``None`` when every token
    counts).  Capitalisation is counted only away from sentence starts, where a capital letter
    says something about the word: ``titled`` lists the tokens written as titles (``Hà``, in
    order) and ``starts`` the tokens that start a sentence.  Every step is ``map`` or
    ``compress`` (loops in C) but one per sentence start and per token with a digit: a
    generator of phrases, a loop a pair and a function call a capitalised token took twice as
    long.
    """

    __slots__ = ("syllables", "joined", "kept", "titled", "starts")

    def __init__(self, text: str) -> None:
        parts = _TOKENS_RE.split(normalize(text))
        tokens = parts[1::2]
        gaps = parts[2:-1:2]  # gaps[j] lies between tokens j and j + 1
        n = len(tokens)
        self.syllables: list[str] = list(map(canonical_syllable, tokens))
        joined = self.joined = list(map(" ".__eq__, gaps))
        other = list(compress(range(n - 1), map(" ".__ne__, gaps)))
        kinds = list(map(_gap_kind, map(gaps.__getitem__, other)))
        for j in compress(other, map((1).__eq__, kinds)):
            joined[j] = True
        self.starts = {0, *(j + 1 for j in compress(other, map((2).__eq__, kinds)))}
        self.kept: list[bool] | None = None
        not_alpha = compress(range(n), map(operator.not_, map(str.isalpha, tokens)))
        digits = [j for j in not_alpha if _DIGIT_RE.search(tokens[j])]
        if digits:
            kept = self.kept = [True] * n
            for j in digits:
                kept[j] = False
                if j:
                    joined[j - 1] = False
                if j < n - 1:
                    joined[j] = False
        # ``_is_title`` of the tokens not all lower case, in C: a capital first, and the rest
        # lower case or nothing.
        cased = list(compress(range(n), map(operator.not_, map(str.islower, tokens))))
        words = list(map(tokens.__getitem__, cased))
        rests = list(map(_REST, words))
        title = map(
            operator.and_,
            map(str.isupper, map(_FIRST, words)),
            map(operator.or_, map(str.islower, rests), map(operator.not_, rests)),
        )
        titled = list(compress(cased, title))
        if digits:
            titled = [j for j in titled if kept[j]]
        self.titled: list[int] = titled

    def counted(self) -> Iterable[str]:
        """The syllables counted, in order."""
        return self.syllables if self.kept is None else compress(self.syllables, self.kept)

    def pairs(self) -> Iterable[tuple[str, str]]:
        """The adjacent pairs, in order."""
        syllables = self.syllables
        return compress(zip(syllables, syllables[1:], strict=False), self.joined)


def count_texts(texts: Iterable[str], tally: AccentTally | None = None) -> AccentTally:
    """Syllables and adjacent pairs of ``texts``, counted exactly (added to ``tally`` if given);
    the rules are ``_Scan``'s.  Nothing is pruned: counts of different texts add up, and those of
    removed texts can be subtracted."""
    tally = AccentTally() if tally is None else tally
    titles, first_titles, second_titles = tally.titles, tally.first_titles, tally.second_titles
    # Syllables and pairs of all the texts, counted by one ``Counter.update`` each (in C).
    all_syllables: list[str] = []
    all_pairs: list[tuple[str, str]] = []
    for text in texts:
        scan = _Scan(text)
        all_syllables += scan.counted()
        all_pairs += scan.pairs()
        syllables, joined, last = scan.syllables, scan.joined, len(scan.syllables) - 1
        for j in scan.titled:
            start = j in scan.starts
            if not start:
                titles[syllables[j]] += 1
            if j and joined[j - 1]:
                second_titles[(syllables[j - 1], syllables[j])] += 1
            if j < last and joined[j] and not start:
                first_titles[(syllables[j], syllables[j + 1])] += 1
    tally.unigrams.update(all_syllables)
    tally.bigrams.update(all_pairs)
    return tally


def count_batch(documents: Iterable[Iterable[str]]) -> AccentBatch:
    """What ``count_texts`` counts of every text of ``documents``, as arrays (``AccentBatch``).

    Every token of the batch is numbered by a dictionary of the batch's syllables (in C: ``map``
    of its lookup); pairs are ``first << 32 | second`` of those numbers, and numpy counts them.
    """
    syllables: list[str] = []
    joined: list[bool] = []  # joined[k]: tokens k and k + 1 (False across texts)
    kept: list[bool] = []
    titled: list[int] = []  # tokens written as titles
    starts: list[bool] = []  # ... whether each starts a sentence
    for texts in documents:
        for text in texts:
            scan = _Scan(text)
            n = len(scan.syllables)
            if not n:
                continue
            at = len(syllables)
            syllables += scan.syllables
            joined += scan.joined
            joined.append(False)
            kept += scan.kept if scan.kept is not None else [True] * n
            titled += (at + j for j in scan.titled)
            starts += map(scan.starts.__contains__, scan.titled)
    if not syllables:
        return AccentBatch.empty()
    # Numbered in first-seen order.
    numbers = dict(zip(dict.fromkeys(syllables), range(len(syllables)), strict=False))
    ids = np.fromiter(map(numbers.__getitem__, syllables), np.int64, len(syllables))
    size = len(numbers)
    is_joined = np.array(joined, dtype=bool)
    at = np.array(titled, dtype=np.int64)
    away = at[~np.array(starts, dtype=bool)]  # capitalised away from a sentence start
    first = away[is_joined[away]]  # pairs (k, k + 1) whose first token is that
    second = at[at > 0]
    second = second[is_joined[second - 1]]  # pairs (k - 1, k) whose second is capitalised
    counts = np.bincount(ids[np.array(kept, dtype=bool)], minlength=size)
    unigrams = np.stack([counts, np.bincount(ids[away], minlength=size)], axis=1)
    joined_at = np.flatnonzero(is_joined)
    keys = pair_keys(ids[joined_at], ids[joined_at + 1])
    firsts = pair_keys(ids[first], ids[first + 1])
    seconds = pair_keys(ids[second - 1], ids[second])
    columns = np.repeat(np.arange(3), [keys.size, firsts.size, seconds.size])
    every = np.concatenate([keys, firsts, seconds])
    unique, where = np.unique(every, return_inverse=True)
    pair_counts = np.zeros((unique.size, 3), np.int32)
    np.add.at(pair_counts, (where, columns), 1)
    # Numbers (tokens with digits) are numbered too but never counted: dropped here.
    used = np.flatnonzero(counts > 0)
    old_to_new = np.full(size, -1, np.int64)
    old_to_new[used] = np.arange(used.size)
    words = list(numbers)
    return AccentBatch(  # int32 counts: half the bytes through the pool's pipe
        [words[i] for i in used.tolist()],
        unigrams[used].astype(np.int32),
        remap_keys(unique, old_to_new),
        pair_counts,
    )
