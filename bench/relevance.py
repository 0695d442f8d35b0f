"""Known-item relevance of vnsearch against three references: Whoosh, SQLite FTS5 and Xapian.

    python -m bench.relevance [--limit N] [--split dev|test|all] [--docs N] [--json out.json]
                              [--systems vnsearch,reference,fts5,xapian]
                              [--protocols current,body] [--rebuild] [--no-segmentation]

Vietnews (``../shared/data/vietnews``): every article has a title query and an abstract query.
Two protocols, each run for every form:

* ``current``: a title query must find its article in index A, where every article is indexed
  without its title (lead = abstract, body); an abstract query in index B, without its abstract
  (title, body).
* ``body`` (body only): both must find it in index C, every article without title and abstract,
  as an archive without leads (the ``.txt`` format) holds it.

Each title query is also typed the other ways people type (``bench.forms``): unaccented, Telex,
NFD with the other tone placement, shortened.  Queries are split by a hash of the doc id: 30 %
``dev`` (for tuning), 70 % ``test`` (for reporting).  ``--limit`` samples that many queries per
form, deterministically and the same queries for every title form (0: all).

Systems: ``vnsearch``; ``reference``, the Whoosh "index twice" recipe (``bench.reference``);
``fts5``, SQLite FTS5 (``bench.fts5_ref``); ``xapian``, Xapian through Debian's bindings in a
subprocess (``bench.xapian_ref``).  A reference that cannot run here is skipped with the reason.

Figures: MRR@10, R@1 and R@10 per protocol, form and system; vnsearch's margin over the best
reference; each form's MRR relative to the accented form; and word-boundary F1 of the project's
segmentation (and pyvi's own) on UD Vietnamese-VTB test.  Built indexes are cached in
``bench/out/`` by a fingerprint of the system's code and the corpus.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

from bench import common
from bench.forms import ALL_FORMS, TITLE_FORMS, derive_forms
from bench.fts5_ref import Fts5Reference
from bench.reference import ReferenceIndex
from bench.xapian_ref import DEFAULT_PYTHON, XapianReference

K = 10
DEFAULT_LIMIT = 1000
REPO = common.REPO
SYSTEMS = ("vnsearch", "reference", "fts5", "xapian")
REFERENCES = SYSTEMS[1:]

# Protocol -> index variant -> the forms searched in it.
PROTOCOLS: dict[str, dict[str, tuple[str, ...]]] = {
    "current": {"A": TITLE_FORMS, "B": ("abstract",)},
    "body": {"C": ALL_FORMS},
}
PROTOCOL_LABELS = {
    "current": "current protocol: title queries without the title, abstract queries without "
    "the abstract",
    "body": "body-only protocol: every query on the bodies alone (no title, no abstract)",
}


def body_only(docs: Iterable[common.BenchDoc]) -> list[common.BenchDoc]:
    """Index C: each article without title and abstract, as an archive without leads has it."""
    return [common.BenchDoc(id=d.id, title="", lead="", body=d.body) for d in docs]


VARIANTS: dict[str, Callable[[Iterable[common.BenchDoc]], list[common.BenchDoc]]] = {
    "A": common.without_title,
    "B": common.without_abstract,
    "C": body_only,
}


class System(Protocol):
    """A search system under evaluation."""

    name: str

    def fingerprint(self) -> str: ...
    def build(self, docs: Iterable[common.BenchDoc], dirpath: Path) -> None: ...
    def open(self, dirpath: Path) -> None: ...
    def search(self, query: str, k: int = K) -> list[str]: ...
    def close(self) -> None: ...


class ReferenceSystem(ReferenceIndex):
    """``ReferenceIndex`` with the fingerprint the index cache needs."""

    def fingerprint(self) -> str:
        """Changes when the reference's code changes."""
        return "reference:" + common.source_fingerprint([REPO / "bench" / "reference.py"])


class VnsearchSystem:
    """The adapter to vnsearch itself: ``search.indexer`` builds, ``search.engine`` searches."""

    name = "vnsearch"

    def __init__(self) -> None:
        self._engine = None
        self.errors = 0
        self.params = (
            None  # ``search.ranking_params.RankingParams`` to search with (``bench.tune``)
        )

    @staticmethod
    def unavailable() -> str | None:
        """Why vnsearch cannot be evaluated in this checkout, or ``None`` when it can."""
        try:
            from search import engine, indexer  # noqa: F401
        except ImportError as exc:
            return f"vnsearch not evaluated: {exc}"
        return None

    def fingerprint(self) -> str:
        """Changes when what is indexed changes (ranking changes need no rebuild), the length
        norms written at commit included (``postings.length_norms``, ``store/columns.py``)."""
        from search.schema import SCHEMA_VERSION

        indexed = (
            "text.py",
            "analysis.py",
            "segmentation.py",
            "crf.py",
            "schema.py",
            "documents.py",
            "postings.py",
            "store/columns.py",
        )
        files = [REPO / "search" / name for name in indexed]
        return f"vnsearch:{SCHEMA_VERSION}:" + common.source_fingerprint(files)

    @staticmethod
    def documents(docs: Iterable[common.BenchDoc]) -> Iterable:
        """Bench documents as ``search.documents.Document``."""
        from search.documents import Document

        for doc in docs:
            yield Document(id=doc.id, title=doc.title, lead=doc.lead, body=doc.body)

    def build(self, docs: Iterable[common.BenchDoc], dirpath: Path) -> None:
        """Index ``docs`` with the project's indexer into ``dirpath`` and open it."""
        from search.indexer import build_index

        build_index(self.documents(docs), dirpath)
        self.open(dirpath)

    def open(self, dirpath: Path) -> None:
        """Open the index in ``dirpath`` with ``search.engine.SearchEngine``."""
        from search.engine import SearchEngine

        self.close()
        if self.params is None:
            self._engine = SearchEngine(dirpath)
        else:
            self._engine = SearchEngine(dirpath, params=self.params)

    def search(self, query: str, k: int = K) -> list[str]:
        """Ids of the top ``k`` hits; a query the engine refuses counts as no hits."""
        from search.errors import VnsearchError

        if self._engine is None:
            raise RuntimeError("vnsearch: no index open")
        try:
            body = self._engine.search(query, page=1, per_page=k)
        except VnsearchError:
            self.errors += 1
            return []
        return [hit["id"] for hit in body["hits"]]

    def close(self) -> None:
        """Close the engine."""
        if self._engine is not None:
            self._engine.close()
        self._engine = None


@dataclass
class Metrics:
    """Known-item metrics over one list of queries."""

    n: int
    mrr: float
    r1: float
    r10: float
    ms_per_query: float


def rank_of(hits: Sequence[str], relevant: Iterable[str]) -> int | None:
    """1-based rank of the first relevant hit, ``None`` when none is in ``hits``.

    >>> rank_of(["a", "b", "c"], ["c"]), rank_of(["a"], ["z"])
    (3, None)
    """
    wanted = set(relevant)
    for rank, hit in enumerate(hits, start=1):
        if hit in wanted:
            return rank
    return None


def score(ranks: Sequence[int | None], seconds: float, k: int = K) -> Metrics:
    """MRR@k, R@1 and R@k from the rank of each query's relevant document."""
    n = len(ranks)
    if n == 0:
        return Metrics(0, 0.0, 0.0, 0.0, 0.0)
    top = [r for r in ranks if r is not None and r <= k]
    return Metrics(
        n=n,
        mrr=sum(1.0 / r for r in top) / n,
        r1=sum(1 for r in top if r == 1) / n,
        r10=len(top) / n,
        ms_per_query=1000.0 * seconds / n,
    )


def evaluate(
    search: Callable[[str], list[str]], items: Sequence[tuple[str, tuple[str, ...]]]
) -> Metrics:
    """Run every ``(query text, relevant ids)`` through ``search`` and score the ranks."""
    started = time.perf_counter()
    ranks = [rank_of(search(text), relevant) for text, relevant in items]
    return score(ranks, time.perf_counter() - started)


@dataclass
class Workload:
    """The documents of both indexes and the query texts per form."""

    docs: list[common.BenchDoc]
    forms: dict[str, list[tuple[str, tuple[str, ...]]]]


def workload(limit: int, split: str, docs_limit: int | None) -> Workload:
    """Corpus and sampled queries (``--docs``: the first N docs and only their queries)."""
    docs = common.load_corpus(docs_limit)
    ids = {doc.id for doc in docs}
    titles: list[common.Query] = []
    abstracts: list[common.Query] = []
    for query in common.load_queries():
        doc_id = query.qid.split("#", 1)[0]
        if doc_id not in ids or not common.in_split(doc_id, split):
            continue
        (titles if query.query_type == "title" else abstracts).append(query)
    forms: dict[str, list[tuple[str, tuple[str, ...]]]] = {form: [] for form in ALL_FORMS}
    for query in common.sample(titles, limit):
        for form, text in derive_forms(query.text).items():
            forms[form].append((text, query.relevant_ids))
    forms["abstract"] = [(q.text, q.relevant_ids) for q in common.sample(abstracts, limit)]
    return Workload(docs=docs, forms=forms)


def open_index(
    system: System,
    variant: str,
    docs: list[common.BenchDoc],
    docs_limit: int | None,
    rebuild: bool,
) -> float:
    """Open (building if not cached) ``system``'s index ``A`` or ``B``; returns build seconds."""
    fingerprint = "|".join(
        [system.fingerprint(), common.file_fingerprint(common.CORPUS), variant, str(docs_limit)]
    )
    variant_docs = VARIANTS[variant](docs)
    seconds = 0.0

    def build(dirpath: Path) -> None:
        nonlocal seconds
        print(f"  building {system.name} index {variant} ({len(docs)} docs) ...", flush=True)
        started = time.perf_counter()
        system.build(variant_docs, dirpath)
        system.close()
        seconds = time.perf_counter() - started
        print(f"  built in {seconds:.0f} s", flush=True)

    name = f"{system.name}-{variant}-{docs_limit or 'all'}"
    dirpath = common.cached_index(name, fingerprint, build, rebuild=rebuild)
    system.open(dirpath)
    return seconds


def run_system(
    system: System,
    work: Workload,
    docs_limit: int | None,
    rebuild: bool,
    protocols: Sequence[str] = tuple(PROTOCOLS),
) -> dict[str, dict]:
    """Every form of every protocol through ``system``, each on its protocol's index.

    Returns ``{"build_seconds": {variant: s}, "protocols": {protocol: {form: metrics}}}``.
    """
    print(f"{system.name}:", flush=True)
    result: dict[str, dict] = {"build_seconds": {}, "protocols": {p: {} for p in protocols}}
    for protocol in protocols:
        for variant, forms in PROTOCOLS[protocol].items():
            seconds = open_index(system, variant, work.docs, docs_limit, rebuild)
            result["build_seconds"][variant] = seconds
            try:
                for form in forms:
                    metrics = evaluate(lambda q: system.search(q, K), work.forms[form])
                    result["protocols"][protocol][form] = asdict(metrics)
                    print(
                        f"  {protocol:<7} {form:<17} n={metrics.n:<5} MRR@10={metrics.mrr:.3f} "
                        f"({metrics.ms_per_query:.1f} ms/query)",
                        flush=True,
                    )
            finally:
                system.close()
    return result


# --- word segmentation -------------------------------------------------------------------------


def word_spans(words: Iterable[str], words_only: bool = False) -> set[tuple[int, int]]:
    """Character spans of ``words`` in the text with every space removed.

    With ``words_only``, spans of pure punctuation (no letter or digit) are left out.

    >>> sorted(word_spans(["Lào Cai", "ở", "đâu", "?"]))
    [(0, 6), (6, 7), (7, 10), (10, 11)]
    >>> sorted(word_spans(["Lào Cai", "...", "đâu"], words_only=True))
    [(0, 6), (9, 12)]
    """
    spans: set[tuple[int, int]] = set()
    at = 0
    for word in words:
        length = len("".join(word.split()))
        if length and (not words_only or any(c.isalnum() for c in word)):
            spans.add((at, at + length))
        at += length
    return spans


def _prf(correct: int, gold: int, predicted: int) -> tuple[float, float, float]:
    """Precision, recall and F1 from counts."""
    precision = correct / predicted if predicted else 0.0
    recall = correct / gold if gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def segmentation_f1(
    segment_fn: Callable[[str], list[str]], path: Path | None = None
) -> dict[str, float]:
    """Word-boundary precision, recall and F1 of ``segment_fn`` on UD Vietnamese-VTB.

    ``segment_fn`` maps a sentence to its words (a word's syllables separated by spaces or ``_``).
    Words are compared as character spans of the sentence with spaces removed.  ``f1`` counts
    every token; ``f1_words`` leaves out pure punctuation (``...`` as one token or three does not
    matter to search).  ``mismatched`` counts sentences whose predicted characters differ from the
    gold ones (their spans are scored all the same).
    """
    counts = {"all": [0, 0, 0], "words": [0, 0, 0]}  # correct, gold, predicted
    sentences = mismatched = 0
    for row in common.read_jsonl(path or common.UD_TEST):
        gold_words = row["words"]
        predicted = [w.replace("_", " ") for w in segment_fn(row["text"])]
        if "".join("".join(predicted).split()) != "".join("".join(gold_words).split()):
            mismatched += 1
        for key, words_only in (("all", False), ("words", True)):
            gold = word_spans(gold_words, words_only)
            guess = word_spans(predicted, words_only)
            counts[key][0] += len(gold & guess)
            counts[key][1] += len(gold)
            counts[key][2] += len(guess)
        sentences += 1
    precision, recall, f1 = _prf(*counts["all"])
    _, _, f1_words = _prf(*counts["words"])
    return {
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "f1_words": f1_words,
        "sentences": sentences,
        "mismatched": mismatched,
    }


def pyvi_segment(text: str) -> list[str]:
    """pyvi's own segmentation: ``ViTokenizer.tokenize`` split on spaces."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SyntaxWarning)
        from pyvi import ViTokenizer
    return ViTokenizer.tokenize(text).split()


def analyzer_segment(text: str) -> list[str]:
    """The project's segmentation: ``search.analysis`` pieces grouped by pyvi word starts."""
    from search.analysis import pieces
    from search.segmentation import word_starts

    found = pieces(text)
    starts = word_starts([p.text for p in found])
    words: list[str] = []
    begin = 0
    for i in range(1, len(found) + 1):
        if i == len(found) or starts[i]:
            words.append(text[found[begin].start : found[i - 1].end])
            begin = i
    return words


def segmentation_report() -> dict[str, dict[str, float] | str]:
    """F1 of pyvi itself and of the project's analyzer (or why the latter is missing)."""
    report: dict[str, dict[str, float] | str] = {"pyvi": segmentation_f1(pyvi_segment)}
    try:
        report["vnsearch"] = segmentation_f1(analyzer_segment)
    except ImportError as exc:
        report["vnsearch"] = f"unavailable: {exc}"
    return report


# --- output ------------------------------------------------------------------------------------

# Each form's MRR is compared with its base form's: the ratio goals of issue 16 (the NFD form
# must equal its base, within ``NFD_TOLERANCE``).
RATIO_BASE = {
    "unaccented": "accented",
    "telex": "accented",
    "nfd_other_tone": "accented",
    "short_unaccented": "short",
}
RATIO_GOALS = {"unaccented": 0.95, "telex": 0.92, "short_unaccented": 0.85}
NFD_TOLERANCE = 0.005
# MRR@10 margins over the best reference that the body-only protocol aims at.
MARGIN_GOALS = {"accented": 0.035, "short": 0.05, "abstract": 0.02}


def best_reference(results: dict[str, dict], protocol: str, form: str) -> tuple[str, float] | None:
    """The reference with the highest MRR@10 on ``form`` of ``protocol``, and that MRR."""
    found = [
        (results[name]["protocols"][protocol][form]["mrr"], name)
        for name in REFERENCES
        if form in results.get(name, {}).get("protocols", {}).get(protocol, {})
    ]
    if not found:
        return None
    mrr, name = max(found)
    return name, mrr


def ratio(forms: dict[str, dict], form: str) -> float | None:
    """``form``'s MRR@10 over its base form's (``RATIO_BASE``); ``None`` without both.

    >>> ratio({"short": {"mrr": 0.5}, "short_unaccented": {"mrr": 0.45}}, "short_unaccented")
    0.9
    """
    base = forms.get(RATIO_BASE.get(form, ""))
    mine = forms.get(form)
    if not base or not mine or not base["mrr"]:
        return None
    return mine["mrr"] / base["mrr"]


def goal_cell(results: dict[str, dict], protocol: str, form: str) -> str:
    """The goal of issue 16 for one cell of the vnsearch column, and whether it is met."""
    forms = results.get("vnsearch", {}).get("protocols", {}).get(protocol, {})
    if form not in forms:
        return ""
    if form in MARGIN_GOALS and protocol == "body":
        best = best_reference(results, protocol, form)
        if best is None:
            return ""
        margin = forms[form]["mrr"] - best[1]
        ok = margin >= MARGIN_GOALS[form]
        return f"best+{MARGIN_GOALS[form]:.3f} {'ok' if ok else 'MISSED'}"
    if form == "nfd_other_tone" and "accented" in forms:
        ok = abs(forms[form]["mrr"] - forms["accented"]["mrr"]) <= NFD_TOLERANCE
        return f"=acc±{NFD_TOLERANCE} {'ok' if ok else 'MISSED'}"
    value = ratio(forms, form)
    if form in RATIO_GOALS and value is not None:
        ok = value >= RATIO_GOALS[form]
        return f"≥{RATIO_GOALS[form]:.2f}× {'ok' if ok else 'MISSED'}"
    return ""


def _mrr(metrics: dict | None, key: str = "mrr") -> str:
    return f"{metrics[key]:.3f}" if metrics else "-"


def table(results: dict[str, dict], protocol: str) -> str:
    """One protocol's figures as a fixed-width table: one row per form, every system's MRR@10
    (vnsearch's R@1 and R@10 too), the best reference, vnsearch's margin over it, vnsearch's
    ratio to the base form, and the goal."""

    def forms_of(name: str) -> dict[str, dict]:
        return results.get(name, {}).get("protocols", {}).get(protocol, {})

    vn = forms_of("vnsearch")
    header = (
        f"{'form':<17} {'n':>5} | {'vnsearch':>8} {'R@1':>5} {'R@10':>5} | "
        f"{'whoosh2x':>8} {'fts5':>6} {'xapian':>6} | {'best ref':>8} {'vn-best':>7} | "
        f"{'vn/base':>7} | goal"
    )
    lines = [PROTOCOL_LABELS[protocol], header, "-" * (len(header) + 12)]
    for form in ALL_FORMS:
        cells = {name: forms_of(name).get(form) for name in SYSTEMS}
        if not any(cells.values()):
            continue
        n = next(m for m in cells.values() if m)["n"]
        v = cells["vnsearch"]
        best = best_reference(results, protocol, form)
        best_cell = f"{best[1]:.3f}" if best else "-"
        margin = f"{v['mrr'] - best[1]:+.3f}" if v and best else "-"
        value = ratio(vn, form)
        ratio_cell = f"{value:.3f}" if value is not None else "-"
        lines.append(
            f"{form:<17} {n:>5} | {_mrr(v):>8} {_mrr(v, 'r1'):>5} {_mrr(v, 'r10'):>5} | "
            f"{_mrr(cells['reference']):>8} {_mrr(cells['fts5']):>6} {_mrr(cells['xapian']):>6} | "
            f"{best_cell:>8} {margin:>7} | {ratio_cell:>7} | {goal_cell(results, protocol, form)}"
        )
    return "\n".join(lines)


def add_ratios(results: dict[str, dict]) -> None:
    """Store each form's MRR/R@1/R@10 relative to the accented form, per system and protocol."""
    for system in results.values():
        system["ratio_to_accented"] = {}
        for protocol, forms in system.get("protocols", {}).items():
            base = forms.get("accented")
            if not base:
                continue
            system["ratio_to_accented"][protocol] = {
                form: {k: (m[k] / base[k] if base[k] else None) for k in ("mrr", "r1", "r10")}
                for form, m in forms.items()
            }


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.relevance", description=(__doc__ or "").split("\n")[0]
    )
    parser.add_argument(
        "--limit",
        type=int,
        default=DEFAULT_LIMIT,
        help=f"queries per form, sampled deterministically (0: all; default {DEFAULT_LIMIT})",
    )
    parser.add_argument(
        "--split",
        choices=common.SPLITS,
        default="test",
        help="dev = the 30%% tune split, test = the 70%% report split (default), all",
    )
    parser.add_argument(
        "--docs",
        type=int,
        default=0,
        help="index only the first N documents, and only their queries (development)",
    )
    parser.add_argument(
        "--systems",
        default=",".join(SYSTEMS),
        help=f"comma-separated systems to run ({', '.join(SYSTEMS)})",
    )
    parser.add_argument(
        "--protocols",
        default=",".join(PROTOCOLS),
        help="comma-separated protocols: current (title or abstract removed), body (body only)",
    )
    parser.add_argument(
        "--xapian-python",
        default=DEFAULT_PYTHON,
        help=f"the Python with Xapian's bindings (default {DEFAULT_PYTHON})",
    )
    parser.add_argument("--json", type=Path, help="write every figure to this JSON file")
    parser.add_argument("--rebuild", action="store_true", help="rebuild cached indexes")
    parser.add_argument(
        "--no-segmentation", action="store_true", help="skip the word-segmentation F1"
    )
    return parser.parse_args(argv)


def make_systems(names: Sequence[str], xapian_python: str) -> tuple[list[System], dict[str, str]]:
    """The systems to run, and why each of the others named cannot run here."""
    systems: list[System] = []
    skipped: dict[str, str] = {}
    for name in names:
        candidate: System
        if name == "reference":
            candidate, reason = ReferenceSystem(), None
        elif name == "vnsearch":
            candidate, reason = VnsearchSystem(), VnsearchSystem.unavailable()
        elif name == "fts5":
            candidate, reason = Fts5Reference(), Fts5Reference.unavailable()
        elif name == "xapian":
            xapian = XapianReference(xapian_python)
            candidate, reason = xapian, xapian.unavailable()
        else:
            sys.exit(f"bench.relevance: unknown system {name!r} ({', '.join(SYSTEMS)})")
        if reason:
            print(f"skipped: {reason}", file=sys.stderr, flush=True)
            skipped[name] = reason
        else:
            systems.append(candidate)
    return systems, skipped


def main(argv: Sequence[str] | None = None) -> int:
    """Run the evaluation and print (and optionally save) the figures."""
    args = parse_args(argv)
    for path in (common.CORPUS, common.QUERIES):
        common.require(path)
    protocols = [p.strip() for p in args.protocols.split(",") if p.strip()]
    for protocol in protocols:
        if protocol not in PROTOCOLS:
            sys.exit(f"bench.relevance: unknown protocol {protocol!r} ({', '.join(PROTOCOLS)})")
    docs_limit = args.docs or None
    started = time.perf_counter()
    work = workload(args.limit, args.split, docs_limit)
    print(
        f"corpus: {len(work.docs)} docs; split={args.split}; "
        f"{len(work.forms['accented'])} title and {len(work.forms['abstract'])} abstract queries",
        flush=True,
    )
    names = [s.strip() for s in args.systems.split(",") if s.strip()]
    systems, skipped = make_systems(names, args.xapian_python)

    results: dict[str, dict] = {}
    for system in systems:
        results[system.name] = run_system(system, work, docs_limit, args.rebuild, protocols)
        if isinstance(system, VnsearchSystem) and system.errors:
            results[system.name]["refused_queries"] = system.errors
    add_ratios(results)

    for protocol in protocols:
        print()
        print(table(results, protocol))
    for name, reason in skipped.items():
        print(f"({name} skipped: {reason})")
    segmentation = {} if args.no_segmentation else segmentation_report()
    if segmentation:
        print()
        print("word-boundary F1 on UD Vietnamese-VTB test:")
        for name, figures in segmentation.items():
            if isinstance(figures, dict):
                print(
                    f"  {name:<9} P={figures['precision']:.4f} R={figures['recall']:.4f} "
                    f"F1={figures['f1']:.4f} F1(words only)={figures['f1_words']:.4f} "
                    f"({figures['sentences']} sentences, "
                    f"{figures['mismatched']} with other characters)"
                )
            else:
                print(f"  {name:<9} {figures}")
    elapsed = time.perf_counter() - started
    print(f"\n({elapsed:.0f} s)")

    if args.json:
        payload = {
            "settings": {
                "limit": args.limit,
                "split": args.split,
                "docs": len(work.docs),
                "k": K,
                "protocols": protocols,
                "title_queries": len(work.forms["accented"]),
                "abstract_queries": len(work.forms["abstract"]),
            },
            "systems": results,
            "skipped": skipped,
            "segmentation": segmentation,
            "seconds": elapsed,
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(payload, ensure_ascii=False, indent=2) + "\n", "utf-8")
        print(f"figures written to {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
