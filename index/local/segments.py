"""Immutable vector segments: the part of the local store that is too big for SQLite rows.

A segment is a folder written once and never changed::

    segments/00000042/
      chunk_vectors.npy  sentence_vectors.npy    float32 unit vectors, memory-mapped
      chunk_sentences.npz                        chunk → its sentences, sentence → its chunks (CSR)
      chunk_docs.npy  sentence_docs.npy          each row's document key (filters, neighbours)
      chunk_lengths.npy                          BM25 token count per chunk
      chunks.ivf  sentences.ivf                  FAISS IVF-SQ8 indexes, only in large segments

Opening one maps the arrays (nothing is parsed) and reads the IVF indexes, whose
8-bit codes are a quarter of the vectors' size. Small segments are searched exactly
over the mapped vectors; large ones through IVF, whose candidates the retriever
then re-scores exactly from the mapped vectors.

>>> import tempfile
>>> folder = Path(tempfile.mkdtemp()) / "1"
>>> write_segment(folder, SegmentArrays(
...     chunk_vectors=np.eye(2, dtype=np.float32), sentence_vectors=np.eye(2, dtype=np.float32),
...     cs_ptr=np.array([0, 1, 2]), cs_idx=np.array([0, 1]), chunk_docs=np.array([7, 7]),
...     sentence_docs=np.array([7, 7]), chunk_lengths=np.array([3, 4])))
>>> seg = Segment.open(folder, 1)
>>> seg.search("chunks", np.array([0, 1], np.float32), 1, None)[1].tolist()
[1]
"""

from __future__ import annotations

import mmap
import os
import shutil
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

import faiss
import numpy as np

from qa.durable import fsync_path
from qa.segments import csr

# Up to this many vectors in one matrix a segment is searched exactly: one pass over
# its mapped vectors. Chosen with `qa bench --part scale --sizes 1000 2000 4000 8000
# 16000 32000` (docs/reports/bench-scale-small.md, one BLAS thread, idle machine): an
# exact pass over 4k vectors of 384 dimensions costs 2.5× IVF's probe at nprobe 32
# (0.30 against 0.12 ms), over 32k five times, and under load the gap grew to ten
# times and more; merged segments of a 2,000-document library (17k chunks each)
# searched exactly were most of a question's time. Below 4k an exact pass is cheap
# and its recall is 1 by definition.
EXACT_MAX = 4_096
# A filter that leaves at most this many rows of a segment is searched exactly over
# those rows, whatever the segment's size: the filter stays exact and so does the
# ranking (IVF would probe lists that hold few allowed rows). Gathering 8k mapped rows
# and scoring them costs ~2 ms.
FILTERED_EXACT_MAX = 8_192

# IVF knobs, from the same sweep: √n lists, 8-bit scalar codes, 32 lists probed.
IVF_NPROBE = 32


def ivf_lists(n: int) -> int:
    """About √n lists, with at least 64 vectors per list to train on.

    >>> ivf_lists(1_000_000), ivf_lists(40_000), ivf_lists(100)
    (1000, 200, 1)
    """
    return max(1, min(int(np.sqrt(n)), n // 64))


@dataclass(frozen=True)
class SegmentArrays:
    """What a segment stores, in memory, before it is written."""

    chunk_vectors: np.ndarray
    sentence_vectors: np.ndarray
    cs_ptr: np.ndarray  # CSR: sentences of chunk i are cs_idx[cs_ptr[i]:cs_ptr[i+1]]
    cs_idx: np.ndarray
    chunk_docs: np.ndarray
    sentence_docs: np.ndarray
    chunk_lengths: np.ndarray


def sentence_owners(cs_ptr: np.ndarray, cs_idx: np.ndarray, n_sentences: int) -> tuple[np.ndarray, np.ndarray]:
    """The inverse CSR: for each sentence, the chunks that hold it.

    >>> ptr, idx = sentence_owners(np.array([0, 2, 3]), np.array([0, 1, 1]), 3)
    >>> ptr.tolist(), idx.tolist()
    ([0, 1, 3, 3], [0, 0, 1])
    """
    chunk_of = np.repeat(np.arange(len(cs_ptr) - 1, dtype=np.int64), np.diff(cs_ptr))
    order = np.argsort(cs_idx, kind="stable")
    counts = np.bincount(np.asarray(cs_idx, dtype=np.int64), minlength=n_sentences)
    ptr = np.zeros(n_sentences + 1, dtype=np.int64)
    np.cumsum(counts, out=ptr[1:])
    return ptr, chunk_of[order]


# Rows per block when a matrix is copied, sampled or added to IVF piecewise: 65k rows
# of 384 float32 dimensions are 100 MB, so no pass holds more than that at once.
BLOCK_ROWS = 65_536


def _build_ivf(n: int, dim: int, blocks: Callable[[], Iterator[np.ndarray]]) -> faiss.Index:
    """An IVF-SQ8 index over ``n`` vectors that ``blocks()`` yields in row order (it
    is called twice: a pass for the training sample, a pass to add)."""
    nlist = ivf_lists(n)
    index = faiss.IndexIVFScalarQuantizer(faiss.IndexFlatIP(dim), dim, nlist,
                                          faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT)
    # Training on a spread-out sample of 64 vectors a list keeps k-means to seconds
    # even at a million vectors; more samples did not move recall in the sweep.
    step = max(1, n // (64 * nlist))
    sample, start = [], 0
    for block in blocks():
        sample.append(block[(-start) % step::step])  # rows 0, step, 2·step… of the whole matrix
        start += len(block)
    index.train(np.ascontiguousarray(np.concatenate(sample)))
    del sample
    for block in blocks():
        index.add(np.ascontiguousarray(block))
    return index


def _slices(vectors: np.ndarray) -> Callable[[], Iterator[np.ndarray]]:
    """Blocks of an array already in memory (or mapped), for :func:`_build_ivf`."""
    return lambda: (vectors[start:start + BLOCK_ROWS] for start in range(0, len(vectors), BLOCK_ROWS))


def read_blocks(path: Path) -> Iterator[np.ndarray]:
    """The rows of a float32 ``.npy`` matrix, BLOCK_ROWS at a time, with plain reads.

    A merge reads every row of its sources once; through a mapping those pages would
    stay resident in the merging process (the server's, after an upload) until the
    whole matrix counted in its memory.

    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "v.npy"
    >>> np.save(path, np.arange(6, dtype=np.float32).reshape(3, 2))
    >>> [b.tolist() for b in read_blocks(path)]
    [[[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]]]
    """
    with open(path, "rb") as f:
        version = np.lib.format.read_magic(f)
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, _, dtype = read_header(f)
        n, dim = shape
        for start in range(0, n, BLOCK_ROWS):
            rows = min(BLOCK_ROWS, n - start)
            yield np.fromfile(f, dtype=dtype, count=rows * dim).astype(np.float32, copy=False).reshape(rows, dim)


def write_blocks(path: Path, n: int, dim: int, blocks: Iterable[np.ndarray]) -> None:
    """Write an ``(n, dim)`` float32 ``.npy`` matrix from row blocks, holding one block
    at a time (``np.load`` reads it back like any saved array)."""
    header = {"descr": np.lib.format.dtype_to_descr(np.dtype(np.float32)), "fortran_order": False,
              "shape": (n, dim)}
    written = 0
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(f, header)
        for block in blocks:
            np.ascontiguousarray(block, dtype=np.float32).tofile(f)
            written += len(block)
    if written != n:  # the header promised n rows: a short file would be read as garbage
        raise ValueError(f"{path.name}: {written} rows written, the header says {n}")


def write_segment(folder: Path, arrays: SegmentArrays, ann: bool | None = None) -> None:
    """Write a complete segment folder (via a temporary name, fsynced, then renamed).

    ``ann`` forces IVF indexes on (True) or off (False); by default a matrix gets
    one when it has more than EXACT_MAX vectors."""
    def vectors(tmp: Path) -> None:
        np.save(tmp / "chunk_vectors.npy", np.ascontiguousarray(arrays.chunk_vectors, dtype=np.float32))
        np.save(tmp / "sentence_vectors.npy", np.ascontiguousarray(arrays.sentence_vectors, dtype=np.float32))

    dim = np.shape(arrays.chunk_vectors)[1]
    matrices = {"chunks": (len(arrays.chunk_vectors), _slices(np.asarray(arrays.chunk_vectors, np.float32))),
                "sentences": (len(arrays.sentence_vectors), _slices(np.asarray(arrays.sentence_vectors, np.float32)))}
    _write_folder(folder, arrays, vectors, dim, matrices, ann)


def write_merged_segment(folder: Path, arrays: SegmentArrays, sources: list[tuple[Path, np.ndarray, np.ndarray]],
                         dim: int) -> None:
    """Write a segment whose vectors are the kept rows of other segments' files.

    ``arrays`` holds everything but the vectors (its vector fields are ignored);
    ``sources`` lists, in order, each source folder with its chunk and sentence
    keep-masks. Vectors go from file to file a block at a time and the IVF indexes
    are built from the written files, so a merge holds one block of vectors, the IVF
    codes (a quarter of the vectors) and the training sample, not the whole matrix:
    merging a 10,000-document library no longer needs memory for all its vectors twice."""
    def kept(kind: str) -> Iterator[np.ndarray]:
        for source, c_keep, s_keep in sources:
            keep, start = (c_keep if kind == "chunks" else s_keep), 0
            for block in read_blocks(source / f"{kind[:-1]}_vectors.npy"):
                yield block[keep[start:start + len(block)]]
                start += len(block)

    counts = {kind: int(sum(int((c if kind == "chunks" else s).sum()) for _, c, s in sources))
              for kind in ("chunks", "sentences")}

    def vectors(tmp: Path) -> None:
        for kind in ("chunks", "sentences"):
            write_blocks(tmp / f"{kind[:-1]}_vectors.npy", counts[kind], dim, kept(kind))

    matrices = {kind: (counts[kind], _file_blocks(folder, kind)) for kind in ("chunks", "sentences")}
    _write_folder(folder, arrays, vectors, dim, matrices, None)


def _file_blocks(folder: Path, kind: str) -> Callable[[], Iterator[np.ndarray]]:
    """Blocks of the vectors just written into ``folder``'s temporary twin."""
    return lambda: read_blocks(folder.with_name(f".tmp-{folder.name}") / f"{kind[:-1]}_vectors.npy")


def _write_folder(folder: Path, arrays: SegmentArrays, vectors: Callable[[Path], None], dim: int,
                  matrices: dict[str, tuple[int, Callable[[], Iterator[np.ndarray]]]], ann: bool | None) -> None:
    folder = Path(folder)
    tmp = folder.with_name(f".tmp-{folder.name}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        vectors(tmp)
        np.savez(tmp / "chunk_sentences.npz", ptr=np.asarray(arrays.cs_ptr, np.int64),
                 idx=np.asarray(arrays.cs_idx, np.int64))
        np.save(tmp / "chunk_docs.npy", np.asarray(arrays.chunk_docs, np.int64))
        np.save(tmp / "sentence_docs.npy", np.asarray(arrays.sentence_docs, np.int64))
        np.save(tmp / "chunk_lengths.npy", np.asarray(arrays.chunk_lengths, np.int32))
        for kind, (n, blocks) in matrices.items():
            if (n > EXACT_MAX) if ann is None else (ann and n > 0):
                faiss.write_index(_build_ivf(n, dim, blocks), str(tmp / f"{kind}.ivf"))
        for path in tmp.iterdir():
            fsync_path(path)
        fsync_path(tmp)
        os.replace(tmp, folder)
        fsync_path(folder.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


class Segment:
    """One opened segment: mapped arrays and, when large, IVF indexes. Immutable."""

    def __init__(self, seg: int, folder: Path, arrays: SegmentArrays, ann: dict[str, faiss.Index]):
        self.seg = seg
        self.folder = folder
        self.a = arrays
        self.ann = ann
        self.sc_ptr, self.sc_idx = sentence_owners(arrays.cs_ptr, arrays.cs_idx, len(arrays.sentence_vectors))
        self._fds: dict[str, int] = {}
        self._offsets = {kind: _data_offset(self.vectors(kind)) for kind in ("chunks", "sentences")}

    @property
    def n_chunks(self) -> int:
        return len(self.a.chunk_vectors)

    @property
    def n_sentences(self) -> int:
        return len(self.a.sentence_vectors)

    @classmethod
    def open(cls, folder: Path, seg: int) -> "Segment":
        folder = Path(folder)
        links = np.load(folder / "chunk_sentences.npz")

        maps = []

        def mapped(name: str) -> np.ndarray:
            # A plain ndarray over the mapping: np.memmap's subclass machinery costs
            # microseconds on every indexing, and the query path indexes a lot.
            array = np.load(folder / name, mmap_mode="r")
            if getattr(array, "_mmap", None) is not None:
                maps.append(array._mmap)
            return np.asarray(array)

        arrays = SegmentArrays(
            chunk_vectors=mapped("chunk_vectors.npy"),
            sentence_vectors=mapped("sentence_vectors.npy"),
            cs_ptr=links["ptr"], cs_idx=links["idx"],
            chunk_docs=mapped("chunk_docs.npy"),
            sentence_docs=mapped("sentence_docs.npy"),
            chunk_lengths=mapped("chunk_lengths.npy"),
        )
        ann = {}
        for kind in ("chunks", "sentences"):
            path = folder / f"{kind}.ivf"
            if path.exists():
                index = faiss.read_index(str(path))
                index.nprobe = min(IVF_NPROBE, index.nlist)
                ann[kind] = index
        segment = cls(seg, folder, arrays, ann)
        segment.maps = maps
        return segment

    def release(self) -> None:
        """Let go of the mapped pages read so far (MADV_DONTNEED on a read-only file
        mapping: nothing is lost, the next read faults the page in again).

        Queries read scattered vector rows; without this the pages they touched stay
        mapped and count in the process's resident memory until it grows to the size
        of every segment, although the kernel could drop them at any time."""
        for mapping in getattr(self, "maps", ()):
            try:
                mapping.madvise(mmap.MADV_DONTNEED)
            except (OSError, ValueError):  # closed or unsupported: nothing to give back
                pass

    def vectors(self, kind: str) -> np.ndarray:
        return self.a.chunk_vectors if kind == "chunks" else self.a.sentence_vectors

    def rows(self, kind: str, ids: np.ndarray) -> np.ndarray:
        """``vectors(kind)[ids]`` (float32, ids in any order, repeats allowed).

        A large segment's rows are read with ``pread`` into a fresh array instead of
        through the mapping: on this kernel a fault on a file mapping maps the page
        cache's whole large folio, so gathering 2,500 scattered rows of a 470 MB
        matrix made ~450 MB resident in the process (measured on a 10,000-document
        index). Reads through the page cache are as fast once it is warm, and
        only what the query asked for stays in the process."""
        ids = np.asarray(ids, dtype=np.int64)
        vectors = self.vectors(kind)
        if kind not in self.ann or not len(ids):
            return np.asarray(vectors[ids], dtype=np.float32)
        return read_rows(self._file(kind), self._offsets[kind], vectors.shape[1], ids)

    def _file(self, kind: str) -> int:
        fd = self._fds.get(kind)
        if fd is None:
            name = "chunk_vectors.npy" if kind == "chunks" else "sentence_vectors.npy"
            fd = self._fds[kind] = os.open(self.folder / name, os.O_RDONLY)
            # Closed when the last snapshot holding this segment is gone, not when a
            # merge retires it: a reader may still be answering from it.
            weakref.finalize(self, os.close, fd)
        return fd

    def search(self, kind: str, query: np.ndarray, depth: int,
               allowed: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """The ``depth`` nearest ``kind`` rows: ``(scores, local positions)``, best first.

        ``allowed`` is a bool mask over the rows (deleted rows and filters), or None.
        """
        vectors = self.vectors(kind)
        n = len(vectors)
        if n == 0 or depth <= 0:
            return np.zeros(0, np.float32), np.zeros(0, np.int64)
        index = self.ann.get(kind)
        if index is None or (allowed is not None and int(allowed.sum()) <= FILTERED_EXACT_MAX):
            # Exact: over every row, or only over the allowed ones when a filter leaves few.
            rows = None if allowed is None else np.flatnonzero(allowed)
            scores = (vectors if rows is None else vectors[rows]) @ query
            take = min(depth, len(scores))
            if take == 0:
                return np.zeros(0, np.float32), np.zeros(0, np.int64)
            top = np.argpartition(-scores, take - 1)[:take] if take < len(scores) else np.arange(len(scores))
            top = top[np.argsort(-scores[top], kind="stable")]
            ids = top if rows is None else rows[top]
            return scores[top].astype(np.float32), ids.astype(np.int64)
        bitmap = None if allowed is None else np.packbits(allowed, bitorder="little")  # alive until searched
        params = faiss.SearchParametersIVF(nprobe=index.nprobe)
        if bitmap is not None:
            params = faiss.SearchParametersIVF(sel=faiss.IDSelectorBitmap(bitmap), nprobe=index.nprobe)
        scores, ids = index.search(np.ascontiguousarray(query.reshape(1, -1), dtype=np.float32),
                                   min(depth, n), params=params)
        keep = ids[0] >= 0
        return scores[0][keep], ids[0][keep].astype(np.int64)


def _data_offset(array: np.ndarray) -> int:
    """Where a mapped ``.npy`` array's data starts in its file (0 for an in-memory one)."""
    base = array
    while base is not None and not isinstance(base, np.memmap):
        base = getattr(base, "base", None)
    return int(base.offset) if isinstance(base, np.memmap) else 0


# Ids at most this many rows apart are read in one ``pread``, the rows between them
# included: a system call costs about as much as copying a few kilobytes, and a
# question's candidates cluster (a document's chunks and sentences are adjacent).
READ_GAP = 8


def read_rows(fd: int, offset: int, dim: int, ids: np.ndarray) -> np.ndarray:
    """Rows ``ids`` of a float32 (n × dim) matrix stored at ``offset`` in file ``fd``.

    One ``pread`` per run of nearby ids (see READ_GAP).

    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "m.bin"
    >>> _ = path.write_bytes(b"xx" + np.arange(40, dtype=np.float32).tobytes())
    >>> fd = os.open(path, os.O_RDONLY)
    >>> read_rows(fd, 2, 2, np.array([3, 1, 19, 3])).tolist()
    [[6.0, 7.0], [2.0, 3.0], [38.0, 39.0], [6.0, 7.0]]
    >>> os.close(fd)
    """
    unique, inverse = np.unique(ids, return_inverse=True)
    breaks = np.flatnonzero(np.diff(unique) > READ_GAP) + 1
    first = unique[np.concatenate([[0], breaks])]  # each run's first and last id
    last = unique[np.concatenate([breaks - 1, [len(unique) - 1]])]
    sizes = last - first + 1
    begin = np.cumsum(sizes) - sizes  # where each run lands in ``block``
    block = np.empty((int(sizes.sum()), dim), dtype=np.float32)
    buffer = memoryview(block).cast("B")
    row = 4 * dim
    for lo, n, at in zip(first.tolist(), sizes.tolist(), begin.tolist()):
        got = os.preadv(fd, [buffer[at * row:(at + n) * row]], offset + lo * row)
        if got != n * row:
            raise OSError(f"short read in a segment's vectors ({got} of {n * row} bytes); the index may be "
                          "damaged: rebuild it with `qa index --rebuild`")
    run = np.searchsorted(first, unique, side="right") - 1
    return block[(begin[run] + unique - first[run])[inverse]]


def segment_arrays(chunk_vectors: list[np.ndarray], sentence_vectors: list[np.ndarray],
                   chunk_sentences: list[list[int]], chunk_docs: list[int], sentence_docs: list[int],
                   chunk_lengths: list[int], dim: int) -> SegmentArrays:
    """Stack per-row lists into :class:`SegmentArrays`."""
    ptr, idx = csr(chunk_sentences)
    return SegmentArrays(
        chunk_vectors=np.array(chunk_vectors, dtype=np.float32).reshape(-1, dim),
        sentence_vectors=np.array(sentence_vectors, dtype=np.float32).reshape(-1, dim),
        cs_ptr=ptr, cs_idx=idx,
        chunk_docs=np.asarray(chunk_docs, dtype=np.int64),
        sentence_docs=np.asarray(sentence_docs, dtype=np.int64),
        chunk_lengths=np.asarray(chunk_lengths, dtype=np.int32),
    )
