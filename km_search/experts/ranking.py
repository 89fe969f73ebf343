"""Who knows about X: people ranked by the relevant material they authored or changed (pure).

For a query, retrieval ranks passages; each passage lends its document relevance by how close its
score comes to the best one's, and each document hands its relevance to its people: the declared
authors share it, git contributors get a part by their share of the commits, and an involvement
counts less as it ages. docs/experts.md explains the formula with a worked example; the constants
below are the ones it names.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from km_search.experts.people import display_name
from km_search.types import Evidence, Expert

# Git contributors' part of a document that has declared authors (1.0 when it has none): a quarter,
# so the author of the record a topic is about outranks a maintainer whose commits touch many files.
GIT_WEIGHT = 0.25
RECENCY_FLOOR = 0.5  # what an old (or undated) involvement still counts, relative to one from today
EVIDENCE_PER_EXPERT = 3


@dataclass(frozen=True)
class Passage:
    """One retrieved passage, in rank order."""

    doc_id: int
    source: str
    title: str
    text: str
    score: float = 1.0  # the retrieval score it was ranked by


@dataclass(frozen=True)
class Involvement:
    """One person's part in one document: a declared author, or a git contributor with commits."""

    key: str
    role: str  # "author" | "contributor"
    commits: int = 0
    date: str | None = None  # a contributor's latest commit; authors take the document's date


def passage_weights(scores: Sequence[float]) -> list[float]:
    """The relevance each retrieved passage lends its document: its score scaled so the best
    passage gives 1 and the last one retrieved 0 (all 1 when they tie). Scale-free, so it means the
    same for convex, RRF and reranker scores."""
    if not scores:
        return []
    top, bottom = max(scores), min(scores)
    if top - bottom <= 1e-12:
        return [1.0] * len(scores)
    return [(s - bottom) / (top - bottom) for s in scores]


def recency(date: str | None, today: dt.date, half_life_days: float) -> float:
    """1.0 for today, halfway down to RECENCY_FLOOR after `half_life_days`, the floor when undated."""
    try:
        when = dt.date.fromisoformat((date or "")[:10])
    except ValueError:
        return RECENCY_FLOOR
    age = max(0, (today - when).days)
    return RECENCY_FLOOR + (1.0 - RECENCY_FLOOR) * 0.5 ** (age / half_life_days)


def credits(involvements: Sequence[Involvement], doc_date: str | None) -> list[tuple[str, float, str | None]]:
    """(person key, credit, date) for one document: declared authors share 1.0 equally; git
    contributors share GIT_WEIGHT by commits (all of 1.0 when no author is declared)."""
    authors = list(dict.fromkeys(i.key for i in involvements if i.role == "author"))
    commits: dict[str, tuple[int, str | None]] = {}
    for i in involvements:
        if i.role == "contributor":
            n, last = commits.get(i.key, (0, None))
            commits[i.key] = (n + max(i.commits, 0), max(filter(None, (last, i.date)), default=None))
    out = [(key, 1.0 / len(authors), doc_date) for key in authors]
    total = sum(n for n, _ in commits.values())
    weight = GIT_WEIGHT if authors else 1.0
    if total:
        out.extend((key, weight * n / total, last) for key, (n, last) in commits.items() if n)
    return out


def rank_experts(
    passages: Sequence[Passage],
    people: Mapping[int, Sequence[Involvement]],
    doc_dates: Mapping[int, str | None],
    names: Mapping[str, str],
    today: dt.date,
    half_life_days: float = 730.0,
    k: int = 5,
) -> list[Expert]:
    """The k people with the highest score(p) = sum over documents d of relevance(d) times the sum
    of p's credit in d times its recency. relevance(d) = the passage weight of d's best passage."""
    relevance: dict[int, float] = {}
    best: dict[int, Passage] = {}
    for passage, weight in zip(passages, passage_weights([p.score for p in passages])):
        # a document is as relevant as its best passage, so a long document of many middling
        # passages does not outweigh the record the topic is about
        if weight > relevance.get(passage.doc_id, -1.0):
            best[passage.doc_id], relevance[passage.doc_id] = passage, weight
    per_person: dict[str, dict[int, float]] = {}
    last_seen: dict[str, str] = {}
    authored: set[tuple[str, int]] = set()  # (person, document) pairs where they are a declared author
    for doc_id, rel in relevance.items():
        if rel <= 0:
            continue  # only in the least relevant passage retrieved: it shows no expertise
        for i in people.get(doc_id, ()):
            if i.role == "author":
                authored.add((i.key, doc_id))
        for key, credit, date in credits(people.get(doc_id, ()), doc_dates.get(doc_id)):
            gained = rel * credit * recency(date, today, half_life_days)
            docs = per_person.setdefault(key, {})
            docs[doc_id] = docs.get(doc_id, 0.0) + gained
            if date and date > last_seen.get(key, ""):
                last_seen[key] = date
    experts = []
    for key, docs in per_person.items():
        ranked_docs = sorted(docs.items(), key=lambda item: (-item[1], item[0]))
        email = None if key.startswith("name:") else key
        evidence = tuple(
            Evidence(doc_id=d, source=best[d].source, title=best[d].title, text=best[d].text, score=round(s, 4),
                     role="author" if (key, d) in authored else "edited")
            for d, s in ranked_docs[:EVIDENCE_PER_EXPERT]
        )
        experts.append(Expert(
            name=names.get(key) or email or key.removeprefix("name:"), email=email,
            score=round(sum(docs.values()), 4), documents=len(docs), last_date=last_seen.get(key),
            evidence=evidence,
        ))
    experts.sort(key=lambda e: (-e.score, e.name))
    return experts[:k]


def experts_from_ranking(
    snapshot, ranked: Sequence[tuple[int, float]], today: dt.date, half_life_days: float, k: int,
    readable: Sequence[str] | None = None,
) -> list[Expert]:
    """rank_experts over a snapshot (km_search.index.snapshot.Snapshot) and ranked (chunk id, score) pairs:
    the chunks' documents, their people and dates, and each person's display name. With `readable`
    (the reader's groups), display names come only from documents those groups may read, as the
    ranked chunks already do: nothing about a person is learnt from a document the reader cannot see."""
    chunk_ids = [cid for cid, _ in ranked]
    rows = snapshot.chunk_rows(chunk_ids)
    passages = [Passage(rows[c]["doc_id"], rows[c]["source"], rows[c]["title"], rows[c]["text"], score)
                for c, score in ranked]
    doc_rows = {p.doc_id: rows[c] for p, c in zip(passages, chunk_ids)}
    people_rows = snapshot.people_of(doc_rows)
    people = {
        doc_id: [Involvement(r["key"], r["role"], r["commits"], r["last_date"]) for r in found]
        for doc_id, found in people_rows.items()
    }
    keys = {r["key"] for found in people_rows.values() for r in found}
    candidates_by_key = snapshot.name_candidates(keys, readable)
    names = {
        key: display_name(candidates, None if key.startswith("name:") else key)
        for key, candidates in candidates_by_key.items()
    }
    doc_dates = {doc_id: row["modified"] or row["created"] for doc_id, row in doc_rows.items()}
    return rank_experts(passages, people, doc_dates, names, today, half_life_days, k)
