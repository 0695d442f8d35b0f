"""The index's live documents as an incremental run looks them up (``search.existing``)."""

from __future__ import annotations

import numpy as np
import pytest

from search.existing import SORTED_SEARCH, Existing, HeldHashes
from search.store.strings import StringArray, digest, digests

ENTRIES = {
    "a1": (0, "deadbeef00000001", "/src/one"),
    "a2": (2, "deadbeef00000002", "/src/one"),
    "b1": (5, "cafe", "/src/two"),
    "b2": (7, "deadbeef", "/src/two"),
}


@pytest.fixture(params=["dict", "arrays"])
def existing(request) -> Existing:
    if request.param == "dict":
        return Existing.of(ENTRIES)
    labels = ["/src/one", "/src/two"]
    return Existing(
        StringArray.from_strings(list(ENTRIES)),
        np.array([v[0] for v in ENTRIES.values()]),
        StringArray.from_strings([v[1] for v in ENTRIES.values()]),
        np.array([labels.index(v[2]) for v in ENTRIES.values()], dtype=np.int16),
        labels,
    )


def strings(*values: str) -> StringArray:
    return StringArray.from_strings(list(values))


def test_entries_by_id(existing: Existing) -> None:
    assert len(existing) == 4
    assert existing["b1"] == (5, "cafe", "/src/two")
    assert existing.get("a2") == (2, "deadbeef00000002", "/src/one")
    assert existing.get("zz") is None and existing.get("") is None
    assert "a1" in existing and "zz" not in existing and 3 not in existing
    assert [existing.row(i) for i in ["a1", "a2", "b1", "b2", "a"]] == [0, 1, 2, 3, None]
    assert (existing.id_at(2), existing.docnum_at(2)) == ("b1", 5)
    with pytest.raises(KeyError):
        existing["zz"]


def test_rows_of_many_ids(existing: Existing) -> None:
    assert existing.rows(strings("b2", "zz", "a1", "", "a10")).tolist() == [3, -1, 0, -1, -1]
    assert existing.rows(strings()).tolist() == []


def test_rows_of_thousands_of_ids_in_any_order() -> None:
    """Past ``SORTED_SEARCH`` ids the digests are searched in ascending order; each answer is
    still the row of the id at its own position: held, absent, or a source's ids reversed."""
    held = [f"doc-{i}" for i in range(5000)]
    existing = Existing.of({doc_id: (2 * i, f"h{i}", "/src/one") for i, doc_id in enumerate(held)})
    rng = np.random.default_rng(7)
    asked = [held[i] for i in rng.permutation(len(held))[:3000]] + [f"gone-{i}" for i in range(500)]
    asked = [asked[i] for i in rng.permutation(len(asked))]
    assert len(asked) >= SORTED_SEARCH
    expected = [int(a.removeprefix("doc-")) if a.startswith("doc-") else -1 for a in asked]
    assert existing.rows(strings(*asked)).tolist() == expected
    reversed_rows = existing.rows_from(strings(*reversed(held)), "/src/one")
    assert reversed_rows is not None and reversed_rows.tolist() == list(range(4999, -1, -1))
    assert existing.rows_from(strings(*held, "gone-1"), "/src/one") is None


def test_rows_from_needs_every_id_from_that_source(existing: Existing) -> None:
    assert existing.rows_from(strings("a2", "a1"), "/src/one").tolist() == [1, 0]
    assert existing.rows_from(strings(), "/src/one").tolist() == []
    assert existing.rows_from(strings("a1", "b1"), "/src/one") is None  # b1: another source
    assert existing.rows_from(strings("a1", "a3"), "/src/one") is None  # a3: not held at all
    assert existing.rows_from(strings("a1"), "/src/three") is None  # a source it holds nothing of
    assert existing.code("/src/two") == 1 and existing.code("/src/three") is None


def test_ids_whose_digests_collide_are_told_apart(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every id given the same digest: lookups are still exact (checked on the bytes)."""
    import search.existing as module

    monkeypatch.setattr(module, "digest", lambda _text: 7)
    monkeypatch.setattr(module, "digests", lambda s: np.full(len(s), 7, dtype=np.uint64))
    existing = Existing.of(ENTRIES)
    assert [existing.row(i) for i in ["b2", "a1", "zz"]] == [3, 0, None]
    assert existing.rows(strings("b2", "zz", "a2", "b1")).tolist() == [3, -1, 1, 2]


def test_held_hashes_are_exact_beyond_their_prefix(existing: Existing) -> None:
    held = existing.hashes()
    assert len(held) == 4
    assert sorted(held) == sorted(v[1] for v in ENTRIES.values())
    # Four hashes share (or are) the prefix "deadbeef": only the exact ones are held.
    for value in ["deadbeef00000001", "deadbeef00000002", "deadbeef", "cafe"]:
        assert value in held
    for value in ["deadbeef00000003", "deadbeef0", "deadbee", "caf", "cafe0", ""]:
        assert value not in held
    assert 5 not in held


def test_held_hashes_of_many() -> None:
    rng = np.random.default_rng(7)
    values = [f"{rng.integers(1 << 62):032x}" for _ in range(5000)]
    held = HeldHashes(StringArray.from_strings(values[:4000]))
    assert all(v in held for v in values[:4000])
    assert not any(v in held for v in values[4000:])


@pytest.mark.parametrize("longest", [12, 5000])  # ids of close lengths; one far longer
def test_digests_of_an_array_are_each_strings_digest(longest: int) -> None:
    rng = np.random.default_rng(3)
    values = ["", "a", "a\0", "Lào Cai", "x" * longest, "\ud800 lone"]
    values += [f"id-{rng.integers(1 << 40)}" for _ in range(2000)]
    array = StringArray.from_strings(values)
    assert [int(d) for d in digests(array)] == [digest(v) for v in values]
    assert len(set(digests(array).tolist())) == len(set(values))
    # A window of a larger array (a file's ids in a record) gives the same numbers.
    assert digests(array.rows(3, 9)).tolist() == digests(array).tolist()[3:9]


@pytest.mark.parametrize("step", [7, 1])  # 1: past ``SORTED_SEARCH``, searched sorted
def test_many_ids_sharing_one_digest_are_found_without_a_scan_each(
    monkeypatch: pytest.MonkeyPatch, step: int
) -> None:
    """A source of ids made to share one digest (the multiplier is public): every lookup is
    exact, and the ids go into a dict at the first long run of them instead of being scanned
    once per lookup (3,000 ids: 9 million comparisons)."""
    import search.existing as module

    monkeypatch.setattr(module, "digest", lambda _text: 7)
    monkeypatch.setattr(module, "digests", lambda s: np.full(len(s), 7, dtype=np.uint64))
    ids = [f"x{i}" for i in range(3000)]
    existing = Existing.of({i: (n, "h", "/src") for n, i in enumerate(ids)})
    wanted = ids[::-step] + ["nope"]
    assert existing.rows(StringArray.from_strings(wanted)).tolist() == [
        int(i[1:]) for i in wanted[:-1]
    ] + [-1]
    assert existing._rows is not None  # the dict, taken at the first lookup of the run
    assert existing.row("x2999") == 2999 and existing.row("x3000") is None


def test_digests_of_long_strings_a_chunk_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """Long strings are digested a bounded number of bytes at a time, with the same numbers."""
    from search.store import strings as module

    monkeypatch.setattr(module, "GATHER_CHUNK", 64)
    values = ["", "y" * 300, "a", "Lào Cai " * 20, "b" * 63, "c" * 64, "d" * 65, "z" * 2000] * 3
    assert [int(d) for d in digests(StringArray.from_strings(values))] == [
        digest(v) for v in values
    ]
