"""Array idioms chosen for their speed at a million documents.

``values[mask]`` with a boolean mask whose bits look random (the documents holding a word among
the candidates: about half of them) takes numpy's branchy path: 2.3 ms for 577,750 values on the
README's machine, against 0.29 ms for the positions of the set bits (``np.flatnonzero``, which
counts them without a branch per value) and a ``take``.
"""

from __future__ import annotations

import numpy as np


def select(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``values[mask]`` for a boolean ``mask`` of the same length, faster.

    >>> select(np.array([5, 6, 7, 8]), np.array([True, False, True, False])).tolist()
    [5, 7]
    """
    return values.take(np.flatnonzero(mask))
