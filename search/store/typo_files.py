"""The typo table's files: the deletion table of a generation's spellings (``typos.TypoTable``),
written once by the indexer and memory-mapped by every worker.

Each worker built the table itself from the accent vocabulary when it opened a generation: ~0.4 s
of Python at a million articles (437,000 deletion strings hashed), then ~6 MB of arrays of its
own.  Written with the generation, the table costs the indexer that once (an incremental run
renumbers the previous generation's table instead, ``TypoTable._take``), and the workers map it.

Layout (in the generation's directory): ``typos-words.{blob,offsets}.npy`` (the spellings, in the
table's order), ``typos-counts.npy`` (int64, a count per spelling), ``typos-keys.npy`` (int64, the
hashes of the deletion strings, sorted) and ``typos-ids.npy`` (int32, the spelling of each key).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .strings import StringArray, load_array, save_array

NAME = "typos"


class TypoFilesDamaged(ValueError):
    """The files are there but do not read as the indexer writes them."""


@dataclass(frozen=True)
class TypoArrays:
    """A typo table as arrays: ``keys[k]`` (sorted) is a deletion string of ``words[ids[k]]``."""

    words: StringArray
    counts: np.ndarray  # int64, one per word
    keys: np.ndarray  # int64, sorted
    ids: np.ndarray  # int32, into ``words``

    def save(self, directory: Path) -> None:
        self.words.save(directory, f"{NAME}-words")
        for name in ("counts", "keys", "ids"):
            save_array(directory / f"{NAME}-{name}.npy", getattr(self, name))

    @classmethod
    def load(cls, directory: Path) -> TypoArrays | None:
        """The mapped table of ``directory``; ``None`` when it has none (a generation written
        before the table was); ``TypoFilesDamaged`` when its files do not read as written."""
        if not (directory / f"{NAME}-ids.npy").exists():
            return None
        try:
            arrays = cls(
                StringArray.load(directory, f"{NAME}-words"),
                load_array(directory / f"{NAME}-counts.npy"),
                load_array(directory / f"{NAME}-keys.npy"),
                load_array(directory / f"{NAME}-ids.npy"),
            )
        except (OSError, ValueError) as error:
            raise TypoFilesDamaged(str(error)) from error
        problem = arrays.problem()
        if problem is not None:
            raise TypoFilesDamaged(problem)
        return arrays

    def problem(self) -> str | None:
        """What keeps the arrays from being read as a table (``None``: nothing).  A worker
        indexes ``words`` and ``counts`` with ``ids``, binary-searches ``keys`` and decodes the
        words it finds: ids out of range, an empty spelling or bytes that are not UTF-8 would
        raise in the middle of a search, keys out of order would miss spellings."""
        layout = self.words.layout_problem()
        if layout is not None:
            return f"words' {layout}"
        count = len(self.words)
        offsets = self.words.offsets
        if np.any(offsets[1:] == offsets[:-1]):  # a candidate's first letter is compared
            return "an empty spelling"
        if self.counts.dtype != np.int64 or self.keys.dtype != np.int64:
            return "types"
        if self.ids.dtype != np.int32:
            return "types"
        if (
            self.counts.shape != (count,)
            or self.keys.ndim != 1
            or self.ids.shape != self.keys.shape
        ):
            return "lengths"
        if self.ids.size and (int(self.ids.min()) < 0 or int(self.ids.max()) >= count):
            return "ids out of range"
        if np.any(self.keys[1:] < self.keys[:-1]):
            return "keys out of order"
        try:  # a candidate's spelling is decoded mid-search
            self.words.blob.tobytes().decode("utf-8", "surrogatepass")
        except UnicodeDecodeError:
            return "words are not UTF-8"
        return None
