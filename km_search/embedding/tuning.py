"""`km tune`: adapt the embedding model to the organization's own vocabulary, opt-in.

No labelled questions exist for a new corpus, but its structure gives pairs that look like them:
a section's heading path is a short query its text answers, and a sentence of a passage is a short
query the rest of the passage answers (the inverse cloze task). Training the model to pick the
right passage for each query among the other passages of a batch (multiple-negatives ranking loss,
in-batch negatives) pulls the corpus's own terms together; docs/quality.md has what it measured.

The result is an ordinary sentence-transformers folder: serve it with KM_MODEL=<folder> after a
full re-ingest (`km ingest --full`), since passages and queries must be embedded by the same model.
"""

from __future__ import annotations

import json
import random
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])")


@dataclass(frozen=True)
class Pair:
    query: str
    passage: str
    kind: str  # "heading" | "cloze"


def mine_pairs(rows: Iterable[tuple[str, Sequence[str], str]], seed: int = 0, max_pairs: int | None = None,
               min_words: int = 12) -> list[Pair]:
    """Training pairs from (title, heading path, passage text) rows of an index.

    Heading pairs: "title > headings" -> the passage. Cloze pairs: one sentence of 6+ words -> the
    passage without it (so the model cannot match the sentence to itself). Passages shorter than
    `min_words` teach nothing and are skipped; duplicate queries keep their first passage.
    """
    rng = random.Random(seed)
    pairs: list[Pair] = []
    seen: set[str] = set()
    for title, headings, text in rows:
        if len(text.split()) < min_words:
            continue
        context = [title, *[h for h in headings if h != title]]
        query = " > ".join(c for c in context if c)
        if query and query not in seen:
            seen.add(query)
            pairs.append(Pair(query, text, "heading"))
        sentences = [s for s in _SENTENCE.split(text) if len(s.split()) >= 6]
        if len(sentences) >= 2:
            pick = rng.randrange(len(sentences))
            rest = " ".join(s for i, s in enumerate(sentences) if i != pick)
            if sentences[pick] not in seen:
                seen.add(sentences[pick])
                pairs.append(Pair(sentences[pick], rest, "cloze"))
    rng.shuffle(pairs)
    return pairs[:max_pairs] if max_pairs else pairs


def fine_tune(
    base_model: Path, pairs: Sequence[Pair], output: Path, epochs: int = 1, batch_size: int = 32,
    learning_rate: float = 2e-5, scale: float = 20.0, seed: int = 0,
    progress: Callable[[int, int, float], None] | None = None,
) -> dict:
    """Train with in-batch negatives and save a sentence-transformers folder to `output`.

    A plain torch loop over the model's own tokenize/forward: the same loss as
    sentence-transformers' MultipleNegativesRankingLoss without its trainer's extra dependencies.
    """
    import torch
    import torch.nn.functional as F
    from sentence_transformers import SentenceTransformer

    torch.manual_seed(seed)
    model = SentenceTransformer(str(base_model), device="cpu", local_files_only=True)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate)
    order = list(range(len(pairs)))
    steps = epochs * max(1, len(pairs) // batch_size)
    rng = random.Random(seed)
    step, started, last_loss = 0, time.perf_counter(), 0.0
    for _ in range(epochs):
        rng.shuffle(order)
        for start in range(0, len(order) - batch_size + 1, batch_size):
            batch = [pairs[i] for i in order[start : start + batch_size]]
            queries = _embed(model, [p.query for p in batch])
            passages = _embed(model, [p.passage for p in batch])
            scores = scale * queries @ passages.T  # the diagonal holds the right passage of each query
            loss = F.cross_entropy(scores, torch.arange(len(batch)))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            step, last_loss = step + 1, float(loss.detach())
            if progress:
                progress(step, steps, last_loss)
    model.eval()
    output.mkdir(parents=True, exist_ok=True)
    model.save(str(output))
    info = {"base_model": str(base_model), "pairs": len(pairs), "epochs": epochs, "steps": step,
            "batch_size": batch_size, "learning_rate": learning_rate, "final_loss": round(last_loss, 4),
            "took_s": round(time.perf_counter() - started, 1)}
    (output / "km_tune.json").write_text(json.dumps(info, indent=2), encoding="utf-8")
    return info


def _embed(model, texts: list[str]):
    import torch.nn.functional as F

    features = model.tokenize(texts)
    return F.normalize(model(features)["sentence_embedding"], dim=-1)
