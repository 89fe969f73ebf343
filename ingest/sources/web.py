"""Intranet web sites as a source: `km ingest https://intranet.example/handbook/` crawls the pages
under that URL and hands them to the parse workers like files (docs/sources.md).

Scope: the start URL's scheme, host and port, and paths under its folder ('/handbook/'); links
(<a href>, honouring <base href>) and sitemap.xml (from robots.txt, or at the site's root) leading
anywhere else are counted, never fetched, and so are paths robots.txt disallows for 'km-search'.
Politeness: KM_CRAWL_CONCURRENCY requests at a time, KM_CRAWL_DELAY_S between the starts of two
requests (or robots.txt's Crawl-delay), a page and a byte limit per page and per crawl, timeouts.
Redirects are followed one hop at a time, each hop checked against the scope and robots.txt; a
page's identity is where it ends up, or its <link rel=canonical> inside the scope, so duplicates are
indexed once. Only documents are downloaded (HTML, PDF and the Office types a parser reads, by
Content-Type); fragments are dropped and query strings sorted, tracking parameters removed.

Re-crawls are incremental: each fetched URL's ETag, Last-Modified, content hash and links are kept
in `<index folder>/crawl.json`, and the next crawl asks with If-None-Match / If-Modified-Since: a 304
keeps the page as indexed (its stored links are followed on), else the content hash decides. The
validators are used only while the index still holds the very bytes they describe. A page that
answers 404/410, or is no longer linked, is removed; one that fails otherwise (timeout, 5xx, 403)
keeps its indexed version and is reported failed.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
import xml.etree.ElementTree as ET
from collections import deque
from collections.abc import Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from pathlib import Path, PurePosixPath
from urllib.parse import parse_qsl, unquote, urlencode, urljoin, urlsplit, urlunsplit
from urllib.robotparser import RobotFileParser

import httpx

from km_search import __version__
from km_search.errors import KmError
from km_search.index.layout import write_atomic
from km_search.settings import Settings

from ..discovery import Discovery, SourceFile
from ..parsers import format_of
from ..progress import progress as crawl_progress
from . import SourceContext

AGENT = "km-search"  # the token robots.txt rules name
USER_AGENT = f"{AGENT}/{__version__} (+https://github.com/km-search; self-hosted intranet search)"
STATE = "crawl.json"  # <index folder>/crawl.json: per start URL, per fetched URL, the validators and links
MAX_REDIRECTS = 5
MAX_SITEMAPS = 10

# Content types worth downloading, with the suffix that picks their parser.
DOCUMENT_TYPES = {
    "text/html": ".html",
    "application/xhtml+xml": ".html",
    "application/pdf": ".pdf",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": ".docx",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": ".pptx",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": ".xlsx",
    "application/vnd.oasis.opendocument.text": ".odt",
    "application/vnd.oasis.opendocument.presentation": ".odp",
    "application/vnd.oasis.opendocument.spreadsheet": ".ods",
    "application/epub+zip": ".epub",
    "application/rtf": ".rtf",
}
_TRACKING = re.compile(r"^(utm_\w+|fbclid|gclid|mc_cid|mc_eid|_ga)$", re.IGNORECASE)
_DEFAULT_PORTS = {"http": 80, "https": 443}


def normalize(url: str, base: str | None = None) -> str | None:
    """The URL as the crawl compares it: absolute, no fragment, scheme and host lowercased, default
    port dropped, query parameters sorted without tracking ones; None for what is not http(s)."""
    try:
        absolute = urljoin(base, url.strip()) if base else url.strip()
        parts = urlsplit(absolute)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    netloc = host if port in (None, _DEFAULT_PORTS[scheme]) else f"{host}:{port}"
    query = urlencode(sorted((k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not _TRACKING.match(k)))
    return urlunsplit((scheme, netloc, parts.path or "/", query, ""))


@dataclass(frozen=True)
class Scope:
    """Same scheme, host and port as the start URL, and a path under its folder."""

    origin: str
    prefix: str

    @classmethod
    def of(cls, start: str) -> Scope:
        parts = urlsplit(start)
        path = parts.path or "/"
        if not path.endswith("/"):
            last = path.rsplit("/", 1)[-1]
            path = path[: len(path) - len(last)] if "." in last else path + "/"
        return cls(f"{parts.scheme}://{parts.netloc}", path)

    def __contains__(self, url: str) -> bool:
        parts = urlsplit(url)
        path = parts.path or "/"
        return f"{parts.scheme}://{parts.netloc}" == self.origin and (path.startswith(self.prefix) or path + "/" == self.prefix)


def parse_headers(settings: Settings) -> dict[str, str]:
    """KM_CRAWL_HEADERS ('Name: value' lines) and KM_CRAWL_COOKIE as request headers."""
    headers: dict[str, str] = {}
    raw = settings.crawl_headers.get_secret_value() if settings.crawl_headers else ""
    for line in raw.replace("\\n", "\n").splitlines():
        if not line.strip():
            continue
        name, sep, value = line.partition(":")
        if not sep or not name.strip() or not re.fullmatch(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+", name.strip()):
            raise KmError(f"KM_CRAWL_HEADERS line {line.split(':')[0]!r}: write each header as 'Name: value'")
        headers[name.strip()] = value.strip()
    if settings.crawl_cookie:
        headers["Cookie"] = settings.crawl_cookie.get_secret_value().strip()
    return headers


@dataclass
class _Fetched:
    """What one request gave."""

    url: str
    kind: str  # document | unchanged | redirect | not_document | gone | failed
    target: str | None = None  # redirect target
    path: Path | None = None
    content_hash: str | None = None
    size: int = 0
    etag: str | None = None
    last_modified: str | None = None
    links: list[str] = field(default_factory=list)
    canonical: str | None = None
    index: bool = True  # <meta name=robots content=noindex> says no
    reason: str = ""


class WebSource:
    """One web site under a start URL (see the module docstring)."""

    def __init__(self, start: str, settings: Settings):
        url = normalize(start)
        if url is None:
            raise KmError(f"{start}: not an http(s) URL to crawl")
        self.start = url
        self.scope = Scope.of(url)
        self.settings = settings
        self.roots = [url]
        self._state_path: Path | None = None
        self._new_state: dict[str, dict] = {}
        self._old_state: dict[str, dict] = {}
        self._lock = threading.Lock()
        self._next_start = 0.0
        self._delay = settings.crawl_delay_s
        self._downloaded = 0
        self._n = 0

    # --- the Source interface -------------------------------------------------------------------

    def discover(self, ctx: SourceContext) -> Discovery:
        assert ctx.workdir is not None, "a crawl needs a scratch folder for the pages it downloads"
        self._state_path = ctx.index_path / STATE
        self._old_state = _load_state(self._state_path).get(self.start, {})
        self._workdir = ctx.workdir / f"web-{hashlib.sha256(self.start.encode()).hexdigest()[:12]}"
        self._workdir.mkdir(parents=True, exist_ok=True)
        self._previous = ctx.previous
        out = Discovery(files=[])
        counts = {k: 0 for k in ("fetched", "robots_disallowed", "out_of_scope", "not_documents", "duplicates",
                                 "redirects", "not_modified")}
        defaults = self._defaults()
        headers = {"User-Agent": USER_AGENT, **parse_headers(self.settings)}
        timeout = httpx.Timeout(self.settings.crawl_timeout_s)
        limits = httpx.Limits(max_connections=self.settings.crawl_concurrency)
        docs: dict[str, SourceFile] = {}
        fetched_as: dict[str, str] = {}  # identity -> the URL its bytes came from
        referrer: dict[str, str] = {}
        hops: dict[str, int] = {}
        with httpx.Client(headers=headers, timeout=timeout, limits=limits, follow_redirects=False) as client, \
                ThreadPoolExecutor(self.settings.crawl_concurrency, thread_name_prefix="km-crawl") as pool, \
                crawl_progress(ctx.progress, None, "crawling", "URLs") as progress:
            robots = self._robots(client)
            delay = robots.crawl_delay(AGENT)
            if delay:
                self._delay = max(self._delay, float(delay))
            frontier: deque[str] = deque([self.start])
            seen = {self.start}

            def enqueue(url: str | None, via: str | None, front: bool = False) -> None:
                if url is None or url in seen:
                    return
                seen.add(url)
                if url not in self.scope:
                    counts["out_of_scope"] += 1
                    return
                if via:
                    referrer[url] = via
                frontier.appendleft(url) if front else frontier.append(url)

            for url in self._sitemap_urls(client, robots):
                enqueue(url, None)
            in_flight: dict[Future, str] = {}
            stopped = ""
            while frontier or in_flight:
                while frontier and len(in_flight) < self.settings.crawl_concurrency and not stopped:
                    if counts["fetched"] >= self.settings.crawl_max_pages:
                        stopped = f"the crawl stopped at {self.settings.crawl_max_pages} URLs (KM_CRAWL_MAX_PAGES)"
                        break
                    if self._downloaded > self.settings.crawl_max_mb * 1048576:
                        stopped = f"the crawl stopped after {self.settings.crawl_max_mb:g} MB (KM_CRAWL_MAX_MB)"
                        break
                    url = frontier.popleft()
                    if not robots.can_fetch(AGENT, url):
                        counts["robots_disallowed"] += 1
                        continue
                    counts["fetched"] += 1
                    in_flight[pool.submit(self._fetch, client, url)] = url
                if not in_flight:
                    break
                done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
                for future in done:
                    url = in_flight.pop(future)
                    got: _Fetched = future.result()
                    progress()
                    if got.kind == "redirect":
                        counts["redirects"] += 1
                        if hops.get(url, 0) >= MAX_REDIRECTS:
                            out.kept.append((self._identity(url), f"more than {MAX_REDIRECTS} redirects"))
                            continue
                        if got.target is not None:
                            hops[got.target] = hops.get(url, 0) + 1
                        enqueue(got.target, referrer.get(url), front=True)
                        continue
                    if got.kind == "not_document":
                        counts["not_documents"] += 1
                        out.skipped += 1
                        continue
                    if got.kind == "gone":
                        if self._identity(url) not in self._previous:  # never indexed: a broken link
                            via = f" (linked from {referrer[url]})" if url in referrer else ""
                            out.kept.append((url, f"{got.reason}{via}"))
                        continue  # indexed before: not found now, so removed
                    if got.kind == "failed":
                        out.kept.append((self._identity(url), got.reason))
                        if url in self._old_state:
                            self._new_state[url] = self._old_state[url]
                        continue
                    for link in got.links:
                        enqueue(link, url)
                    identity = url
                    if got.canonical and got.canonical in self.scope:
                        identity = got.canonical
                        seen.add(identity)  # fetched already, as this page
                    if got.kind == "unchanged":
                        counts["not_modified"] += 1
                        identity = self._old_state[url]["doc"]
                    if not got.index:
                        counts["not_documents"] += 1
                        continue
                    if identity in docs:
                        counts["duplicates"] += 1
                        if url != identity:  # the canonical URL's own bytes win, whatever came first
                            continue
                        self._new_state.pop(fetched_as[identity], None)
                    fetched_as[identity] = url
                    docs[identity] = SourceFile(
                        path=got.path, rel=identity, location=identity, origin=self.start, defaults=defaults,  # type: ignore[arg-type]
                        content_hash=got.content_hash, unchanged=got.kind == "unchanged")
                    self._new_state[url] = {"doc": identity, "etag": got.etag, "last_modified": got.last_modified,
                                            "hash": got.content_hash or self._old_state.get(url, {}).get("hash"),
                                            "links": got.links}
        if stopped:
            out.warnings.append(f"{self.start}: {stopped}; pages not reached keep their indexed version")
            reached = set(docs) | {p for p, _ in out.kept}
            for entry in self._old_state.values():
                doc = entry.get("doc")
                if doc in self._previous and doc not in reached:
                    out.kept.append((doc, f"not reached: {stopped}"))
                    reached.add(doc)
        out.files = sorted(docs.values(), key=lambda f: f.rel)
        out.counts = counts
        return out

    def finish(self, outcomes: Mapping[str, str]) -> None:
        """Keep the validators of the URLs whose bytes the index now holds (and the old ones of
        URLs that failed): the next crawl asks those pages for changes only."""
        if self._state_path is None:
            return
        kept = {url: entry for url, entry in self._new_state.items()
                if outcomes.get(entry.get("doc")) in ("added", "updated", "unchanged", "failed")}
        state = _load_state(self._state_path)
        state[self.start] = kept
        write_atomic(self._state_path, json.dumps(state, indent=1, sort_keys=True))

    # --- requests --------------------------------------------------------------------------------

    def _defaults(self) -> dict:
        groups = list(self.settings.crawl_groups)
        return {"groups": groups} if groups else {}

    def _identity(self, url: str) -> str:
        return self._old_state.get(url, {}).get("doc") or url

    def _polite(self) -> None:
        """Wait until this request may start: KM_CRAWL_DELAY_S after the previous one started."""
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next_start)
            self._next_start = start + self._delay
        if start > now:
            time.sleep(start - now)

    def _get(self, client: httpx.Client, url: str, limit: int) -> tuple[int, bytes]:
        """A small resource (robots.txt, a sitemap): status and at most `limit` bytes."""
        self._polite()
        with client.stream("GET", url) as r:
            data = bytearray()
            for block in r.iter_bytes():
                data.extend(block)
                if len(data) > limit:
                    break
            return r.status_code, bytes(data[:limit])

    def _robots(self, client: httpx.Client) -> RobotFileParser:
        robots = RobotFileParser()
        url = f"{self.scope.origin}/robots.txt"
        try:
            status, data = self._get(client, url, 512 * 1024)
        except httpx.HTTPError as exc:
            raise KmError(f"{url} could not be read ({type(exc).__name__}: {exc}): nothing was crawled") from None
        if status in (401, 403):
            robots.disallow_all = True
        elif 400 <= status < 500:
            robots.allow_all = True
        elif status >= 300:
            raise KmError(f"{url} answered HTTP {status}: nothing was crawled (robots.txt must be readable or absent)")
        else:
            robots.parse(data.decode("utf-8", errors="replace").splitlines())
        robots.modified()
        return robots

    def _sitemap_urls(self, client: httpx.Client, robots: RobotFileParser) -> list[str]:
        """The in-scope page URLs the site's sitemaps list (robots.txt's, else /sitemap.xml and the
        start folder's sitemap.xml); a sitemap index is followed one level."""
        candidates = list(robots.site_maps() or []) or [f"{self.scope.origin}/sitemap.xml",
                                                        f"{self.scope.origin}{self.scope.prefix}sitemap.xml"]
        queue = deque(dict.fromkeys(u for u in (normalize(c) for c in candidates) if u))
        pages: list[str] = []
        read = 0
        while queue and read < MAX_SITEMAPS:
            url = queue.popleft()
            if urlsplit(url).netloc != urlsplit(self.start).netloc or not robots.can_fetch(AGENT, url):
                continue
            read += 1
            try:
                status, data = self._get(client, url, 10 * 1048576)
                if status != 200:
                    continue
                root = ET.fromstring(data)
            except (httpx.HTTPError, ET.ParseError):
                continue
            locs = [(e.text or "").strip() for e in root.iter() if e.tag.rsplit("}", 1)[-1] == "loc"]
            if root.tag.rsplit("}", 1)[-1] == "sitemapindex":
                queue.extend(u for u in (normalize(x) for x in locs) if u)
            else:
                pages.extend(u for u in (normalize(x) for x in locs) if u)
        return pages

    def _conditions(self, url: str) -> dict[str, str]:
        """If-None-Match / If-Modified-Since, when the index still holds the bytes they describe."""
        entry = self._old_state.get(url)
        if not entry or not entry.get("hash"):
            return {}
        from ..pipeline import (
            meta_hash,  # what the page inherits (KM_CRAWL_GROUPS): a change re-reads it
        )

        previous = self._previous.get(entry.get("doc", ""))
        if previous is None or previous.content_hash != entry["hash"]:
            return {}
        if previous.meta_hash != meta_hash(SourceFile(path=None, rel="", defaults=self._defaults())):  # type: ignore[arg-type]
            return {}
        out = {}
        if entry.get("etag"):
            out["If-None-Match"] = entry["etag"]
        if entry.get("last_modified"):
            out["If-Modified-Since"] = entry["last_modified"]
        return out

    def _fetch(self, client: httpx.Client, url: str) -> _Fetched:
        conditions = self._conditions(url)
        limit = int(self.settings.crawl_page_mb * 1048576)
        self._polite()
        try:
            with client.stream("GET", url, headers=conditions) as r:
                etag, modified = r.headers.get("etag"), r.headers.get("last-modified")
                if r.status_code == 304 and conditions:
                    entry = self._old_state[url]
                    return _Fetched(url, "unchanged", etag=etag or entry.get("etag"),
                                    last_modified=modified or entry.get("last_modified"), links=list(entry.get("links", [])))
                if r.status_code in (301, 302, 303, 307, 308):
                    target = normalize(r.headers.get("location", ""), url)
                    if target is None:
                        return _Fetched(url, "failed", reason=f"HTTP {r.status_code} redirect to an unusable location")
                    return _Fetched(url, "redirect", target=target)
                if r.status_code in (404, 410):
                    return _Fetched(url, "gone", reason=f"HTTP {r.status_code} {r.reason_phrase}: a broken link")
                if r.status_code in (401, 403):
                    return _Fetched(url, "failed", reason=f"HTTP {r.status_code} {r.reason_phrase}: the crawl may not read it "
                                    "(KM_CRAWL_HEADERS or KM_CRAWL_COOKIE can sign it in)")
                if r.status_code != 200:
                    return _Fetched(url, "failed", reason=f"HTTP {r.status_code} {r.reason_phrase}")
                media = r.headers.get("content-type", "").split(";")[0].strip().lower()
                suffix = DOCUMENT_TYPES.get(media)
                if suffix is None or format_of(Path("x" + suffix)) is None:
                    return _Fetched(url, "not_document", reason=media or "no Content-Type")
                declared = r.headers.get("content-length")
                if declared and declared.isdigit() and int(declared) > limit:
                    return _Fetched(url, "failed", reason=_too_large(self.settings))
                path = self._file_for(url, suffix)
                digest, size = hashlib.sha256(), 0
                with open(path, "wb") as f:
                    for block in r.iter_bytes():
                        size += len(block)
                        with self._lock:
                            self._downloaded += len(block)
                        if size > limit:
                            f.close()
                            path.unlink(missing_ok=True)
                            return _Fetched(url, "failed", reason=_too_large(self.settings))
                        digest.update(block)
                        f.write(block)
        except httpx.TimeoutException:
            return _Fetched(url, "failed", reason=f"no answer within {self.settings.crawl_timeout_s:g} s (KM_CRAWL_TIMEOUT_S)")
        except httpx.HTTPError as exc:
            return _Fetched(url, "failed", reason=f"{type(exc).__name__}: {exc}")
        got = _Fetched(url, "document", path=path, content_hash=digest.hexdigest(), size=size, etag=etag,
                       last_modified=_http_date(modified))
        if suffix == ".html":
            got.links, got.canonical, got.index, follow = _links(path.read_bytes(), url)
            if not follow:
                got.links = []
        return got

    def _file_for(self, url: str, suffix: str) -> Path:
        """A scratch file for a download, named after the URL's last segment (parsers may take a
        title from it) with the suffix that picks the parser."""
        with self._lock:
            self._n += 1
            n = self._n
        name = PurePosixPath(unquote(urlsplit(url).path)).name or "index"
        stem = re.sub(r"[^\w.-]", "_", name.rsplit(".", 1)[0] if "." in name else name)[:80] or "index"
        folder = self._workdir / f"{n:06d}"
        folder.mkdir()
        return folder / f"{stem}{suffix}"


def _too_large(settings: Settings) -> str:
    return f"larger than {settings.crawl_page_mb:g} MB (KM_CRAWL_PAGE_MB): not downloaded"


def _http_date(value: str | None) -> str | None:
    """A Last-Modified value worth sending back: one that parses as an HTTP date."""
    if not value:
        return None
    try:
        parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return value


def _links(data: bytes, url: str) -> tuple[list[str], str | None, bool, bool]:
    """A page's links (normalized, in order, once each), its canonical URL, and whether its robots
    <meta> lets it be indexed and its links followed."""
    from selectolax.lexbor import LexborHTMLParser

    from ..parsers._common import decode_text
    from ..parsers.html import declared_charset

    try:
        tree = LexborHTMLParser(decode_text(data, declared_charset(data)))
    except Exception:  # noqa: BLE001 - the parser reports a broken page; the crawl just finds no links
        return [], None, True, False
    base = url
    node = tree.css_first("base[href]")
    if node is not None:
        base = urljoin(url, node.attributes.get("href") or "")
    index = follow = True
    for meta in tree.css("meta[name]"):
        if (meta.attributes.get("name") or "").lower() in ("robots", AGENT):
            words = (meta.attributes.get("content") or "").lower()
            index = index and "noindex" not in words and "none" not in words
            follow = follow and "nofollow" not in words and "none" not in words
    canonical = None
    for link in tree.css("link[rel][href]"):
        if "canonical" in (link.attributes.get("rel") or "").lower().split():
            canonical = normalize(link.attributes.get("href") or "", url)
            break
    links: dict[str, None] = {}
    for a in tree.css("a[href]"):
        if "nofollow" in (a.attributes.get("rel") or "").lower().split():
            continue
        target = normalize(a.attributes.get("href") or "", base)
        if target is not None:
            links.setdefault(target)
    return list(links), canonical, index, follow


def _load_state(path: Path) -> dict[str, dict[str, dict]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
