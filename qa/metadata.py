"""Per-document metadata: title, date, source, region and sections.

Everything is read off the text itself, because scraped files come without any
sidecar metadata. Titles and headings come from the *cleaned* text (boilerplate
dropped, pinyin glitches removed); section offsets point into the *original* text.

>>> text = "宜昌打造急救圈\\n来源:三峡日报 日期:2022-01-14\\n\\n宜昌市将建设急救站。宜都市、枝江市同步推进。\\n"
>>> meta = extract_metadata(text, clean(text), "a.txt")
>>> meta.title, meta.date, meta.source, meta.region
('宜昌打造急救圈', '2022-01-14', '三峡日报', '宜昌市')
>>> [(s.heading, s.start, s.end) for s in meta.sections]
[('宜昌打造急救圈', 0, 54)]
"""

from __future__ import annotations

import datetime as _dt
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from qa.clean import CleanText, clean  # noqa: F401  (clean: used by the doctests)
from qa.fold import fold
from qa.types import Section

__all__ = ["Metadata", "count_regions", "extract_metadata", "place_aliases", "region_english"]

# Headings and fallback titles longer than this are cut (at a clause boundary if any).
MAX_HEADING_CHARS = 40


@dataclass(frozen=True)
class Metadata:
    """What :func:`extract_metadata` found; ``sections`` index the original text."""

    title: str
    date: str | None
    source: str | None
    region: str | None
    sections: tuple[Section, ...]


# --- gazetteer -------------------------------------------------------------------
# One line per prefecture-level division of Hubei and Hunan, then the capitals of the
# other provincial-level divisions: "canonical English | place English, ...". A
# place's short form (吉首市 → 吉首, 长阳土家族自治县 → 长阳) counts as a mention
# too, unless it is an everyday word or another place's name (see _AMBIGUOUS).
_GAZETTEER = """
武汉市 Wuhan | 江岸区 Jiang'an, 江汉区 Jianghan, 硚口区 Qiaokou, 汉阳区 Hanyang, 武昌区 Wuchang, 青山区 Qingshan, 洪山区 Hongshan, 东西湖区 Dongxihu, 汉南区 Hannan, 蔡甸区 Caidian, 江夏区 Jiangxia, 黄陂区 Huangpi, 新洲区 Xinzhou, 汉口 Hankou
黄石市 Huangshi | 大冶市 Daye, 阳新县 Yangxin, 黄石港区 Huangshigang, 西塞山区 Xisaishan, 下陆区 Xialu, 铁山区 Tieshan
十堰市 Shiyan | 丹江口市 Danjiangkou, 郧阳区 Yunyang, 郧西县 Yunxi, 竹山县 Zhushan, 竹溪县 Zhuxi, 房县 Fangxian, 茅箭区 Maojian, 张湾区 Zhangwan
宜昌市 Yichang | 宜都市 Yidu, 当阳市 Dangyang, 枝江市 Zhijiang, 远安县 Yuan'an, 兴山县 Xingshan, 秭归县 Zigui, 长阳土家族自治县 Changyang, 五峰土家族自治县 Wufeng, 夷陵区 Yiling, 西陵区 Xiling, 伍家岗区 Wujiagang, 点军区 Dianjun, 猇亭区 Xiaoting
襄阳市 Xiangyang | 襄樊 Xiangfan, 老河口市 Laohekou, 枣阳市 Zaoyang, 宜城市 Yicheng, 南漳县 Nanzhang, 谷城县 Gucheng, 保康县 Baokang, 襄州区 Xiangzhou, 襄城区 Xiangcheng, 樊城区 Fancheng
鄂州市 Ezhou | 鄂城区 Echeng, 华容区 Huarong, 梁子湖区 Liangzihu, 葛店 Gedian
荆门市 Jingmen | 钟祥市 Zhongxiang, 京山市 Jingshan, 沙洋县 Shayang, 东宝区 Dongbao, 掇刀区 Duodao, 屈家岭 Qujialing
孝感市 Xiaogan | 应城市 Yingcheng, 安陆市 Anlu, 汉川市 Hanchuan, 孝昌县 Xiaochang, 大悟县 Dawu, 云梦县 Yunmeng, 孝南区 Xiaonan
荆州市 Jingzhou | 石首市 Shishou, 洪湖市 Honghu, 松滋市 Songzi, 监利市 Jianli, 公安县 Gong'an, 江陵县 Jiangling, 沙市区 Shashi, 荆州区 Jingzhou
黄冈市 Huanggang | 麻城市 Macheng, 武穴市 Wuxue, 红安县 Hong'an, 罗田县 Luotian, 英山县 Yingshan, 浠水县 Xishui, 蕲春县 Qichun, 黄梅县 Huangmei, 团风县 Tuanfeng, 黄州区 Huangzhou
咸宁市 Xianning | 赤壁市 Chibi, 嘉鱼县 Jiayu, 通城县 Tongcheng, 崇阳县 Chongyang, 通山县 Tongshan, 咸安区 Xian'an
随州市 Suizhou | 广水市 Guangshui, 随县 Suixian, 曾都区 Zengdu
恩施土家族苗族自治州 Enshi | 恩施市 Enshi, 利川市 Lichuan, 建始县 Jianshi, 巴东县 Badong, 宣恩县 Xuan'en, 咸丰县 Xianfeng, 来凤县 Laifeng, 鹤峰县 Hefeng
仙桃市 Xiantao |
潜江市 Qianjiang |
天门市 Tianmen |
神农架林区 Shennongjia |
长沙市 Changsha | 浏阳市 Liuyang, 宁乡市 Ningxiang, 长沙县 Changsha, 望城区 Wangcheng, 岳麓区 Yuelu, 芙蓉区 Furong, 天心区 Tianxin, 开福区 Kaifu, 雨花区 Yuhua
株洲市 Zhuzhou | 醴陵市 Liling, 攸县 Youxian, 茶陵县 Chaling, 炎陵县 Yanling, 渌口区 Lukou
湘潭市 Xiangtan | 湘乡市 Xiangxiang, 韶山市 Shaoshan, 湘潭县 Xiangtan
衡阳市 Hengyang | 耒阳市 Leiyang, 常宁市 Changning, 衡阳县 Hengyang, 衡南县 Hengnan, 衡山县 Hengshan, 衡东县 Hengdong, 祁东县 Qidong, 南岳区 Nanyue
邵阳市 Shaoyang | 武冈市 Wugang, 邵东市 Shaodong, 新邵县 Xinshao, 邵阳县 Shaoyang, 隆回县 Longhui, 洞口县 Dongkou, 绥宁县 Suining, 新宁县 Xinning, 城步苗族自治县 Chengbu
岳阳市 Yueyang | 汨罗市 Miluo, 临湘市 Linxiang, 华容县 Huarong, 湘阴县 Xiangyin, 平江县 Pingjiang, 岳阳县 Yueyang
常德市 Changde | 津市市 Jinshi, 澧县 Lixian, 临澧县 Linli, 桃源县 Taoyuan, 石门县 Shimen, 汉寿县 Hanshou, 安乡县 Anxiang
张家界市 Zhangjiajie | 慈利县 Cili, 桑植县 Sangzhi, 武陵源区 Wulingyuan, 永定区 Yongding
益阳市 Yiyang | 沅江市 Yuanjiang, 南县 Nanxian, 桃江县 Taojiang, 安化县 Anhua, 赫山区 Heshan, 资阳区 Ziyang
郴州市 Chenzhou | 资兴市 Zixing, 桂阳县 Guiyang, 宜章县 Yizhang, 永兴县 Yongxing, 嘉禾县 Jiahe, 临武县 Linwu, 汝城县 Rucheng, 桂东县 Guidong, 安仁县 Anren, 北湖区 Beihu, 苏仙区 Suxian
永州市 Yongzhou | 祁阳市 Qiyang, 东安县 Dong'an, 双牌县 Shuangpai, 道县 Daoxian, 江永县 Jiangyong, 宁远县 Ningyuan, 蓝山县 Lanshan, 新田县 Xintian, 江华瑶族自治县 Jianghua, 零陵区 Lingling, 冷水滩区 Lengshuitan
怀化市 Huaihua | 洪江市 Hongjiang, 沅陵县 Yuanling, 辰溪县 Chenxi, 溆浦县 Xupu, 中方县 Zhongfang, 会同县 Huitong, 麻阳苗族自治县 Mayang, 新晃侗族自治县 Xinhuang, 芷江侗族自治县 Zhijiang, 靖州苗族侗族自治县 Jingzhou, 通道侗族自治县 Tongdao, 鹤城区 Hecheng
娄底市 Loudi | 冷水江市 Lengshuijiang, 涟源市 Lianyuan, 双峰县 Shuangfeng, 新化县 Xinhua, 娄星区 Louxing
湘西土家族苗族自治州 Xiangxi | 吉首市 Jishou, 泸溪县 Luxi, 凤凰县 Fenghuang, 花垣县 Huayuan, 保靖县 Baojing, 古丈县 Guzhang, 永顺县 Yongshun, 龙山县 Longshan
北京市 Beijing |
天津市 Tianjin |
上海市 Shanghai |
重庆市 Chongqing |
石家庄市 Shijiazhuang |
太原市 Taiyuan |
呼和浩特市 Hohhot |
沈阳市 Shenyang |
长春市 Changchun |
哈尔滨市 Harbin |
南京市 Nanjing |
杭州市 Hangzhou |
合肥市 Hefei |
福州市 Fuzhou |
南昌市 Nanchang |
济南市 Jinan |
郑州市 Zhengzhou |
广州市 Guangzhou |
南宁市 Nanning |
海口市 Haikou |
成都市 Chengdu |
贵阳市 Guiyang |
昆明市 Kunming |
拉萨市 Lhasa |
西安市 Xi'an |
兰州市 Lanzhou |
西宁市 Xining |
银川市 Yinchuan |
乌鲁木齐市 Urumqi |
香港 Hong Kong |
澳门 Macao |
"""

# Short forms that are everyday words or contained in common phrases (永远安全 ⊃ 远安,
# 交通城市 ⊃ 通城, 中方 = "the Chinese side", 会同 = "together with", 通道 = "channel"),
# or that name two places (华容区 in Ezhou, 华容县 in Yueyang): only the full
# name with its 市/县/区 counts for these.
_AMBIGUOUS = frozenset(
    "青山 江岸 江汉 下陆 铁山 远安 兴山 宜城 保康 华容 东宝 应城 公安 通城 通山 建始 咸丰 "
    "望城 芙蓉 天心 雨花 开福 洞口 新宁 平江 石门 桃源 津市 永定 资阳 永兴 北湖 东安 新田 "
    "中方 会同 通道 鹤城 凤凰 龙山 城步 襄城 沙市 南岳 嘉禾 双牌".split()
)
_SUFFIX = re.compile(r"(?:(?:[\u4e00-\u9fff]{1,3}族)+自治[县州]|林区|市|县|区)")


@dataclass(frozen=True)
class _Region:
    name: str  # canonical, e.g. 湘西土家族苗族自治州
    english: str
    places: tuple[tuple[str, str], ...]  # (county-level name, English)


def _short(name: str) -> str | None:
    """吉首市 → 吉首, 湘西土家族苗族自治州 → 湘西; None when nothing useful is left."""
    # The shortest suffix wins: 湘西|土家族苗族自治州, not 湘|西土家族苗族自治州.
    for cut in range(2, len(name)):
        if _SUFFIX.fullmatch(name, cut):
            short = name[:cut]
            return None if short in _AMBIGUOUS else short
    return None


@lru_cache(maxsize=1)
def _regions() -> tuple[_Region, ...]:
    regions = []
    for line in _GAZETTEER.strip().splitlines():
        head, _, tail = line.partition("|")
        name, english = head.strip().split(" ", 1)
        places = []
        for item in filter(None, (p.strip() for p in tail.split(","))):
            place, place_english = item.split(" ", 1)
            places.append((place, place_english))
        regions.append(_Region(name, english, tuple(places)))
    return tuple(regions)


@lru_cache(maxsize=1)
def _mention_table() -> tuple[re.Pattern[str], dict[str, str]]:
    """A leftmost-longest matcher over every (simplified) place name → its region.

    Longest first, so 天津市 is one mention of Tianjin and not a mention of 津市.
    """
    owner: dict[str, str] = {}
    for region in _regions():
        names = [region.name, _short(region.name)]
        if region.name.endswith("自治州"):
            names.append(region.name[:2] + "州")  # 湘西州, 恩施州
        for place, _ in region.places:
            names += [place, _short(place)]
        for n in filter(None, names):
            owner.setdefault(n, region.name)
    pattern = re.compile("|".join(sorted(map(re.escape, owner), key=len, reverse=True)))
    return pattern, owner


def count_regions(text: str) -> dict[str, int]:
    """Mentions per canonical region in ``text`` (any script; matched after folding).

    >>> count_regions("吉首市、瀘溪縣和鳳凰縣;宜昌")
    {'湘西土家族苗族自治州': 3, '宜昌市': 1}
    """
    pattern, owner = _mention_table()
    counts: dict[str, int] = {}
    for m in pattern.finditer(fold(text)):
        region = owner[m.group(0)]
        counts[region] = counts.get(region, 0) + 1
    return counts


def _detect_region(text: str) -> str | None:
    pattern, owner = _mention_table()
    counts: dict[str, int] = {}
    first: dict[str, int] = {}
    for m in pattern.finditer(fold(text)):
        region = owner[m.group(0)]
        counts[region] = counts.get(region, 0) + 1
        first.setdefault(region, m.start())
    if not counts:
        return None
    # Most mentions wins; on a tie the region named first (usually in the title).
    return min(counts, key=lambda r: (-counts[r], first[r]))


def region_english(region: str) -> str | None:
    """English name of a region, from its canonical or any alias name.

    >>> region_english("宜昌市"), region_english("湘西土家族苗族自治州"), region_english("火星")
    ('Yichang', 'Xiangxi', None)
    """
    canonical = _aliases().get(fold(region.strip()))
    if canonical is None:
        return None
    return _english_names()[canonical]


def local_place_forms(name: str) -> tuple[str, ...]:
    """The Chinese names of a county or district (in Chinese or English), for finding
    it in folded text; empty for a prefecture or an unknown name.

    >>> local_place_forms("Yidu"), local_place_forms("华容区"), local_place_forms("Yichang")
    (('宜都市', '宜都'), ('华容区',), ())
    """
    key = fold(name.strip()).lower()
    for region in _regions():
        if key in (region.english.lower(), region.name, _short(region.name), region.name[:2] + "州"):
            return ()
    forms: list[str] = []
    for region in _regions():
        for place, english in region.places:
            if key in (place, _short(place), english.lower()):
                forms += [f for f in (place, _short(place)) if f]
    return tuple(dict.fromkeys(forms))


@lru_cache(maxsize=1)
def _english_names() -> dict[str, str]:
    return {r.name: r.english for r in _regions()}


@lru_cache(maxsize=1)
def _aliases() -> dict[str, str]:
    import opencc

    to_traditional = opencc.OpenCC("s2t").convert
    aliases: dict[str, str] = {}
    county_english: dict[str, set[str]] = {}

    def add_chinese(name: str | None, region: str) -> None:
        if name:
            for form in (name, to_traditional(name)):
                aliases.setdefault(form, region)

    # Prefecture names first, so they win over a county of the same reading
    # (靖州 "Jingzhou" in Huaihua vs 荆州 "Jingzhou" the prefecture).
    for region in _regions():
        aliases.setdefault(region.english.lower(), region.name)
        add_chinese(region.name, region.name)
        add_chinese(_short(region.name), region.name)
        if region.name.endswith("自治州"):
            add_chinese(region.name[:2] + "州", region.name)
    for region in _regions():
        for place, english in region.places:
            add_chinese(place, region.name)
            add_chinese(_short(place), region.name)
            county_english.setdefault(english.lower(), set()).add(region.name)
    for english, owners in county_english.items():
        # An English county name shared by two prefectures (Zhijiang, Huarong) is
        # useless for translation: leave it out rather than guess.
        if len(owners) == 1 and english not in aliases:
            aliases[english] = next(iter(owners))
    return aliases


def place_aliases() -> dict[str, str]:
    """Lower-case English and Chinese place names → canonical region name.

    Keys: English names (``yichang``, ``jishou``), Chinese full and short names in
    simplified and traditional script (``宜昌``, ``宜昌市``, ``湘西``, ``吉首``).

    >>> a = place_aliases()
    >>> a["yichang"], a["宜昌"], a["jishou"], a["湘西"], a["瀘溪縣"]
    ('宜昌市', '宜昌市', '湘西土家族苗族自治州', '湘西土家族苗族自治州', '湘西土家族苗族自治州')
    """
    return dict(_aliases())  # a copy: callers may not mutate the shared cache


# --- lines -----------------------------------------------------------------------
@dataclass(frozen=True)
class _Line:
    start: int  # cleaned-text offset of the first non-space character
    end: int
    text: str  # stripped
    kind: str  # heading | body | meta | byline | opening


_SENTENCE_MARKS = "。！？!?；;"
_TRAILING_CLOSERS = "”’\"'」』）)】》"
_NO_HEADING_END = set("。！？!?；;：:，,、…")
_META = re.compile(
    r"(?:信息|稿件|文章|新闻)?来源[:]|(?:发布|更新|成文|印发)?日期[:]|发布时间[:]|"
    r"\d+(?:阅读|浏览)|(?:阅读|浏览)(?:次数|量)?[:]|作者[:]|字号[:]"
)
_BYLINE = re.compile(r"(?:记者|通讯员|撰稿|摄影|特约评论员)(?=\s|$)|^(?:本报|本台)(?:讯|记者)|\s(?:整理|摄|报道)$")
_BYLINE_WORDS = frozenset({"整理", "摄", "供图", "编辑", "文/图"})
_NAME = re.compile(r"^[\u4e00-\u9fff]{2,4}$")
_PERSON = re.compile(
    r"^[\u4e00-\u9fff]{2,4}\s+\S.{0,30}"
    r"(?:书记|主任|部长|局长|市长|州长|县长|秘书长|主席|成员|委员|秘书|助理|经理|院长|校长|专家|代表)$"
)
_OPENING = re.compile(
    r"^(?:[^,。:]{0,12}[、,])?(?:同志们|各位代表|各位委员|各位领导|各位来宾|同志们、朋友们|女士们、先生们)[:!]$"
)
_MAX_HEADING_LINE = 50
_MAX_TITLE_LINE = 64


def _norm(line: str) -> str:
    """Folded (simplified, half-width) with whitespace runs as one space."""
    return re.sub(r"\s+", " ", fold(line)).strip()


def _ends_like_sentence(text: str) -> bool:
    core = text.rstrip(_TRAILING_CLOSERS)
    return not core or core[-1] in _NO_HEADING_END


def _heading_like(text: str, folded: str, max_len: int) -> bool:
    """Short, no sentence inside or at the end, no ``label:value``, some Chinese."""
    if len(text) > max_len or _ends_like_sentence(text):
        return False
    if any(mark in folded for mark in _SENTENCE_MARKS) or ":" in folded:
        return False
    if _PERSON.match(folded) or _BYLINE.search(folded):
        return False
    return sum(1 for ch in text if "\u4e00" <= ch <= "\u9fff") >= 2


def _classify(cleaned: str) -> list[_Line]:
    lines: list[_Line] = []
    pos = 0
    previous: _Line | None = None
    for raw in cleaned.splitlines(keepends=True):
        stripped = raw.strip()
        if stripped:
            start = pos + raw.index(stripped[0])
            folded = _norm(stripped)
            compact = folded.replace(" ", "")
            if _OPENING.match(compact):
                kind = "opening"
            elif (
                _BYLINE.search(folded)
                or compact in _BYLINE_WORDS
                # "三峡日报全媒记者" followed by a line holding just the name
                or (previous is not None and previous.kind == "byline"
                    and re.search(r"(?:记者|通讯员)$", _norm(previous.text))
                    and _NAME.match(compact))
            ):
                kind = "byline"
            elif len(stripped) <= 80 and _META.search(compact):
                kind = "meta"
            elif _heading_like(stripped, folded, _MAX_HEADING_LINE):
                kind = "heading"
            else:
                kind = "body"
            previous = _Line(start, start + len(stripped), stripped, kind)
            lines.append(previous)
        pos += len(raw)
    return lines


# --- title -----------------------------------------------------------------------
_CLAUSE_END = re.compile(r"[,，、:：;；。！？!?]")


def _trim(text: str, limit: int = MAX_HEADING_CHARS) -> str:
    """Cut ``text`` to ``limit`` characters, at the last clause boundary if possible.

    >>> _trim("一二三四五,六七八九十", 8)
    '一二三四五'
    """
    text = text.strip()
    if len(text) <= limit:
        return text
    cut = max((m.start() for m in _CLAUSE_END.finditer(text, 0, limit + 1)), default=0)
    return text[:cut] if cut >= limit // 3 else text[:limit]


def _first_sentence(text: str) -> str:
    m = re.search(r"[。！？!?]", text)
    return text[: m.end()] if m else text


def _lead_clause(text: str) -> str:
    """The first clause of the first sentence; a bare time phrase takes the next one too.

    >>> _lead_clause("6月29日下午,武汉市人民政府举行新闻发布会,市委出席。")
    '6月29日下午,武汉市人民政府举行新闻发布会'
    """
    sentence = _first_sentence(text).rstrip("。！？!?")
    out = ""
    for piece in re.split(r"(?<=[,，;；:：])", sentence):
        out += piece
        if len(out.rstrip(",，;；:：")) >= 10:
            break
    return _trim(out.rstrip(",，;；:："))


def _title(lines: list[_Line]) -> tuple[str | None, int | None]:
    """The first title-like line above the first paragraph, and its index."""
    for i, line in enumerate(lines):
        if line.kind == "body":
            break
        if line.kind in ("meta", "byline", "opening"):
            continue
        if _heading_like(line.text, _norm(line.text), _MAX_TITLE_LINE):
            return line.text, i
    return None, None


# --- dates and sources -----------------------------------------------------------
_DATE = r"(\d{4})\s*[-/.年]\s*(\d{1,2})\s*(?:[-/.月]\s*(\d{1,2})\s*日?)?"
_LABELLED_DATE = re.compile(
    r"(?:(?:发布|發布|發佈|更新|成文|印发|印發)?日期|发布时间|發布時間|發佈時間)\s*[:：]\s*" + _DATE
)
_ANY_DATE = re.compile(r"(?<!\d)(\d{4})(?:-(\d{1,2})-(\d{1,2})|年(\d{1,2})月(\d{1,2})日)")
_TOP_CHARS = 500


def _iso(year: str, month: str, day: str | None) -> str | None:
    y, m = int(year), int(month)
    if not 1949 <= y <= 2100 or not 1 <= m <= 12:
        return None
    if day is None:
        return f"{y:04d}-{m:02d}"
    try:
        return _dt.date(y, m, int(day)).isoformat()
    except ValueError:  # 2月30日: not a date, keep looking
        return None


def _find_date(original: str) -> str | None:
    text = unicodedata.normalize("NFKC", original)
    for m in _LABELLED_DATE.finditer(text):
        found = _iso(*m.groups())
        if found:
            return found
    for m in _ANY_DATE.finditer(text[:_TOP_CHARS]):
        year, m1, d1, m2, d2 = m.groups()
        found = _iso(year, m1 or m2, d1 or d2)
        if found and len(found) == 10:
            return found
    return None


_SOURCE_LABEL = re.compile(
    r"(?:^|(?<=[\s|｜]))(?:信息|稿件|文章|新闻|新聞)?(?:来源|來源)\s*[:：]\s*([^\s|｜,，;；:：]{2,30})",
    re.M,
)
_SOURCE_TAIL = re.compile(r"(?:发布|發布|發佈|更新)?(?:日期|时间|時間)$|作者$|编辑$|編輯$")
_PAPER_BYLINE = re.compile(
    r"(?:^|(?<=[\s(（,，。]))([\u4e00-\u9fff]{2,8}?(?:日报|日報|晚报|晚報|晨报|晨報|时报|時報|都市报|都市報))"
    r"(?:全媒体|全媒體|全媒|融媒体|融媒體)?(?:首席|见习|見習|特约|特約)?(?:记者|記者|通讯员|通訊員)",
    re.M,
)
_SITE_TAG = re.compile(r"【\s*((?:[0-9A-Za-z-]+\.)+[A-Za-z]{2,6})\s*(?:-{1,2}[^】]{0,20})?】")


def _find_source(original: str) -> str | None:
    text = unicodedata.normalize("NFKC", original)
    for m in _SOURCE_LABEL.finditer(text):
        name = _SOURCE_TAIL.sub("", m.group(1))
        if len(name) >= 2:
            return name
    m = _PAPER_BYLINE.search(text)
    if m:
        return m.group(1)
    m = _SITE_TAG.search(text)
    return m.group(1) if m else None


# --- sections --------------------------------------------------------------------
# 召开(这次)XX会议 / XX会议…召开; a count (召开5次州委常委会议) is not a meeting name.
_NAME_CHARS = r"[^,，。；;:：、“”\"()（）\s]"
_MEETING_AFTER = re.compile(
    rf"召[开開](?:了)?(?:[这這]次|本次|此次|今天的)?(?P<name>{_NAME_CHARS}{{2,30}}?[会會][议議])"
)
_MEETING_BEFORE = re.compile(
    rf"(?P<name>{_NAME_CHARS}{{2,30}}?[会會][议議])[^,，。；;]{{0,12}}?召[开開]"
)
_COUNT = re.compile(r"^[\dx一二两兩三四五六七八九十几幾多]+次")
_TIME_PREFIX = re.compile(r"^(?:今年|今天|今日|本次|此次|[这這]次|我们|我們)+")


def _meeting_name(paragraph: str) -> str | None:
    """The meeting a speech opens, from its first paragraph.

    >>> _meeting_name("今天,我們召開十五屆州人民政府第一次全體會議,主要任務是")
    '十五屆州人民政府第一次全體會議'
    >>> _meeting_name("因為疫情原因,今年全省交通運輸工作會議采取視頻會議召開。")
    '全省交通運輸工作會議'
    >>> _meeting_name("共召開5次州委常委會議。") is None
    True
    """
    found: list[tuple[int, str]] = []
    for pattern in (_MEETING_AFTER, _MEETING_BEFORE):
        for m in pattern.finditer(paragraph):
            name = _TIME_PREFIX.sub("", m.group("name"))
            if len(name) >= 4 and not _COUNT.match(name):
                found.append((m.start("name"), name))
    return min(found)[1] if found else None


def _speech_heading(paragraph: str) -> str:
    return _meeting_name(paragraph) or _trim(_first_sentence(paragraph).rstrip("。！？!?"))


def _has_body(lines: list[_Line], start: int, end: int) -> bool:
    return any(line.kind == "body" and start <= line.start < end for line in lines)


def _sections(
    original: str, cleaned: CleanText, lines: list[_Line], title: str, title_index: int | None
) -> tuple[Section, ...]:
    if not lines:
        return ()
    starts: list[tuple[int, str]] = []  # (cleaned offset, heading)
    openings = [i for i, line in enumerate(lines) if line.kind == "opening"]
    if len(openings) >= 2:
        # A compilation of speeches: one section per "同志们:".
        for i in openings:
            paragraph = lines[i + 1].text if i + 1 < len(lines) else ""
            starts.append((lines[i].start, _speech_heading(paragraph) or lines[i].text))
    else:
        skip = set()
        if title_index is not None:
            # The title and its "——subtitle" lines head the document, not a section.
            skip.add(title_index)
            j = title_index + 1
            while j < len(lines) and lines[j].text.startswith(("——", "—", "(", "（")):
                skip.add(j)
                j += 1
        group: list[_Line] = []
        for i, line in enumerate(lines + [_Line(len(cleaned.text), len(cleaned.text), "", "end")]):
            if line.kind == "heading" and i not in skip:
                group.append(line)
                continue
            if group:
                starts.append((group[0].start, _trim(" ".join(g.text for g in group), 80)))
                group = []
    first = lines[0].start
    if not starts:
        starts = [(first, title)]
    elif starts[0][0] > first:
        if _has_body(lines, first, starts[0][0]):
            starts.insert(0, (first, title))
        else:
            # Only the title block precedes the first heading: fold it in.
            starts[0] = (first, starts[0][1])
    bounds = [cleaned.offsets[s] for s, _ in starts] + [len(original)]
    return tuple(
        Section(heading=heading, start=bounds[k], end=bounds[k + 1])
        for k, (_, heading) in enumerate(starts)
    )


# --- entry point -----------------------------------------------------------------
def extract_metadata(original: str, cleaned: CleanText, doc_id: str) -> Metadata:
    """Title, date, source, region and sections of one document.

    ``cleaned`` must be ``clean(original)``; ``doc_id`` names the document when
    nothing in it looks like a title.

    >>> text = "來源:湖南日報\\n同志們:\\n今天召開全州煙葉工作會議。吉首市要抓好。\\n同志們:\\n講三點。\\n"
    >>> meta = extract_metadata(text, clean(text), "b.txt")
    >>> meta.source, meta.region, [s.heading for s in meta.sections]
    ('湖南日報', '湘西土家族苗族自治州', ['全州煙葉工作會議', '講三點'])
    """
    lines = _classify(cleaned.text)
    title, title_index = _title(lines)
    if title is None:
        first_body = next((line.text for line in lines if line.kind == "body"), None)
        title = _lead_clause(first_body) if first_body else doc_id.rsplit("/", 1)[-1]
    return Metadata(
        title=title,
        date=_find_date(original),
        source=_find_source(original),
        region=_detect_region(cleaned.text),
        sections=_sections(original, cleaned, lines, title, title_index),
    )
