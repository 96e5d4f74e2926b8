"""Follow-up resolution: a conversation → the query retrieval runs (pure functions)."""

import pytest

from qa.followup import find_places, resolve_followup, retrieval_query
from qa.types import Turn

YICHANG_ZH = "宜昌打造多少分钟急救圈?"
YICHANG_EN = "What emergency-care radius did Yichang set?"


@pytest.mark.parametrize("question,previous,expected", [
    ("那武汉呢?", YICHANG_ZH, "武汉打造多少分钟急救圈?"),
    ("那武汉呢？", YICHANG_ZH, "武汉打造多少分钟急救圈?"),
    ("武汉呢", YICHANG_ZH, "武汉打造多少分钟急救圈?"),
    ("还有鄂州", YICHANG_ZH, "鄂州打造多少分钟急救圈?"),
    ("那么鄂州的情况如何？", YICHANG_ZH, "鄂州打造多少分钟急救圈?"),
    ("and Wuhan?", YICHANG_EN, "What emergency-care radius did Wuhan set?"),
    ("What about Ezhou?", YICHANG_EN, "What emergency-care radius did Ezhou set?"),
    ("how about in Xianning?", YICHANG_EN, "What emergency-care radius did Xianning set?"),
    ("Wuhan?", YICHANG_EN, "What emergency-care radius did Wuhan set?"),  # a bare place
    ("武漢?", YICHANG_ZH, "武漢打造多少分钟急救圈?"),  # traditional script, kept as typed
    # a Chinese follow-up to an English question: the new place as typed
    ("那武汉呢?", YICHANG_EN, "What emergency-care radius did 武汉 set?"),
])
def test_place_is_swapped(question, previous, expected):
    assert resolve_followup(question, previous) == expected


def test_every_mention_of_the_old_place_is_swapped():
    previous = "宜昌市委要求宜昌各县市打造多少分钟急救圈?"
    assert resolve_followup("那武汉呢?", previous) == "武汉市委要求武汉各县市打造多少分钟急救圈?"


def test_followup_without_a_place_adds_its_topic():
    assert resolve_followup("那非中心城区呢?", "宜昌中心城区急救圈是几分钟?") == "宜昌中心城区急救圈是几分钟? 非中心城区"
    assert resolve_followup("What about the counties?", YICHANG_EN) == YICHANG_EN + " the counties"


def test_followup_to_a_question_without_place_appends_the_place():
    assert resolve_followup("那武汉呢?", "急救圈是几分钟?") == "急救圈是几分钟? 武汉"


def test_referring_words_carry_the_earlier_place():
    assert resolve_followup("它有多少个急救站?", "鄂州的急救圈是几分钟?") == "它有多少个急救站? 鄂州"
    assert resolve_followup("How many ambulances does it have?", "What about Ezhou's grid stations?") == (
        "How many ambulances does it have? Ezhou"
    )


@pytest.mark.parametrize("question", [
    "鄂州建成了多少个红色网格驿站?",  # a new question with its own place and topic
    "宜昌的急救体系建设如何?",  # ends like a follow-up but asks something new
    "How many red grid stations has Ezhou built?",
    "What is the GDP of Wuhan?",
    "武汉有多少个急救站呢?",  # has its own question word
])
def test_self_contained_question_is_not_polluted(question):
    assert resolve_followup(question, YICHANG_ZH) == question
    assert retrieval_query(question, [Turn("user", YICHANG_EN), Turn("assistant", "…")]) == question


def test_no_history_means_the_question_itself():
    assert retrieval_query("  那武汉呢? ") == "那武汉呢?"
    assert retrieval_query("那武汉呢?", [Turn("assistant", "宜昌打造10分钟急救圈")]) == "那武汉呢?"


def test_followups_chain_through_the_conversation():
    history = [
        Turn("user", YICHANG_EN),
        Turn("assistant", "According to …"),
        Turn("user", "那武汉呢?"),
        Turn("assistant", "根据…"),
    ]
    assert retrieval_query("what about Ezhou?", history) == "What emergency-care radius did Ezhou set?"
    # a new topic resets the context for the follow-ups after it
    history += [Turn("user", "鄂州建成了多少个红色网格驿站?"), Turn("assistant", "…")]
    assert retrieval_query("那宜昌呢?", history) == "宜昌建成了多少个红色网格驿站?"


def test_find_places():
    found = [(p.text, p.region, p.start, p.end) for p in find_places("What about Ezhou and 宜昌市?")]
    assert found == [("Ezhou", "鄂州市", 11, 16), ("宜昌市", "宜昌市", 21, 24)]
    # traditional script, and English names only as whole words
    assert [p.region for p in find_places("鄂州與咸寧")] == ["鄂州市", "咸宁市"]
    assert find_places("Yiduo and Wuhanese") == []
    assert find_places("") == []
