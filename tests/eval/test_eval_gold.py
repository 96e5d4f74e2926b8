"""The gold loader: every problem named with its line and a fix."""

import json

import pytest

from qa.errors import InputError, NotFoundError
from qa.eval.gold import GoldError, check_against_documents, load_gold, parse_gold

GOOD = {"id": "a1", "question": "鄂州建成多少个红色网格驿站?", "lang": "zh", "doc": "ezhou.txt",
        "answers": ["136个"], "evidence": "建成红色网格驿站136个", "type": "number"}
UNANSWERABLE = {"id": "a2", "question": "Who is the mayor of Paris?", "lang": "en", "doc": None,
                "answers": [], "evidence": None, "type": "unanswerable"}


def _lines(*objs):
    return [o if isinstance(o, str) else json.dumps(o, ensure_ascii=False) for o in objs]


def test_loads_good_file(tmp_path):
    path = tmp_path / "gold.jsonl"
    path.write_text("\n".join(_lines(GOOD, UNANSWERABLE)) + "\n\n", encoding="utf-8")
    items = load_gold(path)
    assert [i.id for i in items] == ["a1", "a2"]
    assert items[0].answerable and not items[1].answerable
    assert items[0].answers == ("136个",) and items[1].evidence is None


def _problems(*objs) -> list[str]:
    with pytest.raises(GoldError) as info:
        parse_gold(_lines(*objs), source="g.jsonl")
    assert isinstance(info.value, InputError)  # the CLI maps it to a usage error
    return list(info.value.problems)


def test_bad_json_names_the_line():
    problems = _problems(GOOD, '{"id": "x", ')
    assert len(problems) == 1 and problems[0].startswith("g.jsonl line 2: not valid JSON")


def test_missing_and_unknown_fields():
    obj = {k: v for k, v in GOOD.items() if k != "lang"}
    obj["answer"] = "x"
    problems = _problems(obj)
    assert "line 1: missing field(s) lang" in problems[0]
    assert "unknown field(s) answer" in problems[1] and "fix the spelling" in problems[1]


def test_answer_must_be_inside_evidence():
    problems = _problems(dict(GOOD, answers=["238个"]))
    assert problems == ["g.jsonl line 1: answer '238个' is not inside the evidence; "
                        "copy the answer verbatim from the evidence, or widen the evidence"]


def test_duplicate_ids_and_all_problems_at_once():
    problems = _problems(GOOD, dict(GOOD, lang="fr"), GOOD)
    assert any("line 2: lang must be one of zh, en" in p for p in problems)
    assert any("line 3: id 'a1' is already used on line 1" in p for p in problems)


def test_unanswerable_must_not_carry_answers():
    problems = _problems(dict(UNANSWERABLE, answers=["x"]))
    assert "doc is null (unanswerable) but answers or evidence are set" in problems[0]


def test_answerable_needs_evidence_and_answers():
    problems = _problems(dict(GOOD, evidence=None), dict(GOOD, id="b", answers=[]))
    assert "evidence must be a non-empty string" in problems[0]
    assert "needs at least one answer" in problems[1]


def test_empty_and_missing_files(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n", encoding="utf-8")
    with pytest.raises(GoldError, match="no gold item"):
        load_gold(empty)
    with pytest.raises(NotFoundError):
        load_gold(tmp_path / "nope.jsonl")


def test_check_against_documents():
    items = parse_gold(_lines(GOOD, UNANSWERABLE))
    assert check_against_documents(items, {"ezhou.txt": "鄂州建成红色网格驿站136个。"}) == []
    assert check_against_documents(items, {}) == ["a1: document ezhou.txt is not in the corpus"]
    problems = check_against_documents(items, {"ezhou.txt": "鄂州建成紅色網格驛站136個。"})
    assert problems[0].startswith("a1: evidence") and "verbatim" in problems[0]
