"""Search filters: checked once at the edge (`make_filters`), turned into SQL over the documents table
(`filter_sql`). Retrieval restricts both retrievers to the chunks of the matching documents before
taking its top candidates, so a filtered query returns k passages whenever k exist. The same SQL
carries access control: `SearchFilters.groups`, set by the service from the reader's Principal
(km_search/access.py), never from request parameters."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable

from km_search.errors import BadQuery
from km_search.experts.people import fold
from km_search.types import SearchFilters

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
# The document date filters and recency use: when it was last changed, else when it was written.
DOC_DATE = "COALESCE(d.modified, d.created)"


def _values(values: str | Iterable[str] | None) -> tuple[str, ...]:
    """Non-blank values, trimmed, duplicates dropped; a 'a,b' string counts as two values."""
    if values is None:
        return ()
    if isinstance(values, str):
        values = [values]
    out = (v.strip() for value in values for v in (value or "").split(","))
    return tuple(dict.fromkeys(v for v in out if v))


def check_date(name: str, value: str | None) -> str | None:
    """'YYYY-MM-DD' (a real calendar date) or None; anything else is a BadQuery (HTTP 422)."""
    value = (value or "").strip()
    if not value:
        return None
    try:
        if not _DATE.match(value):
            raise ValueError
        dt.date.fromisoformat(value)
    except ValueError:
        raise BadQuery(f"{name} must be a date written YYYY-MM-DD, like 2024-03-01; got {value!r}") from None
    return value


def make_filters(
    types: str | Iterable[str] | None = None,
    projects: str | Iterable[str] | None = None,
    authors: str | Iterable[str] | None = None,
    tags: str | Iterable[str] | None = None,
    paths: str | Iterable[str] | None = None,
    modified_after: str | None = None,
    modified_before: str | None = None,
) -> SearchFilters:
    """SearchFilters from request or command-line values, normalized the way they are matched."""
    after = check_date("modified_after", modified_after)
    before = check_date("modified_before", modified_before)
    if after and before and after > before:
        raise BadQuery(f"modified_after ({after}) is later than modified_before ({before}): nothing can match")
    return SearchFilters(
        types=tuple(dict.fromkeys(t.lower() for t in _values(types))),
        projects=_values(projects),
        authors=tuple(dict.fromkeys(fold(a) for a in _values(authors))),
        tags=tuple(dict.fromkeys(fold(t) for t in _values(tags))),
        paths=tuple(dict.fromkeys(p.lstrip("/").removeprefix("./") for p in _values(paths))),
        modified_after=after,
        modified_before=before,
    )


def filter_sql(filters: SearchFilters) -> tuple[str, list]:
    """A WHERE condition over `documents d` (with the people table and the km_fold() SQL function
    the snapshot registers) and its parameters; ('1', []) when nothing is filtered."""
    parts: list[str] = []
    params: list = []

    def any_of(template: str, values: tuple[str, ...], to_params=lambda v: [v]) -> None:
        parts.append("(" + " OR ".join(template for _ in values) + ")")
        for v in values:
            params.extend(to_params(v))

    def one_of(expression: str, values: tuple[str, ...]) -> None:
        parts.append(f"{expression} IN ({','.join('?' * len(values))})")
        params.extend(values)

    if filters.types:
        one_of("d.doc_type", filters.types)
    if filters.projects:
        one_of("d.project COLLATE NOCASE", filters.projects)
    if filters.authors:
        parts.append(
            "d.id IN (SELECT p.doc_id FROM people p WHERE "
            + " OR ".join("instr(p.folded, ?) > 0" for _ in filters.authors) + ")"
        )
        params.extend(filters.authors)
    if filters.tags:
        parts.append(
            f"EXISTS (SELECT 1 FROM json_each(d.tags) t WHERE km_fold(t.value) IN ({','.join('?' * len(filters.tags))}))"
        )
        params.extend(filters.tags)
    if filters.paths:
        any_of("substr(d.path, 1, ?) = ?", filters.paths, lambda p: [len(p), p])
    if filters.modified_after:
        parts.append(f"{DOC_DATE} >= ?")
        params.append(filters.modified_after)
    if filters.modified_before:
        parts.append(f"{DOC_DATE} <= ?")
        params.append(filters.modified_before)
    if filters.groups is not None:
        where, values = groups_sql(filters.groups)
        parts.append(where)
        params.extend(values)
    return (" AND ".join(parts) or "1"), params


def groups_sql(groups: tuple[str, ...]) -> tuple[str, list]:
    """Access control: documents `d` readable by someone in these groups, i.e. sharing one with the
    document's `groups` (a JSON list; 'public' is in every reader's groups). No groups: nothing."""
    if not groups:
        return "0", []
    marks = ",".join("?" * len(groups))
    return f"EXISTS (SELECT 1 FROM json_each(d.groups) g WHERE g.value IN ({marks}))", list(groups)
