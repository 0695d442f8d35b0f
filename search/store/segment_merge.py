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

import contextlib
import heapq
import itertools
import logging
import math
import os
import pickle
import struct
from array import array
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
from whoosh import columns
from whoosh.codec.whoosh3 import LENGTHS_COLUMN, W3Codec, _lenfield
from whoosh.filedb.filestore import FileStorage
from whoosh.reading import SegmentReader
from whoosh.util.numeric import byte_to_length

from .segment_writer import SegmentBuilder, _PerDocWriter, write_sorted
from .term_reader import SegmentTerms, _blocks, concatenate, inline_arrays

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
_DF = struct.Struct(">I")  # W3TermInfo's doc frequency, after its flags byte and weight
_DF_AT = 5
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
            self._tindex = terms._tindex
            self._fieldmap: dict[str, int] = dict(terms._fieldmap)
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

    def terms(self, field: str) -> Iterator[tuple[bytes, bytes]]:
        """(term, dictionary value) of ``field`` in key order, read a chunk at a time."""
        number = self._fieldmap.get(field)
        if number is None:
            return
        prefix = struct.pack("!H", number)
        position = self._tindex.closest_key_pos(prefix)
        if position is None:
            return
        end = self._tindex.endofdata
        buffer, at = b"", 0  # ``buffer`` holds the file from ``position - at``
        head = _ENTRY_HEAD.size
        while position < end:
            if at + head > len(buffer):
                buffer, at = self._read(position, end), 0
            keylen, valuelen = _ENTRY_HEAD.unpack_from(buffer, at)
            size = head + keylen + valuelen
            if at + size > len(buffer):
                buffer, at = self._read(position, end, size), 0
            key = buffer[at + head : at + head + keylen]
            if key[:2] != prefix:
                return
            yield key[2:], buffer[at + head + keylen : at + size]
            at += size
            position += size

    def _read(self, position: int, end: int, at_least: int = 0) -> bytes:
        size = min(max(READ_BYTES, at_least), end - position)
        return os.pread(self._fd, size, self._trm + position)

    def postings(self, value: bytes) -> tuple[np.ndarray, np.ndarray]:
        """(merged docnums, frequencies) of a dictionary value, deleted documents dropped."""
        if value[0]:  # inlined
            ids, weights, _ = pickle.loads(value[_TERMINFO_SIZE:])
            docs, freqs = inline_arrays(ids, weights)
        else:
            offset, length = _EXTENT.unpack_from(value, _TERMINFO_SIZE)
            docs, freqs = concatenate(_blocks(os.pread(self._fd, length, self._pst + offset)))
        merged = self.docmap[docs]
        freqs = np.rint(freqs).astype(np.int32)
        if self.has_deletions:
            keep = merged >= 0
            merged, freqs = merged[keep], freqs[keep]
        return merged, freqs

    def only_posting(self, value: bytes) -> tuple[int, int]:
        """The merged docnum and frequency of a term's one posting (a segment without
        deletions), decoded without numpy: most terms of a merge are such."""
        if not value[0]:
            docs, freqs = self.postings(value)
            return int(docs[0]), int(freqs[0])
        ids, weights, _ = pickle.loads(value[_TERMINFO_SIZE:])
        return int(self.docmap[ids[0]]), 1 if weights is None else round(weights[0])


def _df(value: bytes) -> int:
    return _DF.unpack_from(value, _DF_AT)[0]


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
                chunk = _Chunk(out, inputs, docmaps, name, field, lens)
                _merge_field(chunk, inputs, name, (shared or {}).get(name))
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
    chunk: _Chunk, inputs: list[_Input], name: str, shared: Callable[[str], str | None] | None
) -> None:
    """Merge field ``name``'s terms of every input, in byte order, through ``chunk``."""
    pooled = _pooled_postings(inputs, name, shared) if shared else {}
    streams = _streams(inputs, name)
    extra = len(inputs)  # pooled postings come as one more input
    streams.append((term, extra, b"") for term in sorted(pooled))
    for term, group in itertools.groupby(heapq.merge(*streams), key=_first):
        found = [(i, value) for _, i, value in group]
        if term in pooled or any(i < extra and inputs[i].has_deletions for i, _ in found):
            parts = [pooled[term] if i == extra else inputs[i].postings(v) for i, v in found]
            docs, freqs = _sum_by_doc(*concatenate(parts)) if len(parts) > 1 else parts[0]
            if docs.size and not (docs.size == 1 and shared and _pools(shared, term)):
                chunk.add_arrays(term, docs, freqs)
            continue
        if shared and len(found) == 1 and _df(found[0][1]) == 1 and _pools(shared, term):
            continue  # under its shared term (``_pooled_postings``)
        chunk.add(term, found)
    chunk.flush()
    chunk.finish()


def _first(item: tuple) -> bytes:
    return item[0]


def _streams(inputs: list[_Input], name: str) -> list[Iterator[tuple[bytes, int, bytes]]]:
    """Each input's (term, its position, value) of field ``name``, for ``heapq.merge``."""
    return [_tagged(source.terms(name), i) for i, source in enumerate(inputs)]


def _tagged(terms: Iterator[tuple[bytes, bytes]], tag: int) -> Iterator[tuple[bytes, int, bytes]]:
    for term, value in terms:
        yield term, tag, value


def _pools(shared: Callable[[str], str | None], term: bytes) -> bool:
    return shared(term.decode("utf-8")) is not None


def _sum_by_doc(docs: np.ndarray, freqs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Documents ascending and unique, frequencies of a document added up."""
    unique, inverse = np.unique(docs, return_inverse=True)
    return unique, np.bincount(inverse, weights=freqs).astype(np.int32)


def _pooled_postings(
    inputs: list[_Input], name: str, shared: Callable[[str], str | None]
) -> dict[bytes, tuple[np.ndarray, np.ndarray]]:
    """Shared term -> (docnums, frequencies) of the terms exactly one document of the merged
    segment holds, that ``shared`` maps to a shared term (a first pass over the dictionaries:
    a shared term may sort before the terms pooled under it)."""
    targets: dict[bytes, int] = {}
    ids, docs, freqs = array("i"), array("q"), array("i")
    for term, group in itertools.groupby(heapq.merge(*_streams(inputs, name)), key=_first):
        found = [(i, value) for _, i, value in group]
        if any(inputs[i].has_deletions for i, _ in found):
            live = [p for p in (inputs[i].postings(v) for i, v in found) if p[0].size]
            if len(live) != 1 or live[0][0].size != 1:
                continue
            doc, freq = int(live[0][0][0]), int(live[0][1][0])
        elif len(found) == 1 and _df(found[0][1]) == 1:
            doc, freq = inputs[found[0][0]].only_posting(found[0][1])
        else:
            continue
        target = shared(term.decode("utf-8"))
        if target is None:
            continue
        ids.append(targets.setdefault(target.encode("utf-8"), len(targets)))
        docs.append(doc)
        freqs.append(freq)
    if not targets:
        return {}
    id_array = np.frombuffer(ids, dtype=np.int32)
    doc_array = np.frombuffer(docs, dtype=np.int64)
    freq_array = np.frombuffer(freqs, dtype=np.int32)
    order = np.lexsort((doc_array, id_array))
    id_array, doc_array, freq_array = id_array[order], doc_array[order], freq_array[order]
    bounds = np.flatnonzero(np.diff(id_array)) + 1
    names = list(targets)
    out = {}
    for part_ids, part_docs, part_freqs in zip(
        np.split(id_array, bounds),
        np.split(doc_array, bounds),
        np.split(freq_array, bounds),
        strict=True,
    ):
        out[names[int(part_ids[0])]] = _sum_by_doc(part_docs, part_freqs)
    return out


class _Chunk:
    """Merged terms of one field waiting to be written, a bounded number at a time.

    Postings of inputs without deletions stay as the inputs hold them (a pickled inline list, or
    a block extent) until ``flush``, which decodes and renumbers the whole chunk's at once; others
    come decoded (``add_arrays``).
    """

    def __init__(
        self,
        out: _MergedSegment,
        inputs: list[_Input],
        docmaps: np.ndarray,
        name: str,
        field,
        lens: np.ndarray | None,
    ) -> None:
        self.out, self.inputs, self.docmaps = out, inputs, docmaps
        self.name, self.field, self.lens = name, field, lens
        self.started = False
        self.terms: list[bytes] = []
        self.postings = 0
        # inlined lists: term index, input, ids, weights (``None``: all 1)
        self.inline: list[tuple[int, int, tuple, tuple | None]] = []
        # decoded parts: term index, merged docnums, frequencies
        self.decoded: list[tuple[int, np.ndarray, np.ndarray]] = []

    def add(self, term: bytes, found: list[tuple[int, bytes]]) -> None:
        """A term found in inputs without deletions: (input, dictionary value) each."""
        index = len(self.terms)
        self.terms.append(term)
        for i, value in found:
            source = self.inputs[i]
            if value[0]:
                ids, weights, _ = pickle.loads(value[_TERMINFO_SIZE:])
                self.inline.append((index, i, ids, weights))
            else:
                docs, freqs = source.postings(value)
                self.decoded.append((index, docs, freqs))
            self.postings += _df(value)
        self._check()

    def add_arrays(self, term: bytes, docs: np.ndarray, freqs: np.ndarray) -> None:
        self.decoded.append((len(self.terms), docs, freqs))
        self.terms.append(term)
        self.postings += docs.size
        self._check()

    def _check(self) -> None:
        if len(self.terms) >= CHUNK_TERMS or self.postings >= CHUNK_POSTINGS:
            self.flush()

    def flush(self) -> None:
        if not self.terms:
            return
        fieldwriter = self.out._fields
        if not self.started:
            fieldwriter.start_field(self.name, self.field)
            self.started = True
        term_of, docs, freqs = self._arrays()
        # Two runs already in (term, docnum) order, the inlined lists' and the decoded ones': a
        # stable sort merges them in linear time.
        order = np.argsort((term_of << 32) | docs, kind="stable")
        term_of, docs, freqs = term_of[order], docs[order].astype(np.int32), freqs[order]
        df = np.bincount(term_of, minlength=len(self.terms))
        lens = self.lens[docs] if self.lens is not None else np.zeros(docs.size, np.uint8)
        write_sorted(fieldwriter, self.terms, docs, freqs, lens, df)
        self.terms, self.inline, self.decoded, self.postings = [], [], [], 0

    def _arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every posting of the chunk: (term index, merged docnum, frequency)."""
        terms, docs, freqs = [], [], []
        if self.inline:
            counts = np.fromiter((len(ids) for _, _, ids, _ in self.inline), np.int64)
            total = int(counts.sum())
            raw = np.fromiter(itertools.chain.from_iterable(e[2] for e in self.inline), np.int64)
            weights = itertools.chain.from_iterable(
                itertools.repeat(1, len(ids)) if w is None else w for _, _, ids, w in self.inline
            )
            inputs = np.fromiter((i for _, i, _, _ in self.inline), np.int64)
            starts = np.asarray([source.docmap_start for source in self.inputs], np.int64)
            merged = self.docmaps[np.repeat(starts[inputs], counts) + raw]
            terms.append(np.repeat(np.fromiter((e[0] for e in self.inline), np.int64), counts))
            docs.append(merged)
            freqs.append(np.rint(np.fromiter(weights, np.float64, total)).astype(np.int32))
        for index, part_docs, part_freqs in self.decoded:
            terms.append(np.full(part_docs.size, index, np.int64))
            docs.append(part_docs)
            freqs.append(part_freqs)
        return np.concatenate(terms), np.concatenate(docs), np.concatenate(freqs)

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
