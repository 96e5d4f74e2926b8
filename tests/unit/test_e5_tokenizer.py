"""The SentencePiece-unigram segmentation of qa.e5_file on hand-made vocabularies."""

from __future__ import annotations

import doctest

from qa.e5_file import Tokenizer

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
