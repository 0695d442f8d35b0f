"""Xapian as a relevance reference, set up as its documentation suggests for Vietnamese.

Xapian has no Vietnamese stemmer or segmenter; its documentation indexes free text with a
``TermGenerator`` (words, lower case, positions) and searches it with a ``QueryParser`` under
BM25 (``BM25Weight``, its default), a field weighing more through ``index_text``'s ``wdf_inc``.
For a language written with and without diacritics, the documented way is a second, folded copy
of the text under a term prefix: here every field is indexed as written (NFC) and, under ``XF``,
diacritic-folded (NFD without combining marks, ``đ`` -> ``d``).  A query is parsed as typed and,
folded, against the ``XF`` terms; the two are OR-ed.

The Python bindings come with the operating system (Debian's ``python3-xapian``), for the system
Python rather than the project's virtual environment, so the index is built and searched in a
subprocess (``python3 bench/xapian_ref.py build|search DIR``, JSON lines over stdin/stdout) and
this module is standard library only.  ``XapianReference.unavailable()`` says when it is missing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import unicodedata
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Protocol

# The interpreter with Debian's bindings (``--xapian-python`` of ``bench.relevance``).
DEFAULT_PYTHON = os.environ.get("VNSEARCH_XAPIAN_PYTHON", "/usr/bin/python3")
FOLDED_PREFIX = "XF"
DB_NAME = "xapian.db"
# wdf_inc of title and lead against the body's 1 (chosen on the dev split).
TITLE_WDF = 4
LEAD_WDF = 2
BM25_K1 = 1.0
BM25_B = 0.5


class DocLike(Protocol):
    """What the reference reads from a document."""

    id: str
    title: str
    lead: str
    body: str


def nfc(text: str) -> str:
    """Unicode NFC (Xapian compares the bytes of its terms: NFD text would be other terms)."""
    return unicodedata.normalize("NFC", text)


def fold(text: str) -> str:
    """Diacritics removed (``đ`` -> ``d``), NFC.

    >>> fold("Đà Nẵng, thuỷ điện")
    'Da Nang, thuy dien'
    """
    stripped = "".join(
        c for c in unicodedata.normalize("NFD", text) if not unicodedata.combining(c)
    )
    return nfc(stripped.replace("đ", "d").replace("Đ", "D"))


def document_line(doc: DocLike) -> str:
    """One document as the builder reads it: id, then each field as written and folded."""
    fields = {part: nfc(getattr(doc, part) or "") for part in ("title", "lead", "body")}
    row = {"id": doc.id, **fields, **{f"{k}_folded": fold(v) for k, v in fields.items()}}
    return json.dumps(row, ensure_ascii=False)


class XapianReference:
    """The client side: builds and searches through a subprocess with Xapian's bindings."""

    name = "xapian"

    def __init__(self, python: str = DEFAULT_PYTHON) -> None:
        self.python = python
        self._version = ""
        self._process: subprocess.Popen[str] | None = None

    def _command(self, *args: str) -> list[str]:
        return [self.python, "-I", str(Path(__file__).resolve()), *args]

    def unavailable(self) -> str | None:
        """Why Xapian cannot be evaluated here, or ``None`` when it can."""
        try:
            done = subprocess.run(
                [self.python, "-I", "-c", "import xapian; print(xapian.version_string())"],
                capture_output=True,
                text=True,
                timeout=60,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            return f"xapian not evaluated: cannot run {self.python} ({exc})"
        if done.returncode != 0:
            return (
                f"xapian not evaluated: {self.python} cannot import xapian "
                "(Debian: apt-get install python3-xapian)"
            )
        self._version = done.stdout.strip()
        return None

    def fingerprint(self) -> str:
        """Changes when this module or the Xapian version changes."""
        from bench import common

        if not self._version and (reason := self.unavailable()):
            raise RuntimeError(reason)
        return f"xapian:{self._version}:" + common.source_fingerprint([Path(__file__)])

    def build(self, docs: Iterable[DocLike], dirpath: Path) -> None:
        """Index ``docs`` into ``dirpath/xapian.db`` in a subprocess, then open it."""
        self.close()
        target = Path(dirpath) / DB_NAME
        with subprocess.Popen(
            self._command("build", str(target)), stdin=subprocess.PIPE, text=True, encoding="utf-8"
        ) as process:
            assert process.stdin is not None
            for doc in docs:
                process.stdin.write(document_line(doc) + "\n")
            process.stdin.close()
            if process.wait() != 0:
                raise RuntimeError(f"xapian: building {target} failed ({process.returncode})")
        self.open(dirpath)

    def open(self, dirpath: Path) -> None:
        """Start the search subprocess on an index built earlier."""
        self.close()
        self._process = subprocess.Popen(
            self._command("search", str(Path(dirpath) / DB_NAME)),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            bufsize=1,
        )

    def search(self, query: str, k: int = 10) -> list[str]:
        """Ids of the top ``k`` documents for ``query`` (as typed, and folded)."""
        process = self._process
        if process is None or process.stdin is None or process.stdout is None:
            raise RuntimeError("xapian: no index open")
        text = nfc(query)
        request = {"query": text, "folded": fold(text), "k": k}
        process.stdin.write(json.dumps(request, ensure_ascii=False) + "\n")
        process.stdin.flush()
        line = process.stdout.readline()
        if not line:
            raise RuntimeError(f"xapian: the search process ended ({process.poll()})")
        return json.loads(line)["ids"]

    def close(self) -> None:
        """Stop the search subprocess."""
        process, self._process = self._process, None
        if process is not None:
            if process.stdin is not None:
                process.stdin.close()
            process.wait(timeout=60)
            if process.stdout is not None:
                process.stdout.close()


# --- the subprocess (system Python with the xapian module) -------------------------------------


def _build(path: str, lines: IO[str]) -> None:
    """Index JSON-line documents: each field as written, then folded under ``XF``."""
    import xapian

    db = xapian.WritableDatabase(path, xapian.DB_CREATE_OR_OVERWRITE)
    generator = xapian.TermGenerator()
    weights = (("title", TITLE_WDF), ("lead", LEAD_WDF), ("body", 1))
    for line in lines:
        row = json.loads(line)
        doc = xapian.Document()
        generator.set_document(doc)
        for field, wdf in weights:
            if row[field]:
                generator.index_text(row[field], wdf)
                generator.increase_termpos()
        for field, wdf in weights:
            if row[f"{field}_folded"]:
                generator.index_text(row[f"{field}_folded"], wdf, FOLDED_PREFIX)
                generator.increase_termpos()
        doc.set_data(row["id"])
        idterm = "Q" + row["id"]
        doc.add_boolean_term(idterm)
        db.replace_document(idterm, doc)
    db.commit()
    db.close()


def _parse(parser, text: str, prefix: str = ""):  # noqa: ANN001, ANN202 - xapian objects
    """``text`` through the query parser (its default flags); plain words if that fails."""
    import xapian

    try:
        return parser.parse_query(text, parser.FLAG_DEFAULT, prefix)
    except xapian.QueryParserError:
        return parser.parse_query(text, 0, prefix)


def _serve(path: str, lines: IO[str], out: IO[str]) -> None:
    """Answer JSON-line queries ``{"query", "folded", "k"}`` with ``{"ids": [...]}``."""
    import xapian

    db = xapian.Database(path)
    parser = xapian.QueryParser()
    parser.set_database(db)
    parser.set_default_op(xapian.Query.OP_OR)
    enquire = xapian.Enquire(db)
    enquire.set_weighting_scheme(xapian.BM25Weight(BM25_K1, 0, 1, BM25_B, 0.5))
    for line in lines:
        request = json.loads(line)
        typed = _parse(parser, request["query"])
        folded = _parse(parser, request["folded"], FOLDED_PREFIX)
        enquire.set_query(xapian.Query(xapian.Query.OP_OR, typed, folded))
        matches = enquire.get_mset(0, request["k"])
        ids = [match.document.get_data().decode("utf-8") for match in matches]
        out.write(json.dumps({"ids": ids}, ensure_ascii=False) + "\n")
        out.flush()


def main(argv: list[str]) -> int:
    """``build DB`` (documents on stdin) or ``search DB`` (queries on stdin, answers on stdout)."""
    if len(argv) != 2 or argv[0] not in ("build", "search"):
        print("usage: xapian_ref.py build|search DB", file=sys.stderr)
        return 2
    sys.stdin.reconfigure(encoding="utf-8")  # type: ignore[attr-defined]
    sys.stdout.reconfigure(encoding="utf-8")  # type: ignore[attr-defined]
    if argv[0] == "build":
        _build(argv[1], sys.stdin)
    else:
        _serve(argv[1], sys.stdin, sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
