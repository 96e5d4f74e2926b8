"""Retrieval: a question → ranked, filtered :class:`Hit` passages.

Dense scores come from two FAISS stores: whole chunks and single sentences; a
chunk's dense score is the best of its own and its sentences' scores, so one precise
sentence inside a long passage is not averaged away. BM25 reads jieba tokens of the
folded question (English words translated where a dictionary knows them), and the
two are fused by :mod:`qa.fusion`.
"""

from __future__ import annotations

import bisect
import threading
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from qa.index.lexical import tokenize
from qa.index.store import IndexData
from qa.embed import Embedder
from qa.errors import ConfigError, InputError
from qa.fold import cjk_ratio, fold
from qa.fusion import lexical_weight, score_fusion_arrays, top_k, top_k_arrays, weighted_rrf
from qa.segments import csr, gather_rows, rows_dot_max
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


@dataclass(frozen=True)
class _Scope:
    """What a filter allows, precomputed once per distinct filter (None: everything)."""

    docs: list[str] | None
    chunks: np.ndarray | None  # allowed chunk positions (for FAISS)
    sentences: np.ndarray | None  # allowed sentence positions (for FAISS)
    chunk_mask: np.ndarray | None  # bool per chunk (for BM25)


_EVERYTHING = _Scope(None, None, None, None)


# Concurrent searches take turns on the ranking work (everything after the question
# is embedded and FAISS has answered): dozens of small numpy calls, each releasing
# and retaking the GIL. Eight server threads interleaving them spent ~2x the CPU per
# search and waited on each other's switch intervals; in turns they do not. The
# embedding and FAISS stay outside, where threads do run in parallel.
_RANKING = threading.Lock()


@lru_cache(maxsize=4096)
def query_plan(query: str) -> QueryPlan:
    """What the retriever makes of a question: folded text, BM25 tokens, BM25 weight.

    A pure function of the question (folding tables, jieba's dictionary and the
    translation dictionary are fixed for the process), so repeated questions reuse
    it: jieba alone costs about 0.2 ms a question.

    >>> query_plan("宜昌 急救圈").tokens
    ('宜昌', '急救', '圈')
    """
    folded = fold(query)
    tokens = tokenize(folded)
    share = cjk_ratio(folded)
    translated, translated_share = translate_query(folded)
    tokens = tokens + [t for t in translated if t not in tokens]
    return QueryPlan(folded, tuple(tokens), lexical_weight(share, translated_share))


def validate_k(k: object) -> int:
    """``k`` as passed by a caller: a whole number of at least 1."""
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise InputError(f"k must be a whole number of at least 1, got {k!r}", hint="pass -k 1 or more")
    return k


def validate_query(query: str, k: int, mode: str, max_chars: int | None = None) -> str:
    if max_chars is None:  # Settings.max_question_chars is the one source of the limit
        from qa.settings import Settings

        max_chars = int(Settings.model_fields["max_question_chars"].default)
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
    # Up to this many stored vectors (chunks + sentences), ranking a query (all but
    # the embedding) costs well under a millisecond of CPU (0.4 ms at 2.2k).
    LIGHT_MAX_VECTORS = 20_000

    def __init__(self, data: IndexData, embedder: Embedder, fusion: str = "score",
                 max_question_chars: int | None = None):
        data.check_embedder(embedder.name)
        self.max_question_chars = max_question_chars  # None: Settings' default
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
        # The same two maps as flat arrays, for one-call gathers on the query path.
        self._cs_ptr, self._cs_idx = csr(self._chunk_sentences)
        self._sc_ptr, self._sc_idx = csr(self._sentence_chunks)
        # Filters repeat (a UI's region menu): what each allows is computed once per index.
        self._scope = lru_cache(maxsize=256)(self._compute_scope)

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

    @property
    def light(self) -> bool:
        """Small enough that ranking a query is cheap: see :meth:`Pipeline.search_is_light`."""
        return self.data.chunk_store.ntotal + self.data.sentence_store.ntotal <= self.LIGHT_MAX_VECTORS

    # ------------------------------------------------------------------ pieces

    def plan(self, query: str) -> QueryPlan:
        return query_plan(query)

    def allowed_docs(self, filters: Filters | None) -> list[str] | None:
        if filters is None or filters.is_empty():
            return None
        return [d for d, doc in self.data.documents.items() if _doc_allowed(doc, filters)]

    def _compute_scope(self, filters: Filters) -> _Scope:
        docs = self.allowed_docs(filters)
        if docs is None:
            return _EVERYTHING
        chunks = np.array([p for d in docs for p in self._doc_chunks.get(d, [])], dtype=np.int64)
        sentences = np.array([p for d in docs for p in self._doc_sentences.get(d, [])], dtype=np.int64)
        mask = np.zeros(len(self.data.chunks), dtype=bool)
        mask[chunks] = True
        return _Scope(docs, chunks, sentences, mask)

    def scope(self, filters: Filters | None) -> _Scope:
        """The documents, chunks and sentences ``filters`` allows (cached per filter)."""
        if filters is None or filters.is_empty():
            return _EVERYTHING
        return self._scope(filters)

    def embed_query(self, folded: str) -> np.ndarray:
        return self.embedder.embed([folded], kind="query")[0]

    def question_vector(self, query: str) -> np.ndarray:
        """The embedding :meth:`retrieve` computes for ``query``, to compute it elsewhere
        (e.g. on a worker thread) and pass it back as ``retrieve(..., query_vector=)``."""
        return self.embed_query(self.plan(validate_query(query, 1, "dense", self.max_question_chars)).folded)

    def _nearest(self, query_vector: np.ndarray, scope: _Scope) -> tuple[np.ndarray, np.ndarray]:
        """FAISS's nearest chunk positions and sentence positions, best first (-1 padded)."""
        q = query_vector.reshape(1, -1)
        _, c_ids = self.data.chunk_store.search(q, self.DENSE_DEPTH, scope.chunks)
        _, s_ids = self.data.sentence_store.search(q, self.SENTENCE_DEPTH, scope.sentences)
        return c_ids[0], s_ids[0]

    def _candidate_set(self, c_ids: np.ndarray, s_ids: np.ndarray) -> set[int]:
        """Chunk positions that FAISS found near the question, directly or by a sentence."""
        owners, _ = gather_rows(self._sc_ptr, self._sc_idx, s_ids[s_ids >= 0])
        # Built by adding chunk hits, then sentence owners, one by one in rank order:
        # the set's iteration order (which fixes the order of the dense products in
        # dense_scores_at, and so their last-bit rounding) is the same as ever.
        found = set(c_ids[c_ids >= 0].tolist())
        found.update(owners.tolist())
        return found

    def dense_scores_at(self, query_vector: np.ndarray, positions: np.ndarray) -> np.ndarray:
        """max(chunk similarity, best similarity of its sentences) per chunk position,
        as a float32 array aligned with ``positions``.

        Computed exactly from the stored vectors for the given candidates, so a
        passage found only by BM25 still gets its true dense score: one product for the
        chunks and one per distinct sentence count for their sentences
        (:func:`qa.segments.rows_dot_max`) instead of one per chunk.
        """
        if not len(positions):
            return np.zeros(0, dtype=np.float32)
        best = self.data.chunk_vectors[positions] @ query_vector
        sentence_best, _ = rows_dot_max(self.data.sentence_vectors, self._cs_ptr, self._cs_idx, positions,
                                        query_vector)
        return np.maximum(best, sentence_best)

    def _bm25(self, tokens: tuple[str, ...], scope: _Scope) -> tuple[np.ndarray, np.ndarray]:
        """Positions (ascending) with a positive BM25 score, and those scores (float64)."""
        raw = self.data.bm25.scores(tokens)
        if scope.chunk_mask is not None:
            raw = np.where(scope.chunk_mask, raw, 0.0)
        positive = np.flatnonzero(raw > 0)
        return positive, raw[positive].astype(np.float64)

    # ------------------------------------------------------------------ search

    def search(
        self, query: str, k: int = 5, mode: str = "hybrid", filters: Filters | None = None,
        query_vector: np.ndarray | None = None,
    ) -> list[Hit]:
        return list(self.retrieve(query, k, mode, filters, query_vector).hits)

    def chunk_sentences(self, position: int) -> list[int]:
        """Sentence positions (into ``data.sentences``) inside the chunk at ``position``."""
        return self._chunk_sentences[position]

    def retrieve(
        self, query: str, k: int = 5, mode: str = "hybrid", filters: Filters | None = None,
        query_vector: np.ndarray | None = None,
    ) -> Retrieval:
        """The ``k`` best passages for ``query``.

        ``query_vector``, when given, must be :meth:`question_vector` of this query;
        it replaces the embedding step (the only slow one), so the rest can run where
        a model call should not, such as an event loop.
        """
        query = validate_query(query, k, mode, self.max_question_chars)
        plan = self.plan(query)
        scope = self.scope(filters)
        vector = None
        if scope.docs is not None and not scope.docs:
            return Retrieval((), (), vector, plan)
        nearest = None
        if mode in ("dense", "hybrid"):
            vector = self.embed_query(plan.folded) if query_vector is None else query_vector
            # Outside the turns: FAISS releases the GIL, so searches of a large index
            # by concurrent threads use every core.
            nearest = self._nearest(vector, scope)
        with _RANKING:
            return self._rank(plan, scope, vector, nearest, k, mode)

    def _rank(self, plan: QueryPlan, scope: _Scope, vector: np.ndarray | None,
              nearest: tuple[np.ndarray, np.ndarray] | None, k: int, mode: str) -> Retrieval:
        # Candidates as aligned arrays: positions (ascending), dense and BM25 scores.
        lex_pos, lex_val = np.zeros(0, dtype=np.int64), np.zeros(0)
        if mode in ("bm25", "hybrid"):
            lex_pos, lex_val = self._bm25(plan.tokens, scope)
        positions, dense, lexical = lex_pos, None, lex_val
        if vector is not None and nearest is not None:
            # The union in set order, exactly as the dict-based version iterated it.
            union = self._candidate_set(*nearest) | set(lex_pos.tolist())
            order = np.fromiter(union, dtype=np.int64, count=len(union))
            dense_in_order = self.dense_scores_at(vector, order)
            if self.fusion == "rrf" and mode == "hybrid":
                return self._retrieve_rrf(order, dense_in_order, lex_pos, lex_val, k, vector, plan)
            ascending = np.argsort(order)
            positions = order[ascending]
            dense = dense_in_order[ascending].astype(np.float64)
            lexical = np.zeros(len(positions))
            lexical[np.searchsorted(positions, lex_pos)] = lex_val
        if mode == "dense":
            fused = dense
        elif mode == "bm25":
            fused = lexical
        else:
            # Dense scores are normalised over all candidates (FAISS's and BM25's), so
            # a passage that BM25 ranks first but the dense model only 100th still
            # gets part of its dense credit instead of being cut off at a floor.
            fused = score_fusion_arrays(dense, lexical, plan.lexical_weight)
        best = top_k_arrays(positions, fused, k)
        hits = tuple(
            self._hit(
                int(positions[i]),
                float(fused[i]),
                None if dense is None else float(dense[i]),
                float(lexical[i]) if lexical[i] > 0 else None,
            )
            for i in best
        )
        return Retrieval(hits, tuple(int(positions[i]) for i in best), vector, plan)

    def _retrieve_rrf(self, order, dense, lex_pos, lex_val, k, vector, plan) -> Retrieval:
        # Rank fusion is not the default and keeps the dict form: ties in the dense
        # ranking stay in the candidates' set order, as they always have.
        dense_d = dict(zip(order.tolist(), dense.tolist()))
        lexical_d = dict(zip(lex_pos.tolist(), lex_val.tolist()))
        ranked_dense = sorted(dense_d, key=lambda p: -dense_d[p])[: self.DENSE_DEPTH]
        fused = weighted_rrf(
            [ranked_dense, sorted(lexical_d, key=lambda p: -lexical_d[p])],
            weights=[1.0, plan.lexical_weight],
            c=self.RRF_C,
        )
        best = top_k(fused, k)
        hits = tuple(self._hit(pos, score, dense_d.get(pos), lexical_d.get(pos)) for pos, score in best)
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
