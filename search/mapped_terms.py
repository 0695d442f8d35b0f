"""A segment's term dictionary and posting blocks read from a read-only memory map of its file.

Loading a term costs vnsearch one dictionary lookup per field and segment (six fields: title,
lead, body and their extra views; most lookups miss).  Through Whoosh each lookup is an md5, then
about seven small seek + read calls through ``StructFile``/``SubFile`` layers (the hash-table slot,
the entry's lengths, its key, its value), then ``W3TermInfo`` and a matcher object: about half of
the ~87 us a query-time term load took.  Here the same hash table (``filetables.HashReader``: a
256-entry directory of open-addressing tables of ``(hash, position)`` slots, keyed by the field
number + term bytes of ``W3TermsReader._keycoder``) is walked with ``struct.unpack_from`` on a map
of the compound segment file, and posting blocks (``W3LeafMatcher._goto``/``_read_data``) are
decoded from slices of it.  The results are the very values Whoosh's path decodes.

Why a map of the file and not Whoosh's own ``supports_mmap``: Whoosh wraps each mapped sub-file
in ``BytesIO``, which copies it into the worker's own memory (``engine.open_for_reading``).  A
read-only shared map costs nothing until pages are touched, and the touched pages are the OS page
cache's, shared by every worker.  Slicing a map also needs no file position, so the background
warm-up thread and queries may read the same segment at once (Whoosh's seek + read may not).

Only a segment laid out as expected gets a map (the W3 codec, a compound file, md5 hashes);
``MappedTerms.open`` returns ``None`` otherwise, and the caller keeps Whoosh's path.  An entry this
module does not decode raises ``Unsupported`` for the same reason.
"""

from __future__ import annotations

import contextlib
import io
import mmap
import pickle
import struct
import zlib
from hashlib import md5

import numpy as np
from whoosh.codec.whoosh3 import WHOOSH3_HEADER_MAGIC, W3Codec, W3TermInfo, W3TermsReader
from whoosh.filedb.compound import CompoundStorage

_POINTER = struct.Struct("!Iq")  # filetables._pointer: a slot's hash and entry position
_LENGTHS = struct.Struct("!ii")  # filetables._lengths: an entry's key and value lengths
_HASH = struct.Struct("!I")  # md5_hash: the digest's last four bytes, big-endian
_EXTENT = struct.Struct("!qi")  # W3TermInfo: postings offset (pack_long) and length (pack_int)
_BLOCK_LENGTH = struct.Struct("!i")  # a posting block's length, negated for the last one
_FIELD_NUMBER = struct.Struct("!H")  # the key prefix of W3TermsReader._keycoder
_TERMINFO_SIZE = W3TermInfo._struct.size  # 23 bytes of statistics before the postings
_MD5 = 0  # HashReader.hashtype of md5_hash, the only hash Whoosh's writers use


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


def concatenate(
    parts: list[tuple[np.ndarray, np.ndarray]],
) -> tuple[np.ndarray, np.ndarray]:
    """One posting list from its blocks' arrays (a list of no block: empty arrays)."""
    if not parts:
        return np.zeros(0, np.int32), np.zeros(0, np.float32)
    if len(parts) == 1:
        return parts[0]
    return np.concatenate([d for d, _ in parts]), np.concatenate([w for _, w in parts])


class MappedTerms:
    """Lookups in one segment's term dictionary, from a map of its compound file.

    Positions in Whoosh's structures are relative to their sub-file (``.trm``, ``.pst``); the
    sub-files' offsets in the compound file come from Whoosh's ``CompoundStorage`` directory.
    """

    __slots__ = ("_map", "_owned", "_tables", "_prefixes", "_trm", "_pst", "_pst_end")

    def __init__(
        self,
        source: mmap.mmap,
        owned: bool,
        tables: list[tuple[int, int]],
        fieldmap: dict[str, int],
        trm: int,
        pst: tuple[int, int],
    ) -> None:
        self._map = source
        self._owned = owned
        # Per bucket (hash & 255): (absolute position of its table, number of slots).
        self._tables = tables
        # Each field's key prefix, packed once.
        self._prefixes = {name: _FIELD_NUMBER.pack(num) for name, num in fieldmap.items()}
        self._trm = trm  # where the .trm sub-file starts
        self._pst = pst[0]
        self._pst_end = pst[0] + pst[1]

    @classmethod
    def open(cls, leaf) -> MappedTerms | None:
        """A reader for ``leaf`` (a Whoosh ``SegmentReader``), or ``None`` when its segment is not
        laid out as this module expects (the caller then reads through Whoosh)."""
        try:
            terms = leaf._terms
            if type(terms) is not W3TermsReader:
                return None
            tindex = terms._tindex
            if tindex.hashtype != _MD5 or tindex.startoffset != 0:
                return None
            compound = getattr(leaf._storage, "a", None)  # OverlayStorage(compound, folder)
            if not isinstance(compound, CompoundStorage) or not leaf.segment().is_compound():
                return None
            segment = leaf.segment()
            trm = compound.range(segment.make_filename(W3Codec.TERMS_EXT))
            pst = compound.range(segment.make_filename(W3Codec.POSTS_EXT))
            source = compound._source  # Whoosh mapped the file itself (``supports_mmap``)
            owned = source is None
            if owned:
                # The reader's own open file: still the segment it read, even if a newer
                # generation deleted the file meanwhile.  The map keeps its own descriptor.
                source = mmap.mmap(compound._file.fileno(), 0, access=mmap.ACCESS_READ)
            if trm[0] + trm[1] > len(source) or pst[0] + pst[1] > len(source):
                if owned:
                    source.close()
                return None
            tables = [(trm[0] + position, slots) for position, slots in tindex.tables]
            return cls(source, owned, tables, dict(terms._fieldmap), trm[0], pst)
        except Exception:  # anything unexpected (a closed file, another layout): Whoosh's path
            return None

    def close(self) -> None:
        """Unmap the file (when this reader mapped it); lookups afterwards raise ``ValueError``,
        as reads from Whoosh's closed files do."""
        if self._owned:
            with contextlib.suppress(BufferError):  # a slice still exported: the GC unmaps it
                self._map.close()

    def _value(self, key: bytes) -> bytes | None:
        """The value of ``key`` in the hash file (``HashReader.ranges_for_key``: its first
        match), ``None`` when absent."""
        source = self._map
        keyhash = _HASH.unpack_from(md5(key).digest(), 12)[0]
        start, slots = self._tables[keyhash & 255]
        if not slots:
            return None
        slot = (keyhash >> 8) % slots
        keylen = len(key)
        for _ in range(slots):
            slothash, position = _POINTER.unpack_from(source, start + slot * _POINTER.size)
            if not position:
                return None
            if slothash == keyhash:
                entry = self._trm + position  # relative to the .trm sub-file
                found_keylen, valuelen = _LENGTHS.unpack_from(source, entry)
                if found_keylen == keylen:
                    keystart = entry + _LENGTHS.size
                    if source[keystart : keystart + keylen] == key:
                        valuestart = keystart + keylen
                        return source[valuestart : valuestart + valuelen]
            slot += 1
            if slot == slots:
                slot = 0
        return None

    def postings(self, field: str, term: bytes) -> tuple[np.ndarray, np.ndarray] | None:
        """All (docnum, weight) of ``term`` in ``field`` (``None``: not in this segment), as
        ``postings._leaf_postings`` decodes them through Whoosh."""
        prefix = self._prefixes.get(field)
        if prefix is None:  # Whoosh looks up field number 65535: found nowhere either
            return None
        value = self._value(prefix + term)
        if value is None:
            return None
        if len(value) < _TERMINFO_SIZE:
            raise Unsupported("short term info")
        if value[0]:  # W3TermInfo flags: postings inlined, pickled
            ids, weights, _values = pickle.loads(value[_TERMINFO_SIZE:])
            return inline_arrays(ids, weights)
        offset, _length = _EXTENT.unpack_from(value, _TERMINFO_SIZE)
        return concatenate(self._blocks(self._pst + offset))

    def _blocks(self, position: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """The arrays of the posting blocks of a term starting at ``position`` (absolute), read as
        ``W3LeafMatcher`` reads them: a magic tag, then per block its length (negative for the
        last), a pickled info tuple and its (maybe compressed) pickled data tuple."""
        source = self._map
        end = self._pst_end
        if position + 4 > end or source[position : position + 4] != WHOOSH3_HEADER_MAGIC:
            raise Unsupported("block tag")
        position += 4
        parts: list[tuple[np.ndarray, np.ndarray]] = []
        while True:
            if position + _BLOCK_LENGTH.size > end:
                raise Unsupported("block past the postings")
            length = _BLOCK_LENGTH.unpack_from(source, position)[0]
            last = length < 0
            start = position + _BLOCK_LENGTH.size
            position = start + abs(length)  # the next block
            if position > end:
                raise Unsupported("block past the postings")
            block = io.BytesIO(source[start:position])
            count, _maxid, _maxweight, compression, _minlen, _maxlen = pickle.load(block)
            if count <= 0:  # ``W3LeafMatcher.is_active`` stops at an empty block
                break
            data = block.read()
            if compression:
                data = zlib.decompress(data)
            deltas, weights = pickle.loads(data)[:2]
            parts.append(block_arrays(deltas, weights))
            if last:
                break
        return parts
