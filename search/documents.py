"""Documents and the readers that turn a user's archive into them.

Two formats: the archive's ``.txt`` (one article a file, page furniture removed) and JSON lines
(``.jsonl`` / ``.jsonl.gz``).  Readers never raise on bad input: they yield ``Skipped`` records with
the path, line and reason, so one broken file can never abort a reindex.
"""

from __future__ import annotations

import codecs
import gzip
import hashlib
import json
import os
import re
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

from .text import canonical_syllable, normalize

SUFFIXES = (".txt", ".jsonl", ".jsonl.gz")
MAX_TEXT_CHARS = (
    2_000_000  # longer texts are truncated (with a warning): nobody reads a 50 MB article
)
RELATED_BLOCK_MARKERS = ("có thể bạn quan tâm", "tin cùng chuyên mục", "tin liên quan", "đọc thêm")
SHARE_RESIDUE = re.compile(r"^\s*(?:(?:fb|yt|zl|tw|in|pin)\s*){2,}$", re.IGNORECASE)
PHOTO_MARKER = re.compile(r"^(?P<caption>.*?)\s+ảnh\s+\d+\s*$")
# Every field is capped (characters), so a hostile file cannot make one document huge: the lead
# and the title are shown with every hit.  An id longer than its cap is refused, not cut (two
# cut ids could collide).
FIELD_CAPS = {
    "title": 1_000,
    "lead": 5_000,
    "url": 2_000,
    "date": 100,
    "source": 200,
    "category": 200,
}
MAX_ID_CHARS = 1_000
# The bytes of a ``.txt`` read at most: ``MAX_TEXT_CHARS`` characters of UTF-8 (and a BOM) fit.
MAX_TXT_BYTES = 4 * MAX_TEXT_CHARS + 4
# A JSON line longer than this is skipped while it is read, never held whole in memory.
MAX_LINE_BYTES = 4 * MAX_TEXT_CHARS + 64_000
READ_CHUNK = 1 << 16
LEAD_FIELDS = ("sapo", "abstract", "summary", "lead")
OPTIONAL_FIELDS = ("title", "url", "date", "source", "category")
_SENTENCE_END = re.compile(r"(?<=[.!?…])\s")
# An article without a lead has the opening of its body counted twice in the body's terms (news
# is an inverted pyramid: the first sentences carry the story).  Only the indexed terms: the
# stored text, the snippets and the hash stay those of the article as read.
OPENING_CHARS = 300


@dataclass(frozen=True, slots=True)
class Document:
    """One article as indexed.  ``id`` is the document's own id, verbatim."""

    id: str
    body: str
    title: str = ""
    lead: str = ""
    url: str = ""
    date: str = ""
    source: str = ""
    category: str = ""
    origin: str = field(default="", compare=False)  # the source path that holds it (for reindex)

    @property
    def content_hash(self) -> str:
        """Hash of everything indexed or shown: unchanged documents are skipped on reindex.

        Every run hashes every document of its sources, so the fields are taken as they are:
        ``dataclasses.asdict`` deep-copies each one and was half the time of reading a JSONL
        archive.  The JSON is the same (keys sorted), so are the hashes indexes hold.
        """
        data = {
            "body": self.body,
            "category": self.category,
            "date": self.date,
            "id": self.id,
            "lead": self.lead,
            "source": self.source,
            "title": self.title,
            "url": self.url,
        }
        raw = json.dumps(data, ensure_ascii=False).encode("utf-8")
        return hashlib.blake2b(raw, digest_size=16).hexdigest()

    @property
    def story_key(self) -> str:
        """Documents with the same key are one story from several feeds (same title and lead,
        or title and opening words when there is no lead).

        Canonical lower-case syllables with punctuation dropped, so ``Lào Cai:`` and ``LÀO CAI``
        agree while ``bán`` and ``bàn`` stay different stories; a document with neither title nor
        lead is its own story.
        """
        if not (self.title.strip() or self.lead.strip()):
            return "id:" + self.id
        text = normalize(f"{self.title} {(self.lead or self.body)[:300]}")
        words = [canonical_syllable(w) for w in re.findall(r"[^\W_]+", text)]
        raw = " ".join(words).encode("utf-8")
        return hashlib.blake2b(raw, digest_size=10).hexdigest()

    @property
    def opening(self) -> str:
        """What the body's terms count twice: its opening (``opening``) when the article has no
        lead, nothing when it has one."""
        return "" if self.lead.strip() else opening(self.body)

    @property
    def display_title(self) -> str:
        """The title, or the text's first sentence when it has none (display only)."""
        if self.title.strip():
            return self.title.strip()
        return first_sentence(self.lead or self.body)


@dataclass(frozen=True, slots=True)
class Skipped:
    """A file or line that could not be read, and why (reported in the reindex summary)."""

    path: str
    line: int | None
    reason: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else self.path
        return f"{where}: {self.reason}"


@dataclass(frozen=True, slots=True)
class Unreadable:
    """A file or source that could not be read (whole or to its end): the reindex keeps every
    document it had from that source, says so and exits non-zero."""

    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


@dataclass(frozen=True, slots=True)
class Warning_:
    """A document that was read, with something worth telling (e.g. truncated); ``truncated``
    names the fields cut to their cap, which the reindex summary counts."""

    path: str
    line: int | None
    message: str
    truncated: tuple[str, ...] = ()

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else self.path
        return f"{where}: {self.message}"


Record = Document | Skipped | Warning_ | Unreadable


def first_sentence(text: str, limit: int = 160) -> str:
    """The first sentence of ``text`` (cut at ``limit`` characters on a word boundary)."""
    text = " ".join(text.split())
    sentence = _SENTENCE_END.split(text, maxsplit=1)[0] if text else ""
    if len(sentence) > limit:
        sentence = sentence[:limit].rsplit(" ", 1)[0] + "…"
    return sentence


def opening(text: str, limit: int = OPENING_CHARS) -> str:
    """The opening sentences of ``text``, at most ``limit`` characters and cut at a sentence end;
    the first sentence alone, cut on a word boundary, when it is longer.

    >>> opening("Mưa lớn ở Lào Cai. Nhiều nhà bị ngập. Đường sạt lở.", 40)
    'Mưa lớn ở Lào Cai. Nhiều nhà bị ngập.'
    >>> opening("một hai ba bốn", 8)
    'một hai'
    """
    text = " ".join(text[: 4 * limit].split())
    taken: list[str] = []
    size = 0
    for sentence in _SENTENCE_END.split(text):
        if size + len(sentence) > limit:
            break
        taken.append(sentence)
        size += len(sentence) + 1
    if not taken and text:
        return text[: limit + 1].rsplit(" ", 1)[0] if len(text) > limit else text
    return " ".join(taken)


def is_source_file(path: Path) -> bool:
    return path.name.endswith(SUFFIXES)


def source_files(
    root: Path, follow_symlinks: bool = False
) -> Iterator[Path | Skipped | Unreadable]:
    """Every source file under ``root`` (or ``root`` itself), in a stable order.

    A symbolic link that leads outside ``root`` (``ln -s /etc/passwd src/x.txt``) is skipped with
    its reason unless ``follow_symlinks``; a link loop is never followed twice.  A directory that
    cannot be listed is ``Unreadable``: ``os.walk`` would leave it out silently, and the files it
    holds would look deleted.
    """
    if root.is_file():
        yield root
        return
    top = os.path.realpath(root)
    seen: set[str] = set()
    found: list[Path | Skipped | Unreadable] = []

    def cannot_list(exc: OSError) -> None:
        found.append(Unreadable(str(exc.filename or root), f"cannot list: {exc.strerror or exc}"))

    walk = os.walk(root, onerror=cannot_list, followlinks=follow_symlinks)
    for dirpath, dirnames, filenames in walk:
        real = os.path.realpath(dirpath)
        if real in seen:
            dirnames[:] = []
            continue
        seen.add(real)
        for name in filenames:
            path = Path(dirpath, name)
            if name.startswith(".") or not is_source_file(path):
                continue
            outside = path.is_symlink() and not _inside(os.path.realpath(path), top)
            if outside and not follow_symlinks:
                found.append(Skipped(str(path), None, "symbolic link outside the source"))
                continue
            if path.is_file():
                found.append(path)
        if not follow_symlinks:
            for name in dirnames:
                linked = Path(dirpath, name)
                if linked.is_symlink() and not _inside(os.path.realpath(linked), top):
                    found.append(Skipped(str(linked), None, "symbolic link outside the source"))
    yield from sorted(found, key=_path_of)


def _path_of(item: Path | Skipped | Unreadable) -> Path:
    return item if isinstance(item, Path) else Path(item.path)


def _inside(path: str, top: str) -> bool:
    return path == top or path.startswith(top.rstrip(os.sep) + os.sep)


def read_source(
    root: Path, follow_symlinks: bool = False, visit: Callable[[Path], bool] | None = None
) -> Iterator[Record]:
    """All records of one source (a directory searched recursively, or one file).  ``visit``
    is told of each file before its records, and says whether to read it (the indexer skips
    files unchanged since the last run: ``source_files``)."""
    root = Path(root)
    origin = str(root.resolve())
    if not root.exists():
        yield Unreadable(str(root), "source not found")
        return
    try:
        for path in source_files(root, follow_symlinks):
            if isinstance(path, Skipped | Unreadable):
                yield path
                continue
            if visit is not None and not visit(path):
                continue
            yield from read_file(root, path, origin)
    except OSError as exc:
        yield Unreadable(str(root), f"cannot list: {exc.strerror or exc}")


def has_lone_surrogate(doc: Document) -> bool:
    """Whether a field holds a lone surrogate: JSON allows ``"\\ud800"`` but UTF-8 cannot encode
    it, and pyvi/Whoosh then crash the whole reindex (tests/test_reliability.py::
    test_broken_documents_are_never_fatal).  The indexer skips such a document like a bad line.
    """
    try:
        for name in ("id", "title", "lead", "body", "url", "date", "source", "category"):
            getattr(doc, name).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def read_file(root: Path, path: Path, origin: str) -> Iterator[Record]:
    """The records of one file of the source ``root`` (whose resolved path is ``origin``)."""
    doc_id_base = path.name if root.is_file() else path.relative_to(root).as_posix()
    if path.name.endswith(".txt"):
        yield from read_txt(path, doc_id_base, origin)
    else:
        yield from read_jsonl(path, origin)


def _strip_furniture(title: str, lines: list[str]) -> list[str]:
    """Drop photo markers, share links, and everything from a related-news block on."""
    norm_title = " ".join(normalize(title).split()).casefold()
    kept: list[str] = []
    for line in lines:
        norm = " ".join(normalize(line).split())
        if norm.casefold().rstrip(":").strip() in RELATED_BLOCK_MARKERS:
            break
        if SHARE_RESIDUE.match(norm):
            continue
        marker = PHOTO_MARKER.match(norm)
        if marker and marker.group("caption").casefold() == norm_title:
            continue
        kept.append(line)
    return kept


def _decode(raw: bytes, complete: bool = True) -> tuple[str | None, str | None]:
    """Decode UTF-8 text or say why not (binary, invalid UTF-8).  When ``raw`` is only the head
    of a file (not ``complete``), a character cut at its end is dropped, not an error."""
    if b"\x00" in raw[:8192]:
        return None, "binary file (NUL bytes)"
    try:
        return codecs.getincrementaldecoder("utf-8-sig")().decode(raw, final=complete), None
    except UnicodeDecodeError as exc:
        return None, f"not valid UTF-8 (byte {exc.start})"


def _read_head(path: Path, limit: int) -> tuple[bytes, bool]:
    """At most ``limit`` bytes of the file, and whether it holds more: a ``.txt`` of gigabytes
    costs what its first ``limit`` bytes cost, never its size in memory."""
    with open(path, "rb") as fh:
        raw = fh.read(limit + 1)
    return raw[:limit], len(raw) > limit


def parse_txt(text: str) -> tuple[str, str]:
    """Title and body of an archive ``.txt`` article, page furniture removed."""
    lines = text.splitlines()
    index = next((i for i, line in enumerate(lines) if line.strip()), None)
    if index is None:
        return "", ""
    title = lines[index].strip()
    body_lines = _strip_furniture(title, lines[index + 1 :])
    body = "\n".join(body_lines).strip()
    body = re.sub(r"\n{3,}", "\n\n", body)
    return title, body


def read_txt(path: Path, doc_id: str, origin: str) -> Iterator[Record]:
    """The article of an archive ``.txt`` (with a warning when it was cut), a ``Skipped`` record
    for a file that is not text, or ``Unreadable`` when it cannot be read at all (its document
    is then kept, not removed)."""
    try:
        raw, cut = _read_head(path, MAX_TXT_BYTES)
    except OSError as exc:
        yield Unreadable(str(path), f"cannot read: {exc.strerror or exc}")
        return
    text, problem = _decode(raw, complete=not cut)
    if text is None:
        yield Skipped(str(path), None, problem or "unreadable")
        return
    if cut or len(text) > MAX_TEXT_CHARS:
        yield Warning_(str(path), None, f"truncated to {MAX_TEXT_CHARS:,} characters", ("body",))
        text = text[:MAX_TEXT_CHARS]
    title, body = parse_txt(text)
    if not title and not body:
        yield Skipped(str(path), None, "empty file")
        return
    doc, capped = capped_document(Document(id=doc_id, title=title, body=body, origin=origin))
    if capped:
        yield Warning_(str(path), None, f"truncated {', '.join(capped)}", tuple(capped))
    yield doc


def _open_lines(path: Path) -> Iterator[bytes | None]:
    """The file's lines, read ``READ_CHUNK`` bytes at a time (gzip or not); ``None`` for a line
    longer than ``MAX_LINE_BYTES``, which is skipped as it is read and never held whole (a 1 MB
    ``.gz`` can hold a gigabyte on one line)."""
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rb") as fh:
        pending = bytearray()
        too_long = False
        # read1: what one read of the stream gives, so the lines before a corrupt end come out.
        while chunk := fh.read1(READ_CHUNK):
            start = 0
            while (end := chunk.find(b"\n", start)) >= 0:
                if too_long:
                    yield None
                else:
                    pending += chunk[start : end + 1]
                    yield bytes(pending)
                pending.clear()
                too_long = False
                start = end + 1
            if not too_long:
                pending += chunk[start:]
                if len(pending) > MAX_LINE_BYTES:
                    pending.clear()
                    too_long = True
        if too_long:
            yield None
        elif pending:
            yield bytes(pending)


def capped_document(doc: Document) -> tuple[Document, list[str]]:
    """``doc`` with every field cut to its cap (``FIELD_CAPS``, ``MAX_TEXT_CHARS`` for the body),
    and the names of the fields that were cut."""
    caps = {**FIELD_CAPS, "body": MAX_TEXT_CHARS}
    cut = [name for name, cap in caps.items() if len(getattr(doc, name)) > cap]
    if not cut:
        return doc, []
    return replace(doc, **{name: getattr(doc, name)[: caps[name]] for name in cut}), cut


def document_from_json(obj: object) -> Document | str:
    """A ``Document`` from one decoded JSON line, or the reason it cannot be one."""
    if not isinstance(obj, dict):
        return "not a JSON object"
    doc_id = obj.get("id")
    if isinstance(doc_id, bool) or not isinstance(doc_id, str | int) or str(doc_id).strip() == "":
        return "missing or invalid 'id'"
    if len(str(doc_id)) > MAX_ID_CHARS:
        return f"'id' longer than {MAX_ID_CHARS:,} characters"
    body = obj.get("body")
    if not isinstance(body, str):
        return "missing or invalid 'body' (must be a string)"
    values: dict[str, str] = {}
    for name in OPTIONAL_FIELDS:
        value = obj.get(name)
        if value is None:
            continue
        if not isinstance(value, str):
            return f"field '{name}' must be a string"
        values[name] = value
    lead = next((obj[n] for n in LEAD_FIELDS if isinstance(obj.get(n), str) and obj[n].strip()), "")
    return Document(id=str(doc_id), body=body, lead=lead, **values)


def read_jsonl(path: Path, origin: str) -> Iterator[Record]:
    """The documents of a JSON-lines file.  A bad line is skipped with its reason; a file that
    cannot be read to its end (truncated or corrupt gzip, an I/O error) ends with an
    ``Unreadable`` record, so its documents are kept rather than removed."""
    name = str(path)
    lineno = 0
    try:
        for lineno, raw in enumerate(_open_lines(path), start=1):  # noqa: B007 - used after loop
            if raw is None:
                yield Skipped(name, lineno, f"line longer than {MAX_LINE_BYTES:,} bytes")
                continue
            if not raw.strip():
                continue
            try:
                obj = json.loads(raw)
            except (UnicodeDecodeError, ValueError) as exc:
                yield Skipped(name, lineno, f"bad JSON: {str(exc).splitlines()[0][:80]}")
                continue
            except RecursionError:
                yield Skipped(name, lineno, "bad JSON: nested too deeply")
                continue
            result = document_from_json(obj)
            if isinstance(result, str):
                yield Skipped(name, lineno, result)
                continue
            doc, cut = capped_document(replace(result, origin=origin))
            if cut:
                yield Warning_(name, lineno, f"truncated {', '.join(cut)}", tuple(cut))
            yield doc
    except (OSError, EOFError, zlib.error) as exc:  # gzip.BadGzipFile is an OSError
        where = f" after line {lineno}" if lineno else ""
        yield Unreadable(name, f"cannot read{where}: {exc}")
