"""Writing one Whoosh segment in bulk from per-document term counts.

Whoosh's ``SegmentWriter`` sends every posting through a Python pool (a tuple per posting, sorted
and spilled to temporary files) and then makes a codec call per posting: with about a thousand
postings per article, that was most of an indexing run.
vnsearch hands the writer ``term -> frequency`` per document and field already, so this module
sorts a segment's postings with numpy and writes the files Whoosh's own W3 codec reads: the term
dictionary (``.trm``), the posting blocks (``.pst``), and the per-document columns, lengths and
stored fields (through Whoosh's own ``W3PerDocWriter``).  The result is an ordinary segment: Whoosh
opens, searches, merges and deletes from it as from one it wrote itself
(``tests/test_segment_writer.py`` compares the two term by term).

Two things differ from Whoosh's writer, both read by Whoosh's reader as they are:

* Posting lists of at most ``INLINE_POSTINGS`` documents are kept inside their term's dictionary
  entry (``W3TermInfo`` supports it; Whoosh's writer never does it, because its test
  ``len(postings) < inlinelimit`` with the limit of 1 can never pass).  A posting block costs
  about 65 bytes of header, and most terms occur in a handful of documents.
* Weights (term frequencies) are pickled as integers instead of floats.
* A posting block's ids (delta-encoded) and weights are ``array.array`` s of the narrowest
  unsigned type, not tuples (``_Narrow``): ten times less to unpickle.

And, where asked, terms held by one document only are stored under a shared term (``shared``).

Whoosh's reader unpickles any protocol; the inlined lists use protocol 3.
"""

from __future__ import annotations

import contextlib
import itertools
import struct
import zlib
from array import array
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from hashlib import md5
from pickle import dumps

import numpy as np
from whoosh import columns
from whoosh.codec.whoosh3 import WHOOSH3_HEADER_MAGIC, W3PerDocWriter
from whoosh.util.numeric import _length_byte_cache

# Lists this long or shorter are inlined in the term dictionary: an inlined posting costs ~5 bytes
# of pickle, a posting block ~65 bytes of header plus ~2 bytes per posting.
INLINE_POSTINGS = 16
CHUNK_POSTINGS = 1 << 20  # postings turned into Python objects at a time, per field
SORT_POSTINGS = 1 << 21  # postings of a field sorted at a time
# What a held posting and a distinct term of a field cost the builder until its segment is
# written (``SegmentBuilder.held_bytes``): a posting's term id and frequency, a term's dictionary
# entry and string.
POSTING_BYTES = 8
TERM_BYTES = 220
# zlib levels (Whoosh's reader decompresses any; 0: not compressed).  Posting blocks: none.
# Decompressing was 38 % of loading a frequent term once the rest got cheap; at 47k articles,
# uncompressed blocks load 26 % faster (1,500 frequent terms: 1.16 -> 0.86 s CPU), merge 17 %
# faster (33.4 -> 27.7 s), for a segment 15 % larger (424 -> 486 MB).  Stored text: 9, smaller
# than 3 at no measurable cost.
BLOCK_ZLIB_LEVEL = 0
# Posting blocks are pickled with this protocol: from 3 on, an ``array.array`` is its bytes.
BLOCK_PROTOCOL = 4
STORED_ZLIB_LEVEL = 9

_TERMINFO = np.dtype(
    [
        ("flags", "u1"),
        ("weight", ">f4"),
        ("df", ">u4"),
        ("minlength", "u1"),
        ("maxlength", "u1"),
        ("maxweight", ">f4"),
        ("minid", ">u4"),
        ("maxid", ">u4"),
    ]
)  # W3TermInfo._struct, "!BfIBBfII": 23 bytes, no padding
_LENGTHS = struct.Struct("!ii")  # a hash-file entry: key length, value length
_EXTENT = struct.Struct("!qi")  # W3TermInfo: offset (pack_long) and length (pack_int) in .pst
_INT = struct.Struct("!i")
_LENGTH_TABLE = np.asarray(_length_byte_cache, dtype=np.int64)


def length_bytes(lengths: np.ndarray) -> np.ndarray:
    """Whoosh's ``length_to_byte`` for an array of field lengths (one byte each)."""
    out = np.searchsorted(_LENGTH_TABLE, lengths, side="left")
    out[lengths >= 106374] = 255
    return out.astype(np.uint8)


@dataclass(frozen=True, slots=True)
class BatchPostings:
    """One field's postings for a batch of documents, as arrays (what a pool worker sends back).

    ``tids`` index ``terms``; postings are in document order, ``counts`` of them per document.
    """

    terms: list
    tids: np.ndarray
    freqs: np.ndarray
    counts: np.ndarray
    lengths: np.ndarray  # the field's length in each document (sum of its frequencies)


class FieldPostings:
    """One field's postings, gathered in document order: a document at a time (``add``) or a
    batch analysed elsewhere at a time (``add_batch``), until the segment is written."""

    __slots__ = ("vocab", "postings", "_tids", "_freqs", "_counts", "_lengths", "_chunks")

    def __init__(self) -> None:
        # term -> id, in first-seen order
        self.vocab: dict = defaultdict(itertools.count().__next__)
        self.postings = 0  # held so far (what the builder's memory grows with)
        self._tids: list[int] = []
        self._freqs: list[int] = []
        self._counts: list[int] = []
        self._lengths: list[int] = []
        self._chunks: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []

    def add(self, frequencies: dict) -> int:
        """Add one document's ``term -> frequency``; returns the field length (their sum)."""
        self._tids.extend(map(self.vocab.__getitem__, frequencies))
        values = frequencies.values()
        self._freqs.extend(values)
        self._counts.append(len(frequencies))
        self.postings += len(frequencies)
        length = sum(values)
        self._lengths.append(length)
        return length

    def add_batch(self, batch: BatchPostings) -> None:
        self._flush()
        self.postings += int(batch.tids.size)
        ids = np.fromiter(map(self.vocab.__getitem__, batch.terms), np.int32, len(batch.terms))
        self._chunks.append((ids[batch.tids], batch.freqs, batch.counts, batch.lengths))

    def batch(self) -> BatchPostings:
        """Everything added so far, as a batch of its own vocabulary."""
        tids, freqs, counts, lengths = self.arrays()
        return BatchPostings(list(self.vocab), tids.astype(np.int32), freqs, counts, lengths)

    def _flush(self) -> None:
        if self._counts:
            self._chunks.append(
                (
                    np.asarray(self._tids, dtype=np.int32),
                    np.asarray(self._freqs, dtype=np.int32),
                    np.asarray(self._counts, dtype=np.int32),
                    np.asarray(self._lengths, dtype=np.int64),
                )
            )
            self._tids, self._freqs, self._counts, self._lengths = [], [], [], []

    def arrays(
        self, release: bool = False
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(term ids, frequencies, postings per document, lengths), in document order;
        ``release``: the postings are no longer held here (their writer frees them as it goes)."""
        self._flush()
        chunks = self._chunks
        if release:
            self._chunks = []
        if not chunks:
            empty = np.zeros(0, dtype=np.int64)
            return empty, empty.astype(np.int32), empty.astype(np.int32), empty
        return tuple(np.concatenate(parts) for parts in zip(*chunks, strict=True))


def write_field(
    fieldwriter,
    postings: FieldPostings,
    scorable: bool,
    shared: Callable[[str], str | None] | None = None,
) -> None:
    """Write one field's terms and postings through ``fieldwriter``'s open files (a
    ``W3FieldWriter`` between ``start_field`` and ``finish_field``).

    Blocks and term entries record the field lengths of their documents (as length bytes) only
    for a ``scorable`` field, as Whoosh does.  A term one document holds goes under the term
    ``shared`` maps it to, when it maps it to one; frequencies add up where a document holds
    several terms going under one.
    """
    tids, freqs, counts, lengths = postings.arrays(release=True)
    if not tids.size:
        return
    counts_of_term = _term_counts(tids, len(postings.vocab))
    held = counts_of_term > 0
    remap = _pooled(postings, counts_of_term == 1, shared) if shared else None
    del counts_of_term
    # Ranks in byte order (the dictionary is ordered) of the terms written: those some document
    # holds, pooled ones under their shared term.
    unique = [t.encode("utf-8") if isinstance(t, str) else t for t in postings.vocab]
    if remap is not None:
        moved = np.flatnonzero(remap[: held.size] != np.arange(held.size))
        held = np.concatenate([held, np.zeros(remap.size - held.size, dtype=bool)])
        held[moved] = False
        held[remap[moved]] = True
    order = sorted(np.flatnonzero(held).tolist(), key=unique.__getitem__)
    rank = np.full(len(unique), -1, dtype=np.int32)
    rank[order] = np.arange(len(order), dtype=np.int32)
    ranks = (rank if remap is None else rank[remap])[tids]
    del tids, rank
    terms = [unique[i] for i in order]
    del unique, order
    docs = np.repeat(np.arange(counts.size, dtype=np.int32), counts)
    doc_lens = length_bytes(lengths) if scorable else None
    # A slice of terms at a time: sorting a large field's postings at once took several times
    # the memory the builder holds them in.
    for first, last in _slices(np.bincount(ranks, minlength=len(terms)), SORT_POSTINGS):
        if first == 0 and last == len(terms):
            chosen = np.arange(ranks.size)
        else:
            chosen = np.flatnonzero((ranks >= first) & (ranks < last))
        # One document holds a term once per field, and documents come in order: sorting by
        # rank, stably, leaves each term's documents ascending.
        part = ranks[chosen]
        order = np.argsort(part, kind="stable")
        part, chosen = part[order], chosen[order]
        del order
        part_docs, part_freqs = docs[chosen], freqs[chosen]
        del chosen
        if remap is not None:  # a document holding two terms pooled under one: one posting
            part, part_docs, part_freqs = _add_repeats(part, part_docs, part_freqs)
        df = np.bincount(part - first, minlength=last - first)
        del part
        lens = doc_lens[part_docs] if doc_lens is not None else np.zeros(part_docs.size, np.uint8)
        write_sorted(fieldwriter, terms[first:last], part_docs, part_freqs, lens, df)


def _slices(df: np.ndarray, limit: int) -> list[tuple[int, int]]:
    """Consecutive ranges of terms holding at most ``limit`` postings together (or one term)."""
    ends = np.cumsum(df)
    out, first = [], 0
    while first < df.size:
        last = int(np.searchsorted(ends, (ends[first - 1] if first else 0) + limit, side="right"))
        last = max(last, first + 1)
        out.append((first, last))
        first = last
    return out


def _term_counts(tids: np.ndarray, size: int) -> np.ndarray:
    """Postings per term id (``np.bincount`` a slice at a time: it copies its input to int64)."""
    counts = np.zeros(size, dtype=np.int64)
    for start in range(0, tids.size, SORT_POSTINGS):
        counts += np.bincount(tids[start : start + SORT_POSTINGS], minlength=size)
    return counts


def _pooled(
    postings: FieldPostings, single: np.ndarray, shared: Callable[[str], str | None]
) -> np.ndarray | None:
    """Term id -> the id it is written under: a term one document holds (``single``), under its
    shared term (added to the vocabulary) when ``shared`` gives one; ``None`` when none moves."""
    terms = list(postings.vocab)
    remap = np.arange(len(terms), dtype=np.int32)
    moved = False
    for i in np.flatnonzero(single).tolist():
        target = shared(terms[i])
        if target is not None:
            remap[i] = postings.vocab[target]
            moved = True
    if not moved:
        return None
    if len(postings.vocab) > remap.size:  # shared terms new to the vocabulary map to themselves
        added = np.arange(remap.size, len(postings.vocab), dtype=np.int32)
        remap = np.concatenate([remap, added])
    return remap


def _add_repeats(
    ranks: np.ndarray, docs: np.ndarray, freqs: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Postings sorted by (rank, docnum) with any repeated (rank, docnum) made one, its
    frequencies added up."""
    repeat = (ranks[1:] == ranks[:-1]) & (docs[1:] == docs[:-1])
    if not repeat.any():
        return ranks, docs, freqs
    first = np.flatnonzero(np.concatenate(([True], ~repeat)))
    return ranks[first], docs[first], np.add.reduceat(freqs, first).astype(freqs.dtype)


def write_sorted(
    fieldwriter,
    terms: list[bytes],
    docs: np.ndarray,
    freqs: np.ndarray,
    lens: np.ndarray,
    df: np.ndarray,
) -> None:
    """Write ``terms`` (in byte order, after any the field has already) with their postings:
    ``df[i]`` consecutive (docnum, frequency, length byte) of ``docs``/``freqs``/``lens`` each,
    docnums ascending.  The merge writes its terms a chunk at a time through here too, so a
    merged segment is laid out exactly as one written whole."""
    if not terms:
        return
    starts = np.zeros(len(terms), dtype=np.int64)
    np.cumsum(df[:-1], out=starts[1:])
    info = np.zeros(len(terms), dtype=_TERMINFO)
    info["weight"] = np.add.reduceat(freqs, starts, dtype=np.int64)
    info["df"] = df
    info["minlength"] = np.minimum.reduceat(lens, starts)
    info["maxlength"] = np.maximum.reduceat(lens, starts)
    info["maxweight"] = np.maximum.reduceat(freqs, starts)
    info["minid"] = docs[starts]
    info["maxid"] = docs[starts + df - 1]
    inline = df <= INLINE_POSTINGS
    info["flags"] = inline
    headers = info.tobytes()
    size = _TERMINFO.itemsize

    # A chunk of terms at a time: Python lists of every posting of a large field took gigabytes.
    ends = starts + df
    first = 0
    while first < len(terms):
        last = int(np.searchsorted(ends, starts[first] + CHUNK_POSTINGS, side="right"))
        last = max(last, first + 1)
        _write_terms(
            fieldwriter,
            terms[first:last],
            headers[first * size : last * size],
            (docs, freqs, lens),
            starts[first:last],
            df[first:last],
            inline[first:last],
        )
        first = last


def _write_terms(
    fieldwriter,
    terms: list[bytes],
    headers: bytes,
    postings: tuple[np.ndarray, np.ndarray, np.ndarray],
    starts: np.ndarray,
    df: np.ndarray,
    inline: np.ndarray,
) -> None:
    """Write consecutive terms (sorted) of the open field: their dictionary entries, with their
    postings inlined or as blocks in the postings file."""
    docs, freqs, lens = postings
    base, stop = int(starts[0]), int(starts[-1] + df[-1])
    docs, freqs, lens = docs[base:stop], freqs[base:stop], lens[base:stop]
    starts = starts - base
    blocks = iter(
        _blocks(docs, freqs, lens, starts[~inline], df[~inline], fieldwriter._codec._blocklimit)
    )
    doc_list, freq_list = docs.tolist(), freqs.tolist()
    size = _TERMINFO.itemsize
    prefix = struct.pack("!H", fieldwriter._fieldid)
    postfile = fieldwriter._postfile
    post_offset = postfile.tell()
    post_chunks: list[bytes] = []
    keys: list[bytes] = []
    values: list[bytes] = []
    for i, (term, start, count, inlined) in enumerate(
        zip(terms, starts.tolist(), df.tolist(), inline.tolist(), strict=True)
    ):
        header = headers[i * size : (i + 1) * size]
        if inlined:
            # Protocol 3 pickles bytes in 2 bytes (2: ~20).  The empty values must be there:
            # Whoosh's ``ListMatcher.value`` gives ``''`` (str) without them, which its merge
            # rejects.
            end = start + count
            ids = tuple(doc_list[start:end])
            weights = tuple(freq_list[start:end])
            if weights.count(1) == count:  # ``ListMatcher`` reads no weights as all 1.0
                weights = None
            value = header + dumps((ids, weights, (b"",) * count), 3)
        else:
            written = next(blocks)
            value = header + _EXTENT.pack(post_offset, len(written))
            post_chunks.append(written)
            post_offset += len(written)
        keys.append(prefix + term)
        values.append(value)
    postfile.write(b"".join(post_chunks))
    _add_all(fieldwriter._tindex, keys, values)


def _blocks(
    docs: np.ndarray,
    freqs: np.ndarray,
    lens: np.ndarray,
    starts: np.ndarray,
    counts: np.ndarray,
    limit: int,
) -> list[bytes]:
    """The posting blocks of the terms whose postings are ``[starts, starts + counts)``, as
    ``W3PostingsWriter`` lays them out: per term, a magic header, then blocks of ``limit``
    postings (ids delta-encoded from 0 in each block; the last block's length negated).
    Statistics are computed for all blocks at once; only pickling and zlib run per block."""
    if not starts.size:
        return []
    nblocks = (counts + limit - 1) // limit
    first_block = np.cumsum(nblocks) - nblocks
    within = np.arange(int(nblocks.sum())) - np.repeat(first_block, nblocks)
    bstart = np.repeat(starts, nblocks) + within * limit
    bend = np.minimum(bstart + limit, np.repeat(starts + counts, nblocks))
    deltas = docs.copy()
    deltas[1:] -= docs[:-1]
    deltas[bstart] = docs[bstart]
    # reduceat over [start, end) pairs: every other result; a sentinel keeps ``end`` in range.
    bounds = np.column_stack((bstart, bend)).ravel()

    def per_block(op, values: np.ndarray) -> list:
        padded = np.append(values, values[:1])
        return op.reduceat(padded, bounds)[::2].tolist()

    maxw, minw = per_block(np.maximum, freqs), per_block(np.minimum, freqs)
    minl, maxl = per_block(np.minimum, lens), per_block(np.maximum, lens)
    maxd = per_block(np.maximum, deltas)
    last_ids = docs[bend - 1].tolist()
    block_starts, block_ends = bstart.tolist(), bend.tolist()
    delta_bytes, freq_bytes = _Narrow(deltas), _Narrow(freqs)
    out: list[bytes] = []
    parts: list[bytes] = []
    block = 0
    for blocks_of_term in nblocks.tolist():
        parts.append(WHOOSH3_HEADER_MAGIC)
        for k in range(blocks_of_term):
            a, b = block_starts[block], block_ends[block]
            if minw[block] == maxw[block]:
                mini = None if maxw[block] == 1 else float(maxw[block])
            else:
                mini = freq_bytes.block(a, b, maxw[block])
            ids = delta_bytes.block(a, b, maxd[block])
            data = dumps((ids, mini, None), BLOCK_PROTOCOL)
            if BLOCK_ZLIB_LEVEL:
                data = zlib.compress(data, BLOCK_ZLIB_LEVEL)
            stats = (b - a, last_ids[block], float(maxw[block]), BLOCK_ZLIB_LEVEL)
            info = dumps((*stats, minl[block], maxl[block]), 2)
            length = len(info) + len(data)
            parts.extend((_INT.pack(-length if k == blocks_of_term - 1 else length), info, data))
            block += 1
        out.append(b"".join(parts))
        parts.clear()
    return out


class _Narrow:
    """Non-negative integers as the narrowest ``array.array`` a block's largest fits, a block at
    a time.  Pickled (protocol 3 and up) an array is its raw bytes: unpickling and converting a
    block of 1,024 postings cost ~10 µs against ~34 for a tuple of ints, most of the time of
    loading a frequent term.  Whoosh's reader iterates an array as it iterates a tuple."""

    _CODES = (("B", np.uint8, 1 << 8), ("H", np.uint16, 1 << 16), ("I", np.uint32, 1 << 32))

    def __init__(self, values: np.ndarray) -> None:
        self.values = values
        self._bytes: dict[str, bytes] = {}

    def block(self, start: int, end: int, largest: int) -> array:
        """Values ``start`` to ``end``, whose largest is ``largest``."""
        for code, dtype, bound in self._CODES:
            if largest < bound:
                data = self._bytes.get(code)
                if data is None:
                    data = self._bytes[code] = self.values.astype(dtype).tobytes()
                size = np.dtype(dtype).itemsize
                return array(code, data[start * size : end * size])
        raise ValueError(f"{largest} does not fit a posting block")


_ENTRY = np.dtype([("keylen", ">i4"), ("valuelen", ">i4")])  # filetables._lengths, "!ii"


def _add_all(tindex, keys: list[bytes], values: list[bytes]) -> None:
    """``OrderedHashWriter.add`` for many sorted keys at once: one write, positions and hashes
    computed with numpy instead of a Python call per key."""
    if not keys:
        return
    if keys[0] <= tindex.lastkey:
        raise ValueError(f"keys must increase: {tindex.lastkey!r}..{keys[0]!r}")
    n = len(keys)
    lengths = np.zeros(n, dtype=_ENTRY)
    lengths["keylen"] = np.fromiter(map(len, keys), np.int64, n)
    lengths["valuelen"] = np.fromiter(map(len, values), np.int64, n)
    sizes = 8 + lengths["keylen"].astype(np.int64) + lengths["valuelen"]
    dbfile = tindex.dbfile
    positions = np.empty(n, dtype=np.int64)
    positions[0] = dbfile.tell()
    np.cumsum(sizes[:-1], out=positions[1:])
    positions[1:] += positions[0]
    packed = lengths.tobytes()
    heads = [packed[i : i + 8] for i in range(0, 8 * n, 8)]
    dbfile.write(
        b"".join([part for entry in zip(heads, keys, values, strict=True) for part in entry])
    )
    # HashWriter's md5_hash: the digest's last four bytes, big-endian.  Kept as arrays until
    # ``write_hashes`` (Whoosh keeps a tuple per key: ~100 bytes, for millions of terms).
    digests = b"".join([md5(key).digest() for key in keys])
    hashes = np.frombuffer(digests, dtype=">u4").reshape(n, 4)[:, 3].astype(np.uint32)
    _pending_hashes(tindex).append((hashes, positions))
    index = tindex.index  # a GrowableArray: widen its type once, then extend in C
    last = int(positions[-1])
    limit = {"B": 1 << 8, "H": 1 << 16, "i": 1 << 31, "I": 1 << 32}.get(index.typecode)
    if limit is not None and last >= limit:
        index._retype(last)
    index.array.extend(positions.tolist())
    tindex.lastkey = keys[-1]


_SLOT = np.dtype([("hash", ">u4"), ("pos", ">i8")])  # filetables._pointer, "!Iq"


def _pending_hashes(tindex) -> list[tuple[np.ndarray, np.ndarray]]:
    """The (hashes, positions) arrays ``_add_all`` gathered for ``tindex``, in key order."""
    pending = getattr(tindex, "_vn_pending", None)
    if pending is None:
        pending = tindex._vn_pending = []
    return pending


def write_hashes(tindex) -> None:
    """``HashWriter._write_hashes`` with each table written at once, not two calls per slot.

    The same open addressing (slot ``(hash >> 8) % size``, then the next free one, keys taken in
    the order they were added), so the bytes are the same; installed on the term index by
    ``SegmentBuilder`` and the merge.
    """
    pending = _pending_hashes(tindex)
    own = [entry for entries in tindex.buckets for entry in entries]  # Whoosh's ``add``, if any
    hashes = np.concatenate(
        [np.asarray([h for h, _ in own], dtype=np.uint32)] + [h for h, _ in pending]
    )
    positions = np.concatenate(
        [np.asarray([p for _, p in own], dtype=np.int64)] + [p for _, p in pending]
    )
    pending.clear()
    buckets = (hashes & 255).astype(np.int64)
    by_bucket = np.argsort(buckets, kind="stable")
    counts = np.bincount(buckets, minlength=256).tolist()
    dbfile = tindex.dbfile
    start = 0
    for count in counts:
        pos = dbfile.tell()
        numslots = 2 * count
        tindex.directory.append((pos, numslots))
        if not numslots:
            continue
        chosen = by_bucket[start : start + count]
        start += count
        dbfile.write(_table(hashes[chosen], positions[chosen], numslots).tobytes())


def _table(hashes: np.ndarray, positions: np.ndarray, numslots: int) -> np.ndarray:
    """One bucket's open-addressing table of ``numslots`` slots."""
    slot_of = ((hashes >> 8) % numslots).tolist()
    table_hashes = [0] * numslots
    table_positions = [0] * numslots
    for hashval, position, slot in zip(hashes.tolist(), positions.tolist(), slot_of, strict=True):
        while table_positions[slot]:  # no entry sits at position 0 (the file starts with a header)
            slot = (slot + 1) % numslots
        table_hashes[slot] = hashval
        table_positions[slot] = position
    table = np.empty(numslots, dtype=_SLOT)
    table["hash"] = table_hashes
    table["pos"] = table_positions
    return table


class _PerDocWriter(W3PerDocWriter):
    """Whoosh's per-document writer, compressing stored fields at ``STORED_ZLIB_LEVEL``."""

    def _create_column(self, fieldname: str, column) -> None:
        if fieldname == "_stored":
            column = columns.PickleColumn(columns.CompressedBytesColumn(level=STORED_ZLIB_LEVEL))
        super()._create_column(fieldname, column)


class SegmentBuilder:
    """A new segment of ``ix``: documents are added in order and written by ``finish``.

    ``add_document`` takes the values Whoosh's ``add_document`` takes (``_stored_<name>`` included)
    plus, for the fields analysed already, their ``term -> frequency``; any other indexed field is
    analysed by its Whoosh field, as Whoosh would.  ``shared`` maps a field to the shared term a
    term of that field goes under when only one document of the segment holds it (``None``: it
    keeps its own); vnsearch pools adjacent pairs this way (``indexer.POOLED``).
    """

    perdoc_class: type = _PerDocWriter  # a merge writes stored fields it copies as they are

    def __init__(
        self, ix, codec, shared: dict[str, Callable[[str], str | None]] | None = None
    ) -> None:
        self.storage = ix.storage
        self.schema = ix.schema
        self.codec = codec
        self.segment = codec.new_segment(ix.storage, ix.indexname)
        self._perdoc = self.perdoc_class(codec, ix.storage, self.segment)
        # Created now, as Whoosh's writer does: the segment's files exist from the start, so a
        # reindex killed midway leaves files the next one recognises and removes.
        self._fields = codec.field_writer(ix.storage, self.segment)
        tindex = self._fields._tindex
        tindex._write_hashes = lambda: write_hashes(tindex)
        self._names = sorted(self.schema.names())
        self._postings = {n: FieldPostings() for n in self._names if self.schema[n].indexed}
        self.docnum = 0
        # field -> the shared term a term of that field goes under when one document holds it
        self._shared = shared or {}

    def add_document(self, values: dict[str, object], terms: dict[str, dict[str, int]]) -> None:
        """Add one document: its values, and ``term -> frequency`` of fields analysed already."""
        lengths = {name: self._postings[name].add(freqs) for name, freqs in terms.items()}
        self._write_doc(values, lengths)

    def add_batch(
        self, values: list[dict[str, object]], postings: dict[str, BatchPostings]
    ) -> None:
        """Add documents whose analysed fields come as a batch of arrays (from a pool worker)."""
        for name, batch in postings.items():
            self._postings[name].add_batch(batch)
        lengths = {name: batch.lengths.tolist() for name, batch in postings.items()}
        for i, doc_values in enumerate(values):
            self._write_doc(doc_values, {name: per_doc[i] for name, per_doc in lengths.items()})

    def _write_doc(self, values: dict[str, object], lengths: dict[str, int]) -> None:
        """Stored values, columns and lengths of one document, as Whoosh's ``add_document``
        writes them; indexed fields not analysed already are analysed by their Whoosh field."""
        perdoc = self._perdoc
        perdoc.start_doc(self.docnum)
        for name in self._names:
            field = self.schema[name]
            value = values.get(name)
            if name in lengths:
                length = lengths[name]
            elif value is None:
                continue
            elif field.indexed:
                terms = {t: f for t, f, _, _ in field.index(value)}
                length = self._postings[name].add(terms)
            else:
                length = 0
            stored = values.get(f"_stored_{name}", value)
            perdoc.add_field(
                name, field, stored if field.stored else None, length if field.scorable else 0
            )
            column = field.column_type
            if column and stored is not None:
                perdoc.add_column_value(name, column, field.to_column_value(stored))
        perdoc.finish_doc()
        self.docnum += 1

    @property
    def held_bytes(self) -> int:
        """An estimate of the memory the postings held so far take until ``finish`` has written
        them (``finish`` itself needs about as much again, for the sort): what a caller bounds
        to keep a build's memory independent of the archive's size."""
        return sum(
            p.postings * POSTING_BYTES + len(p.vocab) * TERM_BYTES for p in self._postings.values()
        )

    def finish(self, pool: bool = True):
        """Write the postings, assemble the compound segment file; returns the segment.

        ``pool=False`` keeps every term as its own (no ``shared`` terms): for a segment that a
        merge will read, which pools what one document of the merged segment holds
        (``segment_merge``), exactly as one segment written with all the documents would.
        """
        self._perdoc.close()
        fieldwriter = self._fields
        for name, postings in self._postings.items():
            if postings.vocab:
                field = self.schema[name]
                fieldwriter.start_field(name, field)
                shared = self._shared.get(name) if pool else None
                write_field(fieldwriter, postings, field.scorable, shared)
                fieldwriter.finish_field()
            self._postings[name] = FieldPostings()  # written: not held while the rest are
        return self.close_files()

    def close_files(self):
        """Close the segment's files and assemble its compound file; returns the segment."""
        if not self._perdoc.is_closed:
            self._perdoc.close()
        self._fields.close()
        self.segment.set_doc_count(self.docnum)
        self.segment.create_compound_file(self.storage)
        self.segment.compound = True
        return self.segment

    def cancel(self) -> None:
        """Close the files and remove everything this segment wrote (after an error, which may
        be a full disk: nothing here writes)."""
        cols = self._perdoc._cols
        for stream in (self._fields._tindex.dbfile, self._fields._postfile, cols._temp):
            with contextlib.suppress(Exception):  # best effort on the way out
                stream.close()
        with contextlib.suppress(OSError):
            cols._tempstorage.delete_file(cols._tempname)
        prefix = self.segment.segment_id() + "."
        for name in self.storage.list():
            if name.startswith(prefix):
                with contextlib.suppress(OSError):
                    self.storage.delete_file(name)
