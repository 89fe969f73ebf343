"""The dependencies routes declare: who is asking (`Reader`, `Admin`) and the filters every retrieval
route takes (`Filters`), as `Annotated` aliases (the FastAPI template's deps.py)."""


from typing import Annotated

from fastapi import Depends, Query, Request
from fastapi.security import HTTPAuthorizationCredentials

from km_search.access.principals import Principal
from km_search.http.auth import Authenticator, bearer, refuse
from km_search.search.filters import make_filters
from km_search.types import SearchFilters


def require_reader(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)] = None
) -> Principal:
    """FastAPI dependency: the authenticated caller, any role (readers search, ask and give feedback).
    Raises 401 (no or bad credentials), 403 (forged proxy header) or 429 (rate limit)."""
    auth: Authenticator | None = getattr(request.app.state, "auth", None)
    if auth is None:  # fail closed: an app built without create_app's authenticator serves nobody
        raise refuse(503, "authentication is not configured on this server", {})
    return auth.authenticate(request, credentials)


def require_admin(principal: Annotated[Principal, Depends(require_reader)]) -> Principal:
    """FastAPI dependency for admin operations (ingest, upload, delete, keys, analytics): the
    caller's Principal when their role is admin; 401/429 as require_reader, 403 for a reader."""
    if not principal.is_admin:
        raise refuse(403, "this needs an admin key or an admin group; yours is a reader's")
    return principal


Reader = Annotated[Principal, Depends(require_reader)]
Admin = Annotated[Principal, Depends(require_admin)]


def search_filters(
    type: Annotated[list[str] | None, Query(description="Document type: decision, lesson, howto, policy, meeting, "
                                            "other. Repeat (or comma-separate) for any of several.")] = None,
    project: Annotated[list[str] | None, Query(description="Project, case-insensitive; repeatable.")] = None,
    author: Annotated[list[str] | None, Query(description="Part of an author's or git contributor's name or "
                                              "email, case- and accent-insensitive; repeatable.")] = None,
    tag: Annotated[list[str] | None, Query(description="A tag, case-insensitive; repeatable.")] = None,
    path: Annotated[list[str] | None, Query(description="Document path prefix ('billing/decisions/'); repeatable.")] = None,
    modified_after: Annotated[str | None, Query(description="YYYY-MM-DD, inclusive: documents last modified "
                                                "(else created) on or after this day.")] = None,
    modified_before: Annotated[str | None, Query(description="YYYY-MM-DD, inclusive.")] = None,
) -> SearchFilters:
    """The filters every retrieval route takes; bad dates are a 422 with the one error shape."""
    return make_filters(type, project, author, tag, path, modified_after, modified_before)


Filters = Annotated[SearchFilters, Depends(search_filters)]
