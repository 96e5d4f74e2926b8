"""The shipped gold set (and the shared dev set) checked verbatim against the corpus."""

from collections import Counter
from pathlib import Path

import pytest

from qa.eval.gold import check_against_documents, load_gold

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "data" / "sample"
GOLD = REPO / "eval" / "gold.jsonl"
TUNE = REPO / "eval" / "tune.jsonl"  # tuning part: qa calibrate fits on gold.jsonl + tune.jsonl
TEST = REPO / "eval" / "test.jsonl"  # held-out part: nothing is tuned on it
DEV = REPO.parent / "shared" / "eval" / "dev.jsonl"  # the team's dev set, beside the work tree


def _texts() -> dict[str, str]:
    return {p.name: p.read_text(encoding="utf-8") for p in sorted(SAMPLE.iterdir()) if p.is_file()}


def test_gold_strings_are_verbatim_in_their_documents():
    items = load_gold(GOLD)  # also validates: unique ids, answers inside evidence, fields
    assert check_against_documents(items, _texts()) == []


def test_gold_answers_inside_evidence_and_ids_unique():
    items = load_gold(GOLD)
    assert len({i.id for i in items}) == len(items)
    for item in items:
        for answer in item.answers:
            assert answer in item.evidence, (item.id, answer)


def test_gold_set_size_and_coverage():
    items = load_gold(GOLD)
    assert len(items) >= 80
    assert sum(1 for i in items if not i.answerable) >= 10
    langs = Counter(i.lang for i in items)
    assert langs["zh"] > 0 and langs["en"] > 0
    assert all(i.type == "unanswerable" for i in items if not i.answerable)
    # every sample document is asked about
    assert {i.doc for i in items if i.answerable} == set(_texts())


@pytest.mark.skipif(not DEV.is_file(), reason=f"shared dev set {DEV} is not present on this machine")
def test_dev_set_strings_are_verbatim():
    items = load_gold(DEV)
    assert check_against_documents(items, _texts()) == []


@pytest.mark.parametrize("path", [TUNE, TEST], ids=["tune", "test"])
def test_split_strings_are_verbatim(path):
    items = load_gold(path)
    assert check_against_documents(items, _texts()) == []


def test_split_is_disjoint_and_shaped_as_the_issue_asks():
    tune, test, gold = load_gold(TUNE), load_gold(TEST), load_gold(GOLD)
    new = tune + test
    ids = [i.id for i in new + gold]
    assert len(ids) == len(set(ids))  # no id in two parts
    questions = [i.question for i in new]
    assert len(set(questions)) == len(questions)
    assert not {i.evidence for i in tune if i.evidence} & {i.evidence for i in test if i.evidence}
    assert len(new) >= 60
    assert sum(i.lang == "en" for i in new) * 2 >= len(new)  # at least half English
    assert sum(not i.answerable for i in new) >= 30  # near-miss unanswerables
    assert sum(i.type == "paraphrase" for i in new) >= 20
    for part in (tune, test):  # both parts hold both classes in both languages
        for lang in ("zh", "en"):
            assert any(i.lang == lang and i.answerable for i in part)
            assert any(i.lang == lang and not i.answerable for i in part)
