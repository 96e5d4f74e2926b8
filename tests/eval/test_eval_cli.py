"""`qa eval` end to end on a tiny hash-embedder index, and its --mode flag."""

import json

import pytest

from qa.cli import build_parser, main
from qa.eval.runner import requested_mode

# One document long enough that a 160-character evidence can never fit in (or half
# fit in) a 60-character chunk, and one short document: four chunks in all, so every
# chunk is in every top 5 and the hit/miss outcome is certain whatever the ranking.
LONG = (
    "武汉市委十三届九次全会召开。会议指出,要坚持以人民为中心的发展思想,统筹推进疫情防控和经济社会发展,"
    "加快补齐公共卫生短板,建设更高水平的健康城市,完善重大疫情防控体制机制,健全公共卫生应急管理体系,"
    "提升城市治理体系和治理能力现代化水平。会议强调,要深化改革开放,优化营商环境,激发市场主体活力,"
    "推动高质量发展,加快建设国家中心城市、长江经济带核心城市和国际化大都市,确保完成全年目标任务。"
)
SHORT = "鄂州建成红色网格驿站136个,覆盖网格238个。"


@pytest.fixture
def eval_env(tmp_path, monkeypatch):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "wuhan.txt").write_text(LONG, encoding="utf-8")
    (corpus / "ezhou.txt").write_text(SHORT, encoding="utf-8")
    monkeypatch.setenv("QA_INDEX_DIR", str(tmp_path / "index"))
    monkeypatch.setenv("QA_EMBEDDER", "hash")
    monkeypatch.setenv("QA_CHUNK_SIZE", "60")
    monkeypatch.setenv("QA_CHUNK_OVERLAP", "10")
    assert main(["index", str(corpus)]) == 0
    at = LONG.index("健康城市")
    gold = [
        {"id": "t1", "question": "鄂州建成了多少个红色网格驿站?", "lang": "zh", "doc": "ezhou.txt",
         "answers": ["136个"], "evidence": "建成红色网格驿站136个", "type": "number"},
        {"id": "t2", "question": "What did Wuhan's plenary session decide about public health?", "lang": "en",
         "doc": "wuhan.txt", "answers": ["健康城市"], "evidence": LONG[at - 60:at + 100], "type": "list"},
        {"id": "t3", "question": "巴黎市长是谁?", "lang": "zh", "doc": None, "answers": [], "evidence": None,
         "type": "unanswerable"},
    ]
    path = tmp_path / "gold.jsonl"
    path.write_text("".join(json.dumps(g, ensure_ascii=False) + "\n" for g in gold), encoding="utf-8")
    return tmp_path, path


def test_eval_writes_report_and_checks_min_recall(eval_env, capsys):
    tmp_path, gold = eval_env
    report = tmp_path / "report"
    assert main(["eval", "--gold", str(gold), "--report", str(report), "--min-recall", "0.5"]) == 0
    out = capsys.readouterr().out
    assert "| hybrid (ours) |" in out and "| peer: Chatchat" in out
    for name in ("report.md", "report.json", "report.png"):
        assert (report / name).stat().st_size > 0
    summary = json.loads((report / "report.json").read_text(encoding="utf-8"))
    assert summary["systems"] == ["dense", "bm25", "hybrid", "peer"]
    for system in summary["systems"]:
        # t1 is found by every system (4 chunks, all ranked); t2 can never be a hit
        assert summary["retrieval"][system]["all"]["hit@5"] == 0.5
        assert summary["retrieval"][system]["all"]["hit@10"] == 0.5
    assert summary["answerable"] == 2 and summary["unanswerable"] == 1
    assert summary["retrieval"]["hybrid"]["lang"]["en"]["hit@10"] == 0.0
    assert summary["min_recall"]["passed"] is True
    if "answers" in summary:
        assert summary["answers"]["refusal"]["unanswerable"] == 1
        quotes, refusal = summary["answers"]["quotes"], summary["answers"]["refusal"]
        refused_answerable = refusal["refused"] - refusal["correct_refusals"]
        assert quotes["answers"] == 2 - refused_answerable  # every answered, answerable question
        assert "quote precision" in (report / "report.md").read_text(encoding="utf-8")
    else:
        assert any("answer engine" in n for n in summary["notes"])

    assert main(["eval", "--gold", str(gold), "--report", str(report), "--min-recall", "0.6"]) == 1
    out = capsys.readouterr().out
    assert "FAILED: hybrid recall@5 = 0.500 is below --min-recall 0.600" in out


def test_eval_single_mode_and_k(eval_env, capsys):
    tmp_path, gold = eval_env
    report = tmp_path / "bm25"
    assert main(["eval", "--gold", str(gold), "--mode", "bm25", "-k", "3", "--report", str(report),
                 "--min-recall", "0.5"]) == 0
    summary = json.loads((report / "report.json").read_text(encoding="utf-8"))
    assert summary["systems"] == ["bm25"] and summary["k"] == 3
    assert "bm25 recall@3 = 0.500 meets" in summary["min_recall"]["message"]


def test_eval_bad_gold_is_a_usage_error(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("QA_INDEX_DIR", str(tmp_path / "index"))
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "x"}\n', encoding="utf-8")
    assert main(["eval", "--gold", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "line 1: missing field(s)" in err


def test_eval_gold_doc_missing_from_index(eval_env, capsys):
    tmp_path, _ = eval_env
    gold = tmp_path / "other.jsonl"
    gold.write_text(json.dumps({"id": "o", "question": "q?", "lang": "zh", "doc": "other.txt", "answers": ["a"],
                                "evidence": "a", "type": "fact"}) + "\n", encoding="utf-8")
    assert main(["eval", "--gold", str(gold), "--report", str(tmp_path / "r")]) == 2
    assert "does not hold: other.txt" in capsys.readouterr().err


def test_mode_flag_accepts_all_only_for_eval(capsys):
    parser = build_parser()
    assert parser.parse_args(["eval", "--gold", "g", "--mode", "all"]).eval_mode == "all"
    assert parser.parse_args(["eval", "--gold", "g", "--eval-mode", "dense"]).eval_mode == "dense"
    args = parser.parse_args(["eval", "--gold", "g"])
    assert args.eval_mode is None and not hasattr(args, "setting_mode")
    assert requested_mode(args) == "all"
    # the global --mode before the command (a validated setting) is honoured too
    assert requested_mode(parser.parse_args(["--mode", "bm25", "eval", "--gold", "g"])) == "bm25"
    # other settings flags still work after `eval`
    assert parser.parse_args(["eval", "--gold", "g", "-k", "3"]).setting_k == "3"
    with pytest.raises(SystemExit):
        parser.parse_args(["eval", "--gold", "g", "--mode", "sparse"])
    # search keeps rejecting "all": Settings.mode is validated as before
    assert main(["search", "--mode", "all", "x"]) == 2
    assert "mode must be one of dense, bm25, hybrid" in capsys.readouterr().err
