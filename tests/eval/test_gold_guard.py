"""CI's regression guard: `qa eval` on the project's gold set, real model, full corpus.

Fails when hybrid recall@5 drops below the floor just under the README's published
figure (0.979 = 92 of 94; the floor lets one question slip, not two), so a change that
quietly hurts retrieval cannot land.
"""

from pathlib import Path

import pytest

from qa.cli import main

pytestmark = pytest.mark.integration
GOLD = Path(__file__).resolve().parents[2] / "eval" / "gold.jsonl"
MIN_RECALL = "0.96"


def test_gold_set_recall_guard(full_settings, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("QA_INDEX_DIR", str(full_settings.index_dir))
    report = tmp_path / "report"
    code = main(["eval", "--gold", str(GOLD), "--mode", "hybrid", "--report", str(report),
                 "--min-recall", MIN_RECALL])
    out = capsys.readouterr().out
    assert code == 0, out
    assert (report / "report.md").exists() and (report / "report.json").exists()
