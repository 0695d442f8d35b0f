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


def collapse(
    snap: Snapshot, docs: np.ndarray, scores: np.ndarray, keys: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, Callable[[int], list[int]] | None, np.ndarray | None]:
    """Keep the first document of each story in ``docs``' order (the best-ranked); the others
    become its ``similar`` list (docnums).

    ``keys``: list the other members by rank key (then docnum) rather than in ``docs``' order.
    Returns docs, scores, the ``similar`` lookup and the positions in ``docs`` that were kept
    (``None``: all of them).
    """
    if docs.size < 2:
        return docs, scores, None, None
    shared = snap.shared_story()[docs]
    if not shared.any():  # no story told twice: the common case, no sorting at all
        return docs, scores, None, None
    positions = np.flatnonzero(shared)
    _, first, inverse = np.unique(
        snap.codes("story")[docs[positions]], return_index=True, return_inverse=True
    )
    if first.size == positions.size:
        return docs, scores, None, None
    keep = ~shared
    keep[positions[first]] = True
    order = np.flatnonzero(keep)
    group_of = np.full(docs.size, -1, dtype=np.int64)
    group_of[positions] = inverse

    def similar(position: int) -> list[int]:
        group = group_of[order[position]]
        if group < 0:
            return []
        members = positions[inverse == group]  # the first is the one shown
        if keys is not None:
            members = members[np.lexsort((docs[members], -keys[members]))]
        return [int(docs[m]) for m in members[1 : MAX_SIMILAR + 1]]

    return docs[order], scores[order], similar, order
