"""A crfsuite first-order CRF model read from its binary file, and crfsuite's Viterbi, bit for bit.

``pycrfsuite.Tagger.info()`` would give the weights, but it parses a text dump that rounds every
weight to six decimals (and it fails on pyvi's model: an attribute there is ``word.lower():`` +
a newline).  So we read the model file itself (crfsuite's ``crf1d`` format: a header, a ``FEAT``
chunk of fixed-size features, and two ``CQDB`` string databases for the labels and attributes)
and keep the exact float64 weights.

``viterbi`` mirrors ``crf1dc_viterbi``: the score of a path is the sum of its state scores and
of the transitions between consecutive labels (no start or end transitions), a tie goes to the
lower label, and every addition is the one crfsuite does, in its order.  Given state scores summed
in crfsuite's order too (``search.segmentation`` does), the labels are identical, not merely
equal up to rounding.
"""

from __future__ import annotations

import struct
import sys
from dataclasses import dataclass

import numpy as np

_HEADER = struct.Struct("<4sI4s9I")  # magic, size, type, version, counts and chunk offsets
_CQDB_HEADER = struct.Struct("<4s5I")  # chunk id, size, flag, byte order, bwd size, bwd offset
_FEATURE = np.dtype([("type", "<u4"), ("src", "<u4"), ("dst", "<u4"), ("weight", "<f8")])
_STATE, _TRANSITION = 0, 1


@dataclass(frozen=True, slots=True)
class CrfModel:
    """The parameters of a crfsuite CRF1d model.

    ``state[a, l]`` is the weight of attribute ``a`` for label ``l`` and ``transitions[i, j]``
    the weight of label ``i`` followed by label ``j``; both 0.0 where the model has no feature,
    which is exact: adding 0.0 changes no sum.
    """

    labels: tuple[str, ...]
    attributes: dict[str, int]
    state: np.ndarray
    transitions: np.ndarray

    def weights(self, attribute: str) -> np.ndarray:
        """The weights of ``attribute`` per label (zeros for an attribute the model lacks)."""
        index = self.attributes.get(attribute)
        if index is None:
            return np.zeros(len(self.labels))
        return self.state[index]


def _strings(data: bytes, offset: int) -> list[str]:
    """The strings of the CQDB chunk at ``offset``, in id order (its backward array)."""
    chunk, _, _, _, count, backward = _CQDB_HEADER.unpack_from(data, offset)
    if chunk != b"CQDB":
        raise ValueError(f"not a crfsuite model: expected a CQDB chunk at {offset}")
    out = []
    for i, record in enumerate(np.frombuffer(data, "<u4", count, offset + backward).tolist()):
        rid, size = struct.unpack_from("<II", data, offset + record)
        if rid != i:
            raise ValueError(f"not a crfsuite model: CQDB record {rid} where {i} was expected")
        start = offset + record + 8
        out.append(data[start : start + size - 1].decode("utf-8"))  # size counts the NUL
    return out


def read_model(data: bytes) -> CrfModel:
    """Parse the bytes of a crfsuite CRF1d model file (what ``Tagger.open`` reads)."""
    magic, _, kind, _, _, n_labels, n_attrs, off_features, off_labels, off_attrs, *_ = (
        _HEADER.unpack_from(data, 0)
    )
    if magic != b"lCRF" or kind != b"FOMC":
        raise ValueError("not a crfsuite CRF1d model file")
    chunk, _, count = struct.unpack_from("<4sII", data, off_features)
    if chunk != b"FEAT":
        raise ValueError("not a crfsuite model: no FEAT chunk")
    features = np.frombuffer(data, _FEATURE, count, off_features + 12)
    labels = tuple(_strings(data, off_labels))
    attributes = _strings(data, off_attrs)
    if len(labels) != n_labels or len(attributes) != n_attrs:
        raise ValueError("not a crfsuite model: label or attribute counts disagree")
    state = np.zeros((n_attrs, n_labels))
    transitions = np.zeros((n_labels, n_labels))
    for table, kind_id in ((state, _STATE), (transitions, _TRANSITION)):
        rows = features[features["type"] == kind_id]
        table[rows["src"], rows["dst"]] = rows["weight"]
    return CrfModel(
        labels=labels,
        attributes={name: i for i, name in enumerate(attributes)},
        state=state,
        transitions=transitions,
    )


def viterbi(state: np.ndarray, transitions: np.ndarray) -> np.ndarray:
    """The best label index per position (``uint8``), as crfsuite's ``crf1dc_viterbi`` finds it.

    ``state`` is ``(positions, labels)``.  Two labels (pyvi's ``B_W``/``I_W``) take an unrolled
    loop over Python floats: the recursion is sequential and numpy per step would cost more.
    """
    if len(state) == 0:
        return np.zeros(0, np.uint8)
    if state.shape[1] == 2:
        out = _viterbi2(state[:, 0].tolist(), state[:, 1].tolist(), transitions.tolist())
    else:
        out = _viterbi_any(state.tolist(), transitions.tolist())
    return np.frombuffer(out, np.uint8)


def _viterbi2(s0: list[float], s1: list[float], trans: list[list[float]]) -> bytearray:
    """``_viterbi_any`` unrolled for two labels (same sums, same tie-breaking)."""
    (t00, t01), (t10, t11) = trans
    n = len(s0)
    back0, back1 = bytearray(n), bytearray(n)
    a0, a1 = s0[0], s1[0]
    for t in range(1, n):  # one statement per operation: building tuples costs more in CPython
        x0 = a0 + t00
        y0 = a1 + t10
        x1 = a0 + t01
        y1 = a1 + t11
        if x0 < y0:  # crfsuite keeps the first maximum: label 1 only when strictly better
            back0[t] = 1
            x0 = y0
        if x1 < y1:
            back1[t] = 1
            x1 = y1
        a0 = x0 + s0[t]
        a1 = x1 + s1[t]
    out = bytearray(n)
    label = 1 if a0 < a1 else 0
    for t in range(n - 1, 0, -1):
        out[t] = label
        label = back1[t] if label else back0[t]
    out[0] = label
    return out


def _viterbi_any(state: list[list[float]], trans: list[list[float]]) -> bytearray:
    """``crf1dc_viterbi`` for up to 256 labels, loop for loop."""
    n, size = len(state), len(state[0])
    labels = range(size)
    lowest = -sys.float_info.max  # crfsuite's -FLOAT_MAX
    alpha = list(state[0])
    back: list[list[int]] = [[0] * size]
    for t in range(1, n):
        row, current = [0] * size, [0.0] * size
        for j in labels:
            best, arg = lowest, 0
            for i in labels:
                score = alpha[i] + trans[i][j]
                if best < score:
                    best, arg = score, i
            row[j] = arg
            current[j] = best + state[t][j]
        back.append(row)
        alpha = current
    label, best = 0, lowest
    for i in labels:
        if best < alpha[i]:
            best, label = alpha[i], i
    out = bytearray(n)
    for t in range(n - 1, 0, -1):
        out[t] = label
        label = back[t][label]
    out[0] = label
    return out
