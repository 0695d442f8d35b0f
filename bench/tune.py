"""Try ranking weights on the dev split without rebuilding indexes.

    python -m bench.tune --set tier_max_words=4,6,99 --set accented=0.6,1 [--limit 300]
    python -m bench.tune --set K1=0.9,1.6 --set FIELD_B.body=0.5,0.75 --set FIELD_WEIGHTS.lead=1,2
    python -m bench.tune --protocol body --set pair=0.4,0.8 --forms accented,short,abstract
    python -m bench.tune --set MAX_CONCEPTS=64,128 --forms abstract

Uses the cached vnsearch indexes of ``bench.relevance`` (build them once with
``python -m bench.relevance --split dev --systems vnsearch``): ``--protocol current`` (default)
searches title forms in index A and abstracts in index B, ``--protocol body`` every form in index
C (bodies alone).  Prints MRR@10 per form for every combination.  Ranking weights only change
scores, never the index, so each combination costs seconds: each is one
``search.ranking_params.RankingParams`` the engine searches with (other field weights or ``b``
than the stored norms were written with make the snapshot recompute them from the stored field
lengths, as a reindex would).
"""

from __future__ import annotations

import argparse
import itertools
from dataclasses import fields, replace
from pathlib import Path

from bench import common
from bench.relevance import ALL_FORMS, PROTOCOLS, VnsearchSystem, evaluate, workload
from search import query
from search.ranking_params import DEFAULT_PARAMS, RankingParams, Weights
from search.schema import TEXT_FIELDS

MODULE_LEVEL = {
    "K1",
    "question_weight",
    "MAX_CONCEPTS",
    "SENTENCE_WORDS",
    *(f"FIELD_B.{f}" for f in TEXT_FIELDS),
    *(f"FIELD_WEIGHTS.{f}" for f in TEXT_FIELDS),
}


def _not_built(dirpath: Path) -> None:
    dirpath.rmdir()
    raise SystemExit(
        f"{dirpath.name} is not built for this code: run "
        "python -m bench.relevance --split dev --systems vnsearch"
    )


def variant_of(protocol: str, form: str) -> str:
    """The index variant ``form`` is searched in under ``protocol``.

    >>> variant_of("current", "abstract"), variant_of("body", "short")
    ('B', 'C')
    """
    return next(v for v, forms in PROTOCOLS[protocol].items() if form in forms)


def params_of(changes: dict[str, float]) -> RankingParams:
    """The default ``RankingParams`` with ``changes`` (signal weights by name, ``K1``,
    ``FIELD_B.<field>``, ``FIELD_WEIGHTS.<field>``).

    >>> p = params_of({"pair": 0.8, "K1": 1.2, "FIELD_B.body": 0.5})
    >>> p.signals.pair, p.k1, p.b("body"), p.b("title")
    (0.8, 1.2, 0.5, 0.4)
    """
    params = DEFAULT_PARAMS
    signals = {k: v for k, v in changes.items() if k in {f.name for f in fields(Weights)}}
    params = replace(params, signals=replace(params.signals, **signals))
    for name, value in changes.items():
        if name == "K1":
            params = replace(params, k1=value)
        elif name == "question_weight":
            params = replace(params, question_weight=value)
        elif name.startswith("FIELD_"):
            table, field = name.split(".")
            params = params.with_field("b" if table == "FIELD_B" else "weight", field, value)
    return params


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--set", action="append", default=[], help="name=v1,v2,...")
    parser.add_argument("--limit", type=int, default=300)
    parser.add_argument("--protocol", choices=tuple(PROTOCOLS), default="current")
    parser.add_argument("--forms", default=",".join(ALL_FORMS))
    args = parser.parse_args()
    names = {f.name: f.type for f in fields(Weights)}
    grid: dict[str, list[float]] = {}
    for item in args.set:
        name, values = item.split("=", 1)
        if name not in names and name not in MODULE_LEVEL:
            raise SystemExit(f"unknown weight {name!r}; one of {sorted(names | MODULE_LEVEL)}")
        grid[name] = [float(v) for v in values.split(",")]
    work = workload(args.limit, "dev", None)
    system = VnsearchSystem()
    forms = [f for f in args.forms.split(",") if f in ALL_FORMS]
    dirs = {}
    for variant in {variant_of(args.protocol, f) for f in forms}:
        fingerprint = "|".join(
            [system.fingerprint(), common.file_fingerprint(common.CORPUS), variant, "None"]
        )
        dirs[variant] = common.cached_index(f"vnsearch-{variant}-all", fingerprint, _not_built)
    print(f"protocol {args.protocol}, dev split, {args.limit} queries a form")
    print("weights".ljust(50), " ".join(f[:10].rjust(10) for f in forms))
    limits = {name: getattr(query, name) for name in ("MAX_CONCEPTS", "SENTENCE_WORDS")}
    for combo in itertools.product(*grid.values()) if grid else [()]:
        changes = dict(zip(grid, combo, strict=True))
        typed = {k: (int(v) if names.get(k) in ("int", int) else v) for k, v in changes.items()}
        for name, default in limits.items():  # the parser's limits live in its module
            setattr(query, name, int(typed.get(name, default)))
        system.params = params_of({k: v for k, v in typed.items() if k not in limits})
        row = []
        for form in forms:
            # fresh posting arrays each time: k1 and the field weights are folded into them
            system.open(dirs[variant_of(args.protocol, form)])
            row.append(evaluate(lambda q: system.search(q, 10), work.forms[form]).mrr)
        label = ", ".join(f"{k}={v}" for k, v in typed.items()) or "defaults"
        print(label.ljust(50), " ".join(f"{m:10.3f}" for m in row), flush=True)
    system.close()


if __name__ == "__main__":
    main()
