"""Fixtures for the HTTP API tests: apps over the tiny hash-embedder corpus."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest
from fastapi.testclient import TestClient

from qa.api import create_app
from qa.embed import HashEmbedder
from qa.pipeline import Pipeline
from qa.settings import Settings

API_KEY = "s3cret-test-key"


def nested_pipeline(tmp_path: Path, tiny_corpus: Path) -> Pipeline:
    """The tiny corpus plus one document in a sub-folder (its id contains a '/')."""
    sub = tiny_corpus / "hubei"
    sub.mkdir()
    (sub / "xianning.txt").write_text(
        "咸宁市疫情防控通报\n来源:咸宁日报 2020-03-01\n\n咸宁市累计确诊病例836例,治愈出院病例达到800例。\n",
        encoding="utf-8",
    )
    settings = Settings(corpus_dir=tiny_corpus, index_dir=tmp_path / "index", embedder="hash",
                        chunk_size=60, chunk_overlap=10)
    pipeline = Pipeline(settings, embedder=HashEmbedder())
    pipeline.index(tiny_corpus)
    return pipeline


@pytest.fixture
def pipeline(tmp_path: Path, tiny_corpus: Path) -> Pipeline:
    return nested_pipeline(tmp_path, tiny_corpus)


@contextmanager
def make_client(pipeline: Pipeline, **overrides) -> Iterator[TestClient]:
    """A started app (lifespan run, warm-up finished) with ``overrides`` on the settings."""
    settings = pipeline.settings.model_copy(update=overrides)
    with TestClient(create_app(settings, pipeline, mount_ui=False)) as client:
        client.app.state.warm_up.join(timeout=120)
        yield client


@pytest.fixture
def client(pipeline: Pipeline) -> Iterator[TestClient]:
    """Read-only server settings: no API key, writes disabled."""
    with make_client(pipeline) as c:
        yield c


@pytest.fixture
def writer(pipeline: Pipeline) -> Iterator[TestClient]:
    """A server with an API key configured."""
    with make_client(pipeline, api_key=API_KEY) as c:
        yield c
