"""A segment's term dictionary and posting blocks read with ``os.pread``, not Whoosh's file layers.

Loading a term costs vnsearch one dictionary lookup per field and segment (three fields, in their
folded or extra view; most lookups miss). Through Whoosh each lookup is an md5, then about seven
small seek + read calls through ``StructFile``/``SubFile`` layers (the hash-table slot, the entry's
lengths, its key, its value), then ``W3TermInfo`` and a matcher object: about half of what a
query-time term load took (``docs/scaling-log.md``). Here the same hash table
(``filetables.HashReader``: a 256-entry directory of open-addressing tables of
``(hash, position)`` slots, keyed by the field number + term bytes of
``W3TermsReader._keycoder``) is walked with two reads a lookup, a few slots
at a time and then the entry, and a term's posting blocks (``W3LeafMatcher._goto``/``_read_data``)
come in one read of its extent. The results are the very values Whoosh's path decodes.

Why ``pread`` and not a memory map of the segment file: a map was a little faster a term, but
lookups land all over the term dictionary, and the kernel maps page-cache pages in large chunks
around each fault, so after a thousand terms the whole ``.trm`` and ``.pst`` (most of the index)
counted in each worker's RSS, which the README's worker-memory goal bounds, and grew with the
archive.  ``pread`` copies what it needs out of the OS page cache, which every worker
shares, and needs no file position either, so the background warm-up thread and queries may read
one segment at once (Whoosh's seek + read may not).

Only a segment laid out as expected gets a reader (the W3 codec, a compound file opened as a
plain file, md5 hashes); ``SegmentTerms.open`` returns ``None`` otherwise, and the caller keeps
Whoosh's path.  An entry this module does not decode raises ``Unsupported`` for the same reason.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import logging
import mmap
import operator
import os
import pickle
import struct
import threading
import zlib
from array import array
from collections.abc import Iterable, Iterator
from hashlib import md5

import numpy as np
from whoosh.codec.whoosh3 import WHOOSH3_HEADER_MAGIC, W3Codec, W3TermInfo, W3TermsReader
from whoosh.filedb.compound import CompoundStorage
from whoosh.matching import ListMatcher
from whoosh.reading import TermNotFound

log = logging.getLogger(__name__)
# Segments whose fallback to Whoosh's path has been logged (once each, not once a term).
_LOGGED: set[str] = set()

_POINTER = struct.Struct("!Iq")  # filetables._pointer: a slot's hash and entry position
_LENGTHS = struct.Struct("!ii")  # filetables._lengths: an entry's key and value lengths
_HASH = struct.Struct("!I")  # md5_hash: the digest's last four bytes, big-endian
# A hash table's slots as numpy reads them (``_POINTER``, big-endian): position 0 is an empty slot.
_SLOTS = np.dtype([("hash", ">u4"), ("position", ">i8")])
_EXTENT = struct.Struct("!qi")  # W3TermInfo: postings offset (pack_long) and length (pack_int)
_BLOCK_LENGTH = struct.Struct("!i")  # a posting block's length, negated for the last one
_FIELD_NUMBER = struct.Struct("!H")  # the key prefix of W3TermsReader._keycoder
_TERMINFO_SIZE = W3TermInfo._struct.size  # 23 bytes of statistics before the postings
_TERMINFO_HEAD = struct.Struct("!BfI")  # W3TermInfo's first three: inlined, weight, df
_MD5 = 0  # HashReader.hashtype of md5_hash, the only hash Whoosh's writers use
# Slots read at once: tables are half full, so a lookup probes ~2.5 slots on average.
PROBE_SLOTS = 4
# Bytes of an entry read with its lengths and key: a block extent takes 35 bytes, an inlined list
# of 16 postings ~120 (``segment_writer``); a longer value takes a second read.
ENTRY_BYTES = 160
# A segment's term dictionary (its ``.trm`` sub-file) up to this size is read into memory when
# the segment is opened: the small segments of incremental runs, whose lookups (a read or two
# each, three fields a term) were most of a worker's switch to a new generation.
IMAGE_BYTES = 8 * 2**20
# Bytes of entries read at a time when the whole dictionary is scanned (``frequent``).
SCAN_BYTES = 16 * 2**20


class Unsupported(Exception):
    """Something this reader does not decode: read the term through Whoosh instead."""


def inline_arrays(ids, weights) -> tuple[np.ndarray, np.ndarray]:
    """The arrays of a posting list inlined in its dictionary entry (``segment_writer``):
    ``weights`` ``None`` means all 1."""
    docs = np.asarray(ids, dtype=np.int32)
    if weights is None:
        return docs, np.ones(docs.size, dtype=np.float32)
    return docs, np.asarray(weights, dtype=np.float32)


def block_arrays(deltas, weights) -> tuple[np.ndarray, np.ndarray]:
    """The arrays of one posting block's data tuple: ids delta-encoded from 0 (decoded with
    ``cumsum``, not Whoosh's generator), weights ``None`` when all 1.0, one float when all equal
    (``W3PostingsWriter._mini_weights``)."""
    docs = np.cumsum(np.asarray(deltas, dtype=np.int64)).astype(np.int32)
    if weights is None:
        return docs, np.ones(docs.size, dtype=np.float32)
    if isinstance(weights, float):
        return docs, np.full(docs.size, weights, dtype=np.float32)
    return docs, np.asarray(weights, dtype=np.float32)


def concatenate(parts: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """One posting list from its parts' arrays (one part: as it is; none: empty arrays)."""
    if not parts:
        return np.zeros(0, np.int32), np.zeros(0, np.float32)
    if len(parts) == 1:
        return parts[0]
    return np.concatenate([d for d, _ in parts]), np.concatenate([w for _, w in parts])


class SegmentTerms:
    """Lookups in one segment's term dictionary, read from its compound file.

    Positions in Whoosh's structures are relative to their sub-file (``.trm``, ``.pst``); the
    sub-files' offsets in the compound file come from Whoosh's ``CompoundStorage`` directory.
    The reader holds a duplicate of the segment reader's file descriptor: still the file it read
    when a newer generation deletes it, and closed by ``close`` only (a lock keeps it from being
    closed, and its number reused, in the middle of a lookup).
    """

    __slots__ = (
        "_fd",
        "_lock",
        "_tables",
        "_prefixes",
        "_trm",
        "_pst",
        "_pst_end",
        "_image",
        "_image_at",
        "_trm_size",
        "_entries",
    )

    def __init__(
        self,
        fd: int,
        tables: list[tuple[int, int]],
        fieldmap: dict[str, int],
        trm: int,
        pst: tuple[int, int],
        image: bytes | None = None,
        entries: tuple[int, int] = (0, 0),
        trm_size: int = 0,
    ) -> None:
        self._fd = fd
        self._lock = threading.Lock()
        # Per bucket (hash & 255): (position of its table in the file, number of slots).
        self._tables = tables
        # Each field's key prefix, packed once.
        self._prefixes = {name: _FIELD_NUMBER.pack(num) for name, num in fieldmap.items()}
        self._trm = trm  # where the .trm sub-file starts
        self._pst = pst[0]
        self._pst_end = pst[0] + pst[1]
        self._image = image  # the .trm sub-file when small (``IMAGE_BYTES``)
        self._image_at = trm  # where the image starts in the file
        self._entries = entries  # where its entries lie in the file, one after the other
        self._trm_size = trm_size  # bytes of the .trm sub-file (``mapped``)

    @classmethod
    def open(cls, leaf) -> SegmentTerms | None:
        """A reader for ``leaf`` (a Whoosh ``SegmentReader``), or ``None`` when its segment is not
        laid out as this module expects (the caller then reads through Whoosh)."""
        try:
            terms = leaf._terms
            if type(terms) is not W3TermsReader:
                return None
            tindex = terms._tindex
            if tindex.hashtype != _MD5 or tindex.startoffset != 0:
                return None
            segment = leaf.segment()
            compound = getattr(leaf._storage, "a", None)  # OverlayStorage(compound, folder)
            if not isinstance(compound, CompoundStorage) or not segment.is_compound():
                return None
            if compound._file is None:  # Whoosh mapped the file (``supports_mmap``): its path
                return None
            trm = compound.range(segment.make_filename(W3Codec.TERMS_EXT))
            pst = compound.range(segment.make_filename(W3Codec.POSTS_EXT))
            fd = os.dup(compound._file.fileno())
            try:
                size = os.fstat(fd).st_size
            except OSError:
                os.close(fd)
                raise
            if trm[0] + trm[1] > size or pst[0] + pst[1] > size:
                os.close(fd)
                return None
            tables = [(trm[0] + position, slots) for position, slots in tindex.tables]
            image = os.pread(fd, trm[1], trm[0]) if trm[1] <= IMAGE_BYTES else None
            if image is not None and len(image) < trm[1]:
                os.close(fd)
                return None
            entries = (trm[0] + tindex.startofdata, trm[0] + tindex.endofdata)
            return cls(fd, tables, dict(terms._fieldmap), trm[0], pst, image, entries, trm[1])
        except Exception:  # anything unexpected (a closed file, another layout): Whoosh's path
            return None

    def close(self) -> None:
        """Close the file; lookups afterwards raise ``ValueError``, as reads from Whoosh's closed
        files do."""
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1

    def postings(self, field: str, term: bytes) -> tuple[np.ndarray, np.ndarray] | None:
        """All (docnum, weight) of ``term`` in ``field`` (``None``: not in this segment), as
        ``whoosh_postings`` decodes them."""
        prefix = self._prefixes.get(field)
        if prefix is None:  # Whoosh looks up field number 65535: found nowhere either
            return None
        with self._lock:
            if self._fd < 0:
                raise ValueError("read from a closed segment")
            value = self._value(prefix + term)
            if value is None:
                return None
            if len(value) < _TERMINFO_SIZE:
                raise Unsupported("short term info")
            if value[0]:  # W3TermInfo flags: postings inlined, pickled
                blocks = None
            else:
                offset, length = _EXTENT.unpack_from(value, _TERMINFO_SIZE)
                start = self._pst + offset
                if offset < 0 or length < 0 or start + length > self._pst_end:
                    raise Unsupported("postings past the postings file")
                blocks = os.pread(self._fd, length, start)
        if blocks is None:
            ids, weights, _values = pickle.loads(value[_TERMINFO_SIZE:])
            return inline_arrays(ids, weights)
        return concatenate(_blocks(blocks))

    def frequent(self, fields: Iterable[str], min_df: int) -> Iterator[tuple[str, str, int]]:
        """``(field, term, df)`` of every term in ``fields`` found in ``min_df`` documents or
        more, in dictionary order: the entries are read one after the other (keys and lengths,
        a chunk at a time), the document frequency out of each ``W3TermInfo``.  At a million
        articles its 3.2 million entries take ~2 s."""
        numbers = {self._prefixes[f]: f for f in fields if f in self._prefixes}
        lengths, info = _LENGTHS.unpack_from, _TERMINFO_HEAD.unpack_from
        position, end = self._entries
        chunk, at = b"", 0
        while position < end:
            keylen = valuelen = -1
            if at + _LENGTHS.size <= len(chunk):
                keylen, valuelen = lengths(chunk, at)
            if keylen < 0 or at + _LENGTHS.size + keylen + valuelen > len(chunk):
                chunk, at = self._chunk(position, end), 0
                keylen, valuelen = lengths(chunk, at)
            if keylen < _FIELD_NUMBER.size or valuelen < 0:  # a damaged entry: never loop on it
                raise Unsupported("entry lengths")
            key = at + _LENGTHS.size
            field = numbers.get(chunk[key : key + _FIELD_NUMBER.size])
            if field is not None and valuelen >= _TERMINFO_HEAD.size:
                _inlined, _weight, df = info(chunk, key + keylen)
                if df >= min_df:
                    term = chunk[key + _FIELD_NUMBER.size : key + keylen]
                    yield field, term.decode("utf-8"), df
            step = _LENGTHS.size + keylen + valuelen
            position, at = position + step, at + step

    @property
    def prefixes(self) -> dict[str, bytes]:
        """Each field's key prefix in this segment (its field number, packed)."""
        return dict(self._prefixes)

    def key_hashes(self) -> np.ndarray:
        """The hash of every key in the dictionary (uint32, sorted, unique), read from the hash
        tables' slots, not from the entries: 12 bytes a key, read and sorted by numpy, where
        listing the keys themselves (``frequent``) is a Python step an entry."""
        runs: list[bytes] = []
        for start, slots in self._tables:
            if not slots:
                continue
            with self._lock:
                if self._fd < 0:
                    raise ValueError("read from a closed segment")
                run = self._read(self._fd, slots * _POINTER.size, start)
            if len(run) < slots * _POINTER.size:
                raise Unsupported("hash table past the file")
            runs.append(run)
        table = np.frombuffer(b"".join(runs), dtype=_SLOTS)
        return np.unique(table["hash"][table["position"] != 0].astype(np.uint32))

    @property
    def key_count(self) -> int:
        """Slots of the hash tables (about twice the keys): what ``key_hashes`` reads."""
        return sum(slots for _, slots in self._tables)

    def doc_frequency(self, field: str, term: bytes) -> int:
        """How many documents hold ``term`` in ``field`` (0: none)."""
        prefix = self._prefixes.get(field)
        if prefix is None:
            return 0
        with self._lock:
            if self._fd < 0:
                raise ValueError("read from a closed segment")
            value = self._value(prefix + term)
        if value is None:
            return 0
        if len(value) < _TERMINFO_HEAD.size:
            raise Unsupported("short term info")
        return _TERMINFO_HEAD.unpack_from(value)[2]

    def _chunk(self, position: int, end: int) -> bytes:
        """The entries from ``position`` on, ``SCAN_BYTES`` of them or to ``end``; at least one
        whole entry."""
        with self._lock:
            if self._fd < 0:
                raise ValueError("read from a closed segment")
            chunk = os.pread(self._fd, min(SCAN_BYTES, end - position), position)
            if len(chunk) >= _LENGTHS.size:
                keylen, valuelen = _LENGTHS.unpack_from(chunk)
                whole = _LENGTHS.size + keylen + valuelen
                if whole > len(chunk):  # an entry longer than a chunk (a long inlined list)
                    chunk = os.pread(self._fd, whole, position)
        if len(chunk) < _LENGTHS.size or _LENGTHS.size + sum(_LENGTHS.unpack_from(chunk)) > len(
            chunk
        ):
            raise Unsupported("entry past the file")
        return chunk

    def _value(self, key: bytes) -> bytes | None:
        """The value of ``key`` in the hash file (``HashReader.ranges_for_key``: its first
        match), ``None`` when absent."""
        fd = self._fd
        keyhash = _HASH.unpack_from(md5(key).digest(), 12)[0]  # ``key_hash``, inlined
        start, slots = self._tables[keyhash & 255]
        if not slots:
            return None
        slot = (keyhash >> 8) % slots
        keylen = len(key)
        size = _POINTER.size
        probed = 0
        while probed < slots:
            count = min(PROBE_SLOTS, slots - slot, slots - probed)
            run = self._read(fd, count * size, start + slot * size)
            if len(run) < count * size:
                raise Unsupported("hash table past the file")
            for at in range(0, count * size, size):
                slothash, position = _POINTER.unpack_from(run, at)
                if not position:
                    return None
                if slothash == keyhash:
                    found = self._entry(position, key, keylen)
                    if found is not None:
                        return found
            probed += count
            slot = (slot + count) % slots
        return None

    def _read(self, fd: int, length: int, offset: int) -> bytes:
        """``length`` bytes of the term dictionary at ``offset`` (of the file), from its image
        when it has one."""
        image = self._image
        if image is None:
            return os.pread(fd, length, offset)
        at = offset - self._image_at
        return image[at : at + length] if at >= 0 else os.pread(fd, length, offset)

    @contextlib.contextmanager
    def mapped(self) -> Iterator[None]:
        """Lookups inside read the term dictionary through one memory map instead of a ``pread``
        a slot run and an entry (~35 % of reading every rare term of a base for its terms file,
        ``Snapshot.write_base_terms``: 56 -> 46 s at 150k).  Only for such a bulk reader: a
        worker's pages mapped this way would count in its memory (the module docstring)."""
        if not self._trm_size or self._image is not None:
            yield  # read into memory already (or a size unknown: ``pread`` as always)
            return
        at = self._trm - self._trm % mmap.ALLOCATIONGRANULARITY
        with self._lock:
            if self._fd < 0:
                raise ValueError("read from a closed segment")
            image = mmap.mmap(
                self._fd, self._trm + self._trm_size - at, prot=mmap.PROT_READ, offset=at
            )
            self._image, self._image_at = image, at
        try:
            yield
        finally:
            with self._lock:
                self._image, self._image_at = None, self._trm
            image.close()

    def _entry(self, position: int, key: bytes, keylen: int) -> bytes | None:
        """The value of the entry at ``position`` (of the .trm sub-file) if its key is ``key``."""
        entry = self._trm + position
        head = self._read(self._fd, _LENGTHS.size + keylen + ENTRY_BYTES, entry)
        if len(head) < _LENGTHS.size:
            raise Unsupported("entry past the file")
        found_keylen, valuelen = _LENGTHS.unpack_from(head)
        keyend = _LENGTHS.size + keylen
        if found_keylen != keylen or head[_LENGTHS.size : keyend] != key:
            return None
        value = head[keyend : keyend + valuelen]
        if len(value) < valuelen:
            value = self._read(self._fd, valuelen, entry + keyend)
            if len(value) < valuelen:
                raise Unsupported("entry past the file")
        return value


def _blocks(data: bytes) -> list[tuple[np.ndarray, np.ndarray]]:
    """The arrays of a term's posting blocks (``data``: its whole extent), as one part."""
    payloads = list(block_payloads(data, 0, len(data)))
    if not payloads:
        return []
    if len(payloads) == 1:  # most terms a query loads: no joining of blocks to do (~4x faster)
        deltas, weights = pickle.loads(payloads[0])[:2]
        return [block_arrays(deltas, weights)]
    _, ids, weights = decode_blocks(payloads)
    return [(ids.astype(np.int32), weights)]


def block_payloads(data: bytes, start: int, end: int) -> Iterator[bytes]:
    """The pickled data tuple of each posting block of the term whose extent is
    ``data[start:end]``, decompressed, read as ``W3LeafMatcher`` reads them: a magic tag, then
    per block its length (negative for the last), a pickled info tuple and the data tuple."""
    if data[start : start + 4] != WHOOSH3_HEADER_MAGIC:
        raise Unsupported("block tag")
    position = start + 4
    while True:
        if position + _BLOCK_LENGTH.size > end:
            raise Unsupported("block past the term's postings")
        length = _BLOCK_LENGTH.unpack_from(data, position)[0]
        begin = position + _BLOCK_LENGTH.size
        position = begin + abs(length)  # the next block
        if position > end:
            raise Unsupported("block past the term's postings")
        block = io.BytesIO(data[begin:position])
        count, _maxid, _maxweight, compression, _minlen, _maxlen = pickle.load(block)
        if count <= 0:  # ``W3LeafMatcher.is_active`` stops at an empty block
            return
        payload = block.read()
        yield zlib.decompress(payload) if compression else payload
        if length < 0:
            return


def decode_blocks(payloads: list[bytes]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Blocks' data tuples (``block_payloads``), unpickled and decoded all at once: each block's
    size, the ids (int64) and the weights (float32) end to end.  Ids are delta-encoded from 0 in
    each block: one cumulative sum over all, less the sum reached before each block.  Weights
    are ``None`` when all 1.0, one float when all equal (``W3PostingsWriter._mini_weights``),
    else a sequence."""
    tuples = list(map(pickle.loads, payloads))
    deltas = list(map(operator.itemgetter(0), tuples))
    weights = list(map(operator.itemgetter(1), tuples))
    del tuples
    sizes = np.fromiter(map(len, deltas), np.int64, len(deltas))
    total = int(sizes.sum())
    sums = np.cumsum(flatten(deltas, np.int64, total))
    del deltas
    before = np.concatenate(([0], sums))[np.cumsum(sizes) - sizes]
    ids = sums - np.repeat(before, sizes)
    freqs = np.ones(total, np.float32)
    floats = np.fromiter(map(isinstance, weights, itertools.repeat(float)), bool, len(weights))
    if floats.any():  # one weight for the whole block
        values = np.asarray(list(itertools.compress(weights, floats.tolist())), np.float32)
        freqs[np.repeat(floats, sizes)] = np.repeat(values, sizes[floats])
    listed = ~floats & np.fromiter(
        map(operator.is_not, weights, itertools.repeat(None)), bool, len(weights)
    )
    if listed.any():
        at = np.repeat(listed, sizes)
        listed_weights = list(itertools.compress(weights, listed.tolist()))
        freqs[at] = flatten(listed_weights, np.float32, int(at.sum()))
    return sizes, ids, freqs


def flatten(parts: list, dtype, total: int) -> np.ndarray:
    """Blocks' sequences end to end.  ``segment_writer`` pickles them as ``array.array`` s (raw
    bytes: read through the buffer), segments written before it as tuples (one ``fromiter``
    over all of them: ``np.asarray`` of a tuple costs ~8 us a block)."""
    if not any(isinstance(part, array) for part in parts):
        return np.fromiter(itertools.chain.from_iterable(parts), dtype, total)
    if all(isinstance(part, array) for part in parts):
        # Runs of one type joined as bytes, read by one ``frombuffer`` each: a third of the
        # time of an ``asarray`` a block.
        runs = [
            np.frombuffer(b"".join(run), np.dtype(code))
            for code, run in itertools.groupby(parts, key=operator.attrgetter("typecode"))
        ]
        return (runs[0] if len(runs) == 1 else np.concatenate(runs)).astype(dtype)
    return np.concatenate(
        [
            np.asarray(part, dtype=dtype)
            if isinstance(part, array)
            else np.fromiter(part, dtype, len(part))
            for part in parts
        ]
    )


def key_hash(key: bytes) -> int:
    """Whoosh's ``md5_hash`` of a dictionary key (its field number and term): the hash its
    tables file the key under."""
    return _HASH.unpack_from(md5(key).digest(), 12)[0]


def leaf_postings(
    leaf, terms: SegmentTerms | None, field: str, term: bytes
) -> tuple[np.ndarray, np.ndarray] | None:
    """All (docnum, weight) of a term in one segment (``None``: not there).

    Read by ``terms`` (half the time of Whoosh's seek + read layers) when the segment has one;
    through Whoosh otherwise, or when ``terms`` finds anything it does not expect (Whoosh then
    decodes it, or raises what it always did).  Falling back is logged, once a segment.
    """
    if terms is not None:
        try:
            return terms.postings(field, term)
        except Exception as exc:  # not a layout this module decodes (or a damaged file)
            _log_fallback(leaf, f"{type(exc).__name__}: {exc}")
    else:
        _log_fallback(leaf, "a layout this module does not read")
    return whoosh_postings(leaf, field, term)


def _log_fallback(leaf, why: str) -> None:
    try:
        segment = leaf.segment().segment_id()
    except Exception:  # noqa: BLE001 - only for the message
        segment = "?"
    if segment not in _LOGGED:
        _LOGGED.add(segment)
        log.warning("segment %s is read through Whoosh's slower path (%s)", segment, why)


def whoosh_postings(leaf, field: str, term: bytes) -> tuple[np.ndarray, np.ndarray] | None:
    """``leaf_postings`` through Whoosh's own term reader and matchers, decoded a block at a
    time with numpy.

    Whoosh's own ``_read_ids`` delta-decodes every id in a Python generator (most of the time
    spent loading a frequent term); its block tuple is decoded here with ``cumsum`` instead.  Most
    terms a query asks for are missing from most fields, so the one dictionary lookup that opens
    the matcher also answers "is it there" (``term in leaf`` first cost a second lookup).  Short
    lists are inlined in the dictionary entry (``segment_writer``) and need no block read.
    """
    try:
        matcher = leaf._terms.matcher(field, term, leaf.schema[field].format)
    except TermNotFound:
        return None
    if isinstance(matcher, ListMatcher):  # a short list, inlined in the term dictionary
        return inline_arrays(matcher._ids, matcher._weights)
    parts: list[tuple[np.ndarray, np.ndarray]] = []
    while matcher.is_active():
        matcher._read_data()
        parts.append(block_arrays(matcher._data[0], matcher._data[1]))
        matcher._next_block()
    return concatenate(parts)
