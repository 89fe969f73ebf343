import numpy as np
import pytest

from ingest.chunking import chunk_document
from km_search.search.retrieval import Retriever, feedback_vector
from km_search.index.snapshot import Snapshot
from km_search.index.writer import SnapshotWriter
from km_search.index.layout import SourceInfo
from km_search.types import Document, DocumentMeta, Section

TEXTS = {
    "vpn.md": "Install the WireGuard client and import the VPN profile.",
    "laptop.md": "Request a laptop in ServiceDesk; your manager approves it.",
    "travel.md": "Hotels in London are reimbursed up to 220 pounds per night.",
    "billing.md": "Billing moved to PostgreSQL because MySQL locked tables.",
}


@pytest.fixture
def snapshot(tmp_path, fake_embedder):
    writer = SnapshotWriter(tmp_path / "t", {"name": "t"})
    for path, text in TEXTS.items():
        doc = Document(path, "md", (Section(text, (path,)),), DocumentMeta(title=path))
        chunks = chunk_document(doc)
        writer.add(doc, SourceInfo(path, "h", 1), chunks, fake_embedder.encode([c.indexed_text() for c in chunks]))
    writer.publish()
    return Snapshot.open(tmp_path / "t")


def test_feedback_vector_moves_toward_passages_and_stays_normalized():
    q = np.array([1.0, 0.0], dtype=np.float32)
    moved = feedback_vector(q, np.array([[0.0, 1.0]], dtype=np.float32), 0.5)
    assert np.allclose(moved, [np.sqrt(0.5), np.sqrt(0.5)])
    assert feedback_vector(q, np.zeros((0, 2), dtype=np.float32), 0.5) is q


def test_snapshot_returns_stored_vectors(snapshot, fake_embedder):
    vectors = snapshot.vectors([2, 4])
    assert vectors.shape == (2, fake_embedder.dimension)
    assert np.allclose(vectors[0], snapshot.shards[0].index.reconstruct(2))


class KeywordReranker:
    """Scores a passage by whether it mentions a word: makes the reranker's effect visible."""

    def __init__(self, word):
        self.word, self.calls = word, 0

    def score(self, query, texts):
        self.calls += 1
        self.texts = texts
        return [float(self.word in t) for t in texts]


def test_reranker_reorders_the_head_of_the_ranking(snapshot, fake_embedder, settings):
    plain = Retriever(snapshot, fake_embedder, settings).search("hotel London night", k=4)
    assert plain.hits[0].doc_path == "travel.md"
    reranker = KeywordReranker("ServiceDesk")
    reranked = Retriever(snapshot, fake_embedder, settings, reranker).search("hotel London night", k=4)
    assert reranker.calls == 1
    assert reranked.hits[0].doc_path == "laptop.md"
    assert "travel.md\n" + TEXTS["travel.md"] in reranker.texts  # judged as the embedder read it
    assert [h.score for h in reranked.hits] == sorted((h.score for h in reranked.hits), reverse=True)


def test_a_real_cross_encoder_from_a_local_folder(tmp_path, snapshot, fake_embedder, settings):
    """A tiny randomly initialised BERT cross-encoder built here: no reranker model ships offline."""
    import shutil

    from transformers import BertConfig, BertForSequenceClassification

    from km_search.embedding.embedder import resolve_model_path
    from km_search.embedding.rerank import Reranker

    folder = tmp_path / "tiny-reranker"
    config = BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=64, num_labels=1)
    BertForSequenceClassification(config).save_pretrained(folder)
    bundled = resolve_model_path("all-MiniLM-L6-v2")
    for name in ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy(bundled / name, folder / name)
    reranker = Reranker(str(folder))
    result = Retriever(snapshot, fake_embedder, settings.model_copy(update={"rerank_depth": 4}), reranker).search("vpn", k=4)
    texts = {h.chunk_id: h for h in result.hits}
    own = reranker.score("vpn", [f"{h.title}\n{h.text}" for h in result.hits])
    assert [h.chunk_id for h in result.hits] == [h.chunk_id for _, h in sorted(zip(own, result.hits), key=lambda p: -p[0])]
    assert len(texts) == 4


def test_reranker_path_must_be_a_model_folder(tmp_path):
    from km_search.errors import KmError
    from km_search.embedding.rerank import Reranker

    with pytest.raises(KmError, match="not a local CrossEncoder folder"):
        Reranker(str(tmp_path))


def test_dense_feedback_searches_again_with_the_moved_query(snapshot, fake_embedder, settings):
    class Recording:
        def __init__(self, inner):
            self.inner, self.queries = inner, []

        def dense_search(self, vector, n, *args, **kwargs):
            self.queries.append(vector)
            return self.inner.dense_search(vector, n, *args, **kwargs)

        def __getattr__(self, name):
            return getattr(self.inner, name)

    recording = Recording(snapshot)
    with_feedback = settings.model_copy(update={"feedback_passages": 2})
    hits = Retriever(recording, fake_embedder, with_feedback).search("hotel London night", k=2).hits
    assert len(recording.queries) == 2 and not np.allclose(recording.queries[0], recording.queries[1])
    assert hits[0].doc_path == "travel.md"


def test_a_hit_on_joined_sections_links_to_the_part_it_matched(tmp_path, fake_embedder, settings):
    record = (
        Section("Accepted.", ("ADR-12", "Status"), anchor="status"),
        Section("MySQL was slow for reports and locked tables during migrations.", ("ADR-12", "Context"),
                anchor="context"),
        Section("Move billing to PostgreSQL next quarter.", ("ADR-12", "Decision"), anchor="decision"),
    )
    doc = Document("adr/12.md", "md", record, DocumentMeta(title="ADR-12"))
    [chunk] = chunk_document(doc, 100, 10, pack_document_words=1000)
    writer = SnapshotWriter(tmp_path / "t", {"name": "t"})
    writer.add(doc, SourceInfo("adr/12.md", "h", 1), [chunk], fake_embedder.encode([chunk.indexed_text()]))
    writer.publish()
    retriever = Retriever(Snapshot.open(tmp_path / "t"), fake_embedder, settings)
    [decision] = retriever.search("PostgreSQL quarter", k=1).hits
    assert decision.source == "adr/12.md#decision" and decision.heading_path == ("ADR-12", "Decision")
    [context] = retriever.search("slow reports migrations", k=1).hits
    assert context.source == "adr/12.md#context"
    # a quote links to the part it starts in, whichever part the hit itself was linked to
    assert context.source_at(context.text.index("Move billing")) == "adr/12.md#decision"
    assert context.source_at(0) == "adr/12.md#status"


def test_the_first_page_is_lifted_by_its_best_sentence(tmp_path, fake_embedder, settings):
    """Two passages about one topic: the one whose stored sentence says what the question asks
    overtakes the one whose passage vector is closer, by the sentence weight, and only within the
    first page."""
    from km_search.index.context import SentenceVectors

    query = "why did billing move"
    q = fake_embedder.encode_query(query)
    rng = np.random.default_rng(7)

    def unit(v):
        return (v / np.linalg.norm(v)).astype(np.float32)

    writer = SnapshotWriter(tmp_path / "s", {"name": "s"})
    paths = ["close.md", "answers.md"] + [f"other{i}.md" for i in range(12)]
    for i, path in enumerate(paths):
        doc = Document(path, "md", (Section("Some text. More text.", (path,)),), DocumentMeta(title=path))
        chunks = chunk_document(doc)
        noise = unit(rng.normal(size=fake_embedder.dimension))
        passage = {0: unit(q + 0.3 * noise), 1: unit(q + 0.6 * noise)}.get(i, unit(0.3 * q + noise))
        sentence = q if path == "answers.md" else noise
        writer.add(doc, SourceInfo(path, "h", 1), chunks, passage[None, :],
                   sentences=SentenceVectors.of([(np.array([[0, 10]]), sentence[None, :])], fake_embedder.dimension))
    writer.publish()
    snapshot = Snapshot.open(tmp_path / "s")

    def first(weight):
        found = Retriever(snapshot, fake_embedder, settings.model_copy(update={"sentence_weight": weight})).search(query, k=3)
        return [h.doc_path for h in found.hits][:2]

    assert first(0.0) == ["close.md", "answers.md"]
    assert first(0.15)[0] == "answers.md"
    # a passage past the first page is not lifted, however good its sentence
    ranked = Retriever(snapshot, fake_embedder, settings.model_copy(update={"sentence_weight": 1.0})).rank(query, 20)
    assert [cid for cid, *_ in ranked[10:]] == [cid for cid, *_ in Retriever(
        snapshot, fake_embedder, settings.model_copy(update={"sentence_weight": 0.0})).rank(query, 20)[10:]]
