"""Metadata after parsing, the same for every format: folder sidecars, git contributors, the document
type and, for decisions, their status.

Parsers read what a file says about itself (front matter, core properties, PDF info, <meta>).
`finish_meta` then fills the gaps, in this order of precedence:

1. the file's own metadata;
2. `_meta.yaml` sidecars: a folder's sidecar sets defaults for every document under it, the nearest
   folder's value winning over its parents'; `owners` become the authors only of files that name
   none; `groups` (who may read the documents, km_search/access/principals.py) apply to files that declare
   none; other keys go to `extra`;
3. rules: the type is inferred from the title, file name, folders and headings (`infer_type`); a
   decision's status from its Status section or a 'Status: X' line (`infer_status`); a document
   that declares no date gets the date of its last commit.

Everything here is pure except `FolderDefaults`, which reads the sidecar files.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml

from km_search.text import fold
from km_search.types import Contributor, DocumentMeta, Section

from .parsers._common import scalar_str, split_names, split_tags
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
    ("decision", re.compile(r"\badrs?[\s_-]?\d+|\bdecision records?\b|\barchitecture decisions?\b", _W),
     frozenset({"decisions", "decision", "adr", "adrs", "decision-records"}),
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

STATUSES = ("proposed", "accepted", "rejected", "deprecated", "superseded", "draft", "approved", "final")
_STATUS = re.compile(r"^\W*(" + "|".join(STATUSES) + r")\b(?:\s+by\s+([a-z]+[\s-]?\d+|[^\s.,;()]+))?", _W)
_STATUS_FIELD = re.compile(r"\bstatus\s*[:=\-–]\s*(" + "|".join(STATUSES) + r")\b", _W)
_SUPERSEDES = re.compile(r"\bsupersedes\s+([a-z]+[\s-]?\d+)", _W)
_STATUS_WINDOW = 600  # characters at the top of a document where a 'Status: X' line counts


def normalize_type(value: str | None) -> str | None:
    """'ADR', 'Post-mortem', 'how_to' -> 'decision', 'lesson', 'howto'; unknown kept lower-cased."""
    text = " ".join(re.sub(r"[-_]", " ", (value or "").lower()).split())
    return TYPE_SYNONYMS.get(text, text) or None


def infer_type(title: str, headings: Iterable[Sequence[str]], rel_path: str) -> str:
    """The document type from its title, file name, folders and headings (the order of TYPE_RULES)."""
    parts = rel_path.split("/")
    stem = re.sub(r"[-_.]+", " ", parts[-1].rsplit(".", 1)[0])
    for text in (title, stem):
        for doc_type, strong, *_ in TYPE_RULES:
            if strong.search(text or ""):
                return doc_type
    for folder in reversed(parts[:-1]):
        for doc_type, _, folders, *_ in TYPE_RULES:
            if folder.lower() in folders:
                return doc_type
    for doc_type, _, _, weak, _ in TYPE_RULES:
        if weak is not None and weak.search(title or ""):
            return doc_type
    names = [h[-1] for h in headings if h]
    for doc_type, *_, heading_rule in TYPE_RULES:
        if heading_rule is not None and any(heading_rule.search(name) for name in names):
            return doc_type
    if any(re.fullmatch(r"decisions?", n.strip(), _W) for n in names) and any(
        re.fullmatch(r"context|status|consequences", n.strip(), _W) for n in names
    ):
        return "decision"
    return "other"


def normalize_status(value: str | None) -> tuple[str | None, str | None]:
    """('Superseded', 'ADR-012') from 'superseded by ADR-012'; a status that is none of STATUSES
    is kept as written; (None, None) for nothing."""
    text = " ".join((value or "").split())
    if not text:
        return None, None
    m = _STATUS.match(text)
    if not m:
        return text, None
    return m[1].capitalize(), (m[2].upper().replace(" ", "-") if m[2] and m[1].lower() == "superseded" else None)


def infer_status(sections: Sequence[Section]) -> tuple[str | None, str | None, str | None]:
    """(status, superseded_by, supersedes) of a decision record: the first line of its 'Status'
    section, else a 'Status: X' line near the top."""
    for section in sections:
        if section.heading_path and fold(section.heading_path[-1]) == "status":
            first = section.text.split("\n", 1)[0]
            status, by = normalize_status(first)
            if status and status.lower() in STATUSES:
                ref = _SUPERSEDES.search(section.text)
                return status, by, ref[1].upper().replace(" ", "-") if ref else None
    top = "\n".join(s.text for s in sections)[:_STATUS_WINDOW]
    if m := _STATUS_FIELD.search(top):
        return m[1].capitalize(), None, None
    return None, None, None


_RECORD_ID = re.compile(r"^\W*([a-z]{2,10})[\s_-]?(\d{1,6})(?!\d|-\d)", _W)


def record_id(text: str) -> str | None:
    """The id a record's title or file name starts with, as written: 'ADR-007: Use MySQL' -> 'ADR-007'."""
    m = _RECORD_ID.match(text or "")
    return f"{m[1].upper()}-{m[2]}" if m else None


def _same_record(ident: str | None) -> str | None:
    """'ADR-007', 'adr 7' -> 'ADR-7': the key that ids written differently share."""
    m = _RECORD_ID.match(ident or "")
    return f"{m[1].upper()}-{int(m[2])}" if m else None


def supersessions(
    decisions: Iterable[tuple[int, str, str, str | None, Mapping[str, str]]],
    groups: Mapping[int, Sequence[str]] | None = None,
) -> dict[int, str]:
    """Decisions that a later one declares it `supersedes` but that do not say so themselves:
    doc id -> the superseding record's id. Input rows: (doc id, title, path, status, extra).
    With `groups` (doc id -> who may read it), a record is marked only when everyone who may read
    it may also read the one superseding it: a restricted record's id never shows on a public one."""
    decisions = list(decisions)
    idents = {d: record_id(title) or record_id(path.rsplit("/", 1)[-1]) for d, title, path, _, _ in decisions}
    by_key: dict[str, list[int]] = {}
    for doc_id, ident in idents.items():
        if ident:
            by_key.setdefault(_same_record(ident), []).append(doc_id)
    state = {doc_id: (status, extra) for doc_id, _, _, status, extra in decisions}
    found: dict[int, str] = {}
    for doc_id, _, _, _, extra in decisions:
        if not idents[doc_id]:
            continue
        for ref in split_tags(extra.get("supersedes", "")):
            for old in by_key.get(_same_record(ref) or "", []):
                status, old_extra = state[old]
                marked = (status or "").lower() == "superseded" and old_extra.get("superseded_by")
                if old != doc_id and not marked and (groups is None or readable_by_all_readers_of(
                        groups.get(doc_id, ("public",)), groups.get(old, ("public",)))):
                    found.setdefault(old, idents[doc_id])
    return found


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
    doc_type = normalize_type(declared_type) or infer_type(meta.title, (s.heading_path for s in sections), rel_path)
    extra = {**sidecar_extra(d), **meta.extra}
    status, superseded_by = normalize_status(meta.status or scalar_str(d.get("status")))
    supersedes = None
    if status is None and doc_type == "decision":
        status, superseded_by, supersedes = infer_status(sections)
        if status is None and extra.get("superseded_by"):
            status = "Superseded"
    for key, value in (("superseded_by", superseded_by), ("supersedes", supersedes)):
        if value and not extra.get(key):
            extra[key] = value
    modified = meta.modified
    if not meta.created and not modified:
        modified = max((c.last_date for c in contributors if c.last_date), default=None)
    return replace(
        meta,
        authors=meta.authors or as_list(d.get("authors") or d.get("owners"), split_names),
        project=meta.project or scalar_str(d.get("project")),
        doc_type=doc_type,
        tags=meta.tags or as_list(d.get("tags"), split_tags),
        status=status,
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
