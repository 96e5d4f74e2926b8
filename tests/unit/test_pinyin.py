"""Names written in pinyin in English questions (qa/pinyin.py) and where they are used:
the retrieval plan's terms and the sentence terms' unknown names."""

from qa.answer import CorpusStats, query_terms
from qa.pinyin import PinyinIndex, is_pinyin_name, pinyin_index, syllables
from qa.translate import translate_query

DF = {"郑耀英": 2, "科技": 9, "潇湘": 1, "夹金山": 1, "隧道": 3, "投资": 12, "记者": 5, "工资": 4, "李华平": 3}


def test_syllables_split_only_pinyin():
    assert syllables("zhengyaoying") == ("zheng", "yao", "ying")
    assert syllables("xian") == ("xian",)  # the longest syllable first: not xi-an
    assert syllables("tunnel") == () and syllables("daily") == ()
    assert is_pinyin_name("keji") and not is_pinyin_name("li") and not is_pinyin_name("xing")


def test_the_index_reads_whole_words_and_parts():
    index = PinyinIndex(DF)
    assert index.words("jiajinshan") == ("夹金山",) and index.words("ZhengYaoying") == ("郑耀英",)
    assert index.words("shenzhen") == () and not index.mentions("shenzhen")
    assert index.mentions("huaping")  # inside 李华平
    assert pinyin_index(DF) is pinyin_index(DF)  # built once per vocabulary


def test_retrieval_terms_spell_names_in_the_corpus_words():
    terms, _ = translate_query("which reporter interviewed zheng yaoying about the keji xiaoxiang week?", DF)
    assert "郑耀英" in terms and "科技" in terms and "潇湘" in terms
    terms, _ = translate_query("when did li huaping speak?", DF)
    assert "李华平" in terms


def test_a_pinyin_name_becomes_the_corpus_words_it_spells_and_is_never_judged_absent():
    stats = CorpusStats(DF, 20)
    assert ("夹金山",) in query_terms("What did the Jiajinshan tunnel cost?", stats).groups
    # a name that spells no corpus word is not called unknown (the corpus may have it cut
    # apart by the tokenizer), nor is a month, nor a surname beside a given name
    assert not query_terms("What is the minimum wage in Shenzhen?", stats).unknown
    assert not query_terms("What opened in June?", stats).unknown
    assert not query_terms("When did Li Huaping speak?", stats).unknown
