"""Per-document arrays of a generation: live mask, field lengths, BM25F norms and columns.

Built from a Whoosh reader after a commit.  A segment the previous generation already had (Whoosh
segments never change, only their deletions do) is copied from that generation's arrays; only new
segments (the run's own, or a merge's) are read from Whoosh, so an incremental run reads what it
wrote, not the archive.  Everything a query reads is then a file every worker maps.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .counts import union
from .strings import StringArray, fixed_width, load_array, save_array

log = logging.getLogger(__name__)

TEXT_FIELDS = ("title", "lead", "body")  # ``schema.TEXT_FIELDS``, in its order
# BM25F: field weight and length normalisation (``postings.length_norms`` with ``RankingParams``).
CODED = ("date", "source", "story", "origin")  # kept as codes into sorted labels
# New values looked up one by one in the previous generation's labels (and inserted among them
# where they lack), up to this many.
FEW_VALUES = 10_000
# An incremental run keeps the previous generation's average field lengths (the BM25 length
# normalisation's ``avglen``) while the live documents' averages stay within this share of them:
# then every unchanged document keeps its norms bit for bit, and the posting arrays the workers
# built for the segments it shares with the previous generation stay valid (``postings``: no
# rebuild of a million documents' arrays after a commit of two hundred).  A 2 % change of the
# average moves a norm by at most ~1.5 % (b = 0.75); past it, or in a ``--full`` run, the averages
# are taken again.
AVERAGE_DRIFT = 0.02
Segments = list[tuple[str, int]]  # (Whoosh segment id, its documents, deleted ones included)


@dataclass(frozen=True)
class Coded:
    """A column as ``labels[codes[docnum]]``: labels sorted and unique (``str`` order)."""

    codes: np.ndarray  # int32
    labels: StringArray


@dataclass(frozen=True)
class Columns:
    """Everything per document a query reads besides postings, for one generation.

    ``lengths[f]``: field ``TEXT_FIELDS[f]``'s length in each document, as Whoosh reports it
    (``NaN`` where Whoosh answers ``None``: a field it recorded as empty).  ``norms`` follows from
    them (``postings.length_norms``) and ``averages``, the average field lengths they were
    computed with (those of the live documents, or the previous generation's: ``AVERAGE_DRIFT``).
    ``hashes`` are the documents' content hashes, which
    identify a document's text across generations.
    """

    segments: Segments
    live: np.ndarray
    lengths: np.ndarray
    norms: np.ndarray
    averages: np.ndarray  # float64, one per text field
    ids: StringArray
    hashes: StringArray
    coded: dict[str, Coded]
    shared_story: np.ndarray
    # int32 per document: its source code times the year labels plus its year code, so that
    # both facets of a query count its candidates from one lookup (``facets.paired_facets``)
    facet_pairs: np.ndarray

    @property
    def size(self) -> int:
        return int(self.live.size)

    def live_strings(self, strings: StringArray) -> StringArray:
        """``strings`` (a column of these documents) of the live documents."""
        if self.live.all():
            return strings.rows(0, len(strings))
        return strings.take(np.flatnonzero(self.live))

    def segment_rows(self) -> dict[str, tuple[slice, int]]:
        """Segment id -> (its docnums here, its document count)."""
        out, start = {}, 0
        for segment_id, count in self.segments:
            out[segment_id] = (slice(start, start + count), count)
            start += count
        return out

    def save(self, directory: Path) -> None:
        (directory / "segments.json").write_text(json.dumps(self.segments), encoding="utf-8")
        for name in ("live", "lengths", "norms", "shared_story", "averages", "facet_pairs"):
            save_array(directory / f"{name}.npy", getattr(self, name))
        self.ids.save(directory, "id")
        self.hashes.save(directory, "hash")
        for name, column in self.coded.items():
            save_array(directory / f"{name}.codes.npy", column.codes)
            column.labels.save(directory, f"{name}.labels")

    @classmethod
    def load(cls, directory: Path) -> Columns:
        segments = [tuple(s) for s in json.loads((directory / "segments.json").read_text("utf-8"))]
        arrays = {
            name: load_array(directory / f"{name}.npy")
            for name in ("live", "lengths", "norms", "shared_story")
        }
        try:
            arrays["averages"] = load_array(directory / "averages.npy")
        except FileNotFoundError:  # written before the averages were kept: they were exact
            arrays["averages"] = field_averages(arrays["lengths"], arrays["live"])
        coded = {
            name: Coded(
                load_array(directory / f"{name}.codes.npy"),
                StringArray.load(directory, f"{name}.labels"),
            )
            for name in (*CODED, "year")
        }
        arrays["facet_pairs"] = _loaded_pairs(directory, coded["source"], coded["year"])
        return cls(
            segments=segments,  # type: ignore[arg-type]
            ids=StringArray.load(directory, "id"),
            hashes=StringArray.load(directory, "hash"),
            coded=coded,
            **arrays,
        )


def field_averages(lengths: np.ndarray, live: np.ndarray) -> np.ndarray:
    """Each text field's average length over the live documents that have the field, as Lucene
    divides a field's total length by the documents holding it; 0 where none has it.  An empty
    field's length is NaN or 0 (``Columns``: Whoosh answers ``None`` for some segments and 0
    for others): neither counts.

    Counting an empty field as NaN made the average NaN, and then the field's norm was its bare
    weight for every document: one article without a title or lead in an archive switched
    length normalisation off for that field everywhere.
    """
    averages = np.zeros(len(TEXT_FIELDS), dtype=np.float64)
    live = np.asarray(live)
    for f in range(len(TEXT_FIELDS)):
        values = np.asarray(lengths[f])[live]
        values = values[values > 0]  # NaN compares false
        if values.size:
            averages[f] = float(values.mean(dtype=np.float64))
    return averages


def kept_averages(base: Columns | None, exact: np.ndarray, copied: bool) -> np.ndarray:
    """The averages a new generation normalises with: ``base``'s while the live documents'
    (``exact``) are within ``AVERAGE_DRIFT`` of them and it shares segments with ``base``
    (``copied``), else ``exact``."""
    if base is None or not copied or base.averages.shape != exact.shape:
        return exact
    near = np.allclose(base.averages, exact, rtol=AVERAGE_DRIFT, atol=0.0, equal_nan=True)
    return np.array(base.averages, dtype=np.float64) if near else exact


def build_columns(reader, norms_of, base: Columns | None = None) -> Columns:
    """The columns of the generation ``reader`` reads (``norms_of(lengths, live, averages)``
    gives the norms), copying the segments ``base`` already has from it, whose average lengths
    it keeps while they stay near (``kept_averages``)."""
    leaves = reader.leaf_readers() if reader.doc_count_all() else []
    known = base.segment_rows() if base is not None else {}
    parts: list[dict] = []
    segments: Segments = []
    copied = False
    for leaf, _ in leaves:
        segment_id, count = leaf.segment().segment_id(), leaf.doc_count_all()
        segments.append((segment_id, count))
        rows = known.get(segment_id)
        if base is not None and rows is not None and rows[1] == count:
            parts.append(_copied(base, rows[0]))
            copied = True
        else:
            parts.append(_read_segment(leaf))
    size = sum(count for _, count in segments)
    live = np.ones(size, dtype=bool)
    start = 0
    for leaf, _ in leaves:
        # the segment's deletions (few), not a Python step through every live document
        deleted = np.fromiter(leaf.segment().deleted_docs(), dtype=np.int64)
        live[start + deleted] = False
        start += leaf.doc_count_all()
    lengths = (
        np.concatenate([p["lengths"] for p in parts], axis=1)
        if parts
        else np.zeros((len(TEXT_FIELDS), 0), np.float32)
    )
    coded = {name: _coded([p[name] for p in parts]) for name in CODED}
    coded["year"] = _years(coded["date"])
    story = coded["story"]
    told = np.bincount(story.codes, minlength=len(story.labels))
    averages = kept_averages(base, field_averages(lengths, live), copied)
    return Columns(
        segments=segments,
        live=live,
        lengths=lengths,
        norms=norms_of(lengths, live, averages),
        averages=averages,
        ids=StringArray.concat([p["id"] for p in parts]),
        hashes=StringArray.concat([p["hash"] for p in parts]),
        coded=coded,
        shared_story=told[story.codes] > 1,
        facet_pairs=facet_pairs(coded["source"], coded["year"]),
    )


def facet_pairs(source: Coded, year: Coded) -> np.ndarray:
    """Each document's (source, year) as one code: ``source * len(year labels) + year``."""
    years = np.int32(max(len(year.labels), 1))
    return (source.codes.astype(np.int32) * years + year.codes).astype(np.int32)


def _loaded_pairs(directory: Path, source: Coded, year: Coded) -> np.ndarray:
    """The generation's ``facet_pairs.npy``; computed in this process (logged) when a generation
    written before it has none, or when it is not one code in range per document (a lookup out
    of range would fail every search)."""
    path = directory / "facet_pairs.npy"
    try:
        pairs = load_array(path)
    except FileNotFoundError:
        log.info("%s: no facet_pairs.npy (an older generation): computed", directory)
        return facet_pairs(source, year)
    except (OSError, ValueError) as error:
        log.warning("%s: not an array (%s): computed again", path, error)
        return facet_pairs(source, year)
    limit = max(len(source.labels), 1) * max(len(year.labels), 1)
    fits = pairs.dtype == np.int32 and pairs.shape == source.codes.shape
    if not fits or (pairs.size and not 0 <= int(pairs.min()) <= int(pairs.max()) < limit):
        log.warning("%s: not the pairs of this generation: computed again", path)
        return facet_pairs(source, year)
    return pairs


def _copied(base: Columns, rows: slice) -> dict:
    part: dict = {
        name: Coded(base.coded[name].codes[rows], base.coded[name].labels) for name in CODED
    }
    part["id"] = base.ids.rows(rows.start, rows.stop)
    part["hash"] = base.hashes.rows(rows.start, rows.stop)
    part["lengths"] = base.lengths[:, rows]
    return part


def _read_segment(leaf) -> dict:
    """One segment's columns and field lengths, read through Whoosh as ``Snapshot`` read them."""
    count = leaf.doc_count_all()
    part: dict = {}
    for name in ("id", "hash", *CODED):
        if count and leaf.has_column(name):
            column = leaf.column_reader(name)
            values = [column[d] or "" for d in range(count)]
        else:
            values = [""] * count
        part[name] = StringArray.from_strings(values)
    lengths = np.zeros((len(TEXT_FIELDS), count), dtype=np.float32)
    for f, field in enumerate(TEXT_FIELDS):
        for docnum in range(count):
            # ``None`` (a length byte of 0) becomes NaN, as it did in the float32 array before
            lengths[f, docnum] = leaf.doc_field_length(docnum, field, 0)
    part["lengths"] = lengths
    return part


def _coded(parts: list[StringArray | Coded]) -> Coded:
    """Codes into the sorted unique values (``sorted(set(values))`` with numpy).  A part
    copied from the previous generation (``Coded``) is recoded through its labels, not sorted
    again with every value: a million documents' values cost seconds, their labels' far less."""
    labelled = {id(p.labels): p.labels for p in parts if isinstance(p, Coded)}
    if len(labelled) == 1:
        known = _known(next(iter(labelled.values())), parts)
        if known is not None:
            return known
    sets = [*labelled.values(), *(p for p in parts if isinstance(p, StringArray))]
    widths = [int(s.lengths().max()) for s in sets if len(s)]
    if not widths:  # no documents
        return Coded(np.zeros(0, np.int32), StringArray.empty())
    width = max(1, *widths)
    labels = np.unique(np.concatenate([fixed_width(s, width) for s in sets]))
    recoded = {key: np.searchsorted(labels, fixed_width(s, width)) for key, s in labelled.items()}
    codes = np.concatenate(
        [
            recoded[id(p.labels)][p.codes]
            if isinstance(p, Coded)
            else np.searchsorted(labels, fixed_width(p, width))
            for p in parts
        ]
    ).astype(np.int32)
    # Labels only documents gone since held: dropped, as a rebuild would not know them.
    used = np.bincount(codes, minlength=labels.size) > 0
    if not used.all():
        renumber = np.cumsum(used, dtype=np.int64) - 1
        codes, labels = renumber[codes].astype(np.int32), labels[used]
    return Coded(codes, StringArray.from_bytes(labels.tolist()))


def _known(labels: StringArray, parts: list[StringArray | Coded]) -> Coded | None:
    """The codes when the new values are few (an incremental run's documents): those the copied
    parts' ``labels`` lack are inserted where they sort (``counts.union``), the copied codes
    shifted past them; ``None`` when there are too many to look up one by one."""
    fresh = [p for p in parts if isinstance(p, StringArray)]
    if sum(len(p) for p in fresh) > FEW_VALUES:
        return None
    labels, shift, position = union(labels, [value for part in fresh for value in part])
    codes = np.concatenate(
        [
            shift[p.codes] if isinstance(p, Coded) else np.fromiter(map(position.get, p), np.int64)
            for p in parts
        ]
    ).astype(np.int32)
    used = np.bincount(codes, minlength=len(labels)) > 0
    if used.all():
        return Coded(codes, labels)
    renumber = np.cumsum(used, dtype=np.int64) - 1
    return Coded(renumber[codes].astype(np.int32), labels.take(np.flatnonzero(used)))


def _years(date: Coded) -> Coded:
    """``year`` from ``date``: each date label's first four characters."""
    years = [label[:4] for label in date.labels]
    labels = sorted(set(years))
    position = {label: i for i, label in enumerate(labels)}
    mapping = np.fromiter((position[y] for y in years), np.int32, len(years))
    return Coded(
        mapping[date.codes] if date.codes.size else date.codes, StringArray.from_strings(labels)
    )
