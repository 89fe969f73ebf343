"""Metadata after parsing, the same for every format: folder sidecars, git contributors, the document
type and, for decisions, their status.

Parsers read what a file says about itself (front matter, core properties, PDF info, <meta>).
`finish_meta` then fills the gaps, in this order of precedence:

1. the file's own metadata;
2. `_meta.yaml` sidecars: a folder's sidecar sets defaults for every document under it, the nearest
   folder's value winning over its parents'; `owners` become the authors only of files that name
   none; `groups` (who may read the documents, km_search/access/principals.py) apply to files that declare
   none; other keys go to `extra`;
3. rules: the type is inferred from the title, file name, folders and headings (`infer_type`); an
   RFC/RFD process field (`state: published`, `date_approved:`) makes a decision (`process_status`);
   an index page listing records is not one (`is_record_index`); a decision's status comes from its
   Status section or a status line, list item or table cell (`infer_status`); a document that
   declares no date gets the date of its last commit.

Everything here is pure except `FolderDefaults`, which reads the sidecar files.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml

from km_search.text import fold
from km_search.types import Contributor, DocumentMeta, Section

from .parsers._common import iso_date, scalar_str, split_names, split_tags
from .parsers.markdown import as_list

SIDECAR_NAMES = ("_meta.yaml", "_meta.yml")
TYPES = ("decision", "lesson", "howto", "policy", "meeting", "other")
_SIDECAR_KEYS = frozenset("project type doc_type tags owners authors status groups".split())

# Declared types are normalized through these synonyms (after lower-casing, '-' and '_' as spaces);
# a declared type that is none of them is kept, lower-cased ('report').
TYPE_SYNONYMS = {
    **dict.fromkeys(["decision", "decisions", "adr", "adrs", "decision record", "architecture decision record",
                     "architecture decision"], "decision"),
    **dict.fromkeys(["lesson", "lessons", "lessons learned", "lesson learned", "retrospective", "retro",
                     "post mortem", "postmortem", "incident review", "incident report"], "lesson"),
    **dict.fromkeys(["howto", "how to", "howtos", "guide", "runbook", "tutorial", "playbook", "instructions"], "howto"),
    **dict.fromkeys(["policy", "policies", "standard", "guideline", "guidelines"], "policy"),
    **dict.fromkeys(["meeting", "meetings", "meeting notes", "minutes", "notes"], "meeting"),
    "other": "other",
}

# (type, strong words in the title or file name, folder names, weak title words, heading words),
# tried in this order: strong words of every rule in the title, then in the file name, then the
# folders from the nearest up, then weak title words, then headings; nothing matched -> "other".
_W = re.IGNORECASE
TYPE_RULES: tuple[tuple[str, re.Pattern, frozenset[str], re.Pattern | None, re.Pattern | None], ...] = (
    ("decision", re.compile(r"\badrs?[\s_-]?\d+|\brf[cd]s?[\s_-]?\d+|\bdecision records?\b|"
                            r"\barchitectur(?:e|al) decisions?\b", _W),
     frozenset({"decisions", "decision", "adr", "adrs", "decision-records", "rfc", "rfcs", "rfd", "rfds"}),
     re.compile(r"\bdecisions?\b", _W), None),
    ("lesson", re.compile(r"\bpost[\s_-]?mortems?\b|\bretrospectives?\b|\bretro\b|\blessons?[\s_-]learned\b|"
                          r"\bincident (?:review|report)\b", _W),
     frozenset({"lessons", "lessons-learned", "postmortems", "post-mortems", "retrospectives", "retros", "incidents"}),
     re.compile(r"\blessons?\b", _W),
     re.compile(r"^(?:root causes?|lessons? learned|what went (?:well|wrong)|what we learned)\b", _W)),
    ("meeting", re.compile(r"\bmeetings?\b|\bminutes\b|\bstand[\s-]?ups?\b", _W),
     frozenset({"meetings", "meeting-notes", "minutes"}),
     re.compile(r"\bsync\b", _W),
     re.compile(r"^(?:attendees|agenda|participants)\b", _W)),
    ("howto", re.compile(r"^how[\s_-]?to\b|\brunbooks?\b|\bplaybooks?\b|\btutorials?\b", _W),
     frozenset({"howto", "how-to", "howtos", "guides", "runbooks", "playbooks", "tutorials"}),
     re.compile(r"\bguides?\b|\bset(?:ting)?[\s-]?up\b|\binstructions\b", _W),
     re.compile(r"^(?:prerequisites|steps|step \d+)\b", _W)),
    ("policy", re.compile(r"\bpolic(?:y|ies)\b", _W), frozenset({"policies", "policy"}), None, None),
)

STATUSES = ("proposed", "accepted", "rejected", "deprecated", "superseded", "draft", "approved", "final",
            "reverted", "withdrawn", "abandoned", "published", "committed", "discussion", "prediscussion",
            "ideation", "predraft")
# Words written for a status that mean one of STATUSES: 'Replaced by ADR-9' is 'Superseded'.
STATUS_SYNONYMS = {"replaced": "superseded", "obsoleted": "superseded", "partly superseded": "superseded",
                   "partially superseded": "superseded", "publish": "published", "pending": "proposed",
                   "in review": "proposed", "under review": "proposed", "review": "proposed",
                   "incomplete": "proposed"}
# RFD/RFC process states (Oxide's `state:`, also as the AsciiDoc attribute `:state:`): a document in
# such a process is a decision record whatever its folder; `draft` alone is not (Word files say it).
RFD_STATES = frozenset({"prediscussion", "ideation", "predraft", "draft", "discussion", "published",
                        "committed", "abandoned"})
_RFD_ONLY = RFD_STATES - {"draft"}
_STATUS_WORDS = "|".join(sorted((*STATUSES, *STATUS_SYNONYMS), key=len, reverse=True)).replace(" ", r"\s+")
_LEAD = re.compile(r"^[\W_]*(?:\d{4}-\d{2}-\d{2}[\W_]*)?")  # emoji, bullets, bold marks, a date before it
_STATUS = re.compile(r"^(" + _STATUS_WORDS + r")\b(?:\s+(?:by|in|with)\b\s*(.*))?", _W)
# 'Status: X', '* Status: X', '**Status:** X', '| Status | X |', 'Status - X', '… - Status: X' (inline)
_STATUS_FIELD = re.compile(r"\bstatus\b[*_]*\s*(?:[:=|]|[-–—]\s)\s*([^\n|]+)", _W)
_SUPERSEDES = re.compile(r"\b(?:supersedes|replaces|obsoletes)\b\s*:?\s*([^\n]*)", _W)
_LINK = re.compile(r"!?\[([^\]]*)\]\(\s*([^)\s]*)[^)]*\)")
# A record reference: 'ADR-036', 'adr 12', 'RFD #42', or a bare number that is not part of a date.
_REF = re.compile(r"\b([a-z]{2,10})[\s_-]?#?(\d{1,6})\b(?!\.\d)|(?<![\w.-])#?(\d{1,6})(?![\w-]|\.\d)", _W)
_WEB = re.compile(r"\b(?:https?|ftp)://\S+|\bwww\.\S+", _W)
_STATUS_WINDOW = 600  # characters at the top of a document where a status line counts
_APPROVED_KEYS = ("date_approved", "approved", "approval_date")


def normalize_type(value: str | None) -> str | None:
    """'ADR', 'Post-mortem', 'how_to' -> 'decision', 'lesson', 'howto'; unknown kept lower-cased."""
    text = " ".join(re.sub(r"[-_]", " ", (value or "").lower()).split())
    return TYPE_SYNONYMS.get(text, text) or None


# Section names of ADR templates (Nygard, MADR, Y-statements): two of them make a decision record
# even without a 'Decision' heading, at least one being one that only ADRs have.
_ADR_HEADINGS = frozenset({"status", "context", "decision", "decisions", "consequences", "context and problem statement",
                           "decision drivers", "considered options", "decision outcome", "pros and cons of the options",
                           "rationale"})
_ADR_ONLY = frozenset({"status", "decision", "decisions", "consequences", "context and problem statement",
                       "decision drivers", "considered options", "decision outcome", "pros and cons of the options"})
# Folder names made of these words hold decision records: 'architecture-decisions', 'adr-log', 'rfd'.
_DECISION_FOLDER_WORDS = frozenset({"adr", "adrs", "decision", "decisions", "rfc", "rfcs", "rfd", "rfds"})


def _folder_type(folder: str) -> str | None:
    """The type a folder name gives its documents, if any."""
    for doc_type, _, folders, *_ in TYPE_RULES:
        if folder.lower() in folders:
            return doc_type
    return "decision" if set(re.split(r"[-_. ]+", folder.lower())) & _DECISION_FOLDER_WORDS else None


def _adr_structure(names: Sequence[str]) -> bool:
    found = {fold(n).strip(" :") for n in names} & _ADR_HEADINGS
    return len(found) >= 2 and bool(found & _ADR_ONLY)


def infer_type(title: str, headings: Iterable[Sequence[str]], rel_path: str) -> str:
    """The document type from its title, file name, folders and headings (the order of TYPE_RULES);
    an ADR template's sections come right after the folders, before weak title words."""
    parts = rel_path.split("/")
    stem = re.sub(r"[-_.]+", " ", parts[-1].rsplit(".", 1)[0])
    # a numbered record in a folder of decisions ('adr/0039-domain-policy.md') is one, whatever
    # other type a word of its title names
    if parts[:-1] and _folder_type(parts[-2]) == "decision" and record_number(title, rel_path) is not None:
        return "decision"
    for text in (title, stem):
        for doc_type, strong, *_ in TYPE_RULES:
            if strong.search(text or ""):
                return doc_type
    for folder in reversed(parts[:-1]):
        if found := _folder_type(folder):
            return found
    names = [h[-1] for h in headings if h]
    if _adr_structure(names):
        return "decision"
    for doc_type, _, _, weak, _ in TYPE_RULES:
        if weak is not None and weak.search(title or ""):
            return doc_type
    for doc_type, *_, heading_rule in TYPE_RULES:
        if heading_rule is not None and any(heading_rule.search(name) for name in names):
            return doc_type
    return "other"


def record_ref(text: str | None) -> str | None:
    """The record a status or 'Supersedes' line points at: 'ADR-036' from '[ADR 036](036-x.md)',
    '0012' from 'Replaces [0012](0012-x.md)', the link's file number when its text has none;
    None when it names no record."""
    text = text or ""
    targets = [t for _, t in _LINK.findall(text)
               if not _WEB.match(t) or re.search(r"\.(?:md|markdown|adoc|asciidoc|rst|html?|txt)$", t.split("#", 1)[0])]
    plain = _WEB.sub(" ", _LINK.sub(lambda m: m[1], text))  # 'pull/23' in an address is no record
    if m := _REF.search(plain):
        return f"{m[1].upper()}-{m[2]}" if m[1] else m[3]
    for target in targets:  # '0012-use-mysql.md', 'adr-0012.md', '../0012/README.md'
        parts = [p for p in target.split("#", 1)[0].split("/") if p not in ("", ".", "..")]
        stem = parts[-1].rsplit(".", 1)[0] if parts else ""
        if m := _RECORD_ID.match(stem):
            return f"{m[1].upper()}-{m[2]}"
        if m := _NUMBERED.match(stem) or (re.fullmatch(r"(\d{1,5})", parts[-2]) if len(parts) > 1 else None):
            return m[1]
    return None


def normalize_status(value: str | None) -> tuple[str | None, str | None]:
    """('Superseded', 'ADR-012') from 'superseded by ADR-012', '⌛️ Superseded by [ADR 12](012-x.md)'
    or 'Replaced by ADR 12'; emoji, bold, links and dates around a status are dropped ('✅ **Accepted**
    (2021-03-02)' is 'Accepted'). A superseding record named by title only is kept as that title. A
    status that is none of STATUSES is kept as written; (None, None) for nothing."""
    text = " ".join((value or "").split())
    if not text:
        return None, None
    m = _STATUS.match(_LEAD.sub("", text))
    if not m:
        return " ".join(_LINK.sub(lambda m: m[1], text).split()), None
    word = " ".join(m[1].lower().split())
    word = STATUS_SYNONYMS.get(word, word)
    by = None
    if word == "superseded" and m[2]:
        title = re.split(r"\s*[(;,]|\s+on\s+\d|\.\s", _LINK.sub(lambda m: m[1], m[2]).strip(" .*_"), maxsplit=1)[0]
        by = record_ref(m[2]) or title or None
    return word.capitalize(), by


def _known(status: str | None) -> bool:
    return bool(status) and status.lower() in STATUSES


def infer_status(sections: Sequence[Section]) -> tuple[str | None, str | None, str | None]:
    """(status, superseded_by, supersedes) of a decision record: its 'Status' section (a 'Superseded
    by' line there wins over the 'Accepted' above it: it was written later), else the first status
    line, list item or table cell near the top; 'Supersedes X' / 'Replaces X' from either place."""
    top = "\n".join(s.text for s in sections)[:_STATUS_WINDOW]
    for section in sections:
        if section.heading_path and fold(section.heading_path[-1]).strip(" :") == "status":
            found = [normalize_status(line) for line in section.text.split("\n")[:5]]
            found = [f for f in found if _known(f[0])]
            if found:
                status, by = next((f for f in found if f[0] == "Superseded"), found[0])
                return status, by, _supersedes(section.text) or _supersedes(top)
    for m in _STATUS_FIELD.finditer(top):
        status, by = normalize_status(m[1])
        if _known(status):
            return status, by, _supersedes(top)
    return None, None, _supersedes(top)


_AUTHOR_FIELD = re.compile(r"^[\W_]*(?:authors?|owners?|deciders|written by)\b[*_]*\s*(?:[:=|]|[-–—]\s)\s*([^\n|]+)",
                           _W | re.MULTILINE)


def stated_authors(sections: Sequence[Section]) -> tuple[str, ...]:
    """The people a document names as its authors near its top, as a line, a list item or a table
    cell ('Authors: A, B', '* Deciders: A', '| Authors | [A](@a) |'), when no metadata field does."""
    top = "\n".join(s.text for s in sections)[:_STATUS_WINDOW]
    if m := _AUTHOR_FIELD.search(top):
        names = split_names(_LINK.sub(lambda link: link[1], m[1]))
        # a template's placeholder ('[list everyone involved]', 'TBD') names no one
        return tuple(n for n in names if fold(n) not in {"n/a", "none", "tbd", "-"} and not re.match(r"[\[{<]", n))
    return ()


def _supersedes(text: str) -> str | None:
    """The record a 'Supersedes ADR 12' / 'Replaces [0012](0012-x.md)' line names, if any."""
    for m in _SUPERSEDES.finditer(text):
        if ref := record_ref(m[1]):
            return ref
    return None


def process_status(meta: DocumentMeta, extra: Mapping[str, str]) -> tuple[str | None, str | None]:
    """(status, date) that an RFC/RFD process field gives: `state: published` (front matter, or the
    AsciiDoc `:state:` the parser reads as the status) -> 'Published'; `date_approved: 2019-05-02`
    -> 'Accepted' on that day. (None, None) when the document follows no such process."""
    state = fold(extra.get("state") or "")
    state = STATUS_SYNONYMS.get(state, state)  # Joyent writes `state: publish`
    if state in RFD_STATES:
        return state.capitalize(), None
    declared = fold(meta.status or "")
    if declared in _RFD_ONLY:
        return declared.capitalize(), None
    for key in _APPROVED_KEYS:
        if day := iso_date(extra.get(key)):
            return "Accepted", day
    return None, None


_INDEX_STEMS = frozenset({"readme", "index", "_index", "toc", "summary", "contents", "overview"})
_LISTED = re.compile(r"^(?:[-*+] |\d{1,4}\. |\S.*\|)")  # a list item or a table row, as parsers write them
_LISTED_RECORD = re.compile(r"\b[a-z]{2,10}[\s_-]?#?\d{1,6}\b|\b0\d{2,5}\b|^\d{1,5}\s*\|", _W)


_TEMPLATE = re.compile(r"(?:^|[\W_])templates?$")


def is_record_index(rel_path: str, sections: Sequence[Section], status: str | None) -> bool:
    """An ADR/RFD folder's README or index page, a record template, or a page that is mostly a list
    or table of records (at least 3 lines, half of them): it lists decisions and is none itself. A README that states a
    status, or that is the record of a numbered folder (Oxide's rfd/0042/README.adoc), is a record."""
    parts = rel_path.lower().split("/")
    stem = parts[-1].rsplit(".", 1)[0]
    numbered_folder = len(parts) > 1 and parts[-2].isdigit()
    if stem in _INDEX_STEMS and not numbered_folder and not status:
        return True
    if _TEMPLATE.search(stem):  # 'template.md', 'adr-template.md', 'ODH-ADR-0000-template.md'
        return True
    lines = [line for s in sections for line in s.text.split("\n") if line.strip()]
    listed = [line for line in lines if _LISTED.match(line) and _LISTED_RECORD.search(line)]
    return len(listed) >= 3 and 2 * len(listed) >= len(lines)


_RECORD_ID = re.compile(r"^\W*([a-z]{2,10})[\s_-]?(\d{1,6})(?!\d|-\d)", _W)
_NUMBERED = re.compile(r"^\s*(\d{1,5})(?:[.:)]\s|[\s_-](?!\d)|$)")  # '0001-use-x', '12. Use X', not a date


def record_id(text: str) -> str | None:
    """The id a record's title or file name starts with, as written: 'ADR-007: Use MySQL' -> 'ADR-007'."""
    m = _RECORD_ID.match(text or "")
    return f"{m[1].upper()}-{m[2]}" if m else None


def _same_record(ident: str | None) -> str | None:
    """'ADR-007', 'adr 7' -> 'ADR-7': the key that ids written differently share."""
    m = _RECORD_ID.match(ident or "")
    return f"{m[1].upper()}-{int(m[2])}" if m else None


def record_number(title: str, path: str) -> int | None:
    """A record's number in its collection: from 'ADR-7: …', '7. Use X', '0007-use-x.md', or the
    numbered folder of 'rfd/0007/README.adoc'."""
    parts = path.split("/")
    stem = parts[-1].rsplit(".", 1)[0]
    for text in (title, stem):
        if m := _RECORD_ID.match(text or ""):
            return int(m[2])
    for text in (stem, title):
        if m := _NUMBERED.match(text or ""):
            return int(m[1])
    return int(parts[-2]) if len(parts) > 1 and parts[-2].isdigit() else None


def collection_of(path: str) -> str:
    """The folder a record's siblings share: its own, or the one above a numbered record folder."""
    parts = path.split("/")[:-1]
    if parts and parts[-1].isdigit():
        parts = parts[:-1]
    return "/".join(parts)


def _title_key(title: str) -> str:
    """A title without its record id: 'ADR-12: Use Postgres' and 'Use Postgres' match."""
    return fold(re.sub(r"^\W*(?:[a-z]{2,10}[\s_-]?)?\d{1,6}\s*[.:)\-–—]?\s*", "", title or "", flags=_W)).strip()


Record = tuple[int, str, str, "str | None", Mapping[str, str]]  # (doc id, title, path, status, extra)


def supersession_pairs(decisions: Iterable[Record]) -> list[tuple[int, int]]:
    """(old, new) doc id pairs from whichever side states it: 'supersedes' on the new record, or
    'superseded_by' on the old one. A reference resolves to the record of that number in the same
    collection (folder), else to records with that id anywhere ('ADR-7'), else to a sibling of
    that title."""
    decisions = list(decisions)
    by_number: dict[tuple[str, int], list[int]] = {}
    by_id: dict[str, list[int]] = {}
    by_title: dict[tuple[str, str], list[int]] = {}
    for doc_id, title, path, _, _ in decisions:
        home = collection_of(path)
        if (n := record_number(title, path)) is not None:
            by_number.setdefault((home, n), []).append(doc_id)
        if ident := _same_record(record_id(title) or record_id(path.rsplit("/", 1)[-1])):
            by_id.setdefault(ident, []).append(doc_id)
        by_title.setdefault((home, _title_key(title)), []).append(doc_id)

    def resolve(ref: str, path: str) -> list[int]:
        home, digits = collection_of(path), re.search(r"\d+$", ref)
        if digits and (found := by_number.get((home, int(digits[0])))):
            return found
        if found := by_id.get(_same_record(ref) or ""):
            return found
        return [] if digits else by_title.get((home, _title_key(ref)), [])

    pairs: dict[tuple[int, int], None] = {}
    for doc_id, _, path, _, extra in decisions:
        for ref in split_tags(extra.get("supersedes", "")):
            pairs.update(((old, doc_id), None) for old in resolve(ref, path) if old != doc_id)
        for ref in split_tags(extra.get("superseded_by", "")):
            pairs.update(((doc_id, new), None) for new in resolve(ref, path) if new != doc_id)
    return list(pairs)


def record_label(title: str, path: str, shared_title: bool = False) -> str:
    """How one record names another in `superseded_by` / `supersedes`: its id ('ADR-012'), else its
    title, or its file's number when a sibling has the same title (GOV.UK's 0033 is headed
    '3. Networking Outline', as 0003 is)."""
    name = path.rsplit("/", 1)[-1]
    if ident := record_id(title) or record_id(name):
        return ident
    if shared_title and (m := _NUMBERED.match(name)):
        return m[1]
    return title or path


def supersessions(decisions: Iterable[Record], groups: Mapping[int, Sequence[str]] | None = None) -> dict[int, str]:
    """Decisions superseded by another that do not say so themselves: doc id -> the superseding
    record's label. Input rows: (doc id, title, path, status, extra).
    With `groups` (doc id -> who may read it), a record is marked only when everyone who may read
    it may also read the one superseding it: a restricted record's id never shows on a public one."""
    decisions = list(decisions)
    row = {d[0]: d for d in decisions}
    label = _labeller(decisions)
    found: dict[int, str] = {}
    for old, new in supersession_pairs(decisions):
        _, _, _, status, extra = row[old]
        marked = (status or "").lower() == "superseded" and extra.get("superseded_by")
        if not marked and _may_name(groups, old, new):
            found.setdefault(old, label(row[new]))
    return found


def superseding(decisions: Iterable[Record], groups: Mapping[int, Sequence[str]] | None = None) -> dict[int, str]:
    """The other side: records that replace one whose own text says so, but that do not name it
    (`supersedes` unset): doc id -> the old record's label; the same access rule, reversed."""
    decisions = list(decisions)
    row = {d[0]: d for d in decisions}
    label = _labeller(decisions)
    found: dict[int, str] = {}
    for old, new in supersession_pairs(decisions):
        if not row[new][4].get("supersedes") and _may_name(groups, new, old):
            found.setdefault(new, label(row[old]))
    return found


def _labeller(decisions: Sequence[Record]):
    """record_label for rows of this collection, told when a sibling shares the record's title."""
    titles = Counter((collection_of(path), _title_key(title)) for _, title, path, _, _ in decisions)
    return lambda r: record_label(r[1], r[2], titles[(collection_of(r[2]), _title_key(r[1]))] > 1)


def _may_name(groups: Mapping[int, Sequence[str]] | None, on: int, named: int) -> bool:
    """Whether record `on` may show record `named`'s label: all of `on`'s readers may read `named`."""
    return groups is None or readable_by_all_readers_of(groups.get(named, ("public",)), groups.get(on, ("public",)))


def readable_by_all_readers_of(new: Sequence[str], old: Sequence[str]) -> bool:
    """Whether everyone who may read a document with groups `old` may read one with groups `new`."""
    return "public" in new or ("public" not in old and set(old) <= set(new))


def sidecar_extra(defaults: Mapping[str, Any]) -> dict[str, str]:
    """Sidecar keys that are no DocumentMeta field, as strings."""
    return {k: s for k, v in defaults.items() if k not in _SIDECAR_KEYS and (s := scalar_str(v)) is not None}


def document_groups(declared: Sequence[str], defaults: Mapping[str, Any]) -> tuple[str, ...]:
    """Who may read a document: the groups the file declares, else the nearest sidecar's `groups`,
    else ('public',). A file declaring only `public` does not undo its folder's restriction: only
    other groups do, so a restricted folder stays restricted unless a file names who else may read it."""
    declared = tuple(g for g in declared if g)
    if declared and declared != ("public",):
        return declared
    inherited = tuple(dict.fromkeys(g.strip().lower() for g in as_list(defaults.get("groups"), split_tags) if g.strip()))
    return inherited or ("public",)


def finish_meta(
    meta: DocumentMeta,
    rel_path: str,
    sections: Sequence[Section],
    defaults: Mapping[str, Any] | None = None,
    contributors: Sequence[Contributor] = (),
) -> DocumentMeta:
    """The parser's metadata completed with sidecar defaults, git contributors and the rules above."""
    d = defaults or {}
    declared_type = meta.doc_type or scalar_str(d.get("doc_type")) or scalar_str(d.get("type"))
    extra = {**sidecar_extra(d), **meta.extra}
    in_process, approved = process_status(meta, extra)
    doc_type = normalize_type(declared_type) or ("decision" if in_process else None) or infer_type(
        meta.title, (s.heading_path for s in sections), rel_path)
    declared_status = meta.status or scalar_str(d.get("status"))
    if doc_type == "decision" and not declared_type and not in_process and is_record_index(rel_path, sections, declared_status):
        doc_type = "other"
    declared = normalize_status(declared_status)
    status, superseded_by = declared if _known(declared[0]) or not in_process else (in_process, None)
    supersedes = None
    if doc_type == "decision":
        found, found_by, supersedes = infer_status(sections)
        if status is None:
            status, superseded_by = found, found_by
        elif status == "Superseded" and not superseded_by:
            superseded_by = found_by
        if status is None and extra.get("superseded_by"):
            status = "Superseded"
    for key, value in (("superseded_by", superseded_by), ("supersedes", supersedes)):
        if value and not extra.get(key):
            extra[key] = value
    modified = meta.modified
    created = meta.created or approved
    if not created and not modified:
        modified = max((c.last_date for c in contributors if c.last_date), default=None)
    return replace(
        meta,
        authors=meta.authors or stated_authors(sections) or as_list(d.get("authors") or d.get("owners"), split_names),
        project=meta.project or scalar_str(d.get("project")),
        doc_type=doc_type,
        tags=meta.tags or as_list(d.get("tags"), split_tags),
        status=status,
        created=created,
        modified=modified,
        extra=extra,
        contributors=tuple(contributors),
        groups=document_groups(meta.groups, d),
    )


def read_sidecar(path: Path) -> tuple[dict[str, Any], str | None]:
    """A sidecar's keys (lower-cased) and a warning when it is unreadable or not a YAML mapping."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError, ValueError, RecursionError) as exc:
        reason = type(exc).__name__ if not isinstance(exc, yaml.YAMLError) else "invalid YAML"
        return {}, f"{path}: {reason}; sidecar ignored"
    if data is None:
        return {}, None
    if not isinstance(data, dict):
        return {}, f"{path}: not a YAML mapping of keys to values; sidecar ignored"
    return {str(k).strip().lower(): v for k, v in data.items()}, None


class FolderDefaults:
    """The merged sidecar defaults of each folder under one ingest root (the root's own included,
    nothing above it), each sidecar read once; unreadable ones are noted in `warnings`."""

    def __init__(self, root: Path):
        self.root = root
        self.warnings: list[str] = []
        self._cache: dict[Path, dict[str, Any]] = {}

    def __call__(self, folder: Path) -> dict[str, Any]:
        if folder in self._cache:
            return self._cache[folder]
        inherited = self(folder.parent) if folder != self.root and self.root in folder.parents else {}
        merged = dict(inherited)
        for name in SIDECAR_NAMES:
            if (folder / name).is_file():
                data, warning = read_sidecar(folder / name)
                if warning:
                    self.warnings.append(warning)
                merged.update(data)
                break
        self._cache[folder] = merged
        return merged
