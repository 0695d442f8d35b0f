"""Which segments of a generation's tail may hold a term: the hashes of every key of their term
dictionaries, listed once when a worker warms the generation.

A term a query needs and no worker has read yet is looked up in each tail segment, once per text
field: three hash lookups a segment, an md5 and a read or two each.  Incremental runs add a
segment each, and the merge policy lets a dozen or two small ones stand (``segment_merge``: 21
at 300k articles), so a worker that has served a while after a few days of runs asked ~40 tail
lookups for each of the ~8 new terms of a query (compounds and pairs, most of them in no tail
segment).  The tables' slots already hold each key's hash (Whoosh's ``md5_hash``), so the
listing is those hashes, read and sorted by numpy, with the segment each came from: a term's
three keys are hashed once each and found in one sorted array, and only the segments whose
tables hold one of those hashes are asked.  A hash two keys share costs only the lookup that
would have been made anyway, so the answers are the ones asking every segment gives.

A segment is not listed, and is asked for every term as before, when it is read through Whoosh,
when its tables do not read as expected (logged), or past ``MAX_KEYS`` keys listed (6 bytes a key
in each worker).  A key starts with its field's number, which Whoosh gives each field in the order
a segment writes them (a segment without any lead numbers ``title`` two lower, with no ``lead``
and ``lead_x``): each listed segment's numbers are kept, and a term is hashed with each number
its fields have in the tail.
"""

from __future__ import annotations

import logging
import math
from array import array
from collections.abc import Sequence

import numpy as np

from .term_reader import SegmentTerms, Unsupported, key_hash

log = logging.getLogger(__name__)

# Hashes sharing their top bits, on average (``TailKeys._starts``), and those bits at most.
RUN_KEYS = 8
MAX_BITS = 22
# Keys listed at most (each worker keeps 4 bytes of hash and 2 of segment a key): a tail of a
# few hundred articles holds ~50,000 keys a segment.
MAX_KEYS = 4_000_000


class TailKeys:
    """The key hashes of a tail's listed segments, sorted, and the position (in the tail) of the
    segment each came from; the positions of the segments not listed.

    A hash is found through its top bits (``_starts``: where each run of hashes with the same
    top bits begins), a few hashes to compare a run: a binary search through the whole array
    touched ~20 cache lines a key (a term's three keys took 27 us that way in a query, 19 this
    way, with 14 tail segments)."""

    __slots__ = (
        "_hashes",
        "_owners",
        "_starts",
        "_shift",
        "_prefixes",
        "_numbered",
        "_unlisted",
        "listed",
    )

    def __init__(
        self,
        hashes: np.ndarray,
        owners: np.ndarray,
        prefixes: list[dict[str, bytes] | None],
        unlisted: tuple[int, ...],
    ) -> None:
        bits = min(MAX_BITS, max(1, math.ceil(math.log2(max(hashes.size, 1) / RUN_KEYS))))
        self._shift = 32 - bits
        tops = np.arange((1 << bits) + 1, dtype=np.uint64) << np.uint64(self._shift)
        # Python arrays: an item read from one is a Python int at once (numpy's scalars and
        # slices cost ~0.3 us each, a dozen of them a term).
        self._starts = array("q", hashes.searchsorted(tops).astype(np.int64).tobytes())
        self._hashes = array("I", hashes.astype(np.uint32).tobytes())
        self._owners = array("H", owners.astype(np.uint16).tobytes())
        # Each segment's field numbers, packed (``None``: not listed), and each field's numbers
        # among the listed segments (one, mostly).
        self._prefixes = prefixes
        numbered: dict[str, set[bytes]] = {}
        for fields in prefixes:
            for field, prefix in (fields or {}).items():
                numbered.setdefault(field, set()).add(prefix)
        self._numbered = {field: tuple(sorted(found)) for field, found in numbered.items()}
        self._unlisted = unlisted
        self.listed = len(prefixes) - len(unlisted)  # how many segments are listed

    @classmethod
    def of(cls, segments: Sequence[SegmentTerms | None], where: str = "") -> TailKeys | None:
        """The listing of ``segments`` (a tail's, in order; ``None``: read through Whoosh), or
        ``None`` where none of them could be listed (``where``: the index, for the log)."""
        max_keys = MAX_KEYS
        prefixes: list[dict[str, bytes] | None] = []
        hashes: list[np.ndarray] = []
        owners: list[np.ndarray] = []
        unlisted: list[int] = []
        total = 0
        for position, terms in enumerate(segments):
            prefixes.append(None)
            if (
                terms is None
                or position > np.iinfo(np.uint16).max
                or total + terms.key_count // 2 > max_keys  # tables are half full
            ):
                unlisted.append(position)
                continue
            try:
                found = terms.key_hashes()
            except Unsupported as exc:
                log.warning(
                    "a tail segment of %s could not be listed (%s): its terms are looked up",
                    where,
                    exc,
                )
                unlisted.append(position)
                continue
            prefixes[position] = terms.prefixes
            hashes.append(found)
            owners.append(np.full(found.size, position, dtype=np.uint16))
            total += found.size
        if not hashes:
            return None
        joined = np.concatenate(hashes)
        order = np.argsort(joined, kind="stable")  # a hash's segments stay in tail order
        return cls(joined[order], np.concatenate(owners)[order], prefixes, tuple(unlisted))

    def holding(self, term: bytes, fields: Sequence[str]) -> list[list[int]]:
        """For each of ``fields``, the positions (ascending) of the tail segments that may hold
        ``term`` in it: the listed ones whose tables hold its key's hash, and every unlisted
        one."""
        numbered, prefixes, unlisted = self._numbered, self._prefixes, self._unlisted
        hashes, owners, starts, shift = self._hashes, self._owners, self._starts, self._shift
        out: list[list[int]] = []
        for field in fields:
            found: list[int] = []
            for prefix in numbered.get(field, ()):  # none: no listed segment has the field
                wanted = key_hash(prefix + term)
                top = wanted >> shift
                found += [
                    owner
                    for i in range(starts[top], starts[top + 1])
                    if hashes[i] == wanted
                    and (numbers := prefixes[owner := owners[i]]) is not None
                    and numbers.get(field) == prefix  # its number, not another field's
                ]
            if unlisted:
                found = sorted({*found, *unlisted})
            elif len(numbered.get(field, ())) > 1:
                found.sort()
            out.append(found)
        return out

    @property
    def nbytes(self) -> int:
        return sum(len(a) * a.itemsize for a in (self._hashes, self._owners, self._starts))
