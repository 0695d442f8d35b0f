"""The search function the HTML page, the JSON API, the CLI and the benchmarks all call.

``SearchEngine`` owns one index directory.  Before each call it checks the index's latest
generation (a directory listing) and, when a reindex has committed a new one, opens it: workers
pick up new generations without a restart, and a response is always computed from one generation.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path
from typing import TypeVar

import numpy as np
from whoosh import index as whoosh_index

from . import kernels
from .config import Settings
from .correction import correct_typos
from .errors import BadRequest, IndexMissing, NotFound
from .facets import both, date_mask, facets, masked, source_mask
from .malloc import keep_freed_memory
from .phrases import Constraints, confirm, constraints, known_good
from .postings import Snapshot
from .query import Plan, parse
from .ranking import Ranked, rank
from .ranking_params import DEFAULT_PARAMS, RankingParams
from .response import Hit, SearchResponse, Similar
from .results import (
    HitView,
    display_title,
    find_spans,
    mark,
    paragraphs_html,
    plan_matcher,
    safe_url,
    snippet,
)
from .stories import Stories
from .suggest import highlight_prefix

log = logging.getLogger(__name__)
DEFAULT_SETTINGS = Settings()
T = TypeVar("T")

MAX_SUGGEST_CHARS = 100
SORTS = ("relevance", "newest")
DEFAULT_PER_PAGE = 10
# The steps of a search a ``timings`` callback hears about (``SearchEngine.__init__``); the rest
# of ``search`` (checks, the accent suggestion, the response) is in none of them.
STEPS = ("snapshot", "parse", "match_score", "facets_collapse", "snippets")
# A search asks the directory's mtime whether a generation was committed; it lists the directory
# again at least this often all the same, and only reuses a listing of a directory unchanged for
# ``SETTLED_NS`` before it (``SearchEngine._latest``).
RELIST_SECONDS = 1.0
SETTLED_NS = 100_000_000
_DATE_RE = re.compile(r"([0-9]{4})(?:-([0-9]{2})(?:-([0-9]{2}))?)?")  # ASCII digits only
_WHOLE_NUMBER_RE = re.compile(r"[0-9]{1,7}")


# Search parameters are checked here and nowhere else: ``SearchEngine.search`` checks what it is
# given, and a front end (web/params.py) calls ``check_search`` itself to reject a request before
# it asks any engine.  The messages are the ones the API returns (docs/CONTRACT.md).


def _vi_number(value: int) -> str:
    """1000 -> '1.000' (Vietnamese digit grouping)."""
    return f"{value:,}".replace(",", ".")


def check_query(q: object, max_chars: int, *, required: bool = True) -> str | None:
    """The query, stripped; ``None`` when blank and not ``required``.

    ``BadRequest`` (``missing_query``, ``query_too_long``) otherwise.  The length limit counts
    the text as given, surrounding blanks included.
    """
    if isinstance(q, str) and len(q) > max_chars:  # blanks too: what the API's schema says
        raise BadRequest(
            f"Từ khóa tìm kiếm dài quá {_vi_number(max_chars)} ký tự.", code="query_too_long"
        )
    if q is None or not isinstance(q, str) or not q.strip():
        if required:
            raise BadRequest("Thiếu từ khóa tìm kiếm (tham số q).", code="missing_query")
        return None
    return q.strip()


def check_int(value: object, name: str, low: int, high: int, default: int) -> int:
    """A whole number in ``[low, high]``; ``None`` or ``""`` is ``default``.

    Digits in a string count as their number (``parse_whole_number``: a front end parses the
    query string with it and hands anything else on as it came, to be refused here).
    """
    if value is None or value == "":
        return default
    if isinstance(value, str):
        value = parse_whole_number(value)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise BadRequest(
            f"Tham số {name} phải là số nguyên từ {low} đến {high}.", code="bad_parameter"
        )
    return value


def parse_whole_number(raw: str | None) -> int | str | None:
    """Query-string digits as an ``int``; anything else unchanged, for ``check_int`` to refuse."""
    if raw is None or raw == "":
        return raw
    stripped = raw.strip()
    return int(stripped) if _WHOLE_NUMBER_RE.fullmatch(stripped) else raw


def check_date(value: object, name: str) -> str | None:
    """``YYYY``, ``YYYY-MM`` or ``YYYY-MM-DD`` naming a real day, month or year; blank: ``None``."""
    if value is None:
        return None
    text = value.strip() if isinstance(value, str) else None
    if text == "":
        return None
    match = _DATE_RE.fullmatch(text) if text is not None else None
    try:
        if not match:
            raise ValueError
        year, month, day = (int(g) if g else 1 for g in match.groups())
        date(year, month, day)
    except ValueError:
        raise BadRequest(
            f"Tham số {name} phải là ngày dạng YYYY-MM-DD.", code="bad_parameter"
        ) from None
    return text


def check_search(
    q: object,
    page: object = 1,
    per_page: object = DEFAULT_PER_PAGE,
    *,
    source: object = None,
    date_from: object = None,
    date_to: object = None,
    sort: object = "relevance",
    literal: bool = False,
    settings: Settings | None = None,
    required: bool = True,
) -> dict:
    """Every search parameter checked against ``settings``' limits, or ``BadRequest``.

    Returns ``{"q", "page", "per_page", "source", "date_from", "date_to", "sort", "literal"}``
    with blanks turned into defaults; ``q`` is ``None`` only when blank and not ``required``.
    """
    settings = settings or DEFAULT_SETTINGS
    text = check_query(q, settings.max_query_chars, required=required)
    if sort is None or sort == "":
        sort = "relevance"
    elif isinstance(sort, str):
        sort = sort.strip()
    if sort not in SORTS:
        raise BadRequest("Tham số sort phải là relevance hoặc newest.", code="bad_parameter")
    checked = {
        "q": text,
        "page": check_int(page, "page", 1, settings.max_page, 1),
        "per_page": check_int(per_page, "per_page", 1, settings.max_per_page, DEFAULT_PER_PAGE),
        "source": (source.strip() or None) if isinstance(source, str) else None,
        "date_from": check_date(date_from, "from"),
        "date_to": check_date(date_to, "to"),
        "sort": sort,
        "literal": bool(literal),
    }
    if text is not None and "\x00" in text:
        raise BadRequest("Từ khóa chứa ký tự không hợp lệ.", code="bad_query")
    return checked


# A worker switching to a new generation warms it in a thread while it goes on serving the old
# one; both need the process's one interpreter lock, and a search sharing it with the warm-up
# took 2-3 times as long (at 1M, 3 of 8,447 searches over 200 ms, all in the second the switch
# ran, under load).  While a search runs, the warm-up works at most ``SWITCH_SLICE`` seconds at
# a time, then leaves the process to it for ``SWITCH_PAUSE``: a slower switch under load, in
# which the old generation goes on answering, instead of slower searches.
SWITCH_SLICE = 0.002
SWITCH_PAUSE = 0.008
_sleep = time.sleep  # (tests watch it)


class Pacer:
    """Called between the terms a switching worker warms (``Snapshot.warm``'s ``pause``):
    sleeps ``SWITCH_PAUSE`` once the warm-up has worked ``SWITCH_SLICE`` since the last pause
    and ``busy()`` says a search is running."""

    def __init__(self, busy: Callable[[], bool], clock: Callable[[], float] = time.monotonic):
        self.busy, self.clock = busy, clock
        self.since = clock()
        self.paused = 0.0  # seconds slept, in all

    def __call__(self) -> None:
        if self.clock() - self.since < SWITCH_SLICE:
            return
        if self.busy():
            _sleep(SWITCH_PAUSE)
            self.paused += SWITCH_PAUSE
        self.since = self.clock()


def _counted(method: Callable[..., T]) -> Callable[..., T]:
    """A ``SearchEngine`` method counted among the searches under way while it runs
    (``SearchEngine.searching``)."""

    @functools.wraps(method)
    def counted(self: SearchEngine, *args, **kwargs) -> T:
        with self._running_lock:
            self._running += 1
        try:
            return method(self, *args, **kwargs)
        finally:
            with self._running_lock:
                self._running -= 1

    return counted


class SearchEngine:
    """Searches one index directory; safe to share between threads of one process."""

    def __init__(
        self,
        index_dir: str | Path,
        *,
        warm: bool = True,
        cache_mb: float | None = None,
        settings: Settings | None = None,
        timings: Callable[[str, float], None] | None = None,
        params: RankingParams = DEFAULT_PARAMS,
        switch_when_warm: bool = False,
    ) -> None:
        """``warm``: load each generation's frequent terms in the background (a server); a
        one-off search (the CLI) would only compete with it.  ``cache_mb``: posting arrays kept
        in memory (``Settings.cache_mb``; default: sized to each generation's index,
        ``postings.default_cache_bytes``).  ``settings``: the parameter limits ``search``
        enforces and the snippet width (default: ``Settings()``); ``from_settings`` takes the
        index directory and cache size from them too.  ``timings``: called with ``(step,
        seconds)`` each time a search finishes one of ``STEPS`` (a step can run several times in
        one search); ``bench.latency`` shares a query's time out with it (also settable later as
        the ``timings`` attribute).  ``params``: the ranking's numbers (``RankingParams``;
        ``bench.tune`` tries others).  ``switch_when_warm``: keep serving a generation until
        the next one is warm (``snapshot``; a server's workers), rather than switching at the
        first search that sees it (a library caller expects its reindex to show at once)."""
        self.index_dir = Path(index_dir)
        self.timings = timings
        self.params = params
        self.settings = settings or DEFAULT_SETTINGS
        self._warm = warm
        self._cache_bytes = int(cache_mb * 2**20) if cache_mb else None
        self._snapshot: Snapshot | None = None
        self._lock = threading.Lock()
        self._warming: threading.Thread | None = None
        self._switching: threading.Thread | None = None
        self._switch_when_warm = switch_when_warm
        # The directory's mtime, when it was listed and the generation it held (``_latest``).
        self._listed: tuple[int, float, int] | None = None
        self._running = 0  # searches under way (``searching``)
        self._running_lock = threading.Lock()
        if warm:
            # The compiled loops are loaded here, in the caller's thread, never in the warm-up
            # thread beside searches: numba parses a loop's source (``ast.parse``) when it
            # compiles it, and CPython 3.11 before 3.11.5 (Debian's 3.11.2) corrupts its AST
            # recursion count when two threads build ASTs at once (gh-106905: "SystemError:
            # AST constructor recursion depth mismatch" in the other thread).  0.4 s with
            # numba's cache, once a process; a server's worker loads them before it serves
            # (``web.server``).
            kernels.compiled()

    @classmethod
    def from_settings(cls, settings: Settings, *, warm: bool = True) -> SearchEngine:
        """The engine ``settings`` describe (``search.config.load_settings``); the process
        keeps ``settings.malloc_keep_mb`` of freed memory for its searches (``search.malloc``)."""
        keep_freed_memory(settings.malloc_keep_mb)
        return cls(
            settings.index_dir,
            warm=warm,
            cache_mb=settings.cache_mb,
            settings=settings,
            switch_when_warm=warm,
        )

    # -- generations -------------------------------------------------------------------------

    def _latest(self) -> int:
        """``latest_generation``, listed again only when the directory changed since (its
        mtime: a commit adds a TOC file) or ``RELIST_SECONDS`` passed: a ``stat`` a search
        instead of a listing (~80 us at a million articles).  A listing is reused only when the
        directory had not changed for ``SETTLED_NS`` before it: the kernel stamps mtimes with a
        coarse clock, so a change within the same tick as the listing would keep its mtime."""
        try:
            stamp = os.stat(self.index_dir).st_mtime_ns
        except OSError:
            return latest_generation(self.index_dir)
        now = time.monotonic()
        listed = self._listed
        if listed is not None and listed[0] == stamp and now - listed[1] < RELIST_SECONDS:
            return listed[2]
        latest = latest_generation(self.index_dir)
        settled = time.time_ns() - stamp > SETTLED_NS
        self._listed = (stamp, now, latest) if settled and latest >= 0 else None
        return latest

    def snapshot(self) -> Snapshot:
        """The latest committed generation (opened on first use and after each reindex).

        Each search only lists the directory for the newest TOC file: opening the index to ask
        (twice, with ``exists_in``) unpickled its schema every time, a cost paid by every query
        for an answer that almost never changes.

        With ``switch_when_warm``, a new generation is opened and its frequent terms loaded in a
        background thread while searches go on being served from the current one, which is
        replaced only once the new one is warm: the searches right after a reindex would
        otherwise each load what they need, seconds at a million articles.
        """
        latest = self._latest()
        if latest < 0:
            raise IndexMissing(
                f"Chưa có chỉ mục tại {self.index_dir}. Hãy chạy: vnsearch reindex samples/"
            )
        with self._lock:
            current = self._snapshot
            if current is not None and current.generation == latest:
                return current
            if current is not None and self._switch_when_warm and self._warm:
                switching = self._switching
                if switching is None or not switching.is_alive():
                    self._switching = threading.Thread(
                        target=self._switch, name="vnsearch-switch", daemon=True
                    )
                    self._switching.start()
                return current
            try:
                snap = self._open()
            except (OSError, whoosh_index.EmptyIndexError) as exc:
                if current is not None:
                    return current
                raise IndexMissing(f"Không mở được chỉ mục: {exc}") from exc
            self._snapshot = snap  # the one replaced closes when its last search is done
            # Frequent terms load in the background: this request and the next are served at
            # once, a little slower until the thread is done, rather than the first request
            # of a fresh worker waiting for a load that grows with the archive.
            if self._warm:
                self._warming = threading.Thread(
                    target=_warm, args=(snap,), name="vnsearch-warm", daemon=True
                )
                self._warming.start()
            return snap

    def _open(self) -> Snapshot:
        snap = Snapshot(open_for_reading(self.index_dir), self._cache_bytes, self.params)
        # Label the snapshot with the generation its reader actually read: a commit between
        # listing and opening made it label old data with the new number, served until the
        # next reindex (tests/test_reliability.py::test_engine_serves_the_generation_it_read).
        read = snap.reader.generation()
        if read is not None and read >= 0:
            snap.generation = read
        return snap

    def _switch(self) -> None:
        """Open the latest generation, warm it, then serve it (``switch_when_warm``)."""
        started = time.monotonic()
        try:
            snap = self._open()
        except (OSError, whoosh_index.EmptyIndexError) as exc:
            # Its files still being written (``GenerationPending``), or gone with a newer one:
            # the current generation goes on serving, and the next search tries again.
            log.debug("generation of %s not opened yet: %s", self.index_dir, exc)
            return
        except Exception:
            log.exception("could not open the new generation of %s", self.index_dir)
            return
        with self._lock:
            current = self._snapshot
        if current is not None:
            snap.adopt(current)  # the base arrays its searches used, when the base is the same
        pacer = Pacer(self.searching)
        try:
            _warm(snap, pacer)
        except Exception:  # serve it cold rather than not at all
            log.exception("could not warm the new generation of %s", self.index_dir)
        log.info(
            "generation %d of %s warm in %.2f s (%.2f s left to searches)",
            snap.generation,
            self.index_dir,
            time.monotonic() - started,
            pacer.paused,
        )
        with self._lock:
            current = self._snapshot
            if current is not None and current.generation >= snap.generation:
                snap.close()
                return
            # Not closed here: a search running in another thread may be reading it (its
            # stored text, for the hits).  Its files close when the last one lets it go
            # (``Snapshot``'s finalizer), and stay readable until then.
            self._snapshot = snap

    def searching(self) -> bool:
        """Whether a search is under way in this process (a switch's warm-up yields to it)."""
        return self._running > 0

    def wait_warm(self, timeout: float | None = None) -> None:
        """Block until the current generation's frequent terms are loaded, and a switch to a
        newer one under way is done (benchmarks, tests)."""
        for thread in (self._switching, self._warming):
            if thread is not None:
                thread.join(timeout)

    def close(self) -> None:
        with self._lock:
            if self._snapshot is not None:
                self._snapshot.close()
                self._snapshot = None

    # -- search ------------------------------------------------------------------------------

    def _timed(self, step: str, func: Callable[..., T], *args, **kwargs) -> T:
        """``func(*args, **kwargs)``, its duration reported to ``timings`` as ``step``."""
        timings = self.timings
        if timings is None:
            return func(*args, **kwargs)
        started = time.perf_counter()
        try:
            return func(*args, **kwargs)
        finally:
            timings(step, time.perf_counter() - started)

    def plan(self, q: str, literal: bool = False) -> Plan:
        return parse(q, literal=literal, question_weight=self.params.question_weight)

    def search(
        self,
        q: object,
        page: object = 1,
        per_page: object = DEFAULT_PER_PAGE,
        *,
        source: str | None = None,
        date_from: str | None = None,
        date_to: str | None = None,
        sort: str = "relevance",
        literal: bool = False,
        collapse: bool = True,
    ) -> dict:
        """The API's response body for one query (see docs/CONTRACT.md); ``BadRequest`` for a
        parameter ``check_search`` refuses."""
        return self.search_response(
            q,
            page,
            per_page,
            source=source,
            date_from=date_from,
            date_to=date_to,
            sort=sort,
            literal=literal,
            collapse=collapse,
        ).to_dict()

    @_counted
    def search_response(
        self,
        q: object,
        page: object = 1,
        per_page: object = DEFAULT_PER_PAGE,
        *,
        source: str | None = None,
        date_from: str | None = None,
        date_to: str | None = None,
        sort: str = "relevance",
        literal: bool = False,
        collapse: bool = True,
    ) -> SearchResponse:
        """``search``'s answer as a ``SearchResponse`` (its near-duplicates with their title,
        source and date, which the results page shows and the API leaves out)."""
        started = time.perf_counter()
        checked = check_search(
            q,
            page,
            per_page,
            source=source,
            date_from=date_from,
            date_to=date_to,
            sort=sort,
            literal=literal,
            settings=self.settings,
        )
        # The query is read and echoed as given (a front end passes it stripped, as checked).
        text, page, per_page = q, checked["page"], checked["per_page"]
        source, sort, literal = checked["source"], checked["sort"], checked["literal"]
        date_from, date_to = checked["date_from"], checked["date_to"]
        snap = self._timed("snapshot", self.snapshot)
        plan = self._timed("parse", self.plan, text, literal=literal)
        plan, suggestion = plan.with_restored_accents(snap.accents())
        ranked = Ranked(np.zeros(0, np.int64), np.zeros(0, np.float32), np.zeros(0, np.float32))
        cons = Constraints()
        if not plan.empty:
            cons = self._timed("match_score", constraints, snap, plan)
            ranked = self._timed("match_score", rank, snap, plan, cons.allowed)
            if not ranked.total and not literal and (corrected := correct_typos(snap, plan)):
                # Nothing found: search the index's nearest spellings instead, and say so only
                # when they find something ("Đang hiển thị kết quả cho ..." over no results
                # would only mislead).
                fixed_cons = self._timed("match_score", constraints, snap, corrected)
                fixed = self._timed("match_score", rank, snap, corrected, fixed_cons.allowed)
                if fixed.total:
                    plan, cons, ranked = corrected, fixed_cons, fixed
        docs = ranked.docs
        by_source = source_mask(snap, docs, source)
        by_date = date_mask(snap, docs, date_from, date_to)
        shared = snap.shared_story().take(docs) if collapse else None  # copies of a story
        first = (page - 1) * per_page
        filters = both(by_source, by_date)
        shown, scores, similar, total, exact = self._page_ready(
            snap, cons, ranked.subset(filters), first + per_page, sort, masked(shared, filters)
        )
        good = self._timed("facets_collapse", known_good, cons, docs)
        counts = self._timed(
            "facets_collapse", facets, snap, docs, by_source, by_date, good, shared
        )
        pattern = plan_matcher(plan)
        hits = tuple(
            self._timed(
                "snippets",
                self._hit,
                snap,
                int(shown[position]),
                float(scores[position]),
                pattern,
                similar(position) if similar else (),
            )
            for position in range(first, shown.size)
        )
        return SearchResponse(
            query=text,
            total=total,
            total_relation="eq" if exact else "gte",
            page=page,
            per_page=per_page,
            took_ms=round((time.perf_counter() - started) * 1000, 2),
            interpreted_as=plan.interpreted_as,
            suggestion=suggestion,
            hits=hits,
            facets=counts,
        )

    def _page_ready(
        self,
        snap: Snapshot,
        cons: Constraints,
        candidates: Ranked,
        needed: int,
        sort: str,
        shared: np.ndarray | None,
    ) -> tuple[np.ndarray, np.ndarray, Callable[[int], list[int]] | None, int, bool]:
        """The first ``needed`` hits of the list (docs and scores), the ``similar`` lookup (by
        position in the list), the list's length and whether that length is exact.

        The list is the candidates in order, phrases confirmed, stories collapsed (``shared``:
        which candidates are copies of a story; ``None``: no collapsing).  Only as much of it
        is put in order as the page and the phrase checks look at: when they reach further,
        more is ordered and the steps run again, so the answer is the one ordering every
        candidate would give.
        """
        if cons.doubtful is None and sort != "newest":
            return self._ranked_page(snap, candidates, needed, shared)
        want = needed + 1
        upto = 4 * want
        while True:
            order, ordered = self._timed("match_score", self._ordered, snap, candidates, upto, sort)
            docs = candidates.docs[order]
            confirmed = self._timed("match_score", confirm, snap, cons, docs, want, ordered)
            if confirmed is None:  # the phrase checks need more of the list in order
                upto *= 4
                continue
            kept, exact = confirmed
            out = order[kept]
            similar, total, page = None, out.size, np.arange(min(needed, out.size))
            if shared is not None:
                # Past the ordered part, a story's other members are in docnum order: list them
                # by rank (in newest-first order everything is ordered: keep that order).
                keys = candidates.key[out].take if sort != "newest" else None
                stories = self._timed(
                    "facets_collapse", Stories, snap, candidates.docs[out], keys, shared[out]
                )
                if stories.collapsing:
                    firsts = np.flatnonzero(stories.firsts(np.arange(out.size)))
                    page, total = firsts[:needed], stories.total
                    similar = _similar_by_position(stories, page)
            reach = int(kept[page[-1]]) + 1 if page.size else 0  # the page's last hit
            if reach > ordered:
                upto = max(4 * upto, 2 * reach)
                continue
            if exact or total >= needed:
                shown = out[page]
                return candidates.docs[shown], candidates.scores[shown], similar, total, exact
            want *= 2  # duplicates collapsed away: confirm further down the list
            upto = max(upto, 4 * want)

    def _ranked_page(
        self, snap: Snapshot, candidates: Ranked, needed: int, shared: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray, Callable[[int], list[int]] | None, int, bool]:
        """``_page_ready`` when every candidate is in the list (no phrase to confirm) in rank
        order: only the best are ordered, and stories are worked out over them alone (at a
        million documents a query may hold 400,000 candidates; the page shows ten)."""
        stories = None
        if shared is not None:
            stories = self._timed(
                "facets_collapse", Stories, snap, candidates.docs, candidates.key_at, shared
            )
            stories = stories if stories.collapsing else None
        total = stories.total if stories is not None else candidates.total
        # The page alone: the bounds' threshold is the ``upto``-th best key (``Ranked.best``),
        # and each key past the page lets more candidates through to be looked up and scored
        # (asking for four pages cost 0.5 ms more a query at a million articles).  Where
        # copies of a story take places on it, more are asked for.
        upto = needed
        while True:
            top = self._timed("match_score", candidates.best, upto)
            kept = top if stories is None else top[stories.firsts(top)]
            if kept.size >= needed or top.size == candidates.total:
                page = kept[:needed]
                similar = _similar_by_position(stories, page) if stories is not None else None
                scores = candidates.scores_at(page)
                return candidates.docs[page], scores, similar, total, True
            upto *= 4  # copies of the same stories filled the ordered part

    @staticmethod
    def _ordered(snap: Snapshot, candidates: Ranked, upto: int, sort: str):
        """``Ranked.ordered``, or every candidate newest first (ties in rank order)."""
        if sort != "newest" or not candidates.total:
            return candidates.ordered(upto)
        dates = snap.codes("date")[candidates.docs]  # codes follow the sorted date strings
        return np.lexsort((candidates.docs, -candidates.key, -dates)), candidates.total

    def _hit(
        self, snap: Snapshot, docnum: int, score: float, pattern, similar: Sequence[int] = ()
    ) -> Hit:
        stored, view = _hit_view(snap, docnum)
        return Hit(
            id=stored["id"],
            title=view.title,
            title_html=mark(view.title, find_spans(view.title_text, pattern)),
            url=safe_url(stored.get("url")),
            snippet=snippet(view.text, pattern, self.settings.snippet_chars),
            score=round(score, 4),
            source=stored.get("source") or None,
            date=stored.get("date") or None,
            lead=stored.get("lead") or None,
            similar=tuple(_similar(snap, d) for d in similar),
        )

    # -- documents, health -------------------------------------------------------------------

    def document(self, doc_id: str, q: str | None = None) -> dict:
        snap = self.snapshot()
        docnum = snap.searcher.document_number(id=doc_id)
        if docnum is None:
            raise NotFound(f"Không tìm thấy bài viết «{doc_id}».")
        stored = snap.stored(docnum)
        wanted = parse(q, question_weight=self.params.question_weight) if q and q.strip() else None
        pattern = plan_matcher(wanted) if wanted else None
        title = display_title(stored)
        lead = stored.get("lead") or ""
        body = stored.get("body") or ""
        return {
            "id": stored["id"],
            "title": title,
            "url": safe_url(stored.get("url")),
            "source": stored.get("source") or None,
            "date": stored.get("date") or None,
            "lead": lead,
            "body": body,
            "title_html": mark(title, find_spans(title, pattern)),
            "lead_html": mark(lead, find_spans(lead, pattern)),
            "body_html": paragraphs_html(body, pattern),
        }

    def health(self) -> dict:
        snap = self.snapshot()
        return {"status": "ok", "documents": snap.doc_count, "index_version": snap.generation}

    def suggest(self, prefix: object, limit: int = 8) -> dict:
        """Completions of a partly typed query (``lao c`` -> ``Lào Cai``), at most ``limit``."""
        text = prefix if isinstance(prefix, str) else ""
        text = text[:MAX_SUGGEST_CHARS]
        if not text.strip():
            return {"query": text, "suggestions": []}
        table = self.snapshot().suggestions()
        return {
            "query": text,
            "suggestions": [
                {"text": s.text, "html": highlight_prefix(s.text, text)}
                for s in table.complete(text, limit)
            ],
        }


def _hit_view(snap: Snapshot, docnum: int) -> tuple[dict, HitView]:
    """An article's stored fields and what a hit shows of it (prepared once per article while
    the worker keeps it)."""
    document = snap.document(docnum)
    view = document.derived.get("hit")
    if view is None:
        view = document.derived["hit"] = HitView.of(document.stored)
    return document.stored, view


def _similar_by_position(stories: Stories, page: np.ndarray) -> Callable[[int], list[int]]:
    """The ``similar`` lookup of a page: position on the page -> the other copies' docnums."""
    return lambda position: stories.similar(int(page[position]))


def _similar(snap: Snapshot, docnum: int) -> Similar:
    stored, view = _hit_view(snap, docnum)
    return Similar(
        id=stored["id"],
        title=view.title,
        source=stored.get("source") or None,
        date=stored.get("date") or None,
    )


def _warm(snap: Snapshot, pause: Callable[[], None] | None = None) -> None:
    """Load a new generation's frequent terms and its typo table off the request path (the
    table is built here when the generation has no file of it; ``pause``: called between
    terms, ``Snapshot.warm``)."""
    snap.warm(pause=pause)
    snap.typos()


_TOC_RE = re.compile(r"^_MAIN_(\d+)\.toc$")


def latest_generation(index_dir: Path) -> int:
    """The newest committed generation in ``index_dir`` (-1: no index there), from file names
    alone, as Whoosh itself finds it."""
    try:
        names = os.listdir(index_dir)
    except OSError:
        return -1
    return max((int(m.group(1)) for n in names if (m := _TOC_RE.match(n))), default=-1)


def open_for_reading(index_dir: Path):
    """Open the index without memory-mapping its compound segment files.

    Whoosh wraps each mapped sub-file in ``BytesIO``, which on Python 3 copies it: a private copy
    of the index in every worker, growing with the archive.  Plain file reads share the OS page
    cache between workers instead.
    """
    from whoosh.filedb.filestore import FileStorage

    return FileStorage(str(index_dir), supports_mmap=False).open_index()
