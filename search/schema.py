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

from .analysis import EXTRA, FOLDED, VietnameseAnalyzer, pair_bucket

# 6: no positions, adjacent pairs in the extra view; 7: rare pairs pooled; 8: hash and story are
# columns only (and segments are written by ``segment_writer``)
SCHEMA_VERSION = 8


# Postings per Whoosh block.  Whoosh's default of 128 made loading a frequent term mostly block
# overhead (a pickled header per block): at 46.7k articles, 245k blocks for 300 queries.
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


def pool_rare_pairs(batch: list[dict[str, dict[str, int]]]) -> list[dict[str, dict[str, int]]]:
    """The batch's ``field -> term -> frequency`` with each adjacent pair found in only one of its
    documents (per field) moved under its shared bucket term (``analysis.pair_bucket``).

    Most pairs occur once in a whole corpus, and Whoosh spends ~160 bytes of term dictionary and
    posting block on every term: pairs of their own took the index from 3.1x to 5.5x the text.
    A phrase or proximity lookup reads the pair's own term and its bucket; documents found only
    through the bucket are confirmed against their syllables or their text.
    """
    df: dict[str, Counter] = {}
    for views in batch:
        for name, terms in views.items():
            if name.endswith(EXTRA_SUFFIX):
                df.setdefault(name, Counter()).update(terms.keys())
    out: list[dict[str, dict[str, int]]] = []
    for views in batch:
        pooled = dict(views)
        for name, terms in views.items():
            if not name.endswith(EXTRA_SUFFIX):
                continue
            counts = df[name]
            rare = [t for t in terms if " " in t and counts[t] == 1]
            if not rare:
                continue
            kept = dict(terms)
            for pair in rare:
                bucket = pair_bucket(pair)
                kept[bucket] = kept.get(bucket, 0) + kept.pop(pair)
            pooled[name] = kept
        out.append(pooled)
    return out
