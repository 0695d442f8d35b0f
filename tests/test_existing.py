"""The index's live documents as an incremental run looks them up (``search.existing``)."""

from __future__ import annotations

import numpy as np
import pytest

from search.existing import Existing, HeldHashes
from search.store.strings import StringArray

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
        list(ENTRIES),
        np.array([v[0] for v in ENTRIES.values()]),
        StringArray.from_strings([v[1] for v in ENTRIES.values()]),
        np.array([labels.index(v[2]) for v in ENTRIES.values()], dtype=np.int16),
        labels,
    )


def test_entries_by_id(existing: Existing) -> None:
    assert len(existing) == 4
    assert list(existing) == ["a1", "a2", "b1", "b2"]
    assert existing["b1"] == (5, "cafe", "/src/two")
    assert existing.get("a2") == (2, "deadbeef00000002", "/src/one")
    assert existing.get("zz") is None
    assert "a1" in existing and "zz" not in existing
    assert existing.keys() - {"a1", "b2"} == {"a2", "b1"}
    with pytest.raises(KeyError):
        existing["zz"]


def test_all_from_needs_every_id_from_that_source(existing: Existing) -> None:
    assert existing.all_from(["a2", "a1"], "/src/one")
    assert existing.all_from([], "/src/one")
    assert not existing.all_from(["a1", "b1"], "/src/one")  # b1 is held from another source
    assert not existing.all_from(["a1", "a3"], "/src/one")  # a3 is not held at all
    assert not existing.all_from(["a1"], "/src/three")  # a source the index holds nothing of


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
