"""Retrieval: a question → ranked, filtered :class:`Hit` passages.

Dense scores come from two FAISS stores: whole chunks and single sentences; a
chunk's dense score is the best of its own and its sentences' scores, so one precise
sentence inside a long passage is not averaged away. BM25 reads jieba tokens of the
folded question (English words translated where a dictionary knows them), and the
two are fused by :mod:`qa.fusion`.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

import numpy as np

from qa.index.lexical import tokenize
from qa.index.store import IndexData
from qa.embed import Embedder
from qa.errors import ConfigError, InputError
from qa.fold import cjk_ratio, fold
from qa.fusion import lexical_weight, score_fusion, top_k, weighted_rrf
from qa.translate import translate_query
from qa.types import MODES, Document, Filters, Hit


@dataclass(frozen=True)
class Retrieval:
    """Hits plus what produced them, for stages that score sentences afterwards."""

    hits: tuple[Hit, ...]
    positions: tuple[int, ...]  # chunk positions of ``hits``
    query_vector: np.ndarray | None  # None in bm25 mode
    plan: "QueryPlan"


@dataclass(frozen=True)
class QueryPlan:
    """What the retriever made of a question (useful in logs and evaluation)."""

    folded: str
    tokens: tuple[str, ...]
    lexical_weight: float


def validate_k(k: object) -> int:
    """``k`` as passed by a caller: a whole number of at least 1."""
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise InputError(f"k must be a whole number of at least 1, got {k!r}", hint="pass -k 1 or more")
    return k


def validate_query(query: str, k: int, mode: str, max_chars: int = 2000) -> str:
    if not isinstance(query, str) or not query.strip():
        raise InputError("the question is empty", hint="type a question, e.g. 宜昌打造多少分钟急救圈?")
    if len(query) > max_chars:
        raise InputError(
            f"the question is {len(query)} characters long; the limit is {max_chars}",
            hint="shorten it to the essential question",
        )
    validate_k(k)
    if mode not in MODES:
        raise InputError(f"unknown mode {mode!r}", hint=f"choose one of: {', '.join(MODES)}")
    return query.strip()


def _region_matches(doc: Document, wanted: str) -> bool:
    from qa.metadata import place_aliases

    if not doc.region:
        return False
    wanted_f = fold(wanted.strip())
    canonical = place_aliases().get(wanted_f) or place_aliases().get(wanted.strip().lower())
    region_f = fold(doc.region)
    return (canonical is not None and fold(canonical) == region_f) or (bool(wanted_f) and wanted_f in region_f)


def _doc_allowed(doc: Document, filters: Filters) -> bool:
    if filters.doc_ids and doc.doc_id not in filters.doc_ids:
        return False
    if filters.region and not _region_matches(doc, filters.region):
        return False
    if filters.date_from or filters.date_to:
        if not doc.date:
            return False
        date = doc.date[:10]
        if filters.date_from and date < filters.date_from[:10]:
            return False
        if filters.date_to and date > filters.date_to[:10]:
            return False
    return True


class Retriever:
    """Searches one loaded index with one embedder."""

    # How many candidates each list contributes before fusion.
    DENSE_DEPTH = 100
    SENTENCE_DEPTH = 300
    RRF_C = 60.0

    FUSIONS = ("score", "rrf")

    def __init__(self, data: IndexData, embedder: Embedder, fusion: str = "score"):
        data.check_embedder(embedder.name)
        if fusion not in self.FUSIONS:
            raise ConfigError(f"unknown fusion {fusion!r}", hint="choose one of: score, rrf")
        self.data = data
        self.embedder = embedder
        self.fusion = fusion
        self._sentence_chunks = self._map_sentences_to_chunks()
        self._chunk_sentences: list[list[int]] = [[] for _ in data.chunks]
        for s_pos, c_list in enumerate(self._sentence_chunks):
            for c_pos in c_list:
                self._chunk_sentences[c_pos].append(s_pos)
        self._doc_chunks: dict[str, list[int]] = {}
        for pos, chunk in enumerate(data.chunks):
            self._doc_chunks.setdefault(chunk.doc_id, []).append(pos)
        self._doc_sentences: dict[str, list[int]] = {}
        for pos, sent in enumerate(data.sentences):
            self._doc_sentences.setdefault(sent.doc_id, []).append(pos)

    def _map_sentences_to_chunks(self) -> list[list[int]]:
        """For each sentence, the chunks whose span overlaps it by at least half."""
        by_doc: dict[str, list[tuple[int, int, int]]] = {}
        for pos, c in enumerate(self.data.chunks):
            by_doc.setdefault(c.doc_id, []).append((c.start, c.end, pos))
        for spans in by_doc.values():
            spans.sort()
        out: list[list[int]] = []
        for s in self.data.sentences:
            spans = by_doc.get(s.doc_id, [])
            i = bisect.bisect_right(spans, (s.end, float("inf"), 0))
            owners = []
            for start, end, pos in spans[max(0, i - 40) : i]:
                overlap = min(end, s.end) - max(start, s.start)
                if overlap > 0 and overlap * 2 >= (s.end - s.start):
                    owners.append(pos)
            out.append(owners)
        return out

    # ------------------------------------------------------------------ pieces

    def plan(self, query: str) -> QueryPlan:
        folded = fold(query)
        tokens = tokenize(folded)
        share = cjk_ratio(folded)
        translated, translated_share = translate_query(folded)
        tokens = tokens + [t for t in translated if t not in tokens]
        return QueryPlan(folded, tuple(tokens), lexical_weight(share, translated_share))

    def allowed_docs(self, filters: Filters | None) -> list[str] | None:
        if filters is None or filters.is_empty():
            return None
        return [d for d, doc in self.data.documents.items() if _doc_allowed(doc, filters)]

    def embed_query(self, folded: str) -> np.ndarray:
        return self.embedder.embed([folded], kind="query")[0]

    def dense_candidates(self, query_vector: np.ndarray, docs: list[str] | None) -> set[int]:
        """Chunk positions that FAISS finds near the question, directly or by a sentence."""
        allowed_c = allowed_s = None
        if docs is not None:
            allowed_c = np.array([p for d in docs for p in self._doc_chunks.get(d, [])], dtype=np.int64)
            allowed_s = np.array([p for d in docs for p in self._doc_sentences.get(d, [])], dtype=np.int64)
        q = query_vector.reshape(1, -1)
        found: set[int] = set()
        _, c_ids = self.data.chunk_store.search(q, self.DENSE_DEPTH, allowed_c)
        found.update(int(p) for p in c_ids[0] if p >= 0)
        _, s_ids = self.data.sentence_store.search(q, self.SENTENCE_DEPTH, allowed_s)
        for pos in s_ids[0]:
            if pos >= 0:
                found.update(self._sentence_chunks[int(pos)])
        return found

    def dense_score(self, query_vector: np.ndarray, positions) -> dict[int, float]:
        """chunk position → max(chunk similarity, best similarity of its sentences).

        Computed exactly from the stored vectors for the given candidates, so a
        passage found only by BM25 still gets its true dense score.
        """
        positions = list(positions)
        if not positions:
            return {}
        chunk_sims = self.data.chunk_vectors[positions] @ query_vector
        out = {}
        for pos, sim in zip(positions, chunk_sims):
            sents = self._chunk_sentences[pos]
            best = float(sim)
            if sents:
                best = max(best, float(np.max(self.data.sentence_vectors[sents] @ query_vector)))
            out[pos] = best
        return out

    def bm25_scores(self, tokens: tuple[str, ...], docs: list[str] | None) -> dict[int, float]:
        """chunk position → BM25 score, positive scores only."""
        raw = self.data.bm25.scores(list(tokens))
        if docs is not None:
            mask = np.zeros(len(raw), dtype=bool)
            for d in docs:
                mask[self._doc_chunks.get(d, [])] = True
            raw = np.where(mask, raw, 0.0)
        positive = np.nonzero(raw > 0)[0]
        return {int(p): float(raw[p]) for p in positive}

    # ------------------------------------------------------------------ search

    def search(self, query: str, k: int = 5, mode: str = "hybrid", filters: Filters | None = None) -> list[Hit]:
        return list(self.retrieve(query, k, mode, filters).hits)

    def chunk_sentences(self, position: int) -> list[int]:
        """Sentence positions (into ``data.sentences``) inside the chunk at ``position``."""
        return self._chunk_sentences[position]

    def retrieve(self, query: str, k: int = 5, mode: str = "hybrid", filters: Filters | None = None) -> Retrieval:
        query = validate_query(query, k, mode)
        plan = self.plan(query)
        docs = self.allowed_docs(filters)
        vector = None
        if docs is not None and not docs:
            return Retrieval((), (), vector, plan)
        dense: dict[int, float] = {}
        lexical: dict[int, float] = {}
        if mode in ("bm25", "hybrid"):
            lexical = self.bm25_scores(plan.tokens, docs)
        if mode in ("dense", "hybrid"):
            vector = self.embed_query(plan.folded)
            candidates = self.dense_candidates(vector, docs)
            dense = self.dense_score(vector, candidates | set(lexical))
        if mode == "dense":
            fused = dense
        elif mode == "bm25":
            fused = lexical
        elif self.fusion == "rrf":
            ranked_dense = sorted(dense, key=lambda p: -dense[p])[: self.DENSE_DEPTH]
            fused = weighted_rrf(
                [ranked_dense, sorted(lexical, key=lambda p: -lexical[p])],
                weights=[1.0, plan.lexical_weight],
                c=self.RRF_C,
            )
        else:
            # Dense scores are normalised over all candidates (FAISS's and BM25's), so
            # a passage that BM25 ranks first but the dense model only 100th still
            # gets part of its dense credit instead of being cut off at a floor.
            fused = score_fusion(dense, lexical, plan.lexical_weight)
        best = top_k(fused, k)
        hits = tuple(self._hit(pos, score, dense.get(pos), lexical.get(pos)) for pos, score in best)
        return Retrieval(hits, tuple(pos for pos, _ in best), vector, plan)

    def _hit(self, pos: int, score: float, dense: float | None, lexical: float | None) -> Hit:
        chunk = self.data.chunks[pos]
        doc = self.data.documents[chunk.doc_id]
        return Hit(
            chunk=chunk,
            score=score,
            title=doc.title,
            date=doc.date,
            source=doc.source,
            region=doc.region,
            dense_score=dense,
            bm25_score=lexical,
        )
