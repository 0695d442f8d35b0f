"""What the typo fallback costs: made-up and mistyped words against plain queries, in-process.

    python -m bench.typos --index DIR [--repeat 5]

A query that finds nothing is searched again with its unknown words corrected
(``search/typos.py``).  This prints, per case, the median time of ``SearchEngine.search`` and its
multiple of a plain query's median (issue 15's goal: no query above 25x a plain one), and what the
correction made of the query.  The first typo query of a generation builds its table: that one
is printed apart.
"""

from __future__ import annotations

import argparse
import random
import statistics
import string
import time
from pathlib import Path

PLAIN = [
    "lào cai",
    "giá vàng hôm nay",
    "hà nội mưa lớn",
    "thi tốt nghiệp",
    "bong da viet nam",
    "covid 19",
    "xuất khẩu gạo",
    "tai nan giao thong",
]


def made_up_words(count: int, letters: int, seed: int = 15) -> str:
    rng = random.Random(seed)
    return " ".join(
        "t" + "".join(rng.choice(string.ascii_lowercase) for _ in range(letters - 1))
        for _ in range(count)
    )


CASES = {
    "64 made-up words of 14 letters": made_up_words(64, 14),
    "8 made-up words of 20 letters": made_up_words(8, 20, seed=16),
    "one made-up word of 14 letters": made_up_words(1, 14, seed=17),
    "hanoii": "hanoii",
    "vietnamm": "vietnamm",
    "giao thongg": "giao thongg",
    "covdi": "covdi",
    "thanh phoo": "thanh phoo",
}


def timed(engine, query: str, repeat: int) -> tuple[float, dict]:
    times = []
    result: dict = {}
    for _ in range(repeat):
        started = time.perf_counter()
        result = engine.search(query)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    from search.engine import SearchEngine

    engine = SearchEngine(args.index, warm=False)
    for query in PLAIN:  # open the generation, load the plain queries' terms
        engine.search(query)
    started = time.perf_counter()
    engine.search("bcdfgbcdfgh")
    first = (time.perf_counter() - started) * 1000
    plain = statistics.median(timed(engine, q, args.repeat)[0] for q in PLAIN)
    print(f"index {args.index}: {engine.snapshot().doc_count} documents")
    print(f"plain query median {plain:.2f} ms; first typo query (builds the table) {first:.1f} ms")
    print(f"{'case':34} {'ms':>9} {'x plain':>8}  interpreted as")
    for name, query in CASES.items():
        ms, result = timed(engine, query, args.repeat)
        shown = (result.get("interpreted_as") or "-")[:40]
        print(f"{name:34} {ms:9.2f} {ms / plain:8.1f}  {shown}")
    engine.close()


if __name__ == "__main__":
    main()
