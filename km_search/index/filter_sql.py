"""Search filters as SQL over the documents table: retrieval restricts both retrievers to the chunks
of the matching documents before taking its top candidates. The same SQL carries access control
(`SearchFilters.groups`, set by the service from the reader's Principal, never from request parameters)."""

from __future__ import annotations

from km_search.types import SearchFilters

# The document date filters and recency use: when it was last changed, else when it was written.
DOC_DATE = "COALESCE(d.modified, d.created)"


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


def filtered_chunks_sql(filters: SearchFilters | None) -> tuple[str, list] | None:
    """An SQL SELECT of the chunk ids whose documents pass the filters, with its parameters."""
    if not filters:
        return None
    where, params = filter_sql(filters)
    return f"SELECT c.id FROM chunks c JOIN documents d ON d.id = c.doc_id WHERE {where}", params
