"""The export cache (issue #18): one exported, calibrated graph per model, backend and library versions,
shared by every index, written whole, once, even by concurrent processes; a temporary fallback when
it cannot be written; older indexes keep their own `<index>/models` export."""

import json
import multiprocessing
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from km_search.embedding import embedder as emb
from km_search.embedding.embedder import Embedder, ensure_export, export_key, resolve_model_path


@pytest.fixture
def model(tmp_path):
    """A copy of the bundled model, so tests may change its files."""
    folder = tmp_path / "model-copy"
    shutil.copytree(resolve_model_path("all-MiniLM-L6-v2"), folder)
    return folder


def _fake_export(target: Path, model_path: Path, backend: str, source: Path | None) -> None:
    """Stands in for the real export (tens of seconds): slow enough for processes to race, and it
    appends to a shared log so exports can be counted across processes."""
    log = os.environ.get("KM_TEST_EXPORT_LOG")
    if log:
        with open(log, "a") as f:
            f.write(f"{backend} {os.getpid()}\n")
    time.sleep(0.3)
    target.write_text(f"graph of {backend} from {source.name if source else model_path.name}")


@pytest.fixture
def fake_export(monkeypatch, tmp_path):
    log = tmp_path / "exports.log"
    monkeypatch.setenv("KM_TEST_EXPORT_LOG", str(log))
    monkeypatch.setattr(emb, "_export_into", _fake_export)
    return log


def _exported(log: Path) -> list[str]:
    return log.read_text().split("\n")[:-1] if log.exists() else []


def test_an_export_is_made_once_and_reused(model, tmp_path, fake_export):
    cache = tmp_path / "cache"
    first = ensure_export(model, "openvino-int8", cache)
    again = ensure_export(model, "openvino-int8", cache)
    assert first == again and first.exists()
    assert [line.split()[0] for line in _exported(fake_export)] == ["onnx", "openvino-int8"]  # fp32 first, once
    entry = first.parent
    assert entry.parent == cache / "exports" and entry.name.startswith("model-copy-openvino-int8-")
    recorded = json.loads((entry / "export.json").read_text())
    assert recorded["backend"] == "openvino-int8" and "nncf" in recorded["libraries"] and recorded["calibration"]
    ensure_export(model, "openvino", cache)  # another backend reuses the cached fp32 ONNX graph
    assert [line.split()[0] for line in _exported(fake_export)] == ["onnx", "openvino-int8", "openvino"]
    assert list(cache.rglob(".tmp-*")) == []  # entries land whole, by rename


def test_a_killed_exporters_leftover_is_removed_by_the_next_export(model, tmp_path, fake_export):
    cache = tmp_path / "cache"
    entry = ensure_export(model, "onnx", cache).parent
    shutil.rmtree(entry)
    leftover = entry.parent / f".tmp-{entry.name}-killed"  # what a SIGKILL mid-export leaves
    (leftover / "graph").mkdir(parents=True)
    assert ensure_export(model, "onnx", cache).exists() and not leftover.exists()
    assert list(cache.rglob(".tmp-*")) == []


def test_the_key_follows_the_model_files_backend_and_libraries(model, monkeypatch):
    before = export_key(model, "openvino-int8")
    assert before == export_key(model, "openvino-int8")
    assert emb._digest(before) != emb._digest(export_key(model, "openvino"))
    config = json.loads((model / "config.json").read_text())
    config["layer_norm_eps"] = 1e-6
    (model / "config.json").write_text(json.dumps(config))  # same size class, new content
    changed = export_key(model, "openvino-int8")
    assert emb._digest(changed) != emb._digest(before)
    weights = model / "model.safetensors"
    os.utime(weights, ns=(weights.stat().st_atime_ns, weights.stat().st_mtime_ns + 10**9))  # new weights file
    assert emb._digest(export_key(model, "openvino-int8")) != emb._digest(changed)
    monkeypatch.setattr(emb, "_library_version", lambda name: "99.0" if name == "openvino" else "1.0")
    assert emb._digest(export_key(model, "openvino-int8")) != emb._digest(changed)


def test_changed_model_files_are_exported_again(model, tmp_path, fake_export):
    cache = tmp_path / "cache"
    first = ensure_export(model, "onnx", cache)
    (model / "tokenizer_config.json").write_text("{}")
    second = ensure_export(model, "onnx", cache)
    assert first != second and first.exists() and second.exists()
    assert len(_exported(fake_export)) == 2


def test_a_second_embedder_and_a_second_index_reuse_the_cache(model, tmp_path, fake_export, monkeypatch):
    from km_search.settings import Settings

    class Runtime:  # the graph's path, without loading it
        def __init__(self, model_path, backend, export_dir, threads, legacy_dir=None, streams=None):
            self.graph = emb.legacy_export(model_path, backend, legacy_dir) or ensure_export(model_path, backend, export_dir)

    monkeypatch.setattr(emb, "_GraphRuntime", Runtime)
    settings = Settings(index_dir=tmp_path / "indexes", cache_dir=tmp_path / "cache", model=str(model))
    one = Embedder.from_settings(settings, "hr").runtime.graph
    two = Embedder.from_settings(settings, "finance").runtime.graph
    assert one == two and one.is_relative_to(tmp_path / "cache")
    assert len(_exported(fake_export)) == 2  # onnx + openvino-int8, for the first index only
    assert not (tmp_path / "indexes" / "hr" / "models").exists()  # nothing per index any more


def test_an_index_built_before_the_cache_keeps_its_own_export(model, tmp_path, fake_export):
    legacy = tmp_path / "indexes" / "old" / "models" / f"{model.name}-{emb._fingerprint(model)}"
    legacy.mkdir(parents=True)
    (legacy / "model-int8.xml").write_text("calibrated on that index's corpus")
    assert emb.legacy_export(model, "openvino-int8", legacy.parent) == legacy / "model-int8.xml"
    assert emb.legacy_export(model, "openvino", legacy.parent) is None  # that backend was never exported there
    assert emb.legacy_export(model, "openvino-int8", None) is None


def test_an_unwritable_cache_falls_back_to_a_temporary_folder_and_says_which_setting(model, tmp_path, fake_export, caplog):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")  # a cache path under a regular file cannot be created, even by root
    with caplog.at_level("WARNING", logger="km_search.embedding"):
        graph = ensure_export(model, "onnx", blocker / "cache")
    assert graph.exists() and not graph.is_relative_to(blocker)
    assert "KM_CACHE_DIR" in caplog.text and str(blocker / "cache") in caplog.text
    assert ensure_export(model, "onnx", blocker / "cache") == graph  # exported once per process
    assert len(_exported(fake_export)) == 1


def _race(model: str, cache: str, backend: str, out: str) -> None:
    Path(out).write_text(str(ensure_export(Path(model), backend, Path(cache))))


def test_concurrent_exporters_export_once_and_never_corrupt_the_entry(model, tmp_path, fake_export):
    cache = tmp_path / "cache"
    context = multiprocessing.get_context("fork")  # the children inherit the fake exporter
    procs = [context.Process(target=_race, args=(str(model), str(cache), "openvino-int8", str(tmp_path / f"out{i}")))
             for i in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    graphs = {(tmp_path / f"out{i}").read_text() for i in range(4)}
    assert len(graphs) == 1
    graph = Path(graphs.pop())
    assert graph.read_text() == "graph of openvino-int8 from model.onnx"
    assert [line.split()[0] for line in _exported(fake_export)] == ["onnx", "openvino-int8"]
    assert sorted(p.name for p in graph.parent.iterdir()) == ["export.json", "model-int8.xml"]
    assert list(cache.rglob(".tmp-*")) == []


def test_a_failed_export_leaves_no_entry(model, tmp_path, monkeypatch):
    def broken(target, model_path, backend, source):
        target.write_text("half")
        raise RuntimeError("export crashed")

    monkeypatch.setattr(emb, "_export_into", broken)
    with pytest.raises(RuntimeError):
        ensure_export(model, "onnx", tmp_path / "cache")
    assert [p for p in (tmp_path / "cache" / "exports").iterdir() if not p.name.endswith(".lock")] == []


def test_the_shipped_calibration_text_has_several_hundred_varied_paragraphs():
    texts = emb.calibration_texts()
    assert len(texts) >= 280 and not any(t.startswith("#") for t in texts)
    samples = emb.calibration_samples()
    assert max(len(s.split()) for s in samples) >= 200 and min(len(s.split()) for s in samples) < 10
    for genre in ("Decision", "Runbook", "Q:", "SELECT", "Meeting", "kubectl"):
        assert any(genre in t for t in texts), genre


def test_the_cache_folder_comes_from_settings(tmp_path, monkeypatch):
    from km_search.settings import Settings, default_cache_dir

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "km-search"
    assert Settings().cache_path() == tmp_path / "xdg" / "km-search"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert default_cache_dir() == Path.home() / ".cache" / "km-search"
    assert Settings(cache_dir=tmp_path / "c").cache_path() == tmp_path / "c"
    assert Embedder.from_settings(Settings(cache_dir=tmp_path / "c")).cache_dir == tmp_path / "c"


@pytest.mark.slow
def test_a_real_int8_export_is_reused_by_a_second_embedder(tmp_path_factory, real_embedder):
    """With the real exporter: the second embedder of the same cache exports nothing, and the graph
    calibrated on the shipped text stays close to the torch model."""
    from km_search.settings import get_settings

    cache = get_settings().cache_path()  # the machine's own cache: warm after the first run
    texts = ["How do I reset my password?", "The billing service moved to PostgreSQL because replication lagged."]
    first = Embedder(backend="openvino-int8", cache_dir=cache).encode(texts)
    made = dict(emb.exports_made)
    second = Embedder(backend="openvino-int8", cache_dir=cache).encode(texts)
    assert emb.exports_made == made
    assert np.array_equal(first, second)
    assert (first * real_embedder.encode(texts)).sum(axis=1).min() >= 0.97
