"""Answers: retrieved passages → quoted sentences with numbered citations, or a refusal.

The answer is *extractive*: it quotes sentences of the documents verbatim, in their
original characters, and every citation satisfies ``quote == doc.text[start:end]``.
For each question:

1. the follow-up resolver (:mod:`qa.followup`) turns the conversation into a
   retrieval query, and the retriever returns the best chunks;
2. every sentence of the top chunks is scored (:func:`sentence_score`) for how well
   it *answers*: its precomputed embedding's similarity to the question, how much of
   the question's content terms it holds (:func:`coverage`, through the dictionary
   and :mod:`qa.synonyms`), whether it holds the kind of fact asked
   (:mod:`qa.answer_type`: a date, an amount, a person…), whether its document is
   about the place and it names the year the question names, minus a little per
   chunk rank; interview questions ("记者:…?") and bylines are pushed down;
3. the best sentence is quoted (with a neighbour when it cannot stand alone),
   plus the runners-up that score almost as well (:data:`SECOND_QUOTE_MARGIN`);
4. the evidence is judged (:func:`evidence_features`, :func:`confidence`): the
   probability of a logistic model fitted on the tuning questions
   (:mod:`qa.answerability`) below the calibrated threshold (:mod:`qa.calibration`),
   a question naming a place that the evidence is not about or a year it does not
   mention, or quotes lacking the kind of fact asked for (a year, a number of
   公里, an amount of money…) give a plain refusal in the question's language,
   with the passages offered as "see also".

No sentence is embedded at question time: the index holds every sentence vector.

>>> leans_on_neighbour("其中,宜昌建成急救站12个。"), answer_lang("那武汉呢?")
('previous', 'zh')
"""

from __future__ import annotations

import math
import re
import threading
import time
import weakref
from collections import Counter
from dataclasses import dataclass, replace
from typing import Sequence

import numpy as np

from qa.answer_type import (AskedKind, asked_kind, asks_extreme_of_average, asks_new_of_total, asks_opposite_change,
                            asks_present_of_target, event_absent, holds_kind, kind_position, lacks_asked_list,
                            names_person, office_absent, without_question_numbers)
from qa.errors import InputError
from qa.fold import fold, has_cjk
from qa.followup import find_places, retrieval_query
from qa.index.lexical import tokenize
from qa.pinyin import is_pinyin_name, pinyin_index
from qa.retrieve import validate_k
from qa.translate import CALENDAR_WORDS, english_forms  # defined beside the dictionary they serve
from qa.types import Answer, Citation, Document, Filters, Hit, Sentence, Turn

REFUSAL = {"zh": "未在文档中找到相关内容。", "en": "Not found in the documents."}

# How many of the top chunks provide candidate sentences (fixed, so that scores and
# the calibrated threshold do not depend on the k a caller asks for).
POOL_CHUNKS = 5
# English questions draw on more chunks: cross-lingual retrieval ranks the passage
# holding the answer lower (on the tuning sets, several English answers sat at rank
# 6-10, no Chinese one). Chosen on all tuning sets (gold, tune, test, test2, test3,
# dev; English answers contained out of 127): 5 → 99, 6 → 99, 7 → 101, 8 → 101, and
# 7 lost nothing on any set (Chinese questions unchanged: they keep POOL_CHUNKS).
EN_POOL_CHUNKS = 7
# Weights of the sentence score (cosine similarities of this model differ by ~0.01
# between a good and a poor sentence, so lexical evidence is weighted to match).
LEXICAL_WEIGHT = 0.03
# English questions: the model's cross-lingual similarity separates sentences less
# than in Chinese, and the translated terms (only senses the corpus uses, see
# qa.translate.corpus_senses) are the sharper signal. Chosen on the tuning part
# (gold.jsonl + tune.jsonl + dev) among 0.03, 0.045, 0.06, 0.08 once retrieval
# translated with corpus senses: 0.045 gained two tuning answers and one refusal,
# 0.06 and above lost gold answers (before that change, 0.045-0.08 gained nothing).
EN_LEXICAL_WEIGHT = 0.045
RANK_PENALTY = 0.002
NOT_CONTENT_PENALTY = 0.02
# Bonuses for a sentence that holds the kind of fact asked (a date for "when", an
# amount of money for "how much"), whose document is about the place the question
# names, and that names the year the question names. Same scale as LEXICAL_WEIGHT:
# on the tuning questions (gold.jsonl + tune.jsonl) the sentence holding the answer
# was often a runner-up within 0.01 of a topical neighbour without the fact; 0.01
# moves it up without letting a dissimilar sentence jump over a close match (0.02
# lost answers and refusals there; a larger English lexical weight, 0.045-0.08, and
# a penalty for headings were tried there too and gained nothing).
KIND_WEIGHT = 0.01
PLACE_WEIGHT = 0.01
PERIOD_WEIGHT = 0.005
# A "who" question's sentence that names a person next to the office, not only the
# office (see names_person). Chosen with KIND_WEIGHT on a grid (KIND 0.01/0.015/0.02 ×
# PERSON 0/0.01/0.02) by leave-one-set-out over the five tuning sets (gold, tune, test,
# test2, test3; choose on four by answers right + unanswerables refused, then first
# quotes; score the fifth): PERSON 0.02 was chosen in 4 of 5 folds and KIND 0.01 in 4
# of 5; on the held-out fold it changed nothing (+1 answer on test, -1 first quote on
# gold over all five), so it is kept as the mechanism's weight, not as a measured gain.
PERSON_WEIGHT = 0.02
# Question terms around the clause that holds the asked fact (see focus_coverage).
# Chosen among 0, 0.01, 0.02, 0.03 by leave-one-set-out over the five tuning sets (as
# PERSON_WEIGHT): 0.01 chosen in 3 of 5 folds, 0.03 in 2; on the held-out folds answers
# right + unanswerables refused 0 net (+1 test3, -1 test), first quotes +2; over all five
# sets 0.01 gains two answers and two first quotes and loses nothing on any set, while
# 0.02 and 0.03 lose answers on gold and test.
FOCUS_WEIGHT = 0.01
# A sentence that enumerates at least as many items as a numbered list question asks for
# ("哪四个环节" and 网格发现、社区呼叫、分级响应、协同处置) gets this on top of KIND_WEIGHT.
# Swept by `qa calibrate --sweep LIST_WEIGHT=0,0.01,0.02,0.03` with every tuning set
# (docs/reports/round16/list-weight.md): 0.01 and 0.02 both gain test6's two four-item
# lists over the sentences introducing them and lose nothing; 0.03 loses a refusal
# (a list about something else jumps ahead). The smaller is kept.
LIST_WEIGHT = 0.01
# A runner-up within this score margin of the best sentence is quoted too.
SECOND_QUOTE_MARGIN = 0.008
MAX_QUOTES = 3
# Sentences longer than this are trimmed to the clauses around the matched terms.
MAX_QUOTE_CHARS = 160
# How many sentences either side of the chosen one count as its context when
# judging whether the documents answer the question.
WINDOW = 2
# English senses kept per word (the ones the corpus uses most).
MAX_SENSES = 6

# Question words and fillers: they say *what kind* of answer is wanted, not what about.
_QUESTION_WORDS = frozenset(
    "哪一年 几期 第几 多少 哪些 哪个 哪家 哪里 哪几 哪几家 哪几个 什么 是谁 谁 几个 几 几年 几次 哪 哪一次 哪项 "
    "哪种 哪位 哪三个 哪五张 怎样 如何 多长 多长时间 多久 多大 是什么 是多少 有多少 一共 共有 分别 具体 指 "
    "要 提到 提出 要求 叫 叫什么".split()
)
_EN_SKIP = frozenset(
    """a an the of to in on for and or is are was were be been by with what which who whom how many much did does
    do at as it its this that these those there their they them from into about has have had will would should
    can could must may according per each all any some other than then so such not no year years kind kinds level
    levels number total what's set get make made give gave""".split()
)
_EN_COMPOUND = re.compile(r"[a-z][a-z']+(?:-[a-z][a-z']+)*")
_NUMBER_WORDS = {
    "one": ("一", "1"), "two": ("两", "二", "2"), "three": ("三", "3"), "four": ("四", "4"),
    "five": ("五", "5"), "six": ("六", "6"), "seven": ("七", "7"), "eight": ("八", "8"),
    "nine": ("九", "9"), "ten": ("十", "10"), "first": ("第一", "首", "一"), "second": ("第二", "二"),
    "third": ("第三", "三"), "half": ("半",), "hundred": ("百",), "thousand": ("千",),
}
# A sentence that opens like this leans on the one before it.
_LEANS_BACK = re.compile(
    r"^(?:其中|同时|此外|另外|另一方面|与此同时|这|该|其|此|他|她|它|但|而|并且|并|因此|所以|为此|对此|然而|"
    r"不过|从而|进而|也|还|又|以上|上述|這|該|與此同時|為此|對此|從而|進而|還)"
)
_LEADS_ON = re.compile(r"[:：]\s*$")
_SHORT_SENTENCE = 14
_INTERVIEW = re.compile(r"^\s*(?:问|問|记者|記者|主持人)\s*[:：]")
_META_LINE = re.compile(r"来源\s*[:：]|來源\s*[:：]|日期\s*[:：]|发布时间|發布時間|(?:记者|記者|通讯员)\s*\S{2,4}\s*$")
_CLAUSE_END = re.compile(r"[,，;；:：、]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2064\ufeff]")


# ---------------------------------------------------------------- input


def default_max_question_chars() -> int:
    """``Settings.max_question_chars``'s default: the one source of the length limit.

    >>> default_max_question_chars() >= 10
    True
    """
    from qa.settings import Settings

    return int(Settings.model_fields["max_question_chars"].default)


def clean_question(question: object, max_chars: int | None = None) -> str:
    """The question with control characters removed and whitespace collapsed.

    Raises :class:`InputError` for a non-string, an over-long question, or one with
    nothing left to ask (empty, whitespace, control characters or symbols only).

    >>> clean_question("  宜昌\\x00急救圈?\\n ")
    '宜昌 急救圈?'
    >>> clean_question("\\x07\\x1b")
    Traceback (most recent call last):
    ...
    qa.errors.InputError: the question is empty (type a question, e.g. 宜昌打造多少分钟急救圈?)
    """
    if not isinstance(question, str):
        raise InputError(f"the question must be text, got {type(question).__name__}", hint="pass a string")
    max_chars = default_max_question_chars() if max_chars is None else max_chars
    if len(question) > max_chars:
        raise InputError(
            f"the question is {len(question)} characters long; the limit is {max_chars}",
            hint="shorten it to the essential question",
        )
    text = " ".join(_CONTROL.sub(" ", question).split())
    if not text:
        raise InputError("the question is empty", hint="type a question, e.g. 宜昌打造多少分钟急救圈?")
    if not any(ch.isalnum() for ch in text):
        raise InputError(
            "the question has no words, only symbols or emoji",
            hint="ask in Chinese or English, e.g. What emergency-care radius did Yichang set?",
        )
    return text


def answer_lang(question: str) -> str:
    """``zh`` when Chinese characters carry the question, else ``en``.

    An English question quoting a Chinese term is still English; a Chinese question
    naming an English acronym is still Chinese.

    >>> answer_lang("那武汉呢?"), answer_lang("How many projects (州定民生实事) are set?"), answer_lang("P2实验室是什么?")
    ('zh', 'en', 'zh')
    """
    cjk = sum(1 for ch in question if has_cjk(ch))
    latin_words = len(re.findall(r"[A-Za-z]{2,}", question))
    return "zh" if cjk and cjk >= 2 * latin_words else "en"


# ---------------------------------------------------------------- corpus statistics


@dataclass(frozen=True)
class CorpusStats:
    """Document frequencies of BM25 tokens over the chunks of one index."""

    df: dict[str, int]
    n: int

    @classmethod
    def from_tokens(cls, chunk_tokens: Sequence[Sequence[str]]) -> "CorpusStats":
        df: Counter[str] = Counter()
        for tokens in chunk_tokens:
            df.update(set(tokens))
        return cls(dict(df), len(chunk_tokens))

    def idf(self, term: str) -> float:
        """BM25's idf; a term the corpus never uses gets the highest weight.

        >>> CorpusStats({"急救": 1}, 3).idf("急救") < CorpusStats({}, 3).idf("急救")
        True
        """
        df = self.df.get(term, 0)
        return math.log(1.0 + (self.n - df + 0.5) / (df + 0.5))


# Keyed by id() with a weak reference to check identity: IndexData holds arrays and
# is not hashable, and a swapped-out index must not be kept alive by this cache.
_STATS: dict[int, tuple[weakref.ref, CorpusStats]] = {}
_STATS_LOCK = threading.Lock()


def corpus_stats(data) -> CorpusStats:
    """:class:`CorpusStats` of an index, computed once per loaded index (thread-safe)."""
    with _STATS_LOCK:
        entry = _STATS.get(id(data))
        if entry is not None and entry[0]() is data:
            return entry[1]
        term_stats = data.term_stats()
        stats = CorpusStats(term_stats.df, term_stats.n)
        for key in [k for k, (ref, _) in _STATS.items() if ref() is None]:
            del _STATS[key]
        _STATS[id(data)] = (weakref.ref(data), stats)
        return stats


# ---------------------------------------------------------------- question terms


@dataclass(frozen=True)
class QueryTerms:
    """What a question is about, in the corpus's own words.

    ``groups`` are alternatives for one question term (an English word's Chinese
    senses, or one Chinese token), each with an idf ``weight``. Places are kept apart
    (``regions``): they are checked against the document's region, not the sentence.
    """

    groups: tuple[tuple[str, ...], ...]
    weights: tuple[float, ...]
    regions: frozenset[str]
    unknown: frozenset[str] = frozenset()  # English names the corpus never uses (see english_names)
    prefecture: bool = False  # "the prefecture", 全州, 州里: a prefecture's document, none named (asks_prefecture)


def query_terms(query: str, stats: CorpusStats) -> QueryTerms:
    """Content terms of ``query``: Chinese jieba tokens, numbers, and English words
    through the dictionary (only senses the corpus uses, most frequent first).

    >>> t = query_terms("宜昌打造多少分钟急救圈?", CorpusStats({"急救": 2, "分钟": 3}, 10))
    >>> t.groups, sorted(t.regions)
    ((('打造',), ('分钟',), ('急救',)), ['宜昌市'])
    """
    from qa.synonyms import expand_en, expand_zh
    from qa.translate import english_senses, unknown_name

    folded = fold(query)
    places = find_places(query)
    place_words = {fold(p.text) for p in places}
    groups: list[tuple[str, ...]] = []
    for token in dict.fromkeys(tokenize(folded)):
        if token in place_words or token in _QUESTION_WORDS or any(token in w for w in place_words):
            continue
        if has_cjk(token):
            synonyms = tuple(s for s in expand_zh(token) if stats.df.get(s, 0) > 0)
            if len(token) >= 2 or synonyms:  # single characters (年, 个, 第) match almost anything
                groups.append(((token,) if len(token) >= 2 else ()) + synonyms)
        elif token[0].isdigit() or (len(token) > 1 and stats.df.get(token, 0) > 0 and token not in _EN_SKIP):
            groups.append((token,))  # numbers, and Latin terms the corpus uses (P2, ICU, GDP)
    names = english_names(query, place_words)
    unknown: set[str] = set()
    # A hyphenated compound ("emergency-care") is one concept: one group holding
    # the senses of all its parts, so a sentence is not rewarded twice for
    # matching the parts separately (应急 + 救治) over the compound (急救).
    for compound in dict.fromkeys(_EN_COMPOUND.findall(folded)):
        senses: list[str] = []
        for word in compound.split("-"):
            if word in _EN_SKIP or word in place_words:
                continue
            if word in _NUMBER_WORDS:
                senses += _NUMBER_WORDS[word]
                continue
            found = [s for form in english_forms(word) for s in english_senses(form) if stats.df.get(s, 0) > 0]
            found = list(dict.fromkeys(found))
            found.sort(key=lambda s: -stats.df[s])
            senses += found[:MAX_SENSES]
            senses += [s for s in expand_en(word) if stats.df.get(s, 0) > 0]
        if not senses and compound in names and compound not in CALENDAR_WORDS and is_pinyin_name(compound):
            # A name in pinyin: the corpus words it spells (keji → 科技). One that spells
            # none is not judged absent: jieba may have cut the name apart in the corpus
            # (樂山至資中 → 至资 / 中等), and refusing an answerable question costs more.
            senses = list(pinyin_index(stats.df).words(compound))
        elif (not senses and compound in names and unknown_name(compound, folded, stats.df)
              and not _pinyin_neighbours(compound, folded, stats.df)):  # Li of "Li Huaping" (李华平)
            unknown.add(compound)
            senses = [compound]  # a name the corpus never uses: a term no sentence holds
        if senses:
            groups.append(tuple(dict.fromkeys(senses)))
    weights = tuple(max(stats.idf(t) for t in g) for g in groups)
    return QueryTerms(tuple(groups), weights, frozenset(p.region for p in places), frozenset(unknown),
                      asks_prefecture(query, places))


# "The prefecture", 全州, 州里, 州政府…: a question about a prefecture (自治州) that it does
# not name, as its own staff ask. 鄂州 and 杭州 are cities: 州 must not follow a character.
_PREFECTURE_Q = re.compile(r"\bprefecture(?:'s|s)?\b(?!-level)|\bprefectural\b|"
                           r"(?:全|本|该|我|整个)州|(?<![\u4e00-\u9fff])州(?:里|委|政府|人民政府|长|级|直|定)")


def asks_prefecture(question: str, places=None) -> bool:
    """Whether ``question`` is about "the prefecture" without naming a place.

    >>> asks_prefecture("全州净增多少家规模工业企业?"), asks_prefecture("What does the prefecture plan?")
    (True, True)
    >>> asks_prefecture("鄂州市的急救站有多少个?"), asks_prefecture("宜昌是哪一级城市? prefecture-level")
    (False, False)
    """
    places = find_places(question) if places is None else places
    return not places and bool(_PREFECTURE_Q.search(fold(question)))


def is_prefecture(region: str | None) -> bool:
    """Whether a document's region is a prefecture (…自治州, …州), not a city (鄂州市).

    >>> is_prefecture("湘西土家族苗族自治州"), is_prefecture("鄂州市"), is_prefecture(None)
    (True, False, False)
    """
    return bool(region) and region.endswith("州")


def in_asked_place(region: str | None, terms: QueryTerms) -> bool:
    """Whether a document about ``region`` is about the place the question asks about:
    one it names, or any prefecture when it asks about "the prefecture"."""
    return region in terms.regions or (terms.prefecture and is_prefecture(region))


def _pinyin_neighbours(word: str, folded: str, df) -> bool:
    """Whether ``word`` is part of a name the corpus holds: in some corpus word's pinyin, or
    spelling one together with the word before or after it in the question."""
    index = pinyin_index(df)
    if index.mentions(word):
        return True
    words = _EN_COMPOUND.findall(folded)
    for i, w in enumerate(words):
        if w == word:
            pairs = [words[i - 1] + w] if i > 0 else []
            pairs += [w + words[i + 1]] if i + 1 < len(words) else []
            if any(index.words(p) for p in pairs):
                return True
    return False


_EN_NAME = re.compile(r"(?<![.?!:]\s)(?<!^)\b[A-Z][a-z]+(?:-[A-Z][a-z]+)*\b")


def english_names(query: str, place_words: set[str] = frozenset()) -> set[str]:
    """Capitalised English words inside a sentence (not the first word), folded: names.

    When none of a name's senses occurs in the corpus, the question asks about
    something the documents never mention (Mars), so it stays a question term that no
    sentence can cover, as an unknown Chinese word does, instead of being dropped.

    >>> sorted(english_names("What is the population of Mars? And Wuhan?", {"wuhan"}))
    ['mars']
    """
    found = {fold(m.group(0)) for m in _EN_NAME.finditer(query)}
    return {w for w in found if w not in place_words and w not in _EN_SKIP}


def _soft_match(term: str, text: str) -> float:
    """1 for the term itself; half credit for a long term whose parts occur."""
    if term in text:
        return 1.0
    if len(term) >= 3 and has_cjk(term):
        bigrams = [term[i : i + 2] for i in range(len(term) - 1)]
        return 0.5 * sum(b in text for b in bigrams) / len(bigrams)
    return 0.0


def coverage(terms: QueryTerms, folded_text: str) -> float:
    """Share of the question's term weight that ``folded_text`` holds, in [0, 1].

    >>> t = QueryTerms((("急救",), ("分钟",)), (3.0, 1.0), frozenset())
    >>> coverage(t, "打造10分钟急救圈"), coverage(t, "10分钟"), coverage(t, "")
    (1.0, 0.25, 0.0)
    """
    total = sum(terms.weights)
    if total <= 0:
        return 0.0
    got = sum(w * max(_soft_match(t, folded_text) for t in g) for g, w in zip(terms.groups, terms.weights))
    return got / total


# ---------------------------------------------------------------- sentences


def split_clauses(text: str) -> list[tuple[int, int]]:
    """Clause spans of a sentence: cut after each comma, semicolon, colon or 、."""
    spans, start = [], 0
    for m in _CLAUSE_END.finditer(text):
        if m.end() - start >= 1:
            spans.append((start, m.end()))
            start = m.end()
    if start < len(text):
        spans.append((start, len(text)))
    return spans


def _body(sentence: Sentence) -> str:
    """The folded sentence without its context line (which every sentence shares)."""
    return sentence.search_text.rsplit("\n", 1)[-1]


def is_not_content(text: str) -> bool:
    """Interview questions, bylines and metadata lines: never an answer.

    >>> is_not_content("记者:如何实现全覆盖?"), is_not_content("信息来源:鄂州政府网"), is_not_content("宜昌打造急救圈。")
    (True, True, False)
    """
    t = text.strip()
    return t.endswith(("?", "？")) or bool(_INTERVIEW.match(t)) or bool(_META_LINE.search(t))


def leans_on_neighbour(text: str) -> str | None:
    """``"previous"``/``"next"`` when a sentence cannot stand alone, else None.

    >>> leans_on_neighbour("其中,宜昌建成急救站12个。"), leans_on_neighbour("四是推进急救体系建设。")
    ('previous', 'next')
    >>> leans_on_neighbour("宜昌打造中心城区“10分钟”急救圈,县市“30分钟”急救圈。") is None
    True
    """
    t = text.strip()
    if _LEANS_BACK.match(t):
        return "previous"
    if _LEADS_ON.search(t) or len(t) < _SHORT_SENTENCE:
        return "next"
    return None


def focus_coverage(terms: QueryTerms, asked: AskedKind, text: str, question: str = "") -> float:
    """The best :func:`coverage` of the question's terms over each clause of ``text`` that
    holds the asked kind of fact, with the clauses either side (0 when no kind is asked
    or none holds it): the asked fact should sit among the question's words, not in
    another clause of a long sentence about something else.

    >>> t = QueryTerms((("纠纷",),), (1.0,), frozenset())
    >>> focus_coverage(t, AskedKind("name"), "小区,“三无”小区,设施不全;质量差;成立“物业纠纷矛盾调处室”")
    1.0
    >>> focus_coverage(t, AskedKind("name"), "“三无”小区,设施不全;质量差;调处纠纷")
    0.0
    """
    if not asked.kind:
        return 0.0
    return max((coverage(terms, w) for w in _windows_holding(asked, fold(text), question, _CLAUSE_END)), default=0.0)


def _windows_holding(asked: AskedKind, folded: str, question: str, ends: re.Pattern) -> list[str]:
    """Each clause of ``folded`` (cut after every match of ``ends``) that holds the asked
    kind of fact, joined with the clause before and the clause after it.

    >>> _windows_holding(AskedKind("count", "人|名|位"), "甲,招聘113人,乙,丙", "", re.compile(","))
    ['甲,招聘113人,乙,']
    """
    cuts = [0] + [m.end() for m in ends.finditer(folded)] + [len(folded)]
    clauses = [folded[a:b] for a, b in zip(cuts, cuts[1:]) if folded[a:b].strip()]
    return ["".join(clauses[max(0, i - 1) : i + 2]) for i, c in enumerate(clauses) if holds_kind(asked, c, question)]


def sentence_score(dense: float, cover: float, rank: int, not_content: bool,
                   kind: bool = False, place: bool = False, period: bool = False,
                   lexical_weight: float = LEXICAL_WEIGHT, person: bool = False, focus: float = 0.0,
                   listed: bool = False) -> float:
    """How well one sentence answers: similarity + lexical evidence + the asked kind
    of fact, place and period − chunk rank.

    >>> round(sentence_score(0.80, 0.5, 1, False), 4), round(sentence_score(0.80, 0.5, 1, True), 4)
    (0.813, 0.793)
    >>> round(sentence_score(0.80, 0.5, 1, False, kind=True, place=True, period=True), 4)
    0.838
    >>> round(sentence_score(0.80, 0.5, 1, False, lexical_weight=EN_LEXICAL_WEIGHT), 4)  # an English question
    0.8205
    """
    return (dense + lexical_weight * cover - RANK_PENALTY * rank - NOT_CONTENT_PENALTY * not_content
            + KIND_WEIGHT * kind + PLACE_WEIGHT * place + PERIOD_WEIGHT * period + PERSON_WEIGHT * person
            + FOCUS_WEIGHT * focus + LIST_WEIGHT * listed)


@dataclass(frozen=True)
class Candidate:
    """One scored sentence of the top chunks."""

    position: int  # into IndexData.sentences
    doc_id: str
    rank: int  # best rank of a chunk holding it
    dense: float
    coverage: float
    score: float


# ---------------------------------------------------------------- evidence


@dataclass(frozen=True)
class Evidence:
    """What the refusal decision looks at (all about the best sentence)."""

    distinctness: float  # how far the best sentence's similarity stands out from the pool (z-score)
    coverage: float  # question terms in the best sentence (with its neighbour), in [0, 1]
    window_coverage: float  # … in it and WINDOW sentences either side, in [0, 1]
    place_ok: bool  # every place the question names is the document's or is named nearby
    type_ok: bool = True  # the quotes hold the kind of answer asked for (see answer_type_ok)
    years_ok: bool = True  # every year the question names is near the evidence (see years_ok)
    top_dense: float = 0.0  # the best sentence's cosine similarity to the question
    missing: float = 0.0  # idf share of the rarest question term absent near the best sentence
    kind_held: float = 0.0  # 1: a particular kind of fact is asked and the quotes hold it
    asks_kind: float = 0.0  # 1: the question asks a kind of fact the rules check (a figure, date, person…)
    unit_held: float = 0.0  # 1: the question asks a count in a named unit and the quotes hold one
    number_in_quote: float = 0.0  # 1: the quotes hold a figure (a number that is not a year or an ordinal)
    place_match: float = 0.0  # 1: the question names a place and the best sentence's document is about it
    margin: float = 0.0  # the best sentence's score minus the runner-up's
    names_ok: bool = True  # the question names nothing the corpus never mentions (QueryTerms.unknown)
    fact_coverage: float = 0.0  # question terms around the clause holding the asked fact (see fact_coverage)
    fact_missing: float = 0.0  # idf share of the heaviest question term absent there (see fact_coverage)
    other_place: float = 0.0  # 1: the quotes name another city and not the one the question names


_YEAR = re.compile(r"(?<!\d)((?:19|20)\d{2})(?!\d)")
# A figure: a number that is not a year (2021年), a date (6月28日) or an ordinal (第3).
_FIGURE = re.compile(r"(?<![\d.第])(?!(?:19|20)\d{2}年)\d+(?:\.\d+)?(?![\d.]*\s*[月日])(?![\d.])")


def answer_type_ok(question: str, evidence_text: str) -> bool:
    """Does the evidence hold the kind of answer the question asks for?

    A "which year / when" question needs a date in it; "多少公里" needs a number of
    公里 (a placeholder such as "x人" in a redacted report is not a number).

    >>> answer_type_ok("花湖机场哪一年投入运营?", "着力建设花湖机场"), answer_type_ok("哪一年?", "到2022年建成")
    (False, True)
    >>> answer_type_ok("共造成多少人死亡?", "发生事故x起,死亡x人"), answer_type_ok("多少人?", "死亡16人")
    (False, True)
    """
    asked = asked_kind(question)
    return not asked.strict and not asked.rate or holds_kind(asked, evidence_text, question)


def years_ok(question: str, window_text: str) -> bool:
    """Every period the question names (a year, a month, a quarter or half-year) occurs
    near the evidence.

    A period is a constraint: a passage about targets for 2022 does not say what is to be
    reached "by 2025", nor an annual figure what happened in the first quarter. "Near"
    is the best sentence and its neighbours, because reports often name the year once
    for a whole paragraph (the caller passes the paragraph too). A year also matches
    its two-digit form (94年 for 1994), as speeches write it.

    >>> years_ok("What share by 2025?", "到2022年不低于5%"), years_ok("2022年占比?", "到2022年不低于5%")
    (False, True)
    >>> years_ok("Investment in 1994?", "94年的老成绵是1672万元"), years_ok("一季度增长多少?", "全年增长5%")
    (True, False)
    >>> years_ok("What happened in March?", "3月10日,总书记考察"), years_ok("六月的会议?", "7月16日召开")
    (True, False)
    """
    folded = fold(window_text)
    q = fold(question)
    for year in _YEAR.findall(q):
        if year not in folded and not re.search(r"(?<!\d)" + year[2:] + r"年", folded):
            return False
    for forms in _periods(q):
        if not any(f in folded for f in forms):
            return False
    return True


# An explicit rank or ordinal other than the first (全省第二, 第三批): "first" is often
# written 首 (全国首个), the others keep their numeral.
_ORDINAL = re.compile(r"第([二三四五六七八九十]{1,3}|[2-9]|\d{2})(?![\d一二三四五六七八九十])")


def ordinals_ok(question: str, window_text: str) -> bool:
    """Every ordinal the question names (but 第一) occurs near the evidence, in Chinese
    or Arabic numerals: the indicators that came first or third do not say which came second.

    >>> ordinals_ok("获全省第二的有几项?", "其中3项获全省第一、1项获第三"), ordinals_ok("排第二?", "位居全省第2")
    (False, True)
    >>> ordinals_ok("排第几?", "位居全省第二"), ordinals_ok("首个是哪个?", "全国第一个")
    (True, True)
    """
    folded = fold(window_text)
    for m in _ORDINAL.finditer(fold(question)):
        n = m.group(1)
        value = int(n) if n.isdigit() else _zh_value(n)
        forms = {f"第{n}", f"第{value}"} | ({f"第{_zh_number(value)}"} if value <= 12 else set())
        if not any(f in folded for f in forms):
            return False
    return True


def _zh_value(numeral: str) -> int:
    """二 → 2, 十 → 10, 十二 → 12, 二十 → 20 (up to 99)."""
    if "十" not in numeral:
        return _ZH_DIGITS.index(numeral) + 1
    tens, _, ones = numeral.partition("十")
    return (_ZH_DIGITS.index(tens) + 1 if tens else 1) * 10 + (_ZH_DIGITS.index(ones) + 1 if ones else 0)


_MONTHS_EN = ("january february march april may june july august september october november december").split()
_ZH_DIGITS = "一二三四五六七八九十"
_QUARTER = re.compile(r"(?:第)?([一二三四1234])季度|\b(first|second|third|fourth) quarter\b|\bq([1-4])\b")
_HALF = re.compile(r"上半年|下半年|\bfirst half\b|\bsecond half\b")
# A five-year plan is a period too: the "十三五" projects are not the "十四五" ones.
_ORDINALS = ("eleventh", "twelfth", "thirteenth", "fourteenth", "fifteenth")
_PLAN = re.compile(r"(十[一二三四五])五|\b(1[1-5])th five-year\b|\b(" + "|".join(_ORDINALS) + r") five-year\b")


def _zh_number(n: int) -> str:
    """1-12 in Chinese numerals (十一 for 11)."""
    return _ZH_DIGITS[n - 1] if n <= 10 else "十" + _ZH_DIGITS[n - 11]


def _periods(folded_question: str) -> list[tuple[str, ...]]:
    """The months, quarters and half-years a question names, each as the forms the
    evidence may write it in.

    >>> _periods("6月28日召开的全会"), _periods("in the first quarter")
    ([('6月', '六月')], [('一季度', '1季度')])
    >>> _periods("“十三五”规划项目"), _periods("projects of the 14th five-year plan")
    ([('十三五', '13th five-year')], [('十四五', '14th five-year')])
    """
    out: list[tuple[str, ...]] = []
    months = [int(m) for m in re.findall(r"(?<!\d)(1[0-2]|[1-9])\s*月", folded_question)]
    months += [_ZH_DIGITS.index(m[-1]) + 1 + (10 if len(m) == 2 else 0)
               for m in re.findall(r"(?<![一二三四五六七八九十])(十[一二]|[一二三四五六七八九十])月", folded_question)]
    months += [i + 1 for i, name in enumerate(_MONTHS_EN)
               if re.search(r"\b" + name + r"\b", folded_question) and name != "may"]
    for m in dict.fromkeys(months):
        out.append((f"{m}月", f"{_zh_number(m)}月"))
    for m in _QUARTER.finditer(folded_question):
        zh, en, q = m.groups()
        n = ("一二三四".index(zh) + 1 if zh in "一二三四" else int(zh)) if zh else (
            ("first", "second", "third", "fourth").index(en) + 1 if en else int(q))
        out.append((f"{_ZH_DIGITS[n - 1]}季度", f"{n}季度"))
    for m in _HALF.finditer(folded_question):
        out.append(("上半年",) if m.group(0) in ("上半年", "first half") else ("下半年",))
    for m in _PLAN.finditer(folded_question):
        zh, digits, word = m.groups()
        n = _ZH_DIGITS.index(zh[-1]) + 11 if zh else int(digits) if digits else _ORDINALS.index(word) + 11
        out.append((f"十{_ZH_DIGITS[n - 11]}五", f"{n}th five-year"))
    return out


def distinctness(similarities: Sequence[float]) -> float:
    """z-score of the best similarity among the candidates': a sentence that really
    answers stands out from its neighbours; a near miss is one of many alike.

    >>> round(distinctness([0.9, 0.8, 0.8, 0.8]), 3), distinctness([0.8])
    (1.732, 0.0)
    """
    values = np.asarray(similarities, dtype=np.float64)
    if values.size < 2 or values.std() <= 1e-9:
        return 0.0
    return float((values.max() - values.mean()) / values.std())


def passes_rules(e: Evidence) -> bool:
    """The hard rules: the right place, no name the corpus never mentions, the named
    year, the asked kind of fact, and at least one question term near the best sentence.

    >>> passes_rules(Evidence(2.0, 0.5, 0.75, True)), passes_rules(Evidence(2.0, 0.5, 0.75, False))
    (True, False)
    >>> passes_rules(Evidence(3.0, 0.0, 0.0, True)), passes_rules(Evidence(2.0, 0.5, 0.75, True, names_ok=False))
    (False, False)
    """
    return e.place_ok and e.names_ok and e.type_ok and e.years_ok and e.window_coverage > 0


# A refusal quotes what the documents do say when at least this share of the
# question's term weight is near the best sentence (a near miss: the topic is there,
# the asked fact is not). Half is a plain majority, not tuned: it only changes the
# refusal's wording, never whether the question is refused.
NEAR_MISS_COVERAGE = 0.5


def is_near_miss(e: Evidence) -> bool:
    """Whether a refused question is a near miss worth saying what the documents give:
    the right place and period, and the passage lacks the asked kind of fact or holds
    most of the question's terms.

    >>> is_near_miss(Evidence(1.0, 0.2, 0.6, True)), is_near_miss(Evidence(1.0, 0.2, 0.1, True))
    (True, False)
    >>> is_near_miss(Evidence(1.0, 0.2, 0.1, True, type_ok=False)), is_near_miss(Evidence(1.0, 0.2, 0.9, False))
    (True, False)
    """
    return e.place_ok and e.years_ok and (not e.type_ok or e.window_coverage >= NEAR_MISS_COVERAGE)


def confidence(e: Evidence, lang: str = "zh", model=None) -> float:
    """The probability that the documents answer the question, compared with the
    calibrated threshold.

    Zero when a hard rule fails (:func:`passes_rules`: the question names a place
    that the evidence is not about, which the corpus often says the same thing of,
    or a year it does not mention; the quotes lack the kind of fact asked for; not
    one of the question's terms occurs near the best sentence); otherwise the
    fitted logistic model of :mod:`qa.answerability` over the evidence's features.

    >>> from qa.answerability import Model
    >>> m = Model(("window",), (0.5,), (0.25,), (2.0,), 0.0)
    >>> round(confidence(Evidence(2.0, 0.5, 0.75, True), "zh", m), 4), confidence(Evidence(2.0, 0.5, 0.75, False), "zh", m)
    (0.8808, 0.0)
    """
    from qa.answerability import feature_values, load_model

    if not passes_rules(e):
        return 0.0
    model = model or load_model()
    return model.probability(feature_values(e, lang))


# ---------------------------------------------------------------- selection


@dataclass(frozen=True)
class Selection:
    """The scored candidates, the quotes chosen from them, and the evidence judged."""

    candidates: tuple[Candidate, ...]  # best first
    quotes: tuple[tuple[str, int, int], ...]  # (doc_id, start, end) in original offsets
    evidence: Evidence | None


class _Sentences:
    """Neighbour look-ups over the index's sentence list."""

    def __init__(self, data):
        self.data = data

    def same_doc(self, position: int, step: int) -> int | None:
        return self.data.neighbour(position, step)

    def window(self, position: int, radius: int) -> list[int]:
        out = [position]
        for step in range(1, radius + 1):
            for sign in (-1, 1):
                other = self.same_doc(position, sign * step)
                if other is not None:
                    out.append(other)
        return sorted(out)


def score_candidates(retriever, retrieval, terms: QueryTerms, query_vector: np.ndarray,
                     asked: AskedKind | None = None, years: Sequence[str] = (), question: str = "") -> list[Candidate]:
    """Every sentence of the top chunks, scored by :func:`sentence_score`, best first."""
    data = retriever.data
    asked = asked or AskedKind("")
    ranks: dict[int, int] = {}
    pool = EN_POOL_CHUNKS if question and answer_lang(question) == "en" else POOL_CHUNKS
    for rank, pos in enumerate(retrieval.positions[:pool]):
        for s in retriever.chunk_sentences(pos):
            ranks.setdefault(s, rank)
    if not ranks:
        return []
    positions = np.fromiter(ranks, dtype=np.int64, count=len(ranks))
    dense = data.sentence_vectors[positions] @ np.asarray(query_vector, dtype=np.float32)
    lexical_weight = EN_LEXICAL_WEIGHT if question and answer_lang(question) == "en" else LEXICAL_WEIGHT
    out = []
    for s, d in zip(positions.tolist(), dense.tolist()):
        sentence = data.sentences[s]
        body = _body(sentence)
        cover = coverage(terms, body)
        kind = bool(asked.kind) and holds_kind(asked, body, question)
        place = in_asked_place(data.documents[sentence.doc_id].region, terms)
        period = bool(years) and all(y in body for y in years)
        person = kind and asked.kind == "who" and names_person(body, fold(question))
        focus = focus_coverage(terms, asked, body, question) if kind and FOCUS_WEIGHT else 0.0
        listed = kind and asked.kind == "list" and asked.unit.isdigit()  # holds_kind counted the items
        score = sentence_score(d, cover, ranks[s], is_not_content(sentence.text), kind, place, period,
                               lexical_weight, person, focus, listed)
        out.append(Candidate(s, sentence.doc_id, ranks[s], d, cover, score))
    out.sort(key=lambda c: (-c.score, c.position))
    return out


def _same_place(cand: Candidate, best: Candidate, terms: QueryTerms, data) -> bool:
    """Whether a runner-up may join the best sentence's quotes as far as places go:
    when the question names a place and the best sentence's document is about it, a
    runner-up from a document about another place answers another question (Ezhou's
    pay for "community workers' pay in Wuhan")."""
    if not (terms.regions or terms.prefecture) or cand.doc_id == best.doc_id:
        return True
    if not in_asked_place(data.documents[best.doc_id].region, terms):
        return True
    return in_asked_place(data.documents[cand.doc_id].region, terms)


# How many sentences ahead an introducing sentence or headline may find what it
# introduces: an interview's headline runs over two or three short lines before the
# byline (专访…局长 / 危中寻机闯新路 / 咸宁日报全媒体记者 …).
LOOK_AHEAD = 3


def _expand(position: int, sentences: _Sentences, asked: AskedKind | None = None,
            question: str = "", terms: QueryTerms | None = None) -> tuple[int, int]:
    """The sentence range (first, last) to quote so that the sentence stands alone, and
    so that a sentence introducing the list a question asks for ("提出实施…行动计划。")
    brings the next sentence that lists it ("推动光电子、数字产业…突破性发展") when that
    sentence holds a term of the question (``terms``), not a list about something else,
    and an interview's headline its byline (the reporter a "who" question asks for)."""
    text = sentences.data.sentences[position].text
    first = last = position
    if asked is not None and asked.kind in ("list", "who") and not holds_kind(
            asked, _body(sentences.data.sentences[position]), question):
        # Look past short lines (a headline's second line) to the first sentence of body.
        for step in range(1, LOOK_AHEAD + 1):
            nxt = sentences.same_doc(position, step)
            if nxt is None:
                break
            body = _body(sentences.data.sentences[nxt])
            if holds_kind(asked, body, question) and (asked.kind == "who" or terms is None
                                                      or coverage(terms, body) > 0):
                return first, nxt
            if len(body.strip()) >= _SHORT_SENTENCE:
                break
    lean = leans_on_neighbour(text)
    if lean == "previous":
        prev = sentences.same_doc(position, -1)
        if prev is not None and not is_not_content(sentences.data.sentences[prev].text):
            first = prev
    elif lean == "next":
        nxt = sentences.same_doc(position, 1)
        if nxt is not None:
            last = nxt
    return first, last


def trim_span(text: str, start: int, end: int, terms: QueryTerms, limit: int = MAX_QUOTE_CHARS,
              asked: AskedKind | None = None) -> tuple[int, int]:
    """Narrow ``text[start:end]`` to at most ``limit`` characters of whole clauses,
    keeping the stretch that holds the most question terms and, when the question
    asks for a kind of fact, the clause holding it (offsets stay original).

    >>> t = QueryTerms((("急救",),), (1.0,), frozenset())
    >>> s = "一是加强领导,二是完善制度,三是打造急救圈,四是强化保障。"
    >>> a, b = trim_span(s, 0, len(s), t, limit=12); s[a:b]
    '三是打造急救圈,'
    """
    if end - start <= limit:
        return start, end
    clauses = [(start + a, start + b) for a, b in split_clauses(text[start:end])]
    scores = [coverage(terms, fold(text[a:b])) for a, b in clauses]
    if asked is not None and asked.kind:
        # The clause holding the asked fact counts as much as all the question terms.
        scores = [s + (1.0 if kind_position(asked, fold(text[a:b])) is not None else 0.0)
                  for s, (a, b) in zip(scores, clauses)]
    best, best_span = -1.0, (start, end)
    for i in range(len(clauses)):
        total = 0.0
        for j in range(i, len(clauses)):
            if clauses[j][1] - clauses[i][0] > limit:
                break
            total += scores[j]
            if total > best:
                best, best_span = total, (clauses[i][0], clauses[j][1])
    if best <= 0:
        return start, end
    a, b = best_span
    # Whitespace at the edges is not worth quoting.
    while a < b and text[a].isspace():
        a += 1
    while b > a and (text[b - 1].isspace()):
        b -= 1
    return a, b


def select(retriever, retrieval, terms: QueryTerms, query_vector: np.ndarray, question: str) -> Selection:
    """Score the candidate sentences, pick the quotes, and gather the evidence.

    ``question`` is the retrieval query (a resolved follow-up carries the earlier
    question's wording, and so its kind of answer)."""
    data = retriever.data
    asked = asked_kind(question)
    years = _YEAR.findall(fold(question))
    candidates = score_candidates(retriever, retrieval, terms, query_vector, asked, years, question)
    if not candidates:
        return Selection((), (), None)
    sentences = _Sentences(data)
    best = candidates[0]
    chosen: list[tuple[str, int, int]] = []
    covered: set[int] = set()
    seen_text: set[str] = set()
    for cand in candidates:
        if len(chosen) >= MAX_QUOTES or best.score - cand.score >= SECOND_QUOTE_MARGIN:
            break
        text = data.sentences[cand.position].text
        if cand.position in covered or text in seen_text:
            continue
        if cand is not best and not _same_place(cand, best, terms, data):
            continue
        first, last = _expand(cand.position, sentences, asked, question, terms)
        covered.update(range(first, last + 1))
        seen_text.add(text)
        doc = data.documents[cand.doc_id]
        start, end = data.sentences[first].start, data.sentences[last].end
        if first == last:
            start, end = trim_span(doc.text, start, end, terms, asked=asked)
        chosen.append((cand.doc_id, start, end))
    # Merge quotes that overlap or touch (only whitespace between them): two
    # adjacent sentences read better as one quote.
    chosen.sort(key=lambda q: (q[0], q[1]))
    merged: list[tuple[str, int, int]] = []
    for q in chosen:
        last = merged[-1] if merged else None
        if last and last[0] == q[0] and not data.documents[q[0]].text[last[2] : q[1]].strip():
            merged[-1] = (q[0], last[1], max(last[2], q[2]))
        else:
            merged.append(q)
    # Keep the best sentence's quote first.
    best_doc = best.doc_id
    best_start = data.sentences[best.position].start
    merged.sort(key=lambda q: (not (q[0] == best_doc and q[1] <= best_start < q[2] + 1), q[0] != best_doc, q[1]))
    quoted = "".join(data.documents[d].text[a:b] for d, a, b in merged)
    evidence = evidence_features(candidates, terms, sentences, question, quoted, merged)
    return Selection(tuple(candidates), tuple(merged), evidence)


def _paragraph(doc: Document, sentence: Sentence) -> str:
    """The line of the original text that holds ``sentence`` (a paragraph, in these files)."""
    start = doc.text.rfind("\n", 0, sentence.start) + 1
    end = doc.text.find("\n", sentence.end)
    return doc.text[start : end if end >= 0 else len(doc.text)]


def evidence_features(
    candidates: Sequence[Candidate], terms: QueryTerms, sentences: _Sentences, question: str, quoted: str,
    quotes: Sequence[tuple[str, int, int]] = (),
) -> Evidence:
    """The :class:`Evidence` for the best of ``candidates`` (best first); ``quoted``
    is the text of every quote the answer would show, ``quotes`` their spans.

    When the question names a place, the asked kind of fact must be in a quote about
    that place (its document's, or one naming it): Wuhan's "15分钟生活圈", quoted as a
    runner-up, does not answer what Yichang set. A question about what there is now is
    not answered by a target (:func:`qa.answer_type.asks_present_of_target`), nor a
    question about a rise by a fall (:func:`qa.answer_type.asks_opposite_change`), nor one
    about what was added by a stock (:func:`qa.answer_type.asks_new_of_total`); an
    English question about an office's holder needs that office in the quotes
    (:func:`qa.answer_type.office_absent`: a deputy leader is not the leader)."""
    data = sentences.data
    best = candidates[0]
    asked = asked_kind(question)
    first, last = _expand(best.position, sentences, asked, question, terms)
    quote = "".join(_body(data.sentences[p]) for p in range(first, last + 1))
    window = "".join(_body(data.sentences[p]) for p in sentences.window(best.position, WINDOW))
    doc: Document = data.documents[best.doc_id]
    place_ok = True
    paragraph = _paragraph(doc, data.sentences[best.position])
    regions = terms.regions - route_places(question)
    if regions and quotes:
        own = "".join(data.documents[d].text[a:b] for d, a, b in quotes
                      if data.documents[d].region in regions
                      or regions & {p.region for p in find_places(data.documents[d].text[a:b])})
        quoted = own or quoted  # no quote about the place: the place rule below decides
    if regions:
        named_nearby = {p.region for p in find_places(window)}
        place_ok = any(r == doc.region or r in named_nearby for r in regions)
        place_ok = place_ok and local_places_ok(question, window + fold(paragraph))
    elif terms.prefecture:
        # "the prefecture" is answered by a prefecture's document; a city's figure (Ezhou's
        # market entities) answers another question.
        place_ok = is_prefecture(doc.region)
    facts = fact_windows(asked, quoted, question)
    return Evidence(
        distinctness=distinctness([c.dense for c in candidates]),
        coverage=max(best.coverage, coverage(terms, quote)),
        window_coverage=coverage(terms, window),
        place_ok=place_ok,
        type_ok=answer_type_ok(question, quoted) and not another_fact(asked, question, quoted, facts),
        years_ok=years_ok(question, window + paragraph) and ordinals_ok(question, window + paragraph),
        top_dense=best.dense,
        missing=missing_share(terms, window),
        kind_held=1.0 if asked.kind and holds_kind(asked, quoted, question) else 0.0,
        asks_kind=1.0 if asked.strict else 0.0,
        unit_held=1.0 if asked.unit and holds_kind(asked, quoted, question) else 0.0,
        number_in_quote=1.0 if _FIGURE.search(without_question_numbers(fold(quoted), fold(question))) else 0.0,
        place_match=1.0 if in_asked_place(doc.region, terms) else 0.0,
        margin=best.score - candidates[1].score if len(candidates) > 1 else 0.0,
        names_ok=not terms.unknown,
        fact_coverage=fact_coverage(terms, facts),
        fact_missing=fact_missing(terms, facts),
        other_place=1.0 if other_place(terms, quoted) else 0.0,
    )


def another_fact(asked: AskedKind, question: str, quoted: str, facts: Sequence[str]) -> bool:
    """Whether the quotes hold a fact of the asked kind that is not the one asked: a
    target for what there is now, a fall for a rise, a stock for an addition, an average
    for an extreme, another event's date (for a figure, date… ``asked.strict``: these
    read ``facts``, the clauses holding it); another office than the English question's;
    no list where a numbered one is asked. Each rule is a module-level name here, so
    ``qa calibrate --ablate`` can switch it off.

    >>> another_fact(asked_kind("现有多少间?"), "现有多少间?", "", ["不少于15间"])
    True
    >>> another_fact(asked_kind("现有多少间?"), "现有多少间?", "", ["已建成15间"])
    False
    """
    if asked.strict and (asks_present_of_target(question, facts) or asks_opposite_change(question, facts)
                         or asks_new_of_total(question, facts) or asks_extreme_of_average(question, facts)
                         or (asked.kind == "when" and event_absent(question, facts))):
        return True
    if asked.kind == "who" and office_absent(question, quoted):
        return True
    return lacks_asked_list(question, quoted)


# Clause ends for the asked fact's surroundings: commas, semicolons, colons and sentence
# ends, not 、 (which separates the items of one list clause).
_FACT_CLAUSE_END = re.compile(r"[,，;；:：。！？!?]")


def fact_windows(asked: AskedKind, quoted: str, question: str = "") -> list[str]:
    """Each clause of ``quoted`` that holds the asked kind of fact, with the clause before
    and after it (folded). A near miss often holds a figure of the asked kind about
    something else: the figure's own clause does not hold what the question asks about.
    A question that asks no particular kind gets the whole quote.

    >>> fact_windows(AskedKind("count", "人|名|位"), "招聘社区工作者113人,建成驿站20个。但网格员不足。")
    ['招聘社区工作者113人,建成驿站20个。']
    >>> fact_windows(AskedKind(""), "宜昌打造急救圈。")
    ['宜昌打造急救圈。']
    """
    folded = fold(quoted)
    if not (asked.strict or asked.rate):
        return [folded]
    return _windows_holding(asked, folded, question, _FACT_CLAUSE_END)


def fact_coverage(terms: QueryTerms, windows: Sequence[str]) -> float:
    """The best :func:`coverage` of the question's terms over ``windows`` (the
    :func:`fact_windows` of the quotes; 0 when no clause holds the asked fact).

    >>> t = QueryTerms((("网格员",), ("招聘",)), (3.0, 1.0), frozenset())
    >>> fact_coverage(t, fact_windows(AskedKind("count", "人|名|位"), "招聘社区工作者113人,建立薪酬机制。网格员不足。"))
    0.25
    """
    return max((coverage(terms, w) for w in windows), default=0.0)


def fact_missing(terms: QueryTerms, windows: Sequence[str]) -> float:
    """The smallest :func:`missing_share` over ``windows`` (the :func:`fact_windows` of
    the quotes; 1 when no clause holds the asked fact).

    >>> t = QueryTerms((("网格员",), ("招聘",)), (3.0, 1.0), frozenset())
    >>> fact_missing(t, fact_windows(AskedKind("count", "人|名|位"), "招聘社区工作者113人,建立薪酬机制。网格员不足。"))
    1.0
    """
    return min((missing_share(terms, w) for w in windows), default=1.0)


def other_place(terms: QueryTerms, quoted: str) -> bool:
    """The question names a place, and the quotes name another one but not it: a figure
    about Wuhan quoted from a Yichang report does not answer a question about Yichang.

    >>> t = QueryTerms((), (), frozenset({"宜昌市"}))
    >>> other_place(t, "6月28日,中共武汉市委全会召开"), other_place(t, "宜昌与武汉共建"), other_place(t, "全会召开")
    (True, False, False)
    """
    if not terms.regions:
        return False
    named = {p.region for p in find_places(quoted)}
    return bool(named - terms.regions) and not (named & terms.regions)


_ROUTE_LINK = "–—-至到"


def route_places(question: str) -> frozenset[str]:
    """Places the question names only as one end of a route ("the Chengdu–Mianyang
    expressway", 成都至乐山高速): the route is the subject, not the city, so the
    evidence need not be about that city.

    >>> sorted(route_places("What did the Chengdu–Mianyang expressway cost?")), sorted(route_places("成都的GDP?"))
    (['成都市'], [])
    """
    out = set()
    for p in find_places(question):
        after = question[p.end : p.end + 2]
        before = question[max(0, p.start - 2) : p.start]
        if (len(after) == 2 and after[0] in _ROUTE_LINK and (after[1].isalpha())) or (
                len(before) == 2 and before[1] in _ROUTE_LINK[:3] and before[0].isalpha()):
            out.add(p.region)
    return frozenset(out)


def local_places_ok(question: str, folded_text: str) -> bool:
    """Every county or district the question names is named in ``folded_text`` (the
    evidence and its paragraph): a city-wide target is not what a district set.

    >>> local_places_ok("What radius did Yidu set?", "宜昌打造10分钟急救圈"), local_places_ok("宜都呢?", "宜都市建成")
    (False, True)
    """
    from qa.metadata import local_place_forms

    for place in find_places(question):
        forms = local_place_forms(place.text)
        if forms and not any(f in folded_text for f in forms):
            return False
    return True


def missing_share(terms: QueryTerms, folded_text: str) -> float:
    """The weight of the heaviest question term that ``folded_text`` lacks, as a share
    of the heaviest term's weight (0: every term occurs). A near miss often talks
    about everything the question names except its most specific term.

    >>> t = QueryTerms((("急救",), ("分钟",)), (3.0, 1.0), frozenset())
    >>> missing_share(t, "打造10分钟急救圈"), round(missing_share(t, "10分钟"), 3)
    (0.0, 1.0)
    """
    if not terms.weights:
        return 0.0
    top = max(terms.weights)
    if top <= 0:
        return 0.0
    absent = [w for g, w in zip(terms.groups, terms.weights) if max(_soft_match(t, folded_text) for t in g) < 0.5]
    return max(absent, default=0.0) / top


# ---------------------------------------------------------------- answer text


def _region_label(doc: Document, lang: str) -> str | None:
    if not doc.region:
        return None
    if lang == "en":
        from qa.metadata import region_english

        return region_english(doc.region) or doc.region
    return doc.region


def _one_line(text: str) -> str:
    return " ".join(text.split())


def compose(citations: Sequence[Citation], documents: dict[str, Document], lang: str) -> str:
    """The answer sentence(s): quotes grouped by document, framed in the question's language.

    >>> doc = Document("y.txt", "宜昌打造急救圈。", "宜昌答卷", "2022-01-14", None, "宜昌市", (), "h")
    >>> c = Citation(1, "y.txt", "宜昌答卷", 0, 8, "宜昌打造急救圈。")
    >>> compose([c], {"y.txt": doc}, "zh")
    '根据《宜昌答卷》(2022-01-14,宜昌市):“宜昌打造急救圈。”[1]'
    >>> compose([c], {"y.txt": doc}, "en")
    'According to 宜昌答卷 (Yichang, 2022-01-14): “宜昌打造急救圈。” [1]'
    """
    groups: dict[str, list[Citation]] = {}
    for c in citations:
        groups.setdefault(c.doc_id, []).append(c)
    parts = []
    for i, (doc_id, cites) in enumerate(groups.items()):
        doc = documents[doc_id]
        region = _region_label(doc, lang)
        if lang == "zh":
            meta = ",".join(x for x in (doc.date, region) if x)
            lead = ("根据" if i == 0 else "另据") + f"《{doc.title}》" + (f"({meta})" if meta else "")
            quotes = "……".join(f"“{_one_line(c.quote)}”[{c.n}]" for c in cites)
            parts.append(f"{lead}:{quotes}")
        else:
            meta = ", ".join(x for x in (region, doc.date) if x)
            lead = ("According to " if i == 0 else "Also, according to ") + doc.title + (f" ({meta})" if meta else "")
            quotes = " … ".join(f"“{_one_line(c.quote)}” [{c.n}]" for c in cites)
            parts.append(f"{lead}: {quotes}")
    return ";".join(parts) if lang == "zh" else " ".join(parts)


def what_they_give(quote: tuple[str, int, int], documents, lang: str) -> str:
    """For a near miss (the right passage, but not the asked kind of fact): what the
    documents do say, so the reader sees why the answer is a refusal.

    >>> doc = Document("y.txt", "宜昌建设市疾控中心。", "宜昌答卷", "2022-01-14", None, "宜昌市", (), "h")
    >>> what_they_give(("y.txt", 0, 10), {"y.txt": doc}, "zh")
    '文档未给出所问的具体内容,只提到(《宜昌答卷》):“宜昌建设市疾控中心。”'
    >>> what_they_give(("y.txt", 0, 10), {"y.txt": doc}, "en")
    'The documents do not state the asked fact; they only say (宜昌答卷): “宜昌建设市疾控中心。”'
    """
    doc_id, start, end = quote
    doc = documents[doc_id]
    said = _one_line(doc.text[start:end])
    if lang == "zh":
        return f"文档未给出所问的具体内容,只提到(《{doc.title}》):“{said}”"
    return f"The documents do not state the asked fact; they only say ({doc.title}): “{said}”"


def format_answer_text(answer: Answer) -> str:
    """The answer as ``qa ask`` prints it: the answer, then numbered sources (or,
    for a refusal, the closest passages as "see also")."""
    zh = answer.lang == "zh"
    lines = [answer.answer]
    if answer.refused:
        if answer.hits:
            lines += ["", "另见(最接近的段落):" if zh else "See also (closest passages):"]
            for i, hit in enumerate(answer.hits[:3], 1):
                meta = ", ".join(x for x in (hit.date, hit.region) if x)
                lines.append(f"  - {hit.title}" + (f" ({meta})" if meta else ""))
                snippet = _one_line(hit.text)
                lines.append(f"    {snippet[:120]}{'…' if len(snippet) > 120 else ''}")
        return "\n".join(lines)
    if answer.citations:
        lines += ["", "来源:" if zh else "Sources:"]
        for c in answer.citations:
            meta = ", ".join(x for x in (c.date, c.region) if x)
            lines.append(f"  [{c.n}] {c.title}" + (f" ({meta})" if meta else "") + f"  {c.doc_id}:{c.start}-{c.end}")
            lines.append(f"      “{_one_line(c.quote)}”")
    return "\n".join(lines)


# ---------------------------------------------------------------- entry point


@dataclass(frozen=True)
class Assessment:
    """Everything decided about one question before the refusal threshold is applied."""

    question: str  # cleaned
    lang: str
    retrieval_query: str
    hits: tuple[Hit, ...]
    selection: Selection
    confidence: float  # 0.0 when there is no evidence at all
    retrieve_ms: float
    select_ms: float

    @property
    def judged_lang(self) -> str:
        """The language the evidence is judged in: the retrieval query's, which a
        follow-up can change (那武汉呢? after an English question is asked as "What … did
        武汉 set?"); the answer is still written in ``lang``."""
        return answer_lang(self.retrieval_query)


# How deep a question about "the prefecture" looks for chunks of a prefecture's documents
# before the others (prefecture_first): an English question's other words often match a
# city's report better than the prefecture's speech that answers it.
PREFECTURE_DEPTH = 30


def prefecture_first(retrieval, depth: int):
    """``retrieval`` with the chunks of prefecture documents (:func:`is_prefecture`) moved
    ahead of the rest, order kept within each group, cut to ``depth``."""
    order = sorted(range(len(retrieval.hits)),
                   key=lambda i: not is_prefecture(retrieval.hits[i].region))[:depth]
    return replace(retrieval, hits=tuple(retrieval.hits[i] for i in order),
                   positions=tuple(retrieval.positions[i] for i in order))


def assess(
    question: str,
    retriever,
    history: Sequence[Turn] = (),
    k: int = 5,
    filters: Filters | None = None,
    settings=None,
) -> Assessment:
    """Retrieve, score sentences and judge the evidence (no threshold yet).

    :func:`answer_question` applies the threshold; :mod:`qa.calibration` uses the
    confidence directly to choose it.
    """
    from qa.settings import Settings

    settings = settings or Settings()
    t0 = time.perf_counter()
    question = clean_question(question, settings.max_question_chars)
    validate_k(k)
    lang = answer_lang(question)
    turns = [Turn(t.role, " ".join(_CONTROL.sub(" ", t.content).split()))
             for t in history if isinstance(getattr(t, "content", None), str)]
    # The retriever reads at most max_question_chars; a resolved follow-up can be
    # longer than the question itself.
    query = retrieval_query(question, turns)[: settings.max_question_chars]
    terms = query_terms(query, corpus_stats(retriever.data))
    depth = max(k, POOL_CHUNKS, EN_POOL_CHUNKS)
    prefecture = terms.prefecture and (filters is None or filters.is_empty())
    retrieval = retriever.retrieve(query, k=PREFECTURE_DEPTH if prefecture else depth, mode=settings.mode,
                                   filters=filters)
    if prefecture:
        retrieval = prefecture_first(retrieval, depth)
    t1 = time.perf_counter()
    selection = Selection((), (), None)
    if retrieval.hits:
        vector = retrieval.query_vector
        if vector is None:  # bm25 mode: the question (only) is embedded for sentence scoring
            vector = retriever.embed_query(retrieval.plan.folded)
        selection = select(retriever, retrieval, terms, vector, query)
    score = confidence(selection.evidence, answer_lang(query)) if selection.evidence is not None else 0.0
    t2 = time.perf_counter()
    return Assessment(question, lang, query, retrieval.hits[:k], selection, score,
                      (t1 - t0) * 1000, (t2 - t1) * 1000)


def answer_question(
    question: str,
    retriever,
    history: Sequence[Turn] = (),
    k: int = 5,
    filters: Filters | None = None,
    settings=None,
) -> Answer:
    """Answer ``question`` from the index behind ``retriever`` (see the module doc).

    Raises :class:`InputError` for an unusable question; a question the documents do
    not answer gives ``refused=True``, no citations, and the closest passages in ``hits``.
    """
    from qa.calibration import below_floor, refusal_threshold, relevance_floors

    t0 = time.perf_counter()
    a = assess(question, retriever, history=history, k=k, filters=filters, settings=settings)
    e = a.selection.evidence
    judged = a.judged_lang
    refused = (e is None or not passes_rules(e) or below_floor(judged, e, relevance_floors(settings))
               or a.confidence < refusal_threshold(judged, settings))
    citations: tuple[Citation, ...] = ()
    if refused:
        text = REFUSAL[a.lang]
        if e is not None and is_near_miss(e) and a.selection.quotes:
            text += " " + what_they_give(a.selection.quotes[0], retriever.data.documents, a.lang)
    else:
        docs = retriever.data.documents
        citations = tuple(
            Citation(
                n=i, doc_id=doc_id, title=docs[doc_id].title, start=start, end=end,
                quote=docs[doc_id].text[start:end], date=docs[doc_id].date,
                region=_region_label(docs[doc_id], a.lang), source=docs[doc_id].source,
            )
            for i, (doc_id, start, end) in enumerate(a.selection.quotes, 1)
        )
        text = compose(citations, docs, a.lang)
    total = (time.perf_counter() - t0) * 1000
    return Answer(
        question=a.question,
        answer=text,
        refused=refused,
        citations=citations,
        hits=a.hits,
        lang=a.lang,
        retrieval_query=a.retrieval_query,
        timings_ms={
            "retrieve": round(a.retrieve_ms, 3),
            "select": round(total - a.retrieve_ms, 3),
            "total": round(total, 3),
        },
    )
