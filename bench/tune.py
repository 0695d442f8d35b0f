"""Try ranking weights on the dev split without rebuilding indexes.

    python -m bench.tune --set tier_max_words=4,6,99 --set coordination=1,2 [--limit 300]

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
from search import ranking


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", action="append", default=[], help="name=v1,v2,...")
    parser.add_argument("--limit", type=int, default=300)
    parser.add_argument("--forms", default="accented,unaccented,telex,short,short_unaccented")
    args = parser.parse_args()
    names = {f.name: f.type for f in fields(ranking.Weights)}
    grid: dict[str, list[float]] = {}
    for item in args.set:
        name, values = item.split("=", 1)
        if name not in names:
            raise SystemExit(f"unknown weight {name!r}; one of {sorted(names)}")
        grid[name] = [float(v) for v in values.split(",")]
    work = workload(args.limit, "dev", None)
    system = VnsearchSystem()
    fingerprint = "|".join(
        [system.fingerprint(), common.file_fingerprint(common.CORPUS), "A", "None"]
    )
    dirpath = common.cached_index("vnsearch-A-all", fingerprint, None, rebuild=False)
    system.open(dirpath)
    forms = [f for f in args.forms.split(",") if f in TITLE_FORMS]
    print("weights".ljust(50), " ".join(f[:10].rjust(10) for f in forms))
    for combo in itertools.product(*grid.values()) if grid else [()]:
        changes = dict(zip(grid, combo, strict=True))
        typed = {k: (int(v) if names[k] in ("int", int) else v) for k, v in changes.items()}
        ranking.DEFAULT_WEIGHTS = replace(ranking.Weights(), **typed)
        ranking.rank.__defaults__ = (None, ranking.DEFAULT_WEIGHTS)
        row = [evaluate(lambda q: system.search(q, 10), work.forms[f]).mrr for f in forms]
        label = ", ".join(f"{k}={v}" for k, v in typed.items()) or "defaults"
        print(label.ljust(50), " ".join(f"{m:10.3f}" for m in row), flush=True)
    system.close()


if __name__ == "__main__":
    main()
