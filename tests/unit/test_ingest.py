"""qa.ingest: decoding, per-format reading, documents and folders (all files in tmp_path)."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pytest

from qa.errors import IngestError, InputError, NotFoundError
from qa.ingest import (
    SUPPORTED_SUFFIXES,
    IngestResult,
    Skipped,
    content_hash,
    decode_bytes,
    iter_corpus_files,
    load_document,
    load_folder,
    read_text,
)

SIMPLIFIED = "宜昌市推进院前急救体系建设,打造中心城区“10分钟”急救圈。二级以上医疗机构建设P2实验室。\n"
TRADITIONAL = "吉首市、瀘溪縣和鳳凰縣要堅決貫徹落實疫情防控各項措施,確保人民群眾生命財產安全。\n"


def _pdf_with_text(text: str) -> bytes:
    """A minimal one-page PDF whose content stream draws ``text`` (ASCII) in Helvetica."""
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode("ascii")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
        b"/Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def _blank_pdf(password: str | None = None) -> bytes:
    import pypdf

    writer = pypdf.PdfWriter()
    writer.add_blank_page(width=200, height=200)
    if password:
        writer.encrypt(user_password=password, algorithm="RC4-128")
    buf = io.BytesIO()
    writer.write(buf)
    return buf.getvalue()


def _docx(path: Path) -> None:
    import docx

    document = docx.Document()
    document.add_paragraph("宜昌打造急救圈")
    document.add_paragraph("正文第一段。")
    table = document.add_table(rows=2, cols=2)
    table.cell(0, 0).text = "城区"
    table.cell(0, 1).text = "10分钟"
    table.cell(1, 0).text = "县市"
    table.cell(1, 1).text = "30分钟"
    document.add_paragraph("表格之后的段落。")
    document.save(str(path))


# --- decode_bytes ----------------------------------------------------------------
@pytest.mark.parametrize(
    "encoding, text",
    [
        ("utf-8", SIMPLIFIED),
        ("utf-8-sig", SIMPLIFIED),
        ("utf-16", SIMPLIFIED),
        ("gb18030", SIMPLIFIED),
        ("gbk", SIMPLIFIED),
        ("gb2312", SIMPLIFIED),
        ("big5", TRADITIONAL),
        ("utf-8", TRADITIONAL),
        ("gb18030", TRADITIONAL),
    ],
)
def test_decodes_common_chinese_encodings(tmp_path: Path, encoding: str, text: str):
    data = text.encode(encoding)
    assert decode_bytes(data) == text
    path = tmp_path / "doc.txt"
    path.write_bytes(data)
    assert read_text(path) == text


def test_short_gbk_that_is_also_valid_utf8():
    # GBK 一 is D2 BB, which UTF-8 reads as Cyrillic "һ".
    assert "一".encode("gbk").decode("utf-8") == "һ"
    assert decode_bytes("一".encode("gbk")) == "一"


def test_ascii_and_line_endings_are_kept():
    assert decode_bytes(b"line one\r\nline two\r\n") == "line one\r\nline two\r\n"


@pytest.mark.parametrize("data", [b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", b"abc\x00def"])
def test_nul_bytes_are_binary(data: bytes):
    with pytest.raises(IngestError, match="binary"):
        decode_bytes(data)


def test_control_characters_are_binary():
    with pytest.raises(IngestError, match="binary"):
        decode_bytes(bytes(range(1, 9)) * 20)


def test_undecodable_bytes():
    with pytest.raises(IngestError, match="undecodable"):
        decode_bytes(b"\x80\xff" * 10)  # invalid in UTF-8, GB18030 and Big5 alike


def test_bad_utf8_after_bom():
    with pytest.raises(IngestError, match="byte-order mark"):
        decode_bytes(b"\xef\xbb\xbf\xff\xff")


def test_content_hash_is_sha256_of_bytes():
    assert content_hash(b"abc") == hashlib.sha256(b"abc").hexdigest()
    assert content_hash(b"abc") != content_hash(b"abd")


# --- read_text by format ---------------------------------------------------------
def test_html_visible_text(tmp_path: Path):
    path = tmp_path / "page.html"
    path.write_text(
        "<html><head><title>不可见标题</title><style>p {color: red}</style>"
        "<script>var x = '脚本';</script></head><body>"
        "<h1>宜昌打造急救圈</h1>\n<p>打造中心城区&ldquo;10分钟&rdquo;\n急救圈&amp;转运。<br>第二行</p>"
        "<table><tr><td>城区</td><td>10分钟</td></tr></table><!-- 注释 --></body></html>",
        encoding="gbk",
    )
    text = read_text(path)
    assert text.splitlines()[0] == "宜昌打造急救圈"
    assert "打造中心城区“10分钟”急救圈&转运。\n第二行" in text  # entities; no space at a CJK line break
    assert "城区 10分钟" in text
    for hidden in ("不可见标题", "color", "脚本", "注释"):
        assert hidden not in text


def test_pdf_text(tmp_path: Path):
    path = tmp_path / "a.pdf"
    path.write_bytes(_pdf_with_text("Yichang emergency care within 10 minutes"))
    assert "Yichang emergency care within 10 minutes" in read_text(path)


@pytest.mark.parametrize(
    "data, reason",
    [
        (b"%PDF-1.4\nthis is not really a pdf", "corrupt"),
        (_blank_pdf(), "no extractable text"),
        (_blank_pdf(password="secret"), "encrypted"),
    ],
    ids=["corrupt", "scanned", "encrypted"],
)
def test_unreadable_pdfs(tmp_path: Path, data: bytes, reason: str):
    path = tmp_path / "bad.pdf"
    path.write_bytes(data)
    with pytest.raises(IngestError, match=reason):
        read_text(path)


def test_docx_paragraphs_and_tables_in_order(tmp_path: Path):
    path = tmp_path / "a.docx"
    _docx(path)
    text = read_text(path)
    assert text.index("宜昌打造急救圈") < text.index("城区\t10分钟") < text.index("县市\t30分钟")
    assert text.index("县市\t30分钟") < text.index("表格之后的段落。")


def test_corrupt_docx(tmp_path: Path):
    path = tmp_path / "bad.docx"
    path.write_bytes(b"PK\x03\x04 not a real zip archive")
    with pytest.raises(IngestError, match="corrupt or unreadable DOCX"):
        read_text(path)


@pytest.mark.parametrize("content", [b"", b"  \r\n\t\n", "\u3000\n".encode("utf-8")])
def test_empty_files(tmp_path: Path, content: bytes):
    path = tmp_path / "empty.md"
    path.write_bytes(content)
    with pytest.raises(IngestError, match="empty file"):
        read_text(path)


def test_unsupported_suffix(tmp_path: Path):
    path = tmp_path / "a.csv"
    path.write_text("a,b", encoding="utf-8")
    with pytest.raises(IngestError, match="unsupported file type '.csv'"):
        read_text(path)


def test_missing_file_is_an_ingest_error(tmp_path: Path):
    with pytest.raises(IngestError, match="cannot read"):
        read_text(tmp_path / "nope.txt")


# --- documents and folders -------------------------------------------------------
def test_load_document(tmp_path: Path):
    root = tmp_path / "corpus"
    (root / "sub").mkdir(parents=True)
    data = ("宜昌打造急救圈\r\n来源:三峡日报 日期:2022-01-14\r\n\r\n" + SIMPLIFIED).encode("gb18030")
    path = root / "sub" / "a.md"
    path.write_bytes(data)
    doc = load_document(path, root)
    assert doc.doc_id == "sub/a.md"
    assert doc.text == data.decode("gb18030")  # exactly as decoded, \r\n kept
    assert (doc.title, doc.date, doc.source, doc.region) == ("宜昌打造急救圈", "2022-01-14", "三峡日报", "宜昌市")
    assert doc.content_hash == hashlib.sha256(data).hexdigest()
    assert doc.sections and doc.sections[-1].end == len(doc.text)


def test_load_document_outside_root(tmp_path: Path):
    path = tmp_path / "a.txt"
    path.write_text(SIMPLIFIED, encoding="utf-8")
    with pytest.raises(InputError, match="not inside"):
        load_document(path, tmp_path / "elsewhere")


def _tree(root: Path) -> None:
    files = {
        "b.txt": SIMPLIFIED,
        "A.TXT": SIMPLIFIED,
        "sub/c.md": SIMPLIFIED,
        "sub/deeper/d.html": f"<p>{SIMPLIFIED}</p>",
        "sub/notes.csv": "x,y",
        ".hidden.txt": SIMPLIFIED,
        ".git/e.txt": SIMPLIFIED,
        "sub/.cache/f.txt": SIMPLIFIED,
        "~$lock.docx": "x",
    }
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def test_iter_corpus_files(tmp_path: Path):
    _tree(tmp_path)
    found = [p.relative_to(tmp_path).as_posix() for p in iter_corpus_files(tmp_path)]
    assert found == ["A.TXT", "b.txt", "sub/c.md", "sub/deeper/d.html"]
    assert all(Path(name).suffix.lower() in SUPPORTED_SUFFIXES for name in found)


def test_load_folder_skips_bad_files_with_one_warning_each(tmp_path: Path):
    _tree(tmp_path)
    (tmp_path / "bin.txt").write_bytes(b"\x00\x01\x02binary")
    (tmp_path / "empty.txt").write_bytes(b"")
    (tmp_path / "sub" / "broken.pdf").write_bytes(b"%PDF-1.4 garbage")
    (tmp_path / "sub" / "broken.docx").write_bytes(b"not a zip")
    warnings: list[str] = []
    result = load_folder(tmp_path, warn=warnings.append)
    assert isinstance(result, IngestResult)
    assert [d.doc_id for d in result.documents] == ["A.TXT", "b.txt", "sub/c.md", "sub/deeper/d.html"]
    assert [s.path for s in result.skipped] == ["bin.txt", "empty.txt", "sub/broken.docx", "sub/broken.pdf"]
    assert all(isinstance(s, Skipped) and s.reason for s in result.skipped)
    assert "binary" in result.skipped[0].reason
    assert result.skipped[1].reason.startswith("empty file")
    assert len(warnings) == 4
    for skipped, line in zip(result.skipped, warnings):
        assert line == f"skipped {skipped.path}: {skipped.reason}"
        assert "\n" not in line


def test_load_folder_without_warn_still_skips(tmp_path: Path):
    (tmp_path / "bad.txt").write_bytes(b"\x00")
    result = load_folder(tmp_path)
    assert result.documents == () and [s.path for s in result.skipped] == ["bad.txt"]


def test_empty_folder_is_not_an_error(tmp_path: Path):
    assert load_folder(tmp_path) == IngestResult(documents=(), skipped=())


def test_missing_folder(tmp_path: Path):
    missing = tmp_path / "nope"
    with pytest.raises(NotFoundError) as info:
        load_folder(missing)
    assert str(missing) in str(info.value) and "existing folder" in str(info.value)


def test_folder_that_is_a_file(tmp_path: Path):
    path = tmp_path / "a.txt"
    path.write_text(SIMPLIFIED, encoding="utf-8")
    with pytest.raises(InputError, match="is a file"):
        load_folder(path)
