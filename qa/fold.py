"""Folding: the normal form used for *matching*, never for display.

Both the index side and the query side pass through :func:`fold`, so a question in
simplified characters finds a passage in traditional ones, full-width digits match
half-width ones, and scraping glitches such as ``發(fā)聲`` do not split a word.

>>> fold("發(fā)聲亮劍，ＡＢＣ１２３")
'发声亮剑,abc123'
>>> fold_compact("金堂服務區 (qū)")
'金堂服务区'
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

# A pinyin reading that a scraper left inside a word: 發(fā)聲, 創(chuàng)新, 區(qū).
# Lower-case Latin letters with at least one tone mark, so ordinary bracketed
# text such as (P2) or (人、物) is left alone.
_TONED = "āáǎàēéěèīíǐìōóǒòūúǔùǖǘǚǜ"
PINYIN_GLITCH = re.compile(rf"\s?\((?=[a-z{_TONED}ü]*[{_TONED}])[a-z{_TONED}ü]{{1,8}}\)")
_SPACE = re.compile(r"\s+")


@lru_cache(maxsize=1)
def _t2s():
    import opencc

    return opencc.OpenCC("t2s")


def remove_glitches(text: str) -> str:
    """Drop inline pinyin readings left by scraping (see :data:`PINYIN_GLITCH`)."""
    return PINYIN_GLITCH.sub("", text)


def to_simplified(text: str) -> str:
    return _t2s().convert(text)


def fold(text: str) -> str:
    """NFKC, glitch removal, traditional → simplified, lower case."""
    text = unicodedata.normalize("NFKC", text)
    text = remove_glitches(text)
    return to_simplified(text).lower()


def fold_compact(text: str) -> str:
    """:func:`fold` with all whitespace removed: the form gold strings are compared in."""
    return _SPACE.sub("", fold(text))


def has_cjk(text: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" or "\u3400" <= ch <= "\u4dbf" for ch in text)


def cjk_ratio(text: str) -> float:
    """Share of CJK ideographs among the non-space characters of ``text``.

    >>> cjk_ratio("宜昌 emergency")
    0.18181818181818182
    """
    chars = [ch for ch in text if not ch.isspace()]
    if not chars:
        return 0.0
    return sum(1 for ch in chars if has_cjk(ch)) / len(chars)


def question_lang(text: str) -> str:
    """``zh`` when the question holds any Chinese character, else ``en``."""
    return "zh" if has_cjk(text) else "en"
