"""Extractive answers: the sentences of the top passages that best answer a question, quoted verbatim.

Pure apart from the `encode` function it is given: the question and the ranked hits go in, an
Answer comes out whose citations give character offsets into a hit's passage, so a UI can
highlight the quote. When the best evidence is weak it abstains (`Answer.text is None`) instead
of quoting something unrelated.

Each sentence is scored by its cosine similarity to the question, by how much of the question's
vocabulary it holds (rare words weigh more), and by its passage's retrieval rank. The answer's
confidence combines the best sentence's similarity with how much of the question's vocabulary the
quoted passage covers: questions about things the corpus never mentions ("Google's parental
leave policy") get little of either; a question naming a city, product or version that the quoted
passage lacks loses some more (answers/terms.py). The threshold is calibrated by `km eval-answers`.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import numpy as np

from km_search.answers.kinds import KIND_PENALTY, AnswerKind, expected_kind, gives
from km_search.answers.terms import term_evidence, term_penalty
from km_search.index.lexical import STOPWORDS
from km_search.types import Answer, Citation, Hit, Part, part_at
from km_search.text import WORD

Encode = Callable[[Sequence[str]], np.ndarray]

_BOUNDARY = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=[\"'(\[]?[A-Z0-9])|\n+")
_CLAUSE = re.compile(r"(?<=[;:])\s+")

MAX_SENTENCE_WORDS = 60
SHORT_SENTENCE_WORDS = 12  # a quote shorter than this takes the next sentence too
SHORT_FOR_MEANING = 5  # a sentence shorter than this is embedded together with the next one
REFINE_ROUNDS = 3  # times the best sentence is embedded alone when it was judged by its stored vector
_AUXILIARIES = frozenset(
    "am is are was were do does did can could will would shall should must may might has have had".split()
)
_NOT_CONFIDENT, _SEE_HITS = "No passage answers this question confidently", "; the closest passages are listed in hits."


@dataclass(frozen=True)
class AnswerParams:
    """The knobs of extraction; `threshold` is the confidence below which we abstain."""

    threshold: float = 0.5
    passages: int = 5
    max_sentences: int = 3
    candidates: int | None = None  # sentences embedded per answer (None: all)
    refine: int = 0  # best sentences by their stored vectors embedded alone at query time (score_sentences)


@dataclass(frozen=True)
class Sentence:
    hit: int  # index into the hits
    start: int
    end: int
    semantic: float = 0.0
    overlap: float = 0.0
    score: float = 0.0
    body: bool = True  # False: a title, heading, byline or metadata line (never quoted while body text exists)


# ---- sentences -------------------------------------------------------------------------------


def split_sentences(text: str) -> list[tuple[int, int]]:
    """(start, end) offsets of the sentences of `text`, whitespace trimmed, never empty.

    Sentences longer than MAX_SENTENCE_WORDS are cut at clause marks (; :) and then into runs of
    words, so a quote stays readable.
    """
    spans: list[tuple[int, int]] = []
    cursor = 0
    for m in _BOUNDARY.finditer(text):
        spans.extend(_trimmed_pieces(text, cursor, m.start()))
        cursor = m.end()
    spans.extend(_trimmed_pieces(text, cursor, len(text)))
    return spans


def _trim(text: str, start: int, end: int) -> tuple[int, int] | None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return (start, end) if end > start else None


def _trimmed_pieces(text: str, start: int, end: int) -> list[tuple[int, int]]:
    span = _trim(text, start, end)
    if span is None:
        return []
    words = list(WORD.finditer(text, span[0], span[1]))
    if len(words) <= MAX_SENTENCE_WORDS:
        return [span]
    pieces: list[tuple[int, int]] = []
    cursor = span[0]
    for m in _CLAUSE.finditer(text, span[0], span[1]):
        pieces.append((cursor, m.start()))
        cursor = m.end()
    pieces.append((cursor, span[1]))
    out: list[tuple[int, int]] = []
    for a, b in pieces:
        piece_words = list(WORD.finditer(text, a, b))
        if len(piece_words) <= MAX_SENTENCE_WORDS:
            trimmed = _trim(text, a, b)
            if trimmed:
                out.append(trimmed)
            continue
        for i in range(0, len(piece_words), MAX_SENTENCE_WORDS):
            run = piece_words[i : i + MAX_SENTENCE_WORDS]
            lo = a if i == 0 else run[0].start()
            hi = b if i + MAX_SENTENCE_WORDS >= len(piece_words) else run[-1].end()
            trimmed = _trim(text, lo, hi)
            if trimmed:
                out.append(trimmed)
    return out


# ---- vocabulary overlap ----------------------------------------------------------------------


def _stem(word: str) -> str:
    """A crude stem, enough to match 'deploy' with 'deployment' and 'packages' with 'package'."""
    return word[: max(4, len(word) - 2)] if len(word) > 4 else word


def rarity_weights(terms: Sequence[str], document_frequency: Mapping[str, int], total: int) -> dict[str, float]:
    """IDF of each query term in the snapshot; a term the corpus never uses weighs the most."""
    return {t: math.log((total + 1) / (document_frequency.get(t, 0) + 0.5)) for t in terms}


def coverage(text: str, weights: Mapping[str, float]) -> float:
    """Share of the question's (IDF-weighted) vocabulary found in `text`, 0..1."""
    total = sum(weights.values())
    if not total:
        return 0.0
    stems = {_stem(w) for w in WORD.findall(text.lower())}
    found = sum(w for term, w in weights.items() if _stem(term) in stems)
    return found / total


# ---- extraction ------------------------------------------------------------------------------


def is_yes_no_question(question: str) -> bool:
    """'Can I …?', 'Is there …?': any clause opening with an auxiliary verb."""
    return any(
        words[0] in _AUXILIARIES
        for clause in re.split(r"[.?!;]", question.lower())
        if (words := WORD.findall(clause))
    )


def _trigrams(words: Sequence[str]) -> set[tuple[str, ...]]:
    return {tuple(words[i : i + 3]) for i in range(len(words) - 2)}


def restates(question_trigrams: set[tuple[str, ...]], sentence: str) -> bool:
    """The sentence repeats most of the question word for word: a cross-reference ("see Section 4.1,
    'On what hardware does Debian run?'") or a heading, not an answer."""
    if len(question_trigrams) < 2:
        return False
    shared = question_trigrams & _trigrams(WORD.findall(sentence.lower()))
    return len(shared) / len(question_trigrams) >= 0.5


# ---- what kind of sentence, under which heading ------------------------------------------------
#
# Rules on top of the similarity score, each one small and tested (tests/answers/test_answers.py):
#   - a sentence that only repeats the document's title or one of its headings, or a line of names,
#     dates and ids (a byline, "Incident SEV-1 2023-017."), is not body text: it is not quoted while
#     any body sentence is left (NOT_BODY_PENALTY) and a quote never grows into one;
#   - within the document of the best sentence (another document's sections gain nothing), a "why"
#     question prefers sentences under a heading that gives reasons (Context, Motivation, Why, Problem,
#     Background, Rationale, Root cause), a "what did we learn" question those under Lessons, What we
#     learned, Action items, Takeaways, Follow-ups (SECTION_BONUS), and any other question, unless it
#     asks what something is or means, is about what was decided or is done: those under Decision,
#     Proposal, Solution, Mitigation, Resolution, Fix win over Context or Meaning, which restate the
#     question's topic (OUTCOME_BONUS).
#   The heading is the last heading line inside the passage before the sentence (PDF pages keep
#   theirs as lines), else the heading of the joined part holding it, else the passage's own heading.

NOT_BODY_PENALTY = 1.0
SECTION_BONUS = 0.3  # a what-did-we-learn question names no content: its lessons score low on similarity
OUTCOME_BONUS = 0.2  # other questions name their topic: the bonus only picks the part of the answering document
_WHY_QUESTION = re.compile(r"^\W*(why|how come)\b|\b(reasons?|motivation|rationale|what made (us|them|you))\b")
_LESSON_QUESTION = re.compile(
    r"\b(learn|learned|learnt|lessons?|takeaways?|action items?|follow[- ]?ups?|do differently)\b")
_REASON_HEADING = re.compile(r"\b(context|motivation|why|problem|background|rationale|reasons?|root causes?)\b")
_LESSON_HEADING = re.compile(
    r"\b(lessons?|learn|learned|learnt|action items?|takeaways?|follow[- ]?ups?|what went wrong|next steps)\b")
_OUTCOME_HEADING = re.compile(
    r"\b(decisions?|decided|outcome|proposal|solution|mitigation|remediation|resolution|fix|workaround"
    r"|steps|procedure|instructions)\b")
_DEFINITION_QUESTION = re.compile(
    r"^\W*(what|who)('s| is| are| was| were)\b(?! the (steps|procedure|process)\b)|\bmean(s|ing)?\b|\bstand for\b")
_FOCUS_HEADINGS = {"reasons": _REASON_HEADING, "lessons": _LESSON_HEADING, "outcome": _OUTCOME_HEADING}
_WHO_WHEN_QUESTION = re.compile(r"^\W*(who|whom|whose|when)\b")
_DATE_OR_ID = re.compile(
    r"\b(1[89]|20)\d\d\b|\b[A-Z][A-Za-z]*-\d+\b|\b\d{1,2}[./-]\d{1,2}[./-]\d{2,4}\b"
    r"|\b(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.? \d{1,2}\b", re.IGNORECASE)


def question_focus(question: str) -> str | None:
    """'reasons' for a why-question, 'lessons' for a what-did-we-learn one, None for a question of
    what something is or means, else 'outcome': what was decided or is done, which a record states
    under its Decision and a runbook under its Mitigation, not under their Context or Meaning."""
    q = question.lower()
    if _WHY_QUESTION.search(q):
        return "reasons"
    if _LESSON_QUESTION.search(q):
        return "lessons"
    return None if _DEFINITION_QUESTION.search(q) else "outcome"


def heading_matches(heading: str, focus: str | None) -> bool:
    """Whether a heading names the part of a document that answers questions of this focus."""
    if not focus or not heading:
        return False
    return bool(_FOCUS_HEADINGS[focus].search(heading.lower()))


# Section names common in decision records, post-mortems and retrospectives. A PDF page's headings
# are lines of its text ("Lessons learned"), or glued to the sentence after them where the layout
# ran them together ("Lessons learned Retrying an operation ..."): a line of one of these names, or
# a sentence opening with one followed by a capitalized word, starts that section.
_SECTION_NAME = (
    r"(?i:(lessons learned|lessons learnt|lessons|what we learned|what we learnt|learnings|action items|takeaways"
    r"|follow[- ]?ups|next steps|context|motivation|background|problem statement|problem|rationale"
    r"|summary|impact|timeline|root causes?|detection|resolution|what went well|what went wrong"
    r"|decision|consequences|status|options considered|options|alternatives considered|alternatives))")
_GLUED_HEADING = re.compile(_SECTION_NAME + r"\s+(?=[\"“(•\x7f*-]?\s?[A-Z0-9])")
_HEADING_LINE = re.compile(_SECTION_NAME + r"\s*:?")


def glued_heading(sentence: str) -> str | None:
    """The section name a sentence is, or opens with when its heading was glued to it, else None."""
    m = _HEADING_LINE.fullmatch(sentence.strip()) or _GLUED_HEADING.match(sentence)
    return m.group(1) if m else None


def is_heading_line(sentence: str) -> bool:
    """The sentence is only a section name ("Lessons learned", "Context:"): a heading, not an answer."""
    return _HEADING_LINE.fullmatch(sentence.strip()) is not None


def headings_before(text: str, spans: Sequence[tuple[int, int]], fallback: str,
                    parts: Sequence[Part] = ()) -> list[str]:
    """For each sentence span, the heading it is under: the last section name glued to a sentence at
    or before it in its part of the passage (see _GLUED_HEADING), else that part's heading (a passage
    of joined sections, `Hit.parts`), else `fallback`, the passage's own heading."""
    out, current, part, parts = [], fallback, None, tuple(parts)
    for a, b in spans:
        here = part_at(parts, a)
        if here is not part:
            part = here
            current = here.heading_path[-1] if here.heading_path else fallback
        current = glued_heading(text[a:b]) or current
        out.append(current)
    return out


def repeats_title(sentence: str, titles: Sequence[str]) -> bool:
    """The sentence is the document title or a heading, alone or followed by a line of names and
    dates: at least 80 % of its words (two or more) are the title's ('charges, November 2023'), or
    it opens with the whole title and the rest is a byline ('Post-mortem: duplicate invoices …,
    November 2023 Priya Raman, Aisha Bello - 2023-11-09 Incident SEV-1 2023-017.')."""
    words = WORD.findall(sentence.lower())
    if not words:
        return True
    for title in titles:
        title_words = WORD.findall(title.lower())
        if not title_words:
            continue
        if len(words) >= 2 and sum(w in set(title_words) for w in words) >= 0.8 * len(words):
            return True
        if words[: len(title_words)] == title_words:
            rest = sentence[_end_of_words(sentence, len(title_words)):]
            if not WORD.search(rest) or is_metadata_line(rest):
                return True
    return False


def _end_of_words(text: str, n: int) -> int:
    """The offset just after the n-th word of text."""
    end = 0
    for i, m in enumerate(WORD.finditer(text)):
        if i == n - 1:
            return m.end()
        end = m.end()
    return end


def is_metadata_line(sentence: str) -> bool:
    """Mostly names, dates and ids: at most 20 words, under a quarter of them lower-case prose, and
    a date or an id among them ('Priya Raman, Aisha Bello - 2023-11-09', 'Incident SEV-1 2023-017.')."""
    words = WORD.findall(sentence)
    if not words or len(words) > 20 or not _DATE_OR_ID.search(sentence):
        return False
    prose = sum(w.isalpha() and w.islower() and len(w) > 1 for w in words)
    return prose < 0.25 * len(words)


def embedded_spans(text: str, spans: Sequence[tuple[int, int]] | None = None) -> list[tuple[int, int]]:
    """For each sentence of `text` (`split_sentences`, or the `spans` given), the span whose
    embedding judges it: the sentence itself, or under SHORT_FOR_MEANING words ("Yes.") the sentence
    and the next one. Ingest stores a vector for each of these spans (km_search/index/context.py)."""
    spans = split_sentences(text) if spans is None else spans
    out = []
    for n, (a, b) in enumerate(spans):
        short = len(WORD.findall(text, a, b)) < SHORT_FOR_MEANING
        out.append((a, spans[n + 1][1]) if short and n + 1 < len(spans) else (a, b))
    return out


def prose_spans(text: str) -> list[tuple[int, int]]:
    """`embedded_spans` of `text` read as running prose, its line breaks as spaces: a list's items and a
    table's rows run together as the sentences they belong to. What search's first-page lift scores:
    alone, a short line such as a table row matched questions by accident (docs/quality.md)."""
    return embedded_spans(text, split_sentences(text.replace("\n", " ")))


Stored = tuple[np.ndarray, np.ndarray]  # a passage's stored sentence vectors: (spans (k, 2), unit vectors (k, d))


def score_sentences(
    question: str, hits: Sequence[Hit], encode: Encode, weights: Mapping[str, float],
    candidates: int | None = None, stored: Sequence[Stored | None] | None = None,
    question_vector: np.ndarray | None = None, refine: int = 0,
) -> tuple[list[Sentence], np.ndarray]:
    """Every sentence of the hits, scored, best first; and the question's vector.

    score = (0.6 similarity + 0.1 vocabulary + 0.2 passage score relative to the first
             + 0.05 min(words, 20) / 20 + 0.2 if it opens with yes/no and the question is a yes/no one
             - 0.3 if it restates the question
             - NOT_BODY_PENALTY if it is a title, heading, byline or metadata line
             + SECTION_BONUS (reasons, lessons) or OUTCOME_BONUS (the outcome) if it is under a heading
               that answers the question's focus, in the document of the best sentence without it
            ) / (1 + 0.05 passage rank)
    A sentence under SHORT_FOR_MEANING words ("Yes.") is judged by its embedding together with the
    next one (`embedded_spans`). The weights were chosen on the dev set's questions (docs/answers.md).

    The similarity is the question's cosine with each sentence's vector: the one stored at ingest
    (`stored`, per hit, matched by its span) when there is one, else embedded now (about 2.5 ms a
    sentence on 2 cores). With `refine`, stored vectors only pick the few sentences embedded alone
    now, which are then scored by that (`_refine`). With `candidates`, of the sentences without a
    stored vector only about that many are embedded: half of them those whose score without the
    similarity term (focus bonus included) is highest, the others their neighbours in the passage
    (a quote grows into them); the rest keep similarity 0 and so never win (docs/answers.md).
    """
    if question_vector is None:  # the service passes the one it searched with
        question_vector = encode([question])[0]
    own = [split_sentences(hit.text) for hit in hits]
    spans = [(i, a, b) for i, mine in enumerate(own) for a, b in mine]
    judged = [(i, a, b) for i, mine in enumerate(own) for a, b in embedded_spans(hits[i].text, mine)]
    if not spans:
        return [], question_vector
    texts = [hits[i].text[a:b] for i, a, b in spans]
    top = hits[0].score if hits[0].score > 0 else 0.0
    yes_no = is_yes_no_question(question)
    question_trigrams = _trigrams(WORD.findall(question.lower()))
    focus = question_focus(question)
    names_and_dates_answer = bool(_WHO_WHEN_QUESTION.search(question.lower()))
    headings: list[str] = []
    for i, hit in enumerate(hits):
        # A PDF page's heading is the last one that starts on the page: not what its first lines are under.
        mine = hit.heading_path[-1] if hit.heading_path and hit.page is None else ""
        headings.extend(headings_before(hit.text, own[i], mine, hit.parts))
    titles = [(hit.title, *hit.heading_path, *(p.heading_path[-1] for p in hit.parts if p.heading_path))
              for hit in hits]
    rest, overlaps, bodies = [], [], []
    for n, (i, a, b) in enumerate(spans):
        overlap = coverage(texts[n], weights)
        relative = max(0.0, hits[i].score / top) if top else 0.0
        answers_yes_no = yes_no and texts[n].lower().startswith(("yes", "no"))
        length = min(len(WORD.findall(texts[n])), 20) / 20  # fragments ("[4]", "Options:") rarely answer
        value = 0.1 * overlap + 0.2 * relative + 0.05 * length + 0.2 * answers_yes_no
        if restates(question_trigrams, texts[n]):
            value -= 0.3
        body = not (repeats_title(texts[n], titles[i]) or is_heading_line(texts[n])
                    or (not names_and_dates_answer and is_metadata_line(texts[n])))
        if not body:
            value -= NOT_BODY_PENALTY
        rest.append(value)
        overlaps.append(overlap)
        bodies.append(body)
    rank = np.array([1.0 + 0.05 * i for i, _, _ in spans], dtype=np.float64)
    # sentences with a stored vector cost nothing: `candidates` limits those embedded now, picked by
    # their score without the similarity (and the bonus their heading may earn)
    known = _stored_vectors(judged, stored)
    unstored = [n for n in range(len(spans)) if n not in known]
    bonus = OUTCOME_BONUS if focus == "outcome" else SECTION_BONUS
    under_focus = [bodies[n] and heading_matches(headings[n], focus) for n in range(len(spans))]
    promise = [(rest[n] + bonus * under_focus[n]) / rank[n] for n in range(len(spans))]
    fresh = _candidates(spans, promise, candidates, unstored)
    similarity = np.zeros(len(spans), dtype=np.float32)
    for n, vector in known.items():
        similarity[n] = float(vector @ question_vector)
    # the sentences `_refine` will embed alone, as far as they are known before the fresh ones are
    # scored (all of them unless a focus moves the answering document): one call for both sets runs
    # side by side on the cores, two calls one after the other
    ahead = _to_refine((0.6 * similarity + np.asarray(rest)) / rank, similarity, known, refine) if refine and known else []
    now = [_text(hits, judged[n]) for n in [*fresh, *ahead]]
    vectors = encode(now) if now else np.zeros((0, len(question_vector)), np.float32)
    similarity[fresh] = vectors[: len(fresh)] @ question_vector if fresh else 0.0
    alone = dict(zip(ahead, vectors[len(fresh):]))
    values = (0.6 * similarity + np.asarray(rest)) / rank
    if focus:
        # the part of the answering document that the question asks for: its reasons, its lessons,
        # or what it decided or does (Decision, Mitigation) rather than the Context or Meaning it
        # starts from, all alike in meaning
        best = spans[int(np.argmax(values))][0]
        document = (hits[best].doc_id, hits[best].doc_path)
        for n, (i, _, _) in enumerate(spans):
            if under_focus[n] and (hits[i].doc_id, hits[i].doc_path) == document:
                rest[n] += bonus
        values = (0.6 * similarity + np.asarray(rest)) / rank
    if refine and known:
        def cosines(ns: list[int]) -> np.ndarray:
            missing = [n for n in ns if n not in alone]
            if missing:
                alone.update(zip(missing, encode([_text(hits, judged[n]) for n in missing])))
            return np.array([alone[n] for n in ns]) @ question_vector

        values = _refine(values, similarity, rest, rank, known, refine, cosines)
    scored = [Sentence(i, a, b, float(similarity[n]), overlaps[n], float(values[n]), bodies[n])
              for n, (i, a, b) in enumerate(spans)]
    scored.sort(key=lambda s: -s.score)
    return scored, question_vector


def _refine(values: np.ndarray, similarity: np.ndarray, rest: Sequence[float], rank: np.ndarray,
            known: Mapping[int, np.ndarray], refine: int, cosines: Callable[[list[int]], np.ndarray]) -> np.ndarray:
    """Re-score with query-time embeddings the sentences that matter, `similarity` updated in place.

    A stored sentence vector is pooled inside its passage, so it carries the passage's context:
    good for telling which sentences may answer, not for the final choice nor for the confidence,
    which were calibrated on sentences embedded alone. So the `refine` best by their stored
    vectors and the one most similar to the question are embedded alone; then, while the best
    sentence is still judged by its stored vector, it is too (REFINE_ROUNDS at most).
    """
    chosen = _to_refine(values, similarity, known, refine)
    similarity[chosen] = cosines(chosen)
    values = (0.6 * similarity + np.asarray(rest)) / rank
    done = set(chosen)
    for _ in range(REFINE_ROUNDS):
        best = int(np.argmax(values))
        if best in done or best not in known:
            break
        similarity[best] = cosines([best])[0]
        done.add(best)
        values = (0.6 * similarity + np.asarray(rest)) / rank
    return values


def _to_refine(values: np.ndarray, similarity: np.ndarray, known: Mapping[int, np.ndarray], refine: int) -> list[int]:
    """The sentences `_refine` embeds alone first: the `refine` best of those with a stored vector,
    and the one of them most similar to the question."""
    chosen = [n for n in np.argsort(-values, kind="stable").tolist() if n in known][:refine]
    return chosen + [n for n in np.argsort(-similarity, kind="stable").tolist() if n in known and n not in chosen][:1]


def _text(hits: Sequence[Hit], span: tuple[int, int, int]) -> str:
    i, a, b = span
    return hits[i].text[a:b]


def _stored_vectors(judged: Sequence[tuple[int, int, int]],
                    stored: Sequence[Stored | None] | None) -> dict[int, np.ndarray]:
    """sentence number -> its stored vector, for the sentences whose judged span was stored."""
    if not stored:
        return {}
    by_hit: dict[int, dict[tuple[int, int], int]] = {}
    out = {}
    for n, (i, a, b) in enumerate(judged):
        if i >= len(stored) or stored[i] is None:
            continue
        rows = by_hit.get(i)
        if rows is None:
            rows = by_hit[i] = {(int(s), int(e)): r for r, (s, e) in enumerate(stored[i][0])}
        row = rows.get((a, b))
        if row is not None:
            out[n] = stored[i][1][row]
    return out


def _candidates(spans, promise: Sequence[float], limit: int | None, among: Sequence[int]) -> list[int]:
    """The sentences worth embedding among `among`, in order: all of them, or the `limit` // 2 most
    promising and each one's neighbours in its passage."""
    if limit is None or len(among) <= limit:
        return list(among)
    allowed = set(among)
    best = sorted(among, key=lambda n: promise[n], reverse=True)[: max(1, limit // 2)]
    chosen = {m for n in best for m in (n - 1, n, n + 1) if m in allowed and spans[m][0] == spans[n][0]}
    return sorted(chosen)


def extract_answer(
    question: str,
    hits: Sequence[Hit],
    encode: Encode,
    weights: Mapping[str, float],
    params: AnswerParams = AnswerParams(),
    passage_vectors: np.ndarray | None = None,
    sentence_vectors: Sequence[Stored | None] | None = None,
    question_vector: np.ndarray | None = None,
    frequencies: tuple[Mapping[str, int], int] | None = None,
) -> Answer:
    """The best-supported quote from the top `params.passages` hits, or an abstention.

    `passage_vectors` are the hits' stored embeddings (row i for hit i), to compare the question
    with whole passages; without them the hits' dense scores stand in. `sentence_vectors` are their
    stored sentence vectors (item i for hit i, None: none stored), and `question_vector` the question's
    embedding when the caller has it: with both, a question costs no model time beyond what the
    stored vectors leave out. `frequencies` (document frequency of the question's words and specific
    terms, number of passages) lowers the confidence when the quoted passage lacks what the question
    names (answers/terms.py); without it, no such check. A quote without the kind of answer the
    question asks for (an amount, a duration, a frequency, a number, an IP address, a time, a person:
    answers/kinds.py) loses KIND_PENALTY.
    """
    top = list(hits[: params.passages])
    sentences, question_vector = score_sentences(question, top, encode, weights, params.candidates,
                                                 sentence_vectors, question_vector, params.refine)
    if not sentences:
        return Answer(None, 0.0, kind="none", note="Nothing in the index matches this question.")
    best = sentences[0]
    hit = top[best.hit]
    start, end = _grow(best, sentences, hit.text, params.max_sentences)
    if passage_vectors is not None and len(passage_vectors) >= len(top):
        passage_similarity = float(np.max(passage_vectors[: len(top)] @ question_vector))
    else:
        passage_similarity = max((h.dense_score for h in top if h.dense_score is not None), default=0.0)
    confidence = answer_confidence(max(s.semantic for s in sentences), passage_similarity, coverage(hit.text, weights))
    missing: tuple[str, ...] = ()
    reason = None
    if frequencies is not None:
        evidence = term_evidence(question, (hit.text, hit.title, *hit.heading_path), frequencies[0], frequencies[1],
                                 list(weights))
        confidence = round(max(0.0, confidence - term_penalty(evidence)), 4)
        missing = evidence.missing
        reason = missing_reason(evidence.unseen + evidence.unseen_words, evidence.absent)
    kind = lacking_kind(question, hit.text[start:end])
    if kind is not None:
        confidence = round(max(0.0, confidence - KIND_PENALTY), 4)
        reason = reason or f"the closest passage gives no {kind.phrase}"
    if confidence < params.threshold:
        return Answer(None, confidence, kind="none", note=abstain_note(reason), missing_terms=missing, reason=reason)
    citation = Citation(best.hit + 1, hit.chunk_id, hit.source_at(start), hit.title, hit.text[start:end], start, end,
                        hit.doc_id)
    return Answer(hit.text[start:end], confidence, (citation,), kind="extractive", missing_terms=missing)


def lacking_kind(question: str, quote: str) -> AnswerKind | None:
    """The kind of answer the question asks for (answers/kinds.py) when the quote gives none; a
    yes/no question ("Is there severance pay?") is also answered by a quote opening with yes or no."""
    kind = expected_kind(question)
    if kind is None or gives(quote, kind):
        return None
    return None if is_yes_no_question(question) and quote.lower().startswith(("yes", "no")) else kind


def missing_reason(unseen: Sequence[str], absent: Sequence[str]) -> str | None:
    """What the documents lack of the question's terms ("the documents never mention Denver"), or None."""
    if unseen:
        return f"the documents never mention {', '.join(unseen)}"
    if absent:
        return f"the closest passage does not mention {', '.join(absent)}"
    return None


def abstain_note(reason: str | None) -> str:
    """An abstention's note, naming what is missing when that is known."""
    return f"{_NOT_CONFIDENT}{': ' + reason if reason else ''}{_SEE_HITS}"


def answer_confidence(sentence_similarity: float, passage_similarity: float, passage_coverage: float) -> float:
    """0..1: how close the question comes to the best-matching sentence and passage in meaning, and
    how much of its (rarity-weighted) vocabulary the quoted passage holds."""
    value = 0.5 * sentence_similarity + 0.3 * passage_similarity + 0.2 * passage_coverage
    return round(min(1.0, max(0.0, value)), 4)


def _grow(best: Sentence, sentences: Sequence[Sentence], text: str, max_sentences: int) -> tuple[int, int]:
    """The best sentence, grown with its neighbours in the same passage while they help.

    A short best sentence ("Yes.") takes the next one; a neighbour scoring nearly as well as the
    best joins too, never a title or metadata line. The span stays contiguous, so it is one verbatim quote.
    """
    same = sorted((s for s in sentences if s.hit == best.hit), key=lambda s: s.start)
    at = next(i for i, s in enumerate(same) if s.start == best.start)
    lo = hi = at

    def words(a: int, b: int) -> int:
        return len(WORD.findall(text[a:b]))

    while hi - lo + 1 < max_sentences:
        span_words = words(same[lo].start, same[hi].end)
        nxt = same[hi + 1] if hi + 1 < len(same) and same[hi + 1].body else None
        if nxt is not None and (span_words < SHORT_SENTENCE_WORDS or nxt.score >= 0.9 * best.score):
            hi += 1
            continue
        prev = same[lo - 1] if lo > 0 and same[lo - 1].body else None
        if prev is not None and prev.score >= 0.9 * best.score:
            lo -= 1
            continue
        break
    return same[lo].start, same[hi].end


def passage_evidence(hits: Sequence[Hit], weights: Mapping[str, float], passage_similarity: float,
                     question: str = "", frequencies: tuple[Mapping[str, int], int] | None = None) -> float:
    """A search's evidence on the answer confidence's scale, without sentence embeddings: the best
    question-passage similarity stands in for the sentence similarity too; with `frequencies`, the
    first passage's missing terms count as in an answer (answers/terms.py), and so does its lack of
    the kind of answer the question asks for (answers/kinds.py)."""
    if not hits:
        return 0.0
    value = answer_confidence(passage_similarity, passage_similarity, coverage(hits[0].text, weights))
    if frequencies is not None:
        first = hits[0]
        evidence = term_evidence(question, (first.text, first.title, *first.heading_path), frequencies[0],
                                 frequencies[1], list(weights))
        value = round(max(0.0, value - term_penalty(evidence)), 4)
    if lacking_kind(question, hits[0].text) is not None:
        value = round(max(0.0, value - KIND_PENALTY), 4)
    return value


def supporting_span(text: str, claims: Sequence[str]) -> tuple[int, int]:
    """The sentence of `text` sharing the most words with the claims that cite it (a generated
    answer's citation), so the UI can highlight where the claim comes from."""
    claim_stems = {_stem(w) for claim in claims for w in WORD.findall(claim.lower()) if w not in STOPWORDS}
    best, best_shared = (0, len(text)), -1
    for start, end in split_sentences(text):
        shared = len(claim_stems & {_stem(w) for w in WORD.findall(text[start:end].lower())})
        if shared > best_shared:
            best, best_shared = (start, end), shared
    return best
