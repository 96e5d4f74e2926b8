"""The UI's event handlers against a real Pipeline (hash embedder, tiny corpus).

No browser here: the handlers are called as Gradio would call them, so streaming,
history, filters, feedback and uploads are checked quickly; tests/ui/test_browser.py
drives the same code through Chromium.
"""

from __future__ import annotations

import io
import json
from types import SimpleNamespace

import pytest

from qa.pipeline import Pipeline
from qa.types import Turn
from qa.ui.app import EMPTY_SOURCES, PENDING, _Handlers, build_ui
from qa.ui.feedback import FeedbackStore, export_feedback


@pytest.fixture
def calls(fake_pipeline: Pipeline, monkeypatch) -> list[dict]:
    """Record every Pipeline.ask call (arguments), still running the real one."""
    seen: list[dict] = []
    real = fake_pipeline.ask

    def spy(question, history=(), k=None, filters=None):
        seen.append({"question": question, "history": list(history), "k": k, "filters": filters})
        return real(question, history=history, k=k, filters=filters)

    monkeypatch.setattr(fake_pipeline, "ask", spy)
    return seen


def _run(h: _Handlers, question: str, chat=None, exchanges=None, region="", date_from="", date_to="", docs=None):
    return list(h.respond(question, chat or [], exchanges or [], region, date_from, date_to, docs or []))


def _is_skip(value) -> bool:
    return isinstance(value, dict) and value.get("__type__") == "update" and len(value) == 1


def test_answer_streams_after_an_immediate_placeholder(fake_pipeline, calls):
    h = _Handlers(fake_pipeline, fake_pipeline.settings)
    steps = _run(h, "宜昌打造多少分钟急救圈?")
    chat, box, sources, exchanges = steps[0]
    # First update: the question echoed, a placeholder, the textbox cleared, before any search.
    assert [m["role"] for m in chat] == ["user", "assistant"]
    assert PENDING in chat[1]["content"] and box == "" and _is_skip(sources)
    assert len(steps) >= 2
    final_chat, _, _, final_exchanges = steps[-1]
    answer = final_exchanges[-1]
    assert answer["question"] == "宜昌打造多少分钟急救圈?" and answer["chat_index"] == 1
    assert PENDING not in final_chat[1]["content"]
    # The sources panel is filled with the first answer text, not only at the end.
    assert not _is_skip(steps[1][2]) and steps[1][2] != EMPTY_SOURCES
    assert len(calls) == 1 and calls[0]["history"] == [] and calls[0]["k"] == fake_pipeline.settings.k


def test_follow_up_passes_the_conversation_as_turns(fake_pipeline, calls):
    h = _Handlers(fake_pipeline, fake_pipeline.settings)
    chat, _, _, exchanges = _run(h, "宜昌打造多少分钟急救圈?")[-1]
    first_answer = exchanges[0]["answer"]
    chat2, _, _, exchanges2 = _run(h, "那武汉呢?", chat, exchanges)[-1]
    assert calls[1]["history"] == [Turn("user", "宜昌打造多少分钟急救圈?"), Turn("assistant", first_answer)]
    assert len(chat2) == 4 and [e["chat_index"] for e in exchanges2] == [1, 3]


def test_filters_apply_to_the_next_question(fake_pipeline, calls):
    h = _Handlers(fake_pipeline, fake_pipeline.settings)
    _, _, sources, _ = _run(h, "急救圈", docs=["ezhou.txt"], date_from="2021")[-1]
    assert calls[0]["filters"].doc_ids == ("ezhou.txt",) and calls[0]["filters"].date_from == "2021-01-01"
    assert "ezhou.txt" in sources and "yichang.txt" not in sources and "wuhan.txt" not in sources


def test_bad_filter_or_empty_question_changes_nothing(fake_pipeline, calls):
    h = _Handlers(fake_pipeline, fake_pipeline.settings)
    with pytest.warns(UserWarning, match="Filter problem"):
        steps = _run(h, "急救圈", date_from="not a date")
    assert len(steps) == 1 and all(_is_skip(v) for v in steps[0])
    with pytest.warns(UserWarning, match="type a question"):
        assert all(_is_skip(v) for v in _run(h, "   ")[0])
    assert calls == []


def test_pipeline_errors_are_shown_in_the_chat(fake_pipeline):
    h = _Handlers(fake_pipeline, fake_pipeline.settings)
    chat, _, _, exchanges = _run(h, "问" * (fake_pipeline.settings.max_question_chars + 1))[-1]
    assert "qa-error" in chat[-1]["content"] and "limit" in chat[-1]["content"]
    assert exchanges[-1]["answer"] is None


def test_votes_are_stored_with_the_answer_and_its_citations(fake_pipeline, tmp_path):
    settings = fake_pipeline.settings.model_copy(update={"feedback_db": tmp_path / "fb.sqlite3"})
    h = _Handlers(fake_pipeline, settings)
    _, _, _, exchanges = _run(h, "宜昌打造多少分钟急救圈?")[-1]
    h.vote(exchanges, SimpleNamespace(index=1, liked=False))
    h.vote(exchanges, SimpleNamespace(index=0, liked=True))  # the user's own message: ignored
    h.vote(exchanges, SimpleNamespace(index=1, liked=None))  # withdrawn: nothing stored
    assert FeedbackStore(tmp_path / "fb.sqlite3").count() == 1
    out = io.StringIO()
    export_feedback(tmp_path / "fb.sqlite3", out)
    row = json.loads(out.getvalue())
    assert row["vote"] == "down" and row["answer"] == exchanges[0]["answer"]
    assert row["citations"] == exchanges[0]["citations"]


def test_open_document_returns_escaped_text_with_a_target(fake_pipeline):
    h = _Handlers(fake_pipeline, fake_pipeline.settings)
    doc = fake_pipeline.document("yichang.txt")
    start = doc.text.index("推进院前")
    out = h.open_document("yichang.txt", start, start + 10)
    assert '<mark class="qa-target">推进院前急救体系建设</mark>' in out
    missing = h.open_document("<nope>.txt", 0, 1)
    assert "qa-status-err" in missing and "&lt;nope&gt;" in missing


def _upload_handler(pipeline: Pipeline, **settings) -> _Handlers:
    return _Handlers(pipeline, pipeline.settings.model_copy(update=settings))


def test_upload_indexes_accepted_files_and_explains_rejections(fake_pipeline, tmp_path):
    h = _upload_handler(fake_pipeline, allow_writes=True)
    good = tmp_path / "xianning.txt"
    good.write_text("咸宁市卫健委\n来源:咸宁日报 2021-05-01\n\n咸宁新建发热门诊12个。\n", encoding="utf-8")
    bad = tmp_path / "tool.exe"
    bad.write_bytes(b"MZ\x90\x00")
    status, rows, region_dd, docs_dd, info = h.upload([str(good), str(bad)], None, progress=lambda *a, **k: None)
    assert "xianning.txt" in status and "indexed" in status
    assert "tool.exe" in status and "rejected" in status and "not supported" in status
    assert "xianning.txt" in [r[0] for r in rows]
    assert "xianning.txt" in [value for _label, value in docs_dd.choices]
    assert "xianning.txt" in {d.doc_id for d in fake_pipeline.documents()}
    assert "4 份文档 documents" in info


def test_upload_needs_permission(fake_pipeline, tmp_path):
    f = tmp_path / "a.txt"
    f.write_text("文本。", encoding="utf-8")
    closed = _upload_handler(fake_pipeline, allow_writes=False)
    status, *_ = closed.upload([str(f)], None, progress=lambda *a, **k: None)
    assert "disabled" in status
    keyed = _upload_handler(fake_pipeline, api_key="k3y")
    status, *_ = keyed.upload([str(f)], "wrong", progress=lambda *a, **k: None)
    assert "API key" in status
    assert "a.txt" not in {d.doc_id for d in fake_pipeline.documents()}


def test_upload_over_the_size_limit_is_rejected_with_the_limit(fake_pipeline, tmp_path):
    h = _upload_handler(fake_pipeline, allow_writes=True, max_upload_mb=0.001)
    big = tmp_path / "big.txt"
    big.write_text("字" * 2000, encoding="utf-8")
    status, *_ = h.upload([str(big)], None, progress=lambda *a, **k: None)
    assert "rejected" in status and "limit is 0.001 MB" in status


def test_build_ui_offers_uploads_only_where_writes_are_allowed(fake_pipeline):
    def labels(demo) -> set[str]:
        return {getattr(b, "label", None) for b in demo.blocks.values() if getattr(b, "visible", True)}

    closed = build_ui(fake_pipeline, fake_pipeline.settings)
    upload_buttons = [b for b in closed.blocks.values() if getattr(b, "elem_id", None) == "qa-upload-btn"]
    assert upload_buttons and not any(_visible_chain(closed, b) for b in upload_buttons)
    opened = build_ui(fake_pipeline, fake_pipeline.settings.model_copy(update={"allow_writes": True}))
    assert any(_visible_chain(opened, b) for b in opened.blocks.values() if getattr(b, "elem_id", None) == "qa-upload-btn")
    assert "提问 Ask" in labels(opened)


def _visible_chain(demo, block) -> bool:
    """Whether a block and all its parents are visible."""
    while block is not None:
        if getattr(block, "visible", True) is False:
            return False
        block = getattr(block, "parent", None)
    return True
