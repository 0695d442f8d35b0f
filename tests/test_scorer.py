"""A query's scores at a few documents are those of scoring every docnum, bit for bit.

``ranking.Scorer`` runs the same steps over every docnum (``dense``) or at chosen documents
(``at``); ``Ranked`` uses either, lazily.  Real articles (a slice of ../shared's vietnews) and
queries in every typed form, abbreviations included (an abbreviation's other form replaces its
words' score: the subtle step).
"""

from __future__ import annotations

import gzip
import itertools
import json
from collections.abc import Iterator

import numpy as np
import pytest

from bench.forms import derive_forms
from search import kernels, ranking
from search.engine import SearchEngine
from search.indexer import reindex
from search.postings import SplitPostings, TermPostings
from search.ranking import Ranked, rank
from tests.conftest import shared_path

ARTICLES = 400
ABBREVIATED = ["UBND tỉnh", "ubnd tinh lao cai", "TP HCM học sinh", "thi THPT quốc gia", "HN"]


@pytest.fixture(scope="module")
def articles() -> list[dict]:
    with gzip.open(shared_path("vietnews", "corpus.jsonl.gz"), "rb") as fh:
        return [json.loads(line) for line in itertools.islice(fh, ARTICLES)]


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory, articles: list[dict]) -> Iterator:
    folder = tmp_path_factory.mktemp("scorer")
    source = folder / "slice.jsonl.gz"
    source.write_bytes(gzip.compress("".join(json.dumps(a) + "\n" for a in articles).encode()))
    reindex(folder / "index", [source], workers=1)
    engine = SearchEngine(folder / "index", warm=False)
    yield engine
    engine.close()


def _queries(articles: list[dict]) -> list[str]:
    """Titles of every 20th article in each typed form, and queries with abbreviations."""
    titles = [a["title"] for a in articles[::20] if a.get("title")]
    return [form for t in titles for form in derive_forms(t).values()] + ABBREVIATED


def _ranked(engine: SearchEngine, q: str) -> Ranked:
    snapshot = engine.snapshot()
    plan, _ = engine.plan(q).with_restored_accents(snapshot.accents())
    return rank(snapshot, plan)


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    """Equal bit for bit (float32 values and their order)."""
    return a.dtype == b.dtype and a.tobytes() == b.tobytes()


def test_scores_at_chosen_documents_equal_scoring_every_docnum(
    engine: SearchEngine, articles: list[dict]
) -> None:
    rng = np.random.default_rng(3)
    size = engine.snapshot().size
    spans = 0
    for q in _queries(articles):
        ranked = _ranked(engine, q)
        scorer = ranked.scorer
        dense = scorer.dense()
        assert dense.dtype == np.float32 and dense.shape == (size,)
        assert _same(scorer.at(ranked.docs), dense.take(ranked.docs)), q
        for share in (0.05, 0.5):  # documents that are no candidate too
            chosen = np.flatnonzero(rng.random(size) < share)
            assert _same(scorer.at(chosen), dense.take(chosen)), q
        spans += any(isinstance(step, ranking._Span) for step in scorer.steps)
    assert spans >= 3  # the abbreviation queries exercised the other forms


def test_the_compiled_loops_score_as_numpy_does(
    engine: SearchEngine, articles: list[dict], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where numba cannot be loaded, numpy's operations give every document the same score,
    bit for bit, over every docnum and at chosen documents: the fallback ranks as the server
    does (``search.kernels``)."""
    assert kernels.compiled()
    queries = _queries(articles)
    compiled = [(_ranked(engine, q).scorer.dense(), _ranked(engine, q)) for q in queries]
    for name in ("_scatter_add", "_count_ones", "_weights_at"):
        monkeypatch.setattr(kernels, name, None)
    for q, (dense, ranked) in zip(queries, compiled, strict=True):
        again = _ranked(engine, q)
        assert again.docs.tolist() == ranked.docs.tolist(), q  # the same counts
        assert _same(again.scorer.dense(), dense), q
        assert _same(again.scorer.at(again.docs), dense.take(again.docs)), q


def test_a_list_scored_at_its_documents_ranks_as_one_scored_over_every_docnum(
    engine: SearchEngine, articles: list[dict], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``Ranked`` scores a short list at its documents and a long one over every docnum
    (``AT_RATIO``): the scores, keys and order are the same either way, and so are the
    ``scores_at`` / ``key_at`` of any positions, in any order."""
    for q in _queries(articles)[::3] + ABBREVIATED:
        ranked = _ranked(engine, q)
        if not ranked.total:
            continue
        lists = []
        for ratio in (0, 10**9):  # over every docnum; at the documents
            monkeypatch.setattr(ranking, "AT_RATIO", ratio)
            lazy = Ranked.scored_by(ranked.docs, ranked.scorer)
            lists.append((lazy.scores, lazy.key, lazy.ordered(10)[0]))
        (scores, key, order), (at_scores, at_key, at_order) = lists
        assert _same(scores, at_scores) and _same(key, at_key), q
        assert order.tolist() == at_order.tolist(), q
        positions = order[::-1][:7]
        lazy = Ranked.scored_by(ranked.docs, ranked.scorer)
        assert _same(lazy.scores_at(positions), scores[positions]), q
        assert _same(lazy.key_at(positions), key[positions]), q


def test_a_ranked_list_needs_its_scores_or_a_scorer() -> None:
    with pytest.raises(ValueError, match="scores and key, or a scorer"):
        Ranked(np.arange(3), np.zeros(3, np.float32))


def test_engine_answers_are_those_of_lists_scored_over_every_docnum(
    engine: SearchEngine, articles: list[dict], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whole responses (hits, scores, copies, facets) with short lists scored at their
    documents, or their best found from bounds, equal those with every list scored over every
    docnum."""
    queries = _queries(articles)[::4] + ABBREVIATED
    answers = []
    monkeypatch.setattr(ranking, "REACH_RATIO", 1)
    for ratio, prune, quantise in ((0, False, True), (10**9, True, True), (10**9, False, True),
                                   (10**9, True, False)):  # fmt: skip
        monkeypatch.setattr(ranking, "AT_RATIO", ratio)
        monkeypatch.setattr(ranking, "PRUNE", prune)
        monkeypatch.setattr(ranking, "QUANTISE", quantise)
        responses = [engine.search(q, per_page=10) for q in queries]
        answers.append([{k: v for k, v in r.items() if k != "took_ms"} for r in responses])
    assert answers[0] == answers[1] == answers[2] == answers[3]
    assert sum(bool(r["hits"]) for r in answers[0]) >= len(queries) // 2


# The partial score in units (of 65,000 to the most it can be, or of 100: a slack the bounds
# must allow for), or exact in float32.
@pytest.mark.parametrize(
    "levels", [ranking.QUANT_LEVELS, 100, 0], ids=["units", "coarse", "float32"]
)
@pytest.mark.parametrize(("upto", "least"), [(1, 100), (10, 25), (44, 8)])
def test_the_best_found_from_bounds_are_those_of_scoring_every_candidate(
    engine: SearchEngine,
    articles: list[dict],
    monkeypatch: pytest.MonkeyPatch,
    upto: int,
    least: int,
    levels: int,
) -> None:
    """A long list's best found from bounds (frequent terms left out of a partial score, the
    candidates that can still reach the page scored whole) are those scoring every candidate
    finds, ties and order included; every key lies within its bounds; and where the bounds
    prune, the other candidates are never scored.  The partial score is exact (float32) or
    whole units of it (uint16) with their slack."""
    quantise = levels > 0
    monkeypatch.setattr(ranking, "QUANTISE", quantise)
    monkeypatch.setattr(ranking, "QUANT_LEVELS", levels)
    monkeypatch.setattr(ranking, "SORT_ALL", 0)
    monkeypatch.setattr(ranking, "AT_RATIO", 10**9)  # every list is a long one
    monkeypatch.setattr(ranking, "REACH_RATIO", 1)  # pruning is never given up
    pruned = abbreviated = quantised_spans = loosened = 0
    for q in _queries(articles) + ABBREVIATED:
        ranked = _ranked(engine, q)
        if ranked.total <= upto:
            continue
        monkeypatch.setattr(ranking, "PRUNE", False)
        whole = Ranked.scored_by(ranked.docs, ranked.scorer)
        expected = whole.best(upto)
        monkeypatch.setattr(ranking, "PRUNE", True)
        lazy = Ranked.scored_by(ranked.docs, ranked.scorer)
        found = lazy.best(upto)
        assert found.tolist() == expected.tolist(), q
        if lazy._scored is not None:  # the best's scores and keys are read, not scored again
            ranked.scorer.at = None  # type: ignore[method-assign]
            assert _same(lazy.scores_at(found[::-1]), whole.scores[found[::-1]]), q
            assert _same(lazy.key_at(found), whole.key[found]), q
            del ranked.scorer.at
        bounds = ranked.scorer.bounds(ranked.docs)
        if bounds is None:
            continue
        scorer = ranked.scorer
        kept = scorer._kept()  # every step before the frequent terms, but the loose ones
        terms = [step for step in kept if isinstance(step, ranking._Term)]
        spans = [step for step in kept if isinstance(step, ranking._Span)]
        words = [sum(t.group in span.positions for t in terms) for span in spans]
        added = len(terms) + sum(k + 1 for k in words)
        fine = levels - 2 * added >= levels // 2  # else too many additions for the units
        units = quantise and fine and all(t.scale >= 0 for t in terms)
        loose = sum(t.scale * t.postings.top for t in scorer.loose)
        assert (bounds.slack > 0) == (units or loose > 0), q
        low = bounds.shown * bounds.factor + bounds.bonus
        tops = sum(t.scale * t.postings.top for t in bounds.deferred)
        high = low + np.float32(tops + bounds.slack)
        assert np.all(whole.key >= low - 1e-5) and np.all(whole.key <= high + 1e-5), q
        if units:  # a unit is a sliver of what the kept steps add at most
            most = sum(t.scale * t.postings.top for t in terms)
            most += sum(float(scorer.other_forms[s.key][1].max(initial=0)) for s in spans)
            unit = most / (levels - 2 * added)
            below = len(terms) / 50 + sum(1.02 * k + 0.01 for k in words)
            above = len(terms) * 1.03 + sum(0.02 * k + 1.01 for k in words)
            assert bounds.slack == pytest.approx((below + above + 0.1) * unit + loose), q
            quantised_spans += bool(spans)
        else:
            assert bounds.slack == pytest.approx(loose), q
        loosened += loose > 0
        reaching = bounds.reaching(upto)
        if reaching is not None:  # the scores it gives are the whole ones, bit for bit
            assert _same(reaching[1], whole.scores[reaching[0]]), q
        if reaching is not None and reaching[0].size < ranked.total:
            pruned += 1
            abbreviated += any(isinstance(step, ranking._Span) for step in ranked.scorer.steps)
            assert lazy._scores is None and lazy._key is None, q  # the rest left unscored
    assert pruned >= least  # of the ~125 queries, this many lists were pruned
    # An abbreviation's other form replaces its words' score: its frequent terms outside the
    # span are still left out of the partial score ('TP HCM' is in a tenth of news titles).
    assert abbreviated >= least // 8 + 1
    # The partial score in units holds abbreviations' other forms too, and leaves out their
    # frequent words ('Việt Nam' beside 'VN').
    assert quantised_spans >= (3 if levels > 1000 else 0)
    assert loosened >= 2


def test_a_terms_top_weight_is_the_largest_it_adds() -> None:
    """``top`` bounds what a term adds to any document's score, whichever arrays hold it."""
    docs = np.array([2, 5, 9], dtype=np.int32)
    sparse = TermPostings(docs, np.array([0.5, 1.75, 0.25], np.float32), 3)
    dense = TermPostings.spread(np.array([0, 0.5, 2.5, 0, 1.0], np.float32), 3)
    split = SplitPostings(sparse, dense, 10, 6)
    assert (sparse.top, dense.top, split.top, TermPostings.empty().top) == (1.75, 2.5, 2.5, 0.0)


def test_a_concept_counted_through_its_term_ranks_as_through_a_mask(
    engine: SearchEngine, articles: list[dict], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A concept with one folded form stands for its documents through its term, no mask over
    every docnum made (``ranking.Hit``): the candidates, the words each document holds and every
    score and rank key are those of the masks, in every typed form, with abbreviations (their
    expansions mark the words they span) and pairs (pooled buckets look their syllables up)."""
    queries = _queries(articles)
    lazy = [_ranked(engine, q) for q in queries]
    score_folded = ranking._score_folded

    def masked(steps, group, snapshot, concept, n):
        hit = score_folded(steps, group, snapshot, concept, n)
        return hit if isinstance(hit, np.ndarray) else hit.mask(snapshot.size).copy()

    monkeypatch.setattr(ranking, "_score_folded", masked)
    masks = {"terms": 0, "masks": 0}
    for q, ranked in zip(queries, lazy, strict=True):
        expected = _ranked(engine, q)
        assert ranked.docs.tolist() == expected.docs.tolist(), q
        assert _same(ranked.scorer.matched, expected.scorer.matched), q
        assert _same(ranked.scorer.dense(), expected.scorer.dense()), q
        assert _same(ranked.key, expected.key), q
        for run, key in ((ranked, "terms"), (expected, "masks")):
            masks[key] += sum(isinstance(e, np.ndarray) for e in run.scorer.exact_all or [])
    # Unaccented words of accented queries: their terms, not masks, decide exact diacritics.
    assert masks["terms"] < masks["masks"]


def test_an_abbreviations_other_form_is_worked_out_once_a_generation(
    engine: SearchEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The documents holding an abbreviation's other form and what it scores there ('TP HCM':
    'thành phố Hồ Chí Minh', 5 ms at a million articles) are kept with the generation: a query
    asking again reads them, read only, and answers as one that worked them out; past
    ``DERIVED_CACHE_BYTES`` the least recently used go and are worked out again."""
    from search import postings

    snapshot = engine.snapshot()
    made: list[tuple] = []
    real = ranking._other_form

    def counting(snap, expansion, concepts, n, weights):
        made.append(expansion.folded)
        return real(snap, expansion, concepts, n, weights)

    monkeypatch.setattr(ranking, "_other_form", counting)
    snapshot._derived.clear()
    snapshot._derived_bytes = 0
    first = [engine.search(q, per_page=10) for q in ABBREVIATED]
    once = len(made)
    assert once >= len(ABBREVIATED)  # each query has an abbreviation or its reading
    again = [engine.search(q, per_page=10) for q in ABBREVIATED]
    assert len(made) == once  # nothing worked out again
    strip = lambda answers: [{k: v for k, v in a.items() if k != "took_ms"} for a in answers]  # noqa: E731
    assert strip(again) == strip(first)
    kept = list(snapshot._derived.values())
    assert kept and all(not a.flags.writeable for arrays in kept for a in arrays)
    arrays_bytes = sum(a.nbytes for arrays in kept for a in arrays)
    assert snapshot._derived_bytes == arrays_bytes + postings.DERIVED_ENTRY_BYTES * len(kept)
    # A bound smaller than any entry: nothing is kept, each query works its forms out again.
    monkeypatch.setattr(postings, "DERIVED_CACHE_BYTES", 0)
    snapshot._derived.clear()
    snapshot._derived_bytes = 0
    made.clear()
    assert strip([engine.search(q, per_page=10) for q in ABBREVIATED]) == strip(first)
    each = len(made)  # a form two queries share is worked out for each of them now
    assert each > once
    assert strip([engine.search(q, per_page=10) for q in ABBREVIATED]) == strip(first)
    assert len(made) == 2 * each and not snapshot._derived
