"""The blind question sets of issue 13 (eval/test3.jsonl … test11.jsonl), checked
verbatim against the corpus and against the shape the issue asks for. Each was written from the
documents alone by someone who did not read the code, and each is scored once by the lead as the
held-out part of its round; test3 to test9 became tuning material after they had been scored; test10 is the
eighth round's held-out part."""

from collections import Counter
from pathlib import Path

import pytest

from qa.eval.gold import check_against_documents, load_gold

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "data" / "sample"
# Each blind set with the sets written before it (which it must not repeat) and its minimum
# numbers of questions, near-miss unanswerables and paraphrases (issue 13: >= 60, >= 30, >= 20).
SETS = {
    "test3.jsonl": (("gold.jsonl", "tune.jsonl", "test.jsonl", "test2.jsonl"), 70, 25, 20),
    "test4.jsonl": (("gold.jsonl", "tune.jsonl", "test.jsonl", "test2.jsonl", "test3.jsonl"), 80, 32, 20),
    "test5.jsonl": (("gold.jsonl", "tune.jsonl", "test.jsonl", "test2.jsonl", "test3.jsonl", "test4.jsonl"),
                    64, 30, 20),
    "test6.jsonl": (("gold.jsonl", "tune.jsonl", "test.jsonl", "test2.jsonl", "test3.jsonl", "test4.jsonl",
                     "test5.jsonl"), 64, 30, 20),
    "test7.jsonl": (("gold.jsonl", "tune.jsonl", "test.jsonl", "test2.jsonl", "test3.jsonl", "test4.jsonl",
                     "test5.jsonl", "test6.jsonl"), 64, 30, 20),
    "test8.jsonl": (("gold.jsonl", "tune.jsonl", "test.jsonl", "test2.jsonl", "test3.jsonl", "test4.jsonl",
                     "test5.jsonl", "test6.jsonl", "test7.jsonl"), 64, 30, 20),
    # (five questions that repeated earlier sets word for word were dropped, four of them
    # unanswerable, hence 27)
    "test9.jsonl": (("gold.jsonl", "tune.jsonl", "test.jsonl", "test2.jsonl", "test3.jsonl", "test4.jsonl",
                     "test5.jsonl", "test6.jsonl", "test7.jsonl", "test8.jsonl"), 64, 27, 20),
    "test10.jsonl": (("gold.jsonl", "tune.jsonl", "test.jsonl", "test2.jsonl", "test3.jsonl", "test4.jsonl",
                      "test5.jsonl", "test6.jsonl", "test7.jsonl", "test8.jsonl", "test9.jsonl"), 64, 30, 20),
    # written for the next round and not scored yet: nothing may be tuned on it before it is
    "test11.jsonl": (("gold.jsonl", "tune.jsonl", "test.jsonl", "test2.jsonl", "test3.jsonl", "test4.jsonl",
                      "test5.jsonl", "test6.jsonl", "test7.jsonl", "test8.jsonl", "test9.jsonl", "test10.jsonl"),
                     64, 30, 20),
}
# Documents a set asks no answerable question about: by test11 the earlier sets had asked
# nearly every fact of the Xianning interviews (109 questions), so its questions about them
# are near misses only.
NOT_ASKED = {"test11.jsonl": {"000_9cda43de7004e204.txt"}}


def _texts() -> dict[str, str]:
    return {p.name: p.read_text(encoding="utf-8") for p in sorted(SAMPLE.iterdir()) if p.is_file()}


@pytest.mark.parametrize("name", sorted(SETS))
def test_strings_are_verbatim_in_their_documents(name):
    items = load_gold(REPO / "eval" / name)  # also validates ids, fields and answers inside evidence
    assert check_against_documents(items, _texts()) == []


@pytest.mark.parametrize("name", sorted(SETS))
def test_shape(name):
    _, least, least_unanswerable, least_paraphrases = SETS[name]
    items = load_gold(REPO / "eval" / name)
    assert len(items) >= least
    langs = Counter(i.lang for i in items)
    assert abs(langs["en"] - langs["zh"]) <= len(items) // 10  # about half each
    unanswerable = [i for i in items if not i.answerable]
    assert len(unanswerable) >= least_unanswerable
    assert all(i.type == "unanswerable" and i.doc is None and not i.answers for i in unanswerable)
    assert sum(i.type == "paraphrase" for i in items) >= least_paraphrases
    # every sample document is asked about, in both languages overall
    assert {i.doc for i in items if i.answerable} == set(_texts()) - NOT_ASKED.get(name, set())
    for lang in ("zh", "en"):
        assert any(i.lang == lang and i.answerable for i in items)
        assert any(i.lang == lang and not i.answerable for i in items)


@pytest.mark.parametrize("name", sorted(SETS))
def test_is_new(name):
    items = load_gold(REPO / "eval" / name)
    earlier = [i for other in SETS[name][0] for i in load_gold(REPO / "eval" / other)]
    assert len({i.id for i in items}) == len(items)
    assert not {i.id for i in items} & {i.id for i in earlier}
    assert len({i.question for i in items}) == len(items)
    assert not {i.question for i in items} & {i.question for i in earlier}
