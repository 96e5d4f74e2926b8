"""Everyday words → the official terms government reports use for the same thing.

A reader asks how much a community worker *earns* (报酬, 薪酬 in the report), how fast
an *ambulance* arrives (急救, 到达时间), how many *beds* (床位). The dictionary
(:mod:`qa.translate`) maps English words to their literal Chinese senses; this table
adds the register shift, in both languages, so that sentence choice and answerability
credit a sentence that says the same thing in official words.

The table was written from general knowledge of Chinese administrative language
and the tuning questions (eval/gold.jsonl, eval/tune.jsonl); it is not derived from
the held-out test questions: the one who wrote both removed every entry that a
test question would have used. Only terms the index actually uses are kept at
question time (see :func:`qa.answer.query_terms`).

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
}


def expand_zh(token: str) -> tuple[str, ...]:
    """Official synonyms of a Chinese question token (empty when none)."""
    return ZH.get(token, ())


def expand_en(word: str) -> tuple[str, ...]:
    """Official Chinese terms for an English question word (empty when none)."""
    return EN.get(word, ())
