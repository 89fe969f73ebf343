"""Knowledge gaps: the logged questions the index answered badly, grouped into topics by meaning.

Pure: logged queries and their normalized embeddings in, topics out. Clustering is greedy (leader)
clustering over distinct questions, most frequent first: a question joins the topic whose centre
is closest if the cosine similarity reaches `similarity`, otherwise it starts a new topic. It is
order-stable, needs no number of clusters, and a few thousand questions take milliseconds.
"""

from __future__ import annotations

from collections import Counter
from typing import Sequence

import numpy as np

from km_search.answers.querylog import LoggedQuery
from km_search.types import GapTopic


def normalize_question(text: str) -> str:
    return " ".join(text.lower().split()).rstrip("?!. ")


def distinct_questions(queries: Sequence[LoggedQuery]) -> list[str]:
    """Distinct questions (by normalized text), most often asked first, then most recent."""
    counts = Counter(normalize_question(q.query) for q in queries)
    first_text: dict[str, str] = {}
    for q in queries:  # newest first: keep the most recent spelling
        first_text.setdefault(normalize_question(q.query), q.query)
    order = sorted(counts, key=lambda key: -counts[key])
    return [first_text[key] for key in order]


def cluster(vectors: np.ndarray, similarity: float) -> list[list[int]]:
    """Greedy leader clustering of normalized row vectors, in row order; lists of row indexes."""
    groups: list[list[int]] = []
    centres: list[np.ndarray] = []
    for row, vector in enumerate(vectors):
        if centres:
            sims = np.stack(centres) @ vector
            best = int(np.argmax(sims))
            if sims[best] >= similarity:
                groups[best].append(row)
                members = vectors[groups[best]].mean(axis=0)
                centres[best] = members / (np.linalg.norm(members) or 1.0)
                continue
        groups.append([row])
        centres.append(vector)
    return groups


def find_gaps(
    queries: Sequence[LoggedQuery], questions: Sequence[str], vectors: np.ndarray, similarity: float = 0.6
) -> list[GapTopic]:
    """Topics of weak queries, biggest first. `questions[i]` (embedded as `vectors[i]`) are the distinct
    questions from `distinct_questions(queries)`."""
    by_question: dict[str, list[LoggedQuery]] = {}
    for q in queries:
        by_question.setdefault(normalize_question(q.query), []).append(q)
    topics = []
    for rows in cluster(np.asarray(vectors, dtype=np.float32), similarity):
        members = [q for row in rows for q in by_question[normalize_question(questions[row])]]
        centre = vectors[rows].mean(axis=0)
        representative = questions[rows[int(np.argmax(vectors[rows] @ centre))]]
        topics.append(
            GapTopic(
                question=representative,
                count=len(members),
                queries=tuple(questions[row] for row in rows),
                last_seen=max(q.ts for q in members),
                abstained=sum(q.answered is False for q in members),
                low_score=sum(q.low_score for q in members),
                negative_feedback=sum(q.negative_feedback for q in members),
                comments=tuple(c for q in members for c in q.comments),
                reasons=tuple(r for r, _ in Counter(q.reason for q in members if q.reason).most_common()),
            )
        )
    topics.sort(key=lambda t: t.last_seen, reverse=True)
    topics.sort(key=lambda t: t.count, reverse=True)
    return topics
