"""Search filters: checked once at the edge (`make_filters`), turned into SQL over the documents table
(`km_search.index.filter_sql`). Retrieval restricts both retrievers to the chunks of the matching documents before
taking its top candidates, so a filtered query returns k passages whenever k exist. The same SQL
carries access control: `SearchFilters.groups`, set by the service from the reader's Principal
(km_search/access/principals.py), never from request parameters."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable

from km_search.errors import BadQuery
from km_search.text import fold
from km_search.types import SearchFilters

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def split_values(values: str | Iterable[str] | None) -> tuple[str, ...]:
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
        types=tuple(dict.fromkeys(t.lower() for t in split_values(types))),
        projects=split_values(projects),
        authors=tuple(dict.fromkeys(fold(a) for a in split_values(authors))),
        tags=tuple(dict.fromkeys(fold(t) for t in split_values(tags))),
        paths=tuple(dict.fromkeys(p.lstrip("/").removeprefix("./") for p in split_values(paths))),
        modified_after=after,
        modified_before=before,
    )
