"""Our pyvi segmentation over our own tokens equals ``ViTokenizer.tokenize`` on real text, and our
decoder of pyvi's CRF gives exactly the labels of pyvi's own crfsuite tagger."""

from __future__ import annotations

import gzip
import itertools
import json
import logging
import re
import string
import subprocess
import sys
import warnings
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pytest
from conftest import shared_path
from hypothesis import given, settings
from hypothesis import strategies as st

from search import segmentation
from search.analysis import _TOKEN_RE
from search.crf import CrfModel, _viterbi_any, read_model, viterbi
from search.segmentation import (
    _model,
    _pyvi_files,
    segment,
    tag,
    tag_crfsuite,
    word_starts,
    word_starts_crfsuite,
)
from search.text import normalize


def _vi_tokenizer():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SyntaxWarning)
        from pyvi.ViTokenizer import ViTokenizer
    return ViTokenizer


def _sentences(n: int) -> list[str]:
    path = shared_path("ud-vi-vtb", "vi_vtb-ud-test.ws.jsonl")
    out = []
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            out.append(json.loads(line)["text"])
            if len(out) == n:
                break
    return out


def test_segment_equals_pyvi_tokenize_on_200_treebank_sentences() -> None:
    vit = _vi_tokenizer()
    sentences = _sentences(200)
    assert len(sentences) == 200
    mismatches = []
    for text in sentences:
        _, syllables = vit.sylabelize(text)
        expected = vit.tokenize(text).split(" ")
        got = segment(syllables)
        if got != expected:
            mismatches.append((text, got, expected))
    assert mismatches == []


def test_segment_joins_known_compounds() -> None:
    assert segment(["hợp", "tác", "giữa", "Lào", "Cai"]) == ["hợp_tác", "giữa", "Lào_Cai"]


def test_punctuation_and_digits_are_never_joined() -> None:
    vit = _vi_tokenizer()
    text = "Ngày 4/3/2024 , giá tăng 12,5 % ."
    _, syllables = vit.sylabelize(text)
    words = segment(syllables)
    assert words == vit.tokenize(text).split(" ")
    for word in words:
        if "_" in word:
            parts = word.split("_")
            assert not any(p[0].isdigit() or not p[0].isalnum() for p in parts), word


@pytest.mark.parametrize("tokens", [[], ["Lào"]])
def test_trivial_inputs(tokens: list[str]) -> None:
    assert segment(tokens) == tokens
    assert word_starts(tokens) == [True] * len(tokens)


# -- our decoder against pyvi's crfsuite tagger ------------------------------------------------


def _indexer_tokens(text: str) -> list[str]:
    """Tokens exactly as the indexer segments them (``search.analysis.index_terms``)."""
    return _TOKEN_RE.findall(normalize(text))


def _decoder_mismatches(sequences: Iterable[list[str]]) -> list[tuple[list[str], str]]:
    """Sequences where our decoder's labels or word starts differ from pyvi's tagger's."""
    out = []
    for tokens in sequences:
        if tag(tokens) != tag_crfsuite(tokens):
            out.append((tokens, "labels"))
        elif word_starts(tokens) != word_starts_crfsuite(tokens):
            out.append((tokens, "word starts"))
    return out


def test_decoder_equals_crfsuite_on_the_whole_treebank_test_split() -> None:
    vit = _vi_tokenizer()
    path = shared_path("ud-vi-vtb", "vi_vtb-ud-test.ws.jsonl")
    with path.open(encoding="utf-8") as fh:
        texts = [json.loads(line)["text"] for line in fh]
    assert len(texts) == 800
    assert _decoder_mismatches(_indexer_tokens(t) for t in texts) == []
    assert _decoder_mismatches(vit.sylabelize(t)[1] for t in texts) == []


def test_decoder_equals_crfsuite_on_300_vietnews_articles() -> None:
    """Title, lead and body each as one sequence, as the indexer segments them."""
    path = shared_path("vietnews", "corpus.jsonl.gz")
    sequences = []
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        for line in itertools.islice(fh, 300):
            record = json.loads(line)
            for field in ("title", "abstract", "body"):
                if record.get(field):
                    sequences.append(_indexer_tokens(record[field]))
    assert sum(map(len, sequences)) > 150_000
    assert _decoder_mismatches(sequences) == []


ODD_SEQUENCES = [
    [],
    ["Lào"],
    ["hợp"],
    [","],
    list(".,;:!?()[]{}\"'-/%"),
    ["...", "--", "==>", "->", "(.", "\n"],
    ["2024", "4/3", "12,5", "1.000", "0", "00", "٣"],
    ["HÀ", "NỘI", "UBND", "TP", ".", "HCM", "VIỆT", "NAM"],
    ["Hà", "Nội", "hà", "nội", "HÀ", "NỘI", "hÀ", "nỘi"],
    ["xyzzy", "qwq", "Zzz", "ｆｕｌｌ", "ß", "İstanbul", "ΣΑΣ", "日本", "🙂"],
    ["a b", "c", "hợp tác", "giữa", "Lào Cai"],  # spaces inside tokens: n-grams as strings
    # crfsuite cuts attribute names at a NUL; the n-gram sets see the whole string
    ["hợp\x00", "tác", "\x00", "Lào", "Cai\x00x"],
    ["vì\x00", "vậy"],  # B_W B_W; read whole, "vì\x00" would be unknown and give B_W I_W
]


@pytest.mark.parametrize("tokens", ODD_SEQUENCES)
def test_decoder_equals_crfsuite_on_odd_inputs(tokens: list[str]) -> None:
    assert _decoder_mismatches([tokens]) == []


def test_decoder_equals_crfsuite_on_a_very_long_sequence() -> None:
    text = "Hai tỉnh Lào Cai và Lai Châu ký kết hợp tác giai đoạn 2023 - 2025, tăng 12,5 %. "
    tokens = _indexer_tokens(text * 2000)
    assert len(tokens) > 30_000
    assert _decoder_mismatches([tokens]) == []


_SYLLABLES = ["hợp", "tác", "giữa", "Lào", "Cai", "thành", "phố", "Hồ", "Chí", "Minh", "ủy"]
_TOKENS = st.one_of(
    st.sampled_from(_SYLLABLES),
    st.sampled_from(_SYLLABLES).map(str.upper),
    st.sampled_from(list(string.punctuation)),
    st.from_regex(r"\d{1,4}([.,]\d{1,3})?", fullmatch=True),
    st.text(st.characters(codec="utf-8"), min_size=1, max_size=5),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_TOKENS, max_size=40))
def test_decoder_equals_crfsuite_on_generated_tokens(tokens: list[str]) -> None:
    assert _decoder_mismatches([tokens]) == []


def test_viterbi_for_two_labels_equals_the_general_loop() -> None:
    """The unrolled two-label loop against ``crf1dc_viterbi`` transcribed, ties included."""
    rng = np.random.default_rng(7)
    for n in (1, 2, 3, 50):
        for _ in range(200):
            state = rng.integers(-2, 3, size=(n, 2)).astype(float)  # small ints: many ties
            trans = rng.integers(-2, 3, size=(2, 2)).astype(float)
            assert viterbi(state, trans).tolist() == list(
                _viterbi_any(state.tolist(), trans.tolist())
            )


def test_viterbi_keeps_the_first_of_equal_paths() -> None:
    assert viterbi(np.zeros((4, 2)), np.zeros((2, 2))).tolist() == [0, 0, 0, 0]
    assert viterbi(np.zeros((0, 2)), np.zeros((2, 2))).tolist() == []


def _pyvi_model() -> CrfModel:
    vit, _ = _model()
    return read_model(Path(vit.model.modelfile.name).read_bytes())


def test_model_file_weights_agree_with_crfsuite_dump_and_keep_full_precision(
    tmp_path: Path,
) -> None:
    """``read_model`` against ``Tagger.dump()``, which prints every weight rounded to 1e-6."""
    model = _pyvi_model()
    _, tagger = _model()
    tagger.dump(str(tmp_path / "dump.txt"))
    line = re.compile(r"\s*\(\d+\) (\S+) --> (\S+): ([-+]?\d+\.\d+)$")
    dumped = {}
    for text in (tmp_path / "dump.txt").read_text(encoding="utf-8").splitlines():
        if m := line.match(text):
            dumped[m.group(1), m.group(2)] = float(m.group(3))
    labels = {name: i for i, name in enumerate(model.labels)}
    assert model.labels == ("B_W", "I_W")
    checked = 0
    for (source, label), weight in dumped.items():
        if source in labels:
            exact = model.transitions[labels[source], labels[label]]
        else:
            exact = model.weights(source)[labels[label]]
        assert abs(exact - weight) <= 5e-7, (source, label)
        checked += 1
    assert checked > 10_000
    assert any(round(w, 6) != w for w in model.state.ravel().tolist())


def test_pyvi_files_are_read_as_pyvi_reads_them() -> None:
    """The decoder reads pyvi's model file from its pickle without importing pyvi (which
    rebuilds a scikit-learn estimator: 1.3 s of every process that segments): the same bytes and
    n-grams as pyvi's own ``ViTokenizer`` holds."""
    raw, bi_grams, tri_grams = _pyvi_files()
    vit, _ = _model()
    assert raw == Path(vit.model.modelfile.name).read_bytes()
    assert (bi_grams, tri_grams) == (vit.bi_grams, vit.tri_grams)


def test_segmenting_does_not_import_pyvi() -> None:
    code = (
        "import sys; from search.segmentation import segment; "
        "print(segment(['hợp', 'tác', 'giữa', 'Lào', 'Cai'])); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('pyvi', 'sklearn')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        cwd=Path(__file__).resolve().parents[1],
    ).stdout.splitlines()
    assert out == ["['hợp_tác', 'giữa', 'Lào_Cai']", "[]"]


def test_unreadable_pyvi_files_fall_back_to_pyvi_itself(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(segmentation, "PYVI_MODEL", "no-such-model.pkl")
    segmentation._decoder.cache_clear()
    try:
        with caplog.at_level(logging.WARNING, logger="search.segmentation"):
            assert segment(["hợp", "tác", "giữa", "Lào", "Cai"]) == ["hợp_tác", "giữa", "Lào_Cai"]
        assert "loading pyvi itself" in caplog.text
    finally:
        segmentation._decoder.cache_clear()
