"""qa.e5_file: the SentencePiece-unigram segmentation on hand-made vocabularies, and
what a file that is not the weights gets."""

from __future__ import annotations

import doctest

import pytest

from qa.e5_file import E5File, Tokenizer, read_config
from qa.errors import ConfigError

# ids: 0 "▁急", 1 "救", 2 "▁急救", 3 "圈", 4 "▁", 5 "a"
PIECES = {"▁急": 0, "救": 1, "▁急救": 2, "圈": 3, "▁": 4, "a": 5}


def tokenizer(scores, normalise=None, unk=9):
    return Tokenizer(PIECES, scores, normalise or {}, unk=unk)


def test_the_highest_scoring_path_wins():
    # "▁急救"+"圈" against "▁急"+"救"+"圈": the total score decides.
    t = tokenizer([-0.6, -0.6, -1.0, -1.0, -3.0, -1.0])
    assert t.encode("急救圈") == [2, 3]  # -2.0 against -2.2
    t = tokenizer([-0.4, -0.4, -1.0, -1.0, -3.0, -1.0])
    assert t.encode("急救圈") == [0, 1, 3]  # -1.8 against -2.0


def test_unknown_characters_fall_back_one_at_a_time_with_a_penalty():
    t = tokenizer([-1.0] * 6)
    # "宜" and "昌" are not pieces: each is unk at (lowest score - 10); "▁" starts the text.
    assert t.encode("宜昌圈") == [4, 9, 9, 3]
    assert t.unk_score == -11.0


def test_spaces_collapse_and_become_metaspace():
    t = tokenizer([-1.0] * 6)
    assert t.encode("a   a") == t.encode("a a") == [4, 5, 4, 5]


def test_normalisation_map_applies_per_character():
    t = tokenizer([-1.0] * 6, normalise={"Ａ": "a", "\u200b": ""})
    assert t.encode("Ａ\u200ba") == [4, 5, 5]


def test_docstring_example_holds():
    import qa.e5_file

    finder = doctest.DocTestFinder()
    tests = [t for t in finder.find(qa.e5_file) if t.name.endswith("Tokenizer")]
    runner = doctest.DocTestRunner()
    for test in tests:
        runner.run(test)
    assert tests and runner.summarize(verbose=False).failed == 0


def test_a_file_that_is_not_the_weights_is_refused_by_name(tmp_path):
    bogus = tmp_path / "model.bin"
    bogus.write_bytes(b"GGUF" + bytes(100))
    for read in (read_config, E5File):
        with pytest.raises(ConfigError, match="not an e5 weights file") as err:
            read(bogus)
        assert "model.bin" in str(err.value)
    with pytest.raises(ConfigError, match="cannot read"):
        E5File(tmp_path / "missing.bin")


def test_the_fast_path_finds_the_same_segmentation_as_the_reference():
    """encode (the tokenizers package's Unigram model) against viterbi (plain Python)
    on random vocabularies and texts: unknown runs, ties and long pieces included."""
    import random

    rng = random.Random(7)
    alphabet = "ab急救圈 "
    for _ in range(40):
        pieces: dict[str, int] = {}
        while len(pieces) < 12:
            piece = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 4))).replace(" ", "▁")
            pieces.setdefault(piece, len(pieces))
        scores = [round(rng.uniform(-12.0, -0.5), 1) for _ in pieces]  # rounded: ties happen
        t = Tokenizer(pieces, scores, {}, unk=len(pieces) + 3)
        for _ in range(50):
            text = "".join(rng.choice(alphabet + "xy") for _ in range(rng.randint(0, 14)))
            assert t.encode(text) == t.viterbi(text), (pieces, scores, text)
