"""The `qa` command in-process: exit codes, one-line errors, JSON lines on stdin."""

import io
import json

import pytest

from qa.cli import main


@pytest.fixture
def env(tmp_path, monkeypatch, tiny_corpus):
    monkeypatch.setenv("QA_INDEX_DIR", str(tmp_path / "index"))
    monkeypatch.setenv("QA_EMBEDDER", "hash")
    monkeypatch.setenv("QA_CHUNK_SIZE", "60")
    monkeypatch.setenv("QA_CHUNK_OVERLAP", "10")
    return tiny_corpus


def _one_error_line(err: str) -> str:
    lines = [l for l in err.splitlines() if l.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ") and "Traceback" not in err
    return lines[0]


def test_index_then_search_json(env, capsys):
    assert main(["index", str(env)]) == 0
    assert "3 added" in capsys.readouterr().out
    assert main(["index", str(env)]) == 0
    assert "up to date" in capsys.readouterr().out
    assert main(["search", "--json", "-k", "2", "宜昌急救圈"]) == 0
    obj = json.loads(capsys.readouterr().out)
    assert obj["query"] == "宜昌急救圈" and len(obj["hits"]) == 2
    assert obj["hits"][0]["doc_id"] == "yichang.txt"
    text = (env / "yichang.txt").read_text(encoding="utf-8")
    hit = obj["hits"][0]
    assert text[hit["start"]:hit["end"]] == hit["text"]


def test_search_reads_questions_from_stdin(env, capsys, monkeypatch):
    main(["index", str(env)])
    capsys.readouterr()
    monkeypatch.setattr("sys.stdin", io.StringIO("宜昌急救圈\n\n红色网格驿站\n"))
    assert main(["search", "--json", "-"]) == 0
    rows = [json.loads(l) for l in capsys.readouterr().out.splitlines()]
    assert [r["query"] for r in rows] == ["宜昌急救圈", "红色网格驿站"]
    assert rows[1]["hits"][0]["doc_id"] == "ezhou.txt"


def test_settings_flags_map_to_settings(env, capsys, tmp_path):
    other = tmp_path / "other-index"
    assert main(["index", str(env), "--index-dir", str(other), "--chunk-size", "80"]) == 0
    from qa.index.local.store import LocalStore

    assert LocalStore(other).index_settings().chunk_size == 80


@pytest.mark.parametrize("argv,fragment,code", [
    (["index", "/definitely/not/here"], "does not exist", 1),
    (["search", "宜昌"], "no index found", 1),
    (["search", "-k", "0", "宜昌"], "k", 2),
    (["search", "--mode", "fuzzy", "宜昌"], "mode", 2),
    (["--embedder", "word2vec", "search", "宜昌"], "unknown embedder", 2),
])
def test_errors_are_one_line(env, capsys, argv, fragment, code):
    assert main(argv) == code
    assert fragment in _one_error_line(capsys.readouterr().err)


def test_empty_question_and_empty_corpus(env, capsys, tmp_path):
    main(["index", str(env)])
    capsys.readouterr()
    assert main(["search", "   "]) == 2
    assert "empty" in _one_error_line(capsys.readouterr().err)
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "image.png").write_bytes(b"\x89PNG\r\n")
    assert main(["index", str(empty)]) == 2
    assert "no readable document" in _one_error_line(capsys.readouterr().err)


def test_bad_file_is_skipped_with_one_warning(env, capsys):
    (env / "broken.pdf").write_bytes(b"%PDF-1.4 this is not really a pdf")
    assert main(["index", str(env)]) == 0
    err = capsys.readouterr().err
    warnings = [l for l in err.splitlines() if l.startswith("warning:")]
    assert len(warnings) == 1 and "broken.pdf" in warnings[0]
