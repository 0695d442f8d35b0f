"""search.store's building blocks: strings as one blob, exact count tables, coded columns."""

from __future__ import annotations

import ast
import functools
import mmap
import random
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from search.store import strings
from search.store.columns import Coded, _coded
from search.store.corpus import CorpusCounts, CorpusTally
from search.store.counts import CountsMismatch, KeyCounts, StringCounts, pair_keys, union
from search.store.strings import StringArray, fixed_width, split
from tests.conftest import mapping_of

WORDS = ["", "a", "Lào", "lào", "Cai", "cải", "cai", "ủy ban", "Ủy", "zz", "北京", "\U0001f600"]


def by_bytes(strings) -> list[str]:
    return sorted(set(strings), key=lambda s: s.encode("utf-8"))


def test_string_array_round_trip_and_take(tmp_path: Path) -> None:
    strings = StringArray.from_strings(WORDS)
    assert list(strings) == WORDS and len(strings) == len(WORDS)
    assert strings[2] == "Lào" and strings[-1] == "\U0001f600"
    assert strings.take(np.array([3, 0, 3, 7])).tolist() == ["lào", "", "lào", "ủy ban"]
    assert StringArray.concat([strings.take(np.arange(2)), strings]).tolist() == WORDS[:2] + WORDS
    strings.save(tmp_path, "w")
    loaded = StringArray.load(tmp_path, "w")
    assert loaded.tolist() == WORDS
    assert isinstance(mapping_of(loaded.blob), mmap.mmap)  # read through the page cache


@pytest.mark.parametrize(
    "items",
    [[], ["a"], ["", ""], ["ab", "", "c", ""], WORDS, ["a\0b", "c"], ["\udc80x", "y"]],
    ids=["none", "one", "blanks", "blank-last", "words", "nul", "surrogate"],
)
def test_tolist_gives_every_string_of_an_array_or_a_window(items: list[str]) -> None:
    """``tolist`` splits one decoded blob: blank strings, a NUL inside a string, a lone
    surrogate and a window of a larger blob give the strings back as they were."""
    assert StringArray.from_strings(items).tolist() == items
    window = StringArray.concat([StringArray.from_strings(["zz", *items, "yy"])])
    assert window.rows(1, len(items) + 1).tolist() == items


def test_sorted_lookups_follow_str_order() -> None:
    ordered = by_bytes(WORDS)
    assert ordered == sorted(set(WORDS))  # UTF-8 byte order is code point order
    strings = StringArray.from_strings(ordered)
    for i, word in enumerate(ordered):
        assert strings.find(word) == i
    assert strings.find("laò") == -1 and strings.find("zzz") == -1
    assert strings.bisect_left(b"b") == ordered.index("a") + 1


def test_split_at_the_first_separator() -> None:
    head, tail = split(StringArray.from_strings(["lao cai\x00Lào Cai", "x\x00y\x00z", "\x00"]), 0)
    assert head.tolist() == ["lao cai", "x", ""]
    assert tail.tolist() == ["Lào Cai", "y\x00z", ""]


def test_string_counts_add_subtract_and_drop_zeros() -> None:
    table = StringCounts.from_mapping({"b": 2, "d": 1}, lambda k: (len(k),), width=1)
    table = table.add({"a": 1, "b": -2, "c": 3}, lambda k: (ord(k),))
    assert table.keys.tolist() == ["a", "c", "d"]
    assert table.counts.tolist() == [1, 3, 1]
    assert table.attrs[:, 0].tolist() == [97, 99, 1]  # fixed when a key first appears
    with pytest.raises(CountsMismatch):
        table.add({"a": -2})
    with pytest.raises(CountsMismatch):
        table.add({"x": -1})


@pytest.mark.parametrize("size", [0, 5, 500])
def test_string_counts_match_a_counter_whatever_the_steps(size: int) -> None:
    rng = np.random.default_rng(size)
    words = [f"từ {i}" for i in range(40)] + WORDS[1:]
    table = StringCounts.empty()
    expected: Counter[str] = Counter()
    for step in range(6):
        delta = Counter(rng.choice(words, size).tolist())
        if step % 3 == 2:  # take back some of what was added
            delta = Counter({w: -min(c, expected[w]) for w, c in delta.items()})
        table = table.add(delta)
        expected.update(delta)
        expected = +expected
        assert table.keys.tolist() == by_bytes(expected)
        assert table.counts.tolist() == [expected[k] for k in by_bytes(expected)]
        assert table.equals(StringCounts.from_mapping(expected))


def test_key_counts_add_and_remap() -> None:
    table = KeyCounts.from_rows(
        pair_keys(np.array([1, 0, 1]), np.array([2, 5, 2])), np.array([[1, 1], [2, 0], [3, 0]])
    )
    assert table.keys.tolist() == [5, (1 << 32) | 2] and table.counts.tolist() == [[2, 0], [4, 1]]
    table = table.add(pair_keys(np.array([0, 2]), np.array([5, 0])), np.array([[-2, 0], [1, 1]]))
    assert table.keys.tolist() == [(1 << 32) | 2, 2 << 32]
    moved = table.remap(np.array([0, 3, 4, 5, 6, 7]))
    assert moved.keys.tolist() == [(3 << 32) | 4, 4 << 32]


def test_union_keeps_old_ids_in_order() -> None:
    lexicon = StringArray.from_strings(["b", "d"])
    merged, old_to_new, ids = union(lexicon, ["e", "a", "d", "c"])
    assert merged.tolist() == ["a", "b", "c", "d", "e"]
    assert old_to_new.tolist() == [1, 3]
    assert ids == {"e": 4, "a": 0, "d": 3, "c": 2}


def test_coded_column_is_sorted_set_order() -> None:
    values = ["2017-03-01", "", "2016-12-31", "2017-03-01", "Báo Mẫu", "Bao"]
    coded = _coded([StringArray.from_strings(values[:3]), StringArray.from_strings(values[3:])])
    labels = sorted(set(values))
    assert coded.labels.tolist() == labels
    assert coded.codes.tolist() == [labels.index(v) for v in values]


@pytest.mark.parametrize(
    "fresh",
    [
        ["2024-05-02", "2023-01-01"],  # every value known: looked up one by one
        ["2024-05-02", "2025-12-31", ""],  # a new one, and an empty one: sorted again
        [],  # nothing new
    ],
)
def test_coded_column_from_copied_codes_is_what_the_values_give(fresh: list[str]) -> None:
    """An incremental run recodes the previous generation's codes instead of sorting every
    value again: the codes and labels must be those of ``sorted(set(values))``, labels only
    deleted documents had (here "2022-07-07", no longer in any row) left out."""
    labels = StringArray.from_strings(["2022-07-07", "2023-01-01", "2024-05-02"])
    codes = np.array([2, 1, 1, 2, 0, 1], dtype=np.int32)
    rows = slice(0, 4)  # the copied segment's rows: label 0 is no longer used
    copied = Coded(codes[rows], labels)
    values = [labels[int(c)] for c in codes[rows]]
    ours = _coded([copied, StringArray.from_strings(fresh)])
    theirs = _coded([StringArray.from_strings(values), StringArray.from_strings(fresh)])
    expected = sorted(set(values + fresh))
    assert list(ours.labels) == list(theirs.labels) == expected
    assert ours.codes.tolist() == theirs.codes.tolist()
    assert [expected[c] for c in ours.codes] == values + fresh


@pytest.mark.parametrize("seed", range(6))
def test_coded_column_inserts_new_values_among_copied_labels(seed: int) -> None:
    """New values an incremental run brings (a new source, new stories) go in among the copied
    labels where they sort, without sorting every value again: the same codes and labels as a
    build from the values."""
    rng = random.Random(seed)
    pool = [*WORDS, *(f"s{rng.randrange(10**6):06d}" for _ in range(300))]
    old = sorted(set(rng.sample(pool, 120)), key=lambda w: w.encode("utf-8"))
    labels = StringArray.from_strings(old)
    codes = np.array([rng.randrange(len(old)) for _ in range(500)], dtype=np.int32)
    fresh = [rng.choice(pool) for _ in range(rng.randrange(1, 80))] + ["\uffff", ""]
    values = [old[int(c)] for c in codes]
    ours = _coded([Coded(codes, labels), StringArray.from_strings(fresh)])
    theirs = _coded([StringArray.from_strings(values), StringArray.from_strings(fresh)])
    assert ours.labels.tolist() == theirs.labels.tolist() == by_bytes(values + fresh)
    assert ours.codes.tolist() == theirs.codes.tolist()


@pytest.mark.parametrize("chunk", [strings.GATHER_CHUNK, 64])
@pytest.mark.parametrize("shape", ["runs", "alike", "mixed", "empty"])
def test_gathered_strings_are_those_sliced(
    shape: str, chunk: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``take`` copies contiguous runs as slices, strings of close lengths as rows of a window
    and others through an index per byte, a chunk of bytes at a time: each gives the strings
    themselves, the last ones of the blob and empty ones included."""
    monkeypatch.setattr(strings, "GATHER_CHUNK", chunk)
    rng = np.random.default_rng(len(shape))
    words = [rng.bytes(int(n)) for n in rng.integers(0, 4, 5000)]
    if shape == "mixed":  # a few long strings among short ones
        words = [w * 100 if i % 100 == 0 else w for i, w in enumerate(words)]
    if shape == "empty":
        words = [b""] * 100 + [b"x"] + [b""] * 100
    words[-2:] = [b"yz", b"z"]  # shorter than the longest: too near the blob's end for a row
    array = StringArray.from_bytes(words)
    picks = {
        "runs": lambda: np.delete(np.arange(len(words)), [3, 700, 4999]),
        "alike": lambda: np.append(rng.integers(0, len(words), 3000), [len(words) - 1, 0]),
        "mixed": lambda: rng.permutation(len(words))[:2000],
        "empty": lambda: np.arange(len(words))[::-1],
    }[shape]()
    got = array.take(picks)
    assert [got.raw(i) for i in range(len(got))] == [words[i] for i in picks.tolist()]


def test_string_counts_find_keys_sharing_long_prefixes(monkeypatch: pytest.MonkeyPatch) -> None:
    """``PREFIX_BYTES`` narrow a search only: keys alike in their first 16 bytes (or more), a
    NUL among them (the suggestion keys' separator), are told apart byte by byte."""
    monkeypatch.setattr(strings, "FIXED_CHUNK", 3)  # ``fixed_width`` a few strings at a time
    stem = "nghi thuong dinh"  # 16 bytes
    words = [stem, stem + "\x00", stem + "\x00Nghị", stem + "\x00Nghi", stem + " x", stem[:-1]]
    words += [stem + "\x00" * 3, "a\x00", "a", "ủy ban nhân dân tỉnh\x00Ủy ban nhân dân tỉnh"]
    rng = np.random.default_rng(7)
    table = StringCounts.empty()
    expected: Counter[str] = Counter()
    for _ in range(8):
        delta = Counter(rng.choice(words, 6).tolist())
        table = table.add(delta)
        expected.update(delta)
        assert table.keys.tolist() == by_bytes(expected)
        assert table.counts.tolist() == [expected[k] for k in by_bytes(expected)]
    assert fixed_width(table.keys, 4).tolist() == [w.encode()[:4] for w in table.keys]
    # a delta of a few keys into a large table: found by binary search (``SEARCH_SHARE``)
    many = Counter({f"{stem}\x00{i:04d}": i % 3 + 1 for i in range(1000)})
    large = table.add(many)
    expected.update(many)
    for delta in ({stem + "\x00": 2, stem + "\x00Nghi": -1, "zz": 1}, {"a\x00": 1, stem: -1}):
        large = large.add(delta)
        expected.update(delta)
        assert large.keys.tolist() == by_bytes(+expected)
        assert large.counts.tolist() == [expected[k] for k in by_bytes(+expected)]


def test_counts_folded_and_merged_are_those_counted_at_once() -> None:
    """A build folds its tally into arrays now and then, an incremental run's folded counts
    are merged into the base generation's: the same counts as all the texts counted at once."""
    rnd = random.Random(5)
    texts = [_texts(rnd) for _ in range(30)]
    at_once = CorpusCounts.of(texts)
    folded = CorpusCounts.empty()
    for start in range(0, 30, 7):
        folded = folded.add(CorpusTally.of(texts[start : start + 7]))
    assert folded.equals(at_once)
    base, run = CorpusCounts.of(texts[:12]), CorpusCounts.of(texts[12:])
    assert base.merge(run).equals(at_once) and run.merge(base).equals(at_once)
    assert base.merge(CorpusCounts.empty()).equals(base)
    assert CorpusCounts.empty().merge(base).equals(base)
    assert CorpusCounts.empty().is_empty() and not run.is_empty()


def _texts(rnd: random.Random) -> tuple[str, str, str]:
    words = ["Lào", "Cai", "mưa", "lớn", "Ủy", "ban", "nhân", "dân", "tỉnh", "giá", "vàng"]
    title = " ".join(rnd.choice(words) for _ in range(rnd.randint(0, 6)))
    body = ". ".join(" ".join(rnd.choice(words) for _ in range(5)) for _ in range(3))
    return title, rnd.choice(["", "Hà Nội mưa"]), body


SAVED_ARRAYS = {
    "int32": np.arange(-5, 1000, 7, dtype=np.int32),
    "int64 offsets": np.cumsum(np.arange(300, dtype=np.int64)),
    "float32": np.linspace(-1, 1, 257, dtype=np.float32),
    "bytes": np.frombuffer("Lào Cai, Sa Pa".encode(), dtype=np.uint8),
    "bool": np.arange(100) % 3 == 0,
    "hashes": np.array([b"0af3", b"ffff00001111", b""], dtype="S12"),
    "norms (fields x docs)": np.arange(3 * 41, dtype=np.float32).reshape(3, 41),
    "empty": np.zeros(0, dtype=np.int32),
    "empty rows": np.zeros((3, 0), dtype=np.float32),
    "one value": np.array(7, dtype=np.int64),
}


@pytest.mark.parametrize("name", list(SAVED_ARRAYS))
def test_load_array_maps_what_np_save_wrote_without_parsing_python(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every kind of array the index stores reads back as ``np.load`` reads it (values, dtype,
    shape, read-only), without ``ast``: Debian's CPython 3.11.2 fails another thread's
    ``ast.parse`` (Flask compiling its routes) when a warm-up thread parses a header at the
    same moment (gh-106905)."""
    path = tmp_path / "a.npy"
    np.save(path, SAVED_ARRAYS[name])
    expected = np.load(path, allow_pickle=False)
    parsed: list[str] = []
    with monkeypatch.context() as patched:  # only around the call: pytest parses source too
        for function in ("parse", "literal_eval"):
            original = getattr(ast, function)
            patched.setattr(ast, function, functools.partial(_noted, parsed, function, original))
        got = strings.load_array(path)
    assert parsed == []
    assert type(got) is np.ndarray
    assert got.dtype == expected.dtype and got.shape == expected.shape
    assert got.tolist() == expected.tolist()
    assert not got.flags.writeable


def _noted(parsed: list[str], name: str, original, *args, **kwargs):
    parsed.append(name)
    return original(*args, **kwargs)


@pytest.mark.parametrize(
    "array",
    [np.asfortranarray(np.arange(12, dtype=np.int32).reshape(3, 4)), np.zeros(3, dtype="i4,f4")],
    ids=["fortran order", "structured"],
)
def test_load_array_leaves_other_headers_to_numpy(array: np.ndarray, tmp_path: Path) -> None:
    path = tmp_path / "a.npy"
    np.save(path, array)
    got = strings.load_array(path)
    assert got.dtype == array.dtype and got.shape == array.shape
    assert got.tolist() == array.tolist()


def test_load_array_refuses_a_file_shorter_than_its_header_says(tmp_path: Path) -> None:
    """A file cut short (a disk that filled up, a copy interrupted) is an error callers catch
    (``ValueError``, as ``np.load`` raises), not an array that faults past the file's end."""
    path = tmp_path / "a.npy"
    np.save(path, np.arange(1000, dtype=np.int64))
    with open(path, "r+b") as fh:
        fh.truncate(path.stat().st_size - 8)
    with pytest.raises(ValueError, match="shorter than its header says"):
        strings.load_array(path)


def _npy_bytes(header: str) -> bytes:
    body = header.ljust(117).encode("latin-1") + b"\n"
    return b"\x93NUMPY\x01\x00" + len(body).to_bytes(2, "little") + body + bytes(64)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x93NUMP",
        b"\x93NUMPY\x01\x00\xff\xff{'descr': '<i4'",
        b"\x93NUMPY\x02\x00\xff\xff\xff\xff{'descr': '<i4'",
        _npy_bytes("{'descr': '<i4', 'fortran_order': False, 'shape': (3,), "),
        _npy_bytes("{'descr': '<i4', 'fortran_order': False, 'shape': (99999999999999999999,), }"),
        _npy_bytes("{'descr': '<f8', 'fortran_order': False, 'shape': (4294967296, 4294967296), }"),
        _npy_bytes("{'descr': '|V0', 'fortran_order': False, 'shape': (10,), }"),
        _npy_bytes("{'descr': '|O', 'fortran_order': False, 'shape': (1,), }"),
    ],
    ids=[
        "empty",
        "cut prelude",
        "header past the end",
        "format 2, 4 GB header",
        "header text cut",
        "huge shape",
        "huge 2-d shape",
        "zero-size type",
        "objects",
    ],
)
def test_load_array_refuses_a_damaged_file_with_a_value_error(data: bytes, tmp_path: Path) -> None:
    """Whatever bytes a file of the index holds (a disk fault, a hostile copy), reading it
    raises ``ValueError``, which the readers catch and log, never another error that would
    take a worker down (numpy's own reader raised its tokenizer's ``TokenError``,
    ``EOFError`` or ``OverflowError`` for some of these)."""
    path = tmp_path / "a.npy"
    path.write_bytes(data)
    with pytest.raises(ValueError):
        strings.load_array(path)
