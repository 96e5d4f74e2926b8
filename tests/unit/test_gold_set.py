"""The shipped gold set (and the shared dev set) checked verbatim against the corpus."""

from collections import Counter
from pathlib import Path

import pytest

from qa.eval.gold import check_against_documents, load_gold

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "data" / "sample"
GOLD = REPO / "eval" / "gold.jsonl"
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
