"""People in metadata: 'Name <email>' strings split, emails normalized, one identity key per person.

The same colleague is written 'Priya Raman <Priya.Raman@corp.example>' in front matter,
'priya.raman+git@corp.example' in git and plain 'Priya Raman' in a Word file; these functions make
all three one person (the snapshot's people table stores their `key`). `merge_identities` then joins
the keys that are one human across the whole index: one name with several tied emails, a GitHub
handle that spells a name, a name written without an email (docs/experts.md, "One person, one entry").
"""

from __future__ import annotations

import re
from collections.abc import Iterable

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
    return max(named, key=lambda c: (c[1], " " in c[0].strip(), c[2], len(c[0])))[0]  # a full name over a handle


# Mail and forge domains where people keep a personal or a per-user address: beside an organization's
# address under the same name it is the same person, not a namesake.
PERSONAL_DOMAINS = frozenset({"gmail.com", "googlemail.com", "outlook.com", "hotmail.com", "live.com", "yahoo.com",
                              "icloud.com", "me.com", "protonmail.com", "proton.me", "fastmail.com", "gmx.de",
                              "users.noreply.github.com", "users.noreply.gitlab.com"})
_NOT_NAMES = frozenset({"root", "admin", "administrator", "unknown", "user", "ubuntu", "git", "github", "ci", "build"})


def _squashed(text: str) -> str:
    """'Priya Raman', 'priya-raman', 'PriyaRaman', 'priya.raman' -> 'priyaraman'."""
    return re.sub(r"[^0-9a-z]", "", fold(text))


def _full_name(name: str) -> str | None:
    """The folded name when it is a person's full name (two words or more), else None."""
    if "@" in name:  # an address written where the name goes
        return None
    folded = " ".join(re.sub(r"[^\w\s'-]", " ", fold(name)).split())
    return folded if len(folded.split()) >= 2 and folded not in _NOT_NAMES else None


def _tied(a: str, b: str, shared_doc: bool) -> bool:
    """Whether two emails written with the same full name are one person's: the same local part
    (work and home), a personal or forge address beside the other, or both on one document."""
    (la, _, da), (lb, _, db) = a.rpartition("@"), b.rpartition("@")
    personal = da in PERSONAL_DOMAINS or db in PERSONAL_DOMAINS or da.endswith(".noreply.github.com")
    return la == lb or personal or shared_doc


def _same_names(names: list[str]) -> list[tuple[str, str]]:
    """Pairs of distinct folded full names written for one person: the same first and last name,
    and middle names that agree or are one another's initials ('pedro p candel', 'pedro palazon candel')."""
    by_ends: dict[tuple[str, str], list[list[str]]] = {}
    for name in names:
        words = name.split()
        by_ends.setdefault((words[0], words[-1]), []).append(words)
    return [(" ".join(a), " ".join(b)) for group in by_ends.values() for i, a in enumerate(group) for b in group[i + 1:]
            if len(a) == len(b) and all(x.startswith(y) or y.startswith(x) for x, y in zip(a[1:-1], b[1:-1]))]


def merge_identities(rows: Iterable[tuple[str, str, str | None, int]]) -> dict[str, str]:
    """key -> the key of the person it is, for the keys that join another: `rows` are (key, name,
    email, doc id) of the people table. In this order:
    1. emails written with one full name (middle names may be initials) are one person when tied
       (`_tied`); namesakes whose emails nothing ties (other organizations' addresses, different
       local parts, never on one document) stay apart;
    2. a one-word name or an email's local part that spells exactly one person's full name, or
       their initial and last name, or a one-word name that spells their email's local part, as
       GitHub handles and work addresses do ('priyaraman', 'priya-raman', 'PriyaRaman', 'praman'
       for Priya Raman), joins them;
    3. a name without an email joins the one person with that full name, when there is exactly one.
    The person's key is an organization's address before a personal one, one written with a full
    name before a handle's, then the most used."""
    rows = list(rows)
    seen: dict[str, int] = {}
    docs: dict[str, set[int]] = {}
    names: dict[str, set[str]] = {}
    for key, name, email, doc_id in rows:
        seen[key] = seen.get(key, 0) + 1
        docs.setdefault(key, set()).add(doc_id)
        names.setdefault(key, set()).add(name or "")
    parent = {key: key for key in seen}

    def find(key: str) -> str:
        while parent[key] != key:
            parent[key] = parent[parent[key]]
            key = parent[key]
        return key

    def rank(key: str) -> tuple:
        domain = key.rpartition("@")[2]
        full = any(_full_name(n) for n in names[key])
        return (domain in PERSONAL_DOMAINS or "noreply" in domain, not full, -seen[key], key)

    def union(a: str, b: str) -> None:
        ra, rb = find(a), find(b)
        if ra != rb:
            first, second = sorted((ra, rb), key=rank)
            parent[second] = first

    emails = [k for k in seen if not k.startswith("name:")]
    by_name: dict[str, list[str]] = {}
    for key in emails:
        for name in names[key]:
            if full := _full_name(name):
                by_name.setdefault(full, []).append(key)
    for full, other in _same_names(list(by_name)):  # 'Pedro P. Candel' is 'Pedro Palazón Candel'
        by_name[full] = by_name[full] + by_name[other]
    for keys in by_name.values():  # 1.
        keys = sorted(set(keys))
        for i, a in enumerate(keys):
            for b in keys[i + 1:]:
                if _tied(a, b, bool(docs[a] & docs[b])):
                    union(a, b)
    spelled: dict[str, set[str]] = {}  # squashed full name or email local part -> the people it spells
    for full, keys in by_name.items():
        words = full.split()
        for spelling in (full, words[0][0] + words[-1]):  # 'priyaraman', and 'praman' as work addresses write it
            spelled.setdefault(_squashed(spelling), set()).update(find(k) for k in keys)
    for key in emails:
        local = key.rpartition("@")[0]
        if len(_squashed(local)) >= 5:
            spelled.setdefault(_squashed(local), set()).add(find(key))
    for key in seen:  # 2.
        handles = {_squashed(n) for n in names[key]
                   if n and " " not in n.strip() and len(_squashed(n)) >= 5 and fold(n) not in _NOT_NAMES}
        if key.startswith("name:") and " " not in key[5:]:
            handles.add(_squashed(key[5:]))
        elif not key.startswith("name:") and not any(_full_name(n) for n in names[key]):
            local = _squashed(key.rpartition("@")[0])  # an address written without a name
            if len(local) >= 5 and local not in _NOT_NAMES:
                handles.add(local)
        for handle in handles:
            people = {find(p) for p in spelled.get(handle, ())} - {find(key)}
            if len(people) == 1:
                if key.startswith("name:"):  # a name-only key never becomes the person's key
                    parent[key] = next(iter(people))
                else:
                    union(next(iter(people)), key)
                break
    for key in seen:  # 3.
        if key.startswith("name:") and find(key) == key and (full := _full_name(key[5:])):
            people = {find(k) for k in by_name.get(full, ())}
            if len(people) == 1:
                parent[key] = next(iter(people))
    return {key: find(key) for key in seen if find(key) != key}
