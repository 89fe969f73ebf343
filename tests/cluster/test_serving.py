"""A snapshot served shard by shard (km_search/cluster/serving.py) ranks exactly as the snapshot read
whole: the merge of shard answers, the snapshot-wide BM25 statistics and the access filters.
In process here; over a real Ray Serve cluster in test_ray.py."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from km_search.cluster.serving import InProcessShard, RemoteSnapshot, ShardServer, corpus_of
from km_search.index.snapshot import Snapshot, published
from km_search.search.retrieval import Retriever
from km_search.types import SearchFilters

DATA = Path(__file__).resolve().parents[1] / "ingest" / "data" / "debian-faq"
QUERIES = ["how do I upgrade my Debian system", "kernel modules", "dpkg", "where can I get support",
           "which package tools should I use to install software", "stable testing unstable"]


@pytest.fixture(scope="module")
def sharded(tmp_path_factory):
    from helpers import HashingEmbedder
    from ingest.pipeline import ingest
    from km_search.settings import Settings

    settings = Settings(index_dir=tmp_path_factory.mktemp("idx"), shard_rows=25, parse_workers=0)
    ingest([DATA], settings, index="faq", embedder=HashingEmbedder(), progress=False)
    return settings, settings.index_path("faq")


def _remote(index_path: Path) -> RemoteSnapshot:
    path, manifest = published(index_path)
    corpus = corpus_of(path, manifest)
    servers = [ShardServer(str(path), n, corpus) for n in range(len(manifest["shards"]))]
    return RemoteSnapshot.over(path, manifest, [InProcessShard(s) for s in servers])


def test_the_snapshot_has_several_shards(sharded):
    _, index_path = sharded
    assert len(Snapshot.open(index_path).manifest["shards"]) >= 3


@pytest.mark.parametrize("mode", ["hybrid", "dense", "lexical"])
def test_shards_served_apart_rank_as_the_whole_snapshot(sharded, mode):
    from helpers import HashingEmbedder

    settings, index_path = sharded
    local = Retriever(Snapshot.open(index_path), HashingEmbedder(), settings)
    remote = Retriever(_remote(index_path), HashingEmbedder(), settings)
    for query in QUERIES:
        expected = local.search(query, k=10, mode=mode).hits
        got = remote.search(query, k=10, mode=mode).hits
        assert [h.chunk_id for h in got] == [h.chunk_id for h in expected], query
        assert [h.score for h in got] == pytest.approx([h.score for h in expected], abs=1e-6)


def test_filters_and_statistics_hold_across_shards(sharded):
    from helpers import HashingEmbedder

    settings, index_path = sharded
    whole, apart = Snapshot.open(index_path), _remote(index_path)
    filters = SearchFilters(paths=("kernel",))
    local = Retriever(whole, HashingEmbedder(), settings).search("modules", k=5, filters=filters).hits
    remote = Retriever(apart, HashingEmbedder(), settings).search("modules", k=5, filters=filters).hits
    assert local and [h.chunk_id for h in remote] == [h.chunk_id for h in local]
    assert all(h.doc_path.startswith("kernel") for h in remote)
    words = ["kernel", "package", "nonexistentword"]
    assert apart.lexical.document_frequencies(words) == whole.lexical.document_frequencies(words)
    allowed = whole.allowed_chunks(filters)
    assert apart.lexical.document_frequencies(words, allowed) == whole.lexical.document_frequencies(words, allowed)
    ids = np.arange(0, whole.manifest["counts"]["chunks"] + 5, dtype=np.int64)
    assert np.array_equal(apart.vectors(ids), whole.vectors(ids))
    assert [a.tolist() for a in apart.neighbors(ids)] == [a.tolist() for a in whole.neighbors(ids)]


def test_no_cluster_at_the_address_is_a_clear_error_at_once():
    import socket

    from km_search.cluster.connect import connect
    from km_search.errors import ClusterUnavailable

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ClusterUnavailable, match=f"no Ray cluster answers at 127.0.0.1:{port}.*ray start --head"):
        connect(f"127.0.0.1:{port}")
