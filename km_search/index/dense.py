"""The dense index of one shard: how it is built, loaded and searched.

Kept apart from the snapshot layout (km_search/index/layout.py) so the index kind can change with the corpus size:

- `flat`: exact inner product over float32 vectors, while a shard is small enough for a full scan
  to stay fast (KM_ANN_EXACT_ROWS);
- `ivf_pq4` (the default beyond): an inverted file of 4-bit product-quantized codes scanned with
  FAISS' SIMD "fast scan" (d/4 sub-quantizers: 48 bytes a 384-d passage, ~56 with its id). The
  lists nearest the query are scanned, and the best `REFINE[kind]` x max(n, 100) candidates are
  rescored exactly against the shard's raw float32 vectors (`shard-NNNN.vectors.npy`, memory-mapped:
  only the rows rescored are read), so scores are exact cosines like the flat index's and recall@10
  against exact search is >= 0.98 (docs/performance.md);
- `ivf_sq8`: the same with 8-bit scalar-quantized codes (~390 bytes a passage), the default before
  the fast-scan codes measured better; still built on request and read.

FAISS ids are chunk ids; vectors are L2-normalized, so inner product is cosine. `allowed` (filters,
access control) is always honoured: a small allowed set is scored exactly, a large one scans more
lists in proportion to how much of the shard it excludes.
"""

from __future__ import annotations

import math
import mmap
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

REFINE = {"ivf_sq8": 3, "ivf_pq4": 10}  # IVF candidates rescored exactly, per result asked for
RESCORED_FOR = 100  # candidates are rescored as if at least this many results were asked
EXACT_ALLOWED = 20_000  # an allowed set this small is scored exactly, without the index
TRAIN_PER_LIST = 40  # k-means training points per list (FAISS warns below 39)


@dataclass
class ShardIndex:
    """A loaded shard: the FAISS index, plus the raw vectors and sorted ids when they are on disk."""

    index: Any
    vectors: np.ndarray | None = None  # float32 (rows, d), row i belongs to ids[i]; usually a memmap
    ids: np.ndarray | None = None  # int64, ascending

    @property
    def ntotal(self) -> int:
        return int(self.index.ntotal)

    @property
    def d(self) -> int:
        return int(self.index.d)

    @cached_property
    def ivf(self) -> Any:
        """The inverted file inside the index, or None for a flat one (FAISS answers that with an
        exception, ~0.5 ms: asked once, not per query)."""
        return _ivf(self.index)

    @property
    def kind(self) -> str:
        import faiss

        if isinstance(self.index, faiss.IndexIVFPQFastScan):
            return "ivf_pq4"
        return "ivf_sq8" if self.ivf is not None else "flat"


def options(settings: Any, rows: int) -> dict[str, Any]:
    """The index kind and parameters for a shard of `rows` passages (stored in the manifest's "ann")."""
    if rows <= settings.ann_exact_rows:
        return {"kind": "flat"}
    nlist = int(min(16384, max(256, 2 ** round(math.log2(4 * math.sqrt(rows))))))
    nprobe = settings.ann_nprobe or default_nprobe(min(nlist, max(1, rows // TRAIN_PER_LIST)))
    return {"kind": "ivf_pq4", "nlist": nlist, "nprobe": int(min(nprobe, nlist)), "refine": REFINE["ivf_pq4"]}


def default_nprobe(nlist: int) -> int:
    """Lists scanned per query (of the `nlist` the shard really has). Measured with the fast-scan
    codes and 10x exact rescoring (docs/performance.md): on real passage vectors (python3.11-doc, 15k
    passages, 387 lists, in-domain questions) recall@10 is 0.977 at 32 lists, 0.990 at 64, 0.998 at
    128; on synthetic vectors shaped like real ones (their mean and covariance) 0.994 at 128 of 1024
    lists (100k, 0.8 ms) and 0.978 / 0.992 at 256 / 512 of 2048 (500k, 1.5 / 2.0 ms). Recall
    follows the share of lists scanned, so a quarter of them, and at least 64."""
    return max(64, nlist // 4)


def build_index(vectors: np.ndarray, ids: np.ndarray, options: dict[str, Any] | None = None) -> ShardIndex:
    """A FAISS index over `vectors` whose ids are `ids` (chunk ids), of the kind `options` names."""
    import faiss

    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    ids = np.ascontiguousarray(ids, dtype=np.int64)
    options = options or {"kind": "flat"}
    d = vectors.shape[1]
    if options["kind"] == "flat":
        index = faiss.IndexIDMap2(faiss.IndexFlatIP(d))
    elif options["kind"] in REFINE:
        nlist = int(min(options["nlist"], max(1, len(vectors) // TRAIN_PER_LIST)))
        if options["kind"] == "ivf_sq8":
            index = faiss.IndexIVFScalarQuantizer(
                faiss.IndexFlatIP(d), d, nlist, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT
            )
        else:
            subquantizers = next(m for m in range(max(1, d // 4), 0, -1) if d % m == 0)
            index = faiss.IndexIVFPQFastScan(faiss.IndexFlatIP(d), d, nlist, subquantizers, 4, faiss.METRIC_INNER_PRODUCT)
        index.cp.niter = 10  # k-means converges enough for list assignment; build time is linear in it
        sample = vectors
        if len(vectors) > nlist * TRAIN_PER_LIST:
            rng = np.random.default_rng(0)
            sample = vectors[np.sort(rng.choice(len(vectors), nlist * TRAIN_PER_LIST, replace=False))]
        index.train(sample)
        index.nprobe = int(min(options.get("nprobe", default_nprobe(nlist)), nlist))
    else:
        raise ValueError(f"unknown index kind {options['kind']!r}: rebuild the index with `km ingest`")
    index.add_with_ids(vectors, ids)
    order = np.argsort(ids, kind="stable")
    return ShardIndex(index, vectors[order], ids[order])


def write_index(index: ShardIndex, path: Path) -> None:
    """Writes the FAISS file; the raw vectors and ids are the store's `.vectors.npy`/`.ids.npy`."""
    import faiss

    faiss.write_index(index.index, str(path))


def sibling(path: Path, what: str) -> Path:
    """`shard-0000.faiss` -> `shard-0000.vectors.npy` / `shard-0000.ids.npy`."""
    return path.with_suffix(f".{what}.npy")


def open_vectors(path: Path) -> np.ndarray:
    """A shard's raw vectors, memory-mapped read-only and marked for random access: rescoring reads a
    few hundred scattered rows a query, and the kernel's default read-ahead would otherwise pull in
    (and keep resident) ~128 KiB around each, most of the file after a few thousand queries."""
    vectors = np.load(path, mmap_mode="r")
    raw = getattr(vectors, "_mmap", None)
    if raw is not None and hasattr(raw, "madvise") and hasattr(mmap, "MADV_RANDOM"):
        try:
            raw.madvise(mmap.MADV_RANDOM)
        except OSError:
            pass
    return vectors


def read_index(path: Path, vectors: np.ndarray | None = None, ids: np.ndarray | None = None) -> ShardIndex:
    """Loads a shard; the raw vectors and ids default to the `.vectors.npy`/`.ids.npy` files beside it
    (memory-mapped, so start-up does not read them). Without them an IVF shard returns its
    approximate scores from its codes."""
    import faiss

    index = faiss.read_index(str(path))
    if vectors is None and sibling(path, "vectors").exists():
        vectors = open_vectors(sibling(path, "vectors"))
    if ids is None and sibling(path, "ids").exists():
        ids = np.load(sibling(path, "ids"))
    if vectors is not None and ids is None:
        vectors = None
    return ShardIndex(index, vectors, None if ids is None else np.asarray(ids, dtype=np.int64))


def _ivf(index: Any) -> Any:
    import faiss

    try:
        return faiss.extract_index_ivf(index)
    except RuntimeError:
        return None


def locate(ids: np.ndarray, wanted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(positions in `wanted`, row numbers in the shard) of the `wanted` chunk ids held by a shard
    whose rows hold the ascending chunk `ids` (its dense vectors, postings and context share rows)."""
    wanted = np.asarray(wanted, dtype=np.int64)
    if not len(ids) or not len(wanted):
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    pos = np.minimum(np.searchsorted(ids, wanted), len(ids) - 1)
    held = np.flatnonzero(ids[pos] == wanted)
    return held, pos[held]


def rows_of(ids: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """Row numbers of the `wanted` ids the shard holds, in the order of `wanted`."""
    return locate(ids, wanted)[1]


def _positions(shard: ShardIndex, wanted: np.ndarray) -> np.ndarray:
    assert shard.ids is not None
    return rows_of(shard.ids, wanted)


def _exact(shard: ShardIndex, query: np.ndarray, positions: np.ndarray, n: int) -> list[tuple[int, float]]:
    assert shard.vectors is not None and shard.ids is not None
    if not len(positions):
        return []
    positions = np.sort(positions)  # memmap reads in file order
    scores = np.asarray(shard.vectors[positions], dtype=np.float32) @ query[0]
    top = np.argsort(-scores, kind="stable")[:n] if len(scores) <= n else _top(scores, n)
    return [(int(shard.ids[positions[i]]), float(scores[i])) for i in top]


def _top(scores: np.ndarray, n: int) -> np.ndarray:
    part = np.argpartition(-scores, n - 1)[:n]
    return part[np.argsort(-scores[part], kind="stable")]


def search(index: ShardIndex, query: np.ndarray, n: int, allowed: np.ndarray | None = None) -> list[tuple[int, float]]:
    """Top-n (chunk id, cosine) of one shard; only among the `allowed` chunk ids when given."""
    import faiss

    n = min(n, index.ntotal)
    if n <= 0:
        return []
    query = np.ascontiguousarray(np.asarray(query, dtype=np.float32).reshape(1, -1))
    ivf = index.ivf
    rescorable = index.vectors is not None and index.ids is not None
    if allowed is not None:
        allowed = np.asarray(allowed, dtype=np.int64)
        if not len(allowed):
            return []
        if rescorable and len(allowed) <= EXACT_ALLOWED:
            return _exact(index, query, _positions(index, allowed), n)
    # Rescored as if at least RESCORED_FOR results were asked (what retrieval asks), so recall does
    # not drop for a caller asking few.
    want = n if ivf is None or not rescorable else min(index.ntotal, max(n, RESCORED_FOR) * REFINE[index.kind])
    params = None
    if ivf is not None:
        nprobe = ivf.nprobe
        if allowed is not None:  # scan more lists when the filter excludes most of each
            share = min(1.0, len(allowed) / max(1, index.ntotal))
            nprobe = int(min(ivf.nlist, math.ceil(nprobe / max(share, 1e-9))))
        params = faiss.SearchParametersIVF(nprobe=nprobe)
        if allowed is not None:
            params.sel = faiss.IDSelectorBatch(np.ascontiguousarray(allowed))
    elif allowed is not None:
        # Exact: the flat index scores every vector the selector lets through, so the top n
        # among the allowed ids are found however few of them there are.
        params = faiss.SearchParameters(sel=faiss.IDSelectorBatch(np.ascontiguousarray(allowed)))
    scores, ids = index.index.search(query, want, params=params) if params else index.index.search(query, want)
    found = ids[0][ids[0] >= 0]
    if ivf is not None and rescorable:
        return _exact(index, query, _positions(index, found), n)
    return [(int(i), float(s)) for i, s in zip(ids[0], scores[0]) if i >= 0][:n]
