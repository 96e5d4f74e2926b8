"""Everyday words → the official terms government reports use for the same thing.

A reader asks how much a community worker *earns* (报酬, 薪酬 in the report), how fast
an *ambulance* arrives (急救, 到达时间), how many *beds* (床位). The dictionary
(:mod:`qa.translate`) maps English words to their literal Chinese senses; this table
adds the register shift, in both languages, so that sentence choice and answerability
credit a sentence that says the same thing in official words, and (English) so that
BM25 finds it (:func:`qa.translate.translate_query`).

The table was first written from general knowledge of Chinese administrative
language and the tuning questions of the time (eval/gold.jsonl, eval/tune.jsonl),
with every entry a then held-out test question would have used removed. In a later
round eval/test.jsonl, test2 and test3 became tuning material, and the English table
grew from their misses (see the comment above ``EN``); only a set that no entry was
chosen on can say how well it generalises. Only terms the index actually uses are
kept at question time (see :func:`qa.answer.query_terms`).

>>> expand_zh("工资"), expand_en("clinics")
(('报酬', '薪酬', '待遇'), ('门诊',))
"""

from __future__ import annotations

# Chinese everyday word → official words (all simplified, folded form).
ZH: dict[str, tuple[str, ...]] = {
    "多久": ("时间",),
    "工资": ("报酬", "薪酬", "待遇"),
    "收入": ("报酬", "薪酬", "增收"),
    "挣": ("报酬", "薪酬"),
    "看病": ("就医", "诊疗", "医疗"),
    "干部": ("党员干部", "在职党员"),
    "人手": ("人员", "队伍"),
    "办事": ("审批", "政务"),
    "公司": ("企业", "市场主体"),
    "开店": ("市场主体", "企业开办"),
    "表彰": ("获评", "先进单位", "命名"),
    "荣誉": ("获评", "称号", "先进单位"),
    "奖": ("获评", "奖励"),
    "检测": ("检测能力", "核酸"),
    "化验": ("检测", "检验"),
    "发烧": ("发热",),
    "住房": ("住宅", "小区"),
    "物业费": ("物业费", "收缴率"),
    "路": ("公路", "路网"),
    "高速": ("高速公路",),
    "船": ("船舶", "水运", "航道"),
    "河运": ("水运", "航道"),
    "管理者": ("管理人员",),
    "平台": ("平台",),
    "疫情": ("新冠", "疫情"),
    "病人": ("患者",),
    "残疾人": ("残疾人", "残联", "残工委"),
}

# English everyday word → official Chinese terms the dictionary would not give.
# Keys are plain forms (singular, American spelling, plain verb): :func:`expand_en`
# reaches them through :func:`qa.translate.english_forms`, so "earns", "earned" and
# "earning" all find "earn". The first block was written with the gold and tune
# questions; the second in the round that turned test, test2 and test3 into tuning
# material: for each English answerable question of all tuning sets (gold, tune,
# test, test2, test3, dev) whose answer sentence lost to a neighbour or was not
# retrieved, the question word the report says in other words was looked up in the
# index (only jieba tokens the corpus holds count), and entered with its word family
# and the register's usual terms for the same idea (earn: 报酬, 薪酬, 收入, 待遇),
# never a phrase of one question. Single Chinese characters are left out: they match
# almost any sentence.
EN: dict[str, tuple[str, ...]] = {
    "clinics": ("门诊",),
    "clinic": ("门诊",),
    "fever": ("发热",),
    "cameras": ("视频", "监控"),
    "surveillance": ("视频", "监控", "监测"),
    "officials": ("干部", "党员干部"),
    "cadres": ("干部", "党员干部"),
    "heads": ("局长", "主任", "组长"),
    "honour": ("获评", "称号", "先进"),
    "honor": ("获评", "称号", "先进"),
    "award": ("获评", "奖励"),
    "pilot": ("试点", "实验区", "试验区"),
    "highway": ("高速公路", "公路"),
    "highways": ("高速公路", "公路"),
    "businesses": ("市场主体", "企业"),
    "firms": ("企业", "市场主体"),
    "grid": ("网格",),
    "infections": ("感染者", "疫情", "病例"),
    "provinces": ("省",),
    # pay and income
    "earn": ("报酬", "薪酬", "收入", "待遇"),
    "earnings": ("报酬", "薪酬", "收入"),
    "income": ("收入", "报酬", "薪酬"),
    "salary": ("报酬", "薪酬", "工资", "待遇"),
    "wage": ("报酬", "薪酬", "工资"),
    "pay": ("报酬", "薪酬", "待遇"),
    "average": ("平均", "人均", "户均"),
    "household": ("户均", "家庭", "农户"),
    "family": ("户均", "家庭", "农户"),
    # shares, ranks, money spent
    "share": ("比重", "比例", "占比"),
    "proportion": ("比重", "比例", "占比"),
    "percentage": ("比重", "比例", "占比"),
    "rank": ("位居", "排名", "前列"),
    "ranking": ("位居", "排名", "前列"),
    "spending": ("支出", "投入", "经费", "投资"),
    "spend": ("支出", "投入", "经费", "投资"),
    "expenditure": ("支出", "投入", "经费"),
    "cost": ("造价", "成本", "费用"),
    "gdp": ("生产总值",),
    "bring": ("带动", "拉动"),
    "research": ("研发", "科研"),
    # water transport
    "navigable": ("通航", "航道"),
    "inland": ("内河",),
    "waterway": ("航道", "内河", "水运"),
    "boat": ("船舶", "水运", "航运"),
    "ship": ("船舶", "水运", "航运"),
    "shipping": ("船舶", "水运", "航运"),
    "vessel": ("船舶",),
    "transport": ("交通", "运输"),
    "haulage": ("运输", "货运"),
    "commute": ("通勤",),
    "travel": ("出行", "交通"),
    "territory": ("市域", "全域", "辖区"),
    # housing and neighbourhoods
    "homeowner": ("业主",),
    "owner": ("业主",),
    "estate": ("小区", "住宅小区"),
    "quarrel": ("纠纷", "矛盾"),
    "dispute": ("纠纷", "矛盾"),
    "conflict": ("纠纷", "矛盾"),
    # health
    "treat": ("就诊", "就医", "诊疗", "救治"),
    "treatment": ("就诊", "就医", "诊疗", "救治"),
    "patient": ("患者",),
    "cure": ("治病",),
    "sanitation": ("卫生", "环境卫生", "爱国卫生"),
    "cleanliness": ("卫生", "环境卫生", "爱国卫生"),
    "die": ("死亡",),
    "death": ("死亡",),
    "kill": ("死亡",),
    "injure": ("受伤",),
    # offices and bodies
    "head": ("局长", "主任", "负责人"),
    "director": ("局长", "主任", "负责人"),
    "chief": ("局长", "主任", "负责人"),
    "official": ("干部", "负责人"),
    "deputy": ("副局长",),
    "committee": ("委员会",),
    "body": ("委员会", "机构"),
    "commission": ("委员会",),
    "legal": ("政法", "法治"),
    "steer": ("指挥", "统筹"),
    "approval": ("审批", "许可"),
    "decentralize": ("放权",),
    "cluster": ("集群",),
    "industrial": ("产业", "工业"),
    "campaign": ("运动", "行动"),
    "post": ("岗位",),
    "title": ("职称",),
    "senior": ("高级",),
    "venue": ("地点",),
    "press": ("发布会",),
    "climate": ("营商",),
    "security": ("治安", "公安"),
    "prefecture": ("全州", "我州", "州委", "州政府"),
    "prefectural": ("全州", "我州", "州委", "州政府"),
}


def expand_zh(token: str) -> tuple[str, ...]:
    """Official synonyms of a Chinese question token (empty when none)."""
    return ZH.get(token, ())


def expand_en(word: str) -> tuple[str, ...]:
    """Official Chinese terms for an English question word (empty when none), found
    through its plural, British and verb forms.

    >>> expand_en("earned"), expand_en("neighbourhoods"), expand_en("shares")
    (('报酬', '薪酬', '收入', '待遇'), (), ('比重', '比例', '占比'))
    """
    from qa.translate import english_forms

    found: list[str] = []
    for form in english_forms(word.lower()):
        found += EN.get(form, ())
    return tuple(dict.fromkeys(found))
