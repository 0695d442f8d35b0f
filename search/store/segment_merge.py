"""Merging segments with numpy, term by term, and the policy that decides what to merge.

A build that flushes several segments (``indexer._write_documents``, to bound its memory), and the
small segments incremental runs add, would cost queries a dictionary lookup per segment for every
term.  Whoosh can merge segments, but sends every posting through its Python pool and writer (the
reason ``segment_writer`` exists), and knows nothing of vnsearch's pooled pairs.  Here a merge:

* reads each input segment's term dictionary in key order (a field's entries are contiguous in
  the ``.trm`` file of ``filetables.OrderedHashWriter``) and merges the inputs' terms as sorted
  streams, so only a chunk of terms is in memory at a time, whatever the segments' sizes;
* decodes each term's postings (inlined lists, or posting blocks through ``term_reader``),
  renumbers documents (the inputs' documents in order, deleted ones dropped) and writes the
  merged lists through ``segment_writer.write_sorted``: the same layout as a segment written whole;
* copies stored fields (the compressed bytes as they are), field lengths and columns per document;
* pools, in the fields given a ``shared`` mapping (``indexer.POOLED``), every term that exactly one
  document of the merged segment holds, under its shared term: the rule ``SegmentBuilder`` applies
  to a segment it writes.  Inputs flushed with ``finish(pool=False)`` thus merge into the very
  segment one builder would have written from all their documents; inputs that pooled already keep
  what they pooled (a shared term's postings merge like any term's), so queries read the same.

``MergePolicy`` is a tiered policy in the manner of Lucene's ``TieredMergePolicy``: segments of
similar size are merged ``MERGE_FACTOR`` at a time once there are more than ``SEGMENTS_PER_TIER``
of a size, and no merge makes a segment of more than ``MAX_SEGMENT_DOCS`` documents.  A segment
this module cannot read (not laid out as ``term_reader`` expects: an index from elsewhere) is
left unmerged, and said.
"""

from __future__ import annotations

import bisect
import contextlib
import itertools
import logging
import math
import operator
import os
import pickle
import struct
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import numpy as np
from whoosh import columns
from whoosh.codec.whoosh3 import LENGTHS_COLUMN, W3Codec, _lenfield
from whoosh.filedb.filestore import FileStorage
from whoosh.reading import SegmentReader
from whoosh.util.numeric import byte_to_length

from .segment_writer import SegmentBuilder, _PerDocWriter, _slices, write_sorted
from .term_reader import SegmentTerms, block_payloads, decode_blocks

log = logging.getLogger(__name__)

# Tiered policy: at most this many segments of about one size before they are merged, this many
# at once, and never into a segment of more documents than this: one segment serves queries
# fastest, but a merge rewrites every posting of its inputs, and Whoosh's stored-field column
# addresses at most 4 GiB (compressed news articles take a few KiB each).
SEGMENTS_PER_TIER = 10
MERGE_FACTOR = 10
MAX_SEGMENT_DOCS = 1_000_000  # VNSEARCH_MAX_SEGMENT_DOCS (``indexer.BuildLimits``)
# Segments smaller than this count as this size: tiny segments of incremental runs are merged
# together early instead of making tiers of their own.
FLOOR_DOCS = 2000
# Merged terms written at a time (the postings of a chunk are what a merge holds in memory).
CHUNK_TERMS = 1 << 16
CHUNK_POSTINGS = 1 << 21
# Bytes of the term dictionary read at once per input; of a column copied at once.
READ_BYTES = 1 << 20
COPY_BYTES = 1 << 24

Shared = dict[str, Callable[[str], str | None]]
_ENTRY_HEAD = struct.Struct("!ii")  # filetables._lengths: key and value lengths
_FIELD = struct.Struct("!H")  # a key's field number, before the term
_DF_AT = 5  # W3TermInfo's doc frequency (">I"), after its flags byte and weight
_TERMINFO_SIZE = 23
_EXTENT = struct.Struct("!qi")
_RAW = columns.VarBytesColumn()  # the stored-fields column's bytes, compressed as written


# -- reading one input segment ----------------------------------------------------------------


class Unmergeable(Exception):
    """A segment not laid out as this module reads it."""


class _Input:
    """One segment being merged: its term dictionary and postings read with ``os.pread`` (the
    ``term_reader`` way), its per-document columns through Whoosh, and where its live documents
    go in the merged segment (``docmap``: -1 for a deleted one)."""

    def __init__(self, storage, schema, segment, base: int, docmap_start: int) -> None:
        self.segment = segment
        self.docmap_start = docmap_start  # where its docmap starts among all the inputs'
        self.reader = SegmentReader(storage, schema, segment)
        self._fd = -1
        try:
            probe = SegmentTerms.open(self.reader)  # ``None``: not a layout read here
            if probe is None:
                raise Unmergeable(f"{segment.segment_id()}: not a layout the merge reads")
            probe.close()
            compound = self.reader._storage.a
            self._fd = os.dup(compound._file.fileno())
            self._trm = compound.range(segment.make_filename(W3Codec.TERMS_EXT))[0]
            self._pst = compound.range(segment.make_filename(W3Codec.POSTS_EXT))[0]
            terms = self.reader._terms
            tindex = terms._tindex
            self._fieldmap: dict[str, int] = dict(terms._fieldmap)
            # The index array: every entry's position in key order (``OrderedHashWriter``).
            self._index_base = tindex.indexbase
            self._index_len = tindex.indexlen
            self._index_type = np.dtype(">" + tindex.extras["indextype"])
            self._end_of_data = tindex.endofdata
        except BaseException:
            self.close()
            raise
        count = segment.doc_count_all()
        live = np.ones(count, dtype=bool)
        deleted = np.fromiter(segment.deleted_docs(), dtype=np.int64)
        live[deleted[deleted < count]] = False
        self.live = live
        self.docmap = np.full(count, -1, dtype=np.int64)
        self.docmap[live] = base + np.arange(int(live.sum()), dtype=np.int64)
        self.has_deletions = not live.all()

    @property
    def live_count(self) -> int:
        return int(self.live.sum())

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        self.reader.close()

    def field_range(self, name: str) -> tuple[int, int]:
        """The numbers of field ``name``'s first entry and of the entry after its last, in key
        order (the dictionary's index array; a field's entries are contiguous)."""
        number = self._fieldmap.get(name)
        if number is None:
            return 0, 0
        end = self._index_len if number == 0xFFFF else self._lower_bound(number + 1)
        return self._lower_bound(number), end

    def _lower_bound(self, number: int) -> int:
        """The number of the first entry whose field number is ``number`` or more."""
        prefix = _FIELD.pack(number)
        lo, hi = 0, self._index_len
        while lo < hi:
            mid = (lo + hi) // 2
            position = int(self._positions(mid, mid + 1)[0])
            if os.pread(self._fd, 2, self._trm + position + _ENTRY_HEAD.size) < prefix:
                lo = mid + 1
            else:
                hi = mid
        return lo

    def _positions(self, first: int, stop: int) -> np.ndarray:
        """Where entries ``first...stop - 1`` start in the ``.trm`` file, and where the last
        ends (the next entry's start, or the end of the data)."""
        size = self._index_type.itemsize
        last = min(stop + 1, self._index_len)
        raw = os.pread(self._fd, (last - first) * size, self._trm + self._index_base + first * size)
        positions = np.frombuffer(raw, self._index_type).astype(np.int64)
        if last == stop:
            positions = np.append(positions, self._end_of_data)
        return positions

    def read_entries(self, tag: int, first: int, stop: int) -> _Entries:
        """Entries ``first...`` (before ``stop``) of one field: ``CHUNK_TERMS`` of them, fewer
        if they take more than ``READ_BYTES`` (one at least), parsed from one read."""
        count = min(stop - first, CHUNK_TERMS)
        positions = self._positions(first, first + count)
        if count > 1 and positions[-1] - positions[0] > READ_BYTES:
            fit = int(np.searchsorted(positions, positions[0] + READ_BYTES, side="right")) - 1
            count = max(1, fit)
            positions = positions[: count + 1]
        base = int(positions[0])
        raw = os.pread(self._fd, int(positions[-1]) - base, self._trm + base)
        data = np.frombuffer(raw, dtype=np.uint8)
        starts = positions[:-1] - base
        heads = data[starts[:, None] + np.arange(_ENTRY_HEAD.size)].view(">i4").astype(np.int64)
        values = starts + _ENTRY_HEAD.size + heads[:, 0]
        ends = values + heads[:, 1]
        key_starts = (starts + _ENTRY_HEAD.size + _FIELD.size).tolist()
        keys = list(map(raw.__getitem__, map(slice, key_starts, values.tolist())))
        df = data[values[:, None] + np.arange(_DF_AT, _DF_AT + 4)].view(">u4")[:, 0]
        return _Entries(
            tag,
            raw,
            keys,
            np.arange(first, first + count, dtype=np.int64),
            data[values],
            df.astype(np.int64),
            values,
            ends,
        )

    def read_postings(self, offset: int, length: int) -> bytes:
        """``length`` bytes of the postings file from ``offset``."""
        return os.pread(self._fd, length, self._pst + offset)


# -- the merged segment -------------------------------------------------------------------------


class _RawStoredWriter(_PerDocWriter):
    """The per-document writer of a merged segment: stored fields arrive as the compressed bytes
    an input holds, and go to the file as they are (the column's layout is the same)."""

    def _create_column(self, fieldname: str, column) -> None:
        if fieldname == "_stored":
            column = _RAW
        super(_PerDocWriter, self)._create_column(fieldname, column)


class _MergedSegment(SegmentBuilder):
    """The files of a merged segment (``SegmentBuilder``'s, with raw stored fields)."""

    perdoc_class = _RawStoredWriter


def merge_segments(ix, codec, segments: list, shared: Shared | None = None):
    """Write the live documents of ``segments`` (Whoosh segments of ``ix``, in docnum order) as one
    new segment and return it; ``None`` when none of their documents is live.

    The inputs are only read: the caller commits the result in their place (their files go when
    no generation refers to them).  On any error the new segment's files are removed.
    """
    storage = FileStorage(ix.storage.folder, supports_mmap=False)  # ``_Input`` reads its file
    inputs: list[_Input] = []
    out: _MergedSegment | None = None
    try:
        base = start = 0
        for segment in segments:
            inputs.append(_Input(storage, ix.schema, segment, base, start))
            base += inputs[-1].live_count
            start += segment.doc_count_all()
        if not base:
            return None
        out = _MergedSegment(ix, codec)
        lengths = _copy_documents(out, inputs, ix.schema)
        docmaps = np.concatenate([source.docmap for source in inputs])
        for name in sorted(ix.schema.names()):
            field = ix.schema[name]
            if field.indexed:
                lens = lengths.get(name) if field.scorable else None
                pooling = (shared or {}).get(name)
                _merge_field(out, inputs, docmaps, name, field, lens, pooling)
        segment = out.close_files()
        log.debug("merged %d segments into %s (%d documents)", len(inputs), segment, base)
        return segment
    except BaseException:
        if out is not None:
            out.cancel()
        raise
    finally:
        for source in inputs:
            source.close()


def segment_postings(
    index_dir: str, schema, segment, docmap: np.ndarray, fields: Iterable[str]
) -> tuple[list[str], list[bytes], np.ndarray, np.ndarray, np.ndarray]:
    """Every term of ``fields`` in ``segment`` (of the index in ``index_dir``) with its
    postings, read as a merge reads them (entries parsed and lists decoded with numpy, a chunk
    at a time: a Python step a term took twice as long for the tail's terms file): each entry's
    field and term, how many of its documents ``docmap`` keeps (its numbers, -1 for a document
    left out), and their numbers by ``docmap`` and frequencies (int32), end to end."""
    storage = FileStorage(index_dir, supports_mmap=False)  # ``_Input`` reads its file
    source = _Input(storage, schema, segment, 0, 0)
    try:
        source.docmap = np.asarray(docmap, dtype=np.int64)
        source.has_deletions = True  # documents left out are dropped as deleted ones are
        views: list[str] = []
        terms: list[bytes] = []
        counts: list[np.ndarray] = []
        docs: list[np.ndarray] = []
        freqs: list[np.ndarray] = []
        for view in fields:
            for flat, _limit in _chunks([_FieldReader(source, 0, view)]):
                n = len(flat.keys)
                if not n:
                    continue
                held, numbers, frequencies = _decode([source], source.docmap, flat, np.arange(n))
                views.extend(itertools.repeat(view, n))
                terms.extend(flat.keys)
                counts.append(held)
                docs.append(numbers)
                freqs.append(frequencies)
        return views, terms, _cat(counts, np.int64), _cat(docs, np.int64), _cat(freqs, np.int32)
    finally:
        source.close()


def _copy_documents(out: _MergedSegment, inputs: list[_Input], schema) -> dict[str, np.ndarray]:
    """Copy every live document's stored fields, lengths and columns into ``out``, in order, a
    column of an input at a time; returns each scorable field's length bytes by merged docnum
    (the postings record them)."""
    perdoc = out._perdoc
    names = sorted(schema.names())
    scorable = [n for n in names if schema[n].scorable]
    copied = [("_stored", _RAW)]
    copied += [(n, schema[n].column_type) for n in names if schema[n].column_type]
    lengths: dict[str, list[np.ndarray]] = {name: [] for name in scorable}
    totals: dict[str, int] = dict.fromkeys(scorable, 0)
    docnum = 0
    for source in inputs:
        reader = source.reader._perdoc
        for name in scorable:
            values = _length_bytes(reader, name, source)
            lengths[name].append(values[source.live])
            totals[name] += _live_total(source, name, values)
            _append_lengths(perdoc, _lenfield(name), docnum, values[source.live])
        for name, column in copied:
            if reader.has_column(name):
                _append_column(perdoc, name, column, docnum, reader, source.live)
        docnum += source.live_count
    out.docnum = perdoc._doccount = docnum
    perdoc._fieldlengths.update({name: total for name, total in totals.items() if total})
    return {name: np.concatenate(parts) for name, parts in lengths.items()}


def _column_writer(perdoc, name: str, column):
    if not perdoc._has_column(name):
        perdoc._create_column(name, column)
    return perdoc._get_column(name)


def _append_lengths(perdoc, name: str, first: int, values: np.ndarray) -> None:
    """Length bytes of documents ``first...`` into the length column ``name`` (``LENGTHS_COLUMN``:
    one byte a document, 0 the default, not written past the last document that has one)."""
    nonzero = np.flatnonzero(values)
    if not nonzero.size:
        return
    writer = _column_writer(perdoc, name, LENGTHS_COLUMN)
    writer._dbfile.write(writer._defaultbytes * (first - writer._count))
    writer._dbfile.write(values[: nonzero[-1] + 1].astype(np.uint8).tobytes())
    writer._count = first + int(nonzero[-1]) + 1


def _append_column(perdoc, name: str, column, first: int, reader, live: np.ndarray) -> None:
    """The values of the ``live`` documents of an input's column ``name`` as documents
    ``first...``: the bytes of a ``VarBytesColumn`` (the stored fields' too) copied as they are,
    a range of neighbouring documents at a time; any other column a value at a time."""
    if type(column) is not columns.VarBytesColumn:
        values = reader.column_reader(name, column)
        writer = _column_writer(perdoc, name, column)
        for new, old in enumerate(np.flatnonzero(live).tolist(), start=first):
            writer.add(new, values[old])
        return
    values = reader.column_reader(name, _RAW)
    sizes = np.asarray(values._lengths, dtype=np.int64)
    offsets = np.asarray(values._offsets, dtype=np.int64)
    kept = sizes[live]
    if not kept.any():
        return
    writer = _column_writer(perdoc, name, column)
    gap = first - writer._count
    _extend(writer._lengths, np.zeros(gap, np.int64))
    _extend(writer._offsets, np.full(gap, writer._offset_base, np.int64))
    edges = np.flatnonzero(np.diff(np.concatenate(([0], live.astype(np.int8), [0]))))
    for start, stop in zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True):
        begin, end = int(offsets[start]), int(offsets[stop - 1] + sizes[stop - 1])
        for at in range(begin, end, COPY_BYTES):
            size = min(COPY_BYTES, end - at)
            writer._dbfile.write(values._dbfile.get(values._basepos + at, size))
    _extend(writer._lengths, kept)
    _extend(writer._offsets, writer._offset_base + np.cumsum(kept) - kept)
    writer._offset_base += int(kept.sum())
    writer._count = first + kept.size


def _extend(growable, values: np.ndarray) -> None:
    """``GrowableArray.extend`` in one call: widened once for the largest value (as ``append``
    would, and as strictly: a stored column past 4 GiB still raises ``OverflowError``)."""
    if not values.size:
        return
    top = int(values.max())
    limit = {"B": 1 << 8, "H": 1 << 16, "i": 1 << 31, "I": 1 << 32}.get(growable.typecode)
    if limit is not None and top >= limit:
        growable._retype(top)
    growable.array.extend(values.tolist())


def _length_bytes(reader, name: str, source: _Input) -> np.ndarray:
    """Field ``name``'s length byte of every document of ``source`` (0: not recorded)."""
    count = source.segment.doc_count_all()
    out = np.zeros(count, dtype=np.uint8)
    column = _lenfield(name)
    if reader.has_column(column):
        values = reader.column_reader(column, LENGTHS_COLUMN)
        stored = np.frombuffer(values._dbfile.get(values._basepos, values._count), dtype=np.uint8)[
            :count
        ]
        out[: stored.size] = stored
    return out


def _live_total(source: _Input, name: str, length_bytes: np.ndarray) -> int:
    """The summed length of field ``name`` over ``source``'s live documents: exact without
    deletions; less the deleted documents' lengths as their bytes tell otherwise (as Whoosh's
    own merge counts them)."""
    total = int(getattr(source.segment, "_fieldlengths", {}).get(name, 0))
    if source.has_deletions:
        gone = length_bytes[~source.live].tolist()
        total -= sum(byte_to_length(b) for b in gone if b)
    return max(total, 0)


def _merge_field(
    out: _MergedSegment,
    inputs: list[_Input],
    docmaps: np.ndarray,
    name: str,
    field,
    lens: np.ndarray | None,
    shared: Callable[[str], str | None] | None,
) -> None:
    """Merge field ``name``'s terms of every input, in byte order, into ``out``.

    A chunk of every input's dictionary entries at a time (``_chunks``), in two passes when the
    field pools: the first finds the terms one document of the merged segment holds that
    ``shared`` maps to a shared term (``_pooled_postings``: a shared term may sort before the
    terms pooled under it), the second writes the others' merged postings, the pooled ones
    added under their shared terms.  Terms are sorted, grouped and decoded a chunk at a time
    with loops that run in C (``sorted``, ``map``, numpy): a generator, ``heapq.merge`` and a
    term-by-term decode took ~10 us of Python a term, most of a build's final merge.
    """
    readers = [_FieldReader(source, tag, name) for tag, source in enumerate(inputs)]
    pooled: dict[bytes, tuple[np.ndarray, np.ndarray]] = {}
    if shared:
        pooled = _pooled_postings(inputs, readers, docmaps, shared)
        for reader in readers:
            reader.rewind()
    writer = _FieldWrite(out, name, field, lens)
    extra = sorted(pooled)  # shared terms with pooled postings, merged in as one more input
    taken = 0
    for flat, limit in _chunks(readers, masked=True):
        stop = len(extra) if limit is None else bisect.bisect_right(extra, limit, taken)
        flat.add_extra(extra[taken:stop], len(inputs))
        taken = stop
        _write_chunk(writer, inputs, docmaps, flat, pooled)
    if taken < len(extra):  # pooled terms after every input's last term
        flat = _Flat.empty()
        flat.add_extra(extra[taken:], len(inputs))
        _write_chunk(writer, inputs, docmaps, flat, pooled)
    writer.finish()


class _Entries:
    """Consecutive dictionary entries of one input's field, parsed with numpy from one read:
    their terms (without the field's prefix), entry numbers within the field, flags (1: the
    postings are inlined), document frequencies, and where each value starts and ends in
    ``raw``."""

    __slots__ = ("tag", "raw", "keys", "index", "flags", "df", "values", "ends")

    def __init__(self, tag, raw, keys, index, flags, df, values, ends) -> None:
        self.tag, self.raw, self.keys, self.index = tag, raw, keys, index
        self.flags, self.df, self.values, self.ends = flags, df, values, ends

    def part(self, start: int, stop: int) -> _Entries:
        return _Entries(
            self.tag,
            self.raw,
            self.keys[start:stop],
            self.index[start:stop],
            self.flags[start:stop],
            self.df[start:stop],
            self.values[start:stop],
            self.ends[start:stop],
        )


class _FieldReader:
    """One input's entries of one field, read ``CHUNK_TERMS`` (at most ``READ_BYTES``) at a
    time through the dictionary's index array (``OrderedHashWriter``: every entry's position,
    in key order), and which of them the first pass pooled (``masked``)."""

    def __init__(self, source: _Input, tag: int, name: str) -> None:
        self.source, self.tag = source, tag
        self.first, self.end = source.field_range(name)
        self.masked = np.zeros(self.end - self.first, dtype=bool)
        self.rewind()

    def rewind(self) -> None:
        self.next = self.first  # the next entry to read
        self.buffer: _Entries | None = None
        self.taken = 0  # entries of ``buffer`` taken

    def fill(self) -> None:
        """Read the next entries once those read are all taken."""
        if (self.buffer is None or self.taken == len(self.buffer.keys)) and self.next < self.end:
            self.buffer = self.source.read_entries(self.tag, self.next, self.end)
            self.next += len(self.buffer.keys)
            self.taken = 0

    def pending(self) -> bool:
        return self.buffer is not None and self.taken < len(self.buffer.keys)

    def complete(self) -> bool:
        """Whether the entries read reach the field's last one."""
        return self.next >= self.end

    def take(self, limit: bytes | None) -> _Entries:
        """The entries read and not taken up to ``limit`` (every one: ``None``)."""
        assert self.buffer is not None
        keys = self.buffer.keys
        stop = len(keys) if limit is None else bisect.bisect_right(keys, limit, self.taken)
        part = self.buffer.part(self.taken, stop)
        self.taken = stop
        return part


class _Flat:
    """The entries of a chunk, every input's, as flat lists and arrays in input order."""

    def __init__(self, parts: list[_Entries]) -> None:
        # The parts' reads one after another (and zeros: ``_inline_lists`` reads a few bytes
        # past a value it rejects); ``values`` and ``ends`` are offsets in it.
        self.blob = b"".join([p.raw for p in parts] + [bytes(_PADDING)])
        self.data = np.frombuffer(self.blob, dtype=np.uint8)
        self.keys: list[bytes] = list(itertools.chain.from_iterable(p.keys for p in parts))
        sizes = [len(p.keys) for p in parts]
        bases = np.cumsum([0] + [len(p.raw) for p in parts])[:-1]
        self.tags = np.repeat(np.asarray([p.tag for p in parts], np.int64), sizes)
        self.index = _cat([p.index for p in parts], np.int64)
        self.flags = _cat([p.flags for p in parts], np.uint8)
        self.df = _cat([p.df for p in parts], np.int64)
        shift = np.repeat(bases.astype(np.int64), sizes)
        self.values = _cat([p.values for p in parts], np.int64) + shift
        self.ends = _cat([p.ends for p in parts], np.int64) + shift

    @classmethod
    def empty(cls) -> _Flat:
        return cls([])

    def select(self, keep: np.ndarray) -> None:
        """Keep only the entries ``keep`` marks."""
        self.keys = list(itertools.compress(self.keys, keep.tolist()))
        for name in ("tags", "index", "flags", "df", "values", "ends"):
            setattr(self, name, getattr(self, name)[keep])

    def add_extra(self, keys: list[bytes], tag: int) -> None:
        """Entries of the pooled postings' pseudo-input ``tag`` (no value: decoded already)."""
        if not keys:
            return
        n = len(keys)
        self.keys.extend(keys)
        zeros = np.zeros(n, np.int64)
        self.tags = np.concatenate([self.tags, np.full(n, tag, np.int64)])
        self.index = np.concatenate([self.index, zeros])
        self.flags = np.concatenate([self.flags, zeros.astype(np.uint8)])
        self.df = np.concatenate([self.df, zeros])
        self.values = np.concatenate([self.values, zeros])
        self.ends = np.concatenate([self.ends, zeros])

    def groups(self) -> tuple[np.ndarray, np.ndarray, list[bytes]]:
        """The entries in term order (``order``; an input's before a later input's of the same
        term: documents ascending), the term each is of (its number among ``terms``), and the
        chunk's terms, ascending and unique."""
        keys = self.keys
        if not keys:
            return np.zeros(0, np.int64), np.zeros(0, np.int64), []
        order = sorted(range(len(keys)), key=keys.__getitem__)  # stable, runs merged in C
        ordered = list(map(keys.__getitem__, order))
        first = np.ones(len(ordered), dtype=bool)
        first[1:] = np.fromiter(map(operator.ne, ordered[1:], ordered[:-1]), bool, len(keys) - 1)
        group = np.cumsum(first) - 1
        return np.asarray(order, np.int64), group, list(itertools.compress(ordered, first))


def _cat(parts: list[np.ndarray], dtype) -> np.ndarray:
    return np.concatenate(parts).astype(dtype, copy=False) if parts else np.zeros(0, dtype)


def _chunks(
    readers: list[_FieldReader], masked: bool = False
) -> Iterator[tuple[_Flat, bytes | None]]:
    """The field's entries of every input, a chunk at a time, with the chunk's last term
    (``None``: the field's last chunk): every entry up to the least of the inputs' last terms
    read, so a term's entries all come in one chunk and no input gives more than it read at
    once.  ``masked``: without the entries the first pass pooled."""
    while True:
        for reader in readers:
            reader.fill()
        active = [reader for reader in readers if reader.pending()]
        if not active:
            return
        bounds = [r.buffer.keys[-1] for r in active if not r.complete()]  # type: ignore[union-attr]
        limit = min(bounds) if bounds else None
        parts = [reader.take(limit) for reader in active]
        flat = _Flat(parts)
        if masked:
            drop = np.concatenate(
                [r.masked[p.index - r.first] for r, p in zip(active, parts, strict=True)]
            )
            if drop.any():
                flat.select(~drop)
        yield flat, limit


def _decode(
    inputs: list[_Input], docmaps: np.ndarray, flat: _Flat, which: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The postings of entries ``which`` of ``flat``, in that order: (live postings of each
    entry, merged docnums, frequencies), deleted documents dropped."""
    n = which.size
    tags = flat.tags[which]
    inline = flat.flags[which] != 0
    counts = np.zeros(n, np.int64)
    inline_at = np.flatnonzero(inline)
    ids_parts: list[np.ndarray] = []
    freq_parts: list[np.ndarray] = []
    if inline_at.size:
        chosen = which[inline_at]
        ids, freqs, sizes = _inline_postings(flat, chosen)
        counts[inline_at] = sizes
        ids_parts.append(ids)
        freq_parts.append(freqs)
    block_at = np.flatnonzero(~inline)
    if block_at.size:
        chosen = which[block_at]
        block_tags = flat.tags[chosen].tolist()
        starts = (flat.values[chosen] + _TERMINFO_SIZE).tolist()
        extents = [_EXTENT.unpack_from(flat.blob, start) for start in starts]
        sizes, docs, freqs = _read_blocks(inputs, block_tags, extents)
        counts[block_at] = sizes
        ids_parts.append(docs)
        freq_parts.append(freqs)
    raw_ids = np.concatenate(ids_parts) if ids_parts else np.zeros(0, np.int64)
    raw_freqs = np.concatenate(freq_parts) if freq_parts else np.zeros(0, np.float64)
    # Where each entry's postings start in ``raw_ids``: the inlined ones first, then the blocks.
    origin = np.zeros(n, np.int64)
    inline_counts = counts[inline_at]
    origin[inline_at] = np.cumsum(inline_counts) - inline_counts
    block_counts = counts[block_at]
    origin[block_at] = int(inline_counts.sum()) + np.cumsum(block_counts) - block_counts
    total = int(counts.sum())
    gather = np.arange(total, dtype=np.int64) + np.repeat(
        origin - (np.cumsum(counts) - counts), counts
    )
    starts = np.asarray([source.docmap_start for source in inputs], np.int64)
    merged = docmaps[np.repeat(starts[tags], counts) + raw_ids[gather]]
    freqs_out = np.rint(raw_freqs[gather]).astype(np.int32)
    if any(inputs[t].has_deletions for t in set(tags.tolist())):
        keep = merged >= 0
        if not keep.all():
            owner = np.repeat(np.arange(n), counts)
            counts = np.bincount(owner[keep], minlength=n).astype(np.int64)
            merged, freqs_out = merged[keep], freqs_out[keep]
    return counts, merged, freqs_out


def _inline_postings(flat: _Flat, chosen: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ids, weights, postings of each) of the inlined lists of entries ``chosen``: parsed with
    numpy when they are ``segment_writer``'s pickles of integers (``_inline_lists``), others
    unpickled (``map``, flattened with ``itertools``: in C)."""
    starts = flat.values[chosen] + _TERMINFO_SIZE
    ends = flat.ends[chosen]
    sizes = flat.df[chosen]
    parsed, ids, freqs = _inline_lists(flat.data, starts, ends, sizes)
    if parsed.all():
        return ids, freqs, sizes
    other = np.flatnonzero(~parsed)
    payloads = [
        flat.blob[a:b] for a, b in zip(starts[other].tolist(), ends[other].tolist(), strict=True)
    ]
    lists = list(map(pickle.loads, payloads))
    del payloads
    other_ids = list(map(operator.itemgetter(0), lists))
    weights = list(map(operator.itemgetter(1), lists))
    del lists
    other_sizes = np.fromiter(map(len, other_ids), np.int64, len(other_ids))
    total = int(other_sizes.sum())
    more_ids = np.fromiter(itertools.chain.from_iterable(other_ids), np.int64, total)
    more_freqs = np.ones(total, np.float64)
    weighted = np.fromiter(map(operator.is_not, weights, itertools.repeat(None)), bool)
    if weighted.any():
        at = np.repeat(weighted, other_sizes)
        chain = itertools.chain.from_iterable(itertools.compress(weights, weighted.tolist()))
        more_freqs[at] = np.fromiter(chain, np.float64, int(at.sum()))
    # Both in ``chosen``'s order: the parsed lists' postings, then the others', gathered.
    sizes = sizes.copy()
    sizes[other] = other_sizes
    kept = np.repeat(parsed, flat.df[chosen])
    all_ids = np.concatenate([ids[kept], more_ids])
    all_freqs = np.concatenate([freqs[kept], more_freqs])
    origin = np.zeros(sizes.size, np.int64)
    parsed_sizes = sizes[parsed]
    origin[parsed] = np.cumsum(parsed_sizes) - parsed_sizes
    origin[other] = int(parsed_sizes.sum()) + np.cumsum(other_sizes) - other_sizes
    gather = np.arange(int(sizes.sum()), dtype=np.int64) + np.repeat(
        origin - (np.cumsum(sizes) - sizes), sizes
    )
    return all_ids[gather], all_freqs[gather], sizes


# Pickle opcodes of ``segment_writer``'s inlined lists: ``dumps((ids, weights, (b"",) * n), 3)``.
_PROTO, _MARK, _TUPLE, _TUPLE1, _BINPUT, _NONE = 0x80, 0x28, 0x74, 0x85, 0x71, 0x4E
_INT_BYTES = np.zeros(256, np.int64)  # BININT1, BININT2, BININT: their argument's bytes
_INT_BYTES[[0x4B, 0x4D, 0x4A]] = [1, 2, 4]
_PADDING = 32  # bytes read past a value at most, before a malformed one is rejected


def _inline_lists(
    data: np.ndarray, starts: np.ndarray, ends: np.ndarray, sizes: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ids and weights of inlined lists (pickles at ``data[starts:ends]``, ``sizes``
    postings each: their terms' document frequencies), parsed with numpy an item of every list
    at a time: (whether each list was parsed, ids, weights); an unparsed list's are garbage.

    ``pickle.loads`` took ~1 us a list, and a merge reads millions.  Only the form
    ``segment_writer`` writes is parsed: protocol 3, a tuple of ``sizes`` integers (``BININT1``,
    ``BININT2`` or ``BININT``) memoised, then ``None`` or a tuple of as many integers memoised,
    all before ``ends``; anything else (floats, another protocol or layout) is left to
    ``pickle``."""
    last = data.size - 5  # reads are clamped: a malformed value may point anywhere

    def byte(at: np.ndarray) -> np.ndarray:
        return data[np.minimum(at, last)]

    ok = (byte(starts) == _PROTO) & (byte(starts + 1) == 3)
    first = np.cumsum(sizes) - sizes
    big = sizes > 3  # MARK, the items, TUPLE (not TUPLE1/2/3)
    close = np.where(big, _TUPLE, _TUPLE1 - 1 + np.minimum(sizes, 3))

    def parse(at: np.ndarray, chosen: np.ndarray, out: np.ndarray) -> np.ndarray:
        """Read a tuple of ``sizes`` integers at ``at`` into ``out`` for the entries
        ``chosen``; returns where each ends (after its memo)."""
        marked = chosen & big
        ok[marked] &= byte(at[marked]) == _MARK
        at = at + marked
        for k in range(int(sizes[chosen].max(initial=0))):
            live = np.flatnonzero(chosen & ok & (sizes > k))
            if not live.size:
                break
            where = at[live]
            size = _INT_BYTES[byte(where)]
            ok[live[size == 0]] = False
            b = data[np.minimum(where, last)[:, None] + np.arange(1, 5)].astype(np.int64)
            value = b[:, 0] + (b[:, 1] << 8) * (size >= 2)
            value += ((b[:, 2] << 16) + (b[:, 3] << 24) - (b[:, 3] >= 128) * (1 << 32)) * (
                size == 4
            )
            out[first[live] + k] = value
            at[live] = where + 1 + size
        ok[chosen] &= (byte(at[chosen]) == close[chosen]) & (byte(at[chosen] + 1) == _BINPUT)
        return at + 3

    ids = np.zeros(int(sizes.sum()), np.int64)
    at = parse(starts + 2, ok.copy(), ids)
    weights = np.ones(ids.size, np.int64)
    listed = ok & (byte(at) != _NONE)
    after = at + 1
    if listed.any():
        after = np.where(listed, parse(at, listed, weights), after)
    ok &= after <= ends
    return ok, ids, weights.astype(np.float64)


def _read_blocks(
    inputs: list[_Input], tags: list[int], extents: list[tuple[int, int]]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The postings of terms kept in posting blocks (the input and ``(offset, length)`` in its
    ``.pst`` of each): (postings of each term, docnums in their input, weights), read as
    ``term_reader._blocks`` reads them.  An input's extents come in one read when they lie
    together (a chunk's terms are neighbours), and the blocks' data are decompressed, unpickled
    and flattened all at once, not with a few numpy calls a block."""
    where: list[tuple[bytes, int]] = [(b"", 0)] * len(tags)
    for tag in sorted(set(tags)):
        mine = [i for i, t in enumerate(tags) if t == tag]
        low = min(extents[i][0] for i in mine)
        high = max(extents[i][0] + extents[i][1] for i in mine)
        if high - low <= 2 * sum(extents[i][1] for i in mine) + READ_BYTES:
            data = inputs[tag].read_postings(low, high - low)
            for i in mine:
                where[i] = (data, extents[i][0] - low)
        else:
            for i in mine:
                where[i] = (inputs[tag].read_postings(*extents[i]), 0)
    payloads: list[bytes] = []
    blocks_of = np.zeros(len(tags), np.int64)
    for i, ((data, start), (_, length)) in enumerate(zip(where, extents, strict=True)):
        for payload in block_payloads(data, start, start + length):
            payloads.append(payload)
            blocks_of[i] += 1
    sizes, docs, freqs = decode_blocks(payloads)
    del payloads
    owner = np.repeat(np.arange(len(tags)), blocks_of)
    per_term = np.bincount(owner, weights=sizes, minlength=len(tags)).astype(np.int64)
    return per_term, docs, freqs.astype(np.float64)


def _pool_terms(
    inputs: list[_Input],
    readers: list[_FieldReader],
    docmaps: np.ndarray,
    shared: Callable[[str], str | None],
    chunk: tuple[_Flat, np.ndarray, np.ndarray, list[bytes]],
    candidates: np.ndarray,
    targets: dict[bytes, int],
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Decode the entries at ``candidates`` of a chunk (``flat`` and its ``groups``;
    positions in term order, whole terms), mark those of the terms one document holds that
    ``shared`` maps (numbered in ``targets``); returns their (shared term number, docnum,
    frequency), ``None`` when none pools."""
    flat, order, group, terms = chunk
    size = len(terms)
    counts, docs, freqs = _decode(inputs, docmaps, flat, order[candidates])
    live = np.bincount(group[candidates], weights=counts, minlength=size)
    single = np.flatnonzero(live == 1).tolist()
    found = list(map(shared, map(bytes.decode, map(terms.__getitem__, single))))
    target_of = np.full(size, -1, dtype=np.int64)
    for g, target in zip(single, found, strict=True):
        if target is not None:
            target_of[g] = targets.setdefault(target.encode("utf-8"), len(targets))
    pooled = target_of >= 0
    if not pooled.any():
        return None
    entries = order[pooled[group]]
    for reader in readers:
        mine = entries[flat.tags[entries] == reader.tag]
        reader.masked[flat.index[mine] - reader.first] = True
    owner = np.repeat(group[candidates], counts)  # the group of each decoded posting
    chosen = pooled[owner]  # one posting a pooled group
    return target_of[owner[chosen]], docs[chosen], freqs[chosen]


def _pooled_postings(
    inputs: list[_Input],
    readers: list[_FieldReader],
    docmaps: np.ndarray,
    shared: Callable[[str], str | None],
) -> dict[bytes, tuple[np.ndarray, np.ndarray]]:
    """Shared term -> (docnums, frequencies) of the terms exactly one document of the merged
    segment holds, that ``shared`` maps to a shared term; their entries are marked in
    ``readers`` (``_FieldReader.masked``), so the second pass leaves them out."""
    targets: dict[bytes, int] = {}
    id_parts, doc_parts, freq_parts = [], [], []
    deleting = np.asarray([source.has_deletions for source in inputs], dtype=np.float64)
    for flat, _ in _chunks(readers):
        order, group, terms = flat.groups()
        size = len(terms)
        if not size:
            continue
        df = np.bincount(group, weights=flat.df[order], minlength=size)
        deleted = np.bincount(group, weights=deleting[flat.tags[order]], minlength=size) > 0
        # Decoded ``CHUNK_POSTINGS`` at a time: a term of a segment with deletions may be long.
        wanted = np.where((df == 1) | deleted, df, 0).astype(np.int64)
        group_starts = np.searchsorted(group, np.arange(size + 1))
        for first, last in _slices(wanted, CHUNK_POSTINGS):
            span = np.arange(group_starts[first], group_starts[last])
            candidates = span[wanted[group[span]] > 0]  # positions in term order
            if candidates.size:
                chunk = (flat, order, group, terms)
                found = _pool_terms(inputs, readers, docmaps, shared, chunk, candidates, targets)
                if found is not None:
                    id_parts.append(found[0])
                    doc_parts.append(found[1])
                    freq_parts.append(found[2])
    if not targets:
        return {}
    id_array = np.concatenate(id_parts)
    doc_array = np.concatenate(doc_parts)
    freq_array = np.concatenate(freq_parts)
    order = np.lexsort((doc_array, id_array))
    id_array, doc_array, freq_array = id_array[order], doc_array[order], freq_array[order]
    # A document holding two terms pooled under one: one posting, their frequencies added.
    first = np.concatenate(
        ([True], (id_array[1:] != id_array[:-1]) | (doc_array[1:] != doc_array[:-1]))
    )
    starts = np.flatnonzero(first)
    id_array, doc_array = id_array[starts], doc_array[starts]
    freq_array = np.add.reduceat(freq_array.astype(np.int64), starts).astype(np.int32)
    bounds = (np.flatnonzero(np.diff(id_array)) + 1).tolist()
    names = list(targets)
    ids = id_array[np.concatenate(([0], bounds)).astype(np.int64)].tolist()
    return {
        names[i]: (docs, freqs)
        for i, docs, freqs in zip(
            ids, np.split(doc_array, bounds), np.split(freq_array, bounds), strict=True
        )
    }


def _write_chunk(
    writer: _FieldWrite,
    inputs: list[_Input],
    docmaps: np.ndarray,
    flat: _Flat,
    pooled: dict[bytes, tuple[np.ndarray, np.ndarray]],
) -> None:
    """Write the merged terms of one chunk, ``CHUNK_POSTINGS`` postings at a time: each term's
    postings are its entries' in input order (documents ascending), a shared term's with the
    postings pooled under it added up by document."""
    order, group, terms = flat.groups()
    size = len(terms)
    if not size:
        return
    extra = flat.tags[order] == len(inputs)  # the pooled pseudo-input's entries
    df = np.bincount(group, weights=flat.df[order], minlength=size).astype(np.int64)
    group_starts = np.flatnonzero(np.concatenate(([True], group[1:] != group[:-1])))
    group_starts = np.append(group_starts, group.size)
    for first, last in _slices(df, CHUNK_POSTINGS):
        begin, end = int(group_starts[first]), int(group_starts[last])
        positions = np.arange(begin, end)
        real = positions[~extra[begin:end]]
        counts, docs, freqs = _decode(inputs, docmaps, flat, order[real])
        term_df = np.bincount(group[real] - first, weights=counts, minlength=last - first)
        term_df = term_df.astype(np.int64)
        with_pooled = group[positions[extra[begin:end]]].tolist()
        if with_pooled:
            parts = [pooled[terms[g]] for g in with_pooled]
            local = np.asarray(with_pooled, np.int64) - first
            docs, freqs, term_df = _add_pooled(docs, freqs, term_df, local, parts)
        writer.write(terms[first:last], docs, freqs, term_df)


def _add_pooled(
    docs: np.ndarray,
    freqs: np.ndarray,
    df: np.ndarray,
    terms: np.ndarray,
    parts: list[tuple[np.ndarray, np.ndarray]],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Postings of terms with ``df`` each, with the pooled postings ``parts`` of ``terms``
    (their numbers, ascending) added: each term's documents ascending and unique, a document's
    frequencies added up.  One stable sort of two sorted runs, not a ``np.unique`` a shared
    term (there are ``analysis.PAIR_BUCKETS`` of them a field)."""
    sizes = np.fromiter((part[0].size for part in parts), np.int64, len(parts))
    owner = np.concatenate([np.repeat(np.arange(df.size), df), np.repeat(terms, sizes)])
    all_docs = np.concatenate([docs.astype(np.int64), *(part[0] for part in parts)])
    all_freqs = np.concatenate([freqs.astype(np.int64), *(part[1] for part in parts)])
    keys = (owner << 32) | all_docs
    order = np.argsort(keys, kind="stable")
    keys = keys[order]
    starts = np.flatnonzero(np.concatenate(([True], keys[1:] != keys[:-1])))
    summed = np.add.reduceat(all_freqs[order], starts) if starts.size else all_freqs[:0]
    held = np.bincount(owner[order][starts], minlength=df.size).astype(np.int64)
    return all_docs[order][starts], summed.astype(np.int32), held


class _FieldWrite:
    """The merged field's terms, written through ``write_sorted`` (the field started at its
    first term: a field no live document holds is not written)."""

    def __init__(self, out: _MergedSegment, name: str, field, lens: np.ndarray | None) -> None:
        self.out, self.name, self.field, self.lens = out, name, field, lens
        self.started = False

    def write(
        self, terms: list[bytes], docs: np.ndarray, freqs: np.ndarray, df: np.ndarray
    ) -> None:
        """Terms (ascending) with ``df`` consecutive postings each; those with none dropped."""
        held = df > 0
        if not held.all():
            terms = list(itertools.compress(terms, held.tolist()))
            df = df[held]
        if not terms:
            return
        fieldwriter = self.out._fields
        if not self.started:
            fieldwriter.start_field(self.name, self.field)
            self.started = True
        docs = docs.astype(np.int32)
        lens = self.lens[docs] if self.lens is not None else np.zeros(docs.size, np.uint8)
        write_sorted(fieldwriter, terms, docs, freqs.astype(np.int32), lens, df)

    def finish(self) -> None:
        if self.started:
            self.out._fields.finish_field()


# -- the policy ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class MergePolicy:
    """Which segments to merge (``plan``), as Lucene's ``TieredMergePolicy`` decides, with sizes
    in live documents, and merging only neighbours: a merged segment takes its inputs' place, so
    documents keep the order they were added in (ties in ranking keep their order)."""

    segments_per_tier: int = SEGMENTS_PER_TIER
    merge_factor: int = MERGE_FACTOR
    max_docs: int = MAX_SEGMENT_DOCS
    floor_docs: int = FLOOR_DOCS

    def allowed(self, sizes: list[int]) -> int:
        """How many segments of these sizes may stay: ``segments_per_tier`` per tier, each tier
        ``merge_factor`` times the size of the one before, from the smallest (floored) size; never
        fewer than ``segments_per_tier``."""
        left = sum(sizes)
        level = max(min(sizes, default=0), self.floor_docs)
        allowed = 0
        while left > 0:
            count = left / level
            if count < self.segments_per_tier or level >= self.max_docs:
                allowed += math.ceil(count)
                break
            allowed += self.segments_per_tier
            left -= self.segments_per_tier * level
            level = min(self.max_docs, level * self.merge_factor)
        return max(allowed, self.segments_per_tier)

    def plan(self, sizes: list[int]) -> list[list[int]]:
        """Runs of neighbouring positions in ``sizes`` to merge, each into one segment (none:
        leave them all).

        Segments of half the maximum or more are left as they are.  While more of the others
        remain than ``allowed``, the run of 2 to ``merge_factor`` of them with the least skew (its
        largest segment's share, sizes floored) is merged, if it stays under the maximum.
        """
        small = [i for i, size in enumerate(sizes) if size < self.max_docs / 2]
        allowed = self.allowed([sizes[i] for i in small])
        taken: set[int] = set()
        groups: list[list[int]] = []
        while len(small) - sum(len(g) - 1 for g in groups) > allowed:
            best = self._best(sizes, taken)
            if best is None:
                break
            groups.append(best)
            taken.update(best)
        return sorted(groups)

    def _best(self, sizes: list[int], taken: set[int]) -> list[int] | None:
        """The least skewed run of neighbours none of which is ``taken`` or large."""
        best, best_score = None, math.inf
        for start in range(len(sizes)):
            total = 0
            for end in range(start, min(len(sizes), start + self.merge_factor)):
                if end in taken or sizes[end] >= self.max_docs / 2:
                    break
                total += sizes[end]
                if total > self.max_docs:
                    break
                if end == start:
                    continue
                floored = [max(sizes[i], self.floor_docs) for i in range(start, end + 1)]
                score = max(floored) / sum(floored) * sum(floored) ** 0.05
                if score < best_score:
                    best, best_score = list(range(start, end + 1)), score
        return best


def merge_runs(sizes: list[int], max_docs: int = MAX_SEGMENT_DOCS) -> list[list[int]]:
    """Consecutive groups of positions in ``sizes`` of at most ``max_docs`` documents together
    (a segment larger than that alone): how a build's flushed segments are merged, in order."""
    groups: list[list[int]] = []
    total = 0
    for i, size in enumerate(sizes):
        if groups and total + size <= max_docs:
            groups[-1].append(i)
            total += size
        else:
            groups.append([i])
            total = size
    return groups


def remove_files(ix, segments) -> None:
    """Delete the files of segments no generation refers to (a merge's inputs of this run)."""
    for segment in segments:
        prefix = segment.segment_id() + "."
        for name in ix.storage.list():
            if name.startswith(prefix):
                with contextlib.suppress(OSError):
                    ix.storage.delete_file(name)


# -- a run's segments ------------------------------------------------------------------------------


class RunSegments:
    """The new segments of one indexing run, written as documents arrive, in bounded memory.

    Documents go into a ``SegmentBuilder``.  Before a batch is added, a builder holding
    ``limit_bytes`` or more (``SegmentBuilder.held_bytes``) writes its segment without pooling and
    a new builder starts.  ``finish`` returns the run's segments: the only builder's, pooled as
    always; or the flushed segments merged in order (at most ``max_docs`` documents a segment),
    which pools exactly as one segment of all the documents would.
    """

    def __init__(self, ix, codec, shared: Shared, limit_bytes: int, max_docs: int) -> None:
        self.ix, self.codec, self.shared = ix, codec, shared
        self.limit_bytes, self.max_docs = limit_bytes, max_docs
        self.flushed: list = []  # unpooled segments written so far
        self.merged: list = []  # this run's merged segments
        self.builder: SegmentBuilder | None = SegmentBuilder(ix, codec, shared)

    def add_batch(self, values: list[dict[str, object]], postings: dict) -> None:
        builder = self._builder()
        if builder.docnum and builder.held_bytes >= self.limit_bytes:
            held = builder.held_bytes >> 20
            log.debug("writing %d documents (~%d MiB held)", builder.docnum, held)
            self.flushed.append(builder.finish(pool=False))
            self.builder = None  # written: ``cancel`` removes it with the flushed ones
            builder = self._builder()
        builder.add_batch(values, postings)

    def _builder(self) -> SegmentBuilder:
        if self.builder is None:
            self.builder = SegmentBuilder(self.ix, self.codec, self.shared)
        return self.builder

    def finish(self) -> list:
        """The run's segments, ready to commit (their files complete, referenced by none)."""
        builder = self._builder()
        log.debug("writing %d documents (~%d MiB held)", builder.docnum, builder.held_bytes >> 20)
        if not self.flushed:
            segment = builder.finish()
            self.builder = None
            self.merged.append(segment)
            return self.merged
        self.flushed.append(builder.finish(pool=False))
        self.builder = None
        sizes = [segment.doc_count_all() for segment in self.flushed]
        for group in merge_runs(sizes, self.max_docs):
            inputs = [self.flushed[i] for i in group]
            merged = merge_segments(self.ix, self.codec, inputs, self.shared)
            if merged is not None:
                self.merged.append(merged)
        remove_files(self.ix, self.flushed)
        self.flushed = []
        return self.merged

    def cancel(self) -> None:
        """Remove every file this run wrote (after an error)."""
        if self.builder is not None:
            self.builder.cancel()
            self.builder = None
        remove_files(self.ix, self.flushed + self.merged)
        self.flushed, self.merged = [], []


def merge_committed(ix, codec, segments: list, shared: Shared, policy: MergePolicy) -> tuple:
    """``segments`` (a generation's, in order) after the merges ``policy`` plans, and the new
    merged segments among them (to remove if the commit fails)."""
    groups = policy.plan([segment.doc_count() for segment in segments])
    if not groups:
        return list(segments), []
    first = {group[0]: group for group in groups}
    inside = {i for group in groups for i in group}
    out, written = [], []
    try:
        for i, segment in enumerate(segments):
            if i in first:
                group = [segments[j] for j in first[i]]
                try:
                    merged = merge_segments(ix, codec, group, shared)
                except Unmergeable as exc:
                    log.warning("segments left unmerged: %s", exc)
                    out.extend(group)
                    continue
                if merged is not None:
                    written.append(merged)
                    out.append(merged)
            elif i not in inside:
                out.append(segment)
    except BaseException:
        remove_files(ix, written)
        raise
    return out, written
