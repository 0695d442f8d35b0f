"""Count tables that can be added to and subtracted from, kept as sorted arrays.

The accent vocabulary and the suggestion table are counts over the archive's text.  Kept exactly
(nothing pruned) as sorted keys and count arrays, they can be updated with what changed: the counts
of the new documents added, those of the deleted and replaced ones subtracted.  Pruning (a pair
seen once, a phrase in one title) happens when a table is derived for readers, so the result of any
sequence of updates is exactly that of counting the final documents at once.

``StringCounts`` keys rows by strings (a ``StringArray`` in UTF-8 byte order); ``KeyCounts`` by
``uint64`` (pairs of ids).  Both hold ``counts`` (int64, summed; a row whose count reaches 0 is
dropped) and may hold ``attrs``: per-row values set when the row first appears and kept as they
are (a property of the key itself, computed once).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .strings import StringArray, encode, fixed_width, load_array, save_array

# Bytes of each key compared by numpy when a delta is merged into a table (``_positions``): the
# keys (folded phrase + spelling, syllables) mostly differ within them.
PREFIX_BYTES = 16
# ... unless the delta is at most this share of the table: then each key is found by binary
# search (``k log n`` comparisons of bytes in Python).
SEARCH_SHARE = 1 / 64
COMPARED = 1 << 16  # keys compared whole at once by ``locate``


class CountsMismatch(ValueError):
    """Subtracting more than a table holds: the table does not describe the documents it was
    told it describes."""


@dataclass(frozen=True)
class StringCounts:
    keys: StringArray
    counts: np.ndarray  # int64, one per key
    attrs: np.ndarray  # (len(keys), width) int64: fixed per key

    @classmethod
    def empty(cls, width: int = 0) -> StringCounts:
        return cls(StringArray.empty(), np.zeros(0, np.int64), np.zeros((0, width), np.int64))

    @classmethod
    def from_mapping(
        cls,
        counts: Mapping[str, int],
        attrs: Callable[[str], tuple[int, ...]] | None = None,
        width: int = 0,
    ) -> StringCounts:
        """Rows from ``key -> count`` (zero counts dropped; a negative one is an error), each with
        its ``width`` fixed values ``attrs(key)``."""
        items = sorted((encode(k), k, c) for k, c in counts.items() if c)
        if any(c < 0 for _, _, c in items):
            raise CountsMismatch("a negative count for a key the table does not hold")
        rows = [attrs(k) for _, k, _ in items] if width and attrs is not None else []
        return cls(
            StringArray.from_bytes([raw for raw, _, _ in items]),
            np.fromiter((c for _, _, c in items), np.int64, len(items)),
            np.array(rows, dtype=np.int64).reshape(len(items), width),
        )

    def __len__(self) -> int:
        return self.counts.size

    def add(
        self, delta: Mapping[str, int], attrs: Callable[[str], tuple[int, ...]] | None = None
    ) -> StringCounts:
        """This table plus ``delta`` (negative counts subtract).  ``attrs`` gives the fixed values
        of a key this table does not hold yet.

        A build folds its tallies in every ``indexer.BuildLimits.tally_keys`` keys, so the loops
        over the delta's keys run in C where they can (``map``, ``fromiter``): Python strings
        sort by code point, which is the UTF-8 byte order (surrogates included)."""
        keys = sorted(k for k, c in delta.items() if c)
        if not keys:
            return self
        raw = list(map(encode, keys))
        delta_counts = np.fromiter(map(delta.__getitem__, keys), np.int64, len(keys))
        found, positions = self._positions(raw)
        counts = self.counts.copy()
        if found.any():
            np.add.at(counts, positions[found], delta_counts[found])
        fresh_rows = np.flatnonzero(~found)
        fresh_counts = delta_counts[fresh_rows]
        if np.any(fresh_counts < 0) or np.any(counts < 0):
            raise CountsMismatch("subtracting more than the table holds")
        fresh = [raw[i] for i in fresh_rows.tolist()]
        width = self.attrs.shape[1]
        fresh_attrs = np.array(
            [attrs(keys[i]) for i in fresh_rows.tolist()] if width and attrs else [],
            dtype=np.int64,
        ).reshape(len(fresh), width)
        merged = self._insert(counts, fresh, positions[fresh_rows], fresh_counts, fresh_attrs)
        return merged.without_zeros()

    def _positions(self, keys: list[bytes]) -> tuple[np.ndarray, np.ndarray]:
        """For sorted ``keys``: whether each is in the table, and its position or insertion
        point (``locate``)."""
        return locate(self.keys, keys)

    def _insert(
        self,
        counts: np.ndarray,
        fresh: list[bytes],
        points: np.ndarray,
        fresh_counts: np.ndarray,
        fresh_attrs: np.ndarray,
    ) -> StringCounts:
        """The table with ``fresh`` keys (sorted) inserted before positions ``points``."""
        if not fresh:
            return StringCounts(self.keys, counts, self.attrs)
        n, k = len(self), len(fresh)
        # Old row i moves up by the number of fresh keys inserted at or before it.
        order = np.empty(n + k, dtype=np.int64)
        old_to = np.arange(n) + np.searchsorted(points, np.arange(n), side="right")
        new_to = points + np.arange(k)
        order[old_to] = np.arange(n)
        order[new_to] = n + np.arange(k)
        both = StringArray.concat([self.keys, StringArray.from_bytes(fresh)])
        return StringCounts(
            both.take(order),
            np.concatenate([counts, fresh_counts])[order],
            np.concatenate([self.attrs, fresh_attrs])[order],
        )

    def without_zeros(self) -> StringCounts:
        keep = self.counts != 0
        if keep.all():
            return self
        rows = np.flatnonzero(keep)
        return StringCounts(self.keys.take(rows), self.counts[rows], self.attrs[rows])

    def merge(self, other: StringCounts, sign: int = 1) -> StringCounts:
        """This table plus (``sign`` 1) or minus (-1) another."""
        if not len(self) and sign > 0:
            return other
        delta = {k: sign * int(c) for k, c in zip(other.keys, other.counts.tolist(), strict=True)}
        fixed = (
            {k: tuple(a) for k, a in zip(other.keys, other.attrs.tolist(), strict=True)}
            if other.attrs.shape[1]
            else {}
        )
        return self.add(delta, fixed.__getitem__ if fixed else None)

    def save(self, directory: Path, name: str) -> None:
        self.keys.save(directory, name)
        save_counts(directory / f"{name}.counts.npy", self.counts)
        save_array(directory / f"{name}.attrs.npy", self.attrs)

    @classmethod
    def load(cls, directory: Path, name: str) -> StringCounts:
        return cls(
            StringArray.load(directory, name),
            load_counts(directory / f"{name}.counts.npy"),
            load_array(directory / f"{name}.attrs.npy"),
        )

    def equals(self, other: StringCounts) -> bool:
        return (
            np.array_equal(self.keys.offsets, other.keys.offsets)
            and np.array_equal(self.keys.blob, other.keys.blob)
            and np.array_equal(self.counts, other.counts)
            and np.array_equal(self.attrs, other.attrs)
        )


@dataclass(frozen=True)
class KeyCounts:
    """Counts keyed by sorted unique ``uint64`` keys (an ordered pair of ids:
    ``first << 32 | second``); ``counts`` is ``(n, width)`` int64, summed column by column; a row
    whose first column reaches 0 is dropped."""

    keys: np.ndarray
    counts: np.ndarray

    @classmethod
    def empty(cls, width: int) -> KeyCounts:
        return cls(np.zeros(0, np.uint64), np.zeros((0, width), np.int64))

    @classmethod
    def from_rows(cls, keys: np.ndarray, counts: np.ndarray) -> KeyCounts:
        """Rows with possibly repeated keys, summed."""
        if not keys.size:
            return cls.empty(counts.shape[1])
        order = np.argsort(keys, kind="stable")
        keys, counts = keys[order], counts[order]
        first = np.empty(keys.size, dtype=bool)
        first[0] = True
        np.not_equal(keys[1:], keys[:-1], out=first[1:])
        starts = np.flatnonzero(first)
        return cls(keys[starts], np.add.reduceat(counts, starts, axis=0)).without_zeros()

    def __len__(self) -> int:
        return self.keys.size

    def add(self, keys: np.ndarray, counts: np.ndarray) -> KeyCounts:
        """This table plus rows ``keys`` (unique, any order) and ``counts``."""
        if not keys.size:
            return self
        positions = np.searchsorted(self.keys, keys)
        found = positions < self.keys.size
        found[found] = self.keys[positions[found]] == keys[found]
        merged = self.counts.copy()
        np.add.at(merged, positions[found], counts[found])
        fresh_keys, fresh_counts = keys[~found], counts[~found]
        if np.any(fresh_counts[:, 0] < 0) or np.any(merged[:, 0] < 0):
            raise CountsMismatch("subtracting more than the table holds")
        order = np.argsort(fresh_keys)
        fresh_keys, fresh_counts = fresh_keys[order], fresh_counts[order]
        points = np.searchsorted(self.keys, fresh_keys)
        return KeyCounts(
            np.insert(self.keys, points, fresh_keys),
            np.insert(merged, points, fresh_counts, axis=0),
        ).without_zeros()

    def remap(self, old_to_new: np.ndarray) -> KeyCounts:
        """Keys with both ids mapped through ``old_to_new`` (increasing: the order holds).  An
        incremental run mostly brings no new syllable: the ids then stay, and so do the keys."""
        if _identity(old_to_new):
            return self
        return KeyCounts(remap_keys(self.keys, old_to_new), self.counts)

    def without_zeros(self) -> KeyCounts:
        keep = self.counts[:, 0] != 0
        if keep.all():
            return self
        return KeyCounts(self.keys[keep], self.counts[keep])

    def save(self, directory: Path, name: str) -> None:
        save_array(directory / f"{name}.keys.npy", self.keys)
        save_counts(directory / f"{name}.counts.npy", self.counts)

    @classmethod
    def load(cls, directory: Path, name: str) -> KeyCounts:
        return cls(
            load_array(directory / f"{name}.keys.npy"),
            load_counts(directory / f"{name}.counts.npy"),
        )

    def equals(self, other: KeyCounts) -> bool:
        return np.array_equal(self.keys, other.keys) and np.array_equal(self.counts, other.counts)


def save_counts(path: Path, counts: np.ndarray) -> None:
    """Counts on disk as int32 when they fit (half the bytes of the largest tables)."""
    small = not counts.size or (counts.min() >= 0 and counts.max() < 2**31)
    save_array(path, counts.astype(np.int32) if small else counts)


def load_counts(path: Path) -> np.ndarray:
    """Counts as int64 (what the tables add up in)."""
    return np.load(path, allow_pickle=False).astype(np.int64)


def pair_keys(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """``first << 32 | second`` as uint64."""
    return (first.astype(np.uint64) << np.uint64(32)) | second.astype(np.uint64)


def pair_ids(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The ids ``pair_keys`` joined (int64)."""
    return (keys >> np.uint64(32)).astype(np.int64), (keys & np.uint64(0xFFFFFFFF)).astype(np.int64)


def remap_keys(keys: np.ndarray, old_to_new: np.ndarray) -> np.ndarray:
    """``keys`` with both ids mapped through ``old_to_new``."""
    first, second = pair_ids(keys)
    return pair_keys(old_to_new[first], old_to_new[second])


def locate(table: StringArray, keys: list[bytes]) -> tuple[np.ndarray, np.ndarray]:
    """For sorted unique ``keys`` (UTF-8): whether each is in sorted ``table``, and its position
    or insertion point.

    A build folds millions of keys into tables of millions of rows (``indexer.VocabularyCount``),
    so this is numpy's work: the first ``PREFIX_BYTES`` of every key and row narrow each search
    (``searchsorted``; a key no row shares them with is placed at once), a key sharing them with
    one row is compared with it whole, a few thousand at a time (``S`` arrays of their common
    width: the lengths tell a key from the same bytes and trailing NULs).  Bytes are compared
    in Python only for the keys sharing their prefix with several rows."""
    n = len(table)
    found = np.zeros(len(keys), dtype=bool)
    if not n or not keys:
        return found, np.zeros(len(keys), np.int64)
    if len(keys) <= SEARCH_SHARE * n:  # a few keys: cheaper than the prefixes of every row
        positions = np.fromiter(map(table.bisect_left, keys), np.int64, len(keys))
        for i, (at, key) in enumerate(zip(positions.tolist(), keys, strict=True)):
            found[i] = at < n and table.raw(at) == key
        return found, positions
    prefixes = fixed_width(table, PREFIX_BYTES)
    heads = np.array([k[:PREFIX_BYTES] for k in keys], dtype=f"S{PREFIX_BYTES}")
    positions = np.searchsorted(prefixes, heads, side="left").astype(np.int64)
    ends = np.searchsorted(prefixes, heads, side="right")
    del prefixes, heads
    spans = ends - positions
    lengths = np.fromiter(map(len, keys), np.int64, len(keys))
    single = np.flatnonzero(spans == 1)
    for first in range(0, single.size, COMPARED):
        chosen = single[first : first + COMPARED]
        rows = positions[chosen]
        theirs = table.take(rows)
        their_lengths, our_lengths = theirs.lengths(), lengths[chosen]
        width = max(1, int(their_lengths.max()), int(our_lengths.max()))
        row_bytes = fixed_width(theirs, width)
        key_bytes = np.array([keys[i] for i in chosen.tolist()], dtype=f"S{width}")
        same_bytes = row_bytes == key_bytes
        found[chosen] = same_bytes & (their_lengths == our_lengths)
        after = (key_bytes > row_bytes) | (same_bytes & (our_lengths > their_lengths))
        positions[chosen] = rows + after
    for i in np.flatnonzero(spans > 1).tolist():
        key = keys[i]
        at = table.bisect_left(key, int(positions[i]), int(ends[i]))
        positions[i] = at
        found[i] = at < n and table.raw(at) == key
    return found, positions


def _identity(old_to_new: np.ndarray) -> bool:
    """Whether a map of ids that never decreases, by steps of at most one, or always increases
    (``union``, ``without_unused``) is ``0, 1, 2, ...``: it is when it ends at its last index."""
    return not old_to_new.size or (
        int(old_to_new[0]) == 0 and int(old_to_new[-1]) == old_to_new.size - 1
    )


def union(lexicon: StringArray, fresh: list[str]) -> tuple[StringArray, np.ndarray, dict]:
    """``lexicon`` (sorted unique) with the ``fresh`` strings it lacks; returns the new lexicon,
    each old id's new id (increasing) and ``string -> new id`` for every fresh string."""
    words = sorted(set(fresh))  # code point order: UTF-8 byte order
    raw = list(map(encode, words))
    found, points = locate(lexicon, raw)
    n = len(lexicon)
    if found.all():
        return lexicon, np.arange(n, dtype=np.int64), dict(zip(words, points.tolist(), strict=True))
    table = StringCounts(lexicon, np.ones(n, np.int64), np.zeros((n, 0), np.int64))
    lacking = np.flatnonzero(~found)
    missing = [raw[i] for i in lacking.tolist()]
    missing_points = points[lacking]
    merged = table._insert(
        table.counts,
        missing,
        missing_points,
        np.ones(len(missing), np.int64),
        np.zeros((len(missing), 0), np.int64),
    )
    old_to_new = np.arange(n) + np.searchsorted(missing_points, np.arange(n), side="right")
    new_ids = np.empty(len(words), dtype=np.int64)
    new_ids[lacking] = missing_points + np.arange(len(missing))
    held = np.flatnonzero(found)
    new_ids[held] = old_to_new[points[held]]
    return merged.keys, old_to_new, dict(zip(words, new_ids.tolist(), strict=True))
