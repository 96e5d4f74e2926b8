"""Retrieval: a question → ranked, filtered :class:`Hit` passages.

Dense scores come from two FAISS stores: whole chunks and single sentences; a
chunk's dense score is the best of its own and its sentences' scores, so one precise
sentence inside a long passage is not averaged away. BM25 reads jieba tokens of the
folded question (English words translated where a dictionary knows them), and the
two are fused by :mod:`qa.fusion`.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from typing import Mapping

import numpy as np

from qa.index.base import EVERYTHING, Scope, Snapshot
from qa.index.lexical import tokenize
from qa.embed import Embedder
from qa.errors import ConfigError, InputError
from qa.fold import cjk_ratio, fold
from qa.fusion import lexical_weight, score_fusion_arrays, top_k, top_k_arrays, weighted_rrf
from qa.translate import translate_query
from qa.types import MODES, Filters, Hit


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


# Concurrent searches take turns on the ranking work (everything after the question
# is embedded and FAISS has answered): dozens of small numpy calls, each releasing
# and retaking the GIL. Eight server threads interleaving them spent ~2x the CPU per
# search and waited on each other's switch intervals; in turns they do not. The
# embedding and FAISS stay outside, where threads do run in parallel.
_RANKING = threading.Lock()
# Threads that run a large index's dense side beside its BM25 side (Retriever.retrieve).
_HELPERS = ThreadPoolExecutor(max_workers=2, thread_name_prefix="qa-dense")


def make_plan(query: str, df: Mapping[str, int] | None = None) -> QueryPlan:
    """What the retriever makes of a question: folded text, BM25 tokens, BM25 weight.

    ``df`` (the index's document frequencies) lets the translation of English words
    keep only the Chinese senses the corpus uses (:func:`qa.translate.translate_query`).

    >>> make_plan("emergency", {"应急": 5, "急救": 2}).tokens
    ('emergency', '应急', '急救')
    """
    folded = fold(query)
    tokens = tokenize(folded)
    share = cjk_ratio(folded)
    translated, translated_share = translate_query(folded, df)
    tokens = tokens + [t for t in translated if t not in tokens]
    return QueryPlan(folded, tuple(tokens), lexical_weight(share, translated_share))


@lru_cache(maxsize=4096)
def query_plan(query: str) -> QueryPlan:
    """:func:`make_plan` without a corpus (English words get their dictionary senses).

    A pure function of the question (folding tables, jieba's dictionary and the
    translation dictionary are fixed for the process), so repeated questions reuse
    it: jieba alone costs about 0.2 ms a question. A :class:`Retriever` plans with
    its index's term statistics instead (:meth:`Retriever.plan`).

    >>> query_plan("宜昌 急救圈").tokens
    ('宜昌', '急救', '圈')
    """
    return make_plan(query)


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


def _region_matches(doc, wanted: str) -> bool:
    from qa.metadata import place_aliases

    if not doc.region:
        return False
    wanted_f = fold(wanted.strip())
    canonical = place_aliases().get(wanted_f) or place_aliases().get(wanted.strip().lower())
    region_f = fold(doc.region)
    return (canonical is not None and fold(canonical) == region_f) or (bool(wanted_f) and wanted_f in region_f)


def _doc_allowed(doc, filters: Filters) -> bool:
    """Whether a document (anything with doc_id, region and date) passes ``filters``."""
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


class IndexView:
    """What the answer stage reads of an index, fetched from the snapshot on demand.

    ``sentences[i]`` and ``documents[doc_id]`` are fetched by key, ``sentence_vectors``
    gathers rows: nothing is loaded up front, at any corpus size.
    """

    def __init__(self, snapshot: Snapshot):
        self.snapshot = snapshot
        self.sentences = _Rows(snapshot.sentence, lambda: snapshot.n_sentences)
        self.chunks = _Rows(snapshot.chunk, lambda: snapshot.n_chunks)
        self.sentence_vectors = _Gather(snapshot.sentence_vectors)
        self.documents = _Documents(snapshot)

    def neighbour(self, sentence_id: int, step: int) -> int | None:
        return self.snapshot.neighbour(sentence_id, step)

    def term_stats(self):
        return self.snapshot.term_stats()


class _Rows:
    def __init__(self, get, size):
        self._get, self._size = get, size

    def __getitem__(self, position):
        return self._get(int(position))

    def __len__(self) -> int:
        return self._size()


class _Gather:
    def __init__(self, get):
        self._get = get

    def __getitem__(self, positions):
        return self._get(np.atleast_1d(np.asarray(positions, dtype=np.int64)))


class _Documents:
    """``documents[doc_id]`` → Document, ``doc_id in documents``, iteration over ids."""

    def __init__(self, snapshot: Snapshot):
        self._snapshot = snapshot

    def __getitem__(self, doc_id: str):
        doc = self._snapshot.document(doc_id)
        if doc is None:
            raise KeyError(doc_id)
        return doc

    def get(self, doc_id: str, default=None):
        doc = self._snapshot.document(doc_id)
        return default if doc is None else doc

    def __contains__(self, doc_id) -> bool:
        return self._snapshot.document_info(doc_id) is not None

    def __iter__(self):
        return iter(d.doc_id for d in self._snapshot.documents())

    def __len__(self) -> int:
        return len(self._snapshot.documents())


class Retriever:
    """Searches one snapshot of a store with one embedder."""

    # How many candidates each list contributes before fusion.
    DENSE_DEPTH = 100
    SENTENCE_DEPTH = 300
    RRF_C = 60.0

    FUSIONS = ("score", "rrf")

    def __init__(self, snapshot: Snapshot, embedder: Embedder, fusion: str = "score",
                 max_question_chars: int | None = None, lexical_depth: int | None = None):
        if snapshot.settings.embedder != embedder.name:
            from qa.errors import IndexMismatchError

            raise IndexMismatchError(
                f"the index was built with embedder {snapshot.settings.embedder!r} "
                f"but the configured embedder is {embedder.name!r}",
                hint=f"set QA_EMBEDDER={snapshot.settings.embedder} (or --embedder), "
                "or rebuild with `qa index --rebuild`",
            )
        if fusion not in self.FUSIONS:
            raise ConfigError(f"unknown fusion {fusion!r}", hint="choose one of: score, rrf")
        self.snapshot = snapshot
        self.data = IndexView(snapshot)
        self.embedder = embedder
        self.fusion = fusion
        self.max_question_chars = max_question_chars  # None: Settings' default
        # BM25's best Settings.lexical_depth passages join the candidates (every chunk
        # with a positive score used to: at 10,000 documents a common term matches 100k
        # chunks, and re-scoring them all densely would cost ~100 ms a question).
        if lexical_depth is None:
            from qa.settings import Settings

            lexical_depth = int(Settings.model_fields["lexical_depth"].default)
        self.lexical_depth = lexical_depth
        # Filters repeat (a UI's region menu): what each allows is computed once per snapshot.
        self._scope = lru_cache(maxsize=256)(self._compute_scope)
        # Plans read the snapshot's term statistics (which senses of an English word
        # the corpus uses), so they are cached per retriever, i.e. per snapshot.
        self._plan = lru_cache(maxsize=4096)(self._compute_plan)

    @property
    def light(self) -> bool:
        """Small enough that ranking a query is cheap: see :meth:`Pipeline.search_is_light`."""
        return self.snapshot.light()

    # ------------------------------------------------------------------ pieces

    def _compute_plan(self, query: str) -> QueryPlan:
        return make_plan(query, self.snapshot.term_stats().df)

    def clear_caches(self) -> None:
        """Forget cached query plans and filter scopes (after a weight they hold changes)."""
        self._plan.cache_clear()
        self._scope.cache_clear()

    def plan(self, query: str) -> QueryPlan:
        return self._plan(query)

    def allowed_docs(self, filters: Filters | None) -> list[str] | None:
        if filters is None or filters.is_empty():
            return None
        return [d.doc_id for d in self.snapshot.documents() if _doc_allowed(d, filters)]

    def _compute_scope(self, filters: Filters) -> Scope:
        return Scope(frozenset(self.allowed_docs(filters)))

    def scope(self, filters: Filters | None) -> Scope:
        """The documents ``filters`` allows (cached per filter)."""
        if filters is None or filters.is_empty():
            return EVERYTHING
        return self._scope(filters)

    def embed_query(self, folded: str) -> np.ndarray:
        return self.embedder.embed([folded], kind="query")[0]

    def question_vector(self, query: str) -> np.ndarray:
        """The embedding :meth:`retrieve` computes for ``query``, to compute it elsewhere
        (e.g. on a worker thread) and pass it back as ``retrieve(..., query_vector=)``."""
        return self.embed_query(self.plan(validate_query(query, 1, "dense", self.max_question_chars)).folded)

    def dense_scores_at(self, query_vector: np.ndarray, positions: np.ndarray) -> np.ndarray:
        """max(chunk similarity, best similarity of its sentences) per chunk position,
        computed exactly from the stored vectors (a passage found only by BM25 still
        gets its true dense score)."""
        return self.snapshot.dense_scores(query_vector, positions)

    # ------------------------------------------------------------------ search

    def search(
        self, query: str, k: int = 5, mode: str = "hybrid", filters: Filters | None = None,
        query_vector: np.ndarray | None = None,
    ) -> list[Hit]:
        return list(self.retrieve(query, k, mode, filters, query_vector).hits)

    def chunk_sentences(self, position: int) -> list[int]:
        """Sentence positions inside the chunk at ``position``."""
        return self.snapshot.chunk_sentences(position)

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
        if scope.is_empty:
            return Retrieval((), (), vector, plan)
        nearest = None
        known = None
        dense = None
        if mode == "hybrid" and scope.is_everything and self.snapshot.nearest_off_thread():
            # The dense side (embedding the question, FAISS, the exact scores of what
            # FAISS found) on a helper thread while this one reads BM25's postings: both
            # release the GIL for most of their time, so on a large index the two
            # overlap instead of adding up.
            dense = _HELPERS.submit(self._dense, plan, query_vector, scope, True)
        elif mode in ("dense", "hybrid"):
            vector, nearest, _ = self._dense(plan, query_vector, scope)
        lex_pos, lex_val = np.zeros(0, dtype=np.int64), np.zeros(0)
        if mode in ("bm25", "hybrid"):
            lex_pos, lex_val = self.snapshot.lexical(plan.tokens, scope, self.lexical_depth)
        if dense is not None:
            vector, nearest, known = dense.result()
        with _RANKING:
            return self._rank(plan, vector, nearest, lex_pos, lex_val, k, mode, known)

    def _dense(self, plan: QueryPlan, query_vector: np.ndarray | None, scope: Scope, score: bool = False):
        """The question's vector, FAISS's candidates and, with ``score``, their exact
        dense scores as ``(sorted ids, scores)``."""
        vector = self.embed_query(plan.folded) if query_vector is None else query_vector
        # Outside the turns: FAISS and numpy release the GIL, so searches of a
        # large index by concurrent threads use every core.
        nearest = self.snapshot.nearest(vector, self.DENSE_DEPTH, self.SENTENCE_DEPTH, scope)
        if not score:
            return vector, nearest, None
        ids = np.unique(np.concatenate(nearest))
        return vector, nearest, (ids, self.dense_scores_at(vector, ids))

    def _rank(self, plan: QueryPlan, vector: np.ndarray | None,
              nearest: tuple[np.ndarray, np.ndarray] | None, lex_pos: np.ndarray, lex_val: np.ndarray,
              k: int, mode: str, known: tuple[np.ndarray, np.ndarray] | None = None) -> Retrieval:
        # Candidates as aligned arrays: positions (ascending), dense and BM25 scores.
        positions, dense, lexical = lex_pos, None, lex_val
        if vector is not None and nearest is not None:
            c_ids, owners = nearest
            found = set(c_ids.tolist())
            found.update(owners.tolist())
            union = found | set(lex_pos.tolist())
            order = np.fromiter(union, dtype=np.int64, count=len(union))
            dense_in_order = self._dense_scores(vector, order, known)
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
        chunks = self.snapshot.chunks([int(positions[i]) for i in best])
        hits = tuple(
            self._hit(
                chunk,
                float(fused[i]),
                None if dense is None else float(dense[i]),
                float(lexical[i]) if lexical[i] > 0 else None,
            )
            for chunk, i in zip(chunks, best)
        )
        return Retrieval(hits, tuple(int(positions[i]) for i in best), vector, plan)

    def _dense_scores(self, vector: np.ndarray, order: np.ndarray,
                      known: tuple[np.ndarray, np.ndarray] | None) -> np.ndarray:
        """Exact dense scores of ``order``, reusing ``known`` ones (sorted ids, scores)."""
        if known is None or not len(known[0]):
            return self.dense_scores_at(vector, order)
        ids, scores = known
        at = np.minimum(np.searchsorted(ids, order), len(ids) - 1)
        have = ids[at] == order
        out = np.empty(len(order), dtype=np.float32)
        out[have] = scores[at[have]]
        if not have.all():
            out[~have] = self.dense_scores_at(vector, order[~have])
        return out

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
        chunks = self.snapshot.chunks([pos for pos, _ in best])
        hits = tuple(self._hit(chunk, score, dense_d.get(pos), lexical_d.get(pos))
                     for chunk, (pos, score) in zip(chunks, best))
        return Retrieval(hits, tuple(pos for pos, _ in best), vector, plan)

    def _hit(self, chunk, score: float, dense: float | None, lexical: float | None) -> Hit:
        doc = self.snapshot.document_info(chunk.doc_id)
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
