"""qa/uploads.py and qa/unpack.py: stored names in bytes, in-memory checks, decompression caps.

The bombs are built in memory (1 GiB of zeros deflates to about 1 MB) and parsed in a
child process, which reports its own peak resident memory (VmHWM, Linux), so the
figure is the parse's own and not that of the test process or an earlier child.
"""

from __future__ import annotations

import doctest
import io
import json
import os
import subprocess
import sys
import zipfile
import zlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import qa.unpack
import qa.uploads
from qa.errors import InputError, UnpackLimitError
from qa.ingest import load_folder
from qa.unpack import UnpackLimits, check_zip
from qa.uploads import MAX_NAME_BYTES, NAME_MAX, check_readable, derived_name, safe_filename

GIB = 1 << 30
REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("module", [qa.uploads, qa.unpack])
def test_docstring_examples_hold(module):
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0


# ---------------------------------------------------------------- names


def test_a_long_chinese_name_is_cut_in_bytes_and_keeps_its_type():
    title = "关于进一步加强和改进新时代城市基层党建工作推进市域治理现代化书写新时代优秀答卷的实施意见及配套措施的通知全文发布稿最终版"
    title = (title * 2)[:86]
    assert len((title + ".txt").encode()) > 250
    name = safe_filename(title + ".txt")
    assert name.endswith(".txt") and len(name.encode("utf-8")) <= MAX_NAME_BYTES
    assert name.startswith(title[:60])  # as much of the title as fits, whole characters only
    name.encode("utf-8").decode("utf-8")


def test_a_300_character_ascii_name_keeps_its_extension():
    name = safe_filename("x" * 300 + ".pdf")
    assert name.endswith(".pdf") and len(name.encode()) == MAX_NAME_BYTES


def test_two_long_names_with_the_same_start_do_not_collide():
    a = safe_filename("宜昌" * 100 + "一.txt")
    b = safe_filename("宜昌" * 100 + "二.txt")
    assert a != b and a.endswith(".txt") and b.endswith(".txt")
    assert safe_filename("宜昌" * 100 + "一.txt") == a  # the same name always maps to the same file


def test_short_names_are_unchanged():
    assert safe_filename("宜昌市报告.docx") == "宜昌市报告.docx"
    assert safe_filename("a" * MAX_NAME_BYTES) == "a" * MAX_NAME_BYTES


@pytest.mark.parametrize("name", ["", "..", "/", "...", "  ", "\\\\", "._ "])
def test_unusable_names_are_one_input_error_with_a_hint(name):
    with pytest.raises(InputError) as err:
        safe_filename(name)
    assert err.value.http_status == 400 and "report.txt" in (err.value.hint or "")


@settings(max_examples=300, deadline=None)
@given(st.text(min_size=1, max_size=400))
def test_every_stored_name_and_its_temporaries_can_be_created(tmp_path_factory, name):
    try:
        stored = safe_filename(name)
    except InputError:
        return
    assert "/" not in stored and "\\" not in stored and not stored.startswith(".")
    assert len(stored.encode("utf-8")) <= MAX_NAME_BYTES
    hidden = derived_name(stored, "upload")
    assert len(hidden.encode("utf-8")) <= NAME_MAX
    folder = tmp_path_factory.mktemp("names")
    (folder / stored).write_bytes(b"x")  # the file system accepts both
    (folder / hidden).write_bytes(b"x")


# ---------------------------------------------------------------- in-memory checks


def small_docx(text: str = "宜昌打造中心城区10分钟急救圈。") -> bytes:
    import docx

    document = docx.Document()
    document.add_paragraph(text)
    buf = io.BytesIO()
    document.save(buf)
    return buf.getvalue()


def pdf_bytes(content: bytes, pages: int = 1) -> bytes:
    """A well-formed PDF whose pages share one Flate-compressed content stream."""
    stream = zlib.compress(content, 9) if isinstance(content, bytes) else content
    return _pdf_with_stream(stream, pages)


def _pdf_with_stream(stream: bytes, pages: int) -> bytes:
    kids = " ".join(f"{5 + i} 0 R" for i in range(pages))
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>",
               f"<< /Type /Pages /Kids [{kids}] /Count {pages} >>".encode(),
               b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
               b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(stream) + stream + b"\nendstream"]
    objects += [b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
                b"/Resources << /Font << /F1 3 0 R >> >> >>"] * pages
    out, offsets = bytearray(b"%PDF-1.4\n"), []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


TEXT_PAGE = b"BT /F1 12 Tf 72 712 Td (Yichang emergency care within 10 minutes) Tj ET\n"


def test_readable_uploads_pass_without_touching_the_disk(monkeypatch):
    import pathlib
    import tempfile

    def no_disk(*args, **kwargs):
        raise AssertionError("check_readable wrote to disk")

    for name in ("mkstemp", "mkdtemp", "TemporaryDirectory", "NamedTemporaryFile", "TemporaryFile"):
        monkeypatch.setattr(tempfile, name, no_disk)
    monkeypatch.setattr(pathlib.Path, "write_bytes", no_disk)
    monkeypatch.setattr(pathlib.Path, "open", no_disk)
    check_readable("a.txt", "宜昌打造10分钟急救圈。".encode("gb18030"))
    check_readable("b.docx", small_docx())
    check_readable("c.pdf", pdf_bytes(TEXT_PAGE))
    with pytest.raises(InputError, match="cannot be indexed"):
        check_readable("d.pdf", b"%PDF-1.4 not really")


def test_a_docx_with_too_many_entries_is_refused():
    source = zipfile.ZipFile(io.BytesIO(small_docx()))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        for info in source.infolist():
            archive.writestr(info, source.read(info))
        for i in range(qa.unpack.LIMITS.max_entries):
            archive.writestr(f"extra/item{i}.xml", b"<a/>")
    with pytest.raises(UnpackLimitError, match="entries, over the cap of 2000") as err:
        check_readable("many.docx", buf.getvalue())
    assert err.value.http_status == 400 and err.value.code == "unpack_limit"


def test_an_archive_that_unpacks_past_the_cap_while_streaming_is_refused():
    # Honest headers, but the total is only known by adding up: checked entry by entry.
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as archive:
        for i in range(3):
            archive.writestr(f"part{i}.bin", os.urandom(1 << 20))
    limits = UnpackLimits(max_unpacked_bytes=(2 << 20) + 10)
    with pytest.raises(UnpackLimitError, match="cap on unpacked bytes"):
        check_zip(buf.getvalue(), limits)
    check_zip(buf.getvalue(), UnpackLimits(max_unpacked_bytes=3 << 20))  # at the cap is fine


def test_a_pdf_over_the_page_cap_is_refused():
    pages = qa.unpack.LIMITS.max_pages + 1
    with pytest.raises(UnpackLimitError, match=f"{pages} pages, over the cap of 2000"):
        check_readable("long.pdf", pdf_bytes(TEXT_PAGE, pages=pages))


# ---------------------------------------------------------------- bombs, with a memory check


def docx_bomb(zeros: int = GIB) -> bytes:
    """A well-formed .docx whose document links an "image" of ``zeros`` zero bytes."""
    source = zipfile.ZipFile(io.BytesIO(small_docx()))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        for info in source.infolist():
            data = source.read(info)
            if info.filename == "word/_rels/document.xml.rels":
                data = data.replace(b"</Relationships>", b'<Relationship Id="rIdBomb" Type="http://schemas.'
                                    b'openxmlformats.org/officeDocument/2006/relationships/image" '
                                    b'Target="media/image1.png"/></Relationships>')
            archive.writestr(info, data)
        chunk = bytes(1 << 20)
        with archive.open("word/media/image1.png", "w", force_zip64=True) as member:
            for _ in range(zeros // len(chunk)):
                member.write(chunk)
    return buf.getvalue()


def pdf_bomb(blanks: int = GIB) -> bytes:
    """A one-page PDF whose content stream inflates to ``blanks`` bytes of spaces."""
    packer = zlib.compressobj(9)
    parts = [packer.compress(TEXT_PAGE)]
    chunk = b" " * (1 << 20)
    parts += [packer.compress(chunk) for _ in range(blanks // len(chunk))]
    parts.append(packer.flush())
    return _pdf_with_stream(b"".join(parts), 1)


_CHILD = """
import json, sys
from qa.errors import QAError
from qa.uploads import check_readable
path = sys.argv[1]
try:
    check_readable(path.rsplit("/", 1)[-1], open(path, "rb").read())
    outcome = {"ok": True}
except QAError as exc:
    outcome = {"ok": False, "code": exc.code, "status": exc.http_status, "message": str(exc)}
# VmHWM: the peak resident size of this process's own memory. (ru_maxrss would not
# do: Linux carries the parent's peak over the exec into the child's figure.)
with open("/proc/self/status") as status:
    hwm_kib = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
outcome["peak_rss_mb"] = hwm_kib / 1024
print(json.dumps(outcome))
"""


def check_in_child(path: Path) -> dict:
    done = subprocess.run([sys.executable, "-c", _CHILD, str(path)], capture_output=True, text=True, cwd=REPO,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


# The child's own imports (python-docx, pypdf, lxml, qa) take about 30 MB; parsing the
# bombs unchecked would take over 1 GB (the unpacked gigabyte itself). Measured with
# the caps: 28 MB for the .docx (refused on its declared sizes, nothing unpacked) and
# 163 MB for the .pdf (pypdf inflates up to the 64 MB cap, then stops). 400 MB leaves
# room for a noisier allocator without letting an uncapped parse pass.
PEAK_RSS_BAR_MB = 400


@pytest.mark.parametrize("suffix,build", [(".docx", docx_bomb), (".pdf", pdf_bomb)])
def test_bombs_are_refused_with_the_cap_named_and_memory_flat(tmp_path, suffix, build):
    bomb = tmp_path / f"bomb{suffix}"
    bomb.write_bytes(build())
    assert bomb.stat().st_size < 3 << 20  # a small upload, far under the 20 MB limit
    outcome = check_in_child(bomb)
    assert outcome["ok"] is False and outcome["code"] == "unpack_limit" and outcome["status"] == 400, outcome
    assert "cap on unpacked bytes" in outcome["message"] and "64 MB" in outcome["message"]
    assert outcome["peak_rss_mb"] < PEAK_RSS_BAR_MB, outcome
    # The same checks let a normal file of the same type through, in a child too.
    normal = tmp_path / f"normal{suffix}"
    normal.write_bytes(small_docx() if suffix == ".docx" else pdf_bytes(TEXT_PAGE))
    assert check_in_child(normal)["ok"] is True


def test_a_bomb_in_a_corpus_folder_is_skipped_with_its_reason(tmp_path):
    (tmp_path / "ok.txt").write_text("宜昌打造10分钟急救圈。", encoding="utf-8")
    (tmp_path / "bomb.docx").write_bytes(docx_bomb(256 << 20))
    result = load_folder(tmp_path)
    assert [d.doc_id for d in result.documents] == ["ok.txt"]
    assert [s.path for s in result.skipped] == ["bomb.docx"] and "cap on unpacked bytes" in result.skipped[0].reason
