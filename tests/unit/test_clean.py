"""qa.clean: boilerplate lines, pinyin glitches and the offset map back to the original."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qa.clean import CleanText, clean, is_boilerplate
from qa.errors import InputError
from qa.fold import remove_glitches

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample"
SAMPLES = sorted(SAMPLE.glob("*.txt"))


def _read(path: Path) -> str:
    # newline="" keeps "\r\n" as is: offsets must index the text exactly as stored.
    return path.read_bytes().decode("utf-8")


def _assert_offsets(original: str, cleaned: CleanText) -> None:
    assert len(cleaned.offsets) == len(cleaned.text) + 1
    for i, ch in enumerate(cleaned.text):
        assert original[cleaned.offsets[i]] == ch, (i, ch)
    assert list(cleaned.offsets[:-1]) == sorted(set(cleaned.offsets[:-1]))  # strictly increasing


def _line_spans(text: str):
    """Every non-empty [start, end) that stays inside one line of ``text``."""
    start = 0
    for line in text.split("\n"):
        width = len(line.rstrip("\r"))
        for s in range(start, start + width):
            for e in range(s + 1, start + width + 1):
                yield s, e
        start += len(line) + 1


# --- offset map ------------------------------------------------------------------
def test_glitch_offsets_worked_example():
    cleaned = clean("發(fā)聲亮劍")
    assert cleaned.text == "發聲亮劍"
    assert cleaned.offsets == (0, 5, 6, 7, 8)
    # The glitch inside the span belongs to the original slice; one just after it does not.
    assert cleaned.to_original(0, 2) == (0, 6)
    assert cleaned.to_original(0, 1) == (0, 1)
    assert cleaned.to_original(4, 4) == (8, 8)


def test_every_span_round_trips_through_the_original():
    original = "宜昌(P2)實驗室 (qū)發(fā)聲\n\n創(chuàng)新(人、物)同防。\r\n第二段(yī)"
    cleaned = clean(original)
    _assert_offsets(original, cleaned)
    for s in range(len(cleaned.text) + 1):
        for e in range(s, len(cleaned.text) + 1):
            a, b = cleaned.to_original(s, e)
            assert remove_glitches(original[a:b]) == cleaned.text[s:e], (s, e)


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.name[:3])
def test_sample_offsets_map_each_char_to_itself(path: Path):
    original = _read(path)
    cleaned = clean(original)
    _assert_offsets(original, cleaned)
    assert cleaned.to_original(0, len(cleaned.text))[1] <= len(original)


def test_spans_inside_lines_round_trip_on_a_sample():
    original = _read(SAMPLE / "003_9996ae020915016f.txt")[:600]
    cleaned = clean(original)
    checked = 0
    for s, e in _line_spans(cleaned.text):
        if e - s > 12:  # long spans add nothing over short ones here, only time
            continue
        a, b = cleaned.to_original(s, e)
        assert remove_glitches(original[a:b]) == cleaned.text[s:e]
        checked += 1
    assert checked > 1000


_PIECES = ["宜", "昌", "發", " ", "(", ")", "a", "ā", "(fā)", " (qū)", "(P2)", "\n", "\r\n", "搜索\n", "2024-02-23\n"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(_PIECES), max_size=30).map("".join))
def test_offset_map_property(original: str):
    cleaned = clean(original)
    _assert_offsets(original, cleaned)
    for s, e in _line_spans(cleaned.text):
        a, b = cleaned.to_original(s, e)
        assert remove_glitches(original[a:b]) == cleaned.text[s:e]


@pytest.mark.parametrize("span", [(-1, 2), (3, 2), (0, 99)])
def test_to_original_rejects_bad_spans(span):
    with pytest.raises(InputError, match=r"span \[") as info:
        clean("宜昌打造急救圈").to_original(*span)
    assert "0 <= start <= end" in str(info.value)


def test_empty_text():
    cleaned = clean("")
    assert cleaned == CleanText(text="", offsets=(0,))
    assert cleaned.to_original(0, 0) == (0, 0)


# --- boilerplate -----------------------------------------------------------------
@pytest.mark.parametrize(
    "line",
    [
        "搜索",
        " ",
        "\xa0\u3000",
        "——",
        "【\xa0打印\xa0】 【\xa0扫一扫\xa0】",
        "【\xa0字体:\xa0\xa0】",
        "【 打印 】【 關閉 】",
        "扫一扫在手机上查看当前页面",
        "搜索扫一扫在手机上查看当前页面",
        "掃一掃在手機上查看當前頁面",
        "热点文章推荐",
        "相關文章推薦",
        "【628568.com--演讲稿】",
        "【628568.com--演講稿】",
        "武汉市人民政府微信公众号",
        "第06版:特别报道 上一版3\xa0\xa04下一版",
        "图为发布会现场。\xa0",
        "圖為發布會現場。",
        "2024-02-23",
        "2020年7月24日 星期",
        "2020年7月24日 星期五",
    ],
)
def test_junk_lines_are_boilerplate(line: str):
    assert is_boilerplate(line)


@pytest.mark.parametrize(
    "line",
    [
        "市民可在搜索框中输入关键词,查询附近的核酸检测点。",
        "搜索救援队伍已全部到位",
        "打印机采购项目已完成招标。",
        "来源:三峡日报",
        "咸宁日报全媒体记者\xa0盛勇\xa0通讯员\xa0金镇源",
        "2024-02-23 市政府召开常务会议",
        "2021年1-12月,全州发生生产安全事故x起。",
        "专访市民政局局长陈红卫",
        "同志們:",
        "P2",
        "(人、物)",
        "关注民生,推动相关文章所述政策落地。",
    ],
)
def test_real_lines_are_kept(line: str):
    assert not is_boilerplate(line)


# --- clean -----------------------------------------------------------------------
def test_junk_lines_leave_one_break_between_paragraphs():
    original = "标题\n搜索\n【 打印 】\n\n\n正文第一段。\n正文第二段。\n扫一扫在手机上查看当前页面\n"
    assert clean(original).text == "标题\n\n正文第一段。\n正文第二段。\n"


def test_leading_and_trailing_junk_leave_nothing():
    assert clean("搜索\n\n2024-02-23\n正文。\n\n热点文章推荐").text == "正文。\n"


def test_kept_text_is_verbatim():
    original = "  发布主题\r\n\r\n  ＡＢＣ１２３ 發聲,P2\r\n"
    cleaned = clean(original)
    assert cleaned.text == original  # no width or script normalisation, CRLF kept
    assert cleaned.offsets == tuple(range(len(original) + 1))


def test_glitches_removed_but_brackets_kept():
    original = "發(fā)聲亮劍。建設P2(P2)實驗室,人(人、物)同防,金堂服務區 (qū)。電(碳)烤火"
    assert clean(original).text == "發聲亮劍。建設P2(P2)實驗室,人(人、物)同防,金堂服務區。電(碳)烤火"


def test_sample_004_loses_its_header_junk_and_glitches():
    original = _read(SAMPLE / "004_b89c08ae65742274.txt")
    text = clean(original).text
    assert "2024-02-23" not in text
    assert "628568.com" not in text
    assert "(fā)" not in text and "發聲亮劍" in text
    assert text.count("同志們:") == 9
    assert "(人、物、制度、時空環境)" in text
