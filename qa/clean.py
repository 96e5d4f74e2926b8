"""Boilerplate removal and glitch repair, with an exact map back to the original text.

Web-scraped government pages carry junk lines (``搜索``, ``【 打印 】``, share
prompts, newspaper page navigation, photo captions) and pinyin readings that the
scraper left inside words (``發(fā)聲``). :func:`clean` drops both but records, for
every character it keeps, where that character sits in the original text, so a
passage found in the cleaned text can always be cited by its original offsets.

>>> original = "搜索\\n宜昌打造急救圈。\\n發(fā)聲亮劍。\\n"
>>> cleaned = clean(original)
>>> cleaned.text
'宜昌打造急救圈。\\n發聲亮劍。\\n'
>>> start, end = cleaned.to_original(9, 13)     # "發聲亮劍" in the cleaned text
>>> original[start:end]
'發(fā)聲亮劍'
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from qa.errors import InputError
from qa.fold import PINYIN_GLITCH, fold

__all__ = ["CleanText", "clean", "is_boilerplate"]


@dataclass(frozen=True)
class CleanText:
    """Cleaned text plus, for each of its characters, the index in the original.

    ``offsets`` has one entry per character of ``text`` and one extra final entry
    (the original index just after the last kept character), so an end offset
    ``len(text)`` maps too. Invariant: ``original[offsets[i]] == text[i]``.

    >>> ct = clean("發(fā)聲")
    >>> ct.text, ct.offsets
    ('發聲', (0, 5, 6))
    """

    text: str
    offsets: tuple[int, ...]

    def to_original(self, start: int, end: int) -> tuple[int, int]:
        """Map a cleaned span ``[start, end)`` to the original span covering it.

        The end maps to one past the original index of the last character in the
        span, so glitch text removed *inside* the span is part of the original
        slice while glitch text right after it is not.

        >>> ct = clean("發(fā)聲亮劍")
        >>> ct.to_original(0, 2), ct.to_original(0, 1), ct.to_original(2, 2)
        ((0, 6), (0, 1), (6, 6))
        """
        if not (0 <= start <= end <= len(self.text)):
            raise InputError(
                f"span [{start}, {end}) is outside the cleaned text of length {len(self.text)}",
                hint="pass 0 <= start <= end <= len(text)",
            )
        if end == start:
            return self.offsets[start], self.offsets[start]
        return self.offsets[start], self.offsets[end - 1] + 1


# --- boilerplate -----------------------------------------------------------------
# Every pattern is matched against the *folded* line with all whitespace removed
# (simplified script, half-width punctuation, lower case), so one pattern covers
# simplified, traditional and full-width variants. Patterns are anchored on both
# ends: a real sentence that merely mentions 搜索 or 打印 never matches.
_SHARE = r"(?:扫一扫|扫描二维码)?在手机(?:上)?(?:查看|打开|浏览)(?:当前|本)页面?"
_BOILERPLATE = re.compile(
    r"""^(?:
        搜索
      | (?:搜索)?""" + _SHARE + r"""(?:搜索)?
      | (?:【[^【】]{0,8}(?:打印|扫一扫|字体|关闭|收藏|分享|大中小)[^【】]{0,8}】)+
      | 【[\w.-]+\.(?:com|cn|net|org|gov)(?:\.cn)?(?:-{1,2}[^】]{0,12})?】
      | (?:热点|相关|热门|最新|推荐|精彩)(?:文章|阅读|新闻|推荐)(?:推荐)?
      | .{0,24}微信公众号(?:[::].{0,20})?
      | (?:扫码)?关注.{0,12}公众号
      | 第\d{1,3}版[::].{0,40}
      | .{0,40}上一版.{0,12}下一版.{0,8}
      | 图为.{0,80}
      | (?:图片来源|图/|摄影[::]|供图[::]).{0,40}
      | (?:责任编辑|编辑|校对|审核|审校)[::].{0,12}
      | 分享到[::]?.{0,20}
      | 返回顶部|关闭窗口|打印本页|打印此页|返回首页
      | 当前位置[::].{0,60}
      | (?:上一篇|下一篇)[::].{0,60}
      | (?:浏览|阅读|访问)(?:次数|量)[::]?\d*
    )$""",
    re.VERBOSE,
)
# A line holding nothing but a date (and maybe a weekday or time), like the
# repeated ``2024-02-23`` rows of a listing page or a newspaper's dateline.
_DATE_ONLY = re.compile(
    r"""^(?:
        \d{4}[-/.]\d{1,2}[-/.]\d{1,2}
      | \d{4}年\d{1,2}月\d{1,2}日
    )(?:星期[一二三四五六日天]?|周[一二三四五六日天])?(?:\d{1,2}:\d{2}(?::\d{2})?)?$""",
    re.VERBOSE,
)
_SPACE = re.compile(r"\s+")
# Boilerplate rows are short; folding long lines would only cost time.
_MAX_BOILERPLATE_CHARS = 120


def _is_filler(line: str) -> bool:
    """Only whitespace, punctuation and symbols (``---``, ``|``, ``　``)."""
    return all(ch.isspace() or unicodedata.category(ch)[0] in "PSZ" for ch in line)


def is_boilerplate(line: str) -> bool:
    """True for a scraped junk line that carries no document content.

    >>> [is_boilerplate(s) for s in ("搜索", "【 打印 】 【 扫一扫 】", "2024-02-23", "  ")]
    [True, True, True, True]
    >>> is_boilerplate("第06版:特别报道 上一版3\\xa0\\xa04下一版")
    True
    >>> is_boilerplate("市民可通过搜索小程序查询核酸检测点。")
    False
    """
    if _is_filler(line):
        return True
    if len(line) > _MAX_BOILERPLATE_CHARS:
        return False
    compact = _SPACE.sub("", fold(line))
    return bool(_BOILERPLATE.match(compact) or _DATE_ONLY.match(compact))


# --- cleaning --------------------------------------------------------------------
_LINE = re.compile(r"([^\r\n]*)(\r\n|\r|\n|$)")


def _lines(text: str) -> list[tuple[int, str, str]]:
    """``(start, content, line_ending)`` for each line, endings kept verbatim."""
    out = []
    for m in _LINE.finditer(text):
        if m.start() == len(text) and not m.group(0):
            break  # the empty match after the last line ending
        out.append((m.start(), m.group(1), m.group(2)))
    return out


def _keep_line(content: str, start: int, text: list[str], offsets: list[int]) -> None:
    """Append ``content`` minus pinyin glitches, recording original indices."""
    pos = 0
    for glitch in PINYIN_GLITCH.finditer(content):
        for i in range(pos, glitch.start()):
            text.append(content[i])
            offsets.append(start + i)
        pos = glitch.end()
    for i in range(pos, len(content)):
        text.append(content[i])
        offsets.append(start + i)


def clean(text: str) -> CleanText:
    """Drop boilerplate lines and pinyin glitches; keep everything else verbatim.

    A run of dropped lines between two kept lines becomes a single line break (the
    first dropped line's own ending), so the paragraphs on either side stay apart;
    dropped lines at the very start or end leave nothing. Width and script are left
    alone: that is :func:`qa.fold.fold`'s job, at match time.

    >>> clean("标题\\n搜索\\n\\n\\n正文(P2)实验室。").text
    '标题\\n\\n正文(P2)实验室。'
    >>> clean("\\r\\n创(chuàng)新\\r\\n").text
    '创新\\r\\n'
    """
    out: list[str] = []
    offsets: list[int] = []
    pending_break: tuple[int, str] | None = None  # first ending of a dropped run
    kept_any = False
    for start, content, ending in _lines(text):
        if is_boilerplate(content):
            if kept_any and pending_break is None and ending:
                pending_break = (start + len(content), ending)
            continue
        if pending_break is not None:
            at, brk = pending_break
            for i, ch in enumerate(brk):
                out.append(ch)
                offsets.append(at + i)
            pending_break = None
        _keep_line(content, start, out, offsets)
        end = start + len(content)
        for i, ch in enumerate(ending):
            out.append(ch)
            offsets.append(end + i)
        kept_any = True
    offsets.append(offsets[-1] + 1 if offsets else 0)
    return CleanText(text="".join(out), offsets=tuple(offsets))
