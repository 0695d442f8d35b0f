"""Posting arrays read once from a Whoosh index generation, for vectorised scoring.

Whoosh stays the store and the source of truth (segments, generations, term dictionary, stored
text); but walking its matchers in Python costs hundreds of milliseconds for a
long OR query.  So a term's postings are read once into numpy arrays, with the BM25F length
normalisation of every field already folded in, and a query is scored with a few array
operations.  Terms are loaded lazily (a query touches a few dozen) and kept in an LRU.  Those of
the older segments (a generation's base) are shared files every worker maps and the next
generations of incremental runs map again (``store.shared_postings``); each worker reads those
of the newest segments (the tail) itself, per generation (``SplitPostings``).

Everything else a query reads per document (live mask, norms, columns, their codes and labels)
and the accent and suggestion vocabularies come from the files the indexer writes with each
generation (``search.store``), memory-mapped: every worker shares one copy in the page cache.
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import kernels
from .ranking_params import DEFAULT_PARAMS, RankingParams
from .schema import TEXT_FIELDS, extra_field
from .store.base_terms import DIRECTORY as TERMS_DIRECTORY
from .store.base_terms import TermsWriter
from .store.columns import field_averages
from .store.generation import (
    LEGACY_ACCENTS,
    GenerationFiles,
    generation_dir,
    generation_reader,
    open_generation,
    store_dir,
)
from .store.shared_postings import (
    MIN_SHARED_BYTES,
    SharedPostings,
    base_key,
    base_rows,
    fault_in,
    parameters_key,
)
from .store.strings import StringArray
from .store.tail_keys import TailKeys
from .store.tail_terms import TailTerms
from .store.term_reader import SegmentTerms, concatenate, leaf_postings

log = logging.getLogger(__name__)

# The accent vocabulary of indexes written before the shared files (read when a generation has
# no files of its own).
ACCENTS_FILE = LEGACY_ACCENTS

# Posting arrays a worker keeps in its own memory unless told (``Settings.cache_mb``): what
# varied queries read grows with the archive, and a cache smaller than the frequent terms reloads
# them on every query (the README has the figures, ``bench.scaling --cache-mb`` measures them).
# Arrays of ``MIN_SHARED_BYTES`` and more are files every worker maps (``store.shared_postings``):
# they cost the cache nothing, so with them it holds only rarer terms and stays small.
MIN_CACHED_BYTES = 64 * 2**20
CACHED_BYTES_PER_DOC = 6 * 2**10
MAX_PRIVATE_BYTES = 160 * 2**20
# Entries kept at most, mapped ones included: each mapped file is one memory map of the process
# (Linux allows 65,530), and a worker switching generations holds the previous cache's terms as
# well (``Snapshot.adopt``) until it has read them again.  At 8,192 the cache of a 1M index held
# only 64 of its 160 MiB and read 11,700 terms again on each pass over 1,000 varied queries (p95
# 21.6 ms against 16.2 ms with them kept: ``bench.latency --repeat 2``).
MAX_CACHED_TERMS = 16_384


def default_cache_bytes(documents: int, shared: bool = False) -> int:
    """The posting cache of an index of ``documents`` (its docnums, deleted ones included);
    ``shared``: whether large arrays are shared files (then it holds only smaller ones)."""
    private = max(MIN_CACHED_BYTES, CACHED_BYTES_PER_DOC * documents)
    return min(private, MAX_PRIVATE_BYTES) if shared else private


# Loaded ahead of queries when a generation opens: the longest posting lists (frequent syllables
# and pairs) cost milliseconds each to read, and most queries hold a few of them.
WARM_TERMS = 1500
# A mapped base smaller than this (8 bytes a document) is copied and joined with its tail when
# the tail holds the term: every operation of a ``SplitPostings`` costs a few microseconds more
# (two slices), which a term of a few thousand documents pays on every query that reads it
# (at 1M after an incremental run, warm passes of 1,000 queries over HTTP went from 208.7-218.3
# to 203.7-209.2 req/s with terms from 32 KiB shared and split).
JOIN_BELOW = 128 * 2**10
# What a term's objects cost a worker besides its arrays (a mapped term: only this).
TERM_OBJECT_BYTES = 200
# What a term's arrays take: a docnum and a weight a document it holds (sparse), a weight and a
# flag a docnum (dense, in ``DENSE_SHARE`` of the documents or more).
SPARSE_BYTES_PER_DOC = 8
DENSE_BYTES_PER_DOC = 5
# Documents kept per worker, with their prepared snippet text: the same article answers many
# queries, and preparing its text is most of a hit's cost; more would cost a worker memory for
# little (README, ``bench.latency``).
STORED_CACHE = 2048
# ... and at most this many characters of stored text: a few huge articles must not take a
# worker's memory (what callers derive from a document, its folded text, about doubles it).
STORED_CACHE_CHARS = 16_000_000
# Arrays a query derives from several terms and that other queries ask for again (an
# abbreviation's other form: ``ranking._other_form``), kept per generation up to this many bytes.
DERIVED_CACHE_BYTES = 24 * 2**20
DERIVED_ENTRY_BYTES = 512  # what an entry costs besides its arrays: empty ones count too
# A term in at least this share of the documents also keeps its weights as one array per docnum:
# adding it to the scores is then one contiguous pass instead of a scatter through its ids, and so
# is marking where it occurs.
DENSE_SHARE = 0.25
WARM_SHARE = 0.75  # of the cache, filled with frequent terms when a generation opens
# A term whose fields hold at least this share of the documents (postings of all fields counted)
# has its fields' lists added up in an array over every docnum rather than merged by sorting.
SPREAD_UNION_SHARE = 1 / 16
# Documents looked up in a term (``TermPostings.holds``, ``weights_at``): a binary search each
# while they are fewer than 1/LOOKUP_RATIO of its postings; more, and the term's documents are
# spread over an array by docnum and read (a search costs ~20 cache misses at a million
# documents, the spread a pass over the postings).
LOOKUP_RATIO = 8
# ... and only while the array is at most this many times the documents looked up: zeroing it
# costs a pass over every docnum, where a few hundred binary searches cost microseconds.
SPREAD_RATIO = 256
# A term counted where it occurs (``TermPostings.count_into``) adds 1 at each of its documents
# while they are fewer than 1/COUNT_SCATTER_RATIO of the docnums; more, and a mask is made and
# added (at a million docnums: 5,000 documents 8 us against 28, 50,000 67 against 66, 200,000
# 253 against 190).
COUNT_SCATTER_RATIO = 16


def _index(ids: np.ndarray) -> np.ndarray:
    """``ids`` as the index type numpy uses (``intp``) for writing through them: numpy converts
    an int32 index array on its slow path (marking 100,000 docnums took 0.57 ms through int32
    ids, 0.13 ms converted first)."""
    return ids.astype(np.intp, copy=False)


class TermPostings:
    """Documents holding a term and their BM25F term weight.

    ``weight`` is BM25's saturation ``tf * (K1 + 1) / (K1 + tf)`` of the BM25F pseudo-frequency
    ``tf`` (sum over fields of field weight * frequency / length norm), computed once when the
    term is loaded rather than on every query that uses it.

    A term in fewer than ``DENSE_SHARE`` of the documents is kept as sorted unique ``docs`` and
    their ``weight``.  A more frequent one is kept as ``dense`` (its weight at every docnum, 0
    where it is absent) and ``present`` instead: no larger (5 bytes a document against 8 a
    posting), and scoring or marking it is one contiguous pass, not a scatter through its ids.
    Its ``docs`` and ``weight`` are then derived on demand (rare: abbreviation expansions).
    The arrays are shared between queries: never modify them.
    """

    __slots__ = ("_docs", "_weight", "df", "held", "dense", "present", "mapped", "_top")

    def __init__(
        self, docs: np.ndarray, weight: np.ndarray, df: int, held: int | None = None
    ) -> None:
        self._docs: np.ndarray | None = docs  # int32
        self._weight: np.ndarray | None = weight  # float32
        self.df = df  # live documents holding the term
        # documents the arrays hold: more than ``df`` when some were deleted after they were
        # read (``Snapshot.adopt``, shared files of an earlier generation)
        self.held = df if held is None else held
        self.dense: np.ndarray | None = None
        self.present: np.ndarray | None = None
        self.mapped = False  # the arrays are a shared file's (they cost this process nothing)
        self._top: float | None = None  # the largest weight, once asked (``top``)

    @classmethod
    def spread(
        cls, dense: np.ndarray, df: int, present: np.ndarray | None = None, held: int | None = None
    ) -> TermPostings:
        """A frequent term, from its weight at every docnum."""
        postings = cls(None, None, df, held)  # type: ignore[arg-type]
        postings.dense = dense
        postings.present = dense > 0 if present is None else present
        return postings

    @classmethod
    def from_shared(cls, arrays: tuple[np.ndarray, np.ndarray, int, bool]) -> TermPostings:
        """A term as ``SharedPostings.get`` maps it."""
        first, second, df, dense = arrays
        postings = cls.spread(first, df, second) if dense else cls(first, second, df)
        postings.mapped = True
        return postings

    def fault_in(self) -> None:
        """Map the pages of a shared file's arrays into this process now (``fault_in``): the
        warm-up's work, so that the searches that read the term do not fault them in."""
        if self.mapped:
            dense = self.dense is not None
            for array in (self.dense, self.present) if dense else (self._docs, self._weight):
                fault_in(array)

    def arrays(self) -> tuple[np.ndarray, np.ndarray, int, bool]:
        """What ``SharedPostings.put`` writes."""
        if self.dense is not None:
            return self.dense, self.present, self.df, True  # type: ignore[return-value]
        return self._docs, self._weight, self.df, False  # type: ignore[return-value]

    @classmethod
    def empty(cls) -> TermPostings:
        return cls(np.zeros(0, np.int32), np.zeros(0, np.float32), 0)

    @property
    def docs(self) -> np.ndarray:
        if self._docs is None:
            return np.flatnonzero(self.present).astype(np.int32)
        return self._docs

    @property
    def weight(self) -> np.ndarray:
        if self._weight is None:
            return self.dense[self.present]
        return self._weight

    @property
    def nbytes(self) -> int:
        """What the term costs this process (a mapped file's pages are the page cache's)."""
        if self.mapped:
            return TERM_OBJECT_BYTES
        arrays = (self._docs, self._weight, self.dense, self.present)
        return sum(a.nbytes for a in arrays if a is not None) + TERM_OBJECT_BYTES

    @property
    def top(self) -> float:
        """The largest weight the arrays hold: the most the term adds to a document's score
        (times its scale).  Worked out once (a pass over the arrays) and kept with the term,
        which the posting cache keeps."""
        if self._top is None:
            weights = self.dense if self.dense is not None else self._weight
            self._top = float(weights.max()) if weights.size else 0.0
        return self._top

    def add_to(self, scores: np.ndarray, scale: float) -> None:
        """``scores[doc] += scale * weight`` for every document holding the term."""
        if self.dense is not None:
            scores += scale * self.dense
        else:
            # One pass over the postings, compiled (``kernels``) or ``ufunc.at``;
            # ``scores[docs] += ...`` gathers, adds and scatters (2.5 times slower than
            # ``ufunc.at`` for a term in 20 % of a million documents).  The ids are unique, so
            # each adds each weight once: the same float32 sums.
            kernels.scatter_add(scores, self._docs, self._weight, scale)

    def add_units_to(self, units: np.ndarray, factor: float) -> None:
        """``units[doc] += uint16(float32(factor) * weight)`` (truncated) for every document
        holding the term: its weights in whole units of a quantised score (``kernels
        .scatter_units``; ``ranking.Scorer.bounds``)."""
        if self.dense is not None:
            units += (self.dense * np.float32(factor)).astype(np.uint16)
        else:
            kernels.scatter_units(units, self._docs, self._weight, factor)

    def _many(self, docs: np.ndarray) -> int:
        """The docnums an array over them needs to answer for ``docs`` (ascending) at once, or
        0 where looking each document up in the ids costs less (a sparse term)."""
        ids = self._docs
        if not ids.size or not docs.size:
            return 0
        span = max(int(ids[-1]), int(docs[-1])) + 1
        many = docs.size * LOOKUP_RATIO >= ids.size and docs.size * SPREAD_RATIO >= span
        return span if many else 0

    def weights_at(self, docs: np.ndarray) -> np.ndarray:
        """The term's weight at each of ``docs`` (ascending docnums), 0 where it is absent."""
        if self.dense is not None:
            return self.dense[docs]
        ids = self._docs
        if not ids.size or not docs.size:
            return np.zeros(docs.size, dtype=np.float32)
        span = self._many(docs)
        if not span and (found := kernels.weights_at(ids, self._weight, docs)) is not None:
            return found  # compiled: a gallop through the ids, a few steps a document
        if span:
            # Many: spread the weights over an array by docnum and read them.
            return kernels.spread(ids, self._weight, span)[docs]
        # The documents in the ids' type: searching int64 values in int32 ids would convert
        # every id first (a copy of the whole list per lookup).
        at = np.minimum(np.searchsorted(ids, docs.astype(ids.dtype, copy=False)), ids.size - 1)
        return np.where(ids[at] == docs, self._weight[at], np.float32(0))

    def holds(self, docs: np.ndarray) -> np.ndarray:
        """Whether each of ``docs`` (ascending docnums) holds the term (a boolean array)."""
        if self.present is not None:
            return self.present[docs]
        if span := self._many(docs):
            # Many: the term's mask read, a byte a docnum where ``weights_at`` spreads 4-byte
            # weights (a term in 300,000 of a million documents asked at 50,000 of them: 0.23
            # ms against 0.68).
            return self.mask(span)[docs]
        return self.weights_at(docs) > 0  # every posting's weight is > 0

    def mark(self, mask: np.ndarray) -> None:
        """Set ``mask`` (a boolean array over docnums) where the term occurs."""
        if self.present is not None:
            mask |= self.present
        else:
            kernels.mark_ones(mask, self._docs)

    def count_into(self, counts: np.ndarray) -> None:
        """Add 1 to ``counts`` (an integer array over docnums) where the term occurs: what
        adding its ``mask`` would, without making one (a zeroed array, a pass marking it and a
        pass adding it, over every docnum)."""
        if self.present is not None:
            counts += self.present.view(np.uint8)
        elif self._docs.size * COUNT_SCATTER_RATIO < counts.size or kernels.compiled():
            kernels.count_ones(counts, self._docs)  # compiled, 3 times faster than a mask
        else:
            counts += self.mask(counts.size).view(np.uint8)

    def mask(self, size: int) -> np.ndarray:
        """Where the term occurs, as a boolean array over docnums (read only: it may be shared)."""
        if self.present is not None:
            return self.present
        mask = np.zeros(size, dtype=bool)
        kernels.mark_ones(mask, self._docs)
        return mask


# Every text field in both views (folded syllables; accented forms, compounds, pairs): the
# fields a term of the base may be in.
ALL_VIEWS = (*TEXT_FIELDS, *(extra_field(f) for f in TEXT_FIELDS))


def _shared_min_df(bound: int) -> int:
    """The fewest documents a base term's arrays reach ``MIN_SHARED_BYTES`` with: sparse, or
    dense (in ``DENSE_SHARE`` of the base's ``bound`` documents)."""
    sparse = max(1, -(-(MIN_SHARED_BYTES - TERM_OBJECT_BYTES) // SPARSE_BYTES_PER_DOC))
    return min(sparse, math.ceil(DENSE_SHARE * bound))


def _indexed_fields(term: str) -> list[str]:
    """The fields that index ``term``, one a text field: folded syllables (ASCII, no joiner)
    live in the folded view (the fields themselves); accented syllables, compounds, adjacent
    pairs and pair buckets (``~1f2e``) in the extra view (``extra_field``)."""
    if not term.isascii() or "_" in term or " " in term or term.startswith("~"):
        return [extra_field(field) for field in TEXT_FIELDS]
    return list(TEXT_FIELDS)


class SplitPostings(TermPostings):
    """A term of a generation with a tail (``store.shared_postings.base_rows``): ``base`` holds
    its documents below ``bound`` (arrays that outlive generations, mostly a shared file's),
    ``tail`` the newer segments' (read per generation), numbered from ``bound``.  Answers as one
    ``TermPostings`` over every docnum would, with ``df`` counting live documents only (the base
    may still hold documents deleted after it was written: they are never candidates)."""

    __slots__ = ("base", "tail", "bound")

    def __init__(self, base: TermPostings, tail: TermPostings, bound: int, df: int) -> None:
        super().__init__(None, None, df, base.held + tail.held)  # type: ignore[arg-type]
        self.base, self.tail, self.bound = base, tail, bound
        self.mapped = base.mapped and not tail.df

    def arrays(self) -> tuple[np.ndarray, np.ndarray, int, bool]:
        raise TypeError("a split term is shared through its base")

    def fault_in(self) -> None:
        self.base.fault_in()

    @property
    def docs(self) -> np.ndarray:
        tail = self.tail.docs + np.int32(self.bound)
        return np.concatenate([self.base.docs, tail]).astype(np.int32, copy=False)

    @property
    def weight(self) -> np.ndarray:
        return np.concatenate([self.base.weight, self.tail.weight])

    @property
    def nbytes(self) -> int:
        return self.base.nbytes + self.tail.nbytes

    @property
    def top(self) -> float:
        return max(self.base.top, self.tail.top)

    def add_to(self, scores: np.ndarray, scale: float) -> None:
        self.base.add_to(scores[: self.bound], scale)
        if self.tail.df:
            self.tail.add_to(scores[self.bound :], scale)

    def add_units_to(self, units: np.ndarray, factor: float) -> None:
        self.base.add_units_to(units[: self.bound], factor)
        if self.tail.df:
            self.tail.add_units_to(units[self.bound :], factor)

    def _looked_up(self, lookup: str, docs: np.ndarray) -> np.ndarray:
        """``lookup`` (``weights_at``, ``holds``) of ``docs``: the base's below ``bound``, the
        tail's (renumbered) from it."""
        cut = int(np.searchsorted(docs, self.bound))
        if cut == docs.size:
            return getattr(self.base, lookup)(docs)
        tail = getattr(self.tail, lookup)(docs[cut:] - self.bound)
        return np.concatenate([getattr(self.base, lookup)(docs[:cut]), tail])

    def weights_at(self, docs: np.ndarray) -> np.ndarray:
        return self._looked_up("weights_at", docs)

    def holds(self, docs: np.ndarray) -> np.ndarray:
        return self._looked_up("holds", docs)

    def mark(self, mask: np.ndarray) -> None:
        self.base.mark(mask[: self.bound])
        if self.tail.df:
            self.tail.mark(mask[self.bound :])

    def mask(self, size: int) -> np.ndarray:
        mask = np.zeros(size, dtype=bool)
        self.mark(mask)
        return mask

    def count_into(self, counts: np.ndarray) -> None:
        self.base.count_into(counts[: self.bound])
        if self.tail.df:
            self.tail.count_into(counts[self.bound :])


@dataclass(frozen=True, slots=True)
class _Adopted:
    """What the generation before had read of a term (``Snapshot.adopt``): ``base`` (its
    base's arrays, ``None`` when joined into ``known``) and ``known``, its arrays of docnums
    ``bound`` (from 0 when ``base`` is ``None``) to ``end``, numbered from there; with the
    live documents each held then (``base_df``, ``known_df``): only documents deleted since
    are looked up."""

    base: TermPostings | None
    base_df: int
    known: TermPostings | None
    known_df: int
    end: int


def _array_bytes(postings: TermPostings, size: int) -> int:
    """What a term's arrays over ``size`` docnums take."""
    if postings.dense is not None:
        return DENSE_BYTES_PER_DOC * size
    return SPARSE_BYTES_PER_DOC * postings.held


def _recounted(base: TermPostings, df: int) -> TermPostings:
    """A base's sparse arrays as a term over every docnum (no tail document holds it), counted
    as held by ``df`` live documents."""
    postings = TermPostings(base.docs, base.weight, df, base.held)
    postings.mapped, postings._top = base.mapped, base._top
    return postings


def _joined(base: TermPostings, tail: TermPostings, bound: int, size: int, df: int) -> TermPostings:
    """``base`` and ``tail`` (numbered from ``bound``) as one part over every docnum, counted as
    held by ``df`` live documents: each operation on a ``SplitPostings`` costs a few
    microseconds more, paid by every term of every query."""
    docs = np.concatenate([base.docs, tail.docs + np.int32(bound)]).astype(np.int32, copy=False)
    weight = np.concatenate([base.weight, tail.weight])
    if docs.size < DENSE_SHARE * size:
        return TermPostings(docs, weight, df, int(docs.size))
    return TermPostings.spread(kernels.spread(docs, weight, size), df, held=int(docs.size))


# (SegmentReader, its first docnum, its term_reader or None)
Leaves = list[tuple[object, int, SegmentTerms | None]]


def _open_leaves(reader) -> Leaves:
    """A reader's segments, each with its first docnum and a ``SegmentTerms`` when it has one.

    An index without documents reads through Whoosh's ``EmptyReader``, which has no terms to
    look up: no leaves (its query was an ``AttributeError``).
    """
    leaves = reader.leaf_readers() if reader.doc_count_all() else []
    return [(leaf, base, SegmentTerms.open(leaf)) for leaf, base in leaves]


def _close_leaves(leaves: Leaves) -> None:
    for _, _, terms in leaves:
        if terms is not None:
            terms.close()


def _union(ids: np.ndarray, tf: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted unique ``ids`` and the sum of ``tf`` per id (float32).

    ``ids`` is a few sorted runs (one per field), which a stable sort merges in about linear time:
    2-4 times faster than ``np.unique``'s sort.  A stable order also adds each id's ``tf`` in
    field order, as ``np.unique``'s inverse did, so the sums are bit for bit the same.
    """
    order = np.argsort(ids, kind="stable")
    ordered = ids[order]
    first = np.empty(ordered.size, dtype=bool)
    first[:1] = True
    np.not_equal(ordered[1:], ordered[:-1], out=first[1:])
    group = np.cumsum(first) - 1
    sums = np.bincount(group, weights=tf[order], minlength=int(first.sum()))
    return ordered[first], sums.astype(np.float32)


def _spread_sums(runs: list[tuple[np.ndarray, np.ndarray]], size: int) -> np.ndarray:
    """Runs (ids, tf) whose ids are under ``size`` added up in an array over every id instead
    of sorted (``_union``): for a frequent term a few linear passes, where the sort took tens of
    milliseconds at a million documents.  Each id's ``tf`` is added in run order in float64, as
    ``_union``'s ``bincount`` adds them, so the sums are bit for bit the same."""
    sums = np.zeros(size, dtype=np.float64)
    for ids, tf in runs:
        np.add.at(sums, _index(ids), tf.astype(np.float64))  # the same types: ufunc.at's fast path
    return sums


def _held(sums: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The ids and float32 sums of ``_spread_sums``: every ``tf`` is positive, so the ids held
    are where the sum is (``_union``'s answer)."""
    docs = np.flatnonzero(sums)
    return docs, sums[docs].astype(np.float32)


def _saturate(tf: np.ndarray, k1: float) -> np.ndarray:
    """BM25's term-frequency saturation of float32 ``tf`` (0 stays 0)."""
    return (tf * (k1 + 1) / (k1 + tf)).astype(np.float32, copy=False)


def _sparse_or_spread(
    docs: np.ndarray, weight: np.ndarray, span: int, mapped: bool
) -> TermPostings:
    """A term's postings over ``span`` docnums as a snapshot keeps them: the arrays as they are
    (``mapped``: a shared file's), or spread over every docnum where the term is in
    ``DENSE_SHARE`` of them (a frequent term is then added without a scatter).  The segments'
    path (``Snapshot._load``) and the tail's terms file (``Snapshot._tail_postings``) both end
    here, so a term is kept alike whichever path read it."""
    if docs.size < DENSE_SHARE * span:
        postings = TermPostings(docs, weight, int(docs.size))
        postings.mapped = mapped
        return postings
    dense = np.zeros(span, dtype=np.float32)
    dense[_index(docs)] = weight  # every weight is > 0
    return TermPostings.spread(dense, int(docs.size))


@dataclass(frozen=True, slots=True)
class CachedDocument:
    """A document's stored fields (shared: never modify them), and what the presentation layer
    derived from them and keeps with them (``derived``: a key per derivation)."""

    stored: dict
    derived: dict

    @property
    def chars(self) -> int:
        """Characters of stored text: what the article cache's size bound counts."""
        return sum(len(v) for v in self.stored.values() if isinstance(v, str))


def length_norms(
    lengths: np.ndarray,
    live: np.ndarray,
    averages: np.ndarray | None = None,
    params: RankingParams = DEFAULT_PARAMS,
) -> np.ndarray:
    """Per field (``lengths[f]`` for ``TEXT_FIELDS[f]``), ``weight / (1 - b + b * len / avglen)``
    for every document, ``avglen`` from ``averages`` (default: the live documents'; the
    indexer keeps a generation's near the previous one's, ``store.columns.kept_averages``), with
    ``params``' field weights and ``b`` (the norms are written with each generation, so these are
    fixed at commit).

    A field length Whoosh reports as ``None`` (an empty field) is NaN here: such a document
    holds no term of the field, and its norm there is the bare weight.  ``averages`` of a
    generation written before empty fields were left out of them hold NaN: those fields'
    averages are taken again from the lengths.
    """
    if averages is None:
        averages = field_averages(lengths, live)
    elif np.isnan(averages).any():
        averages = np.where(np.isnan(averages), field_averages(lengths, live), averages)
    norms = np.empty(lengths.shape, dtype=np.float32)
    for f, field in enumerate(TEXT_FIELDS):
        field_lengths = lengths[f]
        avg = float(averages[f])
        b = params.b(field)
        denom = (1 - b) + b * (field_lengths / avg) if avg > 0 else np.ones_like(field_lengths)
        denom = np.where(np.isnan(denom), 1, denom)
        norms[f] = (params.field_weight(field) / denom).astype(np.float32)
    return norms


# Snapshots open in this process, by index folder: one that opens a newer generation whose files
# are still being written lets the engine keep serving the older one.
_OPEN: weakref.WeakSet[Snapshot] = weakref.WeakSet()


class Labelled(Sequence[str]):
    """A coded column read as values: ``labels[codes[docnum]]``."""

    def __init__(self, codes: np.ndarray, labels: StringArray) -> None:
        self.codes, self.labels = codes, labels

    def __len__(self) -> int:
        return self.codes.size

    def __getitem__(self, docnum):  # type: ignore[override]
        if isinstance(docnum, slice):
            return [self[d] for d in range(*docnum.indices(len(self)))]
        return self.labels[int(self.codes[docnum])]


class Snapshot:
    """One index generation as seen by one worker: its reader plus cached arrays."""

    def __init__(
        self, ix, cache_bytes: int | None = None, params: RankingParams = DEFAULT_PARAMS
    ) -> None:
        self.ix = ix
        self.params = params  # k1 applies as postings are read (field weights: in the norms)
        self.folder = Path(ix.storage.folder)
        self.searcher = ix.searcher()
        self._leaves: Leaves = []
        # Segment files stay open while a generation is served; close them even when the owner
        # forgets to (a CLI run, a test), instead of leaving it to the garbage collector.
        weakref.finalize(self, _close_searcher, self.searcher, self._leaves)
        self.reader = self.searcher.reader()
        self._leaves.extend(_open_leaves(self.reader))
        self.generation: int = ix.latest_generation()
        self.size: int = self.reader.doc_count_all()
        try:
            self.files = self._open_files()
        except BaseException:
            self.close()
            raise
        columns = self.files.columns
        self.live = columns.live
        self.doc_count = int(self.live.sum())
        self._norms = {field: columns.norms[f] for f, field in enumerate(TEXT_FIELDS)}
        self._averages = np.asarray(columns.averages)
        if params.field_weights != DEFAULT_PARAMS.field_weights or params.field_b != (
            DEFAULT_PARAMS.field_b
        ):  # other field weights or b than the stored norms were written with (``bench.tune``)
            lengths, live = np.asarray(columns.lengths), np.asarray(columns.live)
            self._averages = field_averages(lengths, live)
            norms = length_norms(lengths, live, self._averages, params)
            self._norms = {field: norms[f] for f, field in enumerate(TEXT_FIELDS)}
        # Docnums below ``bound`` are the base (older segments: arrays shared across
        # generations), the others the tail (read per generation); ``_deleted``: the deleted
        # documents, which arrays written before their deletion still hold.
        self.segments = list(columns.segments) if self.size == columns.size else []
        self.bound = base_rows(self.segments) if self.segments else self.size
        self._deleted = np.flatnonzero(~np.asarray(self.live))
        # The tail's segments, and which of them hold a term once their keys are listed
        # (``list_tail_keys``; ``None``: each term is looked up in each tail segment).
        self._tail = [leaf for leaf in self._leaves if leaf[1] >= self.bound]
        self._tail_keys: TailKeys | None = None
        self._shared = self._shared_postings()
        # The tail's terms as the indexer wrote them with the generation (``None``: looked up
        # in the tail's segments, ``_load``).
        self._tail_terms = self._open_tail_terms()
        # What the generation before had read (``adopt``), until ``warm`` has used it.
        self._adopted: dict[str, _Adopted] = {}
        self._newly_deleted = self._deleted  # ... and those deleted since it
        # posting arrays kept, at most (least recently used go); None: sized to the index
        if cache_bytes is None:
            cache_bytes = default_cache_bytes(self.size, self._shared is not None)
        self.cache_bytes = cache_bytes
        self._cache: OrderedDict[str, TermPostings] = OrderedDict()
        self._cached_bytes = 0
        self._lock = threading.Lock()
        self._columns: dict[str, Sequence] = {}
        self._stored: OrderedDict[int, CachedDocument] = OrderedDict()
        self._stored_chars = 0
        self._derived: OrderedDict[tuple, tuple[np.ndarray, ...]] = OrderedDict()
        self._derived_bytes = 0
        self._suggestions = None
        self._codes: dict[str, tuple[np.ndarray, Sequence[str]]] = {}
        self._accents: tuple[object] | None = None
        self._typos: tuple[object] | None = None
        _OPEN.add(self)

    def _open_files(self) -> GenerationFiles:
        """The generation's shared files (see ``store.generation.open_generation``)."""
        read = self.reader.generation()
        generation = read if read is not None and read >= 0 else self.generation
        serving = any(s.folder == self.folder and not s.searcher.is_closed for s in list(_OPEN))
        files = open_generation(self.folder, generation, self.reader, length_norms, serving=serving)
        if files.columns.size != self.size:
            log.warning(
                "the files of generation %d of %s describe %d documents, not %d: ignored",
                generation,
                self.folder,
                files.columns.size,
                self.size,
            )
            from .store.columns import build_columns

            columns = build_columns(self.reader, length_norms)
            files = GenerationFiles(generation, columns, None, None, shared=False)
        return files

    def _shared_postings(self) -> SharedPostings | None:
        """Where the large posting arrays of this generation's base are shared with the other
        workers and later generations (``None``: the generation has no files of its own, so
        each worker keeps its arrays)."""
        if not self.files.shared or not self.size or not self.bound:
            return None
        params, columns = self.params, self.files.columns
        base = base_key(columns.segments, self._averages)
        key = parameters_key((params.k1, params.field_weights, params.field_b))
        owner = generation_dir(self.folder, self.files.generation)
        return SharedPostings.open(store_dir(self.folder), base, key, self.bound, owner)

    def _open_tail_terms(self) -> TailTerms | None:
        """The tail's terms file of this generation (``store.tail_terms``), when it was written
        for this tail and these scoring parameters."""
        if not self.files.shared or self.bound >= self.size:
            return None
        params = self.params
        key = parameters_key((params.k1, params.field_weights, params.field_b))
        directory = generation_dir(self.folder, self.files.generation)
        return TailTerms.open(directory, self.bound, self.size, key)

    def postings(self, term: str) -> TermPostings:
        """BM25F postings of ``term`` over all text fields (cached per generation)."""
        with self._lock:
            cached = self._cache.get(term)
            if cached is not None:
                self._cache.move_to_end(term)
                return cached
        result = self._fetch(term)
        self._remember(term, result)
        return result

    def _fetch(self, term: str, leaves: Leaves | None = None) -> TermPostings:
        """``term``'s postings: its base's from the shared files, else read (and shared when
        large), joined with its tail's, read from the newer segments (or what the generation
        before had read of them, ``adopt``, and the segments it lacked)."""
        adopted = self._adopted.pop(term, None) if self._adopted else None
        if adopted is not None and adopted.base is None:  # this worker's own, up to ``end``
            assert adopted.known is not None
            return self._extended(term, leaves, adopted.known, adopted.known_df, 0, adopted.end)
        if adopted is not None:
            base = adopted.base
            df = adopted.base_df - self._deleted_in(base, 0, self.bound, self._newly_deleted)
        else:
            base = self._fetch_base(term, leaves)
            df = base.held - self._deleted_in(base, 0, self.bound)
        if self.bound == self.size and df == base.df:
            return base
        if adopted is not None and adopted.known is not None and self._tail_terms is None:
            # (With the tail's terms file, its arrays are mapped instead: no copy to extend.)
            known, known_df = adopted.known, adopted.known_df
            tail = self._extended(term, leaves, known, known_df, self.bound, adopted.end)
        elif self.bound < self.size:
            tail = self._load(term, leaves, self.bound, self.size)
        else:
            tail = TermPostings.empty()
        if not tail.held and base.dense is None:  # the base's arrays as they are: no copy
            return _recounted(base, df)
        if not base.mapped or (tail.df and _array_bytes(base, self.bound) < JOIN_BELOW):
            # This worker's own arrays, or a small mapped base the tail adds to: joined into one
            # part (a copy of at most ``JOIN_BELOW``), a pass cheaper.
            return _joined(base, tail, self.bound, self.size, df + tail.df)
        return SplitPostings(base, tail, self.bound, df + tail.df)

    def _deleted_in(
        self, postings: TermPostings, start: int, end: int, deleted: np.ndarray | None = None
    ) -> int:
        """How many of ``postings``' documents (numbered from ``start``) below ``end`` are
        among the ``deleted`` docnums (default: every deleted one; arrays read before a
        deletion still hold the document)."""
        deleted = self._deleted if deleted is None else deleted
        if not postings.held or not deleted.size:
            return 0
        lo, hi = np.searchsorted(deleted, (start, end))
        if lo == hi:
            return 0
        return int(np.count_nonzero(postings.holds(deleted[lo:hi] - start)))

    def _extended(
        self,
        term: str,
        leaves: Leaves | None,
        known: TermPostings,
        known_df: int,
        start: int,
        end: int,
    ) -> TermPostings:
        """``known`` (docnums ``start`` to ``end``, numbered from ``start``, read by the
        generation before, when ``known_df`` of its documents were live) joined with what the
        segments from ``end`` hold, numbered from ``start``."""
        df = known_df - self._deleted_in(known, start, end, self._newly_deleted)
        rest = self._load(term, leaves, end, self.size) if end < self.size else TermPostings.empty()
        return _joined(known, rest, end - start, self.size - start, df + rest.df)

    def _fetch_base(self, term: str, leaves: Leaves | None) -> TermPostings:
        """``term``'s postings in the base: from the base's terms file (``base_terms``; nothing
        at all for a term in no base document), from its shared file, else read (and shared
        when large)."""
        shared = self._shared
        terms = shared.base_terms() if shared is not None else None
        if terms is not None:
            at = terms.find(term)
            if at < 0:
                return TermPostings.empty()
            rare = terms.arrays(at)
            if rare is not None:
                postings = TermPostings(rare[0], rare[1], int(rare[0].size))
                postings.mapped = True
                return postings
        if shared is not None and (found := shared.get(term)) is not None:
            return TermPostings.from_shared(found)
        result = self._load(term, leaves, 0, self.bound)
        if shared is not None and result.df and result.nbytes >= MIN_SHARED_BYTES:
            mapped = shared.put(term, *result.arrays())
            if mapped is not None:
                return TermPostings.from_shared(mapped)
        return result

    def _remember(self, term: str, result: TermPostings) -> None:
        with self._lock:
            if term not in self._cache:
                self._cache[term] = result
                self._cached_bytes += result.nbytes
            while len(self._cache) > 1 and (
                self._cached_bytes > self.cache_bytes or len(self._cache) > MAX_CACHED_TERMS
            ):
                self._cached_bytes -= self._cache.popitem(last=False)[1].nbytes

    def _load(
        self, term: str, leaves: Leaves | None = None, start: int = 0, end: int | None = None
    ) -> TermPostings:
        """Read ``term``'s postings at docnums ``start`` to ``end`` (segment boundaries; default:
        every docnum) from ``leaves`` (default: this snapshot's reader), numbered from
        ``start``: the base (from 0) or the tail (from ``bound``)."""
        end = self.size if end is None else end
        if self._tail_terms is not None and start == self.bound and end == self.size:
            return self._tail_postings(term)
        btext, fields = term.encode("utf-8"), _indexed_fields(term)
        holding: list[list[int]] | None = None
        if self._tail_keys is not None and leaves is None and start >= self.bound:
            holding = self._tail_keys.holding(btext, fields)  # the tail segments to ask
            if not any(holding):  # in no tail segment
                return TermPostings.empty()
        acc: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for at, (field, indexed) in enumerate(zip(TEXT_FIELDS, fields, strict=True)):
            parts: list[tuple[np.ndarray, np.ndarray]] = []
            asked = leaves or self._leaves
            if holding is not None:
                asked = [self._tail[position] for position in holding[at]]
            for leaf, base, terms in asked:
                if not start <= base < end:
                    continue
                found = leaf_postings(leaf, terms, indexed, btext)
                if found is not None:
                    parts.append((found[0] + (base - start), found[1]) if base > start else found)
            if parts:  # one segment's arrays as they are: no copy
                acc[field] = concatenate(parts)
        if not acc:
            return TermPostings.empty()
        k1 = self.params.k1
        span = end - start
        norms = {f: n[start:end] for f, n in self._norms.items()}
        live = self.live[start:end]
        deleted = self._deleted_between(start, end)
        if len(acc) == 1:  # one field (one segment: ids sorted and unique already)
            ((field, (docs, w)),) = acc.items()
            tf = w * norms[field].take(docs)
        elif sum(ids.size for ids, _ in acc.values()) >= SPREAD_UNION_SHARE * span:
            sums = _spread_sums(
                [(ids, w * norms[f].take(ids)) for f, (ids, w) in acc.items()], span
            )
            if deleted:
                sums[~live] = 0
                deleted = False
            df = int(np.count_nonzero(sums))
            if df >= DENSE_SHARE * span:  # kept over every docnum: no docnums to list
                return TermPostings.spread(_saturate(sums.astype(np.float32), k1), df)
            docs, tf = _held(sums)
        else:
            all_ids = np.concatenate([ids for ids, _ in acc.values()])
            all_tf = np.concatenate([w * norms[f].take(ids) for f, (ids, w) in acc.items()])
            docs, tf = _union(all_ids, all_tf)
        if deleted:  # deleted documents: drop them
            keep = live.take(docs)
            docs, tf = docs[keep], tf[keep]
        docs = docs.astype(np.int32, copy=False)  # arrays decoded for this load: not shared
        return _sparse_or_spread(docs, _saturate(tf, k1), span, mapped=False)

    def _tail_postings(self, term: str) -> TermPostings:
        """``term``'s postings in the tail (numbered from ``bound``) from the tail's terms
        file: the arrays ``_load`` would read, mapped (over every docnum of the tail, as
        ``_load`` keeps them, where the term is in ``DENSE_SHARE`` of its documents)."""
        assert self._tail_terms is not None
        found = self._tail_terms.arrays(term)
        if found is None:
            return TermPostings.empty()
        docs, weight = found
        return _sparse_or_spread(docs, weight, self.size - self.bound, mapped=True)

    def adopt(self, previous: Snapshot) -> int:
        """Take over what ``previous`` had read of the documents this generation shares with it
        (an incremental run left the base and the averages as they were): the terms its
        searches used are joined with what the new segments hold (``warm``) instead of mapped,
        checked and read again.  Its tail is taken too when no merge changed the segments
        after the base (then only the run's own segment is read).  Returns how many terms;
        none when the bases differ."""
        mine, theirs = self._shared, previous._shared
        if mine is None or theirs is None or mine.directory != theirs.directory:
            return 0
        if previous.bound != self.bound or previous.params != self.params:
            return 0
        grown = previous.segments == self.segments[: len(previous.segments)]
        with previous._lock:
            recent = list(previous._cache.items())
        adopted: dict[str, _Adopted] = {}
        for term, found in reversed(recent):  # the most recently used first
            if isinstance(found, SplitPostings):
                base, tail = found.base, found.tail
                base_df = found.df - tail.df
                if grown:
                    adopted[term] = _Adopted(base, base_df, tail, tail.df, previous.size)
                else:
                    adopted[term] = _Adopted(base, base_df, None, 0, self.bound)
            elif previous.bound == previous.size:  # no tail: the arrays are the base's
                adopted[term] = _Adopted(found, found.df, None, 0, self.bound)
            elif grown:  # base and tail joined (``_joined``), the worker's own
                adopted[term] = _Adopted(None, 0, found, found.df, previous.size)
        # Documents the generation before had live (those it added were live then).
        was_live = np.ones(self.size, dtype=bool)
        was_live[previous._deleted[previous._deleted < self.size]] = False
        self._newly_deleted = self._deleted[was_live[self._deleted]]
        self._adopted = adopted
        return len(adopted)

    def _deleted_between(self, start: int, end: int) -> bool:
        """Whether any document at docnums ``start`` to ``end`` is deleted."""
        if start == 0 and end == self.size:
            return self.doc_count < self.size
        lo, hi = np.searchsorted(self._deleted, (start, end))
        return bool(hi > lo)

    def is_cached(self, term: str) -> bool:
        with self._lock:
            return term in self._cache

    def warm(self, limit: int = WARM_TERMS, pause: Callable[[], None] | None = None) -> int:
        """Load the postings of the corpus's most frequent terms (up to ``WARM_SHARE`` of the
        cache); returns how many.  Stops quietly when the generation goes away meanwhile.
        ``pause`` is called after each term (a switching worker leaves the process to the
        searches it serves meanwhile: ``engine.Pacer``).

        Runs in a background thread, so it reads through a reader of its own: Whoosh's segment
        files are plain file objects (seek, then read), which two threads must never share
        (``term_reader``'s reads need no file position, but a term it leaves to Whoosh does).
        """
        vocab = self.accents()
        if vocab is None:
            return 0
        loaded = 0
        reader = None
        leaves: Leaves = []
        try:
            storage, name = self.ix.storage, self.ix.indexname
            reader = generation_reader(storage, name, self.generation)
            leaves = _open_leaves(reader)
            self.list_tail_keys(leaves)
            deferred: list[str] = []
            for term in vocab.frequent_terms(limit):
                if self._cached_bytes >= WARM_SHARE * self.cache_bytes or self.searcher.is_closed:
                    break
                if not self._warm_term(term, leaves, deferred):
                    continue
                loaded += 1
                if pause is not None:
                    pause()
            for term in deferred:  # by now, mostly written by the worker that claimed them
                if self._cached_bytes >= WARM_SHARE * self.cache_bytes or self.searcher.is_closed:
                    break
                self._warm_term(term, leaves, None)
                loaded += 1
                if pause is not None:
                    pause()
            for term in list(self._adopted):  # what searches used in the generation before
                if self._cached_bytes >= WARM_SHARE * self.cache_bytes or self.searcher.is_closed:
                    break
                if not self.is_cached(term):
                    self._warm_one(term, leaves)
                    loaded += 1
                    if pause is not None:
                        pause()
        except Exception:  # the files went away with a newer generation: nothing to warm
            pass
        finally:
            self._adopted = {}  # what is left: not kept alive past the warm-up
            _close_leaves(leaves)
            if reader is not None:
                reader.close()
        return loaded

    def list_tail_keys(self, leaves: Leaves | None = None) -> bool:
        """List the keys of the tail's term dictionaries (``store.tail_keys``), so that searches
        ask only the tail segments that may hold a term (``_load``); whether any segment is
        listed.  ``leaves``: this generation's segments, opened by the calling thread (default:
        the snapshot's own).  Nothing is listed without a tail; a segment read through Whoosh,
        one whose tables do not read as written (logged), and those past ``MAX_KEYS`` are
        asked for every term, as before."""
        if self._tail_keys is not None:
            return True
        if self._tail_terms is not None:  # the tail's terms are mapped: nothing to look up
            return False
        tail = [terms for _, base, terms in leaves or self._leaves if base >= self.bound]
        if not tail:
            return False
        self._tail_keys = TailKeys.of(tail, where=str(self.folder))
        return self._tail_keys is not None

    def _warm_term(self, term: str, leaves: Leaves, deferred: list[str] | None) -> bool:
        """Load ``term`` unless cached; ``False`` when another worker is building its shared
        arrays now (it is put on ``deferred``, for after the others: workers that open a
        generation together share the work instead of each doing all of it)."""
        if self.is_cached(term):
            return True
        shared = self._shared
        adopted = term in self._adopted
        if shared is not None and deferred is not None and not adopted and not shared.has(term):
            if not shared.claim(term):
                deferred.append(term)
                return False
            try:
                self._warm_one(term, leaves)
            finally:
                shared.release(term)
            return True
        self._warm_one(term, leaves)
        return True

    def _warm_one(self, term: str, leaves: Leaves) -> None:
        """Load ``term`` into the cache with its shared file's pages mapped in, and its ``top``
        worked out (a pass over its arrays, which the first search reading it paid: ~0.2 ms a
        query over HTTP at a million articles)."""
        postings = self._fetch(term, leaves)
        postings.fault_in()
        postings.top  # noqa: B018 - kept with the term
        self._remember(term, postings)

    def share_frequent(self) -> int:
        """Write the shared arrays of every base term large enough to share that no file holds
        yet, the most frequent first, while the directory's limit allows; returns how many it
        wrote.  The indexer calls it after a commit: otherwise the workers
        that first open a new base build them during their first searches (at a million
        articles ~40 s of CPU, while they serve), then go on writing files, one flushed to disk
        per term, for the less frequent terms queries read.

        The terms come out of the base segments' dictionaries (``SegmentTerms.frequent``: every
        syllable, compound, pair and number), their document frequencies summed over the text
        fields, which is at least the term's.  A base done is marked: a later run that keeps it
        (an incremental one) does nothing."""
        shared = self._shared
        largest = DENSE_BYTES_PER_DOC * self.bound + TERM_OBJECT_BYTES  # a dense term's
        if shared is None or largest < MIN_SHARED_BYTES or shared.shared_frequent():
            return 0
        min_df = _shared_min_df(self.bound)
        leaves = [t for _, base, t in self._leaves if t is not None and base < self.bound]
        # A term in ``min_df`` documents is in a third of them in one of its fields at least;
        # then its frequency in each field, summed: at least the term's.
        found = {term for t in leaves for _, term, _ in t.frequent(ALL_VIEWS, min_df // 3)}
        summed: dict[str, int] = {}
        for term in found:
            btext, indexed = term.encode("utf-8"), _indexed_fields(term)
            summed[term] = sum(t.doc_frequency(f, btext) for t in leaves for f in indexed)
        written = 0
        for term, df in sorted(summed.items(), key=lambda kv: (-kv[1], kv[0])):
            if df < min_df or not term or shared.has(term) or not shared.claim(term):
                continue  # too rare, written already, or a worker is writing it now
            try:
                mapped = self._fetch_base(term, None).mapped
            finally:
                shared.release(term)
            written += mapped
            if not mapped and not shared.writable:
                return written
            if not mapped and shared.full:  # the directory's limit: the rest stay private
                break
        shared.mark_frequent_shared()
        return written

    def base_terms_writer(self) -> TermsWriter | None:
        """The writer of the base's terms file (``store.base_terms``), its terms listed: every
        term of its text fields; ``None`` where it is not written (no shared directory, a
        segment this reader cannot scan, or written already).  Memory: the terms and their
        summed document frequencies."""
        shared = self._shared
        if shared is None or not shared.writable or (shared.directory / TERMS_DIRECTORY).exists():
            return None
        leaves = self._base_segments()
        if leaves is None:
            return None
        summed: dict[str, int] = {}
        for segment in leaves:
            for _, term, df in segment.frequent(ALL_VIEWS, 1):
                summed[term] = summed.get(term, 0) + df
        # A term in at least ``large`` documents of its fields (summed) may be large enough for
        # a shared file of its own (``share_frequent``): it is read as before.
        large = _shared_min_df(self.bound)
        return TermsWriter.begin(
            shared.directory, ((term, summed[term] >= large) for term in sorted(summed))
        )

    def _base_segments(self) -> list | None:
        """The base's segments' term readers (``None``: one this reader cannot scan)."""
        leaves = [t for _, base, t in self._leaves if base < self.bound]
        return None if not leaves or any(t is None for t in leaves) else leaves

    def _rare_arrays(self, term: str) -> tuple[np.ndarray, np.ndarray] | None:
        """A base term's docnums and weights for the terms file (``None``: a dense one)."""
        postings = self._load(term, None, 0, self.bound)
        return None if postings.dense is not None else (postings.docs, postings.weight)

    def write_base_terms(
        self,
        writer: TermsWriter | None = None,
        before_finish: Callable[[], object] | None = None,
    ) -> bool:
        """Write the base's terms file (``store.base_terms``): every term of its text fields,
        with the arrays of those too small for a shared file of their own.  Returns whether it
        was written (not: see ``base_terms_writer``).  The indexer calls it after a commit, as
        ``share_frequent``, with a helper process writing chunks beside it (``writer``, and
        ``before_finish`` stops the helper before the chunks are joined); a run that keeps the
        base finds it written.  Time: a read of each rare term (46 s at 150k articles, 78 s at
        a million in one process, README)."""
        writer = writer if writer is not None else self.base_terms_writer()
        if writer is None:
            return False
        with _mapped(self._base_segments() or ()):
            return writer.write(self._rare_arrays, before_finish)

    def help_write_base_terms(self, temporary: Path, keep_going: Callable[[], bool]) -> int:
        """Write chunks of another process's terms file of this base (``TermsWriter.join``):
        the helper process the indexer starts.  Returns how many; -1 when ``temporary`` is not
        this snapshot's base's (a helper that opened another generation)."""
        shared = self._shared
        leaves = self._base_segments()
        if shared is None or leaves is None or not _same_path(temporary.parent, shared.directory):
            return -1
        writer = TermsWriter.join(temporary)
        with _mapped(leaves):
            return writer.work(self._rare_arrays, keep_going)

    def column(self, name: str) -> Sequence:
        """A stored column (``id``, ``date``, ``source``) indexed by docnum."""
        columns = self.files.columns
        if name == "id":
            return columns.ids
        if name in columns.coded:
            coded = columns.coded[name]
            return Labelled(coded.codes, coded.labels)
        with self._lock:
            values = self._columns.get(name)
        if values is None:  # a column the generation's files do not hold: read it from Whoosh
            if self.size:
                reader = self.reader.column_reader(name)
                values = [reader[d] for d in range(self.size)]
            else:
                values = []
            with self._lock:
                self._columns[name] = values
        return values

    def accents(self):
        """The accent-restoration vocabulary of this generation (``None`` when it has none)."""
        with self._lock:
            if self._accents is not None:
                return self._accents[0]
        vocab = self._load_accents()
        with self._lock:
            self._accents = (vocab,)
        return vocab

    def _load_accents(self):
        from .accents import CountsVocabulary, MappedVocabulary

        if self.files.vocabulary is not None:
            return MappedVocabulary(self.files.vocabulary)
        path = self.folder / ACCENTS_FILE
        if not path.exists():
            return None
        log.warning(
            "%s: reading the accent vocabulary of an older vnsearch into this process", path
        )
        try:
            return CountsVocabulary.load(path)
        except (OSError, ValueError):
            return None

    def typos(self):
        """The typo table of this generation (``typos.TypoTable``; ``None`` without an accent
        vocabulary): mapped from the files the indexer wrote with the generation, else built by
        this process from the vocabulary (~0.4 s at a million articles, and its own memory)."""
        from .typos import TypoTable, table_for

        with self._lock:
            if self._typos is not None:
                return self._typos[0]
        if self.files.typos is not None:
            table = TypoTable.from_arrays(self.files.typos)
        else:
            vocab = self.accents()
            table = table_for(vocab) if vocab is not None else None
        with self._lock:
            self._typos = (table,)
        return table

    def suggestions(self):
        """The suggest-as-you-type table of this generation (built from titles when the
        generation has no files of its own)."""
        from .suggest import SuggestionTable

        with self._lock:
            table = self._suggestions
        if table is None:
            if self.files.suggest is not None:
                table = SuggestionTable(arrays=self.files.suggest)
            else:
                log.warning(
                    "%s: building the suggestions from every title in this process", self.folder
                )
                titles = (
                    self.reader.stored_fields(d).get("title") or ""
                    for d in np.flatnonzero(self.live).tolist()
                )
                table = SuggestionTable(titles)
            with self._lock:
                self._suggestions = table
        return table

    def codes(self, name: str) -> np.ndarray:
        """Integer codes per docnum for a column (``labels(name)[code]`` is the value).

        ``year`` is derived from ``date``.  Facets and story collapsing count codes with numpy.
        """
        return self._coded(name)[0]

    def facet_pairs(self) -> np.ndarray:
        """Per docnum: its ``source`` code times the ``year`` labels plus its ``year`` code
        (``store.columns.facet_pairs``)."""
        return self.files.columns.facet_pairs

    def shared_story(self) -> np.ndarray:
        """Per docnum: whether another document tells the same story (near-duplicates)."""
        return self.files.columns.shared_story

    def labels(self, name: str) -> Sequence[str]:
        return self._coded(name)[1]

    def _coded(self, name: str) -> tuple[np.ndarray, Sequence[str]]:
        coded = self.files.columns.coded.get(name)
        if coded is not None:
            return coded.codes, coded.labels
        with self._lock:
            cached = self._codes.get(name)
        if cached is None:  # a column the generation's files do not code
            values = [v or "" for v in self.column(name)]
            labels = sorted(set(values))
            index = {label: i for i, label in enumerate(labels)}
            codes = np.fromiter((index[v] for v in values), dtype=np.int32, count=len(values))
            cached = (codes, labels)
            with self._lock:
                self._codes[name] = cached
        return cached

    def stored(self, docnum: int) -> dict:
        """The stored fields of ``docnum`` (shared: do not modify)."""
        return self.document(docnum).stored

    def derived(
        self, key: tuple, build: Callable[[], tuple[np.ndarray, ...]]
    ) -> tuple[np.ndarray, ...]:
        """The arrays ``build`` makes for ``key``, made once while they stay among the most
        recently used ``DERIVED_CACHE_BYTES`` (read only: every query that asks shares them).
        ``key`` must name everything ``build`` reads besides this generation."""
        with self._lock:
            found = self._derived.get(key)
            if found is not None:
                self._derived.move_to_end(key)
                return found
        made = build()
        for array in made:
            array.flags.writeable = False
        size = _derived_bytes(made)
        with self._lock:
            if key not in self._derived and size <= DERIVED_CACHE_BYTES:
                self._derived[key] = made
                self._derived_bytes += size
            while self._derived_bytes > DERIVED_CACHE_BYTES:
                _, dropped = self._derived.popitem(last=False)
                self._derived_bytes -= _derived_bytes(dropped)
        return made

    @property
    def deleted(self) -> np.ndarray:
        """The deleted docnums (ascending): where counts over every docnum are not read."""
        return self._deleted

    def document(self, docnum: int) -> CachedDocument:
        """``docnum``'s stored fields, and what callers derived from them.  The last
        ``STORED_CACHE`` are kept: a phrase query reads its candidates' text and then its hits'
        again, an unpickled document costs ~40 us, and the same article answers many queries."""
        with self._lock:
            found = self._stored.get(docnum)
            if found is not None:
                self._stored.move_to_end(docnum)
                return found
        found = CachedDocument(self.searcher.stored_fields(docnum), {})
        with self._lock:
            if docnum not in self._stored:
                self._stored[docnum] = found
                self._stored_chars += found.chars
            while len(self._stored) > 1 and (
                len(self._stored) > STORED_CACHE or self._stored_chars > STORED_CACHE_CHARS
            ):
                self._stored_chars -= self._stored.popitem(last=False)[1].chars
        return found

    def close(self) -> None:
        _OPEN.discard(self)
        _close_searcher(self.searcher, self._leaves)


@contextlib.contextmanager
def _mapped(segments: Sequence) -> Iterator[None]:
    """The segments' dictionaries read through memory maps (``SegmentTerms.mapped``) meanwhile:
    what a bulk reader of every term wants."""
    with contextlib.ExitStack() as stack:
        for segment in segments:
            stack.enter_context(segment.mapped())
        yield


def _same_path(first: Path, second: Path) -> bool:
    """Whether two paths name one directory (the indexer's and its helper's spelling of it)."""
    try:
        return first.resolve() == second.resolve()
    except OSError:
        return False


def _derived_bytes(arrays: tuple[np.ndarray, ...]) -> int:
    """What an entry of ``Snapshot.derived`` costs."""
    return DERIVED_ENTRY_BYTES + sum(array.nbytes for array in arrays)


def _close_searcher(searcher, leaves: Leaves) -> None:
    _close_leaves(leaves)
    if not searcher.is_closed:
        searcher.close()
