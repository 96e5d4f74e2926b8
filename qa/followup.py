"""Follow-up questions: a conversation → the query that retrieval should run.

A follow-up such as ``那武汉呢?`` or ``what about Ezhou?`` only makes sense with
the question before it. We carry the previous user question's topic over and swap
its place for the new one; a question that stands on its own is left untouched, so
history never pollutes a fresh question. Everything here is a pure function of
strings and :class:`~qa.types.Turn` records.

>>> from qa.types import Turn
>>> history = [Turn("user", "宜昌打造多少分钟急救圈?"), Turn("assistant", "……")]
>>> retrieval_query("那武汉呢?", history)
'武汉打造多少分钟急救圈?'
>>> retrieval_query("鄂州建成了多少个红色网格驿站?", history)
'鄂州建成了多少个红色网格驿站?'
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Sequence

from qa.types import Turn

# "那武汉呢" / "武汉呢?" / "那么武汉的情况如何" — the topic is carried over from before.
_ZH_FOLLOWUP = re.compile(
    r"^(?:那么|那|还有|另外|再问一下|再看)?\s*(?P<x>.{0,16}?)\s*"
    r"(?:呢|的呢|怎么样|又怎么样|如何|又如何|情况如何|情况怎样|的情况呢|是多少|有多少)?\s*[?？。!！]*$"
)
_ZH_MARKERS = re.compile(r"^(?:那么|那|还有|另外)|(?:呢|怎么样|如何)\s*[?？]*$")
# "and Wuhan?" / "what about Ezhou?" / "how about in Xianning?" / "same for Wuhan"
_EN_FOLLOWUP = re.compile(
    r"^(?:and|but|so)?\s*(?:what|how)\s+about\s+(?P<a>.+?)\s*[?.!]*$"
    r"|^(?:and|also)\s+(?:for\s+|in\s+|at\s+)?(?P<b>.+?)\s*[?.!]*$"
    r"|^(?:the\s+)?same\s+(?:for|in)\s+(?P<c>.+?)\s*[?.!]*$",
    re.IGNORECASE,
)
_ZH_LEAD = re.compile(r"^(?:那么|那|还有|另外)")
_ZH_QUESTION_WORD = re.compile(r"什么|多少|几|哪|谁|怎么|为什么|为何|是否|吗|多久|多长")
_EN_QUESTION_WORD = re.compile(r"\b(?:what|how|which|who|whom|when|where|why|is|are|was|were|do|does|did)\b", re.I)
# Without a leading marker, a follow-up adds at most this many characters besides a place.
MAX_ADDED_CHARS = 5
# Words that point back at something named earlier (its place is carried over).
_ZH_REFERRING = re.compile(r"该市|该州|该地|该区|该县|當地|当地|那里|这里|那边|它|他们|其中")
_EN_REFERRING = re.compile(r"\b(?:there|it|its|they|their|them|the city|that city|this city)\b", re.IGNORECASE)
_SUFFIXES = "市县区州"
# A follow-up is short; a longer line is a question of its own.
MAX_FOLLOWUP_CHARS = 24
MAX_FOLLOWUP_WORDS = 6


@dataclass(frozen=True)
class PlaceMention:
    """A place named in a text: where (``start``/``end`` in that text) and which region."""

    start: int
    end: int
    text: str
    region: str


@lru_cache(maxsize=1)
def _place_patterns() -> tuple[re.Pattern[str], re.Pattern[str], dict[str, str]]:
    """A Chinese and an English matcher over every place name, longest names first,
    and the (case-folded) name → region table."""
    from qa.metadata import place_aliases

    aliases = {name.lower(): region for name, region in place_aliases().items()}
    chinese = sorted((n for n in aliases if not n.isascii()), key=len, reverse=True)
    english = sorted((n for n in aliases if n.isascii()), key=len, reverse=True)
    zh = re.compile("|".join(map(re.escape, chinese)))
    # English names must be whole words (so "Yidu" does not fire inside "Yiduo").
    en = re.compile(r"\b(?:" + "|".join(map(re.escape, english)) + r")\b", re.IGNORECASE)
    return zh, en, aliases


def find_places(text: str) -> list[PlaceMention]:
    """Place names in ``text`` (Chinese in either script, or English), leftmost-longest.

    >>> [(m.text, m.region) for m in find_places("What about Ezhou and 宜昌?")]
    [('Ezhou', '鄂州市'), ('宜昌', '宜昌市')]
    """
    zh, en, aliases = _place_patterns()
    found = [PlaceMention(m.start(), m.end(), m.group(0), aliases[m.group(0).lower()])
             for pattern in (zh, en) for m in pattern.finditer(text)]
    return sorted(found, key=lambda p: p.start)


def _has_suffix(name: str) -> bool:
    """宜昌市 (宜昌 + 市) has an administrative suffix; 鄂州 and 武汉 do not."""
    return len(name) > 2 and name[-1] in _SUFFIXES and name[:-1].lower() in _place_patterns()[2]


def _is_english(text: str) -> bool:
    return not re.search(r"[\u3400-\u9fff]", text)


def _followup_remainder(question: str) -> str | None:
    """What a follow-up adds ("武汉" of "那武汉呢?"), or None if ``question`` is not one.

    A follow-up has no question word of its own, and either opens with a marker
    (那…, 还有…, and…, what about…) or adds little more than a place
    (武汉的急救圈呢?). "宜昌的急救体系建设如何?" asks something new.
    """
    text = question.strip()
    places = find_places(text)
    if places and not re.sub(r"[\s\W的]", "", _without(text, places)):
        return text.strip(" ?？!！。.")  # a bare place name: "武汉?", "Wuhan?"
    if _is_english(text):
        if len(text.split()) > MAX_FOLLOWUP_WORDS:
            return None
        m = _EN_FOLLOWUP.match(text)
        if not m:
            return None
        rest = next(g for g in m.groups() if g is not None).strip()
        return None if _EN_QUESTION_WORD.search(rest) else rest
    if len(text) > MAX_FOLLOWUP_CHARS or not _ZH_MARKERS.search(text):
        return None
    m = _ZH_FOLLOWUP.match(text)
    if not m:
        return None
    rest = m.group("x").strip()
    if _ZH_QUESTION_WORD.search(rest):
        return None
    if not _ZH_LEAD.match(text) and len(_without(rest, find_places(rest)).strip(" 的,，、")) > MAX_ADDED_CHARS:
        return None
    return rest


def _without(text: str, places: Sequence[PlaceMention]) -> str:
    """``text`` with the place mentions cut out."""
    for p in sorted(places, key=lambda p: -p.start):
        text = text[: p.start] + text[p.end :]
    return text


def resolve_followup(question: str, previous: str) -> str:
    """The retrieval query for ``question`` asked right after ``previous``.

    * a follow-up naming a place (``那武汉呢?``, ``and Wuhan?``) → ``previous`` with its
      place replaced by the new one (appended when ``previous`` named none);
    * a follow-up naming something else (``那非中心城区呢?``) → ``previous`` + that;
    * a question that refers back (``它有多少个急救站?``) → the question + the earlier place;
    * anything else is a question of its own and is returned unchanged.

    >>> resolve_followup("and Wuhan?", "What emergency-care radius did Yichang set?")
    'What emergency-care radius did Wuhan set?'
    >>> resolve_followup("那非中心城区呢?", "宜昌中心城区急救圈是几分钟?")
    '宜昌中心城区急救圈是几分钟? 非中心城区'
    >>> resolve_followup("它有多少个急救站?", "鄂州的急救圈是几分钟?")
    '它有多少个急救站? 鄂州'
    """
    question = question.strip()
    previous = previous.strip()
    if not previous:
        return question
    rest = _followup_remainder(question)
    new_places = find_places(question)
    old_places = find_places(previous)
    if rest is None:
        refers = _EN_REFERRING.search(question) if _is_english(question) else _ZH_REFERRING.search(question)
        if refers and not new_places and old_places:
            names = dict.fromkeys(p.text for p in old_places)
            return f"{question} {' '.join(names)}"
        return question
    if not rest:
        return previous  # "那呢?" / "and?": nothing new, ask the same again
    rest_places = find_places(rest)
    if rest_places:
        new = rest_places[0].text
        if not old_places:
            return f"{previous} {rest}"
        # Replace every mention of the previous question's main place by the new one.
        main = old_places[0].region
        out, cursor = [], 0
        for p in old_places:
            if p.region != main:
                continue
            out.append(previous[cursor : p.start])
            # 宜昌市委 → 武汉市委, not 武汉委: keep the old mention's 市/县/区/州.
            keep = p.text[-1] if _has_suffix(p.text) and not _has_suffix(new) and not new.isascii() else ""
            out.append(new + keep)
            cursor = p.end
        out.append(previous[cursor:])
        query = "".join(out)
        # Anything else the follow-up says ("the counties of Wuhan") is kept too.
        extra = (rest[: rest_places[0].start] + rest[rest_places[0].end :]).strip(" ,，、的")
        extra = re.sub(r"^(?:in|for|at|of|the)\b\s*|\s*\b(?:in|for|at|of)$", "", extra, flags=re.IGNORECASE).strip()
        return f"{query} {extra}" if extra else query
    return f"{previous} {rest}"


def retrieval_query(question: str, history: Sequence[Turn] = ()) -> str:
    """Resolve ``question`` against the user turns of ``history`` (oldest first).

    Earlier follow-ups are resolved in turn, so "宜昌…? → 那武汉呢? → 鄂州呢?" asks
    about Ezhou's version of the first question.

    >>> h = [Turn("user", "What emergency-care radius did Yichang set?"), Turn("user", "那武汉呢?")]
    >>> retrieval_query("what about Ezhou?", h)
    'What emergency-care radius did Ezhou set?'
    """
    context = ""
    for turn in history:
        if turn.role != "user" or not turn.content.strip():
            continue
        context = resolve_followup(turn.content, context) if context else turn.content.strip()
    return resolve_followup(question, context) if context else question.strip()
