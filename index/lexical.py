"""BM25 over jieba tokens of folded text (bm25s does the scoring).

>>> tokenize("宜昌打造10分钟急救圈")
['宜昌', '打造', '10', '分钟', '急救', '圈']
"""

from __future__ import annotations

import logging
import re
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np

# Function words that carry no topic; BM25's idf would discount them anyway, but
# dropping them keeps English-translated queries and short questions focused.
STOPWORDS = frozenset(
    "的 了 是 在 和 与 及 等 对 将 把 被 为 从 以 也 都 而 并 或 就 要 有 个 这 那 之 其 于 上 下 中 "
    "什么 多少 哪些 哪个 哪里 怎样 如何 怎么 哪 几 吗 呢 吧 啊 么 谁 the a an of to in on for and or "
    "is are was were be by with what which who how many much did does do at as".split()
)
_KEEP = re.compile(r"[\w\u4e00-\u9fff]", re.UNICODE)


@lru_cache(maxsize=1)
def _jieba():
    import jieba

    jieba.setLogLevel(logging.WARNING)
    jieba.initialize()
    return jieba


def tokenize(folded: str) -> list[str]:
    """Search-mode jieba tokens of already-folded text, without punctuation or stopwords."""
    return [
        t
        for t in _jieba().cut_for_search(folded)
        if t.strip() and _KEEP.search(t) and t not in STOPWORDS
    ]


class LexicalIndex:
    """BM25 scores of every indexed text for a list of query tokens."""

    def __init__(self, retriever, n: int):
        self._bm25 = retriever
        self.n = n

    @classmethod
    def build(cls, corpus_tokens: Sequence[Sequence[str]]) -> "LexicalIndex":
        import bm25s

        retriever = bm25s.BM25()
        # bm25s cannot index an empty corpus; a single empty document scores 0 for all.
        retriever.index([list(t) or [""] for t in corpus_tokens] or [[""]], show_progress=False)
        return cls(retriever, len(corpus_tokens))

    def scores(self, query_tokens: Sequence[str]) -> np.ndarray:
        if self.n == 0 or not query_tokens:
            return np.zeros(self.n, dtype=np.float32)
        return np.asarray(self._bm25.get_scores(list(query_tokens)), dtype=np.float32)[: self.n]

    def save(self, folder: Path) -> None:
        self._bm25.save(str(folder), show_progress=False)

    @classmethod
    def load(cls, folder: Path, n: int) -> "LexicalIndex":
        import bm25s

        return cls(bm25s.BM25.load(str(folder), show_progress=False), n)
