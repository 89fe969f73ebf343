"""Window vectors and neighbours (km_search/index/context.py), and how the store and retrieval use them."""

from __future__ import annotations

import numpy as np
import pytest

from km_search.index.context import Windows, borrow_from_neighbors, pool_windows


def _unit(rows: np.ndarray) -> np.ndarray:
    return rows / np.linalg.norm(rows, axis=-1, keepdims=True)


def test_windows_are_the_means_of_consecutive_runs_and_the_last_ends_at_the_end():
    tokens = np.random.default_rng(0).normal(size=(100, 8)).astype(np.float32)
    windows = pool_windows(tokens, size=48)
    expected = _unit(np.stack([tokens[0:48].mean(0), tokens[48:96].mean(0), tokens[52:100].mean(0)]))
    np.testing.assert_allclose(windows, expected, atol=1e-6)
    np.testing.assert_allclose(pool_windows(tokens[:30], size=48), _unit(tokens[:30].mean(0, keepdims=True)), atol=1e-6)
    assert pool_windows(tokens[:0], size=48).shape == (0, 8)


def test_best_window_is_the_highest_cosine_per_row_within_int8_precision():
    rng = np.random.default_rng(1)
    per_row = [_unit(rng.normal(size=(k, 32))).astype(np.float32) for k in (3, 0, 1, 5)]
    windows = Windows.of(per_row, 32)
    query = _unit(rng.normal(size=32)).astype(np.float32)
    best = windows.best(query, np.array([3, 1, 0, 2]))
    expected = [max(per_row[3] @ query), np.nan, max(per_row[0] @ query), max(per_row[2] @ query)]
    np.testing.assert_allclose(best, expected, atol=5e-3)
    assert np.isnan(best[1])


def test_windows_taken_and_joined_keep_each_rows_own_windows():
    rng = np.random.default_rng(2)
    per_row = [_unit(rng.normal(size=(k, 16))).astype(np.float32) for k in (2, 0, 3, 1)]
    windows = Windows.of(per_row, 16)
    query = _unit(rng.normal(size=16)).astype(np.float32)
    every = windows.best(query, np.arange(4))
    kept = windows.take(np.array([True, False, True, True]))
    np.testing.assert_allclose(kept.best(query, np.arange(3)), every[[0, 2, 3]], rtol=1e-6)
    joined = Windows.join([windows.take(slice(2, 4)), windows.take(slice(0, 2)), Windows.none(2, 16)], 16)
    assert joined.rows == 6
    np.testing.assert_allclose(joined.best(query, np.arange(6))[:4], every[[2, 3, 0, 1]], rtol=1e-6)
    assert np.isnan(joined.best(query, np.arange(6))[[3, 4, 5]]).all()


def test_each_passage_borrows_from_its_best_neighbour_only():
    scores = np.array([1.0, 0.2, 0.5, 0.9], dtype=np.float32)
    before = np.array([-1, 0, 1, -1])  # rows 0-2 are one section, row 3 its own
    after = np.array([1, 2, -1, -1])
    np.testing.assert_allclose(borrow_from_neighbors(scores, before, after, 0.5), [1.1, 0.7, 0.6, 0.9])
    np.testing.assert_allclose(borrow_from_neighbors(scores, before, after, 0.0), scores)


def test_lexical_scores_of_given_ids_are_the_scores_search_gives_them():
    from km_search.index.lexical import LexicalIndex, build_postings

    passages = [("Release notes", "the release was delayed by a broken build"), ("Build", "build the package with make"),
                ("Other", "nothing relevant here"), ("Notes", "release the lock after the build finishes")]
    index = LexicalIndex([build_postings(passages[:2]), build_postings(passages[2:])], [np.array([10, 11]), np.array([20, 21])])
    found = dict(index.search("release build", 10))
    ids = np.array([21, 10, 20, 11, 99])
    np.testing.assert_allclose(index.scored("release build").of(ids), [found[21], found[10], 0.0, found[11], 0.0], rtol=1e-6)


def _doc(path, sections):
    from km_search.types import Document, DocumentMeta, Section

    return Document(path, "markdown", tuple(Section(text, (heading,)) for heading, text in sections), DocumentMeta(title=path))


def _index(tmp_path, embedder, documents, base=None):
    from ingest.chunking import chunk_document
    from km_search.index.writer import SnapshotWriter
    from km_search.index.layout import SourceInfo

    writer = SnapshotWriter(tmp_path / "idx", {"name": "idx"}, base=base)
    for doc in documents:
        chunks = chunk_document(doc, 30, 0)
        vectors, windows = embedder.encode_passages([c.indexed_text() for c in chunks])
        writer.add(doc, SourceInfo(f"/x/{doc.path}", doc.path, 1), chunks, vectors, windows)
    return writer.publish()


def test_neighbours_are_the_chunks_before_and_after_in_the_same_section(tmp_path, fake_embedder):
    from km_search.index.snapshot import Snapshot

    long_text = " ".join(f"Sentence {i} of the long section says something." for i in range(20))  # ~140 words
    _index(tmp_path, fake_embedder, [
        _doc("a.md", [("Intro", "A short intro."), ("Long", long_text), ("Next", "Another short one.")]),
        _doc("b.md", [("Long", long_text)]),
    ])
    snapshot = Snapshot.open(tmp_path / "idx")
    rows = snapshot.db.execute("SELECT id, doc_id, heading_path FROM chunks ORDER BY id").fetchall()
    ids = np.array([r["id"] for r in rows])
    before, after = snapshot.neighbors(ids)
    for i, row in enumerate(rows):
        same = lambda j: 0 <= j < len(rows) and (rows[j]["doc_id"], rows[j]["heading_path"]) == (row["doc_id"], row["heading_path"])
        assert before[i] == (ids[i - 1] if same(i - 1) else -1)
        assert after[i] == (ids[i + 1] if same(i + 1) else -1)
    assert (before >= 0).sum() >= 6  # both long sections were cut into several chunks
    # window scores come from the stored windows of each chunk
    query = fake_embedder.encode(["Sentence 7 of the long section"])[0]
    scores = snapshot.window_scores(query, ids)
    assert not np.isnan(scores).any() and scores.max() > 0.5


def test_an_incremental_snapshot_keeps_windows_and_neighbours_of_carried_rows(tmp_path, fake_embedder):
    from km_search.index.snapshot import Snapshot

    long_text = " ".join(f"Line {i} tells one more thing." for i in range(30))
    first = _index(tmp_path, fake_embedder, [_doc("a.md", [("Long", long_text)]), _doc("b.md", [("Long", long_text)])])
    before_update = Snapshot.open(tmp_path / "idx")
    query = fake_embedder.encode(["Line 12 tells"])[0]
    b_ids = np.array([r[0] for r in before_update.db.execute(
        "SELECT c.id FROM chunks c JOIN documents d ON d.id = c.doc_id WHERE d.path = 'b.md' ORDER BY c.id")])
    expected = before_update.window_scores(query, b_ids), before_update.neighbors(b_ids)
    # replace a.md: its old rows leave the shard, b.md's rows are carried over with their windows
    _index(tmp_path, fake_embedder, [_doc("a.md", [("Long", long_text + " A new line.")])], base=first)
    after_update = Snapshot.open(tmp_path / "idx")
    np.testing.assert_allclose(after_update.window_scores(query, b_ids), expected[0], rtol=1e-6)
    for got, want in zip(after_update.neighbors(b_ids), expected[1]):
        np.testing.assert_array_equal(got, want)
    a_ids = np.array([r[0] for r in after_update.db.execute(
        "SELECT c.id FROM chunks c JOIN documents d ON d.id = c.doc_id WHERE d.path = 'a.md' ORDER BY c.id")])
    assert not np.isnan(after_update.window_scores(query, a_ids)).any()
    assert (after_update.neighbors(a_ids)[0] >= 0).sum() == len(a_ids) - 1


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["torch", "openvino-int8"])
def test_a_question_about_one_sentence_matches_its_window_better_than_the_whole_passage(backend, export_cache):
    from km_search.embedding.embedder import Embedder

    embedder = Embedder(backend=backend, cache_dir=export_cache)
    passage = (
        "The office kitchen is cleaned every Friday afternoon by the facilities team. "
        "Parking permits are renewed each January at the front desk. "
        "The VPN certificate expires after ninety days and must be renewed in the self-service portal. "
        "Team lunches are booked through the events calendar. "
        "Printers on the third floor need a badge to release jobs. "
        "Visitors sign in at reception and wear a visitor badge at all times."
    )
    vectors, windows = embedder.encode_passages([passage] * 20)
    np.testing.assert_allclose(vectors[0], embedder.encode([passage])[0], atol=1e-5)
    assert windows.rows == 20 and windows.offsets[1] >= 2
    query = embedder.encode(["How do I renew my VPN certificate when it expires?"])[0]
    best_window = windows.best(query, np.array([0]))[0]
    assert best_window > float(vectors[0] @ query) + 0.05


def test_a_passage_rises_with_the_neighbour_that_matches_and_windows_count_in_the_dense_score(tmp_path, fake_embedder, settings):
    from km_search.search.retrieval import Retriever
    from km_search.index.snapshot import Snapshot

    answer = ("Hotels in London are reimbursed up to 220 pounds per night for every employee on a business trip "
              "approved by their manager in advance of the journey.")  # 30 words: one chunk
    continuation = ("Receipts must be uploaded to the expense tool within thirty days, otherwise the finance "
                    "team rejects the claim and asks for a written justification signed again.")
    _index(tmp_path, fake_embedder, [
        _doc("travel.md", [("Travel expenses", f"{answer} {continuation}")]),
        _doc("office.md", [("Office", "The London office opens at eight and closes at six every weekday.")]),
        _doc("shifts.md", [("Shifts", "Night shifts are paid a premium agreed with the works council.")]),
    ])
    snapshot = Snapshot.open(tmp_path / "idx")
    query = "hotel London night reimbursed"

    def ranked(**weights):
        hits = Retriever(snapshot, fake_embedder, settings.model_copy(update=weights)).search(query, k=4).hits
        return [h.text.split()[0] for h in hits]

    alone = ranked(window_weight=0.0, dense_neighbor_weight=0.0, lexical_neighbor_weight=0.0)
    assert alone[0] == "Hotels" and alone[-1] == "Receipts"
    assert ranked(window_weight=0.0, dense_neighbor_weight=0.5, lexical_neighbor_weight=0.5)[:2] == ["Hotels", "Receipts"]
    # with windows, the dense score of a passage is its pooled cosine mixed with its best window's
    retriever = Retriever(snapshot, fake_embedder, settings.model_copy(update={"dense_neighbor_weight": 0.0, "lexical_neighbor_weight": 0.0}))
    dense = dict(retriever.rank(query, 4, mode="dense")[i][:2] for i in range(4))
    ids = np.array(sorted(dense))
    vector = fake_embedder.encode_query(query)
    expected = 0.3 * (snapshot.vectors(ids) @ vector) + 0.7 * snapshot.window_scores(vector, ids)
    np.testing.assert_allclose([dense[i] for i in ids], expected, rtol=1e-5)


# ---- sentence vectors ------------------------------------------------------------------------


def test_a_span_pools_the_tokens_inside_it_and_a_span_past_the_last_token_is_left_out():
    from km_search.index.context import pool_spans

    rng = np.random.default_rng(3)
    tokens = rng.normal(size=(6, 8)).astype(np.float32)
    # "Cats sleep. Dogs bark loudly" cut after "loudly": six tokens with their characters
    offsets = np.array([[0, 4], [5, 10], [10, 11], [12, 16], [17, 21], [22, 28]])
    spans, vectors = pool_spans(tokens, offsets, [(0, 11), (12, 28), (12, 34), (29, 34), (11, 11)])
    assert spans.tolist() == [[0, 11], [12, 28]]  # (12, 34) and (29, 34) reach past the cut; (11, 11) has no token
    np.testing.assert_allclose(vectors, _unit(np.stack([tokens[0:3].mean(0), tokens[3:6].mean(0)])), atol=1e-6)
    assert pool_spans(tokens[:0], offsets[:0], [(0, 4)])[0].shape == (0, 2)


def test_sentence_vectors_taken_and_joined_keep_each_rows_spans_and_vectors():
    from km_search.index.context import SentenceVectors

    rng = np.random.default_rng(4)
    per_row = [(np.array([[0, 5], [6, 9]][:k]), _unit(rng.normal(size=(k, 16))).astype(np.float32)) for k in (2, 0, 1)]
    sentences = SentenceVectors.of(per_row, 16)
    spans, vectors = sentences.of_row(0)
    assert spans.tolist() == [[0, 5], [6, 9]] and sentences.of_row(1)[0].shape == (0, 2)
    np.testing.assert_allclose(vectors, per_row[0][1], atol=5e-3)  # int8 codes with a scale
    joined = SentenceVectors.join([sentences.take(np.array([2, 0])), SentenceVectors.none(2, 16)], 16)
    assert joined.rows == 4 and joined.of_row(0)[0].tolist() == [[0, 5]] and joined.of_row(1)[0].tolist() == [[0, 5], [6, 9]]
    np.testing.assert_allclose(joined.of_row(1)[1], vectors, rtol=1e-6)
    assert joined.of_row(3)[1].shape == (0, 16)



def test_search_reads_only_the_sentences_a_passages_own_pass_pooled_and_old_snapshots_count_all(tmp_path):
    """A row's first sentences come from its passage's forward pass, the rest (KM_SENTENCE_VECTORS=all)
    from a pass over its tail; the count survives take, join and a save, and a snapshot written
    before it was stored counts every sentence as first-pass."""
    from km_search.index.context import SentenceVectors, ShardContext, Windows

    rng = np.random.default_rng(5)
    per_row = [(np.array([[0, 5], [6, 9], [10, 14]][:k]), _unit(rng.normal(size=(k, 16))).astype(np.float32)) for k in (3, 1)]
    sentences = SentenceVectors.of(per_row, 16, searched=[2, 1])
    assert sentences.of_row(0, searched=True)[0].tolist() == [[0, 5], [6, 9]]
    assert sentences.of_row(0)[0].tolist() == [[0, 5], [6, 9], [10, 14]]
    joined = SentenceVectors.join([SentenceVectors.none(1, 16), sentences.take(np.array([1, 0]))], 16)
    assert joined.searched.tolist() == [0, 1, 2] and joined.of_row(2, searched=True)[0].tolist() == [[0, 5], [6, 9]]
    context = ShardContext(Windows.none(3, 16), np.zeros(3, bool), joined)
    context.save(tmp_path / "ctx")
    assert ShardContext.load(tmp_path / "ctx").sentences.searched.tolist() == [0, 1, 2]
    (tmp_path / "ctx" / "sentence_first_pass.npy").unlink()  # as written before 2026-12-07
    assert ShardContext.load(tmp_path / "ctx").sentences.searched.tolist() == [0, 1, 3]


def _index_with_sentences(tmp_path, embedder, documents, base=None):
    from ingest.chunking import chunk_document
    from ingest.pipeline import encode_chunks
    from km_search.index.writer import SnapshotWriter
    from km_search.index.layout import SourceInfo

    writer = SnapshotWriter(tmp_path / "idx", {"name": "idx"}, base=base)
    for doc in documents:
        chunks = chunk_document(doc, 30, 0)
        vectors, windows, sentences = encode_chunks(chunks, embedder)
        writer.add(doc, SourceInfo(f"/x/{doc.path}", doc.path, 1), chunks, vectors, windows, sentences)
    return writer.publish()


def _sentences_of(snapshot, path):
    ids = [r[0] for r in snapshot.db.execute(
        "SELECT c.id FROM chunks c JOIN documents d ON d.id = c.doc_id WHERE d.path = ? ORDER BY c.id", (path,))]
    texts = dict(snapshot.db.execute(f"SELECT id, text FROM chunks WHERE id IN ({','.join('?' * len(ids))})", ids).fetchall())
    return ids, texts, snapshot.sentence_vectors(ids)


def test_every_sentence_an_answer_scores_is_stored_and_carried_over_by_an_incremental_snapshot(tmp_path, fake_embedder):
    from km_search.answers.extractive import embedded_spans
    from km_search.index.snapshot import Snapshot

    long_text = " ".join(f"Line {i} tells one more thing." for i in range(30)) + " Yes. It does."
    first = _index_with_sentences(tmp_path, fake_embedder, [_doc("a.md", [("Long", long_text)]), _doc("b.md", [("Long", long_text)])])
    before = Snapshot.open(tmp_path / "idx")
    b_ids, texts, expected = _sentences_of(before, "b.md")
    for chunk_id, (spans, vectors) in zip(b_ids, expected):
        text = texts[chunk_id]
        assert [tuple(s) for s in spans.tolist()] == embedded_spans(text)  # the extractor's spans, "Yes." with the next
        np.testing.assert_allclose(vectors, fake_embedder.encode([text[a:b] for a, b in spans]), atol=5e-3)
    # replace a.md: its old rows leave the shard, b.md's are carried over with their sentence vectors
    _index_with_sentences(tmp_path, fake_embedder, [_doc("a.md", [("Long", long_text + " A new line.")])], base=first)
    after = Snapshot.open(tmp_path / "idx")
    assert after.sentence_vectors(b_ids)[0] is not None
    for (spans, vectors), (want_spans, want_vectors) in zip(after.sentence_vectors(b_ids), expected):
        np.testing.assert_array_equal(spans, want_spans)
        np.testing.assert_allclose(vectors, want_vectors, rtol=1e-6)
    a_ids, texts, stored = _sentences_of(after, "a.md")
    assert all([tuple(s) for s in spans.tolist()] == embedded_spans(texts[i]) for i, (spans, _) in zip(a_ids, stored))
    assert after.sentence_vectors([10_000]) == [None]
