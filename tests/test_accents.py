"""Accent restoration: the bigram decides where word-by-word guessing fails.

The vocabulary is built from a dozen fictional news sentences written so that every ambiguity
tested here has a known answer: ``cải`` outnumbers ``cai``, ``lao`` outnumbers ``lào``, ``hạ``
outnumbers ``hà`` and ``nói`` outnumbers ``nội``, so only the pairs can give ``Lào Cai`` and
``Hà Nội``.
"""

from __future__ import annotations

import itertools
import pickle
import random
import time
import unicodedata

import pytest

from search import accents, kernels
from search.accents import (
    AccentVocabulary,
    CasedAccentVocabulary,
    CountsVocabulary,
    MappedVocabulary,
    count_texts,
    pair_table,
    restore,
    restore_query,
    vocabulary_arrays,
)
from search.store.accent_files import AccentCounts
from search.text import fold

CORPUS = [
    "Mưa lớn gây sạt lở ở Lào Cai và Lai Châu.",
    "Nông dân Lào Cai trồng cải bắp trên ruộng bậc thang.",
    "Du khách đổ về Sa Pa, Lào Cai dịp cuối tuần.",
    "Tỉnh Lào Cai mở thêm trung tâm cai nghiện.",
    "Người cai nghiện được hỗ trợ học nghề.",
    "Giá cải bắp tại chợ đầu mối tăng mạnh.",
    "Rau cải đắt hàng vì mưa lớn.",
    "Bà con bán cải bắp, cải thảo, cải xanh và cải ngọt.",
    "Cô ấy nói rằng cái áo này rất đẹp.",
    "Anh ấy nói cái gì cũng được.",
    "Người lao động được tăng lương, người lao động vui mừng.",
    "Người lao động ở Lai Châu làm thêm giờ, nhiều lao động nghỉ Tết.",
    "Công ty thưởng Tết cho người lao động.",
    "Người dân Hà Nội đổ xô đi mua vàng.",
    "Giá vàng trong nước hôm nay giảm nhẹ.",
    "Giá vàng thế giới tăng, giá vàng miếng đứng yên.",
    "Siêu thị hạ giá rau, hạ giá thịt.",
    "Ông nói sẽ hạ nhiệt giá vàng ở Hà Nội.",
    "Trường dạy kỹ thuật tuyển sinh 2024 người.",
]


@pytest.fixture(scope="module")
def vocab() -> CountsVocabulary:
    return CountsVocabulary.from_texts(CORPUS)


def test_corpus_makes_single_words_misleading(vocab: CountsVocabulary) -> None:
    """The premise of the pair tests: the unigram alone picks the wrong spelling."""
    assert vocab.count("cải") > vocab.count("cai") > 0
    assert vocab.count("lao") > vocab.count("lào") > 0
    assert vocab.count("hạ") > vocab.count("hà") > 0
    assert vocab.count("nói") > vocab.count("nội") > 0
    assert restore(["cai"], vocab) == ["cải"]
    assert restore(["ha"], vocab) == ["hạ"]
    assert restore(["noi"], vocab) == ["nói"]


# -- restore ------------------------------------------------------------------------------------


def test_bigram_restores_lao_cai(vocab: CountsVocabulary) -> None:
    assert restore(["lao", "cai"], vocab) == ["lào", "cai"]


def test_bigram_restores_ha_noi(vocab: CountsVocabulary) -> None:
    assert restore(["ha", "noi"], vocab) == ["hà", "nội"]


def test_restores_common_phrases(vocab: CountsVocabulary) -> None:
    assert restore(["gia", "vang"], vocab) == ["giá", "vàng"]
    assert restore(["cai", "bap"], vocab) == ["cải", "bắp"]
    assert restore(["cai", "nghien"], vocab) == ["cai", "nghiện"]
    assert restore(["nguoi", "lao", "dong"], vocab) == ["người", "lao", "động"]
    assert restore(["mua", "vang", "o", "lao", "cai"], vocab) == ["mua", "vàng", "ở", "lào", "cai"]


def test_ascii_y_is_read_as_the_index_spells_it(vocab: CountsVocabulary) -> None:
    assert restore(["ky", "thuat"], vocab) == ["kĩ", "thuật"]


def test_unknown_words_pass_through_unchanged(vocab: CountsVocabulary) -> None:
    assert restore(["xyz", "gia", "vang", "covid"], vocab) == ["xyz", "giá", "vàng", "covid"]
    assert restore(["xyz", "2024"], vocab) is None


def test_accented_tokens_stay_fixed_and_steer_neighbours(vocab: CountsVocabulary) -> None:
    # ``hạ`` is the more frequent ``ha``, but a typed ``Nội`` makes ``hà`` the only good left side.
    assert restore(["ha", "Nội"], vocab) == ["hà", "Nội"]
    # A typed ``hạ`` is kept even where ``hà`` would be likelier, and picks ``giá`` after it.
    assert restore(["hạ", "gia"], vocab) == ["hạ", "giá"]
    assert restore(["gia", "vàng"], vocab) == ["giá", "vàng"]
    # Decomposed input is the same syllable: still fixed, still steering.
    assert restore([unicodedata.normalize("NFD", "Nội"), "ha"][::-1], vocab) == [
        "hà",
        unicodedata.normalize("NFD", "Nội"),
    ]


def test_none_when_nothing_changes(vocab: CountsVocabulary) -> None:
    assert restore([], vocab) is None
    assert restore(["lao"], vocab) is None  # ``lao`` is already the likeliest spelling
    assert restore(["lao", "cải"], vocab) is None  # no pair: ``lao`` stays, ``cải`` is fixed
    assert restore(["lào", "cai"], vocab) is None  # ``cai`` is right after ``lào``
    assert restore(["Lào", "Cai"], vocab) is None


def test_empty_vocabulary_restores_nothing() -> None:
    empty = CountsVocabulary({}, {})
    assert restore(["lao", "cai"], empty) is None
    assert restore_query("lao cai", empty) is None


# -- restore_query ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("lao cai", "Lào Cai"),
        ("ha noi", "Hà Nội"),
        ("gia vang", "giá vàng"),
        ("cai nghien", "cai nghiện"),  # ``Cai`` is mostly capitalised, but not before ``nghiện``
        ("cai bap lao cai", "cải bắp Lào Cai"),
        ("Gia vang", "Giá vàng"),  # the user's capitals win over the corpus
        ("LAO CAI", "LÀO CAI"),
        ("gia vang, ha noi", "giá vàng, Hà Nội"),
        ("  gia vang 2024!", "  giá vàng 2024!"),
        ("gia vàng", "giá vàng"),
        ("xyz gia vang", "xyz giá vàng"),
    ],
)
def test_restore_query(vocab: CountsVocabulary, query: str, expected: str) -> None:
    assert restore_query(query, vocab) == expected


@pytest.mark.parametrize("query", ["", "Lào Cai", "lao", "xyz 2024", "lao cải", "giá vàng"])
def test_restore_query_none_when_unchanged(vocab: CountsVocabulary, query: str) -> None:
    assert restore_query(query, vocab) is None


def test_punctuation_splits_the_query(vocab: CountsVocabulary) -> None:
    """Across a comma there is no pair: ``lao`` alone stays ``lao``, ``cai`` alone is ``cải``."""
    assert restore_query("lao, cai", vocab) == "lao, cải"


# -- CountsVocabulary ---------------------------------------------------------------------------


def test_vocabulary_satisfies_the_protocols(vocab: CountsVocabulary) -> None:
    assert isinstance(vocab, AccentVocabulary)
    assert isinstance(vocab, CasedAccentVocabulary)


def test_counting(vocab: CountsVocabulary) -> None:
    assert vocab.variants("cai") == {"cải": 7, "cai": 6, "cái": 2}
    assert list(vocab.variants("cai")) == ["cải", "cai", "cái"]  # most frequent first
    assert vocab.variants("nope") == {}
    assert vocab.pair_count("lào", "cai") == 4
    assert vocab.followers("lào") == {"cai": 4}
    assert vocab.pair_count("cai", "cải") == 0  # ``Lào Cai trồng cải``: not adjacent
    assert vocab.pair_count("bắp", "cải") == 0  # ``cải bắp, cải thảo``: the comma splits
    assert vocab.pair_count("sinh", "người") == 0  # ``sinh 2024 người``: numbers split too
    assert vocab.count("2024") == 0
    assert vocab.count("kĩ") == 1 and vocab.count("kỹ") == 0  # canonical spelling only
    assert vocab.total == sum(vocab.to_payload()["counts"])


def test_capitalisation_ignores_sentence_starts(vocab: CountsVocabulary) -> None:
    assert vocab.title_share("giá") == 0.0  # ``Giá vàng`` opens sentences, is still lower case
    assert vocab.title_share("lào") == 1.0
    assert vocab.title_share("cai") == pytest.approx(4 / 6)
    assert vocab.pair_title_shares("lào", "cai") is None  # agrees with both words: not stored
    assert vocab.pair_title_shares("cai", "nghiện") == (0.0, 0.0)  # overrules ``cai``
    assert vocab.pair_title_shares("nope", "cai") is None


def test_plain_dict_construction() -> None:
    counts = CountsVocabulary(
        {"lào": 2, "lao": 9, "cai": 1, "cải": 7},
        {("lào", "cai"): 2, ("lao", "động"): 5},
        titles={"lào": 2, "cai": 1},
    )
    assert counts.count("động") == 5  # pair-only syllables join the unigrams
    assert counts.follower_types("lao") == 1
    assert restore(["lao", "cai"], counts) == ["lào", "cai"]
    assert restore_query("lao cai", counts) == "Lào Cai"


def test_pruning_keeps_follower_types() -> None:
    texts = ["gia vàng tăng", "giá vàng giảm", "giá vàng đứng"]
    full = CountsVocabulary.from_texts(texts)
    pruned = CountsVocabulary.from_texts(texts, min_pair_count=2)
    assert full.followers("vàng") == {"tăng": 1, "giảm": 1, "đứng": 1}
    assert pruned.followers("vàng") == {}
    assert pruned.follower_types("vàng") == full.follower_types("vàng") == 3
    assert pruned.pair_count("giá", "vàng") == 2
    assert pruned.pair_total < full.pair_total


# -- serialisation ------------------------------------------------------------------------------


def _decisions(vocab: CountsVocabulary) -> list[str | None]:
    queries = ["lao cai", "ha noi", "gia vang", "cai nghien", "LAO CAI", "lao"]
    return [restore_query(q, vocab) for q in queries]


def test_json_round_trip(vocab: CountsVocabulary) -> None:
    text = vocab.to_json()
    again = CountsVocabulary.from_json(text)
    assert again == vocab
    assert again.to_json() == text
    assert _decisions(again) == _decisions(vocab)
    assert "Lào" not in text.split('"syllables"')[0]  # the header names no syllables


def test_file_round_trip(vocab: CountsVocabulary, tmp_path) -> None:
    for name in ("accents.json", "accents.json.gz"):
        path = tmp_path / name
        vocab.save(path)
        assert CountsVocabulary.load(path) == vocab
    sizes = {name: (tmp_path / name).stat().st_size for name in ("accents.json", "accents.json.gz")}
    assert sizes["accents.json.gz"] < sizes["accents.json"]


def test_pickle_round_trip(vocab: CountsVocabulary) -> None:
    again = pickle.loads(pickle.dumps(vocab))
    assert again == vocab
    assert _decisions(again) == _decisions(vocab)


def test_rejects_other_payloads() -> None:
    with pytest.raises(ValueError, match="vnsearch-accents"):
        CountsVocabulary.from_json('{"format": "something-else", "version": 1}')
    with pytest.raises(ValueError):
        CountsVocabulary.from_json('{"format": "vnsearch-accents", "version": 99}')


# -- speed --------------------------------------------------------------------------------------


def test_ten_syllable_query_is_fast() -> None:
    """Worst case for the decoder: every syllable has 18 spellings and every pair was seen."""
    rng = random.Random(7)
    tones = "\u0300\u0301\u0303\u0309\u0323"
    spellings: dict[str, list[str]] = {}
    for onset in ("m", "c", "t", "l", "b", "h", "n", "v", "x", "s"):
        forms = [onset + vowel for vowel in ("a", "ă", "â")]
        spellings[onset + "a"] = [
            unicodedata.normalize("NFC", form + tone) for form in forms for tone in ("", *tones)
        ]
    unigrams = {s: rng.randint(1, 5000) for forms in spellings.values() for s in forms}
    bigrams = {
        (a, b): rng.randint(1, 300)
        for first, second in itertools.permutations(spellings, 2)
        for a in spellings[first]
        for b in spellings[second]
    }
    vocab = CountsVocabulary(unigrams, bigrams)
    assert all(len(vocab.variants(key)) == 18 for key in spellings)
    query = list(spellings)
    restore(query, vocab)  # warm the canonical/fold caches, as a running server has them
    runs = 200
    start = time.perf_counter()
    for _ in range(runs):
        restore(query, vocab)
    per_query_ms = (time.perf_counter() - start) / runs * 1000
    # Typically ~0.5 ms here and ~0.2 ms on real news vocabularies; the bound leaves CI headroom.
    assert per_query_ms < 5


def test_a_run_is_decoded_once_then_remembered(monkeypatch: pytest.MonkeyPatch) -> None:
    import search.accents as accents

    vocab = CountsVocabulary.from_texts(CORPUS)  # its own: the shared one remembers other tests
    calls: list[tuple[str, ...]] = []
    real = accents._choices

    def counting(syllables: list[str], v: CountsVocabulary):
        calls.append(tuple(syllables))
        return real(syllables, v)

    monkeypatch.setattr(accents, "_choices", counting)
    first = restore(["lao", "cai"], vocab)
    again = restore(["lao", "cai"], vocab)
    assert first == again == ["lào", "cai"]
    assert first is not again  # each caller gets its own list
    assert calls == [("lao", "cai")]
    # The same syllables capitalised (the suggestion text) share the decoding.
    assert restore(["Lao", "CAI"], vocab) == ["lào", "cai"]
    assert calls == [("lao", "cai")]
    assert restore(["ha", "noi"], vocab) == ["hà", "nội"]
    assert calls == [("lao", "cai"), ("ha", "noi")]
    # What is not restored comes back exactly as typed, whoever decoded it first.
    assert restore(["HA", "noi", "2024"], vocab) == ["hà", "nội", "2024"]
    assert restore(["ha", "noi", "2024"], vocab) == ["hà", "nội", "2024"]
    assert calls[-1] == ("ha", "noi", "2024") and len(calls) == 3
    # another vocabulary (a new index generation) decodes afresh
    restore(["lao", "cai"], CountsVocabulary.from_texts(CORPUS))
    assert len(calls) == 4


# -- MappedVocabulary ---------------------------------------------------------------------------


def mapped(texts: list[str], min_pair_count: int) -> MappedVocabulary:
    counts = AccentCounts.empty().add(count_texts(texts))
    return MappedVocabulary(vocabulary_arrays(counts, min_pair_count=min_pair_count))


@pytest.mark.parametrize("min_pair_count", [1, 2])
def test_mapped_vocabulary_answers_as_the_dict_one(min_pair_count: int) -> None:
    """The arrays workers map give every answer the dicts gave, in the same order."""
    plain = CountsVocabulary.from_texts(CORPUS, min_pair_count=min_pair_count)
    arrays = mapped(CORPUS, min_pair_count)
    assert isinstance(arrays, CasedAccentVocabulary)
    assert arrays.to_counts() == plain
    syllables = plain.to_payload()["syllables"] + ["nope", "2024"]
    assert (arrays.total, len(arrays), arrays.pair_total) == (
        plain.total,
        len(plain),
        plain.pair_total,
    )
    for word in syllables:
        for folded in {word, fold(word)}:
            assert list(arrays.variants(folded).items()) == list(plain.variants(folded).items())
        assert arrays.count(word) == plain.count(word)
        assert arrays.title_share(word) == plain.title_share(word)
        assert arrays.follower_types(word) == plain.follower_types(word)
        assert arrays.followers(word) == plain.followers(word)
    for first, second in itertools.product(syllables, repeat=2):
        assert arrays.pair_count(first, second) == plain.pair_count(first, second)
        assert arrays.pair_title_shares(first, second) == plain.pair_title_shares(first, second)
    assert arrays.pair_table(syllables, syllables) == pair_table(plain, syllables, syllables)
    assert arrays.frequent_terms(12) == plain.frequent_terms(12)
    payload = plain.to_payload()  # syllables most frequent first
    by_fold: dict[str, int] = {}
    for syllable, count in zip(payload["syllables"], payload["counts"], strict=True):
        by_fold[fold(syllable)] = by_fold.get(fold(syllable), 0) + count
    assert list(arrays.folded_counts()) == list(by_fold.items())


def test_mapped_vocabulary_restores_as_the_dict_one() -> None:
    plain = CountsVocabulary.from_texts(CORPUS, min_pair_count=2)
    arrays = mapped(CORPUS, 2)
    rnd = random.Random(6)
    words = [fold(w) for text in CORPUS for w in text.replace(",", " ").split()]
    for _ in range(300):
        query = " ".join(rnd.choice(words) for _ in range(rnd.randint(1, 6)))
        assert restore_query(query, arrays) == restore_query(query, plain), query


@pytest.mark.parametrize("min_pair_count", [1, 2])
def test_the_compiled_decoder_chooses_as_the_python_one(min_pair_count: int) -> None:
    """A server's vocabulary decodes through a compiled loop (``kernels.best_path``): on random
    lattices (unknown syllables, equal counts, one candidate or many a position, the same one
    twice: exact ties, which go to the first) it chooses exactly what the Python decoder
    chooses, over the arrays and over the dicts."""
    plain = CountsVocabulary.from_texts(CORPUS, min_pair_count=min_pair_count)
    arrays = mapped(CORPUS, min_pair_count)
    syllables = plain.to_payload()["syllables"] + ["nope", "zzz"]
    rnd = random.Random(min_pair_count)
    decoded = 0
    for _ in range(400):
        lattice = []
        for _ in range(rnd.randint(1, 7)):
            words = rnd.choices(syllables, k=rnd.randint(1, 5))
            counts = [rnd.choice([0, 1, 1, 2, plain.count(w)]) for w in words]
            lattice.append((words, counts))
        path = arrays.best_path(lattice)
        if kernels.compiled():
            assert path is not None
            decoded += 1
        chosen = accents._viterbi(lattice, arrays)
        assert chosen == accents._viterbi_python(lattice, arrays), lattice
        assert chosen == accents._viterbi_python(lattice, plain), lattice
    assert decoded == (400 if kernels.compiled() else 0)


def test_a_mapped_vocabulary_without_pairs() -> None:
    """Every pair seen once: none is kept, and the decoder still runs on unigrams."""
    texts = ["Lào Cai mưa", "cải bắp ngon", "cái này"]
    plain = CountsVocabulary.from_texts(texts, min_pair_count=2)
    arrays = mapped(texts, 2)
    assert arrays.pair_total == plain.pair_total == 0
    for query in ("lao cai", "cai bap", "cai nay mua"):
        assert restore_query(query, arrays) == restore_query(query, plain), query
    assert arrays.pair_count("lào", "cai") == 0
    empty = mapped([], 2)
    assert (len(empty), restore(["lao"], empty), list(empty.folded_counts())) == (0, None, [])
