"""Try ranking weights on the dev split without rebuilding indexes.

    python -m bench.tune --set tier_max_words=4,6,99 --set accented=0.6,1 [--limit 300]
    python -m bench.tune --set K1=0.9,1.6 --set FIELD_B.body=0.5,0.75 --set FIELD_WEIGHTS.lead=1,2
    python -m bench.tune --set MAX_CONCEPTS=64,128 --forms abstract

Uses the cached vnsearch index A of ``bench.relevance`` (build it once with
``python -m bench.relevance --split dev``); prints MRR@10 per title form for every combination.
Ranking weights only change scores, never the index, so each combination costs seconds.
"""

from __future__ import annotations

import argparse
import itertools
from dataclasses import fields, replace

from bench import common
from bench.relevance import TITLE_FORMS, VnsearchSystem, evaluate, workload
from search import postings, query, ranking


def _not_built(dirpath) -> None:
    dirpath.rmdir()
    raise SystemExit(
        f"{dirpath.name} is not built for this code: run python -m bench.relevance --split dev"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", action="append", default=[], help="name=v1,v2,...")
    parser.add_argument("--limit", type=int, default=300)
    parser.add_argument("--forms", default="accented,unaccented,telex,short,short_unaccented")
    args = parser.parse_args()
    names = {f.name: f.type for f in fields(ranking.Weights)}
    module_level = {
        "K1",
        "MAX_CONCEPTS",
        "SENTENCE_WORDS",
        "FIELD_B.title",
        "FIELD_B.lead",
        "FIELD_B.body",
    } | {f"FIELD_WEIGHTS.{f}" for f in ("title", "lead", "body")}
    grid: dict[str, list[float]] = {}
    for item in args.set:
        name, values = item.split("=", 1)
        if name not in names and name not in module_level:
            raise SystemExit(f"unknown weight {name!r}; one of {sorted(names | module_level)}")
        grid[name] = [float(v) for v in values.split(",")]
    work = workload(args.limit, "dev", None)
    system = VnsearchSystem()
    forms = [f for f in args.forms.split(",") if f in TITLE_FORMS or f == "abstract"]
    dirs = {}
    for variant in {"B" if f == "abstract" else "A" for f in forms}:
        fingerprint = "|".join(
            [system.fingerprint(), common.file_fingerprint(common.CORPUS), variant, "None"]
        )
        dirs[variant] = common.cached_index(f"vnsearch-{variant}-all", fingerprint, _not_built)
    print("weights".ljust(50), " ".join(f[:10].rjust(10) for f in forms))
    for combo in itertools.product(*grid.values()) if grid else [()]:
        changes = dict(zip(grid, combo, strict=True))
        typed = {k: (int(v) if names.get(k) in ("int", int) else v) for k, v in changes.items()}
        for name, value in typed.items():  # BM25F constants live in the modules
            if name == "K1":
                postings.K1 = value
            elif name in ("MAX_CONCEPTS", "SENTENCE_WORDS"):
                setattr(query, name, int(value))
            elif "." in name:
                table, field = name.split(".")
                getattr(postings, table)[field] = value
        weights = {k: v for k, v in typed.items() if k in names}
        ranking.DEFAULT_WEIGHTS = replace(ranking.Weights(), **weights)
        ranking.rank.__defaults__ = (None, ranking.DEFAULT_WEIGHTS)
        row = []
        for form in forms:
            # fresh posting arrays each time: field weights are folded into them
            system.open(dirs["B" if form == "abstract" else "A"])
            row.append(evaluate(lambda q: system.search(q, 10), work.forms[form]).mrr)
        label = ", ".join(f"{k}={v}" for k, v in typed.items()) or "defaults"
        print(label.ljust(50), " ".join(f"{m:10.3f}" for m in row), flush=True)
    system.close()


if __name__ == "__main__":
    main()
