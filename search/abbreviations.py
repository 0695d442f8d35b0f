"""Abbreviations of Vietnamese news, applied at query time in both directions.

An article says ``UBND tỉnh`` where the reader types ``ủy ban nhân dân tỉnh`` (or the other way
round), so a span of the query that is one form of an entry is searched together with the entry's
other forms: ``find_alternatives`` returns, for each such span, the phrases to OR with it.

Matching works on the query's syllables (lower case, NFC, canonical as ``search.text`` makes them):

* a syllable typed with diacritics must equal the table's (``ủy``/``uỷ`` agree through
  ``canonical_syllable``); one typed without any matches its folded form, so ``hdnd`` finds
  ``HĐND`` and ``uy ban nhan dan`` finds ``ủy ban nhân dân`` while ``hả nói`` never finds ``HN``;
* punctuation inside a syllable is ignored (``tp.hcm`` = ``tphcm``), and every dotted or
  ``&``-joined short form is also known split (``GD&ĐT`` = ``gd đt``), whatever the tokenizer does;
* the longest form wins and spans never overlap, so a caller can build
  ``(span OR alternative OR ...)`` per span without double counting.

Ambiguous abbreviations are left out on purpose: ``ĐT`` (đội tuyển, điện thoại, đào tạo), ``CP``
(chính phủ, cổ phần), ``BTC`` (ban tổ chức, bộ tài chính), ``TT``, ``GĐ``, ``CĐ``, ``TQ``, ``HQ``.
``HCM`` maps to the city only: ``hồ chí minh`` alone (also the person) does not become ``HCM``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from search.text import canonical_syllable, fold, has_diacritics, normalize

# Each line: short forms ";" separated, "|", long forms ";" separated.  Short forms are written as
# newspapers print them; tokens inside a form are separated by spaces.
_TABLE = """
UBND | ủy ban nhân dân
HĐND | hội đồng nhân dân
MTTQ | mặt trận tổ quốc
UBMTTQ | ủy ban mặt trận tổ quốc
TP.HCM; TP HCM; HCM | thành phố hồ chí minh
TP | thành phố
CSGT | cảnh sát giao thông
CSHS | cảnh sát hình sự
CSĐT | cảnh sát điều tra
CQĐT | cơ quan điều tra
CQCSĐT | cơ quan cảnh sát điều tra
THPT | trung học phổ thông
THPTQG; THPT QG | trung học phổ thông quốc gia; THPT quốc gia
THCS | trung học cơ sở
ĐH | đại học
ĐHQG | đại học quốc gia
BHXH | bảo hiểm xã hội
BHYT | bảo hiểm y tế
BHTN | bảo hiểm thất nghiệp
CNTT | công nghệ thông tin
QĐND | quân đội nhân dân
CAND | công an nhân dân
TAND | tòa án nhân dân
TANDTC | tòa án nhân dân tối cao
VKSND | viện kiểm sát nhân dân
VKSNDTC | viện kiểm sát nhân dân tối cao
HĐXX | hội đồng xét xử
UBKT | ủy ban kiểm tra
ĐBQH | đại biểu quốc hội
QH | quốc hội
UBTVQH | ủy ban thường vụ quốc hội
NHNN | ngân hàng nhà nước
NHTM | ngân hàng thương mại
KCN | khu công nghiệp
CCN | cụm công nghiệp
KKT | khu kinh tế
KĐT | khu đô thị
KDC | khu dân cư
HLV | huấn luyện viên
CĐV | cổ động viên
VĐV | vận động viên
SVĐ | sân vận động
VĐQG | vô địch quốc gia
ĐKVĐ | đương kim vô địch
ĐTQG | đội tuyển quốc gia
ĐTVN; ĐT Việt Nam; ĐT VN | đội tuyển việt nam
VN | việt nam
HN | hà nội
ĐBSCL | đồng bằng sông cửu long
ĐBSH | đồng bằng sông hồng
ATGT | an toàn giao thông
TNGT | tai nạn giao thông
PCCC | phòng cháy chữa cháy
CNCH | cứu nạn cứu hộ
GTVT | giao thông vận tải
GD&ĐT | giáo dục và đào tạo; giáo dục đào tạo
KH&CN | khoa học và công nghệ; khoa học công nghệ
KH&ĐT | kế hoạch và đầu tư
TN&MT | tài nguyên và môi trường; tài nguyên môi trường
NN&PTNT | nông nghiệp và phát triển nông thôn
LĐ-TB&XH | lao động thương binh và xã hội
VH-TT&DL | văn hóa thể thao và du lịch
TT&TT | thông tin và truyền thông
BCH | ban chấp hành
BCHTW | ban chấp hành trung ương
BTV | ban thường vụ
BCĐ | ban chỉ đạo
BQL | ban quản lý
TW | trung ương
LĐLĐ | liên đoàn lao động
NLĐ | người lao động
SN | sinh năm
ĐCSVN | đảng cộng sản việt nam
ĐCS | đảng cộng sản
CHXHCN | cộng hòa xã hội chủ nghĩa
XHCN | xã hội chủ nghĩa
CHDCND | cộng hòa dân chủ nhân dân
TTXVN | thông tấn xã việt nam
LHQ | liên hợp quốc
CTN | chủ tịch nước
PCT | phó chủ tịch
TGĐ | tổng giám đốc
PGĐ | phó giám đốc
HĐQT | hội đồng quản trị
ĐHĐCĐ | đại hội đồng cổ đông
CTCP | công ty cổ phần
TNHH | trách nhiệm hữu hạn
DN | doanh nghiệp
DNNVV | doanh nghiệp nhỏ và vừa
BĐS | bất động sản
TTCK | thị trường chứng khoán
TTTM | trung tâm thương mại
NSNN | ngân sách nhà nước
XNK | xuất nhập khẩu
XKLĐ | xuất khẩu lao động
KT-XH | kinh tế xã hội
ATTP | an toàn thực phẩm
VSATTP | vệ sinh an toàn thực phẩm
TTHC | thủ tục hành chính
CCHC | cải cách hành chính
CĐS | chuyển đổi số
THADS | thi hành án dân sự
CCCD | căn cước công dân
CMND | chứng minh nhân dân
GPLX | giấy phép lái xe
ĐKKD | đăng ký kinh doanh
NSND | nghệ sĩ nhân dân
NSƯT | nghệ sĩ ưu tú
NXB | nhà xuất bản
GS | giáo sư
PGS | phó giáo sư
TS | tiến sĩ
ThS | thạc sĩ
BS | bác sĩ
GV | giáo viên
HS | học sinh
SV | sinh viên
BV | bệnh viện
BVĐK | bệnh viện đa khoa
PV | phóng viên
QĐ | quyết định
NĐ | nghị định
NQ | nghị quyết
TTg | thủ tướng
"""

_JOINERS_RE = re.compile(r"[.&\-]")
_NON_WORD_RE = re.compile(r"[\W_]+")


@dataclass(frozen=True, slots=True)
class Alternative:
    """Search ``replacement`` as a phrase, OR'd with ``syllables[start:end]`` of the query."""

    start: int
    end: int
    replacement: tuple[str, ...]


@lru_cache(maxsize=65_536)
def _clean(syllable: str) -> str:
    """A syllable as the table compares it: canonical, punctuation gone (``TP.HCM`` -> tphcm)."""
    return _NON_WORD_RE.sub("", canonical_syllable(normalize(syllable)))


def _forms(text: str, *, short: bool) -> list[tuple[str, ...]]:
    """Parse one side of a table line into syllable tuples, short forms also split (GD ĐT)."""
    out: list[tuple[str, ...]] = []
    for variant in text.split(";"):
        spellings = [variant]
        if short and _JOINERS_RE.search(variant):
            spellings.append(_JOINERS_RE.sub(" ", variant))  # GD&ĐT -> GD ĐT
        for spelling in spellings:
            form = tuple(_clean(token) for token in spelling.split())
            if form and form not in out:
                out.append(form)
    return out


@dataclass(frozen=True, slots=True)
class Entry:
    """One abbreviation: its short spellings and the words it stands for, as syllable tuples."""

    shorts: tuple[tuple[str, ...], ...]
    longs: tuple[tuple[str, ...], ...]

    @property
    def forms(self) -> tuple[tuple[str, ...], ...]:
        return self.shorts + self.longs


def _build() -> tuple[tuple[Entry, ...], dict[tuple[str, ...], list[tuple[int, int]]]]:
    """Return (entries, index): the table, and folded form -> (entry, form position) pairs."""
    entries: list[Entry] = []
    index: dict[tuple[str, ...], list[tuple[int, int]]] = {}
    for line in _TABLE.strip().splitlines():
        shorts, longs = line.split("|")
        entry = Entry(tuple(_forms(shorts, short=True)), tuple(_forms(longs, short=False)))
        for position, form in enumerate(entry.forms):
            folded = tuple(fold(syllable) for syllable in form)
            index.setdefault(folded, []).append((len(entries), position))
        entries.append(entry)
    return tuple(entries), index


ENTRIES, _INDEX = _build()
_MAX_FORM = max(len(form) for entry in ENTRIES for form in entry.forms)


def _matches(query: Sequence[str], form: tuple[str, ...]) -> bool:
    """Folded forms are equal; each syllable typed with diacritics must also be equal as typed."""
    return all(q == f or not has_diacritics(q) for q, f in zip(query, form, strict=True))


def _contains(longer: tuple[str, ...], part: tuple[str, ...]) -> bool:
    """Whether ``part`` occurs in ``longer`` as a contiguous run of syllables."""
    size = len(part)
    return any(longer[i : i + size] == part for i in range(len(longer) - size + 1))


def _longest_match(cleaned: list[str], start: int) -> tuple[int, list[tuple[int, int]]]:
    """Length and (entry, form) hits of the longest form starting at ``start`` (0 if none)."""
    folded = [fold(syllable) for syllable in cleaned[start : start + _MAX_FORM]]
    for size in range(len(folded), 0, -1):
        hits = [
            (entry, position)
            for entry, position in _INDEX.get(tuple(folded[:size]), ())
            if _matches(cleaned[start : start + size], ENTRIES[entry].forms[position])
        ]
        if hits:
            return size, hits
    return 0, []


def find_alternatives(syllables: Sequence[str]) -> list[Alternative]:
    """Phrases to OR with spans of the query, in query order; spans never overlap.

    A form's alternatives are the other forms of its entry, except those that contain it (they
    could only narrow the search).

    >>> find_alternatives(["ubnd", "tỉnh"])
    [Alternative(start=0, end=1, replacement=('ủy', 'ban', 'nhân', 'dân'))]
    >>> [a.replacement for a in find_alternatives(["uy", "ban", "nhan", "dan"])]
    [('ubnd',)]
    """
    cleaned = [_clean(syllable) for syllable in syllables]
    found: list[Alternative] = []
    i = 0
    while i < len(cleaned):
        size, hits = _longest_match(cleaned, i)
        if not size:
            i += 1
            continue
        matched = tuple(cleaned[i : i + size])
        seen: set[tuple[str, ...]] = set()
        for entry, position in hits:
            forms = ENTRIES[entry].forms
            for other_position, other in enumerate(forms):
                skip = other_position == position or other in seen or other == matched
                if not skip and not _contains(other, forms[position]):
                    seen.add(other)
                    found.append(Alternative(i, i + size, other))
        i += size
    return found


def expand(syllables: Sequence[str]) -> list[list[str]]:
    """Just the alternative phrases of ``find_alternatives`` (``['ubnd']`` -> long form)."""
    return [list(alternative.replacement) for alternative in find_alternatives(syllables)]
