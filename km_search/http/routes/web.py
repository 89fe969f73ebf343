"""What browsers get beyond the JSON API: the search page and the widget script.

Both are static files in km_search/web/ (no build step, no CDN, no inline script, so a strict
Content-Security-Policy holds); both call the JSON API like any other client. CORS (app.py) answers
only the origins in KM_CORS_ORIGINS."""

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

from km_search.http.security import COMMON_HEADERS, PAGE_HEADERS

WEB = Path(__file__).parents[2] / "web"


def router() -> APIRouter:
    api = APIRouter()

    @api.get("/", include_in_schema=False)
    def page() -> FileResponse:
        """The search page."""
        return FileResponse(WEB / "index.html", headers=PAGE_HEADERS)

    @api.get("/widget.js", include_in_schema=False)
    def widget() -> FileResponse:
        """The embeddable <km-search> element; a classic script, so any page may load it."""
        return FileResponse(
            WEB / "widget.js", media_type="text/javascript; charset=utf-8",
            headers={**COMMON_HEADERS, "Cache-Control": "public, max-age=300"},
        )

    return api
