"""The English path's word forms, synonym table and place-aware runner-up quotes.

The dictionary is the packaged CC-CEDICT; "corpora" are hand-written document
frequencies, so every expected value can be read off the test.
"""

from types import SimpleNamespace

from qa.answer import (
    EN_POOL_CHUNKS,
    POOL_CHUNKS,
    Candidate,
    CorpusStats,
    QueryTerms,
    _same_place,
    query_terms,
)
from qa.synonyms import expand_en
from qa.translate import corpus_senses, english_forms, translate_query


def test_an_ing_or_ed_form_reaches_its_plain_verb():
    # "working" is glossed only inside phrases (working group → 工作组); the plain
    # verb "work" is where 工作 is, so the corpus's most frequent sense comes first.
    assert "work" in english_forms("working")
    assert corpus_senses("working", {"工作": 9, "工作组": 1})[0] == "工作"
    assert "plan" in english_forms("planned") and "die" in english_forms("died")
    assert english_forms("need") == ("need",)  # not a past form
    # the canonical form used to key phrases is unchanged
    assert english_forms("centres", stems=False)[-1] == "center"


def test_the_synonym_table_is_found_through_word_forms():
    assert expand_en("earned") == expand_en("earn") == ("报酬", "薪酬", "收入", "待遇")
    assert "比重" in expand_en("shares")
    assert expand_en("zebra") == ()


def test_retrieval_terms_include_the_official_words_the_corpus_uses():
    df = {"报酬": 2, "薪酬": 1}  # 收入 and 待遇 are not in this corpus
    terms, share = translate_query("how much do workers earn", df)
    assert "报酬" in terms and "薪酬" in terms and "收入" not in terms
    # earn is translated, workers is not (no sense of it in this corpus): 1 of 2
    assert share == 0.5


def test_answer_terms_take_the_synonyms_and_drop_single_letters():
    stats = CorpusStats({"报酬": 1, "研发": 2, "r": 1, "d": 1}, 10)
    terms = query_terms("How much does a worker earn on R&D research?", stats)
    assert any("报酬" in g for g in terms.groups)
    assert ("r",) not in terms.groups and ("d",) not in terms.groups
    assert any("研发" in g for g in terms.groups)


def _cand(doc_id: str) -> Candidate:
    return Candidate(position=0, doc_id=doc_id, rank=0, dense=0.8, coverage=0.5, score=0.8)


def test_a_runner_up_about_another_place_does_not_join_the_quotes():
    docs = {"w.txt": SimpleNamespace(region="武汉市"), "e.txt": SimpleNamespace(region="鄂州市"),
            "w2.txt": SimpleNamespace(region="武汉市")}
    data = SimpleNamespace(documents=docs)
    wuhan = QueryTerms((("报酬",),), (1.0,), frozenset({"武汉市"}))
    best = _cand("w.txt")
    assert not _same_place(_cand("e.txt"), best, wuhan, data)  # Ezhou's pay, Wuhan asked
    assert _same_place(_cand("w2.txt"), best, wuhan, data)
    # no place asked, or the best sentence is not about it either: places do not decide
    anywhere = QueryTerms((("报酬",),), (1.0,), frozenset())
    assert _same_place(_cand("e.txt"), best, anywhere, data)
    assert _same_place(_cand("w.txt"), _cand("e.txt"), wuhan, data)


def test_english_questions_draw_on_more_chunks():
    import numpy as np

    from qa.answer import score_candidates

    n = EN_POOL_CHUNKS + 1
    sentences = [SimpleNamespace(doc_id="d.txt", text=f"第{i}句。", search_text=f"第{i}句。") for i in range(n)]
    data = SimpleNamespace(
        sentences=sentences,
        sentence_vectors=np.eye(n, dtype=np.float32),
        documents={"d.txt": SimpleNamespace(region=None)},
    )
    retriever = SimpleNamespace(data=data, chunk_sentences=lambda pos: [pos])  # chunk i holds sentence i
    retrieval = SimpleNamespace(positions=tuple(range(n)))
    terms = QueryTerms((), (), frozenset())
    vector = np.ones(n, dtype=np.float32)
    english = score_candidates(retriever, retrieval, terms, vector, question="Which sentence?")
    chinese = score_candidates(retriever, retrieval, terms, vector, question="哪一句?")
    assert len(english) == EN_POOL_CHUNKS and len(chinese) == POOL_CHUNKS
