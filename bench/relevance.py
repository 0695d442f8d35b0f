"""Known-item relevance of vnsearch against the "index twice" Whoosh reference.

    python -m bench.relevance [--limit N] [--split dev|test|all] [--docs N] [--json out.json]
                              [--systems vnsearch,reference] [--rebuild] [--no-segmentation]

Protocol (vietnews, ``../shared/data/vietnews``): every article has a title query and an abstract
query.  A title query must find its article in index A, where every article is indexed without its
title (lead = abstract, body); an abstract query must find it in index B, without its abstract
(title, body).  Each title query is also typed the other ways people type (``bench.forms``):
unaccented, Telex, NFD with the other tone placement, shortened.  Queries are split by a hash of
the doc id: 30 % ``dev`` (for tuning), 70 % ``test`` (for reporting).  ``--limit`` samples that many
queries per form, deterministically and the same queries for every title form (0: all).

Figures: MRR@10, R@1 and R@10 per form and system, each form's MRR relative to the accented form,
and word-boundary F1 of the project's segmentation (and pyvi's own) on UD Vietnamese-VTB test.
Built indexes are cached in ``bench/out/`` by a fingerprint of the system's code and the corpus.
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
from bench.reference import ReferenceIndex

K = 10
DEFAULT_LIMIT = 1000
REPO = common.REPO


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

    @staticmethod
    def unavailable() -> str | None:
        """Why vnsearch cannot be evaluated in this checkout, or ``None`` when it can."""
        try:
            from search import engine, indexer  # noqa: F401
        except ImportError as exc:
            return f"vnsearch not evaluated: {exc}"
        return None

    def fingerprint(self) -> str:
        """Changes when what is indexed changes (ranking changes need no rebuild)."""
        from search.schema import SCHEMA_VERSION

        indexed = (
            "text.py",
            "analysis.py",
            "segmentation.py",
            "crf.py",
            "schema.py",
            "documents.py",
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
        self._engine = SearchEngine(dirpath)

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
    variant_docs = common.without_title(docs) if variant == "A" else common.without_abstract(docs)
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
    system: System, work: Workload, docs_limit: int | None, rebuild: bool
) -> dict[str, object]:
    """Every form through ``system``: title forms on index A, the abstract form on index B."""
    print(f"{system.name}:", flush=True)
    result: dict[str, object] = {"build_seconds": {}, "forms": {}}
    for variant, forms in (("A", TITLE_FORMS), ("B", ("abstract",))):
        seconds = open_index(system, variant, work.docs, docs_limit, rebuild)
        result["build_seconds"][variant] = seconds
        try:
            for form in forms:
                metrics = evaluate(lambda q: system.search(q, K), work.forms[form])
                result["forms"][form] = asdict(metrics)
                print(
                    f"  {form:<17} n={metrics.n:<5} MRR@10={metrics.mrr:.3f} "
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


def _cell(metrics: dict | None, key: str) -> str:
    return f"{metrics[key]:.3f}" if metrics else "  -  "


def table(results: dict[str, dict]) -> str:
    """The figures as a fixed-width table: one row per form."""
    vn = results.get("vnsearch", {}).get("forms", {})
    ref = results.get("reference", {}).get("forms", {})
    header = (
        f"{'form':<17} {'n':>5} | {'vn MRR':>6} {'R@1':>5} {'R@10':>5} | "
        f"{'ref MRR':>7} {'R@1':>5} {'R@10':>5} | {'vn/acc':>6} {'ref/acc':>7}"
    )
    lines = [header, "-" * len(header)]
    for form in ALL_FORMS:
        v, r = vn.get(form), ref.get(form)
        n = (v or r or {}).get("n", 0)
        ratios = []
        for forms, m in ((vn, v), (ref, r)):
            base = forms.get("accented")
            ratios.append(m["mrr"] / base["mrr"] if m and base and base["mrr"] else None)
        vn_ratio = f"{ratios[0]:.2f}" if ratios[0] is not None else "-"
        ref_ratio = f"{ratios[1]:.2f}" if ratios[1] is not None else "-"
        lines.append(
            f"{form:<17} {n:>5} | {_cell(v, 'mrr'):>6} {_cell(v, 'r1'):>5} {_cell(v, 'r10'):>5} | "
            f"{_cell(r, 'mrr'):>7} {_cell(r, 'r1'):>5} {_cell(r, 'r10'):>5} | "
            f"{vn_ratio:>6} {ref_ratio:>7}"
        )
    return "\n".join(lines)


def add_ratios(results: dict[str, dict]) -> None:
    """Store each form's MRR/R@1/R@10 relative to the accented form, per system."""
    for system in results.values():
        forms = system.get("forms", {})
        base = forms.get("accented")
        if not base:
            continue
        system["ratio_to_accented"] = {
            form: {key: (m[key] / base[key] if base[key] else None) for key in ("mrr", "r1", "r10")}
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
        default="vnsearch,reference",
        help="comma-separated systems to run (vnsearch, reference)",
    )
    parser.add_argument("--json", type=Path, help="write every figure to this JSON file")
    parser.add_argument("--rebuild", action="store_true", help="rebuild cached indexes")
    parser.add_argument(
        "--no-segmentation", action="store_true", help="skip the word-segmentation F1"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the evaluation and print (and optionally save) the figures."""
    args = parse_args(argv)
    for path in (common.CORPUS, common.QUERIES):
        common.require(path)
    docs_limit = args.docs or None
    started = time.perf_counter()
    work = workload(args.limit, args.split, docs_limit)
    print(
        f"corpus: {len(work.docs)} docs; split={args.split}; "
        f"{len(work.forms['accented'])} title and {len(work.forms['abstract'])} abstract queries",
        flush=True,
    )
    systems: list[System] = []
    skipped: dict[str, str] = {}
    for name in [s.strip() for s in args.systems.split(",") if s.strip()]:
        if name == "reference":
            systems.append(ReferenceSystem())
        elif name == "vnsearch":
            reason = VnsearchSystem.unavailable()
            if reason:
                print(reason, file=sys.stderr)
                skipped[name] = reason
            else:
                systems.append(VnsearchSystem())
        else:
            sys.exit(f"bench.relevance: unknown system {name!r} (vnsearch, reference)")

    results: dict[str, dict] = {}
    for system in systems:
        results[system.name] = run_system(system, work, docs_limit, args.rebuild)
        if isinstance(system, VnsearchSystem) and system.errors:
            results[system.name]["refused_queries"] = system.errors
    add_ratios(results)

    print()
    print(table(results))
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
