"""Hostile uploads through a real HTTP server (uvicorn on a loopback port): long
Chinese and ASCII names, a zip bomb, a PDF bomb; never a 500, nothing left behind."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import requests
from apihelpers import uvicorn_thread
from conftest import API_KEY

from qa.api import create_app
from qa.uploads import MAX_NAME_BYTES

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit"))
from test_uploads import docx_bomb, pdf_bomb  # noqa: E402  (the bomb builders live with the unit tests)

pytestmark = pytest.mark.server

DOC = "黄石市应急管理通报\n来源:东楚晚报 2022-05-06\n\n黄石建成森林消防驿站27个,覆盖全部乡镇。\n".encode()
# 86 Chinese characters: 258 bytes of UTF-8, over the 255 a Linux file name may have.
LONG_TITLE = ("黄石市关于进一步加强森林防灭火应急管理能力建设推进基层消防驿站全覆盖的实施意见及配套措施的通知"
              "全文发布稿最终审定版本黄石市应急管理局办公室印发二〇二二年五月六日星期五上午九时")[:86]


@pytest.fixture
def server(pipeline):
    app = create_app(pipeline.settings.model_copy(update={"api_key": API_KEY}), pipeline, mount_ui=False)
    with uvicorn_thread(app) as base:
        yield base


def upload(base: str, name: str, content: bytes) -> requests.Response:
    return requests.post(f"{base}/v1/documents", files={"file": (name, content)},
                         headers={"X-API-Key": API_KEY}, timeout=120)


def leftovers(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if p.name.startswith(".") and p.name.endswith(".upload")]


def test_long_chinese_and_ascii_names_are_stored_under_usable_names(server, pipeline):
    assert len(LONG_TITLE) == 86 and len(LONG_TITLE.encode()) > 250
    corpus = pipeline.corpus_dir()
    stored = []
    for name in (LONG_TITLE + ".txt", "r" * 300 + ".txt", LONG_TITLE[:80] + "二.txt"):
        response = upload(server, name, DOC + name.encode())
        assert response.status_code == 201, response.text
        doc_id = response.json()["doc_id"]
        assert doc_id.endswith(".txt") and len(doc_id.encode("utf-8")) <= MAX_NAME_BYTES
        assert (corpus / doc_id).is_file()
        fetched = requests.get(f"{server}/v1/documents/{doc_id}", timeout=30)
        assert fetched.status_code == 200 and fetched.json()["doc_id"] == doc_id
        stored.append(doc_id)
    assert len(set(stored)) == 3  # two long names with the same start stay two documents
    listed = {d["doc_id"] for d in requests.get(f"{server}/v1/documents", timeout=30).json()["documents"]}
    assert set(stored) <= listed
    assert not leftovers(corpus)
    # The same long name again is the same document: a conflict unless replace=true.
    again = upload(server, LONG_TITLE + ".txt", DOC)
    assert again.status_code == 409 and again.json()["error"]["code"] == "conflict"


@pytest.mark.parametrize("name", ["..", "???", "/", "   "])
def test_unusable_names_are_one_400_with_a_hint(server, name):
    response = upload(server, name, DOC)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_input" and "report.txt" in error["message"]


@pytest.mark.parametrize("suffix,build", [(".docx", docx_bomb), (".pdf", pdf_bomb)])
def test_bombs_are_refused_with_the_cap_named(server, pipeline, suffix, build):
    before = sorted(p.name for p in pipeline.corpus_dir().iterdir())
    response = upload(server, f"bomb{suffix}", build(256 << 20))
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "unpack_limit" and "cap on unpacked bytes" in error["message"], error
    assert sorted(p.name for p in pipeline.corpus_dir().iterdir()) == before  # nothing stored
