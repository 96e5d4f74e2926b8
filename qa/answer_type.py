"""The kind of fact a question asks for, and whether a piece of evidence holds one.

A question that asks "how much money", "which year" or "who" is only answered by a
sentence that holds an amount of money, a date or a person/office. A near miss (the
document talks about the topic but never states the asked fact) usually fails this
test: the sentence about the new disease-control centre says it will be *built*, not
what it *costs*. :func:`asked_kind` reads the question (Chinese or English) and
:func:`holds_kind` checks evidence text; both are pure and work on folded or raw text.

Kinds (``AskedKind.kind``):

============  ==============================================  ==========================
kind          asked as                                        evidence must hold
============  ==============================================  ==========================
``when``      哪一年, 什么时候, when, which year, by when        a date (2019年, 7月, 年底)
``money``     多少钱/资金, 投资多少, how much money/invest      a number of 元 (万元, 亿元)
``percent``   比例, 占比, 百分之几, what share/percentage     a percentage (30%, 百分之, 成; a share
                                                              such as 占多少 not a multiple, 三倍)
``duration``  多久, 多长时间, how long/quickly, how many minutes  a number of 分钟/小时/天/年…
``distance``  多远, how far, what radius/distance             a length or a travel time (15分钟, 3公里)
``count``     多少个/名…, 几个, how many                       a number (with the asked unit)
``who``       谁, 哪位, who, whom, which official/leader       an office or a person's title
``where``     哪里, 在哪, 哪个会场/地点, where                    a place or venue word
``list``      哪些, 哪几, which … (plural), what are           an enumeration (、 or 一是…二是)
``name``      叫什么, 什么名称, called, named, nickname,        a quoted or titled name (“…” 《…》)
              what office/body/campaign/scheme/institute…
============  ==============================================  ==========================

``rate`` (per hour, an hour, hourly, 每小时…) is kept apart: a question asking "per
hour" needs the hour in the evidence even when it holds a number.

The asked unit: 多少家/间/名… and English "how many <noun>" (the head noun: the
first plural before the verb, through :data:`_EN_UNIT`) name the measure words a
count must carry; a thing's own measure word and the all-purpose 个 stand for each
other (:func:`unit_family`), people take 人/名/位. A figure the question itself
states (the 35 of "before it added 35 more") never counts as the answer
(:func:`without_question_numbers`), and a question that states a percentage or an
amount of money ("哪些单位的比例已提升至30%?") asks for something else.

>>> asked_kind("宜昌打造多少分钟急救圈?").kind, asked_kind("Who heads the bureau?").kind
('duration', 'who')
>>> holds_kind(asked_kind("投资多少亿元?"), "计划投资20亿元建设"), holds_kind(asked_kind("投资多少?"), "建设疾控中心")
(True, False)
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from qa.fold import fold

# Measure words that follow a count in these documents.
UNITS = tuple(sorted(set(
    "公里 万元 亿元 小时 分钟 平方米 个 名 家 项 次 件 所 台 辆 间 张 年 倍 类 位 届 期 条 处 人 亿 元 万 天 栋 亩 "
    "担 擔 户 戶 座 批 支 场 場 套 份 万份 床 张 米 公顷 省 市 县".split()), key=len, reverse=True))
_TIME_UNITS = ("分钟", "小时", "天", "日", "周", "个月", "月", "年")
_NUM = r"(?:\d+(?:\.\d+)?|[〇零一二两三四五六七八九十百千万亿]+)"
_DIGITS = re.compile(r"\d")
# A Chinese numeral only counts with a measure word after it (一是, 三无 are not counts);
# a year (2021年) or a percentage is not a count of things.
_COUNT = re.compile(r"(?<![\d.])(?!(?:19|20)\d{2}年)\d+(?:\.\d+)?(?![\d.]*\s*%)(?![\d.])|"
                    r"[两一二三四五六七八九十百千]+(?:" + "|".join(UNITS) + ")")
_RANK = re.compile(r"第\s*(?:\d+|[一二三四五六七八九十]+)|位居|方阵|排名|首位|前列|(?:\d+|[一二三四五六七八九十]+)(?:届|次|位|名)")
# What a quoted phrase in the question says is not what it asks ("要么谁都不管" is no "who").
_QUOTED = re.compile(r"[“\"「《][^”\"」》]*[”\"」》]")
# English nouns after "how many" and the Chinese measure words a count of them takes
# (singular forms; :func:`_en_unit` strips a plural). People take 人/名/位, things
# their own measure word or the all-purpose 个 (see :func:`unit_family`).
_PERSONS = "人|名|位"
_EN_UNIT = {
    "people": _PERSONS, "person": _PERSONS, "resident": _PERSONS, "worker": _PERSONS, "staff": _PERSONS,
    "member": _PERSONS, "leader": _PERSONS, "official": _PERSONS, "cadre": _PERSONS, "doctor": _PERSONS,
    "nurse": _PERSONS, "volunteer": _PERSONS, "employee": _PERSONS, "expert": _PERSONS, "patient": _PERSONS,
    "student": _PERSONS, "teacher": _PERSONS, "farmer": _PERSONS, "personnel": _PERSONS, "death": "人",
    "died": "人", "kilometre": "公里|千米|km", "kilometer": "公里|千米|km", "km": "公里|千米|km", "metre": "米",
    "meter": "米", "minute": "分钟", "hour": "小时", "day": "天|日", "week": "周", "month": "个月|月",
    "time": "次|倍", "yuan": "元", "enterprise": "家|个|户", "company": "家|个|户", "firm": "家|个|户",
    "business": "家|个|户", "hospital": "家|所|个", "clinic": "家|所|个", "school": "所|个", "bed": "张|床",
    "ambulance": "辆|台", "vehicle": "辆|台", "car": "辆|台", "bus": "辆|台", "team": "支|个", "project": "个|项|件", "item": "个|项|件|条", "measure": "项|条|个|件",
    "household": "户|家", "family": "户|家", "mu": "亩", "ton": "吨", "tonne": "吨", "case": "例|起",
    "accident": "起", "room": "间|个", "ward": "间|个", "laboratory": "个|家|间|所", "lab": "个|家|间|所",
    "sample": "份|管", "test": "份|管|人次", "station": "个|座|处", "centre": "个|家|座|所", "center": "个|家|座|所",
    "academician": _PERSONS, "representative": _PERSONS, "deputy": _PERSONS, "specialist": _PERSONS,
    "officer": _PERSONS, "policeman": _PERSONS, "firefighter": _PERSONS, "inspector": _PERSONS, "child": _PERSONS,
    "children": _PERSONS, "villager": _PERSONS, "poor": _PERSONS, "camera": "台|个|部|路", "point": "个|处",
    "post": "个|处", "site": "个|处", "village": "个", "community": "个", "county": "个", "district": "个",
    "city": "个|座", "country": "个", "meeting": "次|场", "session": "次|场|届", "line": "条", "route": "条",
    "road": "条|公里", "expressway": "条|公里", "highway": "条|公里", "bridge": "座", "park": "个|座|家",
    "institution": "家|个|所", "organisation": "家|个", "organization": "家|个", "agency": "家|个",
    "facility": "个|处|座", "building": "栋|座|个", "house": "套|栋|户", "flat": "套", "apartment": "套",
    "task": "项|个|条", "policy": "项|条", "document": "份|个|件", "event": "次|场|起", "inspection": "次|轮",
    "visit": "次", "shipment": "次|批|列", "train": "列|趟", "ship": "艘", "vessel": "艘", "plane": "架",
    "flight": "班|架次", "tree": "棵|株", "unit": "个|家", "group": "个|支|批", "batch": "批",
}
# Measure words of things (not people, money, time or length); a count asked in one
# of them is also answered by the all-purpose 个 and vice versa.
_THING_WORDS = frozenset("个 家 项 所 座 处 支 条 间 张 台 辆 批 类 件 栋 套 户 床 批 场 場 期 届".split())
_EN_PLURALS = frozenset("people children staff personnel police".split())
# Words that end the noun phrase after "how many" (the verb or a preposition).
_EN_PHRASE_END = frozenset(
    "did does do are were is was will would can could should has have had in of for at on by to from with "
    "that which be been".split())
_DATE = re.compile(
    r"(?:19|20)\d{2}|\d{1,2}月|[今明去前后]年|年[底内初末中]|月[底初]|[一二三四五六七八九十]+月|[〇零一二三四五六七八九]{4}年|"
    r"上半年|下半年|季度|\d{1,2}日|一年内|[一二三四五六七八九十两\d]+年(?:内|时间|后|以内)"
)
_MONEY = re.compile(_NUM + r"\s*(?:多|余)?\s*(?:万|亿|千)?元")
_PERCENT = re.compile(r"\d+(?:\.\d+)?\s*%|百分之|[一二三四五六七八九]成|" + _NUM + r"\s*倍|\d+(?:\.\d+)?个百分点")
_DURATION = re.compile(_NUM + r"\s*(?:多|余)?\s*(?:" + "|".join(_TIME_UNITS) + ")")
_OFFICE = re.compile(
    r"书记|主任|局长|市长|州长|省长|部长|县长|区长|组长|厅长|处长|院长|主席|总师|专家|主持人|负责人|同志|"
    r"秘书长|委员(?!会)|领导(?!小组|班子)|干部|网格员|代表(?!大会|团)|队长|社长|副"
)
_PLACE = re.compile(
    r"[\u4e00-\u9fff]{1,6}(?:省|市|州|县|区|镇|乡|村|街道|社区|医院|中心|服务区|会场|地点|大厅|发布厅|机场|港|站|园|基地|口岸)"
)
# A share (占多少, what percentage) is a percentage or a fraction, not a multiple (三倍).
_SHARE_Q = re.compile(r"占比|占多少|占了多少|比例|比重|百分之几|百分比|\b(?:share|proportion|percentage|percent)\b")
_SHARE = re.compile(r"\d+(?:\.\d+)?\s*%|百分之|[一二三四五六七八九十]成|\d+成|分之[一二三四五六七八九十\d]|\d+(?:\.\d+)?个百分点")
# Distances and radii: 多远, "how far", "what radius" — a length, or the travel time
# these documents measure a radius in (15分钟生活圈).
_DISTANCE = re.compile(_NUM + r"\s*(?:多|余)?\s*(?:公里|千米|km|米|分钟|小时)")
_QUESTION_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_LIST = re.compile(r"、|一是|[一二三四五六七八九十]个[“\"]|[:：].+[,，;；].+")
# "哪六个地方", "哪两个中心", "which three clusters": a question that asks for a given
# number of things asks for a list of that many (see list_size, lacks_asked_list).
_NUMBERED_LIST_Q = re.compile(
    r"哪(?:[两二三四五六七八九十]|\d+)(?:个|项|类|家|所|座|条|大|种|件|位|字)|"
    r"\b(?:which|what) (?:two|three|four|five|six|seven|eight|nine|ten)\b")
_SIZE_WORDS = {w: i + 2 for i, w in enumerate("two three four five six seven eight nine ten".split())}
_NAME = re.compile(r"[“\"「《][^”\"」》]{2,}[”\"」》]")
# The Chinese words of a "when" question (the asked-kind table below and event_absent).
_ZH_WHEN = r"哪一年|哪年|哪一天|哪天|什么时候|什么时间|何时|几月|几号|哪个月"

# Question patterns, most specific first: "how many minutes" is a duration, "how
# much money" is money before it is a count.
# "Which official said…", "which Yichang leader…": the person asked for is named by a
# noun after which/what rather than by "who" (issue 13: "who said" questions read as no kind).
_EN_PERSON_Q = r"\b(?:which|what)\s+(?:[\w-]+\s+){0,2}?(?:official|officials|leader|person|spokesman|spokesperson|speaker|reporter|journalist|correspondent)\b"
# "What office / body / campaign / slogan / programme…": the answer is a named thing (a
# body such as 物业纠纷矛盾调处室, a quoted programme or slogan), not a figure or a person.
# The nouns are the head nouns of such questions in the tuning sets' English questions.
_EN_BODY_Q = (r"\b(?:which|what)\s+(?:[\w-]+\s+){0,3}?(?:office|body|bodies|campaign|slogan|motto|programme|program|"
              r"institute|institution|agency|organi[sz]ation|scheme|initiative|brand|platform|mechanism|centre|center|"
              r"committee|team)\b")
_Q = [
    ("rate", re.compile(r"\bper (?:hour|day|week|month|year)\b|\b(?:an?|each|every) (?:hour|day)\b|\bhourly\b|"
                        r"每(?:小时|天|日|周|月|年)")),
    ("when", re.compile(
        _ZH_WHEN + r"|几点|\b(?:which|what) (?:year|date|month|day)\b|"
        r"\bwhat time of (?:the )?day\b|"
        r"\bwhen (?:did|does|do|will|was|were|is|are|has|have|had|can|could|should|would|must|might)\b|"
        r"\bwhen\s*\?|\b(?:by|since|until|till) when\b|\bhow soon\b")),
    ("money", re.compile(
        r"多少钱|多少资金|多少经费|多少投资|投资多少|投入多少|花了多少|花费多少|多少(?:万|亿)?元|几(?:万|亿)元|"
        r"(?:投资|资金|经费|预算|生产总值|GDP|gdp|收入|工资|薪酬|报酬|薪资|薪金|年薪|费用|成本|造价|价格|单价|均价|"
        r"租金|利润|税收|产值|营收|营业额|贷款|拨款|补贴|奖励)(?:额|总额|规模)?"
        r"(?:是|为|达|达到|有|共)?多少|"
        r"\bhow much (?:money|funding|investment|did\b.*\b(?:cost|spend|invest|request|allocate|pay|fund)|"
        r"will\b.*\b(?:cost|invest|spend|pay|fund))|"
        r"\b(?:cost|price|budget|yuan)\b|\bhow much\b.*\b(?:earns?|take home|took home|makes?|made)\b|"
        r"\b(?:what|how much) (?:is|was|are|were) (?:the )?(?:[\w-]+ ){0,3}(?:investment|funding|spending|expenditure)\b|"
        r"\b(?:what|how much) (?:is|was|are|were)\s+(?:the |an? )?(?:average |annual |monthly |yearly |per-capita )*"
        r"(?:pay|salary|income|wages?|earnings)\b")),
    ("rank", re.compile(r"第几|排第|排名|名列|\bwhat rank\b|\branks?\b|\branking\b|\bwhich place\b")),
    ("percent", re.compile(
        r"百分之几|比例|占比|比重|比率|覆盖率|收缴率|增长率|百分比|增长了多少|提高了多少|提高到多少|占多少|"
        r"\b(?:what|which) (?:share|percentage|proportion|rate|ratio)\b|\bwhat share\b|\bto what share\b|"
        r"\bhow much (?:higher|more|did\b.*\bgrow\b|did\b.*\brise\b)|\bpercent|\b(?:\w+[- ])?rate\b")),
    ("duration", re.compile(
        r"多久|多长时间|多少(?:分钟|小时|天|年时间)|几(?:分钟|小时|天)|几年时间|多快|"
        r"\bhow long\b|\bhow quickly\b|\bhow fast\b|\bhow many (?:minutes|hours|days|weeks|months|years)\b|"
        r"\bwithin how\b|\bwhat travel time\b")),
    ("distance", re.compile(r"多远|\bhow far\b|\bradius\b|\bdistance\b|\bwhat range\b")),
    # "How large" asks an area only of a place ("how large is the park"); "how large is the
    # bond quota" asks an amount, which the count pattern below takes.
    ("size", re.compile(r"多大|面积|多少平方米|\bwhat (?:area|size)\b|\bhow (?:big|large)\b(?=(?:\s+[\w'-]+){0,4}?\s+"
                        r"(?:area|site|park|zone|campus|land|space|base|farm|district|square)\b)")),
    ("count", re.compile(r"(?<!哪)(?:多少|几)(?!年份)|\bhow many\b|\bhow much\b|\bwhat number\b|\bnumber of\b|"
                         r"\bhow (?:big|large)\b")),
    ("who", re.compile(r"是谁|谁|哪位|什么人|\bwho\b|\bwhom\b|\bwhose\b|" + _EN_PERSON_Q)),
    ("where", re.compile(r"哪里|(?<![存现所实])在哪(?![种些类项])|什么地方|哪个地方|哪个会场|什么地点|哪个地点|\bwhere\b|\bwhich (?:venue|place|city|county|town)\b|\bat which\b")),
    # "What does he call…", 被概括成什么, 怎么表述: the answer is the documents' own phrase,
    # usually a quoted one (“施工队”, “加法”).
    ("name", re.compile(r"叫什么|什么名称|什么称号|什么荣誉|什么表彰|哪个称号|概括(?:成|为)(?:什么|哪)|怎么表述|如何表述|"
                        r"怎么概括|称(?:为|作)什么|叫作什么|比作什么|比喻(?:成|为)什么|"
                        r"\bcalled\b|\bnamed?\b|\bnickname\b|\btitle\b|\bhonou?r\b|\baward\b|"
                        r"\bwhat (?:does|do|did) (?:[\w'-]+ ){1,6}?call\b|\b(?:what|which) (?:term|phrase|label|image|metaphor)\b|"
                        + _EN_BODY_Q)),
    ("list", re.compile(r"哪些|哪几|分别是|\bwhich\b.*\b(?:are|were)\b|\bwhat are\b|\bwhat were\b|\blist\b|"
                        r"\bwhich (?:[a-z-]+ ){0,2}?[a-z-]+[^s\W]s\b(?!')|" + _NUMBERED_LIST_Q.pattern)),
]
# A figure of these kinds stated in the question itself (see asked_kind).
_STATED = {"percent": re.compile(r"\d+(?:\.\d+)?\s*%|百分之[一二三四五六七八九十]"),
           "money": re.compile(r"\d+(?:\.\d+)?\s*(?:多|余)?\s*(?:万|亿|千)?元")}
# Units the question names after 多少/几 ("多少间" needs 间 in the answer).
_ASKS_UNIT = re.compile(r"(?<!哪)(?:多少|几)(" + "|".join(u for u in UNITS if u not in ("省", "市", "县")) + ")")
_RATE_UNIT = {"hour": ("小时", "时"), "day": ("日", "天"), "week": ("周",), "month": ("月",), "year": ("年",)}
# English "who/whom/whose" after another question word is a relative pronoun ("What is the
# programme whose uses…", "How many people who…"): the question asks what that word asks.
_EN_WH = re.compile(r"\b(who|whom|whose|what|which|how|when|where|why)\b")
# The granularity a "when" question asks: "which year" is not answered by "17日", nor
# "on what date" by "2021年" alone. Stored as the AskedKind unit of a "when" question.
_WHEN_UNIT = (
    ("时", re.compile(r"几点|什么时刻|\bwhat time of (?:the )?day\b|\bwhat hour\b")),
    ("年", re.compile(r"哪一年|哪年|\b(?:which|what) year\b")),
    ("日", re.compile(r"哪一天|哪天|几号|几月几日|\b(?:which|what) (?:date|day)\b")),
    ("月", re.compile(r"几月|哪个月|\b(?:which|what) month\b")),
)
_WHEN_HOLDS = {
    "时": re.compile(r"\d{1,2}\s*[:：]\s*\d{2}|\d{1,2}\s*(?:时|点)(?!代)|[上下]午|[一二三四五六七八九十]{1,3}(?:时|点)"),
    "年": re.compile(r"(?:19|20)\d{2}|[今明去前后]年|[〇零一二三四五六七八九]{4}年|(?<![\d.])\d{2}年(?!代)"),
    "日": re.compile(r"\d{1,2}\s*[日号]|[一二三四五六七八九十]{1,3}[日号]"),
    "月": re.compile(r"\d{1,2}\s*月|[一二三四五六七八九十]{1,2}月|月[底初中]|年[底初中]"),
}
# "局长是谁", "市委书记叫什么名字": an office the question names, right before the question
# word, asks for the person holding it, so the evidence must name a person next to that
# office (another office, or the office alone, is a near miss).
_OFFICE_ASKED = re.compile(r"(书记|主任|局长|市长|州长|省长|部长|县长|区长|组长|厅长|处长|院长|主席|秘书长|队长|社长)"
                           r"(?:是谁|叫什么名字|叫什么|的名字是什么|的姓名)")
# A question about the reporter of an interview, and a newspaper byline's reporter name
# ("咸宁日报全媒体记者 陈新 通讯员 黎记明"): the name follows 记者 after a space.
_REPORTER_Q = re.compile(r"记者|\breporter|\bjournalist")
_BYLINE = re.compile(r"记者[\s\u00a0\u3000]+([\u4e00-\u9fff]{2,3})(?![\u4e00-\u9fff])")
# How many characters may stand between the office asked about and a person's name:
# "邵元林 市委组织部副部长" puts seven between the name and 部长; a name in another
# sentence is further off.
_NAME_REACH = 8
# A question about how much something changed ("顺畅了多少", "提高了多少") is answered by a
# percentage as well as by a count.
_CHANGE_Q = re.compile(r"(?:了|得)多少(?!" + "|".join(u for u in UNITS if u not in ("万", "亿")) + r")")
# A comparison ("compared with the traditional approach", "比…低多少", "相比") is answered by
# a ratio or a percentage as well as by an amount.
_COMPARE_Q = re.compile(r"\bcompared (?:with|to)\b|\brelative to\b|\bthan\b|相比|相较|比.{1,12}(?:高|低|多|少|增|降)")
# "How long is/are <a road, a waterway>" asks a length as well as a time.
_LENGTH_Q = re.compile(r"\bhow long (?:is|are|was|were|will)\b(?!.*\b(?:take|last|wait|need)\b)|多长(?!时间)")


@dataclass(frozen=True)
class AskedKind:
    """What a question wants: ``kind`` (see the module table; ``""`` when no
    particular kind), a unit it names (``"间"`` for 多少间), and a rate it names
    (``"小时"`` for "per hour")."""

    kind: str
    unit: str = ""
    rate: tuple[str, ...] = ()

    @property
    def strict(self) -> bool:
        """Whether an answer must hold this kind (a list or name is a softer cue)."""
        return self.kind in ("when", "money", "percent", "duration", "distance", "size", "count", "who", "where",
                             "rank")


def asked_kind(question: str) -> AskedKind:
    """The kind of fact ``question`` asks for.

    >>> asked_kind("宜昌城区负压病房至少要有几间?")
    AskedKind(kind='count', unit='间|个', rate=())
    >>> asked_kind("How many samples can the labs test per hour?")
    AskedKind(kind='count', unit='份|管', rate=('小时', '时'))
    >>> asked_kind("When will the centre be finished?").kind, asked_kind("武汉说的三个城市是什么?").kind
    ('when', '')
    """
    q = _QUOTED.sub(" ", fold(question))
    rate: tuple[str, ...] = ()
    kind = ""
    for name, pattern in _Q:
        m = pattern.search(q)
        if not m:
            continue
        if name == "rate":
            word = m.group(0)
            for en, zh in _RATE_UNIT.items():
                if en in word or any(z in word for z in zh):
                    rate = zh
            continue
        if name in _STATED and _STATED[name].search(q):
            # The question states the figure itself ("哪些单位的比例已提升至30%?"):
            # it asks about something else.
            continue
        if name == "who" and not re.search(r"是谁|谁|哪位|什么人|" + _EN_PERSON_Q, q):
            first = _EN_WH.search(q)
            if first and first.group(1) not in ("who", "whom", "whose") and not re.search(
                    r"\b(?:by|to|from|with|for|of) whom\b", q):
                continue
        kind = name
        break
    if kind == "name" and _OFFICE_ASKED.search(q):
        kind = "who"
    unit = ""
    if kind == "when":
        unit = next((u for u, pattern in _WHEN_UNIT if pattern.search(q)), "")
    if kind in ("count", "duration", "size"):
        m = _ASKS_UNIT.search(q)
        if m:
            unit = unit_family(m.group(1))
        elif re.search(r"\bhow many people\b.*\bdied\b|\bdeaths\b", q):
            unit = "人"
        else:
            unit = _en_unit(q)
    elif kind == "percent" and _SHARE_Q.search(q):
        unit = "%"
    elif kind == "list":
        size = list_size(q)
        unit = str(size) if size else ""
    return AskedKind(kind, unit, rate)


def list_size(question: str) -> int:
    """How many things a numbered list question asks for (0: no number).

    >>> list_size("宜昌的网格化工作体系包括哪四个环节?"), list_size("Which three clusters?"), list_size("哪些?")
    (4, 3, 0)
    """
    m = _NUMBERED_LIST_Q.search(fold(question))
    if not m:
        return 0
    word = m.group(0)
    digits = re.search(r"\d+", word)
    if digits:
        return int(digits.group(0))
    for en, n in _SIZE_WORDS.items():
        if word.endswith(" " + en):
            return n
    zh = word[1]
    return 2 if zh == "两" else "一二三四五六七八九十".index(zh) + 1


def enumerated_items(text: str) -> int:
    """The most items any one enumeration in ``text`` lists: joined by 、 (and a last 和/及),
    or quoted one after another.

    >>> enumerated_items("推动光电子、数字产业、量子技术、超级计算等高端产业"), enumerated_items("构建“3小时圈”“2小时圈”")
    (4, 2)
    >>> enumerated_items("建设体育中心和文化中心"), enumerated_items("加大建设")
    (2, 0)
    """
    best = 0
    for clause in re.split(r"[,，;；。:：!！?？]", fold(text)):
        if "、" in clause:
            best = max(best, clause.count("、") + 1 + bool(re.search(r"、[^、]*[和及与]", clause)))
        quotes = re.findall(r"[“\"][^”\"]+[”\"](?=\s*[“\"])", clause)
        if quotes:
            best = max(best, len(quotes) + 1)
        if best < 2 and re.search(r"\S[和及与]\S", clause):
            best = 2
    return best


def unit_family(unit: str) -> str:
    """The measure words that answer a count asked in ``unit``, as a regex alternation.

    A thing counted in its own measure word is often counted with 个 instead
    (多少家医院 → "建成医院12个"), and 多少个 is answered by any measure word of
    things; a count of people takes 人, 名 or 位.

    >>> unit_family("家"), unit_family("名"), unit_family("公里")
    ('家|个', '人|名|位', '公里')
    >>> "辆" in unit_family("个").split("|")
    True
    """
    if unit == "个":
        return "|".join(sorted(_THING_WORDS, key=lambda w: (w != "个", w)))
    if unit in _THING_WORDS:
        return f"{unit}|个"
    if unit in ("人", "名", "位"):
        return _PERSONS
    return unit


def _en_unit(question: str) -> str:
    """The measure words of the thing an English "how many …" question counts ("" if
    none): the head noun, i.e. the first plural of the noun phrase after "how many",
    which ends at a verb (did, are, scored…) or a preposition.

    >>> _en_unit("how many high-tech enterprises did the prefecture have?")
    '家|个|户'
    >>> _en_unit("how many beds does the campus keep?"), _en_unit("how many were built?")
    ('张|床', '')
    >>> _en_unit("how many community party secretaries in ezhou?"), _en_unit("how many scored below 50 points?")
    ('', '')
    >>> _en_unit("how many of the 240 members of the teams are nurses?")
    '人|名|位'
    """
    # "how many of the 240 members are nurses": the counted thing follows "of the N"
    m = re.search(r"\bhow many of (?:the|its|their) (?:\d[\d,.]*\s+)?(.*)", question) or re.search(
        r"\bhow many\s+(.*)", question)
    if not m:
        return ""
    phrase: list[str] = []
    for word in re.findall(r"[a-z]+(?:-[a-z]+)*", m.group(1))[:6]:
        if word in _EN_PHRASE_END or (word.endswith("ed") and len(word) > 4 and "-" not in word):
            break
        phrase.append(word)
    # The head is the first plural: "grid workers", "academicians lead", not the
    # modifier in "community party secretaries".
    head = next((w for w in phrase if w in _EN_PLURALS or (w.endswith("s") and not w.endswith("ss"))), "")
    for form in (head, head[:-1], head[:-2], head[:-3] + "y"):
        if head and form in _EN_UNIT and (form == head or head.endswith("s")):
            return _EN_UNIT[form]
    return ""


def holds_kind(asked: AskedKind, text: str, question: str = "") -> bool:
    """Whether ``text`` holds the kind of fact ``asked`` wants (True when no kind).

    A placeholder such as "x人" in a redacted report is not a number. For a person,
    place or name, one that ``question`` itself names does not count: "where is the
    centre?" is not answered by the sentence that names the centre.

    >>> holds_kind(AskedKind("count", "人"), "死亡x人"), holds_kind(AskedKind("count", "人"), "死亡16人")
    (False, True)
    >>> holds_kind(AskedKind("when"), "着力建设花湖机场"), holds_kind(AskedKind("when"), "到2022年建成")
    (False, True)
    >>> holds_kind(AskedKind("count", rate=("小时", "时")), "日单管检测能力达2万份")
    False
    >>> holds_kind(AskedKind("when"), "2021年建设疾控中心", "Which month in 2021 did it open?")
    False
    """
    t = fold(text)
    if asked.rate and not any(r in t for r in asked.rate):
        return False
    kind = asked.kind
    if kind in ("when", "money", "percent", "duration", "distance", "size", "count"):
        t = without_question_numbers(t, fold(question))
    q = fold(question)
    if kind == "when":
        return bool(_DATE.search(t)) and (asked.unit not in _WHEN_HOLDS or bool(_WHEN_HOLDS[asked.unit].search(t)))
    if kind == "money":
        return bool(_MONEY.search(t)) or bool(_COMPARE_Q.search(q) and _PERCENT.search(t))
    if kind == "percent":
        return bool((_SHARE if asked.unit == "%" else _PERCENT).search(t))
    if kind == "distance":
        return bool(_DISTANCE.search(t))
    if kind == "duration":
        if _LENGTH_Q.search(q) and not asked.unit and _DISTANCE.search(t):
            return True
        return bool(_DURATION.search(t)) and (not asked.unit or _has_count_of(t, asked.unit))
    if kind == "size":
        return bool(re.search(_NUM + r"\s*(?:多|余)?\s*(?:平方米|平方公里|亩|公顷|米)", t))
    if kind == "count":
        if asked.unit:
            return _has_count_of(t, asked.unit)
        return bool(_COUNT.search(t)) or bool(_CHANGE_Q.search(q) and _PERCENT.search(t))
    if kind == "rank":
        return bool(_RANK.search(t))
    if kind in ("where", "name") and q:
        t = _without_question_words(t, q)
    if kind == "who":
        if _REPORTER_Q.search(q):
            # "哪位记者", "which reporter interviewed…": a byline's name (记者 陈新), not an office
            return any(name not in q for name in _BYLINE.findall(t))
        asked_office = _OFFICE_ASKED.search(q)
        if asked_office:
            return _person_near(t, asked_office.group(1), q, principal=True)
        # An office the question does not name, or a name right after one it does
        # (主任李华平 for "who is the director?").
        return any(m.group(0) not in q or _name_after(t, m.end(), q) for m in _OFFICE.finditer(t))
    if kind == "where":
        return any(m.group(0) not in q for m in _PLACE.finditer(t))
    if kind == "list":
        if asked.unit.isdigit():  # a numbered list: an enumeration of at least that many
            return enumerated_items(t) >= int(asked.unit)
        return bool(_LIST.search(t))
    if kind == "name":
        return any(m.group(0)[1:-1] not in q for m in _NAME.finditer(t))
    return True


# A question about the present ("have today", 现有) and a figure that is only a target
# (不少于, 力争, 到2025年): the documents say what is planned, not what there is.
_NOW_Q = re.compile(r"\b(?:today|now|currently|at present|so far)\b|现在|目前|现有|如今|已有")
_TARGET = re.compile(r"不少于|不低于|至少|力争|争取|目标|计划|到\s*(?:19|20)\d{2}\s*年")


def asks_present_of_target(question: str, fact_texts: list[str]) -> bool:
    """Whether ``question`` asks what there is now while every text holding the asked
    fact (``fact_texts``: the asked figure's clause with its neighbours) states a target.

    >>> asks_present_of_target("How many rooms does the city have today?", ["城区负压病房总数不少于15间"])
    True
    >>> asks_present_of_target("How many rooms does the city have today?", ["城区已建成负压病房15间"])
    False
    >>> asks_present_of_target("城区负压病房不少于几间?", ["城区负压病房总数不少于15间"])
    False
    """
    q = fold(question)
    return bool(fact_texts) and bool(_NOW_Q.search(q)) and all(_TARGET.search(fold(t)) for t in fact_texts)


# The direction of a change the question asks about, and the evidence's words for it.
_UP = re.compile(r"提高|提升|增长|增加|上升|上涨|增幅|\b(?:rise|rose|risen|increased?|grow|grew|grown|growth|higher)\b")
_DOWN = re.compile(r"下降|减少|降低|下滑|回落|降幅|\b(?:fall|fell|fallen|decreased?|declined?|drop|dropped|lower|fewer)\b")
# The end of a ranking the question asks about: the bottom is not answered by the top
# (第一方阵, 全省第一), nor the reverse.
_TOP = re.compile(r"第一|首位|前列|前三|前十|领先|\b(?:top|first|best|leading)\b")
_BOTTOM = re.compile(r"末位|倒数|垫底|靠后|落后|\b(?:bottom|lowest|worst)\b")


def asks_opposite_change(question: str, fact_texts: list[str]) -> bool:
    """Whether ``question`` asks how much something rose (or fell), or what came bottom
    (or top), while every text holding the asked figure says the other: "提高了百分之几?"
    is not answered by "已下降了52.59%", nor "ranked at the bottom" by 第一方阵.

    >>> asks_opposite_change("均价比上一年提高了百分之几?", ["距离高峰期已下降了52.59%"])
    True
    >>> asks_opposite_change("均价比上一年提高了百分之几?", ["均价提高了5%,产量下降"]), asks_opposite_change("均价是多少?", ["下降5%"])
    (False, False)
    >>> asks_opposite_change("How many indicators ranked at the bottom of the province?", ["11项进入全省第一方阵,"])
    True
    """
    q = fold(question)
    for one, two in ((_UP, _DOWN), (_BOTTOM, _TOP)):
        up, down = bool(one.search(q)), bool(two.search(q))
        if up == down or not fact_texts:
            continue
        same, other = (one, two) if up else (two, one)
        if all(other.search(fold(t)) and not same.search(fold(t)) for t in fact_texts):
            return True
    return False


# An extreme (the top grade's pay, the highest share) is not an average (人均, 平均).
_EXTREME_Q = re.compile(r"最高|最低|最多|最少|最大|最小|\b(?:highest|lowest|maximum|minimum|most|least|top)\b")
_AVERAGE = re.compile(r"人均|平均|均值|\baverage\b|\bper capita\b")


def asks_extreme_of_average(question: str, fact_texts: list[str]) -> bool:
    """Whether ``question`` asks for an extreme while every text holding the asked figure
    gives an average: "最高一级的年报酬" is not answered by "人均年报酬5.7万元".

    >>> asks_extreme_of_average("最高一级的社区工作者年报酬是多少?", ["人均年报酬5.7万元,比之前翻了近一番。"])
    True
    >>> asks_extreme_of_average("人均年报酬是多少?", ["人均年报酬5.7万元"]), asks_extreme_of_average("最高报酬?", ["最高6万元,人均5.7万元"])
    (False, False)
    """
    q = fold(question)
    if not fact_texts or not _EXTREME_Q.search(q) or _AVERAGE.search(q):
        return False
    return all(_AVERAGE.search(fold(t)) and not _EXTREME_Q.search(fold(t)) for t in fact_texts)


# "哪一年接受验收", "是哪一天正式印发的": the event a "when" question dates, read from the words
# after the question word; the date must be in a clause about that event, not another one
# (the 2019 designation does not date the acceptance, the press conference not the issuing).
_WHEN_WORD = re.compile(_ZH_WHEN)
_EVENT_FILLER = frozenset("之前 之后 以前 以后 正式 全部 全面 能够 可以 要求 计划 预计 将要 开始 完成 实现 达到 进行".split())


def event_absent(question: str, fact_texts: list[str]) -> bool:
    """Whether a Chinese "when" question names an event (two-character words after the
    question word) that no text holding the asked date names.

    >>> event_absent("咸宁的实验区计划在哪一年接受验收?", ["2019年,我市被确认为全国社区治理和服务创新实验区。"])
    True
    >>> event_absent("《实施意见》是哪一天正式印发的?", ["7月29日,中共鄂州市委召开新闻发布会"])
    True
    >>> event_absent("发热门诊在什么时候之前达到规范标准?", ["到今年底,二级以上医院发热门诊均达到规范标准"])
    False
    >>> event_absent("哪一年?", ["2019年"]), event_absent("When was it accepted?", ["2019年"])
    (False, False)
    """
    import jieba

    m = _WHEN_WORD.search(fold(question))
    if not m or not fact_texts:
        return False
    after = re.sub(r"[^\u4e00-\u9fff]", " ", fold(question)[m.end():])
    events = [w for w in jieba.lcut(after) if len(w) >= 2 and w not in _EVENT_FILLER]
    if not events:
        return False
    texts = [fold(t) for t in fact_texts]
    return not any(e in t for e in events for t in texts)


# A question about what was *added* (新增, 新开工, "new", "add") and evidence that only
# states a stock: "新增多少家市场主体?" is not answered by "市场主体总数达16万家".
_NEW_Q = re.compile(r"新增|新开工|新建|新开|\bnew(?:ly)?\b|\badd(?:ed|s|ing)?\b")
_NEW_T = re.compile(r"新|增|扩|开工|开通|建成|\+")


def asks_new_of_total(question: str, fact_texts: list[str]) -> bool:
    """Whether ``question`` asks how much was added while no text holding the asked
    figure (``fact_texts``) speaks of anything new, added or built.

    >>> asks_new_of_total("本州今年计划新增多少家市场主体?", ["截至去年底,我州市场主体总数达16万家,"])
    True
    >>> asks_new_of_total("本州今年计划新增多少家市场主体?", ["力争新增市场主体2万家"])
    False
    >>> asks_new_of_total("市场主体总数达到多少家?", ["市场主体总数达16万家"]), asks_new_of_total("new?", [])
    (False, False)
    >>> asks_new_of_total("2022年计划新开工建设多少公里高速公路?", ["建成首条高速,高速公路通车总里程达8608公里,"])
    True
    """
    q = fold(question)
    # "新开工" asks what construction starts, which "建成" (completed) does not say.
    said = re.compile("开工") if "新开工" in q else _NEW_T
    return bool(fact_texts) and bool(_NEW_Q.search(q)) and not any(said.search(fold(t)) for t in fact_texts)


# An English "who is the <office>" question and the Chinese offices that answer it: the
# evidence must name that office (a deputy leader is not the leader, a director is not
# a committee). Checked in order: the first pattern that matches decides.
_EN_OFFICES = (
    (re.compile(r"\bdeputy (?:leader|head|chief)\b"), ("副组长", "副部长", "副主任", "副局长", "副书记")),
    (re.compile(r"\bdeputy director\b"), ("副局长", "副主任", "副处长", "副院长")),
    (re.compile(r"\bdeputy (?:party )?secretary\b"), ("副书记",)),
    (re.compile(r"\b(?:party )?secretary\b"), ("书记",)),
    (re.compile(r"\bdirector\b"), ("局长", "主任", "处长", "所长", "院长")),
    (re.compile(r"\bchair(?:s|man|woman|ed|person)?\b"), ("主任", "主席", "组长")),
    # "who heads the leading group": the group's head is its 组长
    (re.compile(r"\bheads?\b[^?]*\bgroup\b|\bgroup(?:'s)? (?:leader|head)\b"), ("组长",)),
)


def office_absent(question: str, quoted: str) -> bool:
    """Whether an English question asks who holds an office the quotes never name.

    >>> office_absent("Who is the deputy leader of the group?", "成立了以市委书记为组长的领导小组")
    True
    >>> office_absent("Who is the director of the bureau?", "专访市经信局局长郭冰生"), office_absent("谁?", "")
    (False, False)
    """
    q = fold(question)
    if not re.search(r"\bwho\b", q):
        return False
    t = fold(quoted)
    for pattern, offices in _EN_OFFICES:
        if pattern.search(q):
            return not any(o in t for o in offices)
    return False


def without_question_numbers(text: str, question: str) -> str:
    """``text`` with every number the question itself states replaced by ``x``: "how many
    ambulances did it have before adding 35?" is not answered by "增加配备35辆救护车".

    >>> without_question_numbers("共设立13个急救站,增加配备35辆救护车", "before it added 35 more")
    '共设立13个急救站,增加配备x辆救护车'
    >>> without_question_numbers("投资135亿元", "投资多少?")
    '投资135亿元'
    """
    for number in sorted(set(_QUESTION_NUMBER.findall(question)), key=len, reverse=True):
        text = re.sub(r"(?<![\d.])" + re.escape(number) + r"(?![\d.]*\d)", "x", text)
    return text


# An enumeration: items joined by 、, 和/与/及, numbered (一是…), listed after a colon, or
# quoted one after another (“3小时交通圈”“2小时出行圈”).
_ENUMERATION = re.compile(r"、|[和与及]|一是|[:：].+[,，;；]|[”\"]\s*[“\"]")


def lacks_asked_list(question: str, text: str) -> bool:
    """Whether ``question`` asks for a given number of things and ``text`` (the quotes,
    without the phrases the question quotes itself) holds no enumeration.

    >>> lacks_asked_list("武汉“四馆三场两中心”里的“两中心”具体指哪两个中心?", "加大“四馆三场两中心”建设,打造“12分钟文体圈”。")
    True
    >>> lacks_asked_list("武汉要构建哪三个交通出行圈?", "构建“3小时交通圈”“2小时出行圈”“1小时通勤圈”。")
    False
    >>> lacks_asked_list("哪些?", "加大建设")
    False
    """
    q = fold(question)
    if not _NUMBERED_LIST_Q.search(q):
        return False
    t = fold(text)
    for quoted in _QUOTED.findall(q):
        if len(quoted) > 3:
            t = t.replace(quoted, " ")
    return not _ENUMERATION.search(t)


def _without_question_words(text: str, question: str) -> str:
    """``text`` with every stretch of 3+ characters that the question also holds blanked
    out, so that a venue, office or name the question itself names is not an answer.

    >>> _without_question_words("成立物业管理服务中心", "物业管理服务中心设在哪里")
    '成立 '
    """
    for length in range(len(question), 2, -1):
        for i in range(len(question) - length + 1):
            piece = question[i : i + length]
            if piece.strip() and piece in text:
                text = text.replace(piece, " ")
    return text


def _name_after(text: str, end: int, question: str) -> bool:
    """Two Chinese characters right after an office word that the question does not hold.

    >>> _name_after("主任李华平表示", 2, "主任是谁"), _name_after("主任是谁", 2, "主任是谁")
    (True, False)
    """
    follow = text[end : end + 2]
    return len(follow) == 2 and all("\u4e00" <= ch <= "\u9fff" for ch in follow) and follow not in question


def names_person(text: str, question: str = "") -> bool:
    """Whether ``text`` names a person (jieba's ``nr``, not in ``question``) next to an
    office: for a "who" question, an office alone (社区党组织书记) only says what
    kind of person is meant, an office with a name says who.

    >>> names_person("市委组织部副部长董丹红这样介绍。"), names_person("实行社区党组织书记事业岗位管理试点")
    (True, False)
    """
    offices = {m.group(0) for m in _OFFICE.finditer(text)} - {"副"}  # 副 alone is a prefix, not an office
    return any(_person_near(text, office, question) for office in sorted(offices))


def _person_near(text: str, office: str, question: str, principal: bool = False) -> bool:
    """A person's name (jieba tags it ``nr``) that the question does not hold, at most
    :data:`_NAME_REACH` characters before or after ``office`` in ``text``. With
    ``principal`` (the office is the one a question asks about), a deputy (副书记,
    常务副书记) does not hold it unless the question asks for the deputy.

    >>> _person_near("市委书记孟祥伟指出", "书记", "市委书记是谁"), _person_near("由市委书记领衔的领导小组", "书记", "市委书记是谁")
    (True, False)
    >>> _person_near("市委政法委常务副书记向丽答记者问", "书记", "市委政法委书记是谁", principal=True)
    False
    """
    import jieba.posseg

    deputy = not principal or "副" + office in question
    spots = [m.span() for m in re.finditer(re.escape(office), text)
             if deputy or text[max(0, m.start() - 1) : m.start()] != "副"]
    if not spots:
        return False
    pos = 0
    for word, flag in jieba.posseg.lcut(text):
        start, pos = pos, pos + len(word)
        if flag.startswith("nr") and len(word) >= 2 and word not in question and any(
                max(start - b, a - pos) <= _NAME_REACH for a, b in spots):
            return True
    return False


def _has_count_of(text: str, unit: str) -> bool:
    """A numeral followed (after an optional 多/余 and 万/亿/千) by ``unit``.

    A ratio ("1.2张/万人", beds per ten thousand people) is not a count. A count of
    things is also written "N大 + noun" (3大机制, 10大优势产业链: the documents' way of
    numbering a set of things), so a thing's measure words accept it; 一大 is not a
    count (一大批 is "a large batch").

    >>> _has_count_of("城区负压病房总数不少于15间", "间"), _has_count_of("建设可转换病房", "间")
    (True, False)
    >>> _has_count_of("床位数按不低于1.2张/万人标准配置", "张|个")
    False
    >>> _has_count_of("划定基本烟田34.79万亩", "亩"), _has_count_of("构建3大机制", "套|个"), _has_count_of("一大批项目", "个")
    (True, True, False)
    """
    if re.search(_NUM + r"\s*(?:多|余)?\s*(?:万|亿|千)?\s*(?:" + unit + r")(?!\s*[/每])", text):
        return True
    things = "个" in unit.split("|")
    return things and bool(re.search(r"(?:\d+|[二两三四五六七八九十]+)大(?=[\u4e00-\u9fff])", text))


def kind_position(asked: AskedKind, text: str) -> int | None:
    """Where in ``text`` the first fact of the asked kind starts (None: nowhere or no kind);
    used to keep that clause when a long sentence is trimmed.

    >>> kind_position(AskedKind("money"), "建设中心,计划投资20亿元")
    9
    """
    patterns = {
        "when": _DATE, "money": _MONEY, "percent": _PERCENT, "duration": _DURATION, "count": _COUNT,
        "distance": _DISTANCE,
        "who": _OFFICE, "where": _PLACE, "list": _LIST, "name": _NAME, "rank": _RANK,
    }
    pattern = patterns.get(asked.kind)
    if pattern is None:
        return None
    if asked.kind in ("count", "duration") and asked.unit:
        pattern = re.compile(_NUM + r"\s*(?:多|余)?\s*(?:" + asked.unit + ")")
    m = pattern.search(text)
    return m.start() if m else None
