"""Telex/VNI decoding: exact expectations, English stays English, and encode/decode round trips."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from search.telex import (
    AMBIGUOUS_TELEX,
    decode_query,
    decode_token,
    decode_vni_token,
    encode_telex,
    is_valid_syllable,
)
from search.text import canonical_syllable, has_diacritics

TELEX = {
    "laof": "lào",
    "howpj": "hợp",
    "tacs": "tác",
    "ddaf": "đà",
    "nawngx": "nẵng",
    "nguwowif": "người",
    "nguoiwf": "người",  # w after uo marks both
    "nguwoif": "người",  # ưo + i can only be ươi
    "uw": "ư",
    "ow": "ơ",
    "aa": "â",
    "ee": "ê",
    "oo": "ô",
    "dd": "đ",
    "w": "ư",
    "tw": "tư",
    "nhwngx": "những",
    "nwowcs": "nước",
    "tieengs": "tiếng",
    "tiesng": "tiếng",  # tone key in the middle, ie + final can only be iê
    "vieetj": "việt",
    "ddasz": "đa",  # z removes the tone
    "thuowr": "thuở",  # open ươ does not exist: uơ
    "huow": "huơ",
    "muaw": "mưa",
    "nangw": "năng",  # w after the final consonant
    "giuwowngf": "giường",
    "gif": "gì",
    "giuwx": "giữ",
    "quoocs": "quốc",
    "quys": "quý",
    "hoaf": "hòa",  # old tone placement, as canonical_syllable indexes
    "khoer": "khỏe",
    "thuyr": "thủy",
    "hoangf": "hoàng",
    "ngoaif": "ngoài",
    "xoays": "xoáy",
    "khuyur": "khuỷu",
    "khuaays": "khuấy",
    "ruwowuj": "rượu",
    "cuwus": "cứu",
    "yeeu": "yêu",
    "yeens": "yến",
    "chuyeenj": "chuyện",
    "tuyeets": "tuyết",
    "quaanf": "quần",
    "myx": "mỹ",
    "kyx": "kỹ",
    "hosa": "hóa",  # tone typed right after the first vowel
    "ddawks": "đắk",
    "lawks": "lắk",
    "cos": "có",
    "khoongr": "khổng",
    "ddoongf": "đồng",
    "xoong": "xông",  # Telex reads oo as ô; the literal is searched too
    "xooong": None,  # ooo is a literal oo, and xoong has no diacritic to add
    "baongf": None,  # "ao" + ng is no rhyme
}

NOT_TELEX = [
    "covid",
    "facebook",
    "iphone",
    "google",
    "email",
    "samsung",
    "tiktok",
    "show",
    "web",
    "app",
    "us",
    "is",
    "news",
    "for",
    "box",
    "max",
    "as",
    "of",
    "or",
    "if",
    "youtube",
    "zalo",
    "shopee",
    "grab",
    "tesla",
    "messi",
    "asean",
    "apec",
    "fifa",
    "tphcm",
    "ubnd",
    "gdp",
    "usd",
    "afc",
    "taxi",
    "test",
    "this",
    "there",
    "sony",
    "nokia",
    "honda",
    "twitter",
    "netflix",
    "tiktoker",
    # plain syllables: nothing to decode
    "lao",
    "cai",
    "nguoi",
    "viet",
    "tieng",
    "khuya",
    "gieng",
    # not decodable at all
    "",
    "ww",
    "ass",
    "asf",
    "laoz",
    "tsa",
    "dddd",
    "Lào",
    "lào",
]

VNI = {
    "vie65t": "việt",
    "vie6t5": "việt",
    "viet65": "việt",
    "nguo72i": "người",
    "nguoi72": "người",
    "d9a2": "đà",
    "D9a2": "đà",
    "na84ng": "nẵng",
    "thuo73": "thuở",
    "tie61ng": "tiếng",
    "ho7p5": "hợp",
    "qua6n2": "quần",
    "2023": None,
    "u23": None,
    "u17": None,  # marks come before the tone digit
    "u19": None,
    "u20": None,
    "4g": None,
    "5g": None,
    "b52": None,
    "a320": None,
    "covid19": None,
    "h5n1": None,
    "co2": None,  # a formula unless the query is VNI-typed
    "a4": None,  # paper size
    "a6": None,  # Audi
    "laos": None,  # letters only: not VNI
}

VNI_IN_CONTEXT = {"a6": "â", "a8": "ă", "o7": "ơ", "u7": "ư", "d9": "đ", "a4": "ã", "co2": "cò"}

# Common syllables of Vietnamese news (old tone placement: hòa, khỏe, thủy).
_SYLLABLE_TEXT = """
người việt nam hà nội thành phố hồ chí minh đà nẵng hải phòng cần thơ huế nghệ an thanh hóa quảng
ninh bình dương đồng nai khánh hòa lâm kiên giang cà mau bạc liêu sóc trăng trà vinh tiền vĩnh long
bến tre tháp tây phước đắk lắk gia lai kon tum phú yên ngãi bắc hưng hải thái định sơn la điện biên
lào cai bái tuyên quang cao bằng lạng thọ phúc trị tĩnh chính phủ quốc hội thủ tướng chủ tịch nước
bộ trưởng ủy ban nhân dân đồng tỉnh huyện xã phường công cảnh sát giao thông tai nạn điều tra khởi
tố bắt giữ đối tượng vụ án tòa xét xử kinh tế tăng doanh nghiệp ngân hàng lãi suất tỷ giá vàng xăng
dầu chứng khoán thị trường giáo dục học sinh viên đại thi tốt điểm chuẩn tuyển bệnh bác sĩ sức khỏe
dịch tiêm vắc xin trị ca mắc tử vong bóng đá đội huấn luyện trận đấu thắng thua bàn giải vô địch cầu
thời tiết mưa bão lũ lụt nắng nóng rét đậm không khí lạnh gia đình trẻ em phụ nữ nhân lao động
việc làm thu nhập xây dựng dự đường tốc cảng sân bay đất đai nhà ở chung cư khoa công nghệ tin mạng
điện thoại trí tuệ tạo văn du lịch lễ nghệ ca phim ảnh âm nhạc thế giới mỹ trung nhật bản hàn nga
châu âu chiến tranh bình quyết nghị thông tư luật pháp quy sách được những của cho với một hai ba
bốn năm sáu bảy tám chín mười trăm nghìn triệu khuya khuỷu ngoặt xoáy khuấy quậy nguyễn trần lê phạm
hoàng huỳnh phan vũ võ đặng bùi đỗ ngô lý rượu cứu gửi giường gì quý quà thuở huơ tiếng hợp tác yêu
yến uyên trên dưới trong ngoài sau trước đầu cuối giữa bên cạnh ấy này đó kia đây đã đang sẽ vẫn còn
rất nhiều ít hơn nhất cũng lại ra vào lên xuống thủy thuế
"""
SYLLABLES = _SYLLABLE_TEXT.split()


@pytest.mark.parametrize(("token", "expected"), TELEX.items())
def test_decode_telex_token(token: str, expected: str | None) -> None:
    assert decode_token(token) == expected


def test_telex_table_is_big_enough() -> None:
    assert sum(v is not None for v in TELEX.values()) >= 40


@pytest.mark.parametrize("token", NOT_TELEX)
def test_english_brands_and_plain_syllables_do_not_decode(token: str) -> None:
    assert decode_token(token) is None


def test_capitals_are_read_as_lower_case() -> None:
    assert decode_token("LAOF") == "lào"
    assert decode_token("Ddaf") == "đà"


def test_ambiguous_english_decodes_only_when_asked() -> None:
    assert decode_token("as") is None
    assert decode_token("as", allow_ambiguous=True) == "á"
    assert decode_token("is", allow_ambiguous=True) == "í"
    assert decode_token("six", allow_ambiguous=True) == "sĩ"
    assert all(decode_token(word, allow_ambiguous=True) for word in AMBIGUOUS_TELEX)


@pytest.mark.parametrize(("token", "expected"), VNI.items())
def test_decode_vni_token(token: str, expected: str | None) -> None:
    assert decode_vni_token(token) == expected


@pytest.mark.parametrize(("token", "expected"), VNI_IN_CONTEXT.items())
def test_short_vni_tokens_decode_when_allowed(token: str, expected: str) -> None:
    assert decode_vni_token(token) is None
    assert decode_vni_token(token, allow_ambiguous=True) == expected


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("laof cai", ("lào cai", True)),
        ("Lào Cai", ("Lào Cai", False)),
        ("covid tphcm", ("covid tphcm", False)),
        ("lao cai", ("lao cai", False)),
        ("Laof Cai", ("Lào Cai", True)),
        ("LAOF CAI", ("LÀO CAI", True)),
        ("Ddaf Nawngx, 2023!", ("Đà Nẵng, 2023!", True)),
        ("thowif tieets hoom nay", ("thời tiết hôm nay", True)),
        ("tin tuwsc covid", ("tin tức covid", True)),
        ("Chaau As", ("Châu Á", True)),  # "As" is Á because the query is evidently Telex
        ("is this", ("is this", False)),
        ("us open", ("us open", False)),
        ("Vie65t Nam", ("Việt Nam", True)),
        ("kho1 a4", ("khó ã", True)),
        ("giấy a4", ("giấy a4", False)),
        ("khí co2", ("khí co2", False)),
        ("ngu7o72i Vie65t", ("người Việt", True)),
        ("", ("", False)),
        ("  laof  ", ("  lào  ", True)),
    ],
)
def test_decode_query(query: str, expected: tuple[str, bool]) -> None:
    assert decode_query(query) == expected


def test_encode_telex_examples() -> None:
    assert encode_telex("Đà Nẵng") == "ddaf nawngx"
    assert encode_telex("người") == "nguwowif"
    assert encode_telex("tiếng Việt, 2024") == "tieengs vieetj, 2024"
    assert encode_telex("xoong") == "xooong"
    assert encode_telex("khỏe") == "khoer"


def test_syllable_list_is_big_and_valid() -> None:
    assert len(set(SYLLABLES)) >= 200
    assert [s for s in SYLLABLES if not is_valid_syllable(s)] == []


@pytest.mark.parametrize("syllable", sorted(set(SYLLABLES)))
def test_round_trip(syllable: str) -> None:
    encoded = encode_telex(syllable)
    expected = syllable if has_diacritics(syllable) else None
    assert decode_token(encoded, allow_ambiguous=True) == expected


@pytest.mark.parametrize("syllable", ["hoà", "khoẻ", "thuỷ", "uỷ", "Hoà"])
def test_new_tone_placement_decodes_to_the_canonical_spelling(syllable: str) -> None:
    assert decode_token(encode_telex(syllable)) == canonical_syllable(syllable)


def test_is_valid_syllable() -> None:
    assert is_valid_syllable("người")
    assert is_valid_syllable("Nguyễn")
    assert is_valid_syllable("quốc")
    assert is_valid_syllable("gì")
    assert not is_valid_syllable("tieng")
    assert not is_valid_syllable("càc")  # stop finals take sắc or nặng only
    assert not is_valid_syllable("kien")  # ie + final is only iê
    assert not is_valid_syllable("cae")
    assert not is_valid_syllable("kan")
    assert not is_valid_syllable("ghô")
    assert not is_valid_syllable("facebook")


@given(st.text())
def test_decode_query_never_raises(text: str) -> None:
    decoded, changed = decode_query(text)
    assert isinstance(decoded, str)
    assert changed == (decoded != text) or decoded.lower() == text.lower()


@given(st.text(alphabet="abcdeghiklmnopqrstuvwxyzfj0123456789", max_size=12))
def test_decoded_tokens_are_valid_syllables(token: str) -> None:
    for result in (decode_token(token), decode_vni_token(token)):
        assert result is None or is_valid_syllable(result)
