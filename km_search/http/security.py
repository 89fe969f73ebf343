"""Request and response hygiene for the whole app, as one small ASGI middleware:

- request bodies larger than KM_MAX_BODY_KB are refused with 413 (uploads, `POST /documents`, get
  KM_MAX_FILE_MB plus 1 MiB for the form around the file), by Content-Length before anything is read
  and by counting when the body is streamed without one;
- every response gets `X-Content-Type-Options: nosniff` and `Referrer-Policy`, and API answers,
  which depend on who asked, `Cache-Control: no-store` and `Vary: Authorization, Cookie`, so no
  shared cache hands one user's results to another. Responses that set their own Cache-Control
  (static files, the widget) keep it.

The header sets below are what the page, the source viewer and original files are served with
(routes/web.py, routes/documents.py): a strict Content-Security-Policy and no framing by other sites.
"""

from __future__ import annotations

import json

from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from km_search.settings import Settings

UPLOAD_PATHS = ("/documents",)
_BODY_METHODS = {"POST", "PUT", "PATCH", "DELETE"}

COMMON_HEADERS = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin"}
PAGE_HEADERS = {
    **COMMON_HEADERS,
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'self'",
    "X-Frame-Options": "SAMEORIGIN",  # frame-ancestors for old browsers: no clickjacking from other sites
}
VIEWER_HEADERS = {
    **COMMON_HEADERS,
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self' data:; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'self'",
    "X-Frame-Options": "SAMEORIGIN",
}
# An indexed HTML page is someone else's markup: sandboxed, it runs no script and has no origin of ours.
ORIGINAL_HTML_HEADERS = {
    **COMMON_HEADERS,
    "Content-Security-Policy": "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:",
}


def _error_body(status: int, message: str) -> bytes:
    return json.dumps({"ok": False, "status": status, "error": message}).encode()


class SecurityMiddleware:
    def __init__(self, app: ASGIApp, settings: Settings):
        self.app = app
        self.body_limit = settings.max_body_kb * 1024
        self.upload_limit = int((settings.max_file_mb + 1) * 1024 * 1024)

    def limit_for(self, scope: Scope) -> int:
        path = scope.get("path", "")
        if scope.get("method") == "POST" and any(path == p or path.startswith(p + "/") for p in UPLOAD_PATHS):
            return self.upload_limit
        return self.body_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope)
        if scope.get("method") in _BODY_METHODS:
            length = dict(scope.get("headers") or ()).get(b"content-length")
            if length is not None and (not length.isdigit() or int(length) > limit):
                await self._reject(send, limit)
                return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise HTTPException(413, _too_large(limit))
            return message

        api = not scope.get("path", "").startswith("/static/")

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("X-Content-Type-Options", "nosniff")
                headers.setdefault("Referrer-Policy", "same-origin")
                if api and "cache-control" not in headers:
                    headers["Cache-Control"] = "no-store"
                    headers.append("Vary", "Authorization, Cookie")
            await send(message)

        await self.app(scope, limited, with_headers)

    @staticmethod
    async def _reject(send: Send, limit: int) -> None:
        body = _error_body(413, _too_large(limit))
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})


def _too_large(limit: int) -> str:
    return f"the request body is larger than {limit // 1024} KiB (KM_MAX_BODY_KB; uploads: KM_MAX_FILE_MB)"
