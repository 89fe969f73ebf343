"""What kind of answer a question expects, and whether a quote gives one.

"How much does DocumentDB cost?", "how often is the mirror synced?", "what is the retention period?",
"IP range for the disaster recovery environment", "when is the maintenance window?", "who is on
call?": such a question names a kind of answer (an amount, a frequency, a duration, a number, an IP
address, a time, a person) besides its topic. A near miss quotes a sentence on the topic that gives
none ("a decision should be made based on cost benefit…"), close in meaning and naming every term of
the question, so neither the similarity nor the specific terms (answers/terms.py) see it; a quote
without what was asked does not answer. The classic answer-type check of question answering, kept to
kinds that regular expressions tell reliably. Pure functions; docs/answers.md has the rule and what
it measured.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

KIND_PENALTY = 0.3  # taken off the confidence when the quote gives nothing of the kind asked for

_UNIT = (r"(ms|milliseconds?|s|secs?|seconds?|mins?|minutes?|h|hrs?|hours?|d|days?|w|wks?|weeks?|months?|years?"
         r"|business days?|working days?)")
_NUMBER_WORD = r"(one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|fifteen|twenty|thirty|sixty|a|an|half)"
_SPAN = r"\b\d+(\.\d+)?\s?" + _UNIT + r"\b|\b" + _NUMBER_WORD + r"[ -]" + _UNIT + r"\b"  # "90 days", "one hour"
_WHY = re.compile(r"^\W*(why|how come)\b")  # asks for reasons, whatever it names


@dataclass(frozen=True)
class AnswerKind:
    name: str
    asks: re.Pattern  # the question (lower-case) expects this kind of answer
    gives: re.Pattern  # a quote gives one
    phrase: str  # for the note: "the closest passage gives no {phrase}"


def _kind(name: str, phrase: str, asks: str, gives: str, case: bool = False) -> AnswerKind:
    """A kind from its two patterns: `asks` on the lower-cased question, `gives` on the quote
    (case-insensitive unless `case`: a name is told by its capital)."""
    return AnswerKind(name, re.compile(asks), re.compile(gives, 0 if case else re.I), phrase)


KINDS = (
    _kind("address", "IP address or range",
          r"\b(ip (range|address|block)s?|ip addresses|cidr|subnets?)\b",
          r"\b\d{1,3}(\.\d{1,3}){3}(/\d+)?\b|\b(?=[0-9a-f:]*\d)[0-9a-f]{1,4}(:[0-9a-f]{0,4}){2,7}(/\d+)?"),
    _kind("money", "amount",
          r"\bhow much\b.*\b(cost|costs|pay|paid|price|budget|spend|charge|charged|fees?|salary|stipend"
          r"|allowance|worth|reimburs\w*)\b|\b(what|which) is the (\w+ )?(cost|price|budget|pay|salary|stipend"
          r"|fee|allowance)\b|\b(cost|price|budget|salary|stipend|allowance|bonus) (for|of)\b"
          r"|^\W*(budget|cost|price|salary)\b|\bpay\b",
          r"[$£€¥]\s?\d|\d\s?%|\b\d+p\b|\b\d[\d,.]*\s?(k|m|bn|dollars?|pounds?|euros?|usd|gbp|eur|cents?|pence)\b"
          r"|\b(free|free of charge|no cost|no charge|unpaid)\b"),
    _kind("frequency", "frequency",
          r"\bhow (often|frequently)\b|\bhow many times\b",
          r"\b(daily|weekly|fortnightly|monthly|quarterly|yearly|annually|hourly|nightly|every|each|once"
          r"|twice|always|never|continuously|per (second|minute|hour|day|week|month|year|run|deploy)"
          r"|a (day|week|month|year)|cron|scheduled?)\b|" + _SPAN),
    _kind("duration", "duration",
          r"\bhow (long|quickly|soon)\b|\bhow fast (do|does|must|should|can|will) (we|i|you|they)\b"
          r"|\bretention (period|time)\b|\b(deadline|time limit|timeout)\b",
          _SPAN + r"|\b(immediately|instantly|right away|as soon as|within|until|by the end of|same day|next day"
          r"|real[- ]time|asap)\b"),
    _kind("number", "number",
          r"\bhow many\b|\b(what|which) (port|percentage|percent|number|version)\b"
          r"|\bhow (big|large|much (memory|disk|space|ram|storage))\b",
          r"\d|\b(one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|hundred|thousand"
          r"|million|dozen|single|both|all|none|no)\b"),
    # "when is/does/will …" asks for a time; "when can I …" asks for a condition, not matched
    _kind("time", "time",
          r"^\W*when (is|are|was|were|will|does|do|did|should we|must we)\b",
          r"\b(1[89]|20)\d\d\b|\b(january|february|april|june|july|august|september|october|november"
          r"|december|jan|feb|apr|jun|jul|aug|sept?|oct|nov|dec)\b|\b(may|march) \d|\d (may|march)\b"
          r"|\b(mon|tues|wednes|thurs|fri|satur|sun)day\b|\b\d{1,2}(:\d\d)?\s?(am|pm)\b|\b\d{1,2}:\d\d\b"
          r"|" + _SPAN + r"|\b(next|last|this|every|each|a few|several) (day|week|month|quarter|year|sprint"
          r"|release|morning|night|weekend)s?\b|\b(after|before|during|until|once|whenever|when|if|as soon as"
          r"|at the (end|start|beginning)|daily|weekly|monthly|quarterly|yearly|annually|q[1-4])\b"),
    # a name (a capitalized word not opening the quote, a line or a sentence), an acronym (HR, IT) or a role
    _kind("person", "person or role",
          r"^\W*(who|whom|whose)\b",
          r"(?<![.!?]\s)(?<!^)(?<!\n)\b[A-Z][a-z]+\b|\b[A-Z]{2,}\b|\b(managers?|teams?|leads?|owners?|engineers?"
          r"|admins?|administrators?|staff|officers?|officials?|directors?|supervisors?|committee|board"
          r"|department|maintainers?|authors?|developers?|volunteers?|people|person|anyone|everyone|someone"
          r"|nobody|no one|contractors?|vendors?|you|your|they|we)\b", case=True),
)


def expected_kind(question: str) -> AnswerKind | None:
    """The kind of answer the question asks for, or None (most questions: what, how, why…)."""
    q = question.lower()
    if _WHY.search(q):
        return None
    return next((kind for kind in KINDS if kind.asks.search(q)), None)


def gives(text: str, kind: AnswerKind) -> bool:
    """Whether the text states something of that kind (an amount, a duration…)."""
    return kind.gives.search(text) is not None
