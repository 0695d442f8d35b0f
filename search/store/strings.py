"""Many strings as one UTF-8 blob and an offsets array, readable straight from a memory map.

A Python list of a million strings costs every worker ~60 MB of its own memory, and a dict to look
them up twice that.  A ``StringArray`` keeps the bytes of all its strings in one ``uint8`` array
and where each starts in an ``int64`` array (``offsets[i]:offsets[i + 1]`` is string ``i``): saved
as two ``.npy`` files and mapped read-only, its pages live in the OS page cache, which every worker
shares.  A string is decoded only when it is asked for.

Sorted arrays (by their UTF-8 bytes, which is the order of ``str`` comparison) answer lookups with
a binary search (``find``, ``bisect_left``) instead of a dict.
"""

from __future__ import annotations

import contextlib
import math
import mmap
import os
import re
import tokenize
from collections.abc import Iterable, Iterator, Sequence
from contextvars import ContextVar
from pathlib import Path

import numpy as np

# Bytes gathered at once by ``take``: the index arrays it builds cost 8 bytes per byte moved.
GATHER_CHUNK = 1 << 24
# ``_gather`` copies slices when the strings lie in at most this many contiguous runs (plus one per
# 64 strings), and rows of a sliding window when the longest string times their number is at
# most this many times their bytes.
FEW_RUNS = 64
WINDOW_SLACK = 4
PREFIX = 8  # bytes of each string in ``prefixes``
PREFIX_FROM = 64  # a search over more strings than this starts from the prefixes
FIXED_CHUNK = 1 << 18  # strings per step of ``fixed_width`` and ``digests``
# ``digests``: a polynomial over the bytes with the FNV-64 prime (odd: every byte moves all 64
# bits), plus the length times another odd constant, all modulo 2**64.
DIGEST_BASE = 0x100000001B3
DIGEST_LENGTH = 0x9E3779B97F4A7C15
DIGEST_MASK = (1 << 64) - 1


def encode(text: str) -> bytes:
    """UTF-8, keeping a lone surrogate (from a hostile query) instead of failing on it."""
    return text.encode("utf-8", "surrogatepass")


class StringArray(Sequence[str]):
    """Strings as one UTF-8 ``blob`` and ``offsets`` into it (``len(offsets) == len(self) + 1``).

    Read-only once built: arrays loaded from files are memory-mapped, and views of them are shared.
    """

    __slots__ = ("blob", "offsets", "_raw", "_prefixes")

    def __init__(
        self, blob: np.ndarray, offsets: np.ndarray, prefixes: np.ndarray | None = None
    ) -> None:
        self.blob = blob
        self.offsets = offsets
        # ``bytes`` slicing of the blob: a binary search compares raw bytes, never decodes.
        self._raw = memoryview(blob) if blob.size else memoryview(b"")
        self._prefixes = prefixes

    @classmethod
    def from_strings(cls, strings: Iterable[str]) -> StringArray:
        items = strings if isinstance(strings, list) else list(strings)
        text = "".join(items)
        if text.isascii():  # ids, hashes, dates: one encoding, character lengths are byte lengths
            offsets = np.zeros(len(items) + 1, dtype=np.int64)
            if items:
                np.cumsum(np.fromiter(map(len, items), np.int64, len(items)), out=offsets[1:])
            return cls(np.frombuffer(text.encode("ascii"), dtype=np.uint8).copy(), offsets)
        return cls.from_bytes([encode(s) for s in items])

    @classmethod
    def from_bytes(cls, items: Sequence[bytes]) -> StringArray:
        offsets = np.zeros(len(items) + 1, dtype=np.int64)
        if items:
            np.cumsum(np.fromiter(map(len, items), np.int64, len(items)), out=offsets[1:])
        blob = np.frombuffer(b"".join(items), dtype=np.uint8).copy()
        return cls(blob, offsets)

    @classmethod
    def empty(cls) -> StringArray:
        return cls(np.zeros(0, np.uint8), np.zeros(1, np.int64))

    def __len__(self) -> int:
        return self.offsets.size - 1

    def raw(self, i: int) -> bytes:
        """String ``i`` as UTF-8 bytes."""
        return self._raw[int(self.offsets[i]) : int(self.offsets[i + 1])].tobytes()

    def __getitem__(self, i):  # type: ignore[override]
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(i)
        return self.raw(i).decode("utf-8", "surrogatepass")

    def __iter__(self) -> Iterator[str]:
        text = self._raw.tobytes().decode("utf-8", "surrogatepass") if self.blob.size else ""
        if text.isascii():  # one decode for all: ASCII offsets are character offsets
            bounds = self.offsets.tolist()
            return (text[a:b] for a, b in zip(bounds, bounds[1:], strict=False))
        return (self[i] for i in range(len(self)))

    def tolist(self) -> list[str]:
        """Every string: the blob decoded once with a NUL put after each string and split there
        (a million ids: 0.17 -> 0.09 s), unless a string holds a NUL itself."""
        if len(self) < 2:
            return list(self)
        first, last = int(self.offsets[0]), int(self.offsets[-1])
        blob = self.blob[first:last]
        if np.count_nonzero(blob) < blob.size:
            return list(self)
        joined = np.insert(blob, self.offsets[1:-1] - first, 0)
        return joined.tobytes().decode("utf-8", "surrogatepass").split("\0")

    def layout_problem(self) -> str | None:
        """What keeps a loaded array's offsets from cutting its blob into strings (``None``:
        nothing): a reader checks this before indexing a file it did not write itself."""
        offsets = self.offsets
        if offsets.ndim != 1 or offsets.size < 1 or offsets[0] != 0:
            return "offsets"
        if offsets[-1] != self.blob.size:
            return "offsets"
        if offsets.size > 1 and np.any(offsets[1:] < offsets[:-1]):
            return "offsets out of order"
        return None

    def lengths(self) -> np.ndarray:
        """Each string's length in bytes."""
        return np.diff(self.offsets)

    def rows(self, start: int, stop: int) -> StringArray:
        """Strings ``start`` to ``stop``, as a view (``take`` gathers a copy, a second a
        million strings)."""
        first, last = int(self.offsets[start]), int(self.offsets[stop])
        return StringArray(self.blob[first:last], self.offsets[start : stop + 1] - first)

    def take(self, indices: np.ndarray) -> StringArray:
        """The strings at ``indices``, in that order (gathered with numpy, a chunk at a time)."""
        indices = np.asarray(indices, dtype=np.int64)
        starts = self.offsets[indices]
        lengths = self.offsets[indices + 1] - starts
        offsets = np.zeros(indices.size + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        return StringArray(_gather(self.blob, starts, lengths, offsets), offsets)

    @staticmethod
    def concat(parts: Sequence[StringArray]) -> StringArray:
        """One array holding the strings of ``parts`` one after the other."""
        if not parts:
            return StringArray.empty()
        blob = np.concatenate([p.blob for p in parts]) if parts else np.zeros(0, np.uint8)
        offsets = [np.zeros(1, np.int64)]
        shift = 0
        for part in parts:
            offsets.append(part.offsets[1:] - part.offsets[0] + shift)
            shift += int(part.offsets[-1] - part.offsets[0])
        if any(int(p.offsets[0]) for p in parts):  # a part that is a window of a larger blob
            blob = np.concatenate([p.blob[int(p.offsets[0]) : int(p.offsets[-1])] for p in parts])
        return StringArray(blob, np.concatenate(offsets))

    # -- sorted arrays ------------------------------------------------------------------------

    def prefixes(self) -> np.ndarray:
        """Each string's first ``PREFIX`` bytes as a numpy ``S`` array, sorted when the strings
        are: one vectorised search narrows a lookup to the few strings sharing its prefix.
        Computed when first asked for (``save(sorted_=True)`` does), then used by lookups."""
        if self._prefixes is None:
            self._prefixes = fixed_width(self, PREFIX)
        return self._prefixes

    def bisect_left(self, key: bytes, lo: int = 0, hi: int | None = None) -> int:
        """Where ``key`` (UTF-8) would go in this sorted array, before any equal string."""
        hi = len(self) if hi is None else hi
        if hi - lo > PREFIX_FROM and self._prefixes is not None:
            prefixes = self._prefixes
            head = np.array(key[:PREFIX], dtype=f"S{PREFIX}")
            lo = max(lo, int(prefixes.searchsorted(head, "left")))
            hi = min(hi, int(prefixes.searchsorted(head, "right")))
            hi = max(hi, lo)
        raw, offsets = self._raw, self.offsets
        while lo < hi:
            mid = (lo + hi) // 2
            if raw[int(offsets[mid]) : int(offsets[mid + 1])].tobytes() < key:
                lo = mid + 1
            else:
                hi = mid
        return lo

    def find(self, key: str) -> int:
        """Position of ``key`` in this sorted array, or -1."""
        raw = encode(key)
        i = self.bisect_left(raw)
        return i if i < len(self) and self.raw(i) == raw else -1

    def is_sorted_unique(self) -> bool:
        items = [self.raw(i) for i in range(len(self))]
        return all(a < b for a, b in zip(items, items[1:], strict=False))

    # -- files --------------------------------------------------------------------------------

    def save(self, directory: Path, name: str, *, sorted_: bool = False) -> None:
        """Save as ``name.blob.npy`` and ``name.offsets.npy``; a ``sorted_`` array also gets
        its ``prefixes`` (``name.prefix.npy``), so readers share them too."""
        same = save_array(directory / f"{name}.blob.npy", self.blob)
        same &= save_array(directory / f"{name}.offsets.npy", self.offsets)
        if sorted_ and not (same and link_previous(directory / f"{name}.prefix.npy")):
            save_array(directory / f"{name}.prefix.npy", self.prefixes())

    @classmethod
    def load(cls, directory: Path, name: str) -> StringArray:
        prefix = directory / f"{name}.prefix.npy"
        return cls(
            load_array(directory / f"{name}.blob.npy"),
            load_array(directory / f"{name}.offsets.npy"),
            load_array(prefix) if prefix.exists() else None,
        )


# The directory of the generation before the one being saved (``linking_from``).
_PREVIOUS: ContextVar[Path | None] = ContextVar("vnsearch_previous_files", default=None)


@contextlib.contextmanager
def linking_from(previous: Path | None) -> Iterator[None]:
    """While saving a generation's files: ``save_array`` links a file of ``previous`` (the
    generation before) where it holds the same array."""
    token = _PREVIOUS.set(previous)
    try:
        yield
    finally:
        _PREVIOUS.reset(token)


def link_previous(path: Path) -> bool:
    """Make ``path`` a hard link to the file of that name in the previous generation, if there
    is one; whether it did."""
    previous = _PREVIOUS.get()
    if previous is None:
        return False
    try:
        os.link(previous / path.name, path)
    except OSError:
        return False
    return True


def save_array(path: Path, array: np.ndarray) -> bool:
    """``np.save``, unless the previous generation's file of that name holds the same array:
    then a hard link to it, and ``True``.  An incremental run at a million articles leaves a
    third of the files' bytes as they were (the suggestion table, the lexicons): not writing
    and syncing them again saves a fraction of a second, and workers find their pages in the
    page cache, the old generation's."""
    previous = _PREVIOUS.get()
    if previous is not None:
        with contextlib.suppress(OSError, ValueError):
            old = load_array(previous / path.name)  # in the indexer's counts thread too
            same = old.dtype == array.dtype and old.shape == array.shape
            nan = old.dtype.kind in "fc"  # NaN equals NaN here (an empty field's average)
            same = same and bool(np.array_equal(old, array, equal_nan=nan))
            del old
            if same and link_previous(path):
                return True
    np.save(path, array)  # changed, or no link possible here (then written as always)
    return False


# Bytes of the ``.npy`` header (format 1.0) that ``npy_header`` writes: what ``np.save`` writes
# for a one-dimensional array of any length up to 10**50.
NPY_HEADER = 128


def npy_header(descr: str, count: int) -> bytes:
    """The header ``np.save`` writes for ``count`` values of ``descr`` (``<i4``...): a file can
    be written a part at a time (``base_terms``) and recognised by comparing bytes, not parsed
    (``shared_postings``)."""
    text = f"{{'descr': '{descr}', 'fortran_order': False, 'shape': ({count},), }}"
    magic = b"\x93NUMPY\x01\x00" + (NPY_HEADER - 10).to_bytes(2, "little")
    return magic + text.ljust(NPY_HEADER - 11).encode() + b"\n"


def load_array(path: Path) -> np.ndarray:
    """A saved array, memory-mapped read-only (a plain ``ndarray`` view of the map: slices and
    fancy indexing give plain arrays, as they did when the data was computed in memory).

    The header is read without ``ast``: ``np.load`` parses it with ``ast.literal_eval``, and
    CPython 3.11 before 3.11.5 (Debian's 3.11.2) corrupts its AST recursion count when two
    threads build ASTs at once (gh-106905).  An engine's warm-up thread maps a generation's
    files while the caller's thread may be parsing (Flask compiling its routes, numba its
    loops): a clean-clone CI run failed ``tests/test_web.py::test_healthz_ok`` with "SystemError:
    AST constructor recursion depth mismatch" in Werkzeug's route compiler.  The headers
    ``np.save`` writes for the arrays stored here (C order, a plain ``descr``) are read by
    ``_npy_layout``; any other goes through ``np.load``.
    """
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        head = fh.read(NPY_HEADER)  # the whole header, as ``np.save`` mostly writes it
        span = _header_span(head)
        if span is None or span[1] > size:  # numpy would fail with errors of its tokenizer
            raise ValueError(f"{path}: not a .npy array, or its header is cut short")
        if span[1] > len(head):  # a longer header: as long as it says
            head += fh.read(min(span[1], NPY_HEADER_MAX) - len(head))
        layout = _npy_layout(head)
        if layout is None:
            try:
                return np.asarray(np.load(path, mmap_mode="r", allow_pickle=False))
            except (tokenize.TokenError, EOFError, OverflowError) as error:  # a damaged header
                raise ValueError(f"{path}: not a .npy array ({error})") from error
        dtype, shape, offset = layout
        count = math.prod(shape)
        if offset + count * dtype.itemsize > size:
            raise ValueError(f"{path}: shorter than its header says ({shape} of {dtype})")
        if not count:
            empty = np.zeros(shape, dtype=dtype)
            empty.flags.writeable = False
            return empty
        view = mmap.mmap(fh.fileno(), size, prot=mmap.PROT_READ)
    return np.frombuffer(view, dtype, count, offset).reshape(shape)


# The most header bytes ``load_array`` reads (format 1.0 allows 65,535).
NPY_HEADER_MAX = 1 << 16
_NPY_DICT = re.compile(
    r"\{'descr': '([<>|=]?[a-zA-Z][0-9]*)', 'fortran_order': False, "
    r"'shape': \(((?:[0-9]+, )*[0-9]+,?|)\), \} *\n"
)


def _npy_layout(head: bytes) -> tuple[np.dtype, tuple[int, ...], int] | None:
    """The dtype, shape and data offset of a ``.npy`` file from its first bytes, where its
    header is one ``np.save`` writes for a C-order array of a plain type (``None`` otherwise).

    >>> import io
    >>> out = io.BytesIO(); np.save(out, np.zeros((2, 3), np.float32))
    >>> _npy_layout(out.getvalue())
    (dtype('float32'), (2, 3), 128)
    """
    span = _header_span(head)
    if span is None:
        return None
    start, end = span
    found = _NPY_DICT.fullmatch(head[start:end].decode("latin-1"))
    if found is None:
        return None
    try:
        dtype = np.dtype(found.group(1))
    except TypeError:
        return None
    if dtype.hasobject:
        return None
    shape = tuple(int(part) for part in found.group(2).split(",") if part.strip())
    return dtype, shape, end


def _header_span(head: bytes) -> tuple[int, int] | None:
    """Where the header text of a ``.npy`` file of format 1 or 2 starts and ends, from its
    first 12 bytes (``None``: not such a file)."""
    if head[:6] != b"\x93NUMPY" or len(head) < 12 or head[6] not in (1, 2):
        return None
    start = 10 if head[6] == 1 else 12
    return start, start + int.from_bytes(head[8:start], "little")


def _gather(blob: np.ndarray, starts: np.ndarray, lengths: np.ndarray, offsets: np.ndarray):
    """``concatenate(blob[s:s + n] for s, n in zip(starts, lengths))`` without a Python loop per
    string.

    The strings are copied the cheapest of three ways, since gathering the columns of a million
    documents is much of an incremental run's time: as slices when they lie in few contiguous
    runs (the live documents' ids or hashes: one run per deleted document); as rows of a
    sliding-window view when their lengths are close (hashes, ids, words: a memory copy of at most
    ``WINDOW_SLACK`` times the bytes, where an index per byte costs eight); else through an index
    per byte, built with one cumulative sum, ``GATHER_CHUNK`` bytes at a time.
    """
    out = np.empty(int(offsets[-1]), dtype=np.uint8)
    if not out.size:
        return out
    starts = starts.astype(np.int64, copy=False)
    lengths = lengths.astype(np.int64, copy=False)
    breaks = np.flatnonzero(starts[1:] != starts[:-1] + lengths[:-1]) + 1
    if breaks.size <= FEW_RUNS + starts.size // 64:
        _copy_runs(out, blob, starts, offsets, breaks)
    elif int(lengths.max()) * starts.size <= WINDOW_SLACK * out.size:
        _copy_rows(out, blob, starts, lengths, offsets)
    else:
        _copy_bytes(out, blob, starts, lengths, offsets)
    return out


def _copy_runs(out, blob, starts, offsets, breaks) -> None:
    """Each run of contiguous strings (a new one at each of ``breaks``) as one slice."""
    bounds = [0, *breaks.tolist(), starts.size]
    for first, last in zip(bounds, bounds[1:], strict=False):
        at, end = int(offsets[first]), int(offsets[last])
        source = int(starts[first])
        out[at:end] = blob[source : source + end - at]


def _copy_rows(out, blob, starts, lengths, offsets) -> None:
    """Rows of the longest string's width from each start (those too near the blob's end for a
    whole row from a padded copy of that end), their first ``length`` bytes kept."""
    width = int(lengths.max())
    tail = max(blob.size - width, 0)
    padded = np.zeros(2 * width, dtype=np.uint8)
    padded[: blob.size - tail] = blob[tail:]
    windows = np.lib.stride_tricks.sliding_window_view(blob, width) if tail else None
    ends = np.lib.stride_tricks.sliding_window_view(padded, width)
    step = max(1, GATHER_CHUNK // width)
    for first in range(0, starts.size, step):
        run = slice(first, min(first + step, starts.size))
        begin = starts[run]
        near_end = begin >= tail
        if windows is None:
            rows = ends[begin - tail]
        else:
            rows = windows[np.minimum(begin, tail)]
            if near_end.any():
                rows[near_end] = ends[begin[near_end] - tail]
        keep = np.arange(width) < lengths[run, None]
        out[int(offsets[run.start]) : int(offsets[run.stop])] = rows[keep]


def _copy_bytes(out, blob, starts, lengths, offsets) -> None:
    """Through an index per byte, ``GATHER_CHUNK`` bytes of strings at a time."""
    first = 0
    while first < starts.size:
        # the next run of strings with at most GATHER_CHUNK bytes (at least one string)
        last = int(np.searchsorted(offsets, offsets[first] + GATHER_CHUNK, side="right")) - 1
        last = max(last, first + 1)
        base = int(offsets[first])
        size = int(offsets[last]) - base
        if size:
            kept = np.flatnonzero(lengths[first:last]) + first  # empty strings take no bytes
            at, begin, length = offsets[kept] - base, starts[kept], lengths[kept]
            # Each byte's index is the previous one's plus one, except where a string begins.
            step = np.ones(size, dtype=np.int64)
            step[at[0]] = begin[0]
            step[at[1:]] = begin[1:] - (begin[:-1] + length[:-1] - 1)
            out[base : base + size] = blob[np.cumsum(step, out=step)]
        first = last


def join(parts: Sequence[StringArray], separator: bytes) -> StringArray:
    """Element-wise ``separator.join``: string ``i`` is ``parts[0][i] + separator + ...``."""
    count = len(parts[0])
    lengths = sum(p.lengths() for p in parts) + len(separator) * (len(parts) - 1)
    offsets = np.zeros(count + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    out = np.empty(int(offsets[-1]), dtype=np.uint8)
    sep = np.frombuffer(separator, dtype=np.uint8)
    position = offsets[:-1].copy()
    for k, part in enumerate(parts):
        if k:
            for j, byte in enumerate(sep):
                out[position + j] = byte
            position += sep.size
        piece_lengths = part.lengths()
        inner = np.zeros(count + 1, dtype=np.int64)
        np.cumsum(piece_lengths, out=inner[1:])
        data = _gather(part.blob, part.offsets[:-1], piece_lengths, inner)
        targets = np.repeat(position - inner[:-1], piece_lengths) + np.arange(data.size)
        out[targets] = data
        position += piece_lengths
    return StringArray(out, offsets)


def separators(strings: StringArray, separator: int) -> np.ndarray:
    """Where (in the blob) each string's first ``separator`` byte is; every string must hold
    one."""
    ends = strings.offsets[1:]
    at = np.flatnonzero(strings.blob == separator)
    first = at[np.searchsorted(at, strings.offsets[:-1])] if at.size else np.zeros(0, np.int64)
    if first.size != len(strings) or np.any(first >= ends):
        raise ValueError("a string without its separator")
    return first


def split(strings: StringArray, separator: int) -> tuple[StringArray, StringArray]:
    """Each string cut at its first ``separator`` byte (which every string must hold): the parts
    before and after it."""
    first = separators(strings, separator)
    starts, ends = strings.offsets[:-1], strings.offsets[1:]
    return window(strings, starts, first - starts), window(strings, first + 1, ends - first - 1)


def window(strings: StringArray, starts: np.ndarray, lengths: np.ndarray) -> StringArray:
    """The byte ranges ``[start, start + length)`` of ``strings``' blob, as strings."""
    offsets = np.zeros(starts.size + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return StringArray(_gather(strings.blob, starts, lengths, offsets), offsets)


def fixed_width(strings: StringArray, width: int | None = None) -> np.ndarray:
    """The strings (their first ``width`` bytes) as a numpy ``S`` array, which compares as the
    bytes do provided they hold no NUL (``S`` pads with NULs and ignores trailing ones).  Built
    ``FIXED_CHUNK`` strings at a time: the index arrays of one step take eight times the bytes
    they copy (a table of millions of keys would need gigabytes for a moment)."""
    lengths = strings.lengths()
    if width is None:
        width = max(1, int(lengths.max())) if lengths.size else 1
    out = np.zeros((len(strings), width), dtype=np.uint8)
    for first in range(0, len(strings), FIXED_CHUNK):
        last = min(first + FIXED_CHUNK, len(strings))
        kept = np.minimum(lengths[first:last], width)
        rows = np.repeat(np.arange(first, last), kept)
        inner = np.zeros(last - first + 1, dtype=np.int64)
        np.cumsum(kept, out=inner[1:])
        columns = np.arange(int(inner[-1])) - np.repeat(inner[:-1], kept)
        starts = np.repeat(strings.offsets[first:last], kept)
        out[rows, columns] = strings.blob[starts + columns]
    return out.view(f"S{width}").ravel()


def digest(text: str) -> int:
    """``digests`` of one string (the same number)."""
    data = encode(text)
    value, power = 0, 1
    for byte in data:
        value = (value + byte * power) & DIGEST_MASK
        power = (power * DIGEST_BASE) & DIGEST_MASK
    return (value + len(data) * DIGEST_LENGTH) & DIGEST_MASK


def digests(strings: StringArray) -> np.ndarray:
    """A 64-bit number for each string (byte ``j`` times ``DIGEST_BASE ** j``, plus the length
    times ``DIGEST_LENGTH``, modulo 2**64), computed with numpy (a million ids in a few
    hundredths of a second), to find strings among others by sorting numbers instead of
    hashing a million Python strings into a dict.  Not a proof of equality: a match is checked
    on the bytes (``same_strings``)."""
    lengths = strings.lengths()
    out = lengths.astype(np.uint64) * np.uint64(DIGEST_LENGTH)
    if not lengths.size:
        return out
    longest = int(lengths.max())
    powers = np.full(max(longest, 1), DIGEST_BASE, dtype=np.uint64)
    powers[0] = 1
    powers = np.cumprod(powers, dtype=np.uint64)  # wraps modulo 2**64, as the digest does
    total = int(strings.offsets[-1] - strings.offsets[0])
    if longest * lengths.size <= WINDOW_SLACK * max(total, 1):
        _digest_rows(strings, lengths, longest, powers, out)
    else:
        _digest_bytes(strings, lengths, powers, out)
    return out


def _digest_rows(strings, lengths, longest, powers, out) -> None:
    """Strings of similar lengths (ids): a column of bytes at a time."""
    blob = np.concatenate([strings.blob, np.zeros(longest, np.uint8)])
    starts = strings.offsets[:-1]
    with np.errstate(over="ignore"):
        for column in range(longest):
            byte = np.where(lengths > column, blob[starts + column], 0).astype(np.uint64)
            out += byte * powers[column]


def _digest_bytes(strings, lengths, powers, out) -> None:
    """Any strings: each byte weighed by its position, summed per string, ``GATHER_CHUNK``
    bytes at a time (at least one string): its arrays take 8 bytes per byte, so a step of a
    number of strings could take gigabytes when they are long (ids of 1,000 characters)."""
    ends = strings.offsets[1:]
    first = 0
    while first < lengths.size:
        limit = int(strings.offsets[first]) + GATHER_CHUNK
        last = max(first + 1, int(np.searchsorted(ends, limit, side="right")))
        start, stop = int(strings.offsets[first]), int(strings.offsets[last])
        bounds = strings.offsets[first : last + 1] - start
        position = np.arange(stop - start) - np.repeat(bounds[:-1], lengths[first:last])
        terms = strings.blob[start:stop].astype(np.uint64) * powers[position]
        sums = np.zeros(stop - start + 1, dtype=np.uint64)
        np.cumsum(terms, out=sums[1:])
        out[first:last] += sums[bounds[1:]] - sums[bounds[:-1]]
        first = last


def same_strings(first: StringArray, second: StringArray) -> np.ndarray:
    """Whether string ``i`` of ``first`` is string ``i`` of ``second``, for each ``i``."""
    lengths = first.lengths()
    same = lengths == second.lengths()
    both = np.flatnonzero(same & (lengths > 0))
    if both.size:
        ours, theirs = first.take(both), second.take(both)
        differ = np.zeros(ours.blob.size + 1, dtype=np.int64)
        np.cumsum(ours.blob != theirs.blob, out=differ[1:])
        same[both] = differ[ours.offsets[1:]] == differ[ours.offsets[:-1]]
    return same
