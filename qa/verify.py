"""Checking a generated answer against the passages it cites: pure functions.

An LLM's answer is only shown sentence by sentence after each sentence passes
:func:`check_claim`:

* every ``[n]`` it carries names a passage that was given;
* every figure it states (numbers with their units, dates, percentages) occurs in a
  cited passage with the same value and a compatible unit, Chinese numerals and
  digits counted as equal (``十五`` = ``15``, ``1.2万`` = ``12,000`` = ``12 thousand``);
* every place it names (Chinese or English) is a place of a cited passage (named in
  its text, or the region of its document), and every Chinese proper name it uses
  occurs in a cited passage, traditional and simplified counted as equal.

A supported sentence's citations then point at the sentence(s) *inside* each cited
passage that hold its figures (:func:`support_span`), in the document's original
offsets, so ``document.text[start:end] == quote`` as for extractive answers.

>>> p = Passage(1, "y.txt", 0, 27, "宜昌打造中心城区“10分钟”急救圈。县市“30分钟”。", "宜昌答卷", None, "宜昌市")
>>> claim = check_claim("Yichang set a 10-minute radius [1].", {1: p})
>>> claim.supported, claim.support[0][1:]
(True, (0, 18))
>>> check_claim("Yichang set a 12-minute radius [1].", {1: p}).reason
'figure 12 minute not in the cited passages'
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Iterable, Mapping, Sequence

from qa.fold import fold


@dataclass(frozen=True)
class Passage:
    """One numbered passage of the prompt: ``text == document.text[start:end]``."""

    n: int
    doc_id: str
    start: int
    end: int
    text: str
    title: str
    date: str | None
    region: str | None


@dataclass(frozen=True)
class Figure:
    """A number as stated: its value, its canonical unit ("" when it has none we know)."""

    value: float
    unit: str
    text: str

    def label(self) -> str:
        value = int(self.value) if float(self.value).is_integer() else self.value
        return f"{value} {self.unit}".strip()


@dataclass(frozen=True)
class Claim:
    """One sentence of a generated answer after checking.

    ``cited`` are the passage numbers it names; ``support`` holds, for each cited
    passage that is valid, ``(n, start, end)``: the span of the document (original
    offsets) whose sentences back the claim best.
    """

    text: str  # the sentence as the model wrote it, markers included
    cited: tuple[int, ...]
    supported: bool
    reason: str  # why it is not supported ("" when it is)
    support: tuple[tuple[int, int, int], ...] = ()
    figures: tuple[Figure, ...] = ()
    # True when every figure of the claim occurs in its support spans (the
    # faithfulness measure of ``qa eval``), checked before any dropping.
    figures_in_support: bool = False


# ---------------------------------------------------------------- markers and sentences

# [1], [1][2], [1, 2], 【1】, [1-2] are all citations; anything else in brackets is text.
MARKER = re.compile(r"[\[【]\s*(\d{1,3}(?:\s*(?:[,，、-]|and)\s*\d{1,3})*)\s*[\]】]")
_CLOSERS = "”’\"」』)）*_"
_LIST_ITEM = re.compile(r"^\s*(?:[-*•]|\d{1,2}[.)、])\s+")


def markers(text: str) -> tuple[int, ...]:
    """The passage numbers a sentence cites, in order, each once.

    >>> markers("10分钟[1][3]。见【2】和[1-2]")
    (1, 3, 2)
    """
    out: list[int] = []
    for m in MARKER.finditer(text):
        body = m.group(1)
        if "-" in body and body.count("-") == 1 and "," not in body:
            a, b = (int(x) for x in body.split("-"))
            numbers = list(range(a, b + 1)) if 0 < b - a < 10 else [a, b]
        else:
            numbers = [int(x) for x in re.findall(r"\d+", body)]
        for n in numbers:
            if n not in out:
                out.append(n)
    return tuple(out)


def strip_markers(text: str) -> str:
    """The sentence without its citation markers.

    >>> strip_markers("打造10分钟急救圈[1]。")
    '打造10分钟急救圈。'
    """
    return MARKER.sub("", text)


def _sentence_end(text: str, pos: int) -> int | None:
    """Index after the first sentence end at or after ``pos``, or None."""
    for i in range(pos, len(text)):
        ch = text[i]
        if ch in "。！？!?；\n":
            return i + 1
        if ch == "." and (i + 1 == len(text) or text[i + 1].isspace()):
            # "3.5" is not an end (no space follows); "1. " at a line start is a list number.
            line_start = text.rfind("\n", 0, i) + 1
            if re.fullmatch(r"\s*\d{1,2}", text[line_start:i]):
                continue
            if i + 1 == len(text):
                return None  # "In 2022." or "3." : wait to see what follows
            return i + 1
    return None


def _after_end(text: str, end: int) -> int:
    """Extend a sentence end over closing quotes, spaces and the markers that follow."""
    pos = end
    while True:
        while pos < len(text) and text[pos] in _CLOSERS:
            pos += 1
        m = re.compile(r"\s*").match(text, pos)
        after_space = m.end()
        marker = MARKER.match(text, after_space)
        if marker:
            pos = marker.end()
            continue
        return after_space if after_space > pos and "\n" not in text[pos:after_space] else pos


def split_sentences(text: str, final: bool = True) -> tuple[list[str], str]:
    """Complete sentences of ``text`` and the unfinished rest.

    A sentence keeps the markers that follow its full stop (``急救圈。[1]``). With
    ``final=False`` (a stream still arriving) a sentence is complete only when
    something other than markers or spaces follows it, so a marker still to come is
    not cut off.

    >>> split_sentences("宜昌为10分钟。[1] 武汉为12分钟[2]。还有", final=False)
    (['宜昌为10分钟。[1] ', '武汉为12分钟[2]。'], '还有')
    >>> split_sentences("It is 10 minutes [1]. In 2022.", final=True)
    (['It is 10 minutes [1]. ', 'In 2022.'], '')
    """
    out: list[str] = []
    pos = search = 0
    while search < len(text):
        end = _sentence_end(text, search)
        if end is None:
            break
        stop = _after_end(text, end)
        if not text[pos:stop].strip():
            search = stop  # a blank line is not a sentence: it leads the next one
            continue
        if not final:
            rest = text[stop:]
            if not rest.strip() or re.fullmatch(r"\s*[\[【][\d\s,，、-]*", rest):
                break  # markers or more closing text may still come
        out.append(text[pos:stop])
        pos = search = stop
    rest = text[pos:]
    if final and rest.strip():
        out.append(rest)
        rest = ""
    return out, rest


def ends_sentence(text: str) -> bool:
    """Whether ``text`` ends like a finished sentence (markers and closing quotes aside).

    >>> ends_sentence("打造10分钟急救圈。”[1] "), ends_sentence("It is 10 minutes [1]."), ends_sentence("县市为")
    (True, True, False)
    """
    core = strip_markers(text).rstrip().rstrip(_CLOSERS).rstrip()
    return core.endswith(("。", "！", "？", "!", "?", "；", "."))


# ---------------------------------------------------------------- figures

_CN_DIGITS = {"〇": 0, "零": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_CN_SMALL = {"十": 10, "百": 100, "千": 1000}
_CN_BIG = {"万": 10_000, "亿": 100_000_000}
_CN_NUM = "〇零一二两三四五六七八九十百千万亿"
_EN_NUMBERS = {
    "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10,
    "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16, "seventeen": 17,
    "eighteen": 18, "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60,
    "seventy": 70, "eighty": 80, "ninety": 90, "hundred": 100, "thousand": 1000,
}
_MONTHS = {m: i for i, m in enumerate(
    "january february march april may june july august september october november december".split(), 1)}
_MULTIPLIERS = {"万": 1e4, "亿": 1e8, "千": 1e3, "百": 1e2, "thousand": 1e3, "million": 1e6, "billion": 1e9,
                "百万": 1e6, "千万": 1e7}
# Canonical units, longest spelling first when matched. A figure with no unit here
# ("136个", "3 projects") has unit "" and matches a figure of any unit.
_UNITS: dict[str, str] = {
    "%": "percent", "％": "percent", "percent": "percent", "per cent": "percent", "个百分点": "percent",
    "percentage points": "percent", "percentage point": "percent",
    "分钟": "minute", "minutes": "minute", "minute": "minute", "mins": "minute", "min": "minute",
    "小时": "hour", "hours": "hour", "hour": "hour",
    "平方公里": "km2", "square kilometres": "km2", "square kilometers": "km2", "km2": "km2", "km²": "km2",
    "公里": "km", "千米": "km", "kilometres": "km", "kilometers": "km", "kilometre": "km", "kilometer": "km", "km": "km",
    "米": "m", "metres": "m", "meters": "m", "metre": "m", "meter": "m",
    "元": "yuan", "yuan": "yuan", "rmb": "yuan",
    "亩": "mu", "mu": "mu",
    "个月": "month", "月": "month", "months": "month", "month": "month",
    "年": "year", "years": "year", "year": "year",
    "天": "day", "日": "day", "days": "day", "day": "day",
    "人": "person", "名": "person", "people": "person", "persons": "person", "residents": "person",
}
_UNIT_RE = "|".join(re.escape(u) for u in sorted(_UNITS, key=len, reverse=True))
# 千 before 米 is part of the unit 千米 (km), not a multiplier.
_MULT_RE = "|".join(re.escape(u) if u != "千" else "千(?!米)" for u in sorted(_MULTIPLIERS, key=len, reverse=True))
_FIGURE = re.compile(
    rf"百分之(?P<pct>[{_CN_NUM}\d.]+)"
    rf"|(?P<num>\d+(?:,\d{{3}})+(?:\.\d+)?|\d+(?:\.\d+)?|[{_CN_NUM}]+|(?<![a-z])(?:{'|'.join(_EN_NUMBERS)})(?![a-z]))"
    rf"(?:-|\s?)(?P<mult>{_MULT_RE})?(?:-|\s?)(?:(?P<unit>{_UNIT_RE})(?![a-z]))?"
    rf"|(?<![a-z])(?P<month>{'|'.join(_MONTHS)})(?![a-z])"
)


def parse_chinese_number(text: str) -> float | None:
    """The value of a run of Chinese numerals; digit-by-digit for years (二〇二二).

    >>> [parse_chinese_number(t) for t in ("十五", "三十", "一百零八", "二〇二二", "三亿五千万", "两")]
    [15.0, 30.0, 108.0, 2022.0, 350000000.0, 2.0]
    """
    if not text or any(ch not in _CN_NUM for ch in text):
        return None
    if len(text) > 1 and all(ch in _CN_DIGITS for ch in text):
        return float("".join(str(_CN_DIGITS[ch]) for ch in text))
    total, section, number = 0.0, 0.0, 0.0
    for ch in text:
        if ch in _CN_DIGITS:
            number = _CN_DIGITS[ch]
        elif ch in _CN_SMALL:
            section += (number or 1) * _CN_SMALL[ch]
            number = 0
        else:
            section += number
            number = 0
            if _CN_BIG[ch] == 100_000_000:
                total = (total + section) * _CN_BIG[ch]
            else:
                total += (section or 1) * _CN_BIG[ch]
            section = 0
    return float(total + section + number)


def _number(text: str) -> float | None:
    if text in _EN_NUMBERS:
        return float(_EN_NUMBERS[text])
    if text[0].isdigit():
        return float(text.replace(",", ""))
    return parse_chinese_number(text)


def figures(text: str, strict: bool = False) -> list[Figure]:
    """The figures of ``text`` (folded first: full-width, traditional, case).

    ``strict`` is for answer sentences: a bare ``一``/``1`` with no unit and words
    such as 一些, 进一步 are not claims, so they are skipped there. Passages keep
    every number (more numbers on their side only make support easier to find).

    >>> [f.label() for f in figures("打造“10分钟”急救圈,投资1.2亿元,占比百分之十五,建成一百三十六个驿站")]
    ['10 minute', '120000000 yuan', '15 percent', '136']
    >>> [f.label() for f in figures("Twelve minutes, 1.2 million yuan, 15% and January 2022", strict=True)]
    ['12 minute', '1200000 yuan', '15 percent', '1 month', '2022']
    >>> [f.label() for f in figures("进一步统一建成一批", strict=True)]
    []
    """
    folded = fold(text)
    out: list[Figure] = []
    for m in _FIGURE.finditer(folded):
        if m.group("month"):
            out.append(Figure(float(_MONTHS[m.group("month")]), "month", m.group(0)))
            continue
        if m.group("pct"):
            value = _number(m.group("pct"))
            if value is not None:
                out.append(Figure(value, "percent", m.group(0)))
            continue
        raw = m.group("num")
        mult = m.group("mult")
        unit = m.group("unit")
        # A Chinese run like 一万 holds its own multiplier; 万/亿 alone are not numbers.
        if raw in _MULTIPLIERS or raw in ("千", "百"):
            continue
        value = _number(raw)
        if value is None:
            continue
        if mult:
            value *= _MULTIPLIERS[mult]
        canonical = _UNITS.get(unit, "") if unit else ""
        if strict and not canonical and not mult:
            if raw in ("一", "1"):
                continue
        out.append(Figure(round(value, 6), canonical, m.group(0).strip()))
    return out


# A claimed date part (day, month, year) may match a bare number of the passage
# ("2022-01-14" has no 年/月/日); every other unit must be stated with the number,
# as Chinese documents do ("10分钟", "1.2万人"), so "a 42-minute radius" is not
# backed by a stray "42" elsewhere in the passage.
_BARE_OK = frozenset({"day", "month", "year"})


def figure_found(figure: Figure, found: Iterable[Figure]) -> bool:
    """Whether ``figure`` occurs among ``found``: the same value, and the same unit
    (a claim without a unit agrees with any; a date part also with a bare number).

    >>> f = lambda v, u: Figure(v, u, "")
    >>> figure_found(f(10, "minute"), [f(10, "minute")]), figure_found(f(10, "km"), [f(10, "minute")])
    (True, False)
    >>> figure_found(f(10, "minute"), [f(10, "")]), figure_found(f(2022, "year"), [f(2022, "")])
    (False, True)
    >>> figure_found(f(15, "percent"), [f(15, "")]), figure_found(f(15, ""), [f(15, "percent")])
    (False, True)
    """
    for other in found:
        if abs(other.value - figure.value) > 1e-6 * max(1.0, abs(figure.value)):
            continue
        if not figure.unit or figure.unit == other.unit or (not other.unit and figure.unit in _BARE_OK):
            return True
    return False


# ---------------------------------------------------------------- names and places


def places(text: str) -> set[str]:
    """Regions of the places ``text`` names, in Chinese (either script) or English.

    >>> sorted(places("Yichang and 武漢"))
    ['宜昌市', '武汉市']
    """
    from qa.followup import find_places

    return {p.region for p in find_places(text)}


# jieba tags for proper nouns: person, place, organisation, other proper noun.
_PROPER = {"nr", "ns", "nt", "nz"}


@lru_cache(maxsize=4096)
def chinese_names(text: str) -> tuple[str, ...]:
    """Proper nouns of a Chinese text (jieba's part-of-speech tags), folded.

    >>> "王忠林" in chinese_names("王忠林主持召开会议")
    True
    """
    import jieba.posseg

    out = []
    for word, flag in jieba.posseg.lcut(fold(text)):
        if flag in _PROPER and len(word) >= 2 and not any(ch.isdigit() for ch in word):
            out.append(word)
    return tuple(dict.fromkeys(out))


def _compact(text: str) -> str:
    return re.sub(r"\s+", "", fold(text))


# ---------------------------------------------------------------- sentences inside a passage

_PASSAGE_END = re.compile(r"[^。！？!?；\n]*(?:[。！？!?；]+[”’」』)）]*|\n|$)")


def passage_sentences(passage: Passage) -> list[tuple[int, int]]:
    """Sentence spans of a passage, in document offsets, without edge whitespace.

    >>> p = Passage(1, "a", 10, 22, "甲说。 乙说“好”。\\n丙", "t", None, None)
    >>> [p.text[a - 10:b - 10] for a, b in passage_sentences(p)]
    ['甲说。', '乙说“好”。', '丙']
    """
    out = []
    for m in _PASSAGE_END.finditer(passage.text):
        a, b = m.start(), m.end()
        while a < b and passage.text[a].isspace():
            a += 1
        while b > a and passage.text[b - 1].isspace():
            b -= 1
        if b > a:
            out.append((passage.start + a, passage.start + b))
    return out


def _bigrams(text: str) -> set[str]:
    t = _compact(text)
    return {t[i : i + 2] for i in range(len(t) - 1)}


def support_span(claim_text: str, claim_figures: Sequence[Figure], passage: Passage) -> tuple[int, int, bool]:
    """The stretch of ``passage`` (document offsets) that backs a claim best, and
    whether it holds every figure of the claim.

    Sentences are ranked by how many of the claim's figures they hold, then by
    shared character pairs (for a claim in Chinese); the best one is taken and, if
    figures are still missing, the nearest sentences holding them are added (the
    span stays contiguous, so it round-trips as one quote).

    >>> p = Passage(1, "y", 100, 126, "宜昌召开全会。打造“10分钟”急救圈。县市30分钟。", "t", None, None)
    >>> support_span("中心城区10分钟,县市30分钟[1]", figures("10分钟,30分钟"), p)
    (107, 126, True)
    """
    spans = passage_sentences(passage)
    if not spans:
        return passage.start, passage.end, not claim_figures
    claim_pairs = _bigrams(strip_markers(claim_text))
    per_span = []
    for a, b in spans:
        text = passage.text[a - passage.start : b - passage.start]
        found = figures(text)
        held = {i for i, f in enumerate(claim_figures) if figure_found(f, found)}
        overlap = len(claim_pairs & _bigrams(text))
        per_span.append((held, overlap))
    best = max(range(len(spans)), key=lambda i: (len(per_span[i][0]), per_span[i][1], -i))
    chosen = {best}
    covered = set(per_span[best][0])
    wanted = set(range(len(claim_figures)))
    while covered != wanted:
        candidates = [i for i in range(len(spans)) if i not in chosen and per_span[i][0] - covered]
        if not candidates:
            break
        nearest = min(candidates, key=lambda i: (min(abs(i - c) for c in chosen), -len(per_span[i][0] - covered)))
        chosen.add(nearest)
        covered |= per_span[nearest][0]
    first, last = min(chosen), max(chosen)
    return spans[first][0], spans[last][1], covered == wanted


# ---------------------------------------------------------------- one claim


def check_claim(sentence: str, passages: Mapping[int, Passage]) -> Claim:
    """Check one answer sentence against the passages it cites (see the module doc).

    >>> p = Passage(1, "e.txt", 0, 15, "鄂州建成红色网格驿站136个。", "鄂州全会", None, "鄂州市")
    >>> check_claim("鄂州建成136个驿站[1]。", {1: p}).supported
    True
    >>> check_claim("鄂州建成136个驿站[2]。", {1: p}).reason
    'cites [2], which is not one of the given passages'
    >>> check_claim("Wuhan built 136 stations [1].", {1: p}).reason
    'place 武汉市 not in the cited passages'
    >>> check_claim("鄂州建成了很多驿站。", {1: p}).reason
    'no citation'
    """
    cited = markers(sentence)
    body = strip_markers(_LIST_ITEM.sub("", sentence)).strip()
    claim_figures = tuple(figures(body, strict=True))
    if not cited:
        return Claim(sentence, cited, False, "no citation", figures=claim_figures)
    unknown = [n for n in cited if n not in passages]
    if unknown:
        return Claim(sentence, cited, False, f"cites [{unknown[0]}], which is not one of the given passages",
                     figures=claim_figures)
    given = [passages[n] for n in cited]
    support = []
    all_in_support = True
    for p in given:
        a, b, complete = support_span(body, claim_figures, p)
        support.append((p.n, a, b))
        all_in_support = all_in_support and complete
    # Figures: each must be in some cited passage (its text, or its date).
    passage_figures = [f for p in given for f in figures(p.text)]
    passage_figures += [f for p in given if p.date for f in figures(p.date.replace("-", " "))]
    missing = [f for f in claim_figures if not figure_found(f, passage_figures)]
    # A claim whose figures are spread over several cited passages is complete
    # when together they hold them all.
    figures_in_support = all_in_support or (len(given) > 1 and not missing and _spans_hold(
        claim_figures, support, given))
    if missing:
        return Claim(sentence, cited, False, f"figure {missing[0].label()} not in the cited passages",
                     tuple(support), claim_figures, figures_in_support)
    context = "".join(f"{p.title}\n{p.text}\n" for p in given)
    known_places = places(context) | {p.region for p in given if p.region}
    unknown_places = sorted(places(body) - known_places)
    if unknown_places:
        return Claim(sentence, cited, False, f"place {unknown_places[0]} not in the cited passages",
                     tuple(support), claim_figures, figures_in_support)
    if re.search(r"[\u4e00-\u9fff]", body):
        haystack = _compact(context + "".join(p.region or "" for p in given))
        for name in chinese_names(body):
            if name not in haystack and not (places(name) and places(name) <= known_places):
                return Claim(sentence, cited, False, f"name {name} not in the cited passages",
                             tuple(support), claim_figures, figures_in_support)
    if not claim_figures and not anchored(body, context):
        return Claim(sentence, cited, False, "its words are not in the cited passages",
                     tuple(support), claim_figures, figures_in_support)
    return Claim(sentence, cited, True, "", tuple(support), claim_figures, figures_in_support)


# A Chinese claim without figures must share at least this share of its character
# pairs with what it cites. Chosen by hand on the unit tests' sentences (faithful
# paraphrases share 0.6-1.0; a sentence about another passage's topic under 0.35),
# not on gold questions.
MIN_SHARED_PAIRS = 0.5
_EN_STOP = frozenset(
    """a an the of to in on for and or is are was were be been by with what which who how many much did does do
    at as it its this that these those there their they them from into about has have had will would should can
    could also such than then so not no all any some each other more most set sets make made plan plans city
    cities said says according passage passages document documents answer question""".split()
)


def anchored(body: str, context: str) -> bool:
    """Whether a claim with no figures is about what its cited passages say: a Chinese
    claim shares :data:`MIN_SHARED_PAIRS` of its character pairs with them; an English
    one has a content word (not a place) the passages hold, in a dictionary sense.

    >>> ctx = "推进院前急救体系建设,打造急救圈。"
    >>> anchored("宜昌推进院前急救体系建设。", ctx), anchored("宜昌将从四个方面加快推进。", ctx)
    (True, False)
    >>> anchored("Yichang is building its pre-hospital emergency system.", ctx)
    True
    >>> anchored("Yichang also opened a new stadium.", ctx), anchored("[2]", ctx)
    (False, False)
    """
    from qa.fold import cjk_ratio

    text = strip_markers(body)
    compact = _compact(context)
    if cjk_ratio(text) >= 0.3:
        pairs = {p for p in _bigrams(text) if all("\u4e00" <= ch <= "\u9fff" for ch in p)}
        return bool(pairs) and len([p for p in pairs if p in compact]) / len(pairs) >= MIN_SHARED_PAIRS
    from qa.translate import english_senses

    place_words = {fold(m) for m in re.findall(r"[A-Za-z]+", text) if places(m)}
    for word in re.findall(r"[a-z][a-z0-9']+", fold(text)):
        if word in _EN_STOP or word in place_words or len(word) < 3:
            continue
        if word in compact or any(len(sense) >= 2 and sense in compact for sense in english_senses(word)):
            return True
    return False


def _spans_hold(claim_figures: Sequence[Figure], support, given: Sequence[Passage]) -> bool:
    found = []
    for (n, a, b), p in zip(support, given):
        found += figures(p.text[a - p.start : b - p.start])
    return all(figure_found(f, found) for f in claim_figures)


def renumber(sentence: str, numbers: Mapping[int, int]) -> str:
    """Rewrite a sentence's markers from passage numbers to citation numbers.

    >>> renumber("10分钟[3][1]。", {3: 1, 1: 2})
    '10分钟[1][2]。'
    """

    def repl(m: re.Match) -> str:
        return "".join(f"[{numbers[n]}]" for n in markers(m.group(0)) if n in numbers)

    return MARKER.sub(repl, sentence)


def faithfulness(claims: Sequence[Claim]) -> float | None:
    """Share of claims with a valid citation whose figures all occur in what they cite
    (None for no claims): the figure ``qa eval`` reports before and after verification.

    >>> c = lambda ok: Claim("x", (1,), True, "", ((1, 0, 5),), figures_in_support=ok)
    >>> faithfulness([c(True), c(False), Claim("y", (), False, "no citation")])
    0.3333333333333333
    """
    if not claims:
        return None
    return sum(1 for c in claims if c.support and c.figures_in_support) / len(claims)
