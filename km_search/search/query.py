"""What a query must be before anything runs: words within the length limit, a sensible k and offset."""

from __future__ import annotations

from km_search.errors import BadQuery
from km_search.settings import Settings


def validated_query(query: str, settings: Settings) -> str:
    """The query with its whitespace collapsed; empty or too long ones are a BadQuery saying why."""
    query = " ".join((query or "").split())
    if not query:
        raise BadQuery("the query is empty: pass some words in q")
    if len(query) > settings.max_query_chars:
        raise BadQuery(f"the query is {len(query)} characters long; the limit is {settings.max_query_chars}")
    return query


def check_k(k: int, settings: Settings) -> None:
    if not 1 <= k <= settings.max_k:
        raise BadQuery(f"k must be between 1 and {settings.max_k}, got {k}")


def check_offset(offset: int) -> None:
    if offset < 0:
        raise BadQuery(f"offset must be 0 or more, got {offset}")
