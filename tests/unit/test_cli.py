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


def test_calibrate_fits_the_model_and_thresholds_in_one_command(env, tmp_path, capsys):
    """`qa calibrate --gold A --gold B -o FILE` writes the thresholds and, beside them,
    the fitted answerability model; the packaged qa/*.json stay untouched."""
    from qa.answerability import MODEL_FILE, load_model
    from qa.calibration import CALIBRATION_FILE, load_calibration

    before = (CALIBRATION_FILE.read_bytes(), MODEL_FILE.read_bytes())
    assert main(["index", str(env)]) == 0
    rows = [
        {"id": "a1", "question": "宜昌打造多少分钟急救圈?", "lang": "zh", "doc": "yichang.txt",
         "answers": ["30分钟"], "evidence": "县市“30分钟”急救圈", "type": "number"},
        {"id": "a2", "question": "鄂州建成了多少个红色网格驿站?", "lang": "zh", "doc": "ezhou.txt",
         "answers": ["136个"], "evidence": "建成红色网格驿站136个", "type": "number"},
        {"id": "u1", "question": "鄂州红色网格驿站花了多少钱?", "lang": "zh", "doc": None,
         "answers": [], "evidence": None, "type": "unanswerable"},
    ]
    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    first.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows[:2]) + "\n", encoding="utf-8")
    second.write_text(json.dumps(rows[2], ensure_ascii=False) + "\n", encoding="utf-8")
    out = tmp_path / "out" / "calibration.json"
    out.parent.mkdir()
    assert main(["calibrate", "--gold", str(first), "--gold", str(second), "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "answerability model fitted on" in printed and f"wrote {out}" in printed
    model = load_model(out.with_name("answerability.json"))
    assert model.source == "a.jsonl, b.jsonl" and len(model.weights) == len(model.features)
    cal = load_calibration(out)
    assert set(cal.thresholds) == {"zh", "en"}
    # the money question's topical sentence holds no amount: refused by the rule at any threshold
    assert cal.reports["zh"]["unanswerable"] == 1 and cal.reports["zh"]["missed"] == 0
    assert (CALIBRATION_FILE.read_bytes(), MODEL_FILE.read_bytes()) == before
