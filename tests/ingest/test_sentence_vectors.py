"""Sentence vectors made at ingest (ingest/pipeline.py encode_chunks): the extractor's own spans of
each passage, pooled from the passage's forward pass; with KM_SENTENCE_VECTORS=all the rest of a
passage the model cut off is pooled from more passes, so /ask embeds none of them."""

from __future__ import annotations

import numpy as np
import pytest

from helpers import HashingEmbedder
from km_search.answers.extractive import embedded_spans
from km_search.types import Chunk


class CuttingEmbedder(HashingEmbedder):
    """Sees only the first `limit` characters of each text, as the model sees its first 256 tokens."""

    def __init__(self, limit: int):
        super().__init__()
        self.limit, self.texts = limit, []

    def encode_for_index(self, texts, spans):
        self.texts.append(list(texts))
        kept = [[(a, b) for a, b in s if b <= self.limit] for s in spans]
        return super().encode_for_index(texts, kept)


def _chunk(text: str) -> Chunk:
    return Chunk(doc_path="a.md", ordinal=0, text=text, source="a.md#top", heading_path=("Guide", "Install"),
                 anchor="top", title="Handbook")


def test_spans_are_offsets_into_the_chunk_text_and_cut_off_sentences_come_from_a_second_pass():
    from ingest.pipeline import encode_chunks

    text = " ".join(f"Step {i} installs one more package." for i in range(12)) + " Yes. Done."
    embedder = CuttingEmbedder(limit=150)
    vectors, windows, sentences = encode_chunks([_chunk(text), _chunk("Short one.")], embedder)
    assert len(vectors) == windows.rows == sentences.rows == 2
    spans, stored = sentences.of_row(0)
    assert [tuple(s) for s in spans.tolist()] == embedded_spans(text)  # every sentence, "Yes." with "Done."
    np.testing.assert_allclose(stored, embedder.encode([text[a:b] for a, b in spans]), atol=5e-3)
    first, *tails = embedder.texts
    assert first[0] == _chunk(text).indexed_text()
    # each later pass starts at the first sentence left out, under the same context line
    assert len(tails) >= 2 and all(t[0].startswith("Handbook > Install\nStep ") for t in tails)
    assert [tuple(s) for s in sentences.of_row(1)[0].tolist()] == [(0, 10)]


def test_search_reads_the_prose_sentences_and_answers_their_own_lines():
    """A list's lines are sentences to the extractor, which quotes one item; search's lift reads the
    text as prose (`prose_spans`), lines run together, as it was measured (docs/quality.md). Both
    are pooled from the one forward pass; the lift's come first and are the row's `searched`."""
    from ingest.pipeline import encode_chunks
    from km_search.answers.extractive import prose_spans

    text = "Before you restart the service, check these:\n- the disk is not full\n- the config parses\nThen restart it."
    _, _, sentences = encode_chunks([_chunk(text)], HashingEmbedder())
    spans = [tuple(s) for s in sentences.of_row(0)[0].tolist()]
    searched = [tuple(s) for s in sentences.of_row(0, searched=True)[0].tolist()]
    assert searched == prose_spans(text) == spans[: len(searched)]
    assert set(embedded_spans(text)) <= set(spans) and set(embedded_spans(text)) != set(searched)
    assert [text[a:b] for a, b in embedded_spans(text)][1] == "- the disk is not full"


def test_first_pass_only_leaves_the_cut_off_sentences_to_ask_and_changes_nothing_search_reads():
    """KM_SENTENCE_VECTORS=first-pass: one forward pass per passage; its passage and window vectors
    are those of a full ingest, its sentence vectors the ones inside that pass."""
    from ingest.pipeline import encode_chunks

    text = " ".join(f"Step {i} installs one more package." for i in range(12)) + " Yes. Done."
    chunks = [_chunk(text), _chunk("Short one.")]
    full_embedder, first_embedder = CuttingEmbedder(limit=150), CuttingEmbedder(limit=150)
    full, first = encode_chunks(chunks, full_embedder), encode_chunks(chunks, first_embedder, all_sentences=False)
    assert len(first_embedder.texts) == 1 < len(full_embedder.texts)
    np.testing.assert_array_equal(first[0], full[0])
    for name in ("offsets", "codes", "scales"):
        np.testing.assert_array_equal(getattr(first[1], name), getattr(full[1], name))
    kept, every = ([tuple(x) for x in s.of_row(0)[0].tolist()] for s in (first[2], full[2]))
    assert kept and set(kept) < set(every) and all(b <= 150 - len("Handbook > Guide > Install\n") for _, b in kept)
    assert [tuple(x) for x in first[2].of_row(1)[0].tolist()] == [(0, 10)]


def test_a_span_the_model_never_gives_a_vector_is_left_for_query_time():
    from ingest.pipeline import encode_chunks

    class Never(HashingEmbedder):
        def encode_for_index(self, texts, spans):
            return super().encode_for_index(texts, [[(a, b) for a, b in s if "zzz" not in t[a:b]] for t, s in zip(texts, spans)])

    text = "The first sentence is fine here. A zzz sentence no token covers here. The last one is fine too."
    spans = [tuple(s) for s in encode_chunks([_chunk(text)], Never())[2].of_row(0)[0].tolist()]
    assert spans == [embedded_spans(text)[0], embedded_spans(text)[2]]


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["torch", "openvino-int8"])
def test_real_token_offsets_line_up_with_the_extractors_sentences(backend, export_cache):
    """With the real tokenizer, a long passage (past 256 tokens) has a stored vector for every
    sentence, each close to what the model gives that sentence read inside the passage."""
    from ingest.pipeline import encode_chunks
    from km_search.embedding.embedder import Embedder

    embedder = Embedder(backend=backend, cache_dir=export_cache)
    text = " ".join(f"Rule {i}: the VPN certificate of office number {i} expires after {i + 30} days (see “Renewal”)."
                    for i in range(40))  # about 700 tokens
    chunk = _chunk(text)
    _, _, sentences = encode_chunks([chunk] * 20, embedder)
    spans, stored = sentences.of_row(0)
    assert [tuple(s) for s in spans.tolist()] == embedded_spans(text) and len(spans) == 40
    # the first sentence pooled by hand from the passage's own tokens, found by their characters
    runtime = embedder.runtime
    shift = len(chunk.indexed_text()) - len(text)
    a, b = spans[0]
    if backend == "torch":
        encoded = runtime.model.tokenizer(chunk.indexed_text(), truncation=True, max_length=256, return_offsets_mapping=True)
        offsets = encoded["offset_mapping"]
    else:
        offsets = runtime.tokenizer.encode(chunk.indexed_text()).offsets
    inside = [i for i, (s, e) in enumerate(offsets) if e > s and s >= a + shift and e <= b + shift]
    assert inside == list(range(inside[0], inside[-1] + 1))
    spelled = chunk.indexed_text()[offsets[inside[0]][0]:offsets[inside[-1]][1]]
    assert spelled == text[a:b]  # the tokens spell the sentence, no more, no less
    alone = embedder.encode([text[a:b] for a, b in spans[:3]])
    assert (np.sum(stored[:3] * alone, axis=1) > 0.5).all()  # the same sentence, read in its passage


@pytest.mark.slow
def test_a_full_index_searches_as_the_default_first_pass_one_and_both_answer(workspace, ingest_report, tmp_path):
    """The real pipeline on the example corpus: KM_SENTENCE_VECTORS=all adds the tail passes, and
    only /ask reads what they add, so search must be that of the default index, hit for hit."""
    import json
    import subprocess

    from helpers import EXAMPLES, KM
    from km_search.service import SearchService
    from km_search.settings import Settings

    root, docs, env = workspace
    run = subprocess.run([*KM, "ingest", str(docs), "--index", "all-sentences", "--json"], capture_output=True,
                         text=True, env={**env, "KM_SENTENCE_VECTORS": "all"}, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    assert json.loads(run.stdout)["chunks"] == ingest_report["chunks"]
    settings = Settings(index_dir=root / "indexes", query_log=False)
    first, full = SearchService(settings, "example").load(), SearchService(settings, "all-sentences").load()
    questions = [json.loads(line)["text"] for line in (EXAMPLES.parent / "eval" / "queries.jsonl").read_text().splitlines() if line]
    for question in questions:
        assert [(h.chunk_id, round(h.score, 5)) for h in first.search(question, k=10).hits] == \
               [(h.chunk_id, round(h.score, 5)) for h in full.search(question, k=10).hits], question
    ids = list(range(ingest_report["chunks"]))
    stored = [sum(len(s[0]) for s in service.retriever.snapshot.sentence_vectors(ids) if s is not None)
              for service in (first, full)]
    assert 0 < stored[0] < stored[1]  # the long passages' tails are left to /ask...
    for service in (first, full):  # ...which embeds the few that may answer
        answer = service.ask("why did we move billing to postgres?").answer
        assert answer.answered and "move-billing-to-postgres" in answer.citations[0].source
