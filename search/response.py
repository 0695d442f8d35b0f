"""The typed answer to a search: what ``SearchEngine.search_response`` builds.

``SearchResponse.to_dict`` is the API's JSON body (docs/CONTRACT.md), keys in field order; the
OpenAPI description (``web/openapi.py``) and the tests take their key lists from these fields, so
the three cannot drift apart.  A hit's near-duplicates (``Similar``) carry what the results page
labels them with; the API lists only their ids.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from functools import cache


@dataclass(frozen=True, slots=True)
class Similar:
    """A near-duplicate collapsed into a hit (same title and lead, another id)."""

    id: str
    title: str
    source: str | None
    date: str | None


@dataclass(frozen=True, slots=True)
class Hit:
    """One result, as the API shows it (``similar``: ids only)."""

    id: str
    title: str
    title_html: str
    url: str | None
    snippet: str
    score: float
    source: str | None
    date: str | None
    lead: str | None
    similar: tuple[Similar, ...] = ()

    def to_dict(self) -> dict:
        out = {name: getattr(self, name) for name in keys(Hit)}
        out["similar"] = [s.id for s in self.similar]
        return out


@dataclass(frozen=True, slots=True)
class SearchResponse:
    """One page of results for one query."""

    query: str
    total: int
    total_relation: str  # "eq": ``total`` is exact; "gte": a lower bound
    page: int
    per_page: int
    took_ms: float
    interpreted_as: str | None
    suggestion: str | None
    hits: tuple[Hit, ...]
    facets: Mapping[str, list[dict]]  # "source", "year": [{"value", "count"}], most first

    def to_dict(self) -> dict:
        """The API's JSON body."""
        out = {name: getattr(self, name) for name in keys(SearchResponse)}
        out["hits"] = [hit.to_dict() for hit in self.hits]
        out["facets"] = {name: [dict(v) for v in values] for name, values in self.facets.items()}
        return out


@cache
def keys(cls: type) -> tuple[str, ...]:
    """The JSON keys of ``Hit`` or ``SearchResponse``, in order: its field names."""
    return tuple(f.name for f in fields(cls))
