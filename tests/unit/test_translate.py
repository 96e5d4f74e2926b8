"""English question words → Chinese terms: corpus-aware senses, phrases, spellings.

The dictionary is the packaged CC-CEDICT; the "corpus" is a hand-written table of
document frequencies, so every expected value can be read off the table.
"""

from qa.translate import corpus_senses, english_forms, translate_query


def test_corpus_senses_keep_what_the_corpus_uses_most_frequent_first():
    # emergency: strict senses 应急 / 紧急 (CEDICT glosses them "emergency"), then 急救
    # through the gloss phrase "emergency treatment"; 抢险 is never used here.
    df = {"应急": 9, "紧急": 2, "急救": 5, "抢险": 0}
    assert corpus_senses("emergency", df) == ("应急", "紧急", "急救")
    assert corpus_senses("emergency", df, limit=1) == ("应急",)
    assert corpus_senses("emergency", {}) == ()


def test_plurals_and_british_spellings_reach_the_dictionary():
    assert english_forms("centres") == ("centres", "centers", "centre", "center")
    assert corpus_senses("ambulances", {"救护车": 2}) == ("救护车",)
    assert "社区" in corpus_senses("neighbourhoods", {"社区": 4, "小区": 1})


def test_a_phrase_the_dictionary_glosses_as_a_whole_comes_before_its_words():
    # "public health" is 公共卫生 in CC-CEDICT; its words are not translated apart
    # (公共 and 健康 would match every passage about anything public or healthy).
    terms, share = translate_query("public health in yichang", {"公共卫生": 3, "公共": 4, "健康": 7})
    assert terms == ["公共卫生", "宜昌市", "宜昌"] and share == 1.0


def test_hyphenated_compounds_are_read_as_their_words():
    terms, share = translate_query("what emergency-care radius?", {"急救": 2})
    assert terms == ["急救"]  # "emergency care" is not a phrase; emergency → 急救, care and radius unused
    assert share == 1 / 3


def test_without_a_corpus_the_dictionary_senses_stand():
    terms, share = translate_query("weather on mars")
    assert "天气" in terms and "火星" in terms and share == 1.0
    assert translate_query("weather on mars", {})[0] == []


def test_a_name_the_corpus_never_mentions_is_a_term_no_sentence_holds():
    from qa.answer import CorpusStats, passes_rules, query_terms, Evidence

    stats = CorpusStats({"人口": 3, "总体": 2}, 10)
    terms = query_terms("What is the population of Mars?", stats)
    assert terms.unknown == frozenset({"mars"}) and ("mars",) in terms.groups
    # a name the dictionary does not list (a transliterated place) is not judged
    assert query_terms("How long is the Jiajinshan tunnel?", stats).unknown == frozenset()
    # an English word that is no pinyin and no dictionary name is not judged
    assert query_terms("How long is the Qwerty tunnel?", stats).unknown == frozenset()
    # a month is a date, not a name
    assert query_terms("What opened on July 16?", stats).unknown == frozenset()
    assert not passes_rules(Evidence(2.0, 0.5, 0.75, True, names_ok=False))
