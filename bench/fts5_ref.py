"""SQLite FTS5 as a relevance reference, set up as its documentation suggests for Vietnamese.

FTS5 has no Vietnamese tokenizer; its documentation's answer for accented Latin text is the
``unicode61`` tokenizer with ``remove_diacritics 2``: every syllable is lower-cased and stripped of
its diacritics, in the documents and in the query alike.  So ``bán``, ``bạn`` and ``bàn`` are one
term, and ``đ`` stays ``đ`` (it is a letter of its own to Unicode, not ``d`` with a mark): an
unaccented ``dong`` never meets ``đồng``.  Documents and queries are NFC first (FTS5 folds only
precomposed letters).  Title, lead and body are columns of one table, ranked by the built-in
``bm25()`` with a weight per column; a query is each of its words, quoted, joined by ``OR``.

Only the standard library: Python's ``sqlite3`` ships FTS5 on every platform the project uses.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterable
from pathlib import Path

from bench import common
from bench.xapian_ref import DocLike, nfc  # (standard library only, like this module)

DB_NAME = "fts5.sqlite"
TOKENIZE = "unicode61 remove_diacritics 2"
_WORD_RE = re.compile(r"\w+")


def match_expression(query: str) -> str:
    """The FTS5 query: every word of ``query`` quoted, joined by ``OR`` ("" when it has none).

    Quoting keeps FTS5's own syntax (``AND``, ``NOT``, ``-``, ``*``, ``:``) out of the way.

    >>> match_expression('Đà Nẵng: "AND" - 2017')
    '"Đà" OR "Nẵng" OR "AND" OR "2017"'
    """
    return " OR ".join(f'"{word}"' for word in _WORD_RE.findall(nfc(query)))


class Fts5Reference:
    """Build, open and search an FTS5 index of ``title``, ``lead`` and ``body``."""

    name = "fts5"
    # bm25() weights of title and lead against the body's 1 (chosen on the dev split).
    TITLE_WEIGHT = 4.0
    LEAD_WEIGHT = 2.0

    def __init__(self) -> None:
        self._db: sqlite3.Connection | None = None
        self._ids: list[str] = []

    @staticmethod
    def unavailable() -> str | None:
        """Why FTS5 cannot be evaluated with this Python's SQLite, or ``None`` when it can."""
        try:
            with sqlite3.connect(":memory:") as db:
                db.execute(f"CREATE VIRTUAL TABLE t USING fts5(a, tokenize='{TOKENIZE}')")
        except sqlite3.Error as exc:
            return f"fts5 not evaluated: this Python's SQLite has no FTS5 ({exc})"
        return None

    def fingerprint(self) -> str:
        """Changes when this module or the SQLite library changes."""
        source = common.source_fingerprint([Path(__file__)])
        return f"fts5:{sqlite3.sqlite_version}:{source}"

    def build(self, docs: Iterable[DocLike], dirpath: Path) -> None:
        """Index ``docs`` into ``dirpath/fts5.sqlite`` (rowid = order of ``docs``) and open it."""
        self.close()
        path = Path(dirpath) / DB_NAME
        path.unlink(missing_ok=True)
        with sqlite3.connect(path) as db:
            db.execute(
                f"CREATE VIRTUAL TABLE docs USING fts5(title, lead, body, tokenize='{TOKENIZE}')"
            )
            db.execute("CREATE TABLE ids (rowid INTEGER PRIMARY KEY, id TEXT NOT NULL)")
            for rowid, doc in enumerate(docs, start=1):
                db.execute("INSERT INTO ids VALUES (?, ?)", (rowid, doc.id))
                db.execute(
                    "INSERT INTO docs (rowid, title, lead, body) VALUES (?, ?, ?, ?)",
                    (rowid, nfc(doc.title or ""), nfc(doc.lead or ""), nfc(doc.body or "")),
                )
            db.execute("INSERT INTO docs (docs) VALUES ('optimize')")
        db.close()
        self.open(dirpath)

    def open(self, dirpath: Path) -> None:
        """Open an index built earlier with ``build``."""
        self.close()
        self._db = sqlite3.connect(Path(dirpath) / DB_NAME, check_same_thread=False)
        self._ids = [""] + [row[0] for row in self._db.execute("SELECT id FROM ids ORDER BY rowid")]

    def search(self, query: str, k: int = 10) -> list[str]:
        """Ids of the top ``k`` documents by ``bm25()`` (ties: the earlier document)."""
        if self._db is None:
            raise RuntimeError("fts5: no index open")
        expression = match_expression(query)
        if not expression:
            return []
        rows = self._db.execute(
            "SELECT rowid FROM docs WHERE docs MATCH ? ORDER BY bm25(docs, ?, ?, 1.0), rowid "
            "LIMIT ?",
            (expression, self.TITLE_WEIGHT, self.LEAD_WEIGHT, k),
        )
        return [self._ids[rowid] for (rowid,) in rows]

    def close(self) -> None:
        """Close the database."""
        if self._db is not None:
            self._db.close()
        self._db = None
