"""Whoosh fields of a vnsearch index, and the weights that rank them.

Whoosh pickles the schema (field classes and the analyzer) into the index, so the import paths of
``VietnameseText`` and ``search.analysis`` are part of the on-disk format.  ``SCHEMA_VERSION`` goes
up whenever the indexed terms change; an index of another version must be rebuilt (``--full``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from whoosh.fields import ID, STORED, TEXT, Schema

from .analysis import VietnameseAnalyzer

SCHEMA_VERSION = 1
TEXT_FIELDS = ("title", "lead", "body")


@dataclass(frozen=True, slots=True)
class PreIndexed:
    """Postings already computed by ``VietnameseText.index`` in a worker process.

    Segmentation is the slow part of indexing; computing postings in a process pool and handing
    them to the one writer lets indexing use every core without Whoosh's multi-process writer.
    """

    items: tuple[tuple[bytes, int, float, bytes], ...]


class VietnameseText(TEXT):
    """A TEXT field analysed by the Vietnamese analyzer that also accepts ``PreIndexed`` values."""

    def __init__(self, stored: bool = True) -> None:
        super().__init__(analyzer=VietnameseAnalyzer(), phrase=True, stored=stored)

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
        url=STORED(),
        date=ID(stored=True, sortable=True),
        source=ID(stored=True, sortable=True),
        category=ID(stored=True),
        origin=ID(stored=True, sortable=True),
        hash=ID(stored=True, sortable=True),
    )


def preindex(field: VietnameseText, text: str) -> PreIndexed:
    """Run the analyzer for one field value; picklable result for ``PreIndexed`` transport."""
    return PreIndexed(tuple(field.index(text)) if text else ())
