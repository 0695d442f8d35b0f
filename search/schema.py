"""Whoosh fields of a vnsearch index, and the weights that rank them.

Whoosh pickles the schema (field classes and the analyzer) into the index, so the import paths of
``VietnameseText`` and ``search.analysis`` are part of the on-disk format.  ``SCHEMA_VERSION`` goes
up whenever the indexed terms change; an index of another version must be rebuilt (``--full``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from whoosh.fields import ID, STORED, TEXT, Schema
from whoosh.system import pack_uint

from .analysis import EXTRA, FOLDED, VietnameseAnalyzer, index_terms

SCHEMA_VERSION = 5  # 4 stored compressed text: Whoosh compresses it already
TEXT_FIELDS = ("title", "lead", "body")
EXTRA_SUFFIX = "_x"  # ``body_x`` holds the extra view of ``body``


def extra_field(name: str) -> str:
    return name + EXTRA_SUFFIX


@dataclass(frozen=True, slots=True)
class PreIndexed:
    """Postings already computed by ``VietnameseText.index`` in a worker process.

    Segmentation is the slow part of indexing; computing postings in a process pool and handing
    them to the one writer lets indexing use every core without Whoosh's multi-process writer.
    """

    items: tuple[tuple[bytes, int, float, bytes], ...]


class VietnameseText(TEXT):
    """A TEXT field analysed by one view of the Vietnamese analyzer; accepts ``PreIndexed``.

    The folded view keeps positions (phrases) and the stored original text; the extra view keeps
    frequencies only, which is all its ranking signals need.
    """

    def __init__(self, view: str = FOLDED) -> None:
        folded = view == FOLDED
        super().__init__(analyzer=VietnameseAnalyzer(view), phrase=folded, stored=folded)

    def index(self, value: object, **kwargs: object) -> Iterable[tuple[bytes, int, float, bytes]]:
        if isinstance(value, PreIndexed):
            return value.items
        return super().index(value, **kwargs)


def build_schema() -> Schema:
    return Schema(
        id=ID(stored=True, unique=True, sortable=True),
        title=VietnameseText(),
        lead=VietnameseText(),
        body=VietnameseText(),
        title_x=VietnameseText(EXTRA),
        lead_x=VietnameseText(EXTRA),
        body_x=VietnameseText(EXTRA),
        url=STORED(),
        date=ID(stored=True, sortable=True),
        source=ID(stored=True, sortable=True),
        category=ID(stored=True),
        origin=ID(stored=True, sortable=True),
        hash=ID(stored=True, sortable=True),
        story=ID(sortable=True),  # near-duplicate key: same folded title and lead
    )


def preindex(schema: Schema, name: str, text: str) -> dict[str, PreIndexed]:
    """Postings of both views of one text field, as Whoosh's formats encode them (picklable)."""
    if not text:
        return {name: PreIndexed(()), extra_field(name): PreIndexed(())}
    positions, extra = index_terms(text)
    encode = schema[name].format.encode
    folded_items = tuple(
        (term.encode("utf-8"), len(poses), float(len(poses)), encode(poses))
        for term, poses in positions.items()
    )
    extra_items = tuple(
        (term.encode("utf-8"), freq, float(freq), pack_uint(freq)) for term, freq in extra.items()
    )
    return {name: PreIndexed(folded_items), extra_field(name): PreIndexed(extra_items)}
