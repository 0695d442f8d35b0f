"""Story grouping: one story told under several ids is shown once, its copies listed with it.

Real feeds repeat a story under several ids (same title and lead; the indexer gives such
documents one ``story`` code and marks them in ``Snapshot.shared_story``): a reader wants it once,
with "N bài tương tự" to expand.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .postings import Snapshot

MAX_SIMILAR = 20


class Stories:
    """The stories among a list of candidates, worked out only as far as a page looks.

    ``docs``: the candidates (docnums) in list order, or in any order when ``keys`` gives the
    rank order (rank key descending, then docnum): the keys at positions in ``docs`` (a lookup,
    so that only the keys of the copies a page lists are computed).  A story is shown at its
    first copy in rank order, and the others become its ``similar`` list.  Only what touches
    every candidate is done for all of them (which are copies, and how many stories there are:
    the total); which are shown is worked out for the positions a page reads (``firsts``), so
    a page of ten among 400,000 candidates does not reorder 400,000 arrays.  ``shared``: where
    ``docs`` are copies, when the caller has it already (the facets read it too).
    """

    def __init__(
        self,
        snap: Snapshot,
        docs: np.ndarray,
        keys: Callable[[np.ndarray], np.ndarray] | None = None,
        shared: np.ndarray | None = None,
    ) -> None:
        self.docs, self.keys = docs, keys
        self.shared = snap.shared_story().take(docs) if shared is None else shared
        self._positions = np.flatnonzero(self.shared)
        self._codes = snap.codes("story")[docs[self._positions]]
        self.total = int(docs.size - self._positions.size + np.unique(self._codes).size)

    @property
    def collapsing(self) -> bool:
        """Whether any story is told twice among the candidates (else nothing is collapsed)."""
        return self.total < self.docs.size

    def firsts(self, prefix: np.ndarray) -> np.ndarray:
        """Which of ``prefix`` (positions in ``docs``: the list's first entries, in list order)
        are shown: those that are no copy, and each story's first copy (a mask over
        ``prefix``)."""
        copies = self.shared[prefix]
        keep = ~copies
        where = np.flatnonzero(copies)
        _, first = np.unique(self._story(prefix[where]), return_index=True)
        keep[where[first]] = True
        return keep

    def _story(self, positions: np.ndarray) -> np.ndarray:
        """The story code of copies at ``positions`` (in ``docs``)."""
        return self._codes[np.searchsorted(self._positions, positions)]

    def similar(self, position: int) -> list[int]:
        """The other copies (docnums) of the story shown at ``position`` (in ``docs``), by rank
        key then docnum (or in list order when there are no keys); ``[]`` when it is no copy."""
        if not self.shared[position]:
            return []
        members = self._positions[self._codes == self._story(np.array([position]))[0]]
        if self.keys is not None:
            members = members[np.lexsort((self.docs[members], -self.keys(members)))]
        return [int(self.docs[m]) for m in members[1 : MAX_SIMILAR + 1]]
