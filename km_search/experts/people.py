"""People in metadata: 'Name <email>' strings split, emails normalized, one identity key per person.

The same colleague is written 'Priya Raman <Priya.Raman@corp.example>' in front matter,
'priya.raman+git@corp.example' in git and plain 'Priya Raman' in a Word file; these functions make
all three one person (the snapshot's people table stores their `key`).
"""

from __future__ import annotations

import re

from km_search.text import fold

_ANGLE = re.compile(r"^(.*?)\s*<\s*([^<>\s]*)\s*>\s*$")
_EMAIL = re.compile(r"^[^@\s<>]+@[^@\s<>]+$")
_SPACES = re.compile(r"\s+")


def normalize_email(email: str | None) -> str | None:
    """Trimmed, lower-cased, without 'mailto:' and without a '+tag' in the local part; None if not an email."""
    email = (email or "").strip().strip("<>").strip()
    if email.lower().startswith("mailto:"):
        email = email[7:]
    email = email.lower()
    if not _EMAIL.match(email):
        return None
    local, _, domain = email.rpartition("@")
    local = local.split("+", 1)[0] or local
    return f"{local}@{domain}"




def parse_person(text: str) -> tuple[str, str | None]:
    """('Name', 'email') from 'Name <email>', a bare email, or a bare name (email None)."""
    text = _SPACES.sub(" ", (text or "").strip())
    if m := _ANGLE.match(text):
        name, email = m[1].strip().strip('"').strip(), normalize_email(m[2])
        return (name, email) if email else (text, None)
    if email := normalize_email(text):
        return "", email
    return text, None


def person_key(name: str, email: str | None) -> str:
    """The identity of a person: the normalized email, else the folded name."""
    return email if email else "name:" + fold(name)


def is_bot(name: str, email: str | None) -> bool:
    """Automation that commits (dependabot[bot], renovate[bot]) is nobody's expertise."""
    return "[bot]" in (name or "").lower() or "[bot]" in (email or "")


def display_name(candidates: list[tuple[str, bool, int]], email: str | None) -> str:
    """The name to show for one person: (name, declared as an author?, times seen) candidates;
    declared names beat git names, then the most used; the email when nobody wrote a name."""
    named = [c for c in candidates if c[0]]
    if not named:
        return email or ""
    return max(named, key=lambda c: (c[1], c[2], len(c[0])))[0]
