"""qa.metadata: title, date, source, region and sections, inline and on the samples."""

from __future__ import annotations

from pathlib import Path

import pytest

from qa.clean import clean
from qa.fold import PINYIN_GLITCH
from qa.metadata import Metadata, count_regions, extract_metadata, place_aliases, region_english

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample"


def _meta(text: str, doc_id: str = "t.txt") -> Metadata:
    return extract_metadata(text, clean(text), doc_id)


def _sample(name: str) -> tuple[str, Metadata]:
    text = (SAMPLE / name).read_bytes().decode("utf-8")
    return text, extract_metadata(text, clean(text), name)


def _check_sections(text: str, meta: Metadata) -> None:
    """Contiguous, sorted, from the first kept character to the end, clean headings."""
    sections = meta.sections
    assert sections, "a non-empty document has at least one section"
    cleaned = clean(text)
    first_content = cleaned.offsets[len(cleaned.text) - len(cleaned.text.lstrip())]
    assert sections[0].start == first_content
    assert sections[-1].end == len(text)
    for a, b in zip(sections, sections[1:]):
        assert a.end == b.start
    for s in sections:
        assert s.start < s.end
        assert s.heading.strip() == s.heading and s.heading
        assert PINYIN_GLITCH.search(s.heading) is None


# --- the five samples ------------------------------------------------------------
EXPECTED = {
    "000_9cda43de7004e204.txt": ("推进市域治理现代化 谱写高质量发展新篇章", "2020-07-24", "咸宁日报", "咸宁市"),
    "001_fe9e4e9dd9fdf586.txt": (
        "中共鄂州市委召开新闻发布会,解读市委七届十二次全体会议精神", "2021-08-02", "鄂州政府网", "鄂州市"),
    "002_c1eac3b41c0a86c0.txt": ("推进市域治理现代化书写新时代优秀答卷", "2022-01-14", "三峡日报", "宜昌市"),
    "003_9996ae020915016f.txt": ("6月29日下午,武汉市人民政府举行新闻发布会", "2020-06-30", "长江日报", "武汉市"),
    "004_b89c08ae65742274.txt": (
        "堅決與“雙泛”思想做斗爭正確認識新疆歷史文化發聲亮劍(通用12篇)", "2024-02-23", "628568.com",
        "湘西土家族苗族自治州"),
}


@pytest.mark.parametrize("name", sorted(EXPECTED), ids=lambda n: n[:3])
def test_sample_metadata(name: str):
    text, meta = _sample(name)
    assert (meta.title, meta.date, meta.source, meta.region) == EXPECTED[name]
    assert len(meta.title) <= 64
    _check_sections(text, meta)


def test_sample_004_has_one_section_per_speech():
    text, meta = _sample("004_b89c08ae65742274.txt")
    headings = [s.heading for s in meta.sections]
    assert len(meta.sections) == 9
    assert headings[0] == "十五屆州人民政府第一次全體會議"
    assert headings[1] == "全省交通運輸工作會議"
    assert headings[3] == "全州2022年煙葉工作會議"
    # A count of meetings (共召開5次州委常委會議) is not the meeting's name.
    assert not any(h.startswith(("5次", "2次")) for h in headings)
    assert all(len(h) <= 40 for h in headings)
    # Every speech after the first starts exactly at its "同志們:" line.
    for section in meta.sections[1:]:
        assert text[section.start:section.start + 4] == "同志們:"
    assert meta.sections[0].start == 0  # the title block folds into the first speech


def test_sample_000_headings_skip_bylines_and_merge():
    text, meta = _sample("000_9cda43de7004e204.txt")
    headings = [s.heading for s in meta.sections]
    assert len(headings) == 6
    assert headings[2] == "专访市民政局局长陈红卫 加快推进全国社区治理 和服务创新实验区建设"
    assert not any("记者" in h for h in headings)
    assert text[meta.sections[2].start:].startswith("专访市民政局局长陈红卫")


def test_sample_003_heading_lines_start_sections():
    _, meta = _sample("003_9996ae020915016f.txt")
    headings = [s.heading for s in meta.sections]
    assert headings[0] == meta.title  # the part before the first heading
    assert "用3年时间打造平安中国建设先进城市" in headings
    assert "全会突出超大城市现代化治理这一主题,主要基于以下三点:" not in headings


def test_sample_002_reporter_names_are_not_headings():
    _, meta = _sample("002_c1eac3b41c0a86c0.txt")
    headings = [s.heading for s in meta.sections]
    assert "市委政法委常务副书记向丽答记者问" in headings
    assert not any(h in ("陈曦", "杨婧", "整理") or h.startswith("陈曦") for h in headings)


# --- title -----------------------------------------------------------------------
def test_title_skips_junk_dates_and_source_lines():
    text = "搜索\n2024-02-23\n来源:三峡日报 日期:2022-01-14\n图为会议现场。\n宜昌打造急救圈\n正文第一段,内容很长。\n"
    assert _meta(text).title == "宜昌打造急救圈"


def test_title_has_glitches_removed():
    assert _meta("發(fā)聲亮劍表態(tài)發言\n同志們要堅定立場。\n").title == "發聲亮劍表態發言"


def test_title_falls_back_to_the_first_clause():
    text = "来源:长江日报\n6月29日下午,武汉市人民政府举行新闻发布会,市委政策研究室主任出席并介绍了全会有关情况。\n"
    assert _meta(text).title == "6月29日下午,武汉市人民政府举行新闻发布会"


def test_fallback_title_is_at_most_40_chars():
    text = "这是一个没有任何标点而且非常非常长的句子用来检验标题会不会被截断到四十个字以内的情况是否正确处理好了。\n"
    title = _meta(text).title
    assert 10 <= len(title) <= 40
    assert text.startswith(title)


def test_title_of_an_empty_document_is_the_file_name():
    meta = _meta("搜索\n\n", "sub/a.txt")
    assert meta.title == "a.txt"
    assert meta.sections == ()


# --- date ------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text, expected",
    [
        ("标题\n信息来源:鄂州政府网 日期:2021-08-02\n正文。", "2021-08-02"),
        ("来源:长江日报 发布日期:2020-06-30 07:24\n正文。", "2020-06-30"),
        ("2020年7月24日 星期\n标题\n正文。", "2020-07-24"),
        ("标题\n2022年01月14日 10阅读 来源:三峡日报\n正文。", "2022-01-14"),
        ("標題\n發佈日期:2019/3/5\n正文。", "2019-03-05"),
        # the labelled field wins over an earlier unlabelled date
        ("2020年7月24日\n标题\n日期:2021-08-02\n", "2021-08-02"),
        # an impossible date is not a date
        ("2021年2月30日\n标题\n正文。", None),
        ("标题\n正文没有日期。", None),
    ],
)
def test_dates(text: str, expected: str | None):
    assert _meta(text).date == expected


def test_unlabelled_date_must_be_near_the_top():
    text = "标题\n" + "正文内容。" * 200 + "2020年7月24日\n"
    assert _meta(text).date is None


# --- source ----------------------------------------------------------------------
@pytest.mark.parametrize(
    "text, expected",
    [
        ("标题\n来源:三峡日报\n正文。", "三峡日报"),
        ("标题\n信息来源:鄂州政府网 日期:2021-08-02\n正文。", "鄂州政府网"),
        ("来源:长江日报发布日期:2020-06-30\n正文。", "长江日报"),
        ("標題\n來源:湖南日報\n正文。", "湖南日報"),
        ("标题\n咸宁日报全媒体记者\xa0盛勇\xa0通讯员\xa0金镇源\n正文。", "咸宁日报"),
        ("标题\n三峡日报全媒记者\n陈曦\n正文。", "三峡日报"),
        ("【628568.com--演讲稿】\n同志们:\n正文。", "628568.com"),
        ("标题\n资金来源渠道多样。\n正文。", None),
    ],
)
def test_sources(text: str, expected: str | None):
    assert _meta(text).source == expected


# --- region ----------------------------------------------------------------------
def test_region_counts_counties_towards_their_prefecture():
    text = "湖南省\n吉首市、瀘溪縣、鳳凰縣、花垣縣的負責同志介紹情況。懷化市也參加了。\n"
    assert _meta(text).region == "湘西土家族苗族自治州"


def test_region_tie_goes_to_the_first_mentioned():
    assert _meta("宜昌与鄂州\n宜昌和鄂州合作。\n").region == "宜昌市"
    assert _meta("鄂州与宜昌\n鄂州和宜昌合作。\n").region == "鄂州市"


def test_region_ignores_everyday_words_and_longer_names():
    # 永远安全 contains 远安, 交通城市 contains 通城, 天津市 contains 津市.
    assert count_regions("永远安全,交通城市,会同有关部门") == {}
    assert count_regions("天津市") == {"天津市": 1}
    assert _meta("标题\n没有地名的正文。\n").region is None


def test_region_english_and_aliases():
    assert region_english("宜昌市") == "Yichang"
    assert region_english("湘西土家族苗族自治州") == "Xiangxi"
    assert region_english("宜昌") == "Yichang"
    assert region_english("不存在的地方") is None
    aliases = place_aliases()
    for key, region in [
        ("yichang", "宜昌市"), ("宜昌", "宜昌市"), ("宜昌市", "宜昌市"),
        ("xiangxi", "湘西土家族苗族自治州"), ("湘西", "湘西土家族苗族自治州"),
        ("jishou", "湘西土家族苗族自治州"), ("吉首", "湘西土家族苗族自治州"),
        ("鳳凰縣", "湘西土家族苗族自治州"), ("ezhou", "鄂州市"), ("xianning", "咸宁市"),
        ("wuhan", "武汉市"), ("enshi", "恩施土家族苗族自治州"), ("guiyang", "贵阳市"),
    ]:
        assert aliases[key] == region, key
    # English names shared by two prefectures' counties are left out, not guessed.
    assert "zhijiang" not in aliases and "huarong" not in aliases
    aliases["yichang"] = "changed"
    assert place_aliases()["yichang"] == "宜昌市"  # callers get a copy


# --- sections --------------------------------------------------------------------
def test_heading_lines_start_sections_and_merge():
    text = (
        "总标题\n来源:某某日报\n\n导语一段,介绍背景。\n\n"
        "专访市民政局局长陈红卫\n\n加快推进社区治理\n\n某某日报全媒体记者 张三\n\n正文一,内容。\n\n"
        "第二个小标题\n正文二,内容。\n"
    )
    meta = _meta(text)
    assert [s.heading for s in meta.sections] == [
        "总标题", "专访市民政局局长陈红卫 加快推进社区治理", "第二个小标题"]
    assert text[meta.sections[1].start:].startswith("专访")
    _check_sections(text, meta)


def test_title_block_without_body_folds_into_first_section():
    text = "总标题\n——副标题(上)\n\n小标题一\n\n正文一。\n\n小标题二\n\n正文二。\n"
    meta = _meta(text)
    assert [s.heading for s in meta.sections] == ["小标题一", "小标题二"]
    assert meta.sections[0].start == 0


def test_compilation_sections_and_headings():
    text = (
        "講話稿合集\n2024-02-23\n"
        "同志們:\n今天,我們召開全市安全生產工作會議,主要任務是部署工作。\n一、小標題\n內容。\n"
        "同志们:\n刚才几位同志作了发言,我完全赞同,下面我再讲三点意见供大家参考,希望大家会后认真抓好贯彻落实。\n"
        "各位代表:\n現在,我代表市人民政府作報告。\n"
    )
    meta = _meta(text)
    headings = [s.heading for s in meta.sections]
    assert headings[0] == "全市安全生產工作會議"
    # No meeting named: the first sentence, cut at its last clause within 40 chars.
    assert headings[1] == "刚才几位同志作了发言,我完全赞同,下面我再讲三点意见供大家参考"
    assert headings[2] == "現在,我代表市人民政府作報告"
    assert "一、小標題" not in headings  # inside a speech: not a section of its own
    _check_sections(text, meta)


def test_sections_point_into_the_original_despite_glitches():
    text = "搜索\n標題\n\n發(fā)聲亮劍,內容。\n\n小標題(yī)二\n正文。\n"
    meta = _meta(text)
    second = meta.sections[1]
    assert second.heading == "小標題二"
    assert text[second.start:second.end].startswith("小標題(yī)二")
    _check_sections(text, meta)
