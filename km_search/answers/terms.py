"""What a question specifically asks about, and whether the answer's passage (or the corpus) has it.

A question's confidence (extractive.answer_confidence) measures topical closeness, and a near miss
is topically close: "how do I book a meeting room in the Denver office?" comes within 0.65 of the
San Francisco office's booking sentence. What tells them apart is the question's *specific* terms:
the city, product, tool, alert, version or identifier it names. This module finds them
(`specific_terms`) and checks them against the quoted passage, its title and heading path
(`term_evidence`): a term the corpus never contains at all is strong evidence that the question is
out of scope, a term the corpus has but the quoted passage lacks a weaker one, and any other word of
the question the corpus never uses a little evidence (`term_penalty`, subtracted from the confidence).
Pure functions; docs/answers.md has the rule and its calibration.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Mapping, Sequence

from km_search.index.lexical import STOPWORDS
from km_search.text import WORD

# A term: a word, or words joined by . - _ + with no space ("eu-west-2", "GOV.UK", "0.11",
# "data.table"); a trailing "+" or "#" stays ("C++", "C#"). A slash separates alternatives
# ("Knoppix/Ubuntu"), so it splits terms.
_TERM = re.compile(r"\w+(?:[.\-+]\w+)*[+#]*")
_PLAIN_COMPOUND = re.compile(r"[a-z]+(?:-[a-z]+)+")  # "re-run", "on-call", "first-time": words, not names
_SENTENCE_END = re.compile(r"[.!?:;]\s*$")
_PLACEHOLDERS = frozenset("XYZN")  # "column X under attribute Y", "How do I do X?": not names ("R", "C" are)
_QUOTE_OPENS = re.compile(r"[\"“‘']\s*$")  # a quoted message starts here: "error about “Implicitly combining …”"
# Capitalized words that are not names: they open a clause or are the question's own grammar.
_COMMON_CAPITALIZED = frozenset(
    "i what which who whom whose when where why how is are was were do does did can could will would "
    "shall should must may might has have had please".split()
)

# The rule (calibrated on five sets of different genres, docs/answers.md):
UNSEEN_PENALTY = 0.3  # a specific term the corpus never contains: the question is about something else
ABSENT_PENALTY = 0.2  # a specific term the corpus has, missing from the quoted passage (another city, tool)
UNSEEN_WORD_PENALTY = 0.08  # another word of the question the corpus never contains ("pushgateway")
TOPIC_SHARE = 0.05  # a term in this share of the passages or more is the collection's topic ("Debian", "R")


@dataclass(frozen=True)
class TermEvidence:
    """What the answer lacks of the question: `unseen`, its specific terms the corpus never contains;
    `absent`, those the corpus has but the quoted passage (its text, title and headings) does not;
    `unseen_words`, its other content words the corpus never contains."""

    unseen: tuple[str, ...] = ()
    absent: tuple[str, ...] = ()
    unseen_words: tuple[str, ...] = ()

    @property
    def missing(self) -> tuple[str, ...]:
        """The question's terms the answer does not carry, the strongest evidence first."""
        return (*self.unseen, *self.absent, *self.unseen_words)


def is_specific(term: str, position: int, after_sentence_end: bool = False) -> bool:
    """Whether a term of the question names something specific: a version or identifier (a digit,
    or . - _ / inside), CamelCase ("IntelliJ", "OOMKilled", "1Password"), an acronym ("RDS",
    "VPN"), or a capitalized word that does not open the question, a sentence or a quotation ("Denver",
    "Miro"). X, Y, Z and N alone are placeholders ("column X"), not names."""
    if not term or not any(c.isalnum() for c in term):
        return False
    if term in _PLACEHOLDERS:
        return False
    low = term.lower()
    if low in STOPWORDS and not (term.isupper() and len(term) > 1 and low not in {"a", "i"}):
        return False
    if _PLAIN_COMPOUND.fullmatch(term):
        return False
    if any(c.isdigit() for c in term) or re.search(r"\w[.\-_+#]", term):
        return True
    if re.search(r"[a-z][A-Z]", term) or re.match(r"\d+[A-Za-z]", term):
        return True
    if len(term) > 1 and term.isupper():
        return True
    if term[0].isupper() and low not in _COMMON_CAPITALIZED:
        return position > 0 and not after_sentence_end
    return False


def specific_terms(question: str) -> list[str]:
    """The question's specific terms (see is_specific), in order, without duplicates (case-insensitive)."""
    out: dict[str, str] = {}
    for position, m in enumerate(_TERM.finditer(question)):
        term = m.group(0)
        before = question[: m.start()]
        if is_specific(term, position, bool(_SENTENCE_END.search(before) or _QUOTE_OPENS.search(before))):
            out.setdefault(term.lower(), term)
    return list(out.values())


def _stem(word: str) -> str:  # the crude stem of extractive.coverage: 'deploys' ~ 'deployment'
    return word[: max(4, len(word) - 2)] if len(word) > 4 else word


def contains_term(text: str, term: str) -> bool:
    """Whether `text` holds the term: a single word by its crude stem, a joined term ("eu-west-2",
    "0.11") verbatim, case-insensitively."""
    words = WORD.findall(term.lower())
    if not words:
        return False
    if len(words) == 1 and words[0] == term.lower().rstrip("+#"):
        return _stem(words[0]) in {_stem(w) for w in WORD.findall(text.lower())}
    return term.lower() in text.lower()


def term_evidence(question: str, passage: Sequence[str], document_frequency: Mapping[str, int],
                  total: int, content_words: Sequence[str] = ()) -> TermEvidence:
    """Which of the question's specific terms the quoted passage (`passage`: its text, title and
    headings) lacks, told apart by their document frequency in the corpus (a missing key counts as 0):
    unseen (0), absent (in under TOPIC_SHARE of the `total` passages: a term in more is the
    collection's own subject, which a passage need not repeat); and which of `content_words` (the
    question's other words, lower-case) the corpus never contains."""
    text = "\n".join(passage)
    terms = specific_terms(question)
    unseen, absent = [], []
    for term in terms:
        if contains_term(text, term):
            continue
        df = document_frequency.get(term, document_frequency.get(term.lower(), 0))
        if df <= 0:
            unseen.append(term)
        elif df < TOPIC_SHARE * total:
            absent.append(term)
    named = {w for term in terms for w in WORD.findall(term.lower())}
    words = [w for w in content_words if w not in named and document_frequency.get(w, 0) <= 0]
    return TermEvidence(tuple(unseen), tuple(absent), tuple(words))


def term_penalty(evidence: TermEvidence) -> float:
    """What the missing terms take off the answer confidence: each kind counts once, however many
    terms it has, so the rule stays three constants."""
    return (UNSEEN_PENALTY * bool(evidence.unseen) + ABSENT_PENALTY * bool(evidence.absent)
            + UNSEEN_WORD_PENALTY * bool(evidence.unseen_words))
