"""The chat UI staff use: ask in Chinese or English, see the answer and its proof.

A thin Gradio shell over :class:`qa.pipeline.Pipeline`: ``build_ui(pipeline,
settings)`` returns a ``gr.Blocks`` that ``qa ui`` serves on its own
(:func:`launch`) and ``qa serve`` mounts at ``/`` next to the HTTP API. Everything
shown from documents (titles, passages, quotes, whole texts) is HTML-escaped here,
because documents are untrusted web scrapes.

The rendering helpers are pure functions of the pipeline's dataclasses, so they are
unit-tested without a browser:

>>> highlight("宜昌打造10分钟急救圈。<b>", [(2, 9)])
'宜昌<mark>打造10分钟急</mark>救圈。&lt;b&gt;'
>>> build_filters("宜昌", "2021", "", []).date_from
'2021-01-01'
"""

from __future__ import annotations

import calendar
import hmac
import html
import re
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Sequence

from qa.errors import InputError, PermissionDenied, QAError
from qa.settings import Settings
from qa.types import Answer, Citation, Document, Filters, Hit, Turn

if TYPE_CHECKING:  # gradio takes ~2 s to import; the helpers below do not need it
    import gradio as gr

    from qa.pipeline import Pipeline

TITLE = "政务文档问答 · Government document Q&A"

# Drawn from the bundled sample corpus (Yichang, Ezhou, Wuhan documents).
EXAMPLES: tuple[str, ...] = (
    "What emergency-care radius did Yichang set?",
    "宜昌打造多少分钟急救圈?",
    "鄂州建成了多少个红色网格驿站?",
    "What medical emergency-care radius does Wuhan plan for its central urban districts?",
    "武汉要用几年时间打造平安中国建设先进城市?",
)

NOT_FOUND = "未在文档中找到相关内容 · Not found in the documents"
PENDING = "正在检索… Searching the documents…"
HISTORY_TURNS = 10  # earlier turns passed to Pipeline.ask for follow-ups
STREAM_STEPS = 8  # at most this many progressive updates per answer
STREAM_PAUSE_S = 0.03  # between updates: visible progress, bounded (~0.2 s) extra time


# ---------------------------------------------------------------- pure helpers


def _tidy(text: str) -> str:
    """Collapse layout whitespace of scraped text: runs with a newline → one newline,
    other runs (incl. ideographic spaces) → one space.

    >>> _tidy("a \\u3000 b\\n\\n  c")
    'a b\\nc'
    """
    text = re.sub(r"[ \t\u3000\xa0]*\n[\s\u3000\xa0]*", "\n", text)
    return re.sub(r"[ \t\u3000\xa0]+", " ", text)


def highlight(text: str, spans: Iterable[tuple[int, int]], tidy: bool = False, mark_attrs: str = "") -> str:
    """HTML-escape ``text`` and wrap each ``(start, end)`` span (offsets into ``text``)
    in ``<mark>``. Spans are clipped to the text; overlapping spans are merged.

    >>> highlight("a<b>c", [(1, 4)])
    'a<mark>&lt;b&gt;</mark>c'
    >>> highlight("abc", [(-5, 1), (2, 99)])
    '<mark>a</mark>b<mark>c</mark>'
    >>> highlight("abc", [(2, 1)])
    'abc'
    """
    clean = _tidy if tidy else (lambda s: s)
    clipped = sorted((max(0, s), min(len(text), e)) for s, e in spans if min(len(text), e) > max(0, s))
    merged: list[list[int]] = []
    for start, end in clipped:
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    out: list[str] = []
    pos = 0
    attrs = f" {mark_attrs}" if mark_attrs else ""
    for start, end in merged:
        out.append(html.escape(clean(text[pos:start])))
        out.append(f"<mark{attrs}>{html.escape(clean(text[start:end]))}</mark>")
        pos = end
    out.append(html.escape(clean(text[pos:])))
    return "".join(out)


_MARKER = re.compile(r"\[(\d{1,3})\]")
REF_TITLE = "原文 source: "  # prefix of a chat marker's title: "<doc_id>#<start>-<end>" follows
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]#|~])")


def chat_html(text: str, citations: Sequence[Citation] = ()) -> str:
    """Answer text → what the chat bubble shows: HTML- and Markdown-escaped (quotes come
    from untrusted documents), with citation markers ``[n]`` styled as references. A
    marker whose citation is given carries the document reference in its ``title`` (the
    chat's sanitiser drops ``data-*`` attributes; a title survives and doubles as a
    hover hint), so a click on it opens the document at the quoted sentence, in any
    bubble, not only the last.

    >>> chat_html("急救圈[1] <img src=x>")
    '急救圈<sup class="qa-ref">&#91;1&#93;</sup> &lt;img src=x&gt;'
    >>> chat_html("a*b*")
    'a\\\\*b\\\\*'
    >>> chat_html("圈[1]", [Citation(1, "a.txt", "标题", 3, 9, "quote")])
    '圈<sup class="qa-ref" role="button" tabindex="0" title="原文 source: a.txt#3-9">&#91;1&#93;</sup>'
    """
    by_n = {c.n: c for c in citations}
    out: list[str] = []
    pos = 0
    for m in _MARKER.finditer(text):
        out.append(_md_escape(text[pos : m.start()]))
        cited = by_n.get(int(m.group(1)))
        attrs = (f' role="button" tabindex="0" title="{REF_TITLE}{html.escape(cited.doc_id, quote=True)}'
                 f'#{int(cited.start)}-{int(cited.end)}"' if cited is not None else "")
        out.append(f'<sup class="qa-ref"{attrs}>&#91;{m.group(1)}&#93;</sup>')
        pos = m.end()
    out.append(_md_escape(text[pos:]))
    return "".join(out)


def _md_escape(text: str) -> str:
    return _MD_SPECIAL.sub(r"\\\1", html.escape(text, quote=False))


_BREAK = re.compile(r"(?:\[\d{1,3}\]|[。！？!?；;]|\.(?=\s|$)|\n)+")


def progressive_prefixes(text: str, max_steps: int = STREAM_STEPS) -> list[str]:
    """Growing prefixes of ``text`` ending at sentence/citation boundaries, at most
    ``max_steps`` of them, the last one being ``text`` itself (for streaming display).

    >>> progressive_prefixes("甲。乙[1]。丙", max_steps=8)
    ['甲。', '甲。乙[1]。', '甲。乙[1]。丙']
    >>> progressive_prefixes("一。二。三。四。", max_steps=2)
    ['一。二。', '一。二。三。四。']
    >>> progressive_prefixes("")
    ['']
    """
    cuts = [m.end() for m in _BREAK.finditer(text) if m.end() < len(text)]
    cuts.append(len(text))
    if len(cuts) > max_steps:
        step = len(cuts) / max_steps
        cuts = [cuts[min(len(cuts) - 1, round((i + 1) * step) - 1)] for i in range(max_steps)]
    return [text[:c] for c in cuts]


_PARTIAL_DATE = re.compile(r"^(\d{4})(?:-(\d{1,2})(?:-(\d{1,2}))?)?$")


def normalize_date(value: str | None, end: bool = False) -> str | None:
    """A date-range bound typed by a user → ISO ``YYYY-MM-DD`` (``None`` when blank).

    A year or month is widened to its first day (``end=False``) or last day
    (``end=True``), so "2021" to "2021" means the whole year. Slashes and dots work too.

    >>> normalize_date("2021"), normalize_date("2021-2", end=True), normalize_date("2020/6/30")
    ('2021-01-01', '2021-02-28', '2020-06-30')
    """
    text = (value or "").strip().replace("/", "-").replace(".", "-")
    if not text:
        return None
    m = _PARTIAL_DATE.match(text)
    if not m:
        raise InputError(f"date {value!r} is not a date", hint="type YYYY-MM-DD, YYYY-MM or YYYY, e.g. 2021-08-02")
    year = int(m.group(1))
    month = int(m.group(2)) if m.group(2) else (12 if end else 1)
    if m.group(3):
        day = int(m.group(3))
    else:
        day = calendar.monthrange(year, month)[1] if end and 1 <= month <= 12 else 1
    try:
        return date(year, month, day).isoformat()
    except ValueError as exc:
        raise InputError(f"date {value!r} does not exist ({exc})", hint="type YYYY-MM-DD, e.g. 2021-08-02") from exc


def build_filters(
    region: str | None, date_from: str | None, date_to: str | None, doc_ids: Sequence[str] | None
) -> Filters | None:
    """The filter widgets' values → :class:`Filters` for the next question (``None``: no filter).

    >>> build_filters("", " ", None, []) is None
    True
    >>> build_filters(None, "2020-06", "2021", ["b.txt", "a.txt"])
    Filters(doc_ids=('b.txt', 'a.txt'), region=None, date_from='2020-06-01', date_to='2021-12-31')
    """
    start = normalize_date(date_from)
    stop = normalize_date(date_to, end=True)
    if start and stop and start > stop:
        raise InputError(
            f"the date range is empty: {start} is after {stop}", hint="swap the two dates"
        )
    filters = Filters(
        doc_ids=tuple(d for d in (doc_ids or ()) if d),
        region=(region or "").strip() or None,
        date_from=start,
        date_to=stop,
    )
    return None if filters.is_empty() else filters


def describe_filters(filters: Filters | None) -> str:
    """One escaped line saying which filters applied (empty string for none).

    >>> describe_filters(Filters(region="宜昌", date_from="2021-01-01"))
    '筛选 Filters: 地区 Region 宜昌 · 日期 Date ≥ 2021-01-01'
    """
    if filters is None:
        return ""
    parts = []
    if filters.region:
        parts.append(f"地区 Region {filters.region}")
    if filters.date_from:
        parts.append(f"日期 Date ≥ {filters.date_from}")
    if filters.date_to:
        parts.append(f"日期 Date ≤ {filters.date_to}")
    if filters.doc_ids:
        parts.append(f"文档 Documents {len(filters.doc_ids)}")
    return html.escape("筛选 Filters: " + " · ".join(parts))


def turns_from_exchanges(exchanges: Sequence[dict], limit: int = HISTORY_TURNS) -> list[Turn]:
    """Earlier exchanges of this chat → the ``Turn`` history for a follow-up question.

    Questions that failed (no answer) still give context; answers are the raw text.

    >>> turns_from_exchanges([{"question": "宜昌呢?", "answer": "10分钟[1]"}, {"question": "x", "answer": None}])
    [Turn(role='user', content='宜昌呢?'), Turn(role='assistant', content='10分钟[1]'), Turn(role='user', content='x')]
    """
    turns: list[Turn] = []
    for ex in exchanges:
        turns.append(Turn(role="user", content=ex["question"]))
        if ex.get("answer"):
            turns.append(Turn(role="assistant", content=ex["answer"]))
    return turns[-limit:] if limit else turns


def passage_for(citation: Citation, hits: Sequence[Hit]) -> tuple[str, int] | None:
    """The retrieved passage holding the cited sentence: ``(text, offset of text in the
    document)``; the hit that contains the sentence wins, else the one overlapping it most.
    """
    best: tuple[int, Hit] | None = None
    for hit in hits:
        if hit.doc_id != citation.doc_id:
            continue
        overlap = min(hit.end, citation.end) - max(hit.start, citation.start)
        if overlap <= 0:
            continue
        if best is None or overlap > best[0]:
            best = (overlap, hit)
    if best is None:
        return None
    hit = best[1]
    return hit.text, hit.start


def _meta_line(date_: str | None, region: str | None, source: str | None, doc_id: str) -> str:
    parts = [
        f"日期 Date: {date_ or '—'}",
        f"地区 Region: {region or '—'}",
        f"来源 Source: {source or '—'}",
    ]
    return (
        '<div class="qa-meta">'
        + " · ".join(html.escape(p) for p in parts)
        + f' · <code>{html.escape(doc_id)}</code></div>'
    )


def _open_attrs(doc_id: str, start: int, end: int) -> str:
    return f'data-doc="{html.escape(doc_id, quote=True)}" data-start="{int(start)}" data-end="{int(end)}"'


def render_citation(citation: Citation, hits: Sequence[Hit], doc_text: Callable[[str], str | None] | None = None) -> str:
    """One source card: number, title, date/region/source, and the passage with the
    cited sentence in ``<mark>``. A click on the title or the button opens the document.
    """
    found = passage_for(citation, hits)
    if found is None and doc_text is not None:
        # The engine may cite a sentence outside the top hits: show its surroundings.
        text = doc_text(citation.doc_id)
        if text is not None:
            lo = max(0, citation.start - 80)
            found = text[lo : min(len(text), citation.end + 80)], lo
    if found is None:
        found = citation.quote, citation.start
    text, offset = found
    passage = highlight(text, [(citation.start - offset, citation.end - offset)], tidy=True)
    attrs = _open_attrs(citation.doc_id, citation.start, citation.end)
    return (
        f'<div class="qa-card" id="qa-cite-{citation.n}">'
        f'<div class="qa-card-title"><span class="qa-num">[{citation.n}]</span> '
        f'<a href="#" class="qa-open" {attrs}>{html.escape(citation.title or citation.doc_id)}</a></div>'
        f"{_meta_line(citation.date, citation.region, citation.source, citation.doc_id)}"
        f'<blockquote class="qa-passage">{passage}</blockquote>'
        f'<a href="#" class="qa-open qa-open-link" {attrs}>查看全文 Open document ↗</a>'
        "</div>"
    )


def render_hit(hit: Hit, rank: int) -> str:
    """A "see also" card for a retrieved passage (no sentence was cited from it)."""
    attrs = _open_attrs(hit.doc_id, hit.start, hit.end)
    return (
        '<div class="qa-card qa-seealso">'
        f'<div class="qa-card-title"><span class="qa-num">{rank}.</span> '
        f'<a href="#" class="qa-open" {attrs}>{html.escape(hit.title or hit.doc_id)}</a></div>'
        f"{_meta_line(hit.date, hit.region, hit.source, hit.doc_id)}"
        f'<blockquote class="qa-passage">{highlight(hit.text, [], tidy=True)}</blockquote>'
        f'<a href="#" class="qa-open qa-open-link" {attrs}>查看全文 Open document ↗</a>'
        "</div>"
    )


EMPTY_SOURCES = (
    '<div class="qa-sources"><div class="qa-sources-head">来源 Sources</div>'
    '<div class="qa-empty">提问后,这里显示答案引用的原文。<br>The passages an answer cites appear here.</div></div>'
)


def render_sources(
    answer: Answer,
    doc_text: Callable[[str], str | None] | None = None,
    filters: Filters | None = None,
    see_also: int = 3,
) -> str:
    """The sources panel for one answer: cited passages, or for a refusal the plain
    "not found" notice with the closest passages as "see also"."""
    parts = ['<div class="qa-sources">']
    note = describe_filters(filters)
    if answer.refused or not answer.citations:
        parts.append(f'<div class="qa-refused">{html.escape(NOT_FOUND)}</div>')
        if answer.hits:
            parts.append('<div class="qa-sources-head">相关段落 See also</div>')
            parts.extend(render_hit(h, i) for i, h in enumerate(answer.hits[:see_also], 1))
    else:
        parts.append(f'<div class="qa-sources-head">来源 Sources ({len(answer.citations)})</div>')
        parts.extend(render_citation(c, answer.hits, doc_text) for c in answer.citations)
    footer = [note] if note else []
    total = answer.timings_ms.get("total") if answer.timings_ms else None
    if total is not None:
        footer.append(f"用时 Time: {float(total):.0f} ms")
    if footer:
        parts.append(f'<div class="qa-foot">{" · ".join(footer)}</div>')
    parts.append("</div>")
    return "".join(parts)


def render_document(doc: Document, start: int, end: int) -> str:
    """The whole document, escaped, one ``<p>`` per non-blank line, with ``[start, end)``
    marked and its first piece given class ``qa-target`` (the view scrolls to it).

    >>> d = Document("a.txt", "标题\\n\\n第一句。第二句。\\n第三句。", "标题", None, None, None, (), "h")
    >>> render_document(d, 8, 16).split('<div class="qa-doc-body">')[1]
    '<p>标题</p><p>第一句。<mark class="qa-target">第二句。</mark></p><p><mark>第三句</mark>。</p></div></div>'
    """
    paragraphs: list[str] = []
    targeted = False
    for m in re.finditer(r"[^\n]+", doc.text):
        line_start = m.start()
        line = m.group()
        # Strip layout whitespace (full-width indents) without losing offsets.
        lead = len(line) - len(line.lstrip(" \t\u3000\xa0\r"))
        trail = len(line.rstrip(" \t\u3000\xa0\r"))
        if trail <= lead:
            continue
        a, b = line_start + lead, line_start + trail
        s, e = max(start, a), min(end, b)
        if s < e:
            attrs = "" if targeted else 'class="qa-target"'
            targeted = True
            paragraphs.append(f"<p>{highlight(doc.text[a:b], [(s - a, e - a)], mark_attrs=attrs)}</p>")
        else:
            paragraphs.append(f"<p>{html.escape(doc.text[a:b])}</p>")
    head = (
        f'<div class="qa-doc-head"><h3>{html.escape(doc.title or doc.doc_id)}</h3>'
        f"{_meta_line(doc.date, doc.region, doc.source, doc.doc_id)}</div>"
    )
    return f'<div class="qa-doc">{head}<div class="qa-doc-body">{"".join(paragraphs)}</div></div>'


def documents_rows(docs: Sequence[Document], counts: dict[str, int]) -> list[list[Any]]:
    """Rows of the Documents tab table, sorted by doc_id."""
    return [
        [d.doc_id, d.title, d.date or "", d.region or "", d.source or "", counts.get(d.doc_id, 0)]
        for d in sorted(docs, key=lambda d: d.doc_id)
    ]


def region_choices(docs: Sequence[Document]) -> list[tuple[str, str]]:
    """Dropdown choices: "all" first, then each distinct region of the indexed documents.

    >>> d = lambda r: Document("x", "", "", None, None, r, (), "")
    >>> region_choices([d("宜昌市"), d(None), d("武汉市"), d("宜昌市")])
    [('全部 All', ''), ('宜昌市', '宜昌市'), ('武汉市', '武汉市')]
    """
    regions = sorted({d.region for d in docs if d.region})
    return [("全部 All", "")] + [(r, r) for r in regions]


def document_choices(docs: Sequence[Document]) -> list[tuple[str, str]]:
    return [
        (f"{d.title or d.doc_id} · {d.date or '—'} ({d.doc_id})", d.doc_id)
        for d in sorted(docs, key=lambda d: d.doc_id)
    ]


def index_summary(documents: int, chunks: int) -> str:
    """The line under the title saying what the answers are drawn from.

    >>> index_summary(3, 120)
    '<span class="qa-index-info">索引 Index: 3 份文档 documents · 120 段落 passages</span>'
    """
    if not documents:
        return '<span class="qa-index-info qa-status-err">索引为空 The index is empty — run `qa index`</span>'
    return f'<span class="qa-index-info">索引 Index: {documents} 份文档 documents · {chunks} 段落 passages</span>'


def header_html(summary: str) -> str:
    """Title, one line of instructions, and the index summary (already HTML)."""
    return (
        f'<div class="qa-header"><h1>{html.escape(TITLE)}</h1>'
        "<p>用中文或英文提问,答案附原文出处。Ask in Chinese or English; every answer cites the documents.</p>"
        f"{summary}</div>"
    )


def writes_enabled(settings: Settings) -> bool:
    """Whether the upload form is offered at all (an API key or --allow-writes)."""
    return bool(settings.api_key) or settings.allow_writes


def check_write_access(settings: Settings, entered_key: str | None) -> None:
    """Raise :class:`PermissionDenied` unless this upload is allowed.

    With an API key configured the key must be entered (compared in constant time);
    without one, ``allow_writes`` decides.
    """
    if settings.api_key:
        if not entered_key or not hmac.compare_digest(entered_key.strip().encode(), settings.api_key.encode()):
            raise PermissionDenied(
                "uploading needs the API key", hint="enter the key configured as QA_API_KEY / --api-key"
            )
        return
    if not settings.allow_writes:
        raise PermissionDenied(
            "uploads are disabled on this server", hint="restart with --allow-writes or configure an API key"
        )


def refusal_text(engine_text: str) -> str:
    """What the chat shows for a refusal: the bilingual notice, plus the engine's own
    words when they say more than "not found".

    >>> refusal_text("Not found in the documents.") == NOT_FOUND
    True
    >>> refusal_text("文件只涉及宜昌。").splitlines()[1]
    '文件只涉及宜昌。'
    """
    core = engine_text.strip().rstrip("。.!！ ").lower()
    if not core or core in NOT_FOUND.lower():
        return NOT_FOUND
    return f"{NOT_FOUND}\n{engine_text.strip()}"


_DROP_KINDS = {"figure": "a figure its cited passage does not hold", "place": "a place its cited passage does not name",
               "name": "a name its cited passage does not hold", "cites": "a citation of a passage not given",
               "no": "no citation"}


def generator_html(answer: Answer) -> str:
    """The badge under an answer when an LLM may write: who wrote it, and whether
    verification dropped any of its sentences (each named in the hover text).

    >>> from qa.types import DroppedClaim
    >>> generator_html(Answer("q", "a", False, (), (), "en", "q", generator="llm:qwen"))
    '\\n\\n<span class="qa-gen">LLM 生成 · written by llm:qwen, every sentence checked against its source</span>'
    >>> "qa-dropped" in generator_html(Answer("q", "a", False, (), (), "en", "q",
    ...     dropped=(DroppedClaim("It cost 5 yuan [1].", "figure 5 yuan not in the cited passages"),)))
    True
    """
    if answer.generator == "extractive":
        label = "原文摘录 · quoted from the documents" + (" (the LLM's answer could not be verified)"
                                                         if answer.dropped else "")
    else:
        label = f"LLM 生成 · written by {html.escape(answer.generator)}, every sentence checked against its source"
    out = f'\n\n<span class="qa-gen">{label}</span>'
    if answer.dropped:
        n = len(answer.dropped)
        # The hover names the kinds of failure only: a dropped sentence (and the
        # figure it invented) is not shown to the reader in any form.
        kinds: dict[str, int] = {}
        for d in answer.dropped:
            kind = _DROP_KINDS.get(d.reason.split(" ", 1)[0], "not supported by its citation")
            kinds[kind] = kinds.get(kind, 0) + 1
        why = html.escape("; ".join(f"{n} × {kind}" for kind, n in kinds.items()), quote=True)
        out += (f' <span class="qa-dropped" title="{why}">⚠ 已删除 {n} 句无依据内容 · {n} unsupported '
                f'sentence{"s" if n != 1 else ""} removed</span>')
    return out


def error_text(exc: QAError) -> str:
    return f"{exc.message} ({exc.hint})" if exc.hint else exc.message


# ---------------------------------------------------------------- styling & behaviour

CSS = """
.qa-header h1 { margin: 0.2em 0 0; font-size: 1.5em; }
.qa-header p { margin: 0.2em 0 0.3em; color: var(--body-text-color-subdued); }
.qa-index-info { font-size: 0.85em; color: var(--body-text-color-subdued); }
.qa-ref { color: var(--color-accent); font-weight: 600; font-size: 0.75em; margin-left: 1px; }
.qa-ref[title] { cursor: pointer; text-decoration: underline dotted; }
.qa-pending { color: var(--body-text-color-subdued); font-style: italic; }
.qa-error { color: #b91c1c; }
.qa-gen { font-size: 0.8em; color: var(--body-text-color-subdued); }
.qa-dropped { font-size: 0.8em; color: #92400e; background: #fef3c7; border-radius: 4px; padding: 0 4px; cursor: help; }
.qa-sources { font-size: 0.95em; line-height: 1.6; }
.qa-sources-head { font-weight: 600; font-size: 1.05em; margin: 0.2em 0 0.6em; }
.qa-empty { color: var(--body-text-color-subdued); padding: 1.2em 0.4em; }
.qa-refused { font-weight: 600; padding: 0.6em 0.8em; margin-bottom: 0.8em; border-radius: 8px;
  background: #fef3c7; color: #78350f; border: 1px solid #f59e0b; }
.qa-card { border: 1px solid var(--border-color-primary); border-radius: 10px; padding: 0.7em 0.9em;
  margin-bottom: 0.8em; background: var(--block-background-fill); }
.qa-card-title { font-weight: 600; }
.qa-card-title a.qa-open { color: var(--link-text-color, #2563eb); text-decoration: none; }
.qa-card-title a.qa-open:hover { text-decoration: underline; }
.qa-num { color: var(--color-accent); margin-right: 0.2em; }
.qa-meta { color: var(--body-text-color-subdued); font-size: 0.85em; margin: 0.15em 0 0.4em; }
.qa-meta code { font-size: 0.95em; }
.qa-passage { margin: 0.3em 0; padding: 0.4em 0.7em; border-left: 3px solid var(--border-color-accent, #f59e0b);
  white-space: pre-line; background: var(--background-fill-secondary); border-radius: 4px; }
.qa-sources mark, .qa-doc mark { background: #fde047; color: #111827; padding: 0 1px; border-radius: 2px; }
.qa-sources a.qa-open-link { font-size: 0.85em; color: var(--link-text-color, #2563eb); text-decoration: none; }
.qa-sources a.qa-open-link:hover { text-decoration: underline; }
.qa-foot { color: var(--body-text-color-subdued); font-size: 0.8em; margin-top: 0.3em; }
.qa-status-ok { color: #15803d; }
.qa-status-err { color: #b91c1c; }
#qa-doc-modal { position: fixed; inset: 0; z-index: 1000; background: rgba(15, 23, 42, 0.55);
  display: flex; align-items: center; justify-content: center; }
#qa-doc-modal[hidden] { display: none; }
.qa-modal-box { background: var(--body-background-fill, #fff); color: var(--body-text-color, #111);
  font-family: var(--font, sans-serif); font-size: var(--text-md, 15px);
  width: min(900px, 94vw); max-height: 88vh; display: flex; flex-direction: column;
  border-radius: 12px; box-shadow: 0 20px 50px rgba(0, 0, 0, 0.35); }
.qa-modal-bar { display: flex; justify-content: space-between; align-items: center;
  padding: 0.5em 1em; border-bottom: 1px solid var(--border-color-primary, #ddd); }
.qa-modal-close { font-size: 1em; cursor: pointer; border: none; background: none; color: inherit; }
.qa-modal-scroll { overflow-y: auto; padding: 0.4em 1.4em 1.2em; }
.qa-doc h3 { margin: 0.4em 0 0.1em; }
.qa-doc-body p { margin: 0.45em 0; line-height: 1.75; }
"""

# Runs once when the sources panel mounts. A click on [data-doc] asks the server for
# the escaped document HTML and shows it in a modal scrolled to the cited sentence.
# The <style> is injected from here so that the UI looks the same whether it is
# launched on its own or mounted into the API app (which passes no css).
SOURCES_JS = r"""
if (!document.getElementById('qa-style')) {
  const style = document.createElement('style');
  style.id = 'qa-style';
  style.textContent = props.qa_css || '';
  document.head.appendChild(style);
}
function qaModal() {
  let modal = document.getElementById('qa-doc-modal');
  if (modal) return modal;
  modal = document.createElement('div');
  modal.id = 'qa-doc-modal';
  modal.hidden = true;
  modal.setAttribute('role', 'dialog');
  modal.setAttribute('aria-modal', 'true');
  modal.innerHTML = '<div class="qa-modal-box"><div class="qa-modal-bar"><strong>原文 Document</strong>' +
    '<button type="button" class="qa-modal-close" aria-label="close">✕ 关闭 Close</button></div>' +
    '<div class="qa-modal-scroll"></div></div>';
  modal.addEventListener('click', (event) => {
    if (event.target === modal || event.target.closest('.qa-modal-close')) modal.hidden = true;
  });
  document.addEventListener('keydown', (event) => { if (event.key === 'Escape') modal.hidden = true; });
  document.body.appendChild(modal);
  return modal;
}
async function qaOpen(ref) {
  const modal = qaModal();
  const scroller = modal.querySelector('.qa-modal-scroll');
  scroller.textContent = '加载中… Loading…';
  modal.hidden = false;
  try {
    scroller.innerHTML = await server.open_document(ref.doc, ref.start, ref.end);
  } catch (err) {
    scroller.textContent = '无法打开文档 Cannot open the document: ' + err;
    return;
  }
  const target = scroller.querySelector('.qa-target');
  if (target) target.scrollIntoView({block: 'center'});
}
element.addEventListener('click', (event) => {
  const link = event.target.closest('[data-doc]');
  if (!link || !element.contains(link)) return;
  event.preventDefault();
  qaOpen({doc: link.dataset.doc, start: Number(link.dataset.start), end: Number(link.dataset.end)});
});
// [n] markers in the chat bubbles: the chat lives outside this component, so the
// listener sits on the document (once per page, however often this component loads).
if (!window.qaRefsBound) {
  window.qaRefsBound = true;
  // A marker's title is "原文 source: <doc_id>#<start>-<end>" (see chat_html).
  const fromChat = (event) => {
    const sup = event.target.closest && event.target.closest('#qa-chat .qa-ref[title]');
    const m = sup && /^原文 source: (.+)#(\d+)-(\d+)$/.exec(sup.getAttribute('title'));
    if (!m) return null;
    event.preventDefault();
    return {doc: m[1], start: Number(m[2]), end: Number(m[3])};
  };
  document.addEventListener('click', (event) => { const ref = fromChat(event); if (ref) qaOpen(ref); });
  document.addEventListener('keydown', (event) => {
    if (event.key !== 'Enter' && event.key !== ' ') return;
    const ref = fromChat(event);
    if (ref) qaOpen(ref);
  });
}
"""


# ---------------------------------------------------------------- the app


@dataclass
class _Handlers:
    """The event handlers of one UI, closed over one pipeline and its settings."""

    pipeline: "Pipeline"
    settings: Settings

    # ---- reads

    def _doc_text(self, doc_id: str) -> str | None:
        try:
            return self.pipeline.document(doc_id).text
        except QAError:
            return None

    def open_document(self, doc_id: str, start: Any, end: Any) -> str:
        """Server function behind a citation click: the document as escaped HTML."""
        try:
            doc = self.pipeline.document(str(doc_id))
            return render_document(doc, int(start), int(end))
        except (QAError, TypeError, ValueError) as exc:
            message = error_text(exc) if isinstance(exc, QAError) else f"bad document reference: {exc}"
            return f'<p class="qa-status-err">{html.escape(message)}</p>'

    def refresh(self):
        """Documents table and filter choices, from the live index."""
        import gradio as gr

        try:
            docs = self.pipeline.documents()
            counts = self.pipeline.chunk_counts()
        except QAError as exc:
            gr.Warning(f"索引不可用 Index unavailable: {error_text(exc)}")
            docs, counts = [], {}
        return (
            documents_rows(docs, counts),
            gr.Dropdown(choices=region_choices(docs)),
            gr.Dropdown(choices=document_choices(docs)),
            header_html(index_summary(len(docs), sum(counts.values()))),
        )

    # ---- chat

    def respond(
        self,
        question: str,
        chat: list[dict],
        exchanges: list[dict],
        region: str | None,
        date_from: str | None,
        date_to: str | None,
        doc_ids: list[str] | None,
    ) -> Iterator[tuple]:
        """Generator behind Enter / Send: echo, search, then stream the answer."""
        import gradio as gr

        question = (question or "").strip()
        chat = list(chat or [])
        exchanges = list(exchanges or [])
        if not question:
            gr.Warning("请输入问题 Please type a question")
            yield gr.skip(), gr.skip(), gr.skip(), gr.skip()
            return
        try:
            filters = build_filters(region, date_from, date_to, doc_ids)
        except InputError as exc:
            gr.Warning(f"筛选条件有误 Filter problem: {error_text(exc)}")
            yield gr.skip(), gr.skip(), gr.skip(), gr.skip()
            return
        # Every yield hands Gradio a new list: it diffs successive values of a streamed
        # output, so an earlier yielded value must not be mutated afterwards.
        chat = chat + [
            {"role": "user", "content": _md_escape(question)},
            {"role": "assistant", "content": f'<span class="qa-pending">{PENDING}</span>'},
        ]
        yield chat, "", gr.skip(), gr.skip()

        history = turns_from_exchanges(exchanges)
        if self.pipeline.generating():  # an LLM writes; show each sentence as it passes verification
            yield from self._respond_generated(question, chat, exchanges, history, filters)
            return
        try:
            answer = self.pipeline.ask(question, history=history, k=self.settings.k, filters=filters)
        except QAError as exc:
            yield _error_update(question, chat, exchanges, exc)
            return

        sources = render_sources(answer, self._doc_text, filters)
        body = refusal_text(answer.answer) if answer.refused else answer.answer
        prefixes = progressive_prefixes(body)
        for i, prefix in enumerate(prefixes):
            chat = chat[:-1] + [{"role": "assistant", "content": chat_html(prefix, answer.citations)}]
            last = i == len(prefixes) - 1
            if last:
                exchanges = exchanges + [
                    {
                        "question": question,
                        "answer": answer.answer,
                        "refused": answer.refused,
                        "citations": [c.to_json() for c in answer.citations],
                        "chat_index": len(chat) - 1,
                    }
                ]
            yield chat, gr.skip(), (sources if i == 0 else gr.skip()), (exchanges if last else gr.skip())
            if not last:
                time.sleep(STREAM_PAUSE_S)

    def _respond_generated(self, question: str, chat: list[dict], exchanges: list[dict], history: list[Turn],
                           filters: Filters | None) -> Iterator[tuple]:
        """The chat bubble grows by one verified sentence at a time; the last update adds
        the sources and the generator badge (which model wrote it, what was dropped)."""
        import gradio as gr

        from qa.generate import Final

        try:
            events = self.pipeline.ask_stream(question, history=history, k=self.settings.k, filters=filters)
            text = ""
            for event in events:
                if isinstance(event, Final):
                    answer = event.answer
                    break
                text += event.text
                chat = chat[:-1] + [{"role": "assistant", "content": chat_html(text)}]
                yield chat, gr.skip(), gr.skip(), gr.skip()
        except QAError as exc:
            yield _error_update(question, chat, exchanges, exc)
            return
        body = refusal_text(answer.answer) if answer.refused else answer.answer
        chat = chat[:-1] + [{"role": "assistant", "content": chat_html(body, answer.citations) + generator_html(answer)}]
        exchanges = exchanges + [{
            "question": question, "answer": answer.answer, "refused": answer.refused,
            "citations": [c.to_json() for c in answer.citations], "chat_index": len(chat) - 1,
            "generator": answer.generator,
        }]
        yield chat, gr.skip(), render_sources(answer, self._doc_text, filters), exchanges

    def vote(self, exchanges: list[dict], data: "gr.LikeData") -> None:
        """Thumbs up/down on an answer → one row in the feedback database."""
        import gradio as gr

        from qa.ui.feedback import FeedbackStore, vote_from_like

        index = data.index[0] if isinstance(data.index, (list, tuple)) else data.index
        exchange = next((ex for ex in exchanges or [] if ex.get("chat_index") == index), None)
        if exchange is None or not exchange.get("answer"):
            gr.Info("这条消息不是答案 Only answers can be rated")
            return
        vote = vote_from_like(data.liked)
        if vote is None:
            return  # vote withdrawn: keep the earlier row (exports are append-only)
        FeedbackStore(self.settings.feedback_path()).record(
            exchange["question"], exchange["answer"], exchange["citations"], vote
        )
        gr.Info("已记录反馈,谢谢 Feedback saved, thank you")

    # ---- uploads

    def upload(self, files: list[str] | None, key: str | None, progress=None):
        import gradio as gr

        if not files:
            return '<span class="qa-status-err">请选择文件 Choose one or more files first</span>', *self.refresh()
        try:
            check_write_access(self.settings, key)
        except PermissionDenied as exc:
            return f'<span class="qa-status-err">{html.escape(error_text(exc))}</span>', *self.refresh()
        limit = int(self.settings.max_upload_mb * 1024 * 1024)
        lines = []
        tracker = progress or gr.Progress()
        for i, path in enumerate(files):
            name = Path(path).name
            tracker((i, len(files)), desc=f"索引 Indexing {name}")
            try:
                size = Path(path).stat().st_size
                if size > limit:
                    raise InputError(
                        f"{name} is {size / 1e6:.1f} MB; the limit is {self.settings.max_upload_mb:g} MB",
                        hint="split the document or raise --max-upload-mb",
                    )
                stored, report = self.pipeline.add_document(name, Path(path).read_bytes())
                lines.append(
                    f'<li class="qa-status-ok">✔ {html.escape(stored)}: 已索引 indexed '
                    f"({report.chunks} chunks in the index)</li>"
                )
            except QAError as exc:
                lines.append(f'<li class="qa-status-err">✘ {html.escape(name)}: 未接受 rejected — {html.escape(error_text(exc))}</li>')
        tracker((len(files), len(files)), desc="完成 Done")
        return f"<ul>{''.join(lines)}</ul>", *self.refresh()


def build_ui(pipeline: "Pipeline", settings: Settings) -> "gr.Blocks":
    """The whole chat UI as a ``gr.Blocks`` (not launched): chat + sources, filters,
    documents tab with uploads, and feedback. ``qa serve`` mounts it at ``/``.
    """
    import gradio as gr

    h = _Handlers(pipeline, settings)
    with gr.Blocks(title=TITLE, analytics_enabled=False, fill_width=True) as demo:
        exchanges = gr.State([])
        info = gr.HTML(header_html(""), elem_id="qa-index-info")
        with gr.Tabs():
            with gr.Tab("问答 Ask", id="ask"):
                with gr.Row(equal_height=False):
                    with gr.Column(scale=5, min_width=360):
                        chatbot = gr.Chatbot(
                            label="对话 Conversation",
                            elem_id="qa-chat",
                            height=420,
                            feedback_options=("Like", "Dislike"),
                            buttons=["copy"],
                            latex_delimiters=[],  # "$" in a scraped page is money, not math
                            placeholder="有问题?请在下方输入。Ask a question below.",
                        )
                        with gr.Row():
                            question = gr.Textbox(
                                label="提问 Ask",
                                placeholder="例如 e.g. 宜昌打造多少分钟急救圈? — 按回车发送 Enter to send",
                                elem_id="qa-question",
                                scale=6,
                                max_lines=4,
                                submit_btn=False,
                            )
                        with gr.Row():
                            send = gr.Button("发送 Send", variant="primary", elem_id="qa-send")
                            clear = gr.Button("清空对话 Clear", elem_id="qa-clear")
                        gr.Examples(
                            examples=[[q] for q in EXAMPLES], inputs=[question], label="示例问题 Example questions"
                        )
                        with gr.Accordion("筛选 Filters (用于下一个问题 apply to the next question)", open=False):
                            with gr.Row():
                                region = gr.Dropdown(
                                    label="地区 Region", choices=[("全部 All", "")], value="", elem_id="qa-region"
                                )
                                date_from = gr.Textbox(label="起始日期 From", placeholder="YYYY-MM-DD", elem_id="qa-date-from")
                                date_to = gr.Textbox(label="截止日期 To", placeholder="YYYY-MM-DD", elem_id="qa-date-to")
                            docs = gr.Dropdown(
                                label="文档 Documents (可多选 multi-select; 空 = 全部 empty = all)",
                                choices=[],
                                multiselect=True,
                                elem_id="qa-docs",
                            )
                    with gr.Column(scale=4, min_width=320):

                        def open_document(args: list) -> str:
                            # Gradio hands a server function the JS call's arguments as one
                            # list: server.open_document(doc_id, start, end) → [doc_id, start, end].
                            if not isinstance(args, (list, tuple)) or len(args) != 3:
                                return '<p class="qa-status-err">bad document reference</p>'
                            return h.open_document(*args)

                        sources = gr.HTML(
                            EMPTY_SOURCES,
                            elem_id="qa-sources",
                            js_on_load=SOURCES_JS,
                            server_functions=[open_document],
                            qa_css=CSS,
                            max_height=720,
                        )
            with gr.Tab("文档 Documents", id="documents"):
                table = gr.Dataframe(
                    headers=["doc_id", "标题 Title", "日期 Date", "地区 Region", "来源 Source", "段落 Chunks"],
                    datatype=["str", "str", "str", "str", "str", "number"],
                    interactive=False,
                    elem_id="qa-documents",
                    label="已索引文档 Indexed documents",
                )
                refresh = gr.Button("刷新 Refresh", size="sm")
                with gr.Group(visible=writes_enabled(settings)):
                    gr.Markdown("#### 上传文档 Upload documents (.txt .md .html .pdf .docx)")
                    files = gr.File(
                        label="文件 Files", file_count="multiple", type="filepath", elem_id="qa-upload"
                    )
                    key = gr.Textbox(
                        label="API 密钥 API key", type="password", visible=bool(settings.api_key), elem_id="qa-key"
                    )
                    upload = gr.Button("上传并索引 Upload & index", variant="primary", elem_id="qa-upload-btn")
                    status = gr.HTML(elem_id="qa-upload-status")
                if not writes_enabled(settings):
                    gr.Markdown(
                        "上传已关闭:启动时加 `--allow-writes` 或配置 API 密钥 (`QA_API_KEY`)。  \n"
                        "Uploads are off: start with `--allow-writes` or configure an API key (`QA_API_KEY`)."
                    )

        ask_inputs = [question, chatbot, exchanges, region, date_from, date_to, docs]
        ask_outputs = [chatbot, question, sources, exchanges]
        # Several staff may ask at once (answers take ~0.1 s; the embedder serialises itself).
        asked = [
            question.submit(h.respond, ask_inputs, ask_outputs, show_progress="hidden", concurrency_limit=4),
            send.click(h.respond, ask_inputs, ask_outputs, show_progress="hidden", concurrency_limit=4),
        ]
        clear.click(
            lambda: ([], "", EMPTY_SOURCES, []), None, [chatbot, question, sources, exchanges],
            queue=False, cancels=asked,
        )
        # The chat's own trash icon clears the messages; forget the history with them.
        chatbot.clear(lambda: (EMPTY_SOURCES, []), None, [sources, exchanges], queue=False, cancels=asked)

        def on_like(state, data):
            h.vote(state, data)

        # Gradio finds the like-event payload by the parameter's type; this module uses
        # postponed (string) annotations, so give the real class explicitly.
        on_like.__annotations__ = {"state": list, "data": gr.LikeData}
        chatbot.like(on_like, [exchanges], None)
        refresh_outputs = [table, region, docs, info]
        demo.load(h.refresh, None, refresh_outputs)
        refresh.click(h.refresh, None, refresh_outputs)
        if writes_enabled(settings):

            def do_upload(paths, entered_key, progress=gr.Progress()):
                return h.upload(paths, entered_key, progress)

            upload.click(do_upload, [files, key], [status, *refresh_outputs])
    return demo


def launch(settings: Settings) -> int:
    """``qa ui``: serve the chat UI on ``settings.host:settings.port`` until stopped."""
    from qa.pipeline import Pipeline

    pipeline = Pipeline(settings)
    try:
        # Load the index, the embedding model and the answer engine's corpus statistics
        # now, so that the first staff question is as fast as the next ones.
        pipeline.ask("预热 warm-up")
    except QAError as exc:
        print(f"warning: {error_text(exc)}")
    demo = build_ui(pipeline, settings)
    print(f"chat UI on http://{settings.host}:{settings.port}/")
    demo.launch(
        server_name=settings.host,
        server_port=settings.port,
        show_error=True,
        max_file_size=int(settings.max_upload_mb * 1024 * 1024),
        footer_links=["settings"],
        quiet=True,
    )
    return 0


def _error_update(question: str, chat: list[dict], exchanges: list[dict], exc: QAError) -> tuple:
    """The chat update for a failed question: the error in the bubble, an exchange with no answer."""
    import gradio as gr

    error = f'<span class="qa-error">出错 Error: {_md_escape(error_text(exc))}</span>'
    chat = chat[:-1] + [{"role": "assistant", "content": error}]
    exchanges = exchanges + [{"question": question, "answer": None, "citations": [], "chat_index": len(chat) - 1}]
    return chat, gr.skip(), gr.skip(), exchanges
