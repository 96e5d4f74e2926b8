"""The chat UI's pure helpers: escaping, highlight offsets, filters, streaming steps."""

from __future__ import annotations

import doctest

import pytest

from qa.errors import InputError, PermissionDenied
from qa.settings import Settings
from qa.types import Answer, Chunk, Citation, Document, Filters, Hit, Turn
from qa.ui.app import (
    NOT_FOUND,
    build_filters,
    chat_html,
    check_write_access,
    document_choices,
    documents_rows,
    highlight,
    normalize_date,
    passage_for,
    progressive_prefixes,
    refusal_text,
    region_choices,
    render_citation,
    render_document,
    render_sources,
    turns_from_exchanges,
    writes_enabled,
)
# The Yichang document of tests/conftest.py's tiny corpus.
YICHANG = (
    "推进市域治理现代化\n来源:三峡日报 2022年01月14日\n\n"
    "宜昌市委六届十三次全会召开。推进院前急救体系建设,打造中心城区“10分钟”、"
    "非中心城区“15分钟”、县市“30分钟”急救圈。二级以上医疗机构建设P2实验室。\n"
)
# Hand-counted: the sentence about the emergency-care circles spans [45, 93).
SENT_START, SENT_END = 45, 93
SENTENCE = "推进院前急救体系建设,打造中心城区“10分钟”、非中心城区“15分钟”、县市“30分钟”急救圈。"

EVIL = '<script>alert(1)</script> & "x" <img src=x onerror=alert(2)>'


def _doc(text: str = YICHANG, title: str = "推进市域治理现代化", doc_id: str = "yichang.txt") -> Document:
    return Document(doc_id, text, title, "2022-01-14", "三峡日报", "宜昌市", (), "h")


def _hit(doc: Document, start: int, end: int, score: float = 1.0) -> Hit:
    chunk = Chunk(doc.doc_id, start, end, doc.text[start:end], "", "", "")
    return Hit(chunk, score, doc.title, doc.date, doc.source, doc.region)


def _citation(doc: Document, start: int, end: int, n: int = 1) -> Citation:
    return Citation(n, doc.doc_id, doc.title, start, end, doc.text[start:end], doc.date, doc.region, doc.source)


def test_sentence_offsets_are_what_the_tests_assume():
    assert YICHANG[SENT_START:SENT_END] == SENTENCE


# ---------------------------------------------------------------- highlight / escaping


def test_highlight_marks_exact_offsets_and_escapes_everything():
    assert highlight("ab<c>d", [(2, 5)]) == "ab<mark>&lt;c&gt;</mark>d"
    assert highlight("甲乙丙丁", [(1, 2), (3, 4)]) == "甲<mark>乙</mark>丙<mark>丁</mark>"


def test_highlight_merges_overlaps_and_clips_out_of_range_spans():
    assert highlight("abcdef", [(1, 3), (2, 5)]) == "a<mark>bcde</mark>f"
    assert highlight("abc", [(-3, 1), (2, 50), (7, 9)]) == "<mark>a</mark>b<mark>c</mark>"
    assert highlight("abc", []) == "abc"


def test_highlight_escapes_quotes_and_ampersands():
    out = highlight(EVIL, [(0, 8)])
    assert "<script" not in out and "<img" not in out
    assert out.startswith("<mark>&lt;script&gt;</mark>")
    assert "&amp;" in out and "&quot;x&quot;" in out


def test_chat_html_escapes_html_and_markdown_but_styles_markers():
    out = chat_html("据《标题》:“宜昌**加粗**[链接](javascript:alert(1))”[2] <b>x</b>")
    assert "<b>" not in out and "&lt;b&gt;" in out
    assert "\\*\\*" in out  # literal asterisks, not bold
    assert "\\[链接\\]" in out  # not a Markdown link
    assert out.count('<sup class="qa-ref">&#91;2&#93;</sup>') == 1


def test_progressive_prefixes_grow_to_the_full_text_within_the_step_limit():
    text = "根据《宜昌》:“打造10分钟急救圈。”[1];另据《武汉》:“12分钟。”[2]"
    steps = progressive_prefixes(text, max_steps=8)
    assert steps[-1] == text
    assert all(text.startswith(s) for s in steps)
    assert [len(s) for s in steps] == sorted({len(s) for s in steps})  # strictly growing
    assert len(progressive_prefixes("句。" * 50, max_steps=5)) == 5
    assert progressive_prefixes("句。" * 50, max_steps=5)[0] == "句。" * 10


# ---------------------------------------------------------------- sources panel


def test_citation_card_shows_metadata_and_marks_the_cited_sentence_in_the_passage():
    doc = _doc()
    hit = _hit(doc, 30, 110)
    html_ = render_citation(_citation(doc, SENT_START, SENT_END), [hit])
    assert "推进市域治理现代化" in html_ and "2022-01-14" in html_ and "宜昌市" in html_ and "三峡日报" in html_
    assert f"<mark>{SENTENCE}</mark>" in html_
    # The passage around it is the hit's text: what precedes the sentence inside the hit.
    assert "宜昌市委六届十三次全会召开。<mark>" in html_
    assert 'data-doc="yichang.txt" data-start="45" data-end="93"' in html_


def test_citation_passage_prefers_the_hit_that_contains_the_sentence():
    doc = _doc()
    far, near = _hit(doc, 0, 40), _hit(doc, 40, 100)
    text, offset = passage_for(_citation(doc, SENT_START, SENT_END), [far, near])
    assert offset == 40 and text == YICHANG[40:100]
    assert passage_for(_citation(doc, SENT_START, SENT_END), [far]) is None


def test_citation_outside_the_hits_falls_back_to_the_document_text():
    doc = _doc()
    html_ = render_citation(_citation(doc, SENT_START, SENT_END), [], doc_text=lambda _id: doc.text)
    assert f"<mark>{SENTENCE}</mark>" in html_


def test_untrusted_document_fields_are_escaped_in_cards_and_document_view():
    text = f"{EVIL}\n正文{EVIL}。\n"
    doc = Document("e.txt", text, EVIL, None, EVIL, EVIL, (), "h")
    cite = Citation(1, "e.txt", EVIL, 0, 10, text[:10], None, EVIL, EVIL)
    for out in (render_citation(cite, [_hit(doc, 0, len(text))]), render_document(doc, 0, 10)):
        assert "<script" not in out and "<img" not in out
        assert "&lt;script&gt;" in out


def test_refusal_shows_not_found_plainly_with_closest_passages_as_see_also():
    doc = _doc()
    answer = Answer("问?", "未在文档中找到相关内容。", True, (), (_hit(doc, 0, 40), _hit(doc, 40, 100)), "zh", "问?")
    out = render_sources(answer)
    assert NOT_FOUND in out
    assert "See also" in out and out.count('class="qa-card qa-seealso"') == 2
    assert "<mark>" not in out  # nothing was cited


def test_answer_sources_list_every_citation_and_the_active_filters():
    doc = _doc()
    cites = (_citation(doc, SENT_START, SENT_END, 1), _citation(doc, 93, 109, 2))
    answer = Answer("q", "a[1][2]", False, cites, (_hit(doc, 30, 110),), "zh", "q", {"total": 41.6})
    out = render_sources(answer, filters=Filters(region="宜昌"))
    assert "来源 Sources (2)" in out
    assert 'id="qa-cite-1"' in out and 'id="qa-cite-2"' in out
    assert "地区 Region 宜昌" in out and "42 ms" in out


def test_refusal_text_is_bilingual_without_repeating_the_engine_notice():
    assert refusal_text("未在文档中找到相关内容。") == NOT_FOUND
    assert refusal_text("") == NOT_FOUND
    assert refusal_text("只有宜昌的文件。") == f"{NOT_FOUND}\n只有宜昌的文件。"


# ---------------------------------------------------------------- document view


def test_document_view_keeps_paragraphs_and_targets_the_cited_sentence():
    doc = _doc()
    out = render_document(doc, SENT_START, SENT_END)
    body = out.split('<div class="qa-doc-body">')[1]
    # Three non-blank lines → three paragraphs; the blank line is dropped.
    assert body.count("<p>") == 3
    assert f'<mark class="qa-target">{SENTENCE}</mark>' in body
    assert body.count("qa-target") == 1


def test_document_view_splits_a_span_across_lines_and_targets_the_first_piece():
    text = "第一行甲乙\n\u3000\u3000第二行丙丁\n"
    doc = Document("t.txt", text, "t", None, None, None, (), "h")
    body = render_document(doc, 3, 10).split('<div class="qa-doc-body">')[1]
    # Full-width indent stripped; the mark continues on the next line without the indent.
    assert body == '<p>第一行<mark class="qa-target">甲乙</mark></p><p><mark>第二</mark>行丙丁</p></div></div>'


# ---------------------------------------------------------------- filters


@pytest.mark.parametrize(
    ("value", "end", "expected"),
    [
        ("2021", False, "2021-01-01"),
        ("2021", True, "2021-12-31"),
        ("2024-02", True, "2024-02-29"),  # leap year
        ("2023-02", True, "2023-02-28"),
        ("2020/6/30", False, "2020-06-30"),
        (" ", False, None),
        (None, True, None),
    ],
)
def test_normalize_date_widens_partial_dates(value, end, expected):
    assert normalize_date(value, end=end) == expected


@pytest.mark.parametrize("bad", ["yesterday", "2021-13", "2021-02-30", "21-01-01"])
def test_normalize_date_rejects_non_dates_with_a_hint(bad):
    with pytest.raises(InputError) as info:
        normalize_date(bad)
    assert info.value.hint and "YYYY" in info.value.hint


def test_build_filters_maps_widgets_to_filters():
    assert build_filters("", "", "", []) is None
    assert build_filters(None, None, None, None) is None
    assert build_filters(" 宜昌 ", "2021-08", "2021", ["a.txt", ""]) == Filters(
        doc_ids=("a.txt",), region="宜昌", date_from="2021-08-01", date_to="2021-12-31"
    )


def test_build_filters_rejects_an_empty_date_range():
    with pytest.raises(InputError, match="after"):
        build_filters(None, "2022-01-02", "2022-01-01", [])


def test_filter_choices_come_from_the_indexed_documents():
    docs = [_doc(), _doc(doc_id="b.txt", title="B"), Document("c.txt", "", "C", None, None, None, (), "h")]
    assert region_choices(docs) == [("全部 All", ""), ("宜昌市", "宜昌市")]
    assert document_choices(docs)[0] == ("B · 2022-01-14 (b.txt)", "b.txt")  # sorted by doc_id
    rows = documents_rows(docs, {"b.txt": 4})
    assert rows[0] == ["b.txt", "B", "2022-01-14", "宜昌市", "三峡日报", 4]
    assert rows[1][0] == "c.txt" and rows[1][5] == 0


# ---------------------------------------------------------------- history and write access


def test_history_becomes_turns_for_follow_ups():
    exchanges = [
        {"question": "宜昌打造多少分钟急救圈?", "answer": "“10分钟”[1]"},
        {"question": "坏问题", "answer": None},
    ]
    assert turns_from_exchanges(exchanges) == [
        Turn("user", "宜昌打造多少分钟急救圈?"),
        Turn("assistant", "“10分钟”[1]"),
        Turn("user", "坏问题"),
    ]
    assert turns_from_exchanges(exchanges, limit=1) == [Turn("user", "坏问题")]


def test_write_access_needs_the_key_when_one_is_configured(tmp_path):
    keyed = Settings(index_dir=tmp_path / "i", api_key="s3cret")
    check_write_access(keyed, "s3cret")
    check_write_access(keyed, " s3cret ")
    for wrong in (None, "", "nope"):
        with pytest.raises(PermissionDenied):
            check_write_access(keyed, wrong)
    assert writes_enabled(keyed)


def test_write_access_without_a_key_follows_allow_writes(tmp_path):
    check_write_access(Settings(index_dir=tmp_path / "i", allow_writes=True), None)
    closed = Settings(index_dir=tmp_path / "i")
    assert not writes_enabled(closed)
    with pytest.raises(PermissionDenied, match="disabled"):
        check_write_access(closed, "anything")


@pytest.mark.parametrize("module", ["qa.ui.app", "qa.ui.feedback"])
def test_docstring_examples_hold(module):
    import importlib

    result = doctest.testmod(importlib.import_module(module))
    assert result.attempted > 0 and result.failed == 0
