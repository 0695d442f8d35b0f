"""Whoosh fields of a vnsearch index, and the weights that rank them.

Whoosh pickles the schema (field classes and the analyzer) into the index, so the import paths of
``VietnameseText`` and ``search.analysis`` are part of the on-disk format.  ``SCHEMA_VERSION`` goes
up whenever the indexed terms change; an index of another version must be rebuilt (``--full``).
"""

from __future__ import annotations

from collections import Counter

from whoosh.analysis import Composable
from whoosh.codec.whoosh3 import W3Codec
from whoosh.fields import ID, STORED, TEXT, Schema
from whoosh.formats import Format, tokens

from .analysis import EXTRA, FOLDED, VietnameseAnalyzer

# 6: no positions, adjacent pairs in the extra view; 7: rare pairs pooled; 8: hash and story are
# columns only (and segments are written by ``segment_writer``); 9: a pair is pooled when one
# document of its segment holds it (7 and 8: one of its batch of 1,000); 10: an article without a
# lead has its body's opening counted twice (``Document.opening``)
SCHEMA_VERSION = 10


# Postings per Whoosh block.  Whoosh's default of 128 made loading a frequent term mostly block
# overhead (a pickled header per block), and frequent terms grow with the archive.
BLOCK_POSTINGS = 1024


def codec() -> W3Codec:
    """The codec every vnsearch writer uses: Whoosh's, with larger posting blocks.  Readers need
    nothing: each block records its own length."""
    return W3Codec(blocklimit=BLOCK_POSTINGS)


class FrequencyWeight(Format):
    """A term's frequency in a document, kept as the posting's weight and nothing else.

    Whoosh's ``Frequency`` writes the same number again as a 4-byte value per posting, which
    vnsearch never reads (scoring reads weights only), so this format stores no value at all.
    """

    posting_size = 0

    def __init__(self, field_boost: float = 1.0, **options: object) -> None:
        self.field_boost = field_boost
        self.options = options

    def word_values(self, value: object, analyzer: Composable, **kwargs: object):
        counts = Counter(t.text for t in tokens(value, analyzer, kwargs))
        return ((w, f, f * self.field_boost, b"") for w, f in counts.items())

    def decode_weight(self, valuestring: bytes) -> float:
        return self.field_boost


TEXT_FIELDS = ("title", "lead", "body")
EXTRA_SUFFIX = "_x"  # ``body_x`` holds the extra view of ``body``


def extra_field(name: str) -> str:
    return name + EXTRA_SUFFIX


class VietnameseText(TEXT):
    """A TEXT field analysed by one view of the Vietnamese analyzer.

    Both views keep frequencies only (phrases are decided by the extra view's adjacent pairs); the
    folded view also stores the original text.
    """

    def __init__(self, view: str = FOLDED) -> None:
        super().__init__(analyzer=VietnameseAnalyzer(view), phrase=False, stored=view == FOLDED)
        self.format = FrequencyWeight()


class Column(ID):
    """A string kept as a column (and stored when asked) but never searched: ``hash`` and ``story``
    are read per document, and a term per document cost ~70 bytes of term dictionary each."""

    indexed = False


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
        hash=Column(stored=True, sortable=True),
        story=Column(sortable=True),  # near-duplicate key: same folded title and lead
    )
