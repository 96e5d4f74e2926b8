"""The peer baseline: Langchain-Chatchat's hybrid retriever, on our chunks and vectors.

Langchain-Chatchat (0.3.x, ``file_rag/retrievers/ensemble.py`` and
``kb_cache/faiss_cache.py``) answers a knowledge-base search with

* a LangChain ``FAISS`` store over L2-normalised embeddings,
* a ``BM25Retriever`` (rank_bm25's BM25Okapi) whose ``preprocess_func`` is
  ``jieba.lcut_for_search``, built from the same documents,
* an ``EnsembleRetriever(retrievers=[bm25, faiss], weights=[0.5, 0.5])`` (weighted
  reciprocal-rank fusion, c = 60), each retriever returning ``top_k`` documents, and
  the fused list cut to ``top_k``.

That is rebuilt here from the installed LangChain classes, with three deliberate
choices so that the comparison isolates the retrieval method:

* it indexes *our* chunks (``Chunk.search_text``: the same folding and context line),
  and FAISS is filled with the vectors our index already stores
  (``FAISS.from_embeddings``), so both sides see identical passages and embeddings;
* the question is folded with :func:`qa.fold.fold` (as our retriever does), since
  the indexed texts are folded;
* Chatchat's FAISS retriever uses ``search_type="similarity_score_threshold"`` with
  ``SCORE_THRESHOLD`` 2.0, documented there as "no filtering"; here it is plain
  ``similarity`` search, which is what that setting intends (with the installed
  LangChain a relevance threshold of 2.0 would drop every FAISS result).

>>> from qa.embed import HashEmbedder
>>> emb = LangChainEmbeddings(HashEmbedder(dim=8))
>>> len(emb.embed_query("宜昌")), len(emb.embed_documents(["a", "b"]))
(8, 2)
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from qa.embed import Embedder
from qa.fold import fold
from qa.types import Chunk

PEER_NAME = "peer: Chatchat ensemble (LangChain FAISS + BM25 jieba, 0.5/0.5)"
PEER_WEIGHTS = (0.5, 0.5)  # [bm25, faiss], as Chatchat orders them


def _langchain():
    """Import the LangChain pieces, with one clear error when they are missing."""
    from qa.errors import ConfigError

    try:
        with warnings.catch_warnings():
            # langchain-community announces its own sunset on import; not our concern here.
            warnings.simplefilter("ignore", DeprecationWarning)
            from langchain_community.retrievers import BM25Retriever
            from langchain_community.vectorstores import FAISS
        from langchain_core.embeddings import Embeddings
        try:
            from langchain_classic.retrievers import EnsembleRetriever
        except ImportError:  # older LangChain kept it in the main package
            from langchain.retrievers import EnsembleRetriever  # type: ignore[no-redef]
        import rank_bm25  # noqa: F401  (BM25Retriever needs it at build time)
    except ImportError as exc:
        raise ConfigError(
            f"the peer baseline needs LangChain and rank_bm25: {exc}",
            hint="pip install 'qa-gov[peer]' (langchain-community, langchain-classic, rank-bm25)",
        ) from exc
    return BM25Retriever, FAISS, Embeddings, EnsembleRetriever


def _embeddings_base():
    return _langchain()[2]


class LangChainEmbeddings(_embeddings_base()):  # type: ignore[misc]
    """Our :class:`~qa.embed.Embedder` behind LangChain's ``Embeddings`` interface."""

    def __init__(self, embedder: Embedder):
        self.embedder = embedder

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.embedder.embed(list(texts), kind="passage").tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.embedder.embed([text], kind="query")[0].tolist()


@dataclass(frozen=True)
class PeerHit:
    position: int  # index into the chunks the peer was built from
    chunk: Chunk


class PeerRetriever:
    """Chatchat's ensemble over a fixed list of chunks and their stored vectors."""

    def __init__(self, chunks: Sequence[Chunk], vectors: np.ndarray, embedder: Embedder, top_k: int = 10):
        BM25Retriever, FAISS, _, EnsembleRetriever = _langchain()
        import jieba

        jieba.setLogLevel(logging.WARNING)  # its dictionary-load chatter is not our output

        if len(chunks) != len(vectors):
            raise ValueError(f"{len(chunks)} chunks but {len(vectors)} vectors")
        self.chunks = tuple(chunks)
        self.top_k = top_k
        texts = [c.search_text for c in chunks]
        metadatas = [
            {"doc_id": c.doc_id, "start": c.start, "end": c.end, "position": i} for i, c in enumerate(chunks)
        ]
        embeddings = LangChainEmbeddings(embedder)
        # Chatchat's store: L2-normalised vectors in a flat L2 index (its "METRIC_INNER_PRODUCT"
        # string is not a LangChain DistanceStrategy, so FAISS falls back to L2), which ranks
        # unit vectors exactly as cosine similarity does.
        self.store = FAISS.from_embeddings(
            list(zip(texts, np.asarray(vectors, dtype=np.float32).tolist())),
            embeddings,
            metadatas=metadatas,
            normalize_L2=True,
        )
        faiss_retriever = self.store.as_retriever(search_type="similarity", search_kwargs={"k": top_k})
        bm25 = BM25Retriever.from_texts(texts, metadatas=metadatas, preprocess_func=jieba.lcut_for_search)
        bm25.k = top_k
        self.retriever = EnsembleRetriever(retrievers=[bm25, faiss_retriever], weights=list(PEER_WEIGHTS))

    @classmethod
    def from_index(cls, snapshot, embedder: Embedder, top_k: int = 10) -> "PeerRetriever":
        """Build over every chunk of a store snapshot and its stored vectors (nothing is re-embedded)."""
        ids, chunks = snapshot.all_chunks()
        return cls(chunks, snapshot.chunk_vectors(ids), embedder, top_k=top_k)

    def search(self, question: str, k: int | None = None) -> list[PeerHit]:
        """The fused ranking, cut to ``k`` (default: ``top_k``), as chunk positions."""
        docs = self.retriever.invoke(fold(question.strip()))
        out = []
        for doc in docs[: k or self.top_k]:
            pos = int(doc.metadata["position"])
            out.append(PeerHit(pos, self.chunks[pos]))
        return out
