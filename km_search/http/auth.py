"""Authentication at the HTTP edge: who is calling, as a Principal, for every route that reads or
changes the index. `KM_AUTH` picks the mode:

- `keys` (the default): `Authorization: Bearer KEY`, a key made by `km keys create`
  (km_search/access/keys.py). GET requests may carry the key in the `km_key` cookie instead, which the
  search page sets so that plain links to the source viewer work. Until the first key is created,
  a caller on this machine (a loopback address, not relayed by a proxy) may read public documents
  without one, as Redis' protected mode lets a fresh install answer local clients: `km serve` then
  `curl localhost` works with no setup, and nothing restricted or administrative is reachable so.
- `header`: an SSO reverse proxy authenticates and sends the user and groups in headers
  (KM_AUTH_USER_HEADER, KM_AUTH_GROUPS_HEADER); they are believed only from KM_TRUSTED_PROXIES,
  and a request from anywhere else that carries them is refused.
- `none`: everyone is the local principal that sees everything (a single-user laptop setup).

Routes declare what they need with the `Reader` and `Admin` aliases of deps.py; both take
one token from the caller's rate-limit bucket. Failures are 401 (who are you?), 403 (not allowed)
and 429 (slow down, with Retry-After), in the app's one error shape.
"""

from __future__ import annotations

import ipaddress
import logging
from fastapi import Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException

from km_search.errors import AuthConfigError
from km_search.access.principals import ANONYMOUS, LOCAL, Principal, normalize_groups
from km_search.access.keys import KeyStore
from km_search.http.ratelimit import RateLimiter, SharedRateLimiter, retry_after
from km_search.settings import Settings

log = logging.getLogger("km_search.auth")

KEY_COOKIE = "km_key"

# Headers a reverse proxy adds: a loopback peer that sends one is relaying someone else.
_RELAYED = ("forwarded", "x-forwarded-for", "x-real-ip")

bearer = HTTPBearer(auto_error=False, description="An API key from `km keys create` (KM_AUTH=keys).")



def refuse(status: int, message: str, headers: dict[str, str] | None = None) -> HTTPException:
    if status == 401 and headers is None:
        headers = {"WWW-Authenticate": 'Bearer realm="km-search"'}
    return HTTPException(status, message, headers=headers)


class Authenticator:
    """The configured authentication mode, the key store and the rate limiter of one app."""

    def __init__(self, settings: Settings, keys: KeyStore | None = None):
        self.settings = settings
        self.mode = settings.auth
        self.keys = keys or (KeyStore(settings.keys_path()) if self.mode == "keys" else None)
        self.proxies = [ipaddress.ip_network(p, strict=False) for p in settings.trusted_proxies]
        self.admin_groups = set(normalize_groups(settings.auth_admin_groups))
        self.limiter = (SharedRateLimiter(settings.rate_limit_file, settings.rate_limit) if settings.rate_limit_file
                        else RateLimiter(settings.rate_limit))
        if self.mode == "header" and not self.proxies:
            raise AuthConfigError(
                "KM_AUTH=header needs KM_TRUSTED_PROXIES: the addresses of the reverse proxies whose "
                f"{settings.auth_user_header} header may be believed (e.g. KM_TRUSTED_PROXIES=10.0.0.5)"
            )

    def announce(self) -> None:
        """One log line saying how callers are identified; a loud one when nobody is."""
        if self.mode == "none":
            log.warning("KM_AUTH=none: NO AUTHENTICATION. Every caller is the local user and can read every "
                        "document, ingest and see analytics. Use it only on a single-user machine; set "
                        "KM_AUTH=keys or KM_AUTH=header anywhere else.")
        elif self.mode == "keys" and self.keys is not None and self.keys.empty():
            log.warning("KM_AUTH=keys and no API key exists yet (%s): callers on this machine may read public "
                        "documents without a key, everyone else is refused. `km keys create` ends that.",
                        self.settings.keys_path())
        elif self.mode == "keys":
            log.info("KM_AUTH=keys: API keys from %s (`km keys create` makes one)", self.settings.keys_path())
        else:
            log.info("KM_AUTH=header: user from %s, groups from %s, believed only from %s",
                     self.settings.auth_user_header, self.settings.auth_groups_header,
                     ", ".join(map(str, self.proxies)))

    def authenticate(self, request: Request, credentials: HTTPAuthorizationCredentials | None) -> Principal:
        """The caller's Principal, a token taken from their bucket; else a 401, 403 or 429."""
        peer = request.client.host if request.client else ""
        try:
            principal = self._identify(request, credentials, peer)
        except HTTPException:
            self._throttle(f"addr:{peer}")  # failed attempts count against the address
            raise
        self._throttle(principal.id if self.mode != "none" else f"addr:{peer}")
        return principal

    def _throttle(self, who: str) -> None:
        wait = self.limiter.take(who)
        if wait > 0:
            raise refuse(429, f"too many requests: the limit is {self.settings.rate_limit} a minute "
                          "(KM_RATE_LIMIT); retry later", {"Retry-After": retry_after(wait)})

    def _identify(self, request: Request, credentials: HTTPAuthorizationCredentials | None, peer: str) -> Principal:
        if self.mode == "none":
            return LOCAL
        if self.mode == "header":
            return self._from_headers(request, peer)
        assert self.keys is not None
        key = credentials.credentials if credentials is not None else None
        if key is None and request.method in ("GET", "HEAD"):
            key = request.cookies.get(KEY_COOKIE)
        if not key and self._local_before_first_key(request, peer):
            return ANONYMOUS
        if not key:
            raise refuse(401, "authentication required: send an API key as `Authorization: Bearer KEY` "
                          "(an admin creates one with `km keys create --role reader --groups ...`)")
        principal = self.keys.authenticate(key.strip())
        if principal is None:
            raise refuse(401, "the API key is unknown or revoked: ask an admin for a valid one")
        return principal

    def _local_before_first_key(self, request: Request, peer: str) -> bool:
        """A caller on this machine, not relayed by a proxy, while no key exists (see the module doc)."""
        try:
            loopback = ipaddress.ip_address(peer).is_loopback
        except ValueError:
            return False
        assert self.keys is not None
        return loopback and not any(h in request.headers for h in _RELAYED) and self.keys.empty()

    def _from_headers(self, request: Request, peer: str) -> Principal:
        user_header, groups_header = self.settings.auth_user_header, self.settings.auth_groups_header
        if not self._trusted(peer):
            if user_header in request.headers or groups_header in request.headers:
                log.warning("refused %s header from %s, which is not in KM_TRUSTED_PROXIES", user_header, peer)
                raise refuse(403, f"{user_header} is only accepted from the SSO proxy; this request did not come "
                              "through it")
            raise refuse(401, "authentication required: open km-search through the organization's sign-in proxy")
        user = " ".join(request.headers.get(user_header, "").split())
        if not user or len(user) > 256:
            raise refuse(401, f"the sign-in proxy sent no user ({user_header} header missing or empty)")
        groups = _lenient_groups(request.headers.get(groups_header, ""))
        role = "admin" if self.admin_groups & set(groups) else "reader"
        return Principal(id=f"user:{user.lower()}", name=user, role=role, groups=groups)

    def _trusted(self, peer: str) -> bool:
        try:
            address = ipaddress.ip_address(peer)
        except ValueError:
            return False
        return any(address in network for network in self.proxies)


def _lenient_groups(value: str) -> tuple[str, ...]:
    """Groups from a proxy header; a name km-search cannot store is dropped rather than failing the user."""
    out: list[str] = []
    for name in value.replace(";", ",").split(","):
        try:
            out.extend(normalize_groups(name))
        except ValueError:
            log.warning("ignored group %r from the sign-in proxy: not a valid group name", name.strip()[:80])
    return tuple(dict.fromkeys(out))
